/* metrics.c - GET /metrics and /metrics/per-object: Prometheus text
 * exposition format 0.0.4.
 *
 * Names, labels and meanings are rabbitmq_prometheus's (RabbitMQ 3.10)
 * wherever it has the figure, so a Grafana dashboard built for RabbitMQ
 * (RabbitMQ-Overview) works unchanged: the rabbitmq_global_* counters
 * (labels protocol, queue_type, dead_letter_strategy as RabbitMQ's), the
 * object gauges and churn counters, process figures, and the queue and
 * channel families. As in rabbitmq_prometheus, /metrics aggregates the
 * queue and channel families into one unlabelled sample each, and
 * /metrics/per-object gives one sample per queue with {vhost, queue}
 * labels. rabbitmq_identity_info and rabbitmq_build_info carry the node
 * name the dashboards join on.
 *
 * Switchboard's own figures are under switchboard_: messages held for a
 * delay or a retry, retries, the REST-to-RPC bridge's calls, replies and
 * timeouts, and the store's group commits (write + fsync time and
 * messages per commit, as histograms).
 *
 * RabbitMQ serves this on a port of its own (15692) without credentials;
 * we serve it on the HTTP port, also without. Runs on the loop thread;
 * the cost is O(queues + channels) per scrape.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_int.h"
#include "../common/alloc.h"
#include "../common/buf.h"
#include "../common/mem.h"
#include "../store/store.h"

#define CLASSIC "protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\""

typedef struct prom {
    sb_buf out;
    bool per_object;
    sb_queue_view *queues;     /* every queue, borrowed views (nothing changes meanwhile) */
    size_t nqueues, queues_cap;
} prom;

