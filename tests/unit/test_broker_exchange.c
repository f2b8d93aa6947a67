/* test_broker_exchange.c - exchanges through the broker's public API:
 * declare / passive / redeclare (with RabbitMQ 3.10's reply codes and
 * texts), the predeclared amq.* exchanges, delete and if-unused, and
 * routing through direct, fanout, topic and headers exchanges, exchange-
 * to-exchange bindings, alternate exchanges and auto-delete.
 *
 * Each test builds its own broker and ends with sb_broker_free, so the
 * suite is leak-checked under -fsanitize=address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"
#include "xtype_test_util.h"

/* ---- declare, passive, redeclare ---- */

static void
every_vhost_has_the_predeclared_amq_exchanges(void **state)
{
    static const struct { const char *name, *type; } pre[] = {
        { "amq.direct", "direct" }, { "amq.fanout", "fanout" }, { "amq.topic", "topic" },
        { "amq.headers", "headers" }, { "amq.match", "headers" },
        { "amq.rabbitmq.trace", "topic" },
    };
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    assert_string_equal(sb_vhost_name(v), "/");
    for (size_t i = 0; i < TB_NELEM(pre); i++) {
        sb_exchange_decl d = tb_xd(pre[i].name, pre[i].type);
        assert_true(tb_exchange_exists(v, pre[i].name));
        /* Redeclaring with the same properties is fine (they are durable). */
        d.durable = true;
        d.internal = strcmp(pre[i].name, "amq.rabbitmq.trace") == 0;
        assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    }
    sb_broker_free(b);
}

static void
declaring_a_new_amq_prefixed_exchange_is_refused_403(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("amq.mine", "direct");
    sb_error err = { 0 };

    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "exchange name 'amq.mine' contains reserved prefix 'amq.*'");
    assert_false(tb_exchange_exists(v, "amq.mine"));
    sb_broker_free(b);
}

static void
passive_declare_of_a_missing_exchange_is_404(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("nope", "direct");
    sb_error err = { 0 };

    d.passive = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no exchange 'nope' in vhost '/'");
    /* Passive never creates, and ignores the other fields when it exists. */
    assert_false(tb_exchange_exists(v, "nope"));
    tb_exchange(v, "x", "fanout");
    d = tb_xd("x", "topic");
    d.passive = true;
    d.durable = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    sb_broker_free(b);
}

static void
redeclaring_with_the_same_properties_succeeds(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("x", "topic");
    sb_error err = { 0 };

    d.durable = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    sb_broker_free(b);
}

static void
redeclaring_with_another_type_is_406_inequivalent_type(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("x", "fanout");
    sb_error err = { 0 };

    tb_exchange(v, "x", "direct");
    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'type' for exchange 'x' in vhost '/': "
                                  "received 'fanout' but current is 'direct'");
    sb_broker_free(b);
}

static void
redeclaring_with_other_flags_is_406_naming_the_flag(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("x", "direct");
    sb_error err = { 0 };

    tb_exchange(v, "x", "direct");
    d.durable = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'durable' for exchange 'x' in vhost '/': "
                                  "received 'true' but current is 'false'");
    d = tb_xd("x", "direct");
    d.auto_delete = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': "
                                  "received 'true' but current is 'false'");
    d = tb_xd("x", "direct");
    d.internal = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "inequivalent arg 'internal' for exchange 'x' in vhost '/': "
                                  "received 'true' but current is 'false'");
    sb_broker_free(b);
}

static void
an_unknown_exchange_type_is_503_command_invalid(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("x", "x-consistent-hash");
    sb_error err = { 0 };

    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unknown exchange type 'x-consistent-hash'");
    assert_false(tb_exchange_exists(v, "x"));
    sb_broker_free(b);
}

static void
the_default_exchange_cannot_be_declared_deleted_or_bound_403(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("", "direct");
    sb_error err = { 0 };

    assert_int_equal(sb_exchange_declare(v, &d, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "operation not permitted on the default exchange");
    memset(&err, 0, sizeof err);
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT(""), false, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "operation not permitted on the default exchange");
    tb_exchange(v, "x", "fanout");
    assert_int_equal(sb_exchange_bind(v, SB_STR_LIT("x"), SB_STR_LIT(""), SB_STR_LIT("k"), NULL,
                                      false, &err), SB_ACCESS_REFUSED);
    assert_int_equal(sb_exchange_bind(v, SB_STR_LIT(""), SB_STR_LIT("x"), SB_STR_LIT("k"), NULL,
                                      false, &err), SB_ACCESS_REFUSED);
    tb_queue(v, "q");
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT(""), SB_STR_LIT("q"), NULL,
                                   NULL, false, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "operation not permitted on the default exchange");
    sb_broker_free(b);
}

