/* tls.c - TLS toward gateways with OpenSSL 3: context, verification,
 * pinning, client certificates, channel binding; see tls.h.
 *
 * SECURITY: everything the peer sends is untrusted, the certificate too.
 * Its names reach traces and logs only through OpenSSL's RFC 2253 printer
 * (which escapes control and 8-bit bytes) and a final printable-ASCII pass.
 *
 * Verification is decided after the handshake, not inside it: the context
 * runs with SSL_VERIFY_NONE, so OpenSSL still builds and checks the chain
 * and the name (SSL_get_verify_result) but lets the handshake finish; then
 * tls-verify, the chain result and the pins decide (as Postfix does).  That
 * is how a pin can trust a certificate whose chain fails.  Nothing is sent
 * over a connection that is refused: the caller closes it.
 *
 * One SSL_CTX per connection: loading the system CA store costs a few
 * milliseconds per connection, next to a delivery's round trips nothing,
 * and there is no cache to keep in step with a configuration reload.
 *
 * Timeouts: the socket is put in non-blocking mode and every SSL call that
 * wants to read or write waits in poll() for the time left. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "util.h"

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"   /* RFC 9266 */
#define EXPORTER_LEN 32

struct tls_conn {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	char name[256];                /* the servername, for error texts */
};

enum tls_op { TLS_OP_CONNECT, TLS_OP_READ, TLS_OP_WRITE };

/* Why an SSL call failed, captured before anything else can touch errno
 * or the error queue. */
struct tls_fail {
	bool timed_out;
	int ssl_err;                   /* SSL_get_error() */
	int sys_errno;
	unsigned long lib_err;         /* the first entry of the error queue */
};

