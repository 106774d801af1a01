"""The rig of the POP-before-SMTP / IMAP-before-SMTP tests (issue 5): a gateway
that relays only for a client address that logged in to the ISP's POP3/IMAP
server a little while ago, exactly like an ISP running poprelayd.

    from login_rig import make_login_rig      # a pytest fixture (factory)

    def test_something(make_login_rig, relay):
        rig = make_login_rig(lag=3, valid=60)
        relay.extra = rig.route_keys("pop3", login_delay="4s")
        relay.start()
        qid, content = relay.submit(rcpts=["bob@ext.example"])
        got = rig.wait_for_message(rcpt="bob@ext.example", timeout=30)
        assert len(rig.logins_seen("pop3")) == 1
        assert rig.relay_refusals() == []

Pieces (login_rig.py and gateway.py):
  Dovecot       POP3 and IMAP on 127.0.0.2 (pop3 with STLS, pop3s, imap with
                STARTTLS, imaps), passwd-file users ({PLAIN}: APOP, CRAM-MD5
                and SCRAM work), an empty maildir, its log in dovecot.log
  Postfix       no SASL at all; smtpd_relay_restrictions =
                check_policy_service inet:127.0.0.1:PORT, reject_unauth_destination
                so that a client the policy does not know gets
                "554 5.7.1 <rcpt>: Relay access denied" at RCPT
  PolicyServer  the Postfix policy delegation protocol (SMTPD_POLICY_README),
                in a thread of the test process: "action=OK" for an address
                poprelayd allows now, else "action=DUNNO"
  Poprelayd     tails dovecot.log; a successful pop3/imap "Login:" from rip=A
                lets A relay from (seen + lag) until (seen + lag + valid)
  Capture       the SMTP sink behind Postfix (gateway.Capture)
  LoginRig      all of them, started together; make_login_rig / login_rig

Why a policy service and not an access map: texthash: maps are read when an
smtpd starts, so a change would wait for a new smtpd process (or a reload);
hash: maps need postmap and smtpd notices a change only after the session.  A
policy service is asked afresh at every RCPT, sees client_address, needs no
file nor reload, and lets the rig record every decision with its time.  (A
tcp: table would do the first three as well, but Postfix calls it
experimental and it is not what an ISP would run.)

Why 127.0.0.2: Dovecot counts a connection whose remote IP equals its local
IP as "secured" and then allows USER/PASS and LOGIN on cleartext despite
disable_plaintext_auth = yes.  Dovecot listens on 127.0.0.2; a client
connecting there comes from 127.0.0.1 (the loopback route's source address),
so Dovecot behaves as a remote ISP would, and the login's rip=127.0.0.1 is
the address mailredir's SMTP connection to Postfix on 127.0.0.1 comes from.
Both daemons present one certificate (DNS:localhost, IP:127.0.0.1,
IP:127.0.0.2) from the test CA, so one tls-fingerprint pins both.

Each rig has one client address that matters (127.0.0.1): run one scenario at
a time per rig, or reset() between scenarios.
"""

import os
import re
import threading
import time

import pytest

from gateway import Dovecot, Postfix, Rig, parse_login_line, started_rigs
from tcp_server import ThreadedServer

POP_HOST = "127.0.0.2"          # where Dovecot listens (see the module docstring)
SMTP_HOST = "127.0.0.1"         # where Postfix listens
CLIENT_ADDRESS = "127.0.0.1"    # where every client comes from
LOGIN_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "APOP")
LOGIN_PROTOCOLS = ("pop3", "imap")
RELAY_DENIED = "554 5.7.1 <{rcpt}>: Relay access denied"

_RIG_CERTS = {}


def rig_cert(ca):
    """(cert_file, key_file) for localhost, 127.0.0.1 and 127.0.0.2, one per CA."""
    if ca.dir not in _RIG_CERTS:
        _RIG_CERTS[ca.dir] = ca.issue("localhost", name="login-rig",
                                      sans=["DNS:localhost", f"IP:{SMTP_HOST}", f"IP:{POP_HOST}"])
    return _RIG_CERTS[ca.dir]


