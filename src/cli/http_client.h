/* http_client.h - a minimal HTTP/1.1 client for the subcommands that talk
 * to the management API (dlq list, definitions export/import): one request
 * per connection over a plain TCP socket, HTTP Basic credentials from the
 * URL, JSON bodies through jansson.
 *
 * It is deliberately small: no TLS, no redirects, no keep-alive. It works
 * against Switchboard's API and RabbitMQ's management plugin alike, since
 * both speak the same paths and JSON shapes. Failures are printed to
 * stderr in one line, as the AMQP helpers in client.h do.
 */
#ifndef SB_CLI_HTTP_CLIENT_H
#define SB_CLI_HTTP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "common/buf.h"

#define SB_HTTP_CLIENT_DEFAULT_URL "http://guest:guest@localhost:15672"

/* The URL to use: url if not NULL, else $HTTP_URL if set and non-empty,
 * else SB_HTTP_CLIENT_DEFAULT_URL. Borrowed. */
const char *sb_http_client_url(const char *url);

typedef struct sb_http_resp {
    int status;      /* 200, 404, ... */
    sb_buf body;     /* dechunked; owned, release with sb_http_resp_free */
} sb_http_resp;

/* Sends method path (with its query, already percent-encoded) to the
 * server of base_url (http://user:pass@host:port[/prefix]) with body
 * (may be NULL; sent as application/json), and reads the whole answer
 * into *out. Waits at most timeout_ms for each step. Returns 0 whatever
 * the status, or -1 after printing why (no connection, bad URL, bad
 * answer); out->body is then empty but must still be freed. */
int sb_http_client_request(const char *base_url, const char *method, const char *path,
                           const void *body, size_t body_len, int timeout_ms,
                           sb_http_resp *out);
void sb_http_resp_free(sb_http_resp *r);

/* GET path and parse the answer as JSON. Returns a new reference, or NULL
 * after printing why (including a non-2xx status with the server's
 * "reason"). */
json_t *sb_http_client_get_json(const char *base_url, const char *path);

/* Prints "switchboard: <what>: HTTP <status> <error>: <reason>" from an
 * answer in RabbitMQ's error shape (or its raw text). */
void sb_http_client_print_error(const sb_http_resp *r, const char *what);

/* Appends s to b percent-encoded for one path segment ("/" -> "%2F"). */
void sb_http_client_encode_segment(sb_buf *b, const char *s);

#endif /* SB_CLI_HTTP_CLIENT_H */
