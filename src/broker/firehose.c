/* firehose.c - RabbitMQ's firehose tracer, as rabbit_trace does it.
 *
 * With tracing on for a vhost (PUT /api/vhosts/{vhost} {"tracing":true},
 * RabbitMQ's `rabbitmqctl trace_on`), every message published in it is
 * copied to the vhost's amq.rabbitmq.trace topic exchange with routing
 * key "publish.<exchange>" once it is routed, and every delivery (consumer
 * or basic.get) with "deliver.<queue>". The copy has the original body
 * and only a headers property:
 *
 *   exchange_name  longstr    the exchange the message was published to
 *   routing_keys   array      its routing key, then its CC and BCC headers
 *   properties     table      its content properties (RabbitMQ's names)
 *   node           longstr    SB_NODE_NAME ("switchboard@localhost")
 *   redelivered    signedint  0 or 1 (deliveries only)
 *   vhost, connection, channel (signedint), user
 *   routed_queues  array      the queues it reached (publishes only)
 *
 * in that order (RabbitMQ's msg_to_table ++ the tap_in / tap_out extras).
 * Messages published to amq.rabbitmq.trace itself are never traced, so a
 * consumer of the firehose does not feed it. Off (the default) it costs
 * one flag test per publish and per delivery. The flag is not saved: a
 * restart turns it off, as in RabbitMQ.
 *
 * Loop thread only.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

#define TRACE_EXCHANGE "amq.rabbitmq.trace"

void
sb_vhost_set_tracing(sb_vhost *v, bool on)
{
    v->tracing = on;
}

bool
sb_vhost_tracing(const sb_vhost *v)
{
    return v->tracing;
}

static sb_amqp_value
lstr(sb_str s)
{
    return (sb_amqp_value){ .kind = SB_FV_LONGSTR, .v.s = s };
}

static sb_amqp_value
sint(int64_t i)
{
    return (sb_amqp_value){ .kind = SB_FV_I32, .v.i = i };
}

/* Builds a table from up to cap entries added with put. */
typedef struct tbuild {
    sb_amqp_entry *e;
    uint32_t n;
} tbuild;

static void
put(tbuild *t, const char *key, sb_amqp_value v)
{
    t->e[t->n++] = (sb_amqp_entry){ sb_str_c(key), v };
}

static void
put_str(tbuild *t, const char *key, uint16_t flags, uint16_t bit, sb_str s)
{
    if (flags & bit)
        put(t, key, lstr(s));
}

/* The properties table, in the order RabbitMQ builds it (each property
 * prepended, so the last one of the class goes first). BCC never shows:
 * RabbitMQ strips it from the message before tracing. */
static sb_amqp_value
props_table(const sb_amqp_props *p, sb_arena *a)
{
    tbuild t = { sb_arena_alloc(a, 14 * sizeof *t.e), 0 };
    uint16_t f = p->flags;

    put_str(&t, "cluster_id", f, SB_PROP_CLUSTER_ID, p->cluster_id);
    put_str(&t, "app_id", f, SB_PROP_APP_ID, p->app_id);
    put_str(&t, "user_id", f, SB_PROP_USER_ID, p->user_id);
    put_str(&t, "type", f, SB_PROP_TYPE, p->type);
    if (f & SB_PROP_TIMESTAMP)
        put(&t, "timestamp", (sb_amqp_value){ .kind = SB_FV_I64, .v.i = (int64_t)p->timestamp });
    put_str(&t, "message_id", f, SB_PROP_MESSAGE_ID, p->message_id);
    put_str(&t, "expiration", f, SB_PROP_EXPIRATION, p->expiration);
    put_str(&t, "reply_to", f, SB_PROP_REPLY_TO, p->reply_to);
    put_str(&t, "correlation_id", f, SB_PROP_CORRELATION_ID, p->correlation_id);
    if (f & SB_PROP_PRIORITY)
        put(&t, "priority", sint(p->priority));
    if (f & SB_PROP_DELIVERY_MODE)
        put(&t, "delivery_mode", sint(p->delivery_mode));
    if (f & SB_PROP_HEADERS) {
        sb_amqp_entry *h = sb_arena_alloc(a, (p->headers.n + 1) * sizeof *h);
        uint32_t k = 0;
        for (uint32_t i = 0; i < p->headers.n; i++)
            if (!sb_str_eq_c(p->headers.e[i].key, "BCC"))
                h[k++] = p->headers.e[i];
        put(&t, "headers", (sb_amqp_value){ .kind = SB_FV_TABLE, .v.t = { .n = k, .e = h } });
    }
    put_str(&t, "content_encoding", f, SB_PROP_CONTENT_ENCODING, p->content_encoding);
    put_str(&t, "content_type", f, SB_PROP_CONTENT_TYPE, p->content_type);
    return (sb_amqp_value){ .kind = SB_FV_TABLE, .v.t = { .n = t.n, .e = t.e } };
}

/* The routing key, then the string values of the CC and BCC headers. */
static sb_amqp_value
routing_keys(const sb_msg *m, const sb_amqp_table *h, sb_arena *a)
{
    static const char *const extra[] = { "CC", "BCC" };
    sb_amqp_value v = { .kind = SB_FV_ARRAY };
    uint32_t n = 1;

    for (size_t k = 0; k < 2; k++) {
        const sb_amqp_value *x = h ? sb_amqp_table_get(h, extra[k]) : NULL;
        n += x && x->kind == SB_FV_ARRAY ? x->v.a.n : 0;
    }
    v.v.a.v = sb_arena_alloc(a, n * sizeof *v.v.a.v);
    v.v.a.v[v.v.a.n++] = lstr(sb_msg_rk(m));
    for (size_t k = 0; k < 2; k++) {
        const sb_amqp_value *x = h ? sb_amqp_table_get(h, extra[k]) : NULL;
        for (uint32_t i = 0; x && x->kind == SB_FV_ARRAY && i < x->v.a.n; i++)
            if (x->v.a.v[i].kind == SB_FV_LONGSTR)
                v.v.a.v[v.v.a.n++] = x->v.a.v[i];
    }
    return v;
}

