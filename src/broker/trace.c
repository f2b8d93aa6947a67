/* trace.c - the per-action trace: a bounded ring of events, indexed by
 * trace id, that GET /api/traces and `switchboard trace` read.
 *
 * Memory is fixed by trace_max_events (N): a ring of N 256-byte event
 * slots, N trace summaries of 56 bytes and an index of 2N..4N 4-byte slot
 * numbers (320 to 328 bytes per event), plus 160 KiB of reply links: 5.2
 * MiB for the default 16384, reserved when the first event is recorded
 * (calloc, so pages are touched only as the ring fills). Recording never allocates: a new
 * event overwrites the oldest slot, and a trace whose last event is
 * overwritten leaves the index. Events of one trace are linked oldest to
 * newest, so reading a trace walks only its own events; because the ring
 * overwrites in recording order, an overwritten event is always the
 * oldest of its trace (the head of its list).
 *
 * An event holds its attributes (names, numbers) encoded in its slot:
 * key byte, then a length byte and up to 255 bytes for a string, or 8
 * bytes little-endian for an integer (key | 0x80). What does not fit is
 * cut and the event marked truncated.
 *
 * Replies linked by correlation id: a traced request with reply_to and
 * correlation_id is remembered in a small direct-mapped table (REPLY_LINKS
 * entries, overwritten when full), so a reply that carries no traceparent
 * still lands in its caller's trace.
 *
 * Loop thread only.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "../common/map.h"

#define EVENT_BYTES 256
#define ATTR_BYTES (EVENT_BYTES - 48)
#define REPLY_LINKS 4096
#define INT_FLAG 0x80

struct sb_trace_event {
    uint64_t ts_us;             /* wall clock, microseconds */
    uint64_t seq;               /* ring-wide event number */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    int32_t next;               /* next event of the same trace, -1: none */
    uint8_t kind;               /* sb_trace_kind */
    uint8_t truncated;
    uint16_t attr_len;          /* bytes of attrs used */
    uint8_t attrs[ATTR_BYTES];
};
_Static_assert(sizeof(struct sb_trace_event) == EVENT_BYTES, "trace event slot size");

typedef struct trace_sum {         /* 56 bytes */
    uint8_t trace_id[16];
    uint64_t first_us, last_us; /* wall clock, microseconds */
    int32_t head, tail;         /* oldest and newest event slot */
    uint32_t count;             /* events in the ring */
    uint32_t seen;              /* 1 << kind for every kind recorded */
    int32_t next_free;          /* free list, when unused */
} trace_sum;
_Static_assert(sizeof(trace_sum) == 56, "trace summary size (trace.c header, docs/tracing.md)");

typedef struct reply_link {
    uint64_t key;               /* 0: empty */
    sb_trace_ctx ctx;
} reply_link;

struct sb_tracer {
    uint32_t cap;               /* events in the ring */
    uint64_t seq;               /* events ever recorded */
    sb_trace_event *ev;         /* cap slots; NULL until the first event */
    trace_sum *sums;            /* cap slots */
    uint32_t sums_used;         /* high-water mark of sums handed out */
    int32_t free_sum;           /* free list head, -1: none */
    uint32_t ntraces;
    int32_t *index;             /* trace slot -> sums index, -1: empty */
    uint32_t index_mask;
    reply_link *links;          /* REPLY_LINKS entries */
};

