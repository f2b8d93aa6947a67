/* client.c - connect, log in and report errors for the client subcommands,
 * and parse their command lines.
 *
 * Only this file knows how librabbitmq reports failures (a status code, an
 * amqp_rpc_reply_t with three kinds, a server close method); the
 * subcommands get one readable line and a -1.
 */
#include "cli/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>

#include "common/alloc.h"

/* The TLS files from --cacert, --cert and --key (borrowed from argv).
 * Process-wide because a client subcommand is one process and every
 * connection it opens uses the same ones. */
static struct {
    const char *cacert, *cert, *key;
} tls_files;

/* opt if set, else $env if set and non-empty, else NULL. */
static const char *opt_or_env(const char *opt, const char *env)
{
    if (opt != NULL)
        return opt;
    const char *v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* True if url names credentials ("amqps://user:pass@host/"). */
static int url_has_user(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t auth = strcspn(p, "/?#");
    return memchr(p, '@', auth) != NULL;
}

const char *sb_client_url(const char *url)
{
    if (url != NULL)
        return url;
    const char *env = getenv("AMQP_URL");
    if (env != NULL && env[0] != '\0')
        return env;
    return SB_CLIENT_DEFAULT_URL;
}

static const struct {
    int code;
    const char *name;
} reply_names[] = {
    { 200, "REPLY_SUCCESS" },       { 311, "CONTENT_TOO_LARGE" },
    { 312, "NO_ROUTE" },            { 313, "NO_CONSUMERS" },
    { 320, "CONNECTION_FORCED" },   { 402, "INVALID_PATH" },
    { 403, "ACCESS_REFUSED" },      { 404, "NOT_FOUND" },
    { 405, "RESOURCE_LOCKED" },     { 406, "PRECONDITION_FAILED" },
    { 501, "FRAME_ERROR" },         { 502, "SYNTAX_ERROR" },
    { 503, "COMMAND_INVALID" },     { 504, "CHANNEL_ERROR" },
    { 505, "UNEXPECTED_FRAME" },    { 506, "RESOURCE_ERROR" },
    { 530, "NOT_ALLOWED" },         { 540, "NOT_IMPLEMENTED" },
    { 541, "INTERNAL_ERROR" },
};

const char *sb_client_reply_name(int code)
{
    for (size_t i = 0; i < sizeof reply_names / sizeof reply_names[0]; i++)
        if (reply_names[i].code == code)
            return reply_names[i].name;
    return "UNKNOWN";
}

/* A hint for the codes people hit from the command line; "" if none. */
static const char *reply_hint(int code)
{
    switch (code) {
    case 403: return " (check the user and password in the URL, and their permissions)";
    case 530: return " (does the vhost in the URL exist, and may this user use it?)";
    case 320: return " (the broker is shutting down or closed the connection)";
    default: return "";
    }
}

/* RabbitMQ starts its reply texts with the code's name ("NOT_FOUND - no
 * queue 'q'"); print the name once either way. */
static void format_close(char *buf, size_t n, const char *who, int code,
                         amqp_bytes_t text)
{
    const char *name = sb_client_reply_name(code);
    size_t nl = strlen(name);
    if (text.len >= nl + 3 && memcmp(text.bytes, name, nl) == 0 &&
        memcmp((const char *)text.bytes + nl, " - ", 3) == 0) {
        text.bytes = (char *)text.bytes + nl + 3;
        text.len -= nl + 3;
    }
    snprintf(buf, n, "%s closed by the broker: %d %s - %.*s%s", who, code, name,
             (int)text.len, (const char *)text.bytes, reply_hint(code));
}

const char *sb_client_reply_str(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, n, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, n, "no reply from the library (missing RPC reply type)");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, n, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            format_close(buf, n, "connection", m->reply_code, m->reply_text);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            format_close(buf, n, "channel", m->reply_code, m->reply_text);
        } else {
            snprintf(buf, n, "unexpected method 0x%08x from the broker", r.reply.id);
        }
        break;
    default:
        snprintf(buf, n, "unknown reply type %d", (int)r.reply_type);
    }
    return buf;
}

