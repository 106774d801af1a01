/* test_auth_client.c - SASL as a client: every mechanism against libgsasl's
 * own server side in-process (the fake gateway, no sockets), fallback,
 * mutual authentication, the choice of mechanism, XOAUTH2/OAUTHBEARER bytes,
 * credentials from files and commands, and no secret in any text.
 *
 * Link seam: this file defines tls_channel_binding (and struct tls_conn), so
 * the -PLUS mechanisms run without a TLS connection; tls.o is not linked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsasl.h>
#include <openssl/evp.h>

#include "auth_client.h"
#include "util.h"

#define N(a) (sizeof (a) / sizeof (a)[0])
#define USER "joe@isp.example"
#define PASSWORD "Corr3ct-Horse-Battery"
#define WRONG "Wr0ng-Password-Here"
#define TOKEN "ya29.Tok-Good-123"
#define BAD_TOKEN "ya29.Tok-Expired-456"
#define ALL_MECHS "OAUTHBEARER XOAUTH2 SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS " \
	"SCRAM-SHA-1 GSSAPI DIGEST-MD5 CRAM-MD5 PLAIN LOGIN"

/* ------------------------------------------------------------------------ */
/* Channel binding without TLS                                               */

struct tls_conn {
	bool exporter, unique;       /* which types it gives */
	unsigned char data[32];
};

static struct tls_conn tls_exporter = { .exporter = true, .unique = true,
	.data = "exporter-exporter-exporter-0123" };
static struct tls_conn tls_unique_only = { .unique = true,
	.data = "unique-unique-unique-unique-012" };
static struct tls_conn tls_no_binding = { .exporter = false };

int tls_channel_binding(struct tls_conn *t, const char *type, unsigned char *out, size_t *len);

int
tls_channel_binding(struct tls_conn *t, const char *type, unsigned char *out, size_t *len)
{
	if ((strcmp(type, "tls-exporter") == 0 && t->exporter) ||
	    (strcmp(type, "tls-unique") == 0 && t->unique)) {
		memcpy(out, t->data, sizeof t->data);
		*len = sizeof t->data;
		return 0;
	}
	return -1;
}

static void
b64(const void *data, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
}

static size_t
unb64(const char *in, char *out, size_t size)
{
	size_t len = strlen(in);
	int n;

	assert_true(len / 4 * 3 < size);
	n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
	assert_true(n >= 0);
	if (len > 0 && in[len - 1] == '=')
		n--;
	if (len > 1 && in[len - 2] == '=')
		n--;
	out[n] = '\0';
	return (size_t)n;
}

/* The first response line the fake recorded ("[b64] [b64]..."), decoded. */
static size_t
first_response(const char *responses, char *out, size_t size)
{
	char b64text[8192];
	size_t len = strcspn(responses + 1, "]");

	assert_int_equal(responses[0], '[');
	snprintf(b64text, sizeof b64text, "%.*s", (int)len, responses + 1);
	return unb64(b64text, out, size);
}

/* ------------------------------------------------------------------------ */
/* The fake gateway: libgsasl's server side behind an auth_proto             */

enum quirk {
	QUIRK_NONE,
	QUIRK_FORGE_SIGNATURE,       /* a wrong SCRAM server-final */
	QUIRK_SKIP_FINAL,            /* 235 instead of the SCRAM server-final */
	QUIRK_TEMPFAIL,              /* 454 to everything */
};

struct fake {
	Gsasl *gs;
	Gsasl_session *s;
	const char *password;        /* what the server knows */
	const char *refuse;          /* mechanisms answered with 535 at once */
	const char *refuse_text;     /* their text, when not the usual one */
	enum quirk quirk;
	struct tls_conn *tls;        /* the server's view of channel binding */
	char started[256];           /* mechanisms started, space separated */
	char ir[8192];               /* the last initial response as sent ("(none)") */
	char responses[8192];        /* every response line, space separated */
	bool final_sent;             /* server-final out: expects an empty response */
	bool oauth_error_sent;
	/* what next() returns */
	enum auth_step step;
	int code;
	char text[256];
	char challenge[8192];
};

static void
fake_say(struct fake *f, enum auth_step step, int code, const char *text, const char *chal)
{
	f->step = step;
	f->code = code;
	strlcopy(f->text, text, sizeof f->text);
	strlcopy(f->challenge, chal != NULL ? chal : "", sizeof f->challenge);
}

