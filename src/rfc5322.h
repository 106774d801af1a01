/* rfc5322.h - Internet message header fields (RFC 5322 §2.2, §3.4, §3.6).
 *
 * Pure: no I/O, no allocation; results point into the caller's buffer.
 * Input is untrusted (locally submitted and relayed messages).  Lines may end
 * in CRLF or a bare LF (locally submitted mail usually has LF).
 * Fuzz target: tests/fuzz/fuzz_rfc5322.c. */
#ifndef MAILREDIR_RFC5322_H
#define MAILREDIR_RFC5322_H

#include <stdbool.h>
#include <stddef.h>

#define RFC5322_ADDR_MAX 512     /* longest addr-spec handed to a callback */

/* One header field, as found. */
struct rfc5322_field {
	const char *name;     size_t name_len;    /* "Subject" */
	const char *value;    size_t value_len;   /* after ':' up to the last line end,
	                                           * folding included, line end excluded */
	const char *raw;      size_t raw_len;     /* the whole field with every line end */
};

struct rfc5322_iter {
	const char *buf;
	size_t len;
	size_t pos;
	size_t body_offset;   /* valid after END / NOT_FIELD: first octet of the body */
	int done;             /* 0, or the result that ended the header: it is
	                       * returned again by every later call */
};

enum rfc5322_next_result {
	RFC5322_FIELD,        /* *field filled */
	RFC5322_END,          /* an empty line ended the header; body_offset set */
	RFC5322_EOF,          /* the input ended inside the header (no body;
	                       * body_offset = len) */
	RFC5322_NOT_FIELD,    /* a line that is neither a field nor a continuation:
	                       * the header ends before it (body_offset = its start) */
};

/* A field is a name of printable ASCII other than ':' (obs-optional: WSP
 * may stand before the ':'), then continuation lines that start with SP or
 * HTAB.  A line without such a name (an mbox "From " line, a line starting
 * with WSP before any field, 8-bit octets in the name) is NOT_FIELD.  A bare
 * CR is an ordinary octet here (inject_msg turns it into a line end first). */
void rfc5322_iter_init(struct rfc5322_iter *, const char *msg, size_t len);
enum rfc5322_next_result rfc5322_next(struct rfc5322_iter *, struct rfc5322_field *);

/* Case-insensitive field name comparison. */
bool rfc5322_field_is(const struct rfc5322_field *, const char *name);

/* Call `found` for every addr-spec (local@domain, CFWS removed, quoted local
 * part kept as written) in an address-list value (RFC 5322 §3.4): display
 * names, angle addresses, comments, quoted strings, groups ("list: a@b, c@d;",
 * "undisclosed-recipients:;"), obs-route ("<@relay:a@b>"), empty list
 * elements and folded lines are handled.  A bare local part without '@'
 * ("To: root", obsolete local use) is reported as written: the caller
 * decides (e.g. address_check allows only "postmaster").  Octets >= 0x80 are
 * taken as atext (RFC 6532).  A group's missing final ';' is tolerated.
 * `addr` is NUL-terminated and valid only during the call.  `found` returns
 * 0 to go on, non-zero to stop (that value is returned).  Returns 0 when the
 * whole list parsed, -1 on a syntax error (unbalanced '<' or '>', unterminated
 * quote, comment or domain literal, a nested group, an addr-spec longer than
 * RFC5322_ADDR_MAX, ...); addresses found before it have been reported. */
int rfc5322_parse_addresses(const char *value, size_t len,
    int (*found)(void *ctx, const char *addr, size_t addr_len), void *ctx);

#endif
