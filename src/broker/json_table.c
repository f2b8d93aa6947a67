/* json_table.c - JSON values <-> AMQP field tables, as RabbitMQ
 * management converts them (rabbit_mgmt_format:to_amqp_table and back).
 *
 * JSON to AMQP: integers become signed 64-bit ('l'), strings long
 * strings ('S'), true/false booleans ('t'), other numbers doubles ('d'),
 * arrays field arrays ('A'), objects nested tables ('F') and null void
 * ('V'). The result is an in-memory table (raw.p == NULL) whose entries
 * and nested containers come from the caller's arena and whose strings
 * are views into the JSON value, so it is valid while both are.
 *
 * AMQP to JSON: every integer kind and timestamps become JSON integers,
 * floats and decimals numbers, long strings and byte arrays strings, void
 * null. Used for the definitions file and by the HTTP API; runs on any thread.
 */
#include <stdio.h>
#include <string.h>

#include "json_table.h"
#include "../common/alloc.h"

#define SHORTSTR_MAX 255

static int value_from_json(const json_t *j, sb_amqp_value *out, sb_arena *a, int depth,
                           char *why, size_t why_len);

static sb_str
json_str(const json_t *j)
{
    return sb_str_make(json_string_value(j), json_string_length(j));
}

static int
array_from_json(const json_t *j, sb_amqp_array *out, sb_arena *a, int depth, char *why,
                size_t why_len)
{
    size_t n = json_array_size(j);

    out->n = (uint32_t)n;
    out->v = n ? sb_arena_alloc(a, n * sizeof *out->v) : NULL;
    out->raw = SB_STR_NULL;
    for (size_t i = 0; i < n; i++)
        if (value_from_json(json_array_get(j, i), &out->v[i], a, depth + 1, why, why_len) < 0)
            return -1;
    return 0;
}

static int
table_from_json(const json_t *j, sb_amqp_table *out, sb_arena *a, int depth, char *why,
                size_t why_len)
{
    const char *key;
    json_t *val;
    uint32_t i = 0;

    if (depth > SB_AMQP_TABLE_MAX_DEPTH) {
        snprintf(why, why_len, "arguments nested deeper than %d levels", SB_AMQP_TABLE_MAX_DEPTH);
        return -1;
    }
    out->n = (uint32_t)json_object_size(j);
    out->e = out->n ? sb_arena_alloc(a, out->n * sizeof *out->e) : NULL;
    out->raw = SB_STR_NULL;
    json_object_foreach((json_t *)j, key, val) {
        size_t klen = strlen(key);
        if (klen > SHORTSTR_MAX) {
            snprintf(why, why_len, "argument name '%.40s...' is longer than 255 bytes", key);
            return -1;
        }
        out->e[i].key = sb_str_make(key, klen);
        if (value_from_json(val, &out->e[i].v, a, depth, why, why_len) < 0)
            return -1;
        i++;
    }
    return 0;
}

static int
value_from_json(const json_t *j, sb_amqp_value *out, sb_arena *a, int depth, char *why,
                size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (depth > SB_AMQP_TABLE_MAX_DEPTH) {
        snprintf(why, why_len, "arguments nested deeper than %d levels", SB_AMQP_TABLE_MAX_DEPTH);
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_INTEGER:
        out->kind = SB_FV_I64;
        out->v.i = (int64_t)json_integer_value(j);
        return 0;
    case JSON_REAL:
        out->kind = SB_FV_F64;
        out->v.f64 = json_real_value(j);
        return 0;
    case JSON_STRING:
        out->kind = SB_FV_LONGSTR;
        out->v.s = json_str(j);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind = SB_FV_BOOL;
        out->v.b = json_is_true(j);
        return 0;
    case JSON_NULL:
        out->kind = SB_FV_VOID;
        return 0;
    case JSON_ARRAY:
        out->kind = SB_FV_ARRAY;
        return array_from_json(j, &out->v.a, a, depth + 1, why, why_len);
    case JSON_OBJECT:
        out->kind = SB_FV_TABLE;
        return table_from_json(j, &out->v.t, a, depth + 1, why, why_len);
    }
    snprintf(why, why_len, "unsupported JSON value");
    return -1;
}