static int
server_cb(Gsasl *gs, Gsasl_session *s, Gsasl_property prop)
{
	struct fake *f = gsasl_callback_hook_get(gs);
	const char *authid = gsasl_property_fast(s, GSASL_AUTHID);
	char cb[64];

	switch (prop) {
	case GSASL_PASSWORD:
		if (authid == NULL || strcmp(authid, USER) != 0)
			return GSASL_NO_CALLBACK;
		return gsasl_property_set(s, prop, f->password);
	case GSASL_SERVICE:
		return gsasl_property_set(s, prop, "smtp");
	case GSASL_HOSTNAME:
		return gsasl_property_set(s, prop, "gw.example");
	case GSASL_CB_TLS_EXPORTER:
	case GSASL_CB_TLS_UNIQUE:
		if (f->tls == NULL)
			return GSASL_NO_CALLBACK;
		b64(f->tls->data, sizeof f->tls->data, cb);
		return gsasl_property_set(s, prop, cb);
	default:
		return GSASL_NO_CALLBACK;
	}
}

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p != NULL && (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* One client message into libgsasl's server; the answer goes to next(). */
static void
fake_server_input(struct fake *f, const char *b64in)
{
	char *out = NULL;
	int rc = gsasl_step64(f->s, b64in, &out);

	if (rc == GSASL_NEEDS_MORE) {
		fake_say(f, AUTH_STEP_CHALLENGE, 334, "", out);
	} else if (rc == GSASL_OK && out != NULL && out[0] != '\0' &&
	    f->quirk != QUIRK_SKIP_FINAL) {
		if (f->quirk == QUIRK_FORGE_SIGNATURE) {
			char plain[256];

			unb64(out, plain, sizeof plain);
			plain[2] = plain[2] == 'A' ? 'B' : 'A';     /* "v=..." */
			b64(plain, strlen(plain), out);
		}
		fake_say(f, AUTH_STEP_CHALLENGE, 334, "", out);
		f->final_sent = true;
	} else if (rc == GSASL_OK) {
		fake_say(f, AUTH_STEP_OK, 235, "2.7.0 Authentication successful", NULL);
	} else {
		fake_say(f, AUTH_STEP_REFUSED, 535, "5.7.8 Error: authentication failed", NULL);
	}
	gsasl_free(out);
}

static void
fake_oauth_input(struct fake *f, const char *mech, const char *b64in)
{
	char raw[8192], want[512];

	unb64(b64in, raw, sizeof raw);
	if (strcmp(mech, "XOAUTH2") == 0)
		snprintf(want, sizeof want, "user=%s\001auth=Bearer %s\001\001", USER, TOKEN);
	else
		snprintf(want, sizeof want, "n,a=%s,\001auth=Bearer %s\001\001", USER, TOKEN);
	if (strcmp(raw, want) == 0) {
		fake_say(f, AUTH_STEP_OK, 235, "2.7.0 Accepted", NULL);
	} else {
		const char *json = "{\"status\":\"401\",\"schemes\":\"Bearer\","
		    "\"scope\":\"https://mail\"}";
		char out[256];

		b64(json, strlen(json), out);
		fake_say(f, AUTH_STEP_CHALLENGE, 334, "", out);
		f->oauth_error_sent = true;
	}
}

static int
fake_start(void *ctx, const char *mech, const char *initial, struct err *err)
{
	struct fake *f = ctx;
	bool oauth = strcmp(mech, "XOAUTH2") == 0 || strcmp(mech, "OAUTHBEARER") == 0;
	const char *in = initial == NULL || strcmp(initial, "=") == 0 ? "" : initial;

	(void)err;
	snprintf(f->started + strlen(f->started), sizeof f->started - strlen(f->started), "%s%s",
	    f->started[0] != '\0' ? " " : "", mech);
	strlcopy(f->ir, initial != NULL ? initial : "(none)", sizeof f->ir);
	f->final_sent = f->oauth_error_sent = false;
	if (f->s != NULL)
		gsasl_finish(f->s);
	f->s = NULL;
	if (f->quirk == QUIRK_TEMPFAIL)
		fake_say(f, AUTH_STEP_TEMPFAIL, 454, "4.7.0 Temporary authentication failure",
		    NULL);
	else if (word_in(f->refuse, mech))
		fake_say(f, AUTH_STEP_REFUSED, 535, f->refuse_text != NULL ? f->refuse_text :
		    "5.7.8 Error: authentication failed", NULL);
	else if (oauth && initial == NULL)
		fake_say(f, AUTH_STEP_CHALLENGE, 334, "", "");
	else if (oauth)
		fake_oauth_input(f, mech, in);
	else if (gsasl_server_start(f->gs, mech, &f->s) != GSASL_OK)
		fake_say(f, AUTH_STEP_REFUSED, 504, "5.5.4 Unrecognized authentication type", NULL);
	else
		fake_server_input(f, in);
	return 0;
}

static int
fake_respond(void *ctx, const char *b64in, struct err *err)
{
	struct fake *f = ctx;
	const char *mech = f->started + (strrchr(f->started, ' ') != NULL ?
	    (size_t)(strrchr(f->started, ' ') - f->started + 1) : 0);
	size_t len = strlen(f->responses);

	(void)err;
	snprintf(f->responses + len, sizeof f->responses - len, "%s[%s]", len > 0 ? " " : "",
	    b64in);
	if (strcmp(b64in, "*") == 0)
		fake_say(f, AUTH_STEP_REFUSED, 501, "5.7.0 Authentication aborted", NULL);
	else if (f->final_sent)
		fake_say(f, b64in[0] == '\0' ? AUTH_STEP_OK : AUTH_STEP_REFUSED,
		    b64in[0] == '\0' ? 235 : 535, b64in[0] == '\0' ?
		    "2.7.0 Authentication successful" : "5.7.8 Error: bad final response", NULL);
	else if (f->oauth_error_sent)
		fake_say(f, AUTH_STEP_REFUSED, 535, "5.7.8 Username and Password not accepted",
		    NULL);
	else if (strcmp(mech, "XOAUTH2") == 0 || strcmp(mech, "OAUTHBEARER") == 0)
		fake_oauth_input(f, mech, b64in);
	else
		fake_server_input(f, b64in);
	return 0;
}

static int
fake_next(void *ctx, char *b64out, size_t size, enum auth_step *step, struct auth_reply *reply,
    struct err *err)
{
	struct fake *f = ctx;

	(void)err;
	*step = f->step;
	reply->code = f->code;
	strlcopy(reply->text, f->text, sizeof reply->text);
	strlcopy(b64out, f->challenge, size);
	return 0;
}

static void
fake_init(struct fake *f, const char *password)
{
	memset(f, 0, sizeof *f);
	assert_int_equal(gsasl_init(&f->gs), GSASL_OK);
	gsasl_callback_set(f->gs, server_cb);
	gsasl_callback_hook_set(f->gs, f);
	f->password = password;
	f->refuse = "";
}

static void
fake_done(struct fake *f)
{
	if (f->s != NULL)
		gsasl_finish(f->s);
	gsasl_done(f->gs);
}

static struct auth_proto
fake_proto(struct fake *f, bool initial_response)
{
	return (struct auth_proto){
		.ctx = f, .service = "smtp", .hostname = "gw.example",
		.initial_response = initial_response,
		.start = fake_start, .respond = fake_respond, .next = fake_next,
	};
}

/* ------------------------------------------------------------------------ */
/* Captured texts, and the rule that no secret is in them                    */

struct capture {
	char text[32768];
};

static void
capture_say(void *ctx, const char *line)
{
	struct capture *c = ctx;
	size_t len = strlen(c->text);

	snprintf(c->text + len, sizeof c->text - len, "%s\n", line);
}

static void
assert_no_secret(const char *what, const char *text)
{
	static const char *const secrets[] = { PASSWORD, WRONG, TOKEN, BAD_TOKEN, "leaked" };

	for (size_t i = 0; i < N(secrets); i++)
		if (strstr(text, secrets[i]) != NULL)
			fail_msg("%s contains the secret \"%s\": %s", what, secrets[i], text);
}

static struct route
route_for(const char *auth_list)
{
	static char list[16][32];
	static char *names[16];
	struct route r = { .name = "isp", .smarthost = "gw.example", .port = 587,
		.user = USER, .allow_plaintext_auth = true };
	size_t n = 0;

	for (const char *p = auth_list; p != NULL && *p != '\0' && n < N(list);) {
		size_t len = strcspn(p, " ");

		snprintf(list[n], sizeof list[n], "%.*s", (int)len, p);
		names[n] = list[n];
		n++;
		p += len + strspn(p + len, " ");
	}
	r.auth = names;
	r.nauth = n;
	return r;
}

static struct auth_credentials
creds(const char *password, const char *token)
{
	struct auth_credentials c;

	memset(&c, 0, sizeof c);
	strlcopy(c.user, USER, sizeof c.user);
	strlcopy(c.password, password, sizeof c.password);
	strlcopy(c.oauth_token, token, sizeof c.oauth_token);
	return c;
}

struct run_out {
	int rc;
	struct auth_result res;
	struct capture trace;
	struct err err;
};

/* auth_client_run against the fake, then check every captured text. */
static void
run(struct fake *f, const struct route *r, const struct auth_credentials *c, const char *offered,
    struct tls_conn *tls, bool initial_response, struct run_out *o)
{
	struct auth_proto p = fake_proto(f, initial_response);
	struct netio_trace t = { .say = capture_say, .ctx = &o->trace };

	memset(o, 0, sizeof *o);
	o->rc = auth_client_run(r, c, offered, tls, &p, &o->res, &t, &o->err);
	assert_no_secret("trace", o->trace.text);
	assert_no_secret("result mech", o->res.mech);
	assert_no_secret("result reply", o->res.reply.text);
	assert_no_secret("result tried", o->res.tried);
	assert_no_secret("err", o->err.msg);
}

static bool
both_sides(const char *mech)
{
	Gsasl *gs;
	bool yes;

	assert_int_equal(gsasl_init(&gs), GSASL_OK);
	yes = gsasl_client_support_p(gs, mech) && gsasl_server_support_p(gs, mech);
	gsasl_done(gs);
	if (!yes)
		print_message("[  SKIP    ] %s: not supported by this libgsasl as client and "
		    "server\n", mech);
	return yes;
}

/* ------------------------------------------------------------------------ */
/* Every mechanism: the right password, a wrong one                          */

static const struct {
	const char *mech;
	struct tls_conn *tls;        /* NULL: cleartext (PLAIN/LOGIN need allow-plaintext-auth) */
} mechs[] = {
	{ "PLAIN", NULL },
	{ "LOGIN", NULL },
	{ "CRAM-MD5", NULL },
	{ "DIGEST-MD5", NULL },
	{ "SCRAM-SHA-1", NULL },
	{ "SCRAM-SHA-256", NULL },
	{ "SCRAM-SHA-256", &tls_exporter },      /* "n,,": no channel binding offered */
	{ "SCRAM-SHA-1-PLUS", &tls_exporter },
	{ "SCRAM-SHA-256-PLUS", &tls_exporter },
	{ "SCRAM-SHA-256-PLUS", &tls_unique_only },
};

/* SCRAM's GS2 header: "p=tls-exporter,," / "p=tls-unique,," for -PLUS,
 * "n,," otherwise (never "y": that would fail against a -PLUS server). */
static void
check_gs2_header(const struct fake *f, bool ir, const char *mech, const struct tls_conn *tls,
    const char *trace)
{
	bool plus = strstr(mech, "-PLUS") != NULL;
	const char *want = !plus ? "n,," : tls->exporter ? "p=tls-exporter,," : "p=tls-unique,,";
	char gs2[512];

	if (ir)
		unb64(f->ir, gs2, sizeof gs2);
	else
		first_response(f->responses, gs2, sizeof gs2);
	if (strncmp(gs2, want, strlen(want)) != 0)
		fail_msg("%s: client-first \"%s\", want \"%s...\"", mech, gs2, want);
	if (plus && strstr(trace, tls->exporter ? "channel binding: tls-exporter" :
	    "channel binding: tls-unique") == NULL)
		fail_msg("%s: the trace does not name the channel binding:\n%s", mech, trace);
}

static void
each_mechanism_right_and_wrong_password(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(mechs); i++) {
		struct route r = route_for(NULL);
		char want[128];

		if (!both_sides(mechs[i].mech))
			continue;
		for (int ir = 0; ir < 2; ir++) {
			struct auth_credentials good = creds(PASSWORD, ""), bad = creds(WRONG, "");
			struct fake f;
			struct run_out o;

			fake_init(&f, PASSWORD);
			f.tls = mechs[i].tls;
			run(&f, &r, &good, mechs[i].mech, mechs[i].tls, ir, &o);
			if (o.rc != 0)
				fail_msg("%s (initial response %s): got %d (%s; %s), want 0\n%s",
				    mechs[i].mech, ir ? "on" : "off", o.rc, o.res.tried,
				    o.res.reply.text, o.trace.text);
			assert_string_equal(o.res.mech, mechs[i].mech);
			snprintf(want, sizeof want, "%s (235)", mechs[i].mech);
			assert_string_equal(o.res.tried, want);
			assert_int_equal(o.res.reply.code, 235);
			/* SCRAM's server-final came as a 334, answered with an empty line */
			if (strncmp(mechs[i].mech, "SCRAM", 5) == 0)
				assert_non_null(strstr(f.responses, "[]"));
			if (strncmp(mechs[i].mech, "SCRAM", 5) == 0)
				check_gs2_header(&f, ir, mechs[i].mech, mechs[i].tls, o.trace.text);
			if (!ir && strcmp(f.ir, "(none)") != 0)
				fail_msg("%s: an initial response was sent when not allowed",
				    mechs[i].mech);
			fake_done(&f);

			fake_init(&f, PASSWORD);
			f.tls = mechs[i].tls;
			run(&f, &r, &bad, mechs[i].mech, mechs[i].tls, ir, &o);
			if (o.rc != 1)
				fail_msg("%s with a wrong password: got %d (%s), want 1\n%s",
				    mechs[i].mech, o.rc, o.res.tried, o.trace.text);
			assert_int_equal(o.res.reply.code, 535);
			assert_string_equal(o.res.reply.text, "5.7.8 Error: authentication failed");
			snprintf(want, sizeof want, "%s (535 5.7.8)", mechs[i].mech);
			assert_string_equal(o.res.tried, want);
			fake_done(&f);
		}
	}
}

