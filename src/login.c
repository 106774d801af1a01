/* login.c - POP3 and IMAP logins before SMTP; see login.h.
 *
 * Plain blocking code on netio, like smtp_client.c; every reply line goes
 * through the pure parsers of login_parse.h.  SASL goes through
 * auth_client_run, whose vocabulary is SMTP's: the POP3/IMAP answers are
 * told to it as 235 (accepted), 535 (refused) and 454 (try later). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth_client.h"
#include "log.h"
#include "login.h"
#include "login_parse.h"
#include "util.h"

#define LOGIN_INITIAL_MAX 1000       /* an AUTH/AUTHENTICATE line with its response */
/* RFC 5034 §4: an AUTH command with its initial response is at most 255
 * octets with CRLF: "AUTH " + a 20-octet mechanism + " " + response + CRLF. */
#define POP3_INITIAL_MAX (255 - 5 - 20 - 1 - 2)

struct login {
	const struct route *route;     /* the route: gateway, TLS, timeouts */
	struct route account;          /* the same with the login account in user/password */
	const struct netio_trace *trace;
	struct netio *conn;
	struct login_result *res;
	char line[NETIO_LINE_MAX + 1];
	size_t len;
	unsigned tagno;
	char tag[16];                  /* IMAP: of the command in flight */
	struct login_imap_caps icaps;
};

static const char *const proto_names[] = {
	[LOGIN_NONE] = "none", [LOGIN_POP3] = "pop3", [LOGIN_POP3S] = "pop3s",
	[LOGIN_IMAP] = "imap", [LOGIN_IMAPS] = "imaps",
};

const char *
login_proto_name(enum login_proto p)
{
	return p <= LOGIN_IMAPS ? proto_names[p] : "?";
}

static bool
is_pop3(const struct login *l)
{
	return l->route->login.proto == LOGIN_POP3 || l->route->login.proto == LOGIN_POP3S;
}

