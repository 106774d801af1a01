/* test_login_parse.c - the POP3 and IMAP reply parsers of login_parse.h:
 * lines, response codes, the APOP timestamp, CAPA bodies and IMAP
 * capability lists, with greetings and replies as Dovecot, Courier, Cyrus,
 * Gmail and Outlook send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "login_parse.h"

#define N(array) (sizeof(array) / sizeof((array)[0]))

/* The length of a case's line: `len` when set (lines with a NUL), else strlen. */
static size_t
case_len(const char *line, size_t len)
{
	return len > 0 ? len : strlen(line);
}

/* A span is absent (want NULL) or equal to want, and inside line[0..len]. */
static void
check_span(const char *name, const char *field, const char *line, size_t len,
    struct login_span got, const char *want)
{
	if (got.s == NULL && got.len != 0)
		fail_msg("%s: %s: absent with length %zu", name, field, got.len);
	if (got.s != NULL && (got.s < line || got.s + got.len > line + len))
		fail_msg("%s: %s: points outside the line", name, field);
	if (want == NULL && got.s != NULL)
		fail_msg("%s: %s: got \"%.*s\", want absent", name, field, (int)got.len, got.s);
	if (want != NULL && got.s == NULL)
		fail_msg("%s: %s: got absent, want \"%s\"", name, field, want);
	if (want != NULL && (got.len != strlen(want) || memcmp(got.s, want, got.len) != 0))
		fail_msg("%s: %s: got \"%.*s\", want \"%s\"", name, field, (int)got.len, got.s,
		    want);
}

/* --- POP3 lines ------------------------------------------------------------ */

static const struct {
	const char *name, *line;
	size_t len;                         /* 0: strlen(line) */
	enum login_pop3_kind want;
	enum login_pop3_code code;
	const char *code_text, *text;       /* NULL: absent */
} pop3_cases[] = {
	{ "Dovecot greeting", "+OK Dovecot ready.", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE,
	    NULL, "Dovecot ready." },
	{ "Courier greeting", "+OK Hello there.", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE,
	    NULL, "Hello there." },
	{ "Outlook greeting, bracket at the end is text",
	    "+OK The Microsoft Exchange POP3 service is ready. [QwBIADIAUABSADEAMQBD]", 0,
	    LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE, NULL,
	    "The Microsoft Exchange POP3 service is ready. [QwBIADIAUABSADEAMQBD]" },
	{ "+OK alone", "+OK", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE, NULL, "" },
	{ "+OK and a space", "+OK ", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE, NULL, "" },
	{ "STAT reply", "+OK 2 320", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE, NULL, "2 320" },
	{ "several spaces", "+OK   maildrop ready", 0, LOGIN_POP3_OK, LOGIN_POP3_CODE_NONE,
	    NULL, "maildrop ready" },
	{ "-ERR alone", "-ERR", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_NONE, NULL, "" },
	{ "Dovecot bad password", "-ERR [AUTH] Authentication failed.", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_AUTH, "AUTH", "Authentication failed." },
	{ "SYS/TEMP", "-ERR [SYS/TEMP] Temporary authentication failure.", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_SYS_TEMP, "SYS/TEMP", "Temporary authentication failure." },
	{ "SYS/PERM", "-ERR [SYS/PERM] Mailbox migrated", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_SYS_PERM, "SYS/PERM", "Mailbox migrated" },
	{ "IN-USE", "-ERR [IN-USE] Mailbox is locked by another POP3 session", 0,
	    LOGIN_POP3_ERR, LOGIN_POP3_CODE_IN_USE, "IN-USE",
	    "Mailbox is locked by another POP3 session" },
	{ "LOGIN-DELAY", "-ERR [LOGIN-DELAY] wait 15 minutes between logins", 0,
	    LOGIN_POP3_ERR, LOGIN_POP3_CODE_LOGIN_DELAY, "LOGIN-DELAY",
	    "wait 15 minutes between logins" },
	{ "code in lower case", "-ERR [auth] no", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_AUTH,
	    "auth", "no" },
	{ "sub-level of a known code", "-ERR [AUTH/EXPIRED] password expired", 0,
	    LOGIN_POP3_ERR, LOGIN_POP3_CODE_AUTH, "AUTH/EXPIRED", "password expired" },
	{ "SYS without a level", "-ERR [SYS] trouble", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_OTHER, "SYS", "trouble" },
	{ "code prefix is not the code", "-ERR [AUTHX] no", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_OTHER, "AUTHX", "no" },
	{ "unknown code", "-ERR [UTF8] later", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_OTHER,
	    "UTF8", "later" },
	{ "code on +OK", "+OK [IN-USE] odd but harmless", 0, LOGIN_POP3_OK,
	    LOGIN_POP3_CODE_IN_USE, "IN-USE", "odd but harmless" },
	{ "code alone", "-ERR [AUTH]", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_AUTH, "AUTH", "" },
	{ "code glued to text", "-ERR [AUTH]no", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_AUTH,
	    "AUTH", "no" },
	{ "brackets with a space are text", "-ERR [not a code] x", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_NONE, NULL, "[not a code] x" },
	{ "empty brackets are text", "-ERR [] x", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_NONE,
	    NULL, "[] x" },
	{ "unclosed bracket is text", "-ERR [AUTH failed", 0, LOGIN_POP3_ERR,
	    LOGIN_POP3_CODE_NONE, NULL, "[AUTH failed" },
	{ "64-octet code", "-ERR [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] x",
	    0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_OTHER,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x" },
	{ "65-octet code is text",
	    "-ERR [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] x", 0,
	    LOGIN_POP3_ERR, LOGIN_POP3_CODE_NONE, NULL,
	    "[AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] x" },
	{ "SASL challenge", "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+", 0,
	    LOGIN_POP3_CONTINUE, LOGIN_POP3_CODE_NONE, NULL,
	    "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+" },
	{ "empty challenge", "+ ", 0, LOGIN_POP3_CONTINUE, LOGIN_POP3_CODE_NONE, NULL, "" },
	{ "empty challenge, no space", "+", 0, LOGIN_POP3_CONTINUE, LOGIN_POP3_CODE_NONE,
	    NULL, "" },
	{ "continuation saying OK", "+ OK", 0, LOGIN_POP3_CONTINUE, LOGIN_POP3_CODE_NONE,
	    NULL, "OK" },
	{ "lower-case +ok", "+ok ready", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL,
	    NULL },
	{ "+OKAY", "+OKAY", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "-ERROR", "-ERROR x", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "+OK and a tab", "+OK\tready", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL,
	    NULL },
	{ "+x", "+x", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "SMTP banner", "220 mx.isp.example ESMTP Postfix", 0, LOGIN_POP3_INVALID,
	    LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "IMAP banner", "* OK Dovecot ready.", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE,
	    NULL, NULL },
	{ "leading space", " +OK", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "empty line", "", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "NUL inside", "+OK a\0b", 7, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "CR inside", "+OK a\rb", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "LF inside", "+OK a\n+OK b", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL,
	    NULL },
	{ "trailing CR", "+OK\r", 0, LOGIN_POP3_INVALID, LOGIN_POP3_CODE_NONE, NULL, NULL },
	{ "UTF-8 text kept", "-ERR [AUTH] Anmeldung fehlgeschlagen \xe2\x80\x93 falsches "
	    "Passwort", 0, LOGIN_POP3_ERR, LOGIN_POP3_CODE_AUTH, "AUTH",
	    "Anmeldung fehlgeschlagen \xe2\x80\x93 falsches Passwort" },
};

static void
pop3_parses_each_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(pop3_cases); i++) {
		const char *name = pop3_cases[i].name, *line = pop3_cases[i].line;
		size_t len = case_len(line, pop3_cases[i].len);
		struct login_pop3_line l;
		enum login_pop3_kind got;

		memset(&l, 0xa5, sizeof l);
		got = login_pop3_parse_line(line, len, &l);
		if (got != pop3_cases[i].want || l.kind != got)
			fail_msg("%s: got %s, want %s", name, login_pop3_kind_name(got),
			    login_pop3_kind_name(pop3_cases[i].want));
		if (l.code != pop3_cases[i].code)
			fail_msg("%s: got code %s, want %s", name, login_pop3_code_name(l.code),
			    login_pop3_code_name(pop3_cases[i].code));
		check_span(name, "code_text", line, len, l.code_text, pop3_cases[i].code_text);
		check_span(name, "text", line, len, l.text, pop3_cases[i].text);
		if ((got == LOGIN_POP3_INVALID) != (l.why != NULL))
			fail_msg("%s: why = %s", name, l.why ? l.why : "NULL");
	}
}

