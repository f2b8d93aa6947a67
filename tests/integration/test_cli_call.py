"""`switchboard call` and `switchboard respond` as processes against the broker under test,
with each other and with pika on the other side.

Exit statuses of call (src/cli/call.c): 0 reply, 1 connection/broker error, 2 bad arguments,
3 timeout, 4 no such queue (404, or returned 312 NO_ROUTE), 5 no consumer."""
import contextlib
import os
import pathlib
import signal
import subprocess
import time

import pika
import pytest

from helpers import get_one, pump, unique, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
REPLY_TO = "amq.rabbitmq.reply-to"


def binary():
    build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build")).resolve()
    exe = build / "switchboard"
    if not exe.exists():
        pytest.fail(f"{exe} not built: run `make`", pytrace=False)
    return str(exe)


@pytest.fixture
def env(broker):
    return dict(os.environ, AMQP_URL=broker.amqp_url)


@pytest.fixture
def call(env):
    """call(queue, body, *options) -> CompletedProcess."""

    def run(queue, *args, input=None, timeout=30):
        return subprocess.run([binary(), "call", queue, *args], input=input,
                              capture_output=True, env=env, timeout=timeout)

    return run


def consumers(connect, queue):
    """The queue's consumer count, or None if it does not exist (fresh channel each time:
    a 404 closes it)."""
    ch = connect().channel()
    try:
        return ch.queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        if ch.is_open:
            ch.close()


