/* test_amqp_props.c - content headers and basic properties: golden
 * bytes both ways, all fourteen properties, the raw property view,
 * flag-word rules and truncation.
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

/* ---- golden payload ---- */

/* basic content header: body of 11 bytes, six properties. */
static const uint8_t header_payload[] = {
    0x00, 0x3C, 0x00, 0x00,                       /* class basic, weight 0 */
    0, 0, 0, 0, 0, 0, 0, 11,                      /* body-size */
    0xB4, 0x48,                                   /* flags: content-type, headers,
                                                     delivery-mode, correlation-id,
                                                     timestamp, app-id */
    10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
    0, 0, 0, 8, 5, 'r', 'e', 't', 'r', 'y', 'b', 3, /* headers {retry: 3} */
    2,                                            /* delivery-mode persistent */
    3, 'c', '-', '1',                             /* correlation-id */
    0, 0, 0, 0, 0x65, 0x5E, 0x7E, 0x00,           /* timestamp */
    3, 'a', 'p', 'p',                             /* app-id */
};

#define PROPS_OFF 12 /* where the flags start in header_payload */

/* ---- tests ---- */

static void
content_header_with_several_properties_decodes_from_golden_bytes(void **state)
{
    sb_amqp_header h;
    const sb_amqp_props *p = &h.props;
    int64_t retry;

    assert_int_equal(sb_amqp_header_decode(guarded(header_payload, sizeof header_payload),
                                           sizeof header_payload, &h, *state), 0);
    assert_int_equal(h.class_id, SB_CLASS_BASIC);
    assert_int_equal(h.body_size, 11);
    assert_int_equal(p->flags, SB_PROP_CONTENT_TYPE | SB_PROP_HEADERS | SB_PROP_DELIVERY_MODE |
                                   SB_PROP_CORRELATION_ID | SB_PROP_TIMESTAMP | SB_PROP_APP_ID);
    assert_true(sb_str_eq_c(p->content_type, "text/plain"));
    assert_true(sb_amqp_value_int(sb_amqp_table_get(&p->headers, "retry"), &retry));
    assert_int_equal(retry, 3);
    assert_int_equal(p->delivery_mode, 2);
    assert_int_equal(p->priority, 0);
    assert_true(sb_str_eq_c(p->correlation_id, "c-1"));
    assert_int_equal(p->timestamp, 0x655E7E00u);
    assert_true(sb_str_eq_c(p->app_id, "app"));
    assert_int_equal(p->reply_to.len, 0);
}

static void
header_props_raw_spans_flags_to_end_of_payload(void **state)
{
    sb_amqp_header h;
    const uint8_t *in = guarded(header_payload, sizeof header_payload);

    assert_int_equal(sb_amqp_header_decode(in, sizeof header_payload, &h, *state), 0);
    assert_ptr_equal(h.props_raw.p, in + PROPS_OFF);
    assert_int_equal(h.props_raw.len, sizeof header_payload - PROPS_OFF);
}

static void
props_built_in_memory_encode_to_golden_bytes(void **state)
{
    sb_amqp_entry headers[] = { { SB_STR_LIT("retry"), { .kind = SB_FV_I8, .v.i = 3 } } };
    sb_amqp_props p = {
        .flags = SB_PROP_CONTENT_TYPE | SB_PROP_HEADERS | SB_PROP_DELIVERY_MODE |
                 SB_PROP_CORRELATION_ID | SB_PROP_TIMESTAMP | SB_PROP_APP_ID,
        .content_type = SB_STR_LIT("text/plain"),
        .headers = { 1, headers, { NULL, 0 } },
        .delivery_mode = 2,
        .priority = 9,                            /* flag not set: not written */
        .correlation_id = SB_STR_LIT("c-1"),
        .timestamp = 0x655E7E00u,
        .app_id = SB_STR_LIT("app"),
    };
    sb_buf b = SB_BUF_INIT;

    sb_amqp_props_encode(&b, &p);
    assert_bytes_equal(b.data, b.len, header_payload + PROPS_OFF,
                       sizeof header_payload - PROPS_OFF);
    sb_buf_free(&b);
}

