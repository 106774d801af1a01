"""The sendmail(1) injector: `mailredir sendmail` and the `sendmail` symlink.
No daemon is needed; it writes into the spool (or, for an ordinary user, the
maildrop that a running daemon imports).  Exit codes: 0 queued, 64 usage,
65 bad input, 75 could not queue, 78 configuration."""

import email.utils
import os
import re
import subprocess

import pytest

from conftest import QUEUED_RE, base_env, needs_root, run_bin, symlink_path, wait_until

MSG = b"From: Alice <alice@lan.example>\nTo: bob@ext.example\nSubject: hello\n" \
      b"Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <m1@lan.example>\n\nbody line\n"


@pytest.fixture
def conf(relay):
    """A configuration and a spool, no daemon running."""
    return relay.init_spool()


def sendmail(relay, *args, input=MSG, **kw):
    """`mailredir sendmail -C CONF ARGS...` with the message on stdin."""
    return run_bin(["sendmail", "-C", relay.conf] + list(args), input=input, **kw)


def only_message(relay):
    msgs = relay.messages()
    assert len(msgs) == 1, msgs
    (qid, m), = msgs.items()
    return qid, m, relay.content(qid)


def headers_of(content):
    head = content.split(b"\r\n\r\n", 1)[0]
    return head.decode("utf-8", "replace").split("\r\n")


def header_values(content, name):
    out = []
    for line in re.sub(r"\r\n[ \t]", " ", content.split(b"\r\n\r\n", 1)[0].decode()).split("\r\n"):
        k, _, v = line.partition(":")
        if k.lower() == name.lower():
            out.append(v.strip())
    return out


# --- exit 0 -------------------------------------------------------------------

def test_sendmail_queues_for_the_recipients_given_and_prints_nothing(conf):
    r = sendmail(conf, "bob@ext.example", "carol@ext.example")
    assert r.returncode == 0, r
    assert r.stdout == b"" and r.stderr == b"", r
    qid, m, content = only_message(conf)
    assert m["state"] == "queued"
    assert [x["address"] for x in m["recipients"]] == ["bob@ext.example", "carol@ext.example"]
    assert b"\r\nbody line\r\n" in content
    assert b"\n" not in content.replace(b"\r\n", b""), "bare LF stored"
    assert m["size"] == len(content)
    assert conf.envelope(qid).get("origin") == "sendmail"


def test_sendmail_keeps_date_message_id_and_from_when_present(conf):
    assert sendmail(conf, "bob@ext.example").returncode == 0
    _, _, content = only_message(conf)
    assert header_values(content, "From") == ["Alice <alice@lan.example>"]
    assert header_values(content, "Date") == ["Mon, 23 Nov 2026 10:00:00 +0000"]
    assert header_values(content, "Message-ID") == ["<m1@lan.example>"]
    assert header_values(content, "Subject") == ["hello"]


def test_sendmail_adds_date_message_id_and_from_when_missing(conf):
    r = sendmail(conf, "-f", "alice@lan.example", "bob@ext.example",
                 input=b"Subject: bare\n\nbody\n")
    assert r.returncode == 0, r
    qid, m, content = only_message(conf)
    assert len(header_values(content, "Date")) == 1
    assert email.utils.parsedate_to_datetime(header_values(content, "Date")[0])
    mid = header_values(content, "Message-ID")
    assert len(mid) == 1 and re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", mid[0]), mid
    frm = header_values(content, "From")
    assert len(frm) == 1 and "<alice@lan.example>" in frm[0], frm
    assert m["sender"] == "alice@lan.example"


def test_sendmail_with_f_and_F_sets_sender_and_from_name(conf):
    r = sendmail(conf, "-f", "alice@lan.example", "-F", "Alice Example", "bob@ext.example",
                 input=b"Subject: named\n\nbody\n")
    assert r.returncode == 0, r
    _, m, content = only_message(conf)
    assert m["sender"] == "alice@lan.example"
    frm = header_values(content, "From")
    assert len(frm) == 1 and "Alice Example" in frm[0] and "<alice@lan.example>" in frm[0], frm


def test_sendmail_F_with_special_characters_makes_one_well_formed_from(conf):
    r = sendmail(conf, "-f", "j@lan.example", "-F", 'Doe, "Johnny" J.', "bob@ext.example",
                 input=b"Subject: q\n\nbody\n")
    assert r.returncode == 0, r
    frm = header_values(only_message(conf)[2], "From")
    assert len(frm) == 1, frm
    parsed = email.utils.getaddresses(frm)
    assert parsed == [('Doe, "Johnny" J.', "j@lan.example")], (frm, parsed)


def test_sendmail_f_with_the_address_attached_works_too(conf):
    r = sendmail(conf, "-falice@lan.example", "bob@ext.example")
    assert r.returncode == 0, r
    assert only_message(conf)[1]["sender"] == "alice@lan.example"


