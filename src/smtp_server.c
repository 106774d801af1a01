/* smtp_server.c - the SMTP server session: RFC 5321 §3-§4 server side with
 * PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
 * (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034, 3463) and DSN (RFC 3461: its
 * parameters are kept in the envelope; dsn.c builds the notifications).
 *
 * SECURITY: every byte read here is untrusted.  Lines are framed before they
 * are parsed: only CRLF ends a line; a bare LF in a command is an error, and
 * in DATA a bare LF or bare CR anywhere taints the message, which is then
 * refused after the real end (CRLF.CRLF), so no "\n.\n"-style sequence can end
 * a message early or smuggle a second one (SEC Consult, Dec 2023).  Lines are
 * at most SMTP_LINE_MAX octets; longer input is discarded while it arrives,
 * never buffered.
 *
 * The session is I/O-agnostic (see smtp_server.h); this file also holds the
 * blocking stdin/stdout driver for `sendmail -bs`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "control.h"
#include "log.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "util.h"

#define MAX_ERRORS     20          /* then 421 and close, like Postfix's hard limit */
#define OUTPUT_HIGH    (64 * 1024) /* stop reading commands while replies pile up */

enum smtp_state {
	STATE_FRESH,        /* greeted, no HELO/EHLO yet */
	STATE_READY,        /* HELO/EHLO done, no transaction */
	STATE_MAIL,         /* MAIL accepted */
	STATE_RCPT,         /* at least one RCPT accepted */
	STATE_DATA,         /* reading the message */
	STATE_COMMITTING,   /* waiting for the driver to make it durable */
	STATE_CLOSED,       /* QUIT, fatal error or timeout: nothing more is read */
	STATE_COUNT
};

static const char *const state_names[STATE_COUNT] = {
	"fresh", "ready", "mail", "rcpt", "data", "committing", "closed",
};

/* Why a message read in DATA is refused after its end. */
enum data_fault { DATA_OK, DATA_BARE_EOL, DATA_LONG_LINE, DATA_TOO_BIG, DATA_STORE_ERROR };

/* One accepted RCPT with its DSN parameters (RFC 3461 §4.1-§4.2). */
struct tx_rcpt {
	char *address;
	unsigned notify;            /* DSN_NOTIFY_* bits; 0 = not given */
	char *orcpt;                /* as received; NULL = not given */
};

/* One transaction: MAIL to the end of DATA (or RSET). */
struct smtp_tx {
	char sender[SMTP_PATH_MAX + 1];
	enum smtp_body body;
	bool smtputf8;
	enum dsn_ret ret;           /* MAIL RET= */
	char envid[DSN_ENVID_MAX + 1];  /* MAIL ENVID=, as received; "" = none */
	struct tx_rcpt *rcpts;
	size_t nrcpts, rcpts_cap;
	char id[ENVELOPE_ID_MAX + 1];
	bool begun;                 /* store->begin succeeded */
	uint64_t size;              /* message octets as received (unstuffed) */
	enum data_fault fault;
	bool line_start;            /* the previous data line ended with CRLF */
	bool discarding;            /* inside an overlong data line */
};

struct smtp_session {
	const struct config *cfg;
	struct smtp_peer peer;
	struct smtp_store store;
	struct evbuffer *out;
	enum smtp_state state;
	bool esmtp;
	char helo[SMTP_LINE_MAX];
	unsigned errors;
	bool discarding_command;    /* inside an overlong command line */
	bool shutting_down;
	struct smtp_tx tx;
};

static void
session_enter(struct smtp_session *s, enum smtp_state to)
{
	log_debug("smtp %s: %s -> %s", s->peer.addr, state_names[s->state], state_names[to]);
	s->state = to;
}

static void
reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	evbuffer_add(s->out, "\r\n", 2);
}

/* A reply to a client mistake: counted, and too many of them end the session
 * (pipelined junk must not keep a connection busy forever). */
