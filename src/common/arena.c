/* arena.c - see arena.h. */
#include "arena.h"

#include <string.h>

#include "alloc.h"

#define ARENA_BLOCK 8192

struct sb_arena_block {
    sb_arena_block *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

static sb_arena_block *
block_new(size_t cap, sb_arena_block *next)
{
    sb_arena_block *b = sb_malloc(sizeof *b + cap);
    b->next = next;
    b->cap = cap;
    return b;
}

void *
sb_arena_alloc(sb_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    void *p;

    if (a->head == NULL || a->used + need > a->head->cap) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        a->head = block_new(cap, a->head);
        a->used = 0;
    }
    p = a->head->data + a->used;
    a->used += need;
    memset(p, 0, n);
    return p;
}

void
sb_arena_reset(sb_arena *a)
{
    sb_arena_block *b, *next;

    if (a->head == NULL)
        return;
    /* Keep the oldest block (the last in the chain): it is the common size. */
    for (b = a->head; b->next != NULL; b = next) {
        next = b->next;
        sb_free(b);
    }
    a->head = b;
    a->used = 0;
}

void
sb_arena_free(sb_arena *a)
{
    sb_arena_block *b, *next;

    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        sb_free(b);
    }
    *a = SB_ARENA_INIT;
}
