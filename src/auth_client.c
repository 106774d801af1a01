/* auth_client.c - SASL as a client (RFC 4422): credentials, the choice of
 * mechanism, and one exchange driver for every protocol that carries SASL
 * (RFC 4954 SMTP AUTH; POP3 AUTH and IMAP AUTHENTICATE later).
 *
 * STANDARDS: RFC 5802 / RFC 7677 SCRAM (RFC 9266 tls-exporter, RFC 5929
 * tls-unique), RFC 4752 GSSAPI, RFC 2831 DIGEST-MD5, RFC 2195 CRAM-MD5,
 * RFC 4616 PLAIN, RFC 7628 OAUTHBEARER, Google/Microsoft XOAUTH2.  libgsasl
 * does the standard mechanisms; the two OAuth ones are a few lines here.
 *
 * SECURITY: passwords and tokens never reach a trace, a log, an error text
 * or result; every buffer that held one is wiped (OPENSSL_cleanse), libgsasl's
 * copies included.  Challenges and reply texts come from the gateway and are
 * untrusted.  A mechanism with mutual authentication (SCRAM, DIGEST-MD5)
 * whose server fails to prove itself stops everything: falling back to a
 * weaker mechanism would hand the password to whoever is on the other end. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth_client.h"
#include "util.h"

extern char **environ;

#define AUTH_ROUNDS_MAX 16          /* challenges per mechanism before we give up */
#define AUTH_CHALLENGE_MAX (NETIO_LINE_MAX + 1)
#define AUTH_OAUTH_MAX (sizeof ((struct auth_credentials *)0)->user * 3 + \
	sizeof ((struct auth_credentials *)0)->oauth_token + 64)
#define B64_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static void
wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

/* libgsasl's malloc'd strings that may hold a secret. */
static void
wipe_free(char *s)
{
	if (s != NULL) {
		wipe(s, strlen(s));
		gsasl_free(s);
	}
}

/* Standard base64 of in[0..len) into out (B64_SIZE(len) bytes). */
static void
b64_encode(const void *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decode NUL-terminated base64; -1 when it is not base64 or does not fit. */
static long
b64_decode(const char *in, unsigned char *out, size_t size)
{
	size_t len = strlen(in), pad = 0;
	int n;

	if (len % 4 != 0 || len / 4 * 3 > size)
		return -1;
	if (len == 0)
		return 0;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	return n - (long)pad;
}

/* Overwrite every occurrence of a secret in text (a gateway could echo it). */
static void
mask_secret(char *text, const char *secret)
{
	size_t n = strlen(secret);
	char *p;

	if (n < 4)
		return;
	while ((p = strstr(text, secret)) != NULL)
		memset(p, '*', n);
}

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */

/* Keep the first line of buf[0..len), trailing CRs dropped; wipe the rest. */
static size_t
first_line(char *buf, size_t len, size_t size)
{
	char *nl = memchr(buf, '\n', len);

	if (nl != NULL)
		len = (size_t)(nl - buf);
	while (len > 0 && buf[len - 1] == '\r')
		len--;
	wipe(buf + len, size - len);
	buf[len] = '\0';
	return len;
}

static int
read_password_file(const char *path, char *out, size_t size, struct err *err)
{
	struct stat st;
	size_t len = 0;
	bool more = false;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return err_sys(err, "password-file %s", path);
	if (fstat(fd, &st) < 0) {
		err_sys(err, "password-file %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, "password-file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		err_set(err, "password-file %s is readable by others; chmod 600 it", path);
		goto out;
	}
	while (len < size - 1 && memchr(out, '\n', len) == NULL) {
		ssize_t n = read(fd, out + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys(err, "password-file %s", path);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == size - 1 && memchr(out, '\n', len) == NULL) {
		char c = '\n';

		more = read(fd, &c, 1) > 0 && c != '\n' && c != '\r';
		wipe(&c, 1);
	}
	len = first_line(out, len, size);
	if (more)
		err_set(err, "password-file %s: the first line is longer than %zu bytes", path,
		    size - 1);
	else if (strlen(out) != len)
		err_set(err, "password-file %s: the first line contains a NUL byte", path);
	else if (len == 0)
		err_set(err, "password-file %s: the first line is empty", path);
	else
		rc = 0;
out:
	close(fd);
	if (rc < 0)
		wipe(out, size);
	return rc;
}

/* Start /bin/sh -c cmd with stdout into a pipe, stdin from /dev/null, in a
 * process group of its own (so a timeout kills what it started as well). */
static int
spawn_command(const char *what, const char *cmd, pid_t *pid, int *fd, struct err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(err, "%s: pipe", what);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGPIPE);
	sigaddset(&deflt, SIGCHLD);
	sigaddset(&deflt, SIGHUP);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGQUIT);
	sigaddset(&deflt, SIGTERM);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		errno = rc;
		return err_sys(err, "%s: cannot run /bin/sh", what);
	}
	*fd = p[0];
	return 0;
}

