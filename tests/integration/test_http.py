"""HTTP server foundation: RabbitMQ management API shapes, Basic auth, errors, keep-alive.

Uses broker.http_url. The reference run (SB_TARGET=rabbitmq) starts RabbitMQ without the
management plugin (brokers.py writes an empty enabled_plugins), so it has no http_url and
these tests skip there; with AMQP_URL/HTTP_URL pointing at a RabbitMQ with management, the
unmarked tests encode what RabbitMQ 3.10 does. Stdlib only (http.client, socket).
"""
import base64
import http.client as httplib
import json
import socket
import time
import urllib.parse

import pytest

GUEST = "Basic " + base64.b64encode(b"guest:guest").decode()
WRONG = "Basic " + base64.b64encode(b"guest:not-the-password").decode()


@pytest.fixture
def http(broker):
    """(host, port) of the broker's HTTP listener, once it accepts connections."""
    if not broker.http_url:
        pytest.skip("the broker under test has no HTTP URL (RabbitMQ without management)")
    u = urllib.parse.urlparse(broker.http_url)
    host, port = u.hostname, u.port or 80
    # serve opens HTTP right after AMQP, and the harness waits only for AMQP.
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return host, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def request(http, method, path, auth=GUEST, body=None, headers=None):
    """One request on a new connection: (status, headers dict, parsed JSON or raw bytes)."""
    c = http_conn(http)
    try:
        return exchange(c, method, path, auth, body, headers)
    finally:
        c.close()


def http_conn(http):
    return httplib.HTTPConnection(*http, timeout=5)


def exchange(c, method, path, auth=GUEST, body=None, headers=None):
    h = dict(headers or {})
    if auth:
        h["Authorization"] = auth
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if data and hdrs.get("content-type", "").startswith("application/json"):
        data = json.loads(data)
    return r.status, hdrs, data


# ------------------------------------------------------------------------- auth

def test_overview_without_credentials_is_401_with_basic_challenge(http):
    status, h, body = request(http, "GET", "/api/overview", auth=None)
    assert status == 401
    assert h.get("www-authenticate", "").startswith("Basic realm=")


@pytest.mark.switchboard_only
def test_401_has_a_json_error_body(http):
    # RabbitMQ 3.10's 401 has an empty body.
    status, h, body = request(http, "GET", "/api/overview", auth=None)
    assert status == 401
    assert "error" in body and "reason" in body


def test_overview_with_wrong_password_is_401(http):
    status, h, body = request(http, "GET", "/api/overview", auth=WRONG)
    assert status == 401
    assert h.get("www-authenticate", "").startswith("Basic")


def test_overview_with_unknown_user_is_401(http):
    auth = "Basic " + base64.b64encode(b"nobody:guest").decode()
    assert request(http, "GET", "/api/overview", auth=auth)[0] == 401


# ------------------------------------------------------------------------- endpoints

def test_overview_has_management_shape(http):
    status, h, body = request(http, "GET", "/api/overview")
    assert status == 200, body
    assert h["content-type"].startswith("application/json")
    for field in ("product_name", "product_version", "management_version", "node",
                  "object_totals"):
        assert field in body, field
    totals = body["object_totals"]
    for k in ("connections", "channels", "exchanges", "queues", "consumers"):
        assert isinstance(totals[k], int) and totals[k] >= 0, (k, totals)


@pytest.mark.switchboard_only
def test_overview_names_switchboard(http):
    body = request(http, "GET", "/api/overview")[2]
    assert body["product_name"] == "Switchboard"
    assert body["switchboard_version"] == body["product_version"]
    assert "rabbitmq_version" not in body


def test_vhosts_lists_default_vhost(http):
    status, h, body = request(http, "GET", "/api/vhosts")
    assert status == 200
    assert "/" in [v["name"] for v in body]


