/* journal.c - the commit log; see journal.h for the layout and the why.
 *
 * Space: records live between `tail` (the first one not checkpointed) and
 * `head` (where the next goes).  Without a wrap, the free space is after
 * head and before tail; after one (`wrapped`: head is a lap ahead) it is
 * between head and tail.  Space a checkpoint frees is reused only after
 * that checkpoint is durable: until then, a crash would replay from the
 * old one and must find those records intact.
 *
 * Sequence numbers: after a restart the next record's number jumps by
 * SEQ_JUMP, so that an old record a crash left intact (never acknowledged)
 * can never pass for the next one. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "journal.h"
#include "util.h"

#define CHECKPOINT_MAGIC "MRJH"
#define RECORD_MAGIC     "MRJR"
#define VERSION          1
#define COPY_OFFSET(i)   ((uint64_t)(i) * 512)
#define SEQ_JUMP         ((uint64_t)1 << 20)  /* > records one journal can hold */
#define ZERO_CHUNK       (64 * 1024)
#define CHECKPOINT_SIGNED (32 + JOURNAL_BOOT_ID_MAX)   /* the checksum covers these */

struct journal {
	int fd;
	char *path;
	uint64_t size;
	pthread_mutex_t lock;     /* the fields below */
	uint64_t tail, head, wrap_at;
	bool wrapped;
	uint64_t next_seq;
	unsigned copy;            /* the checkpoint copy that counts now */
	bool broken;              /* a write or sync failed: not used again */
	uint64_t replayed_seq, replayed_end;
	bool replayed;
	bool same_boot;           /* the checkpoint was written since this boot */
	bool staged;              /* a checkpoint to write with the next sync */
	uint64_t staged_seq, staged_end;
};

/* --- encoding (pure) ------------------------------------------------------- */

/* Little-endian integers of n octets. */
static void
put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#define put32(p, v) put_le(p, v, 4)
#define put64(p, v) put_le(p, v, 8)
#define get32(p)    ((uint32_t)get_le(p, 4))
#define get64(p)    get_le(p, 8)

/* SHA-256 of a || b into out[32]; false when OpenSSL cannot. */
static bool
digest(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
	    EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;

	EVP_MD_CTX_free(ctx);
	return ok;
}

void
journal_checkpoint_encode(const struct journal_checkpoint *cp,
    unsigned char out[JOURNAL_CHECKPOINT_SIZE])
{
	memset(out, 0, JOURNAL_CHECKPOINT_SIZE);
	memcpy(out, CHECKPOINT_MAGIC, 4);
	put32(out + 4, VERSION);
	put64(out + 8, cp->seq);
	put64(out + 16, cp->offset);
	put64(out + 24, cp->size);
	memcpy(out + 32, cp->boot_id, strnlen(cp->boot_id, JOURNAL_BOOT_ID_MAX));
	if (!digest(out, CHECKPOINT_SIGNED, "", 0, out + CHECKPOINT_SIGNED))
		memset(out, 0, JOURNAL_CHECKPOINT_SIZE);   /* decodes as no checkpoint */
}

int
journal_checkpoint_decode(const unsigned char *buf, size_t len, struct journal_checkpoint *cp)
{
	unsigned char check[32];

	if (len < JOURNAL_CHECKPOINT_SIZE || memcmp(buf, CHECKPOINT_MAGIC, 4) != 0 ||
	    get32(buf + 4) != VERSION || !digest(buf, CHECKPOINT_SIGNED, "", 0, check) ||
	    memcmp(check, buf + CHECKPOINT_SIGNED, 32) != 0)
		return -1;
	cp->seq = get64(buf + 8);
	cp->offset = get64(buf + 16);
	cp->size = get64(buf + 24);
	memcpy(cp->boot_id, buf + 32, JOURNAL_BOOT_ID_MAX);
	cp->boot_id[JOURNAL_BOOT_ID_MAX] = '\0';
	if (cp->size < JOURNAL_DATA_START + JOURNAL_HEAD_SIZE || cp->offset < JOURNAL_DATA_START ||
	    cp->offset > cp->size)
		return -1;
	return 0;
}

