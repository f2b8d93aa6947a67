/* ack_timeout.c - RabbitMQ's delivery acknowledgement timeout
 * (consumer_timeout).
 *
 * A consumer that takes a delivery in manual-ack mode and never settles it
 * holds the message forever; RabbitMQ closes such a consumer's channel
 * with 406 PRECONDITION_FAILED once its oldest unacknowledged delivery is
 * older than consumer_timeout, which requeues everything the channel held.
 * Like RabbitMQ, the check runs periodically (every minute, or every
 * timeout when that is shorter), so a channel is closed between timeout
 * and timeout plus one period after the delivery. A sweep visits every
 * open channel and reads one timestamp from each: the oldest delivery is
 * the first in the channel's tag-ordered list. */
#include "session_int.h"

#include "../common/log.h"

#define CHECK_EVERY_MS 60000

static uint32_t
period(const sb_sessions *s)
{
    uint32_t t = s->opts.consumer_timeout_ms;

    return t < CHECK_EVERY_MS ? t : CHECK_EVERY_MS;
}

static void
check_channel(sb_chan *ch, uint64_t now, uint32_t timeout)
{
    uint64_t oldest;
    sb_error err = { 0 };

    if (ch->state != CH_OPEN || ch->b == NULL)
        return;
    oldest = sb_bchan_oldest_delivery(ch->b);
    if (oldest == 0 || now - oldest <= timeout)
        return;
    sb_log(SB_LOG_WARN, "amqp",
           "%s: channel %u has waited more than %u ms for a delivery acknowledgement "
           "(consumer_timeout): closing it; its unacknowledged messages are requeued",
           sb_conn_peer(ch->conn->net), ch->id, timeout);
    sb_error_set(&err, SB_PRECONDITION_FAILED,
                 "delivery acknowledgement on channel %u timed out. Timeout value used: %u ms. "
                 "This timeout value can be configured, see consumers doc guide to learn more",
                 ch->id, timeout);
    sb_session__chan_error(ch, SB_PRECONDITION_FAILED, &err, 0);
}

static void
sweep(sb_loop *l, sb_timer *t)
{
    sb_sessions *s = t->arg;
    uint64_t now = sb_loop_now(l);
    sb_list *it;

    sb_list_foreach(it, &s->conns) {
        sb_sconn *sc = SB_CONTAINER_OF(it, sb_sconn, link);
        if (sc->state != SC_OPEN)
            continue;
        for (size_t i = 0; i < sc->nchans; i++)
            if (sc->chans[i] != NULL)
                check_channel(sc->chans[i], now, s->opts.consumer_timeout_ms);
    }
    sb_timer_start(l, t, period(s));
}

void
sb_session__ack_timeout_start(sb_sessions *s)
{
    sb_timer_init(&s->ack_timer, sweep, s);
    if (s->opts.consumer_timeout_ms > 0)
        sb_timer_start(s->loop, &s->ack_timer, period(s));
}

void
sb_session__ack_timeout_stop(sb_sessions *s)
{
    sb_timer_stop(s->loop, &s->ack_timer);
}
