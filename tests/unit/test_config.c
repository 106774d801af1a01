/* test_config.c - mailredir.conf: every key, every error path, defaults,
 * inheritance, file checks, and the man page naming every key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define N(a) (sizeof (a) / sizeof (a)[0])
#define NAME "t.conf"
#define ISP "[route isp]\nsmarthost = smtp.isp.example\n"
#define FP_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_NORM "sha256:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:" \
	"01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"

/* ------------------------------------------------------------------------ */
/* Probes: what a field of a loaded configuration reads as                   */

typedef void probe_fn(const struct config *, const struct route *, char *, size_t);

static void
add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
add(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len > 0 && len + 1 < size)
		buf[len++] = ' ', buf[len] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void
show_listen(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)r;
	for (size_t i = 0; i < c->nlisten; i++) {
		bool v6 = strchr(c->listen[i].host, ':') != NULL;

		add(b, n, "%s%s%s:%u", v6 ? "[" : "", c->listen[i].host, v6 ? "]" : "",
		    c->listen[i].port);
	}
}

static void
show_clients(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)r;
	for (size_t i = 0; i < c->nclients; i++) {
		char text[INET6_ADDRSTRLEN];

		inet_ntop(c->clients[i].family, c->clients[i].addr, text, sizeof text);
		add(b, n, "%s/%u", text, c->clients[i].prefix);
	}
}

static const struct retry_policy *
policy(const struct config *c, const struct route *r)
{
	return r != NULL ? &r->retry : &c->retry;
}

static void
show_retry(const struct config *c, const struct route *r, char *b, size_t n)
{
	const struct retry_policy *p = policy(c, r);

	for (size_t i = 0; i < p->nsteps; i++)
		add(b, n, "%llu", (unsigned long long)p->steps_ms[i]);
}

static void
show_routes(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)r;
	for (size_t i = 0; i < c->nroutes; i++)
		add(b, n, "%s@%d", c->routes[i].name, c->routes[i].line);
}

static void
show_smarthost(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)c;
	snprintf(b, n, "%s port %u", r->smarthost, r->port);
}

static void
show_tls(const struct config *c, const struct route *r, char *b, size_t n)
{
	static const char *const names[] = { "default", "starttls", "tls", "none" };

	(void)c;
	snprintf(b, n, "%s", names[r->tls]);
}

static void
show_list(char **items, size_t count, char *b, size_t n)
{
	for (size_t i = 0; i < count; i++)
		add(b, n, "%s", items[i]);
}

static void
show_auth(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)c;
	show_list(r->auth, r->nauth, b, n);
}

static void
show_fingerprints(const struct config *c, const struct route *r, char *b, size_t n)
{
	(void)c;
	show_list(r->tls_fingerprints, r->ntls_fingerprints, b, n);
}

#define SHOW_NUM(fn, expr) \
	static void fn(const struct config *c, const struct route *r, char *b, size_t n) \
	{ (void)c; (void)r; snprintf(b, n, "%llu", (unsigned long long)(expr)); }
#define SHOW_STR(fn, expr) \
	static void fn(const struct config *c, const struct route *r, char *b, size_t n) \
	{ (void)c; (void)r; snprintf(b, n, "%s", (expr) != NULL ? (expr) : "(null)"); }

SHOW_STR(show_spool, c->spool)
SHOW_STR(show_hostname, c->hostname)
SHOW_STR(show_user, c->user)
SHOW_STR(show_path, c->path)
SHOW_NUM(show_max_message_size, c->max_message_size)
SHOW_NUM(show_max_recipients, c->max_recipients)
SHOW_NUM(show_max_connections, c->max_connections)
SHOW_NUM(show_max_connections_per_client, c->max_connections_per_client)
SHOW_NUM(show_command_timeout, c->command_timeout_ms)
SHOW_NUM(show_data_timeout, c->data_timeout_ms)
SHOW_NUM(show_log_level, c->log_level)
SHOW_NUM(show_max_deliveries, c->max_deliveries)
SHOW_NUM(show_retry_max, policy(c, r)->max_ms)
SHOW_NUM(show_max_age, policy(c, r)->max_age_ms)
SHOW_NUM(show_tls_verify, r->tls_verify)
SHOW_STR(show_tls_ca_file, r->tls_ca_file)
SHOW_STR(show_tls_cert, r->tls_cert)
SHOW_STR(show_tls_key, r->tls_key)
SHOW_STR(show_route_user, r->user)
SHOW_STR(show_password_file, r->password_file)
SHOW_STR(show_password_command, r->password_command)
SHOW_STR(show_password, r->password)
SHOW_STR(show_envelope_from, r->envelope_from)
SHOW_NUM(show_allow_plaintext_auth, r->allow_plaintext_auth)
SHOW_STR(show_oauth_token_command, r->oauth_token_command)
SHOW_NUM(show_connect_timeout, r->connect_timeout_ms)
SHOW_NUM(show_reply_timeout, r->reply_timeout_ms)

static const struct probe {
	const char *name;
	probe_fn *fn;
} probes[] = {
	{ "listen", show_listen }, { "spool", show_spool }, { "hostname", show_hostname },
	{ "user", show_user }, { "clients", show_clients }, { "path", show_path },
	{ "max-message-size", show_max_message_size },
	{ "max-recipients", show_max_recipients },
	{ "max-connections", show_max_connections },
	{ "max-connections-per-client", show_max_connections_per_client },
	{ "command-timeout", show_command_timeout }, { "data-timeout", show_data_timeout },
	{ "log-level", show_log_level }, { "max-deliveries", show_max_deliveries },
	{ "retry", show_retry }, { "retry-max", show_retry_max }, { "max-age", show_max_age },
	{ "routes", show_routes },
	/* route fields: the case names the route */
	{ "smarthost", show_smarthost }, { "tls", show_tls },
	{ "tls-verify", show_tls_verify }, { "tls-ca-file", show_tls_ca_file },
	{ "tls-fingerprint", show_fingerprints }, { "tls-cert", show_tls_cert },
	{ "tls-key", show_tls_key }, { "route-user", show_route_user },
	{ "password-file", show_password_file },
	{ "password-command", show_password_command }, { "password", show_password },
	{ "auth", show_auth }, { "envelope-from", show_envelope_from },
	{ "allow-plaintext-auth", show_allow_plaintext_auth },
	{ "oauth-token-command", show_oauth_token_command },
	{ "connect-timeout", show_connect_timeout }, { "reply-timeout", show_reply_timeout },
};

