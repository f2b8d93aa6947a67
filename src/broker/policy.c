/* policy.c - RabbitMQ's policies: queue and exchange settings applied by
 * name pattern instead of by x-arguments at declare time.
 *
 * A policy belongs to a vhost and has a name, a pattern (a PCRE regular
 * expression searched in the object's name, unanchored, as RabbitMQ's
 * re:run), what it applies to ("queues", "exchanges" or "all"), a priority
 * and a definition. Of the policies matching an object, the one with the
 * highest priority applies (ties: the first by name); only one applies.
 *
 * What a definition sets, and how it combines with the object's own
 * x-arguments (RabbitMQ 3.10's classic queue rules):
 *   message-ttl, expires, max-length, max-length-bytes, delivery-limit:
 *       the smaller of the argument and the policy value;
 *   dead-letter-exchange, dead-letter-routing-key, overflow,
 *   alternate-exchange (exchanges): the argument if there is one;
 *   retry-delays (Switchboard's x-retry-delays): the argument if any.
 * Keys RabbitMQ accepts for features Switchboard does not have (mirroring,
 * queue-mode, federation, streams ...) are accepted and have no effect,
 * so definitions exported from RabbitMQ import. Anything else is refused.
 *
 * Setting or deleting a policy re-evaluates every queue and exchange of
 * the vhost at once: a lower max-length drops (dead-letters) the oldest
 * messages over it, a new expires restarts the queue's expiry timer. A
 * message-ttl applies to messages enqueued from then on (a queued message
 * keeps the expiry it got on arrival, as in RabbitMQ). Policies are
 * durable definitions. Runs on the loop thread. */
#include "broker_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

enum { APPLY_QUEUES = 1, APPLY_EXCHANGES = 2 };

/* What a definition sets; -1 / NULL: not set. */
typedef struct policy_def {
    int64_t message_ttl, expires, max_length, max_bytes, delivery_limit;
    int overflow;               /* sb_overflow, or -1 */
    char *dlx, *dlrk, *alternate;
    uint32_t nretry;
    uint64_t *retry_delays;
} policy_def;

struct sb_policy {
    sb_list link;               /* in the vhost's list: priority high to low, then name */
    char *name;
    char *pattern;
    pcre2_code *re;
    unsigned apply_to;          /* APPLY_* bits */
    int64_t priority;
    json_t *definition;         /* as given (validated) */
    policy_def def;
};

struct sb_policy_set {
    sb_list list;
    pcre2_match_data *md;
};

/* ---- validating a definition ---- */

typedef enum key_kind {
    K_INT_NONNEG,               /* integer >= 0 */
    K_INT_POS,                  /* integer >= 1 */
    K_STRING,
    K_OVERFLOW,
    K_DELAYS,                   /* array of integers >= 0 */
    K_IGNORED,                  /* accepted, no effect here */
} key_kind;

static const struct policy_key {
    const char *name;
    key_kind kind;
    size_t off;                 /* in policy_def (not for K_IGNORED) */
    const char *what;           /* for "... is not a valid <what>" */
} keys[] = {
    { "message-ttl", K_INT_NONNEG, offsetof(policy_def, message_ttl), "message TTL" },
    { "expires", K_INT_POS, offsetof(policy_def, expires), "queue TTL" },
    { "max-length", K_INT_NONNEG, offsetof(policy_def, max_length), "maximum length" },
    { "max-length-bytes", K_INT_NONNEG, offsetof(policy_def, max_bytes),
      "maximum length in bytes" },
    { "delivery-limit", K_INT_NONNEG, offsetof(policy_def, delivery_limit), "delivery limit" },
    { "overflow", K_OVERFLOW, offsetof(policy_def, overflow), "overflow value" },
    { "dead-letter-exchange", K_STRING, offsetof(policy_def, dlx), "dead letter exchange name" },
    { "dead-letter-routing-key", K_STRING, offsetof(policy_def, dlrk),
      "dead letter exchange routing key" },
    { "alternate-exchange", K_STRING, offsetof(policy_def, alternate),
      "alternate exchange name" },
    { "retry-delays", K_DELAYS, 0, "list of retry delays" },
    { "ha-mode", K_IGNORED, 0, NULL }, { "ha-params", K_IGNORED, 0, NULL },
    { "ha-sync-mode", K_IGNORED, 0, NULL }, { "ha-sync-batch-size", K_IGNORED, 0, NULL },
    { "ha-promote-on-shutdown", K_IGNORED, 0, NULL },
    { "ha-promote-on-failure", K_IGNORED, 0, NULL },
    { "queue-mode", K_IGNORED, 0, NULL }, { "queue-master-locator", K_IGNORED, 0, NULL },
    { "queue-leader-locator", K_IGNORED, 0, NULL }, { "queue-version", K_IGNORED, 0, NULL },
    { "max-age", K_IGNORED, 0, NULL }, { "max-in-memory-length", K_IGNORED, 0, NULL },
    { "max-in-memory-bytes", K_IGNORED, 0, NULL },
    { "stream-max-segment-size-bytes", K_IGNORED, 0, NULL },
    { "initial-cluster-size", K_IGNORED, 0, NULL },
    { "dead-letter-strategy", K_IGNORED, 0, NULL },
    { "federation-upstream", K_IGNORED, 0, NULL },
    { "federation-upstream-set", K_IGNORED, 0, NULL },
};

