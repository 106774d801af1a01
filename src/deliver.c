/* deliver.c - delivery attempts and what they mean for a message; see
 * deliver.h.
 *
 * A message is claimed (locked) before anything is sent and its envelope is
 * saved after every attempt, so a crash at any point leaves it queued: at
 * worst a message whose final "." was answered but not yet recorded is sent
 * again (the one duplicate SMTP cannot rule out).  Recipients already sent
 * are never sent again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "identity.h"
#include "log.h"
#include "login_gate.h"
#include "login_state.h"
#include "report.h"
#include "route.h"
#include "smtp_client.h"
#include "util.h"

struct deliver_session;
static void report(struct deliver_stats *, const char *id, enum deliver_result, int64_t next_try);
static void forget_reports(struct deliver_session *);

/* One route's session for the messages of a run, opened on first need. */
struct route_session {
	const struct route *route;
	struct smtp_client *client;
	unsigned carried;              /* messages the open session has carried */
	bool failed;                   /* could not open: defer the rest at once */
	uint64_t login_at;             /* login-before-smtp: when the last login ended */
	struct smtp_outcome open_outcome;
	struct smtp_client_info open_info;  /* as far as the failed session got */
};

uint64_t
deliver_retry_delay_ms(const struct retry_policy *policy, unsigned attempts)
{
	if (attempts == 0)
		return 0;
	if (attempts <= policy->nsteps)
		return policy->steps_ms[attempts - 1];
	return policy->max_ms;
}

const char *
deliver_envelope_from(const struct route *route, const char *original)
{
	if (route == NULL)
		return original;
	if (original[0] == '\0')
		return route->bounce_from != NULL ? route->bounce_from : "";
	return route->envelope_from != NULL ? route->envelope_from : original;
}

/* The delivery log line of PRODUCT.md §9, built here only. */
static void
log_delivery(const struct envelope *env, const struct envelope_rcpt *rcpt, const char *from,
    const struct route *route, const struct smtp_client_info *info, time_t now)
{
	char delay[32];

	snprintf(delay, sizeof delay, "%.1f", difftime(now, (time_t)env->created));
	log_info("%s: to=<%s>, from=<%s>, envelope-from=<%s>, route=%s, relay=%s, tls=%s, "
	    "auth=%s, delay=%s, attempts=%u, status=%s (%s)", env->id, rcpt->address,
	    env->sender, from, route != NULL ? route->name : "none",
	    info->relay[0] ? info->relay : "none", info->tls ? info->tls_info.version : "none",
	    info->auth_mech[0] ? info->auth_mech : "none", delay,
	    env->attempts, rcpt_status_name(rcpt->status), rcpt->reply ? rcpt->reply : "");
}

static void
set_reply(char **field, const char *text)
{
	free(*field);
	*field = xstrdup(text);
}

static enum rcpt_status
rcpt_status_of(enum delivery_status s)
{
	return s == DELIVERY_SENT ? RCPT_SENT : s == DELIVERY_FAILED ? RCPT_FAILED : RCPT_DEFERRED;
}

static bool
rcpt_open(const struct envelope_rcpt *r)
{
	return r->status == RCPT_PENDING || r->status == RCPT_DEFERRED;
}

/* The spool keeps next-try in seconds: a back-off is rounded up, and is
 * never 0 (a sub-second step must not retry in a tight loop). */
static int64_t
delay_seconds(uint64_t ms)
{
	return ms <= 1000 ? 1 : (int64_t)((ms + 999) / 1000);
}

/* The retry policy a message follows: that of the route its first open
 * recipient took (routes may override retry and max-age), else the global
 * one. */
static const struct retry_policy *
message_policy(const struct config *cfg, const struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct route *r;

		if (rcpt_open(&env->rcpts[i]) && env->rcpts[i].route != NULL &&
		    (r = config_find_route(cfg, env->rcpts[i].route)) != NULL)
			return &r->retry;
	}
	return &cfg->retry;
}

/* max-age has passed: every open recipient that has a route fails, with its
 * last reply kept.  One that no route takes waits for a configuration
 * that routes it (it was never tried).  Returns whether any is still open. */
