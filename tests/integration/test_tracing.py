"""Switchboard's per-action traces: a message whose AMQP headers carry a W3C traceparent
records what happens to it, and GET /api/traces/{trace_id} (and `switchboard trace`) tell
the whole story of one user action: published, routed, delivered, acked, rejected, retried
with back-off, dead-lettered, replayed from the dead-letter queue, replied over direct
reply-to, and the HTTP RPC bridge's call, answer or timeout.

Real clients (pika, kombu, the CLI, HTTP) against a real broker; each test asserts the exact
event sequence. Switchboard-only: RabbitMQ has no such API (its firehose is in
test_firehose.py)."""
import http.client as httplib
import json
import os
import re
import secrets
import subprocess
import time
import urllib.parse

import kombu
import pika
import pytest

import brokers
from helpers import pump, unique, wait_for
from test_cli import binary
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)

pytestmark = pytest.mark.switchboard_only


def new_traceparent():
    """(trace id, span id, traceparent) of a fresh W3C trace."""
    tid, span = secrets.token_hex(16), secrets.token_hex(8)
    return tid, span, f"00-{tid}-{span}-01"


def trace(http, tid):  # noqa: F811
    status, _, body = request(http, "GET", f"/api/traces/{tid}")
    return body if status == 200 else None


def events(http, tid, n, timeout=5.0):  # noqa: F811
    """The trace's events once it has at least n (the broker records them as it goes)."""
    got = wait_for(lambda: (t := trace(http, tid)) and len(t["events"]) >= n and t,
                   timeout=timeout, what=f"{n} events of trace {tid}")
    return got["events"]


def kinds(evs):
    return [e["event"] for e in evs]


def client_port(conn):
    return conn._impl._transport._sock.getsockname()[1]


def props(tp, **kw):
    return pika.BasicProperties(headers={"traceparent": tp}, **kw)


@pytest.fixture
def sb(broker):
    def run(*args, timeout=60):
        env = dict(os.environ, AMQP_URL=broker.amqp_url)
        u = urllib.parse.urlparse(broker.http_url)
        env["HTTP_URL"] = f"http://guest:guest@{u.hostname}:{u.port}"
        return subprocess.run([binary(), *args], capture_output=True, text=True, env=env,
                              timeout=timeout)
    return run


# ----------------------------------------------------------------------------- basics

def test_publish_consume_ack_is_one_trace_with_who_did_what(http, connect, qname):
    tid, span, tp = new_traceparent()
    pub = connect()
    pch = pub.channel()
    pch.queue_declare(qname)
    pch.confirm_delivery()
    t0 = time.time() * 1e6
    pch.basic_publish("", qname, b"order 42", props(tp, delivery_mode=2))
    cons = connect()
    cch = cons.channel()
    got = []
    ctag = cch.basic_consume(qname, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)))
    pump(cons, lambda: got)
    evs = events(http, tid, 4)
    assert kinds(evs) == ["published", "routed", "delivered", "acked"]
    p, r, d, a = evs
    assert all(e["span_id"] == span for e in evs)
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    assert t0 - 1e6 <= p["ts_us"] <= d["ts_us"] <= a["ts_us"] <= time.time() * 1e6 + 1e6
    assert p["exchange"] == "" and p["routing_key"] == qname and p["vhost"] == "/"
    assert p["connection"] == f"127.0.0.1:{client_port(pub)}" and p["user"] == "guest"
    assert p["channel"] == pch.channel_number
    assert p["persistent"] is True and p["size"] == 8
    assert r["queues"] == [qname] and r["queue_count"] == 1
    assert d["queue"] == qname and d["consumer_tag"] == ctag and d["delivery_tag"] == 1
    assert d["connection"] == f"127.0.0.1:{client_port(cons)}"
    assert d["redelivered"] is False and d["delivery_count"] == 1
    assert a["queue"] == qname and a["delivery_tag"] == 1
    t = trace(http, tid)
    assert t["status"] == "ok" and t["event_count"] == 4
    assert t["root"] == f"publish amq.default {qname}"
    listed = [x for x in request(http, "GET", "/api/traces")[2] if x["trace_id"] == tid]
    assert listed == [{"trace_id": tid, "first_seen_us": evs[0]["ts_us"],
                       "last_seen_us": evs[-1]["ts_us"], "events": 4, "status": "ok",
                       "root": f"publish amq.default {qname}"}]
    pch.queue_delete(qname)


