/* log.c - stderr or syslog(LOG_MAIL); see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int log_to_stderr = 1;
static enum log_level log_max = LOG_LEVEL_INFO;

void
log_open(int to_stderr, enum log_level max_level)
{
	log_to_stderr = to_stderr;
	log_max = max_level;
	if (!to_stderr)
		openlog("mailredir", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level max_level)
{
	log_max = max_level;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const int priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[2048];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (log_to_stderr)
		fprintf(stderr, "mailredir[%ld]: %s: %s\n", (long)getpid(), names[level], line);
	else
		syslog(priorities[level], "%s", line);
}
