/* test_store_log.c - the message log in normal operation: append, commit,
 * reopen, remove, delivered marks, segment deletion, group commit through
 * the eventfd, read-back, short writes, ENOSPC and the disk limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <poll.h>

#include "common/log.h"
#include "store/crc32c.h"
#include "store/store.h"
#include "store_test_util.h"

typedef struct durable_log {
    uint64_t pos;     /* last durable position reported */
    int calls;
    int err;          /* last error reported */
    uint64_t err_pos;
    pthread_t thread; /* thread the callback ran on */
} durable_log;

static void
on_durable(void *arg, uint64_t pos, int err)
{
    durable_log *d = arg;
    d->calls++;
    d->thread = pthread_self();
    if (err) {
        d->err = err;
        d->err_pos = pos;
    } else {
        assert_true(pos >= d->pos);
        d->pos = pos;
    }
}

static sb_store *
open_store(const char *dir, const sb_file_ops *ops, got *g, durable_log *d, uint32_t seg_max)
{
    sb_store_opts o = { .segment_max_bytes = seg_max, .ops = ops, .on_recover = got_cb,
                        .recover_arg = g, .on_durable = on_durable, .durable_arg = d };
    sb_store *st = NULL;
    assert_int_equal(sb_store_open(dir, &o, &st), 0);
    return st;
}

static void
fmt_msg(char *hdr, char *body, size_t body_cap, int i)
{
    sprintf(hdr, "hdr-%d", i);
    int n = snprintf(body, body_cap, "body-%d-", i);
    for (int k = 0; k < (i * 37) % 300 && (size_t)n + 1 < body_cap; k++)
        body[n++] = (char)('a' + (i + k) % 26);
    body[n] = '\0';
}

static void
append_n(sb_store *st, int from, int to, sb_store_loc *locs)
{
    char hdr[32], body[512];
    for (int i = from; i < to; i++) {
        fmt_msg(hdr, body, sizeof body, i);
        assert_int_equal(sb_store_append(st, (uint32_t)(i % 3), (uint64_t)i, sb_str_c(hdr),
                                         sb_str_c(body), &locs[i]),
                         0);
    }
}

static void
check_msg(const got_msg *m, int i)
{
    char hdr[32], body[512];
    fmt_msg(hdr, body, sizeof body, i);
    assert_int_equal(m->msg_id, i);
    assert_int_equal(m->queue_id, i % 3);
    assert_string_equal(m->hdr, hdr);
    assert_string_equal(m->body, body);
}

static void
crc32c_matches_the_standard_check_value_in_both_implementations(void **state)
{
    uint8_t buf[1000];
    assert_int_equal(sb_store__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sb_store__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n < sizeof buf; n += 37) {
        uint32_t a = sb_store__crc32c(0, buf, n);
        assert_int_equal(a, sb_store__crc32c_sw(0, buf, n));
        /* Continuing in pieces gives the same result. */
        assert_int_equal(a, sb_store__crc32c(sb_store__crc32c(0, buf, n / 3), buf + n / 3,
                                             n - n / 3));
    }
}

