/* api_exchanges.c - /api/exchanges and /api/bindings in RabbitMQ
 * management's shapes: list, show, declare (PUT) and delete exchanges;
 * list bindings.
 *
 * The default exchange is listed with the name "" and addressed in paths
 * as "amq.default", as RabbitMQ does. A declare takes {"type":..,
 * "durable":..,"auto_delete":..,"internal":..,"arguments":{..}}, each
 * optional ("direct", false, false, false, {} as exchange.declare's
 * defaults). Bindings include each queue's implicit binding from the
 * default exchange, as RabbitMQ lists them. Runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"

static json_t *
str_json(sb_str s)
{
    json_t *j = json_stringn((const char *)s.p, s.len);

    return j ? j : json_string("");
}

/* "amq.default" in a path is the default exchange, whose name is "". */
static sb_str
exchange_param(const sb_http_req *r)
{
    return sb_str_eq_c(r->params[1], "amq.default") ? SB_STR_LIT("") : r->params[1];
}

static json_t *
exchange_json(const sb_exchange_view *x)
{
    return json_pack("{s:o,s:s,s:s,s:b,s:b,s:b,s:o}",
                     "name", str_json(x->name),
                     "vhost", x->vhost,
                     "type", x->type,
                     "durable", x->durable,
                     "auto_delete", x->auto_delete,
                     "internal", x->internal,
                     "arguments", sb_json_from_table(x->args));
}

static void
append_exchange(const sb_exchange_view *x, void *ud)
{
    json_array_append_new(ud, exchange_json(x));
}

static void
append_vhost_exchanges(sb_vhost *v, void *ud)
{
    sb_vhost_each_exchange(v, append_exchange, ud);
}

/* GET /api/exchanges, /api/exchanges/{vhost}, /api/exchanges/{vhost}/{name} */
void
sb_http__api_exchanges(sb_http_req *r)
{
    json_t *list = json_array();
    sb_exchange_view xv;
    sb_vhost *v;

    if (r->nparams == 0) {
        sb_http__each_visible_vhost(r, append_vhost_exchanges, list);
    } else {
        if ((v = sb_http__vhost_or_404(r)) == NULL)
            goto out;
        if (r->nparams == 2) {
            if (sb_vhost_exchange_view(v, exchange_param(r), &xv))
                sb_http__reply_json(r, MHD_HTTP_OK, exchange_json(&xv));
            else
                sb_http__reply_not_found(r);
            goto out;
        }
        sb_vhost_each_exchange(v, append_exchange, list);
    }
    sb_http__sort_by_name(list);
    sb_http__reply_json(r, MHD_HTTP_OK, json_incref(list));
out:
    json_decref(list);
}

static bool
read_exchange_body(sb_http_req *r, sb_exchange_decl *d, sb_amqp_table *args, sb_arena *a)
{
    const json_t *type = json_object_get(r->json, "type");
    char why[160];
    bool bad = false;

    if (r->json != NULL && !json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return false;
    }
    d->type = json_is_string(type) ? sb_str_make(json_string_value(type), json_string_length(type))
                                   : SB_STR_LIT("direct");
    d->durable = sb_http__json_bool(r->json, "durable", false, &bad);
    d->auto_delete = sb_http__json_bool(r->json, "auto_delete", false, &bad);
    d->internal = sb_http__json_bool(r->json, "internal", false, &bad);
    if (bad || (type != NULL && !json_is_string(type))) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "type must be a string; durable, auto_delete and internal booleans");
        return false;
    }
    if (sb_json_to_table(json_object_get(r->json, "arguments"), args, a, why,
                               sizeof why) < 0) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
        return false;
    }
    d->args = args;
    return true;
}

/* PUT /api/exchanges/{vhost}/{name}: 201 created, 204 when an equivalent
 * exchange exists, 400 with RabbitMQ's text when it differs. */
void
sb_http__api_exchange_put(sb_http_req *r)
{
    sb_exchange_decl d = { .name = exchange_param(r) };
    sb_arena arena = SB_ARENA_INIT;
    sb_exchange_view xv;
    sb_amqp_table args;
    sb_error err = { 0 };
    sb_vhost *v;
    bool existed;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL || !read_exchange_body(r, &d, &args, &arena))
        goto out;
    if (d.name.len > 255) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "exchange name must be at most 255 bytes long");
        goto out;
    }
    existed = sb_vhost_exchange_view(v, d.name, &xv);
    d.access = sb_http__perms(r, v);
    if ((rc = sb_exchange_declare(v, &d, &err)) != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_empty(r, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    sb_arena_free(&arena);
}

/* DELETE /api/exchanges/{vhost}/{name}[?if-unused=true] */
void
sb_http__api_exchange_delete(sb_http_req *r)
{
    const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "if-unused");
    sb_exchange_view xv;
    sb_error err = { 0 };
    sb_vhost *v;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL)
        return;
    if (!sb_vhost_exchange_view(v, exchange_param(r), &xv)) {
        sb_http__reply_not_found(r);
        return;
    }
    /* As exchange.delete: the default and amq.* exchanges are refused
     * before permissions are looked at. */
    rc = exchange_param(r).len == 0 || sb_str_has_prefix(exchange_param(r), "amq.")
             ? 0
             : sb_access_check(sb_http__perms(r, v), SB_PERM_CONFIGURE, "exchange",
                               exchange_param(r), &err);
    if (rc == 0)
        rc = sb_exchange_delete(v, exchange_param(r), q != NULL && strcmp(q, "true") == 0,
                                &err);
    if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* ---- bindings ---- */