static void
pop3_line_length_limit(void **state)
{
	static char line[LOGIN_LINE_MAX + 1];
	struct login_pop3_line l;
	struct login_span out;
	struct login_pop3_capa capa;
	const char *why;

	(void)state;
	memcpy(line, "+OK ", 4);
	memset(line + 4, 'x', sizeof line - 4);
	assert_int_equal(login_pop3_parse_line(line, LOGIN_LINE_MAX - 1, &l), LOGIN_POP3_OK);
	assert_int_equal(l.text.len, LOGIN_LINE_MAX - 5);
	assert_int_equal(login_pop3_parse_line(line, LOGIN_LINE_MAX, &l), LOGIN_POP3_INVALID);
	assert_non_null(strstr(l.why, "8192"));
	assert_int_equal(login_pop3_parse_multi(line, LOGIN_LINE_MAX, &out, &why),
	    LOGIN_POP3_MULTI_INVALID);
	assert_non_null(why);
	assert_null(out.s);
	assert_int_equal(login_pop3_parse_capa(line, LOGIN_LINE_MAX, &capa), -1);
	assert_int_equal(login_pop3_parse_multi(line, LOGIN_LINE_MAX - 1, &out, NULL),
	    LOGIN_POP3_MULTI_LINE);
}

/* --- APOP timestamp --------------------------------------------------------- */

static const struct {
	const char *name, *line, *want;     /* want NULL: no timestamp */
} apop_cases[] = {
	{ "RFC 1939 example", "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
	    "<1896.697170952@dbc.mtview.ca.us>" },
	{ "Dovecot", "+OK Dovecot ready. <1f2e.3.5f0c1a2b.Qx9Zk8h1YbUj3sq0aB3jyw==@pop.isp.example>",
	    "<1f2e.3.5f0c1a2b.Qx9Zk8h1YbUj3sq0aB3jyw==@pop.isp.example>" },
	{ "Cyrus, in the middle", "+OK pop.isp.example Cyrus POP3 v3.4.4 server ready "
	    "<1234567890.1234@pop.isp.example> hi", "<1234567890.1234@pop.isp.example>" },
	{ "no timestamp", "+OK Dovecot ready.", NULL },
	{ "host name in brackets is not one", "+OK <pop.isp.example> ready", NULL },
	{ "host name first, timestamp last", "+OK <pop.isp.example> ready <42.7@pop.isp.example>",
	    "<42.7@pop.isp.example>" },
	{ "two timestamps: the last", "+OK <1@a> <2@b>", "<2@b>" },
	{ "valid one before an invalid one", "+OK <1@a> <no at>", "<1@a>" },
	{ "shortest", "+OK <a@b>", "<a@b>" },
	{ "@ first", "+OK <@b>", NULL },
	{ "@ last", "+OK <a@>", NULL },
	{ "@ alone", "+OK <@>", NULL },
	{ "empty brackets", "+OK <>", NULL },
	{ "space inside", "+OK <1 2@host>", NULL },
	{ "tab inside", "+OK <1\t2@host>", NULL },
	{ "8-bit inside", "+OK <1\xc3\xa9@host>", NULL },
	{ "not closed", "+OK <1896.697@host", NULL },
	{ "nested opening", "+OK <<1@host>", "<1@host>" },
	{ "not on -ERR", "-ERR <1896.697170952@dbc.mtview.ca.us>", NULL },
	{ "not on a continuation", "+ <1896.697170952@dbc.mtview.ca.us>", NULL },
	{ "not on garbage", "* OK <1@host>", NULL },
	{ "after a code", "+OK [X] <1@host>", "<1@host>" },
};

static void
pop3_finds_apop_timestamp(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(apop_cases); i++) {
		const char *line = apop_cases[i].line;
		struct login_pop3_line l;
		struct login_span ts;
		bool got;

		login_pop3_parse_line(line, strlen(line), &l);
		memset(&ts, 0xa5, sizeof ts);
		got = login_pop3_apop_timestamp(&l, &ts);
		if (got != (apop_cases[i].want != NULL))
			fail_msg("%s: got %d", apop_cases[i].name, got);
		check_span(apop_cases[i].name, "timestamp", line, strlen(line), ts,
		    apop_cases[i].want);
	}
}