static const char *const kind_names[SB_TRACE_KIND_COUNT] = {
    [SB_TRACE_PUBLISHED] = "published",
    [SB_TRACE_ROUTED] = "routed",
    [SB_TRACE_UNROUTABLE] = "unroutable",
    [SB_TRACE_RETURNED] = "returned",
    [SB_TRACE_DELAYED] = "delayed",
    [SB_TRACE_DELIVERED] = "delivered",
    [SB_TRACE_GOT] = "got",
    [SB_TRACE_ACKED] = "acked",
    [SB_TRACE_REJECTED] = "rejected",
    [SB_TRACE_REQUEUED] = "requeued",
    [SB_TRACE_EXPIRED] = "expired",
    [SB_TRACE_DEAD_LETTERED] = "dead_lettered",
    [SB_TRACE_DROPPED] = "dropped",
    [SB_TRACE_RETRY_SCHEDULED] = "retry_scheduled",
    [SB_TRACE_RELEASED] = "released",
    [SB_TRACE_REPLIED] = "replied",
    [SB_TRACE_REPLAYED] = "replayed",
    [SB_TRACE_RPC_STARTED] = "rpc_started",
    [SB_TRACE_RPC_ANSWERED] = "rpc_answered",
    [SB_TRACE_RPC_TIMEOUT] = "rpc_timeout",
};

static const char *const key_names[SB_TK_COUNT] = {
    [SB_TK_VHOST] = "vhost",
    [SB_TK_EXCHANGE] = "exchange",
    [SB_TK_ROUTING_KEY] = "routing_key",
    [SB_TK_QUEUE] = "queue",
    [SB_TK_QUEUES] = "queues",
    [SB_TK_QUEUE_COUNT] = "queue_count",
    [SB_TK_CONNECTION] = "connection",
    [SB_TK_USER] = "user",
    [SB_TK_CHANNEL] = "channel",
    [SB_TK_CONSUMER_TAG] = "consumer_tag",
    [SB_TK_DELIVERY_TAG] = "delivery_tag",
    [SB_TK_REDELIVERED] = "redelivered",
    [SB_TK_DELIVERY_COUNT] = "delivery_count",
    [SB_TK_PERSISTENT] = "persistent",
    [SB_TK_SIZE] = "size",
    [SB_TK_REASON] = "reason",
    [SB_TK_DELAY_MS] = "delay_ms",
    [SB_TK_ATTEMPT] = "attempt",
    [SB_TK_ATTEMPTS] = "attempts",
    [SB_TK_REPLY_TO] = "reply_to",
    [SB_TK_CORRELATION_ID] = "correlation_id",
    [SB_TK_LINKED_BY] = "linked_by",
    [SB_TK_DELIVERED_TO_CALLER] = "delivered_to_caller",
    [SB_TK_DIED_IN] = "died_in",
    [SB_TK_DEATHS] = "deaths",
    [SB_TK_STATUS] = "status",
    [SB_TK_TIMEOUT_MS] = "timeout_ms",
    [SB_TK_DURATION_US] = "duration_us",
    [SB_TK_PATH] = "path",
    [SB_TK_REPLY_CODE] = "reply_code",
    [SB_TK_REPLY_TEXT] = "reply_text",
};

const char *
sb_trace_kind_name(sb_trace_kind k)
{
    return (unsigned)k < SB_TRACE_KIND_COUNT ? kind_names[k] : "unknown";
}

const char *
sb_trace_key_name(sb_trace_key k)
{
    return (unsigned)k < SB_TK_COUNT ? key_names[k] : "unknown";
}

/* ---- life cycle ---- */

void
sb_broker__trace_init(sb_broker *b, uint32_t max_events)
{
    if (max_events == 0)
        return;
    b->tracer = sb_calloc(1, sizeof *b->tracer);
    b->tracer->cap = max_events;
    b->tracer->free_sum = -1;
}

void
sb_broker__trace_free(sb_broker *b)
{
    sb_tracer *t = b->tracer;

    sb_arena_free(&b->trace_arena);
    if (t == NULL)
        return;
    sb_free(t->ev);
    sb_free(t->sums);
    sb_free(t->index);
    sb_free(t->links);
    sb_free(t);
    b->tracer = NULL;
}

static uint32_t
index_slots(uint32_t cap)
{
    uint32_t n = 16;

    /* At most cap traces live at once: keep the load under a half. */
    while (n < 2 * (uint64_t)cap)
        n *= 2;
    return n;
}

/* The big arrays, on the first event: a broker that never sees a
 * traceparent never pays for them. */