static void
def_init(policy_def *d)
{
    memset(d, 0, sizeof *d);
    d->message_ttl = d->expires = d->max_length = d->max_bytes = d->delivery_limit = -1;
    d->overflow = -1;
}

static void
def_free(policy_def *d)
{
    sb_free(d->dlx);
    sb_free(d->dlrk);
    sb_free(d->alternate);
    sb_free(d->retry_delays);
    def_init(d);
}

static int
bad_value(const char *key, const json_t *v, const char *what, char *why, size_t len)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

    snprintf(why, len, "Validation failed\n\n%s is not a valid %s (in '%s')\n",
             text ? text : "?", what, key);
    free(text);
    return -1;
}

static int
parse_key(const struct policy_key *k, const json_t *v, policy_def *d, char *why, size_t len)
{
    char *field = (char *)d + k->off;
    json_int_t n;

    switch (k->kind) {
    case K_IGNORED:
        return 0;
    case K_INT_NONNEG:
    case K_INT_POS:
        if (!json_is_integer(v) || (n = json_integer_value(v)) < (k->kind == K_INT_POS))
            return bad_value(k->name, v, k->what, why, len);
        *(int64_t *)(void *)field = n;
        return 0;
    case K_STRING:
        if (!json_is_string(v))
            return bad_value(k->name, v, k->what, why, len);
        *(char **)(void *)field = sb_strdup(json_string_value(v));
        return 0;
    case K_OVERFLOW: {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, "drop-head") == 0)
            d->overflow = SB_OVERFLOW_DROP_HEAD;
        else if (s != NULL && strcmp(s, "reject-publish") == 0)
            d->overflow = SB_OVERFLOW_REJECT_PUBLISH;
        else if (s != NULL && strcmp(s, "reject-publish-dlx") == 0)
            d->overflow = SB_OVERFLOW_REJECT_PUBLISH_DLX;
        else
            return bad_value(k->name, v, k->what, why, len);
        return 0;
    }
    case K_DELAYS: {
        size_t i;
        const json_t *e;
        if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 64)
            return bad_value(k->name, v, k->what, why, len);
        json_array_foreach(v, i, e)
            if (!json_is_integer(e) || json_integer_value(e) < 0)
                return bad_value(k->name, v, k->what, why, len);
        d->nretry = (uint32_t)json_array_size(v);
        d->retry_delays = sb_calloc(d->nretry, sizeof *d->retry_delays);
        json_array_foreach(v, i, e)
            d->retry_delays[i] = (uint64_t)json_integer_value(e);
        return 0;
    }
    }
    return -1;
}

/* Parses definition into d; -1 with RabbitMQ-style text in why. */
static int
parse_definition(const json_t *definition, policy_def *d, char *why, size_t len)
{
    const char *key;
    const json_t *v;

    def_init(d);
    if (!json_is_object(definition) || json_object_size(definition) == 0) {
        snprintf(why, len, "Validation failed\n\nno policy definition given\n");
        return -1;
    }
    json_object_foreach((json_t *)definition, key, v) {
        const struct policy_key *k = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0] && k == NULL; i++)
            if (strcmp(keys[i].name, key) == 0)
                k = &keys[i];
        if (k == NULL) {
            char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(why, len, "Validation failed\n\n[{<<\"%s\">>,%s}] are not recognised "
                               "policy settings\n", key, text ? text : "?");
            free(text);
            def_free(d);
            return -1;
        }
        if (parse_key(k, v, d, why, len) < 0) {
            def_free(d);
            return -1;
        }
    }
    return 0;
}

/* ---- the set of a vhost ---- */

static struct sb_policy_set *
set_of(sb_vhost *v, bool create)
{
    if (v->policies == NULL && create) {
        v->policies = sb_calloc(1, sizeof *v->policies);
        sb_list_init(&v->policies->list);
        v->policies->md = pcre2_match_data_create(1, NULL);
    }
    return v->policies;
}