static void
reply_error(struct smtp_session *s, const char *line)
{
	reply(s, "%s", line);
	if (++s->errors >= MAX_ERRORS) {
		reply(s, "421 4.7.0 %s Error: too many errors", s->cfg->hostname);
		log_info("smtp %s: disconnect reason=too-many-errors", s->peer.addr);
		session_enter(s, STATE_CLOSED);
	}
}

static void
tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;

	if (tx->begun)
		s->store.abort(s->store.ctx);
	for (size_t i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].address);
		free(tx->rcpts[i].orcpt);
	}
	free(tx->rcpts);
	memset(tx, 0, sizeof *tx);
}

struct smtp_session *
smtp_session_new(const struct config *cfg, const struct smtp_peer *peer,
    const struct smtp_store *store, struct evbuffer *out)
{
	struct smtp_session *s = xcalloc(1, sizeof *s);

	s->cfg = cfg;
	s->peer = *peer;
	s->store = *store;
	s->out = out;
	s->state = STATE_FRESH;
	return s;
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	tx_reset(s);
	free(s);
}

void
smtp_session_greet(struct smtp_session *s)
{
	reply(s, "220 %s ESMTP mailredir", s->cfg->hostname);
}

bool
smtp_session_in_data(const struct smtp_session *s)
{
	return s->state == STATE_DATA;
}

bool
smtp_session_committing(const struct smtp_session *s)
{
	return s->state == STATE_COMMITTING;
}

void
smtp_session_timeout(struct smtp_session *s)
{
	if (s->state == STATE_CLOSED)
		return;
	reply(s, "421 4.4.2 %s Error: timeout exceeded", s->cfg->hostname);
	log_info("smtp %s: disconnect reason=timeout state=%s", s->peer.addr, state_names[s->state]);
	tx_reset(s);
	session_enter(s, STATE_CLOSED);
}

static void
say_shutting_down(struct smtp_session *s)
{
	reply(s, "421 4.3.2 %s Service shutting down, try again later", s->cfg->hostname);
	session_enter(s, STATE_CLOSED);
}

bool
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutting_down = true;
	if (s->state == STATE_FRESH || s->state == STATE_READY) {
		say_shutting_down(s);
		return true;
	}
	if (s->state == STATE_CLOSED)
		return true;
	return false;
}

/* --- commands ----------------------------------------------------------- */

enum rule_flag {
	RULE_NEEDS_HELO = 1 << 0,   /* 503 before HELO/EHLO */
	RULE_NEEDS_MAIL = 1 << 1,   /* 503 outside a transaction */
	RULE_NEEDS_RCPT = 1 << 2,   /* 503 before the first accepted RCPT */
	RULE_NO_TX      = 1 << 3,   /* 503 inside a transaction (nested MAIL) */
};

static void
server_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	size_t n = cmd->arg_len < sizeof s->helo - 1 ? cmd->arg_len : sizeof s->helo - 1;

	tx_reset(s);
	memcpy(s->helo, cmd->arg, n);
	s->helo[n] = '\0';
	s->esmtp = cmd->verb == SMTP_EHLO;
	session_enter(s, STATE_READY);
	if (!s->esmtp) {
		reply(s, "250 %s", s->cfg->hostname);
		return;
	}
	reply(s, "250-%s Hello %s [%s]", s->cfg->hostname, s->peer.name, s->peer.addr);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)s->cfg->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-DSN");
	reply(s, "250 HELP");
}

