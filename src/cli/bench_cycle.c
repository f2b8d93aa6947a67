/* bench_cycle.c - two more `switchboard bench` modes, used by bench/run.py:
 *
 * --reject-cycle: throughput of reject -> (retry ->) dead-letter. A fresh
 * exclusive work queue with x-dead-letter-exchange (and x-retry-delays
 * with --retry-delays), a fresh fanout dead-letter exchange and queue. A
 * producer thread publishes --count messages to the work queue; one
 * consumer connection consumes both queues: it rejects (requeue=false)
 * every delivery from the work queue and counts arrivals in the
 * dead-letter queue (no-ack). Reports messages fully dead-lettered per
 * second, and work-queue deliveries per message (1 + retries).
 *
 * --respond QUEUE: a fast responder for HTTP call benchmarks (wrk against
 * POST /api/rpc/...): declares QUEUE, consumes it (no-ack) and answers
 * every request with its own body to its reply_to, keeping its
 * correlation_id and content_type, until SIGTERM or SIGINT. Prints
 * "ready" once consuming, and the number answered at the end.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/alloc.h"
#include "common/clock.h"

#define CYCLE_STALL_MS 30000
#define CYCLE_TICK_MS 200
#define DEAD_TAG "sb-bench-dead"

/* Also declared in bench.c, which calls them. */
int sb_bench_reject_cycle(const char *url, uint64_t count, uint64_t size, uint64_t prefetch,
                          const char *retry_delays, int json);
int sb_bench_respond(const char *url, const char *queue, uint64_t prefetch);

static double cyc_per_s(uint64_t n, uint64_t us)
{
    return us > 0 ? (double)n * 1e6 / (double)us : 0.0;
}

/* Parses "0,0" or "1000,5000" into at most max delays; returns how many,
 * or -1 (printed). */
static int parse_delays(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (s != NULL && *s != '\0') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || n == max || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "switchboard bench: --retry-delays wants a list like 0,0 "
                            "(at most %d non-negative integers)\n", max);
            return -1;
        }
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

typedef struct cycle_run {
    sb_client prod, cons;
    uint64_t count, size, ndelays;
    char exchange[128], work[128], dead[128];
    atomic_int failed;
    uint64_t t_start_us, t_done_us, dead_n, work_n;
} cycle_run;

static int cycle_setup(cycle_run *r, uint64_t prefetch, const int64_t *delays, int nd)
{
    sb_client *c = &r->cons;
    snprintf(r->exchange, sizeof r->exchange, "sb-bench-dlx-%d-%" PRIu64, (int)getpid(),
             sb_clock_us());
    amqp_exchange_declare(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->exchange),
                          amqp_cstring_bytes("fanout"), 0, 0, 1, 0, amqp_empty_table);
    if (sb_client_check_last(c, "cannot declare the dead-letter exchange") != 0)
        return -1;
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c->conn, SB_CLIENT_CHANNEL,
                                                     amqp_empty_bytes, 0, 0, 1, 0,
                                                     amqp_empty_table);
    if (sb_client_check_last(c, "cannot declare the dead-letter queue") != 0)
        return -1;
    snprintf(r->dead, sizeof r->dead, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    amqp_queue_bind(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->dead),
                    amqp_cstring_bytes(r->exchange), amqp_empty_bytes, amqp_empty_table);
    if (sb_client_check_last(c, "cannot bind the dead-letter queue") != 0)
        return -1;

    amqp_field_value_t dv[16];
    for (int i = 0; i < nd; i++) {
        dv[i].kind = AMQP_FIELD_KIND_I64;
        dv[i].value.i64 = delays[i];
    }
    amqp_table_entry_t args[2];
    args[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
    args[0].value.kind = AMQP_FIELD_KIND_UTF8;
    args[0].value.value.bytes = amqp_cstring_bytes(r->exchange);
    args[1].key = amqp_cstring_bytes("x-retry-delays");
    args[1].value.kind = AMQP_FIELD_KIND_ARRAY;
    args[1].value.value.array.num_entries = nd;
    args[1].value.value.array.entries = dv;
    amqp_table_t table = { nd > 0 ? 2 : 1, args };
    ok = amqp_queue_declare(c->conn, SB_CLIENT_CHANNEL, amqp_empty_bytes, 0, 0, 1, 0, table);
    if (sb_client_check_last(c, "cannot declare the work queue") != 0)
        return -1;
    snprintf(r->work, sizeof r->work, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);

    amqp_basic_qos(c->conn, SB_CLIENT_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (sb_client_check_last(c, "basic.qos failed") != 0)
        return -1;
    amqp_basic_consume(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->work),
                       amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (sb_client_check_last(c, "cannot consume the work queue") != 0)
        return -1;
    amqp_basic_consume(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->dead),
                       amqp_cstring_bytes(DEAD_TAG), 0, 1, 0, amqp_empty_table);
    return sb_client_check_last(c, "cannot consume the dead-letter queue");
}

