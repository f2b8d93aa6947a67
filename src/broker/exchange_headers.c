/* exchange_headers.c - the headers exchange, as RabbitMQ's
 * rabbit_exchange_type_headers (3.10 and later) does it.
 *
 * A binding's arguments are its pattern; x-match (default "all") says
 * whether all or any of the pattern's entries must match the message's
 * headers. Pattern keys starting with "x-" are ignored unless x-match is
 * all-with-x or any-with-x; "x-match" itself is always ignored. A pattern
 * entry of type void matches when the header is present, whatever its
 * value. Otherwise the values must be equal as Erlang terms (==):
 *   - the top-level type letter is ignored, so integers of any width,
 *     timestamps and floats compare by numeric value (1 as 'b', 'I', 'l',
 *     'T' and 1.0 as 'd' are all equal), and longstr equals bytes ('x');
 *   - inside nested tables and arrays the type atom is part of the term,
 *     so there types must agree too (except that both sides are compared
 *     with == again, so 0.0 equals -0.0);
 *   - an empty table equals an empty array (both are []).
 * Like RabbitMQ, both sides are sorted by key (stably) and merged; with
 * duplicate keys that merge decides what matches, so we keep it exactly.
 * Routing has to try every binding: there is no index that helps.
 */
#include "xtype_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/error.h"

typedef enum { HX_ALL, HX_ANY, HX_ALL_WITH_X, HX_ANY_WITH_X } hx_mode;

static const char *const hx_names[] = { "all", "any", "all-with-x", "any-with-x" };

typedef struct hx_binding {
    sb_broker__binding b;      /* with key: it is part of the identity */
    hx_mode mode;
    const sb_amqp_entry **pat; /* b.args entries, stably sorted by key */
    uint32_t npat;
} hx_binding;

typedef struct hx_index {
    hx_binding *v;
    size_t n, cap;
} hx_index;

/* ---- sorting by key, as rabbit_misc:sort_field_table ---- */

