/* xtype.c - destination vectors, the exchange-type registry, and the
 * helpers the exchange_*.c files share (see xtype_impl.h). */
#include "xtype_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"

/* ---- sb_dest_vec ---- */

static void
dest_vec_push(sb_dest_vec *dv, void *dest)
{
    if (dv->n == dv->cap) {
        dv->cap = dv->cap ? dv->cap * 2 : 8;
        dv->v = sb_realloc(dv->v, dv->cap * sizeof *dv->v);
    }
    dv->v[dv->n++] = dest;
}

void
sb_dest_vec_push_unique(sb_dest_vec *dv, void *dest)
{
    for (size_t i = 0; i < dv->n; i++)
        if (dv->v[i] == dest)
            return;
    dest_vec_push(dv, dest);
}

void
sb_dest_vec_free(sb_dest_vec *dv)
{
    sb_free(dv->v);
    *dv = (sb_dest_vec){ NULL, 0, 0 };
}

/* ---- registry ---- */

static const sb_xtype *const xtypes[] = {
    &sb_xtype_direct, &sb_xtype_fanout, &sb_xtype_topic, &sb_xtype_headers,
};

const sb_xtype *
sb_xtype_find(sb_str name)
{
    for (size_t i = 0; i < sizeof xtypes / sizeof xtypes[0]; i++)
        if (sb_str_eq_c(name, xtypes[i]->name))
            return xtypes[i];
    return NULL;
}

/* ---- deep copies of argument tables ---- */

static void table_copy(sb_amqp_table *dst, const sb_amqp_table *src);
static void table_release(sb_amqp_table *t);

static sb_str
str_copy(sb_str s)
{
    if (s.p == NULL)
        return s;
    return sb_str_make(sb_memdup(s.p, s.len), s.len);
}

static void
array_copy(sb_amqp_array *dst, const sb_amqp_array *src);

static void
value_copy(sb_amqp_value *dst, const sb_amqp_value *src)
{
    *dst = *src;
    switch (src->kind) {
    case SB_FV_LONGSTR:
    case SB_FV_BYTES:
        dst->v.s = str_copy(src->v.s);
        break;
    case SB_FV_TABLE:
        table_copy(&dst->v.t, &src->v.t);
        break;
    case SB_FV_ARRAY:
        array_copy(&dst->v.a, &src->v.a);
        break;
    default:
        break;
    }
}

static void
value_release(sb_amqp_value *v);

static void
array_copy(sb_amqp_array *dst, const sb_amqp_array *src)
{
    dst->n = src->n;
    dst->raw = str_copy(src->raw);
    dst->v = src->n ? sb_calloc(src->n, sizeof *dst->v) : NULL;
    for (uint32_t i = 0; i < src->n; i++)
        value_copy(&dst->v[i], &src->v[i]);
}

static void
table_copy(sb_amqp_table *dst, const sb_amqp_table *src)
{
    dst->n = src->n;
    dst->raw = str_copy(src->raw);
    dst->e = src->n ? sb_calloc(src->n, sizeof *dst->e) : NULL;
    for (uint32_t i = 0; i < src->n; i++) {
        dst->e[i].key = str_copy(src->e[i].key);
        value_copy(&dst->e[i].v, &src->e[i].v);
    }
}

static void
value_release(sb_amqp_value *v)
{
    switch (v->kind) {
    case SB_FV_LONGSTR:
    case SB_FV_BYTES:
        sb_free((void *)v->v.s.p);
        break;
    case SB_FV_TABLE:
        table_release(&v->v.t);
        break;
    case SB_FV_ARRAY:
        for (uint32_t i = 0; i < v->v.a.n; i++)
            value_release(&v->v.a.v[i]);
        sb_free(v->v.a.v);
        sb_free((void *)v->v.a.raw.p);
        break;
    default:
        break;
    }
}

static void
table_release(sb_amqp_table *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        sb_free((void *)t->e[i].key.p);
        value_release(&t->e[i].v);
    }
    sb_free(t->e);
    sb_free((void *)t->raw.p);
}

sb_amqp_table *
sb_broker__args_dup(const sb_amqp_table *t)
{
    sb_amqp_table *c;

    if (t == NULL || t->n == 0)
        return NULL;
    c = sb_calloc(1, sizeof *c);
    table_copy(c, t);
    return c;
}

void
sb_broker__args_free(sb_amqp_table *t)
{
    if (t == NULL)
        return;
    table_release(t);
    sb_free(t);
}

