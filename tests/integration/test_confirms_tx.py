"""Publisher confirms and transactions (RabbitMQ 3.10 behaviour)."""
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

import rawamqp as R
from helpers import unique, get_all, bodies


def closed(ei):
    return ei.value.args


def raw_queue(c, channel=1):
    c.send_method(channel, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + b"\x08" + R.table({}))
    return c.expect(R.QUEUE_DECLARE_OK).args().shortstr()


def read_confirms(c, until_tag):
    """Reads basic.ack/nack frames until until_tag is confirmed: [(method, tag, multiple)]."""
    out = []
    while True:
        f = c.read_method()
        assert f.method in (R.BASIC_ACK, (60, 120)), f
        r = f.args()
        tag, multiple = r.longlong(), r.octet() & 1
        out.append((f.method, tag, multiple))
        if tag >= until_tag:
            return out


def confirmed_tags(confirms):
    done, last = [], 0
    for _, tag, multiple in confirms:
        assert tag > last, f"confirm tags must increase: {confirms}"
        done.extend(range(last + 1, tag + 1) if multiple else [tag])
        last = tag
    return done


def test_confirm_select_ok_and_every_publish_is_acked_once_in_order(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        q = raw_queue(c)
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        n = 200
        c.send(b"".join(R.publish_frames(1, "", q, b"x%d" % i) for i in range(n)))
        confirms = read_confirms(c, n)
        assert all(m == R.BASIC_ACK for m, _, _ in confirms)
        # acks may be coalesced with multiple=true, but each tag is confirmed exactly once
        assert sorted(confirmed_tags(confirms)) == list(range(1, n + 1))
        assert len(confirmed_tags(confirms)) == n


def test_confirm_select_nowait_sends_no_select_ok_but_confirms(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        q = raw_queue(c)
        c.send_method(1, R.CONFIRM_SELECT, b"\x01")
        c.send(R.publish_frames(1, "", q, b"one"))
        f = c.read_method()
        assert f.method == R.BASIC_ACK
        assert f.args().longlong() == 1


def test_unroutable_mandatory_publish_is_returned_before_it_is_acked(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "amq.direct", unique("nowhere"), b"bounce", mandatory=True))
        ret = c.read_method()
        assert ret.method == (60, 50)
        r = ret.args()
        assert (r.short(), r.shortstr()) == (312, "NO_ROUTE")
        R.read_content(c)
        ack = c.read_method()
        assert ack.method == R.BASIC_ACK
        assert ack.args().longlong() == 1


def test_unroutable_non_mandatory_publish_is_acked(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.CONFIRM_SELECT, b"\x00")
        c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "amq.direct", unique("nowhere"), b"dropped"))
        ack = c.read_method()
        assert ack.method == R.BASIC_ACK
        assert ack.args().longlong() == 1


def test_pika_confirmed_publishes_are_all_in_the_queue(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for i in range(20):
        ch.basic_publish("", q, b"%d" % i)
    assert ch.queue_declare(q, passive=True).method.message_count == 20


def test_delivery_tags_of_confirms_count_per_channel(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.open_channel(2)
        q = raw_queue(c)
        for chn in (1, 2):
            c.send_method(chn, R.CONFIRM_SELECT, b"\x00")
            c.expect(R.CONFIRM_SELECT_OK)
        c.send(R.publish_frames(1, "", q, b"a"))
        c.send(R.publish_frames(2, "", q, b"b"))
        seen = {}
        while len(seen) < 2:
            f = c.read_method()
            assert f.method == R.BASIC_ACK
            seen[f.channel] = f.args().longlong()
        assert seen == {1: 1, 2: 1}


# ----------------------------------------------------------------------------- transactions

def test_tx_publishes_are_invisible_until_commit(connect):
    c = connect()
    tx = c.channel()
    q = tx.queue_declare("", exclusive=True).method.queue
    tx.tx_select()
    tx.basic_publish("", q, b"a")
    tx.basic_publish("", q, b"b")
    observer = c.channel()
    assert observer.queue_declare(q, passive=True).method.message_count == 0
    assert observer.basic_get(q)[0] is None
    tx.tx_commit()
    assert bodies(observer, q) == [b"a", b"b"]


def test_tx_rollback_discards_publishes(connect):
    c = connect()
    tx = c.channel()
    q = tx.queue_declare("", exclusive=True).method.queue
    tx.tx_select()
    tx.basic_publish("", q, b"discarded")
    tx.tx_rollback()
    tx.basic_publish("", q, b"kept")
    tx.tx_commit()
    assert bodies(c.channel(), q) == [b"kept"]


def test_tx_channel_stays_transactional_after_commit(connect):
    c = connect()
    tx = c.channel()
    q = tx.queue_declare("", exclusive=True).method.queue
    tx.tx_select()
    tx.basic_publish("", q, b"1")
    tx.tx_commit()
    tx.basic_publish("", q, b"2")
    observer = c.channel()
    assert bodies(observer, q) == [b"1"]
    tx.tx_commit()
    assert bodies(observer, q) == [b"2"]


def test_tx_acks_take_effect_on_commit_and_are_dropped_on_rollback(connect):
    c = connect()
    setup = c.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    setup.confirm_delivery()
    setup.basic_publish("", q, b"m0")
    setup.basic_publish("", q, b"m1")

    tx = c.channel()
    tx.tx_select()
    m0 = tx.basic_get(q)[0]
    m1 = tx.basic_get(q)[0]
    tx.basic_ack(m0.delivery_tag)
    tx.tx_rollback()          # the ack of m0 is forgotten: still unacked
    tx.basic_ack(m1.delivery_tag)
    tx.tx_commit()            # m1 is gone for good
    tx.close()                # m0, still unacked, is requeued
    got = get_all(c.channel(), q)
    assert [(m.redelivered, b) for m, _, b in got] == [(True, b"m0")]


def test_tx_nack_with_requeue_takes_effect_on_commit(connect):
    c = connect()
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"m0")
    tx = c.channel()
    tx.tx_select()
    m0 = tx.basic_get(q)[0]
    tx.basic_nack(m0.delivery_tag, requeue=True)
    assert ch.basic_get(q)[0] is None
    tx.tx_commit()
    got = get_all(ch, q)
    assert [(m.redelivered, b) for m, _, b in got] == [(True, b"m0")]


@pytest.mark.parametrize("op", ["commit", "rollback"])
def test_commit_or_rollback_without_tx_select_fails_with_406(ch, op):
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.tx_commit() if op == "commit" else ch.tx_rollback()
    assert closed(ei) == (406, "PRECONDITION_FAILED - channel is not transactional")


def test_tx_select_on_a_confirm_channel_fails_with_406(ch):
    ch.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.tx_select()
    assert closed(ei) == (406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")


def test_confirm_select_on_a_tx_channel_fails_with_406(ch):
    ch.tx_select()
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.confirm_delivery()
    assert closed(ei) == (406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")


def test_tx_select_twice_is_fine(ch):
    ch.tx_select()
    ch.tx_select()
    ch.tx_commit()
