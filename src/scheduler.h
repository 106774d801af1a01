/* scheduler.h - the daemon's side of delivery (ARCHITECTURE.md, delivery
 * workers): an index of queued messages and when each is due, and worker
 * processes (`mailredir deliver ID...`, the same code as `flush`) that
 * deliver batches of them, up to max-deliveries at once.  Workers read the
 * spool, never the daemon's memory, and report one line per message
 * (deliver.h); a worker that dies leaves its messages queued.
 *
 * New mail is tried at once; deferred mail when its next-try comes; a flush
 * (through the control socket) makes everything due now. */
#ifndef MAILREDIR_SCHEDULER_H
#define MAILREDIR_SCHEDULER_H

#include <stdbool.h>
#include <event2/event.h>

#include "config.h"
#include "deliver.h"
#include "err.h"
#include "spool.h"

struct scheduler;

/* config_path (absolute) and the current executable are what workers are
 * started with; with `syslog` they log there (else to the inherited stderr).
 * The index is loaded from the spool here (blocking: start-up only). */
int scheduler_new(struct event_base *, struct spool *, const char *config_path, bool syslog,
    const struct config *, struct scheduler **, struct err *);
/* After a reload: max-deliveries may have changed. */
void scheduler_set_config(struct scheduler *, const struct config *);
/* A message was just queued: try it now. */
void scheduler_add(struct scheduler *, const char *id);
/* Proxy mode: deliver this just-committed message now (before messages
 * merely due); fn(arg, line) is called once with the worker's report
 * (deliver.h), or RESULT_QUEUE when it could not be tried (no route, no
 * worker, the worker died, shutdown).  The answer may come during this
 * call.  Call it before the message's scheduler_add (the committer runs
 * the commit's callback before its queued hook), so that no worker takes
 * it as merely due. */
typedef void scheduler_proxy_fn(void *arg, const struct deliver_line *);
void scheduler_proxy(struct scheduler *, const char *id, scheduler_proxy_fn *, void *arg);

/* Re-read the spool (queue commands changed it) and deliver what is due. */
void scheduler_rescan(struct scheduler *);
/* Make every queued message due now; `done` runs when each has been tried,
 * with the number of messages still queued. */
void scheduler_flush(struct scheduler *, void (*done)(void *arg, unsigned left), void *arg);
/* Shutting down: start no more workers; terminate running ones (their
 * messages stay queued).  scheduler_busy says when all are gone. */
void scheduler_stop(struct scheduler *);
bool scheduler_busy(const struct scheduler *);
/* SIGCHLD: reap workers. */
void scheduler_reap(struct scheduler *);
void scheduler_free(struct scheduler *);

#endif
