/* config.c - mailredir.conf (mailredir.conf.5); see config.h.
 *
 * inih splits the file into sections and key = value pairs; everything else
 * is decided here: one table of keys (keys[], below) says for each key its
 * type, where it is stored, its default and its bounds, and a table of types
 * (types[]) knows how to parse, store and free each kind of value.  After the
 * file has been read, defaults are filled in, routes inherit the global retry
 * policy, and a second pass checks combinations (check_global, check_route).
 *
 * Every problem is collected with its line and reported at the end, sorted
 * by line; a file with any problem yields no configuration.
 *
 * Input is trusted to the extent that the administrator wrote it, but it is
 * also fed from the fuzzer: nothing here may crash, leak or loop on any
 * bytes.  SECURITY: the value of `password` is never put into a message and
 * is wiped when the tree is freed; the file's text is wiped after parsing.
 *
 * Lines: inih's handler is not told the line number, and inih (built without
 * INI_CALL_HANDLER_ON_NEW_SECTION) says nothing about a section header at
 * all, so a [route] without keys would be invisible and long section names
 * are cut at 49 bytes.  Our reader (read_line) therefore counts lines, and
 * looks at each line before inih does: blank/comment, section header (parsed
 * here, with inih's own rule for where it ends), or a pair that inih must
 * hand to on_pair before it asks for the next line -- one it did not hand
 * over is a syntax error.  So every syntax error is reported, not only the
 * first one that ini_parse_stream returns. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "identity.h"
#include "util.h"

#define CONFIG_MAX_FILE    (1024 * 1024)
#define CONFIG_MAX_LINE    65536   /* inih's line buffer (ini_max_line) */
#define CONFIG_LINE_MAX    (CONFIG_MAX_LINE - 3)  /* room for "\r\n\0" */
#define CONFIG_MAX_ERRORS  50
#define CONFIG_MAX_STEPS   100     /* retry intervals */
#define SMARTHOST_MAX      256
#define WHY_MAX            512
#define SHOW_MAX           110     /* a whole fingerprint fits */

#define MS   1ULL
#define SEC  (1000 * MS)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define KIB  1024ULL
#define GIB  (KIB * KIB * KIB)

#define SYNTAX_ERROR "syntax error (expected key = value or [section])"

/* printf arguments for "%.*s%s": at most SHOW_MAX bytes of s, "..." if cut. */
#define SHOWN(s) (int)(strlen(s) > SHOW_MAX ? SHOW_MAX : strlen(s)), (s), \
	(strlen(s) > SHOW_MAX ? "..." : "")

