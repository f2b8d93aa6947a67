/* consume.c - `switchboard consume QUEUE`: print message bodies to stdout.
 *
 * Each body is printed on its own line (with --verbose, its envelope and
 * properties first) and then acked, so a message is only removed from the
 * queue once it was written out.
 *
 * --count N is exact: the broker is never allowed to push an (N+1)th
 * message. With prefetch P (capped to N), we ack message i at once only
 * while i <= N - P; the last P are acked after basic.cancel-ok, when no
 * more can arrive. For that reason --no-ack (the broker forgets a message
 * as it sends it) is used only without --count.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/clock.h"

typedef struct consume_opts {
    const char *url;
    const char *queue;
    uint64_t count;      /* 0 = until a signal */
    uint64_t prefetch;
    uint64_t timeout_s;  /* 0 = none */
    int no_ack, verbose;
} consume_opts;

static volatile sig_atomic_t stop_signal;

static const char usage_text[] =
    "usage: switchboard consume QUEUE [options]\n"
    "\n"
    "Prints the body of each message from QUEUE to standard output, one per\n"
    "line, and acks it once written. Runs until --count messages arrived, or\n"
    "until SIGINT (Ctrl-C) or SIGTERM.\n"
    "\n"
    "options:\n"
    "  --url URL           broker URL (default: $AMQP_URL, else\n"
    "                      " SB_CLIENT_DEFAULT_URL ")\n"
    "  --count N           exit after N messages; no more than N leave the queue\n"
    "  --no-ack            consume in no-ack mode: the broker forgets each message\n"
    "                      when it sends it (faster; at-most-once). Ignored with\n"
    "                      --count, which acks to stay exact\n"
    "  --prefetch N        at most N unacked messages in flight (default 100)\n"
    "  --timeout SECONDS   exit with status 3 if no message arrives for SECONDS\n"
    "  --verbose, -v       print the envelope, properties and headers before each\n"
    "                      body\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 done (count reached, or stopped by a signal); 1 connection or\n"
    "broker error (e.g. no such queue); 2 bad arguments; 3 timed out.\n"
    "\n"
    "examples:\n"
    "  switchboard consume orders --count 1\n"
    "  switchboard consume logs --verbose\n"
    "  switchboard consume jobs --count 10 --timeout 5 > jobs.txt\n";

enum { OPT_URL = 256, OPT_COUNT, OPT_NO_ACK, OPT_PREFETCH, OPT_TIMEOUT };

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "count", required_argument, NULL, OPT_COUNT },
    { "no-ack", no_argument, NULL, OPT_NO_ACK },
    { "prefetch", required_argument, NULL, OPT_PREFETCH },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* sb_client_cmd.apply for consume. */
static int apply_opt(void *opts, int opt)
{
    consume_opts *o = opts;
    switch (opt) {
    case OPT_URL: o->url = optarg; return 0;
    case OPT_COUNT:
        return sb_client_parse_u64(optarg, "--count", 1, UINT32_MAX, &o->count) ? 2 : 0;
    case OPT_NO_ACK: o->no_ack = 1; return 0;
    case OPT_PREFETCH:
        return sb_client_parse_u64(optarg, "--prefetch", 1, UINT16_MAX, &o->prefetch) ? 2 : 0;
    case OPT_TIMEOUT:
        return sb_client_parse_u64(optarg, "--timeout", 1, 86400 * 365, &o->timeout_s) ? 2 : 0;
    case 'v': o->verbose = 1; return 0;
    case 'h': return SB_CLIENT_OPT_HELP;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd consume_cmd = { "consume", "hv", long_opts, apply_opt, usage_text };

/* Returns 0, SB_CLIENT_OPT_HELP after printing --help, or an exit status. */
static int parse_args(consume_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->prefetch = 100;
    int rc = sb_client_parse_args(&consume_cmd, argc, argv, o);
    if (rc != 0)
        return rc;
    if (argc - optind != 1)
        return sb_client_usage_error("consume", "expects one QUEUE");
    o->queue = argv[optind];
    return 0;
}

static void print_value(const amqp_field_value_t *v);

static void print_table(const amqp_table_t *t, int indent)
{
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        printf("%*s%.*s: ", indent, "", (int)e->key.len, (const char *)e->key.bytes);
        if (e->value.kind == AMQP_FIELD_KIND_TABLE) {
            putchar('\n');
            print_table(&e->value.value.table, indent + 2);
        } else {
            print_value(&e->value);
            putchar('\n');
        }
    }
}

static void print_value(const amqp_field_value_t *v)
{
    const amqp_array_t *a = &v->value.array;
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: sb_client_print_bytes(v->value.bytes, 0); break;
    case AMQP_FIELD_KIND_BOOLEAN: fputs(v->value.boolean ? "true" : "false", stdout); break;
    case AMQP_FIELD_KIND_I8: printf("%d", v->value.i8); break;
    case AMQP_FIELD_KIND_U8: printf("%u", v->value.u8); break;
    case AMQP_FIELD_KIND_I16: printf("%d", v->value.i16); break;
    case AMQP_FIELD_KIND_U16: printf("%u", v->value.u16); break;
    case AMQP_FIELD_KIND_I32: printf("%" PRId32, v->value.i32); break;
    case AMQP_FIELD_KIND_U32: printf("%" PRIu32, v->value.u32); break;
    case AMQP_FIELD_KIND_I64: printf("%" PRId64, v->value.i64); break;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: printf("%" PRIu64, v->value.u64); break;
    case AMQP_FIELD_KIND_F32: printf("%g", v->value.f32); break;
    case AMQP_FIELD_KIND_F64: printf("%g", v->value.f64); break;
    case AMQP_FIELD_KIND_DECIMAL:
        printf("%" PRIu32 "e-%u", v->value.decimal.value, v->value.decimal.decimals);
        break;
    case AMQP_FIELD_KIND_VOID: fputs("(void)", stdout); break;
    case AMQP_FIELD_KIND_TABLE: fputs("{table}", stdout); break;
    case AMQP_FIELD_KIND_ARRAY:
        putchar('[');
        for (int i = 0; i < a->num_entries; i++) {
            if (i > 0)
                fputs(", ", stdout);
            print_value(&a->entries[i]);
        }
        putchar(']');
        break;
    default: printf("(field kind '%c')", v->kind);
    }
}

