/* net.h - event loop, timers, listeners and byte-stream connections.
 *
 * Knows no protocol. One loop per thread; everything here runs on the
 * loop's thread except sb_loop_wake, which any thread may call.
 */
#ifndef SB_NET_H
#define SB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/buf.h"
#include "../common/rc.h"

typedef struct sb_loop sb_loop;

/* ---- loop ---- */

/* Returns 0 and sets *out, or -errno. */
int sb_loop_new(sb_loop **out);
/* Not from inside sb_loop_run. Closes the listeners still open and
 * aborts the connections still open (their on_close runs, err
 * -ECANCELED); armed timers and raw sb_io watchers are just forgotten. */
void sb_loop_free(sb_loop *l);
/* Runs until sb_loop_stop. Each iteration: run due timers, run the
 * before-sleep hooks (in registration order; connection flushes run after
 * them), epoll_wait, dispatch I/O. Returns 0 or -errno from epoll. */
int sb_loop_run(sb_loop *l);
/* Asks the loop to return after the current iteration. */
void sb_loop_stop(sb_loop *l);
/* Loop's cached monotonic time in ms, refreshed once per iteration. */
uint64_t sb_loop_now(const sb_loop *l);

typedef void (*sb_hook_fn)(sb_loop *l, void *arg);
/* Registers fn to run before every sleep. */
void sb_loop_add_before_sleep(sb_loop *l, sb_hook_fn fn, void *arg);

/* Calls fn on the loop thread at the next iteration; callable from any
 * thread (eventfd). Used by helper threads (fsync) to hand results back. */
void sb_loop_wake(sb_loop *l);
void sb_loop_set_wake_handler(sb_loop *l, sb_hook_fn fn, void *arg);

/* Installs handlers so SIGINT/SIGTERM call fn on the loop thread
 * (signalfd). SIGPIPE is ignored. Returns 0 or -errno. The signals are
 * blocked in the calling thread only: call this before starting helper
 * threads so they inherit the mask. sb_loop_free restores the mask. */
int sb_loop_on_signal(sb_loop *l, sb_hook_fn fn, void *arg);

/* ---- raw fd watching ---- */
typedef struct sb_io sb_io;
typedef void (*sb_io_fn)(sb_loop *l, sb_io *io, uint32_t events /* EPOLLIN|... */);
struct sb_io {
    int fd;
    uint32_t events;
    sb_io_fn cb;
    void *arg;
};
int sb_io_start(sb_loop *l, sb_io *io);   /* -errno on failure */
int sb_io_modify(sb_loop *l, sb_io *io, uint32_t events);
void sb_io_stop(sb_loop *l, sb_io *io);

/* ---- timers (min-heap; ties fire in start order) ---- */
typedef struct sb_timer sb_timer;
typedef void (*sb_timer_fn)(sb_loop *l, sb_timer *t);
struct sb_timer {
    uint64_t due;       /* monotonic ms */
    uint64_t seq;       /* tie-break */
    size_t heap_index;  /* SIZE_MAX when not armed */
    sb_timer_fn cb;
    void *arg;
};
void sb_timer_init(sb_timer *t, sb_timer_fn cb, void *arg);
/* (Re)arms t to fire after ms milliseconds. */
void sb_timer_start(sb_loop *l, sb_timer *t, uint64_t ms);
void sb_timer_stop(sb_loop *l, sb_timer *t);
bool sb_timer_active(const sb_timer *t);

/* ---- connections ---- */
typedef struct sb_conn sb_conn;

typedef struct sb_conn_ops {
    /* Bytes arrived: data[0..len) is everything unconsumed so far. Return
     * how many bytes were consumed (the rest is kept for the next call).
     * If it consumed some but not all, it is called again at once with
     * the rest, until it returns 0. data is borrowed for the call only.
     * The callback may call sb_conn_close, sb_conn_abort or
     * sb_conn_pause_read; no further on_data follows the first two, and
     * c and data stay valid until the callback returns. */
    size_t (*on_data)(sb_conn *c, const uint8_t *data, size_t len, void *ud);
    /* The connection is gone: peer closed (err 0; output still queued is
     * dropped), an error (-errno), or after sb_conn_close finished
     * flushing. Called once, from the loop; the sb_conn is freed right
     * after it returns. Writes from inside it are discarded. */
    void (*on_close)(sb_conn *c, int err, void *ud);
    /* Optional: the output queue fell below the low-water mark after
     * having been above the high-water mark (for flow control). */
    void (*on_drain)(sb_conn *c, void *ud);
} sb_conn_ops;

/* Output: small writes are copied into the connection's output buffer;
 * large payloads (message bodies) can be queued by reference instead, so
 * one body shared by many consumers is never copied. Everything queued is
 * written in order with writev before the loop sleeps (or when the socket
 * becomes writable again after a short write). */
/* The buffer to append small frames to directly (may move on append).
 * Borrowed until control returns to the loop or the next sb_conn_write*
 * call; after the connection closed, appended bytes are discarded. */
sb_buf *sb_conn_outbuf(sb_conn *c);
void sb_conn_write(sb_conn *c, const void *p, size_t len);
/* Queues p[0..len) by reference; takes a new reference on owner (dropped
 * once the bytes are written or the connection is gone). p must stay
 * valid and unchanged while owner is alive. Ranges of 256 bytes or less
 * are copied instead (no reference taken). */
