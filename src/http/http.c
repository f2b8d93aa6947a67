/* http.c - libmicrohttpd daemons inside our event loop.
 *
 * One daemon per bind address, each on a listening socket we open
 * ourselves (exact errno on failure, IPV6_V6ONLY as the AMQP listeners
 * do), started with MHD_USE_EPOLL and no polling thread. The loop watches
 * each daemon's epoll descriptor; readiness calls MHD_run, and after every
 * run one sb_timer is re-armed from MHD_get_timeout, which is how MHD's
 * idle timeouts and its already-buffered work get their turn.
 *
 * MHD has a single idle timeout; the header and body deadlines are ours:
 * a sweep once a second shuts down (shutdown(2), MHD still owns the fd)
 * the sockets of connections past their deadline, and MHD then closes
 * them as a normal peer close. Runs on the loop thread only.
 *
 * HTTPS (management.ssl.*) is MHD's own, over GnuTLS (Debian builds it
 * in; MHD_FEATURE_TLS is checked at start): one more daemon per bind
 * address, on the HTTPS port, with the PEM files read into memory. A
 * timed-out HTTPS connection is shut down without the plaintext 408.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"
#include "../common/alloc.h"
#include "../common/log.h"

#define SWEEP_MS 1000

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    sb_http *h = cls;
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Once running, MHD reports every malformed request here: that is the
     * peer's problem, not the operator's. */
    if (h->is_starting)
        sb_log(SB_LOG_WARN, "http", "libmicrohttpd: %s", msg);
    else
        sb_log(SB_LOG_DEBUG, "http", "libmicrohttpd: %s", msg);
}

/* Leaves the path exactly as sent: the router splits on '/' first and then
 * percent-decodes each segment, so "/api/queues/%2F/q" keeps vhost "/". */
static size_t
keep_escaped(void *cls, struct MHD_Connection *c, char *uri)
{
    return strlen(uri);
}

static void
run_all(sb_http *h)
{
    MHD_UNSIGNED_LONG_LONG t, best = (MHD_UNSIGNED_LONG_LONG)-1;

    for (int i = 0; i < h->ndaemons; i++) {
        MHD_run(h->daemons[i].d);
        if (MHD_get_timeout(h->daemons[i].d, &t) == MHD_YES && t < best)
            best = t;
    }
    if (best == (MHD_UNSIGNED_LONG_LONG)-1)
        sb_timer_stop(h->loop, &h->run_timer);
    else
        sb_timer_start(h->loop, &h->run_timer, best);
    if (!sb_list_empty(&h->conns) && !sb_timer_active(&h->sweep_timer))
        sb_timer_start(h->loop, &h->sweep_timer, SWEEP_MS);
}

static void
on_epoll_ready(sb_loop *l, sb_io *io, uint32_t events)
{
    sb_http_daemon *d = io->arg;

    /* All daemons, not just this one: the timer is shared, and running an
     * idle daemon costs one epoll_wait(0). */
    run_all(d->h);
}

static void
on_run_timer(sb_loop *l, sb_timer *t)
{
    run_all(t->arg);
}

void
sb_http__kick(sb_http *h)
{
    sb_timer_start(h->loop, &h->run_timer, 0);
}

/* A 408 written straight to the socket before it is shut down: nothing of
 * a response is under way (the request is incomplete), so MHD has written
 * nothing that this could interleave with. Best effort, never blocks. */
static void
send_timeout(int fd, bool in_body)
{
    char msg[320];
    const char *body = in_body
        ? "{\"error\":\"request_timeout\",\"reason\":\"the request body did not arrive in time\"}"
        : "{\"error\":\"request_timeout\",\"reason\":\"the request headers did not arrive in time\"}";
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);

    if (n > 0 && (size_t)n < sizeof msg)
        (void)send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void
on_sweep(sb_loop *l, sb_timer *t)
{
    sb_http *h = t->arg;
    uint64_t now = sb_loop_now(l);

    for (sb_list *n = h->conns.next; n != &h->conns; n = n->next) {
        sb_http_conn *hc = SB_CONTAINER_OF(n, sb_http_conn, node);
        uint32_t limit = hc->is_in_body ? h->body_timeout_ms : h->header_timeout_ms;

        if (hc->is_shut || hc->is_answering || now - hc->phase_start_ms <= limit)
            continue;
        sb_log(SB_LOG_INFO, "http", "%s: no complete request %s within %u ms; closing", hc->peer,
               hc->is_in_body ? "body" : "headers", limit);
        if (!hc->is_tls)
            send_timeout(hc->fd, hc->is_in_body);
        shutdown(hc->fd, SHUT_RDWR);
        hc->is_shut = true;
    }
    if (!sb_list_empty(&h->conns))
        sb_timer_start(l, t, SWEEP_MS);
    sb_http__kick(h);
}

