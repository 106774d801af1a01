"""A real gateway for the forwarding tests: a private Postfix whose SASL is a
private Dovecot auth service, with certificates from a CA the tests make,
relaying only for authenticated clients, onward to a capture in the test
process.

    from gateway import make_gateway          # a pytest fixture (factory)

    def test_something(make_gateway, relay):
        gw = make_gateway(mechs="PLAIN SCRAM-SHA-256", users={"joe@isp.example": "secret"})
        relay.extra = gw.route(user="joe@isp.example")  # "[route gw]" for mailredir.conf
        relay.start()
        qid, content = relay.submit(rcpts=["bob@ext.example"])
        got = gw.wait_for_message(rcpt="bob@ext.example", timeout=30)
        assert got.mail_from == "joe@isp.example"     # envelope-from defaults to user
        assert got.auth_mech == "SCRAM-SHA-256"       # Postfix's sasl_method=
        assert got.original.endswith(content)         # below the Received: lines

    got.data is every byte Postfix sent on (its Received: line first);
    got.original is that without Postfix's Received:.  The maillog names the
    mechanism only for a session that got as far as MAIL (the "client=" line).

Pieces (usable alone):
  TestCA      a CA (and an untrusted second one) and server certificates, with
              the openssl command
  Dovecot     `dovecot -F -c FILE`: passwd-file users ({PLAIN}, so that every
              mechanism works), auth_mechanisms as asked, the auth socket for
              Postfix; protocols/listeners for the POP3/IMAP tests to come
  Postfix     `postfix -c DIR start`: a STARTTLS port, an implicit-TLS port
              and a port without TLS; maillog_file for `sasl_method=`
  Capture     the SMTP sink behind Postfix (a fault_peer.FaultPeer)
  Gateway     all of the above, started together; make_gateway / gateway fixtures

Everything lives in a fresh 0755 directory under /tmp (the daemons run as
postfix, dovecot and dovenull and must reach their files, which pytest's 0700
tmp_path forbids); ports are random free loopback ports; every process is
stopped by PID at teardown, even when the test failed, and the directory is
then removed.  Nothing of the system's Postfix or Dovecot is touched:
/etc/postfix serves only as the read-only meta_directory.
"""

import atexit
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import config_lines
from fault_peer import FaultPeer, Script

GATEWAY_NAME = "gateway.test.example"
DOVECOT_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _run(cmd, timeout=30, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n"
                           f"{p.stdout.decode(errors='replace')}")
    return p


def _pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def group_members(pgid):
    """Live (not zombie) processes of process group pgid.  Zombies do not
    count: here PID 1 reaps orphans seconds late."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(name))
    return pids


def _finish_group(pgid, timeout):
    """Wait until process group pgid (which we started) has no live
    member; SIGKILL those left after timeout, by PID.  True when none was
    left to kill."""
    deadline = time.monotonic() + timeout
    while True:
        left = group_members(pgid)
        if not left:
            return True
        if time.monotonic() > deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
            return False
        time.sleep(0.02)


def _wait_port(port, timeout, proc_alive=lambda: True, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            pass
        if time.monotonic() > deadline or not proc_alive():
            return False
        time.sleep(0.02)


def public_tempdir(prefix):
    """A 0755 directory under /tmp that the daemons' users can traverse."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def fingerprint(cert_file):
    """The SHA-256 fingerprint of a PEM certificate as "sha256:AB:CD:..."."""
    with open(cert_file) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    h = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(h[i:i + 2] for i in range(0, len(h), 2))


# --- certificates ---------------------------------------------------------------

