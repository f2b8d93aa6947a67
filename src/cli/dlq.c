/* dlq.c - `switchboard dlq list|show|replay`: dead-letter tooling (issue 5).
 *
 * show and replay are plain AMQP 0-9-1 clients (librabbitmq), so they work
 * the same against Switchboard and RabbitMQ; list reads the management
 * API (GET /api/queues, /api/exchanges, /api/bindings), which both serve.
 *
 * Nothing is lost, by construction:
 * - show takes up to N messages with basic.get *without* ack and then
 *   closes the connection, so the broker requeues all of them, in order,
 *   with redelivered=true (the only trace a look leaves).
 * - replay takes one message at a time (basic.get, no ack), republishes it
 *   through the default exchange to its target queue with mandatory=true
 *   on a channel in confirm mode, and acks it in the dead-letter queue
 *   only after the broker confirmed the republish without returning it.
 *   A returned or nacked message stays unacked until the end, so the next
 *   basic.get cannot fetch it again, and is then requeued with one
 *   basic.nack(multiple, requeue): it keeps its place in the queue.
 *   A crash between the confirm and the ack duplicates a message (it is in
 *   both queues); it never loses one.
 * Runs on the CLI's only thread.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/http_client.h"
#include "cli/table.h"
#include "common/alloc.h"

#define PREVIEW_BYTES 200
#define CONFIRM_TIMEOUT_MS 10000

typedef struct dlq_opts {
    const char *cmd;        /* "show", "replay", "list" */
    const char *url;        /* AMQP URL */
    const char *http;       /* management API URL */
    const char *queue;      /* show/replay: the DLQ; list: optional filter */
    const char *to;         /* replay --to */
    uint64_t limit;         /* 0 = the command's default */
} dlq_opts;

static const char usage_text[] =
    "usage: switchboard dlq list [QUEUE] [--http URL]\n"
    "       switchboard dlq show QUEUE [--limit N] [--url URL]\n"
    "       switchboard dlq replay QUEUE [--to Q] [--limit N] [--url URL]\n"
    "\n"
    "Dead-letter tooling.\n"
    "\n"
    "  list    every queue that has an x-dead-letter-exchange, the queues its dead\n"
    "          letters reach (through the DLX's bindings, taking\n"
    "          x-dead-letter-routing-key into account) and how many messages they\n"
    "          hold. With QUEUE, only the rows naming it. Reads the HTTP API.\n"
    "  show    prints the first N dead letters of QUEUE (default 10): a body preview\n"
    "          (first 200 bytes, non-printable bytes escaped) and the x-death\n"
    "          history in words. Nothing is removed: the messages are fetched with\n"
    "          basic.get without ack and the connection is then closed, so the\n"
    "          broker requeues them in their order. They come back marked\n"
    "          redelivered=true.\n"
    "  replay  sends dead letters back to the queue they died in (the \"queue\" of\n"
    "          the newest x-death entry) or to --to Q, through the default\n"
    "          exchange, mandatory and with publisher confirms. Properties, headers\n"
    "          and body are kept as they are, x-death included (as a shovel-based\n"
    "          replay in RabbitMQ does), so a message that dies again shows its\n"
    "          whole history. Each message is acked in QUEUE only once its\n"
    "          republish was confirmed and not returned; one that was returned\n"
    "          (its target queue is gone) or nacked stays in QUEUE, in its place,\n"
    "          and is reported. Default: the messages QUEUE holds when replay\n"
    "          starts.\n"
    "\n"
    "options:\n"
    "  --limit N     at most N messages\n"
    "  --to Q        replay: send every message to queue Q instead\n"
    "  --url URL     AMQP URL (default: $AMQP_URL, else " SB_CLIENT_DEFAULT_URL ")\n"
    "  --http URL    management API (default: $HTTP_URL, else\n"
    "                " SB_HTTP_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help    this text\n"
    "\n"
    "exit status: 0 done; 1 connection or broker error (e.g. no such queue);\n"
    "2 bad arguments; 4 replay left some messages in QUEUE.\n"
    "\n"
    "examples:\n"
    "  switchboard dlq list\n"
    "  switchboard dlq show orders.dlq --limit 3\n"
    "  switchboard dlq replay orders.dlq\n"
    "  switchboard dlq replay orders.dlq --to orders.retry --limit 100\n";

