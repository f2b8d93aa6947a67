"""Policies (RabbitMQ's): queue and exchange settings applied by name pattern.

The behaviour tests run on both brokers: on Switchboard the policy is set through
PUT /api/policies/{vhost}/{name}, on RabbitMQ (SB_TARGET=rabbitmq, no management plugin)
through `rabbitmqctl set_policy`. RabbitMQ applies a policy change asynchronously, so the
tests wait for its effect. The API shape, persistence and definitions tests are
switchboard_only (they need the management API)."""
import json
import subprocess
import time
import urllib.parse

import pika
import pytest

import brokers
from helpers import get_all, unique, wait_for
from test_http import request


class Policies:
    """Sets and clears policies on the broker under test; clears what it set at the end."""

    def __init__(self, broker):
        self.b = broker
        self.set_names = []
        if broker.kind == "external":
            pytest.skip("setting policies needs a broker this harness started")

    def set(self, name, pattern, definition, priority=0, apply_to="all"):
        self.set_names.append(name)
        if self.b.kind == "rabbitmq":
            subprocess.run([str(brokers.RABBIT_BIN / "rabbitmqctl"), "-n", self.b.node,
                            "set_policy", name, pattern, json.dumps(definition), "--priority",
                            str(priority), "--apply-to", apply_to],
                           env=self.b.env, check=True, capture_output=True, timeout=60)
            return
        body = {"pattern": pattern, "definition": definition, "priority": priority,
                "apply-to": apply_to}
        st, _, data = request(self.http(), "PUT", f"/api/policies/%2F/{name}",
                              body=json.dumps(body), headers={"Content-Type": "application/json"})
        assert st in (201, 204), data

    def clear(self, name, check=True):
        if self.b.kind == "rabbitmq":
            subprocess.run([str(brokers.RABBIT_BIN / "rabbitmqctl"), "-n", self.b.node,
                            "clear_policy", name], env=self.b.env, check=check,
                           capture_output=True, timeout=60)
            return
        st, _, _ = request(self.http(), "DELETE", f"/api/policies/%2F/{name}")
        assert st in (204, 404)

    def http(self):
        u = urllib.parse.urlparse(self.b.http_url)
        return u.hostname, u.port

    def clear_all(self):
        for n in set(self.set_names):
            self.clear(n, check=False)


@pytest.fixture
def ch(conn):
    """A channel with publisher confirms: once basic_publish returns, the queues have the
    message, so the depth read next is exact on RabbitMQ too."""
    c = conn.channel()
    c.confirm_delivery()
    return c


@pytest.fixture
def policies(broker):
    p = Policies(broker)
    yield p
    p.clear_all()


def depth(ch, q):
    return ch.queue_declare(q, passive=True).method.message_count


def fill(ch, q, n):
    for i in range(n):
        ch.basic_publish("", q, f"m{i}".encode())


def test_policy_dead_letters_a_queue_declared_without_arguments(ch, policies):
    p = unique("pol-dlx")
    ch.exchange_declare(p + ".dlx", "fanout")
    ch.queue_declare(p + ".dead")
    ch.queue_bind(p + ".dead", p + ".dlx")
    ch.queue_declare(p + ".work")
    policies.set(p, f"^{p}\\.work$", {"dead-letter-exchange": p + ".dlx"}, apply_to="queues")

    def rejected_reaches_dlq():
        ch.basic_publish("", p + ".work", b"poison")
        m, _, _ = ch.basic_get(p + ".work")
        if m is not None:
            ch.basic_reject(m.delivery_tag, requeue=False)
        return depth(ch, p + ".dead") > 0

    wait_for(rejected_reaches_dlq, timeout=10, interval=0.1, what="the policy's DLX")
    m, props, body = get_all(ch, p + ".dead")[0]
    assert body == b"poison"
    [death] = props.headers["x-death"]
    assert (death["queue"], death["reason"], death["exchange"]) == (p + ".work", "rejected", "")
    for s in ("work", "dead"):
        ch.queue_delete(f"{p}.{s}")
    ch.exchange_delete(p + ".dlx")


def test_a_new_max_length_trims_an_existing_queue_from_the_head(ch, policies):
    q = unique("pol-trim")
    ch.queue_declare(q)
    fill(ch, q, 5)
    policies.set(q, f"^{q}$", {"max-length": 2})
    wait_for(lambda: depth(ch, q) == 2, timeout=10, what="the queue trimmed to 2")
    assert [b for _, _, b in get_all(ch, q)] == [b"m3", b"m4"]
    ch.queue_delete(q)


