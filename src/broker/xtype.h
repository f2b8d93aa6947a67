/* xtype.h - exchange types: the routing algorithms, one per file.
 *
 * An exchange type keeps its own index of bindings (key, arguments,
 * destination) and routes a message (routing key, headers) to the set of
 * destinations it matches. Destinations are opaque pointers owned by the
 * caller (queues or exchanges); the type never dereferences them.
 * All functions run on the loop thread.
 */
#ifndef SB_XTYPE_H
#define SB_XTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "../amqp/amqp.h"
#include "../common/str.h"

/* A growable vector of destinations, owned by the caller. route() appends
 * each matching destination once per call even when several bindings
 * match it (deduplicated by pointer). */
typedef struct sb_dest_vec {
    void **v;
    size_t n, cap;
} sb_dest_vec;

void sb_dest_vec_push_unique(sb_dest_vec *dv, void *dest);
void sb_dest_vec_free(sb_dest_vec *dv);

typedef struct sb_xtype {
    const char *name;  /* "direct", "fanout", "topic", "headers" */
    /* New, empty binding index. */
    void *(*create)(void);
    void (*destroy)(void *index);
    /* Adds binding (key, args, dest). args may be NULL (no arguments).
     * The index copies key and whatever it needs of args. Returns 0, or
     * 1 if an equal binding (same key, equal args, same dest) existed. */
    int (*bind)(void *index, sb_str key, const sb_amqp_table *args, void *dest);
    /* Removes the equal binding. Returns 0, or 1 if there was none. */
    int (*unbind)(void *index, sb_str key, const sb_amqp_table *args, void *dest);
    /* Appends matching destinations (deduplicated) to out. */
    void (*route)(void *index, sb_str routing_key, const sb_amqp_table *headers,
                  sb_dest_vec *out);
    /* Validates binding arguments before bind (e.g. headers x-match must be
     * all/any/all-with-x/any-with-x). Returns 0 or SB_PRECONDITION_FAILED
     * with text in err_text (RabbitMQ's wording). May be NULL. */
    int (*check_args)(const sb_amqp_table *args, char *err_text, size_t err_len);
} sb_xtype;

extern const sb_xtype sb_xtype_direct;
extern const sb_xtype sb_xtype_fanout;
extern const sb_xtype sb_xtype_topic;
extern const sb_xtype sb_xtype_headers;

/* The type named name, or NULL. */
const sb_xtype *sb_xtype_find(sb_str name);

#endif /* SB_XTYPE_H */
