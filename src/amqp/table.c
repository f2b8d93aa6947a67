/* table.c - AMQP field tables and field arrays: decode, encode, compare.
 *
 * Type letters are RabbitMQ's (see amqp.h), which every client uses;
 * note 's' is a signed 16-bit integer there, not a short string. Any
 * other letter is malformed, because its size cannot be known.
 *
 * Decoding makes two passes over each table or array body. The first
 * counts the entries, checking only lengths at this level (a nested
 * table or array is skipped by its length prefix); the second allocates
 * exactly n entries from the arena and fills them, recursing into nested
 * values. The arena has no realloc, so counting first is what lets each
 * level take one allocation. Nesting is limited to
 * SB_AMQP_TABLE_MAX_DEPTH levels (tables and arrays both count), which
 * also bounds the recursion on a hostile input.
 *
 * Decoded strings, keys and raw views point into the input buffer.
 */
#include <string.h>

#include "amqp.h"
#include "wire.h"
#include "../common/log.h"

static void read_value(sb_amqp__rd *r, sb_amqp_value *v);

/* Skips one value of kind: fixed-width kinds by their size, the rest by
 * their 4-byte length prefix (the fill pass checks what is inside). */
static void
skip_value(sb_amqp__rd *r, uint8_t kind)
{
    switch (kind) {
    case SB_FV_VOID:
        break;
    case SB_FV_BOOL: case SB_FV_I8: case SB_FV_U8:
        (void)sb_amqp__rd_bytes(r, 1);
        break;
    case SB_FV_I16: case SB_FV_U16:
        (void)sb_amqp__rd_bytes(r, 2);
        break;
    case SB_FV_I32: case SB_FV_U32: case SB_FV_F32:
        (void)sb_amqp__rd_bytes(r, 4);
        break;
    case SB_FV_DECIMAL:
        (void)sb_amqp__rd_bytes(r, 5);
        break;
    case SB_FV_I64: case SB_FV_F64: case SB_FV_TIMESTAMP:
        (void)sb_amqp__rd_bytes(r, 8);
        break;
    case SB_FV_LONGSTR: case SB_FV_BYTES: case SB_FV_ARRAY: case SB_FV_TABLE:
        (void)sb_amqp__rd_longstr(r);
        break;
    default:
        sb_amqp__rd_fail(r, SB_AMQP_EMALFORMED);
        break;
    }
}

/* Counts the items of a table body (with_keys) or array body in r, which
 * is taken by value so the caller's reader does not move. Returns 0 and
 * sets *n, or a negative error. */
static int
count_items(sb_amqp__rd r, bool with_keys, uint32_t *n)
{
    uint32_t count = 0;

    while (r.err == 0 && sb_amqp__rd_left(&r) > 0) {
        if (with_keys)
            (void)sb_amqp__rd_shortstr(&r);
        skip_value(&r, sb_amqp__rd_u8(&r));
        count++;
    }
    *n = count;
    return r.err;
}

/* Opens the body of a nested table or array: reads its 4-byte length and
 * returns a reader over exactly those bytes, one level deeper. On error
 * (recorded in r) the returned reader carries the error too. */
static sb_amqp__rd
open_body(sb_amqp__rd *r, sb_str *raw)
{
    sb_amqp__rd body;

    *raw = sb_amqp__rd_longstr(r);
    if (r->err == 0 && r->depth >= SB_AMQP_TABLE_MAX_DEPTH)
        sb_amqp__rd_fail(r, SB_AMQP_EDEPTH);
    body = sb_amqp__rd_make(raw->p, raw->len, r->a);
    body.depth = r->depth + 1;
    body.err = r->err;
    return body;
}

/* Allocates n items of size each from the arena; NULL when n is 0. */
static void *
alloc_items(sb_amqp__rd *r, uint32_t n, size_t size)
{
    if (n == 0)
        return NULL;
    /* n <= body length, so this cannot overflow on 64-bit; stay safe on 32. */
    if (n > SIZE_MAX / size) {
        sb_amqp__rd_fail(r, SB_AMQP_EMALFORMED);
        return NULL;
    }
    return sb_arena_alloc(r->a, (size_t)n * size);
}

void
sb_amqp__rd_table(sb_amqp__rd *r, sb_amqp_table *t)
{
    sb_str raw;
    sb_amqp__rd body = open_body(r, &raw);
    uint32_t n = 0;
    sb_amqp_entry *e;

    *t = (sb_amqp_table){ 0, NULL, { NULL, 0 } };
    if (body.err == 0)
        body.err = count_items(body, true, &n);
    e = body.err == 0 ? alloc_items(&body, n, sizeof *e) : NULL;
    for (uint32_t i = 0; i < n && body.err == 0; i++) {
        e[i].key = sb_amqp__rd_shortstr(&body);
        read_value(&body, &e[i].v);
    }
    if (body.err != 0) {
        sb_amqp__rd_fail(r, body.err);
        return;
    }
    *t = (sb_amqp_table){ n, e, raw };
}