/* ---- delete ---- */

static void
deleting_a_system_exchange_is_refused_403(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("amq.direct"), false, &err),
                     SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "deletion of system exchange 'amq.direct' in vhost '/' not allowed");
    assert_true(tb_exchange_exists(v, "amq.direct"));
    sb_broker_free(b);
}

static void
deleting_a_missing_exchange_succeeds(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("never-was"), false, &err), 0);
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("never-was"), true, &err), 0);
    sb_broker_free(b);
}

static void
delete_if_unused_refuses_an_exchange_with_bindings_406(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_exchange(v, "x", "fanout");
    tb_queue(v, "q");
    tb_bind(v, "q", "x", "");
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("x"), true, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "exchange 'x' in vhost '/' in use");
    assert_true(tb_exchange_exists(v, "x"));
    /* Without if-unused it goes, bindings and all; the queue stays. */
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("x"), false, &err), 0);
    assert_false(tb_exchange_exists(v, "x"));
    assert_int_equal(tb_ready(v, "q"), 0);
    /* An unbound exchange passes if-unused. */
    tb_exchange(v, "y", "fanout");
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("y"), true, &err), 0);
    assert_false(tb_exchange_exists(v, "y"));
    sb_broker_free(b);
}

/* ---- publish checks ---- */

static void
publishing_to_a_missing_exchange_is_404_and_to_an_internal_one_403(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("inner", "fanout");
    sb_publish_result res;
    sb_error err = { 0 };
    sb_msg *m;

    assert_int_equal(sb_publish_check(v, SB_STR_LIT("nope"), &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no exchange 'nope' in vhost '/'");
    d.internal = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    assert_int_equal(sb_publish_check(v, SB_STR_LIT("inner"), &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "cannot publish to internal exchange 'inner' in vhost '/'");
    assert_int_equal(sb_publish_check(v, SB_STR_LIT("amq.rabbitmq.trace"), &err),
                     SB_ACCESS_REFUSED);
    m = tb_msg("nope", "k", "body");
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), SB_NOT_FOUND);
    assert_false(res.routed);
    assert_int_equal(m->rc.refs, 1);
    sb_msg_unref(m);
    sb_broker_free(b);
}

/* ---- routing by type ---- */

static void
a_direct_exchange_routes_by_exact_key(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "a");
    tb_queue(v, "b");
    tb_bind(v, "a", "amq.direct", "k1");
    tb_bind(v, "b", "amq.direct", "k2");
    assert_true(tb_pub(v, "amq.direct", "k1", "m1"));
    assert_true(tb_pub(v, "amq.direct", "k2", "m2"));
    assert_false(tb_pub(v, "amq.direct", "k3", "m3"));
    assert_int_equal(tb_ready(v, "a"), 1);
    assert_int_equal(tb_ready(v, "b"), 1);
    sb_broker_free(b);
}

static void
a_fanout_exchange_ignores_the_key_and_reaches_every_bound_queue(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "a");
    tb_queue(v, "b");
    tb_bind(v, "a", "amq.fanout", "ignored");
    tb_bind(v, "b", "amq.fanout", "");
    assert_true(tb_pub(v, "amq.fanout", "anything", "m"));
    assert_int_equal(tb_ready(v, "a"), 1);
    assert_int_equal(tb_ready(v, "b"), 1);
    sb_broker_free(b);
}

static void
a_topic_exchange_matches_star_and_hash(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "star");
    tb_queue(v, "hash");
    tb_bind(v, "star", "amq.topic", "log.*.error");
    tb_bind(v, "hash", "amq.topic", "log.#");
    assert_true(tb_pub(v, "amq.topic", "log.db.error", "1"));      /* both */
    assert_true(tb_pub(v, "amq.topic", "log.db.x.error", "2"));    /* hash only */
    assert_true(tb_pub(v, "amq.topic", "log", "3"));               /* hash: # matches none */
    assert_false(tb_pub(v, "amq.topic", "audit.db.error", "4"));
    assert_int_equal(tb_ready(v, "star"), 1);
    assert_int_equal(tb_ready(v, "hash"), 3);
    sb_broker_free(b);
}

