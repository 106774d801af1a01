/* fuzz_envelope.c - libFuzzer over envelope_parse, the reader of spool and
 * maildrop envelope files (untrusted input).  Whatever parses must format
 * into text that parses again into the same envelope: format(parse(x)) is
 * a fixed point of format . parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope env, again;
	struct err err;
	char *text, *text2;
	size_t len, len2;

	if (envelope_parse((const char *)data, size, &env, &err) < 0)
		return 0;
	text = envelope_format(&env, &len);
	if (envelope_parse(text, len, &again, &err) < 0)
		abort();   /* the formatter wrote what the parser refuses */
	text2 = envelope_format(&again, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();   /* the round trip changed the envelope */
	free(text);
	free(text2);
	envelope_clear(&env);
	envelope_clear(&again);
	return 0;
}
