"""Celery (Debian's python3-celery) against the broker: a real worker process running the
tasks of celery_app/sbtasks.py, results over Celery's rpc:// backend, named queues, retries
with a countdown, acks_late tasks surviving a worker killed with SIGKILL, remote control
(ping over the celery.pidbox fanout), and a rejected task dead-lettered by the queue's
x-dead-letter-exchange. Runs against RabbitMQ as well (SB_TARGET=rabbitmq)."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pika
import pytest

from helpers import get_one, unique, wait_for

APP_DIR = pathlib.Path(__file__).resolve().parent / "celery_app"


class Worker:
    """A `celery worker` process for the sbtasks app, consuming queues."""

    def __init__(self, broker, marks, queues, name):
        self.log = marks / f"{name}.log"
        env = dict(os.environ, AMQP_URL=broker.amqp_url, SB_CELERY_DIR=str(marks),
                   PYTHONPATH=str(APP_DIR))
        argv = ["/usr/bin/python3", "-m", "celery", "-A", "sbtasks", "worker", "--pool=solo",
                "-Q", ",".join(queues), "-n", f"{name}@sbtest", "--without-gossip",
                "--without-mingle", "--loglevel=INFO"]
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(argv, env=env, cwd=str(marks), stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_for(lambda: b"ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 timeout=60, interval=0.1, what=f"celery worker {name} ready")
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def marks(tmp_path_factory):
    return tmp_path_factory.mktemp("celery")


@pytest.fixture(scope="module")
def app(broker, marks):
    """The sbtasks module as a client imports it. It reads its broker from the environment
    at import time; the environment is put back at once, since the harness takes AMQP_URL
    to mean "use this external broker" for every test after this one."""
    saved = {k: os.environ.get(k) for k in ("AMQP_URL", "SB_CELERY_DIR")}
    os.environ.update(AMQP_URL=broker.amqp_url, SB_CELERY_DIR=str(marks))
    sys.path.insert(0, str(APP_DIR))
    try:
        import sbtasks
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    sbtasks.app.conf.broker_url = broker.amqp_url
    yield sbtasks
    sbtasks.app.close()
    sys.path.remove(str(APP_DIR))


@pytest.fixture(scope="module")
def worker(broker, marks, app):
    w = Worker(broker, marks, ["sb-celery", "sb-celery-high", "sb-celery-work"], "main")
    yield w
    w.stop()


def test_tasks_and_results_round_trip(app, worker):
    assert app.add.delay(2, 3).get(timeout=30) == 5
    results = [app.add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]


def test_routing_to_a_named_queue(app, worker, conn):
    assert app.add.apply_async((40, 2), queue="sb-celery-high").get(timeout=30) == 42
    # a queue nobody consumes keeps the task message
    q = unique("celery-idle")
    ch = conn.channel()
    ch.queue_declare(q, durable=True)       # as Celery declares its queues
    app.add.apply_async((1, 1), queue=q)
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == 1,
             what="the task waiting in its queue")
    ch.queue_delete(q)


def test_retry_with_countdown(app, worker):
    t0 = time.monotonic()
    assert app.flaky.delay(2).get(timeout=30) == "ok after 2 retries"
    assert time.monotonic() - t0 >= 0.4


def test_remote_control_ping(app, worker):
    replies = app.app.control.ping(timeout=5)
    assert {"main@sbtest": {"ok": "pong"}} in replies


def test_rejected_task_is_dead_lettered(app, worker, conn):
    ch = conn.channel()
    ch.exchange_declare("sb-celery-dlx", "fanout")
    ch.queue_declare("sb-celery-dead")
    ch.queue_bind("sb-celery-dead", "sb-celery-dlx")
    order = unique("order")
    app.poison.apply_async((order,), queue="sb-celery-work")
    m, props, body = get_one(ch, "sb-celery-dead", timeout=30)
    assert order.encode() in body
    assert props.headers["task"] == "sbtasks.poison"
    death = props.headers["x-death"][0]
    assert (death["queue"], death["reason"]) == ("sb-celery-work", "rejected")


def test_acks_late_task_survives_a_killed_worker(broker, app, marks):
    q = unique("celery-kill")
    w1 = Worker(broker, marks, [q], "doomed")
    token = unique("tok")
    try:
        res = app.slow_once.apply_async((token,), queue=q)
        wait_for(lambda: (marks / f"{token}.started").exists(), timeout=30,
                 what="the task started in the first worker")
        w1.stop(signal.SIGKILL)       # the unacked task goes back to its queue
        w2 = Worker(broker, marks, [q], "rescuer")
        try:
            assert res.get(timeout=30) == {"redelivered": True}
        finally:
            w2.stop()
    finally:
        w1.stop(signal.SIGKILL)
        c = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        c.channel().queue_delete(q)
        c.close()
