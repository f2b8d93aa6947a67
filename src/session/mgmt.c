/* mgmt.c - an AMQP connection as the management API sees it: the sb_bconn
 * each connection registers with the broker (addresses, user, client
 * properties, negotiated limits), its state in RabbitMQ's words, its open
 * channels, and closing it on request (DELETE /api/connections/{name},
 * 320 CONNECTION_FORCED with the caller's reason, as RabbitMQ does).
 * Nothing here is on the message path. Runs on the loop thread. */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/log.h"

/* "127.0.0.1:5672" or "[::1]:5672" into host and port. */
static void
split_addr(const char *addr, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);

    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    snprintf(host, host_len, "%.*s", (int)n, addr);
    *port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
}

static const char *
mgmt_state(const sb_bconn *c)
{
    const sb_sconn *sc = SB_CONTAINER_OF(c, sb_sconn, bc);

    switch (sc->state) {
    case SC_AWAIT_HEADER:
    case SC_AWAIT_START_OK: return "starting";
    case SC_AWAIT_TUNE_OK: return "tuning";
    case SC_AWAIT_OPEN: return "opening";
    case SC_OPEN: break;
    default: return "closing";
    }
    if (sc->paused || sc->pause_pending)
        return "blocked";
    return sc->srv->alarms != 0 ? "blocking" : "running";
}

static uint32_t
tx_pending(const sb_chan *ch)
{
    const sb_list *it;
    uint32_t n = 0;

    sb_list_foreach(it, &ch->tx_ops)
        n++;
    return n;
}

static void
mgmt_each_channel(sb_bconn *c, void (*fn)(const sb_chan_view *v, void *ud), void *ud)
{
    sb_sconn *sc = SB_CONTAINER_OF(c, sb_sconn, bc);

    for (size_t i = 0; i < sc->nchans; i++) {
        sb_chan *ch = sc->chans[i];
        if (ch == NULL || ch->state != CH_OPEN || ch->b == NULL)
            continue;
        sb_chan_view v = {
            .number = ch->id,
            .confirm = ch->confirm,
            .transactional = ch->tx,
            .unconfirmed = ch->confirm ? ch->pub_seq - ch->confirm_sent : 0,
            .uncommitted = ch->tx ? tx_pending(ch) : 0,
            .bchan = ch->b,
        };
        fn(&v, ud);
    }
}

static void
mgmt_force_close(sb_bconn *c, const char *reason)
{
    sb_sconn *sc = SB_CONTAINER_OF(c, sb_sconn, bc);

    sb_log(SB_LOG_INFO, "amqp", "%s: closing connection on request: %s", c->name, reason);
    sb_session__conn_force(sc, reason);
}

static const sb_bconn_ops mgmt_ops = {
    .force_close = mgmt_force_close,
    .each_channel = mgmt_each_channel,
    .state = mgmt_state,
};

void
sb_session__mgmt_register(sb_sconn *sc)
{
    sb_bconn *c = &sc->bc;
    char local[80];

    c->ops = &mgmt_ops;
    sb_conn_local(sc->net, local, sizeof local);
    snprintf(c->name, sizeof c->name, "%s -> %s", sb_conn_peer(sc->net), local);
    split_addr(sb_conn_peer(sc->net), c->peer_host, sizeof c->peer_host, &c->peer_port);
    split_addr(local, c->host, sizeof c->host, &c->port);
    c->connected_at = sb_wall_ms();
    c->frame_max = sc->frame_max;
    sb_broker_conn_add(sc->srv->broker, c);
}

void
sb_session__mgmt_unregister(sb_sconn *sc)
{
    sb_broker_conn_remove(sc->srv->broker, &sc->bc);
    sb_buf_free(&sc->bc.client_props);
}

void
sb_session__mgmt_started(sb_sconn *sc, const sb_m_connection_start_ok *m)
{
    sb_bconn *c = &sc->bc;

    snprintf(c->user, sizeof c->user, "%s", sc->user);
    snprintf(c->auth_mechanism, sizeof c->auth_mechanism, "%.*s", SB_STR_ARGS(m->mechanism));
    sb_buf_reset(&c->client_props);
    sb_amqp_table_encode(&c->client_props, &m->client_properties);
}
