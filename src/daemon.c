/* daemon.c - `mailredir serve`; see daemon.h.
 *
 * One libevent loop serves every connection; a session's bytes go through
 * smtp_server.c, its message into the spool, and the committer thread makes
 * it durable before the 250.  Sessions keep the configuration they started
 * with across a SIGHUP (reference counted); new ones get the new one.
 *
 * SECURITY: started as root, it binds its listeners, prepares the spool for
 * `user`, then drops to that user before serving anyone. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "committer.h"
#include "control.h"
#include "daemon.h"
#include "deliver.h"
#include "log.h"
#include "scheduler.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "spool.h"
#include "util.h"

#define SHUTDOWN_GRACE_SECONDS 5
#define LISTEN_BACKLOG         1024
#define ACCEPT_PAUSE_MS        1000   /* after accept() ran out of descriptors */
#define CONN_OUTPUT_HIGH       (64 * 1024)   /* replies a client has not read: stop reading */

struct config_ref {
	struct config *cfg;
	unsigned refs;
};

struct client_count {
	char addr[NETADDR_TEXT_MAX];
	unsigned n;
	LIST_ENTRY(client_count) entry;
};

struct conn {
	struct daemon *d;
	struct config_ref *cfg;
	struct bufferevent *bev;        /* EV_WRITE only while replies wait for the socket */
	struct evbuffer *replies;       /* what the session says, written by conn_flush */
	struct smtp_session *session;
	struct spool_new *msg;          /* the message being received, if any */
	struct client_count *count;
	bool closing;                   /* close once the output is written */
	bool committing;                /* the committer holds our message, or (proxy
	                                 * mode) a worker delivers it while we wait */
	bool gone;                      /* the socket is closed; free after the commit */
	char id[ENVELOPE_ID_MAX + 1];   /* of the message being committed */
	LIST_ENTRY(conn) entry;
};

struct listener {
	struct evconnlistener *ev;
	char text[NETADDR_TEXT_MAX + 8];
	LIST_ENTRY(listener) entry;
};

struct daemon {
	struct event_base *base;
	struct config_ref *cfg;
	const char *config_path;
	struct spool *spool;
	struct committer *committer;
	struct scheduler *scheduler;
	struct evconnlistener *control;
	bool foreground;
	bool proxy;                     /* serve --proxy */
	LIST_HEAD(, listener) listeners;
	LIST_HEAD(, conn) conns;
	LIST_HEAD(, client_count) counts;
	unsigned nconns;
	bool stopping;
	struct event *grace_timer;
	struct event *accept_pause;     /* listeners off while out of descriptors */
};

static struct config_ref *
config_ref_new(struct config *cfg)
{
	struct config_ref *ref = xcalloc(1, sizeof *ref);

	ref->cfg = cfg;
	ref->refs = 1;
	return ref;
}

static void
config_ref_drop(struct config_ref *ref)
{
	if (ref != NULL && --ref->refs == 0) {
		config_free(ref->cfg);
		free(ref);
	}
}

/* --- connections -------------------------------------------------------- */

static void conn_process(struct conn *);
static void daemon_maybe_exit(struct daemon *);

static void
conn_free(struct conn *c)
{
	struct daemon *d = c->d;

	if (c->committing) {            /* the committer still holds the message */
		if (c->bev != NULL) {
			bufferevent_free(c->bev);
			c->bev = NULL;
		}
		c->gone = true;
		return;
	}
	smtp_session_free(c->session);  /* aborts an unfinished message */
	evbuffer_free(c->replies);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->count != NULL && --c->count->n == 0) {
		LIST_REMOVE(c->count, entry);
		free(c->count);
	}
	LIST_REMOVE(c, entry);
	d->nconns--;
	config_ref_drop(c->cfg);
	free(c);
	daemon_maybe_exit(d);
}

