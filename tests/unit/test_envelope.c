/* test_envelope.c - the envelope file format: every key (the DSN ones
 * too), every error, the round trip format -> parse -> format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "util.h"

#define HEAD "version 1\nid 0196A3F2C4E51A2B3C\ncreated 1795489200\nsender alice@lan.example\n"
#define RCPT "rcpt bob@example.net\n"

/* --- helpers ------------------------------------------------------------- */

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

#define SHOW(s) ((s) ? (s) : "(null)")

/* Compare every field; say which differs, with got and want. */
static void
assert_envelope_equal(const struct envelope *got, const struct envelope *want)
{
	if (strcmp(got->id, want->id) != 0)
		fail_msg("id: got %s, want %s", got->id, want->id);
	if (got->created != want->created)
		fail_msg("created: got %lld, want %lld", (long long)got->created, (long long)want->created);
	if (!str_eq(got->sender, want->sender))
		fail_msg("sender: got %s, want %s", SHOW(got->sender), SHOW(want->sender));
	if (got->origin != want->origin)
		fail_msg("origin: got %d, want %d", got->origin, want->origin);
	if (!str_eq(got->client_addr, want->client_addr))
		fail_msg("client_addr: got %s, want %s", SHOW(got->client_addr), SHOW(want->client_addr));
	if (!str_eq(got->client_name, want->client_name))
		fail_msg("client_name: got %s, want %s", SHOW(got->client_name), SHOW(want->client_name));
	if (!str_eq(got->helo, want->helo))
		fail_msg("helo: got %s, want %s", SHOW(got->helo), SHOW(want->helo));
	if (got->uid != want->uid)
		fail_msg("uid: got %ld, want %ld", got->uid, want->uid);
	if (got->size != want->size)
		fail_msg("size: got %llu, want %llu", (unsigned long long)got->size,
		    (unsigned long long)want->size);
	if (got->body != want->body)
		fail_msg("body: got %d, want %d", got->body, want->body);
	if (got->smtputf8 != want->smtputf8)
		fail_msg("smtputf8: got %d, want %d", got->smtputf8, want->smtputf8);
	if (got->attempts != want->attempts)
		fail_msg("attempts: got %u, want %u", got->attempts, want->attempts);
	if (got->next_try != want->next_try || got->last_try != want->last_try)
		fail_msg("next/last-try: got %lld/%lld, want %lld/%lld", (long long)got->next_try,
		    (long long)got->last_try, (long long)want->next_try, (long long)want->last_try);
	if (!str_eq(got->last_reply, want->last_reply))
		fail_msg("last_reply: got %s, want %s", SHOW(got->last_reply), SHOW(want->last_reply));
	if (got->ret != want->ret || got->delay_warned != want->delay_warned)
		fail_msg("ret/delay_warned: got %d/%d, want %d/%d", got->ret, got->delay_warned,
		    want->ret, want->delay_warned);
	if (!str_eq(got->envid, want->envid) || !str_eq(got->route, want->route))
		fail_msg("envid/route: got %s/%s, want %s/%s", SHOW(got->envid), SHOW(got->route),
		    SHOW(want->envid), SHOW(want->route));
	if (strcmp(got->content_sha256, want->content_sha256) != 0)
		fail_msg("content_sha256: got %s, want %s", got->content_sha256, want->content_sha256);
	if (got->nrcpts != want->nrcpts)
		fail_msg("nrcpts: got %zu, want %zu", got->nrcpts, want->nrcpts);
	for (size_t i = 0; i < got->nrcpts; i++) {
		const struct envelope_rcpt *g = &got->rcpts[i], *w = &want->rcpts[i];

		if (!str_eq(g->address, w->address) || g->status != w->status ||
		    !str_eq(g->route, w->route) || !str_eq(g->reply, w->reply))
			fail_msg("rcpt %zu: got %s/%s/%s/%s, want %s/%s/%s/%s", i,
			    SHOW(g->address), rcpt_status_name(g->status), SHOW(g->route), SHOW(g->reply),
			    SHOW(w->address), rcpt_status_name(w->status), SHOW(w->route), SHOW(w->reply));
		if (g->notify != w->notify || !str_eq(g->orcpt, w->orcpt))
			fail_msg("rcpt %zu: notify/orcpt %#x/%s, want %#x/%s", i, g->notify,
			    SHOW(g->orcpt), w->notify, SHOW(w->orcpt));
	}
}

