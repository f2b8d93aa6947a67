"""basic.*: consume, ack/nack/reject, get, qos, priorities, cancel, recover, properties, bodies.

Expected codes and texts observed on RabbitMQ 3.10.8."""
import datetime
import decimal
import struct

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

import rawamqp as R
from helpers import unique, get_one, get_all, bodies, pump, wait_for


def closed(ei):
    return ei.value.args


def new_queue(ch, n=0, name=None, **kw):
    """Declares a queue (exclusive, server-named unless name is given) holding n messages
    b'm0'..; returns its name."""
    if name is None:
        q = ch.queue_declare("", exclusive=True, **kw).method.queue
    else:
        q = ch.queue_declare(name, **kw).method.queue
    if n:
        publish_n(ch, q, n)
    return q


def publish_n(ch, q, n, start=0):
    ch.confirm_delivery()  # idempotent in pika
    for i in range(start, start + n):
        ch.basic_publish("", q, b"m%d" % i)


class Collector:
    """A consumer callback that records deliveries."""

    def __init__(self, ch=None, ack=False):
        self.got = []
        self.ch = ch
        self.ack = ack

    def __call__(self, ch, method, props, body):
        self.got.append((method, props, body))
        if self.ack:
            ch.basic_ack(method.delivery_tag)

    @property
    def bodies(self):
        return [b for _, _, b in self.got]


# ----------------------------------------------------------------------------- consume / ack

