/* fuzz_rfc5322.c - libFuzzer harness for rfc5322.h: iterate the header
 * fields of the input and parse each field's value as an address list (as
 * sendmail -t does with To/Cc/Bcc), then the whole input as one value.
 * Invariants: every result lies inside the input, addresses fit the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
check_addr(void *ctx, const char *addr, size_t len)
{
	size_t *count = ctx;

	if (len > RFC5322_ADDR_MAX || strlen(addr) > len || addr[len] != '\0')
		abort();
	return ++*count > 1000;     /* also exercises stopping */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct rfc5322_iter it;
	struct rfc5322_field f;
	enum rfc5322_next_result r;
	size_t count = 0;

	rfc5322_iter_init(&it, msg, size);
	while ((r = rfc5322_next(&it, &f)) == RFC5322_FIELD) {
		if (f.raw < msg || f.raw + f.raw_len > msg + size ||
		    f.value < f.raw || f.value + f.value_len > f.raw + f.raw_len ||
		    f.name != f.raw || f.name_len == 0)
			abort();
		(void)rfc5322_field_is(&f, "To");
		(void)rfc5322_parse_addresses(f.value, f.value_len, check_addr, &count);
	}
	if (it.body_offset > size || rfc5322_next(&it, &f) != r)
		abort();
	(void)rfc5322_parse_addresses(msg, size, check_addr, &count);
	return 0;
}
