/* rfc5322.c - header field iterator, address-list parser, folding (RFC 5322
 * §2.1.1 line lengths, §2.2 header fields and folding, §3.2 lexical tokens,
 * §3.4 addresses, §4 obsolete syntax that real mail still carries:
 * obs-route, obs-local-part, obs-phrase, empty list elements).
 *
 * SECURITY: the input is untrusted (any local user's message, any relayed
 * message).  Pure: no I/O, no allocation, no recursion (nested comments are
 * counted, groups cannot nest); every read is bounded by the caller's length,
 * the addr-spec handed to the callback by RFC5322_ADDR_MAX, and what
 * unfolding and folding write by the caller's buffer. */
#include <string.h>
#include <strings.h>

#include "rfc5322.h"

/* --- header fields -------------------------------------------------------- */

void
rfc5322_iter_init(struct rfc5322_iter *it, const char *msg, size_t len)
{
	it->buf = msg;
	it->len = len;
	it->pos = 0;
	it->body_offset = 0;
	it->done = 0;
}

/* The line starting at `start`: returns where its content ends (before CRLF
 * or LF) and sets *next to the first octet after its line end. */
static size_t
line_end(const struct rfc5322_iter *it, size_t start, size_t *next)
{
	const char *lf = memchr(it->buf + start, '\n', it->len - start);
	size_t end;

	if (lf == NULL) {
		*next = it->len;
		end = it->len;
	} else {
		end = (size_t)(lf - it->buf);
		*next = end + 1;
	}
	if (end > start && it->buf[end - 1] == '\r')
		end--;
	return end;
}

static bool
is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static enum rfc5322_next_result
iter_stop(struct rfc5322_iter *it, enum rfc5322_next_result r, size_t body)
{
	it->body_offset = body;
	it->done = (int)r;
	return r;
}

enum rfc5322_next_result
rfc5322_next(struct rfc5322_iter *it, struct rfc5322_field *f)
{
	size_t start = it->pos, eol, next, name_end, colon, last_eol;

	if (it->done)
		return (enum rfc5322_next_result)it->done;
	if (start >= it->len)
		return iter_stop(it, RFC5322_EOF, it->len);
	eol = line_end(it, start, &next);
	if (eol == start && next > start && it->buf[next - 1] == '\n')
		return iter_stop(it, RFC5322_END, next);

	for (name_end = start; name_end < eol && is_ftext((unsigned char)it->buf[name_end]); name_end++)
		;
	for (colon = name_end; colon < eol && is_wsp(it->buf[colon]); colon++)
		;
	if (name_end == start || colon >= eol || it->buf[colon] != ':')
		return iter_stop(it, RFC5322_NOT_FIELD, start);

	/* Unfolding (§2.2.3): a following line starting with WSP continues it. */
	last_eol = eol;
	while (next < it->len && is_wsp(it->buf[next]))
		last_eol = line_end(it, next, &next);

	f->name = it->buf + start;
	f->name_len = name_end - start;
	f->value = it->buf + colon + 1;
	f->value_len = last_eol - (colon + 1);
	f->raw = it->buf + start;
	f->raw_len = next - start;
	it->pos = next;
	return RFC5322_FIELD;
}

