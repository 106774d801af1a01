/* committer.c - the group-commit thread; see committer.h.
 *
 * Threads: the loop thread calls committer_submit and runs callbacks; the
 * committer thread commits batches and, when no commit waits, retires
 * journal records.  It touches only the spool_new objects it was handed,
 * the lists below under `lock`, and its own record list. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "committer.h"
#include "journal.h"
#include "log.h"
#include "util.h"

#define BATCH_MAX          512
#define DROP_SCAN_MS       1000  /* between maildrop imports */
/* Journal records are retired as soon as they can be; the checkpoint that
 * says so is written with the next commit's flush, or after
 * CHECKPOINT_IDLE_MS without a commit with one of its own.  A message still
 * in queue/ after SETTLE_AFTER_MS (deferred, or no route) has its files
 * synced instead (spool_sync_all: two flushes) so that its record can go;
 * so does every message when the journal is three quarters full, and at
 * the end. */
#define CHECKPOINT_IDLE_MS 20
#define SETTLE_AFTER_MS    2000
#define SETTLE_USED        (JOURNAL_SIZE / 4 * 3)

struct job {
	struct spool_new *msg;
	committer_done_fn done;
	void *arg;
	bool ok;
	char why[256];
	STAILQ_ENTRY(job) entry;
};
STAILQ_HEAD(job_list, job);

/* A message now in queue/: the scheduler hears of it on the loop thread. */
struct queued {
	char id[ENVELOPE_ID_MAX + 1];
	STAILQ_ENTRY(queued) entry;
};
STAILQ_HEAD(queued_list, queued);

/* A message committed through the journal, in the order of its record. */
struct record {
	struct spool_journaled rec;
	uint64_t at_ms;
	bool retired;             /* its record is not needed any more */
};

struct committer {
	struct spool *spool;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* on CLOCK_MONOTONIC (now_ms) */
	struct job_list pending;     /* loop -> thread */
	struct job_list done;        /* thread -> loop */
	struct queued_list queued;   /* thread -> loop */
	bool stopping;
	bool imported;               /* maildrop files came in: tell the loop */
	const struct committer_hooks *hooks;
	void *hooks_arg;
	int notify[2];               /* thread writes a byte when a list grows */
	struct event *notify_ev;

	/* The thread's own: records not retired yet, oldest first. */
	struct record *recs;
	size_t first, nrecs, recs_cap;
	uint64_t last_commit_ms;
	bool staged;                 /* a checkpoint waits for a flush */
	bool journal_failed;         /* said once */
};

/* Under the lock: wake the loop thread. */
static void
notify_loop(struct committer *c)
{
	if (write(c->notify[1], "", 1) < 0 && errno != EAGAIN)
		log_err("committer: cannot wake the event loop: %s", strerror(errno));
}

/* Under the lock. */
static void
add_queued(struct committer *c, const char *id)
{
	struct queued *q = xcalloc(1, sizeof *q);

	strlcopy(q->id, id, sizeof q->id);
	STAILQ_INSERT_TAIL(&c->queued, q, entry);
}

/* Through the journal: acknowledged and queued now; the record is retired
 * later. */
