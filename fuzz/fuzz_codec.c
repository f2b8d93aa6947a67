/* fuzz_codec.c - libFuzzer target for the whole AMQP codec.
 *
 * Each input is fed to every decoder as-is (protocol header check, frame
 * parse, method decode, content header decode, table decode) and also
 * read as a stream of frames whose payloads go to the decoder their type
 * selects, so seeds made of real frames reach deep into method and
 * header decoding. Whatever decodes is re-encoded and decoded again:
 * encode(decode(x)) must be a fixed point, and a mismatch aborts.
 *
 * One arena serves every decode and is reset at the end of each run, so
 * a run leaves nothing allocated that the next run does not reuse.
 */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp.h"

static sb_arena arena;

static void
check(bool ok)
{
    if (!ok)
        abort();
}

static bool
buf_eq(const sb_buf *a, const sb_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void
fuzz_method(const uint8_t *p, size_t len)
{
    sb_amqp_method m, again;
    sb_buf b1 = SB_BUF_INIT, b2 = SB_BUF_INIT;

    if (sb_amqp_method_decode(p, len, &m, &arena) != 0)
        return;
    check(sb_amqp_method_info_get(m.id) != NULL);
    sb_amqp_method_encode(&b1, &m);
    check(sb_amqp_method_decode(b1.data, b1.len, &again, &arena) == 0);
    check(again.id == m.id);
    sb_amqp_method_encode(&b2, &again);
    check(buf_eq(&b1, &b2));
    sb_buf_reset(&b2);
    sb_amqp_method_frame_encode(&b2, 1, &again);
    check(b2.len == b1.len + SB_AMQP_FRAME_OVERHEAD);
    sb_buf_free(&b1);
    sb_buf_free(&b2);
}

static void
fuzz_header(const uint8_t *p, size_t len)
{
    sb_amqp_header h;
    sb_amqp_props again;
    sb_buf b1 = SB_BUF_INIT, b2 = SB_BUF_INIT;
    sb_amqp_frame f;

    if (sb_amqp_header_decode(p, len, &h, &arena) != 0)
        return;
    sb_amqp_props_encode(&b1, &h.props);
    check(sb_amqp_props_decode(b1.data, b1.len, &again, &arena) == 0);
    sb_amqp_props_encode(&b2, &again);
    check(buf_eq(&b1, &b2));
    sb_buf_reset(&b2);
    sb_amqp_header_frame_encode(&b2, 1, h.class_id, h.body_size, h.props_raw);
    check(sb_amqp_frame_parse(b2.data, b2.len, 0, &f) == (ssize_t)b2.len);
    check(f.payload.len == len);
    sb_buf_free(&b1);
    sb_buf_free(&b2);
}

static void
fuzz_table(const uint8_t *p, size_t len)
{
    sb_amqp_table t, again;
    sb_buf b = SB_BUF_INIT;
    ssize_t n = sb_amqp_table_decode(p, len, &t, &arena);

    if (n < 0)
        return;
    check((size_t)n <= len && n >= 4);
    t.raw = SB_STR_NULL; /* re-encode the top level from its entries */
    sb_amqp_table_encode(&b, &t);
    check(sb_amqp_table_decode(b.data, b.len, &again, &arena) == (ssize_t)b.len);
    check(sb_amqp_table_equal(&t, &again));
    for (uint32_t i = 0; i < t.n; i++) {
        char key[256];
        int64_t v;

        /* Keys are shortstrs (<= 255 bytes); one without a NUL must be found. */
        memcpy(key, t.e[i].key.p, t.e[i].key.len);
        key[t.e[i].key.len] = '\0';
        if (memchr(key, '\0', t.e[i].key.len) == NULL)
            check(sb_amqp_table_get(&again, key) != NULL);
        (void)sb_amqp_value_int(&t.e[i].v, &v);
    }
    sb_buf_free(&b);
}

/* Reads data as a stream of frames, as a connection would after the
 * protocol header, and decodes each payload by its frame type. */
static void
fuzz_frames(const uint8_t *data, size_t size)
{
    size_t off = 0;
    sb_amqp_frame f;
    ssize_t n;

    while ((n = sb_amqp_frame_parse(data + off, size - off, 131072, &f)) > 0) {
        check((size_t)n <= size - off);
        if (f.type == SB_AMQP_FRAME_METHOD)
            fuzz_method(f.payload.p, f.payload.len);
        else if (f.type == SB_AMQP_FRAME_HEADER)
            fuzz_header(f.payload.p, f.payload.len);
        off += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_amqp_frame f;
    ssize_t hdr = sb_amqp_protocol_header_check(data, size);

    (void)sb_amqp_frame_parse(data, size, 0, &f);
    fuzz_frames(hdr == 8 ? data + 8 : data, hdr == 8 ? size - 8 : size);
    fuzz_method(data, size);
    fuzz_header(data, size);
    fuzz_table(data, size);
    sb_arena_reset(&arena);
    return 0;
}
