"""Queue declaration, exclusivity, auto-delete, bindings, purge and delete (RabbitMQ 3.10 texts)."""
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from helpers import unique, get_one, bodies, pump, wait_for

LOCKED = ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. "
          "It could be originally declared on another connection or the exclusive property value "
          "does not match that of the original declaration.")


def closed(ei):
    return ei.value.args


def publish_n(ch, q, n, prefix=b"m"):
    ch.confirm_delivery()
    for i in range(n):
        ch.basic_publish("", q, prefix + str(i).encode())


def queue_exists(connect, q):
    ch = connect().channel()
    try:
        ch.queue_declare(q, passive=True)
        return True
    except ChannelClosedByBroker as e:
        assert e.args == (404, f"NOT_FOUND - no queue '{q}' in vhost '/'")
        return False


def test_declare_ok_echoes_the_name_with_zero_counts(ch, qname):
    ok = ch.queue_declare(qname)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (qname, 0, 0)
    ch.queue_delete(qname)


def test_declare_ok_reports_ready_messages_and_consumers(ch, qname):
    ch.queue_declare(qname)
    publish_n(ch, qname, 3)
    ok = ch.queue_declare(qname)
    assert (ok.method.message_count, ok.method.consumer_count) == (3, 0)
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(qname, lambda *a: None)
    ok = wait_for(lambda: (lambda m: m if m.message_count == 2 else None)(
        ch.queue_declare(qname, passive=True).method), what="one message in flight")
    # unacked messages are not counted; consumers are
    assert (ok.message_count, ok.consumer_count) == (2, 1)
    ch.queue_delete(qname)


