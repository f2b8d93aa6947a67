/* test_net_conn.c - listeners and connections over 127.0.0.1 / ::1.
 *
 * Everything runs on one thread: the server side is a real sb_conn, the
 * client a nonblocking socket that a 1 ms timer reads at a set pace (so
 * a slow reader can be simulated without threads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/alloc.h"
#include "net/net.h"
#include "net/net_int.h"

enum mode { ECHO, LINES, CLOSE_IN_DATA, ABORT_IN_DATA, PAUSE_EACH_BYTE };

typedef struct fx {
    sb_loop *l;
    sb_listener *ls;
    enum mode mode;
    /* server side */
    sb_conn *srv;               /* NULL once on_close ran */
    int accepts, data_calls, closes, drains;
    int close_err;
    sb_buf got;                 /* bytes the server's on_data consumed */
    size_t lens[16];            /* len of each on_data call */
    /* client side */
    int cli;
    sb_buf rx;
    bool rx_eof;
    size_t rx_budget;           /* bytes read per tick; 0: do not read */
    size_t rx_want;             /* for rx_full */
    /* run_until */
    bool (*cond)(struct fx *);
    uint64_t deadline;
    sb_timer tick;
} fx;

/* A shared body as the broker will have one: refcounted, freed on release. */
typedef struct body {
    sb_rc rc;
    uint8_t *data;
    int released;
} body;

static void
body_release(sb_rc *rc)
{
    body *b = SB_CONTAINER_OF(rc, body, rc);

    b->released++;
    sb_free(b->data);
    b->data = NULL;
}

/* ---- server callbacks ---- */

static size_t
srv_on_data(sb_conn *c, const uint8_t *data, size_t len, void *ud)
{
    fx *f = ud;
    const uint8_t *nl;

    assert_ptr_equal(c, f->srv);
    if (f->data_calls < 16)
        f->lens[f->data_calls] = len;
    f->data_calls++;
    switch (f->mode) {
    case ECHO:
        sb_conn_write(c, data, len);
        break;
    case LINES:
        nl = memrchr(data, '\n', len);
        len = nl ? (size_t)(nl - data) + 1 : 0;
        break;
    case CLOSE_IN_DATA:
        sb_conn_write(c, "bye", 3);
        sb_conn_close(c);
        len = 1;                /* leave bytes: on_data must not be called again */
        break;
    case ABORT_IN_DATA:
        sb_conn_abort(c);       /* data and c stay valid until we return */
        break;
    case PAUSE_EACH_BYTE:
        sb_conn_pause_read(c, true);
        len = 1;
        break;
    }
    sb_buf_append(&f->got, data, len);
    return len;
}

static void
srv_on_close(sb_conn *c, int err, void *ud)
{
    fx *f = ud;

    assert_ptr_equal(c, f->srv);
    f->closes++;
    f->close_err = err;
    f->srv = NULL;
}

static void
srv_on_drain(sb_conn *c, void *ud)
{
    ((fx *)ud)->drains++;
}

static const sb_conn_ops srv_ops = { srv_on_data, srv_on_close, srv_on_drain };

static void
on_accept(sb_listener *ls, sb_conn *c, void *arg)
{
    fx *f = arg;

    f->accepts++;
    f->srv = c;
    sb_conn_set_ops(c, &srv_ops, f);
}

/* ---- client side and running ---- */

static void
client_read(fx *f)
{
    size_t budget = f->rx_budget;

    while (budget > 0 && !f->rx_eof) {
        size_t want = budget < 65536 ? budget : 65536;
        ssize_t n = read(f->cli, sb_buf_extend(&f->rx, want), want);
        f->rx.len -= want;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                f->rx_eof = true;
            return;
        }
        f->rx.len += (size_t)n;
        budget -= (size_t)n;
    }
}

static void
client_send(fx *f, const char *s)
{
    assert_int_equal(write(f->cli, s, strlen(s)), (ssize_t)strlen(s));
}

static void
on_tick(sb_loop *l, sb_timer *t)
{
    fx *f = t->arg;

    client_read(f);
    if ((f->cond != NULL && f->cond(f)) || sb_loop_now(l) >= f->deadline) {
        sb_loop_stop(l);
        return;
    }
    sb_timer_start(l, t, 1);
}

