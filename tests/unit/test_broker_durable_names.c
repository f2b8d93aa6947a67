/* test_broker_durable_names.c - names are bytes, and durable ones must
 * come back from the definitions file exactly: a NUL inside a queue name,
 * an exchange name or a binding key, and bytes that are not UTF-8 (which
 * a JSON string cannot hold; json_table.c keeps them hex-encoded beside
 * the name). Found by fuzz/fuzz_session: a NUL in a binding key made the
 * saved file unloadable, so the broker would not start again; a NUL cut a
 * queue name short; a name that is not UTF-8 was silently left out.
 *
 * Each test saves the definitions of one broker into a fresh directory
 * (sb_broker_before_sleep, as the loop does) and loads them into another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "broker_test_util.h"
#include "store/defs.h"

typedef struct dir_state {
    char path[64];
} dir_state;

static int
make_dir(void **state)
{
    dir_state *d = calloc(1, sizeof *d);

    snprintf(d->path, sizeof d->path, "/tmp/sb-test-names-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    *state = d;
    return 0;
}

static int
remove_dir(void **state)
{
    dir_state *d = *state;
    char p[128];

    snprintf(p, sizeof p, "%s/definitions", d->path);
    unlink(p);
    rmdir(d->path);
    free(d);
    return 0;
}

/* A broker that saves its definitions in dir. */
static sb_broker *
durable_broker(const char *dir)
{
    sb_broker *b = tb_broker();

    assert_int_equal(sb_broker_load_definitions(b, dir), 0);
    return b;
}

static void
declare_durable(sb_vhost *v, sb_str queue, sb_str exchange, sb_str key)
{
    sb_queue_decl q = { .name = queue, .durable = true };
    sb_exchange_decl x = { .name = exchange, .type = SB_STR_LIT("direct"), .durable = true };
    sb_queue_info info;
    sb_error err = { 0 };

    assert_int_equal(sb_queue_declare(v, &q, &info, &err), 0);
    assert_int_equal(sb_exchange_declare(v, &x, &err), 0);
    assert_int_equal(sb_queue_bind(v, queue, exchange, key, NULL, NULL, false, &err), 0);
}

/* Saves b's definitions, frees b, loads them into a new broker, and checks
 * that the queue and exchange are there under their exact names and that
 * the binding routes the exact key. */
static void
check_round_trip(const char *dir, sb_broker *b, sb_str queue, sb_str exchange, sb_str key)
{
    sb_queue_view qv;
    sb_exchange_view xv;
    sb_publish_result res = { 0 };
    sb_error err = { 0 };
    sb_msg *m;

    sb_broker_before_sleep(b);
    sb_broker_free(b);
    b = durable_broker(dir);
    sb_vhost *v = tb_vhost(b);
    assert_true(sb_vhost_queue_view(v, queue, &qv));
    assert_int_equal(qv.name.len, queue.len);
    assert_memory_equal(qv.name.p, queue.p, queue.len);
    assert_true(qv.durable);
    assert_true(sb_vhost_exchange_view(v, exchange, &xv));
    assert_int_equal(xv.name.len, exchange.len);
    m = sb_msg_new(SB_STR_NULL, exchange, key, 0, 2, 0);
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    sb_msg_unref(m);
    assert_true(sb_vhost_queue_view(v, queue, &qv));
    assert_int_equal(qv.messages_ready, 1);
    sb_broker_free(b);
}

static void
names_with_a_nul_come_back_whole_after_a_restart(void **state)
{
    dir_state *d = *state;
    sb_broker *b = durable_broker(d->path);
    sb_str q = SB_STR_LIT("orders\0eu"), x = SB_STR_LIT("x\0y"), k = SB_STR_LIT("k\0.#");

    declare_durable(tb_vhost(b), q, x, k);
    check_round_trip(d->path, b, q, x, k);
}

static void
names_that_are_not_utf8_come_back_exactly_after_a_restart(void **state)
{
    dir_state *d = *state;
    sb_broker *b = durable_broker(d->path);
    sb_str q = SB_STR_LIT("q\xff\xfe"), x = SB_STR_LIT("x-\xc3("), k = SB_STR_LIT("\x80key\0");

    declare_durable(tb_vhost(b), q, x, k);
    check_round_trip(d->path, b, q, x, k);
}

static void
a_lossy_utf8_name_and_the_exact_one_are_two_queues(void **state)
{
    dir_state *d = *state;
    sb_broker *b = durable_broker(d->path);
    sb_str exact = SB_STR_LIT("q\xff"), lossy = SB_STR_LIT("q?");
    sb_queue_decl qd = { .name = lossy, .durable = true };
    sb_queue_info info;
    sb_error err = { 0 };

    /* The file shows "q?" for both; only the hex beside one tells them apart. */
    declare_durable(tb_vhost(b), exact, SB_STR_LIT("ex"), SB_STR_LIT("k"));
    assert_int_equal(sb_queue_declare(tb_vhost(b), &qd, &info, &err), 0);
    sb_broker_before_sleep(b);
    sb_broker_free(b);
    b = durable_broker(d->path);
    sb_queue_view qv;
    assert_true(sb_vhost_queue_view(tb_vhost(b), exact, &qv));
    assert_true(sb_vhost_queue_view(tb_vhost(b), lossy, &qv));
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(names_with_a_nul_come_back_whole_after_a_restart,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(names_that_are_not_utf8_come_back_exactly_after_a_restart,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(a_lossy_utf8_name_and_the_exact_one_are_two_queues,
                                        make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
