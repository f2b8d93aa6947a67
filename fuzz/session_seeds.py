#!/usr/bin/python3
"""Builds the seed corpus of fuzz_session (fuzz/corpus/fuzz_session/seed_*).

Two kinds of seed, in fuzz_session's input format (one flags octet, then segments
separated by 00 'S' 'B' '|' <connection index>; see fuzz/fuzz_session.c):

- recorded: real clients (pika, py-amqp, kombu, amqp-tools) run a scenario against
  `build/switchboard serve` through a loopback proxy that records what each client
  connection sends, in arrival order across connections. The seed replays those bytes
  raw (flags 0), handshake included, one segment per run of bytes from one connection.
  Direct reply-to addresses the real broker made up are replaced by the ones the
  fuzzer's deterministic getrandom gives.
- composed: byte sequences no client library sends (odd delivery tags, channel.flow,
  frames out of order, content on two channels at once, every property), written with
  tests/integration/rawamqp.py after the harness's own handshake (flags F_HANDSHAKE).

    /usr/bin/python3 fuzz/session_seeds.py            # (re)writes the seeds (recorded ones
                                                      # differ a little from run to run: how
                                                      # the client's writes were chunked)
    /usr/bin/python3 fuzz/session_seeds.py --check    # fails if a seed would change
                                                      # (composed seeds only)
"""
import pathlib
import re
import select
import socket
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import rawamqp as R  # noqa: E402

OUT = ROOT / "fuzz" / "corpus" / "fuzz_session"
SEP = b"\x00SB|"
F_HANDSHAKE, F_SMALL_FRAMES, F_NO_CAPS, F_ALARM, F_TIGHT, F_STORE, F_RESTART, F_EXTRAS = \
    1, 2, 4, 8, 16, 32, 64, 128
MAX_CONNS = 4


# ----------------------------------------------------------------------------- format

