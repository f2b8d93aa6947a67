/* queue_page.c - messages with no log record, paged out to the paging
 * files (store/pagefile.c) when their queue is past its memory window.
 *
 * queue_spill.c decides what leaves RAM and keeps the order; this file
 * only turns a queue entry into a paging record and back. A record holds
 * everything the entry and its message need to come back exactly: the
 * properties in their wire form (headers, x-death, priority...), exchange,
 * routing key, body, delivery mode, the expiration property and when the
 * entry expires (the loop's monotonic clock: paging files never outlive
 * the process). Whether it was delivered before is in the sb_spilled
 * entry. Layout, little-endian (also in store/FORMAT.md):
 *   u64 expires_at | i32 expiration_ms | u8 delivery_mode | u8 priority |
 *   u8 exchange_len | u8 rk_len | u32 props_len | props | exchange | rk | body
 * (delivery_mode's top bit: the message is traced, trace.c).
 * Loop thread only.
 */
#include "broker_int.h"

#include <errno.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "../store/pagefile.h"

#define PAGE_HDR 20
#define READ_SLACK 256  /* bytes read beyond the body for properties, in one pread */

static void
le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
le_get(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int
sb_broker_open_paging(sb_broker *b, const char *dir)
{
    int rc;

    sb_pagefile_close(b->pager);
    b->pager = NULL;
    if ((rc = sb_pagefile_open(dir, NULL, &b->pager)) < 0)
        sb_log(SB_LOG_WARN, "store", "cannot use %s for paging files: %s; transient messages "
               "will all stay in RAM", dir, strerror(-rc));
    return rc;
}

void
sb_broker__paging_free(sb_broker *b)
{
    sb_pagefile_close(b->pager);
    b->pager = NULL;
    sb_buf_free(&b->page_buf);
}

int
sb_broker__page_out(sb_broker *b, const sb_qentry *e, sb_spilled *out)
{
    const sb_msg *m = e->msg;
    uint8_t h[PAGE_HDR];
    sb_pagefile_loc loc;
    sb_str parts[2];
    int rc;

    le_put(h, e->expires_at, 8);
    le_put(h + 8, (uint32_t)m->expiration_ms, 4);
    h[12] = (uint8_t)(m->delivery_mode | m->traced << 7);  /* still followed when paged in */
    h[13] = m->priority;
    h[14] = m->exchange_len;
    h[15] = m->rk_len;
    le_put(h + 16, m->props_len, 4);
    parts[0] = sb_str_make(h, sizeof h);
    /* props | exchange | routing key | body are contiguous in a message. */
    parts[1] = sb_str_make(m->data, (size_t)m->props_len + m->exchange_len + m->rk_len +
                                        m->body_len);
    if ((rc = sb_pagefile_append(b->pager, parts, 2, &loc)) < 0)
        return rc;
    out->segment = loc.file;
    out->offset = loc.offset;
    out->len_flags = m->body_len | SB_SPILL_PAGED | (e->redelivered ? SB_SPILL_DELIVERED : 0) |
                     (e->expires_at ? SB_SPILL_EXPIRES : 0);
    return 0;
}

/* The message in a paging record, or NULL when the bytes do not add up. */
static sb_msg *
decode(sb_str r, uint32_t body_len, uint64_t *expires_at)
{
    size_t props_len, xl, rl;
    sb_msg *m;

    if (r.len < PAGE_HDR)
        return NULL;
    props_len = (size_t)le_get(r.p + 16, 4);
    xl = r.p[14];
    rl = r.p[15];
    if (r.len - PAGE_HDR < props_len || r.len - PAGE_HDR - props_len != xl + rl + body_len)
        return NULL;
    m = sb_msg_new(sb_str_make(r.p + PAGE_HDR, props_len),
                   sb_str_make(r.p + PAGE_HDR + props_len, xl),
                   sb_str_make(r.p + PAGE_HDR + props_len + xl, rl), body_len, r.p[12] & 0x7f,
                   r.p[13]);
    if (m == NULL)
        return NULL;
    m->traced = r.p[12] >> 7;
    memcpy(sb_msg_body(m), r.p + PAGE_HDR + props_len + xl + rl, body_len);
    m->expiration_ms = (int32_t)(uint32_t)le_get(r.p + 8, 4);
    *expires_at = le_get(r.p, 8);
    return m;
}

sb_msg *
sb_broker__page_in(sb_broker *b, const sb_spilled *sp, uint64_t *expires_at, int *err)
{
    sb_pagefile_loc loc = { .file = sp->segment, .offset = sp->offset };
    uint32_t body_len = SB_SPILL_LEN(sp->len_flags);
    sb_msg *m = NULL;
    int rc = -ENOENT;

    if (b->pager != NULL &&
        (rc = sb_pagefile_read(b->pager, loc, PAGE_HDR + (size_t)body_len + READ_SLACK,
                               &b->page_buf)) == 0) {
        m = decode(sb_str_make(b->page_buf.data, b->page_buf.len), body_len, expires_at);
        if (m == NULL)
            rc = -EILSEQ;
    }
    *err = rc;
    sb_broker__page_release(b, sp);
    if (b->page_buf.cap > (1u << 20))
        sb_buf_free(&b->page_buf);  /* one big message must not pin its size for good */
    return m;
}

void
sb_broker__page_release(sb_broker *b, const sb_spilled *sp)
{
    if (b->pager != NULL)
        sb_pagefile_release(b->pager, (sb_pagefile_loc){ .file = sp->segment,
                                                          .offset = sp->offset });
}

void
sb_broker__page_flush(sb_broker *b)
{
    if (b->pager != NULL)
        (void)sb_pagefile_flush(b->pager);  /* a failure is logged there; bytes stay buffered */
}

bool
sb_broker__page_writable(sb_broker *b)
{
    return b->pager != NULL && sb_pagefile_writable(b->pager);
}

void
sb_broker_paging_stats(const sb_broker *b, uint32_t *files, uint64_t *live)
{
    sb_pagefile_stats st = { 0 };

    if (b->pager != NULL)
        sb_pagefile_get_stats(b->pager, &st);
    *files = st.files;
    *live = st.live;
}
