/* client.h - shared helpers for the client subcommands (publish, consume,
 * call, respond, dlq, definitions, bench) over librabbitmq (rabbitmq-c
 * 0.11), and the command-line parsing they all do the same way.
 *
 * The client subcommands are a real, independent AMQP client: they talk to
 * the broker only over the wire, so they work the same against Switchboard
 * and RabbitMQ. Every failure is printed to stderr in one line that says
 * what went wrong and, where we can tell, what to do about it.
 *
 * Exit statuses shared by the subcommands (see SB_EXIT_*).
 */
#ifndef SB_CLI_CLIENT_H
#define SB_CLI_CLIENT_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "common/buf.h"

enum {
    SB_EXIT_OK = 0,
    SB_EXIT_FAIL = 1,      /* cannot connect, refused, channel error … */
    SB_EXIT_USAGE = 2,     /* bad arguments */
    SB_EXIT_TIMEOUT = 3,   /* consume --timeout expired, confirm never came */
    SB_EXIT_REJECTED = 4,  /* publish --confirm: nacked, or returned (--mandatory);
                            * call: no such queue (404, or returned 312 NO_ROUTE) */
    SB_EXIT_NO_CONSUMER = 5,  /* call: the queue has no consumer to answer */
};

#define SB_CLIENT_DEFAULT_URL "amqp://guest:guest@localhost:5672/"

/* The channel every client helper opens. */
#define SB_CLIENT_CHANNEL 1

typedef struct sb_client {
    amqp_connection_state_t conn;  /* NULL when closed */
    char where[300];               /* "host:port" for messages */
} sb_client;

/* The URL to use: url if not NULL, else $AMQP_URL if set and non-empty,
 * else SB_CLIENT_DEFAULT_URL. Borrowed (points at url, the environment or
 * a literal). */
const char *sb_client_url(const char *url);

/* Parses url (amqp_parse_url), connects with a timeout_ms connect and
 * handshake timeout (0 = library default), logs in with PLAIN, and opens
 * channel SB_CLIENT_CHANNEL. conn_name is sent as the connection_name
 * client property (shown by the broker's management API); may be NULL.
 * Returns 0, or -1 after printing why to stderr (c is then closed). */
int sb_client_open(sb_client *c, const char *url, const char *conn_name, int timeout_ms);

/* Closes the connection politely (errors ignored) and frees
 * the connection. Safe on a closed client. */
void sb_client_close(sb_client *c);

/* Writes a readable description of r into buf (always NUL-terminated) and
 * returns buf. For a server close it includes the reply code, its name and
 * the server's text, e.g. "channel closed by the broker: 404 NOT_FOUND -
 * no queue 'q' in vhost '/'". */
const char *sb_client_reply_str(amqp_rpc_reply_t r, char *buf, size_t n);

/* If r is not a normal reply, prints "switchboard: <what>: <reason>" to
 * stderr and returns -1; otherwise returns 0. */
int sb_client_check(amqp_rpc_reply_t r, const char *what);

/* Checks the reply of the last synchronous call on c (amqp_get_rpc_reply),
 * as sb_client_check. Use after amqp_queue_declare() and friends. */
int sb_client_check_last(sb_client *c, const char *what);

/* Prints "switchboard: <what>: <library error>" for a negative librabbitmq
 * status code and returns -1. */
int sb_client_lib_error(int status, const char *what);

/* "RabbitMQ 3.10.8": product and version from connection.start's server
 * properties, with characters unsafe in JSON replaced by '?'. */
void sb_client_server_name(sb_client *c, char *buf, size_t n);

/* Reads the frame that made amqp_consume_message return UNEXPECTED_STATE
 * (not a delivery) and decides for a consumer: 0 to go on (another kind of
 * frame), or -1 (printed) when the connection is gone (lost_what), the
 * broker cancelled the consumer (cancel_msg, printed as given), or it
 * closed the channel or connection (fail_what). */
int sb_client_other_frame(sb_client *c, const char *lost_what, const char *cancel_msg,
                          const char *fail_what);

/* Name of an AMQP reply code ("NOT_FOUND"), or "UNKNOWN". Static string. */
const char *sb_client_reply_name(int code);

/* Parses a non-negative decimal integer in [min, max] for option opt.
 * Prints a usage error and returns -1 on failure. */
int sb_client_parse_u64(const char *s, const char *opt, uint64_t min, uint64_t max,
                        uint64_t *out);

/* Parses a duration for option opt: "250ms", "5s", "2m", or a plain number
 * of seconds; a fraction is allowed ("1.5s", "0.25"). The result, in
 * milliseconds, must lie in [1, max_ms]. Prints a usage error and returns
 * -1 on failure. */
int sb_client_parse_duration_ms(const char *s, const char *opt, uint64_t max_ms,
                                uint64_t *out);

/* Appends the message body to body: arg itself, or all of standard input
 * when arg is NULL or "-" (with a hint on a terminal). cmd names the
 * subcommand in messages. Returns 0, or -1 after printing why. */
int sb_client_read_body(const char *arg, sb_buf *body, const char *cmd);

/* Checks whether queue exists with a passive queue.declare on
 * SB_CLIENT_CHANNEL. Returns 1 and sets *consumers (may be NULL) if it
 * does; 0 if the broker answered 404 NOT_FOUND, after reopening the channel
 * the broker closed; -1 after printing any other failure. */