static void
pop3_apop_timestamp_length(void **state)
{
	char line[400], want[300];
	struct login_pop3_line l;
	struct login_span ts;

	(void)state;
	/* "<" + 252 "x" + "@h" ... sized so that the whole is exactly the maximum */
	memset(want, 'x', sizeof want);
	want[0] = '<';
	memcpy(want + LOGIN_APOP_TIMESTAMP_MAX - 3, "@h>", 4);
	assert_int_equal(strlen(want), LOGIN_APOP_TIMESTAMP_MAX);
	snprintf(line, sizeof line, "+OK ready %s", want);
	login_pop3_parse_line(line, strlen(line), &l);
	assert_true(login_pop3_apop_timestamp(&l, &ts));
	assert_int_equal(ts.len, LOGIN_APOP_TIMESTAMP_MAX);

	/* one octet more: not a timestamp */
	snprintf(line, sizeof line, "+OK ready <x%s", want + 1);
	login_pop3_parse_line(line, strlen(line), &l);
	assert_false(login_pop3_apop_timestamp(&l, &ts));
	assert_null(ts.s);
}

/* --- POP3 multi-line bodies and CAPA ---------------------------------------- */

static const struct {
	const char *name, *line;
	size_t len;
	enum login_pop3_multi want;
	const char *out;
} multi_cases[] = {
	{ "plain line", "USER", 0, LOGIN_POP3_MULTI_LINE, "USER" },
	{ "terminator", ".", 0, LOGIN_POP3_MULTI_END, NULL },
	{ "dot-stuffed dot", "..", 0, LOGIN_POP3_MULTI_LINE, "." },
	{ "dot-stuffed line", "..x", 0, LOGIN_POP3_MULTI_LINE, ".x" },
	{ "unstuffed dot line", ".x", 0, LOGIN_POP3_MULTI_LINE, "x" },
	{ "three dots", "...", 0, LOGIN_POP3_MULTI_LINE, ".." },
	{ "dot and a space", ". ", 0, LOGIN_POP3_MULTI_LINE, " " },
	{ "empty line", "", 0, LOGIN_POP3_MULTI_LINE, "" },
	{ "NUL", ".\0", 2, LOGIN_POP3_MULTI_INVALID, NULL },
	{ "CR", ".\r", 0, LOGIN_POP3_MULTI_INVALID, NULL },
	{ "LF", "a\n.", 0, LOGIN_POP3_MULTI_INVALID, NULL },
};

static void
pop3_parses_multi_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(multi_cases); i++) {
		const char *line = multi_cases[i].line;
		size_t len = case_len(line, multi_cases[i].len);
		struct login_span out;
		const char *why = "unset";
		enum login_pop3_multi got = login_pop3_parse_multi(line, len, &out, &why);

		if (got != multi_cases[i].want)
			fail_msg("%s: got %s, want %s", multi_cases[i].name,
			    login_pop3_multi_name(got), login_pop3_multi_name(multi_cases[i].want));
		check_span(multi_cases[i].name, "out", line, len, out, multi_cases[i].out);
		if ((got == LOGIN_POP3_MULTI_INVALID) != (why != NULL))
			fail_msg("%s: why = %s", multi_cases[i].name, why ? why : "NULL");
	}
}

static const struct {
	const char *name, *line;
	int want;
	const char *keyword, *args;
} capa_cases[] = {
	{ "keyword alone", "STLS", 0, "STLS", "" },
	{ "keyword and arguments", "SASL SCRAM-SHA-256 PLAIN", 0, "SASL", "SCRAM-SHA-256 PLAIN" },
	{ "spaces trimmed", "SASL   PLAIN  LOGIN \t ", 0, "SASL", "PLAIN  LOGIN" },
	{ "trailing space only", "USER ", 0, "USER", "" },
	{ "implementation text", "IMPLEMENTATION Courier Mail Server", 0, "IMPLEMENTATION",
	    "Courier Mail Server" },
	{ "leading space", " USER", -1, NULL, NULL },
	{ "empty", "", -1, NULL, NULL },
	{ "control in keyword", "US\x01R", -1, NULL, NULL },
	{ "tab after keyword", "USER\tx", -1, NULL, NULL },
	{ "8-bit keyword", "\xc3\xa9", -1, NULL, NULL },
	{ "64-octet keyword", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", 0,
	    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "" },
	{ "65-octet keyword", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", -1,
	    NULL, NULL },
	{ "CR in arguments", "SASL PLAIN\r", -1, NULL, NULL },
};

static void
pop3_parses_capa_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(capa_cases); i++) {
		const char *line = capa_cases[i].line;
		struct login_pop3_capa capa;
		int got;

		memset(&capa, 0xa5, sizeof capa);
		got = login_pop3_parse_capa(line, strlen(line), &capa);
		if (got != capa_cases[i].want)
			fail_msg("%s: got %d, want %d", capa_cases[i].name, got, capa_cases[i].want);
		check_span(capa_cases[i].name, "keyword", line, strlen(line), capa.keyword,
		    capa_cases[i].keyword);
		check_span(capa_cases[i].name, "args", line, strlen(line), capa.args,
		    capa_cases[i].args);
	}
}

enum {
	STLS = 1 << 0, USER = 1 << 1, TOP = 1 << 2, UIDL = 1 << 3, PIPE = 1 << 4,
	RESP = 1 << 5, ARESP = 1 << 6, DELAY = 1 << 7,
};

