/* fuzz_session.c - libFuzzer target for whole AMQP connections through the
 * real broker: the net layer, the connection and channel state machines of
 * src/session and the broker they drive, with nothing stubbed.
 *
 * An input is what clients send. Its first octet is a set of flags (F_*
 * below); the rest is split at the separator 00 'S' 'B' '|' into segments,
 * the octet after each separator choosing (mod 4) the connection that the
 * following segment goes to (the first segment goes to connection 0). Each
 * run builds a fresh loop, broker and sb_sessions, as `serve` does. By
 * default there is no store: durable declarations and persistent messages
 * live in memory only, which keeps a run fast. With F_STORE the broker
 * logs to a store in a per-process directory on tmpfs (/dev/shm, else
 * /tmp), emptied before each run, and each step waits for the log to be on
 * disk so confirms come out the same every time; F_RESTART then has a new
 * broker recover what the run left there, and every durable exchange,
 * queue and binding (names byte for byte) must be back, or the run aborts.
 * Per-action tracing is on (a small ring); F_EXTRAS also turns the
 * firehose on and sets three policies. A connection is one end of an
 * AF_UNIX socketpair adopted by the net layer (sb_net__conn_new, what the
 * listener calls after accept4) with a 127.0.0.1 peer address, so guest may
 * log in. Segments are written in order, each only once the broker has read
 * the one before (SIOCOUTQ is 0), so connections interleave the same way on
 * every run; then every client half-closes and the loop runs until the
 * broker has released every connection. A timer re-armed at 0 ms keeps
 * epoll_wait from sleeping, and every phase has an iteration cap, so no
 * input can wait for a heartbeat, handshake or linger timer; one run takes
 * about a millisecond. With F_TIGHT the connections stay open LINGER_MS at
 * the end, so timers of a few ms fire with them still there. Everything is freed at the end of a run, so
 * LeakSanitizer reports what the broker really leaks.
 *
 * What the broker writes back is read as it comes and must be AMQP: frames
 * that parse within the offered frame_max, methods and content headers that
 * decode (after an optional protocol header, the reply to a wrong one). A
 * violation aborts, as a crash would.
 *
 * Names the broker makes up differ from run to run, which would make a seed
 * that uses one useless. getrandom is replaced by a per-run counter (the
 * direct reply-to address is its only user in the broker), so the reply
 * address of the n-th reply consumer of a run is always the same. Server-
 * named queues (amq.gen-...) and consumer tags (amq.ctag-...) mix addresses
 * into their names: the harness remembers the last of each the broker
 * reported and rewrites every name of the same shape in a segment before
 * writing it.
 *
 * SB_FUZZ_TRACE=1 prints the methods the broker sends; SB_FUZZ_LOG=debug
 * turns the broker's log on.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amqp/amqp.h"
#include "broker/broker.h"
#include "broker/json_table.h"
#include "common/arena.h"
#include "common/log.h"
#include "net/net.h"
#include "net/net_int.h" /* sb_net__conn_new, sb_net__conn_accepted */
#include "session/session.h"
#include "store/store.h"

enum {
    F_HANDSHAKE = 1 << 0,    /* the harness sends header, start-ok, tune-ok, open and
                                channel.open(1) before a connection's first segment */
    F_SMALL_FRAMES = 1 << 1, /* that tune-ok asks for frame_max 4096 */
    F_NO_CAPS = 1 << 2,      /* that start-ok claims no capabilities */
    F_ALARM = 1 << 3,        /* the memory alarm is on: publishers get blocked */
    F_TIGHT = 1 << 4,        /* small limits: 1 KiB messages, 8 channels, 8 KiB frames,
                                durable queues keep 2 messages in RAM, unacked
                                deliveries time out after 1 ms (consumer_timeout) */
    F_STORE = 1 << 5,        /* with a store: definitions and the message log in a
                                per-process directory on tmpfs, emptied before the run */
    F_RESTART = 1 << 6,      /* with F_STORE: afterwards, a new broker recovers it */
    F_EXTRAS = 1 << 7,       /* the vhost has the firehose on and three policies (see
                                policies[]) */
};

