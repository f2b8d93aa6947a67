/* api_nodes.c - /api/nodes (one node: this process) and
 * /api/aliveness-test/{vhost} in RabbitMQ management's shapes, and the
 * resource-alarm health checks.
 *
 * The node's figures are what RabbitMQ shows for a node: memory in use
 * and the watermark that blocks publishers, free disk space and its limit
 * (as the session's alarm check last measured them), descriptors,
 * sockets, uptime, and the churn counters. Runs on the loop thread.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http_int.h"
#include "../common/clock.h"
#include "../common/mem.h"

#define ALIVENESS_QUEUE "aliveness-test"
#define ALIVENESS_BODY "test_message"

static const char aliveness_owner;

uint64_t
sb_http__open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    uint64_t n = 0;

    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0;  /* ".", ".." and the descriptor of d itself */
}

uint64_t
sb_http__max_fds(void)
{
    struct rlimit rl;

    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
}

json_t *
sb_http__churn_json(const sb_broker *b, json_t *o)
{
    sb_broker_churn c;
    char key[64];

    sb_broker_churn_get(b, &c);
    for (int i = 0; i < SB_CHURN__COUNT; i++) {
        json_object_set_new(o, sb_churn_name((sb_churn)i), json_integer((json_int_t)c.n[i]));
        snprintf(key, sizeof key, "%s_details", sb_churn_name((sb_churn)i));
        json_object_set_new(o, key, sb_http__rate_json(c.rate[i]));
    }
    return o;
}

static json_t *
node_json(sb_http *h)
{
    const sb_broker_resources *res = sb_broker_resources_get(h->broker);
    sb_broker_counts c;
    char pid[24];
    json_t *o;

    sb_broker_totals(h->broker, &c);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    o = json_pack("{s:s,s:s,s:b,s:I,s:I,s:b,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:i,s:s,s:s}",
                  "name", SB_HTTP__NODE,
                  "type", "disc",
                  "running", 1,
                  "mem_used", (json_int_t)(res->mem_used ? res->mem_used : sb_mem_used()),
                  "mem_limit", (json_int_t)res->mem_limit,
                  "mem_alarm", res->mem_alarm,
                  "disk_free", (json_int_t)res->disk_free,
                  "disk_free_limit", (json_int_t)res->disk_limit,
                  "disk_free_alarm", res->disk_alarm,
                  "fd_used", (json_int_t)sb_http__open_fds(),
                  "fd_total", (json_int_t)sb_http__max_fds(),
                  "sockets_used", (json_int_t)c.connections,
                  "sockets_total", (json_int_t)sb_http__max_fds(),
                  "uptime", (json_int_t)(sb_wall_ms() - sb_broker_started_at(h->broker)),
                  "processors", (int)sysconf(_SC_NPROCESSORS_ONLN),
                  "os_pid", pid,
                  "rates_mode", "basic");
    json_object_set_new(o, "run_queue", json_integer(0));
    return sb_http__churn_json(h->broker, o);
}

/* GET /api/nodes, /api/nodes/{name} */
void
sb_http__api_nodes(sb_http_req *r)
{
    if (r->nparams == 0) {
        sb_http__reply_json(r, MHD_HTTP_OK, json_pack("[o]", node_json(r->h)));
        return;
    }
    if (!sb_str_eq_c(r->params[0], SB_HTTP__NODE)) {
        sb_http__reply_not_found(r);
        return;
    }
    sb_http__reply_json(r, MHD_HTTP_OK, node_json(r->h));
}

/* Declares the aliveness-test queue, publishes a message to it and gets
 * it back. Returns NULL on success, else what went wrong. */
static const char *
aliveness(sb_vhost *v, sb_broker *b)
{
    sb_queue_decl d = { .name = SB_STR_LIT(ALIVENESS_QUEUE) };
    sb_amqp_props p = { 0 };
    sb_publish_result res;
    sb_deliver_info di = { 0 };
    sb_queue_info info;
    sb_error err = { 0 };
    const char *why = NULL;
    sb_bchan *ch;
    sb_msg *m;

    if (sb_queue_declare(v, &d, &info, &err) != 0)
        return "could not declare the aliveness-test queue";
    m = sb_http__msg_new(&p, SB_STR_LIT(""), SB_STR_LIT(ALIVENESS_QUEUE), ALIVENESS_BODY,
                         strlen(ALIVENESS_BODY));
    if (m == NULL)
        return "out of memory";
    if (sb_publish(v, m, NULL, &res, &err) != 0 || !res.routed)
        why = "the test message was not routed";
    sb_msg_unref(m);
    if (why != NULL)
        return why;
    ch = sb_bchan_new(b, v, &aliveness_owner);
    if (sb_bchan_get(ch, SB_STR_LIT(ALIVENESS_QUEUE), true, &di, &err) != 0 || di.msg == NULL)
        why = "the test message did not come back";
    else if (di.msg->body_len != strlen(ALIVENESS_BODY) ||
             memcmp(sb_msg_body(di.msg), ALIVENESS_BODY, di.msg->body_len) != 0)
        why = "another message came back";
    sb_msg_unref(di.msg);
    sb_bchan_free(ch);
    return why;
}

/* RabbitMQ runs the test as the caller: it needs configure and read on
 * the aliveness-test queue and write on the default exchange, else 401
 * with the AMQP refusal as the reason. */
static bool
aliveness_allowed(sb_http_req *r, sb_vhost *v)
{
    sb_access *a = sb_http__perms(r, v);
    sb_str q = SB_STR_LIT(ALIVENESS_QUEUE);
    sb_error err = { 0 };

    if (sb_access_check(a, SB_PERM_CONFIGURE, "queue", q, &err) == 0 &&
        sb_access_check(a, SB_PERM_WRITE, "exchange", SB_STR_NULL, &err) == 0 &&
        sb_access_check(a, SB_PERM_READ, "queue", q, &err) == 0)
        return true;
    sb_http__reply_refused(r, &err);
    return false;
}

/* GET /api/aliveness-test/{vhost} */
void
sb_http__api_aliveness(sb_http_req *r)
{
    sb_vhost *v = sb_http__vhost_or_404(r);
    const char *why;

    if (v == NULL || !aliveness_allowed(r, v))
        return;
    if ((why = aliveness(v, r->h->broker)) != NULL)
        sb_http__reply_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                            json_pack("{s:s,s:s}", "status", "failed", "reason", why));
    else
        sb_http__reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

/* GET /api/health/checks/alarms and /local-alarms: 503 with the alarms in
 * effect, as RabbitMQ answers. */
void
sb_http__api_health_alarms(sb_http_req *r)
{
    const sb_broker_resources *res = sb_broker_resources_get(r->h->broker);
    json_t *alarms;

    if (!res->mem_alarm && !res->disk_alarm) {
        sb_http__api_health_ok(r);
        return;
    }
    alarms = json_array();
    if (res->mem_alarm)
        json_array_append_new(alarms, json_pack("{s:s,s:s}", "node", SB_HTTP__NODE, "resource",
                                                "memory"));
    if (res->disk_alarm)
        json_array_append_new(alarms, json_pack("{s:s,s:s}", "node", SB_HTTP__NODE, "resource",
                                                "disk"));
    sb_http__reply_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                        json_pack("{s:s,s:s,s:o}", "status", "failed", "reason",
                                  "resource alarm(s) in effect in the cluster", "alarms", alarms));
}
