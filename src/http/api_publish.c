/* api_publish.c - POST /api/exchanges/{vhost}/{name}/publish, RabbitMQ
 * management's REST publish, and the message building it shares with the
 * RPC bridge (api_rpc.c).
 *
 * The body is {"properties":{..},"routing_key":"..","payload":"..",
 * "payload_encoding":"string"|"base64"}; all four keys are required, as
 * in RabbitMQ. The answer is {"routed":true|false}: whether the message
 * reached at least one queue (RabbitMQ publishes it mandatory and waits
 * for the return or the confirm; routing here is synchronous, so the
 * answer is known at once). Property names are the AMQP ones RabbitMQ
 * uses: content_type, content_encoding, headers, delivery_mode, priority,
 * correlation_id, reply_to, expiration, message_id, timestamp, type,
 * user_id, app_id, cluster_id. A traceparent request header joins the
 * message to that trace (added to its headers unless they have one); none
 * is invented here, since this endpoint is RabbitMQ's and delivers what
 * was sent. Runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "../common/alloc.h"
#include "../common/base64.h"

/* The short-string properties, with their flag bit and place in props. */
static const struct {
    const char *name;
    uint16_t flag;
    size_t off;
} str_props[] = {
    { "content_type", SB_PROP_CONTENT_TYPE, offsetof(sb_amqp_props, content_type) },
    { "content_encoding", SB_PROP_CONTENT_ENCODING, offsetof(sb_amqp_props, content_encoding) },
    { "correlation_id", SB_PROP_CORRELATION_ID, offsetof(sb_amqp_props, correlation_id) },
    { "reply_to", SB_PROP_REPLY_TO, offsetof(sb_amqp_props, reply_to) },
    { "expiration", SB_PROP_EXPIRATION, offsetof(sb_amqp_props, expiration) },
    { "message_id", SB_PROP_MESSAGE_ID, offsetof(sb_amqp_props, message_id) },
    { "type", SB_PROP_TYPE, offsetof(sb_amqp_props, type) },
    { "user_id", SB_PROP_USER_ID, offsetof(sb_amqp_props, user_id) },
    { "app_id", SB_PROP_APP_ID, offsetof(sb_amqp_props, app_id) },
    { "cluster_id", SB_PROP_CLUSTER_ID, offsetof(sb_amqp_props, cluster_id) },
};

/* A string property; an integer is accepted too (expiration is often
 * sent as a number) and printed into the arena. */
static int
str_prop(const json_t *v, const char *name, sb_str *out, sb_arena *a, char *why, size_t len)
{
    if (json_is_integer(v)) {
        char *s = sb_arena_alloc(a, 24);
        snprintf(s, 24, "%lld", (long long)json_integer_value(v));
        *out = sb_str_c(s);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > 255) {
        snprintf(why, len, "property %s must be a string of at most 255 bytes", name);
        return -1;
    }
    *out = sb_str_make(json_string_value(v), json_string_length(v));
    return 0;
}