static void
a_headers_exchange_matches_all_or_any(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry all_e[] = { E("x-match", v_str("all")), E("fmt", v_str("pdf")),
                              E("type", v_str("report")) };
    sb_amqp_entry any_e[] = { E("x-match", v_str("any")), E("fmt", v_str("pdf")),
                              E("type", v_str("report")) };
    sb_amqp_entry both_h[] = { E("fmt", v_str("pdf")), E("type", v_str("report")) };
    sb_amqp_entry one_h[] = { E("fmt", v_str("pdf")) };
    sb_amqp_entry none_h[] = { E("fmt", v_str("zip")) };
    sb_amqp_table all_t = TBL(all_e), any_t = TBL(any_e);
    sb_amqp_table both = TBL(both_h), one = TBL(one_h), none = TBL(none_h);

    tb_queue(v, "all");
    tb_queue(v, "any");
    tb_bind_h(v, "all", "amq.headers", "", &all_t);
    tb_bind_h(v, "any", "amq.headers", "", &any_t);
    assert_true(tb_pub_h(v, "amq.headers", "", "1", &both));   /* both */
    assert_true(tb_pub_h(v, "amq.headers", "", "2", &one));    /* any only */
    assert_false(tb_pub_h(v, "amq.headers", "", "3", &none));
    assert_false(tb_pub_h(v, "amq.headers", "", "4", NULL));
    assert_int_equal(tb_ready(v, "all"), 1);
    assert_int_equal(tb_ready(v, "any"), 2);
    sb_broker_free(b);
}

static void
binding_a_headers_exchange_with_a_bad_x_match_is_406(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry bad_e[] = { E("x-match", v_str("some")) };
    sb_amqp_table bad = TBL(bad_e);
    sb_error err = { 0 };

    tb_queue(v, "q");
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT("amq.match"), SB_STR_LIT(""),
                                   &bad, NULL, false, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "Invalid x-match field value <<\"some\">>; expected all, any, "
                                  "all-with-x, or any-with-x");
    sb_broker_free(b);
}

static void
the_default_exchange_routes_to_the_queue_named_by_the_key(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_queue(v, "orders");
    assert_true(tb_pub(v, "", "orders", "m"));
    assert_false(tb_pub(v, "", "Orders", "m"));
    assert_false(tb_pub(v, "", "", "m"));
    assert_int_equal(tb_ready(v, "orders"), 1);
    sb_broker_free(b);
}

static void
unbinding_a_queue_stops_routing_to_it(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_queue(v, "q");
    tb_bind(v, "q", "amq.direct", "k");
    assert_true(tb_pub(v, "amq.direct", "k", "1"));
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT("amq.direct"), SB_STR_LIT("k"),
                                   NULL, NULL, true, &err), 0);
    assert_false(tb_pub(v, "amq.direct", "k", "2"));
    assert_int_equal(tb_ready(v, "q"), 1);
    /* Unbinding again, or what never existed, succeeds. */
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q"), SB_STR_LIT("amq.direct"), SB_STR_LIT("k"),
                                   NULL, NULL, true, &err), 0);
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("nope"), SB_STR_LIT("nope"), SB_STR_LIT("k"),
                                   NULL, NULL, true, &err), 0);
    sb_broker_free(b);
}

/* ---- exchange-to-exchange ---- */

