"""The delivery acknowledgement timeout (RabbitMQ's consumer_timeout): a delivery left unacked
longer than the timeout closes its channel with 406 PRECONDITION_FAILED and RabbitMQ's text,
and the channel's unacked messages go back to their queue.

Each test starts its own broker with a 1 s timeout: Switchboard with --consumer-timeout 1000,
RabbitMQ (SB_TARGET=rabbitmq) with consumer_timeout = 1000 in rabbitmq.conf. RabbitMQ checks once
a minute, so there the close comes up to a minute later; the waits allow for that."""
import time

import pika
import pytest

import brokers
from helpers import unique

TIMEOUT_MS = 1000
TEXT = (f"PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. "
        f"Timeout value used: {TIMEOUT_MS} ms. This timeout value can be configured, "
        f"see consumers doc guide to learn more")


@pytest.fixture(scope="module")
def short(request):
    if brokers.from_env():
        pytest.skip("needs a broker started with a short consumer timeout")
    if brokers.target() == "rabbitmq":
        b = brokers.start_rabbitmq(conf_lines=[f"consumer_timeout = {TIMEOUT_MS}"])
    else:
        b = brokers.start_switchboard(["--consumer-timeout", str(TIMEOUT_MS)])
    yield b
    b.stop()


def connect(b):
    return pika.BlockingConnection(pika.URLParameters(b.amqp_url))


def closed_by_broker(conn, ch, limit=90):
    """Consumes on ch until the broker closes it (at most limit seconds); returns the
    ChannelClosedByBroker exception. A spare consumer on an empty queue keeps
    start_consuming running for a channel that only used basic.get."""
    spare = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(spare, lambda *a: None)
    conn.call_later(limit, ch.stop_consuming)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.start_consuming()
    return e.value


def test_unacked_delivery_closes_the_channel_and_requeues(short):
    conn = connect(short)
    setup = conn.channel()
    q = unique("ackto")
    setup.queue_declare(q)
    for i in range(3):
        setup.basic_publish("", q, f"m{i}".encode())
    ch = conn.channel()
    got = []
    ch.basic_qos(prefetch_count=10)
    ch.basic_consume(q, lambda c, m, p, body: got.append(body))
    t0 = time.monotonic()
    reason = closed_by_broker(conn, ch)
    assert time.monotonic() - t0 >= TIMEOUT_MS / 1000
    assert got == [b"m0", b"m1", b"m2"]
    assert reason.reply_code == 406
    assert reason.reply_text == TEXT.replace("channel 1", f"channel {ch.channel_number}")
    # everything the channel held is back, marked redelivered; the connection is fine
    back = []
    for _ in range(3):
        m, props, body = setup.basic_get(q, auto_ack=True)
        assert m is not None and m.redelivered
        back.append(body)
    assert back == got
    setup.queue_delete(q)
    conn.close()


def test_basic_get_without_ack_times_out_too(short):
    conn = connect(short)
    ch = conn.channel()
    q = unique("ackto-get")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    assert ch.basic_get(q, auto_ack=False)[0] is not None
    assert closed_by_broker(conn, ch).reply_code == 406
    ch2 = conn.channel()
    assert ch2.queue_declare(q, passive=True).method.message_count == 1
    ch2.queue_delete(q)
    conn.close()


def test_acking_in_time_keeps_the_channel_open(short):
    conn = connect(short)
    ch = conn.channel()
    q = unique("ackto-ok")
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=1)

    def on_msg(c, m, p, body):
        c.basic_ack(m.delivery_tag)

    ch.basic_consume(q, on_msg)
    deadline = time.monotonic() + 3 * TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        ch.basic_publish("", q, b"tick")
        conn.process_data_events(time_limit=0.1)
    assert ch.is_open
    # a no-ack consumer is never timed out either
    ch.basic_consume(q, lambda *a: None, auto_ack=True)
    conn.process_data_events(time_limit=2 * TIMEOUT_MS / 1000)
    assert ch.is_open
    ch.queue_delete(q)
    conn.close()


@pytest.mark.switchboard_only
def test_timeout_zero_turns_it_off():
    b = brokers.start_switchboard(["--consumer-timeout", "0"])
    try:
        conn = connect(b)
        ch = conn.channel()
        q = unique("ackto-off")
        ch.queue_declare(q)
        ch.basic_publish("", q, b"x")
        assert ch.basic_get(q, auto_ack=False)[0] is not None
        conn.process_data_events(time_limit=1.5)
        assert ch.is_open
        conn.close()
    finally:
        b.stop()
