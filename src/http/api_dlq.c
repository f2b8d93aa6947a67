/* api_dlq.c - Switchboard's dead-letter endpoints (issue 5), the HTTP
 * twins of `switchboard dlq show` and `dlq replay`:
 *
 *   GET  /api/dlq/{vhost}/{queue}?limit=N        (default 10, at most 1000)
 *   POST /api/dlq/{vhost}/{queue}/replay?limit=N&to=Q
 *
 * Both work in-process through a private broker channel (sb_bchan), with
 * the same semantics as the AMQP tools: messages are taken with basic.get
 * without ack, so none is lost whatever happens.
 * - GET reads up to N messages and frees the channel, which requeues them
 *   all in their order; as with the CLI they come back redelivered=true.
 * - replay republishes each one through the default exchange to the
 *   queue of its newest x-death entry (or to Q), keeping properties,
 *   headers (x-death included) and body, and acks it in the dead-letter
 *   queue only if it was routed and not refused (x-overflow
 *   reject-publish): the in-process equivalent of mandatory + confirms.
 *   The republish is appended to the store's log before the ack, so a
 *   crash can duplicate a message, never lose it. One that was not routed
 *   stays unacked until the end and is then requeued in its place.
 * Runs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "../common/alloc.h"

#define DLQ_DEFAULT_LIMIT 10
#define DLQ_MAX_LIMIT 1000
#define PREVIEW_BYTES 200

/* The owner our private channels present: no connection owns them, so an
 * exclusive queue refuses them (405 RESOURCE_LOCKED), as it would refuse
 * any other connection's basic.get. */
static const char dlq_owner;

/* ?limit=N into *out (def when absent); false after answering 400. */
static bool
query_limit(sb_http_req *r, uint32_t def, uint32_t max, uint32_t *out)
{
    const char *s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    char *end = NULL;
    unsigned long v;

    *out = def;
    if (s == NULL)
        return true;
    v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || v < 1 || v > max) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "limit must be a whole number from 1 to %u", max);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* The message's properties, decoded into a; false if they do not parse
 * (cannot happen for what the broker accepted, but they are bytes). */
static bool
msg_props(const sb_msg *m, sb_amqp_props *p, sb_arena *a)
{
    sb_str raw = sb_msg_props(m);

    memset(p, 0, sizeof *p);
    return sb_amqp_props_decode(raw.p, raw.len, p, a) >= 0;
}

static const sb_amqp_value *
header(const sb_amqp_props *p, const char *key)
{
    return (p->flags & SB_PROP_HEADERS) ? sb_amqp_table_get(&p->headers, key) : NULL;
}

/* The "queue" of the newest x-death entry (RabbitMQ keeps newest first). */
static sb_str
died_in(const sb_amqp_props *p)
{
    const sb_amqp_value *xd = header(p, "x-death"), *q;

    if (xd == NULL || xd->kind != SB_FV_ARRAY || xd->v.a.n == 0 ||
        xd->v.a.v[0].kind != SB_FV_TABLE)
        return SB_STR_LIT("");
    q = sb_amqp_table_get(&xd->v.a.v[0].v.t, "queue");
    return q != NULL && q->kind == SB_FV_LONGSTR ? q->v.s : SB_STR_LIT("");
}

static json_t *
header_json(const sb_amqp_props *p, const char *key)
{
    const sb_amqp_value *v = header(p, key);

    return v ? sb_json_from_value(v) : json_null();
}

