/* auth.c - see auth.h. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "../amqp/amqp.h"

/* PLAIN: authzid NUL authcid NUL passwd (RFC 4616). */
static int
parse_plain(sb_str r, sb_str *user, sb_str *pass)
{
    const uint8_t *a = memchr(r.p, 0, r.len), *b;

    if (a == NULL)
        return -1;
    b = memchr(a + 1, 0, r.len - (size_t)(a + 1 - r.p));
    if (b == NULL)
        return -1;
    *user = sb_str_make(a + 1, (size_t)(b - a - 1));
    *pass = sb_str_make(b + 1, r.len - (size_t)(b + 1 - r.p));
    return 0;
}

/* AMQPLAIN: a field table without its length prefix, with LOGIN and
 * PASSWORD long strings. */
static int
parse_amqplain(sb_str r, sb_str *user, sb_str *pass, sb_arena *a)
{
    uint8_t framed[4 + 1024];
    sb_amqp_table t;
    const sb_amqp_value *u, *p;

    if (r.len > sizeof framed - 4)
        return -1;
    framed[0] = (uint8_t)(r.len >> 24);
    framed[1] = (uint8_t)(r.len >> 16);
    framed[2] = (uint8_t)(r.len >> 8);
    framed[3] = (uint8_t)r.len;
    memcpy(framed + 4, r.p, r.len);
    if (sb_amqp_table_decode(framed, 4 + r.len, &t, a) < 0)
        return -1;
    u = sb_amqp_table_get(&t, "LOGIN");
    p = sb_amqp_table_get(&t, "PASSWORD");
    if (u == NULL || p == NULL || u->kind != SB_FV_LONGSTR || p->kind != SB_FV_LONGSTR)
        return -1;
    /* The views point into framed, which dies here: the caller compares
     * before returning, so hand back views into r instead. */
    *user = sb_str_make(r.p + (u->v.s.p - framed - 4), u->v.s.len);
    *pass = sb_str_make(r.p + (p->v.s.p - framed - 4), p->v.s.len);
    return 0;
}

const char *
sb_auth_mechanisms(bool tls)
{
    return tls ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN";
}

sb_auth_result
sb_auth_check(const sb_session_opts *o, const sb_auth *db, sb_str mechanism, sb_str response,
              bool peer_is_loopback, bool tls, const char *cert_cn, char *user, size_t user_len,
              sb_arena *a)
{
    sb_str u, p;
    int rc;

    if (sb_str_eq_c(mechanism, "EXTERNAL") && tls) {
        /* The certificate proved who it is: the user must exist, and no
         * password is involved (RabbitMQ ignores the response too). */
        if (cert_cn == NULL)
            return SB_AUTH_NO_PEER_CERT;
        u = sb_str_c(cert_cn);
        snprintf(user, user_len, "%s", cert_cn);
        if (u.len >= user_len || sb_auth_user(db, u) == NULL)
            return SB_AUTH_BAD_CREDENTIALS;
        goto loopback;
    }
    if (sb_str_eq_c(mechanism, "PLAIN"))
        rc = parse_plain(response, &u, &p);
    else if (sb_str_eq_c(mechanism, "AMQPLAIN"))
        rc = parse_amqplain(response, &u, &p, a);
    else
        return SB_AUTH_BAD_MECHANISM;
    if (rc < 0)
        return SB_AUTH_MALFORMED;
    snprintf(user, user_len, "%.*s", SB_STR_ARGS(u));
    /* A name too long for the connection's copy could never be matched
     * against the database again (permission checks use the copy). */
    if (u.len >= user_len || sb_auth_login(db, u, p) == NULL)
        return SB_AUTH_BAD_CREDENTIALS;
loopback:
    /* RabbitMQ's loopback_users (default [guest]): the default user may
     * log in from this host only. */
    if (o->loopback_users_only && o->default_user != NULL && sb_str_eq_c(u, o->default_user) &&
        !peer_is_loopback)
        return SB_AUTH_NOT_LOOPBACK;
    return SB_AUTH_OK;
}

const char *
sb_auth_describe(sb_auth_result r)
{
    switch (r) {
    case SB_AUTH_OK: return "authenticated";
    case SB_AUTH_BAD_MECHANISM: return "login refused: unsupported SASL mechanism";
    case SB_AUTH_MALFORMED: return "login refused: malformed SASL response";
    case SB_AUTH_BAD_CREDENTIALS: return "login refused: invalid credentials";
    case SB_AUTH_NOT_LOOPBACK:
        return "login refused: user can only connect via localhost (loopback_users)";
    case SB_AUTH_NO_PEER_CERT:
        return "login refused: EXTERNAL needs a verified client certificate (ssl_options.verify "
               "= verify_peer, and the client must send one)";
    }
    return "login refused";
}