/* A -PLUS exchange over a different TLS connection than the server's (a
 * man in the middle) fails. */
static void
plus_with_other_channel_is_refused(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	if (!both_sides("SCRAM-SHA-256-PLUS"))
		return;
	fake_init(&f, PASSWORD);
	f.tls = &tls_unique_only;
	run(&f, &r, &c, "SCRAM-SHA-256-PLUS", &tls_exporter, true, &o);
	assert_int_equal(o.rc, 1);
	assert_string_equal(o.res.tried, "SCRAM-SHA-256-PLUS (535 5.7.8)");
	fake_done(&f);
}

/* ------------------------------------------------------------------------ */
/* Fallback, temporary failures, mutual authentication                       */

static void
fallback_after_refusal(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	fake_init(&f, PASSWORD);
	f.refuse = "SCRAM-SHA-256";
	run(&f, &r, &c, "PLAIN SCRAM-SHA-256", NULL, true, &o);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.res.mech, "PLAIN");
	assert_string_equal(o.res.tried, "SCRAM-SHA-256 (535 5.7.8) PLAIN (235)");
	assert_string_equal(f.started, "SCRAM-SHA-256 PLAIN");
	assert_non_null(strstr(o.trace.text, "SCRAM-SHA-256: refused: 535 5.7.8"));
	fake_done(&f);

	/* every one refused: 1, the last reply */
	fake_init(&f, PASSWORD);
	f.refuse = "SCRAM-SHA-256 CRAM-MD5 PLAIN";
	run(&f, &r, &c, "PLAIN CRAM-MD5 SCRAM-SHA-256", NULL, true, &o);
	assert_int_equal(o.rc, 1);
	assert_string_equal(o.res.tried, "SCRAM-SHA-256 (535 5.7.8) CRAM-MD5 (535 5.7.8) "
	    "PLAIN (535 5.7.8)");
	assert_int_equal(o.res.reply.code, 535);
	assert_string_equal(o.res.mech, "PLAIN");
	fake_done(&f);
}