static void
an_exchange_bound_to_an_exchange_forwards_what_it_matches(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_exchange(v, "front", "topic");
    tb_exchange(v, "back", "fanout");
    tb_queue(v, "q");
    tb_bind(v, "q", "back", "");
    tb_xbind(v, "back", "front", "eu.#");
    assert_true(tb_pub(v, "front", "eu.orders", "1"));
    assert_false(tb_pub(v, "front", "us.orders", "2"));
    assert_int_equal(tb_ready(v, "q"), 1);
    assert_int_equal(sb_exchange_bind(v, SB_STR_LIT("back"), SB_STR_LIT("front"),
                                      SB_STR_LIT("eu.#"), NULL, true, &err), 0);
    assert_false(tb_pub(v, "front", "eu.orders", "3"));
    /* Binding to or from a missing exchange is 404. */
    assert_int_equal(sb_exchange_bind(v, SB_STR_LIT("nope"), SB_STR_LIT("front"), SB_STR_LIT(""),
                                      NULL, false, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no exchange 'nope' in vhost '/'");
    assert_int_equal(sb_exchange_bind(v, SB_STR_LIT("back"), SB_STR_LIT("gone"), SB_STR_LIT(""),
                                      NULL, false, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no exchange 'gone' in vhost '/'");
    sb_broker_free(b);
}

static void
an_exchange_cycle_delivers_each_message_once(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);

    tb_exchange(v, "a", "fanout");
    tb_exchange(v, "b", "fanout");
    tb_queue(v, "qa");
    tb_queue(v, "qb");
    tb_bind(v, "qa", "a", "");
    tb_bind(v, "qb", "b", "");
    tb_xbind(v, "b", "a", "");
    tb_xbind(v, "a", "b", "");
    assert_true(tb_pub(v, "a", "", "1"));
    assert_true(tb_pub(v, "b", "", "2"));
    assert_int_equal(tb_ready(v, "qa"), 2);
    assert_int_equal(tb_ready(v, "qb"), 2);
    sb_broker_free(b);
}

static void
a_queue_reached_by_two_paths_gets_one_copy(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_msg *m = tb_msg("a", "", "m");
    sb_publish_result res;
    sb_error err = { 0 };

    tb_exchange(v, "a", "fanout");
    tb_exchange(v, "b", "fanout");
    tb_queue(v, "q");
    tb_bind(v, "q", "a", "");
    tb_bind(v, "q", "b", "");
    tb_xbind(v, "b", "a", "");
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    assert_int_equal(tb_ready(v, "q"), 1);
    assert_int_equal(m->rc.refs, 2);
    sb_msg_unref(m);
    sb_broker_free(b);
}

static void
an_exchange_bound_to_itself_delivers_once_and_deletes_cleanly(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_exchange(v, "loop", "topic");
    tb_queue(v, "q");
    tb_bind(v, "q", "loop", "#");
    tb_xbind(v, "loop", "loop", "#");
    assert_true(tb_pub(v, "loop", "a.b", "1"));
    assert_int_equal(tb_ready(v, "q"), 1);
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("loop"), false, &err), 0);
    assert_false(tb_exchange_exists(v, "loop"));
    sb_broker_free(b);
}

/* ---- alternate exchange ---- */

static void
the_alternate_exchange_gets_only_unroutable_messages(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry ae_e[] = { E("alternate-exchange", v_str("ae")) };
    sb_amqp_table ae_args = TBL(ae_e);
    sb_exchange_decl d = tb_xd("main", "direct");
    sb_error err = { 0 };

    d.args = &ae_args;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    tb_exchange(v, "ae", "fanout");
    tb_queue(v, "routed");
    tb_queue(v, "lost");
    tb_bind(v, "routed", "main", "k");
    tb_bind(v, "lost", "ae", "");
    assert_true(tb_pub(v, "main", "k", "1"));
    assert_true(tb_pub(v, "main", "other", "2"));
    assert_int_equal(tb_ready(v, "routed"), 1);
    assert_int_equal(tb_ready(v, "lost"), 1);
    sb_broker_free(b);
}

static void
a_missing_alternate_exchange_leaves_the_message_unroutable(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_amqp_entry ae_e[] = { E("alternate-exchange", v_str("not-declared")) };
    sb_amqp_table ae_args = TBL(ae_e);
    sb_exchange_decl d = tb_xd("main", "direct");
    sb_error err = { 0 };

    d.args = &ae_args;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    assert_false(tb_pub(v, "main", "k", "1"));
    sb_broker_free(b);
}

static void
the_alternate_exchange_is_not_used_when_an_exchange_binding_matched(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_amqp_entry ae_e[] = { E("alternate-exchange", v_str("ae")) };
    sb_amqp_table ae_args = TBL(ae_e);
    sb_exchange_decl d = tb_xd("main", "fanout");
    sb_error err = { 0 };

    b = tb_broker();
    v = tb_vhost(b);
    d.args = &ae_args;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    tb_exchange(v, "ae", "fanout");
    tb_exchange(v, "empty", "direct");
    tb_queue(v, "lost");
    tb_bind(v, "lost", "ae", "");
    tb_xbind(v, "empty", "main", "");
    assert_false(tb_pub(v, "main", "k", "1"));
    assert_int_equal(tb_ready(v, "lost"), 0);
    sb_broker_free(b);
}

/* ---- auto-delete ---- */

static void
an_auto_delete_exchange_goes_when_its_last_binding_is_removed(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("ad", "fanout");
    sb_error err = { 0 };

    d.auto_delete = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    /* Never bound: it stays. */
    assert_true(tb_exchange_exists(v, "ad"));
    tb_queue(v, "q1");
    tb_queue(v, "q2");
    tb_bind(v, "q1", "ad", "");
    tb_bind(v, "q2", "ad", "");
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q1"), SB_STR_LIT("ad"), SB_STR_LIT(""), NULL,
                                   NULL, true, &err), 0);
    assert_true(tb_exchange_exists(v, "ad"));
    assert_int_equal(sb_queue_bind(v, SB_STR_LIT("q2"), SB_STR_LIT("ad"), SB_STR_LIT(""), NULL,
                                   NULL, true, &err), 0);
    assert_false(tb_exchange_exists(v, "ad"));
    sb_broker_free(b);
}

