/* api_common.c - what the management handlers share: vhost lookup, the
 * mapping of broker errors to RabbitMQ management's HTTP errors, listing
 * order, and reading declare bodies.
 *
 * RabbitMQ management runs declares and deletes as AMQP methods and maps
 * the resulting errors (rabbit_mgmt_util:direct_request): not_found is
 * 404 {"error":"not_found"}, access_refused and not_allowed are 401
 * "Access refused.", anything else is 400 {"error":"bad_request"} with
 * the AMQP explanation as the reason. Runs on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

sb_vhost *
sb_http__vhost_or_404(sb_http_req *r)
{
    sb_vhost *v = sb_broker_vhost(r->h->broker, r->params[0]);

    if (v == NULL)
        sb_http__reply_not_found(r);
    return v;
}

void
sb_http__reply_not_found(sb_http_req *r)
{
    sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "Object Not Found", "Not Found");
}

void
sb_http__reply_broker_error(sb_http_req *r, int code, const sb_error *err)
{
    switch (code) {
    case SB_NOT_FOUND:
        sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s", err->text);
        break;
    case SB_ACCESS_REFUSED:
    case SB_NOT_ALLOWED:
        sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised", "Access refused.");
        break;
    default:
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err->text);
        break;
    }
}

void
sb_http__reply_amqp_error(sb_http_req *r, int code, const sb_error *err)
{
    sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%d %s - %s", code,
                         sb_reply_name(code), err->text);
}

void
sb_http__reply_refused(sb_http_req *r, const sb_error *err)
{
    sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised", "%s - %s",
                         sb_reply_name(err->code), err->text);
}

sb_access *
sb_http__perms(sb_http_req *r, const sb_vhost *v)
{
    if (r->access.vhost != sb_vhost_name(v)) {
        sb_access_free(&r->access);
        sb_access_init(&r->access, sb_broker_auth(r->h->broker), r->user, sb_vhost_name(v));
    }
    return &r->access;
}

bool
sb_http__vhost_visible(sb_http_req *r, const sb_vhost *v)
{
    if (r->tags & (SB_TAG_ADMINISTRATOR | SB_TAG_MONITORING))
        return true;
    return sb_access_vhost_ok(sb_http__perms(r, v));
}

bool
sb_http__conn_visible(sb_http_req *r, const sb_bconn *c)
{
    return (r->tags & (SB_TAG_ADMINISTRATOR | SB_TAG_MONITORING)) || strcmp(c->user, r->user) == 0;
}

typedef struct visible_ctx {
    sb_http_req *r;
    void (*fn)(sb_vhost *v, void *ud);
    void *ud;
} visible_ctx;

static void
visible_only(sb_vhost *v, void *arg)
{
    visible_ctx *c = arg;

    if (sb_http__vhost_visible(c->r, v))
        c->fn(v, c->ud);
}

void
sb_http__each_visible_vhost(sb_http_req *r, void (*fn)(sb_vhost *v, void *ud), void *ud)
{
    visible_ctx c = { r, fn, ud };

    sb_broker_each_vhost(r->h->broker, visible_only, &c);
}

static const char *
str_field(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static int
by_vhost_then_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(str_field(x, "vhost"), str_field(y, "vhost"));

    return c != 0 ? c : strcmp(str_field(x, "name"), str_field(y, "name"));
}

void
sb_http__sort_by_name(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **items;

    if (n < 2)
        return;
    items = malloc(n * sizeof *items);
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof *items, by_vhost_then_name);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
}

bool
sb_http__json_bool(const json_t *obj, const char *key, bool def, bool *bad)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;

    if (v == NULL || json_is_null(v))
        return def;
    /* RabbitMQ's parse_bool also takes the strings (HTML forms send them). */
    if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
        return true;
    if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
        return false;
    if (!json_is_boolean(v)) {
        *bad = true;
        return def;
    }
    return json_is_true(v);
}

bool
sb_http__json_tags(const json_t *t, char *buf, size_t len)
{
    const json_t *e;
    size_t i, used = 0;

    buf[0] = '\0';
    if (json_is_string(t)) {
        snprintf(buf, len, "%s", json_string_value(t));
        return true;
    }
    if (!json_is_array(t))
        return false;
    json_array_foreach(t, i, e) {
        int n;
        if (!json_is_string(e))
            return false;
        n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", json_string_value(e));
        if (n < 0 || (size_t)n >= len - used)
            return false;
        used += (size_t)n;
    }
    return true;
}
