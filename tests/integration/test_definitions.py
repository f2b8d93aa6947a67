"""Definitions export/import (issue 3): GET/POST /api/definitions in RabbitMQ's format,
and `switchboard definitions export FILE` / `import FILE` over them.

All of it needs the HTTP API, which the reference run (RabbitMQ without management) lacks,
so every test is switchboard_only. The file format is RabbitMQ's: the top-level keys of a
RabbitMQ export, "arguments" objects, bindings with destination_type."""
import base64
import json
import os
import subprocess
import urllib.parse

import pytest

from helpers import unique
from test_cli import binary
from test_http import request

pytestmark = pytest.mark.switchboard_only

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def http(broker):
    if not broker.http_url:
        pytest.skip("no HTTP API")
    u = urllib.parse.urlparse(broker.http_url)
    return u.hostname, u.port


@pytest.fixture
def sb(broker, http):
    def run(*args):
        env = dict(os.environ, AMQP_URL=broker.amqp_url,
                   HTTP_URL=f"http://guest:guest@{http[0]}:{http[1]}")
        return subprocess.run([binary(), *args], capture_output=True, env=env, timeout=60)
    return run


def named(items, name, key="name"):
    return [i for i in items if i.get(key) == name]


def test_get_definitions_has_rabbitmq_shape(http, ch):
    x, qn = unique("x"), unique("q")
    ch.exchange_declare(x, "topic", durable=True)
    ch.queue_declare(qn, durable=True, arguments={"x-message-ttl": 5000})
    ch.queue_bind(qn, x, "a.*")
    try:
        status, h, d = request(http, "GET", "/api/definitions")
        assert status == 200 and h["content-type"].startswith("application/json")
        for k in ("product_name", "product_version", "users", "vhosts", "permissions",
                  "topic_permissions", "parameters", "global_parameters", "policies",
                  "queues", "exchanges", "bindings"):
            assert k in d, k
        assert {"name": "/"} in [{"name": v["name"]} for v in d["vhosts"]]
        [qd] = named(d["queues"], qn)
        assert qd == {"name": qn, "vhost": "/", "durable": True, "auto_delete": False,
                      "arguments": {"x-message-ttl": 5000}}
        [xd] = named(d["exchanges"], x)
        assert xd == {"name": x, "vhost": "/", "type": "topic", "durable": True,
                      "auto_delete": False, "internal": False, "arguments": {}}
        [bd] = named(d["bindings"], qn, "destination")
        assert bd == {"source": x, "vhost": "/", "destination": qn,
                      "destination_type": "queue", "routing_key": "a.*", "arguments": {}}
        assert not any(e["name"].startswith("amq.") or e["name"] == "" for e in d["exchanges"])
    finally:
        ch.queue_delete(qn)
        ch.exchange_delete(x)


def test_transient_objects_are_not_exported(http, ch):
    qn = unique("q")
    ch.queue_declare(qn, durable=False)
    try:
        _, _, d = request(http, "GET", "/api/definitions")
        assert not named(d["queues"], qn)
    finally:
        ch.queue_delete(qn)


