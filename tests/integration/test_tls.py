"""TLS: AMQPS with pika, amqplib, `openssl s_client` and the CLI; client certificates
(verify_peer, fail_if_no_peer_cert) and SASL EXTERNAL; HTTPS for the management port.

A throwaway CA, server and client certificates are made at test time with the openssl CLI
(server: CN localhost, SAN localhost, 127.0.0.1, ::1). Each module-scoped broker is started
with them: Switchboard with --ssl-* options, or (SB_TARGET=rabbitmq) RabbitMQ with the same
files as listeners.ssl.default and ssl_options.*, the rabbitmq_auth_mechanism_ssl plugin and
EXTERNAL in auth_mechanisms (RabbitMQ offers it only when listed there; Switchboard on every
TLS connection), and management.ssl.* for HTTPS. The test of an HTTPS client that sends no
request is Switchboard-only (it checks that Switchboard's own plaintext 408 stays out of TLS).
"""
import hashlib
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

import pika
import pytest

import brokers
from helpers import pump, unique, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
NODE_DIR = pathlib.Path(__file__).parent / "node"
HANDSHAKE_MS = 2000  # AMQP (and TLS) handshake timeout of the brokers started here

pytestmark = pytest.mark.skipif(brokers.target() == "external",
                                reason="AMQP_URL names a broker these tests cannot configure")


# --------------------------------------------------------------------------- certificates

def _openssl(d, *args):
    r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}:\n{r.stderr}"


