/* inject_msg.h - turn a locally submitted message (sendmail(1) input) into
 * what goes into the spool: CRLF line ends, the headers a message must have
 * (Date, Message-ID, From) added when missing, Bcc: removed, and with -t the
 * recipients taken from To/Cc/Bcc.  Pure: no I/O; allocates its results. */
#ifndef MAILREDIR_INJECT_MSG_H
#define MAILREDIR_INJECT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

struct inject_opts {
	bool recipients_from_headers;  /* -t */
	bool dot_ends_input;           /* default true; false with -i / -oi: a line
	                                * with a single '.' then is just text */
	const char *sender;            /* envelope sender; "" = <> */
	const char *full_name;         /* -F, or NULL (then the passwd gecos, or none) */
	const char *hostname;          /* right side of a generated Message-ID */
	const char *queue_id;          /* left side of a generated Message-ID */
	time_t now;                    /* for a generated Date: */
};

struct inject_msg {
	char *content;                 /* CRLF line ends */
	size_t len;
	char **rcpts;                  /* -t: addresses from To/Cc/Bcc, in order, no duplicates */
	size_t nrcpts;
	bool eight_bit;                /* an octet >= 0x80 somewhere: BODY=8BITMIME */
};

/* Line ends: LF and CRLF both end a line; a CR not followed by LF also ends
 * one (old Mac files; never stored as a bare CR).  Errors (exit 65 for the
 * caller): a NUL octet, a line longer than 998 octets, a header address list
 * that does not parse with -t.  Message-ID is "<queue_id@hostname>"; Date is
 * RFC 5322 local time; From is "full_name <sender>" (or just <sender>). */
int inject_msg_prepare(const char *input, size_t len, const struct inject_opts *,
    struct inject_msg *out, struct err *);
void inject_msg_free(struct inject_msg *);   /* frees the fields, not the struct */

#endif