static void
an_auto_delete_exchange_goes_when_its_last_bound_queue_is_deleted(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_exchange_decl d = tb_xd("ad", "direct");
    sb_error err = { 0 };
    uint32_t n;

    d.auto_delete = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    tb_queue(v, "q");
    tb_bind(v, "q", "ad", "a");
    tb_bind(v, "q", "ad", "b");
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    assert_false(tb_exchange_exists(v, "ad"));
    sb_broker_free(b);
}

static void
deleting_an_exchange_auto_deletes_a_source_whose_last_binding_it_was(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_exchange_decl d = tb_xd("src", "fanout");
    sb_error err = { 0 };

    b = tb_broker();
    v = tb_vhost(b);
    d.auto_delete = true;
    assert_int_equal(sb_exchange_declare(v, &d, &err), 0);
    tb_exchange(v, "dst", "fanout");
    tb_xbind(v, "dst", "src", "");
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("dst"), false, &err), 0);
    assert_false(tb_exchange_exists(v, "src"));
    sb_broker_free(b);
}

static void
deleting_an_exchange_removes_exchange_bindings_to_it(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_error err = { 0 };

    tb_exchange(v, "src", "fanout");
    tb_exchange(v, "dst", "fanout");
    tb_queue(v, "q");
    tb_bind(v, "q", "dst", "");
    tb_xbind(v, "dst", "src", "");
    assert_true(tb_pub(v, "src", "", "1"));
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("dst"), false, &err), 0);
    assert_false(tb_pub(v, "src", "", "2"));
    /* src has no bindings left, so if-unused now lets it go. */
    assert_int_equal(sb_exchange_delete(v, SB_STR_LIT("src"), true, &err), 0);
    assert_int_equal(tb_ready(v, "q"), 1);
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_vhost_has_the_predeclared_amq_exchanges),
        cmocka_unit_test(declaring_a_new_amq_prefixed_exchange_is_refused_403),
        cmocka_unit_test(passive_declare_of_a_missing_exchange_is_404),
        cmocka_unit_test(redeclaring_with_the_same_properties_succeeds),
        cmocka_unit_test(redeclaring_with_another_type_is_406_inequivalent_type),
        cmocka_unit_test(redeclaring_with_other_flags_is_406_naming_the_flag),
        cmocka_unit_test(an_unknown_exchange_type_is_503_command_invalid),
        cmocka_unit_test(the_default_exchange_cannot_be_declared_deleted_or_bound_403),
        cmocka_unit_test(deleting_a_system_exchange_is_refused_403),
        cmocka_unit_test(deleting_a_missing_exchange_succeeds),
        cmocka_unit_test(delete_if_unused_refuses_an_exchange_with_bindings_406),
        cmocka_unit_test(publishing_to_a_missing_exchange_is_404_and_to_an_internal_one_403),
        cmocka_unit_test(a_direct_exchange_routes_by_exact_key),
        cmocka_unit_test(a_fanout_exchange_ignores_the_key_and_reaches_every_bound_queue),
        cmocka_unit_test(a_topic_exchange_matches_star_and_hash),
        cmocka_unit_test(a_headers_exchange_matches_all_or_any),
        cmocka_unit_test(binding_a_headers_exchange_with_a_bad_x_match_is_406),
        cmocka_unit_test(the_default_exchange_routes_to_the_queue_named_by_the_key),
        cmocka_unit_test(unbinding_a_queue_stops_routing_to_it),
        cmocka_unit_test(an_exchange_bound_to_an_exchange_forwards_what_it_matches),
        cmocka_unit_test(an_exchange_cycle_delivers_each_message_once),
        cmocka_unit_test(a_queue_reached_by_two_paths_gets_one_copy),
        cmocka_unit_test(an_exchange_bound_to_itself_delivers_once_and_deletes_cleanly),
        cmocka_unit_test(the_alternate_exchange_gets_only_unroutable_messages),
        cmocka_unit_test(a_missing_alternate_exchange_leaves_the_message_unroutable),
        cmocka_unit_test(the_alternate_exchange_is_not_used_when_an_exchange_binding_matched),
        cmocka_unit_test(an_auto_delete_exchange_goes_when_its_last_binding_is_removed),
        cmocka_unit_test(an_auto_delete_exchange_goes_when_its_last_bound_queue_is_deleted),
        cmocka_unit_test(deleting_an_exchange_auto_deletes_a_source_whose_last_binding_it_was),
        cmocka_unit_test(deleting_an_exchange_removes_exchange_bindings_to_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
