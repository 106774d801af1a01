/* fuzz_config.c - libFuzzer harness: the input, as text, is a configuration
 * file given to config_load_string (the same code config_load runs after
 * reading a file).  Nothing may crash, leak or hang; a loaded tree is freed.
 * A NUL byte ends the text, as it would end a C string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xmalloc(size + 1);
	struct config *cfg = NULL;
	struct err err;

	memcpy(text, data, size);
	text[size] = '\0';
	if (config_load_string(text, "fuzz.conf", &cfg, &err) == 0)
		config_free(cfg);
	free(text);
	return 0;
}
