"""Integration harness: real clients against a real broker process.

Which broker (see brokers.py):
  AMQP_URL=amqp://...   an already running broker (HTTP_URL optional);
  SB_TARGET=rabbitmq    Debian's rabbitmq-server, started on free loopback ports;
  (default)             build/switchboard serve (SB_BUILD overrides the build dir).

The suite encodes RabbitMQ 3.10's behaviour: every test must pass with SB_TARGET=rabbitmq.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import accounts as accounts_mod  # noqa: E402
import brokers  # noqa: E402
from helpers import unique, wait_for  # noqa: E402,F401

try:
    import pika  # noqa: E402
except ImportError:  # pragma: no cover - Debian's python3-pika is for /usr/bin/python3
    pika = None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "switchboard_only: behaviour RabbitMQ lacks; skipped when SB_TARGET=rabbitmq")
    config.addinivalue_line(
        "markers", "fresh_broker: the test starts its own broker process")


def pytest_collection_modifyitems(config, items):
    if brokers.target() != "rabbitmq":
        return
    skip = pytest.mark.skip(reason="Switchboard-only behaviour (SB_TARGET=rabbitmq)")
    for item in items:
        if "switchboard_only" in item.keywords:
            item.add_marker(skip)


def _start_or_fail():
    try:
        return brokers.start()
    except RuntimeError as e:
        pytest.fail(f"could not start the broker under test: {e}", pytrace=False)


@pytest.fixture(scope="session")
def broker():
    """The shared broker for the whole session: .amqp_url .http_url .host .port."""
    b = _start_or_fail()
    yield b
    died = not b.alive()
    tail = b.log_tail() if died else ""
    b.stop()
    if died:
        print(f"\n*** broker {b} died during the session; log tail:\n{tail}", file=sys.stderr)
    _check_clean_exit(b)


def _check_clean_exit(b):
    if getattr(b, "unclean_exit", None):
        code, tail = b.unclean_exit
        pytest.fail(f"broker exited with status {code} on SIGTERM (not 0); log tail:\n{tail}",
                    pytrace=False)


@pytest.fixture
def fresh_broker():
    """A broker process of the test's own (a shared external one when AMQP_URL is set)."""
    b = _start_or_fail()
    yield b
    b.stop()
    _check_clean_exit(b)


@pytest.fixture(autouse=True)
def _broker_still_alive(request):
    """Fails the test that killed the shared broker, with its log tail."""
    yield
    if "broker" in request.fixturenames:
        b = request.getfixturevalue("broker")
        if not b.alive():
            pytest.fail(f"broker died during this test; log tail:\n{b.log_tail()}",
                        pytrace=False)


# ----------------------------------------------------------------------------- helpers

@pytest.fixture
def names():
    """names('q') -> a unique name per call."""
    return unique


@pytest.fixture
def connect(broker):
    """connect(**params) -> a pika BlockingConnection closed at test end."""
    opened = []

    def _connect(url=None, **kw):
        params = pika.URLParameters(url or broker.amqp_url)
        params.connection_attempts = 1
        for k, v in kw.items():
            setattr(params, k, v)
        c = pika.BlockingConnection(params)
        opened.append(c)
        return c

    yield _connect
    for c in opened:
        try:
            if c.is_open:
                c.close()
        except Exception:
            pass


@pytest.fixture
def accounts(broker):
    """Creates users, vhosts and permissions on the broker under test (through its HTTP API,
    or rabbitmqctl for the reference RabbitMQ), and removes them when the test ends."""
    a = accounts_mod.Accounts(broker)
    yield a
    a.cleanup()


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def ch(conn):
    return conn.channel()


@pytest.fixture
def qname():
    return unique("q")


@pytest.fixture
def xname():
    return unique("x")
