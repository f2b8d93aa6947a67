/* mem.h - what the operating system says about memory. */
#ifndef SB_MEM_H
#define SB_MEM_H

#include <stdint.h>

/* Resident set size of this process in bytes, or 0 if unknown. */
uint64_t sb_mem_rss(void);
/* Bytes the allocator has handed out and not had back (heap in use plus
 * mmapped blocks): drops as soon as memory is freed, unlike the RSS. */
uint64_t sb_mem_used(void);
/* Physical memory of the machine in bytes, or 0 if unknown. */
uint64_t sb_mem_total(void);

#endif /* SB_MEM_H */
