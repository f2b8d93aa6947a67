/* inventory.c - reserves stock for each placed order.
 *
 * Consumes order.placed events from its own durable queue "inventory"
 * (declared in common.c with x-retry-delays 100/200/400 ms and dead letters
 * to "inventory.dead"). An order for the item "poison" makes it fail
 * (reject, no requeue) until the fix is deployed, here: until the file
 * --fix-file exists. The broker retries the order after each delay, then
 * dead-letters it with its x-death history; `switchboard dlq replay
 * inventory.dead` brings it back once fixed.
 *
 * With --serve QUEUE it answers calls on QUEUE instead (the shop wired as a
 * chain of calls), and with --next QUEUE2 it calls QUEUE2 before answering.
 *
 * usage: inventory [--url URL] [--ids FILE] [--failures FILE] [--fix-file PATH]
 *                  [--work-ms N] [--serve QUEUE [--next QUEUE2]]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

typedef struct inventory_cfg {
    const char *ids_path;       /* orders reserved, one id a line */
    const char *failures_path;  /* failed attempts: "ID retry=N at_ms=T" */
    const char *fix_path;       /* poison orders fail while this does not exist */
    const char *next;           /* chain mode: call this queue before answering */
    long work_ms;
} inventory_cfg;

static int
handle_event(shop_service *s, const shop_msg *m, char *reply, size_t replylen)
{
    inventory_cfg *cfg = s->arg;
    char id[64], item[64], line[160];

    shop_json_str(m->body, "order_id", id, sizeof id);
    shop_json_str(m->body, "item", item, sizeof item);
    if (strcmp(item, "poison") == 0 && (cfg->fix_path == NULL || access(cfg->fix_path, F_OK) != 0)) {
        snprintf(line, sizeof line, "%s retry=%lld at_ms=%lld", id, m->retry_count, shop_now_ms());
        if (cfg->failures_path != NULL)
            shop_append_line(cfg->failures_path, line);
        shop_log(s->who, "order %s: cannot reserve '%s' (attempt %lld)", id, item,
                 m->retry_count + 1);
        return SHOP_REJECT;
    }
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
    snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"reserved\"}", id);
    return SHOP_ACK;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "ids", required_argument, NULL, 'i' },
        { "failures", required_argument, NULL, 'f' },
        { "fix-file", required_argument, NULL, 'x' },
        { "work-ms", required_argument, NULL, 'w' },
        { "serve", required_argument, NULL, 's' },
        { "next", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    inventory_cfg cfg = { 0 };
    shop_service s = { .who = "inventory", .queue = "inventory", .prefetch = 1,
                       .handle = handle_event, .arg = &cfg };
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': s.url = optarg; break;
        case 'i': cfg.ids_path = optarg; break;
        case 'f': cfg.failures_path = optarg; break;
        case 'x': cfg.fix_path = optarg; break;
        case 'w': cfg.work_ms = shop_arg_long(s.who, "--work-ms", optarg); break;
        case 's': s.queue = optarg; s.declare_queue = 1; break;
        case 'n': cfg.next = optarg; break;
        default:
            fprintf(stderr, "usage: inventory [--url URL] [--ids FILE] [--failures FILE] "
                            "[--fix-file PATH] [--work-ms N] [--serve QUEUE [--next QUEUE2]]\n");
            return 2;
        }
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    shop_serve_forever(&s);
    return 0;
}
