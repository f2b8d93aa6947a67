/* defs_import.c - a RabbitMQ definitions document applied to the broker:
 * the start-up load of the saved definitions (durable_load.c) and
 * POST /api/definitions share it.
 *
 * As RabbitMQ's rabbit_definitions: users are created or replaced, vhosts
 * created (or their metadata updated), permissions set; then policies are set and exchanges,
 * queues and bindings declared, in that order; an exchange or queue
 * that already exists is left as it is and exchanges named amq.* are
 * skipped. An import stops at the first error, with its reason; the
 * start-up load instead logs it and goes on, gives each durable queue and
 * delayed exchange back the log id its records carry, and takes the saved
 * user database as the whole of it. */
#include "broker_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "json_table.h"
#include "../common/log.h"

#define DEFS_ID_KEY "switchboard_id"

typedef struct import_ctx {
    sb_broker *b;
    bool at_start;          /* keep going past errors; restore log ids */
    sb_hash_alg default_alg; /* for users whose hash names no algorithm */
    sb_arena arena;
    char why[400];          /* the first error, RabbitMQ-style */
} import_ctx;

/* A string field, exactly as the saving broker had it (names may be any
 * bytes: json_table.h); views o or the context's arena. */
static sb_str
jstr(import_ctx *c, const json_t *o, const char *key)
{
    return sb_json_name(o, key, &c->arena);
}

/* A boolean field; absent is def. RabbitMQ's files also carry them as
 * strings now and then ("true"). */
static bool
jbool(const json_t *o, const char *key, bool def)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_string(v))
        return strcmp(json_string_value(v), "true") == 0;
    return def;
}

static int
failed(import_ctx *c, const char *what, sb_str name, const char *text)
{
    snprintf(c->why, sizeof c->why, "%s '%.*s': %s", what, SB_STR_ARGS(name), text);
    return -1;
}

/* The object's vhost ("/" when the file names none, as a one-vhost
 * export does), or NULL with why set. */
static sb_vhost *
obj_vhost(import_ctx *c, const json_t *o, const char *what, sb_str name)
{
    sb_str vn = jstr(c, o, "vhost");
    sb_vhost *v = sb_broker_vhost(c->b, vn.len ? vn : SB_STR_LIT("/"));

    if (v == NULL)
        snprintf(c->why, sizeof c->why, "%s '%.*s': no vhost '%.*s'", what, SB_STR_ARGS(name),
                 SB_STR_ARGS(vn));
    return v;
}

static bool
obj_args(import_ctx *c, const json_t *o, sb_amqp_table *t, const char *what, sb_str name)
{
    char why[200];

    if (sb_json_to_table(json_object_get(o, "arguments"), t, &c->arena, why, sizeof why) == 0)
        return true;
    failed(c, what, name, why);
    return false;
}

/* At start-up: owner (a queue, or a tagged exchange) carries log id id,
 * as saved, so recovery can find it. */
static void
restore_id(import_ctx *c, const json_t *o, uint32_t *id, void *owner)
{
    json_int_t saved = json_integer_value(json_object_get(o, DEFS_ID_KEY));

    if (!c->at_start || *id == 0 || saved <= 0 || saved > UINT32_MAX)
        return;
    *id = (uint32_t)saved;
    if (*id > c->b->next_queue_id)
        c->b->next_queue_id = *id;
    sb_map_put(&c->b->recovering, sb_str_make(id, sizeof *id), owner, NULL);
}

static int
import_exchange(import_ctx *c, const json_t *o)
{
    sb_exchange_decl d = { .name = jstr(c, o, "name"), .type = jstr(c, o, "type"),
                           .durable = jbool(o, "durable", true),
                           .auto_delete = jbool(o, "auto_delete", false),
                           .internal = jbool(o, "internal", false) };
    sb_vhost *v = obj_vhost(c, o, "exchange", d.name);
    sb_amqp_table args;
    sb_exchange *x;
    sb_error err = { 0 };

    if (v == NULL || !obj_args(c, o, &args, "exchange", d.name))
        return -1;
    /* RabbitMQ skips them with a warning: they are predeclared. */
    if (d.name.len == 0 || sb_str_has_prefix(d.name, "amq.") ||
        sb_broker__exchange_find(v, d.name) != NULL)
        return 0;
    d.args = &args;
    if (sb_exchange_declare(v, &d, &err) != 0)
        return failed(c, "exchange", d.name, err.text);
    x = sb_broker__exchange_find(v, d.name);
    restore_id(c, o, &x->id, (void *)((uintptr_t)x | SB_DEST_TAG_EXCHANGE));
    return 0;
}