static void *cycle_producer(void *arg)
{
    cycle_run *r = arg;
    amqp_bytes_t body = { r->size, sb_calloc(1, r->size + 1) };
    memset(body.bytes, 'd', r->size);
    amqp_basic_properties_t props = { 0 };
    amqp_bytes_t key = amqp_cstring_bytes(r->work);
    for (uint64_t i = 0; i < r->count; i++) {
        if (atomic_load_explicit(&r->failed, memory_order_relaxed))
            break;
        int st = amqp_basic_publish(r->prod.conn, SB_CLIENT_CHANNEL, amqp_empty_bytes, key, 0,
                                    0, &props, body);
        if (st != AMQP_STATUS_OK) {
            sb_client_lib_error(st, "publish failed");
            atomic_store(&r->failed, 1);
            break;
        }
    }
    sb_free(body.bytes);
    return NULL;
}

/* A non-delivery frame: a close or a cancel is fatal. */
static int cycle_other_frame(sb_client *c)
{
    return sb_client_other_frame(c, "consumer connection lost",
                                 "switchboard bench: the broker cancelled a consumer",
                                 "consumer failed");
}

static int cycle_consume(cycle_run *r)
{
    sb_client *c = &r->cons;
    uint64_t last_progress = sb_clock_ms();
    while (r->dead_n < r->count) {
        if (atomic_load_explicit(&r->failed, memory_order_relaxed))
            return -1;
        amqp_envelope_t env;
        struct timeval tv = { 0, CYCLE_TICK_MS * 1000 };
        amqp_maybe_release_buffers(c->conn);
        amqp_rpc_reply_t rr = amqp_consume_message(c->conn, &env, &tv, 0);
        if (rr.reply_type == AMQP_RESPONSE_NORMAL) {
            int dead = env.consumer_tag.len == strlen(DEAD_TAG) &&
                       memcmp(env.consumer_tag.bytes, DEAD_TAG, strlen(DEAD_TAG)) == 0;
            uint64_t tag = env.delivery_tag;
            amqp_destroy_envelope(&env);
            last_progress = sb_clock_ms();
            if (dead) {
                r->dead_n++;
                continue;
            }
            r->work_n++;
            int st = amqp_basic_reject(c->conn, SB_CLIENT_CHANNEL, tag, 0);
            if (st != AMQP_STATUS_OK)
                return sb_client_lib_error(st, "basic.reject failed");
            continue;
        }
        if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rr.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (cycle_other_frame(c) != 0)
                return -1;
            continue;
        }
        if (!(rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
              rr.library_error == AMQP_STATUS_TIMEOUT))
            return sb_client_check(rr, "consumer failed");
        if (sb_clock_ms() - last_progress > CYCLE_STALL_MS) {
            fprintf(stderr, "switchboard bench: nothing for %d s (%" PRIu64 " of %" PRIu64
                            " dead-lettered, %" PRIu64 " deliveries)\n", CYCLE_STALL_MS / 1000,
                    r->dead_n, r->count, r->work_n);
            return -1;
        }
    }
    return 0;
}

static void *cycle_consumer(void *arg)
{
    cycle_run *r = arg;
    if (cycle_consume(r) != 0)
        atomic_store(&r->failed, 1);
    r->t_done_us = sb_clock_us();
    return NULL;
}

