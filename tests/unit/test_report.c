/* test_report.c - which recipients a delivery status notification is due
 * for, and where it goes (report.h; the message itself is test_dsn's). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "report.h"

struct rcpt_case {
	enum rcpt_status status;
	unsigned notify;
	bool was_open, plain_gateway;
};

/* The actions chosen for one recipient, as a string ("failed", "" for none). */
static const char *
selected(const char *sender, struct rcpt_case c, bool warn_delay, bool client_told)
{
	static char out[32];
	struct envelope env;
	struct report_rcpt_state st = { c.was_open, c.plain_gateway };
	struct report_item item;
	struct envelope_rcpt *r;
	size_t n;

	envelope_init(&env);
	env.sender = strdup(sender);
	r = envelope_add_rcpt(&env, "bob@ext.example");
	r->status = c.status;
	r->notify = c.notify;
	n = report_select(&env, &st, warn_delay, client_told, &item);
	snprintf(out, sizeof out, "%s", n == 0 ? "" : dsn_action_name(item.action));
	envelope_clear(&env);
	return out;
}

static void
reports_follow_the_attempt_and_notify(void **state)
{
	const unsigned success = DSN_NOTIFY_SUCCESS, never = DSN_NOTIFY_NEVER;
	const unsigned failure = DSN_NOTIFY_FAILURE;

	(void)state;
	/* a recipient that failed in this attempt */
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_FAILED, 0, true, false }, false, false), "failed");
	/* failed before: already reported */
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_FAILED, 0, false, false }, false, false), "");
	/* the null sender never gets one; NOTIFY=NEVER neither */
	assert_string_equal(selected("", (struct rcpt_case){ RCPT_FAILED, 0, true, false }, false, false), "");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_FAILED, never, true, false }, false, false), "");
	/* proxy mode: the client heard the refusal */
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_FAILED, 0, true, false }, false, true), "");
	/* success: only when asked, and only through a gateway without DSN */
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_SENT, success, true, true }, false, false), "relayed");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_SENT, success, true, false }, false, false), "");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_SENT, 0, true, true }, false, false), "");
	/* delay: when the warning is due; NOTIFY=FAILURE alone does not want it */
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_DEFERRED, 0, true, false }, true, false), "delayed");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_PENDING, 0, true, false }, true, false), "delayed");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_DEFERRED, 0, true, false }, false, false), "");
	assert_string_equal(selected("a@lan.example", (struct rcpt_case){ RCPT_DEFERRED, failure, true, false }, true, false), "");
}

static void
reports_go_to_the_sender_or_bounce_and_never_for_the_null_sender(void **state)
{
	struct config cfg = { .bounce = NULL };
	struct route r = { .name = "isp" };
	struct envelope env;

	(void)state;
	envelope_init(&env);
	env.sender = strdup("alice@lan.example");
	assert_string_equal(report_to(&cfg, &r, &env), "alice@lan.example");
	cfg.bounce = "postmaster@lan.example";
	assert_string_equal(report_to(&cfg, &r, &env), "postmaster@lan.example");
	assert_string_equal(report_to(&cfg, NULL, &env), "postmaster@lan.example");
	r.bounce = "none";                    /* the route's own setting wins */
	assert_null(report_to(&cfg, &r, &env));
	r.bounce = NULL;
	cfg.bounce = "none";
	assert_null(report_to(&cfg, &r, &env));
	cfg.bounce = "postmaster@lan.example";
	free(env.sender);
	env.sender = strdup("");
	assert_null(report_to(&cfg, &r, &env));
	envelope_clear(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reports_follow_the_attempt_and_notify),
		cmocka_unit_test(reports_go_to_the_sender_or_bounce_and_never_for_the_null_sender),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
