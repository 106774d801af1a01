/* address.c - RFC 5321 mailbox syntax; see address.h.
 *
 * STANDARDS
 *	RFC 5321 §4.1.2 (Mailbox, Dot-string, Quoted-string, Domain),
 *	§4.1.3 (address literals), §4.5.3.1 (size limits);
 *	RFC 6531 §3.3 (UTF-8 in atext, qtext and U-labels);
 *	RFC 3629 §4 (well-formed UTF-8); RFC 1035 §2.3.4 (63-octet labels).
 *
 * SECURITY
 *	Every input here is untrusted.  Nothing is written, nothing is read
 *	outside addr[0..len).  The checks run in a fixed order: octets
 *	(controls, 8-bit), total length, local part, domain. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "address.h"
#include "util.h"

#define LABEL_MAX 63            /* RFC 1035 §2.3.4, for ASCII labels */
#define SNUM_MAX  255           /* RFC 5321 §4.1.3 Snum */

/* --- character classes (ASCII only: no locale, no <ctype.h>) ------------- */

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_xdigit(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 5321 atext (RFC 5322 §3.2.3); 8-bit octets were vetted by scan_octets. */
static bool
is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c >= 0x80 ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 qtextSMTP: %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531). */
static bool
is_qtext(unsigned char c)
{
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || c >= 0x80;
}

/* Let-dig; a non-ASCII octet stands for a U-label character (RFC 6531). */
static bool
is_let_dig(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c >= 0x80;
}

/* --- octets --------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0 (RFC 3629 §4:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t
utf8_sequence(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;               /* continuation octet, C0/C1, F5..FF */
	if (s[0] == 0xe0)
		lo = 0xa0;              /* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f;              /* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;              /* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f;              /* above U+10FFFF */
	if (len < need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* Controls are never allowed, not even quoted (quoted-pairSMTP is %d92
 * %d32-126); 8-bit octets only as well-formed UTF-8 when the flag says so. */
static enum address_result
scan_octets(const char *s, size_t len, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return ADDRESS_BAD_CHAR;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (!(flags & ADDRESS_ALLOW_UTF8))
			return ADDRESS_NEEDS_UTF8;
		if ((n = utf8_sequence(u + i, len - i)) == 0)
			return ADDRESS_BAD_CHAR;
		i += n;
	}
	return ADDRESS_OK;
}

/* --- local part ----------------------------------------------------------- */

/* Quoted-string starting at s[0] == '"'; *end is set past the closing quote. */
static enum address_result
parse_quoted(const char *s, size_t len, size_t *end)
{
	size_t i;

	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"') {
			*end = i + 1;
			return ADDRESS_OK;
		}
		if (c == '\\') {
			if (++i == len || (unsigned char)s[i] < 32 ||
			    (unsigned char)s[i] > 126)
				return ADDRESS_BAD_LOCAL;
		} else if (!is_qtext(c))
			return ADDRESS_BAD_LOCAL;
	}
	return ADDRESS_BAD_LOCAL;       /* no closing quote */
}

/* Dot-string: atoms of atext joined by single dots.  Stops at '@' or the
 * end; *end is where it stopped. */
static enum address_result
parse_dot_string(const char *s, size_t len, size_t *end)
{
	size_t i, atom = 0;

	for (i = 0; i < len && s[i] != '@'; i++) {
		if (s[i] == '.') {
			if (atom == 0)
				return ADDRESS_BAD_LOCAL;
			atom = 0;
		} else if (is_atext((unsigned char)s[i]))
			atom++;
		else
			return s[i] == ' ' ? ADDRESS_BAD_CHAR : ADDRESS_BAD_LOCAL;
	}
	if (atom == 0)                  /* empty, or ends with a dot */
		return ADDRESS_BAD_LOCAL;
	*end = i;
	return ADDRESS_OK;
}

/* --- domain --------------------------------------------------------------- */

/* sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. */
static enum address_result
check_name(const char *s, size_t len)
{
	size_t i, start = 0;
	bool ascii = true;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];

			if (c == ' ')
				return ADDRESS_BAD_CHAR;
			if (!is_let_dig(c) && c != '-')
				return ADDRESS_BAD_DOMAIN;
			if (c >= 0x80)
				ascii = false;
			continue;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return ADDRESS_BAD_DOMAIN;
		/* A U-label's A-label length is unknown here; the DNS will tell. */
		if (ascii && i - start > LABEL_MAX)
			return ADDRESS_BAD_DOMAIN;
		start = i + 1;
		ascii = true;
	}
	return ADDRESS_OK;
}

/* IPv4-address-literal: Snum 3("." Snum), Snum = 1*3DIGIT, 0..255. */
static bool
is_ipv4(const char *s, size_t len)
{
	size_t i = 0, part;

	for (part = 0; part < 4; part++) {
		unsigned value = 0;
		size_t digits = 0;

		if (part > 0 && (i == len || s[i++] != '.'))
			return false;
		while (i < len && is_digit((unsigned char)s[i]) && digits < 3) {
			value = value * 10 + (unsigned)(s[i++] - '0');
			digits++;
		}
		if (digits == 0 || value > SNUM_MAX)
			return false;
	}
	return i == len;
}

/* IPv6-addr of RFC 5321 §4.1.3: eight 16-bit groups, or six and an IPv4
 * address; "::" stands for at least two groups (IPv6-comp allows at most 6
 * written, IPv6v4-comp at most 4 and the IPv4 address). */
