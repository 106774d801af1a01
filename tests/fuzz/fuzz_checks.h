/* fuzz_checks.h - contract checks shared by the reply-parser harnesses
 * (fuzz_smtp_reply.c, fuzz_pop3_reply.c, fuzz_imap_reply.c).  A broken
 * contract aborts.  Header-only: each harness is one translation unit. */
#ifndef MAILREDIR_FUZZ_CHECKS_H
#define MAILREDIR_FUZZ_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A mechanism list: names of [A-Z0-9-_], 1..max_name octets, one space
 * apart, each once, NUL-terminated within size. */
static inline void
check_mech_list(const char *mechs, size_t size, size_t max_name)
{
	if (strnlen(mechs, size) == size)
		abort();
	for (const char *p = mechs; *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n == 0 || n > max_name)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
			    p[i] == '-' || p[i] == '_'))
				abort();
		for (const char *q = p + n; *q != '\0';) {
			size_t m;

			q++;
			m = strcspn(q, " ");
			if (m == n && memcmp(p, q, n) == 0)
				abort();
			q += m;
		}
		p += n;
		if (*p == ' ' && p[1] == '\0')
			abort();
		p += *p == ' ';
	}
}

#endif
