/* deliver.c - the AMQP side of consumers: encodes basic.deliver (and
 * get-ok, return) with the message's header in wire form and its body,
 * split at frame_max. Bodies above COPY_MAX are queued by reference, so a
 * message fanned out to many consumers is never copied. */
#include "session_int.h"

#include <string.h>

#include "../common/log.h"

#define COPY_MAX 4096
/* Above this much unsent output a consumer takes no more deliveries; the
 * net layer's drain callback resumes them (conn.c's high-water mark). */
#define OUTPUT_HIGH_WATER (4u << 20)

/* Big-endian stores for the hand-written frames below. */
static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
    p = put_u16(p, (uint16_t)(v >> 16));
    return put_u16(p, (uint16_t)v);
}

static uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)(v >> 32));
    return put_u32(p, (uint32_t)v);
}

/* Shortstrs longer than 255 are cut, as the generated encoder does. */
static uint8_t *
put_shortstr(uint8_t *p, sb_str s)
{
    size_t n = s.len > 255 ? 255 : s.len;

    *p++ = (uint8_t)n;
    memcpy(p, s.p, n);
    return p + n;
}

static uint8_t *
put_frame_start(uint8_t *p, uint8_t type, uint16_t ch, uint32_t size)
{
    *p++ = type;
    p = put_u16(p, ch);
    return put_u32(p, size);
}

/* The content header frame (the stored props forwarded as is) and the
 * body frames, split at frame_max. */
static void
send_header_body(sb_sconn *sc, sb_buf *b, uint16_t ch, sb_msg *msg)
{
    uint64_t chunk = sc->frame_max - SB_AMQP_FRAME_OVERHEAD, off;
    sb_str props = sb_msg_props(msg);
    /* class(2) weight(2) body size(8) */
    uint32_t hsize = (uint32_t)(12 + props.len);
    uint8_t *p = sb_buf_extend(b, SB_AMQP_FRAME_OVERHEAD + hsize);

    p = put_frame_start(p, SB_AMQP_FRAME_HEADER, ch, hsize);
    p = put_u16(p, SB_CLASS_BASIC);
    p = put_u16(p, 0);
    p = put_u64(p, msg->body_len);
    memcpy(p, props.p, props.len);
    p[props.len] = SB_AMQP_FRAME_END;
    for (off = 0; off < msg->body_len; off += chunk) {
        uint64_t n = msg->body_len - off < chunk ? msg->body_len - off : chunk;
        if (n <= COPY_MAX) {
            p = sb_buf_extend(b, SB_AMQP_FRAME_OVERHEAD + n);
            p = put_frame_start(p, SB_AMQP_FRAME_BODY, ch, (uint32_t)n);
            memcpy(p, sb_msg_body(msg) + off, n);
            p[n] = SB_AMQP_FRAME_END;
        } else {
            sb_amqp_frame_start_encode(b, SB_AMQP_FRAME_BODY, ch, (uint32_t)n);
            sb_conn_write_ref(sc->net, sb_msg_body(msg) + off, n, &msg->rc);
            b = sb_conn_outbuf(sc->net);
            sb_amqp_frame_end_encode(b);
        }
    }
    sc->last_send_ms = sb_loop_now(sc->srv->loop);
}

void
sb_session__send_content(sb_sconn *sc, uint16_t ch, const sb_amqp_method *m, sb_msg *msg)
{
    sb_buf *b = sb_conn_outbuf(sc->net);

    sb_amqp_method_frame_encode(b, ch, m);
    send_header_body(sc, b, ch, msg);
}

/* basic.deliver runs once per delivered message, so its method frame is
 * written here in one piece rather than field by field through
 * sb_amqp_method_frame_encode; the bytes are the same. */
static void
consumer_deliver(sb_consumer *c, const sb_deliver_info *d, void *ud)
{
    sb_chan *ch = ud;
    sb_sconn *sc = ch->conn;
    sb_buf *b = sb_conn_outbuf(sc->net);
    sb_str tag = d->consumer_tag, ex = sb_msg_exchange(d->msg), rk = sb_msg_rk(d->msg);
    size_t tn = tag.len > 255 ? 255 : tag.len, en = ex.len > 255 ? 255 : ex.len,
           rn = rk.len > 255 ? 255 : rk.len;
    /* class(2) method(2) tag(1+) delivery-tag(8) bits(1) exchange(1+) key(1+) */
    uint32_t size = (uint32_t)(4 + 1 + tn + 8 + 1 + 1 + en + 1 + rn);
    uint8_t *p = sb_buf_extend(b, SB_AMQP_FRAME_OVERHEAD + size);

    p = put_frame_start(p, SB_AMQP_FRAME_METHOD, ch->id, size);
    p = put_u16(p, SB_CLASS_BASIC);
    p = put_u16(p, (uint16_t)(SB_M_BASIC_DELIVER & 0xffff));
    p = put_shortstr(p, tag);
    p = put_u64(p, d->delivery_tag);
    *p++ = d->redelivered ? 1 : 0;
    p = put_shortstr(p, ex);
    p = put_shortstr(p, rk);
    *p = SB_AMQP_FRAME_END;
    send_header_body(sc, b, ch->id, d->msg);
}

static bool
consumer_writable(sb_consumer *c, void *ud)
{
    sb_chan *ch = ud;

    return sb_conn_pending(ch->conn->net) < OUTPUT_HIGH_WATER;
}

/* The queue was deleted under the consumer: tell clients that asked for
 * consumer_cancel_notify (RabbitMQ's basic.cancel from the server). */
static void
consumer_cancelled(sb_consumer *c, void *ud)
{
    sb_chan *ch = ud;
    sb_amqp_method m = { .id = SB_M_BASIC_CANCEL };

    if (!ch->conn->cap_cancel_notify || ch->state != CH_OPEN)
        return;
    m.u.basic_cancel.consumer_tag = sb_consumer_tag(c);
    m.u.basic_cancel.nowait = true;
    sb_session__send(ch->conn, ch->id, &m);
}

const sb_consumer_ops sb_session__consumer_ops = {
    .deliver = consumer_deliver,
    .writable = consumer_writable,
    .cancelled = consumer_cancelled,
};
