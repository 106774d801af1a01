/* auth_client.h - SASL as a client: credentials, the choice of mechanism,
 * and one driver for every protocol that carries SASL (SMTP AUTH now; POP3
 * AUTH and IMAP AUTHENTICATE later), given as a descriptor of callbacks.
 * libgsasl does the standard mechanisms; XOAUTH2 and OAUTHBEARER are ours.
 *
 * SECURITY: credentials are never logged, traced or put in an error text;
 * they are wiped (OPENSSL_cleanse) when no longer needed.  What the server
 * sends is untrusted. */
#ifndef MAILREDIR_AUTH_CLIENT_H
#define MAILREDIR_AUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "netio.h"
#include "tls.h"

#define AUTH_SECRET_MAX 4096

struct auth_credentials {
	char user[512];
	char password[AUTH_SECRET_MAX];     /* "" when the route has none */
	char oauth_token[AUTH_SECRET_MAX];  /* "" without oauth-token-command */
};

#define AUTH_COMMAND_TIMEOUT_MS 10000

/* From the route: password-file (refused when its mode has any group/other
 * bit: "password-file F is readable by others; chmod 600 it"; its first
 * line, trailing CR/LF trimmed), password-command or
 * oauth-token-command (run with /bin/sh -c each time, stdin /dev/null,
 * stderr inherited, in its own process group, killed after
 * AUTH_COMMAND_TIMEOUT_MS; the first line of its output, trimmed; a non-zero
 * exit is an error that quotes no output), or password.  0 / -1 (*out then
 * wiped).  Wipe with auth_credentials_wipe when done. */
int auth_credentials_load(const struct route *, struct auth_credentials *, struct err *);
void auth_credentials_wipe(struct auth_credentials *);

/* The mechanisms to try, best first: those the server offers (`offered`,
 * upper case, space separated), in the route's `auth` order or, for auto,
 * SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 GSSAPI
 * DIGEST-MD5 CRAM-MD5 PLAIN LOGIN (OAUTHBEARER and XOAUTH2 first when a
 * token is set); skipping what this build's libgsasl lacks at run time, the
 * -PLUS ones without channel binding, PLAIN/LOGIN on a cleartext connection
 * unless allow-plaintext-auth, and those the credentials cannot serve.
 * Each skip and the reason go to the trace (those not offered in one line),
 * then the list chosen.  Returns how many were put in out[] (static
 * strings). */
size_t auth_client_choose(const struct route *, const struct auth_credentials *,
    const char *offered, bool encrypted, bool channel_binding, const char **out,
    size_t max, const struct netio_trace *);

/* The mechanisms this build can use at all (libgsasl's at run time plus
 * ours), in the order of auto, space separated, into buf. */
void auth_client_supported(char *buf, size_t size);

/* The final answer of a server to an authentication exchange. */
struct auth_reply {
	int code;                      /* 235, 535, 334... (SMTP); protocol-specific */
	char text[512];                /* one line, for logs and the queue */
};

enum auth_step { AUTH_STEP_CHALLENGE, AUTH_STEP_OK, AUTH_STEP_REFUSED, AUTH_STEP_TEMPFAIL };

/* How a protocol carries SASL. */
struct auth_proto {
	void *ctx;
	const char *service;           /* GSS-API / DIGEST-MD5 service name: "smtp", "pop", "imap" */
	const char *hostname;          /* the gateway's host name (digest-uri, GSS-API principal) */
	const char *peer;              /* who it is in our own words: "the POP3 server";
	                                * NULL: "the gateway" */
	bool initial_response;         /* may send the first response with the command */
	size_t initial_max;            /* longest initial response (base64 octets) the command
	                                * may carry, 0 = no limit; a longer one is sent after
	                                * the server's first, empty challenge (RFC 4954 §4) */
	/* Send the command that starts mechanism `mech`, with the base64 initial
	 * response (may be NULL; "=" stands for an empty one). */
	int (*start)(void *ctx, const char *mech, const char *initial_b64, struct err *);
	/* Send one base64 response line ("*" cancels). */
	int (*respond)(void *ctx, const char *b64, struct err *);
	/* Read the server's next step: a challenge (base64 into b64), success,
	 * a refusal of this mechanism or of these credentials (try the next),
	 * or a temporary failure (stop).  -1 on I/O error. */
	int (*next)(void *ctx, char *b64, size_t size, enum auth_step *, struct auth_reply *,
	    struct err *);
};

struct auth_result {
	char mech[32];                 /* the one that succeeded, or the last tried ("" = none) */
	struct auth_reply reply;       /* the server's last word; code 0: our own words (no
	                                * usable mechanism, or the gateway failed to prove
	                                * that it knows the password) */
	char tried[256];               /* "SCRAM-SHA-256 (535 5.7.8) PLAIN (235)" for the log */
};

/* Authenticate: each chosen mechanism in turn; a refusal falls back to the
 * next.  0 authenticated, 1 every mechanism refused or none usable (result
 * says which and why), 2 temporary failure or a gateway that failed mutual
 * authentication (a wrong SCRAM server signature, a success before it was
 * proven: stop, send no mail, try no weaker mechanism), -1 I/O error (err).
 * `tls` (NULL on a cleartext connection) gives the channel binding for the
 * -PLUS mechanisms: tls-exporter, else tls-unique.  One libgsasl context per
 * call.  The proto's callbacks see the responses (secrets among them): the
 * protocol must mask them in its own trace. */
int auth_client_run(const struct route *, const struct auth_credentials *, const char *offered,
    struct tls_conn *tls, const struct auth_proto *, struct auth_result *,
    const struct netio_trace *, struct err *);

#endif
