/* test_broker_paging.c - transient messages past a queue's memory window
 * (queue_spill.c, queue_page.c): they leave RAM for the paging files
 * before the loop sleeps, keep their place and counts, come back in order
 * with their redelivered flags (requeue goes before the marker), still
 * expire, and purge / delete / shutdown remove their files. A priority
 * queue keeps everything in RAM. No store: only the paging files, in a
 * temp dir, with a memory window of WINDOW messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker_test_util.h"
#include "xtype_test_util.h"

#define WINDOW 4

typedef struct fixture {
    char dir[64];
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sb_broker_limits lim = { .max_message_bytes = 1u << 20, .queue_memory_window = WINDOW };

    snprintf(f->dir, sizeof f->dir, "/tmp/sb_paging_test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->b = sb_broker_new(&lim);
    assert_int_equal(sb_broker_open_paging(f->b, f->dir), 0);
    f->v = tb_vhost(f->b);
    f->ch = sb_bchan_new(f->b, f->v, NULL);
    *state = f;
    return 0;
}

static int
files_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    sb_bchan_free(f->ch);
    sb_broker_free(f->b);
    assert_int_equal(files_in(f->dir), 0);  /* shutdown removes every paging file */
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t
paged(fixture *f)
{
    uint32_t files;
    uint64_t live;

    sb_broker_paging_stats(f->b, &files, &live);
    assert_int_equal(files, files_in(f->dir));
    return live;
}

static void
publish_n(fixture *f, const char *q, int from, int n)
{
    char body[32];

    for (int i = from; i < from + n; i++) {
        snprintf(body, sizeof body, "m%03d", i);
        assert_true(tb_pub(f->v, "", q, body));
    }
    sb_broker_before_sleep(f->b);  /* the loop would sleep now: page out, write */
}

/* basic.get; checks the body is m<i> and the redelivered flag; returns the tag. */
static uint64_t
get_expect(fixture *f, const char *q, bool no_ack, int i, bool redelivered)
{
    sb_deliver_info d = { 0 };
    sb_error err = { 0 };
    char want[32];

    assert_int_equal(sb_bchan_get(f->ch, sb_str_c(q), no_ack, &d, &err), 0);
    assert_non_null(d.msg);
    snprintf(want, sizeof want, "m%03d", i);
    assert_int_equal(d.msg->body_len, strlen(want));
    assert_memory_equal(sb_msg_body(d.msg), want, strlen(want));
    assert_int_equal(d.redelivered, redelivered);
    sb_msg_unref(d.msg);
    return d.delivery_tag;
}

static void
get_empty(fixture *f, const char *q)
{
    sb_deliver_info d = { 0 };
    sb_error err = { 0 };

    assert_int_equal(sb_bchan_get(f->ch, sb_str_c(q), true, &d, &err), 0);
    assert_null(d.msg);
}

static void
transient_messages_past_the_window_are_paged_out_and_come_back_in_order(void **state)
{
    fixture *f = *state;

    tb_queue(f->v, "q");
    publish_n(f, "q", 0, 600);
    assert_int_equal(tb_ready(f->v, "q"), 600);
    assert_int_equal(paged(f), 600 - WINDOW - 1);  /* the window, and the one that crossed it */
    publish_n(f, "q", 600, 10);                   /* behind the marker: paged too */
    assert_int_equal(paged(f), 610 - WINDOW - 1);
    for (int i = 0; i < 610; i++) {
        get_expect(f, "q", true, i, false);
        assert_int_equal(tb_ready(f->v, "q"), 610 - i - 1);
    }
    get_empty(f, "q");
    assert_int_equal(paged(f), 0);
    assert_int_equal(files_in(f->dir), 0);  /* drained: the files are gone */
}

static void
requeued_messages_go_back_before_the_paged_out_ones_redelivered(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };
    uint64_t last = 0;

    tb_queue(f->v, "q");
    publish_n(f, "q", 0, 300);
    for (int i = 0; i < 20; i++)  /* crosses the marker: a batch is paged in */
        last = get_expect(f, "q", false, i, false);
    assert_int_equal(tb_ready(f->v, "q"), 280);
    publish_n(f, "q", 300, 5);
    assert_int_equal(sb_bchan_nack(f->ch, last, true, true, &err), 0);
    assert_int_equal(tb_ready(f->v, "q"), 305);
    for (int i = 0; i < 305; i++)
        get_expect(f, "q", true, i, i < 20);
    get_empty(f, "q");
    assert_int_equal(paged(f), 0);
}

static void
purge_and_delete_drop_paged_out_messages_and_their_files(void **state)
{
    fixture *f = *state;
    uint32_t n = 0;
    sb_error err = { 0 };

    tb_queue(f->v, "a");
    tb_queue(f->v, "b");
    publish_n(f, "a", 0, 200);
    publish_n(f, "b", 0, 200);
    assert_int_equal(paged(f), 2 * (200 - WINDOW - 1));
    assert_int_equal(sb_queue_purge(f->v, SB_STR_LIT("a"), NULL, &n, &err), 0);
    assert_int_equal(n, 200);
    assert_int_equal(paged(f), 200 - WINDOW - 1);
    assert_int_equal(sb_queue_delete(f->v, SB_STR_LIT("b"), NULL, false, false, &n, &err), 0);
    assert_int_equal(n, 200);
    assert_int_equal(paged(f), 0);
    assert_int_equal(files_in(f->dir), 0);
    publish_n(f, "a", 0, 50);  /* the purged queue pages again */
    assert_int_equal(paged(f), 50 - WINDOW - 1);
    for (int i = 0; i < 50; i++)
        get_expect(f, "a", true, i, false);
}

static void
paged_out_messages_still_expire(void **state)
{
    fixture *f = *state;

    tb_queue(f->v, "q");
    for (int i = 0; i < 40; i++) {
        sb_msg *m = tb_msg("", "q", "soon");
        sb_publish_result res = { .routed = false };
        sb_error err = { 0 };
        sb_msg_set_expiration(m, 30);
        assert_int_equal(sb_publish(f->v, m, NULL, &res, &err), 0);
        sb_msg_unref(m);
    }
    publish_n(f, "q", 0, 3);  /* no expiry: shelters nothing, they come after */
    assert_int_equal(paged(f), 43 - WINDOW - 1);
    usleep(60000);
    /* No loop here, so expiry happens when the queue is next used. */
    get_expect(f, "q", true, 0, false);
    assert_int_equal(tb_ready(f->v, "q"), 2);
    get_expect(f, "q", true, 1, false);
    get_expect(f, "q", true, 2, false);
    assert_int_equal(paged(f), 0);
}

static void
a_priority_queue_keeps_everything_in_ram(void **state)
{
    fixture *f = *state;
    sb_amqp_entry e[] = { E("x-max-priority", v_int(SB_FV_I32, 5)) };
    sb_amqp_table args = TBL(e);
    sb_queue_decl d = tb_qd("p");
    sb_queue_info info;
    sb_error err = { 0 };

    d.args = &args;
    assert_int_equal(sb_queue_declare(f->v, &d, &info, &err), 0);
    publish_n(f, "p", 0, 50);
    assert_int_equal(paged(f), 0);
    for (int i = 0; i < 50; i++)
        get_expect(f, "p", true, i, false);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            transient_messages_past_the_window_are_paged_out_and_come_back_in_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            requeued_messages_go_back_before_the_paged_out_ones_redelivered, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_and_delete_drop_paged_out_messages_and_their_files,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(paged_out_messages_still_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(a_priority_queue_keeps_everything_in_ram, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
