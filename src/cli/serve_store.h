/* serve_store.h - the durable side of `serve`: the data directory, the
 * definitions, the message store and its place in the event loop. */
#ifndef SB_SERVE_STORE_H
#define SB_SERVE_STORE_H

#include "../broker/broker.h"
#include "../http/http.h"
#include "../net/net.h"
#include "../session/session.h"
#include "../store/store.h"

typedef struct sb_serve_store {
    sb_loop *loop;
    sb_broker *broker;
    sb_sessions *sessions;  /* told when confirms may go out; NULL once closing */
    sb_http *http;          /* likewise for REST publishes; NULL until started */
    sb_store *store;
    sb_io io;               /* the store's commit-done eventfd */
} sb_serve_store;

/* Creates dir if needed, recreates the saved definitions, opens the store
 * (recovering its messages into their queues) and hooks it into the loop.
 * Returns 0, or -errno after logging what went wrong and what to do. */
int sb_serve_store_open(sb_serve_store *ss, sb_loop *loop, sb_broker *broker,
                        sb_sessions *sessions, const char *dir);
/* Saves what changed, writes what is pending and closes the store. */
void sb_serve_store_close(sb_serve_store *ss);

#endif /* SB_SERVE_STORE_H */
