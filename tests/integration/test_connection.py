"""Connection-level behaviour: authentication, negotiation, protocol errors, heartbeats.

Every expected code and text below was observed on RabbitMQ 3.10.8 (Debian 12)."""
import socket
import time

import amqp
import pika
import pytest

import rawamqp as R
from helpers import unique, get_one

EXPECTED_CAPABILITIES = [
    "publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
    "connection.blocked", "consumer_priorities", "authentication_failure_close",
    "per_consumer_qos", "direct_reply_to",
]
LOGIN_REFUSED_PLAIN = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                       "For details see the broker logfile.")
LOGIN_REFUSED_AMQPLAIN = ("ACCESS_REFUSED - Login was refused using authentication mechanism "
                          "AMQPLAIN. For details see the broker logfile.")


def params(broker, **kw):
    kw.setdefault("connection_attempts", 1)
    return pika.ConnectionParameters(host=broker.host, port=broker.port, **kw)


def raw(broker, timeout=5.0):
    return R.RawConnection(broker.host, broker.port, timeout=timeout)


def assert_round_trip(broker):
    """A fresh pika connection can still declare, publish and get: the broker is healthy."""
    c = pika.BlockingConnection(params(broker))
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.confirm_delivery()
        ch.basic_publish("", q, b"still-alive")
        assert get_one(ch, q)[2] == b"still-alive"
    finally:
        c.close()


# ----------------------------------------------------------------------------- auth

def test_guest_logs_in_with_plain_through_pika(broker):
    c = pika.BlockingConnection(params(broker))
    assert c.is_open
    c.channel().queue_declare("", exclusive=True)
    c.close()


def test_guest_logs_in_with_amqplain_through_py_amqp(broker):
    c = amqp.Connection(f"{broker.host}:{broker.port}", userid="guest", password="guest",
                        login_method="AMQPLAIN")
    c.connect()
    try:
        assert c.connected
        ch = c.channel()
        ok = ch.queue_declare("", exclusive=True)
        assert ok.queue.startswith("amq.gen-")
    finally:
        c.close()


def test_server_offers_plain_and_amqplain_and_the_en_us_locale(broker):
    with raw(broker) as c:
        c.send(R.PROTOCOL_HEADER)
        f = c.expect(R.CONNECTION_START)
        r = f.args()
        assert (r.octet(), r.octet()) == (0, 9)
        r.table()
        assert r.longstr().split() == [b"PLAIN", b"AMQPLAIN"]
        assert r.longstr() == b"en_US"


def test_wrong_password_is_refused_with_403_and_pika_reports_probable_authentication_error(broker):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(params(broker, credentials=pika.PlainCredentials("guest", "bad")))
    assert ei.value.args == (f"ConnectionClosedByBroker: (403) {LOGIN_REFUSED_PLAIN!r}",)


def test_unknown_user_gets_the_same_refusal_as_a_wrong_password(broker):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(params(broker, credentials=pika.PlainCredentials(unique("u"), "x")))
    assert ei.value.args == (f"ConnectionClosedByBroker: (403) {LOGIN_REFUSED_PLAIN!r}",)


def test_wrong_password_with_amqplain_is_refused_naming_amqplain(broker):
    c = amqp.Connection(f"{broker.host}:{broker.port}", userid="guest", password="bad",
                        login_method="AMQPLAIN")
    with pytest.raises(amqp.exceptions.AccessRefused) as ei:
        c.connect()
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == LOGIN_REFUSED_AMQPLAIN
    assert (ei.value.method_sig) == (0, 0)


def test_wrong_password_gets_connection_close_403_when_client_has_authentication_failure_close(broker):
    with raw(broker) as c:
        assert c.handshake(password="wrong") is None
        assert c.read_close() == (403, LOGIN_REFUSED_PLAIN, 0, 0)
        assert c.wait_closed(5)


def test_unknown_vhost_is_refused_with_530_not_allowed(broker):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as ei:
        pika.BlockingConnection(params(broker, virtual_host="no-such-vhost"))
    assert ei.value.args == ("ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost no-such-vhost not found'",)


def test_unknown_vhost_close_names_connection_open(broker):
    with raw(broker) as c:
        c.handshake(vhost="no-such-vhost", open_ok=False)
        assert c.read_close() == (530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40)


# ----------------------------------------------------------------------------- negotiation