static void
tracer_reserve(sb_tracer *t)
{
    uint32_t n = index_slots(t->cap);

    t->ev = sb_calloc(t->cap, sizeof *t->ev);
    t->sums = sb_calloc(t->cap, sizeof *t->sums);
    t->index = sb_malloc(n * sizeof *t->index);
    memset(t->index, 0xff, n * sizeof *t->index);  /* every slot -1 */
    t->index_mask = n - 1;
    t->links = sb_calloc(REPLY_LINKS, sizeof *t->links);
}

bool
sb_trace_on(const sb_broker *b)
{
    return b->tracer != NULL;
}

void
sb_trace_mark(sb_broker *b, sb_msg *m, const sb_amqp_table *headers)
{
    sb_trace_ctx c;

    if (b->tracer != NULL && headers != NULL && sb_trace_ctx_from_headers(headers, &c))
        m->traced = 1;
}

/* ---- the index: trace id -> summary ---- */

static uint32_t
home(const sb_tracer *t, const uint8_t id[16])
{
    uint64_t x;

    /* Trace ids are random (W3C asks for it), but mix anyway in case a
     * client makes them up from a counter. */
    memcpy(&x, id + 8, sizeof x);
    x ^= x >> 31;
    x *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) & t->index_mask;
}

/* The index slot holding id, or the empty slot where it would go. */
static uint32_t
probe(const sb_tracer *t, const uint8_t id[16])
{
    uint32_t i = home(t, id);

    while (t->index[i] >= 0 && memcmp(t->sums[t->index[i]].trace_id, id, 16) != 0)
        i = (i + 1) & t->index_mask;
    return i;
}

static trace_sum *
sum_find(const sb_tracer *t, const uint8_t id[16])
{
    uint32_t i;

    if (t->ev == NULL)
        return NULL;
    i = probe(t, id);
    return t->index[i] >= 0 ? &t->sums[t->index[i]] : NULL;
}

/* Linear probing's deletion by backward shift: entries after the hole
 * move into it unless their home lies cyclically in (hole, entry]. */
static void
index_remove(sb_tracer *t, uint32_t hole)
{
    uint32_t j = hole;

    for (;;) {
        j = (j + 1) & t->index_mask;
        if (t->index[j] < 0)
            break;
        uint32_t k = home(t, t->sums[t->index[j]].trace_id);
        bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (stays)
            continue;
        t->index[hole] = t->index[j];
        hole = j;
    }
    t->index[hole] = -1;
}

static void
sum_release(sb_tracer *t, trace_sum *s)
{
    int32_t n = (int32_t)(s - t->sums);

    index_remove(t, probe(t, s->trace_id));
    s->next_free = t->free_sum;
    t->free_sum = n;
    t->ntraces--;
}

static trace_sum *
sum_new(sb_tracer *t, uint32_t slot, const uint8_t id[16])
{
    int32_t n;
    trace_sum *s;

    if (t->free_sum >= 0) {
        n = t->free_sum;
        t->free_sum = t->sums[n].next_free;
    } else {
        /* Live traces never outnumber the events in the ring, and the
         * event being recorded has made room: there is always one. */
        sb_assert(t->sums_used < t->cap);
        n = (int32_t)t->sums_used++;
    }
    s = &t->sums[n];
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, id, 16);
    s->head = s->tail = -1;
    t->index[slot] = n;
    t->ntraces++;
    return s;
}

/* Slot i is about to be reused: its event leaves its trace. */
static void
evict(sb_tracer *t, uint32_t i)
{
    sb_trace_event *e = &t->ev[i];
    trace_sum *s = sum_find(t, e->trace_id);

    sb_assert(s != NULL && s->head == (int32_t)i);
    s->head = e->next;
    if (--s->count == 0)
        sum_release(t, s);
}

/* ---- recording ---- */

