/* store.c - the loop-thread side of the store: appending records to the
 * current batch, handing batches to the commit thread (commit.c), taking
 * their results back, deleting dead segments, and reading records back.
 *
 * Invariants: positions (segment << 32 | end offset) only grow; the
 * active segment is never deleted; a segment is deleted only when it is
 * fully durable, has no live message and no segment it points into still
 * exists (FORMAT.md, "Deleting dead segments"). Everything here runs on
 * the loop thread; the workload is many small appends and removes, and a
 * commit per loop iteration.
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "store/crc32c.h"

/* ---- segments ---------------------------------------------------------- */

sb_store__seg *
sb_store__seg_find(sb_store *st, uint32_t seq)
{
    size_t lo = 0, hi = st->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->segs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < st->nsegs && st->segs[lo].seq == seq ? &st->segs[lo] : NULL;
}

/* Segments are added in increasing seq order, so this appends. */
sb_store__seg *
sb_store__seg_add(sb_store *st, uint32_t seq)
{
    sb_assert(st->nsegs == 0 || st->segs[st->nsegs - 1].seq < seq);
    if (st->nsegs == st->segs_cap) {
        st->segs_cap = st->segs_cap ? st->segs_cap * 2 : 16;
        st->segs = sb_realloc(st->segs, st->segs_cap * sizeof *st->segs);
    }
    sb_store__seg *s = &st->segs[st->nsegs++];
    memset(s, 0, sizeof *s);
    s->seq = seq;
    s->read_fd = -1;
    return s;
}

void
sb_store__seg_add_target(sb_store__seg *s, uint32_t target)
{
    if (target == s->seq)
        return;
    for (size_t i = s->ntargets; i-- > 0;)
        if (s->targets[i] == target)
            return;
    if (s->ntargets == s->targets_cap) {
        s->targets_cap = s->targets_cap ? s->targets_cap * 2 : 4;
        s->targets = sb_realloc(s->targets, s->targets_cap * sizeof *s->targets);
    }
    s->targets[s->ntargets++] = target;
}

void
sb_store__seg_drop(sb_store *st, sb_store__seg *s)
{
    if (s->read_fd >= 0)
        st->ops->close(st->ops->ctx, s->read_fd);
    sb_free(s->targets);
    size_t i = (size_t)(s - st->segs);
    memmove(s, s + 1, (st->nsegs - i - 1) * sizeof *s);
    st->nsegs--;
}

static bool
seg_deletable(sb_store *st, const sb_store__seg *s)
{
    if (s->is_deleting || s->msgs != s->removed || s->durable_bytes == 0 ||
        s->durable_bytes != s->bytes || (!st->need_roll && s->seq == st->active_seq))
        return false;
    for (size_t i = 0; i < s->ntargets; i++)
        if (sb_store__seg_find(st, s->targets[i]) != NULL)
            return false;
    return true;
}

/* Schedules deletion of every dead segment into the current batch. */
static void
collect_dead(sb_store *st)
{
    sb_store__batch *b = st->cur;

    for (size_t i = 0; i < st->nsegs; i++) {
        sb_store__seg *s = &st->segs[i];
        if (!seg_deletable(st, s))
            continue;
        if (b->ndels == b->dels_cap) {
            b->dels_cap = b->dels_cap ? b->dels_cap * 2 : 8;
            b->dels = sb_realloc(b->dels, b->dels_cap * sizeof *b->dels);
            b->del_rc = sb_realloc(b->del_rc, b->dels_cap * sizeof *b->del_rc);
        }
        b->dels[b->ndels++] = s->seq;
        s->is_deleting = true;
        if (s->read_fd >= 0)
            st->ops->close(st->ops->ctx, s->read_fd);
        s->read_fd = -1;
    }
}

/* ---- appending ----------------------------------------------------------- */

static sb_store__span *
span_push(sb_store__batch *b, uint32_t seq, bool is_new, uint64_t file_off)
{
    if (b->nspans == b->spans_cap) {
        b->spans_cap = b->spans_cap ? b->spans_cap * 2 : 4;
        b->spans = sb_realloc(b->spans, b->spans_cap * sizeof *b->spans);
        b->fds = sb_realloc(b->fds, b->spans_cap * sizeof *b->fds);
    }
    sb_store__span *s = &b->spans[b->nspans++];
    *s = (sb_store__span){ .seq = seq, .is_new = is_new, .file_off = file_off,
                           .buf_off = b->data.len, .len = 0 };
    return s;
}

