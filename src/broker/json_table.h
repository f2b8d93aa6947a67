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

#endif /* SB_JSON_TABLE_H */
