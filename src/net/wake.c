/* wake.c - waking the loop from other threads (eventfd) and turning
 * SIGINT/SIGTERM into loop callbacks (signalfd).
 */
#include "net_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/log.h"

static void
on_wake_fd(sb_loop *l, sb_io *io, uint32_t events)
{
    uint64_t v;

    /* Many sb_loop_wake calls coalesce into one callback. */
    while (read(l->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    if (l->wake_fn != NULL)
        l->wake_fn(l, l->wake_arg);
}

int
sb_net__wake_init(sb_loop *l)
{
    int rc;

    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd < 0)
        return -errno;
    l->wake_io = (sb_io){ .fd = l->wake_fd, .events = EPOLLIN, .cb = on_wake_fd, .arg = l };
    rc = sb_io_start(l, &l->wake_io);
    if (rc < 0) {
        close(l->wake_fd);
        l->wake_fd = -1;
    }
    return rc;
}

void
sb_net__wake_free(sb_loop *l)
{
    if (l->wake_fd >= 0) {
        sb_io_stop(l, &l->wake_io);
        close(l->wake_fd);
        l->wake_fd = -1;
    }
    if (l->sig_fd >= 0) {
        sb_io_stop(l, &l->sig_io);
        close(l->sig_fd);
        l->sig_fd = -1;
        pthread_sigmask(SIG_SETMASK, &l->sig_oldmask, NULL);
    }
}

/* Any thread. eventfd writes are atomic; EAGAIN means the counter is
 * already non-zero, so the loop will wake anyway. */
void
sb_loop_wake(sb_loop *l)
{
    uint64_t one = 1;

    while (write(l->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void
sb_loop_set_wake_handler(sb_loop *l, sb_hook_fn fn, void *arg)
{
    l->wake_fn = fn;
    l->wake_arg = arg;
}

static void
on_signal_fd(sb_loop *l, sb_io *io, uint32_t events)
{
    struct signalfd_siginfo si;

    while (read(l->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        sb_log(SB_LOG_INFO, "net", "received signal %u", si.ssi_signo);
        if (l->sig_fn != NULL)
            l->sig_fn(l, l->sig_arg);
    }
}

/* Blocks SIGINT/SIGTERM in the calling thread (the loop thread; threads
 * it creates afterwards inherit the mask) so they arrive via signalfd.
 * The previous mask is restored by sb_loop_free. */
int
sb_loop_on_signal(sb_loop *l, sb_hook_fn fn, void *arg)
{
    sigset_t set;
    int rc;

    l->sig_fn = fn;
    l->sig_arg = arg;
    signal(SIGPIPE, SIG_IGN);
    if (l->sig_fd >= 0)
        return 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    rc = pthread_sigmask(SIG_BLOCK, &set, &l->sig_oldmask);
    if (rc != 0)
        return -rc;
    l->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (l->sig_fd < 0) {
        rc = -errno;
        goto out;
    }
    l->sig_io = (sb_io){ .fd = l->sig_fd, .events = EPOLLIN, .cb = on_signal_fd, .arg = l };
    rc = sb_io_start(l, &l->sig_io);
    if (rc < 0) {
        close(l->sig_fd);
        l->sig_fd = -1;
    }
out:
    if (rc < 0)
        pthread_sigmask(SIG_SETMASK, &l->sig_oldmask, NULL);
    return rc;
}
