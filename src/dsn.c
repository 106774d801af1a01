/* dsn.c - DSN parameters and delivery status notifications; see dsn.h.
 *
 * STANDARDS
 *	RFC 3461 §4 (xtext), §4.1-§4.4 (NOTIFY, ORCPT, RET, ENVID), §5.2
 *	(which notifications); RFC 3464 (message/delivery-status); RFC 6522
 *	(multipart/report, text/rfc822-headers); RFC 3463 (status codes);
 *	RFC 6532 §3.5 and RFC 6533 §3, §6 (UTF-8 headers and addresses);
 *	RFC 3834 (Auto-Submitted); RFC 5322 §2.1.1 (998-octet lines).
 *
 * SECURITY
 *	Parameters, envelope values, gateway replies and the stored message
 *	are untrusted.  Decoded xtext is printable ASCII by construction, so
 *	no CR or LF can reach a header through ENVID or ORCPT; replies are
 *	reduced to printable ASCII before they are written; the returned
 *	copy of the message is re-framed line by line, so whatever it holds,
 *	the notification has only CRLF line ends and lines of at most 998
 *	octets, and its MIME boundary occurs in none of its parts. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "rfc5322.h"
#include "util.h"

#define NELEM(a) (sizeof (a) / sizeof (a)[0])
#define LINE_OCTETS_MAX 998   /* RFC 5322 §2.1.1, CRLF excluded */
#define FIELD_WIDTH     78    /* fold header fields past this column */
#define TEXT_WIDTH      72    /* wrap the human-readable part here */

/* --- xtext (RFC 3461 §4) ------------------------------------------------------ */

static int
hex_upper(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One xtext unit at s[i]: the octet it stands for into *out.  Returns the
 * octets it takes (1 or 3), 0 when it is not xtext. */
static size_t
xtext_unit(const char *s, size_t len, size_t i, unsigned char *out)
{
	unsigned char c = (unsigned char)s[i];
	int hi, lo;

	if (c == '+') {
		if (len - i < 3 || (hi = hex_upper(s[i + 1])) < 0 || (lo = hex_upper(s[i + 2])) < 0)
			return 0;
		*out = (unsigned char)(hi * 16 + lo);
		return *out >= 0x20 && *out < 0x7f ? 3 : 0;
	}
	if (c < 33 || c > 126 || c == '=')
		return 0;
	*out = c;
	return 1;
}

bool
dsn_xtext_check(const char *s, size_t len)
{
	unsigned char c;
	size_t i = 0, n;

	while (i < len) {
		if ((n = xtext_unit(s, len, i, &c)) == 0)
			return false;
		i += n;
	}
	return true;
}

int
dsn_xtext_decode(const char *s, size_t len, char *out, size_t size)
{
	unsigned char c;
	size_t i = 0, o = 0, n;

	if (size == 0 || len > INT32_MAX)
		return -1;
	while (i < len) {
		if ((n = xtext_unit(s, len, i, &c)) == 0 || o + 1 >= size) {
			out[0] = '\0';
			return -1;
		}
		out[o++] = (char)c;
		i += n;
	}
	out[o] = '\0';
	return (int)o;
}

/* RFC 5322 §3.2.3 atext. */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool
dsn_orcpt_check(const char *s, size_t len)
{
	const char *semi = memchr(s, ';', len);
	size_t tlen;

	if (len > DSN_ORCPT_MAX || semi == NULL || semi == s || semi + 1 == s + len)
		return false;
	tlen = (size_t)(semi - s);
	for (size_t i = 0; i < tlen; i++)
		if (!is_atext((unsigned char)s[i]))
			return false;
	return dsn_xtext_check(semi + 1, len - tlen - 1);
}

/* --- NOTIFY (RFC 3461 §4.1) ---------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} notify_names[] = {
	{ "never", DSN_NOTIFY_NEVER }, { "success", DSN_NOTIFY_SUCCESS },
	{ "failure", DSN_NOTIFY_FAILURE }, { "delay", DSN_NOTIFY_DELAY },
};

static unsigned
notify_bit(const char *s, size_t len)
{
	for (size_t i = 0; i < NELEM(notify_names); i++)
		if (equal_nocase(s, len, notify_names[i].name))
			return notify_names[i].bit;
	return 0;
}

int
dsn_notify_parse(const char *s, size_t len, unsigned *bits)
{
	unsigned got = 0, bit;
	size_t i = 0, start;

	for (;;) {
		for (start = i; i < len && s[i] != ','; i++)
			;
		if ((bit = notify_bit(s + start, i - start)) == 0)
			return -1;      /* unknown, or empty (",," or a trailing ',') */
		got |= bit;
		if (i == len)
			break;
		i++;
	}
	if ((got & DSN_NOTIFY_NEVER) && got != DSN_NOTIFY_NEVER)
		return -1;              /* NEVER only alone */
	*bits = got;
	return 0;
}