/* Load text; fail with the errors when it does not load. */
static struct config *
load_ok(const char *casename, const char *text)
{
	struct config *cfg = NULL;
	struct err err;

	memset(&err, 'x', sizeof err);     /* must be emptied by the loader */
	if (config_load_string(text, NAME, &cfg, &err) < 0)
		fail_msg("%s: did not load:\n%s", casename, err.msg);
	if (err.msg[0] != '\0')
		fail_msg("%s: loaded, but err holds '%.80s'", casename, err.msg);
	return cfg;
}

static void
probe(const char *casename, const struct config *cfg, const char *route,
    const char *what, char *buf, size_t size)
{
	const struct route *r = NULL;

	buf[0] = '\0';
	if (route != NULL && (r = config_find_route(cfg, route)) == NULL)
		fail_msg("%s: no route %s", casename, route);
	for (size_t i = 0; i < N(probes); i++) {
		if (strcmp(probes[i].name, what) == 0) {
			probes[i].fn(cfg, r, buf, size);
			return;
		}
	}
	fail_msg("%s: test bug: no probe %s", casename, what);
}

struct good_case {
	const char *name, *text;
	const char *route;        /* NULL: a global field */
	const char *what, *want;
};

static void
run_good(const struct good_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct config *cfg = load_ok(cases[i].name, cases[i].text);
		char got[2048];

		probe(cases[i].name, cfg, cases[i].route, cases[i].what, got, sizeof got);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: %s: got '%s', want '%s'", cases[i].name, cases[i].what, got,
			    cases[i].want);
		config_free(cfg);
	}
}

/* ------------------------------------------------------------------------ */
/* Good files                                                                */

static const struct good_case defaults[] = {
	{ "default listen", "", NULL, "listen", "127.0.0.1:25" },
	{ "default spool", "", NULL, "spool", "/var/spool/mailredir" },
	{ "default user", "", NULL, "user", "mailredir" },
	{ "default clients", "", NULL, "clients", "127.0.0.0/8 ::1/128" },
	{ "default max-message-size", "", NULL, "max-message-size", "26214400" },
	{ "default max-recipients", "", NULL, "max-recipients", "100" },
	{ "default max-connections", "", NULL, "max-connections", "100" },
	{ "default max-connections-per-client", "", NULL, "max-connections-per-client", "20" },
	{ "default command-timeout", "", NULL, "command-timeout", "300000" },
	{ "default data-timeout", "", NULL, "data-timeout", "600000" },
	{ "default log-level info", "", NULL, "log-level", "2" },
	{ "default max-deliveries", "", NULL, "max-deliveries", "4" },
	{ "default retry", "", NULL, "retry", "60000 300000 900000 3600000" },
	{ "default retry-max", "", NULL, "retry-max", "14400000" },
	{ "default max-age", "", NULL, "max-age", "432000000" },
	{ "no routes", "", NULL, "routes", "" },
	{ "path is the name", "", NULL, "path", NAME },
	{ "route default port", ISP, "isp", "smarthost", "smtp.isp.example port 25" },
	{ "route default tls", ISP, "isp", "tls", "starttls" },
	{ "route default tls-verify", ISP, "isp", "tls-verify", "1" },
	{ "route default auth", ISP, "isp", "auth", "" },
	{ "route default allow-plaintext-auth", ISP, "isp", "allow-plaintext-auth", "0" },
	{ "route default connect-timeout", ISP, "isp", "connect-timeout", "30000" },
	{ "route default reply-timeout", ISP, "isp", "reply-timeout", "300000" },
	{ "route default retry", ISP, "isp", "retry", "60000 300000 900000 3600000" },
	{ "route default retry-max", ISP, "isp", "retry-max", "14400000" },
	{ "route default max-age", ISP, "isp", "max-age", "432000000" },
	{ "route no user", ISP, "isp", "route-user", "(null)" },
	{ "route no envelope-from", ISP, "isp", "envelope-from", "(null)" },
	{ "route no password", ISP, "isp", "password", "(null)" },
};

static void
fills_defaults(void **state)
{
	(void)state;
	run_good(defaults, N(defaults));
}

