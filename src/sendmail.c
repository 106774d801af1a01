/* sendmail.c - the sendmail(1)-compatible injector (mailredir.8, SENDMAIL):
 * flags, the message from stdin, inject_msg_prepare, address checks (RFC 5321
 * §4.1.2 via address.h), then the spool (spool_new_*) or, for users who may
 * not write the spool, the maildrop (spool_drop).
 *
 * SECURITY: run by any local user and never setuid, so it can do nothing the
 * user could not do by hand; the daemon checks a maildrop file again as
 * untrusted input.  The message is never printed; addresses in error
 * messages have their control characters replaced.  Nothing from the
 * configuration is printed but config_load's errors (which name keys, never
 * secret values). */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "control.h"
#include "envelope.h"
#include "inject_msg.h"
#include "log.h"
#include "queue_cmd.h"
#include "rfc5322.h"
#include "sendmail.h"
#include "smtp_server.h"
#include "spool.h"
#include "util.h"

/* Input beyond max-message-size that is still read before giving up; the
 * prepared message (CRLF, added fields) is then held to the limit itself. */
#define READ_SLACK   (64 * 1024)
#define READ_CHUNK   (64 * 1024)
#define FULL_NAME_MAX 256
#define SHOWN_MAX     300      /* of an address in an error message */

static const char usage_text[] =
    "usage: sendmail [-t] [-i] [-f FROM] [-F NAME] [-C FILE] [-bm | -bs | -bp | -q]\n"
    "                [--] RECIPIENT...\n";

enum sendmail_mode { MODE_DELIVER, MODE_SMTP, MODE_LIST_QUEUE, MODE_FLUSH };

struct sendmail_args {
	enum sendmail_mode mode;
	bool from_headers;          /* -t */
	bool ignore_dots;           /* -i, -oi */
	const char *sender;         /* -f, -r; NULL: the invoking user */
	const char *full_name;      /* -F; NULL: the passwd gecos */
	const char *config;         /* -C, -c */
	char **rcpts;               /* recipient arguments, pointing into argv */
	size_t nrcpts;
};

/* --- flags ---------------------------------------------------------------------- */

enum flag_arg {
	ARG_NONE,        /* -t */
	ARG_NEEDED,      /* -fFROM or -f FROM */
	ARG_ATTACHED,    /* -q or -q30m: never the next argument */
};

static int
flag_t(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)v, (void)err;
	a->from_headers = true;
	return 0;
}

static int
flag_i(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)v, (void)err;
	a->ignore_dots = true;
	return 0;
}

static int
flag_f(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)err;
	a->sender = v;
	return 0;
}

static int
flag_F(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)err;
	a->full_name = v;
	return 0;
}

static int
flag_C(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)err;
	a->config = v;
	return 0;
}

/* -oi matters; -odb, -oem, -oXy... are accepted and ignored. */
static int
flag_o(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)err;
	if (strcmp(v, "i") == 0)
		a->ignore_dots = true;
	return 0;
}

static int
flag_b(struct sendmail_args *a, const char *v, struct err *err)
{
	static const struct { const char *name; enum sendmail_mode mode; } modes[] = {
		{ "m", MODE_DELIVER }, { "s", MODE_SMTP }, { "p", MODE_LIST_QUEUE },
	};

	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (strcmp(v, modes[i].name) == 0) {
			a->mode = modes[i].mode;
			return 0;
		}
	}
	return err_set(err, "-b%.16s is not supported", v);
}

static int
flag_q(struct sendmail_args *a, const char *v, struct err *err)
{
	(void)v, (void)err;
	a->mode = MODE_FLUSH;
	return 0;
}

/* apply NULL: accepted and ignored, for programs written for Sendmail or
 * Postfix (-X FILE is never opened). */
