/* respond.c - `switchboard respond QUEUE -- COMMAND [ARGS...]`: serve a
 * queue by running a program per request.
 *
 * Each request runs COMMAND (no shell: posix_spawnp, i.e. fork/exec) with
 * the request body on its stdin. Exit 0: its stdout is published to the
 * request's reply_to through the default exchange, with the request's
 * correlation_id and content_type, and the request is acked. Anything else
 * (non-zero exit, killed by a signal, stdout over --max-output, cannot be
 * started) rejects the request with requeue=false, so it dead-letters when
 * the queue has a dead-letter exchange, and logs the command's stderr tail.
 *
 * Concurrency: one thread, one connection and one channel. Up to
 * --concurrency commands run at once; a poll loop watches the AMQP socket,
 * every child's stdin/stdout/stderr pipes and a signalfd (SIGCHLD, SIGINT,
 * SIGTERM). Replies and acks all go out on that one channel, so the broker
 * sees one consumer with prefetch --prefetch (default: --concurrency).
 * Deliveries beyond the free slots wait in a local FIFO, unacked; one whose
 * expiration passes there is rejected rather than run late.
 *
 * Children run in their own process group, so Ctrl-C in a terminal reaches
 * only the responder, which then cancels its consumer, requeues requests
 * not started, and waits up to --shutdown-timeout for the running ones;
 * after that (or on a second signal) it kills their process groups and
 * requeues their requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"

extern char **environ;

#define MAX_CONCURRENCY 256
#define STDERR_KEEP 4096        /* bytes of a command's stderr kept for the log */
#define PIPE_GRACE_MS 2000      /* after exit, wait this long for pipes to close */
#define TICK_MS 250

typedef struct respond_opts {
    const char *url;
    const char *queue;
    char **command;             /* argv of COMMAND, NULL-terminated, borrowed */
    uint64_t concurrency, prefetch, max_output, shutdown_ms;
    int declare;
} respond_opts;

static const char usage_text[] =
    "usage: switchboard respond QUEUE [options] -- COMMAND [ARGS...]\n"
    "\n"
    "Serves QUEUE: runs COMMAND (directly, no shell) for each request with the\n"
    "request body on standard input. If COMMAND exits 0, its standard output\n"
    "is sent as the reply (same correlation_id and content_type) to the\n"
    "request's reply_to, and the request is acked. A non-zero exit, a crash,\n"
    "or output over --max-output rejects the request without requeueing it,\n"
    "so it dead-letters when QUEUE has a dead-letter exchange; the command's\n"
    "stderr tail is logged. Requests without reply_to are run and acked.\n"
    "Stops cleanly on SIGINT/SIGTERM, letting running commands finish.\n"
    "\n"
    "options:\n"
    "  --concurrency N            run up to N commands at once (default 1); one\n"
    "                             thread polls all of them\n"
    "  --prefetch N               unacked requests taken from the broker at once\n"
    "                             (default: the concurrency)\n"
    "  --declare                  declare QUEUE (non-durable) if it does not exist\n"
    "  --max-output BYTES         largest reply accepted from COMMAND (default\n"
    "                             16777216)\n"
    "  --shutdown-timeout DURATION  on a signal, how long running commands may take\n"
    "                             to finish before they are killed (default 10s)\n"
    "  --url URL                  broker URL (default: $AMQP_URL, else\n"
    "                             " SB_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help                 this text\n"
    "\n"
    "exit status: 0 stopped by a signal; 1 connection or broker error (e.g. no\n"
    "such queue without --declare); 2 bad arguments, or COMMAND not found.\n"
    "\n"
    "examples:\n"
    "  switchboard respond upper --declare -- tr a-z A-Z\n"
    "  switchboard call upper hello            # prints HELLO\n"
    "  switchboard respond thumbnails --concurrency 8 -- convert - -resize 64x64 png:-\n"
    "  switchboard respond echo -- cat\n";

enum {
    OPT_URL = 256, OPT_CONCURRENCY, OPT_PREFETCH, OPT_DECLARE, OPT_MAX_OUTPUT,
    OPT_SHUTDOWN_TIMEOUT,
};

