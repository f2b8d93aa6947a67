/* test_amqp_frame.c - framing: the protocol header, splitting frames
 * off a byte stream (partial, complete, oversized, bad end octet, bad
 * type) and encoding frame envelopes.
 *
 * Inputs that the parser must not read past are copied to the end of a
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

/* ---- golden frame ---- */

/* connection.tune on channel 0: channel-max 2047, frame-max 131072,
 * heartbeat 60. */
static const uint8_t tune_frame[] = {
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C,     /* method frame, channel 0, 12 bytes */
    0x00, 0x0A, 0x00, 0x1E,                       /* connection.tune */
    0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C,
    0xCE,
};

/* ---- tests ---- */

static void
protocol_header_is_amqp_0_9_1(void **state)
{
    assert_memory_equal(sb_amqp_protocol_header, "AMQP\x00\x00\x09\x01", 8);
}

static void
protocol_header_check_accepts_the_0_9_1_header(void **state)
{
    assert_int_equal(sb_amqp_protocol_header_check(guarded("AMQP\0\0\x09\x01", 8), 8), 8);
    /* Whatever follows (the first frame) is not the header's business. */
    assert_int_equal(sb_amqp_protocol_header_check((const uint8_t *)"AMQP\0\0\x09\x01\x01", 9),
                     8);
}

static void
protocol_header_check_needs_more_for_a_matching_prefix(void **state)
{
    for (size_t n = 0; n < 8; n++)
        assert_int_equal(sb_amqp_protocol_header_check(guarded(sb_amqp_protocol_header, n), n),
                         0);
}

static void
protocol_header_check_rejects_other_versions_and_protocols(void **state)
{
    static const char *bad[] = {
        "AMQP\0\0\x09\x00",  /* 0-9-0 */
        "AMQP\x01\x01\x00\x0a", /* 0-10 */
        "AMQP\0\x01\0\0",    /* 1.0 */
        "GET / HT",
        "\x01\x00\x00\x00\x00\x00\x0c\x00", /* a frame without the header */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sb_amqp_protocol_header_check(guarded(bad[i], 8), 8),
                         SB_AMQP_EMALFORMED);
    /* A mismatch is reported as soon as the differing byte arrives. */
    assert_int_equal(sb_amqp_protocol_header_check(guarded("AMQX", 4), 4), SB_AMQP_EMALFORMED);
}

static void
frame_parse_splits_a_golden_tune_frame(void **state)
{
    const uint8_t *in = guarded(tune_frame, sizeof tune_frame);
    sb_amqp_frame f;

    assert_int_equal(sb_amqp_frame_parse(in, sizeof tune_frame, 4096, &f), sizeof tune_frame);
    assert_int_equal(f.type, SB_AMQP_FRAME_METHOD);
    assert_int_equal(f.channel, 0);
    assert_ptr_equal(f.payload.p, in + 7);
    assert_int_equal(f.payload.len, 12);
}

static void
frame_parse_needs_more_at_every_shorter_length(void **state)
{
    sb_amqp_frame f;

    for (size_t n = 0; n < sizeof tune_frame; n++)
        assert_int_equal(sb_amqp_frame_parse(guarded(tune_frame, n), n, 4096, &f), 0);
}

static void
frame_parse_consumes_one_frame_of_several(void **state)
{
    uint8_t in[2 * sizeof tune_frame + 8];
    sb_amqp_frame f;
    size_t off = 0;
    ssize_t n;

    memcpy(in, tune_frame, sizeof tune_frame);
    sb_buf b = SB_BUF_INIT;
    sb_amqp_heartbeat_encode(&b);
    memcpy(in + sizeof tune_frame, b.data, 8);
    memcpy(in + sizeof tune_frame + 8, tune_frame, sizeof tune_frame);
    sb_buf_free(&b);

    n = sb_amqp_frame_parse(in, sizeof in, 0, &f);
    assert_int_equal(n, sizeof tune_frame);
    off += (size_t)n;
    n = sb_amqp_frame_parse(in + off, sizeof in - off, 0, &f);
    assert_int_equal(n, 8);
    assert_int_equal(f.type, SB_AMQP_FRAME_HEARTBEAT);
    assert_int_equal(f.payload.len, 0);
    off += (size_t)n;
    assert_int_equal(sb_amqp_frame_parse(in + off, sizeof in - off, 0, &f), sizeof tune_frame);
}

