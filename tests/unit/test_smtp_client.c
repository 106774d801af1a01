/* test_smtp_client.c - smtp_client against a scripted fake gateway.
 *
 * The fake runs in a thread on a loopback listening socket: it accepts one
 * connection and plays a table of steps (the lines the client must send,
 * then the reply), recording every byte it receives.  A step that expects
 * several lines replies only after all of them arrived, so a client that
 * does not pipeline would stall there.  TLS and AUTH against real servers
 * are the integration tests' business. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_client.h"

#define N(array) (sizeof(array) / sizeof((array)[0]))

#define BODY "<body>"           /* expect: message lines up to the "." line */
enum step_flag {
	QUIET = 1 << 0,         /* nothing more may arrive before we reply */
	HANGUP = 1 << 1,        /* close instead of replying */
	SILENT = 1 << 2,        /* never reply; wait for the client to go */
	HANGUP_AFTER_REPLY = 1 << 3,   /* reply, then hang up */
};

struct step {
	const char *expect;     /* lines the client must send, '\n' between; NULL: none */
	const char *reply;      /* what we send then (CRLF in the literal) */
	unsigned flags;
};

struct fake {
	int lfd, fd;
	uint16_t port;
	const struct step *steps;
	size_t nsteps;
	char *got;              /* every byte received */
	size_t len, cap;
	char error[512];
	pthread_t thread;
};

/* --- the fake gateway ------------------------------------------------------ */

static void
fake_keep(struct fake *f, char c)
{
	if (f->len + 1 >= f->cap) {
		f->cap = f->cap ? 2 * f->cap : 4096;
		f->got = realloc(f->got, f->cap);
		if (f->got == NULL)
			abort();
	}
	f->got[f->len++] = c;
	f->got[f->len] = '\0';
}

/* One line without its CRLF (at most size - 1 octets kept), or -1 at EOF or
 * after 5 s of silence. */
static int
fake_line(struct fake *f, char *line, size_t size)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = f->fd, .events = POLLIN };
		char c;

		if (poll(&p, 1, 5000) <= 0 || read(f->fd, &c, 1) != 1)
			return -1;
		fake_keep(f, c);
		if (c == '\n')
			break;
		if (n + 1 < size)
			line[n++] = c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 0;
}

static int fake_fail(struct fake *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Note the first thing that went against the script.  -1. */
static int
fake_fail(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	if (f->error[0] != '\0')
		return -1;
	va_start(ap, fmt);
	vsnprintf(f->error, sizeof f->error, fmt, ap);
	va_end(ap);
	return -1;
}

/* Read the lines a step expects; 0 when they all came as written. */
static int
fake_expect(struct fake *f, const char *expect)
{
	static char line[100000];

	if (strcmp(expect, BODY) == 0) {
		do {
			if (fake_line(f, line, sizeof line) == -1)
				return fake_fail(f, "the body ended without a \".\" line");
		} while (strcmp(line, ".") != 0);
		return 0;
	}
	while (*expect != '\0') {
		size_t n = strcspn(expect, "\n");

		if (fake_line(f, line, sizeof line) == -1)
			return fake_fail(f, "wanted \"%.*s\", got nothing", (int)n, expect);
		if (strlen(line) != n || memcmp(line, expect, n) != 0)
			return fake_fail(f, "wanted \"%.*s\", got \"%s\"", (int)n, expect, line);
		expect += n;
		expect += *expect == '\n';
	}
	return 0;
}

static void
fake_drain(struct fake *f, int ms)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	char c;

	while (poll(&p, 1, ms) > 0 && read(f->fd, &c, 1) == 1)
		fake_keep(f, c);
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };

	if (poll(&p, 1, 5000) <= 0 || (f->fd = accept(f->lfd, NULL, NULL)) < 0) {
		fake_fail(f, "no connection");
		return NULL;
	}
	for (size_t i = 0; i < f->nsteps; i++) {
		const struct step *s = &f->steps[i];
		struct pollfd q = { .fd = f->fd, .events = POLLIN };

		if (s->expect != NULL && fake_expect(f, s->expect) == -1)
			break;
		if (s->flags & HANGUP) {
			close(f->fd);   /* unread data: the client sees a reset */
			return NULL;
		}
		if (s->flags & SILENT) {
			fake_drain(f, 5000);
			break;
		}
		if ((s->flags & QUIET) && poll(&q, 1, 100) > 0) {
			fake_fail(f, "step %zu: the client sent more before our reply", i);
			break;
		}
		if (s->reply != NULL && write(f->fd, s->reply, strlen(s->reply)) < 0)
			break;
		if (s->flags & HANGUP_AFTER_REPLY)
			break;
	}
	fake_drain(f, 300);
	close(f->fd);
	return NULL;
}

