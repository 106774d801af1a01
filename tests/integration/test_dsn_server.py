"""The DSN extension on the server side (RFC 3461): EHLO offers it; MAIL's
RET and ENVID and RCPT's NOTIFY and ORCPT are accepted and kept in the
envelope as received; malformed ones are refused, and the transaction goes
on."""

import smtplib

import pytest

from conftest import make_message


def send(c, mail, rcpts, content=None):
    """MAIL line, RCPT lines, DATA: the queue id."""
    content = content or make_message()[0]
    c.expect(mail, 250, "2.1.0")
    for r in rcpts:
        c.expect(r, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(content + b".\r\n")
    r = c.reply()
    assert r.code == 250, r
    return r.first.rsplit(" ", 1)[1]


def test_ehlo_lists_dsn(relay):
    relay.start()
    with relay.connect() as c:
        r = c.ehlo()
        assert "DSN" in [line.upper() for line in r.lines[1:]], r


def test_dsn_parameters_are_kept_in_the_envelope(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        qid = send(c, "MAIL FROM:<alice@lan.example> RET=HDRS ENVID=QQ+2B314+20159", [
            "RCPT TO:<bob@ext.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Btag@ext.example",
            "RCPT TO:<carol@ext.example> NOTIFY=NEVER",
            "RCPT TO:<dave@ext.example> ORCPT=rfc822;Dave@ext.example",
            "RCPT TO:<erin@ext.example>",
        ])
        c.expect("QUIT", 221)
    env = relay.envelope(qid)
    assert env.get("ret") == "hdrs"
    assert env.get("envid") == "QQ+2B314+20159"     # as received: still xtext
    got = {r["rcpt"]: (r.get("rcpt-notify"), r.get("rcpt-orcpt")) for r in env.rcpts}
    assert got == {
        "bob@ext.example": ("success,failure", "rfc822;bob+2Btag@ext.example"),
        "carol@ext.example": ("never", None),
        "dave@ext.example": (None, "rfc822;Dave@ext.example"),
        "erin@ext.example": (None, None),
    }


def test_keywords_are_case_insensitive(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        qid = send(c, "MAIL FROM:<alice@lan.example> ret=full envid=abc",
                   ["RCPT TO:<bob@ext.example> notify=Delay,failure orcpt=RFC822;bob@ext.example"])
    env = relay.envelope(qid)
    assert env.get("ret") == "full"
    assert env.get("envid") == "abc"
    assert env.rcpts[0]["rcpt-notify"] == "failure,delay"
    assert env.rcpts[0]["rcpt-orcpt"] == "RFC822;bob@ext.example"


def test_message_without_dsn_parameters_has_no_dsn_keys(relay):
    relay.start()
    qid, _ = relay.submit()
    env = relay.envelope(qid)
    keys = {k for k, _ in env.lines}
    assert not keys & {"ret", "envid", "route", "delay-warned", "rcpt-notify", "rcpt-orcpt"}, \
        env.text()


def test_rset_forgets_the_dsn_parameters(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example> RET=FULL ENVID=first", 250, "2.1.0")
        c.expect("RCPT TO:<bob@ext.example> NOTIFY=NEVER", 250, "2.1.5")
        c.expect("RSET", 250)
        qid = send(c, "MAIL FROM:<alice@lan.example>", ["RCPT TO:<bob@ext.example>"])
    env = relay.envelope(qid)
    assert env.get("ret") is None and env.get("envid") is None
    assert "rcpt-notify" not in env.rcpts[0]


def test_smtplib_passes_dsn_options(relay):
    relay.start()
    content, token = make_message()
    s = smtplib.SMTP("127.0.0.1", relay.port, local_hostname="client.example", timeout=30)
    try:
        s.ehlo()
        assert s.has_extn("dsn")
        refused = s.sendmail("alice@lan.example", ["bob@ext.example"], content,
                             mail_options=["RET=HDRS", "ENVID=tok" + token[:8]],
                             rcpt_options=["NOTIFY=SUCCESS,DELAY",
                                           "ORCPT=rfc822;bob@ext.example"])
        assert refused == {}
    finally:
        s.quit()
    (msg,) = relay.wait_for_messages(1).values()
    env = relay.envelope(msg["id"])
    assert env.get("ret") == "hdrs" and env.get("envid") == "tok" + token[:8]
    assert env.rcpts[0]["rcpt-notify"] == "success,delay"


BAD_MAIL = [
    pytest.param("RET=XYZ", id="RET=XYZ"),
    pytest.param("RET", id="RET without value"),
    pytest.param("RET=FULL RET=HDRS", id="RET twice"),
    pytest.param("ENVID=" + "x" * 101, id="ENVID of 101 octets"),
    pytest.param("ENVID=+ZZ", id="ENVID bad xtext"),
    pytest.param("ENVID=a+0Db", id="ENVID encoding CR"),
    pytest.param("NOTIFY=NEVER", id="NOTIFY on MAIL"),
]


@pytest.mark.parametrize("param", BAD_MAIL)
def test_malformed_mail_parameter_is_refused(relay, param):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        r = c.expect(f"MAIL FROM:<alice@lan.example> {param}", 555, "5.5.4")
        assert "MAIL FROM parameter" in r.text
        # no transaction was started; a good MAIL is still welcome
        c.expect("RCPT TO:<bob@ext.example>", 503)
        c.expect("MAIL FROM:<alice@lan.example> ENVID=" + "x" * 100, 250, "2.1.0")


BAD_RCPT = [
    pytest.param("NOTIFY=NEVER,SUCCESS", id="NEVER with SUCCESS"),
    pytest.param("NOTIFY=SUCCESS,NEVER", id="SUCCESS with NEVER"),
    pytest.param("NOTIFY=ALWAYS", id="unknown NOTIFY"),
    pytest.param("NOTIFY=", id="empty NOTIFY"),
    pytest.param("NOTIFY=DELAY NOTIFY=DELAY", id="NOTIFY twice"),
    pytest.param("ORCPT=bob@ext.example", id="ORCPT without type"),
    pytest.param("ORCPT=rfc822;", id="ORCPT without address"),
    pytest.param("ORCPT=rfc822;bob+ZZ@ext.example", id="ORCPT bad xtext"),
    pytest.param("ORCPT=rfc822;" + "x" * 494, id="ORCPT of 501 octets"),
    pytest.param("RET=FULL", id="RET on RCPT"),
]


@pytest.mark.parametrize("param", BAD_RCPT)
def test_malformed_rcpt_parameter_is_refused(relay, param):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@lan.example>", 250, "2.1.0")
        r = c.expect(f"RCPT TO:<bob@ext.example> {param}", 555, "5.5.4")
        assert "RCPT TO parameter" in r.text
        # the transaction goes on without that recipient
        c.expect("RCPT TO:<carol@ext.example> ORCPT=rfc822;" + "x" * 493, 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(make_message()[0] + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        qid = r.first.rsplit(" ", 1)[1]
    assert [x["rcpt"] for x in relay.envelope(qid).rcpts] == ["carol@ext.example"]


def test_pipelined_dsn_commands_get_their_replies_in_order(relay):
    relay.start()
    content, _ = make_message()
    with relay.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<alice@lan.example> RET=HDRS\r\n"
               "RCPT TO:<bob@ext.example> NOTIFY=NEVER,DELAY\r\n"
               "RCPT TO:<carol@ext.example> NOTIFY=DELAY\r\n"
               "DATA\r\n")
        codes = [r.code for r in c.replies(4)]
        assert codes == [250, 555, 250, 354]
        c.send(content + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        qid = r.first.rsplit(" ", 1)[1]
    env = relay.envelope(qid)
    assert [(x["rcpt"], x.get("rcpt-notify")) for x in env.rcpts] == [("carol@ext.example", "delay")]
