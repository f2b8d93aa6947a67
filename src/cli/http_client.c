/* http_client.c - one HTTP/1.1 request per TCP connection, for the
 * management API subcommands (see http_client.h).
 *
 * The request says "Connection: close", so the answer ends where the
 * stream does; Content-Length, when present, trims it, and a chunked
 * answer (which a server may still send to an HTTP/1.1 client) is
 * decoded. Runs on the CLI's only thread; every wait is bounded by
 * SO_RCVTIMEO / SO_SNDTIMEO.
 */
#include "cli/http_client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/alloc.h"

typedef struct http_url {
    char host[256];
    char port[8];
    char userinfo[512];   /* "user:pass", percent-decoded */
    char prefix[512];     /* path before the API paths, without a trailing '/' */
} http_url;

const char *sb_http_client_url(const char *url)
{
    if (url != NULL)
        return url;
    const char *env = getenv("HTTP_URL");
    if (env != NULL && env[0] != '\0')
        return env;
    return SB_HTTP_CLIENT_DEFAULT_URL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies s[0..n) to out (size cap) percent-decoded; -1 if it does not fit
 * or an escape is malformed. */
static int decode_into(const char *s, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (w + 1 >= cap)
            return -1;
        out[w++] = c;
    }
    out[w] = '\0';
    return 0;
}

static int copy_part(const char *s, size_t n, char *out, size_t cap)
{
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Splits http://[user:pass@]host[:port][/prefix]. */
static int parse_url(const char *url, http_url *u)
{
    memset(u, 0, sizeof *u);
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *p = url + 7, *end = p + strcspn(p, "/?#");
    const char *at = memrchr(p, '@', (size_t)(end - p));
    if (at != NULL) {
        if (decode_into(p, (size_t)(at - p), u->userinfo, sizeof u->userinfo) < 0)
            return -1;
        p = at + 1;
    }
    const char *colon;
    if (*p == '[') {  /* IPv6 literal */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || copy_part(p + 1, (size_t)(rb - p - 1), u->host, sizeof u->host) < 0)
            return -1;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        if (copy_part(p, (size_t)((colon ? colon : end) - p), u->host, sizeof u->host) < 0)
            return -1;
    }
    if (colon != NULL) {
        if (copy_part(colon + 1, (size_t)(end - colon - 1), u->port, sizeof u->port) < 0)
            return -1;
    } else {
        strcpy(u->port, "80");
    }
    size_t plen = strcspn(end, "?#");
    while (plen > 0 && end[plen - 1] == '/')
        plen--;
    if (u->host[0] == '\0' || u->port[0] == '\0' ||
        copy_part(end, plen, u->prefix, sizeof u->prefix) < 0)
        return -1;
    return 0;
}

static void base64(sb_buf *b, const char *s)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint8_t)s[i + 2];
        char out[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63],
                        i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
        sb_buf_append(b, out, 4);
    }
}

void sb_http_client_encode_segment(sb_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sb_buf_append(b, s, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            sb_buf_append(b, e, 3);
        }
    }
}

static int dial(const http_url *u, int timeout_ms, char *why, size_t why_len)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_len, "%s", gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, why_len, "%s", strerror(err));
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, sb_buf *b)
{
    for (;;) {
        sb_buf_reserve(b, 65536);
        ssize_t r = recv(fd, b->data + b->len, b->cap - b->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        b->len += (size_t)r;
    }
}

static void build_request(sb_buf *req, const http_url *u, const char *method, const char *path,
                          size_t body_len, int has_body)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\n", method, u->prefix,
                     path, u->host, u->port);
    sb_buf_append(req, line, (size_t)n);
    if (u->userinfo[0] != '\0') {
        sb_buf_append(req, "Authorization: Basic ", 21);
        base64(req, u->userinfo);
        sb_buf_append(req, "\r\n", 2);
    }
    if (has_body) {
        n = snprintf(line, sizeof line,
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
        sb_buf_append(req, line, (size_t)n);
    }
    static const char tail[] = "Accept: application/json\r\nUser-Agent: switchboard-cli\r\n"
                               "Connection: close\r\n\r\n";
    sb_buf_append(req, tail, sizeof tail - 1);
}

/* Decodes a chunked body in place; -1 if malformed. */
static int dechunk(sb_buf *b, size_t start)
{
    size_t r = start, w = start;
    for (;;) {
        char *end = NULL;
        const char *p = (const char *)b->data + r;
        const char *eol = memmem(p, b->len - r, "\r\n", 2);
        if (eol == NULL)
            return -1;
        unsigned long n = strtoul(p, &end, 16);
        r = (size_t)(eol - (const char *)b->data) + 2;
        if (n == 0)
            break;
        if (n > b->len - r)
            return -1;
        memmove(b->data + w, b->data + r, n);
        w += n;
        r += n + 2;
        if (r > b->len)
            return -1;
    }
    b->len = w;
    return 0;
}