static void
record_encode(enum journal_type type, uint64_t seq, const char *envelope, uint32_t envelope_len,
    uint64_t content_len, unsigned char out[JOURNAL_HEAD_SIZE])
{
	memset(out, 0, JOURNAL_HEAD_SIZE);
	memcpy(out, RECORD_MAGIC, 4);
	put32(out + 4, type);
	put64(out + 8, seq);
	put32(out + 16, envelope_len);
	put64(out + 24, content_len);
	if (!digest(out, 32, envelope, envelope_len, out + 32))
		memset(out + 32, 0, 32);             /* never checks out */
}

int
journal_record_decode(const unsigned char *buf, size_t len, struct journal_record_head *h)
{
	uint32_t type;

	if (len < JOURNAL_HEAD_SIZE || memcmp(buf, RECORD_MAGIC, 4) != 0 || get32(buf + 20) != 0)
		return -1;
	type = get32(buf + 4);
	if (type != JOURNAL_MESSAGE && type != JOURNAL_WRAP)
		return -1;
	h->type = (enum journal_type)type;
	h->seq = get64(buf + 8);
	h->envelope_len = get32(buf + 16);
	h->content_len = get64(buf + 24);
	if (h->content_len > JOURNAL_SIZE || h->envelope_len > JOURNAL_SIZE ||
	    (type == JOURNAL_WRAP && (h->envelope_len != 0 || h->content_len != 0)))
		return -1;
	memcpy(h->check, buf + 32, 32);
	return 0;
}

bool
journal_record_check(const struct journal_record_head *h, const unsigned char *head64,
    const char *envelope)
{
	unsigned char check[32];

	return digest(head64, 32, envelope, h->envelope_len, check) &&
	    memcmp(check, h->check, 32) == 0;
}

/* --- the file -------------------------------------------------------------- */

static int
pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;          /* shorter than it said */
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static char boot[JOURNAL_BOOT_ID_MAX + 1];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void
read_boot_id(void)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, boot, JOURNAL_BOOT_ID_MAX) : -1;

	boot[n > 0 ? n : 0] = '\0';
	boot[strcspn(boot, "\n")] = '\0';
	if (fd >= 0)
		close(fd);
}

/* This boot's ID ("" when there is none to read). */
static const char *
boot_id(void)
{
	pthread_once(&boot_once, read_boot_id);
	return boot;
}

static int
write_checkpoint_copy(struct journal *j, unsigned copy, const struct journal_checkpoint *cp,
    struct err *err)
{
	unsigned char buf[JOURNAL_CHECKPOINT_SIZE];
	struct journal_checkpoint stamped = *cp;

	strlcopy(stamped.boot_id, boot_id(), sizeof stamped.boot_id);
	journal_checkpoint_encode(&stamped, buf);
	if (pwrite_all(j->fd, buf, sizeof buf, COPY_OFFSET(copy)) < 0)
		return err_sys(err, "%s: write", j->path);
	return 0;
}

/* Zeros over the whole size (the blocks then exist: writing into them
 * later changes no metadata) and two copies of an empty checkpoint. */