def test_vhost_by_percent_encoded_name(http):
    status, _, body = request(http, "GET", "/api/vhosts/%2F")
    assert status == 200
    assert body["name"] == "/"


def test_unknown_vhost_is_404_json(http):
    status, h, body = request(http, "GET", "/api/vhosts/no-such-vhost-here")
    assert status == 404
    assert body["error"] == "Object Not Found"


def test_health_check_alarms_ok(http):
    status, _, body = request(http, "GET", "/api/health/checks/alarms")
    assert status == 200
    assert body == {"status": "ok"}


@pytest.mark.switchboard_only
def test_health_check_alive_ok(http):
    status, _, body = request(http, "GET", "/api/health/checks/alive")
    assert status == 200
    assert body == {"status": "ok"}


# ------------------------------------------------------------------------- errors

def test_unknown_path_is_404_with_json_error(http):
    status, h, body = request(http, "GET", "/api/no/such/thing")
    assert status == 404
    assert h["content-type"].startswith("application/json")
    assert body == {"error": "Object Not Found", "reason": "Not Found"}


def test_wrong_method_is_405(http):
    status, h, _ = request(http, "POST", "/api/overview", body=b"{}",
                           headers={"Content-Type": "application/json"})
    assert status == 405


@pytest.mark.switchboard_only
def test_wrong_method_names_allowed_ones(http):
    status, h, body = request(http, "DELETE", "/api/overview")
    assert status == 405
    assert "GET" in h["allow"]
    assert body["error"] == "method_not_allowed"


def test_malformed_json_body_is_400(http):
    status, _, body = request(http, "PUT", "/api/vhosts/%2F", body=b"{not json",
                              headers={"Content-Type": "application/json"})
    assert status == 400
    assert body["error"] == "bad_request"


@pytest.mark.switchboard_only
def test_body_over_limit_is_413_before_it_is_sent(http):
    # Only the headers go out: the declared length alone must be refused.
    s = socket.create_connection(http, timeout=5)
    try:
        s.sendall(b"PUT /api/vhosts/%2F HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                  GUEST.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        head = s.recv(4096)
    finally:
        s.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:80]


@pytest.mark.switchboard_only
def test_put_existing_vhost_is_204(http):
    status, _, body = request(http, "PUT", "/api/vhosts/%2F", body=b'{"description":"x"}',
                              headers={"Content-Type": "application/json"})
    assert status == 204


# ------------------------------------------------------------------------- connection

def test_keep_alive_serves_two_requests_on_one_connection(http):
    c = http_conn(http)
    try:
        assert exchange(c, "GET", "/api/overview")[0] == 200
        sock = c.sock
        assert sock is not None
        assert exchange(c, "GET", "/api/vhosts")[0] == 200
        assert c.sock is sock, "the client had to reconnect: the server closed the connection"
    finally:
        c.close()


def test_errors_without_body_keep_the_connection(http):
    c = http_conn(http)
    try:
        assert exchange(c, "GET", "/api/nope")[0] == 404
        sock = c.sock
        assert exchange(c, "GET", "/api/overview", auth=None)[0] == 401
        assert exchange(c, "GET", "/api/overview")[0] == 200
        assert c.sock is sock
    finally:
        c.close()


def test_amqp_protocol_header_gets_no_amqp_back(http):
    s = socket.create_connection(http, timeout=2)
    try:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        try:
            got = s.recv(64)
        except socket.timeout:
            got = b""  # no answer at all is fine; the header deadline closes it later
    finally:
        s.close()
    assert not got.startswith(b"AMQP"), got
    assert got == b"" or got.startswith(b"HTTP/1.1 4"), got


def test_broker_still_serves_http_after_garbage(http):
    s = socket.create_connection(http, timeout=2)
    s.sendall(b"\x00\x01\x02 garbage \r\n\r\n")
    try:
        s.recv(64)
    except socket.timeout:
        pass
    s.close()
    assert request(http, "GET", "/api/overview")[0] == 200
