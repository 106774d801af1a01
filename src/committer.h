/* committer.h - group commit: makes received messages durable off the event
 * loop (ARCHITECTURE.md, "Durability without losing speed").
 *
 * The loop hands over finished messages; one thread commits every message
 * that arrived meanwhile as one batch (spool_commit_batch: their fsyncs share
 * a journal commit) and reports back on the loop's thread, where the session
 * sends its 250.  The same thread imports the maildrop about once a second,
 * so the loop never waits for a disk. */
#ifndef MAILREDIR_COMMITTER_H
#define MAILREDIR_COMMITTER_H

#include <stdbool.h>
#include <event2/event.h>

#include "err.h"
#include "spool.h"

struct committer;

/* Runs on the event loop's thread once the message is durable (ok) or not. */
typedef void (*committer_done_fn)(void *arg, bool ok, const char *why);

/* on_import (may be NULL) runs on the loop's thread after maildrop files
 * were imported into queue/ (the scheduler then looks at the queue). */
int committer_new(struct event_base *, struct spool *, void (*on_import)(void *), void *arg,
    struct committer **, struct err *);
/* The committer owns msg from here: it frees it (aborting it on failure). */
void committer_submit(struct committer *, struct spool_new *msg, committer_done_fn, void *arg);
/* Commit what is pending, run its callbacks, stop the thread, free. */
void committer_free(struct committer *);

#endif
