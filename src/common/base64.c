/* base64.c - validation, and decoding through OpenSSL's EVP_DecodeBlock
 * after normalising a lenient input to the padded standard alphabet. */
#include "base64.h"

#include <limits.h>
#include <openssl/evp.h>
#include <string.h>

#include "alloc.h"

/* The value of c in the alphabet of mode, or -1. */
static int
value(uint8_t c, sb_base64_mode mode)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || (mode == SB_BASE64_LENIENT && c == '-'))
        return 62;
    if (c == '/' || (mode == SB_BASE64_LENIENT && c == '_'))
        return 63;
    return -1;
}

/* The length of s without its '=' padding (at most two), or SIZE_MAX
 * when the padding or the length is wrong for mode. */
static size_t
unpadded(sb_str s, sb_base64_mode mode)
{
    size_t len = s.len;

    while (len > 0 && s.p[len - 1] == '=' && s.len - len < 2)
        len--;
    if (mode == SB_BASE64_STRICT && s.len % 4 != 0)
        return SIZE_MAX;
    if (mode == SB_BASE64_LENIENT && (len % 4 == 1 || (len != s.len && s.len % 4 != 0)))
        return SIZE_MAX;
    return len;
}

bool
sb_base64_valid(sb_str s, sb_base64_mode mode)
{
    size_t len = unpadded(s, mode);

    if (len == SIZE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (value(s.p[i], mode) < 0)
            return false;
    return true;
}

ssize_t
sb_base64_decode(sb_str s, sb_base64_mode mode, uint8_t *out, size_t cap)
{
    size_t len = unpadded(s, mode), padded, n;
    uint8_t *norm;
    int got;

    if (!sb_base64_valid(s, mode) || s.len > INT_MAX - 3)
        return -1;
    if (len == 0)
        return 0;
    n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n > cap)
        return -1;
    /* The standard alphabet, padded: what EVP_DecodeBlock takes. Its
     * output counts the padding as zero bytes, hence n from the length. */
    padded = (len + 3) / 4 * 4;
    norm = sb_malloc(padded);
    for (size_t i = 0; i < len; i++)
        norm[i] = s.p[i] == '-' ? '+' : s.p[i] == '_' ? '/' : (uint8_t)s.p[i];
    memset(norm + len, '=', padded - len);
    uint8_t *tmp = sb_malloc(padded / 4 * 3);
    got = EVP_DecodeBlock(tmp, norm, (int)padded);
    if (got >= 0)
        memcpy(out, tmp, n);
    sb_free(tmp);
    sb_free(norm);
    return got < 0 ? -1 : (ssize_t)n;
}