static void
fill_full(struct envelope *e)
{
	struct envelope_rcpt *r;

	envelope_init(e);
	strlcopy(e->id, "0196A3F2C4E51A2B3C", sizeof e->id);
	e->created = 1795489200;
	e->sender = xstrdup("alice@lan.example");
	e->origin = ORIGIN_SENDMAIL;
	e->client_addr = xstrdup("local");
	e->client_name = xstrdup("localhost");
	e->helo = xstrdup("client.lan.example");
	e->uid = 1000;
	e->size = 1234;
	e->body = BODY_8BITMIME;
	e->smtputf8 = true;
	e->attempts = 3;
	e->next_try = 1795490000;
	e->last_try = 1795489900;
	e->last_reply = xstrdup("451 4.3.0 try again later");
	e->ret = DSN_RET_HDRS;
	e->envid = xstrdup("QQ+2B314159");
	e->route = xstrdup("isp-2.backup_x");
	e->delay_warned = true;
	r = envelope_add_rcpt(e, "bob@example.net");
	r->notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	r->orcpt = xstrdup("rfc822;bob+2Btag@example.net");
	r = envelope_add_rcpt(e, "jörg@bücher.example");
	r->status = RCPT_SENT;
	r->route = xstrdup("isp");
	r->reply = xstrdup("250 2.0.0 Ok: queued as 1234");
	r->notify = DSN_NOTIFY_NEVER;
	r->orcpt = xstrdup("utf-8;j\\x{F6}rg@b\\x{FC}cher.example");
	r = envelope_add_rcpt(e, "postmaster");
	r->status = RCPT_DEFERRED;
	r->reply = xstrdup("");
	r->notify = DSN_NOTIFY_DELAY;
	r = envelope_add_rcpt(e, "\"odd user\"@[192.0.2.1]");
	r->status = RCPT_FAILED;
	r->route = xstrdup("backup");
	strlcopy(e->content_sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	    sizeof e->content_sha256);
}

/* --- round trips ---------------------------------------------------------- */

static void
round_trip_keeps_every_field(void **state)
{
	struct envelope e, back;
	struct err err = { "" };
	char *text, *again;
	size_t len, len2;

	(void)state;
	fill_full(&e);
	text = envelope_format(&e, &len);
	assert_int_equal(len, strlen(text));
	if (envelope_parse(text, len, &back, &err) < 0)
		fail_msg("parse of formatted text: %s\n%s", err.msg, text);
	assert_envelope_equal(&back, &e);
	again = envelope_format(&back, &len2);
	if (len2 != len || strcmp(again, text) != 0)
		fail_msg("format after round trip differs:\ngot\n%s\nwant\n%s", again, text);
	free(text);
	free(again);
	envelope_clear(&e);
	envelope_clear(&back);
}

static void
round_trip_of_a_minimal_envelope(void **state)
{
	struct envelope e, back;
	struct err err = { "" };
	char *text;
	size_t len;

	(void)state;
	envelope_init(&e);
	strlcopy(e.id, "0", sizeof e.id);
	e.sender = xstrdup("");
	envelope_add_rcpt(&e, "a@b.example");
	text = envelope_format(&e, &len);
	assert_non_null(strstr(text, "sender <>\n"));
	assert_null(strstr(text, "helo"));
	if (envelope_parse(text, len, &back, &err) < 0)
		fail_msg("%s\n%s", err.msg, text);
	assert_envelope_equal(&back, &e);
	assert_int_equal(back.uid, -1);
	free(text);
	envelope_clear(&e);
	envelope_clear(&back);
}

