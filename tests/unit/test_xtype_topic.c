/* test_xtype_topic.c - the topic exchange: a table of (binding key,
 * routing key, match) rows with RabbitMQ's semantics (from
 * rabbit_db_topic_exchange: split_topic_key and trie_match), then
 * deduplication, unbind and pruning, many bindings, and a check that
 * routing walks the trie instead of scanning the bindings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "broker/xtype_impl.h"
#include "common/alloc.h"
#include "xtype_test_util.h"

static const sb_xtype *const T = &sb_xtype_topic;
static int q1, q2, q3;

/* ---- the semantics table ---- */

typedef struct topic_row {
    const char *pattern, *key;
    bool match;
} topic_row;

static const topic_row rows[] = {
    /* literal words */
    { "a.b.c", "a.b.c", true },
    { "a.b.c", "a.b", false },
    { "a.b", "a.b.c", false },
    { "a.b", "A.B", false },          /* case-sensitive */
    { "a#b", "a#b", true },           /* '#' inside a word is literal */
    { "a#b", "axb", false },
    { "\xc3\xa9.x", "\xc3\xa9.x", true },  /* UTF-8 words */
    /* '*' is exactly one word */
    { "a.*.c", "a.b.c", true },
    { "a.*.c", "a.c", false },
    { "a.*.c", "a.b.b.c", false },
    { "*", "a", true },
    { "*", "", false },               /* "" is zero words */
    { "*", "a.b", false },
    { "*", ".", false },              /* "." is two empty words */
    { "*.*", "a", false },
    { "*.*", "a.b", true },
    { "*.*", ".", true },
    { "a.*", "a.", true },            /* '*' matches an empty word */
    { "a.*.b", "a..b", true },
    { "*.a", ".a", true },
    { "a.*.*", "a.b", false },
    /* '#' is zero or more words */
    { "#", "", true },
    { "#", "a", true },
    { "#", "a.b.c", true },
    { "#", ".", true },
    { "a.#", "a", true },             /* zero words after a */
    { "a.#", "a.b.c", true },
    { "a.#", "a.", true },
    { "a.#", "b.a", false },
    { "#.a", "a", true },
    { "#.a", "x.y.a", true },
    { "#.a", "a.x", false },
    { "a.#.c", "a.c", true },         /* zero words in the middle */
    { "a.#.c", "a.b.c", true },
    { "a.#.c", "a.b.b.c", true },
    { "a.#.c", "a.b.c.d", false },
    { "#.#", "", true },
    { "#.#", "a.b", true },
    { "#.#.#", "a", true },
    { "a.#.#.b", "a.b", true },
    { "a.#.#.b", "a.x.y.b", true },
    { "a.b.#", "a.b", true },
    { "#.b.#", "b", true },
    { "#.b.#", "a.b.c", true },
    { "#.b.#", "a.bb.c", false },
    { "a.#.b.#.c", "a.x.b.y.z.c", true },
    { "a.#.b.#.c", "a.c.b", false },
    /* '#' and '*' together */
    { "#.*", "", false },
    { "#.*", "a.b.c", true },
    { "*.#", "a", true },
    { "*.#", "", false },
    { "a.*.#", "a", false },
    { "a.*.#", "a.b", true },
    { "a.*.#", "a.b.c.d", true },
    /* empty binding key and empty words */
    { "", "", true },
    { "", "a", false },
    { "a", "", false },
    { "", ".", false },
    { "a..b", "a..b", true },
    { "a.b", "a..b", false },
    { "a.", "a.", true },
    { "a.", "a", false },
    { ".a", ".a", true },
    { ".", ".", true },
    { ".", "", false },
    /* wildcard characters in a routing key are plain words */
    { "a.*", "a.*", true },
    { "a.b", "a.*", false },
    { "a.*", "a.#", true },
    { "a.#", "a.#", true },
    { "a.x", "a.#", false },
};

