/* api_policies.c - RabbitMQ's policy endpoints:
 *   GET /api/policies, GET /api/policies/{vhost}
 *   GET/PUT/DELETE /api/policies/{vhost}/{name}
 * PUT takes {"pattern": ..., "definition": {...}, "priority": N,
 * "apply-to": "all"|"queues"|"exchanges"} and answers 201 when it creates
 * the policy, 204 when it replaces one; a definition the broker refuses is
 * 400 with RabbitMQ's "Validation failed" reason. Runs on the loop thread.
 */
#include "http_int.h"

#include <stdio.h>

static void
append_vhost(sb_vhost *v, void *array)
{
    sb_vhost_policies_json(v, array);
}

/* The {name} segment as a C string in buf; false (after a 400) when it
 * does not fit or holds a NUL. */
static bool
name_param(sb_http_req *r, char *buf, size_t len)
{
    sb_str n = r->params[1];

    if (n.len >= len || memchr(n.p, '\0', n.len) != NULL) {
        sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "bad policy name");
        return false;
    }
    memcpy(buf, n.p, n.len);
    buf[n.len] = '\0';
    return true;
}

void
sb_http__api_policies(sb_http_req *r)
{
    json_t *list = json_array();
    sb_vhost *v;

    if (r->nparams == 0) {
        sb_broker_each_vhost(r->h->broker, append_vhost, list);
    } else {
        if ((v = sb_http__vhost_or_404(r)) == NULL) {
            json_decref(list);
            return;
        }
        sb_vhost_policies_json(v, list);
    }
    sb_http__reply_json(r, MHD_HTTP_OK, list);
}

void
sb_http__api_policy(sb_http_req *r)
{
    char name[256], why[400];
    sb_vhost *v = sb_http__vhost_or_404(r);
    json_t *p;

    if (v == NULL || !name_param(r, name, sizeof name))
        return;
    /* Reading policies needs a management tag; changing them policymaker
     * or administrator (RabbitMQ's is_authorized_policies). */
    if (r->method != SB_HTTP_GET && r->method != SB_HTTP_HEAD &&
        !(r->tags & (SB_TAG_POLICYMAKER | SB_TAG_ADMINISTRATOR))) {
        sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                             "User not authorised to access object");
        return;
    }
    if (r->method == SB_HTTP_DELETE) {
        if (sb_policy_delete(v, name) < 0)
            sb_http__reply_not_found(r);
        else
            sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
        return;
    }
    if (r->method == SB_HTTP_PUT) {
        bool existed = (p = sb_policy_json(v, name)) != NULL;
        json_decref(p);
        if (!json_is_object(r->json)) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "the body must be a JSON object with pattern and definition");
            return;
        }
        if (sb_policy_set(v, name, r->json, why, sizeof why) < 0) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", why);
            return;
        }
        sb_http__reply_empty(r, existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED);
        return;
    }
    if ((p = sb_policy_json(v, name)) == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    sb_http__reply_json(r, MHD_HTTP_OK, p);
}