/* Read the child's stdout until EOF or the deadline: the first line into
 * out, the rest read and wiped.  0 EOF, 1 deadline, -1 error. */
static int
read_command_output(int fd, uint64_t deadline, char *out, size_t size, size_t *len,
    bool *too_long)
{
	char scratch[512];
	bool done = false;               /* the first line is complete */
	int rc = 0;

	*len = 0;
	*too_long = false;
	for (;;) {
		bool keep = !done && *len < size - 1;
		char *dst = keep ? out + *len : scratch;
		size_t room = keep ? size - 1 - *len : sizeof scratch;
		uint64_t now = now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ready;

		if (now >= deadline) {
			rc = 1;
			break;
		}
		ready = poll(&pfd, 1, (int)(deadline - now));
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			rc = -1;
			break;
		}
		if (ready == 0) {
			rc = 1;
			break;
		}
		n = read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		if (keep) {
			done = memchr(dst, '\n', (size_t)n) != NULL;
			*len += (size_t)n;
		} else if (!done) {      /* out is full: is this the line's end? */
			done = true;
			*too_long = scratch[0] != '\n' && scratch[0] != '\r';
		}
	}
	wipe(scratch, sizeof scratch);
	return rc;
}

/* Wait for the child until the deadline; 0 with *status, 1 deadline, -1 error. */
static int
wait_command(pid_t pid, uint64_t deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= deadline)
			return 1;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
}

/* Run a command that prints a secret; its first line into out.  The error
 * never quotes what it printed. */
static int
run_secret_command(const char *what, const char *cmd, char *out, size_t size, struct err *err)
{
	uint64_t deadline = now_ms() + AUTH_COMMAND_TIMEOUT_MS;
	size_t len = 0;
	bool too_long = false;
	pid_t pid;
	int fd, status = 0, r;

	wipe(out, size);
	if (spawn_command(what, cmd, &pid, &fd, err) < 0)
		return -1;
	r = read_command_output(fd, deadline, out, size, &len, &too_long);
	close(fd);
	if (r < 0) {
		err_sys(err, "%s: reading its output", what);
	} else if (r == 0) {
		r = wait_command(pid, deadline, &status);
		if (r < 0)
			err_sys(err, "%s: waiting for it", what);
	}
	if (r != 0) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (r == 1)
			err_set(err, "%s did not finish within %d s; killed", what,
			    AUTH_COMMAND_TIMEOUT_MS / 1000);
		goto fail;
	}
	len = first_line(out, len, size);
	if (WIFSIGNALED(status))
		err_set(err, "%s was killed by signal %d", what, WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err_set(err, "%s exited with status %d", what, WEXITSTATUS(status));
	else if (too_long)
		err_set(err, "%s printed a line longer than %zu bytes", what, size - 1);
	else if (strlen(out) != len)
		err_set(err, "%s printed a NUL byte", what);
	else if (len == 0)
		err_set(err, "%s printed nothing", what);
	else
		return 0;
fail:
	wipe(out, size);
	return -1;
}

/* An OAuth 2.0 bearer token (RFC 6750 b64token) is visible ASCII; anything
 * else would break the framing of XOAUTH2/OAUTHBEARER. */
static bool
token_valid(const char *t)
{
	for (; *t != '\0'; t++)
		if (*t < 0x21 || *t > 0x7e)
			return false;
	return true;
}

int
auth_credentials_load(const struct route *r, struct auth_credentials *c, struct err *err)
{
	int rc = 0;

	wipe(c, sizeof *c);
	if (r->user != NULL && strlcopy(c->user, r->user, sizeof c->user) >= sizeof c->user)
		return err_set(err, "route %s: user is longer than %zu bytes", r->name,
		    sizeof c->user - 1);
	if (r->password_file != NULL)
		rc = read_password_file(r->password_file, c->password, sizeof c->password, err);
	else if (r->password_command != NULL)
		rc = run_secret_command("password-command", r->password_command, c->password,
		    sizeof c->password, err);
	else if (r->password != NULL &&
	    strlcopy(c->password, r->password, sizeof c->password) >= sizeof c->password)
		rc = err_set(err, "route %s: password is longer than %zu bytes", r->name,
		    sizeof c->password - 1);
	if (rc == 0 && r->oauth_token_command != NULL) {
		rc = run_secret_command("oauth-token-command", r->oauth_token_command,
		    c->oauth_token, sizeof c->oauth_token, err);
		if (rc == 0 && !token_valid(c->oauth_token))
			rc = err_set(err, "oauth-token-command printed a token with spaces or "
			    "control characters (not an OAuth 2.0 bearer token)");
	}
	if (rc < 0)
		auth_credentials_wipe(c);
	return rc;
}