static bool
is_ip_literal(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* Replace anything but printable ASCII: peer-controlled text goes to logs. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* Run one SSL_connect / SSL_read_ex / SSL_write_ex to completion, waiting
 * on the socket whenever OpenSSL asks, until the deadline.  1 done, -1
 * failed (*fail says why, timed_out included). */
static int
drive(struct tls_conn *c, enum tls_op op, void *buf, size_t len, size_t *done,
    uint64_t deadline, struct tls_fail *fail)
{
	memset(fail, 0, sizeof *fail);
	for (;;) {
		short events;
		int ret, w;

		ERR_clear_error();
		errno = 0;
		if (op == TLS_OP_CONNECT)
			ret = SSL_connect(c->ssl);
		else if (op == TLS_OP_READ)
			ret = SSL_read_ex(c->ssl, buf, len, done);
		else
			ret = SSL_write_ex(c->ssl, buf, len, done);
		if (ret == 1)
			return 1;
		fail->sys_errno = errno;
		fail->ssl_err = SSL_get_error(c->ssl, ret);
		fail->lib_err = ERR_peek_error();
		if (fail->ssl_err == SSL_ERROR_WANT_READ)
			events = POLLIN;
		else if (fail->ssl_err == SSL_ERROR_WANT_WRITE)
			events = POLLOUT;
		else
			return -1;
		w = wait_fd(c->fd, events, deadline);
		if (w == 0)
			fail->timed_out = true;
		if (w <= 0) {
			fail->ssl_err = SSL_ERROR_SYSCALL;
			fail->sys_errno = w < 0 ? errno : 0;
			return -1;
		}
	}
}

/* Words for what the user can do about an OpenSSL failure. */
static const char *
fail_hint(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return "";
	switch (ERR_GET_REASON(e)) {
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_HTTP_REQUEST:
		return " (is this a plaintext port? try tls = starttls)";
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
		return " (the gateway offers no TLS 1.2 or later)";
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return " (the gateway wants a client certificate: set tls-cert and tls-key)";
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		return " (the gateway refused our client certificate)";
	default:
		return "";
	}
}

/* The failure in words, without the "TLS handshake with ... failed:" part. */
static void
describe_fail(const struct tls_fail *f, uint64_t timeout_ms, char *buf, size_t size)
{
	char secs[32];
	const char *reason;

	if (f->timed_out) {
		snprintf(buf, size, "no answer within %s", format_seconds(timeout_ms, secs, sizeof secs));
		return;
	}
	switch (f->ssl_err) {
	case SSL_ERROR_ZERO_RETURN:
		snprintf(buf, size, "connection closed by the gateway");
		return;
	case SSL_ERROR_SYSCALL:
		if (f->lib_err == 0) {
			snprintf(buf, size, "%s", f->sys_errno != 0 ? strerror(f->sys_errno) :
			    "connection closed by the gateway");
			return;
		}
		break;
	default:
		break;
	}
	if (ERR_GET_LIB(f->lib_err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(f->lib_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		snprintf(buf, size, "connection closed by the gateway");
		return;
	}
	reason = f->lib_err != 0 ? ERR_reason_error_string(f->lib_err) : NULL;
	snprintf(buf, size, "%s%s", reason != NULL ? reason : "protocol error", fail_hint(f->lib_err));
}

/* The last OpenSSL error in words, for file loading errors. */
static const char *
last_error(void)
{
	const char *s = ERR_reason_error_string(ERR_peek_last_error());

	return s != NULL ? s : "unknown error";
}

static int
ctx_new(const struct tls_params *p, SSL_CTX **out, struct err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	*out = NULL;
	ERR_clear_error();
	if (ctx == NULL)
		return err_set(err, "cannot create a TLS context: %s", last_error());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A missing close_notify is a clean close: SMTP replies end in CRLF,
	 * a truncated one is visible without it, and many gateways omit it. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (p->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, p->ca_file, NULL) != 1) {
			err_set(err, "cannot load tls-ca-file %s: %s", p->ca_file, last_error());
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		err_set(err, "cannot load the system CA store: %s", last_error());
		goto fail;
	}
	if (p->cert_file != NULL &&
	    SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1) {
		err_set(err, "cannot load tls-cert %s: %s", p->cert_file, last_error());
		goto fail;
	}
	if (p->key_file != NULL || p->cert_file != NULL) {
		const char *key = p->key_file != NULL ? p->key_file : p->cert_file;

		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
		    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
			err_set(err, "cannot load tls-key %s: %s", key, last_error());
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			err_set(err, "tls-key %s does not belong to tls-cert %s", key,
			    p->cert_file != NULL ? p->cert_file : "(none)");
			goto fail;
		}
	}
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

/* SNI and the name the certificate must carry.  SNI never carries an IP
 * address (RFC 6066 §3); an IP literal is checked against IP SANs. */
static int
ssl_new(struct tls_conn *c, const struct tls_params *p, struct err *err)
{
	X509_VERIFY_PARAM *vp;

	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return err_set(err, "cannot set up TLS: %s", last_error());
	if (p->servername == NULL || p->servername[0] == '\0')
		return 0;
	vp = SSL_get0_param(c->ssl);
	if (is_ip_literal(p->servername)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, p->servername) != 1)
			return err_set(err, "cannot check the certificate against %s", p->servername);
		return 0;
	}
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_host(vp, p->servername, 0) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, p->servername) != 1)
		return err_set(err, "cannot check the certificate against %s", p->servername);
	return 0;
}

static void
format_name(const X509_NAME *name, char *buf, size_t size)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int n = 0;

	buf[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(bio, buf, (int)(size - 1));
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(bio);
	sanitize(buf);
}

static void
format_fingerprint(const X509 *cert, char *buf, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	size_t off;

	buf[0] = '\0';
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
		return;
	off = (size_t)snprintf(buf, size, "sha256:");
	for (unsigned int i = 0; i < len && off + 3 < size; i++)
		off += (size_t)snprintf(buf + off, size - off, i > 0 ? ":%02X" : "%02X", md[i]);
}

static void
fill_info(SSL *ssl, struct tls_info *info)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	struct tm tm;

	strlcopy(info->version, SSL_get_version(ssl), sizeof info->version);
	strlcopy(info->cipher, SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
	    sizeof info->cipher);
	if (cert == NULL)
		return;
	format_name(X509_get_subject_name(cert), info->subject, sizeof info->subject);
	format_name(X509_get_issuer_name(cert), info->issuer, sizeof info->issuer);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		strftime(info->not_after, sizeof info->not_after, "%Y-%m-%dT%H:%M:%SZ", &tm);
	format_fingerprint(cert, info->fingerprint, sizeof info->fingerprint);
}

