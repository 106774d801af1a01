/* netaddr.c - IP addresses, CIDR blocks, host:port strings; see netaddr.h.
 *
 * Untrusted input (configuration values, later PROXY headers): every string
 * is length-checked before it is copied, and only inet_pton decides what an
 * address is. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

/* Longest textual IPv6 address, with an embedded IPv4 part, plus NUL. */
#define ADDR_TEXT_MAX INET6_ADDRSTRLEN

/* Decimal digits only (no sign, no spaces), at most 5 of them, <= max. */
static int
parse_number(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n > max)
		return -1;
	*out = n;
	return 0;
}

/* Copy s[0..len) into buf as a C string; -1 when it does not fit. */
static int
copy_text(char *buf, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

int
netaddr_parse_cidr(const char *s, struct cidr *out)
{
	char text[ADDR_TEXT_MAX];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;
	unsigned max, i;
	struct cidr c;

	memset(&c, 0, sizeof c);
	if (copy_text(text, sizeof text, s, len) < 0)
		return -1;
	c.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, text, c.addr) != 1)
		return -1;
	max = c.family == AF_INET ? 32 : 128;
	if (slash == NULL)
		prefix = max;
	else if (parse_number(slash + 1, max, &prefix) < 0)
		return -1;
	c.prefix = (unsigned)prefix;
	/* Host bits must be zero: "10.1.2.3/8" is more likely a typo than a
	 * wish for 10.0.0.0/8. */
	for (i = c.prefix; i < max; i++)
		if (c.addr[i / 8] & (0x80u >> (i % 8)))
			return -1;
	*out = c;
	return 0;
}

/* Do the first `prefix` bits of a and b agree? */
static bool
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xffu << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
netaddr_cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return c->family == AF_INET &&
		    prefix_equal(c->addr, (const unsigned char *)&sin->sin_addr, c->prefix);
	}
	if (sa->sa_family != AF_INET6)
		return false;
	sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (c->family == AF_INET6)
		return prefix_equal(c->addr, sin6->sin6_addr.s6_addr, c->prefix);
	/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d. */
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	    prefix_equal(c->addr, sin6->sin6_addr.s6_addr + 12, c->prefix);
}

bool
netaddr_cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (netaddr_cidr_match(&list[i], sa))
			return true;
	return false;
}

/* A host name as we accept it: letters, digits, '-', '.', '_' (seen in
 * real MX/submission names), at most 253 characters. */
static bool
valid_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_'))
			return false;
	}
	return true;
}

static bool
valid_ipv6(const char *s, size_t len)
{
	char text[ADDR_TEXT_MAX];
	struct in6_addr a;

	return copy_text(text, sizeof text, s, len) == 0 &&
	    inet_pton(AF_INET6, text, &a) == 1;
}

int
netaddr_parse_hostport(const char *s, uint16_t default_port,
    char *host, size_t hostsize, uint16_t *port)
{
	const char *h = s, *colon, *close;
	size_t hlen;
	unsigned long p = default_port;

	if (s[0] == '[') {
		close = strchr(s, ']');
		if (close == NULL)
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		if (!valid_ipv6(h, hlen))
			return -1;
		if (close[1] == ':') {
			if (parse_number(close + 2, 65535, &p) < 0 || p == 0)
				return -1;
		} else if (close[1] != '\0')
			return -1;
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') != NULL) {
		/* Two or more colons: a bare IPv6 address, never with a port
		 * ("::1:25" is an address, not ::1 port 25). */
		hlen = strlen(s);
		if (!valid_ipv6(s, hlen))
			return -1;
	} else if (colon != NULL) {
		hlen = (size_t)(colon - s);
		if (!valid_hostname(s, hlen) || parse_number(colon + 1, 65535, &p) < 0 || p == 0)
			return -1;
	} else {
		hlen = strlen(s);
		if (!valid_hostname(s, hlen))
			return -1;
	}
	if (copy_text(host, hostsize, h, hlen) < 0)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

int
netaddr_parse_ip(const char *host, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof *sin;
		return 0;
	}
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof *sin6;
		return 0;
	}
	return -1;
}

char *
netaddr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	const char *ok = NULL;

	if (size == 0)
		return buf;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		ok = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			ok = inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, buf, (socklen_t)size);
		else
			ok = inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
	}
	if (ok == NULL)
		snprintf(buf, size, "unknown");
	return buf;
}
