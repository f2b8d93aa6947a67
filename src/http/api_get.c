/* api_get.c - POST /api/queues/{vhost}/{name}/get, RabbitMQ management's
 * "get messages": {"count": N, "ackmode": M, "encoding": E, "truncate": T}.
 *
 * ackmode is one of ack_requeue_true and reject_requeue_true (the
 * messages go back to the queue, in their order, marked redelivered),
 * ack_requeue_false (they are taken: basic.get with no-ack, counted as
 * get_no_ack as in RabbitMQ) and reject_requeue_false (rejected, so
 * dead-lettered where the queue says so). encoding "auto" gives the body
 * as a string when it is UTF-8 and as base64 otherwise; "base64" always
 * base64. truncate cuts each body to that many bytes (payload_bytes keeps
 * the full size). The messages are taken through a private broker channel,
 * as the dead-letter endpoints do. Runs on the loop thread.
 */
#include <string.h>

#include "http_int.h"
#include "../common/alloc.h"

#define GET_MAX_COUNT 10000

static const char get_owner;

typedef enum ackmode { ACK_REQUEUE, REJECT_REQUEUE, ACK_DROP, REJECT_DROP } ackmode;

static const struct {
    const char *name;
    ackmode mode;
} ackmodes[] = {
    { "ack_requeue_true", ACK_REQUEUE },
    { "reject_requeue_true", REJECT_REQUEUE },
    { "ack_requeue_false", ACK_DROP },
    { "reject_requeue_false", REJECT_DROP },
};

json_t *
sb_http__base64_json(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = sb_malloc((n + 2) / 3 * 4 + 1);
    size_t w = 0;
    json_t *s;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[w++] = tab[v >> 18 & 63];
        out[w++] = tab[v >> 12 & 63];
        out[w++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[w++] = i + 2 < n ? tab[v & 63] : '=';
    }
    s = json_stringn(out, w);
    sb_free(out);
    return s;
}

typedef struct get_req {
    json_int_t count;
    ackmode mode;
    bool base64;
    json_int_t truncate;    /* -1: whole bodies */
} get_req;

/* Reads the body into g; answers 400 and returns false when it is wrong,
 * in RabbitMQ's words for a missing key. */
static bool
read_get_body(sb_http_req *r, get_req *g)
{
    const json_t *count = json_object_get(r->json, "count");
    const char *mode = json_string_value(json_object_get(r->json, "ackmode"));
    const char *enc = json_string_value(json_object_get(r->json, "encoding"));
    const json_t *trunc = json_object_get(r->json, "truncate");
    size_t i;

    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return false;
    }
    for (const char *const *k = (const char *const[]){ "count", "ackmode", "encoding", NULL }; *k;
         k++) {
        if (json_object_get(r->json, *k) == NULL) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "[{key_missing,%s}]", *k);
            return false;
        }
    }
    g->count = json_is_integer(count) ? json_integer_value(count)
               : json_is_string(count) ? strtoll(json_string_value(count), NULL, 10) : -1;
    if (g->count < 1 || g->count > GET_MAX_COUNT) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "count must be a whole number from 1 to %d", GET_MAX_COUNT);
        return false;
    }
    for (i = 0; i < sizeof ackmodes / sizeof ackmodes[0]; i++)
        if (mode != NULL && strcmp(mode, ackmodes[i].name) == 0)
            break;
    if (i == sizeof ackmodes / sizeof ackmodes[0]) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "ackmode must be ack_requeue_true, reject_requeue_true, "
                             "ack_requeue_false or reject_requeue_false");
        return false;
    }
    g->mode = ackmodes[i].mode;
    if (enc == NULL || (strcmp(enc, "auto") != 0 && strcmp(enc, "base64") != 0)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "Unsupported encoding. Please use auto or base64.");
        return false;
    }
    g->base64 = strcmp(enc, "base64") == 0;
    g->truncate = json_is_integer(trunc) && json_integer_value(trunc) >= 0
                      ? json_integer_value(trunc) : -1;
    return true;
}

static json_t *
message_json(const sb_deliver_info *d, const get_req *g)
{
    sb_msg *m = d->msg;
    sb_str ex = sb_msg_exchange(m), rk = sb_msg_rk(m), raw = sb_msg_props(m);
    size_t n = g->truncate >= 0 && (uint64_t)g->truncate < m->body_len ? (size_t)g->truncate
                                                                         : m->body_len;
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p = { 0 };
    json_t *payload = g->base64 ? NULL : json_stringn((const char *)sb_msg_body(m), n);
    json_t *o;

    if (sb_amqp_props_decode(raw.p, raw.len, &p, &a) < 0)
        memset(&p, 0, sizeof p);
    o = json_pack("{s:I,s:b,s:s#,s:s#,s:i,s:o,s:o,s:s}",
                  "payload_bytes", (json_int_t)m->body_len,
                  "redelivered", d->redelivered,
                  "exchange", ex.p, (int)ex.len,
                  "routing_key", rk.p, (int)rk.len,
                  "message_count", (int)d->message_count,
                  "properties", sb_http__props_to_json(&p),
                  "payload", payload ? payload : sb_http__base64_json(sb_msg_body(m), n),
                  "payload_encoding", payload ? "string" : "base64");
    sb_arena_free(&a);
    return o;
}

/* Takes up to g->count messages from queue into list. Returns 0 or a
 * broker error code with err set. */
static int
take(sb_bchan *ch, sb_str queue, const get_req *g, json_t *list, sb_error *err)
{
    for (json_int_t i = 0; i < g->count; i++) {
        sb_deliver_info d;
        int rc = sb_bchan_get(ch, queue, g->mode == ACK_DROP, &d, err);
        if (rc != 0)
            return rc;
        if (d.msg == NULL)
            break;
        json_array_append_new(list, message_json(&d, g));
        sb_msg_unref(d.msg);
    }
    return 0;
}

void
sb_http__api_queue_get(sb_http_req *r)
{
    json_t *list = json_array();
    sb_error err = { 0 };
    sb_trace_who who;
    char who_buf[96];
    sb_bchan *ch;
    sb_vhost *v;
    get_req g;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL || !read_get_body(r, &g)) {
        json_decref(list);
        return;
    }
    /* basic.get as the caller: read on the queue. */
    if (sb_access_check(sb_http__perms(r, v), SB_PERM_READ, "queue", r->params[1], &err) != 0) {
        json_decref(list);
        sb_http__reply_refused(r, &err);
        return;
    }
    ch = sb_bchan_new(r->h->broker, v, &get_owner);
    sb_http__trace_who(r, &who, who_buf, sizeof who_buf);
    sb_bchan_set_who(ch, who.connection, who.user, 0);
    rc = take(ch, r->params[1], &g, list, &err);
    if (rc == 0 && g.mode == REJECT_DROP)
        rc = sb_bchan_nack(ch, 0, true, false, &err);
    /* The requeueing modes leave the messages unacked: freeing the
     * channel puts them back in order, redelivered. */
    sb_bchan_free(ch);
    if (rc != 0) {
        json_decref(list);
        sb_http__reply_broker_error(r, rc, &err);
        return;
    }
    sb_http__reply_json(r, MHD_HTTP_OK, list);
}
