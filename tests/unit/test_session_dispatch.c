/* test_session_dispatch.c - the generated dispatch table (session/
 * dispatch_gen.c): one row per method of the spec, reachable by its id;
 * the facts each row carries; which methods a client may send, and where;
 * and the refusals chan.c and conn_amqp.c give to the others.
 *
 * The lists of methods below are written out by hand on purpose: they are
 * a second statement of what tools/amqpgen.py derives from the spec and
 * its DISPATCH_ tables, so a change to either shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "session/session_int.h"

/* Methods a client may send that Switchboard handles. */
static const char *const handled[] = {
    "connection.start-ok", "connection.tune-ok", "connection.open", "connection.close",
    "connection.close-ok", "connection.blocked", "connection.unblocked",
    "connection.update-secret",
    "channel.open", "channel.flow", "channel.close", "channel.close-ok",
    "access.request",
    "exchange.declare", "exchange.delete", "exchange.bind", "exchange.unbind",
    "queue.declare", "queue.bind", "queue.purge", "queue.delete", "queue.unbind",
    "basic.qos", "basic.consume", "basic.cancel", "basic.publish", "basic.get", "basic.ack",
    "basic.reject", "basic.recover-async", "basic.recover", "basic.nack",
    "tx.select", "tx.commit", "tx.rollback", "confirm.select",
};

/* Methods the spec lets a client send, refused because they answer a
 * request Switchboard never sends. */
static const char *const refused[] = {
    "connection.secure-ok", "channel.flow-ok", "basic.cancel-ok",
};

static bool
listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

#define LISTED(list, name) listed(list, sizeof list / sizeof list[0], name)

static const sb_dispatch *
row(const char *name)
{
    for (size_t i = 0; i < sb_session__dispatch_count; i++)
        if (strcmp(sb_session__dispatch_rows[i].name, name) == 0)
            return &sb_session__dispatch_rows[i];
    fail_msg("no row named %s", name);
    return NULL;
}

static void
every_spec_method_has_exactly_one_row_found_by_its_id(void **state)
{
    size_t found = 0;

    /* The codec's info table is generated from the same spec by another
     * part of the generator: the two must agree on every id. */
    for (uint32_t c = 0; c <= 200; c++) {
        for (uint32_t m = 0; m <= 200; m++) {
            uint32_t id = SB_METHOD_ID(c, m);
            const sb_amqp_method_info *info = sb_amqp_method_info_get(id);
            const sb_dispatch *d = sb_session__dispatch_get(id);

            if (info == NULL) {
                assert_null(d);
                continue;
            }
            assert_non_null(d);
            assert_int_equal(d->id, id);
            assert_string_equal(d->name, info->name);
            assert_int_equal(d->has_content, info->content);
            assert_int_equal(d->synchronous, info->synchronous);
            found++;
        }
    }
    assert_int_equal(found, sb_session__dispatch_count);
    assert_int_equal(sb_session__dispatch_count, 66);
    assert_null(sb_session__dispatch_get(SB_METHOD_ID(SB_CLASS_BASIC, 0xffff)));
    assert_null(sb_session__dispatch_get(SB_METHOD_ID(0xffff, 10)));
    assert_null(sb_session__dispatch_get(SB_METHOD_ID(SB_DISPATCH_CLASS_END, 10)));
}

static void
rows_are_in_id_order(void **state)
{
    for (size_t i = 1; i < sb_session__dispatch_count; i++)
        assert_true(sb_session__dispatch_rows[i - 1].id < sb_session__dispatch_rows[i].id);
}

