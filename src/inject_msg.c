/* inject_msg.c - prepare a locally submitted message for the spool (see
 * inject_msg.h): line ends, RFC 5322 §2.1.1 line length, §3.6 required
 * fields (orig-date, from; msg-id as RFC 5322 §3.6.4 recommends), Bcc:
 * removal (§3.6.3), recipients from To/Cc/Bcc for sendmail -t.
 *
 * SECURITY: the input is any local user's message; the full name comes from
 * -F or the passwd gecos field and is sanitised (control characters would
 * let it inject header fields).  Pure: no I/O. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inject_msg.h"
#include "rfc5322.h"
#include "util.h"

/* RFC 2047 §2: an encoded-word is at most 75 octets; "=?UTF-8?Q?" + "?=" is 12. */
#define ENCODED_TEXT_MAX (75 - 12)
/* A longer display name is cut (at a character boundary). */
#define FULL_NAME_MAX 256
/* Far above any valid address (RFC 5321 §4.5.3.1: 254), far below the line limit. */
#define SENDER_MAX 512

struct buf {
	char *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *data, size_t n)
{
	if (n > SIZE_MAX - b->len - 1)
		abort();
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* --- lines ----------------------------------------------------------------- */

/* Copy input to out with CRLF line ends, checking each line; stop at a lone
 * "." when asked. */
static int
normalize_lines(const char *in, size_t len, bool dot_ends_input, struct buf *out,
    struct err *err)
{
	size_t i = 0, lineno = 0;

	while (i < len) {
		size_t start = i, n;

		while (i < len && in[i] != '\n' && in[i] != '\r') {
			if (in[i] == '\0')
				return err_set(err, "line %zu of the message contains a NUL octet",
				    lineno + 1);
			i++;
		}
		n = i - start;
		lineno++;
		if (i < len)
			i += (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') ? 2 : 1;
		if (n > INJECT_LINE_MAX)
			return err_set(err, "line %zu of the message is longer than %d octets",
			    lineno, INJECT_LINE_MAX);
		if (dot_ends_input && n == 1 && in[start] == '.')
			break;
		/* An mbox separator is not part of the message. */
		if (lineno == 1 && n >= 5 && memcmp(in + start, "From ", 5) == 0)
			continue;
		buf_add(out, in + start, n);
		buf_add(out, "\r\n", 2);
	}
	return 0;
}

/* --- recipients (-t) --------------------------------------------------------- */

struct rcpt_list {
	char **v;
	size_t n, cap, max;
	bool too_many;
};

static int
rcpt_found(void *ctx, const char *addr, size_t len)
{
	struct rcpt_list *l = ctx;

	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncasecmp(l->v[i], addr, len) == 0)
			return 0;
	if (l->max > 0 && l->n >= l->max) {
		l->too_many = true;
		return 1;
	}
	l->v = xgrow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = xstrndup(addr, len);
	return 0;
}

static void
rcpt_list_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* --- the header --------------------------------------------------------------- */

struct header_scan {
	bool has_from, has_date, has_message_id;
	size_t nfields;
};

static bool
is_recipient_field(const struct rfc5322_field *f)
{
	return rfc5322_field_is(f, "To") || rfc5322_field_is(f, "Cc") ||
	    rfc5322_field_is(f, "Bcc");
}

static bool
is_bcc_field(const struct rfc5322_field *f)
{
	return rfc5322_field_is(f, "Bcc") || rfc5322_field_is(f, "Resent-Bcc");
}

/* First pass: which fields exist; with -t, the recipients. */
static int
scan_header(const char *msg, size_t len, const struct inject_opts *opts,
    struct header_scan *hs, struct rcpt_list *rcpts, struct err *err)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;

	memset(hs, 0, sizeof *hs);
	rfc5322_iter_init(&it, msg, len);
	while (rfc5322_next(&it, &f) == RFC5322_FIELD) {
		hs->nfields++;
		hs->has_from |= rfc5322_field_is(&f, "From");
		hs->has_date |= rfc5322_field_is(&f, "Date");
		hs->has_message_id |= rfc5322_field_is(&f, "Message-ID");
		if (!opts->recipients_from_headers || !is_recipient_field(&f))
			continue;
		if (rfc5322_parse_addresses(f.value, f.value_len, rcpt_found, rcpts) != 0) {
			if (rcpts->too_many)
				return err_set(err, "more than %zu recipients in the message header",
				    rcpts->max);
			return err_set(err, "the %.*s: header field's address list is not valid",
			    (int)f.name_len, f.name);
		}
	}
	return 0;
}

