/* exchange.c - exchanges: declare, delete, bindings and routing.
 * The routing algorithms themselves live in exchange_<type>.c; this file
 * keeps the registry, the binding objects and exchange-to-exchange and
 * alternate-exchange routing. */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

#define ROUTE_MAX_DEPTH 32

sb_exchange *
sb_broker__exchange_find(sb_vhost *v, sb_str name)
{
    return sb_map_get(&v->exchanges, name);
}

sb_exchange *
sb_broker__exchange_new(sb_vhost *v, sb_str name, const sb_xtype *type, bool durable,
                        bool auto_delete, bool internal, const sb_amqp_table *args)
{
    sb_exchange *x = sb_calloc(1, sizeof *x);

    x->vhost = v;
    x->name = sb_strndup(name.p, name.len);
    x->name_len = name.len;
    x->type = type;
    x->index = type->create();
    x->durable = durable;
    x->auto_delete = auto_delete;
    x->internal = internal;
    sb_broker__table_copy(&x->args, args);
    sb_broker__exchange_policy_refresh(x);
    sb_list_init(&x->bindings_out);
    sb_list_init(&x->bindings_in);
    sb_list_init(&x->delayed_msgs);
    sb_map_put(&v->exchanges, name, x, NULL);
    return x;
}

/* RabbitMQ keeps a binding across restarts when both ends are durable. */
static bool
binding_durable(const sb_binding *bd)
{
    bool dest = bd->kind == SB_DEST_QUEUE ? sb_broker__queue_persists(bd->dest)
                                           : ((sb_exchange *)bd->dest)->durable;
    return bd->source->durable && dest;
}

void
sb_broker__binding_free(sb_binding *bd)
{
    uintptr_t tagged = (uintptr_t)bd->dest | (bd->kind == SB_DEST_EXCHANGE ? SB_DEST_TAG_EXCHANGE : 0);
    const sb_amqp_table *args = bd->args.t.n ? &bd->args.t : NULL;

    bd->source->type->unbind(bd->source->index, sb_str_make(bd->key, bd->key_len), args,
                             (void *)tagged);
    if (binding_durable(bd) && !bd->source->vhost->closing)
        sb_broker__defs_changed(bd->source->vhost->broker);
    sb_list_remove(&bd->src_link);
    sb_list_remove(&bd->dst_link);
    sb_broker__table_free(&bd->args);
    sb_free(bd->key);
    sb_free(bd);
}

/* Frees x and every binding from or to it; does not touch the registry.
 * Sources left without bindings are auto-deleted, as RabbitMQ does. */
void
sb_broker__exchange_free(sb_exchange *x)
{
    sb_list *it;

    x->deleting = true;
    while ((it = sb_list_first(&x->bindings_out)) != NULL)
        sb_broker__binding_free(SB_CONTAINER_OF(it, sb_binding, src_link));
    while ((it = sb_list_first(&x->bindings_in)) != NULL) {
        sb_binding *bd = SB_CONTAINER_OF(it, sb_binding, dst_link);
        sb_exchange *src = bd->source;
        sb_broker__binding_free(bd);
        sb_broker__exchange_maybe_auto_delete(src);
    }
    sb_broker__delay_drop_all(x->vhost->broker, &x->delayed_msgs);
    x->type->destroy(x->index);
    sb_broker__table_free(&x->args);
    sb_free(x->alternate);
    sb_free(x->name);
    sb_free(x);
}

static void
exchange_remove(sb_exchange *x)
{
    if (x->durable && !x->vhost->closing)
        sb_broker__defs_changed(x->vhost->broker);
    sb_map_del(&x->vhost->exchanges, sb_str_make(x->name, x->name_len));
    sb_broker__exchange_free(x);
}

void
sb_broker__exchange_maybe_auto_delete(sb_exchange *x)
{
    if (x->auto_delete && !x->deleting && !x->vhost->closing && sb_list_empty(&x->bindings_out))
        exchange_remove(x);
}

