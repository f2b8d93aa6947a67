/* router.c - the route table: method, path pattern, handler.
 *
 * A pattern is literal segments and {name} captures, one segment each.
 * The path arrives still percent-encoded (http.c keeps MHD from decoding
 * it), is split on '/', and each segment is then decoded on its own: that
 * is how RabbitMQ's "/api/queues/%2F/q" names vhost "/". The table is
 * small and scanned in order; the first row whose path and method match
 * wins. Runs on the loop thread; keeps no state.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"
#include "../common/alloc.h"

#define MAX_SEGMENTS 16

/* { methods, pattern, handler, who (SB_HTTP_MANAGEMENT when false), takes JSON } */
static const sb_http_route routes[] = {
    { SB_HTTP_GET, "/api/overview", sb_http__api_overview, false, false },
    { SB_HTTP_GET, "/api/nodes", sb_http__api_nodes, SB_HTTP_MONITOR, false },
    { SB_HTTP_GET, "/api/nodes/{name}", sb_http__api_nodes, SB_HTTP_MONITOR, false },
    { SB_HTTP_GET, "/api/whoami", sb_http__api_whoami, false, false },
    { SB_HTTP_GET, "/api/aliveness-test/{vhost}", sb_http__api_aliveness, false, false },
    { SB_HTTP_GET, "/api/connections", sb_http__api_connections, false, false },
    { SB_HTTP_GET | SB_HTTP_DELETE, "/api/connections/{name}", sb_http__api_connection, false,
      false },
    { SB_HTTP_GET, "/api/connections/{name}/channels", sb_http__api_conn_channels, false, false },
    { SB_HTTP_GET, "/api/vhosts/{vhost}/connections", sb_http__api_connections, false, false },
    { SB_HTTP_GET, "/api/channels", sb_http__api_channels, false, false },
    { SB_HTTP_GET, "/api/channels/{name}", sb_http__api_channel, false, false },
    { SB_HTTP_GET, "/api/vhosts/{vhost}/channels", sb_http__api_channels, false, false },
    { SB_HTTP_GET, "/api/consumers", sb_http__api_consumers, false, false },
    { SB_HTTP_GET, "/api/consumers/{vhost}", sb_http__api_consumers, false, false },
    { SB_HTTP_GET, "/api/vhosts", sb_http__api_vhosts, false, false },
    { SB_HTTP_GET, "/api/vhosts/{vhost}", sb_http__api_vhosts, SB_HTTP_ADMIN, false },
    { SB_HTTP_PUT, "/api/vhosts/{vhost}", sb_http__api_vhost_put, SB_HTTP_ADMIN, true },
    { SB_HTTP_DELETE, "/api/vhosts/{vhost}", sb_http__api_vhost_delete, SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/vhosts/{vhost}/permissions", sb_http__api_permissions,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/vhosts/{vhost}/topic-permissions", sb_http__api_topic_permissions,
      SB_HTTP_ADMIN, false },
    /* Users and permissions (api_users.c, api_permissions.c): administrators. */
    { SB_HTTP_GET, "/api/users", sb_http__api_users, SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/users/without-permissions", sb_http__api_users_without_permissions,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_POST, "/api/users/bulk-delete", sb_http__api_users_bulk_delete, SB_HTTP_ADMIN, true },
    { SB_HTTP_GET, "/api/users/{user}", sb_http__api_users, SB_HTTP_ADMIN, false },
    { SB_HTTP_PUT, "/api/users/{user}", sb_http__api_user_put, SB_HTTP_ADMIN, true },
    { SB_HTTP_DELETE, "/api/users/{user}", sb_http__api_user_delete, SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/users/{user}/permissions", sb_http__api_permissions,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/users/{user}/topic-permissions", sb_http__api_topic_permissions,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/permissions", sb_http__api_permissions, SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/permissions/{vhost}/{user}", sb_http__api_permissions,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_PUT, "/api/permissions/{vhost}/{user}", sb_http__api_permission_put,
      SB_HTTP_ADMIN, true },
    { SB_HTTP_DELETE, "/api/permissions/{vhost}/{user}", sb_http__api_permission_delete,
      SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/topic-permissions", sb_http__api_topic_permissions, SB_HTTP_ADMIN, false },
    { SB_HTTP_GET, "/api/queues", sb_http__api_queues, false, false },
    { SB_HTTP_GET, "/api/queues/{vhost}", sb_http__api_queues, false, false },
    { SB_HTTP_GET, "/api/queues/{vhost}/{name}", sb_http__api_queues, false, false },
    { SB_HTTP_PUT, "/api/queues/{vhost}/{name}", sb_http__api_queue_put, false, true },
    { SB_HTTP_DELETE, "/api/queues/{vhost}/{name}", sb_http__api_queue_delete, false, false },
    { SB_HTTP_DELETE, "/api/queues/{vhost}/{name}/contents", sb_http__api_queue_purge, false,
      false },
    { SB_HTTP_GET, "/api/queues/{vhost}/{name}/bindings", sb_http__api_queue_bindings, false,
      false },
    { SB_HTTP_POST, "/api/queues/{vhost}/{name}/get", sb_http__api_queue_get, false, true },
    { SB_HTTP_GET, "/api/exchanges", sb_http__api_exchanges, false, false },
    { SB_HTTP_GET, "/api/exchanges/{vhost}", sb_http__api_exchanges, false, false },
    { SB_HTTP_GET, "/api/exchanges/{vhost}/{name}", sb_http__api_exchanges, false, false },
    { SB_HTTP_PUT, "/api/exchanges/{vhost}/{name}", sb_http__api_exchange_put, false, true },
    { SB_HTTP_DELETE, "/api/exchanges/{vhost}/{name}", sb_http__api_exchange_delete, false,
      false },
    { SB_HTTP_POST, "/api/exchanges/{vhost}/{name}/publish", sb_http__api_publish, false, true },
    { SB_HTTP_GET, "/api/exchanges/{vhost}/{name}/bindings/source",
      sb_http__api_exchange_bindings_source, false, false },
    { SB_HTTP_GET, "/api/exchanges/{vhost}/{name}/bindings/destination",
      sb_http__api_exchange_bindings_destination, false, false },
    { SB_HTTP_GET, "/api/bindings", sb_http__api_bindings, false, false },
    { SB_HTTP_GET, "/api/bindings/{vhost}", sb_http__api_bindings, false, false },
    { SB_HTTP_GET, "/api/policies", sb_http__api_policies, false, false },
    { SB_HTTP_GET, "/api/policies/{vhost}", sb_http__api_policies, false, false },
    { SB_HTTP_GET | SB_HTTP_PUT | SB_HTTP_DELETE, "/api/policies/{vhost}/{name}",
      sb_http__api_policy, false, true },
    { SB_HTTP_GET, "/api/definitions", sb_http__api_definitions, SB_HTTP_ADMIN, false },
    { SB_HTTP_POST, "/api/definitions", sb_http__api_definitions_import, SB_HTTP_ADMIN, true },
    { SB_HTTP_GET, "/api/dlq/{vhost}/{queue}", sb_http__api_dlq, false, false },
    { SB_HTTP_POST, "/api/dlq/{vhost}/{queue}/replay", sb_http__api_dlq_replay, false, false },
    /* Switchboard's REST-to-RPC bridge (issue 4): the body is the request. */
    { SB_HTTP_POST, "/api/rpc/{vhost}/{queue}", sb_http__api_rpc, SB_HTTP_ANY_USER, false },
    /* Switchboard's per-action traces (traceparent). */
    { SB_HTTP_GET, "/api/traces", sb_http__api_traces, SB_HTTP_MONITOR, false },
    { SB_HTTP_GET, "/api/traces/{id}", sb_http__api_traces, SB_HTTP_MONITOR, false },
    /* RabbitMQ's health checks: 503 while a resource alarm is on. */
    { SB_HTTP_GET, "/api/health/checks/alarms", sb_http__api_health_alarms, false, false },
    { SB_HTTP_GET, "/api/health/checks/local-alarms", sb_http__api_health_alarms, false, false },
    /* Switchboard's own liveness check: RabbitMQ 3.10 has no such path. */
    { SB_HTTP_GET, "/api/health/checks/alive", sb_http__api_health_ok, false, false },
    /* Prometheus text format, unauthenticated as rabbitmq_prometheus's
     * (which serves it on a port of its own, 15692). */
    { SB_HTTP_GET, "/metrics", sb_http__api_metrics, true, false },
    { SB_HTTP_GET, "/metrics/per-object", sb_http__api_metrics, true, false },
    /* The web dashboard: one page and its files, behind Basic auth. */
    { SB_HTTP_GET, "/", sb_http__ui, false, false },
    { SB_HTTP_GET, "/dashboard/{file}", sb_http__ui, false, false },
};

unsigned
sb_http__method_bit(const char *name)
{
    static const struct { const char *name; unsigned bit; } m[] = {
        { "GET", SB_HTTP_GET }, { "HEAD", SB_HTTP_HEAD }, { "POST", SB_HTTP_POST },
        { "PUT", SB_HTTP_PUT }, { "DELETE", SB_HTTP_DELETE },
    };

    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(name, m[i].name) == 0)
            return m[i].bit;
    return SB_HTTP_OTHER;
}

static int
hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Splits url (after its leading '/') into decoded segments stored in out.
 * Returns the number of segments, -1 for malformed %-escapes (or %00),
 * or -2 for more than MAX_SEGMENTS. */
static int
split_decode(const char *url, char *out, sb_str *segs)
{
    int n = 0;
    char *w = out;

    if (*url == '/')
        url++;
    for (;;) {
        char *start = w;
        if (n == MAX_SEGMENTS)
            return -2;
        for (; *url && *url != '/'; url++) {
            if (*url != '%') {
                *w++ = *url;
                continue;
            }
            int hi = hex(url[1]), lo = hi < 0 ? -1 : hex(url[2]);
            if (lo < 0 || (hi | lo) == 0)
                return -1;
            *w++ = (char)(hi << 4 | lo);
            url += 2;
        }
        segs[n++] = sb_str_make(start, (size_t)(w - start));
        if (*url == '\0')
            return n;
        url++;
    }
}

/* Matches one pattern against the segments; fills r's params on success. */
static bool
match(const char *pattern, const sb_str *segs, int nsegs, sb_http_req *r)
{
    const char *p = pattern + 1;
    size_t np = 0;

    for (int i = 0; i < nsegs; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (np == SB_HTTP__MAX_PARAMS)
                return false;
            r->params[np++] = segs[i];
        } else if (segs[i].len != len || memcmp(segs[i].p, p, len) != 0) {
            return false;
        }
        if (end == NULL) {
            if (i != nsegs - 1)
                return false;
            r->nparams = np;
            return true;
        }
        p = end + 1;
    }
    return false;
}