static void
fake_start(struct fake *f, const struct step *steps, size_t nsteps)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	memset(f, 0, sizeof *f);
	f->steps = steps;
	f->nsteps = nsteps;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

/* Wait for the fake; its transcript stays in f->got (free with fake_free). */
static void
fake_join(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	if (f->got == NULL)
		f->got = calloc(1, 1);
	if (f->error[0] != '\0')
		fail_msg("fake gateway: %s; it got:\n%s", f->error, f->got);
}

/* --- the client's side ----------------------------------------------------- */

static struct config cfg = { .hostname = "client.example" };

static struct route
route_to(const struct fake *f)
{
	struct route r = {
		.name = "test", .smarthost = "127.0.0.1", .port = f->port, .tls = TLS_MODE_NONE,
		.tls_verify = true, .connect_timeout_ms = 2000, .reply_timeout_ms = 2000,
	};

	return r;
}

static int
content(const char *body, size_t len)
{
	int fd = memfd_create("body", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, len), (ssize_t)len);
	return fd;
}

#define GREETING { NULL, "220 fake.example ESMTP\r\n", 0 }
#define EHLO(caps) { "EHLO client.example", "250-fake.example\r\n" caps "250 HELP\r\n", 0 }
#define QUIT { "QUIT", "221 bye\r\n", 0 }

/* A message from a@lan.example to rcpts with this body. */
struct msg {
	struct smtp_message m;
	struct smtp_outcome out[8], whole;
};

static void
msg_init(struct msg *x, const char *const *rcpts, size_t n, const char *body, size_t len)
{
	memset(x, 0, sizeof *x);
	x->m.envelope_from = "a@lan.example";
	x->m.rcpts = rcpts;
	x->m.nrcpts = n;
	x->m.content_fd = content(body, len);
	x->m.size = len;
}

static void
check_outcome(const char *what, const struct smtp_outcome *o, enum delivery_status status,
    enum delivery_step step, const char *reply)
{
	if (o->status != status || o->step != step)
		fail_msg("%s: got %s at %s (%s), want %s at %s", what, delivery_status_name(o->status),
		    delivery_step_name(o->step), o->reply, delivery_status_name(status),
		    delivery_step_name(step));
	if (reply != NULL && strstr(o->reply, reply) == NULL)
		fail_msg("%s: got reply \"%s\", want it to contain \"%s\"", what, o->reply, reply);
}

static void
check_transcript(const struct fake *f, const char *want)
{
	if (strcmp(f->got, want) != 0)
		fail_msg("the gateway got:\n%s\nwant:\n%s", f->got, want);
}

/* Open, send one message, close; returns send's result. */
static int
one_message(struct fake *f, struct msg *x)
{
	struct route r = route_to(f);
	struct smtp_client *c;
	struct smtp_outcome o;
	int rc;

	if (smtp_client_open(&cfg, &r, NULL, &c, &o, NULL) != 0)
		fail_msg("open: %s at %s: %s", delivery_status_name(o.status),
		    delivery_step_name(o.step), o.reply);
	rc = smtp_client_send(c, &x->m, x->out, &x->whole);
	smtp_client_close(c);
	close(x->m.content_fd);
	fake_join(f);
	return rc;
}

static const char *const one_rcpt[] = { "b@ext.example" };

/* --- cases ----------------------------------------------------------------- */

static void
sends_one_message_end_to_end(void **state)
{
	static const char body[] = "Subject: hi\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n";
	static const struct step steps[] = {
		GREETING, EHLO("250-8BITMIME\r\n"),
		{ "MAIL FROM:<a@lan.example>", "250 2.1.0 ok\r\n", QUIET },
		{ "RCPT TO:<b@ext.example>", "250 2.1.5 ok\r\n", QUIET },
		{ "DATA", "354 go ahead\r\n", QUIET },
		{ BODY, "250 2.0.0 Ok: queued as ABC\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	r = route_to(&f);
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), 0);
	assert_non_null(strstr(smtp_client_info(c)->relay, "127.0.0.1"));
	assert_false(smtp_client_info(c)->tls);
	assert_string_equal(smtp_client_info(c)->auth_mech, "");
	assert_true(smtp_client_info(c)->caps.eightbitmime);
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), 0);
	smtp_client_close(c);
	close(x.m.content_fd);
	fake_join(&f);
	check_outcome("rcpt", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA,
	    "250 2.0.0 Ok: queued as ABC");
	check_outcome("message", &x.whole, DELIVERY_SENT, STEP_END_OF_DATA, "queued");
	check_transcript(&f, "EHLO client.example\r\nMAIL FROM:<a@lan.example>\r\n"
	    "RCPT TO:<b@ext.example>\r\nDATA\r\n"
	    "Subject: hi\r\n\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\nQUIT\r\n");
	free(f.got);
}

