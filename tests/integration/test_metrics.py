"""GET /metrics and /metrics/per-object in Prometheus text format 0.0.4.

Parsed with prometheus_client's own parser (Debian's python3-prometheus-client), never with
regexes. The unmarked tests check the rabbitmq_* names, types and labels a RabbitMQ Grafana
dashboard reads; they run against RabbitMQ's rabbitmq_prometheus too (the reference run
enables it on its own port: broker.metrics_url). Switchboard serves /metrics on its HTTP
port; the switchboard_* figures are Switchboard's own.
"""
import json
import urllib.parse
import urllib.request

import pika
import pytest

import brokers
from helpers import unique, wait_for
from prometheus_client.parser import text_string_to_metric_families

LAG = 15.0  # RabbitMQ's statistics lag (brokers.py: 1 s interval), bounded


@pytest.fixture
def metrics_url(broker):
    if not broker.metrics_url:
        pytest.skip("the broker under test has no metrics URL")
    wait_for(lambda: _fetch(broker.metrics_url + "/metrics", quiet=True), timeout=10,
             what="metrics endpoint up")
    return broker.metrics_url


def _fetch(url, quiet=False):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except OSError:
        if quiet:
            return None
        raise


def scrape(base, path="/metrics"):
    """{family name: Metric} parsed by prometheus_client (counter families lose _total)."""
    status, ctype, text = _fetch(base + path)
    assert status == 200
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, family, sample=None, **labels):
    """The value of the sample of family (sample name defaults to the family's own, or
    family + '_total' for counters) whose labels include labels; None when absent."""
    f = fams.get(family)
    if f is None:
        return None
    names = [sample] if sample else [family, family + "_total"]
    for s in f.samples:
        if s.name in names and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


# ----------------------------------------------------------------------------- RabbitMQ names

GAUGES = ["rabbitmq_connections", "rabbitmq_channels", "rabbitmq_queues", "rabbitmq_consumers",
          "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
          "rabbitmq_queue_messages", "rabbitmq_queue_consumers",
          "rabbitmq_process_resident_memory_bytes", "rabbitmq_resident_memory_limit_bytes",
          "rabbitmq_disk_space_available_bytes", "rabbitmq_disk_space_available_limit_bytes",
          "rabbitmq_process_open_fds", "rabbitmq_process_max_fds",
          "rabbitmq_channel_consumers", "rabbitmq_channel_messages_unacked"]
COUNTERS = ["rabbitmq_connections_opened", "rabbitmq_connections_closed",
            "rabbitmq_channels_opened", "rabbitmq_channels_closed",
            "rabbitmq_queues_declared", "rabbitmq_queues_created", "rabbitmq_queues_deleted",
            "rabbitmq_channel_messages_published", "rabbitmq_channel_messages_confirmed",
            "rabbitmq_channel_messages_delivered_ack", "rabbitmq_channel_messages_acked",
            "rabbitmq_channel_get_ack", "rabbitmq_channel_get",
            "rabbitmq_channel_messages_redelivered"]
GLOBAL = {  # counter family -> labels it carries
    "rabbitmq_global_messages_received": {"protocol": "amqp091"},
    "rabbitmq_global_messages_received_confirm": {"protocol": "amqp091"},
    "rabbitmq_global_messages_routed": {"protocol": "amqp091"},
    "rabbitmq_global_messages_confirmed": {"protocol": "amqp091"},
    "rabbitmq_global_messages_unroutable_dropped": {"protocol": "amqp091"},
    "rabbitmq_global_messages_unroutable_returned": {"protocol": "amqp091"},
    "rabbitmq_global_messages_delivered": {"protocol": "amqp091",
                                           "queue_type": "rabbit_classic_queue"},
    "rabbitmq_global_messages_delivered_consume_manual_ack": {
        "protocol": "amqp091", "queue_type": "rabbit_classic_queue"},
    "rabbitmq_global_messages_delivered_get_auto_ack": {
        "protocol": "amqp091", "queue_type": "rabbit_classic_queue"},
    "rabbitmq_global_messages_acknowledged": {"protocol": "amqp091",
                                              "queue_type": "rabbit_classic_queue"},
    "rabbitmq_global_messages_redelivered": {"protocol": "amqp091",
                                             "queue_type": "rabbit_classic_queue"},
    "rabbitmq_global_messages_dead_lettered_rejected": {
        "queue_type": "rabbit_classic_queue", "dead_letter_strategy": "at_most_once"},
    "rabbitmq_global_messages_dead_lettered_expired": {
        "queue_type": "rabbit_classic_queue", "dead_letter_strategy": "disabled"},
}


