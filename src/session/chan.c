/* chan.c - AMQP channels: opening one, the frame sequence rules (method,
 * then header, then body frames), dispatch of methods through the
 * generated table (dispatch_gen.c) to the per-method handlers of
 * on_<class>.c, and the one place reply codes become closes. */
#include "session_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"

sb_chan *
sb_session__chan_new(sb_sconn *sc, uint16_t id)
{
    sb_chan *ch = sb_calloc(1, sizeof *ch);

    if (id >= sc->nchans) {
        size_t n = sc->nchans ? sc->nchans : 8;
        while (n <= id)
            n *= 2;
        sc->chans = sb_realloc(sc->chans, n * sizeof *sc->chans);
        memset(sc->chans + sc->nchans, 0, (n - sc->nchans) * sizeof *sc->chans);
        sc->nchans = n;
    }
    ch->conn = sc;
    ch->id = id;
    ch->state = CH_OPEN;
    ch->b = sb_bchan_new(sc->srv->broker, sc->vhost, sc);
    sb_bchan_set_who(ch->b, sb_conn_peer(sc->net), sc->user, id);
    sb_list_init(&ch->dirty_link);
    sb_list_init(&ch->wait_link);
    sb_list_init(&ch->tx_ops);
    sc->chans[id] = ch;
    return ch;
}

/* Releases the channel's broker state (requeueing unacked deliveries)
 * and its slot. */
void
sb_session__chan_free(sb_chan *ch)
{
    sb_sconn *sc = ch->conn;

    sb_bchan_free(ch->b);
    sb_msg_unref(ch->pub_msg);
    sb_session__tx_clear(ch);
    sb_list_remove(&ch->dirty_link);
    sb_session__confirm_waiting_free(ch);
    sc->chans[ch->id] = NULL;
    sb_free(ch);
}

/* Sends channel.close and keeps the slot, ignoring everything but
 * close/close-ok until the client answers. The broker state goes now. */
static void
chan_close(sb_chan *ch, int code, const sb_error *err)
{
    sb_amqp_method m = { .id = SB_M_CHANNEL_CLOSE };
    char full[512];
    size_t n;

    n = (size_t)snprintf(full, sizeof full, "%s - %s", sb_reply_name(code), err->text);
    m.u.channel_close.reply_code = (uint16_t)code;
    m.u.channel_close.reply_text = sb_str_make(full, n > 255 ? 255 : n);
    m.u.channel_close.class_id = err->class_id;
    m.u.channel_close.method_id = err->method_id;
    sb_session__send(ch->conn, ch->id, &m);
    sb_bchan_free(ch->b);
    ch->b = NULL;
    sb_msg_unref(ch->pub_msg);
    ch->pub_msg = NULL;
    ch->ca = CA_NONE;
    sb_session__tx_clear(ch);
    sb_list_remove(&ch->dirty_link);
    sb_session__confirm_waiting_free(ch);
    ch->state = CH_CLOSING;
}

/* The only code that turns reply codes into closes. */
static void
chan_fail(sb_sconn *sc, sb_chan *ch, int code, sb_error *err, uint32_t method)
{
    err->class_id = (uint16_t)(method >> 16);
    err->method_id = (uint16_t)method;
    if (ch == NULL || sb_reply_is_hard(code)) {
        sb_session__conn_fail(sc, code, err);
        return;
    }
    sb_log(SB_LOG_DEBUG, "amqp", "%s: closing channel %u: %s - %s", sb_conn_peer(sc->net),
           ch->id, sb_reply_name(code), err->text);
    chan_close(ch, code, err);
}

/* The existing refusals: a connection method on a channel is named as
 * such, any other method is "unexpected". */
int
sb_session__chan_refuse(const sb_dispatch *d, sb_error *err)
{
    if (d->id >> 16 == SB_CLASS_CONNECTION)
        return sb_error_set(err, SB_COMMAND_INVALID, "unexpected method %s on a channel",
                            d->name);
    return sb_error_set(err, SB_COMMAND_INVALID, "unexpected method %s", d->name);
}

/* A frame for a channel that is not open: only channel.open is valid. It
 * is handled here, since it creates the sb_chan that the table dispatches
 * to; the handler in its row sees a second open on an open channel. */