/* Splits raw (status line, headers, body) into out. */
static int parse_response(sb_buf *raw, sb_http_resp *out)
{
    sb_buf_append(raw, "", 1);  /* NUL for the string functions; not counted below */
    raw->len--;
    const char *s = (const char *)raw->data;
    const char *hend = memmem(s, raw->len, "\r\n\r\n", 4);
    if (hend == NULL || sscanf(s, "HTTP/%*d.%*d %d", &out->status) != 1)
        return -1;
    size_t body_at = (size_t)(hend - s) + 4;
    int chunked = 0;
    long clen = -1;
    for (const char *h = strstr(s, "\r\n") + 2; h < hend; h = strstr(h, "\r\n") + 2) {
        if (strncasecmp(h, "transfer-encoding:", 18) == 0 && strstr(h, "chunked") != NULL &&
            strstr(h, "chunked") < strstr(h, "\r\n"))
            chunked = 1;
        else if (strncasecmp(h, "content-length:", 15) == 0)
            clen = strtol(h + 15, NULL, 10);
    }
    if (chunked && dechunk(raw, body_at) < 0)
        return -1;
    if (!chunked && clen >= 0 && (size_t)clen < raw->len - body_at)
        raw->len = body_at + (size_t)clen;
    sb_buf_append(&out->body, raw->data + body_at, raw->len - body_at);
    return 0;
}

int sb_http_client_request(const char *base_url, const char *method, const char *path,
                           const void *body, size_t body_len, int timeout_ms,
                           sb_http_resp *out)
{
    memset(out, 0, sizeof *out);
    http_url u;
    if (parse_url(base_url, &u) < 0) {
        fprintf(stderr, "switchboard: bad HTTP URL '%s' (expected "
                        "http://user:password@host:port)\n", base_url);
        return -1;
    }
    char why[256];
    int fd = dial(&u, timeout_ms, why, sizeof why), rc = -1;
    if (fd < 0) {
        fprintf(stderr, "switchboard: cannot connect to the HTTP API at %s:%s: %s (is the "
                        "broker running with HTTP enabled? pass --http or set HTTP_URL)\n",
                u.host, u.port, why);
        return -1;
    }
    sb_buf req = SB_BUF_INIT, raw = SB_BUF_INIT;
    build_request(&req, &u, method, path, body_len, body != NULL);
    if (body != NULL)
        sb_buf_append(&req, body, body_len);
    if (send_all(fd, req.data, req.len) < 0 || recv_all(fd, &raw) < 0) {
        fprintf(stderr, "switchboard: %s %s on %s:%s: %s\n", method, path, u.host, u.port,
                errno == EAGAIN ? "timed out" : strerror(errno));
        goto out;
    }
    if (parse_response(&raw, out) < 0) {
        fprintf(stderr, "switchboard: %s %s on %s:%s: not an HTTP answer\n", method, path,
                u.host, u.port);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    sb_buf_free(&req);
    sb_buf_free(&raw);
    return rc;
}

void sb_http_resp_free(sb_http_resp *r)
{
    sb_buf_free(&r->body);
}

void sb_http_client_print_error(const sb_http_resp *r, const char *what)
{
    json_t *j = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
    const char *err = json_string_value(json_object_get(j, "error"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    if (err != NULL)
        fprintf(stderr, "switchboard: %s: HTTP %d %s: %s%s\n", what, r->status, err,
                reason ? reason : "", r->status == 401 ? " (check the user and password in "
                                                         "--http / HTTP_URL)" : "");
    else
        fprintf(stderr, "switchboard: %s: HTTP %d: %.*s\n", what, r->status,
                (int)(r->body.len > 300 ? 300 : r->body.len), (const char *)r->body.data);
    json_decref(j);
}

json_t *sb_http_client_get_json(const char *base_url, const char *path)
{
    sb_http_resp r;
    json_t *j = NULL;
    char what[600];
    snprintf(what, sizeof what, "GET %s", path);
    if (sb_http_client_request(base_url, "GET", path, NULL, 0, 30000, &r) < 0)
        goto out;
    if (r.status < 200 || r.status > 299) {
        sb_http_client_print_error(&r, what);
        goto out;
    }
    json_error_t e;
    j = json_loadb((const char *)r.body.data, r.body.len, 0, &e);
    if (j == NULL)
        fprintf(stderr, "switchboard: %s: the answer is not JSON: %s\n", what, e.text);
out:
    sb_http_resp_free(&r);
    return j;
}