static void
conn_timeouts(struct conn *c)
{
	const struct config *cfg = c->cfg->cfg;
	uint64_t ms = smtp_session_in_data(c->session) ? cfg->data_timeout_ms : cfg->command_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* Replies go out at once: most fit the socket buffer, and leaving them
 * to the loop's next turn would cost every command a wake-up and two
 * epoll_ctl calls.  Whatever the socket does not take (or all of it, while
 * earlier replies still wait) goes to the bufferevent, with EV_WRITE on
 * until it drains (on_write), under the write timeout. */
static void
conn_flush(struct conn *c)
{
	struct evbuffer *waiting = bufferevent_get_output(c->bev);

	if (evbuffer_get_length(c->replies) == 0)
		return;
	if (evbuffer_get_length(waiting) == 0)
		(void)evbuffer_write(c->replies, bufferevent_getfd(c->bev));   /* errors: see below */
	if (evbuffer_get_length(c->replies) > 0) {
		/* Not written (socket full, or an error the bufferevent's own
		 * write will meet and report to on_event). */
		evbuffer_add_buffer(waiting, c->replies);
		bufferevent_enable(c->bev, EV_WRITE);
	}
}

static bool
conn_output_pending(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
}

static void
conn_close_when_flushed(struct conn *c)
{
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	conn_flush(c);
	if (!conn_output_pending(c))
		conn_free(c);
	else
		bufferevent_enable(c->bev, EV_WRITE);   /* off after a timeout; its timeout bounds this */
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->closing) {
		conn_free(c);
		return;
	}
	bufferevent_disable(c->bev, EV_WRITE);   /* drained: conn_flush writes directly again */
	if (!c->committing)
		conn_process(c);        /* replies drained: read pipelined commands again */
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	/* A read timeout gets its 421, flushed under the write timeout.  A
	 * write timeout (a client that does not read its replies), EOF or an
	 * error ends the connection now: nothing more can be said. */
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !c->closing) {
		smtp_session_timeout(c->session);
		conn_close_when_flushed(c);
		return;
	}
	conn_free(c);
}

static void
conn_process(struct conn *c)
{
	enum smtp_session_status st;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > CONN_OUTPUT_HIGH) {
		/* A client that sends commands but does not read the replies:
		 * read nothing more until on_write says they are gone. */
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	st = smtp_session_input(c->session, bufferevent_get_input(c->bev));
	conn_flush(c);
	switch (st) {
	case SMTP_SESSION_READ:
		conn_timeouts(c);
		bufferevent_enable(c->bev, EV_READ);
		break;
	case SMTP_SESSION_WAIT:
		/* A commit in flight, or replies piling up: read nothing more
		 * until on_commit_done or on_write calls us again. */
		bufferevent_disable(c->bev, EV_READ);
		break;
	case SMTP_SESSION_CLOSE:
		conn_close_when_flushed(c);
		break;
	}
}

/* The session's store: straight into the spool, durable via the committer. */
static int
store_begin(void *ctx, char *id, struct err *err)
{
	struct conn *c = ctx;

	if (spool_new_begin(c->d->spool, &c->msg, err) < 0)
		return -1;
	strlcopy(id, spool_new_id(c->msg), ENVELOPE_ID_MAX + 1);
	return 0;
}

static int
store_write(void *ctx, const void *buf, size_t len, struct err *err)
{
	struct conn *c = ctx;

	return spool_new_write(c->msg, buf, len, err);
}

static void
store_abort(void *ctx)
{
	struct conn *c = ctx;

	if (c->msg != NULL) {
		spool_new_abort(c->msg);
		spool_new_free(c->msg);
		c->msg = NULL;
	}
}

/* Proxy mode: a worker tried the message; its verdict is the client's
 * reply to DATA.  What the worker left in the envelope says which. */
static void
on_proxy_done(void *arg, const struct deliver_line *line)
{
	struct conn *c = arg;
	struct envelope env, *have = NULL;
	struct err err = { "" };
	char verdict[512];

	c->committing = false;
	if (c->gone) {
		conn_free(c);
		return;
	}
	if ((line->result == RESULT_QUEUE || line->result == RESULT_FAILED) &&
	    spool_read(c->d->spool, line->id, NULL, &env, &err) == 0)
		have = &env;
	else if (err.msg[0] != '\0')
		log_warn("%s: proxy: %s", line->id, err.msg);
	deliver_proxy_verdict(line, have, verdict, sizeof verdict);
	if (have != NULL)
		envelope_clear(have);
	smtp_session_answer(c->session, verdict, NULL);
	conn_process(c);
}

