/* envelope.c - the envelope file: "key value" lines <-> struct envelope
 * (envelope.h; mailredir.8, SPOOL).
 *
 * SECURITY
 *	Envelope files are input: a spool file may be damaged or edited by
 *	hand, and a maildrop file is written by any local user.  The parser
 *	trusts nothing: only known keys, numbers in canonical decimal and in
 *	range, addresses that pass address_check(), no control characters in
 *	values, at most ENVELOPE_VALUE_MAX octets per value and
 *	ENVELOPE_RCPTS_MAX recipients.  The formatter never writes what the
 *	parser would refuse (except an invalid address put there by a caller),
 *	so a stored message always reads back.
 *
 * Pure: no I/O, no logging, no clock. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "envelope.h"
#include "util.h"

enum key {
	KEY_VERSION, KEY_ID, KEY_CREATED, KEY_SENDER, KEY_ORIGIN, KEY_CLIENT_ADDR,
	KEY_CLIENT_NAME, KEY_HELO, KEY_UID, KEY_SIZE, KEY_BODY, KEY_SMTPUTF8,
	KEY_ATTEMPTS, KEY_NEXT_TRY, KEY_LAST_TRY, KEY_LAST_REPLY,
	KEY_RET, KEY_ENVID, KEY_ROUTE, KEY_DELAY_WARNED,
	KEY_RCPT, KEY_RCPT_STATUS, KEY_RCPT_ROUTE, KEY_RCPT_REPLY,
	KEY_RCPT_NOTIFY, KEY_RCPT_ORCPT, KEY_CONTENT_SHA256,
	KEY_COUNT
};

#define KEY_REQUIRED (1u << 0)   /* must appear (rcpt: at least once) */
#define KEY_REPEATS  (1u << 1)   /* may appear more than once */
#define KEY_PER_RCPT (1u << 2)   /* applies to the preceding rcpt, once each */

static const struct key_rule {
	const char *name;
	unsigned flags;
} key_rules[KEY_COUNT] = {
	[KEY_VERSION]     = { "version",     KEY_REQUIRED },
	[KEY_ID]          = { "id",          KEY_REQUIRED },
	[KEY_CREATED]     = { "created",     KEY_REQUIRED },
	[KEY_SENDER]      = { "sender",      KEY_REQUIRED },
	[KEY_ORIGIN]      = { "origin",      0 },
	[KEY_CLIENT_ADDR] = { "client-addr", 0 },
	[KEY_CLIENT_NAME] = { "client-name", 0 },
	[KEY_HELO]        = { "helo",        0 },
	[KEY_UID]         = { "uid",         0 },
	[KEY_SIZE]        = { "size",        0 },
	[KEY_BODY]        = { "body",        0 },
	[KEY_SMTPUTF8]    = { "smtputf8",    0 },
	[KEY_ATTEMPTS]    = { "attempts",    0 },
	[KEY_NEXT_TRY]    = { "next-try",    0 },
	[KEY_LAST_TRY]    = { "last-try",    0 },
	[KEY_LAST_REPLY]  = { "last-reply",  0 },
	[KEY_RET]         = { "ret",         0 },
	[KEY_ENVID]       = { "envid",       0 },
	[KEY_ROUTE]       = { "route",       0 },
	[KEY_DELAY_WARNED] = { "delay-warned", 0 },
	[KEY_RCPT]        = { "rcpt",        KEY_REQUIRED | KEY_REPEATS },
	[KEY_RCPT_STATUS] = { "rcpt-status", KEY_PER_RCPT },
	[KEY_RCPT_ROUTE]  = { "rcpt-route",  KEY_PER_RCPT },
	[KEY_RCPT_REPLY]  = { "rcpt-reply",  KEY_PER_RCPT },
	[KEY_RCPT_NOTIFY] = { "rcpt-notify", KEY_PER_RCPT },
	[KEY_RCPT_ORCPT]  = { "rcpt-orcpt",  KEY_PER_RCPT },
	[KEY_CONTENT_SHA256] = { "content-sha256", 0 },
};

