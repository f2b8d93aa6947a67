/* retry.c - failures that come back: retry with back-off (x-retry-delays,
 * Switchboard's own: a rejected message returns to its queue after the
 * next delay, carrying x-retry-count, and is dead-lettered once the delays
 * are used up) and x-delivery-limit (as RabbitMQ's quorum queues: each
 * return counts in x-delivery-count; past the limit the message is
 * dead-lettered with reason delivery_limit). Both rewrite one header, so
 * they copy the message; neither is on the path of a message that is
 * simply delivered and acked. */
#include "broker_int.h"

#include <string.h>

void
sb_broker__msg_headers(const sb_msg *m, sb_msg_headers *out)
{
    sb_str raw = sb_msg_props(m);

    out->arena = SB_ARENA_INIT;
    out->headers = NULL;
    memset(&out->props, 0, sizeof out->props);
    if (raw.len >= 2 && (raw.p[0] & (SB_PROP_HEADERS >> 8)) &&
        sb_amqp_props_decode(raw.p, raw.len, &out->props, &out->arena) == 0)
        out->headers = &out->props.headers;
}

void
sb_broker__msg_headers_free(sb_msg_headers *h)
{
    sb_arena_free(&h->arena);
}

sb_msg *
sb_broker__msg_with_int_header(const sb_msg *m, const char *key, int64_t v)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p;
    sb_amqp_entry *e;
    uint32_t n, k = 0;
    sb_msg *out = NULL;

    if (sb_amqp_props_decode(sb_msg_props(m).p, sb_msg_props(m).len, &p, &a) < 0)
        goto done;
    n = (p.flags & SB_PROP_HEADERS) ? p.headers.n : 0;
    e = sb_arena_alloc(&a, (n + 1) * sizeof *e);
    e[k++] = (sb_amqp_entry){ sb_str_c(key), { .kind = SB_FV_I64, .v.i = v } };
    for (uint32_t i = 0; i < n; i++)
        if (!sb_str_eq_c(p.headers.e[i].key, key))
            e[k++] = p.headers.e[i];
    p.headers = (sb_amqp_table){ .n = k, .e = e };
    p.flags |= SB_PROP_HEADERS;
    out = sb_broker__msg_with_props(m, &p, sb_msg_exchange(m), sb_msg_rk(m));
done:
    sb_arena_free(&a);
    return out;
}

static int64_t
int_header(const sb_msg *m, const char *key)
{
    sb_msg_headers h;
    const sb_amqp_value *v;
    int64_t n = 0;

    sb_broker__msg_headers(m, &h);
    v = h.headers ? sb_amqp_table_get(h.headers, key) : NULL;
    if (v == NULL || !sb_amqp_value_int(v, &n) || n < 0)
        n = 0;
    sb_broker__msg_headers_free(&h);
    return n;
}

/* Replaces e's message by a copy with header key = v. */
static bool
restamp(sb_qentry *e, const char *key, int64_t v)
{
    sb_msg *m = sb_broker__msg_with_int_header(e->msg, key, v);

    if (m == NULL)
        return false;
    sb_msg_unref(e->msg);
    e->msg = m;
    return true;
}

/* The retry is logged as a new record before the old one is removed, so a
 * persistent message waiting for its retry survives a restart (it is back
 * in its queue at once, its delay forgotten). */
bool
sb_broker__retry(sb_queue *q, sb_qentry *e)
{
    int64_t r = int_header(e->msg, "x-retry-count");
    sb_qentry *next;

    if (q->cfg.nretry == 0 || r >= q->cfg.nretry || !restamp(e, "x-retry-count", r + 1))
        return false;
    if ((next = sb_broker__queue_entry_new(q, e->msg)) == NULL)
        return false;  /* could not log it: dead-letter instead of losing it */
    if (next->msg->traced)
        sb_broker__trace_retry(q, next, (uint32_t)r + 1, q->cfg.retry_delays[r]);
    if (!sb_broker__delay_entry(q, next, q->cfg.retry_delays[r]))
        sb_broker__queue_link_entry(q, next);
    sb_broker__qentry_free(q, e);
    sb_broker__stat(q->vhost, q, NULL, SB_STAT_RETRY);
    return true;
}

bool
sb_broker__count_delivery(sb_queue *q, sb_qentry *e)
{
    int64_t n;

    if (q->cfg.delivery_limit < 0)
        return true;
    n = int_header(e->msg, "x-delivery-count") + 1;
    if (n > q->cfg.delivery_limit) {
        sb_broker__deadletter(q, e, SB_DEATH_DELIVERY_LIMIT);
        return false;
    }
    restamp(e, "x-delivery-count", n);
    return true;
}

void
sb_broker__count_delivery_start(sb_qentry *e)
{
    sb_msg_headers h;
    bool has;

    sb_broker__msg_headers(e->msg, &h);
    has = h.headers && sb_amqp_table_get(h.headers, "x-delivery-count") != NULL;
    sb_broker__msg_headers_free(&h);
    if (!has)
        restamp(e, "x-delivery-count", 0);
}
