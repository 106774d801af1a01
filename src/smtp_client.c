/* smtp_client.c - SMTP toward a gateway, blocking; see smtp_client.h.
 *
 * STANDARDS
 *	RFC 5321 §3.3 (MAIL, RCPT, DATA), §4.1.1.5 (RSET), §4.5.2 (dot-stuffing),
 *	§4.5.3.2 (timeouts: the route's reply-timeout, whose default is at most
 *	the RFC's), §3.2 (HELO when EHLO is refused); RFC 2920 (PIPELINING: RSET,
 *	MAIL, RCPT... and DATA as one group, replies read in order; §3.1: a DATA
 *	that was pipelined and accepted with no recipient gets a lone "."); RFC
 *	3207 (STARTTLS, and §4.2: nothing from before TLS is kept); RFC 8314
 *	(implicit TLS); RFC 4954 (AUTH); RFC 1870 (SIZE), RFC 6152 (8BITMIME),
 *	RFC 6531 (SMTPUTF8).
 *
 * SECURITY
 *	Replies are untrusted: they go through smtp_reply (bounded, pure) and
 *	reach outcomes and traces only as summaries without control characters.
 *	What we send is strict: every line ends in CRLF, the body is normalised
 *	(a bare CR or LF becomes CRLF) and dot-stuffed, so the gateway never sees
 *	a smuggling-capable sequence.  Envelope addresses with control characters
 *	are never sent.  Credentials live only inside session_auth and are wiped
 *	before it returns; AUTH lines are masked in the trace.
 *
 * Shape: plain code in protocol order, one function per step (send, read,
 * classify).  A session-setup failure is always deferred and route-level.
 * Any I/O failure or malformed reply makes the session unusable (-1); the
 * recipients not yet answered are then deferred. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_client.h"
#include "smtp_client.h"
#include "util.h"

#define GREETING_TLS_CHECK_MS 5000  /* silence this long: is it an implicit-TLS port? */
/* Implicit TLS: a plaintext server greets at once; a slower one is still
 * named by the handshake ("wrong version number ... try tls = starttls"). */
#define SPEAKS_FIRST_WAIT_MS 250
#define QUIT_TIMEOUT_MS 5000
#define BODY_CHUNK (64 * 1024)
#define CMD_MAX 1024                /* MAIL/RCPT lines; RFC 5321 allows 512 + extensions */
/* RFC 4954 §4: AUTH stays within the 512-octet command line, or the initial
 * response waits for the first (empty) challenge: 512 - "AUTH " - a
 * 20-octet mechanism name - " " - CRLF. */
#define AUTH_INITIAL_MAX (512 - 5 - SMTP_AUTH_MECH_LEN_MAX - 1 - 2)

struct smtp_client {
	const struct config *cfg;
	const struct route *route;
	const struct netio_trace *trace;
	struct netio *conn;
	struct smtp_client_info info;
	bool need_rset;                /* a transaction was started: RSET before the next */
	bool broken;                   /* I/O failed or the gateway misbehaved: only close */
};

static const char *const status_names[] = {
	[DELIVERY_SENT] = "sent", [DELIVERY_DEFERRED] = "deferred", [DELIVERY_FAILED] = "failed",
};

static const char *const step_names[] = {
	[STEP_LOGIN] = "login", [STEP_CONNECT] = "connect", [STEP_GREETING] = "greeting",
	[STEP_EHLO] = "ehlo", [STEP_STARTTLS] = "starttls", [STEP_TLS] = "tls", [STEP_AUTH] = "auth",
	[STEP_MAIL] = "mail", [STEP_RCPT] = "rcpt", [STEP_DATA] = "data",
	[STEP_END_OF_DATA] = "end-of-data",
};