/* Runs the loop until cond holds or ms pass; returns whether cond held. */
static bool
run_until(fx *f, bool (*cond)(fx *), uint64_t ms)
{
    f->cond = cond;
    f->deadline = sb_loop_now(f->l) + ms;
    sb_timer_start(f->l, &f->tick, 0);
    assert_int_equal(sb_loop_run(f->l), 0);
    sb_timer_stop(f->l, &f->tick);
    return cond != NULL && cond(f);
}

static bool accepted(fx *f) { return f->accepts > 0; }
static bool closed(fx *f) { return f->closes > 0; }
static bool rx_eof(fx *f) { return f->rx_eof; }
static bool rx_full(fx *f) { return f->rx.len >= f->rx_want; }

static int
connect_client(const char *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    assert_int_equal(sb_net__parse_addr(addr, port, &ss, &len), 0);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(sb_net__set_nonblock(fd), 0);
    return fd;
}

static fx *
fx_open(const char *addr, enum mode mode)
{
    fx *f = sb_calloc(1, sizeof(*f));
    int rc;

    f->mode = mode;
    f->cli = -1;
    sb_timer_init(&f->tick, on_tick, f);
    assert_int_equal(sb_loop_new(&f->l), 0);
    rc = sb_listener_open(f->l, addr, 0, on_accept, f, &f->ls);
    if (rc < 0) {               /* e.g. no IPv6 on this host */
        sb_loop_free(f->l);
        sb_free(f);
        return NULL;
    }
    assert_true(sb_listener_port(f->ls) != 0);
    f->cli = connect_client(addr, sb_listener_port(f->ls));
    assert_true(run_until(f, accepted, 2000));
    return f;
}

static int
setup(void **state)
{
    *state = fx_open("127.0.0.1", ECHO);
    return *state ? 0 : -1;
}

static int
teardown(void **state)
{
    fx *f = *state;
    int open_conn = f->srv != NULL;
    int closes = f->closes;

    if (f->cli >= 0)
        close(f->cli);
    sb_loop_free(f->l);         /* aborts what is left: on_close runs */
    assert_int_equal(f->closes, closes + open_conn);
    assert_int_equal(f->closes, f->accepts);
    sb_buf_free(&f->got);
    sb_buf_free(&f->rx);
    sb_free(f);
    return 0;
}

/* ---- tests ---- */

static void
an_echo_server_returns_what_the_client_sent(void **state)
{
    fx *f = *state;

    f->rx_budget = 1 << 20;
    f->rx_want = 5;
    client_send(f, "hello");
    assert_true(run_until(f, rx_full, 2000));
    assert_int_equal(f->rx.len, 5);
    assert_memory_equal(f->rx.data, "hello", 5);
    assert_ptr_equal(sb_conn_loop(f->srv), f->l);
    assert_ptr_equal(sb_conn_ud(f->srv), f);
    assert_int_equal(strncmp(sb_conn_peer(f->srv), "127.0.0.1:", 10), 0);
    assert_true(sb_conn_peer_is_loopback(f->srv));
}

static bool three_calls(fx *f) { return f->data_calls >= 3; }
static bool one_call(fx *f) { return f->data_calls >= 1; }
static bool two_calls(fx *f) { return f->data_calls >= 2; }
static bool four_calls(fx *f) { return f->data_calls >= 4; }

static void
unconsumed_input_is_kept_and_offered_again_with_the_next_bytes(void **state)
{
    fx *f = *state;

    f->mode = LINES;
    client_send(f, "abc");
    assert_true(run_until(f, one_call, 2000));
    assert_int_equal(f->got.len, 0);
    client_send(f, "de\nfg");
    assert_true(run_until(f, two_calls, 2000));
    client_send(f, "\n");
    assert_true(run_until(f, four_calls, 2000));
    assert_int_equal(f->lens[0], 3);
    assert_int_equal(f->lens[1], 8);    /* "abc" kept, then "de\nfg" */
    assert_int_equal(f->lens[2], 2);    /* it consumed some: offered the rest */
    assert_int_equal(f->lens[3], 3);    /* "fg" kept, then "\n" */
    assert_int_equal(f->data_calls, 4);
    assert_int_equal(f->got.len, 9);
    assert_memory_equal(f->got.data, "abcde\nfg\n", 9);
}

