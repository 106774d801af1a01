"""Shared rig for the mailredir integration tests.

Each test gets private instances: its own directory with a configuration and a
spool, random free loopback ports, processes stopped by PID.  Tests assert what
a user sees: SMTP replies, bytes in the spool, `queue --json`, exit codes and
log lines.

Pieces meant for reuse by later suites (forwarding through a gateway):
  Relay         writes a configuration, starts/stops `serve --foreground`,
                collects its log, runs the CLI, reads and edits the spool
  SMTPConn      a raw SMTP client: bytes out, replies (multi-line) in
  Envelope      the spool's envelope file, read and edited as `key value` lines
  make_message  a small RFC 5322 message with a unique token and an end line
  free_port, wait_until, ipv6_available

The binary is $MAILREDIR_BIN (the Makefile sets it), else build/mailredir.
The same suite runs against an ASan build: timeouts are generous, nothing
depends on speed, and any sanitizer report in a log fails the test.
"""

import email.utils
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("MAILREDIR_BIN", os.path.join(REPO, "build", "mailredir")))
BIN_DIR = os.path.dirname(BIN)

HOSTNAME = "mx.test.example"
START_TIMEOUT = 30.0      # until "listening on" (ASan builds start slowly)
STOP_TIMEOUT = 20.0       # SIGTERM gives sessions up to 5 s
REPLY_TIMEOUT = 30.0      # one SMTP reply
CLI_TIMEOUT = 60.0        # one CLI command

QUEUE_ID_RE = re.compile(r"^[0-9A-F]{18}$")
QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]{18})$")
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:|MemorySanitizer|ThreadSanitizer")

# States `queue --json` may show (PRODUCT.md §9).
STATES = {"queued", "deferred", "held", "failed"}
SPOOL_STATE_DIRS = {"queue", "held", "failed"}


# --- small helpers -------------------------------------------------------------

def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on host."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return that value.
    Fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def config_lines(keys):
    """Configuration lines from keyword arguments: reply_timeout="3s" ->
    "reply-timeout = 3s"; a list gives the key once per item; None is left
    out."""
    lines = []
    for k, v in keys.items():
        if v is None:
            continue
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            lines.append(f"{k.replace('_', '-')} = {item}")
    return lines


def new_token():
    return uuid.uuid4().hex


def make_message(token=None, subject="test message", sender="alice@lan.example",
                 to="bob@ext.example", body_lines=None, headers=None):
    """A CRLF message whose body carries `token` and ends with "END-<token>".
    Returns (bytes, token)."""
    token = token or new_token()
    hdrs = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
            f"Message-ID: <{token}@lan.example>",
            "Date: " + email.utils.formatdate(localtime=False)]
    if headers:
        hdrs += headers
    body = body_lines if body_lines is not None else [f"token {token}", "second line"]
    lines = hdrs + [""] + list(body) + [f"END-{token}"]
    return ("\r\n".join(lines) + "\r\n").encode(), token


def split_received(content):
    """Split stored content into (our Received: header unfolded, the rest).
    The Received: header is the first header; it ends at the first CRLF that
    is not followed by a space or tab."""
    assert content.startswith(b"Received: "), content[:200]
    i = 0
    while True:
        j = content.index(b"\r\n", i)
        if content[j + 2:j + 3] not in (b" ", b"\t"):
            header = content[:j]
            return header, content[j + 2:]
        i = j + 2


def unfold(header_bytes):
    return re.sub(rb"\r\n[ \t]", b" ", header_bytes).decode("utf-8", "replace")


def check_no_sanitizer_report(text, what):
    m = SANITIZER_RE.search(text or "")
    if m:
        start = max(0, m.start() - 200)
        pytest.fail(f"sanitizer report in {what}:\n{text[start:start + 4000]}")


# --- the raw SMTP client -------------------------------------------------------

