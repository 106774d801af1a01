/* login_parse.c - POP3 and IMAP replies for login-before-smtp; see
 * login_parse.h.
 *
 * STANDARDS
 *	RFC 1939 §3 (status indicators "+OK"/"-ERR" in upper case, multi-line
 *	bodies dot-stuffed and ended by "."), §7 (APOP: the greeting's msg-id
 *	timestamp); RFC 2449 §3 (response grammar), §5/§6 (CAPA: capa-tag
 *	*(SP param), keywords case-insensitive), §8 (resp-code "[" level *("/"
 *	level) "]"); RFC 3206 (SYS/TEMP, SYS/PERM, AUTH); RFC 2595 (STLS);
 *	RFC 5034 §4 (continuation "+" SP base64); RFC 3501 / RFC 9051 §7
 *	(tagged and untagged status responses, continue-req, resp-text-code,
 *	capability-data, literals), RFC 5530 (response codes), RFC 4959
 *	(SASL-IR), RFC 4422 §3.1 (mechanism names).
 *
 * SECURITY
 *	Every line is untrusted and not NUL-terminated: reads are bounded by
 *	len, and NUL, CR, LF and overlong lines are refused before anything
 *	else is looked at.  Results point into the line or are fixed arrays
 *	that are cut, never overflowed.  Nothing here decides what a reply
 *	means for the delivery: login.c does, and logs (sanitised) text.
 *
 * Leniency: where real servers deviate harmlessly (several spaces after a
 * status, "+" alone for an empty challenge, a tagged OK without text, a
 * "[" that is not closed) the line is accepted and the odd part kept as
 * text; what could change the meaning of a reply (a wrong status case in
 * POP3, a foreign tag, a literal larger than we skip) is refused. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "login_parse.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define N(array) (sizeof(array) / sizeof((array)[0]))

#define CAPA_KEYWORD_MAX 64     /* no registered POP3 capability comes close */
#define LOGIN_DELAY_DIGITS 9    /* RFC 2449 §6.8 gives no bound; a day is 5 */

/* --- shared ---------------------------------------------------------------- */

static struct login_span
span(const char *s, size_t len)
{
	return (struct login_span){ s, len };
}

