/* timer.c - timers as a binary min-heap keyed by (due, seq).
 *
 * The heap holds borrowed pointers: the caller owns each sb_timer and
 * must stop it before freeing it. heap_index lets stop and restart sift
 * one entry in O(log n). seq grows with every start, so timers due in the
 * same millisecond fire in the order they were started.
 */
#include "net_int.h"

#include "../common/alloc.h"

static bool
before(const sb_timer *a, const sb_timer *b)
{
    if (a->due != b->due)
        return a->due < b->due;
    return a->seq < b->seq;
}

static void
place(sb_loop *l, sb_timer *t, size_t i)
{
    l->heap[i] = t;
    t->heap_index = i;
}

static void
sift_up(sb_loop *l, size_t i)
{
    sb_timer *t = l->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, l->heap[parent]))
            break;
        place(l, l->heap[parent], i);
        i = parent;
    }
    place(l, t, i);
}

static void
sift_down(sb_loop *l, size_t i)
{
    sb_timer *t = l->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->heap_len)
            break;
        if (child + 1 < l->heap_len && before(l->heap[child + 1], l->heap[child]))
            child++;
        if (!before(l->heap[child], t))
            break;
        place(l, l->heap[child], i);
        i = child;
    }
    place(l, t, i);
}

void
sb_timer_init(sb_timer *t, sb_timer_fn cb, void *arg)
{
    t->due = 0;
    t->seq = 0;
    t->heap_index = SIZE_MAX;
    t->cb = cb;
    t->arg = arg;
}

bool
sb_timer_active(const sb_timer *t)
{
    return t->heap_index != SIZE_MAX;
}

void
sb_timer_stop(sb_loop *l, sb_timer *t)
{
    size_t i = t->heap_index;
    sb_timer *last;

    if (i == SIZE_MAX)
        return;
    t->heap_index = SIZE_MAX;
    last = l->heap[--l->heap_len];
    if (last == t)
        return;
    place(l, last, i);
    /* The moved entry may belong above or below its new slot. */
    if (i > 0 && before(last, l->heap[(i - 1) / 2]))
        sift_up(l, i);
    else
        sift_down(l, i);
}

void
sb_timer_start(sb_loop *l, sb_timer *t, uint64_t ms)
{
    sb_timer_stop(l, t);
    t->due = ms > UINT64_MAX - l->now ? UINT64_MAX : l->now + ms;
    t->seq = l->timer_seq++;
    if (l->heap_len == l->heap_cap) {
        l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 16;
        l->heap = sb_realloc(l->heap, l->heap_cap * sizeof(*l->heap));
    }
    place(l, t, l->heap_len++);
    sift_up(l, t->heap_index);
}

/* Runs the timers due at the cached time. Timers started while this runs
 * (seq >= limit), even with 0 ms, wait for the next iteration, so a timer
 * that re-arms itself cannot starve the loop. */
void
sb_net__timers_run(sb_loop *l)
{
    uint64_t limit = l->timer_seq;

    while (l->heap_len > 0) {
        sb_timer *t = l->heap[0];
        if (t->due > l->now || t->seq >= limit)
            break;
        sb_timer_stop(l, t);
        t->cb(l, t);
    }
}

int
sb_net__timers_timeout(const sb_loop *l)
{
    uint64_t due;

    if (l->heap_len == 0)
        return -1;
    due = l->heap[0]->due;
    if (due <= l->now)
        return 0;
    if (due - l->now > (uint64_t)INT32_MAX)
        return INT32_MAX;
    return (int)(due - l->now);
}

void
sb_net__timers_free(sb_loop *l)
{
    for (size_t i = 0; i < l->heap_len; i++)
        l->heap[i]->heap_index = SIZE_MAX;
    sb_free(l->heap);
    l->heap = NULL;
    l->heap_len = l->heap_cap = 0;
}
