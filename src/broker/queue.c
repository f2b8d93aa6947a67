/* queue.c - queues: declare, delete, purge, bind; the ready list and
 * dispatch to consumers (priority first, round-robin within a priority). */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

sb_queue *
sb_broker__queue_find(sb_vhost *v, sb_str name)
{
    return sb_map_get(&v->queues, name);
}

static int
queue_not_found(sb_vhost *v, sb_str name, sb_error *err)
{
    return sb_error_set(err, SB_NOT_FOUND, "no queue '%.*s' in vhost '%s'", SB_STR_ARGS(name),
                        v->name);
}

static int
locked(const sb_queue *q, sb_error *err)
{
    return sb_error_set(err, SB_RESOURCE_LOCKED,
                        "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. "
                        "It could be originally declared on another connection or the "
                        "exclusive property value does not match that of the original "
                        "declaration.",
                        q->name, q->vhost->name);
}

int
sb_broker__queue_access(sb_queue *q, const void *owner, sb_error *err)
{
    return q->exclusive && q->owner != owner ? locked(q, err) : 0;
}

/* RabbitMQ's server-named queues: "amq.gen-" and 22 url-safe base64
 * characters of randomness. Ours are unique per broker, not random. */
static void
generate_name(sb_vhost *v, char *out, size_t len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t x;
    char tail[23];

    do {
        x = ++v->broker->name_seq * 0x9E3779B97F4A7C15ull;
        x ^= (uint64_t)(uintptr_t)v;
        for (int i = 0; i < 22; i++) {
            tail[i] = b64[x & 63];
            x = (x >> 6) | ((uint64_t)i << 58);
            x *= 0xBF58476D1CE4E5B9ull;
        }
        tail[22] = '\0';
        snprintf(out, len, "amq.gen-%s", tail);
    } while (sb_broker__queue_find(v, sb_str_c(out)) != NULL);
}

static int
inequivalent(sb_queue *q, const char *arg, bool got, bool cur, sb_error *err)
{
    return sb_error_set(err, SB_PRECONDITION_FAILED,
                        "inequivalent arg '%s' for queue '%s' in vhost '%s': "
                        "received '%s' but current is '%s'",
                        arg, q->name, q->vhost->name, got ? "true" : "false",
                        cur ? "true" : "false");
}

static int
check_equivalent(sb_queue *q, const sb_queue_decl *d, sb_error *err)
{
    if (d->durable != q->durable)
        return inequivalent(q, "durable", d->durable, q->durable, err);
    if (d->auto_delete != q->auto_delete)
        return inequivalent(q, "auto_delete", d->auto_delete, q->auto_delete, err);
    return sb_broker__queue_args_equivalent(q->name, q->vhost->name, &q->args.t, d->args, err);
}

static sb_queue *
queue_new(sb_vhost *v, sb_str name, const sb_queue_decl *d)
{
    sb_queue *q = sb_calloc(1, sizeof *q);

    q->vhost = v;
    q->name = sb_strndup(name.p, name.len);
    q->name_len = name.len;
    q->durable = d->durable;
    q->exclusive = d->exclusive;
    q->auto_delete = d->auto_delete;
    q->owner = d->exclusive ? d->owner : NULL;
    sb_broker__table_copy(&q->args, d->args);
    sb_broker__queue_policy_refresh(q, false);
    sb_list_init(&q->ready);
    sb_list_init(&q->unacked);
    sb_list_init(&q->consumers);
    sb_list_init(&q->bindings_in);
    sb_list_init(&q->delayed);
    sb_list_init(&q->spill_link);
    sb_map_put(&v->queues, name, q, NULL);
    sb_broker__queue_timers_init(q);
    if (q->durable && !q->exclusive)
        sb_broker__queue_assign_id(q);
    /* Every queue is bound to the default exchange by its name; that
     * binding is implicit (see sb_publish), so nothing to record here. */
    return q;
}

static void
fill_info(const sb_queue *q, sb_queue_info *out)
{
    snprintf(out->name, sizeof out->name, "%s", q->name);
    out->messages = q->ready_count;
    out->consumers = q->consumer_count;
}

/* RabbitMQ's checks for queue.declare: configure on the queue (its
 * generated name for a server-named one), and for a new queue with a
 * dead-letter exchange, read on the queue and write on the DLX (what
 * dies there is as if published to it). A DLX argument of the wrong type
 * is left to the arguments check. */