def test_messages_without_a_valid_traceparent_are_not_traced(fresh_broker):
    c = pika.BlockingConnection(pika.URLParameters(fresh_broker.amqp_url))
    ch = c.channel()
    q = unique("q")
    ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"plain")
    ch.basic_publish("", q, b"other", pika.BasicProperties(headers={"x": 1}))
    for bad in ("00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "garbage"):
        ch.basic_publish("", q, b"bad", props(bad))
    while ch.basic_get(q, auto_ack=True)[0] is not None:
        pass
    c.close()
    u = urllib.parse.urlparse(fresh_broker.http_url)
    assert request((u.hostname, u.port), "GET", "/api/traces")[2] == []


def test_unroutable_mandatory_publish_is_returned(http, ch, xname):
    tid, _, tp = new_traceparent()
    ch.exchange_declare(xname, "direct")
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(xname, "nobody", b"x", props(tp), mandatory=True)
    evs = events(http, tid, 3)
    assert kinds(evs) == ["published", "unroutable", "returned"]
    assert evs[1]["exchange"] == xname and evs[1]["routing_key"] == "nobody"
    assert evs[2]["reply_code"] == 312 and evs[2]["reply_text"] == "NO_ROUTE"
    assert trace(http, tid)["status"] == "unroutable"
    ch.exchange_delete(xname)


def test_message_ttl_expiry_is_recorded_before_the_dead_letter(http, ch):
    tid, _, tp = new_traceparent()
    q, dlx, dlq = unique("ttl"), unique("dlx"), unique("dlq")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"late", props(tp))
    evs = events(http, tid, 4)
    assert kinds(evs) == ["published", "routed", "expired", "dead_lettered"]
    assert evs[2]["queue"] == q
    assert evs[3]["reason"] == "expired" and evs[3]["exchange"] == dlx
    assert evs[3]["queues"] == [dlq]
    for n in (q, dlq):
        ch.queue_delete(n)
    ch.exchange_delete(dlx)


def test_kombu_publisher_and_consumer_join_the_trace(http, broker):
    tid, span, tp = new_traceparent()
    ex = kombu.Exchange(unique("kx"), type="topic", durable=False, auto_delete=True)
    q = kombu.Queue(unique("kq"), exchange=ex, routing_key="order.*", durable=False,
                    auto_delete=True)
    got = []
    with kombu.Connection(broker.amqp_url, connect_timeout=5) as kc:
        with kc.Consumer(q, callbacks=[lambda body, m: (got.append(body), m.ack())],
                         accept=["json"]):
            kc.Producer(serializer="json").publish({"order": 7}, exchange=ex,
                                                   routing_key="order.paid",
                                                   headers={"traceparent": tp}, retry=False)
            while not got:
                kc.drain_events(timeout=5)
    evs = events(http, tid, 4)
    assert kinds(evs) == ["published", "routed", "delivered", "acked"]
    assert evs[0]["exchange"] == ex.name and evs[0]["routing_key"] == "order.paid"
    assert evs[1]["queues"] == [q.name]


# ----------------------------------------------------------------------------- failures

