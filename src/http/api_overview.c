/* api_overview.c - GET /api/overview, in RabbitMQ management's shape.
 *
 * Fields RabbitMQ has are used only where their meaning is the same
 * (product_name, product_version, management_version, cluster_name, node,
 * rates_mode, object_totals, queue_totals, message_stats with rates,
 * churn_rates); "rabbitmq_version" is left out because we are not a
 * RabbitMQ release, and "switchboard_version" and "statistics_interval"
 * (milliseconds between rate samples) are ours. Runs on the loop thread.
 */
#include "http_int.h"

static json_t *
object_totals(const sb_broker_counts *c)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "connections", (json_int_t)c->connections,
                     "channels", (json_int_t)c->channels,
                     "exchanges", (json_int_t)c->exchanges, "queues", (json_int_t)c->queues,
                     "consumers", (json_int_t)c->consumers);
}

static json_t *
queue_totals(const sb_broker_counts *c)
{
    return json_pack("{s:I,s:I,s:I}", "messages",
                     (json_int_t)(c->messages_ready + c->messages_unacked), "messages_ready",
                     (json_int_t)c->messages_ready, "messages_unacknowledged",
                     (json_int_t)c->messages_unacked);
}

void
sb_http__api_overview(sb_http_req *r)
{
    sb_broker_counts c;
    sb_msg_stats st;
    json_t *o;

    sb_broker_totals(r->h->broker, &c);
    sb_broker_stats(r->h->broker, &st);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:i}",
                  "product_name", SB_HTTP__PRODUCT,
                  "product_version", SB_HTTP__VERSION,
                  "management_version", SB_HTTP__VERSION,
                  "switchboard_version", SB_HTTP__VERSION,
                  "rates_mode", "basic",
                  "cluster_name", SB_HTTP__NODE,
                  "node", SB_HTTP__NODE,
                  "object_totals", object_totals(&c),
                  "queue_totals", queue_totals(&c),
                  "message_stats", sb_http__message_stats(&st, SB_HTTP_STATS_ALL),
                  "churn_rates", sb_http__churn_json(r->h->broker, json_object()),
                  "statistics_interval", (int)sb_broker_stats_interval(r->h->broker));
    sb_http__reply_json(r, MHD_HTTP_OK, o);
}
