"""Users, vhosts and permissions in the management API, and who may use the API at all.

RabbitMQ 3.10.8's management shapes, codes and words, each observed on the reference broker
with its management plugin: 201 for a new user, vhost or permission and 204 for an update;
400 "tags_not_present", ["not_base64", hash], "[{key_missing,read}]",
"vhost_or_user_not_found"; 401 {"error": "not_authorised"} with "Not management user",
"Not administrator user", "User not authorised to access virtual host" or, for a refused
operation, "Access refused."; a refused REST publish is 400 with the AMQP error as its reason.
The tests skip where the broker under test has no HTTP API (the reference RabbitMQ as
brokers.py starts it); tests of Switchboard's own endpoints are switchboard_only.
"""
import base64
import hashlib
import json

import pika
import pytest

from helpers import unique
from test_http import http, request  # noqa: F401  (http is a fixture)

JSON = {"Content-Type": "application/json"}
# Hashes RabbitMQ 3.10.8 made: of "guest" (SHA-256, its guest user) and of "s3cret" (MD5,
# rabbit_password:hash(rabbit_password_hashing_md5, <<"s3cret">>)).
GUEST_SHA256 = "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk"
S3CRET_MD5 = "i90P8lVbvljHI9RtslONliHY6oM="


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def call(http, method, path, body=None, auth=None):
    """(status, body) as guest unless auth is given."""
    kw = {"auth": auth} if auth else {}
    if body is not None:
        kw.update(body=json.dumps(body).encode(), headers=JSON)
    status, _, data = request(http, method, path, **kw)
    return status, data


def q(name):
    import urllib.parse
    return urllib.parse.quote(name, safe="")


@pytest.fixture
def made(http, accounts):
    """Names made through the API in this test, removed at its end."""
    names = {"users": [], "vhosts": []}
    yield names
    for v in names["vhosts"]:
        call(http, "DELETE", f"/api/vhosts/{q(v)}")
    for u in names["users"]:
        call(http, "DELETE", f"/api/users/{q(u)}")


def new_user(http, made, tags="", password="pw", perms_on=None):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}", {"password": password, "tags": tags})[0] == 201
    if perms_on is not None:
        assert call(http, "PUT", f"/api/permissions/{q(perms_on)}/{name}",
                    {"configure": ".*", "write": ".*", "read": ".*"})[0] == 201
    return name


def new_vhost(http, made):
    name = unique("vh")
    made["vhosts"].append(name)
    assert call(http, "PUT", f"/api/vhosts/{name}", {})[0] == 201
    return name


# ----------------------------------------------------------------------------- users

def test_whoami_names_the_caller_and_its_tags(http):
    assert call(http, "GET", "/api/whoami") == (200, {"name": "guest", "tags": ["administrator"]})


def test_put_user_is_201_then_204_and_get_shows_rabbitmqs_shape(http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}", {"password": "pw1", "tags": "management"})[0] == 201
    assert call(http, "PUT", f"/api/users/{name}",
                {"password": "pw2", "tags": "monitoring,policymaker"})[0] == 204
    status, u = call(http, "GET", f"/api/users/{name}")
    assert status == 200
    assert set(u) == {"name", "password_hash", "hashing_algorithm", "tags", "limits"}
    assert u["name"] == name and u["tags"] == ["monitoring", "policymaker"] and u["limits"] == {}
    assert u["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    # base64(salt(4) ++ sha256(salt ++ password)), of the latest password.
    raw = base64.b64decode(u["password_hash"])
    assert len(raw) == 36 and raw[4:] == hashlib.sha256(raw[:4] + b"pw2").digest()
    assert u in call(http, "GET", "/api/users")[1]


def test_tags_may_be_a_list(http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}",
                {"password": "x", "tags": ["management", "foo"]})[0] == 201
    assert call(http, "GET", f"/api/users/{name}")[1]["tags"] == ["management", "foo"]


def test_a_user_needs_tags_in_the_body(http):
    name = unique("u")
    assert call(http, "PUT", f"/api/users/{name}", {}) == (
        400, {"error": "bad_request", "reason": "tags_not_present"})
    assert call(http, "PUT", f"/api/users/{name}", {"password": "x"})[0] == 400
    assert call(http, "GET", f"/api/users/{name}")[0] == 404


def test_a_hash_that_is_not_base64_is_refused(http):
    name = unique("u")
    assert call(http, "PUT", f"/api/users/{name}",
                {"password_hash": "abc", "tags": ""}) == (
        400, {"error": "bad_request", "reason": ["not_base64", "abc"]})
    assert call(http, "GET", f"/api/users/{name}")[0] == 404


