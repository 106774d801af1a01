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
#define SMTP_AUTH_MECH_LEN_MAX 20  /* RFC 4422 §3.1: 1..20 of [A-Z0-9-_] */

struct smtp_reply {
	int code;                      /* 200..599; 0 while empty and when bad */
	char enhanced[16];             /* "5.7.1" from the first line, or "" */
	char text[SMTP_REPLY_TEXT_MAX];/* the lines' texts joined by '\n': the code,
	                                * and the first line's enhanced code where a
	                                * line repeats it, removed; NUL and LF inside a
	                                * line stored as '?'.  When bad: the offending
	                                * line as received (same substitutions). */
	size_t nlines;                 /* lines added */
	bool done;                     /* the last line was added */
	bool cut;                      /* text was cut at SMTP_REPLY_TEXT_MAX */
	bool bad;                      /* not a valid reply: a temporary failure */
	const char *why;               /* when bad: what was wrong (a static string) */
};

enum smtp_reply_add {
	SMTP_REPLY_MORE,               /* a "250-" line: read the next one */
	SMTP_REPLY_DONE,               /* the last line ("250 " or "250") */
	SMTP_REPLY_BAD,                /* malformed, code changed mid-reply, code outside
	                                * 2xx-5xx, too many lines, or a line after the
	                                * last one: reply->bad set (and stays set) */
};

void smtp_reply_init(struct smtp_reply *);
/* Add one line (without its line end; need not be NUL-terminated). */
enum smtp_reply_add smtp_reply_add_line(struct smtp_reply *, const char *line, size_t len);

/* One line for logs and the queue: "550 5.1.1 text text" (newlines become
 * spaces, control characters '?'); a bad reply gives "malformed reply (why):
 * line", an empty one "no reply".  Cut to fit (at a UTF-8 boundary), always
 * NUL-terminated when size > 0.  Returns buf. */
char *smtp_reply_summary(const struct smtp_reply *, char *buf, size_t size);

/* What an EHLO reply offers.  The first line (the greeting) is skipped;
 * keywords are matched without regard to case; unknown ones are ignored. */
struct smtp_caps {
	bool pipelining, starttls, eightbitmime, smtputf8, dsn, enhancedstatuscodes, chunking;
	bool has_size;
	uint64_t size;                 /* 0 with has_size = no limit announced (or unreadable) */
	char auth[SMTP_AUTH_MECHS_MAX];/* mechanisms, upper case, space separated, each once,
	                                * from "AUTH a b" and "AUTH=a b" lines ("" = no AUTH) */
};
/* A bad or non-2xx reply offers nothing (all false, ""). */
void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *);

/* Does the reply speak of relaying or access being denied (enhanced 5.7.1 or
 * 4.7.1, or text with "relay", "access denied", "not permitted"...)?  Only for
 * 4xx/5xx replies.  For the route-level rules of PRODUCT.md §3: the caller
 * decides what it means (every recipient refused so). */
bool smtp_reply_means_relay_denied(const struct smtp_reply *);

#endif