bool
rfc5322_field_is(const struct rfc5322_field *f, const char *name)
{
	size_t len = strlen(name);

	return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

/* --- address lists: tokens ------------------------------------------------- */

enum tok_type {
	TOK_END,
	TOK_ATOM,       /* 1*atext */
	TOK_QUOTED,     /* "..." with the quotes */
	TOK_LITERAL,    /* [...] with the brackets */
	TOK_SPECIAL,    /* one of < > @ , ; : . */
	TOK_BAD,        /* unterminated comment/quote/literal, stray octet */
};

struct tok {
	enum tok_type type;
	const char *s;
	size_t len;
};

struct lexer {
	const char *p, *end;
	const char *comment;   /* the first comment the last skip_cfws passed,
	                        * inside its parentheses; NULL: none */
	size_t comment_len;
};

/* atext (§3.2.3), plus UTF-8 octets (RFC 6532 §3.2). */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	if (c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_special(char c)
{
	switch (c) {
	case '<': case '>': case '@': case ',': case ';': case ':': case '.':
		return true;
	default:
		return false;
	}
}

/* CFWS (§3.2.2): whitespace, folding line ends and comments, which nest and
 * may contain quoted-pairs.  false: a comment is not closed.  The first
 * comment is remembered: it may be an old-style name ("a@b (Bob)"). */
static bool
skip_cfws(struct lexer *lx)
{
	lx->comment = NULL;
	lx->comment_len = 0;
	while (lx->p < lx->end) {
		char c = *lx->p;
		const char *open;
		unsigned depth;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->p++;
			continue;
		}
		if (c != '(')
			return true;
		open = ++lx->p;
		for (depth = 1; depth > 0; ) {
			if (lx->p >= lx->end)
				return false;
			c = *lx->p++;
			if (c == '\\') {
				if (lx->p >= lx->end)
					return false;
				lx->p++;
			} else if (c == '(') {
				depth++;
			} else if (c == ')') {
				depth--;
			}
		}
		if (lx->comment == NULL) {
			lx->comment = open;
			lx->comment_len = (size_t)(lx->p - 1 - open);
		}
	}
	return true;
}

/* A quoted string or domain literal starting at lx->p; quoted-pairs kept. */
static enum tok_type
lex_delimited(struct lexer *lx, char close, enum tok_type type)
{
	const char *q = lx->p + 1;

	for (;;) {
		if (q >= lx->end)
			return TOK_BAD;
		if (*q == '\\') {
			if (++q >= lx->end)
				return TOK_BAD;
		} else if (*q == close) {
			break;
		} else if (close == ']' && *q == '[') {
			return TOK_BAD;
		}
		q++;
	}
	lx->p = q + 1;
	return type;
}

static void
lex(struct lexer *lx, struct tok *t)
{
	t->type = TOK_BAD;
	t->len = 0;
	if (!skip_cfws(lx))
		return;
	t->s = lx->p;
	if (lx->p >= lx->end) {
		t->type = TOK_END;
	} else if (is_atext((unsigned char)*lx->p)) {
		while (lx->p < lx->end && is_atext((unsigned char)*lx->p))
			lx->p++;
		t->type = TOK_ATOM;
	} else if (*lx->p == '"') {
		t->type = lex_delimited(lx, '"', TOK_QUOTED);
	} else if (*lx->p == '[') {
		t->type = lex_delimited(lx, ']', TOK_LITERAL);
	} else if (is_special(*lx->p)) {
		lx->p++;
		t->type = TOK_SPECIAL;
	}
	if (t->type != TOK_BAD)
		t->len = (size_t)(lx->p - t->s);
}

static void
peek(const struct lexer *lx, struct tok *t)
{
	struct lexer copy = *lx;

	lex(&copy, t);
}

static bool
tok_is(const struct tok *t, char special)
{
	return t->type == TOK_SPECIAL && t->s[0] == special;
}

/* --- address lists: grammar ------------------------------------------------ */

enum { PARSE_OK = 0, PARSE_BAD = -1, PARSE_STOP = 1 };

struct addr_parser {
	struct lexer lx;
	int (*found)(void *, const struct rfc5322_mailbox *);
	void *ctx;
	int stop_value;                    /* what `found` returned to stop */
	struct rfc5322_mailbox mb;         /* name and in_group of the mailbox
	                                    * being parsed */
	const char *words;                 /* what the last parse_words took, */
	size_t words_len;                  /* from its first token to its last */
	char addr[RFC5322_ADDR_MAX + 1];   /* the addr-spec being built */
	size_t addr_len;
	bool overflow;                     /* addr did not fit */
};

enum put_mode { PUT_AS_IS, PUT_UNFOLD, PUT_NO_WSP };

/* Append to the addr-spec: unfolded (CR/LF dropped) for quoted strings,
 * without any whitespace for domain literals. */
static void
put(struct addr_parser *ap, const char *s, size_t n, enum put_mode mode)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (mode != PUT_AS_IS && (c == '\r' || c == '\n'))
			continue;
		if (mode == PUT_NO_WSP && (c == ' ' || c == '\t'))
			continue;
		if (ap->addr_len >= RFC5322_ADDR_MAX) {
			ap->overflow = true;
			return;
		}
		ap->addr[ap->addr_len++] = c;
	}
}

/* The mailbox ends at ap->lx: hand it over, with the comment that follows
 * it as its name when it has no display name. */
