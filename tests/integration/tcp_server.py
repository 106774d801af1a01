"""A threaded TCP server on a random loopback port for the scripted peers of
the tests (login_peer.py, the policy service in login_rig.py): one thread
accepts, one thread per connection runs serve(conn); stop() closes the
listener and every open connection and joins the threads.

    class Echo(ThreadedServer):
        def serve(self, conn):
            conn.sendall(conn.recv(100))

    with Echo() as server:           # or server = Echo().start() ... stop()
        socket.create_connection((server.host, server.port))
"""

import socket
import threading


class ThreadedServer:
    name = "server"

    def __init__(self, host="127.0.0.1", backlog=16):
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(backlog)
        self.host, self.port = self._sock.getsockname()
        self.sessions = 0              # connections accepted
        self._conns = set()
        self._threads = []
        self._stopping = False

    def serve(self, conn):
        """Talk to one connection (it is closed afterwards)."""
        raise NotImplementedError

    def start(self):
        t = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self._threads.append(t)
        t.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    conn.close()
                    return
                self._conns.add(conn)
                self.sessions += 1
            t = threading.Thread(target=self._serve, args=(conn,), name=f"{self.name}-conn",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn):
        try:
            self.serve(conn)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def stop(self):
        with self._lock:
            self._stopping = True
            conns = list(self._conns)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
