/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "spf-record.h"
#include "string-util.h"

static const struct {
        const char *name;
        const char *input;
        bool valid;
        size_t n_mechanisms;            /* when valid */
        const char *redirect, *exp;
} record_cases[] = {
        { "empty record", "v=spf1", true, 0, NULL, NULL },
        { "trailing spaces", "v=spf1 -all   ", true, 1, NULL, NULL },
        { "upper-case version", "V=SPF1 -ALL", true, 1, NULL, NULL },
        { "every mechanism", "v=spf1 +all -include:a.example ~a ?mx ptr ip4:192.0.2.0/24 ip6:2001:db8::/32 "
          "exists:%{i}.example.org", true, 8, NULL, NULL },
        { "many spaces", "v=spf1   a    mx", true, 2, NULL, NULL },
        { "a with domain and cidr", "v=spf1 a:example.com/24//64", true, 1, NULL, NULL },
        { "a with only ip6 cidr", "v=spf1 a//64", true, 1, NULL, NULL },
        { "mx with cidr", "v=spf1 mx/0", true, 1, NULL, NULL },
        { "redirect", "v=spf1 redirect=_spf.example.com", true, 0, "_spf.example.com", NULL },
        { "exp", "v=spf1 -all exp=explain.%{d}", true, 1, NULL, "explain.%{d}" },
        { "unknown modifier kept aside", "v=spf1 foo=bar.%{d} -all", true, 1, NULL, NULL },
        { "modifier name chars", "v=spf1 a-b_c.d=x", true, 0, NULL, NULL },
        { "domain with trailing dot", "v=spf1 a:example.com.", true, 1, NULL, NULL },
        { "domain ending in macro", "v=spf1 exists:%{l}.%{d}", true, 1, NULL, NULL },
        { "colon inside domain-spec", "v=spf1 a:foo:bar/baz.example.com", true, 1, NULL, NULL },
        { "ip6 mapped", "v=spf1 ip6:::ffff:10.0.0.1", true, 1, NULL, NULL },
        { "dash toplabel", "v=spf1 a:example.x-y", true, 1, NULL, NULL },

        { "not spf", "v=spf10 -all", false, 0, NULL, NULL },
        { "no version", "-all", false, 0, NULL, NULL },
        { "unknown mechanism", "v=spf1 foo", false, 0, NULL, NULL },
        { "unknown mechanism with arg", "v=spf1 ip:10.0.0.1", false, 0, NULL, NULL },
        { "all with argument", "v=spf1 all:foo.com", false, 0, NULL, NULL },
        { "include without domain", "v=spf1 include", false, 0, NULL, NULL },
        { "include with empty domain", "v=spf1 include:", false, 0, NULL, NULL },
        { "exists with cidr", "v=spf1 exists:foo.com/24", false, 0, NULL, NULL },
        { "ip4 without address", "v=spf1 ip4", false, 0, NULL, NULL },
        { "ip4 bad address", "v=spf1 ip4:1.2.3", false, 0, NULL, NULL },
        { "ip4 leading zero", "v=spf1 ip4:1.2.3.04", false, 0, NULL, NULL },
        { "ip4 cidr 33", "v=spf1 ip4:1.2.3.4/33", false, 0, NULL, NULL },
        { "ip4 cidr leading zero", "v=spf1 ip4:1.2.3.4/032", false, 0, NULL, NULL },
        { "ip4 empty cidr", "v=spf1 ip4:1.2.3.4/", false, 0, NULL, NULL },
        { "ip6 cidr 129", "v=spf1 ip6:::1/129", false, 0, NULL, NULL },
        { "ip6 with ip4", "v=spf1 ip6:1.2.3.4", false, 0, NULL, NULL },
        { "a cidr 33", "v=spf1 a/33", false, 0, NULL, NULL },
        { "a ip6 cidr 129", "v=spf1 a//129", false, 0, NULL, NULL },
        { "a empty domain", "v=spf1 a:", false, 0, NULL, NULL },
        { "toplabel only", "v=spf1 a:museum", false, 0, NULL, NULL },
        { "numeric toplabel", "v=spf1 a:foo.example.123", false, 0, NULL, NULL },
        { "bad macro", "v=spf1 exists:%{z}.example.com", false, 0, NULL, NULL },
        { "c macro outside exp", "v=spf1 exists:%{c}.example.com", false, 0, NULL, NULL },
        { "lone percent", "v=spf1 a:%.example.com", false, 0, NULL, NULL },
        { "unterminated macro", "v=spf1 a:%{d.example.com", false, 0, NULL, NULL },
        { "two redirects", "v=spf1 redirect=a.example redirect=b.example", false, 0, NULL, NULL },
        { "two exps", "v=spf1 exp=a.example exp=b.example", false, 0, NULL, NULL },
        { "empty redirect", "v=spf1 redirect=", false, 0, NULL, NULL },
        { "modifier starting with digit", "v=spf1 1x=y", false, 0, NULL, NULL },
        { "unknown modifier bad macro", "v=spf1 foo=%x", false, 0, NULL, NULL },
        { "tab separator", "v=spf1\t-all", false, 0, NULL, NULL },
        { "non-ascii", "v=spf1 a:\xc3\xa9.example.com", false, 0, NULL, NULL },
        { "digit transformer zero", "v=spf1 exists:%{d0}.example.com", false, 0, NULL, NULL },
        { "double qualifier", "v=spf1 +-all", false, 0, NULL, NULL },
};

