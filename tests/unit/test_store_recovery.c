/* test_store_recovery.c - recovery: the committed fixture segments (one per
 * corruption class, written by store_fixtures/make_fixtures.py), torn
 * tails made on the fly, and a crash at every Nth sync of a workload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libgen.h>

#include "common/log.h"
#include "store/store.h"
#include "store_test_util.h"

/* ---- fixtures -------------------------------------------------------------- */

static const char *
fixture_dir(void)
{
    static char found[4096];
    char here[4096];
    const char *env = getenv("SB_STORE_FIXTURES");

    snprintf(here, sizeof here, "%s", __FILE__);
    const char *cands[] = { env, NULL, "unit/store_fixtures", "tests/unit/store_fixtures" };
    char from_file[4096];
    snprintf(from_file, sizeof from_file, "%s/store_fixtures", dirname(here));
    cands[1] = from_file;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char probe[4200];
        if (cands[i] == NULL)
            continue;
        snprintf(probe, sizeof probe, "%s/good.seg", cands[i]);
        if (access(probe, R_OK) == 0) {
            snprintf(found, sizeof found, "%s", cands[i]);
            return found;
        }
    }
    fail_msg("store fixtures not found; set SB_STORE_FIXTURES");
    return NULL;
}

/* Copies fixture name into a new temp dir as segment 1. */
static char *
fixture_store(const char *name)
{
    char src[4200], dst[4200], buf[65536];
    char *dir = tmp_dir();

    snprintf(src, sizeof src, "%s/%s", fixture_dir(), name);
    snprintf(dst, sizeof dst, "%s/0000000001.seg", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    return dir;
}

/* Opens dir with stderr captured into log (NUL-terminated). */
static int
open_capturing(const char *dir, got *g, sb_store **st, char *log, size_t cap)
{
    sb_store_opts o = { .on_recover = got_cb, .recover_arg = g };
    char path[4200];

    snprintf(path, sizeof path, "%s.log", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    dup2(fd, 2);
    int rc = sb_store_open(dir, &o, st);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, log, cap - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static void
expect_msg(const got_msg *m, uint32_t q, uint64_t id, const char *hdr, const char *body,
           bool delivered)
{
    assert_int_equal(m->queue_id, q);
    assert_int_equal(m->msg_id, id);
    assert_string_equal(m->hdr, hdr);
    assert_string_equal(m->body, body);
    assert_int_equal(m->was_delivered, delivered);
}

static void
expect_m1_m3(const got *g)
{
    assert_int_equal(g->n, 2);
    expect_msg(&g->m[0], 1, 100, "h1", "body-1", false);
    expect_msg(&g->m[1], 2, 102, "h3", "body-3", true);
}

static void
fixture_good_segment_recovers_live_messages_with_delivered_marks(void **state)
{
    char *dir = fixture_store("good.seg"), log[8192];
    got g = { 0 };
    sb_store *st;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
    expect_m1_m3(&g);
    sb_store_stats s;
    sb_store_get_stats(st, &s);
    assert_int_equal(s.corrupt_count + s.torn_count + s.unknown_count, 0);
    /* A new segment is started: positions keep growing past the old ones. */
    sb_store_loc loc;
    assert_int_equal(sb_store_append(st, 1, 1, SB_STR_NULL, SB_STR_LIT("x"), &loc), 0);
    assert_true(loc.pos > g.m[1].loc.pos);
    assert_int_equal(loc.segment, 2);
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
fixture_torn_tail_is_truncated_and_logged(void **state)
{
    char *dir = fixture_store("torn_tail.seg"), log[8192], seg[4200];
    got g = { 0 };
    sb_store *st;
    struct stat sb;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
    expect_m1_m3(&g);
    assert_non_null(strstr(log, "SB-STORE-TORN"));
    assert_non_null(strstr(log, "0000000001.seg"));
    snprintf(seg, sizeof seg, "%s/0000000001.seg", dir);
    assert_int_equal(stat(seg, &sb), 0);
    assert_int_equal(sb.st_size, 204);       /* the size of good.seg */
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
fixture_corrupt_record_in_the_middle_is_skipped_and_reported_with_file_and_offset(void **state)
{
    const char *names[] = { "bad_crc.seg", "bad_length.seg" };

    for (size_t i = 0; i < 2; i++) {
        char *dir = fixture_store(names[i]), log[8192], want[4300];
        got g = { 0 };
        sb_store *st;

        assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
        expect_m1_m3(&g);   /* M2 was the corrupt one, and its REMOVE is ignored */
        snprintf(want, sizeof want, "SB-STORE-CORRUPT %s/0000000001.seg offset 68 length 36",
                 dir);
        if (strstr(log, want) == NULL)
            fail_msg("log lacks \"%s\":\n%s", want, log);
        sb_store_stats s;
        sb_store_get_stats(st, &s);
        assert_int_equal(s.corrupt_count, 1);
        assert_int_equal(s.torn_count, 0);
        assert_int_equal(sb_store_close(st), 0);
        got_free(&g);
        rm_dir(dir);
    }
}

static void
fixture_unknown_record_type_is_skipped(void **state)
{
    char *dir = fixture_store("unknown_type.seg"), log[8192];
    got g = { 0 };
    sb_store *st;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
    expect_m1_m3(&g);
    assert_non_null(strstr(log, "record type 200 is unknown"));
    sb_store_stats s;
    sb_store_get_stats(st, &s);
    assert_int_equal(s.unknown_count, 1);
    assert_int_equal(s.corrupt_count, 0);
    assert_int_equal(sb_store_close(st), 0);
    got_free(&g);
    rm_dir(dir);
}

static void
fixture_wrong_format_version_is_refused_with_a_clear_error(void **state)
{
    char *dir = fixture_store("wrong_version.seg"), log[8192];
    got g = { 0 };
    sb_store *st = NULL;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), -EPROTONOSUPPORT);
    assert_null(st);
    assert_non_null(strstr(log, "has format version 2; this build reads version 1"));
    assert_int_equal(g.n, 0);
    rm_dir(dir);
}

static void
fixture_file_that_is_not_a_segment_is_refused(void **state)
{
    char *dir = fixture_store("bad_magic.seg"), log[8192];
    got g = { 0 };
    sb_store *st = NULL;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), -EINVAL);
    assert_non_null(strstr(log, "not a switchboard segment"));
    rm_dir(dir);
}

static void
fixture_newest_segment_with_a_torn_header_is_removed(void **state)
{
    char *dir = fixture_store("torn_header.seg"), log[8192];
    got g = { 0 };
    sb_store *st = NULL;

    assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
    assert_int_equal(g.n, 0);
    assert_non_null(strstr(log, "header incomplete"));
    assert_int_equal(count_files(dir, ".seg"), 0);
    assert_int_equal(sb_store_close(st), 0);
    rm_dir(dir);
}

/* ---- torn tails at every length ---------------------------------------------- */

static void
a_tail_cut_at_any_byte_loses_only_the_cut_record(void **state)
{
    char *dir = tmp_dir(), seg[4200], log[8192];
    sb_store_loc locs[3];
    sb_store *st;

    assert_int_equal(sb_store_open(dir, NULL, &st), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_store_append(st, 1, (uint64_t)i, SB_STR_LIT("hh"),
                                         SB_STR_LIT("a body of some length"), &locs[i]),
                         0);
    assert_int_equal(sb_store_close(st), 0);
    snprintf(seg, sizeof seg, "%s/0000000001.seg", dir);
    for (uint32_t cut = locs[2].offset + 1; cut < (uint32_t)locs[2].pos; cut++) {
        got g = { 0 };
        assert_int_equal(truncate(seg, cut), 0);
        assert_int_equal(open_capturing(dir, &g, &st, log, sizeof log), 0);
        assert_int_equal(g.n, 2);
        assert_non_null(strstr(log, "SB-STORE-TORN"));
        assert_int_equal(sb_store_close(st), 0);
        got_free(&g);
        /* Open rolled to a new, empty segment; drop it for the next cut. */
        char extra[4200];
        snprintf(extra, sizeof extra, "%s/0000000002.seg", dir);
        unlink(extra);
    }
    rm_dir(dir);
}

/* ---- crash at the Nth sync ------------------------------------------------------ */

#define CRASH_MSGS 240

typedef struct crash_run {
    sb_store_loc locs[CRASH_MSGS];
    bool appended[CRASH_MSGS];
    bool removed[CRASH_MSGS];          /* remove was called */
    bool removed_durable[CRASH_MSGS];  /* and a later sync succeeded */
    uint64_t durable;                  /* last durable position reported */
} crash_run;

static void
crash_on_durable(void *arg, uint64_t pos, int err)
{
    crash_run *r = arg;
    if (err == 0)
        r->durable = pos;
}

static void
crash_body(char *body, size_t cap, int i)
{
    int n = snprintf(body, cap, "m%d:", i);
    for (int k = 0; k < (i * 53) % 700 && (size_t)n + 1 < cap; k++)
        body[n++] = (char)('A' + (i + k) % 26);
    body[n] = '\0';
}

/* Runs the workload until the fake crashes; returns false if it never did. */
static bool
crash_workload(sb_store *st, crash_run *r)
{
    char body[800];
    int next = 0;
    bool crashed = false;

    for (int round = 0; next < CRASH_MSGS && !crashed; round++) {
        for (int k = 0; k < 12 && next < CRASH_MSGS; k++, next++) {
            crash_body(body, sizeof body, next);
            assert_int_equal(sb_store_append(st, 1, (uint64_t)next, SB_STR_LIT("H"),
                                             sb_str_c(body), &r->locs[next]),
                             0);
            r->appended[next] = true;
        }
        /* Remove every third durable message, older ones first. */
        for (int i = 0; i < next; i += 3)
            if (!r->removed[i] && r->locs[i].pos <= r->durable && round % 2 == 1) {
                sb_store_remove(st, 1, (uint64_t)i, &r->locs[i]);
                r->removed[i] = true;
            }
        crashed = sb_store_sync(st) < 0;
        for (int i = 0; !crashed && i < next; i++)
            r->removed_durable[i] |= r->removed[i];
    }
    return crashed;
}

static void
check_recovered(const got *g, const crash_run *r)
{
    char body[800];
    bool seen[CRASH_MSGS] = { false };
    int64_t last = -1;

    for (size_t k = 0; k < g->n; k++) {
        int64_t i = (int64_t)g->m[k].msg_id;
        assert_true(i > last && i < CRASH_MSGS);   /* in order, no duplicates */
        assert_true(r->appended[i]);
        assert_false(r->removed_durable[i]);
        crash_body(body, sizeof body, (int)i);
        assert_string_equal(g->m[k].body, body);
        seen[i] = true;
        last = i;
    }
    for (int i = 0; i < CRASH_MSGS; i++)
        if (r->appended[i] && r->locs[i].pos <= r->durable && !r->removed[i] && !seen[i])
            fail_msg("message %d was durable (pos %llx <= %llx) but is gone", i,
                     (unsigned long long)r->locs[i].pos, (unsigned long long)r->durable);
}

static void
a_crash_at_every_nth_sync_never_loses_a_committed_record(void **state)
{
    int runs = 0;

    sb_log_set_level((sb_log_level)(SB_LOG_ERROR + 1));  /* every run logs its crash */
    for (int n = 1;; n++) {
        char *dir = tmp_dir();
        fake_fs f;
        got g = { 0 };
        crash_run *r = sb_calloc(1, sizeof *r);
        sb_store_opts o = { .segment_max_bytes = 4096, .on_durable = crash_on_durable,
                            .durable_arg = r };
        sb_store *st;

        fake_init(&f, dir);
        f.crash_at = n;
        o.ops = &f.ops;
        assert_int_equal(sb_store_open(dir, &o, &st), 0);
        bool crashed = crash_workload(st, r);
        sb_store_close(st);
        if (crashed) {
            fake_reboot(&f, (n * 37) % 101);
            sb_store_opts o2 = { .segment_max_bytes = 4096, .on_recover = got_cb,
                                 .recover_arg = &g };
            assert_int_equal(sb_store_open(dir, &o2, &st), 0);
            check_recovered(&g, r);
            /* And the recovered store takes new writes. */
            sb_store_loc loc;
            assert_int_equal(sb_store_append(st, 9, 9, SB_STR_NULL, SB_STR_LIT("after"), &loc),
                             0);
            assert_int_equal(sb_store_close(st), 0);
            runs++;
        }
        got_free(&g);
        fake_free(&f);
        sb_free(r);
        rm_dir(dir);
        if (!crashed)
            break;
    }
    sb_log_set_level(SB_LOG_WARN);
    print_message("crashed and recovered at each of %d syncs\n", runs);
    assert_true(runs > 20);
}

int
main(void)
{
    sb_log_set_level(SB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_good_segment_recovers_live_messages_with_delivered_marks),
        cmocka_unit_test(fixture_torn_tail_is_truncated_and_logged),
        cmocka_unit_test(
            fixture_corrupt_record_in_the_middle_is_skipped_and_reported_with_file_and_offset),
        cmocka_unit_test(fixture_unknown_record_type_is_skipped),
        cmocka_unit_test(fixture_wrong_format_version_is_refused_with_a_clear_error),
        cmocka_unit_test(fixture_file_that_is_not_a_segment_is_refused),
        cmocka_unit_test(fixture_newest_segment_with_a_torn_header_is_removed),
        cmocka_unit_test(a_tail_cut_at_any_byte_loses_only_the_cut_record),
        cmocka_unit_test(a_crash_at_every_nth_sync_never_loses_a_committed_record),
    };
    return cmocka_run_group_tests(tests, fds_setup, fds_teardown);
}
