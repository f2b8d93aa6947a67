/* commit.c - group commit: the commit thread writes and fsyncs batches.
 *
 * The loop thread fills a batch (store.c) and hands it over in `work`;
 * this thread writes every span, fsyncs every file it wrote, fsyncs the
 * directory if it created a file, then unlinks the segments the batch
 * deletes, and puts the batch in `done` and bumps the eventfd. One batch
 * is in flight at a time; records appended meanwhile wait in the next
 * one, so one fsync covers everything that arrived during the previous
 * (Redis beforeSleep does the same with its AOF).
 *
 * Failure: if any write or sync fails, every file the batch touched is cut
 * back to where the batch began (new files are removed), so bytes that
 * were durable before stay exactly as they were. The thread then forgets
 * its open segment; the loop starts the next batch in a new one.
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

sb_store__batch *
sb_store__batch_new(void)
{
    return sb_calloc(1, sizeof(sb_store__batch));
}

void
sb_store__batch_reset(sb_store__batch *b)
{
    sb_buf_reset(&b->data);
    b->nspans = 0;
    b->ndels = 0;
    b->end_pos = 0;
    b->nmsgs = 0;
    b->write_us = 0;
    b->err = 0;
}

void
sb_store__batch_free(sb_store__batch *b)
{
    if (b == NULL)
        return;
    sb_buf_free(&b->data);
    sb_free(b->spans);
    sb_free(b->fds);
    sb_free(b->dels);
    sb_free(b->del_rc);
    sb_free(b);
}

bool
sb_store__batch_empty(const sb_store__batch *b)
{
    return b->nspans == 0 && b->ndels == 0;
}

static int
open_span(sb_store *st, const sb_store__span *s, int *fd)
{
    char path[4096];
    uint8_t hdr[SB_SEG_HDR_SIZE];
    int rc;

    if (!s->is_new && st->wfd >= 0 && st->wseq == s->seq) {
        *fd = st->wfd;
        return 0;
    }
    sb_store__seg_name(path, sizeof path, st->dir, s->seq);
    int flags = s->is_new ? O_WRONLY | O_CREAT | O_EXCL : O_WRONLY;
    if ((*fd = st->ops->open(st->ops->ctx, path, flags, 0644)) < 0)
        return *fd;
    if (!s->is_new)
        return 0;
    sb_store__seg_header(hdr, s->seq);
    rc = sb_file_pwrite_all(st->ops, *fd, hdr, sizeof hdr, 0);
    return rc;
}

/* Closes the descriptors of spans [0, n) except keep, and the thread's
 * previous segment if it is not keep; keep (or -1) becomes the segment
 * the next batch continues. Everything closed here was fsynced by the
 * batch that wrote it, or rolled back. */
static void
release_fds(sb_store *st, sb_store__batch *b, size_t n, int keep)
{
    bool old_seen = false;

    for (size_t i = 0; i < n; i++) {
        if (b->fds[i] == st->wfd)
            old_seen = true;
        if (b->fds[i] >= 0 && b->fds[i] != keep)
            st->ops->close(st->ops->ctx, b->fds[i]);
    }
    if (st->wfd >= 0 && !old_seen && st->wfd != keep)
        st->ops->close(st->ops->ctx, st->wfd);
    st->wfd = keep;
    if (keep >= 0)
        st->wseq = b->spans[n - 1].seq;
}

/* Puts every file of spans [0, n) back as it was before the batch. */
static void
roll_back(sb_store *st, sb_store__batch *b, size_t n)
{
    char path[4096];
    bool unlinked = false;

    for (size_t i = 0; i < n; i++) {
        const sb_store__span *s = &b->spans[i];
        if (b->fds[i] < 0)
            continue;
        if (s->is_new) {
            sb_store__seg_name(path, sizeof path, st->dir, s->seq);
            (void)st->ops->unlink(st->ops->ctx, path);
            unlinked = true;
        } else if (st->ops->ftruncate(st->ops->ctx, b->fds[i], s->file_off) < 0) {
            sb_log(SB_LOG_ERROR, "store",
                   "SB-STORE-TRUNC-FAIL: cannot cut segment %u back to %llu after a failed "
                   "write; recovery will treat the extra bytes as a torn tail",
                   s->seq, (unsigned long long)s->file_off);
        }
    }
    if (unlinked)
        (void)st->ops->fsync_dir(st->ops->ctx, st->dir);
    release_fds(st, b, n, -1);
}

