/* alloc.c - see alloc.h. */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
    fprintf(stderr, "switchboard: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
sb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
sb_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *
sb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

void *
sb_try_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

char *
sb_strdup(const char *s)
{
    return sb_strndup(s, strlen(s));
}

char *
sb_strndup(const void *p, size_t n)
{
    char *s = sb_malloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void *
sb_memdup(const void *p, size_t n)
{
    void *q = sb_malloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

void
sb_free(void *p)
{
    free(p);
}
