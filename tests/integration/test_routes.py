"""Routes and identities (issue 4): several [route] sections, each through
its own real gateway (two private Postfix + Dovecot instances with different
accounts), chosen by recipient domain or by sender; a message split across
routes; no route at all; `mailredir route`; and the header identity each
route gives (header-from = rewrite, from-map), checked with Python's email
package on what the gateway's capture received.
"""

import email
import email.policy
import os
import re
import signal

import pytest

from conftest import new_token, run_bin
from gateway import Gateway
from test_forwarding_helpers import (SENDER, delivery_lines, rcpt_status, wait_delivery,
                                     wait_state)

ISP_USER, ISP_PASS = "joe@isp.example", "Isp-pass-4hT9x"
OTHER_USER, OTHER_PASS = "ann@other.example", "Other-pass-8kQ2w"
KEYS = dict(reply_timeout="5s", connect_timeout="3s")


def _gateway(users):
    g = Gateway(users=users)
    try:
        g.start()
    except BaseException:
        g.remove()
        raise
    return g


@pytest.fixture(scope="module")
def gws():
    """(isp, other): two gateways, one account each."""
    isp = _gateway({ISP_USER: ISP_PASS})
    try:
        other = _gateway({OTHER_USER: OTHER_PASS})
    except BaseException:
        isp.stop()
        isp.remove()
        raise
    yield isp, other
    problems = []
    for g in (isp, other):
        g.begin_stop()
    for g in (isp, other):
        problems += g.stop()
        print(f"--- maillog of {g.root}\n{g.log()[-20000:]}")
        g.remove()
    if problems:
        pytest.fail("; ".join(problems))


def isp_route(gw, **keys):
    return gw.route(user=ISP_USER, name="isp", **KEYS, **keys)


def other_route(gw, **keys):
    return gw.route(user=OTHER_USER, name="other", **KEYS, **keys)


def tag():
    return new_token()[:10]


def message(sender=SENDER, to="bob@ext.example", headers=None, from_header=None):
    """A CRLF message; from_header replaces "From: <sender>"; returns (bytes, token)."""
    token = new_token()
    lines = [from_header or f"From: <{sender}>", f"To: <{to}>",
             f"Subject: route test {token}", f"Message-ID: <{token}@lan.example>"]
    lines += headers or []
    lines += ["", f"token {token}", f"END-{token}"]
    return ("\r\n".join(lines) + "\r\n").encode(), token


def parsed(captured):
    return email.message_from_bytes(captured.original, policy=email.policy.default)


# --- choosing a route ----------------------------------------------------------------

def test_recipient_domains_choose_the_route_and_its_account(gws, relay):
    isp, other = gws
    relay.extra = isp_route(isp) + other_route(other, domains="dogers.com .example.net")
    relay.start()
    t = tag()
    exact, sub, parent, rest = (f"a-{t}@dogers.com", f"b-{t}@mx.sub.example.net",
                                f"c-{t}@example.net", f"d-{t}@ext.example")
    ids = {}
    for rcpt in (exact, sub, parent, rest):
        ids[rcpt], _ = relay.submit(message(to=rcpt)[0], rcpts=(rcpt,))
    for rcpt in (exact, sub, parent):
        got = other.wait_for_message(rcpt=rcpt)
        assert got.mail_from == OTHER_USER
        assert got.sasl_username == OTHER_USER
        assert wait_delivery(relay, ids[rcpt], rcpt, "sent")["route"] == "other"
    got = isp.wait_for_message(rcpt=rest)
    assert got.mail_from == ISP_USER
    assert wait_delivery(relay, ids[rest], rest, "sent")["route"] == "isp"
    # nothing went the wrong way
    assert not [m for m in other.capture.messages if rest in m.rcpt_tos]
    assert not [m for m in isp.capture.messages if set(m.rcpt_tos) & {exact, sub, parent}]


def test_a_domain_is_not_matched_by_a_longer_name_or_a_subdomain_without_the_dot(gws, relay):
    isp, other = gws
    relay.extra = isp_route(isp) + other_route(other, domains="dogers.com")
    relay.start()
    t = tag()
    for rcpt in (f"x-{t}@sub.dogers.com", f"y-{t}@notdogers.com"):
        qid, _ = relay.submit(message(to=rcpt)[0], rcpts=(rcpt,))
        isp.wait_for_message(rcpt=rcpt)
        assert wait_delivery(relay, qid, rcpt, "sent")["route"] == "isp"