/* The body preview as a JSON string: UTF-8 as is, else base64 of it. */
static json_t *
preview_json(const sb_msg *m, const char **encoding)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = m->body_len < PREVIEW_BYTES ? (size_t)m->body_len : PREVIEW_BYTES;
    json_t *s = json_stringn((const char *)sb_msg_body(m), n);
    char out[(PREVIEW_BYTES + 2) / 3 * 4 + 1];
    size_t w = 0;

    *encoding = "string";
    if (s != NULL)
        return s;
    *encoding = "base64";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)sb_msg_body(m)[i] << 16 | (i + 1 < n ? (uint32_t)sb_msg_body(m)[i + 1] << 8 : 0) |
                     (i + 2 < n ? sb_msg_body(m)[i + 2] : 0);
        out[w++] = tab[v >> 18 & 63];
        out[w++] = tab[v >> 12 & 63];
        out[w++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[w++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return json_stringn(out, w);
}

static json_t *
dead_letter_json(const sb_deliver_info *d, const sb_amqp_props *p)
{
    const char *enc;
    json_t *preview = preview_json(d->msg, &enc);
    sb_str ex = sb_msg_exchange(d->msg), rk = sb_msg_rk(d->msg);

    return json_pack("{s:s#,s:s#,s:b,s:s#,s:I,s:o,s:s,s:o,s:o,s:o,s:o}",
                     "exchange", ex.p, (int)ex.len, "routing_key", rk.p, (int)rk.len,
                     "redelivered", d->redelivered,
                     "message_id", (p->flags & SB_PROP_MESSAGE_ID) ? (const char *)p->message_id.p
                                                                    : "",
                     (int)((p->flags & SB_PROP_MESSAGE_ID) ? p->message_id.len : 0),
                     "payload_bytes", (json_int_t)d->msg->body_len,
                     "payload_preview", preview, "payload_encoding", enc,
                     "x-death", header_json(p, "x-death"),
                     "x-first-death-reason", header_json(p, "x-first-death-reason"),
                     "x-first-death-queue", header_json(p, "x-first-death-queue"),
                     "x-first-death-exchange", header_json(p, "x-first-death-exchange"));
}

/* The vhost and the queue of the path, or NULL after answering 404, or
 * 401 when the user may not read the queue (nor, to replay, write to the
 * default exchange), as management answers a refused basic.get. */
static sb_vhost *
dlq_target(sb_http_req *r, sb_queue_view *qv, bool replay)
{
    sb_vhost *v = sb_http__vhost_or_404(r);
    sb_error err = { 0 };
    int rc;

    if (v != NULL && !sb_vhost_queue_view(v, r->params[1], qv)) {
        sb_http__reply_not_found(r);
        return NULL;
    }
    if (v == NULL)
        return NULL;
    rc = sb_access_check(sb_http__perms(r, v), SB_PERM_READ, "queue", r->params[1], &err);
    if (rc == 0 && replay)
        rc = sb_access_check(sb_http__perms(r, v), SB_PERM_WRITE, "exchange", SB_STR_NULL, &err);
    if (rc != 0) {
        sb_http__reply_refused(r, &err);
        return NULL;
    }
    return v;
}

/* GET /api/dlq/{vhost}/{queue}?limit=N */
void
sb_http__api_dlq(sb_http_req *r)
{
    sb_arena arena = SB_ARENA_INIT;
    json_t *list = json_array();
    sb_queue_view qv;
    sb_bchan *ch = NULL;
    sb_error err = { 0 };
    sb_trace_who who;
    char who_buf[96];
    uint32_t limit;
    sb_vhost *v;

    if ((v = dlq_target(r, &qv, false)) == NULL ||
        !query_limit(r, DLQ_DEFAULT_LIMIT, DLQ_MAX_LIMIT, &limit))
        goto out;
    ch = sb_bchan_new(r->h->broker, v, &dlq_owner);
    sb_http__trace_who(r, &who, who_buf, sizeof who_buf);
    sb_bchan_set_who(ch, who.connection, who.user, 0);
    for (uint32_t i = 0; i < limit; i++) {
        sb_deliver_info d;
        sb_amqp_props p;
        int rc = sb_bchan_get(ch, r->params[1], false, &d, &err);
        if (rc != 0) {
            sb_http__reply_broker_error(r, rc, &err);
            goto out;
        }
        if (d.msg == NULL)
            break;
        if (msg_props(d.msg, &p, &arena))
            json_array_append_new(list, dead_letter_json(&d, &p));
        sb_msg_unref(d.msg);
        sb_arena_reset(&arena);
    }
    sb_http__reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:s#,s:s,s:O}", "name", r->params[1].p,
                                  (int)r->params[1].len, "vhost", sb_vhost_name(v),
                                  "messages", list));
out:
    sb_bchan_free(ch);  /* requeues every message we looked at, in order */
    json_decref(list);
    sb_arena_free(&arena);
}

/* ---- replay ---- */

typedef struct replay_ctx {
    sb_broker *broker;
    sb_trace_who who;       /* the HTTP client, as traces name it */
    char conn[96];
    sb_vhost *v;
    sb_str queue;           /* the dead-letter queue */
    const char *to;         /* ?to=Q, or NULL */
    uint32_t replayed;
    uint64_t last_held;     /* highest tag kept unacked (not replayed), 0 = none */
    json_t *left;           /* [{"index":n,"reason":".."}] */
} replay_ctx;

