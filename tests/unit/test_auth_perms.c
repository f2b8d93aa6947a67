/* test_auth_perms.c - the user database and permission matching: tags,
 * logins, RabbitMQ's regular-expression semantics (unanchored match, ""
 * meaning "^$", bytes not characters), the access checker's texts and its
 * memory of answers, which a change to the database must forget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

static int changes;

static void
count_change(void *arg)
{
    changes++;
}

static int
setup(void **state)
{
    sb_auth *a = sb_auth_new();
    sb_user_def d = { .name = sb_str_c("alice"), .has_password = true,
                      .password = sb_str_c("pw"), .tags = sb_str_c(" management , foo,,") };
    char why[200];

    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 1);
    sb_auth_on_change(a, count_change, NULL);
    changes = 0;
    *state = a;
    return 0;
}

static int
teardown(void **state)
{
    sb_auth_free(*state);
    return 0;
}

static int
set(sb_auth *a, const char *user, const char *vhost, const char *c, const char *w, const char *r)
{
    sb_str re[SB_PERM_COUNT] = { sb_str_c(c), sb_str_c(w), sb_str_c(r) };
    char why[200];

    return sb_auth_perms_set(a, sb_str_c(user), sb_str_c(vhost), re, why, sizeof why);
}

static bool
allow(sb_auth *a, const char *user, const char *vhost, sb_perm k, const char *name)
{
    return sb_perms_allow(sb_auth_perms(a, sb_str_c(user), sb_str_c(vhost)), k, sb_str_c(name));
}

static void
tags_are_split_on_commas_trimmed_and_kept_in_order(void **state)
{
    const sb_user *u = sb_auth_user(*state, sb_str_c("alice"));

    assert_int_equal(sb_user_tag_count(u), 2);
    assert_string_equal(sb_user_tag(u, 0), "management");
    assert_string_equal(sb_user_tag(u, 1), "foo");
    assert_int_equal(sb_user_tag_bits(u), SB_TAG_MANAGEMENT);
    assert_int_equal(sb_user_alg(u), SB_HASH_SHA256);
}

static void
login_needs_the_right_password_of_a_known_user(void **state)
{
    sb_auth *a = *state;

    assert_non_null(sb_auth_login(a, sb_str_c("alice"), sb_str_c("pw")));
    assert_null(sb_auth_login(a, sb_str_c("alice"), sb_str_c("PW")));
    assert_null(sb_auth_login(a, sb_str_c("bob"), sb_str_c("pw")));
}

static void
a_user_given_a_hash_logs_in_with_its_password_and_an_empty_hash_never(void **state)
{
    sb_auth *a = *state;
    sb_user_def d = { .name = sb_str_c("eve"), .has_hash = true, .alg = SB_HASH_MD5,
                      .password_hash = sb_str_c("i90P8lVbvljHI9RtslONliHY6oM="),
                      .tags = sb_str_c("") };
    char why[200];

    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 1);
    assert_non_null(sb_auth_login(a, sb_str_c("eve"), sb_str_c("s3cret")));
    d.password_hash = sb_str_c("");
    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 0);
    assert_null(sb_auth_login(a, sb_str_c("eve"), sb_str_c("")));
    d.password_hash = sb_str_c("abc");
    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), -1);
    assert_non_null(strstr(why, "not_base64"));
    assert_int_equal(changes, 2);
}

static void
replacing_a_user_without_a_password_keeps_its_password_and_permissions(void **state)
{
    sb_auth *a = *state;
    sb_user_def d = { .name = sb_str_c("alice"), .tags = sb_str_c("administrator") };
    char why[200];

    assert_int_equal(set(a, "alice", "/", ".*", ".*", ".*"), 1);
    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 0);
    assert_non_null(sb_auth_login(a, sb_str_c("alice"), sb_str_c("pw")));
    assert_int_equal(sb_user_tag_bits(sb_auth_user(a, sb_str_c("alice"))), SB_TAG_ADMINISTRATOR);
    assert_non_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("/")));
}

static void
expressions_match_anywhere_in_the_name_as_erlang_re_run_does(void **state)
{
    sb_auth *a = *state;

    assert_int_equal(set(a, "alice", "/", "^alice-", "orders", "^(amq\\.gen.*|amq\\.default)$"), 1);
    assert_true(allow(a, "alice", "/", SB_PERM_CONFIGURE, "alice-q"));
    assert_false(allow(a, "alice", "/", SB_PERM_CONFIGURE, "q-alice-"));
    assert_true(allow(a, "alice", "/", SB_PERM_WRITE, "my.orders.eu"));   /* unanchored */
    assert_false(allow(a, "alice", "/", SB_PERM_WRITE, "Orders"));
    assert_true(allow(a, "alice", "/", SB_PERM_READ, "amq.default"));
    assert_true(allow(a, "alice", "/", SB_PERM_READ, "amq.gen-abc"));
    assert_false(allow(a, "alice", "/", SB_PERM_READ, "amq.defaultx"));
}

