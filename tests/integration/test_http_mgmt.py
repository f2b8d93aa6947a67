"""HTTP management API, milestone 5: connections, channels, consumers, per-object bindings,
"get messages", nodes, whoami, aliveness test, and message_stats with rates.

The unmarked tests encode what RabbitMQ 3.10's management plugin does: the reference run
(SB_TARGET=rabbitmq) starts RabbitMQ with the plugin, so they run there too. RabbitMQ's
statistics lag (collect_statistics_interval; brokers.py sets 1 s), so checks of listed
objects and counters poll with a bound. Switchboard-only choices are marked.
"""
import base64
import json
import time
import urllib.parse

import pika
import pytest

import brokers
from helpers import get_one, unique, wait_for
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)

JSON = {"Content-Type": "application/json"}
LAG = 15.0  # seconds RabbitMQ may take to show a new object or count


def q(name):
    return urllib.parse.quote(name, safe="")


def get(http, path):
    status, _, body = request(http, "GET", path)
    assert status == 200, (path, status, body)
    return body


def post(http, path, body):
    return request(http, "POST", path, body=json.dumps(body).encode(), headers=JSON)


def named_connection(broker, name):
    """A pika connection whose client_properties carry connection_name = name."""
    params = pika.URLParameters(broker.amqp_url)
    params.connection_attempts = 1
    params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


def find_connection(http, name, pred=lambda c: True):
    """The /api/connections entry with user_provided_name == name, once pred holds."""
    def look():
        for c in get(http, "/api/connections"):
            if c.get("user_provided_name") == name and pred(c):
                return c
        return None
    return wait_for(look, timeout=LAG, interval=0.2, what=f"connection {name} listed")


@pytest.fixture
def named(broker):
    opened = []

    def _open(name=None):
        c = named_connection(broker, name or unique("conn"))
        opened.append(c)
        return c

    yield _open
    for c in opened:
        try:
            if c.is_open:
                c.close()
        except Exception:
            pass


# ------------------------------------------------------------------------- connections

def test_connection_is_listed_with_peer_user_and_client_properties(http, named):
    name = unique("conn")
    c = named(name)
    c.channel()
    c.channel()
    conn = find_connection(http, name, lambda c: c.get("channels") == 2)
    assert conn["user"] == "guest"
    assert conn["vhost"] == "/"
    assert conn["state"] == "running"
    assert conn["protocol"] == "AMQP 0-9-1"
    assert conn["peer_host"] == "127.0.0.1"
    local_port = c._impl._transport._sock.getsockname()[1]
    assert conn["peer_port"] == local_port
    assert conn["name"].startswith(f"127.0.0.1:{local_port} -> ")
    assert conn["client_properties"]["connection_name"] == name
    assert "Pika" in conn["client_properties"]["product"]
    assert conn["client_properties"]["capabilities"]["publisher_confirms"] is True
    assert conn["auth_mechanism"] == "PLAIN"
    assert conn["frame_max"] > 0 and conn["channel_max"] > 0
    assert isinstance(conn["connected_at"], int) and conn["connected_at"] > 1_600_000_000_000


def test_connection_by_name_and_per_vhost_listing(http, named):
    name = unique("conn")
    named(name)
    conn = find_connection(http, name)
    one = get(http, "/api/connections/" + q(conn["name"]))
    assert one["name"] == conn["name"] and one["user_provided_name"] == name
    in_vhost = [c["name"] for c in get(http, "/api/vhosts/%2F/connections")]
    assert conn["name"] in in_vhost


def test_missing_connection_is_404(http):
    status, _, body = request(http, "GET", "/api/connections/" + q("127.0.0.1:1 -> 127.0.0.1:2"))
    assert status == 404
    assert body["error"] == "Object Not Found"


def test_delete_connection_closes_it_with_320_and_the_reason(http, named):
    name = unique("victim")
    c = named(name)
    ch = c.channel()
    conn = find_connection(http, name)
    status, _, _ = request(http, "DELETE", "/api/connections/" + q(conn["name"]),
                           headers={"X-Reason": "moving to another node"})
    assert status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            c.process_data_events(time_limit=0.1)
        ch.queue_declare("", exclusive=True)  # still open after 10 s: this fails the test
    assert e.value.reply_code == 320
    assert e.value.reply_text == "CONNECTION_FORCED - moving to another node"
    wait_for(lambda: all(x.get("user_provided_name") != name
                         for x in get(http, "/api/connections")),
             timeout=LAG, interval=0.2, what="closed connection gone from the list")


def test_delete_connection_without_reason_says_management(http, named):
    name = unique("victim")
    c = named(name)
    conn = find_connection(http, name)
    assert request(http, "DELETE", "/api/connections/" + q(conn["name"]))[0] == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            c.process_data_events(time_limit=0.1)
    assert e.value.reply_code == 320
    assert e.value.reply_text == "CONNECTION_FORCED - Closed via management plugin"


