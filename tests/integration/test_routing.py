"""Routing through each exchange type; mandatory returns; immediate (RabbitMQ 3.10 behaviour).

Routing is checked with publisher confirms first (RabbitMQ routes asynchronously), then basic.get."""
import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker, UnroutableError

from helpers import unique, bodies, pump


@pytest.fixture
def setup(connect):
    """setup(kind, {queue_suffix: [binding_key_or_args, ...]}) -> (ch, exchange, {suffix: queue})."""
    made = []

    def _setup(kind, bindings, headers=False):
        ch = connect().channel()
        x = unique("x")
        ch.exchange_declare(x, kind, auto_delete=False)
        queues = {}
        for suffix, keys in bindings.items():
            q = ch.queue_declare("", exclusive=True).method.queue
            queues[suffix] = q
            for k in keys:
                if headers:
                    ch.queue_bind(q, x, "", arguments=k)
                else:
                    ch.queue_bind(q, x, k)
        ch.confirm_delivery()
        made.append((ch, x))
        return ch, x, queues

    yield _setup
    for ch, x in made:
        try:
            ch.exchange_delete(x)
        except Exception:
            pass


def routed(ch, queues):
    """{suffix: [bodies]} for every queue, drained."""
    return {s: bodies(ch, q) for s, q in queues.items()}


def test_direct_exchange_routes_on_exact_key(setup):
    ch, x, qs = setup("direct", {"a": ["k1"], "b": ["k2"], "ab": ["k1", "k2"]})
    for k in ["k1", "k2", "k3", "K1", "k1 "]:
        ch.basic_publish(x, k, k.encode())
    assert routed(ch, qs) == {"a": [b"k1"], "b": [b"k2"], "ab": [b"k1", b"k2"]}


def test_direct_exchange_with_empty_binding_key_matches_empty_routing_key(setup):
    ch, x, qs = setup("direct", {"empty": [""]})
    ch.basic_publish(x, "", b"e")
    ch.basic_publish(x, "x", b"x")
    assert routed(ch, qs) == {"empty": [b"e"]}


def test_fanout_exchange_ignores_keys_and_reaches_every_queue(setup):
    ch, x, qs = setup("fanout", {"a": ["anything"], "b": [""], "c": ["x", "y"]})
    ch.basic_publish(x, "whatever", b"m")
    # a queue bound twice (different keys) still gets one copy
    assert routed(ch, qs) == {"a": [b"m"], "b": [b"m"], "c": [b"m"]}


@pytest.mark.parametrize("pattern,matches,misses", [
    ("a.*.c", ["a.b.c", "a..c"], ["a.c", "a.b.b.c", "a.b.c.d", "x.b.c"]),
    ("a.#", ["a", "a.b", "a.b.c"], ["b.a", "ab"]),
    ("#.c", ["c", "a.c", "a.b.c"], ["c.a", "ac"]),
    ("a.#.c", ["a.c", "a.b.c", "a.b.d.c"], ["a.b", "c"]),
    ("#", ["", "a", "a.b.c"], []),
    ("*", ["a"], ["a.b", ""]),  # an empty routing key has no words
    ("*.*", ["a.b", "."], ["a", "a.b.c"]),
    ("a.*.#", ["a.b", "a.b.c"], ["a"]),
    ("#.#", ["", "a", "a.b"], []),
    ("", [""], ["a"]),
    ("a.b", ["a.b"], ["a.b.c", "a"]),
])
def test_topic_exchange_matches_star_as_one_word_and_hash_as_zero_or_more(setup, pattern, matches,
                                                                           misses):
    ch, x, qs = setup("topic", {"q": [pattern]})
    for k in matches + misses:
        ch.basic_publish(x, k, k.encode() or b"<empty>")
    assert routed(ch, qs)["q"] == [k.encode() or b"<empty>" for k in matches]


def test_topic_exchange_delivers_once_when_several_patterns_match(setup):
    ch, x, qs = setup("topic", {"q": ["a.*", "#", "a.b"]})
    ch.basic_publish(x, "a.b", b"once")
    assert routed(ch, qs) == {"q": [b"once"]}


HDRS = {
    "all": [{"x-match": "all", "color": "red", "size": 10}],
    "any": [{"x-match": "any", "color": "red", "size": 10}],
    "default": [{"color": "red", "size": 10}],
    "empty_all": [{"x-match": "all"}],
    "empty_any": [{"x-match": "any"}],
}


