/* queue_spill.c - queues larger than memory (issue 3).
 *
 * A queue keeps at most memory_window ready messages in RAM. Beyond that
 * a marker entry (msg NULL) is put at the tail of the ready list; the
 * messages behind it leave RAM, as 12-byte sb_spilled records, into the
 * queue's spill FIFO, which stands in the ready order exactly where the
 * marker is. There are two kinds, told apart by SB_SPILL_PAGED:
 *  - a persistent message of a durable queue whose log record is durable,
 *    has no expiry and was not redelivered is simply dropped from RAM: its
 *    log record is read back (sb_spilled names its segment and offset);
 *  - a message with no log record (transient, or in a non-durable queue)
 *    is written to a paging file (queue_page.c, store/pagefile.c), with its
 *    expiry; those files are not part of the log and never survive a
 *    restart, as RabbitMQ's paged transient messages do not.
 * A persistent message whose record is not durable yet stops the spilling
 * of those behind it until it is (sb_broker_durable runs this again); one
 * that has an expiry or was redelivered stays in RAM, and so do those
 * behind it until it reaches the marker (the log has no room for its
 * expiry). Transient messages behind the marker are paged out before the
 * loop sleeps, so the writes are batched. When the head of the queue
 * reaches the marker, a batch is read back (synchronous preads: the files
 * are recent, usually in the page cache). If a paging file cannot be
 * written, messages stay in RAM (logged once). Priority queues keep
 * everything in RAM (the order is not FIFO).
 *
 * Expiry: a paged-out message keeps its expiry (SB_SPILL_EXPIRES); when
 * the marker is at the head and the first spilled message has one, the
 * TTL code pages a batch in to look (queue_ttl.c), so messages expire
 * when due at the head as they do in RAM, queue TTLs included.
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

typedef enum spill_kind { SPILL_NONE, SPILL_LOG, SPILL_PAGE } spill_kind;

/* How e can leave RAM: see the header comment. */
static spill_kind
spill_kind_of(const sb_queue *q, const sb_qentry *e)
{
    sb_broker *b = q->vhost->broker;

    if (e->msg->body_len > SB_SPILL_LEN_MAX)
        return SPILL_NONE;
    if (e->ref != NULL)
        return b->store != NULL && e->ref->loc.pos <= sb_store_durable_pos(b->store) &&
                       !e->redelivered && e->expires_at == 0
                   ? SPILL_LOG
                   : SPILL_NONE;
    return sb_broker__page_writable(b) ? SPILL_PAGE : SPILL_NONE;
}

void
sb_broker__queue_spill(sb_queue *q)
{
    sb_broker *b = q->vhost->broker;
    sb_list *it;

    if (q->cfg.max_priority ||
        (b->pager == NULL && (!sb_broker__queue_persists(q) || b->store == NULL)))
        return;
    if (q->marker == NULL) {
        if (q->inmem <= b->memory_window)
            return;
        marker_create(q);
    }
    while ((it = q->marker->link.next) != &q->ready) {
        sb_qentry *e = SB_CONTAINER_OF(it, sb_qentry, link);
        spill_kind k = spill_kind_of(q, e);
        sb_spilled sp;
        if (k == SPILL_NONE)
            break;
        if (k == SPILL_LOG)
            sp = (sb_spilled){ e->ref->loc.segment, e->ref->loc.offset,
                               (uint32_t)e->msg->body_len |
                                   (e->marked ? SB_SPILL_DELIVERED : 0) };
        else if (sb_broker__page_out(b, e, &sp) < 0)
            break;  /* stays in RAM; the paging file logged why */
        sb_buf_append(&q->spill, &sp, sizeof sp);
        sb_list_remove(&e->link);
        q->inmem--;
        sb_msg_unref(e->msg);
        sb_free(e->ref);
        sb_free(e);
    }
}

bool
sb_broker__spill_front_expires(const sb_queue *q)
{
    sb_spilled sp;

    if (q->marker == NULL || spill_count(q) == 0)
        return false;
    memcpy(&sp, q->spill.data + q->spill_head, sizeof sp);
    return (sp.len_flags & SB_SPILL_EXPIRES) != 0;
}