static bool
commit_journaled(struct committer *c, struct job **jobs, struct spool_new **msgs, size_t n)
{
	struct spool_journaled out[BATCH_MAX];
	struct err err = { "" };
	int r = spool_journal_commit(c->spool, msgs, n, out, &err);

	if (r < 0 && !c->journal_failed) {
		log_err("%s; committing without the journal from now on", err.msg);
		c->journal_failed = true;
	}
	if (r != 0)
		return false;
	c->staged = false;          /* written with the batch */
	c->last_commit_ms = now_ms();
	if (c->first > 0 && c->first == c->nrecs)
		c->first = c->nrecs = 0;
	/* Their locks go before anyone hears of them: a worker would find
	 * them busy and try again only seconds later. */
	for (size_t i = 0; i < n; i++) {
		spool_new_free(msgs[i]);
		jobs[i]->msg = NULL;
		jobs[i]->ok = true;
		c->recs = xgrow(c->recs, &c->recs_cap, c->nrecs, sizeof *c->recs);
		c->recs[c->nrecs++] = (struct record){ out[i], c->last_commit_ms, false };
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		if (out[i].queued)
			add_queued(c, out[i].id);
	pthread_mutex_unlock(&c->lock);
	return true;
}

static void
commit_batch(struct committer *c, struct job **jobs, size_t n)
{
	struct spool_new *msgs[BATCH_MAX];
	bool failed[BATCH_MAX] = { false };
	char ids[BATCH_MAX][ENVELOPE_ID_MAX + 1];
	struct err err = { "" };

	for (size_t i = 0; i < n; i++)
		msgs[i] = jobs[i]->msg;
	if (commit_journaled(c, jobs, msgs, n))
		return;
	if (spool_commit_batch(c->spool, msgs, n, failed, &err) < 0 && n == 1)
		failed[0] = true;
	for (size_t i = 0; i < n; i++) {
		jobs[i]->ok = !failed[i];
		if (failed[i])
			strlcopy(jobs[i]->why, err.msg, sizeof jobs[i]->why);
		else
			strlcopy(ids[i], spool_new_id(msgs[i]), sizeof ids[i]);
		spool_new_free(msgs[i]);          /* aborts a failed one; unlocks */
		jobs[i]->msg = NULL;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		if (!failed[i])
			add_queued(c, ids[i]);
	pthread_mutex_unlock(&c->lock);
}

/* How many of the oldest records can be retired now. */
static size_t
retirable(struct committer *c)
{
	size_t k = 0;

	for (size_t i = c->first; i < c->nrecs; i++, k++) {
		struct record *r = &c->recs[i];

		if (!r->retired)
			r->retired = r->rec.queued && spool_left_queue(c->spool, r->rec.id);
		if (!r->retired)
			break;
	}
	return k;
}

/* Retire the k oldest records: durable with the next commit's flush, or
 * sync_checkpoint's. */
static void
checkpoint(struct committer *c, size_t k)
{
	spool_journal_retire(c->spool, &c->recs[c->first + k - 1].rec);
	c->staged = true;
	c->first += k;
	if (c->first > 1024 && c->first * 2 > c->nrecs) {
		memmove(c->recs, c->recs + c->first, (c->nrecs - c->first) * sizeof *c->recs);
		c->nrecs -= c->first;
		c->first = 0;
	}
}

static void
sync_checkpoint(struct committer *c)
{
	struct err err = { "" };

	c->staged = false;
	if (spool_journal_sync(c->spool, &err) < 0) {
		log_err("%s (committing without the journal from now on)", err.msg);
		c->journal_failed = true;
	}
}

/* Every message committed so far, durable in its own files. */
static void
settle(struct committer *c)
{
	struct err err = { "" };
	size_t k;

	if (spool_sync_all(c->spool, &err) < 0) {
		log_err("%s (the messages are safe in the journal)", err.msg);
		return;
	}
	for (size_t i = c->first; i < c->nrecs; i++)
		c->recs[i].retired = true;
	if ((k = retirable(c)) > 0)
		checkpoint(c, k);
}

/* With no commit waiting: retire records if it is time.  True when it did
 * some work; else *due says when to look again. */
static bool
retire_records(struct committer *c, uint64_t now, bool stopping, uint64_t *due)
{
	size_t k, count = c->nrecs - c->first;

	*due = UINT64_MAX;
	if (c->journal_failed)
		return false;
	if (c->staged && (stopping || now >= c->last_commit_ms + CHECKPOINT_IDLE_MS ||
	    spool_journal_used(c->spool) >= SETTLE_USED)) {
		sync_checkpoint(c);
		return true;
	}
	if (count == 0) {
		if (c->staged)
			*due = c->last_commit_ms + CHECKPOINT_IDLE_MS;
		return false;
	}
	k = retirable(c);
	if (k < count && (stopping || now >= c->recs[c->first + k].at_ms + SETTLE_AFTER_MS ||
	    spool_journal_used(c->spool) >= SETTLE_USED)) {
		settle(c);
		return true;
	}
	if (k > 0) {
		checkpoint(c, k);        /* no I/O: staged for the next flush */
		return true;
	}
	/* Workers report nothing here: look again in a while. */
	*due = now + CHECKPOINT_IDLE_MS;
	if (k < count && c->recs[c->first + k].at_ms + SETTLE_AFTER_MS < *due)
		*due = c->recs[c->first + k].at_ms + SETTLE_AFTER_MS;
	return false;
}

static void
import_drops(struct committer *c)
{
	struct err err = { "" };
	int n = spool_import_drops(c->spool, &err);

	if (n < 0)
		log_err("maildrop: %s", err.msg);
	else if (n > 0) {
		log_info("maildrop: imported %d message%s", n, n == 1 ? "" : "s");
		pthread_mutex_lock(&c->lock);
		c->imported = true;
		notify_loop(c);
		pthread_mutex_unlock(&c->lock);
	}
}

static void *
committer_main(void *arg)
{
	struct committer *c = arg;
	uint64_t next_scan = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *jobs[BATCH_MAX];
		uint64_t now = now_ms(), due;
		size_t n = 0;
		bool stopping = c->stopping;

		if (STAILQ_EMPTY(&c->pending)) {
			pthread_mutex_unlock(&c->lock);
			if (retire_records(c, now, stopping, &due)) {
				pthread_mutex_lock(&c->lock);
				continue;
			}
			if (now >= next_scan) {
				if (spool_writable(c->spool)) {
					import_drops(c);
					spool_trim_spares(c->spool);
				}
				next_scan = now_ms() + DROP_SCAN_MS;
			}
			pthread_mutex_lock(&c->lock);
			if (!STAILQ_EMPTY(&c->pending))
				continue;
			if (stopping && ((c->first == c->nrecs && !c->staged) || c->journal_failed))
				break;
			if (due > next_scan)
				due = next_scan;
			if (c->stopping == stopping) {
				struct timespec ts = { .tv_sec = (time_t)(due / 1000),
				    .tv_nsec = (long)(due % 1000) * 1000000 };

				pthread_cond_timedwait(&c->wake, &c->lock, &ts);
			}
			continue;
		}
		while (n < BATCH_MAX && !STAILQ_EMPTY(&c->pending)) {
			jobs[n++] = STAILQ_FIRST(&c->pending);
			STAILQ_REMOVE_HEAD(&c->pending, entry);
		}
		pthread_mutex_unlock(&c->lock);
		commit_batch(c, jobs, n);
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < n; i++)
			STAILQ_INSERT_TAIL(&c->done, jobs[i], entry);
		notify_loop(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* On the loop thread: run the callbacks of committed jobs. */
static void
run_done(struct committer *c)
{
	struct job_list done = STAILQ_HEAD_INITIALIZER(done);
	struct queued_list queued = STAILQ_HEAD_INITIALIZER(queued);
	struct queued *q;
	struct job *job;
	bool imported;

	pthread_mutex_lock(&c->lock);
	STAILQ_CONCAT(&done, &c->done);
	STAILQ_CONCAT(&queued, &c->queued);
	imported = c->imported;
	c->imported = false;
	pthread_mutex_unlock(&c->lock);
	/* The 250s first; the scheduler's dispatch runs after them anyway. */
	while ((job = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		job->done(job->arg, job->ok, job->why);
		free(job);
	}
	while ((q = STAILQ_FIRST(&queued)) != NULL) {
		STAILQ_REMOVE_HEAD(&queued, entry);
		if (c->hooks->queued != NULL)
			c->hooks->queued(c->hooks_arg, q->id);
		free(q);
	}
	if (imported && c->hooks->imported != NULL)
		c->hooks->imported(c->hooks_arg);
}

static void
on_notify(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	(void)what;
	while (read(fd, buf, sizeof buf) > 0)
		;
	run_done(arg);
}

int
committer_new(struct event_base *base, struct spool *spool, const struct committer_hooks *hooks,
    void *arg, struct committer **out, struct err *err)
{
	struct committer *c = xcalloc(1, sizeof *c);
	pthread_condattr_t attr;

	c->spool = spool;
	c->hooks = hooks;
	c->hooks_arg = arg;
	STAILQ_INIT(&c->pending);
	STAILQ_INIT(&c->done);
	STAILQ_INIT(&c->queued);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* now_ms's clock */
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pipe2(c->notify, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(c);
		return err_sys(err, "committer: pipe");
	}
	c->notify_ev = event_new(base, c->notify[0], EV_READ | EV_PERSIST, on_notify, c);
	event_add(c->notify_ev, NULL);
	if ((errno = pthread_create(&c->thread, NULL, committer_main, c)) != 0) {
		err_sys(err, "committer: cannot start the thread");
		event_free(c->notify_ev);
		close(c->notify[0]);
		close(c->notify[1]);
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void
committer_submit(struct committer *c, struct spool_new *msg, committer_done_fn done, void *arg)
{
	struct job *job = xcalloc(1, sizeof *job);

	job->msg = msg;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&c->lock);
	STAILQ_INSERT_TAIL(&c->pending, job, entry);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

void
committer_free(struct committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	run_done(c);
	event_free(c->notify_ev);
	close(c->notify[0]);
	close(c->notify[1]);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c->recs);
	free(c);
}
