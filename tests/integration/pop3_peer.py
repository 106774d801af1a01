"""A scripted, recording POP3 server for the login-before-smtp tests that a
real Dovecot cannot play: an old ISP server that offers nothing but USER/PASS
on cleartext (no STLS, no SASL, no APOP), or one that fails on cue.

    peer = Pop3Peer(capa=["USER"]).start()
    ... login-before-smtp = pop3://127.0.0.1:{peer.port} ...
    peer.commands          # every command line received, in order, all sessions
    peer.stop()

Every command is answered from `replies` (upper-case verb -> "+OK ..." or
"-ERR ..."), "+OK" when the verb is not there; CAPA gets `capa` as a
multi-line answer (None: "-ERR" as a server without RFC 2449 would).  It
checks no password: what it records is the point.
"""

import socket
import threading


class Pop3Peer:
    def __init__(self, greeting="+OK POP3 server ready", capa=("USER",), replies=None,
                 host="127.0.0.1"):
        self.greeting = greeting
        self.capa = capa
        self.replies = dict(replies or {})
        self.commands = []
        self.sessions = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(8)
        self.host, self.port = self._sock.getsockname()
        self._lock = threading.Lock()
        self._threads = []
        self._stopping = False

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stopping = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def verbs(self):
        with self._lock:
            return [c.split(" ", 1)[0].upper() for c in self.commands]

    def _accept(self):
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.sessions += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        conn.settimeout(10)
        f = conn.makefile("rb")
        try:
            conn.sendall(self.greeting.encode() + b"\r\n")
            for raw in f:
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                with self._lock:
                    self.commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                if verb == "CAPA" and self.capa is not None:
                    body = "".join(f"{c}\r\n" for c in self.capa)
                    conn.sendall(f"+OK capabilities\r\n{body}.\r\n".encode())
                    continue
                reply = self.replies.get(verb, "-ERR no CAPA" if verb == "CAPA" else "+OK")
                conn.sendall(reply.encode() + b"\r\n")
                if verb == "QUIT":
                    break
        except OSError:
            pass
        finally:
            f.close()
            conn.close()
