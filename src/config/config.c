/* config.c - setting options from text, the config file, and help. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const sb_option *
find(const char *name)
{
    for (size_t i = 0; i < sb_options_count; i++) {
        const sb_option *o = &sb_options[i];
        if (strcmp(o->name, name) == 0 || (o->flag && strcmp(o->flag, name) == 0))
            return o;
    }
    return NULL;
}

static int
set_number(sb_config *c, const sb_option *o, const char *value, char *err, size_t errlen)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < o->min ||
        v > o->max) {
        snprintf(err, errlen, "%s: '%s' is not a number from %llu to %llu", o->name, value,
                 (unsigned long long)o->min, (unsigned long long)o->max);
        return -1;
    }
    if (o->type == SB_OPT_U32)
        *(uint32_t *)((char *)c + o->off) = (uint32_t)v;
    else
        *(uint64_t *)((char *)c + o->off) = v;
    return 0;
}

int
sb_config_set(sb_config *c, const char *name, const char *value, char *err, size_t errlen)
{
    const sb_option *o = find(name);
    char *dst;

    if (o == NULL) {
        snprintf(err, errlen, "unknown option '%s' (see `switchboard serve --help`)", name);
        return -1;
    }
    switch (o->type) {
    case SB_OPT_U32:
    case SB_OPT_U64:
        return set_number(c, o, value, err, errlen);
    case SB_OPT_BOOL:
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(bool *)((char *)c + o->off) = true;
        else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(bool *)((char *)c + o->off) = false;
        else {
            snprintf(err, errlen, "%s: '%s' is not true or false", o->name, value);
            return -1;
        }
        return 0;
    case SB_OPT_STR:
        dst = (char *)c + o->off;
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", o->name, o->size - 1);
            return -1;
        }
        strcpy(dst, value);
        return 0;
    }
    return -1;
}

void
sb_config_defaults(sb_config *c)
{
    char err[256];

    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sb_options_count; i++)
        (void)sb_config_set(c, sb_options[i].name, sb_options[i].def, err, sizeof err);
}

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

int
sb_config_load(sb_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[1024], msg[512];
    int n = 0, rc = 0;

    if (f == NULL) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        char *s = trim(line), *eq;
        n++;
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, n);
            rc = -1;
            break;
        }
        *eq = '\0';
        if (sb_config_set(c, trim(s), trim(eq + 1), msg, sizeof msg) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, n, msg);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

void
sb_config_print_help(void *stream)
{
    FILE *out = stream;

    for (size_t i = 0; i < sb_options_count; i++) {
        const sb_option *o = &sb_options[i];
        fprintf(out, "  %-26s %-20s default %s\n      %s\n", o->name, o->flag ? o->flag : "",
                o->def, o->doc);
    }
}
