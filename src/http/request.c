/* request.c - one HTTP request from headers to answer: routing, HTTP
 * Basic credentials, the body limit, JSON bodies, dispatch to the route's
 * handler, and the replies (RabbitMQ management's JSON error shape).
 *
 * MHD calls sb_http__access several times per request: once when the
 * headers are in (we route, authenticate and check Content-Length, so a
 * request refused there never has its body read), once per body chunk,
 * and once more at the end (we dispatch). A handler that does not answer
 * at once leaves the request suspended; its late reply resumes it, and MHD
 * calls us again to queue the answer. Runs on the loop thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "../common/alloc.h"
#include "../common/log.h"

/* ---- replies ---- */

struct MHD_Response *
sb_http__json_response(json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    struct MHD_Response *resp;

    json_decref(body);
    if (s == NULL)
        return NULL;
    /* json_dumps allocates with malloc (jansson's default), which is what
     * MHD_RESPMEM_MUST_FREE releases with free(). */
    resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(s);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return resp;
}

/* Stores the answer; resumes r if it was waiting. Takes ownership of resp. */
static void
set_reply(sb_http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->resp != NULL || r->status != 0) {
        if (resp)
            MHD_destroy_response(resp);
        return;
    }
    r->status = status;
    r->resp = resp;
    if (r->is_suspended) {
        sb_list_remove(&r->node);
        r->is_suspended = false;
        MHD_resume_connection(r->conn);
        sb_http__kick(r->h);
    }
}

void
sb_http__reply_response(sb_http_req *r, unsigned status, struct MHD_Response *resp)
{
    set_reply(r, status, resp);
}

void
sb_http__reply_json(sb_http_req *r, unsigned status, json_t *body)
{
    set_reply(r, status, sb_http__json_response(body));
}

void
sb_http__reply_empty(sb_http_req *r, unsigned status)
{
    set_reply(r, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

static json_t *
error_body(const char *error, const char *fmt, va_list ap)
{
    char reason[512];

    vsnprintf(reason, sizeof reason, fmt, ap);
    return json_pack("{s:s,s:s}", "error", error, "reason", reason);
}

void
sb_http__reply_error(sb_http_req *r, unsigned status, const char *error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_http__reply_json(r, status, error_body(error, fmt, ap));
    va_end(ap);
}

/* An error answer with one extra header (WWW-Authenticate, Allow). */
static void
reply_error_with(sb_http_req *r, unsigned status, const char *hname, const char *hvalue,
                 const char *error, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void
reply_error_with(sb_http_req *r, unsigned status, const char *hname, const char *hvalue,
                 const char *error, const char *fmt, ...)
{
    struct MHD_Response *resp;
    va_list ap;

    va_start(ap, fmt);
    resp = sb_http__json_response(error_body(error, fmt, ap));
    va_end(ap);
    if (resp)
        MHD_add_response_header(resp, hname, hvalue);
    set_reply(r, status, resp);
}

/* ---- the phases of a request ---- */

static bool
peer_is_loopback(struct MHD_Connection *c, char *peer, size_t peer_len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa == NULL) {
        snprintf(peer, peer_len, "?");
        return false;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(peer, peer_len, "%s:%u", ip, ntohs(a->sin_port));
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = a->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(peer, peer_len, "[%s]:%u", ip, ntohs(a->sin6_port));
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127);
    }
    snprintf(peer, peer_len, "?");
    return false;
}

/* HTTP Basic against the broker's user database. Answers 401 and returns
 * false when the credentials are missing or wrong (with a Basic
 * challenge), or when the user's tags do not open the route (RabbitMQ's
 * "not_authorised" replies, without one). */
static bool
authenticate(sb_http_req *r)
{
    sb_http *h = r->h;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(r->conn, &pass);
    const sb_user *u = NULL;
    const char *why = NULL;

    if (user == NULL)
        why = "Not_Authorized";
    else if (strlen(user) >= sizeof r->user ||
             (u = sb_auth_login(sb_broker_auth(h->broker), sb_str_c(user),
                                sb_str_c(pass ? pass : ""))) == NULL)
        why = "Login failed";
    /* RabbitMQ's loopback_users: the default user only from this host. */
    else if (h->loopback_users_only && strcmp(user, h->default_user) == 0 && !r->is_peer_loopback)
        why = "User can only log in via localhost";
    if (why == NULL) {
        snprintf(r->user, sizeof r->user, "%s", user);
        r->tags = sb_user_tag_bits(u);
    } else if (user != NULL) {
        sb_log(SB_LOG_INFO, "http", "%s: HTTP login refused for user '%s': %s",
               r->hc ? r->hc->peer : "?", user, why);
    }
    MHD_free(user);
    MHD_free(pass);
    if (why != NULL) {
        reply_error_with(r, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                         "Basic realm=\"" SB_HTTP__REALM "\"", "not_authorized", "%s", why);
        return false;
    }
    if (r->route->level != SB_HTTP_ANY_USER && !(r->tags & SB_TAGS_MANAGEMENT))
        why = "Not management user";
    else if (r->route->level == SB_HTTP_ADMIN && !(r->tags & SB_TAG_ADMINISTRATOR))
        why = "Not administrator user";
    else if (r->route->level == SB_HTTP_MONITOR &&
             !(r->tags & (SB_TAG_ADMINISTRATOR | SB_TAG_MONITORING)))
        why = "Not monitor user";
    if (why != NULL)
        sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised", "%s", why);
    return why == NULL;
}

/* A route naming a vhost that exists: a user who is not an administrator
 * needs permissions there (RabbitMQ's is_authorized_vhost). A missing
 * vhost is left to the handler's 404. */
static bool
vhost_allowed(sb_http_req *r)
{
    sb_vhost *v;

    if (strstr(r->route->pattern, "{vhost}") == NULL || r->nparams == 0 ||
        (r->tags & SB_TAG_ADMINISTRATOR))
        return true;
    v = sb_broker_vhost(r->h->broker, r->params[0]);
    if (v == NULL || sb_access_vhost_ok(sb_http__perms(r, v)))
        return true;
    sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                         "User not authorised to access virtual host");
    return false;
}