static const struct good_case globals[] = {
	{ "listen IPv4", "listen = 127.0.0.1:2525\n", NULL, "listen", "127.0.0.1:2525" },
	{ "listen IPv6", "listen = [::1]:2525\n", NULL, "listen", "[::1]:2525" },
	{ "listen IPv6 normalised", "listen = [0:0::1]:25\n", NULL, "listen", "[::1]:25" },
	{ "listen repeated accumulates", "listen = 127.0.0.1:25\nlisten = [::1]:25\n"
	  "listen = 0.0.0.0:2525\n", NULL, "listen", "127.0.0.1:25 [::1]:25 0.0.0.0:2525" },
	{ "same address, other port", "listen = 127.0.0.1:25\nlisten = 127.0.0.1:26\n",
	  NULL, "listen", "127.0.0.1:25 127.0.0.1:26" },
	{ "spool absolute", "spool = /srv/spool\n", NULL, "spool", "/srv/spool" },
	{ "hostname", "hostname = gw.example.lan\n", NULL, "hostname", "gw.example.lan" },
	{ "user empty keeps the user", "user =\n", NULL, "user", "" },
	{ "user named", "user = nobody\n", NULL, "user", "nobody" },
	{ "clients", "clients = 10.0.0.0/8\n", NULL, "clients", "10.0.0.0/8" },
	{ "clients repeated accumulate", "clients = 10.0.0.0/8\n"
	  "clients = 192.168.0.0/16 2001:db8::/32\n", NULL, "clients",
	  "10.0.0.0/8 192.168.0.0/16 2001:db8::/32" },
	{ "clients host", "clients = 192.0.2.7\n", NULL, "clients", "192.0.2.7/32" },
	{ "size in M", "max-message-size = 10M\n", NULL, "max-message-size", "10485760" },
	{ "size in k", "max-message-size = 64k\n", NULL, "max-message-size", "65536" },
	{ "size in K", "max-message-size = 64K\n", NULL, "max-message-size", "65536" },
	{ "size in G", "max-message-size = 1G\n", NULL, "max-message-size", "1073741824" },
	{ "size bare bytes", "max-message-size = 2048\n", NULL, "max-message-size", "2048" },
	{ "size lowest", "max-message-size = 1k\n", NULL, "max-message-size", "1024" },
	{ "max-recipients", "max-recipients = 1\n", NULL, "max-recipients", "1" },
	{ "max-recipients highest", "max-recipients = 100000\n", NULL, "max-recipients",
	  "100000" },
	{ "max-connections", "max-connections = 5\n", NULL, "max-connections", "5" },
	{ "max-connections-per-client", "max-connections-per-client = 3\n", NULL,
	  "max-connections-per-client", "3" },
	{ "command-timeout ms", "command-timeout = 500ms\n", NULL, "command-timeout", "500" },
	{ "command-timeout bare seconds", "command-timeout = 30\n", NULL, "command-timeout",
	  "30000" },
	{ "command-timeout hour", "command-timeout = 1h\n", NULL, "command-timeout",
	  "3600000" },
	{ "data-timeout", "data-timeout = 15m\n", NULL, "data-timeout", "900000" },
	{ "log-level debug", "log-level = debug\n", NULL, "log-level", "3" },
	{ "log-level any case", "log-level = WARNING\n", NULL, "log-level", "1" },
	{ "log-level error", "log-level = error\n", NULL, "log-level", "0" },
	{ "max-deliveries", "max-deliveries = 10\n", NULL, "max-deliveries", "10" },
	{ "retry", "retry = 30s 2m\n", NULL, "retry", "30000 120000" },
	{ "retry-max", "retry-max = 1h\n", NULL, "retry-max", "3600000" },
	{ "max-age", "max-age = 2d\n", NULL, "max-age", "172800000" },
	{ "max-age zero", "max-age = 0\n", NULL, "max-age", "0" },
	{ "comments", "# one\n; two\n  # three\nhostname = a.example # trailing\n"
	  "user = bob ; trailing\n", NULL, "hostname", "a.example" },
	{ "semicolon inside a value", "[route isp]\nsmarthost = h\nuser = u\n"
	  "password = se;cr#et\n", "isp", "password", "se;cr#et" },
	{ "colon form", "hostname: a.example\n", NULL, "hostname", "a.example" },
	{ "CRLF lines", "hostname = a.example\r\nuser = bob\r\n", NULL, "user", "bob" },
	{ "UTF-8 BOM", "\xEF\xBB\xBFhostname = a.example\n", NULL, "hostname", "a.example" },
	{ "no final newline", "hostname = a.example", NULL, "hostname", "a.example" },
	{ "indented key", "   hostname = a.example\n", NULL, "hostname", "a.example" },
	{ "blank lines", "\n\n  \t\nhostname = a.example\n\n", NULL, "hostname", "a.example" },
	{ "routes in order", "[route b]\nsmarthost = h\n[route a.1_x-y]\nsmarthost = h\n",
	  NULL, "routes", "b@1 a.1_x-y@3" },
	{ "empty section header spacing", "[ route   isp ]\nsmarthost = h\n", NULL, "routes",
	  "isp@1" },
	{ "comment after header", "[route isp] # the ISP\nsmarthost = h\n", NULL, "routes",
	  "isp@1" },
};

static void
loads_every_global_key(void **state)
{
	(void)state;
	run_good(globals, N(globals));
}

