"""POP-before-SMTP and IMAP-before-SMTP (issue 5): mailredir logs in to a
real Dovecot before it delivers through a real Postfix that relays only for
addresses a "poprelayd" saw log in a little while ago (login_rig.py).
"""

import re
import time

import pytest

from conftest import new_token, run_bin
from fault_peer import make_fault_peer  # noqa: F401
from login_rig import make_login_rig  # noqa: F401
from login_peer import ImapPeer, Pop3Peer
from test_forwarding_helpers import assert_no_secret, dead_port, peer_route, wait_delivery

KEYS = dict(reply_timeout="5s", connect_timeout="3s")


def rcpt():
    return f"l-{new_token()[:8]}@ext.example"


def deferred_at_first_attempt(relay):
    """Start the relay (next retry in an hour), send one message and wait
    for its first attempt to defer it: (qid, rcpt, the delivery log line)."""
    relay.start(retry="1h")
    r = rcpt()
    qid, _ = relay.submit(rcpts=(r,))
    return qid, r, wait_delivery(relay, qid, r, "deferred")


def test_without_login_before_smtp_the_gateway_refuses_and_the_message_waits(make_login_rig,
                                                                            relay):
    rig = make_login_rig(lag=1)
    relay.extra = rig.route_keys(None, user=None, **KEYS)
    qid, r, d = deferred_at_first_attempt(relay)
    assert "Relay access denied" in d["reply"], d
    assert relay.messages()[qid]["state"] == "deferred"
    assert rig.relay_refusals()


@pytest.mark.parametrize("protocol", ["pop3", "pop3s", "imap", "imaps"])
def test_a_login_delay_above_the_lag_delivers_at_the_first_attempt(make_login_rig, relay,
                                                                   protocol):
    """The SASL path: Dovecot offers PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256, the
    login takes the strongest, over TLS (STLS/STARTTLS on pop3/imap)."""
    rig = make_login_rig(lag=1)
    relay.extra = rig.route_keys(protocol, login_delay="2s", **KEYS)
    relay.start()
    r = rcpt()
    qid, _ = relay.submit(rcpts=(r,))
    rig.wait_for_message(rcpt=r, timeout=30)
    d = wait_delivery(relay, qid, r, "sent")
    assert d["attempts"] == "1"
    assert not rig.relay_refusals()
    kind = protocol.rstrip("s")
    (login,) = rig.logins_seen(kind)
    assert (login.method, login.login["tls"]) == ("SCRAM-SHA-256", True), login
    assert relay.log_matches(rf"route gw: {kind.upper()} login to 127\.0\.0\.2\[127\.0\.0\.2\]:"
                             rf"{rig.login_port(protocol)} as joe: ok \(tls=TLSv1\.[23], "
                             r"auth=SCRAM-SHA-256\); SMTP in 2 s")
    assert_no_secret("the log", relay.log_text(), "joe", rig.users["joe"])


def test_apop_when_the_pop3_server_offers_no_sasl(make_login_rig, relay):
    """Dovecot with APOP alone: the greeting carries the timestamp, CAPA
    lists no SASL mechanism; APOP is used (after STLS) and the password is
    never sent."""
    rig = make_login_rig(lag=1, mechs=("APOP",))
    relay.extra = rig.route_keys("pop3", login_delay="2s", **KEYS)
    relay.start()
    r = rcpt()
    qid, _ = relay.submit(rcpts=(r,))
    rig.wait_for_message(rcpt=r, timeout=30)
    assert wait_delivery(relay, qid, r, "sent")["attempts"] == "1"
    (login,) = rig.logins_seen("pop3")
    assert (login.method, login.login["tls"]) == ("APOP", True), login
    assert relay.log_matches(r"route gw: POP3 login to \S+ as joe: ok \(tls=TLSv1\.[23], "
                             r"auth=APOP\)")


def secret_file(tmp_path, password):
    path = tmp_path / "pop-secret"
    path.write_text(password)
    path.chmod(0o600)
    return str(path)


