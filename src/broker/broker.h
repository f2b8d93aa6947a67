/* broker.h - the domain: vhosts, exchanges, bindings, queues, consumers,
 * deliveries and acknowledgements. The broker never parses bytes and never
 * sees a frame: the session decodes methods and calls in here; the broker
 * calls back through sb_consumer_ops to hand out deliveries.
 *
 * Everything runs on the loop thread. All state hangs off one sb_broker
 * created by `serve` and passed down; there are no globals.
 *
 * Errors: functions that can fail return 0 or an AMQP reply code and fill
 * the sb_error the caller passes with RabbitMQ's wording (without the
 * "NOT_FOUND - " prefix, which the session adds).
 */
#ifndef SB_BROKER_H
#define SB_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../amqp/amqp.h"
#include "../auth/auth.h"
#include "../common/error.h"
#include "../common/buf.h"
#include "../common/list.h"
#include "../common/map.h"
#include "../common/rc.h"
#include "../common/str.h"
#include "../net/net.h"
#include "traceparent.h"

typedef struct sb_broker sb_broker;
typedef struct sb_vhost sb_vhost;
typedef struct sb_exchange sb_exchange;
typedef struct sb_queue sb_queue;
typedef struct sb_msg sb_msg;
typedef struct sb_consumer sb_consumer;
typedef struct sb_bchan sb_bchan;
typedef struct sb_delivery sb_delivery;

/* ---- limits and settings the broker needs (filled from the config) ---- */
typedef struct sb_broker_limits {
    uint64_t max_message_bytes;   /* largest body accepted */
    uint32_t queue_memory_window; /* ready messages a queue keeps in RAM (0: 20000) */
    uint32_t trace_max_events;    /* per-action trace ring, in events (0: no tracing) */
    uint32_t stats_interval_ms;   /* message rate sampling (0: SB_STATS_DEFAULT_INTERVAL_MS) */
} sb_broker_limits;

/* ---- the root ---- */
/* New broker with the default vhost "/" and its predeclared exchanges. */
sb_broker *sb_broker_new(const sb_broker_limits *lim);
void sb_broker_free(sb_broker *b);
const sb_broker_limits *sb_broker_limits_get(const sb_broker *b);
/* Gives the broker a loop for its timers (message TTL, queue expiry).
 * Without one, expiry happens only when a queue is next touched. */
void sb_broker_set_loop(sb_broker *b, sb_loop *loop);
/* ---- durability (durable.c, durable_load.c) ----
 * With a data directory, durable definitions are saved there and
 * persistent messages in durable queues are logged in a store. Start-up
 * order: sb_broker_load_definitions, then sb_store_open with
 * sb_broker_recover_message as its on_recover callback, then
 * sb_broker_attach_store. */
typedef struct sb_store sb_store;
typedef struct sb_store_msg sb_store_msg;
/* Recreates the durable exchanges, queues and bindings saved in dir.
 * Returns 0 (also when nothing was saved yet) or -errno. */
int sb_broker_load_definitions(sb_broker *b, const char *dir);
/* Applies a RabbitMQ definitions document (a jansson json_t, typed void *
 * to keep jansson out of this header): vhosts must exist; exchanges,
 * queues and bindings are declared, existing ones and amq.* left alone.
 * Stops at the first error (0, or -1 with the reason in why), except
 * at_start, the load of the broker's own saved definitions, which logs
 * errors, goes on, and restores each object's log id. */
int sb_broker_import_definitions(sb_broker *b, const void *doc, bool at_start, char *why,
                                 size_t why_len);
/* An sb_store_recover_fn: arg is the broker. */
void sb_broker_recover_message(void *arg, const sb_store_msg *m);
/* Starts logging into st (borrowed until sb_broker_free, or until
 * attaching NULL, which stops logging). */
void sb_broker_attach_store(sb_broker *b, sb_store *st);
/* The store reports pos durable: queues past their memory window move
 * what is now on disk out of RAM. */
void sb_broker_durable(sb_broker *b, uint64_t pos);
/* Pages messages that have no log record (transient ones, and any in a
 * non-durable queue) out to files in dir when their queue is past its
 * memory window; removes the files a previous run left there. Returns 0,
 * or -errno (logged): then those messages all stay in RAM. */
int sb_broker_open_paging(sb_broker *b, const char *dir);
/* Paging files that exist and records live in them (for tests). */
void sb_broker_paging_stats(const sb_broker *b, uint32_t *files, uint64_t *live);
/* Saves changed definitions and starts a group commit: call before the
 * loop sleeps, before connections are flushed. */
void sb_broker_before_sleep(sb_broker *b);
/* The durable definitions as a RabbitMQ definitions document (a new
 * jansson reference, typed void * to keep jansson out of this header). */
void *sb_broker_definitions_json(sb_broker *b);

/* ---- vhosts, users and permissions (vhost.c) ----
 * The broker owns the user database (auth/): it saves it with the durable
 * definitions, drops a deleted vhost's permissions, and tells its watchers
 * (the AMQP sessions, the HTTP server) before a vhost or a user goes, so
 * they can close what they hold there. */

