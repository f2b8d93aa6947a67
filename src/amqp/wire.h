/* wire.h - bounds-checked big-endian readers and small writers for the
 * AMQP codec. Module-internal: only the .c files of src/amqp (and the
 * codec's tests and fuzz target) include it.
 *
 * A reader walks a complete, caller-owned buffer. Its error is sticky:
 * the first read that would run past the end sets err to
 * SB_AMQP_EMALFORMED, returns zero, and every later read returns zero
 * without moving. A decoder can therefore read a whole argument list and
 * check err once at the end; no read ever touches a byte at or past len.
 * Lengths are compared against the space remaining, never as off + n,
 * so a 4-byte length of 0xFFFFFFFF cannot wrap.
 */
#ifndef SB_AMQP_WIRE_H
#define SB_AMQP_WIRE_H

#include "amqp.h"

typedef struct sb_amqp__rd {
    const uint8_t *p;   /* start of the buffer */
    size_t len;         /* bytes in the buffer */
    size_t off;         /* bytes consumed so far */
    int err;            /* 0, or the first SB_AMQP_E* met (sticky) */
    sb_arena *a;        /* where arrays of table entries are allocated */
    int depth;          /* table/array nesting level of the current read */
} sb_amqp__rd;

static inline sb_amqp__rd
sb_amqp__rd_make(const uint8_t *p, size_t len, sb_arena *a)
{
    return (sb_amqp__rd){ .p = p, .len = len, .off = 0, .err = 0, .a = a, .depth = 0 };
}

/* Records err unless an earlier error is already recorded. */
static inline void
sb_amqp__rd_fail(sb_amqp__rd *r, int err)
{
    if (r->err == 0)
        r->err = err;
}

static inline size_t
sb_amqp__rd_left(const sb_amqp__rd *r)
{
    return r->len - r->off;
}

/* True if n more bytes can be read; otherwise records EMALFORMED. */
static inline bool
sb_amqp__rd_need(sb_amqp__rd *r, size_t n)
{
    if (r->err != 0)
        return false;
    if (n > sb_amqp__rd_left(r)) {
        r->err = SB_AMQP_EMALFORMED;
        return false;
    }
    return true;
}

static inline uint8_t
sb_amqp__rd_u8(sb_amqp__rd *r)
{
    if (!sb_amqp__rd_need(r, 1))
        return 0;
    return r->p[r->off++];
}

static inline uint16_t
sb_amqp__rd_u16(sb_amqp__rd *r)
{
    const uint8_t *q;

    if (!sb_amqp__rd_need(r, 2))
        return 0;
    q = r->p + r->off;
    r->off += 2;
    return (uint16_t)((q[0] << 8) | q[1]);
}

static inline uint32_t
sb_amqp__rd_u32(sb_amqp__rd *r)
{
    const uint8_t *q;

    if (!sb_amqp__rd_need(r, 4))
        return 0;
    q = r->p + r->off;
    r->off += 4;
    return ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
}

static inline uint64_t
sb_amqp__rd_u64(sb_amqp__rd *r)
{
    uint64_t hi = sb_amqp__rd_u32(r);

    return (hi << 32) | sb_amqp__rd_u32(r);
}

/* A view of the next n bytes; SB_STR_NULL-like (len 0) on error. */
static inline sb_str
sb_amqp__rd_bytes(sb_amqp__rd *r, size_t n)
{
    sb_str s;

    if (!sb_amqp__rd_need(r, n))
        return (sb_str){ NULL, 0 };
    s = sb_str_make(r->p + r->off, n);
    r->off += n;
    return s;
}

/* shortstr: 1-byte length, then that many bytes. */
static inline sb_str
sb_amqp__rd_shortstr(sb_amqp__rd *r)
{
    uint8_t n = sb_amqp__rd_u8(r);

    return sb_amqp__rd_bytes(r, n);
}

/* A shortstr that must be UTF-8 (RabbitMQ's rule for every method's
 * short strings but basic.publish's): SB_AMQP_EUTF8 when it is not. */
static inline sb_str
sb_amqp__rd_shortstr_utf8(sb_amqp__rd *r)
{
    sb_str s = sb_amqp__rd_shortstr(r);

    if (r->err == 0 && !sb_amqp_utf8_valid(s))
        sb_amqp__rd_fail(r, SB_AMQP_EUTF8);
    return s;
}

/* longstr: 4-byte length, then that many bytes. */
static inline sb_str
sb_amqp__rd_longstr(sb_amqp__rd *r)
{
    uint32_t n = sb_amqp__rd_u32(r);

    return sb_amqp__rd_bytes(r, n);
}

/* Reads a field table (4-byte length prefix included) at the reader's
 * position, nested one level below r->depth. Defined in table.c. On
 * error records it in r->err and leaves *t empty. */
void sb_amqp__rd_table(sb_amqp__rd *r, sb_amqp_table *t);

/* Appends a shortstr; a string over 255 bytes is truncated to 255 (the
 * most the 1-byte length can say), so the output always parses. */
static inline void
sb_amqp__put_shortstr(sb_buf *b, sb_str s)
{
    size_t n = s.len > 255 ? 255 : s.len;

    sb_buf_put_u8(b, (uint8_t)n);
    sb_buf_append(b, s.p, n);
}

static inline void
sb_amqp__put_longstr(sb_buf *b, sb_str s)
{
    size_t n = s.len > UINT32_MAX ? UINT32_MAX : s.len;

    sb_buf_put_u32(b, (uint32_t)n);
    sb_buf_append(b, s.p, n);
}

#endif /* SB_AMQP_WIRE_H */
