"""Crash tests: kill -9 the broker under load, restart it on the same data, and check that
nothing confirmed was lost (DESIGN.md principle 2, issue 3).

Switchboard only: the tests kill the broker process, so they are skipped when AMQP_URL or
SB_TARGET=rabbitmq is set. Each test prints one summary line (run pytest with -s to see
them): published, confirmed, recovered, lost.

The publisher and consumers are raw AMQP sockets (tests/integration/rawamqp.py) so that the
publisher keeps a window of ~1000 unconfirmed messages in flight and we know exactly which
delivery tags the broker confirmed before it died. Message bodies start with a 9-digit id
(the publisher's delivery tag) followed by '|'.
"""
import os
import pathlib
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

import brokers  # noqa: E402
import rawamqp as R  # noqa: E402
from helpers import unique  # noqa: E402

pytestmark = pytest.mark.skipif(
    brokers.target() != "switchboard",
    reason="crash tests kill -9 the broker: Switchboard only (AMQP_URL / SB_TARGET set)")

BASIC_NACK = (60, 120)
BASIC_CONSUME = (60, 20)
BASIC_CONSUME_OK = (60, 21)
BASIC_QOS = (60, 10)
BASIC_QOS_OK = (60, 11)
BASIC_DELIVER = (60, 60)
QUEUE_DECLARE_OK = (50, 11)
QUEUE_PURGE = (50, 30)
QUEUE_PURGE_OK = (50, 31)
PERSISTENT = (R.PROPERTY_FLAGS[3][1], R.octet(2))     # delivery_mode = 2
TRANSIENT = (R.PROPERTY_FLAGS[3][1], R.octet(1))


# ----------------------------------------------------------------------------- helpers

def body_for(i, size):
    head = b"%09d|" % i
    return head + b"x" * max(0, size - len(head))


def id_of(body):
    return int(body[:9])


def summary(name, **kw):
    print(f"\n[crash] {name}: " + " ".join(f"{k}={v}" for k, v in kw.items()), flush=True)


def kill9(b):
    """SIGKILL the broker process and reap it."""
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)


def restart_after_crash(b):
    """Starts the broker again on the same ports and data dir; returns (seconds until it
    accepts connections, the recovery line of its log or None)."""
    assert b.proc is None or b.proc.poll() is not None, "broker still running"
    log_before = pathlib.Path(b.log_path).read_text(errors="replace") if b.log_path else ""
    t0 = time.monotonic()
    b.restart()
    took = time.monotonic() - t0
    log = pathlib.Path(b.log_path).read_text(errors="replace")[len(log_before):]
    m = re.findall(r"(\d+) persistent messages recovered in ([\d.]+) ms", log)
    return took, (m[-1] if m else None), log


def declare_queue(c, queue, durable=True, passive=False, exclusive=False, args=None):
    bits = (1 if passive else 0) | (2 if durable else 0) | (4 if exclusive else 0)
    c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr(queue) + R.octet(bits)
                  + R.table(args or {}))
    f = c.read_method()
    if f.method == R.CHANNEL_CLOSE:
        r = f.args()
        return ("closed", r.short(), r.shortstr())
    assert f.method == QUEUE_DECLARE_OK, f
    r = f.args()
    return r.shortstr(), r.long(), r.long()


def raw_channel(b):
    c = R.connect(b)
    c.open_channel(1)
    return c


