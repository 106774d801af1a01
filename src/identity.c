/* identity.c - rewrite the From:/Reply-To: identity of a message's header and
 * parse the from-map file (see identity.h, mailredir.conf.5 header-from and
 * from-map).  RFC 5322 §3.6.2 originator fields, §2.1.1 line lengths, §2.2.3
 * folding; RFC 2047 §5 (an encoded word is never put inside a quoted string).
 *
 * SECURITY: the header is any sender's; parsing is rfc5322.c's, and this file
 * only copies fields it found, writes new ones through rfc5322_fold (so a
 * display name cannot add a line) and refuses what the spool never holds
 * (bare CR, lines over 998 octets) rather than pass it on.  Work and memory
 * are linear in the header, which is capped at IDENTITY_HEADER_MAX.  Pure:
 * no I/O, no logging. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "identity.h"
#include "rfc5322.h"
#include "util.h"

const char *
identity_mode_name(enum identity_mode mode)
{
	return mode == IDENTITY_MAP ? "map" : "rewrite";
}

/* Local parts exactly (RFC 5321 §2.4: only the receiving host may fold
 * their case), domains without regard to ASCII case. */
static bool
same_address(const char *a, const char *b)
{
	const char *da = address_domain(a), *db = address_domain(b);

	if (da == NULL || db == NULL)
		return da == db && strcmp(a, b) == 0;
	return da - a == db - b && memcmp(a, b, (size_t)(da - a)) == 0 &&
	    strcasecmp(da, db) == 0;
}

/* --- the header as it is --------------------------------------------------- */

struct header_scan {
	size_t nfields;
	size_t nfrom, nreply_to;
	struct rfc5322_field from, reply_to;   /* the first of each */
	size_t trace_end;       /* fields in the trace block that starts the header */
	size_t end;             /* where the last field ends */
	size_t limit;           /* the octets the header is looked for in */
	size_t body_offset;
};

/* What the spool never holds is refused, not copied: a bare CR would end a
 * line for some readers and not for others, a long line breaks SMTP. */
static int
check_lines(const struct rfc5322_field *f, struct err *err)
{
	int shown = f->name_len > 64 ? 64 : (int)f->name_len;
	size_t col = 0;

	for (size_t i = 0; i < f->raw_len; i++) {
		char c = f->raw[i];

		if (c == '\n') {
			col = 0;
		} else if (c == '\r' && (i + 1 == f->raw_len || f->raw[i + 1] != '\n')) {
			return err_set(err, "the %.*s: field holds a bare CR", shown, f->name);
		} else if (c != '\r' && ++col > RFC5322_LINE_MAX) {
			return err_set(err, "a line of the %.*s: field is longer than %d octets",
			    shown, f->name, RFC5322_LINE_MAX);
		}
	}
	return 0;
}

static bool
is_trace(const struct rfc5322_field *f)
{
	return rfc5322_field_is(f, "Received") || rfc5322_field_is(f, "Return-Path");
}

/* Did the header end inside the octets looked at?  A line that is not a
 * field counts only when it is complete (the cut may have made it one). */
static bool
header_ended(const char *content, size_t limit, enum rfc5322_next_result r, size_t body)
{
	if (r == RFC5322_END)
		return true;
	return r == RFC5322_NOT_FIELD && memchr(content + body, '\n', limit - body) != NULL;
}

static int
scan_header(const char *content, size_t len, struct header_scan *hs, struct err *err)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	enum rfc5322_next_result r;
	bool trace = true;

	memset(hs, 0, sizeof *hs);
	hs->limit = len < IDENTITY_HEADER_MAX ? len : IDENTITY_HEADER_MAX;
	rfc5322_iter_init(&it, content, hs->limit);
	while ((r = rfc5322_next(&it, &f)) == RFC5322_FIELD) {
		if (check_lines(&f, err) != 0)
			return -1;
		if (rfc5322_field_is(&f, "From") && hs->nfrom++ == 0)
			hs->from = f;
		if (rfc5322_field_is(&f, "Reply-To") && hs->nreply_to++ == 0)
			hs->reply_to = f;
		trace = trace && is_trace(&f);
		hs->nfields++;
		if (trace)
			hs->trace_end = hs->nfields;
		hs->end = (size_t)(f.raw - content) + f.raw_len;
	}
	if (hs->limit < len && !header_ended(content, hs->limit, r, it.body_offset))
		return err_set(err, "the header is longer than %d octets", IDENTITY_HEADER_MAX);
	hs->body_offset = it.body_offset;
	return 0;
}

