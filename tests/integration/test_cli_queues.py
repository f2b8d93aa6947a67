"""`switchboard queues`: the queue listing read from the management API (GET /api/queues).

switchboard_only: the reference run starts RabbitMQ without the management plugin, which is
what the command reads there."""
import json

import pytest

from helpers import unique, wait_for
from test_dlq import sb  # noqa: F401  (the fixture: runs the CLI with AMQP_URL and HTTP_URL)

pytestmark = pytest.mark.switchboard_only


def table(stdout):
    """Rows of the printed table as dicts keyed by the header."""
    lines = stdout.decode().splitlines()
    head = lines[0].split()
    starts = [lines[0].index(h) for h in head] + [None]
    return [{h: line[starts[i]:starts[i + 1]].strip() for i, h in enumerate(head)}
            for line in lines[1:]]


@pytest.fixture
def orders(ch):
    """A durable queue with TTL and DLX, 5 messages of which 2 delivered and not acked."""
    name = unique("orders")
    ch.queue_declare(name, durable=True, arguments={"x-message-ttl": 60000,
                                                     "x-dead-letter-exchange": "amq.fanout"})
    for i in range(5):
        ch.basic_publish("", name, f"m{i}".encode())
    for _ in range(2):
        assert ch.basic_get(name, auto_ack=False)[0] is not None
    yield name
    ch.queue_delete(name)


def test_lists_ready_unacked_consumers_and_features(sb, ch, orders):
    other = unique("other")
    ch.queue_declare(other, exclusive=True)
    ch.basic_consume(other, lambda *a: None)
    r = sb("queues")
    assert r.returncode == 0, r.stderr
    rows = {row["QUEUE"]: row for row in table(r.stdout)}
    o = rows[orders]
    assert (o["VHOST"], o["READY"], o["UNACKED"], o["CONSUMERS"]) == ("/", "3", "2", "0")
    assert o["FEATURES"] == "D TTL DLX"
    assert rows[other]["CONSUMERS"] == "1"
    assert "Excl" in rows[other]["FEATURES"]


def test_pattern_and_vhost_filter(sb, ch, orders):
    r = sb("queues", orders[:-3] + "*", "--vhost", "/")
    assert r.returncode == 0, r.stderr
    assert [row["QUEUE"] for row in table(r.stdout)] == [orders]
    r = sb("queues", "no-such-queue-*")
    assert r.returncode == 0 and r.stdout == b"no queues match no-such-queue-*\n"


def test_json_is_the_api_objects(sb, ch, orders):
    r = sb("queues", orders, "--json")
    assert r.returncode == 0, r.stderr
    [q] = json.loads(r.stdout)
    assert q["name"] == orders and q["durable"] is True
    assert (q["messages_ready"], q["messages_unacknowledged"]) == (3, 2)
    assert q["arguments"]["x-message-ttl"] == 60000


def test_missing_vhost_is_exit_1_with_the_reason(sb):
    r = sb("queues", "--vhost", "no-such-vhost")
    assert r.returncode == 1
    assert b"404" in r.stderr


def test_bad_arguments_exit_2(sb):
    assert sb("queues", "--bogus").returncode == 2
    assert sb("queues", "a", "b").returncode == 2
    r = sb("queues", "--help")
    assert r.returncode == 0 and r.stdout.startswith(b"usage: switchboard queues")


def test_no_broker_is_exit_1(sb, monkeypatch):
    monkeypatch.setenv("HTTP_URL", "http://guest:guest@127.0.0.1:1")
    r = sb("queues", "--http", "http://guest:guest@127.0.0.1:1")
    assert r.returncode == 1 and r.stderr