void
auth_credentials_wipe(struct auth_credentials *c)
{
	if (c != NULL)
		wipe(c, sizeof *c);
}

/* ------------------------------------------------------------------------ */
/* Mechanisms                                                                */

enum mech_flag {
	MECH_OURS         = 1 << 0,  /* not libgsasl's: XOAUTH2, OAUTHBEARER */
	MECH_TOKEN        = 1 << 1,  /* needs an OAuth token */
	MECH_PASSWORD     = 1 << 2,  /* needs a password */
	MECH_PLUS         = 1 << 3,  /* needs TLS channel binding */
	MECH_CLEARTEXT    = 1 << 4,  /* the password crosses the wire as it is */
	MECH_CLIENT_FIRST = 1 << 5,  /* has an initial response */
	MECH_MUTUAL       = 1 << 6,  /* the server proves that it knows the password */
};

struct mech_rule;
typedef int oauth_format_fn(const struct auth_credentials *, char *, size_t);

static oauth_format_fn format_oauthbearer, format_xoauth2;

/* The preference of `auth = auto`, best first (PRODUCT.md §3). */
static const struct mech_rule {
	const char *name;
	unsigned flags;                  /* enum mech_flag */
	oauth_format_fn *oauth;          /* MECH_OURS: the initial response */
	const char *oauth_ack;           /* MECH_OURS: our answer to an error challenge */
} mech_rules[] = {
	{ "OAUTHBEARER", MECH_OURS | MECH_TOKEN | MECH_CLIENT_FIRST, format_oauthbearer, "AQ==" },
	{ "XOAUTH2", MECH_OURS | MECH_TOKEN | MECH_CLIENT_FIRST, format_xoauth2, "" },
	{ "SCRAM-SHA-256-PLUS", MECH_PASSWORD | MECH_PLUS | MECH_CLIENT_FIRST | MECH_MUTUAL,
	    NULL, NULL },
	{ "SCRAM-SHA-256", MECH_PASSWORD | MECH_CLIENT_FIRST | MECH_MUTUAL, NULL, NULL },
	{ "SCRAM-SHA-1-PLUS", MECH_PASSWORD | MECH_PLUS | MECH_CLIENT_FIRST | MECH_MUTUAL,
	    NULL, NULL },
	{ "SCRAM-SHA-1", MECH_PASSWORD | MECH_CLIENT_FIRST | MECH_MUTUAL, NULL, NULL },
	{ "GSSAPI", MECH_CLIENT_FIRST, NULL, NULL },
	{ "DIGEST-MD5", MECH_PASSWORD | MECH_MUTUAL, NULL, NULL },
	{ "CRAM-MD5", MECH_PASSWORD, NULL, NULL },
	{ "PLAIN", MECH_PASSWORD | MECH_CLEARTEXT | MECH_CLIENT_FIRST, NULL, NULL },
	{ "LOGIN", MECH_PASSWORD | MECH_CLEARTEXT, NULL, NULL },
};

#define NRULES (sizeof mech_rules / sizeof mech_rules[0])

static const struct mech_rule *
mech_find(const char *name)
{
	for (size_t i = 0; i < NRULES; i++)
		if (strcasecmp(mech_rules[i].name, name) == 0)
			return &mech_rules[i];
	return NULL;
}

/* Is `name` a word of the space separated list? */
static bool
offered_has(const char *offered, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = offered; p != NULL && *p != '\0';) {
		size_t len;

		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

void
auth_client_supported(char *buf, size_t size)
{
	Gsasl *ctx = NULL;
	size_t len = 0;

	buf[0] = '\0';
	if (gsasl_init(&ctx) != GSASL_OK)
		ctx = NULL;
	for (size_t i = 0; i < NRULES && len + 1 < size; i++) {
		const struct mech_rule *m = &mech_rules[i];

		if (!(m->flags & MECH_OURS) && (ctx == NULL || !gsasl_client_support_p(ctx, m->name)))
			continue;
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? " " : "", m->name);
	}
	if (ctx != NULL)
		gsasl_done(ctx);
}

/* Facts choose() decides on. */
struct choice_env {
	Gsasl *gsasl;                    /* NULL: libgsasl could not start */
	const struct route *route;
	const struct auth_credentials *cred;
	const char *offered;
	const char *peer;                /* "the gateway", "the POP3 server" */
	bool encrypted, channel_binding;
};

