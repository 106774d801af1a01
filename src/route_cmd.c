/* route_cmd.c - see route_cmd.h.  The answers come from the code that
 * delivers (route_select, deliver_envelope_from, the route's identity
 * settings), so what it prints is what a delivery does. */
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "deliver.h"
#include "identity.h"
#include "route.h"
#include "route_cmd.h"

static const char *
tls_name(enum tls_mode m)
{
	return m == TLS_MODE_TLS ? "tls" : m == TLS_MODE_NONE ? "none" : "starttls";
}

/* sender NULL: not given. */
static void
print_envelope_from(const struct route *r, const char *sender)
{
	if (sender != NULL && sender[0] == '\0')
		printf("envelope-from: <%s> (%s)\n", deliver_envelope_from(r, ""),
		    r->bounce_from ? "a report; bounce-from of the route" :
		    "a report keeps the null sender");
	else if (r->envelope_from != NULL)
		printf("envelope-from: %s (the route's account)\n", r->envelope_from);
	else
		printf("envelope-from: %s (the message's own sender)\n",
		    sender != NULL ? sender : "unchanged");
}

/* The identity the header gets for mail to this one address. */
static void
print_header_from(const struct route *r, const char *rcpt)
{
	const char *mapped = NULL;
	int line = 0;

	if (r->from_map != NULL)
		mapped = identity_map_lookup(r->from_map, &rcpt, 1, &line);
	if (mapped != NULL)
		printf("header-from:   %s, with the original display name; a Reply-To: is "
		    "replaced by it (from-map %s, line %d)\n", mapped, r->from_map_file, line);
	else if (r->header_from == HEADER_FROM_REWRITE)
		printf("header-from:   %s, with the original display name; the original From: "
		    "moves to Reply-To: unless the message has one (header-from = rewrite%s)\n",
		    r->envelope_from, r->from_map != NULL ? "; from-map has no entry" : "");
	else
		printf("header-from:   kept as the message has it (header-from = keep%s)\n",
		    r->from_map != NULL ? "; from-map has no entry" : "");
}

static void
print_bounces(const struct config *cfg, const struct route *r, const char *sender)
{
	const char *to = r->bounce != NULL ? r->bounce : cfg->bounce;

	if (sender != NULL && sender[0] == '\0')
		printf("bounces:       none (the message is itself a report)\n");
	else if (to != NULL && strcmp(to, "none") == 0)
		printf("bounces:       none (bounce = none)\n");
	else
		printf("bounces:       to %s, through route %s\n", to != NULL ? to :
		    sender != NULL ? sender : "the sender", r->name);
}

/* One address (sender NULL: not given); 0 when it has a route, 69 when not. */
static int
explain(const struct config *cfg, const char *rcpt, const char *sender)
{
	char why[ROUTE_WHY_MAX];
	const struct route *r = route_select(cfg, NULL, sender ? sender : "", rcpt, why, sizeof why);

	printf("address:       %s\n", rcpt);
	if (sender == NULL)
		printf("sender:        not given (-f FROM): routes by sender are not considered\n");
	else
		printf("sender:        <%s>\n", sender);
	if (r == NULL) {
		printf("route:         none: %s; the message would stay queued\n", why);
		return 69;
	}
	printf("route:         %s (%s, line %d)\n", r->name, cfg->path, r->line);
	printf("why:           %s\n", why);
	printf("gateway:       %s:%u, tls=%s%s%s\n", r->smarthost, r->port, tls_name(r->tls),
	    r->user ? ", user=" : "", r->user ? r->user : "");
	print_envelope_from(r, sender);
	print_header_from(r, rcpt);
	print_bounces(cfg, r, sender);
	return 0;
}

static int
valid_address(const char *a, const char *what)
{
	enum address_result res = address_check(a, strlen(a),
	    ADDRESS_ALLOW_UTF8 | ADDRESS_ALLOW_POSTMASTER);

	if (res == ADDRESS_OK)
		return 0;
	fprintf(stderr, "mailredir: route: %s '%s': %s\n", what, a, address_result_text(res));
	return -1;
}

/* "-f FROM" may come before or after the addresses; "-f <>" (or "-f ''")
 * asks about a report, which has the null sender. */
int
route_cmd_main(const struct config *cfg, int argc, char **argv)
{
	const char *sender = NULL;
	int naddr = 0, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc && sender == NULL)
			sender = argv[++i];
		else if (argv[i][0] == '-')
			naddr = -1000;        /* an unknown option, or -f twice */
		else if (valid_address(argv[i], "address") < 0)
			return 65;
		else
			naddr++;
	}
	if (naddr <= 0) {
		fputs("usage: mailredir route ADDRESS... [-f FROM]\n", stderr);
		return 64;
	}
	if (sender != NULL && strcmp(sender, "<>") == 0)
		sender = "";
	else if (sender != NULL && sender[0] != '\0' && valid_address(sender, "sender") < 0)
		return 65;
	for (int i = 1, n = 0; i < argc; i++) {
		int r;

		if (strcmp(argv[i], "-f") == 0) {
			i++;
			continue;
		}
		if (n++ > 0)
			printf("\n");
		if ((r = explain(cfg, argv[i], sender)) != 0)
			rc = r;
	}
	return rc;
}
