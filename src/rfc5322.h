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
#define RFC5322_LINE_SOFT 78     /* §2.1.1: a line SHOULD be at most 78 octets, */
#define RFC5322_LINE_MAX 998     /* and MUST be at most 998 (CRLF excluded) */

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

/* One mailbox of an address list, as rfc5322_parse_mailboxes finds it.
 * `name` and `comment` point into the caller's value. */
struct rfc5322_mailbox {
	const char *addr;     size_t addr_len;     /* the addr-spec, as for
	                                            * rfc5322_parse_addresses */
	const char *name;     size_t name_len;     /* the display name as written:
	                                            * its first word to its last, with
	                                            * quotes, encoded words, comments
	                                            * and folding between them; NULL
	                                            * when there is none */
	const char *comment;  size_t comment_len;  /* no display name: the first
	                                            * comment after the mailbox, inside
	                                            * its parentheses ("a@b (Bob)" ->
	                                            * "Bob", so comment[-1] is '(' and
	                                            * comment[comment_len] is ')');
	                                            * NULL otherwise */
	bool in_group;                             /* inside "name: ... ;" */
};

/* rfc5322_parse_addresses (same grammar, same results) with the display name
 * and the old-style comment name ("bob@x.example (Bob Smith)") of each
 * mailbox.  `mb` and its `addr` are valid only during the call. */
int rfc5322_parse_mailboxes(const char *value, size_t len,
    int (*found)(void *ctx, const struct rfc5322_mailbox *mb), void *ctx);

/* Unfold a field value (§2.2.3): remove each CRLF or LF that stands before
 * WSP.  With RFC5322_COLLAPSE also turn each run of WSP outside quoted
 * strings into one SP and drop WSP at both ends, which does not change the
 * meaning of a structured field (an address list, a phrase).  out has room
 * for len octets and may be value itself; not NUL-terminated.  Returns the
 * length of the result. */
enum { RFC5322_COLLAPSE = 1 << 0 };
size_t rfc5322_unfold(const char *value, size_t len, char *out, unsigned flags);

/* Write the field "name: value" CRLF into out (name: a field name such as
 * "Reply-To", not checked), folded (§2.2.3) so that each
 * line stays within RFC5322_LINE_SOFT octets where the value allows it: a
 * fold goes before a run of WSP outside quoted strings, so it never splits a
 * token, a quoted string or an encoded word; a token too long for one line
 * gets a line of its own.  `value` is unfolded (no CR, no LF); WSP at its ends
 * is dropped.  Like snprintf: returns the length of the whole field (CRLF
 * included), which was written and NUL-terminated if it is below size (out
 * may be NULL when size is 0).  Returns 0 when it cannot be written: the
 * value holds a CR or LF, or a token that does not fit in RFC5322_LINE_MAX
 * octets. */
size_t rfc5322_fold(const char *name, const char *value, size_t len, char *out,
    size_t size);

#endif
