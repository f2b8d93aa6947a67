/* conn_amqp.c - one AMQP connection: protocol header, the start/tune/open
 * handshake, frame splitting, heartbeats, and the close handshakes. */
#include "session_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "auth.h"

#define SB_VERSION "0.1.0"
#define CLOSE_OK_TIMEOUT_MS 3000

static void conn_closed(sb_conn *c, int err, void *ud);
static size_t conn_data(sb_conn *c, const uint8_t *data, size_t len, void *ud);
static void conn_drain(sb_conn *c, void *ud);
static void sconn_release(sb_sconn *sc);

static const sb_conn_ops amqp_conn_ops = {
    .on_data = conn_data,
    .on_close = conn_closed,
    .on_drain = conn_drain,
};

void
sb_session__send(sb_sconn *sc, uint16_t ch, const sb_amqp_method *m)
{
    sb_amqp_method_frame_encode(sb_conn_outbuf(sc->net), ch, m);
    sc->last_send_ms = sb_loop_now(sc->srv->loop);
}

/* ---- connection.start ---- */

static void
put_bool(sb_amqp_entry *e, const char *key, bool v)
{
    e->key = sb_str_c(key);
    e->v.kind = SB_FV_BOOL;
    e->v.v.b = v;
}

static void
put_str(sb_amqp_entry *e, const char *key, const char *v)
{
    e->key = sb_str_c(key);
    e->v.kind = SB_FV_LONGSTR;
    e->v.v.s = sb_str_c(v);
}

static void
send_start(sb_sconn *sc)
{
    static const char *const caps[] = {
        "publisher_confirms", "exchange_exchange_bindings", "basic.nack",
        "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
        "authentication_failure_close", "per_consumer_qos", "direct_reply_to",
    };
    sb_amqp_entry cap[sizeof caps / sizeof caps[0]], props[7];
    sb_amqp_method m = { .id = SB_M_CONNECTION_START };
    sb_m_connection_start *s = &m.u.connection_start;
    size_t i;

    for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
        put_bool(&cap[i], caps[i], true);
    props[0].key = sb_str_c("capabilities");
    props[0].v.kind = SB_FV_TABLE;
    props[0].v.v.t = (sb_amqp_table){ .n = (uint32_t)i, .e = cap };
    put_str(&props[1], "cluster_name", SB_NODE_NAME);
    put_str(&props[2], "copyright", "Copyright (c) the Switchboard developers");
    put_str(&props[3], "information", "Switchboard, a small AMQP 0-9-1 broker");
    put_str(&props[4], "platform", "C");
    put_str(&props[5], "product", "Switchboard");
    put_str(&props[6], "version", SB_VERSION);
    s->version_major = 0;
    s->version_minor = 9;
    s->server_properties = (sb_amqp_table){ .n = 7, .e = props };
    s->mechanisms = sb_str_c(sb_auth_mechanisms(sb_conn_is_tls(sc->net)));
    s->locales = sb_str_c("en_US");
    sb_session__send(sc, 0, &m);
}

/* ---- closing ---- */

static void
deadline_fired(sb_loop *l, sb_timer *t)
{
    sb_sconn *sc = t->arg;

    if (sc->state == SC_CLOSING || sc->state == SC_CLOSED)
        sb_log(SB_LOG_DEBUG, "amqp", "%s: no connection.close-ok in time", sb_conn_peer(sc->net));
    else
        sb_log(SB_LOG_WARN, "amqp", "%s: handshake timed out", sb_conn_peer(sc->net));
    sc->state = SC_CLOSED;
    sb_conn_abort(sc->net);
}

/* Sends connection.close and waits (bounded) for close-ok. Every channel
 * is released at once, as RabbitMQ does. */
