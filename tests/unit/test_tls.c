/* test_tls.c - TLS toward a gateway, against a real OpenSSL server in a
 * thread on a socketpair: verification with a CA file, an unknown CA,
 * tls-verify = no, pins, name and IP checks, TLS 1.1, client certificates,
 * channel binding, a plaintext port, timeouts.  The certificates are made
 * with the openssl command in a fresh temporary directory at start. */
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
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"
#include "util.h"

static char dir[64];
static char fingerprint[128];          /* of srv.pem, "sha256:AB:..." */

static const char *
path(const char *name)
{
	static char buf[8][128];
	static unsigned next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof buf[0], "%s/%s", dir, name);
	return p;
}

/* --- certificates ---------------------------------------------------------- */

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

static int
make_certs(void **state)
{
	char cmd[4096];
	X509 *cert;
	FILE *f;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len;
	size_t off;

	(void)state;
	strlcopy(dir, "/tmp/test_tls.XXXXXX", sizeof dir);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "cd %s && exec 2>openssl.log && "
	    "openssl req -x509 " EC " -keyout ca.key -out ca.pem -days 3 -subj '/CN=Test CA' && "
	    "openssl req -x509 " EC " -keyout other.key -out other.pem -days 3 -subj '/CN=Other CA' && "
	    "openssl req -new " EC " -keyout srv.key -out srv.csr -subj '/CN=localhost' && "
	    "echo 'subjectAltName=DNS:localhost,IP:127.0.0.1' > srv.ext && "
	    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3 "
	    "  -extfile srv.ext -out srv.pem && "
	    "openssl req -new " EC " -keyout cli.key -out cli.csr -subj '/CN=relay client' && "
	    "echo 'extendedKeyUsage=clientAuth' > cli.ext && "
	    "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3 "
	    "  -extfile cli.ext -out cli.pem", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "making test certificates failed; see %s/openssl.log\n", dir);
		return -1;
	}
	if ((f = fopen(path("srv.pem"), "r")) == NULL)
		return -1;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1)
		return -1;
	X509_free(cert);
	off = (size_t)snprintf(fingerprint, sizeof fingerprint, "sha256:");
	for (unsigned int i = 0; i < len; i++)
		off += (size_t)snprintf(fingerprint + off, sizeof fingerprint - off,
		    i > 0 ? ":%02X" : "%02X", md[i]);
	return 0;
}

static int
remove_certs(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- the server thread -------------------------------------------------------- */

enum srv_mode {
	SRV_ECHO,        /* handshake, then echo until EOF */
	SRV_SILENT,      /* handshake, then read without answering */
	SRV_NOREAD,      /* handshake, then neither read nor write until stopped */
	SRV_CLOSE,       /* handshake, then close_notify */
	SRV_PLAINTEXT,   /* an SMTP banner instead of TLS */
	SRV_MUTE,        /* nothing at all until stopped */
};

struct server {
	enum srv_mode mode;
	int min_version, max_version;  /* 0: OpenSSL's default */
	bool want_client_cert;
	/* run time */
	int fd, stop[2];
	pthread_t thread;
	/* what the server saw */
	bool handshake_ok;
	char client_subject[256];
	unsigned char exporter[32];
	unsigned char finished[64];
	size_t finished_len;
};

static void
wait_stop(struct server *s)
{
	char c;

	while (read(s->stop[0], &c, 1) > 0)
		;
}

static SSL_CTX *
server_ctx(const struct server *s)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (SSL_CTX_use_certificate_chain_file(ctx, path("srv.pem")) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, path("srv.key"), SSL_FILETYPE_PEM) != 1)
		return ctx;
	SSL_CTX_set_num_tickets(ctx, 0);
	if (s->max_version != 0 && s->max_version < TLS1_2_VERSION) {
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
	}
	if (s->min_version != 0)
		SSL_CTX_set_min_proto_version(ctx, s->min_version);
	if (s->max_version != 0)
		SSL_CTX_set_max_proto_version(ctx, s->max_version);
	if (s->want_client_cert) {
		SSL_CTX_load_verify_locations(ctx, path("ca.pem"), NULL);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
}

