/* auth.h - users, password hashes and vhost permissions, as RabbitMQ's
 * internal authentication backend keeps them.
 *
 * A user has a name, a salted password hash (RabbitMQ's format:
 * base64(salt ‖ H(salt ‖ password)) with a 4-byte salt and H one of
 * SHA-256, SHA-512 or MD5), tags (administrator, monitoring, policymaker,
 * management, or any other word, kept as given) and, per vhost, three
 * regular expressions: configure, write and read. A name is allowed an
 * operation when the expression matches anywhere in it (PCRE, unanchored,
 * as Erlang's re:run); the empty expression means "^$", as in RabbitMQ.
 *
 * The database knows nothing about vhosts as objects: permissions name a
 * vhost, and the broker drops them when it deletes one. Every change bumps
 * a generation counter, which is what lets sb_access cache its answers.
 * Runs on the loop thread; no globals.
 */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../common/str.h"

typedef struct sb_auth sb_auth;
typedef struct sb_user sb_user;
typedef struct sb_perms sb_perms;

/* The three kinds of access RabbitMQ distinguishes. */
typedef enum sb_perm { SB_PERM_CONFIGURE, SB_PERM_WRITE, SB_PERM_READ } sb_perm;
#define SB_PERM_COUNT 3

/* ---- password hashes (hash.c) ---- */
typedef enum sb_hash_alg { SB_HASH_SHA256, SB_HASH_SHA512, SB_HASH_MD5 } sb_hash_alg;

/* Longest base64 hash: 4 + 64 bytes of SHA-512, encoded, plus NUL. */
#define SB_HASH_B64_MAX 96

/* RabbitMQ's module name for a (rabbit_password_hashing_sha256, ...). */
const char *sb_hash_alg_name(sb_hash_alg a);
/* Parses a module name; returns 0, or -1 for one Switchboard lacks. */
int sb_hash_alg_parse(sb_str name, sb_hash_alg *out);
/* base64(salt ‖ H(salt ‖ password)) into out (SB_HASH_B64_MAX bytes),
 * with the 4-byte salt given. Returns 0, or -1 when out is too small. */
int sb_password_hash_salted(sb_hash_alg a, const uint8_t salt[4], sb_str password, char *out,
                            size_t out_len);
/* The same with a fresh random salt. Returns 0, or -1 when the system has
 * no randomness to give (logged). */
int sb_password_hash(sb_hash_alg a, sb_str password, char *out, size_t out_len);
/* True when hash (base64) is password's hash under a. An empty or
 * malformed hash matches no password (RabbitMQ: a user that cannot log
 * in). Constant time in the digest comparison. */
bool sb_password_matches(sb_hash_alg a, sb_str hash_b64, sb_str password);

/* ---- the database (auth.c) ---- */
sb_auth *sb_auth_new(void);
void sb_auth_free(sb_auth *a);
/* fn(arg) runs after every change (for saving the definitions). */
void sb_auth_on_change(sb_auth *a, void (*fn)(void *arg), void *arg);
/* Bumped by every change to users or permissions. The pointer is valid
 * while a is; sb_access reads it on every check. */
const uint64_t *sb_auth_generation(const sb_auth *a);
/* Removes every user and permission (a saved user database replaces the
 * one at hand). */
void sb_auth_clear(sb_auth *a);

/* Tags with a meaning in the management API; others are kept, unused. */
enum {
    SB_TAG_ADMINISTRATOR = 1u << 0,
    SB_TAG_MONITORING = 1u << 1,
    SB_TAG_POLICYMAKER = 1u << 2,
    SB_TAG_MANAGEMENT = 1u << 3,
};
/* Any of these opens the management API (RabbitMQ's is_mgmt_user). */
#define SB_TAGS_MANAGEMENT \
    (SB_TAG_ADMINISTRATOR | SB_TAG_MONITORING | SB_TAG_POLICYMAKER | SB_TAG_MANAGEMENT)

typedef struct sb_user_def {
    sb_str name;
    bool has_password;      /* password: hashed here with SHA-256 */
    sb_str password;
    bool has_hash;          /* or password_hash (base64) under alg, as given */
    sb_str password_hash;
    sb_hash_alg alg;
    sb_str tags;            /* comma-separated; spaces around names trimmed */
} sb_user_def;

/* Creates or replaces a user (an existing user keeps its permissions;
 * without a password or hash, an existing user keeps its password and a
 * new one gets a random one nobody knows, as RabbitMQ). Returns 1 when
 * created, 0 when replaced, -1 with why set (an empty name, a hash that is
 * not base64). */