static bool
give_up(struct envelope *env)
{
	bool open = false;

	for (size_t i = 0; i < env->nrcpts; i++) {
		struct envelope_rcpt *r = &env->rcpts[i];
		char *why;

		if (!rcpt_open(r))
			continue;
		if (r->route == NULL) {
			open = true;
			continue;
		}
		why = xasprintf(REPORT_GAVE_UP "%s", r->reply ? r->reply : "not delivered");
		free(r->reply);
		r->reply = why;
		r->status = RCPT_FAILED;
	}
	return open;
}

/* After an attempt: where the message goes.  Returns the state to move to,
 * or SPOOL_STATE_COUNT when it is done (every recipient sent: remove it).
 * Without an attempt (no recipient had a route) the message waits one
 * first retry step. */
static enum spool_state
settle(const struct config *cfg, struct envelope *env, bool attempted, time_t now)
{
	const struct retry_policy *policy = message_policy(cfg, env);
	bool open = false, failed = false;

	for (size_t i = 0; i < env->nrcpts; i++)
		open = open || rcpt_open(&env->rcpts[i]);
	if (open && (uint64_t)(now - env->created) * 1000 >= policy->max_age_ms)
		open = give_up(env);
	for (size_t i = 0; i < env->nrcpts; i++)
		failed = failed || env->rcpts[i].status == RCPT_FAILED;
	if (open) {
		env->next_try = now + delay_seconds(deliver_retry_delay_ms(policy,
		    attempted && env->attempts > 0 ? env->attempts : 1));
		return SPOOL_QUEUE;
	}
	return failed ? SPOOL_FAILED : SPOOL_STATE_COUNT;
}

static struct smtp_client *
session_get(const struct config *cfg, struct route_session *rs, const struct netio_trace *trace)
{
	if (rs->client != NULL || rs->failed)
		return rs->client;
	if (rs->route->login.proto != LOGIN_NONE &&
	    login_gate_pass(cfg, rs->route, trace, false, 0, &rs->open_outcome, &rs->login_at) < 0) {
		memset(&rs->open_info, 0, sizeof rs->open_info);
		rs->failed = true;                /* the gateway is not contacted */
		return NULL;
	}
	if (smtp_client_open(cfg, rs->route, trace, &rs->client, &rs->open_outcome,
	    &rs->open_info) < 0)
		rs->failed = true;
	return rs->client;
}

static bool
all_relay_denied(const struct smtp_outcome *out, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!out[k].relay_denied)
			return false;
	return n > 0;
}

/* The gateway refused to relay right after a login: the ISP's poprelayd has
 * not caught up.  Log in again and wait longer, doubling the wait that was
 * not enough (at least 1 s) up to LOGIN_GATE_DELAY_CAP_MS, until it relays; the delay
 * that worked (login to acceptance) is kept for the route.  That refusal is
 * never a failure: what is still refused stays deferred, route-level. */
static void
adapt(const struct config *cfg, struct route_session *rs, const struct netio_trace *trace,
    const struct smtp_message *m, struct smtp_outcome *out, struct smtp_outcome *whole,
    struct smtp_client_info *info)
{
	const struct route *r = rs->route;
	uint64_t wait = r->login_delay_ms > 1000 ? r->login_delay_ms : 1000;
	struct login_memory mem;
	struct err err = { "" };
	uint64_t login_at;

	/* the wait that was not enough: login-delay or the delay learnt before */
	if (login_state_load(cfg->spool, r->name, &mem, &err) == 0 && mem.delay_ms > wait)
		wait = mem.delay_ms;
	while (wait < LOGIN_GATE_DELAY_CAP_MS && all_relay_denied(out, m->nrcpts)) {
		wait = wait * 2 < LOGIN_GATE_DELAY_CAP_MS ? wait * 2 : LOGIN_GATE_DELAY_CAP_MS;
		log_info("route %s: the gateway refused to relay after the login (%s): logging in "
		    "again and waiting longer", r->name, out[0].reply);
		smtp_client_close(rs->client);
		rs->client = NULL;
		rs->carried = 0;
		if (login_gate_pass(cfg, r, trace, true, wait, whole, &login_at) < 0 ||
		    smtp_client_open(cfg, r, trace, &rs->client, whole, info) < 0) {
			rs->failed = true;
			for (size_t k = 0; k < m->nrcpts; k++)
				out[k] = *whole;
			return;
		}
		rs->carried = 1;
		if (smtp_client_send(rs->client, m, out, whole) < 0) {
			*info = *smtp_client_info(rs->client);
			smtp_client_close(rs->client);
			rs->client = NULL;
			return;
		}
		*info = *smtp_client_info(rs->client);
		if (!all_relay_denied(out, m->nrcpts))
			login_gate_learn(cfg, r, now_ms() - login_at);
	}
}

