/* spool.c - the durable message store (spool.h; mailredir.8, SPOOL;
 * PRODUCT.md §2, §8).
 *
 * DURABILITY
 *	The daemon commits through the journal (journal.h; "the journal"
 *	below): a message is acknowledged once its record is durable there,
 *	and its own files, written as below but not synced, are its state
 *	from then on; the record stays needed until those are durable or the
 *	message has left queue/ for good.  Everyone else, and the daemon when
 *	the journal cannot take a batch, uses spool_commit_batch:
 *	A message is acknowledged only after spool_commit_batch: its content
 *	(data/ID) and its envelope (incoming/ID), whose last line seals it
 *	with the content's SHA-256, are made durable for the whole batch by
 *	one syncfs(2) and one fdatasync (see sync_batch): two device flushes,
 *	however many messages.  The rename into queue/ that follows is not
 *	synced: after a crash, spool_recover queues every incoming/ envelope
 *	that is sealed and whose content matches the seal, and removes the
 *	rest, which were never acknowledged (a crash mid-commit may leave a
 *	file cut short or, on a file system without ordering guarantees, a
 *	name whose data never reached the disk).  A committed message's
 *	incoming/ name may also come back next to its queue/ one:
 *	spool_recover removes only that stale entry.  Delivered messages:
 *	see spool_msg_remove_delivered and the recycled files below.
 *	Envelope updates go to STATE/.tmp-ID, are synced and renamed over
 *	STATE/ID.
 *
 * LOCKING
 *	Whoever works on a message holds flock(LOCK_EX) on data/ID, which never
 *	moves: the receiver from spool_new_begin to spool_new_free, a worker or
 *	a queue command from spool_claim to spool_msg_free.  Envelopes are only
 *	created, renamed or removed under that lock, so spool_recover, holding
 *	it, sees a message's files stand still.  flock belongs to the open file
 *	description: a child forked while a message is held shares the lock
 *	until it closes the inherited descriptor (O_CLOEXEC only helps exec).
 *
 * THREADS
 *	struct spool holds only what spool_open set (paths, owner): the
 *	committer thread and the event loop use one spool at once, each on its
 *	own spool_new objects.
 *
 * SECURITY
 *	Envelope files are parsed as untrusted input; IDs are checked with
 *	spool_id_valid before any path is built from them.  Maildrop files
 *	are written by any local user: see spool_drop and drop_import_one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "envelope.h"
#include "journal.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define SPOOL_ID_LEN        18
#define SPOOL_BUF_SIZE      (64 * 1024)        /* spool_new_write buffer */
#define SPOOL_ENVELOPE_MAX  (128 * 1024 * 1024) /* a bigger one is refused */
#define SPOOL_DIR_MAX       (PATH_MAX - 300)   /* room for "/maildrop/.bad-NAME" */
#define DROP_MAGIC          "mailredir-maildrop 1\n"
#define DROP_MAX            (1024LL * 1024 * 1024)
#define DROP_NAME_BYTES     16                 /* 128 random bits, 32 hex digits */
#define DROP_TMP_MAX_AGE    (24 * 60 * 60)     /* an unfinished drop older is gone */
#define NEW_TRIES           10
#define SPARE_MAX           256    /* recycled files kept in spare/ */
#define SPARE_STASH         64     /* names one process takes from spare/ at a time */
#define SPOOL_JOURNAL_NAME  "journal"

enum spool_sub {
	SUB_DATA, SUB_INCOMING, SUB_QUEUE, SUB_HELD, SUB_FAILED, SUB_MAILDROP, SUB_SPARE, SUB_COUNT
};

/* Content and envelopes are private to the spool owner (senders, recipients
 * and mail are nobody else's business); `mailredir queue` needs the owner
 * or root.  The maildrop is 1733: anyone may create a file, nobody but the
 * owner may list or remove others' files. */
static const struct spool_subdir {
	const char *name;
	mode_t mode;
} subdirs[SUB_COUNT] = {
	[SUB_DATA]     = { "data",     0700 },
	[SUB_INCOMING] = { "incoming", 0700 },
	[SUB_QUEUE]    = { "queue",    0700 },
	[SUB_HELD]     = { "held",     0700 },
	[SUB_FAILED]   = { "failed",   0700 },
	[SUB_MAILDROP] = { "maildrop", 01733 },
	[SUB_SPARE]    = { "spare",    0700 },
};

struct spool {
	char *dir;
	bool writable;
	bool chown_files;         /* root working in a spool owned by another user */
	uid_t uid;                /* owner of the spool directory */
	gid_t gid;
	/* Delivered messages whose envelope has left queue/ (for spare/) but
	 * not durably yet (spool_msg_remove_delivered; a worker's or flush's
	 * own spool). */
	char (*removed)[ENVELOPE_ID_MAX + 1];
	size_t nremoved, removed_cap;
	uint64_t removed_bytes;   /* their content */
	unsigned removed_subs;    /* 1 << sub of each directory to sync */
	/* Names in spare/ this process may take (see take_spare); the event
	 * loop and the committer thread both receive messages. */
	pthread_mutex_t spare_lock;
	char spares[SPARE_STASH][NAME_MAX + 1];
	size_t nspares;
	time_t spares_none_at;    /* spare/ was found empty then: look again later */
	bool no_recycle;          /* renameat2(RENAME_NOREPLACE) unsupported here */
	struct journal *journal;  /* the daemon's commit log (spool_journal_open) */
};

struct spool_new {
	struct spool *spool;
	char id[ENVELOPE_ID_MAX + 1];
	int fd;                   /* data/ID, locked */
	int env_fd;               /* incoming/ID after finish, else -1 */
	char *buf;                /* SPOOL_BUF_SIZE, allocated on first write */
	size_t buflen;
	size_t size;              /* octets accepted, buffered ones included */
	off_t old_size;           /* of the spare written over (0: a new file) */
	EVP_MD_CTX *sha;          /* SHA-256 of the content: the envelope's seal */
	char *env_text;           /* the sealed envelope, from finish to free */
	size_t env_len;
	bool finished, renamed, committed, aborted;
};

struct spool_msg {
	const struct spool *spool;
	char id[ENVELOPE_ID_MAX + 1];
	int fd;                   /* data/ID, read-only, locked */
	enum spool_state state;
	struct envelope env;
	bool deleted;
};

static enum spool_sub
state_sub(enum spool_state state)
{
	return (enum spool_sub)(SUB_QUEUE + (int)state);
}

/* dir/sub or dir/sub/name; the lengths were checked when the spool was
 * opened and names are IDs or directory entries (<= NAME_MAX). */
static char *
sub_path(char path[PATH_MAX], const char *dir, enum spool_sub sub, const char *name)
{
	if (name == NULL)
		snprintf(path, PATH_MAX, "%s/%s", dir, subdirs[sub].name);
	else
		snprintf(path, PATH_MAX, "%s/%s/%s", dir, subdirs[sub].name, name);
	return path;
}

