"""Queue arguments: dead-lettering (x-death), TTL, length limits, expiry, priorities,
single active consumer, CC/BCC — as RabbitMQ 3.10 does them."""
import datetime
import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

from helpers import unique, get_one, bodies, pump, wait_for


def closed(ei):
    return ei.value.args


@pytest.fixture
def dlx(ch):
    """(exchange, queue): a fanout dead-letter exchange with one exclusive queue bound."""
    x = unique("dlx")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, "")
    ch.confirm_delivery()
    yield x, q


def queue(ch, **args):
    name = unique("q")
    ch.queue_declare(name, exclusive=True, arguments=args)
    return name


def assert_recent(ts):
    now = datetime.datetime.utcnow()
    assert abs((now - ts).total_seconds()) < 60, ts


def death(reason, q, keys=None, exchange="", **extra):
    return dict({"count": 1, "reason": reason, "queue": q, "exchange": exchange,
                 "routing-keys": keys or [q]}, **extra)


def strip_time(deaths):
    out = []
    for d in deaths:
        d = dict(d)
        assert isinstance(d.pop("time"), datetime.datetime)
        out.append(d)
    return out


# ----------------------------------------------------------------------------- dead-lettering

def test_rejected_message_is_dead_lettered_with_an_x_death_entry(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"a", pika.BasicProperties(headers={"h": 1}, message_id="m"))
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, body = get_one(ch, dq)
    assert (body, m.exchange, m.routing_key, m.redelivered) == (b"a", x, q, False)
    assert p.message_id == "m"
    h = dict(p.headers)
    deaths = h.pop("x-death")
    assert_recent(deaths[0]["time"])
    assert strip_time(deaths) == [death("rejected", q)]
    assert h == {"h": 1, "x-first-death-exchange": "", "x-first-death-queue": q,
                 "x-first-death-reason": "rejected"}


def test_nacked_message_is_dead_lettered_as_rejected(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"n")
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_nack(m.delivery_tag, requeue=False)
    _, p, _ = get_one(ch, dq)
    assert p.headers["x-first-death-reason"] == "rejected"


def test_requeued_message_is_not_dead_lettered(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"r")
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_nack(m.delivery_tag, requeue=True)
    assert get_one(ch, q)[2] == b"r"
    assert ch.basic_get(dq)[0] is None


def test_dead_letter_routing_key_replaces_the_routing_key(ch):
    target = ch.queue_declare("", exclusive=True).method.queue
    q = queue(ch, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"k")
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, _ = get_one(ch, target)
    assert (m.exchange, m.routing_key) == ("", target)
    assert strip_time(p.headers["x-death"]) == [death("rejected", q)]


def test_message_expired_by_queue_ttl_is_dead_lettered_as_expired(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-message-ttl": 50, "x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"t")
    m, p, _ = get_one(ch, dq)
    assert m.routing_key == q
    assert strip_time(p.headers["x-death"]) == [death("expired", q)]
    assert p.headers["x-first-death-reason"] == "expired"


def test_per_message_expiration_dead_letters_with_original_expiration_and_drops_the_property(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"e", pika.BasicProperties(expiration="50"))
    _, p, _ = get_one(ch, dq)
    assert p.expiration is None
    assert strip_time(p.headers["x-death"]) == [death("expired", q, **{"original-expiration": "50"})]


def test_the_shorter_of_queue_ttl_and_message_expiration_applies(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-message-ttl": 50, "x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"e", pika.BasicProperties(expiration="60000"))
    _, p, _ = get_one(ch, dq)
    assert p.expiration is None
    assert strip_time(p.headers["x-death"]) == [
        death("expired", q, **{"original-expiration": "60000"})]


def test_message_with_expiration_zero_is_not_delivered_to_a_later_get(ch):
    q = queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"gone", pika.BasicProperties(expiration="0"))
    assert ch.basic_get(q)[0] is None


def test_unexpired_messages_are_delivered_normally(ch):
    q = queue(ch, **{"x-message-ttl": 60000})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fresh", pika.BasicProperties(expiration="60000"))
    _, p, b = get_one(ch, q)
    assert (b, p.expiration) == (b"fresh", "60000")


def test_x_death_counts_repeated_deaths_and_puts_the_latest_first(ch):
    q1, q2 = unique("q1"), unique("q2")
    ch.queue_declare(q1, exclusive=True,
                     arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2})
    ch.queue_declare(q2, exclusive=True,
                     arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1})
    ch.confirm_delivery()
    ch.basic_publish("", q1, b"loop")
    for q in (q1, q2, q1):
        m = get_one(ch, q, auto_ack=False)[0]
        ch.basic_reject(m.delivery_tag, requeue=False)
    _, p, _ = get_one(ch, q2)
    assert strip_time(p.headers["x-death"]) == [
        dict(death("rejected", q1), count=2), death("rejected", q2)]
    assert (p.headers["x-first-death-queue"], p.headers["x-first-death-reason"]) == (q1, "rejected")


