/* bench.c - `switchboard bench`: publish→consume throughput, and request/
 * reply latency through direct reply-to.
 *
 * Throughput: one producer thread and one consumer thread, each with its
 * own connection (a librabbitmq connection must not be shared between
 * threads). The main thread sets both connections up - declares the
 * queues on the consumer's connection (exclusive, so they vanish with it),
 * starts the consumers - and only then hands each connection to its
 * thread, so no connection is ever used by two threads at once.
 *
 * Latency: a responder thread consumes a request queue and answers each
 * request to its reply_to; the main thread sends requests one at a time
 * with reply_to amq.rabbitmq.reply-to and times each round trip.
 */
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/alloc.h"
#include "common/clock.h"

#define CONFIRM_WINDOW 1000
#define STALL_MS 30000   /* no progress for this long: give up */
#define TICK_MS 200

typedef struct bench_opts {
    const char *url;
    const char *queue;   /* --no-consume: the queue to fill */
    const char *respond; /* --respond QUEUE */
    const char *retry_delays;
    uint64_t size, count, fanout, prefetch, ack_every;
    uint64_t batch;      /* publishes per TCP write (TCP_CORK); 1 = as librabbitmq writes */
    uint64_t expiration, expiration_spread;  /* per-message TTL: base + i % spread */
    int confirm, persistent, json, latency, no_consume, reject_cycle;
} bench_opts;

/* bench_cycle.c */
int sb_bench_reject_cycle(const char *url, uint64_t count, uint64_t size, uint64_t prefetch,
                          const char *retry_delays, int json);
int sb_bench_respond(const char *url, const char *queue, uint64_t prefetch);

/* Shared between the threads of one run. Only the atomics are written by
 * more than one thread; the rest is set before the threads start. */
typedef struct bench_run {
    const bench_opts *o;
    sb_client prod, cons;
    char exchange[128];      /* "" or the fanout exchange */
    char queues[64][128];    /* the queues we consume (or fill) */
    uint64_t nqueues;
    atomic_int failed;
    uint64_t t_start_us, t_published_us, t_delivered_us;
    uint64_t delivered;
} bench_run;

static const char usage_text[] =
    "usage: switchboard bench [options]\n"
    "       switchboard bench --latency [--count N] [--size BYTES] [--url URL] [--json]\n"
    "\n"
    "Throughput (default): a producer and a consumer thread, each on its own\n"
    "connection, push --count messages through a fresh exclusive queue (or\n"
    "--fanout Q queues bound to a fresh fanout exchange) and report msgs/s and\n"
    "MB/s from the first publish to the last delivery.\n"
    "Latency (--latency): sequential request/reply round trips through a queue,\n"
    "replies over direct reply-to; reports p50/p99/p999 in microseconds.\n"
    "\n"
    "options:\n"
    "  --url URL          broker URL (default: $AMQP_URL, else\n"
    "                     " SB_CLIENT_DEFAULT_URL ")\n"
    "  --size BYTES       body size (default 16)\n"
    "  --count N          messages, or round trips with --latency (default 100000,\n"
    "                     10000 with --latency)\n"
    "  --confirm          publisher confirms, at most 1000 outstanding\n"
    "  --persistent       delivery_mode 2 into durable queues\n"
    "  --fanout Q         Q queues (1-64) bound to a fanout exchange\n"
    "  --prefetch N       consumer prefetch (default 1000)\n"
    "  --ack-every N      ack with multiple=true every N deliveries (default 100)\n"
    "  --batch N          the producer coalesces N publishes into one TCP write\n"
    "                     (TCP_CORK, released every N publishes and before waiting\n"
    "                     for confirms), as a pipelining client does; default 1:\n"
    "                     librabbitmq's own pattern, one TCP segment per publish\n"
    "  --no-consume       only publish, into --queue (declared, purged, kept\n"
    "                     afterwards); implies --confirm so that the broker holds\n"
    "                     every message when the command exits\n"
    "  --queue NAME       queue for --no-consume (default sb-bench-backlog)\n"
    "  --latency          measure round-trip latency instead of throughput\n"
    "  --expiration MS    per-message TTL (expiration property) of MS ms ...\n"
    "  --expiration-spread N  ... plus i mod N ms for message i (distinct TTLs)\n"
    "  --reject-cycle     throughput of reject -> dead-letter: a work queue with a\n"
    "                     dead-letter exchange, a consumer rejecting everything;\n"
    "                     reports messages fully dead-lettered per second\n"
    "  --retry-delays L   with --reject-cycle: x-retry-delays, e.g. 0,0\n"
    "                     (Switchboard only: each message is delivered 1+len(L) times)\n"
    "  --respond QUEUE    serve QUEUE: answer every request with its body to its\n"
    "                     reply_to until SIGTERM (for HTTP call benchmarks)\n"
    "  --json             print one JSON object instead of text\n"
    "  -h, --help         this text\n"
    "\n"
    "exit status: 0 done; 1 connection or broker error, or no progress for 30 s;\n"
    "2 bad arguments.\n"
    "\n"
    "examples:\n"
    "  switchboard bench --size 1024 --count 200000\n"
    "  switchboard bench --confirm --persistent --json\n"
    "  switchboard bench --fanout 4\n"
    "  switchboard bench --latency --count 20000\n";

