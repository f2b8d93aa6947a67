/* test_broker_stats.c - the message counters (per vhost, queue and channel)
 * as messages move through the broker's public API, the dead-letter
 * counters by reason and strategy, and the loop timer that samples them
 * into rates.
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

static const char *const conn_a = "connection A";

/* Publishes body to queue through the default exchange, with the two-byte
 * empty property list real clients send (dead-lettering decodes it). */
static void
pub_props(sb_vhost *v, const char *queue, const char *body)
{
    sb_msg *m = sb_msg_new(sb_str_make("\0\0", 2), SB_STR_LIT(""), sb_str_c(queue),
                           strlen(body), 1, 0);
    sb_publish_result res;
    sb_error err = { 0 };

    memcpy(sb_msg_body(m), body, strlen(body));
    assert_int_equal(sb_publish(v, m, NULL, &res, &err), 0);
    assert_true(res.routed);
    sb_msg_unref(m);
}

static const sb_msg_stats *
queue_stats(sb_vhost *v, const char *name)
{
    sb_queue_view qv;

    assert_true(sb_vhost_queue_view(v, sb_str_c(name), &qv));
    return qv.stats;
}

static void
publish_consume_get_ack_are_counted_per_queue_channel_and_vhost(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_deliver_info d;
    sb_error err = { 0 };
    tb_consumer fc;

    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 4);
    assert_false(tb_pub(v, "", "nowhere", "lost"));
    /* Two gets with manual ack (one settled by ack, one put back). */
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("q"), false, &d, &err), 0);
    sb_msg_unref(d.msg);
    assert_int_equal(sb_bchan_ack(ch, d.delivery_tag, false, &err), 0);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("q"), false, &d, &err), 0);
    sb_msg_unref(d.msg);
    assert_int_equal(sb_bchan_nack(ch, d.delivery_tag, false, true, &err), 0);
    /* A consumer with auto ack takes the other three, one redelivered. */
    tb_fc_init(&fc);
    tb_consume(ch, "q", true, &fc);
    assert_int_equal(fc.n, 3);
    assert_int_equal(sb_bchan_get(ch, SB_STR_LIT("q"), true, &d, &err), 0);
    assert_null(d.msg);

    const sb_msg_stats *q = queue_stats(v, "q"), *vs = sb_vhost_stats(v);
    sb_bchan_view cv;
    sb_bchan_view_get(ch, &cv);
    assert_int_equal(q->n[SB_STAT_PUBLISH], 4);
    assert_int_equal(vs->n[SB_STAT_PUBLISH], 5);
    assert_int_equal(vs->n[SB_STAT_UNROUTABLE], 1);
    for (int i = 0; i < 3; i++) {
        const sb_msg_stats *s = i == 0 ? q : i == 1 ? vs : cv.stats;
        assert_int_equal(s->n[SB_STAT_GET], 2);
        assert_int_equal(s->n[SB_STAT_DELIVER_NO_ACK], 3);
        assert_int_equal(s->n[SB_STAT_ACK], 1);
        assert_int_equal(s->n[SB_STAT_REDELIVER], 1);
        assert_int_equal(s->n[SB_STAT_GET_EMPTY], 1);
    }
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
dead_letters_are_counted_by_reason_and_whether_an_exchange_took_them(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_bchan *ch = sb_bchan_new(b, v, conn_a);
    sb_amqp_entry e[2] = {
        { SB_STR_LIT("x-dead-letter-exchange"), { .kind = SB_FV_LONGSTR, .v.s = SB_STR_LIT("") } },
        { SB_STR_LIT("x-dead-letter-routing-key"), { .kind = SB_FV_LONGSTR, .v.s = SB_STR_LIT("dlq") } },
    };
    sb_amqp_table args = { .n = 2, .e = e };
    sb_queue_decl d = tb_qd("work");
    sb_queue_info info;
    sb_deliver_info di;
    sb_error err = { 0 };

    d.args = &args;
    tb_queue(v, "dlq");
    tb_queue(v, "plain");
    assert_int_equal(sb_queue_declare(v, &d, &info, &err), 0);
    pub_props(v, "work", "a");
    pub_props(v, "plain", "b");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sb_bchan_get(ch, i ? SB_STR_LIT("plain") : SB_STR_LIT("work"), false,
                                      &di, &err), 0);
        sb_msg_unref(di.msg);
        assert_int_equal(sb_bchan_nack(ch, di.delivery_tag, false, false, &err), 0);
    }
    assert_int_equal(tb_ready(v, "dlq"), 1);
    assert_int_equal(queue_stats(v, "work")->n[SB_STAT_DEAD_REJECTED], 1);
    assert_int_equal(queue_stats(v, "plain")->n[SB_STAT_DROP_REJECTED], 1);
    assert_int_equal(sb_vhost_stats(v)->n[SB_STAT_DEAD_REJECTED], 1);
    assert_int_equal(sb_vhost_stats(v)->n[SB_STAT_DROP_REJECTED], 1);
    /* The dead letter entered dlq: one more publish into a queue. */
    assert_int_equal(queue_stats(v, "dlq")->n[SB_STAT_PUBLISH], 1);
    sb_bchan_free(ch);
    sb_broker_free(b);
}

