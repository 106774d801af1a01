/* worker.h - the delivery worker process (`mailredir deliver --worker`,
 * internal; mailredir.8, DELIVERY): the daemon's scheduler writes batches to
 * its standard input, one line each,
 *     due ID...      try these when due (their back-off still counts)
 *     force ID...    try these now (a flush)
 *     proxy ID...    try these now, a client waits (deliver.h, DELIVER_PROXY)
 * and it answers one deliver line per message (deliver.h) on standard
 * output as each is settled.  It keeps the gateway session open between
 * batches and quits it after WORKER_SESSION_IDLE_MS without work; it exits
 * when its input ends (the daemon retires it, or is gone).  A worker that
 * dies leaves its messages queued. */
#ifndef MAILREDIR_WORKER_H
#define MAILREDIR_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "deliver.h"
#include "netio.h"
#include "spool.h"

#define WORKER_SESSION_IDLE_MS 5000
#define WORKER_BATCH_MAX       100      /* IDs in one batch line */
#define WORKER_LINE_MAX        (8 + WORKER_BATCH_MAX * (ENVELOPE_ID_MAX + 1) + 2)

/* A batch line (without its '\n'; line[len] must be writable), parsed in place: *mode, and ids[]
 * pointing into line (which gets NULs).  Pure.  0, or -1 when the line is
 * not a batch (unknown word, no ID, an invalid ID, too many). */
int worker_batch_parse(char *line, size_t len, enum deliver_mode *, char **ids, size_t *nids);

/* A deliver_stats report callback: the line on standard output, at once
 * (the daemon acts on each as it comes). */
void worker_report(void *ctx, const struct deliver_line *);

/* Serve batches from in_fd until it ends; results go to stdout.  0 at the
 * end of input, -1 when reading failed. */
int worker_main(const struct config *, struct spool *, const struct netio_trace *, int in_fd);

#endif