def test_a_password_hash_made_by_rabbitmq_logs_in_with_its_password(http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}",
                {"password_hash": GUEST_SHA256, "tags": "management"})[0] == 201
    assert call(http, "GET", "/api/whoami", auth=basic(name, "guest")) == (
        200, {"name": name, "tags": ["management"]})
    assert call(http, "GET", f"/api/users/{name}")[1]["password_hash"] == GUEST_SHA256


def test_an_md5_hash_with_its_algorithm_logs_in_over_amqp(broker, http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}",
                {"password_hash": S3CRET_MD5, "hashing_algorithm": "rabbit_password_hashing_md5",
                 "tags": ""})[0] == 201
    assert call(http, "GET", f"/api/users/{name}")[1]["hashing_algorithm"] == \
        "rabbit_password_hashing_md5"
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": ".*", "write": ".*", "read": ".*"})[0] == 201
    pika.BlockingConnection(pika.URLParameters(broker.url(name, "s3cret"))).close()


def test_an_empty_hash_locks_the_user_out(http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}", {"password_hash": "", "tags": "management"})[0] == 201
    assert call(http, "GET", "/api/whoami", auth=basic(name, ""))[0] == 401


def test_a_user_without_a_password_gets_one_nobody_knows(http, made):
    name = unique("u")
    made["users"].append(name)
    assert call(http, "PUT", f"/api/users/{name}", {"tags": "management"})[0] == 201
    assert call(http, "GET", f"/api/users/{name}")[1]["password_hash"] != ""
    assert call(http, "GET", "/api/whoami", auth=basic(name, ""))[0] == 401


def test_delete_user_is_204_then_404(http, made):
    name = new_user(http, made)
    assert call(http, "DELETE", f"/api/users/{name}")[0] == 204
    assert call(http, "DELETE", f"/api/users/{name}")[0] == 404
    assert call(http, "GET", f"/api/users/{name}") == (
        404, {"error": "Object Not Found", "reason": "Not Found"})


def test_users_without_permissions_and_bulk_delete(http, made):
    a, b = new_user(http, made), new_user(http, made, perms_on="/")
    names = [u["name"] for u in call(http, "GET", "/api/users/without-permissions")[1]]
    assert a in names and b not in names
    assert call(http, "POST", "/api/users/bulk-delete", {"users": [a, b]})[0] == 204
    assert call(http, "GET", f"/api/users/{a}")[0] == 404
    assert call(http, "GET", f"/api/users/{b}")[0] == 404


# ----------------------------------------------------------------------------- who may use the API

def test_wrong_credentials_are_401_login_failed(http, made):
    name = new_user(http, made, "administrator")
    status, body = call(http, "GET", "/api/overview", auth=basic(name, "wrong"))
    assert (status, body) == (401, {"error": "not_authorized", "reason": "Login failed"})


def test_a_user_without_a_management_tag_is_401_not_management_user(http, made):
    name = new_user(http, made, "", perms_on="/")
    for path in ("/api/overview", "/api/whoami", "/api/queues/%2F"):
        assert call(http, "GET", path, auth=basic(name, "pw")) == (
            401, {"error": "not_authorised", "reason": "Not management user"}), path


@pytest.mark.parametrize("tag", ["management", "policymaker", "monitoring"])
def test_management_tags_open_the_api_but_not_the_administrators_part(http, made, tag):
    name = new_user(http, made, tag)
    auth = basic(name, "pw")
    assert call(http, "GET", "/api/overview", auth=auth)[0] == 200
    for method, path in (("GET", "/api/users"), ("GET", f"/api/users/{name}"),
                         ("GET", "/api/permissions"), ("GET", "/api/definitions"),
                         ("GET", "/api/vhosts/%2F"), ("PUT", "/api/vhosts/x"),
                         ("DELETE", "/api/vhosts/%2F")):
        body = {} if method == "PUT" else None
        assert call(http, method, path, body, auth=auth) == (
            401, {"error": "not_authorised", "reason": "Not administrator user"}), path


def test_a_management_user_sees_only_its_vhosts(http, made):
    mine, other = new_vhost(http, made), new_vhost(http, made)
    name = new_user(http, made, "management", perms_on=mine)
    auth = basic(name, "pw")
    names = [v["name"] for v in call(http, "GET", "/api/vhosts", auth=auth)[1]]
    assert names == [mine]
    assert call(http, "GET", f"/api/queues/{other}", auth=auth) == (
        401, {"error": "not_authorised", "reason": "User not authorised to access virtual host"})
    assert call(http, "GET", f"/api/exchanges/{mine}", auth=auth)[0] == 200
    assert call(http, "GET", "/api/queues/no-such-vhost", auth=auth)[0] == 404


