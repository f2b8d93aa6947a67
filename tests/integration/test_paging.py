"""Durable queues larger than their memory window: persistent messages past it wait on
disk only and come back, in order and intact, when consumers reach them — also after a
restart. Switchboard-only (RabbitMQ pages by its own memory rules, not a window flag)."""
import os
import signal
import tempfile

import pika
import pytest

import brokers
from helpers import unique

pytestmark = pytest.mark.switchboard_only

WINDOW = 100


def start(data):
    return brokers.start_switchboard(data_dir=data,
                                     extra_args=("--queue-memory-window", str(WINDOW)))


def publish(ch, q, bodies, persistent=True):
    for b in bodies:
        ch.basic_publish("", q, b, pika.BasicProperties(delivery_mode=2 if persistent else 1))


def drain(ch, q):
    out = []
    while True:
        m, p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append(b)


def test_messages_past_the_window_come_back_in_order_and_intact():
    data = tempfile.mkdtemp(prefix="sb-paging-")
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q = unique("big")
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        first = [b"m%05d-" % i + os.urandom(8).hex().encode() for i in range(1500)]
        second = [b"n%05d-" % i + os.urandom(8).hex().encode() for i in range(1500)]
        publish(ch, q, first)
        publish(ch, q, [b"transient"], persistent=False)  # paged out apart from the log
        publish(ch, q, second)
        want = first + [b"transient"] + second
        assert ch.queue_declare(q, passive=True).method.message_count == 3001
        assert drain(ch, q) == want
        c.close()
    finally:
        b.stop()


def test_paged_out_messages_survive_a_restart_and_kill_9():
    data = tempfile.mkdtemp(prefix="sb-paging-")
    b = start(data)
    q = unique("big")
    want = [b"r%05d" % i for i in range(2000)]
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        publish(ch, q, want)
        c.close()
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(5)
    finally:
        b.stop()
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        assert ch.queue_declare(q, passive=True).method.message_count == 2000
        got = drain(ch, q)
        assert got == want
        c.close()
    finally:
        b.stop()


def test_requeued_messages_go_back_before_the_paged_out_ones():
    data = tempfile.mkdtemp(prefix="sb-paging-")
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q = unique("big")
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        want = [b"q%05d" % i for i in range(1000)]
        publish(ch, q, want)
        got = [ch.basic_get(q, auto_ack=False) for _ in range(250)]  # crosses the window
        ch.basic_nack(got[-1][0].delivery_tag, multiple=True, requeue=True)
        assert drain(ch, q) == want
        c.close()
    finally:
        b.stop()


def test_purging_a_paged_queue_removes_its_messages_from_disk_too():
    data = tempfile.mkdtemp(prefix="sb-paging-")
    b = start(data)
    q = unique("big")
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        publish(ch, q, [b"p%d" % i for i in range(1500)])
        assert ch.queue_purge(q).method.message_count == 1500
        publish(ch, q, [b"after"])
        c.close()
    finally:
        b.stop()
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        assert drain(ch, q) == [b"after"]
        c.close()
    finally:
        b.stop()
