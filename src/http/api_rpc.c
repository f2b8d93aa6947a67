/* api_rpc.c - POST /api/rpc/{vhost}/{queue}?timeout_ms=N: the REST face
 * of calls (issue 4). The request body is published to the default
 * exchange with routing key {queue}, as a call answered through direct
 * reply-to; the HTTP request is suspended until the reply or its deadline.
 *
 * Each vhost gets, on its first call, one broker channel owned by the
 * HTTP server with one direct reply-to consumer; its address is the
 * reply_to of every request. Replies are matched to waiting requests by
 * correlation_id (the caller's X-Correlation-Id, or one generated here),
 * so two concurrent calls may not share one (409). Each waiting call has
 * an sb_timer: at the deadline it answers 504 and forgets the call, so a
 * reply arriving later finds no match and is dropped; the request message
 * carries expiration = the timeout, so an unserved request expires with
 * its caller's deadline instead of being processed late. A queue without
 * consumers fails fast with 503: nobody would answer.
 *
 * Tracing: the call belongs to the trace of the caller's traceparent
 * header, or to a new one when it sends none (or a malformed one); the
 * request message carries it in its headers, the answer (200 or 504) in a
 * traceparent header, and the call's start, answer or timeout are events
 * of that trace (GET /api/traces/{id}).
 *
 * Answers: 200 with the reply's body, Content-Type (its content_type, or
 * application/octet-stream) and X-Correlation-Id; 504 {"error":"timeout"};
 * 404 for a missing vhost or queue; 503 {"error":"no_consumer"}; 400 for
 * a bad timeout_ms or header; 403 {"error":"access_refused"} for a user
 * without write permission on the default exchange (any user with that
 * permission may call: no management tag is needed). Runs on the loop
 * thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http_int.h"
#include "../common/alloc.h"
#include "../common/clock.h"
#include "../common/log.h"

#define CORR_HEADER "X-Correlation-Id"

typedef struct sb_http_rpc {
    sb_http *h;
    sb_vhost *v;
    sb_bchan *ch;              /* owned by the HTTP server; its reply consumer */
    sb_map calls;              /* correlation id -> sb_http_call */
    uint64_t seq;              /* for generated correlation ids */
    char id_prefix[24];        /* random per channel, so ids differ across restarts */
} sb_http_rpc;

struct sb_http_call {
    sb_http_rpc *rpc;
    sb_http_req *r;
    sb_timer timer;            /* the deadline */
    uint32_t timeout_ms;
    uint64_t start_us;         /* monotonic, for the trace's duration */
    sb_trace_ctx trace;        /* the call's trace: the caller's, or a new one */
    char traceparent[SB_TRACEPARENT_LEN + 1];
    char corr_id[256];
};

/* ---- waiting calls ---- */

/* Forgets c: stops its deadline, unmatches it, frees it. r stays. */
static void
call_finish(sb_http_call *c)
{
    sb_timer_stop(c->rpc->h->loop, &c->timer);
    sb_map_del(&c->rpc->calls, sb_str_c(c->corr_id));
    c->r->call = NULL;
    sb_free(c);
}

void
sb_http__call_abandon(sb_http_req *r)
{
    call_finish(r->call);
}

/* The call's answer (or its timeout) as an event of its trace. */
static void
trace_end(sb_http_call *c, sb_trace_kind kind, unsigned status, uint64_t size)
{
    sb_trace_event *e = sb_trace_begin(c->rpc->h->broker, &c->trace, kind);

    sb_trace_int(e, SB_TK_STATUS, status);
    sb_trace_str(e, SB_TK_CORRELATION_ID, sb_str_c(c->corr_id));
    sb_trace_int(e, SB_TK_DURATION_US, (int64_t)(sb_clock_us() - c->start_us));
    if (kind == SB_TRACE_RPC_TIMEOUT)
        sb_trace_int(e, SB_TK_TIMEOUT_MS, c->timeout_ms);
    else
        sb_trace_int(e, SB_TK_SIZE, (int64_t)size);
}

static void
on_deadline(sb_loop *l, sb_timer *t)
{
    sb_http_call *c = t->arg;
    sb_http_req *r = c->r;
    struct MHD_Response *resp;
    char reason[160];

    snprintf(reason, sizeof reason, "no reply from queue within the deadline of %u ms",
             c->timeout_ms);
    resp = sb_http__json_response(json_pack("{s:s,s:s,s:s}", "error", "timeout", "reason",
                                            reason, "correlation_id", c->corr_id));
    if (resp != NULL) {
        MHD_add_response_header(resp, CORR_HEADER, c->corr_id);
        MHD_add_response_header(resp, "traceparent", c->traceparent);
    }
    r->h->rpc_stats.timeouts++;
    trace_end(c, SB_TRACE_RPC_TIMEOUT, MHD_HTTP_GATEWAY_TIMEOUT, 0);
    call_finish(c);
    sb_http__reply_response(r, MHD_HTTP_GATEWAY_TIMEOUT, resp);
}