static int
report(struct addr_parser *ap)
{
	struct lexer after = ap->lx;
	int r;

	if (ap->overflow)
		return PARSE_BAD;
	ap->addr[ap->addr_len] = '\0';
	ap->mb.addr = ap->addr;
	ap->mb.addr_len = ap->addr_len;
	ap->mb.comment = NULL;
	ap->mb.comment_len = 0;
	if (ap->mb.name == NULL && skip_cfws(&after)) {
		ap->mb.comment = after.comment;
		ap->mb.comment_len = after.comment_len;
	}
	r = ap->found(ap->ctx, &ap->mb);
	if (r != 0) {
		ap->stop_value = r;
		return PARSE_STOP;
	}
	return PARSE_OK;
}

/* domain = dot-atom / domain-literal / obs-domain (atom *("." atom)). */
static int
parse_domain(struct addr_parser *ap)
{
	struct tok t;

	lex(&ap->lx, &t);
	if (t.type == TOK_LITERAL) {
		put(ap, t.s, t.len, PUT_NO_WSP);
		return PARSE_OK;
	}
	if (t.type != TOK_ATOM)
		return PARSE_BAD;
	put(ap, t.s, t.len, PUT_AS_IS);
	for (;;) {
		peek(&ap->lx, &t);
		if (!tok_is(&t, '.'))
			return PARSE_OK;
		lex(&ap->lx, &t);
		lex(&ap->lx, &t);
		if (t.type != TOK_ATOM)
			return PARSE_BAD;
		put(ap, ".", 1, PUT_AS_IS);
		put(ap, t.s, t.len, PUT_AS_IS);
	}
}

/* Words and dots: a display name (phrase, obs-phrase) or a local part
 * (dot-atom, quoted-string, obs-local-part) - which one is known only from
 * what follows, so it is copied to addr as a local part and its span is
 * kept in ap->words as a name.  *local_ok: no two words stand side by side
 * (only then can it be a local part). */
static int
parse_words(struct addr_parser *ap, size_t *nwords, bool *local_ok)
{
	bool prev_word = false;
	struct tok t;

	ap->addr_len = 0;
	ap->overflow = false;
	ap->words = NULL;
	ap->words_len = 0;
	*nwords = 0;
	*local_ok = true;
	for (;;) {
		peek(&ap->lx, &t);
		if (t.type == TOK_BAD)
			return PARSE_BAD;
		if (t.type == TOK_ATOM || t.type == TOK_QUOTED) {
			if (prev_word)
				*local_ok = false;
			put(ap, t.s, t.len, t.type == TOK_QUOTED ? PUT_UNFOLD : PUT_AS_IS);
			prev_word = true;
			(*nwords)++;
		} else if (tok_is(&t, '.')) {
			put(ap, ".", 1, PUT_AS_IS);
			prev_word = false;
		} else {
			return PARSE_OK;
		}
		if (ap->words == NULL)
			ap->words = t.s;
		ap->words_len = (size_t)(t.s + t.len - ap->words);
		lex(&ap->lx, &t);
	}
}

/* After '<': [obs-route] addr-spec '>'.  The route is parsed and dropped. */
static int
parse_angle(struct addr_parser *ap)
{
	size_t nwords;
	bool local_ok;
	struct tok t;

	peek(&ap->lx, &t);
	if (tok_is(&t, '@') || tok_is(&t, ',')) {
		/* obs-route = obs-domain-list ":" (§4.4); the list may start
		 * with empty elements. */
		for (; tok_is(&t, ','); peek(&ap->lx, &t))
			lex(&ap->lx, &t);
		if (!tok_is(&t, '@'))
			return PARSE_BAD;
		do {
			lex(&ap->lx, &t);
			ap->addr_len = 0;
			if (parse_domain(ap) != PARSE_OK)
				return PARSE_BAD;
			for (peek(&ap->lx, &t); tok_is(&t, ','); peek(&ap->lx, &t))
				lex(&ap->lx, &t);
		} while (tok_is(&t, '@'));
		lex(&ap->lx, &t);
		if (!tok_is(&t, ':'))
			return PARSE_BAD;
	}
	if (parse_words(ap, &nwords, &local_ok) != PARSE_OK || nwords == 0 || !local_ok)
		return PARSE_BAD;
	lex(&ap->lx, &t);
	if (tok_is(&t, '@')) {
		put(ap, "@", 1, PUT_AS_IS);
		if (parse_domain(ap) != PARSE_OK)
			return PARSE_BAD;
		lex(&ap->lx, &t);
	}
	if (!tok_is(&t, '>'))
		return PARSE_BAD;
	return report(ap);
}

