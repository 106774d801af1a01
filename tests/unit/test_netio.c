/* test_netio.c - one connection to a gateway over loopback: connect errors
 * and traces, line framing (CRLF, LF, split reads, overlong lines, timeout,
 * close), write buffering, the implicit-TLS "server speaks first" check,
 * STARTTLS response injection, and line I/O after a real TLS upgrade.
 * The "gateway" is the accepted socket in the test itself (a thread where
 * it has to act while the client waits). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "netio.h"
#include "util.h"

#define assert_contains(hay, needle) do { \
	if (strstr((hay), (needle)) == NULL) \
		fail_msg("got \"%s\", want it to contain \"%s\"", (hay), (needle)); \
} while (0)

static char dir[64];

/* --- trace capture ------------------------------------------------------------ */

struct trace_log {
	char lines[16][512];
	size_t n;
};

static void
trace_keep(void *ctx, const char *line)
{
	struct trace_log *log = ctx;

	if (log->n < 16)
		strlcopy(log->lines[log->n++], line, sizeof log->lines[0]);
}

static void
assert_traced(const struct trace_log *log, const char *want)
{
	for (size_t i = 0; i < log->n; i++)
		if (strstr(log->lines[i], want) != NULL)
			return;
	fail_msg("no trace line contains \"%s\" (%zu lines, first \"%s\")", want, log->n,
	    log->n > 0 ? log->lines[0] : "");
}

/* --- a listener, a netio toward it, and the accepted end ----------------------- */

struct pair {
	int lfd, peer;
	uint16_t port;
	struct netio *n;
	struct trace_log log;
	struct netio_trace trace;
};