static int
make_file(const char *path, struct err *err)
{
	char tmp[4096], *dir;
	unsigned char *zeros = xcalloc(1, ZERO_CHUNK);
	struct journal j = { .path = tmp };
	struct journal_checkpoint cp = { 0, JOURNAL_DATA_START, JOURNAL_SIZE, "" };
	int rc = -1;

	snprintf(tmp, sizeof tmp, "%s.new", path);
	j.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (j.fd < 0) {
		free(zeros);
		return err_sys(err, "%s", tmp);
	}
	for (uint64_t off = 0; off < JOURNAL_SIZE; off += ZERO_CHUNK)
		if (pwrite_all(j.fd, zeros, ZERO_CHUNK, off) < 0) {
			err_sys(err, "%s: write", tmp);
			goto out;
		}
	if (write_checkpoint_copy(&j, 0, &cp, err) < 0 || write_checkpoint_copy(&j, 1, &cp, err) < 0)
		goto out;
	if (fsync(j.fd) < 0) {
		err_sys(err, "%s: fsync", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		err_sys(err, "rename %s to %s", tmp, path);
		goto out;
	}
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	rc = fsync_dir(dir, err);
	free(dir);
out:
	if (rc < 0)
		unlink(tmp);
	close(j.fd);
	free(zeros);
	return rc;
}

int
journal_open(const char *path, bool create, struct journal **out, struct err *err)
{
	unsigned char buf[JOURNAL_CHECKPOINT_SIZE];
	struct journal_checkpoint cps[2];
	bool ok[2];
	struct journal *j;
	struct stat st;
	int fd;

	*out = NULL;
	if (strchr(path, '/') == NULL)
		return err_set(err, "%s: the journal's path must name its directory", path);
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (make_file(path, err) < 0)
			return -1;
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return err_sys(err, "%s", path);
	if (fstat(fd, &st) < 0) {
		err_sys(err, "%s", path);
		close(fd);
		return -1;
	}
	for (unsigned i = 0; i < 2; i++)
		ok[i] = pread_all(fd, buf, sizeof buf, COPY_OFFSET(i)) == 0 &&
		    journal_checkpoint_decode(buf, sizeof buf, &cps[i]) == 0 &&
		    cps[i].size == (uint64_t)st.st_size;
	if (!ok[0] && !ok[1]) {
		close(fd);
		return err_set(err, "%s: no valid checkpoint (not a mailredir journal, or damaged)", path);
	}
	j = xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = xstrdup(path);
	j->size = (uint64_t)st.st_size;
	pthread_mutex_init(&j->lock, NULL);
	j->copy = !ok[0] || (ok[1] && cps[1].seq > cps[0].seq) ? 1 : 0;
	j->tail = j->head = cps[j->copy].offset;
	j->next_seq = cps[j->copy].seq + 1;
	j->same_boot = boot_id()[0] != '\0' && strcmp(cps[j->copy].boot_id, boot_id()) == 0;
	*out = j;
	return 0;
}

bool
journal_same_boot(const struct journal *j)
{
	return j->same_boot;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	close(j->fd);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
}

uint64_t
journal_used(struct journal *j)
{
	uint64_t used;

	pthread_mutex_lock(&j->lock);
	used = j->wrapped ? (j->wrap_at - j->tail) + (j->head - JOURNAL_DATA_START) : j->head - j->tail;
	pthread_mutex_unlock(&j->lock);
	return used;
}

/* --- replay ---------------------------------------------------------------- */

int
journal_replay(struct journal *j, journal_replay_fn fn, void *arg, struct err *err)
{
	unsigned char head[JOURNAL_HEAD_SIZE], *content = NULL;
	char *envelope = NULL;
	uint64_t off = j->head, seq = j->next_seq;
	bool wrapped = false;
	int accepted = 0, r = 0;

	for (;;) {
		struct journal_record_head h;

		if (j->size - off < JOURNAL_HEAD_SIZE) {
			if (wrapped)
				break;
			j->wrap_at = off;
			off = JOURNAL_DATA_START;
			wrapped = true;
		}
		if (pread_all(j->fd, head, sizeof head, off) < 0 ||
		    journal_record_decode(head, sizeof head, &h) < 0 || h.seq != seq)
			break;
		if (h.type == JOURNAL_WRAP) {
			if (wrapped || !journal_record_check(&h, head, ""))
				break;
			j->wrap_at = off;
			off = JOURNAL_DATA_START;
			wrapped = true;
			continue;
		}
		if (h.envelope_len + h.content_len > j->size - off - JOURNAL_HEAD_SIZE ||
		    (wrapped && off + JOURNAL_HEAD_SIZE + h.envelope_len + h.content_len > j->tail))
			break;
		envelope = xrealloc(envelope, h.envelope_len + 1);
		content = xrealloc(content, h.content_len ? h.content_len : 1);
		if (pread_all(j->fd, envelope, h.envelope_len, off + JOURNAL_HEAD_SIZE) < 0 ||
		    pread_all(j->fd, content, h.content_len, off + JOURNAL_HEAD_SIZE + h.envelope_len) < 0)
			break;
		envelope[h.envelope_len] = '\0';
		if (!journal_record_check(&h, head, envelope))
			break;
		r = fn(arg, seq, envelope, h.envelope_len, content, h.content_len, err);
		if (r != 0)
			break;
		off += JOURNAL_HEAD_SIZE + h.envelope_len + h.content_len;
		accepted++;
		j->replayed = true;
		j->replayed_seq = seq;
		j->replayed_end = off;
		j->wrapped = wrapped;
		seq++;
	}
	free(envelope);
	free(content);
	if (r < 0)
		return -1;
	if (j->replayed) {
		j->head = j->replayed_end;
		j->next_seq = j->replayed_seq + 1;
	}
	return accepted;
}

/* Where the checkpoint for a record ending at `end` points: where the
 * next record is (the start, when `end` is where head wrapped; fewer than
 * JOURNAL_HEAD_SIZE octets before the end wrap by themselves). */
static uint64_t
next_place(struct journal *j, uint64_t end)
{
	return j->wrapped && end == j->wrap_at ? JOURNAL_DATA_START : end;
}

void
journal_stage_checkpoint(struct journal *j, uint64_t seq, uint64_t end)
{
	pthread_mutex_lock(&j->lock);
	j->staged = true;
	j->staged_seq = seq;
	j->staged_end = end;
	pthread_mutex_unlock(&j->lock);
}

static void
set_broken(struct journal *j)
{
	pthread_mutex_lock(&j->lock);
	j->broken = true;
	pthread_mutex_unlock(&j->lock);
}

/* Write the staged checkpoint, if any, into the copy that does not count
 * now; *cp and *copy say what to apply once it is durable.  False when
 * nothing was staged. */
static bool
write_staged(struct journal *j, struct journal_checkpoint *cp, unsigned *copy, int *rc,
    struct err *err)
{
	bool staged;

	pthread_mutex_lock(&j->lock);
	staged = j->staged;
	if (staged) {
		*cp = (struct journal_checkpoint){ .seq = j->staged_seq,
		    .offset = next_place(j, j->staged_end), .size = j->size };
		*copy = !j->copy;
		j->staged = false;
	}
	pthread_mutex_unlock(&j->lock);
	*rc = staged ? write_checkpoint_copy(j, *copy, cp, err) : 0;
	return staged;
}

/* A checkpoint is durable: it counts, and frees the space before it. */
static void
apply_checkpoint(struct journal *j, const struct journal_checkpoint *cp, unsigned copy)
{
	pthread_mutex_lock(&j->lock);
	j->copy = copy;
	if (j->wrapped && (cp->offset < j->tail || cp->offset == JOURNAL_DATA_START)) {
		j->wrapped = false;           /* the tail is in head's lap now */
		j->wrap_at = 0;
	}
	j->tail = cp->offset;
	pthread_mutex_unlock(&j->lock);
}

int
journal_sync_checkpoint(struct journal *j, struct err *err)
{
	struct journal_checkpoint cp;
	unsigned copy;
	int rc;

	if (!write_staged(j, &cp, &copy, &rc, err))
		return 0;
	if (rc < 0)
		goto broken;
	if (fdatasync(j->fd) < 0) {
		err_sys(err, "%s: fdatasync", j->path);
		goto broken;
	}
	apply_checkpoint(j, &cp, copy);
	return 0;
broken:
	set_broken(j);
	return -1;
}

int
journal_checkpoint_replayed(struct journal *j, struct err *err)
{
	uint64_t seq = j->replayed ? j->replayed_seq : j->next_seq - 1;
	uint64_t end = j->replayed ? j->replayed_end : j->head;

	/* Everything replayed is kept elsewhere now: the journal starts empty,
	 * numbered past anything an earlier run may have left. */
	journal_stage_checkpoint(j, seq + SEQ_JUMP, end);
	if (journal_sync_checkpoint(j, err) < 0)
		return -1;
	pthread_mutex_lock(&j->lock);
	j->head = j->tail;
	j->wrapped = false;
	j->wrap_at = 0;
	j->next_seq = seq + SEQ_JUMP + 1;
	j->replayed = false;
	pthread_mutex_unlock(&j->lock);
	return 0;
}

/* --- appending ------------------------------------------------------------- */

bool
journal_fits(size_t envelope_len, uint64_t content_len)
{
	return envelope_len <= JOURNAL_RECORD_MAX && content_len <= JOURNAL_RECORD_MAX &&
	    JOURNAL_HEAD_SIZE + envelope_len + content_len <= JOURNAL_RECORD_MAX;
}

/* Place a record of len octets at *off (under the lock, on a copy of the
 * space fields); *wrap_off is set when a wrap record goes first.  False
 * when there is no room. */
struct space {
	uint64_t tail, head, wrap_at;
	bool wrapped;
};

static bool
place(struct space *s, uint64_t size, uint64_t len, uint64_t *off, uint64_t *wrap_off)
{
	*wrap_off = 0;
	if (!s->wrapped && s->head + len <= size) {
		*off = s->head;
	} else if (!s->wrapped) {
		if (JOURNAL_DATA_START + len > s->tail)
			return false;
		if (size - s->head >= JOURNAL_HEAD_SIZE)
			*wrap_off = s->head;
		s->wrap_at = s->head;
		s->wrapped = true;
		*off = JOURNAL_DATA_START;
	} else {
		if (s->head + len > s->tail)
			return false;
		*off = s->head;
	}
	s->head = *off + len;
	return true;
}

int
journal_append(struct journal *j, struct journal_entry *e, size_t n, struct err *err)
{
	struct journal_checkpoint cp;
	struct space s;
	unsigned copy;
	bool staged;
	int wrc;
	uint64_t seq, *offs = xcalloc(n ? n : 1, sizeof *offs), *wraps = xcalloc(n ? n : 1, sizeof *wraps);
	unsigned char head[JOURNAL_HEAD_SIZE], *buf = NULL;
	size_t cap = 0;
	int rc = 1;

	pthread_mutex_lock(&j->lock);
	if (j->broken) {
		pthread_mutex_unlock(&j->lock);
		err_set(err, "%s: not used after an earlier error", j->path);
		rc = -1;
		goto out;
	}
	s = (struct space){ j->tail, j->head, j->wrap_at, j->wrapped };
	for (size_t i = 0; i < n; i++)
		if (!journal_fits(e[i].envelope_len, e[i].content_len) ||
		    !place(&s, j->size, JOURNAL_HEAD_SIZE + e[i].envelope_len + e[i].content_len,
		    &offs[i], &wraps[i])) {
			pthread_mutex_unlock(&j->lock);
			goto out;                     /* rc 1: nothing written */
		}
	seq = j->next_seq;
	j->next_seq += n;
	j->head = s.head;
	j->wrap_at = s.wrap_at;
	j->wrapped = s.wrapped;
	pthread_mutex_unlock(&j->lock);

	rc = -1;
	for (size_t i = 0; i < n; i++, seq++) {
		size_t len = JOURNAL_HEAD_SIZE + e[i].envelope_len + e[i].content_len;

		if (wraps[i] != 0) {
			record_encode(JOURNAL_WRAP, seq, "", 0, 0, head);
			if (pwrite_all(j->fd, head, sizeof head, wraps[i]) < 0) {
				err_sys(err, "%s: write", j->path);
				goto broken;
			}
		}
		if (len > cap) {
			buf = xrealloc(buf, len);
			cap = len;
		}
		record_encode(JOURNAL_MESSAGE, seq, e[i].envelope, (uint32_t)e[i].envelope_len,
		    e[i].content_len, buf);
		memcpy(buf + JOURNAL_HEAD_SIZE, e[i].envelope, e[i].envelope_len);
		if (pread_all(e[i].content_fd, buf + JOURNAL_HEAD_SIZE + e[i].envelope_len,
		    e[i].content_len, 0) < 0) {
			err_sys(err, "%s: reading a message's content back", j->path);
			goto broken;
		}
		if (pwrite_all(j->fd, buf, len, offs[i]) < 0) {
			err_sys(err, "%s: write", j->path);
			goto broken;
		}
		e[i].seq = seq;
		e[i].end = offs[i] + len;
	}
	/* A staged checkpoint rides on the same flush. */
	staged = write_staged(j, &cp, &copy, &wrc, err);
	if (staged && wrc < 0)
		goto broken;
	if (fdatasync(j->fd) < 0) {
		err_sys(err, "%s: fdatasync", j->path);
		goto broken;
	}
	if (staged)
		apply_checkpoint(j, &cp, copy);
	rc = 0;
	goto out;
broken:
	set_broken(j);
out:
	free(buf);
	free(offs);
	free(wraps);
	return rc;
}