static const struct flag_rule {
	char letter;
	enum flag_arg arg;
	int (*apply)(struct sendmail_args *, const char *value, struct err *);
} flag_rules[] = {
	{ 't', ARG_NONE, flag_t },
	{ 'i', ARG_NONE, flag_i },
	{ 'f', ARG_NEEDED, flag_f },
	{ 'r', ARG_NEEDED, flag_f },
	{ 'F', ARG_NEEDED, flag_F },
	{ 'C', ARG_NEEDED, flag_C },
	{ 'c', ARG_NEEDED, flag_C },       /* -c FILE, as for every command */
	{ 'o', ARG_NEEDED, flag_o },
	{ 'b', ARG_NEEDED, flag_b },
	{ 'q', ARG_ATTACHED, flag_q },
	{ 'v', ARG_NONE, NULL },
	{ 'm', ARG_NONE, NULL },
	{ 'n', ARG_NONE, NULL },
	{ 'U', ARG_NONE, NULL },
	{ 'G', ARG_NONE, NULL },
	{ 'O', ARG_NEEDED, NULL },
	{ 'N', ARG_NEEDED, NULL },
	{ 'R', ARG_NEEDED, NULL },
	{ 'V', ARG_NEEDED, NULL },
	{ 'B', ARG_NEEDED, NULL },
	{ 'L', ARG_NEEDED, NULL },
	{ 'h', ARG_NEEDED, NULL },
	{ 'X', ARG_NEEDED, NULL },
};

static const struct flag_rule *
find_flag(char letter)
{
	for (size_t i = 0; i < sizeof flag_rules / sizeof flag_rules[0]; i++)
		if (flag_rules[i].letter == letter)
			return &flag_rules[i];
	return NULL;
}

/* s with control characters replaced and cut to fit: for messages. */
static const char *
shown(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	for (; *s != '\0' && n + 1 < size; s++)
		buf[n++] = iscntrl((unsigned char)*s) ? '?' : *s;
	buf[n] = '\0';
	return buf;
}

/* One group of flags ("-ti", "-fjoe@x", "-f"); *i moves past a separate
 * argument. */
static int
parse_flag_group(int argc, char **argv, int *i, struct sendmail_args *a, struct err *err)
{
	char show[32];

	if (argv[*i][1] == '-')
		return err_set(err, "unknown option %s", shown(argv[*i], show, sizeof show));
	for (const char *p = argv[*i] + 1; *p != '\0'; p++) {
		const struct flag_rule *rule = find_flag(*p);
		const char *value = "";

		if (rule == NULL) {
			char letter[2] = { *p, '\0' };

			return err_set(err, "unknown option -%s", shown(letter, show, sizeof show));
		}
		if (rule->arg != ARG_NONE) {
			value = p + 1;
			if (*value == '\0' && rule->arg == ARG_NEEDED) {
				if (*i + 1 >= argc)
					return err_set(err, "option -%c needs an argument", *p);
				value = argv[++*i];
			}
		}
		if (rule->apply != NULL && rule->apply(a, value, err) < 0)
			return -1;
		if (rule->arg != ARG_NONE)
			break;
	}
	return 0;
}

/* Flags anywhere before "--" (as GNU getopt permutes); other arguments are
 * recipients. */
static int
parse_args(int argc, char **argv, struct sendmail_args *a, struct err *err)
{
	bool flags_done = false;

	memset(a, 0, sizeof *a);
	a->rcpts = xcalloc((size_t)argc + 1, sizeof *a->rcpts);
	for (int i = 1; i < argc; i++) {
		if (flags_done || argv[i][0] != '-' || argv[i][1] == '\0')
			a->rcpts[a->nrcpts++] = argv[i];
		else if (strcmp(argv[i], "--") == 0)
			flags_done = true;
		else if (parse_flag_group(argc, argv, &i, a, err) < 0)
			return -1;
	}
	return 0;
}

/* --- addresses ------------------------------------------------------------------ */

struct rcpt_set {
	char **v;
	size_t n, cap;
};

static int
rcpt_set_add(void *ctx, const char *addr, size_t len)
{
	struct rcpt_set *set = ctx;

	for (size_t i = 0; i < set->n; i++)
		if (strlen(set->v[i]) == len && strncasecmp(set->v[i], addr, len) == 0)
			return 0;
	set->v = xgrow(set->v, &set->cap, set->n, sizeof *set->v);
	set->v[set->n++] = xstrndup(addr, len);
	return 0;
}

static void
rcpt_set_free(struct rcpt_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->v[i]);
	free(set->v);
}

/* Each argument is an address list: "a@b", "Joe <a@b>", "a@b, c@d". */
static int
add_arg_rcpts(const struct sendmail_args *a, struct rcpt_set *set)
{
	char show[SHOWN_MAX];

	for (size_t i = 0; i < a->nrcpts; i++) {
		if (rfc5322_parse_addresses(a->rcpts[i], strlen(a->rcpts[i]), rcpt_set_add, set) != 0) {
			fprintf(stderr, "mailredir: bad recipient \"%s\": not an address\n",
			    shown(a->rcpts[i], show, sizeof show));
			return EX_DATAERR;
		}
	}
	return 0;
}