/* --- From: and Reply-To: values -------------------------------------------- */

struct field_info {
	bool parsed;            /* the whole value, with at least one mailbox, each
	                         * with a domain */
	size_t nmailboxes;
	char addr[RFC5322_ADDR_MAX + 1];         /* the first mailbox */
	const char *name, *comment;              /* its names, into the header */
	size_t name_len, comment_len;
	bool local_only;        /* a mailbox without a domain ("From: root") */
};

static int
take_mailbox(void *ctx, const struct rfc5322_mailbox *mb)
{
	struct field_info *fi = ctx;

	if (address_domain(mb->addr) == NULL)
		fi->local_only = true;
	if (fi->nmailboxes++ == 0) {
		memcpy(fi->addr, mb->addr, mb->addr_len + 1);
		fi->name = mb->name;
		fi->name_len = mb->name_len;
		fi->comment = mb->comment;
		fi->comment_len = mb->comment_len;
	}
	return 0;
}

static void
parse_field(const struct rfc5322_field *f, struct field_info *fi)
{
	memset(fi, 0, sizeof *fi);
	fi->parsed = rfc5322_parse_mailboxes(f->value, f->value_len, take_mailbox, fi) == 0 &&
	    fi->nmailboxes > 0 && !fi->local_only;
}

/* Exactly one mailbox, and it is `address`. */
static bool
is_address(const struct field_info *fi, const char *address)
{
	return fi->parsed && fi->nmailboxes == 1 && same_address(fi->addr, address);
}

static bool
has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return true;
	return false;
}

/* The comment's text: quoted-pairs resolved, whitespace collapsed (the
 * comment is unfolded with its parentheses so that a '"' in it stays ctext).
 * Returns its length in text (room for comment_len + 3), NUL-terminated. */
static size_t
comment_text(const struct field_info *fi, char *text)
{
	size_t n = rfc5322_unfold(fi->comment - 1, fi->comment_len + 2, text, RFC5322_COLLAPSE);
	size_t m = 0;

	for (size_t i = 1; i + 1 < n; i++) {
		if (text[i] == '\\' && i + 2 < n)
			i++;
		text[m++] = text[i];
	}
	while (m > 0 && text[m - 1] == ' ')
		m--;
	if (m > 0 && text[0] == ' ')
		memmove(text, text + 1, --m);
	text[m] = '\0';
	return m;
}

/* An old-style comment name as a phrase: as it is when every word is an
 * atom (so "=?utf-8?q?...?=" stays an encoded word), else a quoted string.
 * buf has room for 2 * comment_len + 2; returns the length, 0 for none. */
static size_t
comment_phrase(const struct field_info *fi, char *buf)
{
	char *text = xmalloc(fi->comment_len + 3);
	size_t n = comment_text(fi, text), m = 0;

	if (n == 0 || has_control(text, n)) {
		n = 0;
	} else if (strcspn(text, "()<>[]:;@\\,.\"") >= n) {   /* has_control: no NUL */
		memcpy(buf, text, n);
	} else {
		buf[m++] = '"';
		for (size_t i = 0; i < n; i++) {
			if (text[i] == '"' || text[i] == '\\')
				buf[m++] = '\\';
			buf[m++] = text[i];
		}
		buf[m++] = '"';
		n = m;
	}
	free(text);
	return n;
}

/* The display name to keep, into buf (room for name_len, or 2 *
 * comment_len + 2): the name as written but unfolded; 0 for none. */
