/* smtp_server.h - the SMTP server session (RFC 5321 server side), apart from
 * how bytes move: the daemon drives it from bufferevents (daemon.c), and
 * `sendmail -bs` from stdin/stdout (smtp_server_stdio).
 *
 * The session consumes complete lines from an input evbuffer, writes replies
 * to an output evbuffer, and stores a message through its driver's
 * smtp_store callbacks; the driver makes it durable (now or later) and then
 * calls smtp_session_committed().  Input is untrusted. */
#ifndef MAILREDIR_SMTP_SERVER_H
#define MAILREDIR_SMTP_SERVER_H

#include <stdbool.h>
#include <event2/buffer.h>

#include "config.h"
#include "envelope.h"
#include "netaddr.h"
#include "spool.h"

struct smtp_session;

/* Who is on the other side; copied by smtp_session_new. */
struct smtp_peer {
	char addr[NETADDR_TEXT_MAX];   /* "127.0.0.1"; "local" for -bs */
	char name[256];                /* "localhost", "unknown", or "uid 1000" */
	bool local;                    /* sendmail -bs */
	long uid;                      /* -1 unless local */
};

/* How a message gets into the spool.  Every call gets `ctx`. */
struct smtp_store {
	void *ctx;
	/* Start a message: fill id (ENVELOPE_ID_MAX + 1 bytes). */
	int (*begin)(void *ctx, char *id, struct err *);
	/* Append content (our Received: line first, then the unstuffed lines). */
	int (*write)(void *ctx, const void *buf, size_t len, struct err *);
	/* Drop the message begun (rejected, or the session ended inside DATA). */
	void (*abort)(void *ctx);
	/* Store and make durable; env->id/size are set by the callee.  When done
	 * (maybe later, from the event loop) call smtp_session_committed. */
	void (*commit)(void *ctx, struct envelope *env);
};

enum smtp_session_status {
	SMTP_SESSION_READ,     /* wants more input */
	SMTP_SESSION_WAIT,     /* a commit is in progress, or output must drain first */
	SMTP_SESSION_CLOSE,    /* close once the output is written */
};

/* cfg and store must outlive the session.  out receives every reply. */
struct smtp_session *smtp_session_new(const struct config *, const struct smtp_peer *,
    const struct smtp_store *, struct evbuffer *out);
void smtp_session_free(struct smtp_session *);   /* aborts a message in progress */

void smtp_session_greet(struct smtp_session *);  /* the 220 banner */
/* Consume as many complete lines from `in` as possible (pipelining). */
enum smtp_session_status smtp_session_input(struct smtp_session *, struct evbuffer *in);
/* The driver's answer to store->commit: ok ("250 ... queued as ID"), or
 * the reason it failed (451). */
void smtp_session_committed(struct smtp_session *, bool ok, const char *why);
/* The same with the reply to DATA chosen by the driver: proxy mode passes
 * the gateway's verdict on (a valid reply line, without CRLF).  verdict
 * NULL: the message could not be stored, why says why (451). */
void smtp_session_answer(struct smtp_session *, const char *verdict, const char *why);
/* Inactivity: 421 and close. */
void smtp_session_timeout(struct smtp_session *);
/* Shutting down: a session with no transaction gets 421 now (returns true:
 * close it); one inside a transaction is let finish (returns false), and
 * gets 421 after its next reply. */
bool smtp_session_shutdown(struct smtp_session *);
/* Inside DATA (the driver applies data-timeout instead of command-timeout)? */
bool smtp_session_in_data(const struct smtp_session *);
/* Waiting for smtp_session_committed? */
bool smtp_session_committing(const struct smtp_session *);

/* `sendmail -bs`: one SMTP session on in_fd/out_fd for a local user, spooling
 * directly (or via the maildrop when the spool is not writable).  Returns a
 * sysexits code (0 when the session ended with QUIT or EOF). */
int smtp_server_stdio(const struct config *, struct spool *, int in_fd, int out_fd);

#endif
