/* test_broker_consume.c - consumers through the broker's public API, with
 * a fake sb_consumer_ops that records deliveries: round-robin, consumer
 * priorities, per-consumer and channel-global prefetch (basic.qos), a
 * client that cannot take more (writable=false) and sb_bchan_resume,
 * channel.flow, no-ack, exclusive consumers, consumer tags, cancel,
 * auto-delete queues, cancel notification, and direct reply-to.
 *
 * Each test builds its own broker, frees its channels, and ends with
 * sb_broker_free, so the suite is leak-checked under -fsanitize=address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"
#include "xtype_test_util.h"

static const char *const conn_a = "connection A";

/* ---- dispatch ---- */

static void
two_consumers_on_a_queue_take_turns(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    tb_consumer c1, c2;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_queue(v, "q");
    tb_consume(ch, "q", false, &c1);
    tb_consume(ch, "q", false, &c2);
    tb_pub_n(v, "q", "m", 5);
    TB_ASSERT_BODIES(&c1, "m0,m2,m4");
    TB_ASSERT_BODIES(&c2, "m1,m3");
    /* Delivery tags count up per channel, across consumers. */
    assert_int_equal(c1.d[0].dtag, 1);
    assert_int_equal(c2.d[0].dtag, 2);
    assert_int_equal(c1.d[2].dtag, 5);
    assert_string_equal(c1.d[0].tag, c1.tag);
    assert_false(c1.d[0].redelivered);
    assert_int_equal(tb_ready(v, "q"), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
messages_published_before_the_first_consumer_wait_and_then_flow(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_consume_req r = { .queue = SB_STR_LIT("q"), .ops = &tb_ops };
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    r.ud = &fc;
    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 2);
    /* Registered but not started (consume-ok not yet sent): nothing yet. */
    assert_int_equal(sb_bchan_consume(ch, &r, fc.tag, &fc.c, &err), 0);
    assert_memory_equal(fc.tag, "amq.ctag-", 9);
    assert_int_equal(strlen(fc.tag), 9 + 22);
    assert_true(sb_str_eq_c(sb_consumer_tag(fc.c), fc.tag));
    tb_pub_n(v, "q", "n", 1);
    assert_int_equal(fc.n, 0);
    sb_consumer_start(fc.c);
    TB_ASSERT_BODIES(&fc, "m0,m1,n0");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
a_higher_priority_consumer_gets_everything_while_it_has_credit(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch_hi = sb_bchan_new(b, v, conn_a), *ch_lo = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer hi, lo;

    tb_fc_init(&hi);
    tb_fc_init(&lo);
    tb_queue(v, "q");
    assert_int_equal(sb_bchan_qos(ch_hi, 0, 2, false, &err), 0);
    /* The low one registers first: priority, not arrival, decides. */
    assert_int_equal(tb_consume_full(ch_lo, "q", "lo", false, false, 0, &lo, &err), 0);
    assert_int_equal(tb_consume_full(ch_hi, "q", "hi", false, false, 10, &hi, &err), 0);
    tb_pub_n(v, "q", "a", 2);
    TB_ASSERT_BODIES(&hi, "a0,a1");
    assert_int_equal(lo.n, 0);
    /* hi is at its prefetch: lo gets what comes next. */
    tb_pub_n(v, "q", "b", 2);
    TB_ASSERT_BODIES(&lo, "b0,b1");
    /* Credit back: hi is first again. */
    assert_int_equal(sb_bchan_ack(ch_hi, hi.d[0].dtag, false, &err), 0);
    tb_pub_n(v, "q", "c", 1);
    TB_ASSERT_BODIES(&hi, "a0,a1,c0");
    assert_int_equal(lo.n, 2);
    sb_bchan_free(ch_hi);
    sb_bchan_free(ch_lo);
    sb_broker_free(b);
}

static void
per_consumer_prefetch_limits_unacked_deliveries(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer c1, c2;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_queue(v, "q");
    tb_queue(v, "r");
    assert_int_equal(sb_bchan_qos(ch, 0, 2, false, &err), 0);
    tb_consume(ch, "q", false, &c1);
    /* basic.qos global=false applies to consumers created after it. */
    assert_int_equal(sb_bchan_qos(ch, 0, 1, false, &err), 0);
    tb_consume(ch, "r", false, &c2);
    tb_pub_n(v, "q", "q", 4);
    tb_pub_n(v, "r", "r", 4);
    TB_ASSERT_BODIES(&c1, "q0,q1");
    TB_ASSERT_BODIES(&c2, "r0");
    assert_int_equal(tb_ready(v, "q"), 2);
    assert_int_equal(sb_bchan_ack(ch, c1.d[1].dtag, false, &err), 0);
    TB_ASSERT_BODIES(&c1, "q0,q1,q2");
    TB_ASSERT_BODIES(&c2, "r0");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
prefetch_size_other_than_zero_is_540(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };

    assert_int_equal(sb_bchan_qos(ch, 10, 1, false, &err), SB_NOT_IMPLEMENTED);
    assert_string_equal(err.text, "prefetch_size!=0 (10)");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
global_prefetch_is_shared_by_every_consumer_of_the_channel(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer c1, c2;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_queue(v, "q");
    tb_queue(v, "r");
    assert_int_equal(sb_bchan_qos(ch, 0, 3, true, &err), 0);
    tb_consume(ch, "q", false, &c1);
    tb_consume(ch, "r", false, &c2);
    tb_pub_n(v, "q", "q", 2);
    tb_pub_n(v, "r", "r", 2);
    TB_ASSERT_BODIES(&c1, "q0,q1");
    TB_ASSERT_BODIES(&c2, "r0");
    /* An ack on q frees the channel's credit, which r's consumer uses. */
    assert_int_equal(sb_bchan_ack(ch, c1.d[0].dtag, false, &err), 0);
    TB_ASSERT_BODIES(&c2, "r0,r1");
    /* Raising the limit dispatches at once. */
    tb_pub_n(v, "q", "x", 2);
    assert_int_equal(c1.n + c2.n, 4);
    assert_int_equal(sb_bchan_qos(ch, 0, 0, true, &err), 0);
    assert_int_equal(c1.n + c2.n, 6);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
global_prefetch_still_counts_deliveries_of_a_cancelled_consumer(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    sb_error err = { 0 };
    tb_consumer c1, c2;

    b = tb_broker();
    v = tb_vhost(b);
    ch = sb_bchan_new(b, v, conn_a);
    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_queue(v, "q");
    assert_int_equal(sb_bchan_qos(ch, 0, 2, true, &err), 0);
    tb_consume(ch, "q", false, &c1);
    tb_pub_n(v, "q", "m", 4);
    TB_ASSERT_BODIES(&c1, "m0,m1");
    assert_true(sb_bchan_cancel(ch, sb_str_c(c1.tag)));
    tb_consume(ch, "q", false, &c2);
    assert_int_equal(c2.n, 0);
    assert_int_equal(sb_bchan_ack(ch, c1.d[0].dtag, false, &err), 0);
    TB_ASSERT_BODIES(&c2, "m2");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
an_unwritable_client_pauses_delivery_until_resume(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    tb_consume(ch, "q", false, &fc);
    tb_pub_n(v, "q", "a", 1);
    fc.writable = false;
    tb_pub_n(v, "q", "b", 3);
    TB_ASSERT_BODIES(&fc, "a0");
    assert_int_equal(tb_ready(v, "q"), 3);
    fc.writable = true;
    sb_bchan_resume(ch);
    TB_ASSERT_BODIES(&fc, "a0,b0,b1,b2");
    assert_int_equal(tb_ready(v, "q"), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
channel_flow_off_pauses_delivery_and_on_restarts_it(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    tb_consume(ch, "q", true, &fc);
    sb_bchan_flow(ch, false);
    tb_pub_n(v, "q", "m", 2);
    assert_int_equal(fc.n, 0);
    assert_int_equal(tb_ready(v, "q"), 2);
    sb_bchan_flow(ch, true);
    TB_ASSERT_BODIES(&fc, "m0,m1");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
a_no_ack_consumer_ignores_prefetch_and_releases_each_message(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_msg *m = tb_msg("", "q", "kept");
    sb_publish_result res;
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    assert_int_equal(sb_bchan_qos(ch, 0, 1, false, &err), 0);
    assert_int_equal(sb_bchan_qos(ch, 0, 1, true, &err), 0);
    tb_consume(ch, "q", true, &fc);
    tb_pub_n(v, "q", "m", 3);
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    TB_ASSERT_BODIES(&fc, "m0,m1,m2,kept");
    assert_int_equal(m->rc.refs, 1);  /* the queue let go once delivered */
    /* Nothing is unacked, so the tag is unknown. */
    assert_int_equal(sb_bchan_ack(ch, fc.d[0].dtag, false, &err), SB_PRECONDITION_FAILED);
    assert_int_equal(fc.d[3].dtag, 4);
    sb_msg_unref(m);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
a_single_active_consumer_queue_feeds_only_its_first_consumer(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    sb_amqp_entry e[] = { E("x-single-active-consumer", v_bool(true)) };
    sb_amqp_table t = TBL(e);
    sb_queue_decl d = tb_qd("sac");
    sb_queue_info info;
    sb_error err = { 0 };
    tb_consumer c1, c2;

    b = tb_broker();
    v = tb_vhost(b);
    ch = sb_bchan_new(b, v, conn_a);
    tb_fc_init(&c1);
    tb_fc_init(&c2);
    d.args = &t;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_consume(ch, "sac", true, &c1);
    tb_consume(ch, "sac", true, &c2);
    tb_pub_n(v, "sac", "m", 3);
    TB_ASSERT_BODIES(&c1, "m0,m1,m2");
    assert_int_equal(c2.n, 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

/* ---- exclusive consumers and tags ---- */

static void
an_exclusive_consumer_is_refused_403_and_refuses_others(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer c1, c2, c3;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_fc_init(&c3);
    tb_queue(v, "q");
    tb_consume(ch, "q", false, &c1);
    assert_int_equal(tb_consume_full(ch, "q", NULL, false, true, 0, &c2, &err), SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "queue 'q' in vhost '/' in exclusive use");
    assert_true(sb_bchan_cancel(ch, sb_str_c(c1.tag)));
    assert_int_equal(tb_consume_full(ch, "q", NULL, false, true, 0, &c2, &err), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(tb_consume_full(ch, "q", NULL, false, false, 0, &c3, &err),
                     SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "queue 'q' in vhost '/' in exclusive use");
    assert_true(sb_bchan_cancel(ch, sb_str_c(c2.tag)));
    assert_int_equal(tb_consume_full(ch, "q", NULL, false, false, 0, &c3, &err), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
reusing_a_consumer_tag_on_the_channel_is_530(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a), *other = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer c1, c2, c3;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_fc_init(&c3);
    tb_queue(v, "q");
    tb_queue(v, "r");
    assert_int_equal(tb_consume_full(ch, "q", "worker", false, false, 0, &c1, &err), 0);
    assert_string_equal(c1.tag, "worker");
    assert_int_equal(tb_consume_full(ch, "r", "worker", false, false, 0, &c2, &err),
                     SB_NOT_ALLOWED);
    assert_string_equal(err.text, "attempt to reuse consumer tag 'worker'");
    /* Tags are per channel. */
    assert_int_equal(tb_consume_full(other, "r", "worker", false, false, 0, &c3, &err), 0);
    /* After cancel the tag is free again. */
    assert_true(sb_bchan_cancel(ch, SB_STR_LIT("worker")));
    assert_int_equal(tb_consume_full(ch, "r", "worker", false, false, 0, &c2, &err), 0);
    sb_bchan_free(ch);
    sb_bchan_free(other);
    sb_broker_free(b);
}

static void
consuming_a_missing_queue_is_404(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    assert_int_equal(tb_consume_full(ch, "nope", NULL, false, false, 0, &fc, &err), SB_NOT_FOUND);
    assert_string_equal(err.text, "no queue 'nope' in vhost '/'");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
a_reused_tag_is_530_even_when_the_queue_is_missing(void **state)
{
    sb_broker *b;
    sb_vhost *v;
    sb_bchan *ch;
    sb_error err = { 0 };
    tb_consumer c1, c2;

    b = tb_broker();
    v = tb_vhost(b);
    ch = sb_bchan_new(b, v, conn_a);
    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_queue(v, "q");
    assert_int_equal(tb_consume_full(ch, "q", "worker", false, false, 0, &c1, &err), 0);
    assert_int_equal(tb_consume_full(ch, "nope", "worker", false, false, 0, &c2, &err),
                     SB_NOT_ALLOWED);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

/* ---- cancel, auto-delete, notification ---- */

static void
cancel_stops_deliveries_and_an_unknown_tag_is_reported(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    tb_queue(v, "q");
    tb_consume(ch, "q", false, &fc);
    tb_pub_n(v, "q", "a", 1);
    assert_true(sb_bchan_cancel(ch, sb_str_c(fc.tag)));
    assert_int_equal(fc.cancelled, 0);  /* client-initiated: no notification */
    tb_pub_n(v, "q", "b", 1);
    TB_ASSERT_BODIES(&fc, "a0");
    assert_int_equal(tb_ready(v, "q"), 1);
    assert_int_equal(tb_consumers(v, "q"), 0);
    assert_false(sb_bchan_cancel(ch, sb_str_c(fc.tag)));
    assert_false(sb_bchan_cancel(ch, SB_STR_LIT("never")));
    /* Its unacked delivery is still on the channel. */
    assert_int_equal(sb_bchan_ack(ch, fc.d[0].dtag, false, &err), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
an_auto_delete_queue_goes_after_its_last_consumer_but_not_before_any(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_queue_decl d = tb_qd("ad");
    sb_queue_info info;
    sb_error err = { 0 };
    tb_consumer c1, c2;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    d.auto_delete = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_bind(v, "ad", "amq.direct", "k");
    tb_pub_n(v, "ad", "m", 1);
    assert_int_equal(tb_ready(v, "ad"), 1);  /* no consumer yet: it stays */
    tb_consume(ch, "ad", false, &c1);
    tb_consume(ch, "ad", false, &c2);
    assert_true(sb_bchan_cancel(ch, sb_str_c(c1.tag)));
    assert_int_equal(tb_consumers(v, "ad"), 1);
    assert_true(sb_bchan_cancel(ch, sb_str_c(c2.tag)));
    assert_int_equal(tb_ready(v, "ad"), -1);
    assert_false(tb_pub(v, "amq.direct", "k", "late"));  /* bindings went with it */
    /* The delivery c1 holds is still unacked; settling it now just drops it. */
    assert_int_equal(sb_bchan_nack(ch, c1.d[0].dtag, false, true, &err), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
closing_the_channel_of_the_last_consumer_deletes_an_auto_delete_queue(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_queue_decl d = tb_qd("ad");
    sb_queue_info info;
    sb_error err = { 0 };
    tb_consumer fc;

    tb_fc_init(&fc);
    d.auto_delete = true;
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    tb_consume(ch, "ad", false, &fc);
    tb_pub_n(v, "ad", "m", 2);
    sb_bchan_free(ch);
    assert_int_equal(tb_ready(v, "ad"), -1);
    assert_int_equal(fc.cancelled, 0);
    sb_broker_free(b);
}

static void
deleting_a_queue_notifies_its_consumers_through_cancelled(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer c1, c2, other;
    uint32_t n;

    tb_fc_init(&c1);
    tb_fc_init(&c2);
    tb_fc_init(&other);
    tb_queue(v, "q");
    tb_queue(v, "r");
    tb_consume(ch, "q", false, &c1);
    tb_consume(ch, "q", false, &c2);
    tb_consume(ch, "r", false, &other);
    tb_pub_n(v, "q", "m", 1);
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    assert_int_equal(c1.cancelled, 1);
    assert_int_equal(c2.cancelled, 1);
    assert_int_equal(other.cancelled, 0);
    /* The tags are gone from the channel. */
    assert_false(sb_bchan_cancel(ch, sb_str_c(c1.tag)));
    /* The unacked delivery from the deleted queue can still be acked. */
    assert_int_equal(sb_bchan_ack(ch, c1.d[0].dtag, false, &err), 0);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

/* ---- direct reply-to ---- */

static void
a_reply_consumer_must_be_no_ack_406(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer fc, again;

    tb_fc_init(&fc);
    tb_fc_init(&again);
    assert_null(sb_bchan_reply_address(ch));
    assert_int_equal(tb_consume_full(ch, SB_REPLY_TO_QUEUE, NULL, false, false, 0, &fc, &err),
                     SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "reply consumer cannot acknowledge");
    assert_null(sb_bchan_reply_address(ch));
    assert_int_equal(tb_consume_full(ch, SB_REPLY_TO_QUEUE, NULL, true, false, 0, &fc, &err), 0);
    assert_int_equal(tb_consume_full(ch, SB_REPLY_TO_QUEUE, NULL, true, false, 0, &again, &err),
                     SB_PRECONDITION_FAILED);
    assert_string_equal(err.text, "reply consumer already set");
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
a_reply_to_the_address_reaches_the_caller_and_not_after_cancel(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *caller = sb_bchan_new(b, v, conn_a), *server = sb_bchan_new(b, v, conn_a);
    sb_msg *m;
    sb_publish_result res;
    sb_error err = { 0 };
    tb_consumer fc;
    char addr[128];

    tb_fc_init(&fc);
    assert_int_equal(tb_consume_full(caller, SB_REPLY_TO_QUEUE, "rpc", true, false, 0, &fc, &err),
                     0);
    assert_string_equal(fc.tag, "rpc");
    assert_non_null(sb_bchan_reply_address(caller));
    snprintf(addr, sizeof addr, "%s", sb_bchan_reply_address(caller));
    assert_memory_equal(addr, SB_REPLY_TO_QUEUE ".", strlen(SB_REPLY_TO_QUEUE) + 1);
    assert_true(strlen(addr) > strlen(SB_REPLY_TO_QUEUE) + 1);
    assert_null(sb_bchan_reply_address(server));
    /* The reply goes straight to the caller; nothing is kept. */
    m = tb_msg("", addr, "answer");
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    assert_int_equal(m->rc.refs, 1);
    sb_msg_unref(m);
    TB_ASSERT_BODIES(&fc, "answer");
    assert_string_equal(fc.d[0].tag, "rpc");
    /* A wrong token or the bare pseudo-queue name reaches nobody. */
    assert_false(tb_pub(v, "", SB_REPLY_TO_QUEUE ".nosuchtoken", "x"));
    assert_false(tb_pub(v, "", SB_REPLY_TO_QUEUE, "x"));
    assert_true(sb_bchan_cancel(caller, SB_STR_LIT("rpc")));
    assert_null(sb_bchan_reply_address(caller));
    assert_false(tb_pub(v, "", addr, "late"));
    assert_int_equal(fc.n, 1);
    sb_bchan_free(server);
    sb_bchan_free(caller);
    sb_broker_free(b);
}

static void
closing_the_callers_channel_makes_its_address_unroutable(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *caller = sb_bchan_new(b, v, conn_a);
    sb_error err = { 0 };
    tb_consumer fc;
    char addr[128];

    tb_fc_init(&fc);
    assert_int_equal(tb_consume_full(caller, SB_REPLY_TO_QUEUE, NULL, true, false, 0, &fc, &err),
                     0);
    snprintf(addr, sizeof addr, "%s", sb_bchan_reply_address(caller));
    sb_bchan_free(caller);
    assert_false(tb_pub(v, "", addr, "late"));
    assert_int_equal(fc.n, 0);
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_consumers_on_a_queue_take_turns),
        cmocka_unit_test(messages_published_before_the_first_consumer_wait_and_then_flow),
        cmocka_unit_test(a_higher_priority_consumer_gets_everything_while_it_has_credit),
        cmocka_unit_test(per_consumer_prefetch_limits_unacked_deliveries),
        cmocka_unit_test(prefetch_size_other_than_zero_is_540),
        cmocka_unit_test(global_prefetch_is_shared_by_every_consumer_of_the_channel),
        cmocka_unit_test(global_prefetch_still_counts_deliveries_of_a_cancelled_consumer),
        cmocka_unit_test(an_unwritable_client_pauses_delivery_until_resume),
        cmocka_unit_test(channel_flow_off_pauses_delivery_and_on_restarts_it),
        cmocka_unit_test(a_no_ack_consumer_ignores_prefetch_and_releases_each_message),
        cmocka_unit_test(a_single_active_consumer_queue_feeds_only_its_first_consumer),
        cmocka_unit_test(an_exclusive_consumer_is_refused_403_and_refuses_others),
        cmocka_unit_test(reusing_a_consumer_tag_on_the_channel_is_530),
        cmocka_unit_test(consuming_a_missing_queue_is_404),
        cmocka_unit_test(a_reused_tag_is_530_even_when_the_queue_is_missing),
        cmocka_unit_test(cancel_stops_deliveries_and_an_unknown_tag_is_reported),
        cmocka_unit_test(an_auto_delete_queue_goes_after_its_last_consumer_but_not_before_any),
        cmocka_unit_test(closing_the_channel_of_the_last_consumer_deletes_an_auto_delete_queue),
        cmocka_unit_test(deleting_a_queue_notifies_its_consumers_through_cancelled),
        cmocka_unit_test(a_reply_consumer_must_be_no_ack_406),
        cmocka_unit_test(a_reply_to_the_address_reaches_the_caller_and_not_after_cancel),
        cmocka_unit_test(closing_the_callers_channel_makes_its_address_unroutable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
