"""Exchange declaration, deletion and exchange-to-exchange bindings (RabbitMQ 3.10 texts)."""
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from helpers import unique, get_one, bodies

PREDECLARED = [
    ("amq.direct", "direct", False), ("amq.fanout", "fanout", False),
    ("amq.topic", "topic", False), ("amq.headers", "headers", False),
    ("amq.match", "headers", False), ("amq.rabbitmq.trace", "topic", True),
]


def closed(ei):
    return ei.value.args


def exclusive_queue(ch):
    return ch.queue_declare("", exclusive=True).method.queue


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
def test_each_standard_exchange_type_can_be_declared_and_passively_redeclared(ch, xname, kind):
    ok = ch.exchange_declare(xname, kind)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    ch.exchange_declare(xname, kind)  # same again: fine
    ch.exchange_declare(xname, passive=True)
    ch.exchange_delete(xname)


def test_redeclaring_with_another_type_fails_with_406_inequivalent_arg_type(ch, xname):
    ch.exchange_declare(xname, "direct")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(xname, "fanout")
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
                               f"'{xname}' in vhost '/': received 'fanout' but current is 'direct'")


@pytest.mark.parametrize("kw,arg,received,current", [
    ({"durable": True}, "durable", "true", "false"),
    ({"auto_delete": True}, "auto_delete", "true", "false"),
    ({"internal": True}, "internal", "true", "false"),
])
def test_redeclaring_with_other_flags_fails_with_406_inequivalent_arg(connect, xname, kw, arg,
                                                                      received, current):
    c = connect()
    ch = c.channel()
    ch.exchange_declare(xname, "direct")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(xname, "direct", **kw)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg '{arg}' for exchange "
                               f"'{xname}' in vhost '/': received '{received}' but current is "
                               f"'{current}'")
    c.channel().exchange_delete(xname)


def test_redeclaring_with_a_new_alternate_exchange_argument_fails_with_406(ch, connect, xname):
    ch.exchange_declare(xname, "direct")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(xname, "direct", arguments={"alternate-exchange": "foo"})
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for "
                               f"exchange '{xname}' in vhost '/': received the value 'foo' of "
                               f"type 'longstr' but current is none")
    connect().channel().exchange_delete(xname)


