/* fuzz_worker_batch.c - the batch lines a delivery worker reads from the
 * daemon: the daemon is trusted, but a worker must not trust a line it
 * cannot parse (a bug or a corrupted pipe) with paths built from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *ids[WORKER_BATCH_MAX];
	size_t n = 0;
	enum deliver_mode mode = DELIVER_DUE;

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	if (worker_batch_parse(line, size, &mode, ids, &n) == 0) {
		if (n == 0 || n > WORKER_BATCH_MAX)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!spool_id_valid(ids[i]))
				abort();
	}
	free(line);
	return 0;
}