static int fail(struct login *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The reason the login failed, for the queue and the log: printable only. */
static int
fail(struct login *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->res->reply, sizeof l->res->reply, fmt, ap);
	va_end(ap);
	for (char *p = l->res->reply; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
			*p = '?';
	return -1;
}

/* --- lines ---------------------------------------------------------------- */

/* One command line; `shown` replaces it in the trace (secrets). */
static int
send_line(struct login *l, const char *text, const char *shown)
{
	struct err err;

	netio_trace_say(l->trace, "C: %s", shown != NULL ? shown : text);
	if (netio_write(l->conn, text, strlen(text), &err) == -1 ||
	    netio_write(l->conn, "\r\n", 2, &err) == -1 ||
	    netio_flush(l->conn, l->route->reply_timeout_ms, &err) == -1)
		return fail(l, "%s", err.msg);
	return 0;
}

static int
read_line(struct login *l)
{
	struct err err;
	ssize_t n = netio_read_line(l->conn, l->line, sizeof l->line,
	    l->route->reply_timeout_ms, &err);

	if (n < 0)
		return fail(l, "%s server %s: %s", l->res->protocol, l->res->server, err.msg);
	l->len = (size_t)n;
	netio_trace_say(l->trace, "S: %.*s", (int)(l->len < 300 ? l->len : 300), l->line);
	return 0;
}

static int
start_tls(struct login *l)
{
	struct tls_params p = {
		.servername = l->route->login.host, .verify = l->route->tls_verify,
		.ca_file = l->route->tls_ca_file, .fingerprints = l->route->tls_fingerprints,
		.nfingerprints = l->route->ntls_fingerprints, .cert_file = l->route->tls_cert,
		.key_file = l->route->tls_key,
	};
	struct err err;

	if (netio_start_tls(l->conn, &p, l->route->connect_timeout_ms, &l->res->tls_info,
	    &err) == -1)
		return fail(l, "%s", err.msg);
	l->res->tls = true;
	return 0;
}

/* The cleartext rule for PASS and LOGIN, as for PLAIN/LOGIN over SMTP. */
static bool
password_may_go(const struct login *l)
{
	return l->res->tls || l->route->allow_plaintext_auth;
}

/* --- POP3 ----------------------------------------------------------------- */

static int
pop3_reply(struct login *l, struct login_pop3_line *pl)
{
	if (read_line(l) == -1)
		return -1;
	if (login_pop3_parse_line(l->line, l->len, pl) == LOGIN_POP3_INVALID)
		return fail(l, "%s is not a POP3 server: %s", l->res->server, pl->why);
	return 0;
}

/* A command whose answer must be +OK; -1 with the server's words else. */
static int
pop3_command(struct login *l, const char *cmd, const char *shown)
{
	struct login_pop3_line pl;

	if (send_line(l, cmd, shown) == -1 || pop3_reply(l, &pl) == -1)
		return -1;
	if (pl.kind != LOGIN_POP3_OK)
		return fail(l, "%s: %.*s", shown != NULL ? shown : cmd, (int)l->len, l->line);
	return 0;
}

/* CAPA; a server without it (-ERR) is taken to offer USER only. */
static int
pop3_capa(struct login *l, struct login_pop3_caps *caps)
{
	struct login_pop3_line pl;
	enum login_pop3_multi m = LOGIN_POP3_MULTI_LINE;

	login_pop3_caps_init(caps);
	if (send_line(l, "CAPA", NULL) == -1 || pop3_reply(l, &pl) == -1)
		return -1;
	if (pl.kind != LOGIN_POP3_OK) {
		caps->user = true;
		return 0;
	}
	while (m == LOGIN_POP3_MULTI_LINE) {
		if (read_line(l) == -1)
			return -1;
		m = login_pop3_caps_add(caps, l->line, l->len);
	}
	if (m == LOGIN_POP3_MULTI_INVALID)
		return fail(l, "the POP3 server's CAPA reply is invalid: %s", caps->why);
	return 0;
}

/* RFC 5034: "AUTH MECH [initial]", "+ challenge", "+OK" / "-ERR". */
static int
pop3_auth_start(void *ctx, const char *mech, const char *initial_b64, struct err *err)
{
	struct login *l = ctx;
	char line[LOGIN_INITIAL_MAX + 64], shown[64];

	snprintf(line, sizeof line, "AUTH %s%s%s", mech, initial_b64 ? " " : "",
	    initial_b64 ? initial_b64 : "");
	snprintf(shown, sizeof shown, "AUTH %s%s", mech, initial_b64 ? " ********" : "");
	if (send_line(l, line, shown) == -1) {
		OPENSSL_cleanse(line, sizeof line);
		return err_set(err, "%s", l->res->reply);
	}
	OPENSSL_cleanse(line, sizeof line);
	return 0;
}

static int
login_auth_respond(void *ctx, const char *b64, struct err *err)
{
	struct login *l = ctx;

	if (send_line(l, b64, strcmp(b64, "*") == 0 ? "*" : "********") == -1)
		return err_set(err, "%s", l->res->reply);
	return 0;
}

/* A challenge's payload (base64) into b64 for auth_client. */
static int
challenge(struct login *l, const char *s, size_t n, char *b64, size_t size, struct err *err)
{
	if (n >= size)
		return err_set(err, "the %s server's challenge is longer than %zu octets",
		    l->res->protocol, size - 1);
	memcpy(b64, s, n);
	b64[n] = '\0';
	return 0;
}

static void
final_reply(struct login *l, struct auth_reply *reply, int code)
{
	reply->code = code;
	snprintf(reply->text, sizeof reply->text, "%.*s", (int)l->len, l->line);
}

static int
pop3_auth_next(void *ctx, char *b64, size_t size, enum auth_step *step,
    struct auth_reply *reply, struct err *err)
{
	struct login *l = ctx;
	struct login_pop3_line pl;

	if (pop3_reply(l, &pl) == -1)
		return err_set(err, "%s", l->res->reply);
	switch (pl.kind) {
	case LOGIN_POP3_CONTINUE:
		*step = AUTH_STEP_CHALLENGE;
		return challenge(l, pl.text.s, pl.text.len, b64, size, err);
	case LOGIN_POP3_OK:
		*step = AUTH_STEP_OK;
		final_reply(l, reply, 235);
		return 0;
	default:
		*step = pl.code == LOGIN_POP3_CODE_SYS_TEMP || pl.code == LOGIN_POP3_CODE_IN_USE ?
		    AUTH_STEP_TEMPFAIL : AUTH_STEP_REFUSED;
		final_reply(l, reply, *step == AUTH_STEP_TEMPFAIL ? 454 : 535);
		return 0;
	}
}

/* rc of the command that logs in; on success `how` is what the log and probe
 * name (a SASL mechanism, APOP, USER, LOGIN). */
static int
logged_in(struct login *l, int rc, const char *how)
{
	if (rc == 0)
		strlcopy(l->res->mech, how, sizeof l->res->mech);
	return rc;
}

/* SASL when the server offers a mechanism we may use: 0 logged in, 1 none
 * usable (try the next way), -1 refused or broken (res->reply says). */
static int
sasl(struct login *l, const char *offered, const struct auth_proto *proto,
    const struct auth_credentials *cred)
{
	struct auth_result ar;
	struct err err;
	int rc;

	if (offered[0] == '\0')
		return 1;
	memset(&ar, 0, sizeof ar);
	rc = auth_client_run(&l->account, cred, offered, netio_tls(l->conn), proto, &ar, l->trace,
	    &err);
	if (rc == 0)
		return logged_in(l, 0, ar.mech);
	if (rc == -1)
		return fail(l, "%s", err.msg);
	if (rc == 1 && ar.reply.code == 0)
		return 1;     /* none usable, or none could start: the server saw nothing */
	return fail(l, "%s login %s (tried: %s): %s", l->res->protocol,
	    rc == 2 ? "failed for now" : "refused", ar.tried, ar.reply.text);
}

/* APOP (RFC 1939 §7): MD5 of the greeting's timestamp and the password. */
static int
pop3_apop(struct login *l, const char *timestamp, const struct auth_credentials *cred)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], line[sizeof cred->user + sizeof hex + 8];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) != 1 ||
	    EVP_DigestUpdate(ctx, cred->password, strlen(cred->password)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		EVP_MD_CTX_free(ctx);
		return fail(l, "APOP: MD5 is not available in this OpenSSL");
	}
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(line, sizeof line, "APOP %s %s", cred->user, hex);
	rc = pop3_command(l, line, "APOP ********");
	OPENSSL_cleanse(line, sizeof line);
	OPENSSL_cleanse(hex, sizeof hex);
	return logged_in(l, rc, "APOP");
}

