/* log.h - logging: stderr in the foreground, syslog (facility mail) when
 * daemonised.  One line per event, queue id first, then key=value pairs
 * (STYLE.md §3).  Never pass a secret to these functions.  Thread-safe. */
#ifndef MAILREDIR_LOG_H
#define MAILREDIR_LOG_H

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* to_stderr: 1 = "mailredir[pid]: level: text" lines on stderr, 0 = syslog. */
void log_open(int to_stderr, enum log_level max_level);
/* After a reload. */
void log_set_level(enum log_level max_level);
void log_msg(enum log_level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
