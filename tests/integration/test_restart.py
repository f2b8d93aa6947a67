"""What survives a clean broker restart, and what clients see when the broker shuts down.

One broker process of this module's own is set up, restarted once (SIGTERM, then started
again on the same ports and data), and each test checks one consequence."""
import types

import pika
import pytest

import brokers
import rawamqp as R
from helpers import unique, bodies

pytestmark = pytest.mark.skipif(brokers.target() == "external",
                                reason="needs a broker process of its own (AMQP_URL is set)")


@pytest.fixture(scope="module")
def restarted():
    b = brokers.start()
    s = types.SimpleNamespace(broker=b, dq=unique("durable-q"), tq=unique("transient-q"),
                              dx=unique("durable-x"), tx=unique("transient-x"),
                              uq=unique("unacked-q"), ad=unique("autodel-q"))
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
        ch.confirm_delivery()
        ch.basic_publish(s.dx, "orders.new", b"persistent-1", pika.BasicProperties(delivery_mode=2))
        ch.basic_publish(s.dx, "orders.new", b"transient", pika.BasicProperties(delivery_mode=1))
        ch.basic_publish(s.dx, "orders.new", b"persistent-2",
                         pika.BasicProperties(delivery_mode=2, message_id="m2", headers={"k": "v"}))
        ch.basic_publish("", s.tq, b"gone", pika.BasicProperties(delivery_mode=2))
        for i in range(3):
            ch.basic_publish("", s.uq, b"u%d" % i, pika.BasicProperties(delivery_mode=2))
        m0 = ch.basic_get(s.uq)[0]
        ch.basic_ack(m0.delivery_tag)
        ch.basic_get(s.uq)  # u1 stays unacked across the restart

        s.raw = R.connect(b)  # sees the shutdown
        s.raw.open_channel(1)
        b.restart()
        s.close = s.raw.read_close(timeout=10, reply=False)
        s.raw.close()
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


def test_unacked_persistent_messages_are_back_after_a_restart_and_acked_ones_are_not(restarted, ch2):
    ch = ch2.channel()
    assert bodies(ch, restarted.uq) == [b"u1", b"u2"]