static void
pipelines_mail_rcpt_data(void **state)
{
	static const char body[] = "x\r\n";
	static const char *const rcpts[] = { "b@ext.example", "c@ext.example" };
	static const struct step steps[] = {
		GREETING, EHLO("250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"),
		/* all four lines before any reply: a stepwise client stalls here */
		{ "MAIL FROM:<a@lan.example> SIZE=3 BODY=8BITMIME\nRCPT TO:<b@ext.example>\n"
		  "RCPT TO:<c@ext.example>\nDATA",
		  "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, rcpts, 2, body, sizeof body - 1);
	x.m.eight_bit = true;
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt 1", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, "250 queued");
	check_outcome("rcpt 2", &x.out[1], DELIVERY_SENT, STEP_END_OF_DATA, "250 queued");
	free(f.got);
}

static void
waits_for_each_reply_without_pipelining(void **state)
{
	static const char body[] = "x\r\n";
	static const char *const rcpts[] = { "b@ext.example", "c@ext.example" };
	static const struct step steps[] = {
		GREETING, EHLO("250-SIZE 1000000\r\n"),
		{ "MAIL FROM:<a@lan.example> SIZE=3", "250 ok\r\n", QUIET },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", QUIET },
		{ "RCPT TO:<c@ext.example>", "250 ok\r\n", QUIET },
		{ "DATA", "354 go\r\n", QUIET },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, rcpts, 2, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt 2", &x.out[1], DELIVERY_SENT, STEP_END_OF_DATA, NULL);
	free(f.got);
}

static void
normalises_bare_cr_and_lf(void **state)
{
	static const char body[] = "a\nb\rc\r\n.d\n\r\n\n.\n\r.\rx\r\r\ne";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, NULL);
	check_transcript(&f, "EHLO client.example\r\nMAIL FROM:<a@lan.example>\r\n"
	    "RCPT TO:<b@ext.example>\r\nDATA\r\n"
	    "a\r\nb\r\nc\r\n..d\r\n\r\n\r\n..\r\n\r\n..\r\nx\r\n\r\ne\r\n.\r\nQUIT\r\n");
	free(f.got);
}

/* A CR ending one 64 KiB chunk and a "." starting the next: still one CRLF
 * and a stuffed dot.  An empty body is just the final dot. */
static void
normalises_across_chunks(void **state)
{
	static const struct step steps[] = {
		GREETING, EHLO("250-PIPELINING\r\n"),
		{ "MAIL FROM:<a@lan.example>\nRCPT TO:<b@ext.example>\nDATA",
		  "250 ok\r\n250 ok\r\n354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		{ "RSET\nMAIL FROM:<a@lan.example>\nRCPT TO:<b@ext.example>\nDATA",
		  "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	size_t big = 65535 + 4;       /* the CR is the last octet of the first chunk */
	char *body = malloc(big), *want;
	struct fake f;
	struct msg x, y;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;
	const char *tail;

	(void)state;
	memset(body, 'x', 65535);
	memcpy(body + 65535, "\r.y\n", 4);
	fake_start(&f, steps, N(steps));
	r = route_to(&f);
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), 0);
	msg_init(&x, one_rcpt, 1, body, big);
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), 0);
	msg_init(&y, one_rcpt, 1, "", 0);
	assert_int_equal(smtp_client_send(c, &y.m, y.out, &y.whole), 0);
	smtp_client_close(c);
	close(x.m.content_fd);
	close(y.m.content_fd);
	fake_join(&f);
	check_outcome("big", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, NULL);
	check_outcome("empty", &y.out[0], DELIVERY_SENT, STEP_END_OF_DATA, NULL);
	want = malloc(big + 200);
	memcpy(want, body, 65535);
	tail = "\r\n..y\r\n.\r\n";
	strcpy(want + 65535, tail);
	if (strstr(f.got, want) == NULL)
		fail_msg("the chunk boundary was not normalised");
	assert_non_null(strstr(f.got, "DATA\r\n.\r\nQUIT\r\n"));
	free(want);
	free(body);
	free(f.got);
}

