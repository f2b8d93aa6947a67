"""Failures that come back later: x-delivery-limit (as RabbitMQ's quorum queues),
retry with back-off in one queue (x-retry-delays, Switchboard's own) and the
delayed-message exchange (x-delay, as the rabbitmq_delayed_message_exchange plugin,
which the reference RabbitMQ does not have)."""
import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from helpers import unique, get_one, wait_for


def closed(ei):
    return ei.value.args


@pytest.fixture
def dlq(ch):
    """(exchange, queue): a fanout dead-letter exchange with one exclusive queue bound."""
    x = unique("dlx")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, "")
    ch.confirm_delivery()
    return x, q


# ----------------------------------------------------------------------------- delivery limit

def test_delivery_limit_counts_returns_in_x_delivery_count_then_dead_letters(ch, dlq):
    x, dq = dlq
    q = unique("q")
    ch.queue_declare(q, durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": x})
    try:
        ch.confirm_delivery()
        ch.basic_publish("", q, b"poison")
        seen = []
        for _ in range(3):
            m, p, _ = get_one(ch, q, auto_ack=False)
            seen.append((p.headers or {}).get("x-delivery-count"))
            ch.basic_nack(m.delivery_tag, requeue=True)
        assert seen == [0, 1, 2]  # RabbitMQ 3.10 counts from the first delivery
        m, p, body = get_one(ch, dq)
        assert body == b"poison"
        assert p.headers["x-first-death-reason"] == "delivery_limit"
        assert ch.basic_get(q)[0] is None
    finally:
        ch.queue_delete(q)


# ----------------------------------------------------------------------------- retries

@pytest.mark.switchboard_only
def test_rejected_message_comes_back_after_each_retry_delay_then_dead_letters(ch, dlq):
    x, dq = dlq
    q = unique("q")
    ch.queue_declare(q, exclusive=True, arguments={
        "x-retry-delays": [100, 200], "x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"flaky")
    counts, times = [], []
    t0 = time.monotonic()
    for _ in range(3):
        m, p, body = get_one(ch, q, auto_ack=False, timeout=5)
        times.append(time.monotonic() - t0)
        counts.append((p.headers or {}).get("x-retry-count"))
        ch.basic_reject(m.delivery_tag, requeue=False)
        t0 = time.monotonic()
    assert counts == [None, 1, 2]
    # each retry waited (at least) its delay: 100 ms, then 200 ms
    assert times[1] >= 0.09 and times[2] >= 0.19, times
    m, p, body = get_one(ch, dq)
    assert body == b"flaky"
    assert p.headers["x-retry-count"] == 2
    assert p.headers["x-first-death-reason"] == "rejected"


@pytest.mark.switchboard_only
def test_retried_message_is_not_visible_before_its_delay(ch):
    q = unique("q")
    ch.queue_declare(q, exclusive=True, arguments={"x-retry-delays": [300]})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"later")
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_nack(m.delivery_tag, requeue=False)
    assert ch.basic_get(q)[0] is None
    assert get_one(ch, q, timeout=5)[2] == b"later"


@pytest.mark.switchboard_only
@pytest.mark.parametrize("delays,detail", [
    ([], '"expected a non-empty array of delays in milliseconds"'),
    ([100, -1], '"delay 2 is not a non-negative integer"'),
    ("100", '"expected a non-empty array of delays in milliseconds"'),
])
def test_invalid_retry_delays_fail_with_406(ch, delays, detail):
    q = unique("q")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(q, arguments={"x-retry-delays": delays})
    assert closed(ei) == (406, f"PRECONDITION_FAILED - invalid arg 'x-retry-delays' for queue "
                               f"'{q}' in vhost '/': {detail}")


# ----------------------------------------------------------------------------- delayed exchange

@pytest.mark.switchboard_only
def test_delayed_exchange_holds_a_message_for_x_delay_then_routes_it(ch):
    x = unique("delayed")
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    t0 = time.monotonic()
    ch.basic_publish(x, "k", b"soon", pika.BasicProperties(headers={"x-delay": 300}))
    ch.basic_publish(x, "k", b"now")
    assert get_one(ch, q)[2] == b"now"
    assert get_one(ch, q, timeout=5)[2] == b"soon"
    assert time.monotonic() - t0 >= 0.29
    ch.exchange_delete(x)


@pytest.mark.switchboard_only
def test_delayed_exchange_routes_with_its_x_delayed_type(ch):
    x = unique("delayed")
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "topic"})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, "a.#")
    ch.confirm_delivery()
    ch.basic_publish(x, "a.b.c", b"t", pika.BasicProperties(headers={"x-delay": 50}))
    ch.basic_publish(x, "z", b"miss", pika.BasicProperties(headers={"x-delay": 50}))
    assert get_one(ch, q, timeout=5)[2] == b"t"
    time.sleep(0.1)
    assert ch.basic_get(q)[0] is None
    ch.exchange_delete(x)


