/* test_dsn.c - RFC 3461 parameters (xtext, ORCPT, NOTIFY), which
 * notifications are wanted, status codes, and the RFC 3464 message:
 * its structure, each field, RET, ORCPT/ENVID, the boundary, 8-bit and
 * UTF-8 originals, long lines.  Every message built here is also checked
 * for CRLF-only lines of at most 998 octets.  Dates are in UTC (TZ set in
 * main). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dsn.h"
#include "util.h"

#define N(a) (sizeof (a) / sizeof (a)[0])
#define S(lit) lit, sizeof(lit) - 1
#define ARRIVAL 1795489200          /* Tue, 24 Nov 2026 03:00:00 +0000 */
#define NOW     1795489500          /* 03:05:00 */
#define UNTIL   1795921200          /* Sun, 29 Nov 2026 03:00:00 +0000 */

/* --- xtext, ORCPT, NOTIFY ----------------------------------------------------------- */

static const struct {
	const char *name, *in;
	size_t len;
	const char *decoded;            /* NULL: not xtext */
} xtext_cases[] = {
	{ "empty",                S(""), "" },
	{ "plain",                S("abc123"), "abc123" },
	{ "every xchar",          S("!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~"), "!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~" },
	{ "hexchars",             S("a+2Bb+3Dc+20d"), "a+b=c d" },
	{ "encoded tilde",        S("+7E"), "~" },
	{ "'=' itself",           S("a=b"), NULL },
	{ "space itself",         S("a b"), NULL },
	{ "lower-case hex",       S("+2b"), NULL },
	{ "+ZZ",                  S("+ZZ"), NULL },
	{ "'+' at the end",       S("ab+"), NULL },
	{ "'+' and one digit",    S("ab+2"), NULL },
	{ "encoded CR",           S("+0D"), NULL },
	{ "encoded LF",           S("a+0Ab"), NULL },
	{ "encoded NUL",          S("+00"), NULL },
	{ "encoded DEL",          S("+7F"), NULL },
	{ "encoded 8-bit",        S("+C3+A4"), NULL },
	{ "raw 8-bit",            S("\xC3\xA4"), NULL },
	{ "raw control",          S("a\tb"), NULL },
	{ "raw NUL",              S("a\0b"), NULL },
};

static void
checks_and_decodes_xtext(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(xtext_cases); i++) {
		char out[64];
		bool ok = dsn_xtext_check(xtext_cases[i].in, xtext_cases[i].len);
		int n = dsn_xtext_decode(xtext_cases[i].in, xtext_cases[i].len, out, sizeof out);

		if (ok != (xtext_cases[i].decoded != NULL))
			fail_msg("%s: check %d, want %d", xtext_cases[i].name, ok, !ok);
		if (xtext_cases[i].decoded == NULL && n != -1)
			fail_msg("%s: decoded to \"%s\", want -1", xtext_cases[i].name, out);
		if (xtext_cases[i].decoded != NULL &&
		    (n != (int)strlen(xtext_cases[i].decoded) || strcmp(out, xtext_cases[i].decoded) != 0))
			fail_msg("%s: decoded %d \"%s\", want \"%s\"", xtext_cases[i].name, n, out,
			    xtext_cases[i].decoded);
	}
}

