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
	/* a report keeps <>, unless the route has bounce-from */
	assert_string_equal(deliver_envelope_from(&with, ""), "");
	with.bounce_from = "bounces@isp.example";
	assert_string_equal(deliver_envelope_from(&with, ""), "bounces@isp.example");
	assert_string_equal(deliver_envelope_from(&with, "a@lan.example"), "joe@isp.example");
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

/* An envelope with recipients in the given states and replies. */
static void
envelope_with(struct envelope *env, const enum rcpt_status *status, const char *const *reply,
    size_t n)
{
	envelope_init(env);
	for (size_t i = 0; i < n; i++) {
		struct envelope_rcpt *r = envelope_add_rcpt(env, "x@ext.example");

		r->status = status[i];
		r->reply = reply[i] != NULL ? strdup(reply[i]) : NULL;
	}
}

static void
proxy_verdict_passes_the_gateways_reply_on(void **state)
{
	static const struct {
		enum deliver_result result;
		enum rcpt_status status[2];
		const char *reply[2];
		size_t n;
		const char *want;
	} cases[] = {
		{ RESULT_DONE, { RCPT_SENT }, { NULL }, 1, "250 2.0.0 Ok: delivered as ID1" },
		{ RESULT_FAILED, { RCPT_FAILED, RCPT_FAILED },
		  { "550 5.1.1 <x@ext.example>: no such user", "550 5.1.1 other" }, 2,
		  "550 5.1.1 <x@ext.example>: no such user" },
		{ RESULT_QUEUE, { RCPT_DEFERRED }, { "450 4.2.0 mailbox busy" }, 1,
		  "450 4.2.0 mailbox busy" },
		{ RESULT_QUEUE, { RCPT_DEFERRED }, { "no reply within 3 s after DATA" }, 1,
		  "451 4.4.0 no reply within 3 s after DATA" },
		{ RESULT_QUEUE, { RCPT_DEFERRED }, { "535 5.7.8 authentication failed" }, 1,
		  "451 4.4.0 535 5.7.8 authentication failed" },
		{ RESULT_FAILED, { RCPT_FAILED }, { "gave up after max-age: x" }, 1,
		  "554 5.0.0 gave up after max-age: x" },
		{ RESULT_QUEUE, { RCPT_SENT, RCPT_DEFERRED }, { "250 ok", "451 later" }, 2,
		  "250 2.0.0 Ok: queued as ID1; delivered to 1 of 2 recipients, the rest will be retried" },
		{ RESULT_FAILED, { RCPT_SENT, RCPT_FAILED }, { "250 ok", "550 no" }, 2,
		  "250 2.0.0 Ok: queued as ID1; delivered to 1 of 2 recipients, the rest get a bounce" },
		{ RESULT_BUSY, { RCPT_PENDING }, { NULL }, 1, "250 2.0.0 Ok: queued as ID1" },
	};
	struct deliver_line line = { .id = "ID1" };
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct envelope env;

		envelope_with(&env, cases[i].status, cases[i].reply, cases[i].n);
		line.result = cases[i].result;
		deliver_proxy_verdict(&line, &env, buf, sizeof buf);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].want);
		envelope_clear(&env);
	}
	line.result = RESULT_QUEUE;
	deliver_proxy_verdict(&line, NULL, buf, sizeof buf);   /* no envelope: it is queued */
	assert_string_equal(buf, "250 2.0.0 Ok: queued as ID1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_follows_the_steps_then_retry_max),
		cmocka_unit_test(envelope_from_is_the_routes_account_when_set),
		cmocka_unit_test(result_lines_round_trip_and_bad_ones_are_refused),
		cmocka_unit_test(proxy_verdict_passes_the_gateways_reply_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
