"""HTTP REST-to-RPC bridge (issue 4): POST /api/rpc/{vhost}/{queue}?timeout_ms=N.

The request body is published to the queue as a call answered over direct reply-to; the
HTTP answer is the reply (200), or 504 at the deadline, 404 for a missing queue, 503 for a
queue nobody consumes. Switchboard-only: RabbitMQ has no such endpoint. A pika responder
thread, with its own connection, serves the queue.
"""
import http.client as httplib
import threading
import time

import pika
import pytest

from helpers import unique
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)

pytestmark = pytest.mark.switchboard_only


class Responder:
    """Serves queue on its own thread: answers each request with reply(body, props) (None:
    no answer) on props.reply_to with the same correlation_id. Keeps what it received."""

    def __init__(self, amqp_url, queue, reply=lambda body, props: body.upper(),
                 content_type="text/plain"):
        self.url, self.queue, self.reply, self.content_type = amqp_url, queue, reply, content_type
        self.received = []
        self.ready = threading.Event()
        self.stop_ = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10), f"responder did not start: {self.error}"
        return self

    def __exit__(self, *exc):
        self.stop_.set()
        self.thread.join(10)

    def _on_request(self, ch, method, props, body):
        self.received.append((props, body))
        out = self.reply(body, props)
        if out is not None:
            ch.basic_publish("", props.reply_to, out, pika.BasicProperties(
                correlation_id=props.correlation_id, content_type=self.content_type))
        ch.basic_ack(method.delivery_tag)

    def _run(self):
        try:
            conn = pika.BlockingConnection(pika.URLParameters(self.url))
            ch = conn.channel()
            ch.queue_declare(self.queue)
            ch.basic_consume(self.queue, self._on_request)
            self.ready.set()
            while not self.stop_.is_set():
                conn.process_data_events(time_limit=0.02)
            ch.queue_delete(self.queue)
            conn.close()
        except Exception as e:  # pragma: no cover - reported through ready/asserts
            self.error = e
            self.ready.set()


