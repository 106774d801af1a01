/* test_spool.c - the durable store: receive, commit, lock, move, save,
 * delete, list, recover, maildrop.  Every test gets its own spool in a
 * fresh temporary directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "journal.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define ID_LEN 18
#define SHOW_ID(s) ((s) ? (s) : "NULL")

struct fixture {
	char tmp[64];
	char dir[128];
	struct spool *sp;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);
	struct err err = { "" };

	strlcopy(f->tmp, "/tmp/test_spool.XXXXXX", sizeof f->tmp);
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s/spool", f->tmp);
	if (spool_open(f->dir, true, &f->sp, &err) < 0) {
		fprintf(stderr, "spool_open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	spool_close(f->sp);
	nftw(f->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* --- helpers ------------------------------------------------------------- */

static char *
path_of(const struct fixture *f, const char *sub, const char *name)
{
	return name ? xasprintf("%s/%s/%s", f->dir, sub, name) : xasprintf("%s/%s", f->dir, sub);
}

static bool
exists(const struct fixture *f, const char *sub, const char *name)
{
	char *p = path_of(f, sub, name);
	struct stat st;
	bool yes = lstat(p, &st) == 0;

	free(p);
	return yes;
}

/* Entries in a subdirectory (with dots = false, those not starting with
 * '.'); the last one's name into last[] if not NULL. */
static size_t
list_files(const struct fixture *f, const char *sub, bool dots, char last[256])
{
	char *p = path_of(f, sub, NULL);
	DIR *d = opendir(p);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		fail_msg("%s: %s", p, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (!dots && de->d_name[0] == '.'))
			continue;
		n++;
		if (last != NULL)
			strlcopy(last, de->d_name, 256);
	}
	closedir(d);
	free(p);
	return n;
}

static size_t
count_files(const struct fixture *f, const char *sub, bool dots)
{
	return list_files(f, sub, dots, NULL);
}

static void
init_env(struct envelope *e, const char *rcpt)
{
	envelope_init(e);
	e->created = 1795489200;
	e->sender = xstrdup("alice@lan.example");
	e->client_addr = xstrdup("127.0.0.1");
	envelope_add_rcpt(e, rcpt);
}

/* Receive and commit one message; returns its ID (caller frees). */
static char *
store(struct fixture *f, const char *content, const char *rcpt)
{
	struct spool_new *sn;
	struct envelope e;
	struct err err = { "" };
	char *id;

	if (spool_new_begin(f->sp, &sn, &err) < 0)
		fail_msg("spool_new_begin: %s", err.msg);
	if (spool_new_write(sn, content, strlen(content), &err) < 0)
		fail_msg("spool_new_write: %s", err.msg);
	init_env(&e, rcpt);
	if (spool_new_finish(sn, &e, &err) < 0 || spool_commit_batch(f->sp, &sn, 1, NULL, &err) < 0)
		fail_msg("finish/commit: %s", err.msg);
	id = xstrdup(spool_new_id(sn));
	spool_new_free(sn);
	envelope_clear(&e);
	return id;
}

static char *
data_of(const struct fixture *f, const char *id, size_t *len)
{
	struct err err = { "" };
	char *p = path_of(f, "data", id), *buf;

	if (read_file(p, SIZE_MAX / 2, &buf, len, &err) < 0)
		fail_msg("%s", err.msg);
	free(p);
	return buf;
}

static void
write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write_all(fd, text, len) < 0 || close(fd) < 0)
		fail_msg("write %s: %s", path, strerror(errno));
}

/* Run fn in a child; its exit status. */
static int
in_child(int (*fn)(struct fixture *, void *), struct fixture *f, void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(fn(f, arg));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		fail_msg("child died");
	return WEXITSTATUS(status);
}

static int
child_claim(struct fixture *f, void *arg)
{
	struct spool_msg *msg;
	struct err err = { "" };
	int r = spool_claim(f->sp, arg, &msg, &err);

	spool_msg_free(msg);
	return r < 0 ? 99 : r;
}

/* --- tests ---------------------------------------------------------------- */

static void
open_makes_the_directories(void **state)
{
	static const struct { const char *sub; mode_t mode; } dirs[] = {
		{ "data", 0700 }, { "incoming", 0700 }, { "queue", 0700 }, { "held", 0700 },
		{ "failed", 0700 }, { "maildrop", 01733 },
	};
	struct fixture *f = *state;
	struct spool *sp2;
	struct err err = { "" };
	struct stat st;

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *p = path_of(f, dirs[i].sub, NULL);

		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			fail_msg("%s: missing", p);
		if ((st.st_mode & 07777) != dirs[i].mode)
			fail_msg("%s: got mode %o, want %o", p, st.st_mode & 07777, dirs[i].mode);
		free(p);
	}
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_true(spool_writable(f->sp));
	assert_string_equal(spool_dir(f->sp), f->dir);
	/* Opening again (create or not) works; a missing spool does not. */
	assert_int_equal(spool_open(f->dir, true, &sp2, &err), 0);
	spool_close(sp2);
	assert_int_equal(spool_open(f->dir, false, &sp2, &err), 0);
	spool_close(sp2);
	assert_int_equal(spool_open("/nonexistent/spool", false, &sp2, &err), -1);
	assert_null(sp2);
	assert_non_null(strstr(err.msg, "/nonexistent/spool"));
}