def test_sendmail_without_f_uses_the_invoking_user_as_sender(conf):
    assert sendmail(conf, "bob@ext.example").returncode == 0
    _, m, _ = only_message(conf)
    assert m["sender"].startswith("root@") or m["sender"] == "root", m["sender"]


def test_sendmail_t_takes_recipients_from_to_cc_bcc_and_removes_bcc(conf):
    msg = (b"From: alice@lan.example\nTo: Bob <bob@ext.example>, carol@ext.example\n"
           b"Cc: dave@ext.example\nBcc: eve@ext.example,\n  frank@ext.example\n"
           b"Subject: t\n\nbody\n")
    r = sendmail(conf, "-t", input=msg)
    assert r.returncode == 0, r
    _, m, content = only_message(conf)
    assert sorted(x["address"] for x in m["recipients"]) == sorted(
        ["bob@ext.example", "carol@ext.example", "dave@ext.example", "eve@ext.example",
         "frank@ext.example"])
    assert header_values(content, "Bcc") == []
    assert b"eve@" not in content and b"frank@" not in content
    assert header_values(content, "To") == ["Bob <bob@ext.example>, carol@ext.example"]
    assert header_values(content, "Cc") == ["dave@ext.example"]


def test_sendmail_without_i_ends_input_at_a_lone_dot(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r
    _, _, content = only_message(conf)
    assert content.endswith(b"\r\nbefore\r\n"), content
    assert b"after" not in content


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_sendmail_with_i_keeps_a_lone_dot_as_text(conf, flag):
    r = sendmail(conf, flag, "bob@ext.example", input=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r
    _, _, content = only_message(conf)
    assert content.endswith(b"\r\nbefore\r\n.\r\nafter\r\n"), content


def test_sendmail_double_dash_ends_the_flags(conf):
    r = sendmail(conf, "-f", "alice@lan.example", "--", "bob@ext.example")
    assert r.returncode == 0, r
    assert only_message(conf)[1]["recipients"][0]["address"] == "bob@ext.example"


def test_sendmail_accepts_and_ignores_common_flags(conf):
    r = sendmail(conf, "-odi", "-oem", "-v", "-oi", "-odb", "bob@ext.example")
    assert r.returncode == 0, r
    only_message(conf)


def test_sendmail_crlf_input_is_not_doubled_and_a_missing_final_newline_is_added(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: crlf\r\n\r\none\r\ntwo")
    assert r.returncode == 0, r
    _, _, content = only_message(conf)
    assert b"\r\r" not in content
    assert content.endswith(b"\r\n\r\none\r\ntwo\r\n"), content


def test_sendmail_eight_bit_message_is_stored_as_8bitmime(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: 8\n\ncaf\xc3\xa9\n")
    assert r.returncode == 0, r
    qid, _, content = only_message(conf)
    assert b"caf\xc3\xa9\r\n" in content
    assert conf.envelope(qid).get("body") == "8bitmime"


def test_sendmail_line_of_998_octets_is_accepted(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: l\n\n" + b"q" * 998 + b"\n")
    assert r.returncode == 0, r
    assert b"q" * 998 + b"\r\n" in only_message(conf)[2]


def test_sendmail_large_message_is_stored_whole(conf):
    body = b"".join(b"line %06d %s\n" % (i, b"p" * 60) for i in range(20000))
    r = sendmail(conf, "bob@ext.example", input=b"Subject: big\n\n" + body)
    assert r.returncode == 0, r
    _, m, content = only_message(conf)
    assert content.endswith(body.replace(b"\n", b"\r\n"))
    assert m["size"] == len(content)


def test_sendmail_symlink_works_like_the_subcommand(conf):
    link = symlink_path("sendmail")
    assert os.path.islink(link) or os.path.isfile(link), f"{link} missing"
    r = run_bin(["-C", conf.conf, "-f", "alice@lan.example", "bob@ext.example"],
                input=MSG, argv0=link)
    assert r.returncode == 0, r
    assert only_message(conf)[1]["sender"] == "alice@lan.example"


def test_sendmail_reads_the_config_from_mailredir_config(conf):
    r = run_bin(["sendmail", "bob@ext.example"], input=MSG,
                env=base_env({"MAILREDIR_CONFIG": conf.conf}))
    assert r.returncode == 0, r
    only_message(conf)


def test_sendmail_takes_c_before_the_command(conf):
    r = run_bin(["-c", conf.conf, "sendmail", "bob@ext.example"], input=MSG)
    assert r.returncode == 0, r
    only_message(conf)


# --- -bp, -q, -bs --------------------------------------------------------------

def test_sendmail_bp_lists_the_queue(conf):
    assert sendmail(conf, "bob@ext.example").returncode == 0
    qid, _, _ = only_message(conf)
    r = sendmail(conf, "-bp", input=b"")
    assert r.returncode == 0, r
    assert qid in r.out and "bob@ext.example" in r.out, r


def test_sendmail_q_with_nothing_queued_exits_0(conf):
    r = sendmail(conf, "-q", input=b"")
    assert r.returncode == 0, r


def test_sendmail_q_with_mail_and_no_route_exits_75_and_keeps_it(conf):
    assert sendmail(conf, "bob@ext.example").returncode == 0
    before = conf.messages()
    r = sendmail(conf, "-q", input=b"")
    assert r.returncode == 75, r
    assert conf.messages() == before


def parse_replies(data):
    """SMTP replies from a byte stream: list of (code, first line)."""
    out = []
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF in the -bs output"
    for line in data.decode("utf-8", "replace").split("\r\n"):
        m = re.match(r"^(\d{3}) (.*)$", line)
        if m:
            out.append((int(m.group(1)), line))
    return out


def test_sendmail_bs_speaks_smtp_on_stdin_and_stdout(conf):
    dialogue = (b"EHLO local.example\r\nMAIL FROM:<alice@lan.example>\r\n"
                b"RCPT TO:<bob@ext.example>\r\nDATA\r\n")
    r = sendmail(conf, "-bs", input=dialogue +
                 b"Subject: bs\r\n\r\nvia -bs\r\n..dot\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r
    replies = parse_replies(r.stdout)
    codes = [c for c, _ in replies]
    assert codes == [220, 250, 250, 250, 354, 250, 221], replies
    m = QUEUED_RE.match(replies[5][1])
    assert m, replies
    content = conf.content(m.group(1))
    assert content.endswith(b"\r\n\r\nvia -bs\r\n.dot\r\n"), content
    assert b"\r\nSubject: bs\r\n" in content or content.startswith(b"Subject: bs\r\n")
    assert [x["address"] for x in conf.messages()[m.group(1)]["recipients"]] == ["bob@ext.example"]


def test_sendmail_bs_refuses_a_smuggling_attempt(conf):
    r = sendmail(conf, "-bs", input=b"EHLO l\r\nMAIL FROM:<a@lan.example>\r\nRCPT TO:<b@ext.example>\r\n"
                 b"DATA\r\nSubject: s\r\n\r\nx\n.\nMAIL FROM:<e@x.example>\r\nRCPT TO:<v@y.example>\r\n"
                 b"DATA\r\nevil\r\n.\r\nQUIT\r\n")
    replies = parse_replies(r.stdout)
    codes = [c for c, _ in replies]
    assert codes == [220, 250, 250, 250, 354, 550, 221], replies
    assert conf.messages() == {}


# --- usage and data errors ---------------------------------------------------------

def test_sendmail_without_recipients_exits_64(conf):
    r = sendmail(conf)
    assert r.returncode == 64, r
    assert r.err.strip(), "no message on stderr"
    assert conf.messages() == {}


def test_sendmail_with_an_unknown_flag_exits_64(conf):
    r = sendmail(conf, "-Z", "bob@ext.example")
    assert r.returncode == 64, r
    assert r.err.strip()
    assert conf.messages() == {}


@pytest.mark.parametrize("addr", ["not an address", "bob@", "@ext.example", "a@b@c.example",
                                  "<bob@ext.example"])
def test_sendmail_with_a_bad_recipient_exits_65(conf, addr):
    r = sendmail(conf, "bob@ext.example", addr)
    assert r.returncode == 65, r
    assert r.err.strip()
    assert conf.messages() == {}


def test_sendmail_with_a_bad_sender_exits_65(conf):
    r = sendmail(conf, "-f", "bad sender@@x", "bob@ext.example")
    assert r.returncode == 65, r
    assert conf.messages() == {}


def test_sendmail_with_nul_in_the_message_exits_65(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: nul\n\nbad\x00byte\n")
    assert r.returncode == 65, r
    assert r.err.strip()
    assert conf.messages() == {}


def test_sendmail_with_a_line_over_998_octets_exits_65(conf):
    r = sendmail(conf, "bob@ext.example", input=b"Subject: long\n\n" + b"q" * 999 + b"\n")
    assert r.returncode == 65, r
    assert conf.messages() == {}


def test_sendmail_t_without_any_recipient_header_exits_65(conf):
    r = sendmail(conf, "-t", input=b"From: a@lan.example\nSubject: none\n\nbody\n")
    assert r.returncode == 65, r
    assert conf.messages() == {}


# --- could not queue / configuration ----------------------------------------------

def test_sendmail_exits_75_when_the_spool_cannot_be_written(relay, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file\n")
    relay.spool = str(blocker / "spool")
    relay.write_config()
    r = sendmail(relay, "bob@ext.example")
    assert r.returncode == 75, r
    assert r.err.strip(), "no message on stderr"
    assert r.stdout == b""


def test_sendmail_exits_78_on_a_bad_configuration(relay):
    relay.write_config()
    with open(relay.conf, "a") as f:
        f.write("no-such-key = 1\n")
    r = sendmail(relay, "bob@ext.example")
    assert r.returncode == 78, r
    assert re.search(re.escape(relay.conf) + r":\d+: ", r.err), r


def test_sendmail_exits_78_when_the_configuration_is_missing(relay, tmp_path):
    r = run_bin(["sendmail", "-C", str(tmp_path / "missing.conf"), "bob@ext.example"], input=MSG)
    assert r.returncode == 78, r
    assert "missing.conf" in r.err


# --- ordinary users: the maildrop ---------------------------------------------------

def run_as_nobody(relay, *args, input=MSG):
    return run_bin(["sendmail", "-C", relay.conf] + list(args), input=input, user="nobody")


@needs_root
def test_ordinary_user_message_goes_to_the_maildrop_and_is_imported_at_start(make_relay,
                                                                            public_dir):
    relay = make_relay(root=public_dir)
    relay.start()        # creates the spool with its permissions
    relay.stop()
    r = run_as_nobody(relay, "bob@ext.example")
    assert r.returncode == 0, r
    drops = relay.listdir("maildrop")
    assert len(drops) == 1, drops
    assert relay.listdir("queue") == []
    relay.start()
    msgs = relay.wait_for_messages(1, timeout=30)
    (qid, m), = msgs.items()
    assert m["recipients"][0]["address"] == "bob@ext.example"
    assert relay.envelope(qid).get("uid") == "65534"
    assert b"\r\nbody line\r\n" in relay.content(qid)
    wait_until(lambda: relay.listdir("maildrop") == [], 30, what="an empty maildrop")


@needs_root
def test_ordinary_user_message_is_imported_by_a_running_daemon(make_relay, public_dir):
    relay = make_relay(root=public_dir)
    relay.start()
    r = run_as_nobody(relay, "-f", "nobody@lan.example", "bob@ext.example")
    assert r.returncode == 0, r
    msgs = relay.wait_for_messages(1, timeout=30)
    (qid, m), = msgs.items()
    assert m["sender"] == "nobody@lan.example"
    assert relay.envelope(qid).get("uid") == "65534"


@needs_root
def test_ordinary_user_bs_session_goes_through_the_maildrop(make_relay, public_dir):
    relay = make_relay(root=public_dir)
    relay.start()
    r = run_bin(["sendmail", "-C", relay.conf, "-bs"], user="nobody",
                input=b"EHLO local\r\nMAIL FROM:<nobody@lan.example>\r\nRCPT TO:<bob@ext.example>\r\n"
                      b"DATA\r\nSubject: bs as nobody\r\n\r\nvia maildrop\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r
    replies = parse_replies(r.stdout)
    assert [c for c, _ in replies] == [220, 250, 250, 250, 354, 250, 221], replies
    promised = QUEUED_RE.match(replies[5][1]).group(1)
    msgs = relay.wait_for_messages(1, timeout=30)
    (qid,) = msgs
    assert relay.content(qid).endswith(b"\r\n\r\nvia maildrop\r\n")
    assert relay.envelope(qid).get("uid") == "65534"
    assert qid == promised, f"the client was told 'queued as {promised}', the queue has {qid}"


@needs_root
def test_ordinary_user_cannot_touch_the_queue_directly(make_relay, public_dir):
    relay = make_relay(root=public_dir)
    relay.start()
    qid, _ = relay.submit()
    r = run_bin(["-c", relay.conf, "queue", "delete", qid], user="nobody")
    assert r.returncode != 0, r
    assert qid in relay.messages()


@needs_root
def test_hostile_files_in_the_maildrop_are_set_aside_and_the_daemon_keeps_serving(
        make_relay, public_dir):
    relay = make_relay(root=public_dir)
    relay.init_spool()
    md = relay.path("maildrop")
    # what any local user can put there (the directory is 1733)
    planted = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "sh", "-c",
         f"mkfifo {md}/fifo && ln -s /etc/shadow {md}/link && "
         f"printf 'mailredir-maildrop 1\\nversion 1\\nid x\\n' > {md}/garbage && "
         f"head -c 3000000 /dev/zero > {md}/zeros"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert planted.returncode == 0, planted.stdout
    relay.start()
    relay.wait_log(r"maildrop.*(fifo|link|garbage|zeros)")
    # the daemon is not stuck on the FIFO: it answers and imports a good drop
    relay.submit()
    wait_until(lambda: not {"fifo", "link", "garbage", "zeros"} & set(os.listdir(md)), 30,
               what="the planted files to be moved aside")
    assert len(relay.messages()) == 1
    assert not any(b"root:" in relay.content(q) for q in relay.messages())