static const char not_offered[] = "not offered";

static const char *
peer_name(const struct auth_proto *proto)
{
	return proto != NULL && proto->peer != NULL ? proto->peer : "the gateway";
}

/* Why a mechanism cannot be used here, or NULL. */
static const char *
skip_reason(const struct choice_env *e, const struct mech_rule *m)
{
	if (!offered_has(e->offered, m->name))
		return not_offered;
	if (!(m->flags & MECH_OURS) &&
	    (e->gsasl == NULL || !gsasl_client_support_p(e->gsasl, m->name)))
		return "not available in this libgsasl";
	if ((m->flags & MECH_TOKEN) && e->cred->oauth_token[0] == '\0')
		return "no oauth-token-command";
	if ((m->flags & MECH_PASSWORD) && e->cred->password[0] == '\0')
		return "no password (password-file, password-command or password)";
	if ((m->flags & (MECH_PASSWORD | MECH_TOKEN)) && e->cred->user[0] == '\0')
		return "no user";
	if ((m->flags & MECH_PLUS) && !e->encrypted)
		return "no channel binding without TLS";
	if ((m->flags & MECH_PLUS) && !e->channel_binding)
		return "no channel binding from this TLS connection";
	if ((m->flags & MECH_CLEARTEXT) && !e->encrypted && !e->route->allow_plaintext_auth)
		return "never sent over an unencrypted connection (allow-plaintext-auth = no)";
	return NULL;
}

static bool
already(const struct mech_rule *const *out, size_t n, const struct mech_rule *m)
{
	for (size_t i = 0; i < n; i++)
		if (out[i] == m)
			return true;
	return false;
}

/* Append a word to a space separated list (cut at its size). */
static void
list_add(char *list, size_t size, const char *word)
{
	size_t len = strlen(list);

	snprintf(list + len, size - len, "%s%s", len > 0 ? " " : "", word);
}

static size_t
choose(const struct choice_env *e, const struct mech_rule **out, size_t max,
    const struct netio_trace *trace)
{
	bool automatic = e->route->nauth == 0;
	size_t n = 0, count = automatic ? NRULES : e->route->nauth;
	char list[256] = "", absent[256] = "";

	for (size_t i = 0; i < count; i++) {
		const char *name = automatic ? mech_rules[i].name : e->route->auth[i];
		const struct mech_rule *m = mech_find(name);
		const char *why;

		if (m == NULL)
			why = "unknown mechanism";
		else if (already(out, n, m))
			why = "listed twice";
		else if ((why = skip_reason(e, m)) == NULL && n == max)
			why = "too many mechanisms";
		if (why == not_offered)         /* one line for all of these */
			list_add(absent, sizeof absent, name);
		else if (why != NULL)
			netio_trace_say(trace, "%s: %s", name, why);
		else {
			out[n++] = m;
			list_add(list, sizeof list, m->name);
		}
	}
	if (absent[0] != '\0')
		netio_trace_say(trace, "%s by %s: %s", not_offered, e->peer, absent);
	netio_trace_say(trace, "AUTH mechanisms to try (%s): %s", automatic ? "auto" : "auth list",
	    n > 0 ? list : "none");
	return n;
}

size_t
auth_client_choose(const struct route *r, const struct auth_credentials *cred,
    const char *offered, bool encrypted, bool channel_binding, const char **out, size_t max,
    const struct netio_trace *trace)
{
	const struct mech_rule *m[NRULES];
	struct choice_env e = {
		.route = r, .cred = cred, .offered = offered, .peer = peer_name(NULL),
		.encrypted = encrypted, .channel_binding = channel_binding,
	};
	size_t n;
	int rc;

	if ((rc = gsasl_init(&e.gsasl)) != GSASL_OK) {
		netio_trace_say(trace, "libgsasl could not start: %s", gsasl_strerror(rc));
		e.gsasl = NULL;
	}
	n = choose(&e, m, max < NRULES ? max : NRULES, trace);
	for (size_t i = 0; i < n; i++)
		out[i] = m[i]->name;
	if (e.gsasl != NULL)
		gsasl_done(e.gsasl);
	return n;
}

/* ------------------------------------------------------------------------ */
/* XOAUTH2 and OAUTHBEARER: the initial responses                            */

/* RFC 7628 §3.1: "n,a=USER,^Aauth=Bearer TOKEN^A^A"; the saslname escapes
 * ',' and '=' (RFC 5801). */