/* Erlang binary order: bytewise, a proper prefix first. */
static int
key_cmp(sb_str a, sb_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;

    if (c != 0)
        return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* Entries of one table sit in one array in wire order, so comparing
 * addresses after keys makes qsort stable, as lists:keysort is. */
static int
entry_ptr_cmp(const void *x, const void *y)
{
    const sb_amqp_entry *a = *(const sb_amqp_entry *const *)x;
    const sb_amqp_entry *b = *(const sb_amqp_entry *const *)y;
    int c = key_cmp(a->key, b->key);

    if (c != 0)
        return c;
    return (a > b) - (a < b);
}

/* A new array of pointers to t's entries, sorted; NULL when t is empty. */
static const sb_amqp_entry **
sorted_entries(const sb_amqp_table *t, uint32_t *n)
{
    const sb_amqp_entry **v;

    *n = t ? t->n : 0;
    if (*n == 0)
        return NULL;
    v = sb_malloc(*n * sizeof *v);
    for (uint32_t i = 0; i < *n; i++)
        v[i] = &t->e[i];
    qsort(v, *n, sizeof *v, entry_ptr_cmp);
    return v;
}

/* ---- value equality (Erlang ==) ---- */

static bool value_eq(const sb_amqp_value *a, const sb_amqp_value *b, bool typed);

static bool
kind_is_int(uint8_t k)
{
    switch (k) {
    case SB_FV_I8: case SB_FV_I16: case SB_FV_I32: case SB_FV_I64:
    case SB_FV_U8: case SB_FV_U16: case SB_FV_U32: case SB_FV_TIMESTAMP:
        return true;
    default:
        return false;
    }
}

static bool
kind_is_float(uint8_t k)
{
    return k == SB_FV_F32 || k == SB_FV_F64;
}

/* An integer as sign and magnitude, so int64 and uint64 compare exactly. */
static void
int_parts(const sb_amqp_value *v, bool *neg, uint64_t *mag)
{
    bool is_signed = v->kind == SB_FV_I8 || v->kind == SB_FV_I16 ||
                     v->kind == SB_FV_I32 || v->kind == SB_FV_I64;

    *neg = is_signed && v->v.i < 0;
    if (!is_signed)
        *mag = v->v.u;
    else
        *mag = *neg ? (uint64_t)0 - (uint64_t)v->v.i : (uint64_t)v->v.i;
}

static double
float_of(const sb_amqp_value *v)
{
    return v->kind == SB_FV_F32 ? (double)v->v.f32 : v->v.f64;
}

/* Erlang compares an integer and a float by exact value. (No floor():
 * the broker does not link libm.) */
static bool
int_eq_float(const sb_amqp_value *i, double d)
{
    bool neg;
    uint64_t mag, dm;
    double ad = d < 0 ? -d : d;

    if (!isfinite(d) || ad >= 18446744073709551616.0)
        return false;
    dm = (uint64_t)ad;            /* truncates: exact only if ad is integral */
    if ((double)dm != ad)
        return false;
    int_parts(i, &neg, &mag);
    return mag == dm && (neg == (d < 0) || mag == 0);
}

static bool
num_eq(const sb_amqp_value *a, const sb_amqp_value *b)
{
    bool an, bn;
    uint64_t am, bm;

    if (kind_is_float(a->kind) && kind_is_float(b->kind))
        return float_of(a) == float_of(b);
    if (kind_is_float(a->kind))
        return int_eq_float(b, float_of(a));
    if (kind_is_float(b->kind))
        return int_eq_float(a, float_of(b));
    int_parts(a, &an, &am);
    int_parts(b, &bn, &bm);
    return an == bn && am == bm;
}

static bool
is_binary(uint8_t k)
{
    return k == SB_FV_LONGSTR || k == SB_FV_BYTES;
}

/* Nested tables are lists of {Key, Type, Value}: types must agree. */
static bool
table_eq(const sb_amqp_table *a, const sb_amqp_table *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (!sb_str_eq(a->e[i].key, b->e[i].key) ||
            !value_eq(&a->e[i].v, &b->e[i].v, true))
            return false;
    return true;
}

/* Arrays are lists of {Type, Value}: types must agree. */
static bool
array_eq(const sb_amqp_array *a, const sb_amqp_array *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (!value_eq(&a->v[i], &b->v[i], true))
            return false;
    return true;
}

static bool
list_eq(const sb_amqp_value *a, const sb_amqp_value *b)
{
    if (a->kind == SB_FV_TABLE && b->kind == SB_FV_TABLE)
        return table_eq(&a->v.t, &b->v.t);
    if (a->kind == SB_FV_ARRAY && b->kind == SB_FV_ARRAY)
        return array_eq(&a->v.a, &b->v.a);
    /* A table and an array are both Erlang lists: equal only as []. */
    return (a->kind == SB_FV_TABLE ? a->v.t.n : a->v.a.n) == 0 &&
           (b->kind == SB_FV_TABLE ? b->v.t.n : b->v.a.n) == 0;
}

/* typed: the type atoms are part of the compared term (inside a nested
 * table or array), so the kinds must agree as well. */
static bool
value_eq(const sb_amqp_value *a, const sb_amqp_value *b, bool typed)
{
    uint8_t ka = a->kind, kb = b->kind;
    bool a_num = kind_is_int(ka) || kind_is_float(ka);
    bool b_num = kind_is_int(kb) || kind_is_float(kb);

    if (typed && ka != kb)
        return false;
    if (a_num || b_num)
        return a_num && b_num && num_eq(a, b);
    if (is_binary(ka) || is_binary(kb))
        return is_binary(ka) && is_binary(kb) && sb_str_eq(a->v.s, b->v.s);
    if ((ka == SB_FV_TABLE || ka == SB_FV_ARRAY) && (kb == SB_FV_TABLE || kb == SB_FV_ARRAY))
        return list_eq(a, b);
    if (ka != kb)
        return false;  /* bool, void and decimal are distinct Erlang terms */
    switch (ka) {
    case SB_FV_BOOL:
        return a->v.b == b->v.b;
    case SB_FV_DECIMAL:
        return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
    case SB_FV_VOID:
        return true;
    default:
        return false;
    }
}

/* ---- matching ---- */

static bool
pattern_key_ignored(sb_str key, hx_mode mode)
{
    if (sb_str_eq_c(key, "x-match"))
        return true;
    return mode != HX_ALL_WITH_X && mode != HX_ANY_WITH_X && sb_str_has_prefix(key, "x-");
}

/* RabbitMQ's headers_match/5: a merge of the sorted pattern and the
 * sorted headers, tracking "all matched so far" and "any matched". */
static bool
hx_match(const hx_binding *hb, const sb_amqp_entry *const *data, size_t nd)
{
    bool want_all = hb->mode == HX_ALL || hb->mode == HX_ALL_WITH_X;
    bool all = true, any = false;
    size_t p = 0, d = 0;

    for (;;) {
        if (want_all ? !all : any)
            return want_all ? all : any;
        if (p == hb->npat)
            return want_all ? all : any;
        const sb_amqp_entry *pe = hb->pat[p];
        if (pattern_key_ignored(pe->key, hb->mode)) {
            p++;
            continue;
        }
        if (d == nd)
            return want_all ? false : any;
        int c = key_cmp(pe->key, data[d]->key);
        if (c > 0) {            /* header not in the pattern */
            d++;
            continue;
        }
        if (c < 0)              /* pattern key not in the headers */
            all = false;
        else if (pe->v.kind == SB_FV_VOID || value_eq(&pe->v, &data[d]->v, false))
            any = true, d++;
        else
            all = false, d++;
        p++;
    }
}

static hx_mode
parse_x_match(const sb_amqp_table *args)
{
    const sb_amqp_value *v = args ? sb_amqp_table_get(args, "x-match") : NULL;

    if (v == NULL || v->kind != SB_FV_LONGSTR)
        return HX_ALL;  /* legacy: RabbitMQ did not always validate */
    for (int m = HX_ALL; m <= HX_ANY_WITH_X; m++)
        if (sb_str_eq_c(v->v.s, hx_names[m]))
            return (hx_mode)m;
    return HX_ALL;
}

/* ---- index ---- */

static void *
headers_create(void)
{
    return sb_calloc(1, sizeof(hx_index));
}

static void
hx_binding_clear(hx_binding *hb)
{
    sb_free(hb->pat);
    sb_broker__binding_clear(&hb->b);
}

static void
headers_destroy(void *index)
{
    hx_index *x = index;

    for (size_t i = 0; i < x->n; i++)
        hx_binding_clear(&x->v[i]);
    sb_free(x->v);
    sb_free(x);
}

static ptrdiff_t
hx_find(const hx_index *x, sb_str key, const sb_amqp_table *args, void *dest)
{
    for (size_t i = 0; i < x->n; i++)
        if (sb_broker__binding_is(&x->v[i].b, true, key, args, dest))
            return (ptrdiff_t)i;
    return -1;
}

static int
headers_bind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    hx_index *x = index;
    hx_binding *hb;

    if (hx_find(x, key, args, dest) >= 0)
        return 1;
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 4;
        x->v = sb_realloc(x->v, x->cap * sizeof *x->v);
    }
    hb = &x->v[x->n++];
    sb_broker__binding_init(&hb->b, true, key, args, dest);
    hb->mode = parse_x_match(hb->b.args);
    hb->pat = sorted_entries(hb->b.args, &hb->npat);
    return 0;
}

