/* fuzz_deliver_line.c - the result lines the daemon reads from its delivery
 * workers: whatever parses must format back to the same line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deliver_line line;
	char buf[DELIVER_LINE_MAX];

	if (deliver_line_parse((const char *)data, size, &line) == 0) {
		deliver_line_format(&line, buf, sizeof buf);
		if (strlen(buf) != size + 1 || memcmp(buf, data, size) != 0)
			abort();
	}
	return 0;
}