/* The basic properties as "name: value" lines, in the spec's order. */
static void print_props(const amqp_basic_properties_t *p)
{
    const struct { amqp_flags_t flag; const char *name; const amqp_bytes_t *v; } strs[] = {
        { AMQP_BASIC_CONTENT_TYPE_FLAG, "content-type", &p->content_type },
        { AMQP_BASIC_CONTENT_ENCODING_FLAG, "content-encoding", &p->content_encoding },
        { AMQP_BASIC_CORRELATION_ID_FLAG, "correlation-id", &p->correlation_id },
        { AMQP_BASIC_REPLY_TO_FLAG, "reply-to", &p->reply_to },
        { AMQP_BASIC_EXPIRATION_FLAG, "expiration", &p->expiration },
        { AMQP_BASIC_MESSAGE_ID_FLAG, "message-id", &p->message_id },
        { AMQP_BASIC_TYPE_FLAG, "type", &p->type },
        { AMQP_BASIC_USER_ID_FLAG, "user-id", &p->user_id },
        { AMQP_BASIC_APP_ID_FLAG, "app-id", &p->app_id },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (p->_flags & strs[i].flag) {
            printf("%s: ", strs[i].name);
            sb_client_print_bytes(*strs[i].v, 1);
        }
    }
    if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
        printf("delivery-mode: %u\n", p->delivery_mode);
    if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
        printf("priority: %u\n", p->priority);
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        printf("timestamp: %" PRIu64 "\n", p->timestamp);
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0) {
        puts("headers:");
        print_table(&p->headers, 2);
    }
}

static void print_message(const consume_opts *o, const amqp_envelope_t *env, uint64_t n)
{
    if (o->verbose) {
        printf("--- message %" PRIu64 "\n", n);
        printf("exchange: %.*s\nrouting-key: %.*s\nredelivered: %s\n",
               (int)env->exchange.len, (const char *)env->exchange.bytes,
               (int)env->routing_key.len, (const char *)env->routing_key.bytes,
               env->redelivered ? "yes" : "no");
        print_props(&env->message.properties);
        printf("body (%zu bytes):\n", env->message.body.len);
    }
    sb_client_print_bytes(env->message.body, 1);
    fflush(stdout);
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;  /* no SA_RESTART: interrupt the wait */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct consume_state {
    uint64_t received;
    uint64_t prefetch;    /* effective: capped to --count */
    uint64_t last_tag;    /* delivery tag of the last message printed */
    uint64_t acked_tag;   /* every tag up to this one is acked */
    int manual_ack;
    amqp_bytes_t ctag;    /* consumer tag, owned */
} consume_state;

static int start_consumer(sb_client *c, const consume_opts *o, consume_state *st)
{
    st->manual_ack = !o->no_ack || o->count > 0;
    st->prefetch = o->prefetch;
    if (o->count > 0 && o->count < st->prefetch)
        st->prefetch = o->count;
    if (st->manual_ack) {
        amqp_basic_qos(c->conn, SB_CLIENT_CHANNEL, 0, (uint16_t)st->prefetch, 0);
        if (sb_client_check_last(c, "basic.qos failed") != 0)
            return -1;
    }
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(o->queue),
                           amqp_empty_bytes, 0, !st->manual_ack, 0, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "cannot consume from queue '%s'", o->queue);
    if (sb_client_check_last(c, what) != 0)
        return -1;
    st->ctag = amqp_bytes_malloc_dup(ok->consumer_tag);
    return 0;
}