static bool
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* address_check, with UTF-8 allowed for an address that has it (the message
 * then needs SMTPUTF8: *utf8 is set). */
static int
check_address(const char *what, const char *addr, bool *utf8)
{
	unsigned flags = ADDRESS_ALLOW_POSTMASTER;
	enum address_result r;
	char show[SHOWN_MAX];

	if (has_8bit(addr)) {
		flags |= ADDRESS_ALLOW_UTF8;
		*utf8 = true;
	}
	r = address_check(addr, strlen(addr), flags);
	if (r == ADDRESS_OK)
		return 0;
	fprintf(stderr, "mailredir: bad %s address <%s>: %s\n", what,
	    shown(addr, show, sizeof show), address_result_text(r));
	return -1;
}

/* -f <a@b> means a@b; -f <> and -f "" the null sender. */
static char *
sender_from_flag(const char *s)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
		return xstrndup(s + 1, len - 2);
	return xstrdup(s);
}

/* The gecos full name: up to the first ',', with '&' standing for the login
 * name with a capital first letter (the BSD convention). */
static const char *
gecos_name(const struct passwd *pw, char *buf, size_t size)
{
	size_t n = 0;

	if (pw == NULL || pw->pw_gecos == NULL)
		return NULL;
	for (const char *p = pw->pw_gecos; *p != '\0' && *p != ','; p++) {
		if (*p != '&') {
			if (n + 1 < size)
				buf[n++] = *p;
			continue;
		}
		for (const char *l = pw->pw_name; *l != '\0' && n + 1 < size; l++)
			buf[n++] = l == pw->pw_name ? (char)toupper((unsigned char)*l) : *l;
	}
	buf[n] = '\0';
	return n > 0 ? buf : NULL;
}

/* --- input ------------------------------------------------------------------------ */

/* Has a complete line consisting of "." arrived since *from?  Only an early
 * stop for terminals and pipes: inject_msg_prepare makes the real cut. */
static bool
dot_line_seen(const char *buf, size_t len, size_t *from)
{
	const char *lf;

	while ((lf = memchr(buf + *from, '\n', len - *from)) != NULL) {
		size_t n = (size_t)(lf - (buf + *from));

		if ((n == 1 || (n == 2 && buf[*from + 1] == '\r')) && buf[*from] == '.')
			return true;
		*from += n + 1;
	}
	return false;
}

/* At most max octets; max_message_size is for the message. */
static int
read_input(bool stop_at_dot, size_t max, uint64_t max_message_size, char **out,
    size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, line = 0;

	for (;;) {
		ssize_t n;

		if (cap - len < READ_CHUNK) {
			cap = cap ? cap * 2 : 4 * READ_CHUNK;
			buf = xrealloc(buf, cap);
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "mailredir: reading the message: %s\n", strerror(errno));
			free(buf);
			return EX_IOERR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			fprintf(stderr, "mailredir: message too large (max-message-size is %llu)\n",
			    (unsigned long long)max_message_size);
			free(buf);
			return EX_DATAERR;
		}
		if (stop_at_dot && dot_line_seen(buf, len, &line))
			break;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* --- storing ---------------------------------------------------------------------- */

/* For a user who may not write the spool: the Message-ID's left side, in the
 * form of a spool ID (13 hex digits of microseconds, 5 random). */
static void
make_token(char *id, size_t size)
{
	struct timeval tv;
	uint32_t r;

	gettimeofday(&tv, NULL);
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)getpid();
	snprintf(id, size, "%013llX%05X",
	    ((unsigned long long)tv.tv_sec * 1000000ULL + (unsigned long long)tv.tv_usec) &
	    0xFFFFFFFFFFFFFULL, (unsigned)(r & 0xFFFFF));
}

static int
store_direct(struct spool_new *sn, struct spool *spool, struct envelope *env,
    const char *received, const struct inject_msg *msg, struct err *err)
{
	if (spool_new_write(sn, received, strlen(received), err) < 0 ||
	    spool_new_write(sn, msg->content, msg->len, err) < 0 ||
	    spool_new_finish(sn, env, err) < 0 ||
	    spool_commit_batch(spool, &sn, 1, NULL, err) < 0) {
		spool_new_abort(sn);
		return -1;
	}
	return 0;
}

