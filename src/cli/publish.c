/* publish.c - `switchboard publish EXCHANGE ROUTING_KEY [BODY | -]`.
 *
 * Publishes one message (or --count copies) and exits 0 once the broker
 * has it: with --confirm (or --mandatory) when every copy is acked, else
 * after a synchronous round trip on the channel, so that a channel error
 * (say, a message over the broker's size limit) is reported, not lost.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/alloc.h"
#include "common/buf.h"

#define MAX_HEADERS 64
#define CONFIRM_WINDOW 1000

typedef struct publish_opts {
    const char *url;
    const char *exchange;
    const char *routing_key;
    const char *body_arg;  /* NULL or "-" = stdin */
    const char *content_type;
    const char *correlation_id;
    const char *reply_to;
    const char *expiration;
    const char *headers[MAX_HEADERS];  /* "K=V", borrowed from argv */
    int n_headers;
    int persistent, confirm, mandatory;
    uint64_t count;
    uint64_t timeout_s;
} publish_opts;

static const char usage_text[] =
    "usage: switchboard publish EXCHANGE ROUTING_KEY [BODY | -] [options]\n"
    "\n"
    "Publishes BODY (or, if BODY is omitted or '-', all of standard input) to\n"
    "EXCHANGE with ROUTING_KEY. Use \"\" for the default exchange, which routes\n"
    "to the queue named by ROUTING_KEY.\n"
    "\n"
    "options:\n"
    "  --url URL             broker URL (default: $AMQP_URL, else\n"
    "                        " SB_CLIENT_DEFAULT_URL ")\n"
    "  --header K=V          add a string header; repeatable\n"
    "  --persistent          delivery_mode 2 (survives a broker restart in a\n"
    "                        durable queue)\n"
    "  --confirm             wait for the broker's publisher confirm; fail on nack\n"
    "  --mandatory           fail if the message cannot be routed to any queue\n"
    "                        (implies waiting for confirms)\n"
    "  --content-type T      e.g. application/json\n"
    "  --correlation-id ID\n"
    "  --reply-to QUEUE\n"
    "  --expiration MS       per-message TTL in milliseconds\n"
    "  --count N             publish N copies (default 1)\n"
    "  --timeout SECONDS     how long to wait for confirms (default 30)\n"
    "  -h, --help            this text\n"
    "\n"
    "exit status: 0 published (and confirmed, if asked); 1 connection or broker\n"
    "error; 2 bad arguments; 3 no confirm within --timeout; 4 nacked or returned\n"
    "as unroutable.\n"
    "\n"
    "examples:\n"
    "  switchboard publish \"\" orders '{\"id\": 1}' --content-type application/json\n"
    "  echo hello | switchboard publish amq.topic logs.info --confirm\n"
    "  switchboard publish events user.created - --header source=cli --persistent < ev.json\n"
    "  switchboard publish \"\" jobs job --count 1000 --confirm\n";

enum {
    OPT_URL = 256, OPT_HEADER, OPT_PERSISTENT, OPT_CONFIRM, OPT_MANDATORY,
    OPT_CONTENT_TYPE, OPT_CORRELATION_ID, OPT_REPLY_TO, OPT_EXPIRATION, OPT_COUNT,
    OPT_TIMEOUT,
};

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "header", required_argument, NULL, OPT_HEADER },
    { "persistent", no_argument, NULL, OPT_PERSISTENT },
    { "confirm", no_argument, NULL, OPT_CONFIRM },
    { "mandatory", no_argument, NULL, OPT_MANDATORY },
    { "content-type", required_argument, NULL, OPT_CONTENT_TYPE },
    { "correlation-id", required_argument, NULL, OPT_CORRELATION_ID },
    { "reply-to", required_argument, NULL, OPT_REPLY_TO },
    { "expiration", required_argument, NULL, OPT_EXPIRATION },
    { "count", required_argument, NULL, OPT_COUNT },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* sb_client_cmd.apply for publish. */
static int apply_opt(void *opts, int opt)
{
    publish_opts *o = opts;
    uint64_t v;
    switch (opt) {
    case OPT_URL: o->url = optarg; return 0;
    case OPT_HEADER:
        return sb_client_add_header("publish", o->headers, &o->n_headers, MAX_HEADERS, optarg);
    case OPT_PERSISTENT: o->persistent = 1; return 0;
    case OPT_CONFIRM: o->confirm = 1; return 0;
    case OPT_MANDATORY: o->mandatory = 1; return 0;
    case OPT_CONTENT_TYPE: o->content_type = optarg; return 0;
    case OPT_CORRELATION_ID: o->correlation_id = optarg; return 0;
    case OPT_REPLY_TO: o->reply_to = optarg; return 0;
    case OPT_EXPIRATION:
        if (sb_client_parse_u64(optarg, "--expiration", 0, UINT32_MAX, &v) != 0)
            return SB_EXIT_USAGE;
        o->expiration = optarg;
        return 0;
    case OPT_COUNT:
        return sb_client_parse_u64(optarg, "--count", 1, UINT64_MAX / 2, &o->count) != 0
                   ? SB_EXIT_USAGE : 0;
    case OPT_TIMEOUT:
        return sb_client_parse_u64(optarg, "--timeout", 1, 86400, &o->timeout_s) != 0
                   ? SB_EXIT_USAGE : 0;
    case 'h': return SB_CLIENT_OPT_HELP;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd publish_cmd = { "publish", "h", long_opts, apply_opt, usage_text };

/* Returns 0, SB_CLIENT_OPT_HELP after printing --help, or an exit status. */
static int parse_args(publish_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->count = 1;
    o->timeout_s = 30;
    int rc = sb_client_parse_args(&publish_cmd, argc, argv, o);
    if (rc != 0)
        return rc;
    int npos = argc - optind;
    if (npos < 2 || npos > 3)
        return sb_client_usage_error("publish", "expects EXCHANGE ROUTING_KEY [BODY | -]");
    o->exchange = argv[optind];
    o->routing_key = argv[optind + 1];
    o->body_arg = npos == 3 ? argv[optind + 2] : NULL;
    return 0;
}

/* Fills props from the options; table entries point into entries[] and
 * argv. */
static void build_props(const publish_opts *o, amqp_basic_properties_t *p,
                        amqp_table_entry_t *entries)
{
    memset(p, 0, sizeof *p);
    if (o->persistent) {
        p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
        p->delivery_mode = 2;
    }
    const struct { const char *v; amqp_flags_t flag; amqp_bytes_t *field; } strs[] = {
        { o->content_type, AMQP_BASIC_CONTENT_TYPE_FLAG, &p->content_type },
        { o->correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG, &p->correlation_id },
        { o->reply_to, AMQP_BASIC_REPLY_TO_FLAG, &p->reply_to },
        { o->expiration, AMQP_BASIC_EXPIRATION_FLAG, &p->expiration },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i].v != NULL) {
            p->_flags |= strs[i].flag;
            *strs[i].field = amqp_cstring_bytes(strs[i].v);
        }
    }
    sb_client_set_headers(p, o->headers, o->n_headers, entries);
}

