/* queue_cmd.h - `mailredir queue ...` (and the mailq symlink, sendmail -bp)
 * and `mailredir flush` (sendmail -q) (mailredir.8, COMMANDS).  Output
 * formats: PRODUCT.md §9; the --json format is a contract. */
#ifndef MAILREDIR_QUEUE_CMD_H
#define MAILREDIR_QUEUE_CMD_H

#include "config.h"

/* argv[0] is "queue" (-c already removed); then nothing (the table),
 * --json, show ID, hold ID, release ID, delete ID, or retry ID|all.
 * Writes to stdout, errors to stderr ("mailredir: ...").  A spool directory
 * that does not exist is an empty queue.  Returns a sysexits code: 0; 64
 * usage; 65 a malformed ID, no such message, or hold of a failed message;
 * 75 the spool could not be read or changed (or stdout written), or the
 * message is locked by another process (try again). */
int queue_cmd_main(const struct config *, int argc, char **argv);

/* `mailredir flush [ROUTE]`: import the maildrop (when this process may
 * write the spool), then count queued and deferred messages.  This version
 * cannot deliver: it says so (or that no route is configured) and returns
 * 75 when any are waiting, 0 when none are; 64 for bad usage or an unknown
 * ROUTE. */
int queue_cmd_flush(const struct config *, int argc, char **argv);

#endif
