/* test_broker_trace.c - per-action tracing without a socket: W3C
 * traceparent parsing (valid values, and every malformation the W3C
 * recommendation says to ignore), the trace ring's bound (old traces
 * evicted, memory fixed by trace_max_events, long attributes cut), and
 * the events the broker records for a traced message that is published,
 * delivered, rejected, retried and dead-lettered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "broker_test_util.h"
#include "common/mem.h"

static const char *const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static bool
parses(const char *s)
{
    sb_trace_ctx c;

    return sb_traceparent_parse(sb_str_c(s), &c);
}

static void
valid_traceparent_parses_into_its_ids(void **state)
{
    sb_trace_ctx c;
    char back[SB_TRACEPARENT_LEN + 1];
    char hex[33];

    assert_true(sb_traceparent_parse(sb_str_c(valid), &c));
    sb_trace_hex(c.trace_id, 16, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    sb_trace_hex(c.span_id, 8, hex);
    assert_string_equal(hex, "00f067aa0ba902b7");
    assert_int_equal(c.flags, 1);
    sb_traceparent_format(&c, back);
    assert_string_equal(back, valid);
}

static void
malformed_traceparents_are_ignored(void **state)
{
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      /* 54: short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",    /* 56: long for 00 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    /* 00 has no extras */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     /* non-hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* bad version */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* bad dash */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01",     /* dash misplaced */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    /* later: no '-' */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",     /* bad flags */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i]))
            fail_msg("accepted malformed traceparent '%s'", bad[i]);
    }
}

