/* publish.c - basic.publish: content assembly (method, header, body
 * frames) into one sb_msg, routing, mandatory returns, confirms, and the
 * transaction buffer. The body is copied once, from the input buffer into
 * the message; every queue and every delivery shares that copy. */
#include "session_int.h"

#include <stdint.h>
#include <string.h>

#include "../common/alloc.h"

int
sb_session__publish_start(sb_chan *ch, const sb_m_basic_publish *p, sb_error *err)
{
    int rc;

    if (p->immediate)
        return sb_error_set(err, SB_NOT_IMPLEMENTED, "immediate=true");
    /* Write on the exchange, before it is looked up (RabbitMQ's order).
     * Per message, this is one compare and one flag test for a user whose
     * write expression is ".*", else a look at the last answers. */
    if ((rc = sb_access_check(&ch->conn->access, SB_PERM_WRITE, "exchange", p->exchange,
                              err)) != 0 ||
        (rc = sb_publish_check(ch->conn->vhost, p->exchange, err)) != 0)
        return rc;
    memcpy(ch->pub_exchange, p->exchange.p, p->exchange.len);
    ch->pub_exchange_len = (uint16_t)p->exchange.len;
    memcpy(ch->pub_rk, p->routing_key.p, p->routing_key.len);
    ch->pub_rk_len = (uint16_t)p->routing_key.len;
    ch->pub_mandatory = p->mandatory;
    ch->ca = CA_HEADER;
    if (ch->confirm)
        ch->pub_seq++;
    return 0;
}

static int
publish_complete(sb_chan *ch, sb_error *err)
{
    sb_msg *m = ch->pub_msg;
    sb_publish_result res;
    int rc = 0;

    ch->pub_msg = NULL;
    ch->ca = CA_NONE;
    /* Blocked after a whole message, so nothing is left half-published. */
    if (ch->conn->srv->alarms != 0)
        sb_session__block_publisher(ch->conn);
    if (ch->tx) {
        sb_tx_op *op = sb_calloc(1, sizeof *op);
        op->method = SB_M_BASIC_PUBLISH;
        op->msg = m;  /* the transaction keeps our reference */
        op->mandatory = ch->pub_mandatory;
        sb_list_push_back(&ch->tx_ops, &op->link);
        return 0;
    }
    rc = sb_session__route(ch, m, ch->pub_mandatory, &res, err);
    sb_msg_unref(m);
    if (rc == 0 && ch->confirm)
        sb_session__confirm(ch, ch->pub_seq, &res);
    return rc;
}

/* The checks RabbitMQ makes of a message's properties before routing. */
static int
check_props(sb_chan *ch, const sb_amqp_props *p, sb_error *err)
{
    if ((p->flags & SB_PROP_USER_ID) && !sb_str_eq_c(p->user_id, ch->conn->user))
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "user_id property set to '%.*s' but authenticated user was '%s'",
                            SB_STR_ARGS(p->user_id), ch->conn->user);
    if ((p->flags & SB_PROP_DELIVERY_MODE) && p->delivery_mode != 1 && p->delivery_mode != 2)
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "invalid message: {delivery_mode_unknown,%u}", p->delivery_mode);
    return 0;
}

/* The expiration property: a non-negative integer of milliseconds, in
 * text. Sets *ms (-1 when absent) or fails as RabbitMQ does. */
static int
parse_expiration(const sb_amqp_props *p, int64_t *ms, sb_error *err)
{
    sb_str e = p->expiration;
    int64_t v = 0;
    size_t i = 0;
    bool neg;

    *ms = -1;
    if (!(p->flags & SB_PROP_EXPIRATION))
        return 0;
    neg = e.len > 0 && e.p[0] == '-';
    for (i = neg ? 1 : 0; i < e.len && e.p[i] >= '0' && e.p[i] <= '9' && v < INT64_MAX / 10; i++)
        v = v * 10 + (e.p[i] - '0');
    if (e.len == (neg ? 1u : 0u) || i != e.len)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "invalid expiration '%.*s': no_integer",
                            SB_STR_ARGS(e));
    if (neg)
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "invalid expiration '%.*s': {value_negative,-%lld}", SB_STR_ARGS(e),
                            (long long)v);
    *ms = v;
    return 0;
}

