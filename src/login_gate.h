/* login_gate.h - the login a route with login-before-smtp needs before its
 * SMTP session, as delivery uses it (PRODUCT.md §3): skipped while the last
 * successful one is younger than login-valid, then login-delay or the
 * delay learnt before (whichever is longer) passes before SMTP.  What is
 * learnt is kept per route in SPOOL/login-state (login_state.h). */
#ifndef MAILREDIR_LOGIN_GATE_H
#define MAILREDIR_LOGIN_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "netio.h"
#include "smtp_client.h"

#define LOGIN_GATE_DELAY_CAP_MS 60000   /* the adaptive wait doubles up to this */

/* Log in for route r (when it needs to) and wait.  again: the adaptive
 * retry's new login: login-valid is ignored and wait_ms is the wait.
 * *login_at gets the monotonic time (now_ms) the login ended (or 0 when
 * login-valid skipped it).  0, or -1 with *o: deferred, route-level, with
 * the login server's words ("login-before-smtp pop3s://HOST:PORT failed: ..."). */
int login_gate_pass(const struct config *, const struct route *r, const struct netio_trace *,
    bool again, uint64_t wait_ms, struct smtp_outcome *o, uint64_t *login_at);

/* The gateway relayed delay_ms after the login: remember it for r. */
void login_gate_learn(const struct config *, const struct route *r, uint64_t delay_ms);

#endif
