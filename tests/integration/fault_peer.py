"""A scripted, fault-injecting SMTP peer for the delivery tests.

Real servers (the private Postfix of gateway.py) do not misbehave on cue; this
peer does.  It is asyncio on a thread of the test process, stdlib only, on a
random loopback port, and it records every byte each connection sent it.

    peer = FaultPeer(Script(rcpts={"bad@ext.example": "550 5.1.1 no such user"},
                            data_end=Reply("250 2.0.0 Ok", delay=10)))
    peer.start()                       # or: with FaultPeer(...) as peer:
    ... point a route at 127.0.0.1:peer.port with tls = none ...
    msg = peer.wait_for(rcpt="good@ext.example", timeout=20)
    peer.sessions[0].commands          # ["EHLO x", "MAIL FROM:<a@b>", ...]
    peer.stop()

A Script says what one connection gets.  Every reply slot (banner, ehlo,
helo, mail, rcpt, data, data_end, rset, noop, quit, starttls, auth,
auth_result, unknown) takes:
  - a string: "250 2.1.0 Ok", or several lines joined by "\\n" (the
    continuation dashes are added: "250 a\\n250 b" or "250 a\\nb" both work);
  - a Reply: text plus delay= (slow reply), close= (close after it),
    drop=True (close without answering), raw=b"..." (garbage, sent verbatim);
  - a list: one entry per occurrence of the command in the connection, the
    last one repeating (rcpt=["250 Ok", "452 4.5.3 Too many recipients"]);
  - a callable(session, argument) returning any of the above.
rcpts={address: spec} overrides `rcpt` per recipient (case-insensitive).
drop_after_data_bytes=N closes the connection once N bytes of message data
have arrived (no reply).  A 421 reply closes the connection after it.

FaultPeer(script) uses the script for every connection; FaultPeer([s1, s2])
uses s1 for the first connection, s2 for the second and later ones;
peer.set_script() changes it for the connections still to come (a peer that
"recovers").  RecordingPeer never offers STARTTLS or AUTH and tells whether a
client tried AUTH anyway or sent a secret (`credentials_seen`).

The capture behind the private Postfix (gateway.Capture) is a FaultPeer with
the default, accept-everything script.
"""

import asyncio
import base64
import re
import ssl
import threading
import time

import pytest

DEFAULT_EHLO = ("PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES")
PEER_NAME = "peer.test.example"
MAIL_RE = re.compile(r"^MAIL FROM:\s*<([^<>]*)>\s*(.*)$", re.I)
RCPT_RE = re.compile(r"^RCPT TO:\s*<([^<>]*)>\s*(.*)$", re.I)
CODE_RE = re.compile(r"^(\d{3})(?:[ -](.*))?$", re.S)
MAX_LINE = 65536


class Reply:
    """One reply of the peer.

    text    "250 2.0.0 Ok" or lines joined by "\\n"
    delay   seconds to wait before answering (a slow server)
    close   close the connection after answering (default: only after 421)
    drop    close the connection without answering (after delay)
    raw     bytes sent verbatim instead of text (garbage, bare LF, ...)
    """

    def __init__(self, text=None, delay=0.0, close=None, drop=False, raw=None):
        self.text = text
        self.delay = delay
        self.close = close
        self.drop = drop
        self.raw = raw

    @property
    def code(self):
        """The reply code (of raw bytes too, when they start with one)."""
        if self.text is not None:
            first = self.text.split("\n", 1)[0]
        elif self.raw is not None:
            first = self.raw.split(b"\n", 1)[0].decode("latin-1").rstrip("\r")
        else:
            return None
        m = CODE_RE.match(first)
        return int(m.group(1)) if m else None

    def wire(self):
        """The bytes that go out."""
        if self.raw is not None:
            return self.raw
        lines = self.text.split("\n")
        m = CODE_RE.match(lines[0])
        if not m:
            raise ValueError(f"reply without a code: {self.text!r}")
        code = m.group(1)
        texts = []
        for i, line in enumerate(lines):
            lm = CODE_RE.match(line)
            if lm and (i == 0 or lm.group(1) == code):
                texts.append(lm.group(2) or "")
            else:
                texts.append(line)
        out = []
        for i, t in enumerate(texts):
            sep = " " if i == len(texts) - 1 else "-"
            out.append(f"{code}{sep}{t}")
        return ("\r\n".join(out) + "\r\n").encode()

    def closes(self):
        if self.close is not None:
            return self.close
        return self.code == 421

    def __repr__(self):
        what = self.raw if self.raw is not None else self.text
        extra = "".join([f", delay={self.delay}" if self.delay else "",
                         ", drop" if self.drop else "",
                         f", close={self.close}" if self.close is not None else ""])
        return f"Reply({what!r}{extra})"