static void
every_row_of_the_semantics_table_matches_as_rabbitmq_does(void **state)
{
    assert_true(NELEM(rows) >= 40);
    for (size_t i = 0; i < NELEM(rows); i++) {
        void *x = T->create();
        sb_dest_vec dv;

        assert_int_equal(T->bind(x, sb_str_c(rows[i].pattern), NULL, &q1), 0);
        dv = route(T, x, rows[i].key, NULL);
        if ((dv.n == 1) != rows[i].match)
            fail_msg("row %zu: pattern '%s' key '%s': expected %s", i, rows[i].pattern,
                     rows[i].key, rows[i].match ? "match" : "no match");
        sb_dest_vec_free(&dv);
        T->destroy(x);
    }
}

/* The same rows, all bound at once to distinct destinations in one
 * exchange: sharing trie nodes must not change any answer. */
static void
the_semantics_table_holds_with_all_rows_in_one_trie(void **state)
{
    static char dests[NELEM(rows)];
    void *x = T->create();

    for (size_t i = 0; i < NELEM(rows); i++)
        assert_int_equal(T->bind(x, sb_str_c(rows[i].pattern), NULL, &dests[i]), 0);
    for (size_t i = 0; i < NELEM(rows); i++) {
        sb_dest_vec dv = route(T, x, rows[i].key, NULL);
        if ((count_of(&dv, &dests[i]) == 1) != rows[i].match)
            fail_msg("row %zu: pattern '%s' key '%s'", i, rows[i].pattern, rows[i].key);
        for (size_t j = 0; j < dv.n; j++)
            assert_int_equal(count_of(&dv, dv.v[j]), 1);
        sb_dest_vec_free(&dv);
    }
    T->destroy(x);
}

/* ---- bindings ---- */

static void
a_queue_matched_by_several_bindings_gets_one_copy(void **state)
{
    void *x = T->create();
    sb_dest_vec dv;

    T->bind(x, sb_str_c("a.*"), NULL, &q1);
    T->bind(x, sb_str_c("#.b"), NULL, &q1);
    T->bind(x, sb_str_c("a.b"), NULL, &q1);
    T->bind(x, sb_str_c("#"), NULL, &q2);
    dv = route(T, x, "a.b", NULL);
    assert_int_equal(dv.n, 2);
    assert_int_equal(count_of(&dv, &q1), 1);
    assert_int_equal(count_of(&dv, &q2), 1);
    sb_dest_vec_free(&dv);
    T->destroy(x);
}

static void
route_does_not_repeat_a_destination_already_in_the_vector(void **state)
{
    void *x = T->create();
    sb_dest_vec dv = { NULL, 0, 0 };

    T->bind(x, sb_str_c("a.#"), NULL, &q1);
    T->bind(x, sb_str_c("a.b"), NULL, &q2);
    sb_dest_vec_push_unique(&dv, &q1);
    T->route(x, sb_str_c("a.b"), NULL, &dv);
    assert_int_equal(dv.n, 2);
    assert_int_equal(count_of(&dv, &q1), 1);
    assert_int_equal(count_of(&dv, &q2), 1);
    sb_dest_vec_free(&dv);
    T->destroy(x);
}

static void
binding_the_same_key_args_and_queue_twice_reports_an_existing_binding(void **state)
{
    void *x = T->create();
    sb_amqp_entry e[] = { E("k", v_int(SB_FV_I32, 1)) };
    sb_amqp_table args = TBL(e), empty = { 0, NULL, SB_STR_NULL };

    assert_int_equal(T->bind(x, sb_str_c("a.*"), NULL, &q1), 0);
    assert_int_equal(T->bind(x, sb_str_c("a.*"), NULL, &q1), 1);
    assert_int_equal(T->bind(x, sb_str_c("a.*"), &empty, &q1), 1);  /* NULL == {} */
    assert_int_equal(T->bind(x, sb_str_c("a.*"), &args, &q1), 0);   /* other args */
    assert_int_equal(T->bind(x, sb_str_c("a.*"), NULL, &q2), 0);    /* other queue */
    assert_true(routes_nowhere(T, x, "b.c", NULL));
    T->destroy(x);
}