static void
a_large_referenced_write_arrives_intact_and_in_order_among_copied_writes(void **state)
{
    enum { SLICE = 10 << 20, SLICES = 5 };
    fx *f = *state;
    body b = { .data = sb_malloc((size_t)SLICE * SLICES) };
    sb_buf want = SB_BUF_INIT;
    char hdr[32];

    for (size_t i = 0; i < (size_t)SLICE * SLICES; i++)
        b.data[i] = (uint8_t)(i * 131 + (i >> 16));
    sb_rc_init(&b.rc, body_release);
    for (int i = 0; i < SLICES; i++) {
        int n = snprintf(hdr, sizeof(hdr), "<hdr %d>", i);
        sb_conn_write(f->srv, hdr, (size_t)n);
        sb_buf_append(&want, hdr, (size_t)n);
        sb_conn_write_ref(f->srv, b.data + (size_t)i * SLICE, SLICE, &b.rc);
        sb_buf_append(&want, b.data + (size_t)i * SLICE, SLICE);
        n = snprintf(hdr, sizeof(hdr), "<mid %d>", i);
        sb_buf_append(sb_conn_outbuf(f->srv), hdr, (size_t)n);
        sb_buf_append(&want, hdr, (size_t)n);
    }
    assert_int_equal(b.rc.refs, 1 + SLICES);
    assert_int_equal(sb_conn_pending(f->srv), want.len);
    sb_rc_unref(&b.rc);         /* only the connection holds it now */
    assert_int_equal(b.released, 0);

    f->rx_budget = 1 << 20;     /* 1 MiB per ms: slower than the writer */
    f->rx_want = want.len;
    assert_true(run_until(f, rx_full, 30000));
    assert_int_equal(f->rx.len, want.len);
    assert_memory_equal(f->rx.data, want.data, want.len);
    assert_int_equal(b.released, 1);
    assert_int_equal(sb_conn_pending(f->srv), 0);
    assert_int_equal(f->drains, 1);
    sb_buf_free(&want);
}

static void
aborting_drops_queued_output_and_releases_references_at_once(void **state)
{
    fx *f = *state;
    body b = { .data = sb_calloc(1, 8 << 20) };

    sb_rc_init(&b.rc, body_release);
    sb_conn_write_ref(f->srv, b.data, 8 << 20, &b.rc);
    sb_conn_write(f->srv, "tail", 4);
    run_until(f, NULL, 20);     /* the client does not read */
    assert_true(sb_conn_pending(f->srv) > 0);
    assert_int_equal(b.rc.refs, 2);
    sb_conn_abort(f->srv);
    assert_int_equal(b.rc.refs, 1);
    assert_int_equal(f->closes, 0);     /* on_close comes from the loop */
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, -ECONNABORTED);
    sb_rc_unref(&b.rc);
    assert_int_equal(b.released, 1);
}

static void
a_peer_close_calls_on_close_once_with_no_error(void **state)
{
    fx *f = *state;

    close(f->cli);
    f->cli = -1;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, 0);
    run_until(f, NULL, 20);
    assert_int_equal(f->closes, 1);
}

static void
closing_flushes_queued_output_before_the_socket_closes(void **state)
{
    fx *f = *state;
    body b = { .data = sb_malloc(2 << 20) };
    sb_buf want = SB_BUF_INIT;
    uint8_t chunk[65536];

    sb_rc_init(&b.rc, body_release);
    memset(b.data, 'R', 2 << 20);
    for (int i = 0; i < 96; i++) {      /* 6 MiB copied */
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        sb_conn_write(f->srv, chunk, sizeof(chunk));
        sb_buf_append(&want, chunk, sizeof(chunk));
    }
    sb_conn_write_ref(f->srv, b.data, 2 << 20, &b.rc);
    sb_buf_append(&want, b.data, 2 << 20);
    sb_rc_unref(&b.rc);
    sb_conn_close(f->srv);
    sb_conn_write(f->srv, "last", 4);   /* still sent: queued before the FIN */
    sb_buf_append(&want, "last", 4);
    client_send(f, "ignored");          /* no on_data after close */

    f->rx_budget = 256 << 10;
    assert_true(run_until(f, rx_eof, 10000));
    assert_int_equal(f->rx.len, want.len);
    assert_memory_equal(f->rx.data, want.data, want.len);
    assert_int_equal(b.released, 1);
    assert_int_equal(f->data_calls, 0);
    assert_int_equal(f->closes, 0);     /* waits for the peer's EOF */
    close(f->cli);
    f->cli = -1;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, 0);
    sb_buf_free(&want);
}

