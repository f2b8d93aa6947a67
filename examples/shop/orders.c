/* orders.c - takes a customer's order.
 *
 * The customer's request arrives as a call: an HTTP POST to the broker's
 * REST-to-RPC bridge (/api/rpc/%2F/orders) becomes a message on queue
 * "orders" with reply_to, correlation_id and expiration = the customer's
 * deadline. For each one, orders
 *   1. calls payments (direct reply-to) within that same deadline: payment
 *      must be confirmed while the customer waits;
 *   2. publishes a persistent order.placed event to exchange "shop" and
 *      waits for the broker's confirm: from here on inventory, shipping and
 *      notifications will see the order even if the broker restarts;
 *   3. answers {"order_id": ..., "status": "placed"}.
 * If payments does not answer in time, orders gives up without answering:
 * the bridge has already told the customer 504 at the same deadline.
 *
 * With --chain QUEUE the same service is wired the other way: instead of
 * the event it calls QUEUE (inventory, which calls shipping, which calls
 * notifications) and answers only once the whole chain has.
 *
 * usage: orders [--url URL] [--queue orders] [--ids FILE] [--chain QUEUE]
 *               [--deadline-ms 2000]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

typedef struct orders_cfg {
    const char *ids_path;       /* order ids placed, one a line */
    const char *chain;          /* NULL: publish the event; else call this queue */
    long default_deadline_ms;   /* for requests that carry no expiration */
    unsigned long long seq;
} orders_cfg;

/* Payment, within budget_ms. Returns SHOP_ACK with *approved set, or
 * SHOP_LOST; *timed_out when payments did not answer in time. */
static int
pay(shop_service *s, const char *order_id, const char *item, long budget_ms, int *approved,
    int *timed_out)
{
    char req[256];
    shop_msg reply;
    int rc;

    snprintf(req, sizeof req, "{\"order_id\":\"%s\",\"item\":\"%s\"}", order_id, item);
    rc = shop_call(&s->conn, "payments", req, budget_ms, &reply);
    *timed_out = rc == 1;
    *approved = 0;
    if (rc < 0)
        return SHOP_LOST;
    if (rc == 0) {
        *approved = strstr(reply.body, "\"approved\"") != NULL;
        shop_msg_free(&reply);
    }
    return SHOP_ACK;
}

/* The background part: an event (or, with --chain, a call down the chain).
 * Returns 0 when done, 1 when not done in time, -1 on a lost connection. */
static int
hand_over(shop_service *s, orders_cfg *cfg, const char *event, long budget_ms)
{
    shop_msg reply;
    int rc;

    if (cfg->chain == NULL)
        return shop_publish_confirmed(&s->conn, SHOP_EXCHANGE, SHOP_EVENT_KEY, event, 5000);
    rc = shop_call(&s->conn, cfg->chain, event, budget_ms, &reply);
    if (rc == 0)
        shop_msg_free(&reply);
    return rc;
}

static int
handle_order(shop_service *s, const shop_msg *m, char *reply, size_t replylen)
{
    orders_cfg *cfg = s->arg;
    long budget = m->expiration_ms > 0 ? m->expiration_ms : cfg->default_deadline_ms;
    long long deadline = shop_now_ms() + budget;
    char id[64], item[64], event[384];
    int approved, timed_out, rc;

    shop_json_str(m->body, "item", item, sizeof item);
    snprintf(id, sizeof id, "%d-%llu", (int)getpid(), ++cfg->seq);
    if (pay(s, id, item, budget, &approved, &timed_out) == SHOP_LOST)
        return SHOP_LOST;
    if (timed_out) {
        shop_log(s->who, "order %s: no payment answer within %ld ms, giving up", id, budget);
        return SHOP_ACK;              /* the customer already has its 504 */
    }
    if (!approved) {
        snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"declined\"}", id);
        return SHOP_ACK;
    }
    snprintf(event, sizeof event,
             "{\"order_id\":\"%s\",\"item\":\"%s\",\"placed_ms\":%lld}", id, item, shop_now_ms());
    rc = hand_over(s, cfg, event, deadline - shop_now_ms() > 1 ? (long)(deadline - shop_now_ms()) : 1);
    if (rc < 0)
        return SHOP_LOST;
    if (rc > 0) {
        shop_log(s->who, "order %s: %s", id, cfg->chain ? "chain did not answer in time"
                                                        : "event not confirmed");
        snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"error\"}", id);
        return SHOP_ACK;
    }
    if (cfg->ids_path != NULL)
        shop_append_line(cfg->ids_path, id);
    snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"placed\"}", id);
    return SHOP_ACK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "queue", required_argument, NULL, 'q' },
        { "ids", required_argument, NULL, 'i' },
        { "chain", required_argument, NULL, 'c' },
        { "deadline-ms", required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    orders_cfg cfg = { .default_deadline_ms = 2000 };
    shop_service s = { .who = "orders", .queue = "orders", .prefetch = 1,
                       .handle = handle_order, .arg = &cfg };
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': s.url = optarg; break;
        case 'q': s.queue = optarg; s.declare_queue = 1; break;
        case 'i': cfg.ids_path = optarg; break;
        case 'c': cfg.chain = optarg; break;
        case 'd': cfg.default_deadline_ms = shop_arg_long(s.who, "--deadline-ms", optarg); break;
        default:
            fprintf(stderr, "usage: orders [--url URL] [--queue Q] [--ids FILE] [--chain QUEUE] "
                            "[--deadline-ms N]\n");
            return 2;
        }
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    shop_serve_forever(&s);
    return 0;
}
