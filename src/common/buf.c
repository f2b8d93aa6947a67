/* buf.c - see buf.h. */
#include "buf.h"

#include <string.h>

#include "alloc.h"

void
sb_buf_free(sb_buf *b)
{
    sb_free(b->data);
    *b = SB_BUF_INIT;
}

void
sb_buf_reserve(sb_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    size_t cap;

    if (need <= b->cap)
        return;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = sb_realloc(b->data, cap);
    b->cap = cap;
}

void
sb_buf_append(sb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    sb_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

uint8_t *
sb_buf_extend(sb_buf *b, size_t n)
{
    uint8_t *p;

    sb_buf_reserve(b, n);
    p = b->data + b->len;
    b->len += n;
    return p;
}

void
sb_buf_consume(sb_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void
sb_buf_put_u8(sb_buf *b, uint8_t v)
{
    *sb_buf_extend(b, 1) = v;
}

void
sb_buf_put_u16(sb_buf *b, uint16_t v)
{
    uint8_t *p = sb_buf_extend(b, 2);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void
sb_buf_put_u32(sb_buf *b, uint32_t v)
{
    uint8_t *p = sb_buf_extend(b, 4);
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void
sb_buf_put_u64(sb_buf *b, uint64_t v)
{
    sb_buf_put_u32(b, (uint32_t)(v >> 32));
    sb_buf_put_u32(b, (uint32_t)v);
}

void
sb_buf_set_u32(sb_buf *b, size_t off, uint32_t v)
{
    uint8_t *p = b->data + off;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
