/* test_http_json_table.c - JSON <-> AMQP field tables (broker/json_table.c, which
 * the HTTP API uses for arguments and headers) as RabbitMQ
 * management converts them, checked through the wire encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/alloc.h"
#include "broker/json_table.h"

typedef struct conv {
    json_t *in;
    sb_arena arena;
    sb_amqp_table t;
    char why[160];
    int rc;
} conv;

static void
convert(conv *c, const char *json)
{
    json_error_t jerr;

    memset(c, 0, sizeof *c);
    c->in = json_loads(json, JSON_DECODE_ANY, &jerr);
    assert_non_null(c->in);
    c->rc = sb_json_to_table(c->in, &c->t, &c->arena, c->why, sizeof c->why);
}

static void
done(conv *c)
{
    json_decref(c->in);
    sb_arena_free(&c->arena);
}

/* Encodes t and decodes it again, as the broker does when it stores it. */
static sb_amqp_table
round_trip(const sb_amqp_table *t, sb_buf *b, sb_arena *a)
{
    sb_amqp_table out;

    sb_amqp_table_encode(b, t);
    assert_int_equal(sb_amqp_table_decode(b->data, b->len, &out, a), (ssize_t)b->len);
    return out;
}

static void
scalars_get_rabbitmq_types(void **state)
{
    conv c;

    convert(&c, "{\"i\": -5, \"s\": \"str\", \"t\": true, \"f\": false, \"d\": 1.5, \"n\": null}");
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.t.n, 6);
    assert_int_equal(sb_amqp_table_get(&c.t, "i")->kind, SB_FV_I64);
    assert_int_equal(sb_amqp_table_get(&c.t, "i")->v.i, -5);
    assert_int_equal(sb_amqp_table_get(&c.t, "s")->kind, SB_FV_LONGSTR);
    assert_true(sb_str_eq_c(sb_amqp_table_get(&c.t, "s")->v.s, "str"));
    assert_int_equal(sb_amqp_table_get(&c.t, "t")->kind, SB_FV_BOOL);
    assert_true(sb_amqp_table_get(&c.t, "t")->v.b);
    assert_false(sb_amqp_table_get(&c.t, "f")->v.b);
    assert_int_equal(sb_amqp_table_get(&c.t, "d")->kind, SB_FV_F64);
    assert_true(sb_amqp_table_get(&c.t, "d")->v.f64 == 1.5);
    assert_int_equal(sb_amqp_table_get(&c.t, "n")->kind, SB_FV_VOID);
    done(&c);
}

static void
arrays_and_objects_nest(void **state)
{
    conv c;
    const sb_amqp_value *a, *o;

    convert(&c, "{\"a\": [1, \"x\", [true]], \"o\": {\"k\": {\"deep\": 2}}}");
    assert_int_equal(c.rc, 0);
    a = sb_amqp_table_get(&c.t, "a");
    assert_int_equal(a->kind, SB_FV_ARRAY);
    assert_int_equal(a->v.a.n, 3);
    assert_int_equal(a->v.a.v[0].kind, SB_FV_I64);
    assert_int_equal(a->v.a.v[1].kind, SB_FV_LONGSTR);
    assert_int_equal(a->v.a.v[2].kind, SB_FV_ARRAY);
    o = sb_amqp_table_get(&c.t, "o");
    assert_int_equal(o->kind, SB_FV_TABLE);
    o = sb_amqp_table_get(&o->v.t, "k");
    assert_int_equal(sb_amqp_table_get(&o->v.t, "deep")->v.i, 2);
    done(&c);
}