static int
store_drop(const struct config *cfg, struct envelope *env, const char *received,
    const struct inject_msg *msg, struct err *err)
{
	size_t rlen = strlen(received);
	char *all = xmalloc(rlen + msg->len);
	int rc;

	memcpy(all, received, rlen);
	memcpy(all + rlen, msg->content, msg->len);
	rc = spool_drop(cfg->spool, env, all, rlen + msg->len, err);
	free(all);
	return rc;
}

/* A bare local name ("root", as scripts and cron write it) is a user of this
 * host: make it user@hostname, as sendmail and Postfix do. */
static void
qualify(char **addr, const char *hostname)
{
	char *qualified;

	if (**addr == '\0' || address_domain(*addr) != NULL)
		return;
	qualified = xasprintf("%s@%s", *addr, hostname);
	free(*addr);
	*addr = qualified;
}

/* Every recipient qualified, checked and counted; the envelope filled. */
static int
fill_envelope(const struct config *cfg, const char *sender, struct rcpt_set *rcpts,
    const struct inject_msg *msg, bool utf8, struct envelope *env)
{
	for (size_t i = 0; i < rcpts->n; i++)
		qualify(&rcpts->v[i], cfg->hostname);
	for (size_t i = 0; i < rcpts->n; i++)
		if (check_address("recipient", rcpts->v[i], &utf8) < 0)
			return EX_DATAERR;
	if (rcpts->n == 0) {
		fprintf(stderr, "mailredir: no recipients found in the message header\n");
		return EX_DATAERR;
	}
	if (rcpts->n > cfg->max_recipients) {
		fprintf(stderr, "mailredir: too many recipients (%zu; max-recipients is %u)\n",
		    rcpts->n, cfg->max_recipients);
		return EX_DATAERR;
	}
	env->created = time(NULL);
	env->sender = xstrdup(sender);
	env->origin = ORIGIN_SENDMAIL;
	env->client_addr = xstrdup("local");
	env->uid = (long)getuid();
	env->body = msg->eight_bit ? BODY_8BITMIME : BODY_7BIT;
	env->smtputf8 = utf8;
	for (size_t i = 0; i < rcpts->n; i++)
		envelope_add_rcpt(env, rcpts->v[i]);
	return 0;
}

