/* queue_cmd.h - `mailredir queue ...` (and the mailq symlink) and
 * `mailredir flush` (mailredir.8, QUEUE).  Output formats: PRODUCT.md §9. */
#ifndef MAILREDIR_QUEUE_CMD_H
#define MAILREDIR_QUEUE_CMD_H

#include "config.h"

/* argv[0] is "queue"; then [--json] | show ID | hold ID | release ID |
 * delete ID | retry ID|all.  Returns a sysexits code (0, 64 usage, 65 no
 * such message, 75 the message is locked by another process, 78). */
int queue_cmd_main(const struct config *, int argc, char **argv);

/* `mailredir flush`: import the maildrop, try every queued and deferred
 * message now.  0 when nothing is left queued or deferred, else 75. */
int queue_cmd_flush(const struct config *, int argc, char **argv);

#endif
