/* defs.c - see defs.h. Header: magic "SBDEFS\0\0", version u32, length
 * u32, CRC32C of the blob u32, then the blob; little-endian. */
#include "store/defs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "store/crc32c.h"
#include "store/internal.h"

#define DEFS_MAGIC "SBDEFS\0"
#define DEFS_VERSION 1u
#define DEFS_HDR 20u

static int
defs_paths(const char *dir, char *path, char *tmp, size_t n)
{
    if ((size_t)snprintf(path, n, "%s/definitions", dir) >= n ||
        (size_t)snprintf(tmp, n, "%s/definitions.tmp", dir) >= n)
        return -ENAMETOOLONG;
    return 0;
}

int
sb_defs_save(const char *dir, const sb_file_ops *ops, sb_str blob)
{
    char path[4096], tmp[4096];
    uint8_t h[DEFS_HDR];
    int fd = -1, rc;

    if (ops == NULL)
        ops = &sb_file_posix_ops;
    if (blob.len > SB_DEFS_MAX_BYTES)
        return -EMSGSIZE;
    if ((rc = defs_paths(dir, path, tmp, sizeof path)) < 0)
        return rc;
    /* A tmp left by a crash is garbage; O_EXCL below must not trip on it. */
    (void)ops->unlink(ops->ctx, tmp);
    if ((fd = ops->open(ops->ctx, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
        rc = fd;
        goto out;
    }
    memcpy(h, DEFS_MAGIC, 8);
    sb_store__put32(h + 8, DEFS_VERSION);
    sb_store__put32(h + 12, (uint32_t)blob.len);
    sb_store__put32(h + 16, sb_store__crc32c(0, blob.p, blob.len));
    if ((rc = sb_file_pwrite_all(ops, fd, h, sizeof h, 0)) < 0 ||
        (rc = sb_file_pwrite_all(ops, fd, blob.p, blob.len, sizeof h)) < 0)
        goto out;
    /* The data must be on disk before the rename makes it the live file,
     * or a crash could leave "definitions" naming an empty file. */
    if ((rc = ops->fsync(ops->ctx, fd)) < 0 || (rc = ops->rename(ops->ctx, tmp, path)) < 0)
        goto out;
    /* The rename is durable only once the directory entry is. */
    rc = ops->fsync_dir(ops->ctx, dir);
out:
    if (fd >= 0)
        ops->close(ops->ctx, fd);
    if (rc < 0)
        (void)ops->unlink(ops->ctx, tmp);
    return rc;
}

static int
damaged(const char *path, const char *why)
{
    sb_log(SB_LOG_ERROR, "store", "SB-DEFS-CORRUPT %s: %s", path, why);
    return -EILSEQ;
}

int
sb_defs_load(const char *dir, const sb_file_ops *ops, uint8_t **blob, size_t *len)
{
    char path[4096], tmp[4096];
    uint8_t h[DEFS_HDR], *p = NULL;
    uint64_t size;
    int fd, rc;

    if (ops == NULL)
        ops = &sb_file_posix_ops;
    if ((rc = defs_paths(dir, path, tmp, sizeof path)) < 0)
        return rc;
    if ((fd = ops->open(ops->ctx, path, O_RDONLY, 0)) < 0)
        return fd;
    if ((rc = ops->fsize(ops->ctx, fd, &size)) < 0)
        goto out;
    ssize_t got = sb_file_pread_all(ops, fd, h, sizeof h, 0);
    if (got < 0) {
        rc = (int)got;
        goto out;
    }
    if (got != (ssize_t)sizeof h || memcmp(h, DEFS_MAGIC, 8) != 0) {
        rc = damaged(path, "not a definitions file");
        goto out;
    }
    if (sb_store__get32(h + 8) != DEFS_VERSION) {
        rc = damaged(path, "unsupported format version");
        goto out;
    }
    uint32_t n = sb_store__get32(h + 12);
    if (n > SB_DEFS_MAX_BYTES || n != size - DEFS_HDR) {
        rc = damaged(path, "length does not match the file size");
        goto out;
    }
    if ((p = sb_try_malloc(n)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    got = sb_file_pread_all(ops, fd, p, n, DEFS_HDR);
    if (got != (ssize_t)n || sb_store__crc32c(0, p, n) != sb_store__get32(h + 16)) {
        rc = got < 0 ? (int)got : damaged(path, "checksum mismatch");
        goto out;
    }
    *blob = p;
    *len = n;
    p = NULL;
out:
    sb_free(p);
    ops->close(ops->ctx, fd);
    return rc;
}
