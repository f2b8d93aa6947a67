/* amqp_test_util.h - helpers shared by the codec's unit tests: a buffer
 * whose end touches an unreadable page (so reading past len crashes even
 * without ASan), a per-group arena, and byte comparison. Included by each
 * test_amqp_*.c after <cmocka.h>. */
#ifndef SB_AMQP_TEST_UTIL_H
#define SB_AMQP_TEST_UTIL_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amqp/amqp.h"

#define GUARD_CAP (64 * 1024)
static uint8_t *guard_base;

/* Copies n bytes so they end exactly where an unreadable page begins. */
static const uint8_t *
guarded(const void *p, size_t n)
{
    if (guard_base == NULL) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);

        guard_base = mmap(NULL, GUARD_CAP + pg, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(guard_base != MAP_FAILED);
        assert_int_equal(mprotect(guard_base + GUARD_CAP, pg, PROT_NONE), 0);
    }
    assert_true(n <= GUARD_CAP);
    if (n > 0)
        memcpy(guard_base + GUARD_CAP - n, p, n);
    return guard_base + GUARD_CAP - n;
}

static int
group_setup(void **state)
{
    static sb_arena arena;

    arena = SB_ARENA_INIT;
    *state = &arena;
    return 0;
}

static int
group_teardown(void **state)
{
    sb_arena_free(*state);
    if (guard_base != NULL)
        munmap(guard_base, GUARD_CAP + (size_t)sysconf(_SC_PAGESIZE));
    return 0;
}

static void
assert_bytes_equal(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

#endif /* SB_AMQP_TEST_UTIL_H */
