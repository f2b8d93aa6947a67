/* test_amqp_methods.c - the generated method codec: ids and info table,
 * golden bytes both ways, bit packing, round trips of every method,
 * truncation at every length, unknown ids and limits.
 *
 * Inputs that a decoder must not read past are copied to the end of a
 * page followed by a PROT_NONE page (guarded()), so an overread faults
 * even without ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "amqp_test_util.h"

/* Every method id the info table knows, found by scanning the id space
 * the spec uses (classes up to 100, methods up to 130). */
static size_t
all_method_ids(uint32_t *ids, size_t cap)
{
    size_t n = 0;

    for (uint32_t c = 0; c <= 100; c++)
        for (uint32_t m = 0; m <= 130; m++)
            if (sb_amqp_method_info_get(SB_METHOD_ID(c, m)) != NULL) {
                assert_true(n < cap);
                ids[n++] = SB_METHOD_ID(c, m);
            }
    return n;
}

/* Decodes payload, which must succeed, and re-encodes it to compare. */
static void
assert_decodes_and_reencodes(const uint8_t *payload, size_t len, sb_amqp_method *m,
                             sb_arena *a)
{
    sb_buf b = SB_BUF_INIT;

    assert_int_equal(sb_amqp_method_decode(guarded(payload, len), len, m, a), 0);
    sb_amqp_method_encode(&b, m);
    assert_bytes_equal(b.data, b.len, payload, len);
    sb_buf_free(&b);
}

/* ---- golden payloads ---- */

static const uint8_t tune_payload[] = {
    0x00, 0x0A, 0x00, 0x1E, /* connection.tune (10, 30) */
    0x07, 0xFF,             /* channel-max 2047 */
    0x00, 0x02, 0x00, 0x00, /* frame-max 131072 */
    0x00, 0x3C,             /* heartbeat 60 */
};

static const uint8_t declare_payload[] = {
    0x00, 0x32, 0x00, 0x0A,                       /* queue.declare (50, 10) */
    0x00, 0x00,                                   /* ticket */
    5, 't', 'a', 's', 'k', 's',                   /* queue */
    0x02,                                         /* bits: durable */
    0x00, 0x00, 0x00, 43,                         /* arguments */
    13, 'x', '-', 'm', 'e', 's', 's', 'a', 'g', 'e', '-', 't', 't', 'l',
    'I', 0x00, 0x00, 0xEA, 0x60,                  /* 60000 */
    12, 'x', '-', 'q', 'u', 'e', 'u', 'e', '-', 't', 'y', 'p', 'e',
    'S', 0x00, 0x00, 0x00, 6, 'q', 'u', 'o', 'r', 'u', 'm',
};

static const uint8_t publish_payload[] = {
    0x00, 0x3C, 0x00, 0x28,                       /* basic.publish (60, 40) */
    0x00, 0x00,                                   /* ticket */
    4, 'l', 'o', 'g', 's',                        /* exchange */
    5, 'h', 'e', 'l', 'l', 'o',                   /* routing-key */
    0x01,                                         /* bits: mandatory */
};

static const uint8_t deliver_payload[] = {
    0x00, 0x3C, 0x00, 0x3C,                       /* basic.deliver (60, 60) */
    4, 'c', 't', 'a', 'g',                        /* consumer-tag */
    0, 0, 0, 0, 0, 0, 0, 42,                      /* delivery-tag */
    0x01,                                         /* bits: redelivered */
    0,                                            /* exchange "" */
    1, 'q',                                       /* routing-key */
};

/* ---- tests ---- */

static void
method_ids_pack_class_and_method(void **state)
{
    assert_int_equal(SB_M_EXCHANGE_UNBIND_OK, (40u << 16) | 51u);
    assert_int_equal(SB_M_QUEUE_DECLARE, (50u << 16) | 10u);
    assert_int_equal(SB_M_BASIC_RECOVER_ASYNC, SB_METHOD_ID(60, 100));
    assert_int_equal(SB_M_CONNECTION_UPDATE_SECRET_OK, SB_METHOD_ID(10, 71));
    assert_int_equal(SB_M_CONFIRM_SELECT, SB_METHOD_ID(SB_CLASS_CONFIRM, 10));
    assert_int_equal(SB_CLASS_TX, 90);
}