enum {
    OPT_URL = 256, OPT_SIZE, OPT_COUNT, OPT_CONFIRM, OPT_PERSISTENT, OPT_FANOUT,
    OPT_PREFETCH, OPT_ACK_EVERY, OPT_JSON, OPT_LATENCY, OPT_NO_CONSUME, OPT_QUEUE,
    OPT_EXPIRATION, OPT_EXPIRATION_SPREAD, OPT_REJECT_CYCLE, OPT_RETRY_DELAYS, OPT_RESPOND,
    OPT_BATCH,
};

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "size", required_argument, NULL, OPT_SIZE },
    { "count", required_argument, NULL, OPT_COUNT },
    { "confirm", no_argument, NULL, OPT_CONFIRM },
    { "persistent", no_argument, NULL, OPT_PERSISTENT },
    { "fanout", required_argument, NULL, OPT_FANOUT },
    { "prefetch", required_argument, NULL, OPT_PREFETCH },
    { "ack-every", required_argument, NULL, OPT_ACK_EVERY },
    { "batch", required_argument, NULL, OPT_BATCH },
    { "json", no_argument, NULL, OPT_JSON },
    { "latency", no_argument, NULL, OPT_LATENCY },
    { "no-consume", no_argument, NULL, OPT_NO_CONSUME },
    { "queue", required_argument, NULL, OPT_QUEUE },
    { "expiration", required_argument, NULL, OPT_EXPIRATION },
    { "expiration-spread", required_argument, NULL, OPT_EXPIRATION_SPREAD },
    { "reject-cycle", no_argument, NULL, OPT_REJECT_CYCLE },
    { "retry-delays", required_argument, NULL, OPT_RETRY_DELAYS },
    { "respond", required_argument, NULL, OPT_RESPOND },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Handles one option; returns 0, -1 for --help, or an exit status. */
static int apply_opt(bench_opts *o, int opt)
{
    const struct { int opt; const char *name; uint64_t min, max; uint64_t *out; } nums[] = {
        { OPT_SIZE, "--size", 0, 128u << 20, &o->size },
        { OPT_COUNT, "--count", 1, UINT32_MAX, &o->count },
        { OPT_FANOUT, "--fanout", 1, 64, &o->fanout },
        { OPT_PREFETCH, "--prefetch", 1, UINT16_MAX, &o->prefetch },
        { OPT_ACK_EVERY, "--ack-every", 1, UINT16_MAX, &o->ack_every },
        { OPT_BATCH, "--batch", 1, UINT16_MAX, &o->batch },
        { OPT_EXPIRATION, "--expiration", 0, UINT32_MAX, &o->expiration },
        { OPT_EXPIRATION_SPREAD, "--expiration-spread", 1, UINT32_MAX, &o->expiration_spread },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (nums[i].opt == opt)
            return sb_client_parse_u64(optarg, nums[i].name, nums[i].min, nums[i].max,
                                       nums[i].out) != 0 ? SB_EXIT_USAGE : 0;
    switch (opt) {
    case OPT_URL: o->url = optarg; return 0;
    case OPT_QUEUE: o->queue = optarg; return 0;
    case OPT_RESPOND: o->respond = optarg; return 0;
    case OPT_RETRY_DELAYS: o->retry_delays = optarg; return 0;
    case OPT_REJECT_CYCLE: o->reject_cycle = 1; return 0;
    case OPT_CONFIRM: o->confirm = 1; return 0;
    case OPT_PERSISTENT: o->persistent = 1; return 0;
    case OPT_JSON: o->json = 1; return 0;
    case OPT_LATENCY: o->latency = 1; return 0;
    case OPT_NO_CONSUME: o->no_consume = 1; return 0;
    case 'h': return -1;
    default: return SB_EXIT_USAGE;
    }
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->size = 16;
    o->prefetch = 1000;
    o->ack_every = 100;
    o->batch = 1;
    o->queue = "sb-bench-backlog";
    optind = 0;  /* full reinitialisation of GNU getopt */
    opterr = 0;  /* we word the errors ourselves */
    o->expiration = UINT64_MAX;  /* none */
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (opt == '?') {
            fprintf(stderr, "switchboard bench: unknown option or missing value: %s\n"
                            "(try `switchboard bench --help`)\n", argv[optind - 1]);
            return SB_EXIT_USAGE;
        }
        int rc = apply_opt(o, opt);
        if (rc == -1) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (rc != 0)
            return rc;
    }
    if (optind != argc) {
        fprintf(stderr, "switchboard bench: unexpected argument '%s'\n", argv[optind]);
        return SB_EXIT_USAGE;
    }
    if (o->count == 0)
        o->count = o->latency ? 10000 : 100000;
    if (o->no_consume)
        o->confirm = 1;
    if (o->ack_every > o->prefetch)
        o->ack_every = o->prefetch;  /* else the consumer would wait forever */
    return 0;
}