static void
on_commit_done(void *arg, bool ok, const char *why)
{
	struct conn *c = arg;

	c->committing = false;
	if (c->gone) {
		conn_free(c);
		return;
	}
	if (ok && c->d->proxy && c->d->scheduler != NULL) {
		c->committing = true;        /* the session waits for the verdict */
		scheduler_proxy(c->d->scheduler, c->id, on_proxy_done, c);
		return;
	}
	smtp_session_committed(c->session, ok, why);
	conn_process(c);
}

static void
store_commit(void *ctx, struct envelope *env)
{
	struct conn *c = ctx;
	struct spool_new *msg = c->msg;
	struct err err = { "" };

	c->msg = NULL;
	strlcopy(c->id, spool_new_id(msg), sizeof c->id);
	if (spool_new_finish(msg, env, &err) < 0) {
		spool_new_abort(msg);
		spool_new_free(msg);
		smtp_session_committed(c->session, false, err.msg);
		return;
	}
	c->committing = true;
	committer_submit(c->d->committer, msg, on_commit_done, c);
}

static struct client_count *
client_count_get(struct daemon *d, const char *addr)
{
	struct client_count *cc;

	LIST_FOREACH(cc, &d->counts, entry)
		if (strcmp(cc->addr, addr) == 0)
			return cc;
	cc = xcalloc(1, sizeof *cc);
	strlcopy(cc->addr, addr, sizeof cc->addr);
	LIST_INSERT_HEAD(&d->counts, cc, entry);
	return cc;
}

static bool
is_loopback(const struct sockaddr *sa)
{
	static struct cidr loopback[2];
	static bool ready;

	if (!ready) {
		netaddr_parse_cidr("127.0.0.0/8", &loopback[0]);
		netaddr_parse_cidr("::1/128", &loopback[1]);
		ready = true;
	}
	return netaddr_cidr_list_match(loopback, 2, sa);
}

/* Refuse a connection before any session exists: one reply, then close. */
static void
conn_refuse(struct conn *c, const char *fmt, const char *addr)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev), fmt, c->cfg->cfg->hostname, addr);
	evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
	bufferevent_enable(c->bev, EV_WRITE);
	conn_close_when_flushed(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct daemon *d = arg;
	const struct config *cfg = d->cfg->cfg;
	struct smtp_store store = { NULL, store_begin, store_write, store_abort, store_commit };
	struct smtp_peer peer = { .uid = -1 };
	struct conn *c = xcalloc(1, sizeof *c);
	int one = 1;

	(void)l;
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	netaddr_format(sa, peer.addr, sizeof peer.addr);
	/* No DNS here yet: loopback is "localhost", others "unknown". */
	strlcopy(peer.name, is_loopback(sa) ? "localhost" : "unknown", sizeof peer.name);

	c->d = d;
	c->cfg = d->cfg;
	c->cfg->refs++;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_disable(c->bev, EV_WRITE);
	c->replies = evbuffer_new();
	store.ctx = c;
	c->session = smtp_session_new(cfg, &peer, &store, c->replies);
	LIST_INSERT_HEAD(&d->conns, c, entry);
	d->nconns++;
	c->count = client_count_get(d, peer.addr);
	c->count->n++;

	if (!netaddr_cidr_list_match(cfg->clients, cfg->nclients, sa)) {
		log_info("smtp %s: refused reason=clients", peer.addr);
		conn_refuse(c, "554 5.7.1 %s: access denied for %s", peer.addr);
	} else if (d->nconns > cfg->max_connections) {
		log_warn("smtp %s: refused reason=max-connections (%u)", peer.addr, cfg->max_connections);
		conn_refuse(c, "421 4.7.0 %s: too many connections, try again later%s", "");
	} else if (c->count->n > cfg->max_connections_per_client) {
		log_warn("smtp %s: refused reason=max-connections-per-client (%u)", peer.addr,
		    cfg->max_connections_per_client);
		conn_refuse(c, "421 4.7.0 %s: too many connections from %s, try again later", peer.addr);
	} else {
		log_debug("smtp %s: connect", peer.addr);
		smtp_session_greet(c->session);
		conn_process(c);
	}
}

