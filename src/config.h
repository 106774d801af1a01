/* config.h - mailredir.conf (mailredir.conf.5) read into one immutable tree.
 *
 * INI syntax is inih's; the meaning of keys is ours: one table of keys (name,
 * type, default, bounds, where it is stored), then a second pass that checks
 * combinations.  Every error is "FILE:LINE: what is wrong[, what to do]";
 * all of a file's errors are reported, not only the first.  Unknown keys and
 * unknown sections are errors.  Code receives `const struct config *` and
 * never reads options from globals.  SIGHUP: load a new tree, swap on success.
 *
 * Durations ("500ms 30s 5m 2h 5d", bare number = seconds) are stored in
 * milliseconds; sizes ("512", "64k", "10M", "1G"; powers of 1024) in bytes.
 * Relative paths (spool, tls-ca-file, tls-cert, tls-key, password-file) are
 * made absolute against the current directory at load. */
#ifndef MAILREDIR_CONFIG_H
#define MAILREDIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "netaddr.h"

#define CONFIG_DEFAULT_PATH  "/etc/mailredir.conf"
#define CONFIG_DEFAULT_SPOOL "/var/spool/mailredir"
#define CONFIG_DEFAULT_USER  "mailredir"
#define CONFIG_ROUTE_NAME_MAX 64   /* octets of a route name (login_state keeps them) */

enum listen_flag {
	LISTEN_TLS   = 1 << 0,    /* implicit TLS (port 465 style) */
	LISTEN_AUTH  = 1 << 1,    /* AUTH required before MAIL */
	LISTEN_PROXY = 1 << 2,    /* PROXY protocol header first */
};

/* listen = ADDR:PORT [tls] [auth] [proxy]   (ADDR numeric; [v6]:port) */
struct listen_addr {
	char host[NETADDR_TEXT_MAX];   /* numeric, without brackets */
	uint16_t port;
	unsigned flags;                /* enum listen_flag */
	int line;                      /* where it was written, for bind errors */
};

enum tls_mode { TLS_MODE_DEFAULT, TLS_MODE_STARTTLS, TLS_MODE_TLS, TLS_MODE_NONE };
enum header_from { HEADER_FROM_KEEP, HEADER_FROM_REWRITE };

/* login-before-smtp = pop3://host[:port] | pop3s:// | imap:// | imaps://
 * (POP-/IMAP-before-SMTP); default ports 110, 995, 143, 993. */
enum login_proto { LOGIN_NONE, LOGIN_POP3, LOGIN_POP3S, LOGIN_IMAP, LOGIN_IMAPS };
struct login_url {
	enum login_proto proto;        /* LOGIN_NONE: not set */
	char *host;                    /* without brackets */
	uint16_t port;
};
enum login_tls { LOGIN_TLS_REQUIRED, LOGIN_TLS_NONE };

struct identity_map;     /* identity.h: a parsed from-map */

/* Retry schedule: steps (e.g. 1m 5m 15m 1h), then every `max_ms`, until
 * `max_age_ms` after the message was received. */
struct retry_policy {
	uint64_t *steps_ms;
	size_t nsteps;
	uint64_t max_ms;       /* retry-max, default 4h */
	uint64_t max_age_ms;   /* max-age, default 5d */
};