static int
pop3_user_pass(struct login *l, const struct auth_credentials *cred)
{
	char line[AUTH_SECRET_MAX + 16];
	int rc;

	if (!password_may_go(l))
		return fail(l, "the POP3 server offers no way to log in but USER/PASS, and "
		    "the connection is not encrypted (allow-plaintext-auth = yes allows it)");
	snprintf(line, sizeof line, "USER %s", cred->user);
	if (pop3_command(l, line, "USER ********") == -1)
		return -1;
	snprintf(line, sizeof line, "PASS %s", cred->password);
	rc = pop3_command(l, line, "PASS ********");
	OPENSSL_cleanse(line, sizeof line);
	return logged_in(l, rc, "USER");
}

/* The strongest way the server and the route allow. */
static int
pop3_authenticate(struct login *l, const struct login_pop3_caps *caps, const char *timestamp,
    const struct auth_credentials *cred)
{
	struct auth_proto proto = {
		.ctx = l, .service = "pop", .hostname = l->route->login.host,
		.peer = "the POP3 server",
		.initial_response = true, .initial_max = POP3_INITIAL_MAX,
		.start = pop3_auth_start, .respond = login_auth_respond, .next = pop3_auth_next,
	};
	int rc = sasl(l, caps->mechs, &proto, cred);

	if (rc != 1)
		return rc;
	if (timestamp[0] != '\0' && cred->password[0] != '\0')
		return pop3_apop(l, timestamp, cred);
	return pop3_user_pass(l, cred);
}

