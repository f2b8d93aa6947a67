/* broker_int.h - structures shared by the files of src/broker/ only.
 * Nothing outside src/broker includes this: the rest of the tree sees the
 * opaque types of broker.h. */
#ifndef SB_BROKER_INT_H
#define SB_BROKER_INT_H

#include "broker.h"

#include <stddef.h>
#include "xtype.h"
#include "../common/buf.h"
#include "../net/net.h"
#include "../store/store.h"

struct sb_broker {
    sb_broker_limits lim;
    sb_loop *loop;          /* for TTL and expiry timers; NULL in unit tests */
    sb_store *store;        /* persistent messages; NULL: nothing is durable */
    char *data_dir;         /* where definitions are saved; NULL with no store */
    bool defs_dirty;        /* durable definitions changed since saved */
    bool store_dirty;       /* records appended since the last commit */
    uint32_t memory_window; /* ready messages a durable queue keeps in RAM */
    sb_list spilling;       /* queues with a spill marker (queue_spill.c) */
    struct sb_pagefile *pager; /* paging files (queue_page.c), or NULL: none */
    sb_buf page_buf;        /* a paging record being read back */
    uint32_t connections;   /* AMQP connections, as the session reports them */
    uint32_t channels;      /* live sb_bchan */
    uint32_t next_queue_id; /* for durable queues' log records */
    uint64_t next_msg_id;
    uint64_t publish_pos;   /* highest log position appended by this publish */
    sb_buf scratch;         /* record headers being encoded */
    sb_map recovering;      /* queue id (4 bytes) -> sb_queue, during recovery */
    sb_buf orphans;         /* sb_store_msg of records whose queue is gone */
    sb_map vhosts;          /* name -> sb_vhost */
    sb_map reply_consumers; /* direct reply-to address -> sb_consumer */
    uint64_t name_seq;      /* for generated names */
    struct sb_tracer *tracer; /* per-action trace ring (trace.c), NULL: off */
    uint32_t trace_reply_links; /* traced requests waiting for a reply (trace.c) */
    sb_arena trace_arena;   /* scratch for the trace hooks (trace_hooks.c) */
    /* statistics (stats.c) */
    sb_list conns;          /* sb_bconn.link: client connections, oldest first */
    sb_list bchans;         /* sb_bchan.link: every broker channel */
    sb_timer stats_timer;   /* samples the counters into rates */
    uint32_t stats_interval;
    uint64_t stats_at;      /* monotonic ms of the last sample */
    uint64_t started_at;    /* wall ms */
    uint64_t delayed_count; /* messages held by delay.c right now */
    sb_broker_churn churn;
    sb_broker_resources res;
    sb_auth *auth;          /* users and permissions, saved with the definitions */
    bool users_loaded;      /* a user database exists (loaded or created) */
    struct {
        sb_broker_watch_fn fn;
        void *arg;
    } watchers[SB_BROKER_MAX_WATCHERS];
    int nwatchers;
};

typedef struct sb_tracer sb_tracer;

struct sb_vhost {
    sb_broker *broker;
    char *name;
    sb_map exchanges;       /* name -> sb_exchange */
    sb_map queues;          /* name -> sb_queue */
    sb_dest_vec route_tmp;  /* scratch for routing, reused per publish */
    sb_dest_vec route_seen; /* exchanges visited (e2e cycles) */
    struct sb_policy_set *policies; /* policy.c; NULL until the first one */
    bool closing;           /* being freed: no auto-delete cascades */
    bool tracing;           /* firehose on: publishes and deliveries go to amq.rabbitmq.trace */
    sb_msg_stats stats;     /* every message of the vhost (stats.c) */
    char *description;      /* management metadata, "" when none */
    char *tags;             /* comma-separated, "" when none */
};

/* vhost.c */
/* A new vhost with its predeclared exchanges, in b's registry. */
sb_vhost *sb_broker__vhost_new(sb_broker *b, sb_str name);
/* Frees v and everything in it, keeping what is on disk (shutdown); the
 * caller has removed it from the registry or is freeing the registry. */
void sb_broker__vhost_free(sb_vhost *v);
/* The user database changed (an sb_auth_on_change callback; arg is b). */
void sb_broker__auth_changed(void *arg);

/* A stored copy of a table (arguments): encoded bytes we own, decoded
 * into an arena we own. */