def seed(flags, segments):
    """segments: [(connection index, bytes)]. Each is written once the broker has read
    the one before; a recorded seed keeps every write of the client as a segment, so a
    name the broker made up (amq.gen-...) is known before the segment that uses it."""
    out = bytearray([flags])
    for i, (conn, data) in enumerate(segments):
        assert SEP not in data, "the separator occurs in the data"
        assert 0 <= conn < MAX_CONNS
        if i > 0 or conn != 0:
            out += SEP + bytes([conn])
        out += data
    return bytes(out)


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def reply_token(k):
    """The direct reply-to address of the k-th reply consumer of a fuzz_session run: its
    getrandom fills byte i with byte i%4 of a counter (k), and broker/replyto.c makes a
    24-character token from 18 random bytes."""
    rnd = [(k >> (8 * (i % 4))) & 0xFF for i in range(18)]
    tok = "".join(B64[(rnd[i * 3 // 4] >> ((i % 4) * 2)) & 63] for i in range(24))
    return "amq.rabbitmq.reply-to." + tok


# ----------------------------------------------------------------------------- recording

class Recorder:
    """A loopback TCP proxy in front of the broker that records what clients send."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        self.sent = []          # (connection index, bytes), in arrival order
        self.received = bytearray()
        self.nconn = 0
        self.threads = []

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                idx = self.nconn
                self.nconn += 1
            t = threading.Thread(target=self._relay, args=(idx, c), daemon=True)
            with self.lock:
                self.threads.append(t)
            t.start()

    def _relay(self, idx, c):
        u = socket.create_connection(("127.0.0.1", self.upstream))
        open_dirs = {c: u, u: c}
        while open_dirs:
            r, _, _ = select.select(list(open_dirs), [], [], 10)
            if not r:
                break
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                dst = open_dirs.get(s)
                if not data:
                    open_dirs.pop(s, None)
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                with self.lock:
                    if s is c:
                        self.sent.append((idx, data))
                    else:
                        self.received += data
                try:
                    dst.sendall(data)
                except OSError:
                    open_dirs.pop(s, None)
        c.close()
        u.close()

    def take(self):
        """Waits for the scenario's connections to end; returns (segments, broker output)."""
        deadline = time.monotonic() + 10
        while True:
            with self.lock:
                threads = list(self.threads)
            if all(not t.is_alive() for t in threads) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        with self.lock:
            sent, received = self.sent, bytes(self.received)
            self.reset()
        return sent, received


def fix_reply_tokens(sent, received):
    """Replaces the reply addresses the real broker made up (first seen first) with the
    ones the harness gives."""
    seen = []
    for m in re.finditer(rb"amq\.rabbitmq\.reply-to\.[A-Za-z0-9_-]{24}", received):
        if m.group(0) not in seen:
            seen.append(m.group(0))
    out = []
    for conn, data in sent:
        for k, tok in enumerate(seen):
            data = data.replace(tok, reply_token(k).encode())
        out.append((conn, data))
    return out


# ----------------------------------------------------------------------------- recorded scenarios

def pika_conn(url, **kw):
    import pika
    p = pika.URLParameters(url)
    for k, v in kw.items():
        setattr(p, k, v)
    return pika.BlockingConnection(p)


def rec_pika_basic(url):
    """declare, bind, publish, consume with manual acks, cancel, close."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.exchange_declare("orders", "direct", durable=True)
    ch.queue_declare("work", durable=True)
    ch.queue_bind("work", "orders", "new")
    for i in range(3):
        ch.basic_publish("orders", "new", b"order %d" % i,
                         pika.BasicProperties(delivery_mode=2, content_type="text/plain",
                                              headers={"n": i}))
    ch.basic_qos(prefetch_count=2)
    got = []

    def on_msg(c, m, props, body):
        got.append(body)
        c.basic_ack(m.delivery_tag)

    tag = ch.basic_consume("work", on_msg)
    while len(got) < 3:
        conn.process_data_events(0.1)
    ch.basic_cancel(tag)
    ch.queue_unbind("work", "orders", "new")
    ch.queue_delete("work")
    ch.exchange_delete("orders")
    conn.close()


def rec_pika_confirms(url):
    """confirms, a mandatory publish that comes back, persistent messages, purge."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("confirmed", durable=True)
    for i in range(2):
        ch.basic_publish("", "confirmed", b"m%d" % i, pika.BasicProperties(delivery_mode=2))
    try:
        ch.basic_publish("", "nowhere", b"lost", mandatory=True)
    except pika.exceptions.UnroutableError:
        pass
    ch.queue_purge("confirmed")
    ch.queue_delete("confirmed", if_empty=True)
    conn.close()


def rec_pika_tx(url):
    """tx.select, publish and commit, publish and roll back, get and ack in a transaction."""
    conn = pika_conn(url)
    ch = conn.channel()
    ch.queue_declare("txq", auto_delete=True)
    ch.tx_select()
    ch.basic_publish("", "txq", b"kept")
    ch.tx_commit()
    ch.basic_publish("", "txq", b"dropped")
    ch.tx_rollback()
    m, _, _ = ch.basic_get("txq")
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    ch.basic_get("txq")
    conn.close()


def rec_pika_dlx(url):
    """reject into a dead-letter exchange, TTL and length limits, nack multiple, x-death."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.exchange_declare("dead", "fanout")
    ch.queue_declare("parked")
    ch.queue_bind("parked", "dead")
    ch.queue_declare("inbox", arguments={
        "x-dead-letter-exchange": "dead", "x-dead-letter-routing-key": "parked",
        "x-max-length": 3, "x-message-ttl": 60000, "x-overflow": "drop-head"})
    for i in range(5):
        ch.basic_publish("", "inbox", b"m%d" % i, pika.BasicProperties(expiration="30000"))
    m, _, _ = ch.basic_get("inbox")
    ch.basic_reject(m.delivery_tag, requeue=False)
    m1, _, _ = ch.basic_get("inbox")
    m2, _, _ = ch.basic_get("inbox")
    ch.basic_nack(m2.delivery_tag, multiple=True, requeue=False)
    m, props, body = ch.basic_get("parked", auto_ack=True)
    ch.queue_delete("inbox")
    conn.close()


def rec_pika_reply_to(url):
    """direct reply-to: a caller and a responder on two connections."""
    import pika
    responder = pika_conn(url)
    rch = responder.channel()
    rch.queue_declare("rpc")
    caller = pika_conn(url)
    cch = caller.channel()
    replies = []
    cch.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append(b),
                      auto_ack=True)
    cch.basic_publish("", "rpc", b"ping",
                      pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                           correlation_id="42", expiration="5000"))
    m = None
    deadline = time.monotonic() + 5
    while m is None and time.monotonic() < deadline:
        m, props, body = rch.basic_get("rpc")
        time.sleep(0.01)
    rch.basic_publish("", props.reply_to, b"pong",
                      pika.BasicProperties(correlation_id=props.correlation_id))
    rch.basic_ack(m.delivery_tag)
    while not replies and time.monotonic() < deadline:
        caller.process_data_events(0.05)
    caller.close()
    responder.close()


def rec_pika_exchanges(url):
    """topic, headers and fanout exchanges, exchange-to-exchange bindings, an alternate
    exchange, internal exchanges, if-unused deletes."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.exchange_declare("unrouted", "fanout")
    ch.queue_declare("leftover", exclusive=True)
    ch.queue_bind("leftover", "unrouted")
    ch.exchange_declare("events", "topic", arguments={"alternate-exchange": "unrouted"})
    ch.exchange_declare("hdr", "headers", internal=True)
    ch.exchange_bind("hdr", "events", "audit.#")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "events", "order.*.placed")
    ch.queue_bind(q, "hdr", arguments={"x-match": "any", "kind": "audit", "level": 3})
    ch.queue_bind(q, "amq.headers", arguments={"x-match": "all", "a": 1, "b": "two"})
    for rk in ("order.eu.placed", "audit.login", "other"):
        ch.basic_publish("events", rk, b"e", pika.BasicProperties(headers={"kind": "audit"}))
    ch.basic_publish("amq.headers", "", b"h", pika.BasicProperties(headers={"a": 1, "b": "two"}))
    ch.basic_get(q, auto_ack=True)
    ch.basic_get("leftover", auto_ack=True)
    try:
        ch.exchange_delete("events", if_unused=True)
    except pika.exceptions.ChannelClosedByBroker:
        ch = conn.channel()
    ch.exchange_unbind("hdr", "events", "audit.#")
    ch.exchange_delete("hdr")
    conn.close()


def rec_pika_queue_args(url):
    """priorities, single active consumer, reject-publish overflow with confirms,
    delivery limits, retries, queue expiry, a delayed exchange."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.queue_declare("prio", arguments={"x-max-priority": 5})
    for p in (1, 5, 3):
        ch.basic_publish("", "prio", b"p%d" % p, pika.BasicProperties(priority=p))
    ch.basic_get("prio", auto_ack=True)
    ch.queue_declare("sac", arguments={"x-single-active-consumer": True, "x-expires": 60000})
    t1 = ch.basic_consume("sac", lambda *a: None)
    t2 = ch.basic_consume("sac", lambda *a: None)
    ch.basic_cancel(t1)
    ch.basic_cancel(t2)
    ch.queue_declare("limited", arguments={"x-queue-type": "quorum", "x-delivery-limit": 1,
                                           "x-max-length-bytes": 100})
    ch.basic_publish("", "limited", b"x")
    m, _, _ = ch.basic_get("limited")
    ch.basic_nack(m.delivery_tag, requeue=True)
    ch.queue_declare("retried", arguments={"x-retry-delays": [10, 20]})
    ch.basic_publish("", "retried", b"r")
    m, _, _ = ch.basic_get("retried")
    ch.basic_reject(m.delivery_tag, requeue=False)
    ch.exchange_declare("later", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    ch.queue_bind("retried", "later", "r")
    ch.basic_publish("later", "r", b"d", pika.BasicProperties(headers={"x-delay": 50}))
    ch.confirm_delivery()
    ch.queue_declare("full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish("", "full", b"1")
    try:
        ch.basic_publish("", "full", b"2")
    except pika.exceptions.NackError:
        pass
    conn.close()


def rec_pika_errors(url):
    """channel errors and what follows them; an exclusive queue from another connection."""
    import pika
    conn = pika_conn(url)
    ch = conn.channel()
    ch.queue_declare("mine", exclusive=True)
    other = pika_conn(url)
    och = other.channel()
    for attempt in (lambda c: c.queue_declare("mine"),
                    lambda c: c.queue_declare("missing", passive=True),
                    lambda c: c.basic_ack(99),
                    lambda c: c.exchange_declare("amq.nope", "direct")):
        try:
            attempt(och)
            och.basic_qos(prefetch_count=1)  # the ack error arrives asynchronously
        except pika.exceptions.ChannelClosedByBroker:
            pass
        och = other.channel()
    ch.queue_declare("ttl", arguments={"x-message-ttl": 1000})
    try:
        ch.queue_declare("ttl", arguments={"x-message-ttl": 2000})
    except pika.exceptions.ChannelClosedByBroker:
        pass
    other.close()
    conn.close()


def rec_pika_small_frames(url):
    """frame_max 4096: a 10 KB message in body frames, both ways; server-named queue."""
    conn = pika_conn(url, frame_max=4096)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, bytes(range(256)) * 40)
    ch.basic_get(q, auto_ack=True)
    conn.close()


def rec_pika_cancel_notify(url):
    """a queue deleted under its consumer: basic.cancel from the broker; recover."""
    conn = pika_conn(url)
    ch = conn.channel()
    ch.queue_declare("doomed")
    ch.basic_publish("", "doomed", b"1")
    ch.basic_publish("", "doomed", b"2")
    ch.basic_consume("doomed", lambda *a: None)
    conn.process_data_events(0.1)
    ch.basic_recover(requeue=True)
    conn.process_data_events(0.1)
    ch2 = conn.channel()
    ch2.queue_delete("doomed")
    conn.process_data_events(0.1)
    conn.close()


def rec_pyamqp(url):
    """py-amqp: topic exchange, publish with headers, consume, ack multiple, recover."""
    import amqp
    with amqp.Connection("127.0.0.1:%s" % url.rsplit(":", 1)[1].split("/")[0]) as c:
        ch = c.channel()
        ch.exchange_declare("logs", "topic", auto_delete=True)
        q, _, _ = ch.queue_declare("", exclusive=True)
        ch.queue_bind(q, "logs", "app.#")
        for i in range(4):
            ch.basic_publish(amqp.Message(b"line %d" % i, application_headers={"i": i},
                                          message_id=str(i)), "logs", "app.web")
        got = []
        ch.basic_qos(0, 10, False)
        ch.basic_consume(q, callback=got.append)
        while len(got) < 4:
            c.drain_events(timeout=2)
        ch.basic_ack(got[2].delivery_tag, multiple=True)
        ch.basic_recover(requeue=True)
        c.drain_events(timeout=0.2)


def rec_kombu(url):
    """kombu: its own exchange/queue declarations, a JSON message, consume and ack."""
    import kombu
    with kombu.Connection(url) as c:
        x = kombu.Exchange("tasks", "direct", durable=True)
        q = kombu.Queue("celery-like", x, routing_key="task")
        with c.Producer() as p:
            p.publish({"task": "add", "args": [1, 2]}, exchange=x, routing_key="task",
                      declare=[q], serializer="json")
        done = []

        def handle(body, message):
            done.append(body)
            message.ack()

        with c.Consumer(q, callbacks=[handle]):
            while not done:
                c.drain_events(timeout=2)
        q(c.channel()).delete()


def amqp_tool(url, *args):
    subprocess.run([args[0], "--url", url, *args[1:]], check=True, capture_output=True,
                   timeout=10)


def rec_amqp_tools_get(url):
    """amqp-tools (rabbitmq-c): declare a durable queue, publish with headers, get."""
    amqp_tool(url, "amqp-declare-queue", "-q", "tools", "-d")
    amqp_tool(url, "amqp-publish", "-r", "tools", "-p", "-C", "text/plain", "-H", "k: v",
              "-b", "hello tools")
    amqp_tool(url, "amqp-get", "-q", "tools")


def rec_amqp_tools_consume(url):
    """amqp-tools: declare, publish, consume one with acks, delete."""
    amqp_tool(url, "amqp-declare-queue", "-q", "tools2")
    amqp_tool(url, "amqp-publish", "-r", "tools2", "-b", "second")
    amqp_tool(url, "amqp-consume", "-q", "tools2", "-c", "1", "-A", "cat")
    amqp_tool(url, "amqp-delete-queue", "-q", "tools2")


RECORDED = [rec_pika_basic, rec_pika_confirms, rec_pika_tx, rec_pika_dlx, rec_pika_reply_to,
            rec_pika_exchanges, rec_pika_queue_args, rec_pika_errors, rec_pika_small_frames,
            rec_pika_cancel_notify, rec_pyamqp, rec_kombu, rec_amqp_tools_get,
            rec_amqp_tools_consume]


def record_all():
    import brokers
    b = brokers.start_switchboard()
    out = {}
    try:
        rec = Recorder(b.port)
        for fn in RECORDED:
            fn(rec.url)
            sent, received = rec.take()
            sent = fix_reply_tokens(sent, received)
            if any(conn >= MAX_CONNS for conn, _ in sent):
                raise SystemExit(f"{fn.__name__}: more than {MAX_CONNS} connections")
            out["seed_" + fn.__name__[4:]] = seed(0, sent)
    finally:
        b.stop()
    return out


# ----------------------------------------------------------------------------- composed

M = R.method_frame
o, s, l, ll, ss, ls, t = R.octet, R.short, R.long_, R.longlong, R.shortstr, R.longstr, R.table


def qdecl(ch, name, args=None, flags=0):
    """flags: passive 1, durable 2, exclusive 4, auto-delete 8, nowait 16."""
    return M(ch, (50, 10), s(0) + ss(name) + o(flags) + t(args))


def pub(ch, x, rk, body, flags=0, props=b"", mandatory=False, frame_max=8192):
    return R.publish_frames(ch, x, rk, body, flags, props, frame_max, mandatory)


def consume(ch, q, tag="", no_ack=False, args=None, exclusive=False):
    return M(ch, (60, 20), s(0) + ss(q) + ss(tag) + o((2 if no_ack else 0) | (4 if exclusive else 0))
             + t(args))


def ack(ch, tag, multiple=False):
    return M(ch, (60, 80), ll(tag) + o(1 if multiple else 0))


def nack(ch, tag, multiple=False, requeue=True):
    return M(ch, (60, 120), ll(tag) + o((1 if multiple else 0) | (2 if requeue else 0)))


def reject(ch, tag, requeue=True):
    return M(ch, (60, 90), ll(tag) + o(1 if requeue else 0))


def get(ch, q, no_ack=False):
    return M(ch, (60, 70), s(0) + ss(q) + o(1 if no_ack else 0))


def chopen(ch):
    return M(ch, (20, 10), ss(""))


def chclose(ch, code=200, text="bye"):
    return M(ch, (20, 40), s(code) + ss(text) + s(0) + s(0))


def all_props():
    """Every basic property, in wire order."""
    flags = 0
    body = b""
    for name, bit in R.PROPERTY_FLAGS:
        flags |= bit
    body += ss("application/json") + ss("gzip") + t({"h": 1, "nested": {"a": [1, "x", None]}})
    body += o(2) + o(7) + ss("corr") + ss("replies") + ss("60000") + ss("id-1")
    body += ll(1700000000) + ss("kind") + ss("guest") + ss("app") + ss("cluster")
    return flags, body


def close_conn():
    return M(0, (10, 50), s(200) + ss("bye") + s(0) + s(0))


def composed():
    """Seeds for what client libraries never send. A connection error ends a connection,
    so each one comes last on its connection (up to four per seed)."""
    hs = F_HANDSHAKE
    tok = reply_token(0)
    fl, props = all_props()
    out = {}
    # acks with odd tags: 0 with multiple, huge, twice, on a closed channel
    out["seed_odd_tags"] = seed(hs, [
        (0, qdecl(1, "q") + pub(1, "", "q", b"a") + pub(1, "", "q", b"b") + consume(1, "q")
         + ack(1, 0, True) + pub(1, "", "q", b"c") + ack(1, 3, True) + ack(1, 3)),
        (1, qdecl(1, "q") + pub(1, "", "q", b"d") + get(1, "q") + get(1, "q")
         + nack(1, 0, True, True) + get(1, "q") + reject(1, 2, False) + ack(1, 2**64 - 1)),
        (2, chopen(2) + get(2, "q", True) + ack(2, 1)),
        (3, get(1, "q") + chclose(1) + ack(1, 1))])
    # channel.flow off and on around deliveries; qos global and per consumer; recover;
    # cancel by generated tag (rewritten by the harness); recover-async
    out["seed_flow_qos"] = seed(hs, [
        (0, qdecl(1, "f") + M(1, (60, 10), l(0) + s(1) + o(1)) + M(1, (60, 10), l(0) + s(2) + o(0))
         + M(1, (20, 20), o(0)) + consume(1, "f")
         + b"".join(pub(1, "", "f", b"%d" % i) for i in range(4))),
        (0, M(1, (20, 20), o(1)) + ack(1, 1) + M(1, (60, 110), o(1)) + M(1, (60, 100), o(1))),
        (0, M(1, (60, 30), ss("amq.ctag-" + "x" * 22) + o(0)) + ack(1, 0, True)),
        (1, qdecl(1, "f") + M(1, (60, 10), l(1000) + s(1) + o(0)))])
    # content on two channels at once, every property, expiration, a zero-length body
    out["seed_content_sequence"] = seed(hs, [
        (0, chopen(2) + qdecl(1, "c") + M(1, (60, 40), s(0) + ss("") + ss("c") + o(0))
         + pub(2, "", "c", b"two", fl, props) + R.content_header_frame(1, 6)
         + R.body_frame(1, b"one") + R.body_frame(1, b"one") + pub(1, "", "c", b"")
         + get(2, "c", True) + get(2, "c") + get(2, "c") + chclose(2)),
        (1, M(1, (60, 40), s(0) + ss("") + ss("c") + o(0)) + R.content_header_frame(1, 4)
         + M(1, (50, 10), s(0) + ss("x") + o(0) + t(None))),
        (2, pub(1, "", "c", b"x", 1 << 8, ss("-5"))),
        (3, pub(1, "", "c", b"x", 1 << 12, o(5)) + pub(1, "", "c", b"x", 1 << 4, ss("bob"))
         + R.content_header_frame(1, 1))])
    # body larger than declared, header for another class, heartbeat on a channel,
    # a body frame with no publish
    out["seed_content_errors"] = seed(hs, [
        (0, M(1, (60, 40), s(0) + ss("") + ss("q") + o(0)) + R.content_header_frame(1, 2)
         + R.body_frame(1, b"toolong")),
        (1, M(1, (60, 40), s(0) + ss("") + ss("q") + o(0)) + R.content_header_frame(1, 2, cls=50)),
        (2, R.frame(R.FRAME_HEARTBEAT, 1, b"")),
        (3, R.body_frame(1, b"x"))])
    # direct reply-to in one connection: the request names the pseudo-queue, the responder
    # (channel 2) replies to the deterministic address, the reply consumer goes away
    out["seed_reply_to_loop"] = seed(hs, [
        (0, consume(1, "amq.rabbitmq.reply-to", no_ack=True) + chopen(2) + qdecl(2, "svc")
         + pub(1, "", "svc", b"req", 1 << 9, ss("amq.rabbitmq.reply-to"))
         + get(2, "svc") + pub(2, "", tok, b"resp", mandatory=True) + ack(2, 1)
         + M(1, (60, 30), ss("amq.ctag-" + "x" * 22) + o(0))
         + pub(2, "", tok, b"late", mandatory=True) + chopen(3)
         + pub(3, "", "svc", b"req", 1 << 9, ss("amq.rabbitmq.reply-to"))
         + consume(1, "amq.rabbitmq.reply-to")),
        (1, consume(1, "amq.rabbitmq.reply-to", no_ack=True)
         + consume(1, "amq.rabbitmq.reply-to", no_ack=True))])
    # reply-to across connections: caller on 0, responder on 1, the caller goes first
    out["seed_reply_to_two_conns"] = seed(hs, [
        (0, consume(1, "amq.rabbitmq.reply-to", no_ack=True) + qdecl(1, "svc2")
         + pub(1, "", "svc2", b"req", 1 << 9, ss("amq.rabbitmq.reply-to"))),
        (1, consume(1, "svc2")),
        (1, pub(1, "", tok, b"resp") + pub(1, "", tok, b"again")),
        (0, close_conn()),
        (1, pub(1, "", tok, b"resp", mandatory=True) + ack(1, 1))])
    # exclusive queues and consumers across connections, auto-delete on last cancel
    out["seed_exclusive"] = seed(hs, [
        (0, qdecl(1, "ex", flags=4) + consume(1, "ex", exclusive=True)
         + qdecl(1, "ad", flags=8) + consume(1, "ad", "t1") + consume(1, "ad", "t1")),
        (1, chopen(2) + qdecl(2, "shared") + consume(2, "shared")
         + consume(2, "shared", exclusive=True) + qdecl(1, "ex")),
        (2, M(1, (50, 40), s(0) + ss("ex") + o(0))),
        (3, M(1, (50, 30), s(0) + ss("ex") + o(0))),
        (0, close_conn() + M(0, (10, 51))),
        (1, qdecl(1, "ex", flags=4) + M(1, (50, 40), s(0) + ss("ad") + o(1)))])
    # confirms with nowait, a nack from reject-publish, tx after confirm, acks in a tx
    out["seed_confirm_tx_mix"] = seed(hs, [
        (0, M(1, (85, 10), o(1)) + qdecl(1, "full", {"x-max-length": 0, "x-overflow": "reject-publish"})
         + pub(1, "", "full", b"x") + pub(1, "", "nowhere", b"y", mandatory=True)
         + pub(1, "", "full", b"z") + M(1, (90, 10))),
        (0, chopen(2) + M(2, (90, 10)) + qdecl(2, "t") + pub(2, "", "t", b"1") + M(2, (90, 20))
         + get(2, "t") + ack(2, 1) + nack(2, 1) + M(2, (90, 30)) + get(2, "t") + reject(2, 2)
         + M(2, (90, 20)) + ack(2, 7) + M(2, (90, 20))),
        (1, M(1, (90, 20)) + M(1, (90, 30)) + M(1, (90, 10)) + M(1, (85, 10), o(0)))])
    # dead-lettering chains and cycles, TTL 0, expiration, x-death re-routing, delivery
    # limits, retries
    out["seed_dlx_cycle"] = seed(hs, [
        (0, qdecl(1, "a", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b",
                           "x-message-ttl": 0})
         + qdecl(1, "b", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"})
         + pub(1, "", "a", b"loop", 1 << 8, ss("0")) + get(1, "b") + reject(1, 1, False)
         + get(1, "a") + get(1, "b") + nack(1, 0, True, False)
         + qdecl(1, "d", {"x-queue-type": "quorum", "x-delivery-limit": 0,
                          "x-dead-letter-exchange": "amq.fanout"})
         + M(1, (50, 20), s(0) + ss("b") + ss("amq.fanout") + ss("") + o(0) + t(None))
         + pub(1, "", "d", b"once") + get(1, "d") + nack(1, 3, False, True) + get(1, "d")
         + qdecl(1, "r", {"x-retry-delays": [0, 1], "x-dead-letter-exchange": ""})
         + pub(1, "", "r", b"again") + get(1, "r") + reject(1, 4, False) + get(1, "r")
         + M(1, (50, 40), s(0) + ss("a") + o(0)) + M(1, (50, 30), s(0) + ss("b") + o(0))),
        (1, qdecl(1, "c", {"x-dead-letter-routing-key": "b"})),
        (2, qdecl(1, "e", {"x-max-length": -1})),
        (3, qdecl(1, "g", {"x-overflow": "sideways", "x-max-priority": 300}))])
    # connection-level odds: update-secret, blocked from the client, access.request,
    # an unknown class, a channel method on channel 0, a second channel.open
    out["seed_connection_misc"] = seed(hs | F_SMALL_FRAMES, [
        (0, M(0, (10, 70), ls("s") + ss("r")) + M(0, (10, 60), ss("why")) + M(0, (10, 61))
         + M(1, (30, 10), ss("/") + o(0)) + R.heartbeat_frame() + M(1, (99, 1))),
        (1, M(0, (50, 10), s(0) + ss("q") + o(0) + t(None))),
        (2, chopen(1)),
        (3, M(0, (10, 50), s(200) + ss("") + s(0) + s(0)) + chopen(2))])
    # the memory alarm: a publish blocks the connection; a consumer-only one keeps going
    out["seed_alarm"] = seed(hs | F_ALARM, [
        (0, qdecl(1, "al") + consume(1, "al", no_ack=True)),
        (1, pub(1, "", "al", b"1") + pub(1, "", "al", b"2") + get(1, "al", True))])
    # tight limits: a message over 1 KiB, channel numbers over channel_max
    out["seed_tight"] = seed(hs | F_TIGHT | F_NO_CAPS, [
        (0, pub(1, "", "x", b"z" * 1100, frame_max=4096)),
        (1, chopen(8) + chopen(9))])
    # raw handshakes that go wrong: bad password, wrong protocol, AMQPLAIN with a
    # tune-ok asking too much, a frame before the header
    out["seed_bad_handshake"] = seed(0, [
        (0, R.PROTOCOL_HEADER + M(0, (10, 11), t({"capabilities": {"authentication_failure_close": True}})
                                   + ss("PLAIN") + ls(b"\0guest\0wrong") + ss("en_US"))),
        (1, b"AMQP\x01\x01\x00\x09"),
        (2, R.PROTOCOL_HEADER + M(0, (10, 11), t(None) + ss("AMQPLAIN")
                                   + ls(t({"LOGIN": "guest", "PASSWORD": "guest"})[4:]) + ss("en_US"))
         + M(0, (10, 31), s(0) + l(1000) + s(0))),
        (3, R.PROTOCOL_HEADER + M(0, (10, 11), t(None) + ss("PLAIN") + ls(b"\0guest\0guest")
                                   + ss("en_US"))
         + M(0, (10, 31), s(16) + l(4096) + s(1)) + M(0, (10, 40), ss("/nope") + ss("") + o(0)))])
    # with a store: durable definitions, persistent messages past the memory window of 2
    # (paged out), confirms after the log is on disk, acks and requeues, a delayed exchange;
    # then a restart recovers them
    persistent = (1 << 12, o(2))
    out["seed_store_durable"] = seed(hs | F_STORE | F_TIGHT | F_RESTART, [
        (0, M(1, (85, 10), o(0)) + qdecl(1, "dq", flags=2)
         + M(1, (40, 10), s(0) + ss("dx") + ss("topic") + o(2) + t(None))
         + M(1, (50, 20), s(0) + ss("dq") + ss("dx") + ss("k.#") + o(0) + t(None))
         + b"".join(pub(1, "dx", "k.%d" % i, b"p%d" % i, *persistent) for i in range(6))),
        (0, chopen(2) + get(2, "dq") + get(2, "dq") + ack(2, 1) + consume(2, "dq", "c")
         + M(2, (60, 30), ss("c") + o(0)) + nack(2, 0, True, True) + get(2, "dq", True)
         + M(2, (50, 30), s(0) + ss("dq") + o(0))),
        (1, qdecl(1, "dq2", {"x-dead-letter-exchange": "dx", "x-message-ttl": 0}, flags=2)
         + M(1, (40, 10), s(0) + ss("later") + ss("x-delayed-message") + o(2)
             + t({"x-delayed-type": "fanout"}))
         + M(1, (50, 20), s(0) + ss("dq") + ss("later") + ss("") + o(0) + t(None))
         + pub(1, "later", "", b"due", 1 << 13 | 1 << 12, t({"x-delay": 60000}) + o(2))
         + pub(1, "", "dq2", b"dies", *persistent)
         + M(1, (40, 20), s(0) + ss("dx") + o(0)))])
    # timers that fire while the connections are open (F_TIGHT lingers 3 ms): message TTL
    # into a dead-letter queue, queue expiry, a delayed exchange, a retry, and the 1 ms
    # consumer timeout closing channel 1
    out["seed_timers"] = seed(hs | F_TIGHT, [
        (0, qdecl(1, "ttl", {"x-message-ttl": 1, "x-dead-letter-exchange": "",
                             "x-dead-letter-routing-key": "dead"})
         + qdecl(1, "dead") + qdecl(1, "exp", {"x-expires": 1}) + chopen(2)
         + consume(2, "dead", no_ack=True) + pub(1, "", "ttl", b"x")
         + M(1, (40, 10), s(0) + ss("later") + ss("x-delayed-message") + o(0)
             + t({"x-delayed-type": "direct"}))
         + M(1, (50, 20), s(0) + ss("dead") + ss("later") + ss("d") + o(0) + t(None))
         + pub(1, "later", "d", b"due", 1 << 13, t({"x-delay": 1}))
         + qdecl(1, "r", {"x-retry-delays": [1]}) + pub(1, "", "r", b"r") + get(1, "r")
         + reject(1, 1, False) + qdecl(1, "w") + pub(1, "", "w", b"y") + consume(1, "w"))])
    # tracing: messages with a W3C traceparent (and a broken one) through routing, delivery,
    # reject into a dead-letter exchange, direct reply-to; with the firehose and policies
    # on, and queues the policies match (p*: max-length 2, reject-publish-dlx)
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = (1 << 13, t({"traceparent": tp}))
    out["seed_tracing_policies"] = seed(hs | F_EXTRAS, [
        (0, qdecl(1, "dlx") + M(1, (40, 10), s(0) + ss("dlx") + ss("fanout") + o(0) + t(None))
         + M(1, (50, 20), s(0) + ss("dlx") + ss("dlx") + ss("") + o(0) + t(None))
         + qdecl(1, "pq") + M(1, (85, 10), o(0))
         + b"".join(pub(1, "", "pq", b"t%d" % i, *traced) for i in range(4))
         + M(1, (40, 10), s(0) + ss("alt-x") + ss("direct") + o(0) + t(None))
         + pub(1, "alt-x", "nowhere", b"alt", *traced)
         + get(1, "pq") + reject(1, 1, False) + get(1, "dlx", True)
         + pub(1, "", "pq", b"bad", 1 << 13, t({"traceparent": "00-xyz-01"}))
         + consume(1, "pq") + nack(1, 0, True, False)),
        (1, consume(1, "amq.rabbitmq.reply-to", no_ack=True) + qdecl(1, "svc")
         + pub(1, "", "svc", b"call", 1 << 13 | 1 << 9, t({"traceparent": tp})
               + ss("amq.rabbitmq.reply-to"))
         + chopen(2) + get(2, "svc") + pub(2, "", reply_token(0), b"answer", *traced))])
    return out


def main():
    check = "--check" in sys.argv
    seeds = composed()
    if not check:
        seeds.update(record_all())
    OUT.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, data in sorted(seeds.items()):
        p = OUT / name
        if not p.exists() or p.read_bytes() != data:
            changed.append(name)
            if not check:
                p.write_bytes(data)
    if check and changed:
        raise SystemExit("seeds out of date: " + ", ".join(changed))
    print(f"{len(seeds)} seeds, {len(changed)} changed, in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