/* Chooses where a record of reclen bytes goes, rolling to a new segment
 * when the active one would pass seg_max, and returns its buffer space. */
static uint8_t *
place(sb_store *st, size_t reclen, uint32_t *seq, uint32_t *off)
{
    sb_store__batch *b = st->cur;

    if (st->need_roll ||
        (st->active_off > SB_SEG_HDR_SIZE && st->active_off + reclen > st->seg_max)) {
        st->active_seq = st->next_seq++;
        st->active_off = SB_SEG_HDR_SIZE;
        st->need_roll = false;
        sb_store__seg *s = sb_store__seg_add(st, st->active_seq);
        s->bytes = SB_SEG_HDR_SIZE;
        st->stats.disk_bytes += SB_SEG_HDR_SIZE;
        span_push(b, st->active_seq, true, SB_SEG_HDR_SIZE);
    } else if (b->nspans == 0 || b->spans[b->nspans - 1].seq != st->active_seq) {
        span_push(b, st->active_seq, false, st->active_off);
    }
    *seq = st->active_seq;
    *off = (uint32_t)st->active_off;
    st->active_off += reclen;
    st->segs[st->nsegs - 1].bytes += reclen;
    st->stats.disk_bytes += reclen;
    b->spans[b->nspans - 1].len += reclen;
    st->pending_pos = b->end_pos = sb_store__pos(*seq, st->active_off);
    return sb_buf_extend(&b->data, reclen);
}

int
sb_store_append(sb_store *st, uint32_t queue_id, uint64_t msg_id, sb_str hdr, sb_str body,
                sb_store_loc *loc)
{
    if (hdr.len > SB_STORE_MAX_RECORD || body.len > SB_STORE_MAX_RECORD - hdr.len)
        return -EMSGSIZE;
    size_t payload = SB_REC_MSG_FIXED + hdr.len + body.len;
    size_t reclen = SB_REC_HDR_SIZE + payload;
    if (st->opts.disk_limit_bytes && st->stats.disk_bytes + reclen > st->opts.disk_limit_bytes)
        return -ENOSPC;
    uint8_t *r = place(st, reclen, &loc->segment, &loc->offset);
    uint8_t *p = r + SB_REC_HDR_SIZE;
    sb_store__put32(p, queue_id);
    sb_store__put64(p + 4, msg_id);
    sb_store__put32(p + 12, (uint32_t)hdr.len);
    if (hdr.len)
        memcpy(p + SB_REC_MSG_FIXED, hdr.p, hdr.len);
    if (body.len)
        memcpy(p + SB_REC_MSG_FIXED + hdr.len, body.p, body.len);
    sb_store__rec_seal(r, SB_REC_MESSAGE, (uint32_t)payload);
    loc->pos = st->pending_pos;
    st->segs[st->nsegs - 1].msgs++;
    st->cur->nmsgs++;
    return 0;
}

static void
append_ref(sb_store *st, uint8_t type, uint32_t queue_id, uint64_t msg_id, uint32_t tseg,
           uint32_t toff)
{
    uint32_t seq, off;
    uint8_t *r = place(st, SB_REC_HDR_SIZE + SB_REC_REF_SIZE, &seq, &off);
    uint8_t *p = r + SB_REC_HDR_SIZE;

    sb_store__put32(p, queue_id);
    sb_store__put64(p + 4, msg_id);
    sb_store__put32(p + 12, tseg);
    sb_store__put32(p + 16, toff);
    sb_store__rec_seal(r, type, SB_REC_REF_SIZE);
    sb_store__seg_add_target(&st->segs[st->nsegs - 1], tseg);
}

/* True if msg was reported lost by a failed commit. */
static bool
is_lost(const sb_store *st, const sb_store_loc *msg)
{
    for (size_t i = 0; i < st->nlost; i++)
        if (msg->pos > st->lost[i].from && msg->pos <= st->lost[i].to)
            return true;
    return false;
}

int
sb_store_remove(sb_store *st, uint32_t queue_id, uint64_t msg_id, const sb_store_loc *msg)
{
    sb_store__seg *s = sb_store__seg_find(st, msg->segment);

    if (s == NULL || is_lost(st, msg))
        return 0;
    sb_assert(s->removed < s->msgs);
    s->removed++;
    append_ref(st, SB_REC_REMOVE, queue_id, msg_id, msg->segment, msg->offset);
    return 0;
}

