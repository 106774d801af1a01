/* queue_cmd.c - `mailredir queue ...` (and mailq) and `mailredir flush`:
 * what an administrator sees of the spool and does to it (mailredir.8,
 * QUEUE; PRODUCT.md §2 and §9, whose JSON format is a contract).
 *
 * SECURITY: envelope files are input (addresses, HELO names and replies come
 * from SMTP clients and gateways).  Every envelope value shown to a person
 * goes through put_text(), which turns control characters (terminal escape
 * sequences) and malformed UTF-8 into '?'; every value in --json goes through
 * json_escape().  `queue show` prints the stored message itself raw, as
 * postcat -q does: it is what the sender sent.
 *
 * Changes (hold, release, retry, delete) hold the message's lock through
 * spool_claim(), so they never race a delivery or another change; a message
 * that is locked is refused with 75, to be tried again. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "envelope.h"
#include "json.h"
#include "deliver.h"
#include "queue_cmd.h"
#include "spool.h"
#include "util.h"

static const char queue_usage[] =
    "usage: mailredir queue [--json]\n"
    "       mailredir queue show|hold|release|delete ID\n"
    "       mailredir queue retry ID|all\n";

static void warn(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);       /* keep the order of the two streams on a terminal */
	fputs("mailredir: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* One line saying what was done to a message ("0196...: held"). */
/* A running daemon keeps an index of the queue: a changed message (retry,
 * release...) is due at once, so tell it.  Without a daemon nothing to do. */
static void
tell_daemon(const struct config *cfg)
{
	char reply[CONTROL_LINE_MAX];
	struct err err = { "" };

	if (control_request(cfg->spool, "rescan", reply, sizeof reply, 5, &err) < 0)
		warn("the running daemon did not take the change: %s", err.msg);
}

static int
done(const char *id, const char *what)
{
	printf("%s: %s\n", id, what);
	return EX_OK;
}

/* Everything written reached stdout (a full disk or closed pipe is not
 * success for a script reading the JSON). */
static int
output_status(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warn("writing the output: %s", strerror(errno));
		return EX_TEMPFAIL;
	}
	return rc;
}

/* 0: open; 1: the spool directory does not exist (nothing was ever queued);
 * -1: error, reported. */
static int
open_spool(const struct config *cfg, struct spool **sp)
{
	struct err err = { "" };
	struct stat st;

	if (stat(cfg->spool, &st) < 0 && errno == ENOENT)
		return 1;
	if (spool_open(cfg->spool, false, sp, &err) < 0) {
		warn("%s", err.msg);
		return -1;
	}
	return 0;
}

/* Is there an envelope for `id` in a state directory?  Asked after a read
 * or claim failed, to tell "no such message" (delivered or deleted
 * meanwhile) from a broken one.  The directories are named after the
 * states (spool.h). */
static bool
message_exists(const struct spool *sp, const char *id)
{
	for (int s = 0; s < SPOOL_STATE_COUNT; s++) {
		char *path = xasprintf("%s/%s/%s", spool_dir(sp),
		    spool_state_name((enum spool_state)s), id);
		int r = access(path, F_OK);
		int saved = errno;

		free(path);
		if (r == 0 || saved != ENOENT)
			return true;
	}
	return false;
}

/* "queued", "deferred", "held", "failed": the directory says held and failed,
 * the envelope tells queued from deferred. */
static const char *
message_state(enum spool_state state, const struct envelope *env)
{
	switch (state) {
	case SPOOL_HELD:
		return "held";
	case SPOOL_FAILED:
		return "failed";
	default:
		return envelope_queue_state(env);
	}
}

/* --- text for people ------------------------------------------------------ */

/* An envelope value for a terminal: C0 and C1 controls, DEL and bytes that
 * are not well-formed UTF-8 become '?'. */
static void
put_text(const char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t n = json_utf8_len(s + i, len - i);
		bool control = p[0] < 0x20 || p[0] == 0x7F || (p[0] == 0xC2 && n == 2 && p[1] < 0xA0);

		if (n == 0 || control) {
			putchar('?');
			n = 1;
		} else {
			fwrite(p, 1, n, stdout);
		}
		i += n;
	}
}