static bool
is_print(char c)
{
	return c > ' ' && c < 0x7f;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
to_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool
equal_nocase_n(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* The framing rules every entry point applies first: NULL when the line
 * may be parsed, else why not. */
static const char *
line_check(const char *line, size_t len)
{
	if (len >= LOGIN_LINE_MAX)
		return "line of " STR(LOGIN_LINE_MAX) " octets or more";
	if (len > 0 && (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL))
		return "NUL, CR or LF inside the line";
	return NULL;
}

/* The end of the word at s[0..len): up to the first space. */
static size_t
word_len(const char *s, size_t len)
{
	const char *sp = len > 0 ? memchr(s, ' ', len) : NULL;

	return sp != NULL ? (size_t)(sp - s) : len;
}

static size_t
skip_spaces(const char *s, size_t len, size_t i)
{
	while (i < len && s[i] == ' ')
		i++;
	return i;
}

/* --- SASL mechanism lists -------------------------------------------------- */

static bool
is_mech_char(char c)
{
	return (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
}

static bool
mech_listed(const char *list, const char *mech, size_t len)
{
	while (*list != '\0') {
		size_t n = strcspn(list, " ");

		if (n == len && memcmp(list, mech, len) == 0)
			return true;
		list += n;
		list += *list == ' ';
	}
	return false;
}

/* Append one name to a space-separated list of `size` octets with its NUL:
 * upper-cased, only a valid RFC 4422 name, only once, only if it fits whole
 * (a server cannot grow the list past its array, nor leave half a name). */
static void
mech_add(char *list, size_t size, const char *s, size_t len)
{
	char mech[LOGIN_MECH_LEN_MAX + 1];
	size_t used;

	if (len == 0 || len > LOGIN_MECH_LEN_MAX)
		return;
	for (size_t i = 0; i < len; i++) {
		mech[i] = to_upper(s[i]);
		if (!is_mech_char(mech[i]))
			return;
	}
	mech[len] = '\0';
	if (mech_listed(list, mech, len))
		return;
	used = strlen(list);
	if (used + (used > 0) + len + 1 > size)
		return;
	if (used > 0)
		list[used++] = ' ';
	memcpy(list + used, mech, len + 1);
}

/* --- POP3 lines ------------------------------------------------------------ */

static const char *const pop3_code_names[] = {
	[LOGIN_POP3_CODE_NONE] = "none",
	[LOGIN_POP3_CODE_IN_USE] = "IN-USE",
	[LOGIN_POP3_CODE_LOGIN_DELAY] = "LOGIN-DELAY",
	[LOGIN_POP3_CODE_SYS_TEMP] = "SYS/TEMP",
	[LOGIN_POP3_CODE_SYS_PERM] = "SYS/PERM",
	[LOGIN_POP3_CODE_AUTH] = "AUTH",
	[LOGIN_POP3_CODE_OTHER] = "other",
};

/* RFC 2449 §8: codes are hierarchical; a client that does not know a
 * sub-level acts on the levels it knows, so "[AUTH/X]" is AUTH. */
static enum login_pop3_code
pop3_code(const char *s, size_t len)
{
	for (size_t c = LOGIN_POP3_CODE_IN_USE; c < LOGIN_POP3_CODE_OTHER; c++) {
		const char *name = pop3_code_names[c];
		size_t n = strlen(name);

		if (len >= n && strncasecmp(s, name, n) == 0 && (len == n || s[n] == '/'))
			return (enum login_pop3_code)c;
	}
	return LOGIN_POP3_CODE_OTHER;
}

/* A "[code]" at s[0..len): the length of its text between the brackets, or
 * 0 when s does not start with one (then it is text). */
static size_t
bracket_code(const char *s, size_t len)
{
	size_t i = 1;

	if (len < 3 || s[0] != '[')
		return 0;
	while (i < len && i <= LOGIN_CODE_MAX && s[i] != ']' && is_print(s[i]))
		i++;
	return i < len && s[i] == ']' && i > 1 ? i - 1 : 0;
}

static enum login_pop3_kind
pop3_invalid(struct login_pop3_line *out, const char *why)
{
	memset(out, 0, sizeof *out);
	out->kind = LOGIN_POP3_INVALID;
	out->why = why;
	return out->kind;
}

/* "+OK" or "-ERR" followed by the end or a space? */
static bool
pop3_status_is(const char *line, size_t len, const char *status)
{
	size_t n = strlen(status);

	return len >= n && memcmp(line, status, n) == 0 && (len == n || line[n] == ' ');
}

/* The rest of an OK/ERR line from line[i]: spaces, a code, spaces, text. */
static enum login_pop3_kind
pop3_status(struct login_pop3_line *out, enum login_pop3_kind kind, const char *line,
    size_t len, size_t i)
{
	size_t code_len;

	out->kind = kind;
	i = skip_spaces(line, len, i);
	if ((code_len = bracket_code(line + i, len - i)) > 0) {
		out->code_text = span(line + i + 1, code_len);
		out->code = pop3_code(line + i + 1, code_len);
		i = skip_spaces(line, len, i + code_len + 2);
	}
	out->text = span(line + i, len - i);
	return kind;
}

enum login_pop3_kind
login_pop3_parse_line(const char *line, size_t len, struct login_pop3_line *out)
{
	const char *why;

	memset(out, 0, sizeof *out);
	if ((why = line_check(line, len)) != NULL)
		return pop3_invalid(out, why);
	if (pop3_status_is(line, len, "+OK"))
		return pop3_status(out, LOGIN_POP3_OK, line, len, 3);
	if (pop3_status_is(line, len, "-ERR"))
		return pop3_status(out, LOGIN_POP3_ERR, line, len, 4);
	if (len == 1 && line[0] == '+') {        /* an empty challenge, space left out */
		out->kind = LOGIN_POP3_CONTINUE;
		out->text = span(line + 1, 0);
		return out->kind;
	}
	if (len >= 2 && line[0] == '+' && line[1] == ' ') {
		out->kind = LOGIN_POP3_CONTINUE;
		out->text = span(line + 2, len - 2);
		return out->kind;
	}
	return pop3_invalid(out, len == 0 ? "empty line" :
	    "neither +OK, -ERR nor a \"+ \" continuation");
}

/* The length of a msg-id-like "<...@...>" at s[0..len), or 0. */
static size_t
apop_candidate(const char *s, size_t len)
{
	size_t i = 1;
	bool at = false;

	if (len < 5 || s[0] != '<')
		return 0;
	while (i < len && i < LOGIN_APOP_TIMESTAMP_MAX - 1 && is_print(s[i]) &&
	    s[i] != '<' && s[i] != '>') {
		if (s[i] == '@' && i > 1 && i + 1 < len && s[i + 1] != '>')
			at = true;
		i++;
	}
	return i < len && s[i] == '>' && at && i >= 4 ? i + 1 : 0;
}

/* The last candidate wins: servers append the timestamp, and a host name in
 * brackets earlier in the banner ("+OK <mx.isp.example> ready") is not one. */
bool
login_pop3_apop_timestamp(const struct login_pop3_line *g, struct login_span *ts)
{
	const char *s = g->text.s;
	size_t len = g->text.len;

	*ts = span(NULL, 0);
	if (g->kind != LOGIN_POP3_OK || s == NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		size_t n;

		if (s[i] == '<' && (n = apop_candidate(s + i, len - i)) > 0)
			*ts = span(s + i, n);
	}
	return ts->s != NULL;
}

/* --- POP3 multi-line bodies and CAPA --------------------------------------- */

enum login_pop3_multi
login_pop3_parse_multi(const char *line, size_t len, struct login_span *out, const char **why)
{
	const char *bad = line_check(line, len);

	*out = span(NULL, 0);
	if (why != NULL)
		*why = bad;
	if (bad != NULL)
		return LOGIN_POP3_MULTI_INVALID;
	if (len == 1 && line[0] == '.')
		return LOGIN_POP3_MULTI_END;
	if (len > 0 && line[0] == '.') {        /* dot-stuffed */
		line++;
		len--;
	}
	*out = span(line, len);
	return LOGIN_POP3_MULTI_LINE;
}

int
login_pop3_parse_capa(const char *line, size_t len, struct login_pop3_capa *capa)
{
	size_t kw, start, end = len;

	memset(capa, 0, sizeof *capa);
	if (line_check(line, len) != NULL)
		return -1;
	kw = word_len(line, len);
	if (kw == 0 || kw > CAPA_KEYWORD_MAX)
		return -1;
	for (size_t i = 0; i < kw; i++)
		if (!is_print(line[i]))
			return -1;
	start = skip_spaces(line, len, kw);
	while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	capa->keyword = span(line, kw);
	capa->args = span(line + start, end - start);
	return 0;
}

static const struct pop3_flag {
	const char *keyword;
	size_t offset;          /* of a bool in struct login_pop3_caps */
} pop3_flags[] = {
	{ "STLS",           offsetof(struct login_pop3_caps, stls) },
	{ "USER",           offsetof(struct login_pop3_caps, user) },
	{ "TOP",            offsetof(struct login_pop3_caps, top) },
	{ "UIDL",           offsetof(struct login_pop3_caps, uidl) },
	{ "PIPELINING",     offsetof(struct login_pop3_caps, pipelining) },
	{ "RESP-CODES",     offsetof(struct login_pop3_caps, resp_codes) },
	{ "AUTH-RESP-CODE", offsetof(struct login_pop3_caps, auth_resp_code) },
};

/* "LOGIN-DELAY 900" or "LOGIN-DELAY 900 USER" (RFC 2449 §6.8). */
static void
caps_login_delay(struct login_pop3_caps *c, struct login_span args)
{
	size_t n = word_len(args.s, args.len);
	unsigned long v = 0;

	if (n == 0 || n > LOGIN_DELAY_DIGITS)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(args.s[i]))
			return;
		v = v * 10 + (unsigned long)(args.s[i] - '0');
	}
	c->has_login_delay = true;
	c->login_delay = v;
}

/* Each space-separated word of s[0..len) to a mechanism list. */
static void
mechs_add_words(char *list, size_t size, const char *s, size_t len)
{
	size_t i = 0;

	while ((i = skip_spaces(s, len, i)) < len) {
		size_t n = word_len(s + i, len - i);

		mech_add(list, size, s + i, n);
		i += n;
	}
}

/* Printable ASCII and spaces; other octets '?'; cut to fit. */
static void
copy_printable(char *dst, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++)
		dst[i] = s[i] >= ' ' && s[i] < 0x7f ? s[i] : '?';
	dst[n] = '\0';
}