static void
stop_loop(sb_loop *l, sb_timer *t)
{
    sb_loop_stop(l);
}

static void
the_timer_turns_counts_into_rates_and_back_to_zero(void **state)
{
    sb_broker_limits lim = { .max_message_bytes = 1u << 20, .stats_interval_ms = 20 };
    sb_broker *b = sb_broker_new(&lim);
    sb_vhost *v = tb_vhost(b);
    sb_timer stop;
    sb_loop *l;

    assert_int_equal(sb_loop_new(&l), 0);
    sb_broker_set_loop(b, l);
    sb_timer_init(&stop, stop_loop, NULL);
    tb_queue(v, "q");
    tb_pub_n(v, "q", "m", 10);
    /* Within one interval (plus slack) a sample sees the 10 publishes. */
    sb_timer_start(l, &stop, 30);
    assert_int_equal(sb_loop_run(l), 0);
    assert_true(queue_stats(v, "q")->rate[SB_STAT_PUBLISH] > 0);
    assert_true(sb_vhost_stats(v)->rate[SB_STAT_PUBLISH] > 0);
    /* Two more intervals without traffic: the rate is back to 0. */
    sb_timer_start(l, &stop, 50);
    assert_int_equal(sb_loop_run(l), 0);
    assert_true(queue_stats(v, "q")->rate[SB_STAT_PUBLISH] == 0);
    assert_int_equal(queue_stats(v, "q")->n[SB_STAT_PUBLISH], 10);
    assert_int_equal(sb_broker_stats_interval(b), 20);
    sb_broker_free(b);
    sb_loop_free(l);
}

static void
churn_counts_channels_and_queues(void **state)
{
    sb_broker *b = tb_broker();
    sb_vhost *v = tb_vhost(b);
    sb_broker_churn c;
    uint32_t n;

    sb_bchan_free(sb_bchan_new(b, v, conn_a));
    tb_queue(v, "q");
    tb_queue(v, "q");  /* declared twice, created once */
    sb_error err = { 0 };
    assert_int_equal(sb_queue_delete(v, SB_STR_LIT("q"), NULL, false, false, &n, &err), 0);
    sb_broker_churn_get(b, &c);
    assert_int_equal(c.n[SB_CHURN_CHANNEL_CREATED], 1);
    assert_int_equal(c.n[SB_CHURN_CHANNEL_CLOSED], 1);
    assert_int_equal(c.n[SB_CHURN_QUEUE_DECLARED], 2);
    assert_int_equal(c.n[SB_CHURN_QUEUE_CREATED], 1);
    assert_int_equal(c.n[SB_CHURN_QUEUE_DELETED], 1);
    assert_string_equal(sb_churn_name(SB_CHURN_QUEUE_DELETED), "queue_deleted");
    assert_string_equal(sb_stat_name(SB_STAT_DELIVER_NO_ACK), "deliver_no_ack");
    assert_null(sb_stat_name(SB_STAT_RETRY));
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publish_consume_get_ack_are_counted_per_queue_channel_and_vhost),
        cmocka_unit_test(dead_letters_are_counted_by_reason_and_whether_an_exchange_took_them),
        cmocka_unit_test(the_timer_turns_counts_into_rates_and_back_to_zero),
        cmocka_unit_test(churn_counts_channels_and_queues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
