"""Signals: SIGTERM stops listening, lets sessions finish (up to 5 s), exits 0
with nothing lost; SIGHUP reloads the configuration, a broken file is refused
and the old configuration keeps running."""

import re
import signal
import socket
import time

from conftest import (HOSTNAME, QUEUED_RE, ConnectionClosed, SMTPConn, make_message,
                      wait_until)


def rcpt_limit_in_force(relay, n):
    """True when a new session may give n recipients and the n+1st gets 452."""
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        for i in range(n):
            r = c.cmd(f"RCPT TO:<r{i}@ext.example>")
            if r.code != 250:
                return False
        return c.cmd(f"RCPT TO:<r{n}@ext.example>").code == 452


def new_connection_refused_or_421(port):
    """A new client is refused, or told 421 4.3.2, or closed at once."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return True
    with s:
        s.settimeout(5)
        try:
            data = s.recv(200)
        except socket.timeout:
            return False
        except OSError:
            return True
        return data == b"" or data.startswith(b"421 4.3.2")


# --- SIGTERM ----------------------------------------------------------------------

def test_sigterm_with_no_sessions_exits_0(relay):
    relay.start()
    t0 = time.monotonic()
    relay.signal(signal.SIGTERM)
    assert relay.wait_exit() == 0
    assert time.monotonic() - t0 < 10


def test_sigterm_lets_a_session_in_data_finish_and_the_message_is_kept(relay):
    relay.start()
    c = relay.connect()
    try:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        content, token = make_message()
        half = len(content) // 2
        c.send(content[:half])
        relay.signal(signal.SIGTERM)
        # the listener goes away (or new clients are told 421 4.3.2) ...
        wait_until(lambda: new_connection_refused_or_421(relay.port), 10, interval=0.1,
                   what="new connections refused after SIGTERM")
        # ... while the session in progress finishes its message
        c.send(content[half:] + b".\r\n")
        r = c.reply()
        m = QUEUED_RE.match(r.first)
        assert m, r
        qid = m.group(1)
        try:
            r = c.cmd("QUIT")
            assert r.code in (221, 421), r
        except ConnectionClosed:
            pass
    finally:
        c.close()
    assert relay.wait_exit() == 0
    relay.start()
    msgs = relay.messages()
    assert list(msgs) == [qid]
    assert relay.content(qid).endswith(f"END-{token}\r\n".encode())


def test_sigterm_abandons_an_idle_session_with_421_and_exits_0(relay):
    relay.start(command_timeout="5m")
    with relay.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        relay.signal(signal.SIGTERM)
        got = c.wait_closed(timeout=30)
        assert got.startswith(b"421 4.3.2 "), got
    assert relay.wait_exit() == 0
    assert time.monotonic() - t0 < 15


def test_sigterm_during_an_unfinished_message_exits_0_and_stores_nothing(relay):
    relay.start(data_timeout="5m")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: never finished\r\n\r\npart")
        t0 = time.monotonic()
        relay.signal(signal.SIGTERM)
        got = c.wait_closed(timeout=30)
        assert got == b"" or got.startswith(b"421 4.3.2 "), got
    assert relay.wait_exit() == 0
    assert time.monotonic() - t0 < 15
    relay.start()
    relay.assert_nothing_stored()


def test_new_commands_after_sigterm_get_421(relay):
    relay.start(command_timeout="5m")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        relay.signal(signal.SIGTERM)
        # the session may finish its transaction; once it is done the relay
        # says 421 4.3.2 to what would start a new one, or closes
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: last\r\n\r\nlast\r\n.\r\n")
        assert QUEUED_RE.match(c.reply().first)
        try:
            r = c.cmd("MAIL FROM:<alice@lan.example>")
            assert (r.code, r.enhanced) == (421, "4.3.2"), r
        except ConnectionClosed:
            pass
    assert relay.wait_exit() == 0


# --- SIGHUP -----------------------------------------------------------------------

def test_sighup_reloads_a_good_configuration(relay):
    relay.start(max_recipients=2)
    assert rcpt_limit_in_force(relay, 2)
    before = relay.connect()
    try:
        before.ehlo()
        text = relay.config_text(max_recipients=5)
        relay.write_config(text.replace(f"hostname = {HOSTNAME}", "hostname = mx2.test.example"))
        mark = relay.mark()
        relay.signal(signal.SIGHUP)
        relay.wait_log(r"configuration reloaded", since=mark)
        assert rcpt_limit_in_force(relay, 5)
        with relay.connect() as c:
            assert c.banner.first == "220 mx2.test.example ESMTP mailredir"
        # the session opened before the reload was not dropped
        before.expect("NOOP", 250)
        before.send_message(make_message()[0])
    finally:
        before.close()
    assert relay.running()


def test_sighup_with_a_broken_file_keeps_the_old_configuration(relay):
    relay.start(max_recipients=2)
    text = relay.config_text(max_recipients=5)
    broken = text + "no-such-key = 1\n"
    bad_line = broken.count("\n")
    relay.write_config(broken)
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"reload failed.*" + re.escape(relay.conf) + rf":{bad_line}: ", since=mark)
    assert not relay.log_matches(r"configuration reloaded", since=mark)
    assert relay.running()
    assert rcpt_limit_in_force(relay, 2)
    # fixing the file and signalling again works
    relay.write_config(text)
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"configuration reloaded", since=mark)
    assert rcpt_limit_in_force(relay, 5)


def test_sighup_with_a_bad_value_keeps_the_old_configuration(relay):
    relay.start(max_recipients=2)
    relay.write_config(relay.config_text(max_recipients="many"))
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"reload failed", since=mark)
    assert relay.running()
    assert rcpt_limit_in_force(relay, 2)


def test_sighup_with_a_deleted_file_keeps_running(relay):
    import os
    relay.start(max_recipients=2)
    os.unlink(relay.conf)
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"reload failed", since=mark)
    assert relay.running()
    assert rcpt_limit_in_force(relay, 2)


def test_repeated_sighup_does_not_disturb_sessions(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        for _ in range(5):
            mark = relay.mark()
            relay.signal(signal.SIGHUP)
            relay.wait_log(r"configuration reloaded", since=mark)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(make_message()[0] + b".\r\n")
        assert QUEUED_RE.match(c.reply().first)
    assert len(relay.messages()) == 1


def test_sighup_applies_a_new_clients_list_to_new_connections(relay):
    relay.start(clients="127.0.0.1/32")
    with SMTPConn(relay.port, source="127.0.0.2", read_banner=False) as c:
        assert c.wait_closed().startswith(b"554 5.7.1 ")
    relay.write_config(clients="127.0.0.0/8")
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"configuration reloaded", since=mark)
    with relay.connect(source="127.0.0.2") as c:
        assert c.banner.code == 220