/* One spilled message read back: a new reference, or NULL (logged: lost). */
static sb_msg *
read_back(sb_queue *q, const sb_spilled *sp, sb_store_loc *loc, uint64_t *msg_id,
          uint64_t *expires_at)
{
    sb_broker *b = q->vhost->broker;
    uint8_t *buf = NULL;
    sb_store_msg r;
    sb_msg *m = NULL;
    int rc;

    if (sp->len_flags & SB_SPILL_PAGED) {
        if ((m = sb_broker__page_in(b, sp, expires_at, &rc)) == NULL)
            sb_log(SB_LOG_ERROR, "store", "queue '%s': a paged-out message could not be read "
                   "back from paging file %u offset %u (%s); it is lost", q->name, sp->segment,
                   sp->offset, strerror(-rc));
        return m;
    }
    *loc = (sb_store_loc){ .pos = 0, .segment = sp->segment, .offset = sp->offset };
    rc = b->store ? sb_store_read(b->store, loc, &r, &buf) : -ENOENT;
    if (rc == 0) {
        m = sb_broker__msg_from_record(b, &r);
        *msg_id = r.msg_id;
    }
    if (m == NULL)
        sb_log(SB_LOG_ERROR, "store", "queue '%s': a message could not be read back from "
               "segment %u offset %u (%s); it is lost", q->name, sp->segment, sp->offset,
               rc < 0 ? strerror(-rc) : "unreadable record");
    sb_free(buf);
    return m;
}

/* Reads up to PAGE_IN_BATCH spilled messages back, in front of the marker. */
static void
page_in(sb_queue *q)
{
    for (int n = 0; n < PAGE_IN_BATCH && spill_count(q) > 0; n++) {
        uint64_t msg_id = 0, expires_at = 0;
        sb_store_loc loc;
        sb_spilled sp;
        sb_qentry *e;
        sb_msg *m;

        memcpy(&sp, q->spill.data + q->spill_head, sizeof sp);
        q->spill_head += sizeof sp;
        if ((m = read_back(q, &sp, &loc, &msg_id, &expires_at)) == NULL) {
            q->ready_count--;
            q->ready_bytes -= SB_SPILL_LEN(sp.len_flags);
            continue;
        }
        e = sb_broker__queue_unspill(q, m, (sp.len_flags & SB_SPILL_PAGED) ? NULL : &loc, msg_id,
                                     sp.len_flags & SB_SPILL_DELIVERED);
        if (sp.len_flags & SB_SPILL_PAGED)
            e->expires_at = expires_at;
        sb_msg_unref(m);
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
    sb_broker *b = q->vhost->broker;
    uint32_t n = spill_count(q);

    if (q->marker == NULL)
        return 0;
    for (size_t off = q->spill_head; off < q->spill.len; off += sizeof(sb_spilled)) {
        sb_spilled sp;
        memcpy(&sp, q->spill.data + off, sizeof sp);
        q->ready_bytes -= SB_SPILL_LEN(sp.len_flags);
        if (sp.len_flags & SB_SPILL_PAGED) {
            sb_broker__page_release(b, &sp);  /* even at shutdown: files go with their last */
        } else if (!q->vhost->closing && b->store != NULL) {
            sb_store_loc loc = { .pos = 0, .segment = sp.segment, .offset = sp.offset };
            sb_store_remove(b->store, q->id, 0, &loc);
            b->store_dirty = true;
        }
    }
    q->ready_count -= n;
    marker_remove(q);
    return n;
}

bool
sb_broker__queue_restore_spilled(sb_queue *q, const sb_store_msg *r)
{
    sb_spilled sp = { r->loc.segment, r->loc.offset,
                      (uint32_t)r->body.len | (r->was_delivered ? SB_SPILL_DELIVERED : 0) };

    if (q->cfg.max_priority || r->body.len > SB_SPILL_LEN_MAX ||
        (q->marker == NULL && q->inmem < q->vhost->broker->memory_window))
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

void
sb_broker__spill_before_sleep(sb_broker *b)
{
    sb_list *it, *tmp;

    if (b->pager == NULL)
        return;
    sb_list_foreach_safe(it, tmp, &b->spilling)
        sb_broker__queue_spill(SB_CONTAINER_OF(it, sb_queue, spill_link));
    sb_broker__page_flush(b);
}