enum { OPT_URL = 256, OPT_HTTP, OPT_LIMIT, OPT_TO };

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "http", required_argument, NULL, OPT_HTTP },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "to", required_argument, NULL, OPT_TO },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Which options each subcommand takes, so a stray one is an error. */
static int opt_allowed(const char *cmd, int opt)
{
    if (strcmp(cmd, "list") == 0)
        return opt == OPT_HTTP;
    if (strcmp(cmd, "show") == 0)
        return opt == OPT_URL || opt == OPT_LIMIT;
    return opt == OPT_URL || opt == OPT_LIMIT || opt == OPT_TO;
}

/* sb_client_cmd.apply for dlq, after the subcommand word. */
static int apply_opt(void *opts, int opt)
{
    dlq_opts *o = opts;
    if (opt == 'h')
        return SB_CLIENT_OPT_HELP;
    if (opt == '?' || !opt_allowed(o->cmd, opt))
        return SB_CLIENT_OPT_UNKNOWN;
    switch (opt) {
    case OPT_URL: o->url = optarg; return 0;
    case OPT_HTTP: o->http = optarg; return 0;
    case OPT_TO: o->to = optarg; return 0;
    case OPT_LIMIT:
        return sb_client_parse_u64(optarg, "--limit", 1, UINT32_MAX, &o->limit) ? 2 : 0;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
}

static const sb_client_cmd dlq_cmd = { "dlq", "h", long_opts, apply_opt, usage_text };

/* Returns 0, SB_CLIENT_OPT_HELP after printing --help, or an exit status. */
static int parse_args(dlq_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    int rc = sb_client_sub_help(argc, argv, usage_text);
    if (rc != 0)
        return rc;
    o->cmd = argv[1];
    if (strcmp(o->cmd, "list") != 0 && strcmp(o->cmd, "show") != 0 &&
        strcmp(o->cmd, "replay") != 0)
        return sb_client_usage_error("dlq", "unknown command '%s' (list, show or replay)",
                                     o->cmd);
    rc = sb_client_parse_args(&dlq_cmd, argc - 1, argv + 1, o);
    if (rc != 0)
        return rc;
    int rest = argc - 1 - optind;
    if (rest == 1)
        o->queue = argv[1 + optind];
    if (rest > 1 || (rest == 0 && strcmp(o->cmd, "list") != 0))
        return sb_client_usage_error("dlq", "%s expects one QUEUE", o->cmd);
    return 0;
}

/* ---- reading the x-death headers ---- */

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == kl && memcmp(t->entries[i].key.bytes, key, kl) == 0)
            return &t->entries[i].value;
    return NULL;
}

/* The string value of key in t into buf ("" when absent or not a string). */
static const char *table_str(const amqp_table_t *t, const char *key, char *buf, size_t n)
{
    const amqp_field_value_t *v = t ? table_get(t, key) : NULL;
    buf[0] = '\0';
    if (v != NULL && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
        snprintf(buf, n, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
    return buf;
}

static int64_t field_int(const amqp_field_value_t *v)
{
    if (v == NULL)
        return -1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: return v->value.i8;
    case AMQP_FIELD_KIND_U8: return v->value.u8;
    case AMQP_FIELD_KIND_I16: return v->value.i16;
    case AMQP_FIELD_KIND_U16: return v->value.u16;
    case AMQP_FIELD_KIND_I32: return v->value.i32;
    case AMQP_FIELD_KIND_U32: return v->value.u32;
    case AMQP_FIELD_KIND_I64: return v->value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return (int64_t)v->value.u64;
    default: return -1;
    }
}

/* The message's x-death array, or NULL. */
static const amqp_array_t *x_death(const amqp_basic_properties_t *p)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    const amqp_field_value_t *v = table_get(&p->headers, "x-death");
    return v != NULL && v->kind == AMQP_FIELD_KIND_ARRAY ? &v->value.array : NULL;
}