/* --- listeners ---------------------------------------------------------- */

static int
listen_socket(const struct listen_addr *la, struct err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, la->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(la->port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, la->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(la->port);
		len = sizeof(struct sockaddr_in6);
	} else
		return err_set(err, "listen %s: not a numeric address", la->host);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(err, "listen %s:%u: socket", la->host, la->port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)   /* [::] and 0.0.0.0 can then both be bound */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		err_sys(err, "listen %s%s%s:%u", ss.ss_family == AF_INET6 ? "[" : "", la->host,
		    ss.ss_family == AF_INET6 ? "]" : "", la->port);
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind every listener (still as root when started so).  fds[i] per listen. */
static int
bind_all(const struct config *cfg, int *fds, struct err *err)
{
	for (size_t i = 0; i < cfg->nlisten; i++) {
		fds[i] = listen_socket(&cfg->listen[i], err);
		if (fds[i] < 0) {
			while (i-- > 0)
				close(fds[i]);
			return -1;
		}
	}
	return 0;
}

static void on_accept_error(struct evconnlistener *, void *);

static void
start_listeners(struct daemon *d, const int *fds)
{
	const struct config *cfg = d->cfg->cfg;

	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct listener *l = xcalloc(1, sizeof *l);
		const struct listen_addr *la = &cfg->listen[i];
		bool v6 = strchr(la->host, ':') != NULL;

		l->ev = evconnlistener_new(d->base, on_accept, d,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		evconnlistener_set_error_cb(l->ev, on_accept_error);
		snprintf(l->text, sizeof l->text, "%s%s%s:%u", v6 ? "[" : "", la->host, v6 ? "]" : "",
		    la->port);
		LIST_INSERT_HEAD(&d->listeners, l, entry);
		log_info("listening on %s", l->text);
	}
}

/* accept() failed.  Out of descriptors or memory, the pending connection
 * stays in the backlog and the listener stays readable: stop listening for a
 * moment instead of spinning, and serve the sessions we have. */
static void
on_accept_error(struct evconnlistener *ev, void *arg)
{
	struct daemon *d = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval pause = { ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000 };
	struct listener *l;

	(void)ev;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warn("accept: %s", strerror(e));
		return;
	}
	if (evtimer_pending(d->accept_pause, NULL))
		return;
	log_warn("accept: %s; not accepting connections for %d ms", strerror(e), ACCEPT_PAUSE_MS);
	LIST_FOREACH(l, &d->listeners, entry)
		evconnlistener_disable(l->ev);
	evtimer_add(d->accept_pause, &pause);
}

static void
on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct listener *l;

	(void)fd;
	(void)what;
	LIST_FOREACH(l, &d->listeners, entry)
		evconnlistener_enable(l->ev);
}

static void
stop_listeners(struct daemon *d)
{
	struct listener *l;

	while ((l = LIST_FIRST(&d->listeners)) != NULL) {
		LIST_REMOVE(l, entry);
		evconnlistener_free(l->ev);
		free(l);
	}
}

/* --- signals ------------------------------------------------------------ */

static void
daemon_maybe_exit(struct daemon *d)
{
	if (d->stopping && d->nconns == 0 && !scheduler_busy(d->scheduler))
		event_base_loopexit(d->base, NULL);
}

static void
on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct conn *c, *next;

	(void)fd;
	(void)what;
	/* Whatever is still unfinished was never acknowledged: drop it. */
	for (c = LIST_FIRST(&d->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->gone)
			continue;
		if (!c->closing)
			log_info("smtp: abandoning an unfinished session at shutdown");
		conn_free(c);
	}
	daemon_maybe_exit(d);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct conn *c, *next;
	struct timeval grace = { SHUTDOWN_GRACE_SECONDS, 0 };

	(void)what;
	if (d->stopping)
		return;
	log_info("signal %d: shutting down", (int)sig);
	d->stopping = true;
	evtimer_del(d->accept_pause);
	stop_listeners(d);
	scheduler_stop(d->scheduler);   /* workers end; their messages stay queued */
	for (c = LIST_FIRST(&d->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->closing || c->gone)
			continue;
		if (smtp_session_shutdown(c->session))
			conn_close_when_flushed(c);
	}
	d->grace_timer = evtimer_new(d->base, on_grace_over, d);
	evtimer_add(d->grace_timer, &grace);
	daemon_maybe_exit(d);
}