def test_consumer_receives_messages_in_order_and_acks_remove_them(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 5)
    col = Collector(ack=True)
    tag = ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 5)
    assert col.bodies == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.delivery_tag for m, _, _ in col.got] == [1, 2, 3, 4, 5]
    assert all(m.consumer_tag == tag and not m.redelivered and m.routing_key == q
               and m.exchange == "" for m, _, _ in col.got)
    ch.basic_cancel(tag)
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_server_generates_an_amq_ctag_when_the_consumer_tag_is_empty(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
        q = c.expect(R.QUEUE_DECLARE_OK).args().shortstr()
        c.send_method(1, (60, 20), R.short(0) + R.shortstr(q) + R.shortstr("") + b"\x00" + R.table({}))
        tag = c.expect((60, 21)).args().shortstr()
        assert tag.startswith("amq.ctag-")
        assert len(tag) == len("amq.ctag-") + 22


def test_ack_multiple_acknowledges_everything_up_to_the_tag(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 4)
    ms = [ch.basic_get(q)[0] for _ in range(4)]
    ch.basic_ack(ms[2].delivery_tag, multiple=True)
    ch.close()  # only m3 was unacked: it comes back
    ch = c.channel()
    assert [(m.redelivered, b) for m, _, b in get_all(ch, q)] == [(True, b"m3")]


def test_ack_multiple_with_tag_zero_acknowledges_all_outstanding(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 3)
    for _ in range(3):
        ch.basic_get(q)
    ch.basic_ack(0, multiple=True)
    ch.close()
    assert get_all(c.channel(), q) == []


def test_nack_with_requeue_puts_messages_back_in_their_places_marked_redelivered(connect):
    ch = connect().channel()
    q = new_queue(ch, 5)
    ms = [ch.basic_get(q)[0] for _ in range(4)]
    ch.basic_nack(ms[3].delivery_tag, requeue=True)
    ch.basic_nack(ms[1].delivery_tag, requeue=True)
    assert [(m.redelivered, b) for m, _, b in get_all(ch, q)] == [
        (True, b"m1"), (True, b"m3"), (False, b"m4")]


def test_nack_multiple_with_requeue_returns_all_of_them_in_order(connect):
    ch = connect().channel()
    q = new_queue(ch, 3)
    ms = [ch.basic_get(q)[0] for _ in range(3)]
    ch.basic_nack(ms[2].delivery_tag, multiple=True, requeue=True)
    got = get_all(ch, q)
    assert [(m.redelivered, b) for m, _, b in got] == [(True, b"m0"), (True, b"m1"), (True, b"m2")]


def test_nack_without_requeue_drops_the_message(connect):
    ch = connect().channel()
    q = new_queue(ch, 3)
    ms = [ch.basic_get(q)[0] for _ in range(2)]
    ch.basic_nack(ms[1].delivery_tag, multiple=True, requeue=False)
    assert bodies(ch, q) == [b"m2"]
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_reject_with_requeue_redelivers_and_without_requeue_drops(connect):
    ch = connect().channel()
    q = new_queue(ch, 2)
    m0 = ch.basic_get(q)[0]
    ch.basic_reject(m0.delivery_tag, requeue=True)
    m0b, _, body = ch.basic_get(q)
    assert (body, m0b.redelivered) == (b"m0", True)
    ch.basic_reject(m0b.delivery_tag, requeue=False)
    assert bodies(ch, q) == [b"m1"]


def test_consumer_sees_redelivered_flag_after_a_requeue(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 1)
    first = []
    tag = ch.basic_consume(q, lambda ch_, m, p, b: first.append(m))
    pump(c, lambda: first)
    ch.basic_nack(first[0].delivery_tag, requeue=True)
    pump(c, lambda: len(first) == 2)
    assert [m.redelivered for m in first] == [False, True]
    assert first[1].delivery_tag == 2
    ch.basic_ack(first[1].delivery_tag)
    ch.basic_cancel(tag)


# ----------------------------------------------------------------------------- ack errors

def test_acking_an_unknown_delivery_tag_closes_the_channel_with_406(ch):
    q = new_queue(ch, 1)
    ch.basic_get(q)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_ack(99)
        ch.basic_get(q)
    assert closed(ei) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


def test_acking_twice_closes_the_channel_with_406_unknown_delivery_tag(ch):
    q = new_queue(ch, 1)
    m = ch.basic_get(q)[0]
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_ack(m.delivery_tag)
        ch.basic_get(q)
    assert closed(ei) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


@pytest.mark.parametrize("op", ["nack", "reject", "ack_multiple", "ack_zero"])
def test_nack_reject_and_multiple_ack_of_unknown_tags_close_with_406(ch, op):
    q = new_queue(ch)
    tag = {"nack": 77, "reject": 55, "ack_multiple": 42, "ack_zero": 0}[op]
    with pytest.raises(ChannelClosedByBroker) as ei:
        if op == "nack":
            ch.basic_nack(tag)
        elif op == "reject":
            ch.basic_reject(tag)
        elif op == "ack_multiple":
            ch.basic_ack(tag, multiple=True)
        else:
            ch.basic_ack(0)
        ch.basic_get(q)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")


def test_acking_an_auto_acked_get_is_an_unknown_delivery_tag(ch):
    q = new_queue(ch, 1)
    m = ch.basic_get(q, auto_ack=True)[0]
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_ack(m.delivery_tag)
        ch.basic_get(q)
    assert closed(ei) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_delivery_tags_are_per_channel(connect):
    c = connect()
    ch1, ch2 = c.channel(), c.channel()
    q = new_queue(ch1, 2)
    assert ch1.basic_get(q)[0].delivery_tag == 1
    assert ch2.basic_get(q)[0].delivery_tag == 1


# ----------------------------------------------------------------------------- basic.get

def test_get_returns_message_count_of_remaining_messages_and_get_empty_at_the_end(ch):
    q = new_queue(ch, 3)
    counts = []
    for _ in range(3):
        m, _, _ = ch.basic_get(q, auto_ack=True)
        counts.append(m.message_count)
        assert (m.exchange, m.routing_key, m.redelivered) == ("", q, False)
    assert counts == [2, 1, 0]
    assert ch.basic_get(q) == (None, None, None)


def test_get_from_a_missing_queue_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_get(name)
    assert closed(ei) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_consume_from_a_missing_queue_fails_with_404(ch):
    name = unique("missing")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_consume(name, lambda *a: None)
    assert closed(ei) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


# ----------------------------------------------------------------------------- requeue on close

def test_unacked_messages_are_requeued_in_order_when_the_channel_closes(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 5)
    for _ in range(3):
        ch.basic_get(q)
    ch.close()
    got = get_all(c.channel(), q)
    assert [(m.redelivered, b) for m, _, b in got] == [
        (True, b"m0"), (True, b"m1"), (True, b"m2"), (False, b"m3"), (False, b"m4")]


def test_unacked_consumer_deliveries_are_requeued_in_order_when_the_connection_closes(connect):
    owner = connect()
    ch = owner.channel()
    q = new_queue(ch, 0, name=unique("q"))
    publish_n(ch, q, 4)
    col = Collector()
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(q, col)
    pump(owner, lambda: len(col.got) == 3)
    owner.close()
    other = connect().channel()
    wait_for(lambda: other.queue_declare(q, passive=True).method.message_count == 4,
             what="4 messages requeued")
    got = get_all(other, q)
    assert [(m.redelivered, b) for m, _, b in got] == [
        (True, b"m0"), (True, b"m1"), (True, b"m2"), (False, b"m3")]
    other.queue_delete(q)


# ----------------------------------------------------------------------------- qos

def test_prefetch_count_limits_unacked_deliveries_per_consumer(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 10)
    ch.basic_qos(prefetch_count=2)  # global=False: each consumer gets 2
    a, b = Collector(), Collector()
    ch.basic_consume(q, a)
    ch.basic_consume(q, b)
    pump(c, lambda: len(a.got) == 2 and len(b.got) == 2)
    c.process_data_events(time_limit=0.2)
    assert (len(a.got), len(b.got)) == (2, 2)
    ch.basic_ack(a.got[0][0].delivery_tag)
    pump(c, lambda: len(a.got) == 3)
    c.process_data_events(time_limit=0.2)
    assert (len(a.got), len(b.got)) == (3, 2)
    assert ch.queue_declare(q, passive=True).method.message_count == 5


def test_global_prefetch_count_is_shared_by_all_consumers_on_the_channel(connect):
    c = connect()
    ch = c.channel()
    q1 = new_queue(ch, 10)
    q2 = new_queue(ch, 10)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    a, b = Collector(), Collector()
    ch.basic_consume(q1, a)
    ch.basic_consume(q2, b)
    pump(c, lambda: len(a.got) + len(b.got) == 3)
    c.process_data_events(time_limit=0.2)
    assert len(a.got) + len(b.got) == 3
    ch.basic_ack(0, multiple=True)
    pump(c, lambda: len(a.got) + len(b.got) == 6)
    c.process_data_events(time_limit=0.2)
    assert len(a.got) + len(b.got) == 6


def test_multiple_ack_frees_prefetch_slots(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 6)
    ch.basic_qos(prefetch_count=3)
    col = Collector()
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 3)
    ch.basic_ack(col.got[-1][0].delivery_tag, multiple=True)
    pump(c, lambda: len(col.got) == 6)
    assert col.bodies == [b"m%d" % i for i in range(6)]


