/* inspect.c - read-only views of the broker's objects, for the HTTP
 * management API: object totals, queues, exchanges and bindings.
 *
 * Nothing here changes broker state. Views point into the live objects
 * (names, argument tables), so they are valid only until the broker next
 * changes; the HTTP layer turns each into JSON inside the callback. The
 * walks are O(objects): management listings are rare next to publishes,
 * and the broker keeps no per-object counters for them beyond the ones
 * dispatch already needs (ready_count, unacked_count, consumer_count).
 * Runs on the loop thread.
 */
#include "broker_int.h"

#include <string.h>

#include "../common/clock.h"

static const sb_amqp_table no_args = { 0 };

static const sb_amqp_table *
args_of(const sb_owned_table *t)
{
    return t->t.n > 0 ? &t->t : &no_args;
}

static void
count_vhost(const sb_vhost *v, sb_broker_counts *out)
{
    size_t it = 0;
    void *val;

    out->vhosts++;
    out->exchanges += (uint32_t)v->exchanges.count;
    while (sb_map_next(&v->queues, &it, NULL, &val)) {
        const sb_queue *q = val;
        out->queues++;
        out->consumers += q->consumer_count;
        out->messages_ready += q->ready_count;
        out->messages_unacked += q->unacked_count;
    }
}

void
sb_broker_totals(const sb_broker *b, sb_broker_counts *out)
{
    size_t it = 0;
    void *val;

    memset(out, 0, sizeof *out);
    out->connections = b->connections;
    out->channels = b->channels;
    while (sb_map_next(&b->vhosts, &it, NULL, &val))
        count_vhost(val, out);
}

void
sb_broker_each_vhost(sb_broker *b, void (*fn)(sb_vhost *v, void *ud), void *ud)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&b->vhosts, &it, NULL, &val))
        fn(val, ud);
}

/* ---- queues ---- */

static uint64_t
unacked_bytes(const sb_queue *q)
{
    const sb_list *it;
    uint64_t n = 0;

    sb_list_foreach(it, &q->unacked)
        n += SB_CONTAINER_OF(it, sb_unacked, qlink)->entry->msg->body_len;
    return n;
}

static uint32_t
list_length(const sb_list *h)
{
    const sb_list *it;
    uint32_t n = 0;

    sb_list_foreach(it, h)
        n++;
    return n;
}

/* When q was last used, as wall-clock ms (last_used is monotonic). */
static uint64_t
idle_since(const sb_queue *q)
{
    uint64_t now = sb_broker__now(q->vhost->broker), wall = sb_wall_ms();

    return now >= q->last_used && wall >= now - q->last_used ? wall - (now - q->last_used) : wall;
}

static void
queue_view(const sb_queue *q, sb_queue_view *out)
{
    *out = (sb_queue_view){
        .name = sb_str_make(q->name, q->name_len),
        .vhost = q->vhost->name,
        .durable = q->durable,
        .auto_delete = q->auto_delete,
        .exclusive = q->exclusive,
        .args = args_of(&q->args),
        .messages_ready = q->ready_count,
        .messages_unacked = q->unacked_count,
        .ready_bytes = q->ready_bytes,
        .unacked_bytes = unacked_bytes(q),
        .consumers = q->consumer_count,
        .policy = q->policy,
        .paged_out = (uint32_t)((q->spill.len - q->spill_head) / sizeof(sb_spilled)),
        .delayed = list_length(&q->delayed),
        .idle_since = idle_since(q),
        .stats = &q->stats,
    };
}

void
sb_vhost_each_queue(sb_vhost *v, void (*fn)(const sb_queue_view *q, void *ud), void *ud)
{
    size_t it = 0;
    void *val;
    sb_queue_view qv;

    while (sb_map_next(&v->queues, &it, NULL, &val)) {
        queue_view(val, &qv);
        fn(&qv, ud);
    }
}

bool
sb_vhost_queue_view(sb_vhost *v, sb_str name, sb_queue_view *out)
{
    const sb_queue *q = sb_broker__queue_find(v, name);

    if (q == NULL)
        return false;
    queue_view(q, out);
    return true;
}

bool
sb_vhost_queue_consumers(sb_vhost *v, sb_str name, uint32_t *count)
{
    const sb_queue *q = sb_broker__queue_find(v, name);

    if (q == NULL)
        return false;
    *count = q->consumer_count;
    return true;
}

/* ---- exchanges ---- */

static void
exchange_view(const sb_exchange *x, sb_exchange_view *out)
{
    *out = (sb_exchange_view){
        .name = sb_str_make(x->name, x->name_len),
        .vhost = x->vhost->name,
        .type = x->type->name,
        .durable = x->durable,
        .auto_delete = x->auto_delete,
        .internal = x->internal,
        .policy = x->policy,
        .args = args_of(&x->args),
    };
}

void
sb_vhost_each_exchange(sb_vhost *v, void (*fn)(const sb_exchange_view *x, void *ud), void *ud)
{
    size_t it = 0;
    void *val;
    sb_exchange_view xv;

    while (sb_map_next(&v->exchanges, &it, NULL, &val)) {
        exchange_view(val, &xv);
        fn(&xv, ud);
    }
}

bool
sb_vhost_exchange_view(sb_vhost *v, sb_str name, sb_exchange_view *out)
{
    const sb_exchange *x = sb_broker__exchange_find(v, name);

    if (x == NULL)
        return false;
    exchange_view(x, out);
    return true;
}

/* ---- bindings ---- */

static sb_str
dest_name(const sb_binding *bd)
{
    if (bd->kind == SB_DEST_EXCHANGE) {
        const sb_exchange *x = bd->dest;
        return sb_str_make(x->name, x->name_len);
    }
    const sb_queue *q = bd->dest;
    return sb_str_make(q->name, q->name_len);
}

static void
each_binding_of(const sb_exchange *x, void (*fn)(const sb_binding_view *b, void *ud), void *ud)
{
    const sb_list *it;

    sb_list_foreach(it, &x->bindings_out) {
        const sb_binding *bd = SB_CONTAINER_OF(it, sb_binding, src_link);
        sb_binding_view bv = {
            .source = sb_str_make(x->name, x->name_len),
            .vhost = x->vhost->name,
            .destination = dest_name(bd),
            .is_to_exchange = bd->kind == SB_DEST_EXCHANGE,
            .routing_key = sb_str_make(bd->key, bd->key_len),
            .args = args_of(&bd->args),
        };
        fn(&bv, ud);
    }
}

void
sb_vhost_each_binding(sb_vhost *v, void (*fn)(const sb_binding_view *b, void *ud), void *ud)
{
    size_t it = 0;
    void *val;

    /* The default exchange's bindings are implicit (see sb_publish). */
    while (sb_map_next(&v->queues, &it, NULL, &val)) {
        const sb_queue *q = val;
        sb_binding_view bv = {
            .source = SB_STR_LIT(""),
            .vhost = v->name,
            .destination = sb_str_make(q->name, q->name_len),
            .routing_key = sb_str_make(q->name, q->name_len),
            .args = &no_args,
        };
        fn(&bv, ud);
    }
    it = 0;
    while (sb_map_next(&v->exchanges, &it, NULL, &val))
        each_binding_of(val, fn, ud);
}