def test_server_properties_advertise_every_rabbitmq_capability(broker):
    c = pika.BlockingConnection(params(broker))
    try:
        caps = c._impl.server_properties["capabilities"]
    finally:
        c.close()
    for name in EXPECTED_CAPABILITIES:
        assert caps.get(name) is True, name


def test_server_proposes_channel_max_2047_frame_max_131072_heartbeat_60(broker):
    with raw(broker) as c:
        tune = c.handshake()
        assert tune == {"channel_max": 2047, "frame_max": 131072, "heartbeat": 60}


def test_pika_without_heartbeat_preference_accepts_the_servers_60_seconds(broker):
    c = pika.BlockingConnection(params(broker))
    try:
        assert c._impl.params.heartbeat == 60
    finally:
        c.close()


def test_pika_asking_for_5_second_heartbeats_negotiates_5(broker):
    c = pika.BlockingConnection(params(broker, heartbeat=5))
    try:
        assert c._impl.params.heartbeat == 5
    finally:
        c.close()


def test_pika_defaults_negotiate_channel_max_2047_and_frame_max_131072(broker):
    c = pika.BlockingConnection(params(broker))
    try:
        assert c._impl.params.channel_max == 2047
        assert c._impl.params.frame_max == 131072
    finally:
        c.close()


def test_smaller_client_channel_max_and_frame_max_win(broker):
    c = pika.BlockingConnection(params(broker, channel_max=10, frame_max=8192))
    try:
        assert c._impl.params.channel_max == 10
        assert c._impl.params.frame_max == 8192
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.confirm_delivery()
        body = bytes(range(256)) * 100  # 25600 bytes: split into several 8 KiB body frames
        ch.basic_publish("", q, body)
        assert get_one(ch, q)[2] == body
    finally:
        c.close()


def test_frame_max_below_4096_in_tune_ok_closes_the_socket(broker):
    with raw(broker, timeout=10) as c:
        c.handshake(frame_max=1000, open_ok=False)
        with pytest.raises(R.Closed):
            c.read_method(timeout=10)


def test_channel_max_0_in_tune_ok_is_refused_because_the_server_limit_is_2047(broker):
    with raw(broker, timeout=10) as c:
        c.handshake(channel_max=0, open_ok=False)
        with pytest.raises(R.Closed):
            c.read_method(timeout=10)


def test_client_connection_close_gets_close_ok(broker):
    with raw(broker) as c:
        c.handshake()
        c.send_method(0, R.CONNECTION_CLOSE, R.short(200) + R.shortstr("bye") + R.short(0) + R.short(0))
        f = c.read_method()
        assert f.method == R.CONNECTION_CLOSE_OK


# ----------------------------------------------------------------------------- protocol header

@pytest.mark.parametrize("header", [
    b"AMQP\x00\x00\x09\x00",
    b"AMQP\x00\x00\x08\x00",
    b"AMQX\x00\x00\x09\x01",
    b"GET / HTTP/1.1\r\n\r\n",
])
def test_wrong_protocol_header_is_answered_with_amqp_0_9_1_header_and_closed(broker, header):
    with raw(broker) as c:
        c.send(header)
        got = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = c.recv_some(5)
            if not data:
                break
            got += data
        else:
            pytest.fail(f"socket still open; got {got!r}")
        assert got == b"AMQP\x00\x00\x09\x01"


def test_garbage_after_a_valid_header_gets_connection_start_then_the_socket_closes(broker):
    with raw(broker, timeout=10) as c:
        c.send(R.PROTOCOL_HEADER + b"garbage!garbage!")
        f = c.read_frame()
        assert f.type == R.FRAME_METHOD and f.method == R.CONNECTION_START
        # RabbitMQ closes silently (after a 3 s anti-abuse delay), no connection.close.
        with pytest.raises(R.Closed):
            c.read_method(timeout=10)


# ----------------------------------------------------------------------------- frame errors

def test_frame_larger_than_negotiated_frame_max_closes_with_501_frame_error(broker):
    with raw(broker) as c:
        c.handshake(frame_max=4096)
        c.open_channel(1)
        args = R.short(0) + R.shortstr("x") + b"\x00" + R.table({"k": "v" * 5000})
        c.send(R.method_frame(1, R.QUEUE_DECLARE, args))
        assert c.read_close() == (
            501, "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,5020,4088}", 0, 0)
        assert c.wait_closed(5)


