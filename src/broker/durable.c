/* durable.c - what survives a restart (DESIGN.md principle 2).
 *
 * Definitions: users, vhosts and permissions, durable exchanges, durable
 * non-exclusive queues and the bindings between durable ends are saved as
 * one JSON document (mode 0600: it holds password hashes) in
 * RabbitMQ's definitions format (plus each queue's log id), atomically,
 * by store/defs.c, whenever they changed, before the loop sleeps — so a
 * declare-ok, written after that, is only sent once the definition is on
 * disk.
 *
 * Messages: a persistent message (delivery_mode 2) entering a durable
 * queue is appended to the store's log, one record per queue; acks,
 * rejects, expiry, purges and deletions append removes; a first delivery
 * appends a DELIVERED mark so recovery sets redelivered. Records are
 * (queue id, message id, header, body) where the header is
 *   u8 version (1) | u8 len | exchange | u8 len | routing key | properties
 * with the properties in their wire form.
 */
#include "broker_int.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "json_table.h"
#include "../common/alloc.h"
#include "../common/log.h"
#include "../store/defs.h"

#define RECORD_VERSION 1
#define DEFS_ID_KEY "switchboard_id"

/* ---- message records ---- */

/* Version 1: a queue's message. Version 2: a message a delayed exchange
 * holds, with the wall-clock ms when it is due after the version octet. */
static void
encode_header(sb_buf *b, const sb_msg *m, uint64_t due_wall_ms)
{
    sb_buf_reset(b);
    sb_buf_put_u8(b, due_wall_ms ? 2 : RECORD_VERSION);
    if (due_wall_ms) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(due_wall_ms >> (8 * i));
        sb_buf_append(b, le, sizeof le);
    }
    sb_buf_put_u8(b, m->exchange_len);
    sb_buf_append_str(b, sb_msg_exchange(m));
    sb_buf_put_u8(b, m->rk_len);
    sb_buf_append_str(b, sb_msg_rk(m));
    sb_buf_append_str(b, sb_msg_props(m));
}

/* Logs e for the owner with log id id (a queue, or a delayed exchange). */
static int
record_append(sb_broker *b, uint32_t id, const char *owner, sb_qentry *e, uint64_t due_wall_ms)
{
    sb_msg *m = e->msg;
    int rc;

    if (b->store == NULL)
        return 0;

    sb_store_loc loc;
    uint64_t msg_id = ++b->next_msg_id;

    encode_header(&b->scratch, m, due_wall_ms);
    rc = sb_store_append(b->store, id, msg_id, sb_str_make(b->scratch.data, b->scratch.len),
                         sb_str_make(sb_msg_body(m), m->body_len), &loc);
    if (rc < 0) {
        sb_log(SB_LOG_WARN, "store", "cannot log a persistent message for '%s': %s", owner,
               strerror(-rc));
        return rc;
    }
    sb_broker__qentry_set_ref(e, &loc, msg_id);
    b->store_dirty = true;
    if (loc.pos > b->publish_pos)
        b->publish_pos = loc.pos;
    return 0;
}

static void
record_remove(sb_vhost *v, uint32_t id, sb_qentry *e)
{
    sb_broker *b = v->broker;

    if (v->closing)
        return;  /* the broker is shutting down, not deleting: keep the record */
    if (b->store != NULL && e->ref != NULL) {
        sb_store_remove(b->store, id, e->ref->msg_id, &e->ref->loc);
        b->store_dirty = true;
    }
    sb_free(e->ref);
    e->ref = NULL;
}

void
sb_broker__qentry_set_ref(sb_qentry *e, const sb_store_loc *loc, uint64_t msg_id)
{
    if (e->ref == NULL)
        e->ref = sb_malloc(sizeof *e->ref);
    e->ref->loc = *loc;
    e->ref->msg_id = msg_id;
}

int
sb_broker__store_append(sb_queue *q, sb_qentry *e)
{
    return record_append(q->vhost->broker, q->id, q->name, e, 0);
}

void
sb_broker__store_remove(sb_queue *q, sb_qentry *e)
{
    record_remove(q->vhost, q->id, e);
}

int
sb_broker__store_append_delayed(sb_exchange *x, sb_qentry *e, uint64_t due_wall_ms)
{
    return record_append(x->vhost->broker, x->id, x->name, e, due_wall_ms ? due_wall_ms : 1);
}

