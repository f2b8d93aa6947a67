/* utf8.c - the UTF-8 check RabbitMQ applies to a method's short strings.
 *
 * Pinned against RabbitMQ 3.10 (tests/integration/test_utf8.py): a byte
 * that cannot start a sequence (0x80-0xC1, 0xF8-0xFF), a missing or extra
 * continuation byte and an overlong form are malformed; surrogates
 * (U+D800-U+DFFF) and 4-byte forms with leads up to 0xF7 (past U+10FFFF)
 * are taken, as Erlang's binary UTF-8 matching there takes them. */
#include "amqp.h"

bool
sb_amqp_utf8_valid(sb_str s)
{
    const uint8_t *p = (const uint8_t *)s.p, *end = p + s.len;

    while (p < end) {
        uint8_t c = *p++;
        size_t more;
        uint8_t lo = 0x80;   /* the smallest second byte that is not overlong */

        if (c < 0x80)
            continue;
        if (c < 0xC2 || c > 0xF7)
            return false;
        if (c < 0xE0) {
            more = 1;
        } else if (c < 0xF0) {
            more = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
        } else {
            more = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
        }
        if ((size_t)(end - p) < more || p[0] < lo)
            return false;
        for (size_t i = 0; i < more; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += more;
    }
    return true;
}