static void
caps_line(struct login_pop3_caps *c, const char *line, size_t len)
{
	struct login_pop3_capa capa;
	const char *kw;
	size_t kwlen;

	if (login_pop3_parse_capa(line, len, &capa) == -1)
		return;
	kw = capa.keyword.s;
	kwlen = capa.keyword.len;
	if (equal_nocase_n(kw, kwlen, "SASL"))
		mechs_add_words(c->mechs, sizeof c->mechs, capa.args.s, capa.args.len);
	else if (equal_nocase_n(kw, kwlen, "LOGIN-DELAY"))
		caps_login_delay(c, capa.args);
	else if (equal_nocase_n(kw, kwlen, "IMPLEMENTATION"))
		copy_printable(c->implementation, sizeof c->implementation, capa.args.s,
		    capa.args.len);
	for (size_t i = 0; i < N(pop3_flags); i++)
		if (equal_nocase_n(kw, kwlen, pop3_flags[i].keyword))
			*(bool *)((char *)c + pop3_flags[i].offset) = true;
}

void
login_pop3_caps_init(struct login_pop3_caps *c)
{
	memset(c, 0, sizeof *c);
}

/* A bad reply offers nothing: what was gathered is cleared so that a caller
 * that forgets to check cannot act on half a list. */
static enum login_pop3_multi
caps_bad(struct login_pop3_caps *c, const char *why)
{
	memset(c, 0, sizeof *c);
	c->bad = true;
	c->why = why;
	return LOGIN_POP3_MULTI_INVALID;
}

