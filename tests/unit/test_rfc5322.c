/* test_rfc5322.c - header iteration and address-list parsing (rfc5322.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rfc5322.h"

/* --- helpers ----------------------------------------------------------------- */

/* Append s[0..n) to out with CR and LF made visible as \r and \n. */
static void
append_visible(char *out, size_t size, const char *s, size_t n)
{
	size_t len = strlen(out);

	for (size_t i = 0; i < n && len + 3 < size; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			out[len++] = '\\';
			out[len++] = s[i] == '\r' ? 'r' : 'n';
		} else {
			out[len++] = s[i];
		}
	}
	out[len] = '\0';
}

static const char *
result_name(enum rfc5322_next_result r)
{
	switch (r) {
	case RFC5322_FIELD: return "FIELD";
	case RFC5322_END: return "END";
	case RFC5322_EOF: return "EOF";
	case RFC5322_NOT_FIELD: return "NOT_FIELD";
	}
	return "?";
}

/* "Name[value]{raw} ... RESULT|body" */
static void
describe_header(const char *msg, char *out, size_t size)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	enum rfc5322_next_result r;
	size_t len = strlen(msg);

	out[0] = '\0';
	rfc5322_iter_init(&it, msg, len);
	while ((r = rfc5322_next(&it, &f)) == RFC5322_FIELD) {
		append_visible(out, size, f.name, f.name_len);
		append_visible(out, size, "[", 1);
		append_visible(out, size, f.value, f.value_len);
		append_visible(out, size, "]{", 2);
		append_visible(out, size, f.raw, f.raw_len);
		append_visible(out, size, "} ", 2);
	}
	append_visible(out, size, result_name(r), strlen(result_name(r)));
	append_visible(out, size, "|", 1);
	append_visible(out, size, msg + it.body_offset, len - it.body_offset);
	/* Once ended, it stays ended. */
	if (rfc5322_next(&it, &f) != r)
		append_visible(out, size, " (not repeated)", 15);
}

/* --- header iteration -------------------------------------------------------- */

static const struct {
	const char *name, *msg, *want;
} header_cases[] = {
	{ "CRLF header and body",
	  "Subject: hi\r\nTo: a@b\r\n\r\nbody\r\n",
	  "Subject[ hi]{Subject: hi\\r\\n} To[ a@b]{To: a@b\\r\\n} END|body\\r\\n" },
	{ "LF header and body",
	  "Subject: hi\nTo: a@b\n\nbody\n",
	  "Subject[ hi]{Subject: hi\\n} To[ a@b]{To: a@b\\n} END|body\\n" },
	{ "folded field, CRLF",
	  "To: a@b,\r\n\tc@d\r\n  ,e@f\r\nX: y\r\n\r\n",
	  "To[ a@b,\\r\\n\tc@d\\r\\n  ,e@f]{To: a@b,\\r\\n\tc@d\\r\\n  ,e@f\\r\\n} X[ y]{X: y\\r\\n} END|" },
	{ "folded field, LF",
	  "Subject: one\n two\n\nb",
	  "Subject[ one\\n two]{Subject: one\\n two\\n} END|b" },
	{ "EOF inside the header",
	  "Subject: hi\r\nX: y\r\n",
	  "Subject[ hi]{Subject: hi\\r\\n} X[ y]{X: y\\r\\n} EOF|" },
	{ "EOF without a final line end",
	  "Subject: hi",
	  "Subject[ hi]{Subject: hi} EOF|" },
	{ "empty input", "", "EOF|" },
	{ "empty line first", "\r\nbody", "END|body" },
	{ "body only", "hello world\r\n", "NOT_FIELD|hello world\\r\\n" },
	{ "mbox From line", "From joe Mon Jan 1\nX: y\n", "NOT_FIELD|From joe Mon Jan 1\\nX: y\\n" },
	{ "not a field after fields",
	  "X: y\nthis is text\n\nz",
	  "X[ y]{X: y\\n} NOT_FIELD|this is text\\n\\nz" },
	{ "continuation first", " folded\nX: y\n", "NOT_FIELD| folded\\nX: y\\n" },
	{ "WSP before the colon (obs)", "Subject : hi\n\n", "Subject[ hi]{Subject : hi\\n} END|" },
	{ "empty name", ": hi\n\n", "NOT_FIELD|: hi\\n\\n" },
	{ "empty value", "Bcc:\nX: y\n\n", "Bcc[]{Bcc:\\n} X[ y]{X: y\\n} END|" },
	{ "8-bit name", "Sub\xc3\xa9: x\n\n", "NOT_FIELD|Sub\xc3\xa9: x\\n\\n" },
	{ "space inside the name", "Sub ject: x\n\n", "NOT_FIELD|Sub ject: x\\n\\n" },
	{ "bare CR is an octet", "X: a\rb\n\n", "X[ a\\rb]{X: a\\rb\\n} END|" },
};

