/* envelope.h - the envelope file: one message's sender, recipients and
 * delivery state, as plain "key value" lines (mailredir.8, SPOOL).
 *
 *   version 1
 *   id 0196A3F2C4E51A2B3C
 *   created 1795489200            (unix seconds)
 *   sender alice@lan.example      ("<>" for the null sender)
 *   origin smtp                   (smtp | sendmail)
 *   client-addr 127.0.0.1         (smtp: the peer; sendmail: "local")
 *   client-name localhost
 *   helo client.lan.example
 *   uid 1000                      (sendmail: the invoking user's uid; smtp: -1)
 *   size 1234                     (octets of the content file)
 *   body 8bitmime                 (7bit | 8bitmime)
 *   smtputf8 no                   (yes | no)
 *   attempts 0
 *   next-try 0                    (unix seconds; 0 = as soon as possible)
 *   last-try 0
 *   last-reply 451 4.3.0 ...      (optional; the latest reply or error text)
 *   ret hdrs                      (optional, RFC 3461 RET: full | hdrs)
 *   envid QQ+2B1234               (optional, RFC 3461 ENVID: xtext as received)
 *   route isp                     (optional: the route the message must take,
 *                                 e.g. a bounce going back the way it came;
 *                                 one word of [A-Za-z0-9._-])
 *   delay-warned yes              (yes | no: a delay DSN has been sent;
 *                                 written only when yes)
 *   rcpt bob@example.net          (one block per recipient, in order:)
 *   rcpt-status pending           (pending | sent | deferred | failed)
 *   rcpt-route isp                (optional: the route it took or will take)
 *   rcpt-reply 250 2.0.0 Ok       (optional: the gateway's last reply for it)
 *   rcpt-notify failure,delay     (optional, RFC 3461 NOTIFY: never, or a
 *                                 comma list of success, failure, delay;
 *                                 lower case; formatted in that order)
 *   rcpt-orcpt rfc822;bob@example.net  (optional, RFC 3461 ORCPT:
 *                                 addr-type;xtext as received)
 *   content-sha256 9f86d0...      (optional, 64 lower-case hex digits: SHA-256
 *                                 of the content file; when present it is the
 *                                 last line, so a cut-short file lacks it)
 *
 * rcpt-* lines apply to the nearest preceding `rcpt`.  A value is the rest of
 * the line after one space; values never contain CR, LF, NUL or any other
 * control character (the formatter replaces them with '?') and are at most
 * ENVELOPE_VALUE_MAX octets.  Every line ends with LF; empty lines are errors.
 * Unknown keys, a missing required key (version, id, created, sender, at least
 * one rcpt), a duplicate single key (or rcpt-* key within one recipient), a
 * bad number (decimal, no sign or leading zero; uid may be -1), a bad address
 * (address_check; UTF-8 only with smtputf8 yes; sender "<>" is the null
 * sender, a recipient may be "postmaster") or more than ENVELOPE_RCPTS_MAX
 * recipients are errors: the file is input.  So are values that break the
 * rules of the DSN keys: xtext as smtp_parse accepts it (envid at most
 * DSN_ENVID_MAX octets, rcpt-orcpt at most DSN_ORCPT_MAX), "never" with
 * another notify keyword.  Optional keys not present take envelope_init's
 * values; envelopes written before the DSN keys existed read as "not
 * given" for each.
 *
 * Pure: no I/O.  envelope_parse allocates the strings it returns. */
#ifndef MAILREDIR_ENVELOPE_H
#define MAILREDIR_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dsn.h"
#include "err.h"

#define ENVELOPE_VERSION    1
#define ENVELOPE_ID_MAX     32        /* an id is 1..32 upper-case hex digits */
#define ENVELOPE_VALUE_MAX  4096      /* octets in one value */
#define ENVELOPE_RCPTS_MAX  100000    /* recipients in one envelope */
#define ENVELOPE_SHA256_HEX 64

enum rcpt_status { RCPT_PENDING, RCPT_SENT, RCPT_DEFERRED, RCPT_FAILED };
enum envelope_origin { ORIGIN_SMTP, ORIGIN_SENDMAIL };
enum envelope_body { BODY_7BIT, BODY_8BITMIME };

struct envelope_rcpt {
	char *address;
	enum rcpt_status status;
	char *route;                   /* NULL = not routed yet */
	char *reply;                   /* NULL = none yet */
	unsigned notify;               /* DSN_NOTIFY_* bits; 0 = not given */
	char *orcpt;                   /* "addr-type;xtext"; NULL = not given */
};

struct envelope {
	char id[ENVELOPE_ID_MAX + 1];
	int64_t created;
	char *sender;                  /* "" = the null sender <> */
	enum envelope_origin origin;
	char *client_addr;             /* NULL when unknown */
	char *client_name;
	char *helo;
	long uid;                      /* -1 when not from sendmail */
	uint64_t size;
	enum envelope_body body;
	bool smtputf8;
	unsigned attempts;
	int64_t next_try;
	int64_t last_try;
	char *last_reply;
	enum dsn_ret ret;              /* DSN_RET_NONE = not given */
	char *envid;                   /* xtext; NULL = not given */
	char *route;                   /* the route it must take; NULL = any */
	bool delay_warned;
	struct envelope_rcpt *rcpts;
	size_t nrcpts;
	size_t rcpts_cap;              /* for envelope_add_rcpt */
	char content_sha256[ENVELOPE_SHA256_HEX + 1];   /* "" = not recorded */
};

/* Zero-initialise (uid = -1, created = 0, ...).  Call before filling by hand. */
void envelope_init(struct envelope *);

/* Free every string and the recipient array; leaves an initialised envelope. */
void envelope_clear(struct envelope *);

/* Append a recipient (status pending, no route, reply, notify or orcpt);
 * copies address. */
struct envelope_rcpt *envelope_add_rcpt(struct envelope *, const char *address);

/* Parse buf[0..len) (need not be NUL-terminated) into *env (initialised by
 * this call).  On -1, err says which line and why, and *env is cleared. */
int envelope_parse(const char *buf, size_t len, struct envelope *env, struct err *err);

/* Format into a new NUL-terminated string (caller frees); *len set if non-NULL.
 * Keys are written in the order shown above; optional strings only when not
 * NULL, ret and rcpt-notify only when given; a DSN value the parser would
 * refuse (bad xtext or route name) is left out.  Control characters in any
 * value become '?' and a value longer than
 * ENVELOPE_VALUE_MAX is cut (at a UTF-8 boundary), so the result always
 * parses when the addresses are valid: for such an envelope
 * envelope_parse(envelope_format(e)) gives back e exactly. */
char *envelope_format(const struct envelope *, size_t *len);

/* "pending", "sent", ...; and the reverse (-1 when unknown). */
const char *rcpt_status_name(enum rcpt_status);
int rcpt_status_parse(const char *);

/* What `queue` shows: "queued" (no attempt yet), "deferred" (attempted, some
 * recipient still pending/deferred).  Held and failed come from the spool
 * directory, not the envelope. */
const char *envelope_queue_state(const struct envelope *);

#endif
