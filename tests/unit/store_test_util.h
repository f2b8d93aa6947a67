/* store_test_util.h - helpers for the store tests: temp dirs, a collector
 * for recovered messages, and a fake sb_file_ops over POSIX that counts
 * syncs and injects short writes, write errors (EIO, ENOSPC) and a crash
 * at the Nth sync. After a crash every call fails with EIO, and
 * fake_reboot() puts the directory in a state a power cut could leave:
 * files whose creation was never made durable by a directory sync are
 * gone, and every file is cut back to what was last fsynced plus a
 * prefix of what was written after (a torn tail).
 * Header-only (static functions) because each test file is its own binary.
 */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "store/fileops.h"
#include "store/store.h"

/* Not every test binary uses every helper. */
#define TU_STATIC static __attribute__((unused))

/* ---- temp dirs ---------------------------------------------------------- */

TU_STATIC char *
tmp_dir(void)
{
    char *d = sb_strdup("/tmp/sb_store_test.XXXXXX");
    if (mkdtemp(d) == NULL)
        abort();
    return d;
}

TU_STATIC void
rm_dir(char *d)
{
    DIR *dd = opendir(d);
    struct dirent *de;
    char p[4096];

    while (dd && (de = readdir(dd)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        unlink(p);
    }
    if (dd)
        closedir(dd);
    rmdir(d);
    sb_free(d);
}

TU_STATIC int
count_files(const char *d, const char *suffix)
{
    DIR *dd = opendir(d);
    struct dirent *de;
    int n = 0;

    while (dd && (de = readdir(dd)) != NULL) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        if (de->d_name[0] != '.' && l > s && strcmp(de->d_name + l - s, suffix) == 0)
            n++;
    }
    if (dd)
        closedir(dd);
    return n;
}

/* Group setup/teardown: every descriptor the store opened is closed. */
static int fds_at_start;

TU_STATIC int
count_fds(void)
{
    return count_files("/proc/self/fd", "");
}

TU_STATIC int
fds_setup(void **state)
{
    fds_at_start = count_fds();
    return 0;
}

TU_STATIC int
fds_teardown(void **state)
{
    int now = count_fds();
    if (now != fds_at_start) {
        fprintf(stderr, "leaked %d file descriptors\n", now - fds_at_start);
        return -1;
    }
    return 0;
}

/* ---- recovered messages --------------------------------------------------- */

typedef struct got_msg {
    uint32_t queue_id;
    uint64_t msg_id;
    char *hdr, *body;
    size_t hdr_len, body_len;
    sb_store_loc loc;
    bool was_delivered;
} got_msg;

typedef struct got {
    got_msg *m;
    size_t n, cap;
} got;

TU_STATIC void
got_cb(void *arg, const sb_store_msg *m)
{
    got *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->m = sb_realloc(g->m, g->cap * sizeof *g->m);
    }
    g->m[g->n++] = (got_msg){ m->queue_id, m->msg_id, sb_strndup(m->hdr.p, m->hdr.len),
                              sb_strndup(m->body.p, m->body.len), m->hdr.len, m->body.len,
                              m->loc, m->was_delivered };
}

TU_STATIC void
got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        sb_free(g->m[i].hdr);
        sb_free(g->m[i].body);
    }
    sb_free(g->m);
    *g = (got){ 0 };
}

/* ---- fake file ops ---------------------------------------------------------- */

#define FAKE_MAX 512

typedef struct fake_fs {
    pthread_mutex_t mu;
    sb_file_ops ops;
    char dir[4096];
    int syncs;            /* fsync + fsync_dir calls */
    int file_syncs;       /* fsync calls */
    int crash_at;         /* crash at this sync (1-based); 0: never */
    bool crashed;
    int fail_write;       /* -errno returned by pwrite, 0: none */
    bool short_writes;    /* pwrite transfers at most half, at least 1 byte */
    /* durability model */
    char *fd_path[FAKE_MAX];
    char *paths[FAKE_MAX];
    uint64_t synced[FAKE_MAX];
    size_t npaths;
    char *durable_names[FAKE_MAX];
    size_t ndurable;
} fake_fs;