/* Declares a queue (server-named when name is ""), copying the name the
 * broker chose into out. */
static int declare_queue(sb_client *c, const char *name, int durable, int exclusive,
                         char *out, size_t n)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(name), 0, durable,
                           exclusive, !exclusive && name[0] == '\0', amqp_empty_table);
    if (sb_client_check_last(c, "cannot declare the benchmark queue") != 0)
        return -1;
    snprintf(out, n, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    return 0;
}

/* The consumer's side: exclusive queues (bound to a fresh fanout exchange
 * with --fanout), qos, and one consumer per queue. */
static int setup_consumer(bench_run *r)
{
    const bench_opts *o = r->o;
    sb_client *c = &r->cons;
    r->nqueues = o->fanout > 0 ? o->fanout : 1;
    if (o->fanout > 0) {
        snprintf(r->exchange, sizeof r->exchange, "sb-bench-fanout-%d-%" PRIu64, (int)getpid(),
                 sb_clock_us());
        amqp_exchange_declare(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->exchange),
                              amqp_cstring_bytes("fanout"), 0, o->persistent, 1, 0,
                              amqp_empty_table);
        if (sb_client_check_last(c, "cannot declare the fanout exchange") != 0)
            return -1;
    }
    for (uint64_t i = 0; i < r->nqueues; i++) {
        /* --persistent: durable and not exclusive (auto-delete instead), so
         * that brokers keep the messages on disk, as they must. */
        if (declare_queue(c, "", o->persistent, !o->persistent, r->queues[i],
                          sizeof r->queues[i]) != 0)
            return -1;
        if (o->fanout > 0) {
            amqp_queue_bind(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->queues[i]),
                            amqp_cstring_bytes(r->exchange), amqp_empty_bytes,
                            amqp_empty_table);
            if (sb_client_check_last(c, "cannot bind the benchmark queue") != 0)
                return -1;
        }
    }
    amqp_basic_qos(c->conn, SB_CLIENT_CHANNEL, 0, (uint16_t)o->prefetch, 0);
    if (sb_client_check_last(c, "basic.qos failed") != 0)
        return -1;
    for (uint64_t i = 0; i < r->nqueues; i++) {
        amqp_basic_consume(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->queues[i]),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        if (sb_client_check_last(c, "cannot start the benchmark consumer") != 0)
            return -1;
    }
    return 0;
}

/* --no-consume: a named, non-exclusive queue that outlives us, emptied
 * first so that it holds exactly --count messages afterwards. */
static int setup_backlog(bench_run *r)
{
    sb_client *c = &r->prod;
    r->nqueues = 1;
    if (declare_queue(c, r->o->queue, r->o->persistent, 0, r->queues[0],
                      sizeof r->queues[0]) != 0)
        return -1;
    amqp_queue_purge(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(r->queues[0]));
    return sb_client_check_last(c, "cannot purge the benchmark queue");
}

/* --batch: with TCP_CORK set, the kernel holds what the producer writes
 * until a full segment is ready or the cork is released, so that N
 * publishes leave in one write instead of one segment each. */
