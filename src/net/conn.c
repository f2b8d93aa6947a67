/* conn.c - byte-stream connections.
 *
 * Input: bytes are read into the loop's shared 64 KiB buffer and handed
 * straight to on_data; only what on_data leaves unconsumed is copied into
 * the connection's own buffer, so an idle connection holds no input memory.
 *
 * Output: a queue of segments, each either an owned sb_buf (copied small
 * writes) or a borrowed range kept alive by a reference on its sb_rc
 * owner (message bodies). Order is the order of the calls: once a ref
 * segment is queued, later copied bytes go into a new buffer segment
 * behind it. Written prefixes are tracked with an offset, never memmoved.
 * The loop flushes every connection on pending_writes before it sleeps; a
 * short write arms EPOLLOUT and the connection leaves that list until the
 * socket is writable again.
 *
 * Lifetime: OPEN -> (sb_conn_close) FLUSHING -> (queue empty: FIN sent)
 * DRAINING -> CLOSED, or straight to CLOSED on abort, error or peer EOF.
 * DRAINING reads and discards until the peer's EOF so that close() does
 * not turn unread input into a RST that could destroy our last bytes. A
 * closed connection sits on loop->closed until the loop reaps it: on_close
 * runs from the loop, never inside a caller's sb_conn_* call, and the
 * struct is freed after on_close returns.
 *
 * TLS (tls.c): a connection accepted on a TLS listener carries an
 * sb_net__tls, and its reads and flushes take the tls_* paths below, one
 * test of c->tls per read or flush; plain connections run exactly the
 * code they always did. Ciphertext read from the socket is decrypted at
 * once, all of it (so no record waits inside OpenSSL while epoll reports
 * nothing), and the plaintext goes through the same on_data/in-buffer
 * logic. Output is encrypted from the same segment queue in batches:
 * segments of a record's size or more are encrypted in place, smaller
 * ones are first gathered into one record; the ciphertext is sent, and
 * the next batch encrypted only once it is all out, so a slow reader
 * holds at most one batch of ciphertext. Closing sends close_notify
 * before the FIN.
 */
#include "net_int.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/log.h"

#define SB_NET__READ_CHUNK ((size_t)64 * 1024)
#define SB_NET__READS_PER_EVENT 4
#define SB_NET__SEG_MAX ((size_t)256 * 1024)   /* tail buffer grows to this */
#define SB_NET__SEG_KEEP ((size_t)4 * 1024)    /* keep an emptied tail this big */
#define SB_NET__REF_COPY_MAX 256               /* smaller ref writes are copied */
#define SB_NET__LINGER_MS 5000
#define SB_NET__TLS_RECORD ((size_t)16 * 1024)  /* plaintext per TLS record */
#define SB_NET__TLS_BATCH ((size_t)64 * 1024)   /* plaintext encrypted per send */

typedef enum sb_conn_state {
    SB_CONN_OPEN,
    SB_CONN_FLUSHING,
    SB_CONN_DRAINING,
    SB_CONN_CLOSED,
} sb_conn_state;

typedef struct sb_net__seg {
    sb_list node;               /* in c->out */
    sb_rc *owner;               /* NULL: bytes are in buf; else a reference we hold */
    const uint8_t *p;           /* ref segment: borrowed while owner is held */
    size_t len;
    size_t off;                 /* bytes already written */
    sb_buf buf;                 /* buffer segment: owned */
} sb_net__seg;

struct sb_conn {
    sb_loop *loop;
    sb_io io;
    sb_conn_state state;
    int close_err;              /* for on_close */
    const sb_conn_ops *ops;     /* borrowed; must outlive the conn */
    void *ud;
    bool read_paused;
    bool want_out;              /* EPOLLOUT armed after a short write */
    bool above_high;
    sb_buf in;                  /* unconsumed input */
    sb_list out;                /* sb_net__seg queue */
    size_t out_bytes;           /* unwritten bytes, minus tail growth since tail_seen */
    size_t tail_seen;           /* tail buffer length already counted in out_bytes */
    sb_buf discard;             /* sb_conn_outbuf after close */
    sb_list node;               /* loop->conns, then loop->closed */
    sb_list write_node;         /* loop->pending_writes */
    sb_list read_node;          /* loop->pending_reads */
    sb_timer linger;
    struct sockaddr_storage peer_addr;
    char peer[SB_NET__ADDRSTRLEN];
    sb_net__tls *tls;           /* NULL for plain TCP */
};