/* socket, bind, listen. Returns the fd or -errno. */
static int
open_listen_socket(const char *addr, uint16_t port, uint16_t *bound)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int fd, one = 1, rc = 0;

    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        return -EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *bound = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    return fd;
}

static int
start_daemon(sb_http *h, const char *addr, uint16_t port, bool tls, sb_http_daemon *d)
{
    uint16_t bound = 0;
    unsigned idle_s = (h->header_timeout_ms > h->body_timeout_ms ? h->header_timeout_ms
                                                                  : h->body_timeout_ms) / 1000 + 1;
    int fd = open_listen_socket(addr, port, &bound), rc = -EIO;
    const union MHD_DaemonInfo *info;
    /* GnuTLS priorities: its defaults without TLS 1.0, 1.1 (and 1.2). */
    const char *prio = h->tls13_only ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                     : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
        { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)prio },
        { MHD_OPTION_END, 0, NULL },
    };

    if (fd < 0)
        return fd;
    d->h = h;
    d->is_tls = tls;
    d->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                (tls ? MHD_USE_TLS : 0), 0,
                            NULL, NULL, sb_http__access, h,
                            /* first, or MHD logs the other options to stderr */
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, h,
                            MHD_OPTION_NOTIFY_COMPLETED, sb_http__completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, sb_http__conn_notify, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                            MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[3],
                            MHD_OPTION_END);
    if (d->d == NULL) {
        close(fd);
        return -EIO;
    }
    info = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_EPOLL_FD);
    d->io = (sb_io){ .fd = info ? info->epoll_fd : -1, .events = EPOLLIN,
                     .cb = on_epoll_ready, .arg = d };
    if (d->io.fd >= 0)
        rc = sb_io_start(h->loop, &d->io);
    if (rc < 0) {
        MHD_stop_daemon(d->d); /* closes fd too */
        return rc;
    }
    snprintf(d->name, sizeof d->name, "%s%s%s%s:%u", tls ? "https://" : "",
             strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "", bound);
    if (tls)
        h->tls_port = bound;
    else
        h->port = bound;
    return 0;
}

/* One daemon per bind address, plain or HTTPS. */
static int
start_all(sb_http *h, const char *bind, uint16_t port, bool tls)
{
    char addrs[256], *save = NULL;
    int last = -EINVAL, started = 0;
    uint16_t *bound = tls ? &h->tls_port : &h->port;
    size_t used = strlen(h->describe);

    snprintf(addrs, sizeof addrs, "%s", bind && *bind ? bind : SB_HTTP_DEFAULT_BIND);
    for (char *a = strtok_r(addrs, ",", &save); a && h->ndaemons < SB_HTTP__MAX_DAEMONS;
         a = strtok_r(NULL, ",", &save)) {
        while (*a == ' ')
            a++;
        /* With port 0 the first daemon picks; the others follow it. */
        last = start_daemon(h, a, started ? *bound : port, tls, &h->daemons[h->ndaemons]);
        if (last < 0) {
            sb_log(SB_LOG_WARN, "http", "cannot listen on %s port %u%s: %s", a,
                   started ? *bound : port, tls ? " (HTTPS)" : "", strerror(-last));
            continue;
        }
        used += (size_t)snprintf(h->describe + used, sizeof h->describe - used, "%s%s",
                                 used ? ", " : "", h->daemons[h->ndaemons].name);
        if (used >= sizeof h->describe)
            used = sizeof h->describe - 1;
        h->ndaemons++;
        started++;
    }
    return started > 0 ? 0 : last;
}

/* A PEM file's text, NUL-terminated, for MHD; NULL (logged) if unreadable. */
static char *
read_pem(const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    sb_buf b = SB_BUF_INIT;
    size_t n;

    if (f == NULL) {
        sb_log(SB_LOG_ERROR, "http", "cannot read the HTTPS %s '%s': %s", what, path,
               strerror(errno));
        return NULL;
    }
    do {
        sb_buf_reserve(&b, 4096);
        n = fread(b.data + b.len, 1, 4096, f);
        b.len += n;
    } while (n > 0 && b.len < ((size_t)1 << 20));
    fclose(f);
    sb_buf_append(&b, "", 1);
    return (char *)b.data;
}

static int
start_tls(sb_http *h, const sb_http_opts *o)
{
    int rc;

    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        sb_log(SB_LOG_ERROR, "http", "this libmicrohttpd was built without HTTPS support; "
               "unset management.ssl.certfile or install one with it (Debian's has it)");
        return -ENOTSUP;
    }
    h->tls_cert = read_pem(o->tls_certfile, "certificate");
    h->tls_key = h->tls_cert ? read_pem(o->tls_keyfile, "private key") : NULL;
    if (h->tls_key == NULL)
        return -EINVAL;
    h->tls13_only = o->tls13_only;
    h->is_starting = true;
    rc = start_all(h, o->bind, o->tls_port, true);
    h->is_starting = false;
    if (rc < 0)
        sb_log(SB_LOG_ERROR, "http", "no HTTPS listener could be started on port %u: %s "
               "(libmicrohttpd's messages above say why)", o->tls_port, strerror(-rc));
    return rc;
}

