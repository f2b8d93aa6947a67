/* alarm.c - the memory and disk alarms and connection.blocked, as
 * RabbitMQ does them.
 *
 * Once a check interval the allocator's bytes in use are compared with the
 * memory high watermark, and the free space of the data directory's file
 * system with the disk free limit. While either alarm is on, every
 * connection that publishes is
 * blocked: clients that asked for the connection.blocked capability are
 * told so, and reading from a publishing connection stops after the frame
 * that published, so its publishers wait in their own socket buffers
 * instead of growing ours. Connections that only consume keep running and
 * drain the queues. Below the watermark again, connection.unblocked and
 * reading resumes. */
#include "session_int.h"

#include <sys/statvfs.h>

#include "../common/log.h"
#include "../common/mem.h"

static const char *
alarm_reason(unsigned alarms)
{
    switch (alarms) {
    case SB_ALARM_MEMORY: return "low on memory";
    case SB_ALARM_DISK: return "low on disk";
    default: return "low on memory & disk";
    }
}

static void
send_blocked(sb_sconn *sc, bool blocked)
{
    sb_amqp_method m = { .id = blocked ? SB_M_CONNECTION_BLOCKED : SB_M_CONNECTION_UNBLOCKED };

    if (!sc->cap_blocked || sc->blocked_sent == blocked)
        return;
    if (blocked)
        m.u.connection_blocked.reason = sb_str_c(alarm_reason(sc->srv->alarms));
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

static unsigned
check_memory(sb_sessions *s)
{
    uint64_t used = sb_mem_used();
    bool over = s->opts.memory_high_watermark > 0 && used > s->opts.memory_high_watermark;

    if (over != !!(s->alarms & SB_ALARM_MEMORY))
        sb_log(over ? SB_LOG_WARN : SB_LOG_INFO, "alarm",
               "memory in use %llu MiB is %s the high watermark %llu MiB%s",
               (unsigned long long)(used >> 20), over ? "over" : "under",
               (unsigned long long)(s->opts.memory_high_watermark >> 20),
               over ? ": blocking publishers" : "");
    return over ? SB_ALARM_MEMORY : 0;
}

static unsigned
check_disk(sb_sessions *s)
{
    struct statvfs vfs;
    uint64_t free_bytes;
    bool low;

    if (s->opts.disk_free_limit == 0 || s->opts.data_dir == NULL ||
        statvfs(s->opts.data_dir, &vfs) < 0)
        return 0;
    free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    low = free_bytes < s->opts.disk_free_limit;
    if (low != !!(s->alarms & SB_ALARM_DISK))
        sb_log(low ? SB_LOG_WARN : SB_LOG_INFO, "alarm",
               "free disk space %llu MiB in %s is %s the limit %llu MiB%s",
               (unsigned long long)(free_bytes >> 20), s->opts.data_dir, low ? "below" : "above",
               (unsigned long long)(s->opts.disk_free_limit >> 20),
               low ? ": blocking publishers" : "");
    return low ? SB_ALARM_DISK : 0;
}

/* What the management API and /metrics show: the figures the checks use. */
static void
report_resources(sb_sessions *s, unsigned alarms)
{
    sb_broker_resources r = {
        .mem_used = sb_mem_used(),
        .mem_limit = s->opts.memory_high_watermark,
        .disk_limit = s->opts.disk_free_limit,
        .mem_alarm = (alarms & SB_ALARM_MEMORY) != 0,
        .disk_alarm = (alarms & SB_ALARM_DISK) != 0,
    };
    struct statvfs vfs;

    if (s->opts.data_dir != NULL && statvfs(s->opts.data_dir, &vfs) == 0)
        r.disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    sb_broker_set_resources(s->broker, &r);
}

static void
alarm_check(sb_loop *l, sb_timer *t)
{
    sb_sessions *s = t->arg;
    unsigned now = check_memory(s) | check_disk(s);

    report_resources(s, now);
    if (now == 0 && s->alarms != 0) {
        s->alarms = 0;
        alarm_clear(s);
    }
    s->alarms = now;
    sb_timer_start(l, t, s->opts.memory_check_ms);
}

void
sb_session__alarm_start(sb_sessions *s)
{
    sb_timer_init(&s->mem_timer, alarm_check, s);
    if (s->opts.memory_high_watermark > 0 || s->opts.disk_free_limit > 0)
        alarm_check(s->loop, &s->mem_timer);
    else
        report_resources(s, 0);
}

void
sb_session__alarm_stop(sb_sessions *s)
{
    sb_timer_stop(s->loop, &s->mem_timer);
}

void
sb_sessions_check_alarms(sb_sessions *s)
{
    if (s->opts.memory_high_watermark > 0 || s->opts.disk_free_limit > 0) {
        sb_timer_stop(s->loop, &s->mem_timer);
        alarm_check(s->loop, &s->mem_timer);
    }
}
