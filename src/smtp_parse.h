/* smtp_parse.h - the server-side SMTP command grammar (RFC 5321 §4.1,
 * RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN).
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
#include "dsn.h"

#define SMTP_LINE_MAX 1000   /* octets including CRLF, commands and text lines alike */
#define SMTP_PATH_MAX 256    /* RFC 5321 §4.5.3.1.3, including < > */

enum smtp_verb {
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP,
	SMTP_STARTTLS, SMTP_AUTH, SMTP_BDAT,
	SMTP_VERB_COUNT
};

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* The reply smtp_parse_error_reply gives is after each result. */
enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,        /* unrecognised verb, or verb not followed by
	                            * space or end ("MAILX"), empty line:
	                            * "500 5.5.1 Command unrecognized" */
	SMTP_PARSE_BAD_CHAR,       /* NUL, CR or LF anywhere in the line:
	                            * "500 5.5.2 NUL, CR or LF in command line" */
	SMTP_PARSE_SYNTAX,         /* wrong arguments for the verb: "501 5.5.4 Syntax:
	                            * " + usage, e.g. "RCPT TO:<address>",
	                            * "EHLO hostname", "DATA takes no argument" */
	SMTP_PARSE_BAD_PATH,       /* address syntax: "501 5.1.7 Bad sender address
	                            * syntax" (MAIL) / "501 5.1.3 Bad recipient
	                            * address syntax" (RCPT) */
	SMTP_PARSE_PATH_TOO_LONG,  /* path > 256 octets with <>, local part > 64,
	                            * mailbox > 254: "501 5.1.3 Path too long" */
	SMTP_PARSE_NEEDS_UTF8,     /* 8-bit octets in a MAIL path without SMTPUTF8:
	                            * "553 5.6.7 Non-ASCII address requires SMTPUTF8" */
	SMTP_PARSE_BAD_PARAM,      /* unknown, malformed or repeated parameter:
	                            * "555 5.5.4 Unsupported or malformed MAIL FROM
	                            * parameter" (RCPT: "... RCPT TO parameter") */
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
	enum dsn_ret ret;          /* MAIL RET= (DSN_RET_NONE: not given) */
	char envid[DSN_ENVID_MAX + 1];  /* MAIL ENVID=, xtext as received; "" = not given */
	/* RCPT only: */
	unsigned notify;           /* NOTIFY= as DSN_NOTIFY_* bits; 0 = not given */
	char orcpt[DSN_ORCPT_MAX + 1];  /* ORCPT=, "addr-type;xtext" as received; "" = not given */
};

/* Parse one command line.  Verbs are case-insensitive; "MAIL FROM:" and
 * "RCPT TO:" allow no space after the colon and also tolerate one (common
 * clients send it); the path must be in angle brackets.  A source route
 * (<@a,@b:x@y>) is accepted and dropped (RFC 5321 §4.1.2).
 * RCPT TO:<postmaster> is accepted.  Parameters are "KEYWORD[=value]"
 * separated by spaces, keywords case-insensitive, each at most once: MAIL
 * takes SIZE=digits (at most 20; beyond uint64_t it saturates),
 * BODY=7BIT|8BITMIME, SMTPUTF8, RET=FULL|HDRS and ENVID=xtext (at most
 * DSN_ENVID_MAX octets); RCPT takes NOTIFY=NEVER or a comma list of
 * SUCCESS, FAILURE, DELAY (dsn_notify_parse), and ORCPT=addr-type;xtext
 * (dsn_orcpt_check).  xtext must decode to printable ASCII (dsn_xtext_check).
 * ENVID and ORCPT are kept as received, still encoded.  HELO/EHLO arguments
 * are not checked beyond being present (whether to insist on a domain is
 * the session's policy).
 *
 * UTF-8: a MAIL path may hold 8-bit octets only with SMTPUTF8 on the same
 * line.  RCPT cannot see MAIL's SMTPUTF8, so its path is checked with
 * ADDRESS_ALLOW_UTF8 (well-formed UTF-8 passes) and the SESSION must refuse
 * a non-ASCII cmd->path when the transaction has no SMTPUTF8.
 *
 * The first failure wins, in this order: NUL/CR/LF, verb, the verb's
 * argument rule, for MAIL/RCPT "FROM:"/"TO:" and <> (SYNTAX), path length,
 * parameters, then the address.  On error *cmd is partly filled: verb is
 * set when the verb was recognised (else SMTP_VERB_COUNT). */
enum smtp_parse_result smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd);

/* "MAIL", "RCPT", ... for logs ("?" for SMTP_VERB_COUNT);
 * "SMTP_PARSE_SYNTAX"-like names for tests. */
const char *smtp_verb_name(enum smtp_verb);
const char *smtp_parse_result_name(enum smtp_parse_result);

/* The reply line (without CRLF) the server sends for a parse error, e.g.
 * "501 5.5.4 Syntax: RCPT TO:<address> [NOTIFY=...] [ORCPT=addr-type;xtext]".
 * Uses cmd->verb (cmd may be NULL) to choose the usage text.  Static
 * storage.  NULL for SMTP_PARSE_OK, which is no error. */
const char *smtp_parse_error_reply(enum smtp_parse_result, const struct smtp_cmd *);

#endif