typedef struct sb_owned_table {
    sb_buf bytes;
    sb_arena arena;
    sb_amqp_table t;
} sb_owned_table;

void sb_broker__table_copy(sb_owned_table *dst, const sb_amqp_table *src);
void sb_broker__table_free(sb_owned_table *t);
/* Equality for redeclare checks: NULL / empty tables are equal. */
bool sb_broker__table_same(const sb_amqp_table *a, const sb_amqp_table *b);

typedef enum sb_dest_kind { SB_DEST_QUEUE, SB_DEST_EXCHANGE } sb_dest_kind;

/* One binding: source exchange -> destination (queue or exchange). Listed
 * in its source's out-list and its destination's in-list, so deleting
 * either end removes it in time proportional to its own bindings. */
typedef struct sb_binding {
    sb_list src_link;       /* in source->bindings_out */
    sb_list dst_link;       /* in destination's bindings_in */
    sb_exchange *source;
    sb_dest_kind kind;
    void *dest;             /* sb_queue * or sb_exchange * */
    char *key;
    size_t key_len;
    sb_owned_table args;
} sb_binding;

/* Routing destinations are tagged pointers: exchanges have the low bit
 * set so a route vector can hold both kinds. */
#define SB_DEST_TAG_EXCHANGE ((uintptr_t)1)

struct sb_exchange {
    sb_vhost *vhost;
    char *name;
    size_t name_len;
    const sb_xtype *type;
    void *index;
    bool durable, auto_delete, internal, builtin;
    bool deleting;          /* being freed: ignore auto-delete re-entry */
    sb_owned_table args;
    char *alternate;        /* alternate-exchange name (argument, else policy), or NULL */
    const sb_policy *policy;   /* the policy that applies, or NULL */
    sb_list bindings_out;
    sb_list bindings_in;    /* exchange-to-exchange bindings to us */
    bool delayed;           /* x-delayed-message; type is its x-delayed-type */
    uint32_t id;            /* log id of a durable delayed exchange's held messages, or 0 */
    sb_list delayed_msgs;   /* held by x-delay (delay.c) */
};

/* A message's place in one queue. */
typedef struct sb_qentry {
    sb_list link;           /* ready list, or the bchan's unacked list */
    sb_msg *msg;            /* one reference */
    uint64_t seq;           /* enqueue order in this queue, for requeue */
    uint64_t expires_at;    /* monotonic ms; 0: never */
    uint8_t prio;           /* effective priority (capped at x-max-priority) */
    bool redelivered;
    bool marked;            /* its DELIVERED mark is recorded */
    struct sb_store_ref *ref; /* its record in the store, or NULL: kept apart so
                                 that a transient message's entry stays small */
} sb_qentry;

/* Where a queued message's log record is (durable.c). */
typedef struct sb_store_ref {
    uint64_t msg_id;
    sb_store_loc loc;
} sb_store_ref;

typedef enum sb_overflow {
    SB_OVERFLOW_DROP_HEAD,
    SB_OVERFLOW_REJECT_PUBLISH,
    SB_OVERFLOW_REJECT_PUBLISH_DLX,
} sb_overflow;

/* What a queue's x- arguments ask for, parsed once at declare. */
typedef struct sb_queue_cfg {
    int64_t message_ttl;    /* x-message-ttl ms, -1: none */
    int64_t expires;        /* x-expires ms, -1: none */
    int64_t max_length;     /* -1: no limit */
    int64_t max_bytes;      /* -1: no limit */
    sb_overflow overflow;
    char *dlx;              /* x-dead-letter-exchange ("" is the default one), or NULL */
    char *dlrk;             /* x-dead-letter-routing-key, or NULL */
    uint8_t max_priority;   /* 0: not a priority queue */
    bool single_active;     /* x-single-active-consumer */
    int64_t delivery_limit; /* x-delivery-limit, -1: none */
    uint32_t nretry;        /* x-retry-delays: how many, and */
    uint64_t *retry_delays; /* each delay in ms (owned) */
} sb_queue_cfg;

/* A ready message whose body is only on disk (queue_spill.c): where its
 * record is (a log segment and offset, or with SB_SPILL_PAGED a paging
 * file and offset), and its body length with three flags on top. */