int
sb_json_to_table(const json_t *obj, sb_amqp_table *out, sb_arena *a, char *why,
                       size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj)) {
        snprintf(why, why_len, "arguments must be a JSON object");
        return -1;
    }
    return table_from_json(obj, out, a, 1, why, why_len);
}

/* ---- AMQP to JSON ---- */

static json_t *
string_json(sb_str s)
{
    /* Not UTF-8 (binary headers): RabbitMQ would show it base64-encoded
     * or fail; a lossy "?" is kinder than dropping the whole listing. */
    json_t *j = json_stringn((const char *)s.p, s.len);

    return j ? j : json_string("?");
}

static json_t *
array_json(const sb_amqp_array *arr)
{
    json_t *out = json_array();

    for (uint32_t i = 0; i < arr->n; i++)
        json_array_append_new(out, sb_json_from_value(&arr->v[i]));
    return out;
}

static json_t *
decimal_json(uint8_t scale, uint32_t value)
{
    double d = value;

    for (uint8_t i = 0; i < scale; i++)
        d /= 10;
    return json_real(d);
}

json_t *
sb_json_from_value(const sb_amqp_value *v)
{
    switch (v->kind) {
    case SB_FV_BOOL: return json_boolean(v->v.b);
    case SB_FV_I8:
    case SB_FV_I16:
    case SB_FV_I32:
    case SB_FV_I64: return json_integer((json_int_t)v->v.i);
    case SB_FV_U8:
    case SB_FV_U16:
    case SB_FV_U32:
    case SB_FV_TIMESTAMP: return json_integer((json_int_t)v->v.u);
    case SB_FV_F32: return json_real(v->v.f32);
    case SB_FV_F64: return json_real(v->v.f64);
    case SB_FV_DECIMAL: return decimal_json(v->v.dec.scale, v->v.dec.value);
    case SB_FV_LONGSTR:
    case SB_FV_BYTES: return string_json(v->v.s);
    case SB_FV_ARRAY: return array_json(&v->v.a);
    case SB_FV_TABLE: return sb_json_from_table(&v->v.t);
    default: return json_null();
    }
}

json_t *
sb_json_from_table(const sb_amqp_table *t)
{
    json_t *out = json_object();
    char key[SHORTSTR_MAX + 1];

    for (uint32_t i = 0; t != NULL && i < t->n; i++) {
        snprintf(key, sizeof key, "%.*s", SB_STR_ARGS(t->e[i].key));
        json_object_set_new(out, key, sb_json_from_value(&t->e[i].v));
    }
    return out;
}

/* ---- names ---- */

json_t *
sb_json_from_name(sb_str s, json_t *raw, const char *field)
{
    static const char hex[] = "0123456789abcdef";
    json_t *j = s.len ? json_stringn((const char *)s.p, s.len) : json_string("");
    char *lossy, *h;

    if (j != NULL)
        return j;
    lossy = sb_malloc(s.len + 1);
    h = sb_malloc(2 * s.len + 1);
    for (size_t i = 0; i < s.len; i++) {
        lossy[i] = s.p[i] < 0x80 ? (char)s.p[i] : '?';
        h[2 * i] = hex[s.p[i] >> 4];
        h[2 * i + 1] = hex[s.p[i] & 15];
    }
    j = json_stringn(lossy, s.len);
    json_object_set_new(raw, field, json_stringn(h, 2 * s.len));
    sb_free(lossy);
    sb_free(h);
    return j;
}

static int
hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

sb_str
sb_json_name(const json_t *o, const char *field, sb_arena *a)
{
    const json_t *h = json_object_get(json_object_get(o, SB_JSON_RAW_KEY), field);
    const json_t *v = json_object_get(o, field);
    size_t n = json_string_length(h);

    if (json_is_string(h) && n % 2 == 0) {
        const char *p = json_string_value(h);
        uint8_t *out = sb_arena_alloc(a, n / 2 + 1);
        size_t i;

        for (i = 0; i < n / 2; i++) {
            int hi = hex_digit(p[2 * i]), lo = hex_digit(p[2 * i + 1]);
            if (hi < 0 || lo < 0)
                break;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        if (i == n / 2)
            return sb_str_make(out, n / 2);
    }
    return json_is_string(v) ? json_str(v) : SB_STR_LIT("");
}
