/* dsn.h - delivery status notifications: the vocabulary of the SMTP DSN
 * extension (RFC 3461: NOTIFY, RET, ENVID, ORCPT and their xtext) and the
 * notification message itself (RFC 3464 message/delivery-status inside an
 * RFC 6522 multipart/report; RFC 3463 status codes; RFC 6533 for UTF-8
 * addresses).  mailredir.8, DELIVERY STATUS NOTIFICATIONS.
 *
 * Pure: no I/O, logging, clock or globals; times are passed in.  dsn_format
 * allocates its result; everything else works in the caller's buffers.
 * Input is untrusted: SMTP parameters (through smtp_parse), envelope files,
 * gateway replies and the stored message.
 * Fuzz target: tests/fuzz/fuzz_dsn.c. */
#ifndef MAILREDIR_DSN_H
#define MAILREDIR_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSN_ENVID_MAX 100       /* RFC 3461 §4.4: octets of ENVID as sent (xtext) */
#define DSN_ORCPT_MAX 500       /* RFC 3461 §4.2: octets of "addr-type;xtext" */
#define DSN_NOTIFY_TEXT_MAX 32  /* "success,failure,delay" and its NUL */
#define DSN_STATUS_MAX 16       /* "5.123.456" and its NUL */

/* NOTIFY (RFC 3461 §4.1) as a bit set.  0 = the parameter was not given,
 * which is not the same as NEVER (see dsn_wanted). */
#define DSN_NOTIFY_NEVER   (1u << 0)
#define DSN_NOTIFY_SUCCESS (1u << 1)
#define DSN_NOTIFY_FAILURE (1u << 2)
#define DSN_NOTIFY_DELAY   (1u << 3)

/* RET (RFC 3461 §4.3). */
enum dsn_ret { DSN_RET_NONE, DSN_RET_FULL, DSN_RET_HDRS };

/* What happened to one recipient: RFC 3464 §2.3.3 Action. */
enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED };

/* --- RFC 3461 parameters -------------------------------------------------- */

/* Is s[0..len) xtext (RFC 3461 §4): octets 33..126 other than '+' and '=',
 * and "+" with two UPPER-case hex digits, whose decoded octet must be
 * printable ASCII (32..126; §4.2 and §4.4 allow nothing else, and a decoded
 * CR or LF would end up in a DSN header).  The empty string is xtext:
 * callers decide whether a value may be empty. */
bool dsn_xtext_check(const char *s, size_t len);

/* Decode xtext s[0..len) into out (NUL-terminated).  Returns the decoded
 * length, or -1 when s is not xtext (dsn_xtext_check) or out is too small
 * (size must exceed the decoded length; len + 1 always suffices). */
int dsn_xtext_decode(const char *s, size_t len, char *out, size_t size);

/* Is s[0..len) an ORCPT value: "addr-type;xtext" with addr-type an atom
 * (RFC 5322 atext, e.g. rfc822 or utf-8), a non-empty xtext, at most
 * DSN_ORCPT_MAX octets in all.  The address is not checked against its
 * type: RFC 3461 §4.2 says it need not conform. */
bool dsn_orcpt_check(const char *s, size_t len);

/* NOTIFY value s[0..len): "NEVER", or a comma list of SUCCESS, FAILURE and
 * DELAY (at least one; repeats allowed; no spaces).  Keywords are
 * case-insensitive.  0 and *bits set, or -1 (*bits untouched). */
int dsn_notify_parse(const char *s, size_t len, unsigned *bits);

/* Bits back to text: "never", or the given ones of "success,failure,delay"
 * in that order, lower case ("" for 0).  size >= DSN_NOTIFY_TEXT_MAX.
 * (SMTP keywords are case-insensitive; upcase it for the wire if you like.)
 * Returns buf. */
char *dsn_notify_format(unsigned bits, char *buf, size_t size);

/* --- which notification, with which status ---------------------------------- */

/* "failed", "delayed", "delivered", "relayed": the Action: values. */
const char *dsn_action_name(enum dsn_action);

/* Does this recipient's sender want a notification of `action` (RFC 3461
 * §4.1, §5.2)?  Never for the null sender (sender NULL or "": a bounce
 * must not bounce) or NOTIFY=NEVER.  notify 0 (not given) means
 * FAILURE,DELAY.  SUCCESS covers both delivered and relayed. */