static void
conn_close_with(sb_sconn *sc, int code, const char *text, uint16_t class_id, uint16_t method_id)
{
    sb_amqp_method m = { .id = SB_M_CONNECTION_CLOSE };
    char full[512];

    if (sc->state == SC_CLOSING || sc->state == SC_CLOSED)
        return;
    snprintf(full, sizeof full, "%s - %s", sb_reply_name(code), text);
    m.u.connection_close.reply_code = (uint16_t)code;
    m.u.connection_close.reply_text = sb_str_make(full, strlen(full) > 255 ? 255 : strlen(full));
    m.u.connection_close.class_id = class_id;
    m.u.connection_close.method_id = method_id;
    sb_session__send(sc, 0, &m);
    for (size_t i = 0; i < sc->nchans; i++)
        if (sc->chans[i] != NULL)
            sb_session__chan_free(sc->chans[i]);
    sc->state = SC_CLOSING;
    sb_timer_stop(sc->srv->loop, &sc->hb_timer);
    sb_timer_start(sc->srv->loop, &sc->deadline_timer, CLOSE_OK_TIMEOUT_MS);
}

void
sb_session__conn_fail(sb_sconn *sc, int code, const sb_error *err)
{
    sb_log(SB_LOG_WARN, "amqp", "%s: closing connection: %s - %s", sb_conn_peer(sc->net),
           sb_reply_name(code), err->text);
    conn_close_with(sc, code, err->text, err->class_id, err->method_id);
}

static void
fail(sb_sconn *sc, int code, uint32_t method, const char *fmt, const char *arg)
{
    sb_error err = { .class_id = (uint16_t)(method >> 16), .method_id = (uint16_t)method };

    sb_error_set(&err, code, fmt, arg);
    sb_session__conn_fail(sc, code, &err);
}

/* ---- heartbeats ---- */

/* Fires every heartbeat interval: sends a heartbeat if we have been
 * silent, and drops a peer silent for two intervals (as RabbitMQ). */
static void
heartbeat_tick(sb_loop *l, sb_timer *t)
{
    sb_sconn *sc = t->arg;
    uint64_t now = sb_loop_now(l), iv = (uint64_t)sc->heartbeat * 1000u;

    if (now - sc->last_recv_ms >= 2 * iv) {
        sb_log(SB_LOG_WARN, "amqp", "%s: missed heartbeats from client, timeout: %us",
               sb_conn_peer(sc->net), sc->heartbeat);
        sc->state = SC_CLOSED;
        sb_conn_abort(sc->net);
        return;
    }
    if (now - sc->last_send_ms >= iv / 2) {
        sb_amqp_heartbeat_encode(sb_conn_outbuf(sc->net));
        sc->last_send_ms = now;
    }
    sb_timer_start(l, t, iv / 2 ? iv / 2 : 1);
}

/* ---- handshake ---- */

void
sb_session__on_connection_start_ok(sb_sconn *sc, const sb_m_connection_start_ok *m)
{
    const sb_amqp_value *caps = sb_amqp_table_get(&m->client_properties, "capabilities");
    sb_session_opts *o = &sc->srv->opts;
    sb_amqp_method tune = { .id = SB_M_CONNECTION_TUNE };
    sb_auth_result ar;

    if (caps && caps->kind == SB_FV_TABLE) {
        const sb_amqp_value *v = sb_amqp_table_get(&caps->v.t, "consumer_cancel_notify");
        sc->cap_cancel_notify = v && v->kind == SB_FV_BOOL && v->v.b;
        v = sb_amqp_table_get(&caps->v.t, "authentication_failure_close");
        sc->cap_auth_failure_close = v && v->kind == SB_FV_BOOL && v->v.b;
        v = sb_amqp_table_get(&caps->v.t, "connection.blocked");
        sc->cap_blocked = v && v->kind == SB_FV_BOOL && v->v.b;
    }
    ar = sb_auth_check(o, sb_broker_auth(sc->srv->broker), m->mechanism, m->response,
                       sb_conn_peer_is_loopback(sc->net), sb_conn_is_tls(sc->net),
                       sb_conn_peer_cert_cn(sc->net), sc->user, sizeof sc->user, &sc->arena);
    if (ar != SB_AUTH_OK) {
        char text[300];
        sb_log(SB_LOG_WARN, "amqp", "%s: %s", sb_conn_peer(sc->net), sb_auth_describe(ar));
        snprintf(text, sizeof text,
                 "Login was refused using authentication mechanism %.*s. "
                 "For details see the broker logfile.", SB_STR_ARGS(m->mechanism));
        if (!sc->cap_auth_failure_close) {
            sc->state = SC_CLOSED;
            sb_conn_close(sc->net);
            return;
        }
        fail(sc, SB_ACCESS_REFUSED, 0, "%s", text);
        return;
    }
    sb_session__mgmt_started(sc, m);
    tune.u.connection_tune.channel_max = o->channel_max;
    tune.u.connection_tune.frame_max = o->frame_max;
    tune.u.connection_tune.heartbeat = o->heartbeat;
    sb_session__send(sc, 0, &tune);
    sc->state = SC_AWAIT_TUNE_OK;
}

