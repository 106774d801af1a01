/* deliver.h - sending queued messages through their route: the one place
 * that decides what a delivery attempt means for a message (sent, deferred
 * with back-off, failed and kept) and that writes the delivery log line
 * (PRODUCT.md §3, §9).  `flush` runs it in the foreground; the daemon's
 * workers run the same code. */
#ifndef MAILREDIR_DELIVER_H
#define MAILREDIR_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "netio.h"
#include "spool.h"

/* Where a message stands after a run, one line per message from a worker
 * process to the daemon: "ID queue NEXT_TRY" (still queued, next attempt at
 * unix time NEXT_TRY), "ID failed 0", "ID done 0" (all sent, removed), "ID
 * busy 0" (another process held it), "ID gone 0" (no longer there).  A
 * report (bounce) the run queued is announced as "NEWID queue 0". */
enum deliver_result { RESULT_QUEUE, RESULT_FAILED, RESULT_DONE, RESULT_BUSY, RESULT_GONE };

/* How a run treats its messages: due ones only (back-off counts), all of
 * them now (a flush), or now with a client waiting for the verdict (proxy
 * mode, `serve --proxy`: a message that fails for every recipient gets no
 * bounce, as the client hears the refusal itself). */
enum deliver_mode { DELIVER_DUE, DELIVER_FORCE, DELIVER_PROXY, DELIVER_MODE_COUNT };
const char *deliver_mode_name(enum deliver_mode);   /* "due", "force", "proxy" */

struct deliver_line {
	char id[ENVELOPE_ID_MAX + 1];
	enum deliver_result result;
	int64_t next_try;
};

/* Format into buf (DELIVER_LINE_MAX) with the '\n'; parse one line without
 * it (pure; the daemon reads these from its workers): 0 / -1. */
#define DELIVER_LINE_MAX 80
void deliver_line_format(const struct deliver_line *, char *buf, size_t size);
int deliver_line_parse(const char *line, size_t len, struct deliver_line *);

struct deliver_stats {
	unsigned messages;       /* attempted */
	unsigned sent;           /* recipients */
	unsigned deferred;
	unsigned failed;
	unsigned busy;           /* messages another process held */
	/* Called once per message considered (may be NULL). */
	void (*report)(void *ctx, const struct deliver_line *);
	void *report_ctx;
};

/* Deliver messages: the given IDs, or (ids == NULL) every message in queue/
 * that is due — all of them when `force` (flush ignores back-off).  With
 * `only` (flush ROUTE), only recipients that route takes are tried; the
 * rest of a message is left as it is.  Messages of one route share one
 * session.  The counters in *stats are reset; its
 * report callback (set by the caller) hears about each message.  0, or -1
 * when the spool could not be read (err). */
int deliver_run(const struct config *, struct spool *, const char *const *ids, size_t nids,
    bool force, const struct route *only, struct deliver_stats *, const struct netio_trace *,
    struct err *);

/* The same with the route's gateway session kept between runs (a
 * worker's life): deliver_session_run tries the given IDs like deliver_run,
 * and leaves the session open for the next run; a kept session that the
 * gateway has closed meanwhile (or answers 421 on) costs no attempt: the
 * message goes on a new one.  deliver_session_quit closes it (QUIT) and keeps
 * the object usable; deliver_session_free quits too.  cfg, spool and trace
 * must outlive the session. */
struct deliver_session;
struct deliver_session *deliver_session_new(const struct config *, struct spool *,
    const struct netio_trace *);
void deliver_session_run(struct deliver_session *, const char *const *ids, size_t nids,
    enum deliver_mode, struct deliver_stats *);
bool deliver_session_connected(const struct deliver_session *);
void deliver_session_quit(struct deliver_session *);
void deliver_session_free(struct deliver_session *);

/* Proxy mode: the client's reply to DATA from a worker's report on its
 * message and (for RESULT_QUEUE/RESULT_FAILED) the envelope it left (NULL
 * when unreadable).  Every recipient sent: 250.  Some sent: 250 too (the
 * relay has taken the rest; failures get a bounce).  None sent, one still
 * open: the reply that keeps it queued, as a 4xx ("451 4.4.1 ..." for
 * our own words, such as a timeout); the message stays queued and is
 * retried.  Every one failed: the gateway's 5xx (the message is kept in
 * failed/, without a bounce).  A single reply line without CRLF, printable
 * ASCII only.  Pure. */
void deliver_proxy_verdict(const struct deliver_line *, const struct envelope *,
    char *buf, size_t size);

/* Back-off after the n-th failed attempt (n >= 1): the n-th `retry` step,
 * then `retry-max` for every later one.  Pure. */
uint64_t deliver_retry_delay_ms(const struct retry_policy *, unsigned attempts);

/* The envelope sender the gateway sees: route envelope-from, else the
 * route's user when it is an address, else the message's own sender.  A
 * report (null sender) keeps <>, unless the route has bounce-from. */
const char *deliver_envelope_from(const struct route *, const char *original);

#endif
