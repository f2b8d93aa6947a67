"""What survives a clean broker restart, and what clients see when the broker shuts down.

One broker process of this module's own is set up, restarted once (SIGTERM, then started
again on the same ports and data), and each test checks one consequence."""
import types

import pika
import pytest

import brokers
import rawamqp as R
from helpers import unique, bodies, wait_for

pytestmark = pytest.mark.skipif(brokers.target() == "external",
                                reason="needs a broker process of its own (AMQP_URL is set)")


# Names are bytes, a NUL included (RabbitMQ takes any UTF-8 in a name; bytes that are not
# UTF-8 it refuses with 501, so tests/unit/test_broker_durable_names.c covers those). Found
# by fuzz/fuzz_session: a NUL in a binding key made the saved definitions unloadable (the
# broker would not start again) and a NUL cut a durable queue's name short.
BYTE_QUEUE = b"bytes-q-\x00-"
BYTE_EXCHANGE = b"bytes-x-\x00-"
BYTE_KEY = b"key\x00.#"


def declare_byte_names(b, s):
    s.bq = BYTE_QUEUE + unique("q").encode()
    s.bx = BYTE_EXCHANGE + unique("x").encode()
    with R.connect(b) as raw:
        raw.open_channel(1)
        raw.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr(s.bq) + R.octet(2) + R.table({}))
        raw.expect(R.QUEUE_DECLARE_OK)
        raw.send_method(1, (40, 10), R.short(0) + R.shortstr(s.bx) + R.shortstr("direct")
                        + R.octet(2) + R.table({}))
        raw.expect((40, 11))
        raw.send_method(1, (50, 20), R.short(0) + R.shortstr(s.bq) + R.shortstr(s.bx)
                        + R.shortstr(BYTE_KEY) + R.octet(0) + R.table({}))
        raw.expect((50, 21))


# A per-message TTL long enough to outlive the restart: RabbitMQ takes seconds to come back
# and counts the TTL from the publish; Switchboard counts it from the restart.
TTL_MS = "20000" if brokers.target() == "rabbitmq" else "3000"