/* F_EXTRAS's policies, as the management API takes them. */
static const char *const policies[][2] = {
    { "p-queues", "{\"pattern\": \"^p\", \"apply-to\": \"queues\", \"priority\": 1,"
                  " \"definition\": {\"max-length\": 2, \"overflow\": \"reject-publish-dlx\","
                  " \"dead-letter-exchange\": \"amq.fanout\", \"message-ttl\": 60000,"
                  " \"delivery-limit\": 1}}" },
    { "alt-exchanges", "{\"pattern\": \"^alt\", \"apply-to\": \"exchanges\","
                       " \"definition\": {\"alternate-exchange\": \"amq.fanout\"}}" },
    { "everything", "{\"pattern\": \"\", \"apply-to\": \"all\", \"priority\": 0,"
                    " \"definition\": {\"expires\": 600000, \"retry-delays\": [0, 1],"
                    " \"dead-letter-exchange\": \"dlx\"}}" },
};

#define MAX_CONNS 4
#define SEGMENT_ITERS 64        /* loop iterations for the broker to read one segment */
#define FINAL_ITERS 256         /* ... and to release every connection at the end */
#define LINGER_MS 3             /* F_TIGHT: connections stay open this long at the end */
#define SEP_LEN 4
#define GEN_PREFIX "amq.gen-"   /* + 22 characters: a server-named queue */
#define GEN_LEN (8 + 22)
#define CTAG_PREFIX "amq.ctag-" /* + 22 characters: a generated consumer tag */
#define CTAG_LEN (9 + 22)
static const uint8_t sep[SEP_LEN] = { 0, 'S', 'B', '|' };

typedef struct client {
    int fd;                     /* our end of the socketpair; -1 before the first segment */
    sb_buf out;                 /* broker output not yet checked */
    bool started;               /* the first octets were seen */
} client;

typedef struct run {
    uint8_t flags;
    uint32_t frame_max;         /* offered by the broker */
    sb_loop *loop;
    sb_broker *broker;
    sb_sessions *sessions;
    sb_timer tick;
    client c[MAX_CONNS];
    int cur;                    /* the client being written to */
    const uint8_t *pend;        /* what is left of the segment being written */
    size_t pend_len;
    enum { STEP, LINGER, FINAL } phase;  /* writing a segment; waiting for timers with
                                            every connection open; every client half-closed */
    uint64_t linger_until;      /* loop time (ms) at which LINGER ends */
    unsigned iters, cap;
    sb_arena arena;             /* decodes of broker output */
    sb_buf seg;                 /* the segment being written, names rewritten */
    sb_store *store;            /* F_STORE */
    sb_io store_io;             /* the store's commit-done eventfd */
    bool synced;                /* this step waited for the store once */
    char last_queue[64];        /* the last server-named queue the broker reported */
    char last_ctag[64];         /* the last consumer tag it generated */
} run;

static char data_dir[64];       /* F_STORE's directory */
static sb_buf handshake[2];     /* [F_SMALL_FRAMES-less, with]; built once */
static sb_buf handshake_nocaps[2];
static uint32_t rnd_counter;
static bool trace;              /* SB_FUZZ_TRACE set: print what the broker sends */

/* The broker's only use of randomness is the direct reply-to token; a
 * counter makes it the same on every run (see the header comment). */
ssize_t getrandom(void *buf, size_t len, unsigned int flags);

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
    uint8_t *p = buf;

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(rnd_counter >> (8 * (i % 4)));
    rnd_counter++;
    return (ssize_t)len;
}

static void
fatal(const char *what, const client *c)
{
    fprintf(stderr, "fuzz_session: %s (connection output at %zu bytes)\n", what,
            c ? c->out.len : 0);
    abort();
}

/* ---- checking what the broker sends ---- */