static int
headers_unbind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    hx_index *x = index;
    ptrdiff_t i = hx_find(x, key, args, dest);

    if (i < 0)
        return 1;
    hx_binding_clear(&x->v[i]);
    x->v[i] = x->v[--x->n];
    return 0;
}

static void
headers_route(void *index, sb_str routing_key, const sb_amqp_table *headers,
              sb_dest_vec *out)
{
    hx_index *x = index;
    uint32_t nd;
    const sb_amqp_entry **data = sorted_entries(headers, &nd);
    sb_broker__sink sink;

    sb_broker__sink_init(&sink, out);
    for (size_t i = 0; i < x->n; i++)
        if (hx_match(&x->v[i], data, nd))
            sb_broker__sink_add(&sink, x->v[i].b.dest);
    sb_broker__sink_done(&sink);
    sb_free(data);
}

/* RabbitMQ's validate_binding: x-match, when present, must be a longstr
 * naming one of the four modes. The text is RabbitMQ's, without the
 * "PRECONDITION_FAILED - " prefix the session adds to every reply. */
static int
headers_check_args(const sb_amqp_table *args, char *err_text, size_t err_len)
{
    const sb_amqp_value *v = args ? sb_amqp_table_get(args, "x-match") : NULL;
    char term[200];

    if (v == NULL)
        return 0;
    if (v->kind == SB_FV_LONGSTR) {
        for (int m = HX_ALL; m <= HX_ANY_WITH_X; m++)
            if (sb_str_eq_c(v->v.s, hx_names[m]))
                return 0;
        sb_amqp_fmt_term(term, sizeof term, v);
        snprintf(err_text, err_len,
                 "Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x",
                 term);
        return SB_PRECONDITION_FAILED;
    }
    sb_amqp_fmt_term(term, sizeof term, v);
    snprintf(err_text, err_len, "Invalid x-match field type %s (value %s); expected longstr",
             sb_amqp_fmt_type(v->kind), term);
    return SB_PRECONDITION_FAILED;
}

const sb_xtype sb_xtype_headers = {
    .name = "headers",
    .create = headers_create,
    .destroy = headers_destroy,
    .bind = headers_bind,
    .unbind = headers_unbind,
    .route = headers_route,
    .check_args = headers_check_args,
};
