/* route.c - route selection; see route.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route.h"

/* The domain of an address: after its last '@' ("" when it has none, as
 * "postmaster"). */
static const char *
domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : "";
}

bool
route_domain_matches(const char *pattern, const char *domain)
{
	size_t plen, dlen = strlen(domain);

	if (pattern[0] != '.')
		return strcasecmp(pattern, domain) == 0;
	/* ".example.com": example.com itself, or a name ending in ".example.com" */
	if (strcasecmp(pattern + 1, domain) == 0)
		return true;
	plen = strlen(pattern);
	return dlen > plen && strcasecmp(domain + dlen - plen, pattern) == 0;
}

/* The local part is compared exactly (RFC 5321 §2.4 leaves it to its
 * domain), the domain without case. */
bool
route_sender_matches(const char *pattern, const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (at == NULL)
		return false;
	if (pattern[0] == '@')
		return strcasecmp(pattern + 1, at + 1) == 0;
	return strncmp(pattern, sender, (size_t)(at - sender)) == 0 &&
	    pattern[at - sender] == '@' && strcasecmp(pattern + (at - sender) + 1, at + 1) == 0;
}

/* The first pattern of list[] that matches, or NULL. */
static const char *
first_match(char *const *list, size_t n, bool (*matches)(const char *, const char *),
    const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (matches(list[i], what))
			return list[i];
	return NULL;
}

/* Does r take mail from sender to rcpt?  why says which keys decided. */
static bool
route_takes(const struct route *r, const char *sender, const char *rcpt, char *why,
    size_t whysize)
{
	const char *domain = domain_of(rcpt), *dmatch = NULL, *smatch = NULL;

	if (r->ndomains > 0 &&
	    (dmatch = first_match(r->domains, r->ndomains, route_domain_matches, domain)) == NULL)
		return false;
	if (r->nsenders > 0 &&
	    (smatch = first_match(r->senders, r->nsenders, route_sender_matches, sender)) == NULL)
		return false;
	if (dmatch != NULL && smatch != NULL)
		snprintf(why, whysize, "recipient domain %s is in its domains (%s) and sender %s "
		    "in its senders (%s)", domain, dmatch, sender, smatch);
	else if (dmatch != NULL)
		snprintf(why, whysize, "recipient domain %s is in its domains (%s)", domain, dmatch);
	else
		snprintf(why, whysize, "sender %s is in its senders (%s)", sender, smatch);
	return true;
}

const struct route *
route_select(const struct config *cfg, const char *pinned, const char *sender, const char *rcpt,
    char *why, size_t whysize)
{
	const struct route *r;

	if (cfg->nroutes == 0) {
		snprintf(why, whysize, "the configuration has no [route NAME] section");
		return NULL;
	}
	if (pinned != NULL && (r = config_find_route(cfg, pinned)) != NULL) {
		snprintf(why, whysize, "the message is bound to this route (a report goes back "
		    "the way its message came)");
		return r;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		if ((r->ndomains > 0 || r->nsenders > 0) && route_takes(r, sender, rcpt, why, whysize))
			return r;
	}
	if ((r = config_default_route(cfg)) != NULL) {
		snprintf(why, whysize, "the default route (the first without domains or senders); "
		    "no route's domains or senders match");
		return r;
	}
	snprintf(why, whysize, "no route's domains or senders match %s%s%s, and there is no "
	    "default route (one without domains or senders)", rcpt,
	    sender[0] ? " from " : "", sender);
	return NULL;
}
