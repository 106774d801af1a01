/* login_gate.c - see login_gate.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "login.h"
#include "login_gate.h"
#include "login_state.h"
#include "util.h"

static void
login_failed(const struct route *r, const struct login_result *res, struct smtp_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->status = DELIVERY_DEFERRED;
	o->step = STEP_LOGIN;
	o->route_level = true;
	snprintf(o->reply, sizeof o->reply, "login-before-smtp %s://%s:%u failed: %.400s",
	    login_proto_name(r->login.proto), r->login.host, r->login.port, res->reply);
}

int
login_gate_pass(const struct config *cfg, const struct route *r, const struct netio_trace *trace,
    bool again, uint64_t wait_ms, struct smtp_outcome *o, uint64_t *login_at)
{
	struct login_memory mem;
	struct login_result res;
	struct err err = { "" };
	time_t now = time(NULL);
	char buf[32];

	*login_at = 0;
	login_state_load(cfg->spool, r->name, &mem, &err);
	if (!again && r->login_valid_ms > 0 && mem.last_login > 0 && mem.last_login <= now &&
	    (uint64_t)(now - mem.last_login) * 1000 < r->login_valid_ms) {
		log_debug("route %s: the last login was %llds ago: none now (login-valid)", r->name,
		    (long long)(now - mem.last_login));
		return 0;
	}
	if (login_run(r, trace, &res) < 0) {
		login_failed(r, &res, o);
		log_info("route %s: %s", r->name, o->reply);
		return -1;
	}
	*login_at = now_ms();
	mem.last_login = time(NULL);
	if (login_state_save(cfg->spool, r->name, &mem, &err) < 0)
		log_warn("route %s: %s", r->name, err.msg);
	if (!again)
		wait_ms = r->login_delay_ms > mem.delay_ms ? r->login_delay_ms : mem.delay_ms;
	log_info("route %s: %s login to %s as %s: ok (tls=%s, auth=%s); SMTP in %s", r->name,
	    res.protocol, res.server, r->login_user ? r->login_user : r->user,
	    res.tls ? res.tls_info.version : "none", res.mech, format_seconds(wait_ms, buf,
	    sizeof buf));
	sleep_ms(wait_ms);
	return 0;
}

void
login_gate_learn(const struct config *cfg, const struct route *r, uint64_t delay_ms)
{
	struct login_memory mem;
	struct err err = { "" };
	char buf[32];

	login_state_load(cfg->spool, r->name, &mem, &err);
	mem.delay_ms = delay_ms < LOGIN_STATE_DELAY_MAX ? delay_ms : LOGIN_STATE_DELAY_MAX;
	if (login_state_save(cfg->spool, r->name, &mem, &err) < 0)
		log_warn("route %s: %s", r->name, err.msg);
	log_info("route %s: the gateway relayed %s after the login: that delay is kept for "
	    "the next deliveries", r->name, format_seconds(delay_ms, buf, sizeof buf));
}
