/* scheduler.c - due times and delivery workers; see scheduler.h.
 *
 * The index is an array searched linearly: simple, and ample for the
 * queues of small sites (thousands of messages).  Workers are started with
 * fork + exec of this very binary, so they begin with no inherited state:
 * every descriptor the daemon holds is close-on-exec (a locked data/ file
 * inherited by a worker would keep its lock alive).  They live on: a
 * worker that has reported every message of its batch is idle and gets the
 * next batch on its stdin (worker.h), so a burst costs one process start
 * and one gateway login per worker, not per message.  Idle workers are
 * retired (their stdin closed) after WORKER_IDLE seconds, and all of them
 * when the configuration is reloaded. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "deliver.h"
#include "log.h"
#include "scheduler.h"
#include "util.h"
#include "worker.h"

#define BATCH_MAX          WORKER_BATCH_MAX   /* messages per batch */
#define WORKER_IDLE        60    /* seconds an idle worker waits for work */
_Static_assert(WORKER_LINE_MAX <= PIPE_BUF, "a batch line is written to a worker in one write");
#define BUSY_BACKOFF       5     /* another process held the message */
#define RESCAN_INTERVAL    300   /* pick up what queue commands changed */

struct worker;

struct entry {
	char id[ENVELOPE_ID_MAX + 1];
	int64_t next_try;
	bool forced;                 /* a flush asked for it: ignore its back-off */
	unsigned flush_gen;          /* the flush waiting for it, 0 = none */
	struct worker *worker;       /* delivering it now */
	scheduler_proxy_fn *proxy;   /* a client waits for its result (proxy mode) */
	void *proxy_arg;
};

struct worker {
	struct scheduler *s;
	pid_t pid;
	int in;                      /* its stdin: batches; -1 once retired */
	struct bufferevent *out;     /* its stdout: result lines */
	size_t held;                 /* entries it was given and has not reported */
	time_t idle_since;
	bool exited;
	LIST_ENTRY(worker) link;
};

struct flush_waiter {
	unsigned gen;
	void (*done)(void *, unsigned);
	void *arg;
	LIST_ENTRY(flush_waiter) link;
};

struct scheduler {
	struct event_base *base;
	struct spool *spool;
	char *config_path;
	char self[PATH_MAX];
	unsigned max_workers;
	bool have_routes;            /* without any route there is nothing to do */
	int64_t crash_backoff;       /* seconds before retrying what a dead worker held: the
	                              * first retry step, so `retry` governs it too */
	int config_fd;               /* the daemon's configuration text (memfd) for workers:
	                              * they deliver with what the daemon loaded, never
	                              * with a file edited since */
	struct entry *entries;
	size_t n, cap;
	LIST_HEAD(, worker) workers;
	unsigned nworkers;
	LIST_HEAD(, flush_waiter) waiters;
	unsigned flush_gen;
	struct event *timer;
	struct event *kick;          /* dispatch soon, after what the loop has ready */
	time_t last_scan;
	bool syslog;                 /* workers log to syslog (the daemon is detached) */
	bool stopping;
};

static void dispatch(struct scheduler *);

/* Dispatch on the next loop turn: a commit's 250s are written first, and
 * many commits of one batch make one dispatch. */
static void
kick(struct scheduler *s)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(s->kick, &now);
}

/* Close its stdin: it finishes what it holds and exits. */
static void
worker_retire(struct worker *w)
{
	if (w->in < 0)
		return;
	close(w->in);
	w->in = -1;
}

/* An entry leaves its worker (reported, or the worker is gone). */
static void
entry_unassign(struct entry *e)
{
	struct worker *w = e->worker;

	if (w == NULL)
		return;
	e->worker = NULL;
	if (--w->held == 0)
		w->idle_since = time(NULL);
}

static struct entry *
entry_find(struct scheduler *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->entries[i].id, id) == 0)
			return &s->entries[i];
	return NULL;
}

static struct entry *
entry_add(struct scheduler *s, const char *id, int64_t next_try)
{
	struct entry *e = entry_find(s, id);

	if (e != NULL)
		return e;
	s->entries = xgrow(s->entries, &s->cap, s->n, sizeof *s->entries);
	e = &s->entries[s->n++];
	memset(e, 0, sizeof *e);
	strlcopy(e->id, id, sizeof e->id);
	e->next_try = next_try;
	return e;
}

