/* json.c - JSON string escaping (RFC 8259 §7); see json.h.
 *
 * The UTF-8 check follows RFC 3629 §4 (the table of well-formed byte
 * sequences): the second byte's range depends on the first, which rules out
 * overlong forms, surrogates and values above U+10FFFF without decoding. */
#include <stdbool.h>
#include <string.h>

#include "json.h"

size_t
json_utf8_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (len == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4;
	else
		return 0;     /* continuation byte, C0/C1 (overlong), F5..FF */
	if (p[0] == 0xE0)
		lo = 0xA0;    /* below: overlong 3-byte form */
	else if (p[0] == 0xED)
		hi = 0x9F;    /* above: UTF-16 surrogates */
	else if (p[0] == 0xF0)
		lo = 0x90;    /* below: overlong 4-byte form */
	else if (p[0] == 0xF4)
		hi = 0x8F;    /* above: beyond U+10FFFF */
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* The output buffer: pieces are copied whole while they fit (keeping room
 * for the NUL), so a truncated result never ends inside an escape or a
 * UTF-8 sequence; `need` counts every piece. */
struct sink {
	char *out;
	size_t size, used, need;
	bool full;
};

static void
put(struct sink *k, const char *piece, size_t n)
{
	k->need += n;
	if (k->full || k->used + n >= k->size) {
		k->full = true;
		return;
	}
	memcpy(k->out + k->used, piece, n);
	k->used += n;
}

size_t
json_escape(const char *s, size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	struct sink k = { out, size, 0, 0, false };
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = json_utf8_len(s + i, len - i);
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF] };

		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(&k, esc, 2);
			n = 1;
		} else if (n == 0 || c < 0x20 || c == 0x7F) {
			put(&k, esc, sizeof esc);
			n = 1;
		} else {
			put(&k, s + i, n);
		}
		i += n;
	}
	if (size > 0)
		out[k.used] = '\0';
	return k.need;
}