# ------------------------------------------------------------------------- channels

def test_channels_show_confirm_mode_prefetch_consumers_and_publishes(http, named, names):
    qn = names("q")
    name = unique("conn")
    c = named(name)
    pub = c.channel()
    pub.confirm_delivery()
    pub.queue_declare(qn)
    for i in range(3):
        pub.basic_publish("", qn, b"m%d" % i)
    cons = c.channel()
    cons.basic_qos(prefetch_count=7)
    cons.basic_consume(qn, lambda *a: None)
    c.process_data_events(time_limit=0.2)
    conn = find_connection(http, name)

    def chans():
        mine = [x for x in get(http, "/api/channels")
                if x["connection_details"]["name"] == conn["name"]]
        by_number = {x["number"]: x for x in mine}
        ok = (len(mine) == 2 and
              by_number[pub.channel_number].get("message_stats", {}).get("publish") == 3 and
              by_number[cons.channel_number].get("consumer_count") == 1)
        return by_number if ok else None

    by_number = wait_for(chans, timeout=LAG, interval=0.2, what="channel stats")
    p, k = by_number[pub.channel_number], by_number[cons.channel_number]
    assert p["confirm"] is True and k["confirm"] is False
    assert p["message_stats"]["confirm"] == 3
    assert k["prefetch_count"] == 7
    assert k["messages_unacknowledged"] == 3
    assert p["name"] == f"{conn['name']} ({pub.channel_number})"
    assert p["user"] == "guest" and p["vhost"] == "/"
    assert p["connection_details"]["peer_port"] == conn["peer_port"]
    of_conn = get(http, f"/api/connections/{q(conn['name'])}/channels")
    assert sorted(x["number"] for x in of_conn) == sorted(by_number)
    one = get(http, "/api/channels/" + q(p["name"]))
    assert one["number"] == pub.channel_number


# ------------------------------------------------------------------------- consumers

def test_consumers_are_listed_with_queue_tag_and_channel(http, named, names):
    qn = names("q")
    name = unique("conn")
    c = named(name)
    ch = c.channel()
    ch.queue_declare(qn)
    ch.basic_qos(prefetch_count=4)
    tag = ch.basic_consume(qn, lambda *a: None, consumer_tag=unique("ctag"))
    conn = find_connection(http, name)

    def mine(path):
        return [x for x in get(http, path) if x["consumer_tag"] == tag]

    found = wait_for(lambda: mine("/api/consumers"), timeout=LAG, interval=0.2,
                     what="consumer listed")
    cons = found[0]
    assert cons["queue"] == {"name": qn, "vhost": "/"}
    assert cons["ack_required"] is True
    assert cons["exclusive"] is False
    assert cons["prefetch_count"] == 4
    assert cons["channel_details"]["connection_name"] == conn["name"]
    assert cons["channel_details"]["number"] == ch.channel_number
    assert mine("/api/consumers/%2F")
    ch.basic_cancel(tag)
    wait_for(lambda: not mine("/api/consumers"), timeout=LAG, interval=0.2,
             what="cancelled consumer gone")


def test_consumers_of_missing_vhost_is_404(http):
    assert request(http, "GET", "/api/consumers/no-such-vhost")[0] == 404


# ------------------------------------------------------------------------- bindings

def test_queue_bindings_list_the_default_binding_then_exchange_ones(http, ch, names):
    qn, xn = names("q"), names("x")
    ch.queue_declare(qn)
    ch.exchange_declare(xn, "direct")
    ch.queue_bind(qn, xn, "rk1")
    body = get(http, f"/api/queues/%2F/{q(qn)}/bindings")
    assert body[0] == {"source": "", "vhost": "/", "destination": qn,
                       "destination_type": "queue", "routing_key": qn, "arguments": {},
                       "properties_key": qn}
    assert [(b["source"], b["routing_key"]) for b in body[1:]] == [(xn, "rk1")]
    ch.exchange_delete(xn)
    ch.queue_delete(qn)


def test_exchange_bindings_as_source_and_destination(http, ch, names):
    src, dst, qn = names("src"), names("dst"), names("q")
    ch.exchange_declare(src, "topic")
    ch.exchange_declare(dst, "fanout")
    ch.queue_declare(qn)
    ch.exchange_bind(dst, src, "a.#")
    ch.queue_bind(qn, src, "b.*")
    source = get(http, f"/api/exchanges/%2F/{q(src)}/bindings/source")
    assert sorted((b["destination"], b["destination_type"], b["routing_key"]) for b in source) == \
        sorted([(dst, "exchange", "a.#"), (qn, "queue", "b.*")])
    assert get(http, f"/api/exchanges/%2F/{q(src)}/bindings/destination") == []
    dest = get(http, f"/api/exchanges/%2F/{q(dst)}/bindings/destination")
    assert [(b["source"], b["routing_key"]) for b in dest] == [(src, "a.#")]
    for x in (src, dst):
        ch.exchange_delete(x)
    ch.queue_delete(qn)