def test_passive_declare_of_a_missing_exchange_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(name, passive=True)
    assert closed(ei) == (404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


@pytest.mark.parametrize("name,kind,internal", PREDECLARED)
def test_amq_exchanges_are_predeclared_durable_with_their_types(conn, name, kind, internal):
    ch = conn.channel()
    ch.exchange_declare(name, passive=True)
    # an equivalent redeclare is allowed
    ch.exchange_declare(name, kind, durable=True, internal=internal)
    other = "fanout" if kind != "fanout" else "direct"
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(name, other, durable=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
                               f"'{name}' in vhost '/': received '{other}' but current is '{kind}'")


def test_amq_rabbitmq_trace_is_internal(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare("amq.rabbitmq.trace", "topic", durable=True)
    assert closed(ei) == (406, "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange "
                               "'amq.rabbitmq.trace' in vhost '/': received 'false' but current is 'true'")


def test_declaring_an_exchange_with_the_amq_prefix_fails_with_403(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare("amq.foo", "direct")
    assert closed(ei) == (403, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'")


def test_deleting_the_default_exchange_fails_with_403(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_delete("")
    assert closed(ei) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


@pytest.mark.parametrize("name", ["amq.direct", "amq.topic"])
def test_deleting_a_system_exchange_fails_with_403(ch, name):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_delete(name)
    assert closed(ei) == (403, f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed")


@pytest.mark.parametrize("op", ["declare", "passive"])
def test_declaring_the_default_exchange_fails_with_403(ch, op):
    with pytest.raises(ChannelClosedByBroker) as ei:
        if op == "passive":
            ch.exchange_declare("", passive=True)
        else:
            ch.exchange_declare("", "direct")
    assert closed(ei) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


@pytest.mark.parametrize("op", ["queue_bind", "queue_unbind", "exchange_bind_src", "exchange_bind_dst"])
def test_binding_to_or_from_the_default_exchange_fails_with_403(connect, op):
    c = connect()
    q = exclusive_queue(c.channel())
    ch = c.channel()
    with pytest.raises(ChannelClosedByBroker) as ei:
        if op == "queue_bind":
            ch.queue_bind(q, "", q)
        elif op == "queue_unbind":
            ch.queue_unbind(q, "", q)
        elif op == "exchange_bind_src":
            ch.exchange_bind("amq.direct", "", "k")
        else:
            ch.exchange_bind("", "amq.direct", "k")
    assert closed(ei) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def test_deleting_a_missing_exchange_succeeds(ch):
    ok = ch.exchange_delete(unique("missing"))
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)


@pytest.mark.parametrize("kind", ["weird", "x-weird"])
def test_unknown_exchange_type_closes_the_connection_with_503_command_invalid(ch, kind):
    with pytest.raises(ConnectionClosedByBroker) as ei:
        ch.exchange_declare(unique("x"), kind)
    assert closed(ei) == (503, f"COMMAND_INVALID - unknown exchange type '{kind}'")


def test_if_unused_delete_of_an_exchange_with_a_queue_binding_fails_with_406(connect, xname):
    c = connect()
    ch = c.channel()
    ch.exchange_declare(xname, "direct")
    ch.queue_bind(exclusive_queue(ch), xname, "k")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_delete(xname, if_unused=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - exchange '{xname}' in vhost '/' in use")
    c.channel().exchange_delete(xname)


def test_if_unused_delete_counts_only_bindings_where_the_exchange_is_the_source(connect):
    c = connect()
    ch = c.channel()
    src, dst = unique("src"), unique("dst")
    ch.exchange_declare(src, "direct")
    ch.exchange_declare(dst, "direct")
    ch.exchange_bind(dst, src, "k")
    ch.exchange_delete(dst, if_unused=True)  # dst is only a destination: unused
    ch.exchange_declare(dst, "direct")
    ch.exchange_bind(dst, src, "k")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_delete(src, if_unused=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - exchange '{src}' in vhost '/' in use")
    ch = c.channel()
    ch.exchange_delete(src)
    ch.exchange_delete(dst)


def test_if_unused_delete_of_an_unbound_exchange_succeeds(ch, xname):
    ch.exchange_declare(xname, "topic")
    ch.exchange_delete(xname, if_unused=True)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(xname, passive=True)
    assert ei.value.args[0] == 404


def test_deleting_an_exchange_removes_its_bindings(ch, xname, qname):
    ch.exchange_declare(xname, "direct")
    ch.queue_declare(qname)
    ch.queue_bind(qname, xname, "k")
    ch.exchange_delete(xname)
    ch.exchange_declare(xname, "direct")
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(xname, "k", b"x", mandatory=True)
    ch.exchange_delete(xname)
    ch.queue_delete(qname)


def test_exchange_to_exchange_binding_routes_and_unbinding_stops_it(ch, qname):
    src, dst = unique("src"), unique("dst")
    ch.exchange_declare(src, "topic")
    ch.exchange_declare(dst, "direct")
    ch.queue_declare(qname)
    ch.queue_bind(qname, dst, "a.b")
    ch.exchange_bind(dst, src, "a.*")
    ch.confirm_delivery()
    ch.basic_publish(src, "a.b", b"routed", mandatory=True)
    ch.basic_publish(src, "a.c", b"matches e2e but not the queue")
    assert bodies(ch, qname) == [b"routed"]
    ch.exchange_unbind(dst, src, "a.*")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(src, "a.b", b"not routed", mandatory=True)
    assert bodies(ch, qname) == []
    ch.exchange_delete(src)
    ch.exchange_delete(dst)
    ch.queue_delete(qname)


def test_exchange_to_exchange_cycles_deliver_each_message_once_per_queue(ch, qname):
    a, b = unique("a"), unique("b")
    ch.exchange_declare(a, "fanout")
    ch.exchange_declare(b, "fanout")
    ch.exchange_bind(b, a, "")
    ch.exchange_bind(a, b, "")
    ch.queue_declare(qname)
    ch.queue_bind(qname, a, "")
    ch.queue_bind(qname, b, "")
    ch.confirm_delivery()
    ch.basic_publish(a, "", b"once")
    assert bodies(ch, qname) == [b"once"]
    ch.exchange_delete(a)
    ch.exchange_delete(b)
    ch.queue_delete(qname)


@pytest.mark.parametrize("which", ["source", "destination"])
def test_exchange_bind_with_a_missing_exchange_fails_with_404(ch, which):
    missing = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        if which == "source":
            ch.exchange_bind("amq.direct", missing, "k")
        else:
            ch.exchange_bind(missing, "amq.direct", "k")
    assert closed(ei) == (404, f"NOT_FOUND - no exchange '{missing}' in vhost '/'")


def test_alternate_exchange_receives_messages_the_exchange_cannot_route(ch, qname):
    main, alt = unique("main"), unique("alt")
    ch.exchange_declare(alt, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": alt})
    ch.queue_declare(qname)
    ch.queue_bind(qname, alt, "")
    routed_q = exclusive_queue(ch)
    ch.queue_bind(routed_q, main, "known")
    ch.confirm_delivery()
    # mandatory publishes routed via the alternate exchange are not returned
    ch.basic_publish(main, "unknown", b"to-alt", mandatory=True)
    ch.basic_publish(main, "known", b"to-main", mandatory=True)
    assert bodies(ch, qname) == [b"to-alt"]
    assert bodies(ch, routed_q) == [b"to-main"]
    ch.exchange_delete(main)
    ch.exchange_delete(alt)
    ch.queue_delete(qname)


def test_missing_alternate_exchange_leaves_messages_unroutable(ch):
    main = unique("main")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": unique("nonexistent")})
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(main, "k", b"x", mandatory=True)
    ch.exchange_delete(main)


def test_publishing_to_an_internal_exchange_fails_with_403(ch, xname):
    ch.exchange_declare(xname, "direct", internal=True)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish(xname, "k", b"x")
        ch.queue_declare("", exclusive=True)  # a round trip to see the close
    assert closed(ei) == (403, f"ACCESS_REFUSED - cannot publish to internal exchange '{xname}' in vhost '/'")


def test_internal_exchange_still_routes_through_an_exchange_binding(connect, qname):
    c = connect()
    ch = c.channel()
    front, inner = unique("front"), unique("inner")
    ch.exchange_declare(front, "fanout")
    ch.exchange_declare(inner, "fanout", internal=True)
    ch.exchange_bind(inner, front, "")
    ch.queue_declare(qname)
    ch.queue_bind(qname, inner, "")
    ch.confirm_delivery()
    ch.basic_publish(front, "", b"through")
    assert get_one(ch, qname)[2] == b"through"
    ch.exchange_delete(front)
    ch.exchange_delete(inner)
    ch.queue_delete(qname)


def test_publishing_to_a_missing_exchange_closes_the_channel_with_404(ch):
    missing = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish(missing, "k", b"x")
        ch.queue_declare("", exclusive=True)
    assert closed(ei) == (404, f"NOT_FOUND - no exchange '{missing}' in vhost '/'")


def test_auto_delete_exchange_goes_away_when_its_last_binding_is_removed(ch, xname):
    ch.exchange_declare(xname, "direct", auto_delete=True)
    q = exclusive_queue(ch)
    ch.queue_bind(q, xname, "k")
    ch.exchange_declare(xname, passive=True)
    ch.queue_unbind(q, xname, "k")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.exchange_declare(xname, passive=True)
    assert closed(ei) == (404, f"NOT_FOUND - no exchange '{xname}' in vhost '/'")