START_TEST(test_record_table)
{
        for (size_t i = 0; i < ELEMENTSOF(record_cases); i++) {
                _cleanup_(spf_record_freep) SpfRecord *rec = NULL;
                _cleanup_free_ char *error = NULL;
                int r;

                r = spf_record_parse(record_cases[i].input, strlen(record_cases[i].input), &rec, &error);
                if (record_cases[i].valid) {
                        ck_assert_msg(r == 0, "%s: expected valid, got %d (%s)", record_cases[i].name, r,
                                      strna(error));
                        ck_assert_msg(rec->n_mechanisms == record_cases[i].n_mechanisms, "%s: %zu mechanisms",
                                      record_cases[i].name, rec->n_mechanisms);
                        ck_assert_msg(streq_ptr(rec->redirect, record_cases[i].redirect), "%s: redirect",
                                      record_cases[i].name);
                        ck_assert_msg(streq_ptr(rec->exp, record_cases[i].exp), "%s: exp", record_cases[i].name);
                } else {
                        ck_assert_msg(r == -EBADMSG, "%s: expected -EBADMSG, got %d", record_cases[i].name, r);
                        ck_assert_msg(!isempty(error), "%s: no error message", record_cases[i].name);
                }
        }
}
END_TEST

START_TEST(test_record_fields)
{
        _cleanup_(spf_record_freep) SpfRecord *rec = NULL;
        const char *s = "v=spf1 -a:mail.example.com/24//64 ~mx ip4:192.0.2.0/25 ?ip6:2001:db8::/48 "
                        "include:_spf.example.net x=y -all";
        struct in_addr in;
        struct in6_addr in6;

        ck_assert_int_eq(spf_record_parse(s, strlen(s), &rec, NULL), 0);
        ck_assert_uint_eq(rec->n_mechanisms, 6);
        ck_assert_uint_eq(rec->n_unknown_modifiers, 1);

        ck_assert_int_eq(rec->mechanisms[0].type, SPF_MECHANISM_A);
        ck_assert_int_eq(rec->mechanisms[0].qualifier, SPF_QUALIFIER_FAIL);
        ck_assert_str_eq(rec->mechanisms[0].domain_spec, "mail.example.com");
        ck_assert_uint_eq(rec->mechanisms[0].cidr4, 24);
        ck_assert_uint_eq(rec->mechanisms[0].cidr6, 64);
        ck_assert_str_eq(rec->mechanisms[0].text, "-a:mail.example.com/24//64");

        ck_assert_int_eq(rec->mechanisms[1].type, SPF_MECHANISM_MX);
        ck_assert_int_eq(rec->mechanisms[1].qualifier, SPF_QUALIFIER_SOFTFAIL);
        ck_assert_ptr_null(rec->mechanisms[1].domain_spec);
        ck_assert_uint_eq(rec->mechanisms[1].cidr4, 32);
        ck_assert_uint_eq(rec->mechanisms[1].cidr6, 128);

        ck_assert_int_eq(rec->mechanisms[2].type, SPF_MECHANISM_IP4);
        ck_assert_int_eq(rec->mechanisms[2].qualifier, SPF_QUALIFIER_PASS);
        ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.0", &in), 1);
        ck_assert_int_eq(memcmp(&in, &rec->mechanisms[2].network.in, sizeof(in)), 0);
        ck_assert_uint_eq(rec->mechanisms[2].cidr4, 25);

        ck_assert_int_eq(rec->mechanisms[3].type, SPF_MECHANISM_IP6);
        ck_assert_int_eq(rec->mechanisms[3].qualifier, SPF_QUALIFIER_NEUTRAL);
        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::", &in6), 1);
        ck_assert_int_eq(memcmp(&in6, &rec->mechanisms[3].network.in6, sizeof(in6)), 0);
        ck_assert_uint_eq(rec->mechanisms[3].cidr6, 48);

        ck_assert_int_eq(rec->mechanisms[4].type, SPF_MECHANISM_INCLUDE);
        ck_assert_str_eq(rec->mechanisms[4].domain_spec, "_spf.example.net");
        ck_assert_int_eq(rec->mechanisms[5].type, SPF_MECHANISM_ALL);
        ck_assert_int_eq(rec->mechanisms[5].qualifier, SPF_QUALIFIER_FAIL);
}
END_TEST

