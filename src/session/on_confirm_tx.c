/* on_confirm_tx.c - confirm.select and tx.select/commit/rollback, called
 * from dispatch_gen.c. */
#include "session_int.h"

#include "../common/alloc.h"

/* Applies the held publishes and acknowledgements in order. The first
 * failing acknowledgement fails the commit (and closes the channel). */
static int
commit(sb_chan *ch, sb_error *err)
{
    sb_list *it, *tmp;
    sb_publish_result res;
    int rc = 0;

    sb_list_foreach_safe(it, tmp, &ch->tx_ops) {
        sb_tx_op *op = SB_CONTAINER_OF(it, sb_tx_op, link);
        if (rc == 0) {
            if (op->method == SB_M_BASIC_PUBLISH)
                rc = sb_session__route(ch, op->msg, op->mandatory, &res, err);
            else if (op->method == SB_M_BASIC_ACK)
                rc = sb_bchan_ack(ch->b, op->tag, op->multiple, err);
            else
                rc = sb_bchan_nack(ch->b, op->tag, op->multiple, op->requeue, err);
        }
        sb_list_remove(&op->link);
        sb_msg_unref(op->msg);
        sb_free(op);
    }
    return rc;
}

static int
reply(sb_chan *ch, uint32_t id)
{
    sb_amqp_method r = { .id = id };

    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_confirm_select(sb_chan *ch, const sb_m_confirm_select *m, sb_error *err)
{
    if (ch->tx)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "cannot switch from tx to confirm mode");
    ch->confirm = true;
    if (m->nowait)
        return 0;
    return reply(ch, SB_M_CONFIRM_SELECT_OK);
}

int
sb_session__on_tx_select(sb_chan *ch, const sb_m_tx_select *m, sb_error *err)
{
    if (ch->confirm)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "cannot switch from confirm to tx mode");
    ch->tx = true;
    return reply(ch, SB_M_TX_SELECT_OK);
}

int
sb_session__on_tx_commit(sb_chan *ch, const sb_m_tx_commit *m, sb_error *err)
{
    int rc;

    if (!ch->tx)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "channel is not transactional");
    if ((rc = commit(ch, err)) != 0)
        return rc;
    return reply(ch, SB_M_TX_COMMIT_OK);
}

int
sb_session__on_tx_rollback(sb_chan *ch, const sb_m_tx_rollback *m, sb_error *err)
{
    if (!ch->tx)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "channel is not transactional");
    sb_session__tx_clear(ch);
    return reply(ch, SB_M_TX_ROLLBACK_OK);
}
