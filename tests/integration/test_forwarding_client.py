"""The SMTP client toward the gateway (issue 3, "SMTP client" and "Gateway
address"): SIZE, 8BITMIME/SMTPUTF8, HELO fallback, PIPELINING only when
offered, EHLO again after STARTTLS, route-level refusals that defer instead
of failing, names with several addresses, IPv6, replies with control
characters.  Against the scripted peer (fault_peer.py), and Postfix where a
real server's wording matters.
"""

import base64
import os
import re
import socket
import time

import pytest

from conftest import dot_stuff, ipv6_available, make_message
from fault_peer import FaultPeer, Reply, Script, make_fault_peer, server_context  # noqa: F401
from gateway import Gateway, make_gateway, shared_ca  # noqa: F401
from test_forwarding_helpers import (SENDER, accepted_with, peer_route, rcpt_status,
                                     submit, unique_rcpt, wait_delivery,
                                     wait_state)

NO_RETRY = dict(retry="1h", retry_max="1h")
USER = "joe@isp.example"
PASSWORD = "Client-pass-5tG8-kk"


def secret_file(tmp_path, password=PASSWORD):
    p = os.path.join(str(tmp_path), "secret")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    return p


def submit_raw(relay, content, rcpts, sender=SENDER, mail_params=""):
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(dot_stuff(content), sender=sender, rcpts=rcpts,
                             mail_params=mail_params)
        c.expect("QUIT", 221)
    return qid


def entry_after_attempt(relay, qid):
    return wait_state(relay, qid, lambda e: e is None or e["attempts"] >= 1,
                      what="the attempt recorded")


# --- what the gateway can take --------------------------------------------------------

def test_a_message_larger_than_the_gateway_size_fails_at_once_with_the_reason(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "SIZE 1000", "8BITMIME"]))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("toobig")
    qid, _, _ = submit(relay, [rcpt], body_lines=["z" * 70] * 30)
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "failed", d["line"]
    assert re.search(r"size|large|1000", d["reply"], re.I), d["line"]
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", what="failed and kept")
    assert re.search(r"size|large|1000", rcpt_status(e)[rcpt][1], re.I), e
    assert peer.messages == [] and not any(s.messages for s in peer.sessions)


def test_a_message_that_needs_8bitmime_fails_at_a_gateway_without_it_and_is_never_mangled(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "SIZE 52428800"]))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY, bounce="none")  # no report to the peer: sessions are counted
    rcpt = unique_rcpt("eightbit")
    content, token = make_message(to=rcpt, body_lines=["gr\u00fc\u00dfe aus K\u00f6ln"])
    qid = submit_raw(relay, content, [rcpt], mail_params=" BODY=8BITMIME")
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "failed", d["line"]
    assert "8BITMIME" in d["reply"], d["line"]
    assert not any(s.messages for s in peer.sessions)


def test_8bitmime_is_declared_to_a_gateway_that_offers_it(make_fault_peer, relay):
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("eightbitok")
    content, token = make_message(to=rcpt, body_lines=["gr\u00fc\u00dfe aus K\u00f6ln"])
    submit_raw(relay, content, [rcpt], mail_params=" BODY=8BITMIME")
    m = peer.wait_for(rcpt=rcpt, timeout=20)
    assert "BODY=8BITMIME" in m.mail_params.upper()
    assert m.data.endswith(content)


def test_a_message_that_needs_smtputf8_fails_at_a_gateway_without_it(make_fault_peer, relay):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "8BITMIME"]))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = "j\u00fcrgen@ext.example"
    content, token = make_message(to=rcpt)
    qid = submit_raw(relay, content, [rcpt], sender="b\u00e9a@lan.example",
                     mail_params=" SMTPUTF8")
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "failed", d["line"]
    assert "SMTPUTF8" in d["reply"], d["line"]
    assert not any(s.messages for s in peer.sessions)


def test_smtputf8_is_passed_on_to_a_gateway_that_offers_it(make_fault_peer, relay):
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = "j\u00fcrgen@ext.example"
    content, token = make_message(to=rcpt)
    submit_raw(relay, content, [rcpt], sender="b\u00e9a@lan.example", mail_params=" SMTPUTF8")
    m = peer.wait_for(rcpt=rcpt, timeout=20)
    assert "SMTPUTF8" in m.mail_params.upper() and m.mail_from == "b\u00e9a@lan.example"


# --- the dialogue ------------------------------------------------------------------------

