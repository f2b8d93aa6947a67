/* auth.c - the user database: users by name, each with its tags, its
 * password hash and its permissions by vhost name. Regular expressions
 * are PCRE2's (8-bit, no UTF: names are matched as bytes, as Erlang's re
 * does with binaries), compiled once when permissions are set. A few dozen
 * users is the expected size; listings sort on demand. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/rand.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "../common/alloc.h"
#include "../common/base64.h"
#include "../common/map.h"

struct sb_perms {
    char *src[SB_PERM_COUNT];       /* as set */
    pcre2_code *re[SB_PERM_COUNT];  /* NULL where all_bits has the bit */
    pcre2_match_data *md;           /* one match at a time: loop thread only */
    unsigned all_bits;              /* bit k: ".*", every name matches */
};

struct sb_user {
    char *name;
    char *hash;                     /* base64; "" means no password */
    sb_hash_alg alg;
    char **tags;
    size_t ntags;
    unsigned tag_bits;
    sb_map perms;                   /* vhost name -> sb_perms */
};

struct sb_auth {
    sb_map users;                   /* name -> sb_user */
    uint64_t gen;
    void (*on_change)(void *arg);
    void *on_change_arg;
};

static void
changed(sb_auth *a)
{
    a->gen++;
    if (a->on_change)
        a->on_change(a->on_change_arg);
}

/* ---- permissions ---- */

static void
perms_free(sb_perms *p)
{
    if (p == NULL)
        return;
    for (int k = 0; k < SB_PERM_COUNT; k++) {
        sb_free(p->src[k]);
        pcre2_code_free(p->re[k]);
    }
    pcre2_match_data_free(p->md);
    sb_free(p);
}

/* Compiles the three expressions; NULL with why set if one is invalid. */
static sb_perms *
perms_new(const sb_str re[SB_PERM_COUNT], char *why, size_t why_len)
{
    sb_perms *p = sb_calloc(1, sizeof *p);

    for (int k = 0; k < SB_PERM_COUNT; k++) {
        /* RabbitMQ reads the empty expression as "^$" (nothing matches). */
        sb_str src = re[k].len ? re[k] : SB_STR_LIT("^$");
        int ec;
        PCRE2_SIZE off;

        p->src[k] = sb_strndup(re[k].p, re[k].len);
        if (sb_str_eq_c(src, ".*")) {
            p->all_bits |= 1u << k;
            continue;
        }
        p->re[k] = pcre2_compile(src.p, src.len, 0, &ec, &off, NULL);
        if (p->re[k] == NULL) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(why, why_len, "invalid_regexp: '%.*s': %s at offset %zu", SB_STR_ARGS(src),
                     (const char *)msg, (size_t)off);
            perms_free(p);
            return NULL;
        }
    }
    p->md = pcre2_match_data_create(1, NULL);
    return p;
}

bool
sb_perms_allow(const sb_perms *p, sb_perm k, sb_str name)
{
    if (p == NULL)
        return false;
    if (p->all_bits >> k & 1u)
        return true;
    return pcre2_match(p->re[k], name.len ? name.p : (PCRE2_SPTR) "", name.len, 0, 0, p->md,
                       NULL) >= 0;
}

bool
sb_perms_allow_all(const sb_perms *p, sb_perm k)
{
    return p != NULL && (p->all_bits >> k & 1u);
}

const char *
sb_perms_source(const sb_perms *p, sb_perm k)
{
    return p->src[k];
}

/* ---- users ---- */

static void
tags_free(sb_user *u)
{
    for (size_t i = 0; i < u->ntags; i++)
        sb_free(u->tags[i]);
    sb_free(u->tags);
    u->tags = NULL;
    u->ntags = 0;
    u->tag_bits = 0;
}

static unsigned
tag_bit(sb_str t)
{
    static const struct { const char *name; unsigned bit; } known[] = {
        { "administrator", SB_TAG_ADMINISTRATOR }, { "monitoring", SB_TAG_MONITORING },
        { "policymaker", SB_TAG_POLICYMAKER }, { "management", SB_TAG_MANAGEMENT },
    };

    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (sb_str_eq_c(t, known[i].name))
            return known[i].bit;
    return 0;
}

/* RabbitMQ's tag list: split on commas, spaces around each trimmed,
 * empty ones dropped. */
