/* test_session_auth.c - connection.start-ok's SASL responses checked
 * against the user database: PLAIN and AMQPLAIN, refusals, and RabbitMQ's
 * loopback_users rule (the default user from this host only), which the
 * integration tests cannot reach: they connect over loopback only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "session/auth.h"

static const sb_session_opts opts = {
    .default_user = "guest", .default_pass = "guest", .loopback_users_only = true,
};

static int
setup(void **state)
{
    sb_auth *a = sb_auth_new();
    char why[200];
    sb_user_def d = { .name = SB_STR_LIT("guest"), .has_password = true,
                      .password = SB_STR_LIT("guest") };

    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 1);
    d.name = SB_STR_LIT("app");
    d.password = SB_STR_LIT("s3cret");
    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 1);
    *state = a;
    return 0;
}

static int
teardown(void **state)
{
    sb_auth_free(*state);
    return 0;
}

static sb_auth_result
plain(const sb_auth *a, const char *user, const char *pass, bool loopback, char *out)
{
    char resp[128];
    size_t n = (size_t)snprintf(resp, sizeof resp, "%c%s%c%s", 0, user, 0, pass);
    sb_arena arena = SB_ARENA_INIT;
    sb_auth_result r = sb_auth_check(&opts, a, SB_STR_LIT("PLAIN"), sb_str_make(resp, n),
                                     loopback, false, NULL, out, 128, &arena);

    sb_arena_free(&arena);
    return r;
}

static void
plain_logins_are_checked_against_the_database(void **state)
{
    char user[128];

    assert_int_equal(plain(*state, "app", "s3cret", true, user), SB_AUTH_OK);
    assert_string_equal(user, "app");
    assert_int_equal(plain(*state, "app", "wrong", true, user), SB_AUTH_BAD_CREDENTIALS);
    assert_int_equal(plain(*state, "nobody", "s3cret", true, user), SB_AUTH_BAD_CREDENTIALS);
    assert_string_equal(user, "nobody");   /* named in the refusal's log line */
}

static void
the_default_user_may_log_in_from_loopback_only_and_others_from_anywhere(void **state)
{
    char user[128];

    assert_int_equal(plain(*state, "guest", "guest", true, user), SB_AUTH_OK);
    assert_int_equal(plain(*state, "guest", "guest", false, user), SB_AUTH_NOT_LOOPBACK);
    assert_int_equal(plain(*state, "app", "s3cret", false, user), SB_AUTH_OK);
    /* A wrong password is a wrong password, wherever it comes from. */
    assert_int_equal(plain(*state, "guest", "nope", false, user), SB_AUTH_BAD_CREDENTIALS);
}

static void
amqplain_carries_login_and_password_in_a_table(void **state)
{
    /* LOGIN S "app" PASSWORD S "s3cret", a field table without its length. */
    static const uint8_t resp[] = {
        5, 'L', 'O', 'G', 'I', 'N', 'S', 0, 0, 0, 3, 'a', 'p', 'p',
        8, 'P', 'A', 'S', 'S', 'W', 'O', 'R', 'D', 'S', 0, 0, 0, 6, 's', '3', 'c', 'r', 'e', 't',
    };
    sb_arena arena = SB_ARENA_INIT;
    char user[128];

    assert_int_equal(sb_auth_check(&opts, *state, SB_STR_LIT("AMQPLAIN"),
                                   sb_str_make(resp, sizeof resp), false, false, NULL, user,
                                   sizeof user,
                                   &arena),
                     SB_AUTH_OK);
    assert_string_equal(user, "app");
    assert_int_equal(sb_auth_check(&opts, *state, SB_STR_LIT("AMQPLAIN"),
                                   sb_str_make(resp, 10), false, false, NULL, user, sizeof user,
                                   &arena),
                     SB_AUTH_MALFORMED);
    assert_int_equal(sb_auth_check(&opts, *state, SB_STR_LIT("CRAM-MD5"),
                                   sb_str_make(resp, sizeof resp), false, false, NULL, user,
                                   sizeof user,
                                   &arena),
                     SB_AUTH_BAD_MECHANISM);
    sb_arena_free(&arena);
}

static sb_auth_result
external(const sb_auth *a, bool tls, const char *cert_cn, bool loopback, char *out)
{
    sb_arena arena = SB_ARENA_INIT;
    sb_auth_result r = sb_auth_check(&opts, a, SB_STR_LIT("EXTERNAL"), SB_STR_LIT("ignored"),
                                     loopback, tls, cert_cn, out, 128, &arena);

    sb_arena_free(&arena);
    return r;
}

/* rabbitmq_auth_mechanism_ssl: over TLS, the verified certificate's CN is
 * the user, if the database has it; offered on every TLS connection and
 * refused without a certificate; not a mechanism of plain TCP at all. */
static void
external_logs_in_as_the_certificate_cn_over_tls_only(void **state)
{
    char user[128];

    assert_int_equal(external(*state, true, "app", false, user), SB_AUTH_OK);
    assert_string_equal(user, "app");
    assert_int_equal(external(*state, true, "guest", true, user), SB_AUTH_OK);
    assert_int_equal(external(*state, true, "guest", false, user), SB_AUTH_NOT_LOOPBACK);
    assert_int_equal(external(*state, true, "nobody", true, user), SB_AUTH_BAD_CREDENTIALS);
    assert_string_equal(user, "nobody");
    assert_int_equal(external(*state, true, NULL, true, user), SB_AUTH_NO_PEER_CERT);
    assert_int_equal(external(*state, false, "app", true, user), SB_AUTH_BAD_MECHANISM);
    assert_string_equal(sb_auth_mechanisms(true), "PLAIN AMQPLAIN EXTERNAL");
    assert_string_equal(sb_auth_mechanisms(false), "PLAIN AMQPLAIN");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plain_logins_are_checked_against_the_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            the_default_user_may_log_in_from_loopback_only_and_others_from_anywhere, setup,
            teardown),
        cmocka_unit_test_setup_teardown(amqplain_carries_login_and_password_in_a_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(external_logs_in_as_the_certificate_cn_over_tls_only,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