static int
check_declare_access(const sb_queue_decl *d, sb_str name, bool is_new, sb_error *err)
{
    const sb_amqp_value *dlx;
    int rc;

    if ((rc = sb_access_check(d->access, SB_PERM_CONFIGURE, "queue", name, err)) != 0 || !is_new)
        return rc;
    dlx = d->args ? sb_amqp_table_get(d->args, "x-dead-letter-exchange") : NULL;
    if (dlx == NULL || dlx->kind != SB_FV_LONGSTR)
        return 0;
    if ((rc = sb_access_check(d->access, SB_PERM_READ, "queue", name, err)) != 0)
        return rc;
    return sb_access_check(d->access, SB_PERM_WRITE, "exchange", dlx->v.s, err);
}

int
sb_queue_declare(sb_vhost *v, const sb_queue_decl *d, sb_queue_info *out, sb_error *err)
{
    char gen[64], text[256];
    sb_str name = d->name;
    sb_queue *q;
    int rc;

    if (sb_str_eq_c(name, SB_REPLY_TO_QUEUE)) {
        /* RabbitMQ answers for the direct reply-to pseudo-queue as if it
         * had one consumer: the caller itself. */
        snprintf(out->name, sizeof out->name, "%s", SB_REPLY_TO_QUEUE);
        out->messages = 0;
        out->consumers = 1;
        return 0;
    }
    if (d->passive) {
        q = sb_broker__queue_find(v, name);
        if (q == NULL)
            return queue_not_found(v, name, err);
        if ((rc = sb_broker__queue_access(q, d->owner, err)) != 0)
            return rc;
        fill_info(q, out);
        return 0;
    }
    if (name.len == 0) {
        generate_name(v, gen, sizeof gen);
        name = sb_str_c(gen);
    } else if (sb_str_has_prefix(name, "amq.") && !d->restoring) {
        return sb_error_set(err, SB_ACCESS_REFUSED,
                            "queue name '%.*s' contains reserved prefix 'amq.*'",
                            SB_STR_ARGS(name));
    }
    q = sb_broker__queue_find(v, name);
    if (d->access != NULL && (rc = check_declare_access(d, name, q == NULL, err)) != 0)
        return rc;
    snprintf(text, sizeof text, "%.*s", SB_STR_ARGS(name));
    if ((rc = sb_broker__queue_args_check(text, v->name, d->args, err)) != 0)
        return rc;
    if (q != NULL) {
        if ((rc = sb_broker__queue_access(q, d->owner, err)) != 0)
            return rc;
        if (d->exclusive != q->exclusive)
            return locked(q, err);
        if ((rc = check_equivalent(q, d, err)) != 0)
            return rc;
        sb_broker__queue_touch(q);
    } else {
        q = queue_new(v, name, d);
        v->broker->churn.n[SB_CHURN_QUEUE_CREATED]++;
    }
    v->broker->churn.n[SB_CHURN_QUEUE_DECLARED]++;
    fill_info(q, out);
    return 0;
}

void
sb_broker__qentry_free(sb_queue *q, sb_qentry *e)
{
    if (e->ref != NULL && q != NULL)
        sb_broker__store_remove(q, e);
    sb_free(e->ref);  /* still set when the broker is only shutting down */
    sb_msg_unref(e->msg);
    sb_free(e);
}

static uint32_t
drop_ready(sb_queue *q)
{
    uint32_t n = q->ready_count;
    sb_list *it, *tmp;

    sb_broker__spill_drop_all(q);
    sb_list_foreach_safe(it, tmp, &q->ready) {
        sb_list_remove(it);
        sb_broker__qentry_free(q, SB_CONTAINER_OF(it, sb_qentry, link));
    }
    q->inmem = 0;
    q->ready_count = 0;
    q->ready_bytes = 0;
    return n;
}

/* Removes q from its vhost and frees it: bindings, ready messages,
 * consumers (cancel-notified when notify), and detaches unacked
 * deliveries (their acks then just drop the message). */
