/* durable_load.c - start-up: the saved definitions recreated, then the
 * logged messages put back in their queues (see durable.c for the record
 * layout). Messages of queues that no longer exist are removed from the
 * log once the store is attached. */
#include "broker_int.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "json_table.h"
#include "../common/alloc.h"
#include "../common/log.h"
#include "../store/defs.h"

#define DEFS_ID_KEY "switchboard_id"

static sb_str
jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? sb_str_make(json_string_value(v), json_string_length(v))
                             : SB_STR_LIT("");
}

static bool
jbool(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

/* The object's "arguments" as a table in a; false (logged) if invalid. */
static bool
jargs(const json_t *o, sb_amqp_table *t, sb_arena *a, const char *what, sb_str name)
{
    char why[200];

    if (sb_json_to_table(json_object_get(o, "arguments"), t, a, why, sizeof why) == 0)
        return true;
    sb_log(SB_LOG_ERROR, "store", "definitions: %s '%.*s' skipped: %s", what, SB_STR_ARGS(name),
           why);
    return false;
}

static sb_vhost *
jvhost(sb_broker *b, const json_t *o)
{
    sb_str name = jstr(o, "vhost");

    return sb_broker_vhost(b, name.len ? name : SB_STR_LIT("/"));
}

static void
remember_id(sb_broker *b, uint32_t id, void *owner)
{
    sb_map_put(&b->recovering, sb_str_make(&id, sizeof id), owner, NULL);
}

static void
load_exchange(sb_broker *b, const json_t *o, sb_arena *a)
{
    sb_exchange_decl d = { .name = jstr(o, "name"), .type = jstr(o, "type"), .durable = true,
                           .auto_delete = jbool(o, "auto_delete"),
                           .internal = jbool(o, "internal") };
    json_int_t id = json_integer_value(json_object_get(o, DEFS_ID_KEY));
    sb_vhost *v = jvhost(b, o);
    sb_amqp_table args;
    sb_exchange *x;
    sb_error err;

    if (v == NULL || !jargs(o, &args, a, "exchange", d.name))
        return;
    d.args = &args;
    if (sb_exchange_declare(v, &d, &err) != 0) {
        sb_log(SB_LOG_ERROR, "store", "definitions: exchange '%.*s' not restored: %s",
               SB_STR_ARGS(d.name), err.text);
        return;
    }
    x = sb_broker__exchange_find(v, d.name);
    if (x->id != 0 && id > 0 && id <= UINT32_MAX) {
        x->id = (uint32_t)id;  /* the id its held messages' records carry */
        if (x->id > b->next_queue_id)
            b->next_queue_id = x->id;
        remember_id(b, x->id, (void *)((uintptr_t)x | SB_DEST_TAG_EXCHANGE));
    }
}

static void
load_queue(sb_broker *b, const json_t *o, sb_arena *a)
{
    sb_queue_decl d = { .name = jstr(o, "name"), .durable = true,
                        .auto_delete = jbool(o, "auto_delete") };
    json_int_t id = json_integer_value(json_object_get(o, DEFS_ID_KEY));
    sb_vhost *v = jvhost(b, o);
    sb_amqp_table args;
    sb_queue_info info;
    sb_error err;
    sb_queue *q;

    if (v == NULL || !jargs(o, &args, a, "queue", d.name))
        return;
    d.args = &args;
    if (sb_queue_declare(v, &d, &info, &err) != 0) {
        sb_log(SB_LOG_ERROR, "store", "definitions: queue '%.*s' not restored: %s",
               SB_STR_ARGS(d.name), err.text);
        return;
    }
    q = sb_broker__queue_find(v, d.name);
    if (id > 0 && id <= UINT32_MAX) {
        q->id = (uint32_t)id;  /* the id its log records carry */
        if (q->id > b->next_queue_id)
            b->next_queue_id = q->id;
    }
    remember_id(b, q->id, q);
}

static void
load_binding(sb_broker *b, const json_t *o, sb_arena *a)
{
    sb_str src = jstr(o, "source"), dst = jstr(o, "destination"), key = jstr(o, "routing_key");
    sb_vhost *v = jvhost(b, o);
    sb_amqp_table args;
    sb_error err;
    int rc;

    if (v == NULL || !jargs(o, &args, a, "binding from", src))
        return;
    if (sb_str_eq_c(jstr(o, "destination_type"), "exchange"))
        rc = sb_exchange_bind(v, dst, src, key, &args, false, &err);
    else
        rc = sb_queue_bind(v, dst, src, key, &args, NULL, false, &err);
    if (rc != 0)
        sb_log(SB_LOG_ERROR, "store", "definitions: binding '%.*s' -> '%.*s' not restored: %s",
               SB_STR_ARGS(src), SB_STR_ARGS(dst), err.text);
}

static void
load_all(sb_broker *b, const json_t *doc)
{
    void (*const load[])(sb_broker *, const json_t *, sb_arena *) = {
        load_exchange, load_queue, load_binding,
    };
    const char *const keys[] = { "exchanges", "queues", "bindings" };
    sb_arena a = SB_ARENA_INIT;
    const json_t *o;
    size_t i;

    for (size_t k = 0; k < 3; k++)
        json_array_foreach(json_object_get(doc, keys[k]), i, o) {
            load[k](b, o, &a);
            sb_arena_reset(&a);
        }
    sb_arena_free(&a);
}

int
sb_broker_load_definitions(sb_broker *b, const char *dir)
{
    uint8_t *blob = NULL;
    json_error_t jerr;
    json_t *doc;
    size_t len;
    int rc;

    sb_free(b->data_dir);
    b->data_dir = sb_strdup(dir);
    rc = sb_defs_load(dir, NULL, &blob, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    doc = json_loadb((const char *)blob, len, 0, &jerr);
    sb_free(blob);
    if (doc == NULL) {
        sb_log(SB_LOG_ERROR, "store", "definitions in %s are not JSON (line %d: %s)", dir,
               jerr.line, jerr.text);
        return -EILSEQ;
    }
    load_all(b, doc);
    json_decref(doc);
    b->defs_dirty = false;  /* what was loaded is what is saved */
    return 0;
}

/* ---- messages ---- */

/* Splits a record header: exchange, routing key, properties, and the due
 * time of a delayed exchange's message (0 in a queue's). */
static bool
decode_header(sb_str h, sb_str *x, sb_str *rk, sb_str *props, uint64_t *due)
{
    size_t xl, rl;

    *due = 0;
    if (h.len >= 9 && h.p[0] == 2) {
        for (int i = 0; i < 8; i++)
            *due |= (uint64_t)h.p[1 + i] << (8 * i);
        h = sb_str_make(h.p + 8, h.len - 8);  /* the rest is laid out as version 1 */
    } else if (h.len < 3 || h.p[0] != 1) {
        return false;
    }
    if (h.len < 3)
        return false;
    xl = h.p[1];
    if (h.len < 3 + xl)
        return false;
    rl = h.p[2 + xl];
    if (h.len < 3 + xl + rl)
        return false;
    *x = sb_str_make(h.p + 2, xl);
    *rk = sb_str_make(h.p + 3 + xl, rl);
    *props = sb_str_make(h.p + 3 + xl + rl, h.len - 3 - xl - rl);
    return true;
}

/* The message in record r; *due as decode_header. New reference, or NULL. */
static sb_msg *
msg_from_record(const sb_store_msg *r, uint64_t *due)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p = { 0 };
    sb_str x, rk, props;
    sb_msg *m;

    if (!decode_header(r->hdr, &x, &rk, &props, due) ||
        sb_amqp_props_decode(props.p, props.len, &p, &a) < 0) {
        sb_arena_free(&a);
        return NULL;
    }
    m = sb_msg_new(props, x, rk, r->body.len, 2,
                   (p.flags & SB_PROP_PRIORITY) ? p.priority : 0);
    sb_arena_free(&a);
    if (m == NULL)
        return NULL;
    memcpy(sb_msg_body(m), r->body.p, r->body.len);
    return m;
}

sb_msg *
sb_broker__msg_from_record(const sb_store_msg *r)
{
    uint64_t due;

    return msg_from_record(r, &due);
}

void
sb_broker_recover_message(void *arg, const sb_store_msg *r)
{
    sb_broker *b = arg;
    uint32_t key = r->queue_id;
    void *owner = sb_map_get(&b->recovering, sb_str_make(&key, sizeof key));
    sb_queue *q = ((uintptr_t)owner & SB_DEST_TAG_EXCHANGE) ? NULL : owner;
    sb_msg *m = NULL;
    uint64_t due;

    if (r->msg_id > b->next_msg_id)
        b->next_msg_id = r->msg_id;
    if (owner != NULL && q == NULL) {
        sb_exchange *x = (sb_exchange *)((uintptr_t)owner & ~SB_DEST_TAG_EXCHANGE);
        if ((m = msg_from_record(r, &due)) != NULL && due != 0) {
            sb_broker__delay_restore(x, m, r, due);
            sb_msg_unref(m);
            return;
        }
        sb_msg_unref(m);
        m = NULL;
    } else if (q != NULL && sb_broker__queue_restore_spilled(q, r)) {
        return;  /* past the queue's memory window: stays on disk */
    } else if (q != NULL) {
        m = sb_broker__msg_from_record(r);
    }
    if (m == NULL) {
        /* Its queue is gone (or the record is unreadable): drop it from
         * the log once the store is attached. */
        sb_store_msg o = *r;
        o.hdr = o.body = SB_STR_NULL;
        sb_buf_append(&b->orphans, &o, sizeof o);
        return;
    }
    sb_broker__queue_restore(q, m, &r->loc, r->msg_id, r->was_delivered);
    sb_msg_unref(m);
}

void
sb_broker_attach_store(sb_broker *b, sb_store *st)
{
    size_t n = b->orphans.len / sizeof(sb_store_msg);

    b->store = st;
    for (size_t i = 0; i < n && st != NULL; i++) {
        sb_store_msg o;
        memcpy(&o, b->orphans.data + i * sizeof o, sizeof o);
        sb_store_remove(st, o.queue_id, o.msg_id, &o.loc);
    }
    if (n > 0) {
        sb_log(SB_LOG_INFO, "store", "removed %zu logged messages of deleted queues", n);
        b->store_dirty = true;
    }
    sb_buf_free(&b->orphans);
    sb_map_free(&b->recovering);
}
