"""Delivery workers live on between messages (mailredir.8, DELIVERY): one
gateway session carries a burst, RSET between messages; it is quit after
a few idle seconds; a kept session the gateway has closed meanwhile costs
no attempt.  Observed at a scripted peer: its sessions and their commands.
"""

import time

from conftest import wait_until  # noqa: F401
from fault_peer import Reply, Script, make_fault_peer  # noqa: F401
from test_forwarding_helpers import (accepted_with, delivery_lines, peer_route, submit,
                                     unique_rcpt, wait_delivery)


def test_one_gateway_session_carries_messages_sent_apart_and_is_quit_when_idle(
        make_fault_peer, relay):
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start()
    rcpts = [unique_rcpt(f"kept{i}") for i in range(3)]
    tokens = []
    for rcpt in rcpts:
        qid, _, token = submit(relay, [rcpt])
        wait_delivery(relay, qid, rcpt, status="sent")
        tokens.append(token)
        time.sleep(0.3)          # apart: each one is a batch of its own
    assert all(len(accepted_with(peer, t)) == 1 for t in tokens)
    assert len(peer.sessions) == 1, peer.sessions
    s = peer.sessions[0]
    assert [c.split(":")[0].upper() for c in s.commands].count("MAIL FROM") == 3, s.commands
    assert sum(1 for c in s.commands if c.upper() == "RSET") == 2, s.commands
    assert sum(1 for c in s.commands if c.upper().startswith("EHLO")) == 1, s.commands
    # nothing more to send: the worker says QUIT after its idle time (5 s)
    wait_until(lambda: s.closed, 15, what="the idle session to end")
    assert s.commands[-1].upper() == "QUIT", s.commands
    assert time.monotonic() - s.ended < 15


def test_a_kept_session_the_gateway_closed_costs_the_next_message_no_attempt(
        make_fault_peer, relay):
    # the first session ends after its first message, as gateways that
    # limit messages per connection do; the worker does not know it yet
    closing = Script(data_end=Reply("250 2.0.0 Ok: queued", close=True))
    peer = make_fault_peer([closing, Script()])
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    first, second = unique_rcpt("first"), unique_rcpt("second")
    qid1, _, token1 = submit(relay, [first])
    wait_delivery(relay, qid1, first, status="sent")
    wait_until(lambda: peer.sessions[0].closed, 10, what="the peer to close session 0")
    qid2, _, token2 = submit(relay, [second])
    line = wait_delivery(relay, qid2, second, status="sent")
    assert line["attempts"] == "1", line
    assert [d["status"] for d in delivery_lines(relay, qid2)] == ["sent"]
    assert len(accepted_with(peer, token2)) == 1
    assert len(peer.sessions) == 2, peer.sessions
    assert relay.messages() == {}
