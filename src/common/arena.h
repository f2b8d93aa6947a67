/* arena.h - bump allocator for short-lived decoded data (one frame).
 *
 * Allocations live until sb_arena_reset or sb_arena_free; there is no
 * per-allocation free. Blocks are kept across resets, so a steady stream
 * of frames does not call malloc.
 */
#ifndef SB_ARENA_H
#define SB_ARENA_H

#include <stddef.h>

typedef struct sb_arena_block sb_arena_block;

typedef struct sb_arena {
    sb_arena_block *head;   /* block being filled; older ones follow */
    size_t used;            /* bytes used in head */
} sb_arena;

#define SB_ARENA_INIT ((sb_arena){ NULL, 0 })

/* Returns n bytes aligned to 16, zeroed. Never NULL (aborts on OOM). */
void *sb_arena_alloc(sb_arena *a, size_t n);
/* Forgets every allocation; keeps the first block for reuse. */
void sb_arena_reset(sb_arena *a);
void sb_arena_free(sb_arena *a);

#endif /* SB_ARENA_H */