static bool
name_needs_quoting(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' && strchr(" !#$%&'*+-/=?^_`{|}~", c))))
			return true;
	}
	return false;
}

/* Octets of the UTF-8 character starting with lead byte c (1 for ASCII and
 * for bytes that do not start a sequence: they are encoded one by one). */
static size_t
utf8_char_len(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf7)
		return 4;
	if (c >= 0xe0)
		return c <= 0xef ? 3 : 1;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* RFC 2047 "Q" encoded-words for a phrase (§5 rule 3), folded between words
 * so that no line grows long; a character is never split across words. */
static void
add_encoded_name(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char word[ENCODED_TEXT_MAX + 1];
	size_t wlen = 0, i = 0;

	buf_adds(b, "=?UTF-8?Q?");
	while (i < n) {
		char enc[4 * 3];
		size_t clen = utf8_char_len((unsigned char)s[i]), elen = 0;

		if (clen > n - i)
			clen = 1;
		for (size_t k = 0; k < clen; k++) {
			unsigned char c = (unsigned char)s[i + k];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
			    c == '-' || c == '/') {
				enc[elen++] = (char)c;
			} else if (c == ' ') {
				enc[elen++] = '_';
			} else {
				enc[elen++] = '=';
				enc[elen++] = hex[c >> 4];
				enc[elen++] = hex[c & 15];
			}
		}
		if (wlen + elen > ENCODED_TEXT_MAX) {
			buf_add(b, word, wlen);
			buf_adds(b, "?=\r\n =?UTF-8?Q?");
			wlen = 0;
		}
		memcpy(word + wlen, enc, elen);
		wlen += elen;
		i += clen;
	}
	buf_add(b, word, wlen);
	buf_adds(b, "?=");
}

/* The display name: control characters become spaces (no header injection),
 * outer spaces are trimmed, the length is capped. */
static size_t
clean_name(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; *in == ' ' || *in == '\t'; in++)
		;
	for (; *in != '\0' && n + 1 < size; in++) {
		unsigned char c = (unsigned char)*in;

		out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	/* Do not end inside a UTF-8 character that the cap cut. */
	if (*in != '\0')
		while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
			n--;
	if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0 && *in != '\0')
		n--;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

/* The display name as a phrase: atoms as they are, else a quoted string,
 * or RFC 2047 encoded-words when it has 8-bit octets. */
static void
add_display_name(struct buf *b, const char *name, size_t n)
{
	bool eight_bit = false;

	for (size_t i = 0; i < n; i++)
		eight_bit |= (unsigned char)name[i] >= 0x80;
	if (eight_bit) {
		add_encoded_name(b, name, n);
	} else if (name_needs_quoting(name, n)) {
		buf_adds(b, "\"");
		for (size_t i = 0; i < n; i++) {
			if (name[i] == '"' || name[i] == '\\')
				buf_adds(b, "\\");
			buf_add(b, name + i, 1);
		}
		buf_adds(b, "\"");
	} else {
		buf_add(b, name, n);
	}
}

static void
add_from(struct buf *b, const struct inject_opts *opts)
{
	char name[FULL_NAME_MAX + 1];
	size_t n = opts->full_name ? clean_name(opts->full_name, name, sizeof name) : 0;
	struct buf addr = { 0 }, phrase = { 0 };

	if (opts->sender[0] == '\0') {
		buf_adds(&addr, "MAILER-DAEMON@");
		buf_adds(&addr, opts->hostname);
	} else {
		buf_adds(&addr, opts->sender);
		if (strchr(opts->sender, '@') == NULL) {
			buf_adds(&addr, "@");
			buf_adds(&addr, opts->hostname);
		}
	}
	buf_adds(b, "From: ");
	if (n > 0) {
		add_display_name(&phrase, name, n);
		buf_add(b, phrase.p, phrase.len);
		/* Fold before the address rather than let the line grow long. */
		if (memchr(phrase.p, '\n', phrase.len) || phrase.len + addr.len > 60)
			buf_adds(b, "\r\n");
		buf_adds(b, " ");
	}
	buf_adds(b, "<");
	buf_add(b, addr.p, addr.len);
	buf_adds(b, ">\r\n");
	free(addr.p);
	free(phrase.p);
}

static void
add_missing_fields(struct buf *b, const struct header_scan *hs,
    const struct inject_opts *opts)
{
	char date[UTIL_RFC5322_DATE_MAX];

	if (!hs->has_from)
		add_from(b, opts);
	if (!hs->has_date) {
		buf_adds(b, "Date: ");
		buf_adds(b, format_rfc5322_date(opts->now, date, sizeof date));
		buf_adds(b, "\r\n");
	}
	if (!hs->has_message_id) {
		buf_adds(b, "Message-ID: <");
		buf_adds(b, opts->queue_id);
		buf_adds(b, "@");
		buf_adds(b, opts->hostname);
		buf_adds(b, ">\r\n");
	}
}

/* Second pass: the fields but Bcc, then the empty line and the body. */
static void
copy_message(struct buf *b, const char *msg, size_t len, size_t nfields)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	enum rfc5322_next_result r;

	rfc5322_iter_init(&it, msg, len);
	while ((r = rfc5322_next(&it, &f)) == RFC5322_FIELD)
		if (!is_bcc_field(&f))
			buf_add(b, f.raw, f.raw_len);
	switch (r) {
	case RFC5322_END:          /* the empty line is at it.pos */
		buf_add(b, msg + it.pos, len - it.pos);
		break;
	case RFC5322_NOT_FIELD:
		buf_add(b, "\r\n", 2);
		buf_add(b, msg + it.body_offset, len - it.body_offset);
		break;
	case RFC5322_EOF:
	case RFC5322_FIELD:
		if (nfields == 0)
			buf_add(b, "\r\n", 2);
		break;
	}
}

int
inject_msg_prepare(const char *input, size_t len, const struct inject_opts *opts,
    struct inject_msg *out, struct err *err)
{
	struct buf norm = { 0 }, msg = { 0 };
	struct rcpt_list rcpts = { .max = opts->max_recipients };
	struct header_scan hs;

	memset(out, 0, sizeof *out);
	/* A longer one could not be a valid address, and could not be written
	 * on one header line. */
	if (strlen(opts->sender) > SENDER_MAX)
		return err_set(err, "the sender address is too long");
	if (normalize_lines(input, len, opts->dot_ends_input, &norm, err) < 0)
		goto fail;
	if (scan_header(norm.p, norm.len, opts, &hs, &rcpts, err) < 0)
		goto fail;
	add_missing_fields(&msg, &hs, opts);
	copy_message(&msg, norm.p, norm.len, hs.nfields);
	free(norm.p);

	out->content = msg.p;
	out->len = msg.len;
	out->rcpts = rcpts.v;
	out->nrcpts = rcpts.n;
	for (size_t i = 0; i < msg.len && !out->eight_bit; i++)
		out->eight_bit = (unsigned char)msg.p[i] >= 0x80;
	return 0;
fail:
	free(norm.p);
	free(msg.p);
	rcpt_list_free(&rcpts);
	return -1;
}

void
inject_msg_free(struct inject_msg *m)
{
	if (m == NULL)
		return;
	free(m->content);
	for (size_t i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	memset(m, 0, sizeof *m);
}
