/* test_amqp_table.c - field tables and arrays: golden bytes both ways,
 * every RabbitMQ type letter, raw views, depth limit, truncation,
 * lookup, equality and integer widening.
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

/* A table of one entry "k" holding a table, depth levels in all. */
static void
build_nested_table(sb_buf *b, int depth)
{
    size_t starts[2 * SB_AMQP_TABLE_MAX_DEPTH];

    assert_true(depth <= 2 * SB_AMQP_TABLE_MAX_DEPTH);

    for (int i = 0; i < depth; i++) {
        starts[i] = b->len;
        sb_buf_put_u32(b, 0);
        if (i + 1 < depth) {
            sb_buf_append(b, "\x01k", 2);
            sb_buf_put_u8(b, 'F');
        }
    }
    for (int i = depth - 1; i >= 0; i--)
        sb_buf_set_u32(b, starts[i], (uint32_t)(b->len - starts[i] - 4));
}

/* A table {"a": A[A[...[]]]} with depth levels counting the table. */
static void
build_nested_array(sb_buf *b, int depth)
{
    size_t starts[2 * SB_AMQP_TABLE_MAX_DEPTH];

    assert_true(depth <= 2 * SB_AMQP_TABLE_MAX_DEPTH);

    starts[0] = b->len;
    sb_buf_put_u32(b, 0);
    sb_buf_append(b, "\x01" "a", 2);
    for (int i = 1; i < depth; i++) {
        sb_buf_put_u8(b, 'A');
        starts[i] = b->len;
        sb_buf_put_u32(b, 0);
    }
    for (int i = depth - 1; i >= 0; i--)
        sb_buf_set_u32(b, starts[i], (uint32_t)(b->len - starts[i] - 4));
}

/* Every RabbitMQ type letter once, keyed by its own letter. */
static const uint8_t every_type[] = {
    0, 0, 0, 128,
    1, 't', 't', 1,
    1, 'b', 'b', 0xFE,                                   /* -2 */
    1, 'B', 'B', 0xFE,                                   /* 254 */
    1, 's', 's', 0xFF, 0xFE,                             /* -2: RabbitMQ's int16 */
    1, 'u', 'u', 0xFF, 0xFE,                             /* 65534 */
    1, 'I', 'I', 0xFF, 0xFF, 0xFF, 0xFE,                 /* -2 */
    1, 'i', 'i', 0xFF, 0xFF, 0xFF, 0xFE,                 /* 4294967294 */
    1, 'l', 'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, /* -2 */
    1, 'f', 'f', 0x3F, 0xC0, 0, 0,                       /* 1.5f */
    1, 'd', 'd', 0x3F, 0xF8, 0, 0, 0, 0, 0, 0,           /* 1.5 */
    1, 'D', 'D', 2, 0, 0, 0x30, 0x39,                    /* 123.45 */
    1, 'S', 'S', 0, 0, 0, 2, 'h', 'i',
    1, 'A', 'A', 0, 0, 0, 3, 'b', 1, 'V',                /* [1, void] */
    1, 'T', 'T', 0, 0, 0, 0, 0x65, 0x5E, 0x7E, 0x00,
    1, 'F', 'F', 0, 0, 0, 5, 1, 'k', 'u', 0, 7,          /* {k: 7} */
    1, 'V', 'V',
    1, 'x', 'x', 0, 0, 0, 3, 0, 1, 2,
};

/* The same table built in memory (raw.p == NULL everywhere). */
static sb_amqp_entry nested_entry = { SB_STR_LIT("k"), { .kind = 'u', .v.u = 7 } };
static sb_amqp_value array_values[] = { { .kind = 'b', .v.i = 1 }, { .kind = 'V' } };
static sb_amqp_entry every_entry[] = {
    { SB_STR_LIT("t"), { .kind = 't', .v.b = true } },
    { SB_STR_LIT("b"), { .kind = 'b', .v.i = -2 } },
    { SB_STR_LIT("B"), { .kind = 'B', .v.u = 254 } },
    { SB_STR_LIT("s"), { .kind = 's', .v.i = -2 } },
    { SB_STR_LIT("u"), { .kind = 'u', .v.u = 65534 } },
    { SB_STR_LIT("I"), { .kind = 'I', .v.i = -2 } },
    { SB_STR_LIT("i"), { .kind = 'i', .v.u = 4294967294u } },
    { SB_STR_LIT("l"), { .kind = 'l', .v.i = -2 } },
    { SB_STR_LIT("f"), { .kind = 'f', .v.f32 = 1.5f } },
    { SB_STR_LIT("d"), { .kind = 'd', .v.f64 = 1.5 } },
    { SB_STR_LIT("D"), { .kind = 'D', .v.dec = { 2, 12345 } } },
    { SB_STR_LIT("S"), { .kind = 'S', .v.s = SB_STR_LIT("hi") } },
    { SB_STR_LIT("A"), { .kind = 'A', .v.a = { 2, array_values, { NULL, 0 } } } },
    { SB_STR_LIT("T"), { .kind = 'T', .v.u = 0x655E7E00u } },
    { SB_STR_LIT("F"), { .kind = 'F', .v.t = { 1, &nested_entry, { NULL, 0 } } } },
    { SB_STR_LIT("V"), { .kind = 'V' } },
    { SB_STR_LIT("x"), { .kind = 'x', .v.s = SB_STR_LIT("\x00\x01\x02") } },
};
static const sb_amqp_table every_table = { 17, every_entry, { NULL, 0 } };