def drop(delay=0.0):
    """Close the connection without a reply."""
    return Reply(drop=True, delay=delay)


def garbage(raw=b"this is not smtp\r\n", delay=0.0, close=False):
    return Reply(raw=raw, delay=delay, close=close)


def slow(text, delay):
    return Reply(text, delay=delay)


class Script:
    """What one connection gets.  See the module docstring."""

    def __init__(self, banner="220 " + PEER_NAME + " ESMTP fault peer", banner_delay=0.0,
                 ehlo=DEFAULT_EHLO, ehlo_tls=None, helo="250 " + PEER_NAME,
                 mail="250 2.1.0 Ok", rcpt="250 2.1.5 Ok", rcpts=None,
                 data="354 End data with <CR><LF>.<CR><LF>",
                 data_end="250 2.0.0 Ok: queued as {id}", drop_after_data_bytes=None,
                 rset="250 2.0.0 Ok", noop="250 2.0.0 Ok", quit="221 2.0.0 Bye",
                 starttls="220 2.0.0 Ready to start TLS", starttls_context=None,
                 auth=None, auth_result="235 2.7.0 Authentication successful",
                 unknown="502 5.5.2 Error: command not recognized"):
        self.banner = banner
        self.banner_delay = banner_delay
        # ehlo: capability list (the first line, the greeting, is added) or a reply spec
        self.ehlo = ehlo
        self.ehlo_tls = ehlo_tls
        self.helo = helo
        self.mail = mail
        self.rcpt = rcpt
        self.rcpts = {k.lower(): v for k, v in (rcpts or {}).items()}
        self.data = data
        self.data_end = data_end
        self.drop_after_data_bytes = drop_after_data_bytes
        self.rset = rset
        self.noop = noop
        self.quit = quit
        self.starttls = starttls
        self.starttls_context = starttls_context
        self.auth = auth
        self.auth_result = auth_result
        self.unknown = unknown

    def capabilities(self, tls_active):
        caps = self.ehlo_tls if (tls_active and self.ehlo_tls is not None) else self.ehlo
        if isinstance(caps, (list, tuple)):
            caps = [c for c in caps if not (tls_active and c.upper() == "STARTTLS")]
        return caps


class Message:
    """One mail transaction that reached the end of DATA (or was cut in it)."""

    def __init__(self, session, mail_from, mail_params):
        self.session = session
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.rcpt_tos = []          # accepted recipients
        self.rcpt_params = {}
        self.refused_rcpts = {}     # address -> reply text
        self.raw_data = b""         # as on the wire, dot-stuffed, without the final ".\r\n"
        self.data = b""             # dot-unstuffed: the message
        self.complete = False       # the final dot arrived
        self.reply = None           # our reply to the final dot (None: none sent)
        self.accepted = False       # a 2xx reply went out
        self.time = None

    def __repr__(self):
        return (f"Message(from={self.mail_from!r}, to={self.rcpt_tos!r}, "
                f"{len(self.data)} bytes, complete={self.complete}, reply={self.reply!r})")


