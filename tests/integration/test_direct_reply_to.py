"""Direct reply-to (amq.rabbitmq.reply-to): RPC without a reply queue, RabbitMQ 3.10 rules."""
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from helpers import unique, get_one, pump

REPLY_TO = "amq.rabbitmq.reply-to"


def closed(ei):
    return ei.value.args


def test_rpc_round_trip_through_direct_reply_to(connect):
    client = connect()
    cch = client.channel()
    server = connect().channel()
    rq = server.queue_declare("", exclusive=True).method.queue
    replies = []
    cch.basic_consume(REPLY_TO, lambda c_, m, p, b: replies.append((m, p, b)), auto_ack=True)
    cch.basic_publish("", rq, b"request", pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1"))

    _, props, body = get_one(server, rq)
    assert body == b"request"
    # the broker rewrites reply_to into a routable per-channel name
    assert props.reply_to.startswith(REPLY_TO + ".")
    assert len(props.reply_to) > len(REPLY_TO) + 1
    server.confirm_delivery()
    server.basic_publish("", props.reply_to, b"response",
                         pika.BasicProperties(correlation_id=props.correlation_id))

    pump(client, lambda: replies, what="the reply")
    m, p, b = replies[0]
    assert b == b"response"
    assert p.correlation_id == "c1"
    assert (m.exchange, m.routing_key, m.redelivered) == ("", props.reply_to, False)


def test_a_mandatory_reply_is_delivered(connect):
    """RabbitMQ 3.10 delivers a mandatory reply and ALSO returns it (312 NO_ROUTE): a quirk
    clients must tolerate. Only the delivery is asserted here."""
    client = connect()
    cch = client.channel()
    server = connect().channel()
    rq = server.queue_declare("", exclusive=True).method.queue
    replies = []
    cch.basic_consume(REPLY_TO, lambda c_, m, p, b: replies.append(b), auto_ack=True)
    cch.basic_publish("", rq, b"request", pika.BasicProperties(reply_to=REPLY_TO))
    address = get_one(server, rq)[1].reply_to
    server.confirm_delivery()
    try:
        server.basic_publish("", address, b"mandatory-reply", mandatory=True)
    except UnroutableError as e:
        assert [(m.method.reply_code, m.method.reply_text) for m in e.messages] == [(312, "NO_ROUTE")]
    pump(client, lambda: replies, what="the reply")
    assert replies == [b"mandatory-reply"]


def test_each_request_sees_the_same_reply_address_for_one_channel(connect):
    cch = connect().channel()
    server = connect().channel()
    rq = server.queue_declare("", exclusive=True).method.queue
    cch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    for i in range(2):
        cch.basic_publish("", rq, b"%d" % i, pika.BasicProperties(reply_to=REPLY_TO))
    a = get_one(server, rq)[1].reply_to
    b = get_one(server, rq)[1].reply_to
    assert a == b


def test_consuming_reply_to_in_ack_mode_fails_with_406(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)
    assert closed(ei) == (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")


def test_publishing_with_reply_to_before_consuming_it_fails_with_406(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish("", q, b"x", pika.BasicProperties(reply_to=REPLY_TO))
        ch.queue_declare(q, passive=True)
    assert closed(ei) == (406, "PRECONDITION_FAILED - fast reply consumer does not exist")


def test_second_reply_to_consumer_on_a_channel_fails_with_406(ch):
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    assert closed(ei) == (406, "PRECONDITION_FAILED - reply consumer already set")


def test_declaring_the_reply_to_pseudo_queue_reports_one_consumer(ch):
    for passive in (True, False):
        ok = ch.queue_declare(REPLY_TO, passive=passive).method
        assert (ok.queue, ok.message_count, ok.consumer_count) == (REPLY_TO, 0, 1)


def test_basic_get_on_the_reply_to_pseudo_queue_fails_with_404(ch):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_get(REPLY_TO)
    assert closed(ei) == (404, "NOT_FOUND - no queue 'amq.rabbitmq.reply-to' in vhost '/'")


def test_reply_to_an_unknown_or_gone_requester_is_unroutable(connect):
    server = connect().channel()
    server.confirm_delivery()
    with pytest.raises(UnroutableError):
        server.basic_publish("", REPLY_TO + ".bogus", b"x", mandatory=True)

    client = connect()
    cch = client.channel()
    rq = server.queue_declare("", exclusive=True).method.queue
    cch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    cch.basic_publish("", rq, b"req", pika.BasicProperties(reply_to=REPLY_TO))
    address = get_one(server, rq)[1].reply_to
    client.close()
    with pytest.raises(UnroutableError):
        server.basic_publish("", address, b"late", mandatory=True)


def test_rpc_with_an_exclusive_reply_queue_and_correlation_ids(connect):
    """The classic pattern: the caller's own exclusive, server-named reply queue; replies
    matched by correlation_id, including one for a request the caller no longer tracks."""
    import threading

    server = connect().channel()
    rq = server.queue_declare("", exclusive=True).method.queue

    def serve():
        for method, props, body in server.consume(rq, inactivity_timeout=5):
            if method is None:
                return
            server.basic_publish("", props.reply_to, body.upper(),
                                 pika.BasicProperties(correlation_id=props.correlation_id))
            server.basic_ack(method.delivery_tag)
            if body == b"last":
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    caller = connect().channel()
    reply_q = caller.queue_declare("", exclusive=True).method.queue
    caller.confirm_delivery()
    for i, body in enumerate([b"one", b"two", b"last"]):
        caller.basic_publish("", rq, body, pika.BasicProperties(reply_to=reply_q,
                                                                correlation_id=f"c{i}"))
    got = {}
    for method, props, body in caller.consume(reply_q, auto_ack=True, inactivity_timeout=5):
        assert method is not None, f"replies missing: got {got}"
        got[props.correlation_id] = body
        if len(got) == 3:
            break
    t.join(5)
    assert got == {"c0": b"ONE", "c1": b"TWO", "c2": b"LAST"}