void
sb_broker__queue_destroy(sb_queue *q, bool notify_consumers)
{
    sb_list *it, *tmp;

    q->deleted = true;
    q->vhost->broker->churn.n[SB_CHURN_QUEUE_DELETED] += !q->vhost->closing;
    if (sb_broker__queue_persists(q) && !q->vhost->closing)
        sb_broker__defs_changed(q->vhost->broker);
    sb_broker__queue_timers_stop(q);
    sb_broker__delay_drop_all(q->vhost->broker, &q->delayed);
    sb_map_del(&q->vhost->queues, sb_str_make(q->name, q->name_len));
    sb_list_foreach_safe(it, tmp, &q->bindings_in) {
        sb_binding *bd = SB_CONTAINER_OF(it, sb_binding, dst_link);
        sb_exchange *src = bd->source;
        sb_broker__binding_free(bd);
        sb_broker__exchange_maybe_auto_delete(src);
    }
    sb_list_foreach_safe(it, tmp, &q->consumers)
        sb_broker__consumer_free(SB_CONTAINER_OF(it, sb_consumer, qlink), notify_consumers);
    sb_list_foreach_safe(it, tmp, &q->unacked) {
        sb_unacked *u = SB_CONTAINER_OF(it, sb_unacked, qlink);
        if (u->entry->ref != NULL)
            sb_broker__store_remove(q, u->entry);
        u->queue = NULL;
        sb_list_remove(&u->qlink);
    }
    drop_ready(q);
    sb_broker__table_free(&q->args);
    sb_broker__queue_cfg_free(&q->cfg);
    sb_free(q->name);
    sb_free(q);
}

int
sb_queue_delete(sb_vhost *v, sb_str name, const void *owner, bool if_unused, bool if_empty,
                uint32_t *count, sb_error *err)
{
    sb_queue *q = sb_broker__queue_find(v, name);
    int rc;

    *count = 0;
    if (q == NULL)
        return 0;  /* RabbitMQ: deleting a missing queue succeeds with 0 */
    if ((rc = sb_broker__queue_access(q, owner, err)) != 0)
        return rc;
    if (if_unused && q->consumer_count > 0)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "queue '%s' in vhost '%s' in use",
                            q->name, v->name);
    if (if_empty && q->ready_count > 0)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "queue '%s' in vhost '%s' not empty",
                            q->name, v->name);
    *count = q->ready_count;
    sb_broker__queue_destroy(q, true);
    return 0;
}

int
sb_queue_purge(sb_vhost *v, sb_str name, const void *owner, uint32_t *count, sb_error *err)
{
    sb_queue *q = sb_broker__queue_find(v, name);
    int rc;

    if (q == NULL)
        return queue_not_found(v, name, err);
    if ((rc = sb_broker__queue_access(q, owner, err)) != 0)
        return rc;
    *count = drop_ready(q);
    return 0;
}

int
sb_queue_bind(sb_vhost *v, sb_str queue, sb_str exchange, sb_str key, const sb_amqp_table *args,
              const void *owner, bool unbind, sb_error *err)
{
    sb_queue *q = sb_broker__queue_find(v, queue);
    sb_exchange *x;
    char text[256];
    int rc;

    if (exchange.len == 0)
        return sb_error_set(err, SB_ACCESS_REFUSED, "operation not permitted on the default exchange");
    x = sb_broker__exchange_find(v, exchange);
    if (unbind && (q == NULL || x == NULL))
        return 0;  /* RabbitMQ: unbinding what does not exist succeeds */
    if (q == NULL)
        return queue_not_found(v, queue, err);
    if (x == NULL)
        return sb_error_set(err, SB_NOT_FOUND, "no exchange '%.*s' in vhost '%s'",
                            SB_STR_ARGS(exchange), v->name);
    if ((rc = sb_broker__queue_access(q, owner, err)) != 0)
        return rc;
    if (!unbind && x->type->check_args && x->type->check_args(args, text, sizeof text) != 0)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "%s", text);
    return sb_broker__bind(x, SB_DEST_QUEUE, q, &q->bindings_in, key, args, unbind);
}

void
sb_vhost_drop_owner(sb_vhost *v, const void *owner)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&v->queues, &it, NULL, &val)) {
        sb_queue *q = val;
        if (q->exclusive && q->owner == owner)
            sb_broker__queue_destroy(q, false);
    }
}

/* ---- ready list and dispatch ---- */