static int
not_found(sb_vhost *v, sb_str name, sb_error *err)
{
    return sb_error_set(err, SB_NOT_FOUND, "no exchange '%.*s' in vhost '%s'", SB_STR_ARGS(name),
                        v->name);
}

static int
inequivalent(sb_vhost *v, sb_str name, const char *arg, const char *got, const char *cur,
             sb_error *err)
{
    return sb_error_set(err, SB_PRECONDITION_FAILED,
                        "inequivalent arg '%s' for exchange '%.*s' in vhost '%s': "
                        "received '%s' but current is '%s'",
                        arg, SB_STR_ARGS(name), v->name, got, cur);
}

static const char *
tf(bool b)
{
    return b ? "true" : "false";
}

#define DELAYED_TYPE "x-delayed-message"

const char *
sb_broker__exchange_type_name(const sb_exchange *x)
{
    return x->delayed ? DELAYED_TYPE : x->type->name;
}

static int
check_equivalent(sb_vhost *v, const sb_exchange *x, const sb_exchange_decl *d, sb_error *err)
{
    if (!sb_str_eq_c(d->type, sb_broker__exchange_type_name(x))) {
        char got[256];
        snprintf(got, sizeof got, "%.*s", SB_STR_ARGS(d->type));
        return inequivalent(v, d->name, "type", got, sb_broker__exchange_type_name(x), err);
    }
    if (d->durable != x->durable)
        return inequivalent(v, d->name, "durable", tf(d->durable), tf(x->durable), err);
    if (d->auto_delete != x->auto_delete)
        return inequivalent(v, d->name, "auto_delete", tf(d->auto_delete), tf(x->auto_delete), err);
    if (d->internal != x->internal)
        return inequivalent(v, d->name, "internal", tf(d->internal), tf(x->internal), err);
    return sb_broker__exchange_args_equivalent(x->name, v->name, &x->args.t, d->args, err);
}

/* The routing type of an x-delayed-message exchange (its x-delayed-type). */
static const sb_xtype *
delayed_inner_type(const sb_amqp_table *args)
{
    const sb_amqp_value *t = args ? sb_amqp_table_get(args, "x-delayed-type") : NULL;

    return t && t->kind == SB_FV_LONGSTR ? sb_xtype_find(t->v.s) : NULL;
}

/* A new exchange with an alternate exchange: RabbitMQ checks read on the
 * exchange and write on the AE (a message that would go there is as if
 * published to it). An AE argument of the wrong type is left to the
 * arguments check. */
static int
check_alternate_access(const sb_exchange_decl *d, sb_error *err)
{
    const sb_amqp_value *ae = d->args ? sb_amqp_table_get(d->args, "alternate-exchange") : NULL;
    int rc;

    if (ae == NULL || ae->kind != SB_FV_LONGSTR)
        return 0;
    if ((rc = sb_access_check(d->access, SB_PERM_READ, "exchange", d->name, err)) != 0)
        return rc;
    return sb_access_check(d->access, SB_PERM_WRITE, "exchange", ae->v.s, err);
}

int
sb_exchange_declare(sb_vhost *v, const sb_exchange_decl *d, sb_error *err)
{
    sb_exchange *x = sb_broker__exchange_find(v, d->name);
    const sb_xtype *type;
    bool delayed;
    int rc;

    if (d->name.len == 0)
        return sb_error_set(err, SB_ACCESS_REFUSED, "operation not permitted on the default exchange");
    if (d->passive)
        return x == NULL ? not_found(v, d->name, err) : 0;
    delayed = sb_str_eq_c(d->type, DELAYED_TYPE);
    type = delayed ? delayed_inner_type(d->args) : sb_xtype_find(d->type);
    if (type == NULL && delayed)
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "Invalid argument, 'x-delayed-type' must be an existing exchange type");
    if (type == NULL)
        return sb_error_set(err, SB_COMMAND_INVALID, "unknown exchange type '%.*s'",
                            SB_STR_ARGS(d->type));
    if (d->access != NULL &&
        (rc = sb_access_check(d->access, SB_PERM_CONFIGURE, "exchange", d->name, err)) != 0)
        return rc;
    if (x != NULL)
        return check_equivalent(v, x, d, err);
    if (sb_str_has_prefix(d->name, "amq."))
        return sb_error_set(err, SB_ACCESS_REFUSED,
                            "exchange name '%.*s' contains reserved prefix 'amq.*'",
                            SB_STR_ARGS(d->name));
    if (d->access != NULL && (rc = check_alternate_access(d, err)) != 0)
        return rc;
    x = sb_broker__exchange_new(v, d->name, type, d->durable, d->auto_delete, d->internal, d->args);
    x->delayed = delayed;
    if (x->durable)
        sb_broker__defs_changed(v->broker);
    if (x->durable && delayed)
        sb_broker__exchange_assign_id(x);
    return 0;
}