class Publisher:
    """Publishes numbered messages on one channel with confirms, keeping up to `window`
    unconfirmed, until stopped, the connection dies, or `limit` messages were sent."""

    def __init__(self, b, queue, size=1024, window=1000, props=PERSISTENT, exchange="",
                 limit=None, start=1):
        self.c = raw_channel(b)
        self.c.send_method(1, R.CONFIRM_SELECT, R.octet(0))
        self.c.expect(R.CONFIRM_SELECT_OK)
        self.queue, self.size, self.window, self.exchange = queue, size, window, exchange
        self.flags, self.props = props
        self.limit = limit
        self.first = start            # the id of delivery tag 1
        self.published = 0            # delivery tags 1..published were sent
        self.acked = set()
        self.nacked = set()
        self.settled_to = 0           # every tag <= settled_to got an ack or a nack
        self.closed_by = None         # (code, text) of a channel/connection close
        self.error = None
        self.stop = threading.Event()
        self.frame_max = (self.c.tune or {}).get("frame_max") or 131072

    def ids(self, tags):
        return {t + self.first - 1 for t in tags}

    def _settle(self, tag, multiple, nack):
        dest = self.nacked if nack else self.acked
        if multiple:
            for t in range(self.settled_to + 1, tag + 1):
                if t not in self.acked and t not in self.nacked:
                    dest.add(t)
        else:
            dest.add(tag)
        while self.settled_to + 1 in self.acked or self.settled_to + 1 in self.nacked:
            self.settled_to += 1

    def _handle(self, f):
        if f.type != R.FRAME_METHOD:
            return
        r = f.args()
        if f.method == R.BASIC_ACK:
            tag, bits = r.longlong(), r.octet()
            self._settle(tag, bits & 1, False)
        elif f.method == BASIC_NACK:
            tag, bits = r.longlong(), r.octet()
            self._settle(tag, bits & 1, True)
        elif f.method in (R.CHANNEL_CLOSE, R.CONNECTION_CLOSE):
            self.closed_by = (r.short(), r.shortstr())
            raise R.Closed(f"closed by the broker: {self.closed_by}")

    def _pump(self, timeout):
        """Reads whatever the broker sent within timeout and handles complete frames."""
        sock = self.c.sock
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return
        try:
            data = sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise R.Closed(str(e))
        if not data:
            raise R.Closed("EOF")
        self.c.buf += data
        buf = self.c.buf
        pos = 0
        while len(buf) - pos >= 8:
            ftype, ch, size = struct.unpack_from(">BHI", buf, pos)
            if len(buf) - pos < 8 + size:
                break
            self._handle(R.Frame(ftype, ch, buf[pos + 7:pos + 7 + size]))
            pos += 8 + size
        self.c.buf = buf[pos:]

    def run(self, max_seconds=15.0):
        """Publishes until stopped/dead/limit. Returns self."""
        deadline = time.monotonic() + max_seconds
        self.c.sock.settimeout(5)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                room = self.window - (self.published - self.settled_to)
                if self.limit is not None:
                    room = min(room, self.limit - self.published)
                if self.limit is not None and self.published >= self.limit \
                        and self.settled_to >= self.published:
                    break
                if room > 0:
                    out = []
                    for _ in range(min(room, 100)):
                        self.published += 1
                        out.append(R.publish_frames(
                            1, self.exchange, self.queue,
                            body_for(self.published + self.first - 1, self.size),
                            flags=self.flags, props=self.props, frame_max=self.frame_max))
                    self.c.send(b"".join(out))
                    self._pump(0)
                else:
                    self._pump(0.05)
        except (R.Closed, OSError) as e:
            self.error = e
        return self

    def settle(self, max_seconds=10.0):
        """Waits (publishing nothing) for the confirms of what was published."""
        deadline = time.monotonic() + max_seconds
        try:
            while self.settled_to < self.published and time.monotonic() < deadline:
                self._pump(0.05)
        except (R.Closed, OSError) as e:
            self.error = e
        return self

    def close(self):
        self.c.close()