static void conn_finish(sb_conn *c, int err);
static int tls_write_some(sb_conn *c);
static ssize_t tls_read_once(sb_conn *c);
static bool tls_idle(const sb_conn *c);

/* ---- output queue ---- */

static size_t
seg_left(const sb_net__seg *s)
{
    return (s->owner ? s->len : s->buf.len) - s->off;
}

static const uint8_t *
seg_data(const sb_net__seg *s)
{
    return (s->owner ? s->p : s->buf.data) + s->off;
}

static sb_net__seg *
tail_buf(const sb_conn *c)
{
    sb_net__seg *s;

    if (sb_list_empty(&c->out))
        return NULL;
    s = SB_CONTAINER_OF(c->out.prev, sb_net__seg, node);
    return s->owner == NULL ? s : NULL;
}

/* Counts bytes appended to the tail buffer through sb_conn_outbuf. */
static void
sync_tail(sb_conn *c)
{
    sb_net__seg *s = tail_buf(c);

    if (s != NULL) {
        c->out_bytes += s->buf.len - c->tail_seen;
        c->tail_seen = s->buf.len;
    }
}

size_t
sb_conn_pending(const sb_conn *c)
{
    const sb_net__seg *s = tail_buf(c);

    return c->out_bytes + (s ? s->buf.len - c->tail_seen : 0);
}

static bool
accepts_output(const sb_conn *c)
{
    return c->state == SB_CONN_OPEN || c->state == SB_CONN_FLUSHING;
}

static void
mark_write(sb_conn *c)
{
    if (!c->want_out && !sb_list_linked(&c->write_node))
        sb_list_push_back(&c->loop->pending_writes, &c->write_node);
}

static void
check_high(sb_conn *c)
{
    if (!c->above_high && sb_conn_pending(c) > SB_CONN_HIGH_WATER)
        c->above_high = true;
}

static void
push_seg(sb_conn *c, sb_net__seg *s)
{
    sync_tail(c);
    sb_list_push_back(&c->out, &s->node);
    c->out_bytes += seg_left(s);
    c->tail_seen = 0;
}

static void
free_seg(sb_net__seg *s)
{
    sb_list_remove(&s->node);
    if (s->owner != NULL)
        sb_rc_unref(s->owner);
    else
        sb_buf_free(&s->buf);
    sb_free(s);
}

/* Valid until the connection is next flushed (when control returns to
 * the loop) or another sb_conn_* output call is made. */
sb_buf *
sb_conn_outbuf(sb_conn *c)
{
    sb_net__seg *s;

    if (!accepts_output(c)) {
        sb_buf_reset(&c->discard);
        return &c->discard;
    }
    s = tail_buf(c);
    if (s == NULL || s->buf.len >= SB_NET__SEG_MAX) {
        s = sb_calloc(1, sizeof(*s));
        push_seg(c, s);
    }
    mark_write(c);
    return &s->buf;
}

void
sb_conn_write(sb_conn *c, const void *p, size_t len)
{
    if (len == 0 || !accepts_output(c))
        return;
    sb_buf_append(sb_conn_outbuf(c), p, len);
    check_high(c);
}

void
sb_conn_write_ref(sb_conn *c, const void *p, size_t len, sb_rc *owner)
{
    sb_net__seg *s;

    if (len == 0 || !accepts_output(c))
        return;
    if (len <= SB_NET__REF_COPY_MAX) {  /* cheaper than a segment */
        sb_conn_write(c, p, len);
        return;
    }
    s = sb_calloc(1, sizeof(*s));
    s->owner = sb_rc_ref(owner);
    s->p = p;
    s->len = len;
    push_seg(c, s);
    mark_write(c);
    check_high(c);
}

static void
drop_output(sb_conn *c)
{
    sb_list *it;

    while ((it = sb_list_first(&c->out)) != NULL)
        free_seg(SB_CONTAINER_OF(it, sb_net__seg, node));
    c->out_bytes = 0;
    c->tail_seen = 0;
}