def test_a_management_user_lists_the_queues_of_its_vhosts_only(broker, http, made):
    mine, other = new_vhost(http, made), new_vhost(http, made)
    name = new_user(http, made, "management", perms_on=mine)
    qa, qb = unique("q"), unique("q")
    assert call(http, "PUT", f"/api/queues/{mine}/{qa}", {"durable": False})[0] == 201
    assert call(http, "PUT", f"/api/queues/{other}/{qb}", {"durable": False})[0] == 201
    listed = {(x["vhost"], x["name"]) for x in call(http, "GET", "/api/queues",
                                                     auth=basic(name, "pw"))[1]}
    assert (mine, qa) in listed and (other, qb) not in listed
    listed = {(x["vhost"], x["name"]) for x in call(http, "GET", "/api/queues")[1]}
    assert (mine, qa) in listed and (other, qb) in listed   # the administrator sees all


def test_monitoring_and_administrators_see_every_vhost(http, made):
    v = new_vhost(http, made)
    mon = new_user(http, made, "monitoring")
    assert v in [x["name"] for x in call(http, "GET", "/api/vhosts", auth=basic(mon, "pw"))[1]]
    adm = new_user(http, made, "administrator")
    assert v in [x["name"] for x in call(http, "GET", "/api/vhosts", auth=basic(adm, "pw"))[1]]


# ----------------------------------------------------------------------------- permissions

def test_permissions_are_201_then_204_and_listed_three_ways(http, made):
    v = new_vhost(http, made)
    name = new_user(http, made)
    perm = {"configure": "^x-", "write": ".*", "read": ""}
    assert call(http, "PUT", f"/api/permissions/{v}/{name}", perm)[0] == 201
    assert call(http, "PUT", f"/api/permissions/{v}/{name}", perm)[0] == 204
    one = dict(perm, user=name, vhost=v)
    assert call(http, "GET", f"/api/permissions/{v}/{name}") == (200, one)
    assert one in call(http, "GET", "/api/permissions")[1]
    assert call(http, "GET", f"/api/users/{name}/permissions")[1] == [one]
    by_vhost = call(http, "GET", f"/api/vhosts/{v}/permissions")[1]
    assert one in by_vhost and {p["user"] for p in by_vhost} == {name, "guest"}


def test_permission_errors_are_rabbitmqs(http, made):
    v = new_vhost(http, made)
    name = new_user(http, made)
    assert call(http, "PUT", f"/api/permissions/{v}/{name}", {"configure": ".*", "write": ".*"}) \
        == (400, {"error": "bad_request", "reason": "[{key_missing,read}]"})
    full = {"configure": ".*", "write": ".*", "read": ".*"}
    for path in (f"/api/permissions/no-such-vhost/{name}", f"/api/permissions/{v}/nobody-here"):
        assert call(http, "PUT", path, full) == (
            400, {"error": "bad_request", "reason": "vhost_or_user_not_found"})
    status, body = call(http, "PUT", f"/api/permissions/{v}/{name}", dict(full, configure="("))
    assert status == 400 and body["error"] == "bad_request" and "invalid_regexp" in str(body)
    assert call(http, "GET", f"/api/permissions/{v}/{name}")[0] == 404
    assert call(http, "GET", "/api/users/nobody-here/permissions")[0] == 404
    assert call(http, "GET", "/api/vhosts/no-such-vhost/permissions")[0] == 404


def test_delete_permission_is_204_then_404(http, made):
    name = new_user(http, made, perms_on="/")
    assert call(http, "DELETE", f"/api/permissions/%2F/{name}")[0] == 204
    assert call(http, "DELETE", f"/api/permissions/%2F/{name}")[0] == 404
    assert call(http, "GET", f"/api/users/{name}/permissions")[1] == []


def test_topic_permissions_are_empty_lists(http, made):
    name = new_user(http, made)
    for path in ("/api/topic-permissions", f"/api/users/{name}/topic-permissions"):
        assert call(http, "GET", path) == (200, []), path


# ----------------------------------------------------------------------------- vhosts