/* The vhost named name, or NULL. */
sb_vhost *sb_broker_vhost(sb_broker *b, sb_str name);
const char *sb_vhost_name(const sb_vhost *v);
/* Management metadata: description ("" when none) and comma-separated
 * tags ("" when none). Valid while v is. */
const char *sb_vhost_description(const sb_vhost *v);
const char *sb_vhost_tags(const sb_vhost *v);
size_t sb_broker_vhost_count(const sb_broker *b);

/* Creates vhost name, with its own default and amq.* exchanges, or
 * updates the metadata of an existing one (description and tags NULL:
 * left as they are). Returns 1 when created, 0 when it existed, -1 for
 * an empty name. */
int sb_broker_vhost_put(sb_broker *b, sb_str name, const char *description, const char *tags);
/* Deletes vhost name at runtime, as RabbitMQ does: its watchers first
 * (connections there are closed with 320), then every queue and exchange
 * in it, durable ones from disk too, and every permission in it. Returns
 * 0, or -1 when there is no such vhost. */
int sb_broker_vhost_delete(sb_broker *b, sb_str name);

/* The user database: borrowed, valid while b is. Changes to it are saved
 * with the definitions. */
sb_auth *sb_broker_auth(sb_broker *b);
/* Creates user with password (tag administrator, every permission on
 * "/") when there is no user database yet: on first start, or when the
 * saved definitions predate users. RabbitMQ creates its default user
 * only when its database is initialised, so a deleted guest stays
 * deleted. Does nothing otherwise, or when user is NULL or empty. */
void sb_broker_default_user(sb_broker *b, const char *user, const char *password);
/* Deletes user and its permissions, after telling the watchers (its
 * connections are closed with 320). Returns 0, or -1 when none. */
int sb_broker_user_delete(sb_broker *b, sb_str user);

typedef enum sb_broker_event {
    SB_BROKER_VHOST_DELETING,   /* v is about to be deleted; user is NULL */
    SB_BROKER_USER_DELETING,    /* user is about to be deleted; v is NULL */
} sb_broker_event;
typedef void (*sb_broker_watch_fn)(void *arg, sb_broker_event ev, sb_vhost *v,
                                   const char *user);
#define SB_BROKER_MAX_WATCHERS 4
/* fn(arg, ...) runs before each such deletion; arg must outlive b or be
 * unwatched. */
void sb_broker_watch(sb_broker *b, sb_broker_watch_fn fn, void *arg);
void sb_broker_unwatch(sb_broker *b, sb_broker_watch_fn fn, void *arg);

/* ---- messages ----
 * A message is stored once and shared, by reference count, by every
 * queue it was routed to and by every connection output queue that is
 * still writing its body. */
struct sb_msg {
    sb_rc rc;
    uint32_t body_len;       /* bodies are limited far below 4 GiB (max_message_bytes) */
    uint32_t props_len;      /* wire form of the properties (flags + list) */
    uint8_t exchange_len;
    uint8_t rk_len;
    uint8_t delivery_mode : 7; /* 2 = persistent */
    uint8_t traced : 1;      /* carries a valid traceparent and tracing is on (trace.c) */
    uint8_t priority;
    int32_t expiration_ms;   /* the expiration property, -1 when absent; at most
                                INT32_MAX (24.8 days): longer ones are cut to it */
    uint8_t data[];          /* props | exchange | routing key | body */
};
/* 32 bytes before the data: a small message fits a 64- or 80-byte heap
 * chunk (memory per queued message is a benchmark target). */
_Static_assert(sizeof(struct sb_msg) == 32, "sb_msg header grew");

/* New message with room for body_len bytes of body (filled by the caller
 * through sb_msg_body). Copies props, exchange and routing key.
 * Returns NULL if body_len is over the limit's allocation (sb_try_malloc).
 * New reference. */
sb_msg *sb_msg_new(sb_str props_raw, sb_str exchange, sb_str routing_key, uint64_t body_len,
                   uint8_t delivery_mode, uint8_t priority);
static inline sb_str sb_msg_props(const sb_msg *m) { return sb_str_make(m->data, m->props_len); }
static inline sb_str sb_msg_exchange(const sb_msg *m)
{
    return sb_str_make(m->data + m->props_len, m->exchange_len);
}
static inline sb_str sb_msg_rk(const sb_msg *m)
{
    return sb_str_make(m->data + m->props_len + m->exchange_len, m->rk_len);
}
/* The body: body_len bytes after the routing key (no pointer is kept, to
 * keep a queued message small). */
static inline uint8_t *sb_msg_body(const sb_msg *m)
{
    return (uint8_t *)m->data + m->props_len + m->exchange_len + m->rk_len;
}
static inline void sb_msg_set_expiration(sb_msg *m, int64_t ms)
{
    m->expiration_ms = ms < 0 ? -1 : ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
}
static inline sb_msg *sb_msg_ref(sb_msg *m) { sb_rc_ref(&m->rc); return m; }
static inline void sb_msg_unref(sb_msg *m) { if (m) sb_rc_unref(&m->rc); }

