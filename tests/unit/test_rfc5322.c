/* test_rfc5322.c - header iteration, address-list and mailbox parsing,
 * unfolding and folding (rfc5322.h). */
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

/* Counts down what collect counted up. */
static int
count_mailbox(void *ctx, const struct rfc5322_mailbox *mb)
{
	int *count = ctx;

	(void)mb;
	(*count)--;
	return 0;
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
		/* The mailbox parser is the same parser. */
		assert_int_equal(rfc5322_parse_mailboxes(addr_cases[i].value, len, count_mailbox,
		    &c.count), rc);
		assert_int_equal(c.count, 0);      /* as many mailboxes as addresses */
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

/* The display name's length, with its quotes. */
static int
name_length(void *ctx, const struct rfc5322_mailbox *mb)
{
	struct collected *c = ctx;

	assert_non_null(mb->name);
	c->count = (int)mb->name_len;
	return 0;
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
	assert_int_equal(rfc5322_parse_mailboxes(value, strlen(value), name_length, &c), 0);
	assert_int_equal(c.count, 3002);
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

/* --- mailboxes with their names ------------------------------------------- */

/* "addr[name]{comment}+g" for each mailbox, separated by spaces. */
static int
describe_mailbox(void *ctx, const struct rfc5322_mailbox *mb)
{
	char *out = ctx;
	size_t size = 1024;

	assert_int_equal(strlen(mb->addr), mb->addr_len);
	if (out[0] != '\0')
		append_visible(out, size, " ", 1);
	append_visible(out, size, mb->addr, mb->addr_len);
	if (mb->name != NULL) {
		append_visible(out, size, "[", 1);
		append_visible(out, size, mb->name, mb->name_len);
		append_visible(out, size, "]", 1);
	}
	if (mb->comment != NULL) {
		assert_null(mb->name);
		assert_int_equal(mb->comment[-1], '(');
		assert_int_equal(mb->comment[mb->comment_len], ')');
		append_visible(out, size, "{", 1);
		append_visible(out, size, mb->comment, mb->comment_len);
		append_visible(out, size, "}", 1);
	}
	if (mb->in_group)
		append_visible(out, size, "+g", 2);
	return 0;
}

static const struct {
	const char *name, *value, *want;
	int want_rc;
} mailbox_cases[] = {
	{ "display name", "Joe User <joe@x.example>", "joe@x.example[Joe User]", 0 },
	{ "quoted name with a comma", "\"Doe, Jane\" <jane@y.example>",
	  "jane@y.example[\"Doe, Jane\"]", 0 },
	{ "encoded word", "=?UTF-8?B?SsO2cmc=?= <j@x>", "j@x[=?UTF-8?B?SsO2cmc=?=]", 0 },
	{ "folded encoded words", "=?iso-8859-1?q?J=F6rg?=\r\n =?iso-8859-1?q?_M=FCller?=\r\n <j@x>",
	  "j@x[=?iso-8859-1?q?J=F6rg?=\\r\\n =?iso-8859-1?q?_M=FCller?=]", 0 },
	{ "comment inside the name", "Joe (the man) User <j@x>", "j@x[Joe (the man) User]", 0 },
	{ "obs-phrase", "John Q. Public <jqp@x>", "jqp@x[John Q. Public]", 0 },
	{ "leading comment is not the name", "(c) Joe <j@x>", "j@x[Joe]", 0 },
	{ "old-style comment name", "bob@x.example (Bob Smith)", "bob@x.example{Bob Smith}", 0 },
	{ "comment name after <>", "<bob@x> (Bob)", "bob@x{Bob}", 0 },
	{ "comment after a display name", "Bob <bob@x> (work)", "bob@x[Bob]", 0 },
	{ "nested comment name", "b@x (Bob (the builder) \\) S), c@d",
	  "b@x{Bob (the builder) \\) S} c@d", 0 },
	{ "first comment of several", "b@x (one) (two)", "b@x{one}", 0 },
	{ "empty comment", "b@x ()", "b@x{}", 0 },
	{ "comment before the domain is not the name", "b (x) @ c (Name)", "b@c{Name}", 0 },
	{ "no names", "a@b, <c@d>", "a@b c@d", 0 },
	{ "leading comment only", "(Bob) bob@x", "bob@x", 0 },
	{ "obs-route", "Joe <@r1:joe@x> (J)", "joe@x[Joe]", 0 },
	{ "bare local part", "root (Root)", "root{Root}", 0 },
	{ "group", "friends: a@b (A), Joe <c@d>;, e@f", "a@b{A}+g c@d[Joe]+g e@f", 0 },
	{ "error after a mailbox", "Joe <j@x>, <oops", "j@x[Joe]", -1 },
};

static void
parses_each_mailbox_list(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof mailbox_cases / sizeof mailbox_cases[0]; i++) {
		char got[1024] = "";
		int rc = rfc5322_parse_mailboxes(mailbox_cases[i].value,
		    strlen(mailbox_cases[i].value), describe_mailbox, got);

		if (rc != mailbox_cases[i].want_rc || strcmp(got, mailbox_cases[i].want) != 0)
			fail_msg("%s:\n got  %d %s\n want %d %s", mailbox_cases[i].name, rc, got,
			    mailbox_cases[i].want_rc, mailbox_cases[i].want);
	}
}

/* --- unfolding and folding ------------------------------------------------- */

static const struct {
	const char *name, *value;
	unsigned flags;
	const char *want;
} unfold_cases[] = {
	{ "CRLF before SP", "a\r\n b", 0, "a b" },
	{ "LF before HTAB", "a\n\tb", 0, "a\tb" },
	{ "line end not before WSP kept", "a\r\nb\nc", 0, "a\\r\\nb\\nc" },
	{ "line end at the end kept", "a\r\n", 0, "a\\r\\n" },
	{ "runs kept without collapse", "  a  \t b ", 0, "  a  \t b " },
	{ "collapse", "  Joe \t\r\n   User  ", RFC5322_COLLAPSE, "Joe User" },
	{ "quoted string kept", "\"a  \tb\"   c", RFC5322_COLLAPSE, "\"a  \tb\" c" },
	{ "folded quoted string", "\"a\r\n  b\"", RFC5322_COLLAPSE, "\"a  b\"" },
	{ "escaped quote", "\"a\\\"  b\"  c", RFC5322_COLLAPSE, "\"a\\\"  b\" c" },
	{ "comment collapsed, its quote is ctext", "(it's  \"x)   a  b", RFC5322_COLLAPSE,
	  "(it's \"x) a b" },
	{ "escaped space in a comment", "(a\\  b)", RFC5322_COLLAPSE, "(a\\  b)" },
	{ "empty", "", RFC5322_COLLAPSE, "" },
	{ "only WSP", " \t ", RFC5322_COLLAPSE, "" },
};

static void
unfolds_each_value(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof unfold_cases / sizeof unfold_cases[0]; i++) {
		char out[256] = "", got[512] = "";
		size_t len = strlen(unfold_cases[i].value), n;

		n = rfc5322_unfold(unfold_cases[i].value, len, out, unfold_cases[i].flags);
		assert_true(n <= len);
		append_visible(got, sizeof got, out, n);
		if (strcmp(got, unfold_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", unfold_cases[i].name, got,
			    unfold_cases[i].want);
	}
}

static void
unfolds_in_place(void **state)
{
	char value[] = "Joe\r\n   User  <j@x>";
	size_t n;

	(void)state;
	n = rfc5322_unfold(value, strlen(value), value, RFC5322_COLLAPSE);
	assert_int_equal(n, 14);
	assert_memory_equal(value, "Joe User <j@x>", n);
}

#define L10 "abcdefghi "
#define L70 L10 L10 L10 L10 L10 L10 L10
#define L69 L10 L10 L10 L10 L10 L10 "abcdefghi"
#define W100 "0123456789012345678901234567890123456789012345678901234567890123456789" \
    "012345678901234567890123456789"

static const struct {
	const char *name, *field, *value, *want;
} fold_cases[] = {
	{ "short", "From", "Joe <j@x>", "From: Joe <j@x>\\r\\n" },
	{ "WSP at the ends dropped", "From", " \t Joe <j@x>  ", "From: Joe <j@x>\\r\\n" },
	{ "empty", "Subject", "", "Subject:\\r\\n" },
	{ "exactly 78", "X", L69 " 12345", "X: " L69 " 12345\\r\\n" },
	{ "79 folds", "X", L69 " 123456", "X: " L69 "\\r\\n 123456\\r\\n" },
	{ "folds before the run of WSP", "X", L69 " 12345 \t 67",
	  "X: " L69 " 12345\\r\\n \t 67\\r\\n" },
	{ "quoted string is one token", "To", "\"" L70 "\" <a@b>",
	  "To: \"" L70 "\"\\r\\n <a@b>\\r\\n" },
	{ "comment is folded inside", "To", "a@b (" L70 "x)",
	  "To: a@b (" L69 "\\r\\n x)\\r\\n" },
	{ "quote inside a comment is ctext", "To", "(\") " L70 "x",
	  "To: (\") abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi\\r\\n x\\r\\n" },
	{ "a long token keeps its own line", "X", "a " W100 " b",
	  "X: a\\r\\n " W100 "\\r\\n b\\r\\n" },
	{ "a long first token stays after the colon", "X", W100 " b", "X: " W100 "\\r\\n b\\r\\n" },
	{ "CR refused", "X", "a\rb", "" },
	{ "LF refused", "X", "a\n b", "" },
};

static void
folds_each_value(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof fold_cases / sizeof fold_cases[0]; i++) {
		char out[1024], got[2048] = "";
		size_t n = rfc5322_fold(fold_cases[i].field, fold_cases[i].value,
		    strlen(fold_cases[i].value), out, sizeof out);

		if (n > 0) {
			assert_int_equal(strlen(out), n);
			append_visible(got, sizeof got, out, n);
		}
		if (strcmp(got, fold_cases[i].want) != 0)
			fail_msg("%s:\n got  \"%s\"\n want \"%s\"", fold_cases[i].name, got,
			    fold_cases[i].want);
	}
}