static void
closed_channel_frame(sb_sconn *sc, const sb_amqp_frame *f, const sb_amqp_method *m)
{
    sb_error err = { 0 };
    sb_amqp_method ok = { .id = SB_M_CHANNEL_OPEN_OK };

    if (m != NULL && m->id == SB_M_CHANNEL_OPEN) {
        if (f->channel > sc->channel_max) {
            sb_error_set(&err, SB_CHANNEL_ERROR, "channel number %u exceeds channel_max %u",
                         f->channel, sc->channel_max);
            chan_fail(sc, NULL, SB_CHANNEL_ERROR, &err, m->id);
            return;
        }
        sb_session__chan_new(sc, f->channel);
        sb_session__send(sc, f->channel, &ok);
        return;
    }
    sb_error_set(&err, SB_CHANNEL_ERROR, "expected 'channel.open'");
    chan_fail(sc, NULL, SB_CHANNEL_ERROR, &err, m ? m->id : 0);
}

/* RabbitMQ's texts for a frame out of the method-header-body sequence. */
static const char *
sequence_error(sb_content_state ca)
{
    switch (ca) {
    case CA_HEADER:
        return "expected content header for class 60, got non content header frame instead";
    case CA_BODY:
        return "expected content body, got non content body frame instead";
    default:
        return "expected method frame, got non method frame instead";
    }
}

/* A header or body frame. Returns 0, or a reply code with err set and
 * *method set to the method to name in the close. */
static int
content_frame(sb_chan *ch, const sb_amqp_frame *f, sb_error *err, uint32_t *method)
{
    *method = ch->ca == CA_NONE ? 0 : SB_M_BASIC_PUBLISH;
    if (f->type == SB_AMQP_FRAME_HEADER && ch->ca == CA_HEADER) {
        uint16_t cls = f->payload.len >= 2 ? (uint16_t)(f->payload.p[0] << 8 | f->payload.p[1]) : 0;
        if (cls != SB_CLASS_BASIC)
            return sb_error_set(err, SB_UNEXPECTED_FRAME,
                                "expected content header for class 60, got one for class %u instead",
                                cls);
        return sb_session__content_header(ch, f, err);
    }
    if (f->type == SB_AMQP_FRAME_BODY && ch->ca == CA_BODY)
        return sb_session__content_body(ch, f, err);
    return sb_error_set(err, SB_UNEXPECTED_FRAME, "%s", sequence_error(ch->ca));
}

void
sb_session__chan_frame(sb_sconn *sc, const sb_amqp_frame *f)
{
    sb_chan *ch = f->channel < sc->nchans ? sc->chans[f->channel] : NULL;
    const sb_dispatch *d;
    sb_amqp_method m, *mp = NULL;
    sb_error err = { 0 };
    int rc;

    if (f->type == SB_AMQP_FRAME_METHOD) {
        rc = sb_amqp_method_decode(f->payload.p, f->payload.len, &m, &sc->arena);
        if (rc < 0) {
            sb_session__decode_error(sc, f->payload, rc);
            return;
        }
        mp = &m;
    }
    if (ch == NULL) {
        closed_channel_frame(sc, f, mp);
        return;
    }
    if (mp == NULL) {
        uint32_t method;
        if (ch->state == CH_CLOSING)
            return;
        rc = content_frame(ch, f, &err, &method);
        if (rc != 0)
            chan_fail(sc, ch, rc, &err, method);
        return;
    }
    if (ch->ca != CA_NONE) { /* never on a closing channel: chan_close resets ca */
        sb_error_set(&err, SB_UNEXPECTED_FRAME, "%s", sequence_error(ch->ca));
        chan_fail(sc, ch, SB_UNEXPECTED_FRAME, &err, SB_M_BASIC_PUBLISH);
        return;
    }
    d = sb_session__dispatch_get(m.id);
    sb_assert(d != NULL); /* the codec decodes only methods of the spec */
    if (d->chan_states & SB_IN(ch->state))
        rc = d->on_chan(ch, &m, &err); /* may free ch; then returns 0 */
    else if (ch->state == CH_CLOSING)
        return; /* we sent channel.close: all but close and close-ok is dropped */
    else
        rc = sb_session__chan_refuse(d, &err);
    if (rc != 0)
        chan_fail(sc, ch, rc, &err, m.id);
}

void
sb_session__chan_error(sb_chan *ch, int code, sb_error *err, uint32_t method)
{
    chan_fail(ch->conn, ch, code, err, method);
}