def _make_ca(d, name, cn):
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _make_leaf(d, name, cn, ca, ext):
    (d / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        + ext + "\n")
    _openssl(d, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
             f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
             "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca.pem; server (localhost); client (CN=guest), nobody (CN=nobody), both from ca;
    rogue-client (CN=guest) from another CA that the brokers do not trust."""
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca", "Switchboard test CA")
    _make_ca(d, "rogue", "Untrusted test CA")
    _make_leaf(d, "server", "localhost", "ca",
               "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
    _make_leaf(d, "client", "guest", "ca", "extendedKeyUsage=clientAuth")
    _make_leaf(d, "nobody", "nobody", "ca", "extendedKeyUsage=clientAuth")
    _make_leaf(d, "rogue-client", "guest", "rogue", "extendedKeyUsage=clientAuth")
    return d


# --------------------------------------------------------------------------- brokers

def _start_tls_broker(pki, fail_if_no_peer_cert, tls13_only):
    """A broker of the selected target with an AMQPS listener (verify_peer) and HTTPS for
    its management API: .amqps_port, .https_url."""
    amqps_port, https_port = brokers.free_port(), brokers.free_port()
    ca, cert, key = (str(pki / f) for f in ("ca.pem", "server.pem", "server.key"))
    if brokers.target() == "rabbitmq":
        versions = ["tlsv1.3"] if tls13_only else ["tlsv1.3", "tlsv1.2"]
        conf = [f"management.ssl.ip = 127.0.0.1", f"management.ssl.port = {https_port}",
                f"management.ssl.certfile = {cert}", f"management.ssl.keyfile = {key}",
                *(f"management.ssl.versions.{i + 1} = {v}" for i, v in enumerate(versions)),
                f"listeners.ssl.default = 127.0.0.1:{amqps_port}",
                f"ssl_options.cacertfile = {ca}",
                f"ssl_options.certfile = {cert}",
                f"ssl_options.keyfile = {key}",
                "ssl_options.verify = verify_peer",
                f"ssl_options.fail_if_no_peer_cert = {str(fail_if_no_peer_cert).lower()}",
                *(f"ssl_options.versions.{i + 1} = {v}" for i, v in enumerate(versions)),
                "auth_mechanisms.1 = PLAIN", "auth_mechanisms.2 = AMQPLAIN",
                "auth_mechanisms.3 = EXTERNAL",
                "ssl_cert_login_from = common_name",
                f"ssl_handshake_timeout = {HANDSHAKE_MS}",
                f"handshake_timeout = {HANDSHAKE_MS}"]
        b = brokers.start_rabbitmq(conf_lines=conf, plugins=["rabbitmq_auth_mechanism_ssl"])
    else:
        b = brokers.start_switchboard(extra_args=(
            "--amqps-port", str(amqps_port),
            "--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cacertfile", ca,
            "--ssl-verify", "verify_peer",
            "--ssl-fail-if-no-peer-cert", str(fail_if_no_peer_cert).lower(),
            "--ssl-min-version", "tlsv1.3" if tls13_only else "tlsv1.2",
            "--management-ssl-port", str(https_port),
            "--management-ssl-certfile", cert, "--management-ssl-keyfile", key,
            "--http-header-timeout-ms", "1000",
            "amqp.handshake_timeout_ms", str(HANDSHAKE_MS)))
    b.https_url = f"https://localhost:{https_port}"
    b.amqps_port = amqps_port
    _wait_listening(b)
    return b


def _wait_listening(b):
    """The harness waits for the plain AMQP port; the TLS ones open a moment later."""
    def accepts(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    for port in (b.amqps_port, int(b.https_url.rsplit(":", 1)[1])):
        wait_for(lambda: accepts(port), timeout=30, what=f"port {port} to accept")


def _stop(b):
    b.stop()
    if b.unclean_exit:
        code, tail = b.unclean_exit
        pytest.fail(f"broker exited with status {code} on SIGTERM (not 0); log tail:\n{tail}",
                    pytrace=False)


@pytest.fixture(scope="module")
def tls_broker(pki):
    """verify_peer without fail_if_no_peer_cert: a client certificate is optional."""
    b = _start_tls_broker(pki, fail_if_no_peer_cert=False, tls13_only=False)
    yield b
    _stop(b)


@pytest.fixture(scope="module")
def strict_broker(pki):
    """verify_peer + fail_if_no_peer_cert, TLS 1.3 only."""
    b = _start_tls_broker(pki, fail_if_no_peer_cert=True, tls13_only=True)
    yield b
    _stop(b)


# --------------------------------------------------------------------------- clients

def _context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def _connect(b, pki, cert=None, external=False, **kw):
    params = pika.ConnectionParameters(
        host="localhost", port=b.amqps_port, connection_attempts=1,
        ssl_options=pika.SSLOptions(_context(pki, cert), "localhost"),
        credentials=(pika.credentials.ExternalCredentials() if external
                     else pika.PlainCredentials("guest", "guest")), **kw)
    return pika.BlockingConnection(params)


def _s_client(port, *args, pki=None, stdin=""):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
           *args]
    if pki is not None:
        cmd += ["-CAfile", str(pki / "ca.pem"), "-verify_return_error"]
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def _closed_within(s, seconds):
    """True if the peer closes s (EOF or reset) within seconds, reading and dropping data."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not s.recv(4096):
                return True
        except (ConnectionResetError, ssl.SSLError):
            return True
        except (socket.timeout, TimeoutError):
            return False
    return False


def _log_has(b, text):
    return b.kind != "switchboard" or text in pathlib.Path(b.log_path).read_text(errors="replace")


# --------------------------------------------------------------------------- AMQPS

def test_pika_round_trip_over_tls(tls_broker, pki):
    c = _connect(tls_broker, pki)
    ch = c.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(unique("tls"), exclusive=True).method.queue
    ch.basic_publish("", q, b"over tls", pika.BasicProperties(content_type="text/plain"))
    got = []
    ch.basic_consume(q, lambda ch_, m, p, body: (got.append((p.content_type, body)),
                                                 ch_.basic_ack(m.delivery_tag)))
    pump(c, lambda: got, what="the delivery over TLS")
    assert got == [("text/plain", b"over tls")]
    c.close()


def test_large_and_many_small_messages_to_a_slow_reader(tls_broker, pki):
    """16 x 1 MiB bodies and 3000 small ones pushed to a consumer that does not read for a
    while: the broker's socket fills, its writes are short and resume on EPOLLOUT, records
    span body boundaries; every byte must arrive in order."""
    c = _connect(tls_broker, pki)
    ch = c.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(unique("tls-big"), exclusive=True).method.queue
    big = [hashlib.sha256(bytes([i])).digest() * (1 << 15) for i in range(16)]
    small = [b"m%d" % i for i in range(3000)]
    for body in big:
        ch.basic_publish("", q, body)
    for body in small:
        ch.basic_publish("", q, body, mandatory=False)
    got = []
    ch.basic_qos(prefetch_count=0)
    ch.basic_consume(q, lambda _c, m, p, body: got.append(body), auto_ack=True)
    time.sleep(1.0)  # not reading: the broker meets a full socket
    pump(c, lambda: len(got) == len(big) + len(small), timeout=60, what="all deliveries")
    assert [len(b) for b in got[:16]] == [1 << 20] * 16
    assert got[:16] == big
    assert got[16:] == small
    c.close()


def test_openssl_s_client_handshake_and_versions(tls_broker, pki):
    for version, name in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
        rc, out = _s_client(tls_broker.amqps_port, version, "-brief", pki=pki)
        assert rc == 0, out
        assert f"Protocol version: {name}" in out, out
        assert "Verification: OK" in out, out
        assert "CN = localhost" in out, out
    # TLS 1.0 and 1.1: the client is allowed to offer them (security level 0), so a
    # refusal comes from the server, as a protocol_version alert.
    for version in ("-tls1", "-tls1_1"):
        rc, out = _s_client(tls_broker.amqps_port, version, "-cipher", "DEFAULT@SECLEVEL=0")
        assert rc != 0, out
        assert "alert protocol version" in out, out


def test_tls12_refused_when_the_minimum_is_tls13(strict_broker, pki):
    rc, out = _s_client(strict_broker.amqps_port, "-tls1_2", "-cert",
                        str(pki / "client.pem"), "-key", str(pki / "client.key"))
    assert rc != 0, out
    assert "alert protocol version" in out, out
    rc, out = _s_client(strict_broker.amqps_port, "-tls1_3", "-brief", "-cert",
                        str(pki / "client.pem"), "-key", str(pki / "client.key"), pki=pki)
    assert rc == 0 and "Protocol version: TLSv1.3" in out, out


def test_amqp_over_tls_with_s_client(tls_broker, pki):
    """The protocol header through s_client: connection.start comes back, encrypted."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_broker.amqps_port}",
                        "-CAfile", str(pki / "ca.pem"), "-quiet", "-verify_return_error"],
                       input=b"AMQP\x00\x00\x09\x01", capture_output=True, timeout=20)
    assert b"capabilities" in r.stdout and b"PLAIN" in r.stdout, r.stdout[:200]


def test_verify_peer_client_certificates(tls_broker, pki):
    # A trusted certificate and none at all are both accepted (fail_if_no_peer_cert false).
    for cert in ("client", None):
        c = _connect(tls_broker, pki, cert=cert)
        assert c.is_open
        c.close()
    # One from a CA the broker does not trust is refused during the handshake (with
    # TLS 1.3 the client learns it at its first read).
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        _connect(tls_broker, pki, cert="rogue-client")
    assert tls_broker.alive()


def test_fail_if_no_peer_cert(strict_broker, pki):
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        _connect(strict_broker, pki)
    c = _connect(strict_broker, pki, cert="client")
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    assert c.is_open
    c.close()


def test_sasl_external_with_a_verified_certificate(tls_broker, pki):
    c = _connect(tls_broker, pki, cert="client", external=True)  # CN=guest
    ch = c.channel()
    assert ch.queue_declare("", exclusive=True).method.queue
    c.close()
    # CN=nobody names no user.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        _connect(tls_broker, pki, cert="nobody", external=True)
    assert "403" in str(e.value) and "mechanism EXTERNAL" in str(e.value), e.value
    # Without a certificate EXTERNAL is offered (over TLS) but refused.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        _connect(tls_broker, pki, external=True)
    assert "403" in str(e.value) and "mechanism EXTERNAL" in str(e.value), e.value


def test_mechanisms_offered(tls_broker, pki):
    """connection.start lists EXTERNAL on TLS connections (with or without a client
    certificate, as RabbitMQ: without one it is refused at start-ok), never on plain TCP."""

    def mechanisms(cert, tls=True):
        port = tls_broker.amqps_port if tls else tls_broker.port
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with _context(pki, cert).wrap_socket(raw, server_hostname="localhost") if tls else raw as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            data = b""
            while b"en_US" not in data:
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            return data

    assert b"EXTERNAL" in mechanisms("client")
    assert b"EXTERNAL" in mechanisms(None)
    assert b"PLAIN" in mechanisms(None, tls=False)
    assert b"EXTERNAL" not in mechanisms(None, tls=False)


def test_garbage_instead_of_a_client_hello(tls_broker, pki):
    for garbage in (b"AMQP\x00\x00\x09\x01", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    bytes(range(256)) * 4, b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection(("127.0.0.1", tls_broker.amqps_port), timeout=5) as s:
            s.sendall(garbage)
            assert _closed_within(s, 5), garbage
    assert tls_broker.alive()
    assert _log_has(tls_broker, "TLS handshake failed")
    c = _connect(tls_broker, pki)  # still serving
    c.close()


def test_silent_clients_are_dropped(tls_broker, pki):
    # Connects and says nothing: no ClientHello.
    with socket.create_connection(("127.0.0.1", tls_broker.amqps_port), timeout=5) as s:
        t0 = time.monotonic()
        assert _closed_within(s, HANDSHAKE_MS / 1000 + 5)
        assert time.monotonic() - t0 >= HANDSHAKE_MS / 1000 - 0.5
    # Finishes the TLS handshake, then sends no AMQP header.
    raw = socket.create_connection(("127.0.0.1", tls_broker.amqps_port), timeout=5)
    with _context(pki).wrap_socket(raw, server_hostname="localhost") as s:
        assert _closed_within(s, HANDSHAKE_MS / 1000 + 5)
    assert tls_broker.alive()


def test_close_sends_close_notify(tls_broker, pki):
    """A wrong protocol header gets the right one back and the connection closes with a
    TLS close_notify, not a bare TCP FIN (which Python reports as SSLEOFError)."""
    raw = socket.create_connection(("127.0.0.1", tls_broker.amqps_port), timeout=10)
    with _context(pki).wrap_socket(raw, server_hostname="localhost",
                                   suppress_ragged_eofs=False) as s:
        s.sendall(b"AMQP\x00\x00\x09\x02")
        data = b""
        while True:
            chunk = s.recv(4096)  # SSLEOFError here means no close_notify
            if not chunk:
                break
            data += chunk
    assert data == b"AMQP\x00\x00\x09\x01"


def test_shutdown_closes_tls_connections_with_connection_forced(tls_broker, pki):
    """SIGTERM with a TLS client connected: connection.close 320 reaches it encrypted, and
    the broker exits cleanly (checked when the fixture stops it). Restarts tls_broker."""
    c = _connect(tls_broker, pki)
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None)
    tls_broker.restart()
    _wait_listening(tls_broker)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        pump(c, lambda: False, timeout=10, what="the broker's connection.close")
    assert e.value.reply_code == 320, e.value
    c2 = _connect(tls_broker, pki)  # the restarted broker serves TLS again
    c2.close()


# --------------------------------------------------------------------------- other clients

def test_amqplib_node_over_amqps(tls_broker, pki):
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not installed")
    if not (NODE_DIR / "node_modules" / "amqplib").exists():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci failed:\n{r.stdout}\n{r.stderr}"
    env = dict(os.environ, AMQPS_URL=f"amqps://guest:guest@localhost:{tls_broker.amqps_port}",
               TLS_CA=str(pki / "ca.pem"))
    r = subprocess.run(["node", "amqps_roundtrip.js"], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert r.stdout.strip() == "ok 200000", r.stdout


def _cli(*args, timeout=30, **env):
    build = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build")).resolve()
    e = {k: v for k, v in os.environ.items() if not k.startswith("AMQP_")}
    e.update(env)
    return subprocess.run([str(build / "switchboard"), *args], capture_output=True,
                          text=True, timeout=timeout, env=e)


def test_cli_with_amqps_urls(tls_broker, pki):
    url = f"amqps://guest:guest@localhost:{tls_broker.amqps_port}/"
    q = unique("cli-tls")
    c = _connect(tls_broker, pki)
    c.channel().queue_declare(q, auto_delete=False)
    try:
        r = _cli("publish", "", q, "hello over amqps", "--confirm", "--url", url,
                 "--cacert", str(pki / "ca.pem"))
        assert r.returncode == 0, r.stderr
        # The CA from the environment; the client certificate logs in with EXTERNAL.
        r = _cli("consume", q, "--count", "1", "--timeout", "10",
                 "--url", f"amqps://localhost:{tls_broker.amqps_port}/",
                 "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"),
                 AMQP_CACERT=str(pki / "ca.pem"))
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello over amqps\n"
        # Without the CA the broker's certificate cannot be verified.
        r = _cli("publish", "", q, "x", "--url", url)
        assert r.returncode == 1
        assert "verification failed" in r.stderr and "--cacert" in r.stderr, r.stderr
    finally:
        c.channel().queue_delete(q)
        c.close()


def test_cli_help_documents_tls_options():
    r = _cli("publish", "--help")
    assert r.returncode == 0
    for opt in ("--cacert FILE", "--cert FILE", "--key FILE", "$AMQP_CACERT", "EXTERNAL"):
        assert opt in r.stdout, opt


# --------------------------------------------------------------------------- HTTPS

def _get(url, pki=None):
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
    with urllib.request.urlopen(req, context=_context(pki) if pki else None, timeout=10) as r:
        return r.status, r.read()


def _https(b, pki, path):
    return _get(b.https_url + path, pki)


def test_https_management_api(tls_broker, pki):
    status, body = _https(tls_broker, pki, "/api/overview")
    assert status == 200 and "product_version" in json.loads(body)
    status, body = _https(tls_broker, pki, "/api/health/checks/alarms")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    # Plain HTTP keeps working on its own port.
    status, body = _get(tls_broker.http_url + "/api/health/checks/alarms")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    port = int(tls_broker.https_url.rsplit(":", 1)[1])
    # TLS 1.1 offered: refused (GnuTLS drops the connection without an alert).
    rc, out = _s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0 and "Cipher is (NONE)" in out, out
    rc, out = _s_client(port, "-tls1_2", "-brief", pki=pki)
    assert rc == 0 and "Protocol version: TLSv1.2" in out, out


@pytest.mark.switchboard_only
def test_https_slow_client_is_closed_without_plaintext(tls_broker, pki):
    """A TLS client that sends no request is closed after the header timeout; the plain
    HTTP port's 408 is not written into the TLS stream (that would be garbage to it)."""
    port = int(tls_broker.https_url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with _context(pki).wrap_socket(raw, server_hostname="localhost") as s:
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except ssl.SSLError as e:  # a plaintext 408 would land here
            pytest.fail(f"TLS stream broken: {e!r}")
        except ConnectionResetError:
            data = b""
        assert data == b""
    status, _ = _https(tls_broker, pki, "/api/overview")
    assert status == 200
