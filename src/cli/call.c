/* call.c - `switchboard call QUEUE [BODY | -]`: one synchronous request.
 *
 * A call publishes BODY to the default exchange with routing key QUEUE,
 * waits for the reply through direct reply-to (amq.rabbitmq.reply-to) and
 * prints the reply body as-is. Everything is bounded by one deadline,
 * --timeout from the start of the command:
 *
 *   connect and log in   (bounded by the time left)
 *   passive queue.declare: 404 -> exit 4, consumer_count 0 -> exit 5
 *   basic.consume amq.rabbitmq.reply-to, no-ack (before the publish, as
 *                        direct reply-to requires)
 *   basic.publish mandatory, reply_to, correlation_id, expiration = the
 *                        time left in ms, so that the request dies with the
 *                        caller's deadline instead of being served late
 *   wait for the reply whose correlation_id matches; a basic.return
 *                        (312 NO_ROUTE: the queue went away) -> exit 4
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/buf.h"
#include "common/clock.h"

#define MAX_HEADERS 64
#define MAX_TIMEOUT_MS (24ull * 3600 * 1000)  /* fits expiration; a day is plenty */
#define REPLY_TO "amq.rabbitmq.reply-to"

typedef struct call_opts {
    const char *url;
    const char *queue;
    const char *body_arg;  /* NULL or "-" = stdin */
    const char *content_type;
    const char *correlation_id;
    const char *headers[MAX_HEADERS];  /* "K=V", borrowed from argv */
    int n_headers;
    uint64_t timeout_ms;
} call_opts;

static const char usage_text[] =
    "usage: switchboard call QUEUE [BODY | -] [options]\n"
    "\n"
    "Sends BODY (or, if BODY is omitted or '-', all of standard input) as a\n"
    "request to QUEUE and waits for the reply, which it writes to standard\n"
    "output as-is (no newline added). The reply comes back through direct\n"
    "reply-to (amq.rabbitmq.reply-to). The request carries the deadline as\n"
    "its expiration, so it is dropped (or dead-lettered) instead of being\n"
    "served after the caller stopped waiting.\n"
    "\n"
    "options:\n"
    "  --timeout DURATION    give up after DURATION (default 5s): 250ms, 5s, 2m,\n"
    "                        or a plain number of seconds\n"
    "  --header K=V          add a string header to the request; repeatable\n"
    "  --content-type T      e.g. application/json\n"
    "  --correlation-id ID   default: a random one\n"
    "  --url URL             broker URL (default: $AMQP_URL, else\n"
    "                        " SB_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help            this text\n"
    "\n"
    "exit status:\n"
    "  0  reply received (and printed)\n"
    "  1  connection or broker error\n"
    "  2  bad arguments\n"
    "  3  timeout: no reply before the deadline\n"
    "  4  no such queue (404 NOT_FOUND, or returned 312 NO_ROUTE)\n"
    "  5  the queue has no consumer: nobody would answer\n"
    "\n"
    "examples:\n"
    "  switchboard call upper hello                  # prints HELLO\n"
    "  switchboard call auth.login - --content-type application/json < creds.json\n"
    "  switchboard call slow.report '{}' --timeout 30s --header tenant=acme\n"
    "  switchboard respond upper -- tr a-z A-Z        # the other side\n";

enum { OPT_URL = 256, OPT_TIMEOUT, OPT_HEADER, OPT_CONTENT_TYPE, OPT_CORRELATION_ID };

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "header", required_argument, NULL, OPT_HEADER },
    { "content-type", required_argument, NULL, OPT_CONTENT_TYPE },
    { "correlation-id", required_argument, NULL, OPT_CORRELATION_ID },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* sb_client_cmd.apply for call. */