static void
method_info_gives_spec_name_and_flags(void **state)
{
    const sb_amqp_method_info *i = sb_amqp_method_info_get(SB_M_QUEUE_DECLARE);

    assert_non_null(i);
    assert_int_equal(i->id, SB_M_QUEUE_DECLARE);
    assert_string_equal(i->name, "queue.declare");
    assert_true(i->synchronous);
    assert_false(i->content);
    i = sb_amqp_method_info_get(SB_M_BASIC_PUBLISH);
    assert_string_equal(i->name, "basic.publish");
    assert_false(i->synchronous);
    assert_true(i->content);
    assert_string_equal(sb_amqp_method_info_get(SB_M_BASIC_RECOVER_ASYNC)->name,
                        "basic.recover-async");
    assert_string_equal(sb_amqp_method_info_get(SB_M_EXCHANGE_UNBIND_OK)->name,
                        "exchange.unbind-ok");
    assert_true(sb_amqp_method_info_get(SB_M_BASIC_GET_OK)->content);
}

static void
method_info_knows_all_66_methods_and_nothing_else(void **state)
{
    uint32_t ids[128];
    size_t n = all_method_ids(ids, 128);

    assert_int_equal(n, 66);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sb_amqp_method_info_get(ids[i])->id, ids[i]);
    assert_null(sb_amqp_method_info_get(SB_METHOD_ID(10, 12)));
    assert_null(sb_amqp_method_info_get(SB_METHOD_ID(40, 41)));
    assert_null(sb_amqp_method_info_get(0));
    assert_null(sb_amqp_method_info_get(UINT32_MAX));
}

static void
connection_tune_decodes_from_golden_bytes(void **state)
{
    sb_amqp_method m;

    assert_decodes_and_reencodes(tune_payload, sizeof tune_payload, &m, *state);
    assert_int_equal(m.id, SB_M_CONNECTION_TUNE);
    assert_int_equal(m.u.connection_tune.channel_max, 2047);
    assert_int_equal(m.u.connection_tune.frame_max, 131072);
    assert_int_equal(m.u.connection_tune.heartbeat, 60);
}

static void
connection_tune_method_frame_encodes_to_golden_bytes(void **state)
{
    static const uint8_t want[] = {
        0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0C,
        0x00, 0x0A, 0x00, 0x1E, 0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C,
        0xCE,
    };
    sb_amqp_method m = { .id = SB_M_CONNECTION_TUNE };
    sb_buf b = SB_BUF_INIT;

    m.u.connection_tune = (sb_m_connection_tune){ 2047, 131072, 60 };
    sb_buf_append(&b, "xy", 2); /* the frame is appended after what is there */
    sb_amqp_method_frame_encode(&b, 5, &m);
    assert_bytes_equal(b.data + 2, b.len - 2, want, sizeof want);
    sb_buf_free(&b);
}

static void
queue_declare_with_arguments_decodes_from_golden_bytes(void **state)
{
    sb_amqp_method m;
    const sb_m_queue_declare *q = &m.u.queue_declare;
    int64_t ttl;

    assert_decodes_and_reencodes(declare_payload, sizeof declare_payload, &m, *state);
    assert_int_equal(m.id, SB_M_QUEUE_DECLARE);
    assert_true(sb_str_eq_c(q->queue, "tasks"));
    assert_false(q->passive);
    assert_true(q->durable);
    assert_false(q->exclusive || q->auto_delete || q->nowait);
    assert_int_equal(q->arguments.n, 2);
    assert_true(sb_amqp_value_int(sb_amqp_table_get(&q->arguments, "x-message-ttl"), &ttl));
    assert_int_equal(ttl, 60000);
    assert_true(sb_str_eq_c(sb_amqp_table_get(&q->arguments, "x-queue-type")->v.s, "quorum"));
}

static void
queue_declare_built_in_memory_encodes_to_golden_bytes(void **state)
{
    sb_amqp_entry args[] = {
        { SB_STR_LIT("x-message-ttl"), { .kind = SB_FV_I32, .v.i = 60000 } },
        { SB_STR_LIT("x-queue-type"), { .kind = SB_FV_LONGSTR, .v.s = SB_STR_LIT("quorum") } },
    };
    sb_amqp_method m = { .id = SB_M_QUEUE_DECLARE };
    sb_buf b = SB_BUF_INIT;

    m.u.queue_declare.queue = SB_STR_LIT("tasks");
    m.u.queue_declare.durable = true;
    m.u.queue_declare.arguments = (sb_amqp_table){ 2, args, { NULL, 0 } };
    sb_amqp_method_encode(&b, &m);
    assert_bytes_equal(b.data, b.len, declare_payload, sizeof declare_payload);
    sb_buf_free(&b);
}