static void
server_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->shutting_down) {
		say_shutting_down(s);
		return;
	}
	if (cmd->has_size && cmd->size > s->cfg->max_message_size) {
		reply_error(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	tx_reset(s);
	strlcopy(s->tx.sender, cmd->path, sizeof s->tx.sender);
	s->tx.body = cmd->body;
	s->tx.smtputf8 = cmd->smtputf8;
	s->tx.ret = cmd->ret;
	strlcopy(s->tx.envid, cmd->envid, sizeof s->tx.envid);
	session_enter(s, STATE_MAIL);
	reply(s, "250 2.1.0 Ok");
}

static bool
has_8bit(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return true;
	return false;
}

static void
server_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_tx *tx = &s->tx;

	/* The parser accepts UTF-8 in RCPT; only MAIL's SMTPUTF8 allows it. */
	if (!tx->smtputf8 && has_8bit(cmd->path)) {
		reply_error(s, "553 5.6.7 Error: non-ASCII address needs MAIL ... SMTPUTF8");
		return;
	}
	if (tx->nrcpts >= s->cfg->max_recipients) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	tx->rcpts = xgrow(tx->rcpts, &tx->rcpts_cap, tx->nrcpts, sizeof *tx->rcpts);
	tx->rcpts[tx->nrcpts++] = (struct tx_rcpt){ xstrdup(cmd->path), cmd->notify,
	    cmd->orcpt[0] != '\0' ? xstrdup(cmd->orcpt) : NULL };
	session_enter(s, STATE_RCPT);
	reply(s, "250 2.1.5 Ok");
}

/* Keep what goes into our own header printable and on one line. */
static void
sanitize(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; *src && i + 1 < size; src++)
		dst[i++] = (*src > ' ' && *src < 0x7f) ? *src : '?';
	dst[i] = '\0';
}

/* RFC 5321 §4.4 trace line, first in the stored content. */
static int
write_received(struct smtp_session *s, struct err *err)
{
	char helo[256], date[UTIL_RFC5322_DATE_MAX], *line;
	const char *proto = s->esmtp ? "ESMTP" : "SMTP";
	int rc;

	sanitize(helo, sizeof helo, s->helo);
	format_rfc5322_date(time(NULL), date, sizeof date);
	if (s->tx.smtputf8)
		proto = "UTF8SMTP";
	if (s->tx.nrcpts == 1 && !has_8bit(s->tx.rcpts[0].address))
		line = xasprintf("Received: from %s (%s [%s])\r\n\tby %s (mailredir) with %s id %s\r\n"
		    "\tfor <%s>; %s\r\n", helo, s->peer.name, s->peer.addr, s->cfg->hostname,
		    proto, s->tx.id, s->tx.rcpts[0].address, date);
	else
		line = xasprintf("Received: from %s (%s [%s])\r\n\tby %s (mailredir) with %s id %s;"
		    "\r\n\t%s\r\n", helo, s->peer.name, s->peer.addr, s->cfg->hostname,
		    proto, s->tx.id, date);
	rc = s->store.write(s->store.ctx, line, strlen(line), err);
	free(line);
	return rc;
}

static void
server_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct err err;

	(void)cmd;
	if (s->store.begin(s->store.ctx, s->tx.id, &err) < 0)
		goto fail;
	s->tx.begun = true;
	if (write_received(s, &err) < 0)
		goto fail;
	s->tx.line_start = true;
	session_enter(s, STATE_DATA);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return;
fail:
	log_err("smtp %s: cannot store a message: %s", s->peer.addr, err.msg);
	tx_reset(s);
	session_enter(s, STATE_READY);
	reply(s, "451 4.3.0 Error: cannot store the message now, try again later");
}

static void
server_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	tx_reset(s);
	if (s->state != STATE_FRESH)
		session_enter(s, STATE_READY);
	reply(s, "250 2.0.0 Ok");
}

static void
server_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "250 2.0.0 Ok");
}

static void
server_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "221 2.0.0 Bye");
	tx_reset(s);
	session_enter(s, STATE_CLOSED);
}

static void
server_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
server_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT; see mailredir(8)");
}

static void
server_not_implemented(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	reply_error(s, "502 5.5.1 Error: command not implemented");
}

