/* durable_load.c - start-up: the saved definitions recreated (through
 * defs_import.c), then the logged messages put back in their queues (see durable.c for the record
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
    /* A user database made before the load (the default user) is saved at
     * once, so the next start finds it and does not make one again. */
    if (rc == -ENOENT) {
        b->defs_dirty = b->users_loaded;
        if (b->users_loaded)
            sb_log(SB_LOG_INFO, "auth", "no definitions in %s yet: starting with the default "
                   "user (default_user, administrator with all permissions on vhost '/')", dir);
        return 0;
    }
    if (rc < 0)
        return rc;
    /* Names may hold NULs (\u0000 in the file): they are bytes. */
    doc = json_loadb((const char *)blob, len, JSON_ALLOW_NUL, &jerr);
    sb_free(blob);
    if (doc == NULL) {
        sb_log(SB_LOG_ERROR, "store", "definitions in %s are not JSON (line %d: %s)", dir,
               jerr.line, jerr.text);
        return -EILSEQ;
    }
    sb_broker_import_definitions(b, doc, true, NULL, 0);
    /* What was loaded is what is saved, unless the file predates users. */
    b->defs_dirty = json_object_get(doc, "users") == NULL && b->users_loaded;
    json_decref(doc);
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

/* The expiration property's milliseconds (checked at publish, so digits
 * only), or -1. The record keeps no arrival time: a recovered message's
 * per-message TTL counts from the restart. */
static int64_t
expiration_ms(sb_str e)
{
    int64_t v = 0;

    if (e.len == 0)
        return -1;
    for (size_t i = 0; i < e.len; i++) {
        if (e.p[i] < '0' || e.p[i] > '9' || v > INT32_MAX)
            return -1;
        v = v * 10 + (e.p[i] - '0');
    }
    return v;
}

/* The message in record r; *due as decode_header. New reference, or NULL.
 * A message with a traceparent is followed again (trace.c). */
static sb_msg *
msg_from_record(sb_broker *b, const sb_store_msg *r, uint64_t *due)
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
    if (m != NULL && (p.flags & SB_PROP_EXPIRATION))
        sb_msg_set_expiration(m, expiration_ms(p.expiration));
    if (m != NULL && (p.flags & SB_PROP_HEADERS))
        sb_trace_mark(b, m, &p.headers);
    sb_arena_free(&a);
    if (m == NULL)
        return NULL;
    memcpy(sb_msg_body(m), r->body.p, r->body.len);
    return m;
}

sb_msg *
sb_broker__msg_from_record(sb_broker *b, const sb_store_msg *r)
{
    uint64_t due;

    return msg_from_record(b, r, &due);
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
        if ((m = msg_from_record(b, r, &due)) != NULL && due != 0) {
            sb_broker__delay_restore(x, m, r, due);
            sb_msg_unref(m);
            return;
        }
        sb_msg_unref(m);
        m = NULL;
    } else if (q != NULL && sb_broker__queue_restore_spilled(q, r)) {
        return;  /* past the queue's memory window: stays on disk */
    } else if (q != NULL) {
        m = sb_broker__msg_from_record(b, r);
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
    void *vval, *qval;

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
    /* Recovered messages with a TTL (the queue's, or their own expiration)
     * got their expiry on restore; now that dead letters can be logged,
     * expire what is due and arm each queue's head timer. */
    for (size_t vi = 0; sb_map_next(&b->vhosts, &vi, NULL, &vval);)
        for (size_t qi = 0; sb_map_next(&((sb_vhost *)vval)->queues, &qi, NULL, &qval);)
            sb_broker__queue_expire_head(qval);
}