static void
append_commit_reopen_returns_every_record_in_order(void **state)
{
    char *dir = tmp_dir();
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[400];
    sb_store *st = open_store(dir, NULL, &g, &d, 4096);

    assert_int_equal(g.n, 0);
    append_n(st, 0, 200, locs);
    assert_int_equal(sb_store_sync(st), 0);
    assert_true(sb_store_durable_pos(st) >= locs[199].pos);
    append_n(st, 200, 400, locs);
    for (int i = 1; i < 400; i++)
        assert_true(locs[i].pos > locs[i - 1].pos);
    assert_int_equal(sb_store_close(st), 0);
    assert_true(count_files(dir, ".seg") > 5);   /* 4 KiB segments rolled over */

    st = open_store(dir, NULL, &g, &d, 4096);
    assert_int_equal(g.n, 400);
    for (int i = 0; i < 400; i++) {
        check_msg(&g.m[i], i);
        assert_int_equal(g.m[i].loc.pos, locs[i].pos);
        assert_int_equal(g.m[i].loc.segment, locs[i].segment);
        assert_int_equal(g.m[i].loc.offset, locs[i].offset);
        assert_false(g.m[i].was_delivered);
    }
    /* Read-back of a paged-out message gives the same bytes. */
    for (int i = 0; i < 400; i += 13) {
        sb_store_msg m;
        uint8_t *buf;
        assert_int_equal(sb_store_read(st, &locs[i], &m, &buf), 0);
        assert_int_equal(m.msg_id, i);
        assert_int_equal(m.body.len, g.m[i].body_len);
        assert_memory_equal(m.body.p, g.m[i].body, m.body.len);
        sb_free(buf);
    }
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
removed_records_do_not_come_back_and_delivered_ones_are_marked(void **state)
{
    char *dir = tmp_dir();
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[100];
    sb_store *st = open_store(dir, NULL, &g, &d, 0);

    append_n(st, 0, 100, locs);
    assert_int_equal(sb_store_sync(st), 0);
    for (int i = 0; i < 100; i += 2)
        assert_int_equal(sb_store_remove(st, (uint32_t)(i % 3), (uint64_t)i, &locs[i]), 0);
    for (int i = 1; i < 100; i += 4)
        assert_int_equal(sb_store_mark_delivered(st, (uint32_t)(i % 3), (uint64_t)i, &locs[i]),
                         0);
    assert_int_equal(sb_store_close(st), 0);

    st = open_store(dir, NULL, &g, &d, 0);
    assert_int_equal(g.n, 50);
    for (size_t k = 0; k < g.n; k++) {
        int i = (int)(2 * k + 1);
        check_msg(&g.m[k], i);
        assert_int_equal(g.m[k].was_delivered, (i - 1) % 4 == 0);
    }
    sb_store_stats s;
    sb_store_get_stats(st, &s);
    assert_int_equal(s.live_count, 50);
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
a_segment_with_only_dead_records_is_deleted(void **state)
{
    char *dir = tmp_dir();
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[300];
    sb_store *st = open_store(dir, NULL, &g, &d, 4096);
    sb_store_stats s;

    append_n(st, 0, 300, locs);
    assert_int_equal(sb_store_sync(st), 0);
    int before = count_files(dir, ".seg");
    assert_true(before > 10);
    /* Keep message 299 (in the newest segment) alive, remove the rest. */
    for (int i = 0; i < 299; i++)
        assert_int_equal(sb_store_remove(st, (uint32_t)(i % 3), (uint64_t)i, &locs[i]), 0);
    /* Each deletion is durable before the segments pinned by it go. */
    for (int round = 0; round < 50; round++)
        assert_int_equal(sb_store_sync(st), 0);
    sb_store_get_stats(st, &s);
    assert_int_equal(s.live_count, 1);
    assert_true(s.deleted_count >= (uint64_t)before - 2);
    assert_true(count_files(dir, ".seg") <= 3);
    assert_int_equal(sb_store_close(st), 0);

    st = open_store(dir, NULL, &g, &d, 4096);
    assert_int_equal(g.n, 1);
    check_msg(&g.m[0], 299);
    assert_int_equal(sb_store_remove(st, 2, 299, &g.m[0].loc), 0);
    for (int round = 0; round < 10; round++)
        assert_int_equal(sb_store_sync(st), 0);
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    st = open_store(dir, NULL, &g, &d, 4096);
    assert_int_equal(g.n, 0);
    assert_int_equal(sb_store_close(st), 0);
    assert_true(count_files(dir, ".seg") <= 2);
    got_free(&g);
    rm_dir(dir);
}

static void
group_commit_makes_many_appends_durable_with_one_fsync(void **state)
{
    char *dir = tmp_dir();
    fake_fs f;
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[1000];

    fake_init(&f, dir);
    sb_store *st = open_store(dir, &f.ops, &g, &d, 0);
    append_n(st, 0, 10, locs);
    assert_int_equal(sb_store_sync(st), 0);   /* creates the segment */
    int before = f.file_syncs;
    append_n(st, 10, 1000, locs);
    assert_int_equal(sb_store_commit_async(st), 0);
    struct pollfd p = { .fd = sb_store_fd(st), .events = POLLIN };
    while (d.pos < locs[999].pos) {
        assert_true(poll(&p, 1, 5000) == 1);
        assert_int_equal(sb_store_poll(st), 0);
    }
    assert_int_equal(f.file_syncs - before, 1);
    assert_true(pthread_equal(d.thread, pthread_self()));
    assert_int_equal(sb_store_durable_pos(st), locs[999].pos);
    assert_int_equal(d.err, 0);
    assert_int_equal(sb_store_close(st), 0);
    fake_free(&f);
    got_free(&g);
    rm_dir(dir);
}

static void
appends_during_a_commit_join_the_next_batch(void **state)
{
    char *dir = tmp_dir();
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[2000];
    sb_store *st = open_store(dir, NULL, &g, &d, 0);
    struct pollfd p = { .fd = sb_store_fd(st), .events = POLLIN };

    for (int b = 0; b < 20; b++) {
        append_n(st, b * 100, b * 100 + 100, locs);
        sb_store_commit_async(st);
        if (poll(&p, 1, 0) == 1)
            sb_store_poll(st);
    }
    while (d.pos < locs[1999].pos) {
        assert_true(poll(&p, 1, 5000) == 1);
        sb_store_poll(st);
    }
    sb_store_stats s;
    sb_store_get_stats(st, &s);
    assert_true(s.commit_count >= 2 && s.commit_count <= 21);
    assert_int_equal(sb_store_close(st), 0);
    st = open_store(dir, NULL, &g, &d, 0);
    assert_int_equal(g.n, 2000);
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
short_writes_are_retried_until_complete(void **state)
{
    char *dir = tmp_dir();
    fake_fs f;
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[50];

    fake_init(&f, dir);
    f.short_writes = true;
    sb_store *st = open_store(dir, &f.ops, &g, &d, 0);
    append_n(st, 0, 50, locs);
    assert_int_equal(sb_store_close(st), 0);
    st = open_store(dir, NULL, &g, &d, 0);
    assert_int_equal(g.n, 50);
    for (int i = 0; i < 50; i++)
        check_msg(&g.m[i], i);
    assert_int_equal(sb_store_close(st), 0);
    fake_free(&f);
    got_free(&g);
    rm_dir(dir);
}

static void
write_error_is_reported_and_the_store_works_when_space_returns(int err)
{
    char *dir = tmp_dir();
    fake_fs f;
    got g = { 0 };
    durable_log d = { 0 };
    sb_store_loc locs[60];

    fake_init(&f, dir);
    sb_store *st = open_store(dir, &f.ops, &g, &d, 0);
    append_n(st, 0, 20, locs);
    assert_int_equal(sb_store_sync(st), 0);
    uint64_t durable = sb_store_durable_pos(st);
    /* Remove one durable message, then fail the batch that carries it. */
    assert_int_equal(sb_store_remove(st, 0, 0, &locs[0]), 0);
    f.fail_write = err;
    append_n(st, 20, 40, locs);
    assert_int_equal(sb_store_sync(st), err);
    assert_int_equal(d.err, err);
    assert_int_equal(d.err_pos, locs[39].pos);
    assert_int_equal(sb_store_durable_pos(st), durable);
    /* The lost ones are gone from the counts; a remove of one is ignored. */
    assert_int_equal(sb_store_remove(st, 1, 25, &locs[25]), 0);
    f.fail_write = 0;
    append_n(st, 40, 60, locs);
    assert_true(locs[40].pos > locs[39].pos);
    assert_int_equal(sb_store_sync(st), 0);
    assert_true(sb_store_durable_pos(st) >= locs[59].pos);
    sb_store_stats s;
    sb_store_get_stats(st, &s);
    assert_int_equal(s.live_count, 39);
    assert_int_equal(sb_store_close(st), 0);

    st = open_store(dir, NULL, &g, &d, 0);
    assert_int_equal(g.n, 39);        /* 1..19 and 40..59; 0 was removed */
    for (size_t k = 0; k < 19; k++)
        check_msg(&g.m[k], (int)k + 1);
    for (size_t k = 19; k < 39; k++)
        check_msg(&g.m[k], (int)k + 21);
    assert_int_equal(sb_store_close(st), 0);
    fake_free(&f);
    got_free(&g);
    rm_dir(dir);
}

static void
enospc_is_reported_and_the_store_is_usable_after_space_returns(void **state)
{
    write_error_is_reported_and_the_store_works_when_space_returns(-ENOSPC);
}

static void
eio_is_reported_and_nothing_stored_before_is_damaged(void **state)
{
    write_error_is_reported_and_the_store_works_when_space_returns(-EIO);
}

static void
append_past_the_disk_limit_is_refused_with_enospc(void **state)
{
    char *dir = tmp_dir();
    sb_store_opts o = { .disk_limit_bytes = 10000 };
    sb_store *st;
    sb_store_loc loc;
    char body[1000] = { 0 };
    int ok = 0, rc;

    assert_int_equal(sb_store_open(dir, &o, &st), 0);
    while ((rc = sb_store_append(st, 1, 1, SB_STR_NULL, sb_str_make(body, sizeof body), &loc)) == 0)
        ok++;
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(ok, 9);
    assert_int_equal(sb_store_close(st), 0);
    rm_dir(dir);
}

static void
read_of_a_record_not_yet_durable_is_eagain(void **state)
{
    char *dir = tmp_dir();
    sb_store *st;
    sb_store_loc loc;
    sb_store_msg m;
    uint8_t *buf = NULL;

    assert_int_equal(sb_store_open(dir, NULL, &st), 0);
    assert_int_equal(sb_store_append(st, 1, 7, SB_STR_LIT("h"), SB_STR_LIT("b"), &loc), 0);
    assert_int_equal(sb_store_read(st, &loc, &m, &buf), -EAGAIN);
    assert_int_equal(sb_store_sync(st), 0);
    assert_int_equal(sb_store_read(st, &loc, &m, &buf), 0);
    assert_true(sb_str_eq_c(m.body, "b"));
    sb_free(buf);
    assert_int_equal(sb_store_close(st), 0);
    rm_dir(dir);
}

int
main(void)
{
    sb_log_set_level((sb_log_level)(SB_LOG_ERROR + 1));  /* quiet: failures are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value_in_both_implementations),
        cmocka_unit_test(append_commit_reopen_returns_every_record_in_order),
        cmocka_unit_test(removed_records_do_not_come_back_and_delivered_ones_are_marked),
        cmocka_unit_test(a_segment_with_only_dead_records_is_deleted),
        cmocka_unit_test(group_commit_makes_many_appends_durable_with_one_fsync),
        cmocka_unit_test(appends_during_a_commit_join_the_next_batch),
        cmocka_unit_test(short_writes_are_retried_until_complete),
        cmocka_unit_test(enospc_is_reported_and_the_store_is_usable_after_space_returns),
        cmocka_unit_test(eio_is_reported_and_nothing_stored_before_is_damaged),
        cmocka_unit_test(append_past_the_disk_limit_is_refused_with_enospc),
        cmocka_unit_test(read_of_a_record_not_yet_durable_is_eagain),
    };
    return cmocka_run_group_tests(tests, fds_setup, fds_teardown);
}
