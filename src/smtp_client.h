/* smtp_client.h - SMTP toward a gateway, blocking (RFC 5321 client side,
 * RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8).  One session carries many
 * messages (RSET between).  What leaves is strict: CRLF line ends only,
 * dot-stuffed, never a bare CR or LF, the final "." sent with the end of the
 * body in one write.  Timeouts: route connect-timeout, reply-timeout. */
#ifndef MAILREDIR_SMTP_CLIENT_H
#define MAILREDIR_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netio.h"
#include "smtp_reply.h"
#include "tls.h"

enum delivery_status { DELIVERY_SENT, DELIVERY_DEFERRED, DELIVERY_FAILED };
enum delivery_step {
	STEP_CONNECT, STEP_GREETING, STEP_EHLO, STEP_STARTTLS, STEP_TLS, STEP_AUTH,
	STEP_MAIL, STEP_RCPT, STEP_DATA, STEP_END_OF_DATA,
	STEP_LOGIN                     /* login-before-smtp (login_gate.h), before all of them */
};
const char *delivery_status_name(enum delivery_status);  /* "sent", "deferred", "failed" */
const char *delivery_step_name(enum delivery_step);

/* What happened to a session or a message. */
struct smtp_outcome {
	enum delivery_status status;
	enum delivery_step step;
	bool route_level;              /* connect/TLS/auth/relay trouble: the route, not a
	                                * recipient, is at fault; never a bounce (§3) */
	char reply[512];               /* the gateway's reply, or our own words */
	bool relay_denied;             /* deferred because the gateway refused to relay
	                                * (MAIL, or every RCPT): the kludge it wants, such
	                                * as a login before SMTP, is not satisfied (yet) */
};

struct smtp_client_info {
	char relay[300];               /* netio_peer() */
	struct smtp_caps caps;         /* after the last EHLO */
	bool tls;
	struct tls_info tls_info;
	char auth_mech[32];            /* "" = none */
};

struct smtp_client;

/* Connect, greeting, EHLO (HELO when EHLO gets a 5xx), STARTTLS or implicit
 * TLS per route->tls (EHLO again after it; nothing from before is kept),
 * AUTH when the route has a user.  -1 with *outcome (deferred, route-level,
 * the step that failed) when the session could not be set up; *out is then
 * NULL.  Diagnoses in words, in bounded time:
 *   tls = tls and the server greets within 250 ms: "port N speaks plaintext
 *     SMTP ("220 ..."): set tls = starttls" (a slower plaintext server is
 *     named by the failed handshake);
 *   tls = starttls/none and no greeting within min(reply-timeout, 5 s): the
 *     connection is closed and a TLS handshake tried on a new one; success:
 *     "port N speaks TLS at once: set tls = tls"; else a third connection
 *     waits for the greeting until reply-timeout from the start;
 *   tls = starttls without STARTTLS offered: deferred, nothing more sent but
 *     QUIT (no credentials are even loaded);
 *   a user but no AUTH offered: "the gateway offers no AUTH but the route has
 *     user = X".  Credentials are loaded right before AUTH and wiped right
 *     after; the trace shows AUTH lines masked ("AUTH PLAIN ********").
 * trace (NULL: none) gets the dialogue, "C: ..." and "S: ...", and netio's
 * connection and TLS lines; it must outlive the session.  *info (may be
 * NULL) gets what the session learnt (relay, TLS, capabilities), also when
 * it failed: the log line and probe name the gateway either way. */
int smtp_client_open(const struct config *, const struct route *, const struct netio_trace *,
    struct smtp_client **, struct smtp_outcome *, struct smtp_client_info *info);
const struct smtp_client_info *smtp_client_info(const struct smtp_client *);

struct smtp_message {
	const char *envelope_from;     /* "" = <> */
	const char *const *rcpts;
	size_t nrcpts;
	int content_fd;                /* the stored content (CRLF), read from offset 0 */
	uint64_t size;                 /* octets that will be sent (SIZE=) */
	/* A rewritten header (identity.h): when head is not NULL, head[0..head_len)
	 * goes first and the content from body_offset after it. */
	const char *head;
	size_t head_len;
	uint64_t body_offset;
	bool eight_bit;                /* BODY=8BITMIME needed */
	bool smtputf8;                 /* SMTPUTF8 needed */
	/* DSN (RFC 3461), passed on only when the gateway offers DSN; NULL =
	 * not given.  ret "FULL"/"HDRS", envid xtext; per recipient (the arrays
	 * may be NULL) notify "NEVER" or e.g. "SUCCESS,FAILURE", orcpt
	 * "rfc822;xtext". */
	const char *ret;
	const char *envid;
	const char *const *notify;
	const char *const *orcpt;
};

/* Send one message; rcpt[i] gets each recipient's outcome.  *msg says what
 * happened to the message as a whole (e.g. failed: too big for the gateway's
 * SIZE, or needs 8BITMIME/SMTPUTF8 the gateway lacks — never mangled).
 * Returns 0 when the session may carry another message, -1 when it is
 * unusable (every recipient not yet answered is then deferred); then only
 * smtp_client_close it.
 *
 * Checks before MAIL (failed, nothing sent, session kept): SIZE, 8BITMIME,
 * SMTPUTF8, an envelope sender with control characters.  A recipient with
 * control characters is failed and never sent.  MAIL carries SIZE=n when the
 * gateway announced SIZE, BODY=8BITMIME / SMTPUTF8 when the message needs
 * them.  With PIPELINING, [RSET,] MAIL, every RCPT and DATA go in one write.
 * Each recipient: 2xx accepted (then the end-of-data reply decides), 4xx
 * deferred, 5xx failed; 530/534/535/538 deferred route-level; every one
 * refused as relay-denied (smtp_reply_means_relay_denied): all deferred
 * route-level.  A refused MAIL speaks for every recipient (relay/auth
 * wording: deferred route-level).  After the final ".": 2xx sent, 4xx
 * deferred, 5xx failed; no reply (timeout, drop, garbage) deferred with
 * "connection lost after end of data: the message may have been delivered
 * (possible duplicate); <why>" and -1.  *msg is deferred while any
 * recipient is, else failed if any failed, else sent, and carries the
 * outcome of the first recipient with that status.  nrcpts 0: *msg failed
 * ("no recipients"), nothing sent.  Every transaction after the first on a
 * session starts with RSET. */
int smtp_client_send(struct smtp_client *, const struct smtp_message *,
    struct smtp_outcome *rcpt, struct smtp_outcome *msg);

/* QUIT (reply awaited at most 5 s; skipped once the session broke) and
 * free.  NULL ok. */
void smtp_client_close(struct smtp_client *);

#endif
