/* test_identity.c - From:/Reply-To: rewriting and the from-map (identity.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "identity.h"
#include "rfc5322.h"

#define ACCT "acct@relay.example"
#define N(array) (sizeof(array) / sizeof((array)[0]))

/* --- helpers ----------------------------------------------------------------- */

/* s[0..n) as a C string literal would show it: "\r\n", "\t", "\x01". */
static char *
visible(const char *s, size_t n)
{
	char *out = malloc(4 * n + 1), *o = out;

	assert_non_null(out);
	for (const char *p = s; p < s + n; p++) {
		unsigned char c = (unsigned char)*p;
		const char *esc = c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : NULL;

		if (esc != NULL)
			o += sprintf(o, "%s", esc);
		else if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

/* What every new header must be: CRLF lines of at most 998 octets, no bare
 * CR or LF, the empty line at the end. */
static void
check_head(const struct identity_header *h, size_t content_len)
{
	size_t col = 0;

	assert_true(h->head_len >= 2);
	assert_int_equal(strlen(h->head), h->head_len);
	assert_memory_equal(h->head + h->head_len - 2, "\r\n", 2);
	assert_true(h->head_len == 2 || memcmp(h->head + h->head_len - 4, "\r\n\r\n", 4) == 0);
	assert_true(h->body_offset <= content_len);
	for (size_t i = 0; i < h->head_len; i++) {
		if (h->head[i] == '\n')
			fail_msg("bare LF at %zu", i);
		if (h->head[i] != '\r') {
			assert_true(++col <= RFC5322_LINE_MAX);
			continue;
		}
		if (i + 1 == h->head_len || h->head[i + 1] != '\n')
			fail_msg("bare CR at %zu", i);
		col = 0;
		i++;
	}
}

/* --- rewriting ------------------------------------------------------------------ */

static const struct {
	const char *name;
	enum identity_mode mode;
	const char *content;
	int want_rc;
	const char *want_head;     /* with \r \n visible */
	const char *want_body;
} rewrite_cases[] = {
	{ "rewrite moves From: to Reply-To:", IDENTITY_REWRITE,
	  "Received: from x\r\nFrom: Bob <bob@home.example>\r\nTo: a@b\r\nSubject: hi\r\n\r\nbody\r\n", 1,
	  "Received: from x\\r\\nFrom: Bob <" ACCT ">\\r\\nReply-To: Bob <bob@home.example>\\r\\n"
	  "To: a@b\\r\\nSubject: hi\\r\\n\\r\\n", "body\r\n" },
	{ "rewrite keeps a Reply-To:", IDENTITY_REWRITE,
	  "From: Bob <bob@home.example>\r\nReply-To: list@lists.example\r\n\r\nb", 1,
	  "From: Bob <" ACCT ">\\r\\nReply-To: list@lists.example\\r\\n\\r\\n", "b" },
	{ "map replaces Reply-To:", IDENTITY_MAP,
	  "From: Bob <bob@home.example>\r\nX: 1\r\nReply-To: Bob\r\n <bob@home.example>\r\n\r\nb", 1,
	  "From: Bob <" ACCT ">\\r\\nX: 1\\r\\nReply-To: <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "map adds no Reply-To:", IDENTITY_MAP,
	  "From: Bob <bob@home.example>\r\n\r\nb", 1, "From: Bob <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "map: several Reply-To: become one", IDENTITY_MAP,
	  "Reply-To: a@b\r\nFrom: " ACCT "\r\nReply-To: c@d\r\n\r\n", 1,
	  "Reply-To: <" ACCT ">\\r\\nFrom: " ACCT "\\r\\n\\r\\n", "" },
	{ "map: From: right, Reply-To: not: From: kept as written", IDENTITY_MAP,
	  "From: Me\r\n  <acct@Relay.Example>\r\nReply-To: bob@home.example\r\n\r\n", 1,
	  "From: Me\\r\\n  <acct@Relay.Example>\\r\\nReply-To: <" ACCT ">\\r\\n\\r\\n", "" },
	{ "B encoded word kept", IDENTITY_MAP,
	  "From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <j@h.example>\r\n\r\n", 1,
	  "From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <" ACCT ">\\r\\n\\r\\n", "" },
	{ "folded q encoded words kept, folding collapsed", IDENTITY_REWRITE,
	  "From: =?iso-8859-1?q?J=F6rg?=\r\n =?iso-8859-1?q?_M=FCller?= <j@h.example>\r\n\r\n", 1,
	  "From: =?iso-8859-1?q?J=F6rg?= =?iso-8859-1?q?_M=FCller?= <" ACCT ">\\r\\n"
	  "Reply-To: =?iso-8859-1?q?J=F6rg?= =?iso-8859-1?q?_M=FCller?= <j@h.example>\\r\\n\\r\\n", "" },
	{ "quoted name with a comma", IDENTITY_MAP,
	  "From: \"Doe, Jane\" <jane@y.example>\r\n\r\n", 1,
	  "From: \"Doe, Jane\" <" ACCT ">\\r\\n\\r\\n", "" },
	{ "quoted string keeps its inner whitespace", IDENTITY_MAP,
	  "From:   \"Jane\t  Doe\"   (work)\r\n\t<jane@y.example>\r\n\r\n", 1,
	  "From: \"Jane\\t  Doe\" <" ACCT ">\\r\\n\\r\\n", "" },
	{ "comment name of atoms stays a phrase", IDENTITY_MAP,
	  "From: bob@home.example (Bob Smith)\r\n\r\n", 1,
	  "From: Bob Smith <" ACCT ">\\r\\n\\r\\n", "" },
	{ "comment name with specials is quoted", IDENTITY_MAP,
	  "From: bob@home.example ( Smith,\r\n  Bob \"B.\" \\(x\\) )\r\n\r\n", 1,
	  "From: \"Smith, Bob \\\"B.\\\" (x)\" <" ACCT ">\\r\\n\\r\\n", "" },
	{ "comment name with an encoded word", IDENTITY_MAP,
	  "From: j@h.example (=?utf-8?q?J=C3=B6rg?=)\r\n\r\n", 1,
	  "From: =?utf-8?q?J=C3=B6rg?= <" ACCT ">\\r\\n\\r\\n", "" },
	{ "empty comment is no name", IDENTITY_MAP,
	  "From: j@h.example ( )\r\n\r\n", 1, "From: <" ACCT ">\\r\\n\\r\\n", "" },
	{ "group: the first mailbox's name", IDENTITY_REWRITE,
	  "From: team: Bob <bob@h.example>, c@d.example;\r\n\r\n", 1,
	  "From: Bob <" ACCT ">\\r\\nReply-To: team: Bob <bob@h.example>, c@d.example;\\r\\n\\r\\n", "" },
	{ "two mailboxes: the first one's name, both to Reply-To:", IDENTITY_REWRITE,
	  "From: a@h.example, Bob <b@h.example>\r\n\r\n", 1,
	  "From: <" ACCT ">\\r\\nReply-To: a@h.example, Bob <b@h.example>\\r\\n\\r\\n", "" },
	{ "no From: - added after the trace fields", IDENTITY_REWRITE,
	  "Return-Path: <x@y>\r\nReceived: a\r\n\tb\r\nReceived: c\r\nSubject: s\r\nReceived: late\r\n\r\nb", 1,
	  "Return-Path: <x@y>\\r\\nReceived: a\\r\\n\\tb\\r\\nReceived: c\\r\\nFrom: <" ACCT ">\\r\\n"
	  "Subject: s\\r\\nReceived: late\\r\\n\\r\\n", "b" },
	{ "no From: and only trace fields", IDENTITY_MAP,
	  "Received: a\r\n\r\nb", 1, "Received: a\\r\\nFrom: <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "no header at all", IDENTITY_REWRITE,
	  "\r\nbody", 1, "From: <" ACCT ">\\r\\n\\r\\n", "body" },
	{ "empty message", IDENTITY_REWRITE, "", 1, "From: <" ACCT ">\\r\\n\\r\\n", "" },
	{ "From: that does not parse", IDENTITY_REWRITE,
	  "From: Bob <bob@home.example\r\n\r\nb", 1, "From: <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "From: with a bare local part", IDENTITY_REWRITE,
	  "From: root (Root)\r\n\r\nb", 1, "From: <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "empty From:", IDENTITY_REWRITE,
	  "From:\r\n\r\nb", 1, "From: <" ACCT ">\\r\\n\\r\\n", "b" },
	{ "a control character drops the name", IDENTITY_MAP,
	  "From: \"Jo\x01" "e\" <j@h.example>\r\n\r\n", 1, "From: <" ACCT ">\\r\\n\\r\\n", "" },
	{ "duplicate From: dropped", IDENTITY_REWRITE,
	  "From: a@h.example\r\nX: 1\r\nfrom: b@h.example\r\n\r\n", 1,
	  "From: <" ACCT ">\\r\\nReply-To: a@h.example\\r\\nX: 1\\r\\n\\r\\n", "" },
	{ "bare LF lines", IDENTITY_REWRITE,
	  "From: Bob <bob@h.example>\nSubject: x\n folded\n\nbody\n", 1,
	  "From: Bob <" ACCT ">\\r\\nReply-To: Bob <bob@h.example>\\r\\nSubject: x\\r\\n folded\\r\\n\\r\\n",
	  "body\n" },
	{ "header only, no body", IDENTITY_REWRITE,
	  "Subject: s\r\nFrom: a@h.example\r\n", 1,
	  "Subject: s\\r\\nFrom: <" ACCT ">\\r\\nReply-To: a@h.example\\r\\n\\r\\n", "" },
	{ "header only, no final line end", IDENTITY_MAP,
	  "From: a@h.example\r\nSubject: s", 1,
	  "From: <" ACCT ">\\r\\nSubject: s\\r\\n\\r\\n", "" },
	{ "a line that is not a field starts the body", IDENTITY_REWRITE,
	  "From: a@h.example\r\nthis is text\r\n\r\nmore", 1,
	  "From: <" ACCT ">\\r\\nReply-To: a@h.example\\r\\n\\r\\n", "this is text\r\n\r\nmore" },
	{ "already the address", IDENTITY_REWRITE,
	  "From: " ACCT "\r\n\r\nb", 0, NULL, NULL },
	{ "already the address, domain in other case, with a name", IDENTITY_REWRITE,
	  "From: Me <acct@RELAY.example>\r\n\r\nb", 0, NULL, NULL },
	{ "rewrite leaves a Reply-To: when From: is right", IDENTITY_REWRITE,
	  "From: " ACCT "\r\nReply-To: bob@h.example\r\n\r\nb", 0, NULL, NULL },
	{ "map: From: and Reply-To: right", IDENTITY_MAP,
	  "From: " ACCT "\r\nReply-To: Me <" ACCT ">\r\n\r\nb", 0, NULL, NULL },
	{ "local part compared exactly", IDENTITY_REWRITE,
	  "From: ACCT@relay.example\r\n\r\n", 1,
	  "From: <" ACCT ">\\r\\nReply-To: ACCT@relay.example\\r\\n\\r\\n", "" },
	{ "From: the address twice is rewritten (no Reply-To: to itself)", IDENTITY_REWRITE,
	  "From: " ACCT "\r\nFrom: " ACCT "\r\n\r\n", 1, "From: <" ACCT ">\\r\\n\\r\\n", "" },
	{ "bare CR", IDENTITY_REWRITE, "Subject: a\rb\r\nFrom: a@b\r\n\r\n", -1, NULL, NULL },
	{ "CR at the end of the input", IDENTITY_REWRITE, "From: a@b\r", -1, NULL, NULL },
};

static void
rewrites_each_header(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rewrite_cases); i++) {
		struct identity_header h;
		struct err err = { "" };
		const char *c = rewrite_cases[i].content;
		size_t len = strlen(c);
		int rc = identity_rewrite_header(c, len, rewrite_cases[i].mode, ACCT, &h, &err);
		char *got = rc == 1 ? visible(h.head, h.head_len) : NULL;

		if (rc != rewrite_cases[i].want_rc)
			fail_msg("%s: got %d (%s), want %d", rewrite_cases[i].name, rc, err.msg,
			    rewrite_cases[i].want_rc);
		if (rc != 1) {
			assert_null(h.head);
			continue;
		}
		check_head(&h, len);
		if (strcmp(got, rewrite_cases[i].want_head) != 0)
			fail_msg("%s:\n got  %s\n want %s", rewrite_cases[i].name, got,
			    rewrite_cases[i].want_head);
		if (strcmp(c + h.body_offset, rewrite_cases[i].want_body) != 0)
			fail_msg("%s: body \"%s\", want \"%s\"", rewrite_cases[i].name,
			    c + h.body_offset, rewrite_cases[i].want_body);
		free(got);
		identity_header_free(&h);
	}
}

