"""The rig of the POP-/IMAP-before-SMTP tests works, without mailredir.

A private Postfix (no SASL) relays only for a client address its policy
service allows; the "poprelayd" (login_rig.py) allows 127.0.0.1 a lag after
it sees a successful POP3/IMAP login in the private Dovecot's log, for a
limited time.  Spoken here with Debian's python3 stdlib: smtplib, poplib,
imaplib, ssl.
"""

import base64
import hashlib
import hmac
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import time

import pytest

from conftest import make_message
from gateway import group_members
from login_rig import CLIENT_ADDRESS, POP_HOST, LoginRig
from login_rig import make_login_rig  # noqa: F401 - a fixture

SENDER = "alice@lan.example"
LAG = 1.5
VALID = 2.5


@pytest.fixture(scope="module")
def rig():
    """One rig for the module (lag 1.5 s, valid 2.5 s, plaintext auth only
    over TLS); each test starts with reset()."""
    r = LoginRig(lag=LAG, valid=VALID)
    try:
        r.start()
        yield r
    finally:
        problems = r.stop()
        print(f"--- poprelayd events\n{r.events() if r.poprelayd else None}")
        print(f"--- maillog\n{r.log()[-20000:] if r.postfix else ''}")
        print(f"--- dovecot log\n{r.dovecot_log()[-8000:] if r.dovecot else ''}")
        r.remove()
    assert not problems, problems


@pytest.fixture
def fresh(rig):
    rig.reset()
    return rig


def context(rig):
    return ssl.create_default_context(cafile=rig.ca_file)


def smtp_try(rig, rcpt, port=None):
    """One SMTP session to the gateway: EHLO, MAIL, RCPT and, when RCPT is
    accepted, DATA.  Returns (code, text) of RCPT, or of DATA when RCPT was
    accepted, and the message's token."""
    content, token = make_message(sender=SENDER, to=rcpt)
    with smtplib.SMTP(rig.smtp_host, port or rig.plain_port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER)[0] == 250
        code, text = s.rcpt(rcpt)
        if code == 250:
            code, text = s.data(content)
        return code, text.decode(), token


def pop3_stls_login(rig, user="joe", password="secret"):
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    p.stls(context=context(rig))
    p.user(user)
    reply = p.pass_(password)
    stat = p.stat()
    p.quit()
    return reply, stat


def assert_relay_denied(code, text, rcpt):
    assert (code, text) == (554, f"5.7.1 <{rcpt}>: Relay access denied")


# --- refusals ------------------------------------------------------------------------

