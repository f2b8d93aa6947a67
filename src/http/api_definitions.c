/* api_definitions.c - GET and POST /api/definitions: the topology as a
 * RabbitMQ definitions document (issue 3), so a team can move between
 * Switchboard and a RabbitMQ cluster in one step.
 *
 * GET answers the broker's durable definitions (sb_broker_definitions_json:
 * durable exchanges, durable non-exclusive queues, bindings between
 * durable ends, as RabbitMQ exports them) in RabbitMQ's top-level shape:
 * product_name, product_version, users, vhosts, permissions,
 * topic_permissions, parameters, global_parameters, policies, queues,
 * exchanges, bindings. Switchboard has no users or policies to export, so
 * those arrays are empty; the queue log ids the broker keeps in its own
 * copy are removed.
 *
 * POST imports such a document, RabbitMQ's own exports included: every
 * vhost named must already exist (Switchboard cannot create vhosts yet;
 * checked before anything is applied), then exchanges, queues and
 * bindings are declared in that order through the broker's public API.
 * As in RabbitMQ (rabbit_definitions), an exchange or queue that already
 * exists is left as it is, exchanges named amq.* are skipped, and the
 * first error stops the import with 400 and its reason (what came before
 * stays). Users, permissions, policies and parameters are ignored with a
 * warning logged per kind. Runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "../common/log.h"

#define DEFS_ID_KEY "switchboard_id"  /* durable.c's log ids: internal */

/* Kinds of a RabbitMQ export that Switchboard has no notion of yet. */
static const char *const ignored_kinds[] = {
    "users", "permissions", "topic_permissions", "parameters", "global_parameters", "policies",
};

/* GET /api/definitions */
void
sb_http__api_definitions(sb_http_req *r)
{
    json_t *d = sb_broker_definitions_json(r->h->broker);
    json_t *q;
    size_t i;

    if (d == NULL) {
        sb_http__reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                             "cannot build the definitions");
        return;
    }
    json_array_foreach(json_object_get(d, "queues"), i, q)
        json_object_del(q, DEFS_ID_KEY);
    json_array_foreach(json_object_get(d, "exchanges"), i, q)
        json_object_del(q, DEFS_ID_KEY);
    json_object_del(d, "product");
    json_object_set_new(d, "product_name", json_string(SB_HTTP__PRODUCT));
    json_object_set_new(d, "product_version", json_string(SB_HTTP__VERSION));
    for (i = 0; i < sizeof ignored_kinds / sizeof ignored_kinds[0]; i++)
        json_object_set_new(d, ignored_kinds[i], json_array());
    sb_http__reply_json(r, MHD_HTTP_OK, d);
}

/* ---- import ---- */

typedef struct import_ctx {
    sb_http_req *r;
    sb_arena arena;
    char why[400];        /* the first error, RabbitMQ-style */
} import_ctx;

static sb_str
jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? sb_str_make(json_string_value(v), json_string_length(v))
                             : SB_STR_LIT("");
}

/* A boolean field; absent is def. RabbitMQ's files also carry them as
 * strings now and then ("true"). */
static bool
jbool(const json_t *o, const char *key, bool def)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_string(v))
        return strcmp(json_string_value(v), "true") == 0;
    return def;
}

/* The object's vhost ("/" when the file names none, as a one-vhost
 * export does), or NULL with why set. */
static sb_vhost *
obj_vhost(import_ctx *c, const json_t *o, const char *what, sb_str name)
{
    sb_str vn = jstr(o, "vhost");
    sb_vhost *v = sb_broker_vhost(c->r->h->broker, vn.len ? vn : SB_STR_LIT("/"));

    if (v == NULL)
        snprintf(c->why, sizeof c->why, "%s '%.*s': no vhost '%.*s'", what, SB_STR_ARGS(name),
                 SB_STR_ARGS(vn));
    return v;
}

static bool
obj_args(import_ctx *c, const json_t *o, sb_amqp_table *t, const char *what, sb_str name)
{
    char why[200];

    if (sb_json_to_table(json_object_get(o, "arguments"), t, &c->arena, why, sizeof why) == 0)
        return true;
    snprintf(c->why, sizeof c->why, "%s '%.*s': %s", what, SB_STR_ARGS(name), why);
    return false;
}

static int
broker_failed(import_ctx *c, const char *what, sb_str name, const sb_error *err)
{
    snprintf(c->why, sizeof c->why, "%s '%.*s': %s", what, SB_STR_ARGS(name), err->text);
    return -1;
}

static int
import_exchange(import_ctx *c, const json_t *o)
{
    sb_exchange_decl d = { .name = jstr(o, "name"), .type = jstr(o, "type"),
                           .durable = jbool(o, "durable", true),
                           .auto_delete = jbool(o, "auto_delete", false),
                           .internal = jbool(o, "internal", false) };
    sb_vhost *v = obj_vhost(c, o, "exchange", d.name);
    sb_exchange_view xv;
    sb_amqp_table args;
    sb_error err = { 0 };

    if (v == NULL || !obj_args(c, o, &args, "exchange", d.name))
        return -1;
    /* RabbitMQ skips them with a warning: they are predeclared. */
    if (d.name.len == 0 || (d.name.len >= 4 && memcmp(d.name.p, "amq.", 4) == 0) ||
        sb_vhost_exchange_view(v, d.name, &xv))
        return 0;
    d.args = &args;
    return sb_exchange_declare(v, &d, &err) == 0 ? 0 : broker_failed(c, "exchange", d.name, &err);
}

