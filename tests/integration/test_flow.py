"""Memory alarm and connection.blocked: publishers are blocked while memory in use is over
the high watermark, consumers keep draining, and publishing resumes below it.

Switchboard-only: the reference RabbitMQ runs with its default watermark, which a test
cannot push it over quickly."""
import threading

import pika
import pytest

import brokers
from helpers import unique, wait_for

pytestmark = pytest.mark.switchboard_only


def start(watermark):
    return brokers.start_switchboard(extra_args=(
        "--memory-high-watermark", str(watermark), "--memory-check-ms", "20"))


def test_publisher_gets_connection_blocked_when_memory_is_over_the_watermark():
    b = start(1)  # one byte: always over
    try:
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        events = []
        conn.add_on_connection_blocked_callback(lambda c, m: events.append(m.method.NAME))
        ch = conn.channel()
        q = ch.queue_declare(unique("q")).method.queue
        ch.basic_publish("", q, b"first")
        wait_for(lambda: conn.process_data_events(0.05) or events, timeout=5)
        assert events == ["Connection.Blocked"]
        # a blocked connection is not read, so it cannot close gracefully (as in
        # RabbitMQ): the broker's shutdown ends it
    finally:
        b.stop()


def test_blocked_publisher_is_not_read_but_a_consumer_on_another_connection_still_drains():
    b = start(1)
    try:
        pub = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        pch = pub.channel()
        q = pch.queue_declare(unique("q")).method.queue
        pch.basic_publish("", q, b"m1")      # blocks this connection after the frame
        pch.basic_publish("", q, b"m2")      # sits unread in the socket
        pub.process_data_events(0.2)
        con = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        cch = con.channel()
        got = cch.basic_get(q, auto_ack=True)
        assert got[2] == b"m1"
        assert cch.basic_get(q, auto_ack=True)[0] is None  # m2 was not read
        con.close()
    finally:
        b.stop()


def test_publishing_resumes_with_connection_unblocked_below_the_watermark():
    # A watermark well above an idle broker's use: a large queued message pushes it over,
    # consuming it brings it back under.
    b = start(8 << 20)
    try:
        pub = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        events = []
        pub.add_on_connection_blocked_callback(lambda c, m: events.append("blocked"))
        pub.add_on_connection_unblocked_callback(lambda c, m: events.append("unblocked"))
        ch = pub.channel()
        q = ch.queue_declare(unique("q")).method.queue
        con = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        cch = con.channel()
        count = lambda: cch.queue_declare(q, passive=True).method.message_count  # noqa: E731
        ch.basic_publish("", q, b"x" * (16 << 20))   # over the watermark once queued
        wait_for(lambda: pub.process_data_events(0.05) or count() == 1, timeout=10)
        ch.basic_publish("", q, b"small")             # blocked by now: waits unread
        wait_for(lambda: pub.process_data_events(0.05) or "blocked" in events, timeout=5)
        big = cch.basic_get(q, auto_ack=True)
        assert len(big[2]) == 16 << 20
        wait_for(lambda: pub.process_data_events(0.05) or "unblocked" in events, timeout=5)
        wait_for(lambda: count() == 1, timeout=5)      # "small" was read after unblocking
        assert cch.basic_get(q, auto_ack=True)[2] == b"small"
        assert events == ["blocked", "unblocked"]
        con.close()
        pub.close()
    finally:
        b.stop()


def test_publisher_is_blocked_low_on_disk_when_free_space_is_under_the_limit():
    # A limit far above any real disk: the disk alarm is on from the start.
    b = brokers.start_switchboard(extra_args=(
        "--disk-free-limit", str(1 << 60), "--memory-check-ms", "20"))
    try:
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        reasons = []
        conn.add_on_connection_blocked_callback(lambda c, m: reasons.append(m.method.reason))
        ch = conn.channel()
        q = ch.queue_declare(unique("q")).method.queue
        ch.basic_publish("", q, b"first")
        wait_for(lambda: conn.process_data_events(0.05) or reasons, timeout=5)
        assert reasons == ["low on disk"]
        assert "free disk space" in open(b.log_path).read()
    finally:
        b.stop()
