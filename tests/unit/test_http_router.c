/* test_http_router.c - route matching, percent-decoding per segment, 404/405/400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/alloc.h"
#include "http/http_int.h"

typedef struct routed {
    sb_http_req r;
    const sb_http_route *rt;
    unsigned status;
    char allow[64];
} routed;

static void
route(routed *o, const char *method, const char *url)
{
    memset(o, 0, sizeof *o);
    o->r.method = sb_http__method_bit(method);
    o->rt = sb_http__route(&o->r, url, &o->status, o->allow, sizeof o->allow);
}

static void
done(routed *o)
{
    sb_free(o->r.path);
}

static void
a_literal_path_matches_its_get_route(void **state)
{
    routed o;

    route(&o, "GET", "/api/overview");
    assert_non_null(o.rt);
    assert_string_equal(o.rt->pattern, "/api/overview");
    assert_int_equal(o.r.nparams, 0);
    done(&o);
}

static void
get_routes_answer_head_too(void **state)
{
    routed o;

    route(&o, "HEAD", "/api/vhosts");
    assert_non_null(o.rt);
    done(&o);
}

static void
percent_encoded_slash_stays_inside_its_segment(void **state)
{
    routed o;

    route(&o, "GET", "/api/vhosts/%2F");
    assert_non_null(o.rt);
    assert_string_equal(o.rt->pattern, "/api/vhosts/{vhost}");
    assert_int_equal(o.r.nparams, 1);
    assert_int_equal(o.r.params[0].len, 1);
    assert_memory_equal(o.r.params[0].p, "/", 1);
    done(&o);
}

static void
the_method_picks_among_rows_of_one_path(void **state)
{
    routed o;

    route(&o, "PUT", "/api/vhosts/a%20b");
    assert_non_null(o.rt);
    assert_true(o.rt->takes_json);
    assert_int_equal(o.r.params[0].len, 3);
    assert_memory_equal(o.r.params[0].p, "a b", 3);
    done(&o);
}

static void
unknown_path_is_404(void **state)
{
    routed o;

    route(&o, "GET", "/api/nope");
    assert_null(o.rt);
    assert_int_equal(o.status, 404);
    done(&o);
    route(&o, "GET", "/api/overview/extra");
    assert_int_equal(o.status, 404);
    done(&o);
    route(&o, "GET", "/api");
    assert_int_equal(o.status, 404);
    done(&o);
}

static void
known_path_with_wrong_method_is_405_with_allow(void **state)
{
    routed o;

    route(&o, "POST", "/api/overview");
    assert_null(o.rt);
    assert_int_equal(o.status, 405);
    assert_string_equal(o.allow, "GET, HEAD");
    done(&o);
    route(&o, "POST", "/api/vhosts/%2F");
    assert_int_equal(o.status, 405);
    assert_string_equal(o.allow, "GET, HEAD, PUT, DELETE");
    done(&o);
}

static void
malformed_or_nul_escapes_are_400(void **state)
{
    static const char *bad[] = { "/api/vhosts/%zz", "/api/vhosts/%2", "/api/vhosts/%", "/api/vhosts/a%00b" };
    routed o;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        route(&o, "GET", bad[i]);
        assert_null(o.rt);
        assert_int_equal(o.status, 400);
        done(&o);
    }
}

static void
too_many_segments_is_404(void **state)
{
    routed o;

    route(&o, "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s");
    assert_null(o.rt);
    assert_int_equal(o.status, 404);
    done(&o);
}

static void
queue_contents_is_purge_not_queue_delete(void **state)
{
    routed o;

    route(&o, "DELETE", "/api/queues/%2F/orders/contents");
    assert_non_null(o.rt);
    assert_ptr_equal(o.rt->fn, sb_http__api_queue_purge);
    assert_int_equal(o.r.nparams, 2);
    assert_true(sb_str_eq_c(o.r.params[0], "/"));
    assert_true(sb_str_eq_c(o.r.params[1], "orders"));
    done(&o);
    route(&o, "DELETE", "/api/queues/%2F/orders");
    assert_ptr_equal(o.rt->fn, sb_http__api_queue_delete);
    done(&o);
}

static void
publish_and_rpc_are_post_only(void **state)
{
    routed o;

    route(&o, "POST", "/api/exchanges/%2F/amq.default/publish");
    assert_non_null(o.rt);
    assert_ptr_equal(o.rt->fn, sb_http__api_publish);
    assert_true(o.rt->takes_json);
    done(&o);
    route(&o, "POST", "/api/rpc/%2F/payments");
    assert_non_null(o.rt);
    assert_ptr_equal(o.rt->fn, sb_http__api_rpc);
    assert_false(o.rt->takes_json); /* the body is the request, in any format */
    done(&o);
    route(&o, "GET", "/api/rpc/%2F/payments");
    assert_null(o.rt);
    assert_int_equal(o.status, 405);
    assert_string_equal(o.allow, "POST");
    done(&o);
}

static void
one_path_serves_get_put_and_delete(void **state)
{
    routed o;

    route(&o, "PUT", "/api/exchanges/%2F/x");
    assert_ptr_equal(o.rt->fn, sb_http__api_exchange_put);
    done(&o);
    route(&o, "POST", "/api/exchanges/%2F/x");
    assert_null(o.rt);
    assert_int_equal(o.status, 405);
    assert_non_null(strstr(o.allow, "GET"));
    assert_non_null(strstr(o.allow, "PUT"));
    assert_non_null(strstr(o.allow, "DELETE"));
    done(&o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_literal_path_matches_its_get_route),
        cmocka_unit_test(get_routes_answer_head_too),
        cmocka_unit_test(percent_encoded_slash_stays_inside_its_segment),
        cmocka_unit_test(the_method_picks_among_rows_of_one_path),
        cmocka_unit_test(unknown_path_is_404),
        cmocka_unit_test(known_path_with_wrong_method_is_405_with_allow),
        cmocka_unit_test(malformed_or_nul_escapes_are_400),
        cmocka_unit_test(too_many_segments_is_404),
        cmocka_unit_test(queue_contents_is_purge_not_queue_delete),
        cmocka_unit_test(publish_and_rpc_are_post_only),
        cmocka_unit_test(one_path_serves_get_put_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
