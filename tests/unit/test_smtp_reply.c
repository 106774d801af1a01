/* test_smtp_reply.c - smtp_reply_add_line, smtp_reply_summary, smtp_caps_parse,
 * smtp_reply_means_relay_denied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_reply.h"

#define N(array) (sizeof(array) / sizeof((array)[0]))

static const char *
add_name(enum smtp_reply_add a)
{
	return a == SMTP_REPLY_MORE ? "MORE" : a == SMTP_REPLY_DONE ? "DONE" : "BAD";
}

/* Feed the lines of `lines` (separated by '\n') until one is BAD or the
 * lines run out; returns the last result and how many lines were fed. */
static enum smtp_reply_add
feed(struct smtp_reply *r, const char *lines, size_t *fed)
{
	enum smtp_reply_add got = SMTP_REPLY_MORE;
	const char *p = lines;

	smtp_reply_init(r);
	*fed = 0;
	for (;;) {
		size_t n = strcspn(p, "\n");

		got = smtp_reply_add_line(r, p, n);
		(*fed)++;
		if (got == SMTP_REPLY_BAD || p[n] == '\0')
			return got;
		p += n + 1;
	}
}

/* --- reply lines ----------------------------------------------------------- */

static const struct {
	const char *name, *lines;
	enum smtp_reply_add want;
	int code;
	const char *enhanced, *text;
	size_t nlines;
} cases[] = {
	{ "single line", "250 OK", SMTP_REPLY_DONE, 250, "", "OK", 1 },
	{ "code alone", "250", SMTP_REPLY_DONE, 250, "", "", 1 },
	{ "code and a space", "354 ", SMTP_REPLY_DONE, 354, "", "", 1 },
	{ "continuation line", "250-first", SMTP_REPLY_MORE, 250, "", "first", 1 },
	{ "multi-line", "250-mx.example\n250-PIPELINING\n250 SIZE 100",
	    SMTP_REPLY_DONE, 250, "", "mx.example\nPIPELINING\nSIZE 100", 3 },
	{ "multi-line, bare last", "250-a\n250", SMTP_REPLY_DONE, 250, "", "a\n", 2 },
	{ "enhanced code", "550 5.1.1 <b@x.example>: user unknown", SMTP_REPLY_DONE, 550,
	    "5.1.1", "<b@x.example>: user unknown", 1 },
	{ "enhanced code alone", "250 2.0.0", SMTP_REPLY_DONE, 250, "2.0.0", "", 1 },
	{ "enhanced code, long parts", "452 4.123.999 full", SMTP_REPLY_DONE, 452, "4.123.999",
	    "full", 1 },
	{ "enhanced repeated on each line", "550-5.7.1 one\n550-5.7.1 two\n550 5.7.1 three",
	    SMTP_REPLY_DONE, 550, "5.7.1", "one\ntwo\nthree", 3 },
	{ "other enhanced later is text", "550-5.7.1 one\n550 5.1.1 two", SMTP_REPLY_DONE, 550,
	    "5.7.1", "one\n5.1.1 two", 2 },
	{ "enhanced class mismatch", "550 4.7.1 no", SMTP_REPLY_DONE, 550, "", "4.7.1 no", 1 },
	{ "enhanced class 3 never", "354 3.0.0 go", SMTP_REPLY_DONE, 354, "", "3.0.0 go", 1 },
	{ "enhanced 4 digits is text", "250 2.0.1234 x", SMTP_REPLY_DONE, 250, "", "2.0.1234 x", 1 },
	{ "enhanced glued to text", "250 2.0.0ok", SMTP_REPLY_DONE, 250, "", "2.0.0ok", 1 },
	{ "enhanced missing detail", "250 2.0. x", SMTP_REPLY_DONE, 250, "", "2.0. x", 1 },
	{ "code changes mid-reply", "250-a\n251 b", SMTP_REPLY_BAD, 0, "", "251 b", 2 },
	{ "1xx code", "150 go", SMTP_REPLY_BAD, 0, "", "150 go", 1 },
	{ "6xx code", "600 x", SMTP_REPLY_BAD, 0, "", "600 x", 1 },
	{ "0xx code", "050 x", SMTP_REPLY_BAD, 0, "", "050 x", 1 },
	{ "two digits", "25 ok", SMTP_REPLY_BAD, 0, "", "25 ok", 1 },
	{ "two digits alone", "25", SMTP_REPLY_BAD, 0, "", "25", 1 },
	{ "letters", "abc", SMTP_REPLY_BAD, 0, "", "abc", 1 },
	{ "letter in code", "2x0 ok", SMTP_REPLY_BAD, 0, "", "2x0 ok", 1 },
	{ "empty line", "", SMTP_REPLY_BAD, 0, "", "", 1 },
	{ "missing space", "250OK", SMTP_REPLY_BAD, 0, "", "250OK", 1 },
	{ "four digits", "2500 OK", SMTP_REPLY_BAD, 0, "", "2500 OK", 1 },
	{ "tab separator", "250\tOK", SMTP_REPLY_BAD, 0, "", "250\tOK", 1 },
	{ "leading space", " 250 OK", SMTP_REPLY_BAD, 0, "", " 250 OK", 1 },
	{ "bad line after good ones", "250-a\n250-b\nxyz", SMTP_REPLY_BAD, 0, "", "xyz", 3 },
	{ "line after the last", "250 a\n250 b", SMTP_REPLY_BAD, 0, "", "250 b", 2 },
};

