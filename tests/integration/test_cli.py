"""The client subcommands: `switchboard publish`, `consume` and `bench`, run as processes
against the broker under test, checked with pika.

Exit statuses (src/cli/client.h): 0 ok, 1 connection/broker error, 2 bad arguments,
3 timed out, 4 nacked or returned as unroutable."""
import json
import os
import pathlib
import socket
import subprocess

import pytest

from helpers import get_one, unique

REPO = pathlib.Path(__file__).resolve().parents[2]


def binary():
    build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build")).resolve()
    exe = build / "switchboard"
    if not exe.exists():
        pytest.fail(f"{exe} not built: run `make`", pytrace=False)
    return str(exe)


@pytest.fixture
def sb(broker):
    """sb('publish', ...) -> CompletedProcess, with AMQP_URL pointing at the broker."""

    def run(*args, input=None, timeout=60, url=None):
        env = dict(os.environ, AMQP_URL=url or broker.amqp_url)
        return subprocess.run([binary(), *args], input=input, capture_output=True,
                              env=env, timeout=timeout)

    return run


@pytest.fixture
def queue(ch):
    name = unique("cli")
    ch.queue_declare(name)
    yield name
    try:
        ch.queue_delete(name)
    except Exception:
        pass


def depth(ch, name):
    return ch.queue_declare(name, passive=True).method.message_count


def test_round_trip(sb, queue):
    r = sb("publish", "", queue, "hello world", "--confirm")
    assert r.returncode == 0, r.stderr
    r = sb("consume", queue, "--count", "1", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello world\n"


def test_body_from_stdin(sb, ch, queue):
    r = sb("publish", "", queue, "--confirm", input=b"line1\nline2\x00bin")
    assert r.returncode == 0, r.stderr
    _, _, body = get_one(ch, queue)
    assert body == b"line1\nline2\x00bin"
    r = sb("publish", "", queue, "-", "--confirm", input=b"dash")
    assert r.returncode == 0, r.stderr
    assert get_one(ch, queue)[2] == b"dash"


def test_confirm_and_count(sb, ch, queue):
    r = sb("publish", "", queue, "m", "--count", "25", "--confirm")
    assert r.returncode == 0, r.stderr
    assert depth(ch, queue) == 25
    r = sb("consume", queue, "--count", "10", "--prefetch", "4", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"m\n" * 10
    # --count is exact: the other 15 stay, none of them delivered (and requeued) yet
    assert depth(ch, queue) == 15
    m, _, _ = get_one(ch, queue)
    assert m.redelivered is False


def test_headers_and_properties_visible_via_pika(sb, ch, queue):
    r = sb("publish", "", queue, '{"a":1}', "--confirm", "--header", "source=cli",
           "--header", "trace=a=b", "--content-type", "application/json",
           "--correlation-id", "c-42", "--reply-to", "replies", "--expiration", "60000",
           "--persistent")
    assert r.returncode == 0, r.stderr
    _, p, body = get_one(ch, queue)
    assert body == b'{"a":1}'
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in p.headers.items()}
    assert headers == {"source": "cli", "trace": "a=b"}
    assert p.content_type == "application/json"
    assert p.correlation_id == "c-42"
    assert p.reply_to == "replies"
    assert p.expiration == "60000"
    assert p.delivery_mode == 2


def test_consume_verbose_shows_properties(sb, queue):
    assert sb("publish", "", queue, "body", "--confirm", "--header", "k=v",
              "--correlation-id", "cid").returncode == 0
    r = sb("consume", queue, "--count", "1", "--verbose", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"routing-key: {queue}" in out
    assert "correlation-id: cid" in out
    assert "  k: v" in out
    assert out.endswith("body\n")


def test_mandatory_unroutable_exits_4(sb):
    r = sb("publish", "", unique("nowhere"), "x", "--mandatory")
    assert r.returncode == 4, r.stderr
    assert b"NO_ROUTE" in r.stderr


def test_unknown_exchange_exits_1(sb):
    r = sb("publish", unique("nox"), "k", "x")
    assert r.returncode == 1
    assert b"404 NOT_FOUND" in r.stderr


def test_consume_timeout_exits_3(sb, queue):
    r = sb("consume", queue, "--timeout", "1", "--count", "1")
    assert r.returncode == 3
    assert b"no message" in r.stderr


def test_consume_missing_queue_exits_1(sb):
    r = sb("consume", unique("noq"), "--count", "1", "--timeout", "5")
    assert r.returncode == 1
    assert b"404 NOT_FOUND" in r.stderr


def test_cannot_connect_says_why(sb):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = sb("publish", "", "q", "x", url=f"amqp://guest:guest@127.0.0.1:{port}/")
    assert r.returncode == 1
    assert b"cannot connect" in r.stderr and b"Connection refused" in r.stderr


@pytest.mark.parametrize("cmd", ["publish", "consume", "bench"])
def test_help_exits_0(sb, cmd):
    r = sb(cmd, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(b"usage: switchboard " + cmd.encode())


@pytest.mark.parametrize("args", [["publish"], ["publish", "x"], ["publish", "", "q", "--bogus"],
                                  ["consume"], ["consume", "q", "--count", "0"],
                                  ["bench", "--size", "-1"]])
def test_bad_arguments_exit_2(sb, args):
    assert sb(*args).returncode == 2


def test_bench_throughput_json(sb):
    r = sb("bench", "--count", "2000", "--size", "100", "--confirm", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["mode"] == "throughput" and res["delivered"] == 2000
    assert res["msgs_per_s"] > 0


def test_bench_fanout_json(sb):
    r = sb("bench", "--count", "500", "--fanout", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["delivered"] == 1500


def test_bench_latency_json(sb):
    r = sb("bench", "--latency", "--count", "200", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert 0 < res["p50_us"] <= res["p99_us"] <= res["p999_us"] <= res["max_us"]


def test_bench_no_consume_leaves_messages(sb, ch):
    name = unique("backlog")
    try:
        r = sb("bench", "--no-consume", "--queue", name, "--count", "300", "--json")
        assert r.returncode == 0, r.stderr
        assert depth(ch, name) == 300
    finally:
        ch.queue_delete(name)


@pytest.mark.parametrize("extra", [[], ["--confirm"], ["--fanout", "2"]])
def test_bench_batch_coalesces_publishes_and_loses_none(sb, extra):
    r = sb("bench", "--count", "3000", "--batch", "128", "--json", *extra)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["batch"] == 128
    assert res["delivered"] == 3000 * (2 if "--fanout" in extra else 1)