static const char *const status_names[] = {
	[RCPT_PENDING] = "pending", [RCPT_SENT] = "sent",
	[RCPT_DEFERRED] = "deferred", [RCPT_FAILED] = "failed",
};
static const char *const origin_names[] = { [ORIGIN_SMTP] = "smtp", [ORIGIN_SENDMAIL] = "sendmail" };
static const char *const body_names[] = { [BODY_7BIT] = "7bit", [BODY_8BITMIME] = "8bitmime" };
static const char *const ret_names[] = { [DSN_RET_NONE] = "", [DSN_RET_FULL] = "full",
	[DSN_RET_HDRS] = "hdrs" };
static const char *const yes_no[] = { "no", "yes" };

#define NELEM(a) (sizeof (a) / sizeof (a)[0])
#define UID_MAX_VALUE 4294967294u   /* (uid_t)-1 is not a user */

/* --- the struct ----------------------------------------------------------- */

void
envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof *env);
	env->origin = ORIGIN_SMTP;
	env->uid = -1;
	env->body = BODY_7BIT;
}

void
envelope_clear(struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].route);
		free(env->rcpts[i].reply);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->client_addr);
	free(env->client_name);
	free(env->helo);
	free(env->last_reply);
	free(env->envid);
	free(env->route);
	envelope_init(env);
}

static struct envelope_rcpt *
add_rcpt(struct envelope *env, char *address)
{
	struct envelope_rcpt *r;

	env->rcpts = xgrow(env->rcpts, &env->rcpts_cap, env->nrcpts, sizeof *env->rcpts);
	r = &env->rcpts[env->nrcpts++];
	r->address = address;
	r->status = RCPT_PENDING;
	r->route = NULL;
	r->reply = NULL;
	r->notify = 0;
	r->orcpt = NULL;
	return r;
}

struct envelope_rcpt *
envelope_add_rcpt(struct envelope *env, const char *address)
{
	return add_rcpt(env, xstrdup(address));
}

const char *
rcpt_status_name(enum rcpt_status status)
{
	if ((size_t)status < NELEM(status_names))
		return status_names[status];
	return "unknown";
}

static int
name_index(const char *const *names, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return (int)i;
	return -1;
}

int
rcpt_status_parse(const char *s)
{
	return name_index(status_names, NELEM(status_names), s, strlen(s));
}

const char *
envelope_queue_state(const struct envelope *env)
{
	if (env->attempts > 0)
		return "deferred";
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].status == RCPT_DEFERRED)
			return "deferred";
	return "queued";
}

/* --- parsing -------------------------------------------------------------- */

struct parser {
	struct envelope *env;
	unsigned line;
	uint32_t seen;            /* 1 << key for every key met */
	uint32_t rcpt_seen;       /* the same for the current recipient */
	unsigned eight_bit_line;  /* first line with an 8-bit address; 0 = none */
};

