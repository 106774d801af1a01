/* smtp_parse.c - the server-side SMTP command grammar; see smtp_parse.h.
 *
 * STANDARDS
 *	RFC 5321 §4.1.1 (commands), §4.1.2 (Path, A-d-l, Mail-parameters),
 *	§4.5.3.1.3 (256-octet path); RFC 1870 (SIZE); RFC 6152 (BODY=8BITMIME);
 *	RFC 6531 §3.4 (SMTPUTF8); RFC 3461 §4 (NOTIFY, ORCPT, RET, ENVID).
 *
 * SECURITY
 *	The line is untrusted and not NUL-terminated: every read is bounded by
 *	len.  Nothing is allocated; the path is copied into a fixed array only
 *	after its length has been checked.
 *
 * Order of checks, the first failure wins: the verb is looked up (so logs
 * can name it), NUL/CR/LF anywhere (BAD_CHAR), unknown verb, the argument
 * rule of the verb; for MAIL/RCPT: "FROM:"/"TO:", angle brackets (SYNTAX),
 * path length, parameters (BAD_PARAM), then the address itself, which needs
 * the parameters (SMTPUTF8) to be judged. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "address.h"
#include "util.h"
#include "smtp_parse.h"

#define SIZE_DIGITS_MAX 20      /* UINT64_MAX has 20 digits */

enum arg_rule {
	ARG_NONE,               /* DATA: an argument is a syntax error */
	ARG_OPTIONAL,           /* NOOP, HELP */
	ARG_REQUIRED,           /* HELO, VRFY, AUTH, ... */
	ARG_PATH,               /* MAIL FROM:<path> / RCPT TO:<path>, parameters */
};