static void
queue_declare_bits_pack_into_one_octet_lsb_first(void **state)
{
    uint8_t in[sizeof declare_payload];
    sb_amqp_method m;
    const sb_m_queue_declare *q = &m.u.queue_declare;

    memcpy(in, declare_payload, sizeof in);
    for (int bit = 0; bit < 5; bit++) {
        in[12] = (uint8_t)(1u << bit);
        assert_decodes_and_reencodes(in, sizeof in, &m, *state);
        bool got[5] = { q->passive, q->durable, q->exclusive, q->auto_delete, q->nowait };
        for (int i = 0; i < 5; i++)
            assert_int_equal(got[i], i == bit);
    }
    in[12] = 0x1F;
    assert_decodes_and_reencodes(in, sizeof in, &m, *state);
    assert_true(q->passive && q->durable && q->exclusive && q->auto_delete && q->nowait);
}

static void
basic_nack_packs_multiple_and_requeue_in_one_octet(void **state)
{
    sb_amqp_method m = { .id = SB_M_BASIC_NACK };
    sb_buf b = SB_BUF_INIT;

    m.u.basic_nack = (sb_m_basic_nack){ .delivery_tag = 7, .multiple = false, .requeue = true };
    sb_amqp_method_encode(&b, &m);
    assert_bytes_equal(b.data, b.len,
                       (const uint8_t *)"\x00\x3c\x00\x78\0\0\0\0\0\0\0\x07\x02", 13);
    sb_buf_free(&b);
}

static void
basic_publish_decodes_and_encodes_golden_bytes(void **state)
{
    sb_amqp_method m;

    assert_decodes_and_reencodes(publish_payload, sizeof publish_payload, &m, *state);
    assert_int_equal(m.id, SB_M_BASIC_PUBLISH);
    assert_true(sb_str_eq_c(m.u.basic_publish.exchange, "logs"));
    assert_true(sb_str_eq_c(m.u.basic_publish.routing_key, "hello"));
    assert_true(m.u.basic_publish.mandatory);
    assert_false(m.u.basic_publish.immediate);
}

static void
basic_deliver_decodes_and_encodes_golden_bytes(void **state)
{
    sb_amqp_method m;

    assert_decodes_and_reencodes(deliver_payload, sizeof deliver_payload, &m, *state);
    assert_int_equal(m.id, SB_M_BASIC_DELIVER);
    assert_true(sb_str_eq_c(m.u.basic_deliver.consumer_tag, "ctag"));
    assert_int_equal(m.u.basic_deliver.delivery_tag, 42);
    assert_true(m.u.basic_deliver.redelivered);
    assert_int_equal(m.u.basic_deliver.exchange.len, 0);
    assert_true(sb_str_eq_c(m.u.basic_deliver.routing_key, "q"));
}

static void
connection_start_round_trips_server_properties(void **state)
{
    sb_amqp_entry caps[] = { { SB_STR_LIT("publisher_confirms"), { .kind = 't', .v.b = true } } };
    sb_amqp_entry props[] = {
        { SB_STR_LIT("product"), { .kind = 'S', .v.s = SB_STR_LIT("Switchboard") } },
        { SB_STR_LIT("capabilities"), { .kind = 'F', .v.t = { 1, caps, { NULL, 0 } } } },
    };
    sb_amqp_method m = { .id = SB_M_CONNECTION_START }, d;
    sb_m_connection_start *s = &m.u.connection_start;
    sb_buf b = SB_BUF_INIT;

    *s = (sb_m_connection_start){ 0, 9, { 2, props, { NULL, 0 } }, SB_STR_LIT("PLAIN AMQPLAIN"),
                                  SB_STR_LIT("en_US") };
    sb_amqp_method_encode(&b, &m);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, b.len), b.len, &d, *state), 0);
    assert_int_equal(d.u.connection_start.version_minor, 9);
    assert_true(sb_amqp_table_equal(&d.u.connection_start.server_properties,
                                    &s->server_properties));
    assert_true(sb_str_eq_c(d.u.connection_start.mechanisms, "PLAIN AMQPLAIN"));
    assert_true(sb_str_eq_c(d.u.connection_start.locales, "en_US"));
    sb_buf_free(&b);
}