def test_reject_retry_with_back_off_dead_letter_and_replay(http, connect, sb):
    """The poison-message story: rejected three times (retried after 50 and 100 ms in
    between), dead-lettered, replayed from the DLQ with `switchboard dlq replay`, then
    handled."""
    tid, span, tp = new_traceparent()
    q, dlx, dlq = unique("work"), unique("dlx"), unique("dlq")
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(dlx, "direct")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx, q)
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx, "x-retry-delays": [50, 100]})
    ch.confirm_delivery()
    failing = [True]
    seen = []

    def on_msg(c, m, p, b):
        seen.append((p.headers or {}).get("x-retry-count", 0))
        if failing[0]:
            c.basic_reject(m.delivery_tag, requeue=False)
        else:
            c.basic_ack(m.delivery_tag)
    ch.basic_consume(q, on_msg)
    ch.basic_publish("", q, b"poison", props(tp))
    pump(conn, lambda: len(seen) == 3, timeout=10)
    events(http, tid, 13)
    failing[0] = False
    r = sb("dlq", "replay", dlq)
    assert r.returncode == 0, r.stderr
    pump(conn, lambda: len(seen) == 4, timeout=10)
    evs = events(http, tid, 20)
    assert kinds(evs) == [
        "published", "routed",
        "delivered", "rejected", "retry_scheduled", "released",
        "delivered", "rejected", "retry_scheduled", "released",
        "delivered", "rejected", "dead_lettered",
        "got", "replayed", "published", "routed", "delivered", "acked", "acked"]
    dl = evs[12]
    assert dl["queue"] == q and dl["reason"] == "rejected" and dl["exchange"] == dlx
    assert dl["routing_key"] == q and dl["queues"] == [dlq]
    assert [e["attempt"] for e in evs if e["event"] == "retry_scheduled"] == [1, 2]
    assert [e["delay_ms"] for e in evs if e["event"] == "retry_scheduled"] == [50, 100]
    assert [e["attempts"] for e in evs if e["event"] == "retry_scheduled"] == [2, 2]
    # The back-off is real: each release comes its delay after the rejection.
    assert evs[5]["ts_us"] - evs[3]["ts_us"] >= 45_000
    assert evs[9]["ts_us"] - evs[7]["ts_us"] >= 95_000
    assert [e["delivery_count"] for e in evs if e["event"] == "delivered"] == [1, 2, 3, 4]
    assert evs[13]["queue"] == dlq                                  # the CLI's basic.get
    assert evs[14]["died_in"] == q and evs[14]["reason"] == "rejected"
    assert evs[14]["deaths"] == 1
    assert evs[15]["routing_key"] == q and evs[16]["queues"] == [q]
    assert evs[18]["queue"] == dlq and evs[19]["queue"] == q       # CLI ack, then consumer
    assert evs[18]["connection"] == evs[13]["connection"] != evs[19]["connection"]
    assert all(e["span_id"] == span for e in evs)
    assert seen == [0, 1, 2, 2]
    assert trace(http, tid)["status"] == "replayed"
    for n in (q, dlq):
        ch.queue_delete(n)
    ch.exchange_delete(dlx)


def test_http_dlq_replay_and_delivery_limit_are_recorded(http, ch):
    """A quorum-style delivery limit dead-letters the message; POST /api/dlq/.../replay
    sends it back, under the same trace, with the HTTP client named."""
    tid, _, tp = new_traceparent()
    q, dlx, dlq = unique("lim"), unique("dlx"), unique("dlq")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 1,
                                                 "x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"twice", props(tp))
    for _ in range(2):
        m = wait_for(lambda: ch.basic_get(q)[0], what="a delivery")
        ch.basic_nack(m.delivery_tag, requeue=True)
    events(http, tid, 7)
    status, _, body = request(http, "POST", f"/api/dlq/%2F/{dlq}/replay")
    assert status == 200 and body["replayed"] == 1, body
    evs = events(http, tid, 12)
    assert kinds(evs) == ["published", "routed", "got", "requeued", "got", "requeued",
                          "dead_lettered", "got", "replayed", "published", "routed", "acked"]
    assert evs[6]["reason"] == "delivery_limit" and evs[6]["queues"] == [dlq]
    assert evs[7]["queue"] == dlq and evs[7]["connection"].startswith("HTTP 127.0.0.1:")
    assert evs[8]["died_in"] == q and evs[8]["reason"] == "delivery_limit"
    assert evs[8]["connection"] == evs[9]["connection"] == evs[7]["connection"]
    assert evs[10]["queues"] == [q]
    assert trace(http, tid)["status"] == "replayed"
    for n in (q, dlq):
        ch.queue_delete(n)
    ch.exchange_delete(dlx)