/* Content written in odd pieces, past the 64 KiB buffer, arrives intact. */
static void
commit_queues_the_message(void **state)
{
	struct fixture *f = *state;
	size_t total = 300 * 1024 + 17, off = 0, len;
	char *content = xmalloc(total), *got;
	struct spool_new *sn;
	struct spool_entry *entries;
	enum spool_state where;
	struct envelope e, back;
	struct err err = { "" };
	size_t n;
	char id[ENVELOPE_ID_MAX + 1];

	for (size_t i = 0; i < total; i++)
		content[i] = (char)('a' + i % 26);
	assert_int_equal(spool_new_begin(f->sp, &sn, &err), 0);
	strlcopy(id, spool_new_id(sn), sizeof id);
	assert_true(spool_id_valid(id));
	for (size_t piece = 1; off < total; piece = piece * 3 + 1) {
		size_t k = piece < total - off ? piece : total - off;

		assert_int_equal(spool_new_write(sn, content + off, k, &err), 0);
		off += k;
	}
	assert_int_equal(spool_new_size(sn), total);
	init_env(&e, "bob@example.net");
	assert_int_equal(spool_new_finish(sn, &e, &err), 0);
	assert_string_equal(e.id, id);
	assert_int_equal(e.size, total);
	/* Finished, not committed: in incoming/, not listed. */
	assert_true(exists(f, "incoming", id));
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 0);
	free(entries);
	if (spool_commit_batch(f->sp, &sn, 1, NULL, &err) < 0)
		fail_msg("commit: %s", err.msg);
	spool_new_free(sn);
	assert_false(exists(f, "incoming", id));
	assert_true(exists(f, "queue", id));
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(entries[0].id, id);
	assert_int_equal(entries[0].state, SPOOL_QUEUE);
	free(entries);
	got = data_of(f, id, &len);
	assert_int_equal(len, total);
	assert_memory_equal(got, content, total);
	if (spool_read(f->sp, id, &where, &back, &err) < 0)
		fail_msg("spool_read: %s", err.msg);
	assert_int_equal(where, SPOOL_QUEUE);
	assert_int_equal(back.size, total);
	assert_string_equal(back.rcpts[0].address, "bob@example.net");
	envelope_clear(&back);
	envelope_clear(&e);
	free(got);
	free(content);
}

/* A batch: one message never finished fails alone, the others commit. */
static void
batch_commits_each_finished_message(void **state)
{
	struct fixture *f = *state;
	struct spool_new *sns[4];
	bool failed[4];
	struct envelope e;
	struct err err = { "" };
	char ids[4][ENVELOPE_ID_MAX + 1];

	for (int i = 0; i < 4; i++) {
		assert_int_equal(spool_new_begin(f->sp, &sns[i], &err), 0);
		strlcopy(ids[i], spool_new_id(sns[i]), sizeof ids[i]);
		assert_int_equal(spool_new_write(sns[i], "x\r\n", 3, &err), 0);
		init_env(&e, "bob@example.net");
		if (i != 2)
			assert_int_equal(spool_new_finish(sns[i], &e, &err), 0);
		envelope_clear(&e);
	}
	assert_int_equal(spool_commit_batch(f->sp, sns, 4, failed, &err), -1);
	for (int i = 0; i < 4; i++) {
		if (failed[i] != (i == 2))
			fail_msg("message %d: got failed=%d, want %d", i, failed[i], i == 2);
		if (failed[i])
			spool_new_abort(sns[i]);
		spool_new_free(sns[i]);
	}
	assert_int_equal(count_files(f, "queue", true), 3);
	assert_false(exists(f, "data", ids[2]));
	assert_int_equal(count_files(f, "data", true), 3);
	assert_int_equal(count_files(f, "incoming", true), 0);
}

static void
abort_and_free_remove_the_files(void **state)
{
	struct fixture *f = *state;
	struct spool_new *sn;
	struct envelope e;
	struct err err = { "" };

	assert_int_equal(spool_new_begin(f->sp, &sn, &err), 0);
	assert_int_equal(spool_new_write(sn, "x", 1, &err), 0);
	init_env(&e, "bob@example.net");
	assert_int_equal(spool_new_finish(sn, &e, &err), 0);
	envelope_clear(&e);
	assert_int_equal(count_files(f, "incoming", true), 1);
	spool_new_abort(sn);
	spool_new_free(sn);
	assert_int_equal(count_files(f, "incoming", true), 0);
	assert_int_equal(count_files(f, "data", true), 0);
	/* Freed without commit or abort: aborted. */
	assert_int_equal(spool_new_begin(f->sp, &sn, &err), 0);
	assert_int_equal(spool_new_write(sn, "x", 1, &err), 0);
	spool_new_free(sn);
	assert_int_equal(count_files(f, "data", true), 0);
	spool_new_free(NULL);
	spool_new_abort(NULL);
}

static void
claim_from_another_process_waits(void **state)
{
	struct fixture *f = *state;
	char *id = store(f, "Subject: x\r\n\r\nhi\r\n", "bob@example.net");
	struct spool_msg *msg;
	struct err err = { "" };
	char buf[64];
	ssize_t n;

	if (spool_claim(f->sp, id, &msg, &err) != 0)
		fail_msg("claim: %s", err.msg);
	assert_int_equal(spool_msg_state(msg), SPOOL_QUEUE);
	assert_string_equal(spool_msg_envelope(msg)->id, id);
	n = pread(spool_msg_content_fd(msg), buf, sizeof buf, 0);
	assert_int_equal(n, 18);
	assert_memory_equal(buf, "Subject: x\r\n\r\nhi\r\n", 18);
	assert_int_equal(in_child(child_claim, f, id), 1);
	spool_msg_free(msg);
	assert_int_equal(in_child(child_claim, f, id), 0);
	free(id);
}

/* While a message is being received, nobody can claim it. */
static void
claim_of_a_message_being_received_waits(void **state)
{
	struct fixture *f = *state;
	struct spool_new *sn;
	struct err err = { "" };

	assert_int_equal(spool_new_begin(f->sp, &sn, &err), 0);
	assert_int_equal(in_child(child_claim, f, (void *)spool_new_id(sn)), 1);
	spool_new_free(sn);
}

