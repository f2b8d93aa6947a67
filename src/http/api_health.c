/* api_health.c - GET /api/health/checks/...: {"status":"ok"} while the
 * check holds (the alarm checks are in api_nodes.c and answer 503 with
 * {"status":"failed","reason":...} as RabbitMQ's do). Runs on the loop
 * thread.
 */
#include "http_int.h"

void
sb_http__api_health_ok(sb_http_req *r)
{
    sb_http__reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}
