/* trace.c - `switchboard trace`: one user action's story, from the
 * broker's per-action trace (GET /api/traces/{id}, Switchboard's own API).
 *
 * Prints every event recorded for the messages that carried the trace id
 * in their traceparent header, oldest first, one line each: the time since
 * the first event, the span (the first 8 hex digits of the publisher's
 * span id, so a service that propagates the trace with a span of its own
 * shows up as a new span), what happened and the words that matter (queue,
 * consumer, connection, reason, delay). --json prints the API's answer as
 * it is; --follow polls for new events (GET ...?after=SEQ, every 200 ms).
 * Runs on the CLI's only thread.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/traceparent.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/http_client.h"

#define POLL_MS 200

typedef struct trace_opts {
    const char *http;       /* management API URL */
    const char *id;         /* 32 hex digits (from a trace id or a traceparent) */
    char idbuf[SB_TRACE_ID_HEX + 1];
    int json, follow, last, list;
    uint64_t timeout_ms;    /* --follow stops after this long (0: never) */
    uint64_t limit;         /* --list */
} trace_opts;

static const char usage_text[] =
    "usage: switchboard trace TRACE_ID [--json] [--follow [--timeout T]] [--http URL]\n"
    "       switchboard trace --last [--json] [--follow [--timeout T]] [--http URL]\n"
    "       switchboard trace --list [--limit N] [--http URL]\n"
    "\n"
    "Prints what happened to one user action: every event the broker recorded for\n"
    "messages whose traceparent header (W3C Trace Context, in the AMQP headers, or\n"
    "sent to the HTTP RPC bridge) carries TRACE_ID, oldest first. Each line shows\n"
    "the time since the first event, the span of the message's publisher (first 8\n"
    "hex digits), the event and its details: published, routed, delivered, acked,\n"
    "rejected, retry_scheduled, dead_lettered, replayed, replied, rpc_started,\n"
    "rpc_answered, rpc_timeout, ... TRACE_ID is 32 hex digits, or a whole\n"
    "traceparent value. The broker keeps the last trace.max_events events in\n"
    "memory only: older traces are gone.\n"
    "\n"
    "options:\n"
    "  --json        print the trace as GET /api/traces/ID returns it\n"
    "  --follow      keep printing new events as they happen (Ctrl-C stops); waits\n"
    "                for a trace that has no event yet. With --json, one JSON object\n"
    "                per event and line\n"
    "  --timeout T   with --follow: stop after T (\"30s\", \"500ms\", \"2m\")\n"
    "  --last        the trace with the most recent activity\n"
    "  --list        recent traces, newest first: id, events, status, what started it\n"
    "  --limit N     --list: at most N (default 20)\n"
    "  --http URL    management API (default: $HTTP_URL, else\n"
    "                " SB_HTTP_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help    this text\n"
    "\n"
    "exit status: 0 printed; 1 connection or HTTP error; 2 bad arguments;\n"
    "4 no such trace (never seen, or overwritten).\n"
    "\n"
    "examples:\n"
    "  switchboard trace 4bf92f3577b34da6a3ce929d0e0e4736\n"
    "  switchboard trace --last --follow --timeout 30s\n"
    "  switchboard trace --list\n";

enum { OPT_HTTP = 256, OPT_JSON, OPT_FOLLOW, OPT_TIMEOUT, OPT_LAST, OPT_LIST, OPT_LIMIT };

