/* on_basic.c - the basic class: qos, consume, cancel, publish, get, ack,
 * nack, reject, recover. Called from dispatch_gen.c; basic.publish and
 * basic.ack are the hot path. */
#include "session_int.h"

#include <string.h>

#include "../common/alloc.h"

int
sb_session__on_basic_qos(sb_chan *ch, const sb_m_basic_qos *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_BASIC_QOS_OK };
    int rc;

    if ((rc = sb_bchan_qos(ch->b, m->prefetch_size, m->prefetch_count, m->global, err)) != 0)
        return rc;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_basic_consume(sb_chan *ch, const sb_m_basic_consume *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_BASIC_CONSUME_OK };
    const sb_amqp_value *prio = sb_amqp_table_get(&m->arguments, "x-priority");
    sb_consume_req req = {
        .queue = m->queue, .tag = m->consumer_tag, .no_ack = m->no_ack,
        .exclusive = m->exclusive, .ops = &sb_session__consumer_ops, .ud = ch,
    };
    char tag[256];
    sb_consumer *c;
    int64_t p;
    int rc;

    if (req.queue.len == 0) {
        if (ch->last_queue[0] == '\0')
            return sb_error_set(err, SB_NOT_FOUND, "no previously declared queue");
        req.queue = sb_str_c(ch->last_queue);
    }
    /* Read on the queue; the direct reply-to pseudo-queue is the caller's own. */
    if (!sb_str_eq_c(req.queue, SB_REPLY_TO_QUEUE) &&
        (rc = sb_access_check(&ch->conn->access, SB_PERM_READ, "queue", req.queue, err)) != 0)
        return rc;
    if (prio != NULL) {
        if (!sb_amqp_value_int(prio, &p))
            return sb_error_set(err, SB_PRECONDITION_FAILED,
                                "invalid arg 'x-priority' for consumer: expected an integer");
        req.priority = (int32_t)p;
    }
    if ((rc = sb_bchan_consume(ch->b, &req, tag, &c, err)) != 0)
        return rc;
    if (!m->nowait) {
        r.u.basic_consume_ok.consumer_tag = sb_str_c(tag);
        sb_session__send(ch->conn, ch->id, &r);
    }
    sb_consumer_start(c);
    return 0;
}

int
sb_session__on_basic_cancel(sb_chan *ch, const sb_m_basic_cancel *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_BASIC_CANCEL_OK };

    /* RabbitMQ answers cancel-ok even for an unknown tag. */
    sb_bchan_cancel(ch->b, m->consumer_tag);
    if (!m->nowait) {
        r.u.basic_cancel_ok.consumer_tag = m->consumer_tag;
        sb_session__send(ch->conn, ch->id, &r);
    }
    return 0;
}

int
sb_session__on_basic_publish(sb_chan *ch, const sb_m_basic_publish *m, sb_error *err)
{
    return sb_session__publish_start(ch, m, err);
}

int
sb_session__on_basic_get(sb_chan *ch, const sb_m_basic_get *m, sb_error *err)
{
    sb_amqp_method r = { 0 };
    sb_deliver_info d;
    sb_str q = m->queue;
    int rc;

    if (q.len == 0) {
        if (ch->last_queue[0] == '\0')
            return sb_error_set(err, SB_NOT_FOUND, "no previously declared queue");
        q = sb_str_c(ch->last_queue);
    }
    if ((rc = sb_access_check(&ch->conn->access, SB_PERM_READ, "queue", q, err)) != 0 ||
        (rc = sb_bchan_get(ch->b, q, m->no_ack, &d, err)) != 0)
        return rc;
    if (d.msg == NULL) {
        r.id = SB_M_BASIC_GET_EMPTY;
        sb_session__send(ch->conn, ch->id, &r);
        return 0;
    }
    r.id = SB_M_BASIC_GET_OK;
    r.u.basic_get_ok.delivery_tag = d.delivery_tag;
    r.u.basic_get_ok.redelivered = d.redelivered;
    r.u.basic_get_ok.exchange = sb_msg_exchange(d.msg);
    r.u.basic_get_ok.routing_key = sb_msg_rk(d.msg);
    r.u.basic_get_ok.message_count = d.message_count;
    sb_session__send_content(ch->conn, ch->id, &r, d.msg);
    sb_msg_unref(d.msg);
    return 0;
}

/* ack, nack and reject, applied now or held by a transaction. */
static int
settle(sb_chan *ch, uint32_t method, uint64_t tag, bool multiple, bool requeue, sb_error *err)
{
    if (ch->tx) {
        sb_tx_op *op = sb_calloc(1, sizeof *op);
        op->method = method;
        op->tag = tag;
        op->multiple = multiple;
        op->requeue = requeue;
        sb_list_push_back(&ch->tx_ops, &op->link);
        return 0;
    }
    if (method == SB_M_BASIC_ACK)
        return sb_bchan_ack(ch->b, tag, multiple, err);
    return sb_bchan_nack(ch->b, tag, multiple, requeue, err);
}

int
sb_session__on_basic_ack(sb_chan *ch, const sb_m_basic_ack *m, sb_error *err)
{
    return settle(ch, SB_M_BASIC_ACK, m->delivery_tag, m->multiple, false, err);
}

int
sb_session__on_basic_nack(sb_chan *ch, const sb_m_basic_nack *m, sb_error *err)
{
    return settle(ch, SB_M_BASIC_NACK, m->delivery_tag, m->multiple, m->requeue, err);
}

int
sb_session__on_basic_reject(sb_chan *ch, const sb_m_basic_reject *m, sb_error *err)
{
    return settle(ch, SB_M_BASIC_REJECT, m->delivery_tag, false, m->requeue, err);
}

int
sb_session__on_basic_recover(sb_chan *ch, const sb_m_basic_recover *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_BASIC_RECOVER_OK };
    int rc;

    if ((rc = sb_bchan_recover(ch->b, m->requeue, err)) != 0)
        return rc;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

/* The deprecated form: the same, with no reply. */
int
sb_session__on_basic_recover_async(sb_chan *ch, const sb_m_basic_recover_async *m,
                                   sb_error *err)
{
    return sb_bchan_recover(ch->b, m->requeue, err);
}