int sb_client_check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    char buf[512];
    fprintf(stderr, "switchboard: %s: %s\n", what, sb_client_reply_str(r, buf, sizeof buf));
    return -1;
}

int sb_client_check_last(sb_client *c, const char *what)
{
    return sb_client_check(amqp_get_rpc_reply(c->conn), what);
}

int sb_client_lib_error(int status, const char *what)
{
    fprintf(stderr, "switchboard: %s: %s\n", what, amqp_error_string2(status));
    return -1;
}

int sb_client_other_frame(sb_client *c, const char *lost_what, const char *cancel_msg,
                          const char *fail_what)
{
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame(c->conn, &f);
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, lost_what);
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f.payload.method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
        fprintf(stderr, "%s\n", cancel_msg);
        return -1;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                               .reply = f.payload.method };
        return sb_client_check(r, fail_what);
    }
    default:
        return 0;
    }
}

/* librabbitmq reports a failed connect as a bare "a socket error
 * occurred", with errno lost. Connect once more ourselves (only on that
 * failure path) to learn the reason: "Connection refused" is the usual one. */
static const char *probe_connect(const char *host, int port, int timeout_ms)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return gai_strerror(gai);
    int err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        err = rc == 0 ? 0 : errno;
        close(fd);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    if (err == 0)
        return "the TCP connection works now, but the AMQP handshake failed";
    return strerror(err);
}

/* An amqps:// socket: the broker's certificate is verified (chain and
 * host name) against --cacert, else the system's CAs; --cert and --key
 * present a client certificate. NULL after printing why. */
static amqp_socket_t *tls_socket(sb_client *c)
{
    const char *cacert = opt_or_env(tls_files.cacert, "AMQP_CACERT");
    const char *cert = opt_or_env(tls_files.cert, "AMQP_CERT");
    const char *key = opt_or_env(tls_files.key, "AMQP_KEY");
    amqp_socket_t *sock = amqp_ssl_socket_new(c->conn);
    if (sock == NULL) {
        fprintf(stderr, "switchboard: cannot create a TLS socket (OpenSSL failed to start)\n");
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 1);
    if (cacert != NULL && amqp_ssl_socket_set_cacert(sock, cacert) != AMQP_STATUS_OK) {
        fprintf(stderr, "switchboard: cannot load the CA certificates in '%s' (--cacert)\n",
                cacert);
        return NULL;
    }
    if (cacert == NULL)
        SSL_CTX_set_default_verify_paths(amqp_ssl_socket_get_context(sock));
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "switchboard: a client certificate needs both --cert and --key\n");
        return NULL;
    }
    if (cert != NULL && amqp_ssl_socket_set_key(sock, cert, key) != AMQP_STATUS_OK) {
        fprintf(stderr, "switchboard: cannot load the client certificate '%s' with key '%s' "
                        "(PEM files, the key not encrypted, matching each other?)\n", cert, key);
        return NULL;
    }
    return sock;
}

