"""Definitions across brokers: a Switchboard export (users with their password hashes,
vhosts, permissions, queues, exchanges, bindings) imports into RabbitMQ 3.10 with
`rabbitmqctl import_definitions`, and RabbitMQ's export of it imports back into Switchboard,
with every user still able to log in and every permission still holding.

It needs both brokers, so it runs in the reference run only (SB_TARGET=rabbitmq: the shared
broker is RabbitMQ, and the test starts a Switchboard of its own); elsewhere it is skipped.
"""
import json
import subprocess

import pika
import pytest

import accounts as accounts_mod
import brokers
from helpers import unique

pytestmark = pytest.mark.skipif(brokers.target() != "rabbitmq",
                                reason="needs the reference RabbitMQ (SB_TARGET=rabbitmq)")


def connect(b, user, password, vhost):
    p = pika.URLParameters(b.url(user, password, vhost))
    p.connection_attempts = 1
    return pika.BlockingConnection(p)


def check_topology(b, user, vhost, qn, xn):
    """user logs in to vhost with its password; the queue is bound to the exchange; the
    permissions let it declare "app." names only."""
    c = connect(b, user, "pw", vhost)
    try:
        ch = c.channel()
        ch.queue_declare(qn, passive=True)
        ch.confirm_delivery()
        ch.basic_publish(xn, "k", b"across", mandatory=True)
        assert ch.basic_get(qn, auto_ack=True)[2] == b"across"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.queue_declare("not-app-" + qn)
        assert ei.value.args[0] == 403
    finally:
        if c.is_open:
            c.close()


def rabbitmqctl(broker, *args):
    r = subprocess.run([str(brokers.RABBIT_BIN / "rabbitmqctl"), "-n", broker.node, *args],
                       env=broker.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def test_a_switchboard_export_imports_into_rabbitmq_and_back(broker, accounts, tmp_path):
    sb = brokers.start_switchboard()
    try:
        sba = accounts_mod.Accounts(sb)
        vhost, user = unique("vh"), unique("app")
        qn, xn = "app." + unique("q"), "app." + unique("x")
        accounts.vhosts.append(vhost)     # removed from RabbitMQ at the end
        accounts.users.append(user)
        sba.add_vhost(vhost)
        sba.add_user(user, "pw", ["management"])
        sba.set_permissions(user, vhost, "^app\\.", ".*", ".*")
        c = connect(sb, "guest", "guest", vhost)
        ch = c.channel()
        ch.exchange_declare(xn, "direct", durable=True)
        ch.queue_declare(qn, durable=True)
        ch.queue_bind(qn, xn, "k")
        c.close()
        check_topology(sb, user, vhost, qn, xn)
        status, exported = sba.request("GET", "/api/definitions")
        assert status == 200
        f = tmp_path / "switchboard.json"
        f.write_text(json.dumps(exported))

        rabbitmqctl(broker, "import_definitions", str(f))
        check_topology(broker, user, vhost, qn, xn)

        back = tmp_path / "rabbitmq.json"
        rabbitmqctl(broker, "export_definitions", str(back))
        sba.delete_user(user)
        sba.delete_vhost(vhost)
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            connect(sb, user, "pw", vhost)
        status, reply = sba.request("POST", "/api/definitions", json.loads(back.read_text()))
        assert status == 204, reply
        check_topology(sb, user, vhost, qn, xn)
    finally:
        sb.stop()
