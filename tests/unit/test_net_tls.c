/* test_net_tls.c - TLS connections (net/tls.c under net/conn.c) over 127.0.0.1.
 *
 * As test_net_conn.c, on one thread: the server is a real sb_conn on a
 * listener with sb_listener_set_tls; the client a nonblocking OpenSSL
 * client that a 1 ms timer drives (handshake, writes, reads at a set
 * pace). Certificates are made in-process, self-signed, into a temporary
 * directory: "server" (CN localhost) and "client" (CN guest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/alloc.h"
#include "net/net.h"
#include "net/net_int.h"

enum mode { ECHO, PAUSE_EACH_BYTE, CLOSE_IN_DATA };

typedef struct fx {
    sb_loop *l;
    sb_listener *ls;
    sb_tls *tls;
    enum mode mode;
    const char *early;          /* written by the accept callback, before the handshake */
    /* server side */
    sb_conn *srv;
    int accepts, data_calls, closes, close_err;
    sb_buf got;
    char cn[64];                /* sb_conn_peer_cert_cn at the first on_data */
    /* client side */
    int cli;
    SSL_CTX *cctx;
    SSL *ssl;
    bool hs_done, hs_failed, rx_eof, rx_close_notify;
    sb_buf tx;
    size_t tx_off;
    sb_buf rx;
    size_t rx_budget, rx_want;
    /* running */
    bool (*cond)(struct fx *);
    uint64_t deadline;
    sb_timer tick;
} fx;

static char dir[] = "/tmp/sb-tls-unit-XXXXXX";
static char path_buf[4][300];

static const char *
path(int i, const char *name)
{
    snprintf(path_buf[i], sizeof path_buf[i], "%s/%s", dir, name);
    return path_buf[i];
}

