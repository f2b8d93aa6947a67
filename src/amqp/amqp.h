/* amqp.h - the AMQP 0-9-1 wire codec: the module's only front header.
 *
 * Pure: no I/O, no globals, no malloc. Decoders read from a complete,
 * caller-owned buffer; strings and raw table bytes in the decoded structs
 * are views into that buffer (valid only while it is), and any arrays
 * come from the arena the caller passes. Encoders append to an sb_buf.
 *
 * Error convention: decoders return bytes consumed (> 0) or 0 where a
 * function says so, or a negative SB_AMQP_E* value.
 */
#ifndef SB_AMQP_H
#define SB_AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "../common/buf.h"
#include "../common/str.h"

/* ---- errors ---- */
enum {
    SB_AMQP_EMALFORMED = -1,  /* bytes do not form a valid value */
    SB_AMQP_EFRAME_END = -2,  /* frame-end octet is not 0xCE */
    SB_AMQP_ETOO_BIG = -3,    /* frame size over frame_max */
    SB_AMQP_EUNKNOWN = -4,    /* unknown class or method id */
    SB_AMQP_EDEPTH = -5,      /* field table nested too deep */
    SB_AMQP_EFRAME_TYPE = -6, /* unknown frame type */
    SB_AMQP_EUTF8 = -7,       /* a method's shortstr is not UTF-8 (utf8.c) */
};

/* ---- frames ---- */
#define SB_AMQP_FRAME_METHOD 1
#define SB_AMQP_FRAME_HEADER 2
#define SB_AMQP_FRAME_BODY 3
#define SB_AMQP_FRAME_HEARTBEAT 8
#define SB_AMQP_FRAME_END 0xCE
#define SB_AMQP_FRAME_MIN_SIZE 4096
#define SB_AMQP_FRAME_OVERHEAD 8 /* type(1) channel(2) size(4) ... end(1) */

/* The 8-byte protocol header a client sends first. */
extern const uint8_t sb_amqp_protocol_header[8]; /* "AMQP" 0 0 9 1 */

typedef struct sb_amqp_frame {
    uint8_t type;
    uint16_t channel;
    sb_str payload;  /* view into the input buffer */
} sb_amqp_frame;

/* Whether s is UTF-8 as RabbitMQ checks a method's short strings (see
 * utf8.c for exactly what that admits). */
bool sb_amqp_utf8_valid(sb_str s);

/* Splits one frame off the front of buf[0..len). Copies nothing.
 * frame_max counts the whole frame including its 8 bytes of overhead, as
 * the spec's frame-max does; 0 means no limit.
 * Returns bytes consumed (> 0), 0 if buf does not yet hold a whole frame,
 * SB_AMQP_ETOO_BIG (checked from the 7-byte header alone, so an oversized
 * frame is refused before its payload arrives), SB_AMQP_EFRAME_END, or
 * SB_AMQP_EFRAME_TYPE. */
ssize_t sb_amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max,
                            sb_amqp_frame *out);

/* Checks the 8-byte protocol header. Returns 8 if buf starts with the
 * 0-9-1 header, 0 if fewer than 8 bytes are available and those match so
 * far, SB_AMQP_EMALFORMED otherwise (the caller then sends
 * sb_amqp_protocol_header and closes). */
ssize_t sb_amqp_protocol_header_check(const uint8_t *buf, size_t len);

/* Appends a heartbeat frame. */
void sb_amqp_heartbeat_encode(sb_buf *b);
/* Appends a frame header (type, channel, size); the caller appends size
 * payload bytes and then sb_amqp_frame_end_encode. */
void sb_amqp_frame_start_encode(sb_buf *b, uint8_t type, uint16_t channel, uint32_t size);
void sb_amqp_frame_end_encode(sb_buf *b);

/* ---- field tables and values ----
 * Kinds use RabbitMQ's type letters (not the 0-9-1 spec's, which RabbitMQ
 * and every client ignore): */
enum {
    SB_FV_BOOL = 't',
    SB_FV_I8 = 'b',
    SB_FV_U8 = 'B',
    SB_FV_I16 = 's',
    SB_FV_U16 = 'u',
    SB_FV_I32 = 'I',
    SB_FV_U32 = 'i',
    SB_FV_I64 = 'l',
    SB_FV_F32 = 'f',
    SB_FV_F64 = 'd',
    SB_FV_DECIMAL = 'D',
    SB_FV_LONGSTR = 'S',
    SB_FV_ARRAY = 'A',
    SB_FV_TIMESTAMP = 'T',
    SB_FV_TABLE = 'F',
    SB_FV_VOID = 'V',
    SB_FV_BYTES = 'x',
};

#define SB_AMQP_TABLE_MAX_DEPTH 32

typedef struct sb_amqp_value sb_amqp_value;
typedef struct sb_amqp_entry sb_amqp_entry;

typedef struct sb_amqp_table {
    uint32_t n;
    sb_amqp_entry *e;  /* n entries, in wire order */
    sb_str raw;        /* encoded entries (without the 4-byte length), if decoded
                          from the wire; p == NULL for a table built in memory */
} sb_amqp_table;

typedef struct sb_amqp_array {
    uint32_t n;
    sb_amqp_value *v;
    sb_str raw;        /* as for tables */
} sb_amqp_array;