static bool
over_limit(const sb_queue *q, uint32_t more, uint64_t more_bytes)
{
    return (q->cfg.max_length >= 0 && (int64_t)(q->ready_count + more) > q->cfg.max_length) ||
           (q->cfg.max_bytes >= 0 && (int64_t)(q->ready_bytes + more_bytes) > q->cfg.max_bytes);
}

static void
ready_link(sb_queue *q, sb_qentry *e, sb_list *before)
{
    sb_list_insert_before(before, &e->link);
    q->inmem++;
    q->ready_count++;
    q->ready_bytes += e->msg->body_len;
}

sb_qentry *
sb_broker__queue_pop(sb_queue *q)
{
    sb_qentry *e = sb_broker__queue_head(q);

    if (e == NULL)
        return NULL;
    sb_list_remove(&e->link);
    q->inmem--;
    q->ready_count--;
    q->ready_bytes -= e->msg->body_len;
    return e;
}

static sb_qentry *
qentry_new(sb_queue *q, sb_msg *m)
{
    sb_qentry *e = sb_malloc(sizeof *e);

    e->msg = sb_msg_ref(m);
    e->seq = q->next_seq++;
    e->redelivered = false;
    e->marked = false;
    e->ref = NULL;
    e->prio = m->priority < q->cfg.max_priority ? m->priority : q->cfg.max_priority;
    e->expires_at = sb_broker__expiry_for(q, m, sb_broker__now(q->vhost->broker));
    return e;
}

sb_qentry *
sb_broker__queue_entry_new(sb_queue *q, sb_msg *m)
{
    sb_qentry *e = qentry_new(q, m);

    if (q->cfg.delivery_limit >= 0)
        sb_broker__count_delivery_start(e);
    if (sb_broker__queue_persists(q) && m->delivery_mode == 2 &&
        sb_broker__store_append(q, e) < 0) {
        sb_broker__qentry_free(q, e);  /* not logged, so refused (nack) */
        return NULL;
    }
    return e;
}

void
sb_broker__queue_enforce_limits(sb_queue *q)
{
    while (over_limit(q, 0, 0) && q->ready_count > 0)
        sb_broker__deadletter(q, sb_broker__queue_pop(q), SB_DEATH_MAXLEN);
}

void
sb_broker__queue_link_entry(sb_queue *q, sb_qentry *e)
{
    sb_list *at = &q->ready;

    /* Priority order, FIFO within a priority: walk back past lower ones. */
    while (q->cfg.max_priority && at->prev != &q->ready &&
           SB_CONTAINER_OF(at->prev, sb_qentry, link)->prio < e->prio)
        at = at->prev;
    ready_link(q, e, at);
    sb_broker__queue_enforce_limits(q);
    if (q->consumer_count > 0)
        sb_broker__queue_dispatch(q);
    if (q->ready_count > 0 && e->expires_at != 0)
        sb_broker__queue_expire_head(q);
    if (q->inmem > q->vhost->broker->memory_window && q->marker == NULL)
        sb_broker__queue_spill(q);
}

bool
sb_broker__queue_enqueue(sb_queue *q, sb_msg *m)
{
    sb_qentry *e;

    if (q->cfg.overflow != SB_OVERFLOW_DROP_HEAD && over_limit(q, 1, m->body_len)) {
        if (q->cfg.overflow == SB_OVERFLOW_REJECT_PUBLISH_DLX)
            sb_broker__deadletter(q, qentry_new(q, m), SB_DEATH_MAXLEN);
        return false;
    }
    if ((e = sb_broker__queue_entry_new(q, m)) == NULL)
        return false;
    q->stats.n[SB_STAT_PUBLISH]++;
    sb_broker__queue_link_entry(q, e);
    return true;
}

sb_qentry *
sb_broker__queue_unspill(sb_queue *q, sb_msg *m, const sb_store_loc *loc, uint64_t msg_id,
                         bool delivered)
{
    sb_qentry *e = qentry_new(q, m);

    q->next_seq--;               /* qentry_new took one: this one is older */
    e->seq = q->spill_seq++;
    if (loc != NULL)
        sb_broker__qentry_set_ref(e, loc, msg_id);
    e->redelivered = e->marked = delivered;
    sb_list_insert_before(&q->marker->link, &e->link);
    q->inmem++;                  /* ready_count and ready_bytes counted it already */
    return e;
}

