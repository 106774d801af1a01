/* netio_trace.c - the narration line printer of netio.h, apart from the
 * connection code so that modules narrating without a connection (the SASL
 * choice) do not pull the network and TLS code in with it. */
#include <stdarg.h>
#include <stdio.h>

#include "netio.h"

void
netio_trace_say(const struct netio_trace *t, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (t == NULL || t->say == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	t->say(t->ctx, line);
}