static const struct option long_opts[] = {
    { "url", required_argument, NULL, OPT_URL },
    { "concurrency", required_argument, NULL, OPT_CONCURRENCY },
    { "prefetch", required_argument, NULL, OPT_PREFETCH },
    { "declare", no_argument, NULL, OPT_DECLARE },
    { "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
    { "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* sb_client_cmd.apply for respond. */
static int apply_opt(void *opts, int opt)
{
    respond_opts *o = opts;
    int bad = 0;
    switch (opt) {
    case OPT_URL: o->url = optarg; break;
    case OPT_CONCURRENCY:
        bad = sb_client_parse_u64(optarg, "--concurrency", 1, MAX_CONCURRENCY, &o->concurrency);
        break;
    case OPT_PREFETCH:
        bad = sb_client_parse_u64(optarg, "--prefetch", 1, UINT16_MAX, &o->prefetch);
        break;
    case OPT_DECLARE: o->declare = 1; break;
    case OPT_MAX_OUTPUT:
        bad = sb_client_parse_u64(optarg, "--max-output", 0, 1ull << 30, &o->max_output);
        break;
    case OPT_SHUTDOWN_TIMEOUT:
        bad = sb_client_parse_duration_ms(optarg, "--shutdown-timeout", 3600 * 1000,
                                          &o->shutdown_ms);
        break;
    case 'h': return SB_CLIENT_OPT_HELP;
    default: return SB_CLIENT_OPT_UNKNOWN;
    }
    return bad ? SB_EXIT_USAGE : 0;
}

static const sb_client_cmd respond_cmd = { "respond", "h", long_opts, apply_opt, usage_text };

/* Is COMMAND something posix_spawnp can run? Checked up front so that a
 * typo is a usage error, not a stream of rejected requests. */
static int command_exists(const char *cmd)
{
    if (strchr(cmd, '/') != NULL)
        return access(cmd, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char full[4096];
        int n = snprintf(full, sizeof full, "%.*s/%s", (int)(end - p), end == p ? "." : p, cmd);
        if (end == p)
            n = snprintf(full, sizeof full, "./%s", cmd);
        if (n > 0 && (size_t)n < sizeof full && access(full, X_OK) == 0)
            return 1;
        if (*end == '\0')
            return 0;
        p = end;
    }
}

/* Returns 0, SB_CLIENT_OPT_HELP after printing --help, or an exit status. */
static int parse_args(respond_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->concurrency = 1;
    o->max_output = 16u << 20;
    o->shutdown_ms = 10000;
    /* Options end at "--"; what follows is COMMAND, whatever it looks like. */
    int dash = 1;
    while (dash < argc && strcmp(argv[dash], "--") != 0)
        dash++;
    int rc = sb_client_parse_args(&respond_cmd, dash, argv, o);
    if (rc != 0)
        return rc;
    if (dash - optind != 1 || dash + 1 >= argc)
        return sb_client_usage_error("respond", "expects QUEUE -- COMMAND [ARGS...]");
    o->queue = argv[optind];
    o->command = argv + dash + 1;
    if (o->prefetch == 0)
        o->prefetch = o->concurrency;
    if (!command_exists(o->command[0])) {
        fprintf(stderr, "switchboard respond: command not found or not executable: %s\n",
                o->command[0]);
        return SB_EXIT_USAGE;
    }
    return 0;
}

/* ------------------------------------------------------------- requests */

/* One delivery, copied out of librabbitmq's buffers. */
typedef struct request {
    uint64_t tag;
    amqp_bytes_t body, reply_to, corr_id, content_type;  /* owned; len 0 = absent */
    uint64_t expires_ms;  /* sb_clock_ms() deadline from expiration; 0 = none */
    struct request *next; /* in the backlog */
} request;

static amqp_bytes_t dup_prop(const amqp_basic_properties_t *p, amqp_flags_t flag,
                             amqp_bytes_t v)
{
    return (p->_flags & flag) && v.len > 0 ? amqp_bytes_malloc_dup(v) : amqp_empty_bytes;
}

static request *request_new(const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    request *q = sb_calloc(1, sizeof *q);
    q->tag = env->delivery_tag;
    q->body = env->message.body.len > 0 ? amqp_bytes_malloc_dup(env->message.body)
                                        : amqp_empty_bytes;
    q->reply_to = dup_prop(p, AMQP_BASIC_REPLY_TO_FLAG, p->reply_to);
    q->corr_id = dup_prop(p, AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id);
    q->content_type = dup_prop(p, AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type);
    if ((p->_flags & AMQP_BASIC_EXPIRATION_FLAG) && p->expiration.len > 0 &&
        p->expiration.len < 20) {
        char ms[24];
        memcpy(ms, p->expiration.bytes, p->expiration.len);
        ms[p->expiration.len] = '\0';
        q->expires_ms = sb_clock_ms() + strtoull(ms, NULL, 10);
    }
    return q;
}

static void request_free(request *q)
{
    if (q == NULL)
        return;
    amqp_bytes_free(q->body);
    amqp_bytes_free(q->reply_to);
    amqp_bytes_free(q->corr_id);
    amqp_bytes_free(q->content_type);
    sb_free(q);
}

/* ------------------------------------------------------------------ jobs */

/* A running command. A free slot has req == NULL. */
typedef struct job {
    request *req;
    pid_t pid;                  /* also its process group */
    int in_fd, out_fd, err_fd;  /* our ends; -1 once closed */
    size_t in_off;              /* body bytes written to stdin */
    sb_buf out, err;            /* stdout; stderr tail */
    int exited, status;         /* waitpid status once exited */
    int overflow;               /* stdout went over --max-output */
    uint64_t exit_ms;
} job;

typedef struct responder {
    const respond_opts *o;
    sb_client c;
    int sigfd;
    job *jobs;                  /* o->concurrency slots */
    size_t running;
    request *backlog, *backlog_tail;
    int stopping;               /* 1 after the first signal */
    uint64_t stop_deadline_ms;
    amqp_bytes_t ctag;          /* owned */
    uint64_t served, failed;
} responder;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Creates the three pipes; ours end up non-blocking, all close-on-exec
 * (the child's copies are dup2'ed onto 0, 1 and 2, which clears it). */
static int make_pipes(int in[2], int out[2], int err[2])
{
    in[0] = in[1] = out[0] = out[1] = err[0] = err[1] = -1;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        return -errno;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    return 0;
}

static int spawn(const respond_opts *o, int in, int out, int err, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);  /* we ignore it; the command should not */
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGCHLD);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setpgroup(&at, 0);
    int rc = posix_spawnp(pid, o->command[0], &fa, &at, o->command, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* Starts q in the free slot j. Returns 0, or -errno (q untouched). */
static int job_start(const respond_opts *o, job *j, request *q)
{
    int in[2], out[2], err[2];
    int rc = make_pipes(in, out, err);
    if (rc == 0)
        rc = spawn(o, in[0], out[1], err[1], &j->pid);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (rc < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&err[0]);
        return rc;
    }
    j->req = q;
    j->in_fd = in[1];
    j->out_fd = out[0];
    j->err_fd = err[0];
    j->in_off = 0;
    j->exited = j->overflow = 0;
    j->status = 0;
    sb_buf_reset(&j->out);
    sb_buf_reset(&j->err);
    if (q->body.len == 0)
        close_fd(&j->in_fd);
    return 0;
}

static void job_write_stdin(job *j)
{
    const request *q = j->req;
    while (j->in_fd >= 0 && j->in_off < q->body.len) {
        ssize_t n = write(j->in_fd, (const char *)q->body.bytes + j->in_off,
                          q->body.len - j->in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {  /* EPIPE: the command does not read its input */
            close_fd(&j->in_fd);
            return;
        }
        j->in_off += (size_t)n;
    }
    close_fd(&j->in_fd);
}

/* Reads what is available on *fd into b. Stdout is capped at max (the
 * job's stdout is then closed and the command killed); stderr keeps only
 * its last STDERR_KEEP bytes. */
static void job_read(job *j, int *fd, sb_buf *b, size_t max, int is_stdout)
{
    for (;;) {
        sb_buf_reserve(b, 65536);
        ssize_t n = read(*fd, b->data + b->len, b->cap - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close_fd(fd);
            return;
        }
        b->len += (size_t)n;
        if (is_stdout && b->len > max) {
            j->overflow = 1;
            close_fd(fd);
            kill(-j->pid, SIGKILL);
            return;
        }
        if (!is_stdout && b->len > 4 * STDERR_KEEP)
            sb_buf_consume(b, b->len - STDERR_KEEP);
    }
}

static int job_done(const job *j, uint64_t now)
{
    if (j->req == NULL || !j->exited)
        return 0;
    if (j->out_fd < 0 && j->err_fd < 0)
        return 1;
    /* Something the command started still holds its pipes open. */
    return now >= j->exit_ms + PIPE_GRACE_MS;
}

/* ------------------------------------------------------------- replying */

static void log_failure(const responder *r, const job *j, const char *why)
{
    const request *q = j->req;
    const sb_buf *e = &j->err;
    size_t keep = e->len > STDERR_KEEP ? STDERR_KEEP : e->len;
    fprintf(stderr, "switchboard respond: request %llu (correlation id '%.*s') on '%s': "
                    "%s; rejected without requeue (dead-lettered if the queue has a "
                    "dead-letter exchange)%s\n",
            (unsigned long long)q->tag, (int)q->corr_id.len, (const char *)q->corr_id.bytes,
            r->o->queue, why, keep > 0 ? "; its stderr ends with:" : "");
    if (keep > 0) {
        fwrite(e->data + e->len - keep, 1, keep, stderr);
        if (e->data[e->len - 1] != '\n')
            fputc('\n', stderr);
    }
}

static int settle(responder *r, const request *q, int ok, int requeue)
{
    int rc = ok ? amqp_basic_ack(r->c.conn, SB_CLIENT_CHANNEL, q->tag, 0)
                : amqp_basic_reject(r->c.conn, SB_CLIENT_CHANNEL, q->tag, requeue);
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, ok ? "basic.ack failed" : "basic.reject failed");
    return 0;
}

static int send_reply(responder *r, const request *q, const sb_buf *out)
{
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    if (q->corr_id.len > 0) {
        p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p.correlation_id = q->corr_id;
    }
    if (q->content_type.len > 0) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = q->content_type;
    }
    /* Not mandatory: a caller that has gone is not our error. */
    int rc = amqp_basic_publish(r->c.conn, SB_CLIENT_CHANNEL, amqp_empty_bytes, q->reply_to, 0,
                                0, &p, (amqp_bytes_t){ out->len, out->data });
    if (rc != AMQP_STATUS_OK)
        return sb_client_lib_error(rc, "publishing a reply failed");
    return 0;
}

/* Describes why j failed into buf, or returns NULL if it succeeded. */
static const char *job_failure(const respond_opts *o, const job *j, char *buf, size_t n)
{
    if (j->overflow)
        snprintf(buf, n, "`%s` wrote more than %llu bytes to stdout (killed)", o->command[0],
                 (unsigned long long)o->max_output);
    else if (WIFSIGNALED(j->status))
        snprintf(buf, n, "`%s` was killed by signal %d (%s)", o->command[0],
                 WTERMSIG(j->status), strsignal(WTERMSIG(j->status)));
    else if (WIFEXITED(j->status) && WEXITSTATUS(j->status) != 0)
        snprintf(buf, n, "`%s` exited with status %d", o->command[0], WEXITSTATUS(j->status));
    else
        return NULL;
    return buf;
}

/* Replies to and settles the finished job j, then frees its slot. */
static int job_finish(responder *r, job *j)
{
    close_fd(&j->in_fd);
    close_fd(&j->out_fd);
    close_fd(&j->err_fd);
    char why[300];
    const char *failure = job_failure(r->o, j, why, sizeof why);
    int rc;
    if (failure != NULL) {
        log_failure(r, j, failure);
        r->failed++;
        rc = settle(r, j->req, 0, 0);
    } else {
        rc = j->req->reply_to.len > 0 ? send_reply(r, j->req, &j->out) : 0;
        if (rc == 0)
            rc = settle(r, j->req, 1, 0);
        r->served++;
    }
    request_free(j->req);
    j->req = NULL;
    r->running--;
    return rc;
}

/* ----------------------------------------------------------- the loop */

static void backlog_push(responder *r, request *q)
{
    q->next = NULL;
    if (r->backlog_tail != NULL)
        r->backlog_tail->next = q;
    else
        r->backlog = q;
    r->backlog_tail = q;
}

static request *backlog_pop(responder *r)
{
    request *q = r->backlog;
    if (q != NULL && (r->backlog = q->next) == NULL)
        r->backlog_tail = NULL;
    return q;
}

static job *free_slot(responder *r)
{
    for (uint64_t i = 0; i < r->o->concurrency; i++)
        if (r->jobs[i].req == NULL)
            return &r->jobs[i];
    return NULL;
}

/* Runs what the backlog holds while slots are free. A request whose
 * expiration passed while it waited is not run: its caller has gone. */
static int start_jobs(responder *r)
{
    job *j;
    while (r->backlog != NULL && !r->stopping && (j = free_slot(r)) != NULL) {
        request *q = backlog_pop(r);
        int rc = 0;
        if (q->expires_ms != 0 && sb_clock_ms() >= q->expires_ms) {
            fprintf(stderr, "switchboard respond: request %llu expired before a slot was "
                            "free; rejected without requeue\n", (unsigned long long)q->tag);
            rc = settle(r, q, 0, 0);
        } else if ((rc = job_start(r->o, j, q)) == 0) {
            r->running++;
            continue;
        } else {
            fprintf(stderr, "switchboard respond: cannot run `%s`: %s; request %llu "
                            "rejected without requeue\n", r->o->command[0], strerror(-rc),
                    (unsigned long long)q->tag);
            rc = settle(r, q, 0, 0);
        }
        request_free(q);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* A frame other than a delivery. Returns 0 to go on, -1 to stop. */
static int on_other_frame(responder *r)
{
    char cancelled[512];

    snprintf(cancelled, sizeof cancelled, "switchboard respond: the broker cancelled the "
             "consumer (was queue '%s' deleted?)", r->o->queue);
    return sb_client_other_frame(&r->c, "connection lost", cancelled, "serving failed");
}

/* Takes every delivery librabbitmq can give without blocking. While
 * stopping, deliveries still in flight go straight back to the queue. */
static int read_frames(responder *r)
{
    for (;;) {
        amqp_maybe_release_buffers(r->c.conn);
        struct timeval zero = { 0, 0 };
        amqp_envelope_t env;
        amqp_rpc_reply_t rep = amqp_consume_message(r->c.conn, &env, &zero, 0);
        if (rep.reply_type == AMQP_RESPONSE_NORMAL) {
            request *q = request_new(&env);
            amqp_destroy_envelope(&env);
            if (!r->stopping) {
                backlog_push(r, q);
                continue;
            }
            int rc = settle(r, q, 0, 1);
            request_free(q);
            if (rc != 0)
                return -1;
            continue;
        }
        if (rep.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rep.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (rep.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rep.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (on_other_frame(r) != 0)
                return -1;
            continue;
        }
        return sb_client_check(rep, "serving failed");
    }
}

static void reap(responder *r)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (uint64_t i = 0; i < r->o->concurrency; i++) {
            job *j = &r->jobs[i];
            if (j->req != NULL && j->pid == pid && !j->exited) {
                j->exited = 1;
                j->status = status;
                j->exit_ms = sb_clock_ms();
            }
        }
    }
}

/* Stops taking requests: cancels the consumer, requeues the backlog. */
static int begin_stop(responder *r)
{
    fprintf(stderr, "switchboard respond: stopping; waiting up to %llu ms for %zu running "
                    "command(s)\n", (unsigned long long)r->o->shutdown_ms, r->running);
    r->stopping = 1;
    r->stop_deadline_ms = sb_clock_ms() + r->o->shutdown_ms;
    /* Deliveries that cross the cancel are queued by librabbitmq and
     * requeued by read_frames. */
    amqp_basic_cancel(r->c.conn, SB_CLIENT_CHANNEL, r->ctag);
    if (sb_client_check_last(&r->c, "basic.cancel failed") != 0)
        return -1;
    request *q;
    while ((q = backlog_pop(r)) != NULL) {
        int rc = settle(r, q, 0, 1);
        request_free(q);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int on_signals(responder *r)
{
    struct signalfd_siginfo si;
    while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD)
            reap(r);
        else if (r->stopping)
            r->stop_deadline_ms = 0;  /* a second signal: stop now */
        else if (begin_stop(r) != 0)
            return -1;
    }
    return 0;
}

/* Fills fds for poll: the signalfd, the socket, then each job's pipes
 * (owner[i] says which job fds[i] belongs to). Returns the count. */
static nfds_t build_pollfds(responder *r, struct pollfd *fds, job **owner)
{
    nfds_t n = 0;
    fds[n] = (struct pollfd){ .fd = r->sigfd, .events = POLLIN };
    owner[n++] = NULL;
    fds[n] = (struct pollfd){ .fd = amqp_get_sockfd(r->c.conn), .events = POLLIN };
    owner[n++] = NULL;
    for (uint64_t i = 0; i < r->o->concurrency; i++) {
        job *j = &r->jobs[i];
        if (j->req == NULL)
            continue;
        const struct { int fd; short ev; } p[] = {
            { j->in_fd, POLLOUT }, { j->out_fd, POLLIN }, { j->err_fd, POLLIN },
        };
        for (size_t k = 0; k < 3; k++) {
            if (p[k].fd < 0)
                continue;
            fds[n] = (struct pollfd){ .fd = p[k].fd, .events = p[k].ev };
            owner[n++] = j;
        }
    }
    return n;
}

static void on_pipe(const responder *r, job *j, int fd)
{
    if (fd == j->in_fd)
        job_write_stdin(j);
    else if (fd == j->out_fd)
        job_read(j, &j->out_fd, &j->out, r->o->max_output, 1);
    else if (fd == j->err_fd)
        job_read(j, &j->err_fd, &j->err, 0, 0);
}

static int poll_timeout(const responder *r)
{
    int ms = TICK_MS;
    if (r->stopping) {
        uint64_t now = sb_clock_ms();
        uint64_t left = now >= r->stop_deadline_ms ? 0 : r->stop_deadline_ms - now;
        if (left < (uint64_t)ms)
            ms = (int)left;
    }
    return ms;
}

/* One turn: wait for something, then handle it. Returns -1 on a
 * connection error. */
static int turn(responder *r, struct pollfd *fds, job **owner)
{
    nfds_t n = build_pollfds(r, fds, owner);
    int rc = poll(fds, n, poll_timeout(r));
    if (rc < 0 && errno != EINTR) {
        perror("switchboard respond: poll");
        return -1;
    }
    for (nfds_t i = 2; rc > 0 && i < n; i++)
        if (fds[i].revents != 0)
            on_pipe(r, owner[i], fds[i].fd);
    if (rc > 0 && fds[0].revents != 0 && on_signals(r) != 0)
        return -1;
    if (rc > 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) && read_frames(r) != 0)
        return -1;
    uint64_t now = sb_clock_ms();
    for (uint64_t i = 0; i < r->o->concurrency; i++)
        if (job_done(&r->jobs[i], now) && job_finish(r, &r->jobs[i]) != 0)
            return -1;
    return start_jobs(r);
}

/* Kills what still runs (grace over, or the connection is gone), waits
 * for it, and requeues its requests if the channel still works. */
static void kill_jobs(responder *r, int requeue)
{
    for (uint64_t i = 0; i < r->o->concurrency; i++) {
        job *j = &r->jobs[i];
        if (j->req == NULL)
            continue;
        kill(-j->pid, SIGKILL);
        if (!j->exited)
            waitpid(j->pid, NULL, 0);
        fprintf(stderr, "switchboard respond: killed `%s` (pid %d) for request %llu%s\n",
                r->o->command[0], (int)j->pid, (unsigned long long)j->req->tag,
                requeue ? "; requeued" : "");
        if (requeue)
            (void)settle(r, j->req, 0, 1);
        close_fd(&j->in_fd);
        close_fd(&j->out_fd);
        close_fd(&j->err_fd);
        request_free(j->req);
        j->req = NULL;
        r->running--;
    }
}

static int serve(responder *r)
{
    size_t max_fds = 2 + 3 * r->o->concurrency;
    struct pollfd *fds = sb_calloc(max_fds, sizeof *fds);
    job **owner = sb_calloc(max_fds, sizeof *owner);
    int rc = SB_EXIT_OK;
    for (;;) {
        if (turn(r, fds, owner) != 0) {
            kill_jobs(r, 0);
            rc = SB_EXIT_FAIL;
            break;
        }
        if (r->stopping && r->running == 0)
            break;
        if (r->stopping && sb_clock_ms() >= r->stop_deadline_ms) {
            kill_jobs(r, 1);
            break;
        }
    }
    sb_free(fds);
    sb_free(owner);
    return rc;
}

/* ------------------------------------------------------------ set-up */

static int setup_queue(responder *r)
{
    const respond_opts *o = r->o;
    if (o->declare) {
        int exists = sb_client_queue_probe(&r->c, o->queue, NULL);
        if (exists < 0)
            return -1;
        if (exists == 0) {
            amqp_queue_declare(r->c.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(o->queue), 0,
                               0, 0, 0, amqp_empty_table);
            if (sb_client_check_last(&r->c, "cannot declare the queue") != 0)
                return -1;
        }
    }
    amqp_basic_qos(r->c.conn, SB_CLIENT_CHANNEL, 0, (uint16_t)o->prefetch, 0);
    if (sb_client_check_last(&r->c, "basic.qos failed") != 0)
        return -1;
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(r->c.conn, SB_CLIENT_CHANNEL, amqp_cstring_bytes(o->queue),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    char what[400];
    snprintf(what, sizeof what, "cannot consume from queue '%s'%s", o->queue,
             o->declare ? "" : " (pass --declare to create it)");
    if (sb_client_check_last(&r->c, what) != 0)
        return -1;
    r->ctag = amqp_bytes_malloc_dup(ok->consumer_tag);
    return 0;
}

/* SIGCHLD, SIGINT and SIGTERM arrive through a signalfd polled with
 * everything else; SIGPIPE is ignored (a command that does not read its
 * stdin must not kill us). Children get all of these back (spawn()). */
static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int sb_cli_respond(int argc, char **argv)
{
    respond_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    responder r = { .o = &o, .sigfd = setup_signals() };
    if (r.sigfd < 0) {
        perror("switchboard respond: signalfd");
        return SB_EXIT_FAIL;
    }
    r.jobs = sb_calloc(o.concurrency, sizeof *r.jobs);
    rc = SB_EXIT_FAIL;
    if (sb_client_open(&r.c, sb_client_url(o.url), "switchboard respond", 10000) == 0) {
        if (setup_queue(&r) == 0) {
            fprintf(stderr, "switchboard respond: serving '%s' with `%s` (concurrency %llu, "
                            "prefetch %llu); SIGINT or SIGTERM stops\n", o.queue,
                    o.command[0], (unsigned long long)o.concurrency,
                    (unsigned long long)o.prefetch);
            rc = serve(&r);
            fprintf(stderr, "switchboard respond: %llu served, %llu failed\n",
                    (unsigned long long)r.served, (unsigned long long)r.failed);
        }
        sb_client_close(&r.c);
    }
    for (uint64_t i = 0; i < o.concurrency; i++) {
        sb_buf_free(&r.jobs[i].out);
        sb_buf_free(&r.jobs[i].err);
    }
    sb_free(r.jobs);
    amqp_bytes_free(r.ctag);
    close(r.sigfd);
    return rc;
}
