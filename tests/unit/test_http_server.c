/* test_http_server.c - the MHD daemons inside a real sb_loop: a client
 * thread talks raw HTTP while the test thread runs the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"

typedef struct fixture {
    sb_loop *loop;
    sb_broker *broker;
    sb_http *http;
    uint16_t port;
    char reply[4][1024];        /* what the client thread read, per request */
    double closed_after_s;      /* partial-header connection, time to close */
} fixture;

static const sb_http_opts opts = {
    .bind = "127.0.0.1", .port = 0, .header_timeout_ms = 300, .body_timeout_ms = 300,
    .default_user = "guest", .default_pass = "guest", .loopback_users_only = true,
};

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sb_broker_limits lim = { .max_message_bytes = 1 << 20 };

    assert_int_equal(sb_loop_new(&f->loop), 0);
    f->broker = sb_broker_new(&lim);
    assert_int_equal(sb_http_start(f->loop, f->broker, &opts, &f->http), 0);
    f->port = sb_http_port(f->http);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    sb_http_stop(f->http);
    sb_broker_free(f->broker);
    sb_loop_free(f->loop);
    free(f);
    return 0;
}

static int
dial(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = 5 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* One request, reading until the peer closes ("Connection: close"). */
static void
fetch(uint16_t port, const char *req, char *out, size_t cap)
{
    int fd = dial(port);
    size_t n = 0;
    ssize_t k;

    if (fd < 0)
        return;
    if (write(fd, req, strlen(req)) < 0)
        return;
    while (n + 1 < cap && (k = read(fd, out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fd);
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
client(void *arg)
{
    fixture *f = arg;
    char buf[64];
    int fd;
    double t0;

    fetch(f->port, "GET /api/overview HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                   "Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n", f->reply[0], sizeof f->reply[0]);
    fetch(f->port, "GET /api/overview HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
          f->reply[1], sizeof f->reply[1]);
    fetch(f->port, "GET /api/health/checks/alive HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                   "Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n", f->reply[2], sizeof f->reply[2]);
    /* Headers that never finish: the header deadline answers 408 and closes. */
    fd = dial(f->port);
    t0 = now_s();
    if (fd >= 0 && write(fd, "GET /api/ov", 11) == 11) {
        size_t got = 0;
        ssize_t n;
        while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)n;
        buf[got] = '\0';
        if (strncmp(buf, "HTTP/1.1 408", 12) == 0)
            f->closed_after_s = now_s() - t0;
    }
    if (fd >= 0)
        close(fd);
    sb_loop_wake(f->loop);
    return NULL;
}

static void
stop_loop(sb_loop *l, void *arg)
{
    sb_loop_stop(l);
}

static void
requests_are_served_from_the_loop_and_deadlines_fire(void **state)
{
    fixture *f = *state;
    pthread_t t;

    sb_loop_set_wake_handler(f->loop, stop_loop, NULL);
    pthread_create(&t, NULL, client, f);
    assert_int_equal(sb_loop_run(f->loop), 0);
    pthread_join(t, NULL);

    assert_non_null(strstr(f->reply[0], "HTTP/1.1 200"));
    assert_non_null(strstr(f->reply[0], "Content-Type: application/json"));
    assert_non_null(strstr(f->reply[0], "\"product_name\":\"Switchboard\""));
    assert_non_null(strstr(f->reply[1], "HTTP/1.1 401"));
    assert_non_null(strstr(f->reply[1], "WWW-Authenticate: Basic realm=\"Switchboard\""));
    assert_non_null(strstr(f->reply[2], "{\"status\":\"ok\"}"));
    /* 300 ms deadline, checked once a second. */
    assert_true(f->closed_after_s > 0.25);
    assert_true(f->closed_after_s < 2.5);
}

static void
a_busy_port_is_eaddrinuse(void **state)
{
    fixture *f = *state;
    sb_http_opts o = opts;
    sb_http *h = NULL;

    o.port = f->port;
    assert_int_equal(sb_http_start(f->loop, f->broker, &o, &h), -EADDRINUSE);
    assert_null(h);
}

static void
a_bad_address_is_einval(void **state)
{
    fixture *f = *state;
    sb_http_opts o = opts;
    sb_http *h = NULL;

    o.bind = "not-an-address";
    assert_int_equal(sb_http_start(f->loop, f->broker, &o, &h), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(requests_are_served_from_the_loop_and_deadlines_fire,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_busy_port_is_eaddrinuse, setup, teardown),
        cmocka_unit_test_setup_teardown(a_bad_address_is_einval, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