static const struct good_case routes[] = {
	{ "smarthost with port", "[route isp]\nsmarthost = smtp.isp.example:587\n", "isp",
	  "smarthost", "smtp.isp.example port 587" },
	{ "smarthost IPv6", "[route isp]\nsmarthost = [2001:db8::1]:2525\n", "isp",
	  "smarthost", "2001:db8::1 port 2525" },
	{ "smarthost IPv4", "[route isp]\nsmarthost = 192.0.2.1\n", "isp", "smarthost",
	  "192.0.2.1 port 25" },
	{ "tls default on 465", "[route isp]\nsmarthost = h:465\n", "isp", "tls", "tls" },
	{ "tls default on 587", "[route isp]\nsmarthost = h:587\n", "isp", "tls", "starttls" },
	{ "tls none", ISP "tls = none\n", "isp", "tls", "none" },
	{ "tls implicit on 587", "[route isp]\nsmarthost = h:587\ntls = tls\n", "isp", "tls",
	  "tls" },
	{ "starttls on 465", "[route isp]\nsmarthost = h:465\ntls = starttls\n", "isp", "tls",
	  "starttls" },
	{ "tls-verify no", ISP "tls-verify = no\n", "isp", "tls-verify", "0" },
	{ "tls-verify off", ISP "tls-verify = off\n", "isp", "tls-verify", "0" },
	{ "tls-verify false", ISP "tls-verify = false\n", "isp", "tls-verify", "0" },
	{ "tls-verify 0", ISP "tls-verify = 0\n", "isp", "tls-verify", "0" },
	{ "tls-verify yes", ISP "tls-verify = yes\n", "isp", "tls-verify", "1" },
	{ "tls-verify on", ISP "tls-verify = On\n", "isp", "tls-verify", "1" },
	{ "tls-verify true", ISP "tls-verify = TRUE\n", "isp", "tls-verify", "1" },
	{ "tls-verify 1", ISP "tls-verify = 1\n", "isp", "tls-verify", "1" },
	{ "tls-ca-file", ISP "tls-ca-file = /etc/ssl/isp.pem\n", "isp", "tls-ca-file",
	  "/etc/ssl/isp.pem" },
	{ "fingerprint colon form", ISP "tls-fingerprint = sha256:01:23:45:67:89:ab:cd:ef:"
	  "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef\n", "isp",
	  "tls-fingerprint", FP_NORM },
	{ "fingerprint plain hex", ISP "tls-fingerprint = " FP_HEX "\n", "isp",
	  "tls-fingerprint", FP_NORM },
	{ "fingerprint prefix and plain hex", ISP "tls-fingerprint = SHA256:" FP_HEX "\n",
	  "isp", "tls-fingerprint", FP_NORM },
	{ "fingerprints accumulate", ISP "tls-fingerprint = " FP_HEX "\ntls-fingerprint = "
	  "sha256:" "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n", "isp",
	  "tls-fingerprint", FP_NORM " sha256:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:"
	  "FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF" },
	{ "tls-cert", ISP "tls-cert = /c.pem\ntls-key = /k.pem\n", "isp", "tls-cert", "/c.pem" },
	{ "tls-key", ISP "tls-cert = /c.pem\ntls-key = /k.pem\n", "isp", "tls-key", "/k.pem" },
	{ "user", ISP "user = joe\n", "isp", "route-user", "joe" },
	{ "password", ISP "user = joe\npassword = s3cret word\n", "isp", "password",
	  "s3cret word" },
	{ "password-command", ISP "user = joe\npassword-command = pass show isp\n", "isp",
	  "password-command", "pass show isp" },
	{ "auth list upper-cased", ISP "auth = cram-md5 Plain\n", "isp", "auth",
	  "CRAM-MD5 PLAIN" },
	{ "auth auto", ISP "auth = auto\n", "isp", "auth", "" },
	{ "auth AUTO", ISP "auth = AUTO\n", "isp", "auth", "" },
	{ "auth every mechanism", ISP "auth = scram-sha-256-plus scram-sha-256 "
	  "scram-sha-1-plus scram-sha-1 gssapi digest-md5 cram-md5 plain login xoauth2 "
	  "oauthbearer\n", "isp", "auth", "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS "
	  "SCRAM-SHA-1 GSSAPI DIGEST-MD5 CRAM-MD5 PLAIN LOGIN XOAUTH2 OAUTHBEARER" },
	{ "auth repeated accumulates", ISP "auth = scram-sha-256\nauth = login\n", "isp",
	  "auth", "SCRAM-SHA-256 LOGIN" },
	{ "envelope-from", ISP "envelope-from = joe@isp.example\n", "isp", "envelope-from",
	  "joe@isp.example" },
	{ "envelope-from from user", ISP "user = joe@isp.example\n", "isp", "envelope-from",
	  "joe@isp.example" },
	{ "envelope-from not from a plain user", ISP "user = joe\n", "isp", "envelope-from",
	  "(null)" },
	{ "envelope-from beats user", ISP "user = joe@isp.example\n"
	  "envelope-from = me@home.example\n", "isp", "envelope-from", "me@home.example" },
	{ "allow-plaintext-auth", ISP "allow-plaintext-auth = yes\n", "isp",
	  "allow-plaintext-auth", "1" },
	{ "oauth-token-command", ISP "user = joe@gmail.example\n"
	  "oauth-token-command = oauth2 token\n", "isp", "oauth-token-command",
	  "oauth2 token" },
	{ "connect-timeout", ISP "connect-timeout = 5s\n", "isp", "connect-timeout", "5000" },
	{ "reply-timeout", ISP "reply-timeout = 2s\n", "isp", "reply-timeout", "2000" },
	{ "retry inherited", "retry = 10s 20s\n" ISP, "isp", "retry", "10000 20000" },
	{ "retry overridden", "retry = 10s 20s\n" ISP "retry = 1m\n", "isp", "retry", "60000" },
	{ "retry override leaves global", "retry = 10s 20s\n" ISP "retry = 1m\n", NULL,
	  "retry", "10000 20000" },
	{ "retry-max inherited", "retry-max = 1h\n" ISP, "isp", "retry-max", "3600000" },
	{ "retry-max overridden", "retry-max = 1h\n" ISP "retry-max = 2h\n", "isp",
	  "retry-max", "7200000" },
	{ "max-age inherited", "max-age = 1d\n" ISP, "isp", "max-age", "86400000" },
	{ "max-age overridden", "max-age = 1d\n" ISP "max-age = 3d\n", "isp", "max-age",
	  "259200000" },
};

static void
loads_every_route_key(void **state)
{
	(void)state;
	run_good(routes, N(routes));
}

/* ------------------------------------------------------------------------ */
/* Bad files                                                                 */

struct bad_case {
	const char *name, *text;
	const char *want[6];     /* one per line of err, in order */
};

/* Every password in these cases contains it; no message may. */
#define SECRET "hunter"

