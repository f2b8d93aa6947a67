/* queue_ttl.c - message TTL and queue expiry, as RabbitMQ does them.
 *
 * A message expires x-message-ttl or its expiration property after it was
 * enqueued, whichever is shorter. As in RabbitMQ, expired messages are
 * removed when they reach the head of the queue: one timer per queue is
 * armed for the head's expiry, so the cost does not grow with the number
 * of messages. (With a queue TTL every message expires in order, so this
 * is exact; a long per-message TTL at the head shelters shorter ones
 * behind it, exactly as in RabbitMQ.)
 *
 * x-expires deletes a queue that has had no consumers and no basic.get or
 * redeclare for that long. */
#include "broker_int.h"

#include "../common/clock.h"

uint64_t
sb_broker__now(const sb_broker *b)
{
    return b->loop ? sb_loop_now(b->loop) : sb_clock_ms();
}

uint64_t
sb_broker__expiry_for(sb_queue *q, const sb_msg *m, uint64_t now)
{
    int64_t ttl = q->cfg.message_ttl;
    uint64_t at;

    if (m->expiration_ms >= 0 && (ttl < 0 || m->expiration_ms < ttl))
        ttl = m->expiration_ms;
    if (ttl < 0)
        return 0;
    at = now + (uint64_t)ttl;
    return at ? at : 1;  /* 0 means "never" */
}

static void
ttl_fired(sb_loop *l, sb_timer *t)
{
    sb_broker__queue_expire_head(t->arg);
}

/* The head as far as expiry goes. When the spill marker is first, the
 * head is paged in only if the first spilled message has an expiry (a
 * paged-out one: those in the log have none), so a queue whose head
 * cannot expire is never read back just to look at it. */
static sb_qentry *
ttl_head(sb_queue *q)
{
    sb_qentry *head;

    if (sb_list_empty(&q->ready))
        return NULL;
    head = SB_CONTAINER_OF(q->ready.next, sb_qentry, link);
    if (head != q->marker)
        return head;
    return sb_broker__spill_front_expires(q) ? sb_broker__queue_head(q) : NULL;
}

void
sb_broker__queue_expire_head(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;
    uint64_t now = sb_broker__now(b);
    sb_qentry *head;

    while ((head = ttl_head(q)) != NULL) {
        if (head->expires_at == 0 || head->expires_at > now)
            break;
        sb_broker__deadletter(q, sb_broker__queue_pop(q), SB_DEATH_EXPIRED);
    }
    if (b->loop == NULL)
        return;
    if (head == NULL || head->expires_at == 0) {
        sb_timer_stop(b->loop, &q->ttl_timer);
        return;
    }
    if (!sb_timer_active(&q->ttl_timer) || q->ttl_timer.due != head->expires_at)
        sb_timer_start(b->loop, &q->ttl_timer, head->expires_at - now);
}

static void
expiry_fired(sb_loop *l, sb_timer *t)
{
    sb_queue *q = t->arg;
    uint64_t now = sb_broker__now(q->vhost->broker);
    uint64_t due = q->last_used + (uint64_t)q->cfg.expires;

    if (q->consumer_count > 0 || now < due) {
        sb_timer_start(l, t, q->consumer_count > 0 ? (uint64_t)q->cfg.expires : due - now);
        return;
    }
    sb_broker__queue_destroy(q, true);
}

void
sb_broker__queue_touch(sb_queue *q)
{
    q->last_used = sb_broker__now(q->vhost->broker);
}

void
sb_broker__queue_timers_init(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;

    sb_timer_init(&q->ttl_timer, ttl_fired, q);
    sb_timer_init(&q->expiry_timer, expiry_fired, q);
    sb_broker__queue_touch(q);
    if (b->loop != NULL && q->cfg.expires > 0)
        sb_timer_start(b->loop, &q->expiry_timer, (uint64_t)q->cfg.expires);
}

void
sb_broker__queue_expiry_restart(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;

    if (b->loop == NULL)
        return;
    sb_timer_stop(b->loop, &q->expiry_timer);
    if (q->cfg.expires > 0)
        sb_timer_start(b->loop, &q->expiry_timer, (uint64_t)q->cfg.expires);
}

void
sb_broker__queue_timers_stop(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;

    if (b->loop == NULL)
        return;
    sb_timer_stop(b->loop, &q->ttl_timer);
    sb_timer_stop(b->loop, &q->expiry_timer);
}