static int
line_err(const struct parser *p, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
line_err(const struct parser *p, struct err *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return err_set(err, "line %u: %s", p->line, what);
}

/* A key from the file, fit for an error message: printable ASCII, short. */
static void
printable_key(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[n] = '\0';
}

/* Canonical decimal: digits only, no leading zero (except "0"), <= max. */
static bool
parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static int
parse_number(struct parser *p, enum key key, const char *v, size_t len, struct err *err)
{
	struct envelope *env = p->env;
	uint64_t n;

	if (key == KEY_UID && len == 2 && memcmp(v, "-1", 2) == 0) {
		env->uid = -1;
		return 0;
	}
	switch (key) {
	case KEY_UID:
		if (!parse_u64(v, len, UID_MAX_VALUE, &n))
			break;
		env->uid = (long)n;
		return 0;
	case KEY_SIZE:
		if (!parse_u64(v, len, UINT64_MAX, &n))
			break;
		env->size = n;
		return 0;
	case KEY_ATTEMPTS:
		if (!parse_u64(v, len, UINT_MAX, &n))
			break;
		env->attempts = (unsigned)n;
		return 0;
	default:
		if (!parse_u64(v, len, INT64_MAX, &n))
			break;
		if (key == KEY_CREATED)
			env->created = (int64_t)n;
		else if (key == KEY_NEXT_TRY)
			env->next_try = (int64_t)n;
		else
			env->last_try = (int64_t)n;
		return 0;
	}
	return line_err(p, err, "bad %s value", key_rules[key].name);
}

static int
parse_address(struct parser *p, enum key key, const char *v, size_t len, char **out,
    struct err *err)
{
	unsigned flags = ADDRESS_ALLOW_UTF8;
	enum address_result r;

	if (key == KEY_SENDER && len == 2 && memcmp(v, "<>", 2) == 0) {
		*out = xstrdup("");
		return 0;
	}
	if (key == KEY_RCPT)
		flags |= ADDRESS_ALLOW_POSTMASTER;
	r = address_check(v, len, flags);
	if (r != ADDRESS_OK)
		return line_err(p, err, "bad %s address: %s", key_rules[key].name,
		    address_result_text(r));
	/* Whether UTF-8 is allowed depends on smtputf8, which may come later:
	 * remember the first 8-bit address and decide at the end. */
	for (size_t i = 0; i < len && p->eight_bit_line == 0; i++)
		if ((unsigned char)v[i] >= 0x80)
			p->eight_bit_line = p->line;
	*out = xstrndup(v, len);
	return 0;
}

static int
parse_name(struct parser *p, enum key key, const char *const *names, size_t n,
    const char *v, size_t len, int *out, struct err *err)
{
	int i = name_index(names, n, v, len);

	if (i < 0)
		return line_err(p, err, "bad %s value", key_rules[key].name);
	*out = i;
	return 0;
}

static bool
is_route_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '_' || c == '-';
}

/* Hex digits only, letters in one case: from 'A' or from 'a'. */
static bool
all_hex(const char *v, size_t len, char a)
{
	for (size_t k = 0; k < len; k++)
		if (!((v[k] >= '0' && v[k] <= '9') || (v[k] >= a && v[k] <= a + 5)))
			return false;
	return true;
}

/* [A-Za-z0-9._-]+, as config.c allows in "[route NAME]". */
static bool
route_name_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_route_char((unsigned char)s[i]))
			return false;
	return len > 0;
}

/* NOTIFY in the envelope: lower case only (like every other keyword here),
 * otherwise the grammar of the SMTP parameter. */
static bool
parse_notify(const char *v, size_t len, unsigned *bits)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] >= 'A' && v[i] <= 'Z')
			return false;
	return dsn_notify_parse(v, len, bits) == 0;
}

/* The RFC 3461 keys and route, checked as strictly as smtp_parse checks
 * the parameters they come from: a DSN built from them must not carry
 * what the client could not have sent. */
static int
parse_dsn_value(struct parser *p, enum key key, const char *v, size_t len, struct err *err)
{
	struct envelope *env = p->env;
	struct envelope_rcpt *r = env->nrcpts ? &env->rcpts[env->nrcpts - 1] : NULL;
	int i;

	switch (key) {
	case KEY_RET:
		if (parse_name(p, key, ret_names + 1, NELEM(ret_names) - 1, v, len, &i, err) < 0)
			return -1;
		env->ret = (enum dsn_ret)(i + 1);
		return 0;
	case KEY_DELAY_WARNED:
		if (parse_name(p, key, yes_no, NELEM(yes_no), v, len, &i, err) < 0)
			return -1;
		env->delay_warned = i == 1;
		return 0;
	case KEY_ENVID:
		if (len == 0 || len > DSN_ENVID_MAX || !dsn_xtext_check(v, len))
			break;
		env->envid = xstrndup(v, len);
		return 0;
	case KEY_ROUTE:
		if (!route_name_ok(v, len))
			break;
		env->route = xstrndup(v, len);
		return 0;
	case KEY_RCPT_NOTIFY:
		if (!parse_notify(v, len, &r->notify))
			break;
		return 0;
	case KEY_RCPT_ORCPT:
		if (!dsn_orcpt_check(v, len))
			break;
		r->orcpt = xstrndup(v, len);
		return 0;
	default:
		break;
	}
	return line_err(p, err, "bad %s value", key_rules[key].name);
}