static void
later_versions_parse_when_extras_follow_a_dash(void **state)
{
    assert_true(parses("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_true(parses("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever"));
    assert_true(parses("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
}

static void
traceparent_header_is_found_as_string_or_bytes_only(void **state)
{
    sb_amqp_entry e = { SB_STR_LIT("traceparent"), { .kind = SB_FV_LONGSTR } };
    sb_amqp_table t = { .n = 1, .e = &e };
    sb_trace_ctx c;

    e.v.v.s = sb_str_c(valid);
    assert_true(sb_trace_ctx_from_headers(&t, &c));
    e.v.kind = SB_FV_BYTES;
    assert_true(sb_trace_ctx_from_headers(&t, &c));
    e.v.kind = SB_FV_I64;
    e.v.v.i = 7;
    assert_false(sb_trace_ctx_from_headers(&t, &c));
    e.key = SB_STR_LIT("Traceparent");
    e.v.kind = SB_FV_LONGSTR;
    e.v.v.s = sb_str_c(valid);
    assert_false(sb_trace_ctx_from_headers(&t, &c));
    assert_false(sb_trace_ctx_from_headers(NULL, &c));
}

static void
new_trace_ids_are_valid_and_differ(void **state)
{
    sb_trace_ctx a, b, again;
    char s[SB_TRACEPARENT_LEN + 1];

    sb_trace_ctx_new(&a);
    sb_trace_ctx_new(&b);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    sb_traceparent_format(&a, s);
    assert_true(sb_traceparent_parse(sb_str_c(s), &again));
    assert_memory_equal(again.trace_id, a.trace_id, 16);
    assert_memory_equal(again.span_id, a.span_id, 8);
}

/* ---- the ring ---- */

static sb_broker *
traced_broker(uint32_t max_events)
{
    sb_broker_limits lim = { .max_message_bytes = 1u << 20, .trace_max_events = max_events };

    return sb_broker_new(&lim);
}

static sb_trace_ctx
ctx_n(uint32_t n)
{
    sb_trace_ctx c = { .flags = 1 };

    c.trace_id[0] = 0xab;
    memcpy(c.trace_id + 12, &n, sizeof n);
    c.span_id[7] = 1;
    return c;
}

typedef struct collected {
    int n;
    sb_trace_kind kinds[64];
    uint64_t seqs[64];
} collected;

static void
collect(const sb_trace_view *ev, void *ud)
{
    collected *c = ud;

    if (c->n < 64) {
        c->kinds[c->n] = ev->kind;
        c->seqs[c->n] = ev->seq;
    }
    c->n++;
}

static int
events_of(sb_broker *b, const sb_trace_ctx *ctx, collected *c)
{
    sb_trace_summary s;

    memset(c, 0, sizeof *c);
    return sb_trace_get(b, ctx->trace_id, 0, &s, collect, c) ? c->n : -1;
}

static void
tracing_off_records_nothing(void **state)
{
    sb_broker *b = traced_broker(0);
    sb_trace_ctx c = ctx_n(1);
    sb_trace_stats st;
    collected got;

    assert_false(sb_trace_on(b));
    assert_null(sb_trace_begin(b, &c, SB_TRACE_PUBLISHED));
    sb_trace_str(NULL, SB_TK_QUEUE, SB_STR_LIT("q"));  /* the adders take NULL */
    assert_int_equal(events_of(b, &c, &got), -1);
    sb_trace_stats_get(b, &st);
    assert_int_equal(st.capacity, 0);
    assert_int_equal(st.bytes, 0);
    sb_broker_free(b);
}

static void
ring_evicts_the_oldest_traces_and_stays_bounded(void **state)
{
    sb_broker *b = traced_broker(8);
    sb_trace_ctx a = ctx_n(1), c;
    sb_trace_stats st2;
    collected got;

    /* Trace a: 3 events; then 100 single-event traces push it out. */
    sb_trace_begin(b, &a, SB_TRACE_PUBLISHED);
    sb_trace_begin(b, &a, SB_TRACE_ROUTED);
    sb_trace_begin(b, &a, SB_TRACE_DELIVERED);
    assert_int_equal(events_of(b, &a, &got), 3);
    assert_int_equal(got.kinds[2], SB_TRACE_DELIVERED);
    for (uint32_t i = 2; i < 7; i++) {
        c = ctx_n(i);
        sb_trace_begin(b, &c, SB_TRACE_PUBLISHED);
    }
    /* 8 events: a's 3 and 5 others; one more overwrites a's oldest. */
    assert_int_equal(events_of(b, &a, &got), 3);
    c = ctx_n(7);
    sb_trace_begin(b, &c, SB_TRACE_PUBLISHED);
    assert_int_equal(events_of(b, &a, &got), 2);
    assert_int_equal(got.kinds[0], SB_TRACE_ROUTED);
    for (uint32_t i = 8; i < 108; i++) {
        c = ctx_n(i);
        sb_trace_begin(b, &c, SB_TRACE_PUBLISHED);
    }
    assert_int_equal(events_of(b, &a, &got), -1);
    sb_trace_stats_get(b, &st2);
    assert_int_equal(st2.capacity, 8);
    assert_int_equal(st2.events, 8);
    assert_int_equal(st2.traces, 8);
    assert_int_equal(st2.recorded, 109);
    for (uint32_t i = 100; i < 108; i++) {
        c = ctx_n(i);
        assert_int_equal(events_of(b, &c, &got), 1);
    }
    c = ctx_n(99);
    assert_int_equal(events_of(b, &c, &got), -1);
    sb_broker_free(b);
}

static void
recording_allocates_nothing_past_the_reserved_ring(void **state)
{
    sb_broker *b = traced_broker(1024);
    sb_trace_ctx c = ctx_n(0);
    char name[255];
    sb_trace_stats st;
    uint64_t before, reserved, after;
    sb_trace_event *e;

    memset(name, 'n', sizeof name);
    before = sb_mem_used();
    sb_trace_begin(b, &c, SB_TRACE_PUBLISHED);
    reserved = sb_mem_used();
    sb_trace_stats_get(b, &st);
    /* What the first event reserved is what the stats (and the docs) say. */
    assert_true(reserved - before >= st.bytes - 4096);
    assert_true(reserved - before <= st.bytes + 65536);
    for (uint32_t i = 1; i < 50000; i++) {
        c = ctx_n(i);
        e = sb_trace_begin(b, &c, (sb_trace_kind)(i % SB_TRACE_KIND_COUNT));
        sb_trace_str(e, SB_TK_QUEUE, sb_str_make(name, sizeof name));
        sb_trace_int(e, SB_TK_SIZE, i);
    }
    after = sb_mem_used();
    sb_trace_stats_get(b, &st);
    assert_int_equal(st.traces, 1024);
    assert_int_equal(st.events, 1024);
    assert_true(after <= reserved + 4096);
    sb_broker_free(b);
}

static void
interleaved_traces_survive_eviction_in_order(void **state)
{
    sb_broker *b = traced_broker(16);
    sb_trace_ctx t[3] = { ctx_n(1), ctx_n(2), ctx_n(3) };
    collected got;

    for (int i = 0; i < 100; i++)
        sb_trace_begin(b, &t[i % 3], (sb_trace_kind)(i % SB_TRACE_KIND_COUNT));
    /* The last 16 events: 6 of t[0] (i%3==0 among 84..99), 5 each of the others. */
    assert_int_equal(events_of(b, &t[0], &got), 6);
    for (int i = 1; i < got.n; i++)
        assert_true(got.seqs[i] > got.seqs[i - 1]);
    assert_int_equal(events_of(b, &t[1], &got), 5);
    assert_int_equal(events_of(b, &t[2], &got), 5);
    assert_int_equal(got.seqs[got.n - 1], 99);  /* i = 98 is the 99th event */
    sb_broker_free(b);
}

typedef struct attrs_seen {
    bool truncated;
    int strings, ints;
    size_t first_len;
} attrs_seen;

static void
read_attrs(const sb_trace_view *ev, void *ud)
{
    attrs_seen *a = ud;
    sb_trace_attr at;
    size_t pos = 0;

    a->truncated = ev->truncated;
    while (sb_trace_attr_next(ev, &pos, &at)) {
        if (at.is_int) {
            a->ints++;
        } else {
            if (a->strings++ == 0)
                a->first_len = at.s.len;
            assert_int_equal(at.key, SB_TK_QUEUES);
        }
    }
}

static void
long_attributes_are_cut_to_the_slot(void **state)
{
    sb_broker *b = traced_broker(4);
    sb_trace_ctx c = ctx_n(1);
    sb_trace_event *e = sb_trace_begin(b, &c, SB_TRACE_ROUTED);
    char name[300];
    sb_trace_summary s;
    attrs_seen seen = { 0 };

    memset(name, 'q', sizeof name);
    for (int i = 0; i < 5; i++)
        sb_trace_str(e, SB_TK_QUEUES, sb_str_make(name, sizeof name));
    sb_trace_int(e, SB_TK_QUEUE_COUNT, 5);
    assert_true(sb_trace_get(b, c.trace_id, 0, &s, read_attrs, &seen));
    /* One string fills the 208-byte slot (2 bytes of key and length). */
    assert_true(seen.truncated);
    assert_int_equal(seen.strings, 1);
    assert_int_equal(seen.first_len, 206);
    assert_int_equal(seen.ints, 0);
    sb_broker_free(b);
}

/* ---- events the broker records ---- */

static sb_msg *
traced_msg(const char *rk, const char *tp)
{
    sb_amqp_entry e = { SB_STR_LIT("traceparent"), { .kind = SB_FV_LONGSTR } };
    sb_amqp_props p = { .flags = SB_PROP_HEADERS, .headers = { .n = 1, .e = &e } };
    sb_buf raw = SB_BUF_INIT;
    sb_msg *m;

    e.v.v.s = sb_str_c(tp);
    sb_amqp_props_encode(&raw, &p);
    m = sb_msg_new(sb_str_make(raw.data, raw.len), SB_STR_LIT(""), sb_str_c(rk), 4, 1, 0);
    memcpy(sb_msg_body(m), "body", 4);
    sb_buf_free(&raw);
    return m;
}

static void
publish_traced(sb_broker *b, sb_vhost *v, sb_msg *m)
{
    sb_amqp_props p;
    sb_arena a = SB_ARENA_INIT;
    sb_publish_result res;
    sb_error err = { 0 };
    sb_trace_who who = { "test connection", "guest", 3 };

    assert_int_equal(sb_amqp_props_decode(sb_msg_props(m).p, sb_msg_props(m).len, &p, &a), 0);
    sb_trace_mark(b, m, &p.headers);
    assert_int_equal(sb_publish_as(v, &who, m, &p.headers, &res, &err), 0);
    sb_arena_free(&a);
}

static void
traced_message_records_publish_delivery_reject_and_dead_letter(void **state)
{
    static const sb_trace_kind want[] = {
        SB_TRACE_PUBLISHED, SB_TRACE_ROUTED, SB_TRACE_DELIVERED, SB_TRACE_REJECTED,
        SB_TRACE_DEAD_LETTERED, SB_TRACE_GOT, SB_TRACE_ACKED,
    };
    sb_broker *b = traced_broker(64);
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, "conn");
    sb_amqp_entry dlx = { SB_STR_LIT("x-dead-letter-exchange"), { .kind = SB_FV_LONGSTR } };
    sb_amqp_table args = { .n = 1, .e = &dlx };
    sb_queue_decl d = { .name = SB_STR_LIT("work"), .args = &args };
    sb_queue_info info;
    sb_error err = { 0 };
    sb_deliver_info got_d;
    sb_trace_ctx ctx;
    tb_consumer fc;
    collected got;
    sb_msg *m;

    dlx.v.v.s = SB_STR_LIT("dead");
    tb_exchange(v, "dead", "fanout");
    tb_queue(v, "parked");
    tb_bind(v, "parked", "dead", "");
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_fc_init(&fc);
    assert_int_equal(tb_consume_full(ch, "work", NULL, false, false, 0, &fc, &err), 0);
    sb_bchan_set_who(ch, "consumer connection", "guest", 1);
    m = traced_msg("work", valid);
    publish_traced(b, v, m);
    assert_true(m->traced);
    sb_msg_unref(m);
    assert_int_equal(fc.n, 1);
    assert_int_equal(sb_bchan_nack(ch, fc.d[0].dtag, false, false, &err), 0);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("parked"), false, &got_d, &err), 0);
    assert_non_null(got_d.msg);
    assert_true(got_d.msg->traced);  /* the dead letter is still followed */
    assert_int_equal(sb_bchan_ack(ch, got_d.delivery_tag, false, &err), 0);
    sb_msg_unref(got_d.msg);

    assert_true(sb_traceparent_parse(sb_str_c(valid), &ctx));
    assert_int_equal(events_of(b, &ctx, &got), (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(sb_trace_kind_name(got.kinds[i]), sb_trace_kind_name(want[i]));
    sb_bchan_free(ch);
    sb_broker_free(b);
}

typedef struct last_event {
    sb_trace_kind kind;
    bool has_count;
    int64_t count;
} last_event;

static void
keep_last(const sb_trace_view *ev, void *ud)
{
    last_event *l = ud;
    sb_trace_attr a;
    size_t pos = 0;

    l->kind = ev->kind;
    l->has_count = false;
    while (sb_trace_attr_next(ev, &pos, &a))
        if (a.key == SB_TK_DELIVERY_COUNT) {
            l->has_count = true;
            l->count = a.i;
        }
}

static void
huge_traces_skip_the_delivery_count_walk(void **state)
{
    sb_broker *b = traced_broker(4096);
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, "conn");
    sb_deliver_info d;
    sb_error err = { 0 };
    sb_trace_summary s;
    sb_trace_ctx ctx;
    last_event last = { 0 };

    assert_true(sb_traceparent_parse(sb_str_c(valid), &ctx));
    tb_queue(v, "batch");
    for (int i = 0; i < 2; i++) {
        sb_msg *m = traced_msg("batch", valid);
        publish_traced(b, v, m);
        sb_msg_unref(m);
    }
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("batch"), true, &d, &err), 0);
    sb_msg_unref(d.msg);
    assert_true(sb_trace_get(b, ctx.trace_id, 0, &s, keep_last, &last));
    assert_int_equal(last.kind, SB_TRACE_GOT);
    assert_true(last.has_count);
    assert_int_equal(last.count, 1);
    /* One traceparent on a whole batch: 2 events per publish, past the 1024
     * events of a trace that a delivery count is worth walking. */
    for (int i = 0; i < 600; i++) {
        sb_msg *m = traced_msg("batch", valid);
        publish_traced(b, v, m);
        sb_msg_unref(m);
    }
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("batch"), true, &d, &err), 0);
    sb_msg_unref(d.msg);
    assert_true(sb_trace_get(b, ctx.trace_id, 0, &s, keep_last, &last));
    assert_int_equal(last.kind, SB_TRACE_GOT);
    assert_false(last.has_count);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