static void
unbind_removes_only_the_equal_binding(void **state)
{
    void *x = T->create();
    sb_amqp_entry e[] = { E("k", v_str("v")) };
    sb_amqp_table args = TBL(e);

    T->bind(x, sb_str_c("a.*"), NULL, &q1);
    T->bind(x, sb_str_c("a.*"), &args, &q1);
    T->bind(x, sb_str_c("a.#"), NULL, &q2);
    assert_int_equal(T->unbind(x, sb_str_c("a.*"), NULL, &q1), 0);
    assert_int_equal(T->unbind(x, sb_str_c("a.*"), NULL, &q1), 1);
    assert_int_equal(T->unbind(x, sb_str_c("a.x"), NULL, &q1), 1);  /* no such key */
    assert_int_equal(T->unbind(x, sb_str_c("a.*"), NULL, &q3), 1);  /* no such queue */
    {
        sb_dest_vec dv = route(T, x, "a.b", NULL);
        assert_int_equal(dv.n, 2);  /* q1 still bound with args, q2 by a.# */
        sb_dest_vec_free(&dv);
    }
    assert_int_equal(T->unbind(x, sb_str_c("a.*"), &args, &q1), 0);
    assert_true(routes_only_to(T, x, "a.b", NULL, &q2));
    T->destroy(x);
}

static void
unbinding_everything_prunes_the_trie_to_its_root(void **state)
{
    void *x = T->create();

    T->bind(x, sb_str_c("a.b.c"), NULL, &q1);
    T->bind(x, sb_str_c("a.b"), NULL, &q2);
    T->bind(x, sb_str_c("a.#.*"), NULL, &q3);
    assert_int_equal(sb_broker__topic_node_count(x), 6);
    assert_int_equal(T->unbind(x, sb_str_c("a.b"), NULL, &q2), 0);
    assert_int_equal(sb_broker__topic_node_count(x), 6);  /* a.b.c still needs a.b */
    assert_int_equal(T->unbind(x, sb_str_c("a.b.c"), NULL, &q1), 0);
    assert_int_equal(sb_broker__topic_node_count(x), 4);
    assert_int_equal(T->unbind(x, sb_str_c("a.#.*"), NULL, &q3), 0);
    assert_int_equal(sb_broker__topic_node_count(x), 1);
    assert_true(routes_nowhere(T, x, "a.b.c", NULL));
    T->bind(x, sb_str_c("a.b"), NULL, &q2);  /* the pruned trie still works */
    assert_true(routes_only_to(T, x, "a.b", NULL, &q2));
    T->destroy(x);
}

static void
binding_args_are_copied_so_the_callers_buffer_can_be_reused(void **state)
{
    void *x = T->create();
    sb_amqp_entry e[] = { E("k", v_str("value")) };
    sb_amqp_table src = TBL(e), decoded;
    sb_buf b = SB_BUF_INIT;
    sb_arena a = SB_ARENA_INIT;

    sb_amqp_table_encode(&b, &src);
    assert_true(sb_amqp_table_decode(b.data, b.len, &decoded, &a) > 0);
    assert_int_equal(T->bind(x, sb_str_c("k"), &decoded, &q1), 0);
    memset(b.data, 0xAA, b.len);            /* the frame buffer is reused */
    sb_arena_reset(&a);
    assert_int_equal(T->unbind(x, sb_str_c("k"), &src, &q1), 0);
    sb_buf_free(&b);
    sb_arena_free(&a);
    T->destroy(x);
}

/* ---- many bindings ---- */

