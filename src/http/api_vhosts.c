/* api_vhosts.c - GET /api/vhosts and GET /api/vhosts/{vhost}.
 *
 * The broker has one vhost, "/", and no way yet to list vhosts, so the
 * list is the known names that sb_broker_vhost finds. Runs on the loop
 * thread.
 */
#include "http_int.h"

static const char *const known_vhosts[] = { "/" };

static json_t *
vhost_json(const sb_vhost *v)
{
    return json_pack("{s:s,s:b}", "name", sb_vhost_name(v), "tracing", sb_vhost_tracing(v));
}

void
sb_http__api_vhosts(sb_http_req *r)
{
    sb_broker *b = r->h->broker;
    json_t *list;

    if (r->nparams == 1) {
        sb_vhost *v = sb_broker_vhost(b, r->params[0]);
        if (v == NULL) {
            sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "Object Not Found", "Not Found");
            return;
        }
        sb_http__reply_json(r, MHD_HTTP_OK, vhost_json(v));
        return;
    }
    list = json_array();
    for (size_t i = 0; i < sizeof known_vhosts / sizeof known_vhosts[0]; i++) {
        sb_vhost *v = sb_broker_vhost(b, sb_str_c(known_vhosts[i]));
        if (v != NULL)
            json_array_append_new(list, vhost_json(v));
    }
    sb_http__reply_json(r, MHD_HTTP_OK, list);
}

/* PUT /api/vhosts/{vhost} with an optional JSON object body
 * ({"description":..., "tags":..., "tracing":...}). RabbitMQ answers 201
 * when it creates the vhost and 204 when it exists; the broker cannot
 * create vhosts yet, so only the existing ones succeed (204). "tracing"
 * turns the firehose (amq.rabbitmq.trace) on or off, as RabbitMQ's
 * management does; left out, it is unchanged. */
void
sb_http__api_vhost_put(sb_http_req *r)
{
    sb_vhost *v = sb_broker_vhost(r->h->broker, r->params[0]);
    bool bad = false, tracing = false;

    if (r->json != NULL && !json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "the body must be a JSON object");
        return;
    }
    if (v != NULL)
        tracing = sb_http__json_bool(r->json, "tracing", sb_vhost_tracing(v), &bad);
    if (bad) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "tracing must be a boolean");
        return;
    }
    if (v == NULL) {
        sb_http__reply_error(r, MHD_HTTP_NOT_IMPLEMENTED, "not_implemented",
                             "creating vhost '%.*s' is not supported yet; only '/' exists",
                             SB_STR_ARGS(r->params[0]));
        return;
    }
    sb_vhost_set_tracing(v, tracing);
    sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}
