/* trace_hooks.c - what the message path records about traced messages:
 * the functions that exchange.c, queue.c, bchan.c, retry.c, deadletter.c
 * and delay.c call, each behind a one-flag test (m->traced, or the
 * vhost's firehose flag), so a message without a traceparent pays that
 * test and nothing else.
 *
 * A traced message's context (trace id, and the span id of whoever
 * published it) is read back from its headers at each event: the message
 * keeps only the one flag bit, so it stays as small as an untraced one.
 * Events are recorded before the step they describe has consequences
 * (the delivery before the consumer sees it, the rejection before the
 * retry or dead letter it causes), so a trace reads in causal order even
 * when one step triggers the next synchronously.
 *
 * Loop thread only.
 */
#include "broker_int.h"

#include <string.h>

/* A traced message's properties and trace context, decoded into an
 * arena: the broker's trace scratch arena (reset, not freed, after each
 * hook, so recording an event does not call malloc), or a local one. */
typedef struct traced {
    sb_arena *arena;
    sb_arena local;
    bool decoded;               /* p holds the properties */
    sb_amqp_props p;
    sb_trace_ctx ctx;
} traced;

/* True when m's headers carry a valid traceparent (in t->ctx). b may be
 * NULL (a local arena). Hooks do not nest while a traced is open: each
 * closes it before anything can call back into the broker. */
static bool
traced_open(traced *t, sb_broker *b, const sb_msg *m)
{
    sb_str raw = sb_msg_props(m);

    t->local = SB_ARENA_INIT;
    t->arena = b ? &b->trace_arena : &t->local;
    t->decoded = raw.len >= 2 && sb_amqp_props_decode(raw.p, raw.len, &t->p, t->arena) == 0;
    if (!t->decoded)
        memset(&t->p, 0, sizeof t->p);
    return t->decoded && (t->p.flags & SB_PROP_HEADERS) &&
           sb_trace_ctx_from_headers(&t->p.headers, &t->ctx);
}

static void
traced_close(traced *t)
{
    sb_arena_reset(t->arena);
    sb_arena_free(&t->local);
}

bool
sb_trace_ctx_of_msg(const sb_msg *m, sb_trace_ctx *out)
{
    traced t;
    bool ok = traced_open(&t, NULL, m);

    if (ok)
        *out = t.ctx;
    traced_close(&t);
    return ok;
}

static sb_str
qname(const sb_queue *q)
{
    return sb_str_make(q->name, q->name_len);
}

static void
add_queues(sb_trace_event *e, const sb_dest_vec *out)
{
    for (size_t i = 0; out != NULL && i < out->n; i++)
        sb_trace_str(e, SB_TK_QUEUES, qname(out->v[i]));
    sb_trace_int(e, SB_TK_QUEUE_COUNT, out ? (int64_t)out->n : 0);
}

/* ---- publishing ---- */

/* A client publishing a message that has died before (it carries x-death)
 * is replaying a dead letter: `switchboard dlq replay`, the HTTP replay,
 * or any tool that moves messages out of a dead-letter queue. */
static void
note_replay(sb_broker *b, const traced *t, const sb_trace_who *who)
{
    const sb_amqp_value *xd = sb_amqp_table_get(&t->p.headers, "x-death");
    const sb_amqp_value *q, *reason;
    sb_trace_event *e;

    if (xd == NULL || xd->kind != SB_FV_ARRAY)
        return;
    e = sb_trace_begin(b, &t->ctx, SB_TRACE_REPLAYED);
    if (xd->v.a.n > 0 && xd->v.a.v[0].kind == SB_FV_TABLE) {
        q = sb_amqp_table_get(&xd->v.a.v[0].v.t, "queue");
        reason = sb_amqp_table_get(&xd->v.a.v[0].v.t, "reason");
        if (q != NULL && q->kind == SB_FV_LONGSTR)
            sb_trace_str(e, SB_TK_DIED_IN, q->v.s);
        if (reason != NULL && reason->kind == SB_FV_LONGSTR)
            sb_trace_str(e, SB_TK_REASON, reason->v.s);
    }
    sb_trace_int(e, SB_TK_DEATHS, xd->v.a.n);
    sb_trace_add_who(e, who);
}