def call(http, queue, body=b"hello", timeout_ms=None, headers=None, conn=None, vhost="%2F"):
    path = f"/api/rpc/{vhost}/{queue}"
    if timeout_ms is not None:
        path += f"?timeout_ms={timeout_ms}"
    h = {"Authorization": GUEST}
    h.update(headers or {})
    c = conn or httplib.HTTPConnection(*http, timeout=70)
    try:
        c.request("POST", path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if conn is None:
            c.close()


@pytest.fixture
def rpc_queue():
    return unique("rpc")


def test_call_round_trip_returns_the_reply_with_its_content_type(http, broker, rpc_queue):
    with Responder(broker.amqp_url, rpc_queue):
        status, h, body = call(http, rpc_queue, b"hello world")
    assert status == 200, body
    assert body == b"HELLO WORLD"
    assert h["content-type"] == "text/plain"
    assert h["x-correlation-id"]


def test_given_correlation_id_is_sent_and_echoed(http, broker, rpc_queue):
    with Responder(broker.amqp_url, rpc_queue) as r:
        status, h, body = call(http, rpc_queue, b"x", headers={"X-Correlation-Id": "order-42"})
    assert status == 200
    assert h["x-correlation-id"] == "order-42"
    assert r.received[0][0].correlation_id == "order-42"


def test_request_carries_content_type_reply_to_expiration_and_traceparent(http, broker,
                                                                          rpc_queue):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with Responder(broker.amqp_url, rpc_queue) as r:
        status, _, _ = call(http, rpc_queue, b'{"a":1}', timeout_ms=3000,
                            headers={"Content-Type": "application/json", "traceparent": tp})
    assert status == 200
    props, body = r.received[0]
    assert body == b'{"a":1}'
    assert props.content_type == "application/json"
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    assert props.expiration == "3000"
    assert props.headers == {"traceparent": tp}


def test_reply_without_content_type_is_octet_stream(http, broker, rpc_queue):
    with Responder(broker.amqp_url, rpc_queue, content_type=None):
        status, h, body = call(http, rpc_queue, b"abc")
    assert status == 200 and body == b"ABC"
    assert h["content-type"] == "application/octet-stream"


def test_binary_and_empty_bodies_round_trip(http, broker, rpc_queue):
    with Responder(broker.amqp_url, rpc_queue, reply=lambda b, p: b[::-1]):
        raw = bytes(range(256)) * 4
        assert call(http, rpc_queue, raw)[2] == raw[::-1]
        status, _, body = call(http, rpc_queue, b"")
        assert (status, body) == (200, b"")


def test_no_reply_is_504_within_the_deadline(http, broker, rpc_queue):
    with Responder(broker.amqp_url, rpc_queue, reply=lambda b, p: None):
        t0 = time.monotonic()
        status, h, body = call(http, rpc_queue, b"x", timeout_ms=300,
                               headers={"X-Correlation-Id": "slow-1"})
        elapsed = time.monotonic() - t0
    assert status == 504
    assert b'"error":"timeout"' in body
    assert h["x-correlation-id"] == "slow-1"
    assert 0.29 <= elapsed < 0.3 + 0.5, elapsed


def test_late_reply_after_timeout_is_dropped_and_next_call_works(http, broker, rpc_queue):
    def late(body, props):
        if body == b"late":
            time.sleep(0.4)
        return body.upper()

    with Responder(broker.amqp_url, rpc_queue, reply=late):
        assert call(http, rpc_queue, b"late", timeout_ms=100)[0] == 504
        time.sleep(0.5)  # the late reply arrives now, for a call that is gone
        status, _, body = call(http, rpc_queue, b"next", timeout_ms=2000)
    assert (status, body) == (200, b"NEXT")
    assert request(http, "GET", "/api/overview")[0] == 200


def test_missing_queue_is_404(http):
    status, h, body = call(http, unique("nope"), b"x")
    assert status == 404
    assert b"not_found" in body


def test_missing_vhost_is_404(http):
    assert call(http, "q", b"x", vhost="no-such-vhost")[0] == 404


def test_queue_without_consumer_is_503_at_once(http, ch, rpc_queue):
    ch.queue_declare(rpc_queue)
    t0 = time.monotonic()
    status, _, body = call(http, rpc_queue, b"x", timeout_ms=5000)
    assert status == 503
    assert b"no_consumer" in body
    assert time.monotonic() - t0 < 1.0
    m, _, _ = ch.basic_get(rpc_queue, auto_ack=True)
    assert m is None, "a request nobody serves must not be queued"
    ch.queue_delete(rpc_queue)


@pytest.mark.parametrize("value", ["0", "abc", "60001", "-5"])
def test_bad_timeout_is_400(http, ch, rpc_queue, value):
    ch.queue_declare(rpc_queue)
    ch.basic_consume(rpc_queue, lambda *a: None)
    assert call(http, rpc_queue, b"x", timeout_ms=value)[0] == 400
    ch.queue_delete(rpc_queue)


def test_unanswered_request_expires_with_its_deadline(http, connect, rpc_queue):
    """A consumer with prefetch 1 busy elsewhere: the call's request waits in the queue and
    expires with the caller's deadline instead of being served late."""
    c = connect()
    ch = c.channel()
    ch.queue_declare(rpc_queue)
    ch.basic_qos(prefetch_count=1)
    ch.basic_publish("", rpc_queue, b"blocker")
    ch.basic_consume(rpc_queue, lambda *a: None, auto_ack=False)  # takes the blocker, no ack
    c.process_data_events(time_limit=0.1)
    assert call(http, rpc_queue, b"x", timeout_ms=200)[0] == 504
    time.sleep(0.1)
    body = request(http, "GET", f"/api/queues/%2F/{rpc_queue}")[2]
    assert body["messages_ready"] == 0, body
    ch.queue_delete(rpc_queue)


def test_fifty_sequential_calls_on_one_keep_alive_connection(http, broker, rpc_queue):
    c = httplib.HTTPConnection(*http, timeout=10)
    try:
        with Responder(broker.amqp_url, rpc_queue):
            sock = None
            for i in range(50):
                status, _, body = call(http, rpc_queue, f"m{i}".encode(), conn=c)
                assert (status, body) == (200, f"M{i}".encode())
                if sock is None:
                    sock = c.sock
                assert c.sock is sock, "the server closed the keep-alive connection"
    finally:
        c.close()


def test_concurrent_callers_each_get_their_own_reply(http, broker, rpc_queue):
    """Throughput smoke (correctness only): 8 threads x 25 calls, each reply matched."""
    errors = []

    def caller(n):
        c = httplib.HTTPConnection(*http, timeout=10)
        try:
            for i in range(25):
                want = f"c{n}-{i}"
                status, _, body = call(http, rpc_queue, want.encode(), conn=c)
                if (status, body) != (200, want.upper().encode()):
                    errors.append((want, status, body))
        except Exception as e:
            errors.append(repr(e))
        finally:
            c.close()

    with Responder(broker.amqp_url, rpc_queue):
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []


def test_duplicate_waiting_correlation_id_is_409(http, broker, rpc_queue):
    results = []
    with Responder(broker.amqp_url, rpc_queue, reply=lambda b, p: None):
        t = threading.Thread(target=lambda: results.append(
            call(http, rpc_queue, b"a", timeout_ms=600, headers={"X-Correlation-Id": "dup"})))
        t.start()
        time.sleep(0.2)
        status = call(http, rpc_queue, b"b", timeout_ms=600,
                      headers={"X-Correlation-Id": "dup"})[0]
        t.join(5)
    assert status == 409
    assert results[0][0] == 504


def test_client_gone_while_waiting_leaves_the_broker_healthy(http, broker, rpc_queue):
    import socket
    with Responder(broker.amqp_url, rpc_queue, reply=lambda b, p: None):
        s = socket.create_connection(http, timeout=2)
        s.sendall(f"POST /api/rpc/%2F/{rpc_queue}?timeout_ms=300 HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: {GUEST}\r\nContent-Length: 1\r\n\r\nx".encode())
        time.sleep(0.1)
        s.close()
        time.sleep(0.4)
    assert request(http, "GET", "/api/overview")[0] == 200
