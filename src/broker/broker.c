/* broker.c - the root object, messages and owned argument tables (vhosts
 * are vhost.c's). */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/clock.h"
#include "../common/log.h"

sb_broker *
sb_broker_new(const sb_broker_limits *lim)
{
    sb_broker *b = sb_calloc(1, sizeof *b);

    b->lim = *lim;
    b->memory_window = lim->queue_memory_window ? lim->queue_memory_window : 20000;
    b->started_at = sb_wall_ms();
    sb_list_init(&b->spilling);
    sb_broker__trace_init(b, lim->trace_max_events);
    sb_list_init(&b->conns);
    sb_list_init(&b->bchans);
    sb_broker__stats_start(b);
    b->auth = sb_auth_new();
    sb_auth_on_change(b->auth, sb_broker__auth_changed, b);
    sb_broker__vhost_new(b, sb_str_c("/"));
    sb_broker_vhost_put(b, sb_str_c("/"), "Default virtual host", NULL);  /* as RabbitMQ's */
    return b;
}

void
sb_broker_free(sb_broker *b)
{
    size_t it = 0;
    void *val;

    if (b == NULL)
        return;
    sb_broker__stats_stop(b);
    while (sb_map_next(&b->vhosts, &it, NULL, &val))
        sb_broker__vhost_free(val);
    sb_map_free(&b->vhosts);
    sb_broker__paging_free(b);  /* after the queues, which release their records */
    sb_auth_free(b->auth);
    sb_map_free(&b->reply_consumers);
    sb_map_free(&b->recovering);
    sb_buf_free(&b->orphans);
    sb_buf_free(&b->scratch);
    sb_free(b->data_dir);
    sb_broker__trace_free(b);
    sb_free(b);
}

void
sb_broker_set_loop(sb_broker *b, sb_loop *loop)
{
    sb_broker__stats_stop(b);
    b->loop = loop;
    sb_broker__stats_start(b);
}

const sb_broker_limits *
sb_broker_limits_get(const sb_broker *b)
{
    return &b->lim;
}

/* ---- messages ---- */

static void
msg_release(sb_rc *rc)
{
    sb_free(SB_CONTAINER_OF(rc, sb_msg, rc));
}

sb_msg *
sb_msg_new(sb_str props_raw, sb_str exchange, sb_str routing_key, uint64_t body_len,
           uint8_t delivery_mode, uint8_t priority)
{
    size_t head = props_raw.len + exchange.len + routing_key.len;
    sb_msg *m;

    if (body_len > UINT32_MAX || body_len > SIZE_MAX - sizeof *m - head)
        return NULL;
    m = sb_try_malloc(sizeof *m + head + body_len);
    if (m == NULL)
        return NULL;
    sb_rc_init(&m->rc, msg_release);
    m->body_len = (uint32_t)body_len;
    m->props_len = (uint32_t)props_raw.len;
    m->exchange_len = (uint8_t)exchange.len;
    m->rk_len = (uint8_t)routing_key.len;
    m->delivery_mode = delivery_mode & 0x7f;
    m->traced = 0;
    m->priority = priority;
    m->expiration_ms = -1;
    if (props_raw.len)
        memcpy(m->data, props_raw.p, props_raw.len);
    if (exchange.len)
        memcpy(m->data + props_raw.len, exchange.p, exchange.len);
    if (routing_key.len)
        memcpy(m->data + props_raw.len + exchange.len, routing_key.p, routing_key.len);
    return m;
}

/* ---- owned tables ---- */

void
sb_broker__table_copy(sb_owned_table *dst, const sb_amqp_table *src)
{
    memset(dst, 0, sizeof *dst);
    if (src == NULL || src->n == 0)
        return;
    sb_amqp_table_encode(&dst->bytes, src);
    if (sb_amqp_table_decode(dst->bytes.data, dst->bytes.len, &dst->t, &dst->arena) < 0) {
        /* Cannot happen: we just encoded it. */
        sb_log(SB_LOG_ERROR, "broker", "re-decoding an argument table failed");
        memset(&dst->t, 0, sizeof dst->t);
    }
}

void
sb_broker__table_free(sb_owned_table *t)
{
    sb_buf_free(&t->bytes);
    sb_arena_free(&t->arena);
    memset(t, 0, sizeof *t);
}

bool
sb_broker__table_same(const sb_amqp_table *a, const sb_amqp_table *b)
{
    bool ea = a == NULL || a->n == 0, eb = b == NULL || b->n == 0;

    if (ea || eb)
        return ea && eb;
    return sb_amqp_table_equal(a, b);
}
