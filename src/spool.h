/* spool.h - the durable message store (mailredir.8, SPOOL; PRODUCT.md §2).
 *
 * Layout under the spool directory:
 *   data/ID        the content, exactly as received (CRLF), our Received:
 *                  line first.  Never moves while the message exists.  A
 *                  process working on a message holds flock(LOCK_EX) on it.
 *   incoming/ID    envelope of a message being received: never "queued".
 *   queue/ID       envelope of a queued or deferred message
 *   held/ID        envelope of a held message
 *   failed/ID      envelope of a failed message (kept until delete/retry)
 *   journal        the daemon's commit log (journal.h)
 *   spare/         removed files kept for new messages (their inodes are
 *                  reused: see spool.c, recycled files); never a message
 *   maildrop/      mode 1733: where users without write access to the spool
 *                  drop a message (envelope + content in one file) for the
 *                  daemon to import (mailredir.8, SENDMAIL)
 * A message's state is the directory its envelope is in; state changes are
 * one rename(2).  Envelope updates are written to a temporary file, fsynced
 * and renamed over the old one.
 *
 * Durability (the daemon's journal: see below): spool_commit_batch writes
 * each message's content to data/ID and its envelope, sealed with the
 * content's SHA-256 as its last line, to incoming/ID; one syncfs(2) and one
 * fdatasync make the whole batch durable (two device flushes however many
 * messages; without syncfs an fdatasync per file and a sync of data/ and
 * incoming/), and then each envelope is renamed into queue/, unsynced.
 * After it returns 0 for a message, that message survives a crash: spool_recover queues a sealed incoming/ envelope whose
 * content matches its seal, and deletes any other (a commit cut short,
 * never acknowledged).  A crash may also bring back a committed message's
 * incoming/ name beside its queue/ one: spool_recover removes only that
 * stale name.
 *
 * Locks are flock(2) on data/ID, which belong to the open file description:
 * a process forked while it holds messages (a spool_new or spool_msg) holds
 * them too until it closes those descriptors.  Close them in the child.
 *
 * IDs: 18 upper-case hex digits: 13 of microseconds since the epoch (they
 * sort by arrival) and 5 random.  Envelope files are untrusted input. */
#ifndef MAILREDIR_SPOOL_H
#define MAILREDIR_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "envelope.h"
#include "err.h"

enum spool_state { SPOOL_QUEUE, SPOOL_HELD, SPOOL_FAILED, SPOOL_STATE_COUNT };

struct spool;            /* an open spool directory */
struct spool_new;        /* a message being received */
struct spool_msg;        /* a stored message, locked by this process */

/* Open (and with create, make the directories of) a spool.  The spool
 * directory is created 0755; data/, incoming/, queue/, held/, failed/ 0700
 * (private to the spool owner); maildrop/ 1733.  When root creates them in a
 * spool directory owned by another user, they (and every file root writes
 * into the spool later) are given to that user.  Existing directories are
 * left as they are.  Without write access (an ordinary user running
 * sendmail) the open succeeds and spool_writable says false. */
int spool_open(const char *dir, bool create, struct spool **, struct err *);
void spool_close(struct spool *);
const char *spool_dir(const struct spool *);
/* May this process write the spool directly (else: use the maildrop)? */
bool spool_writable(const struct spool *);

/* At start-up: queue sealed incoming/ envelopes whose content matches
 * (committed; logged), delete the other incoming/ envelopes and their
 * content (unless the ID is also in a state directory: then only the stale
 * incoming/ entry), and content files in data/ with no envelope that nobody
 * holds locked.  Returns the number of half-received messages removed, or
 * -1. */
int spool_recover(struct spool *, struct err *);

/* --- receiving ---------------------------------------------------------- */

/* Create data/ID (O_EXCL, locked) for a new message.  A spool_new holds one
 * descriptor (data/ID) and, from spool_new_finish to spool_new_free, a
 * second (incoming/ID); a spool_msg holds one. */
int spool_new_begin(struct spool *, struct spool_new **, struct err *);
const char *spool_new_id(const struct spool_new *);
/* Append content bytes (buffered; written with write(2), not yet synced). */
int spool_new_write(struct spool_new *, const void *, size_t, struct err *);
/* Octets written so far. */
size_t spool_new_size(const struct spool_new *);
/* Flush the content and write the envelope to incoming/ID (env->id and
 * env->size are set from the message).  Not durable yet. */
int spool_new_finish(struct spool_new *, struct envelope *env, struct err *);
/* Make finished messages durable and queue them (see above).  Thread-safe
 * with respect to other spool_new objects: meant for the committer thread.
 * Returns 0 when all were committed; else -1 and, per message, failed[i]
 * = true (the message is then still in incoming/ and should be aborted).
 * `failed` may be NULL when n == 1. */