/* ---- tests ---- */

static void
table_golden_bytes_decode_every_type(void **state)
{
    sb_amqp_table t;
    const sb_amqp_value *v;

    assert_int_equal(sizeof every_type, 4 + 128);
    assert_int_equal(sb_amqp_table_decode(guarded(every_type, sizeof every_type),
                                          sizeof every_type, &t, *state),
                     sizeof every_type);
    assert_int_equal(t.n, 17);
    assert_true(sb_amqp_table_get(&t, "t")->v.b);
    assert_int_equal(sb_amqp_table_get(&t, "b")->v.i, -2);
    assert_int_equal(sb_amqp_table_get(&t, "B")->v.u, 254);
    assert_int_equal(sb_amqp_table_get(&t, "s")->v.i, -2);
    assert_int_equal(sb_amqp_table_get(&t, "u")->v.u, 65534);
    assert_int_equal(sb_amqp_table_get(&t, "I")->v.i, -2);
    assert_int_equal(sb_amqp_table_get(&t, "i")->v.u, 4294967294u);
    assert_int_equal(sb_amqp_table_get(&t, "l")->v.i, -2);
    assert_true(sb_amqp_table_get(&t, "f")->v.f32 == 1.5f);
    assert_true(sb_amqp_table_get(&t, "d")->v.f64 == 1.5);
    v = sb_amqp_table_get(&t, "D");
    assert_int_equal(v->v.dec.scale, 2);
    assert_int_equal(v->v.dec.value, 12345);
    assert_true(sb_str_eq_c(sb_amqp_table_get(&t, "S")->v.s, "hi"));
    v = sb_amqp_table_get(&t, "A");
    assert_int_equal(v->v.a.n, 2);
    assert_int_equal(v->v.a.v[0].kind, 'b');
    assert_int_equal(v->v.a.v[0].v.i, 1);
    assert_int_equal(v->v.a.v[1].kind, 'V');
    assert_int_equal(sb_amqp_table_get(&t, "T")->v.u, 0x655E7E00u);
    v = sb_amqp_table_get(&t, "F");
    assert_int_equal(v->v.t.n, 1);
    assert_int_equal(sb_amqp_table_get(&v->v.t, "k")->v.u, 7);
    assert_int_equal(sb_amqp_table_get(&t, "V")->kind, 'V');
    assert_int_equal(sb_amqp_table_get(&t, "x")->v.s.len, 3);
}

static void
table_built_in_memory_encodes_every_type_to_golden_bytes(void **state)
{
    sb_buf b = SB_BUF_INIT;

    sb_amqp_table_encode(&b, &every_table);
    assert_bytes_equal(b.data, b.len, every_type, sizeof every_type);
    sb_buf_free(&b);
}

static void
table_decoded_equals_the_same_table_built_in_memory(void **state)
{
    sb_amqp_table t;

    assert_true(sb_amqp_table_decode(every_type, sizeof every_type, &t, *state) > 0);
    assert_true(sb_amqp_table_equal(&t, &every_table));
    assert_true(sb_amqp_table_equal(&every_table, &t));
}

static void
table_decode_sets_raw_to_the_entry_bytes(void **state)
{
    sb_amqp_table t;

    assert_true(sb_amqp_table_decode(every_type, sizeof every_type, &t, *state) > 0);
    assert_ptr_equal(t.raw.p, every_type + 4);
    assert_int_equal(t.raw.len, 128);
    assert_ptr_equal(sb_amqp_table_get(&t, "F")->v.t.raw.p, every_type + 4 + 110);
    assert_ptr_equal(sb_amqp_table_get(&t, "A")->v.a.raw.p, every_type + 4 + 89);
}