/* The newest x-death entry (RabbitMQ keeps the array newest first). */
static const amqp_table_t *newest_death(const amqp_basic_properties_t *p)
{
    const amqp_array_t *a = x_death(p);
    if (a == NULL || a->num_entries == 0 || a->entries[0].kind != AMQP_FIELD_KIND_TABLE)
        return NULL;
    return &a->entries[0].value.table;
}

static const struct {
    const char *reason;
    const char *words;
} reason_words[] = {
    { "rejected", "rejected from" },
    { "expired", "expired in" },
    { "maxlen", "dropped by the length limit of" },
    { "delivery_limit", "over the delivery limit of" },
};

static const char *reason_phrase(const char *reason)
{
    for (size_t i = 0; i < sizeof reason_words / sizeof reason_words[0]; i++)
        if (strcmp(reason, reason_words[i].reason) == 0)
            return reason_words[i].words;
    return NULL;
}

static void print_exchange_phrase(const char *exchange)
{
    if (exchange[0] == '\0')
        fputs("published to the default exchange", stdout);
    else
        printf("published to exchange '%s'", exchange);
}

static void print_keys(const amqp_field_value_t *v)
{
    if (v == NULL || v->kind != AMQP_FIELD_KIND_ARRAY || v->value.array.num_entries == 0)
        return;
    const amqp_array_t *a = &v->value.array;
    printf(" with key%s ", a->num_entries > 1 ? "s" : "");
    for (int i = 0; i < a->num_entries; i++) {
        const amqp_field_value_t *k = &a->entries[i];
        if (k->kind != AMQP_FIELD_KIND_UTF8 && k->kind != AMQP_FIELD_KIND_BYTES)
            continue;
        printf("%s'%.*s'", i ? ", " : "", (int)k->value.bytes.len,
               (const char *)k->value.bytes.bytes);
    }
}

static void print_time(int64_t t)
{
    char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0 || gmtime_r(&tt, &tm) == NULL)
        return;
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf(", last at %s", buf);
}

/* One x-death entry as a sentence: "rejected from queue 'orders'
 * (published to exchange 'shop' with key 'order.placed'), 2 times, last
 * at 2026-11-29 23:41:02 UTC". */
static void print_death(const amqp_table_t *d)
{
    char reason[64], queue[300], exchange[300], exp[64];
    table_str(d, "reason", reason, sizeof reason);
    table_str(d, "queue", queue, sizeof queue);
    table_str(d, "exchange", exchange, sizeof exchange);
    const char *words = reason_phrase(reason);
    if (words != NULL)
        printf("    %s queue '%s' (", words, queue);
    else
        printf("    dead-lettered (reason '%s') from queue '%s' (", reason, queue);
    print_exchange_phrase(exchange);
    print_keys(table_get(d, "routing-keys"));
    int64_t count = field_int(table_get(d, "count"));
    if (count >= 0)
        printf("), %" PRId64 " time%s", count, count == 1 ? "" : "s");
    else
        putchar(')');
    print_time(field_int(table_get(d, "time")));
    if (table_str(d, "original-expiration", exp, sizeof exp)[0] != '\0')
        printf(", original expiration %s ms", exp);
    putchar('\n');
}

