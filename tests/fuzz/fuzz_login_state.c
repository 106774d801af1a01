/* fuzz_login_state.c - SPOOL/login-state is ours but read as input: any
 * bytes must give a memory or nothing, and an update must keep only good
 * lines (it parses back to the memory it was given). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "login_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct login_memory m, set = { 1795489200, 1500 }, back;
	size_t len;
	char *out;

	login_state_find(text, size, "isp", &m);
	out = login_state_update(text, size, "isp", &set, &len);
	if (strlen(out) != len || (len > 0 && out[len - 1] != '\n'))
		abort();
	login_state_find(out, len, "isp", &back);
	if (back.last_login != set.last_login || back.delay_ms != set.delay_ms)
		abort();
	free(out);
	return 0;
}