# ----------------------------------------------------------------------------- calls

def rpc_pair(connect, qname, propagate):
    """A caller (direct reply-to) and a responder on its own connection; the responder
    answers with the request's correlation id and, when propagate, a traceparent of the
    request's trace with a span of its own (spans: one per answer, None when not
    propagating)."""
    caller, responder = connect(), connect()
    cch, rch = caller.channel(), responder.channel()
    rch.queue_declare(qname)
    replies, spans = [], []

    def serve(c, m, p, b):
        headers = None
        spans.append(secrets.token_hex(8) if propagate else None)
        if propagate:
            tid = p.headers["traceparent"].split("-")[1]
            headers = {"traceparent": f"00-{tid}-{spans[-1]}-01"}
        c.basic_publish("", p.reply_to, b.upper(), pika.BasicProperties(
            correlation_id=p.correlation_id, headers=headers))
        c.basic_ack(m.delivery_tag)
    rch.basic_consume(qname, serve)
    cch.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append((p, b)),
                      auto_ack=True)
    return caller, cch, responder, replies, spans


@pytest.mark.parametrize("propagate", [False, True], ids=["by-correlation", "by-traceparent"])
def test_direct_reply_to_call_is_linked_to_its_callers_trace(http, connect, qname, propagate):
    tid, span, tp = new_traceparent()
    caller, cch, responder, replies, spans = rpc_pair(connect, qname, propagate)
    cch.basic_publish("", qname, b"pay 10", props(tp, reply_to="amq.rabbitmq.reply-to",
                                                  correlation_id="pay-1"))
    pump(responder, lambda: spans)
    pump(caller, lambda: replies)
    assert replies[0][1] == b"PAY 10"
    evs = events(http, tid, 5)
    assert kinds(evs) == ["published", "routed", "delivered", "replied", "acked"]
    req, rep = evs[0], evs[3]
    assert req["correlation_id"] == "pay-1"
    assert req["reply_to"].startswith("amq.rabbitmq.reply-to.")
    assert rep["reply_to"] == req["reply_to"] and rep["correlation_id"] == "pay-1"
    assert rep["delivered_to_caller"] is True
    assert rep["connection"] == f"127.0.0.1:{client_port(responder)}"
    if propagate:
        assert rep["linked_by"] == "traceparent" and rep["span_id"] == spans[0] != span
    else:
        assert rep["linked_by"] == "correlation_id" and rep["span_id"] == span
    cch.queue_delete(qname)


def rpc_call(http, queue, headers=None, timeout_ms=3000):  # noqa: F811
    c = httplib.HTTPConnection(*http, timeout=10)
    try:
        c.request("POST", f"/api/rpc/%2F/{queue}?timeout_ms={timeout_ms}", body=b"buy",
                  headers={"Authorization": GUEST, **(headers or {})})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_http_rpc_call_gets_a_new_trace_and_tells_the_caller(http, connect, qname):
    _, _, responder, _, _ = rpc_pair(connect, qname, propagate=False)
    result = {}
    import threading
    t = threading.Thread(target=lambda: result.update(r=rpc_call(http, qname)))
    t.start()
    pump(responder, lambda: not t.is_alive(), timeout=10)
    t.join()
    status, headers, body = result["r"]
    assert status == 200 and body == b"BUY"
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", headers["traceparent"])
    assert m, headers
    tid, span = m.groups()
    evs = events(http, tid, 7)
    assert kinds(evs) == ["rpc_started", "published", "routed", "delivered", "replied",
                          "rpc_answered", "acked"]
    assert all(e["span_id"] == span for e in evs)
    st, ans = evs[0], evs[5]
    assert st["queue"] == qname and st["timeout_ms"] == 3000
    assert st["connection"].startswith("HTTP 127.0.0.1:") and st["user"] == "guest"
    assert evs[1]["connection"] == st["connection"]
    assert st["correlation_id"] == ans["correlation_id"] == headers["x-correlation-id"]
    assert evs[4]["linked_by"] == "correlation_id"
    assert ans["status"] == 200 and ans["size"] == 3 and ans["duration_us"] > 0
    assert trace(http, tid)["root"] == f"rpc {qname}"