/* Like snprintf: the length is returned whatever the buffer; what fits is
 * written, NUL-terminated only when all of it fit. */
static void
folds_like_snprintf(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(rfc5322_fold("From", "a@b", 3, NULL, 0), 11);
	memset(out, '#', sizeof out);
	assert_int_equal(rfc5322_fold("From", "a@b", 3, out, sizeof out), 11);
	assert_memory_equal(out, "From: a@", 8);
	assert_int_equal(rfc5322_fold("X", "a@b", 3, out, sizeof out), 8);
	assert_memory_equal(out, "X: a@b\r\n", 8);
}

/* 998 octets is the most a line may hold: a token that fits there moves
 * down after the colon; one that does not is an error. */
static void
refuses_a_token_longer_than_a_line(void **state)
{
	static char value[RFC5322_LINE_MAX + 2], out[2 * RFC5322_LINE_MAX];
	size_t n;

	(void)state;
	memset(value, 'a', RFC5322_LINE_MAX - 1);
	n = rfc5322_fold("Reply-To", value, RFC5322_LINE_MAX - 1, out, sizeof out);
	assert_int_equal(n, strlen("Reply-To:\r\n ") + RFC5322_LINE_MAX - 1 + 2);
	assert_memory_equal(out, "Reply-To:\r\n aaa", 15);
	assert_int_equal(rfc5322_fold("X", value, RFC5322_LINE_MAX - 3, out, sizeof out),
	    3 + RFC5322_LINE_MAX - 3 + 2);
	memset(value, 'a', RFC5322_LINE_MAX);
	assert_int_equal(rfc5322_fold("X", value, RFC5322_LINE_MAX, out, sizeof out), 0);
	assert_int_equal(rfc5322_fold("X", "b", 1, out, sizeof out), 6);
}