/* RabbitMQ closes the socket without a connection.close when tune-ok asks
 * for more than it offered (0 means "no limit", which is more) or for a
 * frame_max below the spec's minimum. */
void
sb_session__on_connection_tune_ok(sb_sconn *sc, const sb_m_connection_tune_ok *m)
{
    sb_session_opts *o = &sc->srv->opts;
    const char *why = NULL;

    if (m->frame_max < SB_AMQP_FRAME_MIN_SIZE && m->frame_max != 0)
        why = "frame_max below 4096";
    else if (m->frame_max == 0 || m->frame_max > o->frame_max)
        why = "frame_max above the server's";
    else if (m->channel_max == 0 || m->channel_max > o->channel_max)
        why = "channel_max above the server's";
    if (why != NULL) {
        sb_log(SB_LOG_WARN, "amqp", "%s: refused connection.tune-ok: %s", sb_conn_peer(sc->net),
               why);
        sc->state = SC_CLOSED;
        sb_conn_close(sc->net);
        return;
    }
    sc->frame_max = sc->bc.frame_max = m->frame_max;
    sc->channel_max = sc->bc.channel_max = m->channel_max;
    sc->heartbeat = sc->bc.heartbeat = m->heartbeat;
    sc->state = SC_AWAIT_OPEN;
}

void
sb_session__on_connection_open(sb_sconn *sc, const sb_m_connection_open *m)
{
    sb_amqp_method ok = { .id = SB_M_CONNECTION_OPEN_OK };
    char name[256];

    sc->vhost = sb_broker_vhost(sc->srv->broker, m->virtual_host);
    if (sc->vhost == NULL) {
        snprintf(name, sizeof name, "%.*s", SB_STR_ARGS(m->virtual_host));
        fail(sc, SB_NOT_ALLOWED, SB_M_CONNECTION_OPEN, "vhost %s not found", name);
        return;
    }
    /* RabbitMQ lets a user into a vhost where it has any permissions at
     * all; what it may do there is checked per operation. */
    sb_access_init(&sc->access, sb_broker_auth(sc->srv->broker), sc->user,
                   sb_vhost_name(sc->vhost));
    if (!sb_access_vhost_ok(&sc->access)) {
        snprintf(name, sizeof name, "access to vhost '%s' refused for user '%s'",
                 sb_vhost_name(sc->vhost), sc->user);
        sc->vhost = NULL;
        fail(sc, SB_NOT_ALLOWED, SB_M_CONNECTION_OPEN, "%s", name);
        return;
    }
    sb_session__send(sc, 0, &ok);
    sc->bc.vhost = sc->vhost;
    sc->state = SC_OPEN;
    sb_timer_stop(sc->srv->loop, &sc->deadline_timer);
    if (sc->heartbeat > 0)
        sb_timer_start(sc->srv->loop, &sc->hb_timer, (uint64_t)sc->heartbeat * 500u);
}

/* On an open connection, or on one we are closing (both close at once:
 * the channels are gone already). */
