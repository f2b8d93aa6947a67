/* test_broker_ack.c - settling deliveries through the broker's public API:
 * basic.ack (single, multiple, multiple with tag 0), nack / reject with
 * and without requeue (original order, redelivered), unknown and double
 * acks (406), basic.recover, closing a channel with unacked deliveries,
 * and basic.get (message_count, get-empty, no-ack).
 *
 * Message lifetimes are checked through sb_msg's reference count, and every
 * test ends with sb_broker_free, so a message that is dropped must really
 * be freed for the suite to pass under -fsanitize=address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "broker_test_util.h"

static const char *const conn_a = "connection A";

/* A channel with one acking, writable consumer on queue "q": a publish to
 * q is delivered at once. Tests flip fc.writable to hold messages back. */
typedef struct fixture {
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    tb_consumer fc;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    f->b = tb_broker();
    f->v = tb_vhost(f->b);
    f->ch = sb_bchan_new(f->b, f->v, conn_a);
    tb_fc_init(&f->fc);
    tb_queue(f->v, "q");
    tb_consume(f->ch, "q", false, &f->fc);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    sb_bchan_free(f->ch);
    sb_broker_free(f->b);
    free(f);
    return 0;
}

/* Publishes body to q keeping a reference the test must release. */
static sb_msg *
pub_kept(sb_vhost *v, const char *body)
{
    sb_msg *m = tb_msg("", "q", body);
    sb_publish_result res;
    sb_error err = { 0 };

    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    return m;
}

/* ---- ack ---- */

static void
ack_settles_one_delivery_and_releases_the_message(void **state)
{
    fixture *f = *state;
    sb_msg *m = pub_kept(f->v, "m");
    sb_error err = { 0 };

    assert_int_equal(f->fc.n, 1);
    assert_int_equal(m->rc.refs, 2);            /* ours + the unacked entry */
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[0].dtag, false, &err), 0);
    assert_int_equal(m->rc.refs, 1);
    sb_msg_unref(m);
}

static void
ack_multiple_settles_every_tag_up_to_the_given_one(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };
    sb_deliver_info d;

    tb_pub_n(f->v, "q", "m", 4);
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[2].dtag, true, &err), 0);
    /* 1..3 are gone, 4 is still unacked. */
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[0].dtag, false, &err), SB_PRECONDITION_FAILED);
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[3].dtag, false, &err), 0);
    assert_int_equal(sb_bchan_get(f->ch, SB_STR_LIT("q"), true, &d, &err), 0);
    assert_null(d.msg);
}

static void
ack_multiple_with_tag_zero_settles_everything(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    /* With nothing outstanding it is a no-op, not an error. */
    assert_int_equal(sb_bchan_ack(f->ch, 0, true, &err), 0);
    tb_pub_n(f->v, "q", "m", 3);
    assert_int_equal(sb_bchan_ack(f->ch, 0, true, &err), 0);
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[2].dtag, false, &err), SB_PRECONDITION_FAILED);
    /* Tag 0 without multiple is just an unknown tag. */
    assert_int_equal(sb_bchan_ack(f->ch, 0, false, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "unknown delivery tag 0");
}

static void
an_unknown_delivery_tag_is_406(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    tb_pub_n(f->v, "q", "m", 1);
    assert_int_equal(sb_bchan_ack(f->ch, 99, false, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "unknown delivery tag 99");
    memset(&err, 0, sizeof err);
    assert_int_equal(sb_bchan_ack(f->ch, 99, true, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "unknown delivery tag 99");
    memset(&err, 0, sizeof err);
    assert_int_equal(sb_bchan_nack(f->ch, 98, false, true, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "unknown delivery tag 98");
    /* The failed calls changed nothing. */
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[0].dtag, false, &err), 0);
}

static void
acking_the_same_tag_twice_is_406(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    tb_pub_n(f->v, "q", "m", 1);
    assert_int_equal(sb_bchan_ack(f->ch, 1, false, &err), 0);
    assert_int_equal(sb_bchan_ack(f->ch, 1, false, &err), SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "unknown delivery tag 1");
}

/* ---- nack / reject ---- */

static void
nack_with_requeue_restores_the_original_order_redelivered(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    tb_pub_n(f->v, "q", "m", 4);        /* all delivered, unacked */
    f->fc.writable = false;
    tb_pub_n(f->v, "q", "n", 1);        /* stays ready */
    /* Reject m2 alone, then the rest: they go back before n0, in order. */
    assert_int_equal(sb_bchan_nack(f->ch, f->fc.d[2].dtag, false, true, &err), 0);
    assert_int_equal(sb_bchan_nack(f->ch, 0, true, true, &err), 0);
    assert_int_equal(tb_ready(f->v, "q"), 5);
    f->fc.writable = true;
    sb_bchan_resume(f->ch);
    TB_ASSERT_BODIES(&f->fc, "m0,m1,m2,m3,m0,m1,m2,m3,n0");
    for (int i = 4; i < 8; i++)
        assert_true(f->fc.d[i].redelivered);
    assert_false(f->fc.d[8].redelivered);
    /* Redeliveries get new tags. */
    assert_int_equal(f->fc.d[4].dtag, 5);
}

static void
nack_multiple_requeues_only_up_to_its_tag(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    tb_pub_n(f->v, "q", "m", 3);
    f->fc.writable = false;
    assert_int_equal(sb_bchan_nack(f->ch, f->fc.d[1].dtag, true, true, &err), 0);
    assert_int_equal(tb_ready(f->v, "q"), 2);
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[2].dtag, false, &err), 0);
    f->fc.writable = true;
    sb_bchan_resume(f->ch);
    TB_ASSERT_BODIES(&f->fc, "m0,m1,m2,m0,m1");
}