char *
dsn_notify_format(unsigned bits, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	if (bits & DSN_NOTIFY_NEVER) {
		strlcopy(buf, "never", size);
		return buf;
	}
	for (size_t i = 1; i < NELEM(notify_names); i++) {
		if (!(bits & notify_names[i].bit))
			continue;
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "",
		    notify_names[i].name);
		if (n >= size)
			break;
	}
	return buf;
}

/* --- actions, wishes, status codes --------------------------------------------- */

static const char *const action_names[] = {
	[DSN_FAILED] = "failed", [DSN_DELAYED] = "delayed",
	[DSN_DELIVERED] = "delivered", [DSN_RELAYED] = "relayed",
};

const char *
dsn_action_name(enum dsn_action a)
{
	return (size_t)a < NELEM(action_names) ? action_names[a] : "failed";
}

bool
dsn_wanted(const char *sender, unsigned notify, enum dsn_action action)
{
	if (sender == NULL || sender[0] == '\0' || (notify & DSN_NOTIFY_NEVER))
		return false;
	if (notify == 0)
		notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	switch (action) {
	case DSN_FAILED:
		return notify & DSN_NOTIFY_FAILURE;
	case DSN_DELAYED:
		return notify & DSN_NOTIFY_DELAY;
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return notify & DSN_NOTIFY_SUCCESS;
	}
	return false;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The basic code (200..599) a reply starts with, followed by SP, '-' or
 * the end; 0 when it has none (then it is our own words). */
static int
reply_code(const char *r)
{
	if (r == NULL || r[0] < '2' || r[0] > '5' || !is_digit(r[1]) || !is_digit(r[2]))
		return 0;
	if (r[3] != '\0' && r[3] != ' ' && r[3] != '-')
		return 0;
	return (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0');
}

/* 1..3 digits at *p; moves *p past them. */
static bool
skip_digits(const char **p)
{
	size_t n = 0;

	while (n < 4 && is_digit((*p)[n]))
		n++;
	*p += n;
	return n >= 1 && n <= 3;
}

/* The enhanced code after a reply's basic code ("550 5.1.1 ..."): class
 * 2, 4 or 5, subject and detail of 1..3 digits, then SP or the end. */
static bool
reply_enhanced(const char *r, char *buf, size_t size)
{
	const char *p = r + 4, *start = p;

	if (reply_code(r) == 0 || r[3] == '\0' || (*p != '2' && *p != '4' && *p != '5') ||
	    p[1] != '.')
		return false;
	p += 2;
	if (!skip_digits(&p) || *p++ != '.' || !skip_digits(&p) || (*p != '\0' && *p != ' '))
		return false;
	snprintf(buf, size, "%.*s", (int)(p - start), start);
	return true;
}

static bool
class_fits(char class, enum dsn_action action)
{
	switch (action) {
	case DSN_FAILED:
		return class == '5' || class == '4';
	case DSN_DELAYED:
		return class == '4';
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return class == '2';
	}
	return false;
}

char *
dsn_status_of(const char *reply, enum dsn_action action, char *buf, size_t size)
{
	static const char defaults[] = { [DSN_FAILED] = '5', [DSN_DELAYED] = '4',
		[DSN_DELIVERED] = '2', [DSN_RELAYED] = '2' };
	char code[DSN_STATUS_MAX] = "";
	char dflt = (size_t)action < sizeof defaults ? defaults[action] : '5';
	int basic = reply_code(reply);

	if (basic != 0 && reply_enhanced(reply, code, sizeof code)) {
		if (action == DSN_DELAYED && code[0] == '5')
			code[0] = '4';  /* a refusal we treat as temporary */
		if (class_fits(code[0], action)) {
			strlcopy(buf, code, size);
			return buf;
		}
	}
	if (basic != 0 && class_fits((char)('0' + basic / 100), action))
		dflt = (char)('0' + basic / 100);
	snprintf(buf, size, "%c.0.0", dflt);
	return buf;
}

/* --- building the message -------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *s, size_t n)
{
	if (b->cap - b->len <= n) {
		if (n > SIZE_MAX / 2 - b->len)
			abort();
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	buf_add(b, s, (size_t)n);
	free(s);
}

/* A copy fit for a line of text: CR, LF and TAB become spaces, other
 * control characters '?', and with `ascii` so do octets >= 0x80 (replies
 * go into the 7-bit report; addresses may be UTF-8).  Caller frees. */
static char *
clean_text(const char *s, bool ascii)
{
	char *out = xstrdup(s != NULL ? s : "");

	for (char *p = out; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\r' || c == '\n' || c == '\t')
			*p = ' ';
		else if (c < 0x20 || c == 0x7f || (ascii && c >= 0x80))
			*p = '?';
	}
	return out;
}

/* Word wrapping for header fields and the text part alike.  These are
 * unstructured text (RFC 3464 *text; a reply), where a line may break at
 * any space.  A word longer than a line is split (unfolding then shows a
 * space inside it): an overlong line is never written. */
struct wrap {
	struct buf *b;
	size_t col;             /* octets on the current line */
	size_t width;           /* break before a word that would pass it */
	const char *cont;       /* what starts a continuation line */
	bool fresh;             /* nothing but `cont` on this line yet */
};

static void
wrap_break(struct wrap *w)
{
	buf_str(w->b, "\r\n");
	buf_str(w->b, w->cont);
	w->col = strlen(w->cont);
	w->fresh = true;
}

/* Put one word of n octets, splitting it (not inside a UTF-8 sequence)
 * when it cannot fit on a line. */
static void
wrap_word(struct wrap *w, const char *p, size_t n)
{
	if (!w->fresh && w->col + 1 + n > w->width)
		wrap_break(w);
	if (!w->fresh) {
		buf_str(w->b, " ");
		w->col++;
	}
	while (w->col + n > LINE_OCTETS_MAX) {
		size_t k = LINE_OCTETS_MAX - w->col;

		while (k > 1 && ((unsigned char)p[k] & 0xC0) == 0x80)
			k--;
		buf_add(w->b, p, k);
		p += k;
		n -= k;
		wrap_break(w);
	}
	buf_add(w->b, p, n);
	w->col += n;
	w->fresh = false;
}

/* The words of clean text s (runs of spaces separate them). */
static void
wrap_text(struct wrap *w, const char *s)
{
	for (;;) {
		size_t n;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			return;
		n = strcspn(s, " ");
		wrap_word(w, s, n);
		s += n;
	}
}

/* "Name: value" CRLF, folded; value is cleaned (ascii: 8-bit as '?'). */
static void
put_field(struct buf *b, const char *name, const char *value, bool ascii)
{
	struct wrap w = { b, strlen(name) + 1, FIELD_WIDTH, " ", false };
	char *v = clean_text(value, ascii);

	buf_str(b, name);
	buf_str(b, ":");
	wrap_text(&w, v);
	buf_str(b, "\r\n");
	free(v);
}

static void put_fieldf(struct buf *, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
put_fieldf(struct buf *b, const char *name, const char *fmt, ...)
{
	char *v;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&v, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	put_field(b, name, v, true);
	free(v);
}

/* A paragraph of the text part: wrapped, each line after `indent`. */
static void
put_para(struct buf *b, const char *indent, const char *text)
{
	struct wrap w = { b, strlen(indent), TEXT_WIDTH, indent, true };
	char *t = clean_text(text, false);

	buf_str(b, indent);
	wrap_text(&w, t);
	buf_str(b, "\r\n");
	free(t);
}

static const char *
date_of(int64_t t, char *buf, size_t size)
{
	return format_rfc5322_date((time_t)t, buf, size);
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* --- RFC 6533 utf-8-addr-xtext, for a UTF-8 Final-Recipient ------------------- */

/* The code point of the UTF-8 sequence at s (n octets left); *used set.
 * Malformed input gives U+FFFD for one octet. */
static unsigned long
utf8_next(const unsigned char *s, size_t n, size_t *used)
{
	unsigned long cp;
	size_t k, need = s[0] >= 0xF0 ? 3 : s[0] >= 0xE0 ? 2 : s[0] >= 0xC0 ? 1 : 0;

	*used = 1;
	if (s[0] < 0x80)
		return s[0];
	if (need == 0 || s[0] > 0xF4 || n <= need)
		return 0xFFFD;
	cp = s[0] & (0x3Fu >> need);
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	*used = need + 1;
	return cp;
}

/* QCHAR (printable ASCII but '\', '+', '=') as itself, the rest as
 * "\x{HEX}" (at least two upper-case digits). */
static void
put_utf8_xtext(struct buf *b, const char *addr)
{
	const unsigned char *s = (const unsigned char *)addr;
	size_t n = strlen(addr), used;

	while (n > 0) {
		unsigned long cp = utf8_next(s, n, &used);

		if (cp > 0x20 && cp < 0x7f && cp != '\\' && cp != '+' && cp != '=')
			buf_add(b, s, 1);
		else
			buf_printf(b, "\\x{%02lX}", cp);
		s += used;
		n -= used;
	}
}


/* --- part 1: text/plain, for people ----------------------------------------------- */

static const char *const intros[] = {
	[DSN_FAILED] = "Your message could not be delivered to the recipients below. "
	    "This is final: the relay has given up on them and will not try again.",
	[DSN_DELAYED] = "Your message has not been delivered yet to the recipients below.",
	[DSN_DELIVERED] = "Your message was delivered to the recipients below.",
	[DSN_RELAYED] = "Your message was passed on for the recipients below to a mail "
	    "server that sends no delivery notifications: this is the last you will "
	    "hear of it unless it fails later.",
};

/* One recipient: its address, then what was said about it. */
static void
text_rcpt(struct buf *b, const struct dsn_rcpt *rc)
{
	char *reply, *line;

	line = xasprintf("<%s>", rc->address);
	put_para(b, "", line);
	free(line);
	if (rc->reply == NULL || rc->reply[0] == '\0')
		return;
	reply = clean_text(rc->reply, true);
	if (rc->remote_mta != NULL && reply_code(rc->reply) != 0)
		line = xasprintf("%s said: %s", rc->remote_mta, reply);
	else
		line = xstrdup(reply);
	put_para(b, "    ", line);
	free(line);
	free(reply);
}

static void
text_action(struct buf *b, const struct dsn_report *r, enum dsn_action action)
{
	char date[UTIL_RFC5322_DATE_MAX], *intro;

	if (action == DSN_DELAYED && r->will_retry_until != 0)
		intro = xasprintf("%s The relay keeps trying until %s; if it cannot deliver "
		    "it by then, you will be told. You need not send it again.", intros[action],
		    date_of(r->will_retry_until, date, sizeof date));
	else
		intro = xstrdup(intros[action]);
	put_para(b, "", intro);
	free(intro);
	buf_str(b, "\r\n");
	for (size_t i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].action != action)
			continue;
		text_rcpt(b, &r->rcpts[i]);
		buf_str(b, "\r\n");
	}
}

/* How the original comes back (part 3), as the text explains it. */
enum returned { RETURN_FULL, RETURN_HEADER, RETURN_TOO_BIG };

static void
text_body(struct buf *b, const struct dsn_report *r, enum returned how, size_t len, bool cut)
{
	static const char *const endings[] = {
		[RETURN_FULL] = "Your message is attached.",
		[RETURN_HEADER] = "The header of your message is attached.",
		[RETURN_TOO_BIG] = "Your message is too big to return in full; its header is attached.",
	};
	char date[UTIL_RFC5322_DATE_MAX], *s;

	s = xasprintf("This is the mail relay at %s (mailredir).", r->reporting_mta);
	put_para(b, "", s);
	free(s);
	buf_str(b, "\r\n");
	for (int a = DSN_FAILED; a <= DSN_RELAYED; a++)
		for (size_t i = 0; i < r->nrcpts; i++)
			if (r->rcpts[i].action == (enum dsn_action)a) {
				text_action(b, r, (enum dsn_action)a);
				break;
			}
	s = xasprintf("The message arrived on %s (queue id %s, %zu octets). %s%s",
	    date_of(r->arrival, date, sizeof date), r->queue_id, len, endings[how],
	    cut ? " Lines longer than 998 octets were cut short in that copy." : "");
	put_para(b, "", s);
	free(s);
}

/* --- part 2: message/delivery-status, for programs ---------------------------------- */

static void
put_decoded(struct buf *b, const char *name, const char *prefix, size_t plen,
    const char *xtext)
{
	size_t n = strlen(xtext);
	char *dec = xmalloc(n + 1);

	/* Values were checked when they came in; one that does not decode
	 * now (a damaged envelope) is left out rather than shown raw. */
	if (dsn_xtext_decode(xtext, n, dec, n + 1) > 0)
		put_fieldf(b, name, "%.*s%s", (int)plen, prefix, dec);
	free(dec);
}

static void
status_final_rcpt(struct buf *b, const char *address)
{
	struct buf x = { NULL, 0, 0 };

	if (!has_8bit(address, strlen(address))) {
		put_fieldf(b, "Final-Recipient", "rfc822; %s", address);
		return;
	}
	put_utf8_xtext(&x, address);
	put_fieldf(b, "Final-Recipient", "utf-8; %s", x.p);
	free(x.p);
}

/* One recipient's block, fields in the order of RFC 3464 §2.3. */
static void
status_rcpt(struct buf *b, const struct dsn_report *r, const struct dsn_rcpt *rc)
{
	char status[DSN_STATUS_MAX], date[UTIL_RFC5322_DATE_MAX];
	const char *semi = rc->orcpt != NULL ? strchr(rc->orcpt, ';') : NULL;

	if (semi != NULL)
		put_decoded(b, "Original-Recipient", rc->orcpt, (size_t)(semi - rc->orcpt) + 1,
		    semi + 1);
	status_final_rcpt(b, rc->address);
	put_field(b, "Action", dsn_action_name(rc->action), true);
	put_field(b, "Status", dsn_status_of(rc->reply, rc->action, status, sizeof status), true);
	if (rc->remote_mta != NULL)
		put_fieldf(b, "Remote-MTA", "dns; %s", rc->remote_mta);
	/* An SMTP reply is the remote's diagnostic; our own words get our own
	 * diagnostic type (RFC 3464 §2.3.6 allows X- types). */
	if (rc->reply != NULL && rc->reply[0] != '\0')
		put_fieldf(b, "Diagnostic-Code", "%s; %s",
		    reply_code(rc->reply) != 0 ? "smtp" : "X-mailredir", rc->reply);
	if (rc->last_attempt != 0)
		put_field(b, "Last-Attempt-Date", date_of(rc->last_attempt, date, sizeof date), true);
	if (rc->action == DSN_DELAYED && r->will_retry_until != 0)
		put_field(b, "Will-Retry-Until", date_of(r->will_retry_until, date, sizeof date),
		    true);
}

/* The per-message fields, then one block per recipient, blocks separated
 * by empty lines (RFC 3464 §2.1).  7-bit by construction. */
static void
status_body(struct buf *b, const struct dsn_report *r)
{
	char date[UTIL_RFC5322_DATE_MAX];

	put_fieldf(b, "Reporting-MTA", "dns; %s", r->reporting_mta);
	put_field(b, "X-Mailredir-Queue-ID", r->queue_id, true);
	if (r->envid != NULL && r->envid[0] != '\0')
		put_decoded(b, "Original-Envelope-Id", "", 0, r->envid);
	if (r->arrival != 0)
		put_field(b, "Arrival-Date", date_of(r->arrival, date, sizeof date), true);
	for (size_t i = 0; i < r->nrcpts; i++) {
		buf_str(b, "\r\n");
		status_rcpt(b, r, &r->rcpts[i]);
	}
}

/* --- part 3: the message or its header --------------------------------------------- */

/* Octets up to the next CR or LF (or the end). */
static size_t
line_len(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && s[n] != '\r' && s[n] != '\n')
		n++;
	return n;
}

/* Copy s[0..len) line by line with CRLF line ends (a bare CR or LF ends a
 * line too, and a last line without one gets one), NUL as '?', a line past
 * 998 octets cut (not inside a UTF-8 sequence).  True when one was cut. */
static bool
copy_lines(struct buf *b, const char *s, size_t len)
{
	bool cut = false;
	size_t i = 0;

	while (i < len) {
		size_t n = line_len(s + i, len - i), keep = n, start = b->len;

		if (keep > LINE_OCTETS_MAX) {
			keep = LINE_OCTETS_MAX;
			while (keep > 0 && ((unsigned char)s[i + keep] & 0xC0) == 0x80)
				keep--;
			cut = true;
		}
		buf_add(b, s + i, keep);
		for (char *p = b->p + start; p < b->p + b->len; p++)
			if (*p == '\0')
				*p = '?';
		buf_str(b, "\r\n");
		i += n;
		if (i + 1 < len && s[i] == '\r' && s[i + 1] == '\n')
			i++;
		i++;
	}
	return cut;
}

/* The header section: through the last header field, without the empty
 * line after it. */
static size_t
header_len(const char *msg, size_t len)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	size_t end = 0;

	rfc5322_iter_init(&it, msg, len);
	while (rfc5322_next(&it, &f) == RFC5322_FIELD)
		end = (size_t)(f.raw - msg) + f.raw_len;
	return end;
}

