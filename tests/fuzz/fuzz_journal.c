/* fuzz_journal.c - the commit log read back after a crash: whatever bytes
 * the disk holds after the checkpoint (records cut short, old laps of the
 * ring, garbage), replay must stop cleanly at the first record that does
 * not check out, never read outside the file, never loop.  The input is
 * the record area of a small journal whose checkpoint is valid; the first
 * JOURNAL_CHECKPOINT_SIZE bytes are also tried as a checkpoint copy. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "journal.h"

#define AREA (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
accept_record(void *arg, uint64_t seq, const char *envelope, size_t envelope_len,
    const unsigned char *content, size_t content_len, struct err *err)
{
	struct envelope env;
	size_t *total = arg;

	(void)seq;
	(void)content;
	if (envelope_len > AREA || content_len > AREA)
		abort();
	*total += envelope_len + content_len;
	if (envelope_parse(envelope, envelope_len, &env, err) == 0)
		envelope_clear(&env);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static unsigned char *image;
	struct journal_checkpoint cp = { 0, JOURNAL_DATA_START, JOURNAL_DATA_START + AREA, "" };
	struct journal *j;
	struct err err = { "" };
	size_t total = 0;
	int fd;

	if (journal_checkpoint_decode(data, size, &cp) == 0 && cp.offset > cp.size)
		abort();
	cp = (struct journal_checkpoint){ 0, JOURNAL_DATA_START, JOURNAL_DATA_START + AREA, "" };
	if (image == NULL) {
		image = calloc(1, JOURNAL_DATA_START + AREA);
		snprintf(path, sizeof path, "/tmp/fuzz_journal.%d", (int)getpid());
	}
	memset(image, 0, JOURNAL_DATA_START + AREA);
	journal_checkpoint_encode(&cp, image);
	journal_checkpoint_encode(&cp, image + 512);
	memcpy(image + JOURNAL_DATA_START, data, size < AREA ? size : AREA);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, image, JOURNAL_DATA_START + AREA) != JOURNAL_DATA_START + AREA)
		abort();
	close(fd);
	if (journal_open(path, false, &j, &err) == 0) {
		if (journal_replay(j, accept_record, &total, &err) < 0 || total > AREA)
			abort();
		journal_close(j);
	}
	unlink(path);
	return 0;
}
