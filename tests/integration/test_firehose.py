"""RabbitMQ's firehose tracer: with tracing on for a vhost, every publish is copied to the
amq.rabbitmq.trace topic exchange with routing key "publish.<exchange>" and every delivery
(consume or get) with "deliver.<queue>", carrying RabbitMQ's headers (exchange_name,
routing_keys, properties, node, redelivered, vhost, connection, channel, user,
routed_queues) and the original body.

Tracing is turned on as each broker allows: `rabbitmqctl trace_on` for the reference
RabbitMQ (started without the management plugin), PUT /api/vhosts/%2F {"tracing": true}
for Switchboard (RabbitMQ's management API call). These tests pass against both.
"""
import json
import subprocess
import time
import urllib.request

import pika
import pytest

import brokers
from helpers import get_all, get_one, unique, wait_for
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)


def set_tracing(broker, on):
    """Turns the firehose of vhost / on or off."""
    if broker.kind == "rabbitmq":
        subprocess.run([str(brokers.RABBIT_BIN / "rabbitmqctl"), "-n", broker.node,
                        "trace_on" if on else "trace_off", "-p", "/"], env=broker.env,
                       check=True, capture_output=True, timeout=60)
        return
    if not broker.http_url:
        pytest.skip("no way to turn tracing on: the broker under test has no HTTP URL")
    req = urllib.request.Request(broker.http_url + "/api/vhosts/%2F", method="PUT",
                                 data=json.dumps({"tracing": on}).encode(),
                                 headers={"Authorization": GUEST,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (201, 204)


@pytest.fixture(scope="module")
def tracing(broker):
    set_tracing(broker, True)
    yield
    set_tracing(broker, False)


@pytest.fixture
def firehose(tracing, ch):
    """A queue bound to amq.rabbitmq.trace with '#': every trace message of this test."""
    q = unique("firehose")
    ch.queue_declare(q, exclusive=True)
    ch.queue_bind(q, "amq.rabbitmq.trace", "#")
    return q


def traces(ch, fq, n, want=lambda m: True, timeout=5.0):
    """Waits until fq holds n trace messages for which want(method) holds; returns them
    (method, properties, body), in arrival order. Other trace messages are dropped."""
    got = []

    def enough():
        got.extend(t for t in get_all(ch, fq) if want(t[0]))
        return len(got) >= n
    wait_for(enough, timeout=timeout, what=f"{n} trace messages")
    return got


def mine(*names):
    """A filter for trace messages about these exchanges/queues only."""
    keys = {f"publish.{x}" for x in names} | {f"deliver.{x}" for x in names}
    return lambda m: m.routing_key in keys


def client_port(conn):
    return conn._impl._transport._sock.getsockname()[1]


PUBLISH_KEYS = ["exchange_name", "routing_keys", "properties", "node", "vhost", "connection",
                "channel", "user", "routed_queues"]
DELIVER_KEYS = ["exchange_name", "routing_keys", "properties", "node", "redelivered", "vhost",
                "connection", "channel", "user"]


def test_publish_and_get_are_copied_with_rabbitmqs_headers_and_the_body(broker, conn, ch,
                                                                       firehose):
    q, q2 = unique("fh"), unique("fh-cc")
    ch.queue_declare(q)
    ch.queue_declare(q2)
    ch.confirm_delivery()
    props = pika.BasicProperties(content_type="text/plain", delivery_mode=2,
                                 correlation_id="c-7", headers={"k": "v", "CC": [q2]})
    ch.basic_publish("", q, b"the body", props)
    method, _, _ = get_one(ch, q, auto_ack=False)
    ch.basic_ack(method.delivery_tag)

    (pm, pp, pb), (dm, dp, db) = traces(ch, firehose, 2, mine("", q))
    assert pm.exchange == "amq.rabbitmq.trace"
    assert pm.routing_key == "publish."           # the default exchange's name is ""
    assert pb == b"the body" and db == b"the body"
    # Only the headers property is set on a trace message.
    assert pp.content_type is None and pp.delivery_mode is None
    h = pp.headers
    assert list(h) == PUBLISH_KEYS
    assert h["exchange_name"] == ""
    assert h["routing_keys"] == [q, q2]
    assert h["properties"] == {"content_type": "text/plain", "delivery_mode": 2,
                               "correlation_id": "c-7", "headers": {"k": "v", "CC": [q2]}}
    assert isinstance(h["node"], str) and "@" in h["node"]
    if broker.kind == "switchboard":   # the name the management API and metrics use too
        assert h["node"] == "switchboard@localhost"
    assert h["vhost"] == "/"
    assert h["connection"].startswith(f"127.0.0.1:{client_port(conn)}")
    assert h["channel"] == ch.channel_number
    assert h["user"] == "guest"
    assert sorted(h["routed_queues"]) == sorted([q, q2])

    assert dm.routing_key == f"deliver.{q}"
    d = dp.headers
    assert list(d) == DELIVER_KEYS
    assert d["exchange_name"] == "" and d["routing_keys"] == [q, q2]
    assert d["properties"] == h["properties"]
    assert d["redelivered"] == 0
    assert d["channel"] == ch.channel_number and d["user"] == "guest" and d["vhost"] == "/"
    assert d["connection"] == h["connection"]
    ch.queue_delete(q)
    ch.queue_delete(q2)


def test_consumer_deliveries_and_redelivery_are_traced(connect, ch, firehose):
    x, q = unique("fhx"), unique("fhq")
    ch.exchange_declare(x, "topic")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "order.*")
    ch.confirm_delivery()
    ch.basic_publish(x, "order.placed", b"o-1")
    c2 = connect()
    cons = c2.channel()
    seen = []

    def on_msg(c, m, p, b):
        seen.append(m.redelivered)
        if not m.redelivered:
            c.basic_nack(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)
    cons.basic_consume(q, on_msg)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        c2.process_data_events(time_limit=0.05)
    assert seen == [False, True]

    got = traces(ch, firehose, 3, mine(x, q))
    keys = [m.routing_key for m, _, _ in got]
    assert keys == [f"publish.{x}", f"deliver.{q}", f"deliver.{q}"]
    pub = got[0][1].headers
    assert pub["exchange_name"] == x and pub["routing_keys"] == ["order.placed"]
    assert pub["routed_queues"] == [q]
    assert pub["properties"] == {}
    assert [t[1].headers["redelivered"] for t in got[1:]] == [0, 1]
    assert all(t[1].headers["channel"] == cons.channel_number for t in got[1:])
    assert all(t[2] == b"o-1" for t in got)
    ch.queue_delete(q)
    ch.exchange_delete(x)


def test_unroutable_publish_is_traced_with_no_routed_queues(ch, firehose):
    x = unique("fhx")
    ch.exchange_declare(x, "direct")
    ch.confirm_delivery()
    ch.basic_publish(x, "nobody", b"lost")
    (m, p, b), = traces(ch, firehose, 1, mine(x))
    assert m.routing_key == f"publish.{x}"
    assert p.headers["routed_queues"] == []
    assert b == b"lost"
    ch.exchange_delete(x)


def test_consuming_the_firehose_does_not_feed_it(ch, firehose):
    q = unique("fhq")
    ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"once")
    first = traces(ch, firehose, 1, mine("", q))
    # Getting trace messages off the firehose queue is a delivery too, but of messages
    # published to amq.rabbitmq.trace: never traced, or it would never stop.
    ch.basic_publish("", q, b"twice")
    later = traces(ch, firehose, 1, lambda m: True)
    assert all(not m.routing_key.startswith("deliver.firehose") for m, _, _ in first + later)
    ch.queue_delete(q)


