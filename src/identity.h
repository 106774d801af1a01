/* identity.h - the From:/Reply-To: identity of forwarded mail
 * (mailredir.conf.5: header-from, from-map).
 *
 * Pure: no I/O, no logging; allocates its results.  Message content is
 * untrusted (any sender); the from-map file is configuration written by hand.
 * Fuzz target: tests/fuzz/fuzz_identity.c. */
#ifndef MAILREDIR_IDENTITY_H
#define MAILREDIR_IDENTITY_H

#include <stddef.h>

#include "err.h"

/* A header (its empty line included) longer than this is not rewritten. */
#define IDENTITY_HEADER_MAX (1024 * 1024)
/* A from-map file larger than this is refused (it keeps line numbers small). */
#define IDENTITY_MAP_MAX (64 * 1024 * 1024)

enum identity_mode {
	IDENTITY_REWRITE,     /* header-from = rewrite: the old From: goes to Reply-To: */
	IDENTITY_MAP,         /* from-map: an existing Reply-To: is replaced too */
};

/* "rewrite", "map" */
const char *identity_mode_name(enum identity_mode);

/* What identity_rewrite_header changed, for the caller's log line. */
enum identity_change {
	IDENTITY_FROM_REPLACED     = 1 << 0,
	IDENTITY_FROM_ADDED        = 1 << 1,   /* the message had no From: */
	IDENTITY_REPLY_TO_ADDED    = 1 << 2,   /* IDENTITY_REWRITE */
	IDENTITY_REPLY_TO_REPLACED = 1 << 3,   /* IDENTITY_MAP */
};

struct identity_header {
	char *head;           /* the new header with the empty line that ends it,
	                       * CRLF line ends; NUL-terminated; caller frees */
	size_t head_len;
	size_t body_offset;   /* the original body starts at content + body_offset */
	unsigned changes;     /* enum identity_change bits */
};

/* Give the header of content[0..len) (a stored message: CRLF line ends; bare
 * LF is taken as a line end too) the identity `address` (local@domain, ASCII).
 * content is the whole message or at least its first IDENTITY_HEADER_MAX + 1
 * octets: in a shorter prefix a header cut by the read would look like a
 * message without a body, and the cut line like its last field.
 * Returns 1 with *out filled when the header changes: send out->head, then
 * content + out->body_offset.  Returns 0 when nothing changes (*out is
 * zeroed): the only From: field holds exactly `address` (local part compared
 * exactly, domain without regard to case) and, for IDENTITY_MAP, there is no
 * Reply-To: or it holds exactly `address` too.
 *
 * The new header: every field but From: and Reply-To: is copied octet for
 * octet and in order, folding kept (bare LF line ends become CRLF).
 *   From: the first From: field becomes "From: NAME <address>", where NAME is
 *     the display name of its first mailbox as written (encoded words and
 *     quoted strings untouched, folding whitespace collapsed to one space),
 *     or, without one, the old-style comment name ("bob@x (Bob Smith)") as a
 *     phrase (quoted when it is not all atoms); "From: <address>" without a
 *     name, or when the value does not parse, or when the name holds control
 *     characters or a word too long for a line.  Further From: fields are
 *     dropped.  A message without From: gets one after the Return-Path: and
 *     Received: fields at the top of its header (the trace block).
 *   IDENTITY_REWRITE, no Reply-To: in the message, and the From: value
 *     parses and is not just `address`: "Reply-To:" with the From: value,
 *     unfolded and folded again (just the first mailbox if a word of it is
 *     too long for a line), after the new From:.  Reply-To: fields present
 *     stay as they are.
 *   IDENTITY_MAP: the first Reply-To: becomes "Reply-To: <address>", further
 *     ones are dropped; none is added.
 * New fields are folded to RFC5322_LINE_SOFT octets a line where the words
 * allow it.  The header ends at its empty line, before a line that is not a
 * field (the new header then gets the empty line; the body starts at that
 * line), or at the end of the content (no body: body_offset = len).
 * Errors (-1, *out zeroed), checked before deciding whether anything
 * changes: `address` is not a valid ASCII address; the header does not end
 * within IDENTITY_HEADER_MAX octets (content may be longer: only the header
 * is read); a header line longer than RFC5322_LINE_MAX or with a bare CR
 * (neither is ever stored: the SMTP server and sendmail refuse them). */
int identity_rewrite_header(const char *content, size_t len, enum identity_mode,
    const char *address, struct identity_header *out, struct err *);
void identity_header_free(struct identity_header *);   /* the fields, not the struct */

/* A parsed from-map file. */
struct identity_map;

/* Parse a from-map: lines of "RECIPIENT FROM-ADDRESS" separated by blanks
 * (SP, HTAB), LF or CRLF line ends; blank lines and comments (from a '#' at
 * the start of a field to the end of the line) are ignored.  RECIPIENT is an
 * address (UTF-8 allowed), "@domain" (every recipient at that domain) or "*"
 * (the default); FROM-ADDRESS is an ASCII address (address_check).  Each
 * RECIPIENT once (domains compared without regard to case).  On -1, err
 * holds one line per bad line, in order, as "FILE:LINE: what is wrong" (as
 * many as fit, then "FILE: N more errors not shown") and *out is NULL.
 * text need not be NUL-terminated; file_name is only used in messages. */
int identity_map_parse(const char *text, size_t len, const char *file_name,
    struct identity_map **out, struct err *);

/* The FROM-ADDRESS for a message to rcpts[0..nrcpts): with one recipient its
 * own entry (local part exact, domain without regard to case), else its
 * "@domain" entry, else "*"; with several (or none) the "*" entry.  NULL
 * when nothing applies.  *line (if line is not NULL) is set to the map line
 * of the entry, 0 with NULL.  The result lives as long as the map. */
const char *identity_map_lookup(const struct identity_map *, const char *const *rcpts,
    size_t nrcpts, int *line);

/* Number of entries ("*" included). */
size_t identity_map_count(const struct identity_map *);

void identity_map_free(struct identity_map *);

#endif
