/* queues.c - `switchboard queues`: what every queue holds, from the
 * management API (GET /api/queues), so it works against RabbitMQ's
 * management plugin as well. Runs on the CLI's only thread.
 */
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/http_client.h"
#include "cli/table.h"
#include "common/buf.h"

typedef struct queues_opts {
    const char *http;      /* management API URL */
    const char *vhost;     /* only this vhost, or NULL for all */
    const char *pattern;   /* only names matching this glob, or NULL */
    int json;
} queues_opts;

static const char usage_text[] =
    "usage: switchboard queues [PATTERN] [--vhost V] [--json] [--http URL]\n"
    "\n"
    "Lists queues with the messages they hold: ready (waiting for a consumer),\n"
    "unacked (delivered, not yet acknowledged), consumers, features, and the\n"
    "publish and deliver rates when the broker reports them. PATTERN is a shell\n"
    "glob on the queue name (quote it: 'orders.*'). Reads GET /api/queues, which\n"
    "Switchboard and RabbitMQ's management plugin both serve.\n"
    "\n"
    "FEATURES: D durable, AD auto-delete, Excl exclusive, TTL message TTL,\n"
    "Exp queue expiry, Lim length limit, DLX dead-letter exchange, Pri priorities,\n"
    "Retry retry delays (Switchboard), DLim delivery limit, SAC single active\n"
    "consumer.\n"
    "\n"
    "options:\n"
    "  --vhost V     only queues of vhost V (default: every vhost)\n"
    "  --json        print the management API's JSON objects instead\n"
    "  --http URL    management API (default: $HTTP_URL, else\n"
    "                " SB_HTTP_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help    this text\n"
    "\n"
    "exit status: 0 done (also when nothing matched); 1 the API could not be\n"
    "read (no broker, wrong credentials, no such vhost); 2 bad arguments.\n"
    "\n"
    "examples:\n"
    "  switchboard queues\n"
    "  switchboard queues 'orders*' --vhost shop\n"
    "  switchboard queues --json\n";

enum { OPT_HTTP = 256, OPT_VHOST, OPT_JSON };

static const struct option long_opts[] = {
    { "http", required_argument, NULL, OPT_HTTP },
    { "vhost", required_argument, NULL, OPT_VHOST },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int apply_opt(void *opts, int opt)
{
    queues_opts *o = opts;
    switch (opt) {
    case 'h': return SB_CLIENT_OPT_HELP;
    case OPT_HTTP: o->http = optarg; return 0;
    case OPT_VHOST: o->vhost = optarg; return 0;
    case OPT_JSON: o->json = 1; return 0;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd queues_cmd = { "queues", "h", long_opts, apply_opt, usage_text };

/* The feature abbreviations of queue q, as the management UI shows them. */
static void features(const json_t *q, char *out, size_t n)
{
    static const struct { const char *arg, *label; } by_arg[] = {
        { "x-message-ttl", "TTL" }, { "x-expires", "Exp" }, { "x-max-length", "Lim" },
        { "x-max-length-bytes", "Lim" }, { "x-dead-letter-exchange", "DLX" },
        { "x-max-priority", "Pri" }, { "x-retry-delays", "Retry" },
        { "x-delivery-limit", "DLim" }, { "x-single-active-consumer", "SAC" },
    };
    const json_t *args = json_object_get(q, "arguments");
    size_t len = 0;
    out[0] = '\0';
#define ADD(s)                                                              \
    do {                                                                    \
        if (strstr(out, s) == NULL)                                         \
            len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", \
                                    len ? " " : "", s);                    \
    } while (0)
    if (json_is_true(json_object_get(q, "durable")))
        ADD("D");
    if (json_is_true(json_object_get(q, "auto_delete")))
        ADD("AD");
    if (json_is_true(json_object_get(q, "exclusive")))
        ADD("Excl");
    for (size_t i = 0; i < sizeof by_arg / sizeof by_arg[0]; i++)
        if (json_object_get(args, by_arg[i].arg) != NULL)
            ADD(by_arg[i].label);
#undef ADD
}

static void int_field(const json_t *q, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(q, key);
    if (json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, n, "-");
}

/* message_stats.<what>_details.rate as "12.3", or "" when not reported. */
static void rate_field(const json_t *q, const char *what, char *out, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "%s_details", what);
    const json_t *r = json_object_get(json_object_get(json_object_get(q, "message_stats"), key),
                                      "rate");
    if (json_is_number(r))
        snprintf(out, n, "%.1f", json_number_value(r));
    else
        out[0] = '\0';
}

static json_t *row(const json_t *q)
{
    char ready[24], unacked[24], consumers[24], feat[64], in[32], out[32];
    int_field(q, "messages_ready", ready, sizeof ready);
    int_field(q, "messages_unacknowledged", unacked, sizeof unacked);
    int_field(q, "consumers", consumers, sizeof consumers);
    features(q, feat, sizeof feat);
    rate_field(q, "publish", in, sizeof in);
    rate_field(q, "deliver_get", out, sizeof out);
    const char *vhost = json_string_value(json_object_get(q, "vhost"));
    const char *name = json_string_value(json_object_get(q, "name"));
    return json_pack("[s,s,s,s,s,s,s,s]", vhost ? vhost : "", name ? name : "", ready, unacked,
                     consumers, feat, in, out);
}

static int matches(const queues_opts *o, const json_t *q)
{
    const char *name = json_string_value(json_object_get(q, "name"));
    return name != NULL && (o->pattern == NULL || fnmatch(o->pattern, name, 0) == 0);
}

static int run(const queues_opts *o)
{
    sb_buf path = SB_BUF_INIT;
    sb_buf_append(&path, "/api/queues", 11);
    if (o->vhost != NULL) {
        sb_buf_append(&path, "/", 1);
        sb_http_client_encode_segment(&path, o->vhost);
    }
    sb_buf_append(&path, "", 1);
    json_t *all = sb_http_client_get_json(sb_http_client_url(o->http), (const char *)path.data);
    sb_buf_free(&path);
    if (!json_is_array(all)) {
        json_decref(all);
        return SB_EXIT_FAIL;
    }
    json_t *picked = json_array(), *rows = json_array();
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
        if (matches(o, q)) {
            json_array_append(picked, q);
            json_array_append_new(rows, row(q));
        }
    if (o->json) {
        char *s = json_dumps(picked, JSON_INDENT(2));
        puts(s);
        free(s);
    } else if (json_array_size(rows) == 0) {
        printf("no queues%s%s\n", o->pattern ? " match " : "", o->pattern ? o->pattern : "");
    } else {
        static const char *const head[8] = { "VHOST", "QUEUE", "READY", "UNACKED",
                                             "CONSUMERS", "FEATURES", "IN/S", "OUT/S" };
        sb_cli_print_table(head, 8, rows);
    }
    json_decref(rows);
    json_decref(picked);
    json_decref(all);
    return SB_EXIT_OK;
}

int sb_cli_queues(int argc, char **argv)
{
    queues_opts o = { 0 };
    int rc = sb_client_parse_args(&queues_cmd, argc, argv, &o);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    if (argc - optind > 1)
        return sb_client_usage_error("queues", "unexpected argument '%s'", argv[optind + 1]);
    if (argc - optind == 1)
        o.pattern = argv[optind];
    return run(&o);
}
