/* login_state.h - what the routes' POP-/IMAP-before-SMTP logins have
 * learnt (PRODUCT.md §3: login-valid, the adaptive delay), kept in
 * SPOOL/login-state so that `flush` and the daemon's workers share it.
 *
 * One line per route: "ROUTE LAST_LOGIN DELAY_MS\n" -- the unix time of the
 * last successful login, and the delay after a login that the gateway
 * needed last time (0: none learnt).  The file is ours but is read as
 * input: a line that does not parse is skipped (and dropped at the next
 * save), never fatal.  Updates are read-modify-write under a lock
 * (SPOOL/login-state.lock), written to a temporary file and renamed; no
 * fsync: losing the file costs one more login, no mail. */
#ifndef MAILREDIR_LOGIN_STATE_H
#define MAILREDIR_LOGIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LOGIN_STATE_FILE   "login-state"
#define LOGIN_STATE_MAX    (64 * 1024)   /* a larger file is taken as empty */
#define LOGIN_STATE_NAME_MAX 64          /* CONFIG_ROUTE_NAME_MAX */
#define LOGIN_STATE_DELAY_MAX 600000     /* ms; a larger learnt delay is not believed */

struct login_memory {
	int64_t last_login;      /* unix seconds; 0 = none */
	uint64_t delay_ms;       /* learnt delay; 0 = none */
};

/* Pure.  The memory of `route` in text[0..len), or zeros when it has none. */
void login_state_find(const char *text, size_t len, const char *route, struct login_memory *);

/* Pure.  text[0..len) with route's line set to *m (added when missing, bad
 * lines dropped, the other routes' lines kept in order); caller frees. */
char *login_state_update(const char *text, size_t len, const char *route,
    const struct login_memory *m, size_t *out_len);

/* I/O: read route's memory from SPOOL/login-state (missing: zeros). */
int login_state_load(const char *spool_dir, const char *route, struct login_memory *,
    struct err *);
/* I/O: set route's memory, under the lock.  0 / -1. */
int login_state_save(const char *spool_dir, const char *route, const struct login_memory *,
    struct err *);

#endif
