"""The rig of the forwarding tests works, without mailredir's forwarding.

A private Postfix with a private Dovecot behind its SASL (gateway.py) takes
authenticated mail with every mechanism Dovecot 2.3 has, on its STARTTLS and
its implicit-TLS port, relays nothing for an unauthenticated client, says
535 to a wrong password, logs the mechanism, and hands the exact bytes to the
capture.  The fault peer (fault_peer.py) serves each scripted fault.

swaks (Debian 12's 20201014) has no SCRAM: SCRAM-SHA-1 and SCRAM-SHA-256 are
spoken here by smtplib with a small RFC 5802 client that also checks the
server's signature.
"""

import base64
import hashlib
import hmac
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time

import pytest

from conftest import make_message, new_token
from fault_peer import Reply, Script, drop, garbage, server_context, slow
from fault_peer import make_fault_peer  # noqa: F401 - a fixture
from gateway import DOVECOT_MECHS, Gateway, fingerprint, group_members, shared_ca
from gateway import make_gateway, module_gateway  # noqa: F401 - fixtures

HERE = os.path.dirname(os.path.abspath(__file__))
SWAKS_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5")
SENDER = "alice@lan.example"


# --- clients ----------------------------------------------------------------------

class Scram:
    """SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, no channel binding) as an
    smtplib auth object: smtp.auth("SCRAM-SHA-256", Scram(...))."""

    def __init__(self, user, password, mech):
        self.user = user
        self.password = password.encode()
        self.hash = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech]
        self.step = 0
        self.server_verified = False

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def __call__(self, challenge=None):
        if self.step == 0:
            self.cnonce = base64.b64encode(os.urandom(18)).decode()
            name = self.user.replace("=", "=3D").replace(",", "=2C")
            self.first_bare = f"n={name},r={self.cnonce}"
            self.step = 1
            return "n,," + self.first_bare
        if self.step == 1:
            server_first = challenge.decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            assert attrs["r"].startswith(self.cnonce), server_first
            salted = hashlib.pbkdf2_hmac(self.hash, self.password, base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            client_key = self._hmac(salted, b"Client Key")
            stored_key = hashlib.new(self.hash, client_key).digest()
            without_proof = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
            auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
            signature = self._hmac(stored_key, auth_message)
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = self._hmac(salted, b"Server Key")
            self.server_signature = base64.b64encode(self._hmac(server_key, auth_message)).decode()
            self.step = 2
            return f"{without_proof},p={base64.b64encode(proof).decode()}"
        self.server_verified = challenge.decode() == "v=" + self.server_signature
        self.step = 3
        return ""


def client_context(ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def swaks(port, rcpt, *args, data=None, tmp_path=None, timeout=30):
    """swaks to 127.0.0.1:port; data: the exact message (CRLF, ending in
    CRLF).  swaks adds a CRLF after a --data file: the file gets the message
    without its last CRLF."""
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", SENDER,
           "--to", rcpt, "--helo", "client.test.example", "--timeout", "20"]
    if data is not None:
        assert data.endswith(b"\r\n")
        path = os.path.join(str(tmp_path), f"msg-{new_token()}.eml")
        with open(path, "wb") as f:
            f.write(data[:-2])
        cmd += ["--data", "@" + path]
    p = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def swaks_auth(gw, mech, rcpt, data, tmp_path, password="secret", implicit=False):
    tls = ["--tlsc"] if implicit else ["--tls"]
    port = gw.smtps_port if implicit else gw.submission_port
    return swaks(port, rcpt, *tls, "--tls-verify", "--tls-ca-path", gw.ca_file,
                 "--auth", mech, "--auth-user", "joe", "--auth-password", password,
                 data=data, tmp_path=tmp_path)


def smtplib_scram(gw, mech, rcpt, data, password="secret"):
    """STARTTLS (verified against the test CA, host name 127.0.0.1), AUTH
    SCRAM-*, one message.  Returns the Scram object."""
    scram = Scram("joe", password, mech)
    with smtplib.SMTP("127.0.0.1", gw.submission_port, timeout=20) as s:
        s.ehlo("client.test.example")
        s.starttls(context=client_context(gw.ca_file))
        s.ehlo("client.test.example")
        s.auth(mech, scram)
        s.sendmail(SENDER, [rcpt], data)
    return scram


def ehlo_auth(port, ca_file=None, starttls=False):
    """The AUTH mechanisms a port offers (before or after STARTTLS)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.test.example")
        if starttls:
            s.starttls(context=client_context(ca_file))
            s.ehlo("client.test.example")
        return s.esmtp_features.get("auth", "").split() if s.has_extn("auth") else None


def body(rcpt):
    """A message that shows any change: a leading dot, 8-bit text, a long line."""
    return make_message(to=rcpt, body_lines=[".a line that starts with a dot", "..and two dots",
                                              "h\u00e9 \u2603 eight-bit text", "x" * 900, ""])


# --- the real gateway ----------------------------------------------------------------

@pytest.mark.parametrize("mech", DOVECOT_MECHS)
def test_each_dovecot_mechanism_authenticates_and_the_capture_gets_the_exact_bytes(
        module_gateway, mech, tmp_path):
    gw = module_gateway
    rcpt = f"{mech.lower()}-{new_token()[:8]}@ext.example"
    content, token = body(rcpt)
    if mech in SWAKS_MECHS:
        rc, out = swaks_auth(gw, mech, rcpt, content, tmp_path)
        assert rc == 0, out
        assert "235 2.7.0 Authentication successful" in out, out
    else:
        scram = smtplib_scram(gw, mech, rcpt, content)
        assert scram.server_verified, "the gateway's SCRAM server signature did not verify"
    got = gw.wait_for_message(rcpt=rcpt, timeout=20)
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [rcpt]
    assert got.original == content
    assert got.data.endswith(content) and got.data.startswith(b"Received: ")
    assert "(Authenticated sender: joe)" in got.received, got.received
    assert got.tls, got.received
    assert got.auth_mech == mech
    assert got.sasl_username == "joe"
    assert gw.sasl_method_for(got) == mech
    assert gw.sasl_method_for(got.postfix_id) == mech


def test_the_implicit_tls_port_takes_authenticated_mail(module_gateway, tmp_path):
    gw = module_gateway
    rcpt = f"smtps-{new_token()[:8]}@ext.example"
    content, _ = body(rcpt)
    rc, out = swaks_auth(gw, "PLAIN", rcpt, content, tmp_path, implicit=True)
    assert rc == 0, out
    got = gw.wait_for_message(rcpt=rcpt, timeout=20)
    assert got.original == content
    assert "using TLSv1.3" in got.received or "using TLSv1.2" in got.received, got.received
    assert got.auth_mech == "PLAIN"
    # TLS from the first byte: no banner in clear text
    with socket.create_connection(("127.0.0.1", gw.smtps_port), timeout=10) as s:
        with client_context(gw.ca_file).wrap_socket(s, server_hostname="localhost") as t:
            assert t.recv(100).startswith(b"220 ")
            assert t.version() in ("TLSv1.2", "TLSv1.3")


def test_relaying_without_auth_from_loopback_is_refused(module_gateway, tmp_path):
    gw = module_gateway
    assert gw.postfix.postconf("mynetworks") == "192.0.2.0/24"
    for port in (gw.submission_port, gw.plain_port):
        rcpt = f"norelay-{new_token()[:8]}@ext.example"
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.ehlo("client.test.example")
            if port == gw.submission_port:
                s.starttls(context=client_context(gw.ca_file))
                s.ehlo("client.test.example")
            with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
                s.sendmail(SENDER, [rcpt], b"Subject: x\r\n\r\nx\r\n")
        code, text = e.value.recipients[rcpt]
        assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text, (code, text)
    rc, out = swaks(gw.submission_port, f"norelay2-{new_token()[:8]}@ext.example", "--tls",
                    data=b"Subject: y\r\n\r\ny\r\n", tmp_path=tmp_path)
    assert rc != 0 and "554 5.7.1" in out and "Relay access denied" in out, out
    assert not [m for m in gw.capture.messages if any(r.startswith("norelay") for r in m.rcpt_tos)]


def test_a_wrong_password_gets_535(module_gateway, tmp_path):
    gw = module_gateway
    rcpt = f"wrongpw-{new_token()[:8]}@ext.example"
    rc, out = swaks_auth(gw, "PLAIN", rcpt, b"Subject: x\r\n\r\nx\r\n", tmp_path, password="wrong")
    assert rc != 0 and "535 5.7.8" in out, out
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        smtplib_scram(gw, "SCRAM-SHA-256", rcpt, b"x\r\n", password="wrong")
    assert e.value.smtp_code == 535
    failed = [mech for mech, _ in gw.auth_failures()]
    assert "PLAIN" in failed and "SCRAM-SHA-256" in failed, gw.log()
    assert "Password mismatch" in gw.dovecot.log(), gw.dovecot.log()


def test_the_maillog_names_scram_sha_256_and_dovecot_offers_only_what_was_asked(make_gateway):
    gw = make_gateway(mechs="PLAIN SCRAM-SHA-256", users={"joe": "secret", "ann@isp.example": "pw2"})
    assert ehlo_auth(gw.submission_port, gw.ca_file, starttls=True) == ["PLAIN", "SCRAM-SHA-256"]
    rcpt = f"scram-{new_token()[:8]}@ext.example"
    content, _ = make_message(to=rcpt)
    smtplib_scram(gw, "SCRAM-SHA-256", rcpt, content)
    got = gw.wait_for_message(rcpt=rcpt, timeout=20)
    assert gw.sasl_method_for(got) == "SCRAM-SHA-256"
    assert f"{got.postfix_id}: client=" in gw.log()
    assert "sasl_method=SCRAM-SHA-256, sasl_username=joe" in gw.log()
    assert gw.sasl_methods() == ["SCRAM-SHA-256"]
    # a user name that is an address works too
    with smtplib.SMTP("127.0.0.1", gw.submission_port, timeout=20) as s:
        s.starttls(context=client_context(gw.ca_file))
        s.ehlo("client.test.example")
        assert s.auth("SCRAM-SHA-256", Scram("ann@isp.example", "pw2", "SCRAM-SHA-256"))[0] == 235
    # a mechanism Dovecot was not asked for is refused
    with smtplib.SMTP("127.0.0.1", gw.submission_port, timeout=20) as s:
        s.starttls(context=client_context(gw.ca_file))
        s.ehlo("client.test.example")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth("CRAM-MD5", lambda c=None: None if c is None else "x")
        assert e.value.smtp_code in (504, 535), e.value


def test_tls_auth_only_hides_auth_until_starttls(make_gateway):
    open_gw = make_gateway()
    strict = make_gateway(tls_auth_only=True)
    assert ehlo_auth(open_gw.submission_port) == list(DOVECOT_MECHS)
    assert ehlo_auth(open_gw.plain_port) == list(DOVECOT_MECHS)
    assert ehlo_auth(strict.submission_port) is None
    assert ehlo_auth(strict.submission_port, strict.ca_file, starttls=True) == list(DOVECOT_MECHS)


def test_the_gateway_certificate_verifies_with_the_test_ca_only(module_gateway):
    gw = module_gateway
    ca = shared_ca()

    def handshake(cafile, name):
        with socket.create_connection(("127.0.0.1", gw.smtps_port), timeout=10) as s:
            with client_context(cafile).wrap_socket(s, server_hostname=name) as t:
                return t.getpeercert(binary_form=True)

    der = handshake(gw.ca_file, "localhost")
    assert handshake(gw.ca_file, "127.0.0.1") == der
    assert gw.fingerprint == "sha256:" + ":".join(
        f"{b:02X}" for b in hashlib.sha256(der).digest())
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ca.untrusted_ca_file, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(gw.ca_file, "other.example")
    # the untrusted CA's certificate and issue() for other names
    cert, key = ca.issue("mx.other.example")
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-issuer",
                           "-in", cert], stdout=subprocess.PIPE, text=True).stdout
    assert "DNS:mx.other.example" in text and "CN = mailredir test CA" in text, text
    assert fingerprint(ca.untrusted_cert_file) != fingerprint(ca.cert_file)


def test_a_gateway_can_present_another_certificate(make_gateway):
    ca = shared_ca()
    gw = make_gateway(cert=(ca.untrusted_cert_file, ca.untrusted_key_file))
    assert gw.fingerprint == fingerprint(ca.untrusted_cert_file)
    for cafile, ok in ((ca.untrusted_ca_file, True), (ca.ca_file, False)):
        with socket.create_connection(("127.0.0.1", gw.smtps_port), timeout=10) as s:
            if ok:
                with client_context(cafile).wrap_socket(s, server_hostname="localhost") as t:
                    assert t.recv(4) == b"220 "
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    client_context(cafile).wrap_socket(s, server_hostname="localhost")


def test_the_dovecot_builder_serves_pop3_and_imap_for_the_login_before_smtp_tests():
    import imaplib
    import poplib
    import shutil
    from gateway import Dovecot, public_tempdir
    ca = shared_ca()
    root = public_tempdir("mailredir-dovecot-")
    dovecot = Dovecot(os.path.join(root, "dovecot"), users={"joe": "secret"}, mechs="PLAIN LOGIN",
                      protocols=("pop3", "imap"), ca=ca,
                      listeners={"pop3": 0, "pop3s": 0, "imap": 0, "imaps": 0})
    try:
        dovecot.start()
        ctx = client_context(ca.ca_file)
        p = poplib.POP3("127.0.0.1", dovecot.ports["pop3"], timeout=10)
        assert "STLS" in p.capa()
        p.stls(context=ctx)
        p.user("joe")
        assert p.pass_("secret").startswith(b"+OK")
        p.quit()
        p = poplib.POP3_SSL("localhost", dovecot.ports["pop3s"], timeout=10, context=ctx)
        p.user("joe")
        with pytest.raises(poplib.error_proto):
            p.pass_("wrong")
        p.close()
        i = imaplib.IMAP4_SSL("localhost", dovecot.ports["imaps"], ssl_context=ctx)
        assert i.login("joe", "secret")[0] == "OK"
        i.logout()
        log = dovecot.log()
        assert "pop3-login: Info: Login: user=<joe>, method=PLAIN" in log, log
        assert "Password mismatch" in log, log
    finally:
        assert dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_route_gives_a_section_mailredir_check_accepts(module_gateway, relay):
    gw = module_gateway
    text = gw.route(user="joe", auth="SCRAM-SHA-256 PLAIN", reply_timeout="5s")
    lines = text.splitlines()
    assert lines[0] == "[route gw]"
    assert f"smarthost = 127.0.0.1:{gw.submission_port}" in lines
    assert "tls = starttls" in lines and f"tls-ca-file = {gw.ca_file}" in lines
    assert "user = joe" in lines and "auth = SCRAM-SHA-256 PLAIN" in lines
    assert "reply-timeout = 5s" in lines
    secret = [l.split(" = ", 1)[1] for l in lines if l.startswith("password-file = ")][0]
    with open(secret) as f:
        assert f.read() == "secret"
    assert os.stat(secret).st_mode & 0o777 == 0o600
    smtps = gw.route(port="smtps", name="smtps", tls_fingerprint=gw.fingerprint, tls_verify="yes")
    assert f"smarthost = 127.0.0.1:{gw.smtps_port}" in smtps and "tls = tls" in smtps
    assert f"tls-fingerprint = {gw.fingerprint}" in smtps
    anonymous = gw.route(user=None, port="plain", name="plain", ca_file=None)
    assert "tls = none" in anonymous and "user" not in anonymous and "tls-ca-file" not in anonymous
    relay.extra = text + smtps + anonymous
    relay.write_config()
    r = relay.cli("check")
    assert r.returncode == 0, r


def test_a_gateway_starts_in_under_three_seconds_and_stops_by_pid(tmp_path):
    gw = Gateway()
    try:
        gw.start()
        assert gw.start_seconds < 3.0, f"gateway start took {gw.start_seconds:.2f}s"
        pf_group, dv_group = gw.postfix.master_pid, gw.dovecot.pid
        ports = (gw.submission_port, gw.smtps_port, gw.plain_port)
        assert len(group_members(pf_group)) >= 2 and len(group_members(dv_group)) >= 2
        assert gw.capture.port not in ports
        t0 = time.monotonic()
        assert gw.stop() == []
        assert time.monotonic() - t0 < 5
        assert group_members(pf_group) == [] and group_members(dv_group) == []
        for port in ports:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        gw.stop()
        gw.remove()
    assert not os.path.exists(gw.root)


def test_a_failing_test_still_has_its_gateway_stopped(tmp_path):
    record = tmp_path / "pids"
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_inner.py").write_text(
        "from gateway import make_gateway\n"
        "def test_fails(make_gateway):\n"
        "    gw = make_gateway()\n"
        f"    open({str(record)!r}, 'w').write(\n"
        "        f'{gw.postfix.master_pid} {gw.dovecot.pid} {gw.root}')\n"
        "    assert False, 'deliberate failure'\n")
    env = dict(os.environ, PYTHONPATH=HERE)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "test_inner.py"], cwd=tmp_path,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 1 and "deliberate failure" in out, out
    pf_group, dv_group, root = record.read_text().split()
    assert group_members(int(pf_group)) == [] and group_members(int(dv_group)) == [], out
    assert not os.path.exists(root)
    assert "--- maillog of" in out


# --- the fault peer ------------------------------------------------------------------

def test_fault_peer_421_at_the_banner_then_recovers(make_fault_peer):
    peer = make_fault_peer([Script(banner="421 4.3.2 Service not available, closing channel"),
                            Script()])
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP("127.0.0.1", peer.port, timeout=10)
    assert e.value.smtp_code == 421
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        assert s.noop()[0] == 250
    sessions = peer.wait_sessions(2)
    assert sessions[0].commands == [] and "closed by script" in sessions[0].close_reason
    peer.set_script(Script(banner="554 5.3.2 go away"))
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP("127.0.0.1", peer.port, timeout=10)
    assert e.value.smtp_code == 554


def test_fault_peer_delays_its_banner(make_fault_peer):
    peer = make_fault_peer(Script(banner_delay=1.5))
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
        smtplib.SMTP("127.0.0.1", peer.port, timeout=0.3)
    assert time.monotonic() - t0 < 1.2


def test_fault_peer_offers_the_scripted_capabilities(make_fault_peer):
    peer = make_fault_peer(Script(ehlo=["SIZE 1000", "8BITMIME", "AUTH CRAM-MD5 PLAIN"]))
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        code, text = s.ehlo("client.test.example")
        assert code == 250
        assert sorted(s.esmtp_features) == ["8bitmime", "auth", "size"]
        assert s.esmtp_features["size"] == "1000"
        assert s.esmtp_features["auth"].split() == ["CRAM-MD5", "PLAIN"]
    no_ehlo = make_fault_peer(Script(ehlo="502 5.5.2 Error: command not recognized"))
    with smtplib.SMTP("127.0.0.1", no_ehlo.port, timeout=10,
                      local_hostname="client.test.example") as s:
        s.sendmail(SENDER, ["b@ext.example"], b"Subject: helo\r\n\r\nx\r\n")   # falls back to HELO
    assert no_ehlo.wait_for(timeout=5).session.commands[:2] == [
        "ehlo client.test.example", "helo client.test.example"]


def test_fault_peer_answers_each_recipient_as_scripted(make_fault_peer):
    peer = make_fault_peer(Script(rcpts={
        "later@ext.example": "451 4.3.0 try again later",
        "full@ext.example": "452 4.2.2 mailbox full",
        "nobody@ext.example": "550 5.1.1 no such user"}))
    rcpts = ["ok@ext.example", "later@ext.example", "full@ext.example", "nobody@ext.example"]
    content, _ = make_message()
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        refused = s.sendmail(SENDER, rcpts, content)
    assert {r: c for r, (c, _) in refused.items()} == {
        "later@ext.example": 451, "full@ext.example": 452, "nobody@ext.example": 550}
    got = peer.wait_for(rcpt="ok@ext.example", timeout=5)
    assert got.rcpt_tos == ["ok@ext.example"] and got.data == content
    assert got.refused_rcpts["nobody@ext.example"] == "550 5.1.1 no such user"
    # per occurrence: the second RCPT of a transaction gets the second reply
    seq = make_fault_peer(Script(rcpt=["250 2.1.5 Ok", "452 4.5.3 Too many recipients"]))
    with smtplib.SMTP("127.0.0.1", seq.port, timeout=10) as s:
        refused = s.sendmail(SENDER, ["a@ext.example", "b@ext.example", "c@ext.example"], content)
    assert sorted(refused) == ["b@ext.example", "c@ext.example"]


def test_fault_peer_552_at_the_end_of_data(make_fault_peer):
    peer = make_fault_peer(Script(data_end="552 5.3.4 Message size exceeds fixed limit"))
    content, _ = make_message()
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(SENDER, ["b@ext.example"], content)
    assert e.value.smtp_code == 552
    session = peer.wait_sessions(1)[0]
    assert peer.messages == []
    [m] = session.messages
    assert m.complete and not m.accepted and m.data == content
    assert m.reply == "552 5.3.4 Message size exceeds fixed limit"


def test_fault_peer_drops_the_connection_after_n_bytes_of_data(make_fault_peer):
    peer = make_fault_peer(Script(drop_after_data_bytes=100))
    content, _ = make_message(body_lines=["y" * 70] * 20)
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
            s.sendmail(SENDER, ["b@ext.example"], content)
    session = peer.wait_sessions(1)[0]
    [m] = session.messages
    assert len(m.raw_data) == 100 and m.raw_data == content[:100]
    assert not m.complete and peer.messages == []
    assert session.close_reason == "dropped after 100 bytes of DATA"


def test_fault_peer_drops_after_the_final_dot_without_a_reply(make_fault_peer):
    """The unavoidable-duplicate case: the message arrived whole, the client
    never heard so."""
    peer = make_fault_peer(Script(data_end=drop()))
    content, _ = make_message()
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.sendmail(SENDER, ["b@ext.example"], content)
    [m] = peer.wait_sessions(1)[0].messages
    assert m.complete and m.data == content and m.reply is None and not m.accepted


def test_fault_peer_replies_slowly_past_the_client_timeout(make_fault_peer):
    peer = make_fault_peer(Script(mail=slow("250 2.1.0 Ok", 1.0)))
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=0.3) as s:
        s.ehlo("client.test.example")
        t0 = time.monotonic()
        with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
            s.mail(SENDER)
        assert time.monotonic() - t0 < 0.9
    # the same peer, patient client: the reply does come
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        assert s.mail(SENDER)[0] == 250


def test_fault_peer_sends_garbage_replies(make_fault_peer):
    peer = make_fault_peer(Script(rcpt=garbage(b"hello, I am not an SMTP reply\r\n"),
                                  mail=Reply("250-first line\n250 second line")))
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        assert s.mail(SENDER) == (250, b"first line\nsecond line")
        code, text = s.rcpt("b@ext.example")
    assert code == -1, (code, text)       # smtplib's "no valid code"
    session = peer.sessions[0]
    assert b"250-first line\r\n250 second line\r\n" in session.sent
    assert b"250 second line\r\nhello, I am not an SMTP reply\r\n221 " in session.sent


def test_fault_peer_speaks_starttls_and_implicit_tls(make_fault_peer):
    ca = shared_ca()
    tls = server_context(ca.cert_file, ca.key_file)
    peer = make_fault_peer(Script(ehlo=["PIPELINING", "STARTTLS", "AUTH PLAIN"],
                                  starttls_context=tls))
    content, _ = make_message(to="b@ext.example")
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        s.starttls(context=client_context(ca.ca_file))
        s.ehlo("client.test.example")
        assert "starttls" not in s.esmtp_features
        s.login("joe", "secret")
        s.sendmail(SENDER, ["b@ext.example"], content)
    got = peer.wait_for(timeout=5)
    session = got.session
    assert session.tls and got.data == content
    assert b"STARTTLS" in session.cleartext and b"mail from" not in session.cleartext.lower()
    assert b"mail from" in session.received.lower()
    assert not peer.credentials_seen("joe", "secret", cleartext_only=True)
    assert peer.credentials_seen("joe", "secret")
    implicit = make_fault_peer(tls_context=tls)
    with smtplib.SMTP_SSL("localhost", implicit.port, timeout=10,
                          context=client_context(ca.ca_file)) as s:
        s.sendmail(SENDER, ["c@ext.example"], content)
    assert implicit.wait_for(rcpt="c@ext.example", timeout=5).session.tls


def test_fault_peer_scripts_auth_exchanges(make_fault_peer):
    peer = make_fault_peer(Script(ehlo=["AUTH CRAM-MD5"],
                                  auth=["334 PDEyMzQ1QHBlZXIudGVzdC5leGFtcGxlPg==",
                                        "535 5.7.8 Error: authentication failed"]))
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("joe", "secret")
    assert e.value.smtp_code == 535
    assert peer.sessions[0].auth_lines[0] == "AUTH CRAM-MD5"
    assert len(peer.sessions[0].auth_lines) == 2


def test_recording_peer_tells_whether_a_client_tried_auth(make_fault_peer):
    peer = make_fault_peer(recording=True)
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        assert not s.has_extn("starttls") and not s.has_extn("auth")
        s.sendmail(SENDER, ["b@ext.example"], b"Subject: x\r\n\r\nx\r\n")
    peer.wait_sessions(1)
    assert not peer.auth_attempted
    assert not peer.credentials_seen("joe", "secret")
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        s.ehlo("client.test.example")
        plain = base64.b64encode(b"\0joe\0secret").decode()
        assert s.docmd("AUTH", "PLAIN " + plain)[0] == 503
    peer.wait_sessions(2)
    assert peer.auth_attempted and peer.sessions[1].auth_attempted
    assert peer.credentials_seen("joe", "secret", cleartext_only=True)
