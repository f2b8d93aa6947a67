/* test_broker_queue.c - queues through the broker's public API: declare /
 * passive / redeclare (RabbitMQ 3.10's codes and texts), server-named
 * queues, arguments, delete and purge with their preconditions, bindings,
 * exclusive queues and their owner, and the single stored copy of a
 * message routed to several queues (its reference count).
 *
 * Each test builds its own broker and ends with sb_broker_free, so the
 * suite is leak-checked under -fsanitize=address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>

#include "broker_test_util.h"
#include "xtype_test_util.h"

static const char *const conn_a = "connection A";  /* owners: any distinct pointers */
static const char *const conn_b = "connection B";

/* ---- declare ---- */

static void
a_server_named_queue_is_amq_gen_and_22_url_safe_characters(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d = tb_qd("");
    sb_queue_info first, second;
    sb_error err = { 0 };

    assert_int_equal(sb_queue_declare(v, &d, &first, &err), 0);
    assert_int_equal(sb_queue_declare(v, &d, &second, &err), 0);
    for (int k = 0; k < 2; k++) {
        const char *n = k ? second.name : first.name;
        assert_int_equal(strlen(n), strlen("amq.gen-") + 22);
        assert_memory_equal(n, "amq.gen-", 8);
        for (const char *p = n + 8; *p; p++)
            assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_');
    }
    assert_string_not_equal(first.name, second.name);
    assert_int_equal(tb_ready(v, first.name), 0);
    /* It is reachable by its name through the default exchange. */
    assert_true(tb_pub(v, "", second.name, "m"));
    assert_int_equal(tb_ready(v, second.name), 1);
    sb_broker_free(b);
}

static void
declaring_an_amq_prefixed_queue_is_refused_403(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d = tb_qd("amq.mine");
    sb_queue_info info;
    sb_error err = { 0 };

    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "queue name 'amq.mine' contains reserved prefix 'amq.*'");
    assert_int_equal(tb_ready(v, "amq.mine"), -1);
    sb_broker_free(b);
}

static void
passive_declare_of_a_missing_queue_is_404(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d = tb_qd("nope");
    sb_queue_info info;
    sb_error err = { 0 };

    d.passive = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no queue 'nope' in vhost '/'");
    assert_int_equal(tb_ready(v, "nope"), -1);  /* passive never creates */
    sb_broker_free(b);
}

static void
redeclare_and_passive_report_ready_messages_and_consumers(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_queue_decl d = tb_qd("q");
    sb_queue_info info;
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 3);
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    assert_string_equal(info.name, "q");
    assert_int_equal(info.messages, 3);
    assert_int_equal(info.consumers, 0);
    fc.writable = false;  /* consumer present but takes nothing */
    tb_consume(ch, "q", false, &fc);
    d.passive = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    assert_int_equal(info.messages, 3);
    assert_int_equal(info.consumers, 1);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
redeclaring_with_other_durable_or_auto_delete_is_406(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d = tb_qd("q");
    sb_queue_info info;
    sb_error err = { 0 };

    tb_queue(v, "q");
    d.durable = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'durable' for queue 'q' in vhost '/': "
                                  "received 'true' but current is 'false'");
    d = tb_qd("q");
    d.auto_delete = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': "
                                  "received 'true' but current is 'false'");
    sb_broker_free(b);
}

static void
redeclaring_with_another_known_argument_value_is_406(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry e10[] = { E("x-max-length", v_int(SB_FV_I32, 10)) };
    sb_amqp_entry e10l[] = { E("x-max-length", v_int(SB_FV_I64, 10)) };
    sb_amqp_entry e20[] = { E("x-max-length", v_int(SB_FV_I32, 20)) };
    sb_amqp_entry other[] = { E("x-custom", v_str("ignored")) };
    sb_amqp_table t10 = TBL(e10), t10l = TBL(e10l), t20 = TBL(e20), tother = TBL(other);
    sb_queue_decl d = tb_qd("q");
    sb_queue_info info;
    sb_error err = { 0 };

    d.args = &t10;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    d.args = &t10l;  /* another integer width is the same value */
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    d.args = &t20;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': "
                                  "received '20' but current is '10'");
    /* Unknown arguments are not compared. */
    d.args = NULL;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_PRECONDITION_FAILED);
    tb_queue(v, "plain");
    d = tb_qd("plain");
    d.args = &tother;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    sb_broker_free(b);
}

