/* on_queue.c - queue.declare/bind/unbind/purge/delete. An empty queue name
 * means the channel's last declared queue, as RabbitMQ allows. */
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

static int
on_declare(sb_chan *ch, const sb_m_queue_declare *d, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_QUEUE_DECLARE_OK };
    sb_queue_decl decl = {
        .name = d->queue, .passive = d->passive, .durable = d->durable,
        .exclusive = d->exclusive, .auto_delete = d->auto_delete, .args = &d->arguments,
        .owner = ch->conn,
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

static int
on_bind(sb_chan *ch, const sb_amqp_method *m, sb_error *err)
{
    bool unbind = m->id == SB_M_QUEUE_UNBIND;
    sb_amqp_method r = { .id = unbind ? SB_M_QUEUE_UNBIND_OK : SB_M_QUEUE_BIND_OK };
    sb_str q, x, key;
    const sb_amqp_table *args;
    bool nowait = false;
    int rc;

    if (unbind) {
        q = m->u.queue_unbind.queue;
        x = m->u.queue_unbind.exchange;
        key = m->u.queue_unbind.routing_key;
        args = &m->u.queue_unbind.arguments;
    } else {
        q = m->u.queue_bind.queue;
        x = m->u.queue_bind.exchange;
        key = m->u.queue_bind.routing_key;
        args = &m->u.queue_bind.arguments;
        nowait = m->u.queue_bind.nowait;
    }
    if ((rc = queue_name(ch, q, &q, err)) != 0)
        return rc;
    /* An empty routing key with an empty queue name means the queue name. */
    if (key.len == 0 && m->u.queue_bind.queue.len == 0 && !unbind)
        key = q;
    if ((rc = sb_queue_bind(ch->conn->vhost, q, x, key, args, ch->conn, unbind, err)) != 0)
        return rc;
    if (!nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

static int
on_purge_delete(sb_chan *ch, const sb_amqp_method *m, sb_error *err)
{
    sb_amqp_method r = { 0 };
    uint32_t count = 0;
    bool nowait;
    sb_str q;
    int rc;

    if (m->id == SB_M_QUEUE_PURGE) {
        if ((rc = queue_name(ch, m->u.queue_purge.queue, &q, err)) != 0 ||
            (rc = sb_queue_purge(ch->conn->vhost, q, ch->conn, &count, err)) != 0)
            return rc;
        nowait = m->u.queue_purge.nowait;
        r.id = SB_M_QUEUE_PURGE_OK;
        r.u.queue_purge_ok.message_count = count;
    } else {
        const sb_m_queue_delete *d = &m->u.queue_delete;
        if ((rc = queue_name(ch, d->queue, &q, err)) != 0 ||
            (rc = sb_queue_delete(ch->conn->vhost, q, ch->conn, d->if_unused, d->if_empty,
                                  &count, err)) != 0)
            return rc;
        nowait = d->nowait;
        r.id = SB_M_QUEUE_DELETE_OK;
        r.u.queue_delete_ok.message_count = count;
    }
    if (!nowait)
        sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

int
sb_session__on_queue(sb_chan *ch, const sb_amqp_method *m, sb_error *err)
{
    switch (m->id) {
    case SB_M_QUEUE_DECLARE:
        return on_declare(ch, &m->u.queue_declare, err);
    case SB_M_QUEUE_BIND:
    case SB_M_QUEUE_UNBIND:
        return on_bind(ch, m, err);
    case SB_M_QUEUE_PURGE:
    case SB_M_QUEUE_DELETE:
        return on_purge_delete(ch, m, err);
    default:
        return sb_error_set(err, SB_COMMAND_INVALID, "unexpected method %s",
                            sb_amqp_method_info_get(m->id)->name);
    }
}