static int
import_queue(import_ctx *c, const json_t *o)
{
    sb_queue_decl d = { .name = jstr(c, o, "name"), .durable = jbool(o, "durable", true),
                        .auto_delete = jbool(o, "auto_delete", false),
                        .restoring = true };
    sb_vhost *v = obj_vhost(c, o, "queue", d.name);
    sb_amqp_table args;
    sb_queue_info info;
    sb_error err = { 0 };
    sb_queue *q;

    if (v == NULL || !obj_args(c, o, &args, "queue", d.name))
        return -1;
    if (d.name.len == 0) {
        snprintf(c->why, sizeof c->why, "a queue without a name");
        return -1;
    }
    if (sb_broker__queue_find(v, d.name) != NULL)
        return 0;
    d.args = &args;
    if (sb_queue_declare(v, &d, &info, &err) != 0)
        return failed(c, "queue", d.name, err.text);
    q = sb_broker__queue_find(v, d.name);
    restore_id(c, o, &q->id, q);
    return 0;
}

static int
import_binding(import_ctx *c, const json_t *o)
{
    sb_str src = jstr(c, o, "source"), dst = jstr(c, o, "destination");
    sb_str key = jstr(c, o, "routing_key"), type = jstr(c, o, "destination_type");
    sb_vhost *v = obj_vhost(c, o, "binding from exchange", src);
    sb_amqp_table args;
    sb_error err = { 0 };
    int rc;

    if (v == NULL || !obj_args(c, o, &args, "binding from exchange", src))
        return -1;
    if (sb_str_eq_c(type, "exchange"))
        rc = sb_exchange_bind(v, dst, src, key, &args, false, &err);
    else if (sb_str_eq_c(type, "queue"))
        rc = sb_queue_bind(v, dst, src, key, &args, NULL, false, &err);
    else {
        snprintf(c->why, sizeof c->why, "binding from exchange '%.*s': destination_type must "
                 "be \"queue\" or \"exchange\", not '%.*s'", SB_STR_ARGS(src), SB_STR_ARGS(type));
        return -1;
    }
    return rc == 0 ? 0 : failed(c, "binding from exchange", src, err.text);
}

/* ---- users, vhosts, permissions ---- */

/* A tag list as RabbitMQ's files carry it: an array of strings, or one
 * comma-separated string. Written into buf as a comma-separated string;
 * false when o has no "tags". */