_Static_assert(sizeof(enum tls_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enums are stored as int");

/* ------------------------------------------------------------------------ */
/* The table of keys                                                         */

enum key_type {
	T_STRING,    /* text; a check function may refuse or normalise it */
	T_PATH,      /* a file name, made absolute against the cwd at load */
	T_BOOL,      /* yes/no true/false on/off 1/0 */
	T_UINT,      /* unsigned, min..max */
	T_DURATION,  /* "500ms 30s 5m 2h 5d", stored in ms, min..max */
	T_SIZE,      /* "512 64k 10M 1G", stored in bytes, min..max */
	T_ENUM,      /* one of names[] */
	T_LIST,      /* space-separated words, accumulates when repeated */
	T_LISTEN,    /* ADDR:PORT [flags]; accumulates */
	T_CIDRS,     /* space-separated CIDR blocks; accumulates */
	T_RETRY,     /* space-separated durations, each min..max */
	T_HOSTPORT,  /* host[:port] into a string and a uint16_t (aux) */
	T_LOGIN_URL, /* pop3|pop3s|imap|imaps://host[:port] into a struct login_url */
};

enum key_flag {
	KEY_SECRET   = 1 << 0,  /* never shown in a message; wiped on free */
	KEY_EMPTY_OK = 1 << 1,  /* "key =" is a value (user = : keep the user) */
	KEY_AUTO     = 1 << 2,  /* a list where "auto" alone means: empty */
};

/* Where a key is stored in struct config or struct route.  aux: the count
 * of a list, the port of a host:port. */
struct place {
	size_t off, aux;
	bool used;
};

struct name_value {
	const char *name;
	int value;
};

/* Check one string or list item; on success *out is the (maybe normalised)
 * copy to store.  why gets the reason, naming the item, on failure. */
typedef int check_fn(const char *in, char **out, char *why, size_t whysize);

struct key {
	const char *name;
	enum key_type type;
	struct place g, r;              /* global and route storage (scope) */
	const char *def;                /* default, written as in the file */
	uint64_t min, max;              /* T_UINT, T_DURATION, T_SIZE, T_RETRY */
	const struct name_value *names; /* T_ENUM, NULL-terminated */
	check_fn *check;                /* T_STRING, T_LIST */
	unsigned flags;                 /* enum key_flag */
};

enum key_id {
	K_LISTEN, K_SPOOL, K_HOSTNAME, K_USER, K_CLIENTS, K_MAX_MESSAGE_SIZE,
	K_MAX_RECIPIENTS, K_MAX_CONNECTIONS, K_MAX_CONNECTIONS_PER_CLIENT,
	K_COMMAND_TIMEOUT, K_DATA_TIMEOUT, K_LOG_LEVEL, K_MAX_DELIVERIES,
	K_RETRY, K_RETRY_MAX, K_MAX_AGE,
	K_SMARTHOST, K_TLS, K_TLS_VERIFY, K_TLS_CA_FILE, K_TLS_FINGERPRINT,
	K_TLS_CERT, K_TLS_KEY, K_ROUTE_USER, K_PASSWORD_FILE, K_PASSWORD_COMMAND,
	K_PASSWORD, K_AUTH, K_ENVELOPE_FROM, K_ALLOW_PLAINTEXT_AUTH,
	K_OAUTH_TOKEN_COMMAND, K_CONNECT_TIMEOUT, K_REPLY_TIMEOUT,
	K_DOMAINS, K_SENDERS, K_HEADER_FROM, K_FROM_MAP, K_BOUNCE, K_BOUNCE_FROM,
	K_DELAY_WARNING, K_LOGIN_BEFORE_SMTP, K_LOGIN_USER, K_LOGIN_PASSWORD_FILE,
	K_LOGIN_PASSWORD_COMMAND, K_LOGIN_DELAY, K_LOGIN_VALID, K_LOGIN_TLS,
	K_COUNT
};

static check_fn check_hostname, check_address, check_fingerprint, check_mechanism,
    check_domain_pattern, check_sender_pattern, check_bounce;

static const struct name_value log_levels[] = {
	{ "error", LOG_LEVEL_ERR }, { "warning", LOG_LEVEL_WARN },
	{ "info", LOG_LEVEL_INFO }, { "debug", LOG_LEVEL_DEBUG }, { NULL, 0 },
};

static const struct name_value header_from_modes[] = {
	{ "keep", HEADER_FROM_KEEP }, { "rewrite", HEADER_FROM_REWRITE }, { NULL, 0 },
};

static const struct name_value login_tls_modes[] = {
	{ "required", LOGIN_TLS_REQUIRED }, { "none", LOGIN_TLS_NONE }, { NULL, 0 },
};

static const struct name_value tls_modes[] = {
	{ "starttls", TLS_MODE_STARTTLS }, { "tls", TLS_MODE_TLS },
	{ "none", TLS_MODE_NONE }, { NULL, 0 },
};

#define GLOBAL(f)     { offsetof(struct config, f), 0, true }
#define GLOBAL2(f, a) { offsetof(struct config, f), offsetof(struct config, a), true }
#define ROUTE(f)      { offsetof(struct route, f), 0, true }
#define ROUTE2(f, a)  { offsetof(struct route, f), offsetof(struct route, a), true }
#define NOWHERE       { 0, 0, false }

/* Keys with both places are global and may be overridden per route; a
 * route that does not set them takes the global value. */
#define KEY(n, t, gplace, rplace) .name = n, .type = t, .g = gplace, .r = rplace
#define RANGE(lo, hi) .min = lo, .max = hi

static const struct key keys[K_COUNT] = {
	[K_LISTEN] = { KEY("listen", T_LISTEN, GLOBAL2(listen, nlisten), NOWHERE),
		.def = "127.0.0.1:25" },
	[K_SPOOL] = { KEY("spool", T_PATH, GLOBAL(spool), NOWHERE),
		.def = CONFIG_DEFAULT_SPOOL },
	/* default: gethostname(), in check_global */
	[K_HOSTNAME] = { KEY("hostname", T_STRING, GLOBAL(hostname), NOWHERE),
		.check = check_hostname },
	[K_USER] = { KEY("user", T_STRING, GLOBAL(user), NOWHERE),
		.def = CONFIG_DEFAULT_USER, .flags = KEY_EMPTY_OK },
	[K_CLIENTS] = { KEY("clients", T_CIDRS, GLOBAL2(clients, nclients), NOWHERE),
		.def = "127.0.0.0/8 ::1/128" },
	[K_MAX_MESSAGE_SIZE] = { KEY("max-message-size", T_SIZE, GLOBAL(max_message_size),
		NOWHERE), .def = "25M", RANGE(KIB, 2 * GIB) },
	[K_MAX_RECIPIENTS] = { KEY("max-recipients", T_UINT, GLOBAL(max_recipients),
		NOWHERE), .def = "100", RANGE(1, 100000) },
	[K_MAX_CONNECTIONS] = { KEY("max-connections", T_UINT, GLOBAL(max_connections),
		NOWHERE), .def = "100", RANGE(1, 100000) },
	[K_MAX_CONNECTIONS_PER_CLIENT] = { KEY("max-connections-per-client", T_UINT,
		GLOBAL(max_connections_per_client), NOWHERE), .def = "20", RANGE(1, 100000) },
	[K_COMMAND_TIMEOUT] = { KEY("command-timeout", T_DURATION, GLOBAL(command_timeout_ms),
		NOWHERE), .def = "5m", RANGE(100 * MS, HOUR) },
	[K_DATA_TIMEOUT] = { KEY("data-timeout", T_DURATION, GLOBAL(data_timeout_ms),
		NOWHERE), .def = "10m", RANGE(100 * MS, HOUR) },
	[K_LOG_LEVEL] = { KEY("log-level", T_ENUM, GLOBAL(log_level), NOWHERE),
		.def = "info", .names = log_levels },
	[K_MAX_DELIVERIES] = { KEY("max-deliveries", T_UINT, GLOBAL(max_deliveries),
		NOWHERE), .def = "4", RANGE(1, 100) },
	[K_RETRY] = { KEY("retry", T_RETRY, GLOBAL2(retry.steps_ms, retry.nsteps),
		ROUTE2(retry.steps_ms, retry.nsteps)), .def = "1m 5m 15m 1h",
		RANGE(100 * MS, 30 * DAY) },
	[K_RETRY_MAX] = { KEY("retry-max", T_DURATION, GLOBAL(retry.max_ms),
		ROUTE(retry.max_ms)), .def = "4h", RANGE(100 * MS, 30 * DAY) },
	[K_MAX_AGE] = { KEY("max-age", T_DURATION, GLOBAL(retry.max_age_ms),
		ROUTE(retry.max_age_ms)), .def = "5d", RANGE(0, 365 * DAY) },

	/* required; checked in check_route */
	[K_SMARTHOST] = { KEY("smarthost", T_HOSTPORT, NOWHERE, ROUTE2(smarthost, port)) },
	/* default resolved in check_route: tls on port 465, else starttls */
	[K_TLS] = { KEY("tls", T_ENUM, NOWHERE, ROUTE(tls)), .names = tls_modes },
	[K_TLS_VERIFY] = { KEY("tls-verify", T_BOOL, NOWHERE, ROUTE(tls_verify)),
		.def = "yes" },
	[K_TLS_CA_FILE] = { KEY("tls-ca-file", T_PATH, NOWHERE, ROUTE(tls_ca_file)) },
	[K_TLS_FINGERPRINT] = { KEY("tls-fingerprint", T_LIST, NOWHERE,
		ROUTE2(tls_fingerprints, ntls_fingerprints)), .check = check_fingerprint },
	[K_TLS_CERT] = { KEY("tls-cert", T_PATH, NOWHERE, ROUTE(tls_cert)) },
	[K_TLS_KEY] = { KEY("tls-key", T_PATH, NOWHERE, ROUTE(tls_key)) },
	[K_ROUTE_USER] = { KEY("user", T_STRING, NOWHERE, ROUTE(user)) },
	[K_PASSWORD_FILE] = { KEY("password-file", T_PATH, NOWHERE, ROUTE(password_file)) },
	[K_PASSWORD_COMMAND] = { KEY("password-command", T_STRING, NOWHERE,
		ROUTE(password_command)) },
	/* A secret: set_string's messages never contain the value. */
	[K_PASSWORD] = { KEY("password", T_STRING, NOWHERE, ROUTE(password)),
		.flags = KEY_SECRET },
	[K_AUTH] = { KEY("auth", T_LIST, NOWHERE, ROUTE2(auth, nauth)),
		.check = check_mechanism, .flags = KEY_AUTO },
	/* default in check_route: user, when it is an address */
	[K_ENVELOPE_FROM] = { KEY("envelope-from", T_STRING, NOWHERE, ROUTE(envelope_from)),
		.check = check_address },
	[K_ALLOW_PLAINTEXT_AUTH] = { KEY("allow-plaintext-auth", T_BOOL, NOWHERE,
		ROUTE(allow_plaintext_auth)), .def = "no" },
	[K_OAUTH_TOKEN_COMMAND] = { KEY("oauth-token-command", T_STRING, NOWHERE,
		ROUTE(oauth_token_command)) },
	[K_CONNECT_TIMEOUT] = { KEY("connect-timeout", T_DURATION, NOWHERE,
		ROUTE(connect_timeout_ms)), .def = "30s", RANGE(100 * MS, 10 * MIN) },
	[K_REPLY_TIMEOUT] = { KEY("reply-timeout", T_DURATION, NOWHERE,
		ROUTE(reply_timeout_ms)), .def = "5m", RANGE(100 * MS, 10 * MIN) },
	[K_DOMAINS] = { KEY("domains", T_LIST, NOWHERE, ROUTE2(domains, ndomains)),
		.check = check_domain_pattern },
	[K_SENDERS] = { KEY("senders", T_LIST, NOWHERE, ROUTE2(senders, nsenders)),
		.check = check_sender_pattern },
	[K_HEADER_FROM] = { KEY("header-from", T_ENUM, NOWHERE, ROUTE(header_from)),
		.def = "keep", .names = header_from_modes },
	/* read and checked in check_route */
	[K_FROM_MAP] = { KEY("from-map", T_PATH, NOWHERE, ROUTE(from_map_file)) },
	[K_BOUNCE] = { KEY("bounce", T_STRING, GLOBAL(bounce), ROUTE(bounce)),
		.check = check_bounce },
	[K_BOUNCE_FROM] = { KEY("bounce-from", T_STRING, NOWHERE, ROUTE(bounce_from)),
		.check = check_address },
	[K_DELAY_WARNING] = { KEY("delay-warning", T_DURATION, GLOBAL(delay_warning_ms),
		ROUTE(delay_warning_ms)), .def = "4h", RANGE(0, 365 * DAY) },
	/* checked together in check_login */
	[K_LOGIN_BEFORE_SMTP] = { KEY("login-before-smtp", T_LOGIN_URL, NOWHERE,
		ROUTE(login)) },
	[K_LOGIN_USER] = { KEY("login-user", T_STRING, NOWHERE, ROUTE(login_user)) },
	[K_LOGIN_PASSWORD_FILE] = { KEY("login-password-file", T_PATH, NOWHERE,
		ROUTE(login_password_file)) },
	[K_LOGIN_PASSWORD_COMMAND] = { KEY("login-password-command", T_STRING, NOWHERE,
		ROUTE(login_password_command)) },
	[K_LOGIN_DELAY] = { KEY("login-delay", T_DURATION, NOWHERE, ROUTE(login_delay_ms)),
		.def = "0", RANGE(0, 10 * MIN) },
	[K_LOGIN_VALID] = { KEY("login-valid", T_DURATION, NOWHERE, ROUTE(login_valid_ms)),
		.def = "0", RANGE(0, DAY) },
	[K_LOGIN_TLS] = { KEY("login-tls", T_ENUM, NOWHERE, ROUTE(login_tls)),
		.def = "required", .names = login_tls_modes },
};

/* listen flags: recognised, but this version serves none of them yet. */
static const struct listen_flag_name {
	const char *name;
	unsigned flag;
	const char *missing;   /* why it cannot be used yet, or NULL */
} listen_flags[] = {
	{ "tls",   LISTEN_TLS,   "no server certificate support" },
	{ "auth",  LISTEN_AUTH,  "no users file support" },
	{ "proxy", LISTEN_PROXY, "no PROXY protocol support" },
};

/* auth = : what libgsasl and our own OAuth code can speak. */
static const char *const mechanisms[] = {
	"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
	"GSSAPI", "DIGEST-MD5", "CRAM-MD5", "PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER",
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static int say(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
say(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

static void *
field(void *obj, size_t off)
{
	return (char *)obj + off;
}

/* The next space-separated word of *p, or NULL; *p moves past it. */
static const char *
next_word(const char **p, size_t *len)
{
	const char *s = *p, *start;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	start = s;
	while (*s != '\0' && *s != ' ' && *s != '\t')
		s++;
	*len = (size_t)(s - start);
	*p = s;
	return start;
}

/* 1ms -> "1ms", 90000 -> "90s", 3600000 -> "1h": the largest exact unit. */
static const char *
format_duration(uint64_t ms, char *buf, size_t size)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "d", DAY }, { "h", HOUR }, { "m", MIN }, { "s", SEC }, { "ms", MS },
	};
	size_t i = 0;

	while (ms != 0 && ms % units[i].ms != 0)
		i++;
	if (ms == 0)
		i = 3;
	snprintf(buf, size, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
	return buf;
}

static const char *
format_size(uint64_t n, char *buf, size_t size)
{
	static const char suffix[] = "\0kMG";
	size_t i = 0;

	while (i < 3 && n != 0 && n % KIB == 0) {
		n /= KIB;
		i++;
	}
	snprintf(buf, size, "%llu%.1s", (unsigned long long)n, &suffix[i]);
	return buf;
}

/* Digits, at least one, into *n; *end after them.  -1 on overflow. */
static int
parse_digits(const char *s, uint64_t *n, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (p == s)
		return -1;
	*n = v;
	*end = p;
	return 0;
}

/* "<digits><suffix>" times the suffix's factor, overflow checked. */
static int
parse_scaled(const char *s, const struct name_value *suffixes, const uint64_t *factors,
    uint64_t *out)
{
	const char *end;
	uint64_t n;

	if (parse_digits(s, &n, &end) < 0)
		return -1;
	for (size_t i = 0; suffixes[i].name != NULL; i++) {
		uint64_t f = factors[suffixes[i].value];

		if (strcmp(end, suffixes[i].name) != 0)
			continue;
		if (n > UINT64_MAX / f)
			return -1;
		*out = n * f;
		return 0;
	}
	return -1;
}

int
config_parse_duration(const char *s, uint64_t *ms)
{
	static const struct name_value suffixes[] = {
		{ "", 1 }, { "ms", 0 }, { "s", 1 }, { "m", 2 }, { "h", 3 }, { "d", 4 },
		{ NULL, 0 },
	};
	static const uint64_t factors[] = { MS, SEC, MIN, HOUR, DAY };

	return parse_scaled(s, suffixes, factors, ms);
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	static const struct name_value suffixes[] = {
		{ "", 0 }, { "k", 1 }, { "K", 1 }, { "m", 2 }, { "M", 2 }, { "g", 3 },
		{ "G", 3 }, { NULL, 0 },
	};
	static const uint64_t factors[] = { 1, KIB, KIB * KIB, GIB };

	return parse_scaled(s, suffixes, factors, bytes);
}

/* A relative path is taken from the current directory, now: the daemon may
 * change directory later.  Leading "./" components are dropped. */
static char *
make_absolute(const char *path, char *why, size_t whysize)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return xstrdup(path);
	if (getcwd(cwd, sizeof cwd) == NULL) {
		say(why, whysize, "cannot find the current directory to make '%.*s%s' "
		    "absolute: %s; give an absolute path", SHOWN(path), strerror(errno));
		return NULL;
	}
	while (path[0] == '.' && path[1] == '/') {
		path += 2;
		while (*path == '/')
			path++;
	}
	if (path[0] == '\0' || strcmp(path, ".") == 0)
		return xstrdup(cwd);
	return xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
}

/* ------------------------------------------------------------------------ */
/* Check functions for strings and list items                                */

static bool
hostname_chars(const char *s, size_t len)
{
	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int
check_hostname(const char *in, char **out, char *why, size_t whysize)
{
	if (!hostname_chars(in, strlen(in)))
		return say(why, whysize, "'%.*s%s' is not a host name (letters, digits, "
		    "'-' and '.', such as gw.example.org)", SHOWN(in));
	*out = xstrdup(in);
	return 0;
}

/* A plain local@domain: the envelope sender the gateway sees.  Deliberately
 * narrower than RFC 5321 (no quoted local parts): it is written by hand. */
static int
check_address(const char *in, char **out, char *why, size_t whysize)
{
	const char *at = strrchr(in, '@');
	size_t len = strlen(in);

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch <= ' ' || ch == 0x7f || strchr("<>()[],;:\\\"", ch) != NULL)
			at = NULL;
	}
	if (at == NULL || at == in || len > 254 || at - in > 64 ||
	    !hostname_chars(at + 1, strlen(at + 1)))
		return say(why, whysize, "'%.*s%s' is not an address such as "
		    "joe@isp.example", SHOWN(in));
	*out = xstrdup(in);
	return 0;
}

/* domains = : "example.com" (that domain) or ".example.com" (it and every
 * subdomain); stored in lower case. */
static int
check_domain_pattern(const char *in, char **out, char *why, size_t whysize)
{
	const char *name = in[0] == '.' ? in + 1 : in;

	if (!hostname_chars(name, strlen(name)))
		return say(why, whysize, "'%.*s%s' is not a recipient domain such as "
		    "example.com, or .example.com for it and its subdomains", SHOWN(in));
	*out = xstrdup(in);
	for (char *p = *out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* senders = : "alice@lan.example" (that sender) or "@lan.example" (every
 * sender at that domain). */
static int
check_sender_pattern(const char *in, char **out, char *why, size_t whysize)
{
	if (in[0] == '@' && hostname_chars(in + 1, strlen(in + 1))) {
		*out = xstrdup(in);
		return 0;
	}
	if (check_address(in, out, why, whysize) == 0)
		return 0;
	return say(why, whysize, "'%.*s%s' is not a sender such as alice@lan.example, or "
	    "@lan.example for every sender at that domain", SHOWN(in));
}

/* bounce = : "none", or the one address every bounce goes to. */
static int
check_bounce(const char *in, char **out, char *why, size_t whysize)
{
	if (strcmp(in, "none") == 0) {
		*out = xstrdup(in);
		return 0;
	}
	if (check_address(in, out, why, whysize) == 0)
		return 0;
	return say(why, whysize, "bounce = '%.*s%s': give an address such as "
	    "postmaster@lan.example, or none", SHOWN(in));
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "sha256:AB:CD:..." (32 bytes) or 64 plain hex digits, with or without the
 * "sha256:" prefix; stored as "sha256:AB:CD:..." in upper case. */
static int
check_fingerprint(const char *in, char **out, char *why, size_t whysize)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char bytes[32];
	const char *p = in;
	size_t len, step;
	char *res;

	if (strncasecmp(p, "sha256:", 7) == 0)
		p += 7;
	len = strlen(p);
	step = len == 64 ? 2 : len == 32 * 3 - 1 ? 3 : 0;
	for (size_t i = 0; step != 0 && i < 32; i++) {
		const char *q = p + i * step;
		int hi = hex_value(q[0]), lo = hex_value(q[1]);

		if (hi < 0 || lo < 0 || (step == 3 && i < 31 && q[2] != ':'))
			step = 0;
		else
			bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	if (step == 0)
		return say(why, whysize, "'%.*s%s' is not a SHA-256 fingerprint "
		    "(sha256: and 32 hex bytes separated by ':', or 64 hex digits)", SHOWN(in));
	res = xmalloc(7 + 32 * 3);
	memcpy(res, "sha256:", 7);
	for (size_t i = 0; i < 32; i++) {
		res[7 + i * 3] = hex[bytes[i] >> 4];
		res[7 + i * 3 + 1] = hex[bytes[i] & 15];
		res[7 + i * 3 + 2] = i == 31 ? '\0' : ':';
	}
	*out = res;
	return 0;
}

static int
check_mechanism(const char *in, char **out, char *why, size_t whysize)
{
	for (size_t i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++) {
		if (strcasecmp(in, mechanisms[i]) == 0) {
			*out = xstrdup(mechanisms[i]);
			return 0;
		}
	}
	return say(why, whysize, "unknown mechanism '%.*s%s' (known: auto, "
	    "SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1, GSSAPI, "
	    "DIGEST-MD5, CRAM-MD5, PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)", SHOWN(in));
}

/* ------------------------------------------------------------------------ */
/* Types: parse a value and store it; free what is stored                    */

/* One value on its way into a struct config or struct route. */
struct value {
	const struct key *key;
	void *obj;                  /* struct config or struct route */
	const struct place *at;
	int line;
	char why[WHY_MAX];          /* on failure: what is wrong, what to do */
};

static int bad(struct value *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
bad(struct value *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, sizeof v->why, fmt, ap);
	va_end(ap);
	return -1;
}

static void
clear_string(const struct key *k, void *obj, const struct place *at)
{
	char **f = field(obj, at->off);

	if (*f != NULL && (k->flags & KEY_SECRET))
		explicit_bzero(*f, strlen(*f));
	free(*f);
	*f = NULL;
}

static void
clear_nothing(const struct key *k, void *obj, const struct place *at)
{
	(void)k, (void)obj, (void)at;
}

static void
clear_list(const struct key *k, void *obj, const struct place *at)
{
	char ***items = field(obj, at->off);
	size_t *n = field(obj, at->aux);

	(void)k;
	for (size_t i = 0; i < *n; i++)
		free((*items)[i]);
	free(*items);
	*items = NULL;
	*n = 0;
}

/* An array of plain structs or numbers and its count. */
static void
clear_array(const struct key *k, void *obj, const struct place *at)
{
	void *p;

	(void)k;
	memcpy(&p, field(obj, at->off), sizeof p);
	free(p);
	p = NULL;
	memcpy(field(obj, at->off), &p, sizeof p);
	*(size_t *)field(obj, at->aux) = 0;
}

static void
clear_hostport(const struct key *k, void *obj, const struct place *at)
{
	clear_string(k, obj, at);
	*(uint16_t *)field(obj, at->aux) = 0;
}

/* No message of set_string may contain the text: `password` uses it. */
static int
set_string(struct value *v, const char *text)
{
	char *copy;

	if (text[0] == '\0' && !(v->key->flags & KEY_EMPTY_OK))
		return bad(v, "needs a value");
	if (v->key->check != NULL && text[0] != '\0') {
		if (v->key->check(text, &copy, v->why, sizeof v->why) < 0)
			return -1;
	} else {
		copy = xstrdup(text);
	}
	clear_string(v->key, v->obj, v->at);
	*(char **)field(v->obj, v->at->off) = copy;
	return 0;
}

static int
set_path(struct value *v, const char *text)
{
	char *copy;

	if (text[0] == '\0')
		return bad(v, "needs a value (a file name)");
	if ((copy = make_absolute(text, v->why, sizeof v->why)) == NULL)
		return -1;
	clear_string(v->key, v->obj, v->at);
	*(char **)field(v->obj, v->at->off) = copy;
	return 0;
}

static int
set_bool(struct value *v, const char *text)
{
	static const struct name_value bools[] = {
		{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
		{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 }, { NULL, 0 },
	};

	for (size_t i = 0; bools[i].name != NULL; i++) {
		if (strcasecmp(text, bools[i].name) == 0) {
			*(bool *)field(v->obj, v->at->off) = bools[i].value;
			return 0;
		}
	}
	return bad(v, "'%.*s%s' is not yes or no (nor true/false, on/off, 1/0)", SHOWN(text));
}

static int
set_uint(struct value *v, const char *text)
{
	const char *end;
	uint64_t n;

	if (parse_digits(text, &n, &end) < 0 || *end != '\0')
		return bad(v, "'%.*s%s' is not a whole number", SHOWN(text));
	if (n < v->key->min || n > v->key->max)
		return bad(v, "%llu is out of range; use %llu to %llu", (unsigned long long)n,
		    (unsigned long long)v->key->min, (unsigned long long)v->key->max);
	*(unsigned *)field(v->obj, v->at->off) = (unsigned)n;
	return 0;
}

/* A duration within the key's bounds. */
static int
duration_in_range(struct value *v, const char *text, uint64_t *ms)
{
	char lo[32], hi[32];

	if (config_parse_duration(text, ms) < 0)
		return bad(v, "'%.*s%s' is not a duration; write e.g. 500ms, 30s, 5m, 2h "
		    "or 5d (a bare number is seconds)", SHOWN(text));
	if (*ms < v->key->min || *ms > v->key->max)
		return bad(v, "'%.*s%s' is out of range; use %s to %s", SHOWN(text),
		    format_duration(v->key->min, lo, sizeof lo),
		    format_duration(v->key->max, hi, sizeof hi));
	return 0;
}

static int
set_duration(struct value *v, const char *text)
{
	uint64_t ms;

	if (duration_in_range(v, text, &ms) < 0)
		return -1;
	*(uint64_t *)field(v->obj, v->at->off) = ms;
	return 0;
}

static int
set_size(struct value *v, const char *text)
{
	char lo[32], hi[32];
	uint64_t n;

	if (config_parse_size(text, &n) < 0)
		return bad(v, "'%.*s%s' is not a size; write e.g. 512, 64k, 10M or 1G",
		    SHOWN(text));
	if (n < v->key->min || n > v->key->max)
		return bad(v, "'%.*s%s' is out of range; use %s to %s", SHOWN(text),
		    format_size(v->key->min, lo, sizeof lo), format_size(v->key->max, hi, sizeof hi));
	*(uint64_t *)field(v->obj, v->at->off) = n;
	return 0;
}

static int
set_enum(struct value *v, const char *text)
{
	const struct name_value *names = v->key->names;
	char list[128] = "";

	for (size_t i = 0; names[i].name != NULL; i++) {
		if (strcasecmp(text, names[i].name) == 0) {
			*(int *)field(v->obj, v->at->off) = names[i].value;
			return 0;
		}
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
		    i > 0 ? ", " : "", names[i].name);
	}
	return bad(v, "'%.*s%s' is not one of %s", SHOWN(text), list);
}

static int
set_list(struct value *v, const char *text)
{
	char ***items = field(v->obj, v->at->off);
	size_t *n = field(v->obj, v->at->aux), len;
	bool autos = v->key->flags & KEY_AUTO;
	const char *p = text, *w;

	if (autos && strcasecmp(text, "auto") == 0)
		return 0;
	if (text[0] == '\0')
		return bad(v, "needs a value");
	while ((w = next_word(&p, &len)) != NULL) {
		char *item = xstrndup(w, len), *norm = NULL;
		int rc;

		if (autos && strcasecmp(item, "auto") == 0)
			rc = bad(v, "'auto' must stand alone (%s = auto)", v->key->name);
		else
			rc = v->key->check(item, &norm, v->why, sizeof v->why);
		free(item);
		if (rc < 0)
			return -1;
		for (size_t i = 0; i < *n; i++) {
			if (strcmp((*items)[i], norm) == 0) {
				bad(v, "%.*s%s is listed twice", SHOWN(norm));
				free(norm);
				return -1;
			}
		}
		*items = xrealloc(*items, (*n + 1) * sizeof **items);
		(*items)[(*n)++] = norm;
	}
	return 0;
}

static int
set_listen(struct value *v, const char *text)
{
	struct listen_addr **list = field(v->obj, v->at->off), la;
	size_t *n = field(v->obj, v->at->aux), len;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *p = text, *w;
	char word[NETADDR_TEXT_MAX + 8], host[NETADDR_TEXT_MAX];

	memset(&la, 0, sizeof la);
	la.line = v->line;
	if ((w = next_word(&p, &len)) == NULL)
		return bad(v, "needs a value: ADDR:PORT [tls] [auth] [proxy]");
	if (len >= sizeof word ||
	    (memcpy(word, w, len), word[len] = '\0',
	    netaddr_parse_hostport(word, 0, host, sizeof host, &la.port) < 0) ||
	    la.port == 0 || netaddr_parse_ip(host, la.port, &ss, &sslen) < 0)
		return bad(v, "'%.*s' is not ADDR:PORT with a numeric address, such as "
		    "127.0.0.1:25 or [::1]:25", (int)(len > SHOW_MAX ? SHOW_MAX : len), w);
	netaddr_format((struct sockaddr *)&ss, la.host, sizeof la.host);
	while ((w = next_word(&p, &len)) != NULL) {
		size_t i;

		for (i = 0; i < sizeof listen_flags / sizeof listen_flags[0]; i++)
			if (strlen(listen_flags[i].name) == len &&
			    strncasecmp(w, listen_flags[i].name, len) == 0)
				break;
		if (i == sizeof listen_flags / sizeof listen_flags[0])
			return bad(v, "unknown listener flag '%.*s' (known: tls, auth, proxy)",
			    (int)(len > SHOW_MAX ? SHOW_MAX : len), w);
		la.flags |= listen_flags[i].flag;
	}
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = la;
	return 0;
}

static int
set_cidrs(struct value *v, const char *text)
{
	struct cidr **list = field(v->obj, v->at->off), c;
	size_t *n = field(v->obj, v->at->aux), len;
	const char *p = text, *w;
	char word[NETADDR_TEXT_MAX];

	if (text[0] == '\0')
		return bad(v, "needs a value: address blocks such as 192.0.2.0/24");
	while ((w = next_word(&p, &len)) != NULL) {
		if (len >= sizeof word ||
		    (memcpy(word, w, len), word[len] = '\0', netaddr_parse_cidr(word, &c) < 0))
			return bad(v, "'%.*s' is not an address block such as 192.0.2.0/24 or "
			    "2001:db8::/32 (host bits must be zero)",
			    (int)(len > SHOW_MAX ? SHOW_MAX : len), w);
		*list = xrealloc(*list, (*n + 1) * sizeof **list);
		(*list)[(*n)++] = c;
	}
	return 0;
}

/* Replaces the schedule. */
static int
set_retry(struct value *v, const char *text)
{
	uint64_t **steps = field(v->obj, v->at->off), *new = NULL;
	size_t *n = field(v->obj, v->at->aux), count = 0, len;
	const char *p = text, *w;

	if (text[0] == '\0')
		return bad(v, "needs at least one interval, such as retry = 1m 5m 15m 1h");

	while ((w = next_word(&p, &len)) != NULL) {
		char *item = xstrndup(w, len);
		int rc = 0;

		if (count == CONFIG_MAX_STEPS)
			rc = bad(v, "more than %d intervals; use retry-max for the rest",
			    CONFIG_MAX_STEPS);
		else
			new = xrealloc(new, (count + 1) * sizeof *new);
		if (rc == 0)
			rc = duration_in_range(v, item, &new[count++]);
		free(item);
		if (rc < 0) {
			free(new);
			return -1;
		}
	}
	free(*steps);
	*steps = new;
	*n = count;
	return 0;
}

static int
set_hostport(struct value *v, const char *text)
{
	char host[SMARTHOST_MAX];
	uint16_t port;

	if (netaddr_parse_hostport(text, 25, host, sizeof host, &port) < 0)
		return bad(v, "'%.*s%s' is not HOST[:PORT] or [IPv6]:PORT, such as "
		    "smtp.isp.example:587", SHOWN(text));
	clear_hostport(v->key, v->obj, v->at);
	*(char **)field(v->obj, v->at->off) = xstrdup(host);
	*(uint16_t *)field(v->obj, v->at->aux) = port;
	return 0;
}

static void
clear_login_url(const struct key *k, void *obj, const struct place *at)
{
	struct login_url *u = field(obj, at->off);

	(void)k;
	free(u->host);
	memset(u, 0, sizeof *u);
}

/* "pop3s://pop.isp.example", "imap://[2001:db8::1]:1143". */
static int
set_login_url(struct value *v, const char *text)
{
	static const struct {
		const char *scheme;
		enum login_proto proto;
		uint16_t port;                 /* the default */
	} schemes[] = {
		{ "pop3://", LOGIN_POP3, 110 }, { "pop3s://", LOGIN_POP3S, 995 },
		{ "imap://", LOGIN_IMAP, 143 }, { "imaps://", LOGIN_IMAPS, 993 },
	};
	char host[SMARTHOST_MAX];

	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		struct login_url *u = field(v->obj, v->at->off);
		size_t n = strlen(schemes[i].scheme);
		uint16_t port;

		if (strncasecmp(text, schemes[i].scheme, n) != 0)
			continue;
		if (netaddr_parse_hostport(text + n, schemes[i].port, host, sizeof host, &port) < 0)
			break;
		clear_login_url(v->key, v->obj, v->at);
		u->proto = schemes[i].proto;
		u->host = xstrdup(host);
		u->port = port;
		return 0;
	}
	return bad(v, "'%.*s%s' is not pop3://, pop3s://, imap:// or imaps:// with HOST[:PORT], "
	    "such as pop3s://pop.isp.example", SHOWN(text));
}

static const struct type {
	int (*set)(struct value *, const char *text);
	void (*clear)(const struct key *, void *obj, const struct place *);
	bool repeat;        /* accumulates when the key is given again */
} types[] = {
	[T_STRING]   = { set_string,   clear_string,   false },
	[T_PATH]     = { set_path,     clear_string,   false },
	[T_BOOL]     = { set_bool,     clear_nothing,  false },
	[T_UINT]     = { set_uint,     clear_nothing,  false },
	[T_DURATION] = { set_duration, clear_nothing,  false },
	[T_SIZE]     = { set_size,     clear_nothing,  false },
	[T_ENUM]     = { set_enum,     clear_nothing,  false },
	[T_LIST]     = { set_list,     clear_list,     true },
	[T_LISTEN]   = { set_listen,   clear_array,    true },
	[T_CIDRS]    = { set_cidrs,    clear_array,    true },
	[T_RETRY]    = { set_retry,    clear_array,    false },
	[T_HOSTPORT] = { set_hostport, clear_hostport, false },
	[T_LOGIN_URL] = { set_login_url, clear_login_url, false },
};

/* Free everything the table says obj (a struct config or a struct route)
 * holds; wipes secrets. */
static void
clear_object(void *obj, bool route)
{
	for (size_t i = 0; i < K_COUNT; i++) {
		const struct place *at = route ? &keys[i].r : &keys[i].g;

		if (at->used)
			types[keys[i].type].clear(&keys[i], obj, at);
	}
}

/* ------------------------------------------------------------------------ */
/* Reading a file: lines, sections, pairs                                    */

struct problem {
	int line;                    /* 0: about the file as a whole */
	char *text;
};

enum section { IN_GLOBAL, IN_ROUTE, IN_NOWHERE /* a bad header: skip its keys */ };

struct loader {
	const char *name;            /* the file name in messages */
	struct config *cfg;
	bool world_readable;         /* the file; then `password` is refused in it */
	int line;                    /* the line inih is at */
	bool line_open;              /* started, not yet finished */
	bool line_is_pair;           /* inih must hand it to on_pair */
	bool line_handled;           /* ... and did */
	bool line_ignored;           /* reported already; ignore what inih makes of it */
	bool long_lines;             /* inih counts the rest of a long line as lines */
	enum section section;
	int gline[K_COUNT];          /* the line each global key was set on; 0: not set */
	char *gtext[K_COUNT];        /* the text of global keys that routes inherit */
	int (*rline)[K_COUNT];       /* like gline, per route, parallel to cfg->routes */
	size_t routes_cap, rline_cap;
	struct problem *problems;
	size_t nproblems, problems_cap, dropped;
};

static void problem(struct loader *, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct loader *ld, int line, const char *fmt, ...)
{
	char text[WHY_MAX + 256];
	va_list ap;

	if (ld->nproblems == CONFIG_MAX_ERRORS) {
		ld->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	ld->problems = xgrow(ld->problems, &ld->problems_cap, ld->nproblems,
	    sizeof *ld->problems);
	ld->problems[ld->nproblems].line = line;
	ld->problems[ld->nproblems++].text = xstrdup(text);
}

static bool
problem_at(const struct loader *ld, int line)
{
	for (size_t i = 0; i < ld->nproblems; i++)
		if (ld->problems[i].line == line)
			return true;
	return false;
}

/* Parse text into the key's place in obj; a failure becomes a problem. */
static int
store(struct loader *ld, const struct key *k, void *obj, bool route, int line,
    const char *text)
{
	struct value v = { .key = k, .obj = obj, .at = route ? &k->r : &k->g, .line = line };

	if (types[k->type].set(&v, text) == 0)
		return 0;
	problem(ld, line, "%s: %s", k->name, v.why);
	return -1;
}

static bool
route_name_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL)
			return false;
	return len > 0 && len <= CONFIG_ROUTE_NAME_MAX;
}

static void
route_add(struct loader *ld, const char *name, size_t len)
{
	struct config *cfg = ld->cfg;
	struct route *r;

	cfg->routes = xgrow(cfg->routes, &ld->routes_cap, cfg->nroutes, sizeof *cfg->routes);
	ld->rline = xgrow(ld->rline, &ld->rline_cap, cfg->nroutes, sizeof *ld->rline);
	r = &cfg->routes[cfg->nroutes];
	memset(r, 0, sizeof *r);
	memset(ld->rline[cfg->nroutes], 0, sizeof ld->rline[cfg->nroutes]);
	r->name = xstrndup(name, len);
	r->line = ld->line;
	cfg->nroutes++;
	ld->section = IN_ROUTE;
}

/* "[route NAME]": the words inside the brackets. */
static void
section_name(struct loader *ld, const char *inner)
{
	const char *p = inner, *kind, *name;
	size_t klen, nlen, len;

	kind = next_word(&p, &klen);
	name = next_word(&p, &nlen);
	if (kind == NULL || klen != 5 || strncmp(kind, "route", 5) != 0)
		problem(ld, ld->line, "unknown section [%.*s%s]; the only section is "
		    "[route NAME], and global keys go before the first one", SHOWN(inner));
	else if (name == NULL)
		problem(ld, ld->line, "[route] needs a name: [route NAME]");
	else if (next_word(&p, &len) != NULL || !route_name_ok(name, nlen))
		problem(ld, ld->line, "bad route name in [%.*s%s]; a name is one word of "
		    "at most 64 letters, digits, '-', '_' and '.'", SHOWN(inner));
	else {
		for (size_t i = 0; i < ld->cfg->nroutes; i++) {
			const struct route *r = &ld->cfg->routes[i];

			if (strlen(r->name) == nlen && strncmp(r->name, name, nlen) == 0) {
				problem(ld, ld->line, "route %s is already defined at line %d; "
				    "give each route its own name", r->name, r->line);
				ld->section = IN_NOWHERE;
				return;
			}
		}
		route_add(ld, name, nlen);
		return;
	}
	ld->section = IN_NOWHERE;
}

/* A line whose first non-blank is '['; end excludes the newline.  inih's
 * rule: the header ends at the first ']' that is not inside an inline
 * comment; we also refuse text after it. */
static void
section_start(struct loader *ld, const char *s, const char *end)
{
	const char *close = s + 1, *p;
	char *inner;

	while (close < end && *close != ']' &&
	    !((*close == ';' || *close == '#') && isspace((unsigned char)close[-1])))
		close++;
	if (close == end || *close != ']') {
		problem(ld, ld->line, SYNTAX_ERROR);
		ld->section = IN_NOWHERE;
		return;
	}
	for (p = close + 1; p < end && isspace((unsigned char)*p); p++)
		;
	if (p < end && *p != ';' && *p != '#') {
		problem(ld, ld->line, "text after ']'; a section header stands alone on "
		    "its line");
		ld->section = IN_NOWHERE;
		return;
	}
	inner = xstrndup(s + 1, (size_t)(close - s - 1));
	section_name(ld, inner);
	free(inner);
}

/* Called by the reader before inih sees the line (len without '\n'). */
static void
line_start(struct loader *ld, const char *text, size_t len)
{
	const char *s = text, *end = text + len;

	ld->line++;
	ld->line_open = true;
	ld->line_is_pair = ld->line_handled = ld->line_ignored = false;
	if (len > CONFIG_LINE_MAX) {
		problem(ld, ld->line, "line longer than %d bytes", CONFIG_LINE_MAX);
		ld->line_ignored = ld->long_lines = true;
		return;
	}
	if (ld->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;                     /* a UTF-8 BOM, skipped by inih too */
	while (s < end && isspace((unsigned char)*s))
		s++;
	if (s == end || *s == ';' || *s == '#')
		return;
	if (*s == '[')
		section_start(ld, s, end);
	else
		ld->line_is_pair = true;
}

/* The line is over: a pair that inih did not hand over was not a pair. */
static void
line_finish(struct loader *ld)
{
	if (!ld->line_open)
		return;
	ld->line_open = false;
	if (ld->line_is_pair && !ld->line_handled && !ld->line_ignored)
		problem(ld, ld->line, SYNTAX_ERROR);
}

struct text_stream {
	const char *p, *end;
	bool at_line_start;
	struct loader *ld;
};

/* inih's fgets-like reader.  inih may ask several times for one long line
 * (libinih 55 cuts a line at ini_max_line and parses the rest as further
 * lines: all of them belong to the line we reported as too long); it calls
 * the handler for a line before it asks for the next one. */
static char *
read_line(char *buf, int size, void *stream)
{
	struct text_stream *ts = stream;
	size_t n = 0;

	if (ts->p == ts->end || size < 2)
		return NULL;
	if (ts->at_line_start) {
		const char *nl = memchr(ts->p, '\n', (size_t)(ts->end - ts->p));

		line_finish(ts->ld);
		line_start(ts->ld, ts->p, (size_t)((nl != NULL ? nl : ts->end) - ts->p));
		ts->at_line_start = false;
	}
	while (n < (size_t)size - 1 && ts->p < ts->end) {
		char c = *ts->p++;

		buf[n++] = c;
		if (c == '\n') {
			ts->at_line_start = true;
			break;
		}
	}
	buf[n] = '\0';
	return buf;
}

static void
store_pair(struct loader *ld, const char *name, const char *text)
{
	bool route = ld->section == IN_ROUTE, elsewhere = false;
	const struct key *k = NULL;
	size_t idx;
	int *lines;
	void *obj;

	for (size_t i = 0; i < K_COUNT && k == NULL; i++) {
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if ((route ? keys[i].r : keys[i].g).used)
			k = &keys[i];
		else
			elsewhere = true;
	}
	if (k == NULL) {
		if (!elsewhere)
			problem(ld, ld->line, "unknown key '%.*s%s'; see mailredir.conf(5)",
			    SHOWN(name));
		else if (route)
			problem(ld, ld->line, "%s is a global key; move it above the first "
			    "[route] section", name);
		else
			problem(ld, ld->line, "%s is a route key; put it in a [route NAME] "
			    "section", name);
		return;
	}
	idx = (size_t)(k - keys);
	lines = route ? ld->rline[ld->cfg->nroutes - 1] : ld->gline;
	obj = route ? (void *)&ld->cfg->routes[ld->cfg->nroutes - 1] : (void *)ld->cfg;
	if (lines[idx] != 0 && !types[k->type].repeat) {
		problem(ld, ld->line, "%s is already set at line %d; keep one", k->name,
		    lines[idx]);
		return;
	}
	if (lines[idx] == 0)
		lines[idx] = ld->line;
	if (store(ld, k, obj, route, ld->line, text) == 0 && !route && k->r.used) {
		free(ld->gtext[idx]);
		ld->gtext[idx] = xstrdup(text);
	}
}

static int
on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	(void)section;          /* ours is ld->section: see the top of this file */
	ld->line_handled = true;
	if (!ld->line_ignored && ld->section != IN_NOWHERE)
		store_pair(ld, name, value);
	return 1;
}

/* Debian's libinih takes its compile-time options at run time. */
static void
inih_setup(void)
{
	static char comment_chars[] = ";#";

	ini_allow_multiline = false;      /* an indented line is a line of its own */
	ini_allow_bom = true;
	ini_allow_inline_comments = true; /* " #..." and " ;..." end a value */
	ini_start_comment_prefixes = comment_chars;
	ini_inline_comment_prefixes = comment_chars;
	ini_allow_no_value = false;
	ini_use_stack = false;
	ini_allow_realloc = true;         /* lines up to ini_max_line */
	ini_max_line = CONFIG_MAX_LINE;
	ini_stop_on_first_error = false;
}

/* ------------------------------------------------------------------------ */
/* After the file: defaults, inheritance, combinations                       */

/* Fill the keys obj did not set: a route takes the global value of the keys
 * it may override, everything else the default from the table. */
static void
fill_defaults(struct loader *ld, void *obj, bool route, const int *lines, int line)
{
	for (size_t i = 0; i < K_COUNT; i++) {
		const struct key *k = &keys[i];
		const char *text = k->def;

		if (!(route ? k->r.used : k->g.used) || lines[i] != 0)
			continue;
		if (route && k->g.used && ld->gtext[i] != NULL)
			text = ld->gtext[i];
		if (text != NULL)
			store(ld, k, obj, route, line, text);
	}
}

static void
check_listen(struct loader *ld, size_t i)
{
	const struct listen_addr *la = &ld->cfg->listen[i];
	bool v6 = strchr(la->host, ':') != NULL;

	for (size_t f = 0; f < sizeof listen_flags / sizeof listen_flags[0]; f++)
		if ((la->flags & listen_flags[f].flag) && listen_flags[f].missing != NULL)
			problem(ld, la->line, "listener flag '%s' is not supported yet (%s); "
			    "remove it", listen_flags[f].name, listen_flags[f].missing);
	for (size_t j = 0; j < i; j++) {
		const struct listen_addr *other = &ld->cfg->listen[j];

		if (other->port == la->port && strcmp(other->host, la->host) == 0) {
			problem(ld, la->line, "listen address %s%s%s:%u is given twice (also "
			    "at line %d); remove one", v6 ? "[" : "", la->host, v6 ? "]" : "",
			    la->port, other->line);
			break;
		}
	}
}

static void
default_hostname(struct loader *ld)
{
	char buf[256];

	if (gethostname(buf, sizeof buf) < 0) {
		problem(ld, 0, "cannot find this system's host name (%s); set hostname = NAME",
		    strerror(errno));
		return;
	}
	buf[sizeof buf - 1] = '\0';
	if (!hostname_chars(buf, strlen(buf))) {
		problem(ld, 0, "the system's host name '%.*s%s' cannot name this relay in "
		    "SMTP; set hostname = NAME", SHOWN(buf));
		return;
	}
	ld->cfg->hostname = xstrdup(buf);
}

static void
check_global(struct loader *ld)
{
	for (size_t i = 0; i < ld->cfg->nlisten; i++)
		check_listen(ld, i);
	if (ld->gline[K_HOSTNAME] == 0)
		default_hostname(ld);
}

/* A password file is a secret: it must exist and be private to its owner. */
static void
check_password_file(struct loader *ld, int line, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		problem(ld, line, "password-file %s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		problem(ld, line, "password-file %s is not a regular file", path);
	else if (st.st_mode & S_IROTH)
		problem(ld, line, "password-file %s is readable by others; chmod 600 it", path);
	else if (st.st_mode & (S_IRGRP | S_IWGRP | S_IWOTH))
		problem(ld, line, "password-file %s is readable or writable by its group or "
		    "others; chmod 600 it", path);
}

/* Two password sources: name them in file order, at the later line. */
static void
both(struct loader *ld, const struct route *r, enum key_id a, enum key_id b,
    const int *lines)
{
	if (lines[a] > lines[b]) {
		enum key_id t = a;

		a = b;
		b = t;
	}
	problem(ld, lines[b], "route %s has both %s (line %d) and %s (line %d); keep one "
	    "password source", r->name, keys[a].name, lines[a], keys[b].name, lines[b]);
}

static void
check_credentials(struct loader *ld, const struct route *r, const int *lines)
{
	static const enum key_id sources[] = {
		K_PASSWORD_FILE, K_PASSWORD_COMMAND, K_PASSWORD, K_OAUTH_TOKEN_COMMAND,
	};
	enum key_id first = K_COUNT;

	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
		enum key_id s = sources[i];

		if (lines[s] == 0)
			continue;
		if (lines[K_ROUTE_USER] == 0)
			problem(ld, lines[s], "%s needs a user name: add user = LOGIN to route %s",
			    keys[s].name, r->name);
		if (s == K_OAUTH_TOKEN_COMMAND)
			continue;
		if (first == K_COUNT)
			first = s;
		else
			both(ld, r, first, s, lines);
	}
	if (r->password_file != NULL)
		check_password_file(ld, lines[K_PASSWORD_FILE], r->password_file);
	if (lines[K_PASSWORD] != 0 && ld->world_readable)
		problem(ld, lines[K_PASSWORD], "password is set in a file that others can "
		    "read; chmod 600 %s, or use password-file", ld->name);
}

/* from-map = FILE is read with the configuration, so that `check` names
 * its errors and every process (workers, flush, route) uses the same map. */
static void
load_from_map(struct loader *ld, struct route *r, int line)
{
	struct err err;
	char *text;
	size_t len;

	if (read_file(r->from_map_file, CONFIG_MAX_FILE, &text, &len, &err) < 0) {
		problem(ld, line, "from-map: %s", err.msg);
		return;
	}
	if (identity_map_parse(text, len, r->from_map_file, &r->from_map, &err) < 0) {
		/* one problem per bad line of the map, each naming its own line */
		for (char *p = err.msg, *nl; *p != '\0'; p = nl != NULL ? nl + 1 : p + strlen(p)) {
			if ((nl = strchr(p, '\n')) != NULL)
				*nl = '\0';
			problem(ld, line, "from-map: %s", p);
		}
	}
	free(text);
}

/* The login-* keys belong to login-before-smtp; its secret follows the
 * rules of the route's own. */
static void
check_login(struct loader *ld, const struct route *r, const int *lines)
{
	static const enum key_id with[] = {
		K_LOGIN_USER, K_LOGIN_PASSWORD_FILE, K_LOGIN_PASSWORD_COMMAND, K_LOGIN_DELAY,
		K_LOGIN_VALID, K_LOGIN_TLS,
	};

	if (lines[K_LOGIN_BEFORE_SMTP] == 0) {
		for (size_t i = 0; i < sizeof with / sizeof with[0]; i++)
			if (lines[with[i]] != 0)
				problem(ld, lines[with[i]], "%s needs login-before-smtp in route %s",
				    keys[with[i]].name, r->name);
		return;
	}
	if (r->login.proto == LOGIN_NONE)
		return;                      /* a bad value: already reported */
	if (lines[K_LOGIN_PASSWORD_FILE] != 0 && lines[K_LOGIN_PASSWORD_COMMAND] != 0)
		both(ld, r, K_LOGIN_PASSWORD_FILE, K_LOGIN_PASSWORD_COMMAND, lines);
	if (r->login_password_file != NULL)
		check_password_file(ld, lines[K_LOGIN_PASSWORD_FILE], r->login_password_file);
	if (r->login_user == NULL && r->user == NULL)
		problem(ld, lines[K_LOGIN_BEFORE_SMTP], "login-before-smtp needs a user: set "
		    "login-user (or user) in route %s", r->name);
}

static void
check_route(struct loader *ld, size_t i)
{
	struct route *r = &ld->cfg->routes[i];
	const int *lines = ld->rline[i];
	char why[WHY_MAX], *from;

	fill_defaults(ld, r, true, lines, r->line);
	if (lines[K_SMARTHOST] == 0)
		problem(ld, r->line, "route %s has no smarthost; add smarthost = HOST[:PORT]",
		    r->name);
	if (r->tls == TLS_MODE_DEFAULT)
		r->tls = r->port == 465 ? TLS_MODE_TLS : TLS_MODE_STARTTLS;
	if ((lines[K_TLS_CERT] == 0) != (lines[K_TLS_KEY] == 0)) {
		enum key_id set = lines[K_TLS_CERT] ? K_TLS_CERT : K_TLS_KEY;

		problem(ld, lines[set], "%s without %s; a client certificate needs both "
		    "tls-cert and tls-key", keys[set].name,
		    keys[set == K_TLS_CERT ? K_TLS_KEY : K_TLS_CERT].name);
	}
	check_credentials(ld, r, lines);
	if (lines[K_ENVELOPE_FROM] == 0 && r->user != NULL && strchr(r->user, '@') != NULL &&
	    check_address(r->user, &from, why, sizeof why) == 0)
		r->envelope_from = from;
	if (r->header_from == HEADER_FROM_REWRITE && r->envelope_from == NULL)
		problem(ld, lines[K_HEADER_FROM], "header-from = rewrite needs the account's "
		    "address: set envelope-from = ADDRESS (or a user that is an address) in "
		    "route %s", r->name);
	if (r->from_map_file != NULL)
		load_from_map(ld, r, lines[K_FROM_MAP]);
	check_login(ld, r, lines);
}

/* Problems in line order (stable: a line's problems in the order found),
 * as many as fit into err. */
static void
report(struct loader *ld, struct err *err)
{
	struct problem *p = ld->problems;
	size_t dropped = ld->dropped;

	for (size_t i = 1; i < ld->nproblems; i++) {
		struct problem cur = p[i];
		size_t j = i;

		for (; j > 0 && p[j - 1].line > cur.line; j--)
			p[j] = p[j - 1];
		p[j] = cur;
	}
	for (size_t i = 0; i < ld->nproblems; i++) {
		char line[WHY_MAX + 512];

		if (p[i].line > 0)
			snprintf(line, sizeof line, "%s:%d: %s", ld->name, p[i].line, p[i].text);
		else
			snprintf(line, sizeof line, "%s: %s", ld->name, p[i].text);
		if (strlen(err->msg) + strlen(line) + 80 >= sizeof err->msg) {
			dropped += ld->nproblems - i;
			break;
		}
		err_append(err, "%s", line);
	}
	if (dropped > 0)
		err_append(err, "%s: %zu more errors not shown", ld->name, dropped);
}

static void
loader_free(struct loader *ld)
{
	for (size_t i = 0; i < ld->nproblems; i++)
		free(ld->problems[i].text);
	free(ld->problems);
	for (size_t i = 0; i < K_COUNT; i++)
		free(ld->gtext[i]);
	free(ld->rline);
}

static int
load_text(const char *text, size_t len, const char *name, bool world_readable,
    struct config **out, struct err *err)
{
	struct loader ld;
	struct text_stream ts = { text, text + len, true, &ld };
	struct err scratch;
	int rc;

	if (err == NULL)
		err = &scratch;
	err->msg[0] = '\0';
	memset(&ld, 0, sizeof ld);
	ld.name = name;
	ld.world_readable = world_readable;
	ld.section = IN_GLOBAL;
	ld.cfg = xcalloc(1, sizeof *ld.cfg);
	ld.cfg->path = xstrdup(name);

	inih_setup();
	rc = ini_parse_stream(read_line, &ts, on_pair, &ld);
	line_finish(&ld);
	if (rc < 0)
		problem(&ld, 0, "out of memory while reading the file");
	else if (rc > 0 && !ld.long_lines && !problem_at(&ld, rc))
		problem(&ld, rc, SYNTAX_ERROR);

	fill_defaults(&ld, ld.cfg, false, ld.gline, 0);
	check_global(&ld);
	for (size_t i = 0; i < ld.cfg->nroutes; i++)
		check_route(&ld, i);

	if (ld.nproblems > 0) {
		report(&ld, err);
		config_free(ld.cfg);
		rc = -1;
	} else {
		ld.cfg->text = xstrndup(text, len);
		ld.cfg->text_len = len;
		*out = ld.cfg;
		rc = 0;
	}
	loader_free(&ld);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* The interface                                                              */

int
config_load(const char *path, struct config **out, struct err *err)
{
	struct err why;
	struct stat st;
	const char *nul;
	char *text;
	size_t len;
	int rc, line = 1;

	if (read_file(path, CONFIG_MAX_FILE, &text, &len, &why) < 0)
		return err_set(err, "cannot read the configuration: %s", why.msg);
	if ((nul = memchr(text, '\0', len)) != NULL) {
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		rc = err_set(err, "%s:%d: a NUL byte; this is not a text file", path, line);
	} else {
		rc = load_text(text, len, path, stat(path, &st) == 0 && (st.st_mode & S_IROTH),
		    out, err);
	}
	explicit_bzero(text, len);     /* it may hold a password */
	free(text);
	return rc;
}

int
config_load_string(const char *text, const char *name, struct config **out, struct err *err)
{
	return load_text(text, strlen(text), name, false, out, err);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		clear_object(&cfg->routes[i], true);
		identity_map_free(cfg->routes[i].from_map);
		free(cfg->routes[i].name);
	}
	free(cfg->routes);
	clear_object(cfg, false);
	free(cfg->path);
	if (cfg->text != NULL)
		explicit_bzero(cfg->text, cfg->text_len);   /* it may hold a password */
	free(cfg->text);
	free(cfg);
}

const char *
config_choose_path(const char *from_command_line)
{
	const char *env = getenv("MAILREDIR_CONFIG");

	if (from_command_line != NULL && from_command_line[0] != '\0')
		return from_command_line;
	if (env != NULL && env[0] != '\0')
		return env;
	return CONFIG_DEFAULT_PATH;
}

const struct route *
config_default_route(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].ndomains == 0 && cfg->routes[i].nsenders == 0)
			return &cfg->routes[i];
	return NULL;
}

const struct route *
config_find_route(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i].name, name) == 0)
			return &cfg->routes[i];
	return NULL;
}

const char *
config_key_name(size_t i)
{
	return i < K_COUNT ? keys[i].name : NULL;
}
