/* store.h - durable message log: append, remove, group commit, recover.
 *
 * The store knows nothing about AMQP. A message record is (queue id,
 * message id, opaque header bytes, body bytes); the store identifies it by
 * where it was written (sb_store_loc), so message ids need not be unique.
 * The on-disk format is in store/FORMAT.md.
 *
 * Threads: every function here runs on the loop thread. Writes and fsyncs
 * run on the store's commit thread; when a batch is on disk the commit
 * thread makes sb_store_fd() readable and the loop calls sb_store_poll(),
 * which reports through sb_store_opts.on_durable, on the loop thread.
 *
 * Memory: the store keeps no message bodies. Per segment it keeps a few
 * counters; per pending batch, the encoded records until they are written.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/str.h"
#include "store/fileops.h"

typedef struct sb_store sb_store;

#define SB_STORE_SEGMENT_DEFAULT (64u << 20)  /* bytes */
#define SB_STORE_SEGMENT_MIN (4u << 10)       /* bytes */
#define SB_STORE_SEGMENT_MAX (1u << 30)       /* bytes */
#define SB_STORE_MAX_RECORD (1u << 30)        /* bytes of header + body */

/* Where a message record is. Returned by sb_store_append and recovery;
 * the broker keeps it with the message and passes it back to
 * sb_store_remove, sb_store_mark_delivered and sb_store_read. */
typedef struct sb_store_loc {
    uint64_t pos;      /* log position: durable once durable_pos >= pos */
    uint32_t segment;  /* segment sequence number */
    uint32_t offset;   /* byte offset of the record in the segment */
} sb_store_loc;

/* A live message found by recovery, or read back by sb_store_read. */
typedef struct sb_store_msg {
    uint32_t queue_id;
    uint64_t msg_id;
    sb_str hdr;          /* borrowed: see the function that hands it out */
    sb_str body;         /* borrowed, likewise */
    sb_store_loc loc;
    bool was_delivered;  /* a DELIVERED mark was recorded: set redelivered */
} sb_store_msg;

/* Called by sb_store_open for each live message, in log order. m and the
 * bytes it points to are borrowed until the callback returns. */
typedef void (*sb_store_recover_fn)(void *arg, const sb_store_msg *m);

/* Called from sb_store_poll on the loop thread.
 * err == 0: every record with loc.pos <= pos is durable (pos only grows).
 * err < 0 (-ENOSPC, -EIO, ...): every MESSAGE record appended so far that
 * was not yet reported durable, with durable_pos < loc.pos <= pos, is lost:
 * the broker must nack its publishes and must not remove or mark it.
 * REMOVE and DELIVERED records are not lost; the store writes them again.
 * The store stays usable: later appends go to a new segment. */
typedef void (*sb_store_durable_fn)(void *arg, uint64_t pos, int err);

typedef struct sb_store_opts {
    uint32_t segment_max_bytes;       /* 0: SB_STORE_SEGMENT_DEFAULT */
    uint64_t disk_limit_bytes;        /* 0: none; else append fails with -ENOSPC */
    const sb_file_ops *ops;           /* NULL: sb_file_posix_ops; borrowed until close */
    sb_store_recover_fn on_recover;   /* may be NULL */
    void *recover_arg;
    sb_store_durable_fn on_durable;   /* may be NULL */
    void *durable_arg;
} sb_store_opts;

/* Upper bounds of the commit statistics' histogram buckets (the last one
 * counts everything above the one before it). */
#define SB_STORE_HIST_BUCKETS 12
#define SB_STORE_COMMIT_US_BOUNDS                                                                \
    { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, UINT64_MAX }
#define SB_STORE_BATCH_MSG_BOUNDS { 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, UINT64_MAX }