static void
tags_set(sb_user *u, sb_str s)
{
    size_t i = 0;

    tags_free(u);
    while (i < s.len) {
        size_t start = i, end;
        while (i < s.len && s.p[i] != ',')
            i++;
        end = i++;
        while (start < end && s.p[start] == ' ')
            start++;
        while (end > start && s.p[end - 1] == ' ')
            end--;
        if (end == start)
            continue;
        u->tags = sb_realloc(u->tags, (u->ntags + 1) * sizeof *u->tags);
        u->tags[u->ntags++] = sb_strndup(s.p + start, end - start);
        u->tag_bits |= tag_bit(sb_str_make(s.p + start, end - start));
    }
}

static void
user_free(sb_user *u)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&u->perms, &it, NULL, &val))
        perms_free(val);
    sb_map_free(&u->perms);
    tags_free(u);
    sb_free(u->hash);
    sb_free(u->name);
    sb_free(u);
}

/* The hash d asks for, in a new allocation; NULL with why set. */
static char *
hash_for(const sb_user_def *d, const sb_user *old, char *why, size_t why_len)
{
    char out[SB_HASH_B64_MAX];
    uint8_t secret[16];

    if (d->has_hash) {
        if (!sb_base64_valid(d->password_hash, SB_BASE64_STRICT)) {
            snprintf(why, why_len, "not_base64: %.*s", SB_STR_ARGS(d->password_hash));
            return NULL;
        }
        return sb_strndup(d->password_hash.p, d->password_hash.len);
    }
    if (d->has_password) {
        if (sb_password_hash(SB_HASH_SHA256, d->password, out, sizeof out) < 0)
            goto no_random;
        return sb_strdup(out);
    }
    if (old != NULL)
        return sb_strdup(old->hash);
    /* Neither: RabbitMQ gives a new user a random password nobody knows. */
    if (RAND_bytes(secret, sizeof secret) != 1 ||
        sb_password_hash(SB_HASH_SHA256, sb_str_make(secret, sizeof secret), out, sizeof out) < 0)
        goto no_random;
    return sb_strdup(out);
no_random:
    snprintf(why, why_len, "cannot hash the password: no randomness");
    return NULL;
}

int
sb_auth_user_put(sb_auth *a, const sb_user_def *d, char *why, size_t why_len)
{
    sb_user *u = sb_map_get(&a->users, d->name);
    bool created = u == NULL;
    char *hash;

    if (d->name.len == 0) {
        snprintf(why, why_len, "a user needs a name");
        return -1;
    }
    if ((hash = hash_for(d, u, why, why_len)) == NULL)
        return -1;
    if (created) {
        u = sb_calloc(1, sizeof *u);
        u->name = sb_strndup(d->name.p, d->name.len);
        sb_map_put(&a->users, d->name, u, NULL);
    }
    sb_free(u->hash);
    u->hash = hash;
    if (d->has_hash)
        u->alg = d->alg;
    else if (d->has_password || created)
        u->alg = SB_HASH_SHA256;
    tags_set(u, d->tags);
    changed(a);
    return created ? 1 : 0;
}

int
sb_auth_user_delete(sb_auth *a, sb_str name)
{
    sb_user *u = sb_map_del(&a->users, name);

    if (u == NULL)
        return -1;
    user_free(u);
    changed(a);
    return 0;
}

const sb_user *
sb_auth_user(const sb_auth *a, sb_str name)
{
    return sb_map_get(&a->users, name);
}

size_t
sb_auth_user_count(const sb_auth *a)
{
    return a->users.count;
}

const sb_user *
sb_auth_login(const sb_auth *a, sb_str user, sb_str password)
{
    const sb_user *u = sb_map_get(&a->users, user);

    if (u == NULL || !sb_password_matches(u->alg, sb_str_c(u->hash), password))
        return NULL;
    return u;
}

const char *sb_user_name(const sb_user *u) { return u->name; }
const char *sb_user_hash(const sb_user *u) { return u->hash; }
sb_hash_alg sb_user_alg(const sb_user *u) { return u->alg; }
unsigned sb_user_tag_bits(const sb_user *u) { return u->tag_bits; }
size_t sb_user_tag_count(const sb_user *u) { return u->ntags; }
const char *sb_user_tag(const sb_user *u, size_t i) { return u->tags[i]; }

/* ---- sorted iteration ---- */

typedef struct named {
    const char *name;
    void *val;
} named;

static int
by_name(const void *x, const void *y)
{
    return strcmp(((const named *)x)->name, ((const named *)y)->name);
}

