/* fuzz_smtp_reply.c - libFuzzer harness for smtp_reply.h: the input's lines
 * (separated by '\n') go to smtp_reply_add_line until DONE or BAD, then
 * smtp_caps_parse, smtp_reply_summary and smtp_reply_means_relay_denied.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks the
 * contracts of smtp_reply.h that smtp_client relies on; a broken one aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checks.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void
check_enhanced(const struct smtp_reply *r)
{
	const char *e = r->enhanced;
	size_t len = strnlen(e, sizeof r->enhanced), i = 2, n;

	if (len == sizeof r->enhanced)
		abort();
	if (len == 0)
		return;
	if (e[0] != (char)('0' + r->code / 100) || (e[0] != '2' && e[0] != '4' && e[0] != '5') ||
	    e[1] != '.')
		abort();
	for (n = 0; is_digit(e[i]); i++, n++)
		;
	if (n < 1 || n > 3 || e[i++] != '.')
		abort();
	for (n = 0; is_digit(e[i]); i++, n++)
		;
	if (n < 1 || n > 3 || e[i] != '\0')
		abort();
}

static void
check_reply(const struct smtp_reply *r, enum smtp_reply_add last)
{
	size_t len = strnlen(r->text, sizeof r->text), newlines = 0;

	if (len == sizeof r->text || r->nlines > SMTP_REPLY_LINES_MAX)
		abort();
	if ((last == SMTP_REPLY_BAD) != r->bad || (last == SMTP_REPLY_DONE) != r->done)
		abort();
	if (r->bad) {
		if (r->code != 0 || r->why == NULL || r->enhanced[0] != '\0' ||
		    smtp_reply_means_relay_denied(r) || memchr(r->text, '\n', len) != NULL)
			abort();
		return;
	}
	if (r->code < 200 || r->code > 599 || r->nlines == 0)
		abort();
	for (size_t i = 0; i < len; i++)
		newlines += r->text[i] == '\n';
	if (newlines + 1 > r->nlines || (!r->cut && newlines + 1 != r->nlines))
		abort();
	check_enhanced(r);
}

static void
check_summary(const struct smtp_reply *r)
{
	char buf[600];
	static const size_t sizes[] = { 1, 2, 5, 13, 64, sizeof buf };

	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t len;

		memset(buf, 'Z', sizeof buf);
		if (smtp_reply_summary(r, buf, sizes[k]) != buf)
			abort();
		len = strnlen(buf, sizes[k]);
		if (len >= sizes[k])
			abort();
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
				abort();
	}
}

static void
check_caps(const struct smtp_reply *r)
{
	struct smtp_caps caps;
	size_t len;

	memset(&caps, 0x5a, sizeof caps);
	smtp_caps_parse(r, &caps);
	len = strnlen(caps.auth, sizeof caps.auth);
	if (len == sizeof caps.auth || (caps.size != 0 && !caps.has_size))
		abort();
	if ((r->bad || r->code / 100 != 2) && (len != 0 || caps.has_size || caps.pipelining))
		abort();
	check_mech_list(caps.auth, sizeof caps.auth, SMTP_AUTH_MECH_LEN_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct smtp_reply r;
	enum smtp_reply_add last = SMTP_REPLY_MORE;

	smtp_reply_init(&r);
	while (last == SMTP_REPLY_MORE && p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		last = smtp_reply_add_line(&r, p, n);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	check_reply(&r, last);
	check_summary(&r);
	check_caps(&r);
	(void)smtp_reply_means_relay_denied(&r);

	/* the whole input as one line */
	smtp_reply_init(&r);
	last = smtp_reply_add_line(&r, (const char *)data, size);
	check_reply(&r, last);
	check_summary(&r);
	return 0;
}