static const struct option long_opts[] = {
    { "http", required_argument, NULL, OPT_HTTP },
    { "json", no_argument, NULL, OPT_JSON },
    { "follow", no_argument, NULL, OPT_FOLLOW },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "last", no_argument, NULL, OPT_LAST },
    { "list", no_argument, NULL, OPT_LIST },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int apply_opt(void *opts, int opt)
{
    trace_opts *o = opts;
    switch (opt) {
    case 'h': return SB_CLIENT_OPT_HELP;
    case OPT_HTTP: o->http = optarg; return 0;
    case OPT_JSON: o->json = 1; return 0;
    case OPT_FOLLOW: o->follow = 1; return 0;
    case OPT_LAST: o->last = 1; return 0;
    case OPT_LIST: o->list = 1; return 0;
    case OPT_TIMEOUT:
        return sb_client_parse_duration_ms(optarg, "--timeout", 86400000, &o->timeout_ms) ? 2 : 0;
    case OPT_LIMIT:
        return sb_client_parse_u64(optarg, "--limit", 1, 10000, &o->limit) ? 2 : 0;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd trace_cmd = { "trace", "h", long_opts, apply_opt, usage_text };

/* TRACE_ID as 32 hex digits, from an id or a traceparent. */
static int take_id(trace_opts *o, const char *arg)
{
    sb_trace_ctx c;
    uint8_t id[16];
    if (sb_traceparent_parse(sb_str_c(arg), &c)) {
        sb_trace_hex(c.trace_id, 16, o->idbuf);
    } else if (sb_trace_unhex(sb_str_c(arg), id, 16)) {
        sb_trace_hex(id, 16, o->idbuf);
    } else {
        return sb_client_usage_error("trace", "'%s' is neither a trace id (32 lowercase hex "
                                     "digits) nor a traceparent", arg);
    }
    o->id = o->idbuf;
    return 0;
}

static int parse_args(trace_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->limit = 20;
    int rc = sb_client_parse_args(&trace_cmd, argc, argv, o);
    if (rc != 0)
        return rc;
    int operands = argc - optind;
    if (o->list + o->last + (operands > 0) != 1 || operands > 1)
        return sb_client_usage_error("trace", "give one TRACE_ID, or --last, or --list");
    if (o->list && (o->json || o->follow))
        return sb_client_usage_error("trace", "--list takes neither --json nor --follow");
    if (o->timeout_ms && !o->follow)
        return sb_client_usage_error("trace", "--timeout goes with --follow");
    return operands ? take_id(o, argv[optind]) : 0;
}

/* ---- reading the API ---- */

/* GET path: 0 with *out (new reference), 4 on 404 (quiet when quiet_404),
 * 1 after printing any other failure. */
static int get(const char *http, const char *path, int quiet_404, json_t **out)
{
    sb_http_resp r;
    json_error_t e;
    int rc = SB_EXIT_FAIL;
    *out = NULL;
    if (sb_http_client_request(http, "GET", path, NULL, 0, 30000, &r) < 0)
        goto done;
    if (r.status == 404 && quiet_404) {
        rc = SB_EXIT_REJECTED;
    } else if (r.status < 200 || r.status > 299) {
        sb_http_client_print_error(&r, path);
        rc = r.status == 404 ? SB_EXIT_REJECTED : SB_EXIT_FAIL;
    } else if ((*out = json_loadb((const char *)r.body.data, r.body.len, 0, &e)) == NULL) {
        fprintf(stderr, "switchboard: GET %s: the answer is not JSON: %s\n", path, e.text);
    } else {
        rc = SB_EXIT_OK;
    }
done:
    sb_http_resp_free(&r);
    return rc;
}

static const char *str(const json_t *ev, const char *key)
{
    const char *s = json_string_value(json_object_get(ev, key));
    return s ? s : "";
}

static long long num(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : json_is_true(v) ? 1 : 0;
}

static int has(const json_t *ev, const char *key)
{
    return json_object_get(ev, key) != NULL;
}

/* "'a', 'b'" from the event's "queues" list, or "no queue". */
static void queues(const json_t *ev, char *buf, size_t len)
{
    const json_t *qs = json_object_get(ev, "queues"), *q;
    size_t i, used = 0;
    buf[0] = '\0';
    json_array_foreach(qs, i, q) {
        int n = snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "", json_string_value(q));
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(buf, len, "no queue");
}

static const char *xname(const char *x)
{
    return x[0] ? x : "(default)";
}

/* "by 127.0.0.1:5555 (guest, ch 1)" */
static void who(const json_t *ev, char *buf, size_t len)
{
    if (!has(ev, "connection")) {
        buf[0] = '\0';
        return;
    }
    if (num(ev, "channel") > 0)
        snprintf(buf, len, " by %s (%s, ch %lld)", str(ev, "connection"), str(ev, "user"),
                 num(ev, "channel"));
    else
        snprintf(buf, len, " by %s (%s)", str(ev, "connection"), str(ev, "user"));
}

/* The words after the event's name. */
static void describe(const json_t *ev, char *out, size_t len)
{
    const char *k = str(ev, "event");
    char w[256], qs[512];
    who(ev, w, sizeof w);
    queues(ev, qs, sizeof qs);
    if (strcmp(k, "published") == 0)
        snprintf(out, len, "to exchange %s, key '%s', %lld B%s%s", xname(str(ev, "exchange")),
                 str(ev, "routing_key"), num(ev, "size"), num(ev, "persistent") ? ", persistent"
                                                                                : "", w);
    else if (strcmp(k, "routed") == 0)
        snprintf(out, len, "to %s", qs);
    else if (strcmp(k, "unroutable") == 0)
        snprintf(out, len, "exchange %s has no binding for key '%s': dropped",
                 xname(str(ev, "exchange")), str(ev, "routing_key"));
    else if (strcmp(k, "returned") == 0)
        snprintf(out, len, "to its publisher: %lld %s%s", num(ev, "reply_code"),
                 str(ev, "reply_text"), w);
    else if (strcmp(k, "delayed") == 0)
        snprintf(out, len, "held by exchange %s for %lld ms", xname(str(ev, "exchange")),
                 num(ev, "delay_ms"));
    else if (strcmp(k, "delivered") == 0 || strcmp(k, "got") == 0)
        snprintf(out, len, "from '%s'%s%s%s, delivery %lld%s", str(ev, "queue"),
                 has(ev, "consumer_tag") ? " to " : "", str(ev, "consumer_tag"), w,
                 num(ev, "delivery_count"), num(ev, "redelivered") ? " (redelivered)" : "");
    else if (strcmp(k, "acked") == 0 || strcmp(k, "rejected") == 0 ||
             strcmp(k, "requeued") == 0)
        snprintf(out, len, "in '%s'%s", str(ev, "queue"), w);
    else if (strcmp(k, "expired") == 0)
        snprintf(out, len, "in '%s' (TTL)", str(ev, "queue"));
    else if (strcmp(k, "dead_lettered") == 0)
        snprintf(out, len, "from '%s' (%s) through exchange %s, key '%s', to %s",
                 str(ev, "queue"), str(ev, "reason"), xname(str(ev, "exchange")),
                 str(ev, "routing_key"), qs);
    else if (strcmp(k, "dropped") == 0)
        snprintf(out, len, "from '%s' (%s): no dead-letter exchange", str(ev, "queue"),
                 str(ev, "reason"));
    else if (strcmp(k, "retry_scheduled") == 0)
        snprintf(out, len, "retry %lld of %lld in '%s' after %lld ms", num(ev, "attempt"),
                 num(ev, "attempts"), str(ev, "queue"), num(ev, "delay_ms"));
    else if (strcmp(k, "released") == 0 && has(ev, "queue"))
        snprintf(out, len, "back in '%s' after its retry delay", str(ev, "queue"));
    else if (strcmp(k, "released") == 0)
        snprintf(out, len, "by exchange %s to %s", xname(str(ev, "exchange")), qs);
    else if (strcmp(k, "replied") == 0)
        snprintf(out, len, "to %s, correlation id '%s' (linked by %s)%s%s", str(ev, "reply_to"),
                 str(ev, "correlation_id"), str(ev, "linked_by"), w,
                 num(ev, "delivered_to_caller") ? "" : ": the caller is gone");
    else if (strcmp(k, "replayed") == 0)
        snprintf(out, len, "dead letter sent back (died in '%s', %s; %lld death%s so far)%s",
                 str(ev, "died_in"), str(ev, "reason"), num(ev, "deaths"),
                 num(ev, "deaths") == 1 ? "" : "s", w);
    else if (strcmp(k, "rpc_started") == 0)
        snprintf(out, len, "HTTP call to queue '%s', deadline %lld ms%s", str(ev, "queue"),
                 num(ev, "timeout_ms"), w);
    else if (strcmp(k, "rpc_answered") == 0)
        snprintf(out, len, "HTTP %lld, %lld B, after %.3f ms", num(ev, "status"),
                 num(ev, "size"), (double)num(ev, "duration_us") / 1000);
    else if (strcmp(k, "rpc_timeout") == 0)
        snprintf(out, len, "HTTP %lld: no reply within %lld ms", num(ev, "status"),
                 num(ev, "timeout_ms"));
    else
        snprintf(out, len, "%s", "");
}

static void print_event(const json_t *ev, long long t0_us)
{
    char words[1024];
    describe(ev, words, sizeof words);
    printf("  %+10.3f ms  %.8s  %-15s %s%s\n", (double)(num(ev, "ts_us") - t0_us) / 1000,
           str(ev, "span_id"), str(ev, "event"), words, num(ev, "truncated") ? " [cut]" : "");
}

static void print_header(const json_t *t)
{
    long long span = num(t, "last_seen_us") - num(t, "first_seen_us");
    printf("trace %s: %lld events over %.3f ms, status %s (%s)\n", str(t, "trace_id"),
           num(t, "event_count"), (double)span / 1000, str(t, "status"), str(t, "root"));
}

/* ---- running ---- */

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
    (void)sig;
    stop = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run_list(const trace_opts *o, const char *http)
{
    char path[64];
    json_t *list, *t;
    size_t i;
    snprintf(path, sizeof path, "/api/traces?limit=%" PRIu64, o->limit);
    int rc = get(http, path, 0, &list);
    if (rc != 0)
        return rc;
    if (json_array_size(list) == 0)
        printf("no traces yet: publish a message with a traceparent header\n");
    json_array_foreach(list, i, t)
        printf("%s  %5lld events  %-13s  %s\n", str(t, "trace_id"), num(t, "events"),
               str(t, "status"), str(t, "root"));
    json_decref(list);
    return SB_EXIT_OK;
}

/* The id of the most recently active trace into o. */
static int find_last(trace_opts *o, const char *http)
{
    json_t *list;
    int rc = get(http, "/api/traces?limit=1", 0, &list);
    if (rc != 0)
        return rc;
    if (json_array_size(list) == 0) {
        fprintf(stderr, "switchboard trace: the broker has no trace yet\n");
        json_decref(list);
        return SB_EXIT_REJECTED;
    }
    snprintf(o->idbuf, sizeof o->idbuf, "%s", str(json_array_get(list, 0), "trace_id"));
    o->id = o->idbuf;
    json_decref(list);
    return SB_EXIT_OK;
}

/* Prints the events of t (a line each, or a JSON object each with
 * as_json); updates *last_seq and *t0 (the first event's time, once
 * known). */
static void print_new(const json_t *t, int as_json, long long *t0, uint64_t *last_seq)
{
    const json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(t, "events"), i, ev) {
        if (*t0 < 0)
            *t0 = num(t, "first_seen_us");
        if (as_json) {
            json_dumpf(ev, stdout, JSON_COMPACT);
            printf("\n");
        } else {
            print_event(ev, *t0);
        }
        *last_seq = (uint64_t)num(ev, "seq");
    }
    fflush(stdout);
}

static int follow(const trace_opts *o, const char *http, const char *base)
{
    long long t0 = -1, deadline = o->timeout_ms ? now_ms() + (long long)o->timeout_ms : 0;
    uint64_t last_seq = 0;
    char path[128];
    signal(SIGINT, on_sigint);
    while (!stop && (deadline == 0 || now_ms() < deadline)) {
        json_t *t;
        snprintf(path, sizeof path, "%s?after=%" PRIu64, base, last_seq);
        int rc = get(http, path, 1, &t);
        if (rc == SB_EXIT_FAIL)
            return rc;
        if (rc == SB_EXIT_OK) {
            if (t0 < 0 && !o->json)
                print_header(t);
            print_new(t, o->json, &t0, &last_seq);
            json_decref(t);
        }
        sleep_ms(POLL_MS);
    }
    return SB_EXIT_OK;
}

int sb_cli_trace(int argc, char **argv)
{
    trace_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    const char *http = sb_http_client_url(o.http);
    if (o.list)
        return run_list(&o, http);
    if (o.last && (rc = find_last(&o, http)) != 0)
        return rc;
    char base[80];
    snprintf(base, sizeof base, "/api/traces/%s", o.id);
    if (o.follow)
        return follow(&o, http, base);
    json_t *t;
    if ((rc = get(http, base, 0, &t)) != 0)
        return rc;
    if (o.json) {
        json_dumpf(t, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        long long t0 = -1;
        uint64_t last = 0;
        print_header(t);
        print_new(t, 0, &t0, &last);
    }
    json_decref(t);
    return SB_EXIT_OK;
}
