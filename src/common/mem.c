/* mem.c - see mem.h. */
#include "mem.h"

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

uint64_t
sb_mem_rss(void)
{
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (f == NULL)
        return 0;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t
sb_mem_total(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SB_ASAN 1
#endif

#ifdef SB_ASAN
#include <sanitizer/allocator_interface.h>
#endif

uint64_t
sb_mem_used(void)
{
#ifdef SB_ASAN
    /* ASan replaces malloc, so mallinfo2 knows nothing; ask ASan's allocator. */
    return (uint64_t)__sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();

    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#endif
}
