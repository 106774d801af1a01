/* route_cmd.h - `mailredir route ADDRESS... [-f FROM]`: which route a
 * message to each address would take and why, through which gateway, with
 * which envelope sender and which identity in its header (mailredir.8,
 * ROUTES).  Nothing is sent; no secret is printed. */
#ifndef MAILREDIR_ROUTE_CMD_H
#define MAILREDIR_ROUTE_CMD_H

#include "config.h"

/* argv[0] is "route".  0 when every address has a route, 69 when one has
 * none (its mail would stay queued), 64 usage, 65 a malformed address. */
int route_cmd_main(const struct config *, int argc, char **argv);

#endif
