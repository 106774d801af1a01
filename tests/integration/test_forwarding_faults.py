"""Forwarding to a scripted, fault-injecting peer (fault_peer.py): what real
servers do not do on cue.  Each fault leaves the message in the state
PRODUCT.md §3 names (deferred for 4xx, drops, timeouts and garbage; failed
for 5xx) and, once the peer recovers, it arrives exactly once: no loss, no
duplicate -- except after a drop after the final dot, where SMTP cannot
know (its own test, which documents it).

The daemon runs with `retry = 1h` so that nothing is retried behind the
test's back; recovery is `mailredir flush` (which asks the daemon).
"""

import base64
import os
import time

import pytest

from fault_peer import Script, drop, garbage, make_fault_peer  # noqa: F401
from fault_peer import server_context, slow
from gateway import shared_ca
from test_forwarding_helpers import (accepted_with, peer_route, rcpt_status, submit,
                                     unique_rcpt, wait_delivery, wait_state)

NO_RETRY = dict(retry="1h", retry_max="1h")
PASSWORD = "Peer-pass-Q4z7-xx"
USER = "joe@isp.example"


def long_body():
    return [f"line {i:04d} " + "y" * 60 for i in range(40)]


def all_transactions(peer):
    """Every transaction that reached DATA, accepted or not, complete or cut."""
    return [m for s in list(peer.sessions) for m in list(s.messages)]


def secret_file(tmp_path, password=PASSWORD):
    p = os.path.join(str(tmp_path), "secret")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    return p


def recover_and_flush(relay, peer, qid, token, rcpt):
    """The peer accepts everything from now on; `mailredir flush` (asking
    the daemon) delivers the message: exit 0, exactly one copy arrives."""
    peer.set_script(Script())
    r = relay.cli("flush")
    assert r.returncode == 0, r
    got = accepted_with(peer, token)
    assert len(got) == 1, got
    assert got[0].rcpt_tos == [rcpt]
    wait_state(relay, qid, lambda e: e is None, timeout=10, what="the message to leave the spool")
    return got[0]


def deferred_entry(relay, qid, rcpt):
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    assert e["state"] == "deferred", e
    status, reply = rcpt_status(e)[rcpt]
    assert status == "deferred", e
    assert e["next_try"] is not None
    return e, reply


# --- the connection goes away -----------------------------------------------------------

def test_a_connection_dropped_in_the_middle_of_data_defers_and_a_flush_delivers_it_once(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(drop_after_data_bytes=300))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("middrop")
    qid, content, token = submit(relay, [rcpt], body_lines=long_body())
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    deferred_entry(relay, qid, rcpt)
    [cut] = all_transactions(peer)
    assert not cut.complete and not cut.accepted
    assert peer.messages == []
    got = recover_and_flush(relay, peer, qid, token, rcpt)
    assert got.data.endswith(content)
    assert wait_delivery(relay, qid, rcpt, status="sent")["attempts"] == "2"
    assert d["attempts"] == "1"


def test_a_drop_after_the_final_dot_defers_and_the_recipient_may_get_the_message_twice(
        make_fault_peer, relay):
    """The documented, unavoidable duplicate (mailredir.8, DELIVERY): the
    gateway got the whole message but the connection died before its reply,
    so mailredir cannot know it was taken.  It keeps the message deferred
    (never lost) and sends it again: the gateway has it twice."""
    peer = make_fault_peer(Script(data_end=drop()))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("dotdrop")
    qid, content, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    deferred_entry(relay, qid, rcpt)
    [first] = all_transactions(peer)
    assert first.complete and first.data.endswith(content) and first.reply is None
    got = recover_and_flush(relay, peer, qid, token, rcpt)
    # the duplicate: two complete copies reached the gateway, one of them
    # unacknowledged; the recipient may see both
    complete = [m for m in all_transactions(peer) if m.complete and m.data.endswith(content)]
    assert len(complete) == 2 and got in complete


