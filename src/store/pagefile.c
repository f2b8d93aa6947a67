/* pagefile.c - paging files (see pagefile.h; format in FORMAT.md).
 *
 * Files are kept in an array sorted by number; the last one is the file
 * being appended to while has_active is set. Only that file has
 * unwritten bytes: wbuf holds its bytes from wbuf_off on. A file is
 * deleted when its last live record is released, the active one too (its
 * buffer is dropped with it: everything in it is dead), so a queue that is
 * filled and drained leaves no file behind. Nothing is fsynced: after a
 * crash the files are garbage, removed at the next open.
 */
#include "store/pagefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/crc32c.h"

#define FRAME_BYTES 8                 /* u32 payload length, u32 CRC32C */
#define MAX_RECORD (1u << 30)         /* as the log's SB_STORE_MAX_RECORD */
#define SUFFIX ".page"

typedef struct pf_file {
    uint32_t no;
    int fd;
    uint32_t live;                    /* records not released */
    uint64_t size;                    /* bytes appended, buffered ones included */
} pf_file;

struct sb_pagefile {
    const sb_file_ops *ops;
    char *dir;
    uint32_t file_max;                /* bytes */
    uint32_t flush_bytes;             /* bytes */
    pf_file *files;                   /* ascending no */
    size_t nfiles, cap;
    bool has_active;                  /* files[nfiles - 1] is being appended to */
    uint32_t next_no;
    sb_buf wbuf;                      /* the active file's bytes from wbuf_off on */
    uint64_t wbuf_off;
    uint64_t live;                    /* records, all files */
    int err;                          /* 0, or why appends are refused until retry_at */
    uint64_t retry_at;                /* monotonic ms */
    bool failing;                     /* the failure was logged; its end will be */
};

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
file_path(const sb_pagefile *pf, uint32_t no, char *out, size_t len)
{
    snprintf(out, len, "%s/%010u" SUFFIX, pf->dir, no);
}