static void
says_what_changed(void **state)
{
	struct identity_header h;
	const char *m = "From: a@h.example\r\nReply-To: a@h.example\r\n\r\n";

	(void)state;
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_MAP, ACCT, &h, NULL), 1);
	assert_int_equal(h.changes, IDENTITY_FROM_REPLACED | IDENTITY_REPLY_TO_REPLACED);
	identity_header_free(&h);
	m = "Reply-To: x@y.example\r\n\r\n";
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_REWRITE, ACCT, &h, NULL), 1);
	assert_int_equal(h.changes, IDENTITY_FROM_ADDED);
	identity_header_free(&h);
	m = "From: a@h.example\r\n\r\n";
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_REWRITE, ACCT, &h, NULL), 1);
	assert_int_equal(h.changes, IDENTITY_FROM_REPLACED | IDENTITY_REPLY_TO_ADDED);
	identity_header_free(&h);
	assert_string_equal(identity_mode_name(IDENTITY_MAP), "map");
	assert_string_equal(identity_mode_name(IDENTITY_REWRITE), "rewrite");
}

/* A second pass over its own output changes nothing. */
static void
is_idempotent(void **state)
{
	static const char *const msgs[] = {
		"From: Bob <bob@h.example>\r\nSubject: s\r\n\r\nb",
		"From: bob@h.example (Bob, Jr.)\r\nReply-To: x@y.example\r\n\r\n",
		"Subject: s\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < N(msgs); i++) {
		for (int mode = IDENTITY_REWRITE; mode <= IDENTITY_MAP; mode++) {
			struct identity_header h, again;

			assert_int_equal(identity_rewrite_header(msgs[i], strlen(msgs[i]), mode, ACCT,
			    &h, NULL), 1);
			assert_int_equal(identity_rewrite_header(h.head, h.head_len, mode, ACCT,
			    &again, NULL), 0);
			assert_null(again.head);
			identity_header_free(&h);
		}
	}
}