static void print_first_death(const amqp_basic_properties_t *p)
{
    char reason[64], queue[300], exchange[300];
    const amqp_table_t *h = (p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL;
    if (table_str(h, "x-first-death-reason", reason, sizeof reason)[0] == '\0')
        return;
    table_str(h, "x-first-death-queue", queue, sizeof queue);
    table_str(h, "x-first-death-exchange", exchange, sizeof exchange);
    const char *words = reason_phrase(reason);
    printf("  first death: %s queue '%s' (", words ? words : reason, queue);
    print_exchange_phrase(exchange);
    puts(")");
}

/* Body preview: printable ASCII as is, the rest escaped. */
static void print_preview(amqp_bytes_t body)
{
    size_t n = body.len < PREVIEW_BYTES ? body.len : PREVIEW_BYTES;
    const unsigned char *b = body.bytes;
    printf("  body (%zu bytes%s): \"", body.len, n < body.len ? ", first 200 shown" : "");
    for (size_t i = 0; i < n; i++) {
        switch (b[i]) {
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '"': fputs("\\\"", stdout); break;
        default:
            if (b[i] >= 0x20 && b[i] < 0x7f)
                putchar(b[i]);
            else
                printf("\\x%02x", b[i]);
        }
    }
    puts(n < body.len ? "\"..." : "\"");
}

static void print_dead_letter(uint64_t n, const amqp_message_t *m)
{
    const amqp_basic_properties_t *p = &m->properties;
    printf("dead letter %" PRIu64, n);
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        printf(" (message-id '%.*s')", (int)p->message_id.len,
               (const char *)p->message_id.bytes);
    puts(":");
    print_preview(m->body);
    const amqp_array_t *a = x_death(p);
    if (a == NULL || a->num_entries == 0) {
        puts("  no x-death header: this message was not dead-lettered (published here "
             "directly?)");
        return;
    }
    puts("  history (newest first):");
    for (int i = 0; i < a->num_entries; i++)
        if (a->entries[i].kind == AMQP_FIELD_KIND_TABLE)
            print_death(&a->entries[i].value.table);
    print_first_death(p);
}

/* ---- basic.get ---- */

typedef struct got {
    uint64_t tag;
    uint32_t left;          /* messages still in the queue after this one */
    amqp_message_t msg;
} got;

/* basic.get without ack. Returns 1 (g filled), 0 (queue empty) or -1
 * (printed). */
static int get_one(sb_client *c, const char *queue, got *g)
{
    amqp_maybe_release_buffers(c->conn);
    amqp_rpc_reply_t r = amqp_basic_get(c->conn, SB_CLIENT_CHANNEL, sb_client_bytes(queue), 0);
    char what[400];
    snprintf(what, sizeof what, "cannot get from queue '%s'", queue);
    if (sb_client_check(r, what) != 0)
        return -1;
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    g->tag = ok->delivery_tag;
    g->left = ok->message_count;
    r = amqp_read_message(c->conn, SB_CLIENT_CHANNEL, &g->msg, 0);
    return sb_client_check(r, "reading a message") == 0 ? 1 : -1;
}

static int run_show(const dlq_opts *o)
{
    sb_client c;
    if (sb_client_open(&c, sb_client_url(o->url), "switchboard dlq show", 10000) != 0)
        return SB_EXIT_FAIL;
    uint64_t limit = o->limit ? o->limit : 10, n = 0;
    uint32_t left = 0;
    int rc = SB_EXIT_OK;
    while (n < limit) {
        got g;
        int r = get_one(&c, o->queue, &g);
        if (r < 0)
            rc = SB_EXIT_FAIL;
        if (r <= 0)
            break;
        n++;
        left = g.left;
        print_dead_letter(n, &g.msg);
        amqp_destroy_message(&g.msg);
    }
    if (rc == SB_EXIT_OK && n == 0)
        printf("queue '%s' is empty\n", o->queue);
    else if (rc == SB_EXIT_OK && left > 0)
        printf("(%" PRIu32 " more not shown; --limit N shows more)\n", left);
    fflush(stdout);
    /* Closing the connection requeues every message we got, in order. */
    sb_client_close(&c);
    return rc;
}

/* ---- replay ---- */

typedef struct replay_state {
    sb_confirms cf;
    uint64_t replayed, left;
    uint64_t last_held;      /* highest delivery tag kept unacked (left), 0 = none */
} replay_state;

static void report_left(const dlq_opts *o, const got *g, uint64_t n, const char *why)
{
    const amqp_basic_properties_t *p = &g->msg.properties;
    printf("left in '%s': dead letter %" PRIu64, o->queue, n);
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        printf(" (message-id '%.*s')", (int)p->message_id.len,
               (const char *)p->message_id.bytes);
    printf(": %s\n", why);
}

/* Republishes one message and waits for its confirm. Returns 1 if it was
 * routed and confirmed, 0 if returned or nacked (why filled), -1 on error. */
static int republish(sb_client *c, replay_state *st, const char *target, const got *g,
                     char *why, size_t why_len)
{
    uint64_t nacks = st->cf.nacks, returns = st->cf.returns;
    int rc = amqp_basic_publish(c->conn, SB_CLIENT_CHANNEL, amqp_empty_bytes,
                                sb_client_bytes(target), 1, 0, &g->msg.properties, g->msg.body);
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, "republish failed");
    sb_confirms_published(&st->cf);
    rc = sb_confirms_wait(c, &st->cf, 0, CONFIRM_TIMEOUT_MS);
    if (rc == -SB_EXIT_TIMEOUT) {
        fprintf(stderr, "switchboard dlq: no publisher confirm within %d s\n",
                CONFIRM_TIMEOUT_MS / 1000);
        return -1;
    }
    if (rc != 0)
        return -1;
    if (st->cf.returns != returns) {
        snprintf(why, why_len, "returned %s: no queue '%s' (use --to Q)", st->cf.last_return,
                 target);
        return 0;
    }
    if (st->cf.nacks != nacks) {
        snprintf(why, why_len, "the broker nacked the republish to '%s' (queue full?)", target);
        return 0;
    }
    return 1;
}