static int apply_opt(void *opts, int opt)
{
    call_opts *o = opts;
    switch (opt) {
    case OPT_URL: o->url = optarg; return 0;
    case OPT_TIMEOUT:
        return sb_client_parse_duration_ms(optarg, "--timeout", MAX_TIMEOUT_MS,
                                           &o->timeout_ms) != 0 ? SB_EXIT_USAGE : 0;
    case OPT_HEADER:
        return sb_client_add_header("call", o->headers, &o->n_headers, MAX_HEADERS, optarg);
    case OPT_CONTENT_TYPE: o->content_type = optarg; return 0;
    case OPT_CORRELATION_ID:
        if (optarg[0] == '\0' || strlen(optarg) > 255)
            return sb_client_usage_error("call", "--correlation-id expects 1 to 255 bytes");
        o->correlation_id = optarg;
        return 0;
    case 'h': return SB_CLIENT_OPT_HELP;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd call_cmd = { "call", "h", long_opts, apply_opt, usage_text };

/* Returns 0, SB_CLIENT_OPT_HELP after printing --help, or an exit status. */
static int parse_args(call_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 5000;
    int rc = sb_client_parse_args(&call_cmd, argc, argv, o);
    if (rc != 0)
        return rc;
    int npos = argc - optind;
    if (npos < 1 || npos > 2)
        return sb_client_usage_error("call", "expects QUEUE [BODY | -]");
    o->queue = argv[optind];
    o->body_arg = npos == 2 ? argv[optind + 1] : NULL;
    if (o->queue[0] == '\0' || strlen(o->queue) > 255)
        return sb_client_usage_error("call", "QUEUE must be a queue name of 1 to 255 bytes");
    return 0;
}

/* The state of one call: its deadline and what it waits for. */
typedef struct call_state {
    uint64_t deadline_ms;  /* sb_clock_ms() */
    char corr_id[256];
    char expiration[24];   /* time left at publish, in ms */
} call_state;

/* Milliseconds left before the deadline; 0 once it has passed. */
static uint64_t time_left(const call_state *st)
{
    uint64_t now = sb_clock_ms();
    return now >= st->deadline_ms ? 0 : st->deadline_ms - now;
}

static void make_corr_id(const call_opts *o, call_state *st)
{
    if (o->correlation_id != NULL) {
        snprintf(st->corr_id, sizeof st->corr_id, "%s", o->correlation_id);
        return;
    }
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* Cannot happen for 16 bytes after boot; still unique enough. */
        uint64_t t = sb_clock_us();
        memcpy(r, &t, sizeof t);
        memcpy(r + 8, &st->deadline_ms, sizeof st->deadline_ms);
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(st->corr_id + 2 * i, 3, "%02x", r[i]);
}

/* Fills props from the options; table entries point into entries[], argv
 * and st. */
static void build_props(const call_opts *o, const call_state *st, amqp_basic_properties_t *p,
                        amqp_table_entry_t *entries)
{
    memset(p, 0, sizeof *p);
    p->_flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                AMQP_BASIC_EXPIRATION_FLAG;
    p->reply_to = amqp_cstring_bytes(REPLY_TO);
    p->correlation_id = amqp_cstring_bytes(st->corr_id);
    p->expiration = amqp_cstring_bytes(st->expiration);
    if (o->content_type != NULL) {
        p->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p->content_type = amqp_cstring_bytes(o->content_type);
    }
    sb_client_set_headers(p, o->headers, o->n_headers, entries);
}

/* Fail fast: a missing queue or one nobody consumes from would only
 * stall the caller until its deadline. */
static int check_queue(sb_client *c, const call_opts *o)
{
    uint32_t consumers = 0;
    int r = sb_client_queue_probe(c, o->queue, &consumers);
    if (r < 0)
        return SB_EXIT_FAIL;
    if (r == 0) {
        fprintf(stderr, "switchboard call: no queue '%s' (404 NOT_FOUND): check the name, "
                        "or start a responder with `switchboard respond %s --declare -- "
                        "COMMAND`\n", o->queue, o->queue);
        return SB_EXIT_REJECTED;
    }
    if (consumers == 0) {
        fprintf(stderr, "switchboard call: queue '%s' has no consumer, so nobody would "
                        "answer; start one, e.g. `switchboard respond %s -- COMMAND`\n",
                o->queue, o->queue);
        return SB_EXIT_NO_CONSUMER;
    }
    return SB_EXIT_OK;
}

static int send_request(sb_client *c, const call_opts *o, call_state *st, const sb_buf *body)
{
    amqp_basic_consume(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(REPLY_TO),
                       amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    if (sb_client_check_last(c, "cannot consume from " REPLY_TO) != 0)
        return SB_EXIT_FAIL;
    uint64_t left = time_left(st);
    if (left == 0)
        return SB_EXIT_FAIL;  /* reported as a timeout by run_call */
    snprintf(st->expiration, sizeof st->expiration, "%llu", (unsigned long long)left);
    amqp_basic_properties_t props;
    amqp_table_entry_t entries[MAX_HEADERS];
    build_props(o, st, &props, entries);
    int rc = amqp_basic_publish(c->conn, SB_CLIENT_CHANNEL, amqp_empty_bytes,
                                amqp_cstring_bytes(o->queue), 1, 0, &props,
                                (amqp_bytes_t){ body->len, body->data });
    if (rc != AMQP_STATUS_OK) {
        sb_client_lib_error(rc, "publishing the request failed");
        return SB_EXIT_FAIL;
    }
    return SB_EXIT_OK;
}

/* A basic.return: the request could not be routed (the queue went away
 * after the check). Reads and drops the returned content. */
static int on_return(sb_client *c, const call_opts *o, const amqp_basic_return_t *m)
{
    fprintf(stderr, "switchboard call: the request was returned: %d %.*s (no queue '%s')\n",
            m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
            o->queue);
    amqp_message_t msg;
    if (amqp_read_message(c->conn, SB_CLIENT_CHANNEL, &msg, 0).reply_type ==
        AMQP_RESPONSE_NORMAL)
        amqp_destroy_message(&msg);
    return SB_EXIT_REJECTED;
}

/* A frame other than a delivery (amqp_consume_message said
 * UNEXPECTED_STATE). Returns -1 to keep waiting, or an exit status. */
static int on_other_frame(sb_client *c, const call_opts *o)
{
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame(c->conn, &f);
    if (rc != AMQP_STATUS_OK) {
        sb_client_lib_error(rc, "connection lost while waiting for the reply");
        return SB_EXIT_FAIL;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return -1;
    switch (f.payload.method.id) {
    case AMQP_BASIC_RETURN_METHOD:
        return on_return(c, o, f.payload.method.decoded);
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                               .reply = f.payload.method };
        sb_client_check(r, "the call failed");
        return SB_EXIT_FAIL;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        fprintf(stderr, "switchboard call: the broker cancelled the reply consumer\n");
        return SB_EXIT_FAIL;
    default:
        return -1;
    }
}

/* Does this delivery answer our request? A stray one (a late reply to
 * someone else on a reused channel cannot happen here, but a responder
 * may answer twice) is dropped. */
static int is_our_reply(const call_state *st, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    size_t n = strlen(st->corr_id);
    return (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len == n &&
           memcmp(p->correlation_id.bytes, st->corr_id, n) == 0;
}

static int wait_reply(sb_client *c, const call_opts *o, const call_state *st)
{
    for (;;) {
        uint64_t left = time_left(st);
        if (left == 0) {
            fprintf(stderr, "switchboard call: no reply from '%s' within %llu ms "
                            "(correlation id %s); the request expires with it\n",
                    o->queue, (unsigned long long)o->timeout_ms, st->corr_id);
            return SB_EXIT_TIMEOUT;
        }
        amqp_maybe_release_buffers(c->conn);
        struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int ours = is_our_reply(st, &env);
            if (ours) {
                sb_client_print_bytes(env.message.body, 0);
                fflush(stdout);
            }
            amqp_destroy_envelope(&env);
            if (ours)
                return ferror(stdout) ? SB_EXIT_FAIL : SB_EXIT_OK;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            int rc = on_other_frame(c, o);
            if (rc >= 0)
                return rc;
            continue;
        }
        sb_client_check(r, "waiting for the reply failed");
        return SB_EXIT_FAIL;
    }
}

/* Bounds every synchronous method (queue.declare, basic.consume, the
 * final connection.close) by ms. */
static void set_rpc_timeout(sb_client *c, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    amqp_set_rpc_timeout(c->conn, &tv);
}

static int run_call(const call_opts *o, call_state *st, const sb_buf *body)
{
    sb_client c;
    if (sb_client_open(&c, sb_client_url(o->url), "switchboard call", (int)time_left(st)) != 0)
        return time_left(st) == 0 ? SB_EXIT_TIMEOUT : SB_EXIT_FAIL;
    set_rpc_timeout(&c, time_left(st) > 0 ? time_left(st) : 1);
    int rc = check_queue(&c, o);
    if (rc == SB_EXIT_OK)
        rc = send_request(&c, o, st, body);
    if (rc == SB_EXIT_OK)
        rc = wait_reply(&c, o, st);
    /* A broker too slow to answer before the deadline is a timeout too. */
    if (rc != SB_EXIT_OK && rc != SB_EXIT_TIMEOUT && time_left(st) == 0) {
        fprintf(stderr, "switchboard call: the deadline (%llu ms) passed before the request "
                        "could be sent\n", (unsigned long long)o->timeout_ms);
        rc = SB_EXIT_TIMEOUT;
    }
    set_rpc_timeout(&c, 1000);
    sb_client_close(&c);
    return rc;
}

int sb_cli_call(int argc, char **argv)
{
    call_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    sb_buf body = SB_BUF_INIT;
    if (sb_client_read_body(o.body_arg, &body, "call") != 0) {
        sb_buf_free(&body);
        return SB_EXIT_FAIL;
    }
    /* The deadline starts once the request is known: reading a body from
     * a pipe may take as long as the writer likes. */
    call_state st = { .deadline_ms = sb_clock_ms() + o.timeout_ms };
    make_corr_id(&o, &st);
    rc = run_call(&o, &st, &body);
    sb_buf_free(&body);
    return rc;
}
