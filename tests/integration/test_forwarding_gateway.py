"""Forwarding through a real gateway (issue 3): swaks -> mailredir -> a
private Postfix (SASL by a private Dovecot) -> the capture.

What is checked is what a user sees: the envelope and bytes at the capture,
Postfix's maillog (sasl_method=), `queue --json`, and the delivery log line
of PRODUCT.md §9.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import make_message, new_token, split_received, unfold
from gateway import DOVECOT_MECHS, Gateway, fingerprint, make_gateway, shared_ca  # noqa: F401
from test_forwarding_helpers import (SENDER, delivery_lines, rcpt_status, submit, unique_rcpt,
                                     wait_delivery, wait_state)

PASSWORD = "Gw-pass-7f3Kq9-zz"          # distinctive: grep-able in every output
ACCOUNT = "joe@isp.example"              # a user name that is an address
PLAIN_USER = "joe"
HASHED_USER = "crypt@isp.example"        # only a crypt hash: no SCRAM/CRAM/DIGEST possible
ROUTE_KEYS = dict(reply_timeout="5s", connect_timeout="3s")


@pytest.fixture(scope="module")
def gw():
    g = Gateway(users={PLAIN_USER: PASSWORD, ACCOUNT: PASSWORD})
    try:
        g.start()
        # a user whose password is stored as a SHA512-CRYPT hash: Dovecot can
        # verify PLAIN/LOGIN for it, but no challenge-response mechanism
        # (it says "Requested SCRAM-SHA-256 scheme, but we have only
        # SHA512-CRYPT" and Postfix answers 535)
        hashed = subprocess.run(["openssl", "passwd", "-6", PASSWORD], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        with open(g.dovecot.passwd_file, "a") as f:
            f.write(f"{HASHED_USER}:{{SHA512-CRYPT}}{hashed}::::::\n")
        yield g
    finally:
        problems = g.stop()
        if g.postfix is not None:
            print(f"--- maillog of {g.root}\n{g.log()[-30000:]}")
        g.remove()
    if problems:
        pytest.fail("; ".join(problems))


def swaks_to_relay(relay, rcpt, content, tmp_path, sender=SENDER):
    """swaks to mailredir's listener; content is the exact message (CRLF
    lines, ending in CRLF: swaks adds the last CRLF itself)."""
    assert content.endswith(b"\r\n")
    path = os.path.join(str(tmp_path), f"msg-{new_token()}.eml")
    with open(path, "wb") as f:
        f.write(content[:-2])
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(relay.port),
                        "--from", sender, "--to", rcpt, "--helo", "client.test.example",
                        "--timeout", "20", "--data", "@" + path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    m = re.search(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-F]{18})", out)
    assert m, out
    return m.group(1)


def tricky_body(rcpt):
    """A message that shows any change on the way: leading dots, 8-bit
    text, a long line, trailing blanks, an empty last body line."""
    return make_message(to=rcpt, body_lines=[
        ".a line that starts with a dot", "..two dots", ".", "h\u00e9 \u2603 eight-bit",
        "x" * 900, "trailing blanks   ", "\tleading tab", ""])


# --- end to end -----------------------------------------------------------------------

def test_swaks_to_mailredir_to_postfix_arrives_byte_identical_under_the_route_account(
        gw, relay, tmp_path):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("e2e")
    content, token = tricky_body(rcpt)
    qid = swaks_to_relay(relay, rcpt, content, tmp_path)
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    # one account: envelope-from defaults to the user, an address
    assert got.mail_from == ACCOUNT
    assert got.rcpt_tos == [rcpt]
    assert got.sasl_username == ACCOUNT
    assert got.tls
    # below Postfix's Received: is ours, and below ours the very bytes swaks sent
    ours, rest = split_received(got.original)
    ours = unfold(ours)
    assert "by mx.test.example (mailredir)" in ours and f"id {qid}" in ours, ours
    assert rest == content
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert d["from"] == SENDER and d["envfrom"] == ACCOUNT
    wait_state(relay, qid, lambda e: e is None, timeout=10, what="the message to leave the spool")


def test_envelope_from_replaces_the_sender_of_every_message_on_the_route(gw, relay):
    relay.extra = gw.route(user=PLAIN_USER, envelope_from="relay-account@isp.example",
                           **ROUTE_KEYS)
    relay.start()
    rcpts = [unique_rcpt("ef1"), unique_rcpt("ef2")]
    qids = []
    for i, r in enumerate(rcpts):
        qid, content, _ = submit(relay, [r], sender=f"user{i}@lan.example")
        qids.append((qid, content))
    for (qid, content), r in zip(qids, rcpts):
        got = gw.wait_for_message(rcpt=r, timeout=30)
        assert got.mail_from == "relay-account@isp.example"
        assert got.sasl_username == PLAIN_USER
        assert split_received(got.original)[1] == content
    for i, ((qid, _), r) in enumerate(zip(qids, rcpts)):
        d = wait_delivery(relay, qid, r, status="sent")
        assert d["from"] == f"user{i}@lan.example"
        assert d["envfrom"] == "relay-account@isp.example"


def test_without_envelope_from_a_user_that_is_no_address_keeps_the_original_sender(gw, relay):
    relay.extra = gw.route(user=PLAIN_USER, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("keep")
    qid, content, _ = submit(relay, [rcpt], sender="carol@lan.example")
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert got.mail_from == "carol@lan.example"
    assert split_received(got.original)[1] == content


# --- the delivery log line ------------------------------------------------------------

def test_each_recipient_gets_one_delivery_line_in_the_documented_key_order(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.start()
    rcpts = [unique_rcpt("log1"), unique_rcpt("log2")]
    qid, _, _ = submit(relay, rcpts)
    got = gw.wait_for_message(rcpt=rcpts[0], timeout=30)
    for r in rcpts:
        wait_delivery(relay, qid, r, status="sent")
    time.sleep(0.5)    # a second line per recipient would come now
    lines = delivery_lines(relay, qid)
    assert sorted(d["to"] for d in lines) == sorted(rcpts), [d["line"] for d in lines]
    for d in lines:
        assert d["from"] == SENDER and d["envfrom"] == ACCOUNT
        assert d["route"] == "gw"
        assert d["host"] == "127.0.0.1" and d["addr"] == "127.0.0.1"
        assert int(d["port"]) == gw.submission_port
        assert d["tls"] in ("TLSv1.3", "TLSv1.2")
        assert d["auth"] == "SCRAM-SHA-256"
        assert float(d["delay"]) < 30
        assert d["attempts"] == "1"
        assert d["status"] == "sent"
        assert d["reply"].startswith("250 ") and got.postfix_id in d["reply"], d["line"]
    # nothing but these lines names the message's delivery at info level
    info = [l for l in relay.log_lines if f"{qid}:" in l and ": info: " in l]
    assert len(info) == 1 + len(rcpts), info     # "accepted" + one per recipient


def test_a_delivery_line_after_a_refused_login_names_the_relay_and_its_tls(gw, relay):
    """The session reached the gateway and spoke TLS before AUTH failed:
    relay= and tls= say so (PRODUCT.md §9; Postfix names the relay too)."""
    relay.extra = gw.route(user=ACCOUNT, password="Wrong-pass-Xy8", auth="PLAIN",
                           **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("relayname")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    assert "535" in d["reply"], d["line"]
    assert d["relay"] == f"127.0.0.1[127.0.0.1]:{gw.submission_port}", d["line"]
    assert d["tls"] in ("TLSv1.3", "TLSv1.2"), d["line"]


# --- AUTH -----------------------------------------------------------------------------

def test_auth_auto_picks_scram_sha_256_the_strongest_dovecot_offers(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, auth="auto", **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("auto")
    qid, _, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert gw.sasl_method_for(got) == "SCRAM-SHA-256"
    assert wait_delivery(relay, qid, rcpt, status="sent")["auth"] == "SCRAM-SHA-256"


def test_auth_auto_without_scram_offered_picks_digest_md5(make_gateway, relay):
    g = make_gateway(mechs="PLAIN LOGIN CRAM-MD5 DIGEST-MD5", users={PLAIN_USER: PASSWORD})
    relay.extra = g.route(user=PLAIN_USER, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("digest")
    qid, _, _ = submit(relay, [rcpt])
    got = g.wait_for_message(rcpt=rcpt, timeout=30)
    assert g.sasl_method_for(got) == "DIGEST-MD5"
    assert wait_delivery(relay, qid, rcpt, status="sent")["auth"] == "DIGEST-MD5"


@pytest.mark.parametrize("mech", DOVECOT_MECHS)
def test_each_mechanism_forced_with_auth_authenticates_at_postfix(gw, relay, mech):
    relay.extra = gw.route(user=PLAIN_USER, auth=mech, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt(mech.lower())
    qid, content, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert gw.sasl_method_for(got) == mech
    assert split_received(got.original)[1] == content
    assert wait_delivery(relay, qid, rcpt, status="sent")["auth"] == mech


def test_a_wrong_password_defers_the_message_with_the_535_reply(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, password="Wrong-pass-Xy8", **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("wrongpw")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    assert "535" in d["reply"], d["line"]
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    assert e["state"] == "deferred"
    status, reply = rcpt_status(e)[rcpt]
    assert status == "deferred" and "535" in reply, e
    assert e["next_try"] is not None
    assert "Wrong-pass" not in relay.log_text()
    time.sleep(1)
    assert not [m for m in gw.capture.messages if rcpt in m.rcpt_tos]
    assert any(u for _m, u in gw.auth_failures()), gw.log()


def test_a_refused_scram_falls_back_to_plain_and_the_message_is_sent(gw, relay):
    relay.extra = gw.route(user=HASHED_USER, password=PASSWORD, auth="SCRAM-SHA-256 PLAIN",
                           **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("fallback")
    mark = len(gw.log())
    qid, content, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert split_received(got.original)[1] == content
    assert gw.sasl_method_for(got) == "PLAIN"
    # Postfix saw the SCRAM attempt fail first, on the same gateway
    assert re.search(r"SASL SCRAM-SHA-256 authentication failed", gw.log()[mark:]), gw.log()[mark:]
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert d["auth"] == "PLAIN" and d["attempts"] == "1"


def test_the_relay_log_names_the_refused_mechanism_before_the_fallback(gw, relay):
    """An admin must be able to see from mailredir's own log that SCRAM was
    refused (the mechanism's name and the gateway's reply, never a secret)."""
    relay.extra = gw.route(user=HASHED_USER, password=PASSWORD, auth="SCRAM-SHA-256 PLAIN",
                           **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("fallbacklog")
    qid, _, _ = submit(relay, [rcpt])
    gw.wait_for_message(rcpt=rcpt, timeout=30)
    wait_delivery(relay, qid, rcpt, status="sent")
    log = relay.log_text()
    assert re.search(r"SCRAM-SHA-256.*535", log), log
    assert PASSWORD not in log


# --- TLS --------------------------------------------------------------------------------

def test_a_gateway_certificate_from_an_unknown_ca_defers_with_a_certificate_reason(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, ca_file=None, **ROUTE_KEYS)   # the system CA store
    relay.start()
    rcpt = unique_rcpt("unknownca")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    assert e["state"] == "deferred"
    status, reply = rcpt_status(e)[rcpt]
    assert status == "deferred" and re.search(r"certificate", reply, re.I), e
    assert d["auth"] == "none"
    assert not [m for m in gw.capture.messages if rcpt in m.rcpt_tos]


def test_tls_ca_file_makes_the_test_ca_trusted_and_the_message_is_sent(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("cafile")
    qid, _, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert got.tls
    assert wait_delivery(relay, qid, rcpt, status="sent")["tls"] in ("TLSv1.3", "TLSv1.2")


def test_the_right_fingerprint_is_trusted_without_a_ca(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, ca_file=None, tls_fingerprint=gw.fingerprint,
                           **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("pinok")
    qid, _, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert got.tls
    wait_delivery(relay, qid, rcpt, status="sent")


def test_a_wrong_fingerprint_is_refused_even_with_a_valid_ca_chain(gw, relay):
    wrong = fingerprint(shared_ca().untrusted_cert_file)
    assert wrong != gw.fingerprint
    relay.extra = gw.route(user=ACCOUNT, tls_fingerprint=wrong, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("pinbad")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="deferred")
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    status, reply = rcpt_status(e)[rcpt]
    assert e["state"] == "deferred" and status == "deferred"
    assert re.search(r"fingerprint|certificate|pin", reply, re.I), e
    assert d["auth"] == "none"
    time.sleep(0.5)
    assert not [m for m in gw.capture.messages if rcpt in m.rcpt_tos]


def test_the_implicit_tls_port_takes_the_message_with_tls_tls(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, port="smtps", tls="tls", **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("smtps")
    qid, content, _ = submit(relay, [rcpt])
    got = gw.wait_for_message(rcpt=rcpt, timeout=30)
    assert got.tls and split_received(got.original)[1] == content
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert int(d["port"]) == gw.smtps_port and d["tls"] in ("TLSv1.3", "TLSv1.2")


@pytest.mark.parametrize("port,tls,words", [
    ("submission", "tls", "set tls = starttls"),
    ("plain", "tls", "set tls = starttls"),
    ("smtps", "starttls", "set tls = tls"),
    ("smtps", "none", "set tls = tls"),
])
def test_a_tls_mode_mismatch_is_diagnosed_in_words_within_seconds(gw, relay, port, tls, words):
    # default reply-timeout (5m): the diagnosis must not wait for it
    relay.extra = gw.route(user=ACCOUNT, port=port, tls=tls)
    relay.start()
    rcpt = unique_rcpt("mismatch")
    t0 = time.monotonic()
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, timeout=30)
    took = time.monotonic() - t0
    assert d["status"] == "deferred", d["line"]
    assert words in d["reply"], d["line"]
    assert took < 15, f"the diagnosis took {took:.1f}s"
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    assert words in rcpt_status(e)[rcpt][1]
    assert d["auth"] == "none"


# --- size and width ------------------------------------------------------------------------

def test_a_three_megabyte_message_with_998_octet_lines_arrives_byte_identical(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.start()
    rcpt = unique_rcpt("big")
    lines = [(f"{i:07d} " + "abcdefghij" * 100)[:998] for i in range(3000)]
    lines[100] = "." + lines[100][1:]          # dot-stuffed on the way
    qid, content, _ = submit(relay, [rcpt], body_lines=lines)
    assert len(content) > 3_000_000
    got = gw.wait_for_message(rcpt=rcpt, timeout=60)
    assert split_received(got.original)[1] == content
    wait_delivery(relay, qid, rcpt, status="sent")


def test_sixty_recipients_go_in_one_transaction_and_each_gets_a_line(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.start()
    rcpts = [unique_rcpt(f"many{i:02d}") for i in range(60)]
    qid, content, token = submit(relay, rcpts)
    for r in rcpts:
        wait_delivery(relay, qid, r, status="sent")
    got = gw.wait_for_message(rcpt=rcpts[0], timeout=30)
    gw.wait_for_message(rcpt=rcpts[-1], timeout=30)   # Postfix relays on 50 at a time
    mine = [m for m in gw.capture.messages if token.encode() in m.data]
    assert sorted(r for m in mine for r in m.rcpt_tos) == sorted(rcpts)
    # one transaction into Postfix: one Postfix queue id for all sixty
    assert len({m.postfix_id for m in mine}) == 1, mine
    assert len(delivery_lines(relay, qid)) == 60
    assert split_received(got.original)[1] == content