static void
reports_each_recipient(void **state)
{
	static const char body[] = "x\r\n";
	static const char *const rcpts[] = { "ok@ext.example", "later@ext.example",
	    "gone@ext.example", "bad\r\nDATA@ext.example" };
	static const struct step steps[] = {
		GREETING, EHLO("250-PIPELINING\r\n"),
		{ "MAIL FROM:<a@lan.example>\nRCPT TO:<ok@ext.example>\n"
		  "RCPT TO:<later@ext.example>\nRCPT TO:<gone@ext.example>\nDATA",
		  "250 ok\r\n250 2.1.5 ok\r\n450 4.2.0 greylisted\r\n"
		  "550 5.1.1 no such user\r\n354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, rcpts, 4, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("250", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, "250 queued");
	check_outcome("450", &x.out[1], DELIVERY_DEFERRED, STEP_RCPT, "450 4.2.0 greylisted");
	check_outcome("550", &x.out[2], DELIVERY_FAILED, STEP_RCPT, "550 5.1.1 no such user");
	check_outcome("CRLF in address", &x.out[3], DELIVERY_FAILED, STEP_RCPT, "not a sendable address");
	check_outcome("message", &x.whole, DELIVERY_DEFERRED, STEP_RCPT, "greylisted");
	assert_false(x.out[2].route_level);
	free(f.got);
}

static const struct {
	const char *name, *reply;
	enum delivery_status want;
} end_of_data_cases[] = {
	{ "552 at end of data", "552 5.3.4 message too big\r\n", DELIVERY_FAILED },
	{ "451 at end of data", "451 4.3.0 try later\r\n", DELIVERY_DEFERRED },
	{ "250 multi-line", "250-2.0.0 ok\r\n250 2.0.0 queued\r\n", DELIVERY_SENT },
};

static void
takes_the_end_of_data_reply(void **state)
{
	static const char body[] = "x\r\n";

	(void)state;
	for (size_t i = 0; i < N(end_of_data_cases); i++) {
		const struct step steps[] = {
			GREETING, EHLO(""),
			{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
			{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
			{ "DATA", "354 go\r\n", 0 },
			{ BODY, end_of_data_cases[i].reply, 0 },
			QUIT,
		};
		struct fake f;
		struct msg x;

		fake_start(&f, steps, N(steps));
		msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
		if (one_message(&f, &x) != 0)
			fail_msg("%s: the session was lost", end_of_data_cases[i].name);
		check_outcome(end_of_data_cases[i].name, &x.out[0], end_of_data_cases[i].want,
		    STEP_END_OF_DATA, NULL);
		free(f.got);
	}
}

/* DATA itself refused: the accepted recipients take its reply; RSET. */
static void
takes_a_refused_data(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "451 4.3.0 not now\r\n", 0 },
		{ "RSET", "250 ok\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_DATA, "451 4.3.0 not now");
	free(f.got);
}

/* The gateway hangs up while the body is still coming: deferred, and the
 * session is done. */
static void
defers_a_drop_mid_data(void **state)
{
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ "line", NULL, HANGUP },
	};
	size_t big = (size_t)5 << 21;  /* 2 Mi lines of "line\n", far beyond socket buffers */
	char *body = malloc(big);
	struct fake f;
	struct msg x;

	(void)state;
	for (size_t i = 0; i < big; i += 5)
		memcpy(body + i, "line\n", 5);
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, big);
	assert_int_equal(one_message(&f, &x), -1);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_DATA, NULL);
	check_outcome("message", &x.whole, DELIVERY_DEFERRED, STEP_DATA, NULL);
	assert_null(strstr(f.got, "QUIT"));
	free(body);
	free(f.got);
}

/* Hung up after the final dot: maybe delivered, so say so. */
static void
defers_a_drop_after_the_dot(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ BODY, NULL, HANGUP },
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), -1);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_END_OF_DATA,
	    "connection lost after end of data: the message may have been delivered "
	    "(possible duplicate)");
	free(f.got);
}

static void
defers_a_silent_gateway(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", NULL, SILENT },
	};
	struct fake f;
	struct msg x;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	r = route_to(&f);
	r.reply_timeout_ms = 300;
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), 0);
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), -1);
	smtp_client_close(c);
	close(x.m.content_fd);
	fake_join(&f);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_MAIL, "no reply within");
	free(f.got);
}

static const struct {
	const char *name, *caps;
	bool eight_bit, smtputf8;
	uint64_t size;
	const char *why;
} refusals[] = {
	{ "SIZE too big", "250-SIZE 1000\r\n", false, false, 5000,
	    "message of 5000 octets exceeds the gateway's SIZE limit 1000" },
	{ "8BITMIME missing", "250-SIZE 0\r\n", true, false, 3,
	    "message needs 8BITMIME, which the gateway does not offer" },
	{ "SMTPUTF8 missing", "250-8BITMIME\r\n", true, true, 3,
	    "message needs SMTPUTF8, which the gateway does not offer" },
};