static const struct bad_case bad[] = {
	{ "unknown key", "foo = 1\n", { NAME ":1: unknown key 'foo'" } },
	{ "unknown key in a route", ISP "colour = red\n", { NAME ":3: unknown key 'colour'" } },
	{ "global key in a route", ISP "spool = /x\n",
	  { NAME ":3: spool is a global key; move it above the first [route] section" } },
	{ "route key before any route", "smarthost = h\n",
	  { NAME ":1: smarthost is a route key; put it in a [route NAME] section" } },
	{ "unknown section", "[global]\nspool = /x\n", { NAME ":1: unknown section [global]" } },
	{ "route without a name", "[route]\nsmarthost = h\n",
	  { NAME ":1: [route] needs a name: [route NAME]" } },
	{ "route name with a slash", "[route a/b]\nsmarthost = h\n",
	  { NAME ":1: bad route name in [route a/b]" } },
	{ "route name of two words", "[route a b]\nsmarthost = h\n",
	  { NAME ":1: bad route name in [route a b]" } },
	{ "duplicate route", ISP "[route isp]\nsmarthost = h\n",
	  { NAME ":3: route isp is already defined at line 1" } },
	{ "text after a header", "[route isp] x\nsmarthost = h\n",
	  { NAME ":1: text after ']'" } },
	{ "header without ]", "[route isp\nsmarthost = h\n",
	  { NAME ":1: syntax error (expected key = value or [section])" } },
	{ "line without =", "hostname = a.example\njust words\n",
	  { NAME ":2: syntax error (expected key = value or [section])" } },
	{ "indented line is no continuation", "hostname = a.example\n   more\n",
	  { NAME ":2: syntax error (expected key = value or [section])" } },
	{ "empty key", "= 5\n", { NAME ":1: unknown key ''" } },
	{ "bad duration", "command-timeout = 5x\n",
	  { NAME ":1: command-timeout: '5x' is not a duration; write e.g. 500ms, 30s" } },
	{ "negative duration", "command-timeout = -5s\n",
	  { NAME ":1: command-timeout: '-5s' is not a duration" } },
	{ "duration with a space", "command-timeout = 5 m\n",
	  { NAME ":1: command-timeout: '5 m' is not a duration" } },
	{ "empty duration", "command-timeout =\n",
	  { NAME ":1: command-timeout: '' is not a duration" } },
	{ "duration overflow in digits", "max-age = 99999999999999999999999s\n",
	  { NAME ":1: max-age: '99999999999999999999999s' is not a duration" } },
	{ "duration overflow in unit", "max-age = 18446744073709551615d\n",
	  { NAME ":1: max-age: '18446744073709551615d' is not a duration" } },
	{ "duration too long", "command-timeout = 2h\n",
	  { NAME ":1: command-timeout: '2h' is out of range; use 100ms to 1h" } },
	{ "duration too short", ISP "connect-timeout = 10ms\n",
	  { NAME ":3: connect-timeout: '10ms' is out of range; use 100ms to 10m" } },
	{ "bad size", "max-message-size = 10X\n",
	  { NAME ":1: max-message-size: '10X' is not a size; write e.g. 512, 64k, 10M or 1G" } },
	{ "size in T", "max-message-size = 1T\n",
	  { NAME ":1: max-message-size: '1T' is not a size" } },
	{ "size overflow", "max-message-size = 99999999999G\n",
	  { NAME ":1: max-message-size: '99999999999G' is not a size" } },
	{ "size below 1k", "max-message-size = 512\n",
	  { NAME ":1: max-message-size: '512' is out of range; use 1k to 2G" } },
	{ "size above 2G", "max-message-size = 3G\n",
	  { NAME ":1: max-message-size: '3G' is out of range; use 1k to 2G" } },
	{ "bad bool", ISP "tls-verify = maybe\n",
	  { NAME ":3: tls-verify: 'maybe' is not yes or no" } },
	{ "bad log-level", "log-level = verbose\n",
	  { NAME ":1: log-level: 'verbose' is not one of error, warning, info, debug" } },
	{ "bad tls mode", ISP "tls = ssl\n",
	  { NAME ":3: tls: 'ssl' is not one of starttls, tls, none" } },
	{ "uint zero", "max-recipients = 0\n",
	  { NAME ":1: max-recipients: 0 is out of range; use 1 to 100000" } },
	{ "uint too big", "max-deliveries = 101\n",
	  { NAME ":1: max-deliveries: 101 is out of range; use 1 to 100" } },
	{ "uint negative", "max-connections = -1\n",
	  { NAME ":1: max-connections: '-1' is not a whole number" } },
	{ "uint with exponent", "max-connections = 1e3\n",
	  { NAME ":1: max-connections: '1e3' is not a whole number" } },
	{ "bad cidr", "clients = 10.0.0.0/8 foo\n",
	  { NAME ":1: clients: 'foo' is not an address block" } },
	{ "cidr with host bits", "clients = 10.1.2.3/8\n",
	  { NAME ":1: clients: '10.1.2.3/8' is not an address block" } },
	{ "empty clients", "clients =\n", { NAME ":1: clients: needs a value" } },
	{ "listen with a name", "listen = localhost:25\n",
	  { NAME ":1: listen: 'localhost:25' is not ADDR:PORT with a numeric address" } },
	{ "listen without port", "listen = 127.0.0.1\n",
	  { NAME ":1: listen: '127.0.0.1' is not ADDR:PORT" } },
	{ "listen bare IPv6", "listen = ::1:25\n", { NAME ":1: listen: '::1:25' is not" } },
	{ "listen unknown flag", "listen = 127.0.0.1:25 fast\n",
	  { NAME ":1: listen: unknown listener flag 'fast' (known: tls, auth, proxy)" } },
	{ "listen empty", "listen =\n", { NAME ":1: listen: needs a value" } },
	{ "listen tls not yet", "listen = 127.0.0.1:465 tls\n",
	  { NAME ":1: listener flag 'tls' is not supported yet (no server certificate "
	    "support)" } },
	{ "listen auth not yet", "listen = 127.0.0.1:587 auth\n",
	  { NAME ":1: listener flag 'auth' is not supported yet" } },
	{ "listen proxy not yet", "listen = 127.0.0.1:25 proxy\n",
	  { NAME ":1: listener flag 'proxy' is not supported yet" } },
	{ "listen twice", "listen = 127.0.0.1:25\nlisten = [::1]:25\nlisten = 127.0.0.1:25\n",
	  { NAME ":3: listen address 127.0.0.1:25 is given twice (also at line 1)" } },
	{ "listen twice IPv6 spelled apart", "listen = [::1]:25\nlisten = [0::1]:25\n",
	  { NAME ":2: listen address [::1]:25 is given twice (also at line 1)" } },
	{ "empty retry", "retry =\n",
	  { NAME ":1: retry: needs at least one interval, such as retry = 1m 5m 15m 1h" } },
	{ "empty route retry", ISP "retry =\n",
	  { NAME ":3: retry: needs at least one interval" } },
	{ "bad retry interval", "retry = 1m x\n", { NAME ":1: retry: 'x' is not a duration" } },
	{ "retry interval too big", "retry = 1m 31d\n",
	  { NAME ":1: retry: '31d' is out of range; use 100ms to 30d" } },
	{ "bad smarthost", "[route isp]\nsmarthost = a b\n",
	  { NAME ":2: smarthost: 'a b' is not HOST[:PORT]",
	    /* no second complaint about a missing smarthost */ } },
	{ "smarthost port 0", "[route isp]\nsmarthost = h:0\n",
	  { NAME ":2: smarthost: 'h:0' is not HOST[:PORT]" } },
	{ "missing smarthost", "[route isp]\nuser = joe\n",
	  { NAME ":1: route isp has no smarthost; add smarthost = HOST[:PORT]" } },
	{ "empty route", "[route isp]\n", { NAME ":1: route isp has no smarthost" } },
	{ "login-before-smtp with another scheme", ISP "user = joe\n"
	  "login-before-smtp = ftp://pop.isp.example\n",
	  { NAME ":4: login-before-smtp: 'ftp://pop.isp.example' is not pop3://, pop3s://" } },
	{ "login keys without login-before-smtp", ISP "login-user = joe\nlogin-valid = 5m\n",
	  { NAME ":3: login-user needs login-before-smtp in route isp",
	    NAME ":4: login-valid needs login-before-smtp in route isp" } },
	{ "login-before-smtp without any user", ISP "login-before-smtp = imap://[::1]:1143\n",
	  { NAME ":3: login-before-smtp needs a user: set login-user (or user) in route isp" } },
	{ "two password sources", ISP "user = joe\npassword = hunter2\n"
	  "password-command = pass isp\n",
	  { NAME ":5: route isp has both password (line 4) and password-command (line 5); "
	    "keep one password source" } },
	{ "password without user", ISP "password = hunter2\n",
	  { NAME ":3: password needs a user name: add user = LOGIN to route isp" } },
	{ "password-command without user", ISP "password-command = pass isp\n",
	  { NAME ":3: password-command needs a user name" } },
	{ "oauth-token-command without user", ISP "oauth-token-command = tok\n",
	  { NAME ":3: oauth-token-command needs a user name" } },
	{ "password twice", ISP "user = joe\npassword = hunter2\npassword = hunter3\n",
	  { NAME ":5: password is already set at line 4; keep one" } },
	{ "empty password", ISP "user = joe\npassword =\n",
	  { NAME ":4: password: needs a value" } },
	{ "tls-cert without tls-key", ISP "tls-cert = /c.pem\n",
	  { NAME ":3: tls-cert without tls-key" } },
	{ "tls-key without tls-cert", ISP "tls-key = /k.pem\n",
	  { NAME ":3: tls-key without tls-cert" } },
	{ "bad fingerprint", ISP "tls-fingerprint = sha256:abcd\n",
	  { NAME ":3: tls-fingerprint: 'sha256:abcd' is not a SHA-256 fingerprint" } },
	{ "fingerprint with wrong separators", ISP "tls-fingerprint = sha256:01-23-45-67-89-"
	  "ab-cd-ef-01-23-45-67-89-ab-cd-ef-01-23-45-67-89-ab-cd-ef-01-23-45-67-89-ab-cd-ef\n",
	  { NAME ":3: tls-fingerprint: 'sha256:01-23" } },
	{ "sha1 fingerprint", ISP "tls-fingerprint = sha1:0123456789abcdef0123456789abcdef"
	  "01234567\n", { NAME ":3: tls-fingerprint: 'sha1:" } },
	{ "fingerprint twice", ISP "tls-fingerprint = " FP_HEX " sha256:" FP_HEX "\n",
	  { NAME ":3: tls-fingerprint: " FP_NORM " is listed twice" } },
	{ "unknown mechanism", ISP "auth = plain ntlm\n",
	  { NAME ":3: auth: unknown mechanism 'ntlm'" } },
	{ "auto not alone", ISP "auth = auto plain\n",
	  { NAME ":3: auth: 'auto' must stand alone (auth = auto)" } },
	{ "mechanism twice", ISP "auth = plain PLAIN\n",
	  { NAME ":3: auth: PLAIN is listed twice" } },
	{ "empty auth", ISP "auth =\n", { NAME ":3: auth: needs a value" } },
	{ "envelope-from without @", ISP "envelope-from = joe\n",
	  { NAME ":3: envelope-from: 'joe' is not an address such as joe@isp.example" } },
	{ "envelope-from in brackets", ISP "envelope-from = <joe@isp.example>\n",
	  { NAME ":3: envelope-from: '<joe@isp.example>' is not an address" } },
	{ "bad hostname", "hostname = a b\n", { NAME ":1: hostname: 'a b' is not a host name" } },
	{ "empty hostname", "hostname =\n", { NAME ":1: hostname: needs a value" } },
	{ "empty spool", "spool =\n", { NAME ":1: spool: needs a value (a file name)" } },
	{ "empty route user", ISP "user =\n", { NAME ":3: user: needs a value" } },
	{ "scalar key twice", "hostname = a.example\nhostname = b.example\n",
	  { NAME ":2: hostname is already set at line 1; keep one" } },
	{ "long line", NULL, { NAME ":2: line longer than 65533 bytes" } },
	{ "several errors, each with its line",
	  "foo = 1\n"                          /* 1 */
	  "max-recipients = lots\n"            /* 2 */
	  "# fine\n"                           /* 3 */
	  "broken line\n"                      /* 4 */
	  "[route isp]\n"                      /* 5: no smarthost */
	  "tls = maybe\n",                     /* 6 */
	  { NAME ":1: unknown key 'foo'", NAME ":2: max-recipients: 'lots'",
	    NAME ":4: syntax error", NAME ":5: route isp has no smarthost",
	    NAME ":6: tls: 'maybe' is not one of" } },
	{ "syntax errors are all reported", "a\nb\nhostname = x.example\nc\n",
	  { NAME ":1: syntax error", NAME ":2: syntax error", NAME ":4: syntax error" } },
};

