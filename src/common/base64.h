/* base64.h - base64 decoding (RFC 4648) on OpenSSL's codec, for the two
 * places that take base64 from users: password hashes (strict) and REST
 * publish payloads (either alphabet, padding optional, as clients send). */
#ifndef SB_BASE64_H
#define SB_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "str.h"

typedef enum sb_base64_mode {
    SB_BASE64_STRICT,   /* standard alphabet, padded to a multiple of 4 */
    SB_BASE64_LENIENT,  /* also the URL alphabet (-_), padding optional */
} sb_base64_mode;

/* Whether s is base64 in mode. */
bool sb_base64_valid(sb_str s, sb_base64_mode mode);
/* Decodes s into out, which has room for cap bytes (s.len bytes are
 * always enough). Returns the decoded length, or -1 when s is not base64
 * in mode or does not fit. */
ssize_t sb_base64_decode(sb_str s, sb_base64_mode mode, uint8_t *out, size_t cap);

#endif /* SB_BASE64_H */