static uint64_t
wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Which kinds settle a trace's status, latest first (see status_name). */
static void
note_kind(trace_sum *s, sb_trace_kind k)
{
    s->seen |= 1u << k;
    /* A replay revives a dead letter; dying again buries it again. */
    if (k == SB_TRACE_DEAD_LETTERED)
        s->seen &= ~(1u << SB_TRACE_REPLAYED);
    else if (k == SB_TRACE_REPLAYED)
        s->seen &= ~(1u << SB_TRACE_DEAD_LETTERED);
}

sb_trace_event *
sb_trace_begin(sb_broker *b, const sb_trace_ctx *ctx, sb_trace_kind kind)
{
    sb_tracer *t = b->tracer;
    sb_trace_event *e;
    trace_sum *s;
    uint32_t i, slot;

    if (t == NULL)
        return NULL;
    if (t->ev == NULL)
        tracer_reserve(t);
    i = (uint32_t)(t->seq % t->cap);
    if (t->seq >= t->cap)
        evict(t, i);
    e = &t->ev[i];
    e->ts_us = wall_us();
    e->seq = ++t->seq;
    memcpy(e->trace_id, ctx->trace_id, 16);
    memcpy(e->span_id, ctx->span_id, 8);
    e->next = -1;
    e->kind = (uint8_t)kind;
    e->truncated = 0;
    e->attr_len = 0;
    slot = probe(t, ctx->trace_id);
    if (t->index[slot] >= 0) {
        s = &t->sums[t->index[slot]];
        t->ev[s->tail].next = (int32_t)i;
    } else {
        s = sum_new(t, slot, ctx->trace_id);
        s->head = (int32_t)i;
        s->first_us = e->ts_us;
    }
    s->tail = (int32_t)i;
    s->count++;
    s->last_us = e->ts_us;
    note_kind(s, kind);
    return e;
}

void
sb_trace_str(sb_trace_event *e, sb_trace_key k, sb_str v)
{
    size_t room, n;

    if (e == NULL)
        return;
    room = ATTR_BYTES - e->attr_len;
    if (room < 3) {
        e->truncated = 1;
        return;
    }
    n = v.len;
    if (n > 255)
        n = 255;
    if (n > room - 2)
        n = room - 2;
    if (n < v.len)
        e->truncated = 1;
    e->attrs[e->attr_len] = (uint8_t)k;
    e->attrs[e->attr_len + 1] = (uint8_t)n;
    if (n > 0)
        memcpy(e->attrs + e->attr_len + 2, v.p, n);
    e->attr_len = (uint16_t)(e->attr_len + 2 + n);
}

void
sb_trace_int(sb_trace_event *e, sb_trace_key k, int64_t v)
{
    uint64_t u = (uint64_t)v;

    if (e == NULL)
        return;
    if (ATTR_BYTES - e->attr_len < 9) {
        e->truncated = 1;
        return;
    }
    e->attrs[e->attr_len] = (uint8_t)(k | INT_FLAG);
    for (int i = 0; i < 8; i++)
        e->attrs[e->attr_len + 1 + i] = (uint8_t)(u >> (8 * i));
    e->attr_len = (uint16_t)(e->attr_len + 9);
}

void
sb_trace_add_who(sb_trace_event *e, const sb_trace_who *who)
{
    if (e == NULL || who == NULL)
        return;
    sb_trace_str(e, SB_TK_CONNECTION, sb_str_c(who->connection ? who->connection : ""));
    sb_trace_str(e, SB_TK_USER, sb_str_c(who->user ? who->user : ""));
    sb_trace_int(e, SB_TK_CHANNEL, who->channel);
}

/* ---- replies linked by correlation id ---- */

static uint64_t
link_key(sb_str reply_to, sb_str corr)
{
    uint64_t k = (uint64_t)sb_hash(reply_to.p, reply_to.len) << 32 | sb_hash(corr.p, corr.len);

    return k ? k : 1;
}

void
sb_broker__trace_link_reply(sb_broker *b, sb_str reply_to, sb_str corr, const sb_trace_ctx *ctx)
{
    sb_tracer *t = b->tracer;
    uint64_t k = link_key(reply_to, corr);
    reply_link *l;

    if (t == NULL || t->links == NULL)
        return;
    l = &t->links[k % REPLY_LINKS];
    if (l->key == 0)
        b->trace_reply_links++;
    l->key = k;                 /* an older link in this slot is forgotten */
    l->ctx = *ctx;
}