def test_passive_declare_of_a_missing_queue_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(name, passive=True)
    assert closed(ei) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_passive_declare_with_an_empty_name_fails_with_404(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare("", passive=True)
    assert closed(ei) == (404, "NOT_FOUND - no queue '' in vhost '/'")


def test_passive_declare_ignores_flags_and_returns_counts(ch, qname):
    ch.queue_declare(qname, durable=True)
    publish_n(ch, qname, 2)
    ok = ch.queue_declare(qname, passive=True, durable=False, auto_delete=True)
    assert ok.method.message_count == 2
    ch.queue_delete(qname)


def test_server_named_queue_gets_an_amq_gen_name(ch):
    name = ch.queue_declare("", exclusive=True).method.queue
    assert name.startswith("amq.gen-")
    assert len(name) == len("amq.gen-") + 22
    other = ch.queue_declare("", exclusive=True).method.queue
    assert other != name


def test_declaring_a_queue_with_the_amq_prefix_fails_with_403(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare("amq.x")
    assert closed(ei) == (403, "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'")


def test_passive_declare_of_a_missing_amq_queue_fails_with_404_not_403(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare("amq.x", passive=True)
    assert closed(ei) == (404, "NOT_FOUND - no queue 'amq.x' in vhost '/'")


def test_a_255_byte_queue_name_is_accepted(ch):
    name = unique("q")
    name += "z" * (255 - len(name))
    assert len(name) == 255
    assert ch.queue_declare(name, exclusive=True).method.queue == name


@pytest.mark.parametrize("first,second,arg,received,current", [
    ({}, {"durable": True}, "durable", "true", "false"),
    ({"durable": True}, {}, "durable", "false", "true"),
    ({}, {"auto_delete": True}, "auto_delete", "true", "false"),
])
def test_redeclaring_with_other_flags_fails_with_406_inequivalent_arg(connect, qname, first, second,
                                                                     arg, received, current):
    ch = connect().channel()
    ch.queue_declare(qname, **first)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(qname, **second)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg '{arg}' for queue '{qname}' "
                               f"in vhost '/': received '{received}' but current is '{current}'")
    connect().channel().queue_delete(qname)


@pytest.mark.parametrize("first,second,detail", [
    ({}, {"x-message-ttl": 1000},
     "received the value '1000' of type 'signedint' but current is none"),
    ({"x-message-ttl": 1000}, {"x-message-ttl": 2000}, "received '2000' but current is '1000'"),
    ({"x-max-length": 10}, {},
     "received none but current is the value '10' of type 'signedint'"),
])
def test_redeclaring_with_other_arguments_fails_with_406_inequivalent_arg(connect, qname, first,
                                                                         second, detail):
    ch = connect().channel()
    ch.queue_declare(qname, arguments=first)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(qname, arguments=second)
    arg = next(iter(first or second))
    assert closed(ei) == (406, f"PRECONDITION_FAILED - inequivalent arg '{arg}' for queue '{qname}' "
                               f"in vhost '/': {detail}")
    connect().channel().queue_delete(qname)


def test_redeclaring_with_an_unknown_argument_is_allowed(ch, qname):
    ch.queue_declare(qname)
    ch.queue_declare(qname, arguments={"x-custom": "anything"})
    ch.queue_delete(qname)


@pytest.mark.parametrize("args,detail", [
    ({"x-message-ttl": "abc"}, "\"expected integer, got longstr\""),
    ({"x-message-ttl": -1}, "{value_negative,-1}"),
    ({"x-queue-type": "foo"}, "\"unsupported queue type 'foo'\""),
])
def test_invalid_queue_arguments_fail_with_406_invalid_arg(ch, qname, args, detail):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(qname, arguments=args)
    arg = next(iter(args))
    assert closed(ei) == (406, f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{qname}' "
                               f"in vhost '/': {detail}")


# ----------------------------------------------------------------------------- exclusive

@pytest.mark.parametrize("op", ["declare", "passive", "consume", "get", "purge", "delete", "bind"])
def test_exclusive_queue_is_locked_to_other_connections_with_405(connect, qname, op):
    owner = connect()
    owner.channel().queue_declare(qname, exclusive=True)
    ch = connect().channel()
    with pytest.raises(ChannelClosedByBroker) as ei:
        if op == "declare":
            ch.queue_declare(qname, exclusive=True)
        elif op == "passive":
            ch.queue_declare(qname, passive=True)
        elif op == "consume":
            ch.basic_consume(qname, lambda *a: None)
        elif op == "get":
            ch.basic_get(qname)
        elif op == "purge":
            ch.queue_purge(qname)
        elif op == "delete":
            ch.queue_delete(qname)
        else:
            ch.queue_bind(qname, "amq.direct", "k")
    assert closed(ei) == (405, LOCKED.format(q=qname))


def test_redeclaring_a_queue_as_exclusive_on_the_same_connection_fails_with_405(connect, qname):
    c = connect()
    c.channel().queue_declare(qname)
    with pytest.raises(ChannelClosedByBroker) as ei:
        c.channel().queue_declare(qname, exclusive=True)
    assert closed(ei) == (405, LOCKED.format(q=qname))
    c.channel().queue_delete(qname)


def test_exclusive_queue_is_usable_from_another_channel_of_the_same_connection(connect, qname):
    c = connect()
    c.channel().queue_declare(qname, exclusive=True)
    ch = c.channel()
    ch.queue_declare(qname, exclusive=True)
    publish_n(ch, qname, 1)
    assert get_one(ch, qname)[2] == b"m0"


def test_exclusive_queue_is_deleted_when_its_connection_closes(connect, qname):
    owner = connect()
    owner.channel().queue_declare(qname, exclusive=True)
    owner.close()
    wait_for(lambda: not queue_exists(connect, qname), what="exclusive queue deleted")


# ----------------------------------------------------------------------------- auto-delete

def test_auto_delete_queue_is_deleted_when_its_last_consumer_cancels(connect, qname):
    c = connect()
    ch = c.channel()
    ch.queue_declare(qname, auto_delete=True)
    t1 = ch.basic_consume(qname, lambda *a: None)
    t2 = ch.basic_consume(qname, lambda *a: None)
    ch.basic_cancel(t1)
    assert queue_exists(connect, qname)
    ch.basic_cancel(t2)
    wait_for(lambda: not queue_exists(connect, qname), what="auto-delete queue deleted")


def test_auto_delete_queue_without_consumers_ever_stays(connect, qname):
    ch = connect().channel()
    ch.queue_declare(qname, auto_delete=True)
    publish_n(ch, qname, 1)
    assert get_one(ch, qname)[2] == b"m0"
    assert queue_exists(connect, qname)
    ch.queue_delete(qname)


def test_auto_delete_queue_is_deleted_when_the_consumers_channel_closes(connect, qname):
    c = connect()
    ch = c.channel()
    ch.queue_declare(qname, auto_delete=True)
    ch.basic_consume(qname, lambda *a: None)
    ch.close()
    wait_for(lambda: not queue_exists(connect, qname), what="auto-delete queue deleted")


# ----------------------------------------------------------------------------- bindings

def test_bind_and_unbind_control_routing(ch, qname):
    ch.queue_declare(qname)
    ch.queue_bind(qname, "amq.direct", qname + ".k")
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", qname + ".k", b"bound", mandatory=True)
    ch.queue_unbind(qname, "amq.direct", qname + ".k")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.direct", qname + ".k", b"unbound", mandatory=True)
    assert bodies(ch, qname) == [b"bound"]
    ch.queue_delete(qname)


def test_binding_twice_is_idempotent(ch, qname):
    ch.queue_declare(qname)
    ch.queue_bind(qname, "amq.direct", qname)
    ch.queue_bind(qname, "amq.direct", qname)
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", qname, b"once")
    assert bodies(ch, qname) == [b"once"]
    ch.queue_unbind(qname, "amq.direct", qname)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.direct", qname, b"x", mandatory=True)
    ch.queue_delete(qname)


def test_binding_a_missing_queue_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_bind(name, "amq.direct", "k")
    assert closed(ei) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_binding_to_a_missing_exchange_fails_with_404(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_bind(q, name, "k")
    assert closed(ei) == (404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


def test_unbinding_a_binding_that_does_not_exist_succeeds(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ok = ch.queue_unbind(q, "amq.direct", "never-bound")
    assert isinstance(ok.method, pika.spec.Queue.UnbindOk)


def test_unbinding_a_missing_queue_succeeds(ch):
    ok = ch.queue_unbind(unique("missing"), "amq.direct", "k")
    assert isinstance(ok.method, pika.spec.Queue.UnbindOk)


def test_every_queue_is_bound_to_the_default_exchange_by_its_name(ch, qname):
    ch.queue_declare(qname)
    ch.confirm_delivery()
    ch.basic_publish("", qname, b"default", mandatory=True)
    assert bodies(ch, qname) == [b"default"]
    ch.queue_delete(qname)


# ----------------------------------------------------------------------------- purge / delete

def test_purge_returns_the_number_of_ready_messages_removed(ch, qname):
    ch.queue_declare(qname)
    publish_n(ch, qname, 5)
    assert ch.queue_purge(qname).method.message_count == 5
    assert ch.queue_purge(qname).method.message_count == 0
    assert ch.basic_get(qname)[0] is None
    ch.queue_delete(qname)


def test_purge_leaves_unacked_messages_alone(connect, qname):
    c = connect()
    ch = c.channel()
    ch.queue_declare(qname)
    publish_n(ch, qname, 3)
    m, _, _ = ch.basic_get(qname, auto_ack=False)
    assert ch.queue_purge(qname).method.message_count == 2
    ch.close()  # the unacked message is requeued
    ch = c.channel()
    _, _, body = get_one(ch, qname)
    assert body == b"m0"
    ch.queue_delete(qname)


def test_purging_a_missing_queue_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_purge(name)
    assert closed(ei) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_delete_returns_the_number_of_messages_deleted(ch, qname):
    ch.queue_declare(qname)
    publish_n(ch, qname, 2)
    assert ch.queue_delete(qname).method.message_count == 2
    with pytest.raises(ChannelClosedByBroker):
        ch.queue_declare(qname, passive=True)


def test_deleting_a_missing_queue_succeeds_with_zero(ch):
    assert ch.queue_delete(unique("missing")).method.message_count == 0


def test_if_empty_delete_of_a_queue_with_messages_fails_with_406(connect, qname):
    ch = connect().channel()
    ch.queue_declare(qname)
    publish_n(ch, qname, 1)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_delete(qname, if_empty=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - queue '{qname}' in vhost '/' not empty")
    assert connect().channel().queue_delete(qname, if_empty=False).method.message_count == 1


def test_if_unused_delete_of_a_queue_with_a_consumer_fails_with_406(connect, qname):
    ch = connect().channel()
    ch.queue_declare(qname)
    ch.basic_consume(qname, lambda *a: None)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_delete(qname, if_unused=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - queue '{qname}' in vhost '/' in use")
    connect().channel().queue_delete(qname)


def test_if_empty_and_if_unused_delete_succeeds_on_an_idle_empty_queue(ch, qname):
    ch.queue_declare(qname)
    assert ch.queue_delete(qname, if_unused=True, if_empty=True).method.message_count == 0


def test_deleting_a_queue_removes_its_bindings(ch, qname):
    ch.queue_declare(qname)
    ch.queue_bind(qname, "amq.topic", qname + ".#")
    ch.queue_delete(qname)
    ch.queue_declare(qname)
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.topic", qname + ".x", b"x", mandatory=True)
    ch.queue_delete(qname)
