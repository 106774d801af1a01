/* err.h - error details passed back to the caller (STYLE.md §3).
 *
 * A function that can fail returns 0 / -1 and, on -1, fills the caller's
 * struct err with a complete sentence: what failed, on which file or host,
 * and why (strerror).  No global error buffers. */
#ifndef MAILREDIR_ERR_H
#define MAILREDIR_ERR_H

#define ERR_MSG_MAX 4096

struct err {
	char msg[ERR_MSG_MAX];
};

/* Replace the message.  Returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like err_set, with ": strerror(errno)" appended (errno read on entry). */
int err_sys(struct err *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append a line (joined with '\n') to what is there; for collected errors
 * such as every problem of a configuration file.  Truncates silently. */
void err_append(struct err *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