static void
content_bearing_methods_are_exactly_publish_return_deliver_get_ok(void **state)
{
    static const char *const with_content[] = {
        "basic.publish", "basic.return", "basic.deliver", "basic.get-ok",
    };
    size_t n = 0;

    for (size_t i = 0; i < sb_session__dispatch_count; i++) {
        const sb_dispatch *d = &sb_session__dispatch_rows[i];
        assert_int_equal(d->has_content, LISTED(with_content, d->name));
        n += d->has_content;
    }
    assert_int_equal(n, 4);
    /* Of those, a client sends only basic.publish. */
    assert_true(row("basic.publish")->client_sends);
    assert_false(row("basic.return")->client_sends);
    assert_false(row("basic.deliver")->client_sends);
    assert_false(row("basic.get-ok")->client_sends);
}

static void
synchronous_methods_are_the_requests_that_expect_an_ok(void **state)
{
    assert_true(row("queue.declare")->synchronous);
    assert_true(row("basic.get")->synchronous);
    assert_true(row("connection.start")->synchronous);
    assert_false(row("basic.publish")->synchronous);
    assert_false(row("basic.ack")->synchronous);
    assert_false(row("queue.declare-ok")->synchronous);
    for (size_t i = 0; i < sb_session__dispatch_count; i++) {
        const sb_dispatch *d = &sb_session__dispatch_rows[i];
        size_t len = strlen(d->name);
        if (len > 3 && strcmp(d->name + len - 3, "-ok") == 0)
            assert_false(d->synchronous);
    }
}

static void
handlers_exist_exactly_for_client_methods_that_are_not_refused(void **state)
{
    size_t n = 0;

    for (size_t i = 0; i < sb_session__dispatch_count; i++) {
        const sb_dispatch *d = &sb_session__dispatch_rows[i];
        bool has_handler = d->on_conn != NULL || d->on_chan != NULL;

        if (LISTED(handled, d->name)) {
            assert_true(d->client_sends);
            assert_true(has_handler);
            n++;
        } else {
            assert_false(has_handler);
            assert_int_equal(d->client_sends, LISTED(refused, d->name));
        }
        /* A handler runs somewhere, and only a row with a handler has states. */
        assert_int_equal(has_handler, (d->conn_states | d->chan_states) != 0);
    }
    assert_int_equal(n, sizeof handled / sizeof handled[0]);
}

static void
connection_methods_run_on_channel_zero_and_the_others_on_channels(void **state)
{
    for (size_t i = 0; i < sb_session__dispatch_count; i++) {
        const sb_dispatch *d = &sb_session__dispatch_rows[i];

        if (d->id >> 16 == SB_CLASS_CONNECTION) {
            assert_null(d->on_chan);
            assert_int_equal(d->chan_states, 0);
        } else {
            assert_null(d->on_conn);
            assert_int_equal(d->conn_states, 0);
        }
    }
}

/* The names of the rows whose states include bit, in id order, joined by
 * spaces; conn selects conn_states or chan_states. */
static void
accepted_in(unsigned bit, bool conn, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < sb_session__dispatch_count; i++) {
        const sb_dispatch *d = &sb_session__dispatch_rows[i];
        if ((conn ? d->conn_states : d->chan_states) & bit) {
            if (out[0] != '\0')
                strncat(out, " ", cap - strlen(out) - 1);
            strncat(out, d->name, cap - strlen(out) - 1);
        }
    }
}

static void
each_handshake_state_accepts_one_method_and_closing_only_close(void **state)
{
    char names[512];

    accepted_in(SB_IN(SC_AWAIT_START_OK), true, names, sizeof names);
    assert_string_equal(names, "connection.start-ok");
    accepted_in(SB_IN(SC_AWAIT_TUNE_OK), true, names, sizeof names);
    assert_string_equal(names, "connection.tune-ok");
    accepted_in(SB_IN(SC_AWAIT_OPEN), true, names, sizeof names);
    assert_string_equal(names, "connection.open");
    accepted_in(SB_IN(SC_OPEN), true, names, sizeof names);
    assert_string_equal(names, "connection.close connection.blocked connection.unblocked "
                               "connection.update-secret");
    accepted_in(SB_IN(SC_CLOSING), true, names, sizeof names);
    assert_string_equal(names, "connection.close connection.close-ok");
    accepted_in(SB_IN(CH_CLOSING), false, names, sizeof names);
    assert_string_equal(names, "channel.close channel.close-ok");
    /* close-ok is an answer: on an open channel it is refused. */
    assert_int_equal(row("channel.close-ok")->chan_states, SB_IN(CH_CLOSING));
    assert_int_equal(row("basic.publish")->chan_states, SB_IN(CH_OPEN));
}

