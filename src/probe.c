/* probe.c - see probe.h.  It replaces the telnet session of a relay's
 * troubleshooting guide: the same code as a delivery (smtp_client_open),
 * narrated. */
#include <stdio.h>
#include <string.h>

#include "auth_client.h"
#include "login.h"
#include "login_state.h"
#include "probe.h"
#include "smtp_client.h"
#include "util.h"

static void
say(void *ctx, const char *line)
{
	(void)ctx;
	printf("  %s\n", line);
	fflush(stdout);
}

static const char *
tls_mode_name(enum tls_mode m)
{
	switch (m) {
	case TLS_MODE_STARTTLS: return "starttls";
	case TLS_MODE_TLS:      return "tls (implicit)";
	case TLS_MODE_NONE:     return "none";
	default:                return "default";
	}
}

static const char *
password_source(const struct route *r)
{
	if (r->oauth_token_command != NULL)
		return "oauth-token-command";
	if (r->password_file != NULL)
		return "password-file";
	if (r->password_command != NULL)
		return "password-command";
	if (r->password != NULL)
		return "password in the configuration";
	return "none";
}

static void
print_route(const struct route *r)
{
	char supported[512];

	printf("route %s: smarthost %s port %u, tls %s, tls-verify %s%s\n", r->name, r->smarthost,
	    r->port, tls_mode_name(r->tls), r->tls_verify ? "yes" : "no",
	    r->ntls_fingerprints ? ", pinned" : "");
	if (r->user != NULL) {
		printf("  account %s (secret from %s), auth ", r->user, password_source(r));
		if (r->nauth == 0)
			printf("auto");
		for (size_t i = 0; i < r->nauth; i++)
			printf("%s%s", i ? " " : "", r->auth[i]);
		printf(", envelope-from <%s>\n", r->envelope_from ? r->envelope_from : "(original)");
	} else
		printf("  no account: no AUTH\n");
	auth_client_supported(supported, sizeof supported);
	printf("  this build can authenticate with: %s\n", supported);
}

static void
print_result(const struct smtp_client_info *info)
{
	const struct tls_info *t = &info->tls_info;
	const struct smtp_caps *c = &info->caps;

	printf("gateway %s\n", info->relay);
	if (info->tls)
		printf("  TLS %s, %s; certificate %s, issued by %s, valid until %s; %s%s%s\n",
		    t->version, t->cipher, t->subject, t->issuer, t->not_after,
		    t->verified ? "verified" : "NOT verified", t->pinned ? " (pinned)" : "",
		    t->verify_error[0] ? t->verify_error : "");
	else
		printf("  no TLS: everything travels in cleartext\n");
	printf("  offers:%s%s%s%s%s", c->pipelining ? " PIPELINING" : "",
	    c->eightbitmime ? " 8BITMIME" : "", c->smtputf8 ? " SMTPUTF8" : "",
	    c->dsn ? " DSN" : "", c->starttls ? " STARTTLS" : "");
	if (c->has_size)
		printf(" SIZE %llu", (unsigned long long)c->size);
	printf("%s%s\n", c->auth[0] ? " AUTH " : "", c->auth);
	printf("  authenticated: %s\n", info->auth_mech[0] ? info->auth_mech : "no (not needed)");
}

/* login-before-smtp, as a delivery does it (without recording it): the
 * login, its result, and the wait before SMTP.  -1 when it failed: then
 * the gateway is not contacted, as in a delivery. */
static int
probe_login(const struct config *cfg, const struct route *r, const struct netio_trace *trace)
{
	struct login_memory mem;
	struct login_result res;
	struct err err = { "" };
	char a[32], b[32], c[32];
	uint64_t wait;

	printf("login-before-smtp %s://%s:%u (login-tls %s, login-valid %s)\n",
	    login_proto_name(r->login.proto), r->login.host, r->login.port,
	    r->login_tls == LOGIN_TLS_NONE ? "none" : "required",
	    format_seconds(r->login_valid_ms, a, sizeof a));
	login_state_load(cfg->spool, r->name, &mem, &err);
	if (login_run(r, trace, &res) < 0) {
		printf("login: FAILED: %s\n", res.reply);
		return -1;
	}
	printf("login: ok: %s %s, TLS %s, mechanism %s, as %s\n", res.protocol, res.server,
	    res.tls ? res.tls_info.version : "none (cleartext)", res.mech,
	    r->login_user ? r->login_user : r->user);
	wait = r->login_delay_ms > mem.delay_ms ? r->login_delay_ms : mem.delay_ms;
	printf("login: waiting %s before SMTP (login-delay %s, learnt %s)\n",
	    format_seconds(wait, a, sizeof a), format_seconds(r->login_delay_ms, b, sizeof b),
	    mem.delay_ms ? format_seconds(mem.delay_ms, c, sizeof c) : "none");
	sleep_ms(wait);
	return 0;
}

int
probe_main(const struct config *cfg, int argc, char **argv)
{
	struct netio_trace trace = { say, NULL };
	const struct route *route;
	struct smtp_client *client;
	struct smtp_outcome outcome;
	struct smtp_client_info info;

	if (argc > 2) {
		fputs("usage: mailredir probe [ROUTE]\n", stderr);
		return 64;
	}
	/* without a name: the default route, else the first one */
	route = argc == 2 ? config_find_route(cfg, argv[1]) : config_default_route(cfg);
	if (route == NULL && argc == 1 && cfg->nroutes > 0)
		route = &cfg->routes[0];
	if (route == NULL) {
		if (argc == 2)
			fprintf(stderr, "mailredir: there is no [route %s] in %s\n", argv[1], cfg->path);
		else
			fprintf(stderr, "mailredir: no route is configured in %s\n", cfg->path);
		return argc == 2 ? 64 : 69;
	}
	print_route(route);
	if (route->login.proto != LOGIN_NONE && probe_login(cfg, route, &trace) < 0) {
		printf("result: no message can be sent through route %s now: the login before "
		    "SMTP failed\n", route->name);
		return 69;
	}
	if (smtp_client_open(cfg, route, &trace, &client, &outcome, &info) < 0) {
		if (info.relay[0] != '\0')
			print_result(&info);
		printf("result: no message can be sent through route %s now: %s\n", route->name,
		    outcome.reply);
		return 69;
	}
	print_result(&info);
	smtp_client_close(client);
	printf("result: a message could be sent through route %s\n", route->name);
	return 0;
}