static void
trace_method(const run *r, const client *c, uint16_t ch, const sb_amqp_method *m)
{
    fprintf(stderr, "conn %d ch %u <- %s", (int)(c - r->c), ch,
            sb_amqp_method_info_get(m->id)->name);
    if (m->id == SB_M_CONNECTION_CLOSE)
        fprintf(stderr, " %u %.*s", m->u.connection_close.reply_code,
                SB_STR_ARGS(m->u.connection_close.reply_text));
    else if (m->id == SB_M_CHANNEL_CLOSE)
        fprintf(stderr, " %u %.*s", m->u.channel_close.reply_code,
                SB_STR_ARGS(m->u.channel_close.reply_text));
    else if (m->id == SB_M_QUEUE_DECLARE_OK)
        fprintf(stderr, " %.*s", SB_STR_ARGS(m->u.queue_declare_ok.queue));
    else if (m->id == SB_M_BASIC_DELIVER)
        fprintf(stderr, " tag %llu rk %.*s", (unsigned long long)m->u.basic_deliver.delivery_tag,
                SB_STR_ARGS(m->u.basic_deliver.routing_key));
    fputc('\n', stderr);
}

/* Server-named queues and generated consumer tags mix addresses into
 * their names, so they differ from run to run; the harness remembers the
 * last of each and rewrites names of that shape in the input (see
 * replace_names) so that a seed can use them. */
static void
remember(char *dst, size_t n, sb_str name, const char *prefix, size_t len)
{
    if (name.len == len && name.len < n && memcmp(name.p, prefix, strlen(prefix)) == 0) {
        memcpy(dst, name.p, name.len);
        dst[name.len] = '\0';
    }
}

static void
learn_names(run *r, const sb_amqp_method *m)
{
    if (m->id == SB_M_QUEUE_DECLARE_OK)
        remember(r->last_queue, sizeof r->last_queue, m->u.queue_declare_ok.queue, GEN_PREFIX,
                 GEN_LEN);
    else if (m->id == SB_M_BASIC_CONSUME_OK)
        remember(r->last_ctag, sizeof r->last_ctag, m->u.basic_consume_ok.consumer_tag,
                 CTAG_PREFIX, CTAG_LEN);
}

static void
check_output(run *r, client *c)
{
    size_t off = 0;

    if (!c->started && c->out.len > 0) {
        if (c->out.data[0] == 'A') {
            /* The reply to a wrong protocol header: ours, then nothing. */
            if (c->out.len < 8)
                return;
            if (memcmp(c->out.data, sb_amqp_protocol_header, 8) != 0)
                fatal("broker sent a malformed protocol header", c);
            off = 8;
        }
        c->started = true;
    }
    for (;;) {
        sb_amqp_frame f;
        ssize_t n = sb_amqp_frame_parse(c->out.data + off, c->out.len - off, r->frame_max, &f);

        if (n == 0)
            break;
        if (n < 0)
            fatal("broker sent a frame that does not parse", c);
        if (f.type == SB_AMQP_FRAME_METHOD) {
            sb_amqp_method m;
            if (sb_amqp_method_decode(f.payload.p, f.payload.len, &m, &r->arena) != 0)
                fatal("broker sent a method that does not decode", c);
            if (trace)
                trace_method(r, c, f.channel, &m);
            learn_names(r, &m);
        } else if (f.type == SB_AMQP_FRAME_HEADER) {
            sb_amqp_header h;
            if (sb_amqp_header_decode(f.payload.p, f.payload.len, &h, &r->arena) != 0)
                fatal("broker sent a content header that does not decode", c);
        } else if (f.type != SB_AMQP_FRAME_BODY && f.type != SB_AMQP_FRAME_HEARTBEAT) {
            fatal("broker sent a frame of unknown type", c);
        }
        sb_arena_reset(&r->arena);
        off += (size_t)n;
    }
    sb_buf_consume(&c->out, off);
}