/* Things a reload cannot change in a running daemon. */
static void
warn_restart_needed(const struct config *old, const struct config *new)
{
	bool same_listen = old->nlisten == new->nlisten;

	for (size_t i = 0; same_listen && i < old->nlisten; i++)
		same_listen = strcmp(old->listen[i].host, new->listen[i].host) == 0 &&
		    old->listen[i].port == new->listen[i].port;
	if (!same_listen)
		log_warn("reload: listen changed; it takes effect at the next restart");
	if (strcmp(old->spool, new->spool) != 0)
		log_warn("reload: spool changed; it takes effect at the next restart");
	if (strcmp(old->user, new->user) != 0)
		log_warn("reload: user changed; it takes effect at the next restart");
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *cfg;
	struct err err = { "" };

	(void)sig;
	(void)what;
	if (config_load(d->config_path, &cfg, &err) < 0) {
		char *line, *save = NULL;

		log_err("reload failed; keeping the running configuration:");
		for (line = strtok_r(err.msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_err("reload failed: %s", line);
		return;
	}
	warn_restart_needed(d->cfg->cfg, cfg);
	config_ref_drop(d->cfg);
	d->cfg = config_ref_new(cfg);
	log_set_level(cfg->log_level);
	scheduler_set_config(d->scheduler, cfg);
	log_info("configuration reloaded from %s", d->config_path);
}

/* --- start-up ----------------------------------------------------------- */

/* nftw has no context argument: the owner to give the spool to. */
static uid_t spool_uid;
static gid_t spool_gid;
static const char *maildrop_prefix;

static int
chown_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t n = strlen(maildrop_prefix);

	(void)type;
	(void)ftw;
	/* Files in maildrop/ belong to the users who dropped them. */
	if (strncmp(path, maildrop_prefix, n) == 0 && path[n] == '/')
		return 0;
	if ((st->st_uid != spool_uid || st->st_gid != spool_gid) &&
	    lchown(path, spool_uid, spool_gid) < 0)
		return -1;
	return 0;
}

/* Started as root with `user` set: hand the spool to that user (all of it:
 * root's sendmail may have created it, and files in it, before any daemon
 * ran), then become that user. */
static int
drop_privileges(const struct config *cfg, struct err *err)
{
	struct passwd *pw;
	char *maildrop;
	int rc;

	if (geteuid() != 0 || cfg->user[0] == '\0')
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL)
		return err_set(err, "user %s does not exist (create it, or set user = empty "
		    "to keep running as root)", cfg->user);
	spool_uid = pw->pw_uid;
	spool_gid = pw->pw_gid;
	maildrop = xasprintf("%s/maildrop", cfg->spool);
	maildrop_prefix = maildrop;
	rc = nftw(cfg->spool, chown_entry, 16, FTW_PHYS | FTW_MOUNT);
	maildrop_prefix = NULL;
	free(maildrop);
	if (rc != 0)
		return err_sys(err, "cannot give the spool %s to user %s", cfg->spool, cfg->user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return err_sys(err, "cannot become user %s", cfg->user);
	if (setuid(0) == 0)
		return err_set(err, "could regain root after dropping to %s", cfg->user);
	return 0;
}

static int
write_pid(int fd)
{
	char pid[32];

	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid))
		return -1;
	return 0;
}

/* One daemon per spool: an exclusive lock on SPOOL/serve.pid, kept open (the
 * lock belongs to the open file, so it survives the fork of detach()). */
static int
lock_spool(const struct config *cfg, struct err *err)
{
	char *path = xasprintf("%s/serve.pid", cfg->spool);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		err_sys(err, "%s", path);
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err_set(err, "another mailredir serve is running on %s", cfg->spool);
		close(fd);
		fd = -1;
		goto fail;
	}
	if (write_pid(fd) < 0) {
		err_sys(err, "%s", path);
		close(fd);
		fd = -1;
	}
