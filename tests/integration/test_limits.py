"""Every limit: message size, recipients, connections, line length, timeouts,
errors per session, and hostile command bytes (NUL, bare LF)."""

import os
import socket
import subprocess
import threading
import time

from conftest import (QUEUED_RE, ConnectionClosed, SMTPConn, make_message, split_received,
                      wait_until)


def big_message(n):
    """A message of about n octets (lines of 78 + CRLF)."""
    head = b"Subject: big\r\n\r\n"
    line = b"y" * 78 + b"\r\n"
    return head + line * max(1, (n - len(head)) // len(line))


# --- max-message-size -----------------------------------------------------------

def test_size_parameter_above_the_limit_is_refused_at_mail(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example> SIZE=10241", 552, "5.3.4")
        c.expect("MAIL FROM:<alice@lan.example> SIZE=5000", 250, "2.1.0")


def test_size_parameter_beyond_64_bits_is_refused_as_too_big_not_as_syntax(relay):
    # RFC 1870 allows 20 digits; more than 2^64 is still just "too big".
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example> SIZE=99999999999999999999", 552, "5.3.4")
        c.expect("MAIL FROM:<alice@lan.example> SIZE=999999999999999999999", 555, "5.5.4")


def test_message_over_the_size_limit_is_refused_after_the_dot_and_not_stored(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(big_message(30000) + b".\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        # the session goes on: a message within the limit is accepted
        qid = c.send_message(big_message(4000))
    msgs = relay.messages()
    assert list(msgs) == [qid]
    assert relay.listdir("incoming") == []
    assert relay.listdir("data") == [qid]


def test_message_far_over_the_size_limit_gets_a_reply_and_the_relay_survives(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        try:
            c.send(big_message(5 * 1024 * 1024) + b".\r\n")
            r = c.reply()
            assert (r.code, r.enhanced) == (552, "5.3.4"), r
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
            pass   # closing on a flood is fine; the relay must stay up
    relay.submit()
    assert len(relay.messages()) == 1
    assert relay.listdir("incoming") == []


def exact_message(n):
    """A message of exactly n octets, lines of at most 902 octets."""
    out = b"Subject: s\r\n\r\n"
    while len(out) < n:
        out += b"z" * min(900, n - len(out) - 2) + b"\r\n"
    assert len(out) == n
    return out


def test_message_of_exactly_the_size_limit_is_accepted_and_one_more_octet_is_not(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(exact_message(10240))
        c.expect("MAIL FROM:<alice@lan.example> SIZE=10240", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(exact_message(10241) + b".\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
    assert list(relay.messages()) == [qid]


def test_large_message_within_the_limit_is_stored_byte_for_byte(relay):
    relay.start(max_message_size="10M")
    body = b"".join(b"%08d " % i + b"b" * 70 + b"\r\n" for i in range(60000))
    content = b"Subject: big\r\n\r\n" + body
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(content)
    assert split_received(relay.content(qid))[1] == content


# --- max-recipients -------------------------------------------------------------

def test_recipient_past_the_limit_gets_452_and_the_others_are_kept(relay):
    relay.start(max_recipients=3)
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        for i in range(3):
            c.expect(f"RCPT TO:<r{i}@ext.example>", 250, "2.1.5")
        c.expect("RCPT TO:<r3@ext.example>", 452, "4.5.3")
        c.expect("RCPT TO:<r4@ext.example>", 452, "4.5.3")
        c.expect("DATA", 354)
        c.send(make_message()[0] + b".\r\n")
        qid = QUEUED_RE.match(c.reply().first).group(1)
    rcpts = [r["address"] for r in relay.messages()[qid]["recipients"]]
    assert rcpts == ["r0@ext.example", "r1@ext.example", "r2@ext.example"]
    assert "nrcpt=3" in relay.wait_log(rf"{qid}: accepted").string


# --- connections ------------------------------------------------------------------

def test_connection_past_max_connections_gets_421_and_is_closed(relay):
    relay.start(max_connections=2, max_connections_per_client=10)
    a, b = relay.connect(), relay.connect()
    try:
        assert a.banner.code == 220 and b.banner.code == 220
        with relay.connect(read_banner=False) as c:
            got = c.wait_closed()
            assert got.startswith(b"421 4.7.0 "), got
        # a slot frees up when a session ends
        a.expect("QUIT", 221)
        a.wait_closed()

        def admitted():
            with relay.connect(read_banner=False) as d:
                line = d.read_line()
                return line.startswith("220 ")
        wait_until(admitted, 20, interval=0.1, what="a free connection slot")
    finally:
        a.close()
        b.close()


def test_connection_past_max_connections_per_client_gets_421_but_others_get_in(relay):
    relay.start(max_connections=10, max_connections_per_client=2)
    conns = [relay.connect(), relay.connect()]
    try:
        with relay.connect(read_banner=False) as c:
            got = c.wait_closed()
            assert got.startswith(b"421 4.7.0 "), got
        # another client address (127.0.0.0/8 is allowed by default)
        with relay.connect(source="127.0.0.2") as other:
            assert other.banner.code == 220
            other.ehlo()
    finally:
        for c in conns:
            c.close()


# --- line length ----------------------------------------------------------------

def test_command_line_of_1000_octets_is_accepted_and_1001_is_refused(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        line = "NOOP " + "x" * (1000 - 2 - 5)
        assert len(line) + 2 == 1000
        c.expect(line, 250)
        c.expect(line + "x", 500, "5.5.2")
        c.expect("NOOP", 250)


def test_megabyte_command_line_is_refused_at_its_end_and_the_session_goes_on(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * (1024 * 1024))
        c.send(b"@lan.example>\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        c.expect("NOOP", 250)
        c.expect("MAIL FROM:<alice@lan.example>", 250)
    relay.submit()


# --- hostile bytes in commands ------------------------------------------------------

def test_nul_in_a_command_is_refused(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@lan.example>\x00 SIZE=1\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        c.send(b"NO\x00OP\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        c.expect("MAIL FROM:<alice@lan.example>", 250)


def test_bare_lf_ending_a_command_is_refused(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send(b"NOOP\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        c.expect("NOOP", 250)


def test_bare_lf_inside_a_pipelined_command_never_splits_it(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@lan.example>\nRCPT TO:<bob@ext.example>\r\nHELP\r\n")
        replies = []
        while True:
            r = c.reply()
            replies.append(r)
            if r.code == 214:
                break
        assert replies[0].code == 500 and replies[0].enhanced == "5.5.2", replies
        # neither MAIL nor RCPT took effect
        assert all(r.code != 250 for r in replies), replies
        c.expect("DATA", 503)


def test_bare_cr_inside_a_command_is_refused(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<alice@lan.example>\rRCPT TO:<bob@ext.example>\r\n")
        r = c.reply()
        assert r.code >= 500, r
        c.expect("RCPT TO:<bob@ext.example>", 503)


# --- timeouts -------------------------------------------------------------------

def test_idle_client_gets_421_after_the_command_timeout(relay):
    relay.start(command_timeout="1s")
    with relay.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        got = c.wait_closed(timeout=30)
        elapsed = time.monotonic() - t0
    assert got.startswith(b"421 4.4.2 "), got
    assert elapsed >= 0.8, elapsed


def test_command_timeout_applies_per_command_not_per_session(relay):
    relay.start(command_timeout="1s")
    with relay.connect() as c:
        c.ehlo()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            time.sleep(0.3)           # pacing, well under the timeout
            c.expect("NOOP", 250)


def test_stalled_data_gets_421_after_the_data_timeout_and_nothing_is_stored(relay):
    relay.start(command_timeout="30s", data_timeout="1s")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: half\r\n\r\nhalf a mess")
        t0 = time.monotonic()
        got = c.wait_closed(timeout=30)
        elapsed = time.monotonic() - t0
    assert got.startswith(b"421 4.4.2 "), got
    assert elapsed >= 0.8
    relay.assert_nothing_stored()


def test_timed_out_sessions_free_their_connection_slots(relay):
    relay.start(command_timeout="1s", max_connections=2, max_connections_per_client=2)
    conns = [relay.connect(), relay.connect()]
    for c in conns:
        assert c.wait_closed(timeout=30).startswith(b"421 4.4.2 ")
        c.close()

    def admitted():
        with relay.connect(read_banner=False) as d:
            return d.read_line().startswith("220 ")
    wait_until(admitted, 20, interval=0.1, what="slots freed after timeouts")


# --- errors per session -----------------------------------------------------------

def test_twenty_errors_end_the_session_with_421(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        codes = []
        for i in range(25):
            try:
                r = c.cmd(f"FROB{i}")
            except ConnectionClosed:
                break
            codes.append(r.code)
            if r.code == 421:
                break
        assert codes[:19] == [500] * 19, codes
        assert 421 in codes and len(codes) <= 21, codes
        c.wait_closed()


def test_a_flood_of_pipelined_junk_is_answered_and_closed_without_harm(relay):
    relay.start()
    with relay.connect() as c:
        try:
            c.send(b"".join(b"JUNK %d\r\n" % i for i in range(5000)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = c.wait_closed(timeout=60)
        assert b"421 " in got, got[-300:]
    relay.submit()
    assert len(relay.messages()) == 1


def test_many_clients_that_connect_and_vanish_do_not_exhaust_the_relay(relay):
    relay.start(max_connections=5, max_connections_per_client=5)
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", relay.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()    # RST
    def ok():
        try:
            with SMTPConn(relay.port) as c:
                return c.banner.code == 220
        except (ConnectionClosed, OSError):
            return False
    wait_until(ok, 20, interval=0.1, what="a 220 after vanished clients")
    relay.submit()


def test_twenty_thousand_pipelined_commands_are_all_answered_in_order(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        n = 20000
        got = []

        def read_all():
            try:
                for _ in range(n):
                    got.append(c.reply().code)
            except Exception as e:      # reported below
                got.append(repr(e))
        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        c.send(b"NOOP\r\n" * (n - 1) + b"HELP\r\n")
        reader.join(120)
        assert not reader.is_alive(), f"only {len(got)} replies"
        assert got == [250] * (n - 1) + [214], got[-3:]
        c.expect("QUIT", 221)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_running_out_of_file_descriptors_neither_spins_nor_stops_the_relay(relay):
    relay.start(max_connections=1000, max_connections_per_client=1000)
    # the relay may hold 64 descriptors; clients try to use 100
    subprocess.run(["prlimit", "--nofile=64:64", "--pid", str(relay.pid)], check=True)
    socks = []
    try:
        for _ in range(100):
            socks.append(socket.create_connection(("127.0.0.1", relay.port), timeout=30))
        wait_until(lambda: len(os.listdir(f"/proc/{relay.pid}/fd")) >= 60, 30,
                   what="the relay to use up its descriptors")
        before = cpu_seconds(relay.pid)
        time.sleep(2)                 # measuring: how busy is it while idle at the limit?
        busy = cpu_seconds(relay.pid) - before
        assert busy < 1.0, f"the relay used {busy:.2f} s of CPU in 2 s while out of descriptors"
    finally:
        for s in socks:
            s.close()

    def ok():
        try:
            with SMTPConn(relay.port, timeout=10) as c:
                return c.banner.code == 220
        except (ConnectionClosed, OSError):
            return False
    wait_until(ok, 30, interval=0.2, what="a 220 once descriptors are free again")
    relay.submit()


def flood_without_reading(port, seconds_blocked=3.0):
    """A client that pipelines NOOPs and never reads a reply, until its sends
    block for `seconds_blocked`.  Returns the open socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(seconds_blocked)
    chunk = b"NOOP\r\n" * 1000
    try:
        while True:
            s.send(chunk)
    except socket.timeout:
        pass                         # the relay stopped reading: backpressure
    except OSError:
        pass                         # the relay closed the connection
    return s


def test_a_client_that_never_reads_replies_is_dropped_and_frees_its_slot(relay):
    relay.start(command_timeout="1s", max_connections=1, max_connections_per_client=1)
    hog = flood_without_reading(relay.port)
    try:
        def admitted():
            with relay.connect(read_banner=False) as d:
                return d.read_line().startswith("220 ")
        wait_until(admitted, 15, interval=0.5, what="the slot of a client that never reads")
    finally:
        hog.close()


def test_a_flooding_client_that_disconnects_frees_its_slot(relay):
    relay.start(command_timeout="1s", max_connections=1, max_connections_per_client=1)
    flood_without_reading(relay.port).close()

    def admitted():
        with relay.connect(read_banner=False) as d:
            return d.read_line().startswith("220 ")
    wait_until(admitted, 15, interval=0.5, what="the slot of a client that went away")