static void
table_encode_copies_raw_when_set(void **state)
{
    sb_amqp_table t = { 0, NULL, SB_STR_LIT("\x01k\x56") }; /* {k: void}, n ignored */
    sb_buf b = SB_BUF_INIT;

    sb_amqp_table_encode(&b, &t);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\0\0\0\x03\x01k\x56", 7);
    sb_buf_free(&b);
}

static void
table_empty_in_memory_encodes_as_four_zero_bytes(void **state)
{
    sb_amqp_table t = { 0, NULL, { NULL, 0 } };
    sb_buf b = SB_BUF_INIT;

    sb_amqp_table_encode(&b, &t);
    assert_bytes_equal(b.data, b.len, (const uint8_t *)"\0\0\0\0", 4);
    sb_buf_free(&b);
}

static void
table_round_trip_reencodes_the_same_bytes(void **state)
{
    sb_amqp_table t;
    sb_buf b = SB_BUF_INIT;

    assert_true(sb_amqp_table_decode(every_type, sizeof every_type, &t, *state) > 0);
    t.raw = SB_STR_NULL; /* force encoding from entries (nested raws still used) */
    sb_amqp_table_encode(&b, &t);
    assert_bytes_equal(b.data, b.len, every_type, sizeof every_type);
    sb_buf_free(&b);
}

static void
table_decode_returns_bytes_consumed_and_ignores_what_follows(void **state)
{
    uint8_t in[sizeof every_type + 3];
    sb_amqp_table t;

    memcpy(in, every_type, sizeof every_type);
    memcpy(in + sizeof every_type, "xyz", 3);
    assert_int_equal(sb_amqp_table_decode(in, sizeof in, &t, *state), sizeof every_type);
}

static void
table_truncated_at_every_length_is_malformed(void **state)
{
    sb_amqp_table t;

    for (size_t n = 0; n < sizeof every_type; n++)
        assert_int_equal(sb_amqp_table_decode(guarded(every_type, n), n, &t, *state),
                         SB_AMQP_EMALFORMED);
}

static void
table_body_cut_inside_an_entry_is_malformed(void **state)
{
    /* Body offsets where an entry ends: a cut there is a shorter valid table. */
    static const size_t ends[] = { 0, 4, 8, 12, 17, 22, 29, 36, 47, 54, 65, 73, 82, 92,
                                   103, 115, 118, 128 };
    size_t next = 0;
    sb_amqp_table t;

    for (size_t n = 0; n <= 128; n++) {
        uint8_t in[sizeof every_type];
        bool at_end = n == ends[next];

        memcpy(in, every_type, 4 + n);
        in[3] = (uint8_t)n; /* the length prefix says the table ends here */
        assert_int_equal(sb_amqp_table_decode(guarded(in, 4 + n), 4 + n, &t, *state),
                         at_end ? (ssize_t)(4 + n) : SB_AMQP_EMALFORMED);
        if (at_end)
            next++;
    }
    assert_int_equal(next, sizeof ends / sizeof ends[0]);
}

static void
table_length_past_the_buffer_is_malformed(void **state)
{
    static const uint8_t in[] = { 0xFF, 0xFF, 0xFF, 0xFF, 1, 'k', 'V' };
    sb_amqp_table t;

    assert_int_equal(sb_amqp_table_decode(guarded(in, sizeof in), sizeof in, &t, *state),
                     SB_AMQP_EMALFORMED);
}

static void
table_value_length_past_the_table_is_malformed(void **state)
{
    /* The string says 16 bytes, the table has only 2 left for it. */
    static const uint8_t in[] = { 0, 0, 0, 9, 1, 'k', 'S', 0, 0, 0, 16, 'a', 'b', 'c', 'd' };
    sb_amqp_table t;

    assert_int_equal(sb_amqp_table_decode(guarded(in, sizeof in), sizeof in, &t, *state),
                     SB_AMQP_EMALFORMED);
}

