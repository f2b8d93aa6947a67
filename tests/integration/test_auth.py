"""Users and vhosts over AMQP: logins against the user database, vhost access at
connection.open, vhosts of their own, and what deleting a vhost or a user does to the
connections there.

Users, vhosts and permissions are made through the `accounts` fixture (the management API,
or rabbitmqctl on the reference RabbitMQ). Every code and text was observed on RabbitMQ
3.10.8: 530 "NOT_ALLOWED - access to vhost '/' refused for user 'u'" for a user without
permissions in the vhost, 320 "CONNECTION_FORCED - vhost 'v' is deleted" and "... user 'u'
is deleted" for the connections of what was deleted."""
import time

import amqp
import pika
import pytest

import accounts as accounts_mod
import rawamqp as R
from helpers import get_one, unique

LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")


def connect_as(broker, user, password, vhost="/"):
    params = pika.URLParameters(broker.url(user, password, vhost))
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def wait_closed(conn, timeout=10.0):
    """Pumps conn until the broker closes it; returns the close exception."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn.process_data_events(0.1)
        except pika.exceptions.ConnectionClosedByBroker as e:
            return e
    raise AssertionError("the broker did not close the connection")


@pytest.fixture
def user(accounts):
    """A user with every permission on "/" (its name; the password is "pw")."""
    name = unique("user")
    accounts.add_user(name, "pw")
    accounts.set_permissions(name, "/")
    return name


# ----------------------------------------------------------------------------- logins

def test_a_new_user_logs_in_with_its_password(broker, user):
    c = connect_as(broker, user, "pw")
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.confirm_delivery()
        ch.basic_publish("", q, b"mine")
        assert get_one(ch, q)[2] == b"mine"
    finally:
        c.close()


def test_a_new_user_logs_in_with_amqplain(broker, user):
    c = amqp.Connection(f"{broker.host}:{broker.port}", userid=user, password="pw",
                        login_method="AMQPLAIN", connect_timeout=5)
    c.connect()
    try:
        assert c.connected
    finally:
        c.close()


def test_a_wrong_password_of_a_new_user_is_refused_with_403(broker, user):
    with R.RawConnection(broker.host, broker.port) as c:
        c.handshake(user=user, password="not-pw", open_ok=False)
        assert c.read_close() == (403, LOGIN_REFUSED, 0, 0)


def test_a_deleted_user_can_no_longer_log_in(broker, accounts, user):
    accounts.delete_user(user)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as ei:
        connect_as(broker, user, "pw")
    assert LOGIN_REFUSED in str(ei.value)


def test_a_changed_password_is_the_one_that_works(broker, accounts, user):
    accounts.add_user(user, "new-pw")
    connect_as(broker, user, "new-pw").close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_as(broker, user, "pw")


# ----------------------------------------------------------------------------- vhost access

def test_a_user_without_permissions_in_the_vhost_is_refused_with_530(broker, accounts):
    name = unique("noperm")
    accounts.add_user(name, "pw")
    with R.RawConnection(broker.host, broker.port) as c:
        c.handshake(user=name, password="pw", open_ok=False)
        assert c.read_close() == (
            530, f"NOT_ALLOWED - access to vhost '/' refused for user '{name}'", 10, 40)


def test_permissions_that_allow_nothing_still_open_the_vhost(broker, accounts):
    name = unique("nothing")
    accounts.add_user(name, "pw")
    accounts.set_permissions(name, "/", "", "", "")
    c = connect_as(broker, name, "pw")
    try:
        assert c.is_open
    finally:
        c.close()


def test_cleared_permissions_refuse_the_next_connection(broker, accounts, user):
    connect_as(broker, user, "pw").close()
    accounts.clear_permissions(user, "/")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as ei:
        connect_as(broker, user, "pw")
    assert f"access to vhost '/' refused for user '{user}'" in str(ei.value)


def test_an_unknown_vhost_is_refused_before_permissions_are_looked_at(broker, accounts):
    name = unique("nowhere")
    accounts.add_user(name, "pw")
    with R.RawConnection(broker.host, broker.port) as c:
        c.handshake(user=name, password="pw", vhost="no-such-vhost", open_ok=False)
        assert c.read_close() == (530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40)


# ----------------------------------------------------------------------------- vhosts

def test_a_user_with_permissions_in_one_vhost_gets_that_one_only(broker, accounts):
    vhost, name = unique("vh"), unique("vuser")
    accounts.add_vhost(vhost)
    accounts.add_user(name, "pw")
    accounts.set_permissions(name, vhost)
    connect_as(broker, name, "pw", vhost).close()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as ei:
        connect_as(broker, name, "pw", "/")
    assert f"access to vhost '/' refused for user '{name}'" in str(ei.value)


def test_vhosts_have_their_own_queues_and_exchanges(broker, accounts, conn):
    vhost, qn = unique("vh"), unique("q")
    accounts.add_vhost(vhost)
    accounts.set_permissions("guest", vhost)
    other = connect_as(broker, "guest", "guest", vhost)
    try:
        och = other.channel()
        och.queue_declare(qn)
        och.queue_bind(qn, "amq.fanout")
        och.confirm_delivery()
        och.basic_publish("amq.fanout", "", b"in-vhost")
        och.basic_publish("", qn, b"by-default-exchange")
        assert [get_one(och, qn)[2] for _ in range(2)] == [b"in-vhost", b"by-default-exchange"]
        # The same name in "/" is another queue, and "/" has none of that name.
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.queue_declare(qn, passive=True)
        assert ei.value.args == (404, f"NOT_FOUND - no queue '{qn}' in vhost '/'")
    finally:
        other.close()


def test_deleting_a_vhost_closes_its_connections_with_320(broker, accounts):
    vhost, qn = unique("vh"), unique("q")
    accounts.add_vhost(vhost)
    accounts.set_permissions("guest", vhost)
    c = connect_as(broker, "guest", "guest", vhost)
    ch = c.channel()
    ch.queue_declare(qn, durable=True)
    ch.basic_consume(qn, lambda *a: None)
    bystander = connect_as(broker, "guest", "guest", "/")
    try:
        accounts.delete_vhost(vhost)
        e = wait_closed(c)
        assert e.args == (320, f"CONNECTION_FORCED - vhost '{vhost}' is deleted")
        assert bystander.is_open
        bystander.channel().queue_declare("", exclusive=True)
    finally:
        bystander.close()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        connect_as(broker, "guest", "guest", vhost)


def test_a_recreated_vhost_starts_empty(broker, accounts):
    vhost, qn = unique("vh"), unique("q")
    accounts.add_vhost(vhost)
    accounts.set_permissions("guest", vhost)
    c = connect_as(broker, "guest", "guest", vhost)
    c.channel().queue_declare(qn, durable=True)
    c.close()
    accounts.delete_vhost(vhost)
    accounts.add_vhost(vhost)
    accounts.set_permissions("guest", vhost)
    c = connect_as(broker, "guest", "guest", vhost)
    try:
        ch = c.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.queue_declare(qn, passive=True)
        assert ei.value.args[0] == 404
    finally:
        if c.is_open:
            c.close()


def test_deleting_a_user_closes_its_connections_with_320(broker, accounts, user):
    c = connect_as(broker, user, "pw")
    c.channel()
    guest = connect_as(broker, "guest", "guest")
    try:
        accounts.delete_user(user)
        e = wait_closed(c)
        assert e.args == (320, f"CONNECTION_FORCED - user '{user}' is deleted")
        assert guest.is_open
    finally:
        guest.close()


# ----------------------------------------------------------------------------- restarts

def test_users_vhosts_and_permissions_survive_a_restart_and_deleted_ones_stay_deleted(
        fresh_broker):
    b = fresh_broker
    a = accounts_mod.Accounts(b)
    vhost, name, qn = unique("vh"), unique("keeper"), unique("q")
    a.add_vhost(vhost)
    a.add_user(name, "pw", ["administrator"])
    a.set_permissions(name, vhost, "^keep", ".*", ".*")
    a.set_permissions(name, "/")
    c = connect_as(b, name, "pw", vhost)
    c.channel().queue_declare("keep-" + qn, durable=True)
    c.close()
    # As RabbitMQ's: the default user is made on first start only.
    connect_as(b, name, "pw", "/").close()
    a.delete_user("guest")
    b.restart()
    c = connect_as(b, name, "pw", vhost)
    try:
        ch = c.channel()
        ch.queue_declare("keep-" + qn, passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.queue_declare("other-" + qn)
        assert ei.value.args == (403, f"ACCESS_REFUSED - access to queue 'other-{qn}' in vhost "
                                      f"'{vhost}' refused for user '{name}'")
    finally:
        if c.is_open:
            c.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect_as(b, "guest", "guest")


def test_a_deleted_vhost_and_its_durable_queues_stay_deleted_after_a_restart(fresh_broker):
    b = fresh_broker
    a = accounts_mod.Accounts(b)
    vhost, qn = unique("vh"), unique("q")
    a.add_vhost(vhost)
    a.set_permissions("guest", vhost)
    c = connect_as(b, "guest", "guest", vhost)
    ch = c.channel()
    ch.queue_declare(qn, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", qn, b"persistent", pika.BasicProperties(delivery_mode=2))
    c.close()
    a.delete_vhost(vhost)
    a.add_vhost(vhost + "-other")   # a change after the delete, saved with it
    b.restart()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as ei:
        connect_as(b, "guest", "guest", vhost)
    assert f"vhost {vhost} not found" in str(ei.value)