enum login_pop3_multi
login_pop3_caps_add(struct login_pop3_caps *c, const char *line, size_t len)
{
	struct login_span body;
	const char *why;
	enum login_pop3_multi m;

	if (c->bad)
		return LOGIN_POP3_MULTI_INVALID;
	if (c->done)
		return caps_bad(c, "a line after the terminating \".\"");
	m = login_pop3_parse_multi(line, len, &body, &why);
	if (m == LOGIN_POP3_MULTI_INVALID)
		return caps_bad(c, why);
	if (m == LOGIN_POP3_MULTI_END) {
		c->done = true;
		return m;
	}
	if (c->nlines >= LOGIN_LINES_MAX)
		return caps_bad(c, "more than " STR(LOGIN_LINES_MAX) " capability lines");
	c->nlines++;
	caps_line(c, body.s, body.len);
	return m;
}

/* --- IMAP lines ------------------------------------------------------------ */

static const char *const imap_status_names[] = {
	[LOGIN_IMAP_STATUS_NONE] = "none",
	[LOGIN_IMAP_STATUS_OK] = "OK",
	[LOGIN_IMAP_STATUS_NO] = "NO",
	[LOGIN_IMAP_STATUS_BAD] = "BAD",
	[LOGIN_IMAP_STATUS_PREAUTH] = "PREAUTH",
	[LOGIN_IMAP_STATUS_BYE] = "BYE",
};