/* Headers are in: route, authenticate, check the declared body size. */
static void
begin(sb_http_req *r, const char *url)
{
    char allow[64], peer[64];
    unsigned status = 0;
    const char *cl;

    r->is_peer_loopback = peer_is_loopback(r->conn, peer, sizeof peer);
    r->route = sb_http__route(r, url, &status, allow, sizeof allow);
    if (r->route == NULL) {
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
            reply_error_with(r, status, MHD_HTTP_HEADER_ALLOW, allow, "method_not_allowed",
                             "%s is not allowed on %s (allowed: %s)", r->method_name, url, allow);
        else if (status == MHD_HTTP_BAD_REQUEST)
            sb_http__reply_error(r, status, "bad_request", "malformed percent-encoding in path");
        else
            /* RabbitMQ management's exact words for an unknown path. */
            sb_http__reply_error(r, MHD_HTTP_NOT_FOUND, "Object Not Found", "Not Found");
        return;
    }
    if (r->route->level != SB_HTTP_PUBLIC && (!authenticate(r) || !vhost_allowed(r)))
        return;
    cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > r->h->max_body_bytes)
        sb_http__reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "request body of %s bytes is over the limit of %zu bytes", cl,
                             r->h->max_body_bytes);
}

/* One chunk of body. Past the limit (chunked bodies have no
 * Content-Length to refuse up front) the rest is read and dropped, since
 * MHD can only answer once the request is complete; the body deadline
 * bounds how long that goes on. */
static void
body_chunk(sb_http_req *r, const char *data, size_t len)
{
    if (r->is_too_large)
        return;
    if (len > r->h->max_body_bytes - r->body_len) {
        r->is_too_large = true;
        sb_free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len)
            cap *= 2;
        r->body = sb_realloc(r->body, cap);
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
}