/* ---- exchanges ---- */
typedef struct sb_exchange_decl {
    sb_str name, type;
    bool passive, durable, auto_delete, internal;
    const sb_amqp_table *args;
    sb_access *access;      /* the declarer's permissions, checked in RabbitMQ's order
                               (configure; for a new exchange with an alternate exchange,
                               read it and write the AE); NULL: none checked */
} sb_exchange_decl;

int sb_exchange_declare(sb_vhost *v, const sb_exchange_decl *d, sb_error *err);
int sb_exchange_delete(sb_vhost *v, sb_str name, bool if_unused, sb_error *err);
/* Exchange-to-exchange binding (exchange.bind). */
int sb_exchange_bind(sb_vhost *v, sb_str dest, sb_str source, sb_str key,
                     const sb_amqp_table *args, bool unbind, sb_error *err);

/* ---- queues ---- */
typedef struct sb_queue_decl {
    sb_str name;            /* empty: server-named (amq.gen-...) */
    bool passive, durable, exclusive, auto_delete;
    const sb_amqp_table *args;
    const void *owner;      /* the declaring connection, for exclusive */
    bool restoring;         /* from a definitions document (ours at start-up, or an
                               import, RabbitMQ's exports included): a durable
                               server-named queue (amq.gen-...) comes back too, as
                               RabbitMQ's import declares it */
    sb_access *access;      /* the declarer's permissions, checked in RabbitMQ's order
                               (configure, on the generated name too; for a new queue with
                               a dead-letter exchange, read it and write the DLX); NULL:
                               none checked */
} sb_queue_decl;

typedef struct sb_queue_info {
    char name[256];
    uint32_t messages;      /* ready */
    uint32_t consumers;
} sb_queue_info;

int sb_queue_declare(sb_vhost *v, const sb_queue_decl *d, sb_queue_info *out, sb_error *err);
/* owner: the calling connection, checked against exclusive queues. */
int sb_queue_delete(sb_vhost *v, sb_str name, const void *owner, bool if_unused, bool if_empty,
                    uint32_t *count, sb_error *err);
int sb_queue_purge(sb_vhost *v, sb_str name, const void *owner, uint32_t *count, sb_error *err);
int sb_queue_bind(sb_vhost *v, sb_str queue, sb_str exchange, sb_str key,
                  const sb_amqp_table *args, const void *owner, bool unbind, sb_error *err);
/* Deletes every exclusive queue owned by owner (connection closed). */
void sb_vhost_drop_owner(sb_vhost *v, const void *owner);

/* ---- publishing ---- */
typedef struct sb_publish_result {
    bool routed;            /* reached at least one queue */
    bool rejected;          /* a queue refused it (x-overflow reject-publish): nack */
    uint64_t durable_pos;   /* store position to reach before confirming (0: none) */
} sb_publish_result;

/* Who does something, as traces name them: the connection ("127.0.0.1:
 * 51234" for AMQP, "HTTP 127.0.0.1:40112" for REST), the user and the
 * channel number (0 over HTTP). The strings are borrowed. */
typedef struct sb_trace_who {
    const char *connection;
    const char *user;
    uint16_t channel;
} sb_trace_who;

/* Checks that exchange exists and may be published to (404 / 403 for
 * internal), before the content arrives. */
int sb_publish_check(sb_vhost *v, sb_str exchange, sb_error *err);
/* Routes m (complete) from exchange with its routing key and headers to
 * queues and enqueues it; borrows m (queues take their own references).
 * who (may be NULL) is the publisher, for traces and the firehose. */
int sb_publish_as(sb_vhost *v, const sb_trace_who *who, sb_msg *m, const sb_amqp_table *headers,
                  sb_publish_result *res, sb_error *err);
/* sb_publish_as with no publisher to name. */
int sb_publish(sb_vhost *v, sb_msg *m, const sb_amqp_table *headers, sb_publish_result *res,
               sb_error *err);

/* ---- channels, consumers and deliveries ----
 * An sb_bchan is the broker's half of an AMQP channel: its delivery-tag
 * sequence, its unacknowledged deliveries and its prefetch limits. */
typedef struct sb_deliver_info {
    sb_str consumer_tag;    /* empty for basic.get */
    uint64_t delivery_tag;
    bool redelivered;
    uint32_t message_count; /* basic.get-ok only */
    sb_msg *msg;            /* borrowed for the call */
} sb_deliver_info;

typedef struct sb_consumer_ops {
    /* Hands one delivery to the client (encode basic.deliver + content). */
    void (*deliver)(sb_consumer *c, const sb_deliver_info *d, void *ud);
    /* False while the client cannot take more (its output is backed up). */
    bool (*writable)(sb_consumer *c, void *ud);
    /* The queue went away under the consumer (consumer-cancel-notify). */
    void (*cancelled)(sb_consumer *c, void *ud);
} sb_consumer_ops;

sb_bchan *sb_bchan_new(sb_broker *b, sb_vhost *v, const void *owner);
/* Names the channel in traces (deliveries, acks): connection and user are
 * borrowed and must outlive the channel. Unnamed channels show as "". */