int
sb_exchange_delete(sb_vhost *v, sb_str name, bool if_unused, sb_error *err)
{
    sb_exchange *x;

    if (name.len == 0)
        return sb_error_set(err, SB_ACCESS_REFUSED, "operation not permitted on the default exchange");
    x = sb_broker__exchange_find(v, name);
    if (x == NULL)
        return 0;  /* RabbitMQ: deleting a missing exchange succeeds */
    if (x->builtin)
        return sb_error_set(err, SB_ACCESS_REFUSED,
                            "deletion of system exchange '%s' in vhost '%s' not allowed", x->name,
                            v->name);
    if (if_unused && !sb_list_empty(&x->bindings_out))
        return sb_error_set(err, SB_PRECONDITION_FAILED, "exchange '%.*s' in vhost '%s' in use",
                            SB_STR_ARGS(name), v->name);
    exchange_remove(x);
    return 0;
}

static sb_binding *
binding_find(sb_exchange *src, void *dest, sb_str key, const sb_amqp_table *args)
{
    sb_list *it;

    sb_list_foreach(it, &src->bindings_out) {
        sb_binding *bd = SB_CONTAINER_OF(it, sb_binding, src_link);
        if (bd->dest == dest && sb_str_eq(sb_str_make(bd->key, bd->key_len), key) &&
            sb_broker__table_same(&bd->args.t, args))
            return bd;
    }
    return NULL;
}

int
sb_broker__bind(sb_exchange *src, sb_dest_kind kind, void *dest, sb_list *dest_in, sb_str key,
                const sb_amqp_table *args, bool unbind)
{
    uintptr_t tagged = (uintptr_t)dest | (kind == SB_DEST_EXCHANGE ? SB_DEST_TAG_EXCHANGE : 0);
    sb_binding *bd = binding_find(src, dest, key, args);

    if (unbind) {
        if (bd == NULL)
            return 0;  /* RabbitMQ: unbinding what is not bound succeeds */
        sb_broker__binding_free(bd);
        sb_broker__exchange_maybe_auto_delete(src);
        return 0;
    }
    if (bd != NULL)
        return 0;
    bd = sb_calloc(1, sizeof *bd);
    bd->source = src;
    bd->kind = kind;
    bd->dest = dest;
    bd->key = sb_strndup(key.p, key.len);
    bd->key_len = key.len;
    sb_broker__table_copy(&bd->args, args);
    src->type->bind(src->index, key, bd->args.t.n ? &bd->args.t : NULL, (void *)tagged);
    sb_list_push_back(&src->bindings_out, &bd->src_link);
    sb_list_push_back(dest_in, &bd->dst_link);
    if (binding_durable(bd))
        sb_broker__defs_changed(src->vhost->broker);
    return 0;
}

int
sb_exchange_bind(sb_vhost *v, sb_str dest, sb_str source, sb_str key, const sb_amqp_table *args,
                 bool unbind, sb_error *err)
{
    sb_exchange *d, *s;
    char text[256];

    if (dest.len == 0 || source.len == 0)
        return sb_error_set(err, SB_ACCESS_REFUSED, "operation not permitted on the default exchange");
    d = sb_broker__exchange_find(v, dest);
    if (d == NULL)
        return not_found(v, dest, err);
    s = sb_broker__exchange_find(v, source);
    if (s == NULL)
        return not_found(v, source, err);
    if (!unbind && s->type->check_args &&
        s->type->check_args(args, text, sizeof text) != 0)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "%s", text);
    return sb_broker__bind(s, SB_DEST_EXCHANGE, d, &d->bindings_in, key, args, unbind);
}

