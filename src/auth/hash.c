/* hash.c - RabbitMQ's salted password hashes (rabbit_password):
 * base64(salt ‖ H(salt ‖ utf8(password))), the salt 4 random bytes and H
 * SHA-256 (the default), SHA-512 or MD5 (users from before 3.6). The
 * digests, the randomness and the base64 codec are OpenSSL's. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "auth.h"
#include "../common/base64.h"
#include "../common/log.h"

#define SALT_LEN 4

static const struct {
    sb_hash_alg alg;
    const char *name;
} algs[] = {
    { SB_HASH_SHA256, "rabbit_password_hashing_sha256" },
    { SB_HASH_SHA512, "rabbit_password_hashing_sha512" },
    { SB_HASH_MD5, "rabbit_password_hashing_md5" },
};

const char *
sb_hash_alg_name(sb_hash_alg a)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (algs[i].alg == a)
            return algs[i].name;
    return "rabbit_password_hashing_sha256";
}

int
sb_hash_alg_parse(sb_str name, sb_hash_alg *out)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (sb_str_eq_c(name, algs[i].name)) {
            *out = algs[i].alg;
            return 0;
        }
    return -1;
}

static const EVP_MD *
md_of(sb_hash_alg a)
{
    switch (a) {
    case SB_HASH_SHA512: return EVP_sha512();
    case SB_HASH_MD5: return EVP_md5();
    case SB_HASH_SHA256: break;
    }
    return EVP_sha256();
}

/* H(salt ‖ password) into out (EVP_MAX_MD_SIZE); returns its length, or 0. */
static unsigned
digest(sb_hash_alg a, const uint8_t *salt, sb_str password, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n = 0;

    if (ctx == NULL)
        return 0;
    if (EVP_DigestInit_ex(ctx, md_of(a), NULL) != 1 ||
        EVP_DigestUpdate(ctx, salt, SALT_LEN) != 1 ||
        (password.len && EVP_DigestUpdate(ctx, password.p, password.len) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1)
        n = 0;
    EVP_MD_CTX_free(ctx);
    return n;
}

int
sb_password_hash_salted(sb_hash_alg a, const uint8_t salt[4], sb_str password, char *out,
                        size_t out_len)
{
    uint8_t raw[SALT_LEN + EVP_MAX_MD_SIZE];
    unsigned n;

    memcpy(raw, salt, SALT_LEN);
    n = digest(a, salt, password, raw + SALT_LEN);
    /* base64 of n bytes is 4 * ceil(n / 3) characters, plus the NUL. */
    if (n == 0 || out_len < 4 * ((SALT_LEN + n + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, (int)(SALT_LEN + n));
    return 0;
}

int
sb_password_hash(sb_hash_alg a, sb_str password, char *out, size_t out_len)
{
    uint8_t salt[SALT_LEN];

    if (RAND_bytes(salt, sizeof salt) != 1) {
        sb_log(SB_LOG_ERROR, "auth", "no random bytes for a password salt (OpenSSL RAND_bytes)");
        return -1;
    }
    return sb_password_hash_salted(a, salt, password, out, out_len);
}

bool
sb_password_matches(sb_hash_alg a, sb_str hash_b64, sb_str password)
{
    uint8_t raw[SALT_LEN + EVP_MAX_MD_SIZE + 3], want[EVP_MAX_MD_SIZE];
    ssize_t n = sb_base64_decode(hash_b64, SB_BASE64_STRICT, raw, sizeof raw);
    unsigned m;

    if (n <= SALT_LEN)
        return false;
    m = digest(a, raw, password, want);
    return m == (unsigned)(n - SALT_LEN) && CRYPTO_memcmp(raw + SALT_LEN, want, m) == 0;
}