static int parse_group(struct addr_parser *);

/* address = mailbox / group; mailbox = name-addr / addr-spec. */
static int
parse_address(struct addr_parser *ap, bool in_group)
{
	size_t nwords;
	bool local_ok;
	struct tok t;

	ap->mb.name = NULL;
	ap->mb.name_len = 0;
	ap->mb.in_group = in_group;
	if (parse_words(ap, &nwords, &local_ok) != PARSE_OK)
		return PARSE_BAD;
	peek(&ap->lx, &t);
	if (tok_is(&t, '@')) {
		if (nwords == 0 || !local_ok)
			return PARSE_BAD;
		lex(&ap->lx, &t);
		put(ap, "@", 1, PUT_AS_IS);
		if (parse_domain(ap) != PARSE_OK)
			return PARSE_BAD;
		return report(ap);
	}
	if (tok_is(&t, '<')) {
		lex(&ap->lx, &t);
		if (nwords > 0) {
			ap->mb.name = ap->words;
			ap->mb.name_len = ap->words_len;
		}
		return parse_angle(ap);
	}
	if (tok_is(&t, ':')) {
		if (in_group || nwords == 0)
			return PARSE_BAD;
		lex(&ap->lx, &t);
		return parse_group(ap);
	}
	/* A bare local part ("root"), only when a list separator follows. */
	if (nwords > 0 && local_ok && (t.type == TOK_END || tok_is(&t, ',') || tok_is(&t, ';')))
		return report(ap);
	return PARSE_BAD;
}

/* After "display-name:": [group-list] ";" - the ';' may be missing at the
 * end of the value (seen in the wild as "undisclosed-recipients:"). */
static int
parse_group(struct addr_parser *ap)
{
	struct tok t;
	int r;

	for (;;) {
		peek(&ap->lx, &t);
		if (t.type == TOK_END)
			return PARSE_OK;
		if (t.type == TOK_BAD)
			return PARSE_BAD;
		if (tok_is(&t, ';') || tok_is(&t, ',')) {
			lex(&ap->lx, &t);
			if (tok_is(&t, ';'))
				return PARSE_OK;
			continue;
		}
		if ((r = parse_address(ap, true)) != PARSE_OK)
			return r;
		peek(&ap->lx, &t);
		if (t.type != TOK_END && !tok_is(&t, ',') && !tok_is(&t, ';'))
			return PARSE_BAD;
	}
}

int
rfc5322_parse_mailboxes(const char *value, size_t len,
    int (*found)(void *ctx, const struct rfc5322_mailbox *mb), void *ctx)
{
	struct addr_parser ap = { .lx = { .p = value, .end = value + len }, .found = found,
	    .ctx = ctx };
	struct tok t;
	int r;

	for (;;) {
		peek(&ap.lx, &t);
		if (t.type == TOK_END)
			return 0;
		if (tok_is(&t, ',')) {
			lex(&ap.lx, &t);
			continue;
		}
		r = parse_address(&ap, false);
		if (r == PARSE_STOP)
			return ap.stop_value;
		if (r != PARSE_OK)
			return -1;
		lex(&ap.lx, &t);
		if (t.type == TOK_END)
			return 0;
		if (!tok_is(&t, ','))
			return -1;
	}
}

struct addr_only {
	int (*found)(void *, const char *, size_t);
	void *ctx;
};

static int
found_addr_only(void *ctx, const struct rfc5322_mailbox *mb)
{
	struct addr_only *ao = ctx;

	return ao->found(ao->ctx, mb->addr, mb->addr_len);
}

int
rfc5322_parse_addresses(const char *value, size_t len,
    int (*found)(void *ctx, const char *addr, size_t addr_len), void *ctx)
{
	struct addr_only ao = { found, ctx };

	return rfc5322_parse_mailboxes(value, len, found_addr_only, &ao);
}

/* --- unfolding and folding ------------------------------------------------- */