static void cork(sb_client *c, int on)
{
    (void)setsockopt(amqp_get_sockfd(c->conn), IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* Sends what is corked and keeps corking. */
static void flush_corked(sb_client *c)
{
    cork(c, 0);
    cork(c, 1);
}

static int publish_loop(bench_run *r, sb_confirms *cf, amqp_bytes_t body)
{
    const bench_opts *o = r->o;
    amqp_basic_properties_t props = { 0 };
    if (o->persistent) {
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = 2;
    }
    amqp_bytes_t exchange = amqp_cstring_bytes(r->exchange);
    amqp_bytes_t key = o->fanout > 0 ? amqp_empty_bytes : amqp_cstring_bytes(r->queues[0]);
    char ttl[24];
    if (o->expiration != UINT64_MAX)
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    int batching = o->batch > 1;
    if (batching)
        cork(&r->prod, 1);
    for (uint64_t i = 0; i < o->count; i++) {
        if (atomic_load_explicit(&r->failed, memory_order_relaxed))
            return -1;
        if (batching && i > 0 && i % o->batch == 0)
            flush_corked(&r->prod);
        if (o->expiration != UINT64_MAX) {
            snprintf(ttl, sizeof ttl, "%" PRIu64,
                     o->expiration + (o->expiration_spread > 0 ? i % o->expiration_spread : 0));
            props.expiration = amqp_cstring_bytes(ttl);
        }
        if (o->confirm && batching && sb_confirms_outstanding(cf) >= CONFIRM_WINDOW)
            flush_corked(&r->prod);   /* what we wait for must leave first */
        if (o->confirm && sb_confirms_wait(&r->prod, cf, CONFIRM_WINDOW - 1, STALL_MS) != 0)
            goto confirm_failed;
        int st = amqp_basic_publish(r->prod.conn, SB_CLIENT_CHANNEL, exchange, key, 0, 0,
                                    &props, body);
        if (st != AMQP_STATUS_OK)
            return sb_client_lib_error(st, "publish failed");
        if (o->confirm)
            sb_confirms_published(cf);
    }
    if (batching)
        cork(&r->prod, 0);
    if (o->confirm && sb_confirms_wait(&r->prod, cf, 0, STALL_MS) != 0)
        goto confirm_failed;
    if (cf->nacks > 0) {
        fprintf(stderr, "switchboard bench: the broker nacked %" PRIu64 " messages\n",
                cf->nacks);
        return -1;
    }
    return 0;
confirm_failed:
    fprintf(stderr, "switchboard bench: publisher confirms failed or stalled for %d s\n",
            STALL_MS / 1000);
    return -1;
}

static void *producer_main(void *arg)
{
    bench_run *r = arg;
    amqp_bytes_t body = { r->o->size, sb_malloc(r->o->size + 1) };
    for (size_t i = 0; i < body.len; i++)
        ((char *)body.bytes)[i] = (char)('a' + i % 26);
    sb_confirms cf = { 0 };
    int rc = 0;
    if (r->o->confirm)
        rc = sb_confirms_start(&r->prod, &cf, CONFIRM_WINDOW);
    r->t_start_us = sb_clock_us();
    if (rc == 0)
        rc = publish_loop(r, &cf, body);
    r->t_published_us = sb_clock_us();
    if (rc != 0)
        atomic_store(&r->failed, 1);
    sb_confirms_free(&cf);
    sb_free(body.bytes);
    return NULL;
}

/* A non-delivery frame reached the consumer: a close or a cancel is fatal. */
static int consumer_other_frame(sb_client *c)
{
    return sb_client_other_frame(c, "consumer connection lost",
                                 "switchboard bench: the broker cancelled the consumer",
                                 "consumer failed");
}

/* Waits up to TICK_MS for one delivery; returns its tag, 0 for none yet,
 * or -1 on error (printed). */
static int64_t consume_one(sb_client *c)
{
    amqp_envelope_t env;
    struct timeval tv = { 0, TICK_MS * 1000 };
    amqp_maybe_release_buffers(c->conn);
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        int64_t tag = (int64_t)env.delivery_tag;
        amqp_destroy_envelope(&env);
        return tag;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
            return consumer_other_frame(c);
    }
    return sb_client_check(r, "consumer failed");
}

static int ack(sb_client *c, uint64_t tag)
{
    int st = amqp_basic_ack(c->conn, SB_CLIENT_CHANNEL, tag, 1);
    return st == AMQP_STATUS_OK ? 0 : sb_client_lib_error(st, "basic.ack failed");
}

static int consume_loop(bench_run *r)
{
    uint64_t expected = r->o->count * r->nqueues, unacked = 0, last_tag = 0;
    uint64_t last_progress = sb_clock_ms();
    while (r->delivered < expected) {
        if (atomic_load_explicit(&r->failed, memory_order_relaxed))
            return -1;
        int64_t tag = consume_one(&r->cons);
        if (tag < 0)
            return -1;
        if (tag > 0) {
            r->delivered++;
            last_tag = (uint64_t)tag;
            if (++unacked >= r->o->ack_every) {
                if (ack(&r->cons, last_tag) != 0)
                    return -1;
                unacked = 0;
            }
            last_progress = sb_clock_ms();
            continue;
        }
        if (unacked > 0 && ack(&r->cons, last_tag) != 0)  /* idle: settle the tail */
            return -1;
        unacked = 0;
        if (sb_clock_ms() - last_progress > STALL_MS) {
            fprintf(stderr, "switchboard bench: no delivery for %d s (%" PRIu64 " of %" PRIu64
                            " delivered)\n", STALL_MS / 1000, r->delivered, expected);
            return -1;
        }
    }
    return unacked > 0 ? ack(&r->cons, last_tag) : 0;
}

static void *consumer_main(void *arg)
{
    bench_run *r = arg;
    if (consume_loop(r) != 0)
        atomic_store(&r->failed, 1);
    r->t_delivered_us = sb_clock_us();
    return NULL;
}

static double per_s(uint64_t n, uint64_t us)
{
    return us > 0 ? (double)n * 1e6 / (double)us : 0.0;
}

static void report_throughput(const bench_run *r, const char *server)
{
    const bench_opts *o = r->o;
    uint64_t pub_us = r->t_published_us - r->t_start_us;
    uint64_t all_us = o->no_consume ? pub_us : r->t_delivered_us - r->t_start_us;
    double msgs = per_s(o->count, all_us), deliveries = per_s(r->delivered, all_us);
    double mb = (o->no_consume ? msgs : deliveries) * (double)o->size / 1e6;
    if (o->json) {
        printf("{\"mode\":\"%s\",\"server\":\"%s\",\"size\":%" PRIu64 ",\"count\":%" PRIu64
               ",\"queues\":%" PRIu64 ",\"fanout\":%s,\"confirm\":%s,\"persistent\":%s,"
               "\"prefetch\":%" PRIu64 ",\"ack_every\":%" PRIu64 ",\"batch\":%" PRIu64
               ",\"delivered\":%" PRIu64
               ",\"publish_s\":%.6f,\"elapsed_s\":%.6f,\"publish_msgs_per_s\":%.1f,"
               "\"msgs_per_s\":%.1f,\"deliveries_per_s\":%.1f,\"mb_per_s\":%.3f}\n",
               o->no_consume ? "publish-only" : "throughput", server, o->size, o->count,
               r->nqueues, o->fanout > 0 ? "true" : "false", o->confirm ? "true" : "false",
               o->persistent ? "true" : "false", o->prefetch, o->ack_every, o->batch, r->delivered,
               pub_us / 1e6, all_us / 1e6, per_s(o->count, pub_us), msgs, deliveries, mb);
        return;
    }
    printf("%s: %" PRIu64 " messages of %" PRIu64 " B, %s, %s, %" PRIu64 " queue%s%s, "
           "%" PRIu64 " publish%s per write\n",
           server, o->count, o->size, o->persistent ? "persistent" : "transient",
           o->confirm ? "confirms" : "no confirms", r->nqueues, r->nqueues > 1 ? "s" : "",
           o->fanout > 0 ? " (fanout)" : "", o->batch, o->batch > 1 ? "es" : "");
    printf("  published in %.3f s: %.0f msgs/s\n", pub_us / 1e6, per_s(o->count, pub_us));
    if (o->no_consume)
        printf("  left in queue '%s' (not consumed)\n", r->queues[0]);
    else
        printf("  delivered %" PRIu64 " in %.3f s: %.0f msgs/s in, %.0f deliveries/s, "
               "%.2f MB/s\n", r->delivered, all_us / 1e6, msgs, deliveries, mb);
}

static int run_throughput(const bench_opts *o)
{
    bench_run *r = sb_calloc(1, sizeof *r);
    r->o = o;
    const char *url = sb_client_url(o->url);
    int rc = SB_EXIT_FAIL;
    char server[128];
    if (!o->no_consume &&
        (sb_client_open(&r->cons, url, "switchboard bench consumer", 10000) != 0 ||
         setup_consumer(r) != 0))
        goto out;
    if (sb_client_open(&r->prod, url, "switchboard bench producer", 10000) != 0)
        goto out;
    if (o->no_consume && setup_backlog(r) != 0)
        goto out;
    sb_client_server_name(&r->prod, server, sizeof server);
    pthread_t prod, cons;
    if (!o->no_consume)
        pthread_create(&cons, NULL, consumer_main, r);
    pthread_create(&prod, NULL, producer_main, r);
    pthread_join(prod, NULL);
    if (!o->no_consume)
        pthread_join(cons, NULL);
    if (!atomic_load(&r->failed)) {
        report_throughput(r, server);
        rc = SB_EXIT_OK;
    }
out:
    sb_client_close(&r->prod);
    sb_client_close(&r->cons);
    sb_free(r);
    return rc;
}

/* ---- latency: request/reply round trips over direct reply-to ---- */

#define REPLY_TO "amq.rabbitmq.reply-to"

typedef struct latency_run {
    const bench_opts *o;
    sb_client resp, cli;
    char request_queue[128];
    atomic_int stop;
    atomic_int failed;
} latency_run;

/* Answers one request: the same body back to its reply_to, with its
 * correlation id. */
static int respond(sb_client *c, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *in = &env->message.properties;
    if (!(in->_flags & AMQP_BASIC_REPLY_TO_FLAG))
        return 0;
    amqp_basic_properties_t out = { 0 };
    if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        out._flags = AMQP_BASIC_CORRELATION_ID_FLAG;
        out.correlation_id = in->correlation_id;
    }
    int st = amqp_basic_publish(c->conn, SB_CLIENT_CHANNEL, amqp_empty_bytes, in->reply_to, 0,
                                0, &out, env->message.body);
    return st == AMQP_STATUS_OK ? 0 : sb_client_lib_error(st, "responder: reply failed");
}

