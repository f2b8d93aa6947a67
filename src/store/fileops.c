/* fileops.c - the POSIX sb_file_ops and the retry helpers built on any
 * sb_file_ops. Runs on whichever thread calls it; keeps no state. */
#include "store/fileops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int
px_open(void *ctx, const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

static int
px_close(void *ctx, int fd)
{
    /* Linux releases the descriptor even when close reports an error,
     * so retrying would close someone else's descriptor. */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static ssize_t
px_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off)
{
    ssize_t r = pread(fd, buf, n, (off_t)off);
    return r < 0 ? -errno : r;
}

static ssize_t
px_pwrite(void *ctx, int fd, const void *buf, size_t n, uint64_t off)
{
    ssize_t r = pwrite(fd, buf, n, (off_t)off);
    return r < 0 ? -errno : r;
}

static int
px_fsync(void *ctx, int fd)
{
    /* fdatasync is enough: the size change it makes durable is metadata
     * that fdatasync covers, and mtime is not needed by recovery. */
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int
px_ftruncate(void *ctx, int fd, uint64_t len)
{
    return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

static int
px_fsize(void *ctx, int fd, uint64_t *size)
{
    struct stat sb;

    if (fstat(fd, &sb) < 0)
        return -errno;
    *size = (uint64_t)sb.st_size;
    return 0;
}

static int
px_rename(void *ctx, const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int
px_unlink(void *ctx, const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int
px_fsync_dir(void *ctx, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int
sb_file_pwrite_all(const sb_file_ops *ops, int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t w = ops->pwrite(ops->ctx, fd, p, n, off);
        if (w == -EINTR)
            continue;
        if (w < 0)
            return (int)w;
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

ssize_t
sb_file_pread_all(const sb_file_ops *ops, int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = ops->pread(ops->ctx, fd, p + got, n - got, off + got);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return r;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

const sb_file_ops sb_file_posix_ops = {
    .ctx       = NULL,
    .open      = px_open,
    .close     = px_close,
    .pread     = px_pread,
    .pwrite    = px_pwrite,
    .fsync     = px_fsync,
    .ftruncate = px_ftruncate,
    .fsize     = px_fsize,
    .rename    = px_rename,
    .unlink    = px_unlink,
    .fsync_dir = px_fsync_dir,
};
