/* map.c - see map.h. Linear probing, tombstones, grows at 3/4 load. */
#include "map.h"

#include <string.h>

#include "alloc.h"

static uint8_t tombstone;
#define TOMB (&tombstone)

uint32_t
sb_hash(const void *p, size_t n)
{
    /* FNV-1a; names are short, so this is cheap enough and simple. */
    const uint8_t *s = p;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

static sb_map_slot *
find(const sb_map *m, sb_str key, uint32_t h)
{
    size_t mask, i;

    if (m->cap == 0)
        return NULL;
    mask = m->cap - 1;
    for (i = h & mask;; i = (i + 1) & mask) {
        sb_map_slot *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->key != TOMB && s->hash == h && s->klen == key.len &&
            memcmp(s->key, key.p, key.len) == 0)
            return s;
    }
}

void *
sb_map_get(const sb_map *m, sb_str key)
{
    sb_map_slot *s = find(m, key, sb_hash(key.p, key.len));
    return s ? s->val : NULL;
}

static void
grow(sb_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    sb_map_slot *old = m->slots;
    size_t ocap = m->cap;

    if (m->count * 2 < m->cap)  /* mostly tombstones: rehash same size */
        ncap = m->cap;
    m->slots = sb_calloc(ncap, sizeof *m->slots);
    m->cap = ncap;
    m->used = m->count;
    for (size_t i = 0; i < ocap; i++) {
        sb_map_slot *s = &old[i];
        size_t j;
        if (s->key == NULL || s->key == TOMB)
            continue;
        for (j = s->hash & (ncap - 1); m->slots[j].key != NULL; j = (j + 1) & (ncap - 1))
            ;
        m->slots[j] = *s;
    }
    sb_free(old);
}

void
sb_map_put(sb_map *m, sb_str key, void *val, void **old)
{
    uint32_t h = sb_hash(key.p, key.len);
    sb_map_slot *s = find(m, key, h);
    size_t i, mask;

    if (old)
        *old = NULL;
    if (s) {
        if (old)
            *old = s->val;
        s->val = val;
        return;
    }
    if ((m->used + 1) * 4 > m->cap * 3)
        grow(m);
    mask = m->cap - 1;
    for (i = h & mask; m->slots[i].key != NULL && m->slots[i].key != TOMB; i = (i + 1) & mask)
        ;
    s = &m->slots[i];
    if (s->key == NULL)
        m->used++;
    s->key = sb_memdup(key.p, key.len ? key.len : 1);
    s->klen = (uint32_t)key.len;
    s->hash = h;
    s->val = val;
    m->count++;
}

void *
sb_map_del(sb_map *m, sb_str key)
{
    sb_map_slot *s = find(m, key, sb_hash(key.p, key.len));
    void *v;

    if (s == NULL)
        return NULL;
    v = s->val;
    sb_free(s->key);
    s->key = TOMB;
    s->val = NULL;
    m->count--;
    return v;
}

int
sb_map_next(const sb_map *m, size_t *iter, sb_str *key, void **val)
{
    for (size_t i = *iter; i < m->cap; i++) {
        sb_map_slot *s = &m->slots[i];
        if (s->key == NULL || s->key == TOMB)
            continue;
        if (key)
            *key = sb_str_make(s->key, s->klen);
        if (val)
            *val = s->val;
        *iter = i + 1;
        return 1;
    }
    *iter = m->cap;
    return 0;
}

void
sb_map_free(sb_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMB)
            sb_free(m->slots[i].key);
    sb_free(m->slots);
    *m = SB_MAP_INIT;
}
