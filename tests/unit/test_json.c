/* test_json.c - json_escape and json_utf8_len (src/json.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

#define S(lit) lit, sizeof lit - 1   /* a literal with its length (NULs kept) */

static const struct {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
} escape_cases[] = {
	{ "empty",                  S(""),                      "" },
	{ "plain ASCII",            S("alice@lan.example"),     "alice@lan.example" },
	{ "quote and backslash",    S("a\"b\\c"),               "a\\\"b\\\\c" },
	{ "slash is left alone",    S("a/b"),                   "a/b" },
	{ "NUL inside",             S("a\0b"),                  "a\\u0000b" },
	{ "LF CR TAB",              S("\n\r\t"),                "\\u000A\\u000D\\u0009" },
	{ "ESC (terminal codes)",   S("\x1b[31m"),              "\\u001B[31m" },
	{ "unit separator 0x1F",    S("\x1f"),                  "\\u001F" },
	{ "DEL",                    S("\x7f"),                  "\\u007F" },
	{ "space and tilde stay",   S(" ~"),                    " ~" },
	{ "2-byte UTF-8",           S("j\xc3\xb6rg@b\xc3\xbc" "cher.example"),
	                                                        "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
	{ "3-byte UTF-8",           S("\xe2\x82\xac"),          "\xe2\x82\xac" },
	{ "4-byte UTF-8",           S("\xf0\x9f\x93\xa7"),      "\xf0\x9f\x93\xa7" },
	{ "highest code point",     S("\xf4\x8f\xbf\xbf"),      "\xf4\x8f\xbf\xbf" },
	{ "U+2028 passes",          S("\xe2\x80\xa8"),          "\xe2\x80\xa8" },
	{ "C1 control as UTF-8",    S("\xc2\x9b"),              "\xc2\x9b" },
	{ "lone continuation byte", S("a\x80z"),                "a\\u0080z" },
	{ "Latin-1 byte",           S("caf\xe9"),               "caf\\u00E9" },
	{ "overlong NUL C0 80",     S("\xc0\x80"),              "\\u00C0\\u0080" },
	{ "overlong C1 BF",         S("\xc1\xbf"),              "\\u00C1\\u00BF" },
	{ "overlong 3-byte",        S("\xe0\x80\xaf"),          "\\u00E0\\u0080\\u00AF" },
	{ "overlong 4-byte",        S("\xf0\x8f\xbf\xbf"),      "\\u00F0\\u008F\\u00BF\\u00BF" },
	{ "surrogate D800",         S("\xed\xa0\x80"),          "\\u00ED\\u00A0\\u0080" },
	{ "above U+10FFFF",         S("\xf4\x90\x80\x80"),      "\\u00F4\\u0090\\u0080\\u0080" },
	{ "F5 lead byte",           S("\xf5\x80\x80\x80"),      "\\u00F5\\u0080\\u0080\\u0080" },
	{ "FF byte",                S("\xff"),                  "\\u00FF" },
	{ "truncated at the end",   S("ok\xe2\x82"),            "ok\\u00E2\\u0082" },
	{ "cut short by ASCII",     S("\xe2\x82" "A"),          "\\u00E2\\u0082A" },
	{ "cut short by a quote",   S("\xc3\""),                "\\u00C3\\\"" },
	{ "valid after invalid",    S("\xff\xc3\xa9"),          "\\u00FF\xc3\xa9" },
	{ "SMTP reply",             S("550 5.1.1 <bob@x> \"no\""),
	                                                        "550 5.1.1 <bob@x> \\\"no\\\"" },
};

static void
escapes_each_case(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
		char got[256];
		size_t want_len = strlen(escape_cases[i].want);
		size_t n = json_escape(escape_cases[i].in, escape_cases[i].len, got, sizeof got);

		if (strcmp(got, escape_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", escape_cases[i].name,
			    got, escape_cases[i].want);
		if (n != want_len)
			fail_msg("%s: returned %zu, want %zu", escape_cases[i].name, n, want_len);
		if (json_escape(escape_cases[i].in, escape_cases[i].len, NULL, 0) != want_len)
			fail_msg("%s: measuring with size 0 disagrees", escape_cases[i].name);
	}
}

/* A short buffer gets whole pieces only, NUL-terminated; the return value
 * still says what the whole result needs. */
static const struct {
	const char *name;
	const char *in;
	size_t size;
	const char *want;
	size_t want_need;
} truncate_cases[] = {
	{ "size 1 holds only the NUL", "abc",              1, "",      3 },
	{ "cut between characters",    "abcdef",           4, "abc",   6 },
	{ "exactly fits",              "abc",              4, "abc",   3 },
	{ "no half escape",            "a\nb",             5, "a",     8 },
	{ "no half UTF-8 sequence",    "a\xe2\x82\xac" "b", 3, "a",    5 },
	{ "nothing after a cut",       "a\"bcd",           3, "a",     6 },
};

static void
truncates_whole_pieces(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof truncate_cases / sizeof truncate_cases[0]; i++) {
		char got[64];
		size_t n;

		memset(got, 'X', sizeof got);
		n = json_escape(truncate_cases[i].in, strlen(truncate_cases[i].in), got,
		    truncate_cases[i].size);
		if (strcmp(got, truncate_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", truncate_cases[i].name,
			    got, truncate_cases[i].want);
		if (n != truncate_cases[i].want_need)
			fail_msg("%s: returned %zu, want %zu", truncate_cases[i].name, n,
			    truncate_cases[i].want_need);
		if (got[truncate_cases[i].size] != 'X')
			fail_msg("%s: wrote past the buffer", truncate_cases[i].name);
	}
}

static const struct {
	const char *name;
	const char *in;
	size_t len;
	size_t want;
} utf8_cases[] = {
	{ "empty input",               S(""),                 0 },
	{ "ASCII",                     S("a"),                1 },
	{ "NUL is one ASCII byte",     S("\0"),               1 },
	{ "U+0080",                    S("\xc2\x80"),         2 },
	{ "U+07FF",                    S("\xdf\xbf"),         2 },
	{ "U+0800",                    S("\xe0\xa0\x80"),     3 },
	{ "U+D7FF",                    S("\xed\x9f\xbf"),     3 },
	{ "U+E000",                    S("\xee\x80\x80"),     3 },
	{ "U+FFFF",                    S("\xef\xbf\xbf"),     3 },
	{ "U+10000",                   S("\xf0\x90\x80\x80"), 4 },
	{ "U+10FFFF",                  S("\xf4\x8f\xbf\xbf"), 4 },
	{ "continuation first",        S("\xbf"),             0 },
	{ "C0 lead",                   S("\xc0\xaf"),         0 },
	{ "E0 overlong",               S("\xe0\x9f\xbf"),     0 },
	{ "ED surrogate",              S("\xed\xbf\xbf"),     0 },
	{ "F0 overlong",               S("\xf0\x80\x80\x80"), 0 },
	{ "F4 too high",               S("\xf4\x90\x80\x80"), 0 },
	{ "F8 lead",                   S("\xf8\x88\x80\x80"), 0 },
	{ "third byte not continuing", S("\xe2\x82\x41"),     0 },
	{ "fourth byte not continuing",S("\xf0\x9f\x93\x41"), 0 },
	{ "sequence beyond len",       "\xe2\x82\xac", 2,     0 },
};

static void
measures_utf8_sequences(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		size_t got = json_utf8_len(utf8_cases[i].in, utf8_cases[i].len);

		if (got != utf8_cases[i].want)
			fail_msg("%s: got %zu, want %zu", utf8_cases[i].name, got,
			    utf8_cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escapes_each_case),
		cmocka_unit_test(truncates_whole_pieces),
		cmocka_unit_test(measures_utf8_sequences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