class Event:
    """Something poprelayd did: kind "login", "allow" or "expire".

    time     time.monotonic() of it (for "allow"/"expire": the scheduled
             instant, login time + lag, + valid)
    wall     the same as time.time()
    address  the client address (the login's rip)
    login    for "login": the parsed Dovecot line (gateway.parse_login_line:
             protocol, user, method, rip, lip, tls, line); for "allow" and
             "expire": the login they came from
    """

    def __init__(self, kind, t, wall, address, login):
        self.kind = kind
        self.time = t
        self.wall = wall
        self.address = address
        self.login = login

    @property
    def protocol(self):
        return self.login["protocol"]

    @property
    def user(self):
        return self.login["user"]

    @property
    def method(self):
        return self.login["method"]

    def __repr__(self):
        return (f"Event({self.kind}, {self.address}, {self.protocol} {self.user} "
                f"{self.method}, t={self.time:.3f})")


class Poprelayd:
    """What an ISP's poprelayd does, in a thread: tail Dovecot's log (every
    poll seconds), and for each successful login of a watched protocol from
    address A allow A to relay from seen + lag until seen + lag + valid
    (seen: when the line was read).  lag and valid may be changed at any
    time; they apply to logins seen afterwards.  Several logins give several
    windows; A may relay while any of them is open.

    events   every login seen, allow and expire, in order (Event)
    """

    def __init__(self, log_file, lag=3.0, valid=60.0, protocols=LOGIN_PROTOCOLS, poll=0.05):
        self.log_file = log_file
        self.lag = float(lag)
        self.valid = float(valid)
        self.protocols = tuple(protocols)
        self.poll = poll
        self.events = []
        self._windows = []          # [start, end, address, login, allow_logged, expire_logged]
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._wall0 = time.time() - time.monotonic()

    def _wall(self, t):
        return self._wall0 + t

    def start(self):
        try:
            self._offset = os.path.getsize(self.log_file)
        except FileNotFoundError:
            self._offset = 0
        self._thread = threading.Thread(target=self._run, name="poprelayd", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def _run(self):
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self.poll)

    def scan(self):
        """Read what Dovecot logged since the last scan; log the allows and
        expiries that are due.  (The thread calls it; a test may too.)"""
        with self._lock:
            try:
                with open(self.log_file, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            now = time.monotonic()
            if data:
                self._offset += len(data)
                data = self._partial + data
                *lines, self._partial = data.split(b"\n")
                for raw in lines:
                    login = parse_login_line(raw.decode(errors="replace"))
                    if not login or not login["ok"] or login["protocol"] not in self.protocols:
                        continue
                    address = login["rip"]
                    self.events.append(Event("login", now, self._wall(now), address, login))
                    start = now + self.lag
                    self._windows.append([start, start + self.valid, address, login, False, False])
            # allows and expiries in time order, at their scheduled instants
            due = []
            for w in self._windows:
                if not w[4] and w[0] <= now:
                    w[4] = True
                    due.append(("allow", w[0], w))
                if not w[5] and w[1] <= now:
                    w[5] = True
                    due.append(("expire", w[1], w))
            for kind, t, w in sorted(due, key=lambda d: d[1]):
                self.events.append(Event(kind, t, self._wall(t), w[2], w[3]))

    def allowed(self, address, now=None):
        """May address relay now (an open window)?"""
        now = time.monotonic() if now is None else now
        with self._lock:
            return any(w[0] <= now < w[1] and w[2] == address for w in self._windows)

    def reset(self):
        """Forget the windows and the events (the log read so far stays read)."""
        self.scan()
        with self._lock:
            self._windows = []
            self.events = []

    def logins(self, protocol=None):
        self.scan()
        with self._lock:
            return [e for e in self.events
                    if e.kind == "login" and (protocol is None or e.protocol == protocol)]

    def events_of(self, kind=None):
        self.scan()          # what is due now is there, whatever the thread's pace
        with self._lock:
            return [e for e in self.events if kind is None or e.kind == kind]


class Decision:
    """One policy request Postfix made: time (monotonic), wall, the request's
    attributes (dict: client_address, protocol_state, sender, recipient, ...)
    and the action answered ("OK" or "DUNNO")."""

    def __init__(self, t, attrs, action):
        self.time = t
        self.wall = time.time()
        self.attrs = attrs
        self.action = action

    client_address = property(lambda self: self.attrs.get("client_address"))
    recipient = property(lambda self: self.attrs.get("recipient"))
    protocol_state = property(lambda self: self.attrs.get("protocol_state"))

    def __repr__(self):
        return (f"Decision({self.protocol_state} {self.client_address} -> {self.recipient}: "
                f"{self.action}, t={self.time:.3f})")


class PolicyServer(ThreadedServer):
    """A Postfix policy service (SMTPD_POLICY_README) on 127.0.0.1:port:
    attribute=value lines up to an empty line in, "action=...\\n\\n" out,
    several requests per connection.  decide(attrs) -> action text."""

    name = "policy"

    def __init__(self, decide, host="127.0.0.1"):
        super().__init__(host)
        self.decide = decide
        self.decisions = []

    @property
    def address(self):
        return f"inet:{self.host}:{self.port}"

    def serve(self, conn):
        buf = b""
        attrs = {}
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode(errors="replace").rstrip("\r")
                if line:
                    k, _, v = line.partition("=")
                    attrs[k] = v
                    continue
                try:
                    action = self.decide(attrs)
                except Exception as e:        # never leave Postfix waiting
                    action = f"DEFER_IF_PERMIT policy service error: {e}"
                with self._lock:
                    self.decisions.append(Decision(time.monotonic(), attrs, action))
                conn.sendall(f"action={action}\n\n".encode())
                attrs = {}

    def reset(self):
        with self._lock:
            self.decisions = []


class LoginRig(Rig):
    """Capture + Dovecot (POP3/IMAP) + Postfix (relaying by policy) + policy
    service + poprelayd, started together (see the module docstring).

    users           {"joe": "secret"}
    mechs           Dovecot's auth_mechanisms (default PLAIN LOGIN CRAM-MD5
                    SCRAM-SHA-256 APOP; APOP is not a SASL mechanism: it shows
                    as the <timestamp> in the POP3 greeting, not in CAPA)
    plaintext_auth  False (default, Dovecot's own default, like an ISP):
                    disable_plaintext_auth = yes: USER/PASS, LOGIN and
                    AUTH PLAIN/LOGIN only after STLS/STARTTLS or on pop3s/imaps;
                    True: allowed on cleartext too
    lag             seconds from poprelayd seeing a login to the relay allowed (3)
    valid           seconds the relay stays allowed after that (60)
    protocols       the logins poprelayd counts (("pop3", "imap"))
    main            extra Postfix main.cf settings
    dovecot_settings  extra dovecot.conf settings
    keep            leave the directory in /tmp after stop (debugging)
    """

    def __init__(self, root=None, users=None, mechs=LOGIN_MECHS, plaintext_auth=False, lag=3.0,
                 valid=60.0, protocols=LOGIN_PROTOCOLS, main=None, dovecot_settings=None,
                 ca=None, keep=False):
        super().__init__("mailredir-login-", root, ca, users, keep)
        self.cert = rig_cert(self.ca)
        self.policy = None
        self.poprelayd = None
        self._mechs = mechs
        self._plaintext_auth = plaintext_auth
        self._lag, self._valid, self._protocols = lag, valid, protocols
        self._main = main
        self._dovecot_settings = dovecot_settings

    def start_parts(self):
        """Start the daemons (the capture runs already)."""
        self.dovecot = Dovecot(os.path.join(self.root, "dovecot"), users=self.users,
                               mechs=self._mechs, protocols=("pop3", "imap"), ca=self.ca,
                               cert=self.cert, listen=POP_HOST,
                               plaintext_auth=self._plaintext_auth,
                               listeners={"pop3": 0, "pop3s": 0, "imap": 0, "imaps": 0},
                               settings=self._dovecot_settings)
        self.poprelayd = Poprelayd(self.dovecot.log_file, lag=self._lag, valid=self._valid,
                                   protocols=self._protocols)
        self.policy = PolicyServer(self._decide).start()
        relaying = f"check_policy_service {self.policy.address}, reject_unauth_destination"
        self.postfix = Postfix(os.path.join(self.root, "postfix"), self.ca, self.capture.port,
                               main=self._main, cert=self.cert, sasl=False,
                               relay_restrictions=relaying)
        self.postfix.write()
        self.dovecot.start()
        self.poprelayd.start()
        self.postfix.start()

    def _decide(self, attrs):
        if attrs.get("request") != "smtpd_access_policy":
            return "DUNNO"
        return "OK" if self.poprelayd.allowed(attrs.get("client_address")) else "DUNNO"

    def stop_more(self):
        if self.poprelayd is not None:
            self.poprelayd.stop()
        if self.policy is not None:
            self.policy.stop()

    def reset(self, settle=0.1):
        """A new scenario on the same rig: poprelayd forgets its windows and
        events, the policy its decisions (logs and captured mail stay).
        settle: Dovecot's log process writes a login's line a moment after
        the client's "+OK Logged in.": give an earlier login that long to
        reach the log, so that it is forgotten too."""
        time.sleep(settle)
        self.poprelayd.reset()
        self.policy.reset()

    # the poprelayd's settings --------------------------------------------------

    @property
    def lag(self):
        return self.poprelayd.lag

    @lag.setter
    def lag(self, value):
        self.poprelayd.lag = float(value)

    @property
    def valid(self):
        return self.poprelayd.valid

    @valid.setter
    def valid(self, value):
        self.poprelayd.valid = float(value)

    # ports and files -------------------------------------------------------------

    pop_host = POP_HOST
    smtp_host = SMTP_HOST

    pop3_port = property(lambda self: self.dovecot.ports["pop3"])
    pop3s_port = property(lambda self: self.dovecot.ports["pop3s"])
    imap_port = property(lambda self: self.dovecot.ports["imap"])
    imaps_port = property(lambda self: self.dovecot.ports["imaps"])

    def login_port(self, protocol):
        """The Dovecot port of "pop3", "pop3s", "imap" or "imaps"."""
        return self.dovecot.ports[protocol]

    def login_url(self, protocol):
        """"pop3://127.0.0.2:PORT" and the like."""
        return f"{protocol}://{POP_HOST}:{self.login_port(protocol)}"

    @property
    def cert_file(self):
        """The certificate both Dovecot and Postfix present."""
        return self.cert[0]

    # what happened --------------------------------------------------------------

    def logins_seen(self, protocol=None):
        """poprelayd's "login" events (Event: time, protocol, user, method,
        address, login["tls"]), in order."""
        return self.poprelayd.logins(protocol)

    def wait_logins(self, n, protocol=None, timeout=10.0):
        """Until poprelayd has seen n logins (of protocol); returns them.
        (Dovecot's log process writes a line a moment after the client got
        its "+OK Logged in.")"""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.logins_seen(protocol)
            if len(seen) >= n:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(seen)} logins seen, not {n}, after {timeout}s: "
                                     f"{seen}")
            time.sleep(0.02)

    def events(self, kind=None):
        """poprelayd's events: "login", "allow", "expire"."""
        return self.poprelayd.events_of(kind)

    def dovecot_logins(self, protocol=None, user=None):
        """Every successful login Dovecot logged since it started (also the
        ones before a reset(), and of protocols poprelayd does not watch)."""
        return self.dovecot.logins(protocol, user)

    def login_failures(self, protocol=None, user=None):
        return self.dovecot.login_failures(protocol, user)

    def relay_allowed_now(self, address=CLIENT_ADDRESS):
        return self.poprelayd.allowed(address)

    def wait_relay_allowed(self, timeout=30.0, address=CLIENT_ADDRESS):
        """Until poprelayd allows address; returns the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while not self.relay_allowed_now(address):
            if time.monotonic() > deadline:
                raise AssertionError(f"relay not allowed for {address} after {timeout}s: "
                                     f"{self.events()}")
            time.sleep(0.02)
        return time.monotonic()

    def wait_relay_expired(self, timeout=120.0, address=CLIENT_ADDRESS):
        deadline = time.monotonic() + timeout
        while self.relay_allowed_now(address):
            if time.monotonic() > deadline:
                raise AssertionError(f"relay still allowed for {address} after {timeout}s")
            time.sleep(0.02)
        return time.monotonic()

    def decisions(self, action=None):
        """The policy requests Postfix made since the last reset (Decision)."""
        with self.policy._lock:
            return [d for d in self.policy.decisions if action is None or d.action == action]

    def relay_refusals(self):
        """[(code, enhanced, text)] of every "Relay access denied" Postfix
        logged: "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1
        <bob@ext.example>: Relay access denied; from=<...> to=<...> ...".
        (All of the maillog: it is not reset.)"""
        return re.findall(r"NOQUEUE: reject: RCPT from [^:]*\]: (\d{3}) (\d\.\d+\.\d+) "
                          r"(<[^>]*>: Relay access denied)", self.postfix.log())

    def dovecot_log(self):
        return self.dovecot.log()

    # mailredir configuration ------------------------------------------------------

    def route_keys(self, protocol="pop3", smtp="plain", name="gw", user="joe", password=None,
                   login_user=None, login_password=None, login_delay=None, login_valid=None,
                   login_tls=None, ca_file=True, tls=None, **extra):
        """The "[route NAME]" section for mailredir.conf (PRODUCT.md §3, issue 5).

        protocol        "pop3", "pop3s", "imap", "imaps" -> login-before-smtp =
                        pop3://127.0.0.2:PORT ...; None leaves it out (the
                        gateway then refuses to relay)
        smtp            "plain" (tls = none, default), "submission" (tls =
                        starttls), "smtps" (tls = tls) or a port number
        tls             overrides the tls key (False leaves it out)
        user            the route's user; password (default users[user]) in a
                        0600 password-file; None: no user/password keys
        login_user, login_password   login-user / login-password-file
                        (login_password alone: with login_user = user)
        login_delay, login_valid, login_tls   "4s", "10m", "none"/"required"
        ca_file         True: the test CA (tls-ca-file); a path; None/False: none
        extra           more keys, '_' becomes '-' (None leaves one out), e.g.
                        allow_plaintext_auth="yes", tls_fingerprint=rig.fingerprint
        """
        keys = dict(login_before_smtp=self.login_url(protocol) if protocol else None,
                    login_user=login_user,
                    login_password_file=(None if login_password is None
                                         else self.secret_file(login_password)),
                    login_delay=login_delay, login_valid=login_valid, login_tls=login_tls)
        return self.route(user=user, password=password, port=smtp, tls=tls, name=name,
                          host=SMTP_HOST, ca_file=ca_file, **keys, **extra)


@pytest.fixture
def make_login_rig():
    """Factory: make_login_rig(lag=3, valid=60, plaintext_auth=False, users=...,
    mechs=...) -> a started LoginRig; all stopped by PID after the test (a
    failure if one would not stop), their logs printed, directories removed."""
    def dump(rig):
        if rig.poprelayd is not None:
            print(f"--- poprelayd events of {rig.root}\n{rig.events()}")

    yield from started_rigs(LoginRig, dump)


@pytest.fixture
def login_rig(make_login_rig):
    """A started LoginRig with the defaults (lag 3 s, valid 60 s, joe/secret)."""
    return make_login_rig()