static void
all_fourteen_properties_round_trip(void **state)
{
    sb_amqp_props p = {
        .flags = 0xFFFC,
        .content_type = SB_STR_LIT("application/json"),
        .content_encoding = SB_STR_LIT("gzip"),
        .headers = { 0, NULL, { NULL, 0 } },
        .delivery_mode = 1,
        .priority = 5,
        .correlation_id = SB_STR_LIT("corr"),
        .reply_to = SB_STR_LIT("amq.rabbitmq.reply-to"),
        .expiration = SB_STR_LIT("60000"),
        .message_id = SB_STR_LIT("m-1"),
        .timestamp = 1700000000,
        .type = SB_STR_LIT("order.created"),
        .user_id = SB_STR_LIT("guest"),
        .app_id = SB_STR_LIT("shop"),
        .cluster_id = SB_STR_LIT("c"),
    }, d;
    sb_buf b = SB_BUF_INIT, again = SB_BUF_INIT;

    sb_amqp_props_encode(&b, &p);
    assert_int_equal(sb_amqp_props_decode(guarded(b.data, b.len), b.len, &d, *state), 0);
    assert_int_equal(d.flags, 0xFFFC);
    assert_true(sb_str_eq(d.content_encoding, p.content_encoding));
    assert_int_equal(d.priority, 5);
    assert_true(sb_str_eq(d.reply_to, p.reply_to));
    assert_true(sb_str_eq(d.expiration, p.expiration));
    assert_true(sb_str_eq(d.message_id, p.message_id));
    assert_true(sb_str_eq(d.type, p.type));
    assert_true(sb_str_eq(d.user_id, p.user_id));
    assert_true(sb_str_eq(d.cluster_id, p.cluster_id));
    assert_int_equal(d.headers.n, 0);
    sb_amqp_props_encode(&again, &d);
    assert_bytes_equal(again.data, again.len, b.data, b.len);
    sb_buf_free(&b);
    sb_buf_free(&again);
}

static void
props_with_no_flags_are_two_zero_bytes(void **state)
{
    sb_amqp_props p = { .flags = 0, .content_type = SB_STR_LIT("ignored") }, d;
    sb_buf b = SB_BUF_INIT;

    sb_amqp_props_encode(&b, &p);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\0\0", 2);
    assert_int_equal(sb_amqp_props_decode(guarded(b.data, 2), 2, &d, *state), 0);
    assert_int_equal(d.flags, 0);
    assert_null(d.content_type.p);
    sb_buf_free(&b);
}

static void
props_encode_drops_flag_bits_that_name_no_property(void **state)
{
    sb_amqp_props p = { .flags = SB_PROP_PRIORITY | 0x0003, .priority = 4 };
    sb_buf b = SB_BUF_INIT;

    sb_amqp_props_encode(&b, &p);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\x08\x00\x04", 3);
    sb_buf_free(&b);
}

static void
header_continuation_bit_is_malformed(void **state)
{
    uint8_t in[sizeof header_payload];
    sb_amqp_header h;

    memcpy(in, header_payload, sizeof in);
    in[PROPS_OFF + 1] |= 0x01;
    assert_int_equal(sb_amqp_header_decode(guarded(in, sizeof in), sizeof in, &h, *state),
                     SB_AMQP_EMALFORMED);
}

static void
header_unused_flag_bit_1_is_malformed(void **state)
{
    uint8_t in[sizeof header_payload];
    sb_amqp_header h;

    memcpy(in, header_payload, sizeof in);
    in[PROPS_OFF + 1] |= 0x02;
    assert_int_equal(sb_amqp_header_decode(guarded(in, sizeof in), sizeof in, &h, *state),
                     SB_AMQP_EMALFORMED);
}

static void
header_truncated_at_every_length_is_malformed(void **state)
{
    sb_amqp_header h;

    /* The last property ends the payload, so every prefix lacks a byte. */
    for (size_t n = 0; n < sizeof header_payload; n++)
        assert_int_equal(sb_amqp_header_decode(guarded(header_payload, n), n, &h, *state),
                         SB_AMQP_EMALFORMED);
}