/* What the gateway cannot take fails at once, and MAIL is never sent. */
static void
fails_what_the_gateway_cannot_take(void **state)
{
	static const char body[] = "x\r\n";

	(void)state;
	for (size_t i = 0; i < N(refusals); i++) {
		char ehlo[256];
		const struct step steps[] = {
			GREETING, { "EHLO client.example", ehlo, 0 }, QUIT,
		};
		struct fake f;
		struct msg x;

		snprintf(ehlo, sizeof ehlo, "250-fake.example\r\n%s250 HELP\r\n", refusals[i].caps);
		fake_start(&f, steps, N(steps));
		msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
		x.m.size = refusals[i].size;
		x.m.eight_bit = refusals[i].eight_bit;
		x.m.smtputf8 = refusals[i].smtputf8;
		if (one_message(&f, &x) != 0)
			fail_msg("%s: the session was lost", refusals[i].name);
		check_outcome(refusals[i].name, &x.out[0], DELIVERY_FAILED, STEP_MAIL,
		    refusals[i].why);
		check_outcome(refusals[i].name, &x.whole, DELIVERY_FAILED, STEP_MAIL,
		    refusals[i].why);
		assert_false(x.whole.route_level);
		check_transcript(&f, "EHLO client.example\r\nQUIT\r\n");
		free(f.got);
	}
}

static void
resets_between_messages(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ BODY, "250 one\r\n", 0 },
		{ "RSET", "250 ok\r\n", QUIET },
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", 0 },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ BODY, "250 two\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x, y;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	r = route_to(&f);
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), 0);
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	msg_init(&y, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), 0);
	assert_int_equal(smtp_client_send(c, &y.m, y.out, &y.whole), 0);
	smtp_client_close(c);
	close(x.m.content_fd);
	close(y.m.content_fd);
	fake_join(&f);
	check_outcome("first", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, "250 one");
	check_outcome("second", &y.out[0], DELIVERY_SENT, STEP_END_OF_DATA, "250 two");
	free(f.got);
}

static void
falls_back_to_helo(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING,
		{ "EHLO client.example", "502 5.5.2 what?\r\n", 0 },
		{ "HELO client.example", "250 fake.example\r\n", 0 },
		{ "MAIL FROM:<a@lan.example>", "250 ok\r\n", QUIET },
		{ "RCPT TO:<b@ext.example>", "250 ok\r\n", 0 },
		{ "DATA", "354 go\r\n", 0 },
		{ BODY, "250 queued\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt", &x.out[0], DELIVERY_SENT, STEP_END_OF_DATA, NULL);
	free(f.got);
}

/* tls = starttls and no STARTTLS offered: deferred, route-level, and no
 * AUTH (no credential) ever sent. */
static void
refuses_cleartext_when_starttls_is_missing(void **state)
{
	static const struct step steps[] = {
		GREETING, EHLO("250-AUTH PLAIN LOGIN\r\n"), QUIT,
	};
	struct fake f;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	r = route_to(&f);
	r.tls = TLS_MODE_STARTTLS;
	r.user = "joe@isp.example";
	r.password = "secret";
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), -1);
	assert_null(c);
	fake_join(&f);
	check_outcome("open", &o, DELIVERY_DEFERRED, STEP_STARTTLS,
	    "the gateway does not offer STARTTLS (tls = starttls); not sending anything "
	    "in cleartext");
	assert_true(o.route_level);
	check_transcript(&f, "EHLO client.example\r\nQUIT\r\n");
	free(f.got);
}

static void
defers_a_malformed_reply(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO(""),
		{ "MAIL FROM:<a@lan.example>", "abc\r\n", 0 },
	};
	struct fake f;
	struct msg x;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	r = route_to(&f);
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), 0);
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), -1);
	/* once broken, the session takes no more messages */
	assert_int_equal(smtp_client_send(c, &x.m, x.out, &x.whole), -1);
	smtp_client_close(c);
	close(x.m.content_fd);
	fake_join(&f);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_MAIL, NULL);
	assert_null(strstr(f.got, "QUIT"));
	free(f.got);
}

static const struct {
	const char *name, *greeting;
	const char *why;
	bool quit;              /* the session is still sane enough for QUIT */
} greetings[] = {
	{ "554 at banner", "554 5.3.2 go away\r\n", "554 5.3.2 go away", true },
	{ "421 at banner", "421 4.3.2 busy\r\n", "421 4.3.2 busy", true },
	{ "garbage banner", "abc\r\n", "malformed reply", false },
	{ "hang-up at banner", NULL, "connection closed", false },
};

static void
defers_a_bad_greeting(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(greetings); i++) {
		const struct step steps[] = {
			{ NULL, greetings[i].greeting, greetings[i].greeting ? 0 : HANGUP },
			QUIT,
		};
		size_t nsteps = greetings[i].quit ? 2 : 1;
		struct fake f;
		struct route r;
		struct smtp_client *c;
		struct smtp_outcome o;

		fake_start(&f, steps, nsteps);
		r = route_to(&f);
		if (smtp_client_open(&cfg, &r, NULL, &c, &o, NULL) != -1)
			fail_msg("%s: opened", greetings[i].name);
		fake_join(&f);
		check_outcome(greetings[i].name, &o, DELIVERY_DEFERRED, STEP_GREETING,
		    greetings[i].why);
		assert_true(o.route_level);
		if ((strstr(f.got, "QUIT") != NULL) != greetings[i].quit)
			fail_msg("%s: got \"%s\"", greetings[i].name, f.got);
		free(f.got);
	}
}

