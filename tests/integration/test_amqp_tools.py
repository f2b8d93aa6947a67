"""Debian's amqp-tools (rabbitmq-c: amqp-publish, amqp-consume) against the broker."""
import shutil
import subprocess
import time

import pika
import pytest

from helpers import unique, get_one

pytestmark = pytest.mark.skipif(not shutil.which("amqp-publish"), reason="amqp-tools not installed")


def run(*argv, input=None, timeout=20):
    return subprocess.run(list(argv), input=input, capture_output=True, timeout=timeout)


def test_amqp_publish_then_amqp_consume_round_trip(broker, ch):
    q = unique("tools")
    ch.queue_declare(q)
    for body in (b"alpha", b"beta", b"gamma"):
        r = run("amqp-publish", "--url", broker.amqp_url, "-r", q, "-b", body.decode())
        assert r.returncode == 0, r.stderr
    # amqp-consume runs the command once per message, body on stdin
    r = run("amqp-consume", "--url", broker.amqp_url, "-q", q, "-c", "3", "--", "sh", "-c", "cat; echo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\n")[:3] == [b"alpha", b"beta", b"gamma"]
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.queue_delete(q)


def test_amqp_publish_sets_properties_and_headers(broker, ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    r = run("amqp-publish", "--url", broker.amqp_url, "-r", q, "-p", "-C", "text/plain",
            "-E", "utf-8", "-t", "replies", "-H", "trace: abc", "-b", "hello")
    assert r.returncode == 0, r.stderr
    _, props, body = get_one(ch, q)
    assert body == b"hello"
    assert props.delivery_mode == 2
    assert props.content_type == "text/plain"
    assert props.content_encoding == "utf-8"
    assert props.reply_to == "replies"
    assert props.headers == {"trace": "abc"}


def test_amqp_publish_line_buffered_sends_one_message_per_line(broker, ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    r = run("amqp-publish", "--url", broker.amqp_url, "-r", q, "-l", input=b"one\ntwo\nthree\n")
    assert r.returncode == 0, r.stderr
    got = [get_one(ch, q)[2] for _ in range(3)]
    assert [g.rstrip(b"\n") for g in got] == [b"one", b"two", b"three"]


def test_amqp_consume_with_exchange_binds_a_fresh_queue(broker, connect):
    ch = connect().channel()
    x = unique("toolsx")
    ch.exchange_declare(x, "fanout", auto_delete=False)
    # amqp-consume declares the queue (auto-delete) and binds it to x; without -r it
    # crashes and with -r "" it skips the bind (amqp-tools 0.11): fanout ignores the key anyway
    q = unique("toolsq")
    proc = subprocess.Popen(["amqp-consume", "--url", broker.amqp_url, "-q", q, "-e", x, "-r", "any",
                             "-c", "1", "cat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # wait until amqp-consume has bound the queue: a mandatory publish stops bouncing
        ch.confirm_delivery()
        deadline = time.monotonic() + 10
        while True:
            try:
                ch.basic_publish(x, "", b"via-exchange", mandatory=True)
                break
            except pika.exceptions.UnroutableError:
                assert time.monotonic() < deadline, "amqp-consume never bound its queue"
                time.sleep(0.05)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == b"via-exchange"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ch.queue_delete(q)
        ch.exchange_delete(x)


def test_amqp_publish_with_a_wrong_password_fails(broker):
    r = run("amqp-publish", "--url", broker.url(password="wrong"), "-r", "x", "-b", "x")
    assert r.returncode != 0
