/* bchan.c - the broker's half of a channel: consumers, delivery tags,
 * unacknowledged deliveries, prefetch (basic.qos) and acknowledgements. */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

sb_bchan *
sb_bchan_new(sb_broker *b, sb_vhost *v, const void *owner)
{
    sb_bchan *ch = sb_calloc(1, sizeof *ch);

    ch->broker = b;
    ch->vhost = v;
    ch->owner = owner;
    ch->flow_active = true;
    b->channels++;
    b->churn.n[SB_CHURN_CHANNEL_CREATED]++;
    sb_list_push_back(&b->bchans, &ch->link);
    sb_list_init(&ch->unacked);
    sb_list_init(&ch->consumers);
    return ch;
}

uint64_t
sb_bchan_oldest_delivery(const sb_bchan *ch)
{
    if (sb_list_empty(&ch->unacked))
        return 0;
    return SB_CONTAINER_OF(ch->unacked.next, sb_unacked, link)->delivered_at;
}

bool
sb_broker__consumer_has_credit(const sb_consumer *c)
{
    const sb_bchan *ch = c->ch;

    if (!c->started || !ch->flow_active)
        return false;
    if (!c->no_ack) {
        if (c->prefetch != 0 && c->unacked >= c->prefetch)
            return false;
        if (ch->prefetch_global != 0 && ch->unacked_count >= ch->prefetch_global)
            return false;
    }
    return c->ops->writable == NULL || c->ops->writable((sb_consumer *)c, c->ud);
}

uint64_t
sb_broker__bchan_track(sb_bchan *ch, sb_queue *q, sb_consumer *c, sb_qentry *e)
{
    sb_unacked *u = sb_malloc(sizeof *u);

    u->tag = ++ch->next_tag;
    u->queue = q;
    u->consumer = c;
    u->entry = e;
    u->delivered_at = sb_broker__now(ch->broker);
    u->counted = c != NULL;
    sb_list_push_back(&ch->unacked, &u->link);
    sb_list_push_back(&q->unacked, &u->qlink);
    q->unacked_count++;
    if (c != NULL) {
        c->unacked++;
        ch->unacked_count++;
    }
    return u->tag;
}

/* ---- settling deliveries ---- */

/* Remembers q so it is dispatched once the whole ack/nack is applied. */
static void
touch(sb_dest_vec *touched, sb_queue *q)
{
    if (q != NULL)
        sb_dest_vec_push_unique(touched, q);
}

/* How a delivery is settled. */
typedef enum settle_mode {
    SETTLE_ACK,             /* done: drop the message */
    SETTLE_REQUEUE,         /* back to its queue */
    SETTLE_REJECT,          /* dead-letter (or drop) as rejected */
} settle_mode;

static const sb_trace_kind settle_kinds[] = {
    [SETTLE_ACK] = SB_TRACE_ACKED,
    [SETTLE_REQUEUE] = SB_TRACE_REQUEUED,
    [SETTLE_REJECT] = SB_TRACE_REJECTED,
};

/* Forgets u; requeues, dead-letters or drops its message. */
static void
settle(sb_bchan *ch, sb_unacked *u, settle_mode mode, sb_dest_vec *touched)
{
    if (u->entry->msg->traced)
        sb_broker__trace_settle(ch, u, settle_kinds[mode]);
    sb_list_remove(&u->link);
    if (u->counted)
        ch->unacked_count--;
    if (u->consumer != NULL) {
        u->consumer->unacked--;
        touch(touched, u->consumer->queue);
    }
    if (u->queue != NULL) {
        sb_list_remove(&u->qlink);
        u->queue->unacked_count--;
        touch(touched, u->queue);
    }
    if (mode == SETTLE_ACK)
        sb_broker__stat(ch->vhost, u->queue, ch, SB_STAT_ACK);
    if (mode == SETTLE_REQUEUE && u->queue != NULL)
        sb_broker__queue_requeue(u->queue, u->entry);
    else if (mode == SETTLE_REJECT && u->queue != NULL) {
        if (!sb_broker__retry(u->queue, u->entry))
            sb_broker__deadletter(u->queue, u->entry, SB_DEATH_REJECTED);
    }
    else
        sb_broker__qentry_free(u->queue, u->entry);
    sb_free(u);
}

