/* error.h - errors as values.
 *
 * A broker error is an AMQP reply code plus a formatted text, and the
 * class/method that caused it (for connection.close / channel.close).
 * Functions that can fail with a reply code return it (0 on success) and
 * fill an sb_error the caller passes; session/ is the one place that turns
 * it into a close.
 */
#ifndef SB_ERROR_H
#define SB_ERROR_H

#include <stdint.h>

typedef struct sb_error {
    int code;           /* AMQP reply code, 0 when none */
    uint16_t class_id;  /* set by the session from the failing method */
    uint16_t method_id;
    char text[256];     /* reply-text; AMQP shortstr, so under 256 bytes */
} sb_error;

/* Sets err (if not NULL) and returns code, so handlers can write
 * `return sb_error_set(err, SB_NOT_FOUND, "no queue '%s'", name);`. */
int sb_error_set(sb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* AMQP reply codes (spec constants). */
enum {
    SB_REPLY_SUCCESS = 200,
    SB_CONTENT_TOO_LARGE = 311,
    SB_NO_ROUTE = 312,
    SB_NO_CONSUMERS = 313,
    SB_CONNECTION_FORCED = 320,
    SB_INVALID_PATH = 402,
    SB_ACCESS_REFUSED = 403,
    SB_NOT_FOUND = 404,
    SB_RESOURCE_LOCKED = 405,
    SB_PRECONDITION_FAILED = 406,
    SB_FRAME_ERROR = 501,
    SB_SYNTAX_ERROR = 502,
    SB_COMMAND_INVALID = 503,
    SB_CHANNEL_ERROR = 504,
    SB_UNEXPECTED_FRAME = 505,
    SB_RESOURCE_ERROR = 506,
    SB_NOT_ALLOWED = 530,
    SB_NOT_IMPLEMENTED = 540,
    SB_INTERNAL_ERROR = 541,
};

/* The constant's name as RabbitMQ prints it in reply texts ("NOT_FOUND"). */
const char *sb_reply_name(int code);
/* True for connection-level (hard) errors. */
int sb_reply_is_hard(int code);

#endif /* SB_ERROR_H */