/* Reads everything the broker has written, so its writes never block. */
static void
drain(run *r, client *c)
{
    static uint8_t buf[64 * 1024];

    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        sb_buf_append(&c->out, buf, (size_t)n);
        check_output(r, c);
    }
}

/* ---- driving the loop ---- */

static void
pump(run *r)
{
    while (r->pend_len > 0) {
        ssize_t n = send(r->c[r->cur].fd, r->pend, r->pend_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {           /* the broker closed the connection */
            r->pend_len = 0;
            return;
        }
        r->pend += n;
        r->pend_len -= (size_t)n;
    }
}

/* Bytes written to fd that the broker has not read yet. */
static int
unread(int fd)
{
    int q = 0;

    if (ioctl(fd, SIOCOUTQ, &q) < 0)
        return 0;
    return q;
}

/* With a store, a step ends once everything logged is on disk (the
 * confirms that waited for it go out in the next iteration), so that
 * confirms do not depend on how fast the commit thread is. */
static bool
store_settled(run *r)
{
    if (r->store == NULL || r->synced)
        return true;
    sb_broker_before_sleep(r->broker);
    sb_store_sync(r->store);
    r->synced = true;
    return false;
}

static bool
step_done(run *r)
{
    if (r->phase == FINAL)
        return sb_sessions_count(r->sessions) == 0;
    if (r->phase == LINGER)
        return sb_loop_now(r->loop) >= r->linger_until;
    return r->pend_len == 0 && unread(r->c[r->cur].fd) == 0 && store_settled(r);
}

static void
tick(sb_loop *l, sb_timer *t)
{
}

static void
before_sleep(sb_loop *l, void *arg)
{
    run *r = arg;

    for (int i = 0; i < MAX_CONNS; i++)
        if (r->c[i].fd >= 0)
            drain(r, &r->c[i]);
    if (r->phase == STEP)
        pump(r);
    if (step_done(r) || ++r->iters >= r->cap) {
        sb_loop_stop(l);
        return;
    }
    /* epoll_wait must not sleep, except until the end of LINGER (the
     * broker's own timers wake it earlier). */
    sb_timer_start(l, &r->tick, r->phase == LINGER ? r->linger_until - sb_loop_now(l) : 0);
}

static void
run_loop(run *r, unsigned cap)
{
    r->iters = 0;
    r->synced = false;
    r->cap = cap;
    sb_timer_start(r->loop, &r->tick, 0);
    sb_loop_run(r->loop);
    sb_timer_stop(r->loop, &r->tick);
}

/* Replaces every prefix + (len - strlen(prefix)) octets in p with name. */
static void
replace_names(uint8_t *p, size_t len, const char *prefix, const char *name)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    uint8_t *q = p;

    if (nl == 0)
        return;
    while ((q = memmem(q, len - (size_t)(q - p), prefix, pl)) != NULL &&
           (size_t)(p + len - q) >= nl) {
        memcpy(q, name, nl);
        q += nl;
    }
}

static void
write_segment(run *r, int conn, const uint8_t *p, size_t len)
{
    /* What the broker said so far, for the names (it may not have been
     * read yet: the loop flushes after the before-sleep hooks). */
    for (int i = 0; i < MAX_CONNS; i++)
        if (r->c[i].fd >= 0)
            drain(r, &r->c[i]);
    sb_buf_reset(&r->seg);
    sb_buf_append(&r->seg, p, len);
    replace_names(r->seg.data, len, GEN_PREFIX, r->last_queue);
    replace_names(r->seg.data, len, CTAG_PREFIX, r->last_ctag);
    r->cur = conn;
    r->pend = r->seg.data;
    r->pend_len = len;
    run_loop(r, SEGMENT_ITERS);
}

