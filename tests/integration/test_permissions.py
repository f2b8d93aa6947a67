"""Permission checks on AMQP operations: RabbitMQ's access-control table, its 403 texts and
its order of checks, each observed on RabbitMQ 3.10.8.

  configure: exchange.declare (not passive), exchange.delete, queue.declare (not passive,
             the generated name for a server-named queue), queue.delete
  write:     basic.publish (the exchange; the default one is "amq.default"), the queue of
             queue.bind/unbind, the destination of exchange.bind/unbind, the dead-letter
             exchange of a new queue, the alternate exchange of a new exchange
  read:      basic.get, basic.consume, queue.purge, the exchange of queue.bind/unbind, the
             source of exchange.bind/unbind, a new queue with a dead-letter exchange, a new
             exchange with an alternate exchange

A refusal closes the channel with 403 "ACCESS_REFUSED - access to queue 'q' in vhost '/'
refused for user 'u'", and comes before the object is looked up: touching a missing queue one
may not touch is 403, not 404.

The user under test may do everything to names starting "mine-" and nothing else; guest
makes the other objects. Users and permissions come from the `accounts` fixture.
"""
import pika
import pytest

from helpers import get_one, unique


@pytest.fixture
def setup(broker, accounts, connect):
    """(user name, a connection as that user, guest's channel, a unique suffix)."""
    name = unique("perm")
    accounts.add_user(name, "pw")
    accounts.set_permissions(name, "/", "^mine-", "^mine-", "^mine-")
    conn = connect(broker.url(name, "pw"))
    guest = connect().channel()
    return name, conn, guest, unique("")


def refusal(conn, fn):
    """Runs fn on a new channel of conn; returns (code, text) of the channel close."""
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        fn(ch)
    return ei.value.args


def refused(user, kind, name):
    return (403, f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user "
                 f"'{user}'")


@pytest.fixture
def others(setup):
    """guest's queue and fanout exchange, removed at the end."""
    _, _, g, sfx = setup
    q, x = "other-q" + sfx, "other-x" + sfx
    g.queue_declare(q)
    g.exchange_declare(x, "fanout")
    yield q, x
    g.queue_delete(q)
    g.exchange_delete(x)


# ----------------------------------------------------------------------------- configure

def test_declaring_a_queue_needs_configure(setup):
    user, conn, _, sfx = setup
    ch = conn.channel()
    ch.queue_declare("mine-q" + sfx, exclusive=True)
    assert refusal(conn, lambda c: c.queue_declare("other-q" + sfx)) == \
        refused(user, "queue", "other-q" + sfx)


def test_a_passive_declare_needs_no_permission(setup, others):
    _, conn, _, _ = setup
    q, x = others
    ch = conn.channel()
    assert ch.queue_declare(q, passive=True).method.queue == q
    ch.exchange_declare(x, "fanout", passive=True)


def test_a_server_named_queue_is_checked_under_its_generated_name(setup):
    user, conn, _, _ = setup
    code, text = refusal(conn, lambda c: c.queue_declare("", exclusive=True))
    assert code == 403
    assert text.startswith("ACCESS_REFUSED - access to queue 'amq.gen-")
    assert text.endswith(f"' in vhost '/' refused for user '{user}'")


def test_the_reserved_queue_prefix_is_refused_before_permissions(setup):
    _, conn, _, _ = setup
    assert refusal(conn, lambda c: c.queue_declare("amq.x")) == \
        (403, "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'")


def test_deleting_a_queue_needs_configure_even_when_it_is_missing(setup, others):
    user, conn, _, sfx = setup
    q, _ = others
    assert refusal(conn, lambda c: c.queue_delete(q)) == refused(user, "queue", q)
    assert refusal(conn, lambda c: c.queue_delete("nosuch" + sfx)) == \
        refused(user, "queue", "nosuch" + sfx)


