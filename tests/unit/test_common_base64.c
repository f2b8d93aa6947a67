/* test_common_base64.c - common/base64.c: strict (password hashes) and
 * lenient (REST payloads) validation and decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/base64.h"

static ssize_t
dec(const char *in, sb_base64_mode mode, char *out, size_t cap)
{
    ssize_t n = sb_base64_decode(sb_str_c(in), mode, (uint8_t *)out, cap);

    if (n >= 0)
        out[n] = '\0';
    return n;
}

static void
decodes_every_padding_length(void **state)
{
    char out[32];

    for (int m = SB_BASE64_STRICT; m <= SB_BASE64_LENIENT; m++) {
        assert_int_equal(dec("", m, out, 31), 0);
        assert_int_equal(dec("Zg==", m, out, 31), 1);
        assert_string_equal(out, "f");
        assert_int_equal(dec("Zm8=", m, out, 31), 2);
        assert_string_equal(out, "fo");
        assert_int_equal(dec("Zm9v", m, out, 31), 3);
        assert_string_equal(out, "foo");
        assert_int_equal(dec("Zm9vYmFy", m, out, 31), 6);
        assert_string_equal(out, "foobar");
    }
}

static void
lenient_takes_the_url_alphabet_and_missing_padding(void **state)
{
    char out[32];

    assert_int_equal(dec("Zm8", SB_BASE64_LENIENT, out, 31), 2);
    assert_string_equal(out, "fo");
    assert_int_equal(dec("-_8", SB_BASE64_LENIENT, out, 31), 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    assert_int_equal(dec("+/8=", SB_BASE64_STRICT, out, 31), 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    /* ... which strict refuses */
    assert_false(sb_base64_valid(sb_str_c("Zm8"), SB_BASE64_STRICT));
    assert_false(sb_base64_valid(sb_str_c("-_8="), SB_BASE64_STRICT));
}

static void
refuses_what_is_not_base64(void **state)
{
    static const char *const bad[] = { "Z", "Zm9vY", "Zm=v", "Zm9v===", "Z m9", "Zg==Zg==",
                                       "*abc" };
    char out[32];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int m = SB_BASE64_STRICT; m <= SB_BASE64_LENIENT; m++) {
            assert_false(sb_base64_valid(sb_str_c(bad[i]), m));
            assert_int_equal(dec(bad[i], m, out, 31), -1);
        }
}

static void
refuses_what_does_not_fit(void **state)
{
    char out[8];

    assert_int_equal(dec("Zm9vYmFy", SB_BASE64_STRICT, out, 5), -1);
    assert_int_equal(dec("Zm9vYmFy", SB_BASE64_STRICT, out, 6), 6);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_every_padding_length),
        cmocka_unit_test(lenient_takes_the_url_alphabet_and_missing_padding),
        cmocka_unit_test(refuses_what_is_not_base64),
        cmocka_unit_test(refuses_what_does_not_fit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
