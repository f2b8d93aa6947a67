/* api_overview.c - GET /api/overview, in RabbitMQ management's shape.
 *
 * Fields RabbitMQ has are used only where their meaning is the same
 * (product_name, product_version, management_version, cluster_name, node,
 * rates_mode, object_totals); "rabbitmq_version" is left out because we
 * are not a RabbitMQ release, and "switchboard_version" is ours. Runs on
 * the loop thread.
 */
#include "http_int.h"

#define NODE_NAME "switchboard@localhost"

/* Counts the broker does not expose yet read 0: broker.h has no
 * accessor for them (sb_broker_totals is proposed for that), and
 * connections live in session/, which http/ does not depend on. */
static json_t *
object_totals(sb_broker *b)
{
    return json_pack("{s:i,s:i,s:i,s:i,s:i}", "connections", 0, "channels", 0, "exchanges", 0,
                     "queues", 0, "consumers", 0);
}

void
sb_http__api_overview(sb_http_req *r)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}",
                          "product_name", SB_HTTP__PRODUCT,
                          "product_version", SB_HTTP__VERSION,
                          "management_version", SB_HTTP__VERSION,
                          "switchboard_version", SB_HTTP__VERSION,
                          "rates_mode", "none",
                          "cluster_name", NODE_NAME,
                          "node", NODE_NAME,
                          "object_totals", object_totals(r->h->broker));

    sb_http__reply_json(r, MHD_HTTP_OK, o);
}
