/* log.h - leveled logging to stderr.
 *
 * The level is process-wide (set once from the config before the loop
 * starts) and checked before formatting, so a disabled debug line costs a
 * compare.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

typedef enum sb_log_level {
    SB_LOG_DEBUG = 0,
    SB_LOG_INFO,
    SB_LOG_WARN,
    SB_LOG_ERROR,
} sb_log_level;

extern sb_log_level sb_log_min;

void sb_log_set_level(sb_log_level l);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int sb_log_parse_level(const char *s);
void sb_log_(sb_log_level l, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sb_log(l, subsys, ...) \
    do { if ((l) >= sb_log_min) sb_log_(l, subsys, __VA_ARGS__); } while (0)

/* Assert that stays on in release builds: for our own bugs only, never
 * for bytes from the network or the disk. */
#define sb_assert(c) \
    do { if (!(c)) sb_assert_fail(#c, __FILE__, __LINE__); } while (0)
void sb_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif /* SB_LOG_H */