static bool
is_ipv6(const char *s, size_t len)
{
	size_t i = 0, j, groups = 0;
	bool compressed = false, v4 = false;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = true;
		i = 2;
	}
	while (i < len) {
		for (j = i; j < len && is_xdigit((unsigned char)s[j]); j++)
			;
		if (j < len && s[j] == '.') {
			if (!is_ipv4(s + i, len - i))
				return false;
			v4 = true;
			break;
		}
		if (j == i || j - i > 4)
			return false;
		groups++;
		if ((i = j) == len)
			break;
		if (s[i++] != ':' || i == len)
			return false;   /* not a separator, or a trailing ':' */
		if (s[i] == ':') {
			if (compressed)
				return false;
			compressed = true;
			i++;
		}
	}
	groups += v4 ? 2 : 0;
	return compressed ? groups <= 6 : groups == 8;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]".  No general
 * address literal tag is registered, so those are refused. */
static enum address_result
check_literal(const char *s, size_t len)
{
	static const char tag[] = "IPv6:";
	const size_t tlen = sizeof tag - 1;

	if (len < 2 || s[len - 1] != ']')
		return ADDRESS_BAD_DOMAIN;
	s++;
	len -= 2;
	if (len > tlen && equal_nocase(s, tlen, tag))
		return is_ipv6(s + tlen, len - tlen) ? ADDRESS_OK : ADDRESS_BAD_DOMAIN;
	return is_ipv4(s, len) ? ADDRESS_OK : ADDRESS_BAD_DOMAIN;
}

/* Domain syntax and length; the octets have been scanned already. */
static enum address_result
domain_syntax(const char *s, size_t len)
{
	enum address_result r;

	if (len == 0)
		return ADDRESS_BAD_DOMAIN;
	r = s[0] == '[' ? check_literal(s, len) : check_name(s, len);
	if (r == ADDRESS_OK && len > ADDRESS_DOMAIN_MAX)
		r = ADDRESS_TOO_LONG;
	return r;
}

/* --- public --------------------------------------------------------------- */

enum address_result
address_check(const char *addr, size_t len, unsigned flags)
{
	enum address_result r;
	size_t end = 0;

	if (len == 0)
		return ADDRESS_EMPTY;
	if ((r = scan_octets(addr, len, flags)) != ADDRESS_OK)
		return r;
	if (len > ADDRESS_MAX)
		return ADDRESS_TOO_LONG;
	r = addr[0] == '"' ? parse_quoted(addr, len, &end)
	    : parse_dot_string(addr, len, &end);
	if (r != ADDRESS_OK)
		return r;
	if (end > ADDRESS_LOCAL_MAX)
		return ADDRESS_TOO_LONG;
	if (end == len) {
		/* RFC 5321 §4.5.1: "postmaster" is matched without regard to case. */
		if ((flags & ADDRESS_ALLOW_POSTMASTER) &&
		    equal_nocase(addr, len, "postmaster"))
			return ADDRESS_OK;
		return ADDRESS_NO_DOMAIN;
	}
	if (addr[end] != '@')           /* something after a quoted-string */
		return addr[end] == ' ' ? ADDRESS_BAD_CHAR : ADDRESS_BAD_LOCAL;
	return domain_syntax(addr + end + 1, len - end - 1);
}

enum address_result
address_check_domain(const char *domain, size_t len, unsigned flags)
{
	enum address_result r;

	if (len == 0)
		return ADDRESS_EMPTY;
	if ((r = scan_octets(domain, len, flags)) != ADDRESS_OK)
		return r;
	return domain_syntax(domain, len);
}

const char *
address_result_text(enum address_result r)
{
	static const char *const text[] = {
		[ADDRESS_OK]         = "the address is valid",
		[ADDRESS_EMPTY]      = "the address is empty",
		[ADDRESS_TOO_LONG]   = "the address is too long",
		[ADDRESS_NO_DOMAIN]  = "the address has no domain",
		[ADDRESS_BAD_LOCAL]  = "the local part is not valid",
		[ADDRESS_BAD_DOMAIN] = "the domain is not valid",
		[ADDRESS_NEEDS_UTF8] = "the address is not ASCII (needs SMTPUTF8)",
		[ADDRESS_BAD_CHAR]   = "the address contains a character not allowed there",
	};

	if ((unsigned)r >= sizeof text / sizeof text[0])
		return "unknown address check result";
	return text[r];
}

const char *
address_result_name(enum address_result r)
{
	static const char *const names[] = {
		[ADDRESS_OK]         = "ADDRESS_OK",
		[ADDRESS_EMPTY]      = "ADDRESS_EMPTY",
		[ADDRESS_TOO_LONG]   = "ADDRESS_TOO_LONG",
		[ADDRESS_NO_DOMAIN]  = "ADDRESS_NO_DOMAIN",
		[ADDRESS_BAD_LOCAL]  = "ADDRESS_BAD_LOCAL",
		[ADDRESS_BAD_DOMAIN] = "ADDRESS_BAD_DOMAIN",
		[ADDRESS_NEEDS_UTF8] = "ADDRESS_NEEDS_UTF8",
		[ADDRESS_BAD_CHAR]   = "ADDRESS_BAD_CHAR",
	};

	if ((unsigned)r >= sizeof names / sizeof names[0])
		return "ADDRESS_?";
	return names[r];
}

const char *
address_domain(const char *addr)
{
	const char *at = NULL, *p;
	bool quoted = false;

	for (p = addr; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '@' && !quoted)
			at = p;
	}
	return at == NULL ? NULL : at + 1;
}
