/* config.h - every option in one table: name, type, bounds, default and a
 * doc line. Sources, later ones winning: defaults, the config file
 * (`key = value` lines, # comments), command-line flags. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_config {
    char bind[256];             /* comma-separated addresses */
    uint32_t amqp_port;
    uint32_t http_port;
    uint32_t http_header_timeout_ms;
    uint32_t http_body_timeout_ms;
    uint64_t http_max_body_bytes;
    char data_dir[256];
    uint32_t frame_max;
    uint32_t channel_max;
    uint32_t heartbeat;
    uint32_t max_connections;
    uint64_t max_message_bytes;
    uint32_t queue_memory_window;
    uint32_t handshake_timeout_ms;
    uint32_t consumer_timeout_ms;
    char default_user[64];
    char default_pass[64];
    bool loopback_users_only;
    char log_level[16];
    uint64_t memory_high_watermark;
    uint32_t memory_check_ms;
    uint32_t stats_interval_ms;
    uint64_t disk_free_limit;
    uint32_t trace_max_events;
    /* TLS: off unless certfile and keyfile are set */
    uint32_t amqps_port;
    char ssl_certfile[512];
    char ssl_keyfile[512];
    char ssl_cacertfile[512];
    char ssl_verify[16];        /* verify_none | verify_peer */
    bool ssl_fail_if_no_peer_cert;
    char ssl_min_version[16];   /* tlsv1.2 | tlsv1.3 */
    uint32_t management_ssl_port;
    char management_ssl_certfile[512];
    char management_ssl_keyfile[512];
} sb_config;

typedef enum sb_opt_type { SB_OPT_U32, SB_OPT_U64, SB_OPT_BOOL, SB_OPT_STR } sb_opt_type;

typedef struct sb_option {
    const char *name;           /* file key, e.g. "amqp.frame_max" */
    const char *flag;           /* command-line flag, e.g. "--amqp-port", or NULL */
    sb_opt_type type;
    size_t off;                 /* offsetof(sb_config, field) */
    size_t size;                /* for strings: buffer size */
    uint64_t min, max;          /* for numbers */
    const char *def;            /* default, as text */
    const char *doc;
} sb_option;

extern const sb_option sb_options[];
extern const size_t sb_options_count;

/* Fills c with every default. */
void sb_config_defaults(sb_config *c);
/* Sets option name (file key or flag) to value; 0, or -1 with a message
 * in err (what is wrong and what is allowed). */
int sb_config_set(sb_config *c, const char *name, const char *value, char *err, size_t errlen);
/* Reads a config file; 0, or -1 with "FILE:LINE: message" in err. */
int sb_config_load(sb_config *c, const char *path, char *err, size_t errlen);
/* Writes the option table as documentation (for --help). */
void sb_config_print_help(void *stream);
/* Writes docs/configuration.md: every option as a Markdown table row. */
void sb_config_print_markdown(void *stream);

#endif /* SB_CONFIG_H */