untraced_and_malformed_messages_record_nothing(void **state)
{
    sb_broker *b = traced_broker(64);
    sb_vhost *v = tb_vhost(b);
    sb_trace_stats st;
    sb_msg *m;

    tb_queue(v, "q");
    assert_true(tb_pub(v, "", "q", "plain"));
    m = traced_msg("q", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
    publish_traced(b, v, m);
    assert_false(m->traced);
    sb_msg_unref(m);
    sb_trace_stats_get(b, &st);
    assert_int_equal(st.recorded, 0);
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_traceparent_parses_into_its_ids),
        cmocka_unit_test(malformed_traceparents_are_ignored),
        cmocka_unit_test(later_versions_parse_when_extras_follow_a_dash),
        cmocka_unit_test(traceparent_header_is_found_as_string_or_bytes_only),
        cmocka_unit_test(new_trace_ids_are_valid_and_differ),
        cmocka_unit_test(tracing_off_records_nothing),
        cmocka_unit_test(ring_evicts_the_oldest_traces_and_stays_bounded),
        cmocka_unit_test(recording_allocates_nothing_past_the_reserved_ring),
        cmocka_unit_test(interleaved_traces_survive_eviction_in_order),
        cmocka_unit_test(long_attributes_are_cut_to_the_slot),
        cmocka_unit_test(traced_message_records_publish_delivery_reject_and_dead_letter),
        cmocka_unit_test(huge_traces_skip_the_delivery_count_walk),
        cmocka_unit_test(untraced_and_malformed_messages_record_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