static void
client_open(run *r, int i)
{
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(40000 + i)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    sb_conn *c;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        fatal("socketpair failed", NULL);
    if (sb_net__conn_new(r->loop, sv[0], (struct sockaddr *)&peer, sizeof peer, &c) < 0)
        fatal("sb_net__conn_new failed", NULL);
    sb_sessions_accept(NULL, c, r->sessions);
    sb_net__conn_accepted(c);
    r->c[i].fd = sv[1];
    if (r->flags & F_HANDSHAKE) {
        const sb_buf *h = r->flags & F_NO_CAPS ? handshake_nocaps : handshake;
        h += (r->flags & F_SMALL_FRAMES) ? 1 : 0;
        write_segment(r, i, h->data, h->len);
    }
}

/* ---- the store (F_STORE), wired as `serve` does (cli/serve_store.c) ---- */

static void
on_durable(void *arg, uint64_t pos, int err)
{
    run *r = arg;

    if (err == 0)
        sb_broker_durable(r->broker, pos);
    if (r->sessions != NULL)
        sb_sessions_durable(r->sessions, pos, err);
}

static void
on_commit_done(sb_loop *l, sb_io *io, uint32_t events)
{
    run *r = io->arg;

    sb_store_poll(r->store);
}

static void
store_before_sleep(sb_loop *l, void *arg)
{
    sb_broker_before_sleep(arg);
}