def read_queue(b, queue, ack=True, timeout=20.0):
    """Every message in queue, as a list of (id, redelivered), by basic.consume. With
    ack=False the messages are not acknowledged and go back to the queue when the
    connection closes. Bodies are checked against their id. Fails when timeout seconds
    pass without a delivery (on a loaded machine the whole read can take longer)."""
    c = raw_channel(b)
    try:
        q = declare_queue(c, queue, passive=True)
        assert q[0] != "closed", f"queue {queue} is gone: {q}"
        count = q[1]
        c.send_method(1, BASIC_QOS, R.long_(0) + R.short(0) + R.octet(0))
        c.expect(BASIC_QOS_OK)
        c.send_method(1, BASIC_CONSUME, R.short(0) + R.shortstr(queue) + R.shortstr("drain")
                      + R.octet(2 if ack else 0) + R.table({}))
        c.expect(BASIC_CONSUME_OK)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            try:
                f = c.read_method(timeout=max(0.01, deadline - time.monotonic()))
            except (socket.timeout, R.Closed) as e:
                raise AssertionError(
                    f"queue {queue}: got {len(out)} of {count} messages, then nothing for "
                    f"{timeout:.0f} s ({e!r}); last id {out[-1] if out else None}; broker "
                    f"alive={b.alive()}; log tail:\n{b.log_tail(20)}") from None
            if f.method != BASIC_DELIVER:
                continue
            r = f.args()
            r.shortstr()
            r.longlong()
            redelivered = bool(r.octet() & 1)
            header, frames = R.read_content(c, timeout=10)
            body = b"".join(fr.payload for fr in frames)
            size = struct.unpack(">Q", header.payload[4:12])[0]
            assert len(body) == size
            i = id_of(body)
            assert body == body_for(i, size), f"message {i}: body damaged"
            out.append((i, redelivered))
            deadline = time.monotonic() + timeout   # the limit is on silence, not the total
        return out
    finally:
        c.close()


def check_recovered(published_ids, confirmed_ids, got, delivered=frozenset(),
                    acked=frozenset(), in_flight=0):
    """The common assertions; returns (lost, dups, recovered_ids).

    redelivered=true means the broker handed the message to a consumer before: that is
    what the client saw (delivered) plus what the broker had already written towards the
    client when it was killed. That in-flight part is bounded by the consumer's prefetch
    (in_flight) and, the queue being FIFO, lies right after the last message it saw."""
    ids = [i for i, _ in got]
    rec = set(ids)
    lost = sorted(set(confirmed_ids) - rec - set(acked))
    dups = len(ids) - len(rec)
    assert not lost, f"{len(lost)} confirmed messages lost, e.g. {lost[:20]}"
    assert rec <= set(published_ids), f"invented messages: {sorted(rec - set(published_ids))[:20]}"
    assert dups == 0, f"{dups} messages came back more than once"
    assert ids == sorted(ids), "messages came back out of order"
    unseen = sorted(i for i, red in got if red and i not in delivered)
    last_seen = max(delivered) if delivered else 0
    wrong = [i for i in unseen if i < last_seen]
    assert not wrong and len(unseen) <= in_flight, (
        f"redelivered=true on {len(unseen)} messages the consumer never got "
        f"(in flight allowed: {in_flight} after the last seen id {last_seen}): "
        f"{unseen[:5]}..{unseen[-5:]}")
    return lost, dups, rec


@pytest.fixture
def sb(tmp_path):
    b = brokers.start_switchboard(data_dir=str(tmp_path / "data"))
    yield b
    b.stop()


def publish_and_kill(b, queue, delay, size, window=1000):
    """Runs a publisher and kill -9s the broker after delay seconds while it publishes."""
    pub = Publisher(b, queue, size=size, window=window)
    killed = {}

    def killer():
        killed["published"] = pub.published
        killed["confirmed"] = len(pub.acked)
        kill9(b)

    t = threading.Timer(delay, killer)
    t.start()
    pub.run(max_seconds=delay + 10)
    t.join()
    pub.close()
    assert killed, "the broker was not killed"
    assert pub.error is not None, "the publisher stopped before the kill"
    return pub


# ----------------------------------------------------------------------------- a