static int open_socket(sb_client *c, const struct amqp_connection_info *ci, int timeout_ms)
{
    amqp_socket_t *sock = ci->ssl ? tls_socket(c) : amqp_tcp_socket_new(c->conn);
    if (sock == NULL) {
        if (!ci->ssl)
            fprintf(stderr, "switchboard: cannot create a socket: out of memory\n");
        return -1;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    int rc = amqp_socket_open_noblock(sock, ci->host, ci->port, timeout_ms > 0 ? &tv : NULL);
    if (rc == AMQP_STATUS_OK)
        return 0;
    const char *why = rc == AMQP_STATUS_SOCKET_ERROR
                          ? probe_connect(ci->host, ci->port, timeout_ms > 0 ? timeout_ms : 5000)
                          : amqp_error_string2(rc);
    fprintf(stderr,
            "switchboard: cannot connect to %s: %s (%s)\n", c->where, why,
            ci->ssl ? "is that the broker's AMQPS port, and does --cacert hold the CA that "
                      "signed its certificate?"
                    : "is the broker running? start it with `make run`, or pass --url / set "
                      "AMQP_URL");
    return -1;
}

static amqp_rpc_reply_t login(sb_client *c, const struct amqp_connection_info *ci,
                              const char *conn_name, int external)
{
    /* consumer_cancel_notify: without it a broker does not send
     * basic.cancel when a consumed queue is deleted, and a consumer waits
     * forever. librabbitmq merges this with its own capabilities. */
    amqp_table_entry_t cap = { .key = amqp_cstring_bytes("consumer_cancel_notify"),
                               .value = { .kind = AMQP_FIELD_KIND_BOOLEAN,
                                          .value = { .boolean = 1 } } };
    amqp_table_entry_t entries[2];
    amqp_table_t props = { 1, entries };
    entries[0].key = amqp_cstring_bytes("capabilities");
    entries[0].value.kind = AMQP_FIELD_KIND_TABLE;
    entries[0].value.value.table = (amqp_table_t){ 1, &cap };
    if (conn_name != NULL) {
        entries[1].key = amqp_cstring_bytes("connection_name");
        entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[1].value.value.bytes = amqp_cstring_bytes(conn_name);
        props.num_entries = 2;
    }
    /* EXTERNAL: the broker takes the user from the client certificate and
     * ignores the identity sent (librabbitmq cannot send an empty one). */
    if (external)
        return amqp_login_with_properties(c->conn, ci->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                                          &props, AMQP_SASL_METHOD_EXTERNAL, ci->user);
    return amqp_login_with_properties(c->conn, ci->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                                      &props, AMQP_SASL_METHOD_PLAIN, ci->user,
                                      ci->password);
}

int sb_client_open(sb_client *c, const char *url, const char *conn_name, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    char *copy = sb_strdup(url);  /* amqp_parse_url parses in place */
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    int rc = amqp_parse_url(copy, &ci);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr,
                "switchboard: bad AMQP URL '%s': %s (expected "
                "amqp://user:password@host:port/vhost, or amqps:// for TLS)\n",
                url, amqp_error_string2(rc));
        goto fail;
    }
    /* amqp://host/ names the vhost "" by the AMQP URI spec, which no broker
     * has; like pika, take it (and a missing path) as "/". */
    if (ci.vhost == NULL || ci.vhost[0] == '\0')
        ci.vhost = "/";
    snprintf(c->where, sizeof c->where, "%s:%d", ci.host, ci.port);
    c->conn = amqp_new_connection();
    if (c->conn == NULL) {
        fprintf(stderr, "switchboard: out of memory\n");
        goto fail;
    }
    if (timeout_ms > 0) {
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        amqp_set_handshake_timeout(c->conn, &tv);
    }
    if (open_socket(c, &ci, timeout_ms) != 0)
        goto fail;
    /* amqps:// with a client certificate and no user in the URL: EXTERNAL. */
    int external = ci.ssl && opt_or_env(tls_files.cert, "AMQP_CERT") != NULL && !url_has_user(url);
    char what[400];
    if (external)
        snprintf(what, sizeof what, "cannot log in to %s with the client certificate (SASL "
                 "EXTERNAL, vhost '%s')", c->where, ci.vhost);
    else
        snprintf(what, sizeof what, "cannot log in to %s as '%s' (vhost '%s')", c->where,
                 ci.user, ci.vhost);
    if (sb_client_check(login(c, &ci, conn_name, external), what) != 0)
        goto fail;
    amqp_channel_open(c->conn, SB_CLIENT_CHANNEL);
    if (sb_client_check_last(c, "cannot open a channel") != 0)
        goto fail;
    sb_free(copy);
    return 0;
fail:
    sb_free(copy);
    if (c->conn != NULL)
        amqp_destroy_connection(c->conn);
    c->conn = NULL;
    return -1;
}

void sb_client_close(sb_client *c)
{
    if (c->conn == NULL)
        return;
    /* connection.close closes every channel, including one the broker has
     * already closed (a channel.close on it would be a protocol error). */
    amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c->conn);
    c->conn = NULL;
}

