/* smtp_reply.h - SMTP replies as a client reads them (RFC 5321 §4.2,
 * RFC 2034/3463 enhanced codes, RFC 1869 EHLO keywords).
 *
 * Pure: no I/O, allocation, logging or clock; fixed-size results.  Input is
 * untrusted (the gateway).  Fuzz target: tests/fuzz/fuzz_smtp_reply.c. */
#ifndef MAILREDIR_SMTP_REPLY_H
#define MAILREDIR_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_TEXT_MAX 2048   /* longer text is cut (at a UTF-8 boundary) */
#define SMTP_REPLY_LINES_MAX 100   /* more lines: the reply is bad */
#define SMTP_AUTH_MECHS_MAX 512

struct smtp_reply {
	int code;                      /* 200..599; 0 while empty */
	char enhanced[16];             /* "5.7.1" from the first line, or "" */
	char text[SMTP_REPLY_TEXT_MAX];/* the lines' texts (codes removed) joined by '\n' */
	size_t nlines;
	bool bad;                      /* not a valid reply: a temporary failure */
};

enum smtp_reply_add {
	SMTP_REPLY_MORE,               /* a "250-" line: read the next one */
	SMTP_REPLY_DONE,               /* the last line ("250 " or "250") */
	SMTP_REPLY_BAD,                /* malformed, code changed mid-reply, code outside
	                                * 2xx-5xx, too many lines: reply->bad set */
};

void smtp_reply_init(struct smtp_reply *);
/* Add one line (without its line end). */
enum smtp_reply_add smtp_reply_add_line(struct smtp_reply *, const char *line, size_t len);

/* One line for logs and the queue: "550 5.1.1 text text" (newlines become
 * spaces, control characters '?').  Returns buf. */
char *smtp_reply_summary(const struct smtp_reply *, char *buf, size_t size);

/* What an EHLO reply offers. */
struct smtp_caps {
	bool pipelining, starttls, eightbitmime, smtputf8, dsn, enhancedstatuscodes, chunking;
	bool has_size;
	uint64_t size;                 /* 0 with has_size = no limit announced */
	char auth[SMTP_AUTH_MECHS_MAX];/* mechanisms, upper case, space separated ("" = no AUTH) */
};
void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *);

/* Does the reply speak of relaying or access being denied (5.7.1, "relay",
 * "access denied", 554 to RCPT...)?  For the route-level rules of §3. */
bool smtp_reply_means_relay_denied(const struct smtp_reply *);

#endif