static enum returned
how_returned(const struct dsn_report *r, size_t len)
{
	bool failed = false;

	for (size_t i = 0; i < r->nrcpts; i++)
		failed = failed || r->rcpts[i].action == DSN_FAILED;
	/* RFC 3461 §4.3: RET asks about failed DSNs; the others carry the
	 * header only, as no one needs the message back while it is still on
	 * its way or has arrived. */
	if (!failed || r->ret == DSN_RET_HDRS)
		return RETURN_HEADER;
	if (r->return_max != 0 && len > r->return_max)
		return RETURN_TOO_BIG;
	return RETURN_FULL;
}

/* Part 3 with its MIME header; *cut when a line had to be cut. */
static void
returned_part(struct buf *b, enum returned how, const char *msg, size_t len, bool *cut)
{
	size_t hlen = header_len(msg, len), n = how == RETURN_FULL ? len : hlen;
	bool utf8 = has_8bit(msg, hlen);     /* an SMTPUTF8 message: RFC 6532 types */
	const char *type = how == RETURN_FULL ?
	    (utf8 ? "message/global" : "message/rfc822") :
	    (utf8 ? "message/global-headers" : "text/rfc822-headers");

	buf_printf(b, "Content-Description: %s\r\n", how == RETURN_FULL ?
	    "Undelivered message" : "Message header");
	buf_printf(b, "Content-Type: %s\r\n", type);
	if (has_8bit(msg, n))
		buf_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	buf_str(b, "\r\n");
	*cut = copy_lines(b, msg, n);
}