/* Where a structured value is: WSP inside a quoted string is content, so
 * neither a place to fold nor to collapse.  In a comment it is FWS (§3.2.2),
 * but a '"' there is only ctext, so comments are tracked too. */
struct text_scan {
	unsigned depth;       /* comment nesting */
	bool quoted;
	bool escaped;         /* the octet before was a quoted-pair's '\' */
};

/* Take one octet; true when it is WSP that may be folded or collapsed. */
static bool
scan_free_wsp(struct text_scan *ts, char c)
{
	if (ts->escaped) {
		ts->escaped = false;
		return false;
	}
	if (c == '\\' && (ts->quoted || ts->depth > 0))
		ts->escaped = true;
	else if (c == '"' && ts->depth == 0)
		ts->quoted = !ts->quoted;
	else if (c == '(' && !ts->quoted)
		ts->depth++;
	else if (c == ')' && !ts->quoted && ts->depth > 0)
		ts->depth--;
	return is_wsp(c) && !ts->quoted;
}

/* A CRLF or LF at value[i] that folding put before WSP: its length, or 0. */
static size_t
fold_break(const char *value, size_t len, size_t i)
{
	size_t n = value[i] == '\r' && i + 1 < len && value[i + 1] == '\n' ? 2 :
	    value[i] == '\n' ? 1 : 0;

	return n > 0 && i + n < len && is_wsp(value[i + n]) ? n : 0;
}

size_t
rfc5322_unfold(const char *value, size_t len, char *out, unsigned flags)
{
	struct text_scan ts = { 0 };
	bool collapse = flags & RFC5322_COLLAPSE, gap = false;
	size_t n = 0, brk;

	for (size_t i = 0; i < len; i++) {
		if ((brk = fold_break(value, len, i)) > 0) {
			i += brk - 1;
			continue;
		}
		if (collapse && scan_free_wsp(&ts, value[i])) {
			gap = true;
			continue;
		}
		/* n < i here whenever a gap was dropped: out may be value. */
		if (gap && n > 0)
			out[n++] = ' ';
		gap = false;
		out[n++] = value[i];
	}
	return n;
}

/* snprintf-like output: what fits is written, the length always counts. */
struct fold_out {
	char *p;
	size_t size, len;
};

static void
fold_put(struct fold_out *o, const char *s, size_t n)
{
	if (o->len < o->size)
		memcpy(o->p + o->len, s, n < o->size - o->len ? n : o->size - o->len);
	o->len += n;
}

/* The next unit at value[*i]: a run of WSP (`gap`, may be empty) and the
 * token after it, up to the next WSP outside quoted strings. */
static size_t
fold_unit(const char *value, size_t len, size_t *i, struct text_scan *ts)
{
	size_t start = *i;

	while (*i < len && is_wsp(value[*i]))
		(*i)++;
	while (*i < len && !scan_free_wsp(ts, value[*i]))
		(*i)++;
	return *i - start;
}

size_t
rfc5322_fold(const char *name, const char *value, size_t len, char *out, size_t size)
{
	struct fold_out o = { out, size, 0 };
	struct text_scan ts = { 0 };
	size_t i = 0, col, unit;

	while (len > 0 && is_wsp(value[len - 1]))
		len--;
	while (i < len && is_wsp(value[i]))
		i++;
	if (memchr(value + i, '\r', len - i) != NULL || memchr(value + i, '\n', len - i) != NULL)
		return 0;
	fold_put(&o, name, strlen(name));
	fold_put(&o, ":", 1);
	col = o.len;
	for (bool first = true; i < len; first = false) {
		size_t start = i;

		unit = fold_unit(value, len, &i, &ts) + (first ? 1 : 0);
		/* After "Name:" only a token that cannot fit at all moves down. */
		if ((col + unit > RFC5322_LINE_SOFT && !first) || col + unit > RFC5322_LINE_MAX) {
			fold_put(&o, "\r\n", 2);
			col = 0;
		}
		if (col + unit > RFC5322_LINE_MAX)
			return 0;
		if (first)
			fold_put(&o, " ", 1);
		fold_put(&o, value + start, i - start);
		col += unit;
	}
	fold_put(&o, "\r\n", 2);
	if (o.len < size)
		out[o.len] = '\0';
	return o.len;
}