/* Compare "sha256:AB:CD..." forms, ignoring case and colons. */
static bool
pin_matches(const char *pin, const char *fp)
{
	if (strncasecmp(pin, "sha256:", 7) != 0 || strncmp(fp, "sha256:", 7) != 0)
		return false;
	pin += 7;
	fp += 7;
	for (;;) {
		while (*pin == ':')
			pin++;
		while (*fp == ':')
			fp++;
		if (*pin == '\0' || *fp == '\0')
			return *pin == *fp;
		if ((*pin | 0x20) != (*fp | 0x20))
			return false;
		pin++;
		fp++;
	}
}

/* The names a certificate is for ("DNS:a.example, IP:192.0.2.1"), for the
 * name mismatch message. */
static void
cert_names(X509 *cert, char *buf, size_t size)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && off + 1 < size; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const char *sep = off > 0 ? ", " : "";
		char ip[INET6_ADDRSTRLEN] = "";

		if (gn->type == GEN_DNS)
			off += (size_t)snprintf(buf + off, size - off, "%sDNS:%.*s", sep,
			    ASN1_STRING_length(gn->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
		else if (gn->type == GEN_IPADD) {
			int len = ASN1_STRING_length(gn->d.iPAddress);

			inet_ntop(len == 16 ? AF_INET6 : AF_INET,
			    ASN1_STRING_get0_data(gn->d.iPAddress), ip, sizeof ip);
			off += (size_t)snprintf(buf + off, size - off, "%sIP:%s", sep, ip);
		}
	}
	GENERAL_NAMES_free(sans);
	if (buf[0] == '\0')
		format_name(X509_get_subject_name(cert), buf, size);
	sanitize(buf);
}

/* The chain/name verdict in words ("" when it verified), and what the user
 * can do about it (for the error, not for info->verify_error). */
static const char *
chain_verdict(struct tls_conn *c, long code, char *buf, size_t size)
{
	const char *what = X509_verify_cert_error_string(code);
	char names[256];

	buf[0] = '\0';
	switch (code) {
	case X509_V_OK:
		return "";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(buf, size, "%s", what);
		return " (set tls-ca-file, or tls-verify = no)";
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		cert_names(SSL_get0_peer_certificate(c->ssl), names, sizeof names);
		snprintf(buf, size, "%s (the certificate is for %s, not %s)", what, names, c->name);
		return "";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, size, "%s", what);
		return " (check this machine's clock)";
	default:
		snprintf(buf, size, "%s", what);
		return "";
	}
}

/* Decide after the handshake: pins first, then tls-verify. */
static int
check_peer(struct tls_conn *c, const struct tls_params *p, struct tls_info *info,
    struct err *err)
{
	char why[1024];
	const char *hint;
	bool pinned = false;

	if (SSL_get0_peer_certificate(c->ssl) == NULL)
		return err_set(err, "TLS handshake with %s failed: no server certificate", c->name);
	hint = chain_verdict(c, SSL_get_verify_result(c->ssl), why, sizeof why);
	for (size_t i = 0; i < p->nfingerprints && !pinned; i++)
		pinned = pin_matches(p->fingerprints[i], info->fingerprint);
	if (p->nfingerprints > 0 && !pinned) {
		snprintf(info->verify_error, sizeof info->verify_error,
		    "certificate does not match the pinned fingerprint%s (got %s)",
		    p->nfingerprints > 1 ? "s" : "", info->fingerprint);
		return err_set(err, "TLS handshake with %s failed: %s", c->name, info->verify_error);
	}
	info->pinned = pinned;
	info->verified = pinned || why[0] == '\0';
	if (info->verified)
		return 0;
	strlcopy(info->verify_error, why, sizeof info->verify_error);
	if (!p->verify)
		return 0;
	return err_set(err, "TLS handshake with %s failed: certificate verify failed: %s%s",
	    c->name, why, hint);
}

static int
set_nonblocking(int fd, struct err *err)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return err_sys(err, "cannot make the socket non-blocking");
	return 0;
}