static const struct verb_rule {
	const char *name;
	enum arg_rule arg;
	const char *usage;      /* the reply to SMTP_PARSE_SYNTAX */
} verb_rules[SMTP_VERB_COUNT] = {
	[SMTP_HELO] = { "HELO", ARG_REQUIRED, "501 5.5.4 Syntax: HELO hostname" },
	[SMTP_EHLO] = { "EHLO", ARG_REQUIRED, "501 5.5.4 Syntax: EHLO hostname" },
	[SMTP_MAIL] = { "MAIL", ARG_PATH, "501 5.5.4 Syntax: MAIL FROM:<address>"
	    " [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext]" },
	[SMTP_RCPT] = { "RCPT", ARG_PATH, "501 5.5.4 Syntax: RCPT TO:<address>"
	    " [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=addr-type;xtext]" },
	[SMTP_DATA] = { "DATA", ARG_NONE, "501 5.5.4 Syntax: DATA takes no argument" },
	[SMTP_RSET] = { "RSET", ARG_NONE, "501 5.5.4 Syntax: RSET takes no argument" },
	[SMTP_NOOP] = { "NOOP", ARG_OPTIONAL, "501 5.5.4 Syntax: NOOP [string]" },
	[SMTP_QUIT] = { "QUIT", ARG_NONE, "501 5.5.4 Syntax: QUIT takes no argument" },
	[SMTP_VRFY] = { "VRFY", ARG_REQUIRED, "501 5.5.4 Syntax: VRFY address" },
	[SMTP_EXPN] = { "EXPN", ARG_REQUIRED, "501 5.5.4 Syntax: EXPN list" },
	[SMTP_HELP] = { "HELP", ARG_OPTIONAL, "501 5.5.4 Syntax: HELP [topic]" },
	[SMTP_STARTTLS] = { "STARTTLS", ARG_NONE,
	    "501 5.5.4 Syntax: STARTTLS takes no argument" },
	[SMTP_AUTH] = { "AUTH", ARG_REQUIRED,
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	[SMTP_BDAT] = { "BDAT", ARG_REQUIRED, "501 5.5.4 Syntax: BDAT size [LAST]" },
};

#define VERB_BIT(v) (1u << (v))

/* A MAIL/RCPT parameter.  value is NULL for "KEYWORD" without "=";
 * otherwise it is 1*(%d33-60 / %d62-126) (checked before apply). */
struct param_rule {
	const char *keyword;
	unsigned verbs;         /* VERB_BIT(SMTP_MAIL) | ... */
	enum smtp_parse_result (*apply)(struct smtp_cmd *, const char *value, size_t len);
};

/* --- helpers -------------------------------------------------------------- */

static bool
is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* --- parameters (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters) ------- */

static enum smtp_parse_result
param_size(struct smtp_cmd *cmd, const char *value, size_t len)
{
	uint64_t n = 0;
	size_t i;

	if (value == NULL || len > SIZE_DIGITS_MAX)
		return SMTP_PARSE_BAD_PARAM;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (value[i] < '0' || value[i] > '9')
			return SMTP_PARSE_BAD_PARAM;
		d = (unsigned)(value[i] - '0');
		/* RFC 1870 allows 20 digits, more than 64 bits hold: such a size
		 * is simply bigger than any limit (552 from the session). */
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	cmd->has_size = true;
	cmd->size = n;
	return SMTP_PARSE_OK;
}

/* BINARYMIME (RFC 3030) needs CHUNKING, which is not offered: refused. */
static enum smtp_parse_result
param_body(struct smtp_cmd *cmd, const char *value, size_t len)
{
	if (value != NULL && equal_nocase(value, len, "7BIT"))
		cmd->body = SMTP_BODY_7BIT;
	else if (value != NULL && equal_nocase(value, len, "8BITMIME"))
		cmd->body = SMTP_BODY_8BITMIME;
	else
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_result
param_smtputf8(struct smtp_cmd *cmd, const char *value, size_t len)
{
	(void)len;
	if (value != NULL)
		return SMTP_PARSE_BAD_PARAM;
	cmd->smtputf8 = true;
	return SMTP_PARSE_OK;
}

/* DSN (RFC 3461 §4.3-§4.4): RET=FULL|HDRS, ENVID=xtext. */
static enum smtp_parse_result
param_ret(struct smtp_cmd *cmd, const char *value, size_t len)
{
	if (value != NULL && equal_nocase(value, len, "FULL"))
		cmd->ret = DSN_RET_FULL;
	else if (value != NULL && equal_nocase(value, len, "HDRS"))
		cmd->ret = DSN_RET_HDRS;
	else
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_result
param_envid(struct smtp_cmd *cmd, const char *value, size_t len)
{
	if (value == NULL || len > DSN_ENVID_MAX || !dsn_xtext_check(value, len))
		return SMTP_PARSE_BAD_PARAM;
	memcpy(cmd->envid, value, len);
	cmd->envid[len] = '\0';
	return SMTP_PARSE_OK;
}

/* DSN (RFC 3461 §4.1-§4.2): NOTIFY=..., ORCPT=addr-type;xtext. */
static enum smtp_parse_result
param_notify(struct smtp_cmd *cmd, const char *value, size_t len)
{
	if (value == NULL || dsn_notify_parse(value, len, &cmd->notify) < 0)
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_result
param_orcpt(struct smtp_cmd *cmd, const char *value, size_t len)
{
	if (value == NULL || !dsn_orcpt_check(value, len))
		return SMTP_PARSE_BAD_PARAM;
	memcpy(cmd->orcpt, value, len);         /* len <= DSN_ORCPT_MAX */
	cmd->orcpt[len] = '\0';
	return SMTP_PARSE_OK;
}

static const struct param_rule param_rules[] = {
	{ "SIZE",     VERB_BIT(SMTP_MAIL), param_size },
	{ "BODY",     VERB_BIT(SMTP_MAIL), param_body },
	{ "SMTPUTF8", VERB_BIT(SMTP_MAIL), param_smtputf8 },
	{ "RET",      VERB_BIT(SMTP_MAIL), param_ret },
	{ "ENVID",    VERB_BIT(SMTP_MAIL), param_envid },
	{ "NOTIFY",   VERB_BIT(SMTP_RCPT), param_notify },
	{ "ORCPT",    VERB_BIT(SMTP_RCPT), param_orcpt },
};
#define PARAM_RULES (sizeof param_rules / sizeof param_rules[0])

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
is_keyword(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < len; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126) */
static bool
is_value(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 33 || s[i] > 126 || s[i] == '=')
			return false;
	return true;
}

/* One "keyword[=value]" token; *seen holds the rules already used, since a
 * parameter given twice is as malformed as one given wrong. */
static enum smtp_parse_result
parse_param(struct smtp_cmd *cmd, const char *tok, size_t len, unsigned *seen)
{
	const char *eq = memchr(tok, '=', len);
	size_t klen = eq != NULL ? (size_t)(eq - tok) : len;
	const char *value = eq != NULL ? eq + 1 : NULL;
	size_t vlen = eq != NULL ? len - klen - 1 : 0;
	size_t i;

	if (!is_keyword(tok, klen) || (value != NULL && !is_value(value, vlen)))
		return SMTP_PARSE_BAD_PARAM;
	for (i = 0; i < PARAM_RULES; i++) {
		if (!(param_rules[i].verbs & VERB_BIT(cmd->verb)) ||
		    !equal_nocase(tok, klen, param_rules[i].keyword))
			continue;
		if (*seen & (1u << i))
			return SMTP_PARSE_BAD_PARAM;
		*seen |= 1u << i;
		return param_rules[i].apply(cmd, value, vlen);
	}
	return SMTP_PARSE_BAD_PARAM;
}

/* Space-separated parameters after the path; s[0..len) is empty or starts
 * with a space.  Runs of spaces between parameters are tolerated. */
static enum smtp_parse_result
parse_params(struct smtp_cmd *cmd, const char *s, size_t len)
{
	enum smtp_parse_result r;
	unsigned seen = 0;
	size_t i = 0, start;

	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return SMTP_PARSE_OK;
		for (start = i; i < len && s[i] != ' '; i++)
			;
		if ((r = parse_param(cmd, s + start, i - start, &seen)) != SMTP_PARSE_OK)
			return r;
	}
}

/* --- path ----------------------------------------------------------------- */

/* Offset of the '>' closing the path that starts at s[0] == '<', or len.
 * A quoted local part may hold '>' and '\"'. */
static size_t
path_end(const char *s, size_t len)
{
	bool quoted = false;
	size_t i;

	for (i = 1; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == '>' && !quoted)
			return i;
	}
	return len;
}

/* A-d-l ":" before the mailbox (RFC 5321 §4.1.2: "@a,@b:"); *s and *len
 * move past it.  At-domain is a Domain, never an address literal.  The route
 * is checked and then ignored, as RFC 5321 §4.1.1.3 and appendix C allow.
 * Returns ADDRESS_OK, or why a domain failed (ADDRESS_BAD_DOMAIN when the
 * route itself is malformed). */
static enum address_result
skip_source_route(const char **s, size_t *len, unsigned flags)
{
	const char *p = *s;
	enum address_result r;
	size_t n = *len, i;

	for (;;) {
		if (n == 0 || p[0] != '@')
			return ADDRESS_BAD_DOMAIN;
		for (i = 1; i < n && p[i] != ',' && p[i] != ':'; i++)
			;
		if (i == n || i == 1 || p[1] == '[')
			return ADDRESS_BAD_DOMAIN;
		if ((r = address_check_domain(p + 1, i - 1, flags)) != ADDRESS_OK)
			return r;
		p += i + 1;
		n -= i + 1;
		if (p[-1] == ':')
			break;
	}
	*s = p;
	*len = n;
	return ADDRESS_OK;
}

static enum smtp_parse_result
path_result(enum address_result r, enum smtp_verb verb)
{
	switch (r) {
	case ADDRESS_OK:
		return SMTP_PARSE_OK;
	case ADDRESS_EMPTY:             /* MAIL FROM:<>, the null reverse-path */
		return verb == SMTP_MAIL ? SMTP_PARSE_OK : SMTP_PARSE_BAD_PATH;
	case ADDRESS_TOO_LONG:
		return SMTP_PARSE_PATH_TOO_LONG;
	case ADDRESS_NEEDS_UTF8:
		return SMTP_PARSE_NEEDS_UTF8;
	default:
		return SMTP_PARSE_BAD_PATH;
	}
}

/* The mailbox between the angle brackets: drop a source route, copy it to
 * cmd->path, check it.  RCPT cannot know whether MAIL had SMTPUTF8, so it
 * allows UTF-8 here and leaves that check to the session. */
static enum smtp_parse_result
check_path(struct smtp_cmd *cmd, const char *s, size_t len)
{
	unsigned flags;

	if (cmd->verb == SMTP_MAIL)
		flags = cmd->smtputf8 ? ADDRESS_ALLOW_UTF8 : 0;
	else
		flags = ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_POSTMASTER;
	if (len > 0 && s[0] == '@') {
		enum address_result r = skip_source_route(&s, &len, flags);

		if (r != ADDRESS_OK)
			return path_result(r, cmd->verb);
		if (len == 0)           /* a route needs a mailbox: "<@a:>" */
			return SMTP_PARSE_BAD_PATH;
	}
	memcpy(cmd->path, s, len);      /* len <= SMTP_PATH_MAX - 2 */
	cmd->path[len] = '\0';
	return path_result(address_check(s, len, flags), cmd->verb);
}

/* "FROM:<path> [params]" / "TO:<path> [params]"; one space after the colon
 * is tolerated (common clients send it), a path without <> is not. */
static enum smtp_parse_result
parse_path_command(struct smtp_cmd *cmd)
{
	const char *prefix = cmd->verb == SMTP_MAIL ? "FROM:" : "TO:";
	size_t plen = strlen(prefix), n = cmd->arg_len, end;
	const char *p = cmd->arg;
	enum smtp_parse_result r;

	if (p == NULL || n < plen || !equal_nocase(p, plen, prefix))
		return SMTP_PARSE_SYNTAX;
	p += plen;
	n -= plen;
	if (n > 0 && p[0] == ' ') {
		p++;
		n--;
	}
	if (n == 0 || p[0] != '<' || (end = path_end(p, n)) == n)
		return SMTP_PARSE_SYNTAX;
	if (end + 1 > SMTP_PATH_MAX)
		return SMTP_PARSE_PATH_TOO_LONG;
	if (end + 1 < n && p[end + 1] != ' ')
		return SMTP_PARSE_SYNTAX;
	r = parse_params(cmd, p + end + 1, n - end - 1);
	if (r != SMTP_PARSE_OK)
		return r;
	return check_path(cmd, p + 1, end - 1);
}

/* --- command -------------------------------------------------------------- */

/* arg = after the verb and one space, trailing spaces stripped; NULL when
 * that leaves nothing.  rest[0..len) is empty or starts with a space. */
static void
set_arg(struct smtp_cmd *cmd, const char *rest, size_t len)
{
	if (len == 0)
		return;
	rest++;
	len--;
	while (len > 0 && rest[len - 1] == ' ')
		len--;
	if (len > 0) {
		cmd->arg = rest;
		cmd->arg_len = len;
	}
}

enum smtp_parse_result
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	const struct verb_rule *rule = NULL;
	size_t vlen, i;

	memset(cmd, 0, sizeof *cmd);
	cmd->verb = SMTP_VERB_COUNT;
	cmd->body = SMTP_BODY_7BIT;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < SMTP_VERB_COUNT; i++) {
		if (equal_nocase(line, vlen, verb_rules[i].name)) {
			rule = &verb_rules[i];
			cmd->verb = (enum smtp_verb)i;
			break;
		}
	}
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return SMTP_PARSE_BAD_CHAR;
	if (rule == NULL)
		return SMTP_PARSE_UNKNOWN;
	set_arg(cmd, line + vlen, len - vlen);
	switch (rule->arg) {
	case ARG_NONE:
		return cmd->arg == NULL ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	case ARG_OPTIONAL:
		return SMTP_PARSE_OK;
	case ARG_REQUIRED:
		return cmd->arg != NULL ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	case ARG_PATH:
		return parse_path_command(cmd);
	}
	return SMTP_PARSE_SYNTAX;
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT)
		return "?";
	return verb_rules[verb].name;
}

