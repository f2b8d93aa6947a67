/* deadletter.c - dead-lettering exactly as RabbitMQ 3.10 does it: the
 * message goes to the queue's x-dead-letter-exchange, with the routing key
 * x-dead-letter-routing-key or its original keys (routing key and CC), its
 * expiration property removed, and an x-death entry per (queue, reason)
 * recording count, reason, queue, time, exchange, routing-keys and
 * original-expiration, newest first; x-first-death-* are set once.
 * Automatic cycles (no rejection anywhere in the loop) are dropped. */
#include "broker_int.h"

#include <string.h>

#include "../common/alloc.h"
#include "../common/clock.h"

static const char *const reason_names[] = {
    [SB_DEATH_REJECTED] = "rejected",
    [SB_DEATH_EXPIRED] = "expired",
    [SB_DEATH_MAXLEN] = "maxlen",
    [SB_DEATH_DELIVERY_LIMIT] = "delivery_limit",
};

sb_msg *
sb_broker__msg_with_props(const sb_msg *m, const sb_amqp_props *p, sb_str exchange, sb_str rk)
{
    sb_buf raw = SB_BUF_INIT;
    sb_msg *n;

    sb_amqp_props_encode(&raw, p);
    n = sb_msg_new(sb_str_make(raw.data, raw.len), exchange, rk, m->body_len, m->delivery_mode,
                   m->priority);
    sb_buf_free(&raw);
    if (n == NULL)
        return NULL;
    memcpy(sb_msg_body(n), sb_msg_body(m), m->body_len);
    n->expiration_ms = (p->flags & SB_PROP_EXPIRATION) ? m->expiration_ms : -1;
    n->traced = m->traced;  /* p keeps the headers, traceparent included */
    return n;
}

static sb_amqp_value
lstr(sb_str s)
{
    return (sb_amqp_value){ .kind = SB_FV_LONGSTR, .v.s = s };
}

static bool
has_string(const sb_amqp_table *t, const char *key, const char *want)
{
    const sb_amqp_value *v = sb_amqp_table_get(t, key);
    return v && v->kind == SB_FV_LONGSTR && (want == NULL || sb_str_eq_c(v->v.s, want));
}

/* The message's routing keys: its routing key, then its CC header. */
static sb_amqp_value
routing_keys(const sb_msg *m, const sb_amqp_table *h, sb_arena *a)
{
    const sb_amqp_value *cc = h ? sb_amqp_table_get(h, "CC") : NULL;
    uint32_t ncc = cc && cc->kind == SB_FV_ARRAY ? cc->v.a.n : 0, n = 0;
    sb_amqp_value v = { .kind = SB_FV_ARRAY };

    v.v.a.v = sb_arena_alloc(a, (1 + ncc) * sizeof *v.v.a.v);
    v.v.a.v[n++] = lstr(sb_msg_rk(m));
    for (uint32_t i = 0; i < ncc; i++)
        if (cc->v.a.v[i].kind == SB_FV_LONGSTR)
            v.v.a.v[n++] = cc->v.a.v[i];
    v.v.a.n = n;
    return v;
}

/* A new x-death entry for this death, its fields sorted by name as
 * RabbitMQ sorts them. */
static sb_amqp_value
death_entry(sb_queue *q, const sb_msg *m, const sb_amqp_props *p, sb_death reason, sb_arena *a)
{
    sb_amqp_entry *e = sb_arena_alloc(a, 7 * sizeof *e);
    uint32_t n = 0;

    e[n++] = (sb_amqp_entry){ SB_STR_LIT("count"), { .kind = SB_FV_I64, .v.i = 1 } };
    e[n++] = (sb_amqp_entry){ SB_STR_LIT("exchange"), lstr(sb_msg_exchange(m)) };
    if (p->flags & SB_PROP_EXPIRATION)
        e[n++] = (sb_amqp_entry){ SB_STR_LIT("original-expiration"), lstr(p->expiration) };
    e[n++] = (sb_amqp_entry){ SB_STR_LIT("queue"), lstr(sb_str_make(q->name, q->name_len)) };
    e[n++] = (sb_amqp_entry){ SB_STR_LIT("reason"), lstr(sb_str_c(reason_names[reason])) };
    e[n++] = (sb_amqp_entry){ SB_STR_LIT("routing-keys"),
                              routing_keys(m, (p->flags & SB_PROP_HEADERS) ? &p->headers : NULL, a) };
    e[n++] = (sb_amqp_entry){ SB_STR_LIT("time"),
                              { .kind = SB_FV_TIMESTAMP, .v.u = sb_wall_ms() / 1000 } };
    return (sb_amqp_value){ .kind = SB_FV_TABLE, .v.t = { .n = n, .e = e } };
}

