/* smtp_server.h - the SMTP server session (RFC 5321 server side), independent
 * of how bytes move: the daemon drives it from bufferevents, `sendmail -bs`
 * from stdin/stdout.  The session reads lines from an input evbuffer, writes
 * replies to an output evbuffer, and asks its driver to commit a message. */
#ifndef MAILREDIR_SMTP_SERVER_H
#define MAILREDIR_SMTP_SERVER_H

#include "config.h"
#include "spool.h"

/* `sendmail -bs`: one SMTP session on in_fd/out_fd for a local user, spooling
 * directly (or via the maildrop when the spool is not writable).  Returns a
 * sysexits code (0 when the session ended with QUIT or EOF). */
int smtp_server_stdio(const struct config *, struct spool *, int in_fd, int out_fd);

#endif
