"""SMTP dialogue (RFC 5321): commands, replies, pipelining, what is stored."""

import os
import re
import smtplib
import socket
import struct
import subprocess

import pytest

from conftest import (HOSTNAME, QUEUE_ID_RE, QUEUED_RE, assert_received, dot_stuff, run_bin,
                      make_message, needs_root, split_received, unfold, wait_until)


def test_banner_names_the_configured_hostname(relay):
    relay.start()
    with relay.connect() as c:
        assert c.banner.code == 220
        assert c.banner.first == f"220 {HOSTNAME} ESMTP mailredir"


def test_ehlo_lists_the_extensions(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        r = c.ehlo()
        assert r.lines[0].startswith(HOSTNAME), r
        ext = [line.upper() for line in r.lines[1:]]
        for want in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
            assert want in ext, r
        assert "SIZE 10240" in ext, r


def test_helo_is_accepted_and_allows_a_transaction(relay):
    relay.start()
    with relay.connect() as c:
        r = c.expect("HELO client.example", 250)
        assert HOSTNAME in r.lines[0]
        content, token = make_message()
        qid = c.send_message(content)
    assert token.encode() in relay.content(qid)


def test_smtplib_dialogue_stores_content_and_envelope_exactly(relay):
    relay.start()
    content, token = make_message(body_lines=["first", "", "last but one"])
    s = smtplib.SMTP("127.0.0.1", relay.port, local_hostname="client.example", timeout=30)
    try:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("size")
        code, msg = s.mail("alice@lan.example")
        assert (code, msg[:5]) == (250, b"2.1.0")
        code, msg = s.rcpt("bob@ext.example")
        assert (code, msg[:5]) == (250, b"2.1.5")
        code, msg = s.rcpt("carol@ext.example")
        assert code == 250
        code, msg = s.data(content)
        assert code == 250, msg
        m = re.match(r"^2\.0\.0 Ok: queued as ([0-9A-F]{18})$", msg.decode())
        assert m, msg
        qid = m.group(1)
    finally:
        s.quit()

    stored = relay.content(qid)
    header, rest = split_received(stored)
    assert rest == content
    assert_received(unfold(header), "127.0.0.1", qid, rcpt=None)

    env = relay.envelope(qid)
    assert relay.envelope_path(qid) == relay.path("queue", qid)
    assert env.get("version") == "1"
    assert env.get("id") == qid
    assert env.get("sender") == "alice@lan.example"
    assert [r["rcpt"] for r in env.rcpts] == ["bob@ext.example", "carol@ext.example"]
    assert all(r.get("rcpt-status") == "pending" for r in env.rcpts)
    assert int(env.get("size")) == len(stored)

    msgs = relay.messages()
    assert list(msgs) == [qid]
    m = msgs[qid]
    assert m["state"] == "queued"
    assert m["sender"] == "alice@lan.example"
    assert m["size"] == len(stored)
    assert [r["address"] for r in m["recipients"]] == ["bob@ext.example", "carol@ext.example"]

    line = relay.wait_log(rf"{qid}: accepted ")
    text = line.string
    assert re.search(r"client=\S*\[127\.0\.0\.1\]", text), text
    assert "from=<alice@lan.example>" in text, text
    assert "nrcpt=2" in text, text
    size = int(re.search(r"size=(\d+)", text).group(1))
    assert size in (len(stored), len(content)), text


def test_received_header_names_the_single_recipient(relay):
    relay.start()
    content, _ = make_message()
    qid, _ = relay.submit(content, rcpts=("bob@ext.example",))
    header, rest = split_received(relay.content(qid))
    assert rest == content
    assert_received(unfold(header), "127.0.0.1", qid, rcpt="bob@ext.example")
    assert header.count(b"Received:") == 1
    for line in header.split(b"\r\n"):
        assert len(line) <= 998


def test_swaks_delivers_a_message_that_is_stored(relay):
    relay.start()
    token = "swakstoken" + "x" * 8
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{relay.port}", "--helo", "client.example",
         "--from", "alice@lan.example", "--to", "bob@ext.example",
         "--header", "Subject: swaks test", "--body", f"hello {token}",
         "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    m = re.search(r"<[-~] +250 2\.0\.0 Ok: queued as ([0-9A-F]{18})", out)
    assert m, out
    qid = m.group(1)
    stored = relay.content(qid)
    assert stored.startswith(b"Received: from client.example ")
    assert f"hello {token}\r\n".encode() in stored
    assert b"Subject: swaks test\r\n" in stored
    assert relay.messages()[qid]["recipients"][0]["address"] == "bob@ext.example"


def test_swaks_with_pipelining_delivers_to_two_recipients(relay):
    relay.start()
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{relay.port}", "--helo", "client.example",
         "--pipeline", "--from", "alice@lan.example",
         "--to", "bob@ext.example,carol@ext.example", "--body", "pipelined swaks",
         "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    qid = re.search(r"queued as ([0-9A-F]{18})", out).group(1)
    rcpts = [r["address"] for r in relay.messages()[qid]["recipients"]]
    assert rcpts == ["bob@ext.example", "carol@ext.example"]


def test_pipelined_commands_get_their_replies_in_order(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<alice@lan.example>\r\nRCPT TO:<bob@ext.example>\r\n"
               "RCPT TO:<carol@ext.example>\r\nDATA\r\n")
        r = c.replies(4)
        assert [x.first for x in r[:3]] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"]
        assert r[3].code == 354
        content, token = make_message()
        c.send(content + b".\r\n")
        qid = QUEUED_RE.match(c.reply().first).group(1)
    assert len(relay.messages()[qid]["recipients"]) == 2


def test_pipelined_group_with_a_bad_recipient_keeps_the_good_ones(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send("RSET\r\nMAIL FROM:<alice@lan.example>\r\nRCPT TO:<not an address>\r\n"
               "RCPT TO:<carol@ext.example>\r\nDATA\r\n")
        r = c.replies(5)
        assert [x.code for x in r] == [250, 250, 501, 250, 354], r
        assert r[2].enhanced == "5.1.3", r
        c.send(make_message()[0] + b".\r\n")
        qid = QUEUED_RE.match(c.reply().first).group(1)
    assert [x["address"] for x in relay.messages()[qid]["recipients"]] == ["carol@ext.example"]


def test_end_of_data_followed_by_pipelined_commands_are_all_answered(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<alice@lan.example>\r\nRCPT TO:<bob@ext.example>\r\nDATA\r\n")
        assert [x.code for x in c.replies(3)] == [250, 250, 354]
        content, _ = make_message()
        c.send(content + b".\r\nMAIL FROM:<alice@lan.example>\r\nRCPT TO:<carol@ext.example>\r\n"
               b"DATA\r\n")
        r = c.replies(4)
        assert QUEUED_RE.match(r[0].first), r
        assert [x.code for x in r[1:]] == [250, 250, 354], r
        c.send(b"Subject: second\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        r = c.replies(2)
        assert QUEUED_RE.match(r[0].first), r
        assert r[1].code == 221
        c.wait_closed()
    assert len(relay.messages()) == 2


def test_two_transactions_in_one_session_get_distinct_ids(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        a = c.send_message(make_message()[0])
        b = c.send_message(make_message()[0], sender="")
    assert a != b and QUEUE_ID_RE.match(a) and QUEUE_ID_RE.match(b)
    msgs = relay.messages()
    assert set(msgs) == {a, b}
    assert msgs[b]["sender"] in ("", "<>")


def test_null_sender_is_accepted(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<>", 250, "2.1.0")


def test_dot_stuffed_lines_are_stored_unstuffed(relay):
    relay.start()
    body = [".", ".foo", "..", "...bar", ". leading dot and space", "end."]
    content, _ = make_message(body_lines=body)
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(dot_stuff(content))
    _, rest = split_received(relay.content(qid))
    assert rest == content
    assert b"\r\n.\r\n.foo\r\n..\r\n...bar\r\n" in rest


def test_a_leading_dot_that_is_not_doubled_is_removed(relay):
    # RFC 5321 §4.5.2: the receiver deletes the first character of a line
    # that begins with a period and has other characters.
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(b"Subject: x\r\n\r\n.foo\r\nbar\r\n")
    _, rest = split_received(relay.content(qid))
    assert rest == b"Subject: x\r\n\r\nfoo\r\nbar\r\n"


def test_smtplib_message_with_dot_lines_round_trips(relay):
    relay.start()
    content, _ = make_message(body_lines=[".", "..", ".foo", "x"])
    s = smtplib.SMTP("127.0.0.1", relay.port, local_hostname="client.example", timeout=30)
    try:
        s.ehlo()
        s.mail("alice@lan.example")
        s.rcpt("bob@ext.example")
        code, msg = s.data(content)
        assert code == 250, msg
        qid = msg.decode().rsplit(" ", 1)[1]
    finally:
        s.quit()
    assert split_received(relay.content(qid))[1] == content


def test_eight_bit_content_and_long_lines_are_stored_byte_for_byte(relay):
    relay.start()
    content = (b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n"
               b"caf\xe9 \xfc\xf1\xee\r\n" + b"x" * 998 + b"\r\n"
               b"trailing spaces   \r\n\ttab\r\n\x7f\x01 control\r\n")
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(content, mail_params=" BODY=8BITMIME")
    assert split_received(relay.content(qid))[1] == content
    assert relay.envelope(qid).get("body") == "8bitmime"


def test_smtputf8_allows_a_utf8_address(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<j\u00f6rg@lan.example> SMTPUTF8", 250, "2.1.0")
        c.expect("RCPT TO:<\u00e5sa@ext.example>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send("Subject: utf8 \u00e9\r\n\r\nhej\r\n.\r\n".encode())
        qid = QUEUED_RE.match(c.reply().first).group(1)
    env = relay.envelope(qid)
    assert env.get("smtputf8") == "yes"
    assert env.get("sender") == "j\u00f6rg@lan.example"
    assert relay.messages()[qid]["recipients"][0]["address"] == "\u00e5sa@ext.example"


def test_mail_parameters_size_body_and_smtputf8_are_accepted(relay):
    relay.start(max_message_size="10k")
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example> SIZE=100 BODY=8BITMIME SMTPUTF8", 250, "2.1.0")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<alice@lan.example> BODY=7BIT", 250, "2.1.0")


def test_unknown_mail_parameter_is_refused_with_555(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example> FOO=bar", 555, "5.5.4")
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example> FOO=bar", 555, "5.5.4")


@pytest.mark.parametrize("cmd,code,enh", [
    ("VRFY bob@ext.example", 252, None),
    ("NOOP", 250, None),
    ("RSET", 250, None),
    ("HELP", 214, None),
    ("FROB", 500, "5.5.1"),
    ("MAILFROM:<a@b.example>", 500, "5.5.1"),
])
def test_simple_command_gets_its_reply(relay, cmd, code, enh):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect(cmd, code, enh)
        c.expect("NOOP", 250)


def test_commands_are_case_insensitive(relay):
    relay.start()
    with relay.connect() as c:
        c.expect("ehlo client.example", 250)
        c.expect("mail from:<alice@lan.example>", 250, "2.1.0")
        c.expect("rcpt to:<bob@ext.example>", 250, "2.1.5")
        c.expect("data", 354)
        c.send(b"Subject: lower\r\n\r\nx\r\n.\r\n")
        assert QUEUED_RE.match(c.reply().first)


def test_quit_replies_221_and_closes(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("QUIT", 221)
        assert c.wait_closed() == b""


@pytest.mark.parametrize("setup,cmd", [
    ([], "MAIL FROM:<alice@lan.example>"),
    (["EHLO client.example"], "RCPT TO:<bob@ext.example>"),
    (["EHLO client.example"], "DATA"),
    (["EHLO client.example", "MAIL FROM:<alice@lan.example>"], "DATA"),
    (["EHLO client.example", "MAIL FROM:<alice@lan.example>"], "MAIL FROM:<alice@lan.example>"),
    (["EHLO client.example", "MAIL FROM:<alice@lan.example>", "RCPT TO:<bob@ext.example>",
      "RSET"], "DATA"),
], ids=["mail-before-helo", "rcpt-before-mail", "data-before-mail", "data-before-rcpt",
        "nested-mail", "data-after-rset"])
def test_bad_sequence_gets_503(relay, setup, cmd):
    relay.start()
    with relay.connect() as c:
        for s in setup:
            assert c.cmd(s).code == 250, s
        c.expect(cmd, 503, "5.5.1")
        c.expect("NOOP", 250)


@pytest.mark.parametrize("cmd,enh", [
    ("MAIL FROM alice@lan.example", None),
    ("MAIL FROM:", None),
    ("RCPT TO:", None),
    ("MAIL FROM:<not an address>", "5.1.7"),
    ("MAIL FROM:<alice@@lan.example>", "5.1.7"),
    ("RCPT TO:<bob@>", "5.1.3"),
    ("RCPT TO:<@ext.example>", "5.1.3"),
    ("RCPT TO:<bob@ext.example", None),
    ("EHLO", None),
], ids=["mail-no-colon", "mail-empty", "rcpt-empty", "mail-spaces", "mail-double-at",
        "rcpt-no-domain", "rcpt-no-local", "rcpt-unclosed", "ehlo-no-name"])
def test_bad_syntax_gets_501(relay, cmd, enh):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        if cmd.startswith("RCPT"):
            c.expect("MAIL FROM:<alice@lan.example>", 250)
        r = c.cmd(cmd)
        assert r.code == 501, (cmd, r)
        if enh:
            assert r.enhanced == enh, (cmd, r)
        c.expect("NOOP", 250)


def test_replies_after_ehlo_carry_enhanced_status_codes(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        for cmd in ("NOOP", "RSET", "MAIL FROM:<alice@lan.example>", "RCPT TO:<bob@ext.example>",
                    "VRFY bob", "FROB"):
            r = c.cmd(cmd)
            assert r.enhanced, (cmd, r)


def test_empty_message_is_stored_with_only_our_received_line(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        qid = c.send_message(b"")
    header, rest = split_received(relay.content(qid))
    assert rest == b""


def test_a_client_that_vanishes_in_data_leaves_nothing_behind(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250)
        c.expect("RCPT TO:<bob@ext.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: gone\r\n\r\n" + (b"g" * 78 + b"\r\n") * 2500)
        # the content is being written ...
        wait_until(lambda: any(os.path.getsize(relay.path("data", f)) > 0
                               for f in relay.listdir("data")), 30, what="content on disk")
        # ... when the client resets the connection
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    relay.assert_nothing_stored()
    relay.submit()


@needs_root
def test_started_as_root_it_drops_to_the_configured_user_and_still_queues(make_relay,
                                                                          public_dir):
    relay = make_relay(root=public_dir)
    relay.start(user="nobody")
    with open(f"/proc/{relay.pid}/status") as f:
        status = f.read()
    ids = {k: v.split() for k, v in re.findall(r"^(Uid|Gid|Groups):\s*(.*)$", status, re.M)}
    assert ids["Uid"] == ["65534"] * 4, ids
    assert ids["Gid"] == ["65534"] * 4, ids
    assert "0" not in ids["Groups"], ids
    qid, content = relay.submit()
    assert split_received(relay.content(qid))[1] == content
    assert os.stat(relay.path("data", qid)).st_uid == 65534
    # root's injector leaves files the daemon's user owns
    r = run_bin(["sendmail", "-C", relay.conf, "bob@ext.example"], input=b"Subject: r\n\nroot\n")
    assert r.returncode == 0, r
    msgs = relay.messages()
    assert len(msgs) == 2
    for q in msgs:
        assert os.stat(relay.path("data", q)).st_uid == 65534
        assert os.stat(relay.path("queue", q)).st_uid == 65534


@needs_root
def test_root_sendmail_before_any_daemon_creates_the_spool_and_the_daemon_adopts_it(
        make_relay, public_dir):
    # Cron mail on a fresh install: no daemon has made the spool yet.
    relay = make_relay(root=public_dir)
    relay.write_config(user="nobody")
    assert not os.path.exists(relay.spool)
    r = run_bin(["sendmail", "-C", relay.conf, "root"], input=b"Subject: cron\n\nfirst\n")
    assert r.returncode == 0, r
    (qid,) = relay.messages()
    assert os.stat(relay.path("data", qid)).st_uid == 0
    # A user's file waiting in the maildrop must stay that user's.
    dropped = relay.path("maildrop", "0" * 32)
    with open(dropped, "w") as f:
        f.write("not yet imported")
    os.chown(dropped, 1, 1)
    relay.start(user="nobody")
    for sub in ("data", "queue", "incoming", "held", "failed", "maildrop", "spare"):
        assert os.stat(relay.path(sub)).st_uid == 65534, sub
    assert os.stat(relay.path("data", qid)).st_uid == 65534
    assert os.stat(relay.path("queue", qid)).st_uid == 65534
    # the importer (every second) moves it aside as bad: wait for that, or
    # the listing below races the rename
    wait_until(lambda: "0" * 32 not in os.listdir(relay.path("maildrop")), 10,
               what="the bad drop to be moved aside")
    left = os.listdir(relay.path("maildrop"))
    assert left and all(os.lstat(relay.path("maildrop", n)).st_uid == 1 for n in left), left
    assert [r["rcpt"] for r in relay.envelope(qid).rcpts] == ["root@" + HOSTNAME]