static int
pop3_session(struct login *l, const struct auth_credentials *cred)
{
	struct login_pop3_line pl;
	struct login_pop3_caps caps;
	struct login_span ts;
	char timestamp[LOGIN_APOP_TIMESTAMP_MAX + 1] = "";

	if (pop3_reply(l, &pl) == -1)
		return -1;
	if (pl.kind != LOGIN_POP3_OK)
		return fail(l, "the POP3 server does not greet with +OK: %.*s", (int)l->len, l->line);
	if (login_pop3_apop_timestamp(&pl, &ts))
		snprintf(timestamp, sizeof timestamp, "%.*s", (int)ts.len, ts.s);
	if (pop3_capa(l, &caps) == -1)
		return -1;
	if (!l->res->tls && caps.stls) {
		if (pop3_command(l, "STLS", NULL) == -1 || start_tls(l) == -1 ||
		    pop3_capa(l, &caps) == -1)
			return -1;
	} else if (!l->res->tls && l->route->login_tls == LOGIN_TLS_REQUIRED) {
		return fail(l, "the POP3 server %s offers no STLS; use pop3s://, or set "
		    "login-tls = none to log in without TLS", l->res->server);
	}
	if (pop3_authenticate(l, &caps, timestamp, cred) == -1)
		return -1;
	if (pop3_command(l, "STAT", NULL) == -1)
		return -1;
	if (send_line(l, "QUIT", NULL) == 0)
		(void)pop3_reply(l, &pl);
	return 0;
}

/* --- IMAP ----------------------------------------------------------------- */

static const char *
next_tag(struct login *l)
{
	snprintf(l->tag, sizeof l->tag, "m%u", ++l->tagno);
	return l->tag;
}

/* Read until the tagged reply to the command in flight (or, tag NULL, one
 * greeting line); capabilities seen on the way are kept.  Continuations
 * end the wait too (AUTHENTICATE).  -1 on trouble. */
static int
imap_reply(struct login *l, const char *tag, struct login_imap_line *il)
{
	for (unsigned n = 0; n < LOGIN_LINES_MAX; n++) {
		if (read_line(l) == -1)
			return -1;
		if (login_imap_parse_line(l->line, l->len, tag, il) == LOGIN_IMAP_INVALID)
			return fail(l, "%s: not an IMAP reply: %s", l->res->server, il->why);
		if (il->literal)
			return fail(l, "%s: an IMAP literal where none was expected", l->res->server);
		if (il->caps.s != NULL)
			login_imap_caps_parse(il->caps.s, il->caps.len, &l->icaps);
		if (il->kind != LOGIN_IMAP_UNTAGGED || tag == NULL)
			return 0;
		if (il->status == LOGIN_IMAP_STATUS_BYE)
			return fail(l, "the IMAP server closes: %.*s", (int)l->len, l->line);
	}
	return fail(l, "%s: more than %d IMAP lines without an answer", l->res->server,
	    LOGIN_LINES_MAX);
}

/* "TAG CMD": OK, or -1 with the server's words. */
static int
imap_command(struct login *l, const char *cmd, const char *shown)
{
	struct login_imap_line il;
	char line[AUTH_SECRET_MAX * 2 + 64], show[64];
	const char *tag = next_tag(l);
	int rc;

	snprintf(line, sizeof line, "%s %s", tag, cmd);
	snprintf(show, sizeof show, "%s %s", tag, shown != NULL ? shown : cmd);
	rc = send_line(l, line, show);
	OPENSSL_cleanse(line, sizeof line);
	if (rc == -1 || imap_reply(l, tag, &il) == -1)
		return -1;
	if (il.kind != LOGIN_IMAP_TAGGED || il.status != LOGIN_IMAP_STATUS_OK)
		return fail(l, "%s: %.*s", show, (int)l->len, l->line);
	return 0;
}

