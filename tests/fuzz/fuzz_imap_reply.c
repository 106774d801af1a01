/* fuzz_imap_reply.c - libFuzzer harness for the IMAP half of login_parse.h:
 * each line of the input (split at '\n', one trailing '\r' dropped as
 * netio does) goes to login_imap_parse_line three times (expecting no tag,
 * the tag "a1", and the line's own first word so that tagged replies are
 * reached whatever the input), to login_imap_literal, and every capability
 * list found to login_imap_caps_parse; then the whole input as one line.
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
#include <strings.h>

#include "fuzz_login_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TAG_MAX 32

/* Is there an "AUTH=" (any case) in list[0..len)?  Bounded: the list is
 * not NUL-terminated. */
static bool
has_auth(const char *list, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++)
		if (strncasecmp(list + i, "AUTH=", 5) == 0)
			return true;
	return false;
}

static void
check_caps(const char *list, size_t len)
{
	struct login_imap_caps c;

	memset(&c, 0x5a, sizeof c);
	login_imap_caps_parse(list, len, &c);
	check_mech_list(c.mechs, sizeof c.mechs, LOGIN_MECH_LEN_MAX);
	if (c.mechs[0] != '\0' && !has_auth(list, len))
		abort();
}

/* A status line's code: "[" name [" " args] "]" before the text. */
static void
check_code(const struct login_imap_line *l, const char *line, size_t len)
{
	const char *c = l->code_name.s;

	if ((l->code == LOGIN_IMAP_CODE_NONE) != (c == NULL) || l->code > LOGIN_IMAP_CODE_OTHER)
		abort();
	if ((l->caps.s != NULL) != (l->code == LOGIN_IMAP_CODE_CAPABILITY))
		abort();
	if (c == NULL) {
		if (l->code_args.s != NULL)
			abort();
		return;
	}
	if (l->code_name.len == 0 || c == line || c[-1] != '[' ||
	    memchr(c, ']', l->code_name.len) != NULL || memchr(c, ' ', l->code_name.len) != NULL)
		abort();
	if (l->code_args.s != NULL && (l->code_args.s != c + l->code_name.len + 1 ||
	    memchr(l->code_args.s, ']', l->code_args.len) != NULL ||
	    l->code_args.s + l->code_args.len >= line + len ||
	    l->code_args.s[l->code_args.len] != ']'))
		abort();
	if (l->code_args.s == NULL && c[l->code_name.len] != ']')
		abort();
	if (l->code == LOGIN_IMAP_CODE_CAPABILITY && l->code_args.s != NULL &&
	    (l->caps.s != l->code_args.s || l->caps.len != l->code_args.len))
		abort();
}

static void
check_untagged_data(const struct login_imap_line *l, const char *line, size_t len)
{
	size_t n = 99;
	int r = login_imap_literal(line, len, &n);

	if (r != (l->literal ? 1 : 0) || n != l->literal_len || l->code != LOGIN_IMAP_CODE_NONE ||
	    l->code_name.s != NULL || l->code_args.s != NULL)
		abort();
	if (l->literal && (l->literal_len > LOGIN_IMAP_LITERAL_MAX || line[len - 1] != '}'))
		abort();
	if (l->text.s != line + 2)
		abort();
	if (l->caps.s != NULL && strncasecmp(line + 2, "CAPABILITY", 10) != 0)
		abort();
}

static void
check_kind(const struct login_imap_line *l, const char *line, size_t len, const char *tag)
{
	switch (l->kind) {
	case LOGIN_IMAP_UNTAGGED:
		if (len < 3 || line[0] != '*' || line[1] != ' ' || l->tag.s != NULL)
			abort();
		if (l->status == LOGIN_IMAP_STATUS_NONE)
			check_untagged_data(l, line, len);
		else if (l->literal)
			abort();
		break;
	case LOGIN_IMAP_CONTINUE:
		if (line[0] != '+' || l->status != LOGIN_IMAP_STATUS_NONE ||
		    l->code != LOGIN_IMAP_CODE_NONE || l->caps.s != NULL || l->literal)
			abort();
		break;
	case LOGIN_IMAP_TAGGED:
		if (tag == NULL || l->tag.s != line || l->tag.len != strlen(tag) ||
		    memcmp(line, tag, l->tag.len) != 0 || l->literal)
			abort();
		if (l->status != LOGIN_IMAP_STATUS_OK && l->status != LOGIN_IMAP_STATUS_NO &&
		    l->status != LOGIN_IMAP_STATUS_BAD)
			abort();
		break;
	default:
		abort();
	}
	if (l->status != LOGIN_IMAP_STATUS_NONE)
		check_code(l, line, len);
}

static void
check_line(const char *line, size_t len, const char *tag)
{
	struct login_imap_line l;
	enum login_imap_kind k;

	memset(&l, 0x5a, sizeof l);
	k = login_imap_parse_line(line, len, tag, &l);
	if (k != l.kind || (k == LOGIN_IMAP_INVALID) != (l.why != NULL))
		abort();
	check_span(l.tag, line, len, false);
	check_span(l.code_name, line, len, false);
	check_span(l.code_args, line, len, false);
	check_span(l.text, line, len, true);
	check_span(l.caps, line, len, false);
	if (k == LOGIN_IMAP_INVALID) {
		if (l.text.s != NULL || l.tag.s != NULL || l.caps.s != NULL || l.literal ||
		    l.status != LOGIN_IMAP_STATUS_NONE || l.code != LOGIN_IMAP_CODE_NONE)
			abort();
		return;
	}
	if (!line_ok(line, len) || l.text.s == NULL || len == 0)
		abort();
	if (strcmp(login_imap_status_name(l.status), "?") == 0 ||
	    strcmp(login_imap_kind_name(l.kind), "?") == 0)
		abort();
	check_kind(&l, line, len, tag);
	if (l.caps.s != NULL)
		check_caps(l.caps.s, l.caps.len);
}

static void
check_literal(const char *line, size_t len)
{
	size_t n = 99;
	int r = login_imap_literal(line, len, &n);

	if (r < -1 || r > 1 || (r != 1 && n != 0) || n > LOGIN_IMAP_LITERAL_MAX)
		abort();
	if (r == -1 && line_ok(line, len) && (len == 0 || line[len - 1] != '}'))
		abort();
	if (r == 1 && (!line_ok(line, len) || line[len - 1] != '}'))
		abort();
}

/* Every way of expecting a tag, the line's own first word included. */
static void
check_all(const char *line, size_t len)
{
	char tag[TAG_MAX + 1];
	size_t t = 0;

	while (t < len && t < TAG_MAX && line[t] != ' ' && line[t] != '\0')
		t++;
	memcpy(tag, line, t);
	tag[t] = '\0';
	check_line(line, len, NULL);
	check_line(line, len, "a1");
	check_line(line, len, tag);
	check_literal(line, len);
	check_caps(line, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		check_all(p, n);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	check_all((const char *)data, size);
	return 0;
}