static size_t
count_lines(const char *s)
{
	size_t n = s[0] != '\0';

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static char *
long_line_text(void)
{
	static const char head[] = "hostname = a.example\nspool = /";
	size_t len = 70000;
	char *t = xmalloc(sizeof head + len + 64);

	memcpy(t, head, sizeof head - 1);
	memset(t + sizeof head - 1, 'x', len);
	strcpy(t + sizeof head - 1 + len, " user = z\nuser = bob\n");
	return t;
}

static void
check_bad(const struct bad_case *c, const char *text)
{
	struct config *cfg = NULL;
	struct err err;
	size_t want = 0;

	memset(&err, 'x', sizeof err);
	if (config_load_string(text, NAME, &cfg, &err) == 0) {
		config_free(cfg);
		fail_msg("%s: loaded, want an error", c->name);
	}
	if (cfg != NULL)
		fail_msg("%s: *out was set on error", c->name);
	for (const char *p = err.msg; want < N(c->want) && c->want[want] != NULL; want++) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);

		if (strncmp(p, c->want[want], strlen(c->want[want])) != 0 ||
		    (size_t)(end - p) < strlen(c->want[want]))
			fail_msg("%s: error %zu:\n got: %.*s\nwant: %s...\n(all: %s)", c->name,
			    want + 1, (int)(end - p), p, c->want[want], err.msg);
		p = nl ? nl + 1 : end;
	}
	if (count_lines(err.msg) != want)
		fail_msg("%s: got %zu errors, want %zu:\n%s", c->name, count_lines(err.msg),
		    want, err.msg);
	if (strstr(err.msg, SECRET) != NULL)
		fail_msg("%s: the secret is in the message: %s", c->name, err.msg);
}

static void
refuses_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		char *text = bad[i].text ? NULL : long_line_text();

		check_bad(&bad[i], bad[i].text ? bad[i].text : text);
		free(text);
	}
}

