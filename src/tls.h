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

/* Handshake as a client on a connected socket, within timeout_ms.  The fd
 * is left in non-blocking mode (every call here polls with its timeout); it
 * stays the caller's.  On success *out owns the TLS state (not the fd).
 * A failed verification is an error (-1, err says why in words: "TLS
 * handshake with H failed: certificate verify failed: unable to get local
 * issuer certificate (set tls-ca-file, or tls-verify = no)") unless
 * params->verify is false and no pins are set; then 0 with info->verified
 * false and info->verify_error set.  Pins set and none matching: -1 ("...
 * certificate does not match the pinned fingerprint (got sha256:...)"),
 * whatever the chain.  A plaintext server: "...: wrong version number (is
 * this a plaintext port? try tls = starttls)".  *info is zeroed, then filled
 * as far as the handshake got (info->version[0] != '\0': it completed).
 * servername NULL or "": no SNI and no name check. */
int tls_connect(int fd, const struct tls_params *, unsigned timeout_ms,
    struct tls_conn **out, struct tls_info *info, struct err *);

/* Blocking I/O with a timeout.  tls_read: bytes read, 0 when the gateway
 * closed (close_notify or plain EOF: SMTP replies end in CRLF, so a
 * missing close_notify truncates nothing unseen), or -1 + err ("no reply
 * within 300 s" on timeout).  tls_write: all of buf, or -1 + err.
 * A write to a gateway that has closed can raise SIGPIPE (OpenSSL writes
 * with write(2)): every process using this module ignores SIGPIPE. */
long tls_read(struct tls_conn *, void *buf, size_t len, unsigned timeout_ms, struct err *);
int tls_write(struct tls_conn *, const void *buf, size_t len, unsigned timeout_ms, struct err *);

/* Channel binding data for SCRAM-*-PLUS: "tls-exporter" (TLS 1.3 only,
 * RFC 9266: 32 bytes) or "tls-unique" (TLS 1.2 only, RFC 5929; refused
 * without the extended master secret of RFC 7627).  out holds at least
 * TLS_CHANNEL_BINDING_MAX bytes.  0 with *len set, -1 when not available
 * (other type, other TLS version). */
#define TLS_CHANNEL_BINDING_MAX 64
int tls_channel_binding(struct tls_conn *, const char *type, unsigned char *out,
    size_t *len);

/* Send close_notify (one non-blocking try) and free; does not close the
 * fd.  NULL ok. */
void tls_close(struct tls_conn *);

#endif