def test_with_tracing_off_nothing_is_copied(broker, ch, tracing):
    fq, q = unique("firehose"), unique("fhq")
    ch.queue_declare(fq, exclusive=True)
    ch.queue_bind(fq, "amq.rabbitmq.trace", "#")
    ch.queue_declare(q)
    set_tracing(broker, False)
    try:
        ch.confirm_delivery()
        ch.basic_publish("", q, b"quiet")
        get_one(ch, q)
        time.sleep(0.3)
        assert [m.routing_key for m, _, _ in get_all(ch, fq) if q in m.routing_key] == []
    finally:
        set_tracing(broker, True)
    ch.queue_delete(q)


def test_vhost_shows_and_sets_tracing_over_http(http, tracing):  # noqa: F811
    status, _, body = request(http, "GET", "/api/vhosts/%2F")
    assert status == 200 and body["tracing"] is True
    status, _, _ = request(http, "PUT", "/api/vhosts/%2F", body=json.dumps({"tracing": False}),
                           headers={"Content-Type": "application/json"})
    assert status == 204
    assert request(http, "GET", "/api/vhosts/%2F")[2]["tracing"] is False
    assert [v["tracing"] for v in request(http, "GET", "/api/vhosts")[2] if v["name"] == "/"] \
        == [False]
    status, _, _ = request(http, "PUT", "/api/vhosts/%2F", body=json.dumps({"tracing": True}),
                           headers={"Content-Type": "application/json"})
    assert status == 204 and request(http, "GET", "/api/vhosts/%2F")[2]["tracing"] is True