static bool
same_death(const sb_amqp_value *d, sb_queue *q, sb_death reason)
{
    return d->kind == SB_FV_TABLE && has_string(&d->v.t, "queue", q->name) &&
           has_string(&d->v.t, "reason", reason_names[reason]);
}

/* An existing entry with its count one higher. */
static sb_amqp_value
counted_up(const sb_amqp_value *d, sb_arena *a)
{
    sb_amqp_entry *e = sb_arena_alloc(a, d->v.t.n * sizeof *e);
    int64_t c;

    memcpy(e, d->v.t.e, d->v.t.n * sizeof *e);
    for (uint32_t j = 0; j < d->v.t.n; j++)
        if (sb_str_eq_c(e[j].key, "count") && sb_amqp_value_int(&e[j].v, &c))
            e[j].v = (sb_amqp_value){ .kind = SB_FV_I64, .v.i = c + 1 };
    return (sb_amqp_value){ .kind = SB_FV_TABLE, .v.t = { .n = d->v.t.n, .e = e } };
}

/* x-death with this death recorded: an existing (queue, reason) entry is
 * counted up and moved to the front, else the fresh one goes first. */
static sb_amqp_value
update_x_death(const sb_amqp_value *old, sb_amqp_value fresh, sb_queue *q, sb_death reason,
               sb_arena *a)
{
    uint32_t n = old && old->kind == SB_FV_ARRAY ? old->v.a.n : 0, k = 1;
    sb_amqp_value out = { .kind = SB_FV_ARRAY };
    bool counted = false;

    out.v.a.v = sb_arena_alloc(a, (n + 1) * sizeof *out.v.a.v);
    out.v.a.v[0] = fresh;
    for (uint32_t i = 0; i < n; i++) {
        const sb_amqp_value *d = &old->v.a.v[i];
        if (!counted && same_death(d, q, reason)) {
            out.v.a.v[0] = counted_up(d, a);
            counted = true;
            continue;
        }
        out.v.a.v[k++] = *d;
    }
    out.v.a.n = k;
    return out;
}

/* The dead letter's headers: x-first-death-* (once), x-death, then the
 * original headers. */
static sb_amqp_table
dead_headers(sb_queue *q, const sb_msg *m, const sb_amqp_props *p, sb_death reason, sb_arena *a)
{
    const sb_amqp_table *h = (p->flags & SB_PROP_HEADERS) ? &p->headers : NULL;
    uint32_t n = h ? h->n : 0, k = 0;
    sb_amqp_entry *e = sb_arena_alloc(a, (n + 4) * sizeof *e);
    sb_amqp_value xd = update_x_death(h ? sb_amqp_table_get(h, "x-death") : NULL,
                                      death_entry(q, m, p, reason, a), q, reason, a);

    if (h == NULL || sb_amqp_table_get(h, "x-first-death-reason") == NULL) {
        e[k++] = (sb_amqp_entry){ SB_STR_LIT("x-first-death-exchange"), lstr(sb_msg_exchange(m)) };
        e[k++] = (sb_amqp_entry){ SB_STR_LIT("x-first-death-queue"),
                                  lstr(sb_str_make(q->name, q->name_len)) };
        e[k++] = (sb_amqp_entry){ SB_STR_LIT("x-first-death-reason"),
                                  lstr(sb_str_c(reason_names[reason])) };
    }
    e[k++] = (sb_amqp_entry){ SB_STR_LIT("x-death"), xd };
    for (uint32_t i = 0; i < n; i++)
        if (!sb_str_eq_c(h->e[i].key, "x-death"))
            e[k++] = h->e[i];
    return (sb_amqp_table){ .n = k, .e = e };
}