static void
wipe_data_dir(void)
{
    DIR *d = opendir(data_dir);
    struct dirent *e;
    char path[128];

    if (d == NULL)
        fatal("cannot open the data directory", NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", data_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Loads the definitions and the log from data_dir into b, as `serve` starts. */
static sb_store *
store_open(sb_broker *b, run *r)
{
    sb_store_opts o = { .segment_max_bytes = 64 << 10, .on_recover = sb_broker_recover_message,
                        .recover_arg = b, .on_durable = on_durable, .durable_arg = r };
    sb_store *st;

    if (sb_broker_load_definitions(b, data_dir) < 0 || sb_store_open(data_dir, &o, &st) < 0)
        fatal("cannot open the store", NULL);
    sb_broker_attach_store(b, st);
    return st;
}

static void
store_close(sb_broker *b, sb_store *st)
{
    sb_broker_before_sleep(b);
    if (sb_store_close(st) < 0)
        fatal("the store's last commit failed", NULL);
    sb_broker_attach_store(b, NULL);
}

/* ---- what must survive a restart ----
 * The durable exchanges, queues and bindings, one line each in a canonical
 * form (names hex-encoded, so no byte is lost in the comparison; arguments
 * as the definitions file renders them), sorted. */

typedef struct durable_set {
    sb_vhost *v;
    char **lines;
    size_t n, cap;
} durable_set;

static void
add_line(durable_set *d, const char *kind, const sb_str *names, size_t nnames, const char *flags,
         const sb_amqp_table *args)
{
    json_t *j = sb_json_from_table(args);
    char *a = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    sb_buf b = SB_BUF_INIT;

    sb_buf_append(&b, kind, strlen(kind));
    for (size_t i = 0; i < nnames; i++) {
        char hex[3];
        sb_buf_append(&b, " ", 1);
        for (size_t k = 0; k < names[i].len; k++) {
            snprintf(hex, sizeof hex, "%02x", names[i].p[k]);
            sb_buf_append(&b, hex, 2);
        }
    }
    sb_buf_append(&b, " ", 1);
    sb_buf_append(&b, flags, strlen(flags));
    sb_buf_append(&b, " ", 1);
    sb_buf_append(&b, a ? a : "?", strlen(a ? a : "?"));
    sb_buf_put_u8(&b, 0);
    free(a);
    json_decref(j);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->lines = realloc(d->lines, d->cap * sizeof *d->lines);
    }
    d->lines[d->n++] = strdup((const char *)b.data);
    sb_buf_free(&b);
}

static bool
queue_persists(sb_vhost *v, sb_str name)
{
    sb_queue_view q;

    return sb_vhost_queue_view(v, name, &q) && q.durable && !q.exclusive;
}

static bool
exchange_persists(sb_vhost *v, sb_str name)
{
    sb_exchange_view x;

    return name.len > 0 && !sb_str_has_prefix(name, "amq.") &&
           sb_vhost_exchange_view(v, name, &x) && x.durable;
}

static void
durable_queue(const sb_queue_view *q, void *ud)
{
    char flags[32];

    if (!q->durable || q->exclusive)
        return;
    snprintf(flags, sizeof flags, "ad=%d", q->auto_delete);
    add_line(ud, "Q", &q->name, 1, flags, q->args);
}

static void
durable_exchange(const sb_exchange_view *x, void *ud)
{
    sb_str names[2] = { x->name, sb_str_c(x->type) };
    char flags[32];

    if (!exchange_persists(((durable_set *)ud)->v, x->name))
        return;
    snprintf(flags, sizeof flags, "ad=%d in=%d", x->auto_delete, x->internal);
    add_line(ud, "X", names, 2, flags, x->args);
}

static void
durable_binding(const sb_binding_view *bv, void *ud)
{
    durable_set *d = ud;
    sb_str names[3] = { bv->source, bv->destination, bv->routing_key };

    if (!exchange_persists(d->v, bv->source) ||
        !(bv->is_to_exchange ? exchange_persists(d->v, bv->destination)
                             : queue_persists(d->v, bv->destination)))
        return;
    add_line(d, bv->is_to_exchange ? "BX" : "BQ", names, 3, "", bv->args);
}

static int
cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
durable_collect(sb_broker *b, durable_set *d)
{
    memset(d, 0, sizeof *d);
    d->v = sb_broker_vhost(b, SB_STR_LIT("/"));
    sb_vhost_each_queue(d->v, durable_queue, d);
    sb_vhost_each_exchange(d->v, durable_exchange, d);
    sb_vhost_each_binding(d->v, durable_binding, d);
    if (d->n > 1)
        qsort(d->lines, d->n, sizeof *d->lines, cmp_lines);
}

static void
durable_free(durable_set *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
}

static void
durable_compare(const durable_set *before, const durable_set *after)
{
    size_t i;

    for (i = 0; i < before->n && i < after->n; i++)
        if (strcmp(before->lines[i], after->lines[i]) != 0)
            break;
    if (i == before->n && i == after->n)
        return;
    fprintf(stderr, "fuzz_session: a restart did not bring back the durable definitions\n");
    for (size_t k = 0; k < before->n; k++)
        fprintf(stderr, "  before: %s\n", before->lines[k]);
    for (size_t k = 0; k < after->n; k++)
        fprintf(stderr, "  after:  %s\n", after->lines[k]);
    abort();
}

/* F_RESTART: a new broker recovers what the run left on disk, with a loop
 * for its timers (delayed messages are rearmed), as `serve` starts. What
 * was durable before must be there again. */
static void
restart(const sb_broker_limits *lim, const durable_set *before)
{
    sb_broker *b = sb_broker_new(lim);
    run none = { .broker = b };
    durable_set after;
    sb_loop *loop;

    if (sb_loop_new(&loop) < 0)
        fatal("sb_loop_new failed", NULL);
    sb_broker_set_loop(b, loop);
    sb_store *st = store_open(b, &none);
    durable_collect(b, &after);
    durable_compare(before, &after);
    durable_free(&after);
    store_close(b, st);
    sb_broker_free(b);
    sb_loop_free(loop);
}

/* ---- one run ---- */

static void
limits(uint8_t flags, sb_broker_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    lim->max_message_bytes = flags & F_TIGHT ? 1024 : 1u << 20;
    lim->queue_memory_window = flags & F_TIGHT ? 2 : 0;
    lim->trace_max_events = 64;     /* on, as by default, in a ring that wraps soon */
}

static void
set_extras(sb_broker *b)
{
    sb_vhost *v = sb_broker_vhost(b, SB_STR_LIT("/"));
    char why[256];

    sb_vhost_set_tracing(v, true);
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        json_t *j = json_loads(policies[i][1], 0, NULL);
        if (j == NULL || sb_policy_set(v, policies[i][0], j, why, sizeof why) != 0) {
            fprintf(stderr, "fuzz_session: policy %s: %s\n", policies[i][0],
                    j ? why : "not JSON");
            abort();
        }
        json_decref(j);
    }
}