static void
put_sender(const struct envelope *env)
{
	put_text(env->sender[0] != '\0' ? env->sender : "<>");
}

/* "45s", "3m", "2h", "5d". */
static void
format_age(int64_t seconds, char *buf, size_t size)
{
	static const struct { int64_t unit; char name; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};

	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (seconds >= units[i].unit) {
			snprintf(buf, size, "%" PRId64 "%c", seconds / units[i].unit, units[i].name);
			return;
		}
	snprintf(buf, size, "%" PRId64 "s", seconds);
}

/* "512", "1.2K", "14K", "3.0M" (powers of 1024, like mailredir.conf sizes). */
static void
format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	double v = (double)bytes / 1024;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%" PRIu64, bytes);
		return;
	}
	while (v >= 1024 && u + 1 < sizeof units - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* When the next attempt is due: "now", an ISO 8601 time, or "-" for held and
 * failed messages, which are not scheduled. */
static void
format_next_try(enum spool_state state, int64_t next_try, time_t now, char *buf,
    size_t size)
{
	if (state != SPOOL_QUEUE)
		strlcopy(buf, "-", size);
	else if (next_try <= now)
		strlcopy(buf, "now", size);
	else
		format_iso8601((time_t)next_try, buf, size);
}

#define TABLE_ROW "%-18s  %-9s %-5s %-5s %-8s %-21s "

static void
table_header(void)
{
	printf(TABLE_ROW "%s\n", "ID", "STATE", "AGE", "SIZE", "ATTEMPTS", "NEXT-TRY",
	    "SENDER");
}

/* One line for the message, one per recipient (with the route and, for
 * deferred and failed ones, the reply), and the message's last reply. */
static void
table_row(enum spool_state state, const struct envelope *env, time_t now)
{
	char age[24], size[24], attempts[24], next[UTIL_ISO8601_MAX];

	format_age(now - env->created, age, sizeof age);
	format_size(env->size, size, sizeof size);
	snprintf(attempts, sizeof attempts, "%u", env->attempts);
	format_next_try(state, env->next_try, now, next, sizeof next);
	printf(TABLE_ROW, env->id, message_state(state, env), age, size, attempts, next);
	put_sender(env);
	putchar('\n');
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];

		fputs("    ", stdout);
		put_text(r->address);
		printf("  %s", rcpt_status_name(r->status));
		if (r->route != NULL) {
			fputs("  route=", stdout);
			put_text(r->route);
		}
		if (r->reply != NULL && (r->status == RCPT_DEFERRED || r->status == RCPT_FAILED)) {
			fputs("  ", stdout);
			put_text(r->reply);
		}
		putchar('\n');
	}
	if (env->last_reply != NULL) {
		fputs("    last reply: ", stdout);
		put_text(env->last_reply);
		putchar('\n');
	}
}

/* --- JSON (PRODUCT.md §9) ------------------------------------------------ */

/* A JSON string, or null for NULL. */
static void
json_put(const char *s)
{
	size_t len, need;
	char *buf;

	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	len = strlen(s);
	need = json_escape(s, len, NULL, 0);
	buf = xmalloc(need + 1);
	json_escape(s, len, buf, need + 1);
	printf("\"%s\"", buf);
	free(buf);
}

static void
json_message(enum spool_state state, const struct envelope *env)
{
	char created[UTIL_ISO8601_MAX], next[UTIL_ISO8601_MAX];
	bool scheduled = state == SPOOL_QUEUE && env->next_try != 0;

	format_iso8601((time_t)env->created, created, sizeof created);
	if (scheduled)
		format_iso8601((time_t)env->next_try, next, sizeof next);
	fputs("{\"id\": ", stdout);
	json_put(env->id);
	printf(", \"state\": \"%s\", \"size\": %" PRIu64 ", \"sender\": ",
	    message_state(state, env), env->size);
	json_put(env->sender);
	printf(", \"created\": \"%s\", \"attempts\": %u, \"next_try\": ", created,
	    env->attempts);
	json_put(scheduled ? next : NULL);
	fputs(", \"recipients\": [", stdout);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];

		fputs(i > 0 ? ", {\"address\": " : "{\"address\": ", stdout);
		json_put(r->address);
		fputs(", \"route\": ", stdout);
		json_put(r->route);
		printf(", \"status\": \"%s\", \"reply\": ", rcpt_status_name(r->status));
		json_put(r->reply);
		putchar('}');
	}
	fputs("]}", stdout);
}