/* RabbitMQ's is_cycle: walking x-death from the newest, the target queue
 * appears and no death on the way (itself included) was a rejection. */
static bool
is_cycle(sb_queue *target, const sb_amqp_value *xd)
{
    for (uint32_t i = 0; i < xd->v.a.n; i++) {
        const sb_amqp_value *d = &xd->v.a.v[i];
        if (d->kind != SB_FV_TABLE || has_string(&d->v.t, "reason", "rejected"))
            return false;
        if (has_string(&d->v.t, "queue", target->name))
            return true;
    }
    return false;
}

/* Routes the dead letter from x with each of its keys into out. */
static void
route_dead(sb_vhost *v, sb_exchange *x, const sb_msg *m, const sb_amqp_value *keys,
           const sb_amqp_table *h, sb_dest_vec *out)
{
    for (uint32_t i = 0; i < keys->v.a.n; i++) {
        sb_str key = keys->v.a.v[i].v.s;
        if (x->name_len == 0) {
            sb_queue *q = sb_broker__queue_find(v, key);
            if (q != NULL)
                sb_dest_vec_push_unique(out, q);
        } else {
            sb_broker__route(v, x, key, h, out);
        }
    }
}

void
sb_broker__deadletter(sb_queue *q, sb_qentry *e, sb_death reason)
{
    sb_vhost *v = q->vhost;
    sb_exchange *x = q->cfg.dlx ? sb_broker__exchange_find(v, sb_str_c(q->cfg.dlx)) : NULL;
    sb_arena a = SB_ARENA_INIT;
    sb_dest_vec out = { 0 };
    sb_amqp_props p;
    sb_amqp_value keys;
    sb_msg *m = e->msg, *dl;
    sb_str rk;

    if (m->traced && x == NULL)
        sb_broker__trace_dead(q, m, reason, NULL, SB_STR_NULL, NULL);
    sb_broker__stat(v, q, NULL,
                    (sb_stat)((x ? SB_STAT_DEAD_REJECTED : SB_STAT_DROP_REJECTED) + reason));
    if (x == NULL || sb_amqp_props_decode(sb_msg_props(m).p, sb_msg_props(m).len, &p, &a) < 0)
        goto out;
    keys = routing_keys(m, (p.flags & SB_PROP_HEADERS) ? &p.headers : NULL, &a);
    if (q->cfg.dlrk != NULL) {
        keys.v.a.n = 1;
        keys.v.a.v[0] = lstr(sb_str_c(q->cfg.dlrk));
    }
    rk = keys.v.a.v[0].v.s;
    p.headers = dead_headers(q, m, &p, reason, &a);
    p.flags |= SB_PROP_HEADERS;
    p.flags &= (uint16_t)~SB_PROP_EXPIRATION;
    dl = sb_broker__msg_with_props(m, &p, sb_str_make(x->name, x->name_len), rk);
    if (dl == NULL)
        goto out;
    route_dead(v, x, dl, &keys, &p.headers, &out);
    if (m->traced)
        sb_broker__trace_dead(q, m, reason, x, rk, &out);
    for (size_t i = 0; i < out.n; i++) {
        sb_queue *t = out.v[i];
        if (reason == SB_DEATH_REJECTED || !is_cycle(t, sb_amqp_table_get(&p.headers, "x-death")))
            sb_broker__queue_enqueue(t, dl);
    }
    sb_msg_unref(dl);
out:
    sb_dest_vec_free(&out);
    sb_arena_free(&a);
    sb_broker__qentry_free(q, e);
}