static void
refuses_what_it_cannot_handle(void **state)
{
	static char line[RFC5322_LINE_MAX + 64];
	struct identity_header h;
	struct err err = { "" };
	const char *m = "From: a@b\r\n\r\n";
	size_t n;

	(void)state;
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_MAP, "not an address",
	    &h, &err), -1);
	assert_non_null(strstr(err.msg, "not an address"));
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_MAP,
	    "j\xc3\xb6rg@relay.example", &h, &err), -1);

	/* 998 octets on a line is fine, 999 is not. */
	n = (size_t)snprintf(line, sizeof line, "Subject: ");
	memset(line + n, 'x', RFC5322_LINE_MAX - n);
	strcpy(line + RFC5322_LINE_MAX, "\r\n\r\n");
	assert_int_equal(identity_rewrite_header(line, strlen(line), IDENTITY_MAP, ACCT, &h,
	    &err), 1);
	check_head(&h, strlen(line));
	identity_header_free(&h);
	memmove(line + 1, line, strlen(line) + 1);
	assert_int_equal(identity_rewrite_header(line, strlen(line), IDENTITY_MAP, ACCT, &h,
	    &err), -1);
	assert_non_null(strstr(err.msg, "longer than 998"));
	assert_null(h.head);
}

/* Many short fields: the header is capped at IDENTITY_HEADER_MAX; the body
 * is not. */