int sb_client_parse_u64(const char *s, const char *opt, uint64_t min, uint64_t max,
                        uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "switchboard: %s expects a whole number from %llu to %llu, not '%s'\n",
                opt, (unsigned long long)min, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Unit suffixes of a duration, longest first so "ms" wins over "m". */
static const struct {
    const char *suffix;
    double ms;
} duration_units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "", 1000 } };

int sb_client_parse_duration_ms(const char *s, const char *opt, uint64_t max_ms,
                                uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] >= '0' && s[0] <= '9' && errno == 0 && end != s) {
        for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
            if (strcmp(end, duration_units[i].suffix) != 0)
                continue;
            double ms = v * duration_units[i].ms;
            if (ms >= 1 && ms <= (double)max_ms) {
                *out = (uint64_t)(ms + 0.5);
                return 0;
            }
            break;
        }
    }
    fprintf(stderr, "switchboard: %s expects a duration from 1ms to %llu s, like 250ms, 5s, 2m "
                    "or 1.5 (seconds), not '%s'\n",
            opt, (unsigned long long)(max_ms / 1000), s);
    return -1;
}

int sb_client_read_body(const char *arg, sb_buf *body, const char *cmd)
{
    if (arg != NULL && strcmp(arg, "-") != 0) {
        sb_buf_append(body, arg, strlen(arg));
        return 0;
    }
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "switchboard %s: reading the body from standard input "
                        "(end with Ctrl-D)\n", cmd);
    for (;;) {
        sb_buf_reserve(body, 65536);
        size_t n = fread(body->data + body->len, 1, body->cap - body->len, stdin);
        body->len += n;
        if (n == 0)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "switchboard %s: reading standard input: %s\n", cmd, strerror(errno));
        return -1;
    }
    return 0;
}

int sb_client_queue_probe(sb_client *c, const char *queue, uint32_t *consumers)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c->conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0,
                           amqp_empty_table);
    if (ok != NULL) {
        if (consumers != NULL)
            *consumers = ok->consumer_count;
        return 1;
    }
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
        ((const amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
        /* Answer the broker's channel.close, then open the channel again. */
        amqp_channel_close_ok_t close_ok = { 0 };
        if (amqp_send_method(c->conn, SB_CLIENT_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD,
                             &close_ok) != AMQP_STATUS_OK)
            return sb_client_lib_error(AMQP_STATUS_SOCKET_ERROR, "cannot reopen the channel");
        amqp_maybe_release_buffers_on_channel(c->conn, SB_CLIENT_CHANNEL);
        amqp_channel_open(c->conn, SB_CLIENT_CHANNEL);
        return sb_client_check_last(c, "cannot reopen the channel") == 0 ? 0 : -1;
    }
    char what[300];
    snprintf(what, sizeof what, "cannot check queue '%s'", queue);
    return sb_client_check(r, what);
}

amqp_bytes_t sb_client_bytes(const char *s)
{
    return amqp_cstring_bytes(s);
}

void sb_client_print_bytes(amqp_bytes_t b, int nl)
{
    if (b.len > 0)
        fwrite(b.bytes, 1, b.len, stdout);
    if (nl)
        fputc('\n', stdout);
}

int sb_confirms_start(sb_client *c, sb_confirms *cf, uint64_t window)
{
    memset(cf, 0, sizeof *cf);
    cf->next_tag = cf->low = 1;
    cf->window = window > 0 ? window : 1;
    cf->settled = sb_calloc(cf->window, 1);
    amqp_confirm_select(c->conn, SB_CLIENT_CHANNEL);
    return sb_client_check_last(c, "confirm.select failed");
}

void sb_confirms_free(sb_confirms *cf)
{
    sb_free(cf->settled);
    cf->settled = NULL;
}

/* Marks tags [from, to] settled (clamped to the outstanding range) and
 * advances low past every settled tag. */
static void settle(sb_confirms *cf, uint64_t from, uint64_t to)
{
    if (from < cf->low)
        from = cf->low;
    if (to >= cf->next_tag)
        to = cf->next_tag - 1;
    for (uint64_t t = from; t <= to; t++)
        cf->settled[t % cf->window] = 1;
    while (cf->low < cf->next_tag && cf->settled[cf->low % cf->window]) {
        cf->settled[cf->low % cf->window] = 0;
        cf->low++;
    }
}