def test_sender_route_gives_the_sender_its_own_account(gws, relay):
    isp, other = gws
    relay.extra = isp_route(isp) + other_route(other, senders="@sales.lan.example")
    relay.start()
    t = tag()
    sales, plain = f"s-{t}@ext.example", f"p-{t}@ext.example"
    q1, _ = relay.submit(message(sender="carl@sales.lan.example", to=sales)[0],
                         sender="carl@sales.lan.example", rcpts=(sales,))
    q2, _ = relay.submit(message(to=plain)[0], rcpts=(plain,))
    got = other.wait_for_message(rcpt=sales)
    assert got.mail_from == OTHER_USER and got.sasl_username == OTHER_USER
    d = wait_delivery(relay, q1, sales, "sent")
    assert (d["route"], d["from"], d["envfrom"]) == ("other", "carl@sales.lan.example",
                                                     OTHER_USER)
    assert isp.wait_for_message(rcpt=plain).mail_from == ISP_USER
    assert wait_delivery(relay, q2, plain, "sent")["route"] == "isp"


def test_a_message_split_across_routes_keeps_a_status_per_recipient(gws, relay):
    """One share delivered, the other deferred (its account's password is
    wrong): queue --json shows each recipient with its own route and status."""
    isp, other = gws
    relay.extra = isp_route(isp) + other_route(other, domains="dogers.com",
                                               password="wrong-password")
    relay.start()
    t = tag()
    sent, waits = f"s-{t}@ext.example", f"w-{t}@dogers.com"
    qid, _ = relay.submit(message(to=sent)[0], rcpts=(sent, waits))
    got = isp.wait_for_message(rcpt=sent)
    assert got.rcpt_tos == [sent]
    e = wait_state(relay, qid, lambda e: e and e["attempts"] >= 1)
    by = {r["address"]: r for r in e["recipients"]}
    assert (by[sent]["route"], by[sent]["status"]) == ("isp", "sent")
    assert (by[waits]["route"], by[waits]["status"]) == ("other", "deferred")
    assert "authentication refused" in by[waits]["reply"] and "535 5.7.8" in by[waits]["reply"]
    assert e["state"] == "deferred"
    # the sent recipient is not sent again on the next attempt
    relay.extra = isp_route(isp) + other_route(other, domains="dogers.com")
    mark = relay.mark()
    relay.write_config()
    relay.signal(signal.SIGHUP)
    relay.wait_log("configuration reloaded", since=mark)
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert other.wait_for_message(rcpt=waits).mail_from == OTHER_USER
    assert len([m for m in isp.capture.messages if sent in m.rcpt_tos]) == 1
    wait_state(relay, qid, lambda e: e is None, what="the message to leave the spool")


def test_no_matching_route_and_no_default_keeps_the_message_queued_with_the_reason(gws, relay):
    _isp, other = gws
    relay.extra = other_route(other, domains="dogers.com")
    relay.start()
    rcpt = f"n-{tag()}@ext.example"
    qid, _ = relay.submit(message(to=rcpt)[0], rcpts=(rcpt,))
    relay.wait_log(rf"{qid}: 1 recipient not sent: no route takes it")
    e = wait_state(relay, qid, lambda e: e and e["recipients"][0]["reply"])
    r = e["recipients"][0]
    assert (r["status"], r["route"]) == ("pending", None)
    assert r["reply"].startswith("no route: no route's domains or senders match"), r
    assert "no default route" in r["reply"]
    assert e["state"] == "queued" and e["attempts"] == 0
    assert not delivery_lines(relay, qid)
    # flush cannot deliver it either: exit 75, still queued, not failed
    f = relay.cli("flush")
    assert f.returncode == 75, f
    assert relay.messages()[qid]["state"] == "queued"


def test_several_messages_and_a_split_one_share_one_connection_per_route(gws, relay):
    """Queued while no daemon runs, then one flush: each gateway sees one
    connection carrying all of its route's messages."""
    isp, other = gws
    relay.extra = isp_route(isp) + other_route(other, domains="dogers.com")
    relay.init_spool()
    t = tag()
    rcpts = [f"m{i}-{t}@ext.example" for i in range(3)] + [f"m{i}-{t}@dogers.com"
                                                          for i in range(3)]
    for i in range(3):
        content, _ = message(to=rcpts[i])
        r = run_bin(["-c", relay.conf, "sendmail", "-f", SENDER, rcpts[i], rcpts[i + 3]],
                    input=content)
        assert r.returncode == 0, r
    before = {g: len(re.findall(r"postfix/submission/smtpd\[\d+\]: connect from", g.log()))
              for g in (isp, other)}
    f = relay.cli("flush")
    assert f.returncode == 0, f
    for i in range(3):
        isp.wait_for_message(rcpt=rcpts[i])
        other.wait_for_message(rcpt=rcpts[i + 3])
    for g in (isp, other):
        after = len(re.findall(r"postfix/submission/smtpd\[\d+\]: connect from", g.log()))
        assert after - before[g] == 1, g.log()[-3000:]


# --- mailredir route -------------------------------------------------------------------

