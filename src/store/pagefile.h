/* pagefile.h - paging files: where messages that need not survive a
 * restart wait when their queue is past its memory window.
 *
 * Records are opaque bytes, appended to numbered files in one directory
 * of their own (the broker uses DATA_DIR/transient). Nothing here is
 * durable: files are never fsynced, every file is removed when the
 * directory is opened and when it is closed, and a file is deleted as soon
 * as no record in it is live. A record is named by (file, offset) and
 * framed with its length and a CRC32C, so a damaged read is detected.
 * Format: store/FORMAT.md, "Paging files".
 *
 * Writes go to a buffer that is written out (one pwrite) when it reaches
 * flush_bytes and by sb_pagefile_flush, which the loop calls before it
 * sleeps. Reads are synchronous preads; what is still in the buffer is
 * read from it. A failed write (ENOSPC, EIO) keeps the unwritten bytes in
 * the buffer, so no record is lost, and refuses appends (the caller keeps
 * those messages in RAM) until a retry, at most once a second, succeeds.
 *
 * Loop thread only. Memory: the write buffer, and 24 bytes per file.
 */
#ifndef SB_STORE_PAGEFILE_H
#define SB_STORE_PAGEFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/str.h"
#include "store/fileops.h"

typedef struct sb_pagefile sb_pagefile;

#define SB_PAGEFILE_FILE_DEFAULT (64u << 20)  /* bytes per file before the next one */
#define SB_PAGEFILE_FLUSH_DEFAULT (1u << 20)  /* buffered bytes that trigger a write */
#define SB_PAGEFILE_RETRY_MS 1000             /* after a failed write or create */

typedef struct sb_pagefile_opts {
    const sb_file_ops *ops;   /* NULL: sb_file_posix_ops */
    uint32_t file_max_bytes;  /* 0: SB_PAGEFILE_FILE_DEFAULT */
    uint32_t flush_bytes;     /* 0: SB_PAGEFILE_FLUSH_DEFAULT */
} sb_pagefile_opts;

typedef struct sb_pagefile_loc {
    uint32_t file;            /* file number (its name is %010u.page) */
    uint32_t offset;          /* of the record's frame in the file */
} sb_pagefile_loc;

typedef struct sb_pagefile_stats {
    uint32_t files;           /* files that exist */
    uint64_t live;            /* records appended and not released */
    uint64_t buffered_bytes;  /* written to no file yet */
    int err;                  /* 0, or the -errno that stops appends now */
} sb_pagefile_stats;

/* Creates dir if needed and removes the paging files left in it (by a
 * crash: they hold nothing anyone wants). Sets *out. Returns 0 or -errno. */
int sb_pagefile_open(const char *dir, const sb_pagefile_opts *o, sb_pagefile **out);
/* Closes and removes every file. pf may be NULL. */
void sb_pagefile_close(sb_pagefile *pf);
/* Appends one record, the concatenation of parts[0..n) (borrowed until
 * the call returns: they are copied). Sets *loc. Returns 0, or -errno
 * when records cannot be written now (a recent write error, a file that
 * cannot be created, a record over 1 GiB): then nothing was appended. */
int sb_pagefile_append(sb_pagefile *pf, const sb_str *parts, int n, sb_pagefile_loc *loc);
/* True when sb_pagefile_append may succeed (no recent error). */
bool sb_pagefile_writable(sb_pagefile *pf);
/* Reads the record at loc into out (reset first), checking its CRC.
 * hint is the expected record length, to read it with one pread.
 * Returns 0, -ENOENT (no such file), -EILSEQ (damaged) or -errno. */
int sb_pagefile_read(sb_pagefile *pf, sb_pagefile_loc loc, size_t hint, sb_buf *out);
/* The record at loc is no longer needed; its file goes with its last. */
void sb_pagefile_release(sb_pagefile *pf, sb_pagefile_loc loc);
/* Writes the buffer out. Returns 0 or the -errno of a failed write (the
 * bytes stay buffered and readable; retried at most once a second). */
int sb_pagefile_flush(sb_pagefile *pf);
void sb_pagefile_get_stats(const sb_pagefile *pf, sb_pagefile_stats *out);

#endif /* SB_STORE_PAGEFILE_H */