/* Drops n written bytes from the head of the queue. An emptied tail
 * buffer of modest size is kept for the next writes. */
static void
consume_out(sb_conn *c, size_t n)
{
    while (n > 0) {
        sb_net__seg *s = SB_CONTAINER_OF(c->out.next, sb_net__seg, node);
        size_t take = seg_left(s) < n ? seg_left(s) : n;
        bool is_tail = c->out.prev == &s->node;

        s->off += take;
        n -= take;
        c->out_bytes -= take;
        if (seg_left(s) > 0)
            break;
        if (is_tail && s->owner == NULL && s->buf.cap <= SB_NET__SEG_KEEP) {
            s->buf.len = s->off = 0;
            c->tail_seen = 0;
            continue;
        }
        if (is_tail)
            c->tail_seen = 0;
        free_seg(s);
    }
}

/* ---- flushing ---- */

static void
update_events(sb_conn *c)
{
    uint32_t ev = 0;
    int rc;

    if ((c->state == SB_CONN_OPEN && !c->read_paused) || c->state == SB_CONN_DRAINING)
        ev |= EPOLLIN;
    if (c->want_out)
        ev |= EPOLLOUT;
    rc = sb_io_modify(c->loop, &c->io, ev);
    if (rc < 0)
        sb_log(SB_LOG_ERROR, "net", "%s: epoll_ctl: %s", c->peer, strerror(-rc));
}

/* Returns 1 if more remains to write, 2 if the queue is empty, 0 if the
 * socket is full, or -errno. */
static int
write_some(sb_conn *c)
{
    struct iovec iov[IOV_MAX];
    struct msghdr msg = { .msg_iov = iov };
    size_t total = 0;
    sb_list *it;
    ssize_t w;

    if (c->tls != NULL)
        return tls_write_some(c);
    sb_list_foreach(it, &c->out) {
        sb_net__seg *s = SB_CONTAINER_OF(it, sb_net__seg, node);
        if (seg_left(s) == 0)
            continue;
        if (msg.msg_iovlen == IOV_MAX)
            break;
        iov[msg.msg_iovlen].iov_base = (void *)seg_data(s);
        iov[msg.msg_iovlen].iov_len = seg_left(s);
        total += seg_left(s);
        msg.msg_iovlen++;
    }
    if (msg.msg_iovlen == 0)
        return 2;
    /* sendmsg rather than writev: MSG_NOSIGNAL, whatever SIGPIPE does. */
    do
        w = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    consume_out(c, (size_t)w);
    if ((size_t)w < total)
        return 0;
    return c->out_bytes > 0 ? 1 : 2;
}

static void
start_drain(sb_conn *c)
{
    if (shutdown(c->io.fd, SHUT_WR) < 0) {
        conn_finish(c, 0);      /* ENOTCONN: the peer is already gone */
        return;
    }
    c->state = SB_CONN_DRAINING;
    update_events(c);
}

static void
after_write(sb_conn *c)
{
    if (c->above_high && sb_conn_pending(c) < SB_CONN_LOW_WATER) {
        c->above_high = false;
        if (c->ops != NULL && c->ops->on_drain != NULL)
            c->ops->on_drain(c, c->ud);
    }
    if (c->state == SB_CONN_FLUSHING && sb_conn_pending(c) == 0 &&
        (c->tls == NULL || tls_idle(c)))
        start_drain(c);
}

static void
conn_flush(sb_conn *c)
{
    int rc;

    sb_list_remove(&c->write_node);
    sync_tail(c);
    check_high(c);
    do
        rc = write_some(c);
    while (rc == 1);
    if (rc < 0) {
        conn_finish(c, rc);
        return;
    }
    if (c->want_out != (rc == 0)) {
        c->want_out = rc == 0;
        update_events(c);
    }
    after_write(c);
}

void
sb_net__conns_flush(sb_loop *l)
{
    sb_list batch;
    sb_list *it;

    /* A snapshot: what callbacks queue now waits for the next iteration
     * (the loop then polls with timeout 0). */
    sb_list_init(&batch);
    sb_list_splice_back(&batch, &l->pending_writes);
    while ((it = sb_list_first(&batch)) != NULL)
        conn_flush(SB_CONTAINER_OF(it, sb_conn, write_node));
}

