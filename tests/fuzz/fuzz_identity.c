/* fuzz_identity.c - libFuzzer harness for identity.h: the input is both a
 * message, rewritten in each mode (to a fixed identity, or to what the input
 * read as a from-map gives a recipient), and a from-map file.
 * Invariants: a new header is a well-formed header (CRLF lines of at most 998
 * octets, no bare CR or LF, fields up to the empty line that ends it, one
 * From:), the body offset lies inside the input, and rewriting the result
 * again changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_lines(const char *head, size_t len)
{
	size_t col = 0;

	if (len < 2 || memcmp(head + len - 2, "\r\n", 2) != 0 || head[len] != '\0')
		abort();
	for (size_t i = 0; i < len; i++) {
		if (head[i] == '\n')
			abort();
		if (head[i] != '\r') {
			if (++col > RFC5322_LINE_MAX)
				abort();
			continue;
		}
		if (i + 1 == len || head[i + 1] != '\n')
			abort();
		col = 0;
		i++;
	}
}

/* Fields, then the empty line at its very end; one From:, Reply-To: as the
 * mode allows. */
static void
check_fields(const struct identity_header *h, enum identity_mode mode)
{
	struct rfc5322_iter it;
	struct rfc5322_field f;
	size_t nfrom = 0, nreply_to = 0;

	rfc5322_iter_init(&it, h->head, h->head_len);
	while (rfc5322_next(&it, &f) == RFC5322_FIELD) {
		nfrom += rfc5322_field_is(&f, "From");
		nreply_to += rfc5322_field_is(&f, "Reply-To");
	}
	if (it.done != RFC5322_END || it.body_offset != h->head_len || nfrom != 1 ||
	    (mode == IDENTITY_MAP && nreply_to > 1))
		abort();
}

static void
rewrite(const char *msg, size_t size, enum identity_mode mode, const char *address)
{
	struct identity_header h, again;
	struct err err;
	int rc = identity_rewrite_header(msg, size, mode, address, &h, &err);

	if (rc != 1) {
		if ((rc != 0 && rc != -1) || h.head != NULL)
			abort();
		return;
	}
	if (h.body_offset > size || h.changes == 0)
		abort();
	check_lines(h.head, h.head_len);
	check_fields(&h, mode);
	if (h.head_len < IDENTITY_HEADER_MAX &&
	    identity_rewrite_header(h.head, h.head_len, mode, address, &again, &err) != 0)
		abort();
	identity_header_free(&h);
}

/* The input as a from-map: an identity for a recipient it may name. */
static void
map(const char *text, size_t size, char *address, size_t address_size)
{
	static const char *const rcpts[] = { "bob@friends.example", "x@SHOP.example" };
	struct identity_map *m;
	struct err err;
	const char *from;
	int line;

	if (identity_map_parse(text, size, "fuzz.map", &m, &err) != 0) {
		if (m != NULL || err.msg[0] == '\0')
			abort();
		return;
	}
	for (size_t n = 0; n <= 2; n++) {
		from = identity_map_lookup(m, rcpts, n, &line);
		if ((from == NULL) != (line == 0))
			abort();
		if (from != NULL && strlen(from) < address_size)
			strcpy(address, from);
	}
	identity_map_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char address[300] = "acct@relay.example";

	map(in, size, address, sizeof address);
	rewrite(in, size, IDENTITY_REWRITE, address);
	rewrite(in, size, IDENTITY_MAP, address);
	return 0;
}