class Session:
    """One connection: everything the client sent, what we did."""

    def __init__(self, index, peer_addr):
        self.index = index
        self.peer_addr = peer_addr
        self.received = bytearray()     # every byte the client sent (after TLS: decrypted)
        self.cleartext = bytearray()    # the part sent before TLS, if any
        self.sent = bytearray()         # every byte we sent
        self.commands = []              # command lines (str), not DATA content
        self.messages = []              # Message, every transaction that sent DATA
        self.tls = False
        self.discarded_at_starttls = b""  # pipelined bytes after STARTTLS (thrown away)
        self.auth_lines = []
        self.closed = False
        self.close_reason = None
        self.started = time.monotonic()
        self.ended = None
        self.error = None
        self.counts = {}

    @property
    def auth_attempted(self):
        return any(c.upper().startswith("AUTH") for c in self.commands)

    def __repr__(self):
        return (f"Session({self.index}, tls={self.tls}, commands={self.commands!r}, "
                f"closed={self.close_reason!r})")


class _Closed(Exception):
    pass


class FaultPeer:
    """The peer: a thread with an asyncio loop and a listening socket.

    tls_context: an ssl.SSLContext (server side) for implicit TLS.
    """

    def __init__(self, script=None, host="127.0.0.1", port=0, tls_context=None, name="peer"):
        self.scripts = script if isinstance(script, (list, tuple)) else [script or Script()]
        self.host = host
        self.port = port
        self.tls_context = tls_context
        self.name = name
        self.sessions = []
        self.messages = []          # accepted messages, in order
        self._cond = threading.Condition()
        self._loop = None
        self._server = None
        self._thread = None
        self._tasks = set()
        self._queue_id = 0

    # life cycle --------------------------------------------------------------

    def start(self):
        ready = threading.Event()
        errors = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(asyncio.start_server(
                    self._serve, self.host, self.port, ssl=self.tls_context,
                    reuse_address=True, limit=MAX_LINE * 2))
                self.port = self._server.sockets[0].getsockname()[1]
            except Exception as e:   # noqa: BLE001 - handed to the starting thread
                errors.append(e)
                ready.set()
                return
            ready.set()
            try:
                self._loop.run_forever()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name=f"fault-peer-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self):
        if self._loop is None or self._thread is None:
            return

        async def shutdown():
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        if self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
            try:
                fut.result(10)
            except Exception:   # noqa: BLE001 - best effort at teardown
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def set_script(self, script):
        """The script (or list of scripts) for connections from now on, and
        for the next commands of connections still open (the relay's workers
        keep their gateway session between messages, as a real gateway would
        serve a fixed problem on an old connection too)."""
        with self._cond:
            done = len(self.sessions)
            new = script if isinstance(script, (list, tuple)) else [script]
            # keep the scripts of closed sessions so that indexes stay meaningful
            self.scripts = [self._script_for(i) if self.sessions[i].closed else new[0]
                            for i in range(done)] + list(new)

    def _script_for(self, index):
        return self.scripts[min(index, len(self.scripts) - 1)]

    # waiting -----------------------------------------------------------------

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{self.name}: timed out after {timeout}s waiting for {what};"
                                f" sessions: {self.sessions!r}")
                self._cond.wait(min(left, 0.5))

    def wait_for(self, rcpt=None, timeout=30.0, n=1):
        """The first accepted message for rcpt (any when None); with n > 1 a
        list of the first n such messages."""
        def found():
            ms = [m for m in self.messages
                  if rcpt is None or rcpt.lower() in (r.lower() for r in m.rcpt_tos)]
            return (ms[0] if n == 1 else ms[:n]) if len(ms) >= n else None
        return self._wait(found, timeout, f"{n} message(s) for {rcpt or 'anyone'}")

    def wait_sessions(self, n, closed=True, timeout=30.0):
        """The first n sessions, once they are (closed=True) closed."""
        def found():
            s = self.sessions[:n]
            return s if len(s) >= n and (not closed or all(x.closed for x in s)) else None
        return self._wait(found, timeout, f"{n} {'closed ' if closed else ''}session(s)")

    def received_all(self):
        with self._cond:
            return b"".join(bytes(s.received) for s in self.sessions)

    def cleartext_all(self):
        with self._cond:
            return b"".join(bytes(s.cleartext) for s in self.sessions)

    @property
    def auth_attempted(self):
        """Did any client send an AUTH command?"""
        with self._cond:
            return any(s.auth_attempted for s in self.sessions)

    def credentials_seen(self, user, password, cleartext_only=False):
        """True when a secret, or its usual SASL encodings, reached us."""
        data = self.cleartext_all() if cleartext_only else self.received_all()
        u, p = user.encode(), password.encode()
        needles = [p, base64.b64encode(p), base64.b64encode(b"\0" + u + b"\0" + p),
                   base64.b64encode(u + b"\0" + u + b"\0" + p)]
        return any(n in data for n in needles)

    # the protocol ------------------------------------------------------------

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        with self._cond:
            index = len(self.sessions)
            session = Session(index, writer.get_extra_info("peername"))
            session.tls = writer.get_extra_info("sslcontext") is not None
            self.sessions.append(session)
            script = self._script_for(index)
            self._cond.notify_all()
        conn = _Conn(self, session, script, reader, writer)
        try:
            await conn.run()
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            session.close_reason = session.close_reason or "peer stopped"
        except Exception as e:   # noqa: BLE001 - a bug of the peer: visible in the session
            session.close_reason = f"peer error: {e!r}"
            session.error = e
        finally:
            try:
                writer.close()
            except Exception:   # noqa: BLE001
                pass
            with self._cond:
                session.closed = True
                session.ended = time.monotonic()
                session.close_reason = session.close_reason or "client closed"
                self._cond.notify_all()
            self._tasks.discard(task)

    def _next_queue_id(self):
        with self._cond:
            self._queue_id += 1
            return f"{self._queue_id:06X}"


