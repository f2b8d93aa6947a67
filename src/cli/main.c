/* main.c - `switchboard SUBCOMMAND ...`: dispatches through a table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    { "serve", sb_cli_serve, "run the broker in the foreground" },
    { "publish", sb_cli_publish, "publish a message to an exchange" },
    { "consume", sb_cli_consume, "print messages from a queue" },
    { "bench", sb_cli_bench, "measure throughput and latency against a broker" },
    { "call", sb_cli_call, "send a request to a queue and print the reply" },
    { "respond", sb_cli_respond, "serve a queue's requests by running a command" },
    { "queues", sb_cli_queues, "list queues and the messages they hold" },
    { "dlq", sb_cli_dlq, "list, show and replay dead letters" },
    { "trace", sb_cli_trace, "show what happened to one user action (traceparent)" },
    { "definitions", sb_cli_definitions, "export or import exchanges, queues and bindings" },
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: switchboard COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`switchboard COMMAND --help` describes each command.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "switchboard: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
