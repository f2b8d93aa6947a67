/* str.h - binary-safe string views.
 *
 * An sb_str never owns its bytes: it is borrowed from whatever buffer it
 * points into (a decoded frame, a queue name, a literal) and is valid only
 * while that buffer is.
 */
#ifndef SB_STR_H
#define SB_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdbool.h>

typedef struct sb_str {
    const uint8_t *p;
    size_t len;
} sb_str;

#define SB_STR_NULL ((sb_str){ NULL, 0 })
/* A view of a string literal. */
#define SB_STR_LIT(s) ((sb_str){ (const uint8_t *)(s), sizeof(s) - 1 })
/* For printf("%.*s", SB_STR_ARGS(s)). */
#define SB_STR_ARGS(s) (int)(s).len, (const char *)(s).p

static inline sb_str
sb_str_c(const char *s)
{
    return (sb_str){ (const uint8_t *)s, s ? strlen(s) : 0 };
}

static inline sb_str
sb_str_make(const void *p, size_t len)
{
    return (sb_str){ (const uint8_t *)p, len };
}

static inline bool
sb_str_eq(sb_str a, sb_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool
sb_str_eq_c(sb_str a, const char *b)
{
    return sb_str_eq(a, sb_str_c(b));
}

static inline bool
sb_str_has_prefix(sb_str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.p, prefix, n) == 0;
}

#endif /* SB_STR_H */