static void
an_invalid_known_argument_is_406_and_creates_nothing(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry e[] = { E("x-max-priority", v_int(SB_FV_I32, 300)) };
    sb_amqp_table t = TBL(e);
    sb_queue_decl d = tb_qd("q");
    sb_queue_info info;
    sb_error err = { 0 };

    d.args = &t;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "invalid arg 'x-max-priority' for queue 'q' in vhost '/': "
                                  "{max_value_exceeded,300}");
    assert_int_equal(tb_ready(v, "q"), -1);
    sb_broker_free(b);
}

/* ---- delete and purge ---- */

static void
deleting_a_missing_queue_succeeds_with_zero_messages(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };
    uint32_t n = 99;

    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("nope"), NULL, true, true, &n, &err), 0);
    assert_int_equal(n, 0);
    sb_broker_free(b);
}

static void
delete_returns_the_ready_count_and_honours_if_empty_and_if_unused(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer fc;
    uint32_t n = 99;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 2);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, true, &n, &err),
                     SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "queue 'q' in vhost '/' not empty");
    fc.writable = false;
    tb_consume(ch, "q", false, &fc);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, true, false, &n, &err),
                     SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "queue 'q' in vhost '/' in use");
    assert_int_equal(tb_ready(v, "q"), 2);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tb_ready(v, "q"), -1);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
purge_drops_ready_messages_and_returns_their_count(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };
    uint32_t n = 0;

    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 3);
    assert_int_equal(sb_queue_purge(v, SB_STR_LIT("q"), NULL, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(tb_ready(v, "q"), 0);
    assert_int_equal(sb_queue_purge(v, SB_STR_LIT("nope"), NULL, &n, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no queue 'nope' in vhost '/'");
    sb_broker_free(b);
}

/* ---- bindings ---- */

static void
binding_a_missing_queue_or_exchange_is_404(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_queue(v, "q");
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("nope"), SB_STR_LIT("amq.direct"),
                                   SB_STR_LIT("k"), NULL, NULL, false, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no queue 'nope' in vhost '/'");
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT("nope"), SB_STR_LIT("k"), NULL,
                                   NULL, false, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no exchange 'nope' in vhost '/'");
    sb_broker_free(b);
}

static void
binding_twice_is_one_binding(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_queue(v, "q");
    tb_bind(v, "q", "amq.direct", "k");
    tb_bind(v, "q", "amq.direct", "k");
    assert_true(tb_pub(v, "amq.direct", "k", "1"));
    assert_int_equal(tb_ready(v, "q"), 1);
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT("amq.direct"), SB_STR_LIT("k"),
                                   NULL, NULL, true, &err), 0);
    assert_false(tb_pub(v, "amq.direct", "k", "2"));
    sb_broker_free(b);
}

static void
deleting_a_queue_removes_its_bindings(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };
    uint32_t n;

    tb_exchange(v, "x", "fanout");
    tb_queue(v, "q");
    tb_bind(v, "q", "x", "");
    tb_bind(v, "q", "amq.topic", "#");
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    /* A new queue with the same name is not bound. */
    tb_queue(v, "q");
    assert_false(tb_pub(v, "x", "", "1"));
    assert_false(tb_pub(v, "amq.topic", "a.b", "2"));
    assert_int_equal(tb_ready(v, "q"), 0);
    /* x has no bindings left. */
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("x"), true, &err), 0);
    sb_broker_free(b);
}

/* ---- one stored copy ---- */