fail:
	free(path);
	return fd;
}

static int
detach(struct err *err)
{
	int fd;

	switch (fork()) {
	case -1:
		return err_sys(err, "fork");
	case 0:
		break;
	default:
		_exit(0);
	}
	setsid();
	if (chdir("/") < 0)
		return err_sys(err, "chdir /");
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The committer imported maildrop files: they are due now. */
/* New mail is tried at once: as soon as it is in queue/. */
static void
on_queued(void *arg, const char *id)
{
	struct daemon *d = arg;

	if (d->scheduler != NULL)
		scheduler_add(d->scheduler, id);
}

static void
on_maildrop_import(void *arg)
{
	struct daemon *d = arg;

	if (d->scheduler != NULL)
		scheduler_rescan(d->scheduler);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)sig;
	(void)what;
	scheduler_reap(d->scheduler);
	daemon_maybe_exit(d);
}

/* --- the control socket (control.h) ------------------------------------- */

/* One client of the control socket.  A flush answers later: if the client
 * has gone by then, only this struct is left, freed by the answer. */
struct control_conn {
	struct daemon *d;
	struct bufferevent *bev;        /* NULL once the client has gone */
	bool waiting;                   /* a flush is pending for it */
};

static void
control_conn_close(struct control_conn *cc)
{
	if (cc->bev != NULL)
		bufferevent_free(cc->bev);
	cc->bev = NULL;
	if (!cc->waiting)
		free(cc);
}

static void
control_answer(struct control_conn *cc, const char *fmt, unsigned n)
{
	evbuffer_add_printf(bufferevent_get_output(cc->bev), fmt, n);
	bufferevent_disable(cc->bev, EV_READ);   /* closed once the answer is written */
}

static void
on_flush_done(void *arg, unsigned left)
{
	struct control_conn *cc = arg;

	cc->waiting = false;
	if (cc->bev == NULL)
		free(cc);
	else
		control_answer(cc, "done %u\n", left);
}

static void
on_control_read(struct bufferevent *bev, void *arg)
{
	struct control_conn *cc = arg;
	struct daemon *d = cc->d;
	size_t len;
	char *line = evbuffer_readln(bufferevent_get_input(bev), &len, EVBUFFER_EOL_LF);

	if (line == NULL) {
		if (evbuffer_get_length(bufferevent_get_input(bev)) > CONTROL_LINE_MAX)
			control_conn_close(cc);
		return;
	}
	if (cc->waiting)
		;                       /* one request per connection */
	else if (strcmp(line, "flush") == 0 && !d->stopping) {
		cc->waiting = true;
		scheduler_flush(d->scheduler, on_flush_done, cc);
	} else if (strcmp(line, "rescan") == 0) {
		scheduler_rescan(d->scheduler);
		control_answer(cc, "ok\n", 0);
	} else
		control_answer(cc, "error %u unknown request or shutting down\n", 0);
	free(line);
}

static void
on_control_write(struct bufferevent *bev, void *arg)
{
	struct control_conn *cc = arg;

	(void)bev;
	if (!cc->waiting)
		control_conn_close(cc);
}

static void
on_control_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	control_conn_close(arg);
}

static void
on_control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
    void *arg)
{
	struct daemon *d = arg;
	struct control_conn *cc = xcalloc(1, sizeof *cc);

	cc->d = d;
	(void)l;
	(void)sa;
	(void)len;
	cc->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(cc->bev, on_control_read, on_control_write, on_control_event, cc);
	bufferevent_enable(cc->bev, EV_READ);
}

