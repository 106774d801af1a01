/* sendmail.h - `mailredir sendmail ...` and the `sendmail` symlink: the
 * sendmail(1)-compatible injector (mailredir.8, SENDMAIL). */
#ifndef MAILREDIR_SENDMAIL_H
#define MAILREDIR_SENDMAIL_H

/* argv[0] is "sendmail" (or the command name); the rest are sendmail flags
 * and recipients.  config_path: from a -c before the command, or NULL (then
 * -C FILE or -c FILE, $MAILREDIR_CONFIG, /etc/mailredir.conf).  Reads the
 * message from stdin (to EOF, or to a lone "." line unless -i / -oi).
 *
 * Flags may come before or after the recipients (as with GNU getopt) and
 * may be grouped ("-ti"); "--" ends them.  Each recipient argument is an
 * RFC 5322 address list ("a@b", "Joe <a@b>", "a@b, c@d").  With -t the
 * addresses of To/Cc/Bcc are added to those of the arguments (as Postfix
 * and msmtp do), duplicates dropped.  The message goes straight into the
 * spool when this process may write it, else into the maildrop; a
 * "Received: by HOSTNAME (mailredir, from userid UID)" line comes first.
 * Quiet on success.  Returns a sysexits code: 0 queued, 64 usage,
 * 65 bad message, address or too many recipients, 74 reading stdin failed,
 * 75 could not queue now, 78 configuration; -bs, -bp and -q return what
 * smtp_server_stdio, queue_cmd_main and queue_cmd_flush return. */
int sendmail_main(int argc, char **argv, const char *config_path);

#endif
