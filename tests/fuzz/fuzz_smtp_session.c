/* fuzz_smtp_session.c - arbitrary bytes through a whole SMTP server session:
 * line framing, the command sequence, DATA with its smuggling defences.  The
 * store keeps messages in memory and checks what the session hands it: a
 * committed message never contains a bare CR or LF, and every line ends in
 * CRLF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "smtp_server.h"

struct mem_store {
	struct evbuffer *content;
	struct smtp_session *session;
	unsigned committed;
};

static int
mem_begin(void *ctx, char *id, struct err *err)
{
	struct mem_store *st = ctx;

	(void)err;
	st->content = evbuffer_new();
	strcpy(id, "0000000000000FUZZ0");
	return 0;
}

static int
mem_write(void *ctx, const void *buf, size_t len, struct err *err)
{
	struct mem_store *st = ctx;

	(void)err;
	return evbuffer_add(st->content, buf, len);
}

static void
mem_abort(void *ctx)
{
	struct mem_store *st = ctx;

	if (st->content != NULL)
		evbuffer_free(st->content);
	st->content = NULL;
}

static void
mem_commit(void *ctx, struct envelope *env)
{
	struct mem_store *st = ctx;
	size_t len = evbuffer_get_length(st->content);
	const unsigned char *p = evbuffer_pullup(st->content, -1);

	(void)env;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			abort();        /* bare LF stored */
		if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'))
			abort();        /* bare CR stored */
	}
	if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
		abort();
	st->committed++;
	mem_abort(st);
	smtp_session_committed(st->session, st->committed % 3 != 0, "fuzz");
}

static struct config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_store st = { 0 };
	struct smtp_store store = { &st, mem_begin, mem_write, mem_abort, mem_commit };
	struct smtp_peer peer = { .addr = "127.0.0.1", .name = "localhost", .uid = -1 };
	struct evbuffer *in, *out;
	struct err err = { "" };

	if (cfg == NULL && config_load_string("user =\nspool = /nonexistent\nhostname = fuzz.example\n"
	    "max-message-size = 4k\nmax-recipients = 5\n", "fuzz.conf", &cfg, &err) < 0)
		abort();
	in = evbuffer_new();
	out = evbuffer_new();
	st.session = smtp_session_new(cfg, &peer, &store, out);
	smtp_session_greet(st.session);
	/* Feed in two halves: framing must not depend on how bytes arrive. */
	evbuffer_add(in, data, size / 2);
	if (smtp_session_input(st.session, in) != SMTP_SESSION_CLOSE) {
		evbuffer_add(in, data + size / 2, size - size / 2);
		while (smtp_session_input(st.session, in) == SMTP_SESSION_WAIT &&
		    evbuffer_get_length(out) > 0)
			evbuffer_drain(out, evbuffer_get_length(out));
	}
	smtp_session_free(st.session);
	mem_abort(&st);
	evbuffer_free(in);
	evbuffer_free(out);
	return 0;
}
