/* delay.c - messages held back for a while, then routed: the delayed-
 * message exchange (x-delay, compatible with RabbitMQ's
 * rabbitmq_delayed_message_exchange plugin) and retry with back-off
 * (x-retry-delays, Switchboard's own). Each held message has its own
 * timer in the loop's heap, so holding costs O(log n) per message and
 * nothing is scanned. Without a loop (unit tests) nothing is held. */
#include "broker_int.h"

#include "../common/alloc.h"
#include "../common/clock.h"

/* A held message: an entry (message, and its log record when it has
 * one) that a queue links in, or an exchange routes, when due. */
typedef struct sb_delayed {
    sb_timer timer;
    sb_list link;           /* in the target's delayed list */
    sb_qentry *entry;
    sb_exchange *exchange;  /* route from here when due, or */
    sb_queue *queue;        /* link the entry in here when due */
} sb_delayed;

/* Drops d; its entry (and record) with it unless the entry was used. */
static void
delayed_free(sb_broker *b, sb_delayed *d)
{
    if (b->loop != NULL)
        sb_timer_stop(b->loop, &d->timer);
    sb_list_remove(&d->link);
    b->delayed_count--;
    if (d->entry != NULL && d->queue != NULL) {
        sb_broker__qentry_free(d->queue, d->entry);
    } else if (d->entry != NULL) {
        sb_broker__store_remove_delayed(d->exchange, d->entry);
        sb_msg_unref(d->entry->msg);
        sb_free(d->entry->ref);  /* still set when the broker is only shutting down */
        sb_free(d->entry);
    }
    sb_free(d);
}

static void
delayed_fired(sb_loop *l, sb_timer *t)
{
    sb_delayed *d = t->arg;
    sb_broker *b;
    sb_dest_vec out = { 0 };

    if (d->queue != NULL) {
        b = d->queue->vhost->broker;
        if (d->entry->msg->traced)
            sb_broker__trace_released(NULL, d->queue, d->entry->msg, NULL);
        sb_broker__queue_link_entry(d->queue, d->entry);
        d->entry = NULL;
    } else {
        /* Routed into queues (which log it again if they keep it) before
         * the exchange's own record goes, in delayed_free. */
        sb_exchange *x = d->exchange;
        sb_msg *m = d->entry->msg;
        sb_msg_headers hd;
        b = x->vhost->broker;
        sb_broker__msg_headers(m, &hd);
        sb_broker__route(x->vhost, x, sb_msg_rk(m), hd.headers, &out);
        if (m->traced)
            sb_broker__trace_released(x, NULL, m, &out);
        for (size_t i = 0; i < out.n; i++)
            sb_broker__queue_enqueue(out.v[i], m);
        sb_broker__msg_headers_free(&hd);
        sb_dest_vec_free(&out);
    }
    delayed_free(b, d);
}

static void
hold(sb_broker *b, sb_list *list, sb_qentry *e, uint64_t ms, sb_exchange *x, sb_queue *q)
{
    sb_delayed *d = sb_calloc(1, sizeof *d);

    d->entry = e;
    d->exchange = x;
    d->queue = q;
    sb_list_push_back(list, &d->link);
    b->delayed_count++;
    sb_timer_init(&d->timer, delayed_fired, d);
    if (b->loop != NULL)    /* a broker without a loop (tests) holds it until freed */
        sb_timer_start(b->loop, &d->timer, ms);
}

/* A persistent message a durable delayed exchange holds is logged with
 * its due time, so it survives a restart and its publisher's confirm
 * waits for that record. */
bool
sb_broker__delay_route(sb_exchange *x, sb_msg *m, uint64_t ms)
{
    sb_broker *b = x->vhost->broker;
    sb_qentry *e;

    if (b->loop == NULL)
        return false;
    e = sb_calloc(1, sizeof *e);
    e->msg = sb_msg_ref(m);
    if (x->id != 0 && m->delivery_mode == 2 &&
        sb_broker__store_append_delayed(x, e, sb_wall_ms() + ms) < 0) {
        sb_msg_unref(e->msg);
        sb_free(e);
        return false;  /* routed at once rather than held unlogged */
    }
    hold(b, &x->delayed_msgs, e, ms, x, NULL);
    return true;
}

void
sb_broker__delay_restore(sb_exchange *x, sb_msg *m, const sb_store_msg *r, uint64_t due_wall_ms)
{
    sb_broker *b = x->vhost->broker;
    uint64_t now = sb_wall_ms();
    sb_qentry *e = sb_calloc(1, sizeof *e);

    e->msg = sb_msg_ref(m);
    sb_broker__qentry_set_ref(e, &r->loc, r->msg_id);
    hold(b, &x->delayed_msgs, e, due_wall_ms > now ? due_wall_ms - now : 0, x, NULL);
}

bool
sb_broker__delay_entry(sb_queue *q, sb_qentry *e, uint64_t ms)
{
    sb_broker *b = q->vhost->broker;

    if (b->loop == NULL)
        return false;
    hold(b, &q->delayed, e, ms, NULL, q);
    return true;
}

void
sb_broker__delay_drop_all(sb_broker *b, sb_list *list)
{
    sb_list *it;

    while ((it = sb_list_first(list)) != NULL)
        delayed_free(b, SB_CONTAINER_OF(it, sb_delayed, link));
}
