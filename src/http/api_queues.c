/* api_queues.c - /api/queues in RabbitMQ management's shapes: list (all
 * vhosts or one), show, declare (PUT), delete and purge.
 *
 * Fields and their names are RabbitMQ's, a subset: name, vhost, durable,
 * auto_delete, exclusive, arguments, messages, messages_ready,
 * messages_unacknowledged, message_bytes_ready, consumers, state, type
 * and node. Unlike RabbitMQ, whose statistics lag by its collection
 * interval (5 s), the counts are exact at the time of the request. A
 * declare takes {"durable":..,"auto_delete":..,"arguments":{..}}, each
 * optional (false, false, {} as in queue.declare's defaults); "exclusive"
 * is ignored because an HTTP request owns no connection. Runs on the loop
 * thread.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http_int.h"

static json_t *
str_json(sb_str s)
{
    json_t *j = json_stringn((const char *)s.p, s.len);

    return j ? j : json_string("");
}

/* RabbitMQ's idle_since: "2026-11-30T01:50:23.484+00:00". */
static json_t *
iso_time(uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    char out[80];

    gmtime_r(&t, &tm);
    snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03u+00:00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(wall_ms % 1000));
    return json_string(out);
}

/* Switchboard's own figures: retries, delays, dead letters. */
static json_t *
extra_json(const sb_queue_view *q)
{
    const sb_msg_stats *st = q->stats;
    uint64_t dead = 0, dropped = 0;

    for (int i = 0; i < 4; i++) {
        dead += st->n[SB_STAT_DEAD_REJECTED + i];
        dropped += st->n[SB_STAT_DROP_REJECTED + i];
    }
    return json_pack("{s:i,s:I,s:I,s:I}", "messages_delayed", (int)q->delayed,
                     "retried", (json_int_t)st->n[SB_STAT_RETRY],
                     "dead_lettered", (json_int_t)dead, "dropped", (json_int_t)dropped);
}

static json_t *
queue_json(const sb_queue_view *q)
{
    const char *policy = sb_policy_name(q->policy);
    json_t *o = json_pack("{s:o,s:s,s:b,s:b,s:b,s:o,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:o,s:o}",
                     "name", str_json(q->name),
                     "vhost", q->vhost,
                     "durable", q->durable,
                     "auto_delete", q->auto_delete,
                     "exclusive", q->exclusive,
                     "arguments", sb_json_from_table(q->args),
                     "messages", (json_int_t)q->messages_ready + q->messages_unacked,
                     "messages_ready", (json_int_t)q->messages_ready,
                     "messages_unacknowledged", (json_int_t)q->messages_unacked,
                     "message_bytes_ready", (json_int_t)q->ready_bytes,
                     "consumers", (json_int_t)q->consumers,
                     "state", "running",
                     "type", "classic",
                     "node", SB_HTTP__NODE,
                     "policy", policy ? json_string(policy) : json_null(),
                     "effective_policy_definition", sb_policy_definition_json(q->policy));

    json_object_set_new(o, "message_bytes_unacknowledged", json_integer((json_int_t)q->unacked_bytes));
    json_object_set_new(o, "message_bytes", json_integer((json_int_t)(q->ready_bytes + q->unacked_bytes)));
    json_object_set_new(o, "messages_paged_out", json_integer(q->paged_out));
    json_object_set_new(o, "idle_since", iso_time(q->idle_since));
    json_object_set_new(o, "message_stats", sb_http__message_stats(q->stats, SB_HTTP_STATS_QUEUE));
    json_object_set_new(o, "switchboard", extra_json(q));
    return o;
}

static void
append_queue(const sb_queue_view *q, void *ud)
{
    json_array_append_new(ud, queue_json(q));
}

static void
append_vhost_queues(sb_vhost *v, void *ud)
{
    sb_vhost_each_queue(v, append_queue, ud);
}