def test_an_automatic_dead_letter_cycle_is_dropped_instead_of_looping(ch):
    """q1 and q2 expire into each other; with no rejection in the cycle, RabbitMQ drops the
    message when it would come back to a queue it already died in."""
    q1, q2, seen = unique("q1"), unique("q2"), unique("seen")
    ch.queue_declare(seen, exclusive=True)
    ch.queue_declare(q1, exclusive=True, arguments={
        "x-message-ttl": 30, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2})
    ch.queue_declare(q2, exclusive=True, arguments={
        "x-message-ttl": 30, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1})
    ch.confirm_delivery()
    ch.basic_publish("", q1, b"round")
    time.sleep(0.5)   # many TTLs: a loop would still be going
    for q in (q1, q2):
        assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_dead_lettering_keeps_cc_header_and_records_cc_routing_keys(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-dead-letter-exchange": x})
    other = queue(ch)
    ch.basic_publish("", q, b"cc", pika.BasicProperties(headers={"CC": [other]}))
    assert get_one(ch, other)[2] == b"cc"
    m = get_one(ch, q, auto_ack=False)[0]
    ch.basic_reject(m.delivery_tag, requeue=False)
    _, p, _ = get_one(ch, dq)
    assert p.headers["CC"] == [other]
    assert strip_time(p.headers["x-death"]) == [death("rejected", q, keys=[q, other])]


def test_cc_and_bcc_headers_add_routing_keys_and_bcc_is_removed(ch):
    a, b, c = queue(ch), queue(ch), queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", a, b"x", pika.BasicProperties(headers={"CC": [b], "BCC": [c]}))
    for q in (a, b, c):
        _, p, body = get_one(ch, q)
        assert body == b"x"
        assert p.headers == {"CC": [b]}


# ----------------------------------------------------------------------------- length limits

def test_max_length_drops_from_the_head_by_default(ch):
    q = queue(ch, **{"x-max-length": 2})
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    assert bodies(ch, q) == [b"3", b"4"]


def test_max_length_bytes_counts_body_bytes(ch):
    q = queue(ch, **{"x-max-length-bytes": 10})
    ch.confirm_delivery()
    for i in range(4):
        ch.basic_publish("", q, b"1234%d" % i)
    assert bodies(ch, q) == [b"12342", b"12343"]


def test_max_length_drop_head_dead_letters_as_maxlen(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-max-length": 1, "x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"old")
    ch.basic_publish("", q, b"new")
    _, p, body = get_one(ch, dq)
    assert body == b"old"
    assert strip_time(p.headers["x-death"]) == [death("maxlen", q)]
    assert bodies(ch, q) == [b"new"]


def test_reject_publish_overflow_nacks_the_new_message(ch):
    q = queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"kept")
    with pytest.raises(NackError):
        ch.basic_publish("", q, b"refused")
    assert bodies(ch, q) == [b"kept"]


def test_reject_publish_dlx_overflow_nacks_and_dead_letters_the_new_message(ch, dlx):
    x, dq = dlx
    q = queue(ch, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                     "x-dead-letter-exchange": x})
    ch.basic_publish("", q, b"kept")
    with pytest.raises(NackError):
        ch.basic_publish("", q, b"refused")
    _, p, body = get_one(ch, dq)
    assert body == b"refused"
    assert strip_time(p.headers["x-death"]) == [death("maxlen", q)]


# ----------------------------------------------------------------------------- expiry, priority

def test_unused_queue_with_x_expires_is_deleted(ch):
    q = unique("q")
    ch.queue_declare(q, arguments={"x-expires": 300})
    ch.confirm_delivery()
    t0 = time.monotonic()

    def gone():  # publishing does not count as using the queue
        try:
            ch.basic_publish("", q, b"probe", mandatory=True)
            return False
        except UnroutableError:
            return True

    wait_for(gone, timeout=10, interval=0.05, what="queue expiry")
    assert time.monotonic() - t0 >= 0.25


def test_priority_queue_delivers_higher_priorities_first_capped_at_x_max_priority(ch):
    q = queue(ch, **{"x-max-priority": 10})
    ch.confirm_delivery()
    for pr in [1, 5, None, 10, 20, 5]:
        ch.basic_publish("", q, str(pr).encode(), pika.BasicProperties(priority=pr))
    assert bodies(ch, q) == [b"10", b"20", b"5", b"5", b"1", b"None"]


def test_single_active_consumer_gets_everything_until_it_cancels(conn):
    ch = conn.channel()
    q = queue(ch, **{"x-single-active-consumer": True})
    a, b = [], []
    ta = ch.basic_consume(q, lambda c_, m, p, body: a.append(body), auto_ack=True)
    ch.basic_consume(q, lambda c_, m, p, body: b.append(body), auto_ack=True)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    pump(conn, lambda: len(a) == 3)
    ch.basic_cancel(ta)
    ch.basic_publish("", q, b"3")
    pump(conn, lambda: b == [b"3"])
    assert a == [b"0", b"1", b"2"]


# ----------------------------------------------------------------------------- invalid arguments

@pytest.mark.parametrize("args,detail", [
    ({"x-overflow": "bogus"}, "invalid_overflow"),
    ({"x-max-length": -1}, "{value_negative,-1}"),
    ({"x-max-priority": 300}, "{max_value_exceeded,300}"),
    ({"x-expires": 0}, "{value_zero,0}"),
    ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined"),
    ({"x-max-length-bytes": "x"}, "\"expected integer, got longstr\""),
    ({"x-single-active-consumer": "yes"}, "{unacceptable_type,longstr}"),
])
def test_invalid_feature_arguments_fail_with_406_invalid_arg(ch, args, detail):
    q = unique("q")
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.queue_declare(q, arguments=args)
    arg = next(iter(args))
    assert closed(ei) == (406, f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{q}' in "
                               f"vhost '/': {detail}")


@pytest.mark.parametrize("expiration,detail", [
    ("abc", "no_integer"),
    ("-5", "{value_negative,-5}"),
])
def test_invalid_expiration_property_fails_with_406(ch, expiration, detail):
    q = queue(ch)
    with pytest.raises(ChannelClosedByBroker) as ei:
        ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
        ch.queue_declare(q, passive=True)
    assert closed(ei) == (406, f"PRECONDITION_FAILED - invalid expiration '{expiration}': {detail}")