/* ---- input ---- */

/* Hands data[0..len) to on_data until it consumes nothing more, reading
 * stops, or the connection closes. Returns the bytes consumed. */
static size_t
deliver(sb_conn *c, const uint8_t *data, size_t len)
{
    size_t done = 0;

    if (c->ops == NULL || c->ops->on_data == NULL)
        return len;
    while (done < len && c->state == SB_CONN_OPEN && !c->read_paused) {
        size_t used = c->ops->on_data(c, data + done, len - done, c->ud);
        sb_assert(used <= len - done);
        if (used == 0)
            break;
        done += used;
    }
    return done;
}

static void
deliver_buffered(sb_conn *c)
{
    sb_buf_consume(&c->in, deliver(c, c->in.data, c->in.len));
    if (c->in.len == 0)
        sb_buf_free(&c->in);
}

/* Returns bytes read, 0 at EOF, or -errno (-EAGAIN when dry). */
static ssize_t
read_once(sb_conn *c)
{
    bool direct = c->in.len == 0;
    uint8_t *dst;
    ssize_t n;

    if (direct) {
        dst = c->loop->rbuf;
    } else {
        sb_buf_reserve(&c->in, SB_NET__READ_CHUNK);
        dst = c->in.data + c->in.len;
    }
    do
        n = read(c->io.fd, dst, SB_NET__READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    if (direct) {
        size_t used = deliver(c, dst, (size_t)n);
        if (c->state == SB_CONN_OPEN)
            sb_buf_append(&c->in, dst + used, (size_t)n - used);
    } else {
        c->in.len += (size_t)n;
        deliver_buffered(c);
    }
    return n;
}

static void
read_input(sb_conn *c)
{
    if (c->loop->rbuf == NULL)
        c->loop->rbuf = sb_malloc(SB_NET__READ_CHUNK);
    /* A few reads per event for fairness; level-triggered epoll brings
     * us back if more is waiting. */
    for (int i = 0; i < SB_NET__READS_PER_EVENT; i++) {
        ssize_t n;

        if (c->state != SB_CONN_OPEN || c->read_paused)
            return;
        n = c->tls != NULL ? tls_read_once(c) : read_once(c);
        if (n == -EAGAIN || n == -EWOULDBLOCK)
            return;
        if (n <= 0) {
            conn_finish(c, (int)n); /* 0: the peer closed */
            return;
        }
        if ((size_t)n < SB_NET__READ_CHUNK)
            return;
    }
}

/* After our FIN: discard input until the peer's EOF. */
static void
drain_input(sb_conn *c)
{
    uint8_t scratch[16 * 1024];

    for (int i = 0; i < SB_NET__READS_PER_EVENT; i++) {
        ssize_t n = read(c->io.fd, scratch, sizeof(scratch));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_finish(c, 0);      /* EOF or reset: our output was sent */
        return;
    }
}

void
sb_net__conns_redeliver(sb_loop *l)
{
    sb_list batch;
    sb_list *it;

    sb_list_init(&batch);
    sb_list_splice_back(&batch, &l->pending_reads);
    while ((it = sb_list_first(&batch)) != NULL) {
        sb_conn *c = SB_CONTAINER_OF(it, sb_conn, read_node);
        sb_list_remove(it);
        if (c->state == SB_CONN_OPEN && !c->read_paused && c->in.len > 0)
            deliver_buffered(c);
    }
}

static int
sock_error(const sb_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
        return -err;
    return c->state == SB_CONN_OPEN ? 0 : -EPIPE;
}

static void
on_conn_io(sb_loop *l, sb_io *io, uint32_t events)
{
    sb_conn *c = SB_CONTAINER_OF(io, sb_conn, io);
    const uint32_t readable = EPOLLIN | EPOLLHUP | EPOLLERR;

    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->want_out)
        conn_flush(c);
    if (c->state == SB_CONN_OPEN && !c->read_paused && (events & readable))
        read_input(c);
    else if (c->state == SB_CONN_DRAINING && (events & readable))
        drain_input(c);
    else if (c->state != SB_CONN_CLOSED && (events & (EPOLLHUP | EPOLLERR)))
        conn_finish(c, sock_error(c));  /* paused or flushing: nobody reads */
}

