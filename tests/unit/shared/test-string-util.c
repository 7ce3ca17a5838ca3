/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "check-main.h"
#include "cleanup.h"
#include "string-util.h"

START_TEST(test_prefix_suffix)
{
        ck_assert_str_eq(startswith("MAIL FROM:<a>", "MAIL "), "FROM:<a>");
        ck_assert_ptr_null(startswith("MAIL", "MAIL FROM"));
        ck_assert_str_eq(startswith("abc", ""), "abc");
        ck_assert_str_eq(startswith_no_case("mail from:<>", "MAIL FROM:"), "<>");
        ck_assert_ptr_null(startswith_no_case("rcpt to:", "MAIL"));
        ck_assert(endswith("x.conf", ".conf"));
        ck_assert(endswith("x.conf", ""));
        ck_assert(!endswith("conf", "x.conf"));
        ck_assert(!endswith("x.conf.d", ".conf"));
}
END_TEST

START_TEST(test_strstrip)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "", "" },
                { "   ", "" },
                { "a", "a" },
                { " \t a b \r\n", "a b" },
                { "x  ", "x" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = strdup(cases[i].in);

                ck_assert_ptr_nonnull(s);
                ck_assert_str_eq(strstrip(s), cases[i].out);
        }
        ck_assert_ptr_null(strstrip(NULL));
}
END_TEST

START_TEST(test_small_helpers)
{
        _cleanup_free_ char *p = NULL, *h = NULL, *f = NULL;

        ck_assert(streq_ptr(NULL, NULL));
        ck_assert(!streq_ptr("a", NULL));
        ck_assert(streq_ptr("a", "a"));
        ck_assert(isempty(NULL) && isempty("") && !isempty(" "));
        ck_assert_str_eq(strempty(NULL), "");
        ck_assert_str_eq(strna(NULL), "n/a");

        ck_assert_int_eq(free_and_strdup(&p, "x"), 1);
        ck_assert_str_eq(p, "x");
        ck_assert_int_eq(free_and_strdup(&p, "x"), 0);
        ck_assert_int_eq(free_and_strdup(&p, NULL), 1);
        ck_assert_ptr_null(p);

        h = hexmem("\x00\x7f\xff", 3);
        ck_assert_str_eq(h, "007fff");

        ck_assert_int_eq(asprintf_safe(&f, "%s-%d", "a", 5), 3);
        ck_assert_str_eq(f, "a-5");
}
END_TEST

START_TEST(test_parse_numbers)
{
        static const struct {
                const char *in;
                int ret;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
        };
        unsigned u;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 7;
                int r = parse_uint64(cases[i].in, &v);

                ck_assert_msg(r == cases[i].ret, "parse_uint64(\"%s\") = %d", cases[i].in, r);
                ck_assert_uint_eq(v, r == 0 ? cases[i].v : 7);
        }
        ck_assert_int_eq(parse_uint64(NULL, NULL), -EINVAL);

        ck_assert_int_eq(parse_unsigned("4294967295", &u), 0);
        ck_assert_uint_eq(u, 4294967295U);
        ck_assert_int_eq(parse_unsigned("4294967296", &u), -ERANGE);
}
END_TEST

START_TEST(test_parse_size)
{
        static const struct {
                const char *in;
                int ret;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "1K", 0, 1024 },
                { "1k", 0, 1024 },
                { "10M", 0, 10ULL << 20 },
                { "50M", 0, 50ULL << 20 },
                { "1G", 0, 1ULL << 30 },
                { "2T", 0, 2ULL << 40 },
                { "10MB", 0, 10ULL << 20 },
                { "512B", 0, 512 },
                { " 1 M ", 0, 1ULL << 20 },
                { "16777215T", 0, 16777215ULL << 40 },
                { "16777216T", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "M", -EINVAL, 0 },
                { "B", -EINVAL, 0 },
                { "10X", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "1.5M", -EINVAL, 0 },
                { "1MM", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 7;
                int r = parse_size(cases[i].in, &v);

                ck_assert_msg(r == cases[i].ret, "parse_size(\"%s\") = %d, expected %d", cases[i].in, r,
                              cases[i].ret);
                ck_assert_msg(v == (r == 0 ? cases[i].v : 7), "parse_size(\"%s\") gave %llu", cases[i].in,
                              (unsigned long long) v);
        }
}
END_TEST

START_TEST(test_strv)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *j = NULL, *e = NULL;
        size_t n = 0;

        ck_assert_uint_eq(strv_length(NULL), 0);
        ck_assert(!strv_contains(NULL, "a"));
        e = strv_join(NULL, ",");
        ck_assert_str_eq(e, "");

        ck_assert_int_eq(strv_extend(&l, "one"), 0);
        ck_assert_int_eq(strv_extend(&l, "two"), 0);
        ck_assert_int_eq(strv_consume(&l, strdup("three")), 0);
        ck_assert_int_eq(strv_consume(&l, NULL), -EINVAL);
        ck_assert_uint_eq(strv_length(l), 3);
        ck_assert(strv_contains(l, "two"));
        ck_assert(!strv_contains(l, "four"));
        ck_assert_ptr_null(l[3]);

        STRV_FOREACH(s, l)
                n++;
        ck_assert_uint_eq(n, 3);

        j = strv_join(l, ", ");
        ck_assert_str_eq(j, "one, two, three");

        ck_assert_ptr_null(strv_free(NULL));
}
END_TEST

static Suite* string_util_suite(void) {
        Suite *s = suite_create("string-util");
        TCase *tc = tcase_create("strings");

        tcase_add_test(tc, test_prefix_suffix);
        tcase_add_test(tc, test_strstrip);
        tcase_add_test(tc, test_small_helpers);
        tcase_add_test(tc, test_parse_numbers);
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_strv);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(string_util_suite);
