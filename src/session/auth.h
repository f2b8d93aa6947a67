/* auth.h - SASL PLAIN and AMQPLAIN for connection.start-ok, checked against
 * the broker's user database (auth/), with RabbitMQ's loopback_users rule
 * for the default user, and EXTERNAL on TLS connections: the user is the
 * verified client certificate's CN, as RabbitMQ's rabbitmq_auth_mechanism_ssl
 * with ssl_cert_login_from = common_name. Like RabbitMQ, EXTERNAL is offered
 * on every TLS connection and refused at start-ok when no certificate was
 * verified (a clearer error than a failed mechanism negotiation). */
#ifndef SB_SESSION_AUTH_H
#define SB_SESSION_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"
#include "../common/arena.h"
#include "../common/str.h"

typedef enum sb_auth_result {
    SB_AUTH_OK = 0,
    SB_AUTH_BAD_MECHANISM,      /* not PLAIN or AMQPLAIN (or EXTERNAL over TLS) */
    SB_AUTH_MALFORMED,          /* the response could not be parsed */
    SB_AUTH_BAD_CREDENTIALS,    /* unknown user or wrong password */
    SB_AUTH_NOT_LOOPBACK,       /* the default user from a remote address */
    SB_AUTH_NO_PEER_CERT,       /* EXTERNAL without a verified client certificate */
} sb_auth_result;

/* The mechanisms connection.start offers: EXTERNAL too over TLS. Static
 * text. */
const char *sb_auth_mechanisms(bool tls);
/* Parses response for mechanism and checks it against db; copies the user
 * name into user[0..user_len) once parsed (for the log line of a refusal
 * too). a holds decoded AMQPLAIN tables. EXTERNAL (tls only) logs in as
 * cert_cn, the verified client certificate's CN (or NULL: none), if db has
 * that user, whatever the response says. */
sb_auth_result sb_auth_check(const sb_session_opts *o, const sb_auth *db, sb_str mechanism,
                             sb_str response, bool peer_is_loopback, bool tls,
                             const char *cert_cn, char *user, size_t user_len, sb_arena *a);
/* A log line for r. */
const char *sb_auth_describe(sb_auth_result r);

#endif /* SB_SESSION_AUTH_H */