/* ---- TLS ---- */

/* Hands got plaintext bytes at dst to on_data as read_once does with what
 * read(2) returned: dst is loop->rbuf when direct, else c->in's tail. */
static void
deliver_plain(sb_conn *c, uint8_t *dst, size_t got, bool direct)
{
    if (direct) {
        size_t used = deliver(c, dst, got);
        if (c->state == SB_CONN_OPEN)
            sb_buf_append(&c->in, dst + used, got - used);
    } else {
        c->in.len += got;
        deliver_buffered(c);
    }
}

/* Decrypts everything fed, 64 KiB of plaintext at a time. Returns 0 when
 * it is all used, 0 too if on_data closed the connection (the rest is
 * dropped), SB_NET__TLS_EOF or -EPROTO. A paused connection keeps
 * decrypting into c->in: the socket is not read again until it resumes. */
static int
tls_decrypt(sb_conn *c)
{
    for (;;) {
        bool direct = c->in.len == 0;
        size_t got = 0;
        uint8_t *dst;
        int rc = 0;

        if (direct) {
            dst = c->loop->rbuf;
        } else {
            sb_buf_reserve(&c->in, SB_NET__READ_CHUNK);
            dst = c->in.data + c->in.len;
        }
        while (got < SB_NET__READ_CHUNK &&
               (rc = sb_net__tls_read(c->tls, dst + got, SB_NET__READ_CHUNK - got)) > 0)
            got += (size_t)rc;
        if (got > 0)
            deliver_plain(c, dst, got, direct);
        if (rc <= 0 || c->state != SB_CONN_OPEN)
            return rc < 0 ? rc : 0;
    }
}

/* A failed handshake or a broken record: the alert OpenSSL wrote goes out
 * if the socket takes it at once; the connection is then closed. */
