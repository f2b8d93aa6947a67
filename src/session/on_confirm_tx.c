/* on_confirm_tx.c - confirm.select and tx.select/commit/rollback. */
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

int
sb_session__on_confirm_tx(sb_chan *ch, const sb_amqp_method *m, sb_error *err)
{
    sb_amqp_method r = { 0 };
    int rc;

    switch (m->id) {
    case SB_M_CONFIRM_SELECT:
        if (ch->tx)
            return sb_error_set(err, SB_PRECONDITION_FAILED,
                                "cannot switch from tx to confirm mode");
        ch->confirm = true;
        if (m->u.confirm_select.nowait)
            return 0;
        r.id = SB_M_CONFIRM_SELECT_OK;
        break;
    case SB_M_TX_SELECT:
        if (ch->confirm)
            return sb_error_set(err, SB_PRECONDITION_FAILED,
                                "cannot switch from confirm to tx mode");
        ch->tx = true;
        r.id = SB_M_TX_SELECT_OK;
        break;
    case SB_M_TX_COMMIT:
        if (!ch->tx)
            return sb_error_set(err, SB_PRECONDITION_FAILED, "channel is not transactional");
        if ((rc = commit(ch, err)) != 0)
            return rc;
        r.id = SB_M_TX_COMMIT_OK;
        break;
    case SB_M_TX_ROLLBACK:
        if (!ch->tx)
            return sb_error_set(err, SB_PRECONDITION_FAILED, "channel is not transactional");
        sb_session__tx_clear(ch);
        r.id = SB_M_TX_ROLLBACK_OK;
        break;
    default:
        return sb_error_set(err, SB_COMMAND_INVALID, "unexpected method %s",
                            sb_amqp_method_info_get(m->id)->name);
    }
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}
