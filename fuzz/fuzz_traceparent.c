/* fuzz_traceparent.c - libFuzzer target for the W3C traceparent parser
 * (src/broker/traceparent.c), the one piece of tracing that reads bytes
 * from outside: AMQP headers and HTTP request headers.
 *
 * Each input is parsed as a traceparent value as-is, and also decoded as
 * a field table whose "traceparent" entry is looked up, so seeds made of
 * encoded header tables reach the lookup. Whatever parses must survive a
 * round trip: formatting it gives the 55-character version-00 form, which
 * parses back to the same ids and flags, and a version-00 input is
 * exactly its own formatted form. A mismatch aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/traceparent.h"

static sb_arena arena;

static void
check(bool ok)
{
    if (!ok)
        abort();
}

static void
round_trip(const uint8_t *data, size_t size, const sb_trace_ctx *c)
{
    char s[SB_TRACEPARENT_LEN + 1];
    sb_trace_ctx again;

    sb_traceparent_format(c, s);
    check(strlen(s) == SB_TRACEPARENT_LEN);
    check(sb_traceparent_parse(sb_str_make(s, SB_TRACEPARENT_LEN), &again));
    check(memcmp(again.trace_id, c->trace_id, 16) == 0);
    check(memcmp(again.span_id, c->span_id, 8) == 0);
    check(again.flags == c->flags);
    if (size >= 2 && data[0] == '0' && data[1] == '0')
        check(size == SB_TRACEPARENT_LEN && memcmp(data, s, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_trace_ctx c;
    sb_amqp_table t;
    uint8_t id[16];

    if (sb_traceparent_parse(sb_str_make(data, size), &c))
        round_trip(data, size, &c);
    if (sb_trace_unhex(sb_str_make(data, size), id, sizeof id)) {
        char hex[SB_TRACE_ID_HEX + 1];
        sb_trace_hex(id, sizeof id, hex);
        check(size == SB_TRACE_ID_HEX && memcmp(hex, data, size) == 0);
    }
    if (sb_amqp_table_decode(data, size, &t, &arena) > 0 && sb_trace_ctx_from_headers(&t, &c)) {
        const sb_amqp_value *v = sb_amqp_table_get(&t, "traceparent");
        check(v != NULL);
        round_trip(v->v.s.p, v->v.s.len, &c);
    }
    sb_arena_reset(&arena);
    return 0;
}