static void
read_array(sb_amqp__rd *r, sb_amqp_array *arr)
{
    sb_str raw;
    sb_amqp__rd body = open_body(r, &raw);
    uint32_t n = 0;
    sb_amqp_value *v;

    *arr = (sb_amqp_array){ 0, NULL, { NULL, 0 } };
    if (body.err == 0)
        body.err = count_items(body, false, &n);
    v = body.err == 0 ? alloc_items(&body, n, sizeof *v) : NULL;
    for (uint32_t i = 0; i < n && body.err == 0; i++)
        read_value(&body, &v[i]);
    if (body.err != 0) {
        sb_amqp__rd_fail(r, body.err);
        return;
    }
    *arr = (sb_amqp_array){ n, v, raw };
}

static void
read_value(sb_amqp__rd *r, sb_amqp_value *v)
{
    uint32_t bits32;
    uint64_t bits64;

    v->kind = sb_amqp__rd_u8(r);
    switch (v->kind) {
    case SB_FV_BOOL: v->v.b = sb_amqp__rd_u8(r) != 0; break;
    case SB_FV_I8: v->v.i = (int8_t)sb_amqp__rd_u8(r); break;
    case SB_FV_U8: v->v.u = sb_amqp__rd_u8(r); break;
    case SB_FV_I16: v->v.i = (int16_t)sb_amqp__rd_u16(r); break;
    case SB_FV_U16: v->v.u = sb_amqp__rd_u16(r); break;
    case SB_FV_I32: v->v.i = (int32_t)sb_amqp__rd_u32(r); break;
    case SB_FV_U32: v->v.u = sb_amqp__rd_u32(r); break;
    case SB_FV_I64: v->v.i = (int64_t)sb_amqp__rd_u64(r); break;
    case SB_FV_TIMESTAMP: v->v.u = sb_amqp__rd_u64(r); break;
    case SB_FV_F32:
        bits32 = sb_amqp__rd_u32(r);
        memcpy(&v->v.f32, &bits32, sizeof v->v.f32);
        break;
    case SB_FV_F64:
        bits64 = sb_amqp__rd_u64(r);
        memcpy(&v->v.f64, &bits64, sizeof v->v.f64);
        break;
    case SB_FV_DECIMAL:
        v->v.dec.scale = sb_amqp__rd_u8(r);
        v->v.dec.value = sb_amqp__rd_u32(r);
        break;
    case SB_FV_LONGSTR: case SB_FV_BYTES: v->v.s = sb_amqp__rd_longstr(r); break;
    case SB_FV_ARRAY: read_array(r, &v->v.a); break;
    case SB_FV_TABLE: sb_amqp__rd_table(r, &v->v.t); break;
    case SB_FV_VOID: break;
    default: sb_amqp__rd_fail(r, SB_AMQP_EMALFORMED); break;
    }
}

ssize_t
sb_amqp_table_decode(const uint8_t *buf, size_t len, sb_amqp_table *out, sb_arena *a)
{
    sb_amqp__rd r = sb_amqp__rd_make(buf, len, a);

    sb_amqp__rd_table(&r, out);
    if (r.err != 0)
        return r.err;
    return (ssize_t)r.off;
}

/* ---- encode ---- */

static void write_value(sb_buf *b, const sb_amqp_value *v);

static void
write_array(sb_buf *b, const sb_amqp_array *arr)
{
    size_t start = b->len;

    if (arr->raw.p != NULL) {
        sb_amqp__put_longstr(b, arr->raw);
        return;
    }
    sb_buf_put_u32(b, 0);
    for (uint32_t i = 0; i < arr->n; i++)
        write_value(b, &arr->v[i]);
    sb_buf_set_u32(b, start, (uint32_t)(b->len - start - 4));
}

void
sb_amqp_table_encode(sb_buf *b, const sb_amqp_table *t)
{
    size_t start = b->len;

    if (t->raw.p != NULL) {
        sb_amqp__put_longstr(b, t->raw);
        return;
    }
    sb_buf_put_u32(b, 0);
    for (uint32_t i = 0; i < t->n; i++) {
        sb_amqp__put_shortstr(b, t->e[i].key);
        write_value(b, &t->e[i].v);
    }
    sb_buf_set_u32(b, start, (uint32_t)(b->len - start - 4));
}