static void
closing_from_inside_on_data_stops_further_on_data_calls(void **state)
{
    fx *f = *state;

    f->mode = CLOSE_IN_DATA;
    f->rx_budget = 1 << 20;
    client_send(f, "ab");
    assert_true(run_until(f, rx_eof, 2000));
    assert_int_equal(f->data_calls, 1);
    assert_int_equal(f->rx.len, 3);
    assert_memory_equal(f->rx.data, "bye", 3);
    close(f->cli);
    f->cli = -1;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, 0);
    assert_int_equal(f->data_calls, 1);
}

static void
aborting_from_inside_on_data_keeps_data_valid_until_it_returns(void **state)
{
    fx *f = *state;

    f->mode = ABORT_IN_DATA;
    client_send(f, "xyz");
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->data_calls, 1);
    assert_int_equal(f->got.len, 3);
    assert_memory_equal(f->got.data, "xyz", 3);
    assert_int_equal(f->close_err, -ECONNABORTED);
}

static void
paused_reading_delivers_nothing_until_resumed_then_redelivers_kept_bytes(void **state)
{
    fx *f = *state;

    f->mode = PAUSE_EACH_BYTE;
    client_send(f, "123");
    assert_true(run_until(f, one_call, 2000));
    run_until(f, NULL, 20);
    assert_int_equal(f->data_calls, 1);
    sb_conn_pause_read(f->srv, false);  /* "23" is already buffered */
    assert_true(run_until(f, two_calls, 2000));
    sb_conn_pause_read(f->srv, false);
    assert_true(run_until(f, three_calls, 2000));
    assert_int_equal(f->got.len, 3);
    assert_memory_equal(f->got.data, "123", 3);
    assert_int_equal(f->lens[1], 2);
}