/* RabbitMQ's properties_key: the routing key URL-quoted ("~" when empty),
 * plus "~" and a base64url hash of the arguments when there are any. The
 * hash is ours (RabbitMQ's is Erlang's phash2), so keys match RabbitMQ's
 * only for bindings without arguments. */
static void
properties_key(const sb_binding_view *b, char *out, size_t len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t w = 0;

    for (size_t i = 0; i < b->routing_key.len && w + 4 < len; i++) {
        uint8_t c = b->routing_key.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.')
            out[w++] = (char)c;
        else if (c == ' ')
            out[w++] = '+';
        else
            w += (size_t)snprintf(out + w, len - w, "%%%02X", c);
    }
    out[w] = '\0';
    if (b->args->n == 0) {
        if (w == 0)
            snprintf(out, len, "~");
        return;
    }
    sb_buf enc = SB_BUF_INIT;
    sb_amqp_table_encode(&enc, b->args);
    /* 4 bytes of hash in 6 base64url characters (36 bits, the last 4 zero). */
    uint64_t h = (uint64_t)sb_hash(enc.data, enc.len) << 4;
    sb_buf_free(&enc);
    if (w + 8 < len) {
        out[w++] = '~';
        for (int i = 0; i < 6; i++)
            out[w++] = b64[(h >> (30 - 6 * i)) & 63];
        out[w] = '\0';
    }
}

static json_t *
binding_json(const sb_binding_view *b)
{
    char pk[800];

    properties_key(b, pk, sizeof pk);
    return json_pack("{s:o,s:s,s:o,s:s,s:o,s:o,s:s}",
                     "source", str_json(b->source),
                     "vhost", b->vhost,
                     "destination", str_json(b->destination),
                     "destination_type", b->is_to_exchange ? "exchange" : "queue",
                     "routing_key", str_json(b->routing_key),
                     "arguments", sb_json_from_table(b->args),
                     "properties_key", pk);
}

static void
append_binding(const sb_binding_view *b, void *ud)
{
    json_array_append_new(ud, binding_json(b));
}

static void
append_vhost_bindings(sb_vhost *v, void *ud)
{
    sb_vhost_each_binding(v, append_binding, ud);
}

/* GET /api/bindings, /api/bindings/{vhost} */
void
sb_http__api_bindings(sb_http_req *r)
{
    json_t *list = json_array();
    sb_vhost *v;

    if (r->nparams == 0) {
        sb_http__each_visible_vhost(r, append_vhost_bindings, list);
    } else {
        if ((v = sb_http__vhost_or_404(r)) == NULL)
            goto out;
        sb_vhost_each_binding(v, append_binding, list);
    }
    sb_http__reply_json(r, MHD_HTTP_OK, json_incref(list));
out:
    json_decref(list);
}

/* The bindings of one object: a queue's (as destination), or an
 * exchange's as source or as destination. */
typedef enum bind_filter { BIND_QUEUE, BIND_SOURCE, BIND_DESTINATION } bind_filter;

typedef struct filter_ctx {
    json_t *list;
    bind_filter filter;
    sb_str name;
} filter_ctx;

static void
append_matching(const sb_binding_view *b, void *ud)
{
    filter_ctx *fc = ud;
    bool match;

    switch (fc->filter) {
    case BIND_QUEUE:
        match = !b->is_to_exchange && sb_str_eq(b->destination, fc->name);
        break;
    case BIND_SOURCE:
        match = sb_str_eq(b->source, fc->name);
        break;
    default:
        match = b->is_to_exchange && sb_str_eq(b->destination, fc->name);
        break;
    }
    if (match)
        json_array_append_new(fc->list, binding_json(b));
}

static void
filtered_bindings(sb_http_req *r, bind_filter filter)
{
    filter_ctx fc = { .filter = filter };
    sb_queue_view qv;
    sb_exchange_view xv;
    sb_vhost *v;

    if ((v = sb_http__vhost_or_404(r)) == NULL)
        return;
    fc.name = filter == BIND_QUEUE ? r->params[1] : exchange_param(r);
    if (filter == BIND_QUEUE ? !sb_vhost_queue_view(v, fc.name, &qv)
                             : !sb_vhost_exchange_view(v, fc.name, &xv)) {
        sb_http__reply_not_found(r);
        return;
    }
    fc.list = json_array();
    sb_vhost_each_binding(v, append_matching, &fc);
    sb_http__reply_json(r, MHD_HTTP_OK, fc.list);
}

/* GET /api/queues/{vhost}/{name}/bindings */
void
sb_http__api_queue_bindings(sb_http_req *r)
{
    filtered_bindings(r, BIND_QUEUE);
}

/* GET /api/exchanges/{vhost}/{name}/bindings/source */
void
sb_http__api_exchange_bindings_source(sb_http_req *r)
{
    filtered_bindings(r, BIND_SOURCE);
}

/* GET /api/exchanges/{vhost}/{name}/bindings/destination */
void
sb_http__api_exchange_bindings_destination(sb_http_req *r)
{
    filtered_bindings(r, BIND_DESTINATION);
}
