/* serve_store.c - see serve_store.h. */
#include "serve_store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/epoll.h>

#include "../common/clock.h"
#include "../common/log.h"

static void
on_durable(void *arg, uint64_t pos, int err)
{
    sb_serve_store *ss = arg;

    if (err == 0)
        sb_broker_durable(ss->broker, pos);
    if (ss->sessions != NULL)
        sb_sessions_durable(ss->sessions, pos, err);
    sb_http_durable(ss->http, pos, err);
}

static void
on_commit_done(sb_loop *l, sb_io *io, uint32_t events)
{
    sb_serve_store *ss = io->arg;

    sb_store_poll(ss->store);
}

static void
before_sleep(sb_loop *l, void *arg)
{
    sb_broker_before_sleep(arg);
}

int
sb_serve_store_open(sb_serve_store *ss, sb_loop *loop, sb_broker *broker,
                    sb_sessions *sessions, const char *dir)
{
    sb_store_opts o = { .on_recover = sb_broker_recover_message, .recover_arg = broker,
                        .on_durable = on_durable, .durable_arg = ss };
    uint64_t t0 = sb_clock_us();
    char path[4096];
    sb_store_stats st;
    int rc;

    memset(ss, 0, sizeof *ss);
    ss->loop = loop;
    ss->broker = broker;
    ss->sessions = sessions;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        sb_log(SB_LOG_ERROR, "serve", "cannot create the data directory %s: %s (choose another "
               "with --data-dir)", dir, strerror(errno));
        return rc;
    }
    sb_sessions_check_alarms(sessions);  /* the disk alarm needs the directory */
    if ((rc = sb_broker_load_definitions(broker, dir)) < 0 ||
        (rc = sb_store_open(dir, &o, &ss->store)) < 0) {
        sb_log(SB_LOG_ERROR, "serve", "cannot open the data in %s: %s (move it aside to start "
               "empty, or see src/store/FORMAT.md)", dir, strerror(-rc));
        return rc;
    }
    sb_broker_attach_store(broker, ss->store);
    /* Transient messages past a queue's memory window wait here; not part
     * of the log, removed at every start (see store/FORMAT.md). */
    snprintf(path, sizeof path, "%s/transient", dir);
    (void)sb_broker_open_paging(broker, path);  /* failure is logged: they stay in RAM */
    ss->io = (sb_io){ .fd = sb_store_fd(ss->store), .events = EPOLLIN, .cb = on_commit_done,
                      .arg = ss };
    if ((rc = sb_io_start(loop, &ss->io)) < 0)
        return rc;
    sb_loop_add_before_sleep(loop, before_sleep, broker);
    sb_store_get_stats(ss->store, &st);
    sb_log(SB_LOG_INFO, "serve", "data in %s: %llu persistent messages recovered in %.1f ms",
           dir, (unsigned long long)st.live_count, (sb_clock_us() - t0) / 1000.0);
    return 0;
}

void
sb_serve_store_close(sb_serve_store *ss)
{
    int rc;

    if (ss->store == NULL)
        return;
    /* Sessions and HTTP are gone: the final commit tells nobody. */
    ss->sessions = NULL;
    ss->http = NULL;
    sb_broker_before_sleep(ss->broker);
    sb_io_stop(ss->loop, &ss->io);
    if ((rc = sb_store_close(ss->store)) < 0)
        sb_log(SB_LOG_ERROR, "serve", "the last writes to the store failed: %s", strerror(-rc));
    sb_broker_attach_store(ss->broker, NULL);
    ss->store = NULL;
}
