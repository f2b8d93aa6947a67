/* test_broker_policy.c - policies (broker/policy.c): which policy applies
 * (pattern, apply-to, priority, ties by name), how a definition combines
 * with a queue's own arguments, and what changes when policies come and
 * go. Read through the HTTP views, as the management API sees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "broker_test_util.h"

static int
set(sb_vhost *v, const char *name, const char *json_text, char *why)
{
    json_error_t e;
    json_t *o = json_loads(json_text, 0, &e);
    int rc;

    assert_non_null(o);
    rc = sb_policy_set(v, name, o, why, 300);
    json_decref(o);
    return rc;
}

static void
must_set(sb_vhost *v, const char *name, const char *json_text)
{
    char why[300] = "";

    if (set(v, name, json_text, why) != 0)
        fail_msg("policy %s refused: %s", name, why);
}

static const char *
policy_of_queue(sb_vhost *v, const char *q)
{
    sb_queue_view qv;

    assert_true(sb_vhost_queue_view(v, sb_str_c(q), &qv));
    return sb_policy_name(qv.policy);
}

static const char *
policy_of_exchange(sb_vhost *v, const char *x)
{
    sb_exchange_view xv;

    assert_true(sb_vhost_exchange_view(v, sb_str_c(x), &xv));
    return sb_policy_name(xv.policy);
}

static uint32_t
ready(sb_vhost *v, const char *q)
{
    sb_queue_view qv;

    assert_true(sb_vhost_queue_view(v, sb_str_c(q), &qv));
    return qv.messages_ready;
}

static void
the_highest_priority_match_applies_and_ties_go_by_name(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "orders.eu");
    tb_queue(v, "payments");
    must_set(v, "b-all", "{\"pattern\":\"^orders\",\"definition\":{\"max-length\":5}}");
    must_set(v, "a-all", "{\"pattern\":\"eu$\",\"definition\":{\"max-length\":6}}");
    assert_string_equal(policy_of_queue(v, "orders.eu"), "a-all");   /* tie: by name */
    must_set(v, "z-high", "{\"pattern\":\"orders\",\"priority\":2,"
                          "\"definition\":{\"max-length\":7}}");
    assert_string_equal(policy_of_queue(v, "orders.eu"), "z-high");
    assert_null(policy_of_queue(v, "payments"));
    /* an unanchored search, as RabbitMQ's re:run */
    must_set(v, "mid", "{\"pattern\":\"ymen\",\"definition\":{\"max-length\":1}}");
    assert_string_equal(policy_of_queue(v, "payments"), "mid");
    assert_int_equal(sb_policy_delete(v, "z-high"), 0);
    assert_string_equal(policy_of_queue(v, "orders.eu"), "a-all");
    assert_int_equal(sb_policy_delete(v, "z-high"), -1);
    sb_broker_free(b);
}

static void
apply_to_separates_queues_from_exchanges(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "same");
    tb_exchange(v, "same", "direct");
    must_set(v, "q", "{\"pattern\":\"^same$\",\"apply-to\":\"queues\","
                     "\"definition\":{\"max-length\":1}}");
    assert_string_equal(policy_of_queue(v, "same"), "q");
    assert_null(policy_of_exchange(v, "same"));
    must_set(v, "x", "{\"pattern\":\"^same$\",\"apply-to\":\"exchanges\","
                     "\"definition\":{\"alternate-exchange\":\"ae\"}}");
    assert_string_equal(policy_of_exchange(v, "same"), "x");
    assert_string_equal(policy_of_queue(v, "same"), "q");
    sb_broker_free(b);
}

static void
a_lower_limit_trims_the_queue_now_and_deleting_lifts_it(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "q");
    for (int i = 0; i < 5; i++)
        tb_pub(v, "", "q", "m");
    must_set(v, "lim", "{\"pattern\":\"^q$\",\"definition\":{\"max-length\":2}}");
    assert_int_equal(ready(v, "q"), 2);
    tb_pub(v, "", "q", "m");
    assert_int_equal(ready(v, "q"), 2);
    assert_int_equal(sb_policy_delete(v, "lim"), 0);
    tb_pub(v, "", "q", "m");
    assert_int_equal(ready(v, "q"), 3);
    sb_broker_free(b);
}

static void
limits_take_the_smaller_of_argument_and_policy(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry e = { .key = SB_STR_LIT("x-max-length"),
                        .v = { .kind = SB_FV_I32, .v.i = 3 } };
    sb_amqp_table args = { .n = 1, .e = &e };
    sb_queue_decl d = tb_qd("lim3");
    sb_queue_info info;
    sb_error err = { 0 };

    d.args = &args;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    must_set(v, "big", "{\"pattern\":\"^lim3$\",\"definition\":{\"max-length\":10}}");
    for (int i = 0; i < 5; i++)
        tb_pub(v, "", "lim3", "m");
    assert_int_equal(ready(v, "lim3"), 3);
    must_set(v, "big", "{\"pattern\":\"^lim3$\",\"definition\":{\"max-length\":1}}");
    assert_int_equal(ready(v, "lim3"), 1);
    sb_broker_free(b);
}

static void
bad_definitions_are_refused_and_change_nothing(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    char why[300];
    static const char *const bad[] = {
        "{\"pattern\":\"[\",\"definition\":{\"max-length\":1}}",
        "{\"pattern\":\"x\",\"definition\":{\"max-length\":-1}}",
        "{\"pattern\":\"x\",\"definition\":{\"max-length\":\"1\"}}",
        "{\"pattern\":\"x\",\"definition\":{\"expires\":0}}",
        "{\"pattern\":\"x\",\"definition\":{\"dead-letter-exchange\":5}}",
        "{\"pattern\":\"x\",\"definition\":{\"retry-delays\":[]}}",
        "{\"pattern\":\"x\",\"definition\":{\"bogus\":1}}",
        "{\"pattern\":\"x\",\"definition\":{}}",
        "{\"pattern\":\"x\",\"priority\":\"high\",\"definition\":{\"max-length\":1}}",
        "{\"pattern\":\"x\",\"apply-to\":\"streams\",\"definition\":{\"max-length\":1}}",
        "{\"definition\":{\"max-length\":1}}",
    };

    tb_queue(v, "x");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(set(v, "p", bad[i], why), -1);
        assert_true(why[0] != '\0');
    }
    assert_null(policy_of_queue(v, "x"));
    /* keys RabbitMQ has and Switchboard ignores are accepted */
    must_set(v, "p", "{\"pattern\":\"x\",\"definition\":{\"ha-mode\":\"all\","
                     "\"queue-mode\":\"lazy\"}}");
    assert_string_equal(policy_of_queue(v, "x"), "p");
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_highest_priority_match_applies_and_ties_go_by_name),
        cmocka_unit_test(apply_to_separates_queues_from_exchanges),
        cmocka_unit_test(a_lower_limit_trims_the_queue_now_and_deleting_lifts_it),
        cmocka_unit_test(limits_take_the_smaller_of_argument_and_policy),
        cmocka_unit_test(bad_definitions_are_refused_and_change_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
