"""Retries, max-age, `mailredir flush` and crash safety of delivery
(PRODUCT.md §2, §3, §9; mailredir.8 DELIVERY, COMMANDS flush).

Back-off is observed in `queue --json` (attempts, next_try) and in when the
peer sees the connections; the crash tests SIGKILL the daemon (and, in the
harsher one, its delivery workers) in the middle of a batch and then count
every message: delivered at the peer or still in the spool, none lost.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, base_env, make_message, public_dir, run_bin, wait_until  # noqa: F401
from fault_peer import Reply, Script, make_fault_peer  # noqa: F401
from gateway import _pid_alive
from test_forwarding_helpers import (SENDER, accepted_with, dead_port, delivery_lines, iso_ts,
                                     peer_route, rcpt_status, submit, unique_rcpt,
                                     wait_delivery, wait_state)

REFUSE = Script(banner="421 4.3.2 Service not available, closing channel")


def route_to_port(port, name="peer"):
    return (f"[route {name}]\nsmarthost = 127.0.0.1:{port}\ntls = none\n"
            "reply-timeout = 2s\nconnect-timeout = 2s\n")


# --- back-off ---------------------------------------------------------------------------

def test_a_deferred_message_is_delivered_by_the_daemon_once_the_peer_recovers_with_back_off(
        make_fault_peer, relay):
    # refused three times, then accepted: waits of 1s, 2s, then retry-max 3s
    peer = make_fault_peer([REFUSE, REFUSE, REFUSE, Script()])
    relay.extra = peer_route(peer)
    relay.start(retry="1s 2s", retry_max="3s")
    rcpt = unique_rcpt("backoff")
    qid, content, token = submit(relay, [rcpt])
    seen = {}      # attempts -> (next_try, last reply)

    def watch():
        e = relay.messages().get(qid)
        if e is None:
            return True
        if e["attempts"] and e["attempts"] not in seen:
            seen[e["attempts"]] = (e["next_try"], rcpt_status(e)[rcpt], e["state"])
        return False
    wait_until(watch, 30, interval=0.05, what="the message delivered after three refusals")
    [got] = accepted_with(peer, token)
    assert got.data.endswith(content)
    # every attempt was visible in queue --json: deferred, the 421, a next try
    assert sorted(seen) == [1, 2, 3], seen
    for n in (1, 2, 3):
        next_try, (status, reply), state = seen[n]
        assert state == "deferred" and status == "deferred" and reply.startswith("421"), seen
        assert next_try is not None, seen
    nt = {n: iso_ts(seen[n][0]) for n in seen}
    # back-off grows: 1s, then 2s, then retry-max (3s) -- next_try has whole seconds
    assert nt[2] - nt[1] >= 2 and nt[3] - nt[2] >= 3, nt
    # and the daemon kept to it: when the peer saw the connections
    starts = [s.started for s in peer.sessions]
    assert len(starts) == 4, peer.sessions
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.0 and gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert gaps[1] < 4.0 and gaps[2] < 5.0, gaps    # and not much later either
    # one delivery line per attempt
    lines = delivery_lines(relay, qid, rcpt)
    assert [(d["attempts"], d["status"]) for d in lines] == [
        ("1", "deferred"), ("2", "deferred"), ("3", "deferred"), ("4", "sent")], lines


def test_a_message_past_max_age_fails_and_is_kept_with_the_reason(make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1s", retry_max="1s", max_age="3s", bounce="none")  # no report to the peer: sessions are counted
    rcpt = unique_rcpt("maxage")
    t0 = time.monotonic()
    qid, _, _ = submit(relay, [rcpt])
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", timeout=20,
                   what="failed after max-age")
    took = time.monotonic() - t0
    # the envelope keeps whole seconds: max-age 3s may be reached after 2.0 s
    assert 2.0 <= took < 10, took
    status, reply = rcpt_status(e)[rcpt]
    assert status == "failed" and "max-age" in reply and "421" in reply, e
    assert e["next_try"] is None
    assert relay.envelope_path(qid) == relay.path("failed", qid)
    d = wait_delivery(relay, qid, rcpt, status="failed")
    assert "max-age" in d["reply"], d["line"]
    # kept, and not tried again
    n = len(peer.sessions)
    time.sleep(2)
    assert len(peer.sessions) == n
    assert relay.messages()[qid]["state"] == "failed"


def test_max_age_set_on_the_route_overrides_the_global_one(make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer, max_age="2s", retry="1s", retry_max="1s")
    relay.start(retry="1h", max_age="5d")
    rcpt = unique_rcpt("routeage")
    qid, _, _ = submit(relay, [rcpt])
    e = wait_state(relay, qid, lambda e: e and e["state"] == "failed", timeout=20,
                   what="failed after the route's max-age")
    assert "max-age" in rcpt_status(e)[rcpt][1], e


# --- flush ----------------------------------------------------------------------------------

def sendmail(relay, rcpt):
    """Queue one message without a daemon (root's sendmail writes the spool)."""
    content, token = make_message(to=rcpt)
    r = relay.cli("sendmail", "-f", SENDER, rcpt, input=content.replace(b"\r\n", b"\n"))
    assert r.returncode == 0, r
    return token


def test_flush_without_a_daemon_exits_75_while_deferred_and_0_once_delivered(
        make_fault_peer, relay):
    relay.extra = route_to_port(dead_port())
    relay.write_config()
    r = relay.cli("flush")
    assert r.returncode == 0, r                       # nothing queued at all
    rcpt = unique_rcpt("flushnodaemon")
    token = sendmail(relay, rcpt)
    [qid] = relay.messages()
    r = relay.cli("flush")
    assert r.returncode == 75, r
    e = relay.messages()[qid]
    assert e["state"] == "deferred" and e["attempts"] == 1, e
    assert rcpt_status(e)[rcpt][0] == "deferred"
    # flush ignores back-off: at once again, still 75
    r = relay.cli("flush")
    assert r.returncode == 75, r
    assert relay.messages()[qid]["attempts"] == 2
    # the gateway is back
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.write_config()
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert len(accepted_with(peer, token)) == 1
    assert relay.messages() == {}
    r = relay.cli("flush", "peer")
    assert r.returncode == 0, r
    r = relay.cli("flush", "no-such-route")
    assert r.returncode == 64, r


def test_flush_with_a_daemon_asks_it_and_exits_75_while_deferred_and_0_once_delivered(
        make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("flushdaemon")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    n = len(peer.sessions)
    mark = relay.mark()
    r = relay.cli("flush")
    assert r.returncode == 75, r
    # the daemon did it (its worker logged the attempt), at once despite retry = 1h
    assert len(peer.sessions) == n + 1
    wait_delivery(relay, qid, rcpt, status="deferred", attempts=2)
    assert relay.log_matches(r"\(force\)", since=mark), relay.log_text(mark)
    peer.set_script(Script())
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert len(accepted_with(peer, token)) == 1
    assert relay.messages() == {}
    assert wait_delivery(relay, qid, rcpt, status="sent")["attempts"] == "3"


# --- crash safety ------------------------------------------------------------------------------

def worker_pids(relay, since=0):
    """Workers given messages since the mark (they live on between batches:
    one may have started before it)."""
    pids = [int(m.group(1)) for m in relay.log_matches(r"scheduler: worker (\d+): \d+ message",
                                                         since)]
    return sorted(set(pids))


def wait_pids_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(_pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            left = [p for p in pids if _pid_alive(p)]
            for p in left:                     # ours: started by our daemon
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return left
        time.sleep(0.05)
    return []


def crash_during_a_batch(make_fault_peer, relay, kill_workers, n=30):
    """Queue n messages (the peer refuses), let the peer accept slowly, flush
    (the daemon hands them to its workers in batches), SIGKILL the daemon
    (and its workers) mid-way.  Returns (peer, {token: qid}, workers killed
    or orphaned, accepted at the time of the kill)."""
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h", max_deliveries=4)
    tokens = {}
    for i in range(n):
        qid, _, token = submit(relay, [unique_rcpt(f"crash{i}")])
        tokens[token] = qid
    wait_until(lambda: len(delivery_lines(relay)) >= n, 30, what="every message tried once")
    assert all(e["state"] == "deferred" for e in relay.messages().values())
    peer.set_script(Script(data_end=lambda s, a: Reply("250 2.0.0 Ok", delay=0.12)))
    mark = relay.mark()
    flush = subprocess.Popen([BIN, "-c", relay.conf, "flush"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=base_env())
    try:
        wait_until(lambda: len(peer.messages) >= 6, 30, interval=0.01,
                   what="a few messages through")
        workers = worker_pids(relay, mark)
        assert workers, relay.log_text(mark)
        at_kill = len(peer.messages)
        if kill_workers:
            for p in workers:               # a power cut: the workers die with it
                if _pid_alive(p):
                    os.kill(p, signal.SIGKILL)
        relay.kill()
        out, _ = flush.communicate(timeout=30)
    finally:
        if flush.poll() is None:
            flush.kill()
            flush.wait()
    # orphaned workers finish what they hold (or die on their broken pipe)
    left = wait_pids_gone(workers, 30)
    assert not left, f"workers {left} still running 30 s after the daemon died"
    assert flush.returncode != 0, out      # it cannot claim success: the daemon died
    return peer, tokens, workers, at_kill


def account_for_every_message(relay, peer, tokens):
    """Every message is at the peer or still in the spool; returns the
    number of tokens the peer got more than once."""
    queued = relay.messages()
    for token, qid in tokens.items():
        got = accepted_with(peer, token)
        assert got or qid in queued, f"{qid} lost: neither delivered nor queued"
        if qid in queued:
            assert queued[qid]["state"] in ("queued", "deferred"), queued[qid]
    return sum(1 for t in tokens if len(accepted_with(peer, t)) > 1)


@pytest.mark.parametrize("kill_workers", [False, True], ids=["daemon", "daemon-and-workers"])
def test_sigkill_during_a_batch_loses_no_message(make_fault_peer, relay, kill_workers):
    peer, tokens, workers, at_kill = crash_during_a_batch(make_fault_peer, relay, kill_workers)
    assert at_kill < len(tokens), "the batch was over before the kill: no crash tested"
    dup_before = account_for_every_message(relay, peer, tokens)
    # a new daemon, a flush: everything goes out
    relay.start(retry="1h", retry_max="1h")
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert relay.messages() == {}
    dups = [t for t in tokens if len(accepted_with(peer, t)) > 1]
    missing = [tokens[t] for t in tokens if not accepted_with(peer, t)]
    assert not missing, missing
    print(f"crash test: {len(tokens)} messages, {at_kill} through at the kill, "
          f"{len(workers)} workers, {len(dups)} duplicates ({dup_before} before the restart)")
    # the documented duplicate only: a message whose final dot was answered
    # while its worker died, at most one per worker in flight
    assert len(dups) <= (len(workers) if kill_workers else 0), (
        f"{len(dups)} duplicates ({dup_before} before the restart) with "
        f"{len(workers)} workers; kill_workers={kill_workers}")
    assert not [n for n in ("incoming", "queue") if relay.listdir(n)]


# --- flush and the daemon's own work ---------------------------------------------------------

def test_flush_waits_for_a_delivery_already_under_way_and_reports_its_result(make_fault_peer,
                                                                            relay):
    peer = make_fault_peer(Script(data_end=Reply("250 2.0.0 Ok", delay=2.5)))
    relay.extra = peer_route(peer, reply_timeout="10s")
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("busyflush")
    qid, _, token = submit(relay, [rcpt])
    peer.wait_sessions(1, closed=False)
    t0 = time.monotonic()
    r = relay.cli("flush")
    took = time.monotonic() - t0
    assert r.returncode == 0, (r, relay.messages())
    assert len(accepted_with(peer, token)) == 1
    assert relay.messages() == {}
    assert took >= 1.0, f"flush returned after {took:.1f}s, before the delivery under way ended"


def test_after_a_refused_reload_deliveries_keep_the_running_configuration(make_fault_peer,
                                                                         relay):
    """mailredir.8 SIGNALS: a file with errors is refused and the running
    configuration is kept -- for the delivery workers too."""
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start(retry="1s", retry_max="1s")
    rcpt = unique_rcpt("beforehup")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="sent")
    good = open(relay.conf).read()
    with open(relay.conf, "w") as f:
        f.write(good + "this is not a key\n")
    mark = relay.mark()
    relay.signal(signal.SIGHUP)
    relay.wait_log(r"(?i)refus|error|not reloaded|keep", since=mark, timeout=10)
    rcpt2 = unique_rcpt("afterhup")
    qid2, _, token2 = submit(relay, [rcpt2])
    deadline = time.monotonic() + 8
    while not accepted_with(peer, token2) and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(relay.conf, "w") as f:        # restored: the CLI below reads it
        f.write(good)
    assert len(accepted_with(peer, token2)) == 1, (relay.messages().get(qid2),
                                                    relay.log_text(mark))


def test_a_changed_file_without_reload_does_not_change_where_mail_goes(make_fault_peer, relay):
    """Until SIGHUP the daemon runs the configuration it loaded: a route
    edited on disk (not yet reloaded) must not be used by its deliveries."""
    old = make_fault_peer(Script())
    new = make_fault_peer(Script())
    relay.extra = peer_route(old)
    relay.start(retry="1s", retry_max="1s")
    relay.extra = peer_route(new)
    relay.write_config()                     # on disk only: no SIGHUP
    rcpt = unique_rcpt("noreload")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="sent")
    assert len(accepted_with(old, token)) == 1 and accepted_with(new, token) == [], (
        "delivered through the route on disk, not the one the daemon runs")


def test_a_delivery_worker_killed_mid_message_leaves_it_queued_and_flush_delivers_it(
        make_fault_peer, relay):
    """The daemon stays up, one worker dies (SIGKILL): the message is still
    queued, and a flush (which ignores back-off, including the daemon's
    pause after a crashed worker) delivers it once."""
    peer = make_fault_peer(Script(data=Reply("354 go ahead", delay=3)))
    relay.extra = peer_route(peer, reply_timeout="10s")
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("workerkill")
    mark = relay.mark()
    qid, content, token = submit(relay, [rcpt])
    wait_until(lambda: any("DATA" in s.commands for s in peer.sessions), 10,
               what="the worker in DATA")
    [worker] = worker_pids(relay, mark)
    os.kill(worker, signal.SIGKILL)        # started by our daemon: ours to kill
    relay.wait_log(rf"worker {worker} killed by signal 9", since=mark, timeout=10)
    e = relay.messages()[qid]
    assert e["state"] in ("queued", "deferred"), e
    peer.set_script(Script())
    r = relay.cli("flush")
    assert r.returncode == 0, r
    [got] = accepted_with(peer, token)
    assert got.data.endswith(content)
    assert relay.messages() == {}


# --- the queue commands and the daemon ---------------------------------------------------------

def test_queue_retry_of_a_failed_message_has_the_daemon_deliver_it(make_fault_peer, relay):
    peer = make_fault_peer(Script(data_end="552 5.3.4 too big for now"))
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("revive")
    qid, _, token = submit(relay, [rcpt])
    wait_state(relay, qid, lambda e: e and e["state"] == "failed", what="failed")
    peer.set_script(Script())
    r = relay.cli("queue", "retry", qid)
    assert r.returncode == 0, r
    got = peer.wait_for(rcpt=rcpt, timeout=10)     # no flush: the daemon was told
    assert token.encode() in got.data
    wait_state(relay, qid, lambda e: e is None, timeout=10, what="the message to leave the spool")


def test_a_held_message_is_not_flushed_and_goes_out_once_released(make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("held")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    assert relay.cli("queue", "hold", qid).returncode == 0
    peer.set_script(Script())
    n = len(peer.sessions)
    r = relay.cli("flush")
    assert r.returncode == 0, r           # nothing queued or deferred: held is neither
    assert len(peer.sessions) == n and accepted_with(peer, token) == []
    assert relay.messages()[qid]["state"] == "held"
    assert relay.cli("queue", "release", qid).returncode == 0
    r = relay.cli("flush")
    assert r.returncode == 0, r
    assert len(accepted_with(peer, token)) == 1


def test_a_deleted_deferred_message_is_never_delivered(make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1s", retry_max="1s")
    rcpt = unique_rcpt("deleted")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    r = relay.cli("queue", "delete", qid)
    assert r.returncode == 0, r
    peer.set_script(Script())
    time.sleep(2.5)                        # past the 1s retry
    assert accepted_with(peer, token) == []
    assert relay.cli("flush").returncode == 0
    assert accepted_with(peer, token) == [] and qid not in relay.messages()


def test_sigterm_during_a_delivery_exits_0_and_the_message_goes_out_after_restart(
        make_fault_peer, relay):
    peer = make_fault_peer(Script(data=Reply("354 go ahead", delay=30)))
    relay.extra = peer_route(peer, reply_timeout="60s")
    relay.start(retry="1s", retry_max="1s")
    rcpt = unique_rcpt("sigterm")
    qid, content, token = submit(relay, [rcpt])
    wait_until(lambda: any("DATA" in s.commands for s in peer.sessions), 10,
               what="the worker in DATA")
    t0 = time.monotonic()
    assert relay.stop() == 0
    assert time.monotonic() - t0 < 15
    assert qid in relay.messages()                 # not lost
    peer.set_script(Script())
    relay.start(retry="1s", retry_max="1s")
    got = peer.wait_for(rcpt=rcpt, timeout=15)     # due again: tried without a flush
    assert got.data.endswith(content)
    wait_state(relay, qid, lambda e: e is None, timeout=10, what="the message to leave the spool")
    assert len(accepted_with(peer, token)) == 1


def test_a_deferred_message_that_fell_due_while_the_daemon_was_down_goes_out_at_start(
        make_fault_peer, relay):
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="1s", retry_max="1s")
    rcpt = unique_rcpt("duedown")
    qid, _, token = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    relay.stop()
    time.sleep(1.5)
    peer.set_script(Script())
    relay.start(retry="1s", retry_max="1s")
    peer.wait_for(rcpt=rcpt, timeout=10)
    assert len(accepted_with(peer, token)) == 1


def test_mail_queued_by_sendmail_while_the_daemon_runs_is_tried_at_once(make_fault_peer,
                                                                        relay):
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("sendmailnow")
    token = sendmail(relay, rcpt)
    t0 = time.monotonic()
    peer.wait_for(rcpt=rcpt, timeout=8)    # "new mail is tried at once" (mailredir.8)
    assert time.monotonic() - t0 < 5
    assert len(accepted_with(peer, token)) == 1


def test_mail_dropped_by_an_unprivileged_sendmail_is_tried_at_once(make_fault_peer, make_relay,
                                                                   public_dir):
    relay = make_relay(root=public_dir)
    peer = make_fault_peer(Script())
    relay.extra = peer_route(peer)
    relay.start(retry="1h", retry_max="1h")
    rcpt = unique_rcpt("maildrop")
    content, token = make_message(to=rcpt)
    r = run_bin(["sendmail", "-C", relay.conf, "-f", SENDER, rcpt],
                input=content.replace(b"\r\n", b"\n"), user="nobody")
    assert r.returncode == 0, r
    t0 = time.monotonic()
    peer.wait_for(rcpt=rcpt, timeout=8)    # "new mail is tried at once" (mailredir.8)
    assert time.monotonic() - t0 < 5
    assert len(accepted_with(peer, token)) == 1


def test_a_sub_second_retry_step_still_waits_between_attempts(make_fault_peer, relay):
    """retry accepts 100ms..30d (mailredir.conf.5): a 500ms step must space
    the attempts out, not turn into a tight loop against the gateway."""
    peer = make_fault_peer(REFUSE)
    relay.extra = peer_route(peer)
    relay.start(retry="500ms", retry_max="500ms")
    rcpt = unique_rcpt("subsecond")
    qid, _, _ = submit(relay, [rcpt])
    wait_delivery(relay, qid, rcpt, status="deferred")
    time.sleep(3)
    n = len(peer.sessions)
    assert 3 <= n <= 9, f"{n} attempts in about 3 s with retry = 500ms"


def test_after_a_worker_crash_queue_json_tells_when_the_message_will_be_tried(
        make_fault_peer, relay):
    """next_try in queue --json is when the daemon will try: after a worker
    died, not null ("due now") while the daemon in fact waits."""
    peer = make_fault_peer(Script(data=Reply("354 go ahead", delay=3)))
    relay.extra = peer_route(peer, reply_timeout="10s")
    relay.start(retry="1s", retry_max="1s")
    rcpt = unique_rcpt("crashnext")
    mark = relay.mark()
    qid, _, token = submit(relay, [rcpt])
    wait_until(lambda: any("DATA" in s.commands for s in peer.sessions), 10,
               what="the worker in DATA")
    [worker] = worker_pids(relay, mark)
    os.kill(worker, signal.SIGKILL)
    relay.wait_log(rf"worker {worker} killed by signal 9", since=mark, timeout=10)
    peer.set_script(Script())
    e = relay.messages()[qid]
    if e["next_try"] is None:
        # then it must really be due: tried within a few seconds
        deadline = time.monotonic() + 8
        while not accepted_with(peer, token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert accepted_with(peer, token), (
            f"queue --json says next_try null (due) but nothing was tried for 8 s: {e}")
    else:
        assert iso_ts(e["next_try"]) >= time.time() - 1, e
