/* deliver.c - the AMQP side of consumers: encodes basic.deliver (and
 * get-ok, return) with the message's header in wire form and its body,
 * split at frame_max. Bodies above COPY_MAX are queued by reference, so a
 * message fanned out to many consumers is never copied. */
#include "session_int.h"

#include "../common/log.h"

#define COPY_MAX 4096
/* Above this much unsent output a consumer takes no more deliveries; the
 * net layer's drain callback resumes them (conn.c's high-water mark). */
#define OUTPUT_HIGH_WATER (4u << 20)

void
sb_session__send_content(sb_sconn *sc, uint16_t ch, const sb_amqp_method *m, sb_msg *msg)
{
    sb_buf *b = sb_conn_outbuf(sc->net);
    uint64_t chunk = sc->frame_max - SB_AMQP_FRAME_OVERHEAD, off;

    sb_amqp_method_frame_encode(b, ch, m);
    sb_amqp_header_frame_encode(b, ch, SB_CLASS_BASIC, msg->body_len, sb_msg_props(msg));
    for (off = 0; off < msg->body_len; off += chunk) {
        uint64_t n = msg->body_len - off < chunk ? msg->body_len - off : chunk;
        sb_amqp_frame_start_encode(b, SB_AMQP_FRAME_BODY, ch, (uint32_t)n);
        if (n <= COPY_MAX) {
            sb_buf_append(b, msg->body + off, n);
        } else {
            sb_conn_write_ref(sc->net, msg->body + off, n, &msg->rc);
            b = sb_conn_outbuf(sc->net);
        }
        sb_amqp_frame_end_encode(b);
    }
    sc->last_send_ms = sb_loop_now(sc->srv->loop);
}

static void
consumer_deliver(sb_consumer *c, const sb_deliver_info *d, void *ud)
{
    sb_chan *ch = ud;
    sb_amqp_method m = { .id = SB_M_BASIC_DELIVER };

    m.u.basic_deliver.consumer_tag = d->consumer_tag;
    m.u.basic_deliver.delivery_tag = d->delivery_tag;
    m.u.basic_deliver.redelivered = d->redelivered;
    m.u.basic_deliver.exchange = sb_msg_exchange(d->msg);
    m.u.basic_deliver.routing_key = sb_msg_rk(d->msg);
    sb_session__send_content(ch->conn, ch->id, &m, d->msg);
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
