/* stats.c - message statistics and the registry of client connections,
 * for the management API and /metrics.
 *
 * Counters are incremented where messages move (sb_broker__stat* in
 * broker_int.h: publish in exchange.c, deliveries in queue.c, gets and
 * acks in bchan.c, dead letters in deadletter.c) with plain increments.
 * Nothing here is on that path: a loop timer samples every counter once an
 * interval and turns the difference into a rate per second, as RabbitMQ's
 * management plugin does with its collect_statistics_interval. The walk
 * is O(vhosts + queues + channels) every interval (5 s by default).
 * Runs on the loop thread.
 */
#include "broker_int.h"

#include <string.h>

#include "../common/clock.h"

_Static_assert(SB_STAT_DEAD_EXPIRED - SB_STAT_DEAD_REJECTED == SB_DEATH_EXPIRED &&
                   SB_STAT_DEAD_DELIVERY_LIMIT - SB_STAT_DEAD_REJECTED == SB_DEATH_DELIVERY_LIMIT &&
                   SB_STAT_DROP_DELIVERY_LIMIT - SB_STAT_DROP_REJECTED == SB_DEATH_DELIVERY_LIMIT,
               "the dead-letter counters follow sb_death");

static const char *const stat_names[SB_STAT__COUNT] = {
    [SB_STAT_PUBLISH] = "publish",
    [SB_STAT_CONFIRM] = "confirm",
    [SB_STAT_RETURN_UNROUTABLE] = "return_unroutable",
    [SB_STAT_DROP_UNROUTABLE] = "drop_unroutable",
    [SB_STAT_DELIVER] = "deliver",
    [SB_STAT_DELIVER_NO_ACK] = "deliver_no_ack",
    [SB_STAT_GET] = "get",
    [SB_STAT_GET_NO_ACK] = "get_no_ack",
    [SB_STAT_GET_EMPTY] = "get_empty",
    [SB_STAT_ACK] = "ack",
    [SB_STAT_REDELIVER] = "redeliver",
};

static const char *const churn_names[SB_CHURN__COUNT] = {
    "connection_created", "connection_closed", "channel_created", "channel_closed",
    "queue_declared", "queue_created", "queue_deleted",
};

const char *
sb_churn_name(sb_churn c)
{
    return (unsigned)c < SB_CHURN__COUNT ? churn_names[c] : NULL;
}

const char *
sb_stat_name(sb_stat s)
{
    return (unsigned)s < SB_STAT__COUNT ? stat_names[s] : NULL;
}

/* ---- sampling ---- */

static void
sample(sb_msg_stats *st, double secs)
{
    for (int i = 0; i < SB_STAT__COUNT; i++) {
        st->rate[i] = (float)((double)(st->n[i] - st->last[i]) / secs);
        st->last[i] = st->n[i];
    }
}

static void
sample_vhost(sb_vhost *v, double secs)
{
    size_t it = 0;
    void *val;

    sample(&v->stats, secs);
    while (sb_map_next(&v->queues, &it, NULL, &val))
        sample(&((sb_queue *)val)->stats, secs);
}

static void
on_sample(sb_loop *l, sb_timer *t)
{
    sb_broker *b = t->arg;
    uint64_t now = sb_loop_now(l);
    double secs = (double)(now - b->stats_at) / 1000.0;
    size_t it = 0;
    void *val;
    sb_list *c;

    if (secs <= 0)
        secs = b->stats_interval / 1000.0;
    b->stats_at = now;
    while (sb_map_next(&b->vhosts, &it, NULL, &val))
        sample_vhost(val, secs);
    sb_list_foreach(c, &b->bchans)
        sample(&SB_CONTAINER_OF(c, sb_bchan, link)->stats, secs);
    for (int i = 0; i < SB_CHURN__COUNT; i++) {
        b->churn.rate[i] = (float)((double)(b->churn.n[i] - b->churn.last[i]) / secs);
        b->churn.last[i] = b->churn.n[i];
    }
    sb_timer_start(l, t, b->stats_interval);
}

void
sb_broker__stats_start(sb_broker *b)
{
    b->stats_interval = b->lim.stats_interval_ms ? b->lim.stats_interval_ms
                                                 : SB_STATS_DEFAULT_INTERVAL_MS;
    sb_timer_init(&b->stats_timer, on_sample, b);
    if (b->loop == NULL)
        return;
    b->stats_at = sb_loop_now(b->loop);
    sb_timer_start(b->loop, &b->stats_timer, b->stats_interval);
}

void
sb_broker__stats_stop(sb_broker *b)
{
    if (b->loop != NULL)
        sb_timer_stop(b->loop, &b->stats_timer);
}

/* ---- reading ---- */

void
sb_broker_stats(const sb_broker *b, sb_msg_stats *out)
{
    size_t it = 0;
    void *val;

    memset(out, 0, sizeof *out);
    while (sb_map_next(&b->vhosts, &it, NULL, &val)) {
        const sb_msg_stats *v = &((const sb_vhost *)val)->stats;
        for (int i = 0; i < SB_STAT__COUNT; i++) {
            out->n[i] += v->n[i];
            out->last[i] += v->last[i];
            out->rate[i] += v->rate[i];
        }
    }
}