static void
table_unknown_type_letter_is_malformed(void **state)
{
    static const char known[] = "tbBsuIilfdDSATFVx";
    sb_amqp_table t;

    for (int c = 0; c < 256; c++) {
        uint8_t in[] = { 0, 0, 0, 11, 1, 'k', (uint8_t)c, 0, 0, 0, 0, 0, 0, 0, 0 };

        if (c != 0 && strchr(known, c) != NULL)
            continue;
        assert_int_equal(sb_amqp_table_decode(guarded(in, sizeof in), sizeof in, &t, *state),
                         SB_AMQP_EMALFORMED);
    }
}

static void
table_s_is_a_signed_16_bit_integer_as_in_rabbitmq(void **state)
{
    static const uint8_t in[] = { 0, 0, 0, 5, 1, 'n', 's', 0x80, 0x00 };
    sb_amqp_table t;

    assert_int_equal(sb_amqp_table_decode(in, sizeof in, &t, *state), sizeof in);
    assert_int_equal(t.e[0].v.kind, SB_FV_I16);
    assert_int_equal(t.e[0].v.v.i, -32768);
}

static void
table_key_running_past_the_table_is_malformed(void **state)
{
    static const uint8_t in[] = { 0, 0, 0, 3, 9, 'a', 'b' };
    sb_amqp_table t;

    assert_int_equal(sb_amqp_table_decode(guarded(in, sizeof in), sizeof in, &t, *state),
                     SB_AMQP_EMALFORMED);
}

static void
table_nested_to_the_limit_decodes(void **state)
{
    sb_buf b = SB_BUF_INIT;
    sb_amqp_table t;

    build_nested_table(&b, SB_AMQP_TABLE_MAX_DEPTH);
    assert_int_equal(sb_amqp_table_decode(b.data, b.len, &t, *state), b.len);
    sb_buf_free(&b);
}

static void
table_nested_past_limit_is_depth_error(void **state)
{
    sb_buf b = SB_BUF_INIT;
    sb_amqp_table t;

    build_nested_table(&b, SB_AMQP_TABLE_MAX_DEPTH + 1);
    assert_int_equal(sb_amqp_table_decode(guarded(b.data, b.len), b.len, &t, *state),
                     SB_AMQP_EDEPTH);
    sb_buf_free(&b);
}

static void
array_nesting_counts_toward_the_depth_limit(void **state)
{
    sb_buf b = SB_BUF_INIT;
    sb_amqp_table t;

    build_nested_array(&b, SB_AMQP_TABLE_MAX_DEPTH);
    assert_int_equal(sb_amqp_table_decode(b.data, b.len, &t, *state), b.len);
    sb_buf_reset(&b);
    build_nested_array(&b, SB_AMQP_TABLE_MAX_DEPTH + 1);
    assert_int_equal(sb_amqp_table_decode(b.data, b.len, &t, *state), SB_AMQP_EDEPTH);
    sb_buf_free(&b);
}

static void
array_built_in_memory_encodes_with_its_length(void **state)
{
    sb_amqp_value vals[] = { { .kind = 'S', .v.s = SB_STR_LIT("a") }, { .kind = 'u', .v.u = 1 } };
    sb_amqp_entry e = { SB_STR_LIT("q"), { .kind = 'A', .v.a = { 2, vals, { NULL, 0 } } } };
    sb_amqp_table t = { 1, &e, { NULL, 0 } };
    static const uint8_t want[] = {
        0, 0, 0, 16, 1, 'q', 'A', 0, 0, 0, 9, 'S', 0, 0, 0, 1, 'a', 'u', 0, 1,
    };
    sb_buf b = SB_BUF_INIT;

    sb_amqp_table_encode(&b, &t);
    assert_bytes_equal(b.data, b.len, want, sizeof want);
    sb_buf_free(&b);
}

static void
table_get_returns_the_first_entry_with_the_key(void **state)
{
    static const uint8_t in[] = { 0, 0, 0, 8, 1, 'k', 'b', 1, 1, 'k', 'b', 2 };
    sb_amqp_table t;

    assert_int_equal(sb_amqp_table_decode(in, sizeof in, &t, *state), sizeof in);
    assert_int_equal(t.n, 2);
    assert_int_equal(sb_amqp_table_get(&t, "k")->v.i, 1);
    assert_null(sb_amqp_table_get(&t, "missing"));
    assert_null(sb_amqp_table_get(&t, ""));
}

