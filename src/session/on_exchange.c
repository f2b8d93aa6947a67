/* on_exchange.c - exchange.declare/delete/bind/unbind: argument checks and
 * replies; the work is in broker/exchange.c. */
#include "session_int.h"

static int
reply(sb_chan *ch, uint32_t id, bool nowait)
{
    sb_amqp_method r = { .id = id };

    if (!nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_exchange(sb_chan *ch, const sb_amqp_method *m, sb_error *err)
{
    sb_vhost *v = ch->conn->vhost;
    int rc;

    switch (m->id) {
    case SB_M_EXCHANGE_DECLARE: {
        const sb_m_exchange_declare *d = &m->u.exchange_declare;
        sb_exchange_decl decl = {
            .name = d->exchange, .type = d->type, .passive = d->passive, .durable = d->durable,
            .auto_delete = d->auto_delete, .internal = d->internal, .args = &d->arguments,
        };
        if ((rc = sb_exchange_declare(v, &decl, err)) != 0)
            return rc;
        return reply(ch, SB_M_EXCHANGE_DECLARE_OK, d->nowait);
    }
    case SB_M_EXCHANGE_DELETE: {
        const sb_m_exchange_delete *d = &m->u.exchange_delete;
        if ((rc = sb_exchange_delete(v, d->exchange, d->if_unused, err)) != 0)
            return rc;
        return reply(ch, SB_M_EXCHANGE_DELETE_OK, d->nowait);
    }
    case SB_M_EXCHANGE_BIND:
    case SB_M_EXCHANGE_UNBIND: {
        /* bind and unbind have the same arguments. */
        const sb_m_exchange_bind *d = &m->u.exchange_bind;
        bool unbind = m->id == SB_M_EXCHANGE_UNBIND;
        if ((rc = sb_exchange_bind(v, d->destination, d->source, d->routing_key, &d->arguments,
                                   unbind, err)) != 0)
            return rc;
        return reply(ch, unbind ? SB_M_EXCHANGE_UNBIND_OK : SB_M_EXCHANGE_BIND_OK, d->nowait);
    }
    default:
        return sb_error_set(err, SB_COMMAND_INVALID, "unexpected method %s",
                            sb_amqp_method_info_get(m->id)->name);
    }
}
