/* http_int.h - shared between the files of src/http: the server and
 * request structs, the route table and the reply helpers handlers use.
 *
 * A handler runs on the loop thread once the whole request is in (headers
 * checked, credentials accepted, body within the limit and, for routes that
 * take JSON, parsed). It answers with sb_http__reply_json or
 * sb_http__reply_error, either before returning or later (for a call that
 * waits on an AMQP reply): a request left unanswered is suspended in MHD
 * and resumed by the reply.
 */
#ifndef SB_HTTP_INT_H
#define SB_HTTP_INT_H

#include <jansson.h>
#include <microhttpd.h>

#include "http.h"
#include "../broker/json_table.h"
#include "../common/arena.h"
#include "../common/list.h"
#include "../common/map.h"
#include "../common/str.h"

#define SB_HTTP__MAX_DAEMONS 8
#define SB_HTTP__MAX_PARAMS 4
#define SB_HTTP__PRODUCT "Switchboard"
/* The same string the AMQP side puts in server-properties (session's
 * SB_VERSION); one shared header for it belongs in common/. */
#define SB_HTTP__VERSION "0.1.0"
#define SB_HTTP__REALM "Switchboard"
/* The node name the management API and /metrics report (RabbitMQ's
 * rabbit@host); one node, so also the cluster name. */
#define SB_HTTP__NODE SB_NODE_NAME

typedef struct sb_http_req sb_http_req;
typedef struct sb_http_call sb_http_call;
typedef struct sb_http_wait sb_http_wait;

/* Method bits, so one route row can accept several. */
enum {
    SB_HTTP_GET = 1u << 0,
    SB_HTTP_HEAD = 1u << 1,
    SB_HTTP_POST = 1u << 2,
    SB_HTTP_PUT = 1u << 3,
    SB_HTTP_DELETE = 1u << 4,
    SB_HTTP_OTHER = 1u << 5,
};

typedef void (*sb_http_handler)(sb_http_req *r);

/* Who may use a route (RabbitMQ management's rules). The values line up
 * with the boolean "public" rows once had: false (0) is the default,
 * true (1) public. */
typedef enum sb_http_level {
    SB_HTTP_MANAGEMENT = 0,    /* a user with a management tag: management, policymaker,
                                  monitoring or administrator */
    SB_HTTP_PUBLIC = 1,        /* no credentials needed */
    SB_HTTP_ADMIN,             /* a user with the administrator tag */
    SB_HTTP_ANY_USER,          /* any user; permissions decide (Switchboard's RPC bridge) */
    SB_HTTP_MONITOR,           /* monitoring or administrator (node figures, traces) */
} sb_http_level;

typedef struct sb_http_route {
    unsigned methods;          /* SB_HTTP_* bits; GET routes answer HEAD too */
    const char *pattern;       /* "/api/queues/{vhost}/{name}": {x} matches one segment.
                                  A {vhost} is always the first capture: a user who is not
                                  an administrator needs permissions there (else 401) */
    sb_http_handler fn;
    sb_http_level level;
    bool takes_json;           /* a non-empty body must be JSON (else 400), in r->json */
} sb_http_route;

typedef struct sb_http_daemon {
    sb_http *h;
    struct MHD_Daemon *d;
    sb_io io;                  /* MHD's epoll descriptor in our loop */
    bool is_tls;               /* HTTPS */
    char name[88];             /* "127.0.0.1:15672", "https://[::1]:15671" */
} sb_http_daemon;

struct sb_http {
    sb_loop *loop;
    sb_broker *broker;
    uint16_t port;
    uint16_t tls_port;         /* HTTPS, 0 when off */
    char *tls_cert;            /* PEM text for MHD, or NULL */
    char *tls_key;
    bool tls13_only;
    size_t max_body_bytes;
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    bool loopback_users_only;  /* default_user from loopback peers only */
    bool is_starting;          /* MHD's messages are warnings only while starting */
    char default_user[64];
    sb_http_daemon daemons[SB_HTTP__MAX_DAEMONS];
    int ndaemons;
    sb_timer run_timer;        /* from MHD_get_timeout: when MHD_run is due */
    sb_timer sweep_timer;      /* header/body deadlines, once a second while needed */
    sb_list conns;             /* sb_http_conn, every open connection */
    sb_list suspended;         /* sb_http_req waiting for a late reply */
    sb_list durable_waits;     /* sb_http_wait: publishes waiting for the disk */
    sb_map rpcs;               /* vhost name -> sb_http_rpc (api_rpc.c), made on first call */
    struct {                   /* REST-to-RPC bridge counters, for /metrics */
        uint64_t calls, replies, timeouts, late_replies;
    } rpc_stats;
    char describe[256];
};