static const struct {
	const char *name, *body;            /* lines separated by '\n', "." included */
	enum login_pop3_multi want;         /* from the last line fed */
	unsigned flags;
	unsigned long delay;
	const char *mechs, *implementation;
} caps_cases[] = {
	{ "Dovecot", "CAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nSTLS\nUSER\n"
	    "SASL PLAIN LOGIN\n.", LOGIN_POP3_MULTI_END,
	    TOP | UIDL | RESP | PIPE | ARESP | STLS | USER, 0, "PLAIN LOGIN", "" },
	{ "Courier", "TOP\nUSER\nLOGIN-DELAY 10\nPIPELINING\nUIDL\n"
	    "IMPLEMENTATION Courier Mail Server\nSTLS\nSASL CRAM-MD5 CRAM-SHA1 CRAM-SHA256 "
	    "LOGIN PLAIN\n.", LOGIN_POP3_MULTI_END, TOP | USER | DELAY | PIPE | UIDL | STLS, 10,
	    "CRAM-MD5 CRAM-SHA1 CRAM-SHA256 LOGIN PLAIN", "Courier Mail Server" },
	{ "Cyrus", "SASL PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-MD5 CRAM-MD5\nSTLS\n"
	    "EXPIRE NEVER\nLOGIN-DELAY 0\nTOP\nUIDL\nPIPELINING\nRESP-CODES\nAUTH-RESP-CODE\n"
	    "USER\nIMPLEMENTATION Cyrus POP3 v3.4.4\n.", LOGIN_POP3_MULTI_END,
	    STLS | DELAY | TOP | UIDL | PIPE | RESP | ARESP | USER, 0,
	    "PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-MD5 CRAM-MD5", "Cyrus POP3 v3.4.4" },
	{ "Gmail", "USER\nRESP-CODES\nEXPIRE 0\nLOGIN-DELAY 300\nTOP\nUIDL\nX-GOOGLE-RICO\n"
	    "SASL PLAIN XOAUTH2 OAUTHBEARER\n.", LOGIN_POP3_MULTI_END,
	    USER | RESP | DELAY | TOP | UIDL, 300, "PLAIN XOAUTH2 OAUTHBEARER", "" },
	{ "Outlook", "TOP\nUIDL\nSASL PLAIN XOAUTH2\nUSER\n.", LOGIN_POP3_MULTI_END,
	    TOP | UIDL | USER, 0, "PLAIN XOAUTH2", "" },
	{ "empty CAPA", ".", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "lower case", "stls\nsasl plain scram-sha-1\nuser\n.", LOGIN_POP3_MULTI_END,
	    STLS | USER, 0, "PLAIN SCRAM-SHA-1", "" },
	{ "SASL on two lines, duplicates", "SASL PLAIN LOGIN\nSASL login CRAM-MD5\n.",
	    LOGIN_POP3_MULTI_END, 0, 0, "PLAIN LOGIN CRAM-MD5", "" },
	{ "bad mechanism names dropped", "SASL PL@IN GOOD_1 ABCDEFGHIJKLMNOPQRSTU "
	    "ABCDEFGHIJKLMNOPQRST\n.", LOGIN_POP3_MULTI_END, 0, 0,
	    "GOOD_1 ABCDEFGHIJKLMNOPQRST", "" },
	{ "SASL without mechanisms", "SASL\n.", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "SASLX is not SASL", "SASLX PLAIN\n.", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "keyword prefix", "STLSX\nUSERS\n.", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "STLS with arguments", "STLS now\n.", LOGIN_POP3_MULTI_END, STLS, 0, "", "" },
	{ "LOGIN-DELAY per user", "LOGIN-DELAY 900 USER\n.", LOGIN_POP3_MULTI_END, DELAY, 900,
	    "", "" },
	{ "LOGIN-DELAY largest", "LOGIN-DELAY 999999999\n.", LOGIN_POP3_MULTI_END, DELAY,
	    999999999, "", "" },
	{ "LOGIN-DELAY too large", "LOGIN-DELAY 1000000000\n.", LOGIN_POP3_MULTI_END, 0, 0,
	    "", "" },
	{ "LOGIN-DELAY garbage", "LOGIN-DELAY 10m\nLOGIN-DELAY\nLOGIN-DELAY -1\n.",
	    LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "implementation controls", "IMPLEMENTATION a\tb\x7f\xc3\xa9\n.", LOGIN_POP3_MULTI_END,
	    0, 0, "", "a?b???" },
	{ "dot-stuffed keyword", "..STLS\n.", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "stuffed keyword unstuffed", ".STLS\n.", LOGIN_POP3_MULTI_END, STLS, 0, "", "" },
	{ "garbage ignored", " \n\x01\nX-FOO bar\n=\n.", LOGIN_POP3_MULTI_END, 0, 0, "", "" },
	{ "unfinished", "USER\nSTLS", LOGIN_POP3_MULTI_LINE, USER | STLS, 0, "", "" },
	{ "CR in a line clears all", "USER\nSTLS\r\n.", LOGIN_POP3_MULTI_INVALID, 0, 0, "", "" },
	{ "line after the end", "USER\n.\nSTLS", LOGIN_POP3_MULTI_INVALID, 0, 0, "", "" },
};

/* Feed the lines of body; returns the last result, *fed the lines fed. */
static enum login_pop3_multi
feed_caps(struct login_pop3_caps *c, const char *body, size_t *fed)
{
	const char *p = body;

	login_pop3_caps_init(c);
	*fed = 0;
	for (;;) {
		size_t n = strcspn(p, "\n");
		enum login_pop3_multi got = login_pop3_caps_add(c, p, n);

		(*fed)++;
		if (got == LOGIN_POP3_MULTI_INVALID || p[n] == '\0')
			return got;
		p += n + 1;
	}
}

static void
pop3_gathers_caps(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(caps_cases); i++) {
		const char *name = caps_cases[i].name;
		struct login_pop3_caps c;
		size_t fed;
		enum login_pop3_multi got = feed_caps(&c, caps_cases[i].body, &fed);
		unsigned flags = (c.stls ? STLS : 0) | (c.user ? USER : 0) | (c.top ? TOP : 0) |
		    (c.uidl ? UIDL : 0) | (c.pipelining ? PIPE : 0) | (c.resp_codes ? RESP : 0) |
		    (c.auth_resp_code ? ARESP : 0) | (c.has_login_delay ? DELAY : 0);

		if (got != caps_cases[i].want)
			fail_msg("%s: got %s, want %s", name, login_pop3_multi_name(got),
			    login_pop3_multi_name(caps_cases[i].want));
		if (flags != caps_cases[i].flags)
			fail_msg("%s: got flags %#x, want %#x", name, flags, caps_cases[i].flags);
		if (c.login_delay != caps_cases[i].delay)
			fail_msg("%s: got delay %lu, want %lu", name, c.login_delay,
			    caps_cases[i].delay);
		if (strcmp(c.mechs, caps_cases[i].mechs) != 0)
			fail_msg("%s: got mechs \"%s\", want \"%s\"", name, c.mechs,
			    caps_cases[i].mechs);
		if (strcmp(c.implementation, caps_cases[i].implementation) != 0)
			fail_msg("%s: got implementation \"%s\", want \"%s\"", name,
			    c.implementation, caps_cases[i].implementation);
		if (c.done != (got == LOGIN_POP3_MULTI_END) ||
		    c.bad != (got == LOGIN_POP3_MULTI_INVALID) || c.bad != (c.why != NULL))
			fail_msg("%s: done %d bad %d why %s", name, c.done, c.bad,
			    c.why ? c.why : "NULL");
	}
}