static int
parse_value(struct parser *p, enum key key, const char *v, size_t len, struct err *err)
{
	struct envelope *env = p->env;
	struct envelope_rcpt *r = env->nrcpts ? &env->rcpts[env->nrcpts - 1] : NULL;
	char *address;
	int i;

	switch (key) {
	case KEY_VERSION:
		if (len != 1 || v[0] != '0' + ENVELOPE_VERSION)
			return line_err(p, err, "unsupported version (want %d)", ENVELOPE_VERSION);
		return 0;
	case KEY_ID:
		if (len == 0 || len > ENVELOPE_ID_MAX || !all_hex(v, len, 'A'))
			return line_err(p, err, "bad id value");
		memcpy(env->id, v, len);
		env->id[len] = '\0';
		return 0;
	case KEY_CREATED: case KEY_UID: case KEY_SIZE: case KEY_ATTEMPTS:
	case KEY_NEXT_TRY: case KEY_LAST_TRY:
		return parse_number(p, key, v, len, err);
	case KEY_SENDER:
		return parse_address(p, key, v, len, &env->sender, err);
	case KEY_ORIGIN:
		if (parse_name(p, key, origin_names, NELEM(origin_names), v, len, &i, err) < 0)
			return -1;
		env->origin = (enum envelope_origin)i;
		return 0;
	case KEY_BODY:
		if (parse_name(p, key, body_names, NELEM(body_names), v, len, &i, err) < 0)
			return -1;
		env->body = (enum envelope_body)i;
		return 0;
	case KEY_SMTPUTF8:
		if (parse_name(p, key, yes_no, NELEM(yes_no), v, len, &i, err) < 0)
			return -1;
		env->smtputf8 = i == 1;
		return 0;
	case KEY_RET: case KEY_ENVID: case KEY_ROUTE: case KEY_DELAY_WARNED:
	case KEY_RCPT_NOTIFY: case KEY_RCPT_ORCPT:
		return parse_dsn_value(p, key, v, len, err);
	case KEY_CLIENT_ADDR: env->client_addr = xstrndup(v, len); return 0;
	case KEY_CLIENT_NAME: env->client_name = xstrndup(v, len); return 0;
	case KEY_HELO:        env->helo = xstrndup(v, len); return 0;
	case KEY_LAST_REPLY:  env->last_reply = xstrndup(v, len); return 0;
	case KEY_RCPT:
		if (env->nrcpts >= ENVELOPE_RCPTS_MAX)
			return line_err(p, err, "more than %d recipients", ENVELOPE_RCPTS_MAX);
		if (parse_address(p, key, v, len, &address, err) < 0)
			return -1;
		add_rcpt(env, address);
		return 0;
	case KEY_RCPT_STATUS:
		if (parse_name(p, key, status_names, NELEM(status_names), v, len, &i, err) < 0)
			return -1;
		r->status = (enum rcpt_status)i;
		return 0;
	case KEY_RCPT_ROUTE: r->route = xstrndup(v, len); return 0;
	case KEY_RCPT_REPLY: r->reply = xstrndup(v, len); return 0;
	case KEY_CONTENT_SHA256:
		if (len != ENVELOPE_SHA256_HEX || !all_hex(v, len, 'a'))
			return line_err(p, err, "bad content-sha256 value");
		memcpy(env->content_sha256, v, len);
		env->content_sha256[len] = '\0';
		return 0;
	case KEY_COUNT:
		break;
	}
	return line_err(p, err, "unknown key");
}