/* A request naming the direct reply-to pseudo-queue in reply_to gets the
 * channel's own reply address instead; the properties are re-encoded
 * (into the connection's scratch buffer) only in that case. */
static int
rewrite_reply_to(sb_chan *ch, sb_amqp_props *p, sb_str *props_raw, sb_error *err)
{
    const char *addr;

    if (!(p->flags & SB_PROP_REPLY_TO) || !sb_str_eq_c(p->reply_to, SB_REPLY_TO_QUEUE))
        return 0;
    addr = sb_bchan_reply_address(ch->b);
    if (addr == NULL)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "fast reply consumer does not exist");
    p->reply_to = sb_str_c(addr);
    sb_buf_reset(&ch->conn->scratch);
    sb_amqp_props_encode(&ch->conn->scratch, p);
    *props_raw = sb_str_make(ch->conn->scratch.data, ch->conn->scratch.len);
    return 0;
}

/* A content header with no properties (flags 0 and nothing after them,
 * what most high-rate publishers send) has nothing to check or rewrite,
 * so it skips the property decode. Returns false for anything else,
 * malformed headers included: the full decode judges those. */
static bool
header_without_props(sb_str payload, sb_amqp_header *h)
{
    const uint8_t *p = payload.p;

    /* class-id(2) weight(2) body-size(8) flags(2) */
    if (payload.len != 14 || p[12] != 0 || p[13] != 0)
        return false;
    h->body_size = 0;
    for (int i = 4; i < 12; i++)
        h->body_size = h->body_size << 8 | p[i];
    h->props_raw = sb_str_make(p + 12, 2);
    h->props.flags = 0;
    return true;
}

/* The full decode, and the checks RabbitMQ makes of the properties. */
static int
header_with_props(sb_chan *ch, const sb_amqp_frame *f, sb_amqp_header *h, int64_t *expiration,
                  sb_error *err)
{
    int rc;

    if (sb_amqp_header_decode(f->payload.p, f->payload.len, h, &ch->conn->arena) < 0)
        return sb_error_set(err, SB_FRAME_ERROR, "malformed content header frame");
    if ((rc = check_props(ch, &h->props, err)) != 0 ||
        (rc = parse_expiration(&h->props, expiration, err)) != 0 ||
        (rc = rewrite_reply_to(ch, &h->props, &h->props_raw, err)) != 0)
        return rc;
    return 0;
}

int
sb_session__content_header(sb_chan *ch, const sb_amqp_frame *f, sb_error *err)
{
    const sb_broker_limits *lim = sb_broker_limits_get(ch->conn->srv->broker);
    sb_amqp_header h;
    int64_t expiration = -1;
    int rc;

    if (!header_without_props(f->payload, &h) &&
        (rc = header_with_props(ch, f, &h, &expiration, err)) != 0)
        return rc;
    if (h.body_size > lim->max_message_bytes)
        return sb_error_set(err, SB_PRECONDITION_FAILED,
                            "message size %llu is larger than configured max size %llu",
                            (unsigned long long)h.body_size,
                            (unsigned long long)lim->max_message_bytes);
    ch->pub_msg = sb_msg_new(h.props_raw, sb_str_make(ch->pub_exchange, ch->pub_exchange_len),
                             sb_str_make(ch->pub_rk, ch->pub_rk_len), h.body_size,
                             (h.props.flags & SB_PROP_DELIVERY_MODE) ? h.props.delivery_mode : 0,
                             (h.props.flags & SB_PROP_PRIORITY) ? h.props.priority : 0);
    if (ch->pub_msg == NULL)
        return sb_error_set(err, SB_RESOURCE_ERROR, "out of memory for a %llu-byte message",
                            (unsigned long long)h.body_size);
    sb_msg_set_expiration(ch->pub_msg, expiration);
    /* The one test a message without a traceparent pays (trace.c). */
    if (h.props.flags & SB_PROP_HEADERS)
        sb_trace_mark(ch->conn->srv->broker, ch->pub_msg, &h.props.headers);
    ch->pub_filled = 0;
    ch->ca = CA_BODY;
    if (h.body_size == 0)
        return publish_complete(ch, err);
    return 0;
}