/* The documented example, as written in envelope.h. */
static void
parses_every_key(void **state)
{
	static const char text[] =
	    "version 1\n"
	    "id 0196A3F2C4E51A2B3C\n"
	    "created 1795489200\n"
	    "sender alice@lan.example\n"
	    "origin smtp\n"
	    "client-addr 127.0.0.1\n"
	    "client-name localhost\n"
	    "helo client.lan.example\n"
	    "uid -1\n"
	    "size 1234\n"
	    "body 8bitmime\n"
	    "smtputf8 no\n"
	    "attempts 2\n"
	    "next-try 1795489800\n"
	    "last-try 1795489500\n"
	    "last-reply 451 4.3.0 Mailbox busy\n"
	    "ret hdrs\n"
	    "envid QQ+2B1234\n"
	    "route isp\n"
	    "delay-warned yes\n"
	    "rcpt bob@example.net\n"
	    "rcpt-status deferred\n"
	    "rcpt-route isp\n"
	    "rcpt-reply 451 4.3.0 Mailbox busy\n"
	    "rcpt-notify failure,delay\n"
	    "rcpt-orcpt rfc822;bob@example.net\n"
	    "rcpt-reply-x-never 1\n";
	struct envelope e;
	struct err err = { "" };

	(void)state;
	/* The last line is unknown: first check it fails there... */
	assert_int_equal(envelope_parse(text, sizeof text - 1, &e, &err), -1);
	assert_string_equal(err.msg, "line 27: unknown key \"rcpt-reply-x-never\"");
	/* ...then parse without it. */
	if (envelope_parse(text, strstr(text, "rcpt-reply-x") - text, &e, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(e.id, "0196A3F2C4E51A2B3C");
	assert_int_equal(e.created, 1795489200);
	assert_string_equal(e.sender, "alice@lan.example");
	assert_int_equal(e.origin, ORIGIN_SMTP);
	assert_string_equal(e.client_addr, "127.0.0.1");
	assert_string_equal(e.client_name, "localhost");
	assert_string_equal(e.helo, "client.lan.example");
	assert_int_equal(e.uid, -1);
	assert_int_equal(e.size, 1234);
	assert_int_equal(e.body, BODY_8BITMIME);
	assert_false(e.smtputf8);
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next_try, 1795489800);
	assert_int_equal(e.last_try, 1795489500);
	assert_string_equal(e.last_reply, "451 4.3.0 Mailbox busy");
	assert_int_equal(e.nrcpts, 1);
	assert_string_equal(e.rcpts[0].address, "bob@example.net");
	assert_int_equal(e.rcpts[0].status, RCPT_DEFERRED);
	assert_string_equal(e.rcpts[0].route, "isp");
	assert_string_equal(e.rcpts[0].reply, "451 4.3.0 Mailbox busy");
	assert_int_equal(e.ret, DSN_RET_HDRS);
	assert_string_equal(e.envid, "QQ+2B1234");
	assert_string_equal(e.route, "isp");
	assert_true(e.delay_warned);
	assert_int_equal(e.rcpts[0].notify, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_string_equal(e.rcpts[0].orcpt, "rfc822;bob@example.net");
	assert_string_equal(envelope_queue_state(&e), "deferred");
	envelope_clear(&e);
}

/* Values and what they parse to, one key at a time (after HEAD + RCPT). */
static const struct {
	const char *name, *line;
	size_t offset;           /* offsetof the field in struct envelope */
	long long want;
} number_cases[] = {
	{ "uid",            "uid 0\n",                offsetof(struct envelope, uid),      0 },
	{ "uid max",        "uid 4294967294\n",       offsetof(struct envelope, uid),      4294967294LL },
	{ "size zero",      "size 0\n",               offsetof(struct envelope, size),     0 },
	{ "size large",     "size 9223372036854775807\n", offsetof(struct envelope, size), INT64_MAX },
	{ "attempts max",   "attempts 4294967295\n",  offsetof(struct envelope, attempts), 4294967295LL },
	{ "next-try",       "next-try 1\n",           offsetof(struct envelope, next_try), 1 },
	{ "last-try",       "last-try 9223372036854775807\n", offsetof(struct envelope, last_try), INT64_MAX },
};

static long long
field_value(const struct envelope *e, size_t offset)
{
	if (offset == offsetof(struct envelope, uid))
		return e->uid;
	if (offset == offsetof(struct envelope, size))
		return (long long)e->size;
	if (offset == offsetof(struct envelope, attempts))
		return e->attempts;
	if (offset == offsetof(struct envelope, next_try))
		return e->next_try;
	return e->last_try;
}

static void
parses_each_number(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof number_cases / sizeof number_cases[0]; i++) {
		char *text = xasprintf("%s%s%s", HEAD, number_cases[i].line, RCPT);
		struct envelope e;
		struct err err = { "" };

		if (envelope_parse(text, strlen(text), &e, &err) < 0)
			fail_msg("%s: got error %s, want %lld", number_cases[i].name, err.msg,
			    number_cases[i].want);
		if (field_value(&e, number_cases[i].offset) != number_cases[i].want)
			fail_msg("%s: got %lld, want %lld", number_cases[i].name,
			    field_value(&e, number_cases[i].offset), number_cases[i].want);
		envelope_clear(&e);
		free(text);
	}
}

static void
parses_names_and_special_addresses(void **state)
{
	static const char text[] = "version 1\nid 00FF\ncreated 0\nsender <>\n"
	    "origin sendmail\nbody 7bit\nsmtputf8 yes\n"
	    "rcpt Postmaster\nrcpt-status sent\n"
	    "rcpt jörg@bücher.example\nrcpt-status failed\n"
	    "rcpt c@d.example\nrcpt-status pending\n"
	    "rcpt-route \nrcpt-reply \n";
	struct envelope e;
	struct err err = { "" };

	(void)state;
	if (envelope_parse(text, sizeof text - 1, &e, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(e.sender, "");
	assert_int_equal(e.origin, ORIGIN_SENDMAIL);
	assert_int_equal(e.body, BODY_7BIT);
	assert_true(e.smtputf8);
	assert_int_equal(e.nrcpts, 3);
	assert_string_equal(e.rcpts[0].address, "Postmaster");
	assert_int_equal(e.rcpts[0].status, RCPT_SENT);
	assert_null(e.rcpts[0].route);
	assert_int_equal(e.rcpts[1].status, RCPT_FAILED);
	assert_int_equal(e.rcpts[2].status, RCPT_PENDING);
	assert_string_equal(e.rcpts[2].route, "");
	assert_string_equal(e.rcpts[2].reply, "");
	assert_string_equal(envelope_queue_state(&e), "queued");
	envelope_clear(&e);
}

/* --- errors ----------------------------------------------------------------- */

#define CASE(name, text, want) { name, text, sizeof text - 1, want }
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const struct {
	const char *name, *text;
	size_t len;
	const char *want;          /* the error starts with this */
} error_cases[] = {
	CASE("empty file",            "", "no version line"),
	CASE("unknown key",           HEAD "colour blue\n" RCPT, "line 5: unknown key \"colour\""),
	CASE("unknown key, no value", HEAD "colour\n" RCPT, "line 5: unknown key \"colour\""),
	CASE("key case matters",      HEAD "HELO x\n" RCPT, "line 5: unknown key \"HELO\""),
	CASE("control char in key",   HEAD "he\001lo x\n" RCPT, "line 5: unknown key \"he?lo\""),
	CASE("no value",              HEAD "helo\n" RCPT, "line 5: no value for helo"),
	CASE("missing version",       "id 01\ncreated 0\nsender <>\n" RCPT, "no version line"),
	CASE("missing id",            "version 1\ncreated 0\nsender <>\n" RCPT, "no id line"),
	CASE("missing created",       "version 1\nid 01\nsender <>\n" RCPT, "no created line"),
	CASE("missing sender",        "version 1\nid 01\ncreated 0\n" RCPT, "no sender line"),
	CASE("missing rcpt",          HEAD, "no rcpt line"),
	CASE("duplicate sender",      HEAD "sender c@d.example\n" RCPT, "line 5: duplicate sender"),
	CASE("duplicate version",     "version 1\n" HEAD RCPT, "line 2: duplicate version"),
	CASE("duplicate helo",        HEAD "helo a\nhelo a\n" RCPT, "line 6: duplicate helo"),
	CASE("duplicate last-reply",  HEAD "last-reply a\nlast-reply b\n" RCPT, "line 6: duplicate last-reply"),
	CASE("duplicate rcpt-status", HEAD RCPT "rcpt-status sent\nrcpt-status sent\n",
	    "line 7: duplicate rcpt-status for one rcpt"),
	CASE("duplicate rcpt-route",  HEAD RCPT "rcpt-route a\nrcpt-route a\n",
	    "line 7: duplicate rcpt-route for one rcpt"),
	CASE("rcpt-status before rcpt", HEAD "rcpt-status sent\n" RCPT, "line 5: rcpt-status before any rcpt"),
	CASE("rcpt-reply before rcpt",  HEAD "rcpt-reply 250 ok\n" RCPT, "line 5: rcpt-reply before any rcpt"),
	CASE("rcpt-route before rcpt",  HEAD "rcpt-route isp\n" RCPT, "line 5: rcpt-route before any rcpt"),
	CASE("unsupported version",   "version 2\n", "line 1: unsupported version (want 1)"),
	CASE("version 01",            "version 01\n", "line 1: unsupported version (want 1)"),
	CASE("lower-case id",         "version 1\nid 0196a3\n", "line 2: bad id value"),
	CASE("empty id",              "version 1\nid \n", "line 2: bad id value"),
	CASE("id too long",           "version 1\nid 0123456789ABCDEF0123456789ABCDEF0\n", "line 2: bad id value"),
	CASE("id with a slash",       "version 1\nid ../x\n", "line 2: bad id value"),
	CASE("created not a number",  "version 1\ncreated soon\n", "line 2: bad created value"),
	CASE("created negative",      "version 1\ncreated -5\n", "line 2: bad created value"),
	CASE("created with plus",     "version 1\ncreated +5\n", "line 2: bad created value"),
	CASE("created leading zero",  "version 1\ncreated 007\n", "line 2: bad created value"),
	CASE("created overflow",      "version 1\ncreated 9223372036854775808\n", "line 2: bad created value"),
	CASE("created empty",         "version 1\ncreated \n", "line 2: bad created value"),
	CASE("created trailing space","version 1\ncreated 5 \n", "line 2: bad created value"),
	CASE("uid -2",                "uid -2\n", "line 1: bad uid value"),
	CASE("uid too big",           "uid 4294967295\n", "line 1: bad uid value"),
	CASE("size overflow",         "size 18446744073709551616\n", "line 1: bad size value"),
	CASE("size hex",              "size 0x10\n", "line 1: bad size value"),
	CASE("attempts overflow",     "attempts 4294967296\n", "line 1: bad attempts value"),
	CASE("next-try negative",     "next-try -1\n", "line 1: bad next-try value"),
	CASE("last-try junk",         "last-try 12a\n", "line 1: bad last-try value"),
	CASE("bad origin",            "origin pigeon\n", "line 1: bad origin value"),
	CASE("bad body",              "body binarymime\n", "line 1: bad body value"),
	CASE("bad smtputf8",          "smtputf8 Yes\n", "line 1: bad smtputf8 value"),
	CASE("bad status",            HEAD RCPT "rcpt-status maybe\n", "line 6: bad rcpt-status value"),
	CASE("status in upper case",  HEAD RCPT "rcpt-status SENT\n", "line 6: bad rcpt-status value"),
	CASE("sender without domain", "version 1\nsender alice\n", "line 2: bad sender address: "),
	CASE("sender postmaster",     "version 1\nsender postmaster\n", "line 2: bad sender address: "),
	CASE("sender empty",          "version 1\nsender \n", "line 2: bad sender address: "),
	CASE("sender in brackets",    "version 1\nsender <a@b.example>\n", "line 2: bad sender address: "),
	CASE("rcpt <>",               HEAD "rcpt <>\n", "line 5: bad rcpt address: "),
	CASE("rcpt bad domain",       HEAD "rcpt bob@-x-.example\n", "line 5: bad rcpt address: "),
	CASE("rcpt with space",       HEAD "rcpt bob @example.net\n", "line 5: bad rcpt address: "),
	CASE("8-bit rcpt, no smtputf8", HEAD "rcpt jörg@example.net\n", "line 5: 8-bit address without smtputf8 yes"),
	CASE("8-bit sender, smtputf8 no", "version 1\nid 01\ncreated 0\nsender jörg@example.net\n"
	    "smtputf8 no\n" RCPT, "line 4: 8-bit address without smtputf8 yes"),
	CASE("malformed UTF-8",       HEAD "smtputf8 yes\nrcpt j\xC3@example.net\n", "line 6: bad rcpt address: "),
	CASE("CR in value",           HEAD "helo x\r\n" RCPT, "line 5: CR in value"),
	CASE("CRLF line ends",        "version 1\r\n", "line 1: CR in value"),
	CASE("NUL in value",          HEAD "helo a\0b\n" RCPT, "line 5: NUL in value"),
	CASE("NUL in sender",         "version 1\nsender a\0@b.example\n", "line 2: NUL in value"),
	CASE("tab in value",          HEAD "last-reply 250\tok\n" RCPT, "line 5: control character in value"),
	CASE("DEL in value",          HEAD "helo a\177\n" RCPT, "line 5: control character in value"),
	CASE("escape in reply",       HEAD RCPT "rcpt-reply 250 \033[2J\n", "line 6: control character in value"),
	CASE("empty line",            HEAD "\n" RCPT, "line 5: empty line"),
	CASE("no newline at the end", HEAD "rcpt bob@example.net", "line 5: no newline at the end"),
	CASE("two spaces",            "version  1\n", "line 1: unsupported version"),
	CASE("a line after the seal", HEAD "content-sha256 " SHA "\n" RCPT,
	    "line 6: a line after content-sha256"),
	CASE("seal too short",        HEAD RCPT "content-sha256 9f86d0\n", "line 6: bad content-sha256"),
	CASE("bad ret",               HEAD "ret FULL\n" RCPT, "line 5: bad ret value"),
	CASE("ret empty",             HEAD "ret \n" RCPT, "line 5: bad ret value"),
	CASE("ret none",              HEAD "ret none\n" RCPT, "line 5: bad ret value"),
	CASE("duplicate ret",         HEAD "ret full\nret full\n" RCPT, "line 6: duplicate ret"),
	CASE("envid empty",           HEAD "envid \n" RCPT, "line 5: bad envid value"),
	CASE("envid bad xtext",       HEAD "envid +ZZ\n" RCPT, "line 5: bad envid value"),
	CASE("envid lower-case hex",  HEAD "envid a+2b\n" RCPT, "line 5: bad envid value"),
	CASE("envid encoded LF",      HEAD "envid a+0A\n" RCPT, "line 5: bad envid value"),
	CASE("envid with '='",        HEAD "envid a=b\n" RCPT, "line 5: bad envid value"),
	CASE("envid with a space",    HEAD "envid a b\n" RCPT, "line 5: bad envid value"),
	CASE("envid 8-bit",           HEAD "envid \xC3\xA4\n" RCPT, "line 5: bad envid value"),
	CASE("envid of 101",          HEAD "envid " "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789" "012345678901234567890\n" RCPT,
	    "line 5: bad envid value"),
	CASE("duplicate envid",       HEAD "envid a\nenvid a\n" RCPT, "line 6: duplicate envid"),
	CASE("route empty",           HEAD "route \n" RCPT, "line 5: bad route value"),
	CASE("route two words",       HEAD "route isp backup\n" RCPT, "line 5: bad route value"),
	CASE("route with a slash",    HEAD "route ../isp\n" RCPT, "line 5: bad route value"),
	CASE("duplicate route",       HEAD "route a\nroute b\n" RCPT, "line 6: duplicate route"),
	CASE("bad delay-warned",      HEAD "delay-warned maybe\n" RCPT, "line 5: bad delay-warned value"),
	CASE("delay-warned Yes",      HEAD "delay-warned Yes\n" RCPT, "line 5: bad delay-warned value"),
	CASE("rcpt-notify never+success", HEAD RCPT "rcpt-notify never,success\n",
	    "line 6: bad rcpt-notify value"),
	CASE("rcpt-notify upper case", HEAD RCPT "rcpt-notify FAILURE\n", "line 6: bad rcpt-notify value"),
	CASE("rcpt-notify unknown",   HEAD RCPT "rcpt-notify always\n", "line 6: bad rcpt-notify value"),
	CASE("rcpt-notify empty",     HEAD RCPT "rcpt-notify \n", "line 6: bad rcpt-notify value"),
	CASE("rcpt-notify spaces",    HEAD RCPT "rcpt-notify success, delay\n", "line 6: bad rcpt-notify value"),
	CASE("rcpt-notify trailing comma", HEAD RCPT "rcpt-notify delay,\n", "line 6: bad rcpt-notify value"),
	CASE("duplicate rcpt-notify", HEAD RCPT "rcpt-notify delay\nrcpt-notify delay\n",
	    "line 7: duplicate rcpt-notify for one rcpt"),
	CASE("rcpt-notify before rcpt", HEAD "rcpt-notify delay\n" RCPT,
	    "line 5: rcpt-notify before any rcpt"),
	CASE("rcpt-orcpt no type",    HEAD RCPT "rcpt-orcpt bob@example.net\n", "line 6: bad rcpt-orcpt value"),
	CASE("rcpt-orcpt empty address", HEAD RCPT "rcpt-orcpt rfc822;\n", "line 6: bad rcpt-orcpt value"),
	CASE("rcpt-orcpt bad xtext",  HEAD RCPT "rcpt-orcpt rfc822;a+Z1@b\n", "line 6: bad rcpt-orcpt value"),
	CASE("rcpt-orcpt with a space", HEAD RCPT "rcpt-orcpt rfc822;a b@c\n", "line 6: bad rcpt-orcpt value"),
	CASE("duplicate rcpt-orcpt",  HEAD RCPT "rcpt-orcpt rfc822;a@b\nrcpt-orcpt rfc822;a@b\n",
	    "line 7: duplicate rcpt-orcpt for one rcpt"),
	CASE("rcpt-orcpt before rcpt", HEAD "rcpt-orcpt rfc822;a@b\n" RCPT,
	    "line 5: rcpt-orcpt before any rcpt"),
	CASE("seal in upper case",    HEAD RCPT "content-sha256 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n",
	    "line 6: bad content-sha256"),
};

static void
rejects_each_bad_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		struct envelope e;
		struct err err = { "" };
		int got = envelope_parse(error_cases[i].text, error_cases[i].len, &e, &err);

		if (got != -1)
			fail_msg("%s: got success, want \"%s\"", error_cases[i].name, error_cases[i].want);
		if (strncmp(err.msg, error_cases[i].want, strlen(error_cases[i].want)) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", error_cases[i].name, err.msg,
			    error_cases[i].want);
		/* A failed parse leaves a cleared envelope. */
		if (e.sender != NULL || e.nrcpts != 0 || e.rcpts != NULL || e.helo != NULL)
			fail_msg("%s: envelope not cleared after an error", error_cases[i].name);
	}
}

static char *
long_value_file(const char *key, size_t vlen)
{
	char *v = xmalloc(vlen + 1), *text;

	memset(v, 'x', vlen);
	v[vlen] = '\0';
	text = xasprintf("%s%s %s\n%s", HEAD, key, v, RCPT);
	free(v);
	return text;
}

static void
limits_value_length(void **state)
{
	struct envelope e;
	struct err err = { "" };
	char *ok = long_value_file("helo", ENVELOPE_VALUE_MAX);
	char *bad = long_value_file("helo", ENVELOPE_VALUE_MAX + 1);

	(void)state;
	if (envelope_parse(ok, strlen(ok), &e, &err) < 0)
		fail_msg("4096 octets: got \"%s\", want success", err.msg);
	assert_int_equal(strlen(e.helo), ENVELOPE_VALUE_MAX);
	envelope_clear(&e);
	assert_int_equal(envelope_parse(bad, strlen(bad), &e, &err), -1);
	assert_string_equal(err.msg, "line 5: value longer than 4096 octets");
	free(ok);
	free(bad);
}

static char *
many_rcpts(size_t n)
{
	size_t cap = strlen(HEAD) + n * 32 + 1, len;
	char *text = xmalloc(cap);

	len = (size_t)sprintf(text, "%s", HEAD);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "rcpt u%zu@example.net\n", i);
	return text;
}

