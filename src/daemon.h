/* daemon.h - `mailredir serve`: listeners, connections and their limits,
 * signals, privilege drop, configuration reload (mailredir.8, SMTP SERVER,
 * SIGNALS).  Mail is stored through the committer (group commit). */
#ifndef MAILREDIR_DAEMON_H
#define MAILREDIR_DAEMON_H

#include <stdbool.h>

#include "config.h"

struct daemon_opts {
	bool foreground;         /* log to stderr, do not detach */
	const char *config_path; /* re-read on SIGHUP */
	bool proxy;              /* serve --proxy: the reply to DATA waits for the gateway */
};

/* Takes ownership of cfg.  Returns a sysexits code: 0 after SIGTERM. */
int daemon_main(struct config *cfg, const struct daemon_opts *);

#endif