static void
frame_parse_bad_end_octet_is_frame_end_error(void **state)
{
    uint8_t in[sizeof tune_frame];
    sb_amqp_frame f;

    memcpy(in, tune_frame, sizeof in);
    in[sizeof in - 1] = 0xCD;
    assert_int_equal(sb_amqp_frame_parse(guarded(in, sizeof in), sizeof in, 4096, &f),
                     SB_AMQP_EFRAME_END);
}

static void
frame_parse_unknown_type_is_frame_type_error(void **state)
{
    uint8_t in[sizeof tune_frame];
    sb_amqp_frame f;

    memcpy(in, tune_frame, sizeof in);
    for (int t = 0; t < 256; t++) {
        if (t == 1 || t == 2 || t == 3 || t == 8)
            continue;
        in[0] = (uint8_t)t;
        assert_int_equal(sb_amqp_frame_parse(guarded(in, sizeof in), sizeof in, 4096, &f),
                         SB_AMQP_EFRAME_TYPE);
        /* Known from the first byte, before the rest of the header. */
        assert_int_equal(sb_amqp_frame_parse(guarded(in, 1), 1, 4096, &f), SB_AMQP_EFRAME_TYPE);
    }
}

static void
frame_parse_every_valid_type_is_accepted(void **state)
{
    static const uint8_t types[] = { 1, 2, 3, 8 };
    uint8_t in[sizeof tune_frame];
    sb_amqp_frame f;

    memcpy(in, tune_frame, sizeof in);
    for (size_t i = 0; i < sizeof types; i++) {
        in[0] = types[i];
        assert_int_equal(sb_amqp_frame_parse(guarded(in, sizeof in), sizeof in, 4096, &f),
                         sizeof in);
        assert_int_equal(f.type, types[i]);
    }
}

static void
frame_parse_size_over_frame_max_is_too_big_from_the_header_alone(void **state)
{
    /* 4089 payload bytes + 8 overhead = 4097 > 4096; only 7 bytes present. */
    static const uint8_t hdr[] = { 0x03, 0x00, 0x01, 0x00, 0x00, 0x0F, 0xF9 };
    sb_amqp_frame f;

    assert_int_equal(sb_amqp_frame_parse(guarded(hdr, sizeof hdr), sizeof hdr, 4096, &f),
                     SB_AMQP_ETOO_BIG);
    /* With 6 bytes the size is not known yet. */
    assert_int_equal(sb_amqp_frame_parse(guarded(hdr, 6), 6, 4096, &f), 0);
}

static void
frame_parse_size_exactly_frame_max_is_accepted(void **state)
{
    uint8_t in[4096];
    sb_amqp_frame f;

    memset(in, 0, sizeof in);
    memcpy(in, "\x03\x00\x01\x00\x00\x0F\xF8", 7); /* 4088 + 8 = 4096 */
    in[sizeof in - 1] = 0xCE;
    assert_int_equal(sb_amqp_frame_parse(guarded(in, sizeof in), sizeof in, 4096, &f),
                     sizeof in);
    assert_int_equal(f.channel, 1);
    assert_int_equal(f.payload.len, 4088);
    /* A smaller limit refuses the same frame. */
    assert_int_equal(sb_amqp_frame_parse(in, sizeof in, 4095, &f), SB_AMQP_ETOO_BIG);
}

