/* payments.c - answers payment calls on queue "payments".
 *
 * Each request is {"order_id": ..., "item": ...}; the answer is
 * {"status": "approved"} or {"status": "declined"}, after --latency-ms (the
 * card processor's delay) and with probability --fail-rate of a decline.
 * Both can come from the environment too: PAYMENTS_LATENCY_MS,
 * PAYMENTS_FAIL_RATE (flags win).
 *
 * With --seen FILE it appends one line per request it receives,
 * "ORDER_ID on-time" or "ORDER_ID late": late means the request reached
 * payments after its caller's deadline (header x-deadline-ms). The broker
 * drops requests whose expiration passed while they waited in the queue,
 * so the demo expects no "late" lines, and fewer lines than calls made when
 * payments is slower than the callers' deadline.
 *
 * usage: payments [--url URL] [--latency-ms N] [--fail-rate F] [--seen FILE]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

typedef struct payments_cfg {
    long latency_ms;
    double fail_rate;           /* 0 .. 1 */
    const char *seen_path;
} payments_cfg;

static int
handle_payment(shop_service *s, const shop_msg *m, char *reply, size_t replylen)
{
    payments_cfg *cfg = s->arg;
    char id[64], line[128];
    int late = m->deadline_ms >= 0 && shop_now_ms() > m->deadline_ms;

    shop_json_str(m->body, "order_id", id, sizeof id);
    if (cfg->seen_path != NULL) {
        snprintf(line, sizeof line, "%s %s", id, late ? "late" : "on-time");
        shop_append_line(cfg->seen_path, line);
    }
    if (cfg->latency_ms > 0)
        shop_sleep_ms(cfg->latency_ms);
    snprintf(reply, replylen, "{\"order_id\":\"%s\",\"status\":\"%s\"}", id,
             drand48() < cfg->fail_rate ? "declined" : "approved");
    return SHOP_ACK;
}

static double
parse_rate(const char *v)
{
    char *end;
    double r = strtod(v, &end);

    if (*v == '\0' || *end != '\0' || r < 0 || r > 1) {
        fprintf(stderr, "payments: the fail rate is a number from 0 to 1, not '%s'\n", v);
        exit(2);
    }
    return r;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "latency-ms", required_argument, NULL, 'l' },
        { "fail-rate", required_argument, NULL, 'f' },
        { "seen", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    payments_cfg cfg = { 0 };
    shop_service s = { .who = "payments", .queue = "payments", .prefetch = 1,
                       .handle = handle_payment, .arg = &cfg };
    const char *env;
    int o;

    if ((env = getenv("PAYMENTS_LATENCY_MS")) != NULL)
        cfg.latency_ms = shop_arg_long(s.who, "PAYMENTS_LATENCY_MS", env);
    if ((env = getenv("PAYMENTS_FAIL_RATE")) != NULL)
        cfg.fail_rate = parse_rate(env);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': s.url = optarg; break;
        case 'l': cfg.latency_ms = shop_arg_long(s.who, "--latency-ms", optarg); break;
        case 'f': cfg.fail_rate = parse_rate(optarg); break;
        case 's': cfg.seen_path = optarg; break;
        default:
            fprintf(stderr, "usage: payments [--url URL] [--latency-ms N] [--fail-rate F] "
                            "[--seen FILE]\n");
            return 2;
        }
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    srand48((long)getpid() ^ shop_now_ms());
    shop_serve_forever(&s);
    return 0;
}