static int
write_spans(sb_store *st, sb_store__batch *b, size_t *done)
{
    bool created = false;
    int rc = 0;

    for (*done = 0; *done < b->nspans; (*done)++) {
        const sb_store__span *s = &b->spans[*done];
        b->fds[*done] = -1;
        if ((rc = open_span(st, s, &b->fds[*done])) < 0) {
            if (b->fds[*done] >= 0)
                (*done)++;
            return rc;
        }
        created |= s->is_new;
        rc = sb_file_pwrite_all(st->ops, b->fds[*done], b->data.data + s->buf_off, s->len,
                                s->file_off);
        if (rc < 0) {
            (*done)++;
            return rc;
        }
    }
    for (size_t i = 0; i < b->nspans; i++)
        if ((rc = st->ops->fsync(st->ops->ctx, b->fds[i])) < 0)
            return rc;
    /* A new segment's records are durable only once its directory entry
     * is: without this a crash could lose the whole file. */
    if (created && (rc = st->ops->fsync_dir(st->ops->ctx, st->dir)) < 0)
        return rc;
    return 0;
}

static void
delete_segments(sb_store *st, sb_store__batch *b)
{
    char path[4096];
    bool any = false;

    for (size_t i = 0; i < b->ndels; i++) {
        sb_store__seg_name(path, sizeof path, st->dir, b->dels[i]);
        int rc = st->ops->unlink(st->ops->ctx, path);
        b->del_rc[i] = rc == -ENOENT ? 0 : rc;
        any |= b->del_rc[i] == 0;
    }
    /* The loop treats a segment as gone (so a newer segment whose REMOVEs
     * point into it may be deleted too) only after this sync. */
    if (any && st->ops->fsync_dir(st->ops->ctx, st->dir) < 0)
        for (size_t i = 0; i < b->ndels; i++)
            b->del_rc[i] = -EIO;
}

int
sb_store__write_batch(sb_store *st, sb_store__batch *b)
{
    size_t n = 0;
    int rc = 0;

    if (b->nspans > 0 && (rc = write_spans(st, b, &n)) < 0)
        roll_back(st, b, n);
    else if (b->nspans > 0)
        release_fds(st, b, b->nspans, b->fds[b->nspans - 1]);
    delete_segments(st, b);
    return rc;
}

static void *
commit_main(void *arg)
{
    sb_store *st = arg;

    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (st->work == NULL && !st->quit)
            pthread_cond_wait(&st->cv, &st->mu);
        if (st->work == NULL)
            break;
        sb_store__batch *b = st->work;
        pthread_mutex_unlock(&st->mu);
        uint64_t t0 = sb_clock_us();
        b->err = sb_store__write_batch(st, b);
        b->write_us = sb_clock_us() - t0;
        pthread_mutex_lock(&st->mu);
        st->work = NULL;
        st->done = b;
        pthread_cond_broadcast(&st->cv_done);
        uint64_t one = 1;
        /* Cannot fail short of a bug: the counter would need 2^64 posts. */
        (void)!write(st->efd, &one, sizeof one);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int
sb_store__commit_start(sb_store *st)
{
    int rc;

    if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return -errno;
    if ((rc = pthread_create(&st->thread, NULL, commit_main, st)) != 0)
        return -rc;
    st->has_thread = true;
    return 0;
}

void
sb_store__commit_stop(sb_store *st)
{
    if (st->has_thread) {
        pthread_mutex_lock(&st->mu);
        st->quit = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        st->has_thread = false;
    }
    if (st->wfd >= 0)
        st->ops->close(st->ops->ctx, st->wfd);
    st->wfd = -1;
    if (st->efd >= 0)
        close(st->efd);
    st->efd = -1;
}
