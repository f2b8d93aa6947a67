/* api_connections.c - /api/connections, /api/channels and /api/consumers
 * in RabbitMQ management's shapes (the fields clients and tools read), and
 * DELETE /api/connections/{name}, which closes the connection with 320
 * CONNECTION_FORCED and the reason from the X-Reason header ("Closed via
 * management plugin" without one), as RabbitMQ does.
 *
 * The broker lists the AMQP connections the session registered
 * (sb_bconn); each one lists its open channels, and each channel its
 * consumers. Unlike RabbitMQ, whose listings lag by its statistics
 * interval, everything is as of the request; only the rates come from
 * the periodic samples. Runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "../common/arena.h"

#define DEFAULT_REASON "Closed via management plugin"

static json_t *
str_json(sb_str s)
{
    json_t *j = json_stringn((const char *)s.p, s.len);

    return j ? j : json_string("");
}

/* The connection's client_properties as JSON, and the connection_name
 * among them (RabbitMQ's user_provided_name) into *name when there is one. */
static json_t *
client_props_json(const sb_bconn *c, json_t **name)
{
    sb_arena a = SB_ARENA_INIT;
    sb_amqp_table t = { 0 };
    const sb_amqp_value *v;
    json_t *o;

    *name = NULL;
    if (c->client_props.len == 0 ||
        sb_amqp_table_decode(c->client_props.data, c->client_props.len, &t, &a) < 0)
        t.n = 0;
    o = sb_json_from_table(&t);
    v = sb_amqp_table_get(&t, "connection_name");
    if (v != NULL && v->kind == SB_FV_LONGSTR)
        *name = str_json(v->v.s);
    sb_arena_free(&a);
    return o;
}

static void
count_channel(const sb_chan_view *ch, void *ud)
{
    (*(uint32_t *)ud)++;
}

static json_t *
connection_json(sb_bconn *c)
{
    uint32_t channels = 0;
    json_t *name, *o;

    c->ops->each_channel(c, count_channel, &channels);
    o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:s,s:s,s:s,s:s,s:b,s:I,s:i,s:i,s:i,s:i,s:s}",
                  "name", c->name,
                  "node", SB_HTTP__NODE,
                  "peer_host", c->peer_host,
                  "peer_port", c->peer_port,
                  "host", c->host,
                  "port", c->port,
                  "type", "network",
                  "protocol", "AMQP 0-9-1",
                  "user", c->user,
                  "user_who_performed_action", c->user,
                  "ssl", 0,
                  "connected_at", (json_int_t)c->connected_at,
                  "channel_max", c->channel_max,
                  "frame_max", (int)c->frame_max,
                  "timeout", c->heartbeat,
                  "channels", (int)channels,
                  "state", c->ops->state(c));
    json_object_set_new(o, "vhost", c->vhost ? json_string(sb_vhost_name(c->vhost)) : json_null());
    json_object_set_new(o, "auth_mechanism", json_string(c->auth_mechanism));
    json_object_set_new(o, "client_properties", client_props_json(c, &name));
    if (name != NULL)
        json_object_set_new(o, "user_provided_name", name);
    json_object_set_new(o, "recv_oct", json_integer((json_int_t)c->recv_oct));
    json_object_set_new(o, "recv_cnt", json_integer((json_int_t)c->recv_cnt));
    return o;
}

/* The vhost filter of a /api/vhosts/{vhost}/... listing, or NULL. */
typedef struct list_ctx {
    json_t *list;
    const char *vhost;      /* only this vhost's, when set */
    sb_bconn *conn;         /* the connection being listed */
    sb_http_req *r;         /* who asks (what they may see), or NULL: everything */
    bool by_vhost;          /* may see what is in the vhosts they may see (consumers),
                               else their own connections only (connections, channels) */
} list_ctx;

static bool
in_vhost(const list_ctx *lc, const sb_bconn *c)
{
    if (lc->r != NULL && !(lc->by_vhost ? c->vhost != NULL && sb_http__vhost_visible(lc->r, c->vhost)
                                        : sb_http__conn_visible(lc->r, c)))
        return false;
    return lc->vhost == NULL || (c->vhost != NULL && strcmp(sb_vhost_name(c->vhost), lc->vhost) == 0);
}

/* A connection of another user, to one who may only see their own. */
static bool
refuse_other(sb_http_req *r, const sb_bconn *c)
{
    if (sb_http__conn_visible(r, c))
        return false;
    sb_http__reply_error(r, MHD_HTTP_UNAUTHORIZED, "not_authorised",
                         "User not authorised to access object");
    return true;
}