static void
ten_thousand_bindings_route_without_visiting_them_all(void **state)
{
    enum { N = 10000 };
    static char dests[N];
    void *x = T->create();
    char key[64];
    sb_dest_vec dv;

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "stock.%d.%s", i, i % 2 ? "nyse" : "*");
        assert_int_equal(T->bind(x, sb_str_c(key), NULL, &dests[i]), 0);
    }
    T->bind(x, sb_str_c("stock.#"), NULL, &q1);
    assert_true(sb_broker__topic_node_count(x) > N);

    dv = route(T, x, "stock.4242.lse", NULL);
    assert_int_equal(dv.n, 2);              /* stock.4242.* and stock.# */
    assert_int_equal(count_of(&dv, &dests[4242]), 1);
    assert_int_equal(count_of(&dv, &q1), 1);
    sb_dest_vec_free(&dv);
    /* root, stock, 4242, its '*', and stock.#'s node at each position */
    assert_true(sb_broker__topic_last_visits(x) <= 16);

    dv = route(T, x, "stock.4243.nyse", NULL);
    assert_int_equal(dv.n, 2);
    sb_dest_vec_free(&dv);
    assert_true(sb_broker__topic_last_visits(x) <= 16);

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "stock.%d.%s", i, i % 2 ? "nyse" : "*");
        assert_int_equal(T->unbind(x, sb_str_c(key), NULL, &dests[i]), 0);
    }
    assert_int_equal(sb_broker__topic_node_count(x), 3);  /* root, stock, # */
    T->destroy(x);
}

static void
many_queues_on_one_pattern_each_get_one_copy(void **state)
{
    enum { N = 1000 };
    static char dests[N];
    void *x = T->create();
    sb_dest_vec dv;

    for (int i = 0; i < N; i++) {
        T->bind(x, sb_str_c("a.*"), NULL, &dests[i]);
        T->bind(x, sb_str_c("#"), NULL, &dests[i]);
    }
    dv = route(T, x, "a.b", NULL);
    assert_int_equal(dv.n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(count_of(&dv, &dests[i]), 1);
    sb_dest_vec_free(&dv);
    T->destroy(x);
}

static void
stacked_hashes_against_a_long_key_stay_polynomial(void **state)
{
    void *x = T->create();
    char key[256];
    size_t n = 0;

    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(key + n, sizeof key - n, i ? ".w" : "w");
    T->bind(x, sb_str_c("#.#.#.#.#.#.#.#.#.#.#.#.z"), NULL, &q1);
    T->bind(x, sb_str_c("#.#.#.#.#.#.#.#.#.#.#.#.w"), NULL, &q2);
    assert_true(routes_only_to(T, x, key, NULL, &q2));
    /* Each (node, position) pair is walked at most once: 27 nodes x 101
     * positions, where a naive walk takes C(111, 11) steps. */
    assert_true(sb_broker__topic_last_visits(x) <= 27 * 101 * 2);
    T->destroy(x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_of_the_semantics_table_matches_as_rabbitmq_does),
        cmocka_unit_test(the_semantics_table_holds_with_all_rows_in_one_trie),
        cmocka_unit_test(a_queue_matched_by_several_bindings_gets_one_copy),
        cmocka_unit_test(route_does_not_repeat_a_destination_already_in_the_vector),
        cmocka_unit_test(binding_the_same_key_args_and_queue_twice_reports_an_existing_binding),
        cmocka_unit_test(unbind_removes_only_the_equal_binding),
        cmocka_unit_test(unbinding_everything_prunes_the_trie_to_its_root),
        cmocka_unit_test(binding_args_are_copied_so_the_callers_buffer_can_be_reused),
        cmocka_unit_test(ten_thousand_bindings_route_without_visiting_them_all),
        cmocka_unit_test(many_queues_on_one_pattern_each_get_one_copy),
        cmocka_unit_test(stacked_hashes_against_a_long_key_stay_polynomial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