typedef struct sb_spilled {
    uint32_t segment;
    uint32_t offset;
    uint32_t len_flags;
} sb_spilled;
#define SB_SPILL_DELIVERED 0x80000000u  /* it had been delivered: redelivered */
#define SB_SPILL_PAGED 0x40000000u      /* in a paging file, not in the log */
#define SB_SPILL_EXPIRES 0x20000000u    /* it has an expiry: page in to check it */
#define SB_SPILL_LEN_MAX 0x1FFFFFFFu    /* longer bodies stay in RAM */
#define SB_SPILL_LEN(f) ((f) & SB_SPILL_LEN_MAX)

/* Why a message is dead-lettered (x-death "reason"). */
typedef enum sb_death {
    SB_DEATH_REJECTED,
    SB_DEATH_EXPIRED,
    SB_DEATH_MAXLEN,
    SB_DEATH_DELIVERY_LIMIT,
} sb_death;

/* A message's decoded properties, for the rare paths that read headers. */
typedef struct sb_msg_headers {
    sb_arena arena;
    sb_amqp_props props;
    const sb_amqp_table *headers;   /* NULL when the message has none */
} sb_msg_headers;

struct sb_queue {
    sb_vhost *vhost;
    char *name;
    size_t name_len;
    bool durable, exclusive, auto_delete;
    const void *owner;      /* exclusive owner connection */
    uint32_t id;            /* in store records; 0 when not persisted */
    sb_owned_table args;
    sb_queue_cfg cfg;       /* effective: arguments combined with the policy */
    const sb_policy *policy;   /* the policy that applies, or NULL */
    sb_timer ttl_timer;     /* fires when the head message expires */
    sb_timer expiry_timer;  /* x-expires: fires when the queue may be unused */
    uint64_t last_used;     /* monotonic ms of the last consume/get/declare */
    uint32_t inmem;         /* real entries in ready (ready_count counts spilled too) */
    sb_qentry *marker;      /* where the spilled messages sit in ready, or NULL */
    sb_buf spill;           /* sb_spilled FIFO, oldest first */
    size_t spill_head;      /* bytes of spill already paged back in */
    uint64_t spill_seq;     /* enqueue order (seq) of the next spilled message */
    sb_list spill_link;     /* in broker->spilling while it has a marker */
    sb_list delayed;        /* messages waiting for a retry (delay.c) */
    sb_list ready;          /* sb_qentry, in delivery order */
    uint32_t ready_count;
    uint64_t ready_bytes;
    uint64_t next_seq;
    uint32_t unacked_count;
    sb_list unacked;        /* sb_unacked.qlink */
    sb_list consumers;      /* sb_consumer.qlink: by priority, then round-robin */
    uint32_t consumer_count;
    bool had_consumer;      /* auto-delete fires only after a first consumer */
    bool has_exclusive_consumer;
    bool dispatching;       /* re-entrancy guard */
    bool deleted;
    sb_list bindings_in;
    sb_msg_stats stats;     /* this queue's messages (stats.c) */
};

struct sb_consumer {
    sb_list qlink;          /* in queue->consumers */
    sb_list clink;          /* in bchan->consumers */
    sb_queue *queue;
    sb_bchan *ch;
    char *tag;
    size_t tag_len;
    bool no_ack, exclusive, started;
    int32_t priority;
    uint16_t prefetch;      /* 0 = unlimited */
    uint32_t unacked;
    const sb_consumer_ops *ops;
    void *ud;
};

/* One unacknowledged delivery on a channel. */
typedef struct sb_unacked {
    sb_list link;           /* bchan->unacked, in tag order */
    sb_list qlink;          /* queue->unacked, so deleting the queue can detach */
    uint64_t tag;
    sb_queue *queue;        /* NULL if the queue was deleted since */
    sb_consumer *consumer;  /* NULL for basic.get or after cancel */
    sb_qentry *entry;
    uint64_t delivered_at;  /* the loop's clock (ms) when it was delivered */
    bool counted;           /* counts against the channel's global prefetch */
} sb_unacked;

struct sb_bchan {
    sb_msg_stats stats;     /* first: sb_bchan_stats casts (broker.h) */
    sb_list link;           /* in broker->bchans */
    sb_broker *broker;
    sb_vhost *vhost;
    const void *owner;
    uint64_t next_tag;
    sb_list unacked;        /* sb_unacked, ascending tag */
    uint32_t unacked_count; /* consumer deliveries only (for global qos) */
    uint16_t prefetch_consumer; /* basic.qos global=false: for new consumers */
    uint16_t prefetch_global;   /* basic.qos global=true: channel-wide */
    bool flow_active;
    sb_list consumers;      /* sb_consumer.clink */
    sb_map consumer_tags;   /* tag -> sb_consumer */
    uint64_t ctag_seq;
    sb_consumer *reply;     /* direct reply-to consumer (queue NULL) */
    char reply_address[64]; /* amq.rabbitmq.reply-to.<token> */
    sb_trace_who who;       /* how traces name this channel (sb_bchan_set_who) */
};