static void
dispatch_touched(sb_dest_vec *touched)
{
    for (size_t i = 0; i < touched->n; i++)
        sb_broker__queue_dispatch(touched->v[i]);
    touched->n = 0;
}

/* The channel-wide prefetch limit frees every consumer of the channel,
 * not only those of the settled queues. */
static void
touch_all_consumers(sb_bchan *ch, sb_dest_vec *touched)
{
    sb_list *it;

    sb_list_foreach(it, &ch->consumers)
        touch(touched, SB_CONTAINER_OF(it, sb_consumer, clink)->queue);
}

static sb_unacked *
find_tag(sb_bchan *ch, uint64_t tag)
{
    sb_list *it;

    /* Acks mostly come in order, so the head is the usual hit. */
    sb_list_foreach(it, &ch->unacked) {
        sb_unacked *u = SB_CONTAINER_OF(it, sb_unacked, link);
        if (u->tag >= tag)
            return u->tag == tag ? u : NULL;
    }
    return NULL;
}

/* Settles tag (or every tag up to it when multiple; all when tag is 0
 * and multiple). Requeued messages go back in their original order. */
static int
settle_tags(sb_bchan *ch, uint64_t tag, bool multiple, settle_mode mode, sb_error *err)
{
    sb_dest_vec touched = { 0 };
    sb_list *it, *tmp;

    if (!multiple || tag != 0) {
        if (find_tag(ch, tag) == NULL)
            return sb_error_set(err, SB_PRECONDITION_FAILED, "unknown delivery tag %llu",
                                (unsigned long long)tag);
    }
    if (!multiple) {
        settle(ch, find_tag(ch, tag), mode, &touched);
    } else if (mode == SETTLE_REQUEUE) {
        /* Backwards, so requeued entries are inserted newest first and
         * each insertion walk stays short. */
        for (it = ch->unacked.prev, tmp = it->prev; it != &ch->unacked; it = tmp, tmp = it->prev) {
            sb_unacked *u = SB_CONTAINER_OF(it, sb_unacked, link);
            if (tag == 0 || u->tag <= tag)
                settle(ch, u, mode, &touched);
        }
    } else {
        /* Forwards: dead letters leave in delivery order. Tags ascend, so
         * stop at the first one past tag. */
        sb_list_foreach_safe(it, tmp, &ch->unacked) {
            sb_unacked *u = SB_CONTAINER_OF(it, sb_unacked, link);
            if (tag != 0 && u->tag > tag)
                break;
            settle(ch, u, mode, &touched);
        }
    }
    if (ch->prefetch_global != 0)
        touch_all_consumers(ch, &touched);
    dispatch_touched(&touched);
    sb_dest_vec_free(&touched);
    return 0;
}

int
sb_bchan_ack(sb_bchan *ch, uint64_t tag, bool multiple, sb_error *err)
{
    return settle_tags(ch, tag, multiple, SETTLE_ACK, err);
}

int
sb_bchan_nack(sb_bchan *ch, uint64_t tag, bool multiple, bool requeue, sb_error *err)
{
    return settle_tags(ch, tag, multiple, requeue ? SETTLE_REQUEUE : SETTLE_REJECT, err);
}

int
sb_bchan_recover(sb_bchan *ch, bool requeue, sb_error *err)
{
    if (!requeue)
        return sb_error_set(err, SB_NOT_IMPLEMENTED, "requeue=false");
    if (sb_list_empty(&ch->unacked))
        return 0;
    return settle_tags(ch, 0, true, SETTLE_REQUEUE, err);
}

/* ---- prefetch and flow ---- */

int
sb_bchan_qos(sb_bchan *ch, uint32_t prefetch_size, uint16_t count, bool global, sb_error *err)
{
    sb_dest_vec touched = { 0 };

    if (prefetch_size != 0)
        return sb_error_set(err, SB_NOT_IMPLEMENTED, "prefetch_size!=0 (%u)", prefetch_size);
    if (global)
        ch->prefetch_global = count;
    else
        ch->prefetch_consumer = count;
    touch_all_consumers(ch, &touched);
    dispatch_touched(&touched);
    sb_dest_vec_free(&touched);
    return 0;
}

