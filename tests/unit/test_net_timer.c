/* test_net_timer.c - the timer heap: order, ties, stop/restart, many timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "net/net.h"

#define MAX_FIRED 20000

typedef struct fired_log {
    int ids[MAX_FIRED];
    uint64_t due[MAX_FIRED];
    uint64_t seq[MAX_FIRED];
    int n;
    int expect;                 /* stop the loop after this many */
} fired_log;

typedef struct tt {
    sb_timer t;
    int id;
    fired_log *log;
} tt;

static void
on_fire(sb_loop *l, sb_timer *t)
{
    tt *x = t->arg;
    fired_log *f = x->log;

    assert_false(sb_timer_active(t));
    assert_true(f->n < MAX_FIRED);
    f->ids[f->n] = x->id;
    f->due[f->n] = t->due;
    f->seq[f->n] = t->seq;
    if (++f->n == f->expect)
        sb_loop_stop(l);
}

static void
on_guard(sb_loop *l, sb_timer *t)
{
    fail_msg("timers did not fire within the guard time");
}

/* Runs the loop until log->expect timers fired (a 5 s guard fails the test). */
static void
run(sb_loop *l, fired_log *f)
{
    sb_timer guard;

    sb_timer_init(&guard, on_guard, NULL);
    sb_timer_start(l, &guard, 5000);
    assert_int_equal(sb_loop_run(l), 0);
    sb_timer_stop(l, &guard);
}

static void
init_tt(tt *x, int id, fired_log *f)
{
    sb_timer_init(&x->t, on_fire, x);
    x->id = id;
    x->log = f;
}

static void
timers_fire_in_order_of_due_time(void **state)
{
    static const int ms[] = { 30, 5, 20, 0, 10, 25, 15 };
    static const int want[] = { 3, 1, 4, 6, 2, 5, 0 };
    fired_log f = { .expect = 7 };
    tt x[7];
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    for (int i = 0; i < 7; i++) {
        init_tt(&x[i], i, &f);
        sb_timer_start(l, &x[i].t, (uint64_t)ms[i]);
        assert_true(sb_timer_active(&x[i].t));
    }
    run(l, &f);
    assert_int_equal(f.n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(f.ids[i], want[i]);
    sb_loop_free(l);
}

static void
timers_with_the_same_due_time_fire_in_start_order(void **state)
{
    fired_log f = { .expect = 50 };
    tt x[50];
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    /* Started with the same cached time, so the same due. */
    for (int i = 0; i < 50; i++) {
        init_tt(&x[i], i, &f);
        sb_timer_start(l, &x[i].t, 3);
    }
    run(l, &f);
    for (int i = 0; i < 50; i++)
        assert_int_equal(f.ids[i], i);
    sb_loop_free(l);
}

static void
a_stopped_timer_does_not_fire_and_a_restarted_one_moves(void **state)
{
    fired_log f = { .expect = 3 };
    tt x[4];
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    for (int i = 0; i < 4; i++) {
        init_tt(&x[i], i, &f);
        sb_timer_start(l, &x[i].t, (uint64_t)(i + 1) * 5);
    }
    sb_timer_stop(l, &x[1].t);
    assert_false(sb_timer_active(&x[1].t));
    sb_timer_stop(l, &x[1].t);              /* stopping twice is harmless */
    sb_timer_start(l, &x[0].t, 40);          /* restart moves it last */
    run(l, &f);
    assert_int_equal(f.ids[0], 2);
    assert_int_equal(f.ids[1], 3);
    assert_int_equal(f.ids[2], 0);
    sb_loop_free(l);
}

typedef struct rearm {
    sb_timer t;
    int fires;
    int hooks;
} rearm;

static void
on_rearm(sb_loop *l, sb_timer *t)
{
    rearm *r = t->arg;

    if (++r->fires == 5) {
        sb_loop_stop(l);
        return;
    }
    sb_timer_start(l, t, 0);
}

static void
count_hook(sb_loop *l, void *arg)
{
    ((rearm *)arg)->hooks++;
}

static void
a_timer_restarting_itself_with_zero_delay_fires_once_per_iteration(void **state)
{
    rearm r = { 0 };
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    sb_loop_add_before_sleep(l, count_hook, &r);
    sb_timer_init(&r.t, on_rearm, &r);
    sb_timer_start(l, &r.t, 0);
    assert_int_equal(sb_loop_run(l), 0);
    assert_int_equal(r.fires, 5);
    assert_int_equal(r.hooks, 5);   /* one iteration per firing */
    sb_loop_free(l);
}

static void
many_timers_started_stopped_and_restarted_fire_in_heap_order(void **state)
{
    enum { N = 10000 };
    fired_log *f = sb_calloc(1, sizeof(*f));
    tt *x = sb_calloc(N, sizeof(*x));
    bool *live = sb_calloc(N, sizeof(*live));
    int nlive = N;
    sb_loop *l;

    srand(42);
    assert_int_equal(sb_loop_new(&l), 0);
    for (int i = 0; i < N; i++) {
        init_tt(&x[i], i, f);
        sb_timer_start(l, &x[i].t, (uint64_t)(rand() % 40));
        live[i] = true;
    }
    for (int k = 0; k < N; k++) {
        int i = rand() % N;
        if (k % 3 == 0 && live[i]) {
            sb_timer_stop(l, &x[i].t);
            live[i] = false;
            nlive--;
        } else {
            if (!live[i])
                nlive++;
            sb_timer_start(l, &x[i].t, (uint64_t)(rand() % 40));
            live[i] = true;
        }
    }
    f->expect = nlive;
    run(l, f);
    assert_int_equal(f->n, nlive);
    for (int i = 1; i < f->n; i++) {
        bool ordered = f->due[i - 1] < f->due[i] ||
                       (f->due[i - 1] == f->due[i] && f->seq[i - 1] < f->seq[i]);
        assert_true(ordered);
    }
    for (int i = 0; i < f->n; i++)
        assert_true(live[f->ids[i]]);
    sb_loop_free(l);
    sb_free(live);
    sb_free(x);
    sb_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_order_of_due_time),
        cmocka_unit_test(timers_with_the_same_due_time_fire_in_start_order),
        cmocka_unit_test(a_stopped_timer_does_not_fire_and_a_restarted_one_moves),
        cmocka_unit_test(a_timer_restarting_itself_with_zero_delay_fires_once_per_iteration),
        cmocka_unit_test(many_timers_started_stopped_and_restarted_fire_in_heap_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