static void
iterates_each_header(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
		char got[1024];

		describe_header(header_cases[i].msg, got, sizeof got);
		if (strcmp(got, header_cases[i].want) != 0)
			fail_msg("%s:\n got  %s\n want %s", header_cases[i].name, got,
			    header_cases[i].want);
	}
}

static void
compares_field_names_without_case(void **state)
{
	struct rfc5322_field f = { .name = "message-id", .name_len = 10 };

	(void)state;
	assert_true(rfc5322_field_is(&f, "Message-ID"));
	assert_false(rfc5322_field_is(&f, "Message-I"));
	assert_false(rfc5322_field_is(&f, "Message-IDs"));
}

/* --- address lists ------------------------------------------------------------ */

struct collected {
	char text[2048];
	int stop_after;      /* 0: never */
	int count;
};

static int
collect(void *ctx, const char *addr, size_t len)
{
	struct collected *c = ctx;
	size_t n = strlen(c->text);

	assert_int_equal(strlen(addr), len);
	snprintf(c->text + n, sizeof c->text - n, "%s%s", n ? "|" : "", addr);
	c->count++;
	return c->stop_after && c->count >= c->stop_after ? 7 : 0;
}

static const struct {
	const char *name, *value, *want;
	int want_rc;
} addr_cases[] = {
	{ "one addr-spec", " joe@example.com", "joe@example.com", 0 },
	{ "list", "a@b.example, c@d.example,e@f.example", "a@b.example|c@d.example|e@f.example", 0 },
	{ "display names", "Joe User <joe@x.example>, \"Doe, Jane\" <jane@y.example>",
	  "joe@x.example|jane@y.example", 0 },
	{ "quoted display name with @ and ,", "\"a@b, c@d\" <real@x.example>", "real@x.example", 0 },
	{ "quoted local part with @ and ,", "\"a,b@c\"@x.example", "\"a,b@c\"@x.example", 0 },
	{ "quoted-pair in quoted string", "\"a\\\"b\"@x.example, \"N\\\\\" <n@x.example>",
	  "\"a\\\"b\"@x.example|n@x.example", 0 },
	{ "comments", "(c) joe (one) @ (two) x.example (three), a@b",
	  "joe@x.example|a@b", 0 },
	{ "nested comments", "joe@x.example (outer (inner) \\) still)", "joe@x.example", 0 },
	{ "comment as a display name (old style)", "joe@x.example (Joe User)", "joe@x.example", 0 },
	{ "folding", "Joe\r\n User\r\n\t<joe@x.example>,\r\n a@b", "joe@x.example|a@b", 0 },
	{ "LF folding", "Joe\n <joe@x.example>,\n a@b", "joe@x.example|a@b", 0 },
	{ "folded quoted string", "\"a\r\n b\"@x", "\"a b\"@x", 0 },
	{ "group", "friends: a@b, Joe <c@d>; , e@f", "a@b|c@d|e@f", 0 },
	{ "empty group", "undisclosed-recipients:;", "", 0 },
	{ "empty group with CFWS", "undisclosed-recipients: (none) ;", "", 0 },
	{ "group without ';'", "undisclosed-recipients:", "", 0 },
	{ "group then address", "g: a@b;, c@d", "a@b|c@d", 0 },
	{ "nested group", "g: h: a@b;;", "", -1 },
	{ "obs-route", "<@relay.example,@r2.example:joe@x.example>", "joe@x.example", 0 },
	{ "obs-route with empty elements", "Joe <,@r1, ,@r2:joe@x>", "joe@x", 0 },
	{ "obs-route without ':'", "<@relay.example joe@x.example>", "", -1 },
	{ "obs-local-part", "john . doe@x.example", "john.doe@x.example", 0 },
	{ "obs-domain", "a@ x . example", "a@x.example", 0 },
	{ "obs-phrase with a dot", "John Q. Public <jqp@x.example>", "jqp@x.example", 0 },
	{ "domain literal", "a@[192.0.2.1], b@[IPv6:2001:db8::1]",
	  "a@[192.0.2.1]|b@[IPv6:2001:db8::1]", 0 },
	{ "empty elements", ", a@b,, ,c@d,", "a@b|c@d", 0 },
	{ "empty value", "", "", 0 },
	{ "only CFWS", " (nobody) ", "", 0 },
	{ "bare local part", "root, a@b", "root|a@b", 0 },
	{ "bare local part in angles", "Admin <postmaster>", "postmaster", 0 },
	{ "UTF-8", "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc.example>", "j\xc3\xb6rg@b\xc3\xbc.example", 0 },
	{ "encoded word display name", "=?UTF-8?Q?J=C3=B6rg?= <j@x>", "j@x", 0 },
	{ "unbalanced <", "Joe <joe@x.example", "", -1 },
	{ "unbalanced < before a comma", "Joe <joe@x.example, a@b", "", -1 },
	{ "unbalanced >", "joe@x.example>", "joe@x.example", -1 },
	{ "empty angle address", "<>", "", -1 },
	{ "unterminated quote", "\"Joe <joe@x.example>", "", -1 },
	{ "unterminated quoted-pair", "\"Joe\\", "", -1 },
	{ "unterminated comment", "joe@x.example (oops", "joe@x.example", -1 },
	{ "unterminated nested comment", "(a (b) joe@x.example", "", -1 },
	{ "unterminated domain literal", "a@[1.2.3.4", "", -1 },
	{ "no domain after @", "a@, b@c", "", -1 },
	{ "trailing dot in domain", "a@b.", "", -1 },
	{ "two addresses without comma", "a@b c@d", "a@b", -1 },
	{ "phrase without address", "John Doe, a@b", "", -1 },
	{ "two words before @", "John Doe@x", "", -1 },
	{ "display name then @", "Joe <a@b>@c", "a@b", -1 },
	{ "stray backslash", "a\\b@c", "", -1 },
	{ "NUL octet", "a@b\0c", "a@b", -1 },
	{ "control character", "a@b,\x01", "a@b", -1 },
	{ "stray ]", "a]@b", "", -1 },
};

