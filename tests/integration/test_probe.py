"""`mailredir probe [ROUTE]` against the private Postfix and against nothing
(mailredir.8, COMMANDS probe), and the rule that no secret ever shows:
not in probe's output, the relay's log, `queue show`, `queue --json`, or
any file of the spool (PRODUCT.md §8, §9).
"""

import os
import re
import time

import pytest

from gateway import Gateway
from test_forwarding_helpers import (assert_no_secret, dead_port, rcpt_status, spool_files,
                                     submit, unique_rcpt, wait_delivery, wait_state)

PASSWORD = "Probe-pass-8Hj2-qq"
WRONG = "Wrong-pass-Zz31-pp"
ACCOUNT = "joe@isp.example"
ROUTE_KEYS = dict(reply_timeout="5s", connect_timeout="3s")


@pytest.fixture(scope="module")
def gw():
    g = Gateway(users={ACCOUNT: PASSWORD})
    try:
        g.start()
        yield g
    finally:
        problems = g.stop()
        if g.postfix is not None:
            print(f"--- maillog of {g.root}\n{g.log()[-20000:]}")
        g.remove()
    if problems:
        pytest.fail("; ".join(problems))


def probe(relay, *args):
    r = relay.cli("probe", *args, timeout=60)
    return r, r.out + r.err


def last_disconnect(gw, mark):
    """The last session that said EHLO: the rig's own port checks (connect,
    close) may be logged late, after the mark."""
    lines = [l for l in gw.log()[mark:].splitlines() if "disconnect from" in l and " ehlo=" in l]
    return lines[-1] if lines else ""


def wait_disconnect(gw, mark):
    deadline = time.monotonic() + 5
    while not last_disconnect(gw, mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    return last_disconnect(gw, mark)


def test_probe_through_starttls_exits_0_and_names_the_mechanism_and_tls_version(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.write_config()
    captured = len(gw.capture.messages)
    mark = len(gw.log())
    r, out = probe(relay)
    assert r.returncode == 0, r
    assert re.search(r"\bTLSv1\.[23]\b", out), out
    assert re.search(r"authenticated: SCRAM-SHA-256\b", out), out
    assert "verified" in out and "STARTTLS" in out, out
    assert PASSWORD not in out
    # no message: the session ends without MAIL
    line = wait_disconnect(gw, mark)
    assert "auth=1" in line and "starttls=1" in line and "mail=" not in line, line
    assert len(gw.capture.messages) == captured


def test_probe_of_the_implicit_tls_port_exits_0(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, port="smtps", **ROUTE_KEYS)
    relay.write_config()
    r, out = probe(relay, "gw")
    assert r.returncode == 0, r
    assert re.search(r"\bTLSv1\.[23]\b", out) and "SCRAM-SHA-256" in out, out


def test_probe_of_a_dead_port_exits_69_and_says_why(relay):
    port = dead_port()
    relay.extra = (f"[route gw]\nsmarthost = 127.0.0.1:{port}\nconnect-timeout = 3s\n"
                   "reply-timeout = 3s\n")
    relay.write_config()
    t0 = time.monotonic()
    r, out = probe(relay)
    assert r.returncode == 69, r
    assert time.monotonic() - t0 < 10
    assert str(port) in out and re.search(r"refused", out, re.I), out


def test_probe_with_a_wrong_password_exits_69_and_shows_the_535(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, password=WRONG, auth="SCRAM-SHA-256", **ROUTE_KEYS)
    relay.write_config()
    r, out = probe(relay)
    assert r.returncode == 69, r
    assert "535" in out, out
    assert_no_secret("probe output", out, ACCOUNT, WRONG)


def test_probe_of_a_tls_mismatch_exits_69_with_the_fix_in_words(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, port="smtps", tls="starttls")
    relay.write_config()
    t0 = time.monotonic()
    r, out = probe(relay)
    assert r.returncode == 69, r
    assert "set tls = tls" in out, out
    assert time.monotonic() - t0 < 15


def test_probe_of_an_unknown_route_exits_64(gw, relay):
    relay.extra = gw.route(user=ACCOUNT, **ROUTE_KEYS)
    relay.write_config()
    r, out = probe(relay, "no-such-route")
    assert r.returncode == 64, r


def test_no_secret_reaches_probe_the_log_queue_show_queue_json_or_the_spool(gw, relay, tmp_path):
    # 1. the wrong password: the message is deferred with the gateway's 535
    #    stored in the spool
    relay.extra = gw.route(user=ACCOUNT, password=WRONG, **ROUTE_KEYS)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("secret")
    qid, _, _ = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1, what="the attempt recorded")
    assert "535" in rcpt_status(e)[rcpt][1]
    texts = {"probe (wrong password)": probe(relay)[1]}
    texts["queue show"] = relay.cli("queue", "show", qid).out
    assert "535" in texts["queue show"], texts["queue show"]
    texts["queue --json"] = relay.cli("queue", "--json").out
    texts["queue"] = relay.cli("queue").out
    texts["check"] = (lambda r: r.out + r.err)(relay.cli("check"))
    texts.update({f"spool file {p}": data for p, data in spool_files(relay)})
    # 2. the right password, from a password-command this time: flushed out
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD)
    os.chmod(secret, 0o600)
    relay.stop()
    relay.extra = gw.route(user=None, **ROUTE_KEYS) + (
        f"user = {ACCOUNT}\npassword-command = cat {secret}\n")
    relay.start(retry="1h", retry_max="1h")
    texts["probe (password-command)"] = probe(relay)[1]
    r = relay.cli("flush")
    texts["flush"] = r.out + r.err
    assert r.returncode == 0, r
    gw.wait_for_message(rcpt=rcpt, timeout=20)
    wait_delivery(relay, qid, rcpt, status="sent")
    texts.update({f"spool file {p} (after)": data for p, data in spool_files(relay)})
    texts["log"] = relay.log_text()
    assert "authenticated: SCRAM-SHA-256" in texts["probe (password-command)"]
    for where, data in texts.items():
        for pw in (PASSWORD, WRONG):
            assert_no_secret(where, data, ACCOUNT, pw)


def test_probe_with_a_wrong_fingerprint_exits_69_and_says_the_pin_did_not_match(gw, relay):
    from gateway import fingerprint, shared_ca
    relay.extra = gw.route(user=ACCOUNT, tls_fingerprint=fingerprint(
        shared_ca().untrusted_cert_file), **ROUTE_KEYS)
    relay.write_config()
    r, out = probe(relay)
    assert r.returncode == 69, r
    assert re.search(r"pin|fingerprint", out, re.I), out
    assert "AUTH" not in [l.split()[1] for l in out.splitlines() if l.strip().startswith("C: ")
                          and len(l.split()) > 1], out


def test_probe_of_a_gateway_without_starttls_exits_69_and_sends_no_auth(relay):
    from fault_peer import RecordingPeer
    peer = RecordingPeer().start()
    try:
        secret = os.path.join(relay.dir, "secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(PASSWORD)
        relay.extra = (f"[route gw]\nsmarthost = 127.0.0.1:{peer.port}\ntls = starttls\n"
                       f"user = {ACCOUNT}\npassword-file = {secret}\nreply-timeout = 3s\n")
        relay.write_config()
        r, out = probe(relay)
        assert r.returncode == 69, r
        assert "STARTTLS" in out, out
        peer.wait_sessions(1)
        assert not peer.auth_attempted and not peer.credentials_seen(ACCOUNT, PASSWORD)
    finally:
        peer.stop()
