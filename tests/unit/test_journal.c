/* test_journal.c - the commit log: records come back after a "crash" (the
 * journal reopened without a checkpoint) in order and intact, retired ones
 * do not, a damaged record ends the replay, the ring wraps, a full journal
 * says so, and records an earlier run left behind never pass for new ones. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "util.h"

#define MAX_SEEN 64

struct fixture {
	char dir[64];
	char path[128];
	int content_fd;               /* the content every record carries */
	size_t content_len;
	struct journal *j;
};

/* What a replay handed back. */
struct seen {
	size_t n;
	uint64_t seq[MAX_SEEN];
	char envelope[MAX_SEEN][64];
	size_t content_len[MAX_SEEN];
	bool content_ok[MAX_SEEN];
	const struct fixture *f;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);
	char content_path[160];
	struct err err = { "" };

	strlcopy(f->dir, "/tmp/test_journal.XXXXXX", sizeof f->dir);
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/journal", f->dir);
	snprintf(content_path, sizeof content_path, "%s/content", f->dir);
	f->content_fd = open(content_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f->content_fd < 0 || journal_open(f->path, true, &f->j, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];

	journal_close(f->j);
	close(f->content_fd);
	snprintf(path, sizeof path, "%s/content", f->dir);
	unlink(path);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Every record carries f's content file: size it, filled with a pattern. */
static void
set_content(struct fixture *f, size_t len)
{
	char *buf = xmalloc(len ? len : 1);

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	assert_int_equal(ftruncate(f->content_fd, 0), 0);
	assert_int_equal(pwrite(f->content_fd, buf, len, 0), (ssize_t)len);
	f->content_len = len;
	free(buf);
}

/* Append records named by envelopes[0..n) as one batch; returns
 * journal_append's result and, in seqs/ends (may be NULL), where they went. */
static int
append(struct fixture *f, const char **envelopes, size_t n, uint64_t *seqs, uint64_t *ends)
{
	struct journal_entry e[16];
	struct err err = { "" };
	int r;

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct journal_entry){ .envelope = envelopes[i],
		    .envelope_len = strlen(envelopes[i]), .content_fd = f->content_fd,
		    .content_len = f->content_len };
	r = journal_append(f->j, e, n, &err);
	if (r < 0)
		fail_msg("journal_append: %s", err.msg);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (seqs != NULL)
			seqs[i] = e[i].seq;
		if (ends != NULL)
			ends[i] = e[i].end;
	}
	return r;
}

static int
collect(void *arg, uint64_t seq, const char *envelope, size_t envelope_len,
    const unsigned char *content, size_t content_len, struct err *err)
{
	struct seen *s = arg;

	(void)err;
	if (s->n == MAX_SEEN)
		return -1;
	s->seq[s->n] = seq;
	snprintf(s->envelope[s->n], sizeof s->envelope[0], "%.*s", (int)envelope_len, envelope);
	s->content_len[s->n] = content_len;
	s->content_ok[s->n] = true;
	for (size_t i = 0; i < content_len; i++)
		if (content[i] != (unsigned char)('a' + i % 26))
			s->content_ok[s->n] = false;
	/* As the spool does with the envelope's seal: content that does not
	 * check out is the end of the journal. */
	if (!s->content_ok[s->n])
		return 1;
	s->n++;
	return 0;
}

/* "Crash": close the journal and open it again as a new run would. */
static void
reopen(struct fixture *f, struct seen *s)
{
	struct err err = { "" };

	journal_close(f->j);
	if (journal_open(f->path, false, &f->j, &err) < 0)
		fail_msg("journal_open: %s", err.msg);
	memset(s, 0, sizeof *s);
	if (journal_replay(f->j, collect, s, &err) < 0)
		fail_msg("journal_replay: %s", err.msg);
}

/* --- tests ---------------------------------------------------------------- */