/* Send m on the route's session (opened on first need).  A kept session
 * that fails before the gateway took anything of this message -- it closed
 * the connection while we were idle, or answers 421 to go on -- gets one
 * more try on a new session: the gateway never saw the message.  *info is
 * for the log, also when the session ended. */
static void
send_message(const struct config *cfg, struct route_session *rs, const struct netio_trace *trace,
    const struct smtp_message *m, struct smtp_outcome *out, struct smtp_outcome *whole,
    struct smtp_client_info *info)
{
	for (int tries = 0; tries < 2; tries++) {
		struct smtp_client *client = session_get(cfg, rs, trace);
		bool kept = rs->carried > 0;

		if (client == NULL) {
			*whole = rs->open_outcome;
			*info = rs->open_info;
			for (size_t k = 0; k < m->nrcpts; k++)
				out[k] = *whole;
			return;
		}
		rs->carried++;
		if (smtp_client_send(client, m, out, whole) == 0) {
			*info = *smtp_client_info(client);
			if (rs->route->login.proto != LOGIN_NONE && all_relay_denied(out, m->nrcpts))
				adapt(cfg, rs, trace, m, out, whole, info);
			return;
		}
		*info = *smtp_client_info(client);
		smtp_client_close(client);
		rs->client = NULL;       /* the next message opens a new session */
		rs->carried = 0;
		if (!kept || whole->step > STEP_MAIL)
			return;
		log_debug("route %s: the kept gateway session failed before MAIL (%s): "
		    "once more on a new one", rs->route->name, whole->reply);
	}
}

/* One route's share of a message in an attempt: the open recipients
 * that route_select sent its way. */
struct route_share {
	struct route_session *rs;
	const char **rcpts;
	size_t *index;                 /* into env->rcpts */
	size_t n;
};

/* The header as the route presents it (identity.h): from-map when it has
 * an entry for these recipients, else header-from = rewrite, else the
 * message as it is (*head stays NULL).  A header that cannot be rewritten
 * goes as it is, with a warning: the identity is a courtesy, the message
 * is not held back for it. */
static void
route_header(const struct route *route, const struct envelope *env, int content_fd,
    const char *const *rcpts, size_t n, struct identity_header *head)
{
	enum identity_mode mode = IDENTITY_REWRITE;
	const char *address = NULL;
	/* one octet more than the limit: a header that does not end within it
	 * is then refused, not taken as a complete header cut short */
	size_t len = env->size <= IDENTITY_HEADER_MAX ? (size_t)env->size : IDENTITY_HEADER_MAX + 1;
	struct err err = { "" };
	char *content;
	ssize_t got;

	memset(head, 0, sizeof *head);
	if (route->from_map != NULL &&
	    (address = identity_map_lookup(route->from_map, rcpts, n, NULL)) != NULL)
		mode = IDENTITY_MAP;
	else if (route->header_from == HEADER_FROM_REWRITE)
		address = route->envelope_from;
	if (address == NULL)
		return;
	content = xmalloc(len + 1);
	got = pread(content_fd, content, len, 0);
	if (got < 0)
		log_warn("%s: cannot read the header to set its From: %s", env->id, strerror(errno));
	else if (identity_rewrite_header(content, (size_t)got, mode, address, head, &err) < 0)
		log_warn("%s: the header's From: is left as it is: %s", env->id, err.msg);
	free(content);
}

