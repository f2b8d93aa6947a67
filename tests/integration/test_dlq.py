"""Dead-letter tooling (issue 5): `switchboard dlq show|replay|list` and the HTTP twins
GET /api/dlq/{vhost}/{queue} and POST /api/dlq/{vhost}/{queue}/replay.

show and replay are plain AMQP clients, so their tests run against RabbitMQ too
(SB_TARGET=rabbitmq); list and the HTTP endpoints need the management API and are
switchboard_only (the reference run starts RabbitMQ without management). Dead letters are
made the way RabbitMQ makes them: a consumer rejects with requeue=false."""
import json
import urllib.parse

import pika
import pytest

from helpers import get_all, unique, wait_for
from test_cli import binary  # noqa: F401
from test_http import request

import os
import subprocess


@pytest.fixture
def sb(broker):
    def run(*args, timeout=60):
        env = dict(os.environ, AMQP_URL=broker.amqp_url)
        if broker.http_url:
            u = urllib.parse.urlparse(broker.http_url)
            env["HTTP_URL"] = f"http://guest:guest@{u.hostname}:{u.port}"
        return subprocess.run([binary(), *args], capture_output=True, env=env, timeout=timeout)
    return run


def depth(ch, name):
    return ch.queue_declare(name, passive=True).method.message_count


class Topology:
    """orders <- exchange 'shop' (key order.placed); orders dead-letters to the fanout
    exchange dlx, which feeds dlq."""

    def __init__(self, ch):
        self.ch = ch
        self.shop, self.dlx = unique("shop"), unique("dlx")
        self.orders, self.dlq = unique("orders"), unique("dlq")
        ch.exchange_declare(self.shop, "direct", auto_delete=False)
        ch.exchange_declare(self.dlx, "fanout")
        ch.queue_declare(self.orders, arguments={"x-dead-letter-exchange": self.dlx})
        ch.queue_declare(self.dlq)
        ch.queue_bind(self.orders, self.shop, "order.placed")
        ch.queue_bind(self.dlq, self.dlx, "")

    def dead_letter(self, bodies, queue=None, exchange=None, key="order.placed"):
        """Publishes bodies, then rejects each (requeue=false) so they reach the DLQ."""
        queue = queue or self.orders
        for i, b in enumerate(bodies):
            self.ch.basic_publish(self.shop if exchange is None else exchange, key, b,
                                  pika.BasicProperties(message_id=f"m{i}", delivery_mode=2))
        before = depth(self.ch, self.dlq)
        for _ in bodies:
            m = None
            for _ in range(500):
                m, _, _ = self.ch.basic_get(queue)
                if m:
                    break
            assert m is not None, "published message never arrived"
            self.ch.basic_reject(m.delivery_tag, requeue=False)
        wait_for(lambda: depth(self.ch, self.dlq) == before + len(bodies), what="dead letters")

    def cleanup(self):
        for q in (self.orders, self.dlq):
            try:
                self.ch.queue_delete(q)
            except Exception:
                pass
        for x in (self.shop, self.dlx):
            try:
                self.ch.exchange_delete(x)
            except Exception:
                pass


@pytest.fixture
def topo(ch):
    t = Topology(ch)
    yield t
    t.cleanup()