def test_argument_and_policy_limits_take_the_smaller(ch, policies):
    q = unique("pol-min")
    ch.queue_declare(q, arguments={"x-max-length": 3})
    policies.set(q, f"^{q}$", {"max-length": 10})
    time.sleep(0.5)
    fill(ch, q, 5)
    assert depth(ch, q) == 3            # the argument is smaller
    policies.set(q, f"^{q}$", {"max-length": 1})
    wait_for(lambda: depth(ch, q) == 1, timeout=10, what="the policy's smaller limit")
    ch.queue_delete(q)


def test_the_argument_wins_for_the_dead_letter_exchange(ch, policies):
    p = unique("pol-argwins")
    for x in ("a", "b"):
        ch.exchange_declare(f"{p}.{x}", "fanout")
        ch.queue_declare(f"{p}.{x}.q")
        ch.queue_bind(f"{p}.{x}.q", f"{p}.{x}")
    ch.queue_declare(p + ".work", arguments={"x-dead-letter-exchange": p + ".a"})
    policies.set(p, f"^{p}\\.work$", {"dead-letter-exchange": p + ".b"})
    time.sleep(0.5)
    ch.basic_publish("", p + ".work", b"x")
    m, _, _ = ch.basic_get(p + ".work")
    ch.basic_reject(m.delivery_tag, requeue=False)
    wait_for(lambda: depth(ch, p + ".a.q") == 1, what="dead letter in the argument's DLX")
    assert depth(ch, p + ".b.q") == 0
    for q in ("work", "a.q", "b.q"):
        ch.queue_delete(f"{p}.{q}")
    for x in ("a", "b"):
        ch.exchange_delete(f"{p}.{x}")


def test_only_the_highest_priority_policy_applies(ch, policies):
    q = unique("pol-prio")
    ch.queue_declare(q)
    policies.set(q + "-low", f"^{q}$", {"max-length": 1}, priority=0)
    policies.set(q + "-high", f"^{q}$", {"max-length": 3}, priority=5)
    time.sleep(0.5)
    fill(ch, q, 5)
    wait_for(lambda: depth(ch, q) == 3, what="the high-priority limit")
    ch.queue_delete(q)


def test_clearing_a_policy_lifts_its_limit(ch, policies):
    q = unique("pol-clear")
    ch.queue_declare(q)
    policies.set(q, f"^{q}$", {"max-length": 1})
    wait_for(lambda: (fill(ch, q, 2), depth(ch, q))[1] == 1, what="the limit in force")
    policies.clear(q)
    time.sleep(0.5)
    fill(ch, q, 3)
    assert depth(ch, q) == 4
    ch.queue_delete(q)


def test_policy_alternate_exchange_catches_unroutable(ch, policies):
    p = unique("pol-ae")
    ch.exchange_declare(p, "direct")
    ch.exchange_declare(p + ".ae", "fanout")
    ch.queue_declare(p + ".caught")
    ch.queue_bind(p + ".caught", p + ".ae")
    policies.set(p, f"^{p}$", {"alternate-exchange": p + ".ae"}, apply_to="exchanges")

    def caught():
        ch.basic_publish(p, "nobody-binds-this", b"stray")
        return depth(ch, p + ".caught") > 0

    wait_for(caught, timeout=10, interval=0.1, what="the policy's alternate exchange")
    ch.queue_delete(p + ".caught")
    ch.exchange_delete(p + ".ae")
    ch.exchange_delete(p)


def test_apply_to_exchanges_leaves_queues_alone(ch, policies):
    q = unique("pol-xonly")
    ch.queue_declare(q)
    policies.set(q, f"^{q}$", {"max-length": 1}, apply_to="exchanges")
    time.sleep(0.5)
    fill(ch, q, 3)
    assert depth(ch, q) == 3
    ch.queue_delete(q)


def test_policy_message_ttl_expires_new_messages(ch, policies):
    q = unique("pol-ttl")
    ch.queue_declare(q)
    policies.set(q, f"^{q}$", {"message-ttl": 50})

    def expired():
        ch.basic_publish("", q, b"short-lived")
        time.sleep(0.2)
        return depth(ch, q) == 0

    wait_for(expired, timeout=10, interval=0.1, what="messages expiring by the policy's TTL")
    ch.queue_delete(q)


# ---------------------------------------------------------------- the API (Switchboard)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def http(broker):
    if not broker.http_url:
        pytest.skip("no management API")
    u = urllib.parse.urlparse(broker.http_url)
    return u.hostname, u.port


