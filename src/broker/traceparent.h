/* traceparent.h - W3C Trace Context ids: parsing and making the
 * `traceparent` value "VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-PPPPPPPPPPPPPPPP-FF"
 * (version, 16-byte trace id, 8-byte parent/span id, flags; lowercase hex)
 * that links the messages of one user action (trace.c).
 *
 * Pure: no broker state, no allocation (the fuzz target links it alone).
 * Malformed values are ignored, as the W3C recommendation says a receiver
 * must: wrong length, a character that is not lowercase hex, an all-zero
 * trace or parent id, version ff, or a later version not followed by '-'.
 */
#ifndef SB_TRACEPARENT_H
#define SB_TRACEPARENT_H

#include <stdbool.h>
#include <stdint.h>

#include "../amqp/amqp.h"
#include "../common/str.h"

#define SB_TRACEPARENT_LEN 55     /* the version-00 form */
#define SB_TRACE_ID_HEX 32
#define SB_SPAN_ID_HEX 16

typedef struct sb_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];         /* the traceparent's parent-id: the sender's span */
    uint8_t flags;              /* trace-flags (01 = sampled) */
} sb_trace_ctx;

/* Parses a traceparent value. Returns true and fills *out (OUT), or false
 * (and leaves *out untouched) for anything malformed. */
bool sb_traceparent_parse(sb_str s, sb_trace_ctx *out);
/* Writes the version-00 form of c into out (56 bytes: 55 and a NUL). */
void sb_traceparent_format(const sb_trace_ctx *c, char out[SB_TRACEPARENT_LEN + 1]);
/* The "traceparent" entry of a header table, parsed; false when absent or
 * malformed. Accepts the value as a long string or a byte array (what
 * pika sends for a bytes value). */
bool sb_trace_ctx_from_headers(const sb_amqp_table *h, sb_trace_ctx *out);
/* A new trace: random trace and span ids, flags 01 (OUT). */
void sb_trace_ctx_new(sb_trace_ctx *out);
/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void sb_trace_hex(const uint8_t *p, size_t n, char *out);
/* Parses exactly 2n lowercase hex characters into out[n]; false if s is
 * not that (the trace id in an HTTP path, say). */
bool sb_trace_unhex(sb_str s, uint8_t *out, size_t n);

#endif /* SB_TRACEPARENT_H */
