"""Slow HTTP clients: a request whose headers or body do not arrive in time gets
408 Request Timeout and the connection is closed, and the loop keeps serving others.
Switchboard-only (the reference RabbitMQ runs without its management plugin here)."""
import socket
import time

import pytest

import brokers

pytestmark = pytest.mark.switchboard_only


@pytest.fixture
def slow_http():
    b = brokers.start_switchboard(extra_args=("--http-header-timeout-ms", "300",
                                              "--http-body-timeout-ms", "300"))
    host, port = "127.0.0.1", int(b.http_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield host, port
    b.stop()


def _read_all(s, timeout=5.0):
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("partial", [
    b"GET /api/overview HTTP/1.1\r\nHost: x\r\n",                       # headers never end
    b"POST /api/definitions HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":",  # body stalls
])
def test_a_stalled_request_gets_408_and_the_connection_closes(slow_http, partial):
    t0 = time.monotonic()
    with socket.create_connection(slow_http, timeout=5) as s:
        s.sendall(partial)
        data = _read_all(s)
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"request_timeout" in data
    assert time.monotonic() - t0 < 4


def test_a_slow_client_does_not_hold_up_the_others(slow_http):
    with socket.create_connection(slow_http, timeout=5) as stalled:
        stalled.sendall(b"GET /api/overview HTTP/1.1\r\n")
        with socket.create_connection(slow_http, timeout=5) as s:
            s.sendall(b"GET /api/health/checks/alarms HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n")
            assert _read_all(s).startswith(b"HTTP/1.1 200")
