/* test_auth_hash.c - RabbitMQ's password hashes: hashes RabbitMQ itself
 * produced check against their passwords, ours have its shape, and the
 * base64 RabbitMQ refuses is refused.
 *
 * Known pairs:
 * - "guest", SHA-256: the guest user of a fresh RabbitMQ 3.10.8
 *   (GET /api/users/guest on the reference broker);
 * - "s3cret", SHA-512 and MD5: rabbit_password:hash/2 on RabbitMQ 3.10.8
 *   (rabbitmqctl eval), base64-encoded;
 * - "1", SHA-256: the example in the widely cited question "How to generate
 *   password_hash for RabbitMQ Management HTTP API";
 * - "simon", MD5, salt CA D5 08 9B: Simon MacMullen's worked example on
 *   rabbitmq-discuss (May 2011), digest CB 37 02 72 AC 5D 08 E9 B6 99 4A 17
 *   2B 5F 57 12.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/auth.h"
#include "common/base64.h"

static bool
matches(sb_hash_alg a, const char *hash, const char *password)
{
    return sb_password_matches(a, sb_str_c(hash), sb_str_c(password));
}

static void
hashes_made_by_rabbitmq_match_their_passwords(void **state)
{
    assert_true(matches(SB_HASH_SHA256, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk", "guest"));
    assert_true(matches(SB_HASH_SHA256, "y4xPTRVfzXg68sz9ALqeQzARam3CwnGo53xS752cDV5+Utzh", "1"));
    assert_true(matches(SB_HASH_SHA512,
                        "tjpEGDtVuI6lpw5Wo7frQAPAJgRxG+0Ykotu4LmePXIv4WoVMISTTh6bqweYeh62EoSYvJnf"
                        "krYHgFTxo/9XkMhMfCo=", "s3cret"));
    assert_true(matches(SB_HASH_MD5, "i90P8lVbvljHI9RtslONliHY6oM=", "s3cret"));
}

static void
wrong_passwords_and_wrong_algorithms_do_not_match(void **state)
{
    assert_false(matches(SB_HASH_SHA256, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk", "Guest"));
    assert_false(matches(SB_HASH_SHA256, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk", ""));
    assert_false(matches(SB_HASH_SHA512, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk", "guest"));
    assert_false(matches(SB_HASH_MD5, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEberk", "guest"));
    assert_false(matches(SB_HASH_SHA256, "i90P8lVbvljHI9RtslONliHY6oM=", "s3cret"));
}

static void
the_worked_md5_example_encodes_salt_then_digest(void **state)
{
    static const uint8_t salt[4] = { 0xCA, 0xD5, 0x08, 0x9B };
    char out[SB_HASH_B64_MAX];

    assert_int_equal(sb_password_hash_salted(SB_HASH_MD5, salt, sb_str_c("simon"), out, sizeof out), 0);
    /* base64 of CA D5 08 9B CB 37 02 72 AC 5D 08 E9 B6 99 4A 17 2B 5F 57 12 */
    assert_string_equal(out, "ytUIm8s3AnKsXQjptplKFytfVxI=");
    assert_true(matches(SB_HASH_MD5, out, "simon"));
}

static void
new_hashes_have_rabbitmqs_length_and_a_fresh_salt_each_time(void **state)
{
    char a[SB_HASH_B64_MAX], b[SB_HASH_B64_MAX];

    assert_int_equal(sb_password_hash(SB_HASH_SHA256, sb_str_c("pw"), a, sizeof a), 0);
    assert_int_equal(sb_password_hash(SB_HASH_SHA256, sb_str_c("pw"), b, sizeof b), 0);
    assert_int_equal(strlen(a), 48);   /* 4 + 32 bytes: 48 base64 characters, as RabbitMQ's */
    assert_string_not_equal(a, b);
    assert_true(matches(SB_HASH_SHA256, a, "pw"));
    assert_true(matches(SB_HASH_SHA256, b, "pw"));
    assert_int_equal(sb_password_hash(SB_HASH_SHA512, sb_str_c("pw"), a, sizeof a), 0);
    assert_int_equal(strlen(a), 92);   /* 4 + 64 bytes */
    assert_true(matches(SB_HASH_SHA512, a, "pw"));
    assert_int_equal(sb_password_hash(SB_HASH_SHA512, sb_str_c("pw"), a, 50), -1);
}

static void
empty_and_malformed_hashes_match_no_password(void **state)
{
    assert_false(matches(SB_HASH_SHA256, "", ""));
    assert_false(matches(SB_HASH_SHA256, "", "guest"));
    assert_false(matches(SB_HASH_SHA256, "abc", "guest"));
    assert_false(matches(SB_HASH_SHA256, "AAAA", ""));      /* a salt and no digest */
    assert_false(matches(SB_HASH_SHA256, "K1E8+RsL/QMU9G2tv8SfytTRTuQtIKPDKy7ezWWyP4HEber!", "guest"));
}

static void
base64_is_checked_strictly_as_rabbitmq_does(void **state)
{
    assert_true(sb_base64_valid(sb_str_c(""), SB_BASE64_STRICT));
    assert_true(sb_base64_valid(sb_str_c("i90P8lVbvljHI9RtslONliHY6oM="), SB_BASE64_STRICT));
    assert_true(sb_base64_valid(sb_str_c("ab=="), SB_BASE64_STRICT));
    assert_false(sb_base64_valid(sb_str_c("abc"), SB_BASE64_STRICT));
    assert_false(sb_base64_valid(sb_str_c("!!!notbase64"), SB_BASE64_STRICT));
    assert_false(sb_base64_valid(sb_str_c("a==="), SB_BASE64_STRICT));
    assert_false(sb_base64_valid(sb_str_c("ab=c"), SB_BASE64_STRICT));
}

static void
algorithm_names_are_rabbitmqs_module_names(void **state)
{
    sb_hash_alg a;

    assert_string_equal(sb_hash_alg_name(SB_HASH_SHA256), "rabbit_password_hashing_sha256");
    assert_string_equal(sb_hash_alg_name(SB_HASH_SHA512), "rabbit_password_hashing_sha512");
    assert_string_equal(sb_hash_alg_name(SB_HASH_MD5), "rabbit_password_hashing_md5");
    assert_int_equal(sb_hash_alg_parse(sb_str_c("rabbit_password_hashing_md5"), &a), 0);
    assert_int_equal(a, SB_HASH_MD5);
    assert_int_equal(sb_hash_alg_parse(sb_str_c("rabbit_password_hashing_sha512"), &a), 0);
    assert_int_equal(a, SB_HASH_SHA512);
    assert_int_equal(sb_hash_alg_parse(sb_str_c("bcrypt"), &a), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hashes_made_by_rabbitmq_match_their_passwords),
        cmocka_unit_test(wrong_passwords_and_wrong_algorithms_do_not_match),
        cmocka_unit_test(the_worked_md5_example_encodes_salt_then_digest),
        cmocka_unit_test(new_hashes_have_rabbitmqs_length_and_a_fresh_salt_each_time),
        cmocka_unit_test(empty_and_malformed_hashes_match_no_password),
        cmocka_unit_test(base64_is_checked_strictly_as_rabbitmq_does),
        cmocka_unit_test(algorithm_names_are_rabbitmqs_module_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
