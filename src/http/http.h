/* http.h - the HTTP/1.1 server: management API (RabbitMQ's JSON shapes:
 * overview, vhosts, queues, exchanges, bindings, REST publish), the
 * REST-to-RPC bridge (POST /api/rpc/{vhost}/{queue}), later /metrics.
 *
 * HTTP parsing is libmicrohttpd's (DESIGN.md: no hand-written parser). It
 * runs without threads of its own inside our loop: each daemon's epoll
 * descriptor is watched by the loop, MHD_run runs on readiness, and an
 * sb_timer armed from MHD_get_timeout makes its timeouts fire. Everything
 * here runs on the loop thread, so handlers may call into the broker.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../broker/broker.h"
#include "../net/net.h"

typedef struct sb_http sb_http;

/* Defaults for the zero values of sb_http_opts. */
#define SB_HTTP_DEFAULT_BIND "127.0.0.1,::1"
#define SB_HTTP_DEFAULT_MAX_BODY ((size_t)20000000) /* RabbitMQ's management.http.max_body_size */
#define SB_HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define SB_HTTP_DEFAULT_BODY_TIMEOUT_MS 60000u

/* POST /api/rpc/{vhost}/{queue}?timeout_ms=N, the REST-to-RPC bridge: how
 * long a call waits for its reply when it names no timeout_ms, and the
 * most it may name (a larger value is refused with 400, not shortened,
 * so a caller never waits less than it asked without knowing). */
#define SB_HTTP_RPC_DEFAULT_TIMEOUT_MS 5000u
#define SB_HTTP_RPC_MAX_TIMEOUT_MS 60000u

typedef struct sb_http_opts {
    const char *bind;              /* comma-separated IP literals; NULL or "" = loopback only */
    uint16_t port;                 /* 0 picks a free port (see sb_http_port) */
    size_t max_body_bytes;         /* larger bodies get 413; 0 = default */
    uint32_t header_timeout_ms;    /* request line + headers, also keep-alive idle; 0 = default */
    uint32_t body_timeout_ms;      /* whole request body once headers are in; 0 = default */
    const char *default_user;      /* created in the broker's user database if it has none
                                      yet (serve has done it already); with
                                      loopback_users_only, that user may log in from
                                      loopback peers only (as AMQP) */
    const char *default_pass;
    bool loopback_users_only;
    /* HTTPS (libmicrohttpd over GnuTLS), on the same addresses, in addition
     * to plain HTTP: on when tls_certfile is set. */
    const char *tls_certfile;      /* PEM certificate, then intermediates; NULL or "" = off */
    const char *tls_keyfile;       /* PEM private key, unencrypted */
    uint16_t tls_port;             /* 0 picks a free port (see sb_http_tls_port) */
    bool tls13_only;               /* refuse TLS 1.2 too (1.0 and 1.1 always are) */
} sb_http_opts;

/* Opens one listening socket per bind address (IPv6 ones are V6ONLY) and
 * starts a libmicrohttpd daemon on each, driven by loop. With port 0 the
 * first address picks a free port and the others use the same one. An
 * address that cannot be opened is logged and skipped; it is an error only
 * when none opens. Borrows loop and broker (they must outlive the server);
 * strings in o are copied. Returns 0 and sets *out, or -errno (e.g.
 * -EADDRINUSE) with the reason logged; on failure *out is untouched. */
int sb_http_start(sb_loop *loop, sb_broker *broker, const sb_http_opts *o, sb_http **out);

/* The port the server listens on (the one picked, when started with 0). */
uint16_t sb_http_port(const sb_http *h);

/* The HTTPS port, or 0 when HTTPS is off. */
uint16_t sb_http_tls_port(const sb_http *h);

/* The addresses listened on, as "127.0.0.1:15672, [::1]:15672", for logs.
 * Borrowed: valid while h is. */
const char *sb_http_describe(const sb_http *h);

/* Closes the listeners and every HTTP connection at once (a request
 * still waiting for its answer gets none) and frees h. Not from inside an
 * HTTP handler. NULL is a no-op. */
void sb_http_stop(sb_http *h);
/* The store made everything up to pos durable (err 0) or failed to
 * (err < 0): answers the REST publishes waiting for it. NULL is a no-op. */
void sb_http_durable(sb_http *h, uint64_t pos, int err);

#endif /* SB_HTTP_H */