static void
decode_needs_room(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(dsn_xtext_decode(S("abc"), out, sizeof out), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(dsn_xtext_decode(S("abcd"), out, sizeof out), -1);
	assert_string_equal(out, "");
	assert_int_equal(dsn_xtext_decode(S("a+2Bc"), out, sizeof out), 3);
	assert_string_equal(out, "a+c");
	assert_int_equal(dsn_xtext_decode(S("ab+2Bc"), out, sizeof out), -1);
	assert_int_equal(dsn_xtext_decode(S("a"), out, 0), -1);
}

static const struct {
	const char *name, *in;
	bool want;
} orcpt_cases[] = {
	{ "rfc822",               "rfc822;bob@example.net", true },
	{ "upper-case type",      "RFC822;bob@example.net", true },
	{ "utf-8 type",           "utf-8;j\\x{F6}rg@example.net", true },
	{ "hexchars",             "rfc822;bob+2Btag@example.net", true },
	{ "any address",          "x400;/G+3DJoe/", true },
	{ "one-octet type",       "x;y", true },
	{ "no ';'",               "bob@example.net", false },
	{ "empty type",           ";bob@example.net", false },
	{ "empty address",        "rfc822;", false },
	{ "type not an atom",     "rfc 822;bob@example.net", false },
	{ "type with '('",        "rfc(822);bob@example.net", false },
	{ "bad xtext",            "rfc822;bob+2x@example.net", false },
	{ "second ';' is xtext",  "rfc822;a;b", true },
	{ "empty",                "", false },
};

static void
checks_orcpt(void **state)
{
	char long_ok[DSN_ORCPT_MAX + 2];

	(void)state;
	for (size_t i = 0; i < N(orcpt_cases); i++)
		if (dsn_orcpt_check(orcpt_cases[i].in, strlen(orcpt_cases[i].in)) != orcpt_cases[i].want)
			fail_msg("%s: got %d, want %d", orcpt_cases[i].name, !orcpt_cases[i].want,
			    orcpt_cases[i].want);
	memcpy(long_ok, "rfc822;", 7);
	memset(long_ok + 7, 'x', sizeof long_ok - 7);
	assert_true(dsn_orcpt_check(long_ok, DSN_ORCPT_MAX));
	assert_false(dsn_orcpt_check(long_ok, DSN_ORCPT_MAX + 1));
}

static const struct {
	const char *name, *in;
	int want;
	unsigned bits;
	const char *text;               /* dsn_notify_format of bits */
} notify_cases[] = {
	{ "NEVER",                "NEVER", 0, DSN_NOTIFY_NEVER, "never" },
	{ "never lower case",     "never", 0, DSN_NOTIFY_NEVER, "never" },
	{ "SUCCESS",              "SUCCESS", 0, DSN_NOTIFY_SUCCESS, "success" },
	{ "all three",            "DELAY,FAILURE,SUCCESS", 0,
	    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, "success,failure,delay" },
	{ "mixed case",           "Failure,dElAy", 0, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
	    "failure,delay" },
	{ "repeated",             "DELAY,DELAY", 0, DSN_NOTIFY_DELAY, "delay" },
	{ "NEVER twice",          "NEVER,NEVER", 0, DSN_NOTIFY_NEVER, "never" },
	{ "NEVER and more",       "NEVER,SUCCESS", -1, 0, "" },
	{ "more and NEVER",       "DELAY,NEVER", -1, 0, "" },
	{ "unknown",              "ALWAYS", -1, 0, "" },
	{ "prefix",               "SUCC", -1, 0, "" },
	{ "empty",                "", -1, 0, "" },
	{ "trailing comma",       "SUCCESS,", -1, 0, "" },
	{ "leading comma",        ",SUCCESS", -1, 0, "" },
	{ "space",                "SUCCESS, DELAY", -1, 0, "" },
};

static void
parses_and_formats_notify(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(notify_cases); i++) {
		unsigned bits = 0xdead;
		char text[DSN_NOTIFY_TEXT_MAX];
		int got = dsn_notify_parse(notify_cases[i].in, strlen(notify_cases[i].in), &bits);

		if (got != notify_cases[i].want)
			fail_msg("%s: got %d, want %d", notify_cases[i].name, got, notify_cases[i].want);
		if (got == 0 && bits != notify_cases[i].bits)
			fail_msg("%s: bits %#x, want %#x", notify_cases[i].name, bits,
			    notify_cases[i].bits);
		if (got < 0 && bits != 0xdead)
			fail_msg("%s: bits changed on error", notify_cases[i].name);
		if (got == 0 && strcmp(dsn_notify_format(bits, text, sizeof text),
		    notify_cases[i].text) != 0)
			fail_msg("%s: formatted \"%s\", want \"%s\"", notify_cases[i].name, text,
			    notify_cases[i].text);
	}
}

static void
formats_notify_edge_cases(void **state)
{
	char text[DSN_NOTIFY_TEXT_MAX], small[8];

	(void)state;
	assert_string_equal(dsn_notify_format(0, text, sizeof text), "");
	assert_string_equal(dsn_notify_format(DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY, text,
	    sizeof text), "never");
	assert_string_equal(dsn_notify_format(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY, small,
	    sizeof small), "success");
	assert_int_equal(strlen("success,failure,delay") + 1 <= DSN_NOTIFY_TEXT_MAX, 1);
}

/* --- which notifications, which status ------------------------------------------------- */

#define F DSN_NOTIFY_FAILURE
#define D DSN_NOTIFY_DELAY
#define OK DSN_NOTIFY_SUCCESS
static const struct {
	const char *sender;
	unsigned notify;
	bool failed, delayed, delivered, relayed;   /* wanted for each action */
} wanted_cases[] = {
	{ "a@b.example", 0,                true,  true,  false, false },
	{ "a@b.example", DSN_NOTIFY_NEVER, false, false, false, false },
	{ "a@b.example", F,                true,  false, false, false },
	{ "a@b.example", D,                false, true,  false, false },
	{ "a@b.example", OK,               false, false, true,  true },
	{ "a@b.example", F | D,            true,  true,  false, false },
	{ "a@b.example", F | D | OK,       true,  true,  true,  true },
	{ "",            0,                false, false, false, false },
	{ "",            F | D | OK,       false, false, false, false },
	{ NULL,          F,                false, false, false, false },
};

static void
wants_notifications_per_rfc3461(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(wanted_cases); i++) {
		bool want[] = { wanted_cases[i].failed, wanted_cases[i].delayed,
			wanted_cases[i].delivered, wanted_cases[i].relayed };

		for (int a = DSN_FAILED; a <= DSN_RELAYED; a++) {
			bool got = dsn_wanted(wanted_cases[i].sender, wanted_cases[i].notify,
			    (enum dsn_action)a);

			if (got != want[a])
				fail_msg("sender \"%s\" notify %#x %s: got %d, want %d",
				    wanted_cases[i].sender ? wanted_cases[i].sender : "(null)",
				    wanted_cases[i].notify, dsn_action_name((enum dsn_action)a), got,
				    want[a]);
		}
	}
}