static size_t
display_name(const struct field_info *fi, char *buf)
{
	size_t n;

	if (!fi->parsed)
		return 0;
	if (fi->name == NULL)
		return fi->comment != NULL ? comment_phrase(fi, buf) : 0;
	n = rfc5322_unfold(fi->name, fi->name_len, buf, RFC5322_COLLAPSE);
	return has_control(buf, n) ? 0 : n;
}

/* "name: value" CRLF folded, NUL-terminated, malloc'd; NULL when a word of
 * the value does not fit on a line. */
static char *
fold_field(const char *name, const char *value, size_t len, size_t *field_len)
{
	size_t n = rfc5322_fold(name, value, len, NULL, 0);
	char *field;

	if (n == 0)
		return NULL;
	field = xmalloc(n + 1);
	rfc5322_fold(name, value, len, field, n + 1);
	*field_len = n;
	return field;
}

/* "From: NAME <address>", or "From: <address>" when NAME does not fit. */
static char *
from_field(const struct field_info *fi, const char *address, size_t *field_len)
{
	size_t alen = strlen(address), n, tail;
	char *value = xmalloc(fi->name_len + 2 * fi->comment_len + alen + 8), *field;

	n = display_name(fi, value);
	if (n > 0)
		value[n++] = ' ';
	tail = n;
	value[n++] = '<';
	memcpy(value + n, address, alen);
	n += alen;
	value[n++] = '>';
	field = fold_field("From", value, n, field_len);
	if (field == NULL)
		field = fold_field("From", value + tail, n - tail, field_len);
	free(value);
	return field;
}

/* "Reply-To:" with the From: value (IDENTITY_REWRITE); with only its first
 * address when a word is too long for a line. */
static char *
reply_to_from(const struct rfc5322_field *from, const struct field_info *fi,
    size_t *field_len)
{
	char *value = xmalloc(from->value_len + 1), *field;
	char first[RFC5322_ADDR_MAX + 3];
	size_t n = rfc5322_unfold(from->value, from->value_len, value, 0);

	field = fold_field("Reply-To", value, n, field_len);
	if (field == NULL) {
		n = (size_t)snprintf(first, sizeof first, "<%s>", fi->addr);
		field = fold_field("Reply-To", first, n, field_len);
	}
	free(value);
	return field;
}

/* --- the new header -------------------------------------------------------- */

struct plan {
	enum identity_mode mode;
	char *from;             /* the new From: field; NULL: keep the one there */
	char *reply_to;         /* the new Reply-To: field, or NULL */
	size_t from_len, reply_to_len;
};

/* Decide and write the new fields; false when nothing changes. */
static bool
plan_changes(struct plan *p, const struct header_scan *hs, const char *address)
{
	struct field_info from = { 0 }, reply = { 0 };
	bool keep_from, fix_reply, add_reply;
	char value[ADDRESS_MAX + 3];

	if (hs->nfrom > 0)
		parse_field(&hs->from, &from);
	if (hs->nreply_to > 0)
		parse_field(&hs->reply_to, &reply);
	keep_from = hs->nfrom == 1 && is_address(&from, address);
	fix_reply = p->mode == IDENTITY_MAP && hs->nreply_to > 0 &&
	    !(hs->nreply_to == 1 && is_address(&reply, address));
	add_reply = p->mode == IDENTITY_REWRITE && hs->nreply_to == 0 && from.parsed &&
	    !is_address(&from, address);
	if (keep_from && !fix_reply)
		return false;
	if (!keep_from)
		p->from = from_field(&from, address, &p->from_len);
	if (add_reply)
		p->reply_to = reply_to_from(&hs->from, &from, &p->reply_to_len);
	if (fix_reply) {
		snprintf(value, sizeof value, "<%s>", address);
		p->reply_to = fold_field("Reply-To", value, strlen(value), &p->reply_to_len);
	}
	return true;
}

struct out {
	char *p;
	size_t len;
};