static void
server_record(struct server *s, SSL *ssl)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);

	s->handshake_ok = true;
	if (SSL_version(ssl) == TLS1_3_VERSION)
		SSL_export_keying_material(ssl, s->exporter, sizeof s->exporter,
		    "EXPORTER-Channel-Binding", 24, NULL, 0, 0);
	s->finished_len = SSL_get_peer_finished(ssl, s->finished, sizeof s->finished);
	if (peer != NULL)
		X509_NAME_oneline(X509_get_subject_name(peer), s->client_subject,
		    sizeof s->client_subject);
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	char buf[4096];
	size_t n;
	SSL_CTX *ctx;
	SSL *ssl;

	if (s->mode == SRV_PLAINTEXT) {
		if (write(s->fd, "220 smtp.test ESMTP\r\n", 21) == 21)
			while (read(s->fd, buf, sizeof buf) > 0)
				;
		goto out;
	}
	if (s->mode == SRV_MUTE) {
		wait_stop(s);
		goto out;
	}
	ctx = server_ctx(s);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, s->fd);
	if (SSL_accept(ssl) == 1) {
		server_record(s, ssl);
		switch (s->mode) {
		case SRV_ECHO:
			while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1 &&
			    SSL_write_ex(ssl, buf, n, &n) == 1)
				;
			break;
		case SRV_SILENT:
			while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1)
				;
			break;
		case SRV_NOREAD:
			wait_stop(s);
			break;
		default:
			SSL_shutdown(ssl);
		}
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
out:
	close(s->fd);
	return NULL;
}

/* Start the server; returns the client's end of the socketpair. */
static int
server_start(struct server *s)
{
	struct timeval tv = { .tv_sec = 10 };
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(s->stop), 0);
	/* A test that goes wrong must not hang the server thread forever. */
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	s->fd = sv[1];
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return sv[0];
}

static void
server_finish(struct server *s, int cfd)
{
	close(cfd);
	close(s->stop[1]);
	pthread_join(s->thread, NULL);
	close(s->stop[0]);
}

/* --- one client connection --------------------------------------------------- */

struct run {
	struct server srv;
	int cfd, rc;
	struct tls_conn *tls;
	struct tls_info info;
	struct err err;
};

static void
run_start(struct run *r, const struct tls_params *p, unsigned timeout_ms)
{
	r->err.msg[0] = '\0';
	r->cfd = server_start(&r->srv);
	r->rc = tls_connect(r->cfd, p, timeout_ms, &r->tls, &r->info, &r->err);
	if (r->rc == 0)
		assert_non_null(r->tls);
	else
		assert_null(r->tls);
}

static void
run_end(struct run *r)
{
	tls_close(r->tls);
	server_finish(&r->srv, r->cfd);
}

#define assert_contains(hay, needle) do { \
	if (strstr((hay), (needle)) == NULL) \
		fail_msg("got \"%s\", want it to contain \"%s\"", (hay), (needle)); \
} while (0)

#define assert_ok(r) do { \
	if ((r)->rc != 0) \
		fail_msg("tls_connect failed: %s", (r)->err.msg); \
} while (0)

static void
assert_echo(struct tls_conn *tls)
{
	struct err err = { "" };
	char buf[16];
	long n;

	assert_int_equal(tls_write(tls, "ping\r\n", 6, 2000, &err), 0);
	n = tls_read(tls, buf, sizeof buf, 2000, &err);
	if (n != 6)
		fail_msg("tls_read: got %ld (%s), want 6", n, err.msg);
	assert_memory_equal(buf, "ping\r\n", 6);
}

/* --- cases ------------------------------------------------------------------ */

static void
verified_with_ca_file(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true,
		.ca_file = path("ca.pem") };
	struct run r = { .srv.mode = SRV_ECHO };

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_true(r.info.verified);
	assert_false(r.info.pinned);
	assert_string_equal(r.info.verify_error, "");
	assert_string_equal(r.info.version, "TLSv1.3");
	assert_string_equal(r.info.cipher, "TLS_AES_256_GCM_SHA384");
	assert_string_equal(r.info.subject, "CN=localhost");
	assert_string_equal(r.info.issuer, "CN=Test CA");
	assert_string_equal(r.info.fingerprint, fingerprint);
	if (strlen(r.info.not_after) != 20 || r.info.not_after[10] != 'T' ||
	    r.info.not_after[19] != 'Z')
		fail_msg("not_after: got \"%s\", want ISO 8601 UTC", r.info.not_after);
	assert_echo(r.tls);
	run_end(&r);
}

static void
unknown_ca_is_refused_with_the_reason(void **state)
{
	static const char *const ca_files[] = { NULL, "other.pem" };   /* system store, another CA */

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct tls_params p = { .servername = "localhost", .verify = true,
			.ca_file = ca_files[i] != NULL ? path(ca_files[i]) : NULL };
		struct run r = { .srv.mode = SRV_ECHO };

		run_start(&r, &p, 5000);
		assert_int_equal(r.rc, -1);
		assert_contains(r.err.msg, "TLS handshake with localhost failed: certificate verify "
		    "failed: unable to get local issuer certificate (set tls-ca-file, or tls-verify = no)");
		assert_string_equal(r.info.version, "TLSv1.3");
		assert_false(r.info.verified);
		run_end(&r);
	}
}

