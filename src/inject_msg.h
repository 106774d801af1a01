/* inject_msg.h - turn a locally submitted message (sendmail(1) input) into
 * what goes into the spool: CRLF line ends, the headers a message must have
 * (Date, Message-ID, From) added when missing, Bcc: removed, and with -t the
 * recipients taken from To/Cc/Bcc.  Pure: no I/O; allocates its results.
 * Input is untrusted (any local user).  Fuzz target: tests/fuzz/fuzz_inject_msg.c. */
#ifndef MAILREDIR_INJECT_MSG_H
#define MAILREDIR_INJECT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

/* RFC 5322 §2.1.1: at most 998 octets on a line, CRLF excluded. */
#define INJECT_LINE_MAX 998

struct inject_opts {
	bool recipients_from_headers;  /* -t */
	bool dot_ends_input;           /* default true; false with -i / -oi: a line
	                                * with a single '.' then is just text */
	const char *sender;            /* envelope sender; "" = <> */
	const char *full_name;         /* -F, or NULL (then the passwd gecos, or none) */
	const char *hostname;          /* right side of a generated Message-ID */
	const char *queue_id;          /* left side of a generated Message-ID */
	time_t now;                    /* for a generated Date: */
	size_t max_recipients;         /* -t: more distinct addresses is an error; 0 = no limit */
};

struct inject_msg {
	char *content;                 /* CRLF line ends */
	size_t len;
	char **rcpts;                  /* -t: addresses from To/Cc/Bcc, in order, no duplicates */
	size_t nrcpts;
	bool eight_bit;                /* an octet >= 0x80 somewhere: BODY=8BITMIME */
};

/* Line ends: LF and CRLF both end a line; a CR not followed by LF also ends
 * one (old Mac files; never stored as a bare CR).  A last line without a line
 * end gets CRLF.  An mbox "From " line as the very first line is dropped.
 * Errors (exit 65 for the caller): a NUL octet, a line longer than
 * INJECT_LINE_MAX octets, a To/Cc/Bcc address list that does not parse with
 * -t, more than max_recipients addresses.
 *
 * The header ends at the first empty line, or before the first line that is
 * not a field (then an empty line is inserted before it: that line starts
 * the body).  Bcc: and Resent-Bcc: fields are removed with their
 * continuation lines.  Missing fields are added at the top, in this order:
 *   From: "full_name" <sender>    (or just <sender>; quoted when needed,
 *                                  RFC 2047 encoded when 8-bit; sender
 *                                  without '@' gets "@hostname"; the null
 *                                  sender gives MAILER-DAEMON@hostname)
 *   Date: RFC 5322 local time of `now`
 *   Message-ID: <queue_id@hostname>
 * A message without any field (body only, or empty) gets the added fields,
 * then an empty line.  -t: duplicates are compared case-insensitively.
 * On -1, *out is empty (nothing to free) and err says what and which line. */
int inject_msg_prepare(const char *input, size_t len, const struct inject_opts *,
    struct inject_msg *out, struct err *);
void inject_msg_free(struct inject_msg *);   /* frees the fields, not the struct */

#endif
