/* args.c - declare arguments as RabbitMQ checks them: validation of the
 * queue arguments it knows, and the equivalence check on redeclare (only
 * the known arguments are compared; unknown ones are accepted and kept).
 * Error texts follow RabbitMQ 3.10's wording exactly. */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"

typedef enum arg_check {
    ARG_NON_NEG_INT,    /* integer >= 0 */
    ARG_POS_INT,        /* integer > 0 (x-expires) */
    ARG_PRIORITY,       /* integer 0..255 */
    ARG_STRING,
    ARG_BOOL,
    ARG_OVERFLOW,       /* drop-head, reject-publish, reject-publish-dlx */
    ARG_QUEUE_MODE,     /* default, lazy */
    ARG_QUEUE_TYPE,     /* classic (quorum accepted as classic) */
    ARG_DELAYS,         /* non-empty array of integers >= 0 (x-retry-delays) */
} arg_check;

typedef struct arg_spec {
    const char *name;
    arg_check check;
} arg_spec;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const arg_spec exchange_args[] = {
    { "alternate-exchange", ARG_STRING },
};

static const arg_spec queue_args[] = {
    { "x-expires", ARG_POS_INT },
    { "x-message-ttl", ARG_NON_NEG_INT },
    { "x-dead-letter-exchange", ARG_STRING },
    { "x-dead-letter-routing-key", ARG_STRING },
    { "x-max-length", ARG_NON_NEG_INT },
    { "x-max-length-bytes", ARG_NON_NEG_INT },
    { "x-max-priority", ARG_PRIORITY },
    { "x-overflow", ARG_OVERFLOW },
    { "x-queue-mode", ARG_QUEUE_MODE },
    { "x-queue-type", ARG_QUEUE_TYPE },
    { "x-single-active-consumer", ARG_BOOL },
    { "x-delivery-limit", ARG_NON_NEG_INT },
    { "x-retry-delays", ARG_DELAYS },
};

/* What is wrong with v for check c, as RabbitMQ prints it (~p of the
 * error term), or NULL when v is acceptable. */
static const char *
arg_problem(arg_check c, const sb_amqp_value *v, char *buf, size_t len)
{
    int64_t i;

    switch (c) {
    case ARG_DELAYS:
        if (v->kind != SB_FV_ARRAY || v->v.a.n == 0) {
            snprintf(buf, len, "\"expected a non-empty array of delays in milliseconds\"");
            return buf;
        }
        for (uint32_t k = 0; k < v->v.a.n; k++)
            if (!sb_amqp_value_int(&v->v.a.v[k], &i) || i < 0) {
                snprintf(buf, len, "\"delay %u is not a non-negative integer\"", k + 1);
                return buf;
            }
        return NULL;
    case ARG_NON_NEG_INT:
    case ARG_POS_INT:
    case ARG_PRIORITY:
        if (!sb_amqp_value_int(v, &i) || v->kind == SB_FV_TIMESTAMP) {
            snprintf(buf, len, "\"expected integer, got %s\"", sb_amqp_fmt_type(v->kind));
            return buf;
        }
        if (i < 0)
            snprintf(buf, len, "{value_negative,%lld}", (long long)i);
        else if (i == 0 && c == ARG_POS_INT)
            snprintf(buf, len, "{value_zero,0}");
        else if (i > 255 && c == ARG_PRIORITY)
            snprintf(buf, len, "{max_value_exceeded,%lld}", (long long)i);
        else
            return NULL;
        return buf;
    case ARG_STRING:
        if (v->kind == SB_FV_LONGSTR)
            return NULL;
        snprintf(buf, len, "{unacceptable_type,%s}", sb_amqp_fmt_type(v->kind));
        return buf;
    case ARG_BOOL:
        if (v->kind == SB_FV_BOOL)
            return NULL;
        snprintf(buf, len, "{unacceptable_type,%s}", sb_amqp_fmt_type(v->kind));
        return buf;
    default:
        break;
    }
    if (v->kind != SB_FV_LONGSTR) {
        snprintf(buf, len, "{unacceptable_type,%s}", sb_amqp_fmt_type(v->kind));
        return buf;
    }
    if ((c == ARG_OVERFLOW && (sb_str_eq_c(v->v.s, "drop-head") ||
                               sb_str_eq_c(v->v.s, "reject-publish") ||
                               sb_str_eq_c(v->v.s, "reject-publish-dlx"))) ||
        (c == ARG_QUEUE_MODE && (sb_str_eq_c(v->v.s, "default") || sb_str_eq_c(v->v.s, "lazy"))) ||
        (c == ARG_QUEUE_TYPE && (sb_str_eq_c(v->v.s, "classic") || sb_str_eq_c(v->v.s, "quorum"))))
        return NULL;
    if (c == ARG_QUEUE_TYPE) {
        snprintf(buf, len, "\"unsupported queue type '%.*s'\"", SB_STR_ARGS(v->v.s));
        return buf;
    }
    snprintf(buf, len, "%s", c == ARG_OVERFLOW ? "invalid_overflow" : "invalid_queue_mode");
    return buf;
}