@pytest.mark.parametrize("headers,expected", [
    ({"color": "red", "size": 10}, ["all", "any", "default", "empty_all"]),
    ({"color": "red", "size": 10, "extra": 1}, ["all", "any", "default", "empty_all"]),
    ({"color": "red"}, ["any", "empty_all"]),
    ({"color": "blue", "size": 10}, ["any", "empty_all"]),
    ({"color": "blue"}, ["empty_all"]),
    ({"size": "10"}, ["empty_all"]),  # a string never equals an integer
    (None, ["empty_all"]),
])
def test_headers_exchange_matches_all_or_any_of_the_binding_arguments(setup, headers, expected):
    ch, x, qs = setup("headers", HDRS, headers=True)
    ch.basic_publish(x, "ignored", b"m", pika.BasicProperties(headers=headers))
    got = routed(ch, qs)
    assert sorted(s for s, b in got.items() if b) == sorted(expected)


def test_headers_exchange_ignores_x_prefixed_binding_arguments_with_plain_all_and_any(setup):
    ch, x, qs = setup("headers", {
        "all": [{"x-match": "all", "x-foo": "bar", "k": "v"}],
        "any": [{"x-match": "any", "x-foo": "bar"}],
    }, headers=True)
    ch.basic_publish(x, "", b"m", pika.BasicProperties(headers={"k": "v"}))
    assert routed(ch, qs) == {"all": [b"m"], "any": []}


def test_headers_exchange_matches_a_header_bound_with_a_void_value_on_presence(setup):
    ch, x, qs = setup("headers", {"q": [{"x-match": "all", "flag": None}]}, headers=True)
    ch.basic_publish(x, "", b"present", pika.BasicProperties(headers={"flag": "anything"}))
    ch.basic_publish(x, "", b"absent", pika.BasicProperties(headers={"other": 1}))
    assert routed(ch, qs) == {"q": [b"present"]}


def test_amq_match_and_amq_headers_route_by_headers(connect):
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.match", "", arguments={"x-match": "any", "t": q})
    ch.queue_bind(q, "amq.headers", "", arguments={"t": q})
    ch.confirm_delivery()
    ch.basic_publish("amq.match", "", b"1", pika.BasicProperties(headers={"t": q}))
    ch.basic_publish("amq.headers", "", b"2", pika.BasicProperties(headers={"t": q}))
    assert bodies(ch, q) == [b"1", b"2"]


def test_default_exchange_routes_to_the_queue_named_by_the_routing_key(connect):
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"direct-to-queue", mandatory=True)
    with pytest.raises(UnroutableError):
        ch.basic_publish("", unique("nobody"), b"lost", mandatory=True)
    assert bodies(ch, q) == [b"direct-to-queue"]


def test_amq_direct_fanout_and_topic_route_like_their_types(connect):
    ch = connect().channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.direct", q)
    ch.queue_bind(q, "amq.fanout", "")
    ch.queue_bind(q, "amq.topic", q + ".*")
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", q, b"d", mandatory=True)
    ch.basic_publish("amq.topic", q + ".t", b"t", mandatory=True)
    got = bodies(ch, q)
    assert got[:1] == [b"d"] and b"t" in got
    ch.queue_unbind(q, "amq.fanout", "")


def test_mandatory_unroutable_message_comes_back_as_basic_return_312_no_route(connect):
    c = connect()
    ch = c.channel()
    x = unique("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    returned = []
    ch.add_on_return_callback(lambda _ch, method, props, body: returned.append((method, props, body)))
    ch.basic_publish(x, "nowhere", b"bounce", pika.BasicProperties(message_id="m1"), mandatory=True)
    pump(c, lambda: returned, what="basic.return")
    method, props, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == (x, "nowhere")
    assert props.message_id == "m1"
    assert body == b"bounce"
    ch.exchange_delete(x)


def test_mandatory_unroutable_with_confirms_is_returned_then_acked(connect):
    ch = connect().channel()
    ch.confirm_delivery()
    with pytest.raises(UnroutableError) as ei:
        ch.basic_publish("amq.direct", unique("nowhere"), b"x", mandatory=True)
    [msg] = ei.value.messages
    assert (msg.method.reply_code, msg.method.reply_text) == (312, "NO_ROUTE")


def test_non_mandatory_unroutable_message_is_dropped_silently_and_acked(connect):
    ch = connect().channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", unique("nowhere"), b"x")  # no exception: acked, not returned
    assert ch.is_open


def test_immediate_publish_closes_the_connection_with_540_not_implemented(connect):
    c = connect()
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch._impl._send_method(  # pika has no public immediate flag
        pika.spec.Basic.Publish(exchange="", routing_key=q, mandatory=False, immediate=True),
        (pika.BasicProperties(), b"x"))
    with pytest.raises(ConnectionClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.args == (540, "NOT_IMPLEMENTED - immediate=true")
