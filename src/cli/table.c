/* table.c - aligned columns for listing subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/table.h"
#include "common/alloc.h"

static const char *cell(const json_t *row, int c)
{
    const char *s = json_string_value(json_array_get(row, (size_t)c));
    return s != NULL ? s : "";
}

static void print_row(const int *w, int ncols, const char *const *cells)
{
    for (int c = 0; c < ncols; c++)
        printf("%-*s%s", c < ncols - 1 ? w[c] : 0, cells[c], c < ncols - 1 ? "  " : "\n");
}

void sb_cli_print_table(const char *const *head, int ncols, const json_t *rows)
{
    int *w = sb_calloc((size_t)ncols, sizeof *w);
    const char **cells = sb_calloc((size_t)ncols, sizeof *cells);
    for (int c = 0; c < ncols; c++)
        w[c] = (int)strlen(head[c]);
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r)
        for (int c = 0; c < ncols; c++) {
            int l = (int)strlen(cell(r, c));
            w[c] = l > w[c] ? l : w[c];
        }
    print_row(w, ncols, head);
    json_array_foreach(rows, i, r) {
        for (int c = 0; c < ncols; c++)
            cells[c] = cell(r, c);
        print_row(w, ncols, cells);
    }
    sb_free(cells);
    sb_free(w);
}
