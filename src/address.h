/* address.h - RFC 5321 mailbox syntax (the envelope's addresses).
 *
 * Pure: no I/O, no allocation.  Input is untrusted (SMTP clients, sendmail
 * arguments, envelope files).  Used by smtp_parse (MAIL/RCPT paths), the
 * sendmail injector and the envelope loader. */
#ifndef MAILREDIR_ADDRESS_H
#define MAILREDIR_ADDRESS_H

#include <stddef.h>

/* RFC 5321 §4.5.3.1: local-part 64, domain 255, path 256 octets (with <>). */
#define ADDRESS_LOCAL_MAX  64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_MAX        254   /* a mailbox inside a 256-octet path */

enum address_result {
	ADDRESS_OK,
	ADDRESS_EMPTY,          /* "" (the caller decides if <> is allowed) */
	ADDRESS_TOO_LONG,       /* local part > 64, domain > 255 or total > 254 */
	ADDRESS_NO_DOMAIN,      /* no '@' (only "postmaster" may go without, see flags) */
	ADDRESS_BAD_LOCAL,      /* not a dot-string or quoted-string */
	ADDRESS_BAD_DOMAIN,     /* not a domain name or [address literal] */
	ADDRESS_NEEDS_UTF8,     /* 8-bit octets without ADDRESS_ALLOW_UTF8 */
	ADDRESS_BAD_CHAR,       /* control character, NUL, space outside quotes */
};

enum address_flags {
	ADDRESS_ALLOW_UTF8       = 1 << 0,  /* SMTPUTF8 given: UTF-8 in local part/domain */
	ADDRESS_ALLOW_POSTMASTER = 1 << 1,  /* bare "postmaster" (RCPT, RFC 5321 §4.5.1) */
};

/* Check that addr[0..len) is a mailbox (local-part@domain) without angle
 * brackets.  UTF-8 is checked for well-formedness when allowed (malformed
 * UTF-8 is ADDRESS_BAD_CHAR).  The domain is a name (letters, digits, '-'
 * inside labels; ASCII labels at most 63 octets) or an address literal
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]").  "postmaster" is matched without
 * regard to case.  Checks run in this order, the first failure wins:
 * empty, octets (BAD_CHAR / NEEDS_UTF8), total length, local part, domain. */
enum address_result address_check(const char *addr, size_t len, unsigned flags);

/* The same check for a domain alone (EHLO argument, source route, config):
 * ADDRESS_OK, _EMPTY, _TOO_LONG (> 255), _BAD_DOMAIN, _NEEDS_UTF8, _BAD_CHAR. */
enum address_result address_check_domain(const char *domain, size_t len, unsigned flags);

/* A short English text for a result, e.g. "the domain is not valid". */
const char *address_result_text(enum address_result);
/* "ADDRESS_BAD_DOMAIN"-like names for logs and tests. */
const char *address_result_name(enum address_result);

/* Pointer to the domain part (after the last '@' outside quotes) inside
 * addr, or NULL when there is none.  addr must be NUL-terminated. */
const char *address_domain(const char *addr);

#endif