const sb_msg_stats *
sb_vhost_stats(const sb_vhost *v)
{
    return &v->stats;
}

void
sb_broker_churn_get(const sb_broker *b, sb_broker_churn *out)
{
    *out = b->churn;
}

const sb_store *
sb_broker_store(const sb_broker *b)
{
    return b->store;
}

uint64_t
sb_broker_delayed_count(const sb_broker *b)
{
    return b->delayed_count;
}

uint32_t
sb_broker_stats_interval(const sb_broker *b)
{
    return b->stats_interval;
}

uint64_t
sb_broker_started_at(const sb_broker *b)
{
    return b->started_at;
}

void
sb_bchan_count_publish(sb_bchan *ch, bool confirm, bool mandatory, bool routed)
{
    if (ch == NULL)
        return;
    ch->stats.n[SB_STAT_PUBLISH]++;
    if (confirm) {
        ch->stats.n[SB_STAT_PUBLISH_CONFIRM]++;
        ch->vhost->stats.n[SB_STAT_PUBLISH_CONFIRM]++;
    }
    if (!routed)
        sb_broker__stat(ch->vhost, NULL, ch,
                        mandatory ? SB_STAT_RETURN_UNROUTABLE : SB_STAT_DROP_UNROUTABLE);
}

void
sb_bchan_count_confirms(sb_bchan *ch, uint64_t n)
{
    if (ch == NULL)
        return;
    ch->stats.n[SB_STAT_CONFIRM] += n;
    ch->vhost->stats.n[SB_STAT_CONFIRM] += n;
}

void
sb_broker_set_resources(sb_broker *b, const sb_broker_resources *r)
{
    b->res = *r;
}

const sb_broker_resources *
sb_broker_resources_get(const sb_broker *b)
{
    return &b->res;
}

/* ---- connections ---- */

void
sb_broker_conn_add(sb_broker *b, sb_bconn *c)
{
    sb_list_push_back(&b->conns, &c->link);
    b->connections++;
    b->churn.n[SB_CHURN_CONNECTION_CREATED]++;
}

void
sb_broker_conn_remove(sb_broker *b, sb_bconn *c)
{
    sb_list_remove(&c->link);
    b->connections--;
    b->churn.n[SB_CHURN_CONNECTION_CLOSED]++;
}

void
sb_broker_each_conn(sb_broker *b, void (*fn)(sb_bconn *c, void *ud), void *ud)
{
    sb_list *it, *tmp;

    sb_list_foreach_safe(it, tmp, &b->conns)
        fn(SB_CONTAINER_OF(it, sb_bconn, link), ud);
}

sb_bconn *
sb_broker_conn_find(sb_broker *b, sb_str name)
{
    sb_list *it;

    sb_list_foreach(it, &b->conns) {
        sb_bconn *c = SB_CONTAINER_OF(it, sb_bconn, link);
        if (sb_str_eq_c(name, c->name))
            return c;
    }
    return NULL;
}

/* ---- channels and consumers ---- */

void
sb_bchan_view_get(const sb_bchan *ch, sb_bchan_view *out)
{
    const sb_list *it;
    uint32_t unacked = 0;

    sb_list_foreach(it, &ch->unacked)
        unacked++;
    *out = (sb_bchan_view){
        /* The direct reply-to consumer is not on a queue: not counted,
         * as in RabbitMQ. */
        .consumers = (uint32_t)ch->consumer_tags.count - (ch->reply != NULL),
        .unacked = unacked,
        .prefetch_count = ch->prefetch_consumer,
        .global_prefetch_count = ch->prefetch_global,
        .flow_active = ch->flow_active,
        .stats = &ch->stats,
    };
}

static void
consumer_view(const sb_consumer *c, sb_consumer_view *out)
{
    const sb_queue *q = c->queue;
    const sb_list *first = q ? sb_list_first(&q->consumers) : NULL;

    *out = (sb_consumer_view){
        .tag = sb_str_make(c->tag, c->tag_len),
        .queue = q ? sb_str_make(q->name, q->name_len) : sb_str_c(SB_REPLY_TO_QUEUE),
        .vhost = c->ch->vhost->name,
        .ack_required = !c->no_ack,
        .exclusive = c->exclusive,
        .active = q == NULL || !q->cfg.single_active || first == &c->qlink,
        .priority = c->priority,
        .prefetch_count = c->prefetch,
    };
}

void
sb_bchan_each_consumer(const sb_bchan *ch, void (*fn)(const sb_consumer_view *c, void *ud),
                       void *ud)
{
    const sb_list *it;
    sb_consumer_view cv;

    sb_list_foreach(it, &ch->consumers) {
        consumer_view(SB_CONTAINER_OF(it, sb_consumer, clink), &cv);
        fn(&cv, ud);
    }
}
