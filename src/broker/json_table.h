/* json_table.h - JSON values <-> AMQP field tables, as RabbitMQ
 * management converts them: for the definitions file (durable.c) and the
 * HTTP API. See json_table.c for the type mapping. */
#ifndef SB_JSON_TABLE_H
#define SB_JSON_TABLE_H

#include <jansson.h>

#include "../amqp/amqp.h"

/* Converts a JSON object (or null: empty table) to a table whose entries
 * come from arena a and whose strings are views into obj. Returns 0, or
 * -1 with a reason in why. */
int sb_json_to_table(const json_t *obj, sb_amqp_table *out, sb_arena *a, char *why,
                     size_t why_len);
/* New JSON values (new references). */
json_t *sb_json_from_value(const sb_amqp_value *v);
json_t *sb_json_from_table(const sb_amqp_table *t);

/* Names (of queues, exchanges, routing keys) are bytes, and JSON strings
 * cannot carry every byte string. sb_json_from_name returns s as a JSON
 * string (a new reference); when s is not UTF-8 the string has '?' for
 * each byte above 0x7f and s's exact bytes go, hex-encoded, into
 * raw[field], which the caller stores as the object's SB_JSON_RAW_KEY
 * member. sb_json_name reads o[field] back exactly: from that member
 * when it is there, else the string (NULs included). The result views o,
 * or arena a; empty when absent. */
#define SB_JSON_RAW_KEY "switchboard_raw"
json_t *sb_json_from_name(sb_str s, json_t *raw, const char *field);
sb_str sb_json_name(const json_t *o, const char *field, sb_arena *a);

#endif /* SB_JSON_TABLE_H */
