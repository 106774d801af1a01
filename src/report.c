/* report.c - see report.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util.h"

static bool
open_status(enum rcpt_status s)
{
	return s == RCPT_PENDING || s == RCPT_DEFERRED;
}

size_t
report_select(const struct envelope *env, const struct report_rcpt_state *st, bool warn_delay,
    bool client_told, struct report_item *items)
{
	size_t n = 0;

	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];
		enum dsn_action action;

		if (r->status == RCPT_FAILED && st[i].was_open && !client_told)
			action = DSN_FAILED;
		else if (r->status == RCPT_SENT && st[i].was_open && st[i].plain_gateway)
			action = DSN_RELAYED;
		else if (open_status(r->status) && warn_delay)
			action = DSN_DELAYED;
		else
			continue;
		if (!dsn_wanted(env->sender, r->notify, action))
			continue;
		items[n].rcpt = i;
		items[n++].action = action;
	}
	return n;
}

const char *
report_to(const struct config *cfg, const struct route *r, const struct envelope *env)
{
	const char *bounce = r != NULL && r->bounce != NULL ? r->bounce : cfg->bounce;

	if (env->sender[0] == '\0' || (bounce != NULL && strcmp(bounce, "none") == 0))
		return NULL;
	return bounce != NULL ? bounce : env->sender;
}

/* The stored message, as much of it as a report may return (one octet
 * more tells dsn_format that it is bigger). */
static char *
read_original(int fd, uint64_t size, size_t *len, struct err *err)
{
	size_t want = size > REPORT_RETURN_MAX ? REPORT_RETURN_MAX + 1 : (size_t)size;
	char *buf = xmalloc(want + 1);
	size_t got = 0;

	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				err_sys(err, "cannot read the message to report on");
			else
				err_set(err, "the message to report on is shorter than its envelope says");
			free(buf);
			return NULL;
		}
		got += (size_t)n;
	}
	*len = got;
	return buf;
}

static bool
ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* The new message: its content and its envelope, committed. */
static int
store_report(struct spool *spool, const char *text, size_t len, bool eight_bit, const char *to,
    const struct route *r, time_t now, char *new_id, struct err *err)
{
	struct spool_new *sn;
	struct envelope rep;
	int rc = -1;

	if (spool_new_begin(spool, &sn, err) < 0)
		return -1;
	envelope_init(&rep);
	rep.sender = xstrdup("");
	rep.origin = ORIGIN_SENDMAIL;
	rep.client_addr = xstrdup("local");
	rep.created = now;
	rep.body = eight_bit ? BODY_8BITMIME : BODY_7BIT;
	rep.smtputf8 = !ascii(to);
	rep.route = r != NULL ? xstrdup(r->name) : NULL;
	envelope_add_rcpt(&rep, to);
	if (spool_new_write(sn, text, len, err) == 0 && spool_new_finish(sn, &rep, err) == 0 &&
	    spool_commit_batch(spool, &sn, 1, NULL, err) == 0) {
		strlcopy(new_id, spool_new_id(sn), ENVELOPE_ID_MAX + 1);
		rc = 0;
	} else {
		spool_new_abort(sn);
	}
	spool_new_free(sn);
	envelope_clear(&rep);
	return rc;
}

int
report_queue(const struct config *cfg, struct spool *spool, const struct envelope *env,
    int content_fd, const struct route *r, const char *to, const struct report_item *items,
    size_t n, time_t now, char new_id[ENVELOPE_ID_MAX + 1], struct err *err)
{
	const struct retry_policy *policy = r != NULL ? &r->retry : &cfg->retry;
	struct dsn_rcpt *rcpts = xcalloc(n, sizeof *rcpts);
	size_t len, text_len;
	char *original, *text;
	bool eight_bit;
	int rc;

	if ((original = read_original(content_fd, env->size, &len, err)) == NULL) {
		free(rcpts);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		const struct envelope_rcpt *er = &env->rcpts[items[k].rcpt];
		const struct route *via = er->route ? config_find_route(cfg, er->route) : NULL;
		const char *reply = er->reply;

		if (reply != NULL && strncmp(reply, REPORT_GAVE_UP, strlen(REPORT_GAVE_UP)) == 0)
			reply += strlen(REPORT_GAVE_UP);

		rcpts[k] = (struct dsn_rcpt){
			.address = er->address, .orcpt = er->orcpt, .action = items[k].action,
			.reply = reply, .remote_mta = via != NULL ? via->smarthost : NULL,
			.last_attempt = env->last_try,
		};
	}
	{
		struct dsn_report report = {
			.reporting_mta = cfg->hostname, .queue_id = env->id, .to = to,
			/* the whole message only when RET=FULL asked for it: a bounce
			 * should not carry a big message back unasked */
			.envid = env->envid, .return_max = REPORT_RETURN_MAX,
			.ret = env->ret == DSN_RET_FULL ? DSN_RET_FULL : DSN_RET_HDRS,
			.arrival = env->created, .now = now,
			.will_retry_until = env->created + (int64_t)(policy->max_age_ms / 1000),
			.rcpts = rcpts, .nrcpts = n,
		};

		text = dsn_format(&report, original, len, &text_len, &eight_bit);
	}
	rc = store_report(spool, text, text_len, eight_bit, to, r, now, new_id, err);
	free(text);
	free(original);
	free(rcpts);
	return rc;
}