typedef struct sb_store_stats {
    uint64_t segment_count;
    uint64_t disk_bytes;        /* bytes in segment files, including pending */
    uint64_t live_count;        /* message records not removed */
    uint64_t commit_count;      /* batches written */
    uint64_t corrupt_count;     /* corrupt regions skipped at open */
    uint64_t torn_count;        /* torn tails truncated at open */
    uint64_t unknown_count;     /* records of unknown type skipped at open */
    uint64_t deleted_count;     /* segments deleted since open */
    /* Per successful commit: its write + fsync time, and the message
     * records it made durable (histograms over the bounds above). */
    uint64_t commit_us_sum, commit_msgs_sum;
    uint64_t commit_us_hist[SB_STORE_HIST_BUCKETS];
    uint64_t commit_msgs_hist[SB_STORE_HIST_BUCKETS];
} sb_store_stats;

/* Opens the store in dir, creating the directory if needed, and replays
 * its segments, calling opts->on_recover for each live message. A torn
 * tail is truncated and logged; a corrupt record in the middle is logged
 * with its file and offset and skipped. Neither is an error.
 * Returns 0 and sets *out (OUT), or -errno: -EPROTONOSUPPORT for a
 * segment of another format version, -EINVAL for a file named like a
 * segment that is not one; on failure *out is left untouched and the
 * directory is unchanged except for torn tails. dir and opts are copied. */
int sb_store_open(const char *dir, const sb_store_opts *opts, sb_store **out);

/* Writes everything appended (waiting for the commit thread), stops the
 * thread and frees st. Returns 0 or the error of the final commit; the
 * store is freed either way. NULL is a no-op. */
int sb_store_close(sb_store *st);

/* Buffers one MESSAGE record into the current batch. Borrows hdr and body
 * until the call returns (they are copied into the batch). Sets *loc
 * (OUT); the record is durable once on_durable reports a position >=
 * loc->pos. Returns 0, -EMSGSIZE if hdr + body exceed SB_STORE_MAX_RECORD,
 * or -ENOSPC if disk_limit_bytes would be exceeded. */
int sb_store_append(sb_store *st, uint32_t queue_id, uint64_t msg_id, sb_str hdr, sb_str body,
                    sb_store_loc *loc);

/* Buffers a REMOVE of the message at *msg (ack, reject, expiry, purge).
 * Call it once per message. When every message record of a segment is
 * removed, the segment is deleted after a later commit. Returns 0. */
int sb_store_remove(sb_store *st, uint32_t queue_id, uint64_t msg_id, const sb_store_loc *msg);

/* Buffers a DELIVERED mark for the message at *msg, so that recovery
 * reports was_delivered. Returns 0. */
int sb_store_mark_delivered(sb_store *st, uint32_t queue_id, uint64_t msg_id,
                            const sb_store_loc *msg);

/* Group commit: hands the current batch to the commit thread, or, if it
 * is busy, arranges for the batch to follow when it finishes. Call it
 * before the loop sleeps. Never blocks on the disk. Returns 0. */
int sb_store_commit_async(sb_store *st);

/* The descriptor (an eventfd) that becomes readable when a commit has
 * finished. Owned by the store; watch it for reading. */
int sb_store_fd(const sb_store *st);

/* Handles finished commits: updates the durable position, calls
 * on_durable, starts the next batch if one is waiting, and schedules
 * deletion of dead segments. Call it when sb_store_fd() is readable;
 * calling it at other times is harmless. Returns 0. */
int sb_store_poll(sb_store *st);

/* Commits and waits until everything appended so far is written (or has
 * failed), calling on_durable as sb_store_poll would. Blocks the caller:
 * for shutdown and tests. Returns 0 or the commit's -errno. */
int sb_store_sync(sb_store *st);

/* The highest position known durable. */
uint64_t sb_store_durable_pos(const sb_store *st);

/* Reads the message record at loc back from disk (synchronous pread).
 * Sets *m (OUT), whose hdr and body point into *buf (OUT), a new
 * allocation the caller frees with sb_free. Returns 0 or -errno: -EAGAIN
 * if the record is not durable yet, -ENOENT if its segment is gone,
 * -EILSEQ if it fails its checksum, -ENOMEM. */
int sb_store_read(sb_store *st, const sb_store_loc *loc, sb_store_msg *m, uint8_t **buf);

/* Fills *out (OUT) with counters. */
void sb_store_get_stats(const sb_store *st, sb_store_stats *out);

#endif /* SB_STORE_H */
