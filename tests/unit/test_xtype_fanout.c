/* test_xtype_fanout.c - the fanout exchange: every bound queue gets one
 * copy whatever the routing key; the key still belongs to a binding's
 * identity for bind and unbind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/xtype_impl.h"
#include "xtype_test_util.h"

static const sb_xtype *const F = &sb_xtype_fanout;
static int q1, q2;

static void
every_bound_queue_gets_the_message_whatever_its_key(void **state)
{
    void *x = F->create();
    sb_dest_vec dv;

    assert_true(routes_nowhere(F, x, "a", NULL));
    F->bind(x, sb_str_c("ignored"), NULL, &q1);
    F->bind(x, SB_STR_NULL, NULL, &q2);
    dv = route(F, x, "anything.at.all", NULL);
    assert_int_equal(dv.n, 2);
    assert_int_equal(count_of(&dv, &q1), 1);
    assert_int_equal(count_of(&dv, &q2), 1);
    sb_dest_vec_free(&dv);
    dv = route(F, x, "", NULL);
    assert_int_equal(dv.n, 2);
    sb_dest_vec_free(&dv);
    F->destroy(x);
}

static void
a_queue_bound_with_two_keys_gets_one_copy(void **state)
{
    void *x = F->create();

    assert_int_equal(F->bind(x, sb_str_c("a"), NULL, &q1), 0);
    assert_int_equal(F->bind(x, sb_str_c("b"), NULL, &q1), 0);
    assert_int_equal(F->bind(x, sb_str_c("b"), NULL, &q1), 1);
    assert_true(routes_only_to(F, x, "c", NULL, &q1));
    F->destroy(x);
}

static void
unbinding_one_key_keeps_the_queues_other_binding(void **state)
{
    void *x = F->create();
    sb_amqp_entry e[] = { E("k", v_str("v")) };
    sb_amqp_table args = TBL(e);

    F->bind(x, sb_str_c("a"), NULL, &q1);
    F->bind(x, sb_str_c("b"), &args, &q1);
    assert_int_equal(F->unbind(x, sb_str_c("b"), NULL, &q1), 1);     /* args differ */
    assert_int_equal(F->unbind(x, sb_str_c("a"), NULL, &q1), 0);
    assert_true(routes_only_to(F, x, "", NULL, &q1));
    assert_int_equal(F->unbind(x, sb_str_c("b"), &args, &q1), 0);
    assert_int_equal(F->unbind(x, sb_str_c("b"), &args, &q1), 1);
    assert_true(routes_nowhere(F, x, "", NULL));
    F->destroy(x);
}

static void
a_thousand_queues_each_get_exactly_one_copy(void **state)
{
    enum { N = 1000 };
    static char dests[N];
    void *x = F->create();
    sb_dest_vec dv;

    for (int i = 0; i < N; i++) {
        F->bind(x, sb_str_c("a"), NULL, &dests[i]);
        F->bind(x, sb_str_c("b"), NULL, &dests[N - 1 - i]);
    }
    dv = route(F, x, "", NULL);
    assert_int_equal(dv.n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(count_of(&dv, &dests[i]), 1);
    sb_dest_vec_free(&dv);
    F->destroy(x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_bound_queue_gets_the_message_whatever_its_key),
        cmocka_unit_test(a_queue_bound_with_two_keys_gets_one_copy),
        cmocka_unit_test(unbinding_one_key_keeps_the_queues_other_binding),
        cmocka_unit_test(a_thousand_queues_each_get_exactly_one_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