static sb_policy *
find(sb_vhost *v, const char *name)
{
    struct sb_policy_set *s = set_of(v, false);
    sb_list *l;

    if (s == NULL)
        return NULL;
    sb_list_foreach(l, &s->list) {
        sb_policy *p = SB_CONTAINER_OF(l, sb_policy, link);
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

static void
policy_free(sb_policy *p)
{
    sb_list_remove(&p->link);
    pcre2_code_free(p->re);
    json_decref(p->definition);
    def_free(&p->def);
    sb_free(p->pattern);
    sb_free(p->name);
    sb_free(p);
}

/* Inserts p keeping the order: priority high to low, then name. */
static void
insert_sorted(struct sb_policy_set *s, sb_policy *p)
{
    sb_list *at;

    sb_list_foreach(at, &s->list) {
        sb_policy *o = SB_CONTAINER_OF(at, sb_policy, link);
        if (o->priority < p->priority ||
            (o->priority == p->priority && strcmp(o->name, p->name) > 0))
            break;
    }
    sb_list_insert_before(at, &p->link);
}

static sb_policy *
match(sb_vhost *v, const char *name, size_t name_len, unsigned kind)
{
    struct sb_policy_set *s = set_of(v, false);
    sb_list *l;

    if (s == NULL)
        return NULL;
    sb_list_foreach(l, &s->list) {
        sb_policy *p = SB_CONTAINER_OF(l, sb_policy, link);
        if ((p->apply_to & kind) &&
            pcre2_match(p->re, (PCRE2_SPTR)name, name_len, 0, 0, s->md, NULL) >= 0)
            return p;
    }
    return NULL;
}

/* ---- effective settings ---- */

static int64_t
smaller(int64_t arg, int64_t pol)
{
    if (arg < 0)
        return pol;
    return pol >= 0 && pol < arg ? pol : arg;
}

static const sb_amqp_value *
arg(const sb_queue *q, const char *key)
{
    return sb_amqp_table_get(&q->args.t, key);
}

void
sb_broker__queue_policy_refresh(sb_queue *q, bool live)
{
    sb_policy *p = match(q->vhost, q->name, q->name_len, APPLY_QUEUES);
    int64_t old_expires = q->cfg.expires;
    sb_queue_cfg cfg;

    sb_broker__queue_cfg(&q->args.t, &cfg);
    if (p != NULL) {
        const policy_def *d = &p->def;
        cfg.message_ttl = smaller(cfg.message_ttl, d->message_ttl);
        cfg.expires = smaller(cfg.expires, d->expires);
        cfg.max_length = smaller(cfg.max_length, d->max_length);
        cfg.max_bytes = smaller(cfg.max_bytes, d->max_bytes);
        cfg.delivery_limit = smaller(cfg.delivery_limit, d->delivery_limit);
        if (d->overflow >= 0 && arg(q, "x-overflow") == NULL)
            cfg.overflow = (sb_overflow)d->overflow;
        if (d->dlx != NULL && cfg.dlx == NULL)
            cfg.dlx = sb_strdup(d->dlx);
        if (d->dlrk != NULL && cfg.dlrk == NULL)
            cfg.dlrk = sb_strdup(d->dlrk);
        if (d->nretry > 0 && cfg.nretry == 0) {
            cfg.nretry = d->nretry;
            cfg.retry_delays = sb_calloc(d->nretry, sizeof *cfg.retry_delays);
            memcpy(cfg.retry_delays, d->retry_delays, d->nretry * sizeof *cfg.retry_delays);
        }
    }
    sb_broker__queue_cfg_free(&q->cfg);
    q->cfg = cfg;
    q->policy = p;
    if (!live)
        return;
    sb_broker__queue_enforce_limits(q);
    if (cfg.expires != old_expires)
        sb_broker__queue_expiry_restart(q);
}

void
sb_broker__exchange_policy_refresh(sb_exchange *x)
{
    sb_policy *p = match(x->vhost, x->name, x->name_len, APPLY_EXCHANGES);
    const sb_amqp_value *ae = sb_amqp_table_get(&x->args.t, "alternate-exchange");

    sb_free(x->alternate);
    x->alternate = NULL;
    if (ae != NULL && ae->kind == SB_FV_LONGSTR)
        x->alternate = sb_strndup(ae->v.s.p, ae->v.s.len);
    else if (p != NULL && p->def.alternate != NULL)
        x->alternate = sb_strdup(p->def.alternate);
    x->policy = p;
}

/* Re-evaluates every queue and exchange of v (a policy came or went). */
static void
refresh_all(sb_vhost *v)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&v->exchanges, &it, NULL, &val))
        sb_broker__exchange_policy_refresh(val);
    /* Enforcing a lower limit may dead-letter messages into other queues;
     * that neither creates nor deletes a queue, so the map walk is safe. */
    for (it = 0; sb_map_next(&v->queues, &it, NULL, &val);)
        sb_broker__queue_policy_refresh(val, true);
}