static void
server_only_methods_on_a_channel_are_refused_with_503(void **state)
{
    sb_error err = { 0 };

    assert_int_equal(sb_session__chan_refuse(row("basic.deliver"), &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unexpected method basic.deliver");
    assert_int_equal(sb_session__chan_refuse(row("queue.declare-ok"), &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unexpected method queue.declare-ok");
    assert_int_equal(sb_session__chan_refuse(row("basic.cancel-ok"), &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unexpected method basic.cancel-ok");
    assert_int_equal(sb_session__chan_refuse(row("connection.start"), &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unexpected method connection.start on a channel");
    assert_int_equal(sb_session__chan_refuse(row("connection.close"), &err), SB_COMMAND_INVALID);
    assert_string_equal(err.text, "unexpected method connection.close on a channel");
}

static void
methods_on_channel_zero_are_refused_by_connection_state(void **state)
{
    sb_error err = { 0 };

    /* Running: 504, naming the method (RabbitMQ's text, pinned by
     * test_connection.py). */
    assert_int_equal(sb_session__conn_refuse(SC_OPEN, row("connection.start"), &err),
                     SB_CHANNEL_ERROR);
    assert_string_equal(err.text, "unexpected method in connection state running");
    assert_int_equal(err.class_id, 10);
    assert_int_equal(err.method_id, 10);
    assert_int_equal(sb_session__conn_refuse(SC_OPEN, row("basic.deliver"), &err),
                     SB_CHANNEL_ERROR);
    assert_int_equal(err.class_id, 60);
    assert_int_equal(err.method_id, 60);
    assert_int_equal(sb_session__conn_refuse(SC_OPEN, row("connection.secure-ok"), &err),
                     SB_CHANNEL_ERROR);
    /* The handshake: 503, naming the one method expected. */
    assert_int_equal(sb_session__conn_refuse(SC_AWAIT_START_OK, row("connection.tune-ok"), &err),
                     SB_COMMAND_INVALID);
    assert_string_equal(err.text, "expected connection.start-ok");
    assert_int_equal(err.class_id, 10);
    assert_int_equal(err.method_id, 31);
    assert_int_equal(sb_session__conn_refuse(SC_AWAIT_TUNE_OK, row("connection.secure-ok"), &err),
                     SB_COMMAND_INVALID);
    assert_string_equal(err.text, "expected connection.tune-ok");
    assert_int_equal(sb_session__conn_refuse(SC_AWAIT_OPEN, row("queue.declare"), &err),
                     SB_COMMAND_INVALID);
    assert_string_equal(err.text, "expected connection.open");
    /* Closing: dropped without a reply. */
    assert_int_equal(sb_session__conn_refuse(SC_CLOSING, row("queue.declare"), &err), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_spec_method_has_exactly_one_row_found_by_its_id),
        cmocka_unit_test(rows_are_in_id_order),
        cmocka_unit_test(content_bearing_methods_are_exactly_publish_return_deliver_get_ok),
        cmocka_unit_test(synchronous_methods_are_the_requests_that_expect_an_ok),
        cmocka_unit_test(handlers_exist_exactly_for_client_methods_that_are_not_refused),
        cmocka_unit_test(connection_methods_run_on_channel_zero_and_the_others_on_channels),
        cmocka_unit_test(each_handshake_state_accepts_one_method_and_closing_only_close),
        cmocka_unit_test(server_only_methods_on_a_channel_are_refused_with_503),
        cmocka_unit_test(methods_on_channel_zero_are_refused_by_connection_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
