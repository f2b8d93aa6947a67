/* options.c - the option table. One row per option; docs/configuration.md
 * and `switchboard serve --help` are made from it. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#define U32(n, f, field, lo, hi, d, doc) \
    { n, f, SB_OPT_U32, offsetof(sb_config, field), 0, lo, hi, d, doc }
#define U64(n, f, field, lo, hi, d, doc) \
    { n, f, SB_OPT_U64, offsetof(sb_config, field), 0, lo, hi, d, doc }
#define STR(n, f, field, d, doc) \
    { n, f, SB_OPT_STR, offsetof(sb_config, field), sizeof(((sb_config *)0)->field), 0, 0, d, doc }
#define BOOL(n, f, field, d, doc) \
    { n, f, SB_OPT_BOOL, offsetof(sb_config, field), 0, 0, 1, d, doc }

const sb_option sb_options[] = {
    STR("bind", "--bind", bind, "127.0.0.1,::1",
        "Addresses to listen on, comma-separated (IPv4 or IPv6 literals)."),
    U32("amqp.port", "--amqp-port", amqp_port, 0, 65535, "5672",
        "AMQP 0-9-1 port (0 picks a free port and logs it)."),
    U32("http.port", "--http-port", http_port, 0, 65535, "15672",
        "HTTP port for management, REST and metrics (0 picks a free port)."),
    U32("http.header_timeout_ms", "--http-header-timeout-ms", http_header_timeout_ms, 100,
        3600000, "10000",
        "Time an HTTP client has to send a request's line and headers (also the keep-alive "
        "idle time); then 408 and the connection is closed."),
    U32("http.body_timeout_ms", "--http-body-timeout-ms", http_body_timeout_ms, 100, 3600000,
        "60000", "Time an HTTP client has to send a request's body; then 408."),
    U64("http.max_body_bytes", "--http-max-body", http_max_body_bytes, 1024, 1073741824,
        "20000000", "Largest HTTP request body (413 beyond), as RabbitMQ management's."),
    STR("data_dir", "--data-dir", data_dir, "./data", "Directory for durable state."),
    U32("amqp.frame_max", "--frame-max", frame_max, 4096, 1u << 20, "131072",
        "Largest AMQP frame accepted or sent, in bytes (negotiated down in connection.tune)."),
    U32("amqp.channel_max", "--channel-max", channel_max, 1, 65535, "2047",
        "Most channels per connection (negotiated in connection.tune)."),
    U32("amqp.heartbeat", "--heartbeat", heartbeat, 0, 65535, "60",
        "Heartbeat interval offered to clients, in seconds (0 disables)."),
    U32("amqp.max_connections", "--max-connections", max_connections, 0, 1000000, "10000",
        "Most simultaneous AMQP connections; further ones are refused (0: no limit)."),
    U64("max_message_bytes", "--max-message-bytes", max_message_bytes, 0, 536870912,
        "134217728", "Largest message body accepted, in bytes (RabbitMQ's default is 128 MiB)."),
    U32("queue.memory_window", "--queue-memory-window", queue_memory_window, 100, 100000000,
        "20000",
        "Ready messages a queue keeps in RAM; the messages past it wait on disk (persistent "
        "ones of durable queues in the log, the others in DATA_DIR/transient, removed at "
        "start-up) and are read back when consumers reach them. Priority queues keep all."),
    U32("amqp.handshake_timeout_ms", NULL, handshake_timeout_ms, 100, 600000, "10000",
        "Time a new connection has to finish the AMQP handshake, in milliseconds."),
    U32("consumer_timeout", "--consumer-timeout", consumer_timeout_ms, 0, UINT32_MAX, "1800000",
        "A delivery not acknowledged within this many milliseconds closes its channel with "
        "406 PRECONDITION_FAILED and requeues its messages, as RabbitMQ's consumer_timeout "
        "(checked every minute, or every timeout if shorter); 0 turns it off."),
    STR("default_user", NULL, default_user, "guest",
        "The user created on first start (tag administrator, every permission on vhost /); as "
        "in RabbitMQ, not created again once a user database exists in the data directory."),
    STR("default_pass", NULL, default_pass, "guest",
        "That user's password (only used when it is created)."),
    BOOL("loopback_users", NULL, loopback_users_only, "true",
         "Allow the default user to log in from loopback addresses only (as RabbitMQ)."),
    U64("memory.high_watermark_bytes", "--memory-high-watermark", memory_high_watermark, 0,
        UINT64_MAX, "0",
        "Memory in use above which publishing connections are blocked (connection.blocked); "
        "0 means 40% of the machine's memory, as RabbitMQ's default."),
    U32("memory.check_interval_ms", "--memory-check-ms", memory_check_ms, 10, 60000, "1000",
        "How often memory in use is compared with the high watermark, in milliseconds."),
    U64("disk.free_limit_bytes", "--disk-free-limit", disk_free_limit, 0, UINT64_MAX,
        "50000000",
        "Free space in the data directory's file system below which publishing connections "
        "are blocked (connection.blocked), as RabbitMQ's disk_free_limit; 0 disables."),
    U32("trace.max_events", "--trace-max-events", trace_max_events, 0, 4000000, "16384",
        "Events the per-action trace keeps in memory (traceparent headers, GET /api/traces), "
        "oldest overwritten first; about 320 bytes each (5.2 MiB at the default), reserved "
        "on the first traced message. 0 turns per-action tracing off."),
    U32("stats.interval_ms", "--stats-interval-ms", stats_interval_ms, 100, 3600000, "5000",
        "How often message counters are sampled into the rates the management API and the "
        "dashboard show, in milliseconds (RabbitMQ's collect_statistics_interval)."),
    STR("log_level", "--log-level", log_level, "info", "debug, info, warn or error."),
    /* TLS, named after RabbitMQ's listeners.ssl.default, ssl_options.* and
     * management.ssl.*. */
    U32("amqps.port", "--amqps-port", amqps_port, 0, 65535, "5671",
        "AMQPS (AMQP 0-9-1 over TLS) port, as RabbitMQ's listeners.ssl.default; the listener "
        "opens only when ssl_options.certfile and ssl_options.keyfile are set (0 picks a free "
        "port)."),
    STR("ssl_options.certfile", "--ssl-certfile", ssl_certfile, "",
        "PEM file with the server certificate (then any intermediates) for AMQPS; empty: no "
        "AMQPS listener."),
    STR("ssl_options.keyfile", "--ssl-keyfile", ssl_keyfile, "",
        "PEM file with the certificate's private key (not encrypted)."),
    STR("ssl_options.cacertfile", "--ssl-cacertfile", ssl_cacertfile, "",
        "PEM file with the CA certificates client certificates must chain to (for "
        "verify_peer)."),
    STR("ssl_options.verify", "--ssl-verify", ssl_verify, "verify_none",
        "verify_none: no client certificate is asked for; verify_peer: one is asked for and, if "
        "sent, must chain to ssl_options.cacertfile (a verified one allows SASL EXTERNAL)."),
    BOOL("ssl_options.fail_if_no_peer_cert", "--ssl-fail-if-no-peer-cert",
         ssl_fail_if_no_peer_cert, "false",
         "With verify_peer: refuse TLS clients that send no certificate."),
    STR("ssl_options.min_version", "--ssl-min-version", ssl_min_version, "tlsv1.2",
        "Oldest TLS version accepted, tlsv1.2 or tlsv1.3 (TLS 1.0 and 1.1 are always "
        "refused); for AMQPS and HTTPS."),
    U32("management.ssl.port", "--management-ssl-port", management_ssl_port, 0, 65535,
        "15671",
        "HTTPS port for management, REST and metrics, as RabbitMQ's management.ssl.port; opens "
        "only when management.ssl.certfile and keyfile are set (0 picks a free port)."),
    STR("management.ssl.certfile", "--management-ssl-certfile", management_ssl_certfile, "",
        "PEM file with the HTTPS server certificate (may be the same as ssl_options.certfile); "
        "empty: no HTTPS listener."),
    STR("management.ssl.keyfile", "--management-ssl-keyfile", management_ssl_keyfile, "",
        "PEM file with its private key (not encrypted)."),
};

const size_t sb_options_count = sizeof sb_options / sizeof sb_options[0];