_Static_assert(offsetof(struct sb_bchan, stats) == 0, "sb_bchan_stats relies on this");

/* stats.c: counting where messages move, one line at each place. */
/* A message left q (queue counters, its vhost's, and ch's when given) as
 * s: a delivery or a get, also counted as a redelivery when it was one. */
static inline void
sb_broker__stat_out(sb_queue *q, sb_bchan *ch, sb_stat s, bool redelivered)
{
    q->vhost->stats.n[s]++;
    q->stats.n[s]++;
    if (ch != NULL)
        ch->stats.n[s]++;
    if (redelivered) {
        q->vhost->stats.n[SB_STAT_REDELIVER]++;
        q->stats.n[SB_STAT_REDELIVER]++;
        if (ch != NULL)
            ch->stats.n[SB_STAT_REDELIVER]++;
    }
}
/* s happened to a message of q (q may be NULL once deleted): vhost v. */
static inline void
sb_broker__stat(sb_vhost *v, sb_queue *q, sb_bchan *ch, sb_stat s)
{
    v->stats.n[s]++;
    if (q != NULL)
        q->stats.n[s]++;
    if (ch != NULL)
        ch->stats.n[s]++;
}
void sb_broker__stats_start(sb_broker *b);
void sb_broker__stats_stop(sb_broker *b);

/* args.c: declare arguments, checked as RabbitMQ checks them */
int sb_broker__queue_args_check(const char *qname, const char *vhost, const sb_amqp_table *args,
                                sb_error *err);
int sb_broker__queue_args_equivalent(const char *name, const char *vhost,
                                     const sb_amqp_table *cur, const sb_amqp_table *got,
                                     sb_error *err);
int sb_broker__exchange_args_equivalent(const char *name, const char *vhost,
                                        const sb_amqp_table *cur, const sb_amqp_table *got,
                                        sb_error *err);

/* exchange.c */
sb_exchange *sb_broker__exchange_new(sb_vhost *v, sb_str name, const sb_xtype *type,
                                     bool durable, bool auto_delete, bool internal,
                                     const sb_amqp_table *args);
void sb_broker__exchange_free(sb_exchange *x);
sb_exchange *sb_broker__exchange_find(sb_vhost *v, sb_str name);
/* The type a client declared ("x-delayed-message" for delayed ones). */
const char *sb_broker__exchange_type_name(const sb_exchange *x);
int sb_broker__bind(sb_exchange *src, sb_dest_kind kind, void *dest, sb_list *dest_in,
                    sb_str key, const sb_amqp_table *args, bool unbind);
void sb_broker__binding_free(sb_binding *bd);
/* Deletes x if it is auto-delete and has no bindings left as a source. */
void sb_broker__exchange_maybe_auto_delete(sb_exchange *x);
/* Appends the queues that (exchange, key, headers) routes to into out. */
void sb_broker__route(sb_vhost *v, sb_exchange *x, sb_str key, const sb_amqp_table *headers,
                      sb_dest_vec *out);

/* args.c */
/* Fills cfg from validated arguments (owned strings freed by _cfg_free). */
void sb_broker__queue_cfg(const sb_amqp_table *args, sb_queue_cfg *cfg);
void sb_broker__queue_cfg_free(sb_queue_cfg *cfg);

/* queue.c */
sb_queue *sb_broker__queue_find(sb_vhost *v, sb_str name);
/* Adds m to q, applying length limits. Returns false when the queue
 * refused it (x-overflow reject-publish*), for a publisher nack. */
bool sb_broker__queue_enqueue(sb_queue *q, sb_msg *m);
/* A new entry of q for m, logged when m is persistent and q durable (not
 * yet in the ready list: sb_broker__queue_link_entry puts it there).
 * NULL when it could not be logged. */
