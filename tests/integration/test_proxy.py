"""Proxy mode (issue 4): `serve --proxy` stores each message first, then
forwards it while the client waits, and the client's reply to DATA is the
gateway's verdict: 250 after a real Postfix took it, the gateway's 550
(the message kept as failed, no bounce: the client heard the refusal), and
451 when the gateway does not answer (the message stays queued and goes
out on the next try).
"""

import re
import time

import pytest

from conftest import dot_stuff, make_message, new_token
from fault_peer import FaultPeer, Reply, Script
from gateway import Gateway, module_gateway  # noqa: F401
from test_forwarding_helpers import SENDER, delivery_lines, peer_route, wait_state

REFUSAL = "550 5.1.1 <nouser@ext.example>: Recipient address rejected: no such user"


def send(relay, rcpts, sender=SENDER, timeout=30):
    """One message; returns (the reply to the final dot, the time it took, token)."""
    content, token = make_message(sender=sender, to=rcpts[0])
    with relay.connect(timeout=timeout) as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>", 250)
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>", 250)
        c.expect("DATA", 354)
        t0 = time.monotonic()
        c.send(dot_stuff(content) + b".\r\n")
        reply = c.reply(timeout=timeout)
        took = time.monotonic() - t0
        c.expect("QUIT", 221)
    return reply, took, token


def test_proxy_passes_the_gateways_250_after_the_message_reached_it(module_gateway, relay):
    gw = module_gateway
    relay.serve_args = ["--proxy"]
    relay.extra = gw.route(user="joe", reply_timeout="5s")
    relay.start()
    rcpt = f"p-{new_token()[:8]}@ext.example"
    reply, _took, token = send(relay, [rcpt])
    assert reply.code == 250 and reply.enhanced == "2.0.0", reply
    m = re.match(r"250 2\.0\.0 Ok: delivered as ([0-9A-F]{18})$", reply.first)
    assert m, reply
    qid = m.group(1)
    # by the time the client heard 250 the gateway had it: the delivery line
    # is already in the log and the message has left the spool
    d = [x for x in delivery_lines(relay, qid) if x["status"] == "sent"]
    assert d and d[0]["to"] == rcpt, relay.log_text()
    assert qid not in relay.messages()
    assert token.encode() in gw.wait_for_message(rcpt=rcpt).data


@pytest.fixture
def refusing(relay):
    """A relay in proxy mode whose gateway refuses nouser@ext.example."""
    peer = FaultPeer(Script(rcpts={"nouser@ext.example": REFUSAL}))
    peer.start()
    relay.serve_args = ["--proxy"]
    relay.extra = peer_route(peer)
    relay.start()
    yield relay, peer
    peer.stop()


def test_proxy_passes_a_550_on_keeps_the_message_failed_and_sends_no_bounce(refusing):
    relay, peer = refusing
    reply, _took, _token = send(relay, ["nouser@ext.example"])
    assert reply.code == 550, reply
    assert reply.first == REFUSAL
    qid = relay.wait_log(r"([0-9A-F]{18}): accepted .* reply=\"550 ").group(1)
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed")
    assert e["recipients"][0]["status"] == "failed"
    time.sleep(0.5)
    assert "notification" not in relay.log_text()
    assert not [m for m in peer.messages if m.mail_from == ""]


def test_proxy_answers_451_when_the_gateway_times_out_and_keeps_the_message(relay):
    slow = Script(rcpt=Reply("250 2.1.5 Ok", delay=8))
    peer = FaultPeer(slow)
    peer.start()
    try:
        relay.serve_args = ["--proxy"]
        relay.extra = peer_route(peer, reply_timeout="1s")
        relay.start(retry="1h", retry_max="1h")
        rcpt = f"t-{new_token()[:8]}@ext.example"
        reply, took, token = send(relay, [rcpt])
        assert reply.code == 451 and reply.enhanced.startswith("4."), reply
        assert took < 8, took                         # the gateway's timeout, not its delay
        qid = relay.wait_log(r"([0-9A-F]{18}): accepted .* reply=\"451 ").group(1)
        e = relay.messages()[qid]
        assert e["state"] == "deferred" and e["recipients"][0]["status"] == "deferred"
        # the gateway recovers: the kept message goes out on the next try
        peer.set_script(Script())
        f = relay.cli("flush")
        assert f.returncode == 0, f
        assert token.encode() in peer.wait_for(rcpt=rcpt).data
        wait_state(relay, qid, lambda e: e is None, what="the message to leave the spool")
    finally:
        peer.stop()


def test_proxy_with_one_recipient_sent_and_one_refused_answers_250(refusing):
    relay, _peer = refusing
    ok = f"ok-{new_token()[:8]}@ext.example"
    reply, _took, _token = send(relay, [ok, "nouser@ext.example"])
    assert reply.code == 250, reply
    assert "delivered to 1 of 2 recipients, the rest get a bounce" in reply.first
    # the refused one is reported to the sender as usual
    relay.wait_log(r"failed notification: [0-9A-F]{18} to <alice@lan\.example>")