const char *
smtp_parse_result_name(enum smtp_parse_result r)
{
	static const char *const names[SMTP_PARSE_RESULT_COUNT] = {
		[SMTP_PARSE_OK]            = "SMTP_PARSE_OK",
		[SMTP_PARSE_UNKNOWN]       = "SMTP_PARSE_UNKNOWN",
		[SMTP_PARSE_BAD_CHAR]      = "SMTP_PARSE_BAD_CHAR",
		[SMTP_PARSE_SYNTAX]        = "SMTP_PARSE_SYNTAX",
		[SMTP_PARSE_BAD_PATH]      = "SMTP_PARSE_BAD_PATH",
		[SMTP_PARSE_PATH_TOO_LONG] = "SMTP_PARSE_PATH_TOO_LONG",
		[SMTP_PARSE_NEEDS_UTF8]    = "SMTP_PARSE_NEEDS_UTF8",
		[SMTP_PARSE_BAD_PARAM]     = "SMTP_PARSE_BAD_PARAM",
	};

	if ((unsigned)r >= SMTP_PARSE_RESULT_COUNT)
		return "SMTP_PARSE_?";
	return names[r];
}

const char *
smtp_parse_error_reply(enum smtp_parse_result r, const struct smtp_cmd *cmd)
{
	enum smtp_verb verb = cmd != NULL ? cmd->verb : SMTP_VERB_COUNT;

	switch (r) {
	case SMTP_PARSE_OK:
	case SMTP_PARSE_RESULT_COUNT:
		break;
	case SMTP_PARSE_UNKNOWN:
		return "500 5.5.1 Command unrecognized";
	case SMTP_PARSE_BAD_CHAR:
		return "500 5.5.2 NUL, CR or LF in command line";
	case SMTP_PARSE_SYNTAX:
		if ((unsigned)verb < SMTP_VERB_COUNT)
			return verb_rules[verb].usage;
		return "501 5.5.4 Syntax error";
	case SMTP_PARSE_BAD_PATH:
		if (verb == SMTP_MAIL)
			return "501 5.1.7 Bad sender address syntax";
		return "501 5.1.3 Bad recipient address syntax";
	case SMTP_PARSE_PATH_TOO_LONG:
		return "501 5.1.3 Path too long";
	case SMTP_PARSE_NEEDS_UTF8:
		return "553 5.6.7 Non-ASCII address requires SMTPUTF8";
	case SMTP_PARSE_BAD_PARAM:
		if (verb == SMTP_MAIL)
			return "555 5.5.4 Unsupported or malformed MAIL FROM parameter";
		return "555 5.5.4 Unsupported or malformed RCPT TO parameter";
	}
	return NULL;
}