int
sb_broker__queue_args_check(const char *qname, const char *vhost, const sb_amqp_table *args,
                            sb_error *err)
{
    char why[200];

    if (args == NULL)
        return 0;
    for (size_t i = 0; i < COUNT(queue_args); i++) {
        const sb_amqp_value *v = sb_amqp_table_get(args, queue_args[i].name);
        const char *p = v ? arg_problem(queue_args[i].check, v, why, sizeof why) : NULL;
        if (p == NULL && v != NULL && strcmp(queue_args[i].name, "x-dead-letter-routing-key") == 0 &&
            sb_amqp_table_get(args, "x-dead-letter-exchange") == NULL)
            p = "routing_key_but_no_dlx_defined";
        if (p != NULL)
            return sb_error_set(err, SB_PRECONDITION_FAILED,
                                "invalid arg '%s' for queue '%s' in vhost '%s': %s",
                                queue_args[i].name, qname, vhost, p);
    }
    return 0;
}

static int64_t
int_arg(const sb_amqp_table *args, const char *key, int64_t def)
{
    const sb_amqp_value *v = sb_amqp_table_get(args, key);
    int64_t i;

    return v && sb_amqp_value_int(v, &i) ? i : def;
}

static char *
str_arg(const sb_amqp_table *args, const char *key)
{
    const sb_amqp_value *v = sb_amqp_table_get(args, key);

    return v && v->kind == SB_FV_LONGSTR ? sb_strndup(v->v.s.p, v->v.s.len) : NULL;
}

void
sb_broker__queue_cfg(const sb_amqp_table *args, sb_queue_cfg *cfg)
{
    static const sb_amqp_table none = { 0 };
    const sb_amqp_value *v;

    if (args == NULL)
        args = &none;
    memset(cfg, 0, sizeof *cfg);
    cfg->message_ttl = int_arg(args, "x-message-ttl", -1);
    cfg->expires = int_arg(args, "x-expires", -1);
    cfg->max_length = int_arg(args, "x-max-length", -1);
    cfg->max_bytes = int_arg(args, "x-max-length-bytes", -1);
    cfg->max_priority = (uint8_t)int_arg(args, "x-max-priority", 0);
    cfg->dlx = str_arg(args, "x-dead-letter-exchange");
    cfg->dlrk = str_arg(args, "x-dead-letter-routing-key");
    v = sb_amqp_table_get(args, "x-single-active-consumer");
    cfg->single_active = v && v->kind == SB_FV_BOOL && v->v.b;
    cfg->delivery_limit = int_arg(args, "x-delivery-limit", -1);
    v = sb_amqp_table_get(args, "x-retry-delays");
    if (v && v->kind == SB_FV_ARRAY && v->v.a.n > 0) {
        cfg->nretry = v->v.a.n;
        cfg->retry_delays = sb_calloc(v->v.a.n, sizeof *cfg->retry_delays);
        for (uint32_t k = 0; k < v->v.a.n; k++) {
            int64_t d = 0;
            sb_amqp_value_int(&v->v.a.v[k], &d);
            cfg->retry_delays[k] = d > 0 ? (uint64_t)d : 0;
        }
    }
    v = sb_amqp_table_get(args, "x-overflow");
    cfg->overflow = SB_OVERFLOW_DROP_HEAD;
    if (v && v->kind == SB_FV_LONGSTR && sb_str_eq_c(v->v.s, "reject-publish"))
        cfg->overflow = SB_OVERFLOW_REJECT_PUBLISH;
    else if (v && v->kind == SB_FV_LONGSTR && sb_str_eq_c(v->v.s, "reject-publish-dlx"))
        cfg->overflow = SB_OVERFLOW_REJECT_PUBLISH_DLX;
}

void
sb_broker__queue_cfg_free(sb_queue_cfg *cfg)
{
    sb_free(cfg->dlx);
    sb_free(cfg->dlrk);
    sb_free(cfg->retry_delays);
    memset(cfg, 0, sizeof *cfg);
}