static void
parses_each_case(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct smtp_reply r;
		size_t fed;
		enum smtp_reply_add got = feed(&r, cases[i].lines, &fed);

		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].name, add_name(got),
			    add_name(cases[i].want));
		if (r.code != cases[i].code)
			fail_msg("%s: got code %d, want %d", cases[i].name, r.code, cases[i].code);
		if (strcmp(r.enhanced, cases[i].enhanced) != 0)
			fail_msg("%s: got enhanced \"%s\", want \"%s\"", cases[i].name, r.enhanced,
			    cases[i].enhanced);
		if (strcmp(r.text, cases[i].text) != 0)
			fail_msg("%s: got text \"%s\", want \"%s\"", cases[i].name, r.text,
			    cases[i].text);
		if (fed != cases[i].nlines)
			fail_msg("%s: fed %zu lines, want %zu", cases[i].name, fed, cases[i].nlines);
		if (r.bad != (got == SMTP_REPLY_BAD) || (r.bad && r.why == NULL))
			fail_msg("%s: bad = %d, why = %s", cases[i].name, r.bad,
			    r.why ? r.why : "NULL");
		if (r.done != (got == SMTP_REPLY_DONE))
			fail_msg("%s: done = %d after %s", cases[i].name, r.done, add_name(got));
	}
}

static void
nul_and_lf_become_question_marks(void **state)
{
	struct smtp_reply r;

	(void)state;
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "250-a\0b", 7), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_add_line(&r, "250 c\nd", 7), SMTP_REPLY_DONE);
	assert_string_equal(r.text, "a?b\nc?d");
	assert_int_equal(r.nlines, 2);
}

static void
stays_bad(void **state)
{
	struct smtp_reply r;

	(void)state;
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "xx", 2), SMTP_REPLY_BAD);
	assert_int_equal(smtp_reply_add_line(&r, "250 ok", 6), SMTP_REPLY_BAD);
	assert_true(r.bad);
	assert_int_equal(r.code, 0);
}

static void
cuts_long_text(void **state)
{
	static char line[8000];
	struct smtp_reply r;

	(void)state;
	memcpy(line, "250 ", 4);
	memset(line + 4, 'x', sizeof line - 4);
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, line, sizeof line), SMTP_REPLY_DONE);
	assert_int_equal(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
	assert_true(r.cut);

	/* a multi-byte character that does not fit is left out whole */
	memset(line + 4, 'y', SMTP_REPLY_TEXT_MAX - 2);
	memcpy(line + 4 + SMTP_REPLY_TEXT_MAX - 2, "\xc3\xa9zz", 4);
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, line, 4 + SMTP_REPLY_TEXT_MAX + 2),
	    SMTP_REPLY_DONE);
	if (strlen(r.text) != SMTP_REPLY_TEXT_MAX - 2)
		fail_msg("cut inside a character: got %zu octets, want %d", strlen(r.text),
		    SMTP_REPLY_TEXT_MAX - 2);

	/* after a cut, later (short) lines add nothing */
	smtp_reply_init(&r);
	line[3] = '-';
	assert_int_equal(smtp_reply_add_line(&r, line, 3000), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_add_line(&r, "250 z", 5), SMTP_REPLY_DONE);
	assert_null(strchr(r.text, 'z'));
	assert_int_equal(r.nlines, 2);
}