struct sb_amqp_value {
    uint8_t kind;      /* SB_FV_* */
    union {
        bool b;
        int64_t i;     /* I8, I16, I32, I64 */
        uint64_t u;    /* U8, U16, U32, TIMESTAMP */
        float f32;
        double f64;
        struct { uint8_t scale; uint32_t value; } dec;
        sb_str s;      /* LONGSTR, BYTES */
        sb_amqp_table t;
        sb_amqp_array a;
    } v;
};

struct sb_amqp_entry {
    sb_str key;        /* shortstr */
    sb_amqp_value v;
};

/* Decodes a field table: buf starts at its 4-byte length prefix. The
 * buffer is a complete method or header payload, so a table that runs
 * past len is malformed, not partial. Nesting deeper than
 * SB_AMQP_TABLE_MAX_DEPTH is SB_AMQP_EDEPTH. Returns bytes consumed
 * (4 + table length) or a negative error. */
ssize_t sb_amqp_table_decode(const uint8_t *buf, size_t len, sb_amqp_table *out,
                             sb_arena *a);
/* Appends the table with its 4-byte length prefix. Copies raw when set,
 * else encodes the entries. */
void sb_amqp_table_encode(sb_buf *b, const sb_amqp_table *t);
/* The first entry named key, or NULL. */
const sb_amqp_value *sb_amqp_table_get(const sb_amqp_table *t, const char *key);
/* Structural equality (same entries, same order, same kinds and values). */
bool sb_amqp_table_equal(const sb_amqp_table *a, const sb_amqp_table *b);
/* Integer value of any integer kind (I8..I64, U8..U32), for arguments such
 * as x-max-length that clients send with different widths. Returns false
 * if v is not an integer. */
bool sb_amqp_value_int(const sb_amqp_value *v, int64_t *out);

/* ---- content header and basic properties ---- */
enum {
    SB_PROP_CONTENT_TYPE = 1 << 15,
    SB_PROP_CONTENT_ENCODING = 1 << 14,
    SB_PROP_HEADERS = 1 << 13,
    SB_PROP_DELIVERY_MODE = 1 << 12,
    SB_PROP_PRIORITY = 1 << 11,
    SB_PROP_CORRELATION_ID = 1 << 10,
    SB_PROP_REPLY_TO = 1 << 9,
    SB_PROP_EXPIRATION = 1 << 8,
    SB_PROP_MESSAGE_ID = 1 << 7,
    SB_PROP_TIMESTAMP = 1 << 6,
    SB_PROP_TYPE = 1 << 5,
    SB_PROP_USER_ID = 1 << 4,
    SB_PROP_APP_ID = 1 << 3,
    SB_PROP_CLUSTER_ID = 1 << 2,
};

typedef struct sb_amqp_props {
    uint16_t flags;    /* SB_PROP_* bits of the fields present */
    sb_str content_type, content_encoding;
    sb_amqp_table headers;
    uint8_t delivery_mode, priority;
    sb_str correlation_id, reply_to, expiration, message_id;
    uint64_t timestamp;
    sb_str type, user_id, app_id, cluster_id;
} sb_amqp_props;

typedef struct sb_amqp_header {
    uint16_t class_id;
    uint64_t body_size;
    sb_str props_raw;  /* property flags and property list, as on the wire:
                          forwarded unchanged in deliveries */
    sb_amqp_props props;
} sb_amqp_header;

/* Decodes a content header frame payload. Returns 0 or a negative error
 * (unknown property-flag bits or a continuation bit are MALFORMED). */
int sb_amqp_header_decode(const uint8_t *buf, size_t len, sb_amqp_header *out,
                          sb_arena *a);
/* Decodes only the properties part (flags + list), e.g. props_raw. */
int sb_amqp_props_decode(const uint8_t *buf, size_t len, sb_amqp_props *out, sb_arena *a);
/* Appends the properties part (flags + list) for p. */
void sb_amqp_props_encode(sb_buf *b, const sb_amqp_props *p);
/* Appends a whole content header frame: frame header, class id, weight 0,
 * body size, then props_raw bytes, then frame end. */
void sb_amqp_header_frame_encode(sb_buf *b, uint16_t channel, uint16_t class_id,
                                 uint64_t body_size, sb_str props_raw);

/* ---- values as RabbitMQ's error texts print them (erlfmt.c) ---- */
/* Writes v as RabbitMQ's ~tp prints the decoded value (<<"foo">>, 23,
 * true, [{<<"k">>,long,1}], ...) into buf, NUL-terminated, truncated to
 * len. Floats use the shortest round-trip digits in Erlang's notation
 * (1.5, 1.0e20); ~tp's line wrapping of long terms is not reproduced. */
void sb_amqp_fmt_term(char *buf, size_t len, const sb_amqp_value *v);
/* The type atom rabbit_binary_parser gives a kind ("longstr", "long",
 * "signedint", ...). */
const char *sb_amqp_fmt_type(uint8_t kind);
/* Bytes as an Erlang binary: <<"abc">> or <<0,20,0>>. */
void sb_amqp_fmt_binary(char *buf, size_t len, sb_str bytes);

/* ---- methods (generated: methods_gen.h) ---- */
#include "methods_gen.h"

#endif /* SB_AMQP_H */