static void
limits_recipient_count(void **state)
{
	struct envelope e;
	struct err err = { "" };
	char *ok = many_rcpts(ENVELOPE_RCPTS_MAX), *bad = many_rcpts(ENVELOPE_RCPTS_MAX + 1);
	char want[64];

	(void)state;
	if (envelope_parse(ok, strlen(ok), &e, &err) < 0)
		fail_msg("100000 recipients: got \"%s\", want success", err.msg);
	assert_int_equal(e.nrcpts, ENVELOPE_RCPTS_MAX);
	envelope_clear(&e);
	assert_int_equal(envelope_parse(bad, strlen(bad), &e, &err), -1);
	snprintf(want, sizeof want, "line %d: more than 100000 recipients", ENVELOPE_RCPTS_MAX + 5);
	assert_string_equal(err.msg, want);
	free(ok);
	free(bad);
}

/* --- formatting ----------------------------------------------------------- */

static void
format_sanitises_control_characters(void **state)
{
	struct envelope e, back;
	struct err err = { "" };
	struct envelope_rcpt *r;
	char *text;
	size_t len;

	(void)state;
	envelope_init(&e);
	strlcopy(e.id, "0196A3F2C4E51A2B3C", sizeof e.id);
	e.sender = xstrdup("a@b.example");
	e.helo = xstrdup("evil\r\nrcpt x@y.example");
	e.last_reply = xstrdup("550 5.7.1 no\ttab\x01\x7f");
	r = envelope_add_rcpt(&e, "c@d.example");
	r->reply = xstrdup("250 ok\nrcpt-status sent");
	text = envelope_format(&e, &len);
	assert_non_null(strstr(text, "helo evil??rcpt x@y.example\n"));
	assert_non_null(strstr(text, "last-reply 550 5.7.1 no?tab??\n"));
	assert_non_null(strstr(text, "rcpt-reply 250 ok?rcpt-status sent\n"));
	if (envelope_parse(text, len, &back, &err) < 0)
		fail_msg("sanitised text does not parse: %s\n%s", err.msg, text);
	assert_int_equal(back.nrcpts, 1);
	assert_int_equal(back.rcpts[0].status, RCPT_PENDING);
	assert_string_equal(back.helo, "evil??rcpt x@y.example");
	free(text);
	envelope_clear(&back);
	envelope_clear(&e);
}

