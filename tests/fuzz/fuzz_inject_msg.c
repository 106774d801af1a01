/* fuzz_inject_msg.c - libFuzzer harness for inject_msg_prepare.  The first
 * octet picks the options (-t, -i, a full name); the rest is the message.
 * Invariants on success: CRLF line ends only, no NUL, no line over 998
 * octets, no Bcc: field left in the header, eight_bit exact, recipients
 * unique and within the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inject_msg.h"
#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_content(const struct inject_msg *m)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	size_t line = 0;
	bool eight_bit = false;

	for (size_t i = 0; i < m->len; i++) {
		unsigned char c = (unsigned char)m->content[i];

		eight_bit |= c >= 0x80;
		if (c == '\0' || (c == '\r' && (i + 1 >= m->len || m->content[i + 1] != '\n')) ||
		    (c == '\n' && (i == 0 || m->content[i - 1] != '\r')))
			abort();
		if (c == '\n')
			line = 0;
		else if (c != '\r' && ++line > INJECT_LINE_MAX)
			abort();
	}
	if (m->len > 0 && (m->len < 2 || memcmp(m->content + m->len - 2, "\r\n", 2) != 0))
		abort();
	if (eight_bit != m->eight_bit)
		abort();
	rfc5322_iter_init(&it, m->content, m->len);
	while (rfc5322_next(&it, &f) == RFC5322_FIELD)
		if (rfc5322_field_is(&f, "Bcc"))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inject_opts opts = {
		.sender = "joe@lan.example",
		.hostname = "relay.example",
		.queue_id = "0196A3F2C4E51A2B3C",
		.now = 1795489200,
		.max_recipients = 50,
	};
	struct inject_msg m;
	struct err err;
	unsigned flags;

	if (size == 0)
		return 0;
	flags = data[0];
	opts.recipients_from_headers = flags & 1;
	opts.dot_ends_input = !(flags & 2);
	if (flags & 4)
		opts.full_name = "J\xc3\xb6rg \"Q.\" User\r\nBcc: x";
	if (flags & 8)
		opts.sender = (flags & 16) ? "" : "root";
	if (inject_msg_prepare((const char *)data + 1, size - 1, &opts, &m, &err) < 0) {
		if (m.content != NULL || m.rcpts != NULL || err.msg[0] == '\0')
			abort();
		return 0;
	}
	check_content(&m);
	if (m.nrcpts > opts.max_recipients)
		abort();
	for (size_t i = 0; i < m.nrcpts; i++)
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(m.rcpts[i], m.rcpts[j]) == 0)
				abort();
	inject_msg_free(&m);
	return 0;
}