static void
pop3_caps_line_count(void **state)
{
	struct login_pop3_caps c;

	(void)state;
	login_pop3_caps_init(&c);
	for (int i = 0; i < LOGIN_LINES_MAX; i++)
		assert_int_equal(login_pop3_caps_add(&c, "USER", 4), LOGIN_POP3_MULTI_LINE);
	assert_int_equal(login_pop3_caps_add(&c, ".", 1), LOGIN_POP3_MULTI_END);
	assert_int_equal(c.nlines, LOGIN_LINES_MAX);
	assert_true(c.user);

	login_pop3_caps_init(&c);
	for (int i = 0; i < LOGIN_LINES_MAX; i++)
		assert_int_equal(login_pop3_caps_add(&c, "USER", 4), LOGIN_POP3_MULTI_LINE);
	assert_int_equal(login_pop3_caps_add(&c, "STLS", 4), LOGIN_POP3_MULTI_INVALID);
	assert_true(c.bad);
	assert_false(c.user);
	assert_non_null(strstr(c.why, "100"));
	/* bad stays bad, even for a "." */
	assert_int_equal(login_pop3_caps_add(&c, ".", 1), LOGIN_POP3_MULTI_INVALID);
	assert_false(c.done);
}

/* Many distinct names: the list is cut at a whole name, never overflows, and
 * holds each name once, one space apart. */
static void
check_mech_list_bounded(const char *mechs, size_t size)
{
	size_t len = strnlen(mechs, size);

	assert_true(len < size);
	assert_true(len > 400);
	assert_int_equal(len % 8, 7);       /* "M000000" names */
	for (size_t i = 0; i < len; i += 8) {
		assert_true(mechs[i] == 'M');
		assert_true(i + 7 == len || mechs[i + 7] == ' ');
	}
}

static void
mech_lists_stay_bounded(void **state)
{
	static char line[LOGIN_LINE_MAX];
	struct login_pop3_caps pc;
	struct login_imap_caps ic;
	size_t len, ilen;

	(void)state;
	len = (size_t)snprintf(line, sizeof line, "SASL");
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " M%06d", i);
	login_pop3_caps_init(&pc);
	assert_int_equal(login_pop3_caps_add(&pc, line, len), LOGIN_POP3_MULTI_LINE);
	check_mech_list_bounded(pc.mechs, sizeof pc.mechs);
	/* the same names again add nothing */
	assert_int_equal(login_pop3_caps_add(&pc, line, len), LOGIN_POP3_MULTI_LINE);
	check_mech_list_bounded(pc.mechs, sizeof pc.mechs);

	ilen = 0;
	for (int i = 0; i < 300; i++)
		ilen += (size_t)snprintf(line + ilen, sizeof line - ilen, "AUTH=M%06d ", i);
	login_imap_caps_parse(line, ilen, &ic);
	check_mech_list_bounded(ic.mechs, sizeof ic.mechs);
}

/* --- IMAP lines ------------------------------------------------------------ */