void sb_bchan_set_who(sb_bchan *ch, const char *connection, const char *user, uint16_t channel);
const sb_trace_who *sb_bchan_who(const sb_bchan *ch);
/* Requeues every unacked delivery (in order, redelivered) and cancels the
 * channel's consumers without notification. */
void sb_bchan_free(sb_bchan *ch);
/* basic.qos. prefetch_size is not supported by RabbitMQ either (0 only). */
int sb_bchan_qos(sb_bchan *ch, uint32_t prefetch_size, uint16_t count, bool global, sb_error *err);

typedef struct sb_consume_req {
    sb_str queue;
    sb_str tag;              /* empty: server-generated amq.ctag-... */
    bool no_ack, exclusive;
    int32_t priority;        /* from x-priority */
    const sb_consumer_ops *ops;
    void *ud;
} sb_consume_req;

/* Registers a consumer; writes its tag (possibly generated) to tag_out
 * (256 bytes). Deliveries may start right away, but only after the caller
 * has sent consume-ok: the caller passes start=false and calls
 * sb_consumer_start after. */
int sb_bchan_consume(sb_bchan *ch, const sb_consume_req *r, char *tag_out, sb_consumer **out,
                     sb_error *err);
void sb_consumer_start(sb_consumer *c);
/* The consumer's tag; valid while the consumer is. */
sb_str sb_consumer_tag(const sb_consumer *c);
/* basic.cancel: returns false if no such tag (RabbitMQ replies cancel-ok anyway). */
bool sb_bchan_cancel(sb_bchan *ch, sb_str tag);
/* basic.get: 0 with d->msg NULL for get-empty, or 0 with d filled and
 * handed out through deliver_fn-free path (caller encodes get-ok). The
 * delivery is recorded as unacked unless no_ack. d->msg is a new
 * reference the caller must release. */
int sb_bchan_get(sb_bchan *ch, sb_str queue, bool no_ack, sb_deliver_info *d, sb_error *err);
/* ack / nack / reject. multiple with tag 0 means all. */
int sb_bchan_ack(sb_bchan *ch, uint64_t tag, bool multiple, sb_error *err);
int sb_bchan_nack(sb_bchan *ch, uint64_t tag, bool multiple, bool requeue, sb_error *err);
/* basic.recover / recover-async: requeue (or redeliver) all unacked. */
int sb_bchan_recover(sb_bchan *ch, bool requeue, sb_error *err);
/* Direct reply-to: the pseudo-queue a caller consumes (no-ack) and names
 * in reply_to; sb_bchan_consume accepts it as a queue name. */
#define SB_REPLY_TO_QUEUE "amq.rabbitmq.reply-to"
/* The node's name wherever RabbitMQ shows one (management API, metrics,
 * the firehose's "node" header, cluster_name): one single-node broker. */
#define SB_NODE_NAME "switchboard@localhost"
/* The address to put in reply_to for a request published on ch, or NULL
 * when ch has no direct reply-to consumer. Valid while the consumer is. */
const char *sb_bchan_reply_address(const sb_bchan *ch);

/* ---- policies (policy.c) ----
 * RabbitMQ's policies: settings applied to the queues and exchanges whose
 * names match a pattern. */
typedef struct sb_policy sb_policy;

/* Creates or replaces policy name in v from a JSON object (a json_t *,
 * borrowed; void * keeps jansson out of this header) in the management
 * API's shape: {"pattern": "^orders\\.", "definition": {...}, "priority": 0,
 * "apply-to": "all"|"queues"|"exchanges"}; applies it to the vhost's
 * queues and exchanges at once and saves it with the durable definitions.
 * Returns 0, or -1 with the reason in why (RabbitMQ's "Validation failed"
 * texts). */
int sb_policy_set(sb_vhost *v, const char *name, const void *json, char *why, size_t why_len);
/* Removes policy name; -1 when there is none. */
int sb_policy_delete(sb_vhost *v, const char *name);
/* Policy name of v as a JSON object (new reference), or NULL. */
void *sb_policy_json(sb_vhost *v, const char *name);
/* Appends every policy of v (JSON objects) to array (a json_t array). */
void sb_vhost_policies_json(sb_vhost *v, void *array);
/* The name of p, or NULL for no policy. */
const char *sb_policy_name(const sb_policy *p);
/* p's definition (new reference; an empty object for no policy). */
void *sb_policy_definition_json(const sb_policy *p);

/* When the oldest delivery on ch still waiting for its ack was made (the
 * loop's clock, ms), or 0 when none waits. Deliveries are tracked in tag
 * order, so this is the first one. */
uint64_t sb_bchan_oldest_delivery(const sb_bchan *ch);

/* channel.flow: active=false pauses deliveries on this channel. */
void sb_bchan_flow(sb_bchan *ch, bool active);
/* The client can take more again (its output drained): resume dispatch. */
void sb_bchan_resume(sb_bchan *ch);