def test_export_delete_import_round_trip_restores_everything(sb, http, ch, tmp_path):
    x, x2, qn, dlq = unique("x"), unique("x2"), unique("q"), unique("dlq")
    user, vhost = unique("user"), unique("vh")
    assert request(http, "PUT", f"/api/users/{user}", headers=JSON,
                   body=json.dumps({"password": "pw", "tags": "monitoring"}).encode())[0] == 201
    assert request(http, "PUT", f"/api/vhosts/{vhost}", headers=JSON,
                   body=json.dumps({"description": "d", "tags": "a,b"}).encode())[0] == 201
    assert request(http, "PUT", f"/api/permissions/{vhost}/{user}", headers=JSON,
                   body=json.dumps({"configure": "^c", "write": "^w", "read": ""}).encode())[0] \
        == 201
    ch.exchange_declare(x, "topic", durable=True, arguments={"alternate-exchange": x2})
    ch.exchange_declare(x2, "fanout", durable=True)
    ch.queue_declare(dlq, durable=True)
    ch.queue_declare(qn, durable=True, arguments={
        "x-message-ttl": 60000, "x-dead-letter-exchange": x2, "x-max-length": 10,
        "x-overflow": "reject-publish"})
    ch.queue_bind(qn, x, "orders.#", arguments={"x-match-note": "kept"})
    ch.queue_bind(dlq, x2, "")
    ch.exchange_bind(x2, x, "audit.*")
    f = tmp_path / "defs.json"
    r = sb("definitions", "export", str(f))
    assert r.returncode == 0, r.stderr
    before = json.loads(f.read_text())
    mine = lambda d: (  # noqa: E731
        sorted((e for e in d["exchanges"] if e["name"] in (x, x2)), key=lambda e: e["name"]),
        sorted((e for e in d["queues"] if e["name"] in (qn, dlq)), key=lambda e: e["name"]),
        sorted((e for e in d["bindings"] if e["source"] in (x, x2)),
               key=lambda e: (e["source"], e["destination"])))
    assert [len(p) for p in mine(before)] == [2, 2, 3]
    who = lambda d: (  # noqa: E731
        [u for u in d["users"] if u["name"] == user],
        [v for v in d["vhosts"] if v["name"] == vhost],
        [p for p in d["permissions"] if p["user"] == user])
    assert who(before) == (
        [{"name": user, "password_hash": who(before)[0][0]["password_hash"],
          "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["monitoring"],
          "limits": {}}],
        [{"name": vhost, "description": "d", "tags": ["a", "b"]}],
        [{"user": user, "vhost": vhost, "configure": "^c", "write": "^w", "read": ""}])
    ch.queue_delete(qn)
    ch.queue_delete(dlq)
    ch.exchange_delete(x)
    ch.exchange_delete(x2)
    assert request(http, "DELETE", f"/api/users/{user}")[0] == 204
    assert request(http, "DELETE", f"/api/vhosts/{vhost}")[0] == 204
    r = sb("definitions", "import", str(f))
    assert r.returncode == 0, r.stderr
    assert b"imported" in r.stdout
    _, _, after = request(http, "GET", "/api/definitions")
    assert mine(after) == mine(before)
    assert who(after) == who(before)   # the same hash: the password still works
    auth = "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()
    assert request(http, "GET", "/api/whoami", auth=auth)[0] == 200
    request(http, "DELETE", f"/api/users/{user}")
    request(http, "DELETE", f"/api/vhosts/{vhost}")
    # The arguments reached the broker with their AMQP types: an equivalent declare is ok.
    ch.queue_declare(qn, durable=True, arguments={
        "x-message-ttl": 60000, "x-dead-letter-exchange": x2, "x-max-length": 10,
        "x-overflow": "reject-publish"})
    ch.queue_delete(qn)
    ch.queue_delete(dlq)
    ch.exchange_delete(x)
    ch.exchange_delete(x2)


RABBIT_EXPORT = {
    "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8",
    "product_name": "RabbitMQ", "product_version": "3.10.8",
    # The hash of "guest" that RabbitMQ 3.10.8 gave its guest user.
    "users": [{"name": "admin", "password_hash": "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk",
               "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"],
               "limits": {}}],
    "vhosts": [{"name": "/", "description": "Default virtual host", "tags": [],
                "metadata": {"description": "Default virtual host", "tags": []}}],
    "permissions": [{"user": "admin", "vhost": "/", "configure": ".*", "write": ".*",
                     "read": ".*"}],
    "topic_permissions": [], "parameters": [], "global_parameters": [
        {"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-x"}],
    "policies": [{"vhost": "/", "name": "ttl", "pattern": "^ttl\\.", "apply-to": "queues",
                  "definition": {"message-ttl": 1000}, "priority": 0}],
}


def rabbit_file(tmp_path, x, qn, user="admin"):
    d = json.loads(json.dumps(RABBIT_EXPORT))
    d["users"][0]["name"] = user
    d["permissions"][0]["user"] = user
    d["exchanges"] = [{"name": x, "vhost": "/", "type": "direct", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {}},
                      {"name": "amq.direct", "vhost": "/", "type": "direct", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {}}]
    d["queues"] = [{"name": qn, "vhost": "/", "durable": True, "auto_delete": False,
                    "arguments": {"x-queue-type": "classic", "x-max-priority": 5}}]
    d["bindings"] = [{"source": x, "vhost": "/", "destination": qn, "destination_type": "queue",
                      "routing_key": "k", "arguments": {}}]
    f = tmp_path / "rabbit.json"
    f.write_text(json.dumps(d))
    return f