static bool
seen_before(sb_dest_vec *seen, sb_exchange *x)
{
    for (size_t i = 0; i < seen->n; i++)
        if (seen->v[i] == x)
            return true;
    sb_dest_vec_push_unique(seen, x);
    return false;
}

static void
route_into(sb_vhost *v, sb_exchange *x, sb_str key, const sb_amqp_table *headers,
           sb_dest_vec *out, int depth)
{
    size_t start = out->n, i;

    bool matched;

    if (depth > ROUTE_MAX_DEPTH || seen_before(&v->route_seen, x))
        return;
    x->type->route(x->index, key, headers, out);
    matched = out->n > start;
    /* Exchange destinations are replaced by what they route to. */
    for (i = start; i < out->n;) {
        uintptr_t p = (uintptr_t)out->v[i];
        if (!(p & SB_DEST_TAG_EXCHANGE)) {
            i++;
            continue;
        }
        out->v[i] = out->v[--out->n];
        route_into(v, (sb_exchange *)(p & ~SB_DEST_TAG_EXCHANGE), key, headers, out, depth + 1);
    }
    /* The alternate exchange takes what this exchange's own bindings did
     * not match, not what matched bindings failed to deliver (RabbitMQ). */
    if (!matched && x->alternate != NULL) {
        sb_exchange *ae = sb_broker__exchange_find(v, sb_str_c(x->alternate));
        if (ae != NULL)
            route_into(v, ae, key, headers, out, depth + 1);
    }
}

void
sb_broker__route(sb_vhost *v, sb_exchange *x, sb_str key, const sb_amqp_table *headers,
                 sb_dest_vec *out)
{
    v->route_seen.n = 0;
    route_into(v, x, key, headers, out, 0);
}

/* The exchange a publish names, if it may be published to. */
static int
publish_target(sb_vhost *v, sb_str exchange, sb_exchange **out, sb_error *err)
{
    sb_exchange *x = *out = sb_broker__exchange_find(v, exchange);

    if (x == NULL)
        return not_found(v, exchange, err);
    if (x->internal)
        return sb_error_set(err, SB_ACCESS_REFUSED,
                            "cannot publish to internal exchange '%.*s' in vhost '%s'",
                            SB_STR_ARGS(exchange), v->name);
    return 0;
}

int
sb_publish_check(sb_vhost *v, sb_str exchange, sb_error *err)
{
    sb_exchange *x;

    return publish_target(v, exchange, &x, err);
}

/* Routes key from x (the default exchange: the queue named key). */
static void
route_key(sb_vhost *v, sb_exchange *x, sb_str key, const sb_amqp_table *headers, sb_dest_vec *out)
{
    if (x->name_len == 0) {
        sb_queue *q = sb_broker__queue_find(v, key);
        if (q != NULL)
            sb_dest_vec_push_unique(out, q);
    } else {
        sb_broker__route(v, x, key, headers, out);
    }
}

/* The CC and BCC headers name more routing keys (RabbitMQ's sender-
 * selected distribution). */
static void
route_extra_keys(sb_vhost *v, sb_exchange *x, const sb_amqp_table *headers, const char *name,
                 sb_dest_vec *out)
{
    const sb_amqp_value *a = sb_amqp_table_get(headers, name);

    if (a == NULL || a->kind != SB_FV_ARRAY)
        return;
    for (uint32_t i = 0; i < a->v.a.n; i++)
        if (a->v.a.v[i].kind == SB_FV_LONGSTR)
            route_key(v, x, a->v.a.v[i].v.s, headers, out);
}