def test_metrics_have_rabbitmq_names_types_and_labels(metrics_url):
    fams = scrape(metrics_url)
    for g in GAUGES:
        assert g in fams, g
        assert fams[g].type == "gauge", (g, fams[g].type)
    for c in COUNTERS:
        assert c in fams, c
        assert fams[c].type == "counter", (c, fams[c].type)
    for c, labels in GLOBAL.items():
        assert fams[c].type == "counter", c
        assert value(fams, c, **labels) is not None, (c, labels, fams[c].samples)
    ident = fams["rabbitmq_identity_info"].samples[0].labels
    assert ident["rabbitmq_node"] and ident["rabbitmq_cluster"]
    assert value(fams, "rabbitmq_process_resident_memory_bytes") > 1_000_000
    assert value(fams, "rabbitmq_disk_space_available_bytes") > 0


def test_aggregated_queue_metrics_have_no_labels(metrics_url):
    fams = scrape(metrics_url)
    samples = fams["rabbitmq_queue_messages_ready"].samples
    assert len(samples) == 1 and samples[0].labels == {}


def test_per_object_queue_metrics_count_one_queue(metrics_url, conn):
    ch = conn.channel()
    qn = unique("q")
    ch.queue_declare(qn)
    ch.confirm_delivery()
    for _ in range(3):
        ch.basic_publish("", qn, b"x")
    m, _, _ = ch.basic_get(qn, auto_ack=False)  # one unacked, two ready

    def counted():
        fams = scrape(metrics_url, "/metrics/per-object")
        ready = value(fams, "rabbitmq_queue_messages_ready", vhost="/", queue=qn)
        unacked = value(fams, "rabbitmq_queue_messages_unacked", vhost="/", queue=qn)
        return fams if (ready, unacked) == (2, 1) else None

    fams = wait_for(counted, timeout=LAG, interval=0.2, what="per-queue gauges")
    assert value(fams, "rabbitmq_queue_messages", vhost="/", queue=qn) == 3
    assert value(fams, "rabbitmq_queue_consumers", vhost="/", queue=qn) == 0
    ch.basic_ack(m.delivery_tag)
    ch.queue_delete(qn)


def test_global_counters_grow_with_publishes_deliveries_and_acks(metrics_url, conn):
    keys = {"rabbitmq_global_messages_received": {"protocol": "amqp091"},
            "rabbitmq_global_messages_confirmed": {"protocol": "amqp091"},
            "rabbitmq_global_messages_delivered_get_manual_ack": {
                "protocol": "amqp091", "queue_type": "rabbit_classic_queue"},
            "rabbitmq_global_messages_acknowledged": {
                "protocol": "amqp091", "queue_type": "rabbit_classic_queue"}}

    def snapshot():
        fams = scrape(metrics_url)
        return {k: value(fams, k, **labels) for k, labels in keys.items()}

    before = snapshot()
    ch = conn.channel()
    qn = unique("q")
    ch.queue_declare(qn)
    ch.confirm_delivery()
    for _ in range(4):
        ch.basic_publish("", qn, b"x")
    for _ in range(4):
        m, _, _ = ch.basic_get(qn, auto_ack=False)
        ch.basic_ack(m.delivery_tag)
    wait_for(lambda: all(snapshot()[k] - before[k] >= 4 for k in keys), timeout=LAG,
             interval=0.2, what="global counters +4")
    ch.queue_delete(qn)


