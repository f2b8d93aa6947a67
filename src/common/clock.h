/* clock.h - monotonic time for timers; wall time for message timestamps. */
#ifndef SB_CLOCK_H
#define SB_CLOCK_H

#include <stdint.h>

uint64_t sb_clock_ms(void);    /* monotonic milliseconds */
uint64_t sb_clock_us(void);    /* monotonic microseconds */
uint64_t sb_wall_ms(void);     /* milliseconds since the Unix epoch */

#endif /* SB_CLOCK_H */