static const struct {
	const char *reply;
	enum dsn_action action;
	const char *want;
} status_cases[] = {
	{ "550 5.1.1 <bob@example.net>: no such user", DSN_FAILED,    "5.1.1" },
	{ "550-5.1.1 first line of several",          DSN_FAILED,    "5.1.1" },
	{ "554 5.7.123 policy",                       DSN_FAILED,    "5.7.123" },
	{ "550 5.1.1",                                DSN_FAILED,    "5.1.1" },
	{ "550 no such user",                         DSN_FAILED,    "5.0.0" },
	{ "550",                                      DSN_FAILED,    "5.0.0" },
	{ "451 4.3.0 try again later",                DSN_FAILED,    "4.3.0" },   /* gave up */
	{ "451 try again later",                      DSN_FAILED,    "4.0.0" },
	{ "250 2.0.0 Ok",                             DSN_FAILED,    "5.0.0" },
	{ "connect to smtp.isp.example: refused",     DSN_FAILED,    "5.0.0" },
	{ NULL,                                       DSN_FAILED,    "5.0.0" },
	{ "",                                         DSN_FAILED,    "5.0.0" },
	{ "451 4.4.1 no answer",                      DSN_DELAYED,   "4.4.1" },
	{ "535 5.7.8 authentication failed",          DSN_DELAYED,   "4.7.8" },
	{ "550 relay denied",                         DSN_DELAYED,   "4.0.0" },
	{ "connection timed out",                     DSN_DELAYED,   "4.0.0" },
	{ "250 2.6.0 Ok: queued",                     DSN_DELIVERED, "2.6.0" },
	{ "250 Ok",                                   DSN_RELAYED,   "2.0.0" },
	{ NULL,                                       DSN_RELAYED,   "2.0.0" },
	/* not an enhanced code: fall back to the basic code */
	{ "550 5.1 short",                            DSN_FAILED,    "5.0.0" },
	{ "550 5.1.1234 detail too long",             DSN_FAILED,    "5.0.0" },
	{ "550 3.1.1 bad class",                      DSN_FAILED,    "5.0.0" },
	{ "550 5.1.1x glued",                         DSN_FAILED,    "5.0.0" },
	{ "550 5.1.",                                 DSN_FAILED,    "5.0.0" },
	{ "5501 5.1.1 four digits",                   DSN_FAILED,    "5.0.0" },
	{ "650 6.1.1 no such class",                  DSN_FAILED,    "5.0.0" },
	{ "55 short",                                 DSN_FAILED,    "5.0.0" },
};

static void
derives_status_codes(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(status_cases); i++) {
		char buf[DSN_STATUS_MAX];

		dsn_status_of(status_cases[i].reply, status_cases[i].action, buf, sizeof buf);
		if (strcmp(buf, status_cases[i].want) != 0)
			fail_msg("\"%s\" %s: got %s, want %s", status_cases[i].reply ?
			    status_cases[i].reply : "(null)", dsn_action_name(status_cases[i].action),
			    buf, status_cases[i].want);
	}
}

static void
names_actions(void **state)
{
	(void)state;
	assert_string_equal(dsn_action_name(DSN_FAILED), "failed");
	assert_string_equal(dsn_action_name(DSN_DELAYED), "delayed");
	assert_string_equal(dsn_action_name(DSN_DELIVERED), "delivered");
	assert_string_equal(dsn_action_name(DSN_RELAYED), "relayed");
}

/* --- the message: a small MIME reader for the tests --------------------------------------- */

struct dsn_out {
	char *text;
	size_t len;
	bool eight_bit;
	char boundary[128];
	char *parts[4];                 /* each part: its header, empty line, body */
	size_t nparts;
};

