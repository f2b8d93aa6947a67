/* serve.c - `switchboard serve`: builds the broker from the config, opens
 * the listeners and runs the loop until SIGTERM/SIGINT, then closes every
 * connection with 320 CONNECTION_FORCED. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "serve_store.h"
#include "../broker/broker.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/mem.h"
#include "../config/config.h"
#include "../http/http.h"
#include "../net/net.h"
#include "../session/session.h"

#define MAX_LISTENERS 8
#define SHUTDOWN_GRACE_MS 2000

typedef struct serve_ctx {
    sb_serve_store store;
    sb_loop *loop;
    sb_sessions *sessions;
    sb_listener *listeners[MAX_LISTENERS];
    int nlisteners;
    bool stopping;
    sb_timer stop_timer;
    sb_http *http;
    sb_tls *tls;                /* AMQPS, or NULL */
} serve_ctx;

static void
serve_usage(FILE *out)
{
    fprintf(out,
            "usage: switchboard serve [--config FILE] [--amqp-port N] [--http-port N]\n"
            "                         [--data-dir DIR] [--bind ADDR[,ADDR...]] [OPTION VALUE...]\n\n"
            "Runs the broker in the foreground, logging to stderr. SIGTERM or SIGINT\n"
            "closes every connection (320 CONNECTION_FORCED) and exits.\n"
            "Every option is also accepted as `KEY VALUE` and in the --config file as\n"
            "`key = value`; --options-markdown prints this list as docs/configuration.md.\n\n"
            "Options (config-file key, flag, default):\n");
    sb_config_print_help(out);
}