static void *responder_main(void *arg)
{
    latency_run *l = arg;
    while (!atomic_load(&l->stop)) {
        amqp_envelope_t env;
        struct timeval tv = { 0, TICK_MS * 1000 };
        amqp_maybe_release_buffers(l->resp.conn);
        amqp_rpc_reply_t r = amqp_consume_message(l->resp.conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int rc = respond(&l->resp, &env);
            amqp_destroy_envelope(&env);
            if (rc == 0)
                continue;
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                   r.library_error == AMQP_STATUS_TIMEOUT) {
            continue;
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                   r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (consumer_other_frame(&l->resp) == 0)
                continue;
        } else {
            sb_client_check(r, "responder failed");
        }
        atomic_store(&l->failed, 1);
        break;
    }
    return NULL;
}

static int setup_latency(latency_run *l)
{
    const char *url = sb_client_url(l->o->url);
    if (sb_client_open(&l->resp, url, "switchboard bench responder", 10000) != 0 ||
        declare_queue(&l->resp, "", 0, 1, l->request_queue, sizeof l->request_queue) != 0)
        return -1;
    amqp_basic_consume(l->resp.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(l->request_queue),
                       amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    if (sb_client_check_last(&l->resp, "cannot consume the request queue") != 0)
        return -1;
    if (sb_client_open(&l->cli, url, "switchboard bench requester", 10000) != 0)
        return -1;
    amqp_basic_consume(l->cli.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(REPLY_TO),
                       amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    return sb_client_check_last(&l->cli, "cannot consume from " REPLY_TO
                                         " (does the broker support direct reply-to?)");
}

/* Sends one request and waits for its reply; returns the round trip in
 * microseconds, or -1 (printed). */
static int64_t round_trip(latency_run *l, amqp_bytes_t body)
{
    amqp_basic_properties_t props = { 0 };
    props._flags = AMQP_BASIC_REPLY_TO_FLAG;
    props.reply_to = amqp_cstring_bytes(REPLY_TO);
    uint64_t t0 = sb_clock_us();
    int st = amqp_basic_publish(l->cli.conn, SB_CLIENT_CHANNEL, amqp_empty_bytes,
                                amqp_cstring_bytes(l->request_queue), 0, 0, &props, body);
    if (st != AMQP_STATUS_OK)
        return sb_client_lib_error(st, "request failed");
    for (;;) {
        int64_t tag = consume_one(&l->cli);
        if (tag < 0 || atomic_load(&l->failed))
            return -1;
        if (tag > 0)
            return (int64_t)(sb_clock_us() - t0);
        if (sb_clock_us() - t0 > (uint64_t)STALL_MS * 1000) {
            fprintf(stderr, "switchboard bench: no reply within %d s\n", STALL_MS / 1000);
            return -1;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples. */
static uint64_t pct(const uint64_t *s, uint64_t n, double q)
{
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    return s[rank == 0 ? 0 : (rank > n ? n - 1 : rank - 1)];
}

static void report_latency(const bench_opts *o, uint64_t *s, uint64_t total_us,
                           const char *server)
{
    uint64_t n = o->count, sum = 0;
    qsort(s, n, sizeof *s, cmp_u64);
    for (uint64_t i = 0; i < n; i++)
        sum += s[i];
    if (o->json) {
        printf("{\"mode\":\"latency\",\"server\":\"%s\",\"size\":%" PRIu64 ",\"count\":%" PRIu64
               ",\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"p999_us\":%" PRIu64
               ",\"min_us\":%" PRIu64 ",\"max_us\":%" PRIu64 ",\"mean_us\":%.1f"
               ",\"round_trips_per_s\":%.1f}\n",
               server, o->size, n, pct(s, n, 0.5), pct(s, n, 0.99), pct(s, n, 0.999), s[0],
               s[n - 1], (double)sum / (double)n, per_s(n, total_us));
        return;
    }
    printf("%s: %" PRIu64 " round trips of %" PRIu64 " B (request queue, reply via " REPLY_TO
           ")\n", server, n, o->size);
    printf("  p50 %" PRIu64 " us, p99 %" PRIu64 " us, p99.9 %" PRIu64 " us, min %" PRIu64
           " us, max %" PRIu64 " us, mean %.1f us; %.0f round trips/s\n",
           pct(s, n, 0.5), pct(s, n, 0.99), pct(s, n, 0.999), s[0], s[n - 1],
           (double)sum / (double)n, per_s(n, total_us));
}

/* Runs warm-up round trips (not recorded), then o->count recorded ones. */
static int latency_loop(latency_run *l, uint64_t *samples, uint64_t *total_us)
{
    const bench_opts *o = l->o;
    uint64_t warmup = o->count / 10 < 10 ? 10 : (o->count / 10 > 1000 ? 1000 : o->count / 10);
    amqp_bytes_t body = { o->size, sb_calloc(1, o->size + 1) };
    memset(body.bytes, 'r', o->size);
    int rc = 0;
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < warmup + o->count && rc == 0; i++) {
        if (i == warmup)
            t0 = sb_clock_us();
        int64_t us = round_trip(l, body);
        if (us < 0)
            rc = -1;
        else if (i >= warmup)
            samples[i - warmup] = (uint64_t)us;
    }
    *total_us = sb_clock_us() - t0;
    sb_free(body.bytes);
    return rc;
}

static int run_latency(const bench_opts *o)
{
    latency_run *l = sb_calloc(1, sizeof *l);
    l->o = o;
    uint64_t *samples = sb_calloc(o->count, sizeof *samples);
    int rc = SB_EXIT_FAIL;
    if (setup_latency(l) != 0)
        goto out;
    char server[128];
    sb_client_server_name(&l->cli, server, sizeof server);
    pthread_t resp;
    pthread_create(&resp, NULL, responder_main, l);
    uint64_t total_us = 0;
    int ok = latency_loop(l, samples, &total_us) == 0;
    atomic_store(&l->stop, 1);
    pthread_join(resp, NULL);
    if (ok && !atomic_load(&l->failed)) {
        report_latency(o, samples, total_us, server);
        rc = SB_EXIT_OK;
    }
out:
    sb_client_close(&l->cli);
    sb_client_close(&l->resp);
    sb_free(samples);
    sb_free(l);
    return rc;
}

int sb_cli_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == -1 ? SB_EXIT_OK : rc;
    if (o.respond != NULL)
        return sb_bench_respond(o.url, o.respond, o.prefetch);
    if (o.reject_cycle)
        return sb_bench_reject_cycle(o.url, o.count, o.size, o.prefetch, o.retry_delays, o.json);
    return o.latency ? run_latency(&o) : run_throughput(&o);
}