static void
table_equal_sees_a_changed_value_key_or_kind(void **state)
{
    sb_amqp_entry a[] = { { SB_STR_LIT("x-max-length"), { .kind = 'I', .v.i = 10 } } };
    sb_amqp_entry b[] = { { SB_STR_LIT("x-max-length"), { .kind = 'I', .v.i = 10 } } };
    sb_amqp_table ta = { 1, a, { NULL, 0 } }, tb = { 1, b, { NULL, 0 } };
    sb_amqp_table empty = { 0, NULL, { NULL, 0 } };

    assert_true(sb_amqp_table_equal(&ta, &tb));
    b[0].v.v.i = 11;
    assert_false(sb_amqp_table_equal(&ta, &tb));
    b[0].v.v.i = 10;
    b[0].v.kind = 'l';
    assert_false(sb_amqp_table_equal(&ta, &tb));
    b[0].v.kind = 'I';
    b[0].key = SB_STR_LIT("x-max-lengtH");
    assert_false(sb_amqp_table_equal(&ta, &tb));
    assert_false(sb_amqp_table_equal(&ta, &empty));
    assert_true(sb_amqp_table_equal(&empty, &empty));
}

static void
table_equal_with_both_raw_compares_the_bytes(void **state)
{
    sb_amqp_table a = { 0, NULL, SB_STR_LIT("\x01k\x56") };
    sb_amqp_table b = { 0, NULL, SB_STR_LIT("\x01k\x56") };
    sb_amqp_table c = { 0, NULL, SB_STR_LIT("\x01j\x56") };

    assert_true(sb_amqp_table_equal(&a, &b));
    assert_false(sb_amqp_table_equal(&a, &c));
}

static void
value_int_widens_every_integer_kind(void **state)
{
    static const uint8_t kinds[] = { 'b', 's', 'I', 'l' };
    static const uint8_t ukinds[] = { 'B', 'u', 'i' };
    int64_t out;

    for (size_t i = 0; i < sizeof kinds; i++) {
        sb_amqp_value v = { .kind = kinds[i], .v.i = -5 };
        assert_true(sb_amqp_value_int(&v, &out));
        assert_int_equal(out, -5);
    }
    for (size_t i = 0; i < sizeof ukinds; i++) {
        sb_amqp_value v = { .kind = ukinds[i], .v.u = 4000000000u };
        assert_true(sb_amqp_value_int(&v, &out));
        assert_int_equal(out, 4000000000);
    }
}

static void
value_int_refuses_non_integers(void **state)
{
    static const uint8_t kinds[] = { 't', 'f', 'd', 'D', 'S', 'A', 'T', 'F', 'V', 'x' };
    int64_t out = 42;

    for (size_t i = 0; i < sizeof kinds; i++) {
        sb_amqp_value v = { .kind = kinds[i] };
        assert_false(sb_amqp_value_int(&v, &out));
    }
    assert_int_equal(out, 42);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_golden_bytes_decode_every_type),
        cmocka_unit_test(table_built_in_memory_encodes_every_type_to_golden_bytes),
        cmocka_unit_test(table_decoded_equals_the_same_table_built_in_memory),
        cmocka_unit_test(table_decode_sets_raw_to_the_entry_bytes),
        cmocka_unit_test(table_encode_copies_raw_when_set),
        cmocka_unit_test(table_empty_in_memory_encodes_as_four_zero_bytes),
        cmocka_unit_test(table_round_trip_reencodes_the_same_bytes),
        cmocka_unit_test(table_decode_returns_bytes_consumed_and_ignores_what_follows),
        cmocka_unit_test(table_truncated_at_every_length_is_malformed),
        cmocka_unit_test(table_body_cut_inside_an_entry_is_malformed),
        cmocka_unit_test(table_length_past_the_buffer_is_malformed),
        cmocka_unit_test(table_value_length_past_the_table_is_malformed),
        cmocka_unit_test(table_unknown_type_letter_is_malformed),
        cmocka_unit_test(table_s_is_a_signed_16_bit_integer_as_in_rabbitmq),
        cmocka_unit_test(table_key_running_past_the_table_is_malformed),
        cmocka_unit_test(table_nested_to_the_limit_decodes),
        cmocka_unit_test(table_nested_past_limit_is_depth_error),
        cmocka_unit_test(array_nesting_counts_toward_the_depth_limit),
        cmocka_unit_test(array_built_in_memory_encodes_with_its_length),
        cmocka_unit_test(table_get_returns_the_first_entry_with_the_key),
        cmocka_unit_test(table_equal_sees_a_changed_value_key_or_kind),
        cmocka_unit_test(table_equal_with_both_raw_compares_the_bytes),
        cmocka_unit_test(value_int_widens_every_integer_kind),
        cmocka_unit_test(value_int_refuses_non_integers),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