static int
deliver(const struct config *cfg, const struct sendmail_args *a)
{
	struct passwd *pw = getpwuid(getuid());
	struct rcpt_set rcpts = { 0 };
	struct inject_msg msg = { 0 };
	struct envelope env;
	struct spool *spool = NULL;
	struct spool_new *sn = NULL;
	struct inject_opts opts;
	struct err err = { "" };
	char id[ENVELOPE_ID_MAX + 1], name[FULL_NAME_MAX], date[UTIL_RFC5322_DATE_MAX];
	char *input = NULL, *sender = NULL, *received = NULL;
	size_t input_len = 0;
	uint64_t limit = cfg->max_message_size + READ_SLACK;
	bool utf8 = false;
	time_t now = time(NULL);
	int rc;

	envelope_init(&env);
	if (a->nrcpts == 0 && !a->from_headers) {
		fprintf(stderr, "mailredir: no recipients given\n");
		rc = EX_USAGE;
		goto out;
	}
	if ((rc = add_arg_rcpts(a, &rcpts)) != 0)
		goto out;
	if (a->sender != NULL) {
		sender = sender_from_flag(a->sender);
		qualify(&sender, cfg->hostname);
	} else if (pw != NULL)
		sender = xasprintf("%s@%s", pw->pw_name, cfg->hostname);
	else
		sender = xasprintf("uid%ld@%s", (long)getuid(), cfg->hostname);
	if (sender[0] != '\0' && check_address("sender", sender, &utf8) < 0) {
		rc = EX_DATAERR;
		goto out;
	}
	if ((rc = read_input(!a->ignore_dots, limit < SIZE_MAX ? (size_t)limit : SIZE_MAX,
	    cfg->max_message_size, &input, &input_len)) != 0)
		goto out;

	/* The Message-ID needs the queue ID before the content is prepared. */
	/* Root may create a spool no daemon has made yet (cron mail on a fresh
	 * install); the daemon hands it to its user at its first start. */
	if (spool_open(cfg->spool, geteuid() == 0, &spool, &err) < 0)
		goto queue_failed;
	if (spool_writable(spool)) {
		if (spool_new_begin(spool, &sn, &err) < 0)
			goto queue_failed;
		strlcopy(id, spool_new_id(sn), sizeof id);
	} else {
		make_token(id, sizeof id);
	}
	opts = (struct inject_opts){
		.recipients_from_headers = a->from_headers,
		.dot_ends_input = !a->ignore_dots,
		.sender = sender,
		.full_name = a->full_name ? a->full_name : gecos_name(pw, name, sizeof name),
		.hostname = cfg->hostname,
		.queue_id = id,
		.now = now,
		.max_recipients = cfg->max_recipients,
	};
	if (inject_msg_prepare(input, input_len, &opts, &msg, &err) < 0) {
		fprintf(stderr, "mailredir: %s\n", err.msg);
		rc = EX_DATAERR;
		goto out;
	}
	/* The limit applies to what is stored, as for SMTP (CRLF line ends). */
	if (msg.len > cfg->max_message_size) {
		fprintf(stderr, "mailredir: message too large (%zu octets; max-message-size is %llu)\n",
		    msg.len, (unsigned long long)cfg->max_message_size);
		rc = EX_DATAERR;
		goto out;
	}
	for (size_t i = 0; i < msg.nrcpts; i++)
		rcpt_set_add(&rcpts, msg.rcpts[i], strlen(msg.rcpts[i]));
	if ((rc = fill_envelope(cfg, sender, &rcpts, &msg, utf8, &env)) != 0)
		goto out;

	strlcopy(env.id, id, sizeof env.id);
	received = xasprintf("Received: by %s (mailredir, from userid %ld)\r\n\tid %s; %s\r\n",
	    cfg->hostname, (long)getuid(), id, format_rfc5322_date(now, date, sizeof date));
	if (sn != NULL ? store_direct(sn, spool, &env, received, &msg, &err) < 0 :
	    store_drop(cfg, &env, received, &msg, &err) < 0)
		goto queue_failed;
	if (sn != NULL)
		control_notify_rescan(cfg->spool);   /* a daemon tries it at once */
	log_info("%s: from=<%s>, nrcpt=%zu, size=%llu, uid=%ld, origin=sendmail%s", env.id,
	    env.sender, env.nrcpts, (unsigned long long)env.size, env.uid,
	    sn != NULL ? "" : ", via=maildrop");
	rc = 0;
	goto out;

queue_failed:
	fprintf(stderr, "mailredir: could not queue the message: %s\n", err.msg);
	rc = EX_TEMPFAIL;
out:
	if (sn != NULL && rc != 0)
		spool_new_abort(sn);
	spool_new_free(sn);
	spool_close(spool);
	envelope_clear(&env);
	inject_msg_free(&msg);
	rcpt_set_free(&rcpts);
	free(input);
	free(sender);
	free(received);
	return rc;
}

/* --- entry ------------------------------------------------------------------------ */

static int
load_config(const char *path, struct config **cfg)
{
	struct err err = { "" };
	char *line, *save = NULL;

	if (config_load(config_choose_path(path), cfg, &err) == 0)
		return 0;
	for (line = strtok_r(err.msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "mailredir: %s\n", line);
	return EX_CONFIG;
}

static int
run_smtp(const struct config *cfg)
{
	struct spool *spool = NULL;
	struct err err = { "" };
	int rc;

	if (spool_open(cfg->spool, geteuid() == 0, &spool, &err) < 0) {
		fprintf(stderr, "mailredir: %s\n", err.msg);
		return EX_TEMPFAIL;
	}
	rc = smtp_server_stdio(cfg, spool, STDIN_FILENO, STDOUT_FILENO);
	spool_close(spool);
	return rc;
}

int
sendmail_main(int argc, char **argv, const char *config_path)
{
	struct sendmail_args a;
	struct config *cfg = NULL;
	struct err err = { "" };
	int rc;

	log_open(1, LOG_LEVEL_WARN);
	if (parse_args(argc, argv, &a, &err) < 0) {
		fprintf(stderr, "mailredir: %s\n%s", err.msg, usage_text);
		free(a.rcpts);
		return EX_USAGE;
	}
	if ((rc = load_config(a.config ? a.config : config_path, &cfg)) != 0) {
		free(a.rcpts);
		return rc;
	}
	switch (a.mode) {
	case MODE_SMTP:
		rc = run_smtp(cfg);
		break;
	case MODE_LIST_QUEUE:
		rc = queue_cmd_main(cfg, 1, (char *[]){ "queue", NULL });
		break;
	case MODE_FLUSH:
		rc = queue_cmd_flush(cfg, 1, (char *[]){ "flush", NULL });
		break;
	case MODE_DELIVER:
		rc = deliver(cfg, &a);
		break;
	}
	config_free(cfg);
	free(a.rcpts);
	return rc;
}
