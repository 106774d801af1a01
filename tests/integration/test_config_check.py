"""`mailredir check`: exit 0 for a valid file; 78 and `FILE:LINE: message` for
each error.  The same errors stop `serve` at start."""

import re

import pytest

from conftest import base_env, free_port, run_bin


def check(path, *extra, env=None):
    return run_bin(["check", "-c", path] + list(extra), env=env)


def write(tmp_path, text, name="mailredir.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def base(tmp_path):
    return (f"listen = 127.0.0.1:{free_port()}\nspool = {tmp_path}/spool\nuser =\n"
            "hostname = mx.test.example\n")


def test_check_accepts_a_valid_file(tmp_path):
    path = write(tmp_path, base(tmp_path) + "\n# a comment\n; another\n"
                 "clients = 127.0.0.0/8 ::1/128\nclients = 10.0.0.0/8\n"
                 "max-message-size = 10k\nmax-recipients = 3\nmax-connections = 7\n"
                 "max-connections-per-client = 2\ncommand-timeout = 2s\n"
                 "data-timeout = 500ms\nlog-level = debug\n")
    r = check(path)
    assert r.returncode == 0, r


@pytest.mark.parametrize("key,value", [
    ("command-timeout", "500ms"), ("command-timeout", "30s"), ("command-timeout", "5m"),
    ("command-timeout", "1h"), ("data-timeout", "90"),
    ("max-message-size", "2048"), ("max-message-size", "64k"), ("max-message-size", "10M"),
    ("max-message-size", "1G"), ("log-level", "error"), ("log-level", "warning"),
    ("log-level", "info"), ("listen", "[::1]:2525"),
])
def test_check_accepts_each_value_form(tmp_path, key, value):
    r = check(write(tmp_path, base(tmp_path) + f"{key} = {value}\n"))
    assert r.returncode == 0, r


@pytest.mark.parametrize("line", [
    "no-such-key = 1",
    "max-message-size = lots",
    "max-message-size = 10Q",
    "max-recipients = -1",
    "max-recipients = many",
    "command-timeout = 5x",
    "command-timeout = soon",
    "data-timeout = -2s",
    "data-timeout = 5d",
    "max-message-size = 0",
    "listen = nonsense",
    "listen = 127.0.0.1:99999",
    "listen = 127.0.0.1:25 bogusflag",
    "clients = 300.0.0.0/8",
    "clients = 127.0.0.0/33",
    "clients = example.org",
    "log-level = loud",
    "[bogus]",
    "this line has no equals sign",
])
def test_check_reports_a_bad_line_with_file_and_line_number(tmp_path, line):
    text = base(tmp_path)
    bad_line = text.count("\n") + 1
    path = write(tmp_path, text + line + "\n")
    r = check(path)
    assert r.returncode == 78, r
    assert re.search(re.escape(path) + rf":{bad_line}: \S", r.err), r


def test_check_reports_every_error_not_only_the_first(tmp_path):
    text = base(tmp_path) + "bogus-one = 1\nmax-recipients = x\nbogus-two = 2\n"
    path = write(tmp_path, text)
    r = check(path)
    assert r.returncode == 78, r
    for n in (5, 6, 7):
        assert f"{path}:{n}:" in r.err, r


def test_check_of_a_missing_file_exits_78(tmp_path):
    r = check(str(tmp_path / "nope.conf"))
    assert r.returncode == 78, r
    assert "nope.conf" in r.err


def test_check_takes_the_config_before_the_command_or_from_the_environment(tmp_path):
    good = write(tmp_path, base(tmp_path))
    bad = write(tmp_path, base(tmp_path) + "nope = 1\n", name="bad.conf")
    assert run_bin(["-c", good, "check"]).returncode == 0
    assert run_bin(["-c", bad, "check"]).returncode == 78
    assert run_bin(["check"], env=base_env({"MAILREDIR_CONFIG": good})).returncode == 0
    r = run_bin(["check"], env=base_env({"MAILREDIR_CONFIG": bad}))
    assert r.returncode == 78 and "bad.conf:5:" in r.err, r


def test_serve_with_a_bad_file_exits_78_with_the_line(relay):
    relay.write_config()
    with open(relay.conf, "a") as f:
        f.write("unknown-key = yes\n")
    with open(relay.conf) as f:
        bad_line = f.read().count("\n")
    r = run_bin(["serve", "--foreground", "-c", relay.conf], timeout=60)
    assert r.returncode == 78, r
    assert f"{relay.conf}:{bad_line}:" in r.err, r


def test_serve_on_a_port_in_use_fails_with_a_clear_message(relay):
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        relay.port = blocker.getsockname()[1]
        relay.write_config()
        r = run_bin(["serve", "--foreground", "-c", relay.conf], timeout=60)
        assert r.returncode != 0, r
        assert f"127.0.0.1:{relay.port}" in r.err, r
    finally:
        blocker.close()


def test_unknown_command_and_help_and_version(tmp_path):
    r = run_bin(["frobnicate"])
    assert r.returncode == 64, r
    r = run_bin(["--version"])
    assert r.returncode == 0 and r.out.strip(), r
    r = run_bin(["--help"])
    assert r.returncode == 0 and "serve" in r.out, r