static void
converted_table_survives_the_wire_and_back_to_the_same_json(void **state)
{
    const char *src = "{\"x-max-length\": 10, \"x-dead-letter-exchange\": \"dlx\", "
                      "\"flag\": true, \"list\": [1, 2.5, \"s\"], \"t\": {\"n\": null}}";
    sb_buf b = SB_BUF_INIT;
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_table back;
    json_t *out;
    conv c;

    convert(&c, src);
    assert_int_equal(c.rc, 0);
    back = round_trip(&c.t, &b, &a);
    out = sb_json_from_table(&back);
    assert_true(json_equal(out, c.in));
    json_decref(out);
    sb_buf_free(&b);
    sb_arena_free(&a);
    done(&c);
}

static void
null_or_missing_arguments_are_an_empty_table(void **state)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_table t;
    char why[80];
    json_t *n = json_null();

    assert_int_equal(sb_json_to_table(NULL, &t, &a, why, sizeof why), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(sb_json_to_table(n, &t, &a, why, sizeof why), 0);
    assert_int_equal(t.n, 0);
    json_decref(n);
    sb_arena_free(&a);
}

static void
non_object_arguments_are_refused(void **state)
{
    conv c;

    convert(&c, "[1, 2]");
    assert_int_equal(c.rc, -1);
    assert_non_null(strstr(c.why, "object"));
    done(&c);
}

static void
key_over_255_bytes_is_refused(void **state)
{
    char json[400];
    conv c;

    snprintf(json, sizeof json, "{\"%0300d\": 1}", 0);
    convert(&c, json);
    assert_int_equal(c.rc, -1);
    done(&c);
}

static void
nesting_past_the_limit_is_refused(void **state)
{
    char json[200];
    size_t n = 0;
    conv c;

    for (int i = 0; i < SB_AMQP_TABLE_MAX_DEPTH + 2; i++)
        json[n++] = '[';
    for (int i = 0; i < SB_AMQP_TABLE_MAX_DEPTH + 2; i++)
        json[n++] = ']';
    json[n] = '\0';
    char wrapped[256];
    snprintf(wrapped, sizeof wrapped, "{\"a\": %s}", json);
    convert(&c, wrapped);
    assert_int_equal(c.rc, -1);
    assert_non_null(strstr(c.why, "deeper"));
    done(&c);
}

static void
amqp_integer_kinds_and_timestamps_become_json_integers(void **state)
{
    sb_amqp_entry e[4] = {
        { SB_STR_LIT("b"), { .kind = SB_FV_I8, .v.i = -3 } },
        { SB_STR_LIT("u"), { .kind = SB_FV_U32, .v.u = 4000000000u } },
        { SB_STR_LIT("ts"), { .kind = SB_FV_TIMESTAMP, .v.u = 1700000000 } },
        { SB_STR_LIT("dec"), { .kind = SB_FV_DECIMAL, .v.dec = { 2, 150 } } },
    };
    sb_amqp_table t = { .n = 4, .e = e };
    json_t *j = sb_json_from_table(&t);

    assert_int_equal(json_integer_value(json_object_get(j, "b")), -3);
    assert_int_equal(json_integer_value(json_object_get(j, "u")), 4000000000ll);
    assert_int_equal(json_integer_value(json_object_get(j, "ts")), 1700000000);
    assert_true(json_real_value(json_object_get(j, "dec")) == 1.5);
    json_decref(j);
}

static void
empty_table_is_an_empty_object(void **state)
{
    sb_amqp_table t = { 0 };
    json_t *j = sb_json_from_table(&t);

    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_get_rabbitmq_types),
        cmocka_unit_test(arrays_and_objects_nest),
        cmocka_unit_test(converted_table_survives_the_wire_and_back_to_the_same_json),
        cmocka_unit_test(null_or_missing_arguments_are_an_empty_table),
        cmocka_unit_test(non_object_arguments_are_refused),
        cmocka_unit_test(key_over_255_bytes_is_refused),
        cmocka_unit_test(nesting_past_the_limit_is_refused),
        cmocka_unit_test(amqp_integer_kinds_and_timestamps_become_json_integers),
        cmocka_unit_test(empty_table_is_an_empty_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