int
sb_session__content_body(sb_chan *ch, const sb_amqp_frame *f, sb_error *err)
{
    sb_msg *m = ch->pub_msg;

    if (f->payload.len > m->body_len - ch->pub_filled)
        return sb_error_set(err, SB_FRAME_ERROR,
                            "body frames carry more than the %llu bytes the header declared",
                            (unsigned long long)m->body_len);
    memcpy(sb_msg_body(m) + ch->pub_filled, f->payload.p, f->payload.len);
    ch->pub_filled += f->payload.len;
    if (ch->pub_filled == m->body_len)
        return publish_complete(ch, err);
    return 0;
}

/* A traced message came back to its publisher (mandatory, unroutable). */
static void
trace_returned(sb_chan *ch, const sb_msg *m)
{
    sb_trace_event *e;
    sb_trace_ctx ctx;

    if (!sb_trace_ctx_of_msg(m, &ctx))
        return;
    e = sb_trace_begin(ch->conn->srv->broker, &ctx, SB_TRACE_RETURNED);
    sb_trace_str(e, SB_TK_EXCHANGE, sb_msg_exchange(m));
    sb_trace_str(e, SB_TK_ROUTING_KEY, sb_msg_rk(m));
    sb_trace_int(e, SB_TK_REPLY_CODE, SB_NO_ROUTE);
    sb_trace_str(e, SB_TK_REPLY_TEXT, SB_STR_LIT("NO_ROUTE"));
    sb_trace_add_who(e, sb_bchan_who(ch->b));
}

static void
send_return(sb_chan *ch, sb_msg *m)
{
    sb_amqp_method r = { .id = SB_M_BASIC_RETURN };

    if (m->traced)
        trace_returned(ch, m);
    r.u.basic_return.reply_code = SB_NO_ROUTE;
    r.u.basic_return.reply_text = sb_str_c("NO_ROUTE");
    r.u.basic_return.exchange = sb_msg_exchange(m);
    r.u.basic_return.routing_key = sb_msg_rk(m);
    sb_session__send_content(ch->conn, ch->id, &r, m);
}

int
sb_session__route(sb_chan *ch, sb_msg *m, bool mandatory, sb_publish_result *res, sb_error *err)
{
    sb_amqp_props props;
    const sb_amqp_table *headers = NULL;
    sb_str raw = sb_msg_props(m);
    int rc;

    /* Headers are decoded only when present (bit 13 of the flags). */
    if (raw.len >= 2 && (raw.p[0] & (SB_PROP_HEADERS >> 8))) {
        if (sb_amqp_props_decode(raw.p, raw.len, &props, &ch->conn->arena) == 0)
            headers = &props.headers;
    }
    if ((rc = sb_publish_as(ch->conn->vhost, sb_bchan_who(ch->b), m, headers, res, err)) != 0)
        return rc;
    sb_bchan_count_publish(ch->b, ch->confirm, mandatory, res->routed);
    if (!res->routed && mandatory)
        send_return(ch, m);
    return 0;
}

void
sb_session__tx_clear(sb_chan *ch)
{
    sb_list *it, *tmp;

    sb_list_foreach_safe(it, tmp, &ch->tx_ops) {
        sb_tx_op *op = SB_CONTAINER_OF(it, sb_tx_op, link);
        sb_list_remove(&op->link);
        sb_msg_unref(op->msg);
        sb_free(op);
    }
}