/* ---- tracing (trace.c, trace_hooks.c, firehose.c) ----
 * Two ways to watch messages go by:
 * - RabbitMQ's firehose: with tracing on for a vhost, every publish and
 *   every delivery is copied to its amq.rabbitmq.trace exchange, exactly
 *   as RabbitMQ does it (routing keys "publish.<exchange>" and
 *   "deliver.<queue>", its headers, the original body). Off by default
 *   and not saved across restarts, as in RabbitMQ.
 * - per-action traces: a message whose headers carry a W3C traceparent
 *   records what happens to it (published, routed, delivered, acked,
 *   rejected, retried, dead-lettered, replied, ...) as events of its trace
 *   id, in a bounded in-memory ring of trace_max_events events. Each
 *   event costs a fixed-size slot; nothing is written to disk. */
void sb_vhost_set_tracing(sb_vhost *v, bool on);
bool sb_vhost_tracing(const sb_vhost *v);

/* What happened (one event). The names are in sb_trace_kind_name. */
typedef enum sb_trace_kind {
    SB_TRACE_PUBLISHED,
    SB_TRACE_ROUTED,
    SB_TRACE_UNROUTABLE,
    SB_TRACE_RETURNED,
    SB_TRACE_DELAYED,
    SB_TRACE_DELIVERED,
    SB_TRACE_GOT,
    SB_TRACE_ACKED,
    SB_TRACE_REJECTED,
    SB_TRACE_REQUEUED,
    SB_TRACE_EXPIRED,
    SB_TRACE_DEAD_LETTERED,
    SB_TRACE_DROPPED,
    SB_TRACE_RETRY_SCHEDULED,
    SB_TRACE_RELEASED,
    SB_TRACE_REPLIED,
    SB_TRACE_REPLAYED,
    SB_TRACE_RPC_STARTED,
    SB_TRACE_RPC_ANSWERED,
    SB_TRACE_RPC_TIMEOUT,
    SB_TRACE_KIND_COUNT,
} sb_trace_kind;

/* An event's attributes; the names are in sb_trace_key_name. SB_TK_QUEUES
 * may repeat (a list). */
typedef enum sb_trace_key {
    SB_TK_VHOST,
    SB_TK_EXCHANGE,
    SB_TK_ROUTING_KEY,
    SB_TK_QUEUE,
    SB_TK_QUEUES,
    SB_TK_QUEUE_COUNT,
    SB_TK_CONNECTION,
    SB_TK_USER,
    SB_TK_CHANNEL,
    SB_TK_CONSUMER_TAG,
    SB_TK_DELIVERY_TAG,
    SB_TK_REDELIVERED,
    SB_TK_DELIVERY_COUNT,
    SB_TK_PERSISTENT,
    SB_TK_SIZE,
    SB_TK_REASON,
    SB_TK_DELAY_MS,
    SB_TK_ATTEMPT,
    SB_TK_ATTEMPTS,
    SB_TK_REPLY_TO,
    SB_TK_CORRELATION_ID,
    SB_TK_LINKED_BY,
    SB_TK_DELIVERED_TO_CALLER,
    SB_TK_DIED_IN,
    SB_TK_DEATHS,
    SB_TK_STATUS,
    SB_TK_TIMEOUT_MS,
    SB_TK_DURATION_US,
    SB_TK_PATH,
    SB_TK_REPLY_CODE,
    SB_TK_REPLY_TEXT,
    SB_TK_COUNT,
} sb_trace_key;

const char *sb_trace_kind_name(sb_trace_kind k);
const char *sb_trace_key_name(sb_trace_key k);

/* True when per-action tracing is on (trace_max_events > 0). */
bool sb_trace_on(const sb_broker *b);
/* Flags m as traced when tracing is on and headers (may be NULL) carry a
 * valid traceparent: the one test the message path makes afterwards. */
void sb_trace_mark(sb_broker *b, sb_msg *m, const sb_amqp_table *headers);
/* The trace context in m's headers (OUT); false when it has none. */
bool sb_trace_ctx_of_msg(const sb_msg *m, sb_trace_ctx *out);

/* Recording an event from outside the broker (the HTTP bridge, the
 * session's basic.return): begin returns the event to add attributes to,
 * or NULL when tracing is off (the adders accept NULL). The event is in
 * the ring already; attributes that do not fit its slot are cut. Borrowed
 * until the next event is begun. */
typedef struct sb_trace_event sb_trace_event;
sb_trace_event *sb_trace_begin(sb_broker *b, const sb_trace_ctx *ctx, sb_trace_kind kind);
void sb_trace_str(sb_trace_event *e, sb_trace_key k, sb_str v);
void sb_trace_int(sb_trace_event *e, sb_trace_key k, int64_t v);
/* connection, user and channel of who (may be NULL: nothing added). */
void sb_trace_add_who(sb_trace_event *e, const sb_trace_who *who);

/* ---- reading traces (GET /api/traces) ---- */
typedef struct sb_trace_summary {
    uint8_t trace_id[16];
    uint64_t first_us, last_us;  /* wall clock, microseconds since the epoch */
    uint32_t events;             /* still in the ring */
    const char *status;          /* "ok", "retried", "unroutable", "dropped",
                                    "dead_lettered", "replayed", "timed_out" */
    char root[128];              /* its oldest event in the ring, in a few words:
                                    "rpc orders", "publish shop order.placed" */
} sb_trace_summary;

