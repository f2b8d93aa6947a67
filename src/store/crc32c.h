/* crc32c.h - CRC32C (Castagnoli), private to the store. */
#ifndef SB_STORE_CRC32C_H
#define SB_STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC32C: start with crc = 0, feed pieces in order.
 * sb_store__crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t sb_store__crc32c(uint32_t crc, const void *buf, size_t n);
/* The table-driven version, always; for tests comparing the two. */
uint32_t sb_store__crc32c_sw(uint32_t crc, const void *buf, size_t n);

#endif /* SB_STORE_CRC32C_H */