# ------------------------------------------------------------------------- get messages

def fill(ch, qn, bodies, props=None):
    ch.confirm_delivery()
    for b in bodies:
        ch.basic_publish("", qn, b, props or pika.BasicProperties())


def test_get_with_requeue_leaves_messages_redelivered_in_order(http, ch, names):
    qn = names("q")
    ch.queue_declare(qn)
    fill(ch, qn, [b"m0", b"m1", b"m2"],
         pika.BasicProperties(content_type="text/plain", headers={"k": 1}))
    status, _, body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                           {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert status == 200, body
    assert [m["payload"] for m in body] == ["m0", "m1"]
    assert [m["message_count"] for m in body] == [2, 1]
    m = body[0]
    assert m["payload_encoding"] == "string" and m["payload_bytes"] == 2
    assert m["redelivered"] is False
    assert m["exchange"] == "" and m["routing_key"] == qn
    assert m["properties"] == {"content_type": "text/plain", "headers": {"k": 1}}
    again = post(http, f"/api/queues/%2F/{q(qn)}/get",
                 {"count": 5, "ackmode": "reject_requeue_true", "encoding": "auto"})[2]
    assert [(x["payload"], x["redelivered"]) for x in again] == \
        [("m0", True), ("m1", True), ("m2", False)]
    method, _, b = get_one(ch, qn)
    assert b == b"m0" and method.redelivered


def test_get_without_requeue_takes_the_messages(http, ch, names):
    qn = names("q")
    ch.queue_declare(qn)
    fill(ch, qn, [b"a", b"b", b"c"])
    body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                {"count": 2, "ackmode": "ack_requeue_false", "encoding": "auto"})[2]
    assert [m["payload"] for m in body] == ["a", "b"]
    assert ch.queue_declare(qn, passive=True).method.message_count == 1


def test_get_rejected_without_requeue_is_dead_lettered(http, ch, names):
    qn, dlq = names("q"), names("dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(qn, arguments={"x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": dlq})
    fill(ch, qn, [b"bad"])
    body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                {"count": 1, "ackmode": "reject_requeue_false", "encoding": "auto"})[2]
    assert [m["payload"] for m in body] == ["bad"]
    _, props, b = get_one(ch, dlq)
    assert b == b"bad"
    assert props.headers["x-death"][0]["reason"] == "rejected"


def test_get_base64_and_truncate(http, ch, names):
    qn = names("q")
    ch.queue_declare(qn)
    fill(ch, qn, [b"\xff\xfe binary", b"hello world"])
    body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 5})[2]
    assert body[0]["payload_encoding"] == "base64"
    assert base64.b64decode(body[0]["payload"]) == b"\xff\xfe bi"
    assert body[0]["payload_bytes"] == 9
    assert (body[1]["payload"], body[1]["payload_encoding"]) == ("hello", "string")
    b64 = post(http, f"/api/queues/%2F/{q(qn)}/get",
               {"count": 1, "ackmode": "ack_requeue_true", "encoding": "base64"})[2]
    assert b64[0]["payload_encoding"] == "base64"
    assert base64.b64decode(b64[0]["payload"]) == b"\xff\xfe binary"


def test_get_missing_key_or_bad_encoding_is_400(http, ch, names):
    qn = names("q")
    ch.queue_declare(qn)
    status, _, body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                           {"count": 1, "ackmode": "ack_requeue_true"})
    assert status == 400 and body["error"] == "bad_request"
    assert "encoding" in body["reason"]
    status, _, body = post(http, f"/api/queues/%2F/{q(qn)}/get",
                           {"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"})
    assert status == 400
    assert body["reason"] == "Unsupported encoding. Please use auto or base64."