/* The four entries every trace message starts with. */
static void
put_common(tbuild *t, sb_broker *b, const sb_msg *m, const sb_amqp_props *p,
           const sb_amqp_table *h, sb_arena *a)
{
    put(t, "exchange_name", lstr(sb_msg_exchange(m)));
    put(t, "routing_keys", routing_keys(m, h, a));
    put(t, "properties", props_table(p, a));
    put(t, "node", lstr(SB_STR_LIT(SB_NODE_NAME)));
}

static void
put_who(tbuild *t, sb_vhost *v, const sb_trace_who *who)
{
    put(t, "vhost", lstr(sb_str_c(v->name)));
    put(t, "connection", lstr(sb_str_c(who && who->connection ? who->connection : "")));
    put(t, "channel", sint(who ? who->channel : 0));
    put(t, "user", lstr(sb_str_c(who && who->user ? who->user : "")));
}

/* Publishes the trace message (headers h, m's body) to amq.rabbitmq.trace
 * with routing key prefix.name. */
static void
emit(sb_vhost *v, const char *prefix, sb_str name, const sb_amqp_table *h, const sb_msg *m)
{
    sb_exchange *x = sb_broker__exchange_find(v, SB_STR_LIT(TRACE_EXCHANGE));
    sb_amqp_props p = { .flags = SB_PROP_HEADERS, .headers = *h };
    sb_dest_vec out = { 0 };
    sb_buf raw = SB_BUF_INIT;
    char rk[256];
    sb_msg *t;
    int n;

    if (x == NULL)
        return;
    /* Routing keys are short strings: a long name is cut to fit. */
    n = snprintf(rk, sizeof rk, "%s.%.*s", prefix, SB_STR_ARGS(name));
    if (n < 0 || (size_t)n >= sizeof rk)
        n = (int)sizeof rk - 1;
    sb_amqp_props_encode(&raw, &p);
    t = sb_msg_new(sb_str_make(raw.data, raw.len), SB_STR_LIT(TRACE_EXCHANGE),
                   sb_str_make(rk, (size_t)n), m->body_len, 0, 0);
    sb_buf_free(&raw);
    if (t == NULL)
        return;  /* out of memory for a copy of a big body: this trace is skipped */
    memcpy(sb_msg_body(t), sb_msg_body(m), m->body_len);
    /* Our own vector: the caller may be iterating v->route_tmp. */
    sb_broker__route(v, x, sb_msg_rk(t), NULL, &out);
    for (size_t i = 0; i < out.n; i++)
        sb_broker__queue_enqueue(out.v[i], t);
    sb_dest_vec_free(&out);
    sb_msg_unref(t);
}

/* m's properties decoded into a; an empty set when they do not decode. */
static void
decode_props(const sb_msg *m, sb_amqp_props *p, sb_arena *a)
{
    sb_str raw = sb_msg_props(m);

    if (raw.len < 2 || sb_amqp_props_decode(raw.p, raw.len, p, a) != 0)
        memset(p, 0, sizeof *p);
}

void
sb_broker__firehose_publish(sb_vhost *v, const sb_trace_who *who, const sb_msg *m,
                            const sb_amqp_table *headers, const sb_dest_vec *out)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p;
    sb_amqp_value routed = { .kind = SB_FV_ARRAY };
    size_t nq = out ? out->n : 0;
    tbuild t;

    if (sb_str_eq_c(sb_msg_exchange(m), TRACE_EXCHANGE))
        return;
    decode_props(m, &p, &a);
    t.e = sb_arena_alloc(&a, 9 * sizeof *t.e);
    t.n = 0;
    put_common(&t, v->broker, m, &p, headers, &a);
    put_who(&t, v, who);
    routed.v.a.v = sb_arena_alloc(&a, (nq + 1) * sizeof *routed.v.a.v);
    for (size_t i = 0; i < nq; i++) {
        const sb_queue *q = out->v[i];
        routed.v.a.v[routed.v.a.n++] = lstr(sb_str_make(q->name, q->name_len));
    }
    put(&t, "routed_queues", routed);
    emit(v, "publish", sb_msg_exchange(m), &(sb_amqp_table){ .n = t.n, .e = t.e }, m);
    sb_arena_free(&a);
}

void
sb_broker__firehose_deliver(sb_queue *q, const sb_bchan *ch, const sb_msg *m, bool redelivered)
{
    sb_vhost *v = q->vhost;
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p;
    tbuild t;

    if (sb_str_eq_c(sb_msg_exchange(m), TRACE_EXCHANGE))
        return;
    decode_props(m, &p, &a);
    t.e = sb_arena_alloc(&a, 9 * sizeof *t.e);
    t.n = 0;
    put_common(&t, v->broker, m, &p, (p.flags & SB_PROP_HEADERS) ? &p.headers : NULL, &a);
    put(&t, "redelivered", sint(redelivered ? 1 : 0));
    put_who(&t, v, ch ? &ch->who : NULL);
    emit(v, "deliver", sb_str_make(q->name, q->name_len), &(sb_amqp_table){ .n = t.n, .e = t.e },
         m);
    sb_arena_free(&a);
}