static int
check_value(struct parser *p, const char *v, size_t len, struct err *err)
{
	if (len > ENVELOPE_VALUE_MAX)
		return line_err(p, err, "value longer than %d octets", ENVELOPE_VALUE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\r')
			return line_err(p, err, "CR in value");
		if (c == '\0')
			return line_err(p, err, "NUL in value");
		if (c < 0x20 || c == 0x7f)
			return line_err(p, err, "control character in value");
	}
	return 0;
}

/* Which key a line starts with, and the rules about where it may appear. */
static int
parse_key(struct parser *p, const char *line, size_t len, enum key *out, struct err *err)
{
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp ? (size_t)(sp - line) : len;
	char shown[41];
	int k;

	for (k = 0; k < KEY_COUNT; k++)
		if (strlen(key_rules[k].name) == klen && memcmp(key_rules[k].name, line, klen) == 0)
			break;
	printable_key(line, klen, shown, sizeof shown);
	if (p->seen & (1u << KEY_CONTENT_SHA256))
		return line_err(p, err, "a line after content-sha256 (it seals the file)");
	if (k == KEY_COUNT)
		return line_err(p, err, "unknown key \"%s\"", shown);
	if (sp == NULL)
		return line_err(p, err, "no value for %s", shown);
	if (key_rules[k].flags & KEY_PER_RCPT) {
		if (p->env->nrcpts == 0)
			return line_err(p, err, "%s before any rcpt", shown);
		if (p->rcpt_seen & (1u << k))
			return line_err(p, err, "duplicate %s for one rcpt", shown);
		p->rcpt_seen |= 1u << k;
	} else if (k == KEY_RCPT) {
		p->rcpt_seen = 0;
	} else if (p->seen & (1u << k)) {
		return line_err(p, err, "duplicate %s", shown);
	}
	p->seen |= 1u << k;
	*out = (enum key)k;
	return 0;
}

static int
parse_line(struct parser *p, const char *line, size_t len, struct err *err)
{
	enum key key = KEY_COUNT;
	size_t klen;

	if (len == 0)
		return line_err(p, err, "empty line");
	if (parse_key(p, line, len, &key, err) < 0)
		return -1;
	klen = strlen(key_rules[key].name);
	if (check_value(p, line + klen + 1, len - klen - 1, err) < 0)
		return -1;
	return parse_value(p, key, line + klen + 1, len - klen - 1, err);
}

static int
check_complete(struct parser *p, struct err *err)
{
	for (int k = 0; k < KEY_COUNT; k++)
		if ((key_rules[k].flags & KEY_REQUIRED) && !(p->seen & (1u << k)))
			return err_set(err, "no %s line", key_rules[k].name);
	if (p->eight_bit_line != 0 && !p->env->smtputf8) {
		p->line = p->eight_bit_line;
		return line_err(p, err, "8-bit address without smtputf8 yes");
	}
	return 0;
}

int
envelope_parse(const char *buf, size_t len, struct envelope *env, struct err *err)
{
	struct parser p = { .env = env };
	size_t off = 0;

	envelope_init(env);
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);

		p.line++;
		if (nl == NULL) {
			line_err(&p, err, "no newline at the end");
			goto fail;
		}
		if (parse_line(&p, buf + off, (size_t)(nl - (buf + off)), err) < 0)
			goto fail;
		off = (size_t)(nl - buf) + 1;
	}
	if (check_complete(&p, err) < 0)
		goto fail;
	return 0;
fail:
	envelope_clear(env);
	return -1;
}

/* --- formatting ----------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sbuf_reserve(struct sbuf *b, size_t more)
{
	if (b->cap - b->len > more)
		return;
	if (more > SIZE_MAX / 2 - b->len)
		abort();
	b->cap = (b->len + more + 1) * 2;
	b->p = xrealloc(b->p, b->cap);
}

static void sbuf_printf(struct sbuf *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	sbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* "key value\n": control characters become '?'; a value is cut to
 * ENVELOPE_VALUE_MAX octets, not inside a UTF-8 sequence.  (Replies from a
 * gateway are the values that may be long or hold control characters.) */