static void
move_between_states(void **state)
{
	static const enum spool_state path[] = { SPOOL_HELD, SPOOL_QUEUE, SPOOL_FAILED, SPOOL_FAILED };
	struct fixture *f = *state;
	char *id = store(f, "x\r\n", "bob@example.net");
	struct spool_msg *msg;
	struct spool_entry *entries;
	struct err err = { "" };
	size_t n;

	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
		const char *want = spool_state_name(path[i]);

		if (spool_msg_move(msg, path[i], &err) < 0)
			fail_msg("move to %s: %s", want, err.msg);
		assert_int_equal(spool_msg_state(msg), path[i]);
		for (int s = 0; s < SPOOL_STATE_COUNT; s++) {
			const char *sub = spool_state_name((enum spool_state)s);

			if (exists(f, sub, id) != (s == (int)path[i]))
				fail_msg("after move to %s: %s/%s exists: got %d", want, sub, id,
				    exists(f, sub, id));
		}
	}
	spool_msg_free(msg);
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(entries[0].state, SPOOL_FAILED);
	free(entries);
	/* A claim finds it where it is now. */
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	assert_int_equal(spool_msg_state(msg), SPOOL_FAILED);
	spool_msg_free(msg);
	free(id);
}

static void
save_replaces_the_envelope(void **state)
{
	struct fixture *f = *state;
	char *id = store(f, "x\r\n", "bob@example.net");
	struct spool_msg *msg;
	struct envelope *e, back;
	enum spool_state where;
	struct err err = { "" };

	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	assert_int_equal(spool_msg_move(msg, SPOOL_HELD, &err), 0);
	e = spool_msg_envelope_mut(msg);
	e->attempts = 2;
	e->next_try = 1795490000;
	e->last_reply = xstrdup("451 4.3.0 later");
	e->rcpts[0].status = RCPT_DEFERRED;
	e->rcpts[0].route = xstrdup("isp");
	if (spool_msg_save(msg, &err) < 0)
		fail_msg("save: %s", err.msg);
	spool_msg_free(msg);
	assert_int_equal(count_files(f, "held", true), 1);   /* no .tmp- left */
	if (spool_read(f->sp, id, &where, &back, &err) < 0)
		fail_msg("read: %s", err.msg);
	assert_int_equal(where, SPOOL_HELD);
	assert_int_equal(back.attempts, 2);
	assert_int_equal(back.next_try, 1795490000);
	assert_string_equal(back.last_reply, "451 4.3.0 later");
	assert_int_equal(back.rcpts[0].status, RCPT_DEFERRED);
	assert_string_equal(back.rcpts[0].route, "isp");
	envelope_clear(&back);
	free(id);
}

static void
delete_removes_everything(void **state)
{
	struct fixture *f = *state;
	char *id = store(f, "x\r\n", "bob@example.net");
	struct spool_msg *msg;
	struct envelope e;
	struct err err = { "" };

	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	if (spool_msg_delete(msg, &err) < 0)
		fail_msg("delete: %s", err.msg);
	spool_msg_free(msg);
	assert_false(exists(f, "queue", id));
	assert_false(exists(f, "data", id));
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), -1);
	assert_null(msg);
	assert_non_null(strstr(err.msg, "no message"));
	assert_int_equal(spool_read(f->sp, id, NULL, &e, &err), -1);
	assert_non_null(strstr(err.msg, "no message"));
	free(id);
}

static void
list_sorts_by_id_across_states(void **state)
{
	struct fixture *f = *state;
	char *ids[5];
	struct spool_entry *entries;
	struct spool_msg *msg;
	struct err err = { "" };
	size_t n;
	char *p;

	for (int i = 0; i < 5; i++)
		ids[i] = store(f, "x\r\n", "bob@example.net");
	assert_int_equal(spool_claim(f->sp, ids[0], &msg, &err), 0);
	assert_int_equal(spool_msg_move(msg, SPOOL_FAILED, &err), 0);
	spool_msg_free(msg);
	assert_int_equal(spool_claim(f->sp, ids[3], &msg, &err), 0);
	assert_int_equal(spool_msg_move(msg, SPOOL_HELD, &err), 0);
	spool_msg_free(msg);
	/* Names that are not IDs are no messages. */
	p = path_of(f, "queue", "README");
	write_text(p, "x", 1);
	free(p);
	p = path_of(f, "queue", ".tmp-0196A3F2C4E51A2B3C");
	write_text(p, "x", 1);
	free(p);
	p = path_of(f, "held", "0196a3f2c4e51a2b3c");
	write_text(p, "x", 1);
	free(p);
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		enum spool_state want = i == 0 ? SPOOL_FAILED : i == 3 ? SPOOL_HELD : SPOOL_QUEUE;

		if (strcmp(entries[i].id, ids[i]) != 0 || entries[i].state != want)
			fail_msg("entry %zu: got %s/%s, want %s/%s", i, entries[i].id,
			    spool_state_name(entries[i].state), ids[i], spool_state_name(want));
		if (i > 0 && strcmp(entries[i - 1].id, entries[i].id) >= 0)
			fail_msg("entry %zu: %s not after %s", i, entries[i].id, entries[i - 1].id);
	}
	free(entries);
	for (int i = 0; i < 5; i++)
		free(ids[i]);
}

/* A receiver that dies: after begin (data only) or after finish (data and
 * incoming/ envelope).  The exit releases its lock. */
static int
child_dies_receiving(struct fixture *f, void *arg)
{
	struct spool_new *sn;
	struct envelope e;
	struct err err = { "" };

	if (spool_new_begin(f->sp, &sn, &err) < 0 || spool_new_write(sn, "x\r\n", 3, &err) < 0)
		return 1;
	if (arg != NULL) {
		init_env(&e, "bob@example.net");
		if (spool_new_finish(sn, &e, &err) < 0)
			return 1;
	}
	return 0;   /* no commit, no free */
}

