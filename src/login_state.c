/* login_state.c - see login_state.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "login_state.h"
#include "util.h"

/* A field of a line: *p moves past it and one following space. */
static size_t
field_len(const char **p, const char *end)
{
	const char *s = *p;

	while (*p < end && **p != ' ')
		(*p)++;
	return (size_t)(*p - s);
}

/* Decimal digits only (no sign), at most 18 of them: into *v. */
static int
digits(const char *s, size_t n, uint64_t *v)
{
	if (n == 0 || n > 18)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return 0;
}

/* One line "NAME LAST DELAY" (without its LF), single spaces, nothing
 * else: 0 and the fields, or -1. */
static int
parse_line(const char *line, size_t len, char *name, struct login_memory *m)
{
	const char *p = line, *end = line + len, *f[3];
	size_t n[3];
	uint64_t last, delay;

	for (int i = 0; i < 3; i++) {
		f[i] = p;
		n[i] = field_len(&p, end);
		if (p < end)
			p++;                 /* the space */
		if (i < 2 && p == end)
			return -1;
	}
	if (f[2] + n[2] != end || n[0] == 0 || n[0] > LOGIN_STATE_NAME_MAX ||
	    memchr(f[0], '\0', n[0]) != NULL || digits(f[1], n[1], &last) < 0 ||
	    digits(f[2], n[2], &delay) < 0 || delay > LOGIN_STATE_DELAY_MAX)
		return -1;
	memcpy(name, f[0], n[0]);
	name[n[0]] = '\0';
	m->last_login = (int64_t)last;
	m->delay_ms = delay;
	return 0;
}

/* Call fn for each good line of text: its bounds, name and memory. */
static void
each_line(const char *text, size_t len,
    void (*fn)(void *ctx, const char *line, size_t n, const char *name,
    const struct login_memory *), void *ctx)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		char name[LOGIN_STATE_NAME_MAX + 1];
		struct login_memory m;

		if (parse_line(p, n, name, &m) == 0)
			fn(ctx, p, n, name, &m);
		p += n + 1;
	}
}

struct finder {
	const char *route;
	struct login_memory *out;
};

static void
find_one(void *ctx, const char *line, size_t n, const char *name, const struct login_memory *m)
{
	struct finder *f = ctx;

	(void)line, (void)n;
	if (strcmp(name, f->route) == 0)
		*f->out = *m;
}

void
login_state_find(const char *text, size_t len, const char *route, struct login_memory *m)
{
	struct finder f = { route, m };

	memset(m, 0, sizeof *m);
	each_line(text, len, find_one, &f);
}

struct writer {
	const char *route;
	char *out;
	size_t len, cap;
};

static void
append(struct writer *w, const char *s, size_t n)
{
	if (w->cap - w->len < n + 1) {
		w->cap = (w->len + n + 1) * 2;
		w->out = xrealloc(w->out, w->cap);
	}
	memcpy(w->out + w->len, s, n);
	w->len += n;
	w->out[w->len] = '\0';
}

static void
keep_other(void *ctx, const char *line, size_t n, const char *name, const struct login_memory *m)
{
	struct writer *w = ctx;

	(void)m;
	if (strcmp(name, w->route) == 0)
		return;
	append(w, line, n);
	append(w, "\n", 1);
}

char *
login_state_update(const char *text, size_t len, const char *route,
    const struct login_memory *m, size_t *out_len)
{
	struct writer w = { route, NULL, 0, 0 };
	char line[LOGIN_STATE_NAME_MAX + 48];
	int n;

	append(&w, "", 0);
	each_line(text, len, keep_other, &w);
	n = snprintf(line, sizeof line, "%.*s %lld %llu\n", LOGIN_STATE_NAME_MAX, route,
	    (long long)m->last_login, (unsigned long long)m->delay_ms);
	append(&w, line, (size_t)n);
	*out_len = w.len;
	return w.out;
}

static char *
state_path(const char *spool_dir, const char *suffix)
{
	return xasprintf("%s/%s%s", spool_dir, LOGIN_STATE_FILE, suffix);
}

/* The file's text ("" when missing or too big). */
static char *
read_state(const char *spool_dir, size_t *len)
{
	char *path = state_path(spool_dir, ""), *text;
	struct err err;

	if (read_file(path, LOGIN_STATE_MAX, &text, len, &err) < 0) {
		text = xstrdup("");
		*len = 0;
	}
	free(path);
	return text;
}

int
login_state_load(const char *spool_dir, const char *route, struct login_memory *m,
    struct err *err)
{
	size_t len;
	char *text = read_state(spool_dir, &len);

	(void)err;
	login_state_find(text, len, route, m);
	free(text);
	return 0;
}

int
login_state_save(const char *spool_dir, const char *route, const struct login_memory *m,
    struct err *err)
{
	char *lock_path = state_path(spool_dir, ".lock"), *tmp = state_path(spool_dir, ".tmp");
	char *path = state_path(spool_dir, ""), *text = NULL, *out = NULL;
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), fd = -1, rc = -1;
	size_t len, out_len;

	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		err_sys(err, "cannot lock %s", lock_path);
		goto done;
	}
	text = read_state(spool_dir, &len);
	out = login_state_update(text, len, route, m, &out_len);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    write_all(fd, out, out_len) < 0) {
		err_sys(err, "cannot write %s", tmp);
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_sys(err, "cannot write %s", tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		err_sys(err, "cannot rename %s to %s", tmp, path);
		goto done;
	}
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);       /* releases the lock */
	free(text);
	free(out);
	free(lock_path);
	free(tmp);
	free(path);
	return rc;
}