static void
verify_no_encrypts_without_verifying(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false };
	struct run r = { .srv.mode = SRV_ECHO };

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_false(r.info.verified);
	assert_contains(r.info.verify_error, "unable to get local issuer certificate");
	assert_echo(r.tls);
	run_end(&r);
}

static void
right_pin_trusts_without_a_ca(void **state)
{
	char lower[128];

	(void)state;
	strlcopy(lower, fingerprint, sizeof lower);
	for (char *s = lower; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
	char *const pins[][2] = { { "sha256:00:11", fingerprint }, { lower, NULL } };
	for (size_t i = 0; i < 2; i++) {
		struct tls_params p = { .servername = "localhost", .verify = true,
			.fingerprints = pins[i], .nfingerprints = i == 0 ? 2 : 1 };
		struct run r = { .srv.mode = SRV_ECHO };

		run_start(&r, &p, 5000);
		assert_ok(&r);
		assert_true(r.info.verified);
		assert_true(r.info.pinned);
		assert_echo(r.tls);
		run_end(&r);
	}
}

static void
wrong_pin_refuses_a_valid_chain(void **state)
{
	char *pins[] = { "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
	    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF" };
	char want[256];

	(void)state;
	snprintf(want, sizeof want, "TLS handshake with localhost failed: certificate does not "
	    "match the pinned fingerprint (got %s)", fingerprint);
	for (int verify = 0; verify < 2; verify++) {
		struct tls_params p = { .servername = "localhost", .verify = verify,
			.ca_file = path("ca.pem"), .fingerprints = pins, .nfingerprints = 1 };
		struct run r = { .srv.mode = SRV_ECHO };

		run_start(&r, &p, 5000);
		assert_int_equal(r.rc, -1);
		assert_string_equal(r.err.msg, want);
		assert_false(r.info.verified);
		assert_false(r.info.pinned);
		run_end(&r);
	}
}

static void
names_and_addresses_are_checked(void **state)
{
	static const struct {
		const char *name, *servername, *want;  /* want NULL: accepted */
	} cases[] = {
		{ "right name", "localhost", NULL },
		{ "other name", "other.example", "hostname mismatch (the certificate is for "
		  "DNS:localhost, IP:127.0.0.1, not other.example)" },
		{ "right address", "127.0.0.1", NULL },
		{ "other address", "127.0.0.2", "IP address mismatch" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tls_params p = { .servername = cases[i].servername, .verify = true,
			.ca_file = path("ca.pem") };
		struct run r = { .srv.mode = SRV_ECHO };

		run_start(&r, &p, 5000);
		if (cases[i].want == NULL && r.rc != 0)
			fail_msg("%s: got \"%s\", want success", cases[i].name, r.err.msg);
		if (cases[i].want != NULL && (r.rc == 0 || strstr(r.err.msg, cases[i].want) == NULL))
			fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].name, r.rc, r.err.msg,
			    cases[i].want);
		run_end(&r);
	}
}

static void
tls_1_1_server_is_refused(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false };
	struct run r = { .srv = { .mode = SRV_ECHO, .min_version = TLS1_1_VERSION,
		.max_version = TLS1_1_VERSION } };

	(void)state;
	run_start(&r, &p, 5000);
	assert_int_equal(r.rc, -1);
	assert_contains(r.err.msg, "TLS handshake with localhost failed: ");
	assert_contains(r.err.msg, "(the gateway offers no TLS 1.2 or later)");
	assert_false(r.srv.handshake_ok);
	run_end(&r);
}

static void
client_certificate_is_sent(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true,
		.ca_file = path("ca.pem"), .cert_file = path("cli.pem"), .key_file = path("cli.key") };
	struct run r = { .srv = { .mode = SRV_ECHO, .want_client_cert = true } };

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_echo(r.tls);
	run_end(&r);
	assert_true(r.srv.handshake_ok);
	assert_string_equal(r.srv.client_subject, "/CN=relay client");
}

static void
unloadable_client_key_is_an_error(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false,
		.cert_file = path("cli.pem"), .key_file = path("missing.key") };
	struct tls_conn *tls = NULL;
	struct tls_info info;
	struct err err = { "" };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tls_connect(sv[0], &p, 1000, &tls, &info, &err), -1);
	assert_null(tls);
	assert_contains(err.msg, "cannot load tls-key ");
	assert_contains(err.msg, "missing.key");
	p.key_file = path("srv.key");
	assert_int_equal(tls_connect(sv[0], &p, 1000, &tls, &info, &err), -1);
	assert_contains(err.msg, "does not belong to tls-cert");
	close(sv[0]);
	close(sv[1]);
}

