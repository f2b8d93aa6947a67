"""Start and stop the broker under test: Switchboard (default) or Debian's RabbitMQ.

Selection (see conftest.py):
  AMQP_URL set        -> use that broker as is (HTTP_URL, METRICS_URL optional);
  SB_TARGET=rabbitmq  -> start /usr/lib/rabbitmq/bin/rabbitmq-server on free loopback ports;
  otherwise           -> start build/switchboard serve on free loopback ports.

Usable outside pytest too:  /usr/bin/python3 -m brokers  (prints the URL, Ctrl-C stops).
"""
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

REPO = pathlib.Path(__file__).resolve().parents[2]
RABBIT_BIN = pathlib.Path("/usr/lib/rabbitmq/bin")


class Broker:
    """What a test needs to reach a broker: amqp_url, http_url, host, port."""

    def __init__(self, amqp_url, http_url=None, kind="external", stop=None, log_path=None,
                 proc=None, restart=None):
        self.amqp_url = amqp_url
        self.http_url = http_url
        self.metrics_url = None  # where GET /metrics is served (Prometheus text), if known
        u = urllib.parse.urlparse(amqp_url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 5672
        self.kind = kind
        self.log_path = log_path
        self.unclean_exit = None  # (exit status, log tail) when SIGTERM did not exit 0
        self.proc = proc
        self._stop = stop
        self._restart = restart

    def url(self, user="guest", password="guest", vhost="/"):
        """The AMQP URL with other credentials or another vhost."""
        vh = urllib.parse.quote(vhost, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"amqp://{urllib.parse.quote(user)}:{urllib.parse.quote(password)}@{host}:{self.port}/{vh}"

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def log_tail(self, n=60):
        if not self.log_path:
            return ""
        try:
            lines = pathlib.Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def restart(self):
        """Stops the broker process cleanly and starts it again on the same ports and data."""
        if not self._restart:
            raise RuntimeError(f"cannot restart {self}")
        self._restart()

    def stop(self):
        if self._stop:
            stop, self._stop = self._stop, None
            stop()

    def __repr__(self):
        return f"Broker({self.kind}, {self.amqp_url})"


def _die_with_parent():
    """preexec_fn: the broker gets SIGTERM if the test process dies without cleaning up
    (killed pytest, timeout), so no broker is ever left running."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _free_port_pair(offset):
    """A free port p (below 65536-offset) with p+offset free too."""
    for _ in range(200):
        p = random.randint(20000, 65535 - offset - 1)
        if _port_free(p) and _port_free(p + offset):
            return p
    raise RuntimeError("no free port pair")


def _tcp_accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def from_env():
    url = os.environ.get("AMQP_URL")
    if url:
        b = Broker(url, os.environ.get("HTTP_URL"), kind="external")
        b.metrics_url = os.environ.get("METRICS_URL")
        return b
    return None


def target():
    if os.environ.get("AMQP_URL"):
        return "external"
    return "rabbitmq" if os.environ.get("SB_TARGET") == "rabbitmq" else "switchboard"


def start():
    """Start a broker per the selection rules; the caller must call .stop()."""
    b = from_env()
    if b:
        return b
    if target() == "rabbitmq":
        return start_rabbitmq()
    return start_switchboard()


# --------------------------------------------------------------------------- RabbitMQ

def start_rabbitmq(timeout=60.0, conf_lines=(), plugins=()):
    """RabbitMQ with its management plugin (HTTP API on http_url) and rabbitmq_prometheus
    (metrics_url, its own port as in RabbitMQ), statistics collected every second instead
    of every 5 s so that tests of message rates and counts wait less.
    conf_lines: extra rabbitmq.conf lines (e.g. "consumer_timeout = 1000"); plugins: more
    plugins to enable."""
    port = _free_port_pair(20000)
    mgmt_port, prom_port = free_port(), free_port()
    scratch = tempfile.mkdtemp(prefix="sb-rabbit-")
    node = f"ref{os.getpid()}x{random.randint(0, 99999)}@localhost"
    plugins_file = os.path.join(scratch, "enabled_plugins")
    with open(plugins_file, "w") as f:
        f.write(f"[{','.join(['rabbitmq_management', 'rabbitmq_prometheus', *plugins])}].\n")
    conf_env = os.path.join(scratch, "rabbitmq-env.conf")
    open(conf_env, "w").close()
    conf = os.path.join(scratch, "rabbitmq.conf")
    with open(conf, "w") as f:
        f.write(f"listeners.tcp.default = 127.0.0.1:{port}\n")
        f.write("loopback_users.guest = true\n")
        f.write(f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {mgmt_port}\n")
        f.write(f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {prom_port}\n")
        f.write("collect_statistics_interval = 1000\n")
        for line in conf_lines:
            f.write(line + "\n")
    home = os.path.join(scratch, "home")
    os.makedirs(home)
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("RABBITMQ_"):
            del env[k]
    env.update({
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(port + 20000),
        "RABBITMQ_MNESIA_BASE": os.path.join(scratch, "mnesia"),
        "RABBITMQ_LOG_BASE": os.path.join(scratch, "log"),
        "RABBITMQ_PID_FILE": os.path.join(scratch, "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": plugins_file,
        "RABBITMQ_CONF_ENV_FILE": conf_env,
        "RABBITMQ_CONFIG_FILE": conf,
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "HOME": home,
    })
    log_path = os.path.join(scratch, "server.out")
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    b = Broker(url, f"http://127.0.0.1:{mgmt_port}", kind="rabbitmq", log_path=log_path)
    b.metrics_url = f"http://127.0.0.1:{prom_port}"
    b.node = node
    b.env = env
    b.scratch = scratch

    def launch():
        logf = open(log_path, "ab")
        b.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=env, stdout=logf,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, cwd=scratch,
                                  preexec_fn=_die_with_parent)
        logf.close()
        _wait_rabbit_ready(b, port, url, timeout)

    def shutdown(with_ctl):
        """Stops the node: `rabbitmqctl shutdown` (with_ctl) or SIGTERM to the Erlang VM,
        which is as clean and faster; SIGKILL if it is still running after 15 s."""
        proc = b.proc
        if proc is None:
            return
        pid = None
        try:
            pid = int(pathlib.Path(env["RABBITMQ_PID_FILE"]).read_text().strip())
        except (OSError, ValueError):
            pass
        if with_ctl or not pid:
            try:
                subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", node, "shutdown"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                pass
        else:
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.unlink(env["RABBITMQ_PID_FILE"])
        except OSError:
            pass
        b.proc = None

    def stop():
        shutdown(with_ctl=True)
        shutil.rmtree(scratch, ignore_errors=True)

    def restart():
        shutdown(with_ctl=False)
        launch()

    b._stop = stop
    b._restart = restart
    try:
        launch()
    except BaseException:
        stop()
        raise
    return b


def _wait_rabbit_ready(b, port, url, timeout):
    import pika  # only needed here

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if b.proc.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {b.proc.returncode}:\n{b.log_tail()}")
        if _tcp_accepts("127.0.0.1", port):
            try:
                c = pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1"))
                c.close()
                return
            except pika.exceptions.ProbableAuthenticationError:
                return  # answering logins: up (a test may have deleted or changed guest)
            except Exception as e:  # not ready yet
                last = e
        time.sleep(0.25)
    raise RuntimeError(f"rabbitmq-server did not accept a login within {timeout}s ({last!r}):\n"
                       f"{b.log_tail()}")


# --------------------------------------------------------------------------- Switchboard

def switchboard_binary():
    build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build"))
    if not build.is_absolute():
        # relative to where pytest runs (tests/), like test_unit_bins.py does
        build = build.resolve()
    return build / "switchboard"


def start_switchboard(extra_args=(), timeout=10.0, data_dir=None, amqp_port=None,
                      http_port=None):
    exe = switchboard_binary()
    if not exe.exists():
        raise RuntimeError(f"{exe} not built: run `make`")
    scratch = tempfile.mkdtemp(prefix="sb-switchboard-")
    data_dir = data_dir or os.path.join(scratch, "data")
    amqp_port = amqp_port or free_port()
    http_port = http_port or free_port()
    log_path = os.path.join(scratch, "stderr.log")
    argv = [str(exe), "serve", "--amqp-port", str(amqp_port), "--http-port", str(http_port),
            "--data-dir", data_dir, "--bind", "127.0.0.1", *extra_args]
    b = Broker(f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2F",
               f"http://127.0.0.1:{http_port}", kind="switchboard", log_path=log_path)
    b.metrics_url = b.http_url  # /metrics on the HTTP port (RabbitMQ: its own, 15692)
    b.data_dir = data_dir
    b.argv = argv
    b.scratch = scratch

    def launch():
        logf = open(log_path, "ab")
        b.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=logf,
                                  stdin=subprocess.DEVNULL, start_new_session=True,
                                  preexec_fn=_die_with_parent)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b.proc.poll() is not None:
                raise RuntimeError(f"switchboard exited with {b.proc.returncode}:\n{b.log_tail()}")
            if _tcp_accepts("127.0.0.1", amqp_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"switchboard did not accept on {amqp_port} within {timeout}s:\n"
                           f"{b.log_tail()}")

    def shutdown():
        proc = b.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            # A clean shutdown exits 0; anything else (a crash while shutting
            # down, or LeakSanitizer's status under `make asan`) is reported.
            if proc.returncode != 0 and b.unclean_exit is None:
                b.unclean_exit = (proc.returncode, b.log_tail())
        b.proc = None

    def stop():
        shutdown()
        shutil.rmtree(scratch, ignore_errors=True)

    def restart():
        shutdown()
        launch()

    b._stop = stop
    b._restart = restart
    try:
        launch()
    except BaseException:
        stop()
        raise
    return b


if __name__ == "__main__":
    b = start()
    print(b.amqp_url, b.http_url or "", flush=True)
    try:
        while b.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()