@pytest.fixture
def respond(env, connect, tmp_path):
    """respond(queue, *options_then_command) -> Popen, started and consuming; stopped (SIGTERM)
    at the end of the test."""
    procs = []

    def start(queue, *args):
        log = open(tmp_path / f"respond-{len(procs)}.log", "wb")
        p = subprocess.Popen([binary(), "respond", queue, *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=log)
        p.log_path = log.name
        procs.append((p, log))
        wait_for(lambda: p.poll() is not None or (consumers(connect, queue) or 0) >= 1,
                 timeout=10, what=f"respond consuming from {queue}")
        assert p.poll() is None, pathlib.Path(p.log_path).read_text()
        return p

    yield start
    for p, log in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


@pytest.fixture
def queue(ch):
    name = unique("call")
    ch.queue_declare(name)
    yield name
    with contextlib.suppress(Exception):
        ch.queue_delete(name)


def test_round_trip_with_cat(call, respond, queue):
    respond(queue, "--", "cat")
    r = call(queue, "hello world")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello world"  # raw bytes, no newline added
    r = call(queue, "-", input=b"line1\nbin\x00ary\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"line1\nbin\x00ary\n"
    r = call(queue, input=b"")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""


def test_round_trip_with_tr_and_declare(call, respond, connect):
    q = unique("upper")
    respond(q, "--declare", "--", "tr", "a-z", "A-Z")
    assert consumers(connect, q) == 1
    r = call(q, "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"HELLO"
    connect().channel().queue_delete(q)


def test_correlation_id_and_content_type_echoed_to_a_pika_caller(respond, queue, conn):
    respond(queue, "--", "tr", "a-z", "A-Z")
    ch = conn.channel()
    replies = []
    ch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append((p, b)), auto_ack=True)
    ch.basic_publish("", queue, b"pika says hi", pika.BasicProperties(
        reply_to=REPLY_TO, correlation_id="corr-42", content_type="text/x-shout"))
    pump(conn, lambda: replies, timeout=10, what="the reply")
    props, body = replies[0]
    assert body == b"PIKA SAYS HI"
    assert props.correlation_id == "corr-42"
    assert props.content_type == "text/x-shout"


def test_call_against_a_pika_responder(call, env, queue, conn):
    ch = conn.channel()
    seen = []

    def on_request(c, m, p, b):
        seen.append(p)
        c.basic_publish("", p.reply_to, b[::-1], pika.BasicProperties(
            correlation_id=p.correlation_id, content_type="text/plain"))
        c.basic_ack(m.delivery_tag)

    ch.basic_consume(queue, on_request)
    proc = subprocess.Popen(
        [binary(), "call", queue, "stressed", "--timeout", "10s", "--header", "tenant=acme",
         "--content-type", "text/plain", "--correlation-id", "my-id-1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pump(conn, lambda: proc.poll() is not None, timeout=15, what="call to finish")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out == b"desserts"
    p = seen[0]
    assert p.correlation_id == "my-id-1"
    assert p.reply_to.startswith(REPLY_TO + ".")
    assert p.content_type == "text/plain"
    assert p.headers == {"tenant": "acme"}
    # the deadline travels with the request: expiration is the time left, in ms
    assert 0 < int(p.expiration) <= 10000


def test_generated_correlation_ids_are_unique(call, env, queue, conn):
    ch = conn.channel()
    ids = []

    def on_request(c, m, p, b):
        ids.append(p.correlation_id)
        c.basic_publish("", p.reply_to, b"ok", pika.BasicProperties(
            correlation_id=p.correlation_id))
        c.basic_ack(m.delivery_tag)

    ch.basic_consume(queue, on_request)
    for _ in range(2):
        proc = subprocess.Popen([binary(), "call", queue, "x"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pump(conn, lambda: proc.poll() is not None, timeout=15, what="call to finish")
        assert proc.returncode == 0, proc.stderr.read()
        assert proc.stdout.read() == b"ok"
    assert len(set(ids)) == 2 and all(len(i) >= 16 for i in ids)


def test_reply_with_another_correlation_id_is_ignored(call, env, queue, conn):
    ch = conn.channel()

    def on_request(c, m, p, b):
        c.basic_publish("", p.reply_to, b"stray", pika.BasicProperties(correlation_id="other"))
        c.basic_ack(m.delivery_tag)

    ch.basic_consume(queue, on_request)
    proc = subprocess.Popen([binary(), "call", queue, "x", "--timeout", "700ms"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pump(conn, lambda: proc.poll() is not None, timeout=15, what="call to finish")
    assert proc.returncode == 3
    assert proc.stdout.read() == b""


@pytest.mark.parametrize("timeout,seconds", [("500ms", 0.5), ("1", 1.0), ("1.5s", 1.5)])
def test_timeout_exits_3_within_the_deadline(call, queue, conn, timeout, seconds):
    conn.channel().basic_consume(queue, lambda *a: None)  # a consumer that never answers
    t0 = time.monotonic()
    r = call(queue, "anyone?", "--timeout", timeout)
    elapsed = time.monotonic() - t0
    assert r.returncode == 3, r.stderr
    assert b"no reply" in r.stderr
    assert seconds - 0.05 <= elapsed <= seconds + 0.5


def test_the_request_expires_with_the_deadline(call, queue, ch, connect):
    # A consumer that holds the request but never answers: after the call gives up and the
    # consumer goes away, the requeued request is already dead and never served late.
    c2 = connect()
    c2.channel().basic_consume(queue, lambda *a: None)
    c2.process_data_events(time_limit=0.05)
    r = call(queue, "late", "--timeout", "300ms")
    assert r.returncode == 3, r.stderr
    c2.close()
    time.sleep(0.2)
    assert ch.basic_get(queue, auto_ack=True)[0] is None


def test_no_such_queue_exits_4(call):
    r = call(unique("missing"), "x", "--timeout", "2s")
    assert r.returncode == 4, r.stderr
    assert b"no queue" in r.stderr


def test_no_consumer_exits_5(call, queue, ch):
    t0 = time.monotonic()
    r = call(queue, "x", "--timeout", "10s")
    assert r.returncode == 5, r.stderr
    assert b"no consumer" in r.stderr
    assert time.monotonic() - t0 < 2  # fails fast, not at the deadline
    assert ch.queue_declare(queue, passive=True).method.message_count == 0  # nothing sent


def test_bad_arguments_exit_2(call):
    for args in (["q", "--timeout", "soon"], ["q", "--timeout", "0"], ["q", "--header", "nokv"],
                 ["q", "a", "b"], ["q", "--bogus"]):
        r = call(*args)
        assert r.returncode == 2, (args, r.stderr)
    r = subprocess.run([binary(), "call"], capture_output=True)
    assert r.returncode == 2
    r = subprocess.run([binary(), "respond", "q", "cat"], capture_output=True)
    assert r.returncode == 2  # no "--"
    r = subprocess.run([binary(), "respond", "q", "--", "no-such-command-xyz"],
                       capture_output=True)
    assert r.returncode == 2 and b"not found" in r.stderr
    for cmd in ("call", "respond"):
        r = subprocess.run([binary(), cmd, "--help"], capture_output=True)
        assert r.returncode == 0 and b"exit status" in r.stdout and b"examples" in r.stdout


def test_connection_error_exits_1(call):
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = call("q", "x", "--url", f"amqp://guest:guest@127.0.0.1:{port}/")
    assert r.returncode == 1
    assert b"cannot connect" in r.stderr


def test_failing_command_rejects_to_the_dead_letter_exchange(call, respond, ch):
    dlx, dlq, q = unique("dlx"), unique("dlq"), unique("req")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    try:
        p = respond(q, "--", "sh", "-c", "cat >/dev/null; echo broken >&2; exit 3")
        r = call(q, "doomed", "--timeout", "1s", "--correlation-id", "c-dead")
        assert r.returncode == 3, r.stderr
        _, props, body = get_one(ch, dlq, timeout=5)
        assert body == b"doomed"
        assert props.correlation_id == "c-dead"
        death = props.headers["x-death"][0]
        assert death["reason"] == "rejected" and death["queue"] == q
        assert ch.queue_declare(q, passive=True).method.message_count == 0
        wait_for(lambda: b"broken" in pathlib.Path(p.log_path).read_bytes(), timeout=5,
                 what="the stderr tail in respond's log")
    finally:
        for name in (q, dlq):
            ch.queue_delete(name)
        ch.exchange_delete(dlx)


def test_false_rejects_without_requeue(call, respond, queue, ch):
    p = respond(queue, "--", "false")
    r = call(queue, "x", "--timeout", "500ms")
    assert r.returncode == 3
    wait_for(lambda: b"exited with status 1" in pathlib.Path(p.log_path).read_bytes(),
             timeout=5, what="the failure in respond's log")
    assert ch.queue_declare(queue, passive=True).method.message_count == 0


def test_output_over_the_limit_rejects(call, respond, queue):
    p = respond(queue, "--max-output", "1000", "--", "head", "-c", "5000", "/dev/zero")
    r = call(queue, "x", "--timeout", "700ms")
    assert r.returncode == 3
    wait_for(lambda: b"more than 1000 bytes" in pathlib.Path(p.log_path).read_bytes(),
             timeout=5, what="the overflow in respond's log")


def test_request_without_reply_to_is_run_and_acked(respond, queue, ch, tmp_path):
    out = tmp_path / "got"
    p = respond(queue, "--", "sh", "-c", f"cat >> {out}")
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"fire-and-forget")
    wait_for(lambda: out.exists() and out.read_bytes() == b"fire-and-forget", timeout=5,
             what="the command to run")
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    # acked: nothing comes back when the responder's connection is gone
    assert ch.queue_declare(queue, passive=True).method.message_count == 0


def test_concurrency_runs_commands_in_parallel(env, respond, queue):
    respond(queue, "--concurrency", "4", "--", "sh", "-c", "sleep 0.5; cat")
    t0 = time.monotonic()
    procs = [subprocess.Popen([binary(), "call", queue, f"req{i}", "--timeout", "10s"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    outs = [p.communicate(timeout=15) for p in procs]
    elapsed = time.monotonic() - t0
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, err
        assert out == f"req{i}".encode()
    assert elapsed < 1.4, f"4 calls took {elapsed:.2f}s (serial would be 2s)"


def test_sigterm_finishes_in_flight_requests(call, env, respond, queue):
    p = respond(queue, "--", "sh", "-c", "sleep 1; cat")
    caller = subprocess.Popen([binary(), "call", queue, "finish me", "--timeout", "10s"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.4)
    p.send_signal(signal.SIGTERM)
    out, err = caller.communicate(timeout=15)
    assert caller.returncode == 0, err
    assert out == b"finish me"
    assert p.wait(10) == 0


def test_shutdown_timeout_kills_and_requeues(respond, queue, ch, conn):
    p = respond(queue, "--shutdown-timeout", "300ms", "--", "sleep", "30")
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"long job")
    wait_for(lambda: ch.queue_declare(queue, passive=True).method.message_count == 0,
             timeout=5, what="the job to start")
    time.sleep(0.2)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    assert time.monotonic() - t0 < 3
    _, _, body = get_one(ch, queue, timeout=5)  # requeued, not lost
    assert body == b"long job"


def test_respond_exits_1_when_its_queue_is_deleted(respond, connect):
    q = unique("doomed")
    p = respond(q, "--declare", "--", "cat")
    connect().channel().queue_delete(q)
    assert p.wait(10) == 1  # basic.cancel (consumer_cancel_notify), not a silent hang
    assert b"cancelled the consumer" in pathlib.Path(p.log_path).read_bytes()