static void
caps_the_header_not_the_body(void **state)
{
	size_t size = IDENTITY_HEADER_MAX + 4096, n = 0;
	char *m = malloc(size + 1);
	struct identity_header h;
	struct err err = { "" };

	(void)state;
	assert_non_null(m);
	while (n + 12 < size)
		n += (size_t)sprintf(m + n, "X-Filler: %c\r\n", 'a' + (int)(n % 26));
	assert_int_equal(identity_rewrite_header(m, n, IDENTITY_MAP, ACCT, &h, &err), -1);
	assert_non_null(strstr(err.msg, "header is longer"));

	n = (size_t)sprintf(m, "From: a@b.example\r\n\r\n");
	memset(m + n, 'b', size - n);
	assert_int_equal(identity_rewrite_header(m, size, IDENTITY_MAP, ACCT, &h, &err), 1);
	assert_int_equal(h.body_offset, n);
	identity_header_free(&h);

	/* A line that is not a field, cut by the cap, is not taken as the end. */
	n = 0;
	while (n + 40 < IDENTITY_HEADER_MAX)
		n += (size_t)sprintf(m + n, "X-Filler: abcdefghijklmnopqrstuvwxyz\r\n");
	memset(m + n, 'c', size - n);
	assert_int_equal(identity_rewrite_header(m, size, IDENTITY_MAP, ACCT, &h, &err), -1);
	free(m);
}