int sb_auth_user_put(sb_auth *a, const sb_user_def *d, char *why, size_t why_len);
/* Removes a user and its permissions. Returns 0, or -1 when none. */
int sb_auth_user_delete(sb_auth *a, sb_str name);
/* The user named name, or NULL. Borrowed until the next change. */
const sb_user *sb_auth_user(const sb_auth *a, sb_str name);
size_t sb_auth_user_count(const sb_auth *a);
/* Calls fn for every user, in name order. */
void sb_auth_each_user(const sb_auth *a, void (*fn)(const sb_user *u, void *ud), void *ud);
/* The user if password is right, else NULL (unknown user, wrong
 * password, or a user without a usable hash). */
const sb_user *sb_auth_login(const sb_auth *a, sb_str user, sb_str password);

const char *sb_user_name(const sb_user *u);
const char *sb_user_hash(const sb_user *u);     /* base64; "" for none */
sb_hash_alg sb_user_alg(const sb_user *u);
unsigned sb_user_tag_bits(const sb_user *u);    /* SB_TAG_* */
size_t sb_user_tag_count(const sb_user *u);
const char *sb_user_tag(const sb_user *u, size_t i);

/* ---- permissions ---- */
/* Sets user's configure, write and read expressions (re, in that order)
 * in vhost. Returns 1 when created, 0 when replaced, -1 with why set (no
 * such user; an expression that does not compile: "invalid_regexp ..."). */
int sb_auth_perms_set(sb_auth *a, sb_str user, sb_str vhost, const sb_str re[SB_PERM_COUNT],
                      char *why, size_t why_len);
/* Returns 0, or -1 when user has no permissions in vhost. */
int sb_auth_perms_clear(sb_auth *a, sb_str user, sb_str vhost);
/* Drops every permission in vhost (the vhost was deleted). */
void sb_auth_vhost_deleted(sb_auth *a, sb_str vhost);
/* user's permissions in vhost, or NULL (no access to the vhost at all).
 * Borrowed until the next change. */
const sb_perms *sb_auth_perms(const sb_auth *a, sb_str user, sb_str vhost);
/* Calls fn for every (user, vhost) permission, by user then vhost. */
void sb_auth_each_perms(const sb_auth *a,
                        void (*fn)(const char *user, const char *vhost, const sb_perms *p,
                                   void *ud),
                        void *ud);
/* The expression as set. */
const char *sb_perms_source(const sb_perms *p, sb_perm k);
/* True when p allows k on name; false for p NULL. */
bool sb_perms_allow(const sb_perms *p, sb_perm k, sb_str name);
/* True when p allows k on every name (the expression is ".*"). */
bool sb_perms_allow_all(const sb_perms *p, sb_perm k);

/* ---- checking, with a cache (access.c) ----
 * One sb_access per connection (or HTTP request): who, where, and the last
 * answers. A user whose expression is ".*" costs one compare and one flag
 * test per check; other users a short scan of the remembered answers, so a
 * publisher does not run a regular expression per message. Any change to
 * the database (generation) forgets everything. */
typedef struct sb_access_memo sb_access_memo;

typedef struct sb_access {
    const sb_auth *auth;        /* NULL: every check passes (internal callers) */
    const uint64_t *auth_gen;   /* the database's generation counter */
    const char *user;           /* borrowed for the access's life */
    const char *vhost;          /* likewise */
    uint64_t gen;               /* generation that perms and all_bits were read at */
    const sb_perms *perms;      /* NULL: no permissions in the vhost */
    unsigned all_bits;          /* bit k: every name allowed for k */
    sb_access_memo *memo;       /* remembered answers, made on first need; owned */
} sb_access;

/* Sets up a for user in vhost (both borrowed for a's life). auth NULL
 * gives an access that allows everything. */
void sb_access_init(sb_access *a, const sb_auth *auth, const char *user, const char *vhost);
void sb_access_free(sb_access *a);
/* True when the user has any permissions in the vhost (RabbitMQ's vhost
 * access check at connection.open). */
bool sb_access_vhost_ok(sb_access *a);

int sb_access__check(sb_access *a, sb_perm k, const char *kind, sb_str name, sb_error *err);
/* 0 when the user may do k on the resource (kind "queue" or "exchange"),
 * else SB_ACCESS_REFUSED with RabbitMQ's text: "access to queue 'q' in
 * vhost '/' refused for user 'u'". The default exchange is checked, and
 * named, as "amq.default" (RabbitMQ does the same). */
static inline int
sb_access_check(sb_access *a, sb_perm k, const char *kind, sb_str name, sb_error *err)
{
    if (a->auth == NULL || (a->gen == *a->auth_gen && (a->all_bits >> k & 1u)))
        return 0;
    return sb_access__check(a, k, kind, name, err);
}

#endif /* SB_AUTH_H */
