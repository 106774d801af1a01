/* fuzz_pop3_reply.c - libFuzzer harness for the POP3 half of login_parse.h:
 * each line of the input (split at '\n', one trailing '\r' dropped as
 * netio does) goes to login_pop3_parse_line, login_pop3_apop_timestamp,
 * login_pop3_parse_multi, login_pop3_parse_capa and, until it ends, to a
 * CAPA accumulator; then the whole input as one line.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks
 * the contracts of login_parse.h that login.c relies on: every span inside
 * its line, lengths within their limits, lists NUL-terminated and well
 * formed.  A broken one aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_login_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_print(char c)
{
	return c > ' ' && c < 0x7f;
}

static void
check_code(const struct login_pop3_line *l, const char *line, size_t len)
{
	const char *c = l->code_text.s;
	size_t n = l->code_text.len;

	if ((l->code == LOGIN_POP3_CODE_NONE) != (c == NULL))
		abort();
	if (c == NULL)
		return;
	if (n == 0 || n > LOGIN_CODE_MAX || c == line || c[-1] != '[' ||
	    c + n >= line + len || c[n] != ']' || l->text.s < c + n + 1)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!is_print(c[i]) || c[i] == ']')
			abort();
	if (strcmp(login_pop3_code_name(l->code), "?") == 0)
		abort();
}

static void
check_apop(const struct login_pop3_line *l, const char *line, size_t len)
{
	struct login_span ts;
	bool found = login_pop3_apop_timestamp(l, &ts);

	check_span(ts, line, len, false);
	if (!found) {
		if (ts.s != NULL)
			abort();
		return;
	}
	if (l->kind != LOGIN_POP3_OK || ts.len < 5 || ts.len > LOGIN_APOP_TIMESTAMP_MAX ||
	    ts.s[0] != '<' || ts.s[ts.len - 1] != '>' || ts.s < l->text.s ||
	    memchr(ts.s + 1, '@', ts.len - 2) == NULL)
		abort();
	for (size_t i = 1; i + 1 < ts.len; i++)
		if (!is_print(ts.s[i]) || ts.s[i] == '<' || ts.s[i] == '>')
			abort();
}

static void
check_line(const char *line, size_t len)
{
	struct login_pop3_line l;
	enum login_pop3_kind k;

	memset(&l, 0x5a, sizeof l);
	k = login_pop3_parse_line(line, len, &l);
	if (k != l.kind || k > LOGIN_POP3_INVALID || (k == LOGIN_POP3_INVALID) != (l.why != NULL))
		abort();
	check_span(l.code_text, line, len, false);
	check_span(l.text, line, len, true);
	if (k == LOGIN_POP3_INVALID) {
		if (l.text.s != NULL || l.code_text.s != NULL || l.code != LOGIN_POP3_CODE_NONE)
			abort();
		return;
	}
	if (!line_ok(line, len) || l.text.s == NULL)
		abort();
	if ((k == LOGIN_POP3_OK && (len < 3 || memcmp(line, "+OK", 3) != 0)) ||
	    (k == LOGIN_POP3_ERR && (len < 4 || memcmp(line, "-ERR", 4) != 0)) ||
	    (k == LOGIN_POP3_CONTINUE && (line[0] != '+' || l.code != LOGIN_POP3_CODE_NONE)))
		abort();
	check_code(&l, line, len);
	check_apop(&l, line, len);
}

static void
check_capa(const char *line, size_t len)
{
	struct login_pop3_capa capa;
	int r = login_pop3_parse_capa(line, len, &capa);

	check_span(capa.keyword, line, len, false);
	check_span(capa.args, line, len, false);
	if (r == -1) {
		if (capa.keyword.s != NULL || capa.args.s != NULL)
			abort();
		return;
	}
	if (r != 0 || capa.keyword.s != line || capa.keyword.len == 0 || capa.args.s == NULL)
		abort();
	for (size_t i = 0; i < capa.keyword.len; i++)
		if (!is_print(line[i]))
			abort();
	if (capa.args.len > 0 && (capa.args.s[0] == ' ' ||
	    capa.args.s[capa.args.len - 1] == ' ' || capa.args.s[capa.args.len - 1] == '\t'))
		abort();
}

static void
check_multi(const char *line, size_t len)
{
	struct login_span out;
	const char *why = "unset";
	enum login_pop3_multi m = login_pop3_parse_multi(line, len, &out, &why);

	check_span(out, line, len, true);
	if ((m == LOGIN_POP3_MULTI_INVALID) != (why != NULL) ||
	    (m == LOGIN_POP3_MULTI_INVALID) != !line_ok(line, len) ||
	    (m == LOGIN_POP3_MULTI_END) != (line_ok(line, len) && len == 1 && line[0] == '.') ||
	    (m == LOGIN_POP3_MULTI_LINE) != (out.s != NULL))
		abort();
	if (m == LOGIN_POP3_MULTI_LINE) {
		if (out.len != len - (len > 0 && line[0] == '.'))
			abort();
		check_capa(out.s, out.len);
	}
}

static void
check_caps(const struct login_pop3_caps *c, enum login_pop3_multi last)
{
	size_t ilen = strnlen(c->implementation, sizeof c->implementation);

	check_mech_list(c->mechs, sizeof c->mechs, LOGIN_MECH_LEN_MAX);
	if (ilen == sizeof c->implementation || c->nlines > LOGIN_LINES_MAX)
		abort();
	for (size_t i = 0; i < ilen; i++)
		if (c->implementation[i] < ' ' || c->implementation[i] > '~')
			abort();
	if (c->bad != (c->why != NULL) || (c->bad && c->done) ||
	    (last == LOGIN_POP3_MULTI_INVALID) != c->bad || (last == LOGIN_POP3_MULTI_END) != c->done)
		abort();
	if (c->bad && (c->mechs[0] != '\0' || c->stls || c->user || c->nlines != 0))
		abort();
	if (c->login_delay > 999999999UL || (!c->has_login_delay && c->login_delay != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct login_pop3_caps caps;
	enum login_pop3_multi last = LOGIN_POP3_MULTI_LINE;

	login_pop3_caps_init(&caps);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		check_line(p, n);
		check_multi(p, n);
		if (last != LOGIN_POP3_MULTI_INVALID) {     /* after END: "a line after" */
			last = login_pop3_caps_add(&caps, p, n);
			check_caps(&caps, last);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	/* the whole input as one line */
	check_line((const char *)data, size);
	check_multi((const char *)data, size);
	return 0;
}
