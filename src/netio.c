/* netio.c - one blocking connection to a gateway; see netio.h.
 *
 * The socket is non-blocking from the start and every wait is a poll() with
 * the time left, so no step can hang past its timeout.  Reads go through a
 * buffer that frames lines before anyone parses them (NETIO_LINE_MAX);
 * writes gather in a buffer until netio_flush, so a pipelined group of
 * commands, or the end of a message body with its final ".", leaves in one
 * write instead of small packets held back by Nagle and delayed ACK.
 *
 * SECURITY: what the gateway sends is untrusted: lines are bounded, the
 * banner copied for a diagnosis is reduced to printable ASCII, and bytes
 * that arrive before a STARTTLS handshake are refused (RFC 3207 §4.2;
 * CVE-2011-0411 style response injection). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netio.h"
#include "util.h"

/* Room for the longest allowed line, its CR LF, and more lines behind it. */
#define NETIO_RBUF (4 * NETIO_LINE_MAX)
/* A write buffer grown past this (a large body) is released after a flush. */
#define NETIO_WBUF_KEEP 65536
#define NETIO_PEER_MAX 300

struct netio {
	int fd;
	char peer[NETIO_PEER_MAX];     /* "host[addr]:port" */
	struct netio_trace trace;      /* say == NULL: no trace */
	struct tls_conn *tls;
	bool plain_io;                 /* bytes went either way before TLS */
	char rbuf[NETIO_RBUF];
	size_t rpos, rlen;             /* unread bytes: rbuf[rpos..rlen) */
	char *wbuf;
	size_t wlen, wcap;
};

static unsigned
clamp_ms(uint64_t ms)
{
	return ms > UINT_MAX ? UINT_MAX : (unsigned)ms;
}

