"""`mailredir queue` (and the mailq symlink): listing, --json (PRODUCT.md §9),
show, hold, release, delete, retry ID|all.  Failed and deferred states are made
by editing the spool while no process holds the message (delivery does not
exist yet), as delivery will."""

import calendar
import json
import os
import re
import time

import pytest

from conftest import base_env, make_message, run_bin, symlink_path

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MESSAGE_KEYS = {"id", "state", "size", "sender", "created", "attempts", "next_try", "recipients"}
RCPT_KEYS = {"address", "route", "status", "reply"}


def iso_to_epoch(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture
def two(relay):
    """A running relay with two queued messages; returns (relay, [id1, id2], [tokens])."""
    relay.start()
    ids, tokens = [], []
    for to in ("bob@ext.example", "carol@ext.example"):
        content, token = make_message(to=to)
        qid, _ = relay.submit(content, rcpts=(to,))
        ids.append(qid)
        tokens.append(token)
    return relay, ids, tokens


def test_empty_queue_prints_an_empty_message_list(relay):
    relay.start()
    r = relay.cli("queue", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.out) == {"messages": []}
    r = relay.cli("queue")
    assert r.returncode == 0, r


def test_queue_json_has_exactly_the_documented_fields(two):
    relay, ids, _ = two
    doc = relay.queue_json()
    assert set(doc) == {"messages"}
    msgs = doc["messages"]
    assert [m["id"] for m in msgs] == sorted(ids)
    now = time.time()
    for m in msgs:
        assert set(m) == MESSAGE_KEYS, m
        assert m["state"] == "queued"
        assert m["size"] == os.path.getsize(relay.path("data", m["id"]))
        assert m["sender"] == "alice@lan.example"
        assert ISO_RE.match(m["created"]), m
        assert abs(iso_to_epoch(m["created"]) - now) < 600, m
        assert m["attempts"] == 0
        assert m["next_try"] is None or (ISO_RE.match(m["next_try"])
                                         and iso_to_epoch(m["next_try"]) <= now + 5), m
        assert len(m["recipients"]) == 1
        rc = m["recipients"][0]
        assert set(rc) == RCPT_KEYS, rc
        assert rc["status"] == "pending" and rc["route"] is None and rc["reply"] is None, rc
    assert [m["recipients"][0]["address"] for m in msgs] == ["bob@ext.example", "carol@ext.example"]


def test_queue_table_for_people_names_each_message(two):
    relay, ids, _ = two
    r = relay.cli("queue")
    assert r.returncode == 0, r
    for qid, rcpt in zip(ids, ("bob@ext.example", "carol@ext.example")):
        assert qid in r.out and rcpt in r.out, r
    assert "alice@lan.example" in r.out


def test_config_may_come_after_the_command_or_from_the_environment(two):
    relay, ids, _ = two
    want = relay.queue_json()
    variants = [
        run_bin(["queue", "-c", relay.conf, "--json"]),
        run_bin(["queue", "--json", "-c", relay.conf]),
        run_bin(["queue", "--json"], env=base_env({"MAILREDIR_CONFIG": relay.conf})),
        run_bin(["-c", relay.conf, "--json"], argv0=symlink_path("mailq")),
        run_bin(["--json"], argv0=symlink_path("mailq"),
                env=base_env({"MAILREDIR_CONFIG": relay.conf})),
    ]
    for r in variants:
        assert r.returncode == 0, r
        assert json.loads(r.out) == want, r


def test_mailq_symlink_prints_the_table(two):
    relay, ids, _ = two
    r = run_bin(["-c", relay.conf], argv0=symlink_path("mailq"))
    assert r.returncode == 0, r
    assert all(qid in r.out for qid in ids), r


def test_queue_show_prints_the_envelope_and_the_stored_message(two):
    relay, ids, tokens = two
    r = relay.cli("queue", "show", ids[0])
    assert r.returncode == 0, r
    assert "alice@lan.example" in r.out and "bob@ext.example" in r.out, r
    assert "queued" in r.out or "pending" in r.out, r
    assert "Received: from client.example" in r.out, r
    assert f"token {tokens[0]}" in r.out and f"END-{tokens[0]}" in r.out, r
    assert tokens[1] not in r.out


def test_queue_show_of_an_unknown_id_exits_65(two):
    relay, _, _ = two
    r = relay.cli("queue", "show", "0123456789ABCDEF01")
    assert r.returncode == 65, r
    assert r.err.strip()


@pytest.mark.parametrize("bad", ["../../../../etc/passwd", "ABC", "0123456789abcdef01", ""])
def test_queue_commands_refuse_ids_that_are_not_ids(two, bad):
    relay, _, _ = two
    for cmd in ("show", "hold", "delete"):
        r = relay.cli("queue", cmd, bad)
        assert r.returncode in (64, 65), r
        assert "root:" not in r.out
    assert len(relay.messages()) == 2


def test_hold_and_release_move_a_message_between_states(two):
    relay, ids, _ = two
    r = relay.cli("queue", "hold", ids[0])
    assert r.returncode == 0, r
    msgs = relay.messages()
    assert msgs[ids[0]]["state"] == "held" and msgs[ids[1]]["state"] == "queued"
    assert relay.envelope_path(ids[0]) == relay.path("held", ids[0])
    r = relay.cli("queue", "release", ids[0])
    assert r.returncode == 0, r
    assert relay.messages()[ids[0]]["state"] == "queued"
    assert relay.envelope_path(ids[0]) == relay.path("queue", ids[0])


def test_held_message_survives_a_restart_held(two):
    relay, ids, _ = two
    assert relay.cli("queue", "hold", ids[1]).returncode == 0
    relay.restart()
    assert relay.messages()[ids[1]]["state"] == "held"


def test_delete_removes_envelope_and_content(two):
    relay, ids, _ = two
    r = relay.cli("queue", "delete", ids[0])
    assert r.returncode == 0, r
    assert list(relay.messages()) == [ids[1]]
    assert not os.path.exists(relay.path("data", ids[0]))
    assert relay.envelope_path(ids[0]) is None
    r = relay.cli("queue", "delete", ids[0])
    assert r.returncode == 65, r


def test_delete_works_on_held_and_failed_messages(two):
    relay, ids, _ = two
    relay.stop()
    relay.fail_message(ids[0])
    relay.start()
    assert relay.cli("queue", "hold", ids[1]).returncode == 0
    for qid in ids:
        r = relay.cli("queue", "delete", qid)
        assert r.returncode == 0, r
    assert relay.messages() == {}
    assert relay.listdir("data") == []


def test_failed_message_shows_state_status_and_reply(two):
    relay, ids, _ = two
    relay.stop()
    relay.fail_message(ids[0], reply="550 5.1.1 <bob@ext.example>: no such user")
    m = relay.messages()[ids[0]]
    assert m["state"] == "failed"
    assert m["attempts"] == 1
    rc = m["recipients"][0]
    assert rc["status"] == "failed" and rc["reply"] == "550 5.1.1 <bob@ext.example>: no such user"
    r = relay.cli("queue", "show", ids[0])
    assert r.returncode == 0 and "no such user" in r.out, r
    r = relay.cli("queue")
    assert "failed" in r.out, r


def test_deferred_message_shows_next_try_and_reply(two):
    relay, ids, _ = two
    relay.stop()
    later = int(time.time()) + 3600
    relay.defer_message(ids[1], next_try=later, reply="451 4.3.0 try again later")
    m = relay.messages()[ids[1]]
    assert m["state"] == "deferred", m
    assert m["attempts"] == 1
    assert iso_to_epoch(m["next_try"]) == later, m
    assert m["recipients"][0]["status"] == "deferred"
    assert m["recipients"][0]["reply"] == "451 4.3.0 try again later"


def assert_due_again(relay, qid):
    m = relay.messages()[qid]
    assert m["state"] in ("queued", "deferred"), m
    assert relay.envelope_path(qid) == relay.path("queue", qid)
    assert all(r["status"] in ("pending", "deferred") for r in m["recipients"]), m
    assert m["next_try"] is None or iso_to_epoch(m["next_try"]) <= time.time() + 5, m


def test_retry_revives_a_failed_message(two):
    relay, ids, _ = two
    relay.stop()
    relay.fail_message(ids[0])
    r = relay.cli("queue", "retry", ids[0])
    assert r.returncode == 0, r
    assert_due_again(relay, ids[0])


def test_retry_makes_a_deferred_message_due_now(two):
    relay, ids, _ = two
    relay.stop()
    relay.defer_message(ids[1], next_try=int(time.time()) + 3600)
    r = relay.cli("queue", "retry", ids[1])
    assert r.returncode == 0, r
    assert_due_again(relay, ids[1])


def test_retry_all_revives_every_failed_and_deferred_message(two):
    relay, ids, _ = two
    relay.stop()
    relay.fail_message(ids[0])
    relay.defer_message(ids[1], next_try=int(time.time()) + 3600)
    r = relay.cli("queue", "retry", "all")
    assert r.returncode == 0, r
    for qid in ids:
        assert_due_again(relay, qid)


@pytest.mark.parametrize("args", [["frobnicate"], ["hold"], ["show"], ["retry"],
                                  ["--bogus"], ["hold", "0123456789ABCDEF01", "extra"]])
def test_queue_usage_errors_exit_64(two, args):
    relay, _, _ = two
    r = relay.cli("queue", *args)
    assert r.returncode == 64, r
    assert r.err.strip()


def test_recipient_with_a_quoted_local_part_is_valid_json(relay):
    relay.start()
    with relay.connect() as c:
        c.ehlo()
        c.expect('MAIL FROM:<"a\\"b c"@lan.example>', 250)
        c.expect('RCPT TO:<"john smith"@ext.example>', 250)
        c.expect("DATA", 354)
        c.send(b"Subject: q\r\n\r\nq\r\n.\r\n")
        assert c.reply().code == 250
    (m,) = relay.messages().values()
    assert m["sender"] == '"a\\"b c"@lan.example'
    assert m["recipients"][0]["address"] == '"john smith"@ext.example'


def test_a_corrupt_envelope_does_not_break_listing_or_the_daemon(two):
    relay, ids, _ = two
    relay.stop()
    with open(relay.path("queue", ids[0]), "wb") as f:
        f.write(b"version 1\nid \x00garbage\nrcpt\n\xff\xfe" + b"x" * 5000 + b"\n")
    r = relay.cli("queue", "--json")
    # the good message is still listed; the bad file is named (exit 0, or 75
    # to tell scripts that something could not be read)
    assert r.returncode in (0, 75), r
    listed = [m["id"] for m in json.loads(r.out)["messages"]]
    assert ids[1] in listed, r
    assert ids[0] in r.err, r
    relay.start()
    qid, _ = relay.submit()
    r = relay.cli("queue", "--json")
    listed = [m["id"] for m in json.loads(r.out)["messages"]]
    assert ids[1] in listed and qid in listed, r
