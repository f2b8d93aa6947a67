/* buf.h - growable byte buffer.
 *
 * data[0..len) is valid; cap is the allocation. A buffer only moves
 * (reallocates) inside the sb_buf_* calls that say they may grow it, so
 * pointers into data are valid until the next such call.
 */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

typedef struct sb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} sb_buf;

#define SB_BUF_INIT ((sb_buf){ NULL, 0, 0 })

void sb_buf_free(sb_buf *b);
/* Ensures room for extra more bytes; may move data. */
void sb_buf_reserve(sb_buf *b, size_t extra);
/* Appends n bytes; may move data. */
void sb_buf_append(sb_buf *b, const void *p, size_t n);
static inline void sb_buf_append_str(sb_buf *b, sb_str s) { sb_buf_append(b, s.p, s.len); }
/* Reserves n bytes at the end, returns a pointer to them, grows len. */
uint8_t *sb_buf_extend(sb_buf *b, size_t n);
/* Removes the first n bytes (memmove). */
void sb_buf_consume(sb_buf *b, size_t n);
static inline void sb_buf_reset(sb_buf *b) { b->len = 0; }

void sb_buf_put_u8(sb_buf *b, uint8_t v);
void sb_buf_put_u16(sb_buf *b, uint16_t v);  /* big-endian, as AMQP */
void sb_buf_put_u32(sb_buf *b, uint32_t v);
void sb_buf_put_u64(sb_buf *b, uint64_t v);
/* Overwrites 4 bytes at off (for length prefixes written after the fact). */
void sb_buf_set_u32(sb_buf *b, size_t off, uint32_t v);

#endif /* SB_BUF_H */