void
sb_broker__store_remove_delayed(sb_exchange *x, sb_qentry *e)
{
    record_remove(x->vhost, x->id, e);
}

void
sb_broker__exchange_assign_id(sb_exchange *x)
{
    sb_broker *b = x->vhost->broker;

    if (b->data_dir == NULL)
        return;
    x->id = ++b->next_queue_id;
    sb_broker__defs_changed(b);
}

void
sb_broker__store_delivered(sb_queue *q, sb_qentry *e)
{
    sb_broker *b = q->vhost->broker;

    if (b->store == NULL || e->ref == NULL || e->marked)
        return;
    sb_store_mark_delivered(b->store, q->id, e->ref->msg_id, &e->ref->loc);
    e->marked = true;
    b->store_dirty = true;
}

void
sb_broker__queue_assign_id(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;

    if (b->data_dir == NULL)
        return;
    q->id = ++b->next_queue_id;
    sb_broker__defs_changed(b);
}

void
sb_broker__defs_changed(sb_broker *b)
{
    if (b->data_dir != NULL)
        b->defs_dirty = true;
}

/* ---- definitions, in RabbitMQ's format ---- */

/* Names go through sb_json_from_name: any byte string, NULs and bytes
 * that are not UTF-8 included, comes back as it was (json_table.h). */
static void
set_name(json_t *o, json_t *raw, const char *field, sb_str name)
{
    json_object_set_new(o, field, sb_json_from_name(name, raw, field));
}

static json_t *
with_raw(json_t *o, json_t *raw)
{
    if (json_object_size(raw) > 0)
        json_object_set(o, SB_JSON_RAW_KEY, raw);
    json_decref(raw);
    return o;
}

static json_t *
exchange_json(const sb_exchange *x)
{
    json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:o}", "vhost", x->vhost->name, "type",
                          sb_broker__exchange_type_name(x), "durable", 1, "auto_delete",
                          x->auto_delete, "internal", x->internal, "arguments",
                          sb_json_from_table(&x->args.t));
    json_t *raw = json_object();

    set_name(o, raw, "name", sb_str_make(x->name, x->name_len));
    if (x->id != 0)  /* a delayed exchange's held messages are logged under it */
        json_object_set_new(o, DEFS_ID_KEY, json_integer(x->id));
    return with_raw(o, raw);
}

static json_t *
queue_json(const sb_queue *q)
{
    json_t *o = json_pack("{s:s, s:b, s:b, s:o, s:I}", "vhost", q->vhost->name, "durable", 1,
                          "auto_delete", q->auto_delete, "arguments",
                          sb_json_from_table(&q->args.t), DEFS_ID_KEY, (json_int_t)q->id);
    json_t *raw = json_object();

    set_name(o, raw, "name", sb_str_make(q->name, q->name_len));
    return with_raw(o, raw);
}

static json_t *
binding_json(const sb_binding *bd)
{
    sb_str dest = bd->kind == SB_DEST_QUEUE
                      ? sb_str_make(((sb_queue *)bd->dest)->name, ((sb_queue *)bd->dest)->name_len)
                      : sb_str_make(((sb_exchange *)bd->dest)->name,
                                    ((sb_exchange *)bd->dest)->name_len);
    json_t *o = json_pack("{s:s, s:s, s:o}", "vhost", bd->source->vhost->name,
                          "destination_type", bd->kind == SB_DEST_QUEUE ? "queue" : "exchange",
                          "arguments", sb_json_from_table(&bd->args.t));
    json_t *raw = json_object();

    set_name(o, raw, "source", sb_str_make(bd->source->name, bd->source->name_len));
    set_name(o, raw, "destination", dest);
    set_name(o, raw, "routing_key", sb_str_make(bd->key, bd->key_len));
    return with_raw(o, raw);
}

static bool
binding_kept(const sb_binding *bd)
{
    return bd->source->durable && bd->source->name_len > 0 &&
           (bd->kind == SB_DEST_QUEUE ? sb_broker__queue_persists(bd->dest)
                                      : ((sb_exchange *)bd->dest)->durable);
}