def test_http_rpc_timeout_is_recorded_in_the_callers_trace(http, connect, qname):
    tid, span, tp = new_traceparent()
    silent = connect().channel()
    silent.queue_declare(qname)
    silent.basic_consume(qname, lambda c, m, p, b: None)       # takes it, never answers
    status, headers, _ = rpc_call(http, qname, {"traceparent": tp}, timeout_ms=200)
    assert status == 504 and headers["traceparent"] == tp
    evs = events(http, tid, 5)
    assert kinds(evs) == ["rpc_started", "published", "routed", "delivered", "rpc_timeout"]
    assert evs[4]["status"] == 504 and evs[4]["timeout_ms"] == 200
    assert evs[4]["duration_us"] >= 190_000
    assert trace(http, tid)["status"] == "timed_out"
    silent.queue_delete(qname)


def test_rest_publish_takes_a_traceparent_header(http, ch, qname):
    tid, span, tp = new_traceparent()
    ch.queue_declare(qname)
    status, _, body = request(http, "POST", "/api/exchanges/%2F/amq.default/publish",
                              body=json.dumps({"properties": {"headers": {"a": 1}},
                                               "routing_key": qname, "payload": "hi",
                                               "payload_encoding": "string"}),
                              headers={"Content-Type": "application/json", "traceparent": tp})
    assert status == 200 and body == {"routed": True}
    _, p, _ = ch.basic_get(qname, auto_ack=True)
    assert p.headers == {"a": 1, "traceparent": tp}
    evs = events(http, tid, 3)
    assert kinds(evs) == ["published", "routed", "got"]
    assert evs[0]["connection"].startswith("HTTP 127.0.0.1:") and evs[0]["channel"] == 0
    ch.queue_delete(qname)


# ----------------------------------------------------------------------------- the ring

def test_ring_keeps_the_last_events_and_forgets_older_traces():
    b = brokers.start_switchboard(extra_args=("--trace-max-events", "40"))
    try:
        u = urllib.parse.urlparse(b.http_url)
        web = (u.hostname, u.port)
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.confirm_delivery()
        ids = []
        for i in range(30):                       # 2 events each: published, unroutable
            tid, _, tp = new_traceparent()
            ids.append(tid)
            ch.basic_publish("amq.direct", "nowhere", b"x", props(tp))
        c.close()
        listed = request(web, "GET", "/api/traces?limit=10000")[2]
        assert len(listed) == 20 and all(t["events"] == 2 for t in listed)
        assert [t["trace_id"] for t in listed] == ids[:-21:-1]      # newest first
        assert request(web, "GET", f"/api/traces/{ids[9]}")[0] == 404
        assert request(web, "GET", f"/api/traces/{ids[10]}")[0] == 200
        assert request(web, "GET", "/api/traces/not-hex")[0] == 400
    finally:
        b.stop()


def test_messages_read_back_from_disk_are_still_followed():
    """Paged out of a queue past its memory window (transient), or recovered from the log
    after a restart (persistent): the message is followed again from there."""
    b = brokers.start_switchboard(extra_args=("--queue-memory-window", "100"))
    try:
        u = urllib.parse.urlparse(b.http_url)
        web = (u.hostname, u.port)
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.confirm_delivery()
        ch.queue_declare("long")
        ch.queue_declare("kept", durable=True)
        for i in range(150):
            ch.basic_publish("", "long", b"filler %d" % i)
        paged, _, tp1 = new_traceparent()
        ch.basic_publish("", "long", b"deep", props(tp1))        # 151st: paged out
        kept, _, tp2 = new_traceparent()
        ch.basic_publish("", "kept", b"durable", props(tp2, delivery_mode=2))
        got = []
        for _ in range(151):
            m, _, body = ch.basic_get("long", auto_ack=True)
            got.append(body)
        assert got[-1] == b"deep"
        assert kinds(events(web, paged, 3)) == ["published", "routed", "got"]
        c.close()
        b.restart()
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        assert request(web, "GET", f"/api/traces/{kept}")[0] == 404   # the ring is in memory
        m, _, body = ch.basic_get("kept", auto_ack=True)
        assert body == b"durable"
        evs = events(web, kept, 1)
        assert kinds(evs) == ["got"] and evs[0]["redelivered"] is False
        c.close()
    finally:
        b.stop()