static const char *const imap_code_names[] = {
	[LOGIN_IMAP_CODE_NONE] = "none",
	[LOGIN_IMAP_CODE_ALERT] = "ALERT",
	[LOGIN_IMAP_CODE_CAPABILITY] = "CAPABILITY",
	[LOGIN_IMAP_CODE_UNAVAILABLE] = "UNAVAILABLE",
	[LOGIN_IMAP_CODE_AUTHENTICATIONFAILED] = "AUTHENTICATIONFAILED",
	[LOGIN_IMAP_CODE_AUTHORIZATIONFAILED] = "AUTHORIZATIONFAILED",
	[LOGIN_IMAP_CODE_EXPIRED] = "EXPIRED",
	[LOGIN_IMAP_CODE_PRIVACYREQUIRED] = "PRIVACYREQUIRED",
	[LOGIN_IMAP_CODE_CONTACTADMIN] = "CONTACTADMIN",
	[LOGIN_IMAP_CODE_INUSE] = "INUSE",
	[LOGIN_IMAP_CODE_LIMIT] = "LIMIT",
	[LOGIN_IMAP_CODE_SERVERBUG] = "SERVERBUG",
	[LOGIN_IMAP_CODE_CLIENTBUG] = "CLIENTBUG",
	[LOGIN_IMAP_CODE_OTHER] = "other",
};

/* RFC 9051 §9 ATOM-CHAR: CHAR but atom-specials ( ) { SP CTL % * " \ ]. */
static bool
is_atom_char(char c)
{
	return is_print(c) && strchr("(){%*\"\\]", c) == NULL;
}

static enum login_imap_status
imap_status(const char *s, size_t len)
{
	for (size_t i = LOGIN_IMAP_STATUS_OK; i < N(imap_status_names); i++)
		if (equal_nocase_n(s, len, imap_status_names[i]))
			return (enum login_imap_status)i;
	return LOGIN_IMAP_STATUS_NONE;
}

static enum login_imap_code
imap_code(const char *s, size_t len)
{
	for (size_t i = LOGIN_IMAP_CODE_ALERT; i < LOGIN_IMAP_CODE_OTHER; i++)
		if (equal_nocase_n(s, len, imap_code_names[i]))
			return (enum login_imap_code)i;
	return LOGIN_IMAP_CODE_OTHER;
}

static enum login_imap_kind
imap_invalid(struct login_imap_line *out, const char *why)
{
	memset(out, 0, sizeof *out);
	out->kind = LOGIN_IMAP_INVALID;
	out->why = why;
	return out->kind;
}

/* "[atom]" or "[atom args]" at s[0..len): fills the code and returns the
 * octets it takes with its "]", or 0 when there is none (no "]", an empty
 * or invalid atom: then the "[" is text). */
static size_t
imap_resp_code(struct login_imap_line *out, const char *s, size_t len)
{
	const char *close;
	size_t inner, atom;

	if (len < 2 || s[0] != '[' || (close = memchr(s, ']', len)) == NULL)
		return 0;
	inner = (size_t)(close - s) - 1;
	atom = word_len(s + 1, inner);
	if (atom == 0)
		return 0;
	for (size_t i = 1; i <= atom; i++)
		if (!is_atom_char(s[i]))
			return 0;
	out->code_name = span(s + 1, atom);
	out->code = imap_code(s + 1, atom);
	if (atom < inner)
		out->code_args = span(s + 2 + atom, inner - atom - 1);
	if (out->code == LOGIN_IMAP_CODE_CAPABILITY)
		out->caps = out->code_args.s != NULL ? out->code_args : span(close, 0);
	return inner + 2;
}