/* ---- the API ---- */

int
sb_policy_set(sb_vhost *v, const char *name, const void *json, char *why, size_t why_len)
{
    const json_t *o = json;
    const json_t *pat = json_object_get(o, "pattern");
    const json_t *prio = json_object_get(o, "priority");
    const char *apply = json_string_value(json_object_get(o, "apply-to"));
    const json_t *definition = json_object_get(o, "definition");
    unsigned apply_to;
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re;
    policy_def d;
    sb_policy *p;

    if (name[0] == '\0' || !json_is_string(pat)) {
        snprintf(why, why_len, name[0] == '\0' ? "policy name must not be empty"
                                               : "Validation failed\n\npattern is required\n");
        return -1;
    }
    if (prio != NULL && !json_is_integer(prio)) {
        snprintf(why, why_len, "Validation failed\n\npriority must be an integer\n");
        return -1;
    }
    if (apply == NULL || strcmp(apply, "all") == 0)
        apply_to = APPLY_QUEUES | APPLY_EXCHANGES;
    else if (strcmp(apply, "queues") == 0)
        apply_to = APPLY_QUEUES;
    else if (strcmp(apply, "exchanges") == 0)
        apply_to = APPLY_EXCHANGES;
    else {
        snprintf(why, why_len, "Validation failed\n\n'%s' is not a valid apply-to value "
                               "(all, queues or exchanges)\n", apply);
        return -1;
    }
    re = pcre2_compile((PCRE2_SPTR)json_string_value(pat), PCRE2_ZERO_TERMINATED, 0, &errcode,
                       &erroff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        snprintf(why, why_len, "Validation failed\n\n\"%s\" is not a valid regular expression: "
                               "%s at position %zu\n", json_string_value(pat), (char *)msg,
                 (size_t)erroff);
        return -1;
    }
    if (parse_definition(definition, &d, why, why_len) < 0) {
        pcre2_code_free(re);
        return -1;
    }
    if ((p = find(v, name)) != NULL)
        policy_free(p);
    p = sb_calloc(1, sizeof *p);
    p->name = sb_strdup(name);
    p->pattern = sb_strdup(json_string_value(pat));
    p->re = re;
    p->apply_to = apply_to;
    p->priority = prio != NULL ? json_integer_value(prio) : 0;
    p->definition = json_deep_copy(definition);
    p->def = d;
    insert_sorted(set_of(v, true), p);
    refresh_all(v);
    sb_broker__defs_changed(v->broker);
    return 0;
}

int
sb_policy_delete(sb_vhost *v, const char *name)
{
    sb_policy *p = find(v, name);

    if (p == NULL)
        return -1;
    policy_free(p);
    refresh_all(v);
    sb_broker__defs_changed(v->broker);
    return 0;
}

static json_t *
policy_json(const sb_vhost *v, const sb_policy *p)
{
    const char *apply = p->apply_to == APPLY_QUEUES      ? "queues"
                        : p->apply_to == APPLY_EXCHANGES ? "exchanges"
                                                         : "all";

    return json_pack("{s:s, s:s, s:s, s:s, s:O, s:I}", "vhost", v->name, "name", p->name,
                     "pattern", p->pattern, "apply-to", apply, "definition", p->definition,
                     "priority", (json_int_t)p->priority);
}

void *
sb_policy_json(sb_vhost *v, const char *name)
{
    sb_policy *p = find(v, name);

    return p != NULL ? policy_json(v, p) : NULL;
}

void
sb_vhost_policies_json(sb_vhost *v, void *array)
{
    struct sb_policy_set *s = set_of(v, false);
    sb_list *l;

    if (s == NULL)
        return;
    sb_list_foreach(l, &s->list)
        json_array_append_new(array, policy_json(v, SB_CONTAINER_OF(l, sb_policy, link)));
}

const char *
sb_policy_name(const sb_policy *p)
{
    return p != NULL ? p->name : NULL;
}

void *
sb_policy_definition_json(const sb_policy *p)
{
    return p != NULL ? json_deep_copy(p->definition) : json_object();
}

void
sb_broker__policies_free(sb_vhost *v)
{
    struct sb_policy_set *s = v->policies;
    sb_list *l;

    if (s == NULL)
        return;
    while ((l = sb_list_first(&s->list)) != NULL)
        policy_free(SB_CONTAINER_OF(l, sb_policy, link));
    pcre2_match_data_free(s->md);
    sb_free(s);
    v->policies = NULL;
}
