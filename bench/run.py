#!/usr/bin/python3
"""Side-by-side benchmark: Switchboard against RabbitMQ on this machine, same run.

Starts both brokers on free loopback ports, runs `build/switchboard bench --json` for each
workload against each broker (interleaved: workload by workload, broker by broker, three
rounds, median kept), measures each broker's CPU time per message, idle RSS, RSS holding a
backlog of 1,000,000 16-byte messages, and start-up time; writes bench/RESULTS.md and
prints it. Standard library only. See bench/README.md.

    /usr/bin/python3 bench/run.py [--quick] [--only switchboard|rabbitmq] [--rounds N]
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
RABBIT_BIN = pathlib.Path("/usr/lib/rabbitmq/bin")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BROKERS = ("switchboard", "rabbitmq")
SECTIONS = ("workloads", "http", "backlog", "ttl", "persistent", "recovery")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ AMQP handshake probe

def _frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def _method(cls, mid, args=b""):
    return _frame(1, 0, struct.pack(">HH", cls, mid) + args)


def _shortstr(s):
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the broker")
        buf += chunk
    return buf


def _read_method(sock, want):
    """Reads frames until a method frame arrives; returns its arguments if it is `want`."""
    while True:
        ftype, _, size = struct.unpack(">BHI", _read_exact(sock, 7))
        payload = _read_exact(sock, size + 1)[:-1]
        if ftype != 1:
            continue
        cls, mid = struct.unpack(">HH", payload[:4])
        if (cls, mid) != want:
            raise ConnectionError(f"expected method {want}, got {(cls, mid)}")
        return payload[4:]


def amqp_handshake(port, timeout=2.0):
    """A full connection handshake as guest/guest on vhost "/", then a clean close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        _read_method(s, (10, 10))                                  # connection.start
        resp = b"\x00guest\x00guest"
        s.sendall(_method(10, 11, struct.pack(">I", 0) + _shortstr("PLAIN")
                          + struct.pack(">I", len(resp)) + resp + _shortstr("en_US")))
        tune = _read_method(s, (10, 30))                           # connection.tune
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        s.sendall(_method(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        s.sendall(_method(10, 40, _shortstr("/") + _shortstr("") + b"\x00"))
        _read_method(s, (10, 41))                                  # connection.open-ok
        s.sendall(_method(10, 50, struct.pack(">H", 200) + _shortstr("bye")
                          + struct.pack(">HH", 0, 0)))
        _read_method(s, (10, 51))                                  # connection.close-ok


def amqp_purge(port, queue, timeout=60.0):
    """Empties queue (queue.purge on channel 1) so that a publish-only workload leaves no
    backlog behind to distort later measurements."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        _read_method(s, (10, 10))
        resp = b"\x00guest\x00guest"
        s.sendall(_method(10, 11, struct.pack(">I", 0) + _shortstr("PLAIN")
                          + struct.pack(">I", len(resp)) + resp + _shortstr("en_US")))
        tune = _read_method(s, (10, 30))
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        s.sendall(_method(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        s.sendall(_method(10, 40, _shortstr("/") + _shortstr("") + b"\x00"))
        _read_method(s, (10, 41))
        s.sendall(_frame(1, 1, struct.pack(">HH", 20, 10) + _shortstr("")))   # channel.open
        _read_method(s, (20, 11))
        s.sendall(_frame(1, 1, struct.pack(">HHH", 50, 30, 0) + _shortstr(queue) + b"\x00"))
        _read_method(s, (50, 31))                                  # queue.purge-ok
        s.sendall(_method(10, 50, struct.pack(">H", 200) + _shortstr("bye")
                          + struct.pack(">HH", 0, 0)))
        _read_method(s, (10, 51))


def amqp_queue_count(port, queue, timeout=5.0):
    """message_count from a passive queue.declare (raises if the queue is missing or the
    broker does not answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        _read_method(s, (10, 10))
        resp = b"\x00guest\x00guest"
        s.sendall(_method(10, 11, struct.pack(">I", 0) + _shortstr("PLAIN")
                          + struct.pack(">I", len(resp)) + resp + _shortstr("en_US")))
        tune = _read_method(s, (10, 30))
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        s.sendall(_method(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        s.sendall(_method(10, 40, _shortstr("/") + _shortstr("") + b"\x00"))
        _read_method(s, (10, 41))
        s.sendall(_frame(1, 1, struct.pack(">HH", 20, 10) + _shortstr("")))
        _read_method(s, (20, 11))
        s.sendall(_frame(1, 1, struct.pack(">HHH", 50, 10, 0) + _shortstr(queue) + b"\x01"
                         + struct.pack(">I", 0)))                 # passive declare
        ok = _read_method(s, (50, 11))
        n = ok[0]
        count, _consumers = struct.unpack(">II", ok[1 + n:9 + n])
        s.sendall(_method(10, 50, struct.pack(">H", 200) + _shortstr("bye")
                          + struct.pack(">HH", 0, 0)))
        return count


# ------------------------------------------------------------------ process measurements

def io_write_bytes(pid):
    """Bytes the process (all its threads) caused to be written to storage."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cpu_seconds(pid):
    """utime + stime of pid, in seconds (None if it is gone)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat.rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def rss_mib(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def free_port_pair(offset):
    """A free loopback port p with p+offset free too (RabbitMQ's distribution port)."""
    for _ in range(200):
        p = random.randint(20000, 65535 - offset - 1)
        ok = True
        for q in (p, p + offset) if offset else (p,):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", q))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise RuntimeError("no free port")


# ------------------------------------------------------------------ brokers

class Broker:
    """One broker process: start() measures start-up time; stop() always ends it."""

    name = "?"

    def __init__(self, build):
        self.build = build
        self.scratch = tempfile.mkdtemp(prefix=f"sb-bench-{self.name}-")
        self.proc = None
        self.port = None
        self.pid = None          # the process whose CPU and RSS we measure
        self.startup_s = None

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _spawn(self):
        raise NotImplementedError

    def _measured_pid(self):
        return self.proc.pid

    def start(self, timeout):
        t0 = time.monotonic()
        self._spawn()
        deadline = t0 + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                amqp_handshake(self.port)
                self.startup_s = time.monotonic() - t0
                self.pid = self._measured_pid()
                if self.pid is None:
                    raise RuntimeError(f"cannot find the {self.name} broker process")
                return
            except (OSError, ConnectionError, struct.error) as e:
                last = e
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not complete an AMQP handshake within "
                           f"{timeout} s ({last!r}): {self.log_tail()}")

    def log_tail(self, n=15):
        try:
            lines = pathlib.Path(self.scratch, "server.log").read_text(errors="replace")
            return "\n".join(lines.splitlines()[-n:])
        except OSError:
            return "(no log)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill_group(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self):
        self._kill_group()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def halt(self, how, timeout=180):
        """Ends the broker without removing its data: "kill9", or "term" (SIGTERM to the
        measured process, waiting up to timeout s for a clean shutdown, then SIGKILL).
        Returns the seconds the shutdown took."""
        t0 = time.monotonic()
        pid = self.pid
        try:
            os.kill(pid, signal.SIGKILL if how == "kill9" else signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = t0 + timeout
        while time.monotonic() < deadline and cpu_seconds(pid) is not None:
            try:                       # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        took = time.monotonic() - t0
        self._kill_group()             # anything left of the session
        return took

    def restart_until_full(self, queue, n, timeout):
        """Starts the broker again on its data; returns (s to AMQP handshake, s until a
        passive declare of queue reports n messages), both from the spawn."""
        t0 = time.monotonic()
        self._spawn()
        deadline = t0 + timeout
        t_open = None
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} on "
                                   f"restart: {self.log_tail()}")
            try:
                if t_open is None:
                    amqp_handshake(self.port)
                    t_open = time.monotonic() - t0
                last = amqp_queue_count(self.port, queue)
                if last == n:
                    t_full = time.monotonic() - t0
                    self.pid = self._measured_pid()
                    return t_open, t_full
            except (OSError, ConnectionError, struct.error) as e:
                last = e
            time.sleep(0.02)
        self.pid = self._measured_pid()
        raise RuntimeError(f"{self.name}: queue {queue} not back with {n} messages within "
                           f"{timeout} s after restart (last: {last!r})")


class Switchboard(Broker):
    name = "switchboard"

    http = None

    def _spawn(self):
        if self.port is None:          # a restart keeps its ports and data
            self.port = free_port_pair(0)
            self.http = free_port_pair(0)
        exe = self.build / "switchboard"
        argv = [str(exe), "serve", "--amqp-port", str(self.port), "--http-port", str(self.http),
                "--data-dir", os.path.join(self.scratch, "data"), "--bind", "127.0.0.1"]
        with open(os.path.join(self.scratch, "server.log"), "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        super().stop()


class RabbitMQ(Broker):
    name = "rabbitmq"

    def _env(self):
        d = self.scratch
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update({
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "HOME": os.path.join(d, "home"),
        })
        return env

    def _spawn(self):
        d = self.scratch
        if self.port is not None:      # a restart: same node, ports and directories
            with open(os.path.join(d, "server.log"), "ab") as logf:
                self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")],
                                             env=self.env, stdout=logf,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, cwd=d)
            return
        self.port = free_port_pair(20000)
        self.node = f"sbbench{os.getpid()}x{random.randint(0, 99999)}@localhost"
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        pathlib.Path(d, "enabled_plugins").write_text("[].\n")
        pathlib.Path(d, "rabbitmq-env.conf").write_text("")
        pathlib.Path(d, "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        self.env = self._env()
        with open(os.path.join(d, "server.log"), "wb") as logf:
            self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=d)

    def _measured_pid(self):
        """The beam.smp of our own session (the server script execs into it)."""
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            rest = stat.rsplit(")", 1)[1].split()
            if comm == "beam.smp" and int(rest[2]) == self.proc.pid:   # pgrp
                return int(entry.name)
        return None

    def stop(self):
        if self.proc is not None and self.alive():
            try:
                subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, "shutdown"],
                               env=self.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
            except (subprocess.TimeoutExpired, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.pid is not None and cpu_seconds(self.pid) is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        super().stop()


# ------------------------------------------------------------------ workloads

PERSISTENT_QUEUE = "sb-bench-persistent"
PURGE_AFTER = {"1 KiB persistent confirms, durable queue, publish only": PERSISTENT_QUEUE}


LATENCY = "latency 16 B"
REJECT_PLAIN = "reject → dead-letter, 16 B (1 delivery each)"
REJECT_RETRY = "reject → retry [0,0] → dead-letter, 16 B (3 deliveries each)"
ONLY = {REJECT_RETRY: "switchboard"}      # workloads that exist on one broker only
PERSISTENT_WORKLOADS = ("1 KiB persistent confirms",
                        "1 KiB persistent confirms, durable queue, publish only")


BATCH = 512
BATCHED_16 = f"16 B transient, {BATCH} publishes per write"
BATCHED_1K = f"1 KiB transient, {BATCH} publishes per write"


def workloads(quick):
    n = 20000 if quick else 200000
    big = 2000 if quick else 20000
    lat = 2000 if quick else 20000
    rej = 10000 if quick else 100000
    return [
        ("16 B transient", ["--size", "16", "--count", str(n)], n),
        # The same, with a producer that coalesces its publishes into TCP writes of
        # BATCH (TCP_CORK), as pipelining clients do. librabbitmq on its own sends one
        # TCP segment per publish (three sendto calls), and on loopback every segment
        # runs the receiver's TCP input and wakes it: both brokers then pay a wake-up
        # per few messages, which is most of what "16 B transient" measures.
        (BATCHED_16, ["--size", "16", "--count", str(n), "--batch", str(BATCH)], n),
        ("1 KiB transient", ["--size", "1024", "--count", str(n)], n),
        (BATCHED_1K, ["--size", "1024", "--count", str(n), "--batch", str(BATCH)], n),
        ("64 KiB transient", ["--size", "65536", "--count", str(big)], big),
        ("1 KiB confirms", ["--size", "1024", "--count", str(n), "--confirm"], n),
        # delivery_mode 2, confirms (window 1000). NB: with a consumer, `switchboard bench`
        # declares its queue exclusive, and Switchboard keeps only durable non-exclusive
        # queues on disk, so on Switchboard this one does not touch the disk ...
        ("1 KiB persistent confirms", ["--size", "1024", "--count", str(n), "--confirm",
                                       "--persistent"], n),
        # ... while this one does: publish only, into a named durable queue (purged after
        # each run, see PURGE_AFTER); confirms are released after fsync.
        ("1 KiB persistent confirms, durable queue, publish only",
         ["--size", "1024", "--count", str(n), "--persistent", "--no-consume", "--queue",
          PERSISTENT_QUEUE], n),
        ("fanout 4 × 16 B", ["--size", "16", "--count", str(n), "--fanout", "4"], n),
        (LATENCY, ["--latency", "--size", "16", "--count", str(lat)], lat),
        # issue 5: a consumer rejects (requeue=false) everything; the work queue has a
        # dead-letter exchange; rate = messages arriving in the dead-letter queue per second
        (REJECT_PLAIN, ["--reject-cycle", "--size", "16", "--count", str(rej)], rej),
        (REJECT_RETRY, ["--reject-cycle", "--retry-delays", "0,0", "--size", "16", "--count",
                        str(rej)], rej),
    ]


def run_bench(build, broker, args, timeout):
    """One `switchboard bench --json` run; returns its JSON plus the broker's CPU seconds."""
    argv = [str(build / "switchboard"), "bench", "--url", broker.url, "--json", *args]
    cpu0 = cpu_seconds(broker.pid)
    io0 = io_write_bytes(broker.pid)
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout} s: {' '.join(argv)}")
    cpu1 = cpu_seconds(broker.pid)
    io1 = io_write_bytes(broker.pid)
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    res["cpu_s"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    res["io_write_bytes"] = None if io0 is None or io1 is None else io1 - io0
    return res


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs, count):
    """Median of each metric over the rounds of one workload on one broker."""
    if not runs:
        return {}
    out = {}
    for key in ("msgs_per_s", "deliveries_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us",
                "round_trips_per_s"):
        out[key] = median([r.get(key) for r in runs])
    cpu = median([r["cpu_s"] for r in runs])
    out["cpu_us_per_msg"] = None if cpu is None else cpu * 1e6 / count
    io = median([r.get("io_write_bytes") for r in runs])
    out["disk_bytes_per_msg"] = None if io is None else io / count
    out["deliveries_per_msg"] = median([r.get("deliveries_per_msg") for r in runs])
    out["server"] = runs[0].get("server")
    return out


# ------------------------------------------------------------------ the run

class Run:
    def __init__(self, opts):
        self.opts = opts
        self.src_build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build")).resolve()
        self.build = self.src_build     # replaced by a private copy in snapshot_binary()
        self.bin_dir = None
        self.names = [opts.only] if opts.only else list(BROKERS)
        self.brokers = {}
        self.errors = []
        self.raw = {n: {} for n in self.names}     # broker -> workload -> [json]
        self.res = {n: {} for n in self.names}     # broker -> metric -> value
        self.notes = []
        self.floor_dir = None
        self.floor = []
        self.http = None

    def error(self, broker, what, e):
        msg = f"{broker}: {what}: {e}"
        log(msg)
        self.errors.append(msg)

    def snapshot_binary(self):
        """Copies build/switchboard to a scratch directory and uses the copy as broker and
        client for the whole run, so a rebuild in the checkout mid-run changes nothing."""
        self.bin_dir = tempfile.mkdtemp(prefix="sb-bench-bin-")
        shutil.copy2(self.src_build / "switchboard", os.path.join(self.bin_dir, "switchboard"))
        self.build = pathlib.Path(self.bin_dir)

    def fresh_brokers(self):
        """Stops the brokers and starts new ones (empty, own scratch directories), so that
        memory measurements do not see what earlier steps left in the allocator."""
        self.stop_brokers()
        self.start_brokers(record=False)

    def start_brokers(self, record=True):
        for name in self.names:
            b = Switchboard(self.build) if name == "switchboard" else RabbitMQ(self.build)
            self.brokers[name] = b
            log(f"starting {name}")
            try:
                b.start(timeout=20 if name == "switchboard" else 90)
            except Exception as e:  # noqa: BLE001 - reported in RESULTS.md
                self.error(name, "start", e)
                b.stop()
                del self.brokers[name]
                continue
            if record:
                self.res[name]["startup_ms"] = b.startup_s * 1000
            log(f"{name} up in {b.startup_s:.2f} s on port {b.port} (pid {b.pid})")

    def measure_idle(self):
        time.sleep(3)  # let start-up work settle
        for name, b in self.brokers.items():
            self.res[name]["idle_rss_mib"] = rss_mib(b.pid)

    def run_workloads(self):
        wl = [w for w in workloads(self.opts.quick)
              if not self.opts.workloads or w[0] in self.opts.workloads]
        timeout = 300 if self.opts.quick else 900
        for rnd in range(self.opts.rounds):
            for title, args, count in wl:
                if title == LATENCY:
                    self.run_floor(count, rnd)
                for name, b in list(self.brokers.items()):
                    if not b.alive() or ONLY.get(title, name) != name:
                        continue
                    log(f"round {rnd + 1}/{self.opts.rounds}: {title} on {name}")
                    try:
                        r = run_bench(self.build, b, args, timeout)
                        self.raw[name].setdefault(title, []).append(r)
                        if title in PURGE_AFTER:
                            amqp_purge(b.port, PURGE_AFTER[title])
                    except Exception as e:  # noqa: BLE001
                        self.error(name, title, e)
        for name in self.names:
            for title, _, count in wl:
                self.res[name][title] = summarize(self.raw[name].get(title, []), count)

    def measure_backlog(self):
        n = 100000 if self.opts.quick else 1000000
        self.backlog_n = n
        for name, b in list(self.brokers.items()):
            if not b.alive():
                continue
            log(f"backlog of {n} x 16 B on {name}")
            try:
                before = rss_mib(b.pid)
                run_bench(self.build, b, ["--no-consume", "--size", "16", "--count", str(n)],
                          900)
                time.sleep(3)
                after = rss_mib(b.pid)
                self.res[name]["backlog_rss_mib"] = after
                if before is not None and after is not None:
                    self.res[name]["backlog_bytes_per_msg"] = (after - before) * 1048576 / n
                amqp_purge(b.port, "sb-bench-backlog")
            except Exception as e:  # noqa: BLE001
                self.error(name, "backlog", e)

    # ---- issue 4: the latency floor, and HTTP calls with wrk

    def build_floor(self):
        """Compiles bench/{echo,relay,caller}.c into a scratch directory."""
        self.floor_dir = tempfile.mkdtemp(prefix="sb-bench-floor-")
        self.floor = []
        for prog in ("echo", "relay", "caller"):
            r = subprocess.run(["cc", "-O2", "-o", os.path.join(self.floor_dir, prog),
                                str(REPO / "bench" / f"{prog}.c")], capture_output=True,
                               timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"cc {prog}.c: {r.stderr.decode(errors='replace')}")

    def run_floor(self, count, rnd):
        """One run of the TCP relay floor: caller -> relay -> echo and back, count times."""
        if getattr(self, "floor_dir", None) is None:
            return
        log(f"round {rnd + 1}/{self.opts.rounds}: latency floor (TCP relay)")
        procs = []
        try:
            def spawn(*argv):
                p = subprocess.Popen([os.path.join(self.floor_dir, argv[0]), *argv[1:]],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
                procs.append(p)
                return p
            echo = spawn("echo")
            echo_port = echo.stdout.readline().decode().strip()
            relay = spawn("relay", echo_port)
            relay_port = relay.stdout.readline().decode().strip()
            r = subprocess.run([os.path.join(self.floor_dir, "caller"), relay_port, str(count)],
                               capture_output=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError(f"caller exit {r.returncode}: {r.stderr.decode().strip()}")
            self.floor.append(json.loads(r.stdout.decode().strip().splitlines()[-1]))
        except Exception as e:  # noqa: BLE001
            self.error("floor", "TCP relay latency", e)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass

    def ensure_wrk(self):
        if shutil.which("wrk"):
            return True
        if os.geteuid() != 0:
            self.notes.append("HTTP calls: wrk is not installed and we are not root: skipped "
                              "(`apt-get install wrk`)")
            return False
        log("installing wrk (apt-get)")
        try:
            subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True,
                           timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired) as e:
            self.notes.append(f"HTTP calls: installing wrk failed ({e}): skipped")
            return False
        if not shutil.which("wrk"):
            self.notes.append("HTTP calls: `apt-get install wrk` did not install it: skipped")
            return False
        return True

    def measure_http(self):
        """wrk, 32 connections, POST /api/rpc/%2F/QUEUE with a `switchboard bench --respond`
        responder: Switchboard only (RabbitMQ has no HTTP call bridge)."""
        b = self.brokers.get("switchboard")
        if b is None or not b.alive() or not self.ensure_wrk():
            return
        queue = "sb-bench-rpc"
        secs = 3 if self.opts.quick else 10
        lua = os.path.join(b.scratch, "rpc.lua")
        pathlib.Path(lua).write_text(
            'wrk.method = "POST"\n'
            'wrk.body = "0123456789abcdef"\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            'wrk.headers["Authorization"] = "Basic Z3Vlc3Q6Z3Vlc3Q="\n')   # guest:guest
        url = f"http://127.0.0.1:{b.http}/api/rpc/%2F/{queue}"
        resp = subprocess.Popen([str(self.build / "switchboard"), "bench", "--url", b.url,
                                 "--respond", queue], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            if resp.stdout.readline().decode().strip() != "ready":
                raise RuntimeError(f"responder: {resp.stderr.read().decode(errors='replace')}")
            log(f"HTTP calls: wrk -c32 for {secs} s on switchboard")
            subprocess.run(["wrk", "-t2", "-c32", "-d1s", "-s", lua, url], capture_output=True,
                           timeout=60)                                  # warm-up
            cpu0 = cpu_seconds(b.pid)
            r = subprocess.run(["wrk", "-t2", "-c32", f"-d{secs}s", "--latency", "-s", lua, url],
                               capture_output=True, timeout=secs + 60)
            cpu1 = cpu_seconds(b.pid)
            out = r.stdout.decode(errors="replace")
            if r.returncode != 0 or "Requests/sec:" not in out:
                raise RuntimeError(f"wrk exit {r.returncode}: {out} {r.stderr.decode()}")
            h = {"raw": out}
            for line in out.splitlines():
                f = line.split()
                if line.startswith("Requests/sec:"):
                    h["rps"] = float(f[1])
                elif line.strip().startswith("50%"):
                    h["p50_ms"] = _ms(f[1])
                elif line.strip().startswith("99%"):
                    h["p99_ms"] = _ms(f[1])
                elif "requests in" in line:
                    h["requests"] = int(f[0])
                elif line.strip().startswith("Non-2xx"):
                    h["non2xx"] = int(f[-1])
            if h.get("requests") and cpu0 is not None and cpu1 is not None:
                h["cpu_us_per_call"] = (cpu1 - cpu0) * 1e6 / h["requests"]
            self.http = h
        except Exception as e:  # noqa: BLE001
            self.error("switchboard", "HTTP calls (wrk)", e)
        finally:
            resp.terminate()
            try:
                resp.wait(10)
            except subprocess.TimeoutExpired:
                resp.kill()

    # ---- issue 3: RSS with persistent messages queued, recovery time

    def fill(self, b, queue, n, size, extra=(), timeout=1800):
        return run_bench(self.build, b, ["--no-consume", "--persistent", "--size", str(size),
                                         "--count", str(n), "--queue", queue, *extra], timeout)

    def measure_persistent_rss(self):
        n = 100000 if self.opts.quick else 1000000
        if self.opts.big:
            free = shutil.disk_usage(tempfile.gettempdir()).free
            if free < 30 * 2**30:
                self.notes.append(f"--big: only {free / 2**30:.0f} GiB free in "
                                  f"{tempfile.gettempdir()} (< 30 GiB): ran at 1 million")
            else:
                n = 10000000
        self.persist_n = n
        for name, b in list(self.brokers.items()):
            if not b.alive():
                continue
            log(f"{n:,} x 1 KiB persistent into a durable queue on {name}")
            try:
                before = rss_mib(b.pid)
                r = self.fill(b, "sb-bench-persist-rss", n, 1024, timeout=7200)
                time.sleep(3)
                after = rss_mib(b.pid)
                self.res[name]["persist_rss_mib"] = after
                self.res[name]["persist_publish_rate"] = r.get("msgs_per_s")
                if r.get("io_write_bytes") is not None:
                    self.res[name]["persist_disk_bytes_per_msg"] = r["io_write_bytes"] / n
                if before is not None and after is not None:
                    self.res[name]["persist_bytes_per_msg"] = (after - before) * 1048576 / n
                amqp_purge(b.port, "sb-bench-persist-rss", timeout=600)
            except Exception as e:  # noqa: BLE001
                self.error(name, "persistent RSS", e)

    def measure_recovery(self):
        """Fills a durable queue with n small persistent messages, stops the broker and times
        its restart until a passive declare reports all n. Switchboard: kill -9 first, then
        SIGTERM; RabbitMQ: SIGTERM. Both brokers end up stopped by stop_brokers()."""
        n = 100000 if self.opts.quick else 1000000
        self.recovery_n = n
        queue = "sb-bench-recovery"
        for name, b in list(self.brokers.items()):
            if not b.alive():
                continue
            try:
                log(f"recovery: filling {queue} with {n:,} x 16 B persistent on {name}")
                self.fill(b, queue, n, 16)
                hows = ("kill9", "term") if name == "switchboard" else ("term",)
                for how in hows:
                    took = b.halt(how)
                    log(f"recovery: {name} stopped ({how}, {took:.1f} s); restarting")
                    self.res[name][f"stop_{how}_s"] = took
                    t_open, t_full = b.restart_until_full(queue, n, 600)
                    log(f"recovery: {name} after {how}: AMQP in {t_open:.2f} s, "
                        f"{n:,} messages in {t_full:.2f} s")
                    self.res[name][f"recovery_{how}_open_s"] = t_open
                    self.res[name][f"recovery_{how}_full_s"] = t_full
            except Exception as e:  # noqa: BLE001
                self.error(name, "recovery", e)

    # ---- issue 5: one million distinct per-message TTLs

    def measure_ttl(self):
        n = 100000 if self.opts.quick else 1000000
        self.ttl_n = n
        for name, b in list(self.brokers.items()):
            if not b.alive():
                continue
            try:
                log(f"TTL: {n:,} x 16 B with distinct expirations (60 s + i ms) on {name}")
                before = rss_mib(b.pid)
                r = run_bench(self.build, b, ["--no-consume", "--size", "16", "--count", str(n),
                                              "--queue", "sb-bench-ttl", "--expiration",
                                              "60000", "--expiration-spread", str(n)], 900)
                time.sleep(3)
                after = rss_mib(b.pid)
                self.res[name]["ttl_publish_rate"] = r.get("msgs_per_s")
                self.res[name]["ttl_rss_mib"] = after
                if before is not None and after is not None:
                    self.res[name]["ttl_bytes_per_msg"] = (after - before) * 1048576 / n
                amqp_purge(b.port, "sb-bench-ttl", timeout=600)
                # short variant: expirations 3.000 … 3.999 s (i mod 1000 ms), time until empty
                log(f"TTL: {n:,} x 16 B with expirations 3–4 s on {name}; until expired")
                r = run_bench(self.build, b, ["--no-consume", "--size", "16", "--count", str(n),
                                              "--queue", "sb-bench-ttl-short", "--expiration",
                                              "3000", "--expiration-spread", "1000"], 900)
                t0 = time.monotonic()
                self.res[name]["ttl_short_publish_rate"] = r.get("msgs_per_s")
                left = None
                while time.monotonic() - t0 < 300:
                    left = amqp_queue_count(b.port, "sb-bench-ttl-short", timeout=30)
                    if left == 0:
                        break
                    time.sleep(0.05)
                if left != 0:
                    raise RuntimeError(f"{left} messages not expired after 300 s")
                self.res[name]["ttl_drain_s"] = time.monotonic() - t0
                # the last message published has TTL 3000 + (n-1) mod 1000 ms
                self.res[name]["ttl_lag_s"] = (self.res[name]["ttl_drain_s"]
                                               - (3000 + (n - 1) % 1000) / 1000)
                self.res[name]["ttl_short_publish_s"] = r.get("publish_s")
            except Exception as e:  # noqa: BLE001
                self.error(name, "distinct TTLs", e)

    def stop_brokers(self):
        for name, b in list(self.brokers.items()):
            log(f"stopping {name}")
            try:
                b.stop()
            except Exception as e:  # noqa: BLE001
                self.error(name, "stop", e)
        self.brokers.clear()


# ------------------------------------------------------------------ report

def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "µs" and v < 100:
        return f"{v:.1f}"
    if unit in ("msgs/s", "µs", "B"):
        return f"{v:,.0f}"
    if unit in ("MiB", "ms"):
        return f"{v:,.1f}"
    return f"{v:,.2f}"


def rows(run):
    """(label, unit, higher_is_better, getter) for every line of the table."""
    out = []
    for title, _, _ in workloads(run.opts.quick):
        def get(n, t=title, k=None):
            return run.res[n].get(t, {}).get(k)
        if title in (REJECT_PLAIN, REJECT_RETRY):
            out.append((f"{title}: msgs dead-lettered/s", "msgs/s", True,
                        lambda n, t=title: get(n, t, "msgs_per_s")))
            out.append((f"{title}: deliveries per message", "x", False,
                        lambda n, t=title: get(n, t, "deliveries_per_msg")))
        elif title.startswith("latency"):
            for k, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
                out.append((f"{title}: {label}", "µs", False, lambda n, t=title, k=k: get(n, t, k)))
        else:
            key = "deliveries_per_s" if "fanout" in title else "msgs_per_s"
            label = "deliveries/s" if "fanout" in title else "msgs/s"
            out.append((f"{title}: {label}", "msgs/s", True, lambda n, t=title, k=key: get(n, t, k)))
            if "64 KiB" in title or "1 KiB transient" in title:
                out.append((f"{title}: MB/s", "MB/s", True,
                            lambda n, t=title: get(n, t, "mb_per_s")))
        if title in PERSISTENT_WORKLOADS:
            out.append((f"{title}: broker disk writes per message", "B", None,
                        lambda n, t=title: get(n, t, "disk_bytes_per_msg")))
        out.append((f"{title}: broker CPU per message", "µs", False,
                    lambda n, t=title: get(n, t, "cpu_us_per_msg")))
    out.append(("idle RSS", "MiB", False, lambda n: run.res[n].get("idle_rss_mib")))
    out.append((f"RSS holding {getattr(run, 'backlog_n', 0):,} × 16 B", "MiB", False,
                lambda n: run.res[n].get("backlog_rss_mib")))
    out.append(("RSS growth per queued message", "B", False,
                lambda n: run.res[n].get("backlog_bytes_per_msg")))
    out.append(("start-up (spawn → AMQP handshake)", "ms", False,
                lambda n: run.res[n].get("startup_ms")))
    g = lambda k: (lambda n: run.res[n].get(k))  # noqa: E731
    pn = getattr(run, "persist_n", None)
    if pn:
        out += [(f"{pn:,} × 1 KiB persistent, durable queue: publish (confirms)", "msgs/s", True,
                 g("persist_publish_rate")),
                (f"{pn:,} × 1 KiB persistent: RSS while queued", "MiB", False,
                 g("persist_rss_mib")),
                (f"{pn:,} × 1 KiB persistent: RSS growth per queued message", "B", False,
                 g("persist_bytes_per_msg")),
                (f"{pn:,} × 1 KiB persistent: broker disk writes per message", "B", None,
                 g("persist_disk_bytes_per_msg"))]
    rn = getattr(run, "recovery_n", None)
    if rn:
        out += [(f"recovery, {rn:,} × 16 B persistent, after SIGTERM: spawn → AMQP", "s", False,
                 g("recovery_term_open_s")),
                (f"recovery, {rn:,} × 16 B persistent, after SIGTERM: spawn → queue full",
                 "s", False, g("recovery_term_full_s")),
                (f"recovery, {rn:,} × 16 B persistent, after kill -9: spawn → queue full "
                 "(Switchboard only)", "s", False, g("recovery_kill9_full_s")),
                ("clean shutdown (SIGTERM → exit) with that queue", "s", False,
                 g("stop_term_s"))]
    tn = getattr(run, "ttl_n", None)
    if tn:
        out += [(f"{tn:,} × 16 B, distinct TTLs (60 s + i ms): publish (confirms)", "msgs/s", True,
                 g("ttl_publish_rate")),
                (f"{tn:,} distinct TTLs: RSS while queued", "MiB", False, g("ttl_rss_mib")),
                (f"{tn:,} distinct TTLs: RSS growth per queued message", "B", False,
                 g("ttl_bytes_per_msg")),
                (f"{tn:,} × 16 B, TTLs 3–4 s (i mod 1000 ms): publish (confirms)", "msgs/s",
                 True, g("ttl_short_publish_rate")),
                (f"{tn:,} × 16 B, TTLs 3–4 s: last confirm → queue empty", "s", False,
                 g("ttl_drain_s")),
                (f"{tn:,} × 16 B, TTLs 3–4 s: queue empty − last message's deadline", "s",
                 False, g("ttl_lag_s"))]
    return out


def _ms(text):
    """wrk's "1.04ms" / "850.00us" / "1.20s" in milliseconds."""
    for suffix, mult in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * mult
    return float(text)


def _ratio(a, b):
    return a / b if a is not None and b else None


def extra_sections(run):
    """The latency floor, HTTP calls, and every target of issues 2–5, met or not."""
    res = run.res
    sb, rq = res.get("switchboard", {}), res.get("rabbitmq", {})
    lines = []
    fl = {k: median([f.get(k) for f in run.floor]) for k in ("p50_us", "p99_us", "p999_us")}
    lat_sb, lat_rq = sb.get(LATENCY, {}), rq.get(LATENCY, {})
    lines += ["", "## Calls: latency against the floor (issue 4)", "",
              f"{len(run.floor)} interleaved runs of the floor: a three-process TCP relay "
              "(bench/caller.c → bench/relay.c → bench/echo.c and back: the four loopback hops "
              "of a brokered call), 16 B, same count as the latency workload; medians.", "",
              "| | p50 µs | p99 µs | p99.9 µs | p50 ÷ floor | p50 ÷ RabbitMQ |",
              "| --- | --- | --- | --- | --- | --- |"]
    for label, d in (("TCP relay floor", fl), ("Switchboard (direct reply-to)", lat_sb),
                     ("RabbitMQ (direct reply-to)", lat_rq)):
        r1, r2 = _ratio(d.get("p50_us"), fl["p50_us"]), _ratio(d.get("p50_us"),
                                                                 lat_rq.get("p50_us"))
        lines.append(f"| {label} | {fmt(d.get('p50_us'), 'µs')} | {fmt(d.get('p99_us'), 'µs')}"
                     f" | {fmt(d.get('p999_us'), 'µs')} | {fmt(r1, 'x')} | {fmt(r2, 'x')} |")
    h = run.http
    lines += ["", "## HTTP calls with wrk (issue 4, Switchboard only)", ""]
    if h:
        lines += ["`wrk -t2 -c32 --latency` against `POST /api/rpc/%2F/sb-bench-rpc` (16 B body, "
                  "Basic auth), answered by `switchboard bench --respond sb-bench-rpc` over "
                  "direct reply-to; RabbitMQ has no HTTP call bridge, so there is no column "
                  "for it.", "",
                  "| calls/s | p50 ms | p99 ms | requests | non-2xx | broker CPU µs per call |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {fmt(h.get('rps'), 'msgs/s')} | {fmt(h.get('p50_ms'), 'x')} | "
                  f"{fmt(h.get('p99_ms'), 'x')} | {h.get('requests', 'n/a')} | "
                  f"{h.get('non2xx', 0)} | {fmt(h.get('cpu_us_per_call'), 'µs')} |"]
    else:
        lines.append("not measured in this run (see the notes or errors below).")

    def tgt(label, value, ok):
        state = "n/a" if ok is None else ("**met**" if ok else "**not met**")
        return f"| {label} | {value} | {state} |"

    def thr(title):
        return (sb.get(title, {}).get("msgs_per_s"), rq.get(title, {}).get("msgs_per_s"))

    def r_of(pair):
        return _ratio(*pair)

    def cmp(v, limit, le=True):
        return None if v is None else (v <= limit if le else v >= limit)

    lines += ["", "## Targets", "", "| target | this run | |", "| --- | --- | --- |"]
    for title, how in ((BATCHED_16, f"producer batching {BATCH} publishes per write"),
                       ("16 B transient", "librabbitmq's one TCP segment per publish")):
        r16 = r_of(thr(title))
        lines.append(tgt(f"issue 2: 16 B throughput ≥ 4× RabbitMQ ({how})",
                         fmt(r16, "x") + "×", cmp(r16, 4, le=False)))
        cpu = _ratio(sb.get(title, {}).get("cpu_us_per_msg"),
                     rq.get(title, {}).get("cpu_us_per_msg"))
        lines.append(tgt(f"issue 2: broker CPU per 16 B message ≤ 1/10 of RabbitMQ's ({how})",
                         fmt(cpu, "x") + "×", cmp(cpu, 0.1)))
    lines.append(tgt("issue 2: idle RSS < 10 MiB", fmt(sb.get("idle_rss_mib"), "MiB") + " MiB",
                     cmp(sb.get("idle_rss_mib"), 10)))
    bl = _ratio(sb.get("backlog_rss_mib"), rq.get("backlog_rss_mib"))
    lines.append(tgt("issue 2: RSS with 1M × 16 B queued < 1/10 of RabbitMQ's",
                     fmt(bl, "x") + "×", None if bl is None else bl < 0.1))
    lines.append(tgt("issue 2: start-up < 100 ms", fmt(sb.get("startup_ms"), "ms") + " ms",
                     cmp(sb.get("startup_ms"), 100)))
    for title in PERSISTENT_WORKLOADS:
        rr = r_of(thr(title))
        lines.append(tgt(f"issue 3: {title} ≥ 3× RabbitMQ", fmt(rr, "x") + "×",
                         cmp(rr, 3, le=False)))
    pn = getattr(run, "persist_n", None)
    if pn:
        v = sb.get("persist_rss_mib")
        if pn >= 10000000:
            lines.append(tgt("issue 3: RSS with 10M × 1 KiB persistent queued < 200 MB",
                             fmt(v, "MiB") + " MiB", None if v is None else v * 1.048576 < 200))
        else:
            per = sb.get("persist_bytes_per_msg")
            proj = None if per is None or v is None else v + per * 9 * pn / 1048576
            lines.append(tgt(f"issue 3: RSS with 10M × 1 KiB persistent queued < 200 MB "
                             f"(projected from {pn:,}: RSS + 9 × growth; run `--big` to measure)",
                             fmt(proj, "MiB") + " MiB",
                             None if proj is None else proj * 1.048576 < 200))
    p50, f50, q50 = lat_sb.get("p50_us"), fl["p50_us"], lat_rq.get("p50_us")
    r1, r2 = _ratio(p50, f50), _ratio(p50, q50)
    lines.append(tgt("issue 4: call p50 within 1.5× of the TCP relay floor", fmt(r1, "x") + "×",
                     cmp(r1, 1.5)))
    lines.append(tgt("issue 4: call p50 ≤ 1/2.5 of RabbitMQ's (≤ 0.40×)", fmt(r2, "x") + "×",
                     cmp(r2, 0.4)))
    lines += ["", "Issues 3 (recovery time) and 5 (reject→retry→dead-letter cycle, one million "
              "distinct TTLs) ask for reports, not targets: see the rows above."]
    return lines


def machine_info():
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {mem} RAM, Linux {platform.release()}"


def git_commit():
    try:
        c = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return c + (" (plus uncommitted changes in src/ of the shared checkout)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def report(run, argv):
    names = run.names
    versions = {n: next((r.get("server") for r in run.res[n].values()
                         if isinstance(r, dict) and r.get("server")), None) for n in names}
    lines = ["# Switchboard vs RabbitMQ: benchmark results", ""]
    lines += [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
              f"- command: `{' '.join(argv)}`" + (" (quick: reduced counts)" if run.opts.quick else ""),
              f"- machine: {machine_info()}",
              f"- Switchboard commit {git_commit()}; brokers: "
              + ", ".join(f"{n} = {versions[n] or 'n/a'}" for n in names),
              f"- each number is the median of {run.opts.rounds} interleaved runs; client: "
              "`switchboard bench` (librabbitmq), on the same machine", ""]
    both = len(names) == 2
    head = "| metric | unit | better | " + " | ".join(names) \
        + (" | Switchboard ÷ RabbitMQ |" if both else " |")
    lines += [head, "|" + " --- |" * (len(names) + 3 + (1 if both else 0))]
    for label, unit, higher, get in rows(run):
        vals = [get(n) for n in names]
        cells = [fmt(v, unit) for v in vals]
        better = "-" if higher is None else ("higher" if higher else "lower")
        line = f"| {label} | {unit} | {better} | " \
               + " | ".join(cells) + " |"
        if both:
            a, b = vals
            line += f" {a / b:.2f}× |" if a is not None and b else " - |"
        lines.append(line)
    lines += extra_sections(run)
    if run.notes:
        lines += ["", "## Notes from this run", ""] + [f"- {x}" for x in run.notes]
    if run.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in run.errors]
    lines += ["", "CPU is utime+stime of the broker process (RabbitMQ: its beam.smp) over each "
              "bench run, divided by the messages published (round trips for latency). "
              "See bench/README.md.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts (a few minutes)")
    ap.add_argument("--only", choices=BROKERS, help="benchmark one broker only")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    ap.add_argument("--big", action="store_true",
                    help="RSS with 10 million 1 KiB persistent messages queued instead of 1 "
                         "million (writes ~10 GB per broker; needs 30 GiB free; long)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help="comma-separated subset of: " + ", ".join(SECTIONS))
    ap.add_argument("--workload", action="append", dest="workloads", default=[],
                    help="run only this workload (its title, e.g. '16 B transient'); repeatable")
    opts = ap.parse_args()
    opts.sections = [x for x in opts.sections.split(",") if x]
    bad = [x for x in opts.sections if x not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s): {', '.join(bad)}")
    run = Run(opts)
    exe = run.src_build / "switchboard"
    if not exe.exists():
        sys.exit(f"bench: {exe} not built: run `make`")
    if "rabbitmq" in run.names and not (RABBIT_BIN / "rabbitmq-server").exists():
        sys.exit("bench: rabbitmq-server is not installed: `make deps-reference` (or --only "
                 "switchboard)")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    run.snapshot_binary()
    steps = {"workloads": run.run_workloads, "http": run.measure_http,
             "backlog": run.measure_backlog, "ttl": run.measure_ttl,
             "persistent": run.measure_persistent_rss, "recovery": run.measure_recovery}
    try:
        run.start_brokers()
        run.measure_idle()
        try:
            run.build_floor()
        except Exception as e:  # noqa: BLE001
            run.floor_dir = None
            run.error("floor", "build", e)
        for sec in SECTIONS:                  # in this order; recovery restarts the brokers
            if sec in opts.sections:
                try:
                    if sec in ("ttl", "persistent", "recovery"):
                        log(f"fresh brokers for {sec}")
                        run.fresh_brokers()
                    steps[sec]()
                except Exception as e:  # noqa: BLE001
                    run.error("-", sec, e)
    except KeyboardInterrupt:
        log("interrupted; stopping the brokers")
        run.stop_brokers()
        sys.exit(130)
    finally:
        run.stop_brokers()
        if run.floor_dir:
            shutil.rmtree(run.floor_dir, ignore_errors=True)
        if run.bin_dir:
            shutil.rmtree(run.bin_dir, ignore_errors=True)
    text = report(run, ["bench/run.py", *sys.argv[1:]])
    pathlib.Path(opts.out).write_text(text)
    print(text)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