static void
a_message_routed_to_three_queues_is_stored_once(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_msg *m = tb_msg("amq.fanout", "", "shared");
    sb_publish_result res;
    sb_error err = { 0 };
    uint32_t n;

    tb_queue(v, "q1");
    tb_queue(v, "q2");
    tb_queue(v, "q3");
    tb_bind(v, "q1", "amq.fanout", "");
    tb_bind(v, "q2", "amq.fanout", "");
    tb_bind(v, "q3", "amq.fanout", "");
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    assert_int_equal(m->rc.refs, 1 + 3);       /* ours + one per queue, no copies */
    assert_int_equal(sb_queue_purge(v, SB_STR_LIT("q1"), NULL, &n, &err), 0);
    assert_int_equal(m->rc.refs, 1 + 2);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q2"), NULL, false, false, &n, &err), 0);
    assert_int_equal(m->rc.refs, 1 + 1);
    sb_msg_unref(m);                           /* q3 keeps it; sb_broker_free frees it */
    sb_broker_free(b);
}

static void
an_unroutable_message_keeps_only_the_publishers_reference(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_msg *m = tb_msg("amq.direct", "nobody", "x");
    sb_publish_result res;
    sb_error err = { 0 };

    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_false(res.routed);
    assert_int_equal(m->rc.refs, 1);
    sb_msg_unref(m);
    sb_broker_free(b);
}

/* ---- exclusive queues ---- */

static void
an_exclusive_queue_is_locked_405_to_another_connection(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch_b = sb_bchan_new(b, v, conn_b);
    sb_queue_decl d = tb_qd("ex");
    sb_queue_info info;
    sb_deliver_info di;
    sb_error err = { 0 };
    tb_consumer fc;
    uint32_t n;
    const char *locked = "cannot obtain exclusive access to locked queue 'ex' in vhost '/'. "
                         "It could be originally declared on another connection or the "
                         "exclusive property value does not match that of the original "
                         "declaration.";

    tb_fc_init(&fc);
    d.exclusive = true;
    d.owner = conn_a;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);  /* owner may redeclare */
    d.owner = conn_b;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_RESOURCE_LOCKED);
    assert_string_equal(err.text, locked);
    d.passive = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_RESOURCE_LOCKED);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("ex"), conn_b, false, false, &n, &err),
                     SB_RESOURCE_LOCKED);
    assert_int_equal(sb_queue_purge(v, SB_STR_LIT("ex"), conn_b, &n, &err), SB_RESOURCE_LOCKED);
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("ex"), SB_STR_LIT("amq.direct"), SB_STR_LIT("k"),
                                   NULL, conn_b, false, &err), SB_RESOURCE_LOCKED);
    assert_int_equal(sb_bchan_get(ch_b, SB_STR_LIT("ex"), true, &di, &err), SB_RESOURCE_LOCKED);
    assert_int_equal(tb_consume_full(ch_b, "ex", NULL, false, false, 0, &fc, &err),
                     SB_RESOURCE_LOCKED);
    assert_string_equal(err.text, locked);
    /* Anyone may publish to it. */
    assert_true(tb_pub(v, "", "ex", "m"));
    sb_bchan_free(ch_b);
    sb_broker_free(b);
}

static void
redeclaring_with_the_other_exclusive_flag_is_405_even_for_the_owner(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d = tb_qd("ex");
    sb_queue_info info;
    sb_error err = { 0 };

    d.exclusive = true;
    d.owner = conn_a;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    d.exclusive = false;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_RESOURCE_LOCKED);
    tb_queue(v, "shared");
    d = tb_qd("shared");
    d.exclusive = true;
    d.owner = conn_a;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), SB_RESOURCE_LOCKED);
    sb_broker_free(b);
}

static void
dropping_an_owner_deletes_only_its_exclusive_queues(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_queue_decl d;
    sb_queue_info info;
    sb_error err = { 0 };
    char name[16];

    /* Enough queues that the name map grows and has tombstones. */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "a%d", i);
        d = tb_qd(name);
        d.exclusive = true;
        d.owner = conn_a;
        assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
        assert_int_equal(sb_queue_bind(v, sb_str_c(name), SB_STR_LIT("amq.fanout"),
                                       SB_STR_LIT(""), NULL, conn_a, false, &err), 0);
        assert_true(tb_pub(v, "", name, "m"));
    }
    d = tb_qd("b0");
    d.exclusive = true;
    d.owner = conn_b;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_queue(v, "shared");
    sb_vhost_drop_owner(v, conn_a);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "a%d", i);
        assert_int_equal(tb_ready(v, name), -1);
    }
    d = tb_qd("b0");
    d.passive = true;
    d.owner = conn_b;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    assert_int_equal(tb_ready(v, "shared"), 0);
    assert_false(tb_pub(v, "amq.fanout", "", "m"));  /* their bindings went too */
    sb_broker_free(b);
}

