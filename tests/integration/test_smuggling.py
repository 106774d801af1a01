"""SMTP smuggling (SEC Consult, Dec 2023): only CRLF.CRLF ends DATA; a bare LF
or bare CR anywhere in DATA gets the whole message refused with 550 5.6.0,
so no sequence can end a message early or start a second one."""

import time

import pytest

from conftest import QUEUED_RE, dot_stuff, make_message, split_received

SEQUENCES = {
    "lf-dot-lf": b"\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-cr": b"\r\n.\r",
    "lf-dot-cr": b"\n.\r",
    "cr-dot-lf": b"\r.\n",
}

SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@ext.example>\r\n"
            b"DATA\r\nFrom: <ceo@lan.example>\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")


def open_data(c):
    c.ehlo()
    c.expect("MAIL FROM:<alice@lan.example>", 250)
    c.expect("RCPT TO:<bob@ext.example>", 250)
    c.expect("DATA", 354)


def assert_only_rejection_then(c, marker_code=214):
    """Exactly one reply (550 5.6.0) for everything sent, then the reply to a
    HELP sent afterwards: nothing smuggled was executed."""
    r = c.reply()
    assert (r.code, r.enhanced) == (550, "5.6.0"), r
    c.send(b"HELP\r\n")
    r2 = c.reply()
    assert r2.code == marker_code, f"an extra reply after the 550: {r2}"


@pytest.mark.parametrize("seq", list(SEQUENCES.values()), ids=list(SEQUENCES))
def test_smuggling_sequence_gets_one_550_and_nothing_is_queued(relay, seq):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nbody" + seq + SMUGGLED)
        assert_only_rejection_then(c)
        # the session is usable afterwards, and a new transaction starts cleanly
        c.expect("RCPT TO:<bob@ext.example>", 503)
    relay.assert_nothing_stored()
    assert not relay.log_matches(r": accepted ")


@pytest.mark.parametrize("seq", list(SEQUENCES.values()), ids=list(SEQUENCES))
def test_smuggling_sequence_sent_in_separate_packets_is_still_refused(relay, seq):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nbody")
        time.sleep(0.05)      # pacing, so the pieces arrive in separate reads
        for i in range(len(seq)):
            c.send(seq[i:i + 1])
            time.sleep(0.05)
        c.send(SMUGGLED)
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_smuggling_at_the_start_of_data_is_refused(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b".\n" + SMUGGLED)
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_bare_lf_in_the_body_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nline one\nline two\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_bare_lf_in_a_header_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\nX-Other: y\r\n\r\nbody\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_bare_cr_in_the_body_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nline one\rline two\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_cr_right_before_crlf_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nline one\r\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_data_line_of_1001_octets_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\n" + b"z" * 999 + b"\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_data_line_of_1000_octets_is_accepted(relay):
    relay.start()
    content = b"Subject: x\r\n\r\n" + b"z" * 998 + b"\r\n"
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(content)
    assert split_received(relay.content(qid))[1] == content


def test_text_line_of_998_octets_starting_with_a_dot_is_accepted(relay):
    # RFC 5321 §4.5.3.1.6: 1000 octets including CRLF, "not counting the
    # leading dot duplicated for transparency" - 1001 on the wire.
    relay.start()
    text_line = b"." + b"d" * 997
    content = b"Subject: x\r\n\r\n" + text_line + b"\r\n"
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(dot_stuff(content))
    assert split_received(relay.content(qid))[1] == content


def test_text_line_of_999_octets_starting_with_a_dot_gets_550(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\n.." + b"d" * 998 + b"\r\n.\r\n")
        assert_only_rejection_then(c)
    relay.assert_nothing_stored()


def test_a_transaction_after_a_refused_message_is_stored_cleanly(relay):
    relay.start()
    with relay.connect() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nbad\n.\n" + SMUGGLED)
        assert_only_rejection_then(c)
        content, token = make_message()
        qid = c.send_message(content)
    msgs = relay.messages()
    assert list(msgs) == [qid]
    assert split_received(relay.content(qid))[1] == content
    assert msgs[qid]["sender"] == "alice@lan.example"
    assert [r["address"] for r in msgs[qid]["recipients"]] == ["bob@ext.example"]


def test_crlf_split_across_packets_is_a_line_end(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        for piece in (b"Subject: split\r", b"\n\r", b"\nbody\r", b"\n.", b"\r", b"\n"):
            c.send(piece)
            time.sleep(0.05)   # pacing, so the pieces arrive in separate reads
        r = c.reply()
        m = QUEUED_RE.match(r.first)
        assert m, r
    assert split_received(relay.content(m.group(1)))[1] == b"Subject: split\r\n\r\nbody\r\n"


def test_only_crlf_dot_crlf_ends_data_and_what_follows_is_a_command(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: y\r\n\r\n.x\r\n..\r\n. \r\n.\r\nHELP\r\n")
        r = c.replies(2)
        m = QUEUED_RE.match(r[0].first)
        assert m, r
        assert r[1].code == 214, r
    assert split_received(relay.content(m.group(1)))[1] == b"Subject: y\r\n\r\nx\r\n.\r\n \r\n"