static void
leave(replay_ctx *c, const sb_deliver_info *d, uint32_t n, const char *fmt, sb_str s)
{
    char why[400];

    snprintf(why, sizeof why, fmt, SB_STR_ARGS(s));
    c->last_held = d->delivery_tag;
    json_array_append_new(c->left, json_pack("{s:I,s:s}", "index", (json_int_t)n,
                                             "reason", why));
}

/* Republishes one message; acks it or holds it. Returns 0 or a reply code. */
static int
replay_one(replay_ctx *c, sb_bchan *ch, const sb_deliver_info *d, uint32_t n, sb_arena *a,
           sb_error *err)
{
    sb_amqp_props p;
    sb_publish_result res = { 0 };
    sb_msg *m;
    sb_str target;
    int rc;

    if (!msg_props(d->msg, &p, a)) {
        leave(c, d, n, "its properties do not parse%.*s", SB_STR_LIT(""));
        return 0;
    }
    target = c->to ? sb_str_c(c->to) : died_in(&p);
    if (target.len == 0) {
        leave(c, d, n, "no x-death header names its queue (pass ?to=Q)%.*s", SB_STR_LIT(""));
        return 0;
    }
    if (sb_str_eq(target, c->queue)) {
        leave(c, d, n, "its target is '%.*s' itself", target);
        return 0;
    }
    m = sb_http__msg_new(&p, SB_STR_LIT(""), target, sb_msg_body(d->msg), (size_t)d->msg->body_len);
    if (m == NULL)
        return sb_error_set(err, SB_RESOURCE_ERROR, "out of memory for a %llu-byte message",
                            (unsigned long long)d->msg->body_len);
    sb_trace_mark(c->broker, m, (p.flags & SB_PROP_HEADERS) ? &p.headers : NULL);
    rc = sb_publish_as(c->v, &c->who, m, (p.flags & SB_PROP_HEADERS) ? &p.headers : NULL, &res,
                       err);
    sb_msg_unref(m);
    if (rc != 0)
        return rc;
    if (!res.routed)
        leave(c, d, n, "not routed: no queue '%.*s' (pass ?to=Q)", target);
    else if (res.rejected)
        leave(c, d, n, "queue '%.*s' refused it (x-overflow reject-publish)", target);
    else if ((rc = sb_bchan_ack(ch, d->delivery_tag, false, err)) == 0)
        c->replayed++;
    return rc;
}

static int
replay_loop(replay_ctx *c, sb_bchan *ch, uint32_t limit, sb_error *err)
{
    sb_arena arena = SB_ARENA_INIT;
    int rc = 0;

    for (uint32_t n = 1; n <= limit && rc == 0; n++) {
        sb_deliver_info d;
        if ((rc = sb_bchan_get(ch, c->queue, false, &d, err)) != 0 || d.msg == NULL)
            break;
        rc = replay_one(c, ch, &d, n, &arena, err);
        sb_msg_unref(d.msg);
        sb_arena_reset(&arena);
    }
    sb_arena_free(&arena);
    /* The ones left go back in their places, before anything else runs. */
    if (c->last_held != 0) {
        sb_error e2 = { 0 };
        (void)sb_bchan_nack(ch, c->last_held, true, true, &e2);
    }
    return rc;
}

/* POST /api/dlq/{vhost}/{queue}/replay?limit=N&to=Q: 200
 * {"replayed":N,"left":M,"left_messages":[..]}; limit defaults to the
 * messages ready when the call starts. */
void
sb_http__api_dlq_replay(sb_http_req *r)
{
    replay_ctx c = { .broker = r->h->broker, .queue = r->params[1], .left = json_array() };
    sb_error err = { 0 };
    sb_queue_view qv;
    sb_bchan *ch;
    uint32_t limit;
    int rc;

    c.to = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "to");
    sb_http__trace_who(r, &c.who, c.conn, sizeof c.conn);
    if ((c.v = dlq_target(r, &qv, true)) == NULL ||
        !query_limit(r, qv.messages_ready ? qv.messages_ready : 1, UINT32_MAX, &limit))
        goto out;
    if (c.to != NULL && c.to[0] == '\0') {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "to must name a queue");
        goto out;
    }
    ch = sb_bchan_new(r->h->broker, c.v, &dlq_owner);
    sb_bchan_set_who(ch, c.who.connection, c.who.user, 0);
    rc = replay_loop(&c, ch, limit, &err);
    sb_bchan_free(ch);
    if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_json(r, MHD_HTTP_OK,
                            json_pack("{s:I,s:I,s:O}", "replayed", (json_int_t)c.replayed,
                                      "left", (json_int_t)json_array_size(c.left),
                                      "left_messages", c.left));
out:
    json_decref(c.left);
}