static int
int_prop(const json_t *v, const char *name, json_int_t max, json_int_t *out, char *why,
         size_t len)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        snprintf(why, len, "property %s must be an integer from 0 to %lld", name,
                 (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int
num_props(const json_t *props, sb_amqp_props *out, sb_arena *a, char *why, size_t len)
{
    const json_t *v;
    json_int_t n;

    if ((v = json_object_get(props, "delivery_mode")) != NULL && !json_is_null(v)) {
        if (int_prop(v, "delivery_mode", 2, &n, why, len) < 0 || n == 0) {
            snprintf(why, len, "property delivery_mode must be 1 or 2");
            return -1;
        }
        out->flags |= SB_PROP_DELIVERY_MODE;
        out->delivery_mode = (uint8_t)n;
    }
    if ((v = json_object_get(props, "priority")) != NULL && !json_is_null(v)) {
        if (int_prop(v, "priority", 255, &n, why, len) < 0)
            return -1;
        out->flags |= SB_PROP_PRIORITY;
        out->priority = (uint8_t)n;
    }
    if ((v = json_object_get(props, "timestamp")) != NULL && !json_is_null(v)) {
        if (int_prop(v, "timestamp", INT64_MAX, &n, why, len) < 0)
            return -1;
        out->flags |= SB_PROP_TIMESTAMP;
        out->timestamp = (uint64_t)n;
    }
    if ((v = json_object_get(props, "headers")) != NULL && !json_is_null(v)) {
        if (sb_json_to_table(v, &out->headers, a, why, len) < 0)
            return -1;
        out->flags |= SB_PROP_HEADERS;
    }
    return 0;
}

json_t *
sb_http__props_to_json(const sb_amqp_props *p)
{
    json_t *o = json_object();

    for (size_t i = 0; i < sizeof str_props / sizeof str_props[0]; i++) {
        const sb_str *v = (const sb_str *)(const void *)((const char *)p + str_props[i].off);
        if (p->flags & str_props[i].flag)
            json_object_set_new(o, str_props[i].name, json_stringn((const char *)v->p, v->len));
    }
    if (p->flags & SB_PROP_DELIVERY_MODE)
        json_object_set_new(o, "delivery_mode", json_integer(p->delivery_mode));
    if (p->flags & SB_PROP_PRIORITY)
        json_object_set_new(o, "priority", json_integer(p->priority));
    if (p->flags & SB_PROP_TIMESTAMP)
        json_object_set_new(o, "timestamp", json_integer((json_int_t)p->timestamp));
    if (p->flags & SB_PROP_HEADERS)
        json_object_set_new(o, "headers", sb_json_from_table(&p->headers));
    return o;
}

int
sb_http__props_from_json(const json_t *props, sb_amqp_props *out, sb_arena *a, char *why,
                         size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (props == NULL || json_is_null(props))
        return 0;
    if (!json_is_object(props)) {
        snprintf(why, why_len, "properties must be a JSON object");
        return -1;
    }
    for (size_t i = 0; i < sizeof str_props / sizeof str_props[0]; i++) {
        const json_t *v = json_object_get(props, str_props[i].name);
        if (v == NULL || json_is_null(v))
            continue;
        if (str_prop(v, str_props[i].name, (sb_str *)((char *)out + str_props[i].off), a, why,
                     why_len) < 0)
            return -1;
        out->flags |= str_props[i].flag;
    }
    return num_props(props, out, a, why, why_len);
}

/* The expiration property as milliseconds, -1 when absent or not a
 * non-negative integer (callers validate it first). */
static int64_t
expiration_ms(const sb_amqp_props *p)
{
    int64_t v = 0;

    if (!(p->flags & SB_PROP_EXPIRATION) || p->expiration.len == 0 || p->expiration.len > 18)
        return -1;
    for (size_t i = 0; i < p->expiration.len; i++) {
        if (p->expiration.p[i] < '0' || p->expiration.p[i] > '9')
            return -1;
        v = v * 10 + (p->expiration.p[i] - '0');
    }
    return v;
}

sb_msg *
sb_http__msg_new(const sb_amqp_props *p, sb_str exchange, sb_str rk, const void *body,
                 size_t body_len)
{
    sb_buf raw = SB_BUF_INIT;
    sb_msg *m;

    sb_amqp_props_encode(&raw, p);
    m = sb_msg_new(sb_str_make(raw.data, raw.len), exchange, rk, body_len,
                   (p->flags & SB_PROP_DELIVERY_MODE) ? p->delivery_mode : 0,
                   (p->flags & SB_PROP_PRIORITY) ? p->priority : 0);
    sb_buf_free(&raw);
    if (m == NULL)
        return NULL;
    if (body_len > 0)
        memcpy(sb_msg_body(m), body, body_len);
    sb_msg_set_expiration(m, expiration_ms(p));
    return m;
}

/* ---- the endpoint ---- */

typedef struct publish_req {
    sb_str rk;
    sb_str payload;
    bool is_base64;
    const json_t *props;
} publish_req;

/* The four keys RabbitMQ requires, checked as with_decode does. */
static bool
read_publish_body(sb_http_req *r, publish_req *p)
{
    static const char *const keys[] = { "routing_key", "properties", "payload",
                                        "payload_encoding" };
    const char *enc;

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (json_object_get(r->json, keys[i]) == NULL) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "[{key_missing,%s}]",
                                 keys[i]);
            return false;
        }
    }
    if (!json_is_string(json_object_get(r->json, "routing_key")) ||
        !json_is_string(json_object_get(r->json, "payload"))) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "payload_not_string");
        return false;
    }
    p->rk = sb_str_make(json_string_value(json_object_get(r->json, "routing_key")),
                        json_string_length(json_object_get(r->json, "routing_key")));
    p->payload = sb_str_make(json_string_value(json_object_get(r->json, "payload")),
                             json_string_length(json_object_get(r->json, "payload")));
    p->props = json_object_get(r->json, "properties");
    enc = json_string_value(json_object_get(r->json, "payload_encoding"));
    p->is_base64 = enc != NULL && strcmp(enc, "base64") == 0;
    if (enc == NULL || (!p->is_base64 && strcmp(enc, "string") != 0)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "{unsupported_encoding,%s}", enc ? enc : "?");
        return false;
    }
    if (p->rk.len > 255) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "routing_key must be at most 255 bytes long");
        return false;
    }
    return true;
}

/* The checks RabbitMQ's channel makes before routing, in its words
 * ("406 PRECONDITION_FAILED - ..." as bad_request_exception prints). */