/* ---- queue arguments that change behaviour ---- */

static void
x_max_length_drops_the_oldest_messages_past_the_limit(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    sb_amqp_entry e[] = { E("x-max-length", v_int(SB_FV_I32, 2)) };
    sb_amqp_table t = TBL(e);
    sb_queue_decl d = tb_qd("capped");
    sb_queue_info info;
    sb_deliver_info di;
    sb_error err = { 0 };

    b = tb_broker();
    v = tb_vhost(b);
    ch = sb_bchan_new(b, v, conn_a);
    d.args = &t;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_pub_n(v, "capped", "m", 3);
    assert_int_equal(tb_ready(v, "capped"), 2);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("capped"), true, &di, &err), 0);
    assert_memory_equal(sb_msg_body(di.msg), "m1", 2);
    sb_msg_unref(di.msg);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
x_max_priority_delivers_higher_priority_messages_first(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    sb_amqp_entry e[] = { E("x-max-priority", v_int(SB_FV_I32, 10)) };
    sb_amqp_table t = TBL(e);
    sb_queue_decl d = tb_qd("prio");
    sb_queue_info info;
    sb_deliver_info di;
    sb_publish_result res;
    sb_error err = { 0 };
    static const uint8_t prios[] = { 1, 9, 5 };

    b = tb_broker();
    v = tb_vhost(b);
    ch = sb_bchan_new(b, v, conn_a);
    d.args = &t;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    for (size_t i = 0; i < TB_NELEM(prios); i++) {
        char body[8];
        sb_msg *m;
        snprintf(body, sizeof body, "p%u", prios[i]);
        m = sb_msg_new(SB_STR_NULL, SB_STR_LIT(""), SB_STR_LIT("prio"), 2, 1, prios[i]);
        memcpy(sb_msg_body(m), body, 2);
        assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
        sb_msg_unref(m);
    }
    for (int i = 0; i < 3; i++) {
        static const char *const want[] = { "p9", "p5", "p1" };
        assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("prio"), true, &di, &err), 0);
        assert_memory_equal(sb_msg_body(di.msg), want[i], 2);
        sb_msg_unref(di.msg);
    }
    sb_bchan_free(ch);
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_server_named_queue_is_amq_gen_and_22_url_safe_characters),
        cmocka_unit_test(declaring_an_amq_prefixed_queue_is_refused_403),
        cmocka_unit_test(passive_declare_of_a_missing_queue_is_404),
        cmocka_unit_test(redeclare_and_passive_report_ready_messages_and_consumers),
        cmocka_unit_test(redeclaring_with_other_durable_or_auto_delete_is_406),
        cmocka_unit_test(redeclaring_with_another_known_argument_value_is_406),
        cmocka_unit_test(an_invalid_known_argument_is_406_and_creates_nothing),
        cmocka_unit_test(deleting_a_missing_queue_succeeds_with_zero_messages),
        cmocka_unit_test(delete_returns_the_ready_count_and_honours_if_empty_and_if_unused),
        cmocka_unit_test(purge_drops_ready_messages_and_returns_their_count),
        cmocka_unit_test(binding_a_missing_queue_or_exchange_is_404),
        cmocka_unit_test(binding_twice_is_one_binding),
        cmocka_unit_test(deleting_a_queue_removes_its_bindings),
        cmocka_unit_test(a_message_routed_to_three_queues_is_stored_once),
        cmocka_unit_test(an_unroutable_message_keeps_only_the_publishers_reference),
        cmocka_unit_test(an_exclusive_queue_is_locked_405_to_another_connection),
        cmocka_unit_test(redeclaring_with_the_other_exclusive_flag_is_405_even_for_the_owner),
        cmocka_unit_test(dropping_an_owner_deletes_only_its_exclusive_queues),
        cmocka_unit_test(x_max_length_drops_the_oldest_messages_past_the_limit),
        cmocka_unit_test(x_max_priority_delivers_higher_priority_messages_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