static void
nack_without_requeue_drops_and_frees_the_message(void **state)
{
    fixture *f = *state;
    sb_msg *m = pub_kept(f->v, "dropped");
    sb_error err = { 0 };

    assert_int_equal(m->rc.refs, 2);
    assert_int_equal(sb_bchan_nack(f->ch, f->fc.d[0].dtag, false, false, &err), 0);
    assert_int_equal(m->rc.refs, 1);
    assert_int_equal(tb_ready(f->v, "q"), 0);
    assert_int_equal(f->fc.n, 1);
    sb_msg_unref(m);                    /* the last reference: ASan sees it freed */
    /* And without a kept reference, the drop alone frees it. */
    tb_pub_n(f->v, "q", "m", 2);
    assert_int_equal(sb_bchan_nack(f->ch, 0, true, false, &err), 0);
    assert_int_equal(tb_ready(f->v, "q"), 0);
}

/* ---- recover ---- */

static void
recover_with_requeue_redelivers_every_unacked_message(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    assert_int_equal(sb_bchan_recover(f->ch, true, &err), 0);  /* nothing outstanding */
    tb_pub_n(f->v, "q", "m", 2);
    assert_int_equal(sb_bchan_recover(f->ch, true, &err), 0);
    TB_ASSERT_BODIES(&f->fc, "m0,m1,m0,m1");
    assert_true(f->fc.d[2].redelivered);
    assert_true(f->fc.d[3].redelivered);
    assert_int_equal(sb_bchan_ack(f->ch, 0, true, &err), 0);
}

static void
recover_without_requeue_is_540(void **state)
{
    fixture *f = *state;
    sb_error err = { 0 };

    tb_pub_n(f->v, "q", "m", 1);
    assert_int_equal(sb_bchan_recover(f->ch, false, &err), SB_NOT_IMPLEMENTED);
    assert_string_equal(err.text, "requeue=false");
    assert_int_equal(f->fc.n, 1);
}

/* ---- closing the channel ---- */

static void
closing_a_channel_requeues_its_unacked_deliveries_in_order(void **state)
{
    fixture *f = *state;
    sb_bchan *other = sb_bchan_new(f->b, f->v, conn_a);
    sb_error err = { 0 };
    sb_deliver_info d;
    tb_consumer fc2;

    tb_fc_init(&fc2);
    tb_pub_n(f->v, "q", "m", 3);
    assert_int_equal(sb_bchan_get(other, SB_STR_LIT("q"), false, &d, &err), 0);
    assert_null(d.msg);                 /* all three are out on f->ch */
    fc2.writable = false;
    tb_consume(other, "q", false, &fc2);
    tb_pub_n(f->v, "q", "n", 1);        /* f->fc takes it */
    assert_int_equal(sb_bchan_ack(f->ch, f->fc.d[1].dtag, false, &err), 0);
    sb_bchan_free(f->ch);
    f->ch = sb_bchan_new(f->b, f->v, conn_a);  /* for teardown */
    assert_int_equal(tb_ready(f->v, "q"), 3);
    fc2.writable = true;
    sb_bchan_resume(other);
    TB_ASSERT_BODIES(&fc2, "m0,m2,n0");
    assert_true(fc2.d[0].redelivered && fc2.d[1].redelivered && fc2.d[2].redelivered);
    sb_bchan_free(other);
}