void
sb_broker__queue_restore(sb_queue *q, sb_msg *m, const sb_store_loc *loc, uint64_t msg_id,
                         bool delivered)
{
    sb_qentry *e = qentry_new(q, m);
    sb_list *at = &q->ready;

    sb_broker__qentry_set_ref(e, loc, msg_id);
    e->redelivered = e->marked = delivered;
    while (q->cfg.max_priority && at->prev != &q->ready &&
           SB_CONTAINER_OF(at->prev, sb_qentry, link)->prio < e->prio)
        at = at->prev;
    ready_link(q, e, at);
}

void
sb_broker__queue_requeue(sb_queue *q, sb_qentry *e)
{
    sb_list *it;

    if (!sb_broker__count_delivery(q, e))
        return;
    e->redelivered = true;
    /* Back in its place: priority first, then enqueue order. Requeued
     * entries are older than most ready ones, so the walk is short. */
    sb_list_foreach(it, &q->ready) {
        sb_qentry *o = SB_CONTAINER_OF(it, sb_qentry, link);
        if (o->prio < e->prio || (o->prio == e->prio && o->seq > e->seq))
            break;
    }
    ready_link(q, e, it);
}

/* The consumer that gets the next message: the first with credit in
 * priority order. Round-robin comes from moving each served consumer to
 * the back of its priority group. */
static sb_consumer *
next_consumer(sb_queue *q)
{
    sb_list *it;

    if (q->cfg.single_active) {
        /* Only the first consumer to subscribe is active. */
        it = sb_list_first(&q->consumers);
        return it && sb_broker__consumer_has_credit(SB_CONTAINER_OF(it, sb_consumer, qlink))
                   ? SB_CONTAINER_OF(it, sb_consumer, qlink)
                   : NULL;
    }
    sb_list_foreach(it, &q->consumers) {
        sb_consumer *c = SB_CONTAINER_OF(it, sb_consumer, qlink);
        if (sb_broker__consumer_has_credit(c))
            return c;
    }
    return NULL;
}

static void
rotate(sb_queue *q, sb_consumer *c)
{
    sb_list *it = c->qlink.next;

    if (q->cfg.single_active)
        return;
    while (it != &q->consumers && SB_CONTAINER_OF(it, sb_consumer, qlink)->priority == c->priority)
        it = it->next;
    if (it == c->qlink.next)
        return;
    sb_list_remove(&c->qlink);
    sb_list_insert_before(it, &c->qlink);
}

static void
deliver_one(sb_queue *q, sb_consumer *c, sb_qentry *e)
{
    sb_deliver_info d = {
        .consumer_tag = sb_str_make(c->tag, c->tag_len),
        .redelivered = e->redelivered,
        .msg = e->msg,
    };
    bool no_ack = c->no_ack;

    sb_broker__stat_out(q, c->ch, no_ack ? SB_STAT_DELIVER_NO_ACK : SB_STAT_DELIVER,
                        e->redelivered);
    if (no_ack) {
        d.delivery_tag = ++c->ch->next_tag;
    } else {
        sb_broker__store_delivered(q, e);
        d.delivery_tag = sb_broker__bchan_track(c->ch, q, c, e);
    }
    if (e->msg->traced | q->vhost->tracing)
        sb_broker__trace_deliver(q, c->ch, c, e, d.delivery_tag);
    c->ops->deliver(c, &d, c->ud);
    if (no_ack)
        sb_broker__qentry_free(q, e);
}

void
sb_broker__queue_dispatch(sb_queue *q)
{
    sb_consumer *c;

    if (q->dispatching)
        return;
    q->dispatching = true;
    sb_broker__queue_expire_head(q);
    while (q->ready_count > 0 && (c = next_consumer(q)) != NULL) {
        sb_qentry *e = sb_broker__queue_pop(q);
        rotate(q, c);
        deliver_one(q, c, e);
        if (q->ready_count > 0)
            sb_broker__queue_expire_head(q);
    }
    q->dispatching = false;
}

void
sb_broker__queue_consumer_gone(sb_queue *q)
{
    if (q->deleted)
        return;
    if (q->auto_delete && q->had_consumer && q->consumer_count == 0) {
        sb_broker__queue_destroy(q, false);
        return;
    }
    sb_broker__queue_touch(q);
    /* With a single active consumer, the next one takes over. */
    if (q->cfg.single_active)
        sb_broker__queue_dispatch(q);
}
