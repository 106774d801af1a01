"""The crash test (PRODUCT.md §2, §8): 200 messages from 10 concurrent clients
while the daemon is killed with SIGKILL at random moments and restarted.
Every message that got 250 is in the queue afterwards with its content; no
message is ever visible with incomplete content."""

import os
import random
import re
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (QUEUED_RE, ConnectionClosed, SMTPConn, run_bin, split_received, unfold,
                      wait_until)

N_THREADS = 10
PER_THREAD = 20
N_MESSAGES = N_THREADS * PER_THREAD
RUN_TIMEOUT = 180.0
TOKEN_RE = re.compile(rb"\r\nEND-(tok-[0-9a-f]+)\r\n$")


def make_body(token, rng):
    """A message of random size (a few hundred octets to ~60 KB) ending with
    the line END-<token>."""
    lines = [f"Subject: crash test {token}", f"Message-ID: <{token}@lan.example>", "",
             f"token {token}"]
    lines += [f"{i:05d} " + "c" * 70 for i in range(rng.choice([1, 5, 50, 300, 800]))]
    lines.append(f"END-{token}")
    return ("\r\n".join(lines) + "\r\n").encode()


class Client(threading.Thread):
    """Sends PER_THREAD messages, reconnecting after any failure; each attempt
    has its own token so accounting is exact."""

    def __init__(self, tid, port, deadline, ledger):
        super().__init__(daemon=True)
        self.tid, self.port, self.deadline, self.ledger = tid, port, deadline, ledger
        self.rng = random.Random(tid * 7919 + os.getpid())
        self.conn = None
        self.failures = 0
        self.error = None

    def run(self):
        try:
            for n in range(PER_THREAD):
                while True:
                    if time.monotonic() > self.deadline:
                        raise TimeoutError(f"client {self.tid} still at message {n}")
                    token = f"tok-{uuid.uuid4().hex}"
                    self.ledger.attempt(token)
                    qid = self.try_send(token)
                    if qid:
                        self.ledger.confirm(token, qid)
                        break
                    self.failures += 1
                    time.sleep(0.05)      # the daemon is down: poll again soon
        except Exception as e:            # reported by the test
            self.error = repr(e)
        finally:
            if self.conn:
                self.conn.close()

    def try_send(self, token):
        try:
            if self.conn is None:
                self.conn = SMTPConn(self.port, timeout=60)
                if self.conn.banner.code != 220:
                    raise ConnectionClosed(str(self.conn.banner))
                self.conn.ehlo(f"client{self.tid}.example")
            c = self.conn
            c.send(f"MAIL FROM:<c{self.tid}@lan.example>\r\nRCPT TO:<r{self.tid}@ext.example>\r\n"
                   "DATA\r\n")
            r = c.replies(3)
            if [x.code for x in r] != [250, 250, 354]:
                raise ConnectionClosed(f"unexpected replies {r}")
            # The body goes out in pieces with short pauses, so the run takes
            # a few seconds and kills land in every phase of a transaction.
            body = make_body(token, self.rng) + b".\r\n"
            cuts = sorted(self.rng.randrange(len(body)) for _ in range(2))
            for piece in (body[:cuts[0]], body[cuts[0]:cuts[1]], body[cuts[1]:]):
                c.send(piece)
                time.sleep(self.rng.uniform(0, 0.04))
            r = c.reply()
            m = QUEUED_RE.match(r.first)
            if not m:
                raise ConnectionClosed(f"not queued: {r}")
            if self.rng.random() < 0.3:           # sometimes start afresh
                c.send(b"QUIT\r\n")
                c.close()
                self.conn = None
            return m.group(1)
        except (OSError, ConnectionClosed, AssertionError):
            if self.conn:
                self.conn.close()
            self.conn = None
            return None


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()
        self.confirmed = {}      # token -> queue id
        self.cond = threading.Condition(self.lock)

    def attempt(self, token):
        with self.lock:
            self.attempted.add(token)

    def confirm(self, token, qid):
        with self.lock:
            self.confirmed[token] = qid
            self.cond.notify_all()

    def count(self):
        with self.lock:
            return len(self.confirmed)

    def wait_count(self, n, timeout):
        end = time.monotonic() + timeout
        with self.lock:
            while len(self.confirmed) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def check_visible_messages(relay, attempted, when):
    """Every message `queue --json` shows has complete content: the size the
    envelope promises, our Received: line, and the final line of one of the
    messages sent.  Returns {id: token}."""
    msgs = relay.messages()
    tokens = {}
    for qid, m in msgs.items():
        assert m["state"] == "queued", (when, m)
        path = relay.path("data", qid)
        assert os.path.exists(path), f"{when}: {qid} listed but data/{qid} missing"
        content = relay.content(qid)
        assert m["size"] == len(content), f"{when}: {qid} size {m['size']} != {len(content)}"
        env_size = int(relay.envelope(qid).get("size"))
        assert env_size == len(content), f"{when}: {qid} envelope size {env_size} != {len(content)}"
        mt = TOKEN_RE.search(content)
        assert mt, f"{when}: {qid} content incomplete: ...{content[-200:]!r}"
        token = mt.group(1).decode()
        assert token in attempted, f"{when}: {qid} has unknown token {token}"
        assert content.count(f"token {token}\r\n".encode()) == 1
        header, _ = split_received(content)
        assert f"id {qid}" in unfold(header)
        tokens[qid] = token
    return tokens