def test_put_vhost_is_201_then_204_with_rabbitmqs_shape(http, made):
    name = unique("vh")
    made["vhosts"].append(name)
    assert call(http, "PUT", f"/api/vhosts/{name}", {"description": "third", "tags": "a,b"})[0] == 201
    status, v = call(http, "GET", f"/api/vhosts/{name}")
    assert status == 200
    assert {k: v[k] for k in ("name", "description", "tags", "tracing", "metadata")} == {
        "name": name, "description": "third", "tags": ["a", "b"], "tracing": False,
        "metadata": {"description": "third", "tags": ["a", "b"]}}
    # A PUT replaces the metadata: what it leaves out is emptied.
    assert call(http, "PUT", f"/api/vhosts/{name}", {})[0] == 204
    v = call(http, "GET", f"/api/vhosts/{name}")[1]
    assert (v["description"], v["tags"]) == ("", [])


def test_the_creator_of_a_vhost_gets_every_permission_there(http, made):
    adm = new_user(http, made, "administrator")
    name = unique("vh")
    made["vhosts"].append(name)
    assert call(http, "PUT", f"/api/vhosts/{name}", {}, auth=basic(adm, "pw"))[0] == 201
    assert call(http, "GET", f"/api/vhosts/{name}/permissions")[1] == [
        {"user": adm, "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}]


def test_delete_vhost_is_204_then_404_and_takes_its_permissions(http, made):
    v = new_vhost(http, made)
    name = new_user(http, made, perms_on=v)
    assert call(http, "DELETE", f"/api/vhosts/{v}")[0] == 204
    assert call(http, "DELETE", f"/api/vhosts/{v}")[0] == 404
    assert call(http, "GET", f"/api/vhosts/{v}")[0] == 404
    assert call(http, "GET", f"/api/users/{name}/permissions")[1] == []


# ----------------------------------------------------------------------------- operations

def test_a_refused_declare_or_delete_is_401_access_refused(http, made):
    name = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": "^mine-", "write": "^mine-", "read": "^mine-"})[0] == 201
    auth, qn = basic(name, "pw"), unique("q")
    refused = (401, {"error": "not_authorised", "reason": "Access refused."})
    assert call(http, "PUT", f"/api/queues/%2F/{qn}", {}, auth=auth) == refused
    assert call(http, "PUT", f"/api/exchanges/%2F/{qn}", {"type": "direct"}, auth=auth) == refused
    assert call(http, "PUT", f"/api/queues/%2F/mine-{qn}", {}, auth=auth)[0] == 201
    assert call(http, "PUT", f"/api/queues/%2F/{qn}", {})[0] == 201   # guest's
    try:
        assert call(http, "DELETE", f"/api/queues/%2F/{qn}", auth=auth) == refused
        assert call(http, "DELETE", f"/api/queues/%2F/{qn}/contents", auth=auth) == refused
        assert call(http, "DELETE", f"/api/queues/%2F/mine-{qn}", auth=auth)[0] == 204
    finally:
        call(http, "DELETE", f"/api/queues/%2F/{qn}")


def test_a_refused_rest_publish_is_400_with_the_amqp_error(http, made):
    name = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": ".*", "write": "^$", "read": ".*"})[0] == 201
    status, body = call(http, "POST", "/api/exchanges/%2F/amq.default/publish",
                        {"routing_key": "x", "payload": "x", "payload_encoding": "string",
                         "properties": {}}, auth=basic(name, "pw"))
    assert (status, body) == (400, {"error": "bad_request", "reason":
                                    f"403 ACCESS_REFUSED - access to exchange 'amq.default' in "
                                    f"vhost '/' refused for user '{name}'"})


@pytest.mark.switchboard_only
def test_the_rpc_bridge_needs_write_permission_and_no_management_tag(http, made):
    allowed = new_user(http, made, "", perms_on="/")
    refused = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{refused}",
                {"configure": ".*", "write": "^$", "read": ".*"})[0] == 201
    qn = unique("nobody-serves")
    assert call(http, "PUT", f"/api/queues/%2F/{qn}", {})[0] == 201
    try:
        status, _, body = request(http, "POST", f"/api/rpc/%2F/{qn}", auth=basic(allowed, "pw"),
                                  body=b"hi")
        assert (status, body["error"]) == (503, "no_consumer")   # got past the checks
        status, _, body = request(http, "POST", f"/api/rpc/%2F/{qn}", auth=basic(refused, "pw"),
                                  body=b"hi")
        assert (status, body) == (403, {"error": "access_refused", "reason":
                                        f"access to exchange 'amq.default' in vhost '/' refused "
                                        f"for user '{refused}'"})
    finally:
        call(http, "DELETE", f"/api/queues/%2F/{qn}")


@pytest.mark.switchboard_only
def test_dead_letter_listing_needs_read_permission(http, made):
    name = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": ".*", "write": ".*", "read": "^$"})[0] == 201
    qn = unique("dlq")
    assert call(http, "PUT", f"/api/queues/%2F/{qn}", {})[0] == 201
    try:
        refused = (401, {"error": "not_authorised", "reason": "ACCESS_REFUSED - access to "
                         f"queue '{qn}' in vhost '/' refused for user '{name}'"})
        assert call(http, "GET", f"/api/dlq/%2F/{qn}", auth=basic(name, "pw")) == refused
        assert call(http, "POST", f"/api/dlq/%2F/{qn}/replay", auth=basic(name, "pw")) == refused
        assert call(http, "GET", f"/api/dlq/%2F/{qn}")[0] == 200
    finally:
        call(http, "DELETE", f"/api/queues/%2F/{qn}")


def test_changing_policies_needs_the_policymaker_tag(http, made):
    v = new_vhost(http, made)
    viewer = new_user(http, made, "management", perms_on=v)
    maker = new_user(http, made, "policymaker", perms_on=v)
    policy = {"pattern": "^nothing-matches-", "definition": {"message-ttl": 1000}}
    assert call(http, "GET", f"/api/policies/{v}", auth=basic(viewer, "pw")) == (200, [])
    assert call(http, "PUT", f"/api/policies/{v}/p", policy, auth=basic(viewer, "pw")) == (
        401, {"error": "not_authorised", "reason": "User not authorised to access object"})
    assert call(http, "PUT", f"/api/policies/{v}/p", policy, auth=basic(maker, "pw"))[0] == 201
    assert call(http, "DELETE", f"/api/policies/{v}/p", auth=basic(viewer, "pw"))[0] == 401
    assert call(http, "DELETE", f"/api/policies/{v}/p", auth=basic(maker, "pw"))[0] == 204


def test_node_figures_need_the_monitoring_tag(http, made):
    viewer = new_user(http, made, "management")
    mon = new_user(http, made, "monitoring")
    assert call(http, "GET", "/api/nodes", auth=basic(viewer, "pw")) == (
        401, {"error": "not_authorised", "reason": "Not monitor user"})
    assert call(http, "GET", "/api/nodes", auth=basic(mon, "pw"))[0] == 200


def test_a_management_user_sees_its_own_connections_only(broker, http, made, connect):
    import time
    name = new_user(http, made, "management", perms_on="/")
    mine = connect(broker.url(name, "pw"))
    connect()   # guest's
    deadline = time.monotonic() + 10
    while True:   # RabbitMQ lists connections after a stats interval
        users = [c["user"] for c in call(http, "GET", "/api/connections",
                                         auth=basic(name, "pw"))[1]]
        everyone = {c["user"] for c in call(http, "GET", "/api/connections")[1]}
        if name in users and "guest" in everyone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert users and set(users) == {name}
    assert {name, "guest"} <= everyone
    assert mine.is_open


def test_the_aliveness_test_runs_with_the_callers_permissions(http, made):
    name = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": "^mine-", "write": ".*", "read": ".*"})[0] == 201
    assert call(http, "GET", "/api/aliveness-test/%2F", auth=basic(name, "pw")) == (
        401, {"error": "not_authorised", "reason": "ACCESS_REFUSED - access to queue "
              f"'aliveness-test' in vhost '/' refused for user '{name}'"})
    assert call(http, "GET", "/api/aliveness-test/%2F") == (200, {"status": "ok"})


def test_getting_messages_over_http_needs_read(http, made):
    name = new_user(http, made, "management")
    assert call(http, "PUT", f"/api/permissions/%2F/{name}",
                {"configure": ".*", "write": ".*", "read": "^mine-"})[0] == 201
    qn = unique("q")
    assert call(http, "PUT", f"/api/queues/%2F/{qn}", {})[0] == 201
    try:
        body = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
        assert call(http, "POST", f"/api/queues/%2F/{qn}/get", body, auth=basic(name, "pw")) \
            == (401, {"error": "not_authorised", "reason": "ACCESS_REFUSED - access to queue "
                      f"'{qn}' in vhost '/' refused for user '{name}'"})
        assert call(http, "POST", f"/api/queues/%2F/{qn}/get", body) == (200, [])
    finally:
        call(http, "DELETE", f"/api/queues/%2F/{qn}")