static void on_ack_or_nack(sb_confirms *cf, uint64_t tag, int multiple, int nack)
{
    uint64_t before = cf->low;
    settle(cf, multiple ? cf->low : tag, tag);
    uint64_t n = multiple ? cf->low - before : 1;
    if (nack)
        cf->nacks += n;
    else
        cf->acks += n;
}

/* basic.return is followed by a content header and body: read and drop
 * them, keeping the reason for the report. */
static int on_return(sb_client *c, sb_confirms *cf, const amqp_basic_return_t *m)
{
    /* The reply text of a return is the code's name alone ("NO_ROUTE"). */
    snprintf(cf->last_return, sizeof cf->last_return,
             "%d %.*s (exchange '%.*s', routing key '%.*s')", m->reply_code,
             (int)m->reply_text.len, (const char *)m->reply_text.bytes, (int)m->exchange.len,
             (const char *)m->exchange.bytes, (int)m->routing_key.len,
             (const char *)m->routing_key.bytes);
    cf->returns++;
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(c->conn, SB_CLIENT_CHANNEL, &msg, 0);
    if (sb_client_check(r, "reading a returned message") != 0)
        return -1;
    amqp_destroy_message(&msg);
    return 0;
}

/* A close from the broker while we wait for confirms: report it, and
 * answer a channel.close with close-ok as the protocol asks. */
static int on_close(sb_client *c, amqp_method_t *m, amqp_channel_t ch)
{
    amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = *m };
    sb_client_check(r, "publish failed");
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = { 0 };
        amqp_send_method(c->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
    return -1;
}

static int on_frame(sb_client *c, sb_confirms *cf, amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;  /* heartbeats; stray content of a method we skipped */
    amqp_method_t *m = &f->payload.method;
    switch (m->id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = m->decoded;
        on_ack_or_nack(cf, a->delivery_tag, a->multiple, 0);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = m->decoded;
        on_ack_or_nack(cf, n->delivery_tag, n->multiple, 1);
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return on_return(c, cf, m->decoded);
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        return on_close(c, m, f->channel);
    default:
        return 0;
    }
}

int sb_confirms_wait(sb_client *c, sb_confirms *cf, uint64_t max_out, int timeout_ms)
{
    while (sb_confirms_outstanding(cf) > max_out) {
        amqp_frame_t f;
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        int rc = amqp_simple_wait_frame_noblock(c->conn, &f, timeout_ms > 0 ? &tv : NULL);
        if (rc == AMQP_STATUS_TIMEOUT)
            return -SB_EXIT_TIMEOUT;
        if (rc != AMQP_STATUS_OK)
            return sb_client_lib_error(rc, "waiting for publisher confirms");
        int r = on_frame(c, cf, &f);
        amqp_maybe_release_buffers(c->conn);
        if (r != 0)
            return r;
    }
    return 0;
}

/* ---- command-line parsing: one wording of every usage error ---- */

/* The TLS options every subcommand with --url takes, handled here. */
enum { OPT_TLS_CACERT = 0x7f00, OPT_TLS_CERT, OPT_TLS_KEY };

static const struct option tls_longopts[] = {
    { "cacert", required_argument, NULL, OPT_TLS_CACERT },
    { "cert", required_argument, NULL, OPT_TLS_CERT },
    { "key", required_argument, NULL, OPT_TLS_KEY },
};
#define N_TLS_OPTS (sizeof tls_longopts / sizeof tls_longopts[0])

static const char tls_usage[] =
    "\n"
    "TLS (amqps://host:5671/ URLs):\n"
    "  --cacert FILE         CA certificates (PEM) the broker's certificate must\n"
    "                        chain to (default: $AMQP_CACERT, else the system's)\n"
    "  --cert FILE           client certificate (PEM), for a broker that asks for\n"
    "                        one (default: $AMQP_CERT); with no user in the URL,\n"
    "                        logs in as the certificate's name (SASL EXTERNAL)\n"
    "  --key FILE            its private key, PEM, not encrypted (default: $AMQP_KEY)\n";

