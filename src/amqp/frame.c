/* frame.c - AMQP 0-9-1 framing: the protocol header and the frame
 * envelope (type, channel, size, payload, frame-end octet).
 *
 * Parsing copies nothing: a parsed frame's payload is a view into the
 * caller's input buffer. Every limit is decided as early as the bytes
 * allow: an unknown frame type from the first octet, an oversized frame
 * from the 7-byte header, so a peer cannot make us buffer a frame we
 * are going to refuse anyway.
 */
#include "amqp.h"
#include "wire.h"

#define FRAME_HEADER_SIZE 7 /* type(1) channel(2) size(4) */

const uint8_t sb_amqp_protocol_header[8] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };

static bool
frame_type_valid(uint8_t type)
{
    return type == SB_AMQP_FRAME_METHOD || type == SB_AMQP_FRAME_HEADER ||
           type == SB_AMQP_FRAME_BODY || type == SB_AMQP_FRAME_HEARTBEAT;
}

ssize_t
sb_amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max, sb_amqp_frame *out)
{
    sb_amqp__rd r = sb_amqp__rd_make(buf, len, NULL);
    uint8_t type;
    uint16_t channel;
    uint32_t size;

    if (len >= 1 && !frame_type_valid(buf[0]))
        return SB_AMQP_EFRAME_TYPE;
    if (len < FRAME_HEADER_SIZE)
        return 0;
    type = sb_amqp__rd_u8(&r);
    channel = sb_amqp__rd_u16(&r);
    size = sb_amqp__rd_u32(&r);
    /* 64-bit sum: size + 8 must not wrap for sizes near 4 GiB. */
    if (frame_max != 0 && (uint64_t)size + SB_AMQP_FRAME_OVERHEAD > frame_max)
        return SB_AMQP_ETOO_BIG;
    if ((uint64_t)size + 1 > sb_amqp__rd_left(&r))
        return 0;
    if (buf[FRAME_HEADER_SIZE + size] != SB_AMQP_FRAME_END)
        return SB_AMQP_EFRAME_END;
    out->type = type;
    out->channel = channel;
    out->payload = sb_str_make(buf + FRAME_HEADER_SIZE, size);
    return (ssize_t)(FRAME_HEADER_SIZE + (size_t)size + 1);
}

ssize_t
sb_amqp_protocol_header_check(const uint8_t *buf, size_t len)
{
    size_t n = len < sizeof sb_amqp_protocol_header ? len : sizeof sb_amqp_protocol_header;

    if (n > 0 && memcmp(buf, sb_amqp_protocol_header, n) != 0)
        return SB_AMQP_EMALFORMED;
    return n == sizeof sb_amqp_protocol_header ? (ssize_t)n : 0;
}

void
sb_amqp_frame_start_encode(sb_buf *b, uint8_t type, uint16_t channel, uint32_t size)
{
    sb_buf_put_u8(b, type);
    sb_buf_put_u16(b, channel);
    sb_buf_put_u32(b, size);
}

void
sb_amqp_frame_end_encode(sb_buf *b)
{
    sb_buf_put_u8(b, SB_AMQP_FRAME_END);
}

void
sb_amqp_heartbeat_encode(sb_buf *b)
{
    sb_amqp_frame_start_encode(b, SB_AMQP_FRAME_HEARTBEAT, 0, 0);
    sb_amqp_frame_end_encode(b);
}