class _Conn:
    @property
    def script(self):
        """Looked up at each use: set_script reaches open sessions too."""
        with self.peer._cond:
            return self.peer._script_for(self.s.index)

    def __init__(self, peer, session, script, reader, writer):
        self.peer = peer
        self.s = session
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.helo = None
        self.msg = None

    # bytes -------------------------------------------------------------------

    async def _fill(self):
        chunk = await self.reader.read(65536)
        if not chunk:
            self.s.close_reason = self.s.close_reason or "client closed"
            raise _Closed()
        with self.peer._cond:
            self.s.received += chunk
            if not self.s.tls:
                self.s.cleartext += chunk
        self.buf += chunk

    async def readline(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                await self.send(Reply("500 5.5.0 Error: line too long", close=True))
            await self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    async def send(self, reply):
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            self.s.close_reason = "dropped by script"
            self.writer.transport.abort()
            raise _Closed()
        data = reply.wire()
        with self.peer._cond:
            self.s.sent += data
        self.writer.write(data)
        await self.writer.drain()
        if reply.closes():
            self.s.close_reason = f"closed by script after {data[:40]!r}"
            raise _Closed()

    def resolve(self, spec, key, arg=None, default=None):
        """A reply spec (see the module docstring) for the count-th `key`."""
        count = self.s.counts.get(key, 0)
        self.s.counts[key] = count + 1
        while True:
            if spec is None:
                spec = default
                if spec is None:
                    return None
            if callable(spec) and not isinstance(spec, Reply):
                spec = spec(self.s, arg)
                continue
            if isinstance(spec, (list, tuple)):
                spec = spec[min(count, len(spec) - 1)]
                continue
            if isinstance(spec, str):
                return Reply(spec.replace("{id}", self.peer._next_queue_id())
                             if "{id}" in spec else spec)
            return spec

    # the dialogue ------------------------------------------------------------

    async def run(self):
        if self.script.banner_delay:
            await asyncio.sleep(self.script.banner_delay)
        await self.send(self.resolve(self.script.banner, "banner"))
        while True:
            raw = await self.readline()
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            with self.peer._cond:
                self.s.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            handler = getattr(self, "cmd_" + verb.lower(), None)
            if handler is None:
                await self.send(self.resolve(self.script.unknown, "unknown", line))
                continue
            await handler(line, arg)

    async def cmd_ehlo(self, line, arg):
        spec = self.script.capabilities(self.s.tls)
        if isinstance(spec, (list, tuple)):
            # a capability list (a per-occurrence EHLO reply needs a callable)
            spec = "\n".join([f"250 {PEER_NAME}"] + [f"250 {c}" for c in spec])
        reply = self.resolve(spec, "ehlo", arg)
        self.helo = arg
        self.msg = None
        await self.send(reply)

    async def cmd_helo(self, line, arg):
        self.helo = arg
        self.msg = None
        await self.send(self.resolve(self.script.helo, "helo", arg))

    async def cmd_mail(self, line, arg):
        m = MAIL_RE.match(line)
        if not m:
            return await self.send(Reply("501 5.5.4 Syntax: MAIL FROM:<address>"))
        if self.msg is not None:
            return await self.send(Reply("503 5.5.1 Error: nested MAIL command"))
        reply = self.resolve(self.script.mail, "mail", m.group(1))
        if reply.code and 200 <= reply.code < 300:
            self.msg = Message(self.s, m.group(1), m.group(2))
        await self.send(reply)

    async def cmd_rcpt(self, line, arg):
        m = RCPT_RE.match(line)
        if not m:
            return await self.send(Reply("501 5.5.4 Syntax: RCPT TO:<address>"))
        if self.msg is None:
            return await self.send(Reply("503 5.5.1 Error: need MAIL command"))
        addr = m.group(1)
        spec = self.script.rcpts.get(addr.lower(), self.script.rcpt)
        reply = self.resolve(spec, "rcpt:" + addr.lower() if addr.lower() in self.script.rcpts
                             else "rcpt", addr)
        if reply.code and 200 <= reply.code < 300:
            self.msg.rcpt_tos.append(addr)
            self.msg.rcpt_params[addr] = m.group(2)
        elif reply.text:
            self.msg.refused_rcpts[addr] = reply.text
        await self.send(reply)

    async def cmd_data(self, line, arg):
        if self.msg is None:
            return await self.send(Reply("503 5.5.1 Error: need MAIL command"))
        if not self.msg.rcpt_tos:
            return await self.send(Reply("554 5.5.1 Error: no valid recipients"))
        reply = self.resolve(self.script.data, "data")
        await self.send(reply)
        if not (reply.code and 300 <= reply.code < 400):
            return
        msg, self.msg = self.msg, None
        with self.peer._cond:
            self.s.messages.append(msg)
        limit = self.script.drop_after_data_bytes
        # the data ends at "\r\n.\r\n" (or ".\r\n" at its very start)
        while True:
            if self.buf.startswith(b".\r\n"):
                end, skip = 0, 3
                break
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                end, skip = i + 2, i + 5
                break
            if limit is not None and len(self.buf) >= limit:
                msg.raw_data = self.buf[:limit]
                self.s.close_reason = f"dropped after {limit} bytes of DATA"
                self.writer.transport.abort()
                raise _Closed()
            await self._fill()
        if limit is not None and end >= limit:
            msg.raw_data = self.buf[:limit]
            self.s.close_reason = f"dropped after {limit} bytes of DATA"
            self.writer.transport.abort()
            raise _Closed()
        msg.raw_data, self.buf = self.buf[:end], self.buf[skip:]
        msg.data = re.sub(rb"(^|\r\n)\.", rb"\1", msg.raw_data)
        msg.complete = True
        msg.time = time.time()
        reply = self.resolve(self.script.data_end, "data_end")
        msg.reply = None if reply.drop else (reply.text if reply.raw is None else reply.raw)
        if reply.code and 200 <= reply.code < 300:
            # recorded before the reply goes out: a client that saw 250 finds it
            msg.accepted = True
            with self.peer._cond:
                self.peer.messages.append(msg)
                self.peer._cond.notify_all()
        await self.send(reply)

    async def cmd_rset(self, line, arg):
        self.msg = None
        await self.send(self.resolve(self.script.rset, "rset"))

    async def cmd_noop(self, line, arg):
        await self.send(self.resolve(self.script.noop, "noop"))

    async def cmd_quit(self, line, arg):
        reply = self.resolve(self.script.quit, "quit")
        await self.send(reply)
        if reply.close is not False:
            self.s.close_reason = "QUIT"
            raise _Closed()

    async def cmd_starttls(self, line, arg):
        caps = self.script.capabilities(self.s.tls)
        offered = isinstance(caps, (list, tuple)) and any(c.upper() == "STARTTLS" for c in caps)
        ctx = self.script.starttls_context
        if self.s.tls or not offered or ctx is None:
            return await self.send(Reply("502 5.5.1 Error: command not implemented"))
        reply = self.resolve(self.script.starttls, "starttls")
        await self.send(reply)
        if reply.code != 220:
            return
        # what the client pipelined after STARTTLS is never read as commands
        pending = getattr(self.reader, "_buffer", None)
        self.s.discarded_at_starttls = self.buf + (bytes(pending) if pending else b"")
        self.buf = b""
        if pending:
            pending.clear()
        await self.writer.start_tls(ctx)
        self.s.tls = True
        self.helo = None
        self.msg = None

    async def cmd_auth(self, line, arg):
        """The script's `auth` reply when set; else a minimal PLAIN/LOGIN
        exchange that accepts anything and answers `auth_result`."""
        self.s.auth_lines.append(line)
        if self.script.auth is not None:
            reply = self.resolve(self.script.auth, "auth", arg)
            await self.send(reply)
            while reply.code == 334:
                resp = (await self.readline()).rstrip(b"\r\n").decode("utf-8", "replace")
                self.s.auth_lines.append(resp)
                reply = self.resolve(self.script.auth, "auth", resp)
                await self.send(reply)
            return
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        if mech == "PLAIN":
            if len(parts) < 2:
                await self.send(Reply("334 "))
                self.s.auth_lines.append((await self.readline()).rstrip(b"\r\n").decode())
        elif mech == "LOGIN":
            steps = ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"]
            if len(parts) >= 2:
                steps = steps[1:]
            for st in steps:
                await self.send(Reply(st))
                self.s.auth_lines.append((await self.readline()).rstrip(b"\r\n").decode())
        else:
            return await self.send(Reply("504 5.5.4 Unrecognized authentication type"))
        await self.send(self.resolve(self.script.auth_result, "auth_result"))


class RecordingPeer(FaultPeer):
    """A server that offers neither STARTTLS nor AUTH, accepts mail, and
    records everything: `auth_attempted`, `credentials_seen(user, password)`."""

    def __init__(self, ehlo=("PIPELINING", "SIZE 52428800", "8BITMIME"), **kw):
        super().__init__(Script(ehlo=list(ehlo), auth=Reply("503 5.5.1 Error: authentication not enabled")),
                         name="recording-peer", **kw)


def server_context(cert_file, key_file):
    """A server-side SSLContext for implicit TLS or STARTTLS on a FaultPeer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@pytest.fixture
def make_fault_peer():
    """Factory: make_fault_peer(script, tls_context=None) -> a started
    FaultPeer, stopped after the test; make_fault_peer(recording=True) -> a
    started RecordingPeer."""
    peers = []

    def make(script=None, recording=False, **kw):
        p = RecordingPeer(**kw) if recording else FaultPeer(script, **kw)
        peers.append(p)
        return p.start()

    yield make
    for p in peers:
        p.stop()
