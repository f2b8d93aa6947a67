/* internal.h - the store's private structures, shared by its .c files.
 *
 * Ownership between threads: the loop thread owns everything in sb_store
 * except the fields under "commit thread"; a batch belongs to the commit
 * thread from the moment it is put in `work` until the loop takes it back
 * from `done` (both under mu). The commit thread only reads dir and ops.
 */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"

#define SB_SEG_MAGIC "SBSTORE"      /* 7 chars + NUL = 8 bytes on disk */
#define SB_SEG_VERSION 1u
#define SB_SEG_HDR_SIZE 32u
#define SB_REC_HDR_SIZE 12u
#define SB_REC_MSG_FIXED 16u        /* queue_id, msg_id, hdr_len */
#define SB_REC_REF_SIZE 20u         /* queue_id, msg_id, target seg, target off */
#define SB_SEG_NAME_MAX 32

enum {
    SB_REC_MESSAGE = 1,
    SB_REC_REMOVE = 2,
    SB_REC_DELIVERED = 3,
};

/* One segment file, as the loop thread sees it. */
typedef struct sb_store__seg {
    uint32_t seq;
    uint64_t msgs;           /* MESSAGE records in it */
    uint64_t removed;        /* of those, removed */
    uint64_t bytes;          /* file size including pending records */
    uint64_t durable_bytes;  /* file size known durable; 0: not on disk */
    uint32_t *targets;       /* older segments its REMOVE/DELIVERED point into */
    size_t ntargets, targets_cap;
    int read_fd;             /* for sb_store_read; -1 until needed */
    bool is_deleting;        /* deletion handed to the commit thread */
} sb_store__seg;

/* A run of bytes of one segment inside a batch. */
typedef struct sb_store__span {
    uint32_t seq;
    bool is_new;             /* the batch creates the file */
    uint64_t file_off;       /* where data[buf_off..+len) goes */
    size_t buf_off, len;
} sb_store__span;

typedef struct sb_store__batch {
    sb_buf data;             /* encoded records */
    sb_store__span *spans;
    size_t nspans, spans_cap;
    uint32_t *dels;          /* segments to delete */
    int *del_rc;             /* per delete, set by the commit thread */
    size_t ndels, dels_cap;
    int *fds;                /* commit thread scratch, one per span */
    uint64_t end_pos;        /* position of the last record */
    uint32_t nmsgs;          /* message records in it */
    uint64_t write_us;       /* write and fsync time, set by the commit thread */
    int err;                 /* result, set by the commit thread */
} sb_store__batch;

typedef struct sb_store__range {
    uint64_t from, to;       /* positions (from, to] were lost */
} sb_store__range;

struct sb_store {
    char *dir;
    sb_store_opts opts;
    const sb_file_ops *ops;
    uint32_t seg_max;        /* bytes */

    sb_store__seg *segs;     /* sorted by seq */
    size_t nsegs, segs_cap;
    uint32_t next_seq;       /* never reused */
    uint32_t active_seq;     /* segment appended to, valid unless need_roll */
    uint64_t active_off;     /* its end, including pending records */
    bool need_roll;          /* the next record starts a new segment */
    uint64_t durable_pos;
    uint64_t pending_pos;    /* position of the last record appended */
    sb_store__range *lost;
    size_t nlost, lost_cap;

    sb_store__batch *cur;    /* being filled by the loop */
    sb_store__batch *spare;
    sb_store__batch *inflight; /* handed to the commit thread, not yet polled */
    bool want_commit;
    sb_store_stats stats;

    /* Handoff, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* work or quit is set */
    pthread_cond_t cv_done;  /* done is set */
    sb_store__batch *work;
    sb_store__batch *done;
    bool quit;
    bool has_thread;
    pthread_t thread;
    int efd;                 /* eventfd: the commit thread signals done */

    /* Commit thread only. */
    int wfd;                 /* open segment being written, or -1 */
    uint32_t wseq;
};

/* segment.c */
static inline void
sb_store__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void
sb_store__put64(uint8_t *p, uint64_t v)
{
    sb_store__put32(p, (uint32_t)v);
    sb_store__put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
sb_store__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
sb_store__get64(const uint8_t *p)
{
    return (uint64_t)sb_store__get32(p) | (uint64_t)sb_store__get32(p + 4) << 32;
}

static inline uint64_t
sb_store__pos(uint32_t seq, uint64_t end_off)
{
    return (uint64_t)seq << 32 | end_off;
}

void sb_store__seg_name(char *buf, size_t n, const char *dir, uint32_t seq);
/* Parses "0000000042.seg"; returns 0 and sets *seq, or -1. */
int sb_store__seg_parse_name(const char *name, uint32_t *seq);
void sb_store__seg_header(uint8_t out[SB_SEG_HDR_SIZE], uint32_t seq);
/* Fills the record header at rec[0..12) for a payload already at rec+12. */
void sb_store__rec_seal(uint8_t *rec, uint8_t type, uint32_t payload_len);
/* The CRC a record with this header and payload must carry. */
uint32_t sb_store__rec_crc(const uint8_t *rec, uint32_t payload_len);

/* A buffered reader over one segment file, for recovery. */
typedef struct sb_store__reader {
    const sb_file_ops *ops;
    int fd;
    uint64_t size;           /* file size */
    uint8_t *buf;
    size_t cap;
    uint64_t buf_off;        /* file offset of buf[0] */
    size_t buf_len;
} sb_store__reader;

typedef struct sb_store__rec {
    uint8_t type;
    uint32_t len;            /* payload bytes */
    const uint8_t *payload;  /* borrowed: valid until the next reader call */
} sb_store__rec;

/* Reads the record at off. Returns 0 (good, *r set), 1 (no good record
 * there), or -errno. */
int sb_store__read_rec(sb_store__reader *rd, uint64_t off, sb_store__rec *r);
/* The offset of the next good record after the bad one at off, or 0. */
uint64_t sb_store__resync(sb_store__reader *rd, uint64_t off);
void sb_store__reader_free(sb_store__reader *rd);

/* store.c */
sb_store__seg *sb_store__seg_find(sb_store *st, uint32_t seq);
sb_store__seg *sb_store__seg_add(sb_store *st, uint32_t seq);
void sb_store__seg_add_target(sb_store__seg *s, uint32_t target);
void sb_store__seg_drop(sb_store *st, sb_store__seg *s);

/* commit.c */
int sb_store__commit_start(sb_store *st);
void sb_store__commit_stop(sb_store *st);
int sb_store__write_batch(sb_store *st, sb_store__batch *b);
sb_store__batch *sb_store__batch_new(void);
void sb_store__batch_reset(sb_store__batch *b);
void sb_store__batch_free(sb_store__batch *b);
bool sb_store__batch_empty(const sb_store__batch *b);

/* recover.c */
int sb_store__recover(sb_store *st);

#endif /* SB_STORE_INTERNAL_H */