TU_STATIC size_t
fake_path_idx(fake_fs *f, const char *path)
{
    for (size_t i = 0; i < f->npaths; i++)
        if (strcmp(f->paths[i], path) == 0)
            return i;
    if (f->npaths == FAKE_MAX)
        abort();
    f->paths[f->npaths] = strdup(path);
    f->synced[f->npaths] = 0;
    return f->npaths++;
}

/* Records the directory's current names as durable. */
TU_STATIC void
fake_snapshot_dir(fake_fs *f)
{
    DIR *dd = opendir(f->dir);
    struct dirent *de;

    for (size_t i = 0; i < f->ndurable; i++)
        free(f->durable_names[i]);
    f->ndurable = 0;
    while (dd && (de = readdir(dd)) != NULL)
        if (de->d_name[0] != '.' && f->ndurable < FAKE_MAX)
            f->durable_names[f->ndurable++] = strdup(de->d_name);
    if (dd)
        closedir(dd);
}

#define FAKE_ENTER(f)                 \
    fake_fs *f = ctx;                 \
    pthread_mutex_lock(&f->mu);       \
    if (f->crashed) {                 \
        pthread_mutex_unlock(&f->mu); \
        return -EIO;                  \
    }

TU_STATIC int
fake_open(void *ctx, const char *path, int flags, mode_t mode)
{
    FAKE_ENTER(f);
    int rc = sb_file_posix_ops.open(NULL, path, flags, mode);
    if (rc >= 0 && rc < FAKE_MAX) {
        bool existed = !(flags & O_CREAT);
        size_t i = fake_path_idx(f, path);
        if (!existed)
            f->synced[i] = 0;
        free(f->fd_path[rc]);
        f->fd_path[rc] = strdup(path);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

TU_STATIC int
fake_close(void *ctx, int fd)
{
    fake_fs *f = ctx;
    pthread_mutex_lock(&f->mu);
    free(f->fd_path[fd]);
    f->fd_path[fd] = NULL;
    pthread_mutex_unlock(&f->mu);
    /* Closing always works, crashed or not, so the test leaks nothing. */
    return sb_file_posix_ops.close(NULL, fd);
}

TU_STATIC ssize_t
fake_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off)
{
    FAKE_ENTER(f);
    pthread_mutex_unlock(&f->mu);
    return sb_file_posix_ops.pread(NULL, fd, buf, n, off);
}

TU_STATIC ssize_t
fake_pwrite(void *ctx, int fd, const void *buf, size_t n, uint64_t off)
{
    FAKE_ENTER(f);
    int fail = f->fail_write;
    bool shrt = f->short_writes;
    pthread_mutex_unlock(&f->mu);
    if (fail) {
        /* A disk filling up mid-write: some bytes land, then the error. */
        if (n > 1)
            (void)!sb_file_posix_ops.pwrite(NULL, fd, buf, n / 2, off);
        return fail;
    }
    if (shrt && n > 1)
        n = n / 2;
    return sb_file_posix_ops.pwrite(NULL, fd, buf, n, off);
}

/* Counts a sync; returns true if this one is the crash. */
TU_STATIC bool
fake_sync_crashes(fake_fs *f)
{
    f->syncs++;
    if (f->crash_at && f->syncs == f->crash_at) {
        f->crashed = true;
        return true;
    }
    return false;
}

TU_STATIC int
fake_fsync(void *ctx, int fd)
{
    FAKE_ENTER(f);
    f->file_syncs++;
    if (fake_sync_crashes(f)) {
        pthread_mutex_unlock(&f->mu);
        return -EIO;
    }
    int rc = sb_file_posix_ops.fsync(NULL, fd);
    uint64_t size;
    if (rc == 0 && f->fd_path[fd] && sb_file_posix_ops.fsize(NULL, fd, &size) == 0)
        f->synced[fake_path_idx(f, f->fd_path[fd])] = size;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

TU_STATIC int
fake_ftruncate(void *ctx, int fd, uint64_t len)
{
    FAKE_ENTER(f);
    pthread_mutex_unlock(&f->mu);
    return sb_file_posix_ops.ftruncate(NULL, fd, len);
}

TU_STATIC int
fake_fsize(void *ctx, int fd, uint64_t *size)
{
    FAKE_ENTER(f);
    pthread_mutex_unlock(&f->mu);
    return sb_file_posix_ops.fsize(NULL, fd, size);
}

TU_STATIC int
fake_rename(void *ctx, const char *from, const char *to)
{
    FAKE_ENTER(f);
    int rc = sb_file_posix_ops.rename(NULL, from, to);
    if (rc == 0) {
        size_t a = fake_path_idx(f, from), b = fake_path_idx(f, to);
        f->synced[b] = f->synced[a];
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

TU_STATIC int
fake_unlink(void *ctx, const char *path)
{
    FAKE_ENTER(f);
    pthread_mutex_unlock(&f->mu);
    return sb_file_posix_ops.unlink(NULL, path);
}

TU_STATIC int
fake_fsync_dir(void *ctx, const char *dir)
{
    FAKE_ENTER(f);
    if (fake_sync_crashes(f)) {
        pthread_mutex_unlock(&f->mu);
        return -EIO;
    }
    fake_snapshot_dir(f);
    pthread_mutex_unlock(&f->mu);
    return sb_file_posix_ops.fsync_dir(NULL, dir);
}

/* Starts faking over dir; files already there count as durable. */
TU_STATIC void
fake_init(fake_fs *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    fake_snapshot_dir(f);
    for (size_t i = 0; i < f->ndurable; i++) {
        char p[8192];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, f->durable_names[i]);
        if (stat(p, &sb) == 0)
            f->synced[fake_path_idx(f, p)] = (uint64_t)sb.st_size;
    }
    f->ops = (sb_file_ops){
        .ctx = f, .open = fake_open, .close = fake_close, .pread = fake_pread,
        .pwrite = fake_pwrite, .fsync = fake_fsync, .ftruncate = fake_ftruncate,
        .fsize = fake_fsize, .rename = fake_rename, .unlink = fake_unlink,
        .fsync_dir = fake_fsync_dir,
    };
}

TU_STATIC void
fake_free(fake_fs *f)
{
    for (size_t i = 0; i < FAKE_MAX; i++)
        free(f->fd_path[i]);
    for (size_t i = 0; i < f->npaths; i++)
        free(f->paths[i]);
    for (size_t i = 0; i < f->ndurable; i++)
        free(f->durable_names[i]);
    pthread_mutex_destroy(&f->mu);
}

/* Simulates the power cut: names not made durable vanish, every file
 * keeps what was fsynced plus keep_pct percent of the bytes after it. */
TU_STATIC void
fake_reboot(fake_fs *f, int keep_pct)
{
    DIR *dd = opendir(f->dir);
    struct dirent *de;
    char p[8192];

    while (dd && (de = readdir(dd)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
        bool durable = false;
        for (size_t i = 0; i < f->ndurable; i++)
            durable |= strcmp(f->durable_names[i], de->d_name) == 0;
        if (!durable) {
            unlink(p);
            continue;
        }
        struct stat sb;
        if (stat(p, &sb) < 0)
            continue;
        uint64_t synced = f->synced[fake_path_idx(f, p)];
        uint64_t size = (uint64_t)sb.st_size;
        if (size > synced && truncate(p, (off_t)(synced + (size - synced) * (uint64_t)keep_pct / 100)) < 0)
            abort();
    }
    if (dd)
        closedir(dd);
}

#endif /* STORE_TEST_UTIL_H */
