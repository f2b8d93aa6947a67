/* alarm.c - the memory alarm and connection.blocked, as RabbitMQ does it.
 *
 * Once a check interval the allocator's bytes in use are compared with the
 * high watermark. While over it, every connection that publishes is
 * blocked: clients that asked for the connection.blocked capability are
 * told so, and reading from a publishing connection stops after the frame
 * that published, so its publishers wait in their own socket buffers
 * instead of growing ours. Connections that only consume keep running and
 * drain the queues. Below the watermark again, connection.unblocked and
 * reading resumes. */
#include "session_int.h"

#include "../common/log.h"
#include "../common/mem.h"

static void
send_blocked(sb_sconn *sc, bool blocked)
{
    sb_amqp_method m = { .id = blocked ? SB_M_CONNECTION_BLOCKED : SB_M_CONNECTION_UNBLOCKED };

    if (!sc->cap_blocked || sc->blocked_sent == blocked)
        return;
    if (blocked)
        m.u.connection_blocked.reason = sb_str_c("low on memory");
    sb_session__send(sc, 0, &m);
    sc->blocked_sent = blocked;
}

/* Called when sc published while the alarm is on: tell it, and stop
 * reading from it after the current frame. */
void
sb_session__block_publisher(sb_sconn *sc)
{
    send_blocked(sc, true);
    sc->pause_pending = true;
}

static void
alarm_clear(sb_sessions *s)
{
    sb_list *it;

    sb_list_foreach(it, &s->conns) {
        sb_sconn *sc = SB_CONTAINER_OF(it, sb_sconn, link);
        if (sc->state != SC_OPEN)
            continue;
        send_blocked(sc, false);
        sc->pause_pending = false;
        if (sc->paused) {
            sc->paused = false;
            sb_conn_pause_read(sc->net, false);
        }
    }
}

static void
alarm_check(sb_loop *l, sb_timer *t)
{
    sb_sessions *s = t->arg;
    uint64_t used = sb_mem_used();
    bool over = used > s->opts.memory_high_watermark;

    if (over && !s->mem_alarm)
        sb_log(SB_LOG_WARN, "alarm",
               "memory in use %llu MiB is over the high watermark %llu MiB: blocking publishers",
               (unsigned long long)(used >> 20),
               (unsigned long long)(s->opts.memory_high_watermark >> 20));
    else if (!over && s->mem_alarm)
        sb_log(SB_LOG_INFO, "alarm", "memory in use %llu MiB is under the watermark again",
               (unsigned long long)(used >> 20));
    if (!over && s->mem_alarm)
        alarm_clear(s);
    s->mem_alarm = over;
    sb_timer_start(l, t, s->opts.memory_check_ms);
}

void
sb_session__alarm_start(sb_sessions *s)
{
    sb_timer_init(&s->mem_timer, alarm_check, s);
    if (s->opts.memory_high_watermark > 0)
        sb_timer_start(s->loop, &s->mem_timer, s->opts.memory_check_ms);
}

void
sb_session__alarm_stop(sb_sessions *s)
{
    sb_timer_stop(s->loop, &s->mem_timer);
}
