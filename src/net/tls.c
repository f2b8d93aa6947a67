/* tls.c - TLS with OpenSSL, under conn.c.
 *
 * A server context (sb_tls) per listener that speaks TLS, and a session
 * (sb_net__tls) per connection. OpenSSL does no I/O of its own: each
 * session's SSL reads and writes through a BIO of ours (bio_read,
 * bio_write) whose input is the ciphertext conn.c just read from the
 * socket and whose output is a buffer conn.c sends. So:
 *
 * - the handshake runs inside the loop like any other input: bytes in,
 *   SSL_read, bytes out, with the handshake deadline of whoever sits on
 *   top of the connection (the AMQP handshake timeout) bounding it;
 * - SSL_read and SSL_write never want the socket: writes always complete
 *   into the buffer (SSL_write never returns WANT_WRITE or a partial
 *   count), and a read that wants more input has used every byte fed, so
 *   no record waits inside OpenSSL while epoll reports nothing;
 * - conn.c decides how much to encrypt and when to send, and sends the
 *   result with one send(2) per batch, as the plain path does.
 *
 * Renegotiation is refused (SSL_OP_NO_RENEGOTIATION): it is the one way a
 * write could have to wait for a read. Loop thread only, as all of net/.
 */
#include "net_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../common/alloc.h"
#include "../common/log.h"

#define SB_NET__TLS_KEEP ((size_t)32 * 1024)  /* keep an emptied output buffer this big */
#define SB_NET__TLS_SNIFF 8                    /* first bytes kept for a failed handshake's log */

struct sb_tls {
    SSL_CTX *ctx;
    BIO_METHOD *bio;            /* the BIO every session's SSL uses */
    size_t refs;                /* sessions alive, plus one until sb_tls_free */
};

struct sb_net__tls {
    sb_tls *t;                  /* one reference */
    SSL *ssl;
    const char *peer;           /* borrowed, for log lines */
    const uint8_t *in;          /* ciphertext fed, not yet read by OpenSSL; borrowed */
    size_t in_len;
    sb_buf out;                 /* ciphertext to send: out.data[out_off..out.len) */
    size_t out_off;
    bool ready;                 /* handshake done */
    bool shut;                  /* close_notify written */
    uint8_t sniff[SB_NET__TLS_SNIFF]; /* the peer's first bytes */
    size_t sniff_len;
    char *cn;                   /* verified client certificate's CN, or NULL */
};

/* ---- the BIO: ciphertext in from conn.c, out to s->out ---- */

static int
bio_write(BIO *b, const char *p, size_t n, size_t *written)
{
    sb_net__tls *s = BIO_get_data(b);

    sb_buf_append(&s->out, p, n);
    *written = n;
    return 1;
}

static int
bio_read(BIO *b, char *p, size_t n, size_t *readbytes)
{
    sb_net__tls *s = BIO_get_data(b);
    size_t k = s->in_len < n ? s->in_len : n;

    BIO_clear_retry_flags(b);
    if (k == 0) {
        BIO_set_retry_read(b);  /* "come back with more": SSL_ERROR_WANT_READ */
        *readbytes = 0;
        return 0;
    }
    memcpy(p, s->in, k);
    s->in += k;
    s->in_len -= k;
    *readbytes = k;
    return 1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;  /* output is flushed by conn.c */
}

static int
bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- errors ---- */

/* OpenSSL's first queued reason, e.g. "wrong version number", into buf. */
static const char *
ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    if (r != NULL)
        snprintf(buf, n, "%s", r);
    else if (e != 0)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "unknown error");
    ERR_clear_error();
    return buf;
}

/* " (the peer sent \"GET / HTTP\": not a TLS client?)" when the first byte
 * was not a TLS handshake record, so a plain client on the TLS port is
 * named as such; "" otherwise. */