/* strerror with a lower-case first letter, to sit inside a sentence. */
static void
errno_words(int e, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && (buf[1] < 'A' || buf[1] > 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

static void
format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	if (getnameinfo(sa, len, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
		strlcopy(buf, "?", size);
}

/* "resolving smtp.example.net: 127.0.0.1, ::1" */
static void
trace_resolved(const struct netio_trace *t, const char *host, const struct addrinfo *res)
{
	char list[768] = "", addr[64];
	size_t off = 0;

	if (t == NULL || t->say == NULL)
		return;
	for (const struct addrinfo *ai = res; ai != NULL && off < sizeof list; ai = ai->ai_next) {
		format_addr(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr);
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
		    off > 0 ? ", " : "", addr);
	}
	netio_trace_say(t, "resolving %s: %s", host, list);
}

/* One address: a connected non-blocking socket, or -1 with the reason in
 * why ("connection refused", "no answer within 30 s"). */
static int
connect_one(const struct addrinfo *ai, uint64_t timeout_ms, char *why, size_t size)
{
	int fd, soerr = 0;
	socklen_t len = sizeof soerr;
	char secs[32];

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR)
		goto fail;
	switch (wait_fd(fd, POLLOUT, now_ms() + timeout_ms)) {
	case 0:
		snprintf(why, size, "no answer within %s", format_seconds(timeout_ms, secs, sizeof secs));
		close(fd);
		return -1;
	case -1:
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		goto fail;
	if (soerr == 0)
		return fd;
	errno = soerr;
fail:
	errno_words(errno, why, size);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Try every address in order; "127.0.0.1: connection refused; ::1: ..."
 * collects the failures. */
static int
connect_any(const char *host, uint16_t port, const struct addrinfo *res,
    uint64_t timeout_ms, const struct netio_trace *t, char *peer, size_t peersize,
    struct err *err)
{
	char tried[2048] = "", why[256], addr[64];
	size_t off = 0;

	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		uint64_t start = now_ms();
		int fd;

		format_addr(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr);
		netio_trace_say(t, "connecting to %s port %u", addr, port);
		fd = connect_one(ai, timeout_ms, why, sizeof why);
		if (fd >= 0) {
			netio_trace_say(t, "connected to %s port %u (%llu ms)", addr, port,
			    (unsigned long long)(now_ms() - start));
			snprintf(peer, peersize, "%.220s[%s]:%u", host, addr, port);
			return fd;
		}
		netio_trace_say(t, "%s port %u: %s", addr, port, why);
		if (off < sizeof tried)
			off += (size_t)snprintf(tried + off, sizeof tried - off, "%s%s: %s",
			    off > 0 ? "; " : "", addr, why);
	}
	return err_set(err, "connect to %s port %u: %s", host, port, tried);
}

int
netio_connect(const char *host, uint16_t port, uint64_t connect_timeout_ms,
    const struct netio_trace *t, struct netio **out, struct err *err)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char name[256], service[8], peer[NETIO_PEER_MAX];
	size_t len = strlen(host);
	int rc, fd, one = 1;
	struct netio *n;

	*out = NULL;
	/* "[2001:db8::1]" as written in smarthost: the brackets are not the name. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof name) {
		memcpy(name, host + 1, len - 2);
		name[len - 2] = '\0';
	} else
		strlcopy(name, host, sizeof name);
	snprintf(service, sizeof service, "%u", port);
	/* No AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 on a host whose only
	 * interface is loopback, and a failed connect says more than nothing. */
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(name, service, &hints, &res);
	if (rc != 0) {
		const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);

		netio_trace_say(t, "resolving %s: %s", name, why);
		return err_set(err, "cannot resolve %s: %s", name, why);
	}
	trace_resolved(t, name, res);
	fd = connect_any(name, port, res, connect_timeout_ms, t, peer, sizeof peer, err);
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	/* Commands and replies are small; the write buffer already gathers
	 * what belongs together, so Nagle would only add delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	n = xcalloc(1, sizeof *n);
	n->fd = fd;
	strlcopy(n->peer, peer, sizeof n->peer);
	if (t != NULL)
		n->trace = *t;
	*out = n;
	return 0;
}

const char *
netio_peer(const struct netio *n)
{
	return n->peer;
}

bool
netio_tls_active(const struct netio *n)
{
	return n->tls != NULL;
}

struct tls_conn *
netio_tls(struct netio *n)
{
	return n->tls;
}

/* "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384; certificate CN=a issued by CN=b;
 * valid until 2027-01-01T00:00:00Z; verified" */
static void
trace_tls(struct netio *n, const struct tls_info *info, int rc, const struct err *err)
{
	char verdict[320];

	if (info->version[0] == '\0') {
		netio_trace_say(&n->trace, "TLS: %s", err->msg);
		return;
	}
	if (info->pinned)
		strlcopy(verdict, "verified (tls-fingerprint)", sizeof verdict);
	else if (info->verified)
		strlcopy(verdict, "verified", sizeof verdict);
	else
		snprintf(verdict, sizeof verdict, "not verified: %s%s", info->verify_error,
		    rc == 0 ? " (tls-verify = no)" : "");
	netio_trace_say(&n->trace, "TLS: %s %s; certificate %s issued by %s; valid until %s; %s",
	    info->version, info->cipher, info->subject, info->issuer, info->not_after, verdict);
}

int
netio_start_tls(struct netio *n, const struct tls_params *p, uint64_t timeout_ms,
    struct tls_info *info, struct err *err)
{
	char c;
	int rc;

	memset(info, 0, sizeof *info);
	if (n->tls != NULL)
		return err_set(err, "TLS is already active toward %s", n->peer);
	if (n->wlen > 0)
		return err_set(err, "unsent data toward %s before the TLS handshake", n->peer);
	/* After STARTTLS's 220 the server must wait for our ClientHello; any
	 * byte already here was sent before the handshake, so nothing read in
	 * the clear may run into the TLS session. */
	if (n->rpos != n->rlen || (n->plain_io &&
	    recv(n->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1))
		return err_set(err, "%s: the gateway sent data after STARTTLS before the TLS "
		    "handshake (response injection)", n->peer);
	rc = tls_connect(n->fd, p, clamp_ms(timeout_ms), &n->tls, info, err);
	trace_tls(n, info, rc, err);
	return rc;
}

int
netio_server_speaks_first(struct netio *n, uint64_t wait_ms, char *banner, size_t size,
    struct err *err)
{
	char peek[128];
	ssize_t r;
	size_t i;

	if (size > 0)
		banner[0] = '\0';
	if (n->tls != NULL)
		return err_set(err, "TLS is already active toward %s", n->peer);
	if (n->rpos == n->rlen) {
		switch (wait_fd(n->fd, POLLIN, now_ms() + wait_ms)) {
		case 0:
			return 0;
		case -1:
			return err_sys(err, "waiting for %s", n->peer);
		}
		/* Peek only: when the server is silent after all, the handshake
		 * must find the socket untouched. */
		r = recv(n->fd, peek, sizeof peek, MSG_PEEK);
		if (r < 0)
			return errno == EAGAIN ? 0 : err_sys(err, "reading from %s", n->peer);
		if (r == 0)
			return err_set(err, "connection closed by the gateway %s before a word",
			    n->peer);
	} else {
		r = (ssize_t)(n->rlen - n->rpos < sizeof peek ? n->rlen - n->rpos : sizeof peek);
		memcpy(peek, n->rbuf + n->rpos, (size_t)r);
	}
	/* A TLS server never speaks first, and a record starts with a byte
	 * below 0x20; text ("220 ", "+OK", "* OK") is a plaintext protocol. */
	if (peek[0] < 0x20 || peek[0] > 0x7e)
		return 0;
	for (i = 0; i < (size_t)r && i + 1 < size && peek[i] >= 0x20 && peek[i] <= 0x7e; i++)
		banner[i] = peek[i];
	if (size > 0)
		banner[i] = '\0';
	return 1;
}

/* Read what is there into rbuf (at most one wait).  >0 bytes, 0 closed,
 * -1 err (timeout: "no reply within N s", N the caller's whole timeout). */
static ssize_t
fill(struct netio *n, uint64_t deadline, uint64_t timeout_ms, struct err *err)
{
	char *p = n->rbuf + n->rlen, secs[32];
	size_t room = sizeof n->rbuf - n->rlen;
	uint64_t now = now_ms();

	if (n->tls != NULL) {
		/* Called even at the deadline: OpenSSL may hold a record already. */
		long r = tls_read(n->tls, p, room, clamp_ms(now < deadline ? deadline - now : 0), err);

		if (r < 0 && now_ms() >= deadline)
			return err_set(err, "no reply within %s", format_seconds(timeout_ms, secs, sizeof secs));
		return r;
	}
	for (;;) {
		ssize_t r = recv(n->fd, p, room, 0);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return err_sys(err, "reading from %s", n->peer);
		switch (wait_fd(n->fd, POLLIN, deadline)) {
		case 0:
			return err_set(err, "no reply within %s", format_seconds(timeout_ms, secs, sizeof secs));
		case -1:
			return err_sys(err, "waiting for %s", n->peer);
		}
	}
}

ssize_t
netio_read_line(struct netio *n, char *buf, size_t size, uint64_t timeout_ms, struct err *err)
{
	uint64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		char *start = n->rbuf + n->rpos;
		size_t avail = n->rlen - n->rpos, len;
		char *lf = memchr(start, '\n', avail);
		ssize_t r;

		if (lf != NULL) {
			len = (size_t)(lf - start);
			n->rpos += len + 1;
			if (len > 0 && start[len - 1] == '\r')
				len--;
			if (len > NETIO_LINE_MAX)
				return err_set(err, "reply line longer than %d octets", NETIO_LINE_MAX);
			if (len >= size)
				return err_set(err, "reply line of %zu octets does not fit in %zu", len, size);
			memcpy(buf, start, len);
			buf[len] = '\0';
			if (n->tls == NULL)
				n->plain_io = true;
			return (ssize_t)len;
		}
		/* No line end yet: the line so far (one octet may be its CR)
		 * must still fit the limit. */
		if (avail > NETIO_LINE_MAX + 1)
			return err_set(err, "reply line longer than %d octets", NETIO_LINE_MAX);
		memmove(n->rbuf, start, avail);
		n->rpos = 0;
		n->rlen = avail;
		r = fill(n, deadline, timeout_ms, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return err_set(err, "connection closed by the gateway%s",
			    avail > 0 ? " in the middle of a line" : "");
		n->rlen += (size_t)r;
	}
}

int
netio_write(struct netio *n, const void *data, size_t len, struct err *err)
{
	if (len > SIZE_MAX / 2 - n->wlen)
		return err_set(err, "too much unsent data toward %s", n->peer);
	if (n->wlen + len > n->wcap) {
		size_t cap = n->wcap > 0 ? n->wcap : 4096;

		while (cap < n->wlen + len)
			cap *= 2;
		n->wbuf = xrealloc(n->wbuf, cap);
		n->wcap = cap;
	}
	memcpy(n->wbuf + n->wlen, data, len);
	n->wlen += len;
	return 0;
}

static int
send_plain(struct netio *n, uint64_t timeout_ms, struct err *err)
{
	uint64_t deadline = now_ms() + timeout_ms;
	size_t off = 0;
	char secs[32];

	while (off < n->wlen) {
		/* MSG_NOSIGNAL: a gateway that closed is an error, not SIGPIPE. */
		ssize_t r = send(n->fd, n->wbuf + off, n->wlen - off, MSG_NOSIGNAL);

		if (r >= 0) {
			off += (size_t)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return err_sys(err, "sending to %s", n->peer);
		switch (wait_fd(n->fd, POLLOUT, deadline)) {
		case 0:
			return err_set(err, "could not send to %s within %s (it does not read)",
			    n->peer, format_seconds(timeout_ms, secs, sizeof secs));
		case -1:
			return err_sys(err, "waiting for %s", n->peer);
		}
	}
	n->plain_io = true;
	return 0;
}

int
netio_flush(struct netio *n, uint64_t timeout_ms, struct err *err)
{
	int rc;

	if (n->wlen == 0)
		return 0;
	if (n->tls != NULL)
		rc = tls_write(n->tls, n->wbuf, n->wlen, clamp_ms(timeout_ms), err);
	else
		rc = send_plain(n, timeout_ms, err);
	/* Sent or not, the connection cannot resend part of a buffer. */
	n->wlen = 0;
	if (n->wcap > NETIO_WBUF_KEEP) {
		free(n->wbuf);
		n->wbuf = NULL;
		n->wcap = 0;
	}
	return rc;
}

void
netio_close(struct netio *n)
{
	if (n == NULL)
		return;
	tls_close(n->tls);
	close(n->fd);
	free(n->wbuf);
	free(n);
}