def test_declaring_an_exchange_needs_configure_checked_before_the_reserved_prefix(setup):
    user, conn, _, sfx = setup
    ch = conn.channel()
    ch.exchange_declare("mine-x" + sfx, "direct", auto_delete=True)
    ch.exchange_delete("mine-x" + sfx)
    assert refusal(conn, lambda c: c.exchange_declare("zz-x" + sfx, "direct")) == \
        refused(user, "exchange", "zz-x" + sfx)
    assert refusal(conn, lambda c: c.exchange_declare("amq.zz" + sfx, "direct")) == \
        refused(user, "exchange", "amq.zz" + sfx)
    assert refusal(conn, lambda c: c.exchange_declare("", "direct")) == \
        (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def test_deleting_an_exchange_needs_configure_after_the_system_exchange_checks(setup, others):
    user, conn, _, _ = setup
    _, x = others
    assert refusal(conn, lambda c: c.exchange_delete(x)) == refused(user, "exchange", x)
    assert refusal(conn, lambda c: c.exchange_delete("amq.direct")) == \
        (403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
              "allowed")


# ----------------------------------------------------------------------------- write

def test_publishing_needs_write_on_the_exchange_before_it_is_looked_up(setup, others):
    user, conn, _, sfx = setup
    _, x = others

    def publish(exchange):
        def fn(c):
            c.confirm_delivery()
            c.basic_publish(exchange, "k", b"x")
        return fn

    assert refusal(conn, publish(x)) == refused(user, "exchange", x)
    assert refusal(conn, publish("")) == refused(user, "exchange", "amq.default")
    assert refusal(conn, publish("nosuch" + sfx)) == refused(user, "exchange", "nosuch" + sfx)
    assert refusal(conn, publish("mine-nosuch" + sfx)) == \
        (404, f"NOT_FOUND - no exchange 'mine-nosuch{sfx}' in vhost '/'")


def test_publishing_where_write_is_allowed_routes_as_usual(broker, accounts, connect):
    name = unique("writer")
    accounts.add_user(name, "pw")
    accounts.set_permissions(name, "/", "^mine-", "^(mine-.*|amq\\.default)$", "^mine-")
    ch = connect(broker.url(name, "pw")).channel()
    q = "mine-" + unique("q")
    ch.queue_declare(q, exclusive=True)
    ch.confirm_delivery()
    for i in range(20):   # the answer is remembered, and stays right
        ch.basic_publish("", q, b"%d" % i)
    assert [get_one(ch, q)[2] for _ in range(2)] == [b"0", b"1"]


def test_a_dead_letter_exchange_needs_write_and_the_queue_read(setup, others):
    user, conn, _, sfx = setup
    _, x = others
    assert refusal(conn, lambda c: c.queue_declare(
        "mine-dl" + sfx, arguments={"x-dead-letter-exchange": x})) == refused(user, "exchange", x)
    assert refusal(conn, lambda c: c.queue_declare(
        "mine-dl" + sfx, arguments={"x-dead-letter-exchange": ""})) == \
        refused(user, "exchange", "amq.default")
    ch = conn.channel()
    ch.queue_declare("mine-dl" + sfx, exclusive=True,
                     arguments={"x-dead-letter-exchange": "mine-x"})


def test_an_alternate_exchange_needs_write(setup, others):
    user, conn, _, sfx = setup
    _, x = others
    assert refusal(conn, lambda c: c.exchange_declare(
        "mine-ae" + sfx, "fanout", arguments={"alternate-exchange": x})) == \
        refused(user, "exchange", x)


# ----------------------------------------------------------------------------- read

def test_get_consume_and_purge_need_read_even_on_a_missing_queue(setup, others):
    user, conn, _, sfx = setup
    q, _ = others
    assert refusal(conn, lambda c: c.basic_get(q)) == refused(user, "queue", q)
    assert refusal(conn, lambda c: c.basic_consume(q, lambda *a: None)) == \
        refused(user, "queue", q)
    assert refusal(conn, lambda c: c.queue_purge(q)) == refused(user, "queue", q)
    assert refusal(conn, lambda c: c.basic_get("nosuch" + sfx)) == \
        refused(user, "queue", "nosuch" + sfx)


def test_direct_reply_to_needs_no_permission(setup):
    _, conn, _, _ = setup
    conn.channel().basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=True)


def test_binding_needs_write_on_the_queue_then_read_on_the_exchange(setup, others):
    user, conn, g, sfx = setup
    q, x = others
    mine = "mine-q" + sfx
    conn.channel().queue_declare(mine, exclusive=False, auto_delete=True)
    try:
        assert refusal(conn, lambda c: c.queue_bind(mine, x)) == refused(user, "exchange", x)
        assert refusal(conn, lambda c: c.queue_bind(q, "amq.direct")) == \
            refused(user, "queue", q)
        assert refusal(conn, lambda c: c.queue_unbind(q, "amq.direct")) == \
            refused(user, "queue", q)
        assert refusal(conn, lambda c: c.queue_bind(mine, "mine-nosuch" + sfx)) == \
            (404, f"NOT_FOUND - no exchange 'mine-nosuch{sfx}' in vhost '/'")
    finally:
        g.queue_delete(mine)


def test_exchange_binding_needs_write_on_the_destination_then_read_on_the_source(setup,
                                                                                 others):
    user, conn, _, sfx = setup
    _, x = others
    assert refusal(conn, lambda c: c.exchange_bind(x, "amq.direct")) == \
        refused(user, "exchange", x)
    assert refusal(conn, lambda c: c.exchange_bind("mine-x", x)) == refused(user, "exchange", x)


# ----------------------------------------------------------------------------- changes

def test_changed_permissions_apply_to_the_next_channel(broker, accounts, setup):
    user, conn, _, sfx = setup
    accounts.set_permissions(user, "/", ".*", ".*", ".*")
    ch = conn.channel()
    ch.queue_declare("any-q" + sfx, exclusive=True)
    accounts.set_permissions(user, "/", "^$", "^$", "^$")
    assert refusal(conn, lambda c: c.queue_declare("any-q2" + sfx, exclusive=True)) == \
        refused(user, "queue", "any-q2" + sfx)
