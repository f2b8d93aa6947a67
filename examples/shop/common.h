/* common.h - what every shop service shares: connecting (and reconnecting)
 * to the broker, the shop's topology, calls over direct reply-to, confirmed
 * publishes, replies, and the ids files the demo reads.
 *
 * The services are plain RabbitMQ clients on librabbitmq (rabbitmq-c 0.11):
 * nothing here is Switchboard-specific except the x-retry-delays queue
 * argument, which RabbitMQ ignores. One connection per process, used from
 * one thread. Channels: 1 consumes the service's queue, 2 makes calls (it
 * consumes amq.rabbitmq.reply-to), 3 publishes events with confirms.
 *
 * Tracing: while a service handles a message that carries a W3C
 * traceparent header, everything it sends (calls, replies, events) carries
 * the same trace id with a span id of its own, so the broker's trace of one
 * customer's order (`switchboard trace ID`) follows it through every
 * service. Plain AMQP headers: RabbitMQ carries them along unchanged.
 */
#ifndef SHOP_COMMON_H
#define SHOP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#define SHOP_CH_SERVE 1
#define SHOP_CH_CALL 2
#define SHOP_CH_EVENTS 3

#define SHOP_EXCHANGE "shop"          /* topic: order.placed events */
#define SHOP_DEAD_EXCHANGE "shop.dead" /* direct: routing key = service name */
#define SHOP_EVENT_KEY "order.placed"

typedef struct shop_conn {
    amqp_connection_state_t c;
    const char *who;                  /* service name, for log lines */
    uint64_t confirm_seq;             /* last delivery tag published on channel 3 */
    uint64_t call_seq;                /* for correlation ids */
    char trace[64];                   /* traceparent of the message being handled, or "" */
} shop_conn;

/* What a call or a consumer saw. Bodies are copied, NUL-terminated. */
typedef struct shop_msg {
    char *body;                       /* new reference: free with shop_msg_free */
    size_t len;
    char reply_to[256];
    char corr_id[256];
    long expiration_ms;               /* -1 when the message has none */
    long long deadline_ms;            /* header x-deadline-ms, or -1 */
    long long retry_count;            /* header x-retry-count, or 0 */
    char traceparent[64];             /* header traceparent, or "" */
    uint64_t tag;
    int redelivered;
} shop_msg;

void shop_log(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wall-clock milliseconds (comparable across processes on one machine). */
long long shop_now_ms(void);
void shop_sleep_ms(long ms);

/* Connects to url (NULL: $AMQP_URL, else localhost), retrying every 100 ms
 * until the broker answers; declares the shop's topology, opens the call and
 * event channels. serve_queue (may be NULL) is consumed on channel 1 with
 * the given prefetch; declare_serve declares it first (non-durable). */
void shop_connect(shop_conn *sc, const char *url, const char *who,
                  const char *serve_queue, int declare_serve, int prefetch);

/* Waits up to timeout_ms (-1: forever) for a delivery on the serve channel.
 * Returns 1 with *m filled, 0 on timeout, -1 when the connection is lost. */
int shop_next(shop_conn *sc, int timeout_ms, shop_msg *m);
void shop_msg_free(shop_msg *m);
int shop_ack(shop_conn *sc, uint64_t tag);
/* Rejects without requeue: the queue's retry delays and DLX take over. */
int shop_reject(shop_conn *sc, uint64_t tag);

/* Calls queue with body and a deadline budget_ms from now: the request
 * carries expiration = budget_ms and header x-deadline-ms, so the broker
 * drops it if nobody took it in time. Returns 0 with *reply filled, 1 on
 * timeout, -1 when the connection is lost. */
int shop_call(shop_conn *sc, const char *queue, const char *body, long budget_ms,
              shop_msg *reply);

/* Answers a request (no-op when it has no reply_to). Returns 0 or -1. */
int shop_reply(shop_conn *sc, const shop_msg *req, const char *body);

/* Publishes a persistent message to exchange/key and waits for the broker's
 * confirm. Returns 0 when confirmed, 1 when nacked or not confirmed within
 * timeout_ms, -1 when the connection is lost. */
int shop_publish_confirmed(shop_conn *sc, const char *exchange, const char *key,
                           const char *body, long timeout_ms);

/* Appends line + '\n' to path with one write(2) on an O_APPEND file, so a
 * killed process never leaves half a line. Returns 0 or -errno. */
int shop_append_line(const char *path, const char *line);

/* Copies the string value of "key" in a flat JSON object body into out
 * ("" if absent). Enough for the shop's own messages, not a JSON parser. */
void shop_json_str(const char *body, const char *key, char *out, size_t outlen);

/* A service: consumes queue and hands each message to handle. */
enum { SHOP_ACK, SHOP_REJECT, SHOP_LOST };
typedef struct shop_service shop_service;
struct shop_service {
    const char *who;
    const char *url;                  /* NULL: $AMQP_URL */
    const char *queue;
    int declare_queue;                /* declare it (non-durable) before consuming */
    int prefetch;                     /* 1 for any service that makes calls */
    /* Handles m; may call or publish through s->conn. Writes the answer for
     * m's caller into reply ("" for none). Returns SHOP_ACK, SHOP_REJECT
     * (retry or dead-letter), or SHOP_LOST (the connection died: reconnect,
     * the broker delivers m again). */
    int (*handle)(shop_service *s, const shop_msg *m, char *reply, size_t replylen);
    void *arg;                        /* the service's own settings */
    shop_conn conn;
};

/* Runs s until the process is killed, reconnecting whenever the connection
 * is lost (the broker restarted, or a network error). */
void shop_serve_forever(shop_service *s);

/* Parses a non-negative integer option value or exits with status 2. */
long shop_arg_long(const char *who, const char *opt, const char *v);

#endif /* SHOP_COMMON_H */