void
sb_bchan_flow(sb_bchan *ch, bool active)
{
    ch->flow_active = active;
    if (active)
        sb_bchan_resume(ch);
}

void
sb_bchan_resume(sb_bchan *ch)
{
    sb_dest_vec touched = { 0 };

    touch_all_consumers(ch, &touched);
    dispatch_touched(&touched);
    sb_dest_vec_free(&touched);
}

/* ---- consumers ---- */

void
sb_broker__generate_ctag(sb_bchan *ch, char *out, size_t len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t x = (++ch->ctag_seq) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)ch;
    char tail[23];

    for (int i = 0; i < 22; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        tail[i] = b64[(x >> 58) & 63];
    }
    tail[22] = '\0';
    snprintf(out, len, "amq.ctag-%s", tail);
}

/* Inserts c after every consumer of equal or higher priority. */
static void
insert_by_priority(sb_queue *q, sb_consumer *c)
{
    sb_list *it;

    sb_list_foreach(it, &q->consumers) {
        if (SB_CONTAINER_OF(it, sb_consumer, qlink)->priority < c->priority)
            break;
    }
    sb_list_insert_before(it, &c->qlink);
}

static int
consume_check(sb_bchan *ch, sb_queue *q, const sb_consume_req *r, sb_error *err)
{
    int rc;

    if ((rc = sb_broker__queue_access(q, ch->owner, err)) != 0)
        return rc;
    if (q->has_exclusive_consumer || (r->exclusive && q->consumer_count > 0))
        return sb_error_set(err, SB_ACCESS_REFUSED, "queue '%s' in vhost '%s' in exclusive use",
                            q->name, ch->vhost->name);
    return 0;
}

int
sb_bchan_consume(sb_bchan *ch, const sb_consume_req *r, char *tag_out, sb_consumer **out,
                 sb_error *err)
{
    sb_queue *q = sb_broker__queue_find(ch->vhost, r->queue);
    sb_consumer *c;
    int rc;

    /* RabbitMQ checks the tag before the queue. */
    if (r->tag.len > 0 && sb_map_get(&ch->consumer_tags, r->tag) != NULL)
        return sb_error_set(err, SB_NOT_ALLOWED, "attempt to reuse consumer tag '%.*s'",
                            SB_STR_ARGS(r->tag));
    if (sb_str_eq_c(r->queue, SB_REPLY_TO_QUEUE))
        return sb_broker__reply_consume(ch, r, tag_out, out, err);
    if (q == NULL)
        return sb_error_set(err, SB_NOT_FOUND, "no queue '%.*s' in vhost '%s'",
                            SB_STR_ARGS(r->queue), ch->vhost->name);
    if ((rc = consume_check(ch, q, r, err)) != 0)
        return rc;
    if (r->tag.len > 0)
        snprintf(tag_out, 256, "%.*s", SB_STR_ARGS(r->tag));
    else
        do
            sb_broker__generate_ctag(ch, tag_out, 256);
        while (sb_map_get(&ch->consumer_tags, sb_str_c(tag_out)) != NULL);
    c = sb_calloc(1, sizeof *c);
    c->queue = q;
    c->ch = ch;
    c->tag = sb_strdup(tag_out);
    c->tag_len = strlen(tag_out);
    c->no_ack = r->no_ack;
    c->exclusive = r->exclusive;
    c->priority = r->priority;
    c->prefetch = ch->prefetch_consumer;
    c->ops = r->ops;
    c->ud = r->ud;
    insert_by_priority(q, c);
    sb_list_push_back(&ch->consumers, &c->clink);
    sb_map_put(&ch->consumer_tags, sb_str_make(c->tag, c->tag_len), c, NULL);
    q->consumer_count++;
    q->had_consumer = true;
    sb_broker__queue_touch(q);
    if (r->exclusive)
        q->has_exclusive_consumer = true;
    *out = c;
    return 0;
}

void
sb_consumer_start(sb_consumer *c)
{
    c->started = true;
    if (c->queue != NULL)
        sb_broker__queue_dispatch(c->queue);
}

