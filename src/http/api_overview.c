/* api_overview.c - GET /api/overview, in RabbitMQ management's shape.
 *
 * Fields RabbitMQ has are used only where their meaning is the same
 * (product_name, product_version, management_version, cluster_name, node,
 * rates_mode, object_totals, queue_totals); "rabbitmq_version" is left out because we
 * are not a RabbitMQ release, and "switchboard_version" is ours. Runs on
 * the loop thread.
 */
#include "http_int.h"

#define NODE_NAME "switchboard@localhost"

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
    json_t *o;

    sb_broker_totals(r->h->broker, &c);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o}",
                  "product_name", SB_HTTP__PRODUCT,
                  "product_version", SB_HTTP__VERSION,
                  "management_version", SB_HTTP__VERSION,
                  "switchboard_version", SB_HTTP__VERSION,
                  "rates_mode", "none",
                  "cluster_name", NODE_NAME,
                  "node", NODE_NAME,
                  "object_totals", object_totals(&c),
                  "queue_totals", queue_totals(&c));
    sb_http__reply_json(r, MHD_HTTP_OK, o);
}