def test_route_command_names_route_gateway_sender_and_identity(gws, relay, tmp_path):
    isp, other = gws
    fmap = tmp_path / "from-map"
    fmap.write_text("# per correspondent\nbob@dogers.com  shop-dogers@me.example\n")
    relay.extra = (isp_route(isp, header_from="rewrite") +
                   other_route(other, domains="dogers.com", from_map=str(fmap)) +
                   "[route sales]\nsmarthost = 127.0.0.1:2525\ntls = none\n"
                   "senders = @sales.lan.example\n")
    relay.write_config()
    r = relay.cli("route", "bob@dogers.com", "x@ext.example", "y@ext.example",
                  "-f", "carl@sales.lan.example")
    assert r.returncode == 0, r
    blocks = r.out.strip().split("\n\n")
    assert len(blocks) == 3, r.out
    b0, b1, b2 = blocks
    assert re.search(r"^route: +other \(", b0, re.M), b0
    assert "recipient domain dogers.com is in its domains (dogers.com)" in b0
    assert f"gateway:       127.0.0.1:{other.submission_port}, tls=starttls, user={OTHER_USER}" in b0
    assert f"envelope-from: {OTHER_USER} (the route's account)" in b0
    assert "header-from:   shop-dogers@me.example" in b0 and "line 2" in b0
    assert re.search(r"^route: +sales \(", b1, re.M), b1
    assert "sender carl@sales.lan.example is in its senders (@sales.lan.example)" in b1
    assert "envelope-from: carl@sales.lan.example (the message's own sender)" in b1
    assert "header-from:   kept as the message has it" in b1
    assert b2.startswith("address:       y@ext.example"), b2
    # without -f the sender route cannot apply: the default route takes it
    r = relay.cli("route", "x@ext.example")
    assert r.returncode == 0, r
    assert re.search(r"^route: +isp \(", r.out, re.M), r.out
    assert "the default route" in r.out
    assert f"header-from:   {ISP_USER}, with the original display name" in r.out
    assert "bounces:       to the sender, through route isp" in r.out
    # a report (-f '<>') keeps the null sender
    r = relay.cli("route", "x@ext.example", "-f", "<>")
    assert "envelope-from: <> (a report keeps the null sender)" in r.out, r.out
    assert "bounces:       none (the message is itself a report)" in r.out


def test_route_command_without_a_match_exits_69_and_says_why(gws, relay):
    _isp, other = gws
    relay.extra = other_route(other, domains="dogers.com")
    relay.write_config()
    r = relay.cli("route", "x@ext.example")
    assert r.returncode == 69, r
    assert "route:         none: no route's domains or senders match x@ext.example" in r.out
    assert "the message would stay queued" in r.out
    assert relay.cli("route").returncode == 64
    assert relay.cli("route", "not an address").returncode == 65


def test_check_reports_a_bad_domain_sender_and_header_from_without_an_account(relay):
    relay.extra = ("[route a]\nsmarthost = 127.0.0.1:2525\ndomains = ok.example bad_domain\n"
                   "senders = @x nobody\nheader-from = rewrite\n")
    relay.write_config()
    r = relay.cli("check")
    assert r.returncode == 78, r
    text = r.err
    assert "'bad_domain' is not a recipient domain" in text, text
    assert "senders: 'nobody' is not a sender" in text, text
    assert "header-from = rewrite needs the account's address" in text, text


# --- identities ------------------------------------------------------------------------

def test_header_from_rewrite_keeps_the_display_name_and_moves_the_original_to_reply_to(
        gws, relay):
    isp, _other = gws
    relay.extra = isp_route(isp, header_from="rewrite")
    relay.start()
    rcpt = f"r-{tag()}@ext.example"
    # "Jürgen Müller" as an encoded word, and a long subject the header keeps
    name = "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?="
    content, token = message(to=rcpt, from_header=f"From: {name} <{SENDER}>")
    relay.submit(content, rcpts=(rcpt,))
    got = isp.wait_for_message(rcpt=rcpt)
    m = parsed(got)
    assert m["From"].addresses[0].addr_spec == ISP_USER
    assert m["From"].addresses[0].display_name == "Jürgen Müller"
    assert m["Reply-To"].addresses[0].addr_spec == SENDER
    assert m["Reply-To"].addresses[0].display_name == "Jürgen Müller"
    assert name.encode() in got.original            # the encoded word, untouched
    assert f"token {token}\r\nEND-{token}\r\n".encode() in got.original
    assert got.original.count(b"\r\nFrom: ") + got.original.startswith(b"From: ") == 1