@pytest.fixture(scope="module")
def restarted():
    b = brokers.start()
    s = types.SimpleNamespace(broker=b, dq=unique("durable-q"), tq=unique("transient-q"),
                              dx=unique("durable-x"), tx=unique("transient-x"),
                              uq=unique("unacked-q"), ad=unique("autodel-q"),
                              ttl=unique("ttl-q"), qttl=unique("queue-ttl-q"))
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.exchange_declare(s.dx, "topic", durable=True)
        ch.exchange_declare(s.tx, "topic", durable=False)
        ch.queue_declare(s.dq, durable=True, arguments={"x-max-length": 100})
        ch.queue_declare(s.tq, durable=False)
        ch.queue_declare(s.uq, durable=True)
        ch.queue_bind(s.dq, s.dx, "orders.#")
        s.excl = ch.queue_declare("", exclusive=True, durable=True).method.queue
        s.gen = ch.queue_declare("", durable=True).method.queue  # amq.gen-..., not exclusive
        ch.confirm_delivery()
        ch.basic_publish(s.dx, "orders.new", b"persistent-1", pika.BasicProperties(delivery_mode=2))
        ch.basic_publish(s.dx, "orders.new", b"transient", pika.BasicProperties(delivery_mode=1))
        ch.basic_publish(s.dx, "orders.new", b"persistent-2",
                         pika.BasicProperties(delivery_mode=2, message_id="m2", headers={"k": "v"}))
        ch.basic_publish("", s.tq, b"gone", pika.BasicProperties(delivery_mode=2))
        for i in range(3):
            ch.basic_publish("", s.uq, b"u%d" % i, pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", s.gen, b"g", pika.BasicProperties(delivery_mode=2))
        ch.queue_declare(s.ttl, durable=True)
        ch.basic_publish("", s.ttl, b"expires", pika.BasicProperties(delivery_mode=2,
                                                                       expiration=TTL_MS))
        ch.basic_publish("", s.ttl, b"stays", pika.BasicProperties(delivery_mode=2))
        ch.queue_declare(s.qttl, durable=True, arguments={"x-message-ttl": int(TTL_MS)})
        ch.basic_publish("", s.qttl, b"expires too", pika.BasicProperties(delivery_mode=2))
        m0 = ch.basic_get(s.uq)[0]
        ch.basic_ack(m0.delivery_tag)
        ch.basic_get(s.uq)  # u1 stays unacked across the restart
        declare_byte_names(b, s)

        s.raw = R.connect(b)  # sees the shutdown
        s.raw.open_channel(1)
        b.restart()
        s.close = s.raw.read_close(timeout=10, reply=False)
        s.raw.close()
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        s.ttl_counts = [c.channel().queue_declare(q, passive=True).method.message_count
                        for q in (s.ttl, s.qttl)]
        c.close()
        yield s
    finally:
        b.stop()


@pytest.fixture
def ch2(restarted):
    c = pika.BlockingConnection(pika.URLParameters(restarted.broker.amqp_url))
    yield c
    c.close()


def test_shutdown_closes_client_connections_with_320_connection_forced(restarted):
    assert restarted.close == (
        320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", 0, 0)


def test_durable_exchange_survives_a_restart(restarted, ch2):
    ch2.channel().exchange_declare(restarted.dx, "topic", durable=True)


def test_durable_queue_keeps_its_arguments_and_persistent_messages_only(restarted, ch2):
    ch = ch2.channel()
    ok = ch.queue_declare(restarted.dq, durable=True, arguments={"x-max-length": 100})
    assert ok.method.message_count == 2
    got = []
    for _ in range(2):
        m, p, b = ch.basic_get(restarted.dq, auto_ack=True)
        got.append((b, p.delivery_mode, p.message_id, p.headers))
    assert got == [(b"persistent-1", 2, None, None), (b"persistent-2", 2, "m2", {"k": "v"})]


def test_bindings_between_durable_objects_survive_a_restart(restarted, ch2):
    ch = ch2.channel()
    ch.confirm_delivery()
    ch.basic_publish(restarted.dx, "orders.again", b"after", mandatory=True)
    assert bodies(ch, restarted.dq) == [b"after"]


@pytest.mark.parametrize("attr,kind", [("tq", "queue"), ("excl", "queue"), ("tx", "exchange")])
def test_transient_and_exclusive_definitions_are_gone_after_a_restart(restarted, ch2, attr, kind):
    name = getattr(restarted, attr)
    ch = ch2.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        if kind == "queue":
            ch.queue_declare(name, passive=True)
        else:
            ch.exchange_declare(name, passive=True)
    assert ei.value.args == (404, f"NOT_FOUND - no {kind} '{name}' in vhost '/'")


def test_recovered_messages_keep_their_ttl(restarted, ch2):
    """RabbitMQ keeps the absolute expiry; Switchboard's log has no arrival time, so its TTL
    counts from the restart. Either way a recovered message expires, by its own expiration
    or its queue's x-message-ttl, with no consumer needed to notice: it does not stay."""
    assert restarted.ttl_counts == [2, 1]     # they came back ...
    ch = ch2.channel()                        # ... and expire
    for q, left in ((restarted.ttl, 1), (restarted.qttl, 0)):
        wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == left,
                 timeout=30, what=f"the messages of {q} to expire after the restart")
    assert bodies(ch, restarted.ttl) == [b"stays"]


def test_unacked_persistent_messages_are_back_after_a_restart_and_acked_ones_are_not(restarted, ch2):
    ch = ch2.channel()
    assert bodies(ch, restarted.uq) == [b"u1", b"u2"]


def test_names_with_a_nul_survive_a_restart(restarted):
    s = restarted
    with R.connect(s.broker) as raw:
        raw.open_channel(1)
        raw.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr(s.bq) + R.octet(1) + R.table({}))
        raw.expect(R.QUEUE_DECLARE_OK)
        raw.send_method(1, R.CONFIRM_SELECT, R.octet(0))
        raw.expect(R.CONFIRM_SELECT_OK)
        raw.send(R.publish_frames(1, s.bx, BYTE_KEY, b"routed by bytes", mandatory=True))
        raw.expect(R.BASIC_ACK)
        raw.send_method(1, R.BASIC_GET, R.short(0) + R.shortstr(s.bq) + R.octet(1))
        f = raw.expect(R.BASIC_GET_OK)
        r = f.args()
        assert (r.longlong(), r.octet(), r.take(r.octet()), r.take(r.octet())) == (
            1, 0, s.bx, BYTE_KEY)
        assert raw.read_frame().type == R.FRAME_HEADER
        assert raw.read_frame().payload == b"routed by bytes"


def test_a_durable_server_named_queue_survives_a_restart(restarted, ch2):
    # Found by fuzz/fuzz_session: it was saved, but its amq.* name was refused on loading.
    ch = ch2.channel()
    assert ch.queue_declare(restarted.gen, passive=True).method.message_count == 1
    assert bodies(ch, restarted.gen) == [b"g"]
