/* netaddr.h - IP addresses, CIDR blocks and host:port strings.
 * Pure except netaddr_format (which only formats).  Input may be untrusted
 * (configuration, later PROXY headers). */
#ifndef MAILREDIR_NETADDR_H
#define MAILREDIR_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;                /* AF_INET or AF_INET6 */
	unsigned char addr[16];    /* network byte order; 4 bytes used for AF_INET */
	unsigned prefix;           /* 0..32 or 0..128 */
};

/* "127.0.0.0/8", "::1/128", "10.1.2.3" (a host: /32 or /128).  Host bits
 * beyond the prefix must be zero ("10.1.2.3/8" is an error).  0 / -1. */
int netaddr_parse_cidr(const char *s, struct cidr *out);

/* Does the address fall in the block?  An IPv4-mapped IPv6 address
 * (::ffff:1.2.3.4) matches IPv4 blocks. */
bool netaddr_cidr_match(const struct cidr *, const struct sockaddr *);
bool netaddr_cidr_list_match(const struct cidr *, size_t n, const struct sockaddr *);

/* Split "host:port", "[v6addr]:port", "host" or "[v6addr]" (port defaults to
 * default_port; pass 0 and test for it when a port is required).  host is
 * copied without brackets.  A bare IPv6 address without brackets ("::1") is
 * accepted only when it has no port ("::1:25" is one address).  Brackets
 * must hold an IPv6 address (inet_pton); a host name may contain letters,
 * digits, '-', '.', '_' (at most 253).
 * 0 / -1 (syntax, port out of 1..65535, host too long). */
int netaddr_parse_hostport(const char *s, uint16_t default_port,
    char *host, size_t hostsize, uint16_t *port);

/* A numeric IPv4 or IPv6 address (no brackets, no names) and a port into a
 * sockaddr for bind/connect/match.  0 / -1 (not a numeric address). */
int netaddr_parse_ip(const char *host, uint16_t port, struct sockaddr_storage *,
    socklen_t *len);

/* Numeric text of the address ("127.0.0.1", "::1"); IPv4-mapped IPv6 shown
 * as IPv4; "unknown" for other families.  buf at least NETADDR_TEXT_MAX.
 * Returns buf. */
#define NETADDR_TEXT_MAX 64
char *netaddr_format(const struct sockaddr *, char *buf, size_t size);

#endif
