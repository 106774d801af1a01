/* netio.h - one blocking connection to a gateway: name resolution (every
 * address in getaddrinfo order), TCP connect with a timeout, line I/O with a
 * timeout, and an upgrade to TLS (STARTTLS) or TLS from the start.  The
 * delivery worker, `probe` and later the POP3/IMAP login use it.
 *
 * Lines read are untrusted: at most NETIO_LINE_MAX octets, CRLF or LF ends
 * a line (gateways are lenient senders; what we *send* is strict CRLF). */
#ifndef MAILREDIR_NETIO_H
#define MAILREDIR_NETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "tls.h"

#define NETIO_LINE_MAX 4096

/* Step-by-step narration for `probe` (NULL: none).  One line per call. */
struct netio_trace {
	void (*say)(void *ctx, const char *line);
	void *ctx;
};

struct netio;

/* Resolve host and connect to its addresses in order until one accepts,
 * each within connect_timeout_ms.  The error names every address tried. */
int netio_connect(const char *host, uint16_t port, uint64_t connect_timeout_ms,
    const struct netio_trace *, struct netio **, struct err *);

/* "smtp.example.net[192.0.2.1]:587" for logs (relay=...). */
const char *netio_peer(const struct netio *);

/* Switch to TLS on this connection (after STARTTLS's 220, or at once for
 * implicit TLS).  Buffered plaintext that arrived before the handshake is an
 * error (STARTTLS response injection, CVE-2011-0411 style). */
int netio_start_tls(struct netio *, const struct tls_params *, uint64_t timeout_ms,
    struct tls_info *, struct err *);
bool netio_tls_active(const struct netio *);
struct tls_conn *netio_tls(struct netio *);   /* NULL before TLS; for channel binding */

/* Implicit TLS expected: before the handshake, wait up to wait_ms for the
 * server to speak first.  Returns 1 when it sent something that looks like
 * an SMTP banner (then: "port N speaks plaintext SMTP: set tls = starttls"),
 * 0 when it stayed silent (as a TLS server does), -1 on error. */
int netio_server_speaks_first(struct netio *, uint64_t wait_ms, char *banner,
    size_t size, struct err *);

/* A line without its line end; returns its length, or -1 with err on
 * timeout ("no reply within 300 s"), close ("connection closed by the
 * gateway") or an overlong line. */
ssize_t netio_read_line(struct netio *, char *buf, size_t size, uint64_t timeout_ms,
    struct err *);

/* Buffered writes; netio_flush sends them (within timeout_ms). */
int netio_write(struct netio *, const void *, size_t, struct err *);
int netio_flush(struct netio *, uint64_t timeout_ms, struct err *);

void netio_close(struct netio *);   /* TLS close_notify, close(fd), free; NULL ok */

#endif