/* --- the whole ----------------------------------------------------------------------- */

static enum dsn_action
gravest(const struct dsn_report *r)
{
	enum dsn_action a = DSN_RELAYED;

	for (size_t i = 0; i < r->nrcpts; i++)
		if (r->rcpts[i].action < a)
			a = r->rcpts[i].action;
	return a;
}

/* A boundary (RFC 2046 §5.1.1, at most 70 octets) from the queue id and the
 * time, changed until it occurs in none of the parts. */
static void
choose_boundary(const struct dsn_report *r, struct buf *const *parts, size_t nparts,
    char *out, size_t size)
{
	char id[33];
	size_t n = 0;

	for (const char *p = r->queue_id; *p != '\0' && n < sizeof id - 1; p++)
		if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			id[n++] = *p;
	id[n] = '\0';
	for (unsigned k = 0;; k++) {
		bool used = false;

		snprintf(out, size, "=_mailredir.%s.%" PRId64 ".%u", id, r->now, k);
		for (size_t i = 0; i < nparts && !used; i++)
			used = memmem(parts[i]->p, parts[i]->len, out, strlen(out)) != NULL;
		if (!used)
			return;
	}
}

static void
top_header(struct buf *b, const struct dsn_report *r, const char *boundary, bool eight_bit)
{
	static const char *const subjects[] = {
		[DSN_FAILED] = "Undelivered Mail Returned to Sender",
		[DSN_DELAYED] = "Delayed Mail (still being retried)",
		[DSN_DELIVERED] = "Successful Mail Delivery Report",
		[DSN_RELAYED] = "Successful Mail Delivery Report",
	};
	char date[UTIL_RFC5322_DATE_MAX], *to = xasprintf("<%s>", r->to);
	enum dsn_action kind = gravest(r);

	put_fieldf(b, "From", "Mail Delivery System <MAILER-DAEMON@%s>", r->reporting_mta);
	put_field(b, "To", to, false);
	put_field(b, "Subject", subjects[kind], true);
	put_field(b, "Date", date_of(r->now, date, sizeof date), true);
	put_fieldf(b, "Message-ID", "<%s.%" PRId64 ".%s@%s>", r->queue_id, r->now,
	    dsn_action_name(kind), r->reporting_mta);
	put_field(b, "Auto-Submitted", "auto-replied", true);
	put_field(b, "MIME-Version", "1.0", true);
	buf_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n", boundary);
	if (eight_bit)
		buf_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	buf_str(b, "\r\n");
	free(to);
}

