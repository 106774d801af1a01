/* control.c - the client side of the control socket; see control.h.  The
 * daemon's side is in daemon.c. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "util.h"

int
control_request(const char *spool_dir, const char *request, char *reply, size_t size,
    unsigned timeout_s, struct err *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd, rc = -1;

	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "%s/%s", spool_dir,
	    CONTROL_NAME) >= sizeof sun.sun_path)
		return err_set(err, "%s/%s: path too long for a socket", spool_dir, CONTROL_NAME);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return err_sys(err, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ? 1 : err_sys(err, "%s", sun.sun_path);
		goto out;
	}
	if (write_all(fd, request, strlen(request)) < 0 || write_all(fd, "\n", 1) < 0) {
		err_sys(err, "%s: write", sun.sun_path);
		goto out;
	}
	while (got + 1 < size) {
		struct pollfd p = { fd, POLLIN, 0 };
		int n = poll(&p, 1, timeout_s ? (int)timeout_s * 1000 : -1);
		ssize_t r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set(err, "%s: no answer from the daemon", sun.sun_path);
			goto out;
		}
		if ((r = read(fd, reply + got, size - 1 - got)) < 0) {
			if (errno == EINTR)
				continue;
			err_sys(err, "%s: read", sun.sun_path);
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (memchr(reply, '\n', got) != NULL)
			break;
	}
	reply[got] = '\0';
	if (got == 0 || reply[got - 1] != '\n') {
		err_set(err, "%s: the daemon closed the connection without an answer", sun.sun_path);
		goto out;
	}
	reply[got - 1] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

void
control_notify_rescan(const char *spool_dir)
{
	char reply[CONTROL_LINE_MAX];
	struct err err;

	(void)control_request(spool_dir, "rescan", reply, sizeof reply, 2, &err);
}