# ----------------------------------------------------------------------------- the CLI

def test_cli_prints_the_timeline_json_and_lists(http, ch, qname, sb):
    tid, span, tp = new_traceparent()
    ch.queue_declare(qname, arguments={"x-retry-delays": [20]})
    ch.confirm_delivery()
    ch.basic_publish("", qname, b"abc", props(tp))
    m, _, _ = ch.basic_get(qname)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m = wait_for(lambda: ch.basic_get(qname)[0], what="the retried message")
    ch.basic_ack(m.delivery_tag)
    events(http, tid, 8)

    r = sb("trace", tid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"trace {tid}: 8 events over ")
    assert f"status retried (publish amq.default {qname})" in lines[0]
    rows = [re.match(r"\s+\+\s*([0-9.]+) ms  (\w{8})  (\w+)\s+(.*)", ln) for ln in lines[1:]]
    assert all(rows), lines
    assert [x.group(3) for x in rows] == ["published", "routed", "got", "rejected",
                                          "retry_scheduled", "released", "got", "acked"]
    assert all(x.group(2) == span[:8] for x in rows)
    times = [float(x.group(1)) for x in rows]
    assert times[0] == 0 and times == sorted(times) and times[5] - times[3] >= 15
    assert rows[0].group(4).startswith(f"to exchange (default), key '{qname}', 3 B by 127.0.0.1:")
    assert rows[1].group(4) == f"to '{qname}'"
    assert rows[4].group(4) == f"retry 1 of 1 in '{qname}' after 20 ms"
    assert rows[6].group(4).endswith("delivery 2")

    j = sb("trace", tp, "--json")                   # a whole traceparent works too
    assert j.returncode == 0 and json.loads(j.stdout) == trace(http, tid)
    last = sb("trace", "--last")
    assert last.returncode == 0 and last.stdout.splitlines()[0].startswith(f"trace {tid}:")
    lst = sb("trace", "--list", "--limit", "1")
    assert lst.returncode == 0 and lst.stdout.split()[:4] == [tid, "8", "events", "retried"]
    missing = sb("trace", secrets.token_hex(16))
    assert missing.returncode == 4 and "404" in missing.stderr
    assert sb("trace", "xyz").returncode == 2
    assert sb("trace").returncode == 2
    ch.queue_delete(qname)


def test_cli_follow_prints_events_as_they_happen(http, connect, qname, sb, broker):
    tid, _, tp = new_traceparent()
    env = dict(os.environ)
    u = urllib.parse.urlparse(broker.http_url)
    env["HTTP_URL"] = f"http://guest:guest@{u.hostname}:{u.port}"
    p = subprocess.Popen([binary(), "trace", tid, "--follow", "--timeout", "3s", "--json"],
                         stdout=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0.3)                              # the trace does not exist yet: it waits
        ch = connect().channel()
        ch.queue_declare(qname)
        ch.basic_publish("", qname, b"x", props(tp))
        events(http, tid, 2)
        time.sleep(0.3)
        ch.basic_get(qname, auto_ack=True)
        out, _ = p.communicate(timeout=10)
    finally:
        p.kill()
    got = [json.loads(ln)["event"] for ln in out.splitlines()]
    assert got == ["published", "routed", "got"]
    ch.queue_delete(qname)