class TestCA:
    """A test CA with the openssl command, in dir:

    ca_file              the CA certificate (PEM) to trust
    cert_file, key_file  a server certificate for "localhost" and 127.0.0.1
    untrusted_ca_file    a second CA that nobody trusts; untrusted_cert_file /
                         untrusted_key_file: a localhost certificate it signed
    issue(cn, sans)      more server certificates (also from the other CA)
    fingerprint(cert)    "sha256:AB:..." for tls-fingerprint
    """

    __test__ = False     # not a test class for pytest

    def __init__(self, dir, key_type="ec"):
        self.dir = dir
        self.key_type = key_type
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o755)
        self._serial = int(time.time()) * 1000
        self.ca_file, self.ca_key = self._make_ca("ca", "mailredir test CA")
        self.untrusted_ca_file, self.untrusted_ca_key = self._make_ca(
            "untrusted-ca", "mailredir untrusted test CA")
        self.cert_file, self.key_file = self.issue("localhost", name="server")
        self.untrusted_cert_file, self.untrusted_key_file = self.issue(
            "localhost", name="untrusted-server", untrusted=True)

    def _key_args(self):
        if self.key_type == "rsa":
            return ["-newkey", "rsa:2048"]
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]

    def _make_ca(self, name, cn):
        cert, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        _run(["openssl", "req", "-x509", "-nodes", *self._key_args(), "-keyout", key,
              "-out", cert, "-days", "30", "-subj", f"/O=mailredir tests/CN={cn}",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-addext", "subjectKeyIdentifier=hash"])
        os.chmod(key, 0o600)
        return cert, key

    def issue(self, cn="localhost", sans=None, name=None, untrusted=False, days=30):
        """A server certificate signed by the CA (or the untrusted one).
        sans default: DNS:cn, plus DNS:localhost and IP:127.0.0.1 when cn is
        "localhost".  Returns (cert_file, key_file)."""
        name = name or re.sub(r"[^A-Za-z0-9.-]", "_", cn)
        if sans is None:
            sans = [f"DNS:{cn}"] + (["IP:127.0.0.1"] if cn == "localhost" else [])
        cert, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        csr, ext = os.path.join(self.dir, name + ".csr"), os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n"
                    "authorityKeyIdentifier = keyid\n"
                    f"subjectAltName = {','.join(sans)}\n")
        _run(["openssl", "req", "-new", "-nodes", *self._key_args(), "-keyout", key,
              "-out", csr, "-subj", f"/O=mailredir tests/CN={cn}"])
        os.chmod(key, 0o600)
        ca, ca_key = ((self.untrusted_ca_file, self.untrusted_ca_key) if untrusted
                      else (self.ca_file, self.ca_key))
        self._serial += 1
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
              "-set_serial", str(self._serial), "-days", str(days), "-sha256",
              "-extfile", ext, "-out", cert])
        return cert, key

    fingerprint = staticmethod(fingerprint)


_CA = None
_QUEUE_TEMPLATE = None


def shared_ca():
    """One TestCA per test process (certificates cost ~50 ms each)."""
    global _CA
    if _CA is None:
        d = public_tempdir("mailredir-ca-")
        atexit.register(shutil.rmtree, d, True)
        _CA = TestCA(d)
    return _CA


# --- Dovecot ----------------------------------------------------------------------

