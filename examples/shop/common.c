/* common.c - connection, topology, calls, confirmed publishes (common.h). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <amqp_tcp_socket.h>

/* The background services' queues: each durable, bound to order.placed,
 * retried after 100, 200 and 400 ms, then dead-lettered to <name>.dead.
 * Declared here only (the Python service consumes without declaring), so
 * every declaration carries identical arguments. */
static const char *const services[] = { "inventory", "shipping", "notifications" };
static const int retry_delays_ms[] = { 100, 200, 400 };

void
shop_log(const char *who, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s[%d]: %s\n", who, (int)getpid(), line);
}

long long
shop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
shop_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* True for a normal reply; otherwise logs what failed. */
static int
ok(shop_conn *sc, amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        shop_log(sc->who, "%s: %s", what, amqp_error_string2(r.library_error));
    else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_bytes_t t = r.reply.id == AMQP_CHANNEL_CLOSE_METHOD
            ? ((amqp_channel_close_t *)r.reply.decoded)->reply_text
            : ((amqp_connection_close_t *)r.reply.decoded)->reply_text;
        shop_log(sc->who, "%s: %.*s", what, (int)t.len, (const char *)t.bytes);
    } else
        shop_log(sc->who, "%s: failed", what);
    return 0;
}

static amqp_table_entry_t
entry(const char *key, amqp_field_value_t v)
{
    amqp_table_entry_t e = { amqp_cstring_bytes(key), v };
    return e;
}

static amqp_field_value_t
str_value(const char *s)
{
    amqp_field_value_t v;

    v.kind = AMQP_FIELD_KIND_UTF8;
    v.value.bytes = amqp_cstring_bytes(s);
    return v;
}

static int
declare_service_queue(shop_conn *sc, const char *name)
{
    enum { NDELAYS = sizeof retry_delays_ms / sizeof retry_delays_ms[0] };
    amqp_field_value_t delays[NDELAYS], arr;
    amqp_table_entry_t e[3];
    amqp_table_t args = { 3, e };
    char dead[64];

    /* 64-bit elements, as pika sends them. (Any integer width works: the
     * broker compares integer arguments by value, inside arrays too.) */
    for (int i = 0; i < NDELAYS; i++) {
        delays[i].kind = AMQP_FIELD_KIND_I64;
        delays[i].value.i64 = retry_delays_ms[i];
    }
    arr.kind = AMQP_FIELD_KIND_ARRAY;
    arr.value.array.num_entries = NDELAYS;
    arr.value.array.entries = delays;
    e[0] = entry("x-dead-letter-exchange", str_value(SHOP_DEAD_EXCHANGE));
    e[1] = entry("x-dead-letter-routing-key", str_value(name));
    e[2] = entry("x-retry-delays", arr);
    snprintf(dead, sizeof dead, "%s.dead", name);

    amqp_queue_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), name))
        return -1;
    amqp_queue_bind(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(name),
                    amqp_cstring_bytes(SHOP_EXCHANGE), amqp_cstring_bytes(SHOP_EVENT_KEY),
                    amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "queue.bind"))
        return -1;
    amqp_queue_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(dead), 0, 1, 0, 0,
                       amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), dead))
        return -1;
    amqp_queue_bind(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(dead),
                    amqp_cstring_bytes(SHOP_DEAD_EXCHANGE), amqp_cstring_bytes(name),
                    amqp_empty_table);
    return ok(sc, amqp_get_rpc_reply(sc->c), "queue.bind") ? 0 : -1;
}

/* Everything the shop needs, declared idempotently by every service, so
 * they can start in any order and after a broker restart. */
static int
declare_topology(shop_conn *sc)
{
    amqp_exchange_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(SHOP_EXCHANGE),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "exchange " SHOP_EXCHANGE))
        return -1;
    amqp_exchange_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(SHOP_DEAD_EXCHANGE),
                          amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "exchange " SHOP_DEAD_EXCHANGE))
        return -1;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        if (declare_service_queue(sc, services[i]) < 0)
            return -1;
    /* The call queues are transient: their requests expire in seconds. */
    amqp_queue_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes("orders"), 0, 0, 0, 0,
                       amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "queue orders"))
        return -1;
    amqp_queue_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes("payments"), 0, 0, 0, 0,
                       amqp_empty_table);
    return ok(sc, amqp_get_rpc_reply(sc->c), "queue payments") ? 0 : -1;
}

