/* session.h - AMQP 0-9-1 connections and channels: bytes from net/, through
 * the amqp/ codec, into broker/ calls, and back. The one place where reply
 * codes become connection.close / channel.close.
 */
#ifndef SB_SESSION_H
#define SB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "../broker/broker.h"
#include "../net/net.h"

typedef struct sb_session_opts {
    uint16_t channel_max;       /* offered in connection.tune */
    uint32_t frame_max;         /* offered in connection.tune, bytes */
    uint16_t heartbeat;         /* offered in connection.tune, seconds */
    uint32_t max_connections;   /* refused beyond this (0: no limit) */
    const char *default_user;   /* "guest": created in the broker's user database if it
                                   has none yet; with loopback_users_only, allowed from
                                   loopback peers only */
    const char *default_pass;   /* "guest" */
    bool loopback_users_only;
    uint32_t handshake_timeout_ms;
    uint32_t consumer_timeout_ms;   /* a delivery unacked this long closes its channel (0: never) */
    uint64_t memory_high_watermark; /* bytes in use that block publishers (0: never) */
    uint32_t memory_check_ms;       /* how often memory and disk are checked */
    uint64_t disk_free_limit;       /* free bytes below which publishers block (0: never) */
    const char *data_dir;           /* whose file system's free space is checked */
} sb_session_opts;

typedef struct sb_sessions sb_sessions;

/* The AMQP side of the broker. Borrows loop and broker for its lifetime;
 * copies opts. */
sb_sessions *sb_sessions_new(sb_loop *loop, sb_broker *broker, const sb_session_opts *opts);
/* An sb_accept_fn: pass it to sb_listener_open with the sb_sessions as arg. */
void sb_sessions_accept(sb_listener *ls, sb_conn *c, void *arg);
/* Closes every connection with 320 CONNECTION_FORCED and reason. */
void sb_sessions_shutdown(sb_sessions *s, const char *reason);
size_t sb_sessions_count(const sb_sessions *s);
/* Checks memory and disk now (e.g. once the data directory exists). */
void sb_sessions_check_alarms(sb_sessions *s);
/* The store made everything up to pos durable (err 0), or lost what was
 * past its previous durable position (err < 0): releases the publisher
 * confirms that waited for it, as acks or nacks. */
void sb_sessions_durable(sb_sessions *s, uint64_t pos, int err);
/* Frees what is left; connections must be gone (after shutdown and the
 * loop having run until sb_sessions_count is 0, or bounded). */
void sb_sessions_free(sb_sessions *s);

#endif /* SB_SESSION_H */