/* ---- replies (the direct reply-to consumer) ---- */

static struct MHD_Response *
reply_response(const sb_msg *m, const sb_amqp_props *p, const sb_http_call *c)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)m->body_len, sb_msg_body(m), MHD_RESPMEM_MUST_COPY);
    char ct[256];

    if (resp == NULL)
        return NULL;
    if ((p->flags & SB_PROP_CONTENT_TYPE) && p->content_type.len > 0)
        snprintf(ct, sizeof ct, "%.*s", SB_STR_ARGS(p->content_type));
    else
        snprintf(ct, sizeof ct, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    MHD_add_response_header(resp, CORR_HEADER, c->corr_id);
    MHD_add_response_header(resp, "traceparent", c->traceparent);
    return resp;
}

static void
on_reply(sb_consumer *cons, const sb_deliver_info *d, void *ud)
{
    sb_http_rpc *rpc = ud;
    sb_str raw = sb_msg_props(d->msg);
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p;
    sb_http_call *c = NULL;

    if (sb_amqp_props_decode(raw.p, raw.len, &p, &a) == 0 &&
        (p.flags & SB_PROP_CORRELATION_ID))
        c = sb_map_get(&rpc->calls, p.correlation_id);
    if (c == NULL) {
        /* Its caller gave up (deadline, disconnect) or never was. */
        rpc->h->rpc_stats.late_replies++;
        sb_log(SB_LOG_DEBUG, "http", "RPC reply in vhost '%s' matches no waiting call; dropped",
               sb_vhost_name(rpc->v));
    } else {
        sb_http_req *r = c->r;
        struct MHD_Response *resp = reply_response(d->msg, &p, c);
        trace_end(c, SB_TRACE_RPC_ANSWERED, MHD_HTTP_OK, d->msg->body_len);
        rpc->h->rpc_stats.replies++;
        call_finish(c);
        sb_http__reply_response(r, MHD_HTTP_OK, resp);
    }
    sb_arena_free(&a);
}

static const sb_consumer_ops reply_ops = {
    .deliver = on_reply,
};

/* ---- per-vhost channels ---- */

static sb_http_rpc *
rpc_for(sb_http *h, sb_vhost *v)
{
    sb_str key = sb_str_c(sb_vhost_name(v));
    sb_http_rpc *rpc = sb_map_get(&h->rpcs, key);
    sb_consume_req cr = { .queue = SB_STR_LIT(SB_REPLY_TO_QUEUE), .no_ack = true,
                          .ops = &reply_ops };
    sb_consumer *cons;
    sb_error err = { 0 };
    char tag[256];
    uint32_t rnd = 0;

    if (rpc != NULL)
        return rpc;
    rpc = sb_calloc(1, sizeof *rpc);
    rpc->h = h;
    rpc->v = v;
    rpc->ch = sb_bchan_new(h->broker, v, h);
    sb_bchan_set_who(rpc->ch, "HTTP RPC bridge", "", 0);
    cr.ud = rpc;
    if (sb_bchan_consume(rpc->ch, &cr, tag, &cons, &err) != 0) {
        sb_log(SB_LOG_ERROR, "http", "cannot consume direct reply-to in vhost '%s': %s",
               sb_vhost_name(v), err.text);
        sb_bchan_free(rpc->ch);
        sb_free(rpc);
        return NULL;
    }
    sb_consumer_start(cons);
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)sb_loop_now(h->loop);
    snprintf(rpc->id_prefix, sizeof rpc->id_prefix, "sb-%08x", rnd);
    sb_map_put(&h->rpcs, key, rpc, NULL);
    return rpc;
}

void
sb_http__rpc_stop(sb_http *h)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&h->rpcs, &it, NULL, &val)) {
        sb_http_rpc *rpc = val;
        /* The daemons are stopped, so every request (and call) is gone. */
        sb_assert(rpc->calls.count == 0);
        sb_bchan_free(rpc->ch);
        sb_map_free(&rpc->calls);
        sb_free(rpc);
    }
    sb_map_free(&h->rpcs);
}

void
sb_http__rpc_vhost_gone(sb_http *h, sb_vhost *v)
{
    sb_str key = sb_str_c(sb_vhost_name(v));
    sb_http_rpc *rpc = sb_map_get(&h->rpcs, key);
    size_t it = 0;
    void *val;

    if (rpc == NULL)
        return;
    while (sb_map_next(&rpc->calls, &it, NULL, &val)) {
        sb_http_call *c = val;
        sb_http_req *r = c->r;
        call_finish(c);
        sb_http__reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "vhost_deleted",
                             "vhost '%s' was deleted while the call waited", sb_vhost_name(v));
    }
    sb_map_del(&h->rpcs, key);
    sb_bchan_free(rpc->ch);
    sb_map_free(&rpc->calls);
    sb_free(rpc);
}

