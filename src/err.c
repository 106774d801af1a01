/* err.c - error details for the caller; see err.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int
err_set(struct err *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_sys(struct err *err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t len;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof err->msg - len, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

void
err_append(struct err *err, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	if (err == NULL)
		return;
	len = strnlen(err->msg, sizeof err->msg);
	if (len > 0 && len + 1 < sizeof err->msg)
		err->msg[len++] = '\n';
	if (len + 1 >= sizeof err->msg)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg + len, sizeof err->msg - len, fmt, ap);
	va_end(ap);
}
