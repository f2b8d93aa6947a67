/* map.h - open-addressing hash map from byte-string keys to pointers.
 *
 * Keys are copied into the map (the map owns its copies); values are
 * borrowed pointers the caller manages. Used for names (queues, exchanges,
 * consumer tags) and ids.
 */
#ifndef SB_MAP_H
#define SB_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

typedef struct sb_map_slot {
    uint8_t *key;      /* NULL: empty; (uint8_t *)&sb_map_tombstone: deleted */
    uint32_t klen;
    uint32_t hash;
    void *val;
} sb_map_slot;

typedef struct sb_map {
    sb_map_slot *slots;
    size_t cap;        /* power of two, or 0 */
    size_t count;      /* live entries */
    size_t used;       /* live + tombstones */
} sb_map;

#define SB_MAP_INIT ((sb_map){ NULL, 0, 0, 0 })

void sb_map_free(sb_map *m);
void *sb_map_get(const sb_map *m, sb_str key);
/* Sets key to val, replacing any old value (returned through *old if
 * old is not NULL, else NULL there). */
void sb_map_put(sb_map *m, sb_str key, void *val, void **old);
/* Removes key; returns its value or NULL. */
void *sb_map_del(sb_map *m, sb_str key);

/* Iteration: for (size_t i = 0; sb_map_next(m, &i, &k, &v);) ...
 * Must not insert during iteration; deleting the current key is fine. */
int sb_map_next(const sb_map *m, size_t *iter, sb_str *key, void **val);

uint32_t sb_hash(const void *p, size_t n);

#endif /* SB_MAP_H */
