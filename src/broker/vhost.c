/* vhost.c - virtual hosts: the registry, creation with the predeclared
 * exchanges, deletion at runtime (RabbitMQ's: the connections there are
 * closed, the objects go, durable ones from disk too), and the user
 * database the broker keeps next to them (the default user, user
 * deletion, and the watchers told before either kind of deletion).
 * Runs on the loop thread. */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"

/* The exchanges every vhost has, as RabbitMQ predeclares them. */
static const struct {
    const char *name;
    const sb_xtype *type;
} builtin_exchanges[] = {
    { "", &sb_xtype_direct },
    { "amq.direct", &sb_xtype_direct },
    { "amq.fanout", &sb_xtype_fanout },
    { "amq.topic", &sb_xtype_topic },
    { "amq.headers", &sb_xtype_headers },
    { "amq.match", &sb_xtype_headers },
    { "amq.rabbitmq.trace", &sb_xtype_topic },
};

sb_vhost *
sb_broker__vhost_new(sb_broker *b, sb_str name)
{
    sb_vhost *v = sb_calloc(1, sizeof *v);

    v->broker = b;
    v->name = sb_strndup(name.p, name.len);
    v->description = sb_strdup("");
    v->tags = sb_strdup("");
    for (size_t i = 0; i < sizeof builtin_exchanges / sizeof builtin_exchanges[0]; i++) {
        sb_exchange *x = sb_broker__exchange_new(v, sb_str_c(builtin_exchanges[i].name),
                                                 builtin_exchanges[i].type, true, false,
                                                 false, NULL);
        x->builtin = true;
        /* amq.rabbitmq.trace is internal in RabbitMQ. */
        x->internal = strcmp(builtin_exchanges[i].name, "amq.rabbitmq.trace") == 0;
    }
    sb_map_put(&b->vhosts, name, v, NULL);
    return v;
}

void
sb_broker__vhost_free(sb_vhost *v)
{
    size_t it = 0;
    void *val;

    v->closing = true;
    /* Queues first: destroying a queue unlinks its bindings from exchanges. */
    while (sb_map_next(&v->queues, &it, NULL, &val))
        sb_broker__queue_destroy(val, false);
    sb_map_free(&v->queues);
    it = 0;
    while (sb_map_next(&v->exchanges, &it, NULL, &val))
        sb_broker__exchange_free(val);
    sb_map_free(&v->exchanges);
    sb_broker__policies_free(v);
    sb_dest_vec_free(&v->route_tmp);
    sb_dest_vec_free(&v->route_seen);
    sb_free(v->description);
    sb_free(v->tags);
    sb_free(v->name);
    sb_free(v);
}

sb_vhost *
sb_broker_vhost(sb_broker *b, sb_str name)
{
    return sb_map_get(&b->vhosts, name);
}

const char *
sb_vhost_name(const sb_vhost *v)
{
    return v->name;
}

const char *
sb_vhost_description(const sb_vhost *v)
{
    return v->description;
}

const char *
sb_vhost_tags(const sb_vhost *v)
{
    return v->tags;
}

size_t
sb_broker_vhost_count(const sb_broker *b)
{
    return b->vhosts.count;
}

/* "a, b,,c " as "a,b,c": RabbitMQ's tag list, trimmed, empties dropped. */
static char *
tags_normalized(const char *tags)
{
    char *out = sb_malloc(strlen(tags) + 1), *w = out;

    while (*tags) {
        size_t n = strcspn(tags, ","), start = 0, end = n;
        while (start < end && tags[start] == ' ')
            start++;
        while (end > start && tags[end - 1] == ' ')
            end--;
        if (end > start) {
            if (w != out)
                *w++ = ',';
            memcpy(w, tags + start, end - start);
            w += end - start;
        }
        tags += n + (tags[n] == ',');
    }
    *w = '\0';
    return out;
}

int
sb_broker_vhost_put(sb_broker *b, sb_str name, const char *description, const char *tags)
{
    sb_vhost *v = sb_map_get(&b->vhosts, name);
    bool created = v == NULL;

    if (name.len == 0)
        return -1;
    if (created) {
        v = sb_broker__vhost_new(b, name);
        sb_log(SB_LOG_INFO, "broker", "vhost '%s' created", v->name);
    }
    if (description != NULL) {
        sb_free(v->description);
        v->description = sb_strdup(description);
    }
    if (tags != NULL) {
        sb_free(v->tags);
        v->tags = tags_normalized(tags);
    }
    sb_broker__defs_changed(b);
    return created ? 1 : 0;
}