def pop3_route(pop, gateway, **keys):
    """A route through a FaultPeer gateway after a login at a Pop3Peer."""
    return peer_route(gateway, name="gw", user="joe",
                      login_before_smtp=f"pop3://{pop.host}:{pop.port}", **keys)


def test_user_pass_on_cleartext_only_with_the_opt_in(make_fault_peer, relay, tmp_path):
    """An old POP3 server: no STLS, no SASL, no APOP timestamp, only USER.
    Without allow-plaintext-auth nothing of the account is sent and the
    gateway is not contacted; with it, USER/PASS, and the message goes."""
    password = "Clear-pass-4kq"
    gateway = make_fault_peer()
    with Pop3Peer(capa=["USER", "UIDL"]) as pop:
        relay.extra = pop3_route(pop, gateway, login_tls="none",
                                 password_file=secret_file(tmp_path, password))
        qid, r, d = deferred_at_first_attempt(relay)
        assert "allow-plaintext-auth = yes" in d["reply"], d
        assert d["relay"] == "none"
        assert pop.verbs() == ["CAPA"], pop.commands
        assert gateway.sessions == []

        pop.commands.clear()
        relay.stop()
        relay.extra = pop3_route(pop, gateway, login_tls="none", allow_plaintext_auth="yes",
                                 password_file=secret_file(tmp_path, password))
        relay.start(retry="1h")
        assert relay.cli("flush").returncode == 0
        gateway.wait_for(rcpt=r, timeout=30)
        assert pop.commands == ["CAPA", "USER joe", f"PASS {password}", "STAT", "QUIT"]
        assert relay.log_matches(r"route gw: POP3 login to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ "
                                 r"as joe: ok \(tls=none, auth=USER\)")
    assert_no_secret("the log", relay.log_text(), "joe", password)


def test_imap_login_command_on_cleartext_only_with_the_opt_in(make_fault_peer, relay,
                                                             tmp_path):
    """An IMAP server without STARTTLS and without AUTH=: LOGIN, with the
    user and password as quoted strings, only with allow-plaintext-auth."""
    password = 'Quo"te\\pass'
    gateway = make_fault_peer()
    with ImapPeer() as imap:
        url = f"imap://{imap.host}:{imap.port}"
        relay.extra = peer_route(gateway, name="gw", user="joe", login_before_smtp=url,
                                 login_tls="none", password_file=secret_file(tmp_path, password))
        qid, r, d = deferred_at_first_attempt(relay)
        assert "allow-plaintext-auth = yes" in d["reply"], d
        assert imap.commands == [], imap.commands
        assert gateway.sessions == []

        relay.stop()
        relay.extra = peer_route(gateway, name="gw", user="joe", login_before_smtp=url,
                                 login_tls="none", allow_plaintext_auth="yes",
                                 password_file=secret_file(tmp_path, password))
        relay.start(retry="1h")
        assert relay.cli("flush").returncode == 0
        gateway.wait_for(rcpt=r, timeout=30)
        assert imap.commands == ['m1 LOGIN "joe" "Quo\\"te\\\\pass"', "z LOGOUT"]
        assert relay.log_matches(r"route gw: IMAP login to \S+ as joe: ok \(tls=none, "
                                 r"auth=LOGIN\)")
    assert_no_secret("the log", relay.log_text(), "joe", password)


def test_imap_logindisabled_without_a_usable_mechanism_defers(make_fault_peer, relay,
                                                             tmp_path):
    gateway = make_fault_peer()
    with ImapPeer(capabilities="IMAP4rev1 LOGINDISABLED AUTH=GSSAPI") as imap:
        relay.extra = peer_route(gateway, name="gw", user="joe",
                                 login_before_smtp=f"imap://{imap.host}:{imap.port}",
                                 login_tls="none", allow_plaintext_auth="yes",
                                 password_file=secret_file(tmp_path, "pw-1"))
        qid, r, d = deferred_at_first_attempt(relay)
        assert "LOGINDISABLED" in d["reply"], d
        assert imap.commands == [], imap.commands
        assert gateway.sessions == []