def test_a_421_banner_defers_without_a_transaction_and_a_flush_delivers_once(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(banner="421 4.3.2 Service not available, closing channel"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("banner421")
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    assert "421" in d["reply"], d["line"]
    _, reply = deferred_entry(relay, qid, rcpt)
    assert "421" in reply
    assert all(s.commands == [] for s in peer.sessions), peer.sessions
    recover_and_flush(relay, peer, qid, token, rcpt)


# --- per-recipient results ----------------------------------------------------------------

def test_mixed_rcpt_replies_give_each_recipient_its_own_status_and_only_open_ones_are_retried(
        make_fault_peer, relay):
    ok, later, full, nobody = (unique_rcpt(t) for t in ("ok", "later", "full", "nobody"))
    peer = make_fault_peer(Script(rcpts={later: "451 4.3.0 try again later",
                                         full: "452 4.2.2 mailbox full",
                                         nobody: "550 5.1.1 no such user"}))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY, bounce="none")  # no report to the peer: sessions are counted
    qid, content, token = submit(relay, [ok, later, full, nobody])
    for r, status in ((ok, "sent"), (later, "deferred"), (full, "deferred"), (nobody, "failed")):
        wait_delivery(relay, qid, r, status=status, attempts=1)
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    st = rcpt_status(e)
    assert e["state"] == "deferred", e
    assert st[ok][0] == "sent" and st[ok][1].startswith("250"), st
    assert st[later] == ("deferred", "451 4.3.0 try again later"), st
    assert st[full] == ("deferred", "452 4.2.2 mailbox full"), st
    assert st[nobody] == ("failed", "550 5.1.1 no such user"), st
    [first] = accepted_with(peer, token)
    assert first.rcpt_tos == [ok]
    # the peer recovers for the deferred two; the refused one stays refused
    peer.set_script(Script(rcpts={nobody: "550 5.1.1 no such user"}))
    r = relay.cli("flush")
    assert r.returncode == 0, r            # nothing left queued or deferred: failed is kept
    msgs = accepted_with(peer, token)
    assert len(msgs) == 2, msgs
    assert sorted(msgs[1].rcpt_tos) == sorted([later, full])   # ok is never sent again
    assert nobody not in msgs[1].rcpt_tos and all(
        nobody not in s.commands[-1] for s in peer.sessions[1:] if s.commands)
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", timeout=10,
                   what="the message failed (one recipient refused) and kept")
    st = rcpt_status(e)
    assert st[ok][0] == st[later][0] == st[full][0] == "sent", st
    assert st[nobody] == ("failed", "550 5.1.1 no such user"), st
    assert relay.envelope_path(qid) == relay.path("failed", qid)
    for r in (later, full):
        assert wait_delivery(relay, qid, r, status="sent")["attempts"] == "2"


def test_a_552_after_the_final_dot_fails_the_message_and_keeps_it(make_fault_peer, relay):
    peer = make_fault_peer(Script(data_end="552 5.3.4 Message size exceeds fixed limit"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY, bounce="none")  # no report to the peer: sessions are counted
    rcpt = unique_rcpt("big")
    qid, content, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="failed")
    assert d["reply"] == "552 5.3.4 Message size exceeds fixed limit", d["line"]
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", what="failed and kept")
    assert rcpt_status(e)[rcpt] == ("failed", "552 5.3.4 Message size exceeds fixed limit")
    assert e["next_try"] is None
    assert relay.envelope_path(qid) == relay.path("failed", qid)
    [m] = all_transactions(peer)
    assert m.complete and not m.accepted and m.data.endswith(content)
    # a flush leaves a failed message alone: no second attempt
    n = len(peer.sessions)
    r = relay.cli("flush")
    assert r.returncode == 0, r
    time.sleep(0.3)
    assert len(peer.sessions) == n and peer.messages == []


