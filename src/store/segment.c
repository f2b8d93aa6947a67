/* segment.c - segment files: names, headers, record framing, and the
 * buffered reader recovery uses to walk them.
 *
 * A record is len u32 | crc u32 | type u8 | flags u8 | reserved u16 |
 * payload (FORMAT.md). The reader never trusts a length from disk: it
 * checks it against the bytes left in the file before reading or
 * allocating. Runs on the loop thread (the commit thread only uses the
 * encoders).
 */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "store/crc32c.h"

#define READ_CHUNK (1u << 20)  /* bytes read at a time while scanning */

void
sb_store__seg_name(char *buf, size_t n, const char *dir, uint32_t seq)
{
    snprintf(buf, n, "%s/%010u.seg", dir, seq);
}

int
sb_store__seg_parse_name(const char *name, uint32_t *seq)
{
    uint64_t v = 0;

    for (int i = 0; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (strcmp(name + 10, ".seg") != 0 || v > UINT32_MAX || v == 0)
        return -1;
    *seq = (uint32_t)v;
    return 0;
}

void
sb_store__seg_header(uint8_t out[SB_SEG_HDR_SIZE], uint32_t seq)
{
    memset(out, 0, SB_SEG_HDR_SIZE);
    memcpy(out, SB_SEG_MAGIC, 8);
    sb_store__put32(out + 8, SB_SEG_VERSION);
    sb_store__put64(out + 16, seq);
    sb_store__put32(out + 28, sb_store__crc32c(0, out, 28));
}

uint32_t
sb_store__rec_crc(const uint8_t *rec, uint32_t payload_len)
{
    uint32_t c = sb_store__crc32c(0, rec, 4);
    return sb_store__crc32c(c, rec + 8, 4 + (size_t)payload_len);
}

void
sb_store__rec_seal(uint8_t *rec, uint8_t type, uint32_t payload_len)
{
    sb_store__put32(rec, payload_len);
    rec[8] = type;
    rec[9] = 0;
    rec[10] = 0;
    rec[11] = 0;
    sb_store__put32(rec + 4, sb_store__rec_crc(rec, payload_len));
}

/* Makes file bytes [off, off+n) available at *p. Returns 0, 1 if they run
 * past the end of the file, or -errno. */
static int
reader_get(sb_store__reader *rd, uint64_t off, size_t n, const uint8_t **p)
{
    if (off > rd->size || n > rd->size - off)
        return 1;
    if (off >= rd->buf_off && off + n <= rd->buf_off + rd->buf_len) {
        *p = rd->buf + (off - rd->buf_off);
        return 0;
    }
    size_t want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > rd->size - off)
        want = (size_t)(rd->size - off);
    if (want > rd->cap) {
        uint8_t *nb = sb_try_malloc(want);
        if (nb == NULL)
            return -ENOMEM;
        sb_free(rd->buf);
        rd->buf = nb;
        rd->cap = want;
    }
    ssize_t got = sb_file_pread_all(rd->ops, rd->fd, rd->buf, want, off);
    if (got < 0)
        return (int)got;
    rd->buf_off = off;
    rd->buf_len = (size_t)got;
    if ((size_t)got < n)
        return 1;
    *p = rd->buf;
    return 0;
}

int
sb_store__read_rec(sb_store__reader *rd, uint64_t off, sb_store__rec *r)
{
    const uint8_t *p;
    int rc = reader_get(rd, off, SB_REC_HDR_SIZE, &p);

    if (rc != 0)
        return rc;
    uint32_t len = sb_store__get32(p);
    if (len > SB_STORE_MAX_RECORD + SB_REC_MSG_FIXED ||
        len > rd->size - off - SB_REC_HDR_SIZE)
        return 1;
    if ((rc = reader_get(rd, off, SB_REC_HDR_SIZE + (size_t)len, &p)) != 0)
        return rc;
    if (sb_store__get32(p + 4) != sb_store__rec_crc(p, len))
        return 1;
    r->type = p[8];
    r->len = len;
    r->payload = p + SB_REC_HDR_SIZE;
    return 0;
}

uint64_t
sb_store__resync(sb_store__reader *rd, uint64_t off)
{
    const uint8_t *p;
    sb_store__rec r;

    /* A flipped bit in a payload leaves the length sound: try the record
     * that would follow before searching byte by byte. */
    if (reader_get(rd, off, SB_REC_HDR_SIZE, &p) == 0) {
        uint64_t next = off + SB_REC_HDR_SIZE + sb_store__get32(p);
        if (next < rd->size && sb_store__read_rec(rd, next, &r) == 0)
            return next;
    }
    for (uint64_t o = off + 1; o + SB_REC_HDR_SIZE <= rd->size; o++)
        if (sb_store__read_rec(rd, o, &r) == 0)
            return o;
    return 0;
}

void
sb_store__reader_free(sb_store__reader *rd)
{
    sb_free(rd->buf);
    rd->buf = NULL;
    rd->cap = 0;
    rd->buf_len = 0;
}