static void
setup(run *r, uint8_t flags)
{
    sb_broker_limits lim;
    sb_session_opts o = {
        .channel_max = flags & F_TIGHT ? 8 : 2047,
        .frame_max = flags & F_TIGHT ? 8192 : 131072,
        .heartbeat = 60,
        .default_user = "guest",
        .default_pass = "guest",
        .loopback_users_only = true,
        .handshake_timeout_ms = 1000,
        .consumer_timeout_ms = flags & F_TIGHT ? 1 : 0,
        .memory_high_watermark = flags & F_ALARM ? 1 : 0,
        .memory_check_ms = 60000,
    };

    memset(r, 0, sizeof *r);
    limits(flags, &lim);
    r->flags = flags;
    r->frame_max = o.frame_max;
    for (int i = 0; i < MAX_CONNS; i++)
        r->c[i].fd = -1;
    if (sb_loop_new(&r->loop) < 0)
        fatal("sb_loop_new failed", NULL);
    r->broker = sb_broker_new(&lim);
    sb_broker_set_loop(r->broker, r->loop);
    r->sessions = sb_sessions_new(r->loop, r->broker, &o);
    sb_timer_init(&r->tick, tick, r);
    sb_loop_add_before_sleep(r->loop, before_sleep, r);
    if (flags & F_STORE) {
        wipe_data_dir();
        r->store = store_open(r->broker, r);
        r->store_io = (sb_io){ .fd = sb_store_fd(r->store), .events = EPOLLIN,
                               .cb = on_commit_done, .arg = r };
        if (sb_io_start(r->loop, &r->store_io) < 0)
            fatal("cannot watch the store", NULL);
        sb_loop_add_before_sleep(r->loop, store_before_sleep, r->broker);
    }
    if (flags & F_EXTRAS)       /* after the store: policies are saved with the definitions */
        set_extras(r->broker);
}

static void
teardown(run *r)
{
    sb_broker_limits lim;
    durable_set before = { 0 };

    sb_sessions_free(r->sessions);
    r->sessions = NULL;
    if (r->store != NULL && (r->flags & F_RESTART))
        durable_collect(r->broker, &before);
    if (r->store != NULL) {
        sb_io_stop(r->loop, &r->store_io);
        store_close(r->broker, r->store);
    }
    sb_broker_free(r->broker);
    sb_loop_free(r->loop);
    for (int i = 0; i < MAX_CONNS; i++) {
        if (r->c[i].fd >= 0)
            close(r->c[i].fd);
        sb_buf_free(&r->c[i].out);
    }
    sb_arena_free(&r->arena);
    sb_buf_free(&r->seg);
    if (r->store != NULL && (r->flags & F_RESTART)) {
        limits(r->flags, &lim);
        restart(&lim, &before);
    }
    durable_free(&before);
}