static bool
props_allowed(sb_http_req *r, const sb_amqp_props *p)
{
    if ((p->flags & SB_PROP_USER_ID) && !sb_str_eq_c(p->user_id, r->user)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "406 PRECONDITION_FAILED - user_id property set to '%.*s' but "
                             "authenticated user was '%s'", SB_STR_ARGS(p->user_id), r->user);
        return false;
    }
    if ((p->flags & SB_PROP_EXPIRATION) && expiration_ms(p) < 0) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "406 PRECONDITION_FAILED - invalid expiration '%.*s': no_integer",
                             SB_STR_ARGS(p->expiration));
        return false;
    }
    return true;
}

/* A valid traceparent request header goes into the message's headers,
 * unless they carry one already (entries from a). */
static void
add_traceparent(sb_http_req *r, sb_amqp_props *p, sb_arena *a)
{
    const char *tp = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "traceparent");
    sb_trace_ctx c;
    sb_amqp_entry *e;
    uint32_t n = (p->flags & SB_PROP_HEADERS) ? p->headers.n : 0;

    if (tp == NULL || !sb_traceparent_parse(sb_str_c(tp), &c) ||
        (n > 0 && sb_amqp_table_get(&p->headers, "traceparent") != NULL))
        return;
    e = sb_arena_alloc(a, (n + 1) * sizeof *e);
    if (n > 0)
        memcpy(e, p->headers.e, n * sizeof *e);
    e[n].key = SB_STR_LIT("traceparent");
    e[n].v.kind = SB_FV_LONGSTR;
    e[n].v.v.s = sb_str_c(tp);
    p->headers = (sb_amqp_table){ .n = n + 1, .e = e };
    p->flags |= SB_PROP_HEADERS;
}

static void
publish(sb_http_req *r, sb_vhost *v, sb_str exchange, const publish_req *p,
        const sb_amqp_props *props, const uint8_t *body, size_t body_len)
{
    sb_msg *m = sb_http__msg_new(props, exchange, p->rk, body, body_len);
    const sb_amqp_table *headers = (props->flags & SB_PROP_HEADERS) ? &props->headers : NULL;
    sb_publish_result res;
    sb_error err = { 0 };
    sb_trace_who who;
    char conn[96];
    int rc;

    if (m == NULL) {
        sb_http__reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "resource_error",
                             "out of memory for a %zu-byte message", body_len);
        return;
    }
    /* RabbitMQ management publishes as the caller, through a channel: a
     * refusal is its AMQP error in a 400. */
    rc = sb_access_check(sb_http__perms(r, v), SB_PERM_WRITE, "exchange", exchange, &err);
    if (rc != 0) {
        sb_msg_unref(m);
        sb_http__reply_amqp_error(r, rc, &err);
        return;
    }
    sb_http__trace_who(r, &who, conn, sizeof conn);
    sb_trace_mark(r->h->broker, m, headers);
    rc = sb_publish_as(v, &who, m, headers, &res, &err);
    sb_msg_unref(m);
    if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else if (res.rejected)
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "rejected Unable to publish message. Check queue limits.");
    else if (res.durable_pos > 0)
        sb_http__wait_durable(r, res.durable_pos, res.routed);  /* answered once on disk */
    else
        sb_http__reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "routed", res.routed));
}

void
sb_http__api_publish(sb_http_req *r)
{
    sb_str exchange = sb_str_eq_c(r->params[1], "amq.default") ? SB_STR_LIT("") : r->params[1];
    uint64_t max = sb_broker_limits_get(r->h->broker)->max_message_bytes;
    sb_arena arena = SB_ARENA_INIT;
    sb_exchange_view xv;
    sb_amqp_props props;
    publish_req p;
    uint8_t *body = NULL;
    ssize_t body_len;
    char why[160];
    sb_vhost *v;

    if ((v = sb_http__vhost_or_404(r)) == NULL)
        return;
    if (!sb_vhost_exchange_view(v, exchange, &xv)) {
        /* RabbitMQ 3.10's answer: the channel error, as a 400. */
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "404 NOT_FOUND - no exchange '%.*s' in vhost '%s'",
                             SB_STR_ARGS(exchange), sb_vhost_name(v));
        return;
    }
    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return;
    }
    if (!read_publish_body(r, &p))
        return;
    if (sb_http__props_from_json(p.props, &props, &arena, why, sizeof why) < 0) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
        goto out;
    }
    if (!props_allowed(r, &props))
        goto out;
    add_traceparent(r, &props, &arena);
    body = sb_malloc(p.payload.len + 1);
    body_len = p.is_base64 ? sb_base64_decode(p.payload, SB_BASE64_LENIENT, body, p.payload.len)
                           : (ssize_t)p.payload.len;
    if (!p.is_base64)
        memcpy(body, p.payload.p, p.payload.len);
    if (body_len < 0)
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_base64");
    else if ((uint64_t)body_len > max)
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "message size %zd is larger than configured max size %llu",
                             body_len, (unsigned long long)max);
    else
        publish(r, v, exchange, &p, &props, body, (size_t)body_len);
out:
    sb_free(body);
    sb_arena_free(&arena);
}
