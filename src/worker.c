/* worker.c - the delivery worker process; see worker.h.
 *
 * Plain blocking code: poll on the daemon's pipe, then deliver a batch
 * with the route's session, which stays open across batches (the gateway
 * sees one connection carry a burst, as with E-MailRelay's or Postfix's
 * connection reuse).  The daemon decides when a worker goes (it closes the
 * pipe), so a batch is never written to a worker that is leaving.
 *
 * Delivered messages leave the queue at once, but the directory sync that
 * makes it durable waits until the worker has had nothing to do for
 * WORKER_REMOVALS_SYNC_MS or WORKER_REMOVALS_MAX (or WORKER_REMOVALS_BYTES
 * of content) have piled up: one flush for a burst instead of one per
 * message competing with the flushes of the daemon's commits.  The
 * daemon's journal keeps a record of each message until its removal is
 * durable (spool_left_queue): the byte limit keeps that within the
 * journal's size when messages are big.  A power cut in that window may send a message
 * twice (Postfix does not sync removals at all); none is lost. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define WORKER_REMOVALS_SYNC_MS 20
#define WORKER_REMOVALS_MAX     64
#define WORKER_REMOVALS_BYTES   (JOURNAL_SIZE / 16)

int
worker_batch_parse(char *line, size_t len, enum deliver_mode *mode, char **ids, size_t *nids)
{
	char *p = line, *end = line + len, *word;
	int m;

	if (memchr(line, '\0', len) != NULL)
		return -1;
	*nids = 0;
	word = p;
	while (p < end && *p != ' ')
		p++;
	for (m = 0; m < DELIVER_MODE_COUNT; m++) {
		const char *name = deliver_mode_name((enum deliver_mode)m);

		if ((size_t)(p - word) == strlen(name) && memcmp(word, name, strlen(name)) == 0)
			break;
	}
	if (m == DELIVER_MODE_COUNT)
		return -1;
	*mode = (enum deliver_mode)m;
	while (p < end) {
		*p++ = '\0';             /* the space before an ID */
		word = p;
		while (p < end && *p != ' ')
			p++;
		if (*nids == WORKER_BATCH_MAX || p == word)
			return -1;
		if (p < end)
			*p = '\0';
		else
			line[len] = '\0';
		if (!spool_id_valid(word))
			return -1;
		ids[(*nids)++] = word;
	}
	return *nids > 0 ? 0 : -1;
}

void
worker_report(void *ctx, const struct deliver_line *line)
{
	char buf[DELIVER_LINE_MAX];

	(void)ctx;
	deliver_line_format(line, buf, sizeof buf);
	if (write_all(STDOUT_FILENO, buf, strlen(buf)) < 0)
		log_debug("worker: cannot report %s: %s", line->id, strerror(errno));
}

/* One batch line: deliver it.  A line that is not a batch is the daemon's
 * bug; it is logged and skipped (its messages stay queued and the
 * daemon's index times them out like a dead worker's). */
static void
run_batch(struct deliver_session *ds, char *line, size_t len)
{
	char *ids[WORKER_BATCH_MAX];
	struct deliver_stats stats = { .report = worker_report };
	size_t n;
	enum deliver_mode mode;

	if (worker_batch_parse(line, len, &mode, ids, &n) < 0) {
		log_err("worker: not a batch from the daemon: %.60s", line);
		return;
	}
	deliver_session_run(ds, (const char *const *)ids, n, mode, &stats);
}

static void
sync_removals(struct spool *spool)
{
	struct err err = { "" };

	if (spool_sync_removals(spool, &err) < 0)
		log_err("worker: %s", err.msg);
}

int
worker_main(const struct config *cfg, struct spool *spool, const struct netio_trace *trace,
    int in_fd)
{
	struct deliver_session *ds = deliver_session_new(cfg, spool, trace);
	char buf[WORKER_LINE_MAX + 1];
	size_t have = 0;
	int rc = 0;

	for (;;) {
		struct pollfd pfd = { .fd = in_fd, .events = POLLIN };
		bool removals = spool_removals_pending(spool) > 0;
		int timeout = removals ? WORKER_REMOVALS_SYNC_MS :
		    deliver_session_connected(ds) ? WORKER_SESSION_IDLE_MS : -1;
		char *nl;
		ssize_t got;
		int ready = poll(&pfd, 1, timeout);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			log_err("worker: poll: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (ready == 0 && removals) {
			sync_removals(spool);
			continue;
		}
		if (ready == 0) {            /* idle: let the gateway go */
			deliver_session_quit(ds);
			continue;
		}
		got = read(in_fd, buf + have, sizeof buf - 1 - have);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0) {
			log_err("worker: read: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (got == 0)
			break;
		have += (size_t)got;
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			size_t len = (size_t)(nl - buf);

			run_batch(ds, buf, len);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
		}
		if (spool_removals_pending(spool) >= WORKER_REMOVALS_MAX ||
		    spool_removal_bytes_pending(spool) >= WORKER_REMOVALS_BYTES)
			sync_removals(spool);
		if (have == sizeof buf - 1) {
			log_err("worker: a batch line longer than %d octets", WORKER_LINE_MAX);
			rc = -1;
			break;
		}
	}
	deliver_session_free(ds);
	sync_removals(spool);
	return rc;
}