bool
sb_broker__trace_take_reply(sb_broker *b, sb_str reply_to, sb_str corr, sb_trace_ctx *out)
{
    sb_tracer *t = b->tracer;
    uint64_t k = link_key(reply_to, corr);
    reply_link *l;

    if (t == NULL || t->links == NULL)
        return false;
    l = &t->links[k % REPLY_LINKS];
    if (l->key != k)
        return false;
    *out = l->ctx;
    l->key = 0;
    b->trace_reply_links--;
    return true;
}

/* ---- reading ---- */

/* The status of a trace, from the kinds it has seen. */
static const char *
status_name(uint32_t seen)
{
#define SEEN(k) (seen & (1u << (k)))
    if (SEEN(SB_TRACE_RPC_TIMEOUT))
        return "timed_out";
    if (SEEN(SB_TRACE_DEAD_LETTERED))
        return "dead_lettered";
    if (SEEN(SB_TRACE_REPLAYED))
        return "replayed";
    if (SEEN(SB_TRACE_DROPPED))
        return "dropped";
    if (SEEN(SB_TRACE_UNROUTABLE) || SEEN(SB_TRACE_RETURNED))
        return "unroutable";
    if (SEEN(SB_TRACE_RETRY_SCHEDULED) || SEEN(SB_TRACE_REJECTED) || SEEN(SB_TRACE_REQUEUED))
        return "retried";
    return "ok";
#undef SEEN
}

static void
view_of(const sb_trace_event *e, sb_trace_view *v)
{
    v->seq = e->seq;
    v->ts_us = e->ts_us;
    v->kind = (sb_trace_kind)e->kind;
    memcpy(v->span_id, e->span_id, 8);
    v->truncated = e->truncated != 0;
    v->attrs = e->attrs;
    v->attr_len = e->attr_len;
}

bool
sb_trace_attr_next(const sb_trace_view *ev, size_t *pos, sb_trace_attr *out)
{
    size_t p = *pos;
    uint8_t k;

    if (p + 1 >= ev->attr_len)
        return false;
    k = ev->attrs[p];
    out->key = (sb_trace_key)(k & ~INT_FLAG);
    out->is_int = (k & INT_FLAG) != 0;
    if (out->is_int) {
        uint64_t u = 0;
        if (p + 9 > ev->attr_len)
            return false;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | ev->attrs[p + 1 + i];
        out->i = (int64_t)u;
        out->s = SB_STR_NULL;
        *pos = p + 9;
        return true;
    }
    if (p + 2 + ev->attrs[p + 1] > ev->attr_len)
        return false;
    out->s = sb_str_make(ev->attrs + p + 2, ev->attrs[p + 1]);
    out->i = 0;
    *pos = p + 2 + ev->attrs[p + 1];
    return true;
}

/* "publish shop order.placed", "rpc orders", ...: the oldest event still
 * in the ring, in a few words, into buf. */
static void
root_of(const sb_tracer *t, const trace_sum *s, char *buf, size_t len)
{
    const sb_trace_event *e = &t->ev[s->head];
    sb_trace_view v;
    sb_trace_attr a;
    sb_str x = SB_STR_NULL, rk = SB_STR_NULL, q = SB_STR_NULL;
    size_t pos = 0;

    view_of(e, &v);
    while (sb_trace_attr_next(&v, &pos, &a)) {
        if (a.key == SB_TK_EXCHANGE && x.p == NULL)
            x = a.s;
        else if (a.key == SB_TK_ROUTING_KEY && rk.p == NULL)
            rk = a.s;
        else if (a.key == SB_TK_QUEUE && q.p == NULL)
            q = a.s;
    }
    if (v.kind == SB_TRACE_RPC_STARTED)
        snprintf(buf, len, "rpc %.*s", SB_STR_ARGS(q));
    else if (v.kind == SB_TRACE_PUBLISHED)
        snprintf(buf, len, "publish %.*s %.*s", x.len ? (int)x.len : 11,
                 x.len ? (const char *)x.p : "amq.default", SB_STR_ARGS(rk));
    else if (q.len > 0)
        snprintf(buf, len, "%s %.*s", sb_trace_kind_name(v.kind), SB_STR_ARGS(q));
    else
        snprintf(buf, len, "%s", sb_trace_kind_name(v.kind));
}

