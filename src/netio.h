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

/* Say one line (printf-like) through a trace; a NULL trace says nothing. */
void netio_trace_say(const struct netio_trace *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct netio;

/* Resolve host (a name, an IPv4 or IPv6 literal, "[IPv6]" too) and connect
 * to its addresses in getaddrinfo order until one accepts, each within
 * connect_timeout_ms.  The error names every address tried: "connect to
 * smtp.example.net port 587: 127.0.0.1: connection refused; ::1: no answer
 * within 30 s".  Trace: "resolving H: A, B", "connecting to A port P",
 * "connected to A port P (3 ms)" or "A port P: connection refused". */
int netio_connect(const char *host, uint16_t port, uint64_t connect_timeout_ms,
    const struct netio_trace *, struct netio **, struct err *);

/* "smtp.example.net[192.0.2.1]:587" for logs (relay=...); valid until
 * netio_close. */
const char *netio_peer(const struct netio *);

/* Switch to TLS on this connection (after STARTTLS's 220, or at once for
 * implicit TLS).  Errors and *info as tls_connect.  Plaintext that arrived
 * after the 220 and before the handshake (in the buffer, or waiting in the
 * socket) is an error: "the gateway sent data after STARTTLS before the TLS
 * handshake (response injection)" (CVE-2011-0411 style); so is unflushed
 * written data.  Trace: "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384; certificate
 * CN=... issued by CN=...; valid until ...; verified" (or "not verified:
 * why"), or "TLS: " and the error when the handshake failed.  After a
 * failure the connection is unusable: netio_close it. */
int netio_start_tls(struct netio *, const struct tls_params *, uint64_t timeout_ms,
    struct tls_info *, struct err *);
bool netio_tls_active(const struct netio *);
struct tls_conn *netio_tls(struct netio *);   /* NULL before TLS; for channel binding */

/* Implicit TLS expected: before the handshake, wait up to wait_ms for the
 * server to speak first.  Returns 1 when it sent text (an SMTP "220 ...",
 * POP3 "+OK", IMAP "* OK") and copies its first line, printable ASCII only,
 * into banner (then: "port N speaks plaintext SMTP: set tls = starttls");
 * 0 when it stayed silent (as a TLS server does) or sent non-text; -1 when
 * it closed the connection or on error.  Only peeks: the bytes stay in the
 * socket. */
int netio_server_speaks_first(struct netio *, uint64_t wait_ms, char *banner,
    size_t size, struct err *);

/* A line without its line end, NUL-terminated in buf (it may contain NUL
 * bytes: use the length); returns its length, or -1 with err on timeout
 * ("no reply within 300 s", timeout_ms for the whole line), close
 * ("connection closed by the gateway") or an overlong line ("reply line
 * longer than 4096 octets").  size >= NETIO_LINE_MAX + 1 takes every line
 * allowed.  After an error the connection is unusable. */
ssize_t netio_read_line(struct netio *, char *buf, size_t size, uint64_t timeout_ms,
    struct err *);

/* Buffered writes: nothing is sent until netio_flush, which sends all of
 * it in as few writes as the kernel takes (within timeout_ms).  The buffer
 * grows as needed: flush a long body every 64 KiB or so.  A failed flush
 * drops the buffer; the connection is then unusable.  The only netio_write
 * error is an absurd size. */
int netio_write(struct netio *, const void *, size_t, struct err *);
int netio_flush(struct netio *, uint64_t timeout_ms, struct err *);

void netio_close(struct netio *);   /* TLS close_notify, close(fd), free; NULL ok */

#endif