void
sb_session__on_connection_close(sb_sconn *sc, const sb_m_connection_close *m)
{
    sb_amqp_method ok = { .id = SB_M_CONNECTION_CLOSE_OK };

    sb_session__send(sc, 0, &ok);
    for (size_t i = 0; i < sc->nchans; i++)
        if (sc->chans[i] != NULL)
            sb_session__chan_free(sc->chans[i]);
    sc->state = SC_CLOSED;
    sb_conn_close(sc->net);
}

/* Only while closing: the client's answer to our connection.close. */
void
sb_session__on_connection_close_ok(sb_sconn *sc, const sb_m_connection_close_ok *m)
{
    sc->state = SC_CLOSED;
    sb_conn_close(sc->net);
}

/* The credentials are not re-checked: the user stays who it was. */
void
sb_session__on_connection_update_secret(sb_sconn *sc, const sb_m_connection_update_secret *m)
{
    sb_amqp_method ok = { .id = SB_M_CONNECTION_UPDATE_SECRET_OK };

    sb_session__send(sc, 0, &ok);
}

/* A client telling us it is blocked: nothing to do. */
void
sb_session__on_connection_blocked(sb_sconn *sc, const sb_m_connection_blocked *m)
{
}

void
sb_session__on_connection_unblocked(sb_sconn *sc, const sb_m_connection_unblocked *m)
{
}

int
sb_session__conn_refuse(sb_sconn_state state, const sb_dispatch *d, sb_error *err)
{
    const char *expected = NULL;

    err->class_id = (uint16_t)(d->id >> 16);
    err->method_id = (uint16_t)d->id;
    if (state == SC_CLOSING)
        return 0; /* we sent connection.close: all but close and close-ok is dropped */
    if (state == SC_OPEN)
        return sb_error_set(err, SB_CHANNEL_ERROR,
                            "unexpected method in connection state running");
    /* A handshake state accepts exactly one method: name it. */
    for (size_t i = 0; i < sb_session__dispatch_count; i++)
        if (sb_session__dispatch_rows[i].conn_states == SB_IN(state))
            expected = sb_session__dispatch_rows[i].name;
    sb_assert(expected != NULL);
    return sb_error_set(err, SB_COMMAND_INVALID, "expected %s", expected);
}

/* A method on channel 0, by connection state. */
static void
conn_method(sb_sconn *sc, const sb_amqp_method *m)
{
    const sb_dispatch *d = sb_session__dispatch_get(m->id);
    sb_error err = { 0 };
    int rc;

    sb_assert(d != NULL); /* the codec decodes only methods of the spec */
    if (d->conn_states & SB_IN(sc->state)) {
        d->on_conn(sc, m);
        return;
    }
    if ((rc = sb_session__conn_refuse(sc->state, d, &err)) != 0)
        sb_session__conn_fail(sc, rc, &err);
}

/* ---- frames ---- */

/* RabbitMQ's text for a method frame it cannot decode:
 * "cannot decode <<args>>", naming the class and method when known. */
void
sb_session__decode_error(sb_sconn *sc, sb_str payload, int rc)
{
    uint32_t id = payload.len >= 4 ? (uint32_t)payload.p[0] << 24 | (uint32_t)payload.p[1] << 16 |
                                         (uint32_t)payload.p[2] << 8 | payload.p[3]
                                   : 0;
    char bin[200];

    if (rc == SB_AMQP_EUNKNOWN) {
        fail(sc, SB_COMMAND_INVALID, 0, "%s", "unknown method");
        return;
    }
    if (rc == SB_AMQP_EUTF8) {
        fail(sc, SB_FRAME_ERROR, 0, "%s", "Malformed UTF-8 in shortstr");
        return;
    }
    sb_amqp_fmt_binary(bin, sizeof bin,
                       payload.len >= 4 ? sb_str_make(payload.p + 4, payload.len - 4) : payload);
    fail(sc, SB_FRAME_ERROR, id, "cannot decode %s", bin);
}