static void
parses_each_address_list(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
		struct collected c = { .text = "" };
		size_t len = strlen(addr_cases[i].value);
		int rc;

		/* "a@b\0c": the NUL case needs the length past the NUL. */
		if (strcmp(addr_cases[i].name, "NUL octet") == 0)
			len = 5;
		rc = rfc5322_parse_addresses(addr_cases[i].value, len, collect, &c);
		if (rc != addr_cases[i].want_rc || strcmp(c.text, addr_cases[i].want) != 0)
			fail_msg("%s: got %d \"%s\", want %d \"%s\"", addr_cases[i].name, rc,
			    c.text, addr_cases[i].want_rc, addr_cases[i].want);
	}
}

static void
stops_when_the_callback_says_so(void **state)
{
	struct collected c = { .text = "", .stop_after = 2 };

	(void)state;
	assert_int_equal(rfc5322_parse_addresses("a@b, c@d, e@f", 13, collect, &c), 7);
	assert_string_equal(c.text, "a@b|c@d");
}

static void
refuses_an_address_longer_than_the_limit(void **state)
{
	char value[RFC5322_ADDR_MAX + 16];
	struct collected c = { .text = "" };
	size_t local = RFC5322_ADDR_MAX - 4;   /* local@x.y: one octet too many */

	(void)state;
	memset(value, 'a', local);
	memcpy(value + local, "@x.yz", 6);
	assert_int_equal(rfc5322_parse_addresses(value, strlen(value), collect, &c), -1);
	assert_int_equal(c.count, 0);

	value[local + 4] = '\0';               /* local@x.y: exactly the limit */
	assert_int_equal(strlen(value), RFC5322_ADDR_MAX);
	assert_int_equal(rfc5322_parse_addresses(value, strlen(value), collect, &c), 0);
	assert_int_equal(c.count, 1);
}

static void
takes_a_long_display_name(void **state)
{
	char value[4096];
	struct collected c = { .text = "" };

	(void)state;
	value[0] = '"';
	memset(value + 1, 'n', 3000);
	strcpy(value + 3001, "\" <a@b>");
	assert_int_equal(rfc5322_parse_addresses(value, strlen(value), collect, &c), 0);
	assert_string_equal(c.text, "a@b");
}

static void
handles_deeply_nested_comments(void **state)
{
	static char value[200010];
	struct collected c = { .text = "" };

	(void)state;
	memset(value, '(', 100000);
	memset(value + 100000, ')', 100000);
	strcpy(value + 200000, "a@b");
	assert_int_equal(rfc5322_parse_addresses(value, strlen(value), collect, &c), 0);
	assert_string_equal(c.text, "a@b");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(iterates_each_header),
		cmocka_unit_test(compares_field_names_without_case),
		cmocka_unit_test(parses_each_address_list),
		cmocka_unit_test(stops_when_the_callback_says_so),
		cmocka_unit_test(refuses_an_address_longer_than_the_limit),
		cmocka_unit_test(takes_a_long_display_name),
		cmocka_unit_test(handles_deeply_nested_comments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