@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill9_while_publishing_loses_no_confirmed_message(sb, seed):
    rnd = random.Random(seed)
    delay = rnd.uniform(0.2, 1.0)
    size = rnd.choice([100, 1024, 4000, 70000])
    q = unique("crash-q")
    c = raw_channel(sb)
    declare_queue(c, q, durable=True)
    c.close()
    pub = publish_and_kill(sb, q, delay, size)
    confirmed = pub.ids(pub.acked)
    took, rec_line, _ = restart_after_crash(sb)
    got = read_queue(sb, q)
    lost, _, rec = check_recovered(pub.ids(range(1, pub.published + 1)), confirmed, got)
    summary(f"a seed={seed} delay={delay:.2f}s size={size}", published=pub.published,
            confirmed=len(confirmed), nacked=len(pub.nacked), recovered=len(rec),
            lost=len(lost), restart_s=f"{took:.2f}",
            recovery=(f"{rec_line[0]} msgs in {rec_line[1]} ms" if rec_line else "?"))
    assert confirmed, "nothing was confirmed before the kill: the test proved nothing"
    assert not pub.nacked, f"{len(pub.nacked)} publishes were nacked with a healthy disk"


# ----------------------------------------------------------------------------- b

class Consumer(threading.Thread):
    """A raw consumer (prefetch `prefetch`) that acks every message except those whose
    id % keep == 0, of which it keeps at most max_kept unacked."""

    def __init__(self, b, queue, keep=7, prefetch=300, max_kept=100):
        super().__init__(daemon=True)
        self.c = raw_channel(b)
        self.prefetch, self.max_kept = prefetch, max_kept
        self.c.send_method(1, BASIC_QOS, R.long_(0) + R.short(prefetch) + R.octet(0))
        self.c.expect(BASIC_QOS_OK)
        self.c.send_method(1, BASIC_CONSUME, R.short(0) + R.shortstr(queue)
                           + R.shortstr("crash-consumer") + R.octet(0) + R.table({}))
        self.c.expect(BASIC_CONSUME_OK)
        self.keep = keep
        self.delivered = set()
        self.acked = set()
        self.error = None

    def run(self):
        try:
            while True:
                f = self.c.read_method(timeout=30)
                if f.method != BASIC_DELIVER:
                    continue
                r = f.args()
                r.shortstr()
                tag = r.longlong()
                _, frames = R.read_content(self.c, timeout=10)
                i = id_of(b"".join(fr.payload for fr in frames))
                self.delivered.add(i)
                if i % self.keep or len(self.delivered) - len(self.acked) > self.max_kept:
                    self.c.send_method(1, R.BASIC_ACK, R.longlong(tag) + R.octet(0))
                    self.acked.add(i)
        except (R.Closed, OSError, AssertionError) as e:
            self.error = e


@pytest.mark.parametrize("seed", [11, 12])
def test_kill9_with_a_consumer_acking(sb, seed):
    rnd = random.Random(seed)
    delay = rnd.uniform(0.3, 1.0)
    size = rnd.choice([200, 1024])
    q = unique("crash-ack-q")
    c = raw_channel(sb)
    declare_queue(c, q, durable=True)
    c.close()
    cons = Consumer(sb, q)
    cons.start()
    pub = publish_and_kill(sb, q, delay, size)
    cons.join(10)
    assert not cons.is_alive(), "the consumer did not notice the broker died"
    confirmed = pub.ids(pub.acked)
    took, rec_line, _ = restart_after_crash(sb)
    got = read_queue(sb, q)
    lost, _, rec = check_recovered(pub.ids(range(1, pub.published + 1)), confirmed, got,
                                   delivered=cons.delivered, acked=cons.acked,
                                   in_flight=cons.prefetch)
    acked_back = len(rec & cons.acked)
    kept = {i for i in cons.delivered if i not in cons.acked}
    kept_confirmed_missing = sorted((kept & confirmed) - rec)
    redelivered = sum(1 for _, red in got if red)
    summary(f"b seed={seed} delay={delay:.2f}s size={size}", published=pub.published,
            confirmed=len(confirmed), delivered=len(cons.delivered), acked=len(cons.acked),
            recovered=len(rec), redelivered=redelivered, acked_came_back=acked_back,
            lost=len(lost), restart_s=f"{took:.2f}")
    assert not kept_confirmed_missing, "delivered-but-unacked confirmed messages lost"
    assert cons.delivered, "the consumer got nothing before the kill: the test proved nothing"
    assert confirmed