static int
format_oauthbearer(const struct auth_credentials *c, char *out, size_t size)
{
	size_t n = 0;
	int w;

	w = snprintf(out, size, "n,a=");
	n = (size_t)w;
	for (const char *p = c->user; *p != '\0'; p++) {
		const char *esc = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;

		if (n + 4 >= size)
			return -1;
		if (esc != NULL) {
			memcpy(out + n, esc, 3);
			n += 3;
		} else {
			out[n++] = *p;
		}
	}
	w = snprintf(out + n, size - n, ",\001auth=Bearer %s\001\001", c->oauth_token);
	if (w < 0 || (size_t)w >= size - n)
		return -1;
	return (int)(n + (size_t)w);
}

/* Google's and Microsoft's "user=USER^Aauth=Bearer TOKEN^A^A". */
static int
format_xoauth2(const struct auth_credentials *c, char *out, size_t size)
{
	int w = snprintf(out, size, "user=%s\001auth=Bearer %s\001\001", c->user,
	    c->oauth_token);

	return w < 0 || (size_t)w >= size ? -1 : w;
}

/* ------------------------------------------------------------------------ */
/* The exchange                                                              */

struct auth_run {
	const struct auth_credentials *cred;
	const struct auth_proto *proto;
	const struct netio_trace *trace;
	const struct mech_rule *mech;    /* the one being tried */
	const char *cb_type;             /* "tls-exporter", "tls-unique" or NULL */
	char cb_b64[B64_SIZE(TLS_CHANNEL_BINDING_MAX)];
};

/* One mechanism's session: libgsasl's, or the state of an OAuth one. */
struct mech_session {
	const struct mech_rule *rule;
	Gsasl_session *gsasl;
	bool sent_initial;               /* OAuth: the initial response is out */
	bool done;                       /* the client side is complete: OK may come */
	int failure;                     /* the libgsasl error of a local failure */
};

enum attempt {
	ATTEMPT_OK,                      /* authenticated */
	ATTEMPT_REFUSED,                 /* try the next mechanism */
	ATTEMPT_NOT_STARTED,             /* failed here before anything was sent */
	ATTEMPT_TEMPFAIL,                /* the gateway said: later */
	ATTEMPT_UNPROVEN,                /* the gateway failed mutual authentication: stop */
	ATTEMPT_IO,                      /* err */
};

static int
property_cb(Gsasl *gs, Gsasl_session *s, Gsasl_property prop)
{
	const struct auth_run *run = gsasl_callback_hook_get(gs);
	bool plus = run->mech != NULL && (run->mech->flags & MECH_PLUS);
	const char *v = NULL;

	switch (prop) {
	case GSASL_AUTHID:
		v = run->cred->user;
		break;
	case GSASL_PASSWORD:
		v = run->cred->password;
		break;
	case GSASL_SERVICE:
		v = run->proto->service;
		break;
	case GSASL_HOSTNAME:
		v = run->proto->hostname;
		break;
	/* Only for -PLUS: a non-PLUS SCRAM that has channel binding data says
	 * "y" (RFC 5802 §6), which a server offering -PLUS must refuse. */
	case GSASL_CB_TLS_EXPORTER:
		if (plus && run->cb_type != NULL && strcmp(run->cb_type, "tls-exporter") == 0)
			v = run->cb_b64;
		break;
	case GSASL_CB_TLS_UNIQUE:
		if (plus && run->cb_type != NULL && strcmp(run->cb_type, "tls-unique") == 0)
			v = run->cb_b64;
		break;
	default:                         /* AUTHZID: none; QOP, REALM: libgsasl's defaults */
		break;
	}
	if (v == NULL || *v == '\0')
		return GSASL_NO_CALLBACK;
	return gsasl_property_set(s, prop, v);
}

/* libgsasl keeps copies of the password and of what derives from it. */
static void
session_free(struct mech_session *ms)
{
	static const Gsasl_property secret[] = {
		GSASL_PASSWORD, GSASL_SCRAM_SALTED_PASSWORD, GSASL_SCRAM_SERVERKEY,
		GSASL_SCRAM_STOREDKEY, GSASL_DIGEST_MD5_HASHED_PASSWORD,
	};

	if (ms->gsasl == NULL)
		return;
	for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
		const char *p = gsasl_property_fast(ms->gsasl, secret[i]);

		if (p != NULL)
			wipe((char *)p, strlen(p));
	}
	gsasl_finish(ms->gsasl);
	ms->gsasl = NULL;
}

/* OAuth: the first call yields the initial response; a challenge after it
 * is the gateway's JSON error, answered as the mechanism says. */