/* Per TCP connection (MHD's socket context): the header/body deadlines. */
typedef struct sb_http_conn {
    sb_list node;              /* in sb_http.conns */
    int fd;
    uint64_t phase_start_ms;   /* when the current phase began */
    bool is_in_body;           /* headers done, body being received */
    bool is_answering;         /* request complete, handler working: no deadline here */
    bool is_shut;              /* deadline passed; socket shut down */
    bool is_tls;               /* HTTPS: no plaintext 408 on a timeout */
    char peer[64];
} sb_http_conn;

struct sb_http_req {
    sb_list node;              /* in sb_http.suspended while is_suspended */
    sb_http *h;
    struct MHD_Connection *conn;
    sb_http_conn *hc;          /* may be NULL if MHD gave no socket context */
    const sb_http_route *route;
    unsigned method;           /* one SB_HTTP_* bit */
    const char *method_name;   /* borrowed from MHD, valid for the request */
    char *path;                /* the decoded segments the params point into */
    sb_str params[SB_HTTP__MAX_PARAMS];
    size_t nparams;
    uint8_t *body;
    size_t body_len;
    size_t body_cap;
    json_t *json;              /* parsed body for takes_json routes, or NULL */
    bool is_peer_loopback;
    bool is_too_large;         /* body over the limit: discarded, then 413 */
    bool is_dispatched;        /* the handler has run */
    bool is_suspended;
    bool is_queued;            /* the answer is with MHD */
    struct MHD_Response *resp; /* the answer, once there is one */
    unsigned status;
    char user[128];            /* authenticated user */
    unsigned tags;             /* the user's SB_TAG_* bits */
    sb_access access;          /* the user's permissions in the path's vhost, if it has one */
    sb_http_call *call;        /* the RPC this request waits on (api_rpc.c), or NULL */
    sb_http_wait *wait;        /* its publish waiting for the disk, or NULL */
};

/* ---- router.c ---- */
/* Finds the route for path and method. Returns the route with r->params
 * filled (percent-decoded, views into r->path), or NULL with *status set
 * to 404 (no such path), 405 (path known, method not: *allow gets the
 * Allow header value) or 400 (malformed percent-encoding). */
const sb_http_route *sb_http__route(sb_http_req *r, const char *url, unsigned *status,
                                    char *allow, size_t allow_len);
/* SB_HTTP_* bit for an HTTP method name. */
unsigned sb_http__method_bit(const char *name);

/* ---- request.c ---- */
/* MHD's access handler, notify-completed and notify-connection hooks. */
enum MHD_Result sb_http__access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls);
void sb_http__completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe);
void sb_http__conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe);

/* Answers r with status and body (compact JSON, Content-Type
 * application/json). Takes ownership of body, even on failure. Once per
 * request; a second answer is ignored. */
void sb_http__reply_json(sb_http_req *r, unsigned status, json_t *body);
/* A JSON response (Content-Type application/json) for sb_http__reply_response,
 * when a handler adds headers of its own. Takes ownership of body, even on
 * failure. Returns NULL when out of memory. */
struct MHD_Response *sb_http__json_response(json_t *body);
/* Answers r with a response the handler built. Takes ownership of resp
 * (NULL counts as an answer that fails the request). Once per request; a
 * second answer is ignored. May resume r; never frees it. */