def test_relaying_is_refused_before_any_login(fresh):
    rig = fresh
    for port in (rig.plain_port, rig.submission_port):
        code, text, _ = smtp_try(rig, "before@ext.example", port=port)
        assert_relay_denied(code, text, "before@ext.example")
    assert [d.action for d in rig.decisions()] == ["DUNNO", "DUNNO"]
    assert {d.client_address for d in rig.decisions()} == {CLIENT_ADDRESS}
    assert ("554", "5.7.1", "<before@ext.example>: Relay access denied") in rig.relay_refusals()
    # no AUTH on this gateway, STARTTLS offered on the submission port
    with smtplib.SMTP(rig.smtp_host, rig.submission_port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        s.starttls(context=context(rig))
        s.ehlo("client.example")
        assert not s.has_extn("auth")
    assert rig.logins_seen() == []


# --- POP3 ----------------------------------------------------------------------------

def test_a_pop3_login_allows_relaying_after_the_lag_and_for_a_limited_time(fresh):
    rig = fresh
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    greeting = p.getwelcome().decode()
    # APOP is on: Dovecot puts its timestamp in the greeting
    assert re.fullmatch(r"\+OK Dovecot \(Debian\) ready\. <[^<>@\s]+@[^<>\s]+>", greeting), greeting
    capa = p.capa()
    assert "STLS" in capa and "USER" not in capa, capa       # no USER before STLS
    assert capa["SASL"] == ["CRAM-MD5", "SCRAM-SHA-256"], capa
    p.stls(context=context(rig))
    capa = p.capa()
    assert "STLS" not in capa and "USER" in capa, capa
    assert capa["SASL"] == ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"], capa
    assert p.user("joe") == b"+OK"
    assert p.pass_("secret") == b"+OK Logged in."
    assert p._shortcmd("STAT") == b"+OK 0 0"                   # an empty maildir
    p.quit()
    done = time.monotonic()

    # within the lag: still refused
    code, text, _ = smtp_try(rig, "early@ext.example")
    assert_relay_denied(code, text, "early@ext.example")
    (login,) = rig.wait_logins(1)
    assert (login.protocol, login.user, login.method, login.address) == (
        "pop3", "joe", "PLAIN", CLIENT_ADDRESS)
    assert login.login["tls"] and login.login["lip"] == POP_HOST
    assert login.time - done < 1.0, "poprelayd took long to see the login"
    assert not rig.relay_allowed_now()

    # after it: relayed to the capture
    allowed_at = rig.wait_relay_allowed(timeout=10)
    assert allowed_at >= login.time + LAG
    code, text, token = smtp_try(rig, "later@ext.example")
    assert code == 250 and text.startswith("2.0.0 Ok: queued as "), (code, text)
    got = rig.wait_for_message(rcpt="later@ext.example", timeout=20)
    assert got.mail_from == SENDER and token.encode() in got.original

    # and not for ever
    expired_at = rig.wait_relay_expired(timeout=10)
    assert expired_at >= login.time + LAG + VALID
    code, text, _ = smtp_try(rig, "expired@ext.example")
    assert_relay_denied(code, text, "expired@ext.example")

    kinds = [(e.kind, round(e.time - login.time, 3)) for e in rig.events()]
    assert kinds == [("login", 0), ("allow", LAG), ("expire", LAG + VALID)], kinds
    actions = [(d.recipient, d.action) for d in rig.decisions()]
    assert actions == [("early@ext.example", "DUNNO"), ("later@ext.example", "OK"),
                       ("expired@ext.example", "DUNNO")], actions
    ok = rig.decisions("OK")[0]
    assert login.time + LAG <= ok.time < login.time + LAG + VALID


def test_apop_and_pop3_sasl_logins_count(fresh):
    rig = fresh
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    assert p.apop("joe", "secret") == b"+OK Logged in."        # cleartext, no STLS
    assert p.stat() == (0, 0)
    p.quit()
    # RFC 5034 AUTH: PLAIN with an initial response, CRAM-MD5 with a challenge
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    p.stls(context=context(rig))
    ir = base64.b64encode(b"\0joe\0secret").decode()
    assert p._shortcmd("AUTH PLAIN " + ir) == b"+OK Logged in."
    p.quit()
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    challenge = p._shortcmd("AUTH CRAM-MD5")                  # CRAM-MD5 needs no TLS
    assert challenge.startswith(b"+ "), challenge
    digest = hmac.new(b"secret", base64.b64decode(challenge[2:]), hashlib.md5).hexdigest()
    assert p._shortcmd(base64.b64encode(f"joe {digest}".encode()).decode()) == b"+OK Logged in."
    p.quit()
    assert [(e.method, e.login["tls"]) for e in rig.wait_logins(3, "pop3")] == [
        ("APOP", False), ("PLAIN", True), ("CRAM-MD5", False)]
    rig.wait_relay_allowed(timeout=10)


def test_pop3s_and_imaps_ports_work(fresh):
    rig = fresh
    p = poplib.POP3_SSL(rig.pop_host, rig.pop3s_port, timeout=10, context=context(rig))
    assert "STLS" not in p.capa()
    p.user("joe")
    assert p.pass_("secret") == b"+OK Logged in."
    p.quit()
    i = imaplib.IMAP4_SSL(rig.pop_host, rig.imaps_port, ssl_context=context(rig), timeout=10)
    assert "AUTH=PLAIN" in i.capabilities and "STARTTLS" not in i.capabilities
    assert i.login("joe", "secret")[0] == "OK"
    i.logout()
    seen = [(e.protocol, e.login["tls"]) for e in rig.wait_logins(2)]
    assert seen == [("pop3", True), ("imap", True)], seen
    rig.wait_relay_allowed(timeout=10)
    code, text, _ = smtp_try(rig, "secure@ext.example", port=rig.submission_port)
    assert code == 250, (code, text)
    rig.wait_for_message(rcpt="secure@ext.example", timeout=20)


# --- IMAP ----------------------------------------------------------------------------

def test_an_imap_login_counts_as_well(fresh):
    rig = fresh
    i = imaplib.IMAP4(rig.pop_host, rig.imap_port, timeout=10)
    assert i.welcome.decode() == (
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS"
        " LOGINDISABLED AUTH=CRAM-MD5 AUTH=SCRAM-SHA-256] Dovecot (Debian) ready.")
    i.starttls(ssl_context=context(rig))
    assert "LOGINDISABLED" not in i.capabilities and "AUTH=PLAIN" in i.capabilities
    assert i.login("joe", "secret") == ("OK", [b"Logged in"])
    assert i.select("INBOX") == ("OK", [b"0"])
    i.logout()
    code, text, _ = smtp_try(rig, "imap-early@ext.example")
    assert_relay_denied(code, text, "imap-early@ext.example")
    (login,) = rig.wait_logins(1)
    assert (login.protocol, login.method, login.address) == ("imap", "PLAIN", CLIENT_ADDRESS)
    rig.wait_relay_allowed(timeout=10)
    code, text, _ = smtp_try(rig, "imap-later@ext.example")
    assert code == 250, (code, text)
    rig.wait_for_message(rcpt="imap-later@ext.example", timeout=20)
    # CRAM-MD5 over cleartext IMAP is a login too
    i = imaplib.IMAP4(rig.pop_host, rig.imap_port, timeout=10)
    assert i.login_cram_md5("joe", "secret")[0] == "OK"
    i.logout()
    assert [e.method for e in rig.wait_logins(2, "imap")] == ["PLAIN", "CRAM-MD5"]


# --- failures ------------------------------------------------------------------------

def test_a_wrong_password_is_refused_and_allows_nothing(fresh):
    rig = fresh
    failures_before = len(rig.login_failures())
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    p.stls(context=context(rig))
    p.user("joe")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert e.value.args[0] == b"-ERR [AUTH] Authentication failed."
    p.quit()
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    with pytest.raises(poplib.error_proto) as e:
        p.apop("joe", "wrong")
    assert e.value.args[0] == b"-ERR [AUTH] Authentication failed."
    p.quit()
    i = imaplib.IMAP4_SSL(rig.pop_host, rig.imaps_port, ssl_context=context(rig), timeout=10)
    with pytest.raises(imaplib.IMAP4.error) as e:
        i.login("joe", "wrong")
    assert "[AUTHENTICATIONFAILED] Authentication failed." in str(e.value)
    i.logout()
    time.sleep(LAG + 0.3)
    assert rig.logins_seen() == [] and not rig.relay_allowed_now()
    code, text, _ = smtp_try(rig, "nope@ext.example")
    assert_relay_denied(code, text, "nope@ext.example")
    failed = rig.login_failures()[failures_before:]
    assert [(f["protocol"], f["method"]) for f in failed] == [
        ("pop3", "PLAIN"), ("pop3", "APOP"), ("imap", "PLAIN")], failed
    assert "Password mismatch" in rig.dovecot_log()


def test_plaintext_auth_is_refused_before_stls(fresh):
    rig = fresh
    failures_before = len(rig.login_failures())
    imap_before = len(rig.login_failures("imap"))
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    refusal = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
    with pytest.raises(poplib.error_proto) as e:
        p.user("joe")
    assert e.value.args[0] == refusal
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("secret")
    assert e.value.args[0] == refusal
    with pytest.raises(poplib.error_proto):
        p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0joe\0secret").decode())
    p.quit()
    i = imaplib.IMAP4(rig.pop_host, rig.imap_port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error) as e:
        i.login("joe", "secret")
    assert "[PRIVACYREQUIRED] Plaintext authentication disallowed" in str(e.value)
    i.logout()
    # Dovecot logs "Login failed: Plaintext authentication disabled: user=<...>"
    # for USER, PASS and LOGIN, "Disconnected: ... (tried to use disallowed
    # plaintext auth)" for AUTH PLAIN; once the IMAP disconnection is in the
    # log, all is
    deadline = time.monotonic() + 5
    while (not [f for f in rig.login_failures("imap")[imap_before:] if "Disconnected" in f["line"]]
           and time.monotonic() < deadline):
        time.sleep(0.02)
    failed = rig.login_failures()[failures_before:]
    disabled = [f["protocol"] for f in failed
                if "Login failed: Plaintext authentication disabled" in f["line"]]
    assert disabled == ["pop3", "pop3", "imap"], failed
    assert any("tried to use disallowed plaintext auth" in f["line"] for f in failed), failed
    assert rig.logins_seen() == []
    # and after STLS the same is fine
    assert pop3_stls_login(rig) == (b"+OK Logged in.", (0, 0))


def test_plaintext_auth_on_cleartext_when_the_server_allows_it(make_login_rig):
    rig = make_login_rig(plaintext_auth=True, lag=0.5, valid=30)
    p = poplib.POP3(rig.pop_host, rig.pop3_port, timeout=10)
    capa = p.capa()
    assert "USER" in capa and "STLS" in capa and "PLAIN" in capa["SASL"], capa
    p.user("joe")
    assert p.pass_("secret") == b"+OK Logged in."
    p.quit()
    i = imaplib.IMAP4(rig.pop_host, rig.imap_port, timeout=10)
    assert "LOGINDISABLED" not in i.capabilities
    assert i.login("joe", "secret")[0] == "OK"
    i.logout()
    seen = [(e.protocol, e.method, e.login["tls"]) for e in rig.wait_logins(2)]
    assert seen == [("pop3", "PLAIN", False), ("imap", "PLAIN", False)], seen
    # Dovecot did not count it as "secured" (rip 127.0.0.1 != lip 127.0.0.2)
    assert all(", secured," not in e.login["line"] for e in rig.logins_seen())
    rig.wait_relay_allowed(timeout=10)
    code, text, _ = smtp_try(rig, "clear@ext.example")
    assert code == 250, (code, text)


# --- the rig itself ---------------------------------------------------------------

def test_route_keys_give_the_login_before_smtp_section(fresh):
    rig = fresh
    text = rig.route_keys("pop3", login_delay="4s", login_valid="10m")
    lines = text.splitlines()
    assert lines[:4] == ["[route gw]", f"smarthost = 127.0.0.1:{rig.plain_port}", "tls = none",
                         f"tls-ca-file = {rig.ca_file}"]
    assert "user = joe" in lines
    assert f"login-before-smtp = pop3://127.0.0.2:{rig.pop3_port}" in lines
    assert "login-delay = 4s" in lines and "login-valid = 10m" in lines
    secret = [l.split(" = ", 1)[1] for l in lines if l.startswith("password-file = ")][0]
    with open(secret) as f:
        assert f.read() == "secret"
    for proto, port in (("pop3s", rig.pop3s_port), ("imap", rig.imap_port),
                        ("imaps", rig.imaps_port)):
        assert f"login-before-smtp = {proto}://127.0.0.2:{port}\n" in rig.route_keys(proto)
    other = rig.route_keys("imaps", smtp="submission", user=None, login_user="joe",
                           login_password="secret", login_tls="none", name="isp",
                           allow_plaintext_auth="yes", tls_fingerprint=rig.fingerprint)
    assert f"smarthost = 127.0.0.1:{rig.submission_port}\ntls = starttls\n" in other
    assert "\nuser = " not in other and "\nlogin-user = joe\n" in other
    assert "login-password-file = " in other and "login-tls = none\n" in other
    assert "allow-plaintext-auth = yes\n" in other and f"tls-fingerprint = {rig.fingerprint}\n" in other
    assert "login-before-smtp" not in rig.route_keys(None)
    assert "tls = tls\n" in rig.route_keys("pop3", smtp="smtps")


def test_the_rig_starts_fast_and_stops_by_pid():
    r = LoginRig(lag=1, valid=1)
    try:
        r.start()
        assert r.start_seconds < 5.0, f"login rig start took {r.start_seconds:.2f}s"
        groups = (r.postfix.master_pid, r.dovecot.pid)
        assert all(len(group_members(g)) >= 2 for g in groups)
        ports = {r.pop3_port, r.pop3s_port, r.imap_port, r.imaps_port, r.plain_port,
                 r.submission_port, r.smtps_port, r.policy.port, r.capture.port}
        assert len(ports) == 9
        # the same certificate on both: one fingerprint pins both
        for host, port in ((POP_HOST, r.pop3s_port), ("127.0.0.1", r.smtps_port)):
            with socket.create_connection((host, port), timeout=10) as s:
                with context(r).wrap_socket(s, server_hostname=host) as t:
                    der = t.getpeercert(binary_form=True)
                    assert r.fingerprint.replace(":", "").lower() == "sha256" + \
                        hashlib.sha256(der).hexdigest()
    finally:
        assert r.stop() == []
        r.remove()
    assert all(group_members(g) == [] for g in groups)
    assert not r.poprelayd.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", r.policy.port), timeout=2).close()
