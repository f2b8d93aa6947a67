/* test_net_loop.c - loop phases, hooks, cross-thread wake, signals, raw fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

typedef struct rec {
    char order[64];
    int n;
    int runs;
    int woken;
    int signals;
    int io_calls;
    sb_loop *l;
} rec;

static void
on_guard(sb_loop *l, sb_timer *t)
{
    fail_msg("the loop did not stop within the guard time");
}

/* Runs l with a 5 s guard timer. */
static void
run_guarded(sb_loop *l)
{
    sb_timer guard;

    sb_timer_init(&guard, on_guard, NULL);
    sb_timer_start(l, &guard, 5000);
    assert_int_equal(sb_loop_run(l), 0);
    sb_timer_stop(l, &guard);
}

static void
hook_a(sb_loop *l, void *arg)
{
    rec *r = arg;

    r->order[r->n++] = 'a';
}

static void
hook_b(sb_loop *l, void *arg)
{
    rec *r = arg;

    r->order[r->n++] = 'b';
    r->runs++;
    sb_loop_stop(l);            /* so each run is one iteration */
}

static void
on_timer_t(sb_loop *l, sb_timer *t)
{
    rec *r = t->arg;

    r->order[r->n++] = 't';
}

static void
before_sleep_hooks_run_every_iteration_in_order_after_due_timers(void **state)
{
    rec r = { 0 };
    sb_timer t;
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    sb_timer_init(&t, on_timer_t, &r);
    sb_timer_start(l, &t, 0);
    sb_loop_add_before_sleep(l, hook_a, &r);
    sb_loop_add_before_sleep(l, hook_b, &r);
    run_guarded(l);
    run_guarded(l);
    run_guarded(l);
    assert_int_equal(r.runs, 3);
    r.order[r.n] = '\0';
    assert_string_equal(r.order, "tababab");
    sb_loop_free(l);
}

static void
stopping_before_run_returns_after_one_iteration(void **state)
{
    rec r = { 0 };
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    sb_loop_add_before_sleep(l, hook_a, &r);
    sb_loop_stop(l);
    assert_int_equal(sb_loop_run(l), 0);
    assert_int_equal(r.n, 1);
    sb_loop_free(l);
}

static void
on_wake(sb_loop *l, void *arg)
{
    rec *r = arg;

    r->woken++;
    sb_loop_stop(l);
}

static void *
waker(void *arg)
{
    rec *r = arg;
    struct timespec ts = { 0, 20 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    sb_loop_wake(r->l);
    sb_loop_wake(r->l);         /* coalesces with the first */
    return NULL;
}

static void
another_thread_can_wake_the_loop_and_the_handler_runs_on_it(void **state)
{
    rec r = { 0 };
    pthread_t th;

    assert_int_equal(sb_loop_new(&r.l), 0);
    sb_loop_set_wake_handler(r.l, on_wake, &r);
    assert_int_equal(pthread_create(&th, NULL, waker, &r), 0);
    run_guarded(r.l);           /* sleeps in epoll_wait until the wake */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.woken, 1);
    sb_loop_free(r.l);
}

static void
on_sig(sb_loop *l, void *arg)
{
    rec *r = arg;

    r->signals++;
    sb_loop_stop(l);
}

static void
sigterm_runs_the_signal_handler_on_the_loop(void **state)
{
    rec r = { 0 };
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    assert_int_equal(sb_loop_on_signal(l, on_sig, &r), 0);
    assert_int_equal(raise(SIGTERM), 0);        /* blocked: waits in the signalfd */
    assert_int_equal(r.signals, 0);
    run_guarded(l);
    assert_int_equal(r.signals, 1);
    assert_int_equal(raise(SIGINT), 0);
    run_guarded(l);
    assert_int_equal(r.signals, 2);
    assert_int_equal(raise(SIGPIPE), 0);        /* ignored */
    sb_loop_free(l);
}

static void
on_pipe(sb_loop *l, sb_io *io, uint32_t events)
{
    rec *r = io->arg;
    char c;

    assert_true(events & EPOLLIN);
    assert_int_equal(read(io->fd, &c, 1), 1);
    r->io_calls++;
    sb_io_stop(l, io);
    sb_loop_stop(l);
}

static void
a_watched_fd_calls_back_when_readable(void **state)
{
    rec r = { 0 };
    int p[2];
    sb_loop *l;
    sb_io io;

    assert_int_equal(pipe(p), 0);
    assert_int_equal(sb_loop_new(&l), 0);
    io = (sb_io){ .fd = p[0], .events = EPOLLIN, .cb = on_pipe, .arg = &r };
    assert_int_equal(sb_io_start(l, &io), 0);
    assert_int_equal(sb_io_modify(l, &io, EPOLLIN), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    run_guarded(l);
    assert_int_equal(r.io_calls, 1);
    sb_loop_free(l);
    close(p[0]);
    close(p[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(before_sleep_hooks_run_every_iteration_in_order_after_due_timers),
        cmocka_unit_test(stopping_before_run_returns_after_one_iteration),
        cmocka_unit_test(another_thread_can_wake_the_loop_and_the_handler_runs_on_it),
        cmocka_unit_test(sigterm_runs_the_signal_handler_on_the_loop),
        cmocka_unit_test(a_watched_fd_calls_back_when_readable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
