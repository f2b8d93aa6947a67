/* on_exchange.c - exchange.declare/delete/bind/unbind: argument checks and
 * replies; the work is in broker/exchange.c. Called from dispatch_gen.c.
 * Permissions in RabbitMQ's order: configure to declare (in the broker,
 * after the default-exchange and type checks) and delete (after the
 * default and amq.* refusals); write on the destination and read on the
 * source to bind and unbind. */
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
sb_session__on_exchange_declare(sb_chan *ch, const sb_m_exchange_declare *d, sb_error *err)
{
    sb_exchange_decl decl = {
        .name = d->exchange, .type = d->type, .passive = d->passive, .durable = d->durable,
        .auto_delete = d->auto_delete, .internal = d->internal, .args = &d->arguments,
        .access = &ch->conn->access,
    };
    int rc;

    if ((rc = sb_exchange_declare(ch->conn->vhost, &decl, err)) != 0)
        return rc;
    return reply(ch, SB_M_EXCHANGE_DECLARE_OK, d->nowait);
}

int
sb_session__on_exchange_delete(sb_chan *ch, const sb_m_exchange_delete *d, sb_error *err)
{
    int rc = 0;

    if (d->exchange.len > 0 && !sb_str_has_prefix(d->exchange, "amq."))
        rc = sb_access_check(&ch->conn->access, SB_PERM_CONFIGURE, "exchange", d->exchange, err);
    if (rc != 0 ||
        (rc = sb_exchange_delete(ch->conn->vhost, d->exchange, d->if_unused, err)) != 0)
        return rc;
    return reply(ch, SB_M_EXCHANGE_DELETE_OK, d->nowait);
}

/* exchange.bind and unbind: write on the destination, then (unless
 * either end is the default exchange, which the broker refuses first)
 * read on the source. */
static int
check_bind(sb_chan *ch, sb_str dest, sb_str source, sb_error *err)
{
    int rc = sb_access_check(&ch->conn->access, SB_PERM_WRITE, "exchange", dest, err);

    if (rc != 0 || dest.len == 0 || source.len == 0)
        return rc;
    return sb_access_check(&ch->conn->access, SB_PERM_READ, "exchange", source, err);
}

int
sb_session__on_exchange_bind(sb_chan *ch, const sb_m_exchange_bind *d, sb_error *err)
{
    int rc;

    if ((rc = check_bind(ch, d->destination, d->source, err)) != 0 ||
        (rc = sb_exchange_bind(ch->conn->vhost, d->destination, d->source, d->routing_key,
                               &d->arguments, false, err)) != 0)
        return rc;
    return reply(ch, SB_M_EXCHANGE_BIND_OK, d->nowait);
}

int
sb_session__on_exchange_unbind(sb_chan *ch, const sb_m_exchange_unbind *d, sb_error *err)
{
    int rc;

    if ((rc = check_bind(ch, d->destination, d->source, err)) != 0 ||
        (rc = sb_exchange_bind(ch->conn->vhost, d->destination, d->source, d->routing_key,
                               &d->arguments, true, err)) != 0)
        return rc;
    return reply(ch, SB_M_EXCHANGE_UNBIND_OK, d->nowait);
}
