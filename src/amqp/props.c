/* props.c - content headers and the basic class's properties.
 *
 * A content header payload is class-id(2) weight(2) body-size(8) and
 * then the property flags (16 bits) followed by the present properties,
 * in flag order from bit 15 down. Bit 0 would announce a second flags
 * word; no class has more than 15 properties, so a set bit 0 (like the
 * unused bit 1 of basic) is malformed rather than something to skip.
 *
 * The props_raw view (flags to end of payload) is kept so a broker can
 * forward the properties byte for byte in basic.deliver without
 * re-encoding them.
 */
#include "amqp.h"
#include "wire.h"

#define HEADER_FIXED_SIZE 12 /* class-id(2) weight(2) body-size(8) */
#define PROPS_KNOWN 0xFFFCu  /* SB_PROP_CONTENT_TYPE .. SB_PROP_CLUSTER_ID */

/* How each property is stored in sb_amqp_props, in flag order. */
typedef enum prop_kind { PROP_SHORTSTR, PROP_OCTET, PROP_TABLE, PROP_TIMESTAMP } prop_kind;

typedef struct prop_desc {
    uint16_t flag;
    prop_kind kind;
    size_t off;        /* offset of the field in sb_amqp_props */
} prop_desc;

#define PROP(flag, kind, field) { flag, kind, offsetof(sb_amqp_props, field) }

static const prop_desc props_order[] = {
    PROP(SB_PROP_CONTENT_TYPE, PROP_SHORTSTR, content_type),
    PROP(SB_PROP_CONTENT_ENCODING, PROP_SHORTSTR, content_encoding),
    PROP(SB_PROP_HEADERS, PROP_TABLE, headers),
    PROP(SB_PROP_DELIVERY_MODE, PROP_OCTET, delivery_mode),
    PROP(SB_PROP_PRIORITY, PROP_OCTET, priority),
    PROP(SB_PROP_CORRELATION_ID, PROP_SHORTSTR, correlation_id),
    PROP(SB_PROP_REPLY_TO, PROP_SHORTSTR, reply_to),
    PROP(SB_PROP_EXPIRATION, PROP_SHORTSTR, expiration),
    PROP(SB_PROP_MESSAGE_ID, PROP_SHORTSTR, message_id),
    PROP(SB_PROP_TIMESTAMP, PROP_TIMESTAMP, timestamp),
    PROP(SB_PROP_TYPE, PROP_SHORTSTR, type),
    PROP(SB_PROP_USER_ID, PROP_SHORTSTR, user_id),
    PROP(SB_PROP_APP_ID, PROP_SHORTSTR, app_id),
    PROP(SB_PROP_CLUSTER_ID, PROP_SHORTSTR, cluster_id),
};

#define NPROPS (sizeof props_order / sizeof props_order[0])

static void
read_prop(sb_amqp__rd *r, const prop_desc *d, sb_amqp_props *p)
{
    void *field = (char *)p + d->off;

    switch (d->kind) {
    case PROP_SHORTSTR: *(sb_str *)field = sb_amqp__rd_shortstr(r); break;
    case PROP_OCTET: *(uint8_t *)field = sb_amqp__rd_u8(r); break;
    case PROP_TABLE: sb_amqp__rd_table(r, field); break;
    case PROP_TIMESTAMP: *(uint64_t *)field = sb_amqp__rd_u64(r); break;
    }
}

static void
write_prop(sb_buf *b, const prop_desc *d, const sb_amqp_props *p)
{
    const void *field = (const char *)p + d->off;

    switch (d->kind) {
    case PROP_SHORTSTR: sb_amqp__put_shortstr(b, *(const sb_str *)field); break;
    case PROP_OCTET: sb_buf_put_u8(b, *(const uint8_t *)field); break;
    case PROP_TABLE: sb_amqp_table_encode(b, field); break;
    case PROP_TIMESTAMP: sb_buf_put_u64(b, *(const uint64_t *)field); break;
    }
}

int
sb_amqp_props_decode(const uint8_t *buf, size_t len, sb_amqp_props *out, sb_arena *a)
{
    sb_amqp__rd r = sb_amqp__rd_make(buf, len, a);
    uint16_t flags = sb_amqp__rd_u16(&r);

    memset(out, 0, sizeof *out);
    if (r.err != 0)
        return r.err;
    if ((flags & ~PROPS_KNOWN) != 0)
        return SB_AMQP_EMALFORMED;
    out->flags = flags;
    for (size_t i = 0; i < NPROPS; i++)
        if (flags & props_order[i].flag)
            read_prop(&r, &props_order[i], out);
    return r.err;
}

int
sb_amqp_header_decode(const uint8_t *buf, size_t len, sb_amqp_header *out, sb_arena *a)
{
    sb_amqp__rd r = sb_amqp__rd_make(buf, len, a);

    memset(out, 0, sizeof *out);
    out->class_id = sb_amqp__rd_u16(&r);
    (void)sb_amqp__rd_u16(&r); /* weight: unused in 0-9-1, always 0 */
    out->body_size = sb_amqp__rd_u64(&r);
    if (r.err != 0)
        return r.err;
    out->props_raw = sb_str_make(buf + HEADER_FIXED_SIZE, len - HEADER_FIXED_SIZE);
    return sb_amqp_props_decode(out->props_raw.p, out->props_raw.len, &out->props, a);
}

void
sb_amqp_props_encode(sb_buf *b, const sb_amqp_props *p)
{
    uint16_t flags = p->flags & PROPS_KNOWN;

    sb_buf_put_u16(b, flags);
    for (size_t i = 0; i < NPROPS; i++)
        if (flags & props_order[i].flag)
            write_prop(b, &props_order[i], p);
}

void
sb_amqp_header_frame_encode(sb_buf *b, uint16_t channel, uint16_t class_id,
                            uint64_t body_size, sb_str props_raw)
{
    sb_amqp_frame_start_encode(b, SB_AMQP_FRAME_HEADER, channel,
                               (uint32_t)(HEADER_FIXED_SIZE + props_raw.len));
    sb_buf_put_u16(b, class_id);
    sb_buf_put_u16(b, 0); /* weight */
    sb_buf_put_u64(b, body_size);
    sb_buf_append_str(b, props_raw);
    sb_amqp_frame_end_encode(b);
}