static void
trace_reply(sb_vhost *v, const sb_trace_who *who, const sb_msg *m, traced *t, bool has_ctx)
{
    sb_broker *b = v->broker;
    sb_str corr = (t->p.flags & SB_PROP_CORRELATION_ID) ? t->p.correlation_id : SB_STR_NULL;
    sb_trace_ctx linked;
    bool by_corr = b->trace_reply_links > 0 &&
                   sb_broker__trace_take_reply(b, sb_msg_rk(m), corr, &linked);
    sb_trace_event *e;

    if (!has_ctx && !by_corr)
        return;
    e = sb_trace_begin(b, has_ctx ? &t->ctx : &linked, SB_TRACE_REPLIED);
    sb_trace_str(e, SB_TK_REPLY_TO, sb_msg_rk(m));
    if (corr.p != NULL)
        sb_trace_str(e, SB_TK_CORRELATION_ID, corr);
    sb_trace_str(e, SB_TK_LINKED_BY, has_ctx ? SB_STR_LIT("traceparent")
                                             : SB_STR_LIT("correlation_id"));
    sb_trace_int(e, SB_TK_DELIVERED_TO_CALLER,
                 sb_map_get(&b->reply_consumers, sb_msg_rk(m)) != NULL);
    sb_trace_int(e, SB_TK_SIZE, m->body_len);
    sb_trace_add_who(e, who);
}

static void
trace_published(sb_vhost *v, const sb_trace_who *who, const sb_msg *m, traced *t)
{
    sb_broker *b = v->broker;
    sb_trace_event *e;

    note_replay(b, t, who);
    e = sb_trace_begin(b, &t->ctx, SB_TRACE_PUBLISHED);
    sb_trace_str(e, SB_TK_VHOST, sb_str_c(v->name));
    sb_trace_str(e, SB_TK_EXCHANGE, sb_msg_exchange(m));
    sb_trace_str(e, SB_TK_ROUTING_KEY, sb_msg_rk(m));
    sb_trace_add_who(e, who);
    sb_trace_int(e, SB_TK_PERSISTENT, m->delivery_mode == 2);
    sb_trace_int(e, SB_TK_SIZE, m->body_len);
    if (t->p.flags & SB_PROP_CORRELATION_ID)
        sb_trace_str(e, SB_TK_CORRELATION_ID, t->p.correlation_id);
    if (t->p.flags & SB_PROP_REPLY_TO) {
        sb_trace_str(e, SB_TK_REPLY_TO, t->p.reply_to);
        /* A call: its reply may come back without a traceparent. */
        if ((t->p.flags & SB_PROP_CORRELATION_ID) &&
            sb_str_has_prefix(t->p.reply_to, SB_REPLY_TO_QUEUE "."))
            sb_broker__trace_link_reply(b, t->p.reply_to, t->p.correlation_id, &t->ctx);
    }
}

void
sb_broker__trace_publish(sb_vhost *v, const sb_trace_who *who, sb_msg *m,
                         const sb_amqp_table *headers, const sb_dest_vec *out, sb_trace_route how,
                         uint64_t delay_ms)
{
    sb_broker *b = v->broker;
    sb_trace_event *e;
    bool has_ctx;
    traced t;

    if (v->tracing)
        sb_broker__firehose_publish(v, who, m, headers, how == SB_TRACE_ROUTE_QUEUES ? out : NULL);
    if (!m->traced && how != SB_TRACE_ROUTE_REPLY)
        return;
    has_ctx = traced_open(&t, b, m) && m->traced;
    if (how == SB_TRACE_ROUTE_REPLY) {
        trace_reply(v, who, m, &t, has_ctx);
        goto out;
    }
    if (!has_ctx)
        goto out;
    trace_published(v, who, m, &t);
    if (how == SB_TRACE_ROUTE_DELAYED) {
        e = sb_trace_begin(b, &t.ctx, SB_TRACE_DELAYED);
        sb_trace_str(e, SB_TK_EXCHANGE, sb_msg_exchange(m));
        sb_trace_int(e, SB_TK_DELAY_MS, (int64_t)delay_ms);
    } else if (out->n > 0) {
        add_queues(sb_trace_begin(b, &t.ctx, SB_TRACE_ROUTED), out);
    } else {
        e = sb_trace_begin(b, &t.ctx, SB_TRACE_UNROUTABLE);
        sb_trace_str(e, SB_TK_EXCHANGE, sb_msg_exchange(m));
        sb_trace_str(e, SB_TK_ROUTING_KEY, sb_msg_rk(m));
    }
out:
    traced_close(&t);
}

/* ---- deliveries and acknowledgements ---- */

/* Earlier deliveries of this message (same span) from q, +1; 0 when the
 * trace is too big to count in (sb_broker__trace_count). */
static int64_t
delivery_count(sb_broker *b, const sb_trace_ctx *ctx, const sb_queue *q)
{
    return sb_broker__trace_count(b, ctx, (1u << SB_TRACE_DELIVERED) | (1u << SB_TRACE_GOT),
                                  SB_TK_QUEUE, qname(q)) + 1;
}