static char *
upcase(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

/* The DSN parameters the client gave, for a share's recipients (smtp_client
 * sends them when the gateway offers DSN). */
struct share_dsn {
	char (*notify)[DSN_NOTIFY_TEXT_MAX];
	const char **notify_of, **orcpt_of;
};

static void
share_dsn_fill(struct share_dsn *d, const struct envelope *env, const struct route_share *share,
    struct smtp_message *m)
{
	d->notify = xcalloc(share->n, sizeof *d->notify);
	d->notify_of = xcalloc(share->n, sizeof *d->notify_of);
	d->orcpt_of = xcalloc(share->n, sizeof *d->orcpt_of);
	for (size_t k = 0; k < share->n; k++) {
		const struct envelope_rcpt *r = &env->rcpts[share->index[k]];

		if (r->notify != 0)
			d->notify_of[k] = upcase(dsn_notify_format(r->notify, d->notify[k],
			    sizeof d->notify[k]));
		d->orcpt_of[k] = r->orcpt;
	}
	m->notify = d->notify_of;
	m->orcpt = d->orcpt_of;
	m->ret = env->ret == DSN_RET_FULL ? "FULL" : env->ret == DSN_RET_HDRS ? "HDRS" : NULL;
	m->envid = env->envid;
}

static void
share_dsn_free(struct share_dsn *d)
{
	free(d->notify);
	free(d->notify_of);
	free(d->orcpt_of);
}

/* Send one route's share; the outcomes go into out[k] for share->rcpts[k]. */
static void
send_share(const struct config *cfg, struct route_share *share, struct spool_msg *msg,
    const struct netio_trace *trace, struct smtp_outcome *out, struct smtp_outcome *whole,
    struct smtp_client_info *info)
{
	const struct envelope *env = spool_msg_envelope(msg);
	const struct route *route = share->rs->route;
	int fd = spool_msg_content_fd(msg);
	struct identity_header head;
	struct share_dsn dsn;
	struct smtp_message m = {
		.envelope_from = deliver_envelope_from(route, env->sender),
		.rcpts = share->rcpts, .nrcpts = share->n,
		.content_fd = fd, .size = env->size,
		.eight_bit = env->body == BODY_8BITMIME, .smtputf8 = env->smtputf8,
	};

	share_dsn_fill(&dsn, env, share, &m);
	route_header(route, env, fd, share->rcpts, share->n, &head);
	if (head.head != NULL) {
		m.head = head.head;
		m.head_len = head.head_len;
		m.body_offset = head.body_offset;
		m.size = head.head_len + env->size - head.body_offset;
	}
	send_message(cfg, share->rs, trace, &m, out, whole, info);
	identity_header_free(&head);
	share_dsn_free(&dsn);
}

/* The reply the message as a whole shows (queue's last error): one that
 * keeps it queued first, then a failure, then any. */
static const char *
message_reply(const struct envelope *env)
{
	static const enum rcpt_status order[] = { RCPT_DEFERRED, RCPT_PENDING, RCPT_FAILED, RCPT_SENT };

	for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
		for (size_t i = 0; i < env->nrcpts; i++)
			if (env->rcpts[i].status == order[o] && env->rcpts[i].reply != NULL)
				return env->rcpts[i].reply;
	return NULL;
}

/* Record a share's outcomes in the envelope. */
static void
record_share(struct envelope *env, const struct route_share *share,
    const struct smtp_outcome *out, struct deliver_stats *stats)
{
	for (size_t k = 0; k < share->n; k++) {
		struct envelope_rcpt *r = &env->rcpts[share->index[k]];

		r->status = rcpt_status_of(out[k].status);
		set_reply(&r->reply, out[k].reply);
		set_reply(&r->route, share->rs->route->name);
		stats->sent += r->status == RCPT_SENT;
		stats->deferred += r->status == RCPT_DEFERRED;
		stats->failed += r->status == RCPT_FAILED;
	}
}

/* Split the open recipients by route: shares[i] for sessions[i]; those no
 * route takes keep their status, with the reason as their reply.  Returns
 * how many have no route.  With `only`, the other routes' recipients (and
 * those without a route) are left as they are. */
static size_t
split_by_route(const struct config *cfg, struct route_session *sessions, struct envelope *env,
    struct route_share *shares, const struct route *only)
{
	size_t unrouted = 0;

	for (size_t i = 0; i < cfg->nroutes; i++) {
		shares[i].rs = &sessions[i];
		shares[i].rcpts = xcalloc(env->nrcpts, sizeof *shares[i].rcpts);
		shares[i].index = xcalloc(env->nrcpts, sizeof *shares[i].index);
		shares[i].n = 0;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		struct envelope_rcpt *r = &env->rcpts[i];
		char why[ROUTE_WHY_MAX];
		const struct route *route;
		struct route_share *share;

		if (!rcpt_open(r))
			continue;
		route = route_select(cfg, env->route, env->sender, r->address, why, sizeof why);
		if (only != NULL && route != only)
			continue;
		if (route == NULL) {
			char *text = xasprintf("no route: %s", why);

			free(r->reply);
			r->reply = text;
			free(r->route);
			r->route = NULL;
			unrouted++;
			continue;
		}
		share = &shares[route - cfg->routes];
		share->index[share->n] = i;
		share->rcpts[share->n++] = r->address;
	}
	return unrouted;
}

/* A delivery session: the route's gateway session outlives a run, so a
 * worker carries many batches over one connection. */
struct deliver_session {
	const struct config *cfg;
	struct spool *spool;
	const struct netio_trace *trace;
	struct route_session *sessions;   /* one per route, in config order */
	const struct route *only;         /* flush ROUTE: that route's recipients alone */
	char **reports;                   /* reports queued by this session's runs */
	size_t nreports, reports_cap;
};

/* The delay-warning that applies to a message: its first open recipient's
 * route's, else the global one. */
static uint64_t
delay_warning_of(const struct config *cfg, const struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct route *r;

		if (rcpt_open(&env->rcpts[i]) && env->rcpts[i].route != NULL &&
		    (r = config_find_route(cfg, env->rcpts[i].route)) != NULL)
			return r->delay_warning_ms;
	}
	return cfg->delay_warning_ms;
}