def test_a_550_to_every_recipient_fails_the_message_without_data(make_fault_peer, relay):
    peer = make_fault_peer(Script(rcpt="550 5.1.1 no such user"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpts = [unique_rcpt("gone1"), unique_rcpt("gone2")]
    qid, _, _ = submit(relay, rcpts)
    for r in rcpts:
        wait_delivery(relay, qid, r, status="failed")
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", what="failed and kept")
    assert all(s == ("failed", "550 5.1.1 no such user") for s in rcpt_status(e).values()), e
    assert all_transactions(peer) == []
    # DATA may be pipelined (RFC 2920) but, refused, no content follows it
    for s in peer.sessions:
        assert all(c.split(" ", 1)[0].upper() in ("EHLO", "HELO", "MAIL", "RCPT", "DATA",
                                                  "RSET", "QUIT", "NOOP")
                   for c in s.commands), s.commands


# --- slow and broken peers -------------------------------------------------------------------

@pytest.mark.parametrize("slot", ["banner", "ehlo", "mail", "rcpt", "data"])
def test_a_reply_slower_than_reply_timeout_defers_in_bounded_time_and_a_flush_delivers_once(
        make_fault_peer, relay, slot):
    if slot == "banner":
        script = Script(banner_delay=8)
    elif slot == "ehlo":
        script = Script(ehlo=slow("250-peer.test.example\n250 PIPELINING", 8))
    else:
        script = Script(**{slot: slow(getattr(Script(), slot), 8)})
    peer = make_fault_peer(script)
    relay.extra = peer_route(peer, reply_timeout="2s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("slow" + slot)
    t0 = time.monotonic()
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred", timeout=30)
    took = time.monotonic() - t0
    # a silent banner costs a TLS check (reply-timeout at most) and a second wait
    assert took < (12 if slot == "banner" else 7), f"deferred after {took:.1f}s: {d['line']}"
    _, reply = deferred_entry(relay, qid, rcpt)
    assert reply, "no reason recorded"
    assert peer.messages == []
    recover_and_flush(relay, peer, qid, token, rcpt)


@pytest.mark.parametrize("slot,raw", [
    ("banner", b"hello, I am not an SMTP reply\r\n"),
    ("ehlo", b"250-peer.test.example\r\nPIPELINING\r\n"),
    ("mail", b"999 9.9.9 a code out of range\r\n"),
    ("rcpt", b"\x00\xff\xfe binary junk\r\n"),
    ("data", b"35\r\n"),
    ("data_end", b"hello, I am not an SMTP reply\r\n"),
])
def test_a_garbage_reply_is_temporary_and_the_message_arrives_once_after_recovery(
        make_fault_peer, relay, slot, raw):
    script = Script(**{slot: garbage(raw)})
    peer = make_fault_peer(script)
    relay.extra = peer_route(peer, reply_timeout="2s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("garbage")
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, timeout=20)
    assert d["status"] == "deferred", d["line"]
    deferred_entry(relay, qid, rcpt)
    assert peer.messages == []
    recover_and_flush(relay, peer, qid, token, rcpt)


def test_several_due_messages_share_one_connection_with_rset_between(make_fault_peer, relay):
    peer = make_fault_peer(Script(banner="421 4.3.2 not now"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    sent = []
    for i in range(3):
        rcpt = unique_rcpt(f"batch{i}")
        qid, content, token = submit(relay, [rcpt])
        wait_delivery(relay, qid, rcpt, status="deferred")
        sent.append((qid, rcpt, token))
    n = len(peer.sessions)
    peer.set_script(Script())
    r = relay.cli("flush")
    assert r.returncode == 0, r
    for qid, rcpt, token in sent:
        assert len(accepted_with(peer, token)) == 1
    new = peer.sessions[n:]
    assert len(new) == 1, new
    cmds = [c.split(":", 1)[0].split(" ", 1)[0].upper() for c in new[0].commands]
    assert cmds.count("MAIL") == 3 and cmds.count("RSET") >= 2, new[0].commands
    assert relay.messages() == {}


# --- credentials only where they are safe ------------------------------------------------------

def test_tls_starttls_against_a_gateway_without_starttls_defers_and_sends_no_credentials(
        make_fault_peer, relay, tmp_path):
    peer = make_fault_peer(recording=True)
    relay.extra = peer_route(peer, tls="starttls", user=USER,
                             password_file=secret_file(tmp_path), tls_verify="no")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("nostarttls")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    assert "STARTTLS" in d["reply"], d["line"]
    _, reply = deferred_entry(relay, qid, rcpt)
    assert "STARTTLS" in reply
    peer.wait_sessions(1)
    assert not peer.auth_attempted
    assert not peer.credentials_seen(USER, PASSWORD)
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA"))
                   for s in peer.sessions for c in s.commands), peer.sessions
    assert peer.messages == []


def test_plain_is_never_sent_in_cleartext_unless_allow_plaintext_auth(make_fault_peer, relay,
                                                                    tmp_path):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"]))
    relay.extra = peer_route(peer, user=USER, password_file=secret_file(tmp_path))
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("cleartext")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    deferred_entry(relay, qid, rcpt)
    peer.wait_sessions(1)
    assert not peer.auth_attempted and not peer.credentials_seen(USER, PASSWORD)
    assert peer.messages == []
    # allowed explicitly: PLAIN goes out (the peer accepts any)
    relay.stop()
    relay.extra = peer_route(peer, user=USER, password_file=secret_file(tmp_path),
                             allow_plaintext_auth="yes")
    relay.start(**NO_RETRY)
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert len(accepted_with(peer, token)) == 1
    assert peer.auth_attempted and peer.credentials_seen(USER, PASSWORD)


def test_a_mechanism_refused_with_535_falls_back_to_the_next_in_the_auth_list(
        make_fault_peer, relay, tmp_path):
    def auth(session, arg):
        words = arg.split()
        if words and words[0].upper().startswith("SCRAM-SHA-256"):
            return "535 5.7.8 Error: authentication failed: scripted"
        if words and words[0].upper() == "PLAIN":
            return "235 2.7.0 Authentication successful" if len(words) > 1 else "334 "
        # a continuation line: the answer of a challenge
        return "235 2.7.0 Authentication successful"

    peer = make_fault_peer(Script(ehlo=["PIPELINING", "8BITMIME", "AUTH SCRAM-SHA-256 PLAIN"],
                                  auth=auth))
    relay.extra = peer_route(peer, user=USER, password_file=secret_file(tmp_path),
                             auth="SCRAM-SHA-256 PLAIN", allow_plaintext_auth="yes")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("fallback")
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert d["auth"] == "PLAIN" and d["attempts"] == "1", d["line"]
    [s] = peer.wait_sessions(1)
    auths = [l.split()[1].upper() for l in s.auth_lines if l.upper().startswith("AUTH ")]
    assert auths == ["SCRAM-SHA-256", "PLAIN"], s.auth_lines
    assert len(accepted_with(peer, token)) == 1
    log = relay.log_text()
    assert "SCRAM-SHA-256" in log and "535 5.7.8 Error: authentication failed: scripted" in log
    assert PASSWORD not in log and base64.b64encode(PASSWORD.encode()).decode() not in log


def test_starttls_to_a_peer_happens_before_auth_and_ehlo_is_repeated(make_fault_peer, relay,
                                                                   tmp_path):
    ca = shared_ca()
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "8BITMIME", "STARTTLS", "AUTH PLAIN"],
                                  starttls_context=server_context(ca.cert_file, ca.key_file)))
    relay.extra = peer_route(peer, tls="starttls", user=USER,
                             password_file=secret_file(tmp_path), tls_ca_file=ca.ca_file)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("peertls")
    qid, content, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert d["auth"] == "PLAIN" and d["tls"] in ("TLSv1.3", "TLSv1.2"), d["line"]
    [m] = accepted_with(peer, token)
    s = m.session
    assert s.tls and m.data.endswith(content)
    assert not peer.credentials_seen(USER, PASSWORD, cleartext_only=True)
    cmds = [c.split(" ", 1)[0].upper() for c in s.commands]
    assert cmds[:3] == ["EHLO", "STARTTLS", "EHLO"], s.commands
    assert s.discarded_at_starttls == b""
