"""HTTP management API: object totals, queues, exchanges, bindings, REST publish.

RabbitMQ management's JSON shapes and field names (a subset). The reference run starts
RabbitMQ without the management plugin, so the `http` fixture skips there; the unmarked
tests encode what RabbitMQ 3.10's management does and are meant to pass against one (point
AMQP_URL/HTTP_URL at it). Tests of Switchboard's own choices are switchboard_only.
Stdlib HTTP (http.client) plus pika to see what the API did.
"""
import base64
import json
import time
import urllib.parse

import pytest

from helpers import get_one, unique, wait_for
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)

JSON = {"Content-Type": "application/json"}


def q(name):
    return urllib.parse.quote(name, safe="")


def put(http, path, body):
    return request(http, "PUT", path, body=json.dumps(body).encode(), headers=JSON)


def post(http, path, body):
    return request(http, "POST", path, body=json.dumps(body).encode(), headers=JSON)


def publish(http, exchange, rk, payload, props=None, encoding="string"):
    return post(http, f"/api/exchanges/%2F/{q(exchange)}/publish",
                {"properties": props or {}, "routing_key": rk, "payload": payload,
                 "payload_encoding": encoding})


def wait_queue(http, name, pred, timeout=10.0):
    """RabbitMQ's queue statistics lag; poll until pred(queue JSON) holds."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = request(http, "GET", f"/api/queues/%2F/{q(name)}")
        if status == 200 and pred(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"queue {name} never matched; last: {status} {body}")
        time.sleep(0.1)


# ------------------------------------------------------------------------- overview

@pytest.mark.switchboard_only
def test_overview_counts_queues_exchanges_consumers(http, ch, qname):
    before = request(http, "GET", "/api/overview")[2]["object_totals"]
    ch.queue_declare(qname)
    ch.exchange_declare(qname + "-x", "fanout")
    ch.basic_consume(qname, lambda *a: None)
    after = request(http, "GET", "/api/overview")[2]["object_totals"]
    assert after["queues"] == before["queues"] + 1
    assert after["exchanges"] == before["exchanges"] + 1
    assert after["consumers"] == before["consumers"] + 1
    ch.exchange_delete(qname + "-x")
    ch.queue_delete(qname)


def test_overview_counts_connections_and_channels(http, connect):
    def totals():
        return request(http, "GET", "/api/overview")[2]["object_totals"]

    # RabbitMQ's totals lag by its statistics interval; Switchboard's are exact at once.
    before = totals()
    c = connect()
    c.channel()
    c.channel()
    wait_for(lambda: (lambda t: t["connections"] == before["connections"] + 1 and
                      t["channels"] == before["channels"] + 2)(totals()),
             timeout=15, interval=0.1, what="the new connection and its 2 channels counted")
    c.close()
    wait_for(lambda: (lambda t: t["connections"] == before["connections"] and
                      t["channels"] == before["channels"])(totals()),
             timeout=15, interval=0.02, what="the closed connection no longer counted")


@pytest.mark.switchboard_only
def test_overview_queue_totals_count_messages(http, ch, qname):
    ch.queue_declare(qname)
    before = request(http, "GET", "/api/overview")[2]["queue_totals"]
    for _ in range(3):
        ch.basic_publish("", qname, b"m")
    ch.basic_get(qname, auto_ack=False)
    totals = request(http, "GET", "/api/overview")[2]["queue_totals"]
    assert totals["messages_ready"] == before["messages_ready"] + 2
    assert totals["messages_unacknowledged"] == before["messages_unacknowledged"] + 1
    assert totals["messages"] == totals["messages_ready"] + totals["messages_unacknowledged"]
    ch.queue_delete(qname)


def test_overview_counts_the_predeclared_exchanges(http):
    assert request(http, "GET", "/api/overview")[2]["object_totals"]["exchanges"] >= 7


# ------------------------------------------------------------------------- queues

def test_queue_declared_over_amqp_is_listed_with_rabbitmq_fields(http, ch, qname):
    ch.queue_declare(qname, durable=False, arguments={"x-max-length": 5})

    def listed():
        status, _, body = request(http, "GET", "/api/queues/%2F")
        assert status == 200
        mine = [x for x in body if x["name"] == qname]
        assert len(mine) <= 1
        return mine and "state" in mine[0] and mine[0]  # RabbitMQ adds state with its stats

    qj = wait_for(listed, timeout=15, interval=0.1, what="the queue listed with its state")
    for k in ("name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "state"):
        assert k in qj, k
    assert qj["vhost"] == "/"
    assert qj["durable"] is False and qj["auto_delete"] is False
    assert qj["arguments"] == {"x-max-length": 5}
    assert qj["state"] == "running"
    ch.queue_delete(qname)


def test_queue_list_over_all_vhosts_includes_the_queue(http, ch, qname):
    ch.queue_declare(qname)
    body = request(http, "GET", "/api/queues")[2]
    assert qname in [x["name"] for x in body]
    ch.queue_delete(qname)


def test_queue_counts_ready_unacked_and_consumers(http, connect, qname):
    c = connect()
    ch = c.channel()
    ch.queue_declare(qname)
    for i in range(3):
        ch.basic_publish("", qname, b"x" * 10)
    ch.basic_get(qname, auto_ack=False)
    ch2 = c.channel()
    ch2.basic_consume(qname, lambda *a: None, auto_ack=False)
    body = wait_queue(http, qname, lambda b: b.get("consumers") == 1 and
                      b.get("messages") == 3)
    assert body["messages_ready"] + body["messages_unacknowledged"] == 3
    ch2.close()
    ch.queue_delete(qname)


@pytest.mark.switchboard_only
def test_queue_counts_are_exact_at_once(http, ch, qname):
    ch.queue_declare(qname)
    ch.basic_publish("", qname, b"abc")
    ch.basic_publish("", qname, b"de")
    ch.basic_get(qname, auto_ack=False)
    body = request(http, "GET", f"/api/queues/%2F/{qname}")[2]
    assert (body["messages"], body["messages_ready"], body["messages_unacknowledged"]) == (2, 1, 1)
    assert body["message_bytes_ready"] == 2
    assert body["consumers"] == 0
    ch.queue_delete(qname)


def test_missing_queue_is_404(http):
    status, _, body = request(http, "GET", f"/api/queues/%2F/{unique('nope')}")
    assert status == 404
    assert body["error"] == "Object Not Found"


def test_queues_of_missing_vhost_is_404(http):
    assert request(http, "GET", "/api/queues/no-such-vhost-here")[0] == 404


def test_put_queue_creates_it_201_and_pika_sees_it(http, ch, qname):
    status, _, _ = put(http, f"/api/queues/%2F/{qname}",
                       {"durable": False, "auto_delete": False,
                        "arguments": {"x-message-ttl": 60000}})
    assert status == 201
    ok = ch.queue_declare(qname, passive=True)
    assert ok.method.message_count == 0
    body = request(http, "GET", f"/api/queues/%2F/{qname}")[2]
    assert body["arguments"] == {"x-message-ttl": 60000}
    ch.queue_delete(qname)


def test_put_existing_equivalent_queue_is_204(http, ch, qname):
    assert put(http, f"/api/queues/%2F/{qname}", {"durable": False})[0] == 201
    assert put(http, f"/api/queues/%2F/{qname}", {"durable": False})[0] == 204
    ch.queue_delete(qname)


def test_put_inequivalent_queue_is_400_with_rabbitmq_reason(http, ch, qname):
    ch.queue_declare(qname, durable=False)
    status, _, body = put(http, f"/api/queues/%2F/{qname}", {"durable": True})
    assert status == 400
    assert body["error"] == "bad_request"
    assert body["reason"] == (f"inequivalent arg 'durable' for queue '{qname}' in vhost '/': "
                              "received 'true' but current is 'false'")
    ch.queue_delete(qname)


def test_put_queue_with_inequivalent_argument_is_400(http, ch, qname):
    ch.queue_declare(qname, arguments={"x-max-length": 5})
    status, _, body = put(http, f"/api/queues/%2F/{qname}",
                          {"arguments": {"x-max-length": 6}})
    assert status == 400
    assert "inequivalent arg 'x-max-length'" in body["reason"]
    ch.queue_delete(qname)


def test_put_queue_arguments_reach_the_broker_as_amqp_types(http, ch, qname):
    """x-max-length from JSON is an integer the broker enforces."""
    assert put(http, f"/api/queues/%2F/{qname}", {"arguments": {"x-max-length": 1}})[0] == 201
    ch.basic_publish("", qname, b"1")
    ch.basic_publish("", qname, b"2")
    m, _, b = get_one(ch, qname)
    assert b == b"2"
    ch.queue_delete(qname)


def test_delete_queue_is_204_then_404(http, ch, qname):
    ch.queue_declare(qname)
    assert request(http, "DELETE", f"/api/queues/%2F/{qname}")[0] == 204
    assert request(http, "DELETE", f"/api/queues/%2F/{qname}")[0] == 404
    assert request(http, "GET", f"/api/queues/%2F/{qname}")[0] == 404


def test_delete_queue_if_unused_refuses_a_queue_with_consumers(http, ch, qname):
    ch.queue_declare(qname)
    ch.basic_consume(qname, lambda *a: None)
    status, _, body = request(http, "DELETE", f"/api/queues/%2F/{qname}?if-unused=true")
    assert status == 400
    ch.queue_delete(qname)


def test_purge_empties_the_queue(http, ch, qname):
    ch.queue_declare(qname)
    for _ in range(4):
        ch.basic_publish("", qname, b"x")
    assert request(http, "DELETE", f"/api/queues/%2F/{qname}/contents")[0] == 204
    assert ch.queue_declare(qname, passive=True).method.message_count == 0
    ch.queue_delete(qname)


def test_purge_missing_queue_is_404(http):
    assert request(http, "DELETE", f"/api/queues/%2F/{unique('nope')}/contents")[0] == 404


# ------------------------------------------------------------------------- exchanges

def test_exchanges_list_the_default_and_amq_ones(http):
    status, _, body = request(http, "GET", "/api/exchanges/%2F")
    assert status == 200
    by_name = {x["name"]: x for x in body}
    for name, typ in (("", "direct"), ("amq.direct", "direct"), ("amq.fanout", "fanout"),
                      ("amq.topic", "topic"), ("amq.headers", "headers")):
        assert by_name[name]["type"] == typ, name
        assert by_name[name]["durable"] is True
    for k in ("name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"):
        assert k in by_name["amq.direct"], k


def test_default_exchange_is_addressed_as_amq_default(http):
    status, _, body = request(http, "GET", "/api/exchanges/%2F/amq.default")
    assert status == 200
    assert body["name"] == "" and body["type"] == "direct"


def test_put_exchange_creates_it_and_amqp_can_use_it(http, ch, xname, qname):
    status = put(http, f"/api/exchanges/%2F/{xname}",
                 {"type": "fanout", "durable": False,
                  "arguments": {"alternate-exchange": "amq.direct"}})[0]
    assert status == 201
    ch.exchange_declare(xname, "fanout", passive=True)
    body = request(http, "GET", f"/api/exchanges/%2F/{xname}")[2]
    assert body["type"] == "fanout" and body["durable"] is False
    assert body["arguments"] == {"alternate-exchange": "amq.direct"}
    ch.queue_declare(qname)
    ch.queue_bind(qname, xname)
    ch.basic_publish(xname, "", b"via-fanout")
    assert get_one(ch, qname)[2] == b"via-fanout"
    ch.queue_delete(qname)
    ch.exchange_delete(xname)


def test_put_exchange_twice_is_204(http, ch, xname):
    assert put(http, f"/api/exchanges/%2F/{xname}", {"type": "topic"})[0] == 201
    assert put(http, f"/api/exchanges/%2F/{xname}", {"type": "topic"})[0] == 204
    ch.exchange_delete(xname)


def test_put_inequivalent_exchange_is_400(http, ch, xname):
    ch.exchange_declare(xname, "direct")
    status, _, body = put(http, f"/api/exchanges/%2F/{xname}", {"type": "fanout"})
    assert status == 400
    assert body["reason"] == (f"inequivalent arg 'type' for exchange '{xname}' in vhost '/': "
                              "received 'fanout' but current is 'direct'")
    ch.exchange_delete(xname)


def test_delete_exchange_is_204_then_404(http, ch, xname):
    ch.exchange_declare(xname, "direct")
    assert request(http, "DELETE", f"/api/exchanges/%2F/{xname}")[0] == 204
    assert request(http, "DELETE", f"/api/exchanges/%2F/{xname}")[0] == 404


def test_missing_exchange_is_404(http):
    assert request(http, "GET", f"/api/exchanges/%2F/{unique('nope')}")[0] == 404


# ------------------------------------------------------------------------- bindings

def test_bindings_show_exchange_and_default_bindings(http, ch, xname, qname):
    ch.exchange_declare(xname, "direct")
    ch.queue_declare(qname)
    ch.queue_bind(qname, xname, "rk.1")
    ch.exchange_declare(xname + "-2", "fanout")
    ch.exchange_bind(xname + "-2", xname, "e2e")
    status, _, body = request(http, "GET", "/api/bindings/%2F")
    assert status == 200
    default = [b for b in body if b["source"] == "" and b["destination"] == qname]
    assert default == [{"source": "", "vhost": "/", "destination": qname,
                        "destination_type": "queue", "routing_key": qname, "arguments": {},
                        "properties_key": qname}]
    to_q = [b for b in body if b["source"] == xname and b["destination"] == qname]
    assert len(to_q) == 1
    assert to_q[0]["routing_key"] == "rk.1" and to_q[0]["properties_key"] == "rk.1"
    to_x = [b for b in body if b["source"] == xname and b["destination"] == xname + "-2"]
    assert len(to_x) == 1 and to_x[0]["destination_type"] == "exchange"
    all_vhosts = request(http, "GET", "/api/bindings")[2]
    assert any(b["source"] == xname for b in all_vhosts)
    ch.exchange_delete(xname + "-2")
    ch.exchange_delete(xname)
    ch.queue_delete(qname)


def test_binding_arguments_are_shown_as_json(http, ch, qname):
    ch.queue_declare(qname)
    ch.queue_bind(qname, "amq.headers", arguments={"x-match": "all", "k": 1, "f": True})
    body = request(http, "GET", "/api/bindings/%2F")[2]
    mine = [b for b in body if b["source"] == "amq.headers" and b["destination"] == qname]
    assert mine[0]["arguments"] == {"x-match": "all", "k": 1, "f": True}
    assert mine[0]["properties_key"].startswith(qname + "~")  # pika binds with key = queue
    ch.queue_delete(qname)


# ------------------------------------------------------------------------- publish

def test_publish_to_bound_queue_is_routed_and_pika_receives_it(http, ch, qname):
    ch.queue_declare(qname)
    status, _, body = publish(http, "amq.default", qname, "hello",
                              {"content_type": "text/plain", "correlation_id": "c-1",
                               "headers": {"h1": "v", "n": 7}, "delivery_mode": 2,
                               "message_id": "m-1", "priority": 3})
    assert status == 200
    assert body == {"routed": True}
    _, props, data = get_one(ch, qname)
    assert data == b"hello"
    assert props.content_type == "text/plain"
    assert props.correlation_id == "c-1"
    assert props.message_id == "m-1"
    assert props.delivery_mode == 2
    assert props.priority == 3
    assert props.headers == {"h1": "v", "n": 7}
    ch.queue_delete(qname)


def test_publish_unroutable_answers_routed_false(http, xname, ch):
    ch.exchange_declare(xname, "direct")
    status, _, body = publish(http, xname, "nobody", "x")
    assert status == 200
    assert body == {"routed": False}
    ch.exchange_delete(xname)


def test_publish_base64_payload_is_decoded(http, ch, qname):
    ch.queue_declare(qname)
    raw = bytes(range(256))
    status, _, body = publish(http, "amq.default", qname, base64.b64encode(raw).decode(),
                              encoding="base64")
    assert (status, body) == (200, {"routed": True})
    assert get_one(ch, qname)[2] == raw
    ch.queue_delete(qname)


def test_publish_through_a_topic_exchange_with_pika_consumer(http, conn, qname):
    ch = conn.channel()
    ch.queue_declare(qname)
    ch.queue_bind(qname, "amq.topic", "orders.*")
    got = []
    ch.basic_consume(qname, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert publish(http, "amq.topic", "orders.new", "o-1")[2] == {"routed": True}
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    assert got == [b"o-1"]
    ch.queue_delete(qname)


def test_publish_to_missing_exchange_is_400_with_the_amqp_404(http):
    name = unique("nope")
    status, _, body = publish(http, name, "k", "x")
    assert status == 400
    assert body == {"error": "bad_request",
                    "reason": f"404 NOT_FOUND - no exchange '{name}' in vhost '/'"}


def test_publish_without_payload_encoding_is_400(http):
    status, _, body = post(http, "/api/exchanges/%2F/amq.default/publish",
                           {"properties": {}, "routing_key": "k", "payload": "x"})
    assert status == 400
    assert body["error"] == "bad_request"


def test_publish_with_bad_encoding_is_400(http):
    status, _, _ = publish(http, "amq.default", "k", "x", encoding="rot13")
    assert status == 400


@pytest.mark.switchboard_only
def test_publish_expiration_is_honoured(http, ch, qname):
    ch.queue_declare(qname)
    assert publish(http, "amq.default", qname, "x", {"expiration": "50"})[2] == {"routed": True}
    time.sleep(0.2)
    m, _, _ = ch.basic_get(qname, auto_ack=True)
    assert m is None
    ch.queue_delete(qname)


@pytest.mark.switchboard_only
def test_publish_with_foreign_user_id_is_400(http):
    status, _, body = publish(http, "amq.default", "k", "x", {"user_id": "mallory"})
    assert status == 400
    assert "user_id property set to 'mallory'" in body["reason"]


@pytest.mark.switchboard_only
def test_rest_publish_of_a_persistent_message_answers_once_it_is_on_disk():
    """The answer comes after the fsync: a kill -9 right after it loses nothing."""
    import os
    import signal
    import tempfile
    import pika
    import brokers
    from test_http import http as http_fixture

    data = tempfile.mkdtemp(prefix="sb-rest-durable-")
    b = brokers.start_switchboard(data_dir=data)
    name = unique("q")
    try:
        hp = http_fixture.__wrapped__(b)
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        c.channel().queue_declare(name, durable=True)
        c.close()
        for i in range(20):
            st, _, body = publish(hp, "amq.default", name, f"m{i}", props={"delivery_mode": 2})
            assert (st, body) == (200, {"routed": True})
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(5)
        b2 = brokers.start_switchboard(data_dir=data, amqp_port=b.port)
        try:
            c = pika.BlockingConnection(pika.URLParameters(b2.amqp_url))
            ch = c.channel()
            got = [ch.basic_get(name, auto_ack=True)[2] for _ in range(20)]
            assert got == [f"m{i}".encode() for i in range(20)]
            c.close()
        finally:
            b2.stop()
    finally:
        b.stop()
