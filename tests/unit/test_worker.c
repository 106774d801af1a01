/* test_worker.c - the batch lines the daemon writes to its workers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "worker.h"

#define ID1 "660FF3E2F0294CD6A4"
#define ID2 "660FF3E2F0294CD6B7"

static int
parse(const char *text, enum deliver_mode *mode, char **ids, size_t *n, char *buf, size_t size)
{
	size_t len = strlen(text);

	assert_true(len < size);
	memcpy(buf, text, len + 1);
	buf[len] = 'X';            /* the '\n' the worker read: overwritten */
	return worker_batch_parse(buf, len, mode, ids, n);
}

static void
due_and_force_batches_parse_into_their_ids(void **state)
{
	char buf[WORKER_LINE_MAX + 1], *ids[WORKER_BATCH_MAX];
	enum deliver_mode mode = DELIVER_FORCE;
	size_t n = 0;

	(void)state;
	assert_int_equal(parse("due " ID1, &mode, ids, &n, buf, sizeof buf), 0);
	assert_int_equal(mode, DELIVER_DUE);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], ID1);
	assert_int_equal(parse("force " ID1 " " ID2, &mode, ids, &n, buf, sizeof buf), 0);
	assert_int_equal(mode, DELIVER_FORCE);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], ID1);
	assert_string_equal(ids[1], ID2);
	assert_int_equal(parse("proxy " ID2, &mode, ids, &n, buf, sizeof buf), 0);
	assert_int_equal(mode, DELIVER_PROXY);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], ID2);
}

static void
a_full_batch_fits_and_one_more_id_is_refused(void **state)
{
	char line[WORKER_LINE_MAX + 200], buf[sizeof line], *ids[WORKER_BATCH_MAX];
	size_t len = (size_t)snprintf(line, sizeof line, "force"), n;
	enum deliver_mode mode;

	(void)state;
	for (int i = 0; i < WORKER_BATCH_MAX; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " %s", ID1);
	assert_true(len + 1 <= WORKER_LINE_MAX);      /* the daemon's buffer holds it with '\n' */
	assert_int_equal(parse(line, &mode, ids, &n, buf, sizeof buf), 0);
	assert_int_equal(n, WORKER_BATCH_MAX);
	snprintf(line + len, sizeof line - len, " %s", ID2);
	assert_int_equal(parse(line, &mode, ids, &n, buf, sizeof buf), -1);
}

static void
anything_else_is_not_a_batch(void **state)
{
	static const char *const bad[] = {
		"", "due", "due ", "force", "flush " ID1, "due  " ID1, "due " ID1 " ",
		" due " ID1, "due ../../etc/passwd", "due " ID1 "0", "DUE " ID1,
		"due 660ff3e2f0294cd6a4",
	};
	char buf[256], *ids[WORKER_BATCH_MAX];
	enum deliver_mode mode;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (parse(bad[i], &mode, ids, &n, buf, sizeof buf) == 0)
			fail_msg("accepted a bad batch line: \"%s\"", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(due_and_force_batches_parse_into_their_ids),
		cmocka_unit_test(a_full_batch_fits_and_one_more_id_is_refused),
		cmocka_unit_test(anything_else_is_not_a_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