static const struct verb_rule {
	enum smtp_verb verb;
	void (*handle)(struct smtp_session *, const struct smtp_cmd *);
	unsigned flags;
} verb_rules[] = {
	{ SMTP_HELO,     server_helo,            0 },
	{ SMTP_EHLO,     server_helo,            0 },
	{ SMTP_MAIL,     server_mail,            RULE_NEEDS_HELO | RULE_NO_TX },
	{ SMTP_RCPT,     server_rcpt,            RULE_NEEDS_HELO | RULE_NEEDS_MAIL },
	{ SMTP_DATA,     server_data,            RULE_NEEDS_HELO | RULE_NEEDS_MAIL | RULE_NEEDS_RCPT },
	{ SMTP_RSET,     server_rset,            0 },
	{ SMTP_NOOP,     server_noop,            0 },
	{ SMTP_QUIT,     server_quit,            0 },
	{ SMTP_VRFY,     server_vrfy,            0 },
	{ SMTP_EXPN,     server_not_implemented, 0 },
	{ SMTP_HELP,     server_help,            0 },
	{ SMTP_STARTTLS, server_not_implemented, 0 },
	{ SMTP_AUTH,     server_not_implemented, 0 },
	{ SMTP_BDAT,     server_not_implemented, 0 },
};

/* The RFC 5321 §4.3.1 sequence rules; a reply and false when violated. */
static bool
sequence_allows(struct smtp_session *s, unsigned flags)
{
	bool in_tx = s->state == STATE_MAIL || s->state == STATE_RCPT;

	if ((flags & RULE_NEEDS_HELO) && s->state == STATE_FRESH)
		reply_error(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if ((flags & RULE_NO_TX) && in_tx)
		reply_error(s, "503 5.5.1 Error: nested MAIL command");
	else if ((flags & RULE_NEEDS_MAIL) && !in_tx)
		reply_error(s, "503 5.5.1 Error: need MAIL command");
	else if ((flags & RULE_NEEDS_RCPT) && s->state != STATE_RCPT)
		reply_error(s, "503 5.5.1 Error: need RCPT command");
	else
		return true;
	return false;
}

static void
handle_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	enum smtp_parse_result r = smtp_parse_command(line, len, &cmd);

	if (r != SMTP_PARSE_OK) {
		reply_error(s, smtp_parse_error_reply(r, &cmd));
		return;
	}
	for (size_t i = 0; i < sizeof verb_rules / sizeof verb_rules[0]; i++) {
		if (verb_rules[i].verb != cmd.verb)
			continue;
		if (sequence_allows(s, verb_rules[i].flags))
			verb_rules[i].handle(s, &cmd);
		return;
	}
	reply_error(s, "500 5.5.1 Error: command not recognized");
}

/* Frame one command line.  Returns false when no complete line is there. */
static bool
next_command(struct smtp_session *s, struct evbuffer *in)
{
	char line[SMTP_LINE_MAX + 1];
	size_t eol_len, len;
	struct evbuffer_ptr lf = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (lf.pos < 0) {
		size_t have = evbuffer_get_length(in);

		/* No line end yet: refuse to buffer past the limit. */
		if (have >= SMTP_LINE_MAX) {
			evbuffer_drain(in, have - 1);
			s->discarding_command = true;
		}
		return false;
	}
	len = (size_t)lf.pos;
	if (s->discarding_command || len + 1 > SMTP_LINE_MAX) {
		evbuffer_drain(in, len + 1);
		s->discarding_command = false;
		reply_error(s, "500 5.5.2 Error: line too long");
		return true;
	}
	evbuffer_remove(in, line, len + 1);
	if (len == 0 || line[len - 1] != '\r') {
		reply_error(s, "500 5.5.2 Error: bare LF in command (lines end with CRLF)");
		return true;
	}
	handle_command(s, line, len - 1);
	return true;
}

/* --- DATA --------------------------------------------------------------- */