static int
open_channels(shop_conn *sc, const char *serve_queue, int declare_serve, int prefetch)
{
    for (amqp_channel_t ch = 1; ch <= 3; ch++) {
        amqp_channel_open(sc->c, ch);
        if (!ok(sc, amqp_get_rpc_reply(sc->c), "channel.open"))
            return -1;
    }
    if (declare_topology(sc) < 0)
        return -1;
    amqp_confirm_select(sc->c, SHOP_CH_EVENTS);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "confirm.select"))
        return -1;
    sc->confirm_seq = 0;
    /* Direct reply-to: consume the pseudo-queue, no-ack, on the channel
     * that publishes the requests. */
    amqp_basic_consume(sc->c, SHOP_CH_CALL, amqp_cstring_bytes("amq.rabbitmq.reply-to"),
                       amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "consume amq.rabbitmq.reply-to"))
        return -1;
    if (serve_queue == NULL)
        return 0;
    if (declare_serve) {
        amqp_queue_declare(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(serve_queue), 0, 0, 0, 0,
                           amqp_empty_table);
        if (!ok(sc, amqp_get_rpc_reply(sc->c), serve_queue))
            return -1;
    }
    amqp_basic_qos(sc->c, SHOP_CH_SERVE, 0, (uint16_t)prefetch, 0);
    if (!ok(sc, amqp_get_rpc_reply(sc->c), "basic.qos"))
        return -1;
    amqp_basic_consume(sc->c, SHOP_CH_SERVE, amqp_cstring_bytes(serve_queue), amqp_empty_bytes,
                       0, 0, 0, amqp_empty_table);
    return ok(sc, amqp_get_rpc_reply(sc->c), serve_queue) ? 0 : -1;
}

static int
try_connect(shop_conn *sc, struct amqp_connection_info *ci, const char *serve_queue,
            int declare_serve, int prefetch)
{
    amqp_socket_t *s;

    sc->c = amqp_new_connection();
    if ((s = amqp_tcp_socket_new(sc->c)) == NULL || amqp_socket_open(s, ci->host, ci->port) != 0)
        return -1;
    /* heartbeat 5 s: a half-open connection is noticed even while idle. */
    if (!ok(sc, amqp_login(sc->c, ci->vhost, 0, 131072, 5, AMQP_SASL_METHOD_PLAIN, ci->user,
                           ci->password), "login"))
        return -1;
    return open_channels(sc, serve_queue, declare_serve, prefetch);
}

void
shop_connect(shop_conn *sc, const char *url, const char *who, const char *serve_queue,
             int declare_serve, int prefetch)
{
    char buf[512];
    struct amqp_connection_info ci;
    int attempts = 0;

    if (url == NULL)
        url = getenv("AMQP_URL");
    snprintf(buf, sizeof buf, "%s", url ? url : "amqp://guest:guest@localhost:5672/");
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK) {
        shop_log(who, "bad URL '%s'", url);
        exit(2);
    }
    if (ci.vhost == NULL || ci.vhost[0] == '\0')
        ci.vhost = "/";               /* "amqp://host/" means the default vhost here */
    sc->who = who;
    for (;;) {
        if (try_connect(sc, &ci, serve_queue, declare_serve, prefetch) == 0)
            break;
        amqp_destroy_connection(sc->c);
        sc->c = NULL;
        if (attempts++ % 20 == 0)
            shop_log(who, "broker not reachable at %s:%d, retrying", ci.host, ci.port);
        shop_sleep_ms(100);
    }
    shop_log(who, "connected%s%s", serve_queue ? ", serving " : "", serve_queue ? serve_queue : "");
}

static void
copy_bytes(char *out, size_t outlen, amqp_bytes_t b)
{
    size_t n = b.len < outlen - 1 ? b.len : outlen - 1;

    memcpy(out, b.bytes, n);
    out[n] = '\0';
}