/* CRLF only, no NUL, no line over 998 octets, CRLF at the end. */
static void
assert_well_formed(const char *t, size_t len)
{
	size_t line = 0;

	if (len < 2 || t[len - 2] != '\r' || t[len - 1] != '\n')
		fail_msg("does not end with CRLF");
	for (size_t i = 0; i < len; i++) {
		if (t[i] == '\0')
			fail_msg("NUL at %zu", i);
		if (t[i] == '\r' && (i + 1 == len || t[i + 1] != '\n'))
			fail_msg("bare CR at %zu", i);
		if (t[i] == '\n' && (i == 0 || t[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
		if (t[i] == '\r')
			line = 0;
		else if (t[i] != '\n' && ++line > 998)
			fail_msg("line over 998 octets at %zu", i);
	}
}

/* The unfolded value of the first field `name` in the header that starts
 * at h (up to its empty line); caller frees; NULL when absent. */
static char *
field(const char *h, const char *name)
{
	size_t nlen = strlen(name);
	const char *end = strstr(h, "\r\n\r\n"), *p = h;

	if (end == NULL)
		end = h + strlen(h);
	while (p < end) {
		const char *eol = strstr(p, "\r\n");

		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			char *v = xmalloc((size_t)(end - p) + 1);
			size_t n = 0;

			for (const char *q = p + nlen + 1; q < end; q++) {
				if (q[0] == '\r' && q[1] == '\n' && (q[2] == ' ' || q[2] == '\t')) {
					q++;
					continue;
				}
				if (q[0] == '\r')
					break;
				v[n++] = *q;
			}
			v[n] = '\0';
			while (v[0] == ' ')
				memmove(v, v + 1, strlen(v));
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

static void
assert_field(const char *h, const char *name, const char *want)
{
	char *got = field(h, name);

	if (want == NULL && got != NULL)
		fail_msg("%s: got \"%s\", want none", name, got);
	if (want != NULL && (got == NULL || strcmp(got, want) != 0))
		fail_msg("%s: got \"%s\", want \"%s\"", name, got ? got : "(none)", want);
	free(got);
}

/* Does the text part say `phrase` (which may be wrapped over lines)? */
static bool
says(const char *part, const char *phrase)
{
	char *t = xstrdup(part), *q = t;
	bool found;

	for (const char *p = part; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			*q++ = ' ';
			p++;
		} else {
			*q++ = *p;
		}
	}
	*q = '\0';
	found = strstr(t, phrase) != NULL;
	free(t);
	return found;
}

static const char *
body_of(const char *part)
{
	const char *p = strstr(part, "\r\n\r\n");

	return p ? p + 4 : "";
}

/* Build, check well-formed, split at the boundary. */
static void
build(struct dsn_out *o, const struct dsn_report *r, const char *orig, size_t len)
{
	char *ct, *b, delim[140];
	const char *p;

	memset(o, 0, sizeof *o);
	o->text = dsn_format(r, orig, len, &o->len, &o->eight_bit);
	assert_int_equal(o->len, strlen(o->text));
	assert_well_formed(o->text, o->len);
	ct = field(o->text, "Content-Type");
	assert_non_null(ct);
	b = strstr(ct, "boundary=\"");
	if (strncmp(ct, "multipart/report; report-type=delivery-status;", 46) != 0 || b == NULL)
		fail_msg("Content-Type: %s", ct);
	b += 10;
	snprintf(o->boundary, sizeof o->boundary, "%.*s", (int)strcspn(b, "\""), b);
	free(ct);
	snprintf(delim, sizeof delim, "\r\n--%s", o->boundary);
	p = strstr(o->text, delim);
	assert_non_null(p);
	for (;;) {
		const char *start = p + strlen(delim), *next;

		if (strncmp(start, "--\r\n", 4) == 0) {
			assert_int_equal(start + 4 - o->text, o->len);  /* nothing after */
			break;
		}
		assert_true(strncmp(start, "\r\n", 2) == 0);
		start += 2;
		next = strstr(start, delim);
		assert_non_null(next);
		assert_true(o->nparts < N(o->parts));
		o->parts[o->nparts++] = xstrndup(start, (size_t)(next - start));
		p = next;
	}
	assert_int_equal(o->nparts, 3);
}

static void
out_free(struct dsn_out *o)
{
	free(o->text);
	for (size_t i = 0; i < o->nparts; i++)
		free(o->parts[i]);
}

/* The recipient blocks of part 2 (after the per-message block). */
static const char *
rcpt_block(const struct dsn_out *o, size_t k)
{
	const char *p = body_of(o->parts[1]);

	for (size_t i = 0; i <= k; i++) {
		p = strstr(p, "\r\n\r\n");
		assert_non_null(p);
		p += 4;
	}
	return p;
}

static const char ORIG[] =
    "Received: from client.lan.example (localhost [127.0.0.1])\r\n"
    "\tby mx.test.example (mailredir) with ESMTP id 0196A3F2C4E51A2B3C;\r\n"
    "\tTue, 24 Nov 2026 03:00:00 +0000\r\n"
    "From: Alice <alice@lan.example>\r\n"
    "To: bob@ext.example\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "body line 1\r\n"
    "body line 2\r\n";
#define ORIG_HEADER_LEN 230     /* through "Subject: hello\r\n" */

static struct dsn_report
report(const struct dsn_rcpt *rcpts, size_t n)
{
	return (struct dsn_report){
		.reporting_mta = "mx.test.example", .queue_id = "0196A3F2C4E51A2B3C",
		.to = "alice@lan.example", .arrival = ARRIVAL, .now = NOW,
		.will_retry_until = UNTIL, .rcpts = rcpts, .nrcpts = n,
	};
}

static const struct dsn_rcpt BOB_FAILED = {
	"bob@ext.example", NULL, DSN_FAILED, "550 5.1.1 <bob@ext.example>: no such user",
	"smtp.isp.example", NOW - 10,
};

/* --- the message: tests ---------------------------------------------------------------- */

static void
failure_for_one_recipient(void **state)
{
	struct dsn_report r = report(&BOB_FAILED, 1);
	struct dsn_out o;
	const char *text, *blk;

	(void)state;
	assert_int_equal(strlen(ORIG) - strlen(strstr(ORIG, "\r\n\r\n") + 2), ORIG_HEADER_LEN);
	build(&o, &r, S(ORIG));
	assert_false(o.eight_bit);
	assert_field(o.text, "From", "Mail Delivery System <MAILER-DAEMON@mx.test.example>");
	assert_field(o.text, "To", "<alice@lan.example>");
	assert_field(o.text, "Subject", "Undelivered Mail Returned to Sender");
	assert_field(o.text, "Date", "Tue, 24 Nov 2026 03:05:00 +0000");
	assert_field(o.text, "Message-ID", "<0196A3F2C4E51A2B3C.1795489500.failed@mx.test.example>");
	assert_field(o.text, "Auto-Submitted", "auto-replied");
	assert_field(o.text, "MIME-Version", "1.0");
	assert_field(o.text, "Content-Transfer-Encoding", NULL);
	assert_string_equal(o.boundary, "=_mailredir.0196A3F2C4E51A2B3C.1795489500.0");
	/* 1: for people */
	assert_field(o.parts[0], "Content-Type", "text/plain; charset=us-ascii");
	text = body_of(o.parts[0]);
	assert_true(says(text, "This is the mail relay at mx.test.example"));
	assert_true(says(text, "could not be delivered"));
	assert_non_null(strstr(text, "\r\n<bob@ext.example>\r\n    smtp.isp.example said: 550 5.1.1"
	    " <bob@ext.example>: no such user\r\n"));
	assert_true(says(text, "Your message is attached."));
	assert_non_null(strstr(text, "0196A3F2C4E51A2B3C"));
	/* 2: for programs */
	assert_field(o.parts[1], "Content-Type", "message/delivery-status");
	blk = body_of(o.parts[1]);
	assert_field(blk, "Reporting-MTA", "dns; mx.test.example");
	assert_field(blk, "X-Mailredir-Queue-ID", "0196A3F2C4E51A2B3C");
	assert_field(blk, "Arrival-Date", "Tue, 24 Nov 2026 03:00:00 +0000");
	assert_field(blk, "Original-Envelope-Id", NULL);
	blk = rcpt_block(&o, 0);
	assert_field(blk, "Original-Recipient", NULL);
	assert_field(blk, "Final-Recipient", "rfc822; bob@ext.example");
	assert_field(blk, "Action", "failed");
	assert_field(blk, "Status", "5.1.1");
	assert_field(blk, "Remote-MTA", "dns; smtp.isp.example");
	assert_field(blk, "Diagnostic-Code", "smtp; 550 5.1.1 <bob@ext.example>: no such user");
	assert_field(blk, "Last-Attempt-Date", "Tue, 24 Nov 2026 03:04:50 +0000");
	assert_field(blk, "Will-Retry-Until", NULL);
	assert_true(strncmp(blk, "Final-Recipient:", 16) == 0);
	/* 3: the message itself, unchanged */
	assert_field(o.parts[2], "Content-Type", "message/rfc822");
	assert_string_equal(body_of(o.parts[2]), ORIG);
	out_free(&o);
}

static void
failure_for_two_recipients(void **state)
{
	const struct dsn_rcpt rc[] = {
		BOB_FAILED,
		{ "carol@ext.example", "rfc822;Carol+2Bx@ext.example", DSN_FAILED,
		  "connection refused by smtp.isp.example:587", NULL, 0 },
	};
	struct dsn_report r = report(rc, 2);
	struct dsn_out o;
	const char *blk, *text;

	(void)state;
	build(&o, &r, S(ORIG));
	text = body_of(o.parts[0]);
	assert_non_null(strstr(text, "<bob@ext.example>"));
	assert_non_null(strstr(text, "\r\n<carol@ext.example>\r\n    connection refused by "
	    "smtp.isp.example:587\r\n"));
	blk = rcpt_block(&o, 0);
	assert_field(blk, "Final-Recipient", "rfc822; bob@ext.example");
	blk = rcpt_block(&o, 1);
	assert_true(strncmp(blk, "Original-Recipient:", 19) == 0);
	assert_field(blk, "Original-Recipient", "rfc822;Carol+x@ext.example");
	assert_field(blk, "Final-Recipient", "rfc822; carol@ext.example");
	assert_field(blk, "Action", "failed");
	assert_field(blk, "Status", "5.0.0");
	assert_field(blk, "Remote-MTA", NULL);
	assert_field(blk, "Diagnostic-Code", "X-mailredir; connection refused by "
	    "smtp.isp.example:587");
	assert_field(blk, "Last-Attempt-Date", NULL);
	assert_null(strstr(blk, "\r\n\r\n"));    /* the last block */
	out_free(&o);
}

static void
delay_warning(void **state)
{
	const struct dsn_rcpt rc = { "bob@ext.example", NULL, DSN_DELAYED,
		"451 4.3.0 Mailbox busy", "smtp.isp.example", NOW - 60 };
	struct dsn_report r = report(&rc, 1);
	struct dsn_out o;
	const char *blk, *text;

	(void)state;
	r.ret = DSN_RET_FULL;           /* RET is about failures: the header only */
	build(&o, &r, S(ORIG));
	assert_field(o.text, "Subject", "Delayed Mail (still being retried)");
	assert_field(o.text, "Message-ID", "<0196A3F2C4E51A2B3C.1795489500.delayed@mx.test.example>");
	text = body_of(o.parts[0]);
	assert_true(says(text, "not been delivered yet"));
	assert_true(says(text, "Sun, 29 Nov 2026 03:00:00 +0000"));
	assert_true(says(text, "The header of your message is attached."));
	blk = rcpt_block(&o, 0);
	assert_field(blk, "Action", "delayed");
	assert_field(blk, "Status", "4.3.0");
	assert_field(blk, "Will-Retry-Until", "Sun, 29 Nov 2026 03:00:00 +0000");
	assert_field(blk, "Diagnostic-Code", "smtp; 451 4.3.0 Mailbox busy");
	assert_field(o.parts[2], "Content-Type", "text/rfc822-headers");
	assert_int_equal(strlen(body_of(o.parts[2])), ORIG_HEADER_LEN);
	assert_memory_equal(body_of(o.parts[2]), ORIG, ORIG_HEADER_LEN);
	out_free(&o);
}

static void
success_report(void **state)
{
	const struct dsn_rcpt rc[] = {
		{ "bob@ext.example", NULL, DSN_RELAYED, "250 2.0.0 Ok: queued as 4711",
		  "smtp.isp.example", NOW },
		{ "dave@ext.example", NULL, DSN_DELIVERED, NULL, NULL, NOW },
	};
	struct dsn_report r = report(rc, 2);
	struct dsn_out o;
	const char *text;

	(void)state;
	build(&o, &r, S(ORIG));
	assert_field(o.text, "Subject", "Successful Mail Delivery Report");
	text = body_of(o.parts[0]);
	assert_true(says(text, "was delivered to the recipients below"));
	assert_true(says(text, "sends no delivery notifications"));
	assert_field(rcpt_block(&o, 0), "Action", "relayed");
	assert_field(rcpt_block(&o, 0), "Status", "2.0.0");
	assert_field(rcpt_block(&o, 1), "Action", "delivered");
	assert_field(rcpt_block(&o, 1), "Status", "2.0.0");
	assert_field(rcpt_block(&o, 1), "Diagnostic-Code", NULL);
	assert_field(o.parts[2], "Content-Type", "text/rfc822-headers");
	out_free(&o);
}

/* A report about several actions: one paragraph each, gravest first. */
static void
mixed_report_is_about_the_failure(void **state)
{
	const struct dsn_rcpt rc[] = {
		{ "ok@ext.example", NULL, DSN_RELAYED, NULL, NULL, NOW },
		{ "later@ext.example", NULL, DSN_DELAYED, "451 later", NULL, NOW },
		BOB_FAILED,
	};
	struct dsn_report r = report(rc, 3);
	struct dsn_out o;
	const char *text, *f, *d, *s;

	(void)state;
	build(&o, &r, S(ORIG));
	assert_field(o.text, "Subject", "Undelivered Mail Returned to Sender");
	text = body_of(o.parts[0]);
	f = strstr(text, "could not be delivered");
	d = strstr(text, "not been delivered yet");
	s = strstr(text, "sends no delivery notifications");
	assert_true(f != NULL && d != NULL && s != NULL && f < d && d < s);
	assert_field(rcpt_block(&o, 0), "Final-Recipient", "rfc822; ok@ext.example");
	assert_field(rcpt_block(&o, 1), "Status", "4.0.0");
	assert_field(rcpt_block(&o, 2), "Status", "5.1.1");
	assert_field(o.parts[2], "Content-Type", "message/rfc822");
	out_free(&o);
}

static void
ret_decides_what_comes_back(void **state)
{
	static const struct {
		const char *name;
		enum dsn_ret ret;
		size_t max;
		const char *type, *says;
		bool whole;
	} cases[] = {
		{ "RET not given",   DSN_RET_NONE, 0, "message/rfc822", "Your message is attached.", true },
		{ "RET=FULL",        DSN_RET_FULL, 0, "message/rfc822", "Your message is attached.", true },
		{ "RET=HDRS",        DSN_RET_HDRS, 0, "text/rfc822-headers",
		  "The header of your message is attached.", false },
		{ "FULL, fits",      DSN_RET_FULL, sizeof ORIG - 1, "message/rfc822",
		  "Your message is attached.", true },
		{ "FULL, too big",   DSN_RET_FULL, sizeof ORIG - 2, "text/rfc822-headers",
		  "too big to return in full", false },
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct dsn_report r = report(&BOB_FAILED, 1);
		struct dsn_out o;
		char *type;

		r.ret = cases[i].ret;
		r.return_max = cases[i].max;
		build(&o, &r, S(ORIG));
		type = field(o.parts[2], "Content-Type");
		if (strcmp(type, cases[i].type) != 0)
			fail_msg("%s: type %s, want %s", cases[i].name, type, cases[i].type);
		if (!says(body_of(o.parts[0]), cases[i].says))
			fail_msg("%s: text does not say \"%s\"", cases[i].name, cases[i].says);
		if (cases[i].whole ? strcmp(body_of(o.parts[2]), ORIG) != 0 :
		    strncmp(body_of(o.parts[2]), ORIG, ORIG_HEADER_LEN) != 0 ||
		    strlen(body_of(o.parts[2])) != ORIG_HEADER_LEN)
			fail_msg("%s: returned part \"%s\"", cases[i].name, body_of(o.parts[2]));
		free(type);
		out_free(&o);
	}
}

static void
envid_and_orcpt_are_decoded(void **state)
{
	struct dsn_rcpt rc = { "bob@ext.example", "utf-8;B+2Bb\\x{F6}b@ext.example",
		DSN_FAILED, "550 5.1.1 no", NULL, 0 };
	struct dsn_report r = report(&rc, 1);
	struct dsn_out o;

	(void)state;
	r.envid = "QQ+2B314+20159+3D";
	build(&o, &r, S(ORIG));
	assert_field(body_of(o.parts[1]), "Original-Envelope-Id", "QQ+314 159=");
	assert_field(rcpt_block(&o, 0), "Original-Recipient", "utf-8;B+b\\x{F6}b@ext.example");
	out_free(&o);
	/* values that do not decode (a damaged envelope) are left out */
	r.envid = "+ZZ";
	rc.orcpt = "rfc822;+0A";
	build(&o, &r, S(ORIG));
	assert_field(body_of(o.parts[1]), "Original-Envelope-Id", NULL);
	assert_field(rcpt_block(&o, 0), "Original-Recipient", NULL);
	out_free(&o);
}

/* The boundary must occur in no part: an original holding the first
 * choice gets the second. */
static void
boundary_avoids_the_original(void **state)
{
	struct dsn_report r = report(&BOB_FAILED, 1);
	char *orig = xasprintf("%s--=_mailredir.0196A3F2C4E51A2B3C.1795489500.0\r\n"
	    "=_mailredir.0196A3F2C4E51A2B3C.1795489500.1--\r\n", ORIG);
	struct dsn_out o;

	(void)state;
	build(&o, &r, orig, strlen(orig));
	assert_string_equal(o.boundary, "=_mailredir.0196A3F2C4E51A2B3C.1795489500.2");
	assert_string_equal(body_of(o.parts[2]), orig);
	out_free(&o);
	free(orig);
}

static void
eight_bit_original(void **state)
{
	static const char orig[] = "From: a@lan.example\r\nSubject: caf\xC3\xA9\r\n"
	    "\r\nna\xC3\xAFve\r\n";
	static const char body8[] = "From: a@lan.example\r\nSubject: x\r\n\r\nna\xC3\xAFve\r\n";
	struct dsn_report r = report(&BOB_FAILED, 1);
	struct dsn_out o;

	(void)state;
	/* 8-bit body, ASCII header: message/rfc822, 8bit */
	build(&o, &r, S(body8));
	assert_true(o.eight_bit);
	assert_field(o.text, "Content-Transfer-Encoding", "8bit");
	assert_field(o.parts[2], "Content-Type", "message/rfc822");
	assert_field(o.parts[2], "Content-Transfer-Encoding", "8bit");
	assert_field(o.parts[0], "Content-Transfer-Encoding", NULL);
	assert_string_equal(body_of(o.parts[2]), body8);
	out_free(&o);
	/* ...the header only: nothing 8-bit is left */
	r.ret = DSN_RET_HDRS;
	build(&o, &r, S(body8));
	assert_false(o.eight_bit);
	assert_field(o.parts[2], "Content-Transfer-Encoding", NULL);
	out_free(&o);
	/* UTF-8 in the header (SMTPUTF8): RFC 6532 types */
	build(&o, &r, S(orig));
	assert_true(o.eight_bit);
	assert_field(o.parts[2], "Content-Type", "message/global-headers");
	assert_field(o.parts[2], "Content-Transfer-Encoding", "8bit");
	out_free(&o);
	r.ret = DSN_RET_FULL;
	build(&o, &r, S(orig));
	assert_field(o.parts[2], "Content-Type", "message/global");
	out_free(&o);
}

static void
utf8_recipient_and_sender(void **state)
{
	const struct dsn_rcpt rc = { "j\xC3\xB6rg+x=y@b\xC3\xBC" "cher.example", NULL, DSN_FAILED,
		"550 5.1.1 unknown", NULL, 0 };
	struct dsn_report r = report(&rc, 1);
	struct dsn_out o;

	(void)state;
	r.ret = DSN_RET_HDRS;
	r.to = "al\xC3\xAF" "ce@lan.example";
	build(&o, &r, S(ORIG));
	assert_true(o.eight_bit);
	assert_field(o.text, "To", "<al\xC3\xAF" "ce@lan.example>");
	assert_field(o.parts[0], "Content-Type", "text/plain; charset=utf-8");
	assert_field(o.parts[0], "Content-Transfer-Encoding", "8bit");
	assert_non_null(strstr(body_of(o.parts[0]), "<j\xC3\xB6rg+x=y@b\xC3\xBC" "cher.example>"));
	/* the report stays 7-bit: RFC 6533 utf-8-addr-xtext */
	assert_field(rcpt_block(&o, 0), "Final-Recipient",
	    "utf-8; j\\x{F6}rg\\x{2B}x\\x{3D}y@b\\x{FC}cher.example");
	for (const char *p = o.parts[1]; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	out_free(&o);
}

/* Replies are shown as printable ASCII, long ones folded, a word longer
 * than a line split: no line passes 998 octets (build checks). */
static void
replies_are_cleaned_and_folded(void **state)
{
	struct dsn_rcpt rc = BOB_FAILED;
	struct dsn_report r = report(&rc, 1);
	char *long_word = xmalloc(3001), *long_words = xmalloc(4001), *got;
	struct dsn_out o;

	(void)state;
	rc.reply = "550 5.7.1 bad\r\nSubject: injected\x01\xC3\xA9";
	build(&o, &r, S(ORIG));
	assert_field(rcpt_block(&o, 0), "Diagnostic-Code", "smtp; 550 5.7.1 bad Subject: injected???");
	assert_field(rcpt_block(&o, 0), "Subject", NULL);
	out_free(&o);

	memcpy(long_word, "550 ", 4);
	memset(long_word + 4, 'w', 2996);
	long_word[3000] = '\0';
	rc.reply = long_word;
	build(&o, &r, S(ORIG));
	got = field(rcpt_block(&o, 0), "Diagnostic-Code");
	/* the fold before the word adds nothing; each split of it adds a space */
	assert_int_equal(strlen(got), strlen("smtp; ") + 3000 + 3);
	free(got);
	out_free(&o);

	for (size_t i = 0; i < 4000; i++)
		long_words[i] = i % 10 == 9 ? ' ' : 'a';
	memcpy(long_words, "550 ", 4);
	long_words[4000] = '\0';
	rc.reply = long_words;
	build(&o, &r, S(ORIG));
	for (const char *p = rcpt_block(&o, 0); *p; p = strstr(p, "\r\n") + 2)
		assert_true(strcspn(p, "\r") <= 80);
	out_free(&o);
	free(long_word);
	free(long_words);
}

/* A damaged original still gives a well-formed notification (build
 * checks): line ends made CRLF, NUL shown as '?', overlong lines cut. */
static void
damaged_original(void **state)
{
	static const char bare[] = "From: a@lan.example\nSubject: x\r\n\r\nline\rnext\nlast";
	static const char nul[] = "From: a@lan.example\r\n\r\nnul\0here\r\n";
	struct dsn_report r = report(&BOB_FAILED, 1);
	char *orig = xmalloc(3000);
	struct dsn_out o;
	size_t n = sizeof nul - 1;

	(void)state;
	build(&o, &r, S(bare));
	assert_string_equal(body_of(o.parts[2]),
	    "From: a@lan.example\r\nSubject: x\r\n\r\nline\r\nnext\r\nlast\r\n");
	out_free(&o);

	memcpy(orig, nul, n);
	memset(orig + n, 'x', 1500);
	memcpy(orig + n + 1500, "\r\n", 2);
	n += 1502;
	build(&o, &r, orig, n);
	assert_non_null(strstr(body_of(o.parts[2]), "nul?here\r\n"));
	assert_true(says(body_of(o.parts[0]), "Lines longer than 998 octets were cut short"));
	out_free(&o);
	free(orig);
}

/* An original without a header (or an empty one) is returned as is. */
static void
odd_originals(void **state)
{
	struct dsn_report r = report(&BOB_FAILED, 1);
	struct dsn_out o;

	(void)state;
	build(&o, &r, "", 0);
	assert_string_equal(body_of(o.parts[2]), "");
	out_free(&o);
	r.ret = DSN_RET_HDRS;
	build(&o, &r, S("not a header line\r\nbody\r\n"));
	assert_string_equal(body_of(o.parts[2]), "");
	out_free(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checks_and_decodes_xtext),
		cmocka_unit_test(decode_needs_room),
		cmocka_unit_test(checks_orcpt),
		cmocka_unit_test(parses_and_formats_notify),
		cmocka_unit_test(formats_notify_edge_cases),
		cmocka_unit_test(wants_notifications_per_rfc3461),
		cmocka_unit_test(derives_status_codes),
		cmocka_unit_test(names_actions),
		cmocka_unit_test(failure_for_one_recipient),
		cmocka_unit_test(failure_for_two_recipients),
		cmocka_unit_test(delay_warning),
		cmocka_unit_test(success_report),
		cmocka_unit_test(mixed_report_is_about_the_failure),
		cmocka_unit_test(ret_decides_what_comes_back),
		cmocka_unit_test(envid_and_orcpt_are_decoded),
		cmocka_unit_test(boundary_avoids_the_original),
		cmocka_unit_test(eight_bit_original),
		cmocka_unit_test(utf8_recipient_and_sender),
		cmocka_unit_test(replies_are_cleaned_and_folded),
		cmocka_unit_test(damaged_original),
		cmocka_unit_test(odd_originals),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
