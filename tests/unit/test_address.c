/* test_address.c - address_check, address_check_domain, address_domain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "address.h"

#define S(lit) lit, sizeof(lit) - 1     /* keeps NUL octets inside literals */
#define U ADDRESS_ALLOW_UTF8
#define P ADDRESS_ALLOW_POSTMASTER
#define N(array) (sizeof(array) / sizeof((array)[0]))

static const struct {
	const char *name, *addr;
	size_t len;
	unsigned flags;
	enum address_result want;
} cases[] = {
	/* valid mailboxes */
	{ "simple",                      S("joe@example.com"), 0, ADDRESS_OK },
	{ "plus tag and dots",           S("joe.q.public+tag@mail.example.com"), 0, ADDRESS_OK },
	{ "every atext special",         S("!#$%&'*+-/=?^_`{|}~@example.com"), 0, ADDRESS_OK },
	{ "single-label domain",         S("root@localhost"), 0, ADDRESS_OK },
	{ "hyphen inside a label",       S("a@mail-relay.example"), 0, ADDRESS_OK },
	{ "numeric labels",              S("a@1.2.3.4"), 0, ADDRESS_OK },
	{ "upper case domain",           S("A@EXAMPLE.COM"), 0, ADDRESS_OK },
	/* quoted local parts */
	{ "quoted with spaces",          S("\"joe public\"@example.com"), 0, ADDRESS_OK },
	{ "quoted with escaped quote",   S("\"a\\\"b\"@example.com"), 0, ADDRESS_OK },
	{ "quoted with escaped bslash",  S("\"a\\\\b\"@example.com"), 0, ADDRESS_OK },
	{ "quoted with escaped space",   S("\"a\\ b\"@example.com"), 0, ADDRESS_OK },
	{ "quoted holding @ and <>",     S("\"a@b<c>\"@example.com"), 0, ADDRESS_OK },
	{ "quoted dots anywhere",        S("\".a..b.\"@example.com"), 0, ADDRESS_OK },
	{ "empty quoted string",         S("\"\"@example.com"), 0, ADDRESS_OK },
	{ "unterminated quote",          S("\"abc@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "text after closing quote",    S("\"a\"b@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "space after closing quote",   S("\"a\" @example.com"), 0, ADDRESS_BAD_CHAR },
	{ "unescaped quote inside",      S("\"a\"\"@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "backslash at the end",        S("\"a\\"), 0, ADDRESS_BAD_LOCAL },
	{ "escaped 8-bit octet",         S("\"\\\xc3\xa9\"@example.com"), U, ADDRESS_BAD_LOCAL },
	{ "tab inside quotes",           S("\"a\tb\"@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "escaped tab inside quotes",   S("\"a\\\tb\"@example.com"), 0, ADDRESS_BAD_CHAR },
	/* dot-string errors */
	{ "leading dot",                 S(".a@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "trailing dot",                S("a.@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "double dot",                  S("a..b@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "empty local part",            S("@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "comment in local part",       S("a(b)@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "comma in local part",         S("a,b@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "angle in local part",         S("a<b@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "backslash unquoted",          S("a\\b@example.com"), 0, ADDRESS_BAD_LOCAL },
	{ "space unquoted",              S("a b@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "trailing space",              S("a@example.com "), 0, ADDRESS_BAD_CHAR },
	{ "leading space",               S(" a@example.com"), 0, ADDRESS_BAD_CHAR },
	/* domain names */
	{ "empty domain",                S("a@"), 0, ADDRESS_BAD_DOMAIN },
	{ "domain leading dot",          S("a@.example.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "domain trailing dot",         S("a@example.com."), 0, ADDRESS_BAD_DOMAIN },
	{ "domain double dot",           S("a@example..com"), 0, ADDRESS_BAD_DOMAIN },
	{ "label starts with hyphen",    S("a@-example.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "label ends with hyphen",      S("a@example-.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "underscore in domain",        S("a@ex_ample.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "two @",                       S("a@b@example.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "space in domain",             S("a@exa mple.com"), 0, ADDRESS_BAD_CHAR },
	/* address literals */
	{ "IPv4 literal",                S("a@[192.0.2.1]"), 0, ADDRESS_OK },
	{ "IPv4 literal 0 and 255",      S("a@[0.0.255.255]"), 0, ADDRESS_OK },
	{ "IPv4 literal leading zeros",  S("a@[001.002.003.004]"), 0, ADDRESS_OK },
	{ "IPv4 literal 256",            S("a@[1.2.3.256]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv4 literal 3 parts",        S("a@[1.2.3]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv4 literal 5 parts",        S("a@[1.2.3.4.5]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv4 literal 4 digits",       S("a@[1.2.3.0004]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv4 literal empty part",     S("a@[1..3.4]"), 0, ADDRESS_BAD_DOMAIN },
	{ "literal without ]",           S("a@[1.2.3.4"), 0, ADDRESS_BAD_DOMAIN },
	{ "literal text after ]",        S("a@[1.2.3.4]x"), 0, ADDRESS_BAD_DOMAIN },
	{ "empty literal",               S("a@[]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 loopback",               S("a@[IPv6:::1]"), 0, ADDRESS_OK },
	{ "IPv6 unspecified",            S("a@[IPv6:::]"), 0, ADDRESS_OK },
	{ "IPv6 compressed",             S("a@[IPv6:2001:db8::1]"), 0, ADDRESS_OK },
	{ "IPv6 full",                   S("a@[IPv6:2001:db8:0:0:0:0:0:1]"), 0, ADDRESS_OK },
	{ "IPv6 trailing ::",            S("a@[IPv6:2001:db8::]"), 0, ADDRESS_OK },
	{ "IPv6 tag any case",           S("a@[ipv6:2001:DB8::1]"), 0, ADDRESS_OK },
	{ "IPv6 with IPv4 compressed",   S("a@[IPv6:::ffff:192.0.2.1]"), 0, ADDRESS_OK },
	{ "IPv6 with IPv4 full",         S("a@[IPv6:1:2:3:4:5:6:192.0.2.1]"), 0, ADDRESS_OK },
	{ "IPv6 7 groups",               S("a@[IPv6:1:2:3:4:5:6:7]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 9 groups",               S("a@[IPv6:1:2:3:4:5:6:7:8:9]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 :: for one group",       S("a@[IPv6:1:2:3:4:5:6:7::]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 two ::",                 S("a@[IPv6:1::2::3]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 :::",                    S("a@[IPv6:1:::2]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 5-digit group",          S("a@[IPv6:12345::1]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 leading single colon",   S("a@[IPv6::1:2:3:4:5:6:7]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 trailing single colon",  S("a@[IPv6:1:2:3:4:5:6:7:]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 bad IPv4 part",          S("a@[IPv6:::ffff:1.2.3]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 empty",                  S("a@[IPv6:]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 zone id",                S("a@[IPv6:fe80::1%eth0]"), 0, ADDRESS_BAD_DOMAIN },
	{ "IPv6 without tag",            S("a@[2001:db8::1]"), 0, ADDRESS_BAD_DOMAIN },
	{ "general literal refused",     S("a@[x400:c=us]"), 0, ADDRESS_BAD_DOMAIN },
	/* empty, no domain, postmaster */
	{ "empty",                       S(""), 0, ADDRESS_EMPTY },
	{ "empty with flags",            S(""), U | P, ADDRESS_EMPTY },
	{ "no @",                        S("joe"), 0, ADDRESS_NO_DOMAIN },
	{ "no @ with postmaster flag",   S("joe"), P, ADDRESS_NO_DOMAIN },
	{ "postmaster without flag",     S("postmaster"), 0, ADDRESS_NO_DOMAIN },
	{ "postmaster with flag",        S("postmaster"), P, ADDRESS_OK },
	{ "Postmaster any case",         S("PostMaster"), P, ADDRESS_OK },
	{ "postmaster with domain",      S("postmaster@example.com"), 0, ADDRESS_OK },
	{ "quoted postmaster",           S("\"postmaster\""), P, ADDRESS_NO_DOMAIN },
	{ "postmasters",                 S("postmasters"), P, ADDRESS_NO_DOMAIN },
	/* 8-bit and UTF-8 */
	{ "UTF-8 local without flag",    S("j\xc3\xb6rg@example.com"), 0, ADDRESS_NEEDS_UTF8 },
	{ "UTF-8 domain without flag",   S("a@b\xc3\xbc" "cher.example"), 0, ADDRESS_NEEDS_UTF8 },
	{ "UTF-8 quoted without flag",   S("\"j\xc3\xb6rg\"@example.com"), 0, ADDRESS_NEEDS_UTF8 },
	{ "bad 8-bit without flag",      S("a\xff@example.com"), 0, ADDRESS_NEEDS_UTF8 },
	{ "UTF-8 local with flag",       S("j\xc3\xb6rg@example.com"), U, ADDRESS_OK },
	{ "UTF-8 domain with flag",      S("a@b\xc3\xbc" "cher.example"), U, ADDRESS_OK },
	{ "UTF-8 quoted with flag",      S("\"j\xc3\xb6 rg\"@example.com"), U, ADDRESS_OK },
	{ "UTF-8 3 octets (CJK)",        S("\xe7\x94\xb2@\xe4\xbe\x8b.example"), U, ADDRESS_OK },
	{ "UTF-8 4 octets (emoji)",      S("\xf0\x9f\x98\x80@example.com"), U, ADDRESS_OK },
	{ "UTF-8 U+10FFFF",              S("\xf4\x8f\xbf\xbf@example.com"), U, ADDRESS_OK },
	{ "UTF-8 in literal",            S("a@[1.2.3.\xc3\xa4]"), U, ADDRESS_BAD_DOMAIN },
	{ "lone continuation octet",     S("a\x80@example.com"), U, ADDRESS_BAD_CHAR },
	{ "truncated sequence at end",   S("a@example.com\xc3"), U, ADDRESS_BAD_CHAR },
	{ "truncated 3-octet sequence",  S("a\xe4\xbe@example.com"), U, ADDRESS_BAD_CHAR },
	{ "overlong 2 octets",           S("a\xc0\xaf@example.com"), U, ADDRESS_BAD_CHAR },
	{ "overlong 3 octets",           S("a\xe0\x80\xaf@example.com"), U, ADDRESS_BAD_CHAR },
	{ "overlong 4 octets",           S("a\xf0\x80\x80\xaf@example.com"), U, ADDRESS_BAD_CHAR },
	{ "surrogate",                   S("a\xed\xa0\x80@example.com"), U, ADDRESS_BAD_CHAR },
	{ "above U+10FFFF",              S("a\xf4\x90\x80\x80@example.com"), U, ADDRESS_BAD_CHAR },
	{ "octet F5",                    S("a\xf5\x80\x80\x80@example.com"), U, ADDRESS_BAD_CHAR },
	{ "octet FF",                    S("a\xff@example.com"), U, ADDRESS_BAD_CHAR },
	/* control characters */
	{ "NUL first",                   S("\0a@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "NUL in local part",           S("a\0b@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "NUL last",                    S("a@example.com\0"), 0, ADDRESS_BAD_CHAR },
	{ "NUL inside quotes",           S("\"a\0b\"@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "CR in domain",                S("a@exam\rple.com"), 0, ADDRESS_BAD_CHAR },
	{ "LF at the end",               S("a@example.com\n"), 0, ADDRESS_BAD_CHAR },
	{ "tab",                         S("a\t@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "DEL",                         S("a\x7f@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "control before 8-bit",        S("\x01\xc3\xa4@example.com"), 0, ADDRESS_BAD_CHAR },
	{ "8-bit before control",        S("\xc3\xa4\x01@example.com"), 0, ADDRESS_NEEDS_UTF8 },
};

static void
checks_each_case(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		enum address_result got = address_check(cases[i].addr, cases[i].len,
		    cases[i].flags);

		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].name,
			    address_result_name(got), address_result_name(cases[i].want));
	}
}

/* Length limits, built at run time: local part of `local` octets, domain of
 * `domain` octets in labels of at most 50 (or one label when `one_label`). */
static const struct {
	const char *name;
	size_t local, domain;
	int one_label;
	enum address_result want;
} lengths[] = {
	{ "local part of 64",            64, 11, 0, ADDRESS_OK },
	{ "local part of 65",            65, 11, 0, ADDRESS_TOO_LONG },
	{ "mailbox of 254",              64, 189, 0, ADDRESS_OK },
	{ "mailbox of 255",              64, 190, 0, ADDRESS_TOO_LONG },
	{ "mailbox of 254, short local", 1, 252, 0, ADDRESS_OK },
	{ "mailbox of 255, short local", 1, 253, 0, ADDRESS_TOO_LONG },
	{ "label of 63",                 1, 63, 1, ADDRESS_OK },
	{ "label of 64",                 1, 64, 1, ADDRESS_BAD_DOMAIN },
};

/* `len` octets of 'd', with a '.' after every 50 (never first or last). */
static void
fill_domain(char *buf, size_t len, int one_label)
{
	size_t i;

	memset(buf, 'd', len);
	for (i = 50; !one_label && i + 1 < len; i += 51)
		buf[i] = '.';
}

static void
checks_length_limits(void **state)
{
	char buf[600];
	size_t i;

	(void)state;
	for (i = 0; i < N(lengths); i++) {
		size_t l = lengths[i].local, d = lengths[i].domain;
		enum address_result got;

		memset(buf, 'l', l);
		buf[l] = '@';
		fill_domain(buf + l + 1, d, lengths[i].one_label);
		got = address_check(buf, l + 1 + d, 0);
		if (got != lengths[i].want)
			fail_msg("%s: got %s, want %s", lengths[i].name,
			    address_result_name(got), address_result_name(lengths[i].want));
	}
}

/* A quoted local part counts its quotes: "" + 62 = 64 octets. */
static void
checks_quoted_length(void **state)
{
	char buf[128];
	size_t n;

	(void)state;
	for (n = 62; n <= 63; n++) {
		enum address_result want = n == 62 ? ADDRESS_OK : ADDRESS_TOO_LONG;
		enum address_result got;

		buf[0] = '"';
		memset(buf + 1, ' ', n);
		memcpy(buf + 1 + n, "\"@x", 3);
		got = address_check(buf, n + 4, 0);
		if (got != want)
			fail_msg("quoted local part of %zu: got %s, want %s", n + 2,
			    address_result_name(got), address_result_name(want));
	}
}

static const struct {
	const char *name, *domain;
	size_t len;
	unsigned flags;
	enum address_result want;
} domains[] = {
	{ "name",                        S("example.com"), 0, ADDRESS_OK },
	{ "literal",                     S("[192.0.2.1]"), 0, ADDRESS_OK },
	{ "IPv6 literal",                S("[IPv6:::1]"), 0, ADDRESS_OK },
	{ "empty",                       S(""), 0, ADDRESS_EMPTY },
	{ "trailing dot",                S("example.com."), 0, ADDRESS_BAD_DOMAIN },
	{ "with @",                      S("a@example.com"), 0, ADDRESS_BAD_DOMAIN },
	{ "space",                       S("exa mple"), 0, ADDRESS_BAD_CHAR },
	{ "NUL",                         S("exa\0mple"), 0, ADDRESS_BAD_CHAR },
	{ "UTF-8 without flag",          S("b\xc3\xbc" "cher.example"), 0, ADDRESS_NEEDS_UTF8 },
	{ "UTF-8 with flag",             S("b\xc3\xbc" "cher.example"), U, ADDRESS_OK },
	{ "bad UTF-8 with flag",         S("b\xc3" "cher.example"), U, ADDRESS_BAD_CHAR },
};

static void
checks_each_domain(void **state)
{
	char buf[300];
	size_t i, len;

	(void)state;
	for (i = 0; i < N(domains); i++) {
		enum address_result got = address_check_domain(domains[i].domain,
		    domains[i].len, domains[i].flags);

		if (got != domains[i].want)
			fail_msg("domain %s: got %s, want %s", domains[i].name,
			    address_result_name(got), address_result_name(domains[i].want));
	}
	for (len = 254; len <= 256; len++) {
		enum address_result want = len <= ADDRESS_DOMAIN_MAX ? ADDRESS_OK
		    : ADDRESS_TOO_LONG;
		enum address_result got;

		fill_domain(buf, len, 0);
		got = address_check_domain(buf, len, 0);
		if (got != want)
			fail_msg("domain of %zu: got %s, want %s", len,
			    address_result_name(got), address_result_name(want));
	}
}

static const struct {
	const char *addr, *want;        /* want: the domain, NULL for none */
} domain_of[] = {
	{ "joe@example.com",             "example.com" },
	{ "\"a@b\"@example.com",         "example.com" },
	{ "\"a\\\"@b\"@example.com",     "example.com" },
	{ "a@b@example.com",             "example.com" },
	{ "a@",                          "" },
	{ "postmaster",                  NULL },
	{ "\"a@b\"",                     NULL },
	{ "",                            NULL },
};

static void
finds_the_domain(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(domain_of); i++) {
		const char *got = address_domain(domain_of[i].addr);
		const char *want = domain_of[i].want;

		if (got == NULL && want == NULL)
			continue;
		if (got == NULL || want == NULL || strcmp(got, want) != 0)
			fail_msg("address_domain(%s): got %s, want %s", domain_of[i].addr,
			    got ? got : "NULL", want ? want : "NULL");
		assert_ptr_equal(got, domain_of[i].addr + strlen(domain_of[i].addr)
		    - strlen(want));
	}
}

static void
names_every_result(void **state)
{
	int r, k;

	(void)state;
	for (r = ADDRESS_OK; r <= ADDRESS_BAD_CHAR; r++) {
		const char *text = address_result_text((enum address_result)r);
		const char *name = address_result_name((enum address_result)r);

		assert_non_null(text);
		assert_true(strncmp(name, "ADDRESS_", 8) == 0 && strcmp(name, "ADDRESS_?") != 0);
		for (k = ADDRESS_OK; k < r; k++) {
			assert_string_not_equal(text, address_result_text((enum address_result)k));
			assert_string_not_equal(name, address_result_name((enum address_result)k));
		}
	}
	assert_string_equal(address_result_name((enum address_result)99), "ADDRESS_?");
	assert_non_null(address_result_text((enum address_result)99));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checks_each_case),
		cmocka_unit_test(checks_length_limits),
		cmocka_unit_test(checks_quoted_length),
		cmocka_unit_test(checks_each_domain),
		cmocka_unit_test(finds_the_domain),
		cmocka_unit_test(names_every_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