static void
recover_removes_half_received_messages(void **state)
{
	struct fixture *f = *state;
	struct err err = { "" };
	char *p;
	int n;

	assert_int_equal(in_child(child_dies_receiving, f, NULL), 0);
	assert_int_equal(count_files(f, "data", true), 1);
	/* An incoming/ envelope whose content is gone; a leftover update. */
	p = path_of(f, "incoming", "0196A3F2C4E51A2B3C");
	write_text(p, "x", 1);
	free(p);
	p = path_of(f, "queue", ".tmp-0196A3F2C4E51A2B3D");
	write_text(p, "x", 1);
	free(p);
	n = spool_recover(f->sp, &err);
	if (n != 2)
		fail_msg("spool_recover: got %d, want 2 (%s)", n, err.msg);
	assert_int_equal(count_files(f, "incoming", true), 0);
	assert_int_equal(count_files(f, "data", true), 0);
	assert_int_equal(count_files(f, "queue", true), 0);
	/* Nothing left: a second run removes nothing. */
	assert_int_equal(spool_recover(f->sp, &err), 0);
}

/* A receiver that died after finish: its incoming/ envelope is sealed with
 * the content's digest.  How its files are damaged (a crash before the
 * sync reached the disk) decides whether recovery queues it. */
enum damage { INTACT, CONTENT_LONGER, CONTENT_CHANGED, SEAL_CUT_OFF, ENVELOPE_CUT };

static void
recover_queues_a_sealed_message_only_when_it_is_whole(void **state)
{
	static const char *const names[] = {
		"intact", "content longer", "content changed", "seal cut off", "envelope cut",
	};
	struct fixture *f = *state;

	for (int how = INTACT; how <= ENVELOPE_CUT; how++) {
		char id[256], *env_path, *data_path, *text;
		struct err err = { "" };
		size_t len;
		int n;

		assert_int_equal(in_child(child_dies_receiving, f, "finished"), 0);
		assert_int_equal(list_files(f, "incoming", false, id), 1);
		env_path = path_of(f, "incoming", id);
		data_path = path_of(f, "data", id);
		if (read_file(env_path, 1 << 20, &text, &len, &err) < 0)
			fail_msg("%s", err.msg);
		assert_non_null(strstr(text, "\ncontent-sha256 "));
		switch (how) {
		case CONTENT_LONGER:
			write_text(data_path, "x\r\n\r\n", 5);
			break;
		case CONTENT_CHANGED:
			write_text(data_path, "y\r\n", 3);     /* same size */
			break;
		case SEAL_CUT_OFF:
			*strstr(text, "content-sha256 ") = '\0';
			write_text(env_path, text, strlen(text));
			break;
		case ENVELOPE_CUT:
			write_text(env_path, text, len / 2);
			break;
		}
		free(text);
		n = spool_recover(f->sp, &err);
		if (n != (how == INTACT ? 0 : 1))
			fail_msg("%s: spool_recover gave %d (%s)", names[how], n, err.msg);
		assert_int_equal(count_files(f, "incoming", true), 0);
		if (how == INTACT) {
			struct spool_msg *msg;

			assert_true(exists(f, "queue", id));
			assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
			assert_int_equal(spool_msg_envelope(msg)->size, 3);
			assert_int_equal(spool_msg_remove_delivered(f->sp, msg, &err), 0);
			spool_msg_free(msg);
			assert_int_equal(spool_sync_removals(f->sp, &err), 0);
		} else if (exists(f, "queue", id) || exists(f, "data", id)) {
			fail_msg("%s: the message was kept", names[how]);
		}
		assert_int_equal(count_files(f, "data", true), 0);
		free(env_path);
		free(data_path);
	}
}

static ino_t
inode_of(const struct fixture *f, const char *sub, const char *name)
{
	char *p = path_of(f, sub, name);
	struct stat st;

	if (stat(p, &st) < 0)
		fail_msg("%s: %s", p, strerror(errno));
	free(p);
	return st.st_ino;
}

/* A delivered message's files wait in spare/, emptied, and the next
 * message's content and envelope are written into them: no inode is freed
 * and allocated again.  Their old bytes never show through. */
