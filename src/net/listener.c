/* listener.c - TCP listeners: accept4 in a bounded loop, hand each new
 * connection to the accept callback.
 *
 * When accept fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) the pending connection stays in the backlog and the listening
 * socket stays readable; with level-triggered epoll that would spin. So
 * the listener stops watching its fd and retries after SB_NET__ACCEPT_PAUSE_MS.
 */
#include "net_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/log.h"

#define SB_NET__BACKLOG 511
#define SB_NET__ACCEPTS_PER_EVENT 64
#define SB_NET__ACCEPT_PAUSE_MS 100

struct sb_listener {
    sb_loop *loop;
    sb_io io;
    sb_timer retry;             /* armed while accepting is paused */
    bool watching;              /* io is registered with epoll */
    bool accepting;             /* inside on_listen_fd: defer the free */
    bool closed;                /* sb_listener_close ran while accepting */
    bool starved;               /* accept failed for resources; logged once */
    sb_accept_fn fn;
    void *arg;
    sb_tls *tls;                /* borrowed; NULL: plain TCP */
    uint16_t port;
    sb_list node;               /* in loop->listeners */
};

static void
pause_accepting(sb_listener *ls, int err)
{
    if (!ls->starved)           /* once per episode, not every retry */
        sb_log(SB_LOG_WARN, "net", "accept on port %u: %s; retrying every %d ms", ls->port,
               strerror(-err), SB_NET__ACCEPT_PAUSE_MS);
    ls->starved = true;
    if (ls->watching) {
        sb_io_stop(ls->loop, &ls->io);
        ls->watching = false;
    }
    sb_timer_start(ls->loop, &ls->retry, SB_NET__ACCEPT_PAUSE_MS);
}

static void
on_retry(sb_loop *l, sb_timer *t)
{
    sb_listener *ls = t->arg;
    int rc = sb_io_start(l, &ls->io);

    if (rc < 0) {
        pause_accepting(ls, rc);
        return;
    }
    ls->watching = true;
}

/* Returns false when the listener should stop accepting for now. */
static bool
accept_one(sb_listener *ls)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    sb_conn *c;
    int fd;

    fd = accept4(ls->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return false;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM)
            return true;        /* that one connection is gone; go on */
        pause_accepting(ls, -err);
        return false;
    }
    if (ls->starved) {
        sb_log(SB_LOG_INFO, "net", "accepting on port %u again", ls->port);
        ls->starved = false;
    }
    if (sb_net__conn_new(ls->loop, fd, (struct sockaddr *)&ss, len, &c) < 0)
        return true;            /* conn_new logged and closed fd */
    if (ls->tls != NULL && sb_net__conn_start_tls(c, ls->tls) < 0)
        return true;            /* logged; c is closed and reaped without callbacks */
    ls->fn(ls, c, ls->arg);
    sb_net__conn_accepted(c);
    return true;
}

static void
on_listen_fd(sb_loop *l, sb_io *io, uint32_t events)
{
    sb_listener *ls = SB_CONTAINER_OF(io, sb_listener, io);

    /* Bounded so that a connection storm cannot starve established
     * connections; level-triggered epoll brings us back. An accept
     * callback may close this listener: it is freed here, afterwards. */
    ls->accepting = true;
    for (int i = 0; i < SB_NET__ACCEPTS_PER_EVENT && !ls->closed; i++)
        if (!accept_one(ls))
            break;
    ls->accepting = false;
    if (ls->closed)
        sb_free(ls);
}

int
sb_listener_open(sb_loop *l, const char *addr, uint16_t port, sb_accept_fn fn, void *arg,
                 sb_listener **out)
{
    sb_listener *ls = NULL;
    int fd = -1;
    int rc;

    rc = sb_net__listen(addr, port, SB_NET__BACKLOG, &fd);
    if (rc < 0)
        goto out;
    ls = sb_calloc(1, sizeof(*ls));
    ls->loop = l;
    ls->fn = fn;
    ls->arg = arg;
    ls->io = (sb_io){ .fd = fd, .events = EPOLLIN, .cb = on_listen_fd, .arg = ls };
    sb_timer_init(&ls->retry, on_retry, ls);
    rc = sb_net__local_port(fd, &ls->port);
    if (rc < 0)
        goto out;
    rc = sb_io_start(l, &ls->io);
    if (rc < 0)
        goto out;
    ls->watching = true;
    sb_list_push_back(&l->listeners, &ls->node);
    *out = ls;
out:
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        sb_free(ls);
    }
    return rc;
}

void
sb_listener_set_tls(sb_listener *ls, sb_tls *t)
{
    ls->tls = t;
}

uint16_t
sb_listener_port(const sb_listener *ls)
{
    return ls->port;
}

/* Connections already accepted are not affected. */
void
sb_listener_close(sb_listener *ls)
{
    if (ls == NULL || ls->closed)
        return;
    if (ls->watching)
        sb_io_stop(ls->loop, &ls->io);
    ls->watching = false;
    ls->closed = true;
    sb_timer_stop(ls->loop, &ls->retry);
    close(ls->io.fd);
    sb_list_remove(&ls->node);
    if (!ls->accepting)
        sb_free(ls);
}

void
sb_net__listeners_close_all(sb_loop *l)
{
    sb_list *it;

    while ((it = sb_list_first(&l->listeners)) != NULL)
        sb_listener_close(SB_CONTAINER_OF(it, sb_listener, node));
}