static void
written_this_boot(void **state)
{
	struct fixture *f = *state;
	struct err err = { "" };
	struct seen s;

	/* Made now, its checkpoint names this boot... */
	assert_true(journal_same_boot(f->j));
	/* ...unless the file comes from another one (its checkpoint copies
	 * rewritten as another boot would have). */
	{
		unsigned char buf[JOURNAL_CHECKPOINT_SIZE];
		struct journal_checkpoint cp = { 0, JOURNAL_DATA_START, JOURNAL_SIZE, "another-boot" };
		int fd = open(f->path, O_RDWR);

		journal_checkpoint_encode(&cp, buf);
		assert_int_equal(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
		assert_int_equal(pwrite(fd, buf, sizeof buf, 512), (ssize_t)sizeof buf);
		close(fd);
	}
	reopen(f, &s);
	assert_false(journal_same_boot(f->j));
	assert_int_equal(journal_checkpoint_replayed(f->j, &err), 0);
	journal_close(f->j);
	assert_int_equal(journal_open(f->path, false, &f->j, &err), 0);
	assert_true(journal_same_boot(f->j));
}

static void
records_come_back_in_order(void **state)
{
	struct fixture *f = *state;
	const char *batch1[] = { "one", "two" }, *batch2[] = { "three" };
	uint64_t seqs[3];
	struct seen s;
	struct stat st;

	set_content(f, 5000);
	assert_int_equal(append(f, batch1, 2, seqs, NULL), 0);
	assert_int_equal(append(f, batch2, 1, seqs + 2, NULL), 0);
	assert_true(seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1);
	assert_true(journal_used(f->j) == 3 * (JOURNAL_HEAD_SIZE + 3 + 5000) + 2);
	reopen(f, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.envelope[0], "one");
	assert_string_equal(s.envelope[1], "two");
	assert_string_equal(s.envelope[2], "three");
	for (size_t i = 0; i < 3; i++) {
		assert_true(s.seq[i] == seqs[i]);
		assert_int_equal(s.content_len[i], 5000);
		assert_true(s.content_ok[i]);
	}
	/* The file never grows: its blocks were written once. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, JOURNAL_SIZE);
}

static void
checkpoint_retires_records(void **state)
{
	struct fixture *f = *state;
	const char *batch[] = { "one", "two", "three" };
	uint64_t seqs[3], ends[3];
	struct err err = { "" };
	struct seen s;

	set_content(f, 100);
	assert_int_equal(append(f, batch, 3, seqs, ends), 0);
	journal_stage_checkpoint(f->j, seqs[1], ends[1]);
	assert_int_equal(journal_sync_checkpoint(f->j, &err), 0);
	assert_true(journal_used(f->j) == ends[2] - ends[1]);
	reopen(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.envelope[0], "three");
}

static void
staged_checkpoint_rides_on_the_next_append(void **state)
{
	struct fixture *f = *state;
	const char *batch1[] = { "one" }, *batch2[] = { "two" };
	uint64_t seqs[1], ends[1];
	struct seen s;

	set_content(f, 10);
	assert_int_equal(append(f, batch1, 1, seqs, ends), 0);
	journal_stage_checkpoint(f->j, seqs[0], ends[0]);
	/* Not written yet: a crash now would replay "one" (harmless). */
	assert_int_equal(append(f, batch2, 1, NULL, NULL), 0);
	reopen(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.envelope[0], "two");
}

static void
damaged_record_ends_the_replay(void **state)
{
	struct fixture *f = *state;
	const char *batch[] = { "one", "two", "three" };
	uint64_t ends[3];
	struct seen s;
	int fd;

	set_content(f, 300);
	assert_int_equal(append(f, batch, 3, NULL, ends), 0);
	/* A byte of the second record's envelope never reached the disk. */
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)ends[0] + JOURNAL_HEAD_SIZE), 1);
	close(fd);
	reopen(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.envelope[0], "one");
}

