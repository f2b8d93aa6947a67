/* test_xtype_direct.c - the direct exchange: exact key matches, the empty
 * key, binding identity (key, args, queue), deduplication, unbind, and
 * many queues on one key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/xtype_impl.h"
#include "xtype_test_util.h"

static const sb_xtype *const D = &sb_xtype_direct;
static int q1, q2, q3;

static void
a_message_goes_to_the_queues_bound_with_exactly_its_key(void **state)
{
    void *x = D->create();

    D->bind(x, sb_str_c("orders"), NULL, &q1);
    D->bind(x, sb_str_c("orders.eu"), NULL, &q2);
    assert_true(routes_only_to(D, x, "orders", NULL, &q1));
    assert_true(routes_only_to(D, x, "orders.eu", NULL, &q2));
    assert_true(routes_nowhere(D, x, "Orders", NULL));
    assert_true(routes_nowhere(D, x, "orders.*", NULL));   /* no wildcards */
    assert_true(routes_nowhere(D, x, "", NULL));
    D->destroy(x);
}

static void
the_empty_key_is_a_key_like_any_other(void **state)
{
    void *x = D->create();

    D->bind(x, SB_STR_NULL, NULL, &q1);
    assert_true(routes_only_to(D, x, "", NULL, &q1));
    assert_true(routes_nowhere(D, x, "a", NULL));
    assert_int_equal(D->unbind(x, SB_STR_LIT(""), NULL, &q1), 0);
    assert_true(routes_nowhere(D, x, "", NULL));
    D->destroy(x);
}

static void
keys_are_binary_safe(void **state)
{
    void *x = D->create();
    sb_str k = { (const uint8_t *)"a\0b", 3 }, k2 = { (const uint8_t *)"a\0c", 3 };
    sb_dest_vec dv = { NULL, 0, 0 };

    D->bind(x, k, NULL, &q1);
    D->route(x, k2, NULL, &dv);
    assert_int_equal(dv.n, 0);
    D->route(x, k, NULL, &dv);
    assert_int_equal(dv.n, 1);
    sb_dest_vec_free(&dv);
    D->destroy(x);
}

static void
a_binding_is_its_key_args_and_queue(void **state)
{
    void *x = D->create();
    sb_amqp_entry e[] = { E("k", v_int(SB_FV_I32, 1)) };
    sb_amqp_table args = TBL(e), empty = { 0, NULL, SB_STR_NULL };
    sb_dest_vec dv;

    assert_int_equal(D->bind(x, sb_str_c("k"), NULL, &q1), 0);
    assert_int_equal(D->bind(x, sb_str_c("k"), NULL, &q1), 1);
    assert_int_equal(D->bind(x, sb_str_c("k"), &empty, &q1), 1);   /* NULL == {} */
    assert_int_equal(D->bind(x, sb_str_c("k"), &args, &q1), 0);
    assert_int_equal(D->bind(x, sb_str_c("k"), &args, &q1), 1);
    assert_int_equal(D->bind(x, sb_str_c("k"), NULL, &q2), 0);
    dv = route(D, x, "k", NULL);
    assert_int_equal(dv.n, 2);                 /* q1 once, though bound twice */
    assert_int_equal(count_of(&dv, &q1), 1);
    assert_int_equal(count_of(&dv, &q2), 1);
    sb_dest_vec_free(&dv);
    D->destroy(x);
}

static void
unbind_removes_only_the_equal_binding(void **state)
{
    void *x = D->create();
    sb_amqp_entry e[] = { E("k", v_str("v")) };
    sb_amqp_table args = TBL(e);

    D->bind(x, sb_str_c("k"), NULL, &q1);
    D->bind(x, sb_str_c("k"), &args, &q2);
    assert_int_equal(D->unbind(x, sb_str_c("k"), NULL, &q2), 1);    /* args differ */
    assert_int_equal(D->unbind(x, sb_str_c("other"), NULL, &q1), 1);
    assert_int_equal(D->unbind(x, sb_str_c("k"), NULL, &q1), 0);
    assert_int_equal(D->unbind(x, sb_str_c("k"), NULL, &q1), 1);
    assert_true(routes_only_to(D, x, "k", NULL, &q2));
    assert_int_equal(D->unbind(x, sb_str_c("k"), &args, &q2), 0);
    assert_true(routes_nowhere(D, x, "k", NULL));
    D->destroy(x);
}

