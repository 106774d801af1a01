/* test_login_state.c - the routes' login memory (login_state.h): the pure
 * find/update pair, and load/save in a directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "login_state.h"

static void
finds_a_routes_line_and_skips_bad_ones(void **state)
{
	static const char text[] = "isp 1795489200 3000\n"
	    "garbage line\n"
	    "other -5 10\n"                 /* negative time: bad */
	    "other 5 -10\n"                 /* negative delay: bad */
	    "other 5 600001\n"              /* beyond LOGIN_STATE_DELAY_MAX: bad */
	    "other 1795489300 0 extra\n"    /* extra field: bad */
	    "other 1795489300 0\n"
	    "\n";
	struct login_memory m;

	(void)state;
	login_state_find(text, sizeof text - 1, "isp", &m);
	assert_int_equal(m.last_login, 1795489200);
	assert_int_equal(m.delay_ms, 3000);
	login_state_find(text, sizeof text - 1, "other", &m);
	assert_int_equal(m.last_login, 1795489300);
	assert_int_equal(m.delay_ms, 0);
	login_state_find(text, sizeof text - 1, "none", &m);
	assert_int_equal(m.last_login, 0);
	login_state_find("isp 1 2", 7, "isp", &m);      /* no final LF */
	assert_int_equal(m.delay_ms, 2);
	login_state_find("isp\0 1 2\n", 9, "isp", &m);  /* NUL: bad */
	assert_int_equal(m.last_login, 0);
}

static void
update_replaces_one_line_keeps_the_others_and_drops_bad_ones(void **state)
{
	static const char text[] = "a 10 1\nbad\nisp 20 2\nb 30 3\n";
	struct login_memory m = { 99, 4000 };
	size_t len;
	char *out;

	(void)state;
	out = login_state_update(text, sizeof text - 1, "isp", &m, &len);
	assert_string_equal(out, "a 10 1\nb 30 3\nisp 99 4000\n");
	assert_int_equal(len, strlen(out));
	free(out);
	out = login_state_update("", 0, "new", &m, &len);
	assert_string_equal(out, "new 99 4000\n");
	free(out);
	out = login_state_update("", 0, "my-isp.2", &m, &len);   /* every route-name character */
	login_state_find(out, len, "my-isp.2", &m);
	assert_int_equal(m.last_login, 99);
	free(out);
}

static void
save_and_load_through_the_spool_directory(void **state)
{
	char dir[] = "/tmp/mailredir-login-state-XXXXXX", path[256];
	struct login_memory m = { 1795489200, 2500 }, got;
	struct err err = { "" };

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(login_state_load(dir, "isp", &got, &err), 0);   /* no file yet */
	assert_int_equal(got.last_login, 0);
	assert_int_equal(login_state_save(dir, "isp", &m, &err), 0);
	m.delay_ms = 0;
	assert_int_equal(login_state_save(dir, "other", &m, &err), 0);
	assert_int_equal(login_state_load(dir, "isp", &got, &err), 0);
	assert_int_equal(got.last_login, 1795489200);
	assert_int_equal(got.delay_ms, 2500);
	snprintf(path, sizeof path, "%s/login-state", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/login-state.lock", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_a_routes_line_and_skips_bad_ones),
		cmocka_unit_test(update_replaces_one_line_keeps_the_others_and_drops_bad_ones),
		cmocka_unit_test(save_and_load_through_the_spool_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