def test_rejected_message_counts_as_dead_lettered_at_most_once(metrics_url, conn):
    labels = {"queue_type": "rabbit_classic_queue", "dead_letter_strategy": "at_most_once"}
    fam = "rabbitmq_global_messages_dead_lettered_rejected"
    before = value(scrape(metrics_url), fam, **labels)
    ch = conn.channel()
    qn, dlq = unique("q"), unique("dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(qn, arguments={"x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": dlq})
    ch.confirm_delivery()
    ch.basic_publish("", qn, b"x")
    m, _, _ = ch.basic_get(qn, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)
    wait_for(lambda: value(scrape(metrics_url), fam, **labels) == before + 1, timeout=LAG,
             interval=0.2, what="dead_lettered_rejected +1")
    for x in (qn, dlq):
        ch.queue_delete(x)


# ----------------------------------------------------------------------------- Switchboard's own

@pytest.mark.switchboard_only
def test_metrics_need_no_credentials_like_rabbitmq_prometheus(broker):
    status, _, text = _fetch(broker.http_url + "/metrics")
    assert status == 200 and "rabbitmq_connections" in text


@pytest.mark.switchboard_only
def test_store_commit_histograms_count_persistent_confirms(metrics_url, conn):
    def commits():
        fams = scrape(metrics_url)
        return (value(fams, "switchboard_store_commit_duration_seconds",
                      "switchboard_store_commit_duration_seconds_count"),
                value(fams, "switchboard_store_commit_batch_messages",
                      "switchboard_store_commit_batch_messages_sum"))

    n0, msgs0 = commits()
    ch = conn.channel()
    qn = unique("q")
    ch.queue_declare(qn, durable=True)
    ch.confirm_delivery()
    for _ in range(5):
        ch.basic_publish("", qn, b"p", pika.BasicProperties(delivery_mode=2))
    n1, msgs1 = commits()
    assert n1 > n0 and msgs1 - msgs0 == 5
    fams = scrape(metrics_url)
    h = fams["switchboard_store_commit_duration_seconds"]
    assert h.type == "histogram"
    inf = [s for s in h.samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert inf[0].value == value(fams, "switchboard_store_commit_duration_seconds",
                                 "switchboard_store_commit_duration_seconds_count")
    ch.queue_delete(qn)


@pytest.mark.switchboard_only
def test_retries_and_delayed_messages_are_counted(metrics_url, conn):
    ch = conn.channel()
    qn = unique("q")
    ch.queue_declare(qn, arguments={"x-retry-delays": [60000]})
    ch.confirm_delivery()
    ch.basic_publish("", qn, b"r")
    before = scrape(metrics_url)
    m, _, _ = ch.basic_get(qn, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)  # held 60 s for its retry
    fams = scrape(metrics_url, "/metrics/per-object")
    assert value(fams, "switchboard_messages_retried") == \
        value(before, "switchboard_messages_retried") + 1
    assert value(fams, "switchboard_messages_delayed") >= 1
    assert value(fams, "switchboard_queue_messages_delayed", vhost="/", queue=qn) == 1
    assert value(fams, "switchboard_queue_messages_retried", vhost="/", queue=qn) == 1
    ch.queue_delete(qn)
    assert value(scrape(metrics_url), "switchboard_messages_delayed") == \
        value(fams, "switchboard_messages_delayed") - 1


@pytest.mark.switchboard_only
def test_rest_rpc_calls_and_timeouts_are_counted(metrics_url, broker, conn):
    ch = conn.channel()
    qn = unique("svc")
    ch.queue_declare(qn)
    ch.basic_consume(qn, lambda *a: None)  # a responder that never answers
    before = scrape(metrics_url)
    u = urllib.parse.urlparse(broker.http_url)
    req = urllib.request.Request(f"{broker.http_url}/api/rpc/%2F/{qn}?timeout_ms=200",
                                 data=b"ping", method="POST")
    req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 504 and u.port
    after = scrape(metrics_url)
    for fam in ("switchboard_rpc_http_calls", "switchboard_rpc_http_timeouts"):
        assert value(after, fam) == value(before, fam) + 1, fam


@pytest.mark.switchboard_only
def test_label_values_are_escaped():
    """A queue name with a quote, a backslash and a newline stays one parseable label."""
    b = brokers.start_switchboard()
    try:
        c = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = c.channel()
        name = 'we"ird\\name\nx'
        ch.queue_declare(name)
        ch.basic_publish("", name, b"x")
        wait_for(lambda: _fetch(b.http_url + "/metrics", quiet=True), what="HTTP up")
        fams = scrape(b.http_url, "/metrics/per-object")
        assert value(fams, "rabbitmq_queue_messages_ready", vhost="/", queue=name) == 1
        c.close()
    finally:
        b.stop()


def test_management_overview_and_metrics_agree_on_totals(metrics_url, broker):
    """Both views of the broker count the same queues (no traffic in between)."""
    if not broker.http_url:
        pytest.skip("no management API")
    def queues_in_overview():
        req = urllib.request.Request(broker.http_url + "/api/overview")
        req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
        return json.loads(urllib.request.urlopen(req, timeout=10).read())["object_totals"][
            "queues"]

    # RabbitMQ's overview lags its own metrics; both settle on the same figure.
    wait_for(lambda: value(scrape(metrics_url), "rabbitmq_queues") == queues_in_overview(),
             timeout=LAG, interval=0.2, what="the same queue count in both")