/* --- listing --------------------------------------------------------------- */

/* Read and print every listed message, in ID (= arrival) order.  A message
 * that vanishes between listing and reading was delivered or deleted
 * meanwhile and is skipped; one that cannot be read is reported and makes
 * the result 75, but the others are still shown. */
static int
show_messages(struct spool *sp, const struct spool_entry *entries, size_t n, bool json,
    size_t *shown)
{
	time_t now = time(NULL);
	int rc = EX_OK;

	for (size_t i = 0; i < n; i++) {
		enum spool_state state;
		struct envelope env;
		struct err err = { "" };

		if (spool_read(sp, entries[i].id, &state, &env, &err) < 0) {
			if (message_exists(sp, entries[i].id)) {
				warn("%s", err.msg);
				rc = EX_TEMPFAIL;
			}
			continue;
		}
		if (json) {
			fputs(*shown > 0 ? ",\n" : "\n", stdout);
			json_message(state, &env);
		} else {
			if (*shown == 0)
				table_header();
			table_row(state, &env, now);
		}
		(*shown)++;
		envelope_clear(&env);
	}
	return rc;
}

/* Nothing is printed unless the spool could be listed: "queue is empty" must
 * never stand for "could not look". */
static int
queue_list(const struct config *cfg, bool json)
{
	struct spool *sp = NULL;
	struct spool_entry *entries = NULL;
	struct err err = { "" };
	size_t n = 0, shown = 0;
	int rc;

	switch (open_spool(cfg, &sp)) {
	case -1:
		return EX_TEMPFAIL;
	case 0:
		if (spool_list(sp, &entries, &n, &err) < 0) {
			warn("%s", err.msg);
			spool_close(sp);
			return EX_TEMPFAIL;
		}
		break;
	default:
		break;           /* no spool yet: an empty queue */
	}
	if (json)
		fputs("{\"messages\": [", stdout);
	rc = show_messages(sp, entries, n, json, &shown);
	if (json)
		fputs(shown > 0 ? "\n]}\n" : "]}\n", stdout);
	else if (shown == 0)
		puts("queue is empty");
	else
		printf("%zu message%s\n", shown, shown == 1 ? "" : "s");
	free(entries);
	spool_close(sp);
	return output_status(rc);
}

/* --- queue show ID --------------------------------------------------------- */

static void
show_envelope(enum spool_state state, const struct envelope *env, time_t now)
{
	char when[UTIL_ISO8601_MAX], age[24];

	printf("id: %s\nstate: %s\nsender: ", env->id, message_state(state, env));
	put_sender(env);
	format_iso8601((time_t)env->created, when, sizeof when);
	format_age(now - env->created, age, sizeof age);
	printf("\ncreated: %s (%s ago)\nsize: %" PRIu64 "\n", when, age, env->size);
	if (env->origin == ORIGIN_SENDMAIL) {
		struct passwd *pw = env->uid >= 0 ? getpwuid((uid_t)env->uid) : NULL;

		printf("origin: sendmail, uid %ld", env->uid);
		if (pw != NULL)
			printf(" (%s)", pw->pw_name);
		putchar('\n');
	} else {
		fputs("origin: smtp, client ", stdout);
		put_text(env->client_name != NULL ? env->client_name : "unknown");
		fputs("[", stdout);
		put_text(env->client_addr != NULL ? env->client_addr : "unknown");
		fputs("]", stdout);
		if (env->helo != NULL) {
			fputs(", helo ", stdout);
			put_text(env->helo);
		}
		putchar('\n');
	}
	printf("body: %s%s\nattempts: %u\n", env->body == BODY_8BITMIME ? "8bitmime" : "7bit",
	    env->smtputf8 ? ", smtputf8" : "", env->attempts);
	if (env->last_try != 0)
		printf("last try: %s\n", format_iso8601((time_t)env->last_try, when, sizeof when));
	format_next_try(state, env->next_try, now, when, sizeof when);
	printf("next try: %s\n", when);
	if (env->last_reply != NULL) {
		fputs("last reply: ", stdout);
		put_text(env->last_reply);
		putchar('\n');
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];

		fputs("recipient: ", stdout);
		put_text(r->address);
		printf("\n    status: %s\n", rcpt_status_name(r->status));
		if (r->route != NULL) {
			fputs("    route: ", stdout);
			put_text(r->route);
			putchar('\n');
		}
		if (r->reply != NULL) {
			fputs("    reply: ", stdout);
			put_text(r->reply);
			putchar('\n');
		}
	}
}

