/* test_xtype_headers.c - the headers exchange against RabbitMQ's
 * rabbit_exchange_type_headers: x-match all/any/all-with-x/any-with-x,
 * x- keys, void patterns, value comparison as Erlang's ==, validation
 * texts, deduplication and unbind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "broker/xtype_impl.h"
#include "common/error.h"
#include "xtype_test_util.h"

static const sb_xtype *const H = &sb_xtype_headers;
static int q1, q2;

/* True when a binding with args routes a message with headers (to q1). */
static bool
matches(const sb_amqp_table *args, const sb_amqp_table *headers)
{
    void *x = H->create();
    sb_dest_vec dv;
    bool hit;

    assert_int_equal(H->bind(x, SB_STR_LIT(""), args, &q1), 0);
    dv = route(H, x, "ignored", headers);
    hit = dv.n == 1;
    sb_dest_vec_free(&dv);
    H->destroy(x);
    return hit;
}

/* True when a one-entry pattern {k: pv} matches one-entry headers {k: hv}. */
static bool
value_matches(sb_amqp_value pv, sb_amqp_value hv)
{
    sb_amqp_entry pe[] = { E("k", pv) }, he[] = { E("k", hv) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    return matches(&p, &h);
}

/* ---- x-match modes ---- */

static void
all_is_the_default_and_needs_every_pattern_entry(void **state)
{
    sb_amqp_entry pe[] = { E("b", v_str("x")), E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry full[] = { E("a", v_int(SB_FV_I32, 1)), E("c", v_str("extra")),
                             E("b", v_str("x")) };
    sb_amqp_entry half[] = { E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry wrong[] = { E("a", v_int(SB_FV_I32, 1)), E("b", v_str("y")) };
    sb_amqp_table p = TBL(pe), f = TBL(full), h = TBL(half), w = TBL(wrong);

    assert_true(matches(&p, &f));
    assert_false(matches(&p, &h));
    assert_false(matches(&p, &w));
    assert_false(matches(&p, NULL));
}

static void
any_needs_one_matching_entry(void **state)
{
    sb_amqp_entry pe[] = { E("x-match", v_str("any")), E("a", v_int(SB_FV_I32, 1)),
                           E("b", v_str("x")) };
    sb_amqp_entry one[] = { E("b", v_str("x")) };
    sb_amqp_entry none[] = { E("a", v_int(SB_FV_I32, 2)), E("c", v_str("x")) };
    sb_amqp_table p = TBL(pe), o = TBL(one), n = TBL(none);

    assert_true(matches(&p, &o));
    assert_false(matches(&p, &n));
    assert_false(matches(&p, NULL));
}

static void
all_with_only_x_match_matches_every_message(void **state)
{
    sb_amqp_entry pe[] = { E("x-match", v_str("all")) };
    sb_amqp_entry he[] = { E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    assert_true(matches(&p, NULL));
    assert_true(matches(&p, &h));
    assert_true(matches(NULL, NULL));      /* no arguments at all: all of nothing */
}

static void
any_with_no_plain_keys_matches_nothing(void **state)
{
    sb_amqp_entry pe[] = { E("x-match", v_str("any")), E("x-k", v_str("v")) };
    sb_amqp_entry he[] = { E("x-k", v_str("v")) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    assert_false(matches(&p, &h));
    assert_false(matches(&p, NULL));
}

static void
x_keys_are_ignored_unless_the_mode_is_with_x(void **state)
{
    sb_amqp_entry all_e[] = { E("x-match", v_str("all")), E("x-k", v_str("v")),
                              E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry allx_e[] = { E("x-match", v_str("all-with-x")), E("x-k", v_str("v")),
                               E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry anyx_e[] = { E("x-match", v_str("any-with-x")), E("x-k", v_str("v")),
                               E("a", v_int(SB_FV_I32, 9)) };
    sb_amqp_entry only_a[] = { E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry both[] = { E("a", v_int(SB_FV_I32, 1)), E("x-k", v_str("v")) };
    sb_amqp_entry only_x[] = { E("x-k", v_str("v")) };
    sb_amqp_table all = TBL(all_e), allx = TBL(allx_e), anyx = TBL(anyx_e);
    sb_amqp_table a = TBL(only_a), b = TBL(both), x = TBL(only_x);

    assert_true(matches(&all, &a));
    assert_false(matches(&allx, &a));
    assert_true(matches(&allx, &b));
    assert_true(matches(&anyx, &x));
    assert_false(matches(&anyx, &a));
}

static void
x_match_itself_is_never_matched_against_the_headers(void **state)
{
    sb_amqp_entry pe[] = { E("x-match", v_str("all-with-x")), E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry he[] = { E("a", v_int(SB_FV_I32, 1)) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    assert_true(matches(&p, &h));
}

static void
header_keys_starting_with_x_in_the_message_still_match_plain_patterns(void **state)
{
    sb_amqp_entry pe[] = { E("x", v_str("1")), E("xa", v_str("2")) };
    sb_amqp_entry he[] = { E("xa", v_str("2")), E("x", v_str("1")) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    assert_true(matches(&p, &h));   /* "x" and "xa" do not start with "x-" */
}

/* ---- values ---- */

static void
a_void_pattern_value_matches_on_presence_only(void **state)
{
    sb_amqp_entry pe[] = { E("a", v_void()) };
    sb_amqp_entry present[] = { E("a", v_str("anything")) };
    sb_amqp_entry absent[] = { E("b", v_str("anything")) };
    sb_amqp_table p = TBL(pe), h1 = TBL(present), h2 = TBL(absent);

    assert_true(matches(&p, &h1));
    assert_false(matches(&p, &h2));
    assert_true(value_matches(v_void(), v_void()));
    assert_false(value_matches(v_str("x"), v_void()));
}

static void
integers_of_different_widths_compare_by_value(void **state)
{
    assert_true(value_matches(v_int(SB_FV_I32, 1), v_int(SB_FV_I64, 1)));
    assert_true(value_matches(v_int(SB_FV_I8, -5), v_int(SB_FV_I16, -5)));
    assert_true(value_matches(v_uint(SB_FV_U8, 200), v_int(SB_FV_I64, 200)));
    assert_true(value_matches(v_uint(SB_FV_U32, 7), v_uint(SB_FV_TIMESTAMP, 7)));
    assert_false(value_matches(v_int(SB_FV_I32, 1), v_int(SB_FV_I64, 2)));
    assert_false(value_matches(v_int(SB_FV_I64, -1),
                               v_uint(SB_FV_TIMESTAMP, UINT64_MAX)));
}

static void
integers_and_floats_compare_by_exact_numeric_value(void **state)
{
    assert_true(value_matches(v_int(SB_FV_I32, 1), v_f64(1.0)));
    assert_true(value_matches(v_f32(1.5f), v_f64(1.5)));
    assert_true(value_matches(v_f64(0.0), v_f64(-0.0)));
    assert_false(value_matches(v_int(SB_FV_I32, 1), v_f64(1.5)));
    assert_false(value_matches(v_int(SB_FV_I64, 9007199254740993LL),
                               v_f64(9007199254740992.0)));
}

static void
values_of_different_erlang_types_never_match(void **state)
{
    assert_false(value_matches(v_str("1"), v_int(SB_FV_I32, 1)));
    assert_false(value_matches(v_bool(true), v_int(SB_FV_I32, 1)));
    assert_false(value_matches(v_bool(true), v_bool(false)));
    assert_true(value_matches(v_bool(true), v_bool(true)));
    assert_true(value_matches(v_str("abc"), v_bytes("abc")));   /* both binaries */
    assert_false(value_matches(v_str("abc"), v_str("abd")));
}

static void
nested_tables_and_arrays_compare_with_their_types(void **state)
{
    sb_amqp_entry i32[] = { E("n", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry i32b[] = { E("n", v_int(SB_FV_I32, 1)) };
    sb_amqp_entry i64[] = { E("n", v_int(SB_FV_I64, 1)) };
    sb_amqp_value a1[] = { v_str("x"), v_int(SB_FV_I32, 2) };
    sb_amqp_value a2[] = { v_str("x"), v_int(SB_FV_I32, 2) };
    sb_amqp_value a3[] = { v_bytes("x"), v_int(SB_FV_I32, 2) };

    assert_true(value_matches(v_table(1, i32), v_table(1, i32b)));
    assert_false(value_matches(v_table(1, i32), v_table(1, i64)));
    assert_true(value_matches(v_array(2, a1), v_array(2, a2)));
    assert_false(value_matches(v_array(2, a1), v_array(2, a3)));
    assert_true(value_matches(v_table(0, NULL), v_array(0, NULL)));  /* both [] */
    assert_false(value_matches(v_table(1, i32), v_array(2, a1)));
}

static void
pattern_and_header_order_do_not_matter(void **state)
{
    sb_amqp_entry pe[] = { E("c", v_str("3")), E("a", v_str("1")), E("b", v_str("2")) };
    sb_amqp_entry he[] = { E("b", v_str("2")), E("z", v_str("0")), E("c", v_str("3")),
                           E("a", v_str("1")) };
    sb_amqp_table p = TBL(pe), h = TBL(he);

    assert_true(matches(&p, &h));
}

/* ---- check_args ---- */

static void
the_four_x_match_modes_and_no_x_match_are_valid(void **state)
{
    const char *modes[] = { "all", "any", "all-with-x", "any-with-x" };
    char text[256] = "";

    for (size_t i = 0; i < NELEM(modes); i++) {
        sb_amqp_entry e[] = { E("x-match", v_str(modes[i])) };
        sb_amqp_table t = TBL(e);
        assert_int_equal(H->check_args(&t, text, sizeof text), 0);
    }
    assert_int_equal(H->check_args(NULL, text, sizeof text), 0);
}

static void
an_unknown_x_match_value_is_refused_with_rabbitmqs_text(void **state)
{
    sb_amqp_entry e[] = { E("x-match", v_str("foo")) };
    sb_amqp_table t = TBL(e);
    char text[256];

    assert_int_equal(H->check_args(&t, text, sizeof text), SB_PRECONDITION_FAILED);
    assert_string_equal(text, "Invalid x-match field value <<\"foo\">>; "
                              "expected all, any, all-with-x, or any-with-x");
}

static void
an_x_match_of_another_type_is_refused_with_its_type_and_value(void **state)
{
    struct { sb_amqp_value v; const char *text; } cases[] = {
        { v_int(SB_FV_I8, 1), "Invalid x-match field type byte (value 1); expected longstr" },
        { v_int(SB_FV_I32, 23), "Invalid x-match field type signedint (value 23); expected longstr" },
        { v_bytes("all"), "Invalid x-match field type binary (value <<\"all\">>); expected longstr" },
        { v_bool(true), "Invalid x-match field type bool (value true); expected longstr" },
        { v_f64(1.5), "Invalid x-match field type double (value 1.5); expected longstr" },
        { v_f64(1e20), "Invalid x-match field type double (value 1.0e20); expected longstr" },
        { v_void(), "Invalid x-match field type void (value undefined); expected longstr" },
    };
    char text[256];

    for (size_t i = 0; i < NELEM(cases); i++) {
        sb_amqp_entry e[] = { E("x-match", cases[i].v) };
        sb_amqp_table t = TBL(e);
        assert_int_equal(H->check_args(&t, text, sizeof text), SB_PRECONDITION_FAILED);
        assert_string_equal(text, cases[i].text);
    }
}

/* ---- bindings ---- */

static void
a_queue_bound_twice_with_matching_patterns_gets_one_copy(void **state)
{
    void *x = H->create();
    sb_amqp_entry p1[] = { E("a", v_str("1")) }, p2[] = { E("b", v_str("2")) };
    sb_amqp_entry he[] = { E("a", v_str("1")), E("b", v_str("2")) };
    sb_amqp_table t1 = TBL(p1), t2 = TBL(p2), h = TBL(he);

    assert_int_equal(H->bind(x, SB_STR_LIT(""), &t1, &q1), 0);
    assert_int_equal(H->bind(x, SB_STR_LIT(""), &t2, &q1), 0);
    assert_int_equal(H->bind(x, SB_STR_LIT(""), &t2, &q1), 1);
    assert_true(routes_only_to(H, x, "", &h, &q1));
    H->destroy(x);
}

static void
unbind_needs_the_same_key_args_and_queue(void **state)
{
    void *x = H->create();
    sb_amqp_entry p1[] = { E("a", v_str("1")) }, p2[] = { E("a", v_str("2")) };
    sb_amqp_table t1 = TBL(p1), t2 = TBL(p2);

    H->bind(x, SB_STR_LIT("k"), &t1, &q1);
    H->bind(x, SB_STR_LIT("k"), &t1, &q2);
    assert_int_equal(H->unbind(x, SB_STR_LIT("other"), &t1, &q1), 1);
    assert_int_equal(H->unbind(x, SB_STR_LIT("k"), &t2, &q1), 1);
    assert_int_equal(H->unbind(x, SB_STR_LIT("k"), &t1, &q1), 0);
    assert_int_equal(H->unbind(x, SB_STR_LIT("k"), &t1, &q1), 1);
    assert_true(routes_only_to(H, x, "", &t1, &q2));
    H->destroy(x);
}

static void
binding_args_survive_the_callers_buffer_being_reused(void **state)
{
    void *x = H->create();
    sb_amqp_entry e[] = { E("x-match", v_str("any")), E("k", v_str("value")) };
    sb_amqp_table src = TBL(e), decoded;
    sb_buf b = SB_BUF_INIT;
    sb_arena a = SB_ARENA_INIT;

    sb_amqp_table_encode(&b, &src);
    assert_true(sb_amqp_table_decode(b.data, b.len, &decoded, &a) > 0);
    assert_int_equal(H->bind(x, SB_STR_LIT(""), &decoded, &q1), 0);
    memset(b.data, 0xAA, b.len);
    sb_arena_reset(&a);
    assert_true(routes_only_to(H, x, "", &src, &q1));
    sb_buf_free(&b);
    sb_arena_free(&a);
    H->destroy(x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_is_the_default_and_needs_every_pattern_entry),
        cmocka_unit_test(any_needs_one_matching_entry),
        cmocka_unit_test(all_with_only_x_match_matches_every_message),
        cmocka_unit_test(any_with_no_plain_keys_matches_nothing),
        cmocka_unit_test(x_keys_are_ignored_unless_the_mode_is_with_x),
        cmocka_unit_test(x_match_itself_is_never_matched_against_the_headers),
        cmocka_unit_test(header_keys_starting_with_x_in_the_message_still_match_plain_patterns),
        cmocka_unit_test(a_void_pattern_value_matches_on_presence_only),
        cmocka_unit_test(integers_of_different_widths_compare_by_value),
        cmocka_unit_test(integers_and_floats_compare_by_exact_numeric_value),
        cmocka_unit_test(values_of_different_erlang_types_never_match),
        cmocka_unit_test(nested_tables_and_arrays_compare_with_their_types),
        cmocka_unit_test(pattern_and_header_order_do_not_matter),
        cmocka_unit_test(the_four_x_match_modes_and_no_x_match_are_valid),
        cmocka_unit_test(an_unknown_x_match_value_is_refused_with_rabbitmqs_text),
        cmocka_unit_test(an_x_match_of_another_type_is_refused_with_its_type_and_value),
        cmocka_unit_test(a_queue_bound_twice_with_matching_patterns_gets_one_copy),
        cmocka_unit_test(unbind_needs_the_same_key_args_and_queue),
        cmocka_unit_test(binding_args_survive_the_callers_buffer_being_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