static int
parse_args(int argc, char **argv, sb_config *c)
{
    char err[512];

    sb_config_defaults(c);
    /* The config file first, so flags override it wherever they stand. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && sb_config_load(c, argv[i + 1], err, sizeof err) < 0) {
            fprintf(stderr, "switchboard: %s\n", err);
            return -1;
        }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--options-markdown") == 0) {
            sb_config_print_markdown(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "switchboard: %s needs a value (see `switchboard serve --help`)\n",
                    argv[i]);
            return -1;
        }
        if (strcmp(argv[i], "--config") != 0 && sb_config_set(c, argv[i], argv[i + 1], err, sizeof err) < 0) {
            fprintf(stderr, "switchboard: %s\n", err);
            return -1;
        }
        i++;
    }
    return 0;
}

static void
stop_now(sb_loop *l, sb_timer *t)
{
    sb_loop_stop(l);
}

/* Checks once per loop iteration whether shutdown can finish early. */
static void
before_sleep(sb_loop *l, void *arg)
{
    serve_ctx *ctx = arg;

    if (ctx->stopping && sb_sessions_count(ctx->sessions) == 0)
        sb_loop_stop(l);
}

static void
on_signal(sb_loop *l, void *arg)
{
    serve_ctx *ctx = arg;

    if (ctx->stopping) {
        sb_loop_stop(l);
        return;
    }
    sb_log(SB_LOG_INFO, "serve", "shutting down: closing %zu connection(s)",
           sb_sessions_count(ctx->sessions));
    ctx->stopping = true;
    for (int i = 0; i < ctx->nlisteners; i++)
        sb_listener_close(ctx->listeners[i]);
    ctx->nlisteners = 0;
    sb_sessions_shutdown(ctx->sessions, "broker forced connection closure with reason 'shutdown'");
    sb_timer_start(l, &ctx->stop_timer, SHUTDOWN_GRACE_MS);
}

/* Opens an AMQP listener (AMQPS with tls) on every bind address. Fails
 * only if none can be opened (a machine without IPv6 still serves
 * 127.0.0.1). */
static int
open_listeners(serve_ctx *ctx, const sb_config *c, uint32_t port_opt, sb_tls *tls)
{
    const char *what = tls ? "AMQPS" : "AMQP";
    char addrs[256], *save = NULL;
    uint16_t port = (uint16_t)port_opt;
    int opened = 0, last = 0;

    snprintf(addrs, sizeof addrs, "%s", c->bind);
    for (char *a = strtok_r(addrs, ",", &save); a && ctx->nlisteners < MAX_LISTENERS;
         a = strtok_r(NULL, ",", &save)) {
        sb_listener *ls;
        while (*a == ' ')
            a++;
        last = sb_listener_open(ctx->loop, a, port, sb_sessions_accept, ctx->sessions, &ls);
        if (last < 0) {
            sb_log(SB_LOG_WARN, "serve", "cannot listen on %s port %u: %s", a, port,
                   strerror(-last));
            continue;
        }
        if (tls != NULL)
            sb_listener_set_tls(ls, tls);
        /* With port 0 the first listener picks; the others follow it. */
        port = sb_listener_port(ls);
        sb_log(SB_LOG_INFO, "serve", "%s listening on %s%s%s:%u", what,
               strchr(a, ':') ? "[" : "", a, strchr(a, ':') ? "]" : "", port);
        ctx->listeners[ctx->nlisteners++] = ls;
        opened++;
    }
    if (opened == 0) {
        sb_log(SB_LOG_ERROR, "serve",
               "no %s listener could be opened on '%s' port %u: %s (is another broker "
               "running? choose another port with %s)",
               what, c->bind, port_opt, strerror(-last), tls ? "--amqps-port" : "--amqp-port");
        return -1;
    }
    return 0;
}

/* Checks that a certificate and its key are both set or both unset. */
static int
tls_files_set(const char *cert, const char *key, const char *cert_opt, const char *key_opt)
{
    if (cert[0] == '\0' && key[0] == '\0')
        return 0;
    if (cert[0] != '\0' && key[0] != '\0')
        return 1;
    sb_log(SB_LOG_ERROR, "serve", "%s is set but %s is not: TLS needs both",
           cert[0] ? cert_opt : key_opt, cert[0] ? key_opt : cert_opt);
    return -1;
}

/* ssl_options.min_version, for AMQPS and HTTPS: 0 and *tls13, or -1. */
static int
tls_min_version(const sb_config *c, bool *tls13)
{
    *tls13 = strcmp(c->ssl_min_version, "tlsv1.3") == 0;
    if (*tls13 || strcmp(c->ssl_min_version, "tlsv1.2") == 0)
        return 0;
    sb_log(SB_LOG_ERROR, "serve", "ssl_options.min_version: '%s' is not tlsv1.2 or tlsv1.3",
           c->ssl_min_version);
    return -1;
}

/* The AMQPS listeners, when ssl_options.certfile and keyfile are set. */
static int
open_tls_listeners(serve_ctx *ctx, const sb_config *c)
{
    sb_tls_opts o = { .certfile = c->ssl_certfile, .keyfile = c->ssl_keyfile,
                      .cacertfile = c->ssl_cacertfile,
                      .fail_if_no_peer_cert = c->ssl_fail_if_no_peer_cert };
    char err[600];
    int on = tls_files_set(c->ssl_certfile, c->ssl_keyfile, "ssl_options.certfile",
                           "ssl_options.keyfile");

    if (on <= 0)
        return on;
    if (tls_min_version(c, &o.tls13_only) < 0)
        return -1;
    if (strcmp(c->ssl_verify, "verify_peer") == 0) {
        o.verify_peer = true;
    } else if (strcmp(c->ssl_verify, "verify_none") != 0) {
        sb_log(SB_LOG_ERROR, "serve", "ssl_options.verify: '%s' is not verify_none or "
               "verify_peer", c->ssl_verify);
        return -1;
    }
    if (sb_tls_new(&o, &ctx->tls, err, sizeof err) < 0) {
        sb_log(SB_LOG_ERROR, "serve", "AMQPS: %s", err);
        return -1;
    }
    return open_listeners(ctx, c, c->amqps_port, ctx->tls);
}

static int
open_http(serve_ctx *ctx, sb_broker *broker, const sb_config *c)
{
    sb_http_opts o = { .bind = c->bind, .port = (uint16_t)c->http_port,
                       .default_user = c->default_user, .default_pass = c->default_pass,
                       .loopback_users_only = c->loopback_users_only,
                       .header_timeout_ms = c->http_header_timeout_ms,
                       .body_timeout_ms = c->http_body_timeout_ms,
                       .max_body_bytes = (size_t)c->http_max_body_bytes };
    int rc = tls_files_set(c->management_ssl_certfile, c->management_ssl_keyfile,
                           "management.ssl.certfile", "management.ssl.keyfile");

    if (rc < 0)
        return -1;
    if (rc > 0) {
        if (tls_min_version(c, &o.tls13_only) < 0)
            return -1;
        o.tls_port = (uint16_t)c->management_ssl_port;
        o.tls_certfile = c->management_ssl_certfile;
        o.tls_keyfile = c->management_ssl_keyfile;
    }
    rc = sb_http_start(ctx->loop, broker, &o, &ctx->http);

    if (rc < 0) {
        if (o.tls_port != 0 || o.tls_certfile != NULL)
            sb_log(SB_LOG_ERROR, "serve", "the HTTP server could not start on '%s' (HTTP port "
                   "%u, HTTPS port %u): %s (see above)", c->bind, c->http_port,
                   c->management_ssl_port, strerror(-rc));
        else
            sb_log(SB_LOG_ERROR, "serve",
                   "no HTTP listener could be opened on '%s' port %u: %s (is another broker "
                   "running? choose another port with --http-port)",
                   c->bind, c->http_port, strerror(-rc));
        return -1;
    }
    sb_log(SB_LOG_INFO, "serve", "HTTP listening on %s", sb_http_describe(ctx->http));
    return 0;
}

static void
session_opts(const sb_config *c, sb_session_opts *o)
{
    memset(o, 0, sizeof *o);
    o->channel_max = (uint16_t)c->channel_max;
    o->frame_max = c->frame_max;
    o->heartbeat = (uint16_t)c->heartbeat;
    o->max_connections = c->max_connections;
    o->default_user = c->default_user;
    o->default_pass = c->default_pass;
    o->loopback_users_only = c->loopback_users_only;
    o->handshake_timeout_ms = c->handshake_timeout_ms;
    o->consumer_timeout_ms = c->consumer_timeout_ms;
    o->memory_high_watermark = c->memory_high_watermark
                                   ? c->memory_high_watermark
                                   : sb_mem_total() / 10 * 4;
    o->memory_check_ms = c->memory_check_ms;
    o->disk_free_limit = c->disk_free_limit;
    o->data_dir = c->data_dir;
}

/* Raises the open-files limit to its hard maximum: every connection is a
 * descriptor, and the default soft limit (often 1024) is far below what
 * a broker serves. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            sb_log(SB_LOG_WARN, "serve", "cannot raise the open-files limit: %s", strerror(errno));
    }
}

int
sb_cli_serve(int argc, char **argv)
{
    uint64_t t0 = sb_clock_us();
    sb_broker_limits lim;
    sb_session_opts so;
    serve_ctx ctx = { 0 };
    sb_broker *broker;
    sb_config c;
    int rc;

    if (parse_args(argc, argv, &c) < 0)
        return 2;
    if (sb_log_parse_level(c.log_level) >= 0)
        sb_log_set_level((sb_log_level)sb_log_parse_level(c.log_level));
    raise_fd_limit();
    if ((rc = sb_loop_new(&ctx.loop)) < 0) {
        sb_log(SB_LOG_ERROR, "serve", "cannot create the event loop: %s", strerror(-rc));
        return 1;
    }
    lim.max_message_bytes = c.max_message_bytes;
    lim.queue_memory_window = c.queue_memory_window;
    lim.trace_max_events = c.trace_max_events;
    lim.stats_interval_ms = c.stats_interval_ms;
    broker = sb_broker_new(&lim);
    sb_broker_set_loop(broker, ctx.loop);
    session_opts(&c, &so);
    ctx.sessions = sb_sessions_new(ctx.loop, broker, &so);
    sb_timer_init(&ctx.stop_timer, stop_now, &ctx);
    sb_loop_add_before_sleep(ctx.loop, before_sleep, &ctx);
    if (sb_loop_on_signal(ctx.loop, on_signal, &ctx) < 0 ||
        sb_serve_store_open(&ctx.store, ctx.loop, broker, ctx.sessions, c.data_dir) < 0) {
        rc = 1;
        goto out;
    }
    /* After the saved definitions: the default user is made on first
     * start only, as RabbitMQ's. */
    sb_broker_default_user(broker, c.default_user, c.default_pass);
    if (open_listeners(&ctx, &c, c.amqp_port, NULL) < 0 || open_tls_listeners(&ctx, &c) < 0 ||
        open_http(&ctx, broker, &c) < 0) {
        rc = 1;
        goto out;
    }
    ctx.store.http = ctx.http;
    sb_log(SB_LOG_INFO, "serve", "Switchboard ready in %.1f ms", (sb_clock_us() - t0) / 1000.0);
    rc = sb_loop_run(ctx.loop) < 0 ? 1 : 0;
    sb_log(SB_LOG_INFO, "serve", "stopped");
out:
    ctx.store.http = NULL;
    sb_http_stop(ctx.http);
    for (int i = 0; i < ctx.nlisteners; i++)
        sb_listener_close(ctx.listeners[i]);
    sb_sessions_free(ctx.sessions);
    sb_serve_store_close(&ctx.store);
    sb_broker_free(broker);
    sb_loop_free(ctx.loop);
    sb_tls_free(ctx.tls);
    return rc;
}
