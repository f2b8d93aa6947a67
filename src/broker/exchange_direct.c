/* exchange_direct.c - the direct exchange: a message goes to the bindings
 * whose key equals its routing key, byte for byte.
 *
 * Index: a hash map from binding key to the list of bindings with that
 * key, so route is one lookup plus the matching bindings. Keys with no
 * bindings left are removed from the map.
 */
#include "xtype_impl.h"

#include "../common/alloc.h"
#include "../common/map.h"

typedef struct direct_index {
    sb_map by_key;   /* key -> sb_broker__blist * (without keys) */
} direct_index;

static void *
direct_create(void)
{
    direct_index *d = sb_calloc(1, sizeof *d);

    d->by_key = SB_MAP_INIT;
    return d;
}

static void
direct_destroy(void *index)
{
    direct_index *d = index;
    sb_str k;
    void *v;

    for (size_t it = 0; sb_map_next(&d->by_key, &it, &k, &v);) {
        sb_broker__blist_free(v);
        sb_free(v);
    }
    sb_map_free(&d->by_key);
    sb_free(d);
}

static int
direct_bind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    direct_index *d = index;
    sb_broker__blist *l;

    key = sb_broker__str_safe(key);
    l = sb_map_get(&d->by_key, key);
    if (l == NULL) {
        l = sb_calloc(1, sizeof *l);
        sb_map_put(&d->by_key, key, l, NULL);
    }
    return sb_broker__blist_add(l, key, args, dest);
}

static int
direct_unbind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    direct_index *d = index;
    sb_broker__blist *l;

    key = sb_broker__str_safe(key);
    l = sb_map_get(&d->by_key, key);
    if (l == NULL || sb_broker__blist_del(l, key, args, dest) != 0)
        return 1;
    if (l->n == 0) {
        sb_map_del(&d->by_key, key);
        sb_broker__blist_free(l);
        sb_free(l);
    }
    return 0;
}

static void
direct_route(void *index, sb_str routing_key, const sb_amqp_table *headers,
             sb_dest_vec *out)
{
    direct_index *d = index;
    sb_broker__blist *l = sb_map_get(&d->by_key, sb_broker__str_safe(routing_key));
    sb_broker__sink sink;

    if (l == NULL)
        return;
    sb_broker__sink_init(&sink, out);
    for (size_t i = 0; i < l->n; i++)
        sb_broker__sink_add(&sink, l->v[i].dest);
    sb_broker__sink_done(&sink);
}

const sb_xtype sb_xtype_direct = {
    .name = "direct",
    .create = direct_create,
    .destroy = direct_destroy,
    .bind = direct_bind,
    .unbind = direct_unbind,
    .route = direct_route,
    .check_args = NULL,   /* RabbitMQ validates nothing for direct */
};