static void
append_allow(char *allow, size_t len, unsigned methods)
{
    static const struct { unsigned bit; const char *name; } m[] = {
        { SB_HTTP_GET, "GET" }, { SB_HTTP_HEAD, "HEAD" }, { SB_HTTP_POST, "POST" },
        { SB_HTTP_PUT, "PUT" }, { SB_HTTP_DELETE, "DELETE" },
    };

    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        if (!(methods & m[i].bit) || strstr(allow, m[i].name))
            continue;
        size_t used = strlen(allow);
        snprintf(allow + used, len - used, "%s%s", used ? ", " : "", m[i].name);
    }
}

const sb_http_route *
sb_http__route(sb_http_req *r, const char *url, unsigned *status, char *allow, size_t allow_len)
{
    sb_str segs[MAX_SEGMENTS];
    unsigned path_methods = 0;
    int nsegs;

    r->path = sb_malloc(strlen(url) + 1);
    nsegs = split_decode(url, r->path, segs);
    if (nsegs < 0) {
        *status = nsegs == -1 ? 400 : 404;
        return NULL;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const sb_http_route *rt = &routes[i];
        unsigned accepts = rt->methods | (rt->methods & SB_HTTP_GET ? SB_HTTP_HEAD : 0);

        if (!match(rt->pattern, segs, nsegs, r))
            continue;
        if (accepts & r->method)
            return rt;
        path_methods |= accepts;
    }
    allow[0] = '\0';
    append_allow(allow, allow_len, path_methods);
    *status = path_methods ? 405 : 404;
    return NULL;
}