static void
tempfail_stops(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	fake_init(&f, PASSWORD);
	f.quirk = QUIRK_TEMPFAIL;
	run(&f, &r, &c, "SCRAM-SHA-256 PLAIN", NULL, true, &o);
	assert_int_equal(o.rc, 2);
	assert_string_equal(f.started, "SCRAM-SHA-256");
	assert_string_equal(o.res.tried, "SCRAM-SHA-256 (454 4.7.0)");
	assert_int_equal(o.res.reply.code, 454);
	fake_done(&f);
}

static void
unproven_server_stops(void **state)
{
	static const struct {
		const char *name;
		enum quirk quirk;
		const char *responses;   /* what the client must have sent, or NULL */
	} cases[] = {
		{ "forged server signature", QUIRK_FORGE_SIGNATURE, "[*]" },
		{ "235 before the server-final", QUIRK_SKIP_FINAL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct route r = route_for(NULL);
		struct auth_credentials c = creds(PASSWORD, "");
		struct fake f;
		struct run_out o;

		fake_init(&f, PASSWORD);
		f.quirk = cases[i].quirk;
		run(&f, &r, &c, "SCRAM-SHA-256 PLAIN LOGIN", NULL, true, &o);
		if (o.rc != 2)
			fail_msg("%s: got %d (%s), want 2", cases[i].name, o.rc, o.res.tried);
		assert_string_equal(f.started, "SCRAM-SHA-256");       /* no fallback to PLAIN */
		assert_string_equal(o.res.tried, "SCRAM-SHA-256 (unproven)");
		assert_int_equal(o.res.reply.code, 0);
		assert_non_null(strstr(o.res.reply.text, "did not prove"));
		if (cases[i].responses != NULL)
			assert_non_null(strstr(f.responses, cases[i].responses));
		fake_done(&f);
	}
}

/* GSSAPI without a Kerberos ticket fails before anything is sent. */
static void
gssapi_without_ticket_falls_back(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	if (!both_sides("GSSAPI"))
		return;
	setenv("KRB5CCNAME", "FILE:/nonexistent/mailredir-test-ccache", 1);
	setenv("KRB5_CONFIG", "/dev/null", 1);
	fake_init(&f, PASSWORD);
	run(&f, &r, &c, "GSSAPI PLAIN", NULL, true, &o);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.res.mech, "PLAIN");
	assert_string_equal(o.res.tried, "GSSAPI (not started) PLAIN (235)");
	assert_string_equal(f.started, "PLAIN");
	fake_done(&f);
}

/* An initial response longer than the command may carry waits for the 334. */
static void
long_initial_response_waits(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct auth_proto p;
	struct fake f;
	struct run_out o;
	struct netio_trace t = { .say = capture_say, .ctx = &o.trace };

	(void)state;
	fake_init(&f, PASSWORD);
	p = fake_proto(&f, true);
	p.initial_max = 12;
	memset(&o, 0, sizeof o);
	o.rc = auth_client_run(&r, &c, "SCRAM-SHA-256", NULL, &p, &o.res, &t, &o.err);
	assert_int_equal(o.rc, 0);
	assert_string_equal(f.ir, "(none)");
	assert_string_equal(o.res.tried, "SCRAM-SHA-256 (235)");
	fake_done(&f);
}

static int
broken_start(void *ctx, const char *mech, const char *initial, struct err *err)
{
	(void)ctx, (void)mech, (void)initial;
	return err_set(err, "connection closed by the gateway");
}

