/* api_traces.c - Switchboard's per-action traces over HTTP (the broker's
 * trace ring, trace.c):
 *
 *   GET /api/traces?limit=N          recent traces, newest activity first
 *                                    (default 100, at most 10000):
 *                                    [{"trace_id","first_seen_us",
 *                                      "last_seen_us","events","status","root"}]
 *   GET /api/traces/{id}?after=SEQ   one trace: the same fields (the count
 *                                    as "event_count") and
 *                                    "events": [{"seq","ts_us","event",
 *                                    "span_id", attributes...}], oldest first;
 *                                    with after, only events with seq > SEQ
 *                                    (how `switchboard trace --follow` polls)
 *
 * 404 for a trace the ring does not hold (never seen, or overwritten), 400
 * for an id that is not 32 lowercase hex digits. Times are microseconds
 * since the Unix epoch. RabbitMQ has no such endpoints. Runs on the loop
 * thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

#define TRACES_DEFAULT_LIMIT 100
#define TRACES_MAX_LIMIT 10000

void
sb_http__trace_who(sb_http_req *r, sb_trace_who *who, char *buf, size_t len)
{
    snprintf(buf, len, "HTTP %s", r->hc ? r->hc->peer : "?");
    who->connection = buf;
    who->user = r->user;
    who->channel = 0;
}

static json_t *
summary_json(const sb_trace_summary *s)
{
    char id[SB_TRACE_ID_HEX + 1];

    sb_trace_hex(s->trace_id, 16, id);
    return json_pack("{s:s,s:I,s:I,s:I,s:s,s:s}", "trace_id", id, "first_seen_us",
                     (json_int_t)s->first_us, "last_seen_us", (json_int_t)s->last_us, "events",
                     (json_int_t)s->events, "status", s->status, "root", s->root);
}

static void
collect(const sb_trace_summary *s, void *ud)
{
    json_array_append_new(ud, summary_json(s));
}

static int
by_last_seen_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "last_seen_us"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "last_seen_us"));

    return x < y ? 1 : x > y ? -1 : 0;
}

/* A query parameter as a whole number in [lo, hi] (def when absent);
 * false after answering 400. */
static bool
query_u64(sb_http_req *r, const char *name, uint64_t def, uint64_t lo, uint64_t hi,
          uint64_t *out)
{
    const char *s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    char *end = NULL;
    unsigned long long v;

    *out = def;
    if (s == NULL)
        return true;
    v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || v < lo || v > hi) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "%s must be a whole number from %llu to %llu", name,
                             (unsigned long long)lo, (unsigned long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static void
list_traces(sb_http_req *r)
{
    json_t *all = json_array(), *out;
    json_t **v;
    uint64_t limit;
    size_t n;

    if (!query_u64(r, "limit", TRACES_DEFAULT_LIMIT, 1, TRACES_MAX_LIMIT, &limit)) {
        json_decref(all);
        return;
    }
    sb_trace_each(r->h->broker, collect, all);
    n = json_array_size(all);
    v = n ? calloc(n, sizeof *v) : NULL;
    for (size_t i = 0; i < n && v != NULL; i++)
        v[i] = json_array_get(all, i);
    if (v != NULL)
        qsort(v, n, sizeof *v, by_last_seen_desc);
    out = json_array();
    for (size_t i = 0; i < n && i < limit && v != NULL; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(all);
    sb_http__reply_json(r, MHD_HTTP_OK, out);
}

/* Attributes rendered as JSON booleans. */
static bool
is_bool_key(sb_trace_key k)
{
    return k == SB_TK_REDELIVERED || k == SB_TK_PERSISTENT || k == SB_TK_DELIVERED_TO_CALLER;
}

/* A JSON string of s; bytes that are not UTF-8 (names are bytes in AMQP)
 * become '?'. */
static json_t *
text(sb_str s)
{
    json_t *j = json_stringn((const char *)s.p, s.len);
    char buf[256];
    size_t n = s.len < sizeof buf ? s.len : sizeof buf;

    if (j != NULL)
        return j;
    for (size_t i = 0; i < n; i++)
        buf[i] = s.p[i] < 0x80 ? (char)s.p[i] : '?';
    return json_stringn(buf, n);
}

static void
event_json(const sb_trace_view *ev, void *ud)
{
    json_t *o = json_object(), *queues = NULL;
    char span[SB_SPAN_ID_HEX + 1];
    sb_trace_attr a;
    size_t pos = 0;

    sb_trace_hex(ev->span_id, 8, span);
    json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
    json_object_set_new(o, "ts_us", json_integer((json_int_t)ev->ts_us));
    json_object_set_new(o, "event", json_string(sb_trace_kind_name(ev->kind)));
    json_object_set_new(o, "span_id", json_string(span));
    while (sb_trace_attr_next(ev, &pos, &a)) {
        json_t *val = a.is_int ? (is_bool_key(a.key) ? json_boolean(a.i != 0)
                                                     : json_integer((json_int_t)a.i))
                               : text(a.s);
        if (a.key == SB_TK_QUEUES) {
            if (queues == NULL)
                json_object_set_new(o, "queues", queues = json_array());
            json_array_append_new(queues, val);
        } else {
            json_object_set_new(o, sb_trace_key_name(a.key), val);
        }
    }
    if (ev->truncated)
        json_object_set_new(o, "truncated", json_true());
    json_array_append_new(ud, o);
}

static void
show_trace(sb_http_req *r, sb_str id)
{
    uint8_t tid[16];
    sb_trace_summary sum;
    json_t *events, *out;
    uint64_t after;

    if (!sb_trace_unhex(id, tid, sizeof tid)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "a trace id is 32 lowercase hex digits, not '%.*s'", SB_STR_ARGS(id));
        return;
    }
    if (!query_u64(r, "after", 0, 0, UINT64_MAX, &after))
        return;
    events = json_array();
    if (!sb_trace_get(r->h->broker, tid, after, &sum, event_json, events)) {
        json_decref(events);
        sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                             "no trace '%.*s' in the trace ring (never seen, or overwritten: "
                             "it keeps the last trace.max_events events)", SB_STR_ARGS(id));
        return;
    }
    out = summary_json(&sum);
    json_object_del(out, "events");
    json_object_set_new(out, "event_count", json_integer((json_int_t)sum.events));
    json_object_set_new(out, "events", events);
    sb_http__reply_json(r, MHD_HTTP_OK, out);
}

void
sb_http__api_traces(sb_http_req *r)
{
    if (r->nparams == 1)
        show_trace(r, r->params[0]);
    else
        list_traces(r);
}