int spool_commit_batch(struct spool *, struct spool_new **, size_t n, bool *failed, struct err *);
/* The daemon's commit (journal.h): one device flush per batch.
 *
 * spool_journal_open opens spool/journal (making it the first time) and
 * writes the messages of records after its checkpoint back to data/ and
 * incoming/ (unless a state directory holds the message intact); call it
 * before spool_recover, which queues them and retires their records.
 *
 * spool_journal_commit makes finished messages durable as records of the
 * journal and moves them into queue/ (out[i]: the record, and whether the
 * rename worked): 0 when it did (they count as committed: the 250 may
 * go), 1 when it did not (no journal, a message too big, no room now), -1
 * on an error (the journal is not used again); on 1 or -1 use
 * spool_commit_batch.  Their own files are not synced: the record stays
 * needed until the message has left queue/ for good (spool_left_queue:
 * delivered and its removal durable, or moved or deleted, which sync) or
 * spool_sync_all made everything durable.  Then spool_journal_retire
 * retires every record up to that one: the next spool_journal_commit
 * makes that durable with its own flush, or spool_journal_sync with one
 * of its own. */
struct spool_journaled {
	char id[ENVELOPE_ID_MAX + 1];
	uint64_t seq, end;        /* its record */
	bool queued;              /* in queue/ (else in incoming/: needs a sync) */
};
int spool_journal_open(struct spool *, struct err *);
int spool_journal_commit(struct spool *, struct spool_new **, size_t n,
    struct spool_journaled *out, struct err *);
bool spool_left_queue(struct spool *, const char *id);
int spool_sync_all(struct spool *, struct err *);
void spool_journal_retire(struct spool *, const struct spool_journaled *upto);
int spool_journal_sync(struct spool *, struct err *);
/* Bytes of the journal in use (0 without one). */
unsigned long long spool_journal_used(struct spool *);

/* Forget a message not committed: unlink its files. */
void spool_new_abort(struct spool_new *);
/* Release (after commit or abort): closes files and the lock.  A message
 * neither committed nor aborted is aborted first. */
void spool_new_free(struct spool_new *);

/* --- the maildrop (unprivileged sendmail) ------------------------------- */

/* Write envelope + content into maildrop/ as one file, fsynced, then rename
 * it to its final name; returns after the directory is synced.  Sets
 * env->size to len, and env->id (spool_make_id) when it is empty; the
 * importer gives the message a new ID. */
int spool_drop(const char *spool_dir, struct envelope *env, const void *content,
    size_t len, struct err *);
/* Import every complete maildrop file into queue/ (validating it as
 * untrusted input; the envelope's uid is replaced by the file owner's,
 * origin is sendmail, client-addr "local", no client-name/helo, created the
 * file's time, and delivery state, routes and replies are reset).  Bad
 * files are moved aside to maildrop/.bad-NAME and logged (log_warn).
 * Returns the number imported, or -1.  On success err->msg is "" or, when
 * files were moved aside, says how many. */
int spool_import_drops(struct spool *, struct err *);

/* --- stored messages ---------------------------------------------------- */

struct spool_entry {
	char id[ENVELOPE_ID_MAX + 1];
	enum spool_state state;
};

/* Every message in queue/, held/ and failed/, sorted by ID.  *entries is an
 * array the caller frees. */
int spool_list(struct spool *, struct spool_entry **entries, size_t *n, struct err *);

/* Read a message's envelope without locking it (for listing).  *state says
 * where it was found.  -1 with "no message ID" when there is none. */
int spool_read(struct spool *, const char *id, enum spool_state *state,
    struct envelope *env, struct err *);

/* Lock a message and read its envelope.  Returns 0 (locked), 1 (another
 * process holds it: try later) or -1 (no such message, bad envelope...). */
int spool_claim(struct spool *, const char *id, struct spool_msg **, struct err *);
const struct envelope *spool_msg_envelope(const struct spool_msg *);
struct envelope *spool_msg_envelope_mut(struct spool_msg *);
enum spool_state spool_msg_state(const struct spool_msg *);
/* The content file, open read-only; owned by the spool_msg.  Its offset is
 * not reset: lseek to 0 or use pread. */
int spool_msg_content_fd(const struct spool_msg *);
/* Durably replace the envelope file with the (modified) envelope. */
int spool_msg_save(struct spool_msg *, struct err *);
/* Durably move the envelope to another state directory. */
int spool_msg_move(struct spool_msg *, enum spool_state, struct err *);
/* Remove the message: envelope first (then it is gone), then content. */
int spool_msg_delete(struct spool_msg *, struct err *);
void spool_msg_free(struct spool_msg *);   /* releases the lock */

/* Remove a delivered message without waiting for the disk: its envelope
 * goes now (the message leaves the queue at once), and spool_sync_removals
 * later makes that durable with one directory sync for many messages and
 * then removes their content.  A power cut in between may bring back a
 * message already delivered (sent twice), never lose one.  sp must be the
 * spool msg was claimed from, used by one thread; spool_close syncs. */
int spool_msg_remove_delivered(struct spool *sp, struct spool_msg *msg, struct err *);
size_t spool_removals_pending(const struct spool *);
uint64_t spool_removal_bytes_pending(const struct spool *);   /* their content */
int spool_sync_removals(struct spool *, struct err *);
/* Removed files wait in spare/ for new messages to reuse their inodes;
 * keep at most a few hundred (the daemon calls this now and then). */
void spool_trim_spares(struct spool *);

const char *spool_state_name(enum spool_state);   /* "queue", "held", "failed" */

/* A fresh ID (format above) into buf[ENVELOPE_ID_MAX + 1]; for the maildrop
 * and the Message-ID of a dropped message, where no data/ file is created. */
void spool_make_id(char *buf);

/* Is `id` syntactically a spool ID?  (Guards every path built from input.) */
bool spool_id_valid(const char *id);

#endif
