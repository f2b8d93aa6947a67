/* shipping.c - ships each placed order.
 *
 * Consumes order.placed events from its own durable queue "shipping"
 * (x-retry-delays back-off, dead letters to "shipping.dead"; see common.c).
 * While shipping is down the events wait in that queue; nothing upstream
 * notices. It writes each shipped order id to --ids after the work and
 * before the ack, so an id may appear twice (a redelivery after a crash)
 * but never be missing.
 *
 * With --serve QUEUE it answers calls on QUEUE instead (the shop wired as a
 * chain of calls), and with --next QUEUE2 it calls QUEUE2 before answering.
 *
 * usage: shipping [--url URL] [--ids FILE] [--work-ms N]
 *                 [--serve QUEUE [--next QUEUE2]]
 */
#include <getopt.h>
#include <stdio.h>

#include "common.h"

typedef struct shipping_cfg {
    const char *ids_path;
    const char *next;
    long work_ms;
} shipping_cfg;

static int
handle_event(shop_service *s, const shop_msg *m, char *reply, size_t replylen)
{
    shipping_cfg *cfg = s->arg;
    char id[64];

    shop_json_str(m->body, "order_id", id, sizeof id);
    if (cfg->work_ms > 0)
        shop_sleep_ms(cfg->work_ms);
    if (cfg->next != NULL) {
        long budget = m->deadline_ms > 0 ? (long)(m->deadline_ms - shop_now_ms()) : 5000;
        shop_msg r;
        int rc = budget > 0 ? shop_call(&s->conn, cfg->next, m->body, budget, &r) : 1;

        if (rc < 0)
            return SHOP_LOST;
        if (rc > 0)
            return SHOP_ACK;          /* our caller has given up too */
        shop_msg_free(&r);
    }
    if (cfg->ids_path != NULL)
        shop_append_line(cfg->ids_path, id);
    snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"shipped\"}", id);
    return SHOP_ACK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "ids", required_argument, NULL, 'i' },
        { "work-ms", required_argument, NULL, 'w' },
        { "serve", required_argument, NULL, 's' },
        { "next", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    shipping_cfg cfg = { 0 };
    shop_service s = { .who = "shipping", .queue = "shipping", .prefetch = 1,
                       .handle = handle_event, .arg = &cfg };
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': s.url = optarg; break;
        case 'i': cfg.ids_path = optarg; break;
        case 'w': cfg.work_ms = shop_arg_long(s.who, "--work-ms", optarg); break;
        case 's': s.queue = optarg; s.declare_queue = 1; break;
        case 'n': cfg.next = optarg; break;
        default:
            fprintf(stderr, "usage: shipping [--url URL] [--ids FILE] [--work-ms N] "
                            "[--serve QUEUE [--next QUEUE2]]\n");
            return 2;
        }
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    shop_serve_forever(&s);
    return 0;
}