bool
sb_broker__args_equal(const sb_amqp_table *a, const sb_amqp_table *b)
{
    bool a_empty = a == NULL || a->n == 0, b_empty = b == NULL || b->n == 0;

    if (a_empty || b_empty)
        return a_empty && b_empty;
    return sb_amqp_table_equal(a, b);
}

/* ---- bindings and binding lists ---- */

void
sb_broker__binding_init(sb_broker__binding *b, bool with_key, sb_str key,
                        const sb_amqp_table *args, void *dest)
{
    b->key = with_key ? sb_memdup(key.p, key.len) : NULL;
    b->klen = with_key ? key.len : 0;
    b->args = sb_broker__args_dup(args);
    b->dest = dest;
}

void
sb_broker__binding_clear(sb_broker__binding *b)
{
    sb_free(b->key);
    sb_broker__args_free(b->args);
    *b = (sb_broker__binding){ 0 };
}

bool
sb_broker__binding_is(const sb_broker__binding *b, bool with_key, sb_str key,
                      const sb_amqp_table *args, void *dest)
{
    if (b->dest != dest)
        return false;
    if (with_key && !sb_str_eq(sb_str_make(b->key, b->klen), key))
        return false;
    return sb_broker__args_equal(b->args, args);
}

ptrdiff_t
sb_broker__blist_find(const sb_broker__blist *l, sb_str key, const sb_amqp_table *args,
                      void *dest)
{
    for (size_t i = 0; i < l->n; i++)
        if (sb_broker__binding_is(&l->v[i], l->with_key, key, args, dest))
            return (ptrdiff_t)i;
    return -1;
}

int
sb_broker__blist_add(sb_broker__blist *l, sb_str key, const sb_amqp_table *args,
                     void *dest)
{
    if (sb_broker__blist_find(l, key, args, dest) >= 0)
        return 1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 2;
        l->v = sb_realloc(l->v, l->cap * sizeof *l->v);
    }
    sb_broker__binding_init(&l->v[l->n++], l->with_key, key, args, dest);
    return 0;
}

int
sb_broker__blist_del(sb_broker__blist *l, sb_str key, const sb_amqp_table *args,
                     void *dest)
{
    ptrdiff_t i = sb_broker__blist_find(l, key, args, dest);

    if (i < 0)
        return 1;
    sb_broker__binding_clear(&l->v[i]);
    l->v[i] = l->v[--l->n];
    return 0;
}

void
sb_broker__blist_free(sb_broker__blist *l)
{
    for (size_t i = 0; i < l->n; i++)
        sb_broker__binding_clear(&l->v[i]);
    sb_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- deduplicating sink ---- */

#define SINK_LINEAR_MAX 16

static size_t
ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

/* Inserts p into the set; returns false if it was already there. */
static bool
set_insert(sb_broker__sink *s, void *p)
{
    size_t mask = s->cap - 1;

    for (size_t i = ptr_hash(p) & mask;; i = (i + 1) & mask) {
        if (s->set[i] == p)
            return false;
        if (s->set[i] == NULL) {
            s->set[i] = p;
            return true;
        }
    }
}

/* Sizes the set for out->n + 1 entries at under half load, and rehashes
 * out's entries into it. */
static void
set_build(sb_broker__sink *s)
{
    size_t cap = 64;

    while (cap < (s->out->n + 1) * 2)
        cap *= 2;
    sb_free(s->set);
    s->set = sb_calloc(cap, sizeof *s->set);
    s->cap = cap;
    for (size_t i = 0; i < s->out->n; i++)
        (void)set_insert(s, s->out->v[i]);
}

void
sb_broker__sink_init(sb_broker__sink *s, sb_dest_vec *out)
{
    s->out = out;
    s->set = NULL;
    s->cap = 0;
}

void
sb_broker__sink_add(sb_broker__sink *s, void *dest)
{
    if (s->cap == 0 && s->out->n < SINK_LINEAR_MAX) {
        sb_dest_vec_push_unique(s->out, dest);
        return;
    }
    if (s->cap == 0 || (s->out->n + 1) * 2 > s->cap)
        set_build(s);
    if (set_insert(s, dest))
        dest_vec_push(s->out, dest);
}

void
sb_broker__sink_done(sb_broker__sink *s)
{
    sb_free(s->set);
    s->set = NULL;
    s->cap = 0;
}