void sb_conn_write_ref(sb_conn *c, const void *p, size_t len, sb_rc *owner);
/* on_drain fires once pending output, having exceeded the high-water
 * mark, falls below the low-water mark. */
#define SB_CONN_HIGH_WATER ((size_t)4 << 20)
#define SB_CONN_LOW_WATER ((size_t)1 << 20)
/* Bytes queued but not yet written. */
size_t sb_conn_pending(const sb_conn *c);
/* Stops reading, flushes what is queued (bounded by a 5 s linger), then
 * closes and calls on_close(err 0); -ETIMEDOUT if the linger expired
 * with output unsent, -errno if the socket failed. Output queued after
 * this call is still sent; no on_data follows it. */
void sb_conn_close(sb_conn *c);
/* Closes the socket at once, dropping pending output (references are
 * released); on_close(err -ECONNABORTED) follows. No on_data follows it.
 * on_close never runs inside sb_conn_close/sb_conn_abort themselves: the
 * loop calls it once control returns there, so a caller's state stays
 * valid until its callback returns. */
void sb_conn_abort(sb_conn *c);
/* Pauses/resumes reading (for connection.blocked and backpressure).
 * Bytes already buffered but unconsumed are offered again (from the
 * loop) after a resume, without waiting for new input. */
void sb_conn_pause_read(sb_conn *c, bool pause);
void sb_conn_set_ud(sb_conn *c, void *ud);
void *sb_conn_ud(const sb_conn *c);
/* Peer address as text ("127.0.0.1:53122", "[::1]:53122"). */
const char *sb_conn_peer(const sb_conn *c);
/* True if the peer address is loopback (127.0.0.0/8 or ::1, also
 * IPv4-mapped). */
bool sb_conn_peer_is_loopback(const sb_conn *c);
sb_loop *sb_conn_loop(const sb_conn *c);
/* Our end's address as text ("127.0.0.1:5672") into out; "unknown" when
 * the socket cannot say. */
void sb_conn_local(const sb_conn *c, char *out, size_t len);

/* ---- TLS (OpenSSL; tls.c) ---- */
typedef struct sb_tls sb_tls;

typedef struct sb_tls_opts {
    const char *certfile;       /* PEM: the server certificate, then any intermediates */
    const char *keyfile;        /* PEM: its private key (unencrypted) */
    const char *cacertfile;     /* PEM: CAs a client certificate must chain to; NULL or "" */
    bool verify_peer;           /* ask for a client certificate and check it (needs cacertfile) */
    bool fail_if_no_peer_cert;  /* with verify_peer: refuse a client that sends none */
    bool tls13_only;            /* refuse TLS 1.2 too (TLS 1.0 and 1.1 are always refused) */
} sb_tls_opts;

/* Loads the certificate, key and CAs and makes a server context. Returns
 * 0 and sets *out, or -1 with a sentence in err (which file, and what
 * OpenSSL found wrong with it). Strings in o are not kept. */
int sb_tls_new(const sb_tls_opts *o, sb_tls **out, char *err, size_t errlen);
/* After every listener using t is closed; connections still open keep
 * what they need (OpenSSL counts references to its context). NULL is a
 * no-op. */
void sb_tls_free(sb_tls *t);

/* True if c speaks TLS (accepted on a listener with sb_listener_set_tls). */
bool sb_conn_is_tls(const sb_conn *c);
/* The common name (CN) of the client certificate, if the peer sent one and
 * it was verified against cacertfile (verify_peer); NULL otherwise or
 * before the TLS handshake finished. Borrowed until on_close returns. */
const char *sb_conn_peer_cert_cn(const sb_conn *c);

/* ---- listeners ---- */
typedef struct sb_listener sb_listener;
/* Called for each accepted connection; set its ops and ud with
 * sb_conn_set_ops before returning, or sb_conn_abort it (a connection
 * left without ops is aborted). */
typedef void (*sb_accept_fn)(sb_listener *ls, sb_conn *c, void *arg);
/* ops is borrowed and must outlive the connection (normally static). */
void sb_conn_set_ops(sb_conn *c, const sb_conn_ops *ops, void *ud);

/* Binds addr:port (addr is an IPv4 or IPv6 literal, e.g. "127.0.0.1",
 * "::1", "0.0.0.0", "::"; IPv6 sockets are V6ONLY), listens and starts
 * accepting. port 0 picks a free port (see sb_listener_port).
 * Returns 0 and sets *out, or -errno (e.g. -EADDRINUSE). */
int sb_listener_open(sb_loop *l, const char *addr, uint16_t port, sb_accept_fn fn,
                     void *arg, sb_listener **out);
uint16_t sb_listener_port(const sb_listener *ls);
/* Every connection ls accepts from now on speaks TLS with t: the handshake
 * runs inside the loop, and on_data sees plaintext only once it is done.
 * t is borrowed and must outlive ls. */
void sb_listener_set_tls(sb_listener *ls, sb_tls *t);
/* Stops accepting and frees ls (also from inside its accept callback);
 * connections already accepted are unaffected. */
void sb_listener_close(sb_listener *ls);

#endif /* SB_NET_H */
