/* test_route.c - route selection (route.h) from a configuration text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "route.h"

static const char routes[] =
    "user =\nhostname = mx.test.example\nspool = /tmp/mailredir-test-route\n"
    "[route dogers]\nsmarthost = mail.other.example:2525\ndomains = dogers.com .example.net\n"
    "[route sales]\nsmarthost = sales.example\nsenders = @sales.lan.example boss@lan.example\n"
    "[route both]\nsmarthost = both.example\ndomains = both.example\nsenders = @lan.example\n"
    "[route isp]\nsmarthost = smtp.isp.example:587\n"
    "[route later]\nsmarthost = later.example\n";

static struct config *
load(const char *text)
{
	struct config *cfg = NULL;
	struct err err = { "" };

	if (config_load_string(text, "test.conf", &cfg, &err) < 0)
		fail_msg("config: %s", err.msg);
	return cfg;
}

static const char *
chosen(const struct config *cfg, const char *pinned, const char *sender, const char *rcpt,
    char *why, size_t size)
{
	const struct route *r = route_select(cfg, pinned, sender, rcpt, why, size);

	return r != NULL ? r->name : "(none)";
}

static void
domains_senders_and_the_default_route_decide_in_file_order(void **state)
{
	static const struct { const char *sender, *rcpt, *route, *why; } cases[] = {
		{ "a@lan.example", "bob@dogers.com", "dogers", "recipient domain dogers.com is in its domains (dogers.com)" },
		{ "a@lan.example", "bob@DOGERS.Com", "dogers", "(dogers.com)" },
		{ "a@lan.example", "x@example.net", "dogers", "(.example.net)" },
		{ "a@lan.example", "x@mx.sub.example.net", "dogers", "(.example.net)" },
		{ "a@lan.example", "x@sub.dogers.com", "isp", NULL },    /* not a subdomain match */
		{ "a@lan.example", "x@notexample.net", "isp", "the default route" },
		{ "carl@sales.lan.example", "x@ext.example", "sales", "sender carl@sales.lan.example is in its senders (@sales.lan.example)" },
		{ "carl@SALES.LAN.EXAMPLE", "x@ext.example", "sales", NULL },
		{ "boss@lan.example", "x@ext.example", "sales", "(boss@lan.example)" },
		{ "Boss@lan.example", "x@ext.example", "isp", NULL },    /* the local part is exact */
		{ "carl@sales.lan.example", "bob@dogers.com", "dogers", NULL },  /* file order */
		{ "a@lan.example", "x@both.example", "both", "and sender a@lan.example in its senders (@lan.example)" },
		{ "a@other.example", "x@both.example", "isp", NULL },    /* both must match */
		{ "", "x@ext.example", "isp", NULL },                    /* <> matches no senders */
		{ "a@lan.example", "postmaster", "isp", NULL },
	};
	struct config *cfg = load(routes);
	char why[ROUTE_WHY_MAX];

	(void)state;
	assert_string_equal(config_default_route(cfg)->name, "isp");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = chosen(cfg, NULL, cases[i].sender, cases[i].rcpt, why, sizeof why);

		if (strcmp(got, cases[i].route) != 0)
			fail_msg("%s -> %s: got route %s (%s), want %s", cases[i].sender, cases[i].rcpt,
			    got, why, cases[i].route);
		if (cases[i].why != NULL && strstr(why, cases[i].why) == NULL)
			fail_msg("%s -> %s: why \"%s\" lacks \"%s\"", cases[i].sender, cases[i].rcpt,
			    why, cases[i].why);
	}
	config_free(cfg);
}

static void
without_a_default_route_an_unmatched_recipient_has_none_and_a_reason(void **state)
{
	struct config *cfg = load("user =\nhostname = h.example\n[route dogers]\n"
	    "smarthost = m.example\ndomains = dogers.com\n");
	struct config *empty = load("user =\nhostname = h.example\n");
	char why[ROUTE_WHY_MAX];

	(void)state;
	assert_null(config_default_route(cfg));
	assert_string_equal(chosen(cfg, NULL, "a@lan.example", "x@ext.example", why, sizeof why),
	    "(none)");
	assert_non_null(strstr(why, "no route's domains or senders match x@ext.example from "
	    "a@lan.example, and there is no default route"));
	assert_string_equal(chosen(cfg, NULL, "a@lan.example", "x@dogers.com", why, sizeof why),
	    "dogers");
	assert_string_equal(chosen(empty, NULL, "a@lan.example", "x@ext.example", why, sizeof why),
	    "(none)");
	assert_non_null(strstr(why, "no [route NAME] section"));
	config_free(cfg);
	config_free(empty);
}

static void
a_pinned_route_wins_while_it_exists(void **state)
{
	struct config *cfg = load(routes);
	char why[ROUTE_WHY_MAX];

	(void)state;
	assert_string_equal(chosen(cfg, "later", "", "x@dogers.com", why, sizeof why), "later");
	assert_non_null(strstr(why, "bound to this route"));
	assert_string_equal(chosen(cfg, "gone", "", "x@dogers.com", why, sizeof why), "dogers");
	config_free(cfg);
}

static void
patterns_match_as_documented(void **state)
{
	(void)state;
	assert_true(route_domain_matches(".example.net", "example.net"));
	assert_true(route_domain_matches(".example.net", "a.b.EXAMPLE.net"));
	assert_false(route_domain_matches(".example.net", "badexample.net"));
	assert_false(route_domain_matches("example.net", "a.example.net"));
	assert_false(route_domain_matches(".example.net", ""));
	assert_true(route_sender_matches("@lan.example", "x@LAN.example"));
	assert_false(route_sender_matches("@lan.example", "x@sub.lan.example"));
	assert_true(route_sender_matches("a@lan.example", "a@Lan.Example"));
	assert_false(route_sender_matches("a@lan.example", "ab@lan.example"));
	assert_false(route_sender_matches("ab@lan.example", "a@lan.example"));
	assert_false(route_sender_matches("a@lan.example", ""));
	assert_false(route_sender_matches("a@lan.example", "a"));
}

static void
bad_patterns_are_configuration_errors(void **state)
{
	struct config *cfg = NULL;
	struct err err = { "" };

	(void)state;
	assert_int_equal(config_load_string("user =\nhostname = h.example\n[route a]\n"
	    "smarthost = m.example\ndomains = ok.example bad_domain\nsenders = @ nobody\n",
	    "t.conf", &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "t.conf:5: domains: 'bad_domain' is not a recipient domain"));
	assert_non_null(strstr(err.msg, "t.conf:6: senders: '@' is not a sender"));
	assert_null(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(domains_senders_and_the_default_route_decide_in_file_order),
		cmocka_unit_test(without_a_default_route_an_unmatched_recipient_has_none_and_a_reason),
		cmocka_unit_test(a_pinned_route_wins_while_it_exists),
		cmocka_unit_test(patterns_match_as_documented),
		cmocka_unit_test(bad_patterns_are_configuration_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