static void
delivered_files_are_reused_for_the_next_message(void **state)
{
	struct fixture *f = *state;
	char *first = store(f, "first message, a longer one\r\n", "bob@example.net"), *second;
	ino_t data_ino = inode_of(f, "data", first), env_ino = inode_of(f, "queue", first);
	struct spool_msg *msg;
	struct err err = { "" };
	size_t len;
	char *got;

	assert_int_equal(spool_claim(f->sp, first, &msg, &err), 0);
	assert_int_equal(spool_msg_remove_delivered(f->sp, msg, &err), 0);
	spool_msg_free(msg);
	assert_false(exists(f, "queue", first));
	assert_int_equal(spool_sync_removals(f->sp, &err), 0);
	assert_false(exists(f, "data", first));
	assert_int_equal(count_files(f, "spare", true), 2);

	sleep(1);       /* spare/ was found empty by the first message: looked at again after a second */
	second = store(f, "2nd\r\n", "carol@example.net");
	assert_int_equal(count_files(f, "spare", true), 0);
	assert_true((inode_of(f, "data", second) == data_ino && inode_of(f, "queue", second) == env_ino) ||
	    (inode_of(f, "data", second) == env_ino && inode_of(f, "queue", second) == data_ino));
	got = data_of(f, second, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(got, "2nd\r\n", 5);
	free(got);
	assert_int_equal(spool_claim(f->sp, second, &msg, &err), 0);
	assert_string_equal(spool_msg_envelope(msg)->rcpts[0].address, "carol@example.net");
	spool_msg_free(msg);
	free(first);
	free(second);
}

static void
spare_files_are_trimmed(void **state)
{
	struct fixture *f = *state;
	struct err err = { "" };
	char *p0;

	for (int i = 0; i < 300; i++) {
		char name[32], *p;

		snprintf(name, sizeof name, "%018d.d", i);
		p = path_of(f, "spare", name);
		write_text(p, "", 0);
		free(p);
	}
	p0 = path_of(f, "spare", ".0196A3F2C4E51A2B3C.e");   /* a removal not yet synced */
	write_text(p0, "", 0);
	spool_trim_spares(f->sp);
	assert_int_equal(count_files(f, "spare", false), 256);
	assert_true(exists(f, "spare", ".0196A3F2C4E51A2B3C.e"));
	/* at start-up no worker runs: what a dead one left pending goes */
	assert_int_equal(spool_recover(f->sp, &err), 0);
	assert_false(exists(f, "spare", ".0196A3F2C4E51A2B3C.e"));
	assert_int_equal(count_files(f, "spare", true), 256);
	free(p0);
}

/* After a crash the incoming/ name of a committed message may come back
 * beside the queue/ one: only that name goes, the message stays. */
static void
recover_keeps_a_message_with_a_stale_incoming_name(void **state)
{
	struct fixture *f = *state;
	char *id = store(f, "precious\r\n", "bob@example.net");
	char *q = path_of(f, "queue", id), *in = path_of(f, "incoming", id), *got;
	struct spool_msg *msg;
	struct err err = { "" };
	size_t len;

	assert_int_equal(link(q, in), 0);
	assert_int_equal(spool_recover(f->sp, &err), 0);
	assert_false(exists(f, "incoming", id));
	assert_true(exists(f, "queue", id));
	got = data_of(f, id, &len);
	assert_int_equal(len, 10);
	assert_memory_equal(got, "precious\r\n", 10);
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	spool_msg_free(msg);
	free(got);
	free(q);
	free(in);
	free(id);
}

/* A live receiver in another process: recovery must leave its files. */
static void
recover_leaves_a_message_being_received(void **state)
{
	struct fixture *f = *state;
	struct err err = { "" };
	int to_child[2], to_parent[2], status;
	char id[ENVELOPE_ID_MAX + 1] = "";
	pid_t pid;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool_new *sn;
		struct envelope e;
		char c;
		int rc = 1;

		alarm(20);   /* never outlive a failed parent */
		init_env(&e, "bob@example.net");
		if (spool_new_begin(f->sp, &sn, &err) == 0 && spool_new_write(sn, "live\r\n", 6, &err) == 0 &&
		    spool_new_finish(sn, &e, &err) == 0 &&
		    write(to_parent[1], spool_new_id(sn), ID_LEN) == ID_LEN &&
		    read(to_child[0], &c, 1) == 1 &&
		    spool_commit_batch(f->sp, &sn, 1, NULL, &err) == 0)
			rc = 0;
		spool_new_free(sn);
		_exit(rc);
	}
	assert_int_equal(read(to_parent[0], id, ID_LEN), ID_LEN);
	assert_int_equal(spool_recover(f->sp, &err), 0);
	assert_true(exists(f, "data", id));
	assert_true(exists(f, "incoming", id));
	assert_int_equal(write(to_child[1], "go", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(exists(f, "queue", id));
	assert_int_equal(spool_recover(f->sp, &err), 0);
	assert_true(exists(f, "data", id));
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

static void
drop_and_import(void **state)
{
	struct fixture *f = *state;
	static const char content[] = "Subject: dropped\r\n\r\nbody\r\n";
	struct spool_entry *entries;
	struct envelope e, back;
	struct err err = { "" };
	struct stat st;
	char *dropped, *got;
	size_t n, len;
	char name[256];

	init_env(&e, "bob@example.net");
	e.origin = ORIGIN_SMTP;
	e.uid = 4242;
	e.helo = xstrdup("forged.example");
	e.rcpts[0].route = xstrdup("vip");
	e.rcpts[0].status = RCPT_SENT;
	if (spool_drop(f->dir, &e, content, sizeof content - 1, &err) < 0)
		fail_msg("spool_drop: %s", err.msg);
	assert_true(spool_id_valid(e.id));
	/* One file, no temporary left, a random name, readable by the
	 * importer whatever the umask. */
	assert_int_equal(list_files(f, "maildrop", true, name), 1);
	assert_int_equal(strlen(name), 32);
	dropped = path_of(f, "maildrop", name);
	assert_int_equal(stat(dropped, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	if (read_file(dropped, 1 << 20, &got, &len, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(strncmp(got, "mailredir-maildrop 1\nversion 1\n", 31) == 0);
	assert_true(len > sizeof content && memcmp(got + len - (sizeof content - 1), content,
	    sizeof content - 1) == 0);
	free(got);

	if (spool_import_drops(f->sp, &err) != 1)
		fail_msg("spool_import_drops: %s", err.msg);
	assert_string_equal(err.msg, "");
	assert_int_equal(count_files(f, "maildrop", true), 0);
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(entries[0].id, e.id);   /* the ID its sender was told */
	assert_int_equal(spool_read(f->sp, entries[0].id, NULL, &back, &err), 0);
	assert_int_equal(back.origin, ORIGIN_SENDMAIL);
	assert_int_equal(back.uid, (long)getuid());
	assert_string_equal(back.client_addr, "local");
	assert_null(back.helo);
	assert_string_equal(back.sender, "alice@lan.example");
	assert_null(back.rcpts[0].route);
	assert_int_equal(back.rcpts[0].status, RCPT_PENDING);
	assert_int_equal(back.size, sizeof content - 1);
	got = data_of(f, entries[0].id, &len);
	assert_int_equal(len, sizeof content - 1);
	assert_memory_equal(got, content, len);
	free(got);
	free(entries);

	/* A drop naming an ID that is taken gets a new one. */
	if (spool_drop(f->dir, &e, content, sizeof content - 1, &err) < 0)
		fail_msg("spool_drop: %s", err.msg);
	if (spool_import_drops(f->sp, &err) != 1)
		fail_msg("spool_import_drops: %s", err.msg);
	assert_int_equal(spool_list(f->sp, &entries, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_not_equal(entries[0].id, entries[1].id);
	free(entries);
	envelope_clear(&back);
	envelope_clear(&e);
	free(dropped);
}

/* Bad drop files go aside, the good one is imported, the count is right. */
static void
import_moves_bad_drops_aside(void **state)
{
	static const struct { const char *name, *text; } bad[] = {
		{ "garbage",   "hello world\n\nnot a drop\n" },
		{ "badenv",    "mailredir-maildrop 1\nversion 2\n\nx" },
		{ "badsize",   "mailredir-maildrop 1\nversion 1\nid 01\ncreated 0\nsender <>\n"
		               "size 99\nrcpt a@b.example\n\nshort" },
		{ "nohead",    "mailredir-maildrop 1\nversion 1\nid 01\n" },
		{ "empty",     "" },
	};
	struct fixture *f = *state;
	struct envelope e;
	struct err err = { "" };
	char *p, *q;
	int n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = path_of(f, "maildrop", bad[i].name);
		write_text(p, bad[i].text, strlen(bad[i].text));
		free(p);
	}
	p = path_of(f, "maildrop", "link");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	free(p);
	p = path_of(f, "maildrop", ".tmp-unfinished");
	write_text(p, "mailredir-maildrop 1\n", 21);
	free(p);
	init_env(&e, "bob@example.net");
	assert_int_equal(spool_drop(f->dir, &e, "ok\r\n", 4, &err), 0);
	envelope_clear(&e);

	n = spool_import_drops(f->sp, &err);
	if (n != 1)
		fail_msg("spool_import_drops: got %d, want 1 (%s)", n, err.msg);
	assert_string_equal(err.msg, "maildrop: 6 malformed files moved aside (.bad-NAME)");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		q = xasprintf(".bad-%s", bad[i].name);
		if (!exists(f, "maildrop", q))
			fail_msg("%s: not moved aside", bad[i].name);
		free(q);
	}
	assert_true(exists(f, "maildrop", ".bad-link"));
	assert_true(exists(f, "maildrop", ".tmp-unfinished"));   /* not finished: left */
	assert_int_equal(count_files(f, "maildrop", false), 0);
	assert_int_equal(count_files(f, "queue", true), 1);
	/* Nothing left to import. */
	assert_int_equal(spool_import_drops(f->sp, &err), 0);
	assert_string_equal(err.msg, "");
}

static void
id_validity(void **state)
{
	static const struct { const char *id; bool want; } cases[] = {
		{ "0196A3F2C4E51A2B3C", true },
		{ "FFFFFFFFFFFFFFFFFF", true },
		{ "0196a3f2c4e51a2b3c", false },
		{ "0196A3F2C4E51A2B3", false },
		{ "0196A3F2C4E51A2B3C0", false },
		{ "0196A3F2C4E51A2B3G", false },
		{ "../x", false },
		{ "../queue/0196A3F2C", false },
		{ "0196A3F2C4E51A2B/C", false },
		{ "0196A3F2C4E51A2B3 ", false },
		{ "", false },
		{ NULL, false },
	};
	struct fixture *f = *state;
	struct spool_msg *msg;
	struct envelope e;
	struct err err = { "" };
	char id1[ENVELOPE_ID_MAX + 1], id2[ENVELOPE_ID_MAX + 1];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (spool_id_valid(cases[i].id) != cases[i].want)
			fail_msg("spool_id_valid(%s): got %d, want %d", SHOW_ID(cases[i].id),
			    !cases[i].want, cases[i].want);
	assert_int_equal(spool_claim(f->sp, "../data/x", &msg, &err), -1);
	assert_non_null(strstr(err.msg, "not a message ID"));
	assert_int_equal(spool_read(f->sp, "../../etc/passwd", NULL, &e, &err), -1);
	spool_make_id(id1);
	spool_make_id(id2);
	assert_true(spool_id_valid(id1));
	assert_true(spool_id_valid(id2));
	assert_true(strncmp(id1, id2, 13) <= 0);   /* time first: sorts by arrival */
	assert_string_equal(spool_state_name(SPOOL_QUEUE), "queue");
	assert_string_equal(spool_state_name(SPOOL_HELD), "held");
	assert_string_equal(spool_state_name(SPOOL_FAILED), "failed");
}

/* A damaged envelope is an error with the file and line, not a crash. */
static void
damaged_envelope_is_reported(void **state)
{
	struct fixture *f = *state;
	char *id = store(f, "x\r\n", "bob@example.net");
	char *p = path_of(f, "queue", id);
	struct spool_msg *msg;
	struct err err = { "" };

	write_text(p, "version 1\nattempts many\n", 24);
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), -1);
	assert_non_null(strstr(err.msg, "line 2: bad attempts value"));
	assert_non_null(strstr(err.msg, p));
	/* The lock was released with the failure. */
	assert_int_equal(in_child(child_claim, f, id), 99);
	free(p);
	free(id);
}

struct batch {
	struct spool *sp;
	struct spool_new *sns[32];
	bool failed[32];
	int rc;
};

static void *
commit_thread(void *arg)
{
	struct batch *b = arg;
	struct err err = { "" };

	b->rc = spool_commit_batch(b->sp, b->sns, 32, b->failed, &err);
	return NULL;
}

static void
new_finished(struct fixture *f, struct spool_new **sn)
{
	struct envelope e;
	struct err err = { "" };

	init_env(&e, "bob@example.net");
	if (spool_new_begin(f->sp, sn, &err) < 0 || spool_new_write(*sn, "x\r\n", 3, &err) < 0 ||
	    spool_new_finish(*sn, &e, &err) < 0)
		fail_msg("%s", err.msg);
	envelope_clear(&e);
}

/* The committer thread commits one batch while the event loop receives the
 * next: both on one struct spool. */
static void
commit_in_a_thread_while_receiving(void **state)
{
	struct fixture *f = *state;
	struct batch b = { .sp = f->sp };
	struct spool_new *more[32];
	pthread_t t;

	for (int i = 0; i < 32; i++)
		new_finished(f, &b.sns[i]);
	assert_int_equal(pthread_create(&t, NULL, commit_thread, &b), 0);
	for (int i = 0; i < 32; i++)
		new_finished(f, &more[i]);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(b.rc, 0);
	assert_int_equal(count_files(f, "queue", true), 32);
	assert_int_equal(count_files(f, "incoming", true), 32);
	for (int i = 0; i < 32; i++) {
		spool_new_free(b.sns[i]);
		b.sns[i] = more[i];
	}
	commit_thread(&b);
	assert_int_equal(b.rc, 0);
	for (int i = 0; i < 32; i++)
		spool_new_free(b.sns[i]);
	assert_int_equal(count_files(f, "queue", true), 64);
	assert_int_equal(count_files(f, "data", true), 64);
}

/* --- the journal ---------------------------------------------------------------- */

/* Receive one message and commit it through the journal (the daemon's
 * way); its ID (caller frees) and, in rec, its record. */
static char *
store_journaled(struct fixture *f, const char *content, struct spool_journaled *rec)
{
	struct spool_new *sn;
	struct envelope e;
	struct err err = { "" };
	char *id;

	if (spool_new_begin(f->sp, &sn, &err) < 0 ||
	    spool_new_write(sn, content, strlen(content), &err) < 0)
		fail_msg("receive: %s", err.msg);
	init_env(&e, "bob@ext.example");
	if (spool_new_finish(sn, &e, &err) < 0)
		fail_msg("finish: %s", err.msg);
	if (spool_journal_commit(f->sp, &sn, 1, rec, &err) != 0)
		fail_msg("spool_journal_commit: %s", err.msg);
	id = xstrdup(spool_new_id(sn));
	spool_new_free(sn);
	envelope_clear(&e);
	return id;
}

/* A cut of power: the system restarts, so the journal's checkpoint was
 * written by another boot (its copies are stamped again), and the spool
 * is opened as the daemon opens it. */
static void
restart_after_power_cut(struct fixture *f, bool power_cut)
{
	struct err err = { "" };
	char *path = path_of(f, "journal", NULL);

	spool_close(f->sp);
	if (power_cut) {
		unsigned char buf[JOURNAL_CHECKPOINT_SIZE];
		struct journal_checkpoint cps[2], *best;
		int fd = open(path, O_RDWR);

		assert_true(fd >= 0);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(pread(fd, buf, sizeof buf, i * 512), (ssize_t)sizeof buf);
			if (journal_checkpoint_decode(buf, sizeof buf, &cps[i]) < 0)
				cps[i].seq = 0;
		}
		best = cps[1].seq > cps[0].seq ? &cps[1] : &cps[0];
		strlcopy(best->boot_id, "another boot", sizeof best->boot_id);
		journal_checkpoint_encode(best, buf);
		assert_int_equal(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
		assert_int_equal(pwrite(fd, buf, sizeof buf, 512), (ssize_t)sizeof buf);
		close(fd);
	}
	free(path);
	if (spool_open(f->dir, true, &f->sp, &err) < 0 || spool_journal_open(f->sp, &err) < 0 ||
	    spool_recover(f->sp, &err) < 0)
		fail_msg("restart: %s", err.msg);
}

static void
open_journal(struct fixture *f)
{
	struct err err = { "" };

	if (spool_journal_open(f->sp, &err) < 0 || spool_recover(f->sp, &err) < 0)
		fail_msg("spool_journal_open: %s", err.msg);
}

static void
journaled_message_is_queued_at_once(void **state)
{
	struct fixture *f = *state;
	struct spool_journaled rec;
	char *id;

	open_journal(f);
	assert_true(exists(f, "journal", NULL));
	id = store_journaled(f, "Subject: j\r\n\r\nbody\r\n", &rec);
	assert_string_equal(rec.id, id);
	assert_true(rec.queued && rec.seq > 0 && rec.end > JOURNAL_DATA_START);
	assert_true(exists(f, "queue", id));
	assert_false(exists(f, "incoming", id));
	assert_false(spool_left_queue(f->sp, id));
	free(id);
}

/* When the journal cannot take a batch, spool_journal_commit says so (1)
 * and touches nothing: the committer then commits the usual way. */
static void
journal_declines_what_it_cannot_take(void **state)
{
	struct fixture *f = *state;
	struct spool_journaled rec;
	struct spool_new *sn;
	struct envelope e;
	struct err err = { "" };
	size_t big = JOURNAL_RECORD_MAX;
	char *content = xmalloc(big);

	memset(content, 'x', big);
	for (int with_journal = 0; with_journal < 2; with_journal++) {
		if (with_journal)
			open_journal(f);
		assert_int_equal(spool_new_begin(f->sp, &sn, &err), 0);
		/* Without a journal any message; with one, one too big for it. */
		assert_int_equal(spool_new_write(sn, content, with_journal ? big : 10, &err), 0);
		init_env(&e, "bob@ext.example");
		assert_int_equal(spool_new_finish(sn, &e, &err), 0);
		assert_int_equal(spool_journal_commit(f->sp, &sn, 1, &rec, &err), 1);
		assert_true(exists(f, "incoming", spool_new_id(sn)));
		assert_false(exists(f, "queue", spool_new_id(sn)));
		assert_int_equal(spool_commit_batch(f->sp, &sn, 1, NULL, &err), 0);
		assert_true(exists(f, "queue", spool_new_id(sn)));
		spool_new_free(sn);
		envelope_clear(&e);
	}
	assert_int_equal(count_files(f, "queue", false), 2);
	free(content);
}

static void
journal_brings_back_what_a_power_cut_lost(void **state)
{
	struct fixture *f = *state;
	const char *content = "Subject: lost\r\n\r\nonly the journal has me\r\n";
	struct spool_journaled rec;
	char *id, *p, *back;
	size_t len;

	open_journal(f);
	id = store_journaled(f, content, &rec);
	/* Its own files never reached the disk: one is gone, the other
	 * holds what an earlier message left in the recycled inode. */
	p = path_of(f, "data", id);
	unlink(p);
	free(p);
	p = path_of(f, "queue", id);
	write_text(p, "version 1\nid 0000000000000000", 30);
	free(p);
	restart_after_power_cut(f, true);
	assert_true(exists(f, "queue", id));
	assert_false(exists(f, "incoming", id));
	back = data_of(f, id, &len);
	assert_int_equal(len, strlen(content));
	assert_memory_equal(back, content, len);
	free(back);
	/* Replayed once: the next start finds nothing more to do. */
	restart_after_power_cut(f, true);
	assert_int_equal(count_files(f, "queue", false), 1);
	free(id);
}

/* A journaled message, delivered: removed as a worker removes it (the
 * removal not synced yet).  Its ID (caller frees). */
static char *
deliver_journaled(struct fixture *f, struct spool_journaled *rec)
{
	struct spool_msg *msg;
	struct err err = { "" };
	char *id;

	open_journal(f);
	id = store_journaled(f, "Subject: sent\r\n\r\nx\r\n", rec);
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	assert_int_equal(spool_msg_remove_delivered(f->sp, msg, &err), 0);
	spool_msg_free(msg);
	return id;
}

static void
retired_records_stay_retired(void **state)
{
	struct fixture *f = *state;
	struct spool_journaled rec;
	struct err err = { "" };
	char *id = deliver_journaled(f, &rec);

	/* Out of queue/, but the removal is not durable yet. */
	assert_false(spool_left_queue(f->sp, id));
	assert_int_equal(spool_sync_removals(f->sp, &err), 0);
	assert_true(spool_left_queue(f->sp, id));
	spool_journal_retire(f->sp, &rec);
	assert_int_equal(spool_journal_sync(f->sp, &err), 0);
	restart_after_power_cut(f, true);
	assert_int_equal(count_files(f, "queue", false), 0);
	free(id);
}

static void
a_process_crash_needs_no_replay(void **state)
{
	struct fixture *f = *state;
	struct spool_journaled rec;
	char *id = deliver_journaled(f, &rec);

	/* The daemon dies before it retires the record; the system stays
	 * up: what the files say is the truth, and the delivered message
	 * does not come back. */
	restart_after_power_cut(f, false);
	assert_int_equal(count_files(f, "queue", false), 0);
	assert_int_equal(count_files(f, "incoming", false), 0);
	free(id);
}

static void
moving_a_journaled_message_makes_its_files_durable(void **state)
{
	struct fixture *f = *state;
	struct spool_journaled rec;
	struct spool_msg *msg;
	struct err err = { "" };
	char *id;

	open_journal(f);
	id = store_journaled(f, "Subject: held\r\n\r\nx\r\n", &rec);
	assert_int_equal(spool_claim(f->sp, id, &msg, &err), 0);
	assert_int_equal(spool_msg_move(msg, SPOOL_HELD, &err), 0);
	spool_msg_free(msg);
	assert_true(spool_left_queue(f->sp, id));
	spool_journal_retire(f->sp, &rec);
	assert_int_equal(spool_journal_sync(f->sp, &err), 0);
	restart_after_power_cut(f, true);
	assert_true(exists(f, "held", id));
	assert_int_equal(count_files(f, "queue", false), 0);
	free(id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(open_makes_the_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(commit_queues_the_message, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_commits_each_finished_message, setup, teardown),
		cmocka_unit_test_setup_teardown(abort_and_free_remove_the_files, setup, teardown),
		cmocka_unit_test_setup_teardown(claim_from_another_process_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(claim_of_a_message_being_received_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(move_between_states, setup, teardown),
		cmocka_unit_test_setup_teardown(save_replaces_the_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_removes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(list_sorts_by_id_across_states, setup, teardown),
		cmocka_unit_test_setup_teardown(recover_removes_half_received_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(delivered_files_are_reused_for_the_next_message, setup, teardown),
		cmocka_unit_test_setup_teardown(spare_files_are_trimmed, setup, teardown),
		cmocka_unit_test_setup_teardown(recover_queues_a_sealed_message_only_when_it_is_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(recover_keeps_a_message_with_a_stale_incoming_name, setup, teardown),
		cmocka_unit_test_setup_teardown(recover_leaves_a_message_being_received, setup, teardown),
		cmocka_unit_test_setup_teardown(drop_and_import, setup, teardown),
		cmocka_unit_test_setup_teardown(import_moves_bad_drops_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(id_validity, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_envelope_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(commit_in_a_thread_while_receiving, setup, teardown),
		cmocka_unit_test_setup_teardown(journaled_message_is_queued_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_declines_what_it_cannot_take, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_brings_back_what_a_power_cut_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(retired_records_stay_retired, setup, teardown),
		cmocka_unit_test_setup_teardown(a_process_crash_needs_no_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(moving_a_journaled_message_makes_its_files_durable,
		    setup, teardown),
	};

	log_open(1, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