START_TEST(test_record_is_spf)
{
        ck_assert(spf_record_is_spf("v=spf1", 6));
        ck_assert(spf_record_is_spf("v=spf1 -all", 11));
        ck_assert(spf_record_is_spf("V=SpF1 a", 8));
        ck_assert(!spf_record_is_spf("v=spf10", 7));
        ck_assert(!spf_record_is_spf("v=spf1", 5));
        ck_assert(!spf_record_is_spf(" v=spf1", 7));
        ck_assert(!spf_record_is_spf("v=spf1\t", 7));
}
END_TEST

START_TEST(test_record_limits)
{
        _cleanup_(spf_record_freep) SpfRecord *rec = NULL;
        _cleanup_free_ char *big = NULL, *error = NULL;
        size_t n = 0;

        /* more terms than SPF_RECORD_TERMS_MAX */
        big = malloc(SPF_RECORD_LEN_MAX + 16);
        ck_assert_ptr_nonnull(big);
        strcpy(big, "v=spf1");
        n = strlen(big);
        for (size_t i = 0; i <= SPF_RECORD_TERMS_MAX; i++) {
                memcpy(big + n, " a", 2);
                n += 2;
        }
        ck_assert_int_eq(spf_record_parse(big, n, &rec, &error), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(error, "terms"));
        ck_assert_int_eq(spf_record_parse(big, 6 + 2 * SPF_RECORD_TERMS_MAX, &rec, NULL), 0);
        ck_assert_uint_eq(rec->n_mechanisms, SPF_RECORD_TERMS_MAX);
        rec = spf_record_free(rec);

        /* longer than SPF_RECORD_LEN_MAX */
        memset(big + 6, ' ', SPF_RECORD_LEN_MAX + 10 - 6);
        ck_assert_int_eq(spf_record_parse(big, SPF_RECORD_LEN_MAX + 1, &rec, NULL), -EBADMSG);
        ck_assert_int_eq(spf_record_parse(big, SPF_RECORD_LEN_MAX, &rec, NULL), 0);
        rec = spf_record_free(rec);

        /* a NUL byte inside the TXT data */
        ck_assert_int_eq(spf_record_parse("v=spf1 a\0 -all", 14, &rec, NULL), -EBADMSG);
}
END_TEST

static Suite* spf_record_suite(void) {
        Suite *s = suite_create("spf-record");
        TCase *tc;

        tc = tcase_create("table");
        tcase_add_test(tc, test_record_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("fields");
        tcase_add_test(tc, test_record_fields);
        suite_add_tcase(s, tc);

        tc = tcase_create("selection");
        tcase_add_test(tc, test_record_is_spf);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_record_limits);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(spf_record_suite);