bool dsn_wanted(const char *sender, unsigned notify, enum dsn_action);

/* The Status: value (RFC 3463) for a recipient, into buf (size >=
 * DSN_STATUS_MAX): the enhanced code of `reply` ("550 5.1.1 <x>: no such
 * user" -> "5.1.1"), else one from its basic code ("550 no" -> "5.0.0"),
 * else from the action (failed 5.0.0, delayed 4.0.0, delivered and
 * relayed 2.0.0).  The class must fit the action: delivered and relayed
 * take only 2, delayed only 4 (a 5.x.y reply on a delayed recipient, such
 * as a refused login, becomes 4.x.y), failed 5 or 4 (4: given up after
 * temporary failures, RFC 3463 §3.1); a code that does not fit gives the
 * action's default.  reply may be NULL.  Returns buf. */
char *dsn_status_of(const char *reply, enum dsn_action, char *buf, size_t size);

/* --- the notification message ----------------------------------------------- */

struct dsn_rcpt {
	const char *address;        /* the envelope recipient (Final-Recipient) */
	const char *orcpt;          /* ORCPT as stored ("rfc822;bob+2Bx@..."), or NULL */
	enum dsn_action action;
	const char *reply;          /* the gateway's reply ("550 5.1.1 ...": it
	                             * becomes the Diagnostic-Code), or our own
	                             * words ("connection refused"), or NULL */
	const char *remote_mta;     /* the gateway's host name, or NULL */
	int64_t last_attempt;       /* unix seconds; 0 = no attempt made */
};

struct dsn_report {
	const char *reporting_mta;  /* our hostname: Reporting-MTA, From:, Message-ID */
	const char *queue_id;       /* the original message's id */
	const char *to;             /* who gets the DSN: the original sender, or
	                             * the bounce = ADDRESS */
	const char *envid;          /* ENVID as stored (xtext), or NULL */
	enum dsn_ret ret;
	size_t return_max;          /* return the whole message only up to this
	                             * many octets (0: no limit); past it, headers */
	int64_t arrival;            /* unix seconds: when we accepted the message */
	int64_t now;                /* Date:, Message-ID, boundary */
	int64_t will_retry_until;   /* for delayed recipients: when we give up */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;              /* >= 1: only those the notification is about */
};

/* Build the complete notification for the stored message original[0..len)
 * (as in the spool: our Received: line first, CRLF line ends): a new
 * NUL-terminated RFC 5322 message, caller frees; *out_len its length.
 *
 *   From: Mail Delivery System <MAILER-DAEMON@reporting_mta>
 *   To: <to>, Subject: (by the gravest action: failed, else delayed, else
 *   delivered/relayed), Date: (now, local time), Message-ID:
 *   <queue_id.now.kind@reporting_mta>, Auto-Submitted: auto-replied,
 *   MIME-Version, Content-Type: multipart/report;
 *   report-type=delivery-status; boundary (one that occurs in no part).
 *   1. text/plain: for people, one paragraph per action, what the gateway
 *      said, what happens next.
 *   2. message/delivery-status: always 7-bit; a UTF-8 recipient is written
 *      "utf-8; " + its RFC 6533 utf-8-addr-xtext.  Original-Envelope-Id and
 *      Original-Recipient carry the xtext-decoded values.
 *   3. the whole message (message/rfc822) when some recipient failed, RET
 *      is not HDRS and len <= return_max; else its header section only
 *      (text/rfc822-headers).  8-bit header fields (an SMTPUTF8 message)
 *      make these message/global and message/global-headers (RFC 6532).
 *
 * Every line ends in CRLF and has at most 998 octets: long fields are
 * folded (a word longer than a line is split, which adds a space), and a
 * line of the original longer than 998 octets (the relay never stores one)
 * is cut in the returned copy, which the text then says; bare CR, bare LF
 * and NUL in the original become CRLF, CRLF and '?'.  Replies are shown as
 * printable ASCII ('?' for anything else).
 *
 * *eight_bit: the result holds octets >= 0x80 (from the original, or a
 * UTF-8 address): send it with BODY=8BITMIME.  It needs SMTPUTF8 exactly
 * when `to` is not ASCII. */
char *dsn_format(const struct dsn_report *, const char *original, size_t len,
    size_t *out_len, bool *eight_bit);

#endif