/* New fields are folded to 78 octets and unfold to what they stand for. */
static void
folds_long_names_and_lists(void **state)
{
	char m[8192], want[8192], *field, *end;
	struct identity_header h;
	size_t n = 0, w = 0, col = 0;

	(void)state;
	n += (size_t)sprintf(m + n, "From: ");
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(m + n, "=?UTF-8?Q?W=C3=B6rd%d?=\r\n ", i);
	n += (size_t)sprintf(m + n, "<someone.with.a.long.name@a.long.domain.example>, ");
	for (int i = 0; i < 8; i++)
		n += (size_t)sprintf(m + n, "\"Person, %d\" <person%d@another.example>,\r\n\t", i, i);
	n += (size_t)sprintf(m + n, "last@x.example\r\n\r\n");
	assert_int_equal(identity_rewrite_header(m, n, IDENTITY_REWRITE, ACCT, &h, NULL), 1);
	check_head(&h, n);
	for (size_t i = 0; i < h.head_len; i++, col++) {
		if (h.head[i] == '\r') {
			assert_true(col <= RFC5322_LINE_SOFT);
			col = (size_t)-1;
			i++;
		}
	}
	/* From: the twenty words, one space apart, then the address. */
	w += (size_t)sprintf(want + w, "From:");
	for (int i = 0; i < 20; i++)
		w += (size_t)sprintf(want + w, " =?UTF-8?Q?W=C3=B6rd%d?=", i);
	w += (size_t)sprintf(want + w, " <" ACCT ">");
	end = strstr(h.head, "\r\nReply-To:");
	assert_non_null(end);
	n = rfc5322_unfold(h.head, (size_t)(end - h.head), h.head, 0);
	assert_int_equal(n, w);
	assert_memory_equal(h.head, want, w);
	/* Reply-To: the From: value unfolded. */
	field = end + 2;
	n = rfc5322_unfold(field, strlen(field) - 4, field, 0);
	field[n] = '\0';
	assert_non_null(strstr(field, "Reply-To: =?UTF-8?Q?W=C3=B6rd0?= =?UTF-8"));
	assert_non_null(strstr(field, "<person7@another.example>,\tlast@x.example"));
	identity_header_free(&h);
}

/* A word too long for any line: the name (and the Reply-To: value) give way
 * to the address alone. */
static void
drops_a_name_too_long_for_a_line(void **state)
{
	char m[4096], half[700];
	struct identity_header h;

	(void)state;
	memset(half, 'n', sizeof half - 1);
	half[sizeof half - 1] = '\0';
	snprintf(m, sizeof m, "From: \"%s\r\n %s\" <bob@h.example>\r\n\r\n", half, half);
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_REWRITE, ACCT, &h, NULL), 1);
	check_head(&h, strlen(m));
	assert_string_equal(h.head, "From: <" ACCT ">\r\nReply-To: <bob@h.example>\r\n\r\n");
	identity_header_free(&h);

	/* 900 octets: a long line, but it fits. */
	half[450] = '\0';
	snprintf(m, sizeof m, "From: \"%s\r\n %s\" <bob@h.example>\r\n\r\n", half, half);
	assert_int_equal(identity_rewrite_header(m, strlen(m), IDENTITY_MAP, ACCT, &h, NULL), 1);
	check_head(&h, strlen(m));
	assert_int_equal(h.head_len, strlen("From: \"\"\r\n <" ACCT ">\r\n\r\n") + 901);
	identity_header_free(&h);
}

