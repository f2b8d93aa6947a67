/* test_store_defs.c - the definitions file: save, load, replace, damage,
 * and a crash at each sync of a save (the fsync of the temporary file,
 * then the directory fsync after the rename). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/log.h"
#include "store/defs.h"
#include "store_test_util.h"

static void
expect_blob(const char *dir, const sb_file_ops *ops, const char *want)
{
    uint8_t *blob = NULL;
    size_t len = 0;

    assert_int_equal(sb_defs_load(dir, ops, &blob, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(blob, want, len);
    sb_free(blob);
}

static void
saved_definitions_load_back_and_a_save_replaces_them(void **state)
{
    char *dir = tmp_dir();
    uint8_t *blob;
    size_t len;

    assert_int_equal(sb_defs_load(dir, NULL, &blob, &len), -ENOENT);
    assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("{\"queues\":[]}")), 0);
    expect_blob(dir, NULL, "{\"queues\":[]}");
    assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("{\"queues\":[\"q1\"]}")), 0);
    expect_blob(dir, NULL, "{\"queues\":[\"q1\"]}");
    assert_int_equal(sb_defs_save(dir, NULL, SB_STR_NULL), 0);
    expect_blob(dir, NULL, "");
    assert_int_equal(count_files(dir, ".tmp"), 0);
    rm_dir(dir);
}

static void
a_damaged_definitions_file_is_reported_not_returned(void **state)
{
    char *dir = tmp_dir(), path[4200];
    uint8_t *blob;
    size_t len;

    assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("{\"exchanges\":[]}")), 0);
    snprintf(path, sizeof path, "%s/definitions", dir);
    FILE *f = fopen(path, "r+b");
    fseek(f, 25, SEEK_SET);
    fputc('X', f);
    fclose(f);
    assert_int_equal(sb_defs_load(dir, NULL, &blob, &len), -EILSEQ);
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(sb_defs_load(dir, NULL, &blob, &len), -EILSEQ);
    rm_dir(dir);
}

static void
a_crash_at_any_sync_of_a_save_leaves_the_old_or_the_new_definitions(void **state)
{
    for (int n = 1; n <= 3; n++) {
        for (int keep = 0; keep <= 100; keep += 50) {
            char *dir = tmp_dir();
            fake_fs f;
            uint8_t *blob = NULL;
            size_t len = 0;

            assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("old")), 0);
            fake_init(&f, dir);
            f.crash_at = n;
            int rc = sb_defs_save(dir, &f.ops, SB_STR_LIT("the new definitions"));
            assert_int_equal(rc, n <= 2 ? -EIO : 0);
            fake_reboot(&f, keep);
            assert_int_equal(sb_defs_load(dir, NULL, &blob, &len), 0);
            bool is_old = len == 3 && memcmp(blob, "old", 3) == 0;
            bool is_new = len == 19 && memcmp(blob, "the new definitions", 19) == 0;
            assert_true(is_old || is_new);
            /* Before the data was fsynced the rename had not happened. */
            if (n == 1)
                assert_true(is_old);
            sb_free(blob);
            /* A later save works despite the leftover temporary file. */
            assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("later")), 0);
            expect_blob(dir, NULL, "later");
            fake_free(&f);
            rm_dir(dir);
        }
    }
}

static void
a_failed_write_keeps_the_previous_definitions(void **state)
{
    char *dir = tmp_dir();
    fake_fs f;

    assert_int_equal(sb_defs_save(dir, NULL, SB_STR_LIT("before")), 0);
    fake_init(&f, dir);
    f.fail_write = -ENOSPC;
    assert_int_equal(sb_defs_save(dir, &f.ops, SB_STR_LIT("after, but the disk is full")),
                     -ENOSPC);
    expect_blob(dir, NULL, "before");
    assert_int_equal(count_files(dir, ".tmp"), 0);
    fake_free(&f);
    rm_dir(dir);
}

int
main(void)
{
    sb_log_set_level((sb_log_level)(SB_LOG_ERROR + 1));  /* damage is expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(saved_definitions_load_back_and_a_save_replaces_them),
        cmocka_unit_test(a_damaged_definitions_file_is_reported_not_returned),
        cmocka_unit_test(a_crash_at_any_sync_of_a_save_leaves_the_old_or_the_new_definitions),
        cmocka_unit_test(a_failed_write_keeps_the_previous_definitions),
    };
    return cmocka_run_group_tests(tests, fds_setup, fds_teardown);
}