/* [route NAME]: how mail leaves (PRODUCT.md §3).  Strings are NULL when unset. */
struct route {
	char *name;
	int line;                      /* of the [route NAME] header */
	char *smarthost;               /* host without brackets */
	uint16_t port;                 /* default 25 */
	enum tls_mode tls;             /* resolved: DEFAULT becomes TLS on 465, else STARTTLS */
	bool tls_verify;               /* default yes */
	char *tls_ca_file;
	char **tls_fingerprints;       /* "sha256:AB:CD:..." normalised to upper case */
	size_t ntls_fingerprints;
	char *tls_cert, *tls_key;
	char *user;
	char *password_file;           /* checked: exists, not readable by group/others */
	char *password_command;
	char *password;                /* a secret: never print this tree */
	char **auth;                   /* mechanisms in order, upper case; empty = auto */
	size_t nauth;
	char *envelope_from;           /* default: user when it contains '@' */
	bool allow_plaintext_auth;
	char *oauth_token_command;
	uint64_t connect_timeout_ms;   /* default 30s */
	uint64_t reply_timeout_ms;     /* default 5m */
	struct retry_policy retry;     /* the global one unless overridden here */
	/* Which mail takes the route (route.h): recipient domains, lower case,
	 * ".example.com" = it and its subdomains; senders "a@b" or "@domain".
	 * A route with neither is a default route (the first one is used). */
	char **domains;
	size_t ndomains;
	char **senders;
	size_t nsenders;
	/* The identity in the header (identity.h). */
	enum header_from header_from;  /* keep (default) | rewrite: needs envelope_from */
	char *from_map_file;
	struct identity_map *from_map; /* read at load: a bad map is a config error */
	/* Bounces (dsn.h) */
	char *bounce;                  /* NULL: to the sender; "none"; or one address */
	char *bounce_from;             /* envelope sender of bounces; NULL: <> */
	uint64_t delay_warning_ms;     /* 0: no delay warnings; default 4h */
	/* POP-/IMAP-before-SMTP (login.h) */
	struct login_url login;
	char *login_user;              /* default: user */
	char *login_password_file;     /* default: the route's password source */
	char *login_password_command;
	uint64_t login_delay_ms;       /* wait after the login; default 0 */
	uint64_t login_valid_ms;       /* reuse a login this long; 0 = every session */
	enum login_tls login_tls;      /* required (default) | none */
};

struct config {
	char *path;                    /* the file it came from */
	char *text;                    /* what was parsed: delivery workers get exactly this
	                                * (a secret may be in it: wiped by config_free) */
	size_t text_len;
	struct listen_addr *listen;
	size_t nlisten;
	char *spool;                   /* absolute path (a relative one is made absolute at load) */
	char *hostname;                /* default: gethostname() */
	char *user;                    /* "" = keep the current user; default "mailredir" */
	struct cidr *clients;          /* default 127.0.0.0/8 ::1/128 */
	size_t nclients;
	uint64_t max_message_size;     /* 25M */
	unsigned max_recipients;       /* 100 */
	unsigned max_connections;      /* 100 */
	unsigned max_connections_per_client;  /* 20 */
	uint64_t command_timeout_ms;   /* 5m */
	uint64_t data_timeout_ms;      /* 10m */
	enum log_level log_level;      /* log-level = error|warning|info|debug; info */
	unsigned max_deliveries;       /* 4 */
	struct retry_policy retry;     /* retry = 1m 5m 15m 1h; retry-max = 4h; max-age = 5d */
	char *bounce;                  /* bounce = none | ADDRESS; NULL: to the sender */
	uint64_t delay_warning_ms;     /* delay-warning = 4h; 0: none */
	struct route *routes;          /* in file order; the first without domains/senders is the default */
	size_t nroutes;
};

/* Read and check a file.  On error returns -1 with every problem, one per
 * line, in err (FILE:LINE: ...; err is emptied first, problems sorted by
 * line), and *out untouched.  `password` in a file that others can read is
 * one of the problems.  The caller owns *out (config_free). */
int config_load(const char *path, struct config **out, struct err *err);

/* The same from a string (tests, fuzzing); `name` stands for the file name in
 * messages.  Checks that touch the file system (password-file permissions,
 * hostname default) still run. */
int config_load_string(const char *text, const char *name, struct config **out, struct err *err);

void config_free(struct config *);   /* NULL is fine; wipes `password` */

/* -c FILE, else $MAILREDIR_CONFIG, else CONFIG_DEFAULT_PATH. */
const char *config_choose_path(const char *from_command_line);

/* Value parsers (pure), exposed for tests and reuse: 0 / -1. */
int config_parse_duration(const char *s, uint64_t *ms);
int config_parse_size(const char *s, uint64_t *bytes);

/* The first route with neither domains nor senders, or NULL. */
const struct route *config_default_route(const struct config *);
const struct route *config_find_route(const struct config *, const char *name);

/* The names of all keys, i = 0, 1, ... until NULL (a name may appear twice:
 * `user` is a global and a route key).  For the test that every key is in
 * mailredir.conf.5. */
const char *config_key_name(size_t i);

#endif
