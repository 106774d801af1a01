/* control.h - the daemon's control socket, SPOOL/control (a unix socket,
 * mode 0600: root and the daemon's user).  One request line, one reply line:
 *   "flush"   -> "done N"  once every queued message has been tried (N still queued)
 *   "rescan"  -> "ok"      the queue was changed by a queue command
 * `mailredir flush` and the queue commands use it when a daemon runs. */
#ifndef MAILREDIR_CONTROL_H
#define MAILREDIR_CONTROL_H

#include <stddef.h>

#include "err.h"

#define CONTROL_NAME "control"
#define CONTROL_LINE_MAX 128

/* Send a request and wait (up to timeout_s; 0 = no limit) for the reply line
 * (without its LF).  0 with the reply, 1 when no daemon listens, -1 error. */
int control_request(const char *spool_dir, const char *request, char *reply, size_t size,
    unsigned timeout_s, struct err *);

/* Best effort, quietly: tell a running daemon that the queue changed (a
 * message was queued behind its back), so that it is tried at once. */
void control_notify_rescan(const char *spool_dir);

#endif
