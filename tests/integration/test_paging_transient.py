"""Transient messages past the memory window: paged out to DATA_DIR/transient (not the
durable log), read back in order with their properties, gone after purge, delete and
restart, and kept in RAM when the paging files cannot be written. Switchboard-only
(RabbitMQ pages by its own memory rules, not a window flag)."""
import os
import signal
import tempfile
import time

import pika
import pytest

import brokers
from helpers import unique, wait_for

pytestmark = pytest.mark.switchboard_only

WINDOW = 100


def start(data):
    return brokers.start_switchboard(data_dir=data,
                                     extra_args=("--queue-memory-window", str(WINDOW)))


def paging_files(data):
    d = os.path.join(data, "transient")
    return [n for n in os.listdir(d) if n.endswith(".page")] if os.path.isdir(d) else []


def props(i, persistent=False):
    return pika.BasicProperties(
        delivery_mode=2 if persistent else 1, content_type="application/x-test",
        correlation_id="c%d" % i, priority=i % 10,
        headers={"i": i, "tag": "t%d" % i, "nested": {"x-death": [{"count": i}]}})


def publish(ch, q, items):
    for body, p in items:
        ch.basic_publish("", q, body, p)


def drain(ch, q):
    out = []
    while True:
        m, p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append((m, p, b))


def count(ch, q):
    return ch.queue_declare(q, passive=True).method.message_count


@pytest.fixture
def data():
    return tempfile.mkdtemp(prefix="sb-paging-t-")


def test_a_transient_backlog_pages_out_and_comes_back_in_order_with_its_properties(data):
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q = unique("work")
        ch.queue_declare(q)  # not durable
        ch.confirm_delivery()
        items = [(b"w%05d-" % i + os.urandom(6).hex().encode(), props(i)) for i in range(3000)]
        publish(ch, q, items)
        assert count(ch, q) == 3000
        assert paging_files(data), "a backlog past the window should be on disk"
        got = []
        ch.basic_qos(prefetch_count=500)
        for m, p, body in ch.consume(q, inactivity_timeout=5):
            assert m is not None, "consumer stalled after %d" % len(got)
            got.append((body, p))
            ch.basic_ack(m.delivery_tag)
            if len(got) == len(items):
                break
        ch.cancel()
        assert [g[0] for g in got] == [i[0] for i in items]
        for (body, p), (_, want) in zip(got, items):
            assert p.headers == want.headers
            assert (p.content_type, p.correlation_id, p.priority, p.delivery_mode) == \
                (want.content_type, want.correlation_id, want.priority, 1)
        assert count(ch, q) == 0
        wait_for(lambda: not paging_files(data), timeout=5)
        c.close()
    finally:
        b.stop()


def test_persistent_and_transient_mixed_in_a_durable_queue_with_requeue(data):
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q = unique("mixed")
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        items = [(b"x%05d" % i, props(i, persistent=(i // 7) % 4 == 0)) for i in range(700)]
        publish(ch, q, items)
        got = [ch.basic_get(q, auto_ack=False) for _ in range(250)]  # crosses the window
        ch.basic_nack(got[-1][0].delivery_tag, multiple=True, requeue=True)
        out = drain(ch, q)
        assert [b for _, _, b in out] == [i[0] for i in items]
        assert [m.redelivered for m, _, _ in out] == [True] * 250 + [False] * 450
        assert [p.delivery_mode for _, p, _ in out] == [i[1].delivery_mode for i in items]
        assert [p.headers["i"] for _, p, _ in out] == list(range(700))
        c.close()
    finally:
        b.stop()


def test_purge_and_delete_remove_paged_out_messages_and_their_files(data):
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q1, q2 = unique("purge"), unique("delete")
        ch.queue_declare(q1)
        ch.queue_declare(q2)
        ch.confirm_delivery()
        publish(ch, q1, [(b"p%d" % i, props(i)) for i in range(1000)])
        publish(ch, q2, [(b"d%d" % i, props(i)) for i in range(1000)])
        assert paging_files(data)
        assert ch.queue_purge(q1).method.message_count == 1000
        assert ch.queue_delete(q2).method.message_count == 1000
        wait_for(lambda: not paging_files(data), timeout=5)
        publish(ch, q1, [(b"after", props(0))])
        assert [b for _, _, b in drain(ch, q1)] == [b"after"]
        c.close()
    finally:
        b.stop()


def test_paged_out_messages_with_a_ttl_still_expire(data):
    b = start(data)
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q, dead = unique("ttl"), unique("dead")
        ch.queue_declare(dead)
        ch.queue_declare(q, arguments={"x-message-ttl": 400, "x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": dead})
        ch.confirm_delivery()
        publish(ch, q, [(b"t%04d" % i, props(i)) for i in range(600)])
        assert paging_files(data)
        wait_for(lambda: count(ch, q) == 0, timeout=10)
        out = drain(ch, dead)
        assert [b for _, _, b in out] == [b"t%04d" % i for i in range(600)]
        assert out[-1][1].headers["x-death"][0]["reason"] == "expired"
        c.close()
    finally:
        b.stop()


def test_a_restart_drops_transient_files_and_brings_back_persistent_messages(data):
    b = start(data)
    q = unique("restart")
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        items = [(b"r%05d" % i, props(i, persistent=i % 3 == 0)) for i in range(1200)]
        publish(ch, q, items)
        assert paging_files(data)
        c.close()
        os.kill(b.proc.pid, signal.SIGKILL)  # leaves its paging files behind
        b.proc.wait(5)
        assert paging_files(data)
    finally:
        b.stop()
    b = start(data)
    try:
        assert not paging_files(data), "a start must remove the last run's paging files"
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        assert [b for _, _, b in drain(ch, q)] == [i[0] for i in items if i[1].delivery_mode == 2]
        c.close()
    finally:
        b.stop()


def test_a_full_paging_disk_keeps_messages_in_ram_and_loses_none(data):
    b = start(data)
    try:
        # The next paging file the broker creates is /dev/full: every write is ENOSPC.
        os.symlink("/dev/full", os.path.join(data, "transient", "0000000001.page"))
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        q = unique("full")
        ch.queue_declare(q)
        ch.confirm_delivery()
        items = [(b"f%05d" % i, props(i)) for i in range(2000)]
        publish(ch, q, items)
        time.sleep(0.2)
        publish(ch, q, [(b"late", props(0))])
        assert count(ch, q) == 2001
        out = drain(ch, q)
        assert [b for _, _, b in out] == [i[0] for i in items] + [b"late"]
        assert out[5][1].headers == items[5][1].headers
        c.close()
        assert "SB-PAGE-WRITE-FAIL" in b.log_tail(200)
    finally:
        b.stop()