class Dovecot:
    """A private Dovecot: `dovecot -F -c DIR/dovecot.conf`, stopped by PID.

    users       {"joe": "secret"}: a passwd-file with {PLAIN} passwords, so
                that every mechanism (CRAM-MD5, DIGEST-MD5, SCRAM-*) works
    mechs       auth_mechanisms, e.g. "PLAIN SCRAM-SHA-256"
    auth_socket a path for an extra auth listener (mode 0666): Postfix's
                smtpd_sasl_path, inside its queue directory
    plaintext_auth  PLAIN/LOGIN allowed without TLS (disable_plaintext_auth = no)
    auth_penalty    False: no growing delay after failed logins (the default)
    protocols   () for an auth-only instance; ("pop3", "imap") to serve them,
    listeners   {"pop3": port, "pop3s": port, "imap": ..., "imaps": ...}
                (0 = a free port; the ports chosen are in .ports, also as
                .pop3_port, .pop3s_port, .imap_port, .imaps_port); TLS
                listeners need ca (a TestCA).  With protocols and a ca, ssl
                is on: pop3 offers STLS, imap STARTTLS (implicit TLS only on
                the "s" listeners).  mechs "APOP" adds the APOP timestamp to
                the POP3 greeting.  Mail: an empty maildir per user
                (STAT says "+OK 0 0").
    listen      the address of the listeners (default 127.0.0.1).  Dovecot
                counts a connection whose remote IP equals its local IP as
                "secured" (plaintext auth allowed despite
                disable_plaintext_auth = yes): serve on 127.0.0.2, which a
                client reaches from 127.0.0.1, to look like a remote server
    cert        (cert_file, key_file) instead of the CA's localhost one
    settings    top-level settings (dict) that override the ones above,
                e.g. {"auth_mechanisms": "plain", "disable_plaintext_auth": "yes"}

    logins(protocol, user)   the "Login:" lines of the log, parsed
    login_failures(...)      the "auth failed" disconnections, parsed
    """

    def __init__(self, dir, users=None, mechs=DOVECOT_MECHS, auth_socket=None,
                 protocols=(), listeners=None, ca=None, plaintext_auth=True,
                 auth_penalty=False, auth_debug=False, settings=None, extra="",
                 listen="127.0.0.1", cert=None):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o755)
        self.users = dict(users or {"joe": "secret"})
        self.mechs = mechs.split() if isinstance(mechs, str) else list(mechs)
        self.auth_socket = auth_socket
        self.protocols = list(protocols)
        self.ports = {}
        for name, port in (listeners or {}).items():
            self.ports[name] = port or _free_port()
        self.ca = ca
        self.cert = cert
        self.listen = listen
        self.plaintext_auth = plaintext_auth
        self.auth_penalty = auth_penalty
        self.auth_debug = auth_debug
        self.settings = dict(settings or {})
        self.extra = extra
        self.conf = os.path.join(dir, "dovecot.conf")
        self.base_dir = os.path.join(dir, "run")
        self.state_dir = os.path.join(dir, "state")
        self.log_file = os.path.join(dir, "dovecot.log")
        self.passwd_file = os.path.join(dir, "passwd")
        self.proc = None

    def config_text(self):
        internal = "dovecot"
        login = "dovenull"
        top = {
            "base_dir": self.base_dir,
            "state_dir": self.state_dir,
            # the instance name shows in ps and keeps instances apart
            "instance_name": f"mailredir-test-{os.getpid()}-{id(self):x}",
            "log_path": self.log_file,
            "protocols": " ".join(self.protocols) if self.protocols else "none",
            "listen": self.listen,
            "default_internal_user": internal,
            "default_login_user": login,
            "auth_mechanisms": " ".join(m.lower() for m in self.mechs),
            "disable_plaintext_auth": "no" if self.plaintext_auth else "yes",
            "auth_verbose": "yes",
            "auth_debug": "yes" if self.auth_debug else "no",
            "auth_failure_delay": "0",
            "shutdown_clients": "yes",
            "version_ignore": "yes",
        }
        tls_listeners = [n for n in self.ports if n.endswith("s")]
        if (tls_listeners or self.settings.get("ssl") in ("yes", "required")
                or (self.protocols and (self.ca or self.cert))):
            if not (self.ca or self.cert):
                raise ValueError("TLS listeners need ca=TestCA")
            cert, key = self.cert or (self.ca.cert_file, self.ca.key_file)
            top.update({"ssl": "yes", "ssl_cert": f"<{cert}",
                        "ssl_key": f"<{key}", "ssl_min_protocol": "TLSv1.2"})
        else:
            top["ssl"] = "no"
        if self.protocols:
            top.update({"mail_location": f"maildir:{self.dir}/mail/%u",
                        "mail_privileged_group": "", "first_valid_uid": "1",
                        # a login process that starts while the master stops
                        # would wait 5 s for the stats process (gone by then)
                        # to answer its handshake, and the master for it
                        "stats_writer_socket_path": ""})
        top.update(self.settings)      # the caller's settings win
        lines = ["# written by tests/integration/gateway.py"]
        lines += [f"{k} = {v}".rstrip() for k, v in top.items()]
        # users: {PLAIN} so that every mechanism can work; the userdb gives the
        # uid mail would be read as (POP3/IMAP tests)
        uid = pwd.getpwnam(internal)
        lines += [
            "passdb {", "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {self.passwd_file}", "}",
            "userdb {", "  driver = static",
            f"  args = uid={uid.pw_uid} gid={uid.pw_gid} home={self.dir}/home/%u", "}",
        ]
        if not self.auth_penalty:
            # Dovecot delays the next login from an address that failed one
            # (2 s, 4 s, ... up to 15 s); without this socket it cannot
            lines += ["service anvil {", "  unix_listener anvil-auth-penalty {", "    mode = 0",
                      "  }", "}"]
        lines.append("service auth {")
        if self.auth_socket:
            lines += [f"  unix_listener {self.auth_socket} {{", "    mode = 0666", "  }"]
        lines.append("}")
        for proto in ("pop3", "imap"):
            names = [n for n in self.ports if n in (proto, proto + "s")]
            if proto not in self.protocols:
                continue
            lines.append(f"service {proto}-login {{")
            for default in (proto, proto + "s"):
                # both default listeners are redefined: left alone they would
                # bind 110/995 or 143/993; port 0 turns one off
                port = self.ports.get(default, 0)
                lines += [f"  inet_listener {default} {{", f"    address = {self.listen}",
                          f"    port = {port}"]
                if default.endswith("s") and default in names:
                    lines.append("    ssl = yes")
                lines.append("  }")
            lines.append("}")
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"

    def write(self):
        for d in (self.base_dir, self.state_dir):
            os.makedirs(d, exist_ok=True)
        with open(self.passwd_file, "w") as f:
            for user, password in self.users.items():
                if any(c in user + password for c in ":\n") or not user:
                    raise ValueError(f"passwd-file cannot hold {user!r}/{password!r}")
                f.write(f"{user}:{{PLAIN}}{password}::::::\n")
        # the auth process runs as the internal user and reads the passwd-file
        internal = pwd.getpwnam("dovecot")
        os.chown(self.passwd_file, 0, internal.pw_gid)
        os.chmod(self.passwd_file, 0o640)
        if self.protocols:
            # mail and homes belong to the userdb's uid (the internal user)
            for d in ("mail", "home"):
                os.makedirs(os.path.join(self.dir, d), exist_ok=True)
                os.chown(os.path.join(self.dir, d), internal.pw_uid, internal.pw_gid)
        with open(self.conf, "w") as f:
            f.write(self.config_text())

    def start(self, timeout=START_TIMEOUT):
        self.write()
        self._log_fh = open(os.path.join(self.dir, "dovecot.stderr"), "wb")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until the auth sockets (and listeners) answer."""
        deadline = time.monotonic() + timeout
        want = [os.path.join(self.base_dir, "auth-client")]
        if self.auth_socket:
            want.append(self.auth_socket)
        for path in want:
            while not self._unix_answers(path):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dovecot exited {self.proc.returncode}:\n{self.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot not ready after {timeout}s:\n{self.log()}")
                time.sleep(0.02)
        for name, port in self.ports.items():
            # a greeting, not just a connection: a login process is spawned
            # per connection, and one still starting (auth handshake) when
            # the master is told to stop keeps it waiting for 5 s
            while not self._greets(port, name.endswith("s")):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot {name} port {port} not ready:\n{self.log()}")
                time.sleep(0.02)

    def _greets(self, port, tls):
        """Does the listener on port send its greeting ("+OK ..."/"* OK ...")?"""
        s = None
        try:
            s = socket.create_connection((self.listen, port), timeout=2)
            if tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(s)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(1024)
                if not chunk:
                    return False
                data += chunk
            return data.startswith((b"+OK", b"* OK"))
        except (OSError, ssl.SSLError):
            return False
        finally:
            if s is not None:
                s.close()

    @staticmethod
    def _unix_answers(path):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(path)
                return True
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    pop3_port = property(lambda self: self.ports.get("pop3"))
    pop3s_port = property(lambda self: self.ports.get("pop3s"))
    imap_port = property(lambda self: self.ports.get("imap"))
    imaps_port = property(lambda self: self.ports.get("imaps"))

    def logins(self, protocol=None, user=None):
        """The successful logins in the log, in order: dicts with protocol
        ("pop3"/"imap"), user, method ("PLAIN", "APOP", ...), rip, lip,
        tls (True for "TLS", False for "secured"/nothing) and line.  The line
        is e.g. "pop3-login: Info: Login: user=<joe>, method=PLAIN,
        rip=127.0.0.1, lip=127.0.0.2, mpid=123, TLS, session=<...>"."""
        return [e for e in map(parse_login_line, self.log().splitlines())
                if e and e["ok"] and (protocol is None or e["protocol"] == protocol)
                and (user is None or e["user"] == user)]

    def login_failures(self, protocol=None, user=None):
        """The logins that failed, as logins() gives them: "Disconnected:
        ... (auth failed, 1 attempts in 0 secs): user=<joe>, method=PLAIN, ..."
        "Login failed: Plaintext authentication disabled: user=<...>" and
        "Disconnected: ... (tried to use disallowed plaintext auth): ..."."""
        return [e for e in map(parse_login_line, self.log().splitlines())
                if e and not e["ok"] and (protocol is None or e["protocol"] == protocol)
                and (user is None or e["user"] == user)]

    def log(self):
        out = []
        for name in ("dovecot.stderr", "dovecot.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out.append(f.read())
        return "".join(out)

    def begin_stop(self):
        """SIGTERM to the master; it stops its children."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM to the master (by PID), wait for it and its children (its
        own session: start_new_session), SIGKILL what is left.  Returns True
        when the master went on SIGTERM."""
        if self.proc is None:
            return True
        self.begin_stop()
        quiet = True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            quiet = False
            self.proc.kill()
            self.proc.wait()
        # a login process whose client is still connected may outlive the
        # master a little: not the master's fault, killed all the same
        _finish_group(self.proc.pid, 2)
        self._log_fh.close()
        self.proc = None
        return quiet


_LOGIN_RE = re.compile(r"\b(pop3|imap)-login: Info: (?:(Login): |Login failed: .*?: "
                       r"|.*\b(?:auth failed|tried to use disallowed plaintext auth)\b.*?: )"
                       r"user=<([^>]*)>(.*)$")


def parse_login_line(line):
    """A Dovecot login-process log line as a dict (see Dovecot.logins), or
    None when it is neither a successful login nor an auth failure."""
    m = _LOGIN_RE.search(line)
    if not m:
        return None
    rest = m.group(4)
    fields = dict(kv.split("=", 1) for kv in rest.split(", ") if "=" in kv)
    flags = [f for f in rest.split(", ") if f and "=" not in f]
    return {"protocol": m.group(1), "ok": m.group(2) == "Login", "user": m.group(3),
            "method": fields.get("method"), "rip": fields.get("rip"), "lip": fields.get("lip"),
            "tls": "TLS" in flags, "line": line}


# --- the capture ------------------------------------------------------------------

class CapturedMessage:
    """What Postfix delivered onward: envelope and exact bytes."""

    def __init__(self, m, gateway=None):
        self.mail_from = m.mail_from
        self.rcpt_tos = list(m.rcpt_tos)
        self.mail_params = m.mail_params
        self.data = m.data
        self.peer_message = m
        self._gateway = gateway
        self._log_info = None

    def _header_end(self):
        i = self.data.find(b"\r\n\r\n")
        return len(self.data) if i < 0 else i + 2

    @property
    def received(self):
        """Postfix's Received: header (the first one), unfolded."""
        m = re.match(rb"Received: (?:[^\r]|\r\n[ \t])*\r\n", self.data)
        return re.sub(rb"\r\n[ \t]+", b" ", m.group(0)).decode(errors="replace").strip() if m else None

    @property
    def original(self):
        """The bytes as they came into Postfix: data without the Received:
        header Postfix put first."""
        m = re.match(rb"Received: (?:[^\r]|\r\n[ \t])*\r\n", self.data)
        return self.data[m.end():] if m else self.data

    @property
    def postfix_id(self):
        """Postfix's queue id, from its Received: header."""
        m = re.search(r"\bid ([0-9A-Za-z]+)\b", self.received or "")
        return m.group(1) if m else None

    def _info(self):
        if self._log_info is None and self._gateway is not None:
            self._log_info = self._gateway.postfix.client_line(self.postfix_id)
        return self._log_info or {}

    @property
    def auth_mech(self):
        """The SASL mechanism of the session that submitted it (maillog)."""
        return self._info().get("sasl_method")

    @property
    def sasl_username(self):
        return self._info().get("sasl_username")

    @property
    def tls(self):
        """Did the submitting client use TLS (Postfix's Received: says so)?"""
        return bool(self.received and "using TLS" in self.received)

    def __repr__(self):
        return (f"CapturedMessage(from={self.mail_from!r}, to={self.rcpt_tos!r}, "
                f"{len(self.data)} bytes, postfix_id={self.postfix_id})")


class Capture:
    """The SMTP sink Postfix relays to: records envelope and DATA bytes."""

    def __init__(self, gateway=None):
        self.peer = FaultPeer(Script(banner="220 capture.test.example ESMTP capture"),
                              name="capture")
        self._gateway = gateway

    @property
    def port(self):
        return self.peer.port

    def start(self):
        self.peer.start()
        return self

    def stop(self):
        self.peer.stop()

    @property
    def messages(self):
        return [CapturedMessage(m, self._gateway) for m in list(self.peer.messages)]

    def wait_for(self, rcpt=None, timeout=30.0, n=1):
        """The first message (n > 1: list of messages) delivered for rcpt."""
        got = self.peer.wait_for(rcpt=rcpt, timeout=timeout, n=n)
        if n == 1:
            return CapturedMessage(got, self._gateway)
        return [CapturedMessage(m, self._gateway) for m in got]


# --- Postfix ----------------------------------------------------------------------

MASTER_CF = """\
# written by tests/integration/gateway.py: no chroot anywhere
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=may
127.0.0.1:{smtps_port} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
127.0.0.1:{plain_port} inet n - n - - smtpd
  -o syslog_name=postfix/plain
  -o smtpd_tls_security_level=none
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix: `postfix -c DIR/etc start`, its own queue and data
    directories, three smtpd ports on 127.0.0.1:

    submission_port  STARTTLS offered (smtpd_tls_security_level = may)
    smtps_port       implicit TLS (smtpd_tls_wrappermode = yes)
    plain_port       no TLS at all (AUTH still offered unless tls_auth_only)

    SASL through dovecot (smtpd_sasl_type = dovecot, private/auth in the
    queue directory), relaying only for authenticated clients (mynetworks
    is 192.0.2.0/24, not loopback), everything relayed to relayhost
    [127.0.0.1]:capture_port, the log in DIR/maillog.
    main: extra main.cf settings (dict), e.g. {"smtpd_tls_auth_only": "yes"}.
    sasl=False: no AUTH at all (smtpd_sasl_auth_enable = no) and relaying
    only by smtpd_relay_restrictions = relay_restrictions (default
    "reject_unauth_destination": nobody), e.g. "check_policy_service
    inet:127.0.0.1:PORT, reject_unauth_destination" (login_rig.py).
    """

    def __init__(self, dir, ca, capture_port, main=None, tls_auth_only=False,
                 message_size_limit=10240000, cert=None, sasl=True, relay_restrictions=None):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o755)
        self.ca = ca
        self.cert = cert or (ca.cert_file, ca.key_file)
        self.capture_port = capture_port
        self.conf_dir = os.path.join(dir, "etc")
        self.queue_dir = os.path.join(dir, "queue")
        self.data_dir = os.path.join(dir, "data")
        self.maillog = os.path.join(dir, "maillog")
        self.auth_socket = os.path.join(self.queue_dir, "private", "auth")
        self.submission_port = _free_port()
        self.smtps_port = _free_port()
        self.plain_port = _free_port()
        self.settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": GATEWAY_NAME,
            "mydomain": "test.example",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "192.0.2.0/24",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": "private/auth",
            "smtpd_sasl_authenticated_header": "yes",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sasl_tls_security_options": "noanonymous",
            "smtpd_tls_auth_only": "yes" if tls_auth_only else "no",
            "smtpd_tls_cert_file": self.cert[0],
            "smtpd_tls_key_file": self.cert[1],
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
            "smtpd_tls_protocols": ">=TLSv1.2",
            "smtpd_peername_lookup": "no",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "smtpd_client_auth_rate_limit": "0",
            "smtpd_banner": "$myhostname ESMTP",
            "message_size_limit": str(message_size_limit),
            "relayhost": f"[127.0.0.1]:{capture_port}",
            "default_transport": "smtp",
            "local_transport": "error:5.1.1 no local delivery on the test gateway",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtp_connect_timeout": "5s",
            "smtp_address_preference": "ipv4",
            "local_header_rewrite_clients": "",
            "always_add_missing_headers": "no",
            "disable_mime_output_conversion": "yes",
            "smtputf8_enable": "yes",
            "biff": "no",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "in_flow_delay": "0",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "postlog_service_name": "postlog",
        }
        if not sasl:
            self.settings["smtpd_sasl_auth_enable"] = "no"
            self.settings["smtpd_relay_restrictions"] = "reject_unauth_destination"
        if relay_restrictions:
            self.settings["smtpd_relay_restrictions"] = relay_restrictions
        self.settings.update(main or {})
        self.master_pid = None

    def write(self):
        os.makedirs(self.conf_dir, exist_ok=True)
        postfix = pwd.getpwnam("postfix")
        # queue_directory belongs to root, its subdirectories (prepare_queue)
        # to postfix; the dovecot auth socket goes into private/ before
        # Postfix starts.
        os.makedirs(self.queue_dir, exist_ok=True)
        os.chmod(self.queue_dir, 0o755)
        os.makedirs(self.data_dir, exist_ok=True)
        os.chown(self.data_dir, postfix.pw_uid, -1)
        os.chmod(self.data_dir, 0o700)
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write("# written by tests/integration/gateway.py\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")
        self._write_master_cf()
        self.prepare_queue()

    def _write_master_cf(self):
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(submission_port=self.submission_port,
                                     smtps_port=self.smtps_port, plain_port=self.plain_port))
        # Postfix does not trust a configuration file changed in the last
        # second or two (it may be half written): every program would sleep
        # 0.3 s at a time until it is old enough.  Date them back.
        past = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.conf_dir, name), (past, past))

    def postconf(self, name):
        """A parameter's value as this instance sees it (postconf -h)."""
        return _run(["postconf", "-c", self.conf_dir, "-h", name]).stdout.decode().strip()

    def postfix(self, *args, timeout=60, check=True):
        return _run(["postfix", "-c", self.conf_dir, *args], timeout=timeout, check=check)

    def prepare_queue(self):
        """The queue directory's subdirectories, owners and modes, as
        `postfix check` makes them.  That check (run by `postfix start`)
        costs a second, so it runs once per test process; later instances
        copy its result and start with $queue_directory/quick-start, which
        tells postfix-script to skip the checks."""
        global _QUEUE_TEMPLATE
        if _QUEUE_TEMPLATE is None:
            self.postfix("check")
            template = public_tempdir("mailredir-postfix-queue-")
            atexit.register(shutil.rmtree, template, True)
            _run(["cp", "-a", self.queue_dir + "/.", template])
            _QUEUE_TEMPLATE = template
        else:
            _run(["cp", "-a", _QUEUE_TEMPLATE + "/.", self.queue_dir])
        open(os.path.join(self.queue_dir, "quick-start"), "w").close()

    def start(self, timeout=START_TIMEOUT):
        """Write the configuration (unless write() was called), then
        `postfix -c DIR start`; returns when every port answers."""
        if not os.path.exists(os.path.join(self.conf_dir, "main.cf")):
            self.write()
        for attempt in range(3):
            mark = len(self.log())
            try:
                self.postfix("start", timeout=timeout)
                break
            except RuntimeError:
                # a free port taken by someone else since: new ports, again
                if attempt == 2 or "Address already in use" not in self.log()[mark:]:
                    raise
                self.submission_port, self.smtps_port, self.plain_port = (
                    _free_port(), _free_port(), _free_port())
                self._write_master_cf()
                open(os.path.join(self.queue_dir, "quick-start"), "w").close()
        pid_file = os.path.join(self.queue_dir, "pid", "master.pid")
        with open(pid_file) as f:
            self.master_pid = int(f.read().split()[0])
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until every smtpd port answers with a banner."""
        deadline = time.monotonic() + timeout
        for port in (self.submission_port, self.plain_port, self.smtps_port):
            if not _wait_port(port, max(0.1, deadline - time.monotonic()),
                              lambda: _pid_alive(self.master_pid)):
                raise RuntimeError(f"postfix port {port} not ready:\n{self.log()}")

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def client_line(self, queue_id, timeout=5.0):
        """{"client": ..., "sasl_method": ..., "sasl_username": ...} from
        smtpd's "QUEUEID: client=..." line (postlogd may lag a little)."""
        if not queue_id:
            return {}
        rx = re.compile(rf"\b{re.escape(queue_id)}: (client=.*)$", re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return dict(kv.split("=", 1) for kv in m.group(1).split(", ") if "=" in kv)
            if time.monotonic() > deadline:
                return {}
            time.sleep(0.05)

    def begin_stop(self):
        """What `postfix -c DIR stop` does: SIGTERM to the master recorded
        in pid/master.pid (it then kills its process group), minus the
        script's one-second polling sleep."""
        if self.master_pid is not None and _pid_alive(self.master_pid):
            os.kill(self.master_pid, signal.SIGTERM)

    def stop(self, timeout=STOP_TIMEOUT):
        """Stop the master by its PID and make sure it and every process of
        its group are gone (SIGKILL by PID for stragglers).  Returns True
        when the master went on SIGTERM."""
        if self.master_pid is None:
            return True
        self.begin_stop()
        quiet = _wait_gone(self.master_pid, timeout)
        # master -w runs in its own session, its pid is the group's id
        _finish_group(self.master_pid, 2)
        self.master_pid = None
        return quiet


# --- the gateway ------------------------------------------------------------------

class Rig:
    """What the rigs (Gateway here, LoginRig in login_rig.py) share: a
    Postfix and a Dovecot (either may be None), a Capture, a directory
    (root, own_root, keep) and how they all stop."""

    def __init__(self, prefix, root, ca, users, keep):
        self.root = root or public_tempdir(prefix)
        self.own_root = root is None
        self.keep = keep
        self.ca = ca or shared_ca()
        self.users = dict(users or {"joe": "secret"})
        self.capture = Capture(self)
        self.dovecot = None
        self.postfix = None
        self._secrets = 0
        self.start_seconds = None

    def start_parts(self):
        raise NotImplementedError

    def start(self):
        """Start the capture, then start_parts(); all is stopped again when
        one part fails."""
        t0 = time.monotonic()
        try:
            self.capture.start()
            self.start_parts()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    @property
    def ca_file(self):
        return self.ca.ca_file

    @property
    def cert_file(self):
        """The certificate Postfix presents."""
        return self.postfix.cert[0]

    @property
    def fingerprint(self):
        """tls-fingerprint of cert_file."""
        return fingerprint(self.cert_file)

    def wait_for_message(self, rcpt=None, timeout=30.0, n=1):
        return self.capture.wait_for(rcpt=rcpt, timeout=timeout, n=n)

    def log(self):
        """Postfix's maillog."""
        return self.postfix.log()

    @property
    def submission_port(self):
        return self.postfix.submission_port      # STARTTLS offered

    @property
    def smtps_port(self):
        return self.postfix.smtps_port           # implicit TLS

    @property
    def plain_port(self):
        return self.postfix.plain_port           # no TLS

    def route(self, user="joe", password=None, port=None, tls=None, auth=None, name="gw",
              host="127.0.0.1", ca_file=True, **extra):
        """The "[route NAME]" section for mailredir.conf (PRODUCT.md §3).

        port     default: the STARTTLS port; "smtps"/"plain"/"submission" or a number
        tls      default: "tls" on the smtps port, "none" on the plain port,
                 else "starttls"; False leaves the key out
        user     None: no credentials; password default: users[user]
                 (written to a 0600 password-file)
        auth     "auto", "SCRAM-SHA-256 PLAIN", ... (None: key left out)
        ca_file  True: the test CA; a path; None/False: key left out
        extra    more keys, '_' becomes '-' (None leaves one out):
                 tls_verify="no", tls_fingerprint=gw.fingerprint, reply_timeout="5s"
        """
        named = {"submission": self.submission_port, "smtps": self.smtps_port,
                 "plain": self.plain_port}
        port = named.get(port, port) if port is not None else self.submission_port
        if tls is None:
            tls = {self.smtps_port: "tls", self.plain_port: "none"}.get(port, "starttls")
        lines = [f"[route {name}]", f"smarthost = {host}:{port}"]
        if tls:
            lines.append(f"tls = {tls}")
        if ca_file:
            lines.append(f"tls-ca-file = {self.ca_file if ca_file is True else ca_file}")
        if user is not None:
            if password is None:
                password = self.users[user]
            lines.append(f"user = {user}")
            lines.append(f"password-file = {self.secret_file(password)}")
        if auth:
            lines.append(f"auth = {auth}")
        lines += config_lines(extra)
        return "\n".join(lines) + "\n"

    def secret_file(self, password):
        """A 0600 file holding password (no newline), for password-file."""
        self._secrets += 1
        path = os.path.join(self.root, f"secret-{self._secrets}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        return path

    def begin_stop(self):
        """SIGTERM to both masters, without waiting: Dovecot's master sleeps
        a second on its way out, so rigs are best stopped together."""
        for daemon in (self.postfix, self.dovecot):
            if daemon is not None:
                daemon.begin_stop()

    def stop_more(self):
        """Stop what a rig has beside the daemons and the capture."""

    def stop(self):
        """Stop everything by PID; returns a list of problems (empty: clean)."""
        problems = []
        self.begin_stop()
        if self.postfix is not None and not self.postfix.stop():
            problems.append("postfix did not stop on SIGTERM")
        if self.dovecot is not None and not self.dovecot.stop():
            problems.append("dovecot did not stop on SIGTERM")
        self.stop_more()
        self.capture.stop()
        return problems

    def remove(self):
        if self.own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.remove()


class Gateway(Rig):
    """Capture + Dovecot + Postfix, started together (see the module docstring).

    mechs       the SASL mechanisms Dovecot offers (str or list)
    users       {"joe": "secret"}
    tls_auth_only  smtpd_tls_auth_only (AUTH only after STARTTLS)
    main        extra Postfix main.cf settings, e.g. {"message_size_limit": "20000"}
    cert        (cert_file, key_file) the gateway presents instead of the
                test CA's localhost certificate, e.g. ca.issue("wrong.example")
                or (ca.untrusted_cert_file, ca.untrusted_key_file)
    dovecot_settings  extra dovecot.conf settings
    keep        leave the directory in /tmp after stop (debugging)
    """

    def __init__(self, root=None, mechs=DOVECOT_MECHS, users=None, tls_auth_only=False,
                 main=None, ca=None, cert=None, dovecot_settings=None, keep=False):
        super().__init__("mailredir-gw-", root, ca, users, keep)
        self._mechs = mechs
        self._tls_auth_only = tls_auth_only
        self._main = main
        self._cert = cert
        self._dovecot_settings = dovecot_settings

    def start_parts(self):
        """Start the daemons (the capture runs already)."""
        self.postfix = Postfix(os.path.join(self.root, "postfix"), self.ca, self.capture.port,
                               main=self._main, tls_auth_only=self._tls_auth_only,
                               cert=self._cert)
        self.postfix.write()
        self.dovecot = Dovecot(os.path.join(self.root, "dovecot"), users=self.users,
                               mechs=self._mechs, auth_socket=self.postfix.auth_socket,
                               settings=self._dovecot_settings)
        self.dovecot.start()
        self.postfix.start()

    # what happened --------------------------------------------------------------

    def sasl_method_for(self, what):
        """The sasl_method= Postfix logged for a CapturedMessage or a Postfix
        queue id."""
        qid = what.postfix_id if isinstance(what, CapturedMessage) else what
        return self.postfix.client_line(qid).get("sasl_method")

    def sasl_methods(self):
        """Every sasl_method= in the maillog, in order."""
        return re.findall(r"\bsasl_method=([A-Z0-9-]+)", self.log())

    def auth_failures(self):
        """[(mechanism, text)] of Postfix's "SASL X authentication failed"."""
        return re.findall(r"SASL ([A-Z0-9-]+) authentication failed: (.*)$", self.log(), re.M)

def started_rigs(cls, dump=None):
    """The body of a factory fixture: yields make(**kw) -> cls(**kw).start();
    after the test every rig made is stopped by PID (all begin to stop
    first), its logs printed (its postfix and dovecot, then dump(rig)) and
    its directory removed; a rig that would not stop fails the test."""
    rigs = []

    def make(**kw):
        rig = cls(**kw)
        rigs.append(rig)
        return rig.start()

    yield make
    problems = []
    for rig in rigs:
        rig.begin_stop()
    for rig in rigs:
        problems += [f"{rig.root}: {p}" for p in rig.stop()]
        if dump is not None:
            dump(rig)
        if rig.postfix is not None:
            print(f"--- maillog of {rig.root}\n{rig.log()[-20000:]}")
        if rig.dovecot is not None:
            print(f"--- dovecot log of {rig.root}\n{rig.dovecot.log()[-5000:]}")
        rig.remove()
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def make_gateway():
    """Factory: make_gateway(mechs=..., users=..., tls_auth_only=..., main=...)
    -> a started Gateway; all stopped by PID after the test (a failure if one
    would not stop), their logs printed, their directories removed."""
    yield from started_rigs(Gateway)


@pytest.fixture(scope="module")
def module_gateway():
    """One default Gateway shared by the tests of a module (they must use
    recipients of their own); stopped by PID after the module."""
    gw = Gateway()
    try:
        gw.start()
        yield gw
    finally:
        problems = gw.stop()
        gw.remove()
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def gateway(make_gateway):
    """A started Gateway with every mechanism Dovecot has and joe/secret."""
    return make_gateway()