void
sb_broker__trace_deliver(sb_queue *q, sb_bchan *ch, sb_consumer *c, const sb_qentry *e,
                         uint64_t tag)
{
    sb_broker *b = q->vhost->broker;
    sb_trace_event *ev;
    int64_t n;
    traced t;

    if (q->vhost->tracing)
        sb_broker__firehose_deliver(q, ch, e->msg, e->redelivered);
    if (!e->msg->traced)
        return;
    if (traced_open(&t, b, e->msg)) {
        n = delivery_count(b, &t.ctx, q);
        ev = sb_trace_begin(b, &t.ctx, c ? SB_TRACE_DELIVERED : SB_TRACE_GOT);
        sb_trace_str(ev, SB_TK_QUEUE, qname(q));
        if (c != NULL)
            sb_trace_str(ev, SB_TK_CONSUMER_TAG, sb_str_make(c->tag, c->tag_len));
        sb_trace_int(ev, SB_TK_DELIVERY_TAG, (int64_t)tag);
        sb_trace_int(ev, SB_TK_REDELIVERED, e->redelivered);
        if (n > 0)
            sb_trace_int(ev, SB_TK_DELIVERY_COUNT, n);
        sb_trace_add_who(ev, &ch->who);
    }
    traced_close(&t);
}

void
sb_broker__trace_settle(sb_bchan *ch, const sb_unacked *u, sb_trace_kind kind)
{
    sb_trace_event *ev;
    traced t;

    if (traced_open(&t, ch->broker, u->entry->msg)) {
        ev = sb_trace_begin(ch->broker, &t.ctx, kind);
        if (u->queue != NULL)
            sb_trace_str(ev, SB_TK_QUEUE, qname(u->queue));
        sb_trace_int(ev, SB_TK_DELIVERY_TAG, (int64_t)u->tag);
        sb_trace_add_who(ev, &ch->who);
    }
    traced_close(&t);
}

/* ---- retries, dead letters, delays ---- */

void
sb_broker__trace_retry(sb_queue *q, const sb_qentry *e, uint32_t attempt, uint64_t delay_ms)
{
    sb_trace_event *ev;
    traced t;

    if (traced_open(&t, q->vhost->broker, e->msg)) {
        ev = sb_trace_begin(q->vhost->broker, &t.ctx, SB_TRACE_RETRY_SCHEDULED);
        sb_trace_str(ev, SB_TK_QUEUE, qname(q));
        sb_trace_int(ev, SB_TK_ATTEMPT, attempt);
        sb_trace_int(ev, SB_TK_ATTEMPTS, q->cfg.nretry);
        sb_trace_int(ev, SB_TK_DELAY_MS, (int64_t)delay_ms);
    }
    traced_close(&t);
}

static const char *const death_names[] = {
    [SB_DEATH_REJECTED] = "rejected",
    [SB_DEATH_EXPIRED] = "expired",
    [SB_DEATH_MAXLEN] = "maxlen",
    [SB_DEATH_DELIVERY_LIMIT] = "delivery_limit",
};

void
sb_broker__trace_dead(sb_queue *q, const sb_msg *m, sb_death reason, const sb_exchange *x,
                      sb_str key, const sb_dest_vec *out)
{
    sb_broker *b = q->vhost->broker;
    sb_trace_event *ev;
    traced t;

    if (!traced_open(&t, b, m))
        goto out;
    if (reason == SB_DEATH_EXPIRED)
        sb_trace_str(sb_trace_begin(b, &t.ctx, SB_TRACE_EXPIRED), SB_TK_QUEUE, qname(q));
    ev = sb_trace_begin(b, &t.ctx, x ? SB_TRACE_DEAD_LETTERED : SB_TRACE_DROPPED);
    sb_trace_str(ev, SB_TK_QUEUE, qname(q));
    sb_trace_str(ev, SB_TK_REASON, sb_str_c(death_names[reason]));
    if (x != NULL) {
        sb_trace_str(ev, SB_TK_EXCHANGE, sb_str_make(x->name, x->name_len));
        sb_trace_str(ev, SB_TK_ROUTING_KEY, key);
        add_queues(ev, out);
    }
out:
    traced_close(&t);
}

void
sb_broker__trace_released(const sb_exchange *x, sb_queue *q, const sb_msg *m,
                          const sb_dest_vec *out)
{
    sb_broker *b = x ? x->vhost->broker : q->vhost->broker;
    sb_trace_event *ev;
    traced t;

    if (traced_open(&t, b, m)) {
        ev = sb_trace_begin(b, &t.ctx, SB_TRACE_RELEASED);
        if (x != NULL) {
            sb_trace_str(ev, SB_TK_EXCHANGE, sb_str_make(x->name, x->name_len));
            add_queues(ev, out);
        } else {
            sb_trace_str(ev, SB_TK_QUEUE, qname(q));
        }
    }
    traced_close(&t);
}