static void
io_error_stops(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct auth_proto p;
	struct fake f;
	struct run_out o;
	struct netio_trace t = { .say = capture_say, .ctx = &o.trace };

	(void)state;
	fake_init(&f, PASSWORD);
	p = fake_proto(&f, true);
	p.start = broken_start;
	memset(&o, 0, sizeof o);
	o.rc = auth_client_run(&r, &c, "SCRAM-SHA-256 PLAIN", NULL, &p, &o.res, &t, &o.err);
	assert_int_equal(o.rc, -1);
	assert_string_equal(o.err.msg, "connection closed by the gateway");
	assert_string_equal(o.res.tried, "SCRAM-SHA-256 (I/O error)");
	assert_no_secret("trace", o.trace.text);
	fake_done(&f);
}

/* Over TLS without channel binding: no -PLUS, and PLAIN is fine. */
static void
tls_without_binding(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	r.allow_plaintext_auth = false;
	fake_init(&f, PASSWORD);
	run(&f, &r, &c, "SCRAM-SHA-256-PLUS PLAIN", &tls_no_binding, true, &o);
	assert_int_equal(o.rc, 0);
	assert_string_equal(f.started, "PLAIN");
	assert_non_null(strstr(o.trace.text,
	    "SCRAM-SHA-256-PLUS: no channel binding from this TLS connection"));
	assert_null(strstr(o.trace.text, "channel binding: tls-"));
	fake_done(&f);
}

static void
nothing_usable(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	r.allow_plaintext_auth = false;
	fake_init(&f, PASSWORD);
	run(&f, &r, &c, "PLAIN LOGIN", NULL, true, &o);
	assert_int_equal(o.rc, 1);
	assert_string_equal(f.started, "");
	assert_string_equal(o.res.tried, "");
	assert_int_equal(o.res.reply.code, 0);
	assert_string_equal(o.res.reply.text,
	    "no usable AUTH mechanism (the gateway offers: PLAIN LOGIN)");
	assert_non_null(strstr(o.trace.text, "PLAIN: never sent over an unencrypted connection"));
	fake_done(&f);
}

/* A gateway that echoes the password in its reply does not get it logged. */
static void
echoed_password_is_masked(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c = creds(PASSWORD, "");
	struct fake f;
	struct run_out o;

	(void)state;
	fake_init(&f, PASSWORD);
	f.refuse = "PLAIN";
	f.refuse_text = "5.7.8 password " PASSWORD " is wrong";
	run(&f, &r, &c, "PLAIN", NULL, true, &o);
	assert_int_equal(o.rc, 1);
	assert_string_equal(o.res.reply.text, "5.7.8 password ********************* is wrong");
	assert_non_null(strstr(o.trace.text, "PLAIN: refused: 535 5.7.8 password ****"));
	fake_done(&f);
}

/* ------------------------------------------------------------------------ */
/* XOAUTH2 and OAUTHBEARER                                                    */

static void
oauth_initial_responses(void **state)
{
	static const struct { const char *mech, *want; } cases[] = {
		{ "XOAUTH2", "user=" USER "\001auth=Bearer " TOKEN "\001\001" },
		{ "OAUTHBEARER", "n,a=" USER ",\001auth=Bearer " TOKEN "\001\001" },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct route r = route_for(NULL);
		struct auth_credentials c = creds("", TOKEN);
		struct fake f;
		struct run_out o;
		char raw[512];
		size_t len;

		fake_init(&f, PASSWORD);
		run(&f, &r, &c, cases[i].mech, NULL, true, &o);
		assert_int_equal(o.rc, 0);
		len = unb64(f.ir, raw, sizeof raw);
		if (len != strlen(cases[i].want) || memcmp(raw, cases[i].want, len) != 0)
			fail_msg("%s: initial response differs", cases[i].mech);
		assert_string_equal(o.res.tried, cases[i].mech[0] == 'X' ? "XOAUTH2 (235)" :
		    "OAUTHBEARER (235)");
		fake_done(&f);

		/* without an initial response: after the empty 334 */
		fake_init(&f, PASSWORD);
		run(&f, &r, &c, cases[i].mech, NULL, false, &o);
		assert_int_equal(o.rc, 0);
		assert_string_equal(f.ir, "(none)");
		len = first_response(f.responses, raw, sizeof raw);
		assert_int_equal(len, strlen(cases[i].want));
		assert_memory_equal(raw, cases[i].want, len);
		fake_done(&f);
	}
}

/* A refused token: a 334 with a JSON error, our answer, then 535; the next
 * mechanism follows. */
static void
oauth_failure_answers_then_falls_back(void **state)
{
	static const struct { const char *mech, *answer; } cases[] = {
		{ "XOAUTH2", "[]" },
		{ "OAUTHBEARER", "[AQ==]" },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct route r = route_for(NULL);
		struct auth_credentials c = creds(PASSWORD, BAD_TOKEN);
		char offered[64], want[128];
		struct fake f;
		struct run_out o;

		fake_init(&f, PASSWORD);
		snprintf(offered, sizeof offered, "PLAIN %s", cases[i].mech);
		run(&f, &r, &c, offered, NULL, true, &o);
		assert_int_equal(o.rc, 0);
		assert_string_equal(f.responses, cases[i].answer);
		snprintf(want, sizeof want, "%s (535 5.7.8) PLAIN (235)", cases[i].mech);
		assert_string_equal(o.res.tried, want);
		assert_non_null(strstr(o.trace.text, "the gateway says {\"status\":\"401\""));
		fake_done(&f);
	}
}

/* ------------------------------------------------------------------------ */
/* auth_client_choose                                                         */

static bool
available(const char *mech)
{
	Gsasl *gs;
	bool yes;

	if (strcmp(mech, "XOAUTH2") == 0 || strcmp(mech, "OAUTHBEARER") == 0)
		return true;
	assert_int_equal(gsasl_init(&gs), GSASL_OK);
	yes = gsasl_client_support_p(gs, mech);
	gsasl_done(gs);
	return yes;
}