int
sb_store_mark_delivered(sb_store *st, uint32_t queue_id, uint64_t msg_id,
                        const sb_store_loc *msg)
{
    if (sb_store__seg_find(st, msg->segment) == NULL || is_lost(st, msg))
        return 0;
    append_ref(st, SB_REC_DELIVERED, queue_id, msg_id, msg->segment, msg->offset);
    return 0;
}

/* ---- commit results ------------------------------------------------------ */

int
sb_store_commit_async(sb_store *st)
{
    if (st->inflight != NULL) {
        st->want_commit = true;
        return 0;
    }
    if (sb_store__batch_empty(st->cur))
        return 0;
    st->want_commit = false;
    st->inflight = st->cur;
    st->cur = st->spare;
    st->spare = NULL;
    sb_store__batch_reset(st->cur);
    pthread_mutex_lock(&st->mu);
    st->work = st->inflight;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static void
finish_deletes(sb_store *st, sb_store__batch *b)
{
    for (size_t i = 0; i < b->ndels; i++) {
        sb_store__seg *s = sb_store__seg_find(st, b->dels[i]);
        if (s == NULL)
            continue;
        if (b->del_rc[i] < 0) {
            /* Kept, so the REMOVEs that killed its messages stay pinned. */
            sb_log(SB_LOG_WARN, "store", "SB-STORE-DELETE-FAIL: segment %u: %s; will retry",
                   s->seq, strerror(-b->del_rc[i]));
            s->is_deleting = false;
            continue;
        }
        st->stats.disk_bytes -= s->bytes;
        st->stats.deleted_count++;
        sb_store__seg_drop(st, s);
    }
}

/* Walks the records of b, keeping REMOVE/DELIVERED records whose target
 * survives (copied into keep) and undoing the counts of the rest. */
static void
undo_batch(sb_store *st, sb_store__batch *b, sb_buf *keep)
{
    size_t off = 0;

    while (off < b->data.len) {
        const uint8_t *r = b->data.data + off;
        uint32_t len = sb_store__get32(r);
        const uint8_t *p = r + SB_REC_HDR_SIZE;
        off += SB_REC_HDR_SIZE + len;
        if (r[8] != SB_REC_MESSAGE) {
            uint64_t tpos = sb_store__pos(sb_store__get32(p + 12), sb_store__get32(p + 16));
            sb_store__seg *t = sb_store__seg_find(st, sb_store__get32(p + 12));
            if (tpos < st->durable_pos && t != NULL) {
                sb_buf_append(keep, r, SB_REC_HDR_SIZE + len);
                continue;
            }
            if (r[8] == SB_REC_REMOVE && t != NULL)
                t->removed--;
        }
    }
}

static void
fail_pending(sb_store *st, int err)
{
    sb_buf keep = SB_BUF_INIT;
    sb_store__batch *b = st->inflight;

    undo_batch(st, b, &keep);
    undo_batch(st, st->cur, &keep);
    /* Forget every segment that never reached the disk and cut the rest
     * back to what is durable; MESSAGE counts come from what is left. */
    for (size_t i = st->nsegs; i-- > 0;) {
        sb_store__seg *s = &st->segs[i];
        if (s->bytes == s->durable_bytes)
            continue;
        st->stats.disk_bytes -= s->bytes - s->durable_bytes;
        s->bytes = s->durable_bytes;
        if (s->durable_bytes == 0)
            sb_store__seg_drop(st, s);
    }
    /* MESSAGE records that are lost: recount from positions. */
    size_t off = 0;
    for (size_t k = 0; k < 2; k++) {
        sb_store__batch *x = k == 0 ? b : st->cur;
        for (size_t i = 0; i < x->nspans; i++) {
            sb_store__span *sp = &x->spans[i];
            sb_store__seg *s = sb_store__seg_find(st, sp->seq);
            for (off = sp->buf_off; s != NULL && off < sp->buf_off + sp->len;) {
                const uint8_t *r = x->data.data + off;
                off += SB_REC_HDR_SIZE + sb_store__get32(r);
                if (r[8] == SB_REC_MESSAGE)
                    s->msgs--;
            }
        }
    }
    if (st->nlost == st->lost_cap) {
        st->lost_cap = st->lost_cap ? st->lost_cap * 2 : 4;
        st->lost = sb_realloc(st->lost, st->lost_cap * sizeof *st->lost);
    }
    st->lost[st->nlost++] = (sb_store__range){ st->durable_pos, st->pending_pos };
    uint64_t lost_to = st->pending_pos;
    sb_store__batch *dels = st->cur;
    st->cur = sb_store__batch_new();
    for (size_t i = 0; i < dels->ndels; i++) {
        sb_store__seg *s = sb_store__seg_find(st, dels->dels[i]);
        if (s != NULL)
            s->is_deleting = false;
    }
    sb_store__batch_free(dels);
    st->need_roll = true;
    for (size_t o = 0; o < keep.len;) {
        const uint8_t *r = keep.data + o, *p = r + SB_REC_HDR_SIZE;
        append_ref(st, r[8], sb_store__get32(p), sb_store__get64(p + 4),
                   sb_store__get32(p + 12), sb_store__get32(p + 16));
        o += SB_REC_HDR_SIZE + sb_store__get32(r);
    }
    sb_buf_free(&keep);
    sb_log(SB_LOG_ERROR, "store",
           "SB-STORE-COMMIT-FAIL: %s: %s; records not yet durable are lost, later writes go "
           "to a new segment", st->dir, strerror(-err));
    if (st->opts.on_durable)
        st->opts.on_durable(st->opts.durable_arg, lost_to, err);
}

static void
count_commit(sb_store_stats *s, const sb_store__batch *b)
{
    static const uint64_t us_bounds[] = SB_STORE_COMMIT_US_BOUNDS;
    static const uint64_t msg_bounds[] = SB_STORE_BATCH_MSG_BOUNDS;
    size_t i = 0, j = 0;

    while (b->write_us > us_bounds[i])
        i++;
    while (b->nmsgs > msg_bounds[j])
        j++;
    s->commit_us_hist[i]++;
    s->commit_msgs_hist[j]++;
    s->commit_us_sum += b->write_us;
    s->commit_msgs_sum += b->nmsgs;
}

/* Takes back a finished batch, if any. Returns its error, or 1 if none. */
static int
take_done(sb_store *st)
{
    pthread_mutex_lock(&st->mu);
    sb_store__batch *b = st->done;
    st->done = NULL;
    pthread_mutex_unlock(&st->mu);
    if (b == NULL)
        return 1;
    sb_assert(b == st->inflight);
    int err = b->err;
    finish_deletes(st, b);
    if (err == 0) {
        for (size_t i = 0; i < b->nspans; i++) {
            sb_store__seg *s = sb_store__seg_find(st, b->spans[i].seq);
            if (s != NULL)
                s->durable_bytes = b->spans[i].file_off + b->spans[i].len;
        }
        st->stats.commit_count++;
        if (b->nspans > 0)
            count_commit(&st->stats, b);
        if (b->nspans > 0) {
            st->durable_pos = b->end_pos;
            if (st->opts.on_durable)
                st->opts.on_durable(st->opts.durable_arg, st->durable_pos, 0);
        }
    } else {
        fail_pending(st, err);
    }
    st->inflight = NULL;
    sb_store__batch_reset(b);
    if (st->spare == NULL)
        st->spare = b;
    else
        sb_store__batch_free(b);
    return err;
}

int
sb_store_poll(sb_store *st)
{
    uint64_t n;

    while (read(st->efd, &n, sizeof n) > 0)
        ;
    if (take_done(st) == 1)
        return 0;
    collect_dead(st);
    if (st->want_commit || st->cur->ndels > 0)
        sb_store_commit_async(st);
    return 0;
}

int
sb_store_sync(sb_store *st)
{
    int err = 0;

    for (;;) {
        if (st->inflight == NULL) {
            if (sb_store__batch_empty(st->cur))
                break;
            sb_store_commit_async(st);
        }
        pthread_mutex_lock(&st->mu);
        while (st->done == NULL)
            pthread_cond_wait(&st->cv_done, &st->mu);
        pthread_mutex_unlock(&st->mu);
        int rc = take_done(st);
        if (rc < 0) {
            err = rc;
            break;
        }
        collect_dead(st);
    }
    return err;
}

/* ---- reading, stats, lifetime ------------------------------------------- */

int
sb_store_read(sb_store *st, const sb_store_loc *loc, sb_store_msg *m, uint8_t **buf)
{
    sb_store__seg *s = sb_store__seg_find(st, loc->segment);
    uint8_t h[SB_REC_HDR_SIZE];
    char path[4096];

    if (s == NULL)
        return -ENOENT;
    if (loc->pos > st->durable_pos)
        return -EAGAIN;
    if (s->read_fd < 0) {
        sb_store__seg_name(path, sizeof path, st->dir, s->seq);
        if ((s->read_fd = st->ops->open(st->ops->ctx, path, O_RDONLY, 0)) < 0) {
            int rc = s->read_fd;
            s->read_fd = -1;
            return rc;
        }
    }
    ssize_t got = sb_file_pread_all(st->ops, s->read_fd, h, sizeof h, loc->offset);
    if (got < 0)
        return (int)got;
    uint32_t len = sb_store__get32(h);
    if (got != (ssize_t)sizeof h || h[8] != SB_REC_MESSAGE || len < SB_REC_MSG_FIXED ||
        len > SB_STORE_MAX_RECORD + SB_REC_MSG_FIXED || loc->offset + SB_REC_HDR_SIZE + (uint64_t)len > s->bytes)
        return -EILSEQ;
    uint8_t *p = sb_try_malloc(SB_REC_HDR_SIZE + (size_t)len);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, h, sizeof h);
    got = sb_file_pread_all(st->ops, s->read_fd, p + SB_REC_HDR_SIZE, len,
                            loc->offset + SB_REC_HDR_SIZE);
    uint32_t hlen = sb_store__get32(p + SB_REC_HDR_SIZE + 12);
    if (got != (ssize_t)len || sb_store__get32(p + 4) != sb_store__rec_crc(p, len) ||
        hlen > len - SB_REC_MSG_FIXED) {
        sb_free(p);
        return got < 0 ? (int)got : -EILSEQ;
    }
    const uint8_t *q = p + SB_REC_HDR_SIZE;
    *m = (sb_store_msg){
        .queue_id = sb_store__get32(q),
        .msg_id = sb_store__get64(q + 4),
        .hdr = sb_str_make(q + SB_REC_MSG_FIXED, hlen),
        .body = sb_str_make(q + SB_REC_MSG_FIXED + hlen, len - SB_REC_MSG_FIXED - hlen),
        .loc = *loc,
    };
    *buf = p;
    return 0;
}