typedef struct sb_trace_view {
    uint64_t seq;                /* ring-wide event number, ascending */
    uint64_t ts_us;              /* wall clock, microseconds */
    sb_trace_kind kind;
    uint8_t span_id[8];
    bool truncated;              /* some attributes did not fit */
    const uint8_t *attrs;        /* encoded; read with sb_trace_attr_next */
    uint16_t attr_len;
} sb_trace_view;

typedef struct sb_trace_attr {
    sb_trace_key key;
    bool is_int;
    int64_t i;
    sb_str s;                    /* borrowed from the view */
} sb_trace_attr;

typedef struct sb_trace_stats {
    uint32_t capacity;           /* trace_max_events */
    uint32_t events;             /* in the ring now */
    uint32_t traces;             /* distinct trace ids in the ring */
    uint64_t recorded;           /* events ever recorded */
    uint64_t bytes;              /* memory reserved for ring and index */
} sb_trace_stats;

void sb_trace_stats_get(const sb_broker *b, sb_trace_stats *out);
/* Calls fn for every trace in the ring (no particular order). The
 * summary is borrowed for the call. */
void sb_trace_each(const sb_broker *b, void (*fn)(const sb_trace_summary *s, void *ud), void *ud);
/* Fills *sum (OUT) and calls fn for each event of trace_id with seq >
 * after_seq, oldest first. Views are borrowed for the call; fn must not
 * record events. Returns false when the ring holds no such trace. */
bool sb_trace_get(const sb_broker *b, const uint8_t trace_id[16], uint64_t after_seq,
                  sb_trace_summary *sum, void (*fn)(const sb_trace_view *ev, void *ud), void *ud);
/* Reads the attribute at *pos of ev and advances *pos; false at the end. */
bool sb_trace_attr_next(const sb_trace_view *ev, size_t *pos, sb_trace_attr *out);
/* ---- message statistics (stats.c) ----
 * RabbitMQ's message_stats: counters of messages moving, kept per vhost
 * (the global figures are the sum over vhosts), per queue and per broker
 * channel. They are plain increments on the loop thread. A loop timer
 * samples them every sb_broker_limits.stats_interval_ms (RabbitMQ's
 * collect_statistics_interval, 5 s) and keeps each one's rate per second
 * over the last interval. Counters only grow; an object's go with it. */
typedef enum sb_stat {
    SB_STAT_PUBLISH,            /* received from publishers (per queue: enqueued) */
    SB_STAT_PUBLISH_CONFIRM,    /* of those, on channels in confirm mode */
    SB_STAT_UNROUTABLE,         /* reached no queue */
    SB_STAT_CONFIRM,            /* confirmed (basic.ack) to publishers */
    SB_STAT_RETURN_UNROUTABLE,  /* unroutable, mandatory: basic.return */
    SB_STAT_DROP_UNROUTABLE,    /* unroutable, not mandatory: dropped */
    SB_STAT_DELIVER,            /* basic.deliver, manual ack */
    SB_STAT_DELIVER_NO_ACK,     /* basic.deliver, automatic ack */
    SB_STAT_GET,                /* basic.get-ok, manual ack */
    SB_STAT_GET_NO_ACK,         /* basic.get-ok, automatic ack */
    SB_STAT_GET_EMPTY,          /* basic.get-empty */
    SB_STAT_ACK,                /* acknowledged by consumers */
    SB_STAT_REDELIVER,          /* delivered or got with redelivered set */
    SB_STAT_DEAD_REJECTED,      /* dead-lettered to an exchange, by reason, */
    SB_STAT_DEAD_EXPIRED,       /* in sb_death order: */
    SB_STAT_DEAD_MAXLEN,
    SB_STAT_DEAD_DELIVERY_LIMIT,
    SB_STAT_DROP_REJECTED,      /* the same with no dead-letter exchange: dropped */
    SB_STAT_DROP_EXPIRED,
    SB_STAT_DROP_MAXLEN,
    SB_STAT_DROP_DELIVERY_LIMIT,
    SB_STAT_RETRY,              /* rejected, held for another try (x-retry-delays) */
    SB_STAT__COUNT
} sb_stat;

#define SB_STATS_DEFAULT_INTERVAL_MS 5000u

typedef struct sb_msg_stats {
    uint64_t n[SB_STAT__COUNT];     /* since the object was made */
    uint64_t last[SB_STAT__COUNT];  /* at the previous sample */
    float rate[SB_STAT__COUNT];     /* per second over the last interval */
} sb_msg_stats;

/* RabbitMQ's message_stats name for s ("publish", "deliver_no_ack", ...),
 * or NULL for Switchboard's own counters. */
const char *sb_stat_name(sb_stat s);
/* Counters summed over every vhost (OUT); rates too. */
void sb_broker_stats(const sb_broker *b, sb_msg_stats *out);
const sb_msg_stats *sb_vhost_stats(const sb_vhost *v);
/* Churn since start, as RabbitMQ's churn_rates and *_opened_total, with
 * rates sampled as the message counters are. */
