/* definitions.c - `switchboard definitions export FILE` and `import FILE`
 * (issue 3): users, vhosts, permissions and the topology (exchanges,
 * queues, bindings with their arguments) as a RabbitMQ definitions JSON
 * file, through the management API's GET and POST /api/definitions.
 *
 * The same paths exist on RabbitMQ's management plugin, so this moves a
 * topology in either direction: a file exported from Switchboard imports
 * into RabbitMQ (this command, `rabbitmqctl import_definitions` or the
 * management UI), and a RabbitMQ export imports into Switchboard, which
 * ignores the kinds it does not have yet (topic permissions, parameters);
 * this command prints a warning line for each such kind.
 * Runs on the CLI's only thread.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/http_client.h"

static const char usage_text[] =
    "usage: switchboard definitions export FILE [--http URL]\n"
    "       switchboard definitions import FILE [--http URL]\n"
    "\n"
    "export writes the broker's users (with their password hashes), vhosts,\n"
    "permissions, policies and durable exchanges, queues and bindings (with\n"
    "their arguments) to FILE ('-' for standard output) in RabbitMQ's\n"
    "definitions format (GET /api/definitions); RabbitMQ imports it with\n"
    "`rabbitmqctl import_definitions FILE` or its management API.\n"
    "\n"
    "import declares what FILE describes (POST /api/definitions). FILE may be a\n"
    "RabbitMQ export: against Switchboard, topic permissions and parameters\n"
    "are ignored, with a warning per kind. Users are created or replaced,\n"
    "vhosts created.\n"
    "As in RabbitMQ, exchanges and queues that already exist are left as they\n"
    "are, and the first error stops the import (what came before stays).\n"
    "\n"
    "options:\n"
    "  --http URL    management API (default: $HTTP_URL, else\n"
    "                " SB_HTTP_CLIENT_DEFAULT_URL ")\n"
    "  -h, --help    this text\n"
    "\n"
    "exit status: 0 done; 1 connection, file or broker error; 2 bad arguments.\n"
    "\n"
    "examples:\n"
    "  switchboard definitions export topology.json\n"
    "  switchboard definitions import rabbitmq-export.json --http http://admin:s3cret@mq:15672\n";

static const struct option long_opts[] = {
    { "http", required_argument, NULL, 'H' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* sb_client_cmd.apply for definitions, after the subcommand word; opts is
 * the management API URL (const char **). This command words its unknown
 * option error without naming the option. */
static int apply_opt(void *opts, int opt)
{
    switch (opt) {
    case 'H': *(const char **)opts = optarg; return 0;
    case 'h': return SB_CLIENT_OPT_HELP;
    default: return sb_client_usage_error("definitions", "unknown option or missing value");
    }
}

static const sb_client_cmd definitions_cmd = {
    "definitions", "h", long_opts, apply_opt, usage_text,
};

static int export_defs(const char *http, const char *file)
{
    json_t *d = sb_http_client_get_json(http, "/api/definitions");
    if (d == NULL)
        return SB_EXIT_FAIL;
    int flags = JSON_INDENT(2) | JSON_SORT_KEYS;
    int rc = strcmp(file, "-") == 0 ? json_dumpf(d, stdout, flags) : json_dump_file(d, file, flags);
    if (rc == 0 && strcmp(file, "-") == 0)
        putchar('\n');
    if (rc != 0)
        fprintf(stderr, "switchboard definitions: cannot write %s: %s\n", file, strerror(errno));
    else if (strcmp(file, "-") != 0)
        printf("exported %zu exchanges, %zu queues, %zu bindings to %s\n",
               json_array_size(json_object_get(d, "exchanges")),
               json_array_size(json_object_get(d, "queues")),
               json_array_size(json_object_get(d, "bindings")), file);
    json_decref(d);
    return rc == 0 ? SB_EXIT_OK : SB_EXIT_FAIL;
}

/* Kinds Switchboard does not import yet (it logs them too). */
static const char *const ignored_kinds[] = {
    "topic_permissions", "parameters", "global_parameters",
};

/* Against Switchboard (its /api/overview says so), one warning line per
 * non-empty kind it will ignore. RabbitMQ imports them all. */
static void warn_ignored(const char *http, const json_t *doc)
{
    json_t *o = sb_http_client_get_json(http, "/api/overview");
    const char *product = json_string_value(json_object_get(o, "product_name"));
    if (product != NULL && strcmp(product, "Switchboard") == 0)
        for (size_t i = 0; i < sizeof ignored_kinds / sizeof ignored_kinds[0]; i++) {
            size_t n = json_array_size(json_object_get(doc, ignored_kinds[i]));
            if (n > 0)
                fprintf(stderr, "switchboard definitions: warning: %zu %s ignored "
                                "(Switchboard has no %s yet)\n", n, ignored_kinds[i],
                        ignored_kinds[i]);
        }
    json_decref(o);
}

static int import_defs(const char *http, const char *file)
{
    json_error_t e;
    json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &e) : json_load_file(file, 0, &e);
    if (doc == NULL || !json_is_object(doc)) {
        fprintf(stderr, "switchboard definitions: %s is not a definitions JSON file: %s "
                        "(line %d)\n", file, doc ? "not an object" : e.text, e.line);
        json_decref(doc);
        return SB_EXIT_FAIL;
    }
    warn_ignored(http, doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    sb_http_resp r;
    int rc = SB_EXIT_FAIL;
    if (sb_http_client_request(http, "POST", "/api/definitions", text, strlen(text), 60000,
                               &r) == 0) {
        if (r.status >= 200 && r.status <= 299) {
            printf("imported %zu exchanges, %zu queues, %zu bindings from %s\n",
                   json_array_size(json_object_get(doc, "exchanges")),
                   json_array_size(json_object_get(doc, "queues")),
                   json_array_size(json_object_get(doc, "bindings")), file);
            rc = SB_EXIT_OK;
        } else {
            sb_http_client_print_error(&r, "import refused");
        }
    }
    sb_http_resp_free(&r);
    free(text);
    json_decref(doc);
    return rc;
}

int sb_cli_definitions(int argc, char **argv)
{
    const char *http = NULL;
    int rc = sb_client_sub_help(argc, argv, usage_text);
    if (rc == 0)
        rc = sb_client_parse_args(&definitions_cmd, argc - 1, argv + 1, &http);
    if (rc != 0)
        return rc == SB_CLIENT_OPT_HELP ? SB_EXIT_OK : rc;
    const char *cmd = argv[1];
    if (argc - 1 - optind != 1)
        return sb_client_usage_error("definitions", "expects one FILE");
    const char *file = argv[1 + optind];
    http = sb_http_client_url(http);
    if (strcmp(cmd, "export") == 0)
        return export_defs(http, file);
    if (strcmp(cmd, "import") == 0)
        return import_defs(http, file);
    return sb_client_usage_error("definitions", "the commands are export and import");
}