static void
too_many_lines(void **state)
{
	struct smtp_reply r;

	(void)state;
	smtp_reply_init(&r);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		if (smtp_reply_add_line(&r, "250-x", 5) != SMTP_REPLY_MORE)
			fail_msg("line %d: got not MORE", i + 1);
	assert_int_equal(smtp_reply_add_line(&r, "250 x", 5), SMTP_REPLY_BAD);

	smtp_reply_init(&r);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		assert_int_equal(smtp_reply_add_line(&r, "250-x", 5), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_add_line(&r, "250 x", 5), SMTP_REPLY_DONE);
	assert_int_equal(r.nlines, SMTP_REPLY_LINES_MAX);
}

/* --- summary --------------------------------------------------------------- */

static const struct {
	const char *name, *lines, *want;
} summaries[] = {
	{ "plain", "250 OK", "250 OK" },
	{ "enhanced", "550 5.1.1 no such user", "550 5.1.1 no such user" },
	{ "enhanced alone", "250 2.0.0", "250 2.0.0" },
	{ "code alone", "250", "250" },
	{ "lines joined", "550-5.7.1 one\n550 5.7.1 two", "550 5.7.1 one two" },
	{ "control characters", "451 a\tb\x7f" "c\rd", "451 a?b?c?d" },
	{ "bad", "abc", "malformed reply (not a reply code of 200..599 followed by a space "
	    "or '-'): abc" },
	{ "code changed", "250-a\n550 b", "malformed reply (the code changed within the "
	    "reply): 550 b" },
	{ "UTF-8 kept", "550 Empf\xc3\xa4nger unbekannt", "550 Empf\xc3\xa4nger unbekannt" },
};