void sb_http__reply_response(sb_http_req *r, unsigned status, struct MHD_Response *resp);
/* Answers r with status and no body (204 No Content). */
void sb_http__reply_empty(sb_http_req *r, unsigned status);
/* Answers r with RabbitMQ's error shape {"error":error,"reason":reason}. */
void sb_http__reply_error(sb_http_req *r, unsigned status, const char *error, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

/* ---- http.c ---- */
/* Runs MHD on every daemon soon (after a resume, from outside MHD_run). */
void sb_http__kick(sb_http *h);
/* d is one of h's HTTPS daemons. */
bool sb_http__daemon_is_tls(const sb_http *h, const struct MHD_Daemon *d);

/* ---- durable_wait.c ---- */
/* Leaves r unanswered until the store reports pos durable; then answers
 * {"routed": routed}. */
void sb_http__wait_durable(sb_http_req *r, uint64_t pos, bool routed);
/* r is going away unanswered (the client left). */
void sb_http__wait_abandon(sb_http_req *r);

/* ---- api_publish.c: messages built from HTTP requests ---- */
/* Fills *out from RabbitMQ management's "properties" object (NULL: none).
 * Strings are views into props, headers entries come from a. Returns 0, or
 * -1 with why set (a wrong type, a short string over 255 bytes). */
int sb_http__props_from_json(const json_t *props, sb_amqp_props *out, sb_arena *a, char *why,
                             size_t why_len);
/* A complete message for sb_publish: p encoded, body copied. Returns a new
 * reference, or NULL when out of memory. */
sb_msg *sb_http__msg_new(const sb_amqp_props *p, sb_str exchange, sb_str rk, const void *body,
                         size_t body_len);

/* ---- api_traces.c ---- */
/* r's client as traces name it: connection "HTTP <peer>" (written into
 * buf), r's user, channel 0. who borrows buf and r. */
void sb_http__trace_who(sb_http_req *r, sb_trace_who *who, char *buf, size_t len);

/* ---- api_rpc.c ---- */
/* r is being freed while its call waits: forget the call (a late reply is
 * then dropped). */
void sb_http__call_abandon(sb_http_req *r);
/* v is being deleted: its RPC channel goes, its waiting calls get 503. */
void sb_http__rpc_vhost_gone(sb_http *h, sb_vhost *v);
/* Frees every vhost's RPC channel; after the daemons are stopped. */
void sb_http__rpc_stop(sb_http *h);

/* Message properties in management's JSON shape (a new reference). */
json_t *sb_http__props_to_json(const sb_amqp_props *p);

/* ---- api_stats.c: message_stats objects ---- */
#define SB_HTTP_STAT_BIT(s) (1u << (s))
/* deliver, deliver_no_ack, get, get_no_ack, get_empty, ack, redeliver
 * (and deliver_get, their sum) */
#define SB_HTTP_STATS_OUT                                                                        \
    (SB_HTTP_STAT_BIT(SB_STAT_DELIVER) | SB_HTTP_STAT_BIT(SB_STAT_DELIVER_NO_ACK) |              \
     SB_HTTP_STAT_BIT(SB_STAT_GET) | SB_HTTP_STAT_BIT(SB_STAT_GET_NO_ACK) |                      \
     SB_HTTP_STAT_BIT(SB_STAT_GET_EMPTY) | SB_HTTP_STAT_BIT(SB_STAT_ACK) |                       \
     SB_HTTP_STAT_BIT(SB_STAT_REDELIVER))
#define SB_HTTP_STATS_QUEUE (SB_HTTP_STATS_OUT | SB_HTTP_STAT_BIT(SB_STAT_PUBLISH))
#define SB_HTTP_STATS_ALL                                                                        \
    (SB_HTTP_STATS_QUEUE | SB_HTTP_STAT_BIT(SB_STAT_CONFIRM) |                                   \
     SB_HTTP_STAT_BIT(SB_STAT_RETURN_UNROUTABLE) | SB_HTTP_STAT_BIT(SB_STAT_DROP_UNROUTABLE))
/* {"rate": rate} */
json_t *sb_http__rate_json(double rate);
/* The counters of st named in which (SB_HTTP_STAT_BIT mask), each with
 * its _details rate; deliver_get too when which has SB_HTTP_STATS_OUT. */
json_t *sb_http__message_stats(const sb_msg_stats *st, unsigned which);
/* ---- api_nodes.c ---- */
/* Adds RabbitMQ's churn counters (connection_created, ...) to o; returns o. */
json_t *sb_http__churn_json(const sb_broker *b, json_t *o);
uint64_t sb_http__open_fds(void);
uint64_t sb_http__max_fds(void);
/* ---- api_get.c ---- */
/* p[0..n) in base64 as a JSON string (a new reference). */
json_t *sb_http__base64_json(const uint8_t *p, size_t n);

/* ---- ui.c and ui_gen.c: the dashboard's files, compiled in ---- */
typedef struct sb_http_ui_file {
    const char *name;          /* "index.html", "app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} sb_http_ui_file;
extern const sb_http_ui_file sb_http__ui_files[];
extern const size_t sb_http__ui_nfiles;

/* ---- the handlers (one file per resource family) ---- */
void sb_http__api_overview(sb_http_req *r);
void sb_http__api_vhosts(sb_http_req *r);
void sb_http__api_vhost_put(sb_http_req *r);
void sb_http__api_vhost_delete(sb_http_req *r);
void sb_http__api_whoami(sb_http_req *r);
void sb_http__api_users(sb_http_req *r);
void sb_http__api_user_put(sb_http_req *r);
void sb_http__api_user_delete(sb_http_req *r);
void sb_http__api_users_without_permissions(sb_http_req *r);
void sb_http__api_users_bulk_delete(sb_http_req *r);
void sb_http__api_permissions(sb_http_req *r);
void sb_http__api_permission_put(sb_http_req *r);
void sb_http__api_permission_delete(sb_http_req *r);
void sb_http__api_topic_permissions(sb_http_req *r);
void sb_http__api_health_ok(sb_http_req *r);
void sb_http__api_queues(sb_http_req *r);
void sb_http__api_queue_put(sb_http_req *r);
void sb_http__api_queue_delete(sb_http_req *r);
void sb_http__api_queue_purge(sb_http_req *r);
void sb_http__api_exchanges(sb_http_req *r);
void sb_http__api_exchange_put(sb_http_req *r);
void sb_http__api_exchange_delete(sb_http_req *r);
void sb_http__api_bindings(sb_http_req *r);
void sb_http__api_publish(sb_http_req *r);
void sb_http__api_rpc(sb_http_req *r);
void sb_http__api_definitions(sb_http_req *r);
void sb_http__api_definitions_import(sb_http_req *r);
void sb_http__api_dlq(sb_http_req *r);
void sb_http__api_policies(sb_http_req *r);
void sb_http__api_policy(sb_http_req *r);
void sb_http__api_dlq_replay(sb_http_req *r);
void sb_http__api_traces(sb_http_req *r);
void sb_http__api_connections(sb_http_req *r);
void sb_http__api_connection(sb_http_req *r);
void sb_http__api_conn_channels(sb_http_req *r);
void sb_http__api_channels(sb_http_req *r);
void sb_http__api_channel(sb_http_req *r);
void sb_http__api_consumers(sb_http_req *r);
void sb_http__api_queue_bindings(sb_http_req *r);
void sb_http__api_exchange_bindings_source(sb_http_req *r);
void sb_http__api_exchange_bindings_destination(sb_http_req *r);
void sb_http__api_queue_get(sb_http_req *r);
void sb_http__api_nodes(sb_http_req *r);
void sb_http__api_aliveness(sb_http_req *r);
void sb_http__api_health_alarms(sb_http_req *r);
void sb_http__api_metrics(sb_http_req *r);
void sb_http__ui(sb_http_req *r);

/* ---- api_common.c: helpers the management handlers share ---- */
/* The vhost named by r->params[0], or NULL after answering 404. */
sb_vhost *sb_http__vhost_or_404(sb_http_req *r);
/* RabbitMQ's 404 for a missing object: {"error":"Object Not Found","reason":"Not Found"}. */
void sb_http__reply_not_found(sb_http_req *r);
/* True when r's user may see v in listings: administrators and
 * monitoring users see every vhost, others those they have permissions
 * in (RabbitMQ's list_visible_vhosts). */
bool sb_http__vhost_visible(sb_http_req *r, const sb_vhost *v);
/* True when r's user may see connection c (and its channels):
 * administrators and monitoring users see all, others their own. */
bool sb_http__conn_visible(sb_http_req *r, const sb_bconn *c);
/* sb_broker_each_vhost over the vhosts r's user may see. */
void sb_http__each_visible_vhost(sb_http_req *r, void (*fn)(sb_vhost *v, void *ud), void *ud);
/* r's permissions in vhost v, for checks with sb_access_check (set up on
 * first use; freed with the request). */
sb_access *sb_http__perms(sb_http_req *r, const sb_vhost *v);
/* A refused publish, as RabbitMQ management answers it: 400 with the AMQP
 * error in the reason ("403 ACCESS_REFUSED - access to exchange ..."). */
void sb_http__reply_amqp_error(sb_http_req *r, int code, const sb_error *err);
/* A refused operation the API runs as the caller on a channel of its own
 * (basic.get, the aliveness test): 401 {"error":"not_authorised"} with the
 * AMQP refusal, "ACCESS_REFUSED - access to queue ...", as its reason. */
void sb_http__reply_refused(sb_http_req *r, const sb_error *err);
/* Answers a broker error as RabbitMQ management maps AMQP errors: 404
 * not_found, 401 for access refused, else 400 bad_request, with the
 * broker's text (no "NOT_FOUND - " prefix) as the reason. */
void sb_http__reply_broker_error(sb_http_req *r, int code, const sb_error *err);
/* Sorts a JSON array of objects by their "vhost" then "name" strings
 * (RabbitMQ's default order for listings). */
void sb_http__sort_by_name(json_t *arr);
/* A body boolean: absent is def; not a boolean sets *bad. */
bool sb_http__json_bool(const json_t *obj, const char *key, bool def, bool *bad);
/* "tags" as RabbitMQ takes them (a comma-separated string or a list of
 * strings) into buf, comma-separated; false for any other value or when
 * they do not fit. */
bool sb_http__json_tags(const json_t *t, char *buf, size_t len);

#endif /* SB_HTTP_INT_H */
