/* test_broker_vhost.c - vhosts and the user database the broker keeps:
 * creation with the predeclared exchanges, deletion with everything in it
 * and its permissions, the watchers told first, the default user made on
 * first start only, and users, vhosts and permissions carried through the
 * broker's own definitions document and back (a restart, without disk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "broker_test_util.h"

static const sb_str all[SB_PERM_COUNT] = { SB_STR_LIT(".*"), SB_STR_LIT(".*"), SB_STR_LIT(".*") };

static void
a_new_vhost_has_its_own_predeclared_exchanges(void **state)
{
    sb_broker *b = tb_broker();
    sb_exchange_view xv;
    sb_vhost *v;

    assert_int_equal(sb_broker_vhost_put(b, SB_STR_LIT("shop"), "the shop", "a, b,,"), 1);
    assert_int_equal(sb_broker_vhost_put(b, SB_STR_LIT("shop"), NULL, NULL), 0);
    assert_int_equal(sb_broker_vhost_put(b, SB_STR_NULL, NULL, NULL), -1);
    v = sb_broker_vhost(b, SB_STR_LIT("shop"));
    assert_non_null(v);
    assert_string_equal(sb_vhost_description(v), "the shop");
    assert_string_equal(sb_vhost_tags(v), "a,b");
    for (const char *const *x = (const char *const[]){ "", "amq.direct", "amq.fanout",
                                                       "amq.topic", "amq.headers", NULL };
         *x; x++)
        assert_true(sb_vhost_exchange_view(v, sb_str_c(*x), &xv));
    assert_int_equal(sb_broker_vhost_count(b), 2);
    sb_broker_free(b);
}

typedef struct seen {
    int vhosts, users;
    char last[64];
} seen;

static void
watch(void *arg, sb_broker_event ev, sb_vhost *v, const char *user)
{
    seen *s = arg;

    if (ev == SB_BROKER_VHOST_DELETING) {
        s->vhosts++;
        snprintf(s->last, sizeof s->last, "%s", sb_vhost_name(v));
    } else {
        s->users++;
        snprintf(s->last, sizeof s->last, "%s", user);
    }
}

static void
deleting_a_vhost_tells_the_watchers_then_removes_its_objects_and_permissions(void **state)
{
    sb_broker *b = tb_broker();
    sb_auth *a = sb_broker_auth(b);
    seen s = { 0 };
    sb_vhost *v;
    char why[200];

    sb_broker_default_user(b, "guest", "guest");
    sb_broker_vhost_put(b, SB_STR_LIT("shop"), NULL, NULL);
    assert_int_equal(sb_auth_perms_set(a, SB_STR_LIT("guest"), SB_STR_LIT("shop"), all, why,
                                       sizeof why), 1);
    v = sb_broker_vhost(b, SB_STR_LIT("shop"));
    tb_queue(v, "orders");
    tb_exchange(v, "x", "fanout");
    tb_bind(v, "orders", "x", "");
    sb_broker_watch(b, watch, &s);
    assert_int_equal(sb_broker_vhost_delete(b, SB_STR_LIT("shop")), 0);
    assert_int_equal(s.vhosts, 1);
    assert_string_equal(s.last, "shop");
    assert_null(sb_broker_vhost(b, SB_STR_LIT("shop")));
    assert_null(sb_auth_perms(a, SB_STR_LIT("guest"), SB_STR_LIT("shop")));
    assert_non_null(sb_auth_perms(a, SB_STR_LIT("guest"), SB_STR_LIT("/")));
    assert_int_equal(sb_broker_vhost_delete(b, SB_STR_LIT("shop")), -1);
    /* Made again, it starts empty. */
    sb_broker_vhost_put(b, SB_STR_LIT("shop"), NULL, NULL);
    assert_false(sb_vhost_queue_view(sb_broker_vhost(b, SB_STR_LIT("shop")),
                                     SB_STR_LIT("orders"), &(sb_queue_view){ 0 }));
    sb_broker_unwatch(b, watch, &s);
    sb_broker_free(b);
}

static void
deleting_a_user_tells_the_watchers_first(void **state)
{
    sb_broker *b = tb_broker();
    seen s = { 0 };

    sb_broker_default_user(b, "guest", "guest");
    sb_broker_watch(b, watch, &s);
    assert_int_equal(sb_broker_user_delete(b, SB_STR_LIT("nobody")), -1);
    assert_int_equal(s.users, 0);
    assert_int_equal(sb_broker_user_delete(b, SB_STR_LIT("guest")), 0);
    assert_int_equal(s.users, 1);
    assert_string_equal(s.last, "guest");
    assert_null(sb_auth_user(sb_broker_auth(b), SB_STR_LIT("guest")));
    sb_broker_free(b);
}

static void
the_default_user_is_an_administrator_with_every_permission_on_slash(void **state)
{
    sb_broker *b = tb_broker();
    sb_auth *a = sb_broker_auth(b);
    const sb_user *u;

    sb_broker_default_user(b, "guest", "guest");
    u = sb_auth_login(a, SB_STR_LIT("guest"), SB_STR_LIT("guest"));
    assert_non_null(u);
    assert_int_equal(sb_user_tag_bits(u), SB_TAG_ADMINISTRATOR);
    assert_true(sb_perms_allow_all(sb_auth_perms(a, SB_STR_LIT("guest"), SB_STR_LIT("/")),
                                   SB_PERM_CONFIGURE));
    /* Only once: a second call (another start) changes nothing. */
    sb_broker_user_delete(b, SB_STR_LIT("guest"));
    sb_broker_default_user(b, "guest", "guest");
    assert_int_equal(sb_auth_user_count(a), 0);
    sb_broker_free(b);
}