static void
caps_the_number_of_errors(void **state)
{
	char *text = xmalloc(200 * 8 + 1);
	struct config *cfg = NULL;
	struct err err;

	(void)state;
	text[0] = '\0';
	for (int i = 0; i < 200; i++)
		strcat(text, "bad = 1\n");
	assert_int_equal(config_load_string(text, NAME, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, NAME ":1: unknown key 'bad'"));
	assert_non_null(strstr(err.msg, "more errors not shown"));
	assert_true(strlen(err.msg) < sizeof err.msg - 1);
	free(text);
}

/* ------------------------------------------------------------------------ */
/* Paths, files, the file system                                              */

static void
makes_relative_paths_absolute(void **state)
{
	static const struct { const char *name, *text, *what, *tail; } cases[] = {
		{ "dot slash", "spool = ./var/spool\n", "spool", "/var/spool" },
		{ "plain relative", "spool = var\n", "spool", "/var" },
		{ "dot", "spool = .\n", "spool", "" },
		{ "route path", ISP "tls-ca-file = ca.pem\n", "tls-ca-file", "/ca.pem" },
	};
	char cwd[PATH_MAX];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof cwd));
	for (size_t i = 0; i < N(cases); i++) {
		struct config *cfg = load_ok(cases[i].name, cases[i].text);
		char got[PATH_MAX + 64], want[PATH_MAX + 64];

		probe(cases[i].name, cfg, strstr(cases[i].text, "route") ? "isp" : NULL,
		    cases[i].what, got, sizeof got);
		snprintf(want, sizeof want, "%s%s", strcmp(cwd, "/") == 0 &&
		    cases[i].tail[0] ? "" : cwd, cases[i].tail);
		if (strcmp(got, want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].name, got, want);
		config_free(cfg);
	}
}

static void
defaults_hostname_to_the_system_name(void **state)
{
	struct config *cfg = load_ok("hostname", "");
	char want[256];

	(void)state;
	assert_int_equal(gethostname(want, sizeof want), 0);
	assert_string_equal(cfg->hostname, want);
	config_free(cfg);
}

static char tmpdir[] = "/tmp/test_config.XXXXXX";

