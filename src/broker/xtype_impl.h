/* xtype_impl.h - helpers shared by the exchange-type files (xtype.c,
 * exchange_*.c). Module-internal: only src/broker and its unit tests
 * include it.
 *
 * A binding's identity is (key, args, dest), as in RabbitMQ: the same
 * queue bound twice with the same key but different arguments is two
 * bindings. Arguments are compared with sb_amqp_table_equal, and NULL is
 * equal to an empty table.
 */
#ifndef SB_XTYPE_IMPL_H
#define SB_XTYPE_IMPL_H

#include <stdint.h>

#include "xtype.h"

/* ---- owned copies of binding arguments ---- */

/* A deep copy of t (entries, keys, strings, nested tables and arrays, and
 * the raw bytes when t has them) in memory the copy owns. New allocation,
 * freed with sb_broker__args_free; NULL when t is NULL or empty. */
sb_amqp_table *sb_broker__args_dup(const sb_amqp_table *t);
void sb_broker__args_free(sb_amqp_table *t);
/* sb_amqp_table_equal, with NULL equal to an empty table. */
bool sb_broker__args_equal(const sb_amqp_table *a, const sb_amqp_table *b);

/* An empty view that is safe to hash and copy (never a NULL pointer). */
static inline sb_str
sb_broker__str_safe(sb_str s)
{
    return s.len == 0 ? SB_STR_LIT("") : s;
}

/* ---- one binding, and a list of them ---- */

typedef struct sb_broker__binding {
    uint8_t *key;          /* owned copy, or NULL when the index implies it */
    size_t klen;
    sb_amqp_table *args;   /* owned (sb_broker__args_dup), or NULL */
    void *dest;            /* borrowed: the caller's queue or exchange */
} sb_broker__binding;

/* A growable array of bindings. with_key says whether entries store and
 * compare the key (fanout, headers) or the key is implied by where the
 * list sits (a direct map slot, a topic trie node). */
typedef struct sb_broker__blist {
    sb_broker__binding *v;
    size_t n, cap;
    bool with_key;
} sb_broker__blist;

void sb_broker__binding_init(sb_broker__binding *b, bool with_key, sb_str key,
                             const sb_amqp_table *args, void *dest);
void sb_broker__binding_clear(sb_broker__binding *b);
bool sb_broker__binding_is(const sb_broker__binding *b, bool with_key, sb_str key,
                           const sb_amqp_table *args, void *dest);

/* Index of the equal binding in l, or -1. */
ptrdiff_t sb_broker__blist_find(const sb_broker__blist *l, sb_str key,
                                const sb_amqp_table *args, void *dest);
/* Adds the binding; returns 0, or 1 if an equal one was there. */
int sb_broker__blist_add(sb_broker__blist *l, sb_str key, const sb_amqp_table *args,
                         void *dest);
/* Removes the equal binding (order is not kept); returns 0, or 1 if none. */
int sb_broker__blist_del(sb_broker__blist *l, sb_str key, const sb_amqp_table *args,
                         void *dest);
void sb_broker__blist_free(sb_broker__blist *l);

/* ---- a deduplicating writer into an sb_dest_vec ----
 * Dedupes against what out already holds and what this route call adds.
 * Scans linearly while out is short, then switches to a pointer hash set,
 * so a fanout to 10,000 queues stays linear. */
typedef struct sb_broker__sink {
    sb_dest_vec *out;
    void **set;            /* open addressing, NULL = empty slot */
    size_t cap;            /* power of two, or 0 while scanning linearly */
} sb_broker__sink;

void sb_broker__sink_init(sb_broker__sink *s, sb_dest_vec *out);
void sb_broker__sink_add(sb_broker__sink *s, void *dest);
void sb_broker__sink_done(sb_broker__sink *s);

/* ---- debug counters for tests ---- */

/* Trie nodes the last topic route on index visited. */
uint64_t sb_broker__topic_last_visits(const void *index);
/* Trie nodes currently in the index (the root included). */
size_t sb_broker__topic_node_count(const void *index);

#endif /* SB_XTYPE_IMPL_H */