static void
the_empty_expression_allows_nothing_and_dot_star_everything(void **state)
{
    sb_auth *a = *state;
    const sb_perms *p;

    assert_int_equal(set(a, "alice", "/", "", ".*", "^$"), 1);
    p = sb_auth_perms(a, sb_str_c("alice"), sb_str_c("/"));
    assert_false(sb_perms_allow(p, SB_PERM_CONFIGURE, sb_str_c("x")));
    /* "^$" matches the empty name only, which no checked resource has
     * (the default exchange is checked as "amq.default"). */
    assert_false(sb_perms_allow(p, SB_PERM_CONFIGURE, sb_str_c("amq.default")));
    assert_string_equal(sb_perms_source(p, SB_PERM_CONFIGURE), "");
    assert_true(sb_perms_allow_all(p, SB_PERM_WRITE));
    assert_true(sb_perms_allow(p, SB_PERM_WRITE, sb_str_c("anything at all")));
    assert_false(sb_perms_allow_all(p, SB_PERM_READ));
    assert_false(sb_perms_allow(p, SB_PERM_READ, sb_str_c("x")));
}

static void
names_are_matched_as_bytes(void **state)
{
    sb_auth *a = *state;

    /* "é" is two bytes in UTF-8: "^.$" does not match it, "^..$" does. */
    assert_int_equal(set(a, "alice", "/", "^.$", "^..$", "^caf"), 1);
    assert_false(allow(a, "alice", "/", SB_PERM_CONFIGURE, "\xc3\xa9"));
    assert_true(allow(a, "alice", "/", SB_PERM_WRITE, "\xc3\xa9"));
    assert_true(allow(a, "alice", "/", SB_PERM_READ, "caf\xc3\xa9"));
}

static void
a_bad_expression_is_refused_and_changes_nothing(void **state)
{
    sb_auth *a = *state;
    sb_str re[SB_PERM_COUNT] = { sb_str_c("("), sb_str_c(".*"), sb_str_c(".*") };
    char why[200];

    assert_int_equal(sb_auth_perms_set(a, sb_str_c("alice"), sb_str_c("/"), re, why, sizeof why), -1);
    assert_non_null(strstr(why, "invalid_regexp"));
    assert_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("/")));
    assert_int_equal(set(a, "nobody", "/", ".*", ".*", ".*"), -1);
    assert_int_equal(changes, 0);
}

static void
permissions_are_per_vhost_and_go_with_the_vhost_or_the_user(void **state)
{
    sb_auth *a = *state;

    assert_int_equal(set(a, "alice", "/", ".*", ".*", ".*"), 1);
    assert_int_equal(set(a, "alice", "v1", ".*", ".*", ".*"), 1);
    assert_int_equal(set(a, "alice", "v1", "^x", ".*", ".*"), 0);
    assert_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("v2")));
    sb_auth_vhost_deleted(a, sb_str_c("v1"));
    assert_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("v1")));
    assert_non_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("/")));
    assert_int_equal(sb_auth_perms_clear(a, sb_str_c("alice"), sb_str_c("v1")), -1);
    assert_int_equal(sb_auth_user_delete(a, sb_str_c("alice")), 0);
    assert_null(sb_auth_perms(a, sb_str_c("alice"), sb_str_c("/")));
    assert_int_equal(sb_auth_user_delete(a, sb_str_c("alice")), -1);
}

static void
access_refusals_use_rabbitmqs_text_and_the_default_exchange_is_amq_default(void **state)
{
    sb_auth *a = *state;
    sb_access acc;
    sb_error err = { 0 };

    assert_int_equal(set(a, "alice", "/", "^alice-", "^alice-", "^alice-"), 1);
    sb_access_init(&acc, a, "alice", "/");
    assert_true(sb_access_vhost_ok(&acc));
    assert_int_equal(sb_access_check(&acc, SB_PERM_CONFIGURE, "queue", sb_str_c("alice-q"), &err), 0);
    assert_int_equal(sb_access_check(&acc, SB_PERM_CONFIGURE, "queue", sb_str_c("q"), &err),
                     SB_ACCESS_REFUSED);
    assert_string_equal(err.text, "access to queue 'q' in vhost '/' refused for user 'alice'");
    assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "exchange", SB_STR_NULL, &err),
                     SB_ACCESS_REFUSED);
    assert_string_equal(err.text,
                        "access to exchange 'amq.default' in vhost '/' refused for user 'alice'");
    sb_access_free(&acc);
}