static bool
any_sent(const struct envelope *env)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].status == RCPT_SENT)
			return true;
	return false;
}

/* After an attempt (env settled, not yet saved): queue the report it calls
 * for (report.h).  A message still queued gets its one delay warning when
 * its time has come; delay_warned is set in env either way. */
static void
make_report(struct deliver_session *ds, struct spool_msg *msg, const struct report_rcpt_state *st,
    bool still_queued, enum deliver_mode mode, time_t now, struct deliver_stats *stats)
{
	struct envelope *env = spool_msg_envelope_mut(msg);
	uint64_t warn_ms = delay_warning_of(ds->cfg, env);
	bool warn = still_queued && !env->delay_warned && warn_ms > 0 &&
	    (uint64_t)(now - env->created) * 1000 >= warn_ms;
	struct report_item *items = xcalloc(env->nrcpts, sizeof *items);
	size_t n = report_select(env, st, warn, mode == DELIVER_PROXY && !any_sent(env), items);
	const struct envelope_rcpt *first = n > 0 ? &env->rcpts[items[0].rcpt] : NULL;
	const struct route *r = first && first->route ? config_find_route(ds->cfg, first->route) : NULL;
	const char *to = n > 0 ? report_to(ds->cfg, r, env) : NULL;
	char id[ENVELOPE_ID_MAX + 1];
	struct err err = { "" };

	if (warn)
		env->delay_warned = true;
	if (to == NULL)
		goto done;
	if (report_queue(ds->cfg, ds->spool, env, spool_msg_content_fd(msg), r, to, items, n, now,
	    id, &err) < 0) {
		log_err("%s: could not queue a delivery status notification: %s", env->id, err.msg);
		goto done;
	}
	log_info("%s: %s notification: %s to <%s> (%zu recipient%s)", env->id,
	    dsn_action_name(items[0].action), id, to, n, n == 1 ? "" : "s");
	ds->reports = xgrow(ds->reports, &ds->reports_cap, ds->nreports, sizeof *ds->reports);
	ds->reports[ds->nreports++] = xstrdup(id);
	report(stats, id, RESULT_QUEUE, 0);     /* the daemon schedules it */
done:
	free(items);
}

/* One attempt at one claimed message: each route's share on that route's
 * session; *line says where the message stands after. */