def test_frame_larger_than_default_frame_max_closes_with_501_frame_error(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send(R.body_frame(1, b"\x00" * 140000))
        assert c.read_close() == (
            501, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,140000,131064}", 0, 0)


def test_frame_exactly_at_frame_max_is_accepted(broker):
    with raw(broker) as c:
        c.handshake(frame_max=4096)
        c.open_channel(1)
        name = unique("q")
        head = R.short(0) + R.shortstr(name) + b"\x00"
        # payload = 4 (class/method) + head + table; frame = payload + 8 = 4096
        filler = 4096 - 8 - 4 - len(head) - 4 - (1 + 1 + 1 + 4)
        args = head + R.table({"k": "v" * filler})
        f = R.method_frame(1, R.QUEUE_DECLARE, args)
        assert len(f) == 4096
        c.send(f)
        ok = c.expect(R.QUEUE_DECLARE_OK)
        assert ok.args().shortstr() == name
        c.send_method(1, (50, 40), R.short(0) + R.shortstr(name) + b"\x00")  # queue.delete
        c.expect((50, 41))


def test_bad_frame_end_octet_closes_with_501_frame_error(broker):
    with raw(broker) as c:
        c.handshake()
        c.send(R.method_frame(1, R.CHANNEL_OPEN, R.shortstr(""))[:-1] + b"\x00")
        assert c.read_close() == (
            501, "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}",
            0, 0)
        assert c.wait_closed(5)


def test_unknown_frame_type_closes_with_501_frame_error(broker):
    with raw(broker) as c:
        c.handshake()
        c.send(R.frame(7, 0, b"abc"))
        assert c.read_close() == (501, 'FRAME_ERROR - type 7, all octets = <<"abc">>: unknown_frame', 0, 0)


def test_truncated_method_arguments_close_with_501_cannot_decode(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + b"\x05ab")
        assert c.read_close() == (501, "FRAME_ERROR - cannot decode <<0,0,5,97,98>>", 50, 10)


@pytest.mark.parametrize("cls_meth", [(99, 10), (50, 99), (10, 99)])
def test_unknown_class_or_method_ends_the_connection_without_disturbing_others(broker, cls_meth):
    other = pika.BlockingConnection(params(broker))
    try:
        with raw(broker) as c:
            c.handshake()
            c.open_channel(1)
            c.send_method(1 if cls_meth[0] != 10 else 0, cls_meth)
            # RabbitMQ 3.10 drops the TCP connection at once, with no connection.close
            # (its reader crashes on unknown_method_id). A connection.close is tolerated,
            # as long as it carries a connection-level hard error.
            try:
                code, text, cls, meth = c.read_close(timeout=5)
                assert code in (503, 540), (code, text)
                assert c.wait_closed(5)
            except R.Closed:
                pass
        ch = other.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        assert q.startswith("amq.gen-")
    finally:
        other.close()


def test_method_on_a_channel_that_was_never_opened_closes_with_504(broker):
    with raw(broker) as c:
        c.handshake()
        c.send_method(5, R.QUEUE_DECLARE, R.short(0) + R.shortstr("x") + b"\x00" + R.table({}))
        assert c.read_close() == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)