/* The client waiting for e hears how the attempt went (once). */
static void
proxy_answer(struct entry *e, enum deliver_result result, int64_t next_try)
{
	struct deliver_line line = { .result = result, .next_try = next_try };
	scheduler_proxy_fn *fn = e->proxy;

	if (fn == NULL)
		return;
	e->proxy = NULL;
	strlcopy(line.id, e->id, sizeof line.id);
	fn(e->proxy_arg, &line);
}

static void
entry_remove(struct scheduler *s, struct entry *e)
{
	entry_unassign(e);
	*e = s->entries[--s->n];
}

/* Flushes whose messages have all been tried get their answer. */
static void
check_waiters(struct scheduler *s)
{
	struct flush_waiter *w, *next;

	for (w = LIST_FIRST(&s->waiters); w != NULL; w = next) {
		bool pending = false;

		next = LIST_NEXT(w, link);
		for (size_t i = 0; i < s->n && !pending; i++)
			pending = s->entries[i].flush_gen == w->gen;
		if (pending)
			continue;
		LIST_REMOVE(w, link);
		w->done(w->arg, (unsigned)s->n);
		free(w);
	}
}

/* Load what queue/ holds (start-up and rescans); entries being delivered
 * keep their state. */
static void
load_index(struct scheduler *s)
{
	struct spool_entry *list;
	size_t count;
	struct err err = { "" };

	s->last_scan = time(NULL);
	if (spool_list(s->spool, &list, &count, &err) < 0) {
		log_err("scheduler: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < s->n;) {    /* forget what left the queue behind our back */
		bool listed = false;

		for (size_t k = 0; k < count && !listed; k++)
			listed = list[k].state == SPOOL_QUEUE && strcmp(list[k].id, s->entries[i].id) == 0;
		if (!listed && s->entries[i].worker == NULL)
			entry_remove(s, &s->entries[i]);
		else
			i++;
	}
	for (size_t k = 0; k < count; k++) {
		struct envelope env;
		struct entry *e;

		if (list[k].state != SPOOL_QUEUE || entry_find(s, list[k].id) != NULL)
			continue;
		if (spool_read(s->spool, list[k].id, NULL, &env, &err) < 0) {
			log_warn("scheduler: %s: %s", list[k].id, err.msg);
			continue;
		}
		e = entry_add(s, list[k].id, env.next_try);
		(void)e;
		envelope_clear(&env);
	}
	free(list);
}

/* --- workers ------------------------------------------------------------ */

static void
worker_release(struct worker *w, int64_t retry_at)
{
	struct scheduler *s = w->s;

	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->entries[i];

		if (e->worker != w)
			continue;
		entry_unassign(e);
		e->next_try = retry_at;
		e->forced = false;
		e->flush_gen = 0;
		proxy_answer(e, RESULT_QUEUE, retry_at);
	}
}

static void
worker_free(struct worker *w)
{
	struct scheduler *s = w->s;

	LIST_REMOVE(w, link);
	s->nworkers--;
	if (w->in >= 0)
		close(w->in);
	free(w);
}

/* Both ends seen (its output closed and the process reaped): gone. */
static void
worker_maybe_done(struct worker *w)
{
	struct scheduler *s = w->s;

	if (w->out != NULL || !w->exited)
		return;
	worker_release(w, time(NULL) + s->crash_backoff);
	worker_free(w);
	check_waiters(s);
	dispatch(s);
}

static void
apply_line(struct worker *w, const struct deliver_line *line)
{
	struct scheduler *s = w->s;
	struct entry *e = entry_find(s, line->id);

	if (e == NULL && line->result == RESULT_QUEUE) {
		entry_add(s, line->id, line->next_try);   /* a report the worker queued */
		kick(s);
		return;
	}
	if (e == NULL || e->worker != w) {
		log_warn("scheduler: worker %ld reported %s, which it was not given", (long)w->pid,
		    line->id);
		return;
	}
	proxy_answer(e, line->result, line->next_try);
	switch (line->result) {
	case RESULT_QUEUE:
		entry_unassign(e);
		e->next_try = line->next_try;
		e->forced = false;
		e->flush_gen = 0;
		break;
	case RESULT_BUSY:
		entry_unassign(e);
		e->next_try = time(NULL) + BUSY_BACKOFF;
		e->flush_gen = 0;
		break;
	case RESULT_DONE:
	case RESULT_FAILED:
	case RESULT_GONE:
		entry_remove(s, e);
		break;
	}
}