static void
sbuf_line(struct sbuf *b, const char *key, const char *value)
{
	size_t len = strlen(value);

	if (len > ENVELOPE_VALUE_MAX) {
		len = ENVELOPE_VALUE_MAX;
		while (len > 0 && ((unsigned char)value[len] & 0xC0) == 0x80)
			len--;
	}
	sbuf_reserve(b, strlen(key) + len + 2);
	b->len += (size_t)sprintf(b->p + b->len, "%s ", key);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		b->p[b->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
}

static void
sbuf_optional(struct sbuf *b, const char *key, const char *value)
{
	if (value != NULL)
		sbuf_line(b, key, value);
}

static const char *
enum_name(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : "unknown";
}

/* The message's RFC 3461 values and route; what the parser would refuse
 * (only a caller can put it there) is left out, so the file still reads. */
static void
format_dsn(struct sbuf *b, const struct envelope *env)
{
	if (env->ret == DSN_RET_FULL || env->ret == DSN_RET_HDRS)
		sbuf_line(b, "ret", ret_names[env->ret]);
	if (env->envid != NULL && env->envid[0] != '\0' && strlen(env->envid) <= DSN_ENVID_MAX &&
	    dsn_xtext_check(env->envid, strlen(env->envid)))
		sbuf_line(b, "envid", env->envid);
	if (env->route != NULL && route_name_ok(env->route, strlen(env->route)))
		sbuf_line(b, "route", env->route);
	if (env->delay_warned)
		sbuf_line(b, "delay-warned", "yes");
}

static void
format_rcpt_dsn(struct sbuf *b, const struct envelope_rcpt *r)
{
	char notify[DSN_NOTIFY_TEXT_MAX];

	if (dsn_notify_format(r->notify, notify, sizeof notify)[0] != '\0')
		sbuf_line(b, "rcpt-notify", notify);
	if (r->orcpt != NULL && dsn_orcpt_check(r->orcpt, strlen(r->orcpt)))
		sbuf_line(b, "rcpt-orcpt", r->orcpt);
}

char *
envelope_format(const struct envelope *env, size_t *lenp)
{
	struct sbuf b = { NULL, 0, 0 };

	sbuf_reserve(&b, 512);
	b.p[0] = '\0';
	sbuf_printf(&b, "version %d\n", ENVELOPE_VERSION);
	sbuf_line(&b, "id", env->id);
	sbuf_printf(&b, "created %" PRId64 "\n", env->created);
	sbuf_line(&b, "sender", env->sender == NULL || env->sender[0] == '\0' ? "<>" : env->sender);
	sbuf_line(&b, "origin", enum_name(origin_names, NELEM(origin_names), env->origin));
	sbuf_optional(&b, "client-addr", env->client_addr);
	sbuf_optional(&b, "client-name", env->client_name);
	sbuf_optional(&b, "helo", env->helo);
	sbuf_printf(&b, "uid %ld\n", env->uid);
	sbuf_printf(&b, "size %" PRIu64 "\n", env->size);
	sbuf_line(&b, "body", enum_name(body_names, NELEM(body_names), env->body));
	sbuf_printf(&b, "smtputf8 %s\n", env->smtputf8 ? "yes" : "no");
	sbuf_printf(&b, "attempts %u\n", env->attempts);
	sbuf_printf(&b, "next-try %" PRId64 "\n", env->next_try);
	sbuf_printf(&b, "last-try %" PRId64 "\n", env->last_try);
	sbuf_optional(&b, "last-reply", env->last_reply);
	format_dsn(&b, env);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];

		sbuf_line(&b, "rcpt", r->address);
		sbuf_line(&b, "rcpt-status", rcpt_status_name(r->status));
		sbuf_optional(&b, "rcpt-route", r->route);
		sbuf_optional(&b, "rcpt-reply", r->reply);
		format_rcpt_dsn(&b, r);
	}
	if (env->content_sha256[0] != '\0')
		sbuf_line(&b, "content-sha256", env->content_sha256);
	if (lenp != NULL)
		*lenp = b.len;
	return b.p;
}