/* resp-text from line[i] (just after the status word): [code] text. */
static void
imap_resp_text(struct login_imap_line *out, const char *line, size_t len, size_t i)
{
	size_t code;

	i = skip_spaces(line, len, i);
	if ((code = imap_resp_code(out, line + i, len - i)) > 0)
		i = skip_spaces(line, len, i + code);
	out->text = span(line + i, len - i);
}

/* A "{n}" at the end of s[0..len): 1 (and *n), 0 none, -1 n too large. */
static int
ends_in_literal(const char *s, size_t len, size_t *n)
{
	size_t i, v = 0, start;

	*n = 0;
	if (len < 3 || s[len - 1] != '}')
		return 0;
	i = len - 1;
	while (i > 0 && is_digit(s[i - 1]))
		i--;
	if (i == 0 || i == len - 1 || s[i - 1] != '{')
		return 0;
	for (start = i; start < len - 1; start++) {
		v = v * 10 + (size_t)(s[start] - '0');
		if (v > LOGIN_IMAP_LITERAL_MAX)
			return -1;
	}
	*n = v;
	return 1;
}

int
login_imap_literal(const char *line, size_t len, size_t *n)
{
	*n = 0;
	if (line_check(line, len) != NULL)
		return -1;
	return ends_in_literal(line, len, n);
}

/* "* " and what follows: a status response or data. */
static enum login_imap_kind
imap_untagged(struct login_imap_line *out, const char *line, size_t len)
{
	size_t w, lit;
	int r;

	if (len < 3 || line[1] != ' ' || line[2] == ' ')
		return imap_invalid(out, "\"*\" not followed by a space and a response");
	w = word_len(line + 2, len - 2);
	out->kind = LOGIN_IMAP_UNTAGGED;
	if ((out->status = imap_status(line + 2, w)) != LOGIN_IMAP_STATUS_NONE) {
		imap_resp_text(out, line, len, 2 + w);
		return out->kind;
	}
	if ((r = ends_in_literal(line, len, &lit)) == -1)
		return imap_invalid(out, "a literal larger than "
		    STR(LOGIN_IMAP_LITERAL_MAX) " octets");
	out->literal = r == 1;
	out->literal_len = lit;
	out->text = span(line + 2, len - 2);
	if (equal_nocase_n(line + 2, w, "CAPABILITY")) {
		size_t list = skip_spaces(line, len, 2 + w);

		out->caps = span(line + list, len - list);
	}
	return out->kind;
}

static enum login_imap_kind
imap_continue(struct login_imap_line *out, const char *line, size_t len)
{
	if (len >= 2 && line[1] != ' ')
		return imap_invalid(out, "\"+\" not followed by a space");
	out->kind = LOGIN_IMAP_CONTINUE;
	out->text = len == 1 ? span(line + 1, 0) : span(line + 2, len - 2);
	return out->kind;
}

static enum login_imap_kind
imap_tagged(struct login_imap_line *out, const char *line, size_t len, const char *tag)
{
	size_t t = word_len(line, len), w;

	if (t == 0)
		return imap_invalid(out, "neither \"*\", \"+\" nor a tag at the start");
	if (tag == NULL)
		return imap_invalid(out, "a tagged reply while no command was sent");
	if (t != strlen(tag) || memcmp(line, tag, t) != 0)
		return imap_invalid(out, "a tagged reply with a tag that was not sent");
	if (t == len)
		return imap_invalid(out, "a tag without a status");
	w = word_len(line + t + 1, len - t - 1);
	out->status = imap_status(line + t + 1, w);
	if (out->status != LOGIN_IMAP_STATUS_OK && out->status != LOGIN_IMAP_STATUS_NO &&
	    out->status != LOGIN_IMAP_STATUS_BAD)
		return imap_invalid(out, "a tagged reply without OK, NO or BAD");
	out->kind = LOGIN_IMAP_TAGGED;
	out->tag = span(line, t);
	imap_resp_text(out, line, len, t + 1 + w);
	return out->kind;
}

