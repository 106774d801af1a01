/* deliver.c - delivery attempts and what they mean for a message; see
 * deliver.h.
 *
 * A message is claimed (locked) before anything is sent and its envelope is
 * saved after every attempt, so a crash at any point leaves it queued: at
 * worst a message whose final "." was answered but not yet recorded is sent
 * again (the one duplicate SMTP cannot rule out).  Recipients already sent
 * are never sent again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver.h"
#include "log.h"
#include "smtp_client.h"
#include "util.h"

/* One route's session for the messages of a run, opened on first need. */
struct route_session {
	const struct route *route;
	struct smtp_client *client;
	unsigned carried;              /* messages the open session has carried */
	bool failed;                   /* could not open: defer the rest at once */
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
	return route != NULL && route->envelope_from != NULL ? route->envelope_from : original;
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

/* After an attempt: where the message goes.  Returns the state to move to,
 * or SPOOL_STATE_COUNT when it is done (every recipient sent: remove it). */
static enum spool_state
settle(const struct config *cfg, const struct route *route, struct envelope *env, time_t now)
{
	const struct retry_policy *policy = route != NULL ? &route->retry : &cfg->retry;
	bool open = false, failed = false;

	for (size_t i = 0; i < env->nrcpts; i++) {
		open = open || rcpt_open(&env->rcpts[i]);
		failed = failed || env->rcpts[i].status == RCPT_FAILED;
	}
	if (open && (uint64_t)(now - env->created) * 1000 >= policy->max_age_ms) {
		/* Give up: what is still open fails, with the last reply kept. */
		for (size_t i = 0; i < env->nrcpts; i++) {
			struct envelope_rcpt *r = &env->rcpts[i];
			char *why;

			if (!rcpt_open(r))
				continue;
			why = xasprintf("gave up after max-age: %s", r->reply ? r->reply : "not delivered");
			free(r->reply);
			r->reply = why;
			r->status = RCPT_FAILED;
		}
		return SPOOL_FAILED;
	}
	if (open) {
		env->next_try = now + delay_seconds(deliver_retry_delay_ms(policy, env->attempts));
		return SPOOL_QUEUE;
	}
	return failed ? SPOOL_FAILED : SPOOL_STATE_COUNT;
}

static struct smtp_client *
session_get(const struct config *cfg, struct route_session *rs, const struct netio_trace *trace)
{
	if (rs->client == NULL && !rs->failed &&
	    smtp_client_open(cfg, rs->route, trace, &rs->client, &rs->open_outcome,
	    &rs->open_info) < 0)
		rs->failed = true;
	return rs->client;
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

/* One attempt at one claimed message; *line says where it stands after. */
static void
attempt(const struct config *cfg, struct spool *spool, struct route_session *rs,
    struct spool_msg *msg,
    struct deliver_stats *stats, const struct netio_trace *trace, struct deliver_line *line)
{
	struct envelope *env = spool_msg_envelope_mut(msg);
	const char *from = deliver_envelope_from(rs->route, env->sender);
	const char **rcpts = xcalloc(env->nrcpts, sizeof *rcpts);
	size_t *index = xcalloc(env->nrcpts, sizeof *index);
	struct smtp_outcome *out = xcalloc(env->nrcpts, sizeof *out);
	struct smtp_outcome whole = { DELIVERY_DEFERRED, STEP_CONNECT, true, "" };
	struct smtp_client_info info = { .relay = "" };
	time_t now;
	size_t n = 0;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (rcpt_open(&env->rcpts[i])) {
			index[n] = i;
			rcpts[n++] = env->rcpts[i].address;
		}
	{
		struct smtp_message m = {
			.envelope_from = from, .rcpts = rcpts, .nrcpts = n,
			.content_fd = spool_msg_content_fd(msg), .size = env->size,
			.eight_bit = env->body == BODY_8BITMIME, .smtputf8 = env->smtputf8,
		};

		send_message(cfg, rs, trace, &m, out, &whole, &info);
	}

	now = time(NULL);
	env->attempts++;
	env->last_try = now;
	set_reply(&env->last_reply, whole.reply[0] ? whole.reply : out[0].reply);
	for (size_t k = 0; k < n; k++) {
		struct envelope_rcpt *r = &env->rcpts[index[k]];

		r->status = rcpt_status_of(out[k].status);
		set_reply(&r->reply, out[k].reply);
		set_reply(&r->route, rs->route->name);
		stats->sent += r->status == RCPT_SENT;
		stats->deferred += r->status == RCPT_DEFERRED;
		stats->failed += r->status == RCPT_FAILED;
	}
	free(rcpts);
	free(out);
	/* Settle first: a recipient failed by max-age is logged as failed. */
	{
		enum spool_state to = settle(cfg, rs->route, env, now);
		struct err err = { "" };
		int rc;

		for (size_t k = 0; k < n; k++)
			log_delivery(env, &env->rcpts[index[k]], from, rs->route, &info, now);
		if (to == SPOOL_STATE_COUNT)
			rc = spool_msg_remove_delivered(spool, msg, &err);
		else if ((rc = spool_msg_save(msg, &err)) == 0 && to != SPOOL_QUEUE)
			rc = spool_msg_move(msg, to, &err);
		if (rc < 0)
			log_err("%s: could not record the delivery attempt: %s", env->id, err.msg);
		line->result = to == SPOOL_STATE_COUNT ? RESULT_DONE :
		    to == SPOOL_FAILED ? RESULT_FAILED : RESULT_QUEUE;
		line->next_try = to == SPOOL_QUEUE ? env->next_try : 0;
	}
	free(index);
}

/* A message with no route stays queued, with the reason; no attempt counts. */
static void
no_route(const struct config *cfg, struct spool_msg *msg)
{
	struct envelope *env = spool_msg_envelope_mut(msg);
	struct err err = { "" };

	set_reply(&env->last_reply, "no route: the configuration has no [route] for this message");
	env->next_try = time(NULL) + delay_seconds(deliver_retry_delay_ms(&cfg->retry, 1));
	if (spool_msg_save(msg, &err) < 0)
		log_err("%s: %s", env->id, err.msg);
	log_info("%s: not sent: no route is configured", env->id);
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

/* A delivery session: the route's gateway session outlives a run, so a
 * worker carries many batches over one connection. */
struct deliver_session {
	const struct config *cfg;
	struct spool *spool;
	const struct netio_trace *trace;
	struct route_session rs;
};

struct deliver_session *
deliver_session_new(const struct config *cfg, struct spool *spool, const struct netio_trace *trace)
{
	struct deliver_session *ds = xcalloc(1, sizeof *ds);

	ds->cfg = cfg;
	ds->spool = spool;
	ds->trace = trace;
	ds->rs.route = config_default_route(cfg);
	return ds;
}

/* A new run tries to connect again after a failed one. */
static void
session_refresh(struct deliver_session *ds)
{
	ds->rs.failed = false;
}

void
deliver_session_run(struct deliver_session *ds, const char *const *ids, size_t nids, bool force,
    struct deliver_stats *stats)
{
	struct route_session *rs = &ds->rs;

	stats->messages = stats->sent = stats->deferred = stats->failed = stats->busy = 0;
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
		} else if (!force && spool_msg_envelope(msg)->next_try > time(NULL)) {
			line.result = RESULT_QUEUE;
			line.next_try = spool_msg_envelope(msg)->next_try;
		} else if (rs->route == NULL) {
			stats->messages++;
			no_route(ds->cfg, msg);
			line.result = RESULT_QUEUE;
			line.next_try = spool_msg_envelope(msg)->next_try;
		} else {
			stats->messages++;
			attempt(ds->cfg, ds->spool, rs, msg, stats, ds->trace, &line);
		}
		spool_msg_free(msg);
		report(stats, ids[i], line.result, line.next_try);
	}
}

bool
deliver_session_connected(const struct deliver_session *ds)
{
	return ds->rs.client != NULL;
}

void
deliver_session_quit(struct deliver_session *ds)
{
	smtp_client_close(ds->rs.client);
	ds->rs.client = NULL;
	ds->rs.carried = 0;
}

void
deliver_session_free(struct deliver_session *ds)
{
	if (ds == NULL)
		return;
	deliver_session_quit(ds);
	free(ds);
}

int
deliver_run(const struct config *cfg, struct spool *spool, const char *const *ids, size_t nids,
    bool force, struct deliver_stats *stats, const struct netio_trace *trace, struct err *err)
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
	deliver_session_run(ds, ids, nids, force, stats);
	deliver_session_free(ds);
	if (spool_sync_removals(spool, err) < 0)
		log_err("%s", err->msg);
	spool_trim_spares(spool);
	for (size_t i = 0; i < nlisted; i++)
		free(listed[i]);
	free(listed);
	return 0;
}