static void
emit(prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
emit(prom *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    char *w = (char *)sb_buf_extend(&p->out, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(w, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->out.len--;  /* drop the terminating NUL */
}

/* "# TYPE" then "# HELP", in rabbitmq_prometheus's order. */
static void
family(prom *p, const char *name, const char *type, const char *help)
{
    emit(p, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void
gauge(prom *p, const char *name, const char *help, uint64_t v)
{
    family(p, name, "gauge", help);
    emit(p, "%s %" PRIu64 "\n", name, v);
}

static void
counter(prom *p, const char *name, const char *help, uint64_t v)
{
    family(p, name, "counter", help);
    emit(p, "%s %" PRIu64 "\n", name, v);
}

/* A label value with \, " and newline escaped, as the format requires. */
static void
label_value(prom *p, sb_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = (char)s.p[i];
        if (c == '\\' || c == '"')
            emit(p, "\\%c", c);
        else if (c == '\n')
            emit(p, "\\n");
        else
            *sb_buf_extend(&p->out, 1) = (uint8_t)c;
    }
}

/* ---- gathering ---- */

static void
collect_queue(const sb_queue_view *q, void *ud)
{
    prom *p = ud;

    if (p->nqueues == p->queues_cap) {
        p->queues_cap = p->queues_cap ? p->queues_cap * 2 : 64;
        p->queues = sb_realloc(p->queues, p->queues_cap * sizeof *p->queues);
    }
    p->queues[p->nqueues++] = *q;
}

static void
collect_vhost(sb_vhost *v, void *ud)
{
    sb_vhost_each_queue(v, collect_queue, ud);
}

/* One figure of a queue, for the per-queue families. */
typedef uint64_t (*queue_fig)(const sb_queue_view *q);

static uint64_t q_ready(const sb_queue_view *q) { return q->messages_ready; }
static uint64_t q_unacked(const sb_queue_view *q) { return q->messages_unacked; }
static uint64_t q_messages(const sb_queue_view *q) { return (uint64_t)q->messages_ready + q->messages_unacked; }
static uint64_t q_consumers(const sb_queue_view *q) { return q->consumers; }
static uint64_t q_ready_bytes(const sb_queue_view *q) { return q->ready_bytes; }
static uint64_t q_unacked_bytes(const sb_queue_view *q) { return q->unacked_bytes; }
static uint64_t q_bytes(const sb_queue_view *q) { return q->ready_bytes + q->unacked_bytes; }
static uint64_t q_paged(const sb_queue_view *q) { return q->paged_out; }
static uint64_t q_published(const sb_queue_view *q) { return q->stats->n[SB_STAT_PUBLISH]; }
static uint64_t q_delayed(const sb_queue_view *q) { return q->delayed; }
static uint64_t q_retried(const sb_queue_view *q) { return q->stats->n[SB_STAT_RETRY]; }

static const struct {
    const char *name, *type, *help;
    queue_fig fig;
} queue_families[] = {
    { "rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers", q_ready },
    { "rabbitmq_queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged", q_unacked },
    { "rabbitmq_queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth", q_messages },
    { "rabbitmq_queue_consumers", "gauge", "Consumers on a queue", q_consumers },
    { "rabbitmq_queue_messages_ready_bytes", "gauge", "Size in bytes of ready messages", q_ready_bytes },
    { "rabbitmq_queue_messages_unacked_bytes", "gauge", "Size in bytes of all unacknowledged messages", q_unacked_bytes },
    { "rabbitmq_queue_messages_bytes", "gauge", "Size in bytes of ready and unacknowledged messages", q_bytes },
    { "rabbitmq_queue_messages_paged_out", "gauge", "Messages paged out to disk", q_paged },
    { "rabbitmq_queue_messages_published_total", "counter", "Total number of messages published to queues", q_published },
    { "switchboard_queue_messages_delayed", "gauge", "Messages held for a retry delay", q_delayed },
    { "switchboard_queue_messages_retried_total", "counter", "Total number of rejected messages held for another try (x-retry-delays)", q_retried },
};

static void
queue_metrics(prom *p)
{
    for (size_t f = 0; f < sizeof queue_families / sizeof queue_families[0]; f++) {
        uint64_t sum = 0;
        family(p, queue_families[f].name, queue_families[f].type, queue_families[f].help);
        for (size_t i = 0; i < p->nqueues; i++) {
            uint64_t v = queue_families[f].fig(&p->queues[i]);
            if (!p->per_object) {
                sum += v;
                continue;
            }
            emit(p, "%s{vhost=\"", queue_families[f].name);
            label_value(p, sb_str_c(p->queues[i].vhost));
            emit(p, "\",queue=\"");
            label_value(p, p->queues[i].name);
            emit(p, "\"} %" PRIu64 "\n", v);
        }
        if (!p->per_object)
            emit(p, "%s %" PRIu64 "\n", queue_families[f].name, sum);
    }
}

/* ---- channels (summed over the open ones, as rabbitmq_prometheus) ---- */

typedef struct chan_sums {
    uint64_t consumers, unacked, unconfirmed, uncommitted, prefetch, consumer_prefetch;
    uint64_t n[SB_STAT__COUNT];
} chan_sums;

static void
sum_consumer_prefetch(const sb_consumer_view *c, void *ud)
{
    ((chan_sums *)ud)->consumer_prefetch += c->prefetch_count;
}

static void
sum_channel(const sb_chan_view *ch, void *ud)
{
    chan_sums *s = ud;
    sb_bchan_view bv;

    sb_bchan_view_get(ch->bchan, &bv);
    s->consumers += bv.consumers;
    s->unacked += bv.unacked;
    s->unconfirmed += ch->unconfirmed;
    s->uncommitted += ch->uncommitted;
    s->prefetch += bv.global_prefetch_count;
    sb_bchan_each_consumer(ch->bchan, sum_consumer_prefetch, s);
    for (int i = 0; i < SB_STAT__COUNT; i++)
        s->n[i] += bv.stats->n[i];
}

static void
sum_conn(sb_bconn *c, void *ud)
{
    c->ops->each_channel(c, sum_channel, ud);
}

static void
channel_metrics(prom *p, sb_broker *b)
{
    static const struct {
        const char *name, *help;
        sb_stat stat;
    } counters[] = {
        { "rabbitmq_channel_messages_published_total", "Total number of messages published into an exchange on a channel", SB_STAT_PUBLISH },
        { "rabbitmq_channel_messages_confirmed_total", "Total number of messages published into an exchange and confirmed on the channel", SB_STAT_CONFIRM },
        { "rabbitmq_channel_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", SB_STAT_RETURN_UNROUTABLE },
        { "rabbitmq_channel_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", SB_STAT_DROP_UNROUTABLE },
        { "rabbitmq_channel_get_ack_total", "Total number of messages fetched with basic.get in manual acknowledgement mode", SB_STAT_GET },
        { "rabbitmq_channel_get_total", "Total number of messages fetched with basic.get in automatic acknowledgement mode", SB_STAT_GET_NO_ACK },
        { "rabbitmq_channel_messages_delivered_ack_total", "Total number of messages delivered to consumers in manual acknowledgement mode", SB_STAT_DELIVER },
        { "rabbitmq_channel_messages_delivered_total", "Total number of messages delivered to consumers in automatic acknowledgement mode", SB_STAT_DELIVER_NO_ACK },
        { "rabbitmq_channel_messages_redelivered_total", "Total number of messages redelivered to consumers", SB_STAT_REDELIVER },
        { "rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", SB_STAT_ACK },
        { "rabbitmq_channel_get_empty_total", "Total number of times basic.get operations fetched no message", SB_STAT_GET_EMPTY },
    };
    chan_sums s = { 0 };

    sb_broker_each_conn(b, sum_conn, &s);
    gauge(p, "rabbitmq_channel_consumers", "Consumers on a channel", s.consumers);
    gauge(p, "rabbitmq_channel_messages_unacked", "Delivered but not yet acknowledged messages", s.unacked);
    gauge(p, "rabbitmq_channel_messages_unconfirmed", "Published but not yet confirmed messages", s.unconfirmed);
    gauge(p, "rabbitmq_channel_messages_uncommitted", "Messages received in a transaction but not yet committed", s.uncommitted);
    gauge(p, "rabbitmq_channel_acks_uncommitted", "Message acknowledgements in a transaction not yet committed", 0);
    gauge(p, "rabbitmq_consumer_prefetch", "Limit of unacknowledged messages for each consumer", s.consumer_prefetch);
    gauge(p, "rabbitmq_channel_prefetch", "Total limit of unacknowledged messages for all consumers on a channel", s.prefetch);
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        counter(p, counters[i].name, counters[i].help, s.n[counters[i].stat]);
}

/* ---- the global counters ---- */

static void
global_metrics(prom *p, sb_broker *b, const sb_broker_counts *c)
{
    static const struct {
        const char *name, *help, *labels;
        sb_stat stat;
    } g[] = {
        { "rabbitmq_global_messages_received_total", "Total number of messages received from publishers", "protocol=\"amqp091\"", SB_STAT_PUBLISH },
        { "rabbitmq_global_messages_received_confirm_total", "Total number of messages received from publishers expecting confirmations", "protocol=\"amqp091\"", SB_STAT_PUBLISH_CONFIRM },
        { "rabbitmq_global_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", "protocol=\"amqp091\"", SB_STAT_DROP_UNROUTABLE },
        { "rabbitmq_global_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", "protocol=\"amqp091\"", SB_STAT_RETURN_UNROUTABLE },
        { "rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers", "protocol=\"amqp091\"", SB_STAT_CONFIRM },
        { "rabbitmq_global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", CLASSIC, SB_STAT_DELIVER },
        { "rabbitmq_global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", CLASSIC, SB_STAT_DELIVER_NO_ACK },
        { "rabbitmq_global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", CLASSIC, SB_STAT_GET },
        { "rabbitmq_global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", CLASSIC, SB_STAT_GET_NO_ACK },
        { "rabbitmq_global_messages_get_empty_total", "Total number of times basic.get operations fetched no message", CLASSIC, SB_STAT_GET_EMPTY },
        { "rabbitmq_global_messages_redelivered_total", "Total number of messages redelivered to consumers", CLASSIC, SB_STAT_REDELIVER },
        { "rabbitmq_global_messages_acknowledged_total", "Total number of messages acknowledged by consumers", CLASSIC, SB_STAT_ACK },
    };
    static const struct {
        const char *name, *help;
    } dead[] = {
        { "rabbitmq_global_messages_dead_lettered_rejected_total", "Total number of messages dead-lettered due to basic.reject or basic.nack" },
        { "rabbitmq_global_messages_dead_lettered_expired_total", "Total number of messages dead-lettered due to message TTL exceeded" },
        { "rabbitmq_global_messages_dead_lettered_maxlen_total", "Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx" },
        { "rabbitmq_global_messages_dead_lettered_delivery_limit_total", "Total number of messages dead-lettered due to delivery-limit exceeded" },
    };
    sb_msg_stats st;

    sb_broker_stats(b, &st);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        family(p, g[i].name, "counter", g[i].help);
        emit(p, "%s{%s} %" PRIu64 "\n", g[i].name, g[i].labels, st.n[g[i].stat]);
    }
    family(p, "rabbitmq_global_messages_routed_total", "counter",
           "Total number of messages routed to queues or streams");
    emit(p, "rabbitmq_global_messages_routed_total{protocol=\"amqp091\"} %" PRIu64 "\n",
         st.n[SB_STAT_PUBLISH] - st.n[SB_STAT_UNROUTABLE]);
    family(p, "rabbitmq_global_messages_delivered_total", "counter",
           "Total number of messages delivered to consumers");
    emit(p, "rabbitmq_global_messages_delivered_total{" CLASSIC "} %" PRIu64 "\n",
         st.n[SB_STAT_DELIVER] + st.n[SB_STAT_DELIVER_NO_ACK] + st.n[SB_STAT_GET] +
             st.n[SB_STAT_GET_NO_ACK]);
    for (int i = 0; i < 4; i++) {
        family(p, dead[i].name, "counter", dead[i].help);
        emit(p, "%s{queue_type=\"rabbit_classic_queue\",dead_letter_strategy=\"at_most_once\"} %" PRIu64 "\n",
             dead[i].name, st.n[SB_STAT_DEAD_REJECTED + i]);
        emit(p, "%s{queue_type=\"rabbit_classic_queue\",dead_letter_strategy=\"disabled\"} %" PRIu64 "\n",
             dead[i].name, st.n[SB_STAT_DROP_REJECTED + i]);
    }
    family(p, "rabbitmq_global_consumers", "gauge", "Consumers currently connected");
    emit(p, "rabbitmq_global_consumers{protocol=\"amqp091\"} %u\n", c->consumers);
    counter(p, "switchboard_messages_retried_total",
            "Total number of rejected messages held for another try (x-retry-delays)",
            st.n[SB_STAT_RETRY]);
}

/* ---- the node ---- */

static void
node_metrics(prom *p, sb_broker *b, const sb_broker_counts *c)
{
    const sb_broker_resources *res = sb_broker_resources_get(b);
    sb_broker_churn ch;

    sb_broker_churn_get(b, &ch);
    family(p, "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info");
    emit(p, "rabbitmq_identity_info{rabbitmq_node=\"%s\",rabbitmq_cluster=\"%s\","
            "rabbitmq_cluster_permanent_id=\"%s\"} 1\n", SB_HTTP__NODE, SB_HTTP__NODE, SB_HTTP__NODE);
    family(p, "rabbitmq_build_info", "untyped", "Broker version info");
    emit(p, "rabbitmq_build_info{product=\"%s\",product_version=\"%s\"} 1\n", SB_HTTP__PRODUCT,
         SB_HTTP__VERSION);
    gauge(p, "process_start_time_seconds", "Start time of the process since unix epoch in seconds",
          sb_broker_started_at(b) / 1000);
    gauge(p, "rabbitmq_connections", "Connections currently open", c->connections);
    gauge(p, "rabbitmq_channels", "Channels currently open", c->channels);
    gauge(p, "rabbitmq_queues", "Queues available", c->queues);
    gauge(p, "rabbitmq_consumers", "Consumers currently connected", c->consumers);
    counter(p, "rabbitmq_connections_opened_total", "Total number of connections opened", ch.n[SB_CHURN_CONNECTION_CREATED]);
    counter(p, "rabbitmq_connections_closed_total", "Total number of connections closed or terminated", ch.n[SB_CHURN_CONNECTION_CLOSED]);
    counter(p, "rabbitmq_channels_opened_total", "Total number of channels opened", ch.n[SB_CHURN_CHANNEL_CREATED]);
    counter(p, "rabbitmq_channels_closed_total", "Total number of channels closed", ch.n[SB_CHURN_CHANNEL_CLOSED]);
    counter(p, "rabbitmq_queues_declared_total", "Total number of queues declared", ch.n[SB_CHURN_QUEUE_DECLARED]);
    counter(p, "rabbitmq_queues_created_total", "Total number of queues created", ch.n[SB_CHURN_QUEUE_CREATED]);
    counter(p, "rabbitmq_queues_deleted_total", "Total number of queues deleted", ch.n[SB_CHURN_QUEUE_DELETED]);
    gauge(p, "rabbitmq_process_resident_memory_bytes", "Memory used in bytes", sb_mem_rss());
    gauge(p, "rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", res->mem_limit);
    gauge(p, "rabbitmq_disk_space_available_bytes", "Disk space available in bytes", res->disk_free);
    gauge(p, "rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes", res->disk_limit);
    gauge(p, "rabbitmq_alarms_memory_used_watermark", "is 1 if VM memory watermark alarm is in effect", res->mem_alarm);
    gauge(p, "rabbitmq_alarms_free_disk_space_watermark", "is 1 if free disk space watermark alarm is in effect", res->disk_alarm);
    gauge(p, "rabbitmq_alarms_file_descriptor_limit", "is 1 if file descriptor limit alarm is in effect", 0);
    gauge(p, "rabbitmq_process_open_fds", "Open file descriptors", sb_http__open_fds());
    gauge(p, "rabbitmq_process_max_fds", "Open file descriptors limit", sb_http__max_fds());
    gauge(p, "rabbitmq_process_open_tcp_sockets", "Open TCP sockets", c->connections);
    gauge(p, "rabbitmq_process_max_tcp_sockets", "Open TCP sockets limit", sb_http__max_fds());
    gauge(p, "switchboard_messages_delayed", "Messages held for later (delayed exchanges and retries)",
          sb_broker_delayed_count(b));
}

/* ---- Switchboard's own ---- */

static void
histogram(prom *p, const char *name, const char *help, const uint64_t *bounds, double scale,
          const uint64_t *hist, double sum)
{
    uint64_t cum = 0;

    family(p, name, "histogram", help);
    for (int i = 0; i < SB_STORE_HIST_BUCKETS; i++) {
        cum += hist[i];
        if (bounds[i] == UINT64_MAX)
            emit(p, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
        else
            emit(p, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double)bounds[i] * scale, cum);
    }
    emit(p, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, sum, name, cum);
}

static void
store_metrics(prom *p, sb_broker *b)
{
    static const uint64_t us_bounds[] = SB_STORE_COMMIT_US_BOUNDS;
    static const uint64_t msg_bounds[] = SB_STORE_BATCH_MSG_BOUNDS;
    const sb_store *st = sb_broker_store(b);
    sb_store_stats s = { 0 };

    if (st != NULL)
        sb_store_get_stats(st, &s);
    counter(p, "switchboard_store_commits_total", "Group commits written and fsynced", s.commit_count);
    gauge(p, "switchboard_store_disk_bytes", "Bytes in message log segments", s.disk_bytes);
    gauge(p, "switchboard_store_segments", "Message log segments", s.segment_count);
    gauge(p, "switchboard_store_messages", "Messages with a live record in the log", s.live_count);
    histogram(p, "switchboard_store_commit_duration_seconds",
              "Time to write and fsync one group commit", us_bounds, 1e-6, s.commit_us_hist,
              (double)s.commit_us_sum / 1e6);
    histogram(p, "switchboard_store_commit_batch_messages",
              "Persistent messages made durable by one group commit", msg_bounds, 1,
              s.commit_msgs_hist, (double)s.commit_msgs_sum);
}

static void
rpc_metrics(prom *p, const sb_http *h)
{
    counter(p, "switchboard_rpc_http_calls_total", "Calls received by the REST-to-RPC bridge", h->rpc_stats.calls);
    counter(p, "switchboard_rpc_http_replies_total", "Bridge calls answered by their responder in time", h->rpc_stats.replies);
    counter(p, "switchboard_rpc_http_timeouts_total", "Bridge calls that reached their deadline (504)", h->rpc_stats.timeouts);
    counter(p, "switchboard_rpc_http_late_replies_total", "Replies that came after their caller's deadline and were dropped", h->rpc_stats.late_replies);
}

void
sb_http__api_metrics(sb_http_req *r)
{
    prom p = { .per_object = strcmp(r->route->pattern, "/metrics/per-object") == 0 };
    sb_broker *b = r->h->broker;
    struct MHD_Response *resp;
    sb_broker_counts c;

    sb_broker_totals(b, &c);
    sb_broker_each_vhost(b, collect_vhost, &p);
    node_metrics(&p, b, &c);
    global_metrics(&p, b, &c);
    queue_metrics(&p);
    channel_metrics(&p, b);
    store_metrics(&p, b);
    rpc_metrics(&p, r->h);
    resp = MHD_create_response_from_buffer(p.out.len, p.out.data, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8");
    sb_http__reply_response(r, MHD_HTTP_OK, resp);
    sb_buf_free(&p.out);
    sb_free(p.queues);
}