@pytest.mark.switchboard_only
def test_delayed_exchange_needs_an_existing_x_delayed_type(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(unique("delayed"), "x-delayed-message",
                            arguments={"x-delayed-type": "nope"})
    assert closed(ei) == (406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be "
                               "an existing exchange type")


@pytest.mark.switchboard_only
def test_redeclaring_a_delayed_exchange_with_its_type_is_equivalent(ch):
    x = unique("delayed")
    args = {"x-delayed-type": "fanout"}
    ch.exchange_declare(x, "x-delayed-message", arguments=args)
    ch.exchange_declare(x, "x-delayed-message", arguments=args)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(x, "fanout")
    assert closed(ei)[0] == 406


@pytest.mark.switchboard_only
def test_a_persistent_message_waiting_for_its_retry_survives_kill_9():
    import os
    import signal
    import tempfile
    import brokers

    data = tempfile.mkdtemp(prefix="sb-retry-")
    b = brokers.start_switchboard(data_dir=data)
    q = unique("q")
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.queue_declare(q, durable=True, arguments={"x-retry-delays": [60000]})
        ch.confirm_delivery()
        ch.basic_publish("", q, b"keep me", pika.BasicProperties(delivery_mode=2))
        m = get_one(ch, q, auto_ack=False)[0]
        ch.basic_reject(m.delivery_tag, requeue=False)       # now waiting 60 s
        ch.queue_declare(q, passive=True)                     # the reject was processed
        assert ch.basic_get(q)[0] is None
        time.sleep(0.2)                                       # group commit of the retry
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(5)
    finally:
        b.stop()
    b = brokers.start_switchboard(data_dir=data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        _, p, body = get_one(ch, q)
        assert body == b"keep me"
        assert p.headers["x-retry-count"] == 1
        c.close()
    finally:
        b.stop()


@pytest.mark.switchboard_only
def test_a_persistent_delayed_message_survives_kill_9_and_is_routed_when_due():
    import os
    import signal
    import tempfile
    import brokers

    data = tempfile.mkdtemp(prefix="sb-delay-")
    b = brokers.start_switchboard(data_dir=data)
    x, q = unique("delayed"), unique("q")
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.exchange_declare(x, "x-delayed-message", durable=True,
                            arguments={"x-delayed-type": "direct"})
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, x, "k")
        ch.confirm_delivery()  # the confirm waits for the held message's record
        ch.basic_publish(x, "k", b"later", pika.BasicProperties(
            delivery_mode=2, headers={"x-delay": 1500}))
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(5)
    finally:
        b.stop()
    t0 = time.monotonic()
    b = brokers.start_switchboard(data_dir=data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        _, _, body = get_one(ch, q, timeout=10)
        assert body == b"later"
        c.close()
    finally:
        b.stop()
    assert time.monotonic() - t0 < 10


@pytest.mark.switchboard_only
def test_retry_delays_sent_as_32_bit_integers_still_match_after_a_restart():
    """The definitions file keeps no integer widths: [100, 200] sent as signedints (py-amqp,
    rabbitmq-c) comes back as longs, and the redeclaration must still be equivalent."""
    import tempfile
    import amqp
    import brokers

    data = tempfile.mkdtemp(prefix="sb-widths-")
    q = unique("q")

    def declare(b):
        c = amqp.Connection(f"127.0.0.1:{b.port}", userid="guest", password="guest")
        c.connect()
        try:
            c.channel().queue_declare(q, durable=True, auto_delete=False,
                                      arguments={"x-retry-delays": [100, 200]})
        finally:
            c.close()

    b = brokers.start_switchboard(data_dir=data)
    try:
        declare(b)
        declare(b)
    finally:
        b.stop()
    b = brokers.start_switchboard(data_dir=data)
    try:
        declare(b)
    finally:
        b.stop()