typedef enum sb_churn {
    SB_CHURN_CONNECTION_CREATED,
    SB_CHURN_CONNECTION_CLOSED,
    SB_CHURN_CHANNEL_CREATED,
    SB_CHURN_CHANNEL_CLOSED,
    SB_CHURN_QUEUE_DECLARED,
    SB_CHURN_QUEUE_CREATED,
    SB_CHURN_QUEUE_DELETED,
    SB_CHURN__COUNT
} sb_churn;
typedef struct sb_broker_churn {
    uint64_t n[SB_CHURN__COUNT];
    uint64_t last[SB_CHURN__COUNT];
    float rate[SB_CHURN__COUNT];
} sb_broker_churn;
/* RabbitMQ's name for c ("connection_created", ...). */
const char *sb_churn_name(sb_churn c);
void sb_broker_churn_get(const sb_broker *b, sb_broker_churn *out);
/* The store the broker logs into, or NULL (for its statistics). */
const sb_store *sb_broker_store(const sb_broker *b);
/* Messages held for later right now (delayed exchanges and retries). */
uint64_t sb_broker_delayed_count(const sb_broker *b);
/* The milliseconds between samples; when the broker started (wall ms). */
uint32_t sb_broker_stats_interval(const sb_broker *b);
uint64_t sb_broker_started_at(const sb_broker *b);

/* The channel's counters. An sb_bchan begins with them (broker_int.h
 * asserts it), so the session's per-message increments cost no call. */
static inline sb_msg_stats *sb_bchan_stats(sb_bchan *ch) { return (sb_msg_stats *)(void *)ch; }
/* A message published on ch was routed (or not): counts the channel's
 * publish, confirm-mode publish, and return or drop of an unroutable one
 * (also in its vhost). NULL ch is a no-op. */
void sb_bchan_count_publish(sb_bchan *ch, bool confirm, bool mandatory, bool routed);
/* n publishes of ch were confirmed (channel and vhost). NULL ch: no-op. */
void sb_bchan_count_confirms(sb_bchan *ch, uint64_t n);

/* ---- resources, as the session's alarm checks last saw them ---- */
typedef struct sb_broker_resources {
    uint64_t mem_used, mem_limit;       /* bytes; limit 0: no watermark */
    uint64_t disk_free, disk_limit;     /* bytes; disk_free 0 when not checked */
    bool mem_alarm, disk_alarm;
} sb_broker_resources;
void sb_broker_set_resources(sb_broker *b, const sb_broker_resources *r);
const sb_broker_resources *sb_broker_resources_get(const sb_broker *b);

/* ---- client connections, as the management API lists them (stats.c) ----
 * The session embeds one sb_bconn in each AMQP connection, fills it in as
 * the handshake goes, and registers it from accept until the connection
 * is freed. The broker only lists them and calls back through ops. */
typedef struct sb_bconn sb_bconn;

/* One open channel of a connection, for /api/channels. */
typedef struct sb_chan_view {
    uint16_t number;
    bool confirm, transactional;
    uint64_t unconfirmed;           /* published in confirm mode, not yet confirmed */
    uint32_t uncommitted;           /* publishes and acks held by an open transaction */
    sb_bchan *bchan;                /* the broker half: consumers, prefetch, counters */
} sb_chan_view;

typedef struct sb_bconn_ops {
    /* Closes the connection with 320 CONNECTION_FORCED and reason (the
     * management API's DELETE). Must not free c before returning. */
    void (*force_close)(sb_bconn *c, const char *reason);
    /* Calls fn for each open channel of c. */
    void (*each_channel)(sb_bconn *c, void (*fn)(const sb_chan_view *ch, void *ud), void *ud);
    /* "starting", "tuning", "opening", "running", "blocking", "blocked",
     * "closing" (RabbitMQ's connection states). */
    const char *(*state)(const sb_bconn *c);
} sb_bconn_ops;

struct sb_bconn {
    sb_list link;                   /* the broker's list; set by sb_broker_conn_add */
    const sb_bconn_ops *ops;
    char name[160];                 /* "127.0.0.1:51234 -> 127.0.0.1:5672" */
    char peer_host[64], host[64];
    uint16_t peer_port, port;
    char user[128];                 /* "" until authenticated */
    char auth_mechanism[16];
    sb_vhost *vhost;                /* NULL until connection.open */
    uint64_t connected_at;          /* wall ms */
    uint16_t channel_max, heartbeat;
    uint32_t frame_max;
    sb_buf client_props;            /* client_properties, encoded field table */
    uint64_t recv_oct, recv_cnt;    /* bytes and frames received */
};

/* Registers c (borrowed until sb_broker_conn_remove), counting it. */
void sb_broker_conn_add(sb_broker *b, sb_bconn *c);
void sb_broker_conn_remove(sb_broker *b, sb_bconn *c);
/* Calls fn for each registered connection, oldest first. fn may call
 * ops->force_close on the connection it is given, nothing more drastic. */