/* A named exchange is checked up front so that a typo gets "no exchange
 * 'x'" rather than an error after the body was sent. */
static int check_exchange(sb_client *c, const char *exchange)
{
    if (exchange[0] == '\0')
        return 0;
    amqp_exchange_declare(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(exchange),
                          amqp_cstring_bytes("direct"), 1, 0, 0, 0, amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "cannot publish to exchange '%s'", exchange);
    return sb_client_check_last(c, what);
}

static int finish_confirms(sb_client *c, sb_confirms *cf, const publish_opts *o)
{
    int rc = sb_confirms_wait(c, cf, 0, (int)o->timeout_s * 1000);
    if (rc == -SB_EXIT_TIMEOUT) {
        fprintf(stderr, "switchboard publish: no confirm from the broker within %llu s "
                        "(%llu of %llu messages unconfirmed)\n",
                (unsigned long long)o->timeout_s,
                (unsigned long long)sb_confirms_outstanding(cf), (unsigned long long)o->count);
        return SB_EXIT_TIMEOUT;
    }
    if (rc != 0)
        return SB_EXIT_FAIL;
    if (cf->returns > 0) {
        fprintf(stderr, "switchboard publish: %llu of %llu messages returned as unroutable: %s\n",
                (unsigned long long)cf->returns, (unsigned long long)o->count,
                cf->last_return);
        return SB_EXIT_REJECTED;
    }
    if (cf->nacks > 0) {
        fprintf(stderr, "switchboard publish: the broker nacked %llu of %llu messages "
                        "(it could not take responsibility for them)\n",
                (unsigned long long)cf->nacks, (unsigned long long)o->count);
        return SB_EXIT_REJECTED;
    }
    return SB_EXIT_OK;
}

static int publish_all(sb_client *c, const publish_opts *o, const sb_buf *body)
{
    amqp_basic_properties_t props;
    amqp_table_entry_t entries[MAX_HEADERS];
    build_props(o, &props, entries);
    sb_confirms cf = { 0 };
    int wait_confirms = o->confirm || o->mandatory;
    if (check_exchange(c, o->exchange) != 0)
        return SB_EXIT_FAIL;
    if (wait_confirms && sb_confirms_start(c, &cf, CONFIRM_WINDOW) != 0)
        return SB_EXIT_FAIL;
    amqp_bytes_t b = { body->len, body->data };
    int rc = SB_EXIT_OK;
    for (uint64_t i = 0; i < o->count && rc == SB_EXIT_OK; i++) {
        if (wait_confirms && (rc = sb_confirms_wait(c, &cf, CONFIRM_WINDOW - 1,
                                                     (int)o->timeout_s * 1000)) != 0) {
            rc = rc == -SB_EXIT_TIMEOUT ? SB_EXIT_TIMEOUT : SB_EXIT_FAIL;
            break;
        }
        int st = amqp_basic_publish(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(o->exchange),
                                    amqp_cstring_bytes(o->routing_key), o->mandatory, 0, &props,
                                    b);
        if (st != AMQP_STATUS_OK) {
            sb_client_lib_error(st, "publish failed");
            rc = SB_EXIT_FAIL;
        } else if (wait_confirms) {
            sb_confirms_published(&cf);
        }
    }
    if (rc == SB_EXIT_OK && wait_confirms)
        rc = finish_confirms(c, &cf, o);
    else if (rc == SB_EXIT_OK) {
        /* Any synchronous method surfaces an asynchronous channel.close;
         * basic.qos changes nothing on a channel without consumers. */
        amqp_basic_qos(c->conn, SB_CLIENT_CHANNEL, 0, 0, 0);
        if (sb_client_check_last(c, "publish failed") != 0)
            rc = SB_EXIT_FAIL;
    }
    sb_confirms_free(&cf);
    return rc;
}

int sb_cli_publish(int argc, char **argv)
{
    publish_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    sb_buf body = SB_BUF_INIT;
    if (sb_client_read_body(o.body_arg, &body, "publish") != 0) {
        sb_buf_free(&body);
        return SB_EXIT_FAIL;
    }
    sb_client c;
    if (sb_client_open(&c, sb_client_url(o.url), "switchboard publish", 10000) != 0) {
        sb_buf_free(&body);
        return SB_EXIT_FAIL;
    }
    rc = publish_all(&c, &o, &body);
    sb_client_close(&c);
    sb_buf_free(&body);
    return rc;
}
