/* smtp_reply.c - SMTP replies and EHLO keywords as a client reads them; see
 * smtp_reply.h.
 *
 * STANDARDS
 *	RFC 5321 §4.2 (Reply-line: three digits, then SP or "-", the last line
 *	may be the code alone), §4.2.1 (every line of a reply has the same
 *	code); RFC 3463 §2 / RFC 2034 (enhanced status codes, class 2/4/5,
 *	subject and detail of 1..3 digits); RFC 1869 §4.3 (EHLO keywords);
 *	RFC 1870 (SIZE), RFC 4954 (AUTH, and the pre-standard "AUTH=" line
 *	that old Microsoft servers still send), RFC 4422 §3.1 (mechanism names).
 *
 * SECURITY
 *	Every line is untrusted and not NUL-terminated: reads are bounded by
 *	len.  Results are fixed arrays; text is cut, never overflowed.  NUL and
 *	LF inside a line (which the framing layer should not let through) are
 *	stored as '?' so that the text stays a C string of '\n'-separated lines.
 *
 * The code and the separator are checked before anything is stored; a bad
 * line makes the whole reply bad (a temporary failure for the caller, PRODUCT.md
 * §3) and replaces the text with that line so the log can show it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

#define ENHANCED_MAX 9          /* "5.999.999" */

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof *r);
}

/* --- one line ------------------------------------------------------------- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "250", "250 text" or "250-text": the code (200..599), or -1. */
static int
parse_code(const char *line, size_t len)
{
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
		return -1;
	if (line[0] < '2' || line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* 1..3 digits at s[*i]; advances *i. */
static bool
skip_digits(const char *s, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len && *i - start < 3 && is_digit(s[*i]))
		(*i)++;
	return *i > start;
}

/* An enhanced code "c.d.d" at the start of s (class c matching the reply's),
 * ending at the end of s or at a space.  Copies it to out (size >= 16) and
 * returns how many octets to skip (with one following space), or 0. */
static size_t
parse_enhanced(const char *s, size_t len, int code, char *out)
{
	size_t i = 2;

	if (code / 100 == 3 || len < 5 || s[0] != (char)('0' + code / 100) || s[1] != '.')
		return 0;           /* RFC 3463: classes 2, 4 and 5 only */
	if (!skip_digits(s, len, &i) || i >= len || s[i] != '.')
		return 0;
	i++;
	if (!skip_digits(s, len, &i) || (i < len && s[i] != ' '))
		return 0;
	memcpy(out, s, i);
	out[i] = '\0';
	return i < len ? i + 1 : i;
}

/* Append n octets (or, with sep, '\n' first) to the text; cut at a UTF-8
 * boundary when full, and append nothing after a cut. */
static void
text_append(struct smtp_reply *r, const char *s, size_t n, bool sep)
{
	size_t used = strlen(r->text), room;

	if (r->cut)
		return;
	room = sizeof r->text - 1 - used;
	if (sep) {
		if (room == 0) {
			r->cut = true;
			return;
		}
		r->text[used++] = '\n';
		room--;
	}
	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;        /* s[n] continues a character: cut before it starts */
		r->cut = true;
	}
	for (size_t i = 0; i < n; i++)
		r->text[used + i] = s[i] == '\0' || s[i] == '\n' ? '?' : s[i];
	r->text[used + n] = '\0';
}

static enum smtp_reply_add
reply_bad(struct smtp_reply *r, const char *why, const char *line, size_t len)
{
	r->bad = true;
	r->done = false;
	r->why = why;
	r->code = 0;
	r->enhanced[0] = '\0';
	r->text[0] = '\0';
	r->cut = false;
	text_append(r, line, len, false);
	return SMTP_REPLY_BAD;
}

enum smtp_reply_add
smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len)
{
	const char *text;
	size_t tlen, skip;
	char enhanced[16];
	int code;

	if (r->bad)
		return SMTP_REPLY_BAD;
	if (r->done)
		return reply_bad(r, "a line after the last one", line, len);
	if ((code = parse_code(line, len)) == -1)
		return reply_bad(r, "not a reply code of 200..599 followed by a space or '-'",
		    line, len);
	if (r->nlines > 0 && code != r->code)
		return reply_bad(r, "the code changed within the reply", line, len);
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return reply_bad(r, "too many lines", line, len);

	text = len > 4 ? line + 4 : line + len;
	tlen = len > 4 ? len - 4 : 0;
	if ((skip = parse_enhanced(text, tlen, code, enhanced)) > 0 &&
	    (r->nlines == 0 || strcmp(enhanced, r->enhanced) == 0)) {
		if (r->nlines == 0)
			memcpy(r->enhanced, enhanced, sizeof r->enhanced);
		text += skip;
		tlen -= skip;
	}
	r->code = code;
	text_append(r, text, tlen, r->nlines > 0);
	r->nlines++;
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	r->done = true;
	return SMTP_REPLY_DONE;
}

/* --- summary -------------------------------------------------------------- */

struct out {
	char *buf;
	size_t size, len;
	bool full;
};

static void
out_char(struct out *o, char c)
{
	if (o->full || o->len + 1 >= o->size) {
		o->full = true;
		return;
	}
	o->buf[o->len++] = c;
}

