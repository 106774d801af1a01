/* report.h - delivery status notifications for a message after a delivery
 * attempt (RFC 3464 bounces, delay warnings, "relayed" reports; RFC 3461
 * NOTIFY and RET honoured): which recipients call for one, where it goes,
 * and queueing it as a new message with the null sender, bound to the
 * route its message took (mailredir.8, DELIVERY STATUS NOTIFICATIONS).
 * The message itself is dsn_format's. */
#ifndef MAILREDIR_REPORT_H
#define MAILREDIR_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "dsn.h"
#include "envelope.h"
#include "spool.h"

/* A recipient failed by max-age has its last reply behind this prefix
 * (deliver.c); its report shows that reply (a 4.x.y status: given up after
 * temporary failures, RFC 3464 §2.3.4). */
#define REPORT_GAVE_UP "gave up after max-age: "

/* Whole messages are returned only up to this size; beyond it, headers. */
#define REPORT_RETURN_MAX (1024 * 1024)

/* What the attempt did to one recipient, as far as reports care. */
struct report_rcpt_state {
	bool was_open;           /* pending or deferred before the attempt */
	bool plain_gateway;      /* sent through a gateway that does not offer DSN */
};

struct report_item {
	size_t rcpt;             /* index into env->rcpts */
	enum dsn_action action;
};

/* The recipients a report is due for, into items[] (room for env->nrcpts);
 * returns how many.  Pure.
 *   failed:  newly failed, and NOTIFY wants FAILURE (absent NOTIFY does);
 *            none when the client was told the refusal itself
 *            (client_told: proxy mode, no recipient sent);
 *   relayed: newly sent through a gateway without DSN, NOTIFY has SUCCESS
 *            (a gateway with DSN got NOTIFY and reports itself);
 *   delayed: still open, warn_delay (the delay-warning time has come and no
 *            warning was sent yet), NOTIFY wants DELAY.
 * Never any for the null sender. */
size_t report_select(const struct envelope *, const struct report_rcpt_state *, bool warn_delay,
    bool client_told, struct report_item *items);

/* Where reports about env go through route r: bounce = none -> NULL; bounce
 * = ADDRESS -> that; else the sender (NULL for <>).  r may be NULL. */
const char *report_to(const struct config *, const struct route *r, const struct envelope *);

/* Queue one report about env (its content on content_fd) for items[0..n),
 * to `to`, bound to route r (may be NULL): a new message with sender <>,
 * committed (durable) like any other.  new_id gets its id.  0 / -1. */
int report_queue(const struct config *, struct spool *, const struct envelope *, int content_fd,
    const struct route *r, const char *to, const struct report_item *items, size_t n, time_t now,
    char new_id[ENVELOPE_ID_MAX + 1], struct err *);

#endif