sb_qentry *sb_broker__queue_entry_new(sb_queue *q, sb_msg *m);
/* Puts e at the tail of q's ready list, applying limits; may deliver. */
void sb_broker__queue_link_entry(sb_queue *q, sb_qentry *e);
/* Removes the ready head (for dispatch, get, expiry and drop-head). */
sb_qentry *sb_broker__queue_pop(sb_queue *q);
/* Paging in: puts a message read back from disk in front of the spill
 * marker (already counted in ready_count); loc is its log record, or NULL
 * for one from a paging file. Returns the new entry (borrowed). */
sb_qentry *sb_broker__queue_unspill(sb_queue *q, sb_msg *m, const sb_store_loc *loc,
                                    uint64_t msg_id, bool delivered);
/* Recovery: puts a logged message back at the tail of q, as it was. */
void sb_broker__queue_restore(sb_queue *q, sb_msg *m, const sb_store_loc *loc, uint64_t msg_id,
                              bool delivered);
/* Puts e back in its queue's ready list in enqueue order, redelivered. */
void sb_broker__queue_requeue(sb_queue *q, sb_qentry *e);
void sb_broker__queue_dispatch(sb_queue *q);
void sb_broker__queue_destroy(sb_queue *q, bool notify_consumers);
/* A consumer left: auto-delete check. */
void sb_broker__queue_consumer_gone(sb_queue *q);
/* Frees e; q is the queue it belonged to (NULL once detached), whose
 * store record goes with it. */
void sb_broker__qentry_free(sb_queue *q, sb_qentry *e);
int sb_broker__queue_access(sb_queue *q, const void *owner, sb_error *err);

/* replyto.c */
int sb_broker__reply_consume(sb_bchan *ch, const sb_consume_req *r, char *tag_out,
                             sb_consumer **out, sb_error *err);
void sb_broker__reply_cancel(sb_bchan *ch);
/* Delivers m to the caller at address rk; false if it has gone. */
bool sb_broker__reply_route(sb_broker *b, sb_str rk, sb_msg *m);

/* queue_ttl.c: message TTL (x-message-ttl, expiration) and x-expires */
/* policy.c: recomputes q->cfg from its arguments and the policy that
 * applies now; live (an existing queue, not one being created) also
 * enforces a lower length limit and restarts the expiry timer. */
void sb_broker__queue_policy_refresh(sb_queue *q, bool live);
/* Recomputes x->alternate from its arguments and its policy. */
void sb_broker__exchange_policy_refresh(sb_exchange *x);
void sb_broker__policies_free(sb_vhost *v);
/* queue.c: dead-letters the oldest ready messages while over a length limit. */
void sb_broker__queue_enforce_limits(sb_queue *q);
/* queue_ttl.c: x-expires changed: the unused-queue timer starts over. */
void sb_broker__queue_expiry_restart(sb_queue *q);
uint64_t sb_broker__now(const sb_broker *b);
/* When a message enqueued now in q expires (0: never). */
uint64_t sb_broker__expiry_for(sb_queue *q, const sb_msg *m, uint64_t now);
/* Drops (dead-letters) expired messages at the head; re-arms the timer. */
void sb_broker__queue_expire_head(sb_queue *q);
/* The queue was used (declare, consume, get): restarts x-expires. */
void sb_broker__queue_touch(sb_queue *q);
void sb_broker__queue_timers_init(sb_queue *q);
void sb_broker__queue_timers_stop(sb_queue *q);

/* delay.c: messages held for a time, then routed or enqueued. Each
 * returns false (and holds nothing) when the broker has no loop. */
bool sb_broker__delay_route(sb_exchange *x, sb_msg *m, uint64_t ms);
/* Holds entry e of q (already logged if persistent, so a restart brings
 * it back at once rather than losing it) and links it in when due. */
bool sb_broker__delay_entry(sb_queue *q, sb_qentry *e, uint64_t ms);
void sb_broker__delay_drop_all(sb_broker *b, sb_list *list);

/* retry.c: x-retry-delays and x-delivery-limit */
/* A rejected message of a queue with retry delays: takes e and schedules
 * it again with x-retry-count, returning true; false when it has used its
 * retries (the caller dead-letters it). */
bool sb_broker__retry(sb_queue *q, sb_qentry *e);
/* A message going back to q: counts the delivery (x-delivery-count).
 * Returns false when that passes x-delivery-limit: e was dead-lettered. */