static void
data_store(struct smtp_session *s, const char *buf, size_t len)
{
	struct smtp_tx *tx = &s->tx;
	struct err err;

	if (tx->fault != DATA_OK)
		return;
	if (tx->size + len > s->cfg->max_message_size) {
		tx->fault = DATA_TOO_BIG;
		return;
	}
	tx->size += len;
	if (s->store.write(s->store.ctx, buf, len, &err) < 0) {
		log_err("smtp %s: %s: cannot store: %s", s->peer.addr, tx->id, err.msg);
		tx->fault = DATA_STORE_ERROR;
	}
}

static void
data_end(struct smtp_session *s)
{
	static const char *const refusals[] = {
		[DATA_BARE_EOL] = "550 5.6.0 Message rejected: bare LF or bare CR in the message "
		    "text (only CRLF ends a line)",
		[DATA_LONG_LINE] = "550 5.6.0 Message rejected: a line is longer than 1000 octets",
		[DATA_TOO_BIG] = "552 5.3.4 Message size exceeds fixed limit",
		[DATA_STORE_ERROR] = "451 4.3.0 Error: cannot store the message now, try again later",
	};
	struct smtp_tx *tx = &s->tx;
	struct envelope env;

	if (tx->fault != DATA_OK) {
		enum data_fault fault = tx->fault;

		log_info("smtp %s: %s: rejected from=<%s> reason=\"%s\"", s->peer.addr, tx->id,
		    tx->sender, refusals[fault] + 10);
		tx_reset(s);
		session_enter(s, STATE_READY);
		if (fault == DATA_STORE_ERROR)
			reply(s, "%s", refusals[fault]);
		else
			reply_error(s, refusals[fault]);
		return;
	}
	envelope_init(&env);
	strlcopy(env.id, tx->id, sizeof env.id);
	env.sender = xstrdup(tx->sender);
	env.origin = s->peer.local ? ORIGIN_SENDMAIL : ORIGIN_SMTP;
	env.client_addr = xstrdup(s->peer.addr);
	env.client_name = xstrdup(s->peer.name);
	env.helo = xstrdup(s->helo);
	env.uid = s->peer.uid;
	env.created = time(NULL);
	env.body = tx->body == SMTP_BODY_8BITMIME ? BODY_8BITMIME : BODY_7BIT;
	env.smtputf8 = tx->smtputf8;
	env.ret = tx->ret;
	env.envid = tx->envid[0] != '\0' ? xstrdup(tx->envid) : NULL;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		struct envelope_rcpt *r = envelope_add_rcpt(&env, tx->rcpts[i].address);

		r->notify = tx->rcpts[i].notify;
		r->orcpt = tx->rcpts[i].orcpt != NULL ? xstrdup(tx->rcpts[i].orcpt) : NULL;
	}
	session_enter(s, STATE_COMMITTING);
	s->store.commit(s->store.ctx, &env);
	envelope_clear(&env);
}

void
smtp_session_committed(struct smtp_session *s, bool ok, const char *why)
{
	char queued[64];

	snprintf(queued, sizeof queued, "250 2.0.0 Ok: queued as %s", s->tx.id);
	if (ok)
		smtp_session_answer(s, queued, NULL);
	else
		smtp_session_answer(s, NULL, why);
}

void
smtp_session_answer(struct smtp_session *s, const char *verdict, const char *why)
{
	struct smtp_tx *tx = &s->tx;

	if (verdict != NULL) {
		log_info("%s: accepted client=%s[%s] from=<%s> nrcpt=%zu size=%llu%s%s%s", tx->id,
		    s->peer.name, s->peer.addr, tx->sender, tx->nrcpts,
		    (unsigned long long)tx->size, verdict[0] != '2' ? " reply=\"" : "",
		    verdict[0] != '2' ? verdict : "", verdict[0] != '2' ? "\"" : "");
		reply(s, "%s", verdict);
	} else {
		log_err("%s: not queued: %s", tx->id, why ? why : "unknown error");
		reply(s, "451 4.3.0 Error: cannot store the message now, try again later");
	}
	tx->begun = false;          /* the driver has stored or aborted it */
	tx_reset(s);
	session_enter(s, STATE_READY);
}