static void
on_worker_output(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	char *line;
	size_t len;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &len, EVBUFFER_EOL_LF)) != NULL) {
		struct deliver_line dl;

		if (deliver_line_parse(line, len, &dl) == 0)
			apply_line(w, &dl);
		else
			log_warn("scheduler: worker %ld: unexpected output", (long)w->pid);
		free(line);
	}
	check_waiters(w->s);
	if (w->held == 0)
		kick(w->s);      /* idle again: more work? */
}

static void
on_worker_event(struct bufferevent *bev, short what, void *arg)
{
	struct worker *w = arg;

	(void)what;
	on_worker_output(bev, arg);     /* whatever came with the close */
	bufferevent_free(w->out);
	w->out = NULL;
	worker_maybe_done(w);
}

/* The configuration text workers read from descriptor 3. */
#define WORKER_CONFIG_FD 3

static void
set_config_text(struct scheduler *s, const struct config *cfg)
{
	uint64_t first = cfg->retry.nsteps > 0 ? cfg->retry.steps_ms[0] : cfg->retry.max_ms;

	s->crash_backoff = first <= 1000 ? 1 : (int64_t)((first + 999) / 1000);
	int fd = memfd_create("mailredir.conf", MFD_CLOEXEC);

	if (fd < 0 || write_all(fd, cfg->text, cfg->text_len) < 0) {
		log_err("scheduler: cannot keep the configuration for workers: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;     /* workers keep getting the previous one */
	}
	if (s->config_fd >= 0)
		close(s->config_fd);
	s->config_fd = fd;
}

/* fork + exec `mailredir -c FILE deliver --config-fd 3 [--syslog] --worker`,
 * its stdin and stdout pipes to us. */
static struct worker *
worker_start(struct scheduler *s)
{
	char *argv[10];
	struct worker *w;
	int in[2], out[2];
	size_t k = 0;
	pid_t pid;

	argv[k++] = s->self;
	argv[k++] = "-c";
	argv[k++] = s->config_path;
	argv[k++] = "deliver";
	argv[k++] = "--config-fd";
	argv[k++] = "3";
	if (s->syslog)
		argv[k++] = "--syslog";
	argv[k++] = "--worker";
	argv[k] = NULL;
	if (pipe2(in, O_CLOEXEC) < 0) {
		log_err("scheduler: pipe: %s", strerror(errno));
		return NULL;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		log_err("scheduler: pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return NULL;
	}
	pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls here: the daemon has threads. */
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		if (s->config_fd == WORKER_CONFIG_FD)
			fcntl(WORKER_CONFIG_FD, F_SETFD, 0);     /* keep it across exec */
		else if (dup2(s->config_fd, WORKER_CONFIG_FD) < 0)
			_exit(127);
		execv(s->self, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		log_err("scheduler: fork: %s", strerror(errno));
		close(in[1]);
		close(out[0]);
		return NULL;
	}
	w = xcalloc(1, sizeof *w);
	w->s = s;
	w->pid = pid;
	w->in = in[1];
	w->idle_since = time(NULL);
	evutil_make_socket_nonblocking(in[1]);
	evutil_make_socket_nonblocking(out[0]);
	w->out = bufferevent_socket_new(s->base, out[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(w->out, on_worker_output, NULL, on_worker_event, w);
	bufferevent_enable(w->out, EV_READ);
	LIST_INSERT_HEAD(&s->workers, w, link);
	s->nworkers++;
	log_debug("scheduler: worker %ld started", (long)pid);
	return w;
}

/* Write a batch line to an idle worker.  The pipe is empty (the worker has
 * read all it was given), and the line is shorter than PIPE_BUF, so one
 * write takes it whole or fails: then the worker is retired. */
static int
worker_give(struct worker *w, struct entry **batch, size_t n, enum deliver_mode mode)
{
	char line[WORKER_LINE_MAX];
	size_t len = (size_t)snprintf(line, sizeof line, "%s", deliver_mode_name(mode));

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " %s", batch[i]->id);
	line[len++] = '\n';
	if (write(w->in, line, len) != (ssize_t)len) {
		log_warn("scheduler: worker %ld does not take work: %s", (long)w->pid,
		    strerror(errno));
		worker_retire(w);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		batch[i]->worker = w;
	w->held += n;
	log_debug("scheduler: worker %ld: %zu message%s (%s)", (long)w->pid, n, n == 1 ? "" : "s",
	    deliver_mode_name(mode));
	return 0;
}

void
scheduler_reap(struct scheduler *s)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker *w;

		LIST_FOREACH(w, &s->workers, link)
			if (w->pid == pid)
				break;
		if (w == NULL)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			log_warn("scheduler: worker %ld %s %d", (long)pid,
			    WIFSIGNALED(status) ? "killed by signal" : "exited with status",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		w->exited = true;
		worker_maybe_done(w);
	}
}

/* --- dispatch ----------------------------------------------------------- */

static void
arm_timer(struct scheduler *s)
{
	time_t now = time(NULL);
	int64_t next = s->last_scan + RESCAN_INTERVAL;
	struct timeval tv = { 0, 0 };
	struct worker *w;

	for (size_t i = 0; i < s->n; i++)
		if (s->entries[i].worker == NULL && s->entries[i].next_try < next)
			next = s->entries[i].next_try;
	LIST_FOREACH(w, &s->workers, link)
		if (w->in >= 0 && w->held == 0 && w->idle_since + WORKER_IDLE < next)
			next = w->idle_since + WORKER_IDLE;
	tv.tv_sec = next > now ? (time_t)(next - now) : 0;
	/* Due now but no free worker: a finishing worker dispatches again. */
	if (tv.tv_sec == 0 && s->nworkers >= s->max_workers)
		tv.tv_sec = 1;
	evtimer_add(s->timer, &tv);
}

static enum deliver_mode
entry_mode(const struct entry *e)
{
	return e->proxy != NULL ? DELIVER_PROXY : e->forced ? DELIVER_FORCE : DELIVER_DUE;
}

/* Up to BATCH_MAX messages due in this mode (batches do not mix modes). */
static size_t
collect(struct scheduler *s, struct entry **batch, enum deliver_mode mode, time_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n && n < BATCH_MAX; i++) {
		struct entry *e = &s->entries[i];

		if (e->worker == NULL && entry_mode(e) == mode &&
		    (mode != DELIVER_DUE || e->next_try <= now))
			batch[n++] = e;
	}
	return n;
}

static struct worker *
idle_worker(struct scheduler *s)
{
	struct worker *w;

	LIST_FOREACH(w, &s->workers, link)
		if (w->in >= 0 && w->held == 0 && !w->exited)
			return w;
	return NULL;
}

static void
retire_idle(struct scheduler *s, time_t now)
{
	struct worker *w;

	LIST_FOREACH(w, &s->workers, link)
		if (w->in >= 0 && w->held == 0 && now >= w->idle_since + WORKER_IDLE) {
			log_debug("scheduler: worker %ld idle for %ds: retired", (long)w->pid,
			    WORKER_IDLE);
			worker_retire(w);
		}
}

static void
dispatch(struct scheduler *s)
{
	struct entry *batch[BATCH_MAX];
	time_t now = time(NULL);

	if (s->stopping || !s->have_routes)
		return;
	for (;;) {
		/* a waiting client first, then a flush, then the rest */
		static const enum deliver_mode order[] = { DELIVER_PROXY, DELIVER_FORCE, DELIVER_DUE };
		enum deliver_mode mode = DELIVER_DUE;
		struct worker *w;
		size_t n = 0;

		for (size_t k = 0; k < 3 && n == 0; k++)
			n = collect(s, batch, mode = order[k], now);
		if (n == 0)
			break;
		w = idle_worker(s);
		if (w == NULL && s->nworkers < s->max_workers &&
		    (w = worker_start(s)) == NULL) {
			for (size_t i = 0; i < n; i++) {
				batch[i]->next_try = now + s->crash_backoff;
				batch[i]->forced = false;
				batch[i]->flush_gen = 0;
				proxy_answer(batch[i], RESULT_QUEUE, batch[i]->next_try);
			}
			check_waiters(s);
			break;
		}
		if (w == NULL || worker_give(w, batch, n, mode) < 0)
			break;    /* all busy (a report dispatches again), or try later */
	}
	retire_idle(s, now);
	arm_timer(s);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;

	(void)fd;
	(void)what;
	if (time(NULL) >= s->last_scan + RESCAN_INTERVAL)
		load_index(s);
	dispatch(s);
}

/* --- interface ---------------------------------------------------------- */

int
scheduler_new(struct event_base *base, struct spool *spool, const char *config_path, bool syslog,
    const struct config *cfg, struct scheduler **out, struct err *err)
{
	struct scheduler *s = xcalloc(1, sizeof *s);
	ssize_t len = readlink("/proc/self/exe", s->self, sizeof s->self - 1);

	if (len < 0) {
		free(s);
		return err_sys(err, "cannot find this program (/proc/self/exe)");
	}
	s->self[len] = '\0';
	s->base = base;
	s->spool = spool;
	s->config_path = xstrdup(config_path);
	s->syslog = syslog;
	s->config_fd = -1;
	set_config_text(s, cfg);
	if (s->config_fd < 0) {
		free(s->config_path);
		free(s);
		return err_set(err, "cannot keep the configuration for delivery workers");
	}
	s->max_workers = cfg->max_deliveries;
	s->have_routes = cfg->nroutes > 0;
	LIST_INIT(&s->workers);
	LIST_INIT(&s->waiters);
	s->timer = evtimer_new(base, on_timer, s);
	s->kick = evtimer_new(base, on_timer, s);
	load_index(s);
	dispatch(s);
	*out = s;
	return 0;
}

void
scheduler_set_config(struct scheduler *s, const struct config *cfg)
{
	struct worker *w;

	LIST_FOREACH(w, &s->workers, link)   /* new work goes to workers with the new one */
		worker_retire(w);
	s->max_workers = cfg->max_deliveries;
	s->have_routes = cfg->nroutes > 0;
	set_config_text(s, cfg);
	dispatch(s);
}

void
scheduler_add(struct scheduler *s, const char *id)
{
	entry_add(s, id, 0);
	kick(s);
}

void
scheduler_proxy(struct scheduler *s, const char *id, scheduler_proxy_fn *fn, void *arg)
{
	struct entry *e = entry_add(s, id, 0);

	e->proxy = fn;
	e->proxy_arg = arg;
	if (!s->have_routes || s->stopping) {
		proxy_answer(e, RESULT_QUEUE, e->next_try);
		return;
	}
	kick(s);     /* one already with a worker answers when that worker reports */
}

void
scheduler_rescan(struct scheduler *s)
{
	load_index(s);
	dispatch(s);
}

void
scheduler_flush(struct scheduler *s, void (*done)(void *, unsigned), void *arg)
{
	struct flush_waiter *w = xcalloc(1, sizeof *w);

	load_index(s);
	w->gen = ++s->flush_gen;
	w->done = done;
	w->arg = arg;
	LIST_INSERT_HEAD(&s->waiters, w, link);
	/* What a worker holds now is being tried: its report answers the flush
	 * too.  Everything else is tried now, whatever its back-off. */
	for (size_t i = 0; i < s->n && s->have_routes; i++) {
		s->entries[i].flush_gen = w->gen;
		if (s->entries[i].worker == NULL)
			s->entries[i].forced = true;
	}
	check_waiters(s);       /* answered at once when there is nothing to try */
	dispatch(s);
}

void
scheduler_stop(struct scheduler *s)
{
	struct worker *w;

	s->stopping = true;
	evtimer_del(s->timer);
	evtimer_del(s->kick);
	LIST_FOREACH(w, &s->workers, link) {
		worker_retire(w);
		if (!w->exited)
			kill(w->pid, SIGTERM);
	}
}

bool
scheduler_busy(const struct scheduler *s)
{
	return s->nworkers > 0;
}

void
scheduler_free(struct scheduler *s)
{
	struct flush_waiter *fw;
	struct worker *w;

	if (s == NULL)
		return;
	while ((fw = LIST_FIRST(&s->waiters)) != NULL) {
		LIST_REMOVE(fw, link);
		fw->done(fw->arg, (unsigned)s->n);
		free(fw);
	}
	while ((w = LIST_FIRST(&s->workers)) != NULL) {
		if (w->out != NULL)
			bufferevent_free(w->out);
		worker_free(w);
	}
	event_free(s->timer);
	event_free(s->kick);
	if (s->config_fd >= 0)
		close(s->config_fd);
	free(s->entries);
	free(s->config_path);
	free(s);
}