/* --- the from-map --------------------------------------------------------------- */

static const char good_map[] =
	"\xef\xbb\xbf# from-map: one address per correspondent\r\n"
	"bob@friends.example     bob-2024@me.example\r\n"
	"Alice@Work.Example\twork@me.example   # since 2023\n"
	"\n"
	"   \t  \n"
	"@shop.example           shops@me.example\n"
	"*                       me@me.example\n"
	"j\xc3\xb6rg@b\xc3\xbc.example  joerg@me.example";

static void
parses_a_map_and_looks_up(void **state)
{
	static const struct {
		const char *rcpt, *want;
		int line;
	} lookups[] = {
		{ "bob@friends.example", "bob-2024@me.example", 2 },
		{ "bob@FRIENDS.Example", "bob-2024@me.example", 2 },
		{ "Bob@friends.example", "me@me.example", 7 },
		{ "Alice@work.example", "work@me.example", 3 },
		{ "alice@work.example", "me@me.example", 7 },
		{ "x@shop.example", "shops@me.example", 6 },
		{ "y@SHOP.EXAMPLE", "shops@me.example", 6 },
		{ "y@sub.shop.example", "me@me.example", 7 },
		{ "j\xc3\xb6rg@b\xc3\xbc.example", "joerg@me.example", 8 },
		{ "postmaster", "me@me.example", 7 },
	};
	struct identity_map *map;
	struct err err = { "" };

	(void)state;
	assert_int_equal(identity_map_parse(good_map, strlen(good_map), "f.map", &map, &err), 0);
	assert_int_equal(identity_map_count(map), 5);
	for (size_t i = 0; i < N(lookups); i++) {
		int line = -1;
		const char *got = identity_map_lookup(map, &lookups[i].rcpt, 1, &line);

		if (got == NULL || strcmp(got, lookups[i].want) != 0 || line != lookups[i].line)
			fail_msg("%s: got %s line %d, want %s line %d", lookups[i].rcpt,
			    got ? got : "NULL", line, lookups[i].want, lookups[i].line);
	}
	{
		const char *two[] = { "bob@friends.example", "x@shop.example" };
		int line = -1;

		assert_string_equal(identity_map_lookup(map, two, 2, &line), "me@me.example");
		assert_int_equal(line, 7);
		assert_string_equal(identity_map_lookup(map, NULL, 0, NULL), "me@me.example");
	}
	identity_map_free(map);
}

static void
looks_up_nothing_without_a_default(void **state)
{
	const char *text = "a@b.example c@d.example\n", *rcpt = "x@y.example";
	const char *two[] = { "a@b.example", "a@b.example" };
	struct identity_map *map;
	int line = -1;

	(void)state;
	assert_int_equal(identity_map_parse(text, strlen(text), "f", &map, NULL), 0);
	assert_null(identity_map_lookup(map, &rcpt, 1, &line));
	assert_int_equal(line, 0);
	assert_null(identity_map_lookup(map, two, 2, NULL));
	rcpt = "a@B.EXAMPLE";
	assert_string_equal(identity_map_lookup(map, &rcpt, 1, NULL), "c@d.example");
	identity_map_free(map);

	assert_int_equal(identity_map_parse("", 0, "f", &map, NULL), 0);
	assert_int_equal(identity_map_count(map), 0);
	assert_null(identity_map_lookup(map, &rcpt, 1, NULL));
	identity_map_free(map);
}