/* The entries of m sorted by key, in a new array (*n entries). Keys are
 * the objects' own names, NUL-terminated copies. */
static named *
sorted(const sb_map *m, const char *(*name_of)(const void *val, sb_str key), size_t *n)
{
    named *out = sb_malloc((m->count ? m->count : 1) * sizeof *out);
    size_t it = 0;
    sb_str key;
    void *val;

    *n = 0;
    while (sb_map_next(m, &it, &key, &val))
        out[(*n)++] = (named){ name_of(val, key), val };
    qsort(out, *n, sizeof *out, by_name);
    return out;
}

static const char *
user_name_of(const void *val, sb_str key)
{
    return ((const sb_user *)val)->name;
}

void
sb_auth_each_user(const sb_auth *a, void (*fn)(const sb_user *u, void *ud), void *ud)
{
    size_t n;
    named *users = sorted(&a->users, user_name_of, &n);

    for (size_t i = 0; i < n; i++)
        fn(users[i].val, ud);
    sb_free(users);
}

/* ---- permissions by user and vhost ---- */

int
sb_auth_perms_set(sb_auth *a, sb_str user, sb_str vhost, const sb_str re[SB_PERM_COUNT],
                  char *why, size_t why_len)
{
    sb_user *u = sb_map_get(&a->users, user);
    sb_perms *p;
    void *old = NULL;

    if (u == NULL) {
        snprintf(why, why_len, "no user '%.*s'", SB_STR_ARGS(user));
        return -1;
    }
    if ((p = perms_new(re, why, why_len)) == NULL)
        return -1;
    sb_map_put(&u->perms, vhost, p, &old);
    perms_free(old);
    changed(a);
    return old == NULL ? 1 : 0;
}

int
sb_auth_perms_clear(sb_auth *a, sb_str user, sb_str vhost)
{
    sb_user *u = sb_map_get(&a->users, user);
    sb_perms *p = u ? sb_map_del(&u->perms, vhost) : NULL;

    if (p == NULL)
        return -1;
    perms_free(p);
    changed(a);
    return 0;
}

void
sb_auth_vhost_deleted(sb_auth *a, sb_str vhost)
{
    size_t it = 0;
    void *val;
    bool any = false;

    while (sb_map_next(&a->users, &it, NULL, &val)) {
        sb_perms *p = sb_map_del(&((sb_user *)val)->perms, vhost);
        any |= p != NULL;
        perms_free(p);
    }
    if (any)
        changed(a);
}

const sb_perms *
sb_auth_perms(const sb_auth *a, sb_str user, sb_str vhost)
{
    const sb_user *u = sb_map_get(&a->users, user);

    return u ? sb_map_get(&u->perms, vhost) : NULL;
}

/* Vhost names are map keys only: copy each into a NUL-terminated string
 * for the callback. */
static const char *
key_name_of(const void *val, sb_str key)
{
    return sb_strndup(key.p, key.len);
}

void
sb_auth_each_perms(const sb_auth *a,
                   void (*fn)(const char *user, const char *vhost, const sb_perms *p, void *ud),
                   void *ud)
{
    size_t nu, nv;
    named *users = sorted(&a->users, user_name_of, &nu);

    for (size_t i = 0; i < nu; i++) {
        sb_user *u = users[i].val;
        named *vhosts = sorted(&u->perms, key_name_of, &nv);
        for (size_t j = 0; j < nv; j++) {
            fn(u->name, vhosts[j].name, vhosts[j].val, ud);
            sb_free((char *)vhosts[j].name);
        }
        sb_free(vhosts);
    }
    sb_free(users);
}

/* ---- the database ---- */

sb_auth *
sb_auth_new(void)
{
    return sb_calloc(1, sizeof(sb_auth));
}

void
sb_auth_clear(sb_auth *a)
{
    size_t it = 0;
    void *val;

    while (sb_map_next(&a->users, &it, NULL, &val))
        user_free(val);
    sb_map_free(&a->users);
    a->users = SB_MAP_INIT;
    changed(a);
}

void
sb_auth_free(sb_auth *a)
{
    if (a == NULL)
        return;
    a->on_change = NULL;
    sb_auth_clear(a);
    sb_free(a);
}

void
sb_auth_on_change(sb_auth *a, void (*fn)(void *arg), void *arg)
{
    a->on_change = fn;
    a->on_change_arg = arg;
}

const uint64_t *
sb_auth_generation(const sb_auth *a)
{
    return &a->gen;
}