static int
oauth_step(struct auth_run *run, struct mech_session *ms, const char *challenge, char **out)
{
	char raw[AUTH_OAUTH_MAX];
	int n;

	if (ms->sent_initial) {
		unsigned char json[AUTH_CHALLENGE_MAX];
		long len = b64_decode(challenge, json, sizeof json - 1);

		if (len >= 0) {
			for (long i = 0; i < len; i++)
				if (json[i] < 0x20 || json[i] > 0x7e)
					json[i] = '?';
			json[len] = '\0';
			netio_trace_say(run->trace, "%s: the gateway says %.300s", ms->rule->name,
			    (char *)json);
		}
		*out = xstrdup(ms->rule->oauth_ack);
		return GSASL_OK;
	}
	if ((n = ms->rule->oauth(run->cred, raw, sizeof raw)) < 0) {
		wipe(raw, sizeof raw);
		return GSASL_MALLOC_ERROR;
	}
	*out = xmalloc(B64_SIZE((size_t)n));
	b64_encode(raw, (size_t)n, *out);
	wipe(raw, sizeof raw);
	ms->sent_initial = ms->done = true;
	return GSASL_OK;
}

/* The next response to a challenge ("" before the first): base64, "" for
 * an empty one, malloc'd (response_free).  GSASL_OK / GSASL_NEEDS_MORE, or
 * a libgsasl error and *out NULL. */
static int
mech_step(struct auth_run *run, struct mech_session *ms, const char *challenge, char **out)
{
	char *g = NULL;
	int rc;

	*out = NULL;
	if (ms->rule->flags & MECH_OURS)
		return oauth_step(run, ms, challenge, out);
	rc = gsasl_step64(ms->gsasl, challenge, &g);
	if (rc == GSASL_OK || rc == GSASL_NEEDS_MORE)
		*out = xstrdup(g != NULL ? g : "");
	if (rc == GSASL_OK)
		ms->done = true;
	wipe_free(g);
	return rc;
}

/* Free a response that may hold a secret. */
static void
response_free(char *r)
{
	if (r != NULL) {
		wipe(r, strlen(r));
		free(r);
	}
}

/* Send the start command, with the initial response when there is one and
 * the protocol can carry it.  *pending gets a response for the first 334
 * (one too long for the command line). */
static enum attempt
send_start(struct auth_run *run, struct mech_session *ms, char **pending, struct err *err)
{
	const struct auth_proto *p = run->proto;
	char *ir = NULL;
	const char *arg = NULL;
	int rc;

	*pending = NULL;
	if ((ms->rule->flags & MECH_CLIENT_FIRST) && p->initial_response) {
		if ((rc = mech_step(run, ms, "", &ir)) != GSASL_OK && rc != GSASL_NEEDS_MORE) {
			ms->failure = rc;
			return ATTEMPT_NOT_STARTED;
		}
		if (p->initial_max == 0 || strlen(ir) <= p->initial_max)
			arg = ir[0] == '\0' ? "=" : ir;
		else
			*pending = ir, ir = NULL;
	}
	rc = p->start(p->ctx, ms->rule->name, arg, err);
	response_free(ir);
	if (rc < 0) {
		response_free(*pending);
		*pending = NULL;
		return ATTEMPT_IO;
	}
	return ATTEMPT_OK;
}

/* We cannot go on: cancel ("*") and read the gateway's answer. */
static enum attempt
cancel(struct auth_run *run, struct auth_reply *reply, struct err *err)
{
	char buf[AUTH_CHALLENGE_MAX];
	enum auth_step step;

	if (run->proto->respond(run->proto->ctx, "*", err) < 0)
		return ATTEMPT_IO;
	if (run->proto->next(run->proto->ctx, buf, sizeof buf, &step, reply, err) < 0)
		return ATTEMPT_IO;
	if (step == AUTH_STEP_TEMPFAIL)
		return ATTEMPT_TEMPFAIL;
	return step == AUTH_STEP_OK ? ATTEMPT_UNPROVEN : ATTEMPT_REFUSED;
}

/* Challenges and responses until the gateway's final word. */
static enum attempt
exchange(struct auth_run *run, struct mech_session *ms, char *pending,
    struct auth_reply *reply, struct err *err)
{
	const struct auth_proto *p = run->proto;
	char challenge[AUTH_CHALLENGE_MAX];

