/* test_store_pagefile.c - paging files: records come back byte for byte
 * whether still buffered or written, files roll at their size and go when
 * their last record is released, leftovers of a previous run are removed
 * at open, and a failed write (ENOSPC, short writes) loses nothing: the
 * bytes stay buffered and readable, appends are refused until a retry
 * works. Real files in a temp dir; faults through the fake file ops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"
#include "store/pagefile.h"

static sb_str
rec(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap, "record %d ", i);
    for (int k = 0; k < i % 50; k++)
        n += snprintf(buf + n, cap - (size_t)n, "%c", 'a' + k % 26);
    return sb_str_make(buf, (size_t)n);
}

static void
check(sb_pagefile *pf, sb_pagefile_loc loc, int i, size_t hint)
{
    char want[256];
    sb_str w = rec(want, sizeof want, i);
    sb_buf out = SB_BUF_INIT;

    assert_int_equal(sb_pagefile_read(pf, loc, hint, &out), 0);
    assert_int_equal(out.len, w.len);
    assert_memory_equal(out.data, w.p, w.len);
    sb_buf_free(&out);
}

static void
records_read_back_buffered_written_and_across_files(void **state)
{
    char *dir = tmp_dir(), buf[256];
    sb_pagefile_opts o = { .file_max_bytes = 4096, .flush_bytes = 1000 };
    sb_pagefile_loc loc[300];
    sb_pagefile_stats st;
    sb_pagefile *pf;

    assert_int_equal(sb_pagefile_open(dir, &o, &pf), 0);
    for (int i = 0; i < 300; i++) {
        sb_str parts[2] = { SB_STR_LIT("record "), SB_STR_NULL };
        sb_str r = rec(buf, sizeof buf, i);
        parts[1] = sb_str_make(r.p + 7, r.len - 7);  /* two parts, one record */
        assert_int_equal(sb_pagefile_append(pf, parts, 2, &loc[i]), 0);
        check(pf, loc[i], i, 4);  /* the newest may still be buffered; a short hint re-reads */
    }
    sb_pagefile_get_stats(pf, &st);
    assert_true(st.files > 3);
    assert_int_equal(st.live, 300);
    assert_int_equal(count_files(dir, ".page"), (int)st.files);
    for (int i = 0; i < 300; i++)
        check(pf, loc[i], i, 200);
    /* Released in order: every file but the active one goes with its last record. */
    for (int i = 0; i < 150; i++)
        sb_pagefile_release(pf, loc[i]);
    sb_pagefile_get_stats(pf, &st);
    assert_int_equal(count_files(dir, ".page"), (int)st.files);
    assert_true(st.files < 3 + (300 - 150) * 80 / 4096);
    for (int i = 299; i >= 150; i--)
        sb_pagefile_release(pf, loc[i]);
    sb_pagefile_get_stats(pf, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.live, 0);
    assert_int_equal(count_files(dir, ".page"), 0);
    sb_pagefile_close(pf);
    rm_dir(dir);
}

static void
a_damaged_record_is_reported_not_returned(void **state)
{
    char *dir = tmp_dir(), path[4096];
    sb_pagefile_loc loc;
    sb_buf out = SB_BUF_INIT;
    sb_str r = SB_STR_LIT("hello paging");
    sb_pagefile *pf;
    int fd;

    assert_int_equal(sb_pagefile_open(dir, NULL, &pf), 0);
    assert_int_equal(sb_pagefile_append(pf, &r, 1, &loc), 0);
    assert_int_equal(sb_pagefile_flush(pf), 0);
    snprintf(path, sizeof path, "%s/%010u.page", dir, loc.file);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "J", 1, loc.offset + 8), 1);
    close(fd);
    assert_int_equal(sb_pagefile_read(pf, loc, 64, &out), -EILSEQ);
    assert_int_equal(sb_pagefile_read(pf, (sb_pagefile_loc){ 99, 0 }, 64, &out), -ENOENT);
    sb_buf_free(&out);
    sb_pagefile_close(pf);
    assert_int_equal(count_files(dir, ".page"), 0);  /* close removes every file */
    rm_dir(dir);
}

static void
files_left_by_a_previous_run_are_removed_at_open(void **state)
{
    char *dir = tmp_dir(), path[4096];
    sb_pagefile *pf;
    FILE *f;

    snprintf(path, sizeof path, "%s/0000000007.page", dir);
    f = fopen(path, "w");
    fputs("old", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/keep.txt", dir);
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(sb_pagefile_open(dir, NULL, &pf), 0);
    assert_int_equal(count_files(dir, ".page"), 0);
    assert_int_equal(count_files(dir, ".txt"), 1);  /* not ours: left alone */
    sb_pagefile_close(pf);
    unlink(path);
    rm_dir(dir);
}

static void
a_full_disk_keeps_the_bytes_buffered_and_refuses_appends(void **state)
{
    char *dir = tmp_dir(), buf[256];
    sb_pagefile_opts o = { .flush_bytes = 1 << 20 };
    sb_pagefile_loc loc[40], more;
    sb_pagefile_stats st;
    sb_pagefile *pf;
    fake_fs f;

    fake_init(&f, dir);
    o.ops = &f.ops;
    assert_int_equal(sb_pagefile_open(dir, &o, &pf), 0);
    f.short_writes = true;  /* the disk fills up: part of a write goes, then ENOSPC */
    for (int i = 0; i < 20; i++) {
        sb_str r = rec(buf, sizeof buf, i);
        assert_int_equal(sb_pagefile_append(pf, &r, 1, &loc[i]), 0);
    }
    assert_int_equal(sb_pagefile_flush(pf), 0);  /* short writes are retried */
    f.short_writes = false;
    f.fail_write = -ENOSPC;
    for (int i = 20; i < 40; i++) {
        sb_str r = rec(buf, sizeof buf, i);
        assert_int_equal(sb_pagefile_append(pf, &r, 1, &loc[i]), 0);
    }
    assert_int_equal(sb_pagefile_flush(pf), -ENOSPC);
    assert_false(sb_pagefile_writable(pf));
    {
        sb_str r = rec(buf, sizeof buf, 99);
        assert_int_equal(sb_pagefile_append(pf, &r, 1, &more), -ENOSPC);
    }
    sb_pagefile_get_stats(pf, &st);
    assert_int_equal(st.live, 40);
    assert_true(st.buffered_bytes > 0);
    for (int i = 0; i < 40; i++)
        check(pf, loc[i], i, 100);  /* written or buffered: nothing lost */
    f.fail_write = 0;
    /* The retry waits SB_PAGEFILE_RETRY_MS; then the buffer goes out. */
    while (!sb_pagefile_writable(pf))
        usleep(20000);
    assert_int_equal(sb_pagefile_flush(pf), 0);
    sb_pagefile_get_stats(pf, &st);
    assert_int_equal(st.buffered_bytes, 0);
    assert_int_equal(st.err, 0);
    for (int i = 0; i < 40; i++)
        check(pf, loc[i], i, 100);
    sb_pagefile_close(pf);
    fake_free(&f);
    rm_dir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_read_back_buffered_written_and_across_files),
        cmocka_unit_test(a_damaged_record_is_reported_not_returned),
        cmocka_unit_test(files_left_by_a_previous_run_are_removed_at_open),
        cmocka_unit_test(a_full_disk_keeps_the_bytes_buffered_and_refuses_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