/* The expected list without what this libgsasl lacks. */
static void
filter_available(const char *want, char *out, size_t size)
{
	out[0] = '\0';
	for (const char *p = want; *p != '\0';) {
		char name[32];
		size_t len = strcspn(p, " ");

		snprintf(name, sizeof name, "%.*s", (int)len, p);
		if (available(name)) {
			if (out[0] != '\0')
				strlcopy(out + strlen(out), " ", size - strlen(out));
			strlcopy(out + strlen(out), name, size - strlen(out));
		}
		p += len + strspn(p + len, " ");
	}
}

static const struct {
	const char *name;
	const char *auth;            /* route auth list, NULL = auto */
	const char *offered;
	bool encrypted, cb, allow_plain;
	const char *password, *token;
	size_t max;
	const char *want;            /* before filtering by availability */
	const char *trace;           /* a line the trace must have, or NULL */
} choose_cases[] = {
	{ "auto ranks everything offered", NULL, ALL_MECHS, true, true, false, PASSWORD, "", 16,
	    "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 GSSAPI DIGEST-MD5 "
	    "CRAM-MD5 PLAIN LOGIN", "OAUTHBEARER: no oauth-token-command" },
	{ "auto picks the strongest offered", NULL, "LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1", true, true,
	    false, PASSWORD, "", 16, "SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN",
	    "not offered by the gateway: OAUTHBEARER XOAUTH2 SCRAM-SHA-256-PLUS SCRAM-SHA-256 "
	    "SCRAM-SHA-1-PLUS GSSAPI DIGEST-MD5" },
	{ "offer in lower case", NULL, "login plain cram-md5", true, false, false, PASSWORD, "", 16,
	    "CRAM-MD5 PLAIN LOGIN", NULL },
	{ "explicit list honoured", "CRAM-MD5 PLAIN", ALL_MECHS, true, true, false, PASSWORD, "",
	    16, "CRAM-MD5 PLAIN", NULL },
	{ "explicit list keeps its order", "LOGIN SCRAM-SHA-256 DIGEST-MD5", ALL_MECHS, true, true,
	    false, PASSWORD, "", 16, "LOGIN SCRAM-SHA-256 DIGEST-MD5", NULL },
	{ "explicit list filtered", "SCRAM-SHA-256-PLUS PLAIN CRAM-MD5", "PLAIN CRAM-MD5", false,
	    false, false, PASSWORD, "", 16, "CRAM-MD5",
	    "PLAIN: never sent over an unencrypted connection (allow-plaintext-auth = no)" },
	{ "explicit list, a name twice", "PLAIN PLAIN", "PLAIN", true, false, false, PASSWORD, "",
	    16, "PLAIN", "PLAIN: listed twice" },
	{ "cleartext: no PLAIN/LOGIN", NULL, "PLAIN LOGIN CRAM-MD5", false, false, false, PASSWORD,
	    "", 16, "CRAM-MD5",
	    "LOGIN: never sent over an unencrypted connection (allow-plaintext-auth = no)" },
	{ "cleartext with allow-plaintext-auth", NULL, "PLAIN LOGIN CRAM-MD5", false, false, true,
	    PASSWORD, "", 16, "CRAM-MD5 PLAIN LOGIN", NULL },
	{ "-PLUS needs channel binding", NULL, "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS",
	    true, false, false, PASSWORD, "", 16, "SCRAM-SHA-256",
	    "SCRAM-SHA-256-PLUS: no channel binding from this TLS connection" },
	{ "-PLUS needs TLS", NULL, "SCRAM-SHA-1-PLUS SCRAM-SHA-1", false, false, false, PASSWORD,
	    "", 16, "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS: no channel binding without TLS" },
	{ "token first", NULL, "PLAIN XOAUTH2 OAUTHBEARER", true, false, false, PASSWORD, TOKEN, 16,
	    "OAUTHBEARER XOAUTH2 PLAIN", NULL },
	{ "no token: no OAuth", NULL, "XOAUTH2 OAUTHBEARER PLAIN", true, false, false, PASSWORD, "",
	    16, "PLAIN", "XOAUTH2: no oauth-token-command" },
	{ "token only", NULL, "XOAUTH2 PLAIN SCRAM-SHA-256", true, false, false, "", TOKEN, 16,
	    "XOAUTH2", "PLAIN: no password (password-file, password-command or password)" },
	{ "explicit XOAUTH2 only", "XOAUTH2", "XOAUTH2 OAUTHBEARER PLAIN", true, false, false,
	    PASSWORD, TOKEN, 16, "XOAUTH2", NULL },
	{ "nothing offered", NULL, "", true, true, false, PASSWORD, TOKEN, 16, "", NULL },
	{ "max", NULL, ALL_MECHS, true, true, true, PASSWORD, "", 2,
	    "SCRAM-SHA-256-PLUS SCRAM-SHA-256", "SCRAM-SHA-1-PLUS: too many mechanisms" },
	{ "unknown in the list", "NTLM PLAIN", "NTLM PLAIN", true, false, false, PASSWORD, "", 16,
	    "PLAIN", "NTLM: unknown mechanism" },
};

static void
choose_each_case(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(choose_cases); i++) {
		struct route r = route_for(choose_cases[i].auth);
		struct auth_credentials c = creds(choose_cases[i].password, choose_cases[i].token);
		struct capture cap = { "" };
		struct netio_trace t = { .say = capture_say, .ctx = &cap };
		const char *out[16];
		char got[512] = "", want[512];
		size_t n;

		r.allow_plaintext_auth = choose_cases[i].allow_plain;
		n = auth_client_choose(&r, &c, choose_cases[i].offered, choose_cases[i].encrypted,
		    choose_cases[i].cb, out, choose_cases[i].max, &t);
		for (size_t j = 0; j < n; j++) {
			if (j > 0)
				strlcopy(got + strlen(got), " ", sizeof got - strlen(got));
			strlcopy(got + strlen(got), out[j], sizeof got - strlen(got));
		}
		filter_available(choose_cases[i].want, want, sizeof want);
		if (choose_cases[i].max < 16)
			strlcopy(want, choose_cases[i].want, sizeof want);
		if (strcmp(got, want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"\n%s", choose_cases[i].name, got, want,
			    cap.text);
		if (choose_cases[i].trace != NULL &&
		    strstr(cap.text, choose_cases[i].trace) == NULL)
			fail_msg("%s: the trace lacks \"%s\":\n%s", choose_cases[i].name,
			    choose_cases[i].trace, cap.text);
		assert_no_secret(choose_cases[i].name, cap.text);
	}
}

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */

