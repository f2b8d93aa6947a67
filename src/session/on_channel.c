/* on_channel.c - the channel and access classes: flow, close, close-ok, a
 * second open, and access.request. Called from dispatch_gen.c. Opening a
 * channel is chan.c's, since no sb_chan exists to dispatch to before. */
#include "session_int.h"

/* channel.open on a channel that is already open. */
int
sb_session__on_channel_open(sb_chan *ch, const sb_m_channel_open *m, sb_error *err)
{
    return sb_error_set(err, SB_CHANNEL_ERROR, "second 'channel.open' seen");
}

int
sb_session__on_channel_flow(sb_chan *ch, const sb_m_channel_flow *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_CHANNEL_FLOW_OK };

    sb_bchan_flow(ch->b, m->active);
    r.u.channel_flow_ok.active = m->active;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}

/* On an open channel, or on one we are closing (both close at once).
 * Frees ch. */
int
sb_session__on_channel_close(sb_chan *ch, const sb_m_channel_close *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_CHANNEL_CLOSE_OK };

    sb_session__send(ch->conn, ch->id, &r);
    sb_session__chan_free(ch);
    return 0;
}

/* Only on a channel we are closing: the client's answer. Frees ch. */
int
sb_session__on_channel_close_ok(sb_chan *ch, const sb_m_channel_close_ok *m, sb_error *err)
{
    sb_session__chan_free(ch);
    return 0;
}

/* Access tickets are gone from 0-9-1; old clients still ask for one. */
int
sb_session__on_access_request(sb_chan *ch, const sb_m_access_request *m, sb_error *err)
{
    sb_amqp_method r = { .id = SB_M_ACCESS_REQUEST_OK };

    r.u.access_request_ok.ticket = 1;
    sb_session__send(ch->conn, ch->id, &r);
    return 0;
}