static const uint8_t *
find_sep(const uint8_t *p, size_t len)
{
    return len < SEP_LEN ? NULL : memmem(p, len, sep, SEP_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data + 1, *end = data + size;
    int conn = 0;
    run r;

    if (size == 0)
        return 0;
    rnd_counter = 0;
    setup(&r, data[0]);
    for (;;) {
        const uint8_t *s = find_sep(p, (size_t)(end - p));
        const uint8_t *seg_end = s ? s : end;

        if (r.c[conn].fd < 0)
            client_open(&r, conn);
        if (seg_end > p)
            write_segment(&r, conn, p, (size_t)(seg_end - p));
        if (s == NULL)
            break;
        p = s + SEP_LEN;
        if (p < end)
            conn = *p++ % MAX_CONNS;
    }
    if (r.flags & F_TIGHT) {
        /* Timers of a few ms (TTL, expiry, delays, retries, the consumer
         * timeout) fire while the connections are still there. */
        r.phase = LINGER;
        r.linger_until = sb_loop_now(r.loop) + LINGER_MS;
        run_loop(&r, FINAL_ITERS);
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (r.c[i].fd >= 0)
            shutdown(r.c[i].fd, SHUT_WR);
    r.phase = FINAL;
    run_loop(&r, FINAL_ITERS);
    teardown(&r);
    return 0;
}

/* ---- the handshake F_HANDSHAKE sends ---- */

static void
put_frames(sb_buf *b, bool small_frames, bool caps)
{
    sb_amqp_entry cap[4], props[2];
    sb_amqp_method m = { .id = SB_M_CONNECTION_START_OK };
    static const char plain[] = "\0guest\0guest";

    cap[0] = (sb_amqp_entry){ .key = sb_str_c("consumer_cancel_notify") };
    cap[1] = (sb_amqp_entry){ .key = sb_str_c("connection.blocked") };
    cap[2] = (sb_amqp_entry){ .key = sb_str_c("authentication_failure_close") };
    cap[3] = (sb_amqp_entry){ .key = sb_str_c("publisher_confirms") };
    for (int i = 0; i < 4; i++) {
        cap[i].v.kind = SB_FV_BOOL;
        cap[i].v.v.b = true;
    }
    props[0] = (sb_amqp_entry){ .key = sb_str_c("product") };
    props[0].v.kind = SB_FV_LONGSTR;
    props[0].v.v.s = sb_str_c("fuzz_session");
    props[1] = (sb_amqp_entry){ .key = sb_str_c("capabilities") };
    props[1].v.kind = SB_FV_TABLE;
    props[1].v.v.t = (sb_amqp_table){ .n = 4, .e = cap };
    sb_buf_append(b, sb_amqp_protocol_header, sizeof sb_amqp_protocol_header);
    m.u.connection_start_ok.client_properties = (sb_amqp_table){ .n = caps ? 2 : 1, .e = props };
    m.u.connection_start_ok.mechanism = sb_str_c("PLAIN");
    m.u.connection_start_ok.response = sb_str_make(plain, sizeof plain - 1);
    m.u.connection_start_ok.locale = sb_str_c("en_US");
    sb_amqp_method_frame_encode(b, 0, &m);
    m = (sb_amqp_method){ .id = SB_M_CONNECTION_TUNE_OK };
    m.u.connection_tune_ok.channel_max = 8;
    m.u.connection_tune_ok.frame_max = small_frames ? 4096 : 8192;
    m.u.connection_tune_ok.heartbeat = 0;
    sb_amqp_method_frame_encode(b, 0, &m);
    m = (sb_amqp_method){ .id = SB_M_CONNECTION_OPEN };
    m.u.connection_open.virtual_host = sb_str_c("/");
    sb_amqp_method_frame_encode(b, 0, &m);
    m = (sb_amqp_method){ .id = SB_M_CHANNEL_OPEN };
    sb_amqp_method_frame_encode(b, 1, &m);
}

static void
remove_data_dir(void)
{
    wipe_data_dir();
    rmdir(data_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *lvl = getenv("SB_FUZZ_LOG");

    trace = getenv("SB_FUZZ_TRACE") != NULL;

    /* The broker logs every refused login and closed connection. */
    sb_log_set_level(lvl && sb_log_parse_level(lvl) >= 0 ? (sb_log_level)sb_log_parse_level(lvl)
                                                         : SB_LOG_ERROR + 1);
    signal(SIGPIPE, SIG_IGN);
    snprintf(data_dir, sizeof data_dir, "%s/sb-fuzz-session-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(data_dir) == NULL)
        fatal("cannot make the data directory", NULL);
    atexit(remove_data_dir);
    for (int i = 0; i < 2; i++) {
        put_frames(&handshake[i], i == 1, true);
        put_frames(&handshake_nocaps[i], i == 1, false);
    }
    return 0;
}
