/* test_netaddr.c - CIDR parsing and matching, host:port splitting,
 * numeric addresses and their text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "netaddr.h"

#define N(a) (sizeof (a) / sizeof (a)[0])

static const struct {
	const char *name, *text;
	int want;                 /* 0 / -1 */
	int family;
	unsigned prefix;
} cidr_cases[] = {
	{ "IPv4 block",                "127.0.0.0/8",      0, AF_INET, 8 },
	{ "IPv4 host without prefix",  "10.1.2.3",         0, AF_INET, 32 },
	{ "IPv4 everything",           "0.0.0.0/0",        0, AF_INET, 0 },
	{ "IPv4 /32",                  "192.0.2.1/32",     0, AF_INET, 32 },
	{ "IPv4 odd prefix",           "192.0.2.128/25",   0, AF_INET, 25 },
	{ "IPv6 loopback",             "::1/128",          0, AF_INET6, 128 },
	{ "IPv6 host without prefix",  "2001:db8::1",      0, AF_INET6, 128 },
	{ "IPv6 everything",           "::/0",             0, AF_INET6, 0 },
	{ "IPv6 block",                "2001:db8::/32",    0, AF_INET6, 32 },
	{ "host bits set IPv4",        "10.1.2.3/8",       -1, 0, 0 },
	{ "host bits set IPv6",        "2001:db8::1/64",   -1, 0, 0 },
	{ "prefix too long IPv4",      "10.0.0.0/33",      -1, 0, 0 },
	{ "prefix too long IPv6",      "::/129",           -1, 0, 0 },
	{ "empty prefix",              "10.0.0.0/",        -1, 0, 0 },
	{ "negative prefix",           "10.0.0.0/-1",      -1, 0, 0 },
	{ "prefix with sign",          "10.0.0.0/+8",      -1, 0, 0 },
	{ "prefix with space",         "10.0.0.0/ 8",      -1, 0, 0 },
	{ "two slashes",               "10.0.0.0/8/8",     -1, 0, 0 },
	{ "short IPv4",                "10.0/8",           -1, 0, 0 },
	{ "octet too big",             "256.0.0.0/8",      -1, 0, 0 },
	{ "a name",                    "localhost",        -1, 0, 0 },
	{ "empty",                     "",                 -1, 0, 0 },
	{ "only slash",                "/8",               -1, 0, 0 },
	{ "bracketed IPv6",            "[::1]/128",        -1, 0, 0 },
	{ "very long",                 "1111111111111111111111111111111111111111111111111111111111111111111111/8", -1, 0, 0 },
};

static void
parses_cidrs(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(cidr_cases); i++) {
		struct cidr c;
		int got = netaddr_parse_cidr(cidr_cases[i].text, &c);

		if (got != cidr_cases[i].want)
			fail_msg("%s: '%s': got %d, want %d", cidr_cases[i].name,
			    cidr_cases[i].text, got, cidr_cases[i].want);
		if (got == 0 && (c.family != cidr_cases[i].family ||
		    c.prefix != cidr_cases[i].prefix))
			fail_msg("%s: got family %d prefix %u, want %d /%u", cidr_cases[i].name,
			    c.family, c.prefix, cidr_cases[i].family, cidr_cases[i].prefix);
	}
}

/* A sockaddr for a numeric address; IPv4 may be asked for as mapped. */
static void
make_addr(const char *text, struct sockaddr_storage *ss)
{
	socklen_t len;

	if (netaddr_parse_ip(text, 25, ss, &len) < 0)
		fail_msg("test bug: '%s' is not numeric", text);
}