/* The content file, byte for byte. */
static int
show_content(const struct spool *sp, const char *id)
{
	char *path = xasprintf("%s/data/%s", spool_dir(sp), id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[65536];
	ssize_t n;
	int rc = EX_OK;

	if (fd < 0) {
		warn("%s: %s", path, strerror(errno));
		free(path);
		return EX_TEMPFAIL;
	}
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			warn("%s: %s", path, strerror(errno));
			rc = EX_TEMPFAIL;
			break;
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	free(path);
	return rc;
}

static int
queue_show(struct spool *sp, const char *id)
{
	enum spool_state state;
	struct envelope env;
	struct err err = { "" };
	int rc;

	if (spool_read(sp, id, &state, &env, &err) < 0) {
		if (!message_exists(sp, id)) {
			warn("no message %s", id);
			return EX_DATAERR;
		}
		warn("%s", err.msg);
		return EX_TEMPFAIL;
	}
	show_envelope(state, &env, time(NULL));
	envelope_clear(&env);
	putchar('\n');
	rc = show_content(sp, id);
	return output_status(rc);
}

/* --- changes: hold, release, retry, delete ---------------------------------- */

static int
change_failed(const char *id, const struct err *err)
{
	warn("%s: %s", id, err->msg);
	return EX_TEMPFAIL;
}

static int
act_hold(struct spool_msg *msg, const char *id)
{
	struct err err = { "" };

	switch (spool_msg_state(msg)) {
	case SPOOL_HELD:
		return done(id, "already held");
	case SPOOL_FAILED:
		warn("%s: a failed message cannot be held; use `queue retry` or `queue delete`", id);
		return EX_DATAERR;
	default:
		break;
	}
	if (spool_msg_move(msg, SPOOL_HELD, &err) < 0)
		return change_failed(id, &err);
	return done(id, "held");
}

static int
act_release(struct spool_msg *msg, const char *id)
{
	struct err err = { "" };

	switch (spool_msg_state(msg)) {
	case SPOOL_QUEUE:
		return done(id, "not held, nothing to do");
	case SPOOL_FAILED:
		return done(id, "not held but failed; `queue retry` revives it");
	default:
		break;
	}
	spool_msg_envelope_mut(msg)->next_try = 0;
	if (spool_msg_save(msg, &err) < 0 || spool_msg_move(msg, SPOOL_QUEUE, &err) < 0)
		return change_failed(id, &err);
	return done(id, "released");
}

/* Every failed or deferred recipient back to pending (sent ones stay sent:
 * they are never sent twice), due now.  Returns whether anything changed. */
static bool
requeue_envelope(struct envelope *env)
{
	bool changed = env->next_try != 0;

	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].status == RCPT_FAILED || env->rcpts[i].status == RCPT_DEFERRED) {
			env->rcpts[i].status = RCPT_PENDING;
			changed = true;
		}
	env->next_try = 0;
	return changed;
}

/* Failed, held, queued or deferred: due now, with every recipient that is
 * not sent yet.  A held message is released by this. */
static int
act_retry(struct spool_msg *msg, const char *id)
{
	struct err err = { "" };
	enum spool_state state = spool_msg_state(msg);
	bool changed = requeue_envelope(spool_msg_envelope_mut(msg));

	if (state == SPOOL_QUEUE && !changed)
		return done(id, "already due now");
	if (changed && spool_msg_save(msg, &err) < 0)
		return change_failed(id, &err);
	if (state != SPOOL_QUEUE && spool_msg_move(msg, SPOOL_QUEUE, &err) < 0)
		return change_failed(id, &err);
	return done(id, "requeued");
}