const char *
delivery_status_name(enum delivery_status s)
{
	return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

const char *
delivery_step_name(enum delivery_step s)
{
	return (unsigned)s < sizeof step_names / sizeof step_names[0] ? step_names[s] : "?";
}

/* --- small helpers -------------------------------------------------------- */

static void trace_say(const struct smtp_client *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void outcome_set(struct smtp_outcome *, enum delivery_status, enum delivery_step,
    bool route_level, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int setup_fail(struct smtp_outcome *, enum delivery_step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line of narration for `probe`; control characters become '?'. */
static void
trace_say(const struct smtp_client *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (c->trace == NULL || c->trace->say == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	c->trace->say(c->trace->ctx, line);
}

static void
outcome_set(struct smtp_outcome *o, enum delivery_status status, enum delivery_step step,
    bool route_level, const char *fmt, ...)
{
	va_list ap;

	o->status = status;
	o->step = step;
	o->route_level = route_level;
	o->relay_denied = false;
	va_start(ap, fmt);
	vsnprintf(o->reply, sizeof o->reply, fmt, ap);
	va_end(ap);
}

/* Session setup failed: deferred, the route's fault (PRODUCT.md §3).  -1. */
static int
setup_fail(struct smtp_outcome *o, enum delivery_step step, const char *fmt, ...)
{
	va_list ap;

	o->status = DELIVERY_DEFERRED;
	o->step = step;
	o->route_level = true;
	va_start(ap, fmt);
	vsnprintf(o->reply, sizeof o->reply, fmt, ap);
	va_end(ap);
	return -1;
}

static enum tls_mode
route_tls(const struct route *r)
{
	if (r->tls == TLS_MODE_DEFAULT)
		return r->port == 465 ? TLS_MODE_TLS : TLS_MODE_STARTTLS;
	return r->tls;
}

/* 2xx SENT, 4xx DEFERRED, 5xx FAILED; anything else (a 3xx where it makes
 * no sense) is a temporary oddity. */
static enum delivery_status
status_of(const struct smtp_reply *r)
{
	return r->code / 100 == 2 ? DELIVERY_SENT : r->code / 100 == 5 ? DELIVERY_FAILED :
	    DELIVERY_DEFERRED;
}

/* Authentication required or failed (PRODUCT.md §3): the route, not the
 * recipient, is at fault. */
static bool
means_auth_trouble(const struct smtp_reply *r)
{
	return r->code == 530 || r->code == 534 || r->code == 535 || r->code == 538;
}

/* No control characters (CR, LF, NUL...): such an address would let the
 * envelope inject commands. */
static bool
address_sendable(const char *a)
{
	for (; *a != '\0'; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			return false;
	return true;
}

/* --- sending and reading -------------------------------------------------- */

/* Queue one command line; `shown` is what the trace sees (secrets masked). */
static int
send_line(struct smtp_client *c, const char *line, const char *shown, struct err *err)
{
	trace_say(c, "C: %s", shown != NULL ? shown : line);
	if (netio_write(c->conn, line, strlen(line), err) == -1 ||
	    netio_write(c->conn, "\r\n", 2, err) == -1)
		return -1;
	return 0;
}

static int
flush(struct smtp_client *c, struct err *err)
{
	return netio_flush(c->conn, c->route->reply_timeout_ms, err);
}

/* Read lines into r (initialised by the caller) until the reply is complete,
 * all before deadline.  -1 with err on I/O trouble, a timeout, or a
 * malformed reply (err then holds its summary). */
static int
read_reply_until(struct smtp_client *c, struct smtp_reply *r, uint64_t deadline,
    struct err *err)
{
	char line[NETIO_LINE_MAX + 1];

	for (;;) {
		uint64_t now = now_ms();
		ssize_t n = netio_read_line(c->conn, line, sizeof line,
		    deadline > now ? deadline - now : 0, err);

		if (n < 0)
			return -1;
		trace_say(c, "S: %.*s", (int)n, line);
		switch (smtp_reply_add_line(r, line, (size_t)n)) {
		case SMTP_REPLY_MORE:
			continue;
		case SMTP_REPLY_DONE:
			return 0;
		case SMTP_REPLY_BAD:
			smtp_reply_summary(r, err->msg, sizeof err->msg);
			return -1;
		}
	}
}

static int
read_reply(struct smtp_client *c, struct smtp_reply *r, struct err *err)
{
	smtp_reply_init(r);
	return read_reply_until(c, r, now_ms() + c->route->reply_timeout_ms, err);
}

/* Send one command and read its reply (the steps that cannot pipeline). */
static int
command(struct smtp_client *c, const char *line, struct smtp_reply *r, struct err *err)
{
	if (send_line(c, line, NULL, err) == -1 || flush(c, err) == -1 ||
	    read_reply(c, r, err) == -1) {
		c->broken = true;
		return -1;
	}
	return 0;
}

/* --- session setup -------------------------------------------------------- */

static void
route_tls_params(const struct route *r, struct tls_params *p)
{
	memset(p, 0, sizeof *p);
	p->servername = r->smarthost;
	p->verify = r->tls_verify;
	p->ca_file = r->tls_ca_file;
	p->fingerprints = r->tls_fingerprints;
	p->nfingerprints = r->ntls_fingerprints;
	p->cert_file = r->tls_cert;
	p->key_file = r->tls_key;
}

static int
start_tls(struct smtp_client *c, struct smtp_outcome *o)
{
	struct tls_params p;
	struct err err;

	route_tls_params(c->route, &p);
	if (netio_start_tls(c->conn, &p, c->route->connect_timeout_ms, &c->info.tls_info,
	    &err) == -1) {
		c->broken = true;
		return setup_fail(o, STEP_TLS, "%s", err.msg);
	}
	c->info.tls = true;
	return 0;
}

/* tls = tls: a server that greets in plaintext is on the wrong port for it. */
static int
start_implicit_tls(struct smtp_client *c, struct smtp_outcome *o)
{
	char banner[128];
	struct err err;

	switch (netio_server_speaks_first(c->conn, SPEAKS_FIRST_WAIT_MS, banner, sizeof banner,
	    &err)) {
	case -1:
		c->broken = true;
		return setup_fail(o, STEP_TLS, "%s", err.msg);
	case 1:
		c->broken = true;
		return setup_fail(o, STEP_TLS, "port %u speaks plaintext SMTP (\"%.80s\"): "
		    "set tls = starttls", c->route->port, banner);
	}
	return start_tls(c, o);
}

static int
session_connect(struct smtp_client *c, struct smtp_outcome *o)
{
	struct err err;

	if (netio_connect(c->route->smarthost, c->route->port, c->route->connect_timeout_ms,
	    c->trace, &c->conn, &err) == -1) {
		c->broken = true;
		return setup_fail(o, STEP_CONNECT, "%s", err.msg);
	}
	strlcopy(c->info.relay, netio_peer(c->conn), sizeof c->info.relay);
	if (route_tls(c->route) == TLS_MODE_TLS)
		return start_implicit_tls(c, o);
	return 0;
}

/* A new connection: does a TLS handshake (unverified) succeed there within
 * wait_ms? */
static bool
port_speaks_tls(struct smtp_client *c, uint64_t wait_ms)
{
	struct tls_params p = { .servername = c->route->smarthost, .verify = false };
	struct tls_info info;
	struct netio *probe;
	struct err err;
	int rc;

	if (netio_connect(c->route->smarthost, c->route->port, c->route->connect_timeout_ms,
	    NULL, &probe, &err) == -1)
		return false;
	rc = netio_start_tls(probe, &p, wait_ms, &info, &err);
	netio_close(probe);
	return rc == 0 || info.version[0] != '\0';
}

/* Plaintext expected (starttls, none): a gateway silent for a few seconds
 * may be an implicit-TLS port waiting for our ClientHello.  Then hang up,
 * try a TLS handshake on a new connection (hanging up first: a gateway that
 * serves one connection at a time would not answer the second), and say so
 * in words when it is TLS.  If it is not, connect once more and wait for
 * the greeting until reply-timeout (a greet pause, as Postfix's postscreen
 * has, can be 6 s).  *probed: the check ran. */
static int
wait_for_greeting(struct smtp_client *c, bool *probed, struct smtp_outcome *o)
{
	uint64_t wait = c->route->reply_timeout_ms;
	char banner[128];
	struct err err;

	if (wait > GREETING_TLS_CHECK_MS)
		wait = GREETING_TLS_CHECK_MS;
	switch (netio_server_speaks_first(c->conn, wait, banner, sizeof banner, &err)) {
	case -1:
		c->broken = true;
		return setup_fail(o, STEP_GREETING, "%s", err.msg);
	case 1:
		return 0;
	}
	trace_say(c, "no greeting within %llu ms: trying a TLS handshake on a new connection",
	    (unsigned long long)wait);
	*probed = true;
	netio_close(c->conn);
	c->conn = NULL;
	if (port_speaks_tls(c, wait)) {
		c->broken = true;
		return setup_fail(o, STEP_GREETING, "port %u speaks TLS at once: set tls = tls",
		    c->route->port);
	}
	trace_say(c, "port %u does not speak TLS at once either; connecting again to wait for "
	    "the greeting", c->route->port);
	if (netio_connect(c->route->smarthost, c->route->port, c->route->connect_timeout_ms,
	    c->trace, &c->conn, &err) == -1) {
		c->broken = true;
		return setup_fail(o, STEP_CONNECT, "%s", err.msg);
	}
	strlcopy(c->info.relay, netio_peer(c->conn), sizeof c->info.relay);
	return 0;
}

static int
session_greeting(struct smtp_client *c, struct smtp_outcome *o)
{
	uint64_t timeout = c->route->reply_timeout_ms, deadline = now_ms() + timeout;
	bool probed = false;
	struct smtp_reply r;
	struct err err;
	char sum[512];

	if (route_tls(c->route) != TLS_MODE_TLS && wait_for_greeting(c, &probed, o) == -1)
		return -1;
	smtp_reply_init(&r);
	if (read_reply_until(c, &r, deadline, &err) == -1) {
		c->broken = true;
		if (now_ms() < deadline || r.bad)
			return setup_fail(o, STEP_GREETING, "%s", err.msg);
		return setup_fail(o, STEP_GREETING, "no greeting within %llu.%llu s%s",
		    (unsigned long long)(timeout / 1000), (unsigned long long)(timeout % 1000 / 100),
		    probed ? " (and the port does not speak TLS at once either)" : "");
	}
	if (r.code != 220)
		return setup_fail(o, STEP_GREETING, "%s", smtp_reply_summary(&r, sum, sizeof sum));
	return 0;
}

/* EHLO, or HELO when EHLO is refused with 5xx (then nothing is offered). */
static int
session_ehlo(struct smtp_client *c, struct smtp_outcome *o)
{
	const char *host = c->cfg->hostname != NULL ? c->cfg->hostname : "localhost";
	char line[300], sum[512];
	struct smtp_reply r;
	struct err err;

	memset(&c->info.caps, 0, sizeof c->info.caps);
	snprintf(line, sizeof line, "EHLO %s", host);
	if (command(c, line, &r, &err) == -1)
		return setup_fail(o, STEP_EHLO, "%s", err.msg);
	if (r.code / 100 == 2) {
		smtp_caps_parse(&r, &c->info.caps);
		return 0;
	}
	if (r.code / 100 != 5)
		return setup_fail(o, STEP_EHLO, "%s", smtp_reply_summary(&r, sum, sizeof sum));
	snprintf(line, sizeof line, "HELO %s", host);
	if (command(c, line, &r, &err) == -1)
		return setup_fail(o, STEP_EHLO, "%s", err.msg);
	if (r.code / 100 != 2)
		return setup_fail(o, STEP_EHLO, "%s", smtp_reply_summary(&r, sum, sizeof sum));
	return 0;
}

/* tls = starttls: STARTTLS, the handshake, and EHLO again with every
 * capability from before forgotten (RFC 3207 §4.2). */
static int
session_starttls(struct smtp_client *c, struct smtp_outcome *o)
{
	struct smtp_reply r;
	struct err err;
	char sum[512];

	if (route_tls(c->route) != TLS_MODE_STARTTLS)
		return 0;
	if (!c->info.caps.starttls)
		return setup_fail(o, STEP_STARTTLS, "the gateway does not offer STARTTLS "
		    "(tls = starttls); not sending anything in cleartext");
	if (command(c, "STARTTLS", &r, &err) == -1)
		return setup_fail(o, STEP_STARTTLS, "%s", err.msg);
	if (r.code != 220)
		return setup_fail(o, STEP_STARTTLS, "%s", smtp_reply_summary(&r, sum, sizeof sum));
	if (start_tls(c, o) == -1)
		return -1;
	return session_ehlo(c, o);
}

/* --- AUTH (struct auth_proto for SMTP, RFC 4954) -------------------------- */

static int
smtp_auth_start(void *ctx, const char *mech, const char *initial_b64, struct err *err)
{
	struct smtp_client *c = ctx;
	char shown[64];

	snprintf(shown, sizeof shown, "AUTH %s%s", mech, initial_b64 != NULL ? " ********" : "");
	trace_say(c, "C: %s", shown);
	if (netio_write(c->conn, "AUTH ", 5, err) == -1 ||
	    netio_write(c->conn, mech, strlen(mech), err) == -1 ||
	    (initial_b64 != NULL && (netio_write(c->conn, " ", 1, err) == -1 ||
	    netio_write(c->conn, initial_b64, strlen(initial_b64), err) == -1)) ||
	    netio_write(c->conn, "\r\n", 2, err) == -1 || flush(c, err) == -1) {
		c->broken = true;
		return -1;
	}
	return 0;
}

static int
smtp_auth_respond(void *ctx, const char *b64, struct err *err)
{
	struct smtp_client *c = ctx;

	if (send_line(c, b64, strcmp(b64, "*") == 0 ? "*" : "********", err) == -1 ||
	    flush(c, err) == -1) {
		c->broken = true;
		return -1;
	}
	return 0;
}

static enum auth_step
auth_step_of(const struct smtp_reply *r)
{
	switch (r->code) {
	case 334:
		return AUTH_STEP_CHALLENGE;
	case 235:
		return AUTH_STEP_OK;
	case 454:
		return AUTH_STEP_TEMPFAIL;
	case 504: case 534: case 535: case 538:
		return AUTH_STEP_REFUSED;
	}
	return r->code / 100 == 4 ? AUTH_STEP_TEMPFAIL : AUTH_STEP_REFUSED;
}

static int
smtp_auth_next(void *ctx, char *b64, size_t size, enum auth_step *step,
    struct auth_reply *reply, struct err *err)
{
	struct smtp_client *c = ctx;
	struct smtp_reply r;
	char sum[sizeof reply->text + 4];

	if (read_reply(c, &r, err) == -1) {
		c->broken = true;
		return -1;
	}
	*step = auth_step_of(&r);
	reply->code = r.code;
	/* the words after the code: "5.7.8 Error: authentication failed" */
	smtp_reply_summary(&r, sum, sizeof sum);
	strlcopy(reply->text, sum + (strlen(sum) > 4 ? 4 : strlen(sum)), sizeof reply->text);
	if (*step != AUTH_STEP_CHALLENGE)
		return 0;
	if (r.nlines != 1 || r.cut || strlen(r.text) >= size) {
		c->broken = true;
		return err_set(err, "the gateway's AUTH challenge is not one line of at most %zu "
		    "octets", size - 1);
	}
	memcpy(b64, r.text, strlen(r.text) + 1);
	return 0;
}

static void
auth_fail(struct smtp_outcome *o, int rc, const struct auth_result *res,
    const struct err *err)
{
	char code[8] = "";

	if (rc == -1) {
		outcome_set(o, DELIVERY_DEFERRED, STEP_AUTH, true, "%s", err->msg);
		return;
	}
	if (res->reply.code != 0)       /* 0: the driver's own words */
		snprintf(code, sizeof code, "%d ", res->reply.code);
	outcome_set(o, DELIVERY_DEFERRED, STEP_AUTH, true, "authentication %s (tried: %s): %s%s",
	    rc == 2 ? "failed for now" : "refused", res->tried[0] ? res->tried : "none", code,
	    res->reply.text);
}

/* AUTH when the route has a user; the credentials exist only in here. */
static int
session_auth(struct smtp_client *c, struct smtp_outcome *o)
{
	struct auth_proto proto = {
		.ctx = c, .service = "smtp", .hostname = c->route->smarthost,
		.initial_response = true, .initial_max = AUTH_INITIAL_MAX,
		.start = smtp_auth_start, .respond = smtp_auth_respond, .next = smtp_auth_next,
	};
	struct auth_credentials cred;
	struct auth_result res;
	struct err err;
	int rc = -1;

	if (c->route->user == NULL)
		return 0;
	/* With login-before-smtp the login is the credential: AUTH only when offered. */
	if (c->route->login.proto != LOGIN_NONE && c->info.caps.auth[0] == '\0')
		return 0;
	if (auth_credentials_load(c->route, &cred, &err) == -1) {
		setup_fail(o, STEP_AUTH, "%s", err.msg);
		goto done;
	}
	if (c->info.caps.auth[0] == '\0') {
		setup_fail(o, STEP_AUTH, "the gateway offers no AUTH but the route has user = %s",
		    c->route->user);
		goto done;
	}
	memset(&res, 0, sizeof res);
	rc = auth_client_run(c->route, &cred, c->info.caps.auth, netio_tls(c->conn), &proto,
	    &res, c->trace, &err);
	if (rc == 0)
		strlcopy(c->info.auth_mech, res.mech, sizeof c->info.auth_mech);
	else
		auth_fail(o, rc, &res, &err);
done:
	auth_credentials_wipe(&cred);
	return rc == 0 ? 0 : -1;
}

int
smtp_client_open(const struct config *cfg, const struct route *route,
    const struct netio_trace *trace, struct smtp_client **out, struct smtp_outcome *o,
    struct smtp_client_info *info)
{
	struct smtp_client *c = xcalloc(1, sizeof *c);

	c->cfg = cfg;
	c->route = route;
	c->trace = trace;
	*out = NULL;
	if (session_connect(c, o) == -1 || session_greeting(c, o) == -1 ||
	    session_ehlo(c, o) == -1 || session_starttls(c, o) == -1 ||
	    session_auth(c, o) == -1) {
		if (info != NULL)
			*info = c->info;
		smtp_client_close(c);
		return -1;
	}
	if (info != NULL)
		*info = c->info;
	*out = c;
	return 0;
}

const struct smtp_client_info *
smtp_client_info(const struct smtp_client *c)
{
	return &c->info;
}

/* --- one message ---------------------------------------------------------- */

enum rcpt_state {
	RCPT_PENDING,                  /* no answer yet */
	RCPT_ACCEPTED,                 /* 2xx to RCPT: waits for the end of data */
	RCPT_ANSWERED,                 /* refused by the gateway: outcome final */
	RCPT_SKIPPED,                  /* never sent (bad address): outcome final */
};

struct tx {
	struct smtp_client *c;
	const struct smtp_message *msg;
	struct smtp_outcome *rcpt;     /* the caller's, one per recipient */
	unsigned char *state;          /* enum rcpt_state per recipient */
	size_t refused, relay_denied;  /* RCPT refusals, and those speaking of relaying */
};

#define IN(s) (1u << (s))
#define OPEN (IN(RCPT_PENDING) | IN(RCPT_ACCEPTED))

/* Every recipient in one of the states of `which` gets this outcome. */
static void
tx_settle(struct tx *tx, unsigned which, enum delivery_status status, enum delivery_step step,
    bool route_level, const char *text)
{
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (which & IN(tx->state[i])) {
			outcome_set(&tx->rcpt[i], status, step, route_level, "%s", text);
			tx->state[i] = RCPT_ANSWERED;
		}
}

/* Is any recipient in this state? */
static bool
tx_any(const struct tx *tx, enum rcpt_state state)
{
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (tx->state[i] == state)
			return true;
	return false;
}

/* The session broke: whoever has no final answer is deferred.  -1. */
static int
tx_io_fail(struct tx *tx, enum delivery_step step, const char *why)
{
	tx->c->broken = true;
	tx_settle(tx, OPEN, DELIVERY_DEFERRED, step, false, why);
	return -1;
}

/* RSET before a transaction when one came before.  -1: the session broke. */
static int
tx_rset_first(struct tx *tx)
{
	struct smtp_reply r;
	struct err err;
	char sum[512];

	if (!tx->c->need_rset)
		return 0;
	if (command(tx->c, "RSET", &r, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	if (r.code / 100 != 2)
		return tx_io_fail(tx, STEP_MAIL, smtp_reply_summary(&r, sum, sizeof sum));
	tx->c->need_rset = false;
	return 0;
}

/* Checks before anything is sent: what the gateway cannot take, fail now
 * (never mangle the message).  0, or -1 with the reason in why. */
static int
tx_check(const struct tx *tx, char *why, size_t size)
{
	const struct smtp_caps *caps = &tx->c->info.caps;
	const struct smtp_message *m = tx->msg;

	if (caps->has_size && caps->size > 0 && m->size > caps->size)
		snprintf(why, size, "message of %llu octets exceeds the gateway's SIZE limit %llu",
		    (unsigned long long)m->size, (unsigned long long)caps->size);
	else if (m->eight_bit && !caps->eightbitmime)
		snprintf(why, size, "message needs 8BITMIME, which the gateway does not offer");
	else if (m->smtputf8 && !caps->smtputf8)
		snprintf(why, size, "message needs SMTPUTF8, which the gateway does not offer");
	else if (!address_sendable(m->envelope_from) || strlen(m->envelope_from) > 512)
		snprintf(why, size, "the envelope sender is not a sendable address");
	else
		return 0;
	return -1;
}

/* Recipients we will not send (control characters, absurd length). */
static void
tx_skip_bad_rcpts(struct tx *tx)
{
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (!address_sendable(tx->msg->rcpts[i]) || strlen(tx->msg->rcpts[i]) > 512) {
			outcome_set(&tx->rcpt[i], DELIVERY_FAILED, STEP_RCPT, false,
			    "the recipient is not a sendable address; not sent");
			tx->state[i] = RCPT_SKIPPED;
		}
}

static int
send_mail(struct tx *tx, struct err *err)
{
	const struct smtp_caps *caps = &tx->c->info.caps;
	const struct smtp_message *m = tx->msg;
	char line[CMD_MAX], size[40] = "", dsn[160] = "";

	if (caps->has_size)
		snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)m->size);
	if (caps->dsn)
		snprintf(dsn, sizeof dsn, "%s%s%s%s", m->ret ? " RET=" : "", m->ret ? m->ret : "",
		    m->envid ? " ENVID=" : "", m->envid ? m->envid : "");
	snprintf(line, sizeof line, "MAIL FROM:<%s>%s%s%s%s", m->envelope_from, size,
	    m->eight_bit ? " BODY=8BITMIME" : "", m->smtputf8 ? " SMTPUTF8" : "", dsn);
	return send_line(tx->c, line, NULL, err);
}

/* RCPT with NOTIFY and ORCPT when the gateway offers DSN (RFC 3461 §4):
 * from there on the gateway sends the notifications asked for. */
static int
send_rcpt(struct tx *tx, size_t i, struct err *err)
{
	const struct smtp_message *m = tx->msg;
	const char *notify = m->notify ? m->notify[i] : NULL, *orcpt = m->orcpt ? m->orcpt[i] : NULL;
	bool dsn = tx->c->info.caps.dsn;
	char line[CMD_MAX];

	snprintf(line, sizeof line, "RCPT TO:<%s>%s%s%s%s", m->rcpts[i],
	    dsn && notify ? " NOTIFY=" : "", dsn && notify ? notify : "",
	    dsn && orcpt ? " ORCPT=" : "", dsn && orcpt ? orcpt : "");
	return send_line(tx->c, line, NULL, err);
}

/* MAIL refused: it speaks for every recipient.  A refusal that is about
 * the route (relaying, authentication) is deferred, never a bounce. */
static void
tx_mail_refused(struct tx *tx, const struct smtp_reply *r)
{
	bool route = means_auth_trouble(r) || smtp_reply_means_relay_denied(r);
	char sum[512];

	smtp_reply_summary(r, sum, sizeof sum);
	tx_settle(tx, OPEN | IN(RCPT_ANSWERED), route ? DELIVERY_DEFERRED : status_of(r),
	    STEP_MAIL, route, sum);
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (tx->rcpt[i].step == STEP_MAIL)
			tx->rcpt[i].relay_denied = smtp_reply_means_relay_denied(r);
}

static void
tx_rcpt_reply(struct tx *tx, size_t i, const struct smtp_reply *r)
{
	bool auth = means_auth_trouble(r);

	smtp_reply_summary(r, tx->rcpt[i].reply, sizeof tx->rcpt[i].reply);
	tx->rcpt[i].step = STEP_RCPT;
	tx->rcpt[i].route_level = auth;
	if (r->code / 100 == 2) {
		tx->rcpt[i].status = DELIVERY_SENT;     /* so far: until the end of data */
		tx->state[i] = RCPT_ACCEPTED;
		return;
	}
	tx->rcpt[i].status = auth ? DELIVERY_DEFERRED : status_of(r);
	tx->state[i] = RCPT_ANSWERED;
	tx->refused++;
	tx->relay_denied += smtp_reply_means_relay_denied(r);
}

/* Every recipient refused for relaying: the route is at fault (PRODUCT.md
 * §3): deferred, never bounced. */
static void
tx_relay_rule(struct tx *tx)
{
	if (tx->refused == 0 || tx->relay_denied != tx->refused || tx_any(tx, RCPT_ACCEPTED))
		return;
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (tx->state[i] == RCPT_ANSWERED && tx->rcpt[i].step == STEP_RCPT) {
			tx->rcpt[i].status = DELIVERY_DEFERRED;
			tx->rcpt[i].route_level = true;
			tx->rcpt[i].relay_denied = true;
		}
}

/* End the transaction without a message: RSET.  0, or -1 when even that
 * fails (the session is then unusable; every outcome is already final). */
static int
tx_abort(struct tx *tx)
{
	struct smtp_reply r;
	struct err err;

	if (command(tx->c, "RSET", &r, &err) == -1 || r.code / 100 != 2) {
		tx->c->broken = true;
		return -1;
	}
	tx->c->need_rset = false;
	return 0;
}

/* --- the body ------------------------------------------------------------- */

/* Line-end normalisation and dot-stuffing across chunk boundaries. */
struct stuffer {
	bool line_start;               /* the next octet starts a line */
	bool cr;                       /* a CR was seen and not yet written */
};

static size_t
stuff_newline(struct stuffer *st, char *out)
{
	out[0] = '\r';
	out[1] = '\n';
	st->line_start = true;
	st->cr = false;
	return 2;
}

/* in[0..n) to out (room for 2 * n octets): CRLF, bare CR and bare LF all
 * become CRLF; a '.' starting a line is doubled (RFC 5321 §4.5.2). */
static size_t
stuff(struct stuffer *st, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = in[i];

		if (ch == '\n') {
			o += stuff_newline(st, out + o);
			continue;
		}
		if (st->cr)
			o += stuff_newline(st, out + o);
		if (ch == '\r') {
			st->cr = true;
			continue;
		}
		if (st->line_start && ch == '.')
			out[o++] = '.';
		out[o++] = ch;
		st->line_start = false;
	}
	return o;
}

/* The end: a CRLF unless the body ended with one, then ".\r\n" (at most 5). */
static size_t
stuff_end(struct stuffer *st, char *out)
{
	size_t o = 0;

	if (st->cr || !st->line_start)
		o += stuff_newline(st, out);
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* Read the content in chunks; each chunk is written and flushed once the
 * next read shows it is not the last, and the last goes out together with
 * the final "." in one flush (no lone small packet for Nagle and delayed
 * ACK to hold back).  -1 with err (the gateway, or the content file: then
 * no "." is sent and closing the connection aborts the transaction). */
/* Up to BODY_CHUNK octets of what is sent, from `off` on: the rewritten
 * header (if any), then the stored content from its body on. */
static ssize_t
read_message(const struct smtp_message *m, char *buf, off_t off)
{
	size_t head_len = m->head != NULL ? m->head_len : 0;
	uint64_t skip = m->head != NULL ? m->body_offset : 0;

	if ((uint64_t)off < head_len) {
		size_t n = head_len - (size_t)off < BODY_CHUNK ? head_len - (size_t)off : BODY_CHUNK;

		memcpy(buf, m->head + off, n);
		return (ssize_t)n;
	}
	return pread(m->content_fd, buf, BODY_CHUNK, (off_t)(off - (off_t)head_len + (off_t)skip));
}

static int
send_body(struct tx *tx, struct err *err)
{
	char *in = xmalloc(BODY_CHUNK), *out = xmalloc(2 * BODY_CHUNK + 8);
	struct stuffer st = { .line_start = true, .cr = false };
	ssize_t n = read_message(tx->msg, in, 0);
	off_t off = 0;
	int rc = -1;

	for (;;) {
		size_t len;

		if (n < 0) {
			err_sys(err, "cannot read the stored message");
			goto done;
		}
		len = stuff(&st, in, (size_t)n, out);
		off += n;
		n = n == 0 ? 0 : read_message(tx->msg, in, off);
		if (n == 0)
			len += stuff_end(&st, out + len);
		if (netio_write(tx->c->conn, out, len, err) == -1 || flush(tx->c, err) == -1)
			goto done;
		if (n == 0)
			break;
	}
	trace_say(tx->c, "C: (%lld octets of message) .", (long long)off);
	rc = 0;
done:
	free(in);
	free(out);
	return rc;
}

/* After DATA's 354: the body, the final ".", and its reply. */
static int
tx_body(struct tx *tx)
{
	static const char lost[] = "connection lost after end of data: the message may "
	    "have been delivered (possible duplicate)";
	struct smtp_reply r;
	struct err err;
	char sum[512];

	if (send_body(tx, &err) == -1) {
		tx->c->broken = true;
		tx_settle(tx, OPEN, DELIVERY_DEFERRED, STEP_DATA, false, err.msg);
		return -1;
	}
	if (read_reply(tx->c, &r, &err) == -1) {
		if (r.bad)
			snprintf(sum, sizeof sum, "%.400s; the message may have been delivered "
			    "(possible duplicate)", err.msg);
		else
			snprintf(sum, sizeof sum, "%s; %.300s", lost, err.msg);
		tx->c->broken = true;
		tx_settle(tx, OPEN, DELIVERY_DEFERRED, STEP_END_OF_DATA, false, sum);
		return -1;
	}
	smtp_reply_summary(&r, sum, sizeof sum);
	tx_settle(tx, IN(RCPT_ACCEPTED), status_of(&r), STEP_END_OF_DATA, false, sum);
	return 0;
}

/* What follows DATA's reply, pipelined or not. */
static int
tx_after_data_reply(struct tx *tx, const struct smtp_reply *data)
{
	struct smtp_reply r;
	struct err err;
	char sum[512];

	if (!tx_any(tx, RCPT_ACCEPTED)) {
		/* RFC 2920 §3.1: a pipelined DATA accepted without recipients
		 * gets a lone "." (an empty message to nobody), then RSET. */
		if (data->code == 354 && (send_line(tx->c, ".", NULL, &err) == -1 ||
		    flush(tx->c, &err) == -1 || read_reply(tx->c, &r, &err) == -1)) {
			tx->c->broken = true;
			return -1;
		}
		return tx_abort(tx);
	}
	if (data->code != 354) {
		smtp_reply_summary(data, sum, sizeof sum);
		tx_settle(tx, IN(RCPT_ACCEPTED), status_of(data) == DELIVERY_FAILED ?
		    DELIVERY_FAILED : DELIVERY_DEFERRED, STEP_DATA, false, sum);
		return tx_abort(tx);
	}
	return tx_body(tx);
}

/* The group's replies stopped: a refused MAIL (a 421 before hanging up)
 * still speaks for every recipient. */
static int
tx_pipeline_broke(struct tx *tx, const struct smtp_reply *mail, enum delivery_step step,
    const char *why)
{
	if (mail->code != 0 && mail->code / 100 != 2)
		tx_mail_refused(tx, mail);
	return tx_io_fail(tx, step, why);
}

/* RFC 2920: [RSET] MAIL, every RCPT and DATA in one write; then the replies
 * in order. */
static int
tx_pipelined(struct tx *tx)
{
	struct smtp_client *c = tx->c;
	const struct smtp_message *m = tx->msg;
	struct smtp_reply mail, r;
	bool rset = c->need_rset;
	struct err err;
	char sum[512];

	smtp_reply_init(&mail);
	if ((rset && send_line(c, "RSET", NULL, &err) == -1) || send_mail(tx, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	for (size_t i = 0; i < m->nrcpts; i++)
		if (tx->state[i] == RCPT_PENDING && send_rcpt(tx, i, &err) == -1)
			return tx_io_fail(tx, STEP_RCPT, err.msg);
	if (send_line(c, "DATA", NULL, &err) == -1 || flush(c, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	if (rset && read_reply(c, &r, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	if (rset && r.code / 100 != 2)      /* the rest of the group is out of step */
		return tx_io_fail(tx, STEP_MAIL, smtp_reply_summary(&r, sum, sizeof sum));
	c->need_rset = true;
	if (read_reply(c, &mail, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (tx->state[i] != RCPT_PENDING)
			continue;
		if (read_reply(c, &r, &err) == -1)
			return tx_pipeline_broke(tx, &mail, STEP_RCPT, err.msg);
		tx_rcpt_reply(tx, i, &r);
	}
	if (read_reply(c, &r, &err) == -1)
		return tx_pipeline_broke(tx, &mail, STEP_DATA, err.msg);
	if (mail.code / 100 != 2)
		tx_mail_refused(tx, &mail);
	else
		tx_relay_rule(tx);
	return tx_after_data_reply(tx, &r);
}

/* Without PIPELINING: one command, one reply. */
static int
tx_stepwise(struct tx *tx)
{
	struct smtp_client *c = tx->c;
	struct smtp_reply r;
	struct err err;
	char line[CMD_MAX];

	if (tx_rset_first(tx) == -1)
		return -1;
	c->need_rset = true;
	if (send_mail(tx, &err) == -1 || flush(c, &err) == -1 || read_reply(c, &r, &err) == -1)
		return tx_io_fail(tx, STEP_MAIL, err.msg);
	if (r.code / 100 != 2) {
		tx_mail_refused(tx, &r);
		return tx_abort(tx);
	}
	for (size_t i = 0; i < tx->msg->nrcpts; i++) {
		if (tx->state[i] != RCPT_PENDING)
			continue;
		snprintf(line, sizeof line, "RCPT TO:<%s>", tx->msg->rcpts[i]);
		if (command(c, line, &r, &err) == -1)
			return tx_io_fail(tx, STEP_RCPT, err.msg);
		tx_rcpt_reply(tx, i, &r);
	}
	tx_relay_rule(tx);
	if (!tx_any(tx, RCPT_ACCEPTED))
		return tx_abort(tx);
	if (command(c, "DATA", &r, &err) == -1)
		return tx_io_fail(tx, STEP_DATA, err.msg);
	return tx_after_data_reply(tx, &r);
}

/* The message as a whole (PRODUCT.md §3): deferred while any recipient is,
 * else failed when any failed, else sent; its words are those of the first
 * recipient with that status. */
static void
tx_summarise(const struct tx *tx, struct smtp_outcome *msg)
{
	enum delivery_status s = DELIVERY_SENT;

	for (size_t i = 0; i < tx->msg->nrcpts; i++) {
		if (tx->rcpt[i].status == DELIVERY_DEFERRED)
			s = DELIVERY_DEFERRED;
		else if (tx->rcpt[i].status == DELIVERY_FAILED && s == DELIVERY_SENT)
			s = DELIVERY_FAILED;
	}
	for (size_t i = 0; i < tx->msg->nrcpts; i++)
		if (tx->rcpt[i].status == s) {
			*msg = tx->rcpt[i];
			return;
		}
}

int
smtp_client_send(struct smtp_client *c, const struct smtp_message *m,
    struct smtp_outcome *rcpt, struct smtp_outcome *msg)
{
	struct tx tx = { .c = c, .msg = m, .rcpt = rcpt };
	char why[300];
	int rc = 0;

	outcome_set(msg, DELIVERY_FAILED, STEP_MAIL, false, "no recipients");
	if (m->nrcpts == 0)
		return 0;
	tx.state = xcalloc(m->nrcpts, 1);
	for (size_t i = 0; i < m->nrcpts; i++)
		outcome_set(&rcpt[i], DELIVERY_DEFERRED, STEP_MAIL, false, "not attempted");
	if (c->broken) {
		tx_settle(&tx, OPEN, DELIVERY_DEFERRED, STEP_MAIL, false,
		    "the session to the gateway is no longer usable");
		rc = -1;
	} else if (tx_check(&tx, why, sizeof why) == -1) {
		tx_settle(&tx, OPEN, DELIVERY_FAILED, STEP_MAIL, false, why);
	} else {
		tx_skip_bad_rcpts(&tx);
		if (tx_any(&tx, RCPT_PENDING))
			rc = c->info.caps.pipelining ? tx_pipelined(&tx) : tx_stepwise(&tx);
	}
	tx_summarise(&tx, msg);
	free(tx.state);
	return rc;
}

void
smtp_client_close(struct smtp_client *c)
{
	struct smtp_reply r;
	struct err err;

	if (c == NULL)
		return;
	if (c->conn != NULL && !c->broken && send_line(c, "QUIT", NULL, &err) == 0 &&
	    netio_flush(c->conn, QUIT_TIMEOUT_MS, &err) == 0) {
		smtp_reply_init(&r);
		(void)read_reply_until(c, &r, now_ms() + QUIT_TIMEOUT_MS, &err);
	}
	netio_close(c->conn);
	free(c);
}