static bool
jtags(const json_t *o, char *buf, size_t len)
{
    const json_t *t = json_object_get(o, "tags"), *e;
    size_t i, used = 0;

    buf[0] = '\0';
    if (json_is_string(t)) {
        snprintf(buf, len, "%s", json_string_value(t));
        return true;
    }
    json_array_foreach(t, i, e) {
        if (!json_is_string(e))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", json_string_value(e));
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return t != NULL;
}

/* RabbitMQ's default algorithm for a hash without one: MD5 for files
 * from before 3.6, else SHA-256 (rabbit_auth_backend_internal). */
static sb_hash_alg
default_alg(import_ctx *c, const json_t *doc)
{
    sb_str v = jstr(c, doc, "rabbit_version");

    if (v.len == 0)
        v = jstr(c, doc, "rabbitmq_version");
    for (char minor = '0'; minor <= '5'; minor++) {
        char prefix[6] = { '3', '.', minor, '.', '\0' };
        if (sb_str_has_prefix(v, prefix))
            return SB_HASH_MD5;
    }
    return SB_HASH_SHA256;
}

static int
import_user(import_ctx *c, const json_t *o)
{
    char tags[512], why[300];
    sb_user_def d = { .name = jstr(c, o, "name"), .alg = c->default_alg };
    const json_t *alg = json_object_get(o, "hashing_algorithm");

    jtags(o, tags, sizeof tags);
    d.tags = sb_str_c(tags);
    if (d.name.len == 0) {
        snprintf(c->why, sizeof c->why, "a user without a name");
        return -1;
    }
    if (json_is_string(json_object_get(o, "password_hash"))) {
        d.has_hash = true;
        d.password_hash = jstr(c, o, "password_hash");
    } else if (json_is_string(json_object_get(o, "password"))) {
        d.has_password = true;
        d.password = jstr(c, o, "password");
    }
    if (json_is_string(alg) && sb_hash_alg_parse(jstr(c, o, "hashing_algorithm"), &d.alg) < 0)
        return failed(c, "user", d.name, "unsupported hashing_algorithm (Switchboard has "
                      "rabbit_password_hashing_sha256, _sha512 and _md5)");
    if (sb_auth_user_put(c->b->auth, &d, why, sizeof why) < 0)
        return failed(c, "user", d.name, why);
    return 0;
}

static int
import_vhost(import_ctx *c, const json_t *o)
{
    sb_str name = jstr(c, o, "name");
    const json_t *meta = json_object_get(o, "metadata");
    const json_t *desc = json_object_get(o, "description");
    char tags[512];
    bool has_tags;

    if (name.len == 0) {
        snprintf(c->why, sizeof c->why, "a vhost without a name");
        return -1;
    }
    /* Later RabbitMQ versions also put description and tags in "metadata". */
    if (!json_is_string(desc) && json_is_object(meta))
        desc = json_object_get(meta, "description");
    has_tags = jtags(o, tags, sizeof tags) ||
               (json_is_object(meta) && jtags(meta, tags, sizeof tags));
    sb_broker_vhost_put(c->b, name, json_is_string(desc) ? json_string_value(desc) : NULL,
                        has_tags ? tags : NULL);
    return 0;
}

static int
import_permission(import_ctx *c, const json_t *o)
{
    sb_str user = jstr(c, o, "user"), vhost = jstr(c, o, "vhost");
    sb_str re[SB_PERM_COUNT] = { jstr(c, o, "configure"), jstr(c, o, "write"),
                                 jstr(c, o, "read") };
    char why[300];

    if (sb_broker_vhost(c->b, vhost) == NULL) {
        snprintf(c->why, sizeof c->why, "permissions of user '%.*s': no vhost '%.*s'",
                 SB_STR_ARGS(user), SB_STR_ARGS(vhost));
        return -1;
    }
    if (sb_auth_perms_set(c->b->auth, user, vhost, re, why, sizeof why) < 0) {
        snprintf(c->why, sizeof c->why, "permissions of user '%.*s' in vhost '%.*s': %s",
                 SB_STR_ARGS(user), SB_STR_ARGS(vhost), why);
        return -1;
    }
    return 0;
}

/* At start-up, the saved file is the whole truth: a vhost it does not
 * list was deleted (the default vhost "/" is made with the broker, so it
 * goes here). Files from before vhosts could be deleted list "/". */
static void
drop_unlisted_vhosts(import_ctx *c, const json_t *doc)
{
    const json_t *arr = json_object_get(doc, "vhosts"), *o;
    size_t i;

    if (!c->at_start || !json_is_array(arr) || !json_object_get(doc, "users"))
        return;
    json_array_foreach(arr, i, o)
        if (sb_str_eq_c(jstr(c, o, "name"), "/"))
            return;
    sb_broker_vhost_delete(c->b, SB_STR_LIT("/"));
}

/* One step failed: stop, or (at start-up) log it and go on. */
static bool
stop_here(import_ctx *c)
{
    if (!c->at_start)
        return true;
    sb_log(SB_LOG_ERROR, "store", "definitions: %s (skipped)", c->why);
    return false;
}

/* A policy, before the queues and exchanges it applies to (as RabbitMQ
 * imports them); one of the same name is replaced. */
static int
import_policy(import_ctx *c, const json_t *o)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    sb_vhost *v = obj_vhost(c, o, "policy", sb_str_c(name ? name : ""));
    char why[300];

    if (v == NULL)
        return -1;
    if (sb_policy_set(v, name ? name : "", o, why, sizeof why) < 0)
        return failed(c, "policy", sb_str_c(name ? name : ""), why);
    return 0;
}

static int
import_all(import_ctx *c, const json_t *doc)
{
    /* RabbitMQ's order: who and where before what. */
    int (*const step[])(import_ctx *, const json_t *) = {
        import_user, import_vhost, import_permission, import_policy, import_exchange,
        import_queue, import_binding,
    };
    const char *const keys[] = { "users", "vhosts", "permissions", "policies", "exchanges",
                                 "queues", "bindings" };
    const json_t *o;
    size_t i;

    c->default_alg = default_alg(c, doc);
    if (c->at_start && json_object_get(doc, "users") != NULL) {
        /* The saved user database replaces the empty one, even when it
         * has no users left (a deleted default user stays deleted). */
        sb_auth_clear(c->b->auth);
        c->b->users_loaded = true;
    }
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const json_t *arr = json_object_get(doc, keys[k]);
        if (arr != NULL && !json_is_array(arr)) {
            snprintf(c->why, sizeof c->why, "\"%s\" must be an array", keys[k]);
            if (stop_here(c))
                return -1;
            continue;
        }
        json_array_foreach(arr, i, o) {
            int rc = json_is_object(o) ? step[k](c, o) : -1;
            if (!json_is_object(o))
                snprintf(c->why, sizeof c->why, "\"%s\" must hold objects", keys[k]);
            sb_arena_reset(&c->arena);
            if (rc < 0 && stop_here(c))
                return -1;
        }
    }
    drop_unlisted_vhosts(c, doc);
    return 0;
}

int
sb_broker_import_definitions(sb_broker *b, const void *doc, bool at_start, char *why,
                             size_t why_len)
{
    import_ctx c = { .b = b, .at_start = at_start, .arena = SB_ARENA_INIT };
    int rc = import_all(&c, doc);

    sb_arena_free(&c.arena);
    if (rc < 0 && why != NULL)
        snprintf(why, why_len, "%s", c.why);
    return rc;
}