static void
acking_after_the_queue_was_deleted_frees_the_message(void **state)
{
    fixture *f = *state;
    sb_msg *m = pub_kept(f->v, "orphan");
    sb_error err = { 0 };
    uint32_t n;

    assert_int_equal(sb_queue_delete(f->v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    assert_int_equal(f->fc.cancelled, 1);
    assert_int_equal(m->rc.refs, 2);
    /* Requeue has nowhere to go: the message is dropped. */
    assert_int_equal(sb_bchan_nack(f->ch, f->fc.d[0].dtag, false, true, &err), 0);
    assert_int_equal(m->rc.refs, 1);
    sb_msg_unref(m);
}

/* ---- basic.get ---- */

static void
basic_get_returns_the_head_and_how_many_remain(void **state)
{
    fixture *f = *state;
    sb_bchan *ch = sb_bchan_new(f->b, f->v, conn_a);
    sb_deliver_info d;
    sb_error err = { 0 };

    tb_queue(f->v, "g");
    tb_pub_n(f->v, "g", "m", 3);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("g"), false, &d, &err), 0);
    assert_non_null(d.msg);
    assert_int_equal(d.message_count, 2);
    assert_int_equal(d.delivery_tag, 1);
    assert_false(d.redelivered);
    assert_int_equal(d.consumer_tag.len, 0);
    assert_memory_equal(sb_msg_body(d.msg), "m0", 2);
    assert_int_equal(d.msg->rc.refs, 2);    /* the caller's new reference + unacked */
    sb_msg_unref(d.msg);
    /* Rejected with requeue, it comes back first and redelivered. */
    assert_int_equal(sb_bchan_nack(ch, 1, false, true, &err), 0);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("g"), false, &d, &err), 0);
    assert_memory_equal(sb_msg_body(d.msg), "m0", 2);
    assert_true(d.redelivered);
    assert_int_equal(d.message_count, 2);
    assert_int_equal(d.delivery_tag, 2);
    sb_msg_unref(d.msg);
    assert_int_equal(sb_bchan_ack(ch, 2, false, &err), 0);
    sb_bchan_free(ch);
}

static void
basic_get_on_an_empty_queue_is_get_empty(void **state)
{
    fixture *f = *state;
    sb_deliver_info d;
    sb_error err = { 0 };

    tb_queue(f->v, "g");
    assert_int_equal(sb_bchan_get(f->ch, SB_STR_LIT("g"), false, &d, &err), 0);
    assert_null(d.msg);
    assert_int_equal(d.message_count, 0);
    assert_int_equal(sb_bchan_get(f->ch, SB_STR_LIT("nope"), false, &d, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no queue 'nope' in vhost '/'");
}

static void
basic_get_no_ack_leaves_nothing_to_acknowledge(void **state)
{
    fixture *f = *state;
    sb_msg *m;
    sb_publish_result res;
    sb_deliver_info d;
    sb_error err = { 0 };

    tb_queue(f->v, "g");
    m = tb_msg("", "g", "once");
    assert_int_equal(sb_publish(f->v, m, NULL, &res, &err), 0);
    assert_int_equal(sb_bchan_get(f->ch, SB_STR_LIT("g"), true, &d, &err), 0);
    assert_ptr_equal(d.msg, m);
    assert_int_equal(d.message_count, 0);
    assert_int_equal(m->rc.refs, 2);        /* ours + the caller's; the queue let go */
    sb_msg_unref(d.msg);
    sb_msg_unref(m);
    assert_int_equal(sb_bchan_ack(f->ch, d.delivery_tag, false, &err), SB_PRECONDITION_FAILED);
    assert_int_equal(tb_ready(f->v, "g"), 0);
}

static void
get_deliveries_do_not_use_up_consumer_prefetch(void **state)
{
    fixture *f = *state;
    sb_bchan *ch = sb_bchan_new(f->b, f->v, conn_a);
    sb_deliver_info d;
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(f->v, "g");
    assert_int_equal(sb_bchan_qos(ch, 0, 1, true, &err), 0);
    tb_pub_n(f->v, "g", "m", 2);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("g"), false, &d, &err), 0);
    sb_msg_unref(d.msg);
    tb_consume(ch, "g", false, &fc);
    TB_ASSERT_BODIES(&fc, "m1");
    sb_bchan_free(ch);                      /* requeues both, unacked */
    assert_int_equal(tb_ready(f->v, "g"), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ack_settles_one_delivery_and_releases_the_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ack_multiple_settles_every_tag_up_to_the_given_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ack_multiple_with_tag_zero_settles_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unknown_delivery_tag_is_406, setup, teardown),
        cmocka_unit_test_setup_teardown(acking_the_same_tag_twice_is_406, setup, teardown),
        cmocka_unit_test_setup_teardown(nack_with_requeue_restores_the_original_order_redelivered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(nack_multiple_requeues_only_up_to_its_tag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nack_without_requeue_drops_and_frees_the_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(recover_with_requeue_redelivers_every_unacked_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(recover_without_requeue_is_540, setup, teardown),
        cmocka_unit_test_setup_teardown(closing_a_channel_requeues_its_unacked_deliveries_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(acking_after_the_queue_was_deleted_frees_the_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(basic_get_returns_the_head_and_how_many_remain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(basic_get_on_an_empty_queue_is_get_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(basic_get_no_ack_leaves_nothing_to_acknowledge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(get_deliveries_do_not_use_up_consumer_prefetch, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