static void
append_connection(sb_bconn *c, void *ud)
{
    list_ctx *lc = ud;

    if (in_vhost(lc, c))
        json_array_append_new(lc->list, connection_json(c));
}

/* The vhost a /api/vhosts/{vhost}/... path names, checked: NULL after a 404. */
static bool
vhost_filter(sb_http_req *r, list_ctx *lc, char *buf, size_t len)
{
    sb_vhost *v = sb_http__vhost_or_404(r);

    if (v == NULL)
        return false;
    snprintf(buf, len, "%s", sb_vhost_name(v));
    lc->vhost = buf;
    return true;
}

/* GET /api/connections, /api/vhosts/{vhost}/connections */
void
sb_http__api_connections(sb_http_req *r)
{
    list_ctx lc = { .list = json_array(), .r = r };
    char vh[256];

    if (r->nparams == 1 && !vhost_filter(r, &lc, vh, sizeof vh)) {
        json_decref(lc.list);
        return;
    }
    sb_broker_each_conn(r->h->broker, append_connection, &lc);
    sb_http__sort_by_name(lc.list);
    sb_http__reply_json(r, MHD_HTTP_OK, lc.list);
}

/* GET and DELETE /api/connections/{name} */
void
sb_http__api_connection(sb_http_req *r)
{
    sb_bconn *c = sb_broker_conn_find(r->h->broker, r->params[0]);
    const char *reason;

    if (c == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    if (refuse_other(r, c))
        return;
    if (r->method != SB_HTTP_DELETE) {
        sb_http__reply_json(r, MHD_HTTP_OK, connection_json(c));
        return;
    }
    reason = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Reason");
    c->ops->force_close(c, reason && *reason ? reason : DEFAULT_REASON);
    sb_http__reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* ---- channels ---- */

static void
channel_name(const sb_bconn *c, uint16_t number, char *out, size_t len)
{
    snprintf(out, len, "%s (%u)", c->name, number);
}

static json_t *
channel_json(const sb_bconn *c, const sb_chan_view *ch)
{
    sb_bchan_view bv;
    char name[200];
    json_t *o;

    sb_bchan_view_get(ch->bchan, &bv);
    channel_name(c, ch->number, name, sizeof name);
    o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:{s:s,s:s,s:i},s:i,s:i,s:i,s:b,s:b,s:I,s:i,s:i,s:s}",
                  "name", name,
                  "node", SB_HTTP__NODE,
                  "number", ch->number,
                  "user", c->user,
                  "user_who_performed_action", c->user,
                  "connection_details", "name", c->name, "peer_host", c->peer_host,
                  "peer_port", c->peer_port,
                  "consumer_count", (int)bv.consumers,
                  "prefetch_count", bv.prefetch_count,
                  "global_prefetch_count", bv.global_prefetch_count,
                  "confirm", ch->confirm,
                  "transactional", ch->transactional,
                  "messages_unconfirmed", (json_int_t)ch->unconfirmed,
                  "messages_unacknowledged", (int)bv.unacked,
                  "messages_uncommitted", (int)ch->uncommitted,
                  "state", bv.flow_active ? "running" : "flow");
    json_object_set_new(o, "vhost", c->vhost ? json_string(sb_vhost_name(c->vhost)) : json_null());
    json_object_set_new(o, "acks_uncommitted", json_integer(0));
    json_object_set_new(o, "message_stats", sb_http__message_stats(bv.stats, SB_HTTP_STATS_ALL));
    return o;
}

static void
append_channel(const sb_chan_view *ch, void *ud)
{
    list_ctx *lc = ud;

    json_array_append_new(lc->list, channel_json(lc->conn, ch));
}

static void
append_conn_channels(sb_bconn *c, void *ud)
{
    list_ctx *lc = ud;

    if (!in_vhost(lc, c))
        return;
    lc->conn = c;
    c->ops->each_channel(c, append_channel, lc);
}

/* GET /api/channels, /api/vhosts/{vhost}/channels */
void
sb_http__api_channels(sb_http_req *r)
{
    list_ctx lc = { .list = json_array(), .r = r };
    char vh[256];

    if (r->nparams == 1 && !vhost_filter(r, &lc, vh, sizeof vh)) {
        json_decref(lc.list);
        return;
    }
    sb_broker_each_conn(r->h->broker, append_conn_channels, &lc);
    sb_http__sort_by_name(lc.list);
    sb_http__reply_json(r, MHD_HTTP_OK, lc.list);
}

