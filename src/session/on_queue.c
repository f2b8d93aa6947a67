/* on_queue.c - queue.declare/bind/unbind/purge/delete, called from
 * dispatch_gen.c. An empty queue name means the channel's last declared
 * queue, as RabbitMQ allows. Permissions are checked as RabbitMQ's
 * access-control table says, before the queue is looked up (so a missing
 * queue the user may not touch is 403, not 404): configure to declare
 * (in the broker, which knows the generated name) and delete, write on the
 * queue and read on the exchange to bind and unbind, read to purge. */
#include "session_int.h"

#include <stdio.h>
#include <string.h>

/* Resolves the empty name to the last declared queue. */
static int
queue_name(sb_chan *ch, sb_str name, sb_str *out, sb_error *err)
{
    if (name.len > 0) {
        *out = name;
        return 0;
    }
    if (ch->last_queue[0] == '\0')
        return sb_error_set(err, SB_NOT_FOUND, "no previously declared queue");
    *out = sb_str_c(ch->last_queue);
    return 0;
}

int
sb_session__on_queue_declare(sb_chan *ch, const sb_m_queue_declare *d, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_DECLARE_OK };
    sb_queue_decl decl = {
        .name = d->queue, .passive = d->passive, .durable = d->durable,
        .exclusive = d->exclusive, .auto_delete = d->auto_delete, .args = &d->arguments,
        .owner = ch->conn, .access = &ch->conn->access,
    };
    sb_queue_info info;
    int rc;

    if ((rc = sb_queue_declare(ch->conn->vhost, &decl, &info, err)) != 0)
        return rc;
    if (d->exclusive)
        ch->conn->has_exclusive = true;
    snprintf(ch->last_queue, sizeof ch->last_queue, "%s", info.name);
    if (d->nowait)
        return 0;
    r.u.queue_declare_ok.queue = sb_str_c(info.name);
    r.u.queue_declare_ok.message_count = info.messages;
    r.u.queue_declare_ok.consumer_count = info.consumers;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

/* queue.bind and unbind: write on the queue, then (unless the exchange is
 * the default one, which the broker refuses first) read on the exchange. */
static int
check_bind(sb_chan *ch, sb_str queue, sb_str exchange, sb_error *err)
{
    int rc = sb_access_check(&ch->conn->access, SB_PERM_WRITE, "queue", queue, err);

    if (rc != 0 || exchange.len == 0)
        return rc;
    return sb_access_check(&ch->conn->access, SB_PERM_READ, "exchange", exchange, err);
}

int
sb_session__on_queue_bind(sb_chan *ch, const sb_m_queue_bind *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_BIND_OK };
    sb_str q, key = m->routing_key;
    int rc;

    if ((rc = queue_name(ch, m->queue, &q, err)) != 0 ||
        (rc = check_bind(ch, q, m->exchange, err)) != 0)
        return rc;
    /* An empty routing key with an empty queue name means the queue name. */
    if (key.len == 0 && m->queue.len == 0)
        key = q;
    if ((rc = sb_queue_bind(ch->conn->vhost, q, m->exchange, key, &m->arguments, ch->conn,
                            false, err)) != 0)
        return rc;
    if (!m->nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

/* queue.unbind has no nowait: it is always answered. */
int
sb_session__on_queue_unbind(sb_chan *ch, const sb_m_queue_unbind *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_UNBIND_OK };
    sb_str q;
    int rc;

    if ((rc = queue_name(ch, m->queue, &q, err)) != 0 ||
        (rc = check_bind(ch, q, m->exchange, err)) != 0 ||
        (rc = sb_queue_bind(ch->conn->vhost, q, m->exchange, m->routing_key, &m->arguments,
                            ch->conn, true, err)) != 0)
        return rc;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_queue_purge(sb_chan *ch, const sb_m_queue_purge *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_PURGE_OK };
    uint32_t count = 0;
    sb_str q;
    int rc;

    if ((rc = queue_name(ch, m->queue, &q, err)) != 0 ||
        (rc = sb_access_check(&ch->conn->access, SB_PERM_READ, "queue", q, err)) != 0 ||
        (rc = sb_queue_purge(ch->conn->vhost, q, ch->conn, &count, err)) != 0)
        return rc;
    r.u.queue_purge_ok.message_count = count;
    if (!m->nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_queue_delete(sb_chan *ch, const sb_m_queue_delete *d, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_DELETE_OK };
    uint32_t count = 0;
    sb_str q;
    int rc;

    if ((rc = queue_name(ch, d->queue, &q, err)) != 0 ||
        (rc = sb_access_check(&ch->conn->access, SB_PERM_CONFIGURE, "queue", q, err)) != 0 ||
        (rc = sb_queue_delete(ch->conn->vhost, q, ch->conn, d->if_unused, d->if_empty, &count,
                              err)) != 0)
        return rc;
    r.u.queue_delete_ok.message_count = count;
    if (!d->nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}