class Reply:
    """One SMTP reply: code, text lines (without the "250-" prefixes)."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def first(self):
        """The first line as the server wrote it, e.g. "250 2.1.0 Ok"."""
        return f"{self.code} {self.lines[0]}"

    @property
    def enhanced(self):
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})\b", self.lines[0])
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(" + " | ".join(f"{self.code} {line}" for line in self.lines) + ")"


class ConnectionClosed(Exception):
    pass


class SMTPConn:
    """A raw SMTP client session over a socket: the test decides every byte.

    >>> c = SMTPConn(port); c.banner.code == 220; c.cmd("EHLO x").code == 250
    """

    def __init__(self, port, host="127.0.0.1", source=None, timeout=REPLY_TIMEOUT,
                 read_banner=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.banner = self.reply() if read_banner else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnectionClosed(f"connection closed; unread: {self.buf!r}")
        self.buf += chunk

    def read_line(self, timeout=None):
        timeout = timeout or self.timeout
        while b"\r\n" not in self.buf:
            if b"\n" in self.buf:
                raise AssertionError(f"server sent a bare LF: {self.buf!r}")
            self._fill(timeout)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Read one (possibly multi-line) reply."""
        lines = []
        code = None
        while True:
            line = self.read_line(timeout)
            m = re.match(r"^([2-5]\d\d)([ -])(.*)$", line)
            assert m, f"malformed reply line {line!r}"
            if code is None:
                code = int(m.group(1))
            assert int(m.group(1)) == code, f"code changed inside a reply: {line!r}"
            lines.append(m.group(3))
            if m.group(2) == " ":
                return Reply(code, lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        """Send one command line (CRLF added) and read its reply."""
        self.send(line + "\r\n")
        return self.reply(timeout)

    def expect(self, line, code, enhanced=None):
        r = self.cmd(line)
        assert r.code == code, f"{line!r}: got {r}, want {code}"
        if enhanced:
            assert r.enhanced == enhanced, f"{line!r}: got {r}, want {code} {enhanced}"
        return r

    def ehlo(self, name="client.example"):
        return self.expect(f"EHLO {name}", 250)

    def wait_closed(self, timeout=None):
        """Read until the server closes; return the bytes it sent meanwhile."""
        deadline = time.monotonic() + (timeout or self.timeout)
        got = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server did not close the connection; got {got!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return got
            except socket.timeout:
                continue
            if not chunk:
                return got
            got += chunk

    def send_message(self, content, sender="alice@lan.example", rcpts=("bob@ext.example",),
                     mail_params=""):
        """MAIL, RCPT..., DATA, content (already dot-stuffed, CRLF-terminated),
        the terminating dot.  Returns the queue id from the final reply."""
        self.expect(f"MAIL FROM:<{sender}>{mail_params}", 250, "2.1.0")
        for r in rcpts:
            self.expect(f"RCPT TO:<{r}>", 250, "2.1.5")
        self.expect("DATA", 354)
        self.send(content + b".\r\n")
        r = self.reply()
        m = QUEUED_RE.match(r.first)
        assert m, f"message not queued: {r}"
        return m.group(1)


def dot_stuff(content):
    """Dot-stuff CRLF content for DATA (RFC 5321 §4.5.2)."""
    lines = content.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


# --- the envelope file ---------------------------------------------------------

class Envelope:
    """An envelope file as ordered (key, value) lines; rcpt-* lines belong to
    the nearest preceding rcpt."""

    def __init__(self, text):
        self.lines = []
        for line in text.split("\n"):
            if line == "":
                continue
            key, _, value = line.partition(" ")
            self.lines.append([key, value])

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(f.read())

    def get(self, key, default=None):
        for k, v in self.lines:
            if k == key:
                return v
        return default

    def set(self, key, value):
        """Replace a single-valued key, or insert it before the first rcpt."""
        for line in self.lines:
            if line[0] == key:
                line[1] = str(value)
                return
        idx = next((i for i, (k, _) in enumerate(self.lines) if k == "rcpt"), len(self.lines))
        self.lines.insert(idx, [key, str(value)])

    @property
    def rcpts(self):
        out = []
        for k, v in self.lines:
            if k == "rcpt":
                out.append({"rcpt": v})
            elif k.startswith("rcpt-") and out:
                out[-1][k] = v
        return out

    def set_rcpt(self, address, key, value):
        """Set rcpt-KEY for the recipient `address` (insert the line if absent)."""
        start = None
        for i, (k, v) in enumerate(self.lines):
            if k == "rcpt" and v == address:
                start = i
                break
        assert start is not None, f"no rcpt {address}"
        end = start + 1
        while end < len(self.lines) and self.lines[end][0].startswith("rcpt-"):
            if self.lines[end][0] == key:
                self.lines[end][1] = str(value)
                return
            end += 1
        self.lines.insert(end, [key, str(value)])

    def text(self):
        return "".join(f"{k} {v}\n" for k, v in self.lines)

    def save(self, path):
        tmp = path + ".tmp-test"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.text())
        os.replace(tmp, path)


# --- the relay -----------------------------------------------------------------

class CLIResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.args = proc.args

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self):
        return self.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return (f"CLIResult(args={self.args!r}, rc={self.returncode}, "
                f"stdout={self.out[:2000]!r}, stderr={self.err[:2000]!r})")