static int
make_tmpdir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
remove_tmpdir(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write a file of that mode under tmpdir; returns its path (static). */
static const char *
make_file(const char *name, const char *text, mode_t mode)
{
	static char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void
checks_password_file_permissions(void **state)
{
	static const struct { const char *name; mode_t mode; const char *want; } cases[] = {
		{ "private file", 0600, NULL },
		{ "read-only private file", 0400, NULL },
		{ "readable by others", 0644, " is readable by others; chmod 600 it" },
		{ "readable by group", 0640, " is readable or writable by its group or others; "
		  "chmod 600 it" },
		{ "writable by others", 0602, " is readable or writable by its group or others" },
		{ "missing", 0, ": No such file or directory" },
		{ "a directory", 0, " is not a regular file" },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		char path[PATH_MAX], text[PATH_MAX + 128], want[PATH_MAX + 128];
		struct config *cfg = NULL;
		struct err err;
		int got;

		if (strcmp(cases[i].name, "missing") == 0)
			snprintf(path, sizeof path, "%s/none", tmpdir);
		else if (strcmp(cases[i].name, "a directory") == 0)
			snprintf(path, sizeof path, "%s", tmpdir);
		else
			snprintf(path, sizeof path, "%s", make_file("secret", "pw\n", cases[i].mode));
		snprintf(text, sizeof text, ISP "user = joe\npassword-file = %s\n", path);
		got = config_load_string(text, NAME, &cfg, &err);
		if (cases[i].want == NULL) {
			if (got != 0)
				fail_msg("%s: got %s, want it to load", cases[i].name, err.msg);
			assert_string_equal(config_default_route(cfg)->password_file, path);
			config_free(cfg);
			continue;
		}
		snprintf(want, sizeof want, NAME ":4: password-file %s%s", path, cases[i].want);
		if (got == 0 || strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("%s: got %d '%s', want '%s'", cases[i].name, got,
			    got == 0 ? "" : err.msg, want);
	}
}

static void
loads_files(void **state)
{
	static const struct {
		const char *name, *text;
		size_t len;            /* 0: strlen(text) */
		mode_t mode;
		const char *want;      /* NULL: loads */
	} cases[] = {
		{ "private with password", ISP "user = joe\npassword = hunter2\n", 0, 0600, NULL },
		{ "group-readable with password", ISP "user = joe\npassword = hunter2\n", 0, 0640,
		  NULL },
		{ "world-readable with password", ISP "user = joe\npassword = hunter2\n", 0, 0644,
		  ":4: password is set in a file that others can read; chmod 600 " },
		{ "world-readable without password", ISP "user = joe\n", 0, 0644, NULL },
		{ "NUL byte", "hostname = a.example\nuser\0 = x\n",
		  sizeof "hostname = a.example\nuser\0 = x\n" - 1, 0600,
		  ":2: a NUL byte; this is not a text file" },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		const char *path = make_file("mailredir.conf", cases[i].text, cases[i].mode);
		struct config *cfg = NULL;
		char want[PATH_MAX + 128];
		struct err err;
		int got;

		if (cases[i].len != 0) {
			int fd = open(path, O_WRONLY | O_TRUNC);

			assert_int_equal(write_all(fd, cases[i].text, cases[i].len), 0);
			close(fd);
		}
		got = config_load(path, &cfg, &err);
		if (cases[i].want == NULL) {
			if (got != 0)
				fail_msg("%s: got '%s', want it to load", cases[i].name, err.msg);
			assert_string_equal(cfg->path, path);
			config_free(cfg);
			continue;
		}
		snprintf(want, sizeof want, "%s%s", path, cases[i].want);
		if (got == 0 || strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("%s: got %d '%s', want '%s'", cases[i].name, got,
			    got == 0 ? "" : err.msg, want);
		if (strstr(err.msg, "hunter2") != NULL)
			fail_msg("%s: the password is in the message", cases[i].name);
	}
}

static void
reports_unreadable_files(void **state)
{
	struct config *cfg = NULL;
	struct err err;
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
	assert_int_equal(config_load(path, &cfg, &err), -1);
	assert_null(cfg);
	assert_non_null(strstr(err.msg, "cannot read the configuration: "));
	assert_non_null(strstr(err.msg, "absent.conf: No such file or directory"));
}

/* The files the project ships load as they are. */
static void
loads_shipped_examples(void **state)
{
	static const char *const files[] = { "etc/mailredir.conf", "etc/mailredir.conf.example" };
	const char *dir = getenv("MAILREDIR_SRCDIR");

	(void)state;
	for (size_t i = 0; i < N(files); i++) {
		char path[PATH_MAX];
		struct config *cfg = NULL;
		struct err err;

		snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", files[i]);
		if (config_load(path, &cfg, &err) < 0)
			fail_msg("%s: %s", files[i], err.msg);
		config_free(cfg);
	}
}

/* STYLE.md §6: every key is documented. */
static void
documents_every_key(void **state)
{
	const char *dir = getenv("MAILREDIR_SRCDIR");
	char path[PATH_MAX], *page;
	struct err err;
	size_t i;

	(void)state;
	snprintf(path, sizeof path, "%s/doc/mailredir.conf.5", dir ? dir : ".");
	if (read_file(path, 1 << 20, &page, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	for (i = 0; config_key_name(i) != NULL; i++) {
		char entry[128] = "\n\\fB";

		/* groff writes a hyphen in a name as \- */
		for (const char *p = config_key_name(i); *p != '\0'; p++)
			snprintf(entry + strlen(entry), sizeof entry - strlen(entry), "%s",
			    *p == '-' ? "\\-" : (char[]){ *p, '\0' });
		strcat(entry, "\\fR = ");
		if (strstr(page, entry) == NULL)
			fail_msg("key %s has no entry (a line starting \\fB%s\\fR = ) in %s",
			    config_key_name(i), config_key_name(i), path);
	}
	assert_true(i > 30);
	free(page);
}

/* ------------------------------------------------------------------------ */
/* Value parsers and the rest of the interface                                */

static void
parses_durations(void **state)
{
	static const struct { const char *text; int want; uint64_t ms; } cases[] = {
		{ "500ms", 0, 500 }, { "30s", 0, 30000 }, { "5m", 0, 300000 },
		{ "2h", 0, 7200000 }, { "5d", 0, 432000000 }, { "42", 0, 42000 },
		{ "0", 0, 0 }, { "007s", 0, 7000 },
		{ "18446744073709551615ms", 0, UINT64_MAX },
		{ "18446744073709551616ms", -1, 0 }, { "18446744073709552s", -1, 0 },
		{ "", -1, 0 }, { "s", -1, 0 }, { "-1s", -1, 0 }, { "+1s", -1, 0 },
		{ "1.5h", -1, 0 }, { "1w", -1, 0 }, { "5 s", -1, 0 }, { " 5s", -1, 0 },
		{ "5S", -1, 0 }, { "5sec", -1, 0 }, { "1h30m", -1, 0 }, { "5M", -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		uint64_t ms = 0;
		int got = config_parse_duration(cases[i].text, &ms);

		if (got != cases[i].want || (got == 0 && ms != cases[i].ms))
			fail_msg("'%s': got %d %llu, want %d %llu", cases[i].text, got,
			    (unsigned long long)ms, cases[i].want, (unsigned long long)cases[i].ms);
	}
}

static void
parses_sizes(void **state)
{
	static const struct { const char *text; int want; uint64_t bytes; } cases[] = {
		{ "512", 0, 512 }, { "64k", 0, 65536 }, { "64K", 0, 65536 },
		{ "10M", 0, 10485760 }, { "10m", 0, 10485760 }, { "1G", 0, 1073741824 },
		{ "1g", 0, 1073741824 }, { "0", 0, 0 },
		{ "17179869183G", 0, 17179869183ULL << 30 }, { "17179869184G", -1, 0 },
		{ "", -1, 0 }, { "k", -1, 0 }, { "-1k", -1, 0 }, { "1.5M", -1, 0 },
		{ "1T", -1, 0 }, { "1 k", -1, 0 }, { "1kb", -1, 0 }, { "1KiB", -1, 0 },
		{ "99999999999999999999", -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		uint64_t n = 0;
		int got = config_parse_size(cases[i].text, &n);

		if (got != cases[i].want || (got == 0 && n != cases[i].bytes))
			fail_msg("'%s': got %d %llu, want %d %llu", cases[i].text, got,
			    (unsigned long long)n, cases[i].want, (unsigned long long)cases[i].bytes);
	}
}

static void
chooses_the_file(void **state)
{
	(void)state;
	unsetenv("MAILREDIR_CONFIG");
	assert_string_equal(config_choose_path(NULL), "/etc/mailredir.conf");
	assert_string_equal(config_choose_path("x.conf"), "x.conf");
	setenv("MAILREDIR_CONFIG", "/env.conf", 1);
	assert_string_equal(config_choose_path(NULL), "/env.conf");
	assert_string_equal(config_choose_path("x.conf"), "x.conf");
	setenv("MAILREDIR_CONFIG", "", 1);
	assert_string_equal(config_choose_path(NULL), "/etc/mailredir.conf");
	unsetenv("MAILREDIR_CONFIG");
}

static void
finds_routes(void **state)
{
	struct config *cfg = load_ok("routes", "[route b]\nsmarthost = h\n"
	    "[route a]\nsmarthost = h\n");

	(void)state;
	assert_string_equal(config_default_route(cfg)->name, "b");
	assert_string_equal(config_find_route(cfg, "a")->name, "a");
	assert_null(config_find_route(cfg, "c"));
	config_free(cfg);
	cfg = load_ok("no routes", "");
	assert_null(config_default_route(cfg));
	assert_null(config_find_route(cfg, "a"));
	config_free(cfg);
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fills_defaults),
		cmocka_unit_test(loads_every_global_key),
		cmocka_unit_test(loads_every_route_key),
		cmocka_unit_test(refuses_bad_files),
		cmocka_unit_test(caps_the_number_of_errors),
		cmocka_unit_test(makes_relative_paths_absolute),
		cmocka_unit_test(defaults_hostname_to_the_system_name),
		cmocka_unit_test(checks_password_file_permissions),
		cmocka_unit_test(loads_files),
		cmocka_unit_test(reports_unreadable_files),
		cmocka_unit_test(loads_shipped_examples),
		cmocka_unit_test(documents_every_key),
		cmocka_unit_test(parses_durations),
		cmocka_unit_test(parses_sizes),
		cmocka_unit_test(chooses_the_file),
		cmocka_unit_test(finds_routes),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