int sb_bench_reject_cycle(const char *url, uint64_t count, uint64_t size, uint64_t prefetch,
                          const char *retry_delays, int json)
{
    int64_t delays[16];
    int nd = parse_delays(retry_delays, delays, 16);
    if (nd < 0)
        return SB_EXIT_USAGE;
    cycle_run *r = sb_calloc(1, sizeof *r);
    r->count = count;
    r->size = size;
    r->ndelays = (uint64_t)nd;
    url = sb_client_url(url);
    int rc = SB_EXIT_FAIL;
    char server[128];
    if (sb_client_open(&r->cons, url, "switchboard bench reject-cycle consumer", 10000) != 0 ||
        cycle_setup(r, prefetch, delays, nd) != 0 ||
        sb_client_open(&r->prod, url, "switchboard bench reject-cycle producer", 10000) != 0)
        goto out;
    sb_client_server_name(&r->prod, server, sizeof server);
    pthread_t prod, cons;
    r->t_start_us = sb_clock_us();
    pthread_create(&cons, NULL, cycle_consumer, r);
    pthread_create(&prod, NULL, cycle_producer, r);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    if (atomic_load(&r->failed))
        goto out;
    uint64_t us = r->t_done_us - r->t_start_us;
    if (json)
        printf("{\"mode\":\"reject-cycle\",\"server\":\"%s\",\"size\":%" PRIu64
               ",\"count\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"dead_lettered\":%" PRIu64
               ",\"deliveries\":%" PRIu64 ",\"deliveries_per_msg\":%.3f,\"elapsed_s\":%.6f"
               ",\"msgs_per_s\":%.1f,\"deliveries_per_s\":%.1f}\n",
               server, size, count, r->ndelays, r->dead_n, r->work_n,
               (double)r->work_n / (double)count, us / 1e6, cyc_per_s(count, us),
               cyc_per_s(r->work_n, us));
    else
        printf("%s: %" PRIu64 " messages rejected%s and dead-lettered in %.3f s: %.0f msgs/s"
               " (%" PRIu64 " deliveries, %.2f per message)\n", server, count,
               nd > 0 ? ", retried" : "", us / 1e6, cyc_per_s(count, us), r->work_n,
               (double)r->work_n / (double)count);
    rc = SB_EXIT_OK;
out:
    sb_client_close(&r->prod);
    sb_client_close(&r->cons);
    sb_free(r);
    return rc;
}

/* ---- --respond QUEUE ---- */

static volatile sig_atomic_t respond_stop;

static void on_stop(int sig)
{
    (void)sig;
    respond_stop = 1;
}

static int respond_one(sb_client *c, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *in = &env->message.properties;
    if (!(in->_flags & AMQP_BASIC_REPLY_TO_FLAG))
        return 0;
    amqp_basic_properties_t out = { 0 };
    if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        out._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        out.correlation_id = in->correlation_id;
    }
    if (in->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
        out._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        out.content_type = in->content_type;
    }
    int st = amqp_basic_publish(c->conn, SB_CLIENT_CHANNEL, amqp_empty_bytes, in->reply_to, 0,
                                0, &out, env->message.body);
    return st == AMQP_STATUS_OK ? 0 : sb_client_lib_error(st, "reply failed");
}

int sb_bench_respond(const char *url, const char *queue, uint64_t prefetch)
{
    sb_client c = { 0 };
    struct sigaction sa = { 0 };
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (sb_client_open(&c, sb_client_url(url), "switchboard bench responder", 10000) != 0)
        return SB_EXIT_FAIL;
    int rc = SB_EXIT_FAIL;
    amqp_queue_declare(c.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(queue), 0, 0, 0, 0,
                       amqp_empty_table);
    if (sb_client_check_last(&c, "cannot declare the request queue") != 0)
        goto out;
    amqp_basic_qos(c.conn, SB_CLIENT_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (sb_client_check_last(&c, "basic.qos failed") != 0)
        goto out;
    amqp_basic_consume(c.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes,
                       0, 1, 0, amqp_empty_table);
    if (sb_client_check_last(&c, "cannot consume the request queue") != 0)
        goto out;
    printf("ready\n");
    fflush(stdout);
    uint64_t answered = 0;
    while (!respond_stop) {
        amqp_envelope_t env;
        struct timeval tv = { 0, CYCLE_TICK_MS * 1000 };
        amqp_maybe_release_buffers(c.conn);
        amqp_rpc_reply_t rr = amqp_consume_message(c.conn, &env, &tv, 0);
        if (rr.reply_type == AMQP_RESPONSE_NORMAL) {
            int bad = respond_one(&c, &env);
            amqp_destroy_envelope(&env);
            if (bad)
                goto out;
            answered++;
            continue;
        }
        if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rr.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rr.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (cycle_other_frame(&c) != 0)
                goto out;
            continue;
        }
        if (respond_stop)  /* a signal interrupted the wait */
            break;
        sb_client_check(rr, "responder failed");
        goto out;
    }
    printf("answered %" PRIu64 "\n", answered);
    rc = SB_EXIT_OK;
out:
    sb_client_close(&c);
    return rc;
}
