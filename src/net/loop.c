/* loop.c - the epoll loop and raw fd watching.
 *
 * One iteration, in this fixed order (sb_loop_run):
 *   1. refresh the cached time
 *   2. run the timers that are due
 *   3. run the before-sleep hooks, in registration order
 *   4. flush every connection with pending output (writev)
 *   5. reap closed connections (on_close, then free)
 *   6. epoll_wait until the next timer, or at once if work is left
 *   7. dispatch the I/O events, redeliver resumed input, reap again
 * Level-triggered epoll throughout: a handler that stops early (fairness)
 * is simply called again on the next iteration.
 */
#include "net_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/clock.h"
#include "../common/log.h"

int
sb_loop_new(sb_loop **out)
{
    sb_loop *l = sb_calloc(1, sizeof(*l));
    int rc;

    l->wake_fd = -1;
    l->sig_fd = -1;
    sb_list_init(&l->conns);
    sb_list_init(&l->pending_writes);
    sb_list_init(&l->pending_reads);
    sb_list_init(&l->closed);
    sb_list_init(&l->listeners);
    l->now = sb_clock_ms();
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        rc = -errno;
        goto out;
    }
    rc = sb_net__wake_init(l);
out:
    if (rc < 0) {
        sb_loop_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* Open connections are aborted (their on_close runs with -ECANCELED) and
 * listeners closed; armed timers are simply forgotten (callers own them). */
void
sb_loop_free(sb_loop *l)
{
    if (l == NULL)
        return;
    sb_net__listeners_close_all(l);
    sb_net__conns_abort_all(l);
    sb_net__wake_free(l);
    sb_net__timers_free(l);
    if (l->epfd >= 0)
        close(l->epfd);
    sb_free(l->hooks);
    sb_free(l);
}

void
sb_loop_stop(sb_loop *l)
{
    l->stop = true;
}

uint64_t
sb_loop_now(const sb_loop *l)
{
    return l->now;
}

void
sb_loop_add_before_sleep(sb_loop *l, sb_hook_fn fn, void *arg)
{
    if (l->hooks_len == l->hooks_cap) {
        l->hooks_cap = l->hooks_cap ? l->hooks_cap * 2 : 4;
        l->hooks = sb_realloc(l->hooks, l->hooks_cap * sizeof(*l->hooks));
    }
    l->hooks[l->hooks_len++] = (sb_net__hook){ fn, arg };
}

static void
run_hooks(sb_loop *l)
{
    /* By index: a hook may register another hook (the array may move). */
    for (size_t i = 0; i < l->hooks_len; i++)
        l->hooks[i].fn(l, l->hooks[i].arg);
}

/* Work queued by the phases before the sleep must not wait for I/O. */
static int
poll_timeout(const sb_loop *l)
{
    if (!sb_list_empty(&l->pending_writes) || !sb_list_empty(&l->pending_reads) ||
        !sb_list_empty(&l->closed))
        return 0;
    return sb_net__timers_timeout(l);
}

static void
dispatch(sb_loop *l, int n)
{
    l->ev_n = n;
    for (l->ev_idx = 0; l->ev_idx < l->ev_n; l->ev_idx++) {
        struct epoll_event *ev = &l->events[l->ev_idx];
        sb_io *io = ev->data.ptr;

        if (io != NULL)             /* NULL: stopped earlier in this batch */
            io->cb(l, io, ev->events);
    }
    l->ev_n = l->ev_idx = 0;
}

int
sb_loop_run(sb_loop *l)
{
    int rc = 0;

    for (;;) {
        l->now = sb_clock_ms();
        sb_net__timers_run(l);
        run_hooks(l);
        sb_net__conns_flush(l);
        sb_net__conns_reap(l);
        if (l->stop)
            break;
        int n = epoll_wait(l->epfd, l->events, SB_NET__MAX_EVENTS, poll_timeout(l));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            sb_log(SB_LOG_ERROR, "net", "epoll_wait: %s", strerror(errno));
            break;
        }
        l->now = sb_clock_ms();
        dispatch(l, n);
        sb_net__conns_redeliver(l);
        sb_net__conns_reap(l);
    }
    l->stop = false;
    return rc;
}

/* ---- raw fd watching ---- */

int
sb_io_start(sb_loop *l, sb_io *io)
{
    struct epoll_event ev = { .events = io->events, .data.ptr = io };

    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -errno;
    return 0;
}

int
sb_io_modify(sb_loop *l, sb_io *io, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = io };

    if (events == io->events)
        return 0;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    io->events = events;
    return 0;
}

void
sb_io_stop(sb_loop *l, sb_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    for (int i = l->ev_idx + 1; i < l->ev_n; i++)
        if (l->events[i].data.ptr == io)
            l->events[i].data.ptr = NULL;
}
