/* login.h - POP-before-SMTP and IMAP-before-SMTP (PRODUCT.md §3;
 * mailredir.conf.5: login-before-smtp and the login-* keys): a login to the
 * route's POP3 or IMAP server, which the ISP's poprelayd notices and then
 * lets this address relay for a while.
 *
 * POP3 (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH): pop3s:// is
 * TLS from the start; pop3:// upgrades with STLS when offered (required
 * unless login-tls = none).  Then the strongest of SASL AUTH (the ranking of
 * auth_client.h) > APOP > USER/PASS; PASS (like PLAIN and LOGIN) never on a
 * cleartext connection unless allow-plaintext-auth.  Then STAT (the "simple
 * handshake" some poprelayds wait for) and QUIT.
 * IMAP (RFC 3501/9051): imaps:// or STARTTLS the same way, AUTHENTICATE with
 * the same ranking, else LOGIN (same cleartext rule, and never when the
 * server says LOGINDISABLED), then LOGOUT.
 * TLS is verified exactly as for SMTP (tls-verify, tls-ca-file,
 * tls-fingerprint), against the login server's host name.
 *
 * The replies are parsed by login_parse.h.  Credentials: login-user and
 * login-password-file / login-password-command, else the route's user and
 * password source; loaded right before use and wiped after; the trace shows
 * secrets as ********. */
#ifndef MAILREDIR_LOGIN_H
#define MAILREDIR_LOGIN_H

#include <stdbool.h>

#include "config.h"
#include "netio.h"
#include "tls.h"

struct login_result {
	char server[300];              /* netio_peer(), "" before a connection */
	const char *protocol;          /* "POP3", "IMAP" */
	bool tls;
	struct tls_info tls_info;
	char mech[32];                 /* "SCRAM-SHA-256", "APOP", "USER", "LOGIN"; "" = none */
	char reply[512];               /* on failure: the server's words or ours */
};

/* Log in to route->login and out again.  0 when the server accepted the
 * credentials (and STAT/LOGOUT went through), -1 with *res saying why:
 * the server's reply text when it refused, our words otherwise.  Bounded
 * by the route's connect-timeout and reply-timeout. */
int login_run(const struct route *, const struct netio_trace *, struct login_result *);

/* "pop3", "pop3s", "imap", "imaps". */
const char *login_proto_name(enum login_proto);

#endif
