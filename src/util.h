/* util.h - small helpers every module needs: allocation that cannot return
 * NULL, whole-buffer writes, directory fsync, time formatting. */
#ifndef MAILREDIR_UTIL_H
#define MAILREDIR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* Allocation failure is a broken invariant for a relay this size: these print
 * a message and abort() instead of returning NULL. */
void *xmalloc(size_t);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *, size_t);
/* Grow an array of n elements of `size` to hold at least n+1; *cap updated. */
void *xgrow(void *array, size_t *cap, size_t n, size_t size);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* write(2) until all of buf is written or an error (EINTR retried). 0/-1. */
int write_all(int fd, const void *buf, size_t len);

/* Read a whole file (at most max bytes; more is an error).  The result is
 * NUL-terminated (the NUL is not counted in *len); caller frees. */
int read_file(const char *path, size_t max, char **out, size_t *len, struct err *);

/* open(dir, O_RDONLY|O_DIRECTORY) + fsync + close: makes directory entries
 * (creations, renames, unlinks) durable. */
int fsync_dir(const char *path, struct err *);

/* poll(2) one descriptor for `events` until the monotonic deadline (ms, as
 * now_ms): 1 ready, 0 deadline passed, -1 poll failed (errno).  EINTR is
 * retried with the time left. */
int wait_fd(int fd, short events, uint64_t deadline);

/* Milliseconds on CLOCK_MONOTONIC / wall clock seconds. */
uint64_t now_ms(void);

/* Sleep ms milliseconds, through signals. */
void sleep_ms(uint64_t ms);

/* A duration for messages: "30 s", "2.5 s". */
const char *format_seconds(uint64_t ms, char *buf, size_t size);

/* "2026-11-24T03:00:00Z" (UTC) into buf (at least UTIL_ISO8601_MAX). */
#define UTIL_ISO8601_MAX 32
char *format_iso8601(time_t, char *buf, size_t size);

/* RFC 5322 date-time in local time, e.g. "Tue, 24 Nov 2026 04:00:00 +0100". */
#define UTIL_RFC5322_DATE_MAX 64
char *format_rfc5322_date(time_t, char *buf, size_t size);

/* Do s[0..len) and the string lit match, ASCII case ignored?  (Protocol
 * keywords; no locale is ever set, so strncasecmp is ASCII here.) */
bool equal_nocase(const char *s, size_t len, const char *lit);

/* Copy at most size-1 bytes and NUL-terminate; returns strlen(src) like
 * strlcpy, so a result >= size means truncation. */
size_t strlcopy(char *dst, const char *src, size_t size);

#endif