static void
handle_frame(sb_sconn *sc, const sb_amqp_frame *f)
{
    sb_amqp_method m;
    int rc;

    if (f->type == SB_AMQP_FRAME_HEARTBEAT) {
        if (f->channel != 0 && sc->state == SC_OPEN)
            fail(sc, SB_UNEXPECTED_FRAME, 0, "%s", "type 8, all octets = <<>>");
        return;
    }
    if (f->channel != 0) {
        if (sc->state == SC_OPEN)
            sb_session__chan_frame(sc, f);
        else if (sc->state != SC_CLOSING)
            fail(sc, SB_COMMAND_INVALID, 0, "%s", "channel frame before connection.open");
        return;
    }
    if (f->type != SB_AMQP_FRAME_METHOD) {
        fail(sc, SB_UNEXPECTED_FRAME, 0, "%s", "expected method frame, got non method frame instead");
        return;
    }
    rc = sb_amqp_method_decode(f->payload.p, f->payload.len, &m, &sc->arena);
    if (rc < 0) {
        if (sc->state != SC_CLOSING)
            sb_session__decode_error(sc, f->payload, rc);
        return;
    }
    conn_method(sc, &m);
}

/* RabbitMQ's text for a frame that cannot be split off the stream.
 * Returns 0 and fills text, or 1 when more bytes are needed to say it. */
static int
frame_error_text(const uint8_t *d, size_t len, ssize_t rc, uint32_t frame_max, char *text,
                 size_t n)
{
    uint32_t size;
    char bin[200];

    if (len < 7)
        return rc == SB_AMQP_EFRAME_TYPE ? 1 : (snprintf(text, n, "malformed frame"), 0);
    size = (uint32_t)d[3] << 24 | (uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6];
    if (rc == SB_AMQP_ETOO_BIG) {
        snprintf(text, n, "type %u, all octets = <<>>: {frame_too_large,%u,%u}", d[0], size,
                 frame_max - SB_AMQP_FRAME_OVERHEAD);
        return 0;
    }
    if (rc == SB_AMQP_EFRAME_TYPE && (uint64_t)size + SB_AMQP_FRAME_OVERHEAD <= frame_max &&
        len < (size_t)size + SB_AMQP_FRAME_OVERHEAD)
        return 1;
    if (len >= (size_t)size + SB_AMQP_FRAME_OVERHEAD)
        sb_amqp_fmt_binary(bin, sizeof bin, sb_str_make(d + 7, size));
    else
        snprintf(bin, sizeof bin, "<<>>");
    if (rc == SB_AMQP_EFRAME_END)
        snprintf(text, n, "type %u, all octets = %s: {invalid_frame_end_marker,%u}", d[0], bin,
                 d[7 + size]);
    else
        snprintf(text, n, "type %u, all octets = %s: unknown_frame", d[0], bin);
    return 0;
}

/* A frame that cannot be split off: the stream cannot be resynchronised,
 * so the connection ends (with a connection.close once it is open, as
 * RabbitMQ; silently during the handshake). Returns 0 if more bytes are
 * needed first. */
static int
stream_error(sb_sconn *sc, const uint8_t *d, size_t len, ssize_t rc, uint32_t frame_max)
{
    char text[256];

    if (frame_error_text(d, len, rc, frame_max, text, sizeof text))
        return 0;
    if (sc->state == SC_OPEN)
        fail(sc, SB_FRAME_ERROR, 0, "%s", text);
    else
        sb_log(SB_LOG_WARN, "amqp", "%s: %s", sb_conn_peer(sc->net), text);
    sc->state = SC_CLOSED;
    sb_conn_close(sc->net);
    return 1;
}

/* Returns bytes consumed of the protocol header, or len when the
 * connection is being closed because the header was wrong. */
static size_t
check_header(sb_sconn *sc, const uint8_t *data, size_t len)
{
    ssize_t n = sb_amqp_protocol_header_check(data, len);

    if (n == 0)
        return 0;
    if (n < 0) {
        sb_conn_write(sc->net, sb_amqp_protocol_header, sizeof sb_amqp_protocol_header);
        sc->state = SC_CLOSED;
        sb_conn_close(sc->net);
        return len;
    }
    send_start(sc);
    sc->state = SC_AWAIT_START_OK;
    return (size_t)n;
}