static int
listen_loopback(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
pair_open(struct pair *p)
{
	struct err err = { "" };

	memset(p, 0, sizeof *p);
	p->trace = (struct netio_trace){ trace_keep, &p->log };
	p->lfd = listen_loopback(&p->port);
	if (netio_connect("localhost", p->port, 2000, &p->trace, &p->n, &err) < 0)
		fail_msg("netio_connect: %s", err.msg);
	p->peer = accept(p->lfd, NULL, NULL);
	assert_true(p->peer >= 0);
}

static void
pair_close(struct pair *p)
{
	netio_close(p->n);
	if (p->peer >= 0)
		close(p->peer);
	close(p->lfd);
}

static void
peer_says(struct pair *p, const char *s)
{
	assert_int_equal(write_all(p->peer, s, strlen(s)), 0);
}

static void
assert_line(struct pair *p, const char *want)
{
	struct err err = { "" };
	char buf[NETIO_LINE_MAX + 1];
	ssize_t n = netio_read_line(p->n, buf, sizeof buf, 2000, &err);

	if (n < 0)
		fail_msg("netio_read_line: %s, want \"%s\"", err.msg, want);
	if ((size_t)n != strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		fail_msg("got \"%s\" (%zd octets), want \"%s\"", buf, n, want);
}

static void
assert_read_error(struct pair *p, uint64_t timeout_ms, const char *want)
{
	struct err err = { "" };
	char buf[NETIO_LINE_MAX + 1];

	assert_int_equal(netio_read_line(p->n, buf, sizeof buf, timeout_ms, &err), -1);
	assert_string_equal(err.msg, want);
}

/* --- connect ----------------------------------------------------------------- */

static void
closed_port_lists_the_attempt(void **state)
{
	static const char *const hosts[] = { "127.0.0.1", "[::1]", "::1" };
	struct trace_log log = { .n = 0 };
	struct netio_trace trace = { trace_keep, &log };
	struct netio *n = NULL;
	uint16_t port;
	char want[256];

	(void)state;
	close(listen_loopback(&port));
	for (size_t i = 0; i < 3; i++) {
		struct err err = { "" };
		const char *addr = i == 0 ? "127.0.0.1" : "::1";

		log.n = 0;
		assert_int_equal(netio_connect(hosts[i], port, 2000, &trace, &n, &err), -1);
		assert_null(n);
		snprintf(want, sizeof want, "connect to %s port %u: %s: connection refused",
		    addr, port, addr);
		assert_string_equal(err.msg, want);
		snprintf(want, sizeof want, "resolving %s: %s", addr, addr);
		assert_traced(&log, want);
		snprintf(want, sizeof want, "connecting to %s port %u", addr, port);
		assert_traced(&log, want);
		snprintf(want, sizeof want, "%s port %u: connection refused", addr, port);
		assert_traced(&log, want);
	}
}

static void
connect_names_the_peer(void **state)
{
	struct pair p;
	char want[128];

	(void)state;
	pair_open(&p);
	snprintf(want, sizeof want, "localhost[127.0.0.1]:%u", p.port);
	assert_string_equal(netio_peer(p.n), want);
	assert_false(netio_tls_active(p.n));
	assert_null(netio_tls(p.n));
	assert_traced(&p.log, "resolving localhost: 127.0.0.1");
	snprintf(want, sizeof want, "connected to 127.0.0.1 port %u (", p.port);
	assert_traced(&p.log, want);
	pair_close(&p);
	netio_close(NULL);
}

/* --- reading lines ------------------------------------------------------------ */

static void
lines_end_in_crlf_or_lf(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p);
	peer_says(&p, "250-first\r\n250-second\n250-a\rb\r\n\r\n\n250 last\r\n");
	assert_line(&p, "250-first");
	assert_line(&p, "250-second");
	assert_line(&p, "250-a\rb");
	assert_line(&p, "");
	assert_line(&p, "");
	assert_line(&p, "250 last");
	pair_close(&p);
}

struct dribble {
	int fd;
	const char *const *parts;
};

static void *
dribble_main(void *arg)
{
	const struct dribble *d = arg;

	for (size_t i = 0; d->parts[i] != NULL; i++) {
		usleep(30000);
		if (write_all(d->fd, d->parts[i], strlen(d->parts[i])) < 0)
			break;
	}
	return NULL;
}

static void
split_reads_make_one_line(void **state)
{
	static const char *const parts[] = { "250 hel", "lo\r", "\n220", " x\r\n", NULL };
	struct pair p;
	pthread_t t;
	struct dribble d;

	(void)state;
	pair_open(&p);
	d = (struct dribble){ p.peer, parts };
	assert_int_equal(pthread_create(&t, NULL, dribble_main, &d), 0);
	assert_line(&p, "250 hello");
	assert_line(&p, "220 x");
	pthread_join(t, NULL);
	pair_close(&p);
}

static void
overlong_lines_are_errors(void **state)
{
	static const struct {
		const char *name;
		size_t len;
		const char *end;
		bool ok;
	} cases[] = {
		{ "4096 + CRLF", NETIO_LINE_MAX, "\r\n", true },
		{ "4096 + LF", NETIO_LINE_MAX, "\n", true },
		{ "4097 + LF", NETIO_LINE_MAX + 1, "\n", false },
		{ "4097 + CRLF", NETIO_LINE_MAX + 1, "\r\n", false },
		{ "10000, no end", 10000, "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *line = xmalloc(cases[i].len + 3);
		char buf[NETIO_LINE_MAX + 1];
		struct err err = { "" };
		struct pair p;
		ssize_t n;

		memset(line, 'a', cases[i].len);
		strcpy(line + cases[i].len, cases[i].end);
		pair_open(&p);
		peer_says(&p, line);
		n = netio_read_line(p.n, buf, sizeof buf, 2000, &err);
		if (cases[i].ok && n != (ssize_t)cases[i].len)
			fail_msg("%s: got %zd (%s), want %zu", cases[i].name, n, err.msg, cases[i].len);
		if (!cases[i].ok && (n != -1 ||
		    strcmp(err.msg, "reply line longer than 4096 octets") != 0))
			fail_msg("%s: got %zd \"%s\", want the overlong error", cases[i].name, n, err.msg);
		pair_close(&p);
		free(line);
	}
}

static void
read_times_out_and_sees_a_close(void **state)
{
	struct pair p;
	uint64_t start;

	(void)state;
	pair_open(&p);
	start = now_ms();
	assert_read_error(&p, 200, "no reply within 0.2 s");
	if (now_ms() - start < 190 || now_ms() - start > 2000)
		fail_msg("timeout took %llu ms, want about 200",
		    (unsigned long long)(now_ms() - start));
	peer_says(&p, "250 half");
	close(p.peer);
	p.peer = -1;
	assert_read_error(&p, 2000, "connection closed by the gateway in the middle of a line");
	pair_close(&p);

	pair_open(&p);
	close(p.peer);
	p.peer = -1;
	assert_read_error(&p, 2000, "connection closed by the gateway");
	pair_close(&p);
}

/* --- writing ------------------------------------------------------------------ */

static void
writes_wait_for_flush(void **state)
{
	static const char *const cmds[] = { "MAIL FROM:<a@lan.example>\r\n",
		"RCPT TO:<b@ext.example>\r\n", "DATA\r\n" };
	char want[256] = "", got[256];
	struct err err = { "" };
	struct pair p;
	struct pollfd pfd;
	ssize_t n;

	(void)state;
	pair_open(&p);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(netio_write(p.n, cmds[i], strlen(cmds[i]), &err), 0);
		strcat(want, cmds[i]);
	}
	pfd = (struct pollfd){ .fd = p.peer, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 50), 0);
	assert_int_equal(netio_flush(p.n, 2000, &err), 0);
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	/* One send: the three commands arrive together. */
	n = recv(p.peer, got, sizeof got, 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(got, want, strlen(want));
	assert_int_equal(netio_flush(p.n, 2000, &err), 0);   /* nothing left: no-op */
	pair_close(&p);
}

static void
flush_times_out_when_the_gateway_does_not_read(void **state)
{
	size_t size = 64 << 20;
	char *big = xcalloc(1, size);
	struct err err = { "" };
	struct pair p;
	uint64_t start;
	char want[128];

	(void)state;
	pair_open(&p);
	assert_int_equal(netio_write(p.n, big, size, &err), 0);
	start = now_ms();
	assert_int_equal(netio_flush(p.n, 300, &err), -1);
	if (now_ms() - start > 3000)
		fail_msg("flush took %llu ms", (unsigned long long)(now_ms() - start));
	snprintf(want, sizeof want, "could not send to localhost[127.0.0.1]:%u within 0.3 s "
	    "(it does not read)", p.port);
	assert_string_equal(err.msg, want);
	pair_close(&p);
	free(big);
}

/* --- implicit TLS: does the server speak first? ----------------------------------- */

static void
server_speaks_first_is_seen(void **state)
{
	char banner[64];
	struct err err = { "" };
	struct pair p;
	uint64_t start;

	(void)state;
	pair_open(&p);
	peer_says(&p, "220 x\r\n");
	assert_int_equal(netio_server_speaks_first(p.n, 2000, banner, sizeof banner, &err), 1);
	assert_string_equal(banner, "220 x");
	assert_line(&p, "220 x");                    /* only peeked */
	pair_close(&p);

	pair_open(&p);
	start = now_ms();
	assert_int_equal(netio_server_speaks_first(p.n, 200, banner, sizeof banner, &err), 0);
	if (now_ms() - start < 190)
		fail_msg("returned after %llu ms, want 200", (unsigned long long)(now_ms() - start));
	assert_string_equal(banner, "");
	peer_says(&p, "\x16\x03\x01");
	assert_int_equal(netio_server_speaks_first(p.n, 2000, banner, sizeof banner, &err), 0);
	close(p.peer);
	p.peer = -1;
	pair_close(&p);

	pair_open(&p);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(netio_server_speaks_first(p.n, 2000, banner, sizeof banner, &err), -1);
	assert_contains(err.msg, "connection closed by the gateway");
	pair_close(&p);
}

/* --- STARTTLS ---------------------------------------------------------------------- */

static void
start_tls_refuses_injected_bytes(void **state)
{
	struct tls_params params = { .servername = "localhost", .verify = false };
	struct tls_info info;
	struct err err = { "" };
	struct pollfd pfd;
	struct pair p;
	char want[256];

	(void)state;
	/* In the same segment as the 220: already in netio's buffer. */
	pair_open(&p);
	peer_says(&p, "220 go ahead\r\n250 injected\r\n");
	assert_line(&p, "220 go ahead");
	assert_int_equal(netio_start_tls(p.n, &params, 2000, &info, &err), -1);
	snprintf(want, sizeof want, "localhost[127.0.0.1]:%u: the gateway sent data after "
	    "STARTTLS before the TLS handshake (response injection)", p.port);
	assert_string_equal(err.msg, want);
	assert_false(netio_tls_active(p.n));
	pair_close(&p);

	/* Arriving after the 220 was read: still in the socket. */
	pair_open(&p);
	peer_says(&p, "220 go ahead\r\n");
	assert_line(&p, "220 go ahead");
	peer_says(&p, "250 injected\r\n");
	pfd = (struct pollfd){ .fd = p.peer, .events = POLLOUT };
	poll(&pfd, 1, 100);
	usleep(20000);
	assert_int_equal(netio_start_tls(p.n, &params, 2000, &info, &err), -1);
	assert_contains(err.msg, "the gateway sent data after STARTTLS before the TLS "
	    "handshake (response injection)");
	pair_close(&p);
}

/* The gateway side of a STARTTLS exchange: "220", the handshake, an echo. */
static void *
starttls_peer_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[1024];
	size_t n;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL *ssl;
	char path[128];

	snprintf(path, sizeof path, "%s/srv.pem", dir);
	SSL_CTX_use_certificate_chain_file(ctx, path);
	snprintf(path, sizeof path, "%s/srv.key", dir);
	SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
	SSL_CTX_set_num_tickets(ctx, 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (read(fd, buf, sizeof buf) > 0 && write_all(fd, "220 go ahead\r\n", 14) == 0 &&
	    SSL_accept(ssl) == 1)
		while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1 &&
		    SSL_write_ex(ssl, buf, n, &n) == 1)
			;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

static void
lines_flow_over_tls_after_starttls(void **state)
{
	struct tls_params params = { .servername = "localhost", .verify = false };
	struct tls_info info;
	struct err err = { "" };
	struct pair p;
	pthread_t t;

	(void)state;
	pair_open(&p);
	assert_int_equal(pthread_create(&t, NULL, starttls_peer_main, &p.peer), 0);
	assert_int_equal(netio_write(p.n, "STARTTLS\r\n", 10, &err), 0);
	assert_int_equal(netio_flush(p.n, 2000, &err), 0);
	assert_line(&p, "220 go ahead");
	if (netio_start_tls(p.n, &params, 2000, &info, &err) < 0)
		fail_msg("netio_start_tls: %s", err.msg);
	assert_true(netio_tls_active(p.n));
	assert_non_null(netio_tls(p.n));
	assert_string_equal(info.subject, "CN=localhost");
	assert_traced(&p.log, "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384; certificate CN=localhost "
	    "issued by CN=localhost; valid until ");
	assert_traced(&p.log, "; not verified: self-signed certificate (tls-verify = no)");
	assert_int_equal(netio_write(p.n, "EHLO relay\r\n250-a\n", 18, &err), 0);
	assert_int_equal(netio_flush(p.n, 2000, &err), 0);
	assert_line(&p, "EHLO relay");
	assert_line(&p, "250-a");
	assert_read_error(&p, 200, "no reply within 0.2 s");
	assert_int_equal(netio_start_tls(p.n, &params, 2000, &info, &err), -1);
	netio_close(p.n);
	p.n = NULL;
	pthread_join(t, NULL);
	pair_close(&p);
}

static int
make_cert(void **state)
{
	char cmd[512];

	(void)state;
	strlcopy(dir, "/tmp/test_netio.XXXXXX", sizeof dir);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "cd %s && openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.pem -days 3 "
	    "-subj /CN=localhost 2>openssl.log", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
remove_cert(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(closed_port_lists_the_attempt),
		cmocka_unit_test(connect_names_the_peer),
		cmocka_unit_test(lines_end_in_crlf_or_lf),
		cmocka_unit_test(split_reads_make_one_line),
		cmocka_unit_test(overlong_lines_are_errors),
		cmocka_unit_test(read_times_out_and_sees_a_close),
		cmocka_unit_test(writes_wait_for_flush),
		cmocka_unit_test(flush_times_out_when_the_gateway_does_not_read),
		cmocka_unit_test(server_speaks_first_is_seen),
		cmocka_unit_test(start_tls_refuses_injected_bytes),
		cmocka_unit_test(lines_flow_over_tls_after_starttls),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