@pytest.mark.switchboard_only
def test_api_create_replace_list_show_delete(http, ch):
    name = unique("pol-api")
    body = {"pattern": f"^{name}", "definition": {"max-length": 7, "ha-mode": "all"},
            "priority": 3, "apply-to": "queues"}
    path = f"/api/policies/%2F/{name}"
    assert request(http, "PUT", path, body=json.dumps(body), headers=JSON)[0] == 201
    body["definition"]["max-length"] = 8
    assert request(http, "PUT", path, body=json.dumps(body), headers=JSON)[0] == 204
    st, _, got = request(http, "GET", path)
    assert st == 200
    assert got == {"vhost": "/", "name": name, "pattern": f"^{name}", "apply-to": "queues",
                   "definition": {"max-length": 8, "ha-mode": "all"}, "priority": 3}
    assert got in request(http, "GET", "/api/policies")[2]
    assert got in request(http, "GET", "/api/policies/%2F")[2]
    ch.queue_declare(name + ".q")
    st, _, q = request(http, "GET", f"/api/queues/%2F/{name}.q")
    assert q["policy"] == name and q["effective_policy_definition"]["max-length"] == 8
    assert request(http, "DELETE", path)[0] == 204
    assert request(http, "DELETE", path)[0] == 404
    assert request(http, "GET", path)[0] == 404
    st, _, q = request(http, "GET", f"/api/queues/%2F/{name}.q")
    assert q["policy"] is None and q["effective_policy_definition"] == {}
    ch.queue_delete(name + ".q")


@pytest.mark.switchboard_only
@pytest.mark.parametrize("body,reason", [
    ({"pattern": "(", "definition": {"max-length": 1}}, "not a valid regular expression"),
    ({"pattern": "x", "definition": {"no-such-key": 1}}, "are not recognised policy settings"),
    ({"pattern": "x", "definition": {"message-ttl": -5}}, "is not a valid message TTL"),
    ({"pattern": "x", "definition": {"expires": 0}}, "is not a valid queue TTL"),
    ({"pattern": "x", "definition": {"overflow": "sideways"}}, "is not a valid overflow"),
    ({"pattern": "x", "definition": {}}, "no policy definition"),
    ({"pattern": "x", "definition": {"max-length": 1}, "apply-to": "streams"}, "apply-to"),
    ({"definition": {"max-length": 1}}, "pattern is required"),
])
def test_api_refuses_bad_policies_with_the_reason(http, body, reason):
    st, _, data = request(http, "PUT", f"/api/policies/%2F/{unique('bad')}",
                          body=json.dumps(body), headers=JSON)
    assert st == 400 and reason in data["reason"], data


@pytest.mark.switchboard_only
def test_api_unknown_vhost_is_404(http):
    body = json.dumps({"pattern": "x", "definition": {"max-length": 1}})
    assert request(http, "PUT", "/api/policies/nope/p", body=body, headers=JSON)[0] == 404
    assert request(http, "GET", "/api/policies/nope")[0] == 404


@pytest.mark.switchboard_only
def test_policies_survive_a_restart_and_are_exported(tmp_path):
    data = str(tmp_path / "data")
    b = brokers.start_switchboard(data_dir=data)
    u = urllib.parse.urlparse(b.http_url)
    http = (u.hostname, u.port)
    try:
        body = {"pattern": "^kept\\.", "definition": {"max-length": 1}, "apply-to": "queues"}
        assert request(http, "PUT", "/api/policies/%2F/keep", body=json.dumps(body),
                       headers=JSON)[0] == 201
        defs = request(http, "GET", "/api/definitions")[2]
        assert [p["name"] for p in defs["policies"]] == ["keep"]
    finally:
        b.stop()
    b = brokers.start_switchboard(data_dir=data, amqp_port=None)
    u = urllib.parse.urlparse(b.http_url)
    http = (u.hostname, u.port)
    try:
        assert request(http, "GET", "/api/policies/%2F/keep")[2]["pattern"] == "^kept\\."
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = conn.channel()
        ch.queue_declare("kept.q")
        fill(ch, "kept.q", 3)
        assert depth(ch, "kept.q") == 1
        conn.close()
    finally:
        b.stop()


@pytest.mark.switchboard_only
def test_import_of_rabbitmq_definitions_with_policies(http, ch):
    name = unique("pol-import")
    doc = {"rabbit_version": "3.10.8", "vhosts": [{"name": "/"}],
           "policies": [{"vhost": "/", "name": name, "pattern": f"^{name}",
                         "apply-to": "queues", "priority": 0,
                         "definition": {"ha-mode": "all", "max-length": 2}}],
           "queues": [{"name": name + ".q", "vhost": "/", "durable": False,
                       "auto_delete": False, "arguments": {}}]}
    st, _, data = request(http, "POST", "/api/definitions", body=json.dumps(doc), headers=JSON)
    assert st in (200, 201, 204), data
    fill(ch, name + ".q", 4)
    assert depth(ch, name + ".q") == 2
    ch.queue_delete(name + ".q")
    assert request(http, "DELETE", f"/api/policies/%2F/{name}")[0] == 204