# ----------------------------------------------------------------------------- c

def test_durable_topology_survives_kill9_right_after_declare_ok(sb):
    import pika
    x, x2, q, gone = unique("crash-x"), unique("crash-x2"), unique("crash-q"), unique("gone-q")
    conn = pika.BlockingConnection(pika.URLParameters(sb.amqp_url))
    ch = conn.channel()
    ch.queue_declare(gone, durable=True)
    ch.exchange_declare(x, "topic", durable=True)
    ch.exchange_declare(x2, "direct", durable=True)
    ch.queue_declare(q, durable=True, arguments={"x-max-length": 1000, "x-queue-mode": "lazy"})
    ch.queue_bind(q, x, "orders.*")
    ch.exchange_bind(x2, x, "invoices.#")
    ch.queue_bind(q, x2, "invoices.paid")
    ch.queue_delete(gone)
    kill9(sb)  # right after the last -ok
    took, _, _ = restart_after_crash(sb)
    conn = pika.BlockingConnection(pika.URLParameters(sb.amqp_url))
    ch = conn.channel()
    ch.exchange_declare(x, "topic", passive=True)
    ch.exchange_declare(x2, "direct", passive=True)
    ch.queue_declare(q, passive=True)
    # the same arguments again: no 406, so they were kept
    ch.queue_declare(q, durable=True, arguments={"x-max-length": 1000, "x-queue-mode": "lazy"})
    ch.confirm_delivery()
    ch.basic_publish(x, "orders.new", b"direct-route", pika.BasicProperties(delivery_mode=2))
    ch.basic_publish(x, "invoices.paid", b"via-e2e", pika.BasicProperties(delivery_mode=2))
    ch.basic_publish(x, "nothing.here", b"unroutable", pika.BasicProperties(delivery_mode=2))
    bodies = []
    for _ in range(3):
        m, _, body = ch.basic_get(q, auto_ack=True)
        if m is None:
            break
        bodies.append(body)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(gone, passive=True)
    assert e.value.reply_code == 404
    conn.close()
    summary("c topology", exchanges=2, queues=1, bindings=3, deleted_queue_gone=True,
            routed=len(bodies), restart_s=f"{took:.2f}", lost=0)
    assert bodies == [b"direct-route", b"via-e2e"]


# ----------------------------------------------------------------------------- d

def test_transient_messages_and_non_durable_queues_are_gone_after_kill9(sb):
    dq, tq = unique("durable-q"), unique("transient-q")
    c = raw_channel(sb)
    declare_queue(c, dq, durable=True)
    declare_queue(c, tq, durable=False)
    c.close()
    # persistent into the durable queue: ids 1..100; transient into it: 101..200;
    # persistent into the non-durable queue: 201..300
    runs = [(dq, PERSISTENT, 1), (dq, TRANSIENT, 101), (tq, PERSISTENT, 201)]
    confirmed = set()
    for queue, props, start in runs:
        p = Publisher(sb, queue, size=64, props=props, limit=100, start=start).run(10)
        p.close()
        assert p.error is None and len(p.acked) == 100, (p.error, len(p.acked))
        confirmed |= p.ids(p.acked)
    kill9(sb)
    took, _, _ = restart_after_crash(sb)
    got = read_queue(sb, dq)
    ids = [i for i, _ in got]
    c = raw_channel(sb)
    tq_after = declare_queue(c, tq, passive=True)
    c.close()
    summary("d transient", published=300, confirmed=len(confirmed), recovered=len(ids),
            persistent_durable_back=len(ids), transient_back=0, lost=100 - len(ids),
            restart_s=f"{took:.2f}")
    assert ids == list(range(1, 101))
    assert tq_after[:2] == ("closed", 404), f"non-durable queue survived: {tq_after}"