/* The broker's own document, loaded into a new broker as at start-up. */
static sb_broker *
restarted(sb_broker *b)
{
    json_t *doc = sb_broker_definitions_json(b);
    sb_broker *b2 = tb_broker();

    assert_int_equal(sb_broker_import_definitions(b2, doc, true, NULL, 0), 0);
    json_decref(doc);
    return b2;
}

static void
users_vhosts_and_permissions_come_back_from_the_definitions(void **state)
{
    sb_broker *b = tb_broker(), *b2;
    sb_auth *a = sb_broker_auth(b);
    sb_user_def d = { .name = SB_STR_LIT("app"), .has_password = true,
                      .password = SB_STR_LIT("pw"), .tags = SB_STR_LIT("management") };
    sb_str re[SB_PERM_COUNT] = { SB_STR_LIT("^app\\."), SB_STR_LIT(""), SB_STR_LIT(".*") };
    const sb_perms *p;
    char why[200];

    sb_broker_default_user(b, "guest", "guest");
    sb_broker_vhost_put(b, SB_STR_LIT("shop"), "the shop", "x");
    assert_int_equal(sb_auth_user_put(a, &d, why, sizeof why), 1);
    assert_int_equal(sb_auth_perms_set(a, d.name, SB_STR_LIT("shop"), re, why, sizeof why), 1);
    sb_broker_user_delete(b, SB_STR_LIT("guest"));
    b2 = restarted(b);
    sb_broker_default_user(b2, "guest", "guest");   /* a database exists: no guest */
    a = sb_broker_auth(b2);
    assert_null(sb_auth_user(a, SB_STR_LIT("guest")));
    assert_non_null(sb_auth_login(a, SB_STR_LIT("app"), SB_STR_LIT("pw")));
    p = sb_auth_perms(a, SB_STR_LIT("app"), SB_STR_LIT("shop"));
    assert_non_null(p);
    assert_string_equal(sb_perms_source(p, SB_PERM_CONFIGURE), "^app\\.");
    assert_string_equal(sb_perms_source(p, SB_PERM_WRITE), "");
    assert_string_equal(sb_vhost_description(sb_broker_vhost(b2, SB_STR_LIT("shop"))),
                        "the shop");
    sb_broker_free(b2);
    sb_broker_free(b);
}

static void
a_deleted_default_vhost_stays_deleted(void **state)
{
    sb_broker *b = tb_broker(), *b2;

    sb_broker_default_user(b, "guest", "guest");
    assert_int_equal(sb_broker_vhost_delete(b, SB_STR_LIT("/")), 0);
    b2 = restarted(b);
    assert_null(sb_broker_vhost(b2, SB_STR_LIT("/")));
    sb_broker_free(b2);
    sb_broker_free(b);
}

static void
definitions_from_before_users_get_the_default_user(void **state)
{
    sb_broker *b = tb_broker();
    json_t *doc = json_pack("{s:[{s:s}], s:[]}", "vhosts", "name", "/", "queues");

    assert_int_equal(sb_broker_import_definitions(b, doc, true, NULL, 0), 0);
    sb_broker_default_user(b, "guest", "guest");
    assert_non_null(sb_auth_login(sb_broker_auth(b), SB_STR_LIT("guest"), SB_STR_LIT("guest")));
    assert_non_null(sb_broker_vhost(b, SB_STR_LIT("/")));
    json_decref(doc);
    sb_broker_free(b);
}

static void
an_import_refuses_permissions_for_an_unknown_user_or_vhost(void **state)
{
    sb_broker *b = tb_broker();
    json_t *doc = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}]}", "permissions", "user", "ghost",
                            "vhost", "/", "configure", ".*", "write", ".*", "read", ".*");
    char why[400];

    assert_int_equal(sb_broker_import_definitions(b, doc, false, why, sizeof why), -1);
    assert_non_null(strstr(why, "ghost"));
    json_decref(doc);
    doc = json_pack("{s:[{s:s, s:s, s:s}]}", "users", "name", "old", "password_hash",
                    "i90P8lVbvljHI9RtslONliHY6oM=", "tags", "");
    json_object_set_new(doc, "rabbit_version", json_string("3.5.7"));
    /* Files from before 3.6 hash with MD5 when they do not say. */
    assert_int_equal(sb_broker_import_definitions(b, doc, false, why, sizeof why), 0);
    assert_non_null(sb_auth_login(sb_broker_auth(b), SB_STR_LIT("old"), SB_STR_LIT("s3cret")));
    json_decref(doc);
    sb_broker_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_new_vhost_has_its_own_predeclared_exchanges),
        cmocka_unit_test(deleting_a_vhost_tells_the_watchers_then_removes_its_objects_and_permissions),
        cmocka_unit_test(deleting_a_user_tells_the_watchers_first),
        cmocka_unit_test(the_default_user_is_an_administrator_with_every_permission_on_slash),
        cmocka_unit_test(users_vhosts_and_permissions_come_back_from_the_definitions),
        cmocka_unit_test(a_deleted_default_vhost_stays_deleted),
        cmocka_unit_test(definitions_from_before_users_get_the_default_user),
        cmocka_unit_test(an_import_refuses_permissions_for_an_unknown_user_or_vhost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