def test_get_from_missing_queue_is_404(http):
    status, _, body = post(http, "/api/queues/%2F/no-such-queue-xyz/get",
                           {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert status == 404 and body["error"] == "not_found"


# ------------------------------------------------------------------------- node, whoami, aliveness

def test_nodes_list_one_running_node_with_resources(http):
    nodes = get(http, "/api/nodes")
    assert len(nodes) == 1
    n = nodes[0]
    assert n["running"] is True
    for k in ("mem_used", "mem_limit", "disk_free", "disk_free_limit", "fd_used", "fd_total",
              "sockets_used", "uptime", "processors"):
        assert isinstance(n[k], int) and n[k] >= 0, (k, n.get(k))
    assert n["mem_limit"] > 0 and n["disk_free"] > 0 and n["fd_used"] > 0
    assert n["mem_alarm"] is False and n["disk_free_alarm"] is False
    assert get(http, "/api/nodes/" + q(n["name"]))["name"] == n["name"]


@pytest.mark.switchboard_only
def test_unknown_node_is_404(http):
    # RabbitMQ 3.10 answers 500 here.
    assert request(http, "GET", "/api/nodes/nobody@nowhere")[0] == 404


def test_whoami_names_the_user(http):
    me = get(http, "/api/whoami")
    assert me["name"] == "guest"
    assert "administrator" in me["tags"]


def test_aliveness_test_is_ok_and_404_for_missing_vhost(http):
    assert get(http, "/api/aliveness-test/%2F") == {"status": "ok"}
    assert request(http, "GET", "/api/aliveness-test/no-such-vhost")[0] == 404


# ------------------------------------------------------------------------- message stats

def stat(obj, key):
    return (obj.get("message_stats") or {}).get(key, 0)


def test_queue_message_stats_count_publish_get_deliver_ack_redeliver(http, conn, names):
    qn = names("q")
    ch = conn.channel()
    ch.queue_declare(qn)
    fill(ch, qn, [b"1", b"2", b"3", b"4"])
    m, _, _ = ch.basic_get(qn, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=True)       # back, redelivered
    m, _, _ = ch.basic_get(qn, auto_ack=False)           # the redelivery
    ch.basic_ack(m.delivery_tag)
    ch.basic_get(qn, auto_ack=True)
    got = []
    ch.basic_consume(qn, lambda c, mm, p, b: (got.append(b), c.basic_ack(mm.delivery_tag)))
    wait_for(lambda: (conn.process_data_events(time_limit=0.05), len(got) == 2)[1],
             what="deliveries")
    want = {"publish": 4, "get": 2, "get_no_ack": 1, "deliver": 2, "ack": 3, "redeliver": 1,
            "deliver_get": 5}
    body = wait_for(lambda: (lambda b: b if all(stat(b, k) == v for k, v in want.items())
                             else None)(get(http, f"/api/queues/%2F/{q(qn)}")),
                    timeout=LAG, interval=0.2, what=f"queue stats {want}")
    for k in want:
        assert isinstance(body["message_stats"][k + "_details"]["rate"], (int, float))


def test_overview_message_stats_grow_with_traffic(http, ch, names):
    qn = names("q")
    ch.queue_declare(qn)

    def totals():
        return get(http, "/api/overview").get("message_stats") or {}

    before = totals()
    fill(ch, qn, [b"x"] * 5)
    for _ in range(5):
        m, _, _ = ch.basic_get(qn, auto_ack=False)
        ch.basic_ack(m.delivery_tag)

    def grown():
        now = totals()
        return all(now.get(k, 0) - before.get(k, 0) >= 5 for k in ("publish", "confirm", "get", "ack"))

    wait_for(grown, timeout=LAG, interval=0.2, what="overview message_stats")


def test_mandatory_unroutable_publish_counts_as_returned(http, named):
    name = unique("conn")
    c = named(name)
    ch = c.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.direct", unique("nowhere"), b"x", mandatory=True)
    ch.basic_publish("amq.direct", unique("nowhere"), b"y")
    conn = find_connection(http, name)

    def counts():
        for x in get(http, "/api/channels"):
            if x["connection_details"]["name"] == conn["name"] and stat(x, "publish") == 2:
                return x
        return None

    ch_json = wait_for(counts, timeout=LAG, interval=0.2, what="channel publish counts")
    assert stat(ch_json, "return_unroutable") == 1
    assert stat(ch_json, "drop_unroutable") == 1


@pytest.mark.switchboard_only
def test_rates_are_sampled_every_interval():
    """--stats-interval-ms 200: a burst shows as a rate in the next sample, then decays to 0."""
    b = brokers.start_switchboard(extra_args=["--stats-interval-ms", "200"])
    try:
        u = urllib.parse.urlparse(b.http_url)
        h = (u.hostname, u.port)
        wait_for(lambda: request(h, "GET", "/api/overview")[0] == 200, what="HTTP up")
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        qn = unique("q")
        ch.queue_declare(qn)
        ch.confirm_delivery()
        for _ in range(40):
            ch.basic_publish("", qn, b"r")

        def publish_rate():
            return get(h, f"/api/queues/%2F/{q(qn)}")["message_stats"]["publish_details"]["rate"]

        # 40 messages land in one or two 200 ms samples: a rate shows within a second,
        # and is gone once a sample passes with no publishes.
        assert wait_for(publish_rate, timeout=1.0, interval=0.05, what="a publish rate") > 0
        wait_for(lambda: publish_rate() == 0, timeout=3, interval=0.05, what="rate back to 0")
        assert get(h, "/api/overview")["statistics_interval"] == 200
        c.close()
    finally:
        b.stop()