# ----------------------------------------------------------------------------- e

def _newest_segment(data_dir):
    segs = sorted(pathlib.Path(data_dir).glob("*.seg"))
    assert segs, f"no segment in {data_dir}"
    return segs[-1]


@pytest.mark.parametrize("garbage", ["random", "header"])
def test_torn_tail_is_truncated_and_confirmed_messages_survive(sb, garbage):
    rnd = random.Random(21 if garbage == "random" else 22)
    q = unique("torn-q")
    c = raw_channel(sb)
    declare_queue(c, q, durable=True)
    c.close()
    pub = publish_and_kill(sb, q, rnd.uniform(0.3, 0.7), 1024)
    confirmed = pub.ids(pub.acked)
    seg = _newest_segment(sb.data_dir)
    if garbage == "random":
        junk = bytes(rnd.getrandbits(8) for _ in range(777))
    else:  # a record header promising 1000 payload bytes, bad CRC, and only 20 of them
        junk = struct.pack("<IIBBH", 1000, 0xDEADBEEF, 1, 0, 0) + b"\x01" * 20
    size_before = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(junk)
    took, rec_line, log = restart_after_crash(sb)
    got = read_queue(sb, q)
    lost, _, rec = check_recovered(pub.ids(range(1, pub.published + 1)), confirmed, got)
    torn = [ln for ln in log.splitlines() if "SB-STORE-TORN" in ln]
    summary(f"e torn tail ({garbage}, {len(junk)} bytes on {seg.name})",
            published=pub.published, confirmed=len(confirmed), recovered=len(rec),
            lost=len(lost), restart_s=f"{took:.2f}", torn_logged=bool(torn))
    assert torn, f"torn tail not logged:\n{log[-3000:]}"
    assert seg.name in torn[0]
    if seg.exists():
        assert seg.stat().st_size <= size_before, "the garbage was not truncated"


# ----------------------------------------------------------------------------- f