static void
a_reset_by_the_peer_reports_econnreset(void **state)
{
    fx *f = *state;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    assert_int_equal(setsockopt(f->cli, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(f->cli);              /* linger 0: RST instead of FIN */
    f->cli = -1;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, -ECONNRESET);
}

static void
a_small_referenced_write_is_copied_without_keeping_a_reference(void **state)
{
    fx *f = *state;
    body b = { .data = sb_malloc(16) };

    sb_rc_init(&b.rc, body_release);
    memcpy(b.data, "0123456789abcdef", 16);
    sb_conn_write_ref(f->srv, b.data, 16, &b.rc);
    assert_int_equal(b.rc.refs, 1);
    sb_rc_unref(&b.rc);
    f->rx_budget = 1 << 20;
    f->rx_want = 16;
    assert_true(run_until(f, rx_full, 2000));
    assert_memory_equal(f->rx.data, "0123456789abcdef", 16);
}

static void
closing_gives_up_after_the_linger_time_if_the_peer_never_reads(void **state)
{
    fx *f = *state;
    body b = { .data = sb_calloc(1, 16 << 20) };

    sb_rc_init(&b.rc, body_release);
    sb_conn_write_ref(f->srv, b.data, 16 << 20, &b.rc);
    sb_rc_unref(&b.rc);
    sb_conn_close(f->srv);
    assert_true(run_until(f, closed, 8000));
    assert_int_equal(f->close_err, -ETIMEDOUT);
    assert_int_equal(b.released, 1);
}

typedef struct spin {
    fx *f;
    int iterations;
} spin;

static void
count_iteration(sb_loop *l, void *arg)
{
    ((spin *)arg)->iterations++;
}

static void
running_out_of_descriptors_pauses_accepting_instead_of_spinning(void **state)
{
    fx *f = *state;
    struct rlimit old, low;
    spin sp = { f, 0 };
    sb_conn *first = f->srv;
    int probe, cli2;

    sb_loop_add_before_sleep(f->l, count_iteration, &sp);
    cli2 = connect_client("127.0.0.1", sb_listener_port(f->ls));
    probe = dup(0);             /* the lowest free descriptor */
    assert_true(probe >= 0);
    close(probe);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe;       /* accept4 now fails with EMFILE */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    run_until(f, NULL, 250);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(f->accepts, 1);
    assert_true(sp.iterations < 1000);  /* ~250 ticks, not a busy loop */
    f->accepts = 0;
    assert_true(run_until(f, accepted, 2000));  /* resumes after the pause */
    assert_ptr_not_equal(f->srv, first);
    sb_conn_abort(f->srv);
    assert_true(run_until(f, closed, 2000));
    close(cli2);
    f->srv = first;             /* back to the fixture's one connection */
    f->accepts = 1;
    f->closes = 0;
}

static void
an_ipv6_loopback_peer_is_bracketed_and_counts_as_loopback(void **state)
{
    fx *f = fx_open("::1", ECHO);

    if (f == NULL)
        skip();
    assert_int_equal(strncmp(sb_conn_peer(f->srv), "[::1]:", 6), 0);
    assert_true(sb_conn_peer_is_loopback(f->srv));
    *state = f;
    teardown(state);
    *state = NULL;
}

static void
opening_a_listener_on_a_port_in_use_fails_with_eaddrinuse(void **state)
{
    fx *f = *state;
    sb_listener *ls = NULL;

    assert_int_equal(sb_listener_open(f->l, "127.0.0.1", sb_listener_port(f->ls), on_accept, f,
                                      &ls),
                     -EADDRINUSE);
    assert_int_equal(sb_listener_open(f->l, "not-an-address", 0, on_accept, f, &ls), -EINVAL);
    assert_null(ls);
}

static bool
loopback(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;

    assert_int_equal(sb_net__parse_addr(addr, 1, &ss, &len), 0);
    return sb_net__is_loopback((struct sockaddr *)&ss);
}

static void
loopback_is_127_slash_8_and_ipv6_one_including_ipv4_mapped(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char text[SB_NET__ADDRSTRLEN];

    assert_true(loopback("127.0.0.1"));
    assert_true(loopback("127.1.2.3"));
    assert_true(loopback("::1"));
    assert_true(loopback("::ffff:127.0.0.1"));
    assert_false(loopback("10.0.0.1"));
    assert_false(loopback("::ffff:10.0.0.1"));
    assert_false(loopback("::"));
    assert_false(loopback("fe80::1"));
    assert_int_equal(sb_net__parse_addr("::1", 53122, &ss, &len), 0);
    sb_net__format_addr((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[::1]:53122");
    assert_int_equal(sb_net__parse_addr("127.0.0.1", 5672, &ss, &len), 0);
    sb_net__format_addr((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:5672");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(an_echo_server_returns_what_the_client_sent),
        T(unconsumed_input_is_kept_and_offered_again_with_the_next_bytes),
        T(a_large_referenced_write_arrives_intact_and_in_order_among_copied_writes),
        T(aborting_drops_queued_output_and_releases_references_at_once),
        T(a_peer_close_calls_on_close_once_with_no_error),
        T(closing_flushes_queued_output_before_the_socket_closes),
        T(closing_from_inside_on_data_stops_further_on_data_calls),
        T(aborting_from_inside_on_data_keeps_data_valid_until_it_returns),
        T(paused_reading_delivers_nothing_until_resumed_then_redelivers_kept_bytes),
        T(opening_a_listener_on_a_port_in_use_fails_with_eaddrinuse),
        T(a_reset_by_the_peer_reports_econnreset),
        T(a_small_referenced_write_is_copied_without_keeping_a_reference),
        T(closing_gives_up_after_the_linger_time_if_the_peer_never_reads),
        T(running_out_of_descriptors_pauses_accepting_instead_of_spinning),
        cmocka_unit_test(an_ipv6_loopback_peer_is_bracketed_and_counts_as_loopback),
        cmocka_unit_test(loopback_is_127_slash_8_and_ipv6_one_including_ipv4_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
