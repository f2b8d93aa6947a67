/* delay.c - messages held back for a while, then routed: the delayed-
 * message exchange (x-delay, compatible with RabbitMQ's
 * rabbitmq_delayed_message_exchange plugin) and retry with back-off
 * (x-retry-delays, Switchboard's own). Each held message has its own
 * timer in the loop's heap, so holding costs O(log n) per message and
 * nothing is scanned. Without a loop (unit tests) nothing is held. */
#include "broker_int.h"

#include "../common/alloc.h"

typedef struct sb_delayed {
    sb_timer timer;
    sb_list link;           /* in the target's delayed list */
    sb_msg *msg;            /* one reference (exchange holds), or */
    sb_qentry *entry;       /* the entry to link in (queue holds) */
    sb_exchange *exchange;  /* route from here when due, or */
    sb_queue *queue;        /* link the entry in here when due */
} sb_delayed;

static void
delayed_free(sb_broker *b, sb_delayed *d)
{
    sb_timer_stop(b->loop, &d->timer);
    sb_list_remove(&d->link);
    sb_msg_unref(d->msg);
    if (d->entry != NULL)
        sb_broker__qentry_free(d->queue, d->entry);  /* the queue is going: so is its record */
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
        sb_broker__queue_link_entry(d->queue, d->entry);
        d->entry = NULL;
    } else {
        sb_exchange *x = d->exchange;
        sb_msg_headers hd;
        b = x->vhost->broker;
        sb_broker__msg_headers(d->msg, &hd);
        sb_broker__route(x->vhost, x, sb_msg_rk(d->msg), hd.headers, &out);
        for (size_t i = 0; i < out.n; i++)
            sb_broker__queue_enqueue(out.v[i], d->msg);
        sb_broker__msg_headers_free(&hd);
        sb_dest_vec_free(&out);
    }
    delayed_free(b, d);
}

static void
hold(sb_broker *b, sb_list *list, sb_msg *m, sb_qentry *e, uint64_t ms, sb_exchange *x,
     sb_queue *q)
{
    sb_delayed *d = sb_calloc(1, sizeof *d);

    d->msg = m ? sb_msg_ref(m) : NULL;
    d->entry = e;
    d->exchange = x;
    d->queue = q;
    sb_list_push_back(list, &d->link);
    sb_timer_init(&d->timer, delayed_fired, d);
    sb_timer_start(b->loop, &d->timer, ms);
}

bool
sb_broker__delay_route(sb_exchange *x, sb_msg *m, uint64_t ms)
{
    sb_broker *b = x->vhost->broker;

    if (b->loop == NULL)
        return false;
    hold(b, &x->delayed_msgs, m, NULL, ms, x, NULL);
    return true;
}

bool
sb_broker__delay_entry(sb_queue *q, sb_qentry *e, uint64_t ms)
{
    sb_broker *b = q->vhost->broker;

    if (b->loop == NULL)
        return false;
    hold(b, &q->delayed, NULL, e, ms, NULL, q);
    return true;
}

void
sb_broker__delay_drop_all(sb_broker *b, sb_list *list)
{
    sb_list *it;

    while ((it = sb_list_first(list)) != NULL)
        delayed_free(b, SB_CONTAINER_OF(it, sb_delayed, link));
}