/* Every line at most 78 octets when the words allow it, and unfolding gives
 * back the value. */
static void
folds_and_unfolds_back(void **state)
{
	static const char *const words[] = { "a@b.example,", "\"Doe, Jane\"", "<jane@y.example>,",
	    "=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?=", "(a comment)", "x", "\"q  s\"", "\t" };
	char value[4096], out[8192], back[8192];
	unsigned seed = 1;

	(void)state;
	for (int round = 0; round < 500; round++) {
		size_t len = 0, n, col = 0, i;
		int nwords = 1 + round % 60;

		for (int w = 0; w < nwords; w++) {
			const char *word = words[(seed = seed * 1103515245 + 12345) >> 16 & 7];

			len += (size_t)snprintf(value + len, sizeof value - len, "%s%s",
			    w ? " " : "", word);
		}
		n = rfc5322_fold("Reply-To", value, len, out, sizeof out);
		assert_true(n > 0 && n < sizeof out);
		for (i = 0; i < n; i++) {
			if (out[i] == '\r') {
				assert_true(out[i + 1] == '\n');
				assert_true(col <= RFC5322_LINE_SOFT);
				col = 0;
				i++;
			} else {
				col++;
			}
		}
		/* The value again: unfolded, after "Reply-To: ", without the CRLF. */
		n = rfc5322_unfold(out, n - 2, back, 0);
		for (i = 0; i < len && (value[i] == ' ' || value[i] == '\t'); i++)
			;
		while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t'))
			len--;
		if (len == i) {                 /* only WSP */
			assert_int_equal(n, 9);
			continue;
		}
		assert_int_equal(n, 10 + len - i);
		assert_memory_equal(back, "Reply-To: ", 10);
		assert_memory_equal(back + 10, value + i, len - i);
	}
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
		cmocka_unit_test(parses_each_mailbox_list),
		cmocka_unit_test(unfolds_each_value),
		cmocka_unit_test(unfolds_in_place),
		cmocka_unit_test(folds_each_value),
		cmocka_unit_test(folds_like_snprintf),
		cmocka_unit_test(refuses_a_token_longer_than_a_line),
		cmocka_unit_test(folds_and_unfolds_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
