/* committer.h - group commit: makes received messages durable off the event
 * loop (ARCHITECTURE.md, "Durability without losing speed").
 *
 * The loop hands over finished messages; one thread commits every message
 * that arrived meanwhile as one batch and reports back on the loop's
 * thread, where the session sends its 250 and the scheduler hears of the
 * message: through the spool's journal (one device flush), or when that
 * cannot take them with spool_commit_batch.  Between batches the same
 * thread retires the journal records no longer needed, and about once a
 * second imports the maildrop, so the loop never waits for a disk. */
#ifndef MAILREDIR_COMMITTER_H
#define MAILREDIR_COMMITTER_H

#include <stdbool.h>
#include <event2/event.h>

#include "err.h"
#include "spool.h"

struct committer;

/* Runs on the event loop's thread once the message is durable (ok) or not. */
typedef void (*committer_done_fn)(void *arg, bool ok, const char *why);

/* Run on the loop's thread (each may be NULL): queued, once a committed
 * message is in queue/; imported, after maildrop files were imported into
 * queue/ (the scheduler then looks at the queue). */
struct committer_hooks {
	void (*queued)(void *arg, const char *id);
	void (*imported)(void *arg);
};

/* hooks must outlive the committer. */
int committer_new(struct event_base *, struct spool *, const struct committer_hooks *,
    void *arg, struct committer **, struct err *);
/* The committer owns msg from here: it frees it (aborting it on failure). */
void committer_submit(struct committer *, struct spool_new *msg, committer_done_fn, void *arg);
/* Commit what is pending, queue what is journaled, run the callbacks, stop
 * the threads, free. */
void committer_free(struct committer *);

#endif