static const struct {
	const char *name, *cidr, *addr;
	bool want;
} match_cases[] = {
	{ "loopback in /8",                 "127.0.0.0/8",    "127.0.0.1",         true },
	{ "loopback edge",                  "127.0.0.0/8",    "127.255.255.255",   true },
	{ "outside /8",                     "127.0.0.0/8",    "128.0.0.1",         false },
	{ "odd prefix inside",              "192.0.2.128/25", "192.0.2.200",       true },
	{ "odd prefix outside",             "192.0.2.128/25", "192.0.2.127",       false },
	{ "everything IPv4",                "0.0.0.0/0",      "203.0.113.9",       true },
	{ "host /32 equal",                 "10.1.2.3",       "10.1.2.3",          true },
	{ "host /32 differs",               "10.1.2.3",       "10.1.2.4",          false },
	{ "IPv4-mapped matches IPv4 block", "127.0.0.0/8",    "::ffff:127.0.0.1",  true },
	{ "IPv4-mapped outside",            "10.0.0.0/8",     "::ffff:127.0.0.1",  false },
	{ "IPv6 block",                     "2001:db8::/32",  "2001:db8:1::5",     true },
	{ "IPv6 outside",                   "2001:db8::/32",  "2001:db9::5",       false },
	{ "IPv6 loopback",                  "::1/128",        "::1",               true },
	{ "IPv4 block never matches IPv6",  "0.0.0.0/0",      "::1",               false },
	{ "IPv6 block never matches IPv4",  "::/0",           "127.0.0.1",         false },
	{ "odd IPv6 prefix inside",         "2001:db8::/33",  "2001:db8:7fff::1",  true },
	{ "odd IPv6 prefix outside",        "2001:db8::/33",  "2001:db8:8000::1",  false },
};

static void
matches_addresses(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(match_cases); i++) {
		struct sockaddr_storage ss;
		struct cidr c;
		bool got;

		if (netaddr_parse_cidr(match_cases[i].cidr, &c) < 0)
			fail_msg("%s: test bug: bad cidr", match_cases[i].name);
		make_addr(match_cases[i].addr, &ss);
		got = netaddr_cidr_match(&c, (struct sockaddr *)&ss);
		if (got != match_cases[i].want)
			fail_msg("%s: %s in %s: got %d, want %d", match_cases[i].name,
			    match_cases[i].addr, match_cases[i].cidr, got, match_cases[i].want);
	}
}

static void
matches_lists(void **state)
{
	struct cidr list[2];
	struct sockaddr_storage ss;

	(void)state;
	assert_int_equal(netaddr_parse_cidr("127.0.0.0/8", &list[0]), 0);
	assert_int_equal(netaddr_parse_cidr("::1/128", &list[1]), 0);
	make_addr("::1", &ss);
	assert_true(netaddr_cidr_list_match(list, 2, (struct sockaddr *)&ss));
	make_addr("127.0.0.2", &ss);
	assert_true(netaddr_cidr_list_match(list, 2, (struct sockaddr *)&ss));
	make_addr("192.0.2.1", &ss);
	assert_false(netaddr_cidr_list_match(list, 2, (struct sockaddr *)&ss));
	assert_false(netaddr_cidr_list_match(list, 0, (struct sockaddr *)&ss));
}

static const struct {
	const char *name, *text;
	uint16_t default_port;
	int want;
	const char *host;
	uint16_t port;
} hostport_cases[] = {
	{ "name and port",            "smtp.isp.example:587", 25, 0, "smtp.isp.example", 587 },
	{ "name only",                "smtp.isp.example",     25, 0, "smtp.isp.example", 25 },
	{ "IPv4 and port",            "192.0.2.1:2525",       25, 0, "192.0.2.1", 2525 },
	{ "bracketed IPv6 and port",  "[2001:db8::1]:465",    25, 0, "2001:db8::1", 465 },
	{ "bracketed IPv6 only",      "[::1]",                25, 0, "::1", 25 },
	{ "bare IPv6",                "::1",                  25, 0, "::1", 25 },
	{ "bare IPv6 is one address", "::1:25",               25, 0, "::1:25", 25 },
	{ "no default port",          "host.example",          0, 0, "host.example", 0 },
	{ "underscore in name",       "mail_gw.example:25",   25, 0, "mail_gw.example", 25 },
	{ "highest port",             "h:65535",              25, 0, "h", 65535 },
	{ "port zero",                "h:0",                  25, -1, NULL, 0 },
	{ "port too big",             "h:65536",              25, -1, NULL, 0 },
	{ "port with letters",        "h:smtp",               25, -1, NULL, 0 },
	{ "port six digits",          "h:000025",             25, -1, NULL, 0 },
	{ "empty port",               "h:",                   25, -1, NULL, 0 },
	{ "empty host",               ":25",                  25, -1, NULL, 0 },
	{ "empty",                    "",                     25, -1, NULL, 0 },
	{ "bracket not closed",       "[::1:25",              25, -1, NULL, 0 },
	{ "bracketed IPv4",           "[127.0.0.1]:25",       25, -1, NULL, 0 },
	{ "bracketed name",           "[host]:25",            25, -1, NULL, 0 },
	{ "junk after bracket",       "[::1]x25",             25, -1, NULL, 0 },
	{ "bare IPv6 not valid",      "::1::2",               25, -1, NULL, 0 },
	{ "space in name",            "smtp isp:25",          25, -1, NULL, 0 },
	{ "slash in name",            "a/b:25",               25, -1, NULL, 0 },
};