static void
dispatch(sb_http_req *r)
{
    json_error_t jerr;

    r->is_dispatched = true;
    if (r->hc)
        r->hc->is_answering = true;
    if (r->is_too_large) {
        sb_http__reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "request body is over the limit of %zu bytes", r->h->max_body_bytes);
        return;
    }
    if (r->route->takes_json && r->body_len > 0) {
        r->json = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
        if (r->json == NULL) {
            sb_http__reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "malformed JSON body: %s (line %d, column %d)", jerr.text,
                                 jerr.line, jerr.column);
            return;
        }
    }
    r->route->fn(r);
}

static enum MHD_Result
queue_reply(sb_http_req *r)
{
    enum MHD_Result ok;

    if (r->resp == NULL) /* out of memory building it */
        return MHD_NO;
    ok = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->is_queued = true;
    return ok;
}

static bool
has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (cl != NULL && strtoull(cl, NULL, 10) > 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static sb_http_req *
req_new(sb_http *h, struct MHD_Connection *c, const char *method)
{
    sb_http_req *r = sb_calloc(1, sizeof *r);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    sb_list_init(&r->node);
    r->h = h;
    r->conn = c;
    r->hc = ci ? ci->socket_context : NULL;
    r->method_name = method;
    r->method = sb_http__method_bit(method);
    if (r->hc) {
        r->hc->is_in_body = true;
        r->hc->phase_start_ms = sb_loop_now(h->loop);
    }
    return r;
}

enum MHD_Result
sb_http__access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sb_http_req *r = *con_cls;

    if (r == NULL) {
        *con_cls = r = req_new(cls, c, method);
        begin(r, url);
        /* Refusing before the body is read makes MHD close the connection;
         * without a body, answer at the end and keep the connection. */
        return r->status && has_body(c) ? queue_reply(r) : MHD_YES;
    }
    if (r->is_queued) { /* answered early: whatever body follows is not ours */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        body_chunk(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->is_dispatched && r->status == 0)
        dispatch(r);
    if (r->status)
        return queue_reply(r);
    if (!r->is_suspended) {
        r->is_suspended = true;
        sb_list_push_back(&r->h->suspended, &r->node);
        MHD_suspend_connection(c);
    }
    return MHD_YES;
}

void
sb_http__completed(void *cls, struct MHD_Connection *c, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
    sb_http_req *r = *con_cls;

    if (r == NULL)
        return;
    sb_log(SB_LOG_DEBUG, "http", "%s: %s %u%s", r->hc ? r->hc->peer : "?", r->method_name,
           r->status, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (not completed)");
    if (r->hc) {
        /* Waiting for the next request on a kept-alive connection counts
         * as its header phase, as in cowboy's request_timeout. */
        r->hc->is_in_body = false;
        r->hc->is_answering = false;
        r->hc->phase_start_ms = sb_loop_now(r->h->loop);
    }
    if (r->call != NULL)
        sb_http__call_abandon(r);
    sb_http__wait_abandon(r);
    sb_access_free(&r->access);
    sb_list_remove(&r->node);
    if (r->resp)
        MHD_destroy_response(r->resp);
    json_decref(r->json);
    sb_free(r->body);
    sb_free(r->path);
    sb_free(r);
    *con_cls = NULL;
}

void
sb_http__conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    sb_http *h = cls;
    sb_http_conn *hc = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc = sb_calloc(1, sizeof *hc);
        const union MHD_ConnectionInfo *di = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
        hc->fd = ci ? ci->connect_fd : -1;
        hc->is_tls = di != NULL && sb_http__daemon_is_tls(h, di->daemon);
        hc->phase_start_ms = sb_loop_now(h->loop);
        peer_is_loopback(c, hc->peer, sizeof hc->peer);
        sb_list_push_back(&h->conns, &hc->node);
        *socket_context = hc;
    } else if (hc != NULL) {
        sb_list_remove(&hc->node);
        sb_free(hc);
        *socket_context = NULL;
    }
}