def test_a_gateway_that_refuses_ehlo_gets_helo_and_the_message(make_fault_peer, relay):
    peer = make_fault_peer(Script(ehlo="502 5.5.2 Error: command not recognized"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("helo")
    qid, content, token = submit(relay, [rcpt])
    [m] = [peer.wait_for(rcpt=rcpt, timeout=20)]
    verbs = [c.split(" ", 1)[0].upper() for c in m.session.commands]
    assert verbs[:2] == ["EHLO", "HELO"], m.session.commands
    assert m.data.endswith(content)
    assert m.mail_params == ""          # no ESMTP parameters after HELO


def test_without_pipelining_offered_each_command_waits_for_its_reply(make_fault_peer, relay):
    early = []

    def at_mail(session, arg):
        # by the time the peer handles MAIL, has RCPT arrived already?
        early.append(b"RCPT TO" in bytes(session.received).upper())
        return "250 2.1.0 Ok"

    peer = make_fault_peer(Script(ehlo=["SIZE 52428800", "8BITMIME"], mail=at_mail))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("nopipe")
    qid, _, token = submit(relay, [rcpt, unique_rcpt("nopipe2")])
    peer.wait_for(rcpt=rcpt, timeout=20)
    assert early == [False], "RCPT was sent before MAIL's reply, without PIPELINING"


def test_multi_line_replies_are_read_whole(make_fault_peer, relay):
    peer = make_fault_peer(Script(
        banner="220-peer.test.example first\n220-second\n220 third",
        mail="250-2.1.0 Ok\n250 2.1.0 still ok",
        rcpt="250-2.1.5 one\n250 2.1.5 two",
        data_end="250-2.0.0 queued\n250 2.0.0 as ABC123"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("multiline")
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert "ABC123" in d["reply"] or "queued" in d["reply"], d["line"]
    assert len(accepted_with(peer, token)) == 1


def test_capabilities_from_before_starttls_are_not_trusted_after_it(make_fault_peer, relay,
                                                                    tmp_path):
    ca = shared_ca()
    # before TLS: a tiny SIZE and AUTH; after TLS: a large SIZE and no AUTH
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "SIZE 1000", "STARTTLS", "AUTH PLAIN"],
                                  ehlo_tls=["PIPELINING", "SIZE 52428800", "8BITMIME"],
                                  starttls_context=server_context(ca.cert_file, ca.key_file)))
    relay.extra = peer_route(peer, tls="starttls", tls_ca_file=ca.ca_file, user=USER,
                             password_file=secret_file(tmp_path))
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("retls")
    qid, _, _ = submit(relay, [rcpt], body_lines=["z" * 70] * 30)
    d = wait_delivery(relay, qid, rcpt)
    # no AUTH after TLS: a route with user is deferred, never sent unauthenticated
    assert d["status"] == "deferred", d["line"]
    assert re.search(r"AUTH", d["reply"]), d["line"]
    assert not peer.auth_attempted and not peer.credentials_seen(USER, PASSWORD)
    assert not any(c.upper().startswith("MAIL") for s in peer.sessions for c in s.commands)


def test_a_route_with_a_user_is_never_sent_unauthenticated_to_a_gateway_without_auth(
        make_fault_peer, relay, tmp_path):
    peer = make_fault_peer(recording=True)
    relay.extra = peer_route(peer, user=USER, password_file=secret_file(tmp_path))
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("noauth")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred", d["line"]
    assert peer.messages == [] and not peer.credentials_seen(USER, PASSWORD)


# --- refusals that speak of the route ------------------------------------------------------

@pytest.mark.parametrize("where,reply", [
    ("mail", "530 5.7.0 Authentication required"),
    ("rcpt", "554 5.7.1 <x>: Relay access denied"),
    ("rcpt", "550 5.7.1 relaying denied"),
])
def test_a_refusal_of_the_route_defers_the_message_instead_of_failing_it(
        make_fault_peer, relay, where, reply):
    peer = make_fault_peer(Script(**{where: reply}))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpts = [unique_rcpt("route1"), unique_rcpt("route2")]
    qid, _, _ = submit(relay, rcpts)
    for r in rcpts:
        d = wait_delivery(relay, qid, r)
        assert d["status"] == "deferred", d["line"]
    e = entry_after_attempt(relay, qid)
    assert e["state"] == "deferred", e
    assert all(s == "deferred" for s, _ in rcpt_status(e).values()), e


def test_postfix_refusing_to_relay_for_an_unauthenticated_route_defers(gw_plain, relay):
    relay.extra = gw_plain.route(user=None, reply_timeout="5s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("unauth")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred" and "Relay access denied" in d["reply"], d["line"]


@pytest.fixture(scope="module")
def gw_plain():
    g = Gateway(users={"joe": PASSWORD}, main={"message_size_limit": "20000"})
    try:
        g.start()
        yield g
    finally:
        g.stop()
        g.remove()


def test_a_message_over_postfix_message_size_limit_fails_with_postfix_words(gw_plain, relay):
    relay.extra = gw_plain.route(user="joe", reply_timeout="5s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("postfixsize")
    qid, _, _ = submit(relay, [rcpt], body_lines=["q" * 76] * 400)
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "failed", d["line"]
    assert re.search(r"size|large", d["reply"], re.I), d["line"]


# --- where the gateway is -------------------------------------------------------------------

def test_a_host_name_with_several_addresses_is_tried_in_order(make_fault_peer, relay):
    """localhost is ::1 and 127.0.0.1 here; the peer listens on 127.0.0.1
    only: whichever address getaddrinfo puts first, the message arrives."""
    addrs = {a[4][0] for a in socket.getaddrinfo("localhost", 25, type=socket.SOCK_STREAM)}
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer).replace(f"127.0.0.1:{peer.port}", f"localhost:{peer.port}")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("byname")
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt, status="sent")
    assert d["host"] == "localhost" and d["addr"] == "127.0.0.1", (d["line"], addrs)
    assert len(accepted_with(peer, token)) == 1


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_an_ipv6_smarthost_in_brackets_works(relay):
    peer = FaultPeer(Script(), host="::1").start()
    try:
        relay.extra = peer_route(peer).replace(f"127.0.0.1:{peer.port}", f"[::1]:{peer.port}")
        relay.start(**NO_RETRY)
        rcpt = unique_rcpt("v6")
        qid, _, token = submit(relay, [rcpt])
        d = wait_delivery(relay, qid, rcpt, status="sent")
        assert d["addr"] == "::1" and d["port"] == str(peer.port), d["line"]
        assert len(accepted_with(peer, token)) == 1
    finally:
        peer.stop()


# --- replies are untrusted text -----------------------------------------------------------------

def test_control_characters_in_a_reply_reach_neither_the_log_nor_queue_json(make_fault_peer,
                                                                          relay):
    peer = make_fault_peer(Script(rcpt=Reply(raw=b"550 5.1.1 evil \x1b[2J\x07 text\r\n")))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("ctrl")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "failed", d["line"]
    assert "\x1b" not in relay.log_text() and "\x07" not in relay.log_text()
    e = entry_after_attempt(relay, qid)
    assert "\x1b" not in rcpt_status(e)[rcpt][1]
    r = relay.cli("queue")
    assert "\x1b" not in r.out and "\x07" not in r.out, r


# --- credentials ----------------------------------------------------------------------------------

def test_a_password_file_readable_by_others_is_refused_with_a_clear_error(make_fault_peer, relay,
                                                                          tmp_path):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "AUTH PLAIN"]))
    path = secret_file(tmp_path)
    os.chmod(path, 0o644)
    relay.extra = peer_route(peer, user=USER, password_file=path, allow_plaintext_auth="yes")
    relay.write_config()
    r = relay.cli("check")
    assert r.returncode == 78, r
    assert "readable by others" in r.out + r.err and path in r.out + r.err, r
    assert PASSWORD not in r.out + r.err