static void
a_user_without_permissions_has_no_vhost_access(void **state)
{
    sb_access acc;
    sb_error err = { 0 };

    sb_access_init(&acc, *state, "alice", "/");
    assert_false(sb_access_vhost_ok(&acc));
    assert_int_equal(sb_access_check(&acc, SB_PERM_READ, "queue", sb_str_c("q"), &err),
                     SB_ACCESS_REFUSED);
    sb_access_free(&acc);
}

static void
remembered_answers_are_forgotten_when_permissions_change(void **state)
{
    sb_auth *a = *state;
    sb_access acc;
    sb_error err = { 0 };

    assert_int_equal(set(a, "alice", "/", ".*", "^orders$", ".*"), 1);
    sb_access_init(&acc, a, "alice", "/");
    for (int i = 0; i < 3; i++)   /* asked again: answered from memory */
        assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "exchange", sb_str_c("orders"), &err), 0);
    for (int i = 0; i < 20; i++) {  /* more names than slots: older answers are replaced */
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "exchange", sb_str_c(name), &err),
                         SB_ACCESS_REFUSED);
    }
    assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "exchange", sb_str_c("orders"), &err), 0);
    /* The same name as a queue is a different question. */
    assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "queue", sb_str_c("orders"), &err), 0);
    assert_int_equal(set(a, "alice", "/", ".*", "^$", ".*"), 0);
    assert_int_equal(sb_access_check(&acc, SB_PERM_WRITE, "exchange", sb_str_c("orders"), &err),
                     SB_ACCESS_REFUSED);
    assert_int_equal(sb_access_check(&acc, SB_PERM_CONFIGURE, "queue", sb_str_c("any"), &err), 0);
    sb_auth_perms_clear(a, sb_str_c("alice"), sb_str_c("/"));
    assert_int_equal(sb_access_check(&acc, SB_PERM_CONFIGURE, "queue", sb_str_c("any"), &err),
                     SB_ACCESS_REFUSED);
    assert_false(sb_access_vhost_ok(&acc));
    sb_access_free(&acc);
}

static void
an_access_without_a_database_allows_everything(void **state)
{
    sb_access acc;
    sb_error err = { 0 };

    sb_access_init(&acc, NULL, "internal", "/");
    assert_true(sb_access_vhost_ok(&acc));
    assert_int_equal(sb_access_check(&acc, SB_PERM_CONFIGURE, "queue", sb_str_c("q"), &err), 0);
    sb_access_free(&acc);
}

static void
list_perms(const char *u, const char *v, const sb_perms *p, void *ud)
{
    strcat(ud, u);
    strcat(ud, "@");
    strcat(ud, v);
    strcat(ud, " ");
}

static void
users_and_permissions_are_listed_in_name_order(void **state)
{
    sb_auth *a = *state;
    sb_user_def d = { .name = sb_str_c("aaron"), .has_password = true, .password = sb_str_c("x") };
    char why[200], seen[200] = "";

    sb_auth_user_put(a, &d, why, sizeof why);
    set(a, "alice", "v2", ".*", ".*", ".*");
    set(a, "alice", "/", ".*", ".*", ".*");
    set(a, "aaron", "v1", ".*", ".*", ".*");
    sb_auth_each_perms(a, list_perms, seen);
    assert_string_equal(seen, "aaron@v1 alice@/ alice@v2 ");
    assert_int_equal(sb_auth_user_count(a), 2);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(tags_are_split_on_commas_trimmed_and_kept_in_order),
        T(login_needs_the_right_password_of_a_known_user),
        T(a_user_given_a_hash_logs_in_with_its_password_and_an_empty_hash_never),
        T(replacing_a_user_without_a_password_keeps_its_password_and_permissions),
        T(expressions_match_anywhere_in_the_name_as_erlang_re_run_does),
        T(the_empty_expression_allows_nothing_and_dot_star_everything),
        T(names_are_matched_as_bytes),
        T(a_bad_expression_is_refused_and_changes_nothing),
        T(permissions_are_per_vhost_and_go_with_the_vhost_or_the_user),
        T(access_refusals_use_rabbitmqs_text_and_the_default_exchange_is_amq_default),
        T(a_user_without_permissions_has_no_vhost_access),
        T(remembered_answers_are_forgotten_when_permissions_change),
        T(an_access_without_a_database_allows_everything),
        T(users_and_permissions_are_listed_in_name_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
