/* fuzz_smtp_parse.c - libFuzzer harness for smtp_parse_command and
 * address_check / address_check_domain / address_domain on the same bytes.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks the
 * contracts of smtp_parse.h that a caller relies on; a broken one aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_command(const char *line, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_parse_result r = smtp_parse_command(line, len, &cmd);
	const char *reply = smtp_parse_error_reply(r, &cmd);

	if ((unsigned)r >= SMTP_PARSE_RESULT_COUNT || (unsigned)cmd.verb > SMTP_VERB_COUNT)
		abort();
	if ((r == SMTP_PARSE_OK) != (reply == NULL))
		abort();
	if (smtp_verb_name(cmd.verb) == NULL || smtp_parse_result_name(r) == NULL)
		abort();
	if (r != SMTP_PARSE_OK)
		return;
	/* arg lies inside the line, has no space at either end */
	if (cmd.arg != NULL && (cmd.arg < line || cmd.arg_len == 0 ||
	    cmd.arg_len > len || cmd.arg - line > (ptrdiff_t)(len - cmd.arg_len) ||
	    cmd.arg[cmd.arg_len - 1] == ' '))
		abort();
	if (cmd.verb != SMTP_MAIL && cmd.verb != SMTP_RCPT)
		return;
	/* an accepted path is a mailbox (or <> for MAIL), and ASCII unless allowed */
	{
		size_t plen = strnlen(cmd.path, sizeof cmd.path);
		unsigned flags = ADDRESS_ALLOW_POSTMASTER |
		    (cmd.verb == SMTP_RCPT || cmd.smtputf8 ? ADDRESS_ALLOW_UTF8 : 0);
		enum address_result ar;

		if (plen > ADDRESS_MAX)
			abort();
		ar = address_check(cmd.path, plen, flags);
		if (ar != ADDRESS_OK && !(ar == ADDRESS_EMPTY && cmd.verb == SMTP_MAIL))
			abort();
	}
}

static void
check_address(const char *s, size_t len)
{
	unsigned flags;
	char *copy;

	for (flags = 0; flags < 4; flags++) {
		enum address_result r = address_check(s, len, flags);

		if ((unsigned)r > ADDRESS_BAD_CHAR || address_result_text(r) == NULL ||
		    address_result_name(r) == NULL)
			abort();
		r = address_check_domain(s, len, flags);
		if ((unsigned)r > ADDRESS_BAD_CHAR)
			abort();
	}
	/* address_domain wants a C string */
	if ((copy = malloc(len + 1)) == NULL)
		return;
	memcpy(copy, s, len);
	copy[len] = '\0';
	{
		const char *d = address_domain(copy);

		if (d != NULL && (d <= copy || d > copy + strlen(copy) || d[-1] != '@'))
			abort();
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_command((const char *)data, size);
	check_address((const char *)data, size);
	return 0;
}
