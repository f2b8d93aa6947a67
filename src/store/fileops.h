/* fileops.h - the file operations the store uses, as a replaceable table.
 *
 * Every disk access of the store goes through an sb_file_ops, so tests can
 * inject short writes, EIO, ENOSPC and a crash at the Nth sync (SQLite's
 * VFS and test6.c do the same). sb_file_posix_ops is the real thing.
 * Functions may be called from the loop thread and the commit thread at
 * the same time, so an implementation with state must lock it.
 * Every function returns >= 0 on success or -errno.
 */
#ifndef SB_STORE_FILEOPS_H
#define SB_STORE_FILEOPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sb_file_ops {
    void *ctx;  /* passed to every call */
    /* Returns a file descriptor or -errno. */
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    /* May transfer fewer bytes than asked (see sb_file_pread_all). */
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, uint64_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, uint64_t off);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, uint64_t len);
    /* Sets *size to the file's size. */
    int (*fsize)(void *ctx, int fd, uint64_t *size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* Makes creations, renames and deletions in directory dir durable. */
    int (*fsync_dir)(void *ctx, const char *dir);
} sb_file_ops;

extern const sb_file_ops sb_file_posix_ops;

/* Writes all n bytes at off, retrying short writes and EINTR.
 * Returns 0 or -errno (-EIO if a write makes no progress). */
int sb_file_pwrite_all(const sb_file_ops *ops, int fd, const void *buf, size_t n, uint64_t off);
/* Reads up to n bytes at off, retrying short reads; returns the bytes
 * read (< n only at end of file) or -errno. */
ssize_t sb_file_pread_all(const sb_file_ops *ops, int fd, void *buf, size_t n, uint64_t off);

#endif /* SB_STORE_FILEOPS_H */