	for (int round = 0;; round++) {
		enum auth_step step;
		enum attempt a;
		char *out = NULL;
		int rc;

		if (p->next(p->ctx, challenge, sizeof challenge, &step, reply, err) < 0) {
			response_free(pending);
			return ATTEMPT_IO;
		}
		if (step != AUTH_STEP_CHALLENGE) {
			response_free(pending);
			if (step == AUTH_STEP_REFUSED)
				return ATTEMPT_REFUSED;
			if (step == AUTH_STEP_TEMPFAIL)
				return ATTEMPT_TEMPFAIL;
			/* A success before the server proved itself (SCRAM's server
			 * signature, DIGEST-MD5's rspauth) proves nothing. */
			return ms->done || !(ms->rule->flags & MECH_MUTUAL) ? ATTEMPT_OK
			    : ATTEMPT_UNPROVEN;
		}
		if (round == AUTH_ROUNDS_MAX) {
			ms->failure = GSASL_MECHANISM_CALLED_TOO_MANY_TIMES;
			return cancel(run, reply, err);
		}
		if (pending != NULL) {
			out = pending, pending = NULL;
		} else if ((rc = mech_step(run, ms, challenge, &out)) != GSASL_OK &&
		    rc != GSASL_NEEDS_MORE) {
			ms->failure = rc;
			a = cancel(run, reply, err);
			/* Signature or nonce wrong: not the server that knows our password. */
			if (a == ATTEMPT_REFUSED && rc == GSASL_AUTHENTICATION_ERROR &&
			    (ms->rule->flags & MECH_MUTUAL))
				a = ATTEMPT_UNPROVEN;
			return a;
		}
		rc = p->respond(p->ctx, out, err);
		response_free(out);
		if (rc < 0)
			return ATTEMPT_IO;
	}
}

