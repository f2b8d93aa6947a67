/* cli.h - the subcommands; main.c dispatches through a table of these.
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. */
#ifndef SB_CLI_H
#define SB_CLI_H

int sb_cli_serve(int argc, char **argv);
int sb_cli_publish(int argc, char **argv);
int sb_cli_consume(int argc, char **argv);
int sb_cli_bench(int argc, char **argv);
int sb_cli_call(int argc, char **argv);
int sb_cli_respond(int argc, char **argv);
int sb_cli_dlq(int argc, char **argv);
int sb_cli_trace(int argc, char **argv);
int sb_cli_definitions(int argc, char **argv);
int sb_cli_queues(int argc, char **argv);

/* Shared by the client subcommands (cli_common.c): parses an AMQP URL
 * (amqp://user:pass@host:port/vhost, default amqp://guest:guest@localhost:5672/),
 * defaulting to $AMQP_URL. */
#endif /* SB_CLI_H */