def test_second_channel_open_on_the_same_channel_closes_with_504(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send_method(1, R.CHANNEL_OPEN, R.shortstr(""))
        assert c.read_close() == (504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)


@pytest.mark.parametrize("cls_meth,args", [
    (R.CHANNEL_OPEN, R.shortstr("")),
    (R.QUEUE_DECLARE, R.short(0) + R.shortstr("x") + b"\x00" + R.table({})),
])
def test_channel_method_on_channel_zero_closes_with_504(broker, cls_meth, args):
    with raw(broker) as c:
        c.handshake()
        c.send_method(0, cls_meth, args)
        assert c.read_close() == (
            504, "CHANNEL_ERROR - unexpected method in connection state running", *cls_meth)


def test_heartbeat_frame_on_a_nonzero_channel_closes_with_505(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send(R.frame(R.FRAME_HEARTBEAT, 1, b""))
        assert c.read_close() == (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0)


@pytest.mark.parametrize("content_frame", [
    R.body_frame(1, b"abc"),
    R.content_header_frame(1, 3),
])
def test_content_frame_without_a_publish_closes_with_505(broker, content_frame):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send(content_frame)
        assert c.read_close() == (
            505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)


def test_method_where_a_content_header_is_due_closes_with_505(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send_method(1, R.BASIC_PUBLISH, R.short(0) + R.shortstr("") + R.shortstr("q") + b"\x00")
        c.send_method(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("x") + b"\x00" + R.table({}))
        assert c.read_close() == (
            505, "UNEXPECTED_FRAME - expected content header for class 60, "
                 "got non content header frame instead", 60, 40)


def test_content_header_of_the_wrong_class_closes_with_505(broker):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send_method(1, R.BASIC_PUBLISH, R.short(0) + R.shortstr("") + R.shortstr("q") + b"\x00")
        c.send(R.content_header_frame(1, 3, cls=50))
        assert c.read_close() == (
            505, "UNEXPECTED_FRAME - expected content header for class 60, "
                 "got one for class 50 instead", 60, 40)


def test_client_vanishing_mid_frame_does_not_disturb_other_connections(broker):
    other = pika.BlockingConnection(params(broker))
    try:
        och = other.channel()
        q = och.queue_declare(unique("q")).method.queue
        och.confirm_delivery()
        # vanish in the middle of a frame, and in the middle of a message's content
        for cut in (5, 11):
            with raw(broker) as c:
                c.handshake()
                c.open_channel(1)
                f = R.method_frame(1, R.QUEUE_DECLARE, R.short(0) + R.shortstr("x") + b"\x00" + R.table({}))
                c.send(f[:cut])
        with raw(broker) as c:
            c.handshake()
            c.open_channel(1)
            c.send_method(1, R.BASIC_PUBLISH, R.short(0) + R.shortstr("") + R.shortstr(q) + b"\x00")
            c.send(R.content_header_frame(1, 10))
            c.send(R.body_frame(1, b"half!"))
        och.basic_publish("", q, b"whole")
        assert get_one(och, q)[2] == b"whole"
        # the half-published message was never enqueued
        assert och.basic_get(q)[0] is None
        och.queue_delete(q)
    finally:
        other.close()
    assert_round_trip(broker)


# ----------------------------------------------------------------------------- heartbeats

def test_silent_client_with_1_second_heartbeat_is_dropped_after_two_missed_intervals(broker):
    with raw(broker, timeout=10) as c:
        c.handshake(heartbeat=1)
        t0 = time.monotonic()
        heartbeats = 0
        while True:
            try:
                f = c.read_frame(timeout=10)
            except R.Closed:
                break
            assert f.type == R.FRAME_HEARTBEAT, f
            heartbeats += 1
        elapsed = time.monotonic() - t0
        assert 1.5 <= elapsed <= 4.5, elapsed
        assert heartbeats >= 1  # the server sends its own heartbeats meanwhile


def test_client_that_sends_heartbeats_stays_connected(broker):
    with raw(broker, timeout=10) as c:
        c.handshake(heartbeat=1)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            c.send(R.heartbeat_frame())
            try:
                f = c.read_frame(timeout=0.4)
                assert f.type == R.FRAME_HEARTBEAT, f
            except socket.timeout:
                pass
        c.send_method(0, R.CONNECTION_CLOSE, R.short(200) + R.shortstr("bye") + R.short(0) + R.short(0))
        assert c.read_method().method == R.CONNECTION_CLOSE_OK


@pytest.mark.parametrize("frames,expected", [
    (R.method_frame(1, (40, 10), R.short(0) + R.shortstr("weird-x") + R.shortstr("weird") + b"\x00"
                    + R.table({})),
     (503, "COMMAND_INVALID - unknown exchange type 'weird'", 40, 10)),
    (R.method_frame(1, R.BASIC_PUBLISH, R.short(0) + R.shortstr("") + R.shortstr("q") + b"\x02")
     + R.content_header_frame(1, 0),
     (540, "NOT_IMPLEMENTED - immediate=true", 60, 40)),
    (R.method_frame(1, (60, 10), R.long_(1000) + R.short(0) + b"\x00"),
     (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)", 60, 10)),
    (R.method_frame(1, (60, 110), b"\x00"),
     (540, "NOT_IMPLEMENTED - requeue=false", 60, 110)),
], ids=["unknown-exchange-type", "immediate", "prefetch-size", "recover-no-requeue"])
def test_connection_level_errors_name_the_offending_method(broker, frames, expected):
    with raw(broker) as c:
        c.handshake()
        c.open_channel(1)
        c.send(frames)
        assert c.read_close() == expected
