/* test_deliver.c - the pure parts of delivery: back-off and envelope sender. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "deliver.h"

static void
backoff_follows_the_steps_then_retry_max(void **state)
{
	uint64_t steps[] = { 60000, 300000, 900000, 3600000 };
	struct retry_policy policy = { steps, 4, 4 * 3600000, 5 * 86400000ULL };
	static const struct { unsigned attempts; uint64_t want; } cases[] = {
		{ 0, 0 }, { 1, 60000 }, { 2, 300000 }, { 3, 900000 }, { 4, 3600000 },
		{ 5, 4 * 3600000 }, { 1000, 4 * 3600000 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t got = deliver_retry_delay_ms(&policy, cases[i].attempts);

		if (got != cases[i].want)
			fail_msg("attempts %u: got %llu ms, want %llu ms", cases[i].attempts,
			    (unsigned long long)got, (unsigned long long)cases[i].want);
	}
}

static void
envelope_from_is_the_routes_account_when_set(void **state)
{
	struct route with = { .name = "isp", .envelope_from = "joe@isp.example" };
	struct route without = { .name = "isp" };

	(void)state;
	assert_string_equal(deliver_envelope_from(&with, "alice@lan.example"), "joe@isp.example");
	assert_string_equal(deliver_envelope_from(&without, "alice@lan.example"), "alice@lan.example");
	assert_string_equal(deliver_envelope_from(NULL, ""), "");
}

static void
result_lines_round_trip_and_bad_ones_are_refused(void **state)
{
	static const char *const bad[] = {
		"", "660FF3E2F0294CD6A4", "660FF3E2F0294CD6A4 queue", "660FF3E2F0294CD6A4 queue -1",
		"660FF3E2F0294CD6A4 sent 0", "../../etc queue 0", "660ff3e2f0294cd6a4 queue 0",
		"660FF3E2F0294CD6A4 queue 12 extra", "660FF3E2F0294CD6A4  queue 12",
		"660FF3E2F0294CD6A4 queue 99999999999999999999999",
	};
	struct deliver_line in = { "660FF3E2F0294CD6A4", RESULT_QUEUE, 1795489200 }, out;
	char buf[DELIVER_LINE_MAX];

	(void)state;
	for (int r = RESULT_QUEUE; r <= RESULT_GONE; r++) {
		in.result = (enum deliver_result)r;
		deliver_line_format(&in, buf, sizeof buf);
		assert_int_equal(buf[strlen(buf) - 1], '\n');
		assert_int_equal(deliver_line_parse(buf, strlen(buf) - 1, &out), 0);
		assert_string_equal(out.id, in.id);
		assert_int_equal(out.result, in.result);
		assert_int_equal(out.next_try, in.next_try);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (deliver_line_parse(bad[i], strlen(bad[i]), &out) == 0)
			fail_msg("accepted a bad line: \"%s\"", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_follows_the_steps_then_retry_max),
		cmocka_unit_test(envelope_from_is_the_routes_account_when_set),
		cmocka_unit_test(result_lines_round_trip_and_bad_ones_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