static long long
int_header(const amqp_basic_properties_t *p, const char *key, long long dflt)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return dflt;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != strlen(key) || memcmp(e->key.bytes, key, e->key.len) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8: return e->value.value.i8;
        case AMQP_FIELD_KIND_U8: return e->value.value.u8;
        case AMQP_FIELD_KIND_I16: return e->value.value.i16;
        case AMQP_FIELD_KIND_U16: return e->value.value.u16;
        case AMQP_FIELD_KIND_I32: return e->value.value.i32;
        case AMQP_FIELD_KIND_U32: return e->value.value.u32;
        case AMQP_FIELD_KIND_I64: return e->value.value.i64;
        case AMQP_FIELD_KIND_U64: return (long long)e->value.value.u64;
        default: return dflt;
        }
    }
    return dflt;
}

/* The string value of header key into out ("" if absent or not a string). */
static void
str_header(const amqp_basic_properties_t *p, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len == strlen(key) && memcmp(e->key.bytes, key, e->key.len) == 0 &&
            (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)) {
            copy_bytes(out, outlen, e->value.value.bytes);
            return;
        }
    }
}

/* The traceparent for something sent while handling a traced message: the
 * same trace id (and flags) with a new span id of our own, into out (56
 * bytes). Returns 0 when there is no trace to continue. */
static int
child_traceparent(const shop_conn *sc, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char span[8];

    /* 00-<32 hex trace id>-<16 hex span id>-<2 hex flags> */
    if (strlen(sc->trace) != 55 || sc->trace[2] != '-' || sc->trace[52] != '-')
        return 0;
    if (getrandom(span, sizeof span, 0) != (ssize_t)sizeof span)
        for (size_t i = 0; i < sizeof span; i++)
            span[i] = (unsigned char)(lrand48() | 1);
    memcpy(out, sc->trace, 56);
    memcpy(out, "00", 2);
    for (int i = 0; i < 8; i++) {
        out[36 + 2 * i] = hex[span[i] >> 4];
        out[37 + 2 * i] = hex[span[i] & 15];
    }
    return 1;
}

/* Adds the traceparent entry (from child_traceparent) to p's headers,
 * whose entries are in e[0..*n) with room for one more. */
static void
add_trace_header(const shop_conn *sc, amqp_basic_properties_t *p, amqp_table_entry_t *e,
                 int *n, char *buf)
{
    if (!child_traceparent(sc, buf))
        return;
    e[*n] = entry("traceparent", str_value(buf));
    (*n)++;
    p->_flags |= AMQP_BASIC_HEADERS_FLAG;
    p->headers.num_entries = *n;
    p->headers.entries = e;
}

static void
fill_msg(shop_msg *m, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    char exp[32] = "";

    memset(m, 0, sizeof *m);
    m->len = env->message.body.len;
    m->body = malloc(m->len + 1);
    if (m->body == NULL)
        abort();
    memcpy(m->body, env->message.body.bytes, m->len);
    m->body[m->len] = '\0';
    if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
        copy_bytes(m->reply_to, sizeof m->reply_to, p->reply_to);
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        copy_bytes(m->corr_id, sizeof m->corr_id, p->correlation_id);
    if (p->_flags & AMQP_BASIC_EXPIRATION_FLAG)
        copy_bytes(exp, sizeof exp, p->expiration);
    m->expiration_ms = exp[0] ? atol(exp) : -1;
    m->deadline_ms = int_header(p, "x-deadline-ms", -1);
    m->retry_count = int_header(p, "x-retry-count", 0);
    str_header(p, "traceparent", m->traceparent, sizeof m->traceparent);
    m->tag = env->delivery_tag;
    m->redelivered = env->redelivered;
}

void
shop_msg_free(shop_msg *m)
{
    free(m->body);
    m->body = NULL;
}

/* One delivery or one other frame, waiting at most timeout_ms (-1: no
 * limit). Returns 1 with *env (caller destroys it), 2 with *frame, 0 on
 * timeout, -1 when the connection is lost or closed by the broker. */