/* ---- the endpoint ---- */

/* timeout_ms from the query string into *out; answers 400 and returns
 * false when it is not an integer from 1 to the maximum. */
static bool
read_timeout(sb_http_req *r, uint32_t *out)
{
    const char *s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "timeout_ms");
    unsigned long long v;
    char *end;

    *out = SB_HTTP_RPC_DEFAULT_TIMEOUT_MS;
    if (s == NULL)
        return true;
    v = strtoull(s, &end, 10);
    if (*s >= '0' && *s <= '9' && *end == '\0' && v >= 1 && v <= SB_HTTP_RPC_MAX_TIMEOUT_MS) {
        *out = (uint32_t)v;
        return true;
    }
    sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "timeout_ms must be an integer from 1 to %u", SB_HTTP_RPC_MAX_TIMEOUT_MS);
    return false;
}

/* 404 for a missing queue, 503 for one nobody consumes. */
static bool
queue_served(sb_http_req *r, sb_vhost *v, sb_str queue)
{
    uint32_t consumers = 0;

    if (!sb_vhost_queue_consumers(v, queue, &consumers)) {
        sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no queue '%.*s' in vhost '%s'",
                             SB_STR_ARGS(queue), sb_vhost_name(v));
        return false;
    }
    if (consumers == 0) {
        sb_http__reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_consumer",
                             "queue '%.*s' in vhost '%s' has no consumer to answer the call",
                             SB_STR_ARGS(queue), sb_vhost_name(v));
        return false;
    }
    return true;
}

static const char *
header(sb_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The caller's correlation id, or a new one, into c->corr_id; 400 for one
 * over 255 bytes, 409 for one a waiting call already uses. */
static bool
pick_correlation_id(sb_http_req *r, sb_http_rpc *rpc, sb_http_call *c)
{
    const char *given = header(r, CORR_HEADER);

    if (given != NULL && *given != '\0') {
        if (strlen(given) > 255) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 CORR_HEADER " must be at most 255 bytes long");
            return false;
        }
        snprintf(c->corr_id, sizeof c->corr_id, "%s", given);
    } else {
        snprintf(c->corr_id, sizeof c->corr_id, "%s-%llu", rpc->id_prefix,
                 (unsigned long long)++rpc->seq);
    }
    if (sb_map_get(&rpc->calls, sb_str_c(c->corr_id)) != NULL) {
        sb_http__reply_error(r, MHD_HTTP_CONFLICT, "conflict",
                             "a call with correlation id '%s' is already waiting", c->corr_id);
        return false;
    }
    return true;
}

/* The call's trace: the caller's traceparent header (written back in the
 * version-00 form, which for a valid 00 value is the value itself), or a
 * new trace when it sent none or a malformed one (W3C: restart the
 * trace). */
static void
pick_trace(sb_http_req *r, sb_http_call *c)
{
    const char *tp = header(r, "traceparent");

    if (tp == NULL || !sb_traceparent_parse(sb_str_c(tp), &c->trace))
        sb_trace_ctx_new(&c->trace);
    sb_traceparent_format(&c->trace, c->traceparent);
}

/* The request's properties: content type, correlation id, reply-to,
 * expiration = the deadline, and the call's traceparent header. Views
 * into r's headers, c and a. Returns false (400 sent) for a bad header. */
static bool
request_props(sb_http_req *r, sb_http_call *c, sb_amqp_props *p, sb_arena *a)
{
    const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    char *exp = sb_arena_alloc(a, 16);
    sb_amqp_entry *e = sb_arena_alloc(a, sizeof *e);

    memset(p, 0, sizeof *p);
    if (ct != NULL && strlen(ct) > 255) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "Content-Type must be at most 255 bytes long");
        return false;
    }
    if (ct != NULL && *ct != '\0') {
        p->flags |= SB_PROP_CONTENT_TYPE;
        p->content_type = sb_str_c(ct);
    }
    p->flags |= SB_PROP_CORRELATION_ID | SB_PROP_REPLY_TO | SB_PROP_EXPIRATION;
    p->correlation_id = sb_str_c(c->corr_id);
    p->reply_to = sb_str_c(sb_bchan_reply_address(c->rpc->ch));
    snprintf(exp, 16, "%u", c->timeout_ms);
    p->expiration = sb_str_c(exp);
    e->key = SB_STR_LIT("traceparent");
    e->v.kind = SB_FV_LONGSTR;
    e->v.v.s = sb_str_c(c->traceparent);
    p->flags |= SB_PROP_HEADERS;
    p->headers = (sb_amqp_table){ .n = 1, .e = e };
    return true;
}