/* Silence instead of a greeting: the port is checked for TLS on a second
 * connection (the fake never answers that one), and the wait is bounded. */
static void
bounds_a_missing_greeting(void **state)
{
	static const struct step steps[] = { { NULL, NULL, SILENT } };
	struct fake f;
	struct route r;
	struct smtp_client *c;
	struct smtp_outcome o;

	(void)state;
	fake_start(&f, steps, N(steps));
	r = route_to(&f);
	r.reply_timeout_ms = 400;
	assert_int_equal(smtp_client_open(&cfg, &r, NULL, &c, &o, NULL), -1);
	fake_join(&f);
	check_outcome("open", &o, DELIVERY_DEFERRED, STEP_GREETING,
	    "no greeting within 0.4 s (and the port does not speak TLS at once either)");
	free(f.got);
}

static const struct {
	const char *name, *mail, *rcpt1, *rcpt2;
	enum delivery_status want;
	enum delivery_step step;
	bool route_level;
} refusal_cases[] = {
	{ "every recipient relay-denied", "250 ok\r\n",
	    "554 5.7.1 <b@ext.example>: Relay access denied\r\n",
	    "554 5.7.1 <c@ext.example>: Relay access denied\r\n",
	    DELIVERY_DEFERRED, STEP_RCPT, true },
	{ "one relay-denied, one unknown", "250 ok\r\n",
	    "554 5.7.1 <b@ext.example>: Relay access denied\r\n",
	    "550 5.1.1 <c@ext.example>: unknown user\r\n",
	    DELIVERY_FAILED, STEP_RCPT, false },
	{ "authentication required at RCPT", "250 ok\r\n",
	    "530 5.7.0 Authentication required\r\n", "530 5.7.0 Authentication required\r\n",
	    DELIVERY_DEFERRED, STEP_RCPT, true },
	{ "MAIL refused", "550 5.7.0 sender refused\r\n",
	    "503 5.5.1 need MAIL\r\n", "503 5.5.1 need MAIL\r\n",
	    DELIVERY_FAILED, STEP_MAIL, false },
	{ "MAIL refused for relaying", "553 5.7.1 relaying denied\r\n",
	    "503 5.5.1 need MAIL\r\n", "503 5.5.1 need MAIL\r\n",
	    DELIVERY_DEFERRED, STEP_MAIL, true },
	{ "MAIL needs authentication", "530 5.7.0 Authentication required\r\n",
	    "503 5.5.1 need MAIL\r\n", "503 5.5.1 need MAIL\r\n",
	    DELIVERY_DEFERRED, STEP_MAIL, true },
	{ "MAIL 451", "451 4.3.0 later\r\n", "503 need MAIL\r\n", "503 need MAIL\r\n",
	    DELIVERY_DEFERRED, STEP_MAIL, false },
};

/* No recipient accepted (pipelined): the DATA reply is read and ignored,
 * RSET, and the session stays usable. */
static void
classifies_refusals(void **state)
{
	static const char body[] = "x\r\n";
	static const char *const rcpts[] = { "b@ext.example", "c@ext.example" };

	(void)state;
	for (size_t i = 0; i < N(refusal_cases); i++) {
		char replies[512];
		const struct step steps[] = {
			GREETING, EHLO("250-PIPELINING\r\n"),
			{ "MAIL FROM:<a@lan.example>\nRCPT TO:<b@ext.example>\n"
			  "RCPT TO:<c@ext.example>\nDATA", replies, 0 },
			{ "RSET", "250 ok\r\n", 0 },
			QUIT,
		};
		struct fake f;
		struct msg x;

		snprintf(replies, sizeof replies, "%s%s%s554 5.5.1 no valid recipients\r\n",
		    refusal_cases[i].mail, refusal_cases[i].rcpt1, refusal_cases[i].rcpt2);
		fake_start(&f, steps, N(steps));
		msg_init(&x, rcpts, 2, body, sizeof body - 1);
		if (one_message(&f, &x) != 0)
			fail_msg("%s: the session was lost", refusal_cases[i].name);
		for (size_t k = 0; k < 2; k++)
			if (x.out[k].status != refusal_cases[i].want ||
			    x.out[k].step != refusal_cases[i].step ||
			    x.out[k].route_level != refusal_cases[i].route_level)
				fail_msg("%s: recipient %zu got %s at %s%s (%s), want %s at %s%s",
				    refusal_cases[i].name, k, delivery_status_name(x.out[k].status),
				    delivery_step_name(x.out[k].step),
				    x.out[k].route_level ? ", route-level" : "", x.out[k].reply,
				    delivery_status_name(refusal_cases[i].want),
				    delivery_step_name(refusal_cases[i].step),
				    refusal_cases[i].route_level ? ", route-level" : "");
		free(f.got);
	}
}