def _mount_tmpfs(path, size):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount a small tmpfs")
    ok, err = _mount_tmpfs(mnt, "4m")
    if not ok:
        pytest.skip(f"cannot mount a tmpfs here (mount -t tmpfs failed: {err})")
    b = None
    try:
        holder = {}
        yield mnt, holder
        b = holder.get("broker")
    finally:
        if b is not None:
            b.stop()
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_nacks_keeps_confirmed_and_recovers(small_disk):
    """ENOSPC itself (the disk alarm off): publishes are nacked, not lost or hung."""
    mnt, holder = small_disk
    b = brokers.start_switchboard(["--disk-free-limit", "0"], data_dir=str(mnt / "data"))
    holder["broker"] = b
    q = unique("full-q")
    c = raw_channel(b)
    declare_queue(c, q, durable=True)
    c.close()

    # 1. fill the disk: 32 KiB messages until the broker nacks
    pub = Publisher(b, q, size=32768, window=50)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and pub.error is None and len(pub.nacked) < 5:
        pub.run(max_seconds=0.2)
    pub.settle(10)
    pub.close()
    confirmed = pub.ids(pub.acked)
    filled = dict(published=pub.published, confirmed=len(confirmed), nacked=len(pub.nacked),
                  closed_by=pub.closed_by)
    assert b.alive(), f"broker died on a full disk:\n{b.log_tail()}"
    assert pub.closed_by is None, f"publisher closed instead of nacked: {pub.closed_by}"
    assert pub.nacked, f"no nack on a full disk: {filled}"
    assert not (pub.acked & pub.nacked)

    # 2. nothing confirmed is damaged: the live broker still has it all (not acked, so
    #    nothing needs to be written), and so has a broker restarted after kill -9
    got = read_queue(b, q, ack=False)
    check_recovered(pub.ids(range(1, pub.published + 1)), confirmed, got,
                    delivered={i for i, _ in got})
    kill9(b)
    took_full, _, _ = restart_after_crash(b)
    got = read_queue(b, q, ack=False)
    check_recovered(pub.ids(range(1, pub.published + 1)), confirmed, got,
                    delivered={i for i, _ in got})
    before_more = {i for i, _ in got}

    # 3. space returns (the tmpfs grows): publishing works again, without a restart
    r = subprocess.run(["mount", "-o", "remount,size=32m", str(mnt)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    pub2 = Publisher(b, q, size=32768, window=50, limit=40, start=10**6)
    pub2.run(max_seconds=15)
    pub2.close()
    assert pub2.error is None, pub2.error
    assert len(pub2.acked) == 40 and not pub2.nacked, \
        (f"after space returned: {pub2.published} published, acked={len(pub2.acked)} "
         f"nacked={len(pub2.nacked)} in 15 s; broker alive={b.alive()}; log tail:\n"
         f"{b.log_tail(30)}")

    # 4. everything confirmed in both phases is there after another kill -9
    kill9(b)
    took, rec_line, _ = restart_after_crash(b)
    got = read_queue(b, q, ack=True)
    rec = {i for i, _ in got}
    lost = sorted((confirmed | pub2.ids(pub2.acked)) - rec)
    # 5. the queue is empty now: dead segments are deleted
    time.sleep(0.5)
    seg_bytes = sum(p.stat().st_size for p in (mnt / "data").glob("*.seg"))
    summary("f disk full", published=pub.published + pub2.published,
            confirmed=len(confirmed) + len(pub2.acked), nacked=len(pub.nacked),
            recovered=len(rec), lost=len(lost), restart_full_s=f"{took_full:.2f}",
            seg_bytes_after_drain=seg_bytes)
    assert not lost, f"confirmed messages lost: {lost[:20]}"
    assert before_more <= rec
    assert seg_bytes < 1 << 20, f"{seg_bytes} bytes of segments left for an empty queue"


def test_disk_alarm_blocks_publishers_and_lifts_when_space_returns(small_disk):
    """The default disk.free_limit_bytes (50 MB) is above the 4 MiB tmpfs: publishers are
    blocked (nothing confirmed, nothing nacked) until the file system grows past it."""
    mnt, holder = small_disk
    b = brokers.start_switchboard(["--memory-check-ms", "100"], data_dir=str(mnt / "data"))
    holder["broker"] = b
    q = unique("alarm-q")
    c = raw_channel(b)
    declare_queue(c, q, durable=True)
    c.close()
    time.sleep(0.3)  # the alarm is checked every 100 ms (--memory-check-ms)
    pub = Publisher(b, q, size=1024, window=50, limit=20)
    pub.run(max_seconds=1.5)
    blocked = dict(published=pub.published, acked=len(pub.acked), nacked=len(pub.nacked))
    r = subprocess.run(["mount", "-o", "remount,size=128m", str(mnt)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    pub.run(max_seconds=10)
    lifted_s = time.monotonic() - t0
    pub.close()
    kill9(b)
    restart_after_crash(b)
    got = read_queue(b, q)
    lost, _, rec = check_recovered(pub.ids(range(1, pub.published + 1)), pub.ids(pub.acked), got)
    summary("f disk alarm", blocked_phase=blocked, published=pub.published,
            confirmed=len(pub.acked), recovered=len(rec), lost=len(lost),
            unblocked_after_s=f"{lifted_s:.2f}")
    assert blocked["nacked"] == 0 and blocked["acked"] < 20, f"not blocked: {blocked}"
    assert len(pub.acked) == 20 and not pub.nacked, \
        f"after space returned: acked={len(pub.acked)} nacked={len(pub.nacked)}\n{b.log_tail()}"
