/* store_bench.c - store throughput and recovery time; not part of make test.
 *
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -pthread -Isrc -o /tmp/store_bench \
 *       tests/unit/store_bench.c src/common/[a-z]*.c src/store/[a-z]*.c && /tmp/store_bench [dir]
 *
 * 1. Group commit: like a broker loop with 1,000 unconfirmed publishes
 *    allowed, append 1 KiB records, commit, wait on the store's fd, repeat,
 *    for 3 s; reports durable appends/s and fsyncs (commits)/s.
 * 2. Recovery: 1,000,000 records of 100 bytes, half removed; time to open.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/store.h"

#define WINDOW 1000

static uint64_t durable;
static void on_durable(void *a, uint64_t pos, int err) { if (!err) durable = pos; }
static uint64_t recovered;
static void on_recover(void *a, const sb_store_msg *m) { recovered++; }

static void
rm_store(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
}

static void
bench_group_commit(const char *dir)
{
    sb_store_opts o = { .on_durable = on_durable };
    sb_store *st;
    static sb_store_loc locs[1 << 22];
    char body[1024];
    uint64_t n = 0, acked = 0;

    memset(body, 'x', sizeof body);
    rm_store(dir);
    if (sb_store_open(dir, &o, &st) < 0)
        abort();
    struct pollfd p = { .fd = sb_store_fd(st), .events = POLLIN };
    uint64_t t0 = sb_clock_us(), end = t0 + 3000000;
    while (sb_clock_us() < end && n < (1u << 22)) {
        while (n - acked < WINDOW && n < (1u << 22))
            if (sb_store_append(st, 1, n, SB_STR_LIT("hdr"), sb_str_make(body, sizeof body),
                                &locs[n]) == 0)
                n++;
        sb_store_commit_async(st);
        if (poll(&p, 1, 1000) == 1)
            sb_store_poll(st);
        while (acked < n && locs[acked].pos <= durable)
            acked++;
    }
    double s = (double)(sb_clock_us() - t0) / 1e6;
    sb_store_stats stats;
    sb_store_get_stats(st, &stats);
    printf("group commit, 1 KiB records, window %d: %.0f durable appends/s, %.0f commits/s "
           "(%.1f records per fsync), %.1f MB/s\n",
           WINDOW, (double)acked / s, (double)stats.commit_count / s,
           (double)acked / (double)(stats.commit_count ? stats.commit_count : 1),
           (double)acked * 1040 / s / 1e6);
    sb_store_close(st);
    rm_store(dir);
}

static void
bench_recovery(const char *dir)
{
    sb_store_opts o = { 0 };
    sb_store *st;
    char body[100];
    sb_store_loc loc;
    const uint64_t N = 1000000;

    memset(body, 'y', sizeof body);
    rm_store(dir);
    if (sb_store_open(dir, &o, &st) < 0)
        abort();
    for (uint64_t i = 0; i < N; i++) {
        sb_store_append(st, (uint32_t)(i % 10), i, SB_STR_LIT("h"), sb_str_make(body, sizeof body),
                        &loc);
        if (i % 2 == 0)
            sb_store_remove(st, (uint32_t)(i % 10), i, &loc);
        if (i % 10000 == 0)
            sb_store_sync(st);
    }
    sb_store_close(st);
    o.on_recover = on_recover;
    uint64_t t0 = sb_clock_us();
    if (sb_store_open(dir, &o, &st) < 0)
        abort();
    double s = (double)(sb_clock_us() - t0) / 1e6;
    sb_store_stats stats;
    sb_store_get_stats(st, &stats);
    printf("recovery of %llu records of 100 bytes (+%llu removes) in %llu segments: %.2f s, "
           "%llu live reported\n", (unsigned long long)N, (unsigned long long)N / 2,
           (unsigned long long)stats.segment_count, s, (unsigned long long)recovered);
    sb_store_close(st);
    rm_store(dir);
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/sb_store_bench";

    sb_log_set_level(SB_LOG_WARN);
    bench_group_commit(dir);
    bench_recovery(dir);
    return 0;
}
