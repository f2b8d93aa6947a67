/* api_permissions.c - vhost permissions in RabbitMQ management's shapes
 * (administrators only):
 *   GET    /api/permissions                     every (user, vhost) permission
 *   GET    /api/permissions/{vhost}/{user}      404 when the user has none there
 *   PUT    /api/permissions/{vhost}/{user}      {"configure", "write", "read"}: 201/204
 *   DELETE /api/permissions/{vhost}/{user}      204, or 404
 *   GET    /api/users/{user}/permissions        that user's, by vhost
 *   GET    /api/vhosts/{vhost}/permissions      that vhost's, by user
 *   GET    /api/topic-permissions (and per user, per vhost): always [] -
 *          Switchboard has no topic permissions
 * A permission is {"user", "vhost", "configure", "write", "read"}. A new
 * permission takes effect on the next check of every open connection of
 * that user (the checks' memory is per database generation). Runs on the
 * loop thread.
 */
#include <string.h>

#include "http_int.h"

static json_t *
perm_json(const char *user, const char *vhost, const sb_perms *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", user, "vhost", vhost, "configure",
                     sb_perms_source(p, SB_PERM_CONFIGURE), "write",
                     sb_perms_source(p, SB_PERM_WRITE), "read", sb_perms_source(p, SB_PERM_READ));
}

typedef struct perm_filter {
    sb_str user;               /* empty: any */
    sb_str vhost;              /* empty: any */
    json_t *list;
} perm_filter;

static void
append_perm(const char *user, const char *vhost, const sb_perms *p, void *ud)
{
    perm_filter *f = ud;

    if ((f->user.len && !sb_str_eq_c(f->user, user)) ||
        (f->vhost.len && !sb_str_eq_c(f->vhost, vhost)))
        return;
    json_array_append_new(f->list, perm_json(user, vhost, p));
}

static void
reply_list(sb_http_req *r, sb_str user, sb_str vhost)
{
    perm_filter f = { user, vhost, json_array() };

    sb_auth_each_perms(sb_broker_auth(r->h->broker), append_perm, &f);
    sb_http__reply_json(r, MHD_HTTP_OK, f.list);
}

/* GET /api/permissions, /api/permissions/{vhost}/{user},
 * /api/users/{user}/permissions, /api/vhosts/{vhost}/permissions */
void
sb_http__api_permissions(sb_http_req *r)
{
    sb_auth *a = sb_broker_auth(r->h->broker);
    const char *path = r->route->pattern;

    if (r->nparams == 0) {
        reply_list(r, SB_STR_NULL, SB_STR_NULL);
    } else if (r->nparams == 2) {
        const sb_perms *p = sb_auth_perms(a, r->params[1], r->params[0]);
        char user[256], vhost[256];
        if (p == NULL) {
            sb_http__reply_not_found(r);
            return;
        }
        snprintf(user, sizeof user, "%.*s", SB_STR_ARGS(r->params[1]));
        snprintf(vhost, sizeof vhost, "%.*s", SB_STR_ARGS(r->params[0]));
        sb_http__reply_json(r, MHD_HTTP_OK, perm_json(user, vhost, p));
    } else if (strncmp(path, "/api/users/", 11) == 0) {
        if (sb_auth_user(a, r->params[0]) == NULL)
            sb_http__reply_not_found(r);
        else
            reply_list(r, r->params[0], SB_STR_NULL);
    } else if (sb_http__vhost_or_404(r) != NULL) {
        reply_list(r, SB_STR_NULL, r->params[0]);
    }
}

/* PUT /api/permissions/{vhost}/{user} */
void
sb_http__api_permission_put(sb_http_req *r)
{
    static const char *const keys[SB_PERM_COUNT] = { "configure", "write", "read" };
    sb_auth *a = sb_broker_auth(r->h->broker);
    sb_str re[SB_PERM_COUNT];
    char why[300];
    int rc;

    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return;
    }
    for (int k = 0; k < SB_PERM_COUNT; k++) {
        const json_t *v = json_object_get(r->json, keys[k]);
        if (!json_is_string(v)) {
            /* RabbitMQ's words, an Erlang term as text. */
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "[{key_missing,%s}]",
                                 keys[k]);
            return;
        }
        re[k] = sb_str_make(json_string_value(v), json_string_length(v));
    }
    if (sb_broker_vhost(r->h->broker, r->params[0]) == NULL ||
        sb_auth_user(a, r->params[1]) == NULL) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "vhost_or_user_not_found");
        return;
    }
    rc = sb_auth_perms_set(a, r->params[1], r->params[0], re, why, sizeof why);
    if (rc < 0)
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
    else
        sb_http__reply_empty(r, rc == 1 ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
}

/* DELETE /api/permissions/{vhost}/{user} */
void
sb_http__api_permission_delete(sb_http_req *r)
{
    if (sb_auth_perms_clear(sb_broker_auth(r->h->broker), r->params[1], r->params[0]) < 0)
        sb_http__reply_not_found(r);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* GET /api/topic-permissions, /api/users/{user}/topic-permissions,
 * /api/vhosts/{vhost}/topic-permissions: Switchboard keeps none, so the
 * lists are empty (404 for a user or vhost that does not exist). */
void
sb_http__api_topic_permissions(sb_http_req *r)
{
    sb_broker *b = r->h->broker;

    if (r->nparams == 1 && strncmp(r->route->pattern, "/api/users/", 11) == 0 &&
        sb_auth_user(sb_broker_auth(b), r->params[0]) == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    if (r->nparams == 1 && strncmp(r->route->pattern, "/api/vhosts/", 12) == 0 &&
        sb_broker_vhost(b, r->params[0]) == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    sb_http__reply_json(r, MHD_HTTP_OK, json_array());
}
