"""Bounces and the DSN extension (issue 4): RFC 3464 reports for a 550 at
RCPT and for max-age, none for the null sender or NOTIFY=NEVER, RET=HDRS and
RET=FULL, a "relayed" report for NOTIFY=SUCCESS through a gateway without
DSN, a delay warning, bounce = none / ADDRESS; and NOTIFY/RET/ENVID/ORCPT
passed on to a real gateway (Postfix) that offers DSN.

Reports are read as they arrive at the gateway (they go back through the
route their message took) and checked with Python's email package.
"""

import email
import email.policy
import time

import pytest

from conftest import dot_stuff, make_message, new_token
from fault_peer import DEFAULT_EHLO, FaultPeer, Script
from gateway import Gateway
from test_forwarding_helpers import SENDER, peer_route, wait_delivery, wait_state

NOUSER = "nouser@ext.example"
REFUSAL = "550 5.1.1 <nouser@ext.example>: Recipient address rejected: no such user"


def submit(relay, rcpts, sender=SENDER, mail_params="", rcpt_params=None, content=None):
    """One message over SMTP with DSN parameters; returns (qid, content, token)."""
    if content is None:
        content, token = make_message(sender=sender or "mailer-daemon@lan.example", to=rcpts[0])
    else:
        token = None
    with relay.connect() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>{mail_params}", 250)
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>{(rcpt_params or {}).get(r, '')}", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(content) + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        qid = r.first.split()[-1]
        c.expect("QUIT", 221)
    return qid, content, token


def reports_at(peer, to=SENDER):
    """Messages with the null sender the peer accepted for `to`."""
    return [m for m in list(peer.messages) if m.mail_from == "" and to in m.rcpt_tos]


