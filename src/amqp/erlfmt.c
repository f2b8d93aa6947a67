/* erlfmt.c - values rendered as RabbitMQ's error texts render them (the
 * Erlang ~tp of the decoded term), so our reply texts match RabbitMQ's
 * byte for byte: <<"foo">>, 23, true, [{<<"k">>,long,1}], 1.5. */
#include "amqp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Erlang term text ---- */

typedef struct fmt_out {
    char *p;
    size_t len, cap;   /* cap includes the NUL */
} fmt_out;

static void
out_mem(fmt_out *o, const void *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;

    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void
out_s(fmt_out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void
out_u64(fmt_out *o, bool neg, uint64_t mag)
{
    char tmp[24];

    snprintf(tmp, sizeof tmp, "%s%llu", neg ? "-" : "", (unsigned long long)mag);
    out_s(o, tmp);
}

const char *
sb_amqp_fmt_type(uint8_t kind)
{
    switch (kind) {
    case SB_FV_BOOL: return "bool";
    case SB_FV_I8: return "byte";
    case SB_FV_U8: return "unsignedbyte";
    case SB_FV_I16: return "short";
    case SB_FV_U16: return "unsignedshort";
    case SB_FV_I32: return "signedint";
    case SB_FV_U32: return "unsignedint";
    case SB_FV_I64: return "long";
    case SB_FV_F32: return "float";
    case SB_FV_F64: return "double";
    case SB_FV_DECIMAL: return "decimal";
    case SB_FV_LONGSTR: return "longstr";
    case SB_FV_ARRAY: return "array";
    case SB_FV_TIMESTAMP: return "timestamp";
    case SB_FV_TABLE: return "table";
    case SB_FV_VOID: return "void";
    case SB_FV_BYTES: return "binary";
    default: return "unknown";
    }
}

/* The escape Erlang prints for byte c inside a string, or NULL when c is
 * printed as itself; *printable is false when c makes it a byte list. */
static const char *
erl_escape(uint8_t c, bool *printable)
{
    static const char *const esc[] = {
        ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t", ['\v'] = "\\v",
        ['\b'] = "\\b", ['\f'] = "\\f", [27] = "\\e", ['"'] = "\\\"", ['\\'] = "\\\\",
    };

    *printable = true;
    if (c < sizeof esc / sizeof esc[0] && esc[c] != NULL)
        return esc[c];
    if (c < 32 || c == 127)
        *printable = false;
    return NULL;
}

/* <<"foo">> when every byte is printable ASCII (or an escapable control
 * character), else <<102,0,111>>. Non-ASCII text is printed as bytes; the
 * reply text stays 7-bit clean. */
static void
fmt_binary(fmt_out *o, sb_str s)
{
    bool printable = true, ok;

    for (size_t i = 0; i < s.len && printable; i++) {
        (void)erl_escape(s.p[i], &ok);
        printable = ok && s.p[i] < 128;
    }
    out_s(o, printable && s.len ? "<<\"" : "<<");
    for (size_t i = 0; i < s.len; i++) {
        if (printable) {
            const char *e = erl_escape(s.p[i], &ok);
            if (e)
                out_s(o, e);
            else
                out_mem(o, &s.p[i], 1);
        } else {
            out_u64(o, false, s.p[i]);
            if (i + 1 < s.len)
                out_s(o, ",");
        }
    }
    out_s(o, printable && s.len ? "\">>" : ">>");
}

/* Erlang's shortest float text (io_lib_format:fwrite_g): the shortest
 * digits that read back as d, with the point placed as insert_decimal
 * does: 1.5, 100.0, 0.001, 1.0e20, 1.0e-5. */
static void
fmt_float(fmt_out *o, double d)
{
    char sci[40], digits[20], res[64];
    int prec, exp10, place, nd, n = 0;

    if (d == 0) {
        out_s(o, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    for (prec = 0; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, d);
        if (strtod(sci, NULL) == d)
            break;
    }
    nd = 0;
    for (char *c = sci; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    exp10 = atoi(strchr(sci, 'e') + 1);
    place = exp10 + 1;   /* d = 0.DIGITS * 10^place */
    if (d < 0)
        res[n++] = '-';
    if (place > 0 && place < nd) {
        n += snprintf(res + n, sizeof res - n, "%.*s.%s", place, digits, digits + place);
    } else if (place == 0) {
        n += snprintf(res + n, sizeof res - n, "0.%s", digits);
    } else {
        char expl[8];
        int el = snprintf(expl, sizeof expl, "%d", place - 1);
        int cost = el + 1 + (nd == 1 ? 2 : 1);
        if (place < 0 && 2 - place <= cost)
            n += snprintf(res + n, sizeof res - n, "0.%0*d%s", -place, 0, digits);
        else if (place > 0 && place - nd + 2 <= cost)
            n += snprintf(res + n, sizeof res - n, "%s%0*d.0", digits, place - nd, 0);
        else
            n += snprintf(res + n, sizeof res - n, "%c.%se%s", digits[0],
                          nd == 1 ? "0" : digits + 1, expl);
    }
    out_s(o, res);
}

static void fmt_value(fmt_out *o, const sb_amqp_value *v);

static void
fmt_list(fmt_out *o, const sb_amqp_value *v)
{
    uint32_t n = v->kind == SB_FV_TABLE ? v->v.t.n : v->v.a.n;

    out_s(o, "[");
    for (uint32_t i = 0; i < n; i++) {
        const sb_amqp_value *e = v->kind == SB_FV_TABLE ? &v->v.t.e[i].v : &v->v.a.v[i];
        out_s(o, i ? ",{" : "{");
        if (v->kind == SB_FV_TABLE) {
            fmt_binary(o, v->v.t.e[i].key);
            out_s(o, ",");
        }
        out_s(o, sb_amqp_fmt_type(e->kind));
        out_s(o, ",");
        fmt_value(o, e);
        out_s(o, "}");
    }
    out_s(o, "]");
}

static void
fmt_value(fmt_out *o, const sb_amqp_value *v)
{
    switch (v->kind) {
    case SB_FV_BOOL: out_s(o, v->v.b ? "true" : "false"); break;
    case SB_FV_I8: case SB_FV_I16: case SB_FV_I32: case SB_FV_I64:
        out_u64(o, v->v.i < 0, v->v.i < 0 ? (uint64_t)0 - (uint64_t)v->v.i : (uint64_t)v->v.i);
        break;
    case SB_FV_U8: case SB_FV_U16: case SB_FV_U32: case SB_FV_TIMESTAMP:
        out_u64(o, false, v->v.u);
        break;
    case SB_FV_F32: fmt_float(o, (double)v->v.f32); break;
    case SB_FV_F64: fmt_float(o, v->v.f64); break;
    case SB_FV_DECIMAL:
        out_s(o, "{");
        out_u64(o, false, v->v.dec.scale);
        out_s(o, ",");
        out_u64(o, false, v->v.dec.value);
        out_s(o, "}");
        break;
    case SB_FV_LONGSTR: case SB_FV_BYTES: fmt_binary(o, v->v.s); break;
    case SB_FV_TABLE: case SB_FV_ARRAY: fmt_list(o, v); break;
    case SB_FV_VOID: out_s(o, "undefined"); break;
    default: out_s(o, "?"); break;
    }
}

void
sb_amqp_fmt_term(char *buf, size_t len, const sb_amqp_value *v)
{
    fmt_out o = { buf, 0, len };

    if (len == 0)
        return;
    buf[0] = '\0';
    fmt_value(&o, v);
}

void
sb_amqp_fmt_binary(char *buf, size_t len, sb_str bytes)
{
    sb_amqp_value v = { .kind = SB_FV_BYTES, .v.s = bytes };

    sb_amqp_fmt_term(buf, len, &v);
}