/* A reply longer than a value may be is cut, and not inside a UTF-8
 * sequence, so the file still parses. */
static void
format_cuts_long_values(void **state)
{
	struct envelope e, back;
	struct err err = { "" };
	struct envelope_rcpt *r;
	char *reply = xmalloc(ENVELOPE_VALUE_MAX + 100), *text;
	size_t len;

	(void)state;
	memset(reply, 'a', ENVELOPE_VALUE_MAX - 1);
	/* "é" (C3 A9) straddles the limit: octets 4095 and 4096. */
	memcpy(reply + ENVELOPE_VALUE_MAX - 1, "\xC3\xA9 and more", 12);
	envelope_init(&e);
	strlcopy(e.id, "01", sizeof e.id);
	e.sender = xstrdup("a@b.example");
	r = envelope_add_rcpt(&e, "c@d.example");
	r->reply = reply;
	text = envelope_format(&e, &len);
	if (envelope_parse(text, len, &back, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(strlen(back.rcpts[0].reply), ENVELOPE_VALUE_MAX - 1);
	free(text);
	envelope_clear(&back);
	envelope_clear(&e);
}

/* An envelope written before the DSN keys existed: every one "not given". */
static void
old_envelope_has_no_dsn_values(void **state)
{
	static const char text[] = HEAD RCPT "rcpt c@d.example\nrcpt-status failed\n";
	struct envelope e;
	struct err err = { "" };
	char *again;

	(void)state;
	if (envelope_parse(text, sizeof text - 1, &e, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(e.ret, DSN_RET_NONE);
	assert_null(e.envid);
	assert_null(e.route);
	assert_false(e.delay_warned);
	for (size_t i = 0; i < e.nrcpts; i++) {
		assert_int_equal(e.rcpts[i].notify, 0);
		assert_null(e.rcpts[i].orcpt);
	}
	/* ...and it is written back without them. */
	again = envelope_format(&e, NULL);
	if (strstr(again, "ret ") || strstr(again, "envid") || strstr(again, "route") ||
	    strstr(again, "delay-warned") || strstr(again, "notify") || strstr(again, "orcpt"))
		fail_msg("DSN keys appeared:\n%s", again);
	free(again);
	envelope_clear(&e);
}

/* Each DSN value alone: what it parses to and how it is written back. */
static const struct {
	const char *name, *line, *written;
	unsigned notify;
} dsn_cases[] = {
	{ "ret full",          "ret full\n",              "ret full\n", 0 },
	{ "envid",             "envid a+2Bb+20c\n",       "envid a+2Bb+20c\n", 0 },
	{ "route",             "route Isp-2.b_x\n",       "route Isp-2.b_x\n", 0 },
	{ "delay-warned no",   "delay-warned no\n",       "", 0 },
	{ "notify never",      "rcpt-notify never\n",     "rcpt-notify never\n", DSN_NOTIFY_NEVER },
	{ "notify canonical",  "rcpt-notify delay,success\n", "rcpt-notify success,delay\n",
	    DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS },
	{ "notify repeated",   "rcpt-notify failure,failure\n", "rcpt-notify failure\n",
	    DSN_NOTIFY_FAILURE },
	{ "orcpt",             "rcpt-orcpt x400;/G+3DJoe/\n", "rcpt-orcpt x400;/G+3DJoe/\n", 0 },
};

static void
parses_and_writes_each_dsn_value(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dsn_cases / sizeof dsn_cases[0]; i++) {
		bool per_rcpt = strncmp(dsn_cases[i].line, "rcpt-", 5) == 0;
		char *text = per_rcpt ? xasprintf("%s%s%s", HEAD, RCPT, dsn_cases[i].line) :
		    xasprintf("%s%s%s", HEAD, dsn_cases[i].line, RCPT);
		struct envelope e;
		struct err err = { "" };
		char *again;

		if (envelope_parse(text, strlen(text), &e, &err) < 0)
			fail_msg("%s: %s", dsn_cases[i].name, err.msg);
		if (e.rcpts[0].notify != dsn_cases[i].notify)
			fail_msg("%s: notify %#x, want %#x", dsn_cases[i].name, e.rcpts[0].notify,
			    dsn_cases[i].notify);
		again = envelope_format(&e, NULL);
		if (dsn_cases[i].written[0] != '\0' && strstr(again, dsn_cases[i].written) == NULL)
			fail_msg("%s: \"%s\" not written:\n%s", dsn_cases[i].name,
			    dsn_cases[i].written, again);
		if (dsn_cases[i].written[0] == '\0' && strstr(again, dsn_cases[i].line) != NULL)
			fail_msg("%s: \"%s\" written:\n%s", dsn_cases[i].name, dsn_cases[i].line,
			    again);
		free(again);
		free(text);
		envelope_clear(&e);
	}
}

/* A caller's DSN value the parser would refuse is left out, so the file
 * still reads. */
static void
format_leaves_out_bad_dsn_values(void **state)
{
	struct envelope e, back;
	struct err err = { "" };
	struct envelope_rcpt *r;
	char *text;
	size_t len;

	(void)state;
	envelope_init(&e);
	strlcopy(e.id, "01", sizeof e.id);
	e.sender = xstrdup("a@b.example");
	e.envid = xstrdup("bad value\r\n");
	e.route = xstrdup("two words");
	r = envelope_add_rcpt(&e, "c@d.example");
	r->orcpt = xstrdup("no-semicolon");
	r->notify = DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS;
	text = envelope_format(&e, &len);
	if (envelope_parse(text, len, &back, &err) < 0)
		fail_msg("%s\n%s", err.msg, text);
	assert_null(back.envid);
	assert_null(back.route);
	assert_null(back.rcpts[0].orcpt);
	assert_int_equal(back.rcpts[0].notify, DSN_NOTIFY_NEVER);
	free(text);
	envelope_clear(&e);
	envelope_clear(&back);
}

static void
status_names_both_ways(void **state)
{
	static const struct { const char *name; int status; } cases[] = {
		{ "pending", RCPT_PENDING }, { "sent", RCPT_SENT },
		{ "deferred", RCPT_DEFERRED }, { "failed", RCPT_FAILED },
		{ "Sent", -1 }, { "", -1 }, { "sentx", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = rcpt_status_parse(cases[i].name);

		if (got != cases[i].status)
			fail_msg("rcpt_status_parse(\"%s\"): got %d, want %d", cases[i].name, got,
			    cases[i].status);
		if (got >= 0 && strcmp(rcpt_status_name((enum rcpt_status)got), cases[i].name) != 0)
			fail_msg("rcpt_status_name(%d): got %s, want %s", got,
			    rcpt_status_name((enum rcpt_status)got), cases[i].name);
	}
}

static void
queue_state_follows_attempts(void **state)
{
	struct envelope e;

	(void)state;
	envelope_init(&e);
	envelope_add_rcpt(&e, "a@b.example");
	assert_string_equal(envelope_queue_state(&e), "queued");
	e.rcpts[0].status = RCPT_DEFERRED;
	assert_string_equal(envelope_queue_state(&e), "deferred");
	e.rcpts[0].status = RCPT_PENDING;
	e.attempts = 1;
	assert_string_equal(envelope_queue_state(&e), "deferred");
	envelope_clear(&e);
	assert_int_equal(e.nrcpts, 0);
	assert_int_equal(e.uid, -1);
	envelope_clear(&e);   /* twice is fine */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_keeps_every_field),
		cmocka_unit_test(round_trip_of_a_minimal_envelope),
		cmocka_unit_test(parses_every_key),
		cmocka_unit_test(parses_each_number),
		cmocka_unit_test(parses_names_and_special_addresses),
		cmocka_unit_test(rejects_each_bad_file),
		cmocka_unit_test(limits_value_length),
		cmocka_unit_test(limits_recipient_count),
		cmocka_unit_test(format_sanitises_control_characters),
		cmocka_unit_test(format_cuts_long_values),
		cmocka_unit_test(old_envelope_has_no_dsn_values),
		cmocka_unit_test(parses_and_writes_each_dsn_value),
		cmocka_unit_test(format_leaves_out_bad_dsn_values),
		cmocka_unit_test(status_names_both_ways),
		cmocka_unit_test(queue_state_follows_attempts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