def test_prefetch_size_is_not_implemented_540(ch):
    with pytest.raises(ConnectionClosedByBroker) as ei:
        ch.basic_qos(prefetch_size=1000)
    assert closed(ei) == (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)")


def test_consumer_with_higher_x_priority_gets_messages_while_it_has_capacity(connect):
    c = connect()
    ch_low, ch_high = c.channel(), c.channel()
    q = new_queue(ch_low)
    ch_high.basic_qos(prefetch_count=3)
    low, high = Collector(), Collector()
    ch_low.basic_consume(q, low, arguments={"x-priority": 1})
    ch_high.basic_consume(q, high, arguments={"x-priority": 10})
    publish_n(ch_low, q, 5)
    pump(c, lambda: len(high.got) == 3 and len(low.got) == 2)
    assert high.bodies == [b"m0", b"m1", b"m2"]
    assert low.bodies == [b"m3", b"m4"]


# ----------------------------------------------------------------------------- exclusive consumers

def test_second_consumer_on_an_exclusively_consumed_queue_is_refused_with_403(connect):
    ch = connect().channel()
    q = new_queue(ch, name=unique("q"), auto_delete=True)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    other = connect().channel()
    with pytest.raises(ChannelClosedByBroker) as ei:
        other.basic_consume(q, lambda *a: None)
    assert closed(ei) == (403, f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")


def test_exclusive_consume_on_a_queue_with_consumers_is_refused_with_403(connect):
    ch = connect().channel()
    q = new_queue(ch, name=unique("q"), auto_delete=True)
    ch.basic_consume(q, lambda *a: None)
    other = connect().channel()
    with pytest.raises(ChannelClosedByBroker) as ei:
        other.basic_consume(q, lambda *a: None, exclusive=True)
    assert closed(ei) == (403, f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")


def test_exclusive_consumer_blocks_even_its_own_channel(connect):
    ch = connect().channel()
    q = new_queue(ch)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_consume(q, lambda *a: None)
    assert closed(ei) == (403, f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")


def test_reusing_a_consumer_tag_on_a_channel_closes_the_connection_with_530(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
        q = c.expect(R.QUEUE_DECLARE_OK).args().shortstr()
        consume = R.short(0) + R.shortstr(q) + R.shortstr("ctag") + b"\x00" + R.table({})
        c.send_method(1, (60, 20), consume)
        c.expect((60, 21))
        c.send_method(1, (60, 20), consume)
        assert c.read_close() == (530, "NOT_ALLOWED - attempt to reuse consumer tag 'ctag'", 60, 20)


# ----------------------------------------------------------------------------- cancel

def test_cancelled_consumer_gets_no_more_messages(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 1)
    col = Collector(ack=True)
    tag = ch.basic_consume(q, col)
    pump(c, lambda: col.got)
    ch.basic_cancel(tag)
    publish_n(ch, q, 1, start=1)
    c.process_data_events(time_limit=0.2)
    assert col.bodies == [b"m0"]
    assert bodies(ch, q) == [b"m1"]


def test_cancelling_an_unknown_consumer_tag_is_ok(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, (60, 30), R.shortstr("no-such-tag") + b"\x00")
        ok = c.expect((60, 31))
        assert ok.args().shortstr() == "no-such-tag"


def test_deleting_a_queue_sends_basic_cancel_to_its_consumers(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, name=unique("q"))
    cancels = []
    ch.add_on_cancel_callback(lambda frame: cancels.append(frame))
    tag = ch.basic_consume(q, lambda *a: None)
    connect().channel().queue_delete(q)
    pump(c, lambda: cancels, what="basic.cancel from the broker")
    assert isinstance(cancels[0].method, pika.spec.Basic.Cancel)
    assert cancels[0].method.consumer_tag == tag
    assert ch.is_open


# ----------------------------------------------------------------------------- recover

def test_recover_with_requeue_redelivers_unacked_messages(connect):
    c = connect()
    ch = c.channel()
    q = new_queue(ch, 2)
    col = Collector()
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 2)
    ch.basic_recover(requeue=True)
    pump(c, lambda: len(col.got) == 4)
    assert [(m.redelivered, b) for m, _, b in col.got[2:]] == [(True, b"m0"), (True, b"m1")]


def test_recover_without_requeue_is_not_implemented_540(ch):
    with pytest.raises(ConnectionClosedByBroker) as ei:
        ch.basic_recover(requeue=False)
    assert closed(ei) == (540, "NOT_IMPLEMENTED - requeue=false")


# ----------------------------------------------------------------------------- properties

ALL_PROPERTIES = dict(
    content_type="application/json", content_encoding="gzip", delivery_mode=2, priority=7,
    correlation_id="corr-1", reply_to="reply.q", expiration="60000", message_id="msg-1",
    timestamp=1700000000, type="order.created", user_id="guest", app_id="shop",
    cluster_id="cluster-a",
)


def test_all_fourteen_basic_properties_round_trip(ch):
    q = new_queue(ch)
    # pika 1.2 cannot encode floats: the raw test below covers every field type
    headers = {
        "str": "text", "int": 42, "neg": -7, "big": 2 ** 40, "bool_t": True, "bool_f": False,
        "dec": decimal.Decimal("3.14"), "bytes": b"\x00\xffraw",
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5), "none": None,
        "nested": {"a": {"b": [1, "two", {"c": True}]}},
        "array": [1, "x", [2, 3], {"k": "v"}, None],
    }
    props = pika.BasicProperties(headers=headers, **ALL_PROPERTIES)
    ch.basic_publish("", q, b"payload", props)
    m, p, body = get_one(ch, q)
    assert body == b"payload"
    for k, v in ALL_PROPERTIES.items():
        assert getattr(p, k) == v, k
    assert p.headers == headers


def test_unset_properties_stay_unset(ch):
    q = new_queue(ch)
    ch.basic_publish("", q, b"x")
    _, p, _ = get_one(ch, q)
    for k in list(ALL_PROPERTIES) + ["headers"]:
        assert getattr(p, k) is None, k


def test_user_id_other_than_the_authenticated_user_is_refused_with_406(ch):
    q = new_queue(ch)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="bob"))
        ch.queue_declare(q, passive=True)
    assert closed(ei) == (406, "PRECONDITION_FAILED - user_id property set to 'bob' but "
                               "authenticated user was 'guest'")