/* Look for bare CRs in one data line's octets (without its LF): a CR
 * anywhere but right before the LF. */
static void
data_check_line(struct smtp_tx *tx, const char *line, size_t len)
{
	if (len > 0 && memchr(line, '\r', len - 1) != NULL)
		tx->fault = DATA_BARE_EOL;
}

/* A text line may be 1000 octets with its CRLF (RFC 5321 §4.5.3.1.6); on the
 * wire it may carry one more, the dot added by dot-stuffing. */
#define DATA_WIRE_MAX (SMTP_LINE_MAX + 1)

static size_t
data_line_max(struct evbuffer *in, bool line_start)
{
	char first;

	if (line_start && evbuffer_copyout(in, &first, 1) == 1 && first == '.')
		return DATA_WIRE_MAX;
	return SMTP_LINE_MAX;
}

/* Read DATA lines.  Returns false when more input is needed. */
static bool
next_data_line(struct smtp_session *s, struct evbuffer *in)
{
	struct smtp_tx *tx = &s->tx;
	char line[DATA_WIRE_MAX + 1];
	size_t eol_len, len;
	bool crlf, was_line_start = tx->line_start;
	struct evbuffer_ptr lf = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (lf.pos < 0) {
		size_t have = evbuffer_get_length(in);

		/* An overlong line: look at it for bare CRs and drop it, but keep
		 * the last octet, which may be the CR of the CRLF to come. */
		if (have > DATA_WIRE_MAX) {
			size_t n = have - 1;
			unsigned char *p = evbuffer_pullup(in, (ssize_t)n);

			if (memchr(p, '\r', n) != NULL)
				tx->fault = DATA_BARE_EOL;
			else if (tx->fault == DATA_OK)
				tx->fault = DATA_LONG_LINE;
			evbuffer_drain(in, n);
			tx->discarding = true;
			tx->line_start = false;
		}
		return false;
	}
	len = (size_t)lf.pos;
	if (tx->discarding || len + 1 > data_line_max(in, was_line_start)) {
		unsigned char *p = evbuffer_pullup(in, (ssize_t)len + 1);

		data_check_line(tx, (const char *)p, len);
		if (tx->fault == DATA_OK)
			tx->fault = DATA_LONG_LINE;
		tx->line_start = len > 0 && p[len - 1] == '\r';
		if (!tx->line_start)
			tx->fault = DATA_BARE_EOL;
		evbuffer_drain(in, len + 1);
		tx->discarding = false;
		return true;
	}
	evbuffer_remove(in, line, len + 1);
	crlf = len > 0 && line[len - 1] == '\r';
	data_check_line(tx, line, len);
	if (!crlf)
		tx->fault = DATA_BARE_EOL;
	tx->line_start = crlf;
	/* Only CRLF "." CRLF ends the message: this line is "." + CRLF and the
	 * previous one ended with CRLF. */
	if (crlf && was_line_start && len == 2 && line[0] == '.') {
		data_end(s);
		return true;
	}
	if (!crlf)
		return true;        /* tainted; nothing more to store */
	if (was_line_start && line[0] == '.')
		data_store(s, line + 1, len);   /* dot-unstuffing, RFC 5321 §4.5.2 */
	else
		data_store(s, line, len + 1);
	return true;
}

enum smtp_session_status
smtp_session_input(struct smtp_session *s, struct evbuffer *in)
{
	for (;;) {
		if (s->state == STATE_CLOSED)
			return SMTP_SESSION_CLOSE;
		if (s->state == STATE_COMMITTING)
			return SMTP_SESSION_WAIT;
		if (s->shutting_down && (s->state == STATE_FRESH || s->state == STATE_READY)) {
			say_shutting_down(s);
			continue;
		}
		if (s->state != STATE_DATA && evbuffer_get_length(s->out) > OUTPUT_HIGH)
			return SMTP_SESSION_WAIT;
		if (s->state == STATE_DATA ? !next_data_line(s, in) : !next_command(s, in))
			return SMTP_SESSION_READ;
	}
}