static void
sniff_hint(const sb_net__tls *s, char *buf, size_t n)
{
    size_t used;

    buf[0] = '\0';
    if (s->sniff_len == 0 || s->sniff[0] == 0x16)
        return;
    used = (size_t)snprintf(buf, n, " (the client sent \"");
    for (size_t i = 0; i < s->sniff_len && used + 5 < n; i++) {
        uint8_t ch = s->sniff[i];
        used += (size_t)snprintf(buf + used, n - used, ch >= 0x20 && ch < 0x7f && ch != '"'
                                 ? "%c" : "\\x%02x", ch);
    }
    snprintf(buf + used, n - used, "...\": not a TLS client; plain AMQP belongs on the "
             "AMQP port)");
}

static int
fail(sb_net__tls *s, const char *what)
{
    char reason[256], hint[160];
    long v = SSL_get_verify_result(s->ssl);

    ssl_reason(reason, sizeof reason);
    sniff_hint(s, hint, sizeof hint);
    if (v != X509_V_OK && !s->ready)
        sb_log(SB_LOG_WARN, "tls", "%s: %s: %s: %s", s->peer, what, reason,
               X509_verify_cert_error_string(v));
    else
        sb_log(SB_LOG_WARN, "tls", "%s: %s: %s%s", s->peer, what, reason, hint);
    return -EPROTO;
}

/* ---- the server context ---- */

static int
ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *file)
{
    char reason[256];

    snprintf(err, errlen, "%s '%s': %s", what, file, ssl_reason(reason, sizeof reason));
    SSL_CTX_free(ctx);
    return -1;
}

static int
load_cas(SSL_CTX *ctx, const char *cafile, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) *names;

    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load the CA certificates", cafile);
    /* Named in the CertificateRequest, so a client with several
     * certificates knows which one to send. */
    names = SSL_load_client_CA_file(cafile);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    return 0;
}

int
sb_tls_new(const sb_tls_opts *o, sb_tls **out, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "switchboard";
    bool has_ca = o->cacertfile != NULL && o->cacertfile[0] != '\0';
    char reason[256];
    SSL_CTX *ctx;
    sb_tls *t;
    int verify = SSL_VERIFY_NONE;

    ERR_clear_error();
    if (o->verify_peer && !has_ca) {
        snprintf(err, errlen, "verify_peer needs a CA file (cacertfile) to check client "
                 "certificates against");
        return -1;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot make a TLS context: %s", ssl_reason(reason, sizeof reason));
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, o->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* RELEASE_BUFFERS: an idle connection does not keep OpenSSL's 2 x 16 KiB
     * record buffers. (Partial writes and moving write buffers do not
     * arise: our BIO never refuses a write.) */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load the certificate", o->certfile);
    if (SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load the private key", o->keyfile);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ctx_fail(ctx, err, errlen, "the private key does not match the certificate",
                        o->keyfile);
    if (has_ca && load_cas(ctx, o->cacertfile, err, errlen) < 0)
        return -1;
    if (o->verify_peer)
        verify = SSL_VERIFY_PEER | (o->fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, verify, NULL);
    /* Needed for session resumption once client certificates are asked for. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);

    t = sb_calloc(1, sizeof *t);
    t->ctx = ctx;
    t->refs = 1;
    t->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "switchboard");
    if (t->bio == NULL || !BIO_meth_set_write_ex(t->bio, bio_write) ||
        !BIO_meth_set_read_ex(t->bio, bio_read) || !BIO_meth_set_ctrl(t->bio, bio_ctrl) ||
        !BIO_meth_set_create(t->bio, bio_create)) {
        snprintf(err, errlen, "cannot make a TLS BIO: %s", ssl_reason(reason, sizeof reason));
        sb_tls_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static void
tls_unref(sb_tls *t)
{
    if (--t->refs > 0)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    sb_free(t);
}

void
sb_tls_free(sb_tls *t)
{
    if (t != NULL)
        tls_unref(t);
}

/* ---- a session ---- */

sb_net__tls *
sb_net__tls_new(sb_tls *t, const char *peer)
{
    sb_net__tls *s = sb_calloc(1, sizeof *s);
    BIO *bio;

    ERR_clear_error();
    s->peer = peer;
    s->ssl = SSL_new(t->ctx);
    bio = s->ssl ? BIO_new(t->bio) : NULL;
    if (bio == NULL) {
        char reason[256];
        sb_log(SB_LOG_ERROR, "tls", "%s: cannot start TLS: %s", peer,
               ssl_reason(reason, sizeof reason));
        SSL_free(s->ssl);
        sb_free(s);
        return NULL;
    }
    BIO_set_data(bio, s);
    SSL_set_bio(s->ssl, bio, bio);  /* one BIO both ways; the SSL owns it */
    SSL_set_accept_state(s->ssl);
    s->t = t;
    t->refs++;
    return s;
}

void
sb_net__tls_free(sb_net__tls *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl);
    sb_buf_free(&s->out);
    sb_free(s->cn);
    tls_unref(s->t);
    sb_free(s);
}

void
sb_net__tls_feed(sb_net__tls *s, const uint8_t *cipher, size_t n)
{
    if (!s->ready && s->sniff_len < SB_NET__TLS_SNIFF && n > 0) {
        size_t k = SB_NET__TLS_SNIFF - s->sniff_len < n ? SB_NET__TLS_SNIFF - s->sniff_len : n;
        memcpy(s->sniff + s->sniff_len, cipher, k);
        s->sniff_len += k;
    }
    s->in = cipher;
    s->in_len = n;
}

/* The CN of a verified client certificate (its last CN, as the most
 * specific), kept only if it is valid UTF-8 without NULs. */
static void
keep_peer_cn(sb_net__tls *s)
{
    X509 *cert = SSL_get0_peer_certificate(s->ssl);
    X509_NAME *name;
    unsigned char *utf8 = NULL;
    int i, n;

    if (cert == NULL || SSL_get_verify_result(s->ssl) != X509_V_OK)
        return;
    name = X509_get_subject_name(cert);
    i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    for (int j = i; j >= 0; j = X509_NAME_get_index_by_NID(name, NID_commonName, j))
        i = j;
    if (i < 0)
        return;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n > 0 && memchr(utf8, 0, (size_t)n) == NULL)
        s->cn = sb_strndup(utf8, (size_t)n);
    OPENSSL_free(utf8);
}