static void
frame_parse_size_near_4_gib_does_not_wrap(void **state)
{
    static const uint8_t hdr[] = { 0x03, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xCE };
    sb_amqp_frame f;

    assert_int_equal(sb_amqp_frame_parse(guarded(hdr, sizeof hdr), sizeof hdr, 131072, &f),
                     SB_AMQP_ETOO_BIG);
    assert_int_equal(sb_amqp_frame_parse(guarded(hdr, sizeof hdr), sizeof hdr, UINT32_MAX, &f),
                     SB_AMQP_ETOO_BIG);
    /* frame_max 0 means no limit: the parser just waits for 4 GiB. */
    assert_int_equal(sb_amqp_frame_parse(guarded(hdr, sizeof hdr), sizeof hdr, 0, &f), 0);
}

static void
heartbeat_encode_writes_golden_bytes(void **state)
{
    sb_buf b = SB_BUF_INIT;

    sb_amqp_heartbeat_encode(&b);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\x08\0\0\0\0\0\0\xce", 8);
    sb_buf_free(&b);
}

static void
frame_start_and_end_encode_wrap_a_body_payload(void **state)
{
    static const uint8_t want[] = { 0x03, 0x01, 0x02, 0x00, 0x00, 0x00, 0x05,
                                    'h', 'e', 'l', 'l', 'o', 0xCE };
    sb_buf b = SB_BUF_INIT;
    sb_amqp_frame f;

    sb_amqp_frame_start_encode(&b, SB_AMQP_FRAME_BODY, 0x0102, 5);
    sb_buf_append(&b, "hello", 5);
    sb_amqp_frame_end_encode(&b);
    assert_bytes_equal(b.data, b.len, want, sizeof want);
    assert_int_equal(sb_amqp_frame_parse(b.data, b.len, 0, &f), sizeof want);
    assert_int_equal(f.channel, 0x0102);
    assert_true(sb_str_eq_c(f.payload, "hello"));
    sb_buf_free(&b);
}

static void
method_frame_encode_then_parse_gives_back_the_tune_frame(void **state)
{
    sb_amqp_method m = { .id = SB_M_CONNECTION_TUNE }, d;
    sb_buf b = SB_BUF_INIT;
    sb_amqp_frame f;

    m.u.connection_tune = (sb_m_connection_tune){ 2047, 131072, 60 };
    sb_amqp_method_frame_encode(&b, 0, &m);
    assert_bytes_equal(b.data, b.len, tune_frame, sizeof tune_frame);
    assert_int_equal(sb_amqp_frame_parse(b.data, b.len, 4096, &f), sizeof tune_frame);
    assert_int_equal(sb_amqp_method_decode(f.payload.p, f.payload.len, &d, *state), 0);
    assert_int_equal(d.u.connection_tune.frame_max, 131072);
    sb_buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protocol_header_is_amqp_0_9_1),
        cmocka_unit_test(protocol_header_check_accepts_the_0_9_1_header),
        cmocka_unit_test(protocol_header_check_needs_more_for_a_matching_prefix),
        cmocka_unit_test(protocol_header_check_rejects_other_versions_and_protocols),
        cmocka_unit_test(frame_parse_splits_a_golden_tune_frame),
        cmocka_unit_test(frame_parse_needs_more_at_every_shorter_length),
        cmocka_unit_test(frame_parse_consumes_one_frame_of_several),
        cmocka_unit_test(frame_parse_bad_end_octet_is_frame_end_error),
        cmocka_unit_test(frame_parse_unknown_type_is_frame_type_error),
        cmocka_unit_test(frame_parse_every_valid_type_is_accepted),
        cmocka_unit_test(frame_parse_size_over_frame_max_is_too_big_from_the_header_alone),
        cmocka_unit_test(frame_parse_size_exactly_frame_max_is_accepted),
        cmocka_unit_test(frame_parse_size_near_4_gib_does_not_wrap),
        cmocka_unit_test(heartbeat_encode_writes_golden_bytes),
        cmocka_unit_test(frame_start_and_end_encode_wrap_a_body_payload),
        cmocka_unit_test(method_frame_encode_then_parse_gives_back_the_tune_frame),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