/* RabbitMQ compares integer kinds as one class, float kinds as another. */
static int
type_class(uint8_t kind)
{
    switch (kind) {
    case SB_FV_I8: case SB_FV_U8: case SB_FV_I16: case SB_FV_U16:
    case SB_FV_I32: case SB_FV_U32: case SB_FV_I64:
        return 'I';
    case SB_FV_F32: case SB_FV_F64:
        return 'd';
    default:
        return kind;
    }
}

/* Integers of any width are one class, as in RabbitMQ; inside arrays too,
 * because the definitions file (JSON) does not keep integer widths, so an
 * argument like x-retry-delays [100, 200] sent as signedints comes back as
 * longs after a restart and must still match its redeclaration. */
static bool
values_equal(const sb_amqp_value *a, const sb_amqp_value *b)
{
    sb_amqp_entry ea = { .key = SB_STR_LIT("k"), .v = *a }, eb = { .key = SB_STR_LIT("k"), .v = *b };
    sb_amqp_table ta = { .n = 1, .e = &ea }, tb = { .n = 1, .e = &eb };
    int64_t x, y;

    if (type_class(a->kind) != type_class(b->kind))
        return false;
    if (type_class(a->kind) == 'I')
        return sb_amqp_value_int(a, &x) && sb_amqp_value_int(b, &y) && x == y;
    if (a->kind == SB_FV_ARRAY) {
        if (a->v.a.n != b->v.a.n)
            return false;
        for (uint32_t i = 0; i < a->v.a.n; i++)
            if (!values_equal(&a->v.a.v[i], &b->v.a.v[i]))
                return false;
        return true;
    }
    return sb_amqp_table_equal(&ta, &tb);
}

/* "the value '10' of type 'signedint'", or "none". */
static void
describe(const sb_amqp_value *v, char *buf, size_t len)
{
    char term[160];

    if (v == NULL) {
        snprintf(buf, len, "none");
        return;
    }
    if (v->kind == SB_FV_LONGSTR || v->kind == SB_FV_BYTES)
        snprintf(term, sizeof term, "%.*s", SB_STR_ARGS(v->v.s));
    else
        sb_amqp_fmt_term(term, sizeof term, v);
    snprintf(buf, len, "the value '%s' of type '%s'", term, sb_amqp_fmt_type(v->kind));
}

static void
raw_term(const sb_amqp_value *v, char *buf, size_t len)
{
    if (v->kind == SB_FV_LONGSTR || v->kind == SB_FV_BYTES)
        snprintf(buf, len, "%.*s", SB_STR_ARGS(v->v.s));
    else
        sb_amqp_fmt_term(buf, len, v);
}

/* what is "queue" or "exchange". The first differing argument of spec
 * is reported, as RabbitMQ does. */
static int
args_equivalent(const char *what, const char *name, const char *vhost, const arg_spec *spec,
                size_t n, const sb_amqp_table *cur, const sb_amqp_table *got, sb_error *err)
{
    char a[200], b[200];

    for (size_t i = 0; i < n; i++) {
        const char *key = spec[i].name;
        const sb_amqp_value *c = cur ? sb_amqp_table_get(cur, key) : NULL;
        const sb_amqp_value *g = got ? sb_amqp_table_get(got, key) : NULL;
        if (c == NULL && g == NULL)
            continue;
        if (c != NULL && g != NULL) {
            if (values_equal(c, g))
                continue;
            raw_term(g, a, sizeof a);
            raw_term(c, b, sizeof b);
            return sb_error_set(err, SB_PRECONDITION_FAILED,
                                "inequivalent arg '%s' for %s '%s' in vhost '%s': "
                                "received '%s' but current is '%s'",
                                key, what, name, vhost, a, b);
        }
        describe(g, a, sizeof a);
        describe(c, b, sizeof b);
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "inequivalent arg '%s' for %s '%s' in vhost '%s': "
                            "received %s but current is %s",
                            key, what, name, vhost, a, b);
    }
    return 0;
}

int
sb_broker__queue_args_equivalent(const char *name, const char *vhost, const sb_amqp_table *cur,
                                 const sb_amqp_table *got, sb_error *err)
{
    return args_equivalent("queue", name, vhost, queue_args, COUNT(queue_args), cur, got, err);
}

int
sb_broker__exchange_args_equivalent(const char *name, const char *vhost,
                                    const sb_amqp_table *cur, const sb_amqp_table *got,
                                    sb_error *err)
{
    return args_equivalent("exchange", name, vhost, exchange_args, COUNT(exchange_args), cur,
                           got, err);
}
