/* main.c - command dispatch only (mailredir.8, COMMANDS).
 *
 * `-c FILE` may stand before or after the command name; the program invoked
 * as `sendmail` is the injector and as `mailq` is `queue`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "deliver.h"
#include "worker.h"
#include "log.h"
#include "probe.h"
#include "route_cmd.h"
#include "queue_cmd.h"
#include "sendmail.h"
#include "spool.h"
#include "util.h"

#define MAILREDIR_VERSION "0.1.0"

static const char usage_text[] =
    "usage: mailredir [-c FILE] COMMAND [ARGS]\n"
    "commands:\n"
    "  serve [--foreground] [--proxy]  the daemon: listen, queue (--proxy: the\n"
    "                              reply to DATA is the gateway's)\n"
    "  check                       validate the configuration\n"
    "  queue [--json]              list the queue (also: mailq)\n"
    "  queue show|hold|release|delete ID, queue retry ID|all\n"
    "  flush                       deliver what is queued now\n"
    "  probe [ROUTE]               show, step by step, a session with the gateway\n"
    "  route ADDRESS... [-f FROM]  which route, envelope sender and header From: mail\n"
    "                              to ADDRESS would get, and why\n"
    "  sendmail [FLAGS] RCPT...    the sendmail(1) interface (also: sendmail)\n"
    "  --version, --help\n"
    "The configuration: -c FILE, else $MAILREDIR_CONFIG, else " CONFIG_DEFAULT_PATH ".\n";

static int
usage(int code)
{
	fputs(usage_text, code == 0 ? stdout : stderr);
	return code;
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Remove every "-c FILE" from argv (in place); returns the last FILE or NULL,
 * or sets *bad when -c has no argument. */
static const char *
take_config_option(int *argc, char **argv, int *bad)
{
	const char *path = NULL;
	int out = 0;

	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= *argc) {
				*bad = 1;
				return NULL;
			}
			path = argv[++i];
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return path;
}

static int
load(const char *path_option, struct config **cfg)
{
	const char *path = config_choose_path(path_option);
	struct err err = { "" };

	if (config_load(path, cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 78;
	}
	return 0;
}

static int
cmd_check(const char *path_option)
{
	struct config *cfg;
	int rc = load(path_option, &cfg);

	if (rc != 0)
		return rc;
	printf("%s: configuration OK\n", cfg->path);
	config_free(cfg);
	return 0;
}

static int
cmd_serve(const char *path_option, int argc, char **argv)
{
	struct daemon_opts opts = { .config_path = config_choose_path(path_option) };
	struct config *cfg;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0)
			opts.foreground = true;
		else if (strcmp(argv[i], "--proxy") == 0)
			opts.proxy = true;
		else {
			fprintf(stderr, "mailredir serve: unknown option %s\n", argv[i]);
			return usage(64);
		}
	}
	if ((rc = load(path_option, &cfg)) != 0)
		return rc;
	return daemon_main(cfg, &opts);
}

/* The session narrated at log-level debug (AUTH lines masked by the client). */
static void
trace_to_debug_log(void *ctx, const char *line)
{
	(void)ctx;
	log_debug("%s", line);
}

/* The configuration the daemon loaded, from an inherited descriptor: a
 * worker must not read a file that may have changed since. */