static int
imap_auth_start(void *ctx, const char *mech, const char *initial_b64, struct err *err)
{
	struct login *l = ctx;
	char line[LOGIN_INITIAL_MAX + 64], shown[80];
	bool ir = initial_b64 != NULL && l->icaps.sasl_ir;
	const char *tag = next_tag(l);
	int rc;

	snprintf(line, sizeof line, "%s AUTHENTICATE %s%s%s", tag, mech, ir ? " " : "",
	    ir ? initial_b64 : "");
	snprintf(shown, sizeof shown, "%s AUTHENTICATE %s%s", tag, mech, ir ? " ********" : "");
	rc = send_line(l, line, shown);
	OPENSSL_cleanse(line, sizeof line);
	if (rc == -1)
		return err_set(err, "%s", l->res->reply);
	return 0;
}

static int
imap_auth_next(void *ctx, char *b64, size_t size, enum auth_step *step,
    struct auth_reply *reply, struct err *err)
{
	struct login *l = ctx;
	struct login_imap_line il;

	if (imap_reply(l, l->tag, &il) == -1)
		return err_set(err, "%s", l->res->reply);
	if (il.kind == LOGIN_IMAP_CONTINUE) {
		*step = AUTH_STEP_CHALLENGE;
		return challenge(l, il.text.s, il.text.len, b64, size, err);
	}
	if (il.status == LOGIN_IMAP_STATUS_OK) {
		*step = AUTH_STEP_OK;
		final_reply(l, reply, 235);
		return 0;
	}
	*step = il.code == LOGIN_IMAP_CODE_UNAVAILABLE || il.code == LOGIN_IMAP_CODE_INUSE ?
	    AUTH_STEP_TEMPFAIL : AUTH_STEP_REFUSED;
	final_reply(l, reply, *step == AUTH_STEP_TEMPFAIL ? 454 : 535);
	return 0;
}

/* An IMAP quoted string (RFC 3501 §4.3) of s into out; -1 when s holds what
 * a quoted string cannot (CR, LF, NUL, 8-bit). */