static void
ring_wraps_and_replays_across_the_end(void **state)
{
	struct fixture *f = *state;
	const char *names[] = { "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7" };
	const char *more[] = { "w0", "w1", "w2" };
	uint64_t seqs[8], ends[8], mseqs[3], mends[3];
	struct err err = { "" };
	struct seen s;

	set_content(f, JOURNAL_SIZE / 10 - 4096);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(append(f, names + i, 1, seqs + i, ends + i), 0);
	/* 8 tenths used: a ninth and tenth fit before the end, an eleventh
	 * only after the tail moved. */
	assert_int_equal(append(f, more, 3, NULL, NULL), 1);
	journal_stage_checkpoint(f->j, seqs[7], ends[7]);
	assert_int_equal(journal_sync_checkpoint(f->j, &err), 0);
	assert_true(journal_used(f->j) == 0);
	assert_int_equal(append(f, more, 3, mseqs, mends), 0);
	assert_true(mends[2] < mends[1]);                 /* w2 went to the start */
	reopen(f, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.envelope[0], "w0");
	assert_string_equal(s.envelope[2], "w2");
	assert_true(s.content_ok[2]);
	/* Retire across the wrap, and the ring is empty again. */
	journal_stage_checkpoint(f->j, mseqs[2], mends[2]);
	assert_int_equal(journal_sync_checkpoint(f->j, &err), 0);
	reopen(f, &s);
	assert_int_equal(s.n, 0);
}

static void
full_journal_says_so(void **state)
{
	struct fixture *f = *state;
	const char *one[] = { "x" };
	size_t appended = 0;
	int r;

	set_content(f, JOURNAL_SIZE / 8 - 100);
	while ((r = append(f, one, 1, NULL, NULL)) == 0)
		appended++;
	assert_int_equal(r, 1);
	assert_int_equal(appended, (JOURNAL_SIZE - JOURNAL_DATA_START) /
	    (JOURNAL_HEAD_SIZE + 1 + JOURNAL_SIZE / 8 - 100));
	/* Too big for it at all. */
	assert_false(journal_fits(1, JOURNAL_RECORD_MAX));
}

static void
old_records_never_pass_for_new_ones(void **state)
{
	struct fixture *f = *state;
	const char *old[] = { "old1", "old2", "old3" }, *fresh[] = { "new2" };
	uint64_t ends[3];
	struct err err = { "" };
	struct seen s;
	int fd;

	set_content(f, 50);
	assert_int_equal(append(f, old, 3, NULL, ends), 0);
	/* A crash cut old2 short (so old2 and old3 were never acknowledged),
	 * but old3 reached the disk whole. */
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)ends[1] - 1), 1);
	close(fd);
	reopen(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.envelope[0], "old1");
	assert_int_equal(journal_checkpoint_replayed(f->j, &err), 0);
	/* The next run writes a record of old2's size where old2 was: old3
	 * follows it, intact, and must not be taken for the next record. */
	assert_int_equal(append(f, fresh, 1, NULL, NULL), 0);
	reopen(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.envelope[0], "new2");
	assert_int_equal(journal_checkpoint_replayed(f->j, &err), 0);
	reopen(f, &s);
	assert_int_equal(s.n, 0);
}

static void
decoders_refuse_damage(void **state)
{
	unsigned char buf[JOURNAL_CHECKPOINT_SIZE];
	struct journal_checkpoint cp = { 7, JOURNAL_DATA_START + 100, JOURNAL_SIZE, "boot" }, back;
	struct journal_record_head h;

	(void)state;
	journal_checkpoint_encode(&cp, buf);
	assert_int_equal(journal_checkpoint_decode(buf, sizeof buf, &back), 0);
	assert_true(back.seq == 7 && back.offset == cp.offset && back.size == cp.size);
	assert_string_equal(back.boot_id, "boot");
	buf[9] ^= 1;
	assert_int_equal(journal_checkpoint_decode(buf, sizeof buf, &back), -1);
	assert_int_equal(journal_checkpoint_decode(buf, 10, &back), -1);
	memset(buf, 0, sizeof buf);
	assert_int_equal(journal_record_decode(buf, JOURNAL_HEAD_SIZE, &h), -1);
	memcpy(buf, "MRJR", 4);
	buf[4] = 3;                                      /* no such type */
	assert_int_equal(journal_record_decode(buf, JOURNAL_HEAD_SIZE, &h), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(written_this_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(records_come_back_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(checkpoint_retires_records, setup, teardown),
		cmocka_unit_test_setup_teardown(staged_checkpoint_rides_on_the_next_append, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(damaged_record_ends_the_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(ring_wraps_and_replays_across_the_end, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(full_journal_says_so, setup, teardown),
		cmocka_unit_test_setup_teardown(old_records_never_pass_for_new_ones, setup,
		    teardown),
		cmocka_unit_test(decoders_refuse_damage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
