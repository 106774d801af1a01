/* committer.c - the group-commit thread; see committer.h.
 *
 * Threads: the loop thread calls committer_submit and runs callbacks; the
 * committer thread only touches spool_new objects it was handed, the pending
 * and done lists (under `lock`), and the wake-up pipe. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "committer.h"
#include "log.h"
#include "util.h"

#define BATCH_MAX          512
#define DROP_SCAN_INTERVAL 1     /* seconds between maildrop imports */

struct job {
	struct spool_new *msg;
	committer_done_fn done;
	void *arg;
	bool ok;
	char why[256];
	STAILQ_ENTRY(job) entry;
};
STAILQ_HEAD(job_list, job);

struct committer {
	struct spool *spool;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_list pending;     /* loop -> thread */
	struct job_list done;        /* thread -> loop */
	bool stopping;
	bool imported;               /* maildrop files came in: tell the loop */
	void (*on_import)(void *);
	void *on_import_arg;
	int notify[2];               /* thread writes a byte when `done` grows */
	struct event *notify_ev;
};

static void
commit_batch(struct committer *c, struct job **jobs, size_t n)
{
	struct spool_new *msgs[BATCH_MAX];
	bool failed[BATCH_MAX] = { false };
	struct err err = { "" };

	for (size_t i = 0; i < n; i++)
		msgs[i] = jobs[i]->msg;
	if (spool_commit_batch(c->spool, msgs, n, failed, &err) < 0 && n == 1)
		failed[0] = true;
	for (size_t i = 0; i < n; i++) {
		jobs[i]->ok = !failed[i];
		if (failed[i]) {
			strlcopy(jobs[i]->why, err.msg, sizeof jobs[i]->why);
			spool_new_abort(jobs[i]->msg);
		}
		spool_new_free(jobs[i]->msg);
		jobs[i]->msg = NULL;
	}
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
		pthread_mutex_unlock(&c->lock);
		if (write(c->notify[1], "", 1) < 0 && errno != EAGAIN)
			log_err("committer: cannot wake the event loop: %s", strerror(errno));
	}
}

static void *
committer_main(void *arg)
{
	struct committer *c = arg;
	time_t next_scan = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *jobs[BATCH_MAX];
		size_t n = 0;

		while (STAILQ_EMPTY(&c->pending) && !c->stopping && time(NULL) < next_scan) {
			struct timespec until = { .tv_sec = next_scan };

			pthread_cond_timedwait(&c->wake, &c->lock, &until);
		}
		if (STAILQ_EMPTY(&c->pending) && c->stopping)
			break;
		while (n < BATCH_MAX && !STAILQ_EMPTY(&c->pending)) {
			jobs[n++] = STAILQ_FIRST(&c->pending);
			STAILQ_REMOVE_HEAD(&c->pending, entry);
		}
		pthread_mutex_unlock(&c->lock);

		if (n > 0)
			commit_batch(c, jobs, n);
		else if (spool_writable(c->spool)) {
			import_drops(c);
			spool_trim_spares(c->spool);
			next_scan = time(NULL) + DROP_SCAN_INTERVAL;
		} else
			next_scan = time(NULL) + DROP_SCAN_INTERVAL;

		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < n; i++)
			STAILQ_INSERT_TAIL(&c->done, jobs[i], entry);
		if (n > 0 && write(c->notify[1], "", 1) < 0 && errno != EAGAIN)
			log_err("committer: cannot wake the event loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* On the loop thread: run the callbacks of committed jobs. */
static void
run_done(struct committer *c)
{
	struct job_list done = STAILQ_HEAD_INITIALIZER(done);
	struct job *job;
	bool imported;

	pthread_mutex_lock(&c->lock);
	STAILQ_CONCAT(&done, &c->done);
	imported = c->imported;
	c->imported = false;
	pthread_mutex_unlock(&c->lock);
	if (imported && c->on_import != NULL)
		c->on_import(c->on_import_arg);
	while ((job = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		job->done(job->arg, job->ok, job->why);
		free(job);
	}
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
committer_new(struct event_base *base, struct spool *spool, void (*on_import)(void *),
    void *arg, struct committer **out, struct err *err)
{
	struct committer *c = xcalloc(1, sizeof *c);

	c->spool = spool;
	c->on_import = on_import;
	c->on_import_arg = arg;
	STAILQ_INIT(&c->pending);
	STAILQ_INIT(&c->done);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
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
	free(c);
}