static int
next_event(shop_conn *sc, long timeout_ms, amqp_envelope_t *env, amqp_frame_t *frame)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    amqp_rpc_reply_t r;

    amqp_maybe_release_buffers(sc->c);
    r = amqp_consume_message(sc->c, env, timeout_ms < 0 ? NULL : &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return -1;
    if (r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
        return -1;
    /* Not a delivery: read the frame that amqp_consume_message put back. */
    if (amqp_simple_wait_frame(sc->c, frame) != AMQP_STATUS_OK)
        return -1;
    if (frame->frame_type == AMQP_FRAME_METHOD &&
        (frame->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         frame->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        shop_log(sc->who, "closed by the broker");
        return -1;
    }
    return 2;
}

static long
remaining_ms(long long deadline)
{
    long long left = deadline - shop_now_ms();
    return left > 0 ? (long)left : 0;
}

int
shop_next(shop_conn *sc, int timeout_ms, shop_msg *m)
{
    long long deadline = shop_now_ms() + timeout_ms;

    for (;;) {
        amqp_envelope_t env;
        amqp_frame_t frame;
        int rc = next_event(sc, timeout_ms < 0 ? -1 : remaining_ms(deadline), &env, &frame);

        if (rc <= 0)
            return rc;
        if (rc == 1) {
            int mine = env.channel == SHOP_CH_SERVE;
            if (mine)
                fill_msg(m, &env);   /* a late reply on channel 2 is dropped */
            amqp_destroy_envelope(&env);
            if (mine)
                return 1;
        }
    }
}

int
shop_ack(shop_conn *sc, uint64_t tag)
{
    return amqp_basic_ack(sc->c, SHOP_CH_SERVE, tag, 0) == 0 ? 0 : -1;
}

int
shop_reject(shop_conn *sc, uint64_t tag)
{
    return amqp_basic_reject(sc->c, SHOP_CH_SERVE, tag, 0) == 0 ? 0 : -1;
}

int
shop_call(shop_conn *sc, const char *queue, const char *body, long budget_ms, shop_msg *reply)
{
    amqp_basic_properties_t p;
    amqp_table_entry_t hdr[2];
    long long deadline = shop_now_ms() + budget_ms;
    char corr[64], exp[32], tp[64];
    int nhdr = 1;

    snprintf(corr, sizeof corr, "%d-%llu", (int)getpid(), (unsigned long long)++sc->call_seq);
    snprintf(exp, sizeof exp, "%ld", budget_ms);
    hdr[0].key = amqp_cstring_bytes("x-deadline-ms");
    hdr[0].value.kind = AMQP_FIELD_KIND_I64;
    hdr[0].value.value.i64 = deadline;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
               AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_HEADERS_FLAG |
               AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to");
    p.correlation_id = amqp_cstring_bytes(corr);
    p.expiration = amqp_cstring_bytes(exp);
    p.content_type = amqp_cstring_bytes("application/json");
    p.headers.num_entries = nhdr;
    p.headers.entries = hdr;
    add_trace_header(sc, &p, hdr, &nhdr, tp);
    if (amqp_basic_publish(sc->c, SHOP_CH_CALL, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0,
                           &p, amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
        return -1;
    for (;;) {
        amqp_envelope_t env;
        amqp_frame_t frame;
        long left = remaining_ms(deadline);
        int rc = left > 0 ? next_event(sc, left, &env, &frame) : 0;

        if (rc <= 0)
            return rc == 0 ? 1 : -1;
        if (rc == 1) {
            amqp_bytes_t c = env.message.properties.correlation_id;
            int match = env.channel == SHOP_CH_CALL &&
                        (env.message.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
                        c.len == strlen(corr) && memcmp(c.bytes, corr, c.len) == 0;
            if (match)
                fill_msg(reply, &env);
            amqp_destroy_envelope(&env);   /* else: a reply to a call we gave up on */
            if (match)
                return 0;
        }
    }
}

int
shop_reply(shop_conn *sc, const shop_msg *req, const char *body)
{
    amqp_basic_properties_t p;
    amqp_table_entry_t hdr[1];
    char tp[64];
    int nhdr = 0;

    if (req->reply_to[0] == '\0')
        return 0;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.correlation_id = amqp_cstring_bytes(req->corr_id);
    p.content_type = amqp_cstring_bytes("application/json");
    add_trace_header(sc, &p, hdr, &nhdr, tp);
    return amqp_basic_publish(sc->c, SHOP_CH_SERVE, amqp_empty_bytes,
                              amqp_cstring_bytes(req->reply_to), 0, 0, &p,
                              amqp_cstring_bytes(body)) == AMQP_STATUS_OK ? 0 : -1;
}

int
shop_publish_confirmed(shop_conn *sc, const char *exchange, const char *key, const char *body,
                       long timeout_ms)
{
    amqp_basic_properties_t p;
    amqp_table_entry_t hdr[1];
    long long deadline = shop_now_ms() + timeout_ms;
    char tp[64];
    int nhdr = 0;
    uint64_t seq;

    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.content_type = amqp_cstring_bytes("application/json");
    add_trace_header(sc, &p, hdr, &nhdr, tp);
    if (amqp_basic_publish(sc->c, SHOP_CH_EVENTS, amqp_cstring_bytes(exchange),
                           amqp_cstring_bytes(key), 0, 0, &p,
                           amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
        return -1;
    seq = ++sc->confirm_seq;
    for (;;) {
        amqp_envelope_t env;
        amqp_frame_t f;
        long left = remaining_ms(deadline);
        int rc = left > 0 ? next_event(sc, left, &env, &f) : 0;

        if (rc <= 0)
            return rc == 0 ? 1 : -1;
        if (rc == 1) {                /* a late call reply: nobody waits for it */
            amqp_destroy_envelope(&env);
            continue;
        }
        if (f.frame_type != AMQP_FRAME_METHOD || f.channel != SHOP_CH_EVENTS)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == seq || (a->multiple && a->delivery_tag >= seq))
                return 0;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            amqp_basic_nack_t *n = f.payload.method.decoded;
            if (n->delivery_tag == seq || (n->multiple && n->delivery_tag >= seq))
                return 1;
        }
    }
}

int
shop_append_line(const char *path, const char *line)
{
    char buf[600];
    int fd, n, rc = 0;

    n = snprintf(buf, sizeof buf, "%s\n", line);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -EINVAL;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        return -errno;
    if (write(fd, buf, (size_t)n) != n)
        rc = -EIO;
    close(fd);
    return rc;
}

void
shop_json_str(const char *body, const char *key, char *out, size_t outlen)
{
    char pat[80];
    const char *p, *end;
    size_t n;

    out[0] = '\0';
    snprintf(pat, sizeof pat, "\"%s\"", key);
    if ((p = strstr(body, pat)) == NULL)
        return;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    if (*p++ != '"' || (end = strchr(p, '"')) == NULL)
        return;
    n = (size_t)(end - p) < outlen - 1 ? (size_t)(end - p) : outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* One message: handle, answer, ack or reject. Returns -1 on a lost connection. */
static int
serve_one(shop_service *s, shop_msg *m)
{
    char reply[1024] = "";
    int act, rc;

    /* What the service sends while handling m continues m's trace. */
    snprintf(s->conn.trace, sizeof s->conn.trace, "%s", m->traceparent);
    act = s->handle(s, m, reply, sizeof reply);
    if (act == SHOP_LOST)
        rc = -1;
    else if (act == SHOP_ACK && reply[0] != '\0' && shop_reply(&s->conn, m, reply) < 0)
        rc = -1;
    else
        rc = act == SHOP_ACK ? shop_ack(&s->conn, m->tag) : shop_reject(&s->conn, m->tag);
    s->conn.trace[0] = '\0';
    return rc;
}

void
shop_serve_forever(shop_service *s)
{
    for (;;) {
        shop_connect(&s->conn, s->url, s->who, s->queue, s->declare_queue, s->prefetch);
        for (;;) {
            shop_msg m;
            int rc = shop_next(&s->conn, -1, &m);

            if (rc < 0)
                break;
            if (rc == 0)
                continue;
            rc = serve_one(s, &m);
            shop_msg_free(&m);
            if (rc < 0)
                break;
        }
        shop_log(s->who, "connection lost, reconnecting");
        amqp_destroy_connection(s->conn.c);   /* no close handshake: it is gone */
        s->conn.c = NULL;
        shop_sleep_ms(100);
    }
}

long
shop_arg_long(const char *who, const char *opt, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0' || n < 0) {
        fprintf(stderr, "%s: %s wants a non-negative integer, not '%s'\n", who, opt, v);
        exit(2);
    }
    return n;
}