def test_login_tls_required_refuses_a_server_without_stls(make_fault_peer, relay, tmp_path):
    gateway = make_fault_peer()
    with Pop3Peer(capa=["USER"]) as pop:
        relay.extra = pop3_route(pop, gateway, allow_plaintext_auth="yes",
                                 password_file=secret_file(tmp_path, "Clear-pass-4kq"))
        qid, r, d = deferred_at_first_attempt(relay)
        assert "offers no STLS" in d["reply"] and "login-tls = none" in d["reply"], d
        assert pop.verbs() == ["CAPA"], pop.commands
        assert gateway.sessions == []


def test_a_login_server_that_is_down_defers_and_the_gateway_is_not_contacted(
        make_fault_peer, relay, tmp_path):
    gateway = make_fault_peer()
    port = dead_port()
    relay.extra = peer_route(gateway, name="gw", user="joe",
                             password_file=secret_file(tmp_path, "x-pass"),
                             login_before_smtp=f"pop3s://127.0.0.1:{port}")
    qid, r, d = deferred_at_first_attempt(relay)
    assert d["reply"].startswith(f"login-before-smtp pop3s://127.0.0.1:{port} failed: "), d
    assert "refused" in d["reply"].lower(), d
    assert gateway.sessions == []
    assert relay.messages()[qid]["state"] == "deferred"


def test_a_wrong_pop_password_defers_with_the_reason_and_never_contacts_the_gateway(
        make_login_rig, relay):
    rig = make_login_rig(lag=1)
    relay.extra = rig.route_keys("pop3s", login_password="wrong-one", **KEYS)
    qid, r, d = deferred_at_first_attempt(relay)
    assert d["reply"].startswith("login-before-smtp pop3s://127.0.0.2:"), d
    assert "-ERR" in d["reply"] or "refused" in d["reply"], d
    assert d["relay"] == "none"
    # the gateway saw no SMTP session (only the rig's own port checks, without EHLO)
    assert not re.search(r"disconnect from .* ehlo=", rig.postfix.log()), rig.postfix.log()
    assert relay.messages()[qid]["recipients"][0]["status"] == "deferred"


def test_adaptive_delay_learns_the_lag_and_uses_it_next_time(make_login_rig, relay):
    """login-delay 0 against a 3 s lag: refused right after the login, then
    delivered by the adaptive retry; the learnt delay serves the next
    delivery (a new session, after the allowance expired) without a refusal."""
    rig = make_login_rig(lag=3, valid=4)
    relay.extra = rig.route_keys("pop3", login_delay="0", **KEYS)
    relay.start()
    r1 = rcpt()
    t0 = time.monotonic()
    q1, _ = relay.submit(rcpts=(r1,))
    rig.wait_for_message(rcpt=r1, timeout=60)
    assert wait_delivery(relay, q1, r1, "sent", timeout=60)["attempts"] == "1"
    assert time.monotonic() - t0 < 30
    learnt = relay.wait_log(r"route gw: the gateway relayed ([\d.]+) s after the login")
    assert 3 <= float(learnt.group(1)) <= 7, learnt.group(0)
    refusals = len(rig.relay_refusals())
    assert refusals >= 1
    time.sleep(8)            # the worker's session is idle-closed, the allowance over
    r2 = rcpt()
    q2, _ = relay.submit(rcpts=(r2,))
    rig.wait_for_message(rcpt=r2, timeout=60)
    assert wait_delivery(relay, q2, r2, "sent", timeout=60)["attempts"] == "1"
    assert len(rig.relay_refusals()) == refusals      # no second refusal


