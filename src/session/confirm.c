/* confirm.c - publisher confirms. Acks are coalesced: one basic.ack
 * (multiple) per channel per batch of input. A publish whose message was
 * logged waits, with every later publish of its channel (confirms go out
 * in order), until the store reports its log position durable; a store
 * failure turns the waiting confirms of lost messages into nacks. */
#include "session_int.h"

#include <string.h>

#include "../common/log.h"


void
sb_session__confirm_ready(sb_chan *ch, uint64_t seq)
{
    ch->confirm_ready = seq;
    if (!sb_list_linked(&ch->dirty_link))
        sb_list_push_back(&ch->conn->confirm_dirty, &ch->dirty_link);
}

void
sb_session__confirm_nack(sb_chan *ch, uint64_t seq)
{
    sb_amqp_method m = { .id = SB_M_BASIC_NACK };

    /* Everything before seq was routed: acknowledge it first, in order. */
    ch->confirm_ready = seq - 1;
    sb_list_remove(&ch->dirty_link);
    if (ch->confirm_ready > ch->confirm_sent) {
        sb_list_push_back(&ch->conn->confirm_dirty, &ch->dirty_link);
        sb_session__flush_confirms(ch->conn);
    }
    m.u.basic_nack.delivery_tag = seq;
    sb_session__send(ch->conn, ch->id, &m);
    ch->confirm_sent = ch->confirm_ready = seq;
}

/* One basic.ack per channel per batch of input: multiple=true covers
 * every publish up to the highest one routed. */
void
sb_session__flush_confirms(sb_sconn *sc)
{
    sb_list *it, *tmp;

    sb_list_foreach_safe(it, tmp, &sc->confirm_dirty) {
        sb_chan *ch = SB_CONTAINER_OF(it, sb_chan, dirty_link);
        sb_amqp_method m = { .id = SB_M_BASIC_ACK };

        sb_list_remove(&ch->dirty_link);
        if (ch->confirm_ready <= ch->confirm_sent)
            continue;
        m.u.basic_ack.delivery_tag = ch->confirm_ready;
        m.u.basic_ack.multiple = ch->confirm_ready - ch->confirm_sent > 1;
        sb_bchan_count_confirms(ch->b, ch->confirm_ready - ch->confirm_sent);
        ch->confirm_sent = ch->confirm_ready;
        sb_session__send(sc, ch->id, &m);
    }
}

/* ---- confirms that wait for the disk ---- */

static size_t
waiting_count(const sb_chan *ch)
{
    return (ch->waiting.len - ch->waiting_head) / sizeof(sb_pending_confirm);
}

static void
wait_for_disk(sb_chan *ch, uint64_t seq, const sb_publish_result *res)
{
    sb_pending_confirm p = { .seq = seq, .pos = res->durable_pos, .nack = res->rejected };

    sb_buf_append(&ch->waiting, &p, sizeof p);
    if (!sb_list_linked(&ch->wait_link))
        sb_list_push_back(&ch->conn->srv->durable_waiters, &ch->wait_link);
}

void
sb_session__confirm(sb_chan *ch, uint64_t seq, const sb_publish_result *res)
{
    if (res->durable_pos > 0 || waiting_count(ch) > 0)
        wait_for_disk(ch, seq, res);
    else if (res->rejected)
        sb_session__confirm_nack(ch, seq);
    else
        sb_session__confirm_ready(ch, seq);
}

/* Releases the confirms of ch that pos covers. lost_from: positions above
 * it and up to pos were lost (0: nothing lost). */
static void
release(sb_chan *ch, uint64_t pos, uint64_t lost_from)
{
    while (waiting_count(ch) > 0) {
        sb_pending_confirm p;
        memcpy(&p, ch->waiting.data + ch->waiting_head, sizeof p);
        if (p.pos > pos)
            break;
        ch->waiting_head += sizeof p;
        if (p.nack || (lost_from && p.pos > lost_from))
            sb_session__confirm_nack(ch, p.seq);
        else
            sb_session__confirm_ready(ch, p.seq);
    }
    if (waiting_count(ch) == 0) {
        sb_buf_reset(&ch->waiting);
        ch->waiting_head = 0;
        sb_list_remove(&ch->wait_link);
    } else if (ch->waiting_head > ch->waiting.len / 2) {
        /* A publisher that always has confirms outstanding never empties
         * the FIFO: drop what was released, or it grows with every publish. */
        sb_buf_consume(&ch->waiting, ch->waiting_head);
        ch->waiting_head = 0;
    }
}

void
sb_sessions_durable(sb_sessions *s, uint64_t pos, int err)
{
    sb_list *it, *tmp;

    if (err < 0)
        sb_log(SB_LOG_ERROR, "store", "messages up to log position %llu were not written: %s; "
               "their publishers get nacks", (unsigned long long)pos, strerror(-err));
    sb_list_foreach_safe(it, tmp, &s->durable_waiters) {
        sb_chan *ch = SB_CONTAINER_OF(it, sb_chan, wait_link);
        release(ch, pos, err < 0 ? s->durable_pos : 0);
        sb_session__flush_confirms(ch->conn);
    }
    if (err == 0)
        s->durable_pos = pos;
}

void
sb_session__confirm_waiting_free(sb_chan *ch)
{
    sb_list_remove(&ch->wait_link);
    sb_buf_free(&ch->waiting);
    ch->waiting_head = 0;
}