def test_unknown_delivery_mode_is_refused_with_406(ch):
    q = new_queue(ch)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish("", q, b"x", pika.BasicProperties(delivery_mode=5))
        ch.queue_declare(q, passive=True)
    assert closed(ei) == (406, "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,5}")


def _every_field_type_table():
    """A headers table using every AMQP field type RabbitMQ knows, encoded by hand."""
    def kv(name, tag, payload):
        return R.shortstr(name) + tag + payload

    inner = R.table({"deep": "yes"})
    array_body = b"I" + struct.pack(">i", -5) + b"S" + R.longstr("in-array") + b"F" + inner
    body = b"".join([
        kv("t", b"t", b"\x01"),
        kv("b", b"b", struct.pack(">b", -3)),
        kv("B", b"B", struct.pack(">B", 250)),
        kv("s", b"s", struct.pack(">h", -300)),
        kv("u", b"u", struct.pack(">H", 65000)),
        kv("I", b"I", struct.pack(">i", -70000)),
        kv("i", b"i", struct.pack(">I", 4000000000)),
        kv("l", b"l", struct.pack(">q", -(2 ** 40))),
        kv("f", b"f", struct.pack(">f", 2.5)),
        kv("d", b"d", struct.pack(">d", -1.25)),
        kv("D", b"D", b"\x02" + struct.pack(">i", 314)),
        kv("S", b"S", R.longstr("long string")),
        kv("x", b"x", R.longstr(b"\x00\x01bytes")),
        kv("A", b"A", R.long_(len(array_body)) + array_body),
        kv("T", b"T", struct.pack(">Q", 1700000000)),
        kv("F", b"F", inner),
        kv("V", b"V", b""),
    ])
    return R.long_(len(body)) + body


