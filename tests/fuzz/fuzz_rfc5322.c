/* fuzz_rfc5322.c - libFuzzer harness for rfc5322.h: iterate the header
 * fields of the input and parse each field's value as an address list (as
 * sendmail -t does) and as mailboxes with their names (as identity.c does),
 * then the whole input as one value; unfold each value and fold it again.
 * Invariants: every result lies inside the input, addresses fit the limit,
 * both parsers agree, a folded field has CRLF lines of at most 998 octets
 * and unfolds to the value it was made from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
	const char *start, *end;
	size_t count;
};

static int
check_addr(void *ctx, const char *addr, size_t len)
{
	struct span *v = ctx;

	if (len > RFC5322_ADDR_MAX || strlen(addr) > len || addr[len] != '\0')
		abort();
	return ++v->count > 1000;     /* also exercises stopping */
}

static int
check_mailbox(void *ctx, const struct rfc5322_mailbox *mb)
{
	struct span *v = ctx;

	if (mb->name != NULL && (mb->name < v->start || mb->name + mb->name_len > v->end ||
	    mb->name_len == 0 || mb->comment != NULL))
		abort();
	if (mb->comment != NULL && (mb->comment - 1 < v->start ||
	    mb->comment + mb->comment_len >= v->end || mb->comment[-1] != '(' ||
	    mb->comment[mb->comment_len] != ')'))
		abort();
	return check_addr(ctx, mb->addr, mb->addr_len);
}

static void
parse_both(const char *value, size_t len)
{
	struct span a = { value, value + len, 0 }, m = a;
	int ra = rfc5322_parse_addresses(value, len, check_addr, &a);
	int rm = rfc5322_parse_mailboxes(value, len, check_mailbox, &m);

	if (ra != rm || a.count != m.count)
		abort();
}

static void
check_folded(const char *out, size_t n, const char *value, size_t len)
{
	static char back[2 * 65536 + 16];
	size_t col = 0, b;

	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\n' || (out[i] == '\r' && (i + 1 == n || out[i + 1] != '\n')))
			abort();
		if (out[i] == '\r') {
			col = 0;
			i++;
		} else if (++col > RFC5322_LINE_MAX) {
			abort();
		}
	}
	/* "X:" and, when the value is not empty, " value". */
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	while (len > 0 && (value[0] == ' ' || value[0] == '\t'))
		value++, len--;
	if (n < 4 || n - 2 > sizeof back)
		abort();
	b = rfc5322_unfold(out, n - 2, back, 0);
	if (b != 2 + (len ? 1 + len : 0) || memcmp(back, "X:", 2) != 0 ||
	    (len > 0 && memcmp(back + 3, value, len) != 0))
		abort();
}

static void
fold_both(const char *value, size_t len)
{
	static char unfolded[65536], out[2 * 65536 + 16];
	char small[7];
	size_t u, n;

	if (len > sizeof unfolded)
		return;
	for (unsigned flags = 0; flags <= RFC5322_COLLAPSE; flags++) {
		u = rfc5322_unfold(value, len, unfolded, flags);
		if (u > len)
			abort();
		n = rfc5322_fold("X", unfolded, u, out, sizeof out);
		if (n == 0)
			continue;
		if (n >= sizeof out || out[n] != '\0' ||
		    rfc5322_fold("X", unfolded, u, small, sizeof small) != n ||
		    memcmp(small, out, n < sizeof small ? n + 1 : sizeof small) != 0)
			abort();
		check_folded(out, n, unfolded, u);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct rfc5322_iter it;
	struct rfc5322_field f;
	enum rfc5322_next_result r;

	rfc5322_iter_init(&it, msg, size);
	while ((r = rfc5322_next(&it, &f)) == RFC5322_FIELD) {
		if (f.raw < msg || f.raw + f.raw_len > msg + size ||
		    f.value < f.raw || f.value + f.value_len > f.raw + f.raw_len ||
		    f.name != f.raw || f.name_len == 0)
			abort();
		(void)rfc5322_field_is(&f, "To");
		parse_both(f.value, f.value_len);
		fold_both(f.value, f.value_len);
	}
	if (it.body_offset > size || rfc5322_next(&it, &f) != r)
		abort();
	parse_both(msg, size);
	fold_both(msg, size);
	return 0;
}