static char tmpdir[64];

static int
setup_tmpdir(void **state)
{
	(void)state;
	strlcopy(tmpdir, "/tmp/test_auth_client.XXXXXX", sizeof tmpdir);
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static const struct {
	const char *name;
	const char *content;
	mode_t mode;
	int want;
	const char *password;        /* want 0 */
	const char *message;         /* want -1: the error after "password-file PATH" */
} file_cases[] = {
	{ "first line, CRLF trimmed", PASSWORD "\r\nsecond line\n", 0600, 0, PASSWORD, NULL },
	{ "LF", PASSWORD "\n", 0600, 0, PASSWORD, NULL },
	{ "no line end", PASSWORD, 0400, 0, PASSWORD, NULL },
	{ "spaces kept", " " PASSWORD " \n", 0600, 0, " " PASSWORD " ", NULL },
	{ "readable by others", PASSWORD "\n", 0644, -1, NULL,
	    " is readable by others; chmod 600 it" },
	{ "readable by the group", PASSWORD "\n", 0640, -1, NULL,
	    " is readable by others; chmod 600 it" },
	{ "writable by the group", PASSWORD "\n", 0620, -1, NULL,
	    " is readable by others; chmod 600 it" },
	{ "empty first line", "\n" PASSWORD "\n", 0600, -1, NULL, ": the first line is empty" },
	{ "empty file", "", 0600, -1, NULL, ": the first line is empty" },
};

static void
password_file_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(file_cases); i++) {
		char path[128], want[256];
		struct route r = route_for(NULL);
		struct auth_credentials c;
		struct err err = { "" };
		int got;

		snprintf(path, sizeof path, "%s/secret%zu", tmpdir, i);
		write_file(path, file_cases[i].content, file_cases[i].mode);
		r.password_file = path;
		memset(&c, 'x', sizeof c);
		got = auth_credentials_load(&r, &c, &err);
		if (got != file_cases[i].want)
			fail_msg("%s: got %d (%s), want %d", file_cases[i].name, got, err.msg,
			    file_cases[i].want);
		assert_no_secret(file_cases[i].name, err.msg);
		if (got == 0) {
			assert_string_equal(c.password, file_cases[i].password);
			assert_string_equal(c.user, USER);
			assert_string_equal(c.oauth_token, "");
		} else {
			snprintf(want, sizeof want, "password-file %s%s", path,
			    file_cases[i].message);
			assert_string_equal(err.msg, want);
			for (size_t j = 0; j < sizeof c; j++)
				assert_int_equal(((unsigned char *)&c)[j], 0);
		}
		auth_credentials_wipe(&c);
		for (size_t j = 0; j < sizeof c; j++)
			assert_int_equal(((unsigned char *)&c)[j], 0);
	}
}

static void
password_file_missing_and_too_long(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c;
	struct err err = { "" };
	char path[128], *big = xmalloc(AUTH_SECRET_MAX + 2);

	(void)state;
	snprintf(path, sizeof path, "%s/none", tmpdir);
	r.password_file = path;
	assert_int_equal(auth_credentials_load(&r, &c, &err), -1);
	assert_non_null(strstr(err.msg, "No such file or directory"));

	memset(big, 'a', AUTH_SECRET_MAX + 1);
	big[AUTH_SECRET_MAX + 1] = '\0';
	snprintf(path, sizeof path, "%s/big", tmpdir);
	write_file(path, big, 0600);
	assert_int_equal(auth_credentials_load(&r, &c, &err), -1);
	assert_non_null(strstr(err.msg, "the first line is longer than"));

	big[AUTH_SECRET_MAX - 1] = '\n';                         /* exactly the maximum */
	big[AUTH_SECRET_MAX] = '\0';
	write_file(path, big, 0600);
	assert_int_equal(auth_credentials_load(&r, &c, &err), 0);
	assert_int_equal(strlen(c.password), AUTH_SECRET_MAX - 1);
	free(big);
	auth_credentials_wipe(&c);
}

static void
command_output_limits(void **state)
{
	static const struct { const char *name; int chars; const char *end; int want; } cases[] = {
		{ "the maximum, LF", AUTH_SECRET_MAX - 1, "\\n", 0 },
		{ "the maximum, CRLF", AUTH_SECRET_MAX - 1, "\\r\\n", 0 },
		{ "the maximum, no line end", AUTH_SECRET_MAX - 1, "", 0 },
		{ "one more", AUTH_SECRET_MAX, "\\n", -1 },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct route r = route_for(NULL);
		struct auth_credentials c;
		struct err err = { "" };
		char cmd[128];
		int got;

		snprintf(cmd, sizeof cmd, "head -c %d /dev/zero | tr '\\0' a; printf '%s'",
		    cases[i].chars, cases[i].end);
		r.password_command = cmd;
		got = auth_credentials_load(&r, &c, &err);
		if (got != cases[i].want)
			fail_msg("%s: got %d (%s), want %d", cases[i].name, got, err.msg,
			    cases[i].want);
		if (got == 0)
			assert_int_equal(strlen(c.password), AUTH_SECRET_MAX - 1);
		else
			assert_non_null(strstr(err.msg, "printed a line longer than"));
		auth_credentials_wipe(&c);
	}
}

