/* exchange_fanout.c - the fanout exchange: a message goes to every bound
 * destination, whatever its routing key.
 *
 * Index: the list of bindings. The key is kept because it is part of a
 * binding's identity (binding the same queue with two keys makes two
 * bindings, and unbinding one leaves the other), even though it never
 * affects routing.
 */
#include "xtype_impl.h"

#include "../common/alloc.h"

static void *
fanout_create(void)
{
    sb_broker__blist *l = sb_calloc(1, sizeof *l);

    l->with_key = true;
    return l;
}

static void
fanout_destroy(void *index)
{
    sb_broker__blist_free(index);
    sb_free(index);
}

static int
fanout_bind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    return sb_broker__blist_add(index, key, args, dest);
}

static int
fanout_unbind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    return sb_broker__blist_del(index, key, args, dest);
}

static void
fanout_route(void *index, sb_str routing_key, const sb_amqp_table *headers,
             sb_dest_vec *out)
{
    sb_broker__blist *l = index;
    sb_broker__sink sink;

    sb_broker__sink_init(&sink, out);
    for (size_t i = 0; i < l->n; i++)
        sb_broker__sink_add(&sink, l->v[i].dest);
    sb_broker__sink_done(&sink);
}

const sb_xtype sb_xtype_fanout = {
    .name = "fanout",
    .create = fanout_create,
    .destroy = fanout_destroy,
    .bind = fanout_bind,
    .unbind = fanout_unbind,
    .route = fanout_route,
    .check_args = NULL,   /* RabbitMQ validates nothing for fanout */
};