def test_no_acknowledged_message_is_lost_when_the_daemon_is_killed(relay):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    print(f"crash test seed {seed}")
    relay.start()
    ledger = Ledger()
    deadline = time.monotonic() + RUN_TIMEOUT
    clients = [Client(t, relay.port, deadline, ledger) for t in range(N_THREADS)]
    for c in clients:
        c.start()

    # Kill at random moments within the run: after a random number of
    # acknowledged messages in each half, plus a random sub-second delay.
    kill_points = [rng.randint(15, N_MESSAGES // 2 - 10),
                   rng.randint(N_MESSAGES // 2 + 10, N_MESSAGES - 15)]
    snapshots = []
    for point in kill_points:
        assert ledger.wait_count(point, RUN_TIMEOUT), f"stuck before {point} messages"
        time.sleep(rng.uniform(0, 0.05))
        with ledger.lock:
            acked_before_kill = dict(ledger.confirmed)
        relay.kill()
        assert len(acked_before_kill) < N_MESSAGES, "the kill came after the run"
        with ledger.lock:
            attempted = set(ledger.attempted)
        # Straight after the crash, before any recovery: nothing half-written
        # is visible and everything acknowledged before the kill is there.
        visible = check_visible_messages(relay, attempted, f"after kill at {point}")
        for token, qid in acked_before_kill.items():
            assert visible.get(qid) == token, f"acknowledged {qid} ({token}) lost by the kill"
        snapshots.append((len(acked_before_kill), len(visible)))
        relay.start()

    for c in clients:
        c.join(timeout=max(1.0, deadline - time.monotonic() + 30))
    errors = [f"client {c.tid}: {c.error}" for c in clients if c.error]
    alive = [c.tid for c in clients if c.is_alive()]
    assert not errors and not alive, (errors, alive, ledger.count())
    assert ledger.count() == N_MESSAGES
    retries = sum(c.failures for c in clients)
    print(f"kills after (acknowledged, visible) {snapshots}; client retries {retries}")
    assert retries > 0, "no client noticed the kills"

    relay.stop()
    with ledger.lock:
        confirmed = dict(ledger.confirmed)
        attempted = set(ledger.attempted)
    visible = check_visible_messages(relay, attempted, "at the end")
    for token, qid in confirmed.items():
        assert visible.get(qid) == token, f"acknowledged {qid} ({token}) missing at the end"
        assert relay.content(qid).endswith(f"END-{token}\r\n".encode())
    assert len(set(confirmed.values())) == N_MESSAGES, "two acknowledgements share an id"
    assert N_MESSAGES <= len(visible) <= len(attempted)
    assert relay.listdir("incoming") == [], "half-received messages left after restart"
    assert set(relay.listdir("data")) == set(visible), "content files without an envelope"
    assert relay.exit_codes[-1] == 0


def test_half_received_messages_are_cleaned_up_at_start(relay):
    """A message in DATA when the daemon dies is never visible and is removed
    at the next start."""
    relay.start(data_timeout="5m")
    c = relay.connect()
    c.ehlo()
    c.expect("MAIL FROM:<alice@lan.example>", 250)
    c.expect("RCPT TO:<bob@ext.example>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: half\r\n\r\n" + (b"h" * 78 + b"\r\n") * 2500)
    # the content is being written when the daemon dies
    wait_until(lambda: any(os.path.getsize(relay.path("data", f)) > 0
                           for f in relay.listdir("data")), 30, what="content on disk")
    relay.kill()
    c.close()
    assert relay.messages() == {}
    relay.start()
    relay.assert_nothing_stored()


def test_a_full_disk_gets_a_temporary_error_and_keeps_what_was_acknowledged(make_relay,
                                                                            small_fs):
    relay = make_relay()
    relay.spool = os.path.join(small_fs, "spool")
    relay.start()
    content = b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 2500    # ~200 KB
    acked = []
    with relay.connect() as c:
        c.ehlo()
        for _ in range(4):
            c.expect("MAIL FROM:<alice@lan.example>", 250)
            c.expect("RCPT TO:<bob@ext.example>", 250)
            c.expect("DATA", 354)
            c.send(content + b".\r\n")
            r = c.reply()
            if r.code == 250:
                acked.append(QUEUED_RE.match(r.first).group(1))
            else:
                assert r.code in (451, 452), r
                break
        else:
            raise AssertionError("a 512 KiB spool took 800 KB")
        c.expect("NOOP", 250)
    assert acked, "nothing fitted"
    assert set(relay.messages()) == set(acked)
    for qid in acked:
        assert split_received(relay.content(qid))[1] == content
    assert relay.listdir("incoming") == []
    assert set(relay.listdir("data")) == set(acked)
    # the injector says "temporary" too
    r = run_bin(["sendmail", "-C", relay.conf, "bob@ext.example"], input=content)
    assert r.returncode == 75, r
    assert set(relay.messages()) == set(acked)


def strace_calls(path):
    """(index, text) of each completed system call in an `strace -f` file, in
    completion order; split calls ("unfinished ... resumed") are joined."""
    pending, calls = {}, []
    with open(path, errors="replace") as f:
        for line in f:
            pid, _, text = line.rstrip("\n").partition(" ")
            text = text.strip()
            if text.endswith("<unfinished ...>"):
                pending[pid] = text[:-len("<unfinished ...>")]
            elif text.startswith("<... ") and " resumed>" in text:
                calls.append((len(calls), pending.pop(pid, "") + text.split(" resumed>", 1)[1]))
            else:
                calls.append((len(calls), text))
    return calls


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_250_comes_only_after_the_sealed_message_is_synced_in_the_journal(relay, tmp_path):
    relay.start()
    trace = str(tmp_path / "trace")
    tracer = subprocess.Popen(
        ["strace", "-f", "-y", "-s", "2000", "-o", trace, "-e",
         "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2,write,writev,pwrite64,"
         "sendmsg,sendto",
         "-p", str(relay.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def traced():
            tasks = os.listdir(f"/proc/{relay.pid}/task")
            for t in tasks:
                with open(f"/proc/{relay.pid}/task/{t}/status") as f:
                    if re.search(r"^TracerPid:\s+0$", f.read(), re.M):
                        return False
            return True
        wait_until(traced, 30, what="strace to attach to every thread")
        qid, _ = relay.submit()
    finally:
        tracer.terminate()
        tracer.wait(timeout=30)
    calls = strace_calls(trace)

    def first(pattern, after=-1):
        rx = re.compile(pattern)
        for i, text in calls:
            if i > after and rx.search(text):
                return i
        raise AssertionError(f"no system call matching {pattern!r}:\n" +
                             "\n".join(t for _, t in calls))
    q = re.escape(qid)
    reply = first(rf"^(write|writev|sendmsg|sendto)\(\d+<(socket|TCP)[^>]*>.*queued as {q}")
    content = first(rf"^write\(\d+<[^>]*/data/{q}>")
    envelope = first(rf"^write\(\d+<[^>]*/incoming/{q}>, \"version 1\\n.*\\ncontent-sha256 [0-9a-f]{{64}}\\n\"")
    # The commit: one record in the journal holding the sealed envelope and
    # the content (the message's token in it), then one fdatasync of the
    # journal -- nothing else.
    record = first(rf"^pwrite64\(\d+<[^>]*/spool/journal>, \"MRJR.*version 1\\n"
                   rf"id {q}\\n.*content-sha256 [0-9a-f]{{64}}\\n.*token ", after=envelope)
    synced = first(r"^fdatasync\(\d+<[^>]*/spool/journal>\) = 0", after=record)
    # queue/ only then, and the 250 after both.
    moved = first(rf"^rename(at2?)?\(.*incoming/{q}.*queue/{q}.*= 0")
    assert content < record and envelope < record < synced < moved, (
        content, envelope, record, synced, moved)
    assert moved < reply, (moved, reply)
    between = [t for i, t in calls if synced < i < reply and re.match(r"^(f(data)?sync|syncfs)", t)]
    assert between == [], between