static const struct {
	const char *name, *line;
	size_t len;
	const char *tag;
	enum login_imap_kind want;
	enum login_imap_status status;
	enum login_imap_code code;
	const char *code_name, *code_args, *text, *caps;
	int literal;                        /* -1: none, else n */
} imap_cases[] = {
	{ "Dovecot greeting", "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE "
	    "IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.", 0, NULL, LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_CAPABILITY, "CAPABILITY",
	    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED",
	    "Dovecot ready.",
	    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED",
	    -1 },
	{ "Gmail greeting", "* OK Gimap ready for requests from 198.51.100.7 c12mb34567890wrb",
	    0, NULL, LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "Gimap ready for requests from 198.51.100.7 c12mb34567890wrb", NULL, -1 },
	{ "Outlook greeting, bracket at the end is text", "* OK The Microsoft Exchange IMAP4 "
	    "service is ready. [TQBOADIAUABSADEAMgBDAEEA]", 0, NULL, LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADEAMgBDAEEA]", NULL,
	    -1 },
	{ "Courier greeting", "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE "
	    "THREAD=ORDEREDSUBJECT SORT QUOTA IDLE ACL ACL2=UNION STARTTLS] Courier-IMAP ready.",
	    0, NULL, LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_CAPABILITY,
	    "CAPABILITY", "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT SORT "
	    "QUOTA IDLE ACL ACL2=UNION STARTTLS", "Courier-IMAP ready.",
	    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT SORT QUOTA IDLE ACL "
	    "ACL2=UNION STARTTLS", -1 },
	{ "PREAUTH greeting", "* PREAUTH [CAPABILITY IMAP4rev2] logged in as Smith", 0, NULL,
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_PREAUTH, LOGIN_IMAP_CODE_CAPABILITY,
	    "CAPABILITY", "IMAP4rev2", "logged in as Smith", "IMAP4rev2", -1 },
	{ "BYE greeting", "* BYE Too many connections from your IP", 0, NULL,
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_BYE, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "Too many connections from your IP", NULL, -1 },
	{ "BYE with UNAVAILABLE", "* BYE [UNAVAILABLE] Server shutting down", 0, "a1",
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_BYE, LOGIN_IMAP_CODE_UNAVAILABLE,
	    "UNAVAILABLE", NULL, "Server shutting down", NULL, -1 },
	{ "untagged NO", "* NO [ALERT] Disk quota almost exceeded", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_ALERT, "ALERT", NULL,
	    "Disk quota almost exceeded", NULL, -1 },
	{ "untagged BAD", "* BAD internal error", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_BAD, LOGIN_IMAP_CODE_NONE, NULL, NULL, "internal error", NULL, -1 },
	{ "CAPABILITY data, Gmail", "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID "
	    "XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN "
	    "AUTH=OAUTHBEARER AUTH=XOAUTH", 0, "a1", LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 "
	    "XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER "
	    "AUTH=XOAUTH",
	    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR "
	    "AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH", -1 },
	{ "CAPABILITY data in lower case", "* capability imap4rev1", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "capability imap4rev1",
	    "imap4rev1", -1 },
	{ "CAPABILITY data, extra spaces", "* CAPABILITY   IMAP4rev1 ", 0, "a1",
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "CAPABILITY   IMAP4rev1 ", "IMAP4rev1 ", -1 },
	{ "CAPABILITY data, empty", "* CAPABILITY", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "CAPABILITY", "", -1 },
	{ "CAPABILITYX is not CAPABILITY", "* CAPABILITYX IMAP4rev1", 0, "a1",
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "CAPABILITYX IMAP4rev1", NULL, -1 },
	{ "other data", "* 3 EXISTS", 0, "a1", LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "3 EXISTS", NULL, -1 },
	{ "OKAY is data", "* OKAY x", 0, "a1", LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "OKAY x", NULL, -1 },
	{ "ID with a literal", "* ID (\"name\" {7}", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "ID (\"name\" {7}", NULL,
	    7 },
	{ "literal8", "* 1 FETCH (BINARY[] ~{0}", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "1 FETCH (BINARY[] ~{0}",
	    NULL, 0 },
	{ "largest literal", "* X {65536}", 0, "a1", LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "X {65536}", NULL, 65536 },
	{ "literal with leading zeros", "* X {00000000000000000000000005}", 0, "a1",
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "X {00000000000000000000000005}", NULL, 5 },
	{ "literal too large", "* X {65537}", 0, "a1", LOGIN_IMAP_INVALID,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "literal beyond 64 bits", "* X {99999999999999999999999999}", 0, "a1",
	    LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL,
	    NULL, -1 },
	{ "not a literal: {}", "* X {}", 0, "a1", LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "X {}", NULL, -1 },
	{ "not a literal: {5+}", "* X {5+}", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "X {5+}", NULL, -1 },
	{ "not a literal: in the middle", "* X {5} y", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "X {5} y", NULL, -1 },
	{ "status text ending in {n} is text", "* OK see {5}", 0, "a1", LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL, "see {5}", NULL, -1 },
	{ "tagged text ending in {n} is text", "a1 NO go {99999999}", 0, "a1",
	    LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "go {99999999}", NULL, -1 },
	{ "STARTTLS OK", "a1 OK Begin TLS negotiation now.", 0, "a1", LOGIN_IMAP_TAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL, "Begin TLS negotiation now.",
	    NULL, -1 },
	{ "login OK with capabilities", "a3 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE "
	    "SORT] Logged in", 0, "a3", LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_OK,
	    LOGIN_IMAP_CODE_CAPABILITY, "CAPABILITY", "IMAP4rev1 SASL-IR ID ENABLE IDLE SORT",
	    "Logged in", "IMAP4rev1 SASL-IR ID ENABLE IDLE SORT", -1 },
	{ "Dovecot bad password", "a3 NO [AUTHENTICATIONFAILED] Authentication failed.", 0,
	    "a3", LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_AUTHENTICATIONFAILED,
	    "AUTHENTICATIONFAILED", NULL, "Authentication failed.", NULL, -1 },
	{ "Gmail app password", "a1 NO [ALERT] Application-specific password required: "
	    "https://support.google.com/accounts/answer/185833 (Failure)", 0, "a1",
	    LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_ALERT, "ALERT", NULL,
	    "Application-specific password required: "
	    "https://support.google.com/accounts/answer/185833 (Failure)", NULL, -1 },
	{ "Outlook failure", "a1 NO AUTHENTICATE failed.", 0, "a1", LOGIN_IMAP_TAGGED,
	    LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_NONE, NULL, NULL, "AUTHENTICATE failed.", NULL,
	    -1 },
	{ "privacy required", "a2 NO [PRIVACYREQUIRED] Use STARTTLS first", 0, "a2",
	    LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_PRIVACYREQUIRED,
	    "PRIVACYREQUIRED", NULL, "Use STARTTLS first", NULL, -1 },
	{ "code with arguments", "a1 NO [LIMIT 10] too many sessions", 0, "a1",
	    LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_LIMIT, "LIMIT", "10",
	    "too many sessions", NULL, -1 },
	{ "unknown code", "a1 NO [WEBALERT https://accounts.example/x] log in on the web", 0,
	    "a1", LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_OTHER, "WEBALERT",
	    "https://accounts.example/x", "log in on the web", NULL, -1 },
	{ "lower-case status and code", "a1 ok [capability imap4rev1 auth=plain] hi", 0, "a1",
	    LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_CAPABILITY, "capability",
	    "imap4rev1 auth=plain", "hi", "imap4rev1 auth=plain", -1 },
	{ "CAPABILITY code, empty", "* OK [CAPABILITY] x", 0, NULL, LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_CAPABILITY, "CAPABILITY", NULL, "x", "", -1 },
	{ "tagged OK without text", "a1 OK", 0, "a1", LOGIN_IMAP_TAGGED, LOGIN_IMAP_STATUS_OK,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "", NULL, -1 },
	{ "code without text", "a1 NO [AUTHENTICATIONFAILED]", 0, "a1", LOGIN_IMAP_TAGGED,
	    LOGIN_IMAP_STATUS_NO, LOGIN_IMAP_CODE_AUTHENTICATIONFAILED, "AUTHENTICATIONFAILED",
	    NULL, "", NULL, -1 },
	{ "unclosed code is text", "* OK [ALERT oops", 0, NULL, LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL, "[ALERT oops", NULL, -1 },
	{ "empty code is text", "* OK [] x", 0, NULL, LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_OK,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "[] x", NULL, -1 },
	{ "code atom with a space first is text", "* OK [ ALERT] x", 0, NULL,
	    LOGIN_IMAP_UNTAGGED, LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "[ ALERT] x", NULL, -1 },
	{ "code atom with a bad char is text", "* OK [AL(ERT] x", 0, NULL, LOGIN_IMAP_UNTAGGED,
	    LOGIN_IMAP_STATUS_OK, LOGIN_IMAP_CODE_NONE, NULL, NULL, "[AL(ERT] x", NULL, -1 },
	{ "AUTHENTICATE challenge", "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
	    0, "a2", LOGIN_IMAP_CONTINUE, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL,
	    NULL, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+", NULL, -1 },
	{ "empty challenge", "+ ", 0, "a2", LOGIN_IMAP_CONTINUE, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, "", NULL, -1 },
	{ "empty challenge, no space", "+", 0, "a2", LOGIN_IMAP_CONTINUE,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, "", NULL, -1 },
	{ "continuation text", "+ Ready for additional command text {5}", 0, "a2",
	    LOGIN_IMAP_CONTINUE, LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL,
	    "Ready for additional command text {5}", NULL, -1 },
	{ "tag mismatch", "a2 OK done", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tag prefix", "a1 OK done", 0, "a10", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tag case differs", "A1 OK done", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tagged while none expected", "a1 OK done", 0, NULL, LOGIN_IMAP_INVALID,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tagged PREAUTH", "a1 PREAUTH x", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tagged BYE", "a1 BYE x", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tag alone", "a1", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "tag and space", "a1 ", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "two spaces after the tag", "a1  OK", 0, "a1", LOGIN_IMAP_INVALID,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "leading space", " a1 OK", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "star alone", "*", 0, NULL, LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "star and space", "* ", 0, NULL, LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "star glued", "*OK ready", 0, NULL, LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "star and two spaces", "*  OK", 0, NULL, LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "plus glued", "+OK", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "POP3 banner", "+OK Dovecot ready.", 0, NULL, LOGIN_IMAP_INVALID,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "SMTP banner", "220 mx.isp.example ESMTP", 0, NULL, LOGIN_IMAP_INVALID,
	    LOGIN_IMAP_STATUS_NONE, LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "empty line", "", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "NUL inside", "* OK a\0b", 8, NULL, LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "CR inside", "a1 OK a\rb", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
	{ "LF inside", "* OK x\na1 OK y", 0, "a1", LOGIN_IMAP_INVALID, LOGIN_IMAP_STATUS_NONE,
	    LOGIN_IMAP_CODE_NONE, NULL, NULL, NULL, NULL, -1 },
};

static void
imap_parses_each_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(imap_cases); i++) {
		const char *name = imap_cases[i].name, *line = imap_cases[i].line;
		size_t len = case_len(line, imap_cases[i].len);
		struct login_imap_line l;
		enum login_imap_kind got;

		memset(&l, 0xa5, sizeof l);
		got = login_imap_parse_line(line, len, imap_cases[i].tag, &l);
		if (got != imap_cases[i].want || l.kind != got)
			fail_msg("%s: got %s (%s), want %s", name, login_imap_kind_name(got),
			    l.why ? l.why : "", login_imap_kind_name(imap_cases[i].want));
		if (l.status != imap_cases[i].status)
			fail_msg("%s: got status %s, want %s", name, login_imap_status_name(l.status),
			    login_imap_status_name(imap_cases[i].status));
		if (l.code != imap_cases[i].code)
			fail_msg("%s: got code %s, want %s", name, login_imap_code_name(l.code),
			    login_imap_code_name(imap_cases[i].code));
		check_span(name, "tag", line, len, l.tag,
		    got == LOGIN_IMAP_TAGGED ? imap_cases[i].tag : NULL);
		check_span(name, "code_name", line, len, l.code_name, imap_cases[i].code_name);
		check_span(name, "code_args", line, len, l.code_args, imap_cases[i].code_args);
		check_span(name, "text", line, len, l.text, imap_cases[i].text);
		check_span(name, "caps", line, len, l.caps, imap_cases[i].caps);
		if (l.literal != (imap_cases[i].literal >= 0) ||
		    (l.literal && l.literal_len != (size_t)imap_cases[i].literal) ||
		    (!l.literal && l.literal_len != 0))
			fail_msg("%s: got literal %d %zu, want %d", name, l.literal, l.literal_len,
			    imap_cases[i].literal);
		if ((got == LOGIN_IMAP_INVALID) != (l.why != NULL))
			fail_msg("%s: why = %s", name, l.why ? l.why : "NULL");
	}
}