static void
put(struct out *o, const char *s, size_t n)
{
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* A field as it was, each line ended by CRLF (there is no bare CR). */
static void
copy_field(struct out *o, const struct rfc5322_field *f)
{
	const char *p = f->raw, *end = f->raw + f->raw_len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((lf != NULL ? lf : end) - p);

		put(o, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
		put(o, "\r\n", 2);
		p += n + 1;
	}
}

/* The new From: (or the kept one) and, with IDENTITY_REWRITE, the new
 * Reply-To: right after it. */
static void
put_from(struct out *o, const struct plan *p, const struct rfc5322_field *old)
{
	if (p->from != NULL)
		put(o, p->from, p->from_len);
	else
		copy_field(o, old);
	if (p->mode == IDENTITY_REWRITE && p->reply_to != NULL)
		put(o, p->reply_to, p->reply_to_len);
}

static void
put_field(struct out *o, const struct plan *p, const struct rfc5322_field *f,
    size_t *nfrom, size_t *nreply_to)
{
	if (rfc5322_field_is(f, "From")) {
		if ((*nfrom)++ == 0)
			put_from(o, p, f);
	} else if (rfc5322_field_is(f, "Reply-To") && p->mode == IDENTITY_MAP &&
	    p->reply_to != NULL) {
		if ((*nreply_to)++ == 0)
			put(o, p->reply_to, p->reply_to_len);
	} else {
		copy_field(o, f);
	}
}

/* Every field again, in order, with the planned ones in place.  Copies at
 * most double (LF -> CRLF), plus a line end the last field may lack. */
static void
build(struct identity_header *out, const char *content, const struct header_scan *hs,
    const struct plan *p)
{
	struct out o = { xmalloc(2 * hs->end + p->from_len + p->reply_to_len + 5), 0 };
	struct rfc5322_iter it;
	struct rfc5322_field f;
	size_t nfrom = 0, nreply_to = 0;

	rfc5322_iter_init(&it, content, hs->limit);
	for (size_t i = 0; rfc5322_next(&it, &f) == RFC5322_FIELD; i++) {
		if (i == hs->trace_end && hs->nfrom == 0)
			put_from(&o, p, NULL);
		put_field(&o, p, &f, &nfrom, &nreply_to);
	}
	if (hs->trace_end == hs->nfields && hs->nfrom == 0)
		put_from(&o, p, NULL);
	put(&o, "\r\n", 2);
	o.p[o.len] = '\0';
	out->head = o.p;
	out->head_len = o.len;
	out->body_offset = hs->body_offset;
	if (p->from != NULL)
		out->changes |= hs->nfrom > 0 ? IDENTITY_FROM_REPLACED : IDENTITY_FROM_ADDED;
	if (p->reply_to != NULL)
		out->changes |= p->mode == IDENTITY_MAP ? IDENTITY_REPLY_TO_REPLACED :
		    IDENTITY_REPLY_TO_ADDED;
}

int
identity_rewrite_header(const char *content, size_t len, enum identity_mode mode,
    const char *address, struct identity_header *out, struct err *err)
{
	enum address_result ar = address_check(address, strlen(address), 0);
	struct plan plan = { .mode = mode };
	struct header_scan hs;

	memset(out, 0, sizeof *out);
	if (ar != ADDRESS_OK)
		return err_set(err, "the identity '%.64s' is not an address: %s", address,
		    address_result_text(ar));
	if (scan_header(content, len, &hs, err) != 0)
		return -1;
	if (!plan_changes(&plan, &hs, address))
		return 0;
	build(out, content, &hs, &plan);
	free(plan.from);
	free(plan.reply_to);
	return 1;
}

void
identity_header_free(struct identity_header *h)
{
	if (h == NULL)
		return;
	free(h->head);
	memset(h, 0, sizeof *h);
}

/* --- the from-map ---------------------------------------------------------- */

struct map_entry {
	char *key;              /* NULL: a free slot; domains in lower case */
	char *from;
	int line;
};

/* Open addressing with linear probing: one lookup per message, whatever the
 * size of the map, and duplicates found while parsing. */
struct identity_map {
	struct map_entry *slots;
	size_t nslots;          /* 0 or a power of two, at most half used */
	size_t count;
};

/* The slot holding key, or the free one where it would go (nslots > 0). */
static size_t
map_slot(const struct identity_map *map, const char *key)
{
	uint64_t h = 14695981039346656037u;     /* FNV-1a */
	size_t mask = map->nslots - 1, i;

	for (const char *k = key; *k != '\0'; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211u;
	for (i = (size_t)h & mask; map->slots[i].key != NULL; i = (i + 1) & mask)
		if (strcmp(map->slots[i].key, key) == 0)
			break;
	return i;
}

static const struct map_entry *
map_find(const struct identity_map *map, const char *key)
{
	const struct map_entry *e;

	if (map->nslots == 0)
		return NULL;
	e = &map->slots[map_slot(map, key)];
	return e->key != NULL ? e : NULL;
}

static void
map_grow(struct identity_map *map)
{
	struct identity_map old = *map;

	map->nslots = old.nslots ? 2 * old.nslots : 16;
	map->slots = xcalloc(map->nslots, sizeof *map->slots);
	for (size_t i = 0; i < old.nslots; i++)
		if (old.slots[i].key != NULL)
			map->slots[map_slot(map, old.slots[i].key)] = old.slots[i];
	free(old.slots);
}

/* key (room for n + 1) = s[0..n) with its domain in lower case: "*",
 * "@domain" or an address. */
static void
map_key(const char *s, size_t n, char *key)
{
	const char *domain;

	memcpy(key, s, n);
	key[n] = '\0';
	domain = key[0] == '@' ? key + 1 : address_domain(key);
	for (size_t i = domain != NULL ? (size_t)(domain - key) : n; i < n; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
}

struct map_loader {
	const char *file;
	struct identity_map *map;
	struct err *err;
	int line;
	size_t errors, dropped;
};

static void map_problem(struct map_loader *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One error per bad line, as many as fit into err. */
static void
map_problem(struct map_loader *ml, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	ml->errors++;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (ml->err == NULL || strlen(ml->err->msg) + strlen(ml->file) + strlen(text) + 100 >=
	    sizeof ml->err->msg) {
		ml->dropped++;
		return;
	}
	err_append(ml->err, "%s:%d: %s", ml->file, ml->line, text);
}

/* A field for a message: at most 60 octets, control characters as '?'. */
static const char *
shown(const char *s, size_t n, char *buf, size_t size)
{
	size_t m = 0;

	for (size_t i = 0; i < n && m + 4 < size; i++)
		buf[m++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (m < n) {
		m = m > 3 ? m - 3 : 0;
		memcpy(buf + m, "...", 3);
		m += 3;
	}
	buf[m] = '\0';
	return buf;
}

struct word {
	const char *s;
	size_t len;
};

/* Split a line at blanks into at most 3 words (3: too many); a word that
 * starts with '#' ends the line. */
static size_t
split_words(const char *line, size_t len, struct word w[3])
{
	size_t n = 0, i = 0;

	while (n < 3) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len || line[i] == '#')
			break;
		w[n].s = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		w[n].len = (size_t)(line + i - w[n].s);
		n++;
	}
	return n;
}

static int
check_recipient(struct map_loader *ml, const struct word *w)
{
	enum address_result r;
	char buf[64];

	if (w->len == 1 && w->s[0] == '*')
		return 0;
	if (w->s[0] == '@')
		r = address_check_domain(w->s + 1, w->len - 1, ADDRESS_ALLOW_UTF8);
	else
		r = address_check(w->s, w->len, ADDRESS_ALLOW_UTF8);
	if (r == ADDRESS_OK)
		return 0;
	map_problem(ml, "recipient '%s': %s; write an address, @domain or *",
	    shown(w->s, w->len, buf, sizeof buf), address_result_text(r));
	return -1;
}

static int
check_from(struct map_loader *ml, const struct word *w)
{
	enum address_result r = address_check(w->s, w->len, 0);
	char buf[64];

	if (r == ADDRESS_OK)
		return 0;
	map_problem(ml, "from-address '%s': %s", shown(w->s, w->len, buf, sizeof buf),
	    address_result_text(r));
	return -1;
}

static void
map_add(struct map_loader *ml, const struct word *rcpt, const struct word *from)
{
	struct identity_map *map = ml->map;
	char *key = xmalloc(rcpt->len + 1), buf[64];
	const struct map_entry *first;
	struct map_entry *e;

	map_key(rcpt->s, rcpt->len, key);
	if ((first = map_find(map, key)) != NULL) {
		map_problem(ml, "recipient '%s' again (first on line %d)",
		    shown(rcpt->s, rcpt->len, buf, sizeof buf), first->line);
		free(key);
		return;
	}
	if (2 * (map->count + 1) > map->nslots)
		map_grow(map);
	e = &map->slots[map_slot(map, key)];
	e->key = key;
	e->from = xstrndup(from->s, from->len);
	e->line = ml->line;
	map->count++;
}

static void
map_line(struct map_loader *ml, const char *line, size_t len)
{
	struct word w[3];
	size_t n = split_words(line, len, w);
	char buf[64];

	if (n == 1)
		map_problem(ml, "'%s' has no from-address; write RECIPIENT FROM-ADDRESS",
		    shown(w[0].s, w[0].len, buf, sizeof buf));
	else if (n == 3)
		map_problem(ml, "'%s' after the from-address; write RECIPIENT FROM-ADDRESS "
		    "(# starts a comment)", shown(w[2].s, w[2].len, buf, sizeof buf));
	else if (n == 2 && check_recipient(ml, &w[0]) == 0 && check_from(ml, &w[1]) == 0)
		map_add(ml, &w[0], &w[1]);
}

int
identity_map_parse(const char *text, size_t len, const char *file_name,
    struct identity_map **out, struct err *err)
{
	struct map_loader ml = { .file = file_name, .err = err };
	size_t pos = 0;

	*out = NULL;
	if (err != NULL)
		err->msg[0] = '\0';
	if (len > IDENTITY_MAP_MAX)
		return err_set(err, "%s: larger than %d octets", file_name, IDENTITY_MAP_MAX);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;                /* a UTF-8 byte order mark from an editor */
	ml.map = xcalloc(1, sizeof *ml.map);
	while (pos < len) {
		const char *lf = memchr(text + pos, '\n', len - pos);
		size_t end = lf != NULL ? (size_t)(lf - text) : len;

		ml.line++;
		map_line(&ml, text + pos, end > pos && text[end - 1] == '\r' ? end - pos - 1 :
		    end - pos);
		pos = end + 1;
	}
	if (ml.errors == 0) {
		*out = ml.map;
		return 0;
	}
	if (ml.dropped > 0)
		err_append(err, "%s: %zu more errors not shown", file_name, ml.dropped);
	identity_map_free(ml.map);
	return -1;
}

/* The recipient's own entry, else its domain's. */
static const struct map_entry *
rcpt_entry(const struct identity_map *map, const char *rcpt)
{
	char key[ADDRESS_MAX + 2];
	size_t n = strlen(rcpt);
	const struct map_entry *e;
	const char *domain;

	if (n >= sizeof key)
		return NULL;
	map_key(rcpt, n, key);
	if ((e = map_find(map, key)) != NULL)
		return e;
	domain = address_domain(key);
	return domain != NULL ? map_find(map, domain - 1) : NULL;
}

const char *
identity_map_lookup(const struct identity_map *map, const char *const *rcpts,
    size_t nrcpts, int *line)
{
	const struct map_entry *e = NULL;

	if (nrcpts == 1)
		e = rcpt_entry(map, rcpts[0]);
	if (e == NULL)
		e = map_find(map, "*");
	if (line != NULL)
		*line = e != NULL ? e->line : 0;
	return e != NULL ? e->from : NULL;
}

size_t
identity_map_count(const struct identity_map *map)
{
	return map->count;
}

void
identity_map_free(struct identity_map *map)
{
	if (map == NULL)
		return;
	for (size_t i = 0; i < map->nslots; i++) {
		free(map->slots[i].key);
		free(map->slots[i].from);
	}
	free(map->slots);
	free(map);
}