/* GET /api/connections/{name}/channels */
void
sb_http__api_conn_channels(sb_http_req *r)
{
    sb_bconn *c = sb_broker_conn_find(r->h->broker, r->params[0]);
    list_ctx lc;

    if (c == NULL) {
        sb_http__reply_not_found(r);
        return;
    }
    if (refuse_other(r, c))
        return;
    lc = (list_ctx){ .list = json_array() };
    append_conn_channels(c, &lc);
    sb_http__sort_by_name(lc.list);
    sb_http__reply_json(r, MHD_HTTP_OK, lc.list);
}

typedef struct find_chan {
    sb_str name;
    json_t *found;
    sb_bconn *conn;
    sb_http_req *r;            /* who asks: only their own connections' channels */
} find_chan;

static void
match_channel(const sb_chan_view *ch, void *ud)
{
    find_chan *fc = ud;
    char name[200];

    channel_name(fc->conn, ch->number, name, sizeof name);
    if (fc->found == NULL && sb_str_eq_c(fc->name, name))
        fc->found = channel_json(fc->conn, ch);
}

static void
match_conn_channels(sb_bconn *c, void *ud)
{
    find_chan *fc = ud;

    fc->conn = c;
    if (fc->found == NULL && sb_http__conn_visible(fc->r, c) && fc->name.len > strlen(c->name) &&
        memcmp(fc->name.p, c->name, strlen(c->name)) == 0)
        c->ops->each_channel(c, match_channel, fc);
}

/* GET /api/channels/{name} */
void
sb_http__api_channel(sb_http_req *r)
{
    find_chan fc = { .name = r->params[0], .r = r };

    sb_broker_each_conn(r->h->broker, match_conn_channels, &fc);
    if (fc.found == NULL)
        sb_http__reply_not_found(r);
    else
        sb_http__reply_json(r, MHD_HTTP_OK, fc.found);
}

/* ---- consumers ---- */

typedef struct consumer_ctx {
    list_ctx *lc;
    const sb_chan_view *ch;
} consumer_ctx;

static void
append_consumer(const sb_consumer_view *cv, void *ud)
{
    consumer_ctx *cc = ud;
    const sb_bconn *c = cc->lc->conn;
    char name[200];

    channel_name(c, cc->ch->number, name, sizeof name);
    json_array_append_new(
        cc->lc->list,
        json_pack("{s:o,s:b,s:b,s:b,s:s,s:i,s:{s:s,s:s,s:s,s:i,s:s,s:i,s:s},s:{s:o,s:s},s:o}",
                  "consumer_tag", str_json(cv->tag),
                  "ack_required", cv->ack_required,
                  "exclusive", cv->exclusive,
                  "active", cv->active,
                  "activity_status", cv->active ? "up" : "waiting",
                  "prefetch_count", cv->prefetch_count,
                  "channel_details", "connection_name", c->name, "name", name,
                  "node", SB_HTTP__NODE, "number", cc->ch->number, "peer_host", c->peer_host,
                  "peer_port", c->peer_port, "user", c->user,
                  "queue", "name", str_json(cv->queue), "vhost", cv->vhost,
                  "arguments", cv->priority != 0
                                   ? json_pack("{s:i}", "x-priority", (int)cv->priority)
                                   : json_object()));
}

static void
consumers_of_channel(const sb_chan_view *ch, void *ud)
{
    consumer_ctx cc = { .lc = ud, .ch = ch };

    sb_bchan_each_consumer(ch->bchan, append_consumer, &cc);
}

static void
consumers_of_conn(sb_bconn *c, void *ud)
{
    list_ctx *lc = ud;

    if (!in_vhost(lc, c))
        return;
    lc->conn = c;
    c->ops->each_channel(c, consumers_of_channel, lc);
}

/* GET /api/consumers, /api/consumers/{vhost} */
void
sb_http__api_consumers(sb_http_req *r)
{
    list_ctx lc = { .list = json_array(), .r = r, .by_vhost = true };
    char vh[256];

    if (r->nparams == 1 && !vhost_filter(r, &lc, vh, sizeof vh)) {
        json_decref(lc.list);
        return;
    }
    sb_broker_each_conn(r->h->broker, consumers_of_conn, &lc);
    sb_http__reply_json(r, MHD_HTTP_OK, lc.list);
}
