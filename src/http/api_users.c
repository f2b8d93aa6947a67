/* api_users.c - users in RabbitMQ management's shapes (administrators
 * only, except /api/whoami):
 *   GET    /api/users                       every user, by name
 *   GET    /api/users/without-permissions   users with no permissions anywhere
 *   POST   /api/users/bulk-delete           {"users": [names]}
 *   GET    /api/users/{user}                404 when there is none
 *   PUT    /api/users/{user}                {"password" | "password_hash"
 *                                            [+ "hashing_algorithm"], "tags"}: 201/204
 *   DELETE /api/users/{user}                204; the user's connections are closed (320)
 *   GET    /api/whoami                      {"name", "tags"} of the caller
 * A user is {"name", "password_hash", "hashing_algorithm", "tags": [...],
 * "limits": {}}, as RabbitMQ 3.10 answers. Runs on the loop thread.
 */
#include <string.h>

#include "http_int.h"
#include "../common/base64.h"

static json_t *
tags_json(const sb_user *u)
{
    json_t *a = json_array();

    for (size_t i = 0; i < sb_user_tag_count(u); i++)
        json_array_append_new(a, json_string(sb_user_tag(u, i)));
    return a;
}

static json_t *
user_json(const sb_user *u)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:{}}", "name", sb_user_name(u), "password_hash",
                     sb_user_hash(u), "hashing_algorithm", sb_hash_alg_name(sb_user_alg(u)),
                     "tags", tags_json(u), "limits");
}

static void
append_user(const sb_user *u, void *ud)
{
    json_array_append_new(ud, user_json(u));
}

/* GET /api/users, GET /api/users/{user} */
void
sb_http__api_users(sb_http_req *r)
{
    sb_auth *a = sb_broker_auth(r->h->broker);
    json_t *list;

    if (r->nparams == 1) {
        const sb_user *u = sb_auth_user(a, r->params[0]);
        if (u == NULL)
            sb_http__reply_not_found(r);
        else
            sb_http__reply_json(r, MHD_HTTP_OK, user_json(u));
        return;
    }
    list = json_array();
    sb_auth_each_user(a, append_user, list);
    sb_http__reply_json(r, MHD_HTTP_OK, list);
}

typedef struct unpermitted_ctx {
    const sb_auth *a;
    json_t *list;
    json_t *with;              /* names of users with some permission */
} unpermitted_ctx;

static void
note_permitted(const char *user, const char *vhost, const sb_perms *p, void *ud)
{
    json_object_set_new(((unpermitted_ctx *)ud)->with, user, json_true());
}

static void
append_if_unpermitted(const sb_user *u, void *ud)
{
    unpermitted_ctx *c = ud;

    if (json_object_get(c->with, sb_user_name(u)) == NULL)
        json_array_append_new(c->list, user_json(u));
}

/* GET /api/users/without-permissions */
void
sb_http__api_users_without_permissions(sb_http_req *r)
{
    unpermitted_ctx c = { sb_broker_auth(r->h->broker), json_array(), json_object() };

    sb_auth_each_perms(c.a, note_permitted, &c);
    sb_auth_each_user(c.a, append_if_unpermitted, &c);
    json_decref(c.with);
    sb_http__reply_json(r, MHD_HTTP_OK, c.list);
}


static sb_str
jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return sb_str_make(json_string_value(v), json_string_length(v));
}

/* PUT /api/users/{user} */
void
sb_http__api_user_put(sb_http_req *r)
{
    const json_t *tags = json_object_get(r->json, "tags");
    const json_t *alg = json_object_get(r->json, "hashing_algorithm");
    sb_user_def d = { .name = r->params[0], .alg = SB_HASH_SHA256 };
    char tagbuf[1024], why[300];
    int rc;

    if (!json_is_object(r->json)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "not_json");
        return;
    }
    if (tags == NULL) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "tags_not_present");
        return;
    }
    if (!sb_http__json_tags(tags, tagbuf, sizeof tagbuf)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "tags must be a string or a list of strings");
        return;
    }
    d.tags = sb_str_c(tagbuf);
    if (json_is_string(json_object_get(r->json, "password"))) {
        /* RabbitMQ hashes a given password with its own algorithm, whatever
         * hashing_algorithm says. */
        d.has_password = true;
        d.password = jstr(r->json, "password");
    } else if (json_is_string(json_object_get(r->json, "password_hash"))) {
        d.has_hash = true;
        d.password_hash = jstr(r->json, "password_hash");
        if (!sb_base64_valid(d.password_hash, SB_BASE64_STRICT)) {
            /* RabbitMQ's reason is a list here: ["not_base64", hash]. */
            sb_http__reply_json(r, MHD_HTTP_BAD_REQUEST,
                                json_pack("{s:s, s:[s, s#]}", "error", "bad_request", "reason",
                                          "not_base64", d.password_hash.p,
                                          (int)d.password_hash.len));
            return;
        }
        if (json_is_string(alg) && sb_hash_alg_parse(jstr(r->json, "hashing_algorithm"),
                                                     &d.alg) < 0) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "unsupported hashing_algorithm '%s'", json_string_value(alg));
            return;
        }
    }
    rc = sb_auth_user_put(sb_broker_auth(r->h->broker), &d, why, sizeof why);
    if (rc < 0)
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
    else
        sb_http__reply_empty(r, rc == 1 ? MHD_HTTP_CREATED : MHD_HTTP_NO_CONTENT);
}

/* DELETE /api/users/{user} */
void
sb_http__api_user_delete(sb_http_req *r)
{
    if (sb_broker_user_delete(r->h->broker, r->params[0]) < 0)
        sb_http__reply_not_found(r);
    else
        sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* POST /api/users/bulk-delete {"users": ["a", "b"]}: 204; names that do
 * not exist are skipped, as in RabbitMQ. */
void
sb_http__api_users_bulk_delete(sb_http_req *r)
{
    const json_t *users = json_object_get(r->json, "users"), *u;
    size_t i;

    if (!json_is_array(users)) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                             "the body must be {\"users\": [names]}");
        return;
    }
    json_array_foreach(users, i, u)
        if (json_is_string(u))
            sb_broker_user_delete(r->h->broker, sb_str_make(json_string_value(u),
                                                            json_string_length(u)));
    sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* GET /api/whoami */
void
sb_http__api_whoami(sb_http_req *r)
{
    const sb_user *u = sb_auth_user(sb_broker_auth(r->h->broker), sb_str_c(r->user));

    if (u == NULL) {  /* deleted since the request was authenticated: cannot happen here */
        sb_http__reply_not_found(r);
        return;
    }
    sb_http__reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:s, s:o}", "name", sb_user_name(u), "tags", tags_json(u)));
}