void sb_broker_each_conn(sb_broker *b, void (*fn)(sb_bconn *c, void *ud), void *ud);
/* The connection named name, or NULL. */
sb_bconn *sb_broker_conn_find(sb_broker *b, sb_str name);

/* A broker channel's state, for /api/channels and /api/consumers. */
typedef struct sb_bchan_view {
    uint32_t consumers;
    uint32_t unacked;               /* consumer deliveries and gets not yet settled */
    uint16_t prefetch_count;        /* basic.qos global=false */
    uint16_t global_prefetch_count; /* basic.qos global=true */
    bool flow_active;
    const sb_msg_stats *stats;
} sb_bchan_view;
void sb_bchan_view_get(const sb_bchan *ch, sb_bchan_view *out);

typedef struct sb_consumer_view {
    sb_str tag;
    sb_str queue;                   /* "amq.rabbitmq.reply-to" for a direct reply-to consumer */
    const char *vhost;
    bool ack_required, exclusive;
    bool active;                    /* false for a waiting single-active-consumer */
    int32_t priority;               /* x-priority (0 when not given) */
    uint16_t prefetch_count;
} sb_consumer_view;
void sb_bchan_each_consumer(const sb_bchan *ch,
                            void (*fn)(const sb_consumer_view *c, void *ud), void *ud);

/* ---- inspection, for the HTTP API (inspect.c) ----
 * Read-only snapshots of broker objects for the management API. A view
 * borrows from the broker: valid until the broker next changes (any
 * declare, delete, publish or delivery), so a caller copies what it keeps
 * and must not change the broker from inside an iteration callback. */

typedef struct sb_broker_counts {
    uint32_t connections;      /* AMQP connections (sb_broker_conn_add) */
    uint32_t channels;         /* broker channels (sb_bchan) */
    uint32_t vhosts;
    uint32_t exchanges;        /* including the predeclared ones, as RabbitMQ counts */
    uint32_t queues;
    uint32_t consumers;        /* queue consumers (direct reply-to ones are not on a queue) */
    uint64_t messages_ready;
    uint64_t messages_unacked;
} sb_broker_counts;

/* Object totals over every vhost, for GET /api/overview. */
void sb_broker_totals(const sb_broker *b, sb_broker_counts *out);

typedef struct sb_queue_view {
    sb_str name;
    const char *vhost;
    bool durable, auto_delete, exclusive;
    const sb_amqp_table *args;  /* never NULL; n == 0 when none */
    uint32_t messages_ready;
    uint32_t messages_unacked;
    uint64_t ready_bytes;       /* body bytes of the ready messages */
    uint64_t unacked_bytes;     /* body bytes of the unacknowledged ones */
    uint32_t consumers;
    const sb_policy *policy;    /* the policy that applies, or NULL */
    uint32_t paged_out;         /* ready messages whose body is on disk only */
    uint32_t delayed;           /* messages held for a retry */
    uint64_t idle_since;        /* wall ms of the last consume/get/declare */
    const sb_msg_stats *stats;
} sb_queue_view;

typedef struct sb_exchange_view {
    sb_str name;                /* "" for the default exchange */
    const char *vhost;
    const char *type;           /* "direct", "fanout", "topic", "headers", ... */
    bool durable, auto_delete, internal;
    const sb_amqp_table *args;  /* never NULL; n == 0 when none */
    const sb_policy *policy;    /* the policy that applies, or NULL */
} sb_exchange_view;

typedef struct sb_binding_view {
    sb_str source;              /* "" for the default exchange's implicit bindings */
    const char *vhost;
    sb_str destination;
    bool is_to_exchange;        /* destination is an exchange (else a queue) */
    sb_str routing_key;
    const sb_amqp_table *args;  /* never NULL; n == 0 when none */
} sb_binding_view;

/* Calls fn for every vhost, in no particular order. */
void sb_broker_each_vhost(sb_broker *b, void (*fn)(sb_vhost *v, void *ud), void *ud);
/* Calls fn for every queue / exchange of v, in no particular order. */
void sb_vhost_each_queue(sb_vhost *v, void (*fn)(const sb_queue_view *q, void *ud), void *ud);
void sb_vhost_each_exchange(sb_vhost *v, void (*fn)(const sb_exchange_view *x, void *ud),
                            void *ud);
/* Calls fn for every binding of v: first the default exchange's implicit
 * binding of each queue (routing key = queue name, as RabbitMQ lists
 * them), then each exchange's bindings. */
void sb_vhost_each_binding(sb_vhost *v, void (*fn)(const sb_binding_view *b, void *ud),
                           void *ud);
/* Fills *out (OUT) for the queue / exchange named name; false when there
 * is none. */
bool sb_vhost_queue_view(sb_vhost *v, sb_str name, sb_queue_view *out);
bool sb_vhost_exchange_view(sb_vhost *v, sb_str name, sb_exchange_view *out);
/* Sets *count (OUT) to the consumers of queue name; false when there is
 * no such queue. For callers that must fail fast when nobody would
 * answer (the HTTP RPC bridge). */
bool sb_vhost_queue_consumers(sb_vhost *v, sb_str name, uint32_t *count);

#endif /* SB_BROKER_H */
