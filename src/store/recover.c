/* recover.c - replaying the segments at open.
 *
 * Pass 1 reads every segment in order, checks headers, truncates torn
 * tails, skips corrupt regions and unknown records, and builds a table of
 * MESSAGE records (position and state only: no bodies) which REMOVE and
 * DELIVERED records update; it also rebuilds the per-segment counts that
 * decide deletion. Pass 2 reads the segments again and hands each live
 * message to on_recover in log order, so memory stays at 16 bytes per
 * message record, not per byte. Runs on the loop thread, inside
 * sb_store_open, before the commit thread starts.
 */
#include "store/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/log.h"
#include "store/crc32c.h"

enum { E_DEAD = 1, E_DELIVERED = 2 };

typedef struct entry {
    uint64_t pos;   /* segment << 32 | start offset of the MESSAGE record */
    uint8_t state;  /* E_* bits */
} entry;

typedef struct replay {
    sb_store *st;
    entry *e;
    size_t n, cap;
    size_t cursor;  /* pass 2: next entry to match */
    int pass;       /* 1 or 2 */
    bool unknown_logged;
} replay;

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment sequence numbers in dir, sorted; creates dir if it
 * does not exist. */
static int
list_segments(const char *dir, uint32_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    size_t cap = 0;
    struct dirent *de;
    uint32_t seq;

    *out = NULL;
    *n = 0;
    if (d == NULL && errno == ENOENT) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -errno;
        d = opendir(dir);
    }
    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (sb_store__seg_parse_name(de->d_name, &seq) < 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = sb_realloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = seq;
    }
    closedir(d);
    if (*n > 0)
        qsort(*out, *n, sizeof **out, cmp_u32);
    return 0;
}