def test_a_failing_password_command_defers_with_its_reason(make_fault_peer, relay, tmp_path):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "AUTH PLAIN"]))
    relay.extra = peer_route(peer, user=USER, password_command="sh -c 'exit 3'",
                             allow_plaintext_auth="yes")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("pwcmd")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred", d["line"]
    assert re.search(r"password-command", d["reply"]), d["line"]
    assert not peer.auth_attempted and peer.messages == []


def test_password_command_output_is_trimmed_and_used(make_fault_peer, relay, tmp_path):
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "AUTH PLAIN"]))
    relay.extra = peer_route(peer, user=USER, password_command=f"printf '{PASSWORD}\\n'",
                             allow_plaintext_auth="yes")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("pwcmdok")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="sent")
    [s] = peer.wait_sessions(1)
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert any(plain in l for l in s.auth_lines), s.auth_lines


# --- timeouts and certificates ---------------------------------------------------------------------

def test_connect_timeout_bounds_a_gateway_that_never_answers(relay):
    # a listener whose accept queue is full: further SYNs go unanswered
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.2)
        relay.extra = (f"[route gw]\nsmarthost = 127.0.0.1:{port}\ntls = none\n"
                       "connect-timeout = 1s\nreply-timeout = 2s\n")
        relay.start(**NO_RETRY)
        rcpt = unique_rcpt("blackhole")
        t0 = time.monotonic()
        qid, _, _ = submit(relay, [rcpt])
        d = wait_delivery(relay, qid, rcpt, timeout=30)
        took = time.monotonic() - t0
        assert d["status"] == "deferred", d["line"]
        assert took < 8, f"deferred after {took:.1f}s with connect-timeout = 1s: {d['line']}"
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_a_certificate_for_another_name_is_refused_though_its_ca_is_trusted(make_gateway,
                                                                             relay):
    ca = shared_ca()
    g = make_gateway(users={"joe": PASSWORD}, cert=ca.issue("other.example"))
    relay.extra = g.route(user="joe", reply_timeout="5s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("wrongname")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred", d["line"]
    assert re.search(r"host ?name|name|match|certificate", d["reply"], re.I), d["line"]
    # tls-verify = no: encrypted all the same, and sent
    relay.stop()
    relay.extra = g.route(user="joe", reply_timeout="5s", tls_verify="no")
    relay.start(**NO_RETRY)
    r = relay.cli("flush")
    assert r.returncode == 0, r
    got = g.wait_for_message(rcpt=rcpt, timeout=20)
    assert got.tls


# --- sessions --------------------------------------------------------------------------------------

def test_no_more_than_max_deliveries_sessions_run_at_once(make_fault_peer, relay):
    peer = make_fault_peer(Script(banner_delay=0.3, data_end=Reply("250 2.0.0 Ok", delay=0.3)))
    relay.extra = peer_route(peer)
    relay.start(max_deliveries=2, **NO_RETRY)
    tokens = []
    for i in range(8):
        _, _, token = submit(relay, [unique_rcpt(f"par{i}")])
        tokens.append(token)
    peer.wait_for(n=8, timeout=30)
    events = sorted([(s.started, 1) for s in peer.sessions] +
                    [(s.ended, -1) for s in peer.sessions if s.ended])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= 2, f"{peak} sessions at once with max-deliveries = 2"
    assert all(len(accepted_with(peer, t)) == 1 for t in tokens)


def test_a_gateway_that_hangs_up_between_messages_loses_none(make_fault_peer, relay):
    peer = make_fault_peer(Script(banner="421 4.3.2 not now"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    sent = []
    for i in range(3):
        rcpt = unique_rcpt(f"hangup{i}")
        qid, _, token = submit(relay, [rcpt])
        wait_delivery(relay, qid, rcpt, status="deferred")
        sent.append((qid, token))
    # one message per connection: RSET is answered 421 and the line closed
    peer.set_script(Script(rset=Reply("421 4.4.2 too many messages, closing", close=True)))
    r = relay.cli("flush")
    left = relay.messages()
    for qid, token in sent:
        assert accepted_with(peer, token) or qid in left, f"{qid} lost"
        assert len(accepted_with(peer, token)) <= 1
    assert (r.returncode == 0) == (left == {}), (r, left)
    # whatever is left goes on the next flushes
    for _ in range(3):
        if relay.messages() == {}:
            break
        relay.cli("flush")
    assert relay.messages() == {}
    assert all(len(accepted_with(peer, t)) == 1 for _, t in sent)


# --- what leaves is strict SMTP ------------------------------------------------------------------

def test_stray_cr_and_lf_in_a_stored_message_leave_as_crlf_and_never_end_data_early(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(banner="421 4.3.2 not yet"))
    relay.extra = peer_route(peer)
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("smuggle")
    qid, content, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    relay.stop()
    # the stored content gets a smuggling attempt of the same length: a bare
    # LF "." bare LF, and bare CRs, where "second line" was
    path = relay.path("data", qid)
    data = open(path, "rb").read()
    evil = b"x\n.\nMAIL\r.\r"
    assert len(evil) == len(b"second line") and data.count(b"second line") == 1
    with open(path, "wb") as f:
        f.write(data.replace(b"second line", evil))
    peer.set_script(Script())
    r = relay.cli("flush")                 # no daemon: the foreground delivery
    assert r.returncode == 0, r
    [m] = accepted_with(peer, token)
    raw = m.raw_data
    assert not re.search(rb"(?<!\r)\n", raw), raw
    assert not re.search(rb"\r(?!\n)", raw), raw
    assert b"\r\n.\r\n" not in raw and not raw.startswith(b".\r\n")
    assert m.data.endswith(f"END-{token}\r\n".encode())
    # each stray line end became CRLF; the lone dots were stuffed on the wire
    assert b"\r\nx\r\n.\r\nMAIL\r\n.\r\n" in m.data, m.data
    assert b"\r\nx\r\n..\r\nMAIL\r\n..\r\n" in raw, raw
    [s] = [s for s in peer.sessions if m in s.messages]
    assert sum(1 for c in s.commands if c.upper().startswith("MAIL")) == 1, s.commands


def test_plain_forced_over_a_cleartext_postfix_port_is_not_sent(gw_plain, relay):
    relay.extra = gw_plain.route(user="joe", port="plain", auth="PLAIN", ca_file=None,
                                 reply_timeout="5s")
    relay.start(**NO_RETRY)
    mark = len(gw_plain.log())
    rcpt = unique_rcpt("plainclear")
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred", d["line"]
    time.sleep(0.3)
    assert "sasl_method=PLAIN" not in gw_plain.log()[mark:]
    assert "SASL PLAIN" not in gw_plain.log()[mark:]


def test_scram_over_a_cleartext_postfix_port_needs_no_plaintext_permission(gw_plain, relay):
    relay.extra = gw_plain.route(user="joe", port="plain", ca_file=None, reply_timeout="5s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("scramclear")
    qid, _, _ = submit(relay, [rcpt])
    got = gw_plain.wait_for_message(rcpt=rcpt, timeout=20)
    assert gw_plain.sasl_method_for(got) == "SCRAM-SHA-256"
    assert wait_delivery(relay, qid, rcpt, status="sent")["tls"] == "none"


# --- OAuth 2 ---------------------------------------------------------------------------------------

TOKEN = "ya29.test-token-Kq81-zz"


def oauth_peer(make_fault_peer, mech, accept=True):
    seen = []

    def auth(session, arg):
        seen.append(arg)
        if len(seen) == 1:
            if not accept:
                err = base64_json('{"status":"401","schemes":"bearer","scope":"mail"}')
                return "334 " + err
            return "235 2.7.0 Accepted"
        return "535 5.7.8 Username and Password not accepted"

    peer = make_fault_peer(Script(ehlo=["PIPELINING", "8BITMIME", f"AUTH {mech} PLAIN"],
                                  auth=auth))
    return peer, seen


def base64_json(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_an_oauth_token_from_the_command_is_sent_and_never_logged(make_fault_peer, relay,
                                                                 tmp_path, mech):
    peer, seen = oauth_peer(make_fault_peer, mech)
    relay.extra = peer_route(peer, user=USER, auth=mech,
                             oauth_token_command=f"printf '{TOKEN}\\n'",
                             allow_plaintext_auth="yes")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt(mech.lower())
    qid, _, token = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "sent" and d["auth"] == mech, d["line"]
    first = seen[0].split()
    assert first[0].upper() == mech
    decoded = base64.b64decode(first[1]).decode()
    if mech == "XOAUTH2":
        assert decoded == f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01", decoded
    else:
        assert decoded.startswith("n,a=" + USER + ",") and f"auth=Bearer {TOKEN}\x01" in decoded
    assert TOKEN not in relay.log_text() and first[1] not in relay.log_text()


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_an_oauth_error_challenge_is_answered_and_the_message_deferred(make_fault_peer, relay,
                                                                      mech):
    peer, seen = oauth_peer(make_fault_peer, mech, accept=False)
    relay.extra = peer_route(peer, user=USER, auth=mech,
                             oauth_token_command=f"printf '{TOKEN}'",
                             allow_plaintext_auth="yes", reply_timeout="3s")
    relay.start(**NO_RETRY)
    rcpt = unique_rcpt("oautherr")
    t0 = time.monotonic()
    qid, _, _ = submit(relay, [rcpt])
    d = wait_delivery(relay, qid, rcpt)
    assert d["status"] == "deferred", d["line"]
    assert time.monotonic() - t0 < 3, "waited for a timeout instead of answering the challenge"
    assert "535" in d["reply"], d["line"]
    # the client answered the error challenge with an empty line (RFC 7628 §3.2.3)
    expected = {"XOAUTH2": "", "OAUTHBEARER": "AQ=="}[mech]
    assert len(seen) >= 2 and seen[1] in ("", expected), seen
    assert TOKEN not in relay.log_text()