static void
summarises_each_case(void **state)
{
	char buf[512];

	(void)state;
	for (size_t i = 0; i < N(summaries); i++) {
		struct smtp_reply r;
		size_t fed;

		feed(&r, summaries[i].lines, &fed);
		smtp_reply_summary(&r, buf, sizeof buf);
		if (strcmp(buf, summaries[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", summaries[i].name, buf,
			    summaries[i].want);
	}
}

static void
summary_fits_the_buffer(void **state)
{
	struct smtp_reply r;
	char buf[12];

	(void)state;
	smtp_reply_init(&r);
	assert_string_equal(smtp_reply_summary(&r, buf, sizeof buf), "no reply");
	smtp_reply_add_line(&r, "550 5.1.1 abcdefghijkl", 22);
	assert_string_equal(smtp_reply_summary(&r, buf, sizeof buf), "550 5.1.1 a");
	assert_string_equal(smtp_reply_summary(&r, buf, 1), "");
	assert_ptr_equal(smtp_reply_summary(&r, buf, 0), buf);

	/* "550 \xc3\xa4" would be cut after the lead byte: leave the character out */
	smtp_reply_init(&r);
	smtp_reply_add_line(&r, "550 abcdef\xc3\xa4", 12);
	assert_string_equal(smtp_reply_summary(&r, buf, 12), "550 abcdef");
}

/* --- EHLO keywords --------------------------------------------------------- */

enum {
	PIPE = 1 << 0, STLS = 1 << 1, B8 = 1 << 2, UTF8 = 1 << 3, DSN = 1 << 4,
	ENH = 1 << 5, CHUNK = 1 << 6, HSIZE = 1 << 7,
};

static const struct {
	const char *name, *lines;
	unsigned flags;
	uint64_t size;
	const char *auth;
} caps_cases[] = {
	{ "greeting only", "250 mx.example", 0, 0, "" },
	{ "greeting is skipped", "250-PIPELINING\n250 DSN", DSN, 0, "" },
	{ "every keyword", "250-mx.example Hello\n250-PIPELINING\n250-STARTTLS\n250-8BITMIME\n"
	    "250-SMTPUTF8\n250-DSN\n250-ENHANCEDSTATUSCODES\n250-CHUNKING\n250-SIZE 1000\n"
	    "250 AUTH PLAIN LOGIN", PIPE | STLS | B8 | UTF8 | DSN | ENH | CHUNK | HSIZE, 1000,
	    "PLAIN LOGIN" },
	{ "lower case", "250-mx\n250-pipelining\n250-starttls\n250 auth plain cram-md5",
	    PIPE | STLS, 0, "PLAIN CRAM-MD5" },
	{ "with enhanced codes", "250-2.0.0 mx\n250-2.0.0 PIPELINING\n250 2.0.0 8BITMIME",
	    PIPE | B8, 0, "" },
	{ "SIZE without value", "250-mx\n250 SIZE", HSIZE, 0, "" },
	{ "SIZE 0", "250-mx\n250 SIZE 0", HSIZE, 0, "" },
	{ "SIZE garbage", "250-mx\n250 SIZE 10M", HSIZE, 0, "" },
	{ "SIZE beyond 64 bits", "250-mx\n250 SIZE 99999999999999999999999", HSIZE, 0, "" },
	{ "SIZE largest", "250-mx\n250 SIZE 18446744073709551609", HSIZE,
	    UINT64_C(18446744073709551609), "" },
	{ "SIZE= is not SIZE", "250-mx\n250 SIZE=100", 0, 0, "" },
	{ "AUTH= old form", "250-mx\n250 AUTH=LOGIN PLAIN", 0, 0, "LOGIN PLAIN" },
	{ "AUTH both forms merged", "250-mx\n250-AUTH LOGIN PLAIN\n250 AUTH=LOGIN CRAM-MD5",
	    0, 0, "LOGIN PLAIN CRAM-MD5" },
	{ "AUTH duplicates", "250-mx\n250 AUTH plain PLAIN Plain", 0, 0, "PLAIN" },
	{ "AUTH extra spaces", "250-mx\n250 AUTH  SCRAM-SHA-256   XOAUTH2 ", 0, 0,
	    "SCRAM-SHA-256 XOAUTH2" },
	{ "AUTH bad names dropped", "250-mx\n250 AUTH PL@IN GOOD_1 A;B "
	    "ABCDEFGHIJKLMNOPQRSTU ABCDEFGHIJKLMNOPQRST", 0, 0, "GOOD_1 ABCDEFGHIJKLMNOPQRST" },
	{ "AUTH without mechanisms", "250-mx\n250 AUTH", 0, 0, "" },
	{ "AUTHX is not AUTH", "250-mx\n250 AUTHX PLAIN", 0, 0, "" },
	{ "keyword prefix", "250-mx\n250-PIPELININGX\n250 STARTTLSS", 0, 0, "" },
	{ "keyword with parameters", "250-mx\n250 STARTTLS now", STLS, 0, "" },
	{ "trailing CR and spaces", "250-mx\n250-PIPELINING \r\n250 DSN\t", PIPE | DSN, 0, "" },
	{ "garbage ignored", "250-mx\n250-X-FOO bar\n250-=\n250-\n250 \x01\x02", 0, 0, "" },
	{ "not a 2xx reply", "550-mx\n550 PIPELINING", 0, 0, "" },
	{ "bad reply", "250-mx\n250-PIPELINING\nxyz", 0, 0, "" },
};

static void
parses_each_caps_case(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(caps_cases); i++) {
		struct smtp_reply r;
		struct smtp_caps c;
		unsigned got;
		size_t fed;

		feed(&r, caps_cases[i].lines, &fed);
		memset(&c, 0xa5, sizeof c);
		smtp_caps_parse(&r, &c);
		got = (c.pipelining ? PIPE : 0) | (c.starttls ? STLS : 0) |
		    (c.eightbitmime ? B8 : 0) | (c.smtputf8 ? UTF8 : 0) | (c.dsn ? DSN : 0) |
		    (c.enhancedstatuscodes ? ENH : 0) | (c.chunking ? CHUNK : 0) |
		    (c.has_size ? HSIZE : 0);
		if (got != caps_cases[i].flags)
			fail_msg("%s: got flags %#x, want %#x", caps_cases[i].name, got,
			    caps_cases[i].flags);
		if (c.size != caps_cases[i].size)
			fail_msg("%s: got size %llu, want %llu", caps_cases[i].name,
			    (unsigned long long)c.size, (unsigned long long)caps_cases[i].size);
		if (strcmp(c.auth, caps_cases[i].auth) != 0)
			fail_msg("%s: got auth \"%s\", want \"%s\"", caps_cases[i].name, c.auth,
			    caps_cases[i].auth);
	}
}

static void
auth_list_stays_bounded(void **state)
{
	char line[4000];
	struct smtp_reply r;
	struct smtp_caps c;
	size_t len;

	(void)state;
	smtp_reply_init(&r);
	smtp_reply_add_line(&r, "250-mx", 6);
	/* many distinct mechanisms: the list is cut at a whole name */
	len = (size_t)snprintf(line, sizeof line, "250 AUTH");
	for (int i = 0; i < 300 && len + 12 < sizeof line; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " M%06d", i);
	assert_int_equal(smtp_reply_add_line(&r, line, len), SMTP_REPLY_DONE);
	smtp_caps_parse(&r, &c);
	assert_true(strlen(c.auth) < sizeof c.auth);
	assert_true(strlen(c.auth) > 400);
	assert_int_equal(strlen(c.auth) % 8, 7);       /* "M000000" names, one space apart */
}

/* --- relay denied ---------------------------------------------------------- */

static const struct {
	const char *name, *lines;
	bool want;
} relay_cases[] = {
	{ "Postfix relay access denied", "554 5.7.1 <b@ext.example>: Relay access denied", true },
	{ "enhanced 5.7.1 only", "550 5.7.1 go away", true },
	{ "soft 4.7.1", "454 4.7.1 <b@ext.example>: try later", true },
	{ "Sendmail relaying denied", "550 Relaying denied", true },
	{ "Exim relay not permitted", "550 relay not permitted", true },
	{ "access denied", "550 Access denied", true },
	{ "not permitted", "553 sorry, that domain isn't in my list; not permitted", true },
	{ "not authenticated", "550 5.7.54 Client was not authenticated", true },
	{ "authentication required", "530 5.7.0 Authentication required", true },
	{ "on a later line", "550-5.1.0 first\n550 5.1.0 relaying denied", true },
	{ "user unknown", "550 5.1.1 <b@x.example>: Recipient address rejected: unknown", false },
	{ "mailbox full", "452 4.2.2 mailbox full", false },
	{ "5.7.10 is not 5.7.1", "550 5.7.10 other", false },
	{ "2xx never", "250 2.1.5 relay ok", false },
	{ "bad reply never", "relay denied", false },
};

static void
detects_relay_denied(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(relay_cases); i++) {
		struct smtp_reply r;
		size_t fed;
		bool got;

		feed(&r, relay_cases[i].lines, &fed);
		got = smtp_reply_means_relay_denied(&r);
		if (got != relay_cases[i].want)
			fail_msg("%s: got %d, want %d", relay_cases[i].name, got, relay_cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_each_case),
		cmocka_unit_test(nul_and_lf_become_question_marks),
		cmocka_unit_test(stays_bad),
		cmocka_unit_test(cuts_long_text),
		cmocka_unit_test(too_many_lines),
		cmocka_unit_test(summarises_each_case),
		cmocka_unit_test(summary_fits_the_buffer),
		cmocka_unit_test(parses_each_caps_case),
		cmocka_unit_test(auth_list_stays_bounded),
		cmocka_unit_test(detects_relay_denied),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
