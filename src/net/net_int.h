/* net_int.h - internals shared by the files of src/net; not a front header.
 *
 * Only the .c files of src/net include this. Everything here is loop-thread only,
 * except wake_fd, which sb_loop_wake writes from any thread.
 */
#ifndef SB_NET_INT_H
#define SB_NET_INT_H

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>

#include "../common/list.h"
#include "net.h"

#define SB_NET__MAX_EVENTS 256

typedef struct sb_net__hook {
    sb_hook_fn fn;
    void *arg;
} sb_net__hook;

struct sb_loop {
    int epfd;
    bool stop;
    uint64_t now;               /* cached monotonic ms */

    /* Timers: binary min-heap of borrowed sb_timer pointers. */
    sb_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    sb_net__hook *hooks;
    size_t hooks_len, hooks_cap;

    /* The epoll batch being dispatched; sb_io_stop clears later entries
     * that point at the stopped io so a freed io is never called. */
    struct epoll_event events[SB_NET__MAX_EVENTS];
    int ev_idx, ev_n;

    /* Connections (see conn.c). Each sb_conn is on conns until it is
     * closed, then on closed until on_close has run and it is freed. */
    sb_list conns;
    sb_list pending_writes;     /* conns with output not yet tried */
    sb_list pending_reads;      /* conns with buffered input to redeliver */
    sb_list closed;
    sb_list listeners;
    uint8_t *rbuf;              /* shared read buffer (conn.c), lazily made */
    uint8_t *tls_rbuf;          /* ciphertext read buffer, made on the first TLS read */

    /* wake.c */
    int wake_fd;
    sb_io wake_io;
    sb_hook_fn wake_fn;
    void *wake_arg;
    int sig_fd;
    sb_io sig_io;
    sb_hook_fn sig_fn;
    void *sig_arg;
    sigset_t sig_oldmask;
};

/* timer.c */
void sb_net__timers_run(sb_loop *l);
/* Milliseconds until the next timer is due, 0 if one is due, -1 if none. */
int sb_net__timers_timeout(const sb_loop *l);
void sb_net__timers_free(sb_loop *l);

/* wake.c */
int sb_net__wake_init(sb_loop *l);
void sb_net__wake_free(sb_loop *l);

/* conn.c */
/* Takes ownership of fd (closed on failure too). The new conn has no ops
 * yet; the caller must call sb_conn_set_ops or sb_conn_abort. */
int sb_net__conn_new(sb_loop *l, int fd, const struct sockaddr *peer, socklen_t peer_len,
                     sb_conn **out);
/* After the accept callback: aborts c if it was given no ops. */
void sb_net__conn_accepted(sb_conn *c);
void sb_net__conns_flush(sb_loop *l);
void sb_net__conns_redeliver(sb_loop *l);
void sb_net__conns_reap(sb_loop *l);
/* At loop free: aborts every open conn and reaps (on_close err -ECANCELED). */
void sb_net__conns_abort_all(sb_loop *l);

/* tls.c - one TLS session over a connection's bytes. OpenSSL reads and
 * writes through a BIO of ours: it reads the ciphertext conn.c fed it and
 * appends what it writes to a buffer conn.c sends, so OpenSSL never does
 * I/O and never asks to wait for the socket (no WANT_WRITE, ever). */
typedef struct sb_net__tls sb_net__tls;
/* A server session for t; peer is borrowed for log lines and must outlive
 * it. Returns NULL if OpenSSL cannot make one (logged). */
sb_net__tls *sb_net__tls_new(sb_tls *t, const char *peer);
void sb_net__tls_free(sb_net__tls *s);
/* Offers cipher[0..n) to the next sb_net__tls_read calls. Borrowed until
 * sb_net__tls_read returns 0 or less: every byte is used by then. */
void sb_net__tls_feed(sb_net__tls *s, const uint8_t *cipher, size_t n);
#define SB_NET__TLS_EOF (-ESHUTDOWN) /* the peer sent close_notify */
/* Decrypts into buf[0..cap) (driving the handshake first). Returns the
 * plaintext bytes (> 0), 0 when every fed byte is used and more are
 * needed, SB_NET__TLS_EOF, or -EPROTO after logging why (a failed
 * handshake: garbage, an old protocol, a refused certificate). */
int sb_net__tls_read(sb_net__tls *s, uint8_t *buf, size_t cap);
/* Encrypts p[0..n) into the output, whole. 0, or -EPROTO (logged). */
int sb_net__tls_write(sb_net__tls *s, const void *p, size_t n);
/* After the handshake, once: appends close_notify to the output. True if
 * it did. */
bool sb_net__tls_shutdown(sb_net__tls *s);
/* The handshake is done: plaintext may be written. */
bool sb_net__tls_ready(const sb_net__tls *s);
/* Ciphertext waiting to be sent: returns a pointer and sets *len (NULL and
 * 0 when none). Valid until the next call on s. */
const uint8_t *sb_net__tls_out(const sb_net__tls *s, size_t *len);
void sb_net__tls_out_consume(sb_net__tls *s, size_t n);
/* The peer's verified certificate CN, or NULL. */
const char *sb_net__tls_peer_cn(const sb_net__tls *s);

/* conn.c: makes c speak TLS with t (before anything was read or written).
 * On failure c is aborted and -ENOMEM returned. */
int sb_net__conn_start_tls(sb_conn *c, sb_tls *t);

/* listener.c */
void sb_net__listeners_close_all(sb_loop *l);

/* sock.c - all return 0 or -errno. */
int sb_net__set_nonblock(int fd);
int sb_net__set_nodelay(int fd);
int sb_net__parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len);
/* Creates a nonblocking listening socket bound to addr:port. */
int sb_net__listen(const char *addr, uint16_t port, int backlog, int *fd_out);
int sb_net__local_port(int fd, uint16_t *port);
/* "1.2.3.4:5" or "[::1]:5" into out (at least SB_NET__ADDRSTRLEN bytes). */
#define SB_NET__ADDRSTRLEN 64
void sb_net__format_addr(const struct sockaddr *sa, char *out, size_t n);
bool sb_net__is_loopback(const struct sockaddr *sa);

#endif /* SB_NET_INT_H */