bool sb_broker__count_delivery(sb_queue *q, sb_qentry *e);
/* A message entering a queue with a delivery limit: x-delivery-count 0
 * (RabbitMQ 3.10 stamps it from the first delivery on). */
void sb_broker__count_delivery_start(sb_qentry *e);
/* m with header key set to the integer v. New reference, or NULL. */
sb_msg *sb_broker__msg_with_int_header(const sb_msg *m, const char *key, int64_t v);
void sb_broker__msg_headers(const sb_msg *m, sb_msg_headers *out);
void sb_broker__msg_headers_free(sb_msg_headers *h);

/* durable.c: definitions saved as JSON, persistent messages logged */
/* True when q keeps persistent messages on disk. */
static inline bool
sb_broker__queue_persists(const sb_queue *q)
{
    return q->id != 0;
}
/* Logs e (a persistent message entering q). Returns 0 or -errno. */
int sb_broker__store_append(sb_queue *q, sb_qentry *e);
/* Gives e the record (loc, msg_id), as recovery and paging find it. */
void sb_broker__qentry_set_ref(sb_qentry *e, const sb_store_loc *loc, uint64_t msg_id);
/* A delayed exchange's held message, logged with when it is due. */
int sb_broker__store_append_delayed(sb_exchange *x, sb_qentry *e, uint64_t due_wall_ms);
void sb_broker__store_remove_delayed(sb_exchange *x, sb_qentry *e);
void sb_broker__exchange_assign_id(sb_exchange *x);
/* Recovery: x holds the logged message m again until due_wall_ms. */
void sb_broker__delay_restore(sb_exchange *x, sb_msg *m, const sb_store_msg *r,
                              uint64_t due_wall_ms);
/* The message of e left q for good: its record is removed. */
void sb_broker__store_remove(sb_queue *q, sb_qentry *e);
/* e was handed to a client: recovery will mark it redelivered. */
void sb_broker__store_delivered(sb_queue *q, sb_qentry *e);
/* Durable definitions changed: saved before the loop sleeps. */
void sb_broker__defs_changed(sb_broker *b);
/* Gives a new durable queue its id (when the broker persists). */
void sb_broker__queue_assign_id(sb_queue *q);

/* queue_spill.c: bounded memory for durable queues. Past memory_window
 * ready messages, persistent messages whose records are durable leave RAM
 * (12 bytes each stay) and are read back from the log when the head of the
 * queue reaches them. */
/* The first ready entry, paged in from disk if need be; NULL if none. */
sb_qentry *sb_broker__queue_head(sb_queue *q);
/* Moves what it can of q's tail to disk. */
void sb_broker__queue_spill(sb_queue *q);
/* Removes every spilled message of q (purge, delete); returns how many. */
uint32_t sb_broker__spill_drop_all(sb_queue *q);
/* Recovery: keeps record r of q on disk only when q is past its window. */
bool sb_broker__queue_restore_spilled(sb_queue *q, const sb_store_msg *r);
/* True when the first spilled message of q has an expiry to check. */
bool sb_broker__spill_front_expires(const sb_queue *q);
/* Before the loop sleeps: queues past their window page out what is
 * behind their marker, then the paging buffer is written. */
void sb_broker__spill_before_sleep(sb_broker *b);

/* queue_page.c: entries with no log record, in paging files */
/* Writes e (entry of a queue, not changed) to a paging file and fills
 * *out. Returns 0 or -errno (nothing written: e stays in RAM). */
int sb_broker__page_out(sb_broker *b, const sb_qentry *e, sb_spilled *out);
/* Reads back (and releases) the paging record of sp: a new reference
 * with *expires_at set, or NULL with *err set (the message is lost). */
sb_msg *sb_broker__page_in(sb_broker *b, const sb_spilled *sp, uint64_t *expires_at, int *err);
/* The paging record of sp is dropped unread. */
void sb_broker__page_release(sb_broker *b, const sb_spilled *sp);
void sb_broker__page_flush(sb_broker *b);
bool sb_broker__page_writable(sb_broker *b);
void sb_broker__paging_free(sb_broker *b);
/* A store record back into a message (durable_load.c). New reference. */
sb_msg *sb_broker__msg_from_record(sb_broker *b, const sb_store_msg *r);

/* deadletter.c */
/* A copy of m with properties p (re-encoded), exchange and routing key:
 * for the rare cases the broker must change a message. New reference. */