static void
notify(sb_broker *b, sb_broker_event ev, sb_vhost *v, const char *user)
{
    for (int i = 0; i < b->nwatchers; i++)
        b->watchers[i].fn(b->watchers[i].arg, ev, v, user);
}

int
sb_broker_vhost_delete(sb_broker *b, sb_str name)
{
    sb_vhost *v = sb_map_get(&b->vhosts, name);
    size_t it;
    void *val;

    if (v == NULL)
        return -1;
    /* Connections and channels there go first, so nothing consumes from
     * or holds a delivery of what is deleted next. */
    notify(b, SB_BROKER_VHOST_DELETING, v, NULL);
    /* Deleted for real, unlike at shutdown: messages leave the log and
     * durable definitions the definitions file. */
    for (it = 0; sb_map_next(&v->queues, &it, NULL, &val); it = 0)
        sb_broker__queue_destroy(val, true);
    for (it = 0; sb_map_next(&v->exchanges, &it, NULL, &val);)
        sb_broker__delay_drop_all(b, &((sb_exchange *)val)->delayed_msgs);
    sb_map_del(&b->vhosts, sb_str_c(v->name));
    sb_auth_vhost_deleted(b->auth, sb_str_c(v->name));
    sb_log(SB_LOG_INFO, "broker", "vhost '%s' deleted", v->name);
    sb_broker__vhost_free(v);
    sb_broker__defs_changed(b);
    return 0;
}

/* ---- users ---- */

sb_auth *
sb_broker_auth(sb_broker *b)
{
    return b->auth;
}

void
sb_broker__auth_changed(void *arg)
{
    sb_broker *b = arg;

    b->users_loaded = true;
    sb_broker__defs_changed(b);
}

void
sb_broker_default_user(sb_broker *b, const char *user, const char *password)
{
    sb_user_def d = { .name = sb_str_c(user), .has_password = true,
                      .password = sb_str_c(password), .tags = SB_STR_LIT("administrator") };
    sb_str all[SB_PERM_COUNT] = { SB_STR_LIT(".*"), SB_STR_LIT(".*"), SB_STR_LIT(".*") };
    char why[200];

    if (b->users_loaded || user == NULL || user[0] == '\0')
        return;
    if (sb_auth_user_put(b->auth, &d, why, sizeof why) < 0 ||
        (sb_broker_vhost(b, SB_STR_LIT("/")) != NULL &&
         sb_auth_perms_set(b->auth, d.name, SB_STR_LIT("/"), all, why, sizeof why) < 0)) {
        sb_log(SB_LOG_ERROR, "auth", "cannot create the default user '%s': %s", user, why);
        return;
    }
    /* Seeded before the saved definitions load (which replace it, so a
     * deleted default user stays deleted); durable_load.c says so at info
     * level when there were none to load. */
    sb_log(SB_LOG_DEBUG, "auth", "seeded the default user '%s' (administrator, all permissions "
           "on vhost '/')", user);
}

int
sb_broker_user_delete(sb_broker *b, sb_str user)
{
    char name[256];

    if (sb_auth_user(b->auth, user) == NULL)
        return -1;
    snprintf(name, sizeof name, "%.*s", SB_STR_ARGS(user));
    notify(b, SB_BROKER_USER_DELETING, NULL, name);
    return sb_auth_user_delete(b->auth, user);
}

/* ---- watchers ---- */

void
sb_broker_watch(sb_broker *b, sb_broker_watch_fn fn, void *arg)
{
    sb_assert(b->nwatchers < SB_BROKER_MAX_WATCHERS);
    b->watchers[b->nwatchers].fn = fn;
    b->watchers[b->nwatchers].arg = arg;
    b->nwatchers++;
}

void
sb_broker_unwatch(sb_broker *b, sb_broker_watch_fn fn, void *arg)
{
    for (int i = 0; i < b->nwatchers; i++)
        if (b->watchers[i].fn == fn && b->watchers[i].arg == arg) {
            b->watchers[i] = b->watchers[--b->nwatchers];
            return;
        }
}