uint64_t
sb_store_durable_pos(const sb_store *st)
{
    return st->durable_pos;
}

int
sb_store_fd(const sb_store *st)
{
    return st->efd;
}

void
sb_store_get_stats(const sb_store *st, sb_store_stats *out)
{
    *out = st->stats;
    out->segment_count = st->nsegs;
    out->live_count = 0;
    for (size_t i = 0; i < st->nsegs; i++)
        out->live_count += st->segs[i].msgs - st->segs[i].removed;
}

static void
store_free(sb_store *st)
{
    sb_store__commit_stop(st);
    while (st->nsegs > 0)
        sb_store__seg_drop(st, &st->segs[st->nsegs - 1]);
    sb_free(st->segs);
    sb_free(st->lost);
    sb_store__batch_free(st->cur);
    sb_store__batch_free(st->spare);
    sb_store__batch_free(st->inflight);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    pthread_cond_destroy(&st->cv_done);
    sb_free(st->dir);
    sb_free(st);
}

int
sb_store_open(const char *dir, const sb_store_opts *opts, sb_store **out)
{
    sb_store *st = sb_calloc(1, sizeof *st);
    int rc;

    st->dir = sb_strdup(dir);
    if (opts)
        st->opts = *opts;
    st->ops = st->opts.ops ? st->opts.ops : &sb_file_posix_ops;
    st->seg_max = st->opts.segment_max_bytes ? st->opts.segment_max_bytes
                                             : SB_STORE_SEGMENT_DEFAULT;
    if (st->seg_max < SB_STORE_SEGMENT_MIN)
        st->seg_max = SB_STORE_SEGMENT_MIN;
    if (st->seg_max > SB_STORE_SEGMENT_MAX)
        st->seg_max = SB_STORE_SEGMENT_MAX;
    st->efd = -1;
    st->wfd = -1;
    st->cur = sb_store__batch_new();
    st->spare = sb_store__batch_new();
    st->need_roll = true;
    st->next_seq = 1;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_cond_init(&st->cv_done, NULL);
    if ((rc = sb_store__recover(st)) < 0 || (rc = sb_store__commit_start(st)) < 0) {
        store_free(st);
        return rc;
    }
    collect_dead(st);
    sb_store_commit_async(st);
    *out = st;
    return 0;
}

int
sb_store_close(sb_store *st)
{
    if (st == NULL)
        return 0;
    int rc = sb_store_sync(st);
    store_free(st);
    return rc;
}