sb_str
sb_consumer_tag(const sb_consumer *c)
{
    return sb_str_make(c->tag, c->tag_len);
}

/* Unregisters c everywhere. Its unacked deliveries stay on the channel
 * (RabbitMQ keeps them until acked or the channel closes). */
void
sb_broker__consumer_free(sb_consumer *c, bool notify)
{
    sb_queue *q = c->queue;
    sb_bchan *ch = c->ch;
    sb_list *it;

    sb_list_foreach(it, &ch->unacked) {
        sb_unacked *u = SB_CONTAINER_OF(it, sb_unacked, link);
        if (u->consumer == c)
            u->consumer = NULL;  /* still counts for the global prefetch */
    }
    sb_list_remove(&c->qlink);
    sb_list_remove(&c->clink);
    sb_map_del(&ch->consumer_tags, sb_str_make(c->tag, c->tag_len));
    q->consumer_count--;
    if (c->exclusive)
        q->has_exclusive_consumer = false;
    if (notify && c->ops->cancelled)
        c->ops->cancelled(c, c->ud);
    sb_free(c->tag);
    sb_free(c);
    sb_broker__queue_consumer_gone(q);
}

bool
sb_bchan_cancel(sb_bchan *ch, sb_str tag)
{
    sb_consumer *c = sb_map_get(&ch->consumer_tags, tag);

    if (c == NULL)
        return false;
    if (c == ch->reply)
        sb_broker__reply_cancel(ch);
    else
        sb_broker__consumer_free(c, false);
    return true;
}

int
sb_bchan_get(sb_bchan *ch, sb_str queue, bool no_ack, sb_deliver_info *d, sb_error *err)
{
    sb_queue *q = sb_broker__queue_find(ch->vhost, queue);
    sb_qentry *e;
    int rc;

    memset(d, 0, sizeof *d);
    if (q == NULL)
        return sb_error_set(err, SB_NOT_FOUND, "no queue '%.*s' in vhost '%s'",
                            SB_STR_ARGS(queue), ch->vhost->name);
    if ((rc = sb_broker__queue_access(q, ch->owner, err)) != 0)
        return rc;
    sb_broker__queue_touch(q);
    sb_broker__queue_expire_head(q);
    if ((e = sb_broker__queue_pop(q)) == NULL) {
        sb_broker__stat(q->vhost, q, ch, SB_STAT_GET_EMPTY);
        return 0;
    }
    sb_broker__stat_out(q, ch, no_ack ? SB_STAT_GET_NO_ACK : SB_STAT_GET, e->redelivered);
    d->redelivered = e->redelivered;
    d->message_count = q->ready_count;
    d->msg = sb_msg_ref(e->msg);
    if (no_ack) {
        d->delivery_tag = ++ch->next_tag;
    } else {
        sb_broker__store_delivered(q, e);
        d->delivery_tag = sb_broker__bchan_track(ch, q, NULL, e);
    }
    if (e->msg->traced | q->vhost->tracing)
        sb_broker__trace_deliver(q, ch, NULL, e, d->delivery_tag);
    if (no_ack)
        sb_broker__qentry_free(q, e);
    return 0;
}

void
sb_bchan_set_who(sb_bchan *ch, const char *connection, const char *user, uint16_t channel)
{
    ch->who = (sb_trace_who){ .connection = connection, .user = user, .channel = channel };
}

const sb_trace_who *
sb_bchan_who(const sb_bchan *ch)
{
    return &ch->who;
}

void
sb_bchan_free(sb_bchan *ch)
{
    sb_list *it, *tmp;
    sb_error err;

    if (ch == NULL)
        return;
    sb_broker__reply_cancel(ch);
    sb_list_foreach_safe(it, tmp, &ch->consumers)
        sb_broker__consumer_free(SB_CONTAINER_OF(it, sb_consumer, clink), false);
    if (!sb_list_empty(&ch->unacked))
        settle_tags(ch, 0, true, SETTLE_REQUEUE, &err);
    sb_map_free(&ch->consumer_tags);
    ch->broker->channels--;
    ch->broker->churn.n[SB_CHURN_CHANNEL_CLOSED]++;
    sb_list_remove(&ch->link);
    sb_free(ch);
}