/* 421 to a pipelined MAIL, then the gateway hangs up: the 421 is the
 * reason every recipient is deferred. */
static void
keeps_a_421_to_pipelined_mail(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO("250-PIPELINING\r\n"),
		{ "MAIL FROM:<a@lan.example>\nRCPT TO:<b@ext.example>\nDATA",
		  "421 4.3.2 shutting down\r\n", HANGUP_AFTER_REPLY },
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), -1);
	check_outcome("rcpt", &x.out[0], DELIVERY_DEFERRED, STEP_MAIL, "421 4.3.2 shutting down");
	free(f.got);
}

/* A pipelined DATA that is (wrongly) accepted with no recipient gets a lone
 * dot (RFC 2920 §3.1), then RSET. */
static void
ends_an_empty_pipelined_data(void **state)
{
	static const char body[] = "x\r\n";
	static const struct step steps[] = {
		GREETING, EHLO("250-PIPELINING\r\n"),
		{ "MAIL FROM:<a@lan.example>\nRCPT TO:<b@ext.example>\nDATA",
		  "250 ok\r\n550 no\r\n354 go\r\n", 0 },
		{ ".", "554 no recipients\r\n", 0 },
		{ "RSET", "250 ok\r\n", 0 },
		QUIT,
	};
	struct fake f;
	struct msg x;

	(void)state;
	fake_start(&f, steps, N(steps));
	msg_init(&x, one_rcpt, 1, body, sizeof body - 1);
	assert_int_equal(one_message(&f, &x), 0);
	check_outcome("rcpt", &x.out[0], DELIVERY_FAILED, STEP_RCPT, "550 no");
	free(f.got);
}

/* --- AUTH through the SMTP callbacks (cleartext, allow-plaintext-auth) ----- */

struct transcript {
	char text[8192];
};

static void
trace_keep(void *ctx, const char *line)
{
	struct transcript *t = ctx;
	size_t used = strlen(t->text);

	snprintf(t->text + used, sizeof t->text - used, "%s\n", line);
}

#define PLAIN_IR "AGpvZUBpc3AuZXhhbXBsZQBzZWNyZXQ="   /* \0joe@isp.example\0secret */
#define LOGIN_USER "am9lQGlzcC5leGFtcGxl"
#define LOGIN_PASS "c2VjcmV0"
#define AUTH_EHLO EHLO("250-AUTH PLAIN LOGIN\r\n")

static const struct step auth_plain_ok[] = {
	GREETING, AUTH_EHLO, { "AUTH PLAIN " PLAIN_IR, "235 2.7.0 ok\r\n", 0 }, QUIT,
};
static const struct step auth_login_after_plain[] = {
	GREETING, AUTH_EHLO,
	{ "AUTH PLAIN " PLAIN_IR, "535 5.7.8 no\r\n", 0 },
	{ "AUTH LOGIN", "334 VXNlcm5hbWU6\r\n", 0 },
	{ LOGIN_USER, "334 UGFzc3dvcmQ6\r\n", 0 },
	{ LOGIN_PASS, "235 2.7.0 ok\r\n", 0 },
	QUIT,
};
static const struct step auth_all_refused[] = {
	GREETING, AUTH_EHLO,
	{ "AUTH PLAIN " PLAIN_IR, "535 5.7.8 no\r\n", 0 },
	{ "AUTH LOGIN", "334 VXNlcm5hbWU6\r\n", 0 },
	{ LOGIN_USER, "334 UGFzc3dvcmQ6\r\n", 0 },
	{ LOGIN_PASS, "535 5.7.8 still no\r\n", 0 },
	QUIT,
};
static const struct step auth_tempfail[] = {
	GREETING, AUTH_EHLO, { "AUTH PLAIN " PLAIN_IR, "454 4.7.0 try later\r\n", 0 }, QUIT,
};
static const struct step auth_not_offered[] = {
	GREETING, EHLO("250-8BITMIME\r\n"), QUIT,
};

