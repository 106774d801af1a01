/* probe.h - `mailredir probe [ROUTE]`: connect to a route's gateway and show,
 * step by step, what happens (name resolution, TCP, banner, EHLO, STARTTLS,
 * TLS version/cipher/certificate and its verification, the AUTH mechanisms
 * offered, available and chosen, the AUTH result) without sending a message.
 * No secret is ever printed (the client masks AUTH lines). */
#ifndef MAILREDIR_PROBE_H
#define MAILREDIR_PROBE_H

#include "config.h"

/* argv[0] is "probe", argv[1] an optional route name.  0 when a message
 * could be sent through the route, 69 when not, 64 for an unknown route. */
int probe_main(const struct config *, int argc, char **argv);

#endif