def test_content_header_with_every_field_type_is_delivered_byte_for_byte(broker):
    props = (R.shortstr("text/plain") + R.shortstr("identity") + _every_field_type_table()
             + R.octet(1) + R.octet(9) + R.shortstr("corr") + R.shortstr("rq") + R.shortstr("5000")
             + R.shortstr("mid") + R.longlong(1700000001) + R.shortstr("typ") + R.shortstr("guest")
             + R.shortstr("app") + R.shortstr("cid"))
    flags = 0
    for _, bit in R.PROPERTY_FLAGS:
        flags |= bit
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
        q = c.expect(R.QUEUE_DECLARE_OK).args().shortstr()
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "", q, b"hello", flags=flags, props=props))
        ack = c.expect(R.BASIC_ACK)
        assert ack.args().longlong() == 1
        got = R.basic_get(c, 1, q)
        assert got is not None
        _, header, body_frames = got
        assert header.payload[12:] == struct.pack(">H", flags) + props
        assert b"".join(f.payload for f in body_frames) == b"hello"


# ----------------------------------------------------------------------------- bodies

def test_empty_body_round_trips(ch):
    q = new_queue(ch)
    ch.basic_publish("", q, b"")
    m, _, body = get_one(ch, q)
    assert body == b""


def test_empty_body_is_sent_with_no_body_frames(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
        q = c.expect(R.QUEUE_DECLARE_OK).args().shortstr()
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "", q, b""))
        c.expect(R.BASIC_ACK)
        _, header, frames = R.basic_get(c, 1, q)
        assert struct.unpack(">Q", header.payload[4:12])[0] == 0
        assert frames == []


def test_one_mebibyte_body_round_trips_across_many_frames(ch):
    q = new_queue(ch)
    body = bytes(i % 251 for i in range(1 << 20))
    ch.basic_publish("", q, body)
    _, _, got = get_one(ch, q)
    assert got == body


def test_large_body_is_delivered_in_frames_no_larger_than_the_negotiated_frame_max(broker):
    body = bytes(i % 253 for i in range(20000))
    with R.connect(broker, frame_max=4096) as c:
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
        q = c.expect(R.QUEUE_DECLARE_OK).args().shortstr()
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "", q, body, frame_max=4096))
        c.expect(R.BASIC_ACK)
        _, header, frames = R.basic_get(c, 1, q)
        assert all(len(f.payload) <= 4096 - 8 for f in frames)
        assert len(frames) == 5
        assert b"".join(f.payload for f in frames) == body