/* Replays one fetched message. Returns 0, or -1 on a connection error. */
static int replay_one(sb_client *c, const dlq_opts *o, replay_state *st, const got *g,
                      uint64_t n)
{
    char target[300], why[600];
    if (o->to != NULL)
        snprintf(target, sizeof target, "%s", o->to);
    else
        table_str(newest_death(&g->msg.properties), "queue", target, sizeof target);
    int r = 0;
    if (target[0] == '\0')
        snprintf(why, sizeof why, "no x-death header names its queue (use --to Q)");
    else if (strcmp(target, o->queue) == 0)
        snprintf(why, sizeof why, "its target is '%s' itself", target);
    else
        r = republish(c, st, target, g, why, sizeof why);
    if (r < 0)
        return -1;
    if (r == 0) {
        /* Held unacked until the end so basic.get cannot fetch it again. */
        st->left++;
        st->last_held = g->tag;
        report_left(o, g, n, why);
        return 0;
    }
    int rc = amqp_basic_ack(c->conn, SB_CLIENT_CHANNEL, g->tag, 0);
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, "basic.ack failed");
    st->replayed++;
    return 0;
}

static int replay_loop(sb_client *c, const dlq_opts *o, replay_state *st, uint64_t limit)
{
    for (uint64_t n = 1; n <= limit; n++) {
        got g;
        int r = get_one(c, o->queue, &g);
        if (r <= 0)
            return r;
        r = replay_one(c, o, st, &g, n);
        amqp_destroy_message(&g.msg);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int run_replay(const dlq_opts *o)
{
    sb_client c;
    if (sb_client_open(&c, sb_client_url(o->url), "switchboard dlq replay", 10000) != 0)
        return SB_EXIT_FAIL;
    replay_state st = { 0 };
    int rc = SB_EXIT_FAIL;
    uint64_t limit = o->limit;
    if (limit == 0) {
        /* What the queue holds now: a dead letter arriving during the
         * replay waits for the next one, and the loop is bounded. */
        amqp_queue_declare_ok_t *ok = amqp_queue_declare(
            c.conn, SB_CLIENT_CHANNEL, sb_client_bytes(o->queue), 1, 0, 0, 0, amqp_empty_table);
        char what[400];
        snprintf(what, sizeof what, "cannot find queue '%s'", o->queue);
        if (ok == NULL) {
            sb_client_check_last(&c, what);
            goto out;
        }
        limit = ok->message_count;
    }
    if (sb_confirms_start(&c, &st.cf, 1) != 0 || replay_loop(&c, o, &st, limit) != 0)
        goto out;
    /* Every tag up to last_held that is still unacked is a left one. */
    if (st.last_held != 0 &&
        amqp_basic_nack(c.conn, SB_CLIENT_CHANNEL, st.last_held, 1, 1) != AMQP_STATUS_OK) {
        fprintf(stderr, "switchboard dlq: basic.nack failed; the connection close requeues "
                        "the messages left\n");
        goto out;
    }
    rc = st.left > 0 ? SB_EXIT_REJECTED : SB_EXIT_OK;
out:
    printf("replayed %" PRIu64 ", left %" PRIu64 "\n", st.replayed, st.left);
    fflush(stdout);
    sb_confirms_free(&st.cf);
    sb_client_close(&c);
    return rc;
}

/* ---- list ---- */

/* Dot-separated words of a routing key or binding key. */
typedef struct words {
    int n;
    const char *w[64];
    size_t len[64];
} words;

static int split_words(const char *s, words *out)
{
    out->n = 0;
    for (;;) {
        if (out->n == 64)
            return -1;
        size_t l = strcspn(s, ".");
        out->w[out->n] = s;
        out->len[out->n++] = l;
        if (s[l] == '\0')
            return 0;
        s += l + 1;
    }
}

static int is_word(const words *x, int i, const char *w)
{
    return x->len[i] == strlen(w) && memcmp(x->w[i], w, x->len[i]) == 0;
}

/* AMQP topic matching from pattern word i and key word j: '*' is one
 * word, '#' zero or more. */
static int words_match(const words *p, int i, const words *k, int j)
{
    if (i == p->n)
        return j == k->n;
    if (is_word(p, i, "#"))
        return words_match(p, i + 1, k, j) || (j < k->n && words_match(p, i, k, j + 1));
    if (j == k->n)
        return 0;
    if (!is_word(p, i, "*") &&
        (p->len[i] != k->len[j] || memcmp(p->w[i], k->w[j], p->len[i]) != 0))
        return 0;
    return words_match(p, i + 1, k, j + 1);
}

static int topic_match(const char *pattern, const char *key)
{
    words p, k;
    if (split_words(pattern, &p) < 0 || split_words(key, &k) < 0)
        return 1;  /* too long to judge: list it rather than hide it */
    return words_match(&p, 0, &k, 0);
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The object of arr with this vhost and name, or NULL. */
static const json_t *find_named(const json_t *arr, const char *vhost, const char *name)
{
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
        if (strcmp(jstr(o, "vhost"), vhost) == 0 && strcmp(jstr(o, "name"), name) == 0)
            return o;
    return NULL;
}

/* Whether a dead letter re-published to an exchange of type with key dlrk
 * (NULL: the message's own routing key, unknown here) may follow a
 * binding with binding key bkey. */
static int binding_reached(const char *type, const char *bkey, const char *dlrk)
{
    if (dlrk == NULL)
        return 1;
    if (strcmp(type, "direct") == 0)
        return strcmp(bkey, dlrk) == 0;
    if (strcmp(type, "topic") == 0)
        return topic_match(bkey, dlrk);
    return 1;  /* fanout, headers (depends on the headers), plugins */
}

typedef struct list_ctx {
    json_t *queues, *exchanges, *bindings;
    json_t *rows;            /* arrays of 7 strings */
    const char *filter;      /* only rows naming this queue, or NULL */
} list_ctx;

static void add_row(list_ctx *x, const json_t *q, const char *dlx, const char *dlrk,
                    const char *dlq, const char *bkey, const char *note)
{
    const char *vhost = jstr(q, "vhost"), *name = jstr(q, "name");
    if (x->filter != NULL && strcmp(x->filter, name) != 0 && strcmp(x->filter, dlq) != 0)
        return;
    char msgs[32] = "";
    const json_t *target = dlq[0] ? find_named(x->queues, vhost, dlq) : NULL;
    if (json_is_integer(json_object_get(target, "messages")))
        snprintf(msgs, sizeof msgs, "%lld",
                 (long long)json_integer_value(json_object_get(target, "messages")));
    json_array_append_new(x->rows, json_pack("[s,s,s,s,s,s,s]", vhost, name,
                                             dlx[0] ? dlx : "(default)",
                                             dlrk ? dlrk : "(original key)", dlq, bkey,
                                             note ? note : msgs));
}

static void list_queue(list_ctx *x, const json_t *q)
{
    const json_t *args = json_object_get(q, "arguments");
    const json_t *dlx_j = json_object_get(args, "x-dead-letter-exchange");
    if (!json_is_string(dlx_j))
        return;
    const char *dlx = json_string_value(dlx_j), *vhost = jstr(q, "vhost");
    const char *dlrk = json_string_value(json_object_get(args, "x-dead-letter-routing-key"));
    if (dlx[0] == '\0') {  /* the default exchange: the queue named by the key */
        if (dlrk != NULL && find_named(x->queues, vhost, dlrk) != NULL)
            add_row(x, q, dlx, dlrk, dlrk, dlrk, NULL);
        else
            add_row(x, q, dlx, dlrk, "", "", "(no such queue: dead letters are dropped)");
        return;
    }
    const json_t *ex = find_named(x->exchanges, vhost, dlx);
    if (ex == NULL) {
        add_row(x, q, dlx, dlrk, "", "", "(no such exchange: dead letters are dropped)");
        return;
    }
    size_t i, before = json_array_size(x->rows);
    const json_t *b;
    int any = 0;
    json_array_foreach(x->bindings, i, b) {
        if (strcmp(jstr(b, "vhost"), vhost) != 0 || strcmp(jstr(b, "source"), dlx) != 0 ||
            strcmp(jstr(b, "destination_type"), "queue") != 0 ||
            !binding_reached(jstr(ex, "type"), jstr(b, "routing_key"), dlrk))
            continue;
        any = 1;
        add_row(x, q, dlx, dlrk, jstr(b, "destination"), jstr(b, "routing_key"), NULL);
    }
    if (!any && json_array_size(x->rows) == before)
        add_row(x, q, dlx, dlrk, "", "", "(no queue bound: dead letters are dropped)");
}

static const char *const list_head[7] = { "VHOST", "QUEUE", "DLX", "DL ROUTING KEY",
                                          "DEAD-LETTER QUEUE", "BINDING KEY", "MESSAGES" };

static int run_list(const char *http, const char *filter)
{
    list_ctx x = { .filter = filter, .rows = json_array() };
    int rc = SB_EXIT_FAIL;
    if ((x.queues = sb_http_client_get_json(http, "/api/queues")) == NULL ||
        (x.exchanges = sb_http_client_get_json(http, "/api/exchanges")) == NULL ||
        (x.bindings = sb_http_client_get_json(http, "/api/bindings")) == NULL)
        goto out;
    size_t i;
    const json_t *q;
    json_array_foreach(x.queues, i, q)
        list_queue(&x, q);
    if (json_array_size(x.rows) == 0)
        printf(filter ? "no dead-lettering involves queue '%s'\n"
                      : "no queue has an x-dead-letter-exchange%s\n", filter ? filter : "");
    else
        sb_cli_print_table(list_head, 7, x.rows);
    rc = SB_EXIT_OK;
out:
    json_decref(x.queues);
    json_decref(x.exchanges);
    json_decref(x.bindings);
    json_decref(x.rows);
    return rc;
}

int sb_cli_dlq(int argc, char **argv)
{
    dlq_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    if (strcmp(o.cmd, "show") == 0)
        return run_show(&o);
    if (strcmp(o.cmd, "replay") == 0)
        return run_replay(&o);
    return run_list(sb_http_client_url(o.http), o.queue);
}