/* The x-delay header, in ms, when positive. */
static bool
delay_requested(const sb_amqp_table *headers, uint64_t *ms)
{
    const sb_amqp_value *v = headers ? sb_amqp_table_get(headers, "x-delay") : NULL;
    int64_t d;

    if (v == NULL || !sb_amqp_value_int(v, &d) || d <= 0)
        return false;
    *ms = (uint64_t)d;
    return true;
}

/* m without its BCC header, which no receiver may see. New reference. */
static sb_msg *
without_bcc(sb_msg *m)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_props p;
    sb_msg *n = NULL;
    uint32_t k = 0;

    if (sb_amqp_props_decode(sb_msg_props(m).p, sb_msg_props(m).len, &p, &a) == 0) {
        sb_amqp_entry *e = sb_arena_alloc(&a, p.headers.n * sizeof *e);
        for (uint32_t i = 0; i < p.headers.n; i++)
            if (!sb_str_eq_c(p.headers.e[i].key, "BCC"))
                e[k++] = p.headers.e[i];
        p.headers = (sb_amqp_table){ .n = k, .e = e };
        n = sb_broker__msg_with_props(m, &p, sb_msg_exchange(m), sb_msg_rk(m));
    }
    sb_arena_free(&a);
    return n ? n : sb_msg_ref(m);
}

int
sb_publish(sb_vhost *v, sb_msg *m, const sb_amqp_table *headers, sb_publish_result *res,
           sb_error *err)
{
    return sb_publish_as(v, NULL, m, headers, res, err);
}

int
sb_publish_as(sb_vhost *v, const sb_trace_who *who, sb_msg *m, const sb_amqp_table *headers,
              sb_publish_result *res, sb_error *err)
{
    sb_str xname = sb_msg_exchange(m), key = sb_msg_rk(m);
    sb_dest_vec *out = &v->route_tmp;
    bool bcc = headers && sb_amqp_table_get(headers, "BCC") != NULL;
    sb_exchange *x;
    uint64_t delay;
    int rc;

    res->routed = false;
    res->rejected = false;
    res->durable_pos = 0;
    v->broker->publish_pos = 0;
    if ((rc = publish_target(v, xname, &x, err)) != 0)
        return rc;
    v->stats.n[SB_STAT_PUBLISH]++;
    if (xname.len == 0 && sb_str_has_prefix(key, SB_REPLY_TO_QUEUE ".")) {
        if (m->traced | v->tracing | (v->broker->trace_reply_links != 0))
            sb_broker__trace_publish(v, who, m, headers, NULL, SB_TRACE_ROUTE_REPLY, 0);
        res->routed = sb_broker__reply_route(v->broker, key, m);
        v->stats.n[SB_STAT_UNROUTABLE] += !res->routed;
        return 0;
    }
    if (x->delayed && delay_requested(headers, &delay) && sb_broker__delay_route(x, m, delay)) {
        if (m->traced | v->tracing)
            sb_broker__trace_publish(v, who, m, headers, NULL, SB_TRACE_ROUTE_DELAYED, delay);
        res->routed = true;  /* accepted now, routed when due (as the plugin) */
        res->durable_pos = v->broker->publish_pos;  /* its record, if it was logged */
        return 0;
    }
    out->n = 0;
    route_key(v, x, key, headers, out);
    if (headers != NULL) {
        route_extra_keys(v, x, headers, "CC", out);
        route_extra_keys(v, x, headers, "BCC", out);
    }
    if (bcc)
        m = without_bcc(m);
    if (m->traced | v->tracing)
        sb_broker__trace_publish(v, who, m, headers, out, SB_TRACE_ROUTE_QUEUES, 0);
    /* Enqueueing may dead-letter, which routes with its own vector. */
    for (size_t i = 0; i < out->n; i++)
        if (!sb_broker__queue_enqueue(out->v[i], m))
            res->rejected = true;
    res->routed = out->n > 0;
    v->stats.n[SB_STAT_UNROUTABLE] += !res->routed;
    res->durable_pos = v->broker->publish_pos;
    if (bcc)
        sb_msg_unref(m);
    return 0;
}