/* Part 1 with its MIME header around the text already built. */
static void
text_part(struct buf *b, const struct buf *text)
{
	bool utf8 = has_8bit(text->p, text->len);

	buf_str(b, "Content-Description: Notification\r\n");
	buf_printf(b, "Content-Type: text/plain; charset=%s\r\n", utf8 ? "utf-8" : "us-ascii");
	if (utf8)
		buf_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	buf_str(b, "\r\n");
	buf_add(b, text->p, text->len);
}

char *
dsn_format(const struct dsn_report *r, const char *original, size_t len, size_t *out_len,
    bool *eight_bit)
{
	struct buf text = { NULL, 0, 0 }, p1 = { NULL, 0, 0 }, p2 = { NULL, 0, 0 };
	struct buf p3 = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	struct buf *const parts[] = { &p1, &p2, &p3 };
	enum returned how = how_returned(r, len);
	char boundary[80];
	bool cut;

	returned_part(&p3, how, original, len, &cut);
	text_body(&text, r, how, len, cut);
	text_part(&p1, &text);
	buf_str(&p2, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	status_body(&p2, r);
	choose_boundary(r, parts, NELEM(parts), boundary, sizeof boundary);
	*eight_bit = has_8bit(p1.p, p1.len) || has_8bit(p3.p, p3.len) || has_8bit(r->to,
	    strlen(r->to));
	top_header(&out, r, boundary, *eight_bit);
	buf_str(&out, "This is a delivery status notification (RFC 3464) in MIME format.\r\n");
	for (size_t i = 0; i < NELEM(parts); i++) {
		buf_printf(&out, "\r\n--%s\r\n", boundary);
		buf_add(&out, parts[i]->p, parts[i]->len);
	}
	buf_printf(&out, "\r\n--%s--\r\n", boundary);
	free(text.p);
	free(p1.p);
	free(p2.p);
	free(p3.p);
	*out_len = out.len;
	return out.p;
}
