/* list.h - intrusive circular doubly linked list.
 *
 * Embed an sb_list in a struct; an sb_list used as a head is an empty ring
 * pointing at itself. SB_CONTAINER_OF maps a node back to its struct.
 */
#ifndef SB_LIST_H
#define SB_LIST_H

#include <stddef.h>
#include <stdbool.h>

typedef struct sb_list {
    struct sb_list *next, *prev;
} sb_list;

#define SB_CONTAINER_OF(ptr, type, field) \
    ((type *)((char *)(ptr) - offsetof(type, field)))

static inline void sb_list_init(sb_list *h) { h->next = h->prev = h; }
static inline bool sb_list_empty(const sb_list *h) { return h->next == h; }
/* True when n is linked into some list (after init, or after remove). */
static inline bool sb_list_linked(const sb_list *n) { return n->next != n; }

static inline void
sb_list_insert_before(sb_list *at, sb_list *n)
{
    n->prev = at->prev;
    n->next = at;
    at->prev->next = n;
    at->prev = n;
}

static inline void sb_list_push_back(sb_list *h, sb_list *n) { sb_list_insert_before(h, n); }
static inline void sb_list_push_front(sb_list *h, sb_list *n) { sb_list_insert_before(h->next, n); }

static inline void
sb_list_remove(sb_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

static inline sb_list *
sb_list_first(const sb_list *h)
{
    return h->next == h ? NULL : h->next;
}

/* Moves every node of from to the back of to; from ends empty. */
static inline void
sb_list_splice_back(sb_list *to, sb_list *from)
{
    if (sb_list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    sb_list_init(from);
}

#define sb_list_foreach(it, h) for ((it) = (h)->next; (it) != (h); (it) = (it)->next)
#define sb_list_foreach_safe(it, tmp, h) \
    for ((it) = (h)->next, (tmp) = (it)->next; (it) != (h); (it) = (tmp), (tmp) = (it)->next)

#endif /* SB_LIST_H */