static void
channel_binding_tls13_is_the_exporter(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true, .ca_file = path("ca.pem") };
	struct run r = { .srv.mode = SRV_ECHO };
	unsigned char cb[TLS_CHANNEL_BINDING_MAX];
	size_t len = 0;

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_int_equal(tls_channel_binding(r.tls, "tls-exporter", cb, &len), 0);
	assert_int_equal(len, 32);
	assert_int_equal(tls_channel_binding(r.tls, "tls-unique", cb + 32, &len), -1);
	assert_echo(r.tls);
	run_end(&r);
	assert_memory_equal(cb, r.srv.exporter, 32);
}

static void
channel_binding_tls12_is_tls_unique(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true, .ca_file = path("ca.pem") };
	struct run r = { .srv = { .mode = SRV_ECHO, .max_version = TLS1_2_VERSION } };
	unsigned char cb[TLS_CHANNEL_BINDING_MAX];
	size_t len = 0;

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_string_equal(r.info.version, "TLSv1.2");
	assert_true(r.info.verified);
	assert_int_equal(tls_channel_binding(r.tls, "tls-unique", cb, &len), 0);
	assert_int_equal(tls_channel_binding(r.tls, "tls-exporter", cb + 32, &len), -1);
	assert_int_equal(tls_channel_binding(r.tls, "tls-unique", cb, &len), 0);
	assert_echo(r.tls);
	run_end(&r);
	assert_int_equal(len, 12);
	assert_int_equal(r.srv.finished_len, len);
	assert_memory_equal(cb, r.srv.finished, len);
}

static void
plaintext_port_is_named(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true };
	struct run r = { .srv.mode = SRV_PLAINTEXT };

	(void)state;
	run_start(&r, &p, 5000);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err.msg, "TLS handshake with localhost failed: wrong version number "
	    "(is this a plaintext port? try tls = starttls)");
	assert_string_equal(r.info.version, "");
	run_end(&r);
}

static void
assert_elapsed(uint64_t start, uint64_t min_ms, uint64_t max_ms)
{
	uint64_t took = now_ms() - start;

	if (took < min_ms || took > max_ms)
		fail_msg("took %llu ms, want %llu..%llu", (unsigned long long)took,
		    (unsigned long long)min_ms, (unsigned long long)max_ms);
}

static void
handshake_times_out(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = true };
	struct run r = { .srv.mode = SRV_MUTE };
	uint64_t start = now_ms();

	(void)state;
	run_start(&r, &p, 300);
	assert_elapsed(start, 290, 2000);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err.msg, "TLS handshake with localhost failed: no answer within 0.3 s");
	run_end(&r);
}

static void
read_times_out(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false };
	struct run r = { .srv.mode = SRV_SILENT };
	struct err err = { "" };
	char buf[64];
	uint64_t start;

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	start = now_ms();
	assert_int_equal(tls_read(r.tls, buf, sizeof buf, 300, &err), -1);
	assert_elapsed(start, 290, 2000);
	assert_string_equal(err.msg, "no reply within 0.3 s");
	run_end(&r);
}

static void
write_times_out(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false };
	struct run r = { .srv.mode = SRV_NOREAD };
	struct err err = { "" };
	size_t size = 16 << 20;
	char *big = xcalloc(1, size);
	uint64_t start;

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	start = now_ms();
	assert_int_equal(tls_write(r.tls, big, size, 300, &err), -1);
	assert_elapsed(start, 290, 2000);
	assert_string_equal(err.msg, "could not send to localhost within 0.3 s (it does not read)");
	run_end(&r);
	free(big);
}

static void
close_notify_reads_as_end(void **state)
{
	struct tls_params p = { .servername = "localhost", .verify = false };
	struct run r = { .srv.mode = SRV_CLOSE };
	struct err err = { "" };
	char buf[64];

	(void)state;
	run_start(&r, &p, 5000);
	assert_ok(&r);
	assert_int_equal(tls_read(r.tls, buf, sizeof buf, 2000, &err), 0);
	run_end(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(verified_with_ca_file),
		cmocka_unit_test(unknown_ca_is_refused_with_the_reason),
		cmocka_unit_test(verify_no_encrypts_without_verifying),
		cmocka_unit_test(right_pin_trusts_without_a_ca),
		cmocka_unit_test(wrong_pin_refuses_a_valid_chain),
		cmocka_unit_test(names_and_addresses_are_checked),
		cmocka_unit_test(tls_1_1_server_is_refused),
		cmocka_unit_test(client_certificate_is_sent),
		cmocka_unit_test(unloadable_client_key_is_an_error),
		cmocka_unit_test(channel_binding_tls13_is_the_exporter),
		cmocka_unit_test(channel_binding_tls12_is_tls_unique),
		cmocka_unit_test(plaintext_port_is_named),
		cmocka_unit_test(handshake_times_out),
		cmocka_unit_test(read_times_out),
		cmocka_unit_test(write_times_out),
		cmocka_unit_test(close_notify_reads_as_end),
	};

	/* The server thread may write to a client that has gone. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