/* A frame other than a delivery arrived (amqp_consume_message said
 * UNEXPECTED_STATE): read it and decide. Returns 0 to go on, -1 to stop. */
static int on_other_frame(sb_client *c)
{
    return sb_client_other_frame(c, "connection lost",
                                 "switchboard consume: the broker cancelled the consumer "
                                 "(was the queue deleted?)",
                                 "consume failed");
}

/* Waits up to ms for a delivery. Returns 1 (env filled), 0 (nothing
 * yet) or -1 (error, printed). */
static int next_message(sb_client *c, amqp_envelope_t *env, int ms)
{
    amqp_maybe_release_buffers(c->conn);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
            return on_other_frame(c);
    }
    return sb_client_check(r, "consume failed");
}

static int ack_upto(sb_client *c, consume_state *st, uint64_t tag, int multiple)
{
    if (!st->manual_ack || tag <= st->acked_tag)
        return 0;
    int rc = amqp_basic_ack(c->conn, SB_CLIENT_CHANNEL, tag, multiple);
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, "basic.ack failed");
    st->acked_tag = tag;
    return 0;
}

/* After the Nth message: no more deliveries can be in flight (see the top
 * of the file), so cancel, then ack the held-back tail. Stopped early: ack
 * what was printed; anything else in flight is requeued by the close. */
static int finish(sb_client *c, const consume_opts *o, consume_state *st)
{
    if (o->count > 0 && st->received == o->count) {
        amqp_basic_cancel(c->conn, SB_CLIENT_CHANNEL, st->ctag);
        if (sb_client_check_last(c, "basic.cancel failed") != 0)
            return -1;
    }
    return ack_upto(c, st, st->last_tag, 1);
}

/* Milliseconds to wait for the next delivery: a short tick so that a
 * signal is noticed, bounded by the --timeout deadline; -1 when that
 * deadline has passed. */
static int next_wait_ms(const consume_opts *o, uint64_t last_ms)
{
    int tick = 250;
    if (o->timeout_s == 0)
        return tick;
    uint64_t deadline = last_ms + o->timeout_s * 1000, now = sb_clock_ms();
    if (now >= deadline)
        return -1;
    return deadline - now < (uint64_t)tick ? (int)(deadline - now) : tick;
}

static int consume_loop(sb_client *c, const consume_opts *o, consume_state *st)
{
    uint64_t last_ms = sb_clock_ms();
    while (!stop_signal && (o->count == 0 || st->received < o->count)) {
        int ms = next_wait_ms(o, last_ms);
        if (ms < 0) {
            fprintf(stderr, "switchboard consume: no message from '%s' within %" PRIu64
                            " s (received %" PRIu64 ")\n",
                    o->queue, o->timeout_s, st->received);
            return SB_EXIT_TIMEOUT;
        }
        amqp_envelope_t env;
        int r = next_message(c, &env, ms);
        if (r < 0)
            return SB_EXIT_FAIL;
        if (r == 0)
            continue;
        last_ms = sb_clock_ms();
        st->received++;
        st->last_tag = env.delivery_tag;
        print_message(o, &env, st->received);
        amqp_destroy_envelope(&env);
        if ((o->count == 0 || st->received + st->prefetch <= o->count) &&
            ack_upto(c, st, st->last_tag, 0) != 0)
            return SB_EXIT_FAIL;
    }
    return SB_EXIT_OK;
}

int sb_cli_consume(int argc, char **argv)
{
    consume_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    install_signals();
    sb_client c;
    if (sb_client_open(&c, sb_client_url(o.url), "switchboard consume", 10000) != 0)
        return SB_EXIT_FAIL;
    consume_state st = { 0 };
    rc = SB_EXIT_FAIL;
    if (start_consumer(&c, &o, &st) == 0) {
        rc = consume_loop(&c, &o, &st);
        if (rc != SB_EXIT_FAIL && finish(&c, &o, &st) != 0)
            rc = SB_EXIT_FAIL;
    }
    amqp_bytes_free(st.ctag);
    sb_client_close(&c);
    return rc;
}
