/* api_vhosts.c - virtual hosts in RabbitMQ management's shapes:
 * GET /api/vhosts (the vhosts the user may see), and for administrators
 * GET, PUT (create, or update description and tags) and DELETE
 * /api/vhosts/{vhost}.
 *
 * As in RabbitMQ 3.10: a vhost is created with its own default and amq.*
 * exchanges, and the administrator who created it gets every permission
 * there; deleting one closes its connections (320) and removes its
 * queues, exchanges and bindings, durable ones from disk too, and every
 * permission in it. Runs on the loop thread.
 */
#include <string.h>

#include "http_int.h"


static json_t *
tags_json(const char *tags)
{
    json_t *a = json_array();

    while (*tags) {
        size_t n = strcspn(tags, ",");
        if (n > 0)
            json_array_append_new(a, json_stringn(tags, n));
        tags += n + (tags[n] == ',');
    }
    return a;
}

static json_t *
vhost_json(const sb_vhost *v)
{
    const char *desc = sb_vhost_description(v);

    return json_pack("{s:s, s:s, s:o, s:s, s:{s:s, s:o}, s:b, s:{s:s}}", "name",
                     sb_vhost_name(v), "description", desc, "tags", tags_json(sb_vhost_tags(v)),
                     "default_queue_type", "undefined", "metadata", "description", desc, "tags",
                     tags_json(sb_vhost_tags(v)), "tracing", sb_vhost_tracing(v), "cluster_state",
                     SB_HTTP__NODE, "running");
}

static void
append_vhost(sb_vhost *v, void *ud)
{
    json_array_append_new(ud, vhost_json(v));
}

/* GET /api/vhosts, GET /api/vhosts/{vhost} */
void
sb_http__api_vhosts(sb_http_req *r)
{
    json_t *list;

    if (r->nparams == 1) {
        sb_vhost *v = sb_http__vhost_or_404(r);
        if (v != NULL)
            sb_http__reply_json(r, MHD_HTTP_OK, vhost_json(v));
        return;
    }
    list = json_array();
    sb_http__each_visible_vhost(r, append_vhost, list);
    sb_http__sort_by_name(list);
    sb_http__reply_json(r, MHD_HTTP_OK, list);
}


/* PUT /api/vhosts/{vhost} with an optional JSON object body
 * ({"description":..., "tags":..., "tracing":...}): 201 when created,
 * 204 when it existed (its description and tags replaced, as in RabbitMQ:
 * left out means empty). */
void
sb_http__api_vhost_put(sb_http_req *r)
{
    static const sb_str all[SB_PERM_COUNT] = { SB_STR_LIT(".*"), SB_STR_LIT(".*"),
                                               SB_STR_LIT(".*") };
    const json_t *desc = json_object_get(r->json, "description");
    const json_t *tags = json_object_get(r->json, "tags");
    sb_vhost *v = sb_broker_vhost(r->h->broker, r->params[0]);
    bool bad = false, tracing;
    char tagbuf[1024], why[200];
    int rc;

    if (r->json != NULL && !json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return;
    }
    tracing = sb_http__json_bool(r->json, "tracing", v != NULL && sb_vhost_tracing(v), &bad);
    if (bad || (desc != NULL && !json_is_string(desc)) ||
        (tags != NULL && !sb_http__json_tags(tags, tagbuf, sizeof tagbuf))) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "description must be a string, tags a string or a list of "
                             "strings, and tracing a boolean");
        return;
    }
    /* RabbitMQ's PUT replaces the metadata: what the body leaves out is
     * emptied. */
    rc = sb_broker_vhost_put(r->h->broker, r->params[0], desc ? json_string_value(desc) : "",
                             tags ? tagbuf : "");
    if (rc < 0) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "a vhost needs a name");
        return;
    }
    /* "tracing" turns the firehose (amq.rabbitmq.trace) on or off, as
     * RabbitMQ's management does; left out, it is unchanged. */
    sb_vhost_set_tracing(sb_broker_vhost(r->h->broker, r->params[0]), tracing);
    /* RabbitMQ gives the user who created a vhost every permission in it. */
    if (rc == 1 && sb_auth_perms_set(sb_broker_auth(r->h->broker), sb_str_c(r->user),
                                     r->params[0], all, why, sizeof why) < 0)
        sb_http__reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "%s", why);
    else
        sb_http__reply_empty(r, rc == 1 ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
}

/* DELETE /api/vhosts/{vhost}: 204, or 404 when there is none. */
void
sb_http__api_vhost_delete(sb_http_req *r)
{
    if (sb_broker_vhost_delete(r->h->broker, r->params[0]) < 0)
        sb_http__reply_not_found(r);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}