def test_import_of_a_rabbitmq_export_creates_its_users_and_warns_about_parameters(sb, http, ch,
                                                                              tmp_path):
    x, qn, user = unique("x"), unique("q"), unique("admin")
    r = sb("definitions", "import", str(rabbit_file(tmp_path, x, qn, user)))
    try:
        assert r.returncode == 0, r.stderr
        err = r.stderr.decode()
        for kind in ("global_parameters",):
            assert f"1 {kind} ignored" in err, err
        assert err.count("warning") == 1
        ch.basic_publish(x, "k", b"routed", mandatory=True)
        m, p, b = ch.basic_get(qn, auto_ack=True)
        assert b == b"routed"
        r = sb("definitions", "export", "-")   # the policy came along
        assert "ttl" in [p["name"] for p in json.loads(r.stdout)["policies"]]
        # The user came with its hash and its permissions: it logs in with its password.
        auth = "Basic " + base64.b64encode(f"{user}:guest".encode()).decode()
        status, _, me = request(http, "GET", "/api/whoami", auth=auth)
        assert status == 200 and me == {"name": user, "tags": ["administrator"]}
        status, _, perms = request(http, "GET", f"/api/users/{user}/permissions")
        assert perms == [{"user": user, "vhost": "/", "configure": ".*", "write": ".*",
                          "read": ".*"}]
    finally:
        ch.queue_delete(qn)
        ch.exchange_delete(x)
        request(http, "DELETE", f"/api/users/{user}")


def test_import_leaves_existing_queues_as_they_are(http, ch):
    qn = unique("q")
    ch.queue_declare(qn, durable=True, arguments={"x-max-length": 3})
    try:
        body = {"queues": [{"name": qn, "vhost": "/", "durable": True, "auto_delete": False,
                            "arguments": {"x-max-length": 99}}]}
        status, _, _ = request(http, "POST", "/api/definitions",
                               body=json.dumps(body).encode(), headers=JSON)
        assert status == 204
        ch.queue_declare(qn, durable=True, arguments={"x-max-length": 3})  # unchanged
    finally:
        ch.queue_delete(qn)


def test_import_takes_a_durable_server_named_queue(http, ch):
    """RabbitMQ exports durable amq.gen-... queues and imports them again (its import declares
    them as they are); the 403 for the amq. prefix is for clients declaring over AMQP."""
    qn = "amq.gen-" + unique("imported")[-12:] + "AbCdEfGhIj"
    body = {"queues": [{"name": qn, "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {}}]}
    status, _, reply = request(http, "POST", "/api/definitions", body=json.dumps(body).encode(),
                               headers=JSON)
    try:
        assert status == 204, reply
        assert ch.queue_declare(qn, passive=True).method.message_count == 0
    finally:
        ch.queue_delete(qn)


def test_import_error_is_400_with_the_first_reason(sb, http, tmp_path):
    qn = unique("q")
    body = {"queues": [{"name": qn, "vhost": "/", "durable": True,
                        "arguments": {"x-max-length": "lots"}}]}
    status, _, b = request(http, "POST", "/api/definitions", body=json.dumps(body).encode(),
                           headers=JSON)
    assert status == 400, b
    assert b["error"] == "bad_request" and qn in b["reason"]
    nobody = unique("nobody")
    body = {"permissions": [{"user": nobody, "vhost": "/", "configure": ".*", "write": ".*",
                             "read": ".*"}], "queues": []}
    status, _, b = request(http, "POST", "/api/definitions", body=json.dumps(body).encode(),
                           headers=JSON)
    assert status == 400 and nobody in b["reason"]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"bindings": [{"source": unique("nox"), "vhost": "/",
                                           "destination": "q", "destination_type": "queue",
                                           "routing_key": "", "arguments": {}}]}))
    r = sb("definitions", "import", str(f))
    assert r.returncode == 1
    assert b"HTTP 400" in r.stderr


def test_definitions_cli_reports_bad_files_and_arguments(sb, tmp_path):
    f = tmp_path / "not.json"
    f.write_text("{nope")
    assert sb("definitions", "import", str(f)).returncode == 1
    assert sb("definitions", "import", str(tmp_path / "missing.json")).returncode == 1
    assert sb("definitions").returncode == 2
    assert sb("definitions", "export").returncode == 2
    assert sb("definitions", "frob", "x").returncode == 2
    r = sb("definitions", "export", "-")
    assert r.returncode == 0 and "queues" in json.loads(r.stdout)
