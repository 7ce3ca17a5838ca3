/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "spf-macro.h"
#include "string-util.h"

/* RFC 7208 §7.4: <sender> strong-bad@email.example.com, client 192.0.2.3 or
 * 2001:db8::cb01, PTR name mx.example.org. */
static SpfMacroContext rfc_context(int family) {
        SpfMacroContext c = {
                .sender = "strong-bad@email.example.com",
                .local_part = "strong-bad",
                .sender_domain = "email.example.com",
                .domain = "email.example.com",
                .family = family,
                .validated_name = "mx.example.org",
                .helo = "mx.example.org",
                .receiver = "mx.example.net",
                .now = 1234567890,
        };

        if (family == AF_INET)
                assert(inet_pton(AF_INET, "192.0.2.3", &c.ip.in) == 1);
        else
                assert(inet_pton(AF_INET6, "2001:db8::cb01", &c.ip.in6) == 1);
        return c;
}

static const struct {
        const char *input;
        int family;
        SpfMacroFlags flags;
        const char *expected;
} macro_cases[] = {
        /* §7.4, the table and the examples, exactly */
        { "%{s}", AF_INET, 0, "strong-bad@email.example.com" },
        { "%{o}", AF_INET, 0, "email.example.com" },
        { "%{d}", AF_INET, 0, "email.example.com" },
        { "%{d4}", AF_INET, 0, "email.example.com" },
        { "%{d3}", AF_INET, 0, "email.example.com" },
        { "%{d2}", AF_INET, 0, "example.com" },
        { "%{d1}", AF_INET, 0, "com" },
        { "%{dr}", AF_INET, 0, "com.example.email" },
        { "%{d2r}", AF_INET, 0, "example.email" },
        { "%{l}", AF_INET, 0, "strong-bad" },
        { "%{l-}", AF_INET, 0, "strong.bad" },
        { "%{lr}", AF_INET, 0, "strong-bad" },
        { "%{lr-}", AF_INET, 0, "bad.strong" },
        { "%{l1r-}", AF_INET, 0, "strong" },
        { "%{ir}.%{v}._spf.%{d2}", AF_INET, 0, "3.2.0.192.in-addr._spf.example.com" },
        { "%{lr-}.lp._spf.%{d2}", AF_INET, 0, "bad.strong.lp._spf.example.com" },
        { "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", AF_INET, 0, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
        { "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", AF_INET, 0, "3.2.0.192.in-addr.strong.lp._spf.example.com" },
        { "%{d2}.trusted-domains.example.net", AF_INET, 0, "example.com.trusted-domains.example.net" },
        { "%{ir}.%{v}._spf.%{d2}", AF_INET6, 0,
          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com" },

        /* the other letters and escapes */
        { "%{i}", AF_INET, 0, "192.0.2.3" },
        { "%{h}", AF_INET, 0, "mx.example.org" },
        { "%{p}", AF_INET, 0, "mx.example.org" },
        { "%{v}", AF_INET6, 0, "ip6" },
        { "%%%_%-", AF_INET, 0, "% %20" },
        { "%{c}", AF_INET6, SPF_MACRO_EXPLANATION, "2001:db8::cb01" },
        { "%{c}", AF_INET, SPF_MACRO_EXPLANATION, "192.0.2.3" },
        { "%{r}", AF_INET, SPF_MACRO_EXPLANATION, "mx.example.net" },
        { "%{t}", AF_INET, SPF_MACRO_EXPLANATION, "1234567890" },
        { "%{s} is not allowed", AF_INET, SPF_MACRO_EXPLANATION, "strong-bad@email.example.com is not allowed" },
        /* upper-case letters are URL-escaped */
        { "%{S}", AF_INET, 0, "strong-bad%40email.example.com" },
        { "%{L}", AF_INET, 0, "strong-bad" },
        /* digits beyond the number of parts, several delimiters, huge digits */
        { "%{d9}", AF_INET, 0, "email.example.com" },
        { "%{d123456789012}", AF_INET, 0, "email.example.com" },
        { "%{l-.}", AF_INET, 0, "strong.bad" },
        { "%{s-}", AF_INET, 0, "strong.bad@email.example.com" },
        { "%{D2R}", AF_INET, 0, "example.email" },
};

START_TEST(test_macro_table)
{
        for (size_t i = 0; i < ELEMENTSOF(macro_cases); i++) {
                SpfMacroContext c = rfc_context(macro_cases[i].family);
                _cleanup_free_ char *out = NULL;
                int r;

                r = spf_macro_expand(macro_cases[i].input, &c, macro_cases[i].flags, &out);
                ck_assert_msg(r == 0, "%s: %d", macro_cases[i].input, r);
                ck_assert_msg(streq(out, macro_cases[i].expected), "%s: got '%s', expected '%s'",
                              macro_cases[i].input, out, macro_cases[i].expected);
        }
}
END_TEST

START_TEST(test_macro_errors)
{
        static const char *bad[] = {
                "%", "%x", "%{", "%{d", "%{z}", "%{d0}", "%{dx}", "%{c}", "%{r}", "%{t}", "a b", "%{d2r2}",
                "%(ir).sbl.example.org",
        };
        SpfMacroContext c = rfc_context(AF_INET);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *out = NULL;

                ck_assert_msg(spf_macro_expand(bad[i], &c, 0, &out) == -EBADMSG, "%s accepted", bad[i]);
                ck_assert(!spf_macro_string_valid(bad[i], strlen(bad[i]), 0));
        }
        /* c r t and spaces are fine in an explanation */
        ck_assert(spf_macro_string_valid("%{c} %{r} %{t}", 14, SPF_MACRO_EXPLANATION));
}
END_TEST

START_TEST(test_macro_p_unknown)
{
        SpfMacroContext c = rfc_context(AF_INET);
        _cleanup_free_ char *out = NULL;

        c.validated_name = NULL;
        c.receiver = NULL;
        ck_assert_int_eq(spf_macro_expand("%{p}.%{r}", &c, SPF_MACRO_EXPLANATION, &out), 0);
        ck_assert_str_eq(out, "unknown.unknown");

        ck_assert(spf_macro_uses_p("a.%{p}.b"));
        ck_assert(spf_macro_uses_p("%{P2}"));
        ck_assert(!spf_macro_uses_p("%%{p}"));
        ck_assert(!spf_macro_uses_p("%{d}.p"));
}
END_TEST

START_TEST(test_macro_truncation)
{
        SpfMacroContext c = rfc_context(AF_INET);
        _cleanup_free_ char *out = NULL, *spec = NULL, *local = NULL;
        size_t n;

        /* a 60-octet local part repeated: the name grows past 253 octets */
        local = malloc(61);
        ck_assert_ptr_nonnull(local);
        memset(local, 'x', 60);
        local[60] = 0;
        c.local_part = local;
        ck_assert_int_ge(asprintf_safe(&spec, "%s", "%{l}.%{l}.%{l}.%{l}.%{l}.example.com"), 0);

        ck_assert_int_eq(spf_macro_expand(spec, &c, SPF_MACRO_DOMAIN, &out), 0);
        n = strlen(out);
        ck_assert_uint_le(n, SPF_DOMAIN_NAME_MAX);
        /* whole labels were dropped from the left */
        ck_assert_str_eq(out + n - STRLEN(".example.com"), ".example.com");
        ck_assert_uint_eq(n, 3 * 61 + STRLEN("example.com"));     /* 4 * 61 + 11 is 255 */
        free(out);
        out = NULL;

        /* without the flag nothing is cut */
        ck_assert_int_eq(spf_macro_expand(spec, &c, 0, &out), 0);
        ck_assert_uint_eq(strlen(out), 5 * 61 + STRLEN("example.com"));
}
END_TEST

START_TEST(test_macro_expansion_cap)
{
        SpfMacroContext c = rfc_context(AF_INET);
        _cleanup_free_ char *spec = NULL, *out = NULL;
        size_t n = 0;

        /* 500 x "%{s}" is 14 kB of output: refused, not allocated */
        spec = malloc(500 * 4 + 1);
        ck_assert_ptr_nonnull(spec);
        for (size_t i = 0; i < 500; i++, n += 4)
                memcpy(spec + n, "%{s}", 4);
        spec[n] = 0;
        ck_assert_int_eq(spf_macro_expand(spec, &c, SPF_MACRO_EXPLANATION, &out), -E2BIG);
        ck_assert_ptr_null(out);
}
END_TEST

static Suite* spf_macro_suite(void) {
        Suite *s = suite_create("spf-macro");
        TCase *tc;

        tc = tcase_create("table");
        tcase_add_test(tc, test_macro_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_macro_errors);
        tcase_add_test(tc, test_macro_p_unknown);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_macro_truncation);
        tcase_add_test(tc, test_macro_expansion_cap);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(spf_macro_suite);