int
tls_connect(int fd, const struct tls_params *p, unsigned timeout_ms, struct tls_conn **out,
    struct tls_info *info, struct err *err)
{
	struct tls_conn *c = xcalloc(1, sizeof *c);
	uint64_t deadline = now_ms() + timeout_ms;
	struct tls_fail fail;
	char why[512];

	*out = NULL;
	memset(info, 0, sizeof *info);
	c->fd = fd;
	strlcopy(c->name, p->servername != NULL && p->servername[0] != '\0' ?
	    p->servername : "the gateway", sizeof c->name);
	if (set_nonblocking(fd, err) < 0 || ctx_new(p, &c->ctx, err) < 0 ||
	    ssl_new(c, p, err) < 0)
		goto fail;
	if (drive(c, TLS_OP_CONNECT, NULL, 0, NULL, deadline, &fail) < 0) {
		describe_fail(&fail, timeout_ms, why, sizeof why);
		err_set(err, "TLS handshake with %s failed: %s", c->name, why);
		goto fail;
	}
	fill_info(c->ssl, info);
	if (check_peer(c, p, info, err) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	free(c);
	return -1;
}

long
tls_read(struct tls_conn *c, void *buf, size_t len, unsigned timeout_ms, struct err *err)
{
	struct tls_fail fail;
	size_t got = 0;
	char why[512], secs[32];

	if (drive(c, TLS_OP_READ, buf, len, &got, now_ms() + timeout_ms, &fail) == 1)
		return (long)got;
	ERR_clear_error();
	if (fail.timed_out)
		return err_set(err, "no reply within %s", format_seconds(timeout_ms, secs, sizeof secs));
	if (fail.ssl_err == SSL_ERROR_ZERO_RETURN)
		return 0;
	describe_fail(&fail, timeout_ms, why, sizeof why);
	return err_set(err, "reading from %s over TLS: %s", c->name, why);
}

int
tls_write(struct tls_conn *c, const void *buf, size_t len, unsigned timeout_ms, struct err *err)
{
	struct tls_fail fail;
	size_t done = 0;
	char why[512], secs[32];

	if (len == 0)
		return 0;
	/* Without SSL_MODE_ENABLE_PARTIAL_WRITE a success means all of buf. */
	if (drive(c, TLS_OP_WRITE, (void *)buf, len, &done, now_ms() + timeout_ms, &fail) == 1)
		return 0;
	ERR_clear_error();
	if (fail.timed_out)
		return err_set(err, "could not send to %s within %s (it does not read)", c->name,
		    format_seconds(timeout_ms, secs, sizeof secs));
	describe_fail(&fail, timeout_ms, why, sizeof why);
	return err_set(err, "sending to %s over TLS: %s", c->name, why);
}

int
tls_channel_binding(struct tls_conn *c, const char *type, unsigned char *out, size_t *len)
{
	int version = SSL_version(c->ssl);

	if (strcmp(type, "tls-exporter") == 0 && version == TLS1_3_VERSION) {
		if (SSL_export_keying_material(c->ssl, out, EXPORTER_LEN, EXPORTER_LABEL,
		    strlen(EXPORTER_LABEL), NULL, 0, 0) != 1) {
			ERR_clear_error();
			return -1;
		}
		*len = EXPORTER_LEN;
		return 0;
	}
	/* tls-unique is the first Finished message of the connection: ours in a
	 * full handshake.  Without the extended master secret (RFC 7627) it
	 * does not bind (triple handshake attack), so it is not offered then. */
	if (strcmp(type, "tls-unique") == 0 && version == TLS1_2_VERSION &&
	    SSL_get_extms_support(c->ssl) == 1) {
		size_t n = SSL_session_reused(c->ssl) ?
		    SSL_get_peer_finished(c->ssl, out, TLS_CHANNEL_BINDING_MAX) :
		    SSL_get_finished(c->ssl, out, TLS_CHANNEL_BINDING_MAX);

		if (n == 0 || n > TLS_CHANNEL_BINDING_MAX)
			return -1;
		*len = n;
		return 0;
	}
	return -1;
}

void
tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	/* One non-blocking attempt at close_notify; the peer's answer is not
	 * awaited (RFC 8446 §6.1 allows that). */
	if (SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	free(c);
}
