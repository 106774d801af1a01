/* fuzz_login_checks.h - contract checks shared by the harnesses of
 * login_parse.h (fuzz_pop3_reply.c, fuzz_imap_reply.c).  A broken contract
 * aborts. */
#ifndef MAILREDIR_FUZZ_LOGIN_CHECKS_H
#define MAILREDIR_FUZZ_LOGIN_CHECKS_H

#include "fuzz_checks.h"
#include "login_parse.h"

/* Would the framing rules accept the line? */
static inline bool
line_ok(const char *line, size_t len)
{
	return len < LOGIN_LINE_MAX && memchr(line, '\0', len) == NULL &&
	    memchr(line, '\r', len) == NULL && memchr(line, '\n', len) == NULL;
}

/* Absent, or inside line[0..len]; when to_end, ending where the line ends. */
static inline void
check_span(struct login_span s, const char *line, size_t len, bool to_end)
{
	if (s.s == NULL) {
		if (s.len != 0)
			abort();
		return;
	}
	if (s.s < line || s.len > len || s.s > line + len - s.len)
		abort();
	if (to_end && s.s + s.len != line + len)
		abort();
}

#endif