static void
header_bytes_after_the_properties_are_kept_in_props_raw(void **state)
{
    uint8_t in[sizeof header_payload + 2];
    sb_amqp_header h;

    memcpy(in, header_payload, sizeof header_payload);
    in[sizeof header_payload] = 0xAA;
    in[sizeof header_payload + 1] = 0xBB;
    assert_int_equal(sb_amqp_header_decode(guarded(in, sizeof in), sizeof in, &h, *state), 0);
    assert_int_equal(h.props_raw.len, sizeof in - PROPS_OFF);
}

static void
props_headers_nested_past_limit_is_depth_error(void **state)
{
    sb_amqp_entry e[SB_AMQP_TABLE_MAX_DEPTH];
    sb_amqp_props p = { .flags = SB_PROP_HEADERS }, d;
    sb_buf b = SB_BUF_INIT;

    for (int i = 0; i < SB_AMQP_TABLE_MAX_DEPTH; i++) {
        e[i].key = SB_STR_LIT("k");
        e[i].v.kind = SB_FV_TABLE;
        e[i].v.v.t = (sb_amqp_table){ i + 1 < SB_AMQP_TABLE_MAX_DEPTH, &e[i + 1], { NULL, 0 } };
    }
    p.headers = (sb_amqp_table){ 1, e, { NULL, 0 } };
    sb_amqp_props_encode(&b, &p);
    assert_int_equal(sb_amqp_props_decode(guarded(b.data, b.len), b.len, &d, *state),
                     SB_AMQP_EDEPTH);
    sb_buf_free(&b);
}

static void
header_frame_encode_writes_golden_bytes(void **state)
{
    static const uint8_t want[] = {
        0x02, 0x00, 0x07, 0x00, 0x00, 0x00, 0x0F,    /* header frame, channel 7, 15 bytes */
        0x00, 0x3C, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0x01, 0x00, /* basic, weight, 256 */
        0x10, 0x00, 0x02,                             /* delivery-mode 2 */
        0xCE,
    };
    sb_buf b = SB_BUF_INIT;

    sb_amqp_header_frame_encode(&b, 7, SB_CLASS_BASIC, 256, SB_STR_LIT("\x10\x00\x02"));
    assert_bytes_equal(b.data, b.len, want, sizeof want);
    sb_buf_free(&b);
}

static void
header_frame_encode_then_parse_and_decode_round_trips(void **state)
{
    sb_buf b = SB_BUF_INIT;
    sb_amqp_frame f;
    sb_amqp_header h;
    sb_str raw = sb_str_make(header_payload + PROPS_OFF, sizeof header_payload - PROPS_OFF);

    sb_amqp_header_frame_encode(&b, 1, SB_CLASS_BASIC, 11, raw);
    assert_int_equal(sb_amqp_frame_parse(b.data, b.len, 131072, &f), b.len);
    assert_int_equal(f.type, SB_AMQP_FRAME_HEADER);
    assert_bytes_equal(f.payload.p, f.payload.len, header_payload, sizeof header_payload);
    assert_int_equal(sb_amqp_header_decode(f.payload.p, f.payload.len, &h, *state), 0);
    assert_true(sb_str_eq(h.props_raw, raw));
    sb_buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_header_with_several_properties_decodes_from_golden_bytes),
        cmocka_unit_test(header_props_raw_spans_flags_to_end_of_payload),
        cmocka_unit_test(props_built_in_memory_encode_to_golden_bytes),
        cmocka_unit_test(all_fourteen_properties_round_trip),
        cmocka_unit_test(props_with_no_flags_are_two_zero_bytes),
        cmocka_unit_test(props_encode_drops_flag_bits_that_name_no_property),
        cmocka_unit_test(header_continuation_bit_is_malformed),
        cmocka_unit_test(header_unused_flag_bit_1_is_malformed),
        cmocka_unit_test(header_truncated_at_every_length_is_malformed),
        cmocka_unit_test(header_bytes_after_the_properties_are_kept_in_props_raw),
        cmocka_unit_test(props_headers_nested_past_limit_is_depth_error),
        cmocka_unit_test(header_frame_encode_writes_golden_bytes),
        cmocka_unit_test(header_frame_encode_then_parse_and_decode_round_trips),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
