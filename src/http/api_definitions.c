/* api_definitions.c - GET and POST /api/definitions: the topology as a
 * RabbitMQ definitions document (issue 3), so a team can move between
 * Switchboard and a RabbitMQ cluster in one step.
 *
 * GET answers the broker's durable definitions (sb_broker_definitions_json:
 * users with their password hashes, vhosts, permissions, durable
 * exchanges, durable non-exclusive queues, bindings between durable ends,
 * as RabbitMQ exports them) in RabbitMQ's top-level shape: product_name,
 * product_version, users, vhosts, permissions, topic_permissions,
 * parameters, global_parameters, policies, queues, exchanges, bindings.
 * Switchboard has no topic permissions or parameters to export,
 * so those arrays are empty; the queue log ids the broker keeps in its own
 * copy are removed. Administrators only, as in RabbitMQ.
 *
 * POST imports such a document, RabbitMQ's own exports included, through
 * sb_broker_import_definitions (broker/defs_import.c, which also loads the
 * saved definitions at start-up): the first error stops the import with
 * 400 and its reason (what came before stays). Topic permissions and
 * parameters are ignored with a warning logged per kind.
 * Runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "../common/log.h"

#define DEFS_ID_KEY "switchboard_id"  /* durable.c's log ids: internal */

/* Kinds of a RabbitMQ export that Switchboard has no notion of yet. */
static const char *const ignored_kinds[] = {
    "topic_permissions", "parameters", "global_parameters",
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
        if (json_object_get(d, ignored_kinds[i]) == NULL)
            json_object_set_new(d, ignored_kinds[i], json_array());
    sb_http__reply_json(r, MHD_HTTP_OK, d);
}

/* ---- import ---- */


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

/* POST /api/definitions: 204, or 400 {"error":"bad_request","reason":..}. */
void
sb_http__api_definitions_import(sb_http_req *r)
{
    char why[400];

    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "the body must be a definitions JSON object");
        return;
    }
    warn_ignored(r->json);
    if (sb_broker_import_definitions(r->h->broker, r->json, false, why, sizeof why) < 0) {
        sb_log(SB_LOG_WARN, "http", "definitions import stopped: %s", why);
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
    } else {
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
    }
}
