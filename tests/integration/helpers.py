"""Small helpers shared by the integration tests."""
import time
import uuid


def unique(prefix="t"):
    """A name no other test (or run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(pred, timeout=5.0, interval=0.01, what="condition"):
    """Polls pred() until it returns a true value (returned), bounded by timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pump(conn, pred, timeout=5.0, what="condition"):
    """Runs a pika BlockingConnection's I/O (delivering to consumer callbacks) until pred()
    is true; bounded by timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        conn.process_data_events(time_limit=0.02)
    return pred()


def get_all(ch, queue, auto_ack=True, limit=10000):
    """Every message basic.get returns right now: a list of (method, properties, body)."""
    out = []
    for _ in range(limit):
        m, p, b = ch.basic_get(queue, auto_ack=auto_ack)
        if m is None:
            break
        out.append((m, p, b))
    return out


def get_one(ch, queue, auto_ack=True, timeout=5.0):
    """Polls basic.get until a message arrives (bounded); returns (method, properties, body)."""
    deadline = time.monotonic() + timeout
    while True:
        m, p, b = ch.basic_get(queue, auto_ack=auto_ack)
        if m is not None:
            return m, p, b
        if time.monotonic() > deadline:
            raise AssertionError(f"no message on {queue!r} within {timeout}s")
        time.sleep(0.01)


def bodies(ch, queue):
    """The bodies basic.get returns right now, auto-acked."""
    return [b for _, _, b in get_all(ch, queue)]