static void
splits_host_and_port(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(hostport_cases); i++) {
		char host[256] = "";
		uint16_t port = 7;
		int got = netaddr_parse_hostport(hostport_cases[i].text,
		    hostport_cases[i].default_port, host, sizeof host, &port);

		if (got != hostport_cases[i].want)
			fail_msg("%s: '%s': got %d, want %d", hostport_cases[i].name,
			    hostport_cases[i].text, got, hostport_cases[i].want);
		if (got == 0 && (strcmp(host, hostport_cases[i].host) != 0 ||
		    port != hostport_cases[i].port))
			fail_msg("%s: got %s port %u, want %s port %u", hostport_cases[i].name,
			    host, port, hostport_cases[i].host, hostport_cases[i].port);
	}
}

static void
refuses_host_too_long_for_buffer(void **state)
{
	char host[8];
	uint16_t port;

	(void)state;
	assert_int_equal(netaddr_parse_hostport("abcdefg:25", 25, host, sizeof host, &port), 0);
	assert_string_equal(host, "abcdefg");
	assert_int_equal(netaddr_parse_hostport("abcdefgh:25", 25, host, sizeof host, &port), -1);
}

static const struct {
	const char *name, *in, *want;
} format_cases[] = {
	{ "IPv4",                "127.0.0.1",          "127.0.0.1" },
	{ "IPv6 shortened",      "2001:0db8:0::1",     "2001:db8::1" },
	{ "IPv6 loopback",       "::1",                "::1" },
	{ "IPv4-mapped as IPv4", "::ffff:192.0.2.7",   "192.0.2.7" },
};

static void
formats_addresses(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(format_cases); i++) {
		struct sockaddr_storage ss;
		char buf[NETADDR_TEXT_MAX];

		make_addr(format_cases[i].in, &ss);
		netaddr_format((struct sockaddr *)&ss, buf, sizeof buf);
		if (strcmp(buf, format_cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", format_cases[i].name, buf,
			    format_cases[i].want);
	}
}

static void
formats_unknown_family(void **state)
{
	struct sockaddr_storage ss;
	char buf[NETADDR_TEXT_MAX];

	(void)state;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof buf), "unknown");
}

static void
parses_numeric_addresses_only(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;

	(void)state;
	assert_int_equal(netaddr_parse_ip("192.0.2.1", 2525, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 2525);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(netaddr_parse_ip("::1", 25, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(netaddr_parse_ip("localhost", 25, &ss, &len), -1);
	assert_int_equal(netaddr_parse_ip("[::1]", 25, &ss, &len), -1);
	assert_int_equal(netaddr_parse_ip("", 25, &ss, &len), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_cidrs),
		cmocka_unit_test(matches_addresses),
		cmocka_unit_test(matches_lists),
		cmocka_unit_test(splits_host_and_port),
		cmocka_unit_test(refuses_host_too_long_for_buffer),
		cmocka_unit_test(formats_addresses),
		cmocka_unit_test(formats_unknown_family),
		cmocka_unit_test(parses_numeric_addresses_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
