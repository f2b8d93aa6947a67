/* session_int.h - structures shared by the files of src/session/ only. */
#ifndef SB_SESSION_INT_H
#define SB_SESSION_INT_H

#include "session.h"

#include "../amqp/amqp.h"
#include "../common/arena.h"
#include "../common/error.h"
#include "../common/list.h"

typedef struct sb_sconn sb_sconn;

enum { SB_ALARM_MEMORY = 1, SB_ALARM_DISK = 2 };
typedef struct sb_chan sb_chan;

struct sb_sessions {
    sb_loop *loop;
    sb_broker *broker;
    sb_session_opts opts;
    sb_list conns;              /* sb_sconn.link */
    size_t count;
    uint64_t next_id;
    unsigned alarms;            /* SB_ALARM_* bits now on */
    sb_timer mem_timer;
    sb_timer ack_timer;         /* consumer_timeout sweeps */
    sb_list durable_waiters;    /* channels with confirms waiting for the disk */
    uint64_t durable_pos;       /* the store's durable position, as last reported */
};

typedef enum sb_sconn_state {
    SC_AWAIT_HEADER,            /* protocol header not yet seen */
    SC_AWAIT_START_OK,
    SC_AWAIT_TUNE_OK,
    SC_AWAIT_OPEN,
    SC_OPEN,
    SC_CLOSING,                 /* we sent connection.close; await close-ok */
    SC_CLOSED,                  /* socket closing; ignore all input */
} sb_sconn_state;

struct sb_sconn {
    sb_sessions *srv;
    sb_conn *net;
    sb_list link;
    uint64_t id;
    sb_sconn_state state;
    sb_vhost *vhost;
    char user[128];
    sb_access access;           /* user's permissions in vhost, once open */
    uint16_t channel_max;
    uint32_t frame_max;
    uint16_t heartbeat;         /* negotiated seconds, 0 = off */
    bool cap_cancel_notify;     /* client understands basic.cancel from us */
    bool cap_auth_failure_close;
    bool cap_blocked;           /* client understands connection.blocked */
    bool blocked_sent;          /* we sent connection.blocked */
    bool pause_pending;         /* stop reading after the current frame */
    bool paused;                /* reading stopped by the memory alarm */
    bool has_exclusive;         /* declared an exclusive queue at some point */
    sb_chan **chans;            /* indexed by channel id; grown on demand */
    size_t nchans;
    sb_arena arena;             /* decoded frame data; reset per frame */
    sb_timer hb_timer;
    sb_timer deadline_timer;    /* handshake and close-ok deadlines */
    uint64_t last_recv_ms, last_send_ms;
    sb_list confirm_dirty;      /* channels with confirms to send */
    sb_buf scratch;             /* temporary encodings */
    sb_bconn bc;                /* what the management API lists (mgmt.c) */
};

typedef enum sb_chan_state { CH_OPEN, CH_CLOSING } sb_chan_state;

/* A publisher confirm that waits for the store: released, in order, once
 * the durable position reaches pos (pos 0 only waits for those before). */
typedef struct sb_pending_confirm {
    uint64_t seq;
    uint64_t pos;
    bool nack;
} sb_pending_confirm;

typedef enum sb_content_state {
    CA_NONE,                    /* no publish in progress */
    CA_HEADER,                  /* basic.publish seen, expecting a header */
    CA_BODY,                    /* header seen, expecting body frames */
} sb_content_state;

/* A publish or an acknowledgement held back by a transaction. */
typedef struct sb_tx_op {
    sb_list link;
    uint32_t method;            /* SB_M_BASIC_PUBLISH / ACK / NACK / REJECT */
    sb_msg *msg;                /* publish: one reference */
    bool mandatory;
    uint64_t tag;
    bool multiple, requeue;
} sb_tx_op;

struct sb_chan {
    sb_sconn *conn;
    uint16_t id;
    sb_chan_state state;
    sb_bchan *b;
    char last_queue[256];       /* for the empty queue name ("last declared") */
    /* content assembly */
    sb_content_state ca;
    bool pub_mandatory;
    uint16_t pub_exchange_len, pub_rk_len;
    uint8_t pub_exchange[256], pub_rk[256];
    sb_msg *pub_msg;
    uint64_t pub_filled;        /* body bytes of pub_msg received so far */
    /* publisher confirms */
    bool confirm;
    uint64_t pub_seq;           /* last publish sequence number */
    uint64_t confirm_sent;      /* highest sequence acked to the client */
    uint64_t confirm_ready;     /* highest sequence ready to ack */
    sb_list dirty_link;         /* in conn->confirm_dirty */
    sb_buf waiting;             /* sb_pending_confirm FIFO, behind the disk */
    size_t waiting_head;        /* bytes of waiting already released */
    sb_list wait_link;          /* in srv->durable_waiters */
    /* transactions */
    bool tx;
    sb_list tx_ops;             /* sb_tx_op */
};