def base_env(extra=None):
    env = dict(os.environ)
    env.pop("MAILREDIR_CONFIG", None)
    if extra:
        env.update(extra)
    return env


def run_bin(args, input=None, env=None, argv0=None, timeout=CLI_TIMEOUT, user=None,
            cwd=None):
    """Run the mailredir binary (or a symlink: argv0 = its path) with args.
    user="nobody" runs it as that user (setpriv)."""
    exe = argv0 or BIN
    cmd = [exe] + list(args)
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", "--"] + cmd
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env or base_env(), timeout=timeout, cwd=cwd)
    res = CLIResult(proc)
    check_no_sanitizer_report(res.err, f"stderr of {cmd}")
    return res


class Relay:
    """One private mailredir instance: configuration, spool, process, log.

    relay.start(max_recipients=3)       # keyword = config key ('_' -> '-')
    relay.cli("queue", "--json")        # runs `mailredir -c CONF queue --json`
    """

    def __init__(self, root, name="relay"):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "mailredir.conf")
        self.spool = os.path.join(self.dir, "spool")
        self.port = None
        self.listen = None           # list of "ADDR:PORT" strings; None = one v4 port
        self.settings = {}
        self.extra = ""
        self.serve_args = []         # more `serve` options, e.g. ["--proxy"]
        self.proc = None
        self.log_lines = []
        self._log_cond = threading.Condition()
        self._reader = None
        self.exit_codes = []         # of every instance run, in order

    # configuration ---------------------------------------------------------

    def config_text(self, **settings):
        # defaults every test needs (user = "": keep the current user);
        # a setting overrides one, None leaves the key out
        s = {"spool": self.spool, "user": "", "hostname": HOSTNAME, "log-level": "debug"}
        for k, v in list(self.settings.items()) + list(settings.items()):
            s[k.replace("_", "-")] = v
        lines = ["# written by tests/integration/conftest.py"]
        for l in (self.listen or [f"127.0.0.1:{self.port}"]):
            lines.append(f"listen = {l}")
        for key, v in s.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple)):
                for item in v:
                    lines.append(f"{key} = {item}")
            else:
                lines.append(f"{key} = {v}".rstrip())
        text = "\n".join(lines) + "\n"
        if self.extra:
            text += self.extra if self.extra.endswith("\n") else self.extra + "\n"
        return text

    def write_config(self, text=None, **settings):
        """Write the configuration (from settings, or verbatim text)."""
        if self.port is None:
            self.port = free_port()
        if text is None:
            self.settings.update(settings)
            text = self.config_text()
        with open(self.conf, "w") as f:
            f.write(text)
        return text

    # process ---------------------------------------------------------------

    def start(self, wait=True, **settings):
        """Write the configuration and start `serve --foreground`; with wait,
        return once a "listening on" line has been logged."""
        auto_port = self.port is None and self.listen is None
        for attempt in range(5):
            self.write_config(**settings)
            mark = self._spawn()
            if not wait:
                return self
            got = self.wait_log("listening on", since=mark, timeout=START_TIMEOUT,
                                fail=False)
            if got:
                return self
            rc = self.proc.poll()
            in_use = any("in use" in l for l in self.log_lines[mark:])
            if rc is not None and in_use and auto_port and attempt < 4:
                self.port = free_port()   # someone took it meanwhile
                continue
            pytest.fail(f"mailredir did not start (exit {rc}); log:\n{self.log_text(mark)}")
        return self

    def init_spool(self, **settings):
        """Have the daemon create the spool (directories and permissions),
        then stop it: for tests of the injector and the queue commands
        without a daemon running."""
        self.start(**settings)
        self.stop()
        return self

    def restart(self, **settings):
        self.stop()
        return self.start(**settings)

    def _spawn(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self._log_cond:
            mark = len(self.log_lines)
            self.log_lines.append(f"=== test rig: starting {BIN} serve (instance {len(self.exit_codes) + 1})")
            mark += 1
        self.proc = subprocess.Popen(
            [BIN, "serve", "--foreground", *self.serve_args, "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=base_env(), cwd=self.dir)
        self._reader = threading.Thread(target=self._read_log, args=(self.proc,), daemon=True)
        self._reader.start()
        return mark

    def _read_log(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_cond:
                self.log_lines.append(line)
                self._log_cond.notify_all()
        with self._log_cond:
            self._log_cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.running(), "mailredir is not running"
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the process to exit by itself; return its exit code."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._finish_instance()
            pytest.fail(f"mailredir did not exit within {timeout}s; log:\n{self.log_text()}")
        self._finish_instance()
        return rc

    def _finish_instance(self):
        if self._reader:
            self._reader.join(timeout=10)
            self._reader = None
        self.exit_codes.append(self.proc.returncode)
        check_no_sanitizer_report(self.log_text(), "the mailredir log")

    def stop(self, expect_rc=0, timeout=STOP_TIMEOUT):
        """SIGTERM, wait; SIGKILL and fail if it hangs.  Returns the exit code
        (asserted to be expect_rc unless that is None)."""
        if self.proc is None or self.proc.returncode is not None and self._reader is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if expect_rc is not None:
            assert rc == expect_rc, f"mailredir exited {rc}, want {expect_rc}; log:\n{self.log_text()}"
        return rc

    def kill(self):
        """SIGKILL (the crash test): no clean-up runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)
        self._finish_instance()

    # log -------------------------------------------------------------------

    def mark(self):
        with self._log_cond:
            return len(self.log_lines)

    def log_text(self, since=0):
        with self._log_cond:
            return "\n".join(self.log_lines[since:])

    def wait_log(self, pattern, since=0, timeout=REPLY_TIMEOUT, fail=True):
        """Wait for a log line (at index >= since) matching the regular
        expression `pattern`; return the match (None if fail is False)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._log_cond:
            i = since
            while True:
                while i < len(self.log_lines):
                    m = rx.search(self.log_lines[i])
                    if m:
                        return m
                    i += 1
                exited = self.proc is None or self.proc.poll() is not None
                reader_done = self._reader is None or not self._reader.is_alive()
                left = deadline - time.monotonic()
                if left <= 0 or (exited and reader_done):
                    break
                self._log_cond.wait(min(left, 0.2))
        if fail:
            pytest.fail(f"no log line matching {pattern!r} (process "
                        f"{'exited' if self.proc and self.proc.poll() is not None else 'running'});"
                        f" log:\n{self.log_text(since)}")
        return None

    def log_matches(self, pattern, since=0):
        rx = re.compile(pattern)
        with self._log_cond:
            return [m for m in (rx.search(l) for l in self.log_lines[since:]) if m]

    # SMTP ------------------------------------------------------------------

    def connect(self, **kw):
        return SMTPConn(self.port, **kw)

    def submit(self, content=None, sender="alice@lan.example", rcpts=("bob@ext.example",)):
        """One message over SMTP; returns (queue id, content sent)."""
        if content is None:
            content, _ = make_message(sender=sender, to=rcpts[0])
        with self.connect() as c:
            c.ehlo()
            qid = c.send_message(dot_stuff(content), sender=sender, rcpts=rcpts)
            c.expect("QUIT", 221)
        return qid, content

    # CLI -------------------------------------------------------------------

    def cli(self, *args, **kw):
        """`mailredir -c CONF ARGS...`"""
        return run_bin(["-c", self.conf] + list(args), **kw)

    def queue_json(self):
        r = self.cli("queue", "--json")
        assert r.returncode == 0, r
        try:
            doc = json.loads(r.out)
        except ValueError as e:
            pytest.fail(f"queue --json printed no JSON ({e}): {r}")
        return doc

    def messages(self):
        return {m["id"]: m for m in self.queue_json()["messages"]}

    def wait_for_messages(self, n, timeout=REPLY_TIMEOUT):
        return wait_until(lambda: (lambda ms: ms if len(ms) >= n else None)(self.messages()),
                          timeout, interval=0.2, what=f"{n} message(s) in the queue")

    # spool -----------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.spool, *parts)

    def content(self, qid):
        with open(self.path("data", qid), "rb") as f:
            return f.read()

    def envelope_path(self, qid):
        for d in SPOOL_STATE_DIRS:
            p = self.path(d, qid)
            if os.path.exists(p):
                return p
        return None

    def envelope(self, qid):
        p = self.envelope_path(qid)
        assert p, f"no envelope for {qid} in {SPOOL_STATE_DIRS}"
        return Envelope.load(p)

    def listdir(self, name):
        p = self.path(name)
        if not os.path.isdir(p):
            return []
        return sorted(n for n in os.listdir(p) if not n.startswith("."))

    def assert_nothing_stored(self):
        """Nothing queued, nothing left half-written (polls: clean-up may
        follow the reply)."""
        def clean():
            leftovers = {d: self.listdir(d) for d in ("incoming", "data", "queue", "held", "failed")}
            return all(not v for v in leftovers.values()) or None
        deadline = time.monotonic() + 10
        while not clean():
            if time.monotonic() > deadline:
                leftovers = {d: self.listdir(d) for d in ("incoming", "data", "queue", "held", "failed")}
                pytest.fail(f"spool not empty: {leftovers}")
            time.sleep(0.05)
        assert self.messages() == {}

    def fail_message(self, qid, reply="550 5.1.1 <bob@ext.example>: no such user"):
        """Turn a queued message into a failed one, as delivery would (the
        daemon must not hold it: stop it first)."""
        env = self.envelope(qid)
        for r in env.rcpts:
            env.set_rcpt(r["rcpt"], "rcpt-status", "failed")
            env.set_rcpt(r["rcpt"], "rcpt-reply", reply)
        env.set("attempts", 1)
        env.set("last-try", int(time.time()))
        env.set("last-reply", reply)
        src = self.path("queue", qid)
        env.save(src)
        os.rename(src, self.path("failed", qid))

    def defer_message(self, qid, next_try, reply="451 4.3.0 try again later"):
        env = self.envelope(qid)
        for r in env.rcpts:
            env.set_rcpt(r["rcpt"], "rcpt-status", "deferred")
            env.set_rcpt(r["rcpt"], "rcpt-reply", reply)
        env.set("attempts", 1)
        env.set("last-try", int(time.time()))
        env.set("next-try", int(next_try))
        env.set("last-reply", reply)
        env.save(self.path("queue", qid))


@pytest.fixture(scope="session", autouse=True)
def binary_exists():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"{BIN} is not built (run make, or set MAILREDIR_BIN)")
    return BIN


@pytest.fixture
def make_relay(tmp_path):
    """Factory for Relay instances; every started one is stopped (SIGTERM,
    then SIGKILL and a failure if it hangs) after the test."""
    relays = []

    def make(name="relay", root=None):
        r = Relay(str(root or tmp_path), name=f"{name}{len(relays) or ''}")
        relays.append(r)
        return r

    yield make
    problems = []
    for r in relays:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
            try:
                rc = r.proc.wait(timeout=STOP_TIMEOUT)
                if rc != 0:
                    problems.append(f"{r.dir}: exit {rc} after SIGTERM, want 0")
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
                problems.append(f"{r.dir}: did not exit after SIGTERM")
        elif r.proc is not None and r._reader is not None and r.proc.returncode not in (0, None):
            problems.append(f"{r.dir}: mailredir exited {r.proc.returncode} by itself")
        if r._reader is not None:
            r._reader.join(timeout=10)
            r._reader = None
        text = r.log_text()
        if SANITIZER_RE.search(text):
            problems.append(f"{r.dir}: sanitizer report in the log")
        if text:
            print(f"--- log of {r.dir}\n{text}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def relay(make_relay):
    """A Relay, not started yet: call relay.start(**settings)."""
    return make_relay()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (switches to nobody)")


@pytest.fixture
def public_dir():
    """A 0755 directory under /tmp that unprivileged users can traverse (pytest's
    tmp_path lives below a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="mailredir-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def small_fs(tmp_path):
    """A directory on a private 512 KiB tmpfs (disk-full tests); skips
    where mounting is not permitted."""
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stdout.decode(errors='replace').strip()}")
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def symlink_path(name):
    """build/sendmail, build/mailq next to the binary."""
    return os.path.join(BIN_DIR, name)


def assert_received(header, client_addr, qid, helo="client.example", rcpt=None):
    """Check our Received: line (unfolded text)."""
    assert header.startswith(f"Received: from {helo} ("), header
    assert f"[{client_addr}]" in header or f"[IPv6:{client_addr}]" in header, header
    assert f"by {HOSTNAME} (mailredir)" in header, header
    assert re.search(rf"\bid {qid}\b", header), header
    if rcpt:
        assert f"for <{rcpt}>" in header, header
    else:
        assert " for <" not in header, header
    date = header.rsplit(";", 1)[1].strip()
    assert email.utils.parsedate_to_datetime(date) is not None, header


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)
