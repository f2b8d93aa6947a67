"""Short strings that are not UTF-8 in a method's arguments: RabbitMQ closes the connection
with 501 FRAME_ERROR "Malformed UTF-8 in shortstr" (class 0, method 0) for any method but
basic.publish, whose exchange and routing key it takes as bytes. What RabbitMQ 3.10 counts as
malformed was pinned here against it: bytes that cannot start or continue a sequence, truncated
and overlong sequences, 5-byte forms; it takes surrogates and 4-byte forms up to lead 0xF7."""
import pytest

import rawamqp as R

BAD = b"q-\xff\xfe"
TEXT = "FRAME_ERROR - Malformed UTF-8 in shortstr"


def raw_shortstr(b):
    return bytes([len(b)]) + b


@pytest.mark.parametrize("bad", [b"q-\xff", b"q-\xc0\xaf", b"q-\xe2\x82", b"q-\x80",
                                 b"q-\xe0\x80\xaf", b"q-\xf0\x80\x80\xaf", b"q-\xf8\x88\x80\x80\x80"],
                         ids=["invalid-byte", "overlong", "truncated", "lone-continuation",
                              "overlong-3", "overlong-4", "5-byte"])
def test_a_queue_name_that_is_not_utf8_closes_the_connection(broker, bad):
    with R.connect(broker) as c:
        c.open_channel(1)
        args = R.short(0) + raw_shortstr(bad) + R.octet(0) + R.table({})
        c.send_method(1, R.QUEUE_DECLARE, args)
        assert c.read_close() == (501, TEXT, 0, 0)


def test_an_exchange_name_that_is_not_utf8_in_a_bind_closes_the_connection(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        args = (R.short(0) + R.shortstr("some-q") + raw_shortstr(BAD) + R.shortstr("k")
                + R.octet(0) + R.table({}))
        c.send_method(1, (50, 20), args)
        assert c.read_close() == (501, TEXT, 0, 0)


@pytest.mark.parametrize("name", ["q-é-€-😀".encode(), b"q-\xed\xa0\x80", b"q-\xf4\x90\x80\x80",
                                  b"q-\xf5\x80\x80\x80"],
                         ids=["multibyte", "surrogate-as-rabbitmq-takes-it",
                              "above-10ffff-as-rabbitmq-takes-it", "f5-lead-as-rabbitmq-takes-it"])
def test_valid_multibyte_utf8_is_fine(broker, name):
    with R.connect(broker) as c:
        c.open_channel(1)
        args = R.short(0) + raw_shortstr(name) + R.octet(0b01000) + R.table({})  # auto-delete
        c.send_method(1, R.QUEUE_DECLARE, args)
        f = c.expect(R.QUEUE_DECLARE_OK)
        assert f.args().take(1 + len(name))[1:] == name


def test_basic_publish_takes_a_routing_key_that_is_not_utf8(broker):
    with R.connect(broker) as c:
        c.open_channel(1)
        c.send_method(1, R.BASIC_PUBLISH, R.short(0) + R.shortstr("") + raw_shortstr(BAD)
                      + R.octet(0))
        c.send(R.content_header_frame(1, 1) + R.body_frame(1, b"x"))
        # the connection is still there: a declare after it is answered
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("") + R.octet(0b01010)
                      + R.table({}))
        c.expect(R.QUEUE_DECLARE_OK)