static enum attempt
try_mech(Gsasl *gs, struct auth_run *run, const struct mech_rule *m, struct auth_reply *reply,
    int *failure, struct err *err)
{
	struct mech_session ms = { .rule = m };
	enum attempt a;
	char *pending;
	int rc;

	run->mech = m;
	if (!(m->flags & MECH_OURS) &&
	    (rc = gsasl_client_start(gs, m->name, &ms.gsasl)) != GSASL_OK) {
		*failure = rc;
		ms.gsasl = NULL;
		run->mech = NULL;
		return ATTEMPT_NOT_STARTED;
	}
	if ((a = send_start(run, &ms, &pending, err)) == ATTEMPT_OK)
		a = exchange(run, &ms, pending, reply, err);
	*failure = ms.failure;
	session_free(&ms);
	run->mech = NULL;
	return a;
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                */

static void
channel_binding(struct tls_conn *tls, struct auth_run *run)
{
	static const char *const types[] = { "tls-exporter", "tls-unique" };
	unsigned char data[TLS_CHANNEL_BINDING_MAX];

	for (size_t i = 0; tls != NULL && i < sizeof types / sizeof types[0]; i++) {
		size_t len = sizeof data;

		if (tls_channel_binding(tls, types[i], data, &len) == 0 && len > 0 &&
		    len <= sizeof data) {
			run->cb_type = types[i];
			b64_encode(data, len, run->cb_b64);
			break;
		}
	}
	wipe(data, sizeof data);
}

/* The length of an enhanced status code (RFC 3463 "5.7.8") starting text, or 0. */
static size_t
enhanced_len(const char *text)
{
	const char *p = text;

	for (int part = 0; part < 3; part++) {
		size_t digits = strspn(p, "0123456789");

		if (digits == 0 || digits > 3 || (part == 0 && digits != 1))
			return 0;
		p += digits;
		if (part < 2 && *p++ != '.')
			return 0;
	}
	return *p == '\0' || *p == ' ' ? (size_t)(p - text) : 0;
}

/* "SCRAM-SHA-256 (535 5.7.8)": the code, and the enhanced code of a refusal. */
static void
tried_add(struct auth_result *res, const char *mech, const struct auth_reply *reply,
    const char *note)
{
	char entry[128], why[64] = "";
	size_t len = strlen(res->tried), e = enhanced_len(reply->text);

	if (note != NULL)
		snprintf(why, sizeof why, "%s", note);
	else if (reply->code / 100 != 2 && e > 0)
		snprintf(why, sizeof why, "%d %.*s", reply->code, (int)e, reply->text);
	else
		snprintf(why, sizeof why, "%d", reply->code);
	snprintf(entry, sizeof entry, "%s%s (%s)", len > 0 ? " " : "", mech, why);
	if (len + strlen(entry) < sizeof res->tried)
		strlcopy(res->tried + len, entry, sizeof res->tried - len);
	else if (len + 4 < sizeof res->tried && strcmp(res->tried + len - 4, " ...") != 0)
		strlcopy(res->tried + len, " ...", sizeof res->tried - len);
}

static void
our_words(struct auth_reply *reply, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
our_words(struct auth_reply *reply, const char *fmt, ...)
{
	va_list ap;

	reply->code = 0;
	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof reply->text, fmt, ap);
	va_end(ap);
}

static const char *
unproven_why(int failure)
{
	if (failure == GSASL_OK)
		return "it said yes before its proof";
	if (failure == GSASL_AUTHENTICATION_ERROR)
		return "wrong server signature or nonce";
	return gsasl_strerror(failure);
}

/* What one attempt means for the run: -2 go on, else the return value. */
static int
attempt_outcome(struct auth_run *run, const struct mech_rule *m, enum attempt a, int failure,
    struct auth_reply *reply, struct auth_result *res, bool *reached, const struct err *err)
{
	const char *mech = m->name;

	mask_secret(reply->text, run->cred->password);
	mask_secret(reply->text, run->cred->oauth_token);
	strlcopy(res->mech, mech, sizeof res->mech);
	switch (a) {
	case ATTEMPT_NOT_STARTED:
		netio_trace_say(run->trace, "%s: not started: %s", mech, gsasl_strerror(failure));
		tried_add(res, mech, reply, "not started");
		return -2;
	case ATTEMPT_OK:
		netio_trace_say(run->trace, "%s: accepted: %d %s", mech, reply->code, reply->text);
		tried_add(res, mech, reply, NULL);
		res->reply = *reply;
		return 0;
	case ATTEMPT_REFUSED:
		*reached = true;
		if (failure != GSASL_OK)
			netio_trace_say(run->trace, "%s: cancelled: %s", mech, gsasl_strerror(failure));
		netio_trace_say(run->trace, "%s: refused: %d %s", mech, reply->code, reply->text);
		tried_add(res, mech, reply, NULL);
		res->reply = *reply;
		return -2;
	case ATTEMPT_TEMPFAIL:
		netio_trace_say(run->trace, "%s: temporary failure: %d %s", mech, reply->code,
		    reply->text);
		tried_add(res, mech, reply, NULL);
		res->reply = *reply;
		return 2;
	case ATTEMPT_UNPROVEN:
		our_words(&res->reply, "%s: %s did not prove that it knows the password "
		    "(%s); not authenticated, no weaker mechanism tried", mech,
		    peer_name(run->proto), unproven_why(failure));
		netio_trace_say(run->trace, "%s", res->reply.text);
		tried_add(res, mech, reply, "unproven");
		return 2;
	case ATTEMPT_IO:
		netio_trace_say(run->trace, "%s: %s", mech, err->msg);
		tried_add(res, mech, reply, "I/O error");
		return -1;
	}
	return -1;
}

int
auth_client_run(const struct route *r, const struct auth_credentials *cred, const char *offered,
    struct tls_conn *tls, const struct auth_proto *proto, struct auth_result *res,
    const struct netio_trace *trace, struct err *err)
{
	struct auth_run run = { .cred = cred, .proto = proto, .trace = trace };
	const struct mech_rule *chosen[NRULES];
	struct choice_env env = {
		.route = r, .cred = cred, .offered = offered, .peer = peer_name(proto),
		.encrypted = tls != NULL,
	};
	bool reached = false;
	size_t n;
	int rc = 1, grc;

	memset(res, 0, sizeof *res);
	if ((grc = gsasl_init(&env.gsasl)) != GSASL_OK) {
		netio_trace_say(trace, "libgsasl could not start: %s", gsasl_strerror(grc));
		env.gsasl = NULL;
	} else {
		gsasl_callback_set(env.gsasl, property_cb);
		gsasl_callback_hook_set(env.gsasl, &run);
	}
	channel_binding(tls, &run);
	env.channel_binding = run.cb_type != NULL;
	if (run.cb_type != NULL)
		netio_trace_say(trace, "channel binding: %s", run.cb_type);
	n = choose(&env, chosen, NRULES, trace);
	for (size_t i = 0; i < n; i++) {
		struct auth_reply reply = { 0 };
		int failure = GSASL_OK;
		enum attempt a = try_mech(env.gsasl, &run, chosen[i], &reply, &failure, err);

		rc = attempt_outcome(&run, chosen[i], a, failure, &reply, res, &reached, err);
		if (rc != -2)
			break;
		rc = 1;
	}
	if (rc == 1 && n == 0)
		our_words(&res->reply, "no usable AUTH mechanism (%s offers: %.200s)", env.peer,
		    offered != NULL && offered[0] != '\0' ? offered : "none");
	else if (rc == 1 && !reached)
		our_words(&res->reply, "no AUTH mechanism could be started (tried: %.200s)",
		    res->tried);
	wipe(run.cb_b64, sizeof run.cb_b64);
	if (env.gsasl != NULL)
		gsasl_done(env.gsasl);
	return rc;
}