static const struct {
	const char *name;
	const struct step *steps;
	size_t nsteps;
	int want;               /* smtp_client_open's */
	const char *mech, *why;
} auth_cases[] = {
	{ "PLAIN accepted", auth_plain_ok, N(auth_plain_ok), 0, "PLAIN", NULL },
	{ "LOGIN after PLAIN refused", auth_login_after_plain, N(auth_login_after_plain), 0,
	    "LOGIN", NULL },
	{ "every mechanism refused", auth_all_refused, N(auth_all_refused), -1, NULL,
	    "535 5.7.8 still no" },
	{ "454 is temporary", auth_tempfail, N(auth_tempfail), -1, NULL, "454 4.7.0 try later" },
	{ "no AUTH offered", auth_not_offered, N(auth_not_offered), -1, NULL,
	    "the gateway offers no AUTH but the route has user = joe@isp.example" },
};

static void
authenticates_with_the_callbacks(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(auth_cases); i++) {
		struct transcript t = { "" };
		struct netio_trace trace = { trace_keep, &t };
		struct fake f;
		struct route r;
		struct smtp_client *c;
		struct smtp_outcome o;
		int rc;

		fake_start(&f, auth_cases[i].steps, auth_cases[i].nsteps);
		r = route_to(&f);
		r.user = "joe@isp.example";
		r.password = "secret";
		r.allow_plaintext_auth = true;
		rc = smtp_client_open(&cfg, &r, &trace, &c, &o, NULL);
		if (rc != auth_cases[i].want)
			fail_msg("%s: open got %d (%s), want %d", auth_cases[i].name, rc,
			    rc == 0 ? "" : o.reply, auth_cases[i].want);
		if (rc == 0) {
			if (strcmp(smtp_client_info(c)->auth_mech, auth_cases[i].mech) != 0)
				fail_msg("%s: got mechanism %s, want %s", auth_cases[i].name,
				    smtp_client_info(c)->auth_mech, auth_cases[i].mech);
			smtp_client_close(c);
		} else {
			check_outcome(auth_cases[i].name, &o, DELIVERY_DEFERRED, STEP_AUTH,
			    auth_cases[i].why);
			assert_true(o.route_level);
		}
		fake_join(&f);
		/* the trace shows the dialogue with every secret masked */
		if (strstr(t.text, "C: EHLO client.example") == NULL ||
		    strstr(t.text, "S: 220 fake.example ESMTP") == NULL ||
		    strstr(t.text, "secret") != NULL || strstr(t.text, PLAIN_IR) != NULL ||
		    strstr(t.text, LOGIN_USER) != NULL || strstr(t.text, LOGIN_PASS) != NULL)
			fail_msg("%s: trace:\n%s", auth_cases[i].name, t.text);
		if (auth_cases[i].steps == auth_plain_ok &&
		    strstr(t.text, "C: AUTH PLAIN ********\n") == NULL)
			fail_msg("%s: trace:\n%s", auth_cases[i].name, t.text);
		free(f.got);
	}
}

static void
names_statuses_and_steps(void **state)
{
	(void)state;
	assert_string_equal(delivery_status_name(DELIVERY_SENT), "sent");
	assert_string_equal(delivery_status_name(DELIVERY_DEFERRED), "deferred");
	assert_string_equal(delivery_status_name(DELIVERY_FAILED), "failed");
	for (int s = STEP_CONNECT; s <= STEP_END_OF_DATA; s++)
		assert_string_not_equal(delivery_step_name((enum delivery_step)s), "?");
	assert_string_equal(delivery_step_name(STEP_END_OF_DATA), "end-of-data");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sends_one_message_end_to_end),
		cmocka_unit_test(pipelines_mail_rcpt_data),
		cmocka_unit_test(waits_for_each_reply_without_pipelining),
		cmocka_unit_test(normalises_bare_cr_and_lf),
		cmocka_unit_test(normalises_across_chunks),
		cmocka_unit_test(reports_each_recipient),
		cmocka_unit_test(takes_the_end_of_data_reply),
		cmocka_unit_test(takes_a_refused_data),
		cmocka_unit_test(defers_a_drop_mid_data),
		cmocka_unit_test(defers_a_drop_after_the_dot),
		cmocka_unit_test(defers_a_silent_gateway),
		cmocka_unit_test(fails_what_the_gateway_cannot_take),
		cmocka_unit_test(resets_between_messages),
		cmocka_unit_test(falls_back_to_helo),
		cmocka_unit_test(refuses_cleartext_when_starttls_is_missing),
		cmocka_unit_test(defers_a_malformed_reply),
		cmocka_unit_test(defers_a_bad_greeting),
		cmocka_unit_test(bounds_a_missing_greeting),
		cmocka_unit_test(classifies_refusals),
		cmocka_unit_test(keeps_a_421_to_pipelined_mail),
		cmocka_unit_test(ends_an_empty_pipelined_data),
		cmocka_unit_test(authenticates_with_the_callbacks),
		cmocka_unit_test(names_statuses_and_steps),
	};

	signal(SIGPIPE, SIG_IGN);   /* as every process using tls.h */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