def wait_report(peer, to=SENDER, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = reports_at(peer, to)
        if got:
            return got[0]
        time.sleep(0.05)
    pytest.fail(f"no report for {to} reached the peer; it got {list(peer.messages)}")


def parts(report_bytes):
    """(the whole report, [its parts], the delivery-status part's field blocks)."""
    m = email.message_from_bytes(report_bytes, policy=email.policy.default)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    ps = list(m.iter_parts())
    ds = ps[1]
    assert ds.get_content_type() == "message/delivery-status"
    # per-message fields, then one block per recipient (the email package
    # gives them as sub-messages of the message/delivery-status part)
    blocks = [dict(b.items()) for b in ds.get_payload()]
    return m, ps, blocks


@pytest.fixture
def peer():
    p = FaultPeer(Script(rcpts={NOUSER: REFUSAL}))
    p.start()
    yield p
    p.stop()


# --- failures ------------------------------------------------------------------------

def test_550_at_rcpt_sends_an_rfc3464_report_to_the_sender_over_the_same_route(peer, relay):
    relay.extra = peer_route(peer)
    relay.start()
    ok = f"ok-{new_token()[:8]}@ext.example"
    qid, content, token = submit(relay, [ok, NOUSER])
    peer.wait_for(rcpt=ok)
    report = wait_report(peer)
    m, ps, blocks = parts(report.data)
    assert m["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.test.example"
    assert m["To"].addresses[0].addr_spec == SENDER
    assert m["Auto-Submitted"] == "auto-replied"
    assert "Undelivered" in m["Subject"]
    assert ps[0].get_content_type() == "text/plain"
    assert NOUSER in ps[0].get_content()
    per_msg, rcpt = blocks[0], blocks[1:]
    assert per_msg["Reporting-MTA"] == "dns; mx.test.example"
    assert len(rcpt) == 1, blocks                       # only the failed one
    assert rcpt[0]["Final-Recipient"] == f"rfc822; {NOUSER}"
    assert rcpt[0]["Action"] == "failed"
    assert rcpt[0]["Status"] == "5.1.1"
    assert rcpt[0]["Diagnostic-Code"] == f"smtp; {REFUSAL}"
    assert rcpt[0]["Remote-MTA"] == "dns; 127.0.0.1"
    # no RET: the original's header only
    assert ps[2].get_content_type() == "text/rfc822-headers"
    returned = ps[2].get_payload()
    assert isinstance(returned, str), returned
    assert f"Message-ID: <{token}@lan.example>" in returned
    assert f"token {token}" not in returned
    # the original stays, failed for that recipient, sent for the other
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed")
    by = {r["address"]: r for r in e["recipients"]}
    assert by[ok]["status"] == "sent" and by[NOUSER]["status"] == "failed"
    relay.wait_log(rf"{qid}: failed notification: [0-9A-F]{{18}} to <{SENDER}> \(1 recipient\)")


def test_no_report_for_the_null_sender_nor_for_notify_never(peer, relay):
    relay.extra = peer_route(peer)
    relay.start()
    q1, _, _ = submit(relay, [NOUSER], sender="")
    other = "never@ext.example"
    peer.set_script(Script(rcpts={NOUSER: REFUSAL, other: REFUSAL}))
    q2, _, _ = submit(relay, [other], rcpt_params={other: " NOTIFY=NEVER"})
    for q, r in ((q1, NOUSER), (q2, other)):
        wait_delivery(relay, q, r, "failed")
        wait_state(relay, q, lambda e: e and e["state"] == "failed")
    time.sleep(1.0)
    assert not [m for m in peer.messages if m.mail_from == ""], list(peer.messages)
    assert "notification" not in relay.log_text()


def test_ret_full_returns_the_whole_message_and_ret_hdrs_the_header(peer, relay):
    relay.extra = peer_route(peer)
    relay.start()
    q1, _, t1 = submit(relay, [NOUSER], mail_params=" RET=FULL ENVID=env+2Bone")
    full = wait_report(peer)
    m, ps, blocks = parts(full.data)
    assert ps[2].get_content_type() == "message/rfc822"
    inner = ps[2].get_payload()[0]
    assert inner["Message-ID"] == f"<{t1}@lan.example>"
    assert f"token {t1}" in inner.get_content()
    assert blocks[0]["Original-Envelope-Id"] == "env+one"
    n = len(reports_at(peer))
    q2, _, t2 = submit(relay, [NOUSER], mail_params=" RET=HDRS")
    deadline = time.monotonic() + 20
    while len(reports_at(peer)) == n and time.monotonic() < deadline:
        time.sleep(0.05)
    hdrs = reports_at(peer)[-1]
    m, ps, blocks = parts(hdrs.data)
    assert ps[2].get_content_type() == "text/rfc822-headers"
    assert t2.encode() in hdrs.data and f"token {t2}".encode() not in hdrs.data


def test_max_age_fails_what_is_still_deferred_and_reports_it(relay):
    slow = "slow@ext.example"
    p = FaultPeer(Script(rcpts={slow: "451 4.2.0 mailbox busy, try later"}))
    p.start()
    try:
        relay.extra = peer_route(p, retry="1s", retry_max="1s", max_age="2s", delay_warning="0")
        relay.start()
        qid, _, _ = submit(relay, [slow], rcpt_params={slow: " ORCPT=rfc822;Slow+2Bx@ext.example"})
        report = wait_report(p, timeout=30)
        _m, _ps, blocks = parts(report.data)
        r = blocks[1]
        assert r["Action"] == "failed"
        assert r["Status"] == "4.2.0"
        assert r["Diagnostic-Code"].startswith("smtp; ")
        assert "gave up after max-age" in r["Diagnostic-Code"] or "451 4.2.0" in r["Diagnostic-Code"]
        assert r["Original-Recipient"].replace("; ", ";") == "rfc822;Slow+x@ext.example"
        e = wait_state(relay, qid, lambda e: e and e["state"] == "failed")
        assert e["recipients"][0]["reply"].startswith("gave up after max-age: 451 4.2.0")
    finally:
        p.stop()


def test_a_delay_warning_goes_once_after_delay_warning(relay):
    slow = "slow@ext.example"
    p = FaultPeer(Script(rcpts={slow: "451 4.2.0 mailbox busy, try later"}))
    p.start()
    try:
        relay.extra = peer_route(p, retry="1s", retry_max="1s", delay_warning="1s")
        relay.start()
        qid, _, _ = submit(relay, [slow])
        report = wait_report(p, timeout=30)
        m, _ps, blocks = parts(report.data)
        assert "Delayed" in m["Subject"]
        assert blocks[1]["Action"] == "delayed"
        assert blocks[1]["Status"] == "4.2.0"
        assert "Will-Retry-Until" in blocks[1]
        e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 4, timeout=30)
        assert e["state"] == "deferred"
        assert len(reports_at(p)) == 1
    finally:
        p.stop()


def test_bounce_none_and_bounce_address(peer, relay):
    relay.extra = peer_route(peer, bounce="none")
    relay.start()
    q1, _, _ = submit(relay, [NOUSER])
    wait_state(relay, q1, lambda e: e and e["state"] == "failed")
    relay.stop()
    relay.extra = peer_route(peer, bounce="postmaster@lan.example")
    relay.start()
    q2, _, _ = submit(relay, [NOUSER])
    report = wait_report(peer, to="postmaster@lan.example")
    assert parts(report.data)[2][1]["Action"] == "failed"
    assert not reports_at(peer, SENDER)


# --- success and the DSN extension -----------------------------------------------------

def test_notify_success_through_a_gateway_without_dsn_gets_a_relayed_report(peer, relay):
    relay.extra = peer_route(peer)
    relay.start()
    ok = f"ok-{new_token()[:8]}@ext.example"
    submit(relay, [ok], rcpt_params={ok: " NOTIFY=SUCCESS,FAILURE"})
    got = peer.wait_for(rcpt=ok)
    assert "NOTIFY" not in got.rcpt_params.get(ok, "")      # the peer offers no DSN
    report = wait_report(peer)
    m, _ps, blocks = parts(report.data)
    assert blocks[1]["Action"] == "relayed"
    assert blocks[1]["Status"] == "2.0.0"
    assert "Delivery" in m["Subject"] or "Success" in m["Subject"]


@pytest.fixture(scope="module")
def dsn_gateway():
    g = Gateway(users={"joe@isp.example": "Dsn-pass-3k"})
    try:
        g.start()
        # the capture behind Postfix offers DSN, so Postfix passes the parameters on
        g.capture.peer.set_script(Script(banner="220 capture.test.example ESMTP",
                                         ehlo=DEFAULT_EHLO + ("DSN",)))
        yield g
    finally:
        problems = g.stop()
        g.remove()
    if problems:
        pytest.fail("; ".join(problems))


def test_dsn_parameters_reach_a_gateway_that_offers_dsn(dsn_gateway, relay):
    gw = dsn_gateway
    relay.extra = gw.route(user="joe@isp.example", reply_timeout="5s")
    relay.start()
    rcpt = f"d-{new_token()[:8]}@ext.example"
    qid, _, _ = submit(relay, [rcpt], mail_params=" RET=HDRS ENVID=QQ314159",
                       rcpt_params={rcpt: f" NOTIFY=SUCCESS,DELAY ORCPT=rfc822;{rcpt}"})
    got = gw.wait_for_message(rcpt=rcpt)
    params = got.peer_message.mail_params.upper()
    assert "RET=HDRS" in params and "ENVID=QQ314159" in params, params
    rp = got.peer_message.rcpt_params[rcpt].upper()
    assert "NOTIFY=SUCCESS,DELAY" in rp and f"ORCPT=RFC822;{rcpt.upper()}" in rp, rp
    wait_delivery(relay, qid, rcpt, "sent")
    # the gateway reports success itself: no "relayed" report from us
    time.sleep(1.0)
    assert "notification" not in relay.log_text()


def test_a_real_gateways_550_at_rcpt_comes_back_as_a_report_through_it(relay):
    """Postfix refuses one recipient at RCPT (an access map); the report
    goes back to the sender through the same Postfix, to its capture."""
    refused = "gone@ext.example"
    g = Gateway(users={"joe@isp.example": "Dsn-pass-3k"}, main={
        "smtpd_recipient_restrictions":
            f"check_recipient_access inline:{{ {{ {refused} = 550 5.1.1 mailbox {refused} is gone }} }}"})
    try:
        g.start()
        relay.extra = g.route(user="joe@isp.example", reply_timeout="5s")
        relay.start()
        ok = f"ok-{new_token()[:8]}@ext.example"
        qid, _, token = submit(relay, [ok, refused], mail_params=" ENVID=real+2Dgw")
        g.wait_for_message(rcpt=ok)
        report = g.wait_for_message(rcpt=SENDER)
        print(f"--- the report as the capture received it\n{report.data.decode()}")
        assert report.mail_from == ""
        m, ps, blocks = parts(report.original)
        assert blocks[0]["Original-Envelope-Id"] == "real-gw"
        assert [b["Final-Recipient"] for b in blocks[1:]] == [f"rfc822; {refused}"]
        assert blocks[1]["Action"] == "failed" and blocks[1]["Status"] == "5.1.1"
        assert blocks[1]["Diagnostic-Code"].startswith("smtp; 550 5.1.1 ")
        assert f"mailbox {refused} is gone" in blocks[1]["Diagnostic-Code"]
        assert f"Message-ID: <{token}@lan.example>" in ps[2].get_payload()
        e = wait_state(relay, qid, lambda e: e and e["state"] == "failed")
        assert {r["address"]: r["status"] for r in e["recipients"]} == {ok: "sent",
                                                                        refused: "failed"}
    finally:
        problems = g.stop()
        print(f"--- maillog\n{g.log()[-5000:]}")
        g.remove()
    assert not problems, problems