sb_msg *sb_broker__msg_with_props(const sb_msg *m, const sb_amqp_props *p, sb_str exchange,
                                  sb_str rk);
/* Dead-letters e's message from q (consumes e) if q has a dead-letter
 * exchange, else drops it. */
void sb_broker__deadletter(sb_queue *q, sb_qentry *e, sb_death reason);

/* trace.c: the per-action trace ring */
void sb_broker__trace_init(sb_broker *b, uint32_t max_events);
void sb_broker__trace_free(sb_broker *b);
/* A traced request with reply_to and correlation_id: its reply, even one
 * without a traceparent, is recorded in ctx's trace. */
void sb_broker__trace_link_reply(sb_broker *b, sb_str reply_to, sb_str corr,
                                 const sb_trace_ctx *ctx);
/* The trace a reply to (reply_to, corr) belongs to; forgets the link. */
bool sb_broker__trace_take_reply(sb_broker *b, sb_str reply_to, sb_str corr, sb_trace_ctx *out);
/* Events of ctx's trace with ctx's span, of a kind in kinds (1 << kind
 * bits) and whose first string attribute key equals value; -1 when the
 * trace holds more than SB_TRACE_COUNT_MAX_WALK events (not counted). */
#define SB_TRACE_COUNT_MAX_WALK 1024
int64_t sb_broker__trace_count(sb_broker *b, const sb_trace_ctx *ctx, uint32_t kinds,
                               sb_trace_key key, sb_str value);

/* trace_hooks.c: what the message path records. Each is called behind a
 * one-flag test (m->traced, or the vhost's firehose flag) at its site. */
typedef enum sb_trace_route {
    SB_TRACE_ROUTE_QUEUES,  /* routed to out (maybe none: unroutable) */
    SB_TRACE_ROUTE_DELAYED, /* held by a delayed exchange for delay_ms */
    SB_TRACE_ROUTE_REPLY,   /* a direct reply-to reply; routed: the caller was there */
} sb_trace_route;
/* sb_publish: m is about to be enqueued to out (firehose and trace). */
void sb_broker__trace_publish(sb_vhost *v, const sb_trace_who *who, sb_msg *m,
                              const sb_amqp_table *headers, const sb_dest_vec *out,
                              sb_trace_route how, uint64_t delay_ms);
/* e of q is handed to consumer c (NULL: basic.get) on ch with tag. */
void sb_broker__trace_deliver(sb_queue *q, sb_bchan *ch, sb_consumer *c, const sb_qentry *e,
                              uint64_t tag);
/* ch settles the delivery u: kind is SB_TRACE_ACKED, _REQUEUED or _REJECTED. */
void sb_broker__trace_settle(sb_bchan *ch, const sb_unacked *u, sb_trace_kind kind);
/* e (in q) is scheduled again after delay_ms, its attempt-th retry. */
void sb_broker__trace_retry(sb_queue *q, const sb_qentry *e, uint32_t attempt, uint64_t delay_ms);
/* m leaves q for reason: dead-lettered through x with key to out, or
 * dropped when x is NULL. */
void sb_broker__trace_dead(sb_queue *q, const sb_msg *m, sb_death reason, const sb_exchange *x,
                           sb_str key, const sb_dest_vec *out);
/* A held message is due: routed from x to out, or back into q. */
void sb_broker__trace_released(const sb_exchange *x, sb_queue *q, const sb_msg *m,
                               const sb_dest_vec *out);

/* firehose.c: RabbitMQ's firehose tracer (amq.rabbitmq.trace) */
void sb_broker__firehose_publish(sb_vhost *v, const sb_trace_who *who, const sb_msg *m,
                                 const sb_amqp_table *headers, const sb_dest_vec *out);
void sb_broker__firehose_deliver(sb_queue *q, const sb_bchan *ch, const sb_msg *m,
                                 bool redelivered);

/* bchan.c */
/* Records a delivery on ch and hands it to c (c may be NULL for get). */
uint64_t sb_broker__bchan_track(sb_bchan *ch, sb_queue *q, sb_consumer *c, sb_qentry *e);
bool sb_broker__consumer_has_credit(const sb_consumer *c);
/* A new, unused server consumer tag "amq.ctag-..." in out. */
void sb_broker__generate_ctag(sb_bchan *ch, char *out, size_t len);
void sb_broker__consumer_free(sb_consumer *c, bool notify);

#endif /* SB_BROKER_INT_H */
