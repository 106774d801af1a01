/* test_inject_msg.c - preparing a locally submitted message (inject_msg.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "inject_msg.h"

#define NOW      ((time_t)1795489200)
#define FROM     "From: <joe@lan.example>\r\n"
#define DATE     "Date: Tue, 24 Nov 2026 03:00:00 +0000\r\n"
#define MSGID    "Message-ID: <0196A3F2C4E51A2B3C@relay.example>\r\n"
#define ADDED    FROM DATE MSGID
#define COMPLETE "From: a@b\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n"
#define COMPLETE_CRLF "From: a@b\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m@x>\r\n"

enum { NO_T = 0, T = 1 };
enum { DOT = 0, DASH_I = 1 };

static const struct inject_case {
	const char *name;
	const char *input;
	size_t len;                 /* 0: strlen(input) */
	int t, i;
	const char *full_name;
	const char *sender;         /* NULL: joe@lan.example */
	const char *want;           /* NULL: an error is wanted */
	const char *want_rcpts;     /* "a|b"; NULL = "" */
	const char *want_err;       /* a part of the error message */
	int want_8bit;
} cases[] = {
	/* line ends */
	{ "complete header, LF becomes CRLF", COMPLETE "Subject: s\n\nbody\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "Subject: s\r\n\r\nbody\r\n", NULL, NULL, 0 },
	{ "CRLF input kept", COMPLETE_CRLF "\r\nbody\r\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "\r\nbody\r\n", NULL, NULL, 0 },
	{ "bare CR ends a line", "Subject: s\r\rbody\r", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n\r\nbody\r\n", NULL, NULL, 0 },
	{ "missing final line end", "Subject: s\n\nbody", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n\r\nbody\r\n", NULL, NULL, 0 },
	{ "mbox From line dropped", "From joe@x Mon Jan  1 00:00:00 2026\nSubject: s\n\nb\n", 0,
	  NO_T, DOT, NULL, NULL, ADDED "Subject: s\r\n\r\nb\r\n", NULL, NULL, 0 },
	/* added fields */
	{ "all missing: added at the top", "Subject: s\n\nbody\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n\r\nbody\r\n", NULL, NULL, 0 },
	{ "only Date missing", "From: a@b\nMessage-ID: <m@x>\n\nb\n", 0, NO_T, DOT,
	  NULL, NULL, DATE "From: a@b\r\nMessage-ID: <m@x>\r\n\r\nb\r\n", NULL, NULL, 0 },
	{ "field names without case", "FROM: a@b\ndate: x\nmessage-id: <m@x>\n\n", 0, NO_T, DOT,
	  NULL, NULL, "FROM: a@b\r\ndate: x\r\nmessage-id: <m@x>\r\n\r\n", NULL, NULL, 0 },
	{ "From in the body does not count", "Subject: s\n\nFrom: a@b\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n\r\nFrom: a@b\r\n", NULL, NULL, 0 },
	{ "body only", "hello\nworld\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "\r\nhello\r\nworld\r\n", NULL, NULL, 0 },
	{ "empty input", "", 0, NO_T, DOT, NULL, NULL, ADDED "\r\n", NULL, NULL, 0 },
	{ "header only, no body", "Subject: s\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n", NULL, NULL, 0 },
	{ "text line ends the header", "Subject: s\nhello\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n\r\nhello\r\n", NULL, NULL, 0 },
	{ "empty line first", "\nbody\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "\r\nbody\r\n", NULL, NULL, 0 },
	/* From: */
	{ "full name plain", "\n", 0, NO_T, DOT, "Joe User", NULL,
	  "From: Joe User <joe@lan.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "full name needing quotes", "\n", 0, NO_T, DOT, "Joe Q. User, Jr", NULL,
	  "From: \"Joe Q. User, Jr\" <joe@lan.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "full name with quote and backslash", "\n", 0, NO_T, DOT, "Joe \"X\" \\ Y", NULL,
	  "From: \"Joe \\\"X\\\" \\\\ Y\" <joe@lan.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "full name cannot inject a field", "\n", 0, NO_T, DOT, "Joe\r\nBcc: evil@x", NULL,
	  "From: \"Joe  Bcc: evil@x\" <joe@lan.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "full name trimmed", "\n", 0, NO_T, DOT, "  Joe  ", NULL,
	  "From: Joe <joe@lan.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "full name UTF-8 is encoded", "\n", 0, NO_T, DOT, "J\xc3\xb6rg M\xc3\xbcller", NULL,
	  "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joe@lan.example>\r\n" DATE MSGID "\r\n",
	  NULL, NULL, 0 },
	{ "empty full name", "\n", 0, NO_T, DOT, "", NULL, ADDED "\r\n", NULL, NULL, 0 },
	{ "sender without domain", "\n", 0, NO_T, DOT, NULL, "root",
	  "From: <root@relay.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	{ "null sender", "\n", 0, NO_T, DOT, NULL, "",
	  "From: <MAILER-DAEMON@relay.example>\r\n" DATE MSGID "\r\n", NULL, NULL, 0 },
	/* Bcc: */
	{ "Bcc removed with continuation lines",
	  COMPLETE "To: a@b\nBcc: c@d,\n  e@f\n\tg@h\nSubject: s\n\nb\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "To: a@b\r\nSubject: s\r\n\r\nb\r\n", NULL, NULL, 0 },
	{ "bcc and Resent-Bcc removed", COMPLETE "bcc: x@y\nResent-Bcc: z@y\nX: 1\n\n", 0, NO_T,
	  DOT, NULL, NULL, COMPLETE_CRLF "X: 1\r\n\r\n", NULL, NULL, 0 },
	{ "Bcc as the last field, no body", COMPLETE "Bcc: x@y\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF, NULL, NULL, 0 },
	{ "Bcc in the body kept", COMPLETE "\nBcc: x@y\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "\r\nBcc: x@y\r\n", NULL, NULL, 0 },
	/* -t */
	{ "-t: To, Cc, Bcc without duplicates",
	  COMPLETE "To: A <a@b>, c@d\nCc: a@B, list: e@f;\nX-To: no@no\nBcc: g@h,\n c@d\n\nTo: no@body\n",
	  0, T, DOT, NULL, NULL,
	  COMPLETE_CRLF "To: A <a@b>, c@d\r\nCc: a@B, list: e@f;\r\nX-To: no@no\r\n\r\nTo: no@body\r\n",
	  "a@b|c@d|e@f|g@h", NULL, 0 },
	{ "-t: undisclosed recipients and Bcc", COMPLETE "To: undisclosed-recipients:;\nBcc: x@y\n\n",
	  0, T, DOT, NULL, NULL, COMPLETE_CRLF "To: undisclosed-recipients:;\r\n\r\n",
	  "x@y", NULL, 0 },
	{ "-t: none found", COMPLETE "Subject: s\n\n", 0, T, DOT, NULL, NULL,
	  COMPLETE_CRLF "Subject: s\r\n\r\n", NULL, NULL, 0 },
	{ "-t: a bad list is an error", "To: Joe <a@b\n\n", 0, T, DOT, NULL, NULL,
	  NULL, NULL, "To:", 0 },
	{ "-t: a bad Cc is an error", "Cc: \"a@b\n\n", 0, T, DOT, NULL, NULL,
	  NULL, NULL, "Cc:", 0 },
	{ "without -t a bad list is kept", COMPLETE "To: Joe <a@b\n\n", 0, NO_T, DOT, NULL, NULL,
	  COMPLETE_CRLF "To: Joe <a@b\r\n\r\n", NULL, NULL, 0 },
	/* the lone dot */
	{ "dot ends the input", COMPLETE "\nline\n.\nafter\n", 0, NO_T, DOT, NULL, NULL,
	  COMPLETE_CRLF "\r\nline\r\n", NULL, NULL, 0 },
	{ "dot with -i is text", COMPLETE "\nline\n.\nafter\n", 0, NO_T, DASH_I, NULL, NULL,
	  COMPLETE_CRLF "\r\nline\r\n.\r\nafter\r\n", NULL, NULL, 0 },
	{ "dot before CRLF ends the input", COMPLETE_CRLF "\r\nline\r\n.\r\nafter", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "\r\nline\r\n", NULL, NULL, 0 },
	{ "dot at the end without line end", COMPLETE "\nline\n.", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "\r\nline\r\n", NULL, NULL, 0 },
	{ "two dots are text", COMPLETE "\n..\n. \n.x\n", 0, NO_T, DOT,
	  NULL, NULL, COMPLETE_CRLF "\r\n..\r\n. \r\n.x\r\n", NULL, NULL, 0 },
	{ "dot in the header ends the input", "Subject: s\n.\nTo: x@y\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "Subject: s\r\n", NULL, NULL, 0 },
	{ "dot first: empty message", ".\nSubject: s\n", 0, NO_T, DOT,
	  NULL, NULL, ADDED "\r\n", NULL, NULL, 0 },
	{ "NUL after the dot is never read", COMPLETE "\n.\n\0", sizeof COMPLETE "\n.\n\0" - 1,
	  NO_T, DOT, NULL, NULL, COMPLETE_CRLF "\r\n", NULL, NULL, 0 },
	/* errors */
	{ "NUL in the body", COMPLETE "\nab\0c\n", sizeof COMPLETE "\nab\0c\n" - 1, NO_T, DOT,
	  NULL, NULL, NULL, NULL, "line 5 of the message contains a NUL", 0 },
	{ "NUL in the header", "Subject: \0\n\n", 12, NO_T, DOT,
	  NULL, NULL, NULL, NULL, "line 1 of the message contains a NUL", 0 },
	{ "NUL with -i", "\0", 1, NO_T, DASH_I, NULL, NULL, NULL, NULL, "NUL", 0 },
	/* 8-bit */
	{ "8-bit body", COMPLETE "\nK\xc3\xa4se\n", 0, NO_T, DOT, NULL, NULL,
	  COMPLETE_CRLF "\r\nK\xc3\xa4se\r\n", NULL, NULL, 1 },
	{ "8-bit header", COMPLETE "Subject: K\xc3\xa4se\n\n", 0, NO_T, DOT, NULL, NULL,
	  COMPLETE_CRLF "Subject: K\xc3\xa4se\r\n\r\n", NULL, NULL, 1 },
	{ "8-bit after the dot does not count", COMPLETE "\n.\n\xff\n", 0, NO_T, DOT, NULL, NULL,
	  COMPLETE_CRLF "\r\n", NULL, NULL, 0 },
};

/* s with CR and LF made visible, in a static buffer (tests only). */
static const char *
visible(const char *s, size_t n, char *out, size_t size)
{
	size_t len = 0;

	for (size_t i = 0; s && i < n && len + 4 < size; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			out[len++] = '\\';
			out[len++] = s[i] == '\r' ? 'r' : 'n';
		} else {
			out[len++] = s[i];
		}
	}
	out[len] = '\0';
	return s ? out : "(null)";
}

static struct inject_opts
opts_for(const struct inject_case *c)
{
	struct inject_opts o = {
		.recipients_from_headers = c->t,
		.dot_ends_input = !c->i,
		.sender = c->sender ? c->sender : "joe@lan.example",
		.full_name = c->full_name,
		.hostname = "relay.example",
		.queue_id = "0196A3F2C4E51A2B3C",
		.now = NOW,
	};

	return o;
}

static void
join_rcpts(const struct inject_msg *m, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; i < m->nrcpts; i++) {
		size_t len = strlen(out);

		snprintf(out + len, size - len, "%s%s", i ? "|" : "", m->rcpts[i]);
	}
}

static void
prepares_each_case(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct inject_case *c = &cases[i];
		struct inject_opts o = opts_for(c);
		struct inject_msg m;
		struct err err = { "" };
		char got[2048], want[2048], rcpts[512];
		size_t len = c->len ? c->len : strlen(c->input);
		int rc = inject_msg_prepare(c->input, len, &o, &m, &err);

		if (c->want == NULL) {
			if (rc != -1)
				fail_msg("%s: got success \"%s\", want an error", c->name,
				    visible(m.content, m.len, got, sizeof got));
			if (strstr(err.msg, c->want_err) == NULL)
				fail_msg("%s: got error \"%s\", want one with \"%s\"", c->name,
				    err.msg, c->want_err);
			if (m.content != NULL || m.rcpts != NULL || m.nrcpts != 0)
				fail_msg("%s: results left after an error", c->name);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got error \"%s\", want success", c->name, err.msg);
		if (m.len != strlen(c->want) || memcmp(m.content, c->want, m.len) != 0)
			fail_msg("%s:\n got  %s\n want %s", c->name,
			    visible(m.content, m.len, got, sizeof got),
			    visible(c->want, strlen(c->want), want, sizeof want));
		join_rcpts(&m, rcpts, sizeof rcpts);
		if (strcmp(rcpts, c->want_rcpts ? c->want_rcpts : "") != 0)
			fail_msg("%s: got recipients \"%s\", want \"%s\"", c->name, rcpts,
			    c->want_rcpts ? c->want_rcpts : "");
		if (m.eight_bit != (c->want_8bit != 0))
			fail_msg("%s: got eight_bit %d, want %d", c->name, m.eight_bit, c->want_8bit);
		inject_msg_free(&m);
	}
}

/* A message with one body line of n octets of 'x'. */
static char *
message_with_line(size_t n, size_t *len)
{
	static const char head[] = COMPLETE "\n";
	char *s = malloc(sizeof head + n + 2);

	memcpy(s, head, sizeof head - 1);
	memset(s + sizeof head - 1, 'x', n);
	memcpy(s + sizeof head - 1 + n, "\n", 2);
	*len = sizeof head - 1 + n + 1;
	return s;
}

static void
limits_line_length(void **state)
{
	static const struct { const char *name; size_t n; int want; } lines[] = {
		{ "998 octets", 998, 0 },
		{ "999 octets", 999, -1 },
		{ "100000 octets", 100000, -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct inject_case c = { .name = lines[i].name };
		struct inject_opts o = opts_for(&c);
		struct inject_msg m;
		struct err err = { "" };
		size_t len;
		char *input = message_with_line(lines[i].n, &len);
		int rc = inject_msg_prepare(input, len, &o, &m, &err);

		if (rc != lines[i].want)
			fail_msg("%s: got %d (%s), want %d", lines[i].name, rc, err.msg, lines[i].want);
		if (rc < 0 && strstr(err.msg, "line 5 of the message is longer than 998") == NULL)
			fail_msg("%s: got error \"%s\"", lines[i].name, err.msg);
		if (rc == 0)
			inject_msg_free(&m);
		free(input);
	}
}

static void
limits_header_recipients(void **state)
{
	static const char input[] = "To: a@b, c@d, A@B\nCc: e@f\n\n";
	struct inject_case c = { .name = "max", .t = T };
	struct inject_opts o = opts_for(&c);
	struct inject_msg m;
	struct err err = { "" };

	(void)state;
	o.max_recipients = 3;
	assert_int_equal(inject_msg_prepare(input, strlen(input), &o, &m, &err), 0);
	assert_int_equal(m.nrcpts, 3);
	inject_msg_free(&m);

	o.max_recipients = 2;
	assert_int_equal(inject_msg_prepare(input, strlen(input), &o, &m, &err), -1);
	assert_non_null(strstr(err.msg, "more than 2 recipients"));
	assert_null(m.rcpts);
}

static void
folds_a_long_encoded_name(void **state)
{
	char name[200] = "";
	struct inject_case c = { .name = "long" };
	struct inject_opts o = opts_for(&c);
	struct inject_msg m;
	struct err err = { "" };
	const char *line;
	size_t words = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		strcat(name, "\xc3\xa9");     /* 40 x U+00E9: 240 encoded octets */
	o.full_name = name;
	assert_int_equal(inject_msg_prepare("\n", 1, &o, &m, &err), 0);
	for (line = m.content; line < m.content + m.len; ) {
		const char *end = strstr(line, "\r\n");

		assert_non_null(end);
		if ((size_t)(end - line) > 78)
			fail_msg("line of %zu octets: %.*s", (size_t)(end - line), (int)(end - line), line);
		/* No character is split: each word holds whole =C3=A9 pairs. */
		if (strncmp(line, "From: =?UTF-8?Q?", 16) == 0 || strncmp(line, " =?UTF-8?Q?", 11) == 0) {
			const char *q = strstr(line, "?Q?") + 3, *e = strstr(q, "?=");

			assert_int_equal((size_t)(e - q) % 6, 0);
			words++;
		}
		line = end + 2;
	}
	assert_true(words >= 4);
	assert_false(m.eight_bit);
	assert_non_null(strstr(m.content, " <joe@lan.example>\r\n"));
	inject_msg_free(&m);
}

static void
refuses_an_absurd_sender(void **state)
{
	char sender[600];
	struct inject_case c = { .name = "sender" };
	struct inject_opts o = opts_for(&c);
	struct inject_msg m;
	struct err err = { "" };

	(void)state;
	memset(sender, 'a', sizeof sender - 1);
	sender[sizeof sender - 1] = '\0';
	o.sender = sender;
	assert_int_equal(inject_msg_prepare("\n", 1, &o, &m, &err), -1);
	assert_non_null(strstr(err.msg, "sender"));
}

static void
frees_an_empty_result(void **state)
{
	struct inject_msg m = { 0 };

	(void)state;
	inject_msg_free(&m);
	inject_msg_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prepares_each_case),
		cmocka_unit_test(limits_line_length),
		cmocka_unit_test(limits_header_recipients),
		cmocka_unit_test(folds_a_long_encoded_name),
		cmocka_unit_test(refuses_an_absurd_sender),
		cmocka_unit_test(frees_an_empty_result),
	};

	/* Date: is local time; the expected values are in UTC. */
	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