static void
binding_args_are_copied_so_the_callers_buffer_can_be_reused(void **state)
{
    void *x = D->create();
    sb_amqp_entry e[] = { E("k", v_str("value")) };
    sb_amqp_table src = TBL(e), decoded;
    sb_buf b = SB_BUF_INIT;
    sb_arena a = SB_ARENA_INIT;
    char key[] = "key";

    sb_amqp_table_encode(&b, &src);
    assert_true(sb_amqp_table_decode(b.data, b.len, &decoded, &a) > 0);
    assert_int_equal(D->bind(x, sb_str_c(key), &decoded, &q1), 0);
    memset(b.data, 0xAA, b.len);
    memcpy(key, "xyz", 3);
    sb_arena_reset(&a);
    assert_true(routes_only_to(D, x, "key", NULL, &q1));
    assert_int_equal(D->unbind(x, sb_str_c("key"), &src, &q1), 0);
    sb_buf_free(&b);
    sb_arena_free(&a);
    D->destroy(x);
}

static void
many_queues_on_one_key_each_get_one_copy_after_what_the_vector_held(void **state)
{
    enum { N = 2000 };
    static char dests[N];
    void *x = D->create();
    sb_dest_vec dv = { NULL, 0, 0 };

    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 2);
        D->bind(x, sb_str_c("all"), NULL, &dests[i]);
        D->bind(x, sb_str_c(key), NULL, &dests[i]);
    }
    D->bind(x, sb_str_c("all"), NULL, &q3);
    sb_dest_vec_push_unique(&dv, &q3);
    sb_dest_vec_push_unique(&dv, &dests[7]);
    D->route(x, sb_str_c("all"), NULL, &dv);
    assert_int_equal(dv.n, N + 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(count_of(&dv, &dests[i]), 1);
    sb_dest_vec_free(&dv);
    dv = route(D, x, "k1", NULL);
    assert_int_equal(dv.n, N / 2);
    sb_dest_vec_free(&dv);
    D->destroy(x);
}

static void
find_returns_each_type_by_name(void **state)
{
    assert_ptr_equal(sb_xtype_find(SB_STR_LIT("direct")), &sb_xtype_direct);
    assert_ptr_equal(sb_xtype_find(SB_STR_LIT("fanout")), &sb_xtype_fanout);
    assert_ptr_equal(sb_xtype_find(SB_STR_LIT("topic")), &sb_xtype_topic);
    assert_ptr_equal(sb_xtype_find(SB_STR_LIT("headers")), &sb_xtype_headers);
    assert_null(sb_xtype_find(SB_STR_LIT("x-consistent-hash")));
    assert_null(sb_xtype_find(SB_STR_LIT("Direct")));
    assert_null(sb_xtype_find(SB_STR_LIT("")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_message_goes_to_the_queues_bound_with_exactly_its_key),
        cmocka_unit_test(the_empty_key_is_a_key_like_any_other),
        cmocka_unit_test(keys_are_binary_safe),
        cmocka_unit_test(a_binding_is_its_key_args_and_queue),
        cmocka_unit_test(unbind_removes_only_the_equal_binding),
        cmocka_unit_test(binding_args_are_copied_so_the_callers_buffer_can_be_reused),
        cmocka_unit_test(many_queues_on_one_key_each_get_one_copy_after_what_the_vector_held),
        cmocka_unit_test(find_returns_each_type_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