static const struct {
	const char *name;
	const char *password_command, *token_command;
	int want;
	const char *password, *token;    /* want 0 */
	const char *message;             /* want -1: the whole error */
} command_cases[] = {
	{ "first line, CRLF trimmed", "printf '%s\\r\\nmore\\n' " PASSWORD, NULL, 0, PASSWORD, "",
	    NULL },
	{ "stderr is not the password",
	    "echo '(stderr of a password-command: expected here)' >&2; echo " PASSWORD, NULL, 0,
	    PASSWORD, "", NULL },
	{ "lots of output after the line", "echo " PASSWORD "; seq 1 100000", NULL, 0, PASSWORD, "",
	    NULL },
	{ "stdin is empty", "read x; echo \"" PASSWORD "$x\"", NULL, 0, PASSWORD, "", NULL },
	{ "non-zero exit", "echo leaked-output; exit 3", NULL, -1, NULL, NULL,
	    "password-command exited with status 3" },
	{ "killed", "kill -9 $$", NULL, -1, NULL, NULL, "password-command was killed by signal 9" },
	{ "prints nothing", "true", NULL, -1, NULL, NULL, "password-command printed nothing" },
	{ "token", NULL, "echo " TOKEN, 0, "", TOKEN, NULL },
	{ "password and token", "echo " PASSWORD, "echo " TOKEN, 0, PASSWORD, TOKEN, NULL },
	{ "token command fails", NULL, "echo leaked; exit 1", -1, NULL, NULL,
	    "oauth-token-command exited with status 1" },
	{ "token with a space", NULL, "echo 'leaked token'", -1, NULL, NULL,
	    "oauth-token-command printed a token with spaces or control characters "
	    "(not an OAuth 2.0 bearer token)" },
};

static void
command_cases_each(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(command_cases); i++) {
		struct route r = route_for(NULL);
		struct auth_credentials c;
		struct err err = { "" };
		int got;

		r.password_command = (char *)command_cases[i].password_command;
		r.oauth_token_command = (char *)command_cases[i].token_command;
		got = auth_credentials_load(&r, &c, &err);
		if (got != command_cases[i].want)
			fail_msg("%s: got %d (%s), want %d", command_cases[i].name, got, err.msg,
			    command_cases[i].want);
		assert_no_secret(command_cases[i].name, err.msg);
		if (got == 0) {
			assert_string_equal(c.password, command_cases[i].password);
			assert_string_equal(c.oauth_token, command_cases[i].token);
		} else {
			assert_string_equal(err.msg, command_cases[i].message);
		}
		auth_credentials_wipe(&c);
	}
}

static void
command_timeout_kills(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c;
	struct err err = { "" };
	char pidfile[128], cmd[256], buf[32] = "";
	uint64_t t0 = now_ms(), elapsed;
	FILE *fp;

	(void)state;
	snprintf(pidfile, sizeof pidfile, "%s/sleeper", tmpdir);
	/* a grandchild that would keep the pipe open is killed with the group */
	snprintf(cmd, sizeof cmd, "sleep 60 & echo $! > %s; wait", pidfile);
	r.password_command = cmd;
	assert_int_equal(auth_credentials_load(&r, &c, &err), -1);
	elapsed = now_ms() - t0;
	assert_string_equal(err.msg, "password-command did not finish within 10 s; killed");
	assert_true(elapsed >= AUTH_COMMAND_TIMEOUT_MS - 100);
	assert_true(elapsed < AUTH_COMMAND_TIMEOUT_MS + 3000);
	assert_non_null(fp = fopen(pidfile, "r"));
	assert_non_null(fgets(buf, sizeof buf, fp));
	fclose(fp);
	usleep(200 * 1000);
	snprintf(pidfile, sizeof pidfile, "/proc/%d/stat", atoi(buf));
	if ((fp = fopen(pidfile, "r")) != NULL) {               /* gone, or a zombie */
		char stat[256] = "";

		assert_non_null(fgets(stat, sizeof stat, fp));
		fclose(fp);
		assert_non_null(strstr(stat, ") Z "));
	}
}

static void
password_from_route(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c;
	struct err err = { "" };

	(void)state;
	r.password = PASSWORD;
	assert_int_equal(auth_credentials_load(&r, &c, &err), 0);
	assert_string_equal(c.password, PASSWORD);
	assert_string_equal(c.user, USER);
	auth_credentials_wipe(&c);

	r.password = NULL;
	r.user = NULL;
	assert_int_equal(auth_credentials_load(&r, &c, &err), 0);
	assert_string_equal(c.user, "");
	assert_string_equal(c.password, "");
}

/* Credentials loaded from a command, used end to end. */
static void
command_credentials_authenticate(void **state)
{
	struct route r = route_for(NULL);
	struct auth_credentials c;
	struct err err = { "" };
	struct fake f;
	struct run_out o;

	(void)state;
	r.password_command = "echo " PASSWORD;
	assert_int_equal(auth_credentials_load(&r, &c, &err), 0);
	fake_init(&f, PASSWORD);
	run(&f, &r, &c, "SCRAM-SHA-256 PLAIN", NULL, true, &o);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.res.mech, "SCRAM-SHA-256");
	auth_credentials_wipe(&c);
	fake_done(&f);
}

/* LeakSanitizer: libgssglue/libgssapi_krb5 keep an allocation from the
 * GSSAPI attempt for the life of the process; not ours to free. */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libgssglue.so\nleak:libgssapi_krb5.so\n";
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_mechanism_right_and_wrong_password),
		cmocka_unit_test(plus_with_other_channel_is_refused),
		cmocka_unit_test(fallback_after_refusal),
		cmocka_unit_test(tempfail_stops),
		cmocka_unit_test(unproven_server_stops),
		cmocka_unit_test(gssapi_without_ticket_falls_back),
		cmocka_unit_test(long_initial_response_waits),
		cmocka_unit_test(io_error_stops),
		cmocka_unit_test(tls_without_binding),
		cmocka_unit_test(nothing_usable),
		cmocka_unit_test(echoed_password_is_masked),
		cmocka_unit_test(oauth_initial_responses),
		cmocka_unit_test(oauth_failure_answers_then_falls_back),
		cmocka_unit_test(choose_each_case),
		cmocka_unit_test(password_file_cases),
		cmocka_unit_test(password_file_missing_and_too_long),
		cmocka_unit_test(command_cases_each),
		cmocka_unit_test(command_output_limits),
		cmocka_unit_test(command_timeout_kills),
		cmocka_unit_test(password_from_route),
		cmocka_unit_test(command_credentials_authenticate),
	};

	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