static int
act_delete(struct spool_msg *msg, const char *id)
{
	struct err err = { "" };

	if (spool_msg_delete(msg, &err) < 0)
		return change_failed(id, &err);
	return done(id, "deleted");
}

static const struct queue_verb {
	const char *name;
	int (*act)(struct spool_msg *, const char *id);
} queue_verbs[] = {
	{ "hold",    act_hold },
	{ "release", act_release },
	{ "retry",   act_retry },
	{ "delete",  act_delete },
};

/* Lock the message and apply one change.  quiet_if_gone: for `retry all`,
 * a message delivered since the listing is no error. */
static int
change_message(struct spool *sp, const char *id, const struct queue_verb *verb,
    bool quiet_if_gone)
{
	struct spool_msg *msg = NULL;
	struct err err = { "" };
	int rc;

	switch (spool_claim(sp, id, &msg, &err)) {
	case 0:
		break;
	case 1:
		warn("%s: the message is being delivered right now, try again", id);
		return EX_TEMPFAIL;
	default:
		if (!message_exists(sp, id)) {
			if (quiet_if_gone)
				return EX_OK;
			warn("no message %s", id);
			return EX_DATAERR;
		}
		warn("%s", err.msg);
		return EX_TEMPFAIL;
	}
	rc = verb->act(msg, id);
	spool_msg_free(msg);
	return rc;
}

/* `retry all`: queued, deferred and failed messages; held ones stay held. */
static int
retry_all(struct spool *sp, const struct queue_verb *retry)
{
	struct spool_entry *entries = NULL;
	struct err err = { "" };
	size_t n = 0, tried = 0;
	int rc = EX_OK;

	if (spool_list(sp, &entries, &n, &err) < 0) {
		warn("%s", err.msg);
		return EX_TEMPFAIL;
	}
	for (size_t i = 0; i < n; i++) {
		int r;

		if (entries[i].state == SPOOL_HELD)
			continue;
		tried++;
		r = change_message(sp, entries[i].id, retry, true);
		if (r != EX_OK)
			rc = EX_TEMPFAIL;
	}
	free(entries);
	if (tried == 0)
		puts("nothing to retry");
	return rc;
}

/* Spool IDs are upper-case hex; accept what a person types in lower case. */
static bool
normalise_id(const char *arg, char id[ENVELOPE_ID_MAX + 1])
{
	size_t len = strlen(arg);

	if (len > ENVELOPE_ID_MAX)
		return false;
	for (size_t i = 0; i <= len; i++)
		id[i] = (char)toupper((unsigned char)arg[i]);
	return spool_id_valid(id);
}

/* `queue show ID`, or a change (verb) to ID or, for retry, to "all". */
static int
queue_one(const struct config *cfg, const char *arg, const struct queue_verb *verb)
{
	char id[ENVELOPE_ID_MAX + 1];
	struct spool *sp = NULL;
	bool all = verb != NULL && verb->act == act_retry && strcmp(arg, "all") == 0;
	int rc;

	if (!all && !normalise_id(arg, id)) {
		warn("%s is not a message ID (18 hexadecimal digits, see `mailredir queue`)", arg);
		return EX_DATAERR;
	}
	switch (open_spool(cfg, &sp)) {
	case -1:
		return EX_TEMPFAIL;
	case 1:
		if (all) {
			puts("nothing to retry");
			return EX_OK;
		}
		warn("no message %s", id);
		return EX_DATAERR;
	}
	if (verb == NULL)
		rc = queue_show(sp, id);
	else if (all)
		rc = retry_all(sp, verb);
	else
		rc = change_message(sp, id, verb, false);
	spool_close(sp);
	if (verb != NULL && rc == EX_OK)
		tell_daemon(cfg);
	return output_status(rc);
}

int
queue_cmd_main(const struct config *cfg, int argc, char **argv)
{
	if (argc == 1)
		return queue_list(cfg, false);
	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		return queue_list(cfg, true);
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(queue_usage, stdout);
		return EX_OK;
	}
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_one(cfg, argv[2], NULL);
	for (size_t i = 0; argc == 3 && i < sizeof queue_verbs / sizeof queue_verbs[0]; i++)
		if (strcmp(argv[1], queue_verbs[i].name) == 0)
			return queue_one(cfg, argv[2], &queue_verbs[i]);
	fputs(queue_usage, stderr);
	return EX_USAGE;
}