/* cmd's long options, plus the TLS ones if it connects over AMQP (takes
 * --url). New allocation. */
static struct option *with_tls_opts(const sb_client_cmd *cmd, int *has_tls)
{
    size_t n = 0;
    *has_tls = 0;
    for (; cmd->longopts[n].name != NULL; n++)
        if (strcmp(cmd->longopts[n].name, "url") == 0)
            *has_tls = 1;
    struct option *all = sb_calloc(n + N_TLS_OPTS + 1, sizeof *all);
    memcpy(all, cmd->longopts, n * sizeof *all);
    if (*has_tls)
        memcpy(all + n, tls_longopts, sizeof tls_longopts);
    return all;
}

int sb_client_parse_args(const sb_client_cmd *cmd, int argc, char **argv, void *opts)
{
    int has_tls, opt, rc = 0;
    struct option *longopts = with_tls_opts(cmd, &has_tls);
    optind = 0;  /* full reinitialisation of GNU getopt */
    opterr = 0;  /* we word the errors ourselves */
    while ((opt = getopt_long(argc, argv, cmd->shortopts, longopts, NULL)) != -1) {
        if (opt == OPT_TLS_CACERT || opt == OPT_TLS_CERT || opt == OPT_TLS_KEY) {
            *(opt == OPT_TLS_CACERT ? &tls_files.cacert
              : opt == OPT_TLS_CERT ? &tls_files.cert : &tls_files.key) = optarg;
            continue;
        }
        rc = cmd->apply(opts, opt);
        if (rc == SB_CLIENT_OPT_HELP) {
            fputs(cmd->usage, stdout);
            if (has_tls)
                fputs(tls_usage, stdout);
            break;
        }
        if (rc == SB_CLIENT_OPT_UNKNOWN) {
            rc = sb_client_usage_error(cmd->name, "unknown option or missing value: %s",
                                       argv[optind - 1]);
            break;
        }
        if (rc != 0)
            break;
    }
    sb_free(longopts);
    return rc;
}

int sb_client_usage_error(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "switchboard %s: ", name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(try `switchboard %s --help`)\n", name);
    va_end(ap);
    return SB_EXIT_USAGE;
}

int sb_client_sub_help(int argc, char **argv, const char *usage)
{
    if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
        return 0;
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? SB_EXIT_USAGE : SB_CLIENT_OPT_HELP;
}

int sb_client_add_header(const char *name, const char **headers, int *n, int max,
                         const char *kv)
{
    if (strchr(kv, '=') == NULL || kv[0] == '=')
        return sb_client_usage_error(name, "--header expects KEY=VALUE");
    if (*n == max)
        return sb_client_usage_error(name, "too many --header options (at most %d)", max);
    headers[(*n)++] = kv;
    return 0;
}

void sb_client_set_headers(amqp_basic_properties_t *p, const char *const *headers, int n,
                           amqp_table_entry_t *entries)
{
    if (n == 0)
        return;
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(headers[i], '=');
        entries[i].key = (amqp_bytes_t){ (size_t)(eq - headers[i]), (void *)headers[i] };
        entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[i].value.value.bytes = amqp_cstring_bytes(eq + 1);
    }
    p->_flags |= AMQP_BASIC_HEADERS_FLAG;
    p->headers = (amqp_table_t){ n, entries };
}

void sb_client_server_name(sb_client *c, char *buf, size_t n)
{
    const amqp_table_t *t = amqp_get_server_properties(c->conn);
    amqp_bytes_t product = { 0, NULL }, version = { 0, NULL };
    for (int i = 0; t != NULL && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
            continue;
        if (e->key.len == 7 && memcmp(e->key.bytes, "product", 7) == 0)
            product = e->value.value.bytes;
        else if (e->key.len == 7 && memcmp(e->key.bytes, "version", 7) == 0)
            version = e->value.value.bytes;
    }
    snprintf(buf, n, "%.*s %.*s", (int)product.len, (const char *)product.bytes,
             (int)version.len, (const char *)version.bytes);
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';  /* it goes into JSON unescaped */
}
