/* alloc.h - allocation that aborts on out-of-memory, with a live-bytes counter.
 *
 * sb_malloc/sb_calloc/sb_realloc never return NULL: running out of memory
 * is not a condition the broker can report to a peer, so it logs and
 * aborts (as Redis does). sb_try_malloc returns NULL for large buffers
 * whose size comes from outside. The live-bytes counter lets memory
 * limits be enforced later; it is read on the loop thread only.
 */
#ifndef SB_ALLOC_H
#define SB_ALLOC_H

#include <stddef.h>

void *sb_malloc(size_t n);
void *sb_calloc(size_t count, size_t size);
void *sb_realloc(void *p, size_t n);
void *sb_try_malloc(size_t n);
char *sb_strdup(const char *s);
/* A NUL-terminated copy of n bytes of p. New allocation. */
char *sb_strndup(const void *p, size_t n);
void *sb_memdup(const void *p, size_t n);
void sb_free(void *p);

#endif /* SB_ALLOC_H */
