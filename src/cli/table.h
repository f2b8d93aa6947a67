/* table.h - prints rows of strings as aligned columns, for the subcommands
 * that list things (dlq list, queues). */
#ifndef SB_CLI_TABLE_H
#define SB_CLI_TABLE_H

#include <jansson.h>

/* Prints head (ncols strings) and then rows, a JSON array of arrays of
 * ncols strings each (borrowed), to stdout: every column but the last is
 * padded to its widest cell and followed by two spaces. */
void sb_cli_print_table(const char *const *head, int ncols, const json_t *rows);

#endif /* SB_CLI_TABLE_H */
