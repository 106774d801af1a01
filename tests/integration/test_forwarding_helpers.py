"""Helpers shared by the forwarding suites (test_forwarding_*.py,
test_probe.py); no tests of its own.

    peer_route(peer, **keys)      a [route] section for a FaultPeer (tls = none)
    submit(relay, rcpts)          one message over SMTP, (qid, content, token)
    wait_delivery(relay, qid, rcpt, status)   the §9 delivery log line, parsed
    delivery_lines(relay, qid)    every delivery line of a message, parsed
    wait_state(relay, qid, pred)  the message in `queue --json` once pred holds
    accepted_with(peer, token)    the messages a peer accepted that carry token
    iso_ts(s)                     queue --json timestamps as epoch seconds
    secret_places(relay)          every text a secret must never reach
"""

import base64
import calendar
import json
import os
import re
import time

import pytest

from conftest import config_lines, make_message, new_token, wait_until

SENDER = "alice@lan.example"

# PRODUCT.md §9, one per recipient per attempt, in this key order.
DELIVERY_RE = re.compile(
    r"^mailredir\[(?P<pid>\d+)\]: info: (?P<id>[0-9A-F]{18}): "
    r"to=<(?P<to>[^<>]*)>, from=<(?P<from>[^<>]*)>, envelope-from=<(?P<envfrom>[^<>]*)>, "
    r"route=(?P<route>[^ ,]+), "
    r"relay=(?P<relay>none|(?P<host>[^\[\], ]+)\[(?P<addr>[^\]]+)\]:(?P<port>\d+)), "
    r"tls=(?P<tls>TLSv1\.[23]|none), auth=(?P<auth>[A-Z0-9_-]+|none), "
    r"delay=(?P<delay>\d+(?:\.\d+)?), attempts=(?P<attempts>\d+), "
    r"status=(?P<status>sent|deferred|failed) \((?P<reply>.*)\)$")


def peer_route(peer, name="peer", tls="none", reply_timeout="3s", connect_timeout="3s",
               **extra):
    """A [route] section pointing at a FaultPeer (no credentials unless
    given: user=..., password_file=...)."""
    lines = [f"[route {name}]", f"smarthost = 127.0.0.1:{peer.port}"]
    if tls:
        lines.append(f"tls = {tls}")
    if reply_timeout:
        lines.append(f"reply-timeout = {reply_timeout}")
    if connect_timeout:
        lines.append(f"connect-timeout = {connect_timeout}")
    lines += config_lines(extra)
    return "\n".join(lines) + "\n"


def dead_port():
    """A loopback port where nobody listens (connection refused)."""
    from conftest import free_port
    return free_port()


def submit(relay, rcpts, sender=SENDER, body_lines=None, subject="forwarding test"):
    """One message over SMTP; returns (qid, content, token)."""
    content, token = make_message(sender=sender, to=rcpts[0], body_lines=body_lines,
                                  subject=subject)
    qid, _ = relay.submit(content=content, sender=sender, rcpts=tuple(rcpts))
    return qid, content, token


def parse_delivery(line):
    m = DELIVERY_RE.match(line)
    return m.groupdict() if m else None


def delivery_lines(relay, qid=None, rcpt=None):
    """Every delivery line (parsed) of the relay's log, for qid / rcpt."""
    out = []
    with relay._log_cond:
        lines = list(relay.log_lines)
    for line in lines:
        d = parse_delivery(line)
        if d and (qid is None or d["id"] == qid) and (rcpt is None or d["to"] == rcpt):
            d["line"] = line
            out.append(d)
    return out


def wait_delivery(relay, qid, rcpt=None, status=None, attempts=None, timeout=30.0):
    """The first delivery line of qid (for rcpt, with status, at attempts)
    in §9 form; fails the test (with the log) when none comes."""
    def found():
        for d in delivery_lines(relay, qid, rcpt):
            if (status is None or d["status"] == status) and (
                    attempts is None or int(d["attempts"]) == attempts):
                return d
        return None
    deadline = time.monotonic() + timeout
    while True:
        d = found()
        if d:
            return d
        if time.monotonic() > deadline:
            pytest.fail(f"no delivery line for {qid} rcpt={rcpt} status={status} "
                        f"attempts={attempts} within {timeout}s; log:\n{relay.log_text()}")
        time.sleep(0.05)


def queue_entry(relay, qid):
    return relay.messages().get(qid)


def wait_state(relay, qid, pred, timeout=30.0, what="state"):
    """queue --json's entry for qid once pred(entry) is true (entry may be
    None: the message left the spool)."""
    last = {}

    def check():
        e = queue_entry(relay, qid)
        last["e"] = e
        return (e,) if pred(e) else None
    try:
        return wait_until(check, timeout, interval=0.1, what=what)[0]
    except pytest.fail.Exception:
        pytest.fail(f"{qid}: timed out waiting for {what}; last entry: "
                    f"{json.dumps(last.get('e'), indent=1)}\nlog:\n{relay.log_text()}")


def rcpt_status(entry):
    """{address: (status, reply)} of a queue --json entry."""
    return {r["address"]: (r["status"], r["reply"]) for r in entry["recipients"]}


def accepted_with(peer, token):
    """Messages the peer accepted (2xx after the dot) that carry token."""
    return [m for m in list(peer.messages) if token.encode() in m.data]


def seen_with(peer, token):
    """Every transaction that reached the peer's DATA with token in it,
    accepted or not (complete or cut)."""
    out = []
    for s in list(peer.sessions):
        for m in list(s.messages):
            if token.encode() in m.raw_data or token.encode() in m.data:
                out.append(m)
    return out


def iso_ts(s):
    """"2026-11-24T03:05:00Z" -> epoch seconds."""
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def secret_needles(user, password):
    u, p = user.encode(), password.encode()
    return [p, base64.b64encode(p), base64.b64encode(b"\0" + u + b"\0" + p),
            base64.b64encode(u + b"\0" + u + b"\0" + p)]


def spool_files(relay):
    """(path, bytes) of every file under the spool."""
    out = []
    for root, _dirs, files in os.walk(relay.spool):
        for name in files:
            p = os.path.join(root, name)
            try:
                with open(p, "rb") as f:
                    out.append((p, f.read()))
            except OSError:
                pass
    return out


def assert_no_secret(where, data, user, password):
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    for n in secret_needles(user, password):
        assert n not in data, f"the secret ({n!r}) appears in {where}"


def unique_rcpt(tag):
    return f"{tag}-{new_token()[:10]}@ext.example"
