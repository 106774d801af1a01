"""Who may connect (`clients`), IPv4 and IPv6 listeners, repeated `listen`."""

import re

import pytest

from conftest import (SMTPConn, assert_received, free_port, ipv6_available,
                      make_message, split_received, unfold)

needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="::1 is not available here")


def test_client_outside_clients_gets_554_at_connect_and_is_closed(relay):
    relay.start(clients="127.0.0.1/32")
    with SMTPConn(relay.port, source="127.0.0.2", read_banner=False) as c:
        got = c.wait_closed()
    assert got.startswith(b"554 5.7.1 "), got
    assert got.count(b"\r\n") == 1, got


def test_client_inside_clients_is_accepted_and_can_send(relay):
    relay.start(clients="127.0.0.1/32")
    with relay.connect() as c:
        assert c.banner.code == 220
        c.ehlo()
        qid = c.send_message(make_message()[0])
    assert qid in relay.messages()


def test_refused_client_cannot_send_even_when_it_pipelines_at_once(relay):
    relay.start(clients="127.0.0.1/32")
    with SMTPConn(relay.port, source="127.0.0.2", read_banner=False) as c:
        try:
            c.send(b"EHLO x\r\nMAIL FROM:<a@lan.example>\r\nRCPT TO:<b@ext.example>\r\n"
                   b"DATA\r\nSubject: x\r\n\r\nx\r\n.\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = c.wait_closed()
    assert got.startswith(b"554 5.7.1 "), got
    assert b"250" not in got and b"354" not in got, got
    relay.assert_nothing_stored()


def test_default_clients_allow_all_of_127_slash_8(relay):
    relay.start()
    with relay.connect(source="127.0.0.2") as c:
        assert c.banner.code == 220
        c.ehlo()
        qid = c.send_message(make_message()[0])
    header, _ = split_received(relay.content(qid))
    assert "[127.0.0.2]" in unfold(header)
    assert re.search(r"client=\S*\[127\.0\.0\.2\]", relay.wait_log(rf"{qid}: accepted").string)


def test_several_cidrs_and_repeated_clients_keys_accumulate(relay):
    relay.start(clients=["127.0.0.3/32", "10.0.0.0/8 127.0.0.2/32"])
    with relay.connect(source="127.0.0.2") as c:
        assert c.banner.code == 220
    with relay.connect(source="127.0.0.3") as c:
        assert c.banner.code == 220
    with SMTPConn(relay.port, source="127.0.0.1", read_banner=False) as c:
        assert c.wait_closed().startswith(b"554 5.7.1 ")


def test_two_listen_lines_both_accept_mail(relay):
    p1, p2 = free_port(), free_port()
    relay.listen = [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"]
    relay.port = p1
    relay.start()
    ids = []
    for port in (p1, p2):
        with SMTPConn(port) as c:
            c.ehlo()
            ids.append(c.send_message(make_message()[0]))
    assert set(relay.messages()) == set(ids)
    assert len(relay.log_matches(r"listening on")) >= 2


@needs_ipv6
def test_ipv6_listener_accepts_mail_and_records_the_address(relay):
    port = free_port("::1")
    relay.listen = [f"[::1]:{port}"]
    relay.port = port
    relay.start()
    with SMTPConn(port, host="::1") as c:
        assert c.banner.code == 220
        c.ehlo()
        content, _ = make_message()
        qid = c.send_message(content)
    header, rest = split_received(relay.content(qid))
    assert rest == content
    assert_received(unfold(header), "::1", qid, rcpt="bob@ext.example")
    assert "::1]" in relay.wait_log(rf"{qid}: accepted").string


@needs_ipv6
def test_ipv6_client_outside_clients_gets_554(relay):
    port4, port6 = free_port(), free_port("::1")
    relay.listen = [f"127.0.0.1:{port4}", f"[::1]:{port6}"]
    relay.port = port4
    relay.start(clients="127.0.0.1/32")
    with SMTPConn(port6, host="::1", read_banner=False) as c:
        assert c.wait_closed().startswith(b"554 5.7.1 ")
    with SMTPConn(port4) as c:
        assert c.banner.code == 220


@needs_ipv6
def test_ipv6_client_inside_an_ipv6_cidr_is_accepted(relay):
    port = free_port("::1")
    relay.listen = [f"[::1]:{port}"]
    relay.port = port
    relay.start(clients="::1/128")
    with SMTPConn(port, host="::1") as c:
        assert c.banner.code == 220
