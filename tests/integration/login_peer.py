"""Scripted, recording POP3 and IMAP servers for the login-before-smtp tests
that a real Dovecot cannot play: an old ISP server that offers nothing but
USER/PASS or LOGIN on cleartext (no STLS/STARTTLS, no SASL, no APOP).

    peer = Pop3Peer(capa=["USER"]).start()       # or: with Pop3Peer(...) as peer:
    ... login-before-smtp = pop3://127.0.0.1:{peer.port} ...
    peer.commands          # every command line received, in order, all sessions
    peer.stop()

Pop3Peer answers every command from `replies` (upper-case verb -> "+OK ..."
or "-ERR ..."), "+OK" when the verb is not there; CAPA gets `capa` as a
multi-line answer (None: "-ERR" as a server without RFC 2449 would).
ImapPeer greets with `capabilities` in the greeting and answers every tagged
command OK (LOGOUT with a BYE first), or as `replies` (verb -> "NO ...").
Neither checks a password: what they record is the point.
"""

from tcp_server import ThreadedServer


class LinePeer(ThreadedServer):
    """Greeting, then answer(line) per line received, on each connection."""

    greeting = ""

    def __init__(self, replies=None, host="127.0.0.1"):
        super().__init__(host)
        self.replies = dict(replies or {})
        self.commands = []

    def verbs(self):
        """The command verbs received (IMAP: without the tag)."""
        with self._lock:
            return [self.verb(c) for c in self.commands]

    @staticmethod
    def verb(line):
        return line.split(" ", 1)[0].upper()

    def answer(self, line):
        """(reply bytes, close after it)"""
        raise NotImplementedError

    def serve(self, conn):
        conn.settimeout(10)
        with conn.makefile("rb") as f:
            conn.sendall(self.greeting.encode() + b"\r\n")
            for raw in f:
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                with self._lock:
                    self.commands.append(line)
                reply, close = self.answer(line)
                conn.sendall(reply)
                if close:
                    break


class Pop3Peer(LinePeer):
    def __init__(self, greeting="+OK POP3 server ready", capa=("USER",), **kw):
        super().__init__(**kw)
        self.greeting = greeting
        self.capa = capa

    def answer(self, line):
        verb = self.verb(line)
        if verb == "CAPA" and self.capa is not None:
            body = "".join(f"{c}\r\n" for c in self.capa)
            return f"+OK capabilities\r\n{body}.\r\n".encode(), False
        reply = self.replies.get(verb, "-ERR no CAPA" if verb == "CAPA" else "+OK")
        return reply.encode() + b"\r\n", verb == "QUIT"


class ImapPeer(LinePeer):
    def __init__(self, capabilities="IMAP4rev1", **kw):
        super().__init__(**kw)
        self.greeting = f"* OK [CAPABILITY {capabilities}] IMAP server ready"

    @staticmethod
    def verb(line):
        parts = line.split(" ", 2)
        return parts[1].upper() if len(parts) > 1 else ""

    def answer(self, line):
        tag, verb = line.split(" ", 1)[0], self.verb(line)
        if verb == "LOGOUT":
            return f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n".encode(), True
        reply = self.replies.get(verb, "OK done")
        return f"{tag} {reply}\r\n".encode(), False