int sb_client_queue_probe(sb_client *c, const char *queue, uint32_t *consumers);

/* amqp_bytes_t view of a NUL-terminated string (no copy; borrowed). */
amqp_bytes_t sb_client_bytes(const char *s);

/* Publisher-confirm bookkeeping for one channel in confirm mode: which
 * delivery tags the broker has settled (acked or nacked). Tags start at 1.
 * At most `window` publishes may be outstanding; a ring of that size keeps
 * the settled flags of the tags at and above `low`. */
typedef struct sb_confirms {
    uint64_t next_tag;   /* tag of the next publish */
    uint64_t low;        /* every tag below low is settled */
    uint64_t window;
    uint8_t *settled;    /* ring of window flags, indexed by tag % window */
    uint64_t acks, nacks, returns;
    char last_return[256];  /* "312 NO_ROUTE - NO_ROUTE (exchange 'x', key 'k')" */
} sb_confirms;

/* Sends confirm.select and sets up cf for up to window outstanding
 * publishes. Returns 0, or -1 after printing why. */
int sb_confirms_start(sb_client *c, sb_confirms *cf, uint64_t window);
void sb_confirms_free(sb_confirms *cf);

/* Call after each successful amqp_basic_publish on the confirm channel. */
static inline void sb_confirms_published(sb_confirms *cf) { cf->next_tag++; }

static inline uint64_t sb_confirms_outstanding(const sb_confirms *cf)
{
    return cf->next_tag - cf->low;
}

/* Reads acks, nacks and returns from the broker until at most max_out
 * publishes are outstanding. timeout_ms bounds the wait for each frame
 * (0 = forever). Returns 0; -1 on a connection or channel error (printed);
 * SB_EXIT_TIMEOUT (as a negative, -SB_EXIT_TIMEOUT) when no frame came in
 * time. Nacks and returns are counted, not treated as errors. */
int sb_confirms_wait(sb_client *c, sb_confirms *cf, uint64_t max_out, int timeout_ms);

/* Writes b as-is to stdout, then a newline when nl. */
void sb_client_print_bytes(amqp_bytes_t b, int nl);

/* ---- command-line parsing ------------------------------------------- */

/* What an apply function (sb_client_cmd.apply) returns besides 0, "option
 * taken", and an exit status, "bad value, and I printed why". */
enum {
    SB_CLIENT_OPT_HELP = -1,     /* -h / --help: print the usage text */
    SB_CLIENT_OPT_UNKNOWN = -2,  /* not an option of this command */
};

/* One subcommand's options: a static const row in the subcommand's file. */
typedef struct sb_client_cmd {
    const char *name;               /* "publish": names the command in messages */
    const char *shortopts;          /* getopt_long's optstring, e.g. "hv" */
    const struct option *longopts;  /* NULL-terminated */
    /* Applies option opt to opts (the command's own struct). opt is
     * getopt_long's return value, '?' (unknown option or missing value)
     * included; the option's value is in optarg. Returns 0, an
     * SB_CLIENT_OPT_* value, or an exit status after printing why. */
    int (*apply)(void *opts, int opt);
    const char *usage;              /* the --help text */
} sb_client_cmd;

/* Resets GNU getopt (optind = 0, opterr = 0: we word the errors) and hands
 * each option in argv[1..argc) to cmd->apply, stopping at the first
 * non-zero result. Operands are permuted to the end, as getopt_long does.
 * Returns 0, with optind indexing the first operand; SB_CLIENT_OPT_HELP
 * after printing cmd->usage to stdout; SB_EXIT_USAGE after printing
 * "switchboard NAME: unknown option or missing value: ARG" for
 * SB_CLIENT_OPT_UNKNOWN; or the exit status apply returned. */
int sb_client_parse_args(const sb_client_cmd *cmd, int argc, char **argv, void *opts);

/* Prints "switchboard NAME: MESSAGE" and the line "(try `switchboard NAME
 * --help`)" to stderr, MESSAGE formatted from fmt as by printf. Returns
 * SB_EXIT_USAGE. */
int sb_client_usage_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For commands whose first argument names a subcommand (dlq list,
 * definitions export): with no argument, prints usage to stderr and
 * returns SB_EXIT_USAGE; with "-h" or "--help" first, prints it to stdout
 * and returns SB_CLIENT_OPT_HELP; otherwise returns 0. */
int sb_client_sub_help(int argc, char **argv, const char *usage);

/* Appends kv, a --header value of the form KEY=VALUE (KEY not empty), to
 * headers[0..*n), which holds at most max; kv is borrowed (from argv).
 * Returns 0, or SB_EXIT_USAGE after a usage error naming command name. */
int sb_client_add_header(const char *name, const char **headers, int *n, int max,
                         const char *kv);

/* Sets p's headers to the n KEY=VALUE strings in headers (as checked by
 * sb_client_add_header), as string fields, if n > 0. The table's entries
 * are written to entries[0..n) and point into headers: both are borrowed
 * for as long as p is used. */
void sb_client_set_headers(amqp_basic_properties_t *p, const char *const *headers, int n,
                           amqp_table_entry_t *entries);

#endif /* SB_CLI_CLIENT_H */