static void
handshake_done(sb_net__tls *s)
{
    s->ready = true;
    keep_peer_cn(s);
    sb_log(SB_LOG_DEBUG, "tls", "%s: TLS handshake done: %s %s%s%s", s->peer,
           SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
           s->cn ? ", client certificate CN=" : "", s->cn ? s->cn : "");
}

int
sb_net__tls_read(sb_net__tls *s, uint8_t *buf, size_t cap)
{
    int n, e;

    ERR_clear_error();
    n = SSL_read(s->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (!s->ready && SSL_is_init_finished(s->ssl))
        handshake_done(s);
    if (n > 0)
        return n;
    e = SSL_get_error(s->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return SB_NET__TLS_EOF;
    default:
        return fail(s, s->ready ? "TLS error" : "TLS handshake failed");
    }
}

int
sb_net__tls_write(sb_net__tls *s, const void *p, size_t n)
{
    const uint8_t *q = p;

    ERR_clear_error();
    while (n > 0) {
        int k = n > INT_MAX ? INT_MAX : (int)n;
        int w = SSL_write(s->ssl, q, k);
        if (w <= 0)
            return fail(s, "TLS write failed");
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

bool
sb_net__tls_shutdown(sb_net__tls *s)
{
    if (!s->ready || s->shut)
        return false;
    s->shut = true;
    ERR_clear_error();
    (void)SSL_shutdown(s->ssl);  /* 0: sent ours; the peer's is not awaited */
    ERR_clear_error();
    return true;
}

bool
sb_net__tls_ready(const sb_net__tls *s)
{
    return s->ready;
}

const uint8_t *
sb_net__tls_out(const sb_net__tls *s, size_t *len)
{
    *len = s->out.len - s->out_off;
    return *len > 0 ? s->out.data + s->out_off : NULL;
}

void
sb_net__tls_out_consume(sb_net__tls *s, size_t n)
{
    s->out_off += n;
    if (s->out_off < s->out.len)
        return;
    s->out_off = 0;
    if (s->out.cap > SB_NET__TLS_KEEP)
        sb_buf_free(&s->out);
    else
        sb_buf_reset(&s->out);
}

const char *
sb_net__tls_peer_cn(const sb_net__tls *s)
{
    return s->cn;
}