static void
imap_says_why(void **state)
{
	struct login_imap_line l;

	(void)state;
	login_imap_parse_line("a2 OK x", 7, "a1", &l);
	assert_string_equal(l.why, "a tagged reply with a tag that was not sent");
	login_imap_parse_line("a1 OK x", 7, NULL, &l);
	assert_string_equal(l.why, "a tagged reply while no command was sent");
	login_imap_parse_line("* X {70000}", 11, NULL, &l);
	assert_string_equal(l.why, "a literal larger than 65536 octets");
	login_imap_parse_line("* OK \r", 6, NULL, &l);
	assert_string_equal(l.why, "NUL, CR or LF inside the line");
}

static void
imap_line_length_limit(void **state)
{
	static char line[LOGIN_LINE_MAX + 1];
	struct login_imap_line l;
	size_t n;

	(void)state;
	memcpy(line, "* OK ", 5);
	memset(line + 5, 'x', sizeof line - 5);
	assert_int_equal(login_imap_parse_line(line, LOGIN_LINE_MAX - 1, NULL, &l),
	    LOGIN_IMAP_UNTAGGED);
	assert_int_equal(l.text.len, LOGIN_LINE_MAX - 6);
	assert_int_equal(login_imap_parse_line(line, LOGIN_LINE_MAX, NULL, &l),
	    LOGIN_IMAP_INVALID);
	assert_non_null(strstr(l.why, "8192"));
	memcpy(line + LOGIN_LINE_MAX - 4, "{1}", 3);
	assert_int_equal(login_imap_literal(line, LOGIN_LINE_MAX - 1, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(login_imap_literal(line, LOGIN_LINE_MAX, &n), -1);
	assert_int_equal(n, 0);
}

static const struct {
	const char *name, *line;
	size_t len;
	int want;
	size_t n;
} literal_cases[] = {
	{ "rest of an ID response", " \"vendor\" {6}", 0, 1, 6 },
	{ "last part", " \"version\" \"2.3\")", 0, 0, 0 },
	{ "literal alone", "{12}", 0, 1, 12 },
	{ "zero", "{0}", 0, 1, 0 },
	{ "largest", "{65536}", 0, 1, 65536 },
	{ "too large", "{65537}", 0, -1, 0 },
	{ "no digits", "{}", 0, 0, 0 },
	{ "no brace", "12}", 0, 0, 0 },
	{ "sign", "{-1}", 0, 0, 0 },
	{ "empty", "", 0, 0, 0 },
	{ "closing brace alone", "}", 0, 0, 0 },
	{ "NUL", "x\0{1}", 5, -1, 0 },
	{ "CR", "{1}\r", 0, -1, 0 },
};

static void
imap_finds_literals(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(literal_cases); i++) {
		const char *line = literal_cases[i].line;
		size_t n = 99;
		int got = login_imap_literal(line, case_len(line, literal_cases[i].len), &n);

		if (got != literal_cases[i].want || n != literal_cases[i].n)
			fail_msg("%s: got %d, n %zu, want %d, n %zu", literal_cases[i].name, got, n,
			    literal_cases[i].want, literal_cases[i].n);
	}
}

enum { REV1 = 1 << 0, REV2 = 1 << 1, STARTTLS = 1 << 2, LOGINDIS = 1 << 3, SASLIR = 1 << 4 };

static const struct {
	const char *name, *list;
	unsigned flags;
	const char *mechs;
} imap_caps_cases[] = {
	{ "Dovecot before STARTTLS", "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
	    "STARTTLS LOGINDISABLED", REV1 | SASLIR | STARTTLS | LOGINDIS, "" },
	{ "Dovecot after STARTTLS", "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
	    "AUTH=PLAIN AUTH=LOGIN", REV1 | SASLIR, "PLAIN LOGIN" },
	{ "Dovecot, IMAP4rev2", "IMAP4rev1 IMAP4rev2 SASL-IR AUTH=PLAIN AUTH=SCRAM-SHA-256",
	    REV1 | REV2 | SASLIR, "PLAIN SCRAM-SHA-256" },
	{ "Cyrus", "IMAP4rev1 LITERAL+ ID ENABLE STARTTLS AUTH=PLAIN AUTH=LOGIN "
	    "AUTH=SCRAM-SHA-256 SASL-IR", REV1 | STARTTLS | SASLIR, "PLAIN LOGIN SCRAM-SHA-256" },
	{ "Gmail", "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY "
	    "SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH",
	    REV1 | SASLIR, "XOAUTH2 PLAIN PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH" },
	{ "Outlook", "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT "
	    "CHILDREN IDLE NAMESPACE LITERAL+", REV1 | SASLIR, "PLAIN XOAUTH2" },
	{ "Courier", "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT SORT QUOTA "
	    "IDLE ACL ACL2=UNION STARTTLS", REV1 | STARTTLS, "" },
	{ "lower case", "imap4rev1 starttls auth=plain auth=cram-md5 sasl-ir logindisabled",
	    REV1 | STARTTLS | SASLIR | LOGINDIS, "PLAIN CRAM-MD5" },
	{ "duplicates", "AUTH=PLAIN auth=plain AUTH=Plain", 0, "PLAIN" },
	{ "bad names dropped", "AUTH= AUTH=PL@IN AUTH=ABCDEFGHIJKLMNOPQRSTU "
	    "AUTH=ABCDEFGHIJKLMNOPQRST AUTH", 0, "ABCDEFGHIJKLMNOPQRST" },
	{ "prefixes are not atoms", "STARTTLSX IMAP4rev1x XSASL-IR AUTHX=PLAIN", 0, "" },
	{ "IMAP4 alone", "IMAP4", 0, "" },
	{ "spaces", "   IMAP4rev1    STARTTLS  ", REV1 | STARTTLS, "" },
	{ "empty", "", 0, "" },
};

static void
imap_parses_caps(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(imap_caps_cases); i++) {
		struct login_imap_caps c;
		unsigned flags;

		memset(&c, 0xa5, sizeof c);
		login_imap_caps_parse(imap_caps_cases[i].list, strlen(imap_caps_cases[i].list), &c);
		flags = (c.imap4rev1 ? REV1 : 0) | (c.imap4rev2 ? REV2 : 0) |
		    (c.starttls ? STARTTLS : 0) | (c.logindisabled ? LOGINDIS : 0) |
		    (c.sasl_ir ? SASLIR : 0);
		if (flags != imap_caps_cases[i].flags)
			fail_msg("%s: got flags %#x, want %#x", imap_caps_cases[i].name, flags,
			    imap_caps_cases[i].flags);
		if (strcmp(c.mechs, imap_caps_cases[i].mechs) != 0)
			fail_msg("%s: got mechs \"%s\", want \"%s\"", imap_caps_cases[i].name, c.mechs,
			    imap_caps_cases[i].mechs);
	}
}

