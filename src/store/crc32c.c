/* crc32c.c - CRC32C (Castagnoli polynomial, reflected 0x82F63B78).
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once),
 * otherwise slicing-by-8 tables built on first use. Both give the same
 * result; test_store_log checks the standard check value. Thread-safe:
 * the table and the CPU check are initialised through pthread_once.
 */
#include "store/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static int have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;

    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n-- > 0)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static void
init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t
crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        /* Little-endian load of the first four bytes, explicit so the
         * result does not depend on the host's byte order. */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^
            table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return c;
}

uint32_t
sb_store__crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&once, init);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_hw)
        return ~crc_hw(c, buf, n);
#endif
    return ~crc_sw(c, buf, n);
}

uint32_t
sb_store__crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&once, init);
    return ~crc_sw(~crc, buf, n);
}
