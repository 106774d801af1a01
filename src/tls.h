/* tls.h - TLS toward gateways (OpenSSL 3): contexts, verification, pinning,
 * client certificates, channel binding (mailredir.conf.5, tls-* keys).
 *
 * Verification: with verify on, the system CA store (or tls-ca-file) and the
 * host name (X509_VERIFY_PARAM_set1_host).  A tls-fingerprint pin (SHA-256
 * of the DER certificate) is trusted even without a CA; a certificate that
 * matches no pin is refused even with a valid chain.  TLS 1.2 at least.
 * Everything the peer sends is untrusted. */
#ifndef MAILREDIR_TLS_H
#define MAILREDIR_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct tls_params {
	const char *servername;        /* SNI and the name checked against the certificate */
	bool verify;
	const char *ca_file;           /* NULL: the system store */
	char *const *fingerprints;     /* "sha256:AB:CD:..." (upper case), n may be 0 */
	size_t nfingerprints;
	const char *cert_file, *key_file;  /* client certificate, or NULL */
};

/* What the handshake established, for logs and `probe`. */
struct tls_info {
	char version[16];              /* "TLSv1.3" */
	char cipher[64];
	char subject[256];             /* of the peer certificate, one line */
	char issuer[256];
	char not_after[32];            /* "2027-01-01T00:00:00Z" */
	char fingerprint[104];         /* "sha256:AB:..." of the peer certificate */
	bool verified;                 /* chain + name ok, or a pin matched */
	bool pinned;                   /* a tls-fingerprint matched */
	char verify_error[256];        /* why not verified ("" when verified) */
};

struct tls_conn;

/* Handshake as a client on a connected blocking socket, within timeout_ms.
 * On success *out owns the TLS state (not the fd).  A failed verification is
 * an error (-1, err says why in words: "certificate verify failed: unable to
 * get local issuer certificate (set tls-ca-file, or tls-verify = no)") unless
 * params->verify is false and no pins are set; *info is filled as far as the
 * handshake got in either case. */
int tls_connect(int fd, const struct tls_params *, unsigned timeout_ms,
    struct tls_conn **out, struct tls_info *info, struct err *);

/* Blocking I/O with a timeout: bytes read (0 = clean close), or -1 + err. */
long tls_read(struct tls_conn *, void *buf, size_t len, unsigned timeout_ms, struct err *);
int tls_write(struct tls_conn *, const void *buf, size_t len, unsigned timeout_ms, struct err *);

/* Channel binding data for SCRAM-*-PLUS: "tls-exporter" (TLS 1.3, RFC 9266)
 * or "tls-unique" (TLS 1.2).  0 with *len set, -1 when not available. */
int tls_channel_binding(struct tls_conn *, const char *type, unsigned char *out,
    size_t *len);

/* Send close_notify (best effort) and free; does not close the fd. */
void tls_close(struct tls_conn *);

#endif