static int
control_listen(struct daemon *d, struct err *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;

	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "%s/%s", d->cfg->cfg->spool,
	    CONTROL_NAME) >= sizeof sun.sun_path)
		return err_set(err, "%s/%s: path too long for a socket", d->cfg->cfg->spool,
		    CONTROL_NAME);
	unlink(sun.sun_path);       /* left by a daemon that was killed; the spool lock is ours */
	old = umask(077);
	d->control = evconnlistener_new_bind(d->base, on_control_accept, d,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (d->control == NULL)
		return err_sys(err, "control socket %s", sun.sun_path);
	return 0;
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_err("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static int
daemon_run(struct daemon *d, const int *fds)
{
	static const struct committer_hooks hooks = { on_queued, on_maildrop_import };
	struct event *sigterm, *sigint, *sighup, *sigchld;
	struct err err = { "" };

	event_set_log_callback(libevent_log);
	d->base = event_base_new();
	if (d->base == NULL ||
	    committer_new(d->base, d->spool, &hooks, d, &d->committer, &err) < 0 ||
	    scheduler_new(d->base, d->spool, d->config_path, !d->foreground, d->cfg->cfg,
	    &d->scheduler, &err) < 0 || control_listen(d, &err) < 0) {
		log_err("cannot start: %s", d->base ? err.msg : "event_base_new failed");
		return 71;
	}
	d->accept_pause = evtimer_new(d->base, on_accept_resume, d);
	sigterm = evsignal_new(d->base, SIGTERM, on_sigterm, d);
	sigint = evsignal_new(d->base, SIGINT, on_sigterm, d);
	sighup = evsignal_new(d->base, SIGHUP, on_sighup, d);
	sigchld = evsignal_new(d->base, SIGCHLD, on_sigchld, d);
	event_add(sigchld, NULL);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_add(sighup, NULL);
	start_listeners(d, fds);
	event_base_dispatch(d->base);

	committer_free(d->committer);
	evconnlistener_free(d->control);
	{
		char *path = xasprintf("%s/%s", d->cfg->cfg->spool, CONTROL_NAME);

		unlink(path);
		free(path);
	}
	scheduler_free(d->scheduler);
	event_free(sigchld);
	if (d->grace_timer != NULL)
		event_free(d->grace_timer);
	event_free(d->accept_pause);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_base_free(d->base);
	log_info("stopped");
	return 0;
}

/* Workers and reloads read the file after detach() changed to "/". */
static char *
absolute_path(const char *path)
{
	char *abs = realpath(path, NULL);

	return abs != NULL ? abs : xstrdup(path);
}

int
daemon_main(struct config *cfg, const struct daemon_opts *opts)
{
	char *config_path = absolute_path(opts->config_path);
	struct daemon d = { .config_path = config_path, .foreground = opts->foreground,
		.proxy = opts->proxy };
	struct err err = { "" };
	int *fds = xcalloc(cfg->nlisten + 1, sizeof *fds);
	int lock_fd = -1, rc = 75, recovered;

	log_open(opts->foreground, cfg->log_level);
	d.cfg = config_ref_new(cfg);
	LIST_INIT(&d.listeners);
	LIST_INIT(&d.conns);
	LIST_INIT(&d.counts);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	if (bind_all(cfg, fds, &err) < 0) {
		log_err("cannot start: %s", err.msg);
		rc = 69;
		goto out;
	}
	if (spool_open(cfg->spool, true, &d.spool, &err) < 0 ||
	    (lock_fd = lock_spool(cfg, &err)) < 0 || drop_privileges(cfg, &err) < 0 ||
	    spool_journal_open(d.spool, &err) < 0 ||
	    (recovered = spool_recover(d.spool, &err)) < 0) {
		log_err("cannot start: %s", err.msg);
		for (size_t i = 0; i < cfg->nlisten; i++)
			close(fds[i]);
		goto out;
	}
	if (recovered > 0)
		log_warn("spool: removed %d message%s that were being received when the "
		    "last process stopped (none of them had been acknowledged)",
		    recovered, recovered == 1 ? "" : "s");
	if (!opts->foreground) {
		if (detach(&err) < 0) {
			log_err("cannot start: %s", err.msg);
			goto out;
		}
		log_open(0, cfg->log_level);
		if (write_pid(lock_fd) < 0)
			log_warn("cannot write %s/serve.pid: %s", cfg->spool, strerror(errno));
	}
	rc = daemon_run(&d, fds);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	spool_close(d.spool);
	config_ref_drop(d.cfg);
	free(fds);
	free(config_path);
	return rc;
}
