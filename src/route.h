/* route.h - which route a recipient's mail takes (PRODUCT.md §3;
 * mailredir.conf.5, ROUTES), and why.
 *
 * Routes are tried in file order.  A route with `domains` takes a recipient
 * whose domain is listed ("example.com" that domain, ".example.com" it and
 * its subdomains; case ignored); one with `senders` takes a message whose
 * envelope sender is listed ("alice@lan.example", or "@lan.example" for
 * every sender there; the null sender <> matches none); with both, both
 * must match.  The first route that matches wins; else the default route
 * (the first with neither key); else none: the recipient waits, queued,
 * for a configuration that routes it.  A message may be pinned to a route
 * by name (bounces go back over the route their message came by): that
 * route is taken while it exists.
 *
 * Pure: no I/O, no allocation. */
#ifndef MAILREDIR_ROUTE_H
#define MAILREDIR_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define ROUTE_WHY_MAX 512

/* The route for mail from `sender` ("" = <>) to `rcpt`, or NULL; why gets
 * the reason in words ("recipient domain dogers.com is in its domains
 * (dogers.com)"), for `mailredir route` and the queue.  pinned may be NULL. */
const struct route *route_select(const struct config *, const char *pinned, const char *sender,
    const char *rcpt, char *why, size_t whysize);

/* One `domains` pattern against a domain; one `senders` pattern against an
 * envelope sender.  Exposed for the tests. */
bool route_domain_matches(const char *pattern, const char *domain);
bool route_sender_matches(const char *pattern, const char *sender);

#endif
