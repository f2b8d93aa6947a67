/* traceparent.c - W3C traceparent values (traceparent.h). Any thread; no
 * state. The parser follows the W3C Trace Context recommendation's
 * processing model: version 00 is exactly 55 characters; a later version
 * may be longer, but only if a '-' follows the flags; version ff, an
 * all-zero trace id or parent id, and upper-case hex are invalid. */
#include "traceparent.h"

#include <string.h>
#include <sys/random.h>

#include "../common/clock.h"

static int
hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;  /* upper case is invalid too (W3C: HEXDIGLC) */
}

bool
sb_trace_unhex(sb_str s, uint8_t *out, size_t n)
{
    if (s.len != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s.p[2 * i]), lo = hexval(s.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void
sb_trace_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

bool
sb_traceparent_parse(sb_str s, sb_trace_ctx *out)
{
    sb_trace_ctx c;
    uint8_t version;

    /* vv-<32>-<16>-ff: dashes at 2, 35 and 52. */
    if (s.len < SB_TRACEPARENT_LEN || s.p[2] != '-' || s.p[35] != '-' || s.p[52] != '-')
        return false;
    if (!sb_trace_unhex(sb_str_make(s.p, 2), &version, 1) || version == 0xff)
        return false;
    if (version == 0 ? s.len != SB_TRACEPARENT_LEN
                     : s.len > SB_TRACEPARENT_LEN && s.p[SB_TRACEPARENT_LEN] != '-')
        return false;
    if (!sb_trace_unhex(sb_str_make(s.p + 3, SB_TRACE_ID_HEX), c.trace_id, 16) ||
        !sb_trace_unhex(sb_str_make(s.p + 36, SB_SPAN_ID_HEX), c.span_id, 8) ||
        !sb_trace_unhex(sb_str_make(s.p + 53, 2), &c.flags, 1))
        return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return false;
    *out = c;
    return true;
}

void
sb_traceparent_format(const sb_trace_ctx *c, char out[SB_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    sb_trace_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    sb_trace_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    sb_trace_hex(&c->flags, 1, out + 53);
}

bool
sb_trace_ctx_from_headers(const sb_amqp_table *h, sb_trace_ctx *out)
{
    const sb_amqp_value *v = h ? sb_amqp_table_get(h, "traceparent") : NULL;

    if (v == NULL || (v->kind != SB_FV_LONGSTR && v->kind != SB_FV_BYTES))
        return false;
    return sb_traceparent_parse(v->v.s, out);
}

static void
random_bytes(uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n) {
        /* No entropy yet (early boot): unique enough for a trace id. */
        uint64_t x = sb_clock_us() ^ ((uint64_t)(uintptr_t)p << 17);
        for (size_t i = got; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            p[i] = (uint8_t)(x >> 56);
        }
    }
}

void
sb_trace_ctx_new(sb_trace_ctx *out)
{
    do
        random_bytes(out->trace_id, sizeof out->trace_id);
    while (all_zero(out->trace_id, 16));
    do
        random_bytes(out->span_id, sizeof out->span_id);
    while (all_zero(out->span_id, 8));
    out->flags = 1;
}