static void
attempt(struct deliver_session *ds, struct spool_msg *msg, enum deliver_mode mode,
    struct deliver_stats *stats, struct deliver_line *line)
{
	const struct config *cfg = ds->cfg;
	struct envelope *env = spool_msg_envelope_mut(msg);
	struct route_share *shares = xcalloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *shares);
	struct smtp_outcome *out = xcalloc(env->nrcpts, sizeof *out);
	struct smtp_client_info *info = xcalloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *info);
	struct report_rcpt_state *st = xcalloc(env->nrcpts, sizeof *st);
	size_t unrouted;
	bool attempted = false;
	time_t now;

	for (size_t i = 0; i < env->nrcpts; i++)
		st[i].was_open = rcpt_open(&env->rcpts[i]);
	unrouted = split_by_route(cfg, ds->sessions, env, shares, ds->only);
	if (ds->only != NULL && shares[ds->only - cfg->routes].n == 0) {
		/* nothing for this route: the message is not touched */
		line->result = RESULT_QUEUE;
		line->next_try = env->next_try;
		goto out;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		struct smtp_outcome whole = { .status = DELIVERY_DEFERRED, .step = STEP_CONNECT,
		    .route_level = true };

		if (shares[i].n == 0)
			continue;
		send_share(cfg, &shares[i], msg, ds->trace, out, &whole, &info[i]);
		record_share(env, &shares[i], out, stats);
		for (size_t k = 0; k < shares[i].n; k++)
			st[shares[i].index[k]].plain_gateway = !info[i].caps.dsn;
		attempted = true;
	}
	now = time(NULL);
	if (attempted) {
		env->attempts++;
		env->last_try = now;
	}
	set_reply(&env->last_reply, message_reply(env) ? message_reply(env) : "");
	if (unrouted > 0)
		log_info("%s: %zu recipient%s not sent: no route takes %s", env->id, unrouted,
		    unrouted == 1 ? "" : "s", unrouted == 1 ? "it" : "them");
	/* Settle first: a recipient failed by max-age is logged as failed. */
	{
		enum spool_state to = settle(cfg, env, attempted, now);
		struct err err = { "" };
		int rc;

		for (size_t i = 0; i < cfg->nroutes; i++)
			for (size_t k = 0; k < shares[i].n; k++)
				log_delivery(env, &env->rcpts[shares[i].index[k]],
				    deliver_envelope_from(shares[i].rs->route, env->sender),
				    shares[i].rs->route, &info[i], now);
		make_report(ds, msg, st, to == SPOOL_QUEUE, mode, now, stats);
		if (to == SPOOL_STATE_COUNT)
			rc = spool_msg_remove_delivered(ds->spool, msg, &err);
		else if ((rc = spool_msg_save(msg, &err)) == 0 && to != SPOOL_QUEUE)
			rc = spool_msg_move(msg, to, &err);
		if (rc < 0)
			log_err("%s: could not record the delivery attempt: %s", env->id, err.msg);
		line->result = to == SPOOL_STATE_COUNT ? RESULT_DONE :
		    to == SPOOL_FAILED ? RESULT_FAILED : RESULT_QUEUE;
		line->next_try = to == SPOOL_QUEUE ? env->next_try : 0;
	}
out:
	free(out);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		free(shares[i].rcpts);
		free(shares[i].index);
	}
	free(shares);
	free(info);
	free(st);
}

/* Does text start with a reply code of this class ("4dd " / "5dd ")? */
static bool
has_code(const char *text, char class)
{
	return text[0] == class && text[1] >= '0' && text[1] <= '9' && text[2] >= '0' &&
	    text[2] <= '9' && text[3] == ' ';
}

/* buf = prefix + text, one printable ASCII line of at most size - 1 octets. */
static void
verdict_line(char *buf, size_t size, const char *prefix, const char *text)
{
	snprintf(buf, size, "%s%s", prefix, text);
	for (char *p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
			*p = '?';
}

/* The reply of the first recipient in this state (or "" when none has one). */
static const char *
reply_of_first(const struct envelope *env, bool (*in_state)(const struct envelope_rcpt *))
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (in_state(&env->rcpts[i]) && env->rcpts[i].reply != NULL)
			return env->rcpts[i].reply;
	return env->last_reply != NULL ? env->last_reply : "";
}

static bool
rcpt_failed(const struct envelope_rcpt *r)
{
	return r->status == RCPT_FAILED;
}