def test_header_from_rewrite_leaves_an_existing_reply_to(gws, relay):
    isp, _other = gws
    relay.extra = isp_route(isp, header_from="rewrite")
    relay.start()
    rcpt = f"r-{tag()}@ext.example"
    content, _ = message(to=rcpt, from_header=f'From: "Smith, Alice" <{SENDER}>',
                         headers=["Reply-To: Team <team@lan.example>"])
    relay.submit(content, rcpts=(rcpt,))
    m = parsed(isp.wait_for_message(rcpt=rcpt))
    assert m["From"].addresses[0].addr_spec == ISP_USER
    assert m["From"].addresses[0].display_name == "Smith, Alice"
    assert [a.addr_spec for a in m["Reply-To"].addresses] == ["team@lan.example"]
    assert len(m.get_all("Reply-To")) == 1


def test_from_map_gives_each_correspondent_an_identity_and_star_for_several(gws, relay,
                                                                            tmp_path):
    isp, _other = gws
    t = tag()
    bob, carol, dave = f"bob-{t}@ext.example", f"carol-{t}@ext.example", f"dave-{t}@ext.example"
    fmap = tmp_path / "from-map"
    fmap.write_text(f"{bob}   for-bob@me.example\n"
                    f"{carol} for-carol@me.example\n"
                    "*       me@me.example\n")
    relay.extra = isp_route(isp, from_map=str(fmap))
    relay.start()
    # bob: his own address; an existing Reply-To is replaced too
    content, _ = message(to=bob, from_header=f"From: Alice <{SENDER}>",
                         headers=[f"Reply-To: <{SENDER}>"])
    relay.submit(content, rcpts=(bob,))
    m = parsed(isp.wait_for_message(rcpt=bob))
    assert (m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec) == \
        ("Alice", "for-bob@me.example")
    assert [a.addr_spec for a in m["Reply-To"].addresses] == ["for-bob@me.example"]
    # carol: hers, and no Reply-To is added
    relay.submit(message(to=carol)[0], rcpts=(carol,))
    m = parsed(isp.wait_for_message(rcpt=carol))
    assert m["From"].addresses[0].addr_spec == "for-carol@me.example"
    assert m["Reply-To"] is None
    # dave (no entry) -> "*"; and a message to bob and carol together -> "*"
    relay.submit(message(to=dave)[0], rcpts=(dave,))
    assert parsed(isp.wait_for_message(rcpt=dave))["From"].addresses[0].addr_spec == \
        "me@me.example"
    qid, _ = relay.submit(message(to=bob)[0], rcpts=(bob, carol))
    both = [m for m in isp.capture.peer.wait_for(rcpt=carol, n=2)][-1]
    assert set(both.rcpt_tos) == {bob, carol}
    m = email.message_from_bytes(both.data, policy=email.policy.default)
    assert m["From"].addresses[0].addr_spec == "me@me.example"
    assert wait_delivery(relay, qid, bob, "sent")["envfrom"] == ISP_USER


def test_a_bad_from_map_is_a_configuration_error_with_its_line(relay, tmp_path):
    fmap = tmp_path / "from-map"
    fmap.write_text("ok@ext.example me@me.example\nbroken-line\n")
    relay.extra = f"[route a]\nsmarthost = 127.0.0.1:2525\nfrom-map = {fmap}\n"
    relay.write_config()
    r = relay.cli("check")
    assert r.returncode == 78, r
    assert f"{fmap}:2:" in r.err, r.err


def test_flush_route_tries_only_that_routes_recipients(relay):
    """Two routes, one message split across them, queued with no daemon:
    `flush b` sends b's share alone; a plain flush then sends the rest."""
    from fault_peer import FaultPeer, Script
    from test_forwarding_helpers import peer_route
    pa, pb = FaultPeer(Script()), FaultPeer(Script())
    pa.start()
    pb.start()
    try:
        relay.extra = peer_route(pa, name="a") + peer_route(pb, name="b", domains="dogers.com")
        relay.init_spool()
        t = tag()
        ra, rb = f"x-{t}@ext.example", f"y-{t}@dogers.com"
        r = run_bin(["-c", relay.conf, "sendmail", "-f", SENDER, ra, rb],
                    input=message(to=ra)[0])
        assert r.returncode == 0, r
        f = relay.cli("flush", "b")
        assert f.returncode == 75, f                 # a's share is still queued
        assert pb.wait_for(rcpt=rb).rcpt_tos == [rb]
        assert not pa.sessions
        (e,) = relay.messages().values()
        assert rcpt_status(e) == {ra: ("pending", None), rb: ("sent", rcpt_status(e)[rb][1])}
        assert relay.cli("flush", "nosuch").returncode == 64
        f = relay.cli("flush")
        assert f.returncode == 0, f
        assert pa.wait_for(rcpt=ra).rcpt_tos == [ra]
        assert len([m for m in pb.messages if rb in m.rcpt_tos]) == 1
    finally:
        pa.stop()
        pb.stop()
