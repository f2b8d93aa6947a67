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


# ------------------------------------------------------------------ process measurements

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


class Switchboard(Broker):
    name = "switchboard"

    def _spawn(self):
        self.port = free_port_pair(0)
        http = free_port_pair(0)
        exe = self.build / "switchboard"
        argv = [str(exe), "serve", "--amqp-port", str(self.port), "--http-port", str(http),
                "--data-dir", os.path.join(self.scratch, "data"), "--bind", "127.0.0.1"]
        with open(os.path.join(self.scratch, "server.log"), "wb") as logf:
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
        self.port = free_port_pair(20000)
        self.node = f"sbbench{os.getpid()}x{random.randint(0, 99999)}@localhost"
        d = self.scratch
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


def workloads(quick):
    n = 20000 if quick else 200000
    big = 2000 if quick else 20000
    lat = 2000 if quick else 20000
    return [
        ("16 B transient", ["--size", "16", "--count", str(n)], n),
        ("1 KiB transient", ["--size", "1024", "--count", str(n)], n),
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
        ("latency 16 B", ["--latency", "--size", "16", "--count", str(lat)], lat),
    ]


def run_bench(build, broker, args, timeout):
    """One `switchboard bench --json` run; returns its JSON plus the broker's CPU seconds."""
    argv = [str(build / "switchboard"), "bench", "--url", broker.url, "--json", *args]
    cpu0 = cpu_seconds(broker.pid)
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout} s: {' '.join(argv)}")
    cpu1 = cpu_seconds(broker.pid)
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    res["cpu_s"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
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
    out["server"] = runs[0].get("server")
    return out


# ------------------------------------------------------------------ the run

class Run:
    def __init__(self, opts):
        self.opts = opts
        self.build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build")).resolve()
        self.names = [opts.only] if opts.only else list(BROKERS)
        self.brokers = {}
        self.errors = []
        self.raw = {n: {} for n in self.names}     # broker -> workload -> [json]
        self.res = {n: {} for n in self.names}     # broker -> metric -> value

    def error(self, broker, what, e):
        msg = f"{broker}: {what}: {e}"
        log(msg)
        self.errors.append(msg)

    def start_brokers(self):
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
            self.res[name]["startup_ms"] = b.startup_s * 1000
            log(f"{name} up in {b.startup_s:.2f} s on port {b.port} (pid {b.pid})")

    def measure_idle(self):
        time.sleep(3)  # let start-up work settle
        for name, b in self.brokers.items():
            self.res[name]["idle_rss_mib"] = rss_mib(b.pid)

    def run_workloads(self):
        wl = workloads(self.opts.quick)
        timeout = 300 if self.opts.quick else 900
        for rnd in range(self.opts.rounds):
            for title, args, count in wl:
                for name, b in list(self.brokers.items()):
                    if not b.alive():
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
            except Exception as e:  # noqa: BLE001
                self.error(name, "backlog", e)

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
        if title.startswith("latency"):
            for k, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
                out.append((f"{title}: {label}", "µs", False, lambda n, t=title, k=k: get(n, t, k)))
        else:
            key = "deliveries_per_s" if "fanout" in title else "msgs_per_s"
            label = "deliveries/s" if "fanout" in title else "msgs/s"
            out.append((f"{title}: {label}", "msgs/s", True, lambda n, t=title, k=key: get(n, t, k)))
            if "64 KiB" in title or "1 KiB transient" in title:
                out.append((f"{title}: MB/s", "MB/s", True,
                            lambda n, t=title: get(n, t, "mb_per_s")))
        out.append((f"{title}: broker CPU per message", "µs", False,
                    lambda n, t=title: get(n, t, "cpu_us_per_msg")))
    out.append(("idle RSS", "MiB", False, lambda n: run.res[n].get("idle_rss_mib")))
    out.append((f"RSS holding {getattr(run, 'backlog_n', 0):,} × 16 B", "MiB", False,
                lambda n: run.res[n].get("backlog_rss_mib")))
    out.append(("RSS growth per queued message", "B", False,
                lambda n: run.res[n].get("backlog_bytes_per_msg")))
    out.append(("start-up (spawn → AMQP handshake)", "ms", False,
                lambda n: run.res[n].get("startup_ms")))
    return out


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
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
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
        line = f"| {label} | {unit} | {'higher' if higher else 'lower'} | " \
               + " | ".join(cells) + " |"
        if both:
            a, b = vals
            line += f" {a / b:.2f}× |" if a is not None and b else " - |"
        lines.append(line)
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
    opts = ap.parse_args()
    run = Run(opts)
    exe = run.build / "switchboard"
    if not exe.exists():
        sys.exit(f"bench: {exe} not built: run `make`")
    if "rabbitmq" in run.names and not (RABBIT_BIN / "rabbitmq-server").exists():
        sys.exit("bench: rabbitmq-server is not installed: `make deps-reference` (or --only "
                 "switchboard)")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run.start_brokers()
        run.measure_idle()
        run.run_workloads()
        run.measure_backlog()
    except KeyboardInterrupt:
        log("interrupted; stopping the brokers")
        run.stop_brokers()
        sys.exit(130)
    finally:
        run.stop_brokers()
    text = report(run, ["bench/run.py", *sys.argv[1:]])
    pathlib.Path(opts.out).write_text(text)
    print(text)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
