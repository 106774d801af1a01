/* fuzz_dsn.c - libFuzzer over dsn.c: the RFC 3461 parameter checks
 * (untrusted SMTP parameters and envelope values) and dsn_format (gateway
 * replies and the stored message are untrusted).
 *
 * Input: one flags octet, then up to four '\n'-separated fields (a reply,
 * an ORCPT, an ENVID, a remote MTA name), then the original message.  The
 * whole input also goes through the parameter checks.  Contracts checked
 * (abort on failure): check and decode agree, decoded xtext is printable
 * ASCII, NOTIFY survives format/parse, a status code has the form and class
 * dsn.h promises, and a notification has only CRLF line ends, no NUL, no
 * line over 998 octets, and says eight_bit exactly when it holds 8-bit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_params(const char *s, size_t len)
{
	char out[1024], text[DSN_NOTIFY_TEXT_MAX];
	unsigned bits, again;
	int n;

	if (len >= sizeof out)
		return;
	n = dsn_xtext_decode(s, len, out, sizeof out);
	if ((n >= 0) != dsn_xtext_check(s, len))
		abort();
	for (int i = 0; i < n; i++)
		if (out[i] < 0x20 || out[i] > 0x7e)
			abort();
	if (dsn_orcpt_check(s, len) && (len > DSN_ORCPT_MAX || memchr(s, ';', len) == NULL))
		abort();
	if (dsn_notify_parse(s, len, &bits) == 0) {
		dsn_notify_format(bits, text, sizeof text);
		if (dsn_notify_parse(text, strlen(text), &again) != 0 || again != bits)
			abort();
	}
}

static void
check_status(const char *reply, enum dsn_action action)
{
	static const char *const classes[] = { "54", "4", "2", "2" };
	char buf[DSN_STATUS_MAX];
	const char *p;

	dsn_status_of(reply, action, buf, sizeof buf);
	if (strchr(classes[action], buf[0]) == NULL || buf[1] != '.')
		abort();
	p = buf + 2;
	for (int part = 0; part < 2; part++) {
		size_t d = strspn(p, "0123456789");

		if (d < 1 || d > 3 || p[d] != (part == 0 ? '.' : '\0'))
			abort();
		p += d + 1;
	}
}

static void
check_message(const char *t, size_t len, bool eight_bit)
{
	size_t line = 0;
	bool high = false;

	if (len < 2 || t[len - 2] != '\r' || t[len - 1] != '\n' || strlen(t) != len)
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		high = high || c >= 0x80;
		if (c == '\r' && t[i + 1] != '\n')
			abort();
		if (c == '\n' && (i == 0 || t[i - 1] != '\r'))
			abort();
		if (c == '\r')
			line = 0;
		else if (c != '\n' && ++line > 998)
			abort();
	}
	if (high != eight_bit)
		abort();
}

/* The next '\n'-terminated field of data, as a new string (NULL when the
 * data has no more '\n'). */
static char *
next_field(const uint8_t **data, size_t *size)
{
	const uint8_t *nl = memchr(*data, '\n', *size);
	char *s;

	if (nl == NULL)
		return NULL;
	s = malloc((size_t)(nl - *data) + 1);
	if (s == NULL)
		abort();
	memcpy(s, *data, (size_t)(nl - *data));
	s[nl - *data] = '\0';
	*size -= (size_t)(nl - *data) + 1;
	*data = nl + 1;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	char *f[4] = { NULL, NULL, NULL, NULL }, *out;
	unsigned flags;
	size_t len;
	bool eight_bit;

	check_params((const char *)data, size);
	if (size == 0)
		return 0;
	flags = data[0];
	data++;
	size--;
	for (int i = 0; i < 4; i++)
		f[i] = next_field(&data, &size);
	for (int a = DSN_FAILED; a <= DSN_RELAYED; a++)
		check_status(f[0], (enum dsn_action)a);
	rc[0] = (struct dsn_rcpt){ "bob@ext.example", f[1], (enum dsn_action)(flags & 3), f[0],
		f[3], flags & 4 ? 1795489490 : 0 };
	rc[1] = (struct dsn_rcpt){ "j\xC3\xB6rg@ext.example", NULL,
		(enum dsn_action)((flags >> 3) & 3), "451 4.3.0 later", NULL, 0 };
	r = (struct dsn_report){ "mx.test.example", "0196A3F2C4E51A2B3C", "alice@lan.example",
		f[2], (enum dsn_ret)((flags >> 5) % 3), flags & 0x80 ? 64 : 0,
		1795489200, 1795489500, 1795921200, rc, flags & 0x80 ? 1 : 2 };
	out = dsn_format(&r, (const char *)data, size, &len, &eight_bit);
	check_message(out, len, eight_bit);
	free(out);
	for (int i = 0; i < 4; i++)
		free(f[i]);
	return 0;
}