static void
vhost_json(sb_vhost *v, json_t *xs, json_t *qs, json_t *bs)
{
    size_t it = 0;
    void *val;
    sb_list *l;

    while (sb_map_next(&v->exchanges, &it, NULL, &val)) {
        sb_exchange *x = val;
        if (!x->durable || x->builtin)
            continue;
        json_array_append_new(xs, exchange_json(x));
    }
    for (it = 0; sb_map_next(&v->exchanges, &it, NULL, &val);)
        sb_list_foreach(l, &((sb_exchange *)val)->bindings_out) {
            sb_binding *bd = SB_CONTAINER_OF(l, sb_binding, src_link);
            if (binding_kept(bd))
                json_array_append_new(bs, binding_json(bd));
        }
    for (it = 0; sb_map_next(&v->queues, &it, NULL, &val);)
        if (sb_broker__queue_persists(val))
            json_array_append_new(qs, queue_json(val));
}

/* A comma-separated tag list as a JSON array of strings. */
static json_t *
tags_json(const char *tags)
{
    json_t *a = json_array();
    const char *p = tags;

    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0)
            json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

/* {"name": ...} as RabbitMQ 3.10 exports a vhost, with its description and
 * tags when it has them (which later RabbitMQ versions export too). */
static json_t *
vhost_entry(const sb_vhost *v)
{
    json_t *o = json_pack("{s:s}", "name", v->name);

    if (v->description[0])
        json_object_set_new(o, "description", json_string(v->description));
    if (v->tags[0])
        json_object_set_new(o, "tags", tags_json(v->tags));
    return o;
}

static void
user_entry(const sb_user *u, void *ud)
{
    json_t *tags = json_array();

    for (size_t i = 0; i < sb_user_tag_count(u); i++)
        json_array_append_new(tags, json_string(sb_user_tag(u, i)));
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s, s:o, s:{}}", "name", sb_user_name(u),
                                        "password_hash", sb_user_hash(u), "hashing_algorithm",
                                        sb_hash_alg_name(sb_user_alg(u)), "tags", tags,
                                        "limits"));
}

static void
perms_entry(const char *user, const char *vhost, const sb_perms *p, void *ud)
{
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", user, "vhost", vhost,
                                         "configure", sb_perms_source(p, SB_PERM_CONFIGURE),
                                         "write", sb_perms_source(p, SB_PERM_WRITE), "read",
                                         sb_perms_source(p, SB_PERM_READ)));
}

static json_t *
definitions(sb_broker *b)
{
    json_t *vs = json_array(), *xs = json_array(), *qs = json_array(), *bs = json_array();
    json_t *us = json_array(), *ps = json_array(), *pols = json_array();
    size_t it = 0;
    void *val;

    while (sb_map_next(&b->vhosts, &it, NULL, &val)) {
        json_array_append_new(vs, vhost_entry(val));
        vhost_json(val, xs, qs, bs);
        sb_vhost_policies_json(val, pols);
    }
    sb_auth_each_user(b->auth, user_entry, us);
    sb_auth_each_perms(b->auth, perms_entry, ps);
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "product", "Switchboard",
                     "users", us, "vhosts", vs, "permissions", ps, "policies", pols, "queues",
                     qs, "exchanges", xs, "bindings", bs);
}

static void
save_definitions(sb_broker *b)
{
    json_t *d = definitions(b);
    char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    json_decref(d);
    if (text == NULL)
        return;
    rc = sb_defs_save(b->data_dir, NULL, sb_str_c(text));
    free(text);
    if (rc < 0) {
        sb_log(SB_LOG_ERROR, "store", "cannot save definitions in %s: %s (will retry)",
               b->data_dir, strerror(-rc));
        return;
    }
    b->defs_dirty = false;
}

/* Before the loop sleeps: definitions first (synchronous; they change
 * rarely), then hand the batch of message records to the commit thread.
 * The net layer flushes replies after this, so a declare-ok leaves only
 * once its definition is on disk. */
void
sb_broker_before_sleep(sb_broker *b)
{
    if (b->defs_dirty)
        save_definitions(b);
    sb_broker__spill_before_sleep(b);
    if (b->store != NULL && b->store_dirty) {
        sb_store_commit_async(b->store);
        b->store_dirty = false;
    }
}


void *
sb_broker_definitions_json(sb_broker *b)
{
    return definitions(b);
}