/* From the line to the struct, as login.c will: the greeting's code list,
 * then (after STARTTLS) a CAPABILITY reply replaces it. */
static void
imap_caps_from_lines(void **state)
{
	const char *greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready";
	const char *after = "* CAPABILITY IMAP4rev1 AUTH=PLAIN";
	struct login_imap_line l;
	struct login_imap_caps c;

	(void)state;
	assert_int_equal(login_imap_parse_line(greeting, strlen(greeting), NULL, &l),
	    LOGIN_IMAP_UNTAGGED);
	login_imap_caps_parse(l.caps.s, l.caps.len, &c);
	assert_true(c.starttls && c.logindisabled && c.imap4rev1);
	assert_string_equal(c.mechs, "");
	assert_int_equal(login_imap_parse_line(after, strlen(after), "a1", &l),
	    LOGIN_IMAP_UNTAGGED);
	login_imap_caps_parse(l.caps.s, l.caps.len, &c);
	assert_false(c.starttls || c.logindisabled);
	assert_true(c.imap4rev1);
	assert_string_equal(c.mechs, "PLAIN");
	/* absent list: nothing offered */
	login_imap_caps_parse(NULL, 0, &c);
	assert_false(c.imap4rev1);
}

/* --- names ------------------------------------------------------------------ */

static void
every_enum_has_a_name(void **state)
{
	(void)state;
	for (int i = LOGIN_POP3_OK; i <= LOGIN_POP3_INVALID; i++)
		assert_string_not_equal(login_pop3_kind_name((enum login_pop3_kind)i), "?");
	for (int i = LOGIN_POP3_CODE_NONE; i <= LOGIN_POP3_CODE_OTHER; i++)
		assert_string_not_equal(login_pop3_code_name((enum login_pop3_code)i), "?");
	for (int i = LOGIN_POP3_MULTI_LINE; i <= LOGIN_POP3_MULTI_INVALID; i++)
		assert_string_not_equal(login_pop3_multi_name((enum login_pop3_multi)i), "?");
	for (int i = LOGIN_IMAP_UNTAGGED; i <= LOGIN_IMAP_INVALID; i++)
		assert_string_not_equal(login_imap_kind_name((enum login_imap_kind)i), "?");
	for (int i = LOGIN_IMAP_STATUS_NONE; i <= LOGIN_IMAP_STATUS_BYE; i++)
		assert_string_not_equal(login_imap_status_name((enum login_imap_status)i), "?");
	for (int i = LOGIN_IMAP_CODE_NONE; i <= LOGIN_IMAP_CODE_OTHER; i++)
		assert_non_null(login_imap_code_name((enum login_imap_code)i));
	assert_string_equal(login_pop3_code_name(LOGIN_POP3_CODE_SYS_TEMP), "SYS/TEMP");
	assert_string_equal(login_imap_code_name(LOGIN_IMAP_CODE_AUTHENTICATIONFAILED),
	    "AUTHENTICATIONFAILED");
	assert_string_equal(login_imap_kind_name((enum login_imap_kind)99), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pop3_parses_each_line),
		cmocka_unit_test(pop3_line_length_limit),
		cmocka_unit_test(pop3_finds_apop_timestamp),
		cmocka_unit_test(pop3_apop_timestamp_length),
		cmocka_unit_test(pop3_parses_multi_lines),
		cmocka_unit_test(pop3_parses_capa_lines),
		cmocka_unit_test(pop3_gathers_caps),
		cmocka_unit_test(pop3_caps_line_count),
		cmocka_unit_test(mech_lists_stay_bounded),
		cmocka_unit_test(imap_parses_each_line),
		cmocka_unit_test(imap_says_why),
		cmocka_unit_test(imap_line_length_limit),
		cmocka_unit_test(imap_finds_literals),
		cmocka_unit_test(imap_parses_caps),
		cmocka_unit_test(imap_caps_from_lines),
		cmocka_unit_test(every_enum_has_a_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