static pf_file *
find(const sb_pagefile *pf, uint32_t no)
{
    size_t lo = 0, hi = pf->nfiles;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pf->files[mid].no == no)
            return &pf->files[mid];
        if (pf->files[mid].no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool
is_active(const sb_pagefile *pf, const pf_file *f)
{
    return pf->has_active && f == &pf->files[pf->nfiles - 1];
}

static void
remove_file(sb_pagefile *pf, pf_file *f)
{
    char path[4096];
    size_t i = (size_t)(f - pf->files);

    if (is_active(pf, f)) {
        pf->has_active = false;
        sb_buf_reset(&pf->wbuf);  /* only dead records were in it */
        pf->wbuf_off = 0;
    }
    file_path(pf, f->no, path, sizeof path);
    pf->ops->close(pf->ops->ctx, f->fd);
    (void)pf->ops->unlink(pf->ops->ctx, path);
    memmove(&pf->files[i], &pf->files[i + 1], (pf->nfiles - i - 1) * sizeof *f);
    pf->nfiles--;
}

static int
fail(sb_pagefile *pf, int rc)
{
    if (!pf->failing)
        sb_log(SB_LOG_WARN, "store", "SB-PAGE-WRITE-FAIL cannot write paging files in %s: %s; "
               "messages past the memory window stay in RAM until a write works again "
               "(retried every %d ms)", pf->dir, strerror(-rc), SB_PAGEFILE_RETRY_MS);
    pf->failing = true;
    pf->err = rc;
    pf->retry_at = sb_clock_ms() + SB_PAGEFILE_RETRY_MS;
    return rc;
}

static void
succeeded(sb_pagefile *pf)
{
    if (pf->failing)
        sb_log(SB_LOG_INFO, "store", "paging files in %s can be written again", pf->dir);
    pf->failing = false;
    pf->err = 0;
}

/* Writes wbuf out; on failure keeps what was not written. */
static int
write_out(sb_pagefile *pf)
{
    pf_file *f;

    if (pf->wbuf.len == 0)
        return 0;
    f = &pf->files[pf->nfiles - 1];
    while (pf->wbuf.len > 0) {
        ssize_t w = pf->ops->pwrite(pf->ops->ctx, f->fd, pf->wbuf.data, pf->wbuf.len,
                                    pf->wbuf_off);
        if (w == -EINTR)
            continue;
        if (w <= 0)
            return fail(pf, w == 0 ? -EIO : (int)w);
        /* A short write (disk filling up) keeps the rest for the retry. */
        sb_buf_consume(&pf->wbuf, (size_t)w);
        pf->wbuf_off += (uint64_t)w;
    }
    succeeded(pf);
    return 0;
}

/* Retires the active file (deleted if nothing in it is live) and starts
 * the next one. */
static int
roll(sb_pagefile *pf)
{
    char path[4096];
    int rc, fd;

    if (pf->has_active) {
        if ((rc = write_out(pf)) < 0)
            return rc;
        pf->has_active = false;
        if (pf->files[pf->nfiles - 1].live == 0)
            remove_file(pf, &pf->files[pf->nfiles - 1]);
    }
    file_path(pf, pf->next_no, path, sizeof path);
    fd = pf->ops->open(pf->ops->ctx, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(pf, fd);
    if (pf->nfiles == pf->cap) {
        pf->cap = pf->cap ? pf->cap * 2 : 8;
        pf->files = sb_realloc(pf->files, pf->cap * sizeof *pf->files);
    }
    pf->files[pf->nfiles++] = (pf_file){ .no = pf->next_no++, .fd = fd };
    pf->has_active = true;
    pf->wbuf_off = 0;
    succeeded(pf);
    return 0;
}

bool
sb_pagefile_writable(sb_pagefile *pf)
{
    return pf->err == 0 || sb_clock_ms() >= pf->retry_at;
}

int
sb_pagefile_append(sb_pagefile *pf, const sb_str *parts, int n, sb_pagefile_loc *loc)
{
    uint8_t frame[FRAME_BYTES];
    uint32_t crc;
    size_t len = 0;
    pf_file *f;
    int rc;

    for (int i = 0; i < n; i++)
        len += parts[i].len;
    if (len > MAX_RECORD)
        return -EFBIG;
    if (pf->err != 0) {
        if (sb_clock_ms() < pf->retry_at)
            return pf->err;
        if ((rc = write_out(pf)) < 0)
            return rc;
    }
    f = pf->has_active ? &pf->files[pf->nfiles - 1] : NULL;
    /* A record over file_max gets a file of its own, so offsets fit 32 bits. */
    if (f == NULL || (f->size > 0 && f->size + FRAME_BYTES + len > pf->file_max)) {
        if ((rc = roll(pf)) < 0)
            return rc;
        f = &pf->files[pf->nfiles - 1];
    }
    put_le32(frame, (uint32_t)len);
    crc = sb_store__crc32c(0, frame, 4);
    for (int i = 0; i < n; i++)
        crc = sb_store__crc32c(crc, parts[i].p, parts[i].len);
    put_le32(frame + 4, crc);
    loc->file = f->no;
    loc->offset = (uint32_t)f->size;
    sb_buf_append(&pf->wbuf, frame, sizeof frame);
    for (int i = 0; i < n; i++)
        sb_buf_append_str(&pf->wbuf, parts[i]);
    f->size += FRAME_BYTES + len;
    f->live++;
    pf->live++;
    if (pf->wbuf.len >= pf->flush_bytes)
        (void)write_out(pf);  /* on failure the bytes stay buffered: nothing is lost */
    return 0;
}

/* Copies n bytes of f at off into dst: from the disk what was written,
 * from the buffer what was not. */
static int
read_at(sb_pagefile *pf, pf_file *f, uint64_t off, uint8_t *dst, size_t n)
{
    uint64_t disk_end = is_active(pf, f) ? pf->wbuf_off : f->size;
    size_t from_disk = off < disk_end ? (size_t)(disk_end - off < n ? disk_end - off : n) : 0;

    if (from_disk > 0) {
        ssize_t r = sb_file_pread_all(pf->ops, f->fd, dst, from_disk, off);
        if (r < 0)
            return (int)r;
        if ((size_t)r < from_disk)
            return -EILSEQ;  /* the file is shorter than what was written to it */
    }
    if (n > from_disk)
        memcpy(dst + from_disk, pf->wbuf.data + (off + from_disk - pf->wbuf_off), n - from_disk);
    return 0;
}

int
sb_pagefile_read(sb_pagefile *pf, sb_pagefile_loc loc, size_t hint, sb_buf *out)
{
    pf_file *f = find(pf, loc.file);
    uint64_t avail;
    size_t want, len;
    int rc;

    sb_buf_reset(out);
    if (f == NULL)
        return -ENOENT;
    if (loc.offset + (uint64_t)FRAME_BYTES > f->size)
        return -EILSEQ;
    avail = f->size - loc.offset;
    want = FRAME_BYTES + hint < avail ? FRAME_BYTES + hint : (size_t)avail;
    sb_buf_reserve(out, want);
    if ((rc = read_at(pf, f, loc.offset, out->data, want)) < 0)
        return rc;
    len = get_le32(out->data);
    if (FRAME_BYTES + (uint64_t)len > avail)
        return -EILSEQ;
    if (FRAME_BYTES + len > want) {
        sb_buf_reserve(out, FRAME_BYTES + len);
        rc = read_at(pf, f, loc.offset + want, out->data + want, FRAME_BYTES + len - want);
        if (rc < 0)
            return rc;
    }
    if (sb_store__crc32c(sb_store__crc32c(0, out->data, 4), out->data + FRAME_BYTES, len) !=
        get_le32(out->data + 4))
        return -EILSEQ;
    memmove(out->data, out->data + FRAME_BYTES, len);
    out->len = len;
    return 0;
}

void
sb_pagefile_release(sb_pagefile *pf, sb_pagefile_loc loc)
{
    pf_file *f = find(pf, loc.file);

    if (f == NULL || f->live == 0)
        return;
    f->live--;
    pf->live--;
    if (f->live == 0)
        remove_file(pf, f);
}

int
sb_pagefile_flush(sb_pagefile *pf)
{
    if (pf->err != 0 && sb_clock_ms() < pf->retry_at)
        return pf->err;
    return write_out(pf);
}

/* Paging files left by a crash (or a kill) hold messages that were not
 * meant to survive it: remove them. Other files are left alone. */
static void
remove_leftovers(sb_pagefile *pf)
{
    DIR *d = opendir(pf->dir);
    struct dirent *de;
    char path[4096];
    size_t n = 0;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= strlen(SUFFIX) || strcmp(de->d_name + l - strlen(SUFFIX), SUFFIX) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", pf->dir, de->d_name);
        if (pf->ops->unlink(pf->ops->ctx, path) == 0)
            n++;
    }
    closedir(d);
    if (n > 0)
        sb_log(SB_LOG_INFO, "store", "removed %zu paging files of a previous run from %s", n,
               pf->dir);
}

int
sb_pagefile_open(const char *dir, const sb_pagefile_opts *o, sb_pagefile **out)
{
    sb_pagefile *pf;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    pf = sb_calloc(1, sizeof *pf);
    pf->ops = o && o->ops ? o->ops : &sb_file_posix_ops;
    pf->dir = sb_strdup(dir);
    pf->file_max = o && o->file_max_bytes ? o->file_max_bytes : SB_PAGEFILE_FILE_DEFAULT;
    pf->flush_bytes = o && o->flush_bytes ? o->flush_bytes : SB_PAGEFILE_FLUSH_DEFAULT;
    pf->next_no = 1;
    remove_leftovers(pf);
    *out = pf;
    return 0;
}

void
sb_pagefile_close(sb_pagefile *pf)
{
    if (pf == NULL)
        return;
    while (pf->nfiles > 0)
        remove_file(pf, &pf->files[pf->nfiles - 1]);
    sb_buf_free(&pf->wbuf);
    sb_free(pf->files);
    sb_free(pf->dir);
    sb_free(pf);
}

void
sb_pagefile_get_stats(const sb_pagefile *pf, sb_pagefile_stats *out)
{
    out->files = (uint32_t)pf->nfiles;
    out->live = pf->live;
    out->buffered_bytes = pf->wbuf.len;
    out->err = pf->err;
}