/* Copy s with '\n' as a space and other control characters as '?'. */
static void
out_text(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		out_char(o, c == '\n' ? ' ' : c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

/* The length of s[0..len) without a UTF-8 sequence cut short at its end. */
static size_t
utf8_trim(const char *s, size_t len)
{
	size_t k = len, need;
	unsigned char lead;

	while (k > 0 && len - k < 3 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
		k--;
	if (k == 0)
		return len;
	lead = (unsigned char)s[k - 1];
	need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
	return k - 1 + need > len ? k - 1 : len;
}

char *
smtp_reply_summary(const struct smtp_reply *r, char *buf, size_t size)
{
	struct out o = { buf, size, 0, false };
	char head[128];

	if (size == 0)
		return buf;
	if (r->bad)
		snprintf(head, sizeof head, "malformed reply (%s): ", r->why ? r->why : "?");
	else if (r->code == 0)
		snprintf(head, sizeof head, "no reply");
	else
		snprintf(head, sizeof head, "%d%s%s%s", r->code, r->enhanced[0] ? " " : "",
		    r->enhanced, r->text[0] && !r->bad ? " " : "");
	out_text(&o, head);
	out_text(&o, r->text);
	if (o.full)
		o.len = utf8_trim(buf, o.len);
	buf[o.len] = '\0';
	return buf;
}

/* --- EHLO keywords -------------------------------------------------------- */

static const struct caps_flag {
	const char *keyword;
	size_t offset;          /* of a bool in struct smtp_caps */
} caps_flags[] = {
	{ "PIPELINING",          offsetof(struct smtp_caps, pipelining) },
	{ "STARTTLS",            offsetof(struct smtp_caps, starttls) },
	{ "8BITMIME",            offsetof(struct smtp_caps, eightbitmime) },
	{ "SMTPUTF8",            offsetof(struct smtp_caps, smtputf8) },
	{ "DSN",                 offsetof(struct smtp_caps, dsn) },
	{ "ENHANCEDSTATUSCODES", offsetof(struct smtp_caps, enhancedstatuscodes) },
	{ "CHUNKING",            offsetof(struct smtp_caps, chunking) },
};

static bool
keyword_is(const char *s, size_t len, const char *kw)
{
	return strlen(kw) == len && strncasecmp(s, kw, len) == 0;
}

/* "SIZE" [SP number]: no number, 0, garbage or beyond 64 bits = no limit. */
static void
caps_size(struct smtp_caps *caps, const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;

	caps->has_size = true;
	caps->size = 0;
	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return;
	for (; i < len; i++) {
		if (!is_digit(s[i]) || v > (UINT64_MAX - 9) / 10)
			return;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	caps->size = v;
}

static bool
mech_listed(const char *list, const char *mech, size_t len)
{
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (n == len && memcmp(p, mech, len) == 0)
			return true;
		p += n;
		p += *p == ' ';
	}
	return false;
}

/* One mechanism name: upper-cased, [A-Z0-9-_], 1..20 octets; added once. */
static void
caps_mech(struct smtp_caps *caps, const char *s, size_t len)
{
	char mech[SMTP_AUTH_MECH_LEN_MAX + 1];
	size_t used;

	if (len == 0 || len > SMTP_AUTH_MECH_LEN_MAX)
		return;
	for (size_t i = 0; i < len; i++) {
		char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];

		if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_'))
			return;
		mech[i] = c;
	}
	mech[len] = '\0';
	if (mech_listed(caps->auth, mech, len))
		return;
	used = strlen(caps->auth);
	if (used + (used > 0) + len + 1 > sizeof caps->auth)
		return;
	if (used > 0)
		caps->auth[used++] = ' ';
	memcpy(caps->auth + used, mech, len + 1);
}

static void
caps_auth(struct smtp_caps *caps, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start;

		while (i < len && s[i] == ' ')
			i++;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		caps_mech(caps, s + start, i - start);
	}
}

static void
caps_line(struct smtp_caps *caps, const char *s, size_t len)
{
	size_t kw = 0;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	while (kw < len && s[kw] != ' ' && s[kw] != '=')
		kw++;
	if (kw < len && s[kw] == '=' && !keyword_is(s, kw, "AUTH"))
		return;             /* "KEY=..." is only the old AUTH form */
	if (keyword_is(s, kw, "AUTH")) {
		caps_auth(caps, s + kw + (kw < len), len - kw - (kw < len));
		return;
	}
	if (keyword_is(s, kw, "SIZE")) {
		caps_size(caps, s + kw, len - kw);
		return;
	}
	for (size_t i = 0; i < sizeof caps_flags / sizeof caps_flags[0]; i++)
		if (keyword_is(s, kw, caps_flags[i].keyword))
			*(bool *)((char *)caps + caps_flags[i].offset) = true;
}

void
smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *caps)
{
	const char *p;

	memset(caps, 0, sizeof *caps);
	if (ehlo->bad || ehlo->code / 100 != 2)
		return;
	if ((p = strchr(ehlo->text, '\n')) == NULL)
		return;             /* the greeting line alone: nothing offered */
	for (p++; *p != '\0';) {
		size_t n = strcspn(p, "\n");

		caps_line(caps, p, n);
		p += n;
		p += *p == '\n';
	}
}

/* --- relay denied --------------------------------------------------------- */

/* Phrases gateways use when the client may not relay through them
 * (Postfix "Relay access denied", Exim "relay not permitted", Sendmail
 * "Relaying denied", Exchange "Client was not authenticated"...). */
static const char *const relay_phrases[] = {
	"relay",                /* relay, relaying, Relay access denied */
	"access denied",
	"not permitted",
	"not authenticated",
	"authentication required",
};

bool
smtp_reply_means_relay_denied(const struct smtp_reply *r)
{
	if (r->bad || r->code < 400)
		return false;
	if (strcmp(r->enhanced, "5.7.1") == 0 || strcmp(r->enhanced, "4.7.1") == 0)
		return true;
	for (size_t i = 0; i < sizeof relay_phrases / sizeof relay_phrases[0]; i++)
		if (strcasestr(r->text, relay_phrases[i]) != NULL)
			return true;
	return false;
}
