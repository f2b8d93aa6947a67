"""kombu (Celery's messaging layer, py-amqp transport) against the broker."""
import kombu
import pytest

from helpers import unique


@pytest.fixture
def kconn(broker):
    with kombu.Connection(broker.amqp_url, connect_timeout=5) as c:
        c.ensure_connection(max_retries=1)
        yield c


def test_kombu_producer_and_consumer_round_trip_json_with_headers(kconn):
    ex = kombu.Exchange(unique("kx"), type="direct", auto_delete=True, durable=False)
    q = kombu.Queue(unique("kq"), exchange=ex, routing_key="orders", auto_delete=True,
                    durable=False)
    got = []
    with kconn.Consumer(q, callbacks=[lambda body, msg: (got.append((body, msg)), msg.ack())],
                        accept=["json"]):
        producer = kconn.Producer(serializer="json")
        for i in range(3):
            producer.publish({"order": i, "items": ["a", "b"]}, exchange=ex, routing_key="orders",
                             headers={"attempt": i}, declare=[q], retry=False)
        while len(got) < 3:
            kconn.drain_events(timeout=5)
    assert [b for b, _ in got] == [{"order": i, "items": ["a", "b"]} for i in range(3)]
    assert [m.headers["attempt"] for _, m in got] == [0, 1, 2]
    assert all(m.content_type == "application/json" for _, m in got)
    assert all(m.delivery_info["routing_key"] == "orders" for _, m in got)


def test_kombu_simple_queue_put_and_get(kconn):
    name = unique("simple")
    sq = kconn.SimpleQueue(name, queue_opts={"auto_delete": True, "durable": False},
                           exchange_opts={"auto_delete": True, "durable": False})
    # the queue is auto-delete: it goes away when close() cancels the consumer
    try:
        sq.put({"hello": "world"})
        sq.put("second")
        m1 = sq.get(block=True, timeout=5)
        m2 = sq.get(block=True, timeout=5)
        assert m1.payload == {"hello": "world"}
        assert m2.payload == "second"
        m1.ack()
        m2.ack()
        with pytest.raises(sq.Empty):
            sq.get(block=True, timeout=0.2)
        assert sq.qsize() == 0
    finally:
        sq.close()


def test_kombu_reject_with_requeue_redelivers(kconn):
    name = unique("simple")
    sq = kconn.SimpleQueue(name, queue_opts={"auto_delete": True, "durable": False},
                           exchange_opts={"auto_delete": True, "durable": False})
    try:
        sq.put("again")
        m = sq.get(block=True, timeout=5)
        assert not m.delivery_info["redelivered"]
        m.requeue()
        m2 = sq.get(block=True, timeout=5)
        assert m2.payload == "again" and m2.delivery_info["redelivered"]
        m2.ack()
    finally:
        sq.close()
