/* xtype_test_util.h - helpers shared by the test_xtype_*.c unit tests:
 * in-memory field values and tables, a route call that returns a fresh
 * vector, and a membership check. Header-only (each test is one binary). */
#ifndef SB_XTYPE_TEST_UTIL_H
#define SB_XTYPE_TEST_UTIL_H

#include <stdbool.h>
#include <string.h>

#include "broker/xtype.h"

/* ---- values ---- */

static inline sb_amqp_value
v_str(const char *s)
{
    sb_amqp_value v = { .kind = SB_FV_LONGSTR };
    v.v.s = sb_str_c(s);
    return v;
}

static inline sb_amqp_value
v_bytes(const char *s)
{
    sb_amqp_value v = { .kind = SB_FV_BYTES };
    v.v.s = sb_str_c(s);
    return v;
}

/* A signed integer kind: SB_FV_I8, I16, I32 or I64. */
static inline sb_amqp_value
v_int(uint8_t kind, int64_t i)
{
    sb_amqp_value v = { .kind = kind };
    v.v.i = i;
    return v;
}

/* An unsigned kind: SB_FV_U8, U16, U32 or TIMESTAMP. */
static inline sb_amqp_value
v_uint(uint8_t kind, uint64_t u)
{
    sb_amqp_value v = { .kind = kind };
    v.v.u = u;
    return v;
}

static inline sb_amqp_value
v_f64(double d)
{
    sb_amqp_value v = { .kind = SB_FV_F64 };
    v.v.f64 = d;
    return v;
}

static inline sb_amqp_value
v_f32(float f)
{
    sb_amqp_value v = { .kind = SB_FV_F32 };
    v.v.f32 = f;
    return v;
}

static inline sb_amqp_value
v_bool(bool b)
{
    sb_amqp_value v = { .kind = SB_FV_BOOL };
    v.v.b = b;
    return v;
}

static inline sb_amqp_value
v_void(void)
{
    return (sb_amqp_value){ .kind = SB_FV_VOID };
}

static inline sb_amqp_value
v_table(uint32_t n, sb_amqp_entry *e)
{
    sb_amqp_value v = { .kind = SB_FV_TABLE };
    v.v.t = (sb_amqp_table){ n, e, SB_STR_NULL };
    return v;
}

static inline sb_amqp_value
v_array(uint32_t n, sb_amqp_value *a)
{
    sb_amqp_value v = { .kind = SB_FV_ARRAY };
    v.v.a = (sb_amqp_array){ n, a, SB_STR_NULL };
    return v;
}

/* An entry: E("key", v_int(SB_FV_I32, 1)). */
#define E(k, val) ((sb_amqp_entry){ SB_STR_LIT(k), (val) })
/* A table over an entry array: TBL(entries). */
#define TBL(arr) ((sb_amqp_table){ sizeof(arr) / sizeof((arr)[0]), (arr), SB_STR_NULL })
#define NELEM(arr) (sizeof(arr) / sizeof((arr)[0]))

/* ---- routing ---- */

/* Routes (key, headers) into a fresh vector; free with sb_dest_vec_free. */
static inline sb_dest_vec
route(const sb_xtype *xt, void *idx, const char *key, const sb_amqp_table *headers)
{
    sb_dest_vec dv = { NULL, 0, 0 };

    xt->route(idx, sb_str_c(key), headers, &dv);
    return dv;
}

static inline size_t
count_of(const sb_dest_vec *dv, const void *dest)
{
    size_t n = 0;

    for (size_t i = 0; i < dv->n; i++)
        n += dv->v[i] == dest;
    return n;
}

/* True when routing (key, headers) reaches exactly dest, once. */
static inline bool
routes_only_to(const sb_xtype *xt, void *idx, const char *key,
               const sb_amqp_table *headers, const void *dest)
{
    sb_dest_vec dv = route(xt, idx, key, headers);
    bool ok = dv.n == 1 && dv.v[0] == dest;

    sb_dest_vec_free(&dv);
    return ok;
}

static inline bool
routes_nowhere(const sb_xtype *xt, void *idx, const char *key, const sb_amqp_table *headers)
{
    sb_dest_vec dv = route(xt, idx, key, headers);
    bool ok = dv.n == 0;

    sb_dest_vec_free(&dv);
    return ok;
}

#endif /* SB_XTYPE_TEST_UTIL_H */