def test_login_valid_skips_the_login_while_the_last_one_is_recent(make_login_rig, relay):
    """Three flushes, each its own process and SMTP session: one IMAP login."""
    rig = make_login_rig(lag=1, valid=120)
    relay.extra = rig.route_keys("imap", login_delay="2s", login_valid="10m", **KEYS)
    relay.init_spool()
    for _ in range(3):
        r = rcpt()
        s = run_bin(["-c", relay.conf, "sendmail", "-f", "alice@lan.example", r],
                    input=f"Subject: login-valid\r\n\r\n{r}\r\n".encode())
        assert s.returncode == 0, s
        f = relay.cli("flush")
        assert f.returncode == 0, f
        rig.wait_for_message(rcpt=r, timeout=30)
    assert len(rig.dovecot_logins("imap")) == 1
    with open(relay.path("login-state")) as fh:
        assert re.match(r"^gw \d+ \d+\n$", fh.read())


def test_probe_shows_the_login_step(make_login_rig, relay):
    rig = make_login_rig(lag=1, users={"joe": "Pop-pass-9zQx"})
    relay.extra = rig.route_keys("pop3", login_delay="2s", **KEYS)
    relay.write_config()
    p = relay.cli("probe")
    assert p.returncode == 0, p
    out = p.out
    assert re.search(r"^login-before-smtp pop3://127\.0\.0\.2:\d+ \(login-tls required", out,
                     re.M), out
    assert re.search(r"^login: ok: POP3 127\.0\.0\.2\[127\.0\.0\.2\]:\d+, TLS TLSv1\.[23], "
                     r"mechanism \S+, as joe$", out, re.M), out
    assert "login: waiting 2 s before SMTP (login-delay 2 s, learnt none)" in out, out
    assert "STLS" in out
    assert "not offered by the POP3 server: " in out, out
    assert "result: a message could be sent through route gw" in out
    password = rig.users["joe"]
    assert password not in out and password not in p.err


def test_probe_stops_at_a_failed_login(make_login_rig, relay):
    rig = make_login_rig(lag=1)
    relay.extra = rig.route_keys("imaps", login_password="Wrong-pass-7", **KEYS)
    relay.write_config()
    p = relay.cli("probe")
    assert p.returncode == 69, p
    assert re.search(r"^login: FAILED: .*AUTHENTICATIONFAILED", p.out, re.M), p.out
    assert "EHLO" not in p.out, p.out
    assert "Wrong-pass-7" not in p.out + p.err


def test_a_login_account_of_its_own_with_a_password_command(make_login_rig, relay):
    """login-user and login-password-command instead of the route's account."""
    rig = make_login_rig(lag=1, users={"joe": "Smtp-pass-1", "popper": "Pop-only-3x"})
    secret = rig.secret_file("Pop-only-3x")
    relay.extra = rig.route_keys("pop3s", login_user="popper", login_delay="2s",
                                 login_password_command=f"/bin/cat {secret}", **KEYS)
    relay.start()
    r = rcpt()
    qid, _ = relay.submit(rcpts=(r,))
    rig.wait_for_message(rcpt=r, timeout=30)
    assert wait_delivery(relay, qid, r, "sent")["attempts"] == "1"
    assert [e.user for e in rig.logins_seen("pop3")] == ["popper"]
    assert rig.dovecot_logins("pop3", user="joe") == []
    assert relay.log_matches(r"route gw: POP3 login to \S+ as popper: ok")
    assert_no_secret("the log", relay.log_text(), "popper", "Pop-only-3x")


def test_a_login_url_that_points_at_an_smtp_server_defers_with_a_clear_reason(
        make_fault_peer, relay, tmp_path):
    """A common slip: pop3:// at the gateway's own port.  The greeting is
    not POP3; nothing of the account is sent."""
    gateway = make_fault_peer()
    with Pop3Peer(greeting="220 smtp.isp.example ESMTP") as pop:
        relay.extra = pop3_route(pop, gateway, login_tls="none", allow_plaintext_auth="yes",
                                 password_file=secret_file(tmp_path, "pw-2"))
        qid, r, d = deferred_at_first_attempt(relay)
        assert "is not a POP3 server" in d["reply"], d
        assert pop.commands == [], pop.commands
        assert gateway.sessions == []