/* The call's first event: who called what, with which deadline. */
static void
trace_start(sb_http_req *r, sb_http_call *c, sb_str queue, const sb_trace_who *who)
{
    sb_trace_event *e = sb_trace_begin(r->h->broker, &c->trace, SB_TRACE_RPC_STARTED);

    c->start_us = sb_clock_us();
    sb_trace_str(e, SB_TK_VHOST, sb_str_c(sb_vhost_name(c->rpc->v)));
    sb_trace_str(e, SB_TK_QUEUE, queue);
    sb_trace_int(e, SB_TK_TIMEOUT_MS, c->timeout_ms);
    sb_trace_str(e, SB_TK_CORRELATION_ID, sb_str_c(c->corr_id));
    sb_trace_add_who(e, who);
}

/* Publishes the call's request; on failure answers r and returns false. */
static bool
send_request(sb_http_req *r, sb_http_call *c, sb_str queue, const sb_amqp_props *p)
{
    sb_msg *m = sb_http__msg_new(p, SB_STR_LIT(""), queue, r->body, r->body_len);
    sb_publish_result res = { 0 };
    sb_error err = { 0 };
    sb_trace_who who;
    char conn[96];
    int rc;

    if (m == NULL) {
        sb_http__reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "resource_error",
                             "out of memory for a %zu-byte request", r->body_len);
        return false;
    }
    sb_http__trace_who(r, &who, conn, sizeof conn);
    sb_trace_mark(r->h->broker, m, &p->headers);
    trace_start(r, c, queue, &who);
    rc = sb_publish_as(c->rpc->v, &who, m, &p->headers, &res, &err);
    sb_msg_unref(m);
    if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else if (res.rejected)
        sb_http__reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "rejected",
                             "queue '%.*s' refused the request (x-overflow reject-publish)",
                             SB_STR_ARGS(queue));
    else if (!res.routed)
        sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no queue '%.*s' in vhost '%s'",
                             SB_STR_ARGS(queue), sb_vhost_name(c->rpc->v));
    return rc == 0 && res.routed && !res.rejected;
}

/* Registers c as waiting, before publishing: a reply can then never
 * arrive unmatched, whatever the broker does synchronously. */
static void
call_wait(sb_http_req *r, sb_http_call *c)
{
    sb_map_put(&c->rpc->calls, sb_str_c(c->corr_id), c, NULL);
    c->r = r;
    r->call = c;
    sb_timer_init(&c->timer, on_deadline, c);
    sb_timer_start(r->h->loop, &c->timer, c->timeout_ms);
}

/* A call is a publish to the default exchange: the caller needs write
 * permission on it ("amq.default"), else 403 with RabbitMQ's words. */
static bool
may_publish(sb_http_req *r, sb_vhost *v)
{
    sb_error err = { 0 };

    if (sb_access_check(sb_http__perms(r, v), SB_PERM_WRITE, "exchange", SB_STR_NULL, &err) == 0)
        return true;
    sb_http__reply_error(r, MHD_HTTP_FORBIDDEN, "access_refused", "%s", err.text);
    return false;
}

void
sb_http__api_rpc(sb_http_req *r)
{
    uint64_t max = sb_broker_limits_get(r->h->broker)->max_message_bytes;
    sb_str queue = r->params[1];
    sb_arena a = SB_ARENA_INIT;
    sb_http_call *c = NULL;
    sb_http_rpc *rpc;
    sb_amqp_props p;
    uint32_t timeout_ms;
    sb_vhost *v;

    r->h->rpc_stats.calls++;
    if ((v = sb_http__vhost_or_404(r)) == NULL || !may_publish(r, v) ||
        !read_timeout(r, &timeout_ms) || !queue_served(r, v, queue))
        goto out;
    if (r->body_len > max) {
        sb_http__reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "request of %zu bytes is larger than the message limit of %llu",
                             r->body_len, (unsigned long long)max);
        goto out;
    }
    if ((rpc = rpc_for(r->h, v)) == NULL) {
        sb_http__reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                             "no reply channel for vhost '%s'", sb_vhost_name(v));
        goto out;
    }
    c = sb_calloc(1, sizeof *c);
    c->rpc = rpc;
    c->timeout_ms = timeout_ms;
    pick_trace(r, c);
    if (!pick_correlation_id(r, rpc, c) || !request_props(r, c, &p, &a)) {
        sb_free(c);
        goto out;
    }
    call_wait(r, c);
    if (!send_request(r, c, queue, &p))
        call_finish(c);
    /* Otherwise r is left unanswered: request.c suspends it until
     * on_reply or on_deadline answers. */
out:
    sb_arena_free(&a);
}