static int
imap_quote(const char *s, char *out, size_t size)
{
	size_t o = 0;

	out[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < ' ' || c > '~' || o + 3 >= size)
			return -1;
		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

static int
imap_login(struct login *l, const struct auth_credentials *cred)
{
	char user[1100], pass[2 * AUTH_SECRET_MAX + 3], cmd[sizeof user + sizeof pass + 8];
	int rc = -1;

	if (l->icaps.logindisabled)
		return fail(l, "the IMAP server allows no LOGIN here (LOGINDISABLED) and no "
		    "mechanism this build can use");
	if (!password_may_go(l))
		return fail(l, "the IMAP server offers no way to log in but LOGIN, and the "
		    "connection is not encrypted (allow-plaintext-auth = yes allows it)");
	if (imap_quote(cred->user, user, sizeof user) == -1 ||
	    imap_quote(cred->password, pass, sizeof pass) == -1)
		fail(l, "the login user or password has characters IMAP LOGIN cannot carry");
	else {
		snprintf(cmd, sizeof cmd, "LOGIN %s %s", user, pass);
		rc = imap_command(l, cmd, "LOGIN ******** ********");
	}
	OPENSSL_cleanse(pass, sizeof pass);
	OPENSSL_cleanse(cmd, sizeof cmd);
	return logged_in(l, rc, "LOGIN");
}

/* CAPABILITY unless the last answer carried the list. */
static int
imap_capabilities(struct login *l, bool known)
{
	return known ? 0 : imap_command(l, "CAPABILITY", NULL);
}

static int
imap_session(struct login *l, const struct auth_credentials *cred)
{
	struct auth_proto proto = {
		.ctx = l, .service = "imap", .hostname = l->route->login.host,
		.peer = "the IMAP server",
		.initial_response = true, .initial_max = LOGIN_INITIAL_MAX - 64,
		.start = imap_auth_start, .respond = login_auth_respond, .next = imap_auth_next,
	};
	struct login_imap_line il;
	int rc;

	memset(&l->icaps, 0, sizeof l->icaps);
	if (imap_reply(l, NULL, &il) == -1)
		return -1;
	if (il.kind != LOGIN_IMAP_UNTAGGED || (il.status != LOGIN_IMAP_STATUS_OK &&
	    il.status != LOGIN_IMAP_STATUS_PREAUTH))
		return fail(l, "the IMAP server does not greet with OK: %.*s", (int)l->len, l->line);
	if (il.status == LOGIN_IMAP_STATUS_PREAUTH)
		return fail(l, "the IMAP server logged us in before we said who we are (PREAUTH): "
		    "that is no login a poprelayd can see");
	if (imap_capabilities(l, il.caps.s != NULL) == -1)
		return -1;
	if (!l->res->tls && l->icaps.starttls) {
		if (imap_command(l, "STARTTLS", NULL) == -1 || start_tls(l) == -1)
			return -1;
		memset(&l->icaps, 0, sizeof l->icaps);   /* forget what was said in clear */
		if (imap_capabilities(l, false) == -1)
			return -1;
	} else if (!l->res->tls && l->route->login_tls == LOGIN_TLS_REQUIRED) {
		return fail(l, "the IMAP server %s offers no STARTTLS; use imaps://, or set "
		    "login-tls = none to log in without TLS", l->res->server);
	}
	if ((rc = sasl(l, l->icaps.mechs, &proto, cred)) == 1)
		rc = imap_login(l, cred);
	if (rc == -1)
		return -1;
	if (send_line(l, "z LOGOUT", NULL) == 0)
		(void)imap_reply(l, "z", &il);
	return 0;
}

/* --- the login ------------------------------------------------------------ */

/* The route with the login account in its credential fields. */
static void
login_account(const struct route *r, struct route *a)
{
	*a = *r;
	if (r->login_user != NULL)
		a->user = r->login_user;
	if (r->login_password_file != NULL || r->login_password_command != NULL) {
		a->password_file = r->login_password_file;
		a->password_command = r->login_password_command;
		a->password = NULL;
	}
	a->oauth_token_command = NULL;    /* POP3/IMAP logins use passwords */
	a->auth = NULL;                   /* the automatic ranking */
	a->nauth = 0;
}

int
login_run(const struct route *route, const struct netio_trace *trace, struct login_result *res)
{
	struct login l = { .route = route, .trace = trace, .res = res };
	struct auth_credentials cred;
	struct err err;
	int rc = -1;

	memset(res, 0, sizeof *res);
	res->protocol = route->login.proto == LOGIN_IMAP || route->login.proto == LOGIN_IMAPS ?
	    "IMAP" : "POP3";
	login_account(route, &l.account);
	memset(&cred, 0, sizeof cred);
	if (netio_connect(route->login.host, route->login.port, route->connect_timeout_ms, trace,
	    &l.conn, &err) == -1)
		return fail(&l, "%s", err.msg);
	strlcopy(res->server, netio_peer(l.conn), sizeof res->server);
	if ((route->login.proto == LOGIN_POP3S || route->login.proto == LOGIN_IMAPS) &&
	    start_tls(&l) == -1)
		goto done;
	if (auth_credentials_load(&l.account, &cred, &err) == -1) {
		fail(&l, "%s", err.msg);
		goto done;
	}
	rc = is_pop3(&l) ? pop3_session(&l, &cred) : imap_session(&l, &cred);
done:
	auth_credentials_wipe(&cred);
	netio_close(l.conn);
	return rc;
}