/* --- sendmail -bs: blocking stdin/stdout driver ---------------------------- */

/* Store for -bs: the spool directly when writable, else the maildrop (the
 * message is gathered in memory and dropped as one file at commit). */
struct stdio_store {
	struct spool *spool;
	const struct config *cfg;
	struct spool_new *msg;         /* direct */
	struct evbuffer *content;      /* maildrop */
	struct smtp_session *session;
};

static int
stdio_begin(void *ctx, char *id, struct err *err)
{
	struct stdio_store *st = ctx;

	if (spool_writable(st->spool)) {
		if (spool_new_begin(st->spool, &st->msg, err) < 0)
			return -1;
		strlcopy(id, spool_new_id(st->msg), ENVELOPE_ID_MAX + 1);
		return 0;
	}
	st->content = evbuffer_new();
	spool_make_id(id);
	return 0;
}

static int
stdio_write(void *ctx, const void *buf, size_t len, struct err *err)
{
	struct stdio_store *st = ctx;

	if (st->msg != NULL)
		return spool_new_write(st->msg, buf, len, err);
	if (evbuffer_add(st->content, buf, len) < 0)
		return err_set(err, "out of memory");
	return 0;
}

static void
stdio_abort(void *ctx)
{
	struct stdio_store *st = ctx;

	if (st->msg != NULL) {
		spool_new_abort(st->msg);
		spool_new_free(st->msg);
		st->msg = NULL;
	}
	if (st->content != NULL) {
		evbuffer_free(st->content);
		st->content = NULL;
	}
}

static void
stdio_commit(void *ctx, struct envelope *env)
{
	struct stdio_store *st = ctx;
	struct err err = { "" };
	int rc;

	if (st->msg != NULL) {
		rc = spool_new_finish(st->msg, env, &err);
		if (rc == 0)
			rc = spool_commit_batch(st->spool, &st->msg, 1, NULL, &err);
		if (rc < 0)
			spool_new_abort(st->msg);
		else
			control_notify_rescan(st->cfg->spool);   /* a daemon tries it at once */
		spool_new_free(st->msg);
		st->msg = NULL;
	} else {
		size_t len = evbuffer_get_length(st->content);

		rc = spool_drop(st->cfg->spool, env, evbuffer_pullup(st->content, -1), len, &err);
		evbuffer_free(st->content);
		st->content = NULL;
	}
	smtp_session_committed(st->session, rc == 0, err.msg);
}

static int
flush_output(struct evbuffer *out, int fd)
{
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) < 0 && errno != EINTR)
			return -1;
	return 0;
}

int
smtp_server_stdio(const struct config *cfg, struct spool *spool, int in_fd, int out_fd)
{
	struct stdio_store st = { .spool = spool, .cfg = cfg };
	struct smtp_store store = { &st, stdio_begin, stdio_write, stdio_abort, stdio_commit };
	struct smtp_peer peer = { .addr = "local", .local = true, .uid = (long)getuid() };
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	enum smtp_session_status status = SMTP_SESSION_READ;
	int rc = 0;

	snprintf(peer.name, sizeof peer.name, "uid %ld", peer.uid);
	st.session = smtp_session_new(cfg, &peer, &store, out);
	smtp_session_greet(st.session);
	while (status != SMTP_SESSION_CLOSE) {
		ssize_t n;

		if (flush_output(out, out_fd) < 0) {
			rc = 74;
			break;
		}
		n = evbuffer_read(in, in_fd, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;          /* EOF: a message inside DATA is aborted, not queued */
		status = smtp_session_input(st.session, in);
	}
	flush_output(out, out_fd);
	smtp_session_free(st.session);
	evbuffer_free(in);
	evbuffer_free(out);
	return rc;
}