void
deliver_proxy_verdict(const struct deliver_line *line, const struct envelope *env, char *buf,
    size_t size)
{
	size_t sent = 0, open = 0;

	if (line->result == RESULT_DONE) {
		snprintf(buf, size, "250 2.0.0 Ok: delivered as %s", line->id);
		return;
	}
	if (env == NULL || (line->result != RESULT_QUEUE && line->result != RESULT_FAILED)) {
		snprintf(buf, size, "250 2.0.0 Ok: queued as %s", line->id);
		return;
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		sent += env->rcpts[i].status == RCPT_SENT;
		open += rcpt_open(&env->rcpts[i]);
	}
	if (sent > 0) {
		snprintf(buf, size, "250 2.0.0 Ok: queued as %s; delivered to %zu of %zu "
		    "recipients, the rest %s", line->id, sent, env->nrcpts,
		    open > 0 ? "will be retried" : "get a bounce");
	} else if (open > 0) {
		const char *text = reply_of_first(env, rcpt_open);

		verdict_line(buf, size, has_code(text, '4') ? "" : "451 4.4.0 ", text);
	} else {
		const char *text = reply_of_first(env, rcpt_failed);

		verdict_line(buf, size, has_code(text, '5') ? "" : "554 5.0.0 ", text);
	}
}

static const char *const mode_names[] = {
	[DELIVER_DUE] = "due", [DELIVER_FORCE] = "force", [DELIVER_PROXY] = "proxy",
};

const char *
deliver_mode_name(enum deliver_mode m)
{
	return m < DELIVER_MODE_COUNT ? mode_names[m] : "?";
}

static const char *const result_names[] = {
	[RESULT_QUEUE] = "queue", [RESULT_FAILED] = "failed", [RESULT_DONE] = "done",
	[RESULT_BUSY] = "busy", [RESULT_GONE] = "gone",
};

void
deliver_line_format(const struct deliver_line *l, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s %lld\n", l->id, result_names[l->result], (long long)l->next_try);
}

/* Strict: one space between fields, a canonical decimal (no sign, no
 * leading zero), so that every line parsed formats back to itself. */