static void
write_value(sb_buf *b, const sb_amqp_value *v)
{
    uint32_t bits32;
    uint64_t bits64;

    sb_buf_put_u8(b, v->kind);
    switch (v->kind) {
    case SB_FV_BOOL: sb_buf_put_u8(b, v->v.b ? 1 : 0); break;
    case SB_FV_I8: sb_buf_put_u8(b, (uint8_t)v->v.i); break;
    case SB_FV_U8: sb_buf_put_u8(b, (uint8_t)v->v.u); break;
    case SB_FV_I16: sb_buf_put_u16(b, (uint16_t)v->v.i); break;
    case SB_FV_U16: sb_buf_put_u16(b, (uint16_t)v->v.u); break;
    case SB_FV_I32: sb_buf_put_u32(b, (uint32_t)v->v.i); break;
    case SB_FV_U32: sb_buf_put_u32(b, (uint32_t)v->v.u); break;
    case SB_FV_I64: sb_buf_put_u64(b, (uint64_t)v->v.i); break;
    case SB_FV_TIMESTAMP: sb_buf_put_u64(b, v->v.u); break;
    case SB_FV_F32:
        memcpy(&bits32, &v->v.f32, sizeof bits32);
        sb_buf_put_u32(b, bits32);
        break;
    case SB_FV_F64:
        memcpy(&bits64, &v->v.f64, sizeof bits64);
        sb_buf_put_u64(b, bits64);
        break;
    case SB_FV_DECIMAL:
        sb_buf_put_u8(b, v->v.dec.scale);
        sb_buf_put_u32(b, v->v.dec.value);
        break;
    case SB_FV_LONGSTR: case SB_FV_BYTES: sb_amqp__put_longstr(b, v->v.s); break;
    case SB_FV_ARRAY: write_array(b, &v->v.a); break;
    case SB_FV_TABLE: sb_amqp_table_encode(b, &v->v.t); break;
    case SB_FV_VOID: break;
    default: sb_assert(!"sb_amqp_table_encode: unknown value kind"); break;
    }
}

/* ---- lookup and comparison ---- */

const sb_amqp_value *
sb_amqp_table_get(const sb_amqp_table *t, const char *key)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (sb_str_eq_c(t->e[i].key, key))
            return &t->e[i].v;
    return NULL;
}

static bool value_equal(const sb_amqp_value *a, const sb_amqp_value *b);

static bool
array_equal(const sb_amqp_array *a, const sb_amqp_array *b)
{
    if (a->raw.p != NULL && b->raw.p != NULL)
        return sb_str_eq(a->raw, b->raw);
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (!value_equal(&a->v[i], &b->v[i]))
            return false;
    return true;
}

bool
sb_amqp_table_equal(const sb_amqp_table *a, const sb_amqp_table *b)
{
    if (a->raw.p != NULL && b->raw.p != NULL)
        return sb_str_eq(a->raw, b->raw);
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (!sb_str_eq(a->e[i].key, b->e[i].key) || !value_equal(&a->e[i].v, &b->e[i].v))
            return false;
    return true;
}

/* Floats compare by bit pattern, so a NaN equals itself and 0.0 differs
 * from -0.0: this is "same bytes on the wire", not arithmetic equality. */
static bool
value_equal(const sb_amqp_value *a, const sb_amqp_value *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case SB_FV_BOOL: return a->v.b == b->v.b;
    case SB_FV_I8: case SB_FV_I16: case SB_FV_I32: case SB_FV_I64: return a->v.i == b->v.i;
    case SB_FV_U8: case SB_FV_U16: case SB_FV_U32: case SB_FV_TIMESTAMP: return a->v.u == b->v.u;
    case SB_FV_F32: return memcmp(&a->v.f32, &b->v.f32, sizeof a->v.f32) == 0;
    case SB_FV_F64: return memcmp(&a->v.f64, &b->v.f64, sizeof a->v.f64) == 0;
    case SB_FV_DECIMAL:
        return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
    case SB_FV_LONGSTR: case SB_FV_BYTES: return sb_str_eq(a->v.s, b->v.s);
    case SB_FV_ARRAY: return array_equal(&a->v.a, &b->v.a);
    case SB_FV_TABLE: return sb_amqp_table_equal(&a->v.t, &b->v.t);
    default: return true; /* VOID */
    }
}

bool
sb_amqp_value_int(const sb_amqp_value *v, int64_t *out)
{
    switch (v->kind) {
    case SB_FV_I8: case SB_FV_I16: case SB_FV_I32: case SB_FV_I64:
        *out = v->v.i;
        return true;
    case SB_FV_U8: case SB_FV_U16: case SB_FV_U32:
        *out = (int64_t)v->v.u;
        return true;
    default:
        return false;
    }
}
