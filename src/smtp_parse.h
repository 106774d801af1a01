/* smtp_parse.h - the server-side SMTP command grammar (RFC 5321 §4.1,
 * RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8).
 *
 * Pure: bytes in, command or error out.  No I/O, allocation, logging, clock
 * or globals.  The input is untrusted.  The I/O side has already framed the
 * line: `line` is one command line WITHOUT its CRLF, `len` < SMTP_LINE_MAX;
 * the parser still rejects NUL, CR and LF inside it.
 *
 * Fuzz target: tests/fuzz/fuzz_smtp_parse.c. */
#ifndef MAILREDIR_SMTP_PARSE_H
#define MAILREDIR_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"

#define SMTP_LINE_MAX 1000   /* octets including CRLF, commands and text lines alike */
#define SMTP_PATH_MAX 256    /* RFC 5321 §4.5.3.1.3, including < > */

enum smtp_verb {
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP,
	SMTP_STARTTLS, SMTP_AUTH, SMTP_BDAT,
	SMTP_VERB_COUNT
};

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,        /* 500 5.5.1 unrecognised command */
	SMTP_PARSE_BAD_CHAR,       /* 500 5.5.2 NUL, CR or LF in the line */
	SMTP_PARSE_SYNTAX,         /* 501 5.5.4 wrong arguments for the verb */
	SMTP_PARSE_BAD_PATH,       /* 501 5.1.3 (RCPT) / 5.1.7 (MAIL) address syntax */
	SMTP_PARSE_PATH_TOO_LONG,  /* 501 5.1.3 path longer than 256 octets */
	SMTP_PARSE_NEEDS_UTF8,     /* 553 5.6.7 8-bit address without SMTPUTF8 */
	SMTP_PARSE_BAD_PARAM,      /* 555 5.5.4 unknown or malformed MAIL/RCPT parameter */
	SMTP_PARSE_RESULT_COUNT
};

/* One parsed command.  `arg` points into the caller's line and is valid as
 * long as that buffer is; everything else is copied into fixed arrays. */
struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;           /* text after the verb and one space, trailing
	                            * spaces stripped; NULL when absent.  For
	                            * HELO/EHLO: the domain; VRFY/EXPN/HELP/AUTH/BDAT:
	                            * the whole argument. */
	size_t arg_len;
	/* MAIL and RCPT only: */
	char path[SMTP_PATH_MAX + 1];  /* mailbox without <>; "" for MAIL FROM:<> */
	bool has_size;             /* MAIL SIZE=n given */
	uint64_t size;
	enum smtp_body body;       /* MAIL BODY= (7BIT default) */
	bool smtputf8;             /* MAIL SMTPUTF8 */
};

/* Parse one command line.  Verbs are case-insensitive; "MAIL FROM:" and
 * "RCPT TO:" allow no space after the colon and also tolerate one (common
 * clients send it).  A source route (<@a,@b:x@y>) is accepted and dropped
 * (RFC 5321 §4.1.2).  RCPT TO:<postmaster> is accepted.  On error *cmd is
 * partly filled (verb is set when the verb was recognised). */
enum smtp_parse_result smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd);

/* "MAIL", "RCPT", ... for logs; "SMTP_PARSE_SYNTAX"-like names for tests. */
const char *smtp_verb_name(enum smtp_verb);
const char *smtp_parse_result_name(enum smtp_parse_result);

/* The reply line (without CRLF) the server sends for a parse error, e.g.
 * "501 5.5.4 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]".
 * Uses cmd->verb to choose the usage text.  Static storage. */
const char *smtp_parse_error_reply(enum smtp_parse_result, const struct smtp_cmd *);

#endif