int
deliver_line_parse(const char *line, size_t len, struct deliver_line *out)
{
	const char *end = line + len, *sp1, *sp2;
	int64_t next = 0;

	if (memchr(line, '\0', len) != NULL || (sp1 = memchr(line, ' ', len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL ||
	    (size_t)(sp1 - line) > ENVELOPE_ID_MAX || sp2 + 1 == end)
		return -1;
	memcpy(out->id, line, (size_t)(sp1 - line));
	out->id[sp1 - line] = '\0';
	if (!spool_id_valid(out->id) || (sp2[1] == '0' && sp2 + 2 != end))
		return -1;
	for (const char *p = sp2 + 1; p < end; p++) {
		if (*p < '0' || *p > '9' || next > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		next = next * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++)
		if ((size_t)(sp2 - sp1 - 1) == strlen(result_names[i]) &&
		    memcmp(sp1 + 1, result_names[i], strlen(result_names[i])) == 0) {
			out->result = (enum deliver_result)i;
			out->next_try = next;
			return 0;
		}
	return -1;
}

static void
report(struct deliver_stats *stats, const char *id, enum deliver_result result, int64_t next_try)
{
	struct deliver_line line = { .result = result, .next_try = next_try };

	if (stats->report == NULL)
		return;
	strlcopy(line.id, id, sizeof line.id);
	stats->report(stats->report_ctx, &line);
}

static int
list_due(struct spool *spool, char ***ids, size_t *n, struct err *err)
{
	struct spool_entry *entries;
	size_t count, k = 0;

	if (spool_list(spool, &entries, &count, err) < 0)
		return -1;
	*ids = xcalloc(count ? count : 1, sizeof **ids);
	for (size_t i = 0; i < count; i++)
		if (entries[i].state == SPOOL_QUEUE)
			(*ids)[k++] = xstrdup(entries[i].id);
	free(entries);
	*n = k;
	return 0;
}

struct deliver_session *
deliver_session_new(const struct config *cfg, struct spool *spool, const struct netio_trace *trace)
{
	struct deliver_session *ds = xcalloc(1, sizeof *ds);

	ds->cfg = cfg;
	ds->spool = spool;
	ds->trace = trace;
	ds->sessions = xcalloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *ds->sessions);
	for (size_t i = 0; i < cfg->nroutes; i++)
		ds->sessions[i].route = &cfg->routes[i];
	return ds;
}

/* A new run tries to connect again after a failed one. */
static void
session_refresh(struct deliver_session *ds)
{
	for (size_t i = 0; i < ds->cfg->nroutes; i++)
		ds->sessions[i].failed = false;
}

void
deliver_session_run(struct deliver_session *ds, const char *const *ids, size_t nids,
    enum deliver_mode mode, struct deliver_stats *stats)
{
	stats->messages = stats->sent = stats->deferred = stats->failed = stats->busy = 0;
	forget_reports(ds);
	session_refresh(ds);
	for (size_t i = 0; i < nids; i++) {
		struct deliver_line line = { .result = RESULT_GONE };
		struct spool_msg *msg;
		struct err cerr = { "" };
		int r = spool_claim(ds->spool, ids[i], &msg, &cerr);

		if (r == 1) {
			stats->busy++;
			report(stats, ids[i], RESULT_BUSY, 0);
			continue;
		}
		if (r < 0) {
			log_debug("%s: skipped: %s", ids[i], cerr.msg);
			report(stats, ids[i], RESULT_GONE, 0);
			continue;
		}
		if (spool_msg_state(msg) != SPOOL_QUEUE) {
			line.result = RESULT_GONE;
		} else if (mode == DELIVER_DUE && spool_msg_envelope(msg)->next_try > time(NULL)) {
			line.result = RESULT_QUEUE;
			line.next_try = spool_msg_envelope(msg)->next_try;
		} else {
			stats->messages++;
			attempt(ds, msg, mode, stats, &line);
		}
		spool_msg_free(msg);
		report(stats, ids[i], line.result, line.next_try);
	}
}

/* The reports of the previous run: deliver_run has taken what it wanted. */
static void
forget_reports(struct deliver_session *ds)
{
	for (size_t i = 0; i < ds->nreports; i++)
		free(ds->reports[i]);
	ds->nreports = 0;
}

bool
deliver_session_connected(const struct deliver_session *ds)
{
	for (size_t i = 0; i < ds->cfg->nroutes; i++)
		if (ds->sessions[i].client != NULL)
			return true;
	return false;
}

void
deliver_session_quit(struct deliver_session *ds)
{
	for (size_t i = 0; i < ds->cfg->nroutes; i++) {
		smtp_client_close(ds->sessions[i].client);
		ds->sessions[i].client = NULL;
		ds->sessions[i].carried = 0;
	}
}

void
deliver_session_free(struct deliver_session *ds)
{
	if (ds == NULL)
		return;
	deliver_session_quit(ds);
	forget_reports(ds);
	free(ds->reports);
	free(ds->sessions);
	free(ds);
}

int
deliver_run(const struct config *cfg, struct spool *spool, const char *const *ids, size_t nids,
    bool force, const struct route *only, struct deliver_stats *stats,
    const struct netio_trace *trace, struct err *err)
{
	struct deliver_session *ds;
	char **listed = NULL;
	size_t nlisted = 0;

	if (ids == NULL) {
		if (list_due(spool, &listed, &nlisted, err) < 0)
			return -1;
		ids = (const char *const *)listed;
		nids = nlisted;
	}
	ds = deliver_session_new(cfg, spool, trace);
	ds->only = only;
	deliver_session_run(ds, ids, nids, force ? DELIVER_FORCE : DELIVER_DUE, stats);
	/* Reports the run queued go out in the same run: a flush leaves nothing
	 * behind that it could send. */
	if (ds->nreports > 0) {
		struct deliver_stats more = { .report = stats->report, .report_ctx = stats->report_ctx };
		char **reports = ds->reports;
		size_t n = ds->nreports;

		ds->reports = NULL;
		ds->nreports = ds->reports_cap = 0;
		deliver_session_run(ds, (const char *const *)reports, n, DELIVER_FORCE, &more);
		stats->messages += more.messages;
		stats->sent += more.sent;
		stats->deferred += more.deferred;
		stats->failed += more.failed;
		stats->busy += more.busy;
		for (size_t i = 0; i < n; i++)
			free(reports[i]);
		free(reports);
	}
	deliver_session_free(ds);
	if (spool_sync_removals(spool, err) < 0)
		log_err("%s", err->msg);
	spool_trim_spares(spool);
	for (size_t i = 0; i < nlisted; i++)
		free(listed[i]);
	free(listed);
	return 0;
}