/* A self-signed P-256 certificate for cn, as name.pem and name.key. */
static void
make_cert(const char *name, const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n;
    char file[300];
    FILE *f;

    assert_non_null(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(file, sizeof file, "%s/%s.pem", dir, name);
    assert_non_null(f = fopen(file, "w"));
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(file, sizeof file, "%s/%s.key", dir, name);
    assert_non_null(f = fopen(file, "w"));
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- server callbacks ---- */

static size_t
srv_on_data(sb_conn *c, const uint8_t *data, size_t len, void *ud)
{
    fx *f = ud;

    if (f->data_calls++ == 0 && sb_conn_peer_cert_cn(c) != NULL)
        snprintf(f->cn, sizeof f->cn, "%s", sb_conn_peer_cert_cn(c));
    switch (f->mode) {
    case ECHO:
        sb_conn_write(c, data, len);
        break;
    case PAUSE_EACH_BYTE:
        sb_conn_pause_read(c, true);
        len = 1;
        break;
    case CLOSE_IN_DATA:
        sb_conn_write(c, "bye", 3);
        sb_conn_close(c);
        break;
    }
    sb_buf_append(&f->got, data, len);
    return len;
}

static void
srv_on_close(sb_conn *c, int err, void *ud)
{
    fx *f = ud;

    f->closes++;
    f->close_err = err;
    f->srv = NULL;
}

static const sb_conn_ops srv_ops = { srv_on_data, srv_on_close, NULL };

static void
on_accept(sb_listener *ls, sb_conn *c, void *arg)
{
    fx *f = arg;

    f->accepts++;
    f->srv = c;
    sb_conn_set_ops(c, &srv_ops, f);
    if (f->early != NULL)
        sb_conn_write(c, f->early, strlen(f->early));
}

/* ---- the client ---- */

static void
client_io(fx *f)
{
    if (f->ssl == NULL || f->hs_failed)
        return;
    if (!f->hs_done) {
        int r = SSL_do_handshake(f->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(f->ssl, r);
        if (r == 1)
            f->hs_done = true;
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            f->hs_failed = true;
        ERR_clear_error();
        if (!f->hs_done)
            return;
    }
    while (f->tx_off < f->tx.len) {
        int w = SSL_write(f->ssl, f->tx.data + f->tx_off, (int)(f->tx.len - f->tx_off));
        if (w <= 0)
            break;
        f->tx_off += (size_t)w;
    }
    for (size_t budget = f->rx_budget; budget > 0 && !f->rx_eof;) {
        size_t want = budget < 65536 ? budget : 65536;
        int n = SSL_read(f->ssl, sb_buf_extend(&f->rx, want), (int)want);
        f->rx.len -= want;
        if (n <= 0) {
            int e = SSL_get_error(f->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN)
                f->rx_close_notify = true;
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                f->rx_eof = true;
            ERR_clear_error();
            return;
        }
        f->rx.len += (size_t)n;
        budget -= (size_t)n;
    }
}

static void
client_send(fx *f, const void *p, size_t n)
{
    sb_buf_append(&f->tx, p, n);
}

static void
on_tick(sb_loop *l, sb_timer *t)
{
    fx *f = t->arg;

    client_io(f);
    if ((f->cond != NULL && f->cond(f)) || sb_loop_now(l) >= f->deadline) {
        sb_loop_stop(l);
        return;
    }
    sb_timer_start(l, t, 1);
}

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
static bool handshaken(fx *f) { return f->hs_done || f->hs_failed; }
static bool closed(fx *f) { return f->closes > 0; }
static bool rx_eof(fx *f) { return f->rx_eof; }
static bool rx_full(fx *f) { return f->rx.len >= f->rx_want; }
static bool one_call(fx *f) { return f->data_calls >= 1; }
static bool two_calls(fx *f) { return f->data_calls >= 2; }
static bool three_calls(fx *f) { return f->data_calls >= 3; }

/* A server with opts (certfile etc. filled in) and a connected client
 * whose TLS handshake is started but not finished. client_cert: "client"
 * or NULL. */
static fx *
fx_open(sb_tls_opts *o, const char *client_cert, const char *early)
{
    fx *f = sb_calloc(1, sizeof *f);
    char err[512];
    struct sockaddr_storage ss;
    socklen_t len;

    f->cli = -1;
    f->early = early;
    sb_timer_init(&f->tick, on_tick, f);
    assert_int_equal(sb_loop_new(&f->l), 0);
    o->certfile = path(0, "server.pem");
    o->keyfile = path(1, "server.key");
    if (sb_tls_new(o, &f->tls, err, sizeof err) != 0)
        fail_msg("sb_tls_new: %s", err);
    assert_int_equal(sb_listener_open(f->l, "127.0.0.1", 0, on_accept, f, &f->ls), 0);
    sb_listener_set_tls(f->ls, f->tls);

    assert_int_equal(sb_net__parse_addr("127.0.0.1", sb_listener_port(f->ls), &ss, &len), 0);
    f->cli = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(f->cli, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(sb_net__set_nonblock(f->cli), 0);
    f->cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(f->cctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(SSL_CTX_load_verify_locations(f->cctx, path(0, "server.pem"), NULL), 1);
    if (client_cert != NULL) {
        char c[300], k[300];
        snprintf(c, sizeof c, "%s/%s.pem", dir, client_cert);
        snprintf(k, sizeof k, "%s/%s.key", dir, client_cert);
        assert_int_equal(SSL_CTX_use_certificate_file(f->cctx, c, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(f->cctx, k, SSL_FILETYPE_PEM), 1);
    }
    f->ssl = SSL_new(f->cctx);
    SSL_set_fd(f->ssl, f->cli);
    SSL_set_connect_state(f->ssl);
    assert_true(run_until(f, accepted, 2000));
    return f;
}

static void
fx_close(fx *f)
{
    SSL_free(f->ssl);
    SSL_CTX_free(f->cctx);
    if (f->cli >= 0)
        close(f->cli);
    sb_loop_free(f->l);
    assert_int_equal(f->closes, f->accepts);
    sb_tls_free(f->tls);
    sb_buf_free(&f->got);
    sb_buf_free(&f->tx);
    sb_buf_free(&f->rx);
    sb_free(f);
}

static int
setup(void **state)
{
    sb_tls_opts o = { 0 };

    *state = fx_open(&o, NULL, NULL);
    return 0;
}

static int
teardown(void **state)
{
    fx_close(*state);
    return 0;
}

/* ---- tests ---- */

static void
an_echo_over_tls_returns_what_the_client_sent(void **state)
{
    fx *f = *state;

    assert_true(run_until(f, handshaken, 2000));
    assert_true(f->hs_done);
    assert_true(sb_conn_is_tls(f->srv));
    client_send(f, "hello", 5);
    f->rx_budget = 1 << 20;
    f->rx_want = 5;
    assert_true(run_until(f, rx_full, 2000));
    assert_memory_equal(f->rx.data, "hello", 5);
    assert_null(sb_conn_peer_cert_cn(f->srv));  /* verify_none: none asked for */
}

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

static void
large_referenced_writes_reach_a_slow_reader_intact_and_in_order(void **state)
{
    enum { SLICE = 3 << 20, SLICES = 4 };
    fx *f = *state;
    body b = { .data = sb_malloc((size_t)SLICE * SLICES) };
    sb_buf want = SB_BUF_INIT;
    char hdr[32];

    assert_true(run_until(f, handshaken, 2000));
    for (size_t i = 0; i < (size_t)SLICE * SLICES; i++)
        b.data[i] = (uint8_t)(i * 131 + (i >> 16));
    sb_rc_init(&b.rc, body_release);
    for (int i = 0; i < SLICES; i++) {
        int n = snprintf(hdr, sizeof hdr, "<hdr %d>", i);
        sb_conn_write(f->srv, hdr, (size_t)n);
        sb_buf_append(&want, hdr, (size_t)n);
        sb_conn_write_ref(f->srv, b.data + (size_t)i * SLICE, SLICE, &b.rc);
        sb_buf_append(&want, b.data + (size_t)i * SLICE, SLICE);
        for (int j = 0; j < 100; j++) {        /* many small writes between bodies */
            n = snprintf(hdr, sizeof hdr, "<%d.%d>", i, j);
            sb_conn_write(f->srv, hdr, (size_t)n);
            sb_buf_append(&want, hdr, (size_t)n);
        }
    }
    sb_rc_unref(&b.rc);
    run_until(f, NULL, 50);     /* the client does not read: the socket fills */
    assert_true(sb_conn_pending(f->srv) > 0);
    f->rx_budget = 256 << 10;   /* then reads slower than the server writes */
    f->rx_want = want.len;
    assert_true(run_until(f, rx_full, 30000));
    assert_int_equal(f->rx.len, want.len);
    assert_memory_equal(f->rx.data, want.data, want.len);
    assert_int_equal(b.released, 1);
    assert_int_equal(sb_conn_pending(f->srv), 0);
    sb_buf_free(&want);
}

static void
output_queued_before_the_handshake_waits_for_it(void **state)
{
    sb_tls_opts o = { 0 };
    fx *f = fx_open(&o, NULL, "early bird");

    f->rx_budget = 1 << 20;
    f->rx_want = 10;
    assert_true(run_until(f, rx_full, 2000));
    assert_memory_equal(f->rx.data, "early bird", 10);
    fx_close(f);
}

static void
closing_sends_close_notify_after_the_queued_output(void **state)
{
    fx *f = *state;

    f->mode = CLOSE_IN_DATA;
    client_send(f, "x", 1);
    f->rx_budget = 1 << 20;
    assert_true(run_until(f, rx_eof, 2000));
    assert_int_equal(f->rx.len, 3);
    assert_memory_equal(f->rx.data, "bye", 3);
    assert_true(f->rx_close_notify);    /* not a bare FIN */
    close(f->cli);
    f->cli = -1;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, 0);
}

static void
a_peer_close_notify_closes_with_no_error(void **state)
{
    fx *f = *state;

    assert_true(run_until(f, handshaken, 2000));
    SSL_shutdown(f->ssl);
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, 0);
    assert_int_equal(f->data_calls, 0);
}

static void
garbage_instead_of_a_client_hello_closes_with_eproto(void **state)
{
    fx *f = *state;

    assert_int_equal(write(f->cli, "AMQP\x00\x00\x09\x01", 8), 8);
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, -EPROTO);
    assert_int_equal(f->data_calls, 0);
}

static void
paused_reading_keeps_decrypted_bytes_and_redelivers_them_on_resume(void **state)
{
    fx *f = *state;

    f->mode = PAUSE_EACH_BYTE;
    client_send(f, "123", 3);   /* one record: all of it is decrypted at once */
    assert_true(run_until(f, one_call, 2000));
    run_until(f, NULL, 20);
    assert_int_equal(f->data_calls, 1);
    sb_conn_pause_read(f->srv, false);  /* no new input: "23" waits in the conn */
    assert_true(run_until(f, two_calls, 2000));
    sb_conn_pause_read(f->srv, false);
    assert_true(run_until(f, three_calls, 2000));
    assert_int_equal(f->got.len, 3);
    assert_memory_equal(f->got.data, "123", 3);
}

static void
a_verified_client_certificate_gives_its_cn(void **state)
{
    sb_tls_opts o = { .cacertfile = path(2, "client.pem"), .verify_peer = true };
    fx *f = fx_open(&o, "client", NULL);

    client_send(f, "hi", 2);
    assert_true(run_until(f, one_call, 2000));
    assert_string_equal(f->cn, "guest");
    fx_close(f);
}

static void
fail_if_no_peer_cert_refuses_a_client_without_one(void **state)
{
    sb_tls_opts o = { .cacertfile = path(2, "client.pem"), .verify_peer = true,
                      .fail_if_no_peer_cert = true };
    fx *f = fx_open(&o, NULL, NULL);

    client_send(f, "hi", 2);
    f->rx_budget = 1 << 20;
    assert_true(run_until(f, closed, 2000));
    assert_int_equal(f->close_err, -EPROTO);
    assert_int_equal(f->data_calls, 0);
    fx_close(f);
}

static void
bad_files_and_options_are_refused_with_a_reason(void **state)
{
    sb_tls_opts o = { .certfile = path(0, "server.pem"), .keyfile = path(1, "missing.key") };
    sb_tls *t = NULL;
    char err[512];

    assert_int_equal(sb_tls_new(&o, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.key"));
    o.keyfile = path(1, "client.key");          /* another certificate's key */
    assert_int_equal(sb_tls_new(&o, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "client.key"));
    assert_non_null(strstr(err, "mismatch"));
    o.keyfile = path(1, "server.key");
    o.verify_peer = true;                       /* without a CA file */
    assert_int_equal(sb_tls_new(&o, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "cacertfile"));
    assert_null(t);
}

static int
group_setup(void **state)
{
    assert_non_null(mkdtemp(dir));
    make_cert("server", "localhost");
    make_cert("client", "guest");
    return 0;
}

static int
group_teardown(void **state)
{
    static const char *files[] = { "server.pem", "server.key", "client.pem", "client.key" };

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path(3, files[i]));
    rmdir(dir);
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(an_echo_over_tls_returns_what_the_client_sent),
        T(large_referenced_writes_reach_a_slow_reader_intact_and_in_order),
        cmocka_unit_test(output_queued_before_the_handshake_waits_for_it),
        T(closing_sends_close_notify_after_the_queued_output),
        T(a_peer_close_notify_closes_with_no_error),
        T(garbage_instead_of_a_client_hello_closes_with_eproto),
        T(paused_reading_keeps_decrypted_bytes_and_redelivers_them_on_resume),
        cmocka_unit_test(a_verified_client_certificate_gives_its_cn),
        cmocka_unit_test(fail_if_no_peer_cert_refuses_a_client_without_one),
        cmocka_unit_test(bad_files_and_options_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
