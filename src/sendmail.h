/* sendmail.h - `mailredir sendmail ...` and the `sendmail` symlink: the
 * sendmail(1)-compatible injector (mailredir.8, SENDMAIL). */
#ifndef MAILREDIR_SENDMAIL_H
#define MAILREDIR_SENDMAIL_H

/* argv[0] is "sendmail" (or the command name); the rest are sendmail flags
 * and recipients.  config_path: from a -c before the command, or NULL (then
 * -C FILE, $MAILREDIR_CONFIG, /etc/mailredir.conf).  Reads the message from
 * stdin.  Returns a sysexits code: 0 queued, 64 usage, 65 bad message,
 * 75 could not queue now, 78 configuration. */
int sendmail_main(int argc, char **argv, const char *config_path);

#endif