static void
reports_each_bad_line(void **state)
{
	static const char text[] =
		"bob@x.example\n"                                   /* 1 */
		"bob@x.example a@y.example extra\n"                 /* 2 */
		"not-an-address a@y.example\n"                      /* 3 */
		"@bad..domain a@y.example\n"                        /* 4 */
		"c@x.example j\xc3\xb6rg@y.example\n"               /* 5 */
		"ok@x.example a@y.example\r\n"                      /* 6 */
		"ok@X.EXAMPLE b@y.example\n"                        /* 7 */
		"* a@y.example\n"                                   /* 8 */
		"# * b@y.example\n"                                 /* 9 */
		"* b@y.example\n"                                   /* 10 */
		"d@x.example *\n"                                   /* 11 */
		"e@x.example a\x01@y.example\n"                     /* 12 */
		"@ a@y.example\n";                                  /* 13 */
	static const char *const want[] = {
		"f.map:1: 'bob@x.example' has no from-address; write RECIPIENT FROM-ADDRESS",
		"f.map:2: 'extra' after the from-address; write RECIPIENT FROM-ADDRESS (# starts a comment)",
		"f.map:3: recipient 'not-an-address': the address has no domain; write an address, @domain or *",
		"f.map:4: recipient '@bad..domain': the domain is not valid; write an address, @domain or *",
		"f.map:5: from-address 'j\xc3\xb6rg@y.example': the address is not ASCII (needs SMTPUTF8)",
		"f.map:7: recipient 'ok@X.EXAMPLE' again (first on line 6)",
		"f.map:10: recipient '*' again (first on line 8)",
		"f.map:11: from-address '*': the address has no domain",
		"f.map:12: from-address 'a?@y.example': the address contains a character not allowed there",
		"f.map:13: recipient '@': the address is empty; write an address, @domain or *",
	};
	struct identity_map *map = (struct identity_map *)&map;
	struct err err;
	char *line, *save = NULL;
	size_t i = 0;

	(void)state;
	memset(err.msg, 'x', sizeof err.msg);    /* whatever was there is replaced */
	assert_int_equal(identity_map_parse(text, sizeof text - 1, "f.map", &map, &err), -1);
	assert_null(map);
	for (line = strtok_r(err.msg, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save), i++) {
		if (i >= N(want) || strcmp(line, want[i]) != 0)
			fail_msg("error %zu:\n got  %s\n want %s", i, line, i < N(want) ? want[i] : "-");
	}
	assert_int_equal(i, N(want));
}

static void
reports_as_many_errors_as_fit(void **state)
{
	size_t size = 2000 * 40, n = 0;
	char *text = malloc(size);
	struct identity_map *map;
	struct err err;

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < 2000; i++)
		n += (size_t)sprintf(text + n, "%d@x.example\n", i);
	assert_int_equal(identity_map_parse(text, n, "big.map", &map, &err), -1);
	assert_true(strlen(err.msg) < sizeof err.msg);
	assert_non_null(strstr(err.msg, "big.map:1: '0@x.example' has no from-address"));
	assert_non_null(strstr(err.msg, "more errors not shown"));
	free(text);
}

static void
parses_a_large_map(void **state)
{
	size_t size = 20000 * 64, n = 0;
	char *text = malloc(size), rcpt[64];
	const char *r = rcpt;
	struct identity_map *map;
	int line;

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(text + n, "user%d@Host%d.example from%d@me.example\n", i, i % 7, i);
	assert_int_equal(identity_map_parse(text, n, "f", &map, NULL), 0);
	assert_int_equal(identity_map_count(map), 20000);
	snprintf(rcpt, sizeof rcpt, "user12345@host4.EXAMPLE");
	assert_string_equal(identity_map_lookup(map, &r, 1, &line), "from12345@me.example");
	assert_int_equal(line, 12346);
	identity_map_free(map);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rewrites_each_header),
		cmocka_unit_test(says_what_changed),
		cmocka_unit_test(is_idempotent),
		cmocka_unit_test(refuses_what_it_cannot_handle),
		cmocka_unit_test(caps_the_header_not_the_body),
		cmocka_unit_test(folds_long_names_and_lists),
		cmocka_unit_test(drops_a_name_too_long_for_a_line),
		cmocka_unit_test(parses_a_map_and_looks_up),
		cmocka_unit_test(looks_up_nothing_without_a_default),
		cmocka_unit_test(reports_each_bad_line),
		cmocka_unit_test(reports_as_many_errors_as_fit),
		cmocka_unit_test(parses_a_large_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
