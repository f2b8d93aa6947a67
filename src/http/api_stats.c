/* api_stats.c - RabbitMQ management's message_stats objects from the
 * broker's counters: {"publish": n, "publish_details": {"rate": r}, ...},
 * plus "deliver_get", the sum of the four ways a message goes out.
 * Runs on the loop thread.
 */
#include "http_int.h"

static const sb_stat out_stats[] = { SB_STAT_DELIVER, SB_STAT_DELIVER_NO_ACK, SB_STAT_GET,
                                     SB_STAT_GET_NO_ACK };

json_t *
sb_http__rate_json(double rate)
{
    return json_pack("{s:f}", "rate", rate);
}

static void
put_count(json_t *o, const char *name, uint64_t n, double rate)
{
    char key[64];

    json_object_set_new(o, name, json_integer((json_int_t)n));
    snprintf(key, sizeof key, "%s_details", name);
    json_object_set_new(o, key, sb_http__rate_json(rate));
}

json_t *
sb_http__message_stats(const sb_msg_stats *st, unsigned which)
{
    json_t *o = json_object();
    uint64_t dg = 0;
    double dg_rate = 0;

    for (int i = 0; i < SB_STAT__COUNT; i++) {
        const char *name = sb_stat_name((sb_stat)i);
        if (name != NULL && (which & (1u << i)))
            put_count(o, name, st->n[i], st->rate[i]);
    }
    if (which & SB_HTTP_STATS_OUT) {
        for (size_t i = 0; i < sizeof out_stats / sizeof out_stats[0]; i++) {
            dg += st->n[out_stats[i]];
            dg_rate += st->rate[out_stats[i]];
        }
        put_count(o, "deliver_get", dg, dg_rate);
    }
    return o;
}