static void
summary_of(const sb_tracer *t, const trace_sum *s, sb_trace_summary *out)
{
    memcpy(out->trace_id, s->trace_id, 16);
    out->first_us = s->first_us;
    out->last_us = s->last_us;
    out->events = s->count;
    out->status = status_name(s->seen);
    root_of(t, s, out->root, sizeof out->root);
}

void
sb_trace_stats_get(const sb_broker *b, sb_trace_stats *out)
{
    const sb_tracer *t = b->tracer;

    memset(out, 0, sizeof *out);
    if (t == NULL)
        return;
    out->capacity = t->cap;
    out->recorded = t->seq;
    out->events = t->seq < t->cap ? (uint32_t)t->seq : t->cap;
    out->traces = t->ntraces;
    out->bytes = (uint64_t)t->cap * (sizeof(sb_trace_event) + sizeof(trace_sum)) +
                 (uint64_t)index_slots(t->cap) * sizeof(int32_t) +
                 REPLY_LINKS * sizeof(reply_link);
}

void
sb_trace_each(const sb_broker *b, void (*fn)(const sb_trace_summary *s, void *ud), void *ud)
{
    const sb_tracer *t = b->tracer;
    sb_trace_summary sum;

    if (t == NULL || t->ev == NULL)
        return;
    for (uint32_t i = 0; i <= t->index_mask; i++) {
        if (t->index[i] < 0)
            continue;
        summary_of(t, &t->sums[t->index[i]], &sum);
        fn(&sum, ud);
    }
}

bool
sb_trace_get(const sb_broker *b, const uint8_t trace_id[16], uint64_t after_seq,
             sb_trace_summary *sum, void (*fn)(const sb_trace_view *ev, void *ud), void *ud)
{
    const sb_tracer *t = b->tracer;
    const trace_sum *s;
    sb_trace_view v;

    if (t == NULL || (s = sum_find(t, trace_id)) == NULL)
        return false;
    summary_of(t, s, sum);
    for (int32_t i = s->head; i >= 0; i = t->ev[i].next) {
        if (t->ev[i].seq <= after_seq)
            continue;
        view_of(&t->ev[i], &v);
        fn(&v, ud);
    }
    return true;
}

int64_t
sb_broker__trace_count(sb_broker *b, const sb_trace_ctx *ctx, uint32_t kinds, sb_trace_key key,
                       sb_str value)
{
    const sb_tracer *t = b->tracer;
    const trace_sum *s;
    sb_trace_view v;
    sb_trace_attr a;
    int64_t n = 0;

    if (t == NULL || (s = sum_find(t, ctx->trace_id)) == NULL)
        return 0;
    /* One user action has tens of events; a client that stamps one
     * traceparent on a whole batch makes a trace of thousands, and walking
     * it at every delivery would cost more than the delivery. */
    if (s->count > SB_TRACE_COUNT_MAX_WALK)
        return -1;
    for (int32_t i = s->head; i >= 0; i = t->ev[i].next) {
        const sb_trace_event *e = &t->ev[i];
        size_t pos = 0;
        if (!(kinds & (1u << e->kind)) || memcmp(e->span_id, ctx->span_id, 8) != 0)
            continue;
        view_of(e, &v);
        while (sb_trace_attr_next(&v, &pos, &a)) {
            if (a.key == key && !a.is_int) {
                n += sb_str_eq(a.s, value);
                break;
            }
        }
    }
    return n;
}