/* GET /api/queues, /api/queues/{vhost}, /api/queues/{vhost}/{name} */
void
sb_http__api_queues(sb_http_req *r)
{
    json_t *list = json_array();
    sb_queue_view qv;
    sb_vhost *v;

    if (r->nparams == 0) {
        sb_http__each_visible_vhost(r, append_vhost_queues, list);
    } else {
        if ((v = sb_http__vhost_or_404(r)) == NULL)
            goto out;
        if (r->nparams == 2) {
            if (sb_vhost_queue_view(v, r->params[1], &qv))
                sb_http__reply_json(r, MHD_HTTP_OK, queue_json(&qv));
            else
                sb_http__reply_not_found(r);
            goto out;
        }
        sb_vhost_each_queue(v, append_queue, list);
    }
    sb_http__sort_by_name(list);
    sb_http__reply_json(r, MHD_HTTP_OK, json_incref(list));
out:
    json_decref(list);
}

/* Reads the declare body into d; answers 400 and returns false when it
 * is malformed. The arguments table borrows from r->json and a. */
static bool
read_queue_body(sb_http_req *r, sb_queue_decl *d, sb_amqp_table *args, sb_arena *a)
{
    char why[160];
    bool bad = false;

    if (r->json != NULL && !json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return false;
    }
    d->durable = sb_http__json_bool(r->json, "durable", false, &bad);
    d->auto_delete = sb_http__json_bool(r->json, "auto_delete", false, &bad);
    if (bad) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "durable and auto_delete must be booleans");
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

static bool
name_ok(sb_http_req *r, sb_str name, const char *what)
{
    if (name.len > 0 && name.len <= 255)
        return true;
    sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "%s name must be 1 to 255 bytes long", what);
    return false;
}

/* PUT /api/queues/{vhost}/{name}: 201 when created, 204 when an
 * equivalent queue exists, 400 with RabbitMQ's text when it differs. */
void
sb_http__api_queue_put(sb_http_req *r)
{
    sb_queue_decl d = { .name = r->params[1] };
    sb_arena arena = SB_ARENA_INIT;
    sb_amqp_table args;
    sb_queue_info info;
    sb_queue_view qv;
    sb_error err = { 0 };
    sb_vhost *v;
    bool existed;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL || !name_ok(r, d.name, "queue") ||
        !read_queue_body(r, &d, &args, &arena))
        goto out;
    existed = sb_vhost_queue_view(v, d.name, &qv);
    d.access = sb_http__perms(r, v);
    if ((rc = sb_queue_declare(v, &d, &info, &err)) != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_empty(r, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
out:
    sb_arena_free(&arena);
}

static bool
query_true(sb_http_req *r, const char *key)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);

    return v != NULL && strcmp(v, "true") == 0;
}

/* DELETE /api/queues/{vhost}/{name}[?if-unused=true&if-empty=true] */
void
sb_http__api_queue_delete(sb_http_req *r)
{
    sb_error err = { 0 };
    sb_queue_view qv;
    uint32_t count;
    sb_vhost *v;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL)
        return;
    if (!sb_vhost_queue_view(v, r->params[1], &qv)) {
        sb_http__reply_not_found(r);
        return;
    }
    rc = sb_access_check(sb_http__perms(r, v), SB_PERM_CONFIGURE, "queue", r->params[1], &err);
    if (rc == 0)
        rc = sb_queue_delete(v, r->params[1], NULL, query_true(r, "if-unused"),
                             query_true(r, "if-empty"), &count, &err);
    if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* DELETE /api/queues/{vhost}/{name}/contents */
void
sb_http__api_queue_purge(sb_http_req *r)
{
    sb_error err = { 0 };
    uint32_t count;
    sb_vhost *v;
    int rc;

    if ((v = sb_http__vhost_or_404(r)) == NULL)
        return;
    rc = sb_access_check(sb_http__perms(r, v), SB_PERM_READ, "queue", r->params[1], &err);
    if (rc == 0)
        rc = sb_queue_purge(v, r->params[1], NULL, &count, &err);
    if (rc == SB_NOT_FOUND)
        sb_http__reply_not_found(r);
    else if (rc != 0)
        sb_http__reply_broker_error(r, rc, &err);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}