enum login_imap_kind
login_imap_parse_line(const char *line, size_t len, const char *tag,
    struct login_imap_line *out)
{
	const char *why;

	memset(out, 0, sizeof *out);
	if ((why = line_check(line, len)) != NULL)
		return imap_invalid(out, why);
	if (len == 0)
		return imap_invalid(out, "empty line");
	if (line[0] == '*')
		return imap_untagged(out, line, len);
	if (line[0] == '+')
		return imap_continue(out, line, len);
	return imap_tagged(out, line, len, tag);
}

/* --- IMAP capabilities ----------------------------------------------------- */

static const struct imap_flag {
	const char *atom;
	size_t offset;          /* of a bool in struct login_imap_caps */
} imap_flags[] = {
	{ "IMAP4rev1",     offsetof(struct login_imap_caps, imap4rev1) },
	{ "IMAP4rev2",     offsetof(struct login_imap_caps, imap4rev2) },
	{ "STARTTLS",      offsetof(struct login_imap_caps, starttls) },
	{ "LOGINDISABLED", offsetof(struct login_imap_caps, logindisabled) },
	{ "SASL-IR",       offsetof(struct login_imap_caps, sasl_ir) },
};

static void
imap_caps_atom(struct login_imap_caps *caps, const char *s, size_t len)
{
	if (len > 5 && strncasecmp(s, "AUTH=", 5) == 0) {
		mech_add(caps->mechs, sizeof caps->mechs, s + 5, len - 5);
		return;
	}
	for (size_t i = 0; i < N(imap_flags); i++)
		if (equal_nocase_n(s, len, imap_flags[i].atom))
			*(bool *)((char *)caps + imap_flags[i].offset) = true;
}

void
login_imap_caps_parse(const char *list, size_t len, struct login_imap_caps *caps)
{
	size_t i = 0;

	memset(caps, 0, sizeof *caps);
	while ((i = skip_spaces(list, len, i)) < len) {
		size_t n = word_len(list + i, len - i);

		imap_caps_atom(caps, list + i, n);
		i += n;
	}
}

/* --- names ------------------------------------------------------------------ */

const char *
login_pop3_kind_name(enum login_pop3_kind k)
{
	static const char *const names[] = {
		[LOGIN_POP3_OK] = "ok", [LOGIN_POP3_ERR] = "err",
		[LOGIN_POP3_CONTINUE] = "continue", [LOGIN_POP3_INVALID] = "invalid",
	};

	return (size_t)k < N(names) ? names[k] : "?";
}

const char *
login_pop3_code_name(enum login_pop3_code c)
{
	return (size_t)c < N(pop3_code_names) ? pop3_code_names[c] : "?";
}

const char *
login_pop3_multi_name(enum login_pop3_multi m)
{
	static const char *const names[] = {
		[LOGIN_POP3_MULTI_LINE] = "line", [LOGIN_POP3_MULTI_END] = "end",
		[LOGIN_POP3_MULTI_INVALID] = "invalid",
	};

	return (size_t)m < N(names) ? names[m] : "?";
}

const char *
login_imap_kind_name(enum login_imap_kind k)
{
	static const char *const names[] = {
		[LOGIN_IMAP_UNTAGGED] = "untagged", [LOGIN_IMAP_CONTINUE] = "continue",
		[LOGIN_IMAP_TAGGED] = "tagged", [LOGIN_IMAP_INVALID] = "invalid",
	};

	return (size_t)k < N(names) ? names[k] : "?";
}

const char *
login_imap_status_name(enum login_imap_status s)
{
	return (size_t)s < N(imap_status_names) ? imap_status_names[s] : "?";
}

const char *
login_imap_code_name(enum login_imap_code c)
{
	return (size_t)c < N(imap_code_names) ? imap_code_names[c] : "?";
}