bool
sb_http__daemon_is_tls(const sb_http *h, const struct MHD_Daemon *d)
{
    for (int i = 0; i < h->ndaemons; i++)
        if (h->daemons[i].d == d)
            return h->daemons[i].is_tls;
    return false;
}

static void
free_tls(sb_http *h)
{
    sb_free(h->tls_cert);
    sb_free(h->tls_key);
}

/* A vhost is about to be deleted: the RPC channel the server holds there
 * goes first. Its requests in flight elsewhere need nothing: they hold no
 * vhost between calls. */
static void
broker_event(void *arg, sb_broker_event ev, sb_vhost *v, const char *user)
{
    if (ev == SB_BROKER_VHOST_DELETING)
        sb_http__rpc_vhost_gone(arg, v);
}

int
sb_http_start(sb_loop *loop, sb_broker *broker, const sb_http_opts *o, sb_http **out)
{
    sb_http *h = sb_calloc(1, sizeof *h);
    int rc;

    h->loop = loop;
    h->broker = broker;
    h->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : SB_HTTP_DEFAULT_MAX_BODY;
    h->header_timeout_ms = o->header_timeout_ms ? o->header_timeout_ms
                                                : SB_HTTP_DEFAULT_HEADER_TIMEOUT_MS;
    h->body_timeout_ms = o->body_timeout_ms ? o->body_timeout_ms : SB_HTTP_DEFAULT_BODY_TIMEOUT_MS;
    h->loopback_users_only = o->loopback_users_only;
    snprintf(h->default_user, sizeof h->default_user, "%s", o->default_user ? o->default_user : "");
    /* A no-op unless the broker's user database is new (`serve` seeds it
     * before starting HTTP): embedders and tests get their user here. */
    sb_broker_default_user(broker, o->default_user, o->default_pass);
    sb_list_init(&h->conns);
    sb_list_init(&h->suspended);
    sb_list_init(&h->durable_waits);
    sb_timer_init(&h->run_timer, on_run_timer, h);
    sb_timer_init(&h->sweep_timer, on_sweep, h);
    h->is_starting = true;
    rc = start_all(h, o->bind, o->port, false);
    h->is_starting = false;
    if (rc < 0) {
        sb_log(SB_LOG_ERROR, "http", "no HTTP listener could be opened on '%s' port %u: %s",
               o->bind && *o->bind ? o->bind : SB_HTTP_DEFAULT_BIND, o->port, strerror(-rc));
        sb_free(h);
        return rc;
    }
    if (o->tls_certfile != NULL && o->tls_certfile[0] != '\0') {
        rc = start_tls(h, o);
        if (rc < 0) {
            h->is_starting = false;
            sb_http_stop(h);
            return rc;
        }
    }
    run_all(h);
    sb_broker_watch(broker, broker_event, h);
    *out = h;
    return 0;
}

uint16_t
sb_http_port(const sb_http *h)
{
    return h->port;
}

uint16_t
sb_http_tls_port(const sb_http *h)
{
    return h->tls_port;
}

const char *
sb_http_describe(const sb_http *h)
{
    return h->describe;
}

void
sb_http_stop(sb_http *h)
{
    if (h == NULL)
        return;
    sb_broker_unwatch(h->broker, broker_event, h);
    sb_timer_stop(h->loop, &h->run_timer);
    sb_timer_stop(h->loop, &h->sweep_timer);
    /* MHD panics when stopped with suspended connections: resume them
     * (unanswered) so they are closed with the rest. */
    while (!sb_list_empty(&h->suspended)) {
        sb_http_req *r = SB_CONTAINER_OF(h->suspended.next, sb_http_req, node);
        sb_list_remove(&r->node);
        r->is_suspended = false;
        MHD_resume_connection(r->conn);
    }
    /* MHD_stop_daemon closes every connection and runs the completed and
     * connection-closed hooks, which free the requests and sb_http_conns. */
    for (int i = 0; i < h->ndaemons; i++) {
        sb_io_stop(h->loop, &h->daemons[i].io);
        MHD_stop_daemon(h->daemons[i].d);
    }
    /* After the daemons: their completion hooks abandoned every call. */
    sb_http__rpc_stop(h);
    sb_assert(sb_list_empty(&h->conns));
    free_tls(h);
    sb_free(h);
}
