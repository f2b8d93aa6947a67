/* access.c - permission checks for one connection, with RabbitMQ's texts
 * and a small memory of recent answers (RabbitMQ keeps the last dozen
 * checks per channel for the same reason: publishing to one exchange over
 * and over must not run a regular expression each time).
 *
 * What is remembered is only valid for one generation of the database:
 * any change to users or permissions forgets it all, so revoked access is
 * refused from the next check on. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "../common/alloc.h"

#define MEMO_SLOTS 8

typedef struct memo_slot {
    uint8_t perm;           /* sb_perm + 1; 0: empty */
    bool allowed;
    uint8_t is_exchange;
    uint8_t len;            /* names are AMQP short strings: at most 255 bytes */
    uint8_t name[255];
} memo_slot;

struct sb_access_memo {
    uint64_t gen;
    unsigned next;          /* round-robin replacement */
    memo_slot slot[MEMO_SLOTS];
};

void
sb_access_init(sb_access *a, const sb_auth *auth, const char *user, const char *vhost)
{
    memset(a, 0, sizeof *a);
    a->auth = auth;
    a->user = user;
    a->vhost = vhost;
    if (auth != NULL) {
        a->auth_gen = sb_auth_generation(auth);
        a->gen = *a->auth_gen - 1;  /* looked up on first use */
    }
}

void
sb_access_free(sb_access *a)
{
    sb_free(a->memo);
    a->memo = NULL;
}

/* Reads the user's permissions again if the database changed. */
static void
refresh(sb_access *a)
{
    if (a->gen == *a->auth_gen)
        return;
    a->gen = *a->auth_gen;
    a->perms = sb_auth_perms(a->auth, sb_str_c(a->user), sb_str_c(a->vhost));
    a->all_bits = 0;
    for (int k = 0; k < SB_PERM_COUNT; k++)
        if (sb_perms_allow_all(a->perms, (sb_perm)k))
            a->all_bits |= 1u << k;
}

bool
sb_access_vhost_ok(sb_access *a)
{
    if (a->auth == NULL)
        return true;
    refresh(a);
    return a->perms != NULL;
}

static bool
memo_find(sb_access_memo *m, sb_perm k, bool is_x, sb_str name, bool *allowed)
{
    for (int i = 0; i < MEMO_SLOTS; i++) {
        memo_slot *s = &m->slot[i];
        if (s->perm == k + 1 && s->is_exchange == is_x && s->len == name.len &&
            memcmp(s->name, name.p, name.len) == 0) {
            *allowed = s->allowed;
            return true;
        }
    }
    return false;
}

static void
memo_add(sb_access_memo *m, sb_perm k, bool is_x, sb_str name, bool allowed)
{
    memo_slot *s = &m->slot[m->next++ % MEMO_SLOTS];

    s->perm = (uint8_t)(k + 1);
    s->allowed = allowed;
    s->is_exchange = is_x;
    s->len = (uint8_t)name.len;
    memcpy(s->name, name.p, name.len);
}

/* The answer for (k, name), remembered when the name fits a slot. */
static bool
allowed(sb_access *a, sb_perm k, bool is_x, sb_str name)
{
    bool ok;

    if (name.len > 255)
        return sb_perms_allow(a->perms, k, name);
    if (a->memo == NULL)
        a->memo = sb_calloc(1, sizeof *a->memo);
    if (a->memo->gen != a->gen) {
        memset(a->memo, 0, sizeof *a->memo);
        a->memo->gen = a->gen;
    }
    if (memo_find(a->memo, k, is_x, name, &ok))
        return ok;
    ok = sb_perms_allow(a->perms, k, name);
    memo_add(a->memo, k, is_x, name, ok);
    return ok;
}

int
sb_access__check(sb_access *a, sb_perm k, const char *kind, sb_str name, sb_error *err)
{
    bool is_x = strcmp(kind, "exchange") == 0;

    if (a->auth == NULL)
        return 0;
    refresh(a);
    if (is_x && name.len == 0)
        name = SB_STR_LIT("amq.default");
    if ((a->all_bits >> k & 1u) || (a->perms != NULL && allowed(a, k, is_x, name)))
        return 0;
    return sb_error_set(err, SB_ACCESS_REFUSED, "access to %s '%.*s' in vhost '%s' refused for "
                        "user '%s'", kind, SB_STR_ARGS(name), a->vhost, a->user);
}