static size_t
conn_data(sb_conn *c, const uint8_t *data, size_t len, void *ud)
{
    sb_sconn *sc = ud;
    size_t used = 0;

    sc->last_recv_ms = sb_loop_now(sc->srv->loop);
    if (sc->state == SC_AWAIT_HEADER) {
        used = check_header(sc, data, len);
        if (used == 0 || sc->state == SC_CLOSED)
            return used;
    }
    while (used < len && sc->state != SC_CLOSED) {
        uint32_t frame_max = sc->state == SC_OPEN ? sc->frame_max : sc->srv->opts.frame_max;
        sb_amqp_frame f;
        ssize_t n = sb_amqp_frame_parse(data + used, len - used, frame_max, &f);

        if (n == 0 || (n < 0 && !stream_error(sc, data + used, len - used, n, frame_max)))
            break;
        if (n < 0)
            return len;
        used += (size_t)n;
        sc->bc.recv_cnt++;
        handle_frame(sc, &f);
        sb_arena_reset(&sc->arena);
        if (sc->pause_pending && sc->state == SC_OPEN) {
            /* Blocked by the memory alarm: the rest waits in our input
             * buffer and the socket until reading resumes. */
            sc->pause_pending = false;
            sc->paused = true;
            sb_conn_pause_read(c, true);
            break;
        }
    }
    sb_session__flush_confirms(sc);
    sc->bc.recv_oct += used;
    return sc->state == SC_CLOSED ? len : used;
}

static void
conn_drain(sb_conn *c, void *ud)
{
    sb_sconn *sc = ud;

    for (size_t i = 0; i < sc->nchans; i++)
        if (sc->chans[i] != NULL && sc->chans[i]->state == CH_OPEN)
            sb_bchan_resume(sc->chans[i]->b);
}

static void
conn_closed(sb_conn *c, int err, void *ud)
{
    sconn_release(ud);
}

/* Frees sc and everything it holds in the broker (channels, whose unacked
 * deliveries are requeued; its exclusive queues). */
static void
sconn_release(sb_sconn *sc)
{
    for (size_t i = 0; i < sc->nchans; i++)
        if (sc->chans[i] != NULL)
            sb_session__chan_free(sc->chans[i]);
    if (sc->has_exclusive && sc->vhost != NULL)
        sb_vhost_drop_owner(sc->vhost, sc);
    sb_timer_stop(sc->srv->loop, &sc->hb_timer);
    sb_timer_stop(sc->srv->loop, &sc->deadline_timer);
    sb_list_remove(&sc->link);
    sc->srv->count--;
    sb_session__mgmt_unregister(sc);
    sb_access_free(&sc->access);
    sb_arena_free(&sc->arena);
    sb_buf_free(&sc->scratch);
    sb_free(sc->chans);
    sb_free(sc);
}

/* ---- the server ---- */

/* Before a vhost or a user is deleted: its connections are closed with
 * 320, as RabbitMQ closes them ("vhost 'v' is deleted", "user 'u' is
 * deleted"). Channels go at once (conn_close_with), so nothing of theirs
 * is left in the vhost when its queues are destroyed next. */
static void
broker_event(void *arg, sb_broker_event ev, sb_vhost *v, const char *user)
{
    sb_sessions *s = arg;
    sb_list *it, *tmp;
    char text[300];

    sb_list_foreach_safe(it, tmp, &s->conns) {
        sb_sconn *sc = SB_CONTAINER_OF(it, sb_sconn, link);
        bool hit = ev == SB_BROKER_VHOST_DELETING ? sc->vhost == v && v != NULL
                                                  : sc->state > SC_AWAIT_START_OK &&
                                                        strcmp(sc->user, user) == 0;
        if (!hit || sc->state == SC_CLOSED)
            continue;
        if (ev == SB_BROKER_VHOST_DELETING)
            snprintf(text, sizeof text, "vhost '%s' is deleted", sb_vhost_name(v));
        else
            snprintf(text, sizeof text, "user '%s' is deleted", user);
        if (sc->state == SC_OPEN) {
            sb_log(SB_LOG_INFO, "amqp", "%s: closing connection: %s", sb_conn_peer(sc->net), text);
            conn_close_with(sc, SB_CONNECTION_FORCED, text, 0, 0);
        } else if (sc->state != SC_CLOSING) {
            sc->state = SC_CLOSED;
            sb_conn_close(sc->net);
        }
        if (ev == SB_BROKER_VHOST_DELETING) {
            /* Its exclusive queues go with the vhost. */
            sc->vhost = sc->bc.vhost = NULL;
            sc->has_exclusive = false;
        }
    }
}