/* The method handlers, sb_session__on_<class>_<method>, are declared in
 * dispatch_gen.h (included at the end) with the table that names them. */
typedef struct sb_dispatch sb_dispatch;

/* conn_amqp.c */
/* Sends a method frame on channel ch. */
void sb_session__send(sb_sconn *sc, uint16_t ch, const sb_amqp_method *m);
/* Closes the connection with 320 CONNECTION_FORCED and reason (once it is
 * open; before that, silently). */
void sb_session__conn_force(sb_sconn *sc, const char *reason);
/* Closes the connection with code and err's text (hard error). */
void sb_session__conn_fail(sb_sconn *sc, int code, const sb_error *err);
/* Closes the connection for a method frame the codec could not decode,
 * with RabbitMQ's "cannot decode <<...>>" text. */
void sb_session__decode_error(sb_sconn *sc, sb_str payload, int rc);
/* The reply to method d on channel 0 when the connection's state does not
 * accept it: 0 (dropped: we are closing) or a reply code, with err's text,
 * class and method set. */
int sb_session__conn_refuse(sb_sconn_state state, const sb_dispatch *d, sb_error *err);

/* mgmt.c: the connection as the broker lists it */
/* Fills sc->bc's addresses and registers it (at accept). */
void sb_session__mgmt_register(sb_sconn *sc);
void sb_session__mgmt_unregister(sb_sconn *sc);
/* connection.start-ok accepted: user, mechanism, client properties. */
void sb_session__mgmt_started(sb_sconn *sc, const sb_m_connection_start_ok *m);

/* alarm.c */
void sb_session__alarm_start(sb_sessions *s);
void sb_session__alarm_stop(sb_sessions *s);
/* sc published while the memory alarm is on. */
void sb_session__block_publisher(sb_sconn *sc);

/* chan.c */
sb_chan *sb_session__chan_new(sb_sconn *sc, uint16_t id);
void sb_session__chan_free(sb_chan *ch);
/* Handles a frame for channel ch (method, header or body). */
void sb_session__chan_frame(sb_sconn *sc, const sb_amqp_frame *f);
/* The reply to method d on an open channel that does not accept it (no
 * handler, or not in this state): a reply code with err's text set. */
int sb_session__chan_refuse(const sb_dispatch *d, sb_error *err);
/* Closes ch (or its connection, for a hard error) with code and err, as a
 * protocol error while handling method (0: none) would: for errors found
 * outside a frame, such as an acknowledgement timeout. */
void sb_session__chan_error(sb_chan *ch, int code, sb_error *err, uint32_t method);

void sb_session__ack_timeout_start(sb_sessions *s);
void sb_session__ack_timeout_stop(sb_sessions *s);
/* Sends pending confirms of every dirty channel. */
void sb_session__flush_confirms(sb_sconn *sc);
void sb_session__confirm_ready(sb_chan *ch, uint64_t seq);
/* Publish seq was refused by a queue: acks before it go out, then a nack. */
void sb_session__confirm_nack(sb_chan *ch, uint64_t seq);
/* The confirm of publish seq, given how its routing went. */
void sb_session__confirm(sb_chan *ch, uint64_t seq, const sb_publish_result *res);
void sb_session__confirm_waiting_free(sb_chan *ch);

/* publish.c: content assembly and routing of basic.publish */
int sb_session__publish_start(sb_chan *ch, const sb_m_basic_publish *p, sb_error *err);
int sb_session__content_header(sb_chan *ch, const sb_amqp_frame *f, sb_error *err);
int sb_session__content_body(sb_chan *ch, const sb_amqp_frame *f, sb_error *err);
/* Routes one complete message (also used by tx.commit). */
int sb_session__route(sb_chan *ch, sb_msg *m, bool mandatory, sb_publish_result *res,
                      sb_error *err);
void sb_session__tx_clear(sb_chan *ch);

/* deliver.c */
extern const sb_consumer_ops sb_session__consumer_ops;
/* Encodes a method with content (deliver, get-ok, return) and its body. */
void sb_session__send_content(sb_sconn *sc, uint16_t ch, const sb_amqp_method *m, sb_msg *msg);

#include "dispatch_gen.h"

#endif /* SB_SESSION_INT_H */
