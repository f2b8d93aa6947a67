/* queue_spill.c - queues larger than memory (issue 3).
 *
 * A durable queue keeps at most memory_window ready messages in RAM.
 * Beyond that a marker entry (msg NULL) is put at the tail of the ready
 * list; persistent messages behind it whose log records are durable leave
 * RAM and go, as 12-byte sb_spilled records, into the queue's spill FIFO,
 * which stands in the ready order exactly where the marker is. When the
 * head of the queue reaches the marker, a batch is read back from the log
 * (synchronous pread: the segments are recent, usually in the page cache).
 * Transient messages cannot leave RAM (they have no record), so one stops
 * the spilling of those behind it until it reaches the marker. Priority
 * queues keep everything in RAM (the order is not FIFO).
 *
 * Every count (ready_count, ready_bytes) includes spilled messages; only
 * inmem counts real entries in the list. */
#include "broker_int.h"

#include <errno.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"

#define PAGE_IN_BATCH 256

static uint32_t
spill_count(const sb_queue *q)
{
    return (uint32_t)((q->spill.len - q->spill_head) / sizeof(sb_spilled));
}

static void
marker_create(sb_queue *q)
{
    sb_qentry *m = sb_calloc(1, sizeof *m);

    /* Everything spilled is newer than what is before the marker, older
     * than what comes after it, and consecutive in seq from here. */
    m->seq = q->spill_seq = q->next_seq;
    sb_list_push_back(&q->ready, &m->link);
    q->marker = m;
    sb_list_push_back(&q->vhost->broker->spilling, &q->spill_link);
}

static void
marker_remove(sb_queue *q)
{
    sb_list_remove(&q->marker->link);
    sb_free(q->marker);
    q->marker = NULL;
    sb_list_remove(&q->spill_link);
    sb_buf_free(&q->spill);
    q->spill_head = 0;
}

static bool
can_spill(const sb_queue *q, const sb_qentry *e)
{
    const sb_store *st = q->vhost->broker->store;

    return st != NULL && e->ref != NULL && e->ref->loc.pos <= sb_store_durable_pos(st) &&
           !e->redelivered &&
           e->expires_at == 0;
}

void
sb_broker__queue_spill(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;
    sb_list *it;

    if (!sb_broker__queue_persists(q) || q->cfg.max_priority || b->store == NULL)
        return;
    if (q->marker == NULL) {
        if (q->inmem <= b->memory_window)
            return;
        marker_create(q);
    }
    while ((it = q->marker->link.next) != &q->ready) {
        sb_qentry *e = SB_CONTAINER_OF(it, sb_qentry, link);
        sb_spilled sp;
        if (!can_spill(q, e))
            break;
        sp = (sb_spilled){ e->ref->loc.segment, e->ref->loc.offset,
                           (uint32_t)e->msg->body_len | (e->marked ? SB_SPILL_DELIVERED : 0) };
        sb_buf_append(&q->spill, &sp, sizeof sp);
        sb_list_remove(&e->link);
        q->inmem--;
        sb_msg_unref(e->msg);
        sb_free(e->ref);
        sb_free(e);
    }
}

/* Reads up to PAGE_IN_BATCH spilled messages back, in front of the marker. */
static void
page_in(sb_queue *q)
{
    sb_store *st = q->vhost->broker->store;

    for (int n = 0; n < PAGE_IN_BATCH && spill_count(q) > 0; n++) {
        sb_spilled sp;
        sb_store_loc loc;
        sb_store_msg r;
        uint8_t *buf = NULL;
        sb_msg *m = NULL;
        int rc;

        memcpy(&sp, q->spill.data + q->spill_head, sizeof sp);
        q->spill_head += sizeof sp;
        loc = (sb_store_loc){ .pos = 0, .segment = sp.segment, .offset = sp.offset };
        rc = st ? sb_store_read(st, &loc, &r, &buf) : -ENOENT;
        if (rc == 0)
            m = sb_broker__msg_from_record(&r);
        if (m == NULL) {
            sb_log(SB_LOG_ERROR, "store", "queue '%s': a message could not be read back from "
                   "segment %u offset %u (%s); it is lost", q->name, sp.segment, sp.offset,
                   rc < 0 ? strerror(-rc) : "unreadable record");
            q->ready_count--;
            q->ready_bytes -= SB_SPILL_LEN(sp.len_flags);
            sb_free(buf);
            continue;
        }
        sb_broker__queue_unspill(q, m, &loc, r.msg_id, sp.len_flags & SB_SPILL_DELIVERED);
        sb_msg_unref(m);
        sb_free(buf);
    }
    if (spill_count(q) == 0) {
        marker_remove(q);
        return;
    }
    q->marker->seq = q->spill_seq;  /* requeued ones go before it */
    if (q->spill_head > (64u << 10) && q->spill_head > q->spill.len / 2) {
        /* A queue that is filled and drained at once: keep the FIFO small. */
        sb_buf_consume(&q->spill, q->spill_head);
        q->spill_head = 0;
    }
}

sb_qentry *
sb_broker__queue_head(sb_queue *q)
{
    sb_qentry *e;

    while (!sb_list_empty(&q->ready)) {
        e = SB_CONTAINER_OF(q->ready.next, sb_qentry, link);
        if (e != q->marker)
            return e;
        page_in(q);
    }
    return NULL;
}

uint32_t
sb_broker__spill_drop_all(sb_queue *q)
{
    sb_store *st = q->vhost->broker->store;
    uint32_t n = spill_count(q);

    if (q->marker == NULL)
        return 0;
    if (!q->vhost->closing)
        for (size_t off = q->spill_head; off < q->spill.len; off += sizeof(sb_spilled)) {
            sb_spilled sp;
            sb_store_loc loc;
            memcpy(&sp, q->spill.data + off, sizeof sp);
            loc = (sb_store_loc){ .pos = 0, .segment = sp.segment, .offset = sp.offset };
            if (st != NULL)
                sb_store_remove(st, q->id, 0, &loc);
            q->ready_bytes -= SB_SPILL_LEN(sp.len_flags);
        }
    q->vhost->broker->store_dirty = true;
    q->ready_count -= n;
    marker_remove(q);
    return n;
}

bool
sb_broker__queue_restore_spilled(sb_queue *q, const sb_store_msg *r)
{
    sb_spilled sp = { r->loc.segment, r->loc.offset,
                      (uint32_t)r->body.len | (r->was_delivered ? SB_SPILL_DELIVERED : 0) };

    if (q->cfg.max_priority || (q->marker == NULL && q->inmem < q->vhost->broker->memory_window))
        return false;
    if (q->marker == NULL)
        marker_create(q);
    sb_buf_append(&q->spill, &sp, sizeof sp);
    q->ready_count++;
    q->ready_bytes += r->body.len;
    q->next_seq++;
    return true;
}

void
sb_broker_durable(sb_broker *b, uint64_t pos)
{
    sb_list *it, *tmp;

    sb_list_foreach_safe(it, tmp, &b->spilling)
        sb_broker__queue_spill(SB_CONTAINER_OF(it, sb_queue, spill_link));
}
