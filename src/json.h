/* json.h - JSON string escaping (RFC 8259 §7) for machine-readable output:
 * `mailredir queue --json` (PRODUCT.md §9).
 *
 * Pure: no I/O, no allocation, no globals.  Input is untrusted (addresses,
 * HELO names and replies come from SMTP clients and gateways) and need not
 * be valid UTF-8; the output is always valid UTF-8 and a valid JSON string
 * body. */
#ifndef MAILREDIR_JSON_H
#define MAILREDIR_JSON_H

#include <stddef.h>

/* Escape s[0..len) (NULs included) as the inside of a JSON string, without
 * the surrounding quotes, into out[0..size): NUL-terminated whenever
 * size > 0, truncated like snprintf (never in the middle of an escape or of
 * a UTF-8 sequence).  out may be NULL when size is 0.  Returns the length
 * the whole result needs, without the NUL: call with size 0 to measure.
 *
 *   '"' and '\\'                     -> \" and \\
 *   U+0000..U+001F and U+007F (DEL)  -> \u00XX
 *   well-formed UTF-8 (RFC 3629)     -> copied as is
 *   any other byte                   -> \u00XX of the byte's value
 *
 * "Well-formed" excludes overlong forms, surrogates (U+D800..U+DFFF) and
 * code points above U+10FFFF; a sequence cut short escapes its first byte
 * and goes on with the next one. */
size_t json_escape(const char *s, size_t len, char *out, size_t size);

/* Length (1..4) of the well-formed UTF-8 sequence starting at s[0] within
 * s[0..len), or 0 when s[0] does not start one (or len is 0). */
size_t json_utf8_len(const char *s, size_t len);

#endif