static void
tls_send_alert(sb_conn *c)
{
    size_t len;
    const uint8_t *p = sb_net__tls_out(c->tls, &len);

    if (len > 0)
        (void)send(c->io.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    sb_net__tls_out_consume(c->tls, len);
}

/* read_once for TLS: one read(2) of ciphertext, all of it decrypted.
 * Returns the ciphertext bytes read, 0 at EOF (TCP or close_notify), or
 * -errno. */
static ssize_t
tls_read_once(sb_conn *c)
{
    size_t pending;
    ssize_t n;
    int rc;

    if (c->loop->tls_rbuf == NULL)
        c->loop->tls_rbuf = sb_malloc(SB_NET__READ_CHUNK);
    do
        n = read(c->io.fd, c->loop->tls_rbuf, SB_NET__READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    sb_net__tls_feed(c->tls, c->loop->tls_rbuf, (size_t)n);
    rc = tls_decrypt(c);
    sb_net__tls_feed(c->tls, NULL, 0);
    if (rc == SB_NET__TLS_EOF)
        return 0;
    if (rc < 0) {
        tls_send_alert(c);
        return rc;
    }
    /* Handshake messages to send, or output that waited for the
     * handshake to finish. */
    sb_net__tls_out(c->tls, &pending);
    if (accepts_output(c) &&
        (pending > 0 || (sb_net__tls_ready(c->tls) && sb_conn_pending(c) > 0)))
        mark_write(c);
    return n;
}

/* Sends the ciphertext waiting. 1 when all is out, 0 if the socket is
 * full, or -errno. */
static int
tls_send(sb_conn *c)
{
    for (;;) {
        size_t len;
        const uint8_t *p = sb_net__tls_out(c->tls, &len);
        ssize_t w;

        if (len == 0)
            return 1;
        do
            w = send(c->io.fd, p, len, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        sb_net__tls_out_consume(c->tls, (size_t)w);
    }
}

/* Encrypts up to a batch of queued plaintext, dropping it from the queue.
 * A segment of a record or more is encrypted where it is; smaller ones
 * are gathered into one record first (a frame header, a body and the
 * next frame's header make one record, not three). 0, or -EPROTO. */
static int
tls_encrypt(sb_conn *c)
{
    uint8_t stage[SB_NET__TLS_RECORD];
    size_t done = 0;

    while (done < SB_NET__TLS_BATCH && c->out_bytes > 0) {
        sb_net__seg *head = SB_CONTAINER_OF(c->out.next, sb_net__seg, node);
        size_t n = 0;
        sb_list *it;
        int rc;

        if (seg_left(head) >= SB_NET__TLS_RECORD) {
            n = seg_left(head) < SB_NET__TLS_BATCH - done ? seg_left(head)
                                                            : SB_NET__TLS_BATCH - done;
            rc = sb_net__tls_write(c->tls, seg_data(head), n);
        } else {
            sb_list_foreach(it, &c->out) {
                sb_net__seg *s = SB_CONTAINER_OF(it, sb_net__seg, node);
                size_t take = seg_left(s) < sizeof stage - n ? seg_left(s) : sizeof stage - n;
                memcpy(stage + n, seg_data(s), take);
                n += take;
                if (n == sizeof stage)
                    break;
            }
            rc = sb_net__tls_write(c->tls, stage, n);
        }
        if (rc < 0)
            return rc;
        consume_out(c, n);
        done += n;
    }
    return 0;
}

/* write_some for TLS: send what is encrypted, encrypt the next batch,
 * until the socket is full (0) or everything is out (2); -errno on
 * failure. Until the handshake is done, plaintext waits in the queue
 * (tls_read_once flushes it once it is). A closing connection adds
 * close_notify once its queue is empty. */
static int
tls_write_some(sb_conn *c)
{
    for (;;) {
        int rc = tls_send(c);

        if (rc <= 0)
            return rc;
        if (!sb_net__tls_ready(c->tls))
            return 2;
        if (c->out_bytes == 0) {
            if (c->state == SB_CONN_FLUSHING && sb_net__tls_shutdown(c->tls))
                continue;
            return 2;
        }
        rc = tls_encrypt(c);
        if (rc < 0)
            return rc;
    }
}

/* Nothing left for TLS to send before the FIN. */
static bool
tls_idle(const sb_conn *c)
{
    size_t len;

    sb_net__tls_out(c->tls, &len);
    return len == 0;
}

int
sb_net__conn_start_tls(sb_conn *c, sb_tls *t)
{
    c->tls = sb_net__tls_new(t, c->peer);
    if (c->tls == NULL) {
        conn_finish(c, -ENOMEM);
        return -ENOMEM;
    }
    return 0;
}

bool
sb_conn_is_tls(const sb_conn *c)
{
    return c->tls != NULL;
}

const char *
sb_conn_peer_cert_cn(const sb_conn *c)
{
    return c->tls != NULL ? sb_net__tls_peer_cn(c->tls) : NULL;
}

/* ---- lifetime ---- */

static void
on_linger(sb_loop *l, sb_timer *t)
{
    sb_conn *c = t->arg;

    sb_log(SB_LOG_DEBUG, "net", "%s: linger expired", c->peer);
    conn_finish(c, c->state == SB_CONN_DRAINING ? 0 : -ETIMEDOUT);
}

int
sb_net__conn_new(sb_loop *l, int fd, const struct sockaddr *peer, socklen_t peer_len,
                 sb_conn **out)
{
    sb_conn *c;
    int rc;

    rc = sb_net__set_nodelay(fd);
    if (rc < 0)
        sb_log(SB_LOG_DEBUG, "net", "TCP_NODELAY: %s", strerror(-rc));
    c = sb_calloc(1, sizeof(*c));
    c->loop = l;
    c->state = SB_CONN_OPEN;
    c->io = (sb_io){ .fd = fd, .events = EPOLLIN, .cb = on_conn_io, .arg = c };
    sb_list_init(&c->out);
    sb_list_init(&c->write_node);
    sb_list_init(&c->read_node);
    sb_timer_init(&c->linger, on_linger, c);
    if (peer_len > sizeof(c->peer_addr))
        peer_len = sizeof(c->peer_addr);
    memcpy(&c->peer_addr, peer, peer_len);
    sb_net__format_addr((struct sockaddr *)&c->peer_addr, c->peer, sizeof(c->peer));
    rc = sb_io_start(l, &c->io);
    if (rc < 0) {
        sb_log(SB_LOG_WARN, "net", "%s: epoll_ctl: %s", c->peer, strerror(-rc));
        close(fd);
        sb_free(c);
        return rc;
    }
    sb_list_push_back(&l->conns, &c->node);
    *out = c;
    return 0;
}

/* Closes the socket at once and queues the conn for on_close. */
static void
conn_finish(sb_conn *c, int err)
{
    if (c->state == SB_CONN_CLOSED)
        return;
    c->state = SB_CONN_CLOSED;
    c->close_err = err;
    sb_timer_stop(c->loop, &c->linger);
    sb_io_stop(c->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    c->want_out = false;
    drop_output(c);
    sb_list_remove(&c->write_node);
    sb_list_remove(&c->read_node);
    sb_list_remove(&c->node);
    sb_list_push_back(&c->loop->closed, &c->node);
}

void
sb_net__conns_reap(sb_loop *l)
{
    sb_list *it;

    while ((it = sb_list_first(&l->closed)) != NULL) {
        sb_conn *c = SB_CONTAINER_OF(it, sb_conn, node);
        sb_list_remove(it);
        if (c->ops != NULL && c->ops->on_close != NULL)
            c->ops->on_close(c, c->close_err, c->ud);
        sb_net__tls_free(c->tls);
        sb_buf_free(&c->in);
        sb_buf_free(&c->discard);
        sb_free(c);
    }
}

void
sb_net__conns_abort_all(sb_loop *l)
{
    sb_list *it;

    while ((it = sb_list_first(&l->conns)) != NULL)
        conn_finish(SB_CONTAINER_OF(it, sb_conn, node), -ECANCELED);
    sb_net__conns_reap(l);
    sb_free(l->rbuf);
    l->rbuf = NULL;
    sb_free(l->tls_rbuf);
    l->tls_rbuf = NULL;
}

void
sb_net__conn_accepted(sb_conn *c)
{
    if (c->ops == NULL && c->state == SB_CONN_OPEN) {
        sb_log(SB_LOG_WARN, "net", "%s: accept callback set no ops; aborting", c->peer);
        conn_finish(c, -ECONNABORTED);
    }
}

void
sb_conn_close(sb_conn *c)
{
    if (c->state != SB_CONN_OPEN)
        return;
    c->state = SB_CONN_FLUSHING;
    sb_list_remove(&c->read_node);
    update_events(c);
    sb_timer_start(c->loop, &c->linger, SB_NET__LINGER_MS);
    mark_write(c);              /* the flush phase finishes the close */
}

void
sb_conn_abort(sb_conn *c)
{
    conn_finish(c, -ECONNABORTED);
}

void
sb_conn_pause_read(sb_conn *c, bool pause)
{
    if (c->state != SB_CONN_OPEN || c->read_paused == pause)
        return;
    c->read_paused = pause;
    update_events(c);
    if (pause)
        sb_list_remove(&c->read_node);
    else if (c->in.len > 0 && !sb_list_linked(&c->read_node))
        sb_list_push_back(&c->loop->pending_reads, &c->read_node);
}

void
sb_conn_set_ops(sb_conn *c, const sb_conn_ops *ops, void *ud)
{
    c->ops = ops;
    c->ud = ud;
}

void
sb_conn_set_ud(sb_conn *c, void *ud)
{
    c->ud = ud;
}

void *
sb_conn_ud(const sb_conn *c)
{
    return c->ud;
}

const char *
sb_conn_peer(const sb_conn *c)
{
    return c->peer;
}

void
sb_conn_local(const sb_conn *c, char *out, size_t len)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sl = sizeof ss;

    if (getsockname(c->io.fd, (struct sockaddr *)&ss, &sl) < 0)
        ss.ss_family = AF_UNSPEC;
    sb_net__format_addr((struct sockaddr *)&ss, out, len);
}

bool
sb_conn_peer_is_loopback(const sb_conn *c)
{
    return sb_net__is_loopback((const struct sockaddr *)&c->peer_addr);
}

sb_loop *
sb_conn_loop(const sb_conn *c)
{
    return c->loop;
}
