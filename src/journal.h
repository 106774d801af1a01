/* journal.h - the commit log: a message acknowledged with one device flush
 * (mailredir.8, SPOOL, "The journal").
 *
 * spool/journal is a file of fixed size whose blocks were written once when
 * it was made, so writing into it again changes no metadata: an fdatasync
 * after a batch of records costs the record writes and one cache flush,
 * where making new files and their names durable costs two (syncfs and an
 * fdatasync, spool.c sync_batch).  The daemon's committer writes a record
 * per received message (its sealed envelope and its content) and answers
 * 250 once they are durable; the spool's own files for those messages are
 * made durable later, many at once, and then a checkpoint says that every
 * record up to it is no longer needed.  After a crash, journal_replay hands
 * back every record after the checkpoint.
 *
 * Layout (integers little-endian):
 *   0, 512     two copies of the checkpoint, each in its own sector (the one
 *              with the higher sequence number that checks out counts; the
 *              next checkpoint overwrites the other):
 *                "MRJH", u32 version 1, u64 seq (the last record no longer
 *                needed), u64 offset (where record seq+1 starts), u64 size
 *                (of the file), 40 bytes: the boot ID of the system that
 *                wrote it (/proc/sys/kernel/random/boot_id, NUL-padded),
 *                then SHA-256 over the 72 bytes before
 *   4096..     records, in a ring:
 *                "MRJR", u32 type (1 message, 2 wrap: go on at 4096),
 *                u64 seq, u32 envelope length, u32 0, u64 content length,
 *                SHA-256 over those 32 bytes and the envelope (32 bytes),
 *                then the envelope, then the content
 *              records follow each other with consecutive sequence numbers;
 *              where fewer than 64 bytes are left before the end, or at a
 *              wrap record, the next one is at 4096.
 * A record's content is checked against the envelope's seal
 * (content-sha256) by whoever replays it: a record cut short fails the one
 * or the other check, and the scan stops there (nothing after it was
 * acknowledged: a batch is answered only after all of it is durable).
 *
 * Threads: one thread appends and checkpoints; journal_used may be called
 * from any. */
#ifndef MAILREDIR_JOURNAL_H
#define MAILREDIR_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define JOURNAL_SIZE        (16 * 1024 * 1024)
#define JOURNAL_DATA_START  4096
#define JOURNAL_HEAD_SIZE   64        /* a record header */
#define JOURNAL_CHECKPOINT_SIZE 104   /* a checkpoint copy */
#define JOURNAL_BOOT_ID_MAX 40
#define JOURNAL_RECORD_MAX  (JOURNAL_SIZE / 8)   /* bigger messages bypass it */

enum journal_type { JOURNAL_MESSAGE = 1, JOURNAL_WRAP = 2 };

struct journal_checkpoint {
	uint64_t seq, offset, size;
	char boot_id[JOURNAL_BOOT_ID_MAX + 1];   /* of the boot that wrote it */
};

struct journal_record_head {
	enum journal_type type;
	uint64_t seq;
	uint32_t envelope_len;
	uint64_t content_len;
	unsigned char check[32];  /* SHA-256 of the first 32 bytes + envelope */
};

/* Pure decoders (fuzzed): 0 when buf holds a well-formed checkpoint copy
 * (checksum included) / record header (its checksum needs the envelope:
 * journal_record_check), else -1. */
int journal_checkpoint_decode(const unsigned char *buf, size_t len, struct journal_checkpoint *);
void journal_checkpoint_encode(const struct journal_checkpoint *,
    unsigned char out[JOURNAL_CHECKPOINT_SIZE]);
int journal_record_decode(const unsigned char *buf, size_t len, struct journal_record_head *);
bool journal_record_check(const struct journal_record_head *, const unsigned char *head64,
    const char *envelope);

struct journal;

/* Open spool/journal (path), making it when create is set and it is
 * missing: zeros written over its whole size, synced, its directory too. */
int journal_open(const char *path, bool create, struct journal **, struct err *);
void journal_close(struct journal *);
/* Was the checkpoint written during this boot of the system?  Then every
 * file the spool's last process wrote is still there as it left it (in
 * the page cache if not on disk): a process that died loses nothing, and
 * only a crash or power cut of the whole system needs journal_replay. */
bool journal_same_boot(const struct journal *);

/* Call fn for each record after the checkpoint, in order, until one is
 * malformed or fn returns 1 (a record that does not check out: the end);
 * fn returns 0 to go on, -1 on an error (returned).  Returns the number of
 * records fn accepted, or -1.  Remembers the last accepted record, so that
 * journal_checkpoint_all can retire them. */
typedef int (*journal_replay_fn)(void *arg, uint64_t seq, const char *envelope, size_t envelope_len,
    const unsigned char *content, size_t content_len, struct err *);
int journal_replay(struct journal *, journal_replay_fn, void *arg, struct err *);

/* One message of a batch: its envelope text and content (read from
 * content_fd at offset 0).  journal_append fills seq and end. */
struct journal_entry {
	const char *envelope;
	size_t envelope_len;
	int content_fd;
	uint64_t content_len;
	uint64_t seq;             /* out */
	uint64_t end;             /* out: offset after the record */
};

/* Does a message of these sizes go into the journal at all? */
bool journal_fits(size_t envelope_len, uint64_t content_len);
/* Write records for entries[0..n) and fdatasync once.  0: all durable;
 * 1: not enough free space now (nothing written: commit another way);
 * -1: an error (the journal is not used again: commit another way). */
int journal_append(struct journal *, struct journal_entry *, size_t n, struct err *);
/* Every record up to seq (which ends at end) is kept elsewhere now: the
 * checkpoint is written with the next journal_append (its flush makes it
 * durable too) or journal_sync_checkpoint (a flush of its own), and frees
 * their space once durable.  A later one replaces one not written yet. */
void journal_stage_checkpoint(struct journal *, uint64_t seq, uint64_t end);
int journal_sync_checkpoint(struct journal *, struct err *);
/* After journal_replay: retire every record it handed back. */
int journal_checkpoint_replayed(struct journal *, struct err *);
/* Bytes of records not yet checkpointed. */
uint64_t journal_used(struct journal *);

#endif