static void
every_method_round_trips_and_is_malformed_when_truncated(void **state)
{
    uint32_t ids[128];
    size_t n = all_method_ids(ids, 128);

    for (size_t i = 0; i < n; i++) {
        sb_amqp_method m = { .id = ids[i] }, d;
        sb_buf b = SB_BUF_INIT;

        sb_amqp_method_encode(&b, &m);
        assert_decodes_and_reencodes(b.data, b.len, &d, *state);
        assert_int_equal(d.id, ids[i]);
        /* Every argument takes at least one byte, so each shorter prefix
         * is missing one. */
        for (size_t cut = 0; cut < b.len; cut++)
            assert_int_equal(sb_amqp_method_decode(guarded(b.data, cut), cut, &d, *state),
                             SB_AMQP_EMALFORMED);
        sb_buf_free(&b);
    }
}

static void
method_truncated_at_every_length_is_malformed(void **state)
{
    static const struct { const uint8_t *p; size_t len; } golden[] = {
        { tune_payload, sizeof tune_payload },
        { declare_payload, sizeof declare_payload },
        { publish_payload, sizeof publish_payload },
        { deliver_payload, sizeof deliver_payload },
    };
    sb_amqp_method m;

    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++)
        for (size_t cut = 0; cut < golden[g].len; cut++)
            assert_int_equal(sb_amqp_method_decode(guarded(golden[g].p, cut), cut, &m, *state),
                             SB_AMQP_EMALFORMED);
}

static void
method_trailing_bytes_are_ignored(void **state)
{
    uint8_t in[sizeof tune_payload + 4];
    sb_amqp_method m;

    memcpy(in, tune_payload, sizeof tune_payload);
    memcpy(in + sizeof tune_payload, "junk", 4);
    assert_int_equal(sb_amqp_method_decode(guarded(in, sizeof in), sizeof in, &m, *state), 0);
    assert_int_equal(m.u.connection_tune.heartbeat, 60);
}

static void
unknown_class_or_method_is_unknown_error(void **state)
{
    static const uint8_t bad[][4] = {
        { 0, 10, 0, 12 },   /* connection, no method 12 */
        { 0, 99, 0, 10 },   /* no class 99 */
        { 0, 40, 0, 41 },   /* exchange.unbind-ok is 51, not 41 */
        { 0, 0, 0, 0 },
        { 0xFF, 0xFF, 0xFF, 0xFF },
    };
    sb_amqp_method m;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sb_amqp_method_decode(guarded(bad[i], 4), 4, &m, *state),
                         SB_AMQP_EUNKNOWN);
}

static void
shortstr_longer_than_255_is_truncated_on_encode(void **state)
{
    char name[300];
    sb_amqp_method m = { .id = SB_M_QUEUE_DELETE }, d;
    sb_buf b = SB_BUF_INIT;

    memset(name, 'n', sizeof name);
    m.u.queue_delete.queue = sb_str_make(name, sizeof name);
    sb_amqp_method_encode(&b, &m);
    assert_int_equal(b.len, 4 + 2 + 1 + 255 + 1);
    assert_int_equal(b.data[6], 255);
    assert_int_equal(sb_amqp_method_decode(b.data, b.len, &d, *state), 0);
    assert_int_equal(d.u.queue_delete.queue.len, 255);
    sb_buf_free(&b);
}

static void
method_arguments_nested_past_limit_is_depth_error(void **state)
{
    sb_amqp_entry e[SB_AMQP_TABLE_MAX_DEPTH];
    sb_amqp_method m = { .id = SB_M_QUEUE_DECLARE }, d;
    sb_buf b = SB_BUF_INIT;

    /* arguments is level 1; e[0..MAX-1] add MAX more levels. */
    for (int i = 0; i < SB_AMQP_TABLE_MAX_DEPTH; i++) {
        e[i].key = SB_STR_LIT("k");
        e[i].v.kind = SB_FV_TABLE;
        e[i].v.v.t = (sb_amqp_table){ i + 1 < SB_AMQP_TABLE_MAX_DEPTH, &e[i + 1], { NULL, 0 } };
    }
    m.u.queue_declare.arguments = (sb_amqp_table){ 1, e, { NULL, 0 } };
    sb_amqp_method_encode(&b, &m);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, b.len), b.len, &d, *state),
                     SB_AMQP_EDEPTH);
    sb_buf_free(&b);
}