sb_sessions *
sb_sessions_new(sb_loop *loop, sb_broker *broker, const sb_session_opts *opts)
{
    sb_sessions *s = sb_calloc(1, sizeof *s);

    s->loop = loop;
    s->broker = broker;
    s->opts = *opts;
    sb_list_init(&s->conns);
    sb_list_init(&s->durable_waiters);
    sb_session__alarm_start(s);
    sb_session__ack_timeout_start(s);
    sb_broker_watch(broker, broker_event, s);
    /* A no-op unless the user database is new (`serve` loads the saved one,
     * which replaces this): embedders and tests get their user here. */
    sb_broker_default_user(broker, opts->default_user, opts->default_pass);
    return s;
}

void
sb_sessions_accept(sb_listener *ls, sb_conn *c, void *arg)
{
    sb_sessions *s = arg;
    sb_sconn *sc;

    if (s->opts.max_connections && s->count >= s->opts.max_connections) {
        sb_log(SB_LOG_WARN, "amqp", "%s: refused: connection limit %u reached", sb_conn_peer(c),
               s->opts.max_connections);
        sb_conn_abort(c);
        return;
    }
    sc = sb_calloc(1, sizeof *sc);
    sc->srv = s;
    sc->net = c;
    sc->id = ++s->next_id;
    sc->state = SC_AWAIT_HEADER;
    sc->frame_max = s->opts.frame_max;
    sb_list_init(&sc->confirm_dirty);
    sb_timer_init(&sc->hb_timer, heartbeat_tick, sc);
    sb_timer_init(&sc->deadline_timer, deadline_fired, sc);
    sb_timer_start(s->loop, &sc->deadline_timer, s->opts.handshake_timeout_ms);
    sb_list_push_back(&s->conns, &sc->link);
    s->count++;
    sb_session__mgmt_register(sc);
    sb_conn_set_ops(c, &amqp_conn_ops, sc);
}

void
sb_session__conn_force(sb_sconn *sc, const char *reason)
{
    if (sc->state == SC_OPEN) {
        conn_close_with(sc, SB_CONNECTION_FORCED, reason, 0, 0);
    } else if (sc->state != SC_CLOSED && sc->state != SC_CLOSING) {
        sc->state = SC_CLOSED;
        sb_conn_close(sc->net);
    }
}

void
sb_sessions_shutdown(sb_sessions *s, const char *reason)
{
    sb_list *it, *tmp;

    sb_list_foreach_safe(it, tmp, &s->conns)
        sb_session__conn_force(SB_CONTAINER_OF(it, sb_sconn, link), reason);
}

size_t
sb_sessions_count(const sb_sessions *s)
{
    return s->count;
}

void
sb_sessions_free(sb_sessions *s)
{
    sb_list *it, *tmp;

    static const sb_conn_ops detached = { 0 };

    sb_session__alarm_stop(s);
    sb_session__ack_timeout_stop(s);
    sb_broker_unwatch(s->broker, broker_event, s);
    /* The net layer reports closes later, from the loop; by then s and
     * the broker may be gone, so each connection is released here and
     * detached from its socket first. */
    sb_list_foreach_safe(it, tmp, &s->conns) {
        sb_sconn *sc = SB_CONTAINER_OF(it, sb_sconn, link);
        sb_conn *c = sc->net;
        sconn_release(sc);
        sb_conn_set_ops(c, &detached, NULL);
        sb_conn_abort(c);
    }
    sb_free(s);
}