static int
load_from_fd(const char *fd_text, const char *path_option, struct config **cfg)
{
	struct err err = { "" };
	char *text = NULL;
	size_t len = 0, cap = 0;
	int fd = atoi(fd_text), rc;
	ssize_t n;

	for (;;) {
		if (cap - len < 4096)
			text = xrealloc(text, cap = cap ? 2 * cap : 8192);
		n = pread(fd, text + len, cap - len - 1, (off_t)len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	rc = n < 0 ? err_sys(&err, "configuration descriptor %s", fd_text) :
	    config_load_string(text, config_choose_path(path_option), cfg, &err);
	explicit_bzero(text, len);      /* it may hold a password */
	free(text);
	if (rc < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 78;
	}
	return 0;
}

/* `deliver [--config-fd N] [--syslog] --worker`: a delivery worker, started
 * by the daemon's scheduler and fed batches on stdin (worker.h); `deliver
 * [--force] ID...` tries the given messages once (internal; mailredir.8,
 * DELIVERY). */
static int
cmd_deliver(const char *path_option, int argc, char **argv)
{
	struct deliver_stats stats = { .report = worker_report };
	struct netio_trace trace = { trace_to_debug_log, NULL };
	struct spool *spool = NULL;
	struct config *cfg = NULL;
	struct err err = { "" };
	const char *config_fd = NULL;
	bool force = false, syslog = false, worker = false;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (strcmp(argv[i], "--syslog") == 0)
			syslog = true;
		else if (strcmp(argv[i], "--worker") == 0)
			worker = true;
		else if (strcmp(argv[i], "--config-fd") == 0 && i + 1 < argc)
			config_fd = argv[++i];
		else
			return usage(64);
	}
	if (worker == (i < argc))     /* either a worker or IDs */
		return usage(64);
	rc = config_fd ? load_from_fd(config_fd, path_option, &cfg) : load(path_option, &cfg);
	if (rc != 0)
		return rc;
	log_open(!syslog, cfg->log_level);
	if (spool_open(cfg->spool, false, &spool, &err) < 0) {
		log_err("deliver: %s", err.msg);
		rc = 75;
	} else if (worker) {
		if (worker_main(cfg, spool, cfg->log_level >= LOG_LEVEL_DEBUG ? &trace : NULL,
		    STDIN_FILENO) < 0)
			rc = 75;
	} else if (deliver_run(cfg, spool, (const char *const *)argv + i, (size_t)(argc - i), force,
	    NULL, &stats, cfg->log_level >= LOG_LEVEL_DEBUG ? &trace : NULL, &err) < 0) {
		log_err("deliver: %s", err.msg);
		rc = 75;
	}
	spool_close(spool);
	config_free(cfg);
	return rc;
}

/* Commands that need nothing but a loaded configuration. */
static int
with_config(const char *path_option, int (*run)(const struct config *, int, char **),
    int argc, char **argv)
{
	struct config *cfg;
	int rc = load(path_option, &cfg);

	if (rc != 0)
		return rc;
	log_open(1, LOG_LEVEL_WARN);
	rc = run(cfg, argc, argv);
	config_free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *self = base_name(argv[0]);
	const char *path_option;
	int bad = 0;

	/* A gateway that hangs up mid-write must be an error, not a silent death:
	 * OpenSSL writes with write(2), which raises SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(self, "sendmail") == 0)
		return sendmail_main(argc, argv, NULL);
	if (strcmp(self, "mailq") == 0) {
		argv[0] = "queue";
		path_option = take_config_option(&argc, argv, &bad);
		return bad ? usage(64) : with_config(path_option, queue_cmd_main, argc, argv);
	}

	argc--;
	argv++;
	/* sendmail flags (-f, -C...) must reach the injector untouched. */
	if (argc >= 3 && strcmp(argv[0], "-c") == 0 && strcmp(argv[2], "sendmail") == 0)
		return sendmail_main(argc - 2, argv + 2, argv[1]);
	if (argc >= 1 && strcmp(argv[0], "sendmail") == 0)
		return sendmail_main(argc, argv, NULL);

	path_option = take_config_option(&argc, argv, &bad);
	if (bad || argc < 1)
		return usage(64);
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0)
		return usage(0);
	if (strcmp(argv[0], "--version") == 0) {
		printf("mailredir %s\n", MAILREDIR_VERSION);
		return 0;
	}
	if (strcmp(argv[0], "serve") == 0)
		return cmd_serve(path_option, argc, argv);
	if (strcmp(argv[0], "check") == 0)
		return argc == 1 ? cmd_check(path_option) : usage(64);
	if (strcmp(argv[0], "queue") == 0)
		return with_config(path_option, queue_cmd_main, argc, argv);
	if (strcmp(argv[0], "flush") == 0)
		return with_config(path_option, queue_cmd_flush, argc, argv);
	if (strcmp(argv[0], "probe") == 0)
		return with_config(path_option, probe_main, argc, argv);
	if (strcmp(argv[0], "route") == 0)
		return with_config(path_option, route_cmd_main, argc, argv);
	if (strcmp(argv[0], "deliver") == 0)
		return cmd_deliver(path_option, argc, argv);
	fprintf(stderr, "mailredir: unknown command %s\n", argv[0]);
	return usage(64);
}