static void
method_without_arguments_encodes_only_its_ids(void **state)
{
    sb_amqp_method m = { .id = SB_M_TX_SELECT }, d;
    sb_buf b = SB_BUF_INIT;

    sb_amqp_method_encode(&b, &m);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\x00\x5a\x00\x0a", 4);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, 4), 4, &d, *state), 0);
    assert_int_equal(d.id, SB_M_TX_SELECT);
    sb_buf_free(&b);
}

/* A short string that is not UTF-8 fails the decode of any method but
 * basic.publish (RabbitMQ's 501 "Malformed UTF-8 in shortstr"). */
static void
shortstrs_must_be_utf8_except_in_basic_publish(void **state)
{
    sb_amqp_method d;
    sb_buf b = SB_BUF_INIT;
    sb_amqp_method q = { .id = SB_M_QUEUE_DECLARE };
    sb_amqp_method p = { .id = SB_M_BASIC_PUBLISH };

    q.u.queue_declare.queue = SB_STR_LIT("q-\xc0\xaf");
    sb_amqp_method_encode(&b, &q);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, b.len), b.len, &d, *state),
                     SB_AMQP_EUTF8);
    sb_buf_reset(&b);
    q.u.queue_declare.queue = SB_STR_LIT("q-\xc3\xa9-\xed\xa0\x80");  /* é, a surrogate */
    sb_amqp_method_encode(&b, &q);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, b.len), b.len, &d, *state), 0);
    sb_buf_reset(&b);
    p.u.basic_publish.routing_key = SB_STR_LIT("k-\xff");
    sb_amqp_method_encode(&b, &p);
    assert_int_equal(sb_amqp_method_decode(guarded(b.data, b.len), b.len, &d, *state), 0);
    assert_true(sb_str_eq_c(d.u.basic_publish.routing_key, "k-\xff"));
    sb_buf_free(&b);
    assert_true(sb_amqp_utf8_valid(SB_STR_LIT("")));
    assert_true(sb_amqp_utf8_valid(SB_STR_LIT("\xf0\x9f\x98\x80\xf7\xbf\xbf\xbf")));
    assert_false(sb_amqp_utf8_valid(SB_STR_LIT("\xe0\x80\xaf")));
    assert_false(sb_amqp_utf8_valid(SB_STR_LIT("\xf0\x8f\xbf\xbf")));
    assert_false(sb_amqp_utf8_valid(SB_STR_LIT("\xe2\x82")));
    assert_false(sb_amqp_utf8_valid(SB_STR_LIT("\xe2\x28\xa1")));
    assert_false(sb_amqp_utf8_valid(SB_STR_LIT("\xf8\x88\x80\x80\x80")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(method_ids_pack_class_and_method),
        cmocka_unit_test(shortstrs_must_be_utf8_except_in_basic_publish),
        cmocka_unit_test(method_info_gives_spec_name_and_flags),
        cmocka_unit_test(method_info_knows_all_66_methods_and_nothing_else),
        cmocka_unit_test(connection_tune_decodes_from_golden_bytes),
        cmocka_unit_test(connection_tune_method_frame_encodes_to_golden_bytes),
        cmocka_unit_test(queue_declare_with_arguments_decodes_from_golden_bytes),
        cmocka_unit_test(queue_declare_built_in_memory_encodes_to_golden_bytes),
        cmocka_unit_test(queue_declare_bits_pack_into_one_octet_lsb_first),
        cmocka_unit_test(basic_nack_packs_multiple_and_requeue_in_one_octet),
        cmocka_unit_test(basic_publish_decodes_and_encodes_golden_bytes),
        cmocka_unit_test(basic_deliver_decodes_and_encodes_golden_bytes),
        cmocka_unit_test(connection_start_round_trips_server_properties),
        cmocka_unit_test(every_method_round_trips_and_is_malformed_when_truncated),
        cmocka_unit_test(method_truncated_at_every_length_is_malformed),
        cmocka_unit_test(method_trailing_bytes_are_ignored),
        cmocka_unit_test(unknown_class_or_method_is_unknown_error),
        cmocka_unit_test(shortstr_longer_than_255_is_truncated_on_encode),
        cmocka_unit_test(method_arguments_nested_past_limit_is_depth_error),
        cmocka_unit_test(method_without_arguments_encodes_only_its_ids),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
