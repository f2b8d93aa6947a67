/* auth.h - SASL PLAIN and AMQPLAIN for connection.start-ok, checked against
 * the broker's user database (auth/), with RabbitMQ's loopback_users rule
 * for the default user. */
#ifndef SB_SESSION_AUTH_H
#define SB_SESSION_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"
#include "../common/arena.h"
#include "../common/str.h"

typedef enum sb_auth_result {
    SB_AUTH_OK = 0,
    SB_AUTH_BAD_MECHANISM,      /* not PLAIN or AMQPLAIN */
    SB_AUTH_MALFORMED,          /* the response could not be parsed */
    SB_AUTH_BAD_CREDENTIALS,    /* unknown user or wrong password */
    SB_AUTH_NOT_LOOPBACK,       /* the default user from a remote address */
} sb_auth_result;

/* Parses response for mechanism and checks it against db; copies the user
 * name into user[0..user_len) once parsed (for the log line of a refusal
 * too). a holds decoded AMQPLAIN tables. */
sb_auth_result sb_auth_check(const sb_session_opts *o, const sb_auth *db, sb_str mechanism,
                             sb_str response, bool peer_is_loopback, char *user, size_t user_len,
                             sb_arena *a);
/* A log line for r. */
const char *sb_auth_describe(sb_auth_result r);

#endif /* SB_SESSION_AUTH_H */