static int
import_queue(import_ctx *c, const json_t *o)
{
    sb_queue_decl d = { .name = jstr(o, "name"), .durable = jbool(o, "durable", true),
                        .auto_delete = jbool(o, "auto_delete", false) };
    sb_vhost *v = obj_vhost(c, o, "queue", d.name);
    sb_amqp_table args;
    sb_queue_info info;
    sb_queue_view qv;
    sb_error err = { 0 };

    if (v == NULL || !obj_args(c, o, &args, "queue", d.name))
        return -1;
    if (d.name.len == 0) {
        snprintf(c->why, sizeof c->why, "a queue without a name");
        return -1;
    }
    if (sb_vhost_queue_view(v, d.name, &qv))
        return 0;
    d.args = &args;
    return sb_queue_declare(v, &d, &info, &err) == 0 ? 0 : broker_failed(c, "queue", d.name, &err);
}

static int
import_binding(import_ctx *c, const json_t *o)
{
    sb_str src = jstr(o, "source"), dst = jstr(o, "destination"), key = jstr(o, "routing_key");
    sb_str type = jstr(o, "destination_type");
    sb_vhost *v = obj_vhost(c, o, "binding from exchange", src);
    sb_amqp_table args;
    sb_error err = { 0 };
    int rc;

    if (v == NULL || !obj_args(c, o, &args, "binding from exchange", src))
        return -1;
    if (sb_str_eq_c(type, "exchange"))
        rc = sb_exchange_bind(v, dst, src, key, &args, false, &err);
    else if (sb_str_eq_c(type, "queue"))
        rc = sb_queue_bind(v, dst, src, key, &args, NULL, false, &err);
    else {
        snprintf(c->why, sizeof c->why, "binding from exchange '%.*s': destination_type must "
                 "be \"queue\" or \"exchange\", not '%.*s'", SB_STR_ARGS(src), SB_STR_ARGS(type));
        return -1;
    }
    return rc == 0 ? 0 : broker_failed(c, "binding from exchange", src, &err);
}

/* Checks the vhosts list up front, so a file for vhosts Switchboard lacks
 * fails before it changes anything. */
static int
check_vhosts(import_ctx *c, const json_t *doc)
{
    const json_t *o;
    size_t i;

    json_array_foreach(json_object_get(doc, "vhosts"), i, o) {
        sb_str name = jstr(o, "name");
        if (sb_broker_vhost(c->r->h->broker, name) == NULL) {
            snprintf(c->why, sizeof c->why, "vhost '%.*s' does not exist, and Switchboard "
                     "cannot create vhosts yet", SB_STR_ARGS(name));
            return -1;
        }
    }
    return 0;
}

static void
warn_ignored(const json_t *doc)
{
    for (size_t i = 0; i < sizeof ignored_kinds / sizeof ignored_kinds[0]; i++) {
        size_t n = json_array_size(json_object_get(doc, ignored_kinds[i]));
        if (n > 0)
            sb_log(SB_LOG_WARN, "http", "definitions import: %zu %s ignored (Switchboard has "
                   "no %s yet)", n, ignored_kinds[i], ignored_kinds[i]);
    }
}

static int
import_all(import_ctx *c, const json_t *doc)
{
    int (*const step[])(import_ctx *, const json_t *) = {
        import_exchange, import_queue, import_binding,
    };
    const char *const keys[] = { "exchanges", "queues", "bindings" };
    const json_t *o;
    size_t i;

    if (check_vhosts(c, doc) < 0)
        return -1;
    for (size_t k = 0; k < 3; k++) {
        const json_t *arr = json_object_get(doc, keys[k]);
        if (arr != NULL && !json_is_array(arr)) {
            snprintf(c->why, sizeof c->why, "\"%s\" must be an array", keys[k]);
            return -1;
        }
        json_array_foreach(arr, i, o) {
            if (!json_is_object(o)) {
                snprintf(c->why, sizeof c->why, "\"%s\" must hold objects", keys[k]);
                return -1;
            }
            if (step[k](c, o) < 0)
                return -1;
            sb_arena_reset(&c->arena);
        }
    }
    return 0;
}

/* POST /api/definitions: 204, or 400 {"error":"bad_request","reason":..}. */
void
sb_http__api_definitions_import(sb_http_req *r)
{
    import_ctx c = { .r = r, .arena = SB_ARENA_INIT };

    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "the body must be a definitions JSON object");
        return;
    }
    warn_ignored(r->json);
    if (import_all(&c, r->json) < 0) {
        sb_log(SB_LOG_WARN, "http", "definitions import stopped: %s", c.why);
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", c.why);
    } else {
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
    }
    sb_arena_free(&c.arena);
}