static entry *
entry_find(replay *rp, uint64_t pos)
{
    size_t lo = 0, hi = rp->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rp->e[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rp->n && rp->e[lo].pos == pos ? &rp->e[lo] : NULL;
}

static void
corrupt(replay *rp, const char *path, uint64_t off, uint64_t len, const char *why)
{
    if (rp->pass != 1)
        return;
    rp->st->stats.corrupt_count++;
    sb_log(SB_LOG_ERROR, "store",
           "SB-STORE-CORRUPT %s offset %llu length %llu: %s; skipped, the broker starts "
           "without it", path, (unsigned long long)off, (unsigned long long)len, why);
}

static void
pass1_record(replay *rp, sb_store__seg *s, const char *path, uint64_t off,
             const sb_store__rec *r)
{
    const uint8_t *p = r->payload;

    if (r->type == SB_REC_MESSAGE) {
        if (r->len < SB_REC_MSG_FIXED || sb_store__get32(p + 12) > r->len - SB_REC_MSG_FIXED) {
            corrupt(rp, path, off, SB_REC_HDR_SIZE + r->len, "message record lengths disagree");
            return;
        }
        if (rp->n == rp->cap) {
            rp->cap = rp->cap ? rp->cap * 2 : 1024;
            rp->e = sb_realloc(rp->e, rp->cap * sizeof *rp->e);
        }
        rp->e[rp->n++] = (entry){ sb_store__pos(s->seq, off), 0 };
        s->msgs++;
        return;
    }
    if (r->type != SB_REC_REMOVE && r->type != SB_REC_DELIVERED) {
        rp->st->stats.unknown_count++;
        if (!rp->unknown_logged)
            sb_log(SB_LOG_WARN, "store",
                   "SB-STORE-UNKNOWN %s offset %llu: record type %u is unknown to this "
                   "version; skipped (further ones in this file are not logged)",
                   path, (unsigned long long)off, r->type);
        rp->unknown_logged = true;
        return;
    }
    if (r->len < SB_REC_REF_SIZE) {
        corrupt(rp, path, off, SB_REC_HDR_SIZE + r->len, "reference record too short");
        return;
    }
    uint32_t tseg = sb_store__get32(p + 12);
    sb_store__seg_add_target(s, tseg);
    entry *e = entry_find(rp, sb_store__pos(tseg, sb_store__get32(p + 16)));
    if (e == NULL || (e->state & E_DEAD))
        return;
    if (r->type == SB_REC_DELIVERED) {
        e->state |= E_DELIVERED;
        return;
    }
    e->state |= E_DEAD;
    sb_store__seg *t = sb_store__seg_find(rp->st, tseg);
    if (t != NULL)
        t->removed++;
}

static void
pass2_record(replay *rp, sb_store__seg *s, uint64_t off, const sb_store__rec *r)
{
    uint64_t pos = sb_store__pos(s->seq, off);

    if (r->type != SB_REC_MESSAGE)
        return;
    while (rp->cursor < rp->n && rp->e[rp->cursor].pos < pos)
        rp->cursor++;
    if (rp->cursor == rp->n || rp->e[rp->cursor].pos != pos)
        return;
    entry *e = &rp->e[rp->cursor++];
    if ((e->state & E_DEAD) || rp->st->opts.on_recover == NULL)
        return;
    const uint8_t *p = r->payload;
    uint32_t hlen = sb_store__get32(p + 12);
    sb_store_msg m = {
        .queue_id = sb_store__get32(p),
        .msg_id = sb_store__get64(p + 4),
        .hdr = sb_str_make(p + SB_REC_MSG_FIXED, hlen),
        .body = sb_str_make(p + SB_REC_MSG_FIXED + hlen, r->len - SB_REC_MSG_FIXED - hlen),
        .loc = { .pos = sb_store__pos(s->seq, off + SB_REC_HDR_SIZE + r->len),
                 .segment = s->seq, .offset = (uint32_t)off },
        .was_delivered = (e->state & E_DELIVERED) != 0,
    };
    rp->st->opts.on_recover(rp->st->opts.recover_arg, &m);
}

/* Cuts the file at off: a crash tore the last write. */
static int
truncate_tail(replay *rp, sb_store__reader *rd, const char *path, uint64_t off)
{
    sb_store *st = rp->st;
    int rc;

    sb_log(SB_LOG_WARN, "store",
           "SB-STORE-TORN %s: %llu bytes after offset %llu are an incomplete write; "
           "truncated", path, (unsigned long long)(rd->size - off), (unsigned long long)off);
    st->stats.torn_count++;
    if ((rc = st->ops->ftruncate(st->ops->ctx, rd->fd, off)) < 0 ||
        (rc = st->ops->fsync(st->ops->ctx, rd->fd)) < 0)
        return rc;
    rd->size = off;
    return 0;
}

static int
scan_records(replay *rp, sb_store__seg *s, sb_store__reader *rd, const char *path)
{
    uint64_t off = SB_SEG_HDR_SIZE;
    sb_store__rec r;
    int rc;

    while (off < rd->size) {
        if ((rc = sb_store__read_rec(rd, off, &r)) < 0)
            return rc;
        if (rc == 0) {
            if (rp->pass == 1)
                pass1_record(rp, s, path, off, &r);
            else
                pass2_record(rp, s, off, &r);
            off += SB_REC_HDR_SIZE + r.len;
            continue;
        }
        uint64_t next = sb_store__resync(rd, off);
        if (next == 0)
            return rp->pass == 1 ? truncate_tail(rp, rd, path, off) : 0;
        corrupt(rp, path, off, next - off, "bad checksum or length");
        off = next;
    }
    return 0;
}

/* Checks a segment header. Returns 0 if good, 1 if the file is not a
 * usable segment but may be skipped (or removed, if newest), or -errno. */
static int
check_header(sb_store__reader *rd, uint32_t seq, const char *path)
{
    uint8_t h[SB_SEG_HDR_SIZE], zero[SB_SEG_HDR_SIZE] = { 0 };
    ssize_t got = sb_file_pread_all(rd->ops, rd->fd, h, sizeof h, 0);

    if (got < 0)
        return (int)got;
    if ((size_t)got < sizeof h || memcmp(h, zero, sizeof h) == 0)
        return 1;
    if (memcmp(h, SB_SEG_MAGIC, 8) != 0) {
        sb_log(SB_LOG_ERROR, "store",
               "SB-STORE-NOT-SEGMENT %s is not a switchboard segment (bad magic); refusing "
               "to open the store: move the file away", path);
        return -EINVAL;
    }
    uint32_t version = sb_store__get32(h + 8);
    if (version != SB_SEG_VERSION) {
        sb_log(SB_LOG_ERROR, "store",
               "SB-STORE-VERSION %s has format version %u; this build reads version %u only; "
               "refusing to open the store", path, version, SB_SEG_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (sb_store__get32(h + 28) != sb_store__crc32c(0, h, 28) ||
        sb_store__get64(h + 16) != seq)
        return 1;
    return 0;
}

static int
replay_segment(replay *rp, uint32_t seq, bool is_newest)
{
    sb_store *st = rp->st;
    char path[4096];
    sb_store__reader rd = { .ops = st->ops, .fd = -1 };
    int rc;

    sb_store__seg *s = sb_store__seg_find(st, seq);
    if (rp->pass == 2 && s == NULL)
        return 0;
    sb_store__seg_name(path, sizeof path, st->dir, seq);
    rd.fd = st->ops->open(st->ops->ctx, path, rp->pass == 1 ? O_RDWR : O_RDONLY, 0);
    if (rd.fd < 0)
        return rd.fd;
    if ((rc = st->ops->fsize(st->ops->ctx, rd.fd, &rd.size)) < 0)
        goto out;
    if (rp->pass == 1) {
        if ((rc = check_header(&rd, seq, path)) < 0)
            goto out;
        if (rc == 1 && is_newest) {
            sb_log(SB_LOG_WARN, "store", "SB-STORE-TORN %s: header incomplete (crash while "
                   "creating it); removed", path);
            st->stats.torn_count++;
            if ((rc = st->ops->unlink(st->ops->ctx, path)) == 0)
                rc = st->ops->fsync_dir(st->ops->ctx, st->dir);
            goto out;
        }
        if (rc == 1) {
            corrupt(rp, path, 0, rd.size, "segment header damaged; whole file skipped");
            rc = 0;
            goto out;
        }
        s = sb_store__seg_add(st, seq);
    }
    rp->unknown_logged = false;
    if ((rc = scan_records(rp, s, &rd, path)) < 0)
        goto out;
    s->bytes = s->durable_bytes = rd.size;
out:
    st->ops->close(st->ops->ctx, rd.fd);
    sb_store__reader_free(&rd);
    return rc;
}

int
sb_store__recover(sb_store *st)
{
    replay rp = { .st = st };
    uint32_t *seqs;
    size_t n;
    int rc;

    if ((rc = list_segments(st->dir, &seqs, &n)) < 0)
        return rc;
    for (rp.pass = 1; rp.pass <= 2; rp.pass++)
        for (size_t i = 0; i < n; i++)
            if ((rc = replay_segment(&rp, seqs[i], i + 1 == n)) < 0)
                goto out;
    st->next_seq = n > 0 ? seqs[n - 1] + 1 : 1;
    for (size_t i = 0; i < st->nsegs; i++)
        st->stats.disk_bytes += st->segs[i].bytes;
    if (st->nsegs > 0) {
        const sb_store__seg *last = &st->segs[st->nsegs - 1];
        st->durable_pos = st->pending_pos = sb_store__pos(last->seq, last->bytes);
    }
    sb_log(SB_LOG_INFO, "store", "%s: recovered %zu message records in %zu segments", st->dir,
           rp.n, st->nsegs);
out:
    sb_free(seqs);
    sb_free(rp.e);
    return rc;
}