/* --- flush ----------------------------------------------------------------- */

/* Queued and deferred messages (held and failed ones are not due). */
static int
count_due(struct spool *sp, size_t *due)
{
	struct spool_entry *entries = NULL;
	struct err err = { "" };
	size_t n = 0;

	if (spool_list(sp, &entries, &n, &err) < 0) {
		warn("%s", err.msg);
		return -1;
	}
	*due = 0;
	for (size_t i = 0; i < n; i++)
		if (entries[i].state == SPOOL_QUEUE)
			(*due)++;
	free(entries);
	return 0;
}

/* With a daemon running, ask it (it holds the index and the workers) and
 * wait for its answer. */
static int
flush_through_daemon(const struct config *cfg, int *rc)
{
	char reply[CONTROL_LINE_MAX];
	struct err err = { "" };
	unsigned left;
	int r = control_request(cfg->spool, "flush", reply, sizeof reply, 0, &err);

	if (r == 1)
		return 1;
	if (r < 0 || sscanf(reply, "done %u", &left) != 1) {
		warn("%s", r < 0 ? err.msg : "the running daemon refused the flush");
		*rc = EX_TEMPFAIL;
		return 0;
	}
	if (left == 0)
		puts("queue is empty");
	else
		printf("%u message%s still queued or deferred\n", left, left == 1 ? "" : "s");
	*rc = left == 0 ? EX_OK : EX_TEMPFAIL;
	return 0;
}

/* Flush: through the running daemon, or else here in the foreground with
 * the workers' own code (deliver_run): the maildrop first, then every
 * queued and deferred message, back-off ignored. */
int
queue_cmd_flush(const struct config *cfg, int argc, char **argv)
{
	struct spool *sp = NULL;
	struct err err = { "" };
	struct deliver_stats stats = { .report = NULL };
	const struct route *only = NULL;
	size_t due = 0;
	int imported = 0, rc = EX_OK;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fputs("usage: mailredir flush [ROUTE]\n", stderr);
		return EX_USAGE;
	}
	if (argc == 2 && (only = config_find_route(cfg, argv[1])) == NULL) {
		warn("there is no [route %s] in %s", argv[1], cfg->path);
		return EX_USAGE;
	}
	switch (open_spool(cfg, &sp)) {
	case -1:
		return EX_TEMPFAIL;
	case 1:
		puts("queue is empty");
		return output_status(EX_OK);
	}
	/* One route is flushed here even with a daemon running: the daemon's
	 * workers and this process share the spool's locks. */
	if (cfg->nroutes > 0 && only == NULL && flush_through_daemon(cfg, &rc) == 0) {
		spool_close(sp);
		return output_status(rc);
	}
	if (spool_writable(sp)) {
		imported = spool_import_drops(sp, &err);
		if (imported < 0) {
			warn("%s", err.msg);
			rc = EX_TEMPFAIL;
		} else if (imported > 0) {
			printf("%d message%s imported from the maildrop\n", imported,
			    imported == 1 ? "" : "s");
		}
	}
	if (cfg->nroutes > 0 && spool_writable(sp) &&
	    deliver_run(cfg, sp, NULL, 0, true, only, &stats, NULL, &err) < 0) {
		warn("%s", err.msg);
		rc = EX_TEMPFAIL;
	} else if (stats.messages > 0)
		printf("%u message%s tried: %u recipient%s sent, %u deferred, %u failed\n",
		    stats.messages, stats.messages == 1 ? "" : "s", stats.sent,
		    stats.sent == 1 ? "" : "s", stats.deferred, stats.failed);
	if (count_due(sp, &due) < 0)
		rc = EX_TEMPFAIL;
	else if (due == 0)
		puts("queue is empty");
	else if (cfg->nroutes == 0)
		printf("%zu message%s queued, not sent: no route is configured in %s\n", due,
		    due == 1 ? "" : "s", cfg->path);
	else
		printf("%zu message%s still queued or deferred\n", due, due == 1 ? "" : "s");
	if (due > 0)
		rc = EX_TEMPFAIL;
	spool_close(sp);
	return output_status(rc);
}