def test_dlq_show_prints_the_history_in_words_and_loses_nothing(sb, topo, ch):
    topo.dead_letter([b"order one", b"order two", b"order three"])
    r = sb("dlq", "show", topo.dlq, "--limit", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.count("dead letter ") == 2, out
    assert 'body (9 bytes): "order one"' in out
    assert (f"rejected from queue '{topo.orders}' (published to exchange '{topo.shop}' "
            f"with key 'order.placed'), 1 time, last at ") in out
    assert " UTC" in out
    assert f"first death: rejected from queue '{topo.orders}'" in out
    assert "order three" not in out
    assert "1 more not shown" in out
    # Nothing lost, order kept; the two looked at come back redelivered.
    got = get_all(ch, topo.dlq)
    assert [b for _, _, b in got] == [b"order one", b"order two", b"order three"]
    assert [m.redelivered for m, _, _ in got] == [True, True, False]


def test_dlq_show_escapes_non_printable_bytes_and_counts_repeated_deaths(sb, topo, ch):
    topo.dead_letter([b"a\x00b\n\xff"])
    # Die a second time in the same queue: count 2 in one x-death entry.
    m, p, b = ch.basic_get(topo.dlq, auto_ack=True)
    ch.basic_publish("", topo.orders, b, p)
    m = None
    for _ in range(500):
        m, _, _ = ch.basic_get(topo.orders)
        if m:
            break
    ch.basic_reject(m.delivery_tag, requeue=False)
    wait_for(lambda: depth(ch, topo.dlq) == 1, what="second death")
    r = sb("dlq", "show", topo.dlq)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert r'"a\x00b\n\xff"' in out, out
    assert "), 2 times, last at " in out, out
    assert depth(ch, topo.dlq) == 1


def test_dlq_show_of_an_empty_queue_says_so(sb, topo):
    r = sb("dlq", "show", topo.dlq)
    assert r.returncode == 0, r.stderr
    assert b"is empty" in r.stdout


def test_dlq_show_of_a_missing_queue_is_exit_1(sb):
    r = sb("dlq", "show", unique("nope"))
    assert r.returncode == 1
    assert b"404" in r.stderr


def test_dlq_replay_sends_messages_back_and_the_consumer_gets_them(sb, topo, ch, connect):
    topo.dead_letter([b"one", b"two", b"three"])
    r = sb("dlq", "replay", topo.dlq)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"replayed 3, left 0" in r.stdout
    assert depth(ch, topo.dlq) == 0
    # The original consumer gets them, in order, with their history kept.
    c2 = connect().channel()
    received = []
    c2.basic_consume(topo.orders, lambda c, m, p, b: (received.append((p, b)),
                                                      c.basic_ack(m.delivery_tag)))
    wait_for(lambda: (c2.connection.process_data_events(time_limit=0.05),
                      len(received) == 3)[1], what="replayed deliveries")
    assert [b for _, b in received] == [b"one", b"two", b"three"]
    p = received[0][0]
    assert p.message_id == "m0"
    assert p.delivery_mode == 2
    assert p.headers["x-death"][0]["queue"] == topo.orders
    assert p.headers["x-death"][0]["count"] == 1


def test_dlq_replay_to_another_queue(sb, topo, ch):
    other = unique("retry")
    ch.queue_declare(other)
    try:
        topo.dead_letter([b"x", b"y"])
        r = sb("dlq", "replay", topo.dlq, "--to", other)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert b"replayed 2, left 0" in r.stdout
        assert [b for _, _, b in get_all(ch, other)] == [b"x", b"y"]
        assert depth(ch, topo.orders) == 0
    finally:
        ch.queue_delete(other)


def test_dlq_replay_limit_replays_only_the_first_n(sb, topo, ch):
    topo.dead_letter([b"1", b"2", b"3"])
    r = sb("dlq", "replay", topo.dlq, "--limit", "2")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"replayed 2, left 0" in r.stdout
    assert [b for _, _, b in get_all(ch, topo.dlq)] == [b"3"]
    assert [b for _, _, b in get_all(ch, topo.orders)] == [b"1", b"2"]


def test_dlq_replay_leaves_a_message_whose_queue_is_gone(sb, topo, ch):
    gone = unique("gone")
    ch.queue_declare(gone, arguments={"x-dead-letter-exchange": topo.dlx})
    topo.dead_letter([b"kept"])                                   # from orders
    topo.dead_letter([b"orphan"], queue=gone, exchange="", key=gone)
    topo.dead_letter([b"kept too"])
    ch.queue_delete(gone)
    r = sb("dlq", "replay", topo.dlq)
    assert r.returncode == 4, (r.stdout, r.stderr)
    out = r.stdout.decode()
    assert "replayed 2, left 1" in out
    assert "NO_ROUTE" in out and gone in out
    # The orphan stays in the DLQ, unchanged; the others went home.
    left = get_all(ch, topo.dlq)
    assert [b for _, _, b in left] == [b"orphan"]
    assert left[0][1].headers["x-death"][0]["queue"] == gone
    assert [b for _, _, b in get_all(ch, topo.orders)] == [b"kept", b"kept too"]


def test_dlq_replay_of_a_missing_queue_is_exit_1(sb):
    r = sb("dlq", "replay", unique("nope"))
    assert r.returncode == 1


def test_dlq_bad_arguments_are_exit_2(sb):
    assert sb("dlq").returncode == 2
    assert sb("dlq", "show").returncode == 2
    assert sb("dlq", "frobnicate", "q").returncode == 2
    assert sb("dlq", "show", "q", "--to", "x").returncode == 2
    r = sb("dlq", "--help")
    assert r.returncode == 0 and b"redelivered=true" in r.stdout


# ------------------------------------------------------------------ management API

@pytest.mark.switchboard_only
def test_dlq_list_shows_where_dead_letters_go_and_how_many(sb, topo, ch):
    topo.dead_letter([b"a", b"b"])
    r = sb("dlq", "list", topo.orders)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["VHOST", "QUEUE", "DLX"]
    row = [ln for ln in lines if topo.dlq in ln]
    assert len(row) == 1, lines
    assert row[0].split()[1:4] == [topo.orders, topo.dlx, "(original"]
    assert row[0].split()[-1] == "2"


@pytest.mark.switchboard_only
def test_dlq_list_takes_the_dead_letter_routing_key_into_account(sb, ch):
    dlx, src, hit, miss = unique("dlx"), unique("src"), unique("hit"), unique("miss")
    ch.exchange_declare(dlx, "topic")
    ch.queue_declare(src, arguments={"x-dead-letter-exchange": dlx,
                                     "x-dead-letter-routing-key": "dead.orders"})
    for q, key in ((hit, "dead.*"), (miss, "alive.#")):
        ch.queue_declare(q)
        ch.queue_bind(q, dlx, key)
    try:
        r = sb("dlq", "list", src)
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        assert hit in out and miss not in out, out
    finally:
        for q in (src, hit, miss):
            ch.queue_delete(q)
        ch.exchange_delete(dlx)


def http_of(broker):
    if not broker.http_url:
        pytest.skip("no HTTP API")
    u = urllib.parse.urlparse(broker.http_url)
    return u.hostname, u.port


def q(name):
    return urllib.parse.quote(name, safe="")


@pytest.mark.switchboard_only
def test_http_get_dlq_returns_histories_without_consuming(broker, topo, ch):
    topo.dead_letter([b"hello", b"\xff\xfe"])
    status, _, body = request(http_of(broker), "GET", f"/api/dlq/%2F/{q(topo.dlq)}?limit=5")
    assert status == 200, body
    assert body["name"] == topo.dlq and body["vhost"] == "/"
    msgs = body["messages"]
    assert len(msgs) == 2
    m = msgs[0]
    assert m["payload_preview"] == "hello" and m["payload_encoding"] == "string"
    assert msgs[1]["payload_encoding"] == "base64"
    assert m["message_id"] == "m0"
    d = m["x-death"][0]
    assert d["queue"] == topo.orders and d["reason"] == "rejected" and d["count"] == 1
    assert d["exchange"] == topo.shop and d["routing-keys"] == ["order.placed"]
    assert m["x-first-death-queue"] == topo.orders
    assert [b for _, _, b in get_all(ch, topo.dlq)] == [b"hello", b"\xff\xfe"]


@pytest.mark.switchboard_only
def test_http_get_dlq_of_missing_queue_is_404_and_bad_limit_400(broker):
    http = http_of(broker)
    assert request(http, "GET", f"/api/dlq/%2F/{unique('nope')}")[0] == 404
    assert request(http, "GET", "/api/dlq/nosuchvhost/q")[0] == 404


@pytest.mark.switchboard_only
def test_http_replay_moves_back_and_leaves_the_orphans(broker, topo, ch):
    gone = unique("gone")
    ch.queue_declare(gone, arguments={"x-dead-letter-exchange": topo.dlx})
    topo.dead_letter([b"home"])
    topo.dead_letter([b"orphan"], queue=gone, exchange="", key=gone)
    ch.queue_delete(gone)
    status, _, body = request(http_of(broker), "POST", f"/api/dlq/%2F/{q(topo.dlq)}/replay")
    assert status == 200, body
    assert body["replayed"] == 1 and body["left"] == 1
    assert gone in body["left_messages"][0]["reason"]
    assert [b for _, _, b in get_all(ch, topo.orders)] == [b"home"]
    assert [b for _, _, b in get_all(ch, topo.dlq)] == [b"orphan"]


@pytest.mark.switchboard_only
def test_http_replay_to_and_limit(broker, topo, ch):
    other = unique("retry")
    ch.queue_declare(other)
    try:
        topo.dead_letter([b"1", b"2", b"3"])
        status, _, body = request(http_of(broker), "POST",
                                  f"/api/dlq/%2F/{q(topo.dlq)}/replay?limit=2&to={q(other)}")
        assert status == 200, body
        assert body == {"replayed": 2, "left": 0, "left_messages": []}
        assert [b for _, _, b in get_all(ch, other)] == [b"1", b"2"]
        assert depth(ch, topo.dlq) == 1
    finally:
        ch.queue_delete(other)