/* dir/prefixname into path[PATH_MAX]; -1 when it does not fit. */
static int
path_join(char *path, const char *dir, const char *prefix, const char *name)
{
	int n = snprintf(path, PATH_MAX, "%s/%s%s", dir, prefix, name);

	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* Names are for messages and logs: printable ASCII only, at most 64. */
static const char *
printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < size && i < 64; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static int
random_bytes(void *buf, size_t len, struct err *err)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(err, "getrandom");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
spool_make_id(char *buf)
{
	unsigned char r[3];
	struct timespec ts;
	struct err err;
	uint64_t us;

	/* getrandom(2) only fails on kernels older than 3.17. */
	if (random_bytes(r, sizeof r, &err) < 0) {
		log_err("%s", err.msg);
		abort();
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	snprintf(buf, ENVELOPE_ID_MAX + 1, "%013" PRIX64 "%05X", us & UINT64_C(0xFFFFFFFFFFFFF),
	    ((unsigned)r[0] << 16 | (unsigned)r[1] << 8 | r[2]) & 0xFFFFFu);
}

bool
spool_id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; id[i] != '\0'; i++)
		if (i >= SPOOL_ID_LEN || !((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return false;
	return i == SPOOL_ID_LEN;
}

const char *
spool_state_name(enum spool_state state)
{
	static const char *const names[SPOOL_STATE_COUNT] = { "queue", "held", "failed" };

	return (unsigned)state < SPOOL_STATE_COUNT ? names[state] : "unknown";
}

/* --- small file helpers ---------------------------------------------------- */

static void
close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

/* Files made by root in a spool owned by the daemon's user are handed to
 * that user, or the daemon could not read what `mailredir queue` or
 * sendmail run as root wrote. */
static int
fix_owner(const struct spool *sp, int fd, const char *path, struct err *err)
{
	if (sp->chown_files && fchown(fd, sp->uid, sp->gid) < 0)
		return err_sys(err, "%s: chown", path);
	return 0;
}

/* Every name in a directory but "." and "..", in an array the caller frees
 * with free_names.  Read completely before anything is renamed in it. */
static int
list_names(const char *path, char ***namesp, size_t *np, struct err *err)
{
	DIR *d = opendir(path);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (d == NULL)
		return err_sys(err, "%s", path);
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = xgrow(names, &cap, n, sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	if (errno != 0) {
		err_sys(err, "%s: readdir", path);
		closedir(d);
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	closedir(d);
	*namesp = names;
	*np = n;
	return 0;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
lock_wait(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Open data/ID and try to lock it.  0: locked, *fdp set; 1: another process
 * holds it; 2: there is no such file (or it was removed before we got the
 * lock); -1: error. */
static int
lock_data(const struct spool *sp, const char *id, bool wait, int *fdp, struct err *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	sub_path(path, sp->dir, SUB_DATA, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 2;
	if (fd < 0)
		return err_sys(err, "%s", path);
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			close(fd);
			return 1;
		}
		err_sys(err, "%s: flock", path);
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		err_sys(err, "%s: fstat", path);
		close(fd);
		return -1;
	}
	if (st.st_nlink == 0) {
		close(fd);
		return 2;
	}
	*fdp = fd;
	return 0;
}

/* Is there an envelope for id in a state directory (or in incoming/)?
 * An error other than ENOENT counts as "yes": nothing is deleted on doubt. */
static bool
envelope_exists(const struct spool *sp, const char *id, bool incoming)
{
	char path[PATH_MAX];
	struct stat st;

	for (int s = incoming ? SUB_INCOMING : SUB_QUEUE; s <= SUB_FAILED; s++) {
		if (lstat(sub_path(path, sp->dir, (enum spool_sub)s, id), &st) == 0 || errno != ENOENT)
			return true;
	}
	return false;
}

/* --- open / close ------------------------------------------------------------ */

static int
make_dir(const char *path, mode_t mode, const struct spool *owner, struct err *err)
{
	if (mkdir(path, mode) < 0) {
		if (errno == EEXIST)
			return 0;
		return err_sys(err, "mkdir %s", path);
	}
	/* The umask may have taken bits away; the sticky bit needs chmod. */
	if (chmod(path, mode) < 0)
		return err_sys(err, "chmod %s", path);
	if (owner != NULL && owner->chown_files && chown(path, owner->uid, owner->gid) < 0)
		return err_sys(err, "chown %s", path);
	return 0;
}

int
spool_open(const char *dir, bool create, struct spool **out, struct err *err)
{
	struct spool *sp = xcalloc(1, sizeof *sp);
	char path[PATH_MAX];
	struct stat st;

	*out = NULL;
	if (dir[0] == '\0' || strlen(dir) > SPOOL_DIR_MAX) {
		err_set(err, "spool directory \"%.64s...\": empty or too long", dir);
		goto fail;
	}
	if (create && make_dir(dir, 0755, NULL, err) < 0)
		goto fail;
	if (stat(dir, &st) < 0) {
		err_sys(err, "spool %s", dir);
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		err_set(err, "spool %s: not a directory", dir);
		goto fail;
	}
	sp->dir = xstrdup(dir);
	pthread_mutex_init(&sp->spare_lock, NULL);
	sp->uid = st.st_uid;
	sp->gid = st.st_gid;
	sp->chown_files = geteuid() == 0 && st.st_uid != 0;
	sp->writable = true;
	for (int s = 0; s < SUB_COUNT; s++) {
		sub_path(path, dir, (enum spool_sub)s, NULL);
		if (create && make_dir(path, subdirs[s].mode, sp, err) < 0)
			goto fail;
		if (stat(path, &st) < 0) {
			err_sys(err, "spool %s (start mailredir serve once to create it)", path);
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			err_set(err, "spool %s: not a directory", path);
			goto fail;
		}
		if (s != SUB_MAILDROP && faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) < 0)
			sp->writable = false;
	}
	*out = sp;
	return 0;
fail:
	spool_close(sp);
	return -1;
}

void
spool_close(struct spool *sp)
{
	struct err err = { "" };

	if (sp == NULL)
		return;
	if (spool_sync_removals(sp, &err) < 0)
		log_warn("%s", err.msg);
	journal_close(sp->journal);
	if (sp->dir != NULL)
		pthread_mutex_destroy(&sp->spare_lock);
	free(sp->removed);
	free(sp->dir);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

bool
spool_writable(const struct spool *sp)
{
	return sp->writable;
}

/* --- recycled files ------------------------------------------------------------ */

/* A spool creates two files per message and removes them after delivery.
 * Instead of freeing their inodes and allocating new ones, removed files
 * wait in spare/ and new messages take them: on ext4 without a journal,
 * allocating an inode skips every inode freed in the last 30 seconds (it
 * reads each one's deletion time), which at a few hundred messages a
 * second made file creation the costliest system call of the daemon.
 *
 * A spare keeps its old content and blocks: whoever takes it writes over
 * them and cuts off what is left (freeing blocks, with the `discard` mount
 * option, makes the disk work on the way to a 250).  An envelope names its
 * own ID and seals its content, so a stale or half-written file that a
 * crash leaves behind under a new name never passes for a message
 * (spool_recover).  Names in spare/ are anything unique (ID.d, ID.e);
 * renameat2(RENAME_NOREPLACE) never lets a spare replace a file. */

/* The next spare name to try; false when there is none.  Refills the stash
 * from spare/, at most once a second while it is empty. */
static bool
spare_pop(struct spool *sp, char name[NAME_MAX + 1])
{
	bool got = false;
	time_t now = time(NULL);

	pthread_mutex_lock(&sp->spare_lock);
	if (sp->nspares == 0 && !sp->no_recycle && now != sp->spares_none_at) {
		char path[PATH_MAX];
		DIR *d = opendir(sub_path(path, sp->dir, SUB_SPARE, NULL));
		struct dirent *de;

		while (d != NULL && sp->nspares < SPARE_STASH && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				strlcopy(sp->spares[sp->nspares++], de->d_name, NAME_MAX + 1);
		if (d != NULL)
			closedir(d);
		if (sp->nspares == 0)
			sp->spares_none_at = now;
	}
	if (sp->nspares > 0) {
		strlcopy(name, sp->spares[--sp->nspares], NAME_MAX + 1);
		got = true;
	}
	pthread_mutex_unlock(&sp->spare_lock);
	return got;
}

/* Move a spare to sub/id (never over an existing file) and open it for
 * writing over its old content (*old_size octets: cut what the new content
 * does not cover).  0 with *fdp set; 1 when there is none (create the file
 * instead); 2 when sub/id exists; -1 on error. */
static int
take_spare(struct spool *sp, enum spool_sub sub, const char *id, int *fdp, off_t *old_size,
    struct err *err)
{
	char from[PATH_MAX], to[PATH_MAX], name[NAME_MAX + 1];
	struct stat st;

	sub_path(to, sp->dir, sub, id);
	while (spare_pop(sp, name)) {
		sub_path(from, sp->dir, SUB_SPARE, name);
		if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
			if (errno == ENOENT)      /* taken by another process, or trimmed */
				continue;
			if (errno == EEXIST)
				return 2;
			if (errno == EINVAL || errno == ENOSYS) {
				pthread_mutex_lock(&sp->spare_lock);
				sp->no_recycle = true;   /* a file system without it */
				pthread_mutex_unlock(&sp->spare_lock);
				return 1;
			}
			return err_sys(err, "rename %s to %s", from, to);
		}
		if ((*fdp = open(to, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			if (errno == ENOENT)      /* removed at once by spool_recover */
				continue;
			err_sys(err, "%s", to);
			unlink(to);
			return -1;
		}
		if (fstat(*fdp, &st) < 0) {
			err_sys(err, "%s", to);
			close(*fdp);
			unlink(to);
			return -1;
		}
		*old_size = st.st_size;
		return 0;
	}
	return 1;
}

/* Remove path: to spare/NAME (unlinked when spare/ cannot take it).  -1
 * with errno when it is still there.  NAME is ID.TAG, or .ID.TAG for a
 * file not ready to be taken yet (spare_pop skips dot names). */
static int
recycle(struct spool *sp, const char *path, const char *id, char tag, bool ready)
{
	char to[PATH_MAX], name[ENVELOPE_ID_MAX + 4];

	snprintf(name, sizeof name, "%s%s.%c", ready ? "" : ".", id, tag);
	if (!sp->no_recycle && rename(path, sub_path(to, sp->dir, SUB_SPARE, name)) == 0)
		return 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Offer a removed file to new messages. */
static void
recycle_ready(struct spool *sp, const char *path, const char *id, char tag)
{
	if (recycle(sp, path, id, tag, true) < 0)
		log_warn("%s: %s", path, strerror(errno));
}

/* Unlink spares beyond SPARE_MAX, and with `pending` the dot names too: a
 * worker that died between removing a message and its sync leaves its
 * removed envelopes as .ID.e (spool_recover, when no worker runs). */
static void
trim_spares(struct spool *sp, bool pending)
{
	char **names, path[PATH_MAX];
	struct err err = { "" };
	size_t n, kept = 0;

	if (list_names(sub_path(path, sp->dir, SUB_SPARE, NULL), &names, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if ((pending && names[i][0] == '.') || (names[i][0] != '.' && ++kept > SPARE_MAX))
			unlink(sub_path(path, sp->dir, SUB_SPARE, names[i]));
	free_names(names, n);
}

void
spool_trim_spares(struct spool *sp)
{
	trim_spares(sp, false);
}

/* --- receiving ----------------------------------------------------------------- */

static void
hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

/* NULL when OpenSSL cannot (out of memory). */
static EVP_MD_CTX *
sha256_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int
sha256_hex(EVP_MD_CTX *ctx, char out[ENVELOPE_SHA256_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n * 2 != ENVELOPE_SHA256_HEX)
		return -1;
	hex(md, n, out);
	return 0;
}

/* Create data/ID for a new message; `wanted` (may be NULL) is tried first:
 * a maildrop file keeps the ID its sender was told when it is still free. */
static int
new_begin(struct spool *sp, const char *wanted, struct spool_new **out, struct err *err)
{
	char id[ENVELOPE_ID_MAX + 1], path[PATH_MAX];
	struct spool_new *sn;
	struct stat st;
	off_t old_size = 0;
	int fd = -1;

	*out = NULL;
	for (int tries = 0;; tries++) {
		if (tries == NEW_TRIES)
			return err_set(err, "%s/data: could not create a new message file", sp->dir);
		if (tries == 0 && wanted != NULL && spool_id_valid(wanted) &&
		    !envelope_exists(sp, wanted, true))
			strlcopy(id, wanted, sizeof id);
		else
			spool_make_id(id);
		sub_path(path, sp->dir, SUB_DATA, id);
		old_size = 0;
		switch (take_spare(sp, SUB_DATA, id, &fd, &old_size, err)) {
		case 0:
			break;
		case 1:
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd < 0 && errno == EEXIST)
				continue;
			if (fd < 0)
				return err_sys(err, "%s", path);
			break;
		case 2:
			continue;
		default:
			return -1;
		}
		/* Until the lock is ours, spool_recover may take the file for a
		 * leftover and remove it: then try another ID.  Anyone else
		 * holding it (a claim of this ID from a typo) lets go at once. */
		if (lock_wait(fd) < 0 || fstat(fd, &st) < 0) {
			err_sys(err, "%s", path);
			goto fail;
		}
		if (st.st_nlink > 0)
			break;
		close(fd);
	}
	if (fix_owner(sp, fd, path, err) < 0)
		goto fail;
	sn = xcalloc(1, sizeof *sn);
	sn->spool = sp;
	memcpy(sn->id, id, sizeof sn->id);
	sn->fd = fd;
	sn->old_size = old_size;
	sn->env_fd = -1;
	if ((sn->sha = sha256_new()) == NULL) {
		free(sn);
		err_set(err, "%s: OpenSSL cannot compute SHA-256", path);
		goto fail;
	}
	*out = sn;
	return 0;
fail:
	close(fd);
	unlink(path);
	return -1;
}

int
spool_new_begin(struct spool *sp, struct spool_new **out, struct err *err)
{
	return new_begin(sp, NULL, out, err);
}

const char *
spool_new_id(const struct spool_new *sn)
{
	return sn->id;
}

size_t
spool_new_size(const struct spool_new *sn)
{
	return sn->size;
}

static int
new_write_fd(struct spool_new *sn, const void *buf, size_t len, struct err *err)
{
	char path[PATH_MAX];

	if (write_all(sn->fd, buf, len) < 0)
		return err_sys(err, "%s: write", sub_path(path, sn->spool->dir, SUB_DATA, sn->id));
	return 0;
}

static int
new_flush(struct spool_new *sn, struct err *err)
{
	if (sn->buflen == 0)
		return 0;
	if (new_write_fd(sn, sn->buf, sn->buflen, err) < 0)
		return -1;
	sn->buflen = 0;
	return 0;
}

int
spool_new_write(struct spool_new *sn, const void *buf, size_t len, struct err *err)
{
	if (sn->finished)
		return err_set(err, "message %s: write after finish", sn->id);
	if (len == 0)
		return 0;
	if (len > SIZE_MAX - sn->size)
		return err_set(err, "message %s: too large", sn->id);
	if (EVP_DigestUpdate(sn->sha, buf, len) != 1)
		return err_set(err, "message %s: SHA-256 failed", sn->id);
	if (sn->buflen + len > SPOOL_BUF_SIZE) {
		if (new_flush(sn, err) < 0)
			return -1;
		if (len >= SPOOL_BUF_SIZE) {
			if (new_write_fd(sn, buf, len, err) < 0)
				return -1;
			sn->size += len;
			return 0;
		}
	}
	if (sn->buf == NULL)
		sn->buf = xmalloc(SPOOL_BUF_SIZE);
	memcpy(sn->buf + sn->buflen, buf, len);
	sn->buflen += len;
	sn->size += len;
	return 0;
}

/* Fix the owner of path (open as fd) and write text into it; on failure
 * the file is removed. */
static int
write_into(const struct spool *sp, int fd, const char *path, const char *text, size_t len,
    int *fdp, struct err *err)
{
	if (fix_owner(sp, fd, path, err) < 0)
		goto fail;
	if (write_all(fd, text, len) < 0) {
		err_sys(err, "%s: write", path);
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	close_keep_errno(fd);
	unlink(path);
	return -1;
}

/* Create path (0600, owner fixed; flags O_EXCL or O_TRUNC) and write text
 * into it. */
static int
write_new_file(const struct spool *sp, const char *path, const char *text, size_t len,
    int flags, int *fdp, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | flags, 0600);

	if (fd < 0)
		return err_sys(err, "%s", path);
	return write_into(sp, fd, path, text, len, fdp, err);
}

/* incoming/ID for a new message: a spare, or a new file. */
static int
write_incoming(struct spool *sp, const char *id, const char *text, size_t len, int *fdp,
    struct err *err)
{
	char path[PATH_MAX];
	off_t old_size = 0;
	int fd;

	sub_path(path, sp->dir, SUB_INCOMING, id);
	switch (take_spare(sp, SUB_INCOMING, id, &fd, &old_size, err)) {
	case 0:
		if (write_into(sp, fd, path, text, len, fdp, err) < 0)
			return -1;
		if (old_size > (off_t)len && ftruncate(*fdp, (off_t)len) < 0) {
			err_sys(err, "%s: ftruncate", path);
			close(*fdp);
			unlink(path);
			return -1;
		}
		return 0;
	case 1:
		return write_new_file(sp, path, text, len, O_EXCL, fdp, err);
	case 2:
		errno = EEXIST;
		return err_sys(err, "%s", path);
	default:
		return -1;
	}
}

int
spool_new_finish(struct spool_new *sn, struct envelope *env, struct err *err)
{
	char *text = NULL;
	size_t len;

	if (sn->finished)
		return err_set(err, "message %s: finished twice", sn->id);
	if (new_flush(sn, err) < 0)
		return -1;
	if (sn->old_size > (off_t)sn->size && ftruncate(sn->fd, (off_t)sn->size) < 0)
		return err_sys(err, "message %s: ftruncate", sn->id);
	strlcopy(env->id, sn->id, sizeof env->id);
	env->size = sn->size;
	if (sha256_hex(sn->sha, env->content_sha256) < 0)
		return err_set(err, "message %s: SHA-256 failed", sn->id);
	text = envelope_format(env, &len);
	if (len > SPOOL_ENVELOPE_MAX) {
		err_set(err, "message %s: envelope larger than %d octets", sn->id, SPOOL_ENVELOPE_MAX);
		goto fail;
	}
	if (write_incoming(sn->spool, sn->id, text, len, &sn->env_fd, err) < 0)
		goto fail;
	sn->finished = true;
	sn->env_text = text;
	sn->env_len = len;
	return 0;
fail:
	free(text);
	return -1;
}

static int
new_check(struct spool_new *sn, struct err *err)
{
	if (!sn->finished || sn->committed || sn->aborted)
		return err_set(err, "message %s: commit %s", sn->id, !sn->finished ? "before finish" :
		    sn->committed ? "twice" : "after abort");
	return 0;
}

/* Without syncfs (an old kernel, a seccomp filter): each file, then data/. */
static int
new_sync_files(struct spool_new *sn, struct err *err)
{
	char path[PATH_MAX];

	if (fdatasync(sn->fd) < 0)
		return err_sys(err, "%s: fdatasync", sub_path(path, sn->spool->dir, SUB_DATA, sn->id));
	if (fdatasync(sn->env_fd) < 0)
		return err_sys(err, "%s: fdatasync", sub_path(path, sn->spool->dir, SUB_INCOMING, sn->id));
	return 0;
}

static int
new_rename(struct spool_new *sn, struct err *err)
{
	char from[PATH_MAX], to[PATH_MAX];

	sub_path(from, sn->spool->dir, SUB_INCOMING, sn->id);
	sub_path(to, sn->spool->dir, SUB_QUEUE, sn->id);
	if (rename(from, to) < 0)
		return err_sys(err, "rename %s to %s", from, to);
	sn->renamed = true;
	return 0;
}

/* Mark every message not failed yet as failed (a directory sync failed). */
static void
fail_rest(size_t n, bool *failed)
{
	for (size_t i = 0; i < n; i++)
		failed[i] = true;
}

/* The commit: the content and sealed envelope of every message in the
 * batch, and their names in data/ and incoming/, on stable storage.  One
 * syncfs(2) writes it all for the whole batch, where an fdatasync per file
 * and a sync per directory would cost a device flush each on a file system
 * without a journal (and a journal commit each with one).  Then one
 * fdatasync: on ext4 without a journal, syncfs flushes the device's cache
 * before it writes the last inode-table blocks (block traces show them
 * after the flush), so a second flush is what makes those durable; on
 * other file systems it costs little, the file being clean.  Since Linux
 * 5.8 syncfs reports write-back errors of the file system. */
static int
sync_batch(struct spool *sp, struct spool_new **sns, size_t n, bool *f, struct err *err)
{
	char path[PATH_MAX];
	size_t first = n;

	for (size_t i = 0; i < n; i++)
		if (!f[i] && first == n)
			first = i;
	if (first == n)
		return 0;
	if (syncfs(sns[first]->fd) == 0) {
		if (fdatasync(sns[first]->fd) < 0)
			return err_sys(err, "%s: fdatasync", sp->dir);
		return 0;
	}
	if (errno != ENOSYS && errno != EPERM)
		return err_sys(err, "%s: syncfs", sp->dir);
	for (size_t i = 0; i < n; i++)
		if (!f[i] && new_sync_files(sns[i], err) < 0)
			f[i] = true;
	if (fsync_dir(sub_path(path, sp->dir, SUB_DATA, NULL), err) < 0)
		return -1;
	return fsync_dir(sub_path(path, sp->dir, SUB_INCOMING, NULL), err);
}

int
spool_commit_batch(struct spool *sp, struct spool_new **sns, size_t n, bool *failed,
    struct err *err)
{
	bool *f = failed != NULL ? failed : xcalloc(n ? n : 1, sizeof *f);
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		f[i] = new_check(sns[i], err) < 0;
	if (sync_batch(sp, sns, n, f, err) < 0)
		fail_rest(n, f);
	/* Committed: a sealed envelope in incoming/ survives a crash and
	 * spool_recover queues it.  The rename is for everyone else (workers
	 * and queue commands look in queue/) and needs no sync of its own: it
	 * becomes durable with the next sync of the file system. */
	for (size_t i = 0; i < n; i++) {
		if (!f[i] && new_rename(sns[i], err) < 0)
			f[i] = true;
		if (f[i])
			rc = -1;
		sns[i]->committed = sns[i]->committed || !f[i];
	}
	if (failed == NULL)
		free(f);
	return rc;
}

/* --- the journal: the daemon's commit ------------------------------------------ */

/* Everything written to the spool's file system, on stable storage: syncfs
 * and, for the inode blocks ext4 without a journal writes after its flush
 * (see sync_batch), a second flush. */
int
spool_sync_all(struct spool *sp, struct err *err)
{
	int fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "spool %s", sp->dir);
	if (syncfs(fd) < 0) {
		if (errno != ENOSYS && errno != EPERM) {
			err_sys(err, "%s: syncfs", sp->dir);
			close(fd);
			return -1;
		}
		sync();
	}
	if (fsync(fd) < 0) {
		err_sys(err, "%s: fsync", sp->dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Does the content have the size and digest the envelope's seal names? */
static bool
content_matches(const struct envelope *env, const unsigned char *content, size_t len)
{
	char sum[ENVELOPE_SHA256_HEX + 1];
	EVP_MD_CTX *sha;
	bool ok;

	if (env->content_sha256[0] == '\0' || env->size != len || (sha = sha256_new()) == NULL)
		return false;
	ok = EVP_DigestUpdate(sha, content, len) == 1 && sha256_hex(sha, sum) == 0 &&
	    strcmp(sum, env->content_sha256) == 0;
	EVP_MD_CTX_free(sha);
	return ok;
}

static bool envelope_sealed(const struct spool *, enum spool_sub, const char *id, int data_fd);

/* Is message id in a state directory with its envelope and content on
 * disk intact?  Then the journal's record is not needed.  A copy that is
 * not (a crash before its files reached the disk) is removed. */
static bool
stored_intact(struct spool *sp, const char *id)
{
	static const enum spool_sub states[] = { SUB_QUEUE, SUB_HELD, SUB_FAILED };
	char path[PATH_MAX];
	int fd = open(sub_path(path, sp->dir, SUB_DATA, id), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool intact = false;

	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		if (fd >= 0 && envelope_sealed(sp, states[i], id, fd))
			intact = true;
		else
			unlink(sub_path(path, sp->dir, states[i], id));
	}
	if (fd >= 0)
		close(fd);
	return intact;
}

/* A record after the journal's checkpoint: a message acknowledged whose own
 * files may not have reached the disk.  Unless its envelope is in a state
 * directory already, write its content and sealed envelope to data/ and
 * incoming/ again, where spool_recover finds and queues it.  1 (the end of
 * the journal) when it does not check out. */
static int
replay_record(void *arg, uint64_t seq, const char *text, size_t text_len,
    const unsigned char *content, size_t content_len, struct err *err)
{
	struct spool *sp = arg;
	struct envelope env;
	struct err perr = { "" };
	char path[PATH_MAX];
	int fd, rc = 1;

	(void)seq;
	if (envelope_parse(text, text_len, &env, &perr) < 0)
		return 1;
	if (!spool_id_valid(env.id) || !content_matches(&env, content, content_len))
		goto out;
	rc = 0;
	if (stored_intact(sp, env.id))
		goto out;
	rc = -1;
	if (write_new_file(sp, sub_path(path, sp->dir, SUB_DATA, env.id), (const char *)content,
	    content_len, O_TRUNC, &fd, err) < 0)
		goto out;
	close(fd);
	if (write_new_file(sp, sub_path(path, sp->dir, SUB_INCOMING, env.id), text, text_len,
	    O_TRUNC, &fd, err) < 0)
		goto out;
	close(fd);
	log_info("%s: acknowledged before the restart: restored from the journal", env.id);
	rc = 0;
out:
	envelope_clear(&env);
	return rc;
}

int
spool_journal_open(struct spool *sp, struct err *err)
{
	char path[PATH_MAX];

	struct stat st;
	bool existed;

	if (sp->journal != NULL)
		return 0;
	snprintf(path, sizeof path, "%s/%s", sp->dir, SPOOL_JOURNAL_NAME);
	existed = lstat(path, &st) == 0;
	if (journal_open(path, true, &sp->journal, err) < 0) {
		if (existed)
			return -1;       /* it may hold acknowledged mail: stop */
		log_warn("%s; committing without a journal (two flushes per commit)", err->msg);
		return 0;
	}
	/* Only a crash of the whole system can have lost files the last
	 * process wrote (see journal_same_boot). */
	if (!journal_same_boot(sp->journal) &&
	    journal_replay(sp->journal, replay_record, sp, err) < 0) {
		journal_close(sp->journal);
		sp->journal = NULL;
		return -1;
	}
	return 0;
}

unsigned long long
spool_journal_used(struct spool *sp)
{
	return sp->journal != NULL ? journal_used(sp->journal) : 0;
}

int
spool_journal_commit(struct spool *sp, struct spool_new **sns, size_t n,
    struct spool_journaled *out, struct err *err)
{
	struct journal_entry *e;
	int r;

	if (sp->journal == NULL || n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (new_check(sns[i], err) < 0 || !journal_fits(sns[i]->env_len, sns[i]->size))
			return 1;
	e = xcalloc(n, sizeof *e);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct journal_entry){ .envelope = sns[i]->env_text,
		    .envelope_len = sns[i]->env_len, .content_fd = sns[i]->fd,
		    .content_len = sns[i]->size };
	r = journal_append(sp->journal, e, n, err);
	/* Committed: the rename into queue/ is for everyone else, as in
	 * spool_commit_batch; the journal keeps the message until its own
	 * files are durable or it has left the queue for good. */
	for (size_t i = 0; i < n && r == 0; i++) {
		struct err rename_err;

		sns[i]->committed = true;
		out[i] = (struct spool_journaled){ .seq = e[i].seq, .end = e[i].end };
		strlcopy(out[i].id, sns[i]->id, sizeof out[i].id);
		if (new_rename(sns[i], &rename_err) < 0)
			log_err("%s (it is queued after the next start)", rename_err.msg);
		out[i].queued = sns[i]->renamed;
	}
	free(e);
	return r;
}

bool
spool_left_queue(struct spool *sp, const char *id)
{
	char path[PATH_MAX], name[ENVELOPE_ID_MAX + 4];
	struct stat st;

	/* A delivered message's envelope goes to spare/.ID.e, and from there
	 * to spare/ID.e once its removal is durable (spool_sync_removals). */
	snprintf(name, sizeof name, ".%s.e", id);
	return lstat(sub_path(path, sp->dir, SUB_QUEUE, id), &st) < 0 && errno == ENOENT &&
	    lstat(sub_path(path, sp->dir, SUB_SPARE, name), &st) < 0 && errno == ENOENT;
}

void
spool_journal_retire(struct spool *sp, const struct spool_journaled *upto)
{
	journal_stage_checkpoint(sp->journal, upto->seq, upto->end);
}

int
spool_journal_sync(struct spool *sp, struct err *err)
{
	return sp->journal != NULL ? journal_sync_checkpoint(sp->journal, err) : 0;
}

void
spool_new_abort(struct spool_new *sn)
{
	char path[PATH_MAX];

	if (sn == NULL || sn->committed || sn->aborted)
		return;
	if (sn->renamed)
		unlink(sub_path(path, sn->spool->dir, SUB_QUEUE, sn->id));
	if (sn->finished)
		unlink(sub_path(path, sn->spool->dir, SUB_INCOMING, sn->id));
	unlink(sub_path(path, sn->spool->dir, SUB_DATA, sn->id));
	sn->aborted = true;
}

void
spool_new_free(struct spool_new *sn)
{
	if (sn == NULL)
		return;
	spool_new_abort(sn);
	if (sn->env_fd >= 0)
		close(sn->env_fd);
	close(sn->fd);
	EVP_MD_CTX_free(sn->sha);
	free(sn->env_text);
	free(sn->buf);
	free(sn);
}

/* --- recovery ---------------------------------------------------------------- */

/* Was incoming/ID committed?  Then its envelope parses, ends with its seal
 * (content-sha256, the last line: a file cut short has none) and the
 * content, read through the locked descriptor, has that size and digest.
 * Anything less was never acknowledged. */
static bool
content_fd_sealed(const struct envelope *env, int data_fd)
{
	char sum[ENVELOPE_SHA256_HEX + 1];
	unsigned char buf[64 * 1024];
	EVP_MD_CTX *sha = NULL;
	struct stat st;
	bool ok = false;
	ssize_t n;
	off_t off = 0;

	if (env->content_sha256[0] == '\0' || fstat(data_fd, &st) < 0 ||
	    (uint64_t)st.st_size != env->size || (sha = sha256_new()) == NULL)
		return false;
	while ((n = pread(data_fd, buf, sizeof buf, off)) > 0) {
		if (EVP_DigestUpdate(sha, buf, (size_t)n) != 1)
			goto out;
		off += n;
	}
	ok = n == 0 && sha256_hex(sha, sum) == 0 && strcmp(sum, env->content_sha256) == 0;
out:
	EVP_MD_CTX_free(sha);
	return ok;
}

/* Does sub/ID hold an envelope for ID, sealed, whose content (read
 * through data_fd) matches the seal? */
static bool
envelope_sealed(const struct spool *sp, enum spool_sub sub, const char *id, int data_fd)
{
	char path[PATH_MAX], *text = NULL;
	struct envelope env;
	struct err err = { "" };
	size_t len;
	bool ok;

	sub_path(path, sp->dir, sub, id);
	if (read_file(path, SPOOL_ENVELOPE_MAX, &text, &len, &err) < 0)
		return false;
	if (envelope_parse(text, len, &env, &err) < 0) {
		free(text);
		return false;
	}
	free(text);
	ok = strcmp(env.id, id) == 0 && content_fd_sealed(&env, data_fd);
	envelope_clear(&env);
	return ok;
}

static bool
incoming_sealed(const struct spool *sp, const char *id, int data_fd)
{
	return envelope_sealed(sp, SUB_INCOMING, id, data_fd);
}

/* An incoming/ID after a crash: a committed message whose rename into
 * queue/ was not yet durable (queue it), one whose commit never finished
 * (remove it, unless its envelope also made it into a state directory:
 * then only the stale incoming/ name), or one being received by a live
 * process (leave it). */
static int
recover_incoming(struct spool *sp, const char *id, int *removed, int *requeued,
    struct err *err)
{
	char path[PATH_MAX], to[PATH_MAX];
	int fd = -1, r;
	bool stale;

	r = lock_data(sp, id, false, &fd, err);
	if (r < 0 || r == 1)
		return r < 0 ? -1 : 0;
	stale = envelope_exists(sp, id, false);
	sub_path(path, sp->dir, SUB_INCOMING, id);
	if (!stale && r == 0 && incoming_sealed(sp, id, fd)) {
		if (rename(path, sub_path(to, sp->dir, SUB_QUEUE, id)) < 0) {
			err_sys(err, "rename %s to %s", path, to);
			close_keep_errno(fd);
			return -1;
		}
		(*requeued)++;
		log_info("%s: committed before the restart: queued", id);
		close(fd);
		return 0;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		err_sys(err, "%s", path);
		close_keep_errno(fd);
		return -1;
	}
	if (!stale) {
		if (r == 0)
			unlink(sub_path(path, sp->dir, SUB_DATA, id));
		(*removed)++;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* A data/ID with no envelope anywhere, that nobody holds: a message that
 * was being received when its receiver died. */
static int
recover_data(struct spool *sp, const char *id, int *removed, struct err *err)
{
	char path[PATH_MAX];
	int fd = -1, r;

	r = lock_data(sp, id, false, &fd, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (!envelope_exists(sp, id, true)) {
		unlink(sub_path(path, sp->dir, SUB_DATA, id));
		(*removed)++;
	}
	close(fd);
	return 0;
}

/* STATE/.tmp-ID: an envelope update cut short.  It is written under the
 * message's lock, so it is only removed when the lock can be taken (or the
 * message is gone). */
static int
recover_tmp(struct spool *sp, enum spool_sub sub, const char *name, struct err *err)
{
	char path[PATH_MAX];
	int fd = -1, r;

	if (strncmp(name, ".tmp-", 5) != 0 || !spool_id_valid(name + 5))
		return 0;
	r = lock_data(sp, name + 5, false, &fd, err);
	if (r < 0 || r == 1)
		return r < 0 ? -1 : 0;
	unlink(sub_path(path, sp->dir, sub, name));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* maildrop/.tmp-*: a sendmail that died while dropping.  No lock protects
 * these (the dropping user writes them), so only old ones go. */
static void
recover_drop_tmp(struct spool *sp, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (strncmp(name, ".tmp-", 5) != 0)
		return;
	sub_path(path, sp->dir, SUB_MAILDROP, name);
	if (lstat(path, &st) == 0 && st.st_mtime < time(NULL) - DROP_TMP_MAX_AGE)
		unlink(path);
}

static int
recover_dir(struct spool *sp, enum spool_sub sub, int *removed, int *requeued,
    struct err *err)
{
	char **names, path[PATH_MAX];
	size_t n;
	int rc = 0;

	if (list_names(sub_path(path, sp->dir, sub, NULL), &names, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (sub == SUB_MAILDROP)
			recover_drop_tmp(sp, names[i]);
		else if (names[i][0] == '.')
			rc = recover_tmp(sp, sub, names[i], err);
		else if (!spool_id_valid(names[i]))
			continue;
		else if (sub == SUB_INCOMING)
			rc = recover_incoming(sp, names[i], removed, requeued, err);
		else if (sub == SUB_DATA)
			rc = recover_data(sp, names[i], removed, err);
	}
	free_names(names, n);
	return rc;
}

int
spool_recover(struct spool *sp, struct err *err)
{
	static const enum spool_sub order[] = {
		SUB_INCOMING, SUB_DATA, SUB_QUEUE, SUB_HELD, SUB_FAILED, SUB_MAILDROP,
	};
	char path[PATH_MAX];
	int removed = 0, requeued = 0;

	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		if (recover_dir(sp, order[i], &removed, &requeued, err) < 0)
			return -1;
	if (requeued > 0 && fsync_dir(sub_path(path, sp->dir, SUB_QUEUE, NULL), err) < 0)
		return -1;
	/* What the journal gave back is in queue/ now: make that durable
	 * before the checkpoint retires its records. */
	if (sp->journal != NULL &&
	    (spool_sync_all(sp, err) < 0 || journal_checkpoint_replayed(sp->journal, err) < 0))
		return -1;
	trim_spares(sp, true);
	return removed;
}

/* --- stored messages ------------------------------------------------------------ */

static int
entry_cmp(const void *a, const void *b)
{
	const struct spool_entry *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : (int)x->state - (int)y->state;
}

int
spool_list(struct spool *sp, struct spool_entry **entriesp, size_t *np, struct err *err)
{
	struct spool_entry *entries = NULL;
	size_t n = 0, cap = 0;
	char path[PATH_MAX];

	for (int s = 0; s < SPOOL_STATE_COUNT; s++) {
		char **names;
		size_t nnames;

		if (list_names(sub_path(path, sp->dir, state_sub((enum spool_state)s), NULL),
		    &names, &nnames, err) < 0) {
			free(entries);
			return -1;
		}
		for (size_t i = 0; i < nnames; i++) {
			if (!spool_id_valid(names[i]))
				continue;
			entries = xgrow(entries, &cap, n, sizeof *entries);
			strlcopy(entries[n].id, names[i], sizeof entries[n].id);
			entries[n++].state = (enum spool_state)s;
		}
		free_names(names, nnames);
	}
	if (n > 1)
		qsort(entries, n, sizeof *entries, entry_cmp);
	*entriesp = entries;
	*np = n;
	return 0;
}

/* Find and parse id's envelope in the state directories. */
static int
load_envelope(const struct spool *sp, const char *id, enum spool_state *statep,
    struct envelope *env, struct err *err)
{
	char path[PATH_MAX], *text;
	struct err perr;
	size_t len;

	for (int s = 0; s < SPOOL_STATE_COUNT; s++) {
		sub_path(path, sp->dir, state_sub((enum spool_state)s), id);
		errno = 0;
		if (read_file(path, SPOOL_ENVELOPE_MAX, &text, &len, err) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (envelope_parse(text, len, env, &perr) < 0) {
			free(text);
			return err_set(err, "%s: %s", path, perr.msg);
		}
		free(text);
		if (strcmp(env->id, id) != 0) {
			envelope_clear(env);
			return err_set(err, "%s: the envelope is for message %s", path, env->id);
		}
		*statep = (enum spool_state)s;
		return 0;
	}
	return err_set(err, "no message %s", id);
}

static int
bad_id(const char *id, struct err *err)
{
	char shown[72];

	return err_set(err, "no message %s (not a message ID)", printable(id, shown, sizeof shown));
}

int
spool_read(struct spool *sp, const char *id, enum spool_state *state, struct envelope *env,
    struct err *err)
{
	enum spool_state s;

	envelope_init(env);
	if (!spool_id_valid(id))
		return bad_id(id, err);
	if (load_envelope(sp, id, &s, env, err) < 0)
		return -1;
	if (state != NULL)
		*state = s;
	return 0;
}

int
spool_claim(struct spool *sp, const char *id, struct spool_msg **out, struct err *err)
{
	struct spool_msg *msg = NULL;
	int fd = -1, r;

	*out = NULL;
	if (!spool_id_valid(id))
		return bad_id(id, err);
	r = lock_data(sp, id, false, &fd, err);
	if (r == 2)
		return err_set(err, "no message %s", id);
	if (r != 0)
		return r;
	msg = xcalloc(1, sizeof *msg);
	msg->spool = sp;
	strlcopy(msg->id, id, sizeof msg->id);
	msg->fd = fd;
	/* Read after locking: what an earlier holder saved is what counts. */
	if (load_envelope(sp, id, &msg->state, &msg->env, err) < 0)
		goto fail;
	*out = msg;
	return 0;
fail:
	spool_msg_free(msg);
	return -1;
}

const struct envelope *
spool_msg_envelope(const struct spool_msg *msg)
{
	return &msg->env;
}

struct envelope *
spool_msg_envelope_mut(struct spool_msg *msg)
{
	return &msg->env;
}

enum spool_state
spool_msg_state(const struct spool_msg *msg)
{
	return msg->state;
}

int
spool_msg_content_fd(const struct spool_msg *msg)
{
	return msg->fd;
}

int
spool_msg_save(struct spool_msg *msg, struct err *err)
{
	char tmp[PATH_MAX], final[PATH_MAX], name[ENVELOPE_ID_MAX + 6];
	enum spool_sub sub = state_sub(msg->state);
	char *text;
	size_t len;
	int fd = -1;

	if (msg->deleted)
		return err_set(err, "message %s: saved after delete", msg->id);
	strlcopy(msg->env.id, msg->id, sizeof msg->env.id);
	text = envelope_format(&msg->env, &len);
	if (len > SPOOL_ENVELOPE_MAX) {
		err_set(err, "message %s: envelope larger than %d octets", msg->id, SPOOL_ENVELOPE_MAX);
		goto fail;
	}
	snprintf(name, sizeof name, ".tmp-%s", msg->id);
	sub_path(tmp, msg->spool->dir, sub, name);
	sub_path(final, msg->spool->dir, sub, msg->id);
	if (write_new_file(msg->spool, tmp, text, len, O_TRUNC, &fd, err) < 0)
		goto fail;
	if (fdatasync(fd) < 0) {
		err_sys(err, "%s: fdatasync", tmp);
		goto fail_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_sys(err, "%s: close", tmp);
		goto fail_unlink;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		err_sys(err, "rename %s to %s", tmp, final);
		goto fail_unlink;
	}
	free(text);
	return fsync_dir(sub_path(tmp, msg->spool->dir, sub, NULL), err);
fail_unlink:
	unlink(tmp);
fail:
	close_keep_errno(fd);
	free(text);
	return -1;
}

/* The content, the envelope at env_path and the content's name, durable. */
static int
sync_message_files(struct spool_msg *msg, const char *env_path, struct err *err)
{
	char path[PATH_MAX];
	int fd;

	if (fdatasync(msg->fd) < 0)
		return err_sys(err, "%s: fdatasync", sub_path(path, msg->spool->dir, SUB_DATA, msg->id));
	if ((fd = open(env_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return err_sys(err, "%s", env_path);
	if (fdatasync(fd) < 0) {
		err_sys(err, "%s: fdatasync", env_path);
		close(fd);
		return -1;
	}
	close(fd);
	return fsync_dir(sub_path(path, msg->spool->dir, SUB_DATA, NULL), err);
}

int
spool_msg_move(struct spool_msg *msg, enum spool_state to, struct err *err)
{
	char from[PATH_MAX], dest[PATH_MAX];
	enum spool_sub fsub = state_sub(msg->state), tsub = state_sub(to);

	if (msg->deleted)
		return err_set(err, "message %s: moved after delete", msg->id);
	if ((unsigned)to >= SPOOL_STATE_COUNT)
		return err_set(err, "message %s: no such state", msg->id);
	if (to == msg->state)
		return 0;
	sub_path(from, msg->spool->dir, fsub, msg->id);
	sub_path(dest, msg->spool->dir, tsub, msg->id);
	/* Leaving queue/ may retire the message's journal record (see
	 * spool_left_queue): its own files go to disk first. */
	if (sync_message_files(msg, from, err) < 0)
		return -1;
	if (rename(from, dest) < 0)
		return err_sys(err, "rename %s to %s", from, dest);
	msg->state = to;
	/* The new name first: a crash in between may leave both names, never
	 * none. */
	if (fsync_dir(sub_path(dest, msg->spool->dir, tsub, NULL), err) < 0 ||
	    fsync_dir(sub_path(from, msg->spool->dir, fsub, NULL), err) < 0)
		return -1;
	return 0;
}

int
spool_msg_delete(struct spool_msg *msg, struct err *err)
{
	char path[PATH_MAX];
	enum spool_sub sub = state_sub(msg->state);

	if (msg->deleted)
		return 0;
	if (unlink(sub_path(path, msg->spool->dir, sub, msg->id)) < 0 && errno != ENOENT)
		return err_sys(err, "%s", path);
	msg->deleted = true;
	if (fsync_dir(sub_path(path, msg->spool->dir, sub, NULL), err) < 0)
		return -1;
	/* The message is gone with its envelope; a content file left behind
	 * (unlink failing) is removed by spool_recover. */
	if (unlink(sub_path(path, msg->spool->dir, SUB_DATA, msg->id)) < 0 && errno != ENOENT)
		return err_sys(err, "%s", path);
	return 0;
}

int
spool_msg_remove_delivered(struct spool *sp, struct spool_msg *msg, struct err *err)
{
	char path[PATH_MAX];
	enum spool_sub sub = state_sub(msg->state);

	if (msg->deleted)
		return 0;
	if (recycle(sp, sub_path(path, sp->dir, sub, msg->id), msg->id, 'e', false) < 0)
		return err_sys(err, "%s", path);   /* it leaves the queue now, or not at all */
	msg->deleted = true;
	sp->removed = xgrow(sp->removed, &sp->removed_cap, sp->nremoved, sizeof *sp->removed);
	strlcopy(sp->removed[sp->nremoved++], msg->id, sizeof *sp->removed);
	sp->removed_bytes += msg->env.size;
	sp->removed_subs |= 1u << sub;
	return 0;
}

size_t
spool_removals_pending(const struct spool *sp)
{
	return sp->nremoved;
}

uint64_t
spool_removal_bytes_pending(const struct spool *sp)
{
	return sp->removed_bytes;
}

int
spool_sync_removals(struct spool *sp, struct err *err)
{
	char path[PATH_MAX];
	int rc = 0;

	if (sp->nremoved == 0)
		return 0;
	for (int sub = 0; sub < SUB_COUNT; sub++)
		if ((sp->removed_subs & (1u << sub)) != 0 &&
		    fsync_dir(sub_path(path, sp->dir, (enum spool_sub)sub, NULL), err) < 0)
			rc = -1;
	/* Only once the envelopes are gone for good may their files be
	 * written over (a crash must not bring back queue/ID holding another
	 * message's envelope) and their content go (a content file left behind
	 * is removed by spool_recover, an envelope without content would be a
	 * message that cannot be sent). */
	for (size_t i = 0; i < sp->nremoved && rc == 0; i++) {
		char name[ENVELOPE_ID_MAX + 4];

		snprintf(name, sizeof name, ".%s.e", sp->removed[i]);
		recycle_ready(sp, sub_path(path, sp->dir, SUB_SPARE, name), sp->removed[i], 'e');
		recycle_ready(sp, sub_path(path, sp->dir, SUB_DATA, sp->removed[i]),
		    sp->removed[i], 'd');
	}
	if (rc == 0) {
		sp->nremoved = 0;
		sp->removed_bytes = 0;
		sp->removed_subs = 0;
	}
	return rc;
}

void
spool_msg_free(struct spool_msg *msg)
{
	if (msg == NULL)
		return;
	envelope_clear(&msg->env);
	if (msg->fd >= 0)
		close(msg->fd);
	free(msg);
}

/* --- the maildrop ----------------------------------------------------------------- */


/* A drop file is "mailredir-maildrop 1\n", the envelope, an empty line and
 * the content.
 *
 * Modes: maildrop/ is 1733 and owned by the spool user: anyone may create
 * a file there, nobody else may list it (no r for others) or remove another
 * user's file (sticky).  The file belongs to the dropping user, and the
 * importer runs as the spool user, who is not necessarily root: the only
 * mode it can read is 0644 (the group is the user's, not ours).  Readable
 * by all is safe because nobody else can find it: both the temporary and
 * the final name carry 128 random bits and the directory cannot be listed.
 * fchmod after open: the user's umask must not make it unreadable. */
int
spool_drop(const char *spool_dir, struct envelope *env, const void *content, size_t len,
    struct err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX], name[2 * DROP_NAME_BYTES + 1];
	unsigned char rnd[DROP_NAME_BYTES];
	char *text = NULL;
	size_t tlen;
	int fd = -1;

	if (random_bytes(rnd, sizeof rnd, err) < 0)
		return -1;
	hex(rnd, sizeof rnd, name);
	if (path_join(dir, spool_dir, "", subdirs[SUB_MAILDROP].name) < 0 ||
	    path_join(tmp, dir, ".tmp-", name) < 0 || path_join(final, dir, "", name) < 0)
		return err_set(err, "spool directory \"%.64s...\": too long", spool_dir);
	if (env->id[0] == '\0')
		spool_make_id(env->id);
	env->size = len;
	text = envelope_format(env, &tlen);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_sys(err, "%s", tmp);
		goto fail;
	}
	if (fchmod(fd, 0644) < 0 ||
	    write_all(fd, DROP_MAGIC, strlen(DROP_MAGIC)) < 0 ||
	    write_all(fd, text, tlen) < 0 || write_all(fd, "\n", 1) < 0 ||
	    write_all(fd, content, len) < 0 || fsync(fd) < 0) {
		err_sys(err, "%s: write", tmp);
		goto fail_unlink;
	}
	if (rename(tmp, final) < 0) {
		err_sys(err, "rename %s to %s", tmp, final);
		goto fail_unlink;
	}
	free(text);
	text = NULL;
	/* The rename must be durable too.  The spool user can fsync maildrop/;
	 * anyone else cannot even open it (no r bit), so sync the whole file
	 * system instead, which includes the directory entry. */
	if (fsync_dir(dir, NULL) < 0 && syncfs(fd) < 0) {
		err_sys(err, "%s: syncfs", final);
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return err_sys(err, "%s: close", final);
	return 0;
fail_unlink:
	unlink(tmp);
fail:
	close_keep_errno(fd);
	free(text);
	return -1;
}

/* Read a drop file's head up to and including the empty line that ends the
 * envelope.  *buf holds what was read (maybe content beyond the head too),
 * *head_len the octets up to and including the empty line.  1: no empty
 * line within the limit (a bad file). */
static int
drop_read_head(int fd, const char *path, char **bufp, size_t *lenp, size_t *head_len,
    struct err *err)
{
	size_t len = 0, cap = 0, limit = strlen(DROP_MAGIC) + SPOOL_ENVELOPE_MAX;
	char *buf = NULL;

	for (;;) {
		size_t from = len > 0 ? len - 1 : 0;
		char *end;
		ssize_t n;

		if (cap - len < SPOOL_BUF_SIZE) {
			cap = cap ? cap * 2 : SPOOL_BUF_SIZE * 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return err_sys(err, "%s: read", path);
		}
		len += (size_t)n;
		end = len > from ? memmem(buf + from, len - from, "\n\n", 2) : NULL;
		if (end != NULL) {
			*bufp = buf;
			*lenp = len;
			*head_len = (size_t)(end - buf) + 2;
			return 0;
		}
		if (n == 0 || len > limit) {
			free(buf);
			return 1;
		}
	}
}

/* What a user may not choose: the origin and uid (the file's owner), the
 * client (local), and any delivery state (routes are the relay's to pick). */
static void
drop_sanitise(struct envelope *env, const struct stat *st)
{
	time_t now = time(NULL);

	env->origin = ORIGIN_SENDMAIL;
	env->uid = (long)st->st_uid;
	env->created = st->st_mtime > 0 && st->st_mtime < now ? st->st_mtime : now;
	free(env->client_addr);
	env->client_addr = xstrdup("local");
	free(env->client_name);
	env->client_name = NULL;
	free(env->helo);
	env->helo = NULL;
	env->attempts = 0;
	env->next_try = env->last_try = 0;
	free(env->last_reply);
	env->last_reply = NULL;
	for (size_t i = 0; i < env->nrcpts; i++) {
		env->rcpts[i].status = RCPT_PENDING;
		free(env->rcpts[i].route);
		free(env->rcpts[i].reply);
		env->rcpts[i].route = env->rcpts[i].reply = NULL;
	}
}

/* Copy the content (what follows the head) into a new message and commit
 * it.  1 with *why: the file does not hold what its envelope says. */
static int
drop_store(struct spool *sp, int fd, const char *path, const char *rest, size_t rest_len,
    struct envelope *env, const char **why, struct err *err)
{
	struct spool_new *sn = NULL;
	uint64_t want = env->size;
	char *chunk = NULL;
	int rc = -1;

	if (new_begin(sp, env->id, &sn, err) < 0)
		return -1;
	if (spool_new_write(sn, rest, rest_len, err) < 0)
		goto out;
	chunk = xmalloc(SPOOL_BUF_SIZE);
	for (;;) {
		ssize_t n = read(fd, chunk, SPOOL_BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys(err, "%s: read", path);
			goto out;
		}
		if (n == 0)
			break;
		if (spool_new_size(sn) + (size_t)n > DROP_MAX) {
			*why = "content larger than 1 GiB";
			rc = 1;
			goto out;
		}
		if (spool_new_write(sn, chunk, (size_t)n, err) < 0)
			goto out;
	}
	if (spool_new_size(sn) != want) {
		*why = "content size differs from the envelope's";
		rc = 1;
		goto out;
	}
	if (spool_new_finish(sn, env, err) < 0 || spool_commit_batch(sp, &sn, 1, NULL, err) < 0)
		goto out;
	rc = 0;
out:
	free(chunk);
	spool_new_free(sn);   /* aborts unless committed */
	return rc;
}

static void
drop_move_aside(const char *dir, const char *name, const char *why)
{
	char from[PATH_MAX], to[PATH_MAX], shown[72];

	path_join(from, dir, "", name);
	if (strlen(name) > NAME_MAX - 5 || path_join(to, dir, ".bad-", name) < 0 ||
	    rename(from, to) < 0)
		unlink(from);
	log_warn("maildrop %s: %s; moved aside to .bad-%s", printable(name, shown, sizeof shown),
	    why, shown);
}

/* Parse and store an open, locked drop file.  1 with *why: a bad file. */
static int
drop_import_fd(struct spool *sp, int fd, const char *path, const struct stat *st,
    struct envelope *env, char *why, size_t why_size, struct err *err)
{
	size_t len = 0, head_len = 0, magic = strlen(DROP_MAGIC);
	const char *what = NULL;
	struct err perr;
	char *buf = NULL;
	int r;

	if (!S_ISREG(st->st_mode) || st->st_nlink != 1 || st->st_size > DROP_MAX) {
		what = !S_ISREG(st->st_mode) ? "not a regular file" :
		    st->st_nlink != 1 ? "more than one link" : "larger than 1 GiB";
		goto bad;
	}
	r = drop_read_head(fd, path, &buf, &len, &head_len, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		what = "no empty line after the envelope";
		goto bad;
	}
	if (head_len < magic || memcmp(buf, DROP_MAGIC, magic) != 0) {
		what = "not a maildrop file";
		goto bad;
	}
	if (envelope_parse(buf + magic, head_len - 1 - magic, env, &perr) < 0) {
		snprintf(why, why_size, "envelope %s", perr.msg);
		free(buf);
		return 1;
	}
	drop_sanitise(env, st);
	r = drop_store(sp, fd, path, buf + head_len, len - head_len, env, &what, err);
	free(buf);
	if (r > 0)
		snprintf(why, why_size, "%s", what);
	return r;
bad:
	free(buf);
	snprintf(why, why_size, "%s", what);
	return 1;
}

/* One maildrop file: 0 imported (and removed), 1 skipped (another importer
 * has it, or it is gone), 2 bad (moved aside), -1 error (left in place). */
static int
drop_import_one(struct spool *sp, const char *dir, const char *name, struct err *err)
{
	char path[PATH_MAX], why[ERR_MSG_MAX + 16];
	struct envelope env;
	struct stat st;
	int fd, r;

	if (path_join(path, dir, "", name) < 0)
		return err_set(err, "%s: a name too long", dir);
	/* O_NONBLOCK: a FIFO planted by a user must not hang the importer. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0 && (errno == ELOOP || errno == EACCES)) {
		drop_move_aside(dir, name, errno == ELOOP ? "a symbolic link" : "not readable");
		return 2;
	}
	if (fd < 0)
		return err_sys(err, "%s", path);
	/* Two importers (the daemon, `mailredir flush`) must not both take it:
	 * the lock, then "still linked", decide who does. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return 1;
	}
	envelope_init(&env);
	r = drop_import_fd(sp, fd, path, &st, &env, why, sizeof why, err);
	if (r == 0 && unlink(path) < 0) {
		err_sys(err, "imported as %s, but cannot remove %s", env.id, path);
		r = -1;
	} else if (r == 0) {
		log_info("%s: from maildrop uid=%ld size=%" PRIu64, env.id, env.uid, env.size);
	} else if (r > 0) {
		drop_move_aside(dir, name, why);   /* still under the lock */
		r = 2;
	}
	envelope_clear(&env);
	close(fd);
	return r;
}

int
spool_import_drops(struct spool *sp, struct err *err)
{
	size_t n, imported = 0, bad = 0;
	char dir[PATH_MAX];
	char **names;
	int rc = 0;

	if (err != NULL)
		err->msg[0] = '\0';
	if (list_names(sub_path(dir, sp->dir, SUB_MAILDROP, NULL), &names, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int r;

		if (names[i][0] == '.')
			continue;
		r = drop_import_one(sp, dir, names[i], err);
		if (r == 0)
			imported++;
		else if (r == 2)
			bad++;
		else if (r < 0)
			rc = -1;
	}
	free_names(names, n);
	if (rc == 0 && imported + bad > 0 && fsync_dir(dir, err) < 0)
		rc = -1;
	if (rc < 0)
		return -1;
	if (bad > 0)
		err_set(err, "maildrop: %zu malformed file%s moved aside (.bad-NAME)", bad,
		    bad == 1 ? "" : "s");
	return imported > INT_MAX ? INT_MAX : (int)imported;
}
