/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "spf-eval.h"
#include "string-util.h"
#include "../../conformance/spf/spf-fake-zone.h"

static FakeZone zone;

static void zone_setup(void) {
        zone = (FakeZone) {};
}

static void zone_teardown(void) {
        fake_zone_done(&zone);
}

static void txt(const char *name, const char *value) {
        ck_assert_int_eq(fake_zone_add_txt(&zone, name, value, strlen(value)), 0);
}

static void addr(const char *name, const char *ip) {
        ck_assert_int_eq(fake_zone_add_a(&zone, name, ip), 0);
}

static SpfEval* check(const char *ip, const char *mail_from, const char *helo) {
        SpfRequest req = {
                .mail_from = mail_from,
                .helo = helo,
                .receiver = "mx.example.net",
                .now = 1700000000,
        };
        SpfEval *e = NULL;

        if (inet_pton(AF_INET, ip, &req.ip.in) == 1)
                req.family = AF_INET;
        else {
                ck_assert_int_eq(inet_pton(AF_INET6, ip, &req.ip.in6), 1);
                req.family = AF_INET6;
        }
        ck_assert_int_eq(fake_zone_check(&zone, &req, &e), 0);
        return e;
}

static SpfResult result_of(SpfEval *e) {
        const SpfOutcome *o;

        ck_assert_int_eq(spf_eval_result(e, &o), 0);
        return o->result;
}

static const struct {
        const char *name;
        const char *record;
        const char *ip;
        SpfResult expected;
} basic_cases[] = {
        { "ip4 pass", "v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.77", SPF_RESULT_PASS },
        { "ip4 fail", "v=spf1 ip4:192.0.2.0/24 -all", "198.51.100.1", SPF_RESULT_FAIL },
        { "ip4 softfail", "v=spf1 ip4:192.0.2.0/24 ~all", "198.51.100.1", SPF_RESULT_SOFTFAIL },
        { "neutral by default", "v=spf1 ip4:192.0.2.0/24", "198.51.100.1", SPF_RESULT_NEUTRAL },
        { "ip6 cidr", "v=spf1 ip6:2001:db8::/32 -all", "2001:db8:1::1", SPF_RESULT_PASS },
        { "ip6 for ip4 client", "v=spf1 ip6:::/0 -all", "192.0.2.1", SPF_RESULT_FAIL },
        { "mapped client is ip4", "v=spf1 ip4:192.0.2.1 -all", "::ffff:192.0.2.1", SPF_RESULT_PASS },
        { "a matches", "v=spf1 a -all", "192.0.2.10", SPF_RESULT_PASS },
        { "a cidr", "v=spf1 a/24 -all", "192.0.2.200", SPF_RESULT_PASS },
        { "mx matches", "v=spf1 mx -all", "192.0.2.25", SPF_RESULT_PASS },
        { "include pass", "v=spf1 include:inc.example.org -all", "203.0.113.5", SPF_RESULT_PASS },
        { "include fail does not match", "v=spf1 include:inc.example.org ?all", "203.0.113.6",
          SPF_RESULT_NEUTRAL },
        { "include without record", "v=spf1 include:norecord.example.org -all", "203.0.113.6",
          SPF_RESULT_PERMERROR },
        { "include nxdomain", "v=spf1 include:nowhere.example.org -all", "203.0.113.6", SPF_RESULT_PERMERROR },
        { "include tempfail", "v=spf1 include:timeout.example.org -all", "203.0.113.6", SPF_RESULT_TEMPERROR },
        { "redirect", "v=spf1 redirect=inc.example.org", "203.0.113.5", SPF_RESULT_PASS },
        { "redirect without record", "v=spf1 redirect=norecord.example.org", "203.0.113.5",
          SPF_RESULT_PERMERROR },
        { "redirect ignored after match", "v=spf1 -all redirect=inc.example.org", "203.0.113.5",
          SPF_RESULT_FAIL },
        { "exists", "v=spf1 exists:%{ir}.list.example.org -all", "192.0.2.99", SPF_RESULT_PASS },
        { "ptr", "v=spf1 ptr -all", "192.0.2.10", SPF_RESULT_PASS },
        { "ptr other domain", "v=spf1 ptr:example.net -all", "192.0.2.10", SPF_RESULT_FAIL },
        { "syntax error", "v=spf1 a:", "192.0.2.10", SPF_RESULT_PERMERROR },
        { "a tempfail", "v=spf1 a:timeout.example.org -all", "192.0.2.10", SPF_RESULT_TEMPERROR },
};

static void basic_zone(const char *record) {
        txt("example.com", record);
        txt("example.com", "google-site-verification=abc");        /* not SPF: ignored */
        addr("example.com", "192.0.2.10");
        ck_assert_int_eq(fake_zone_add_mx(&zone, "example.com", 10, "mail.example.com"), 0);
        addr("mail.example.com", "192.0.2.25");
        txt("inc.example.org", "v=spf1 ip4:203.0.113.5 -all");
        txt("norecord.example.org", "some text");
        ck_assert_int_eq(fake_zone_add_timeout(&zone, "timeout.example.org", 0), 0);
        addr("99.2.0.192.list.example.org", "127.0.0.2");
        ck_assert_int_eq(fake_zone_add_ptr(&zone, "192.0.2.10", "host.example.com"), 0);
        addr("host.example.com", "192.0.2.10");
}

START_TEST(test_eval_basic)
{
        for (size_t i = 0; i < ELEMENTSOF(basic_cases); i++) {
                _cleanup_(spf_eval_freep) SpfEval *e = NULL;

                fake_zone_done(&zone);
                basic_zone(basic_cases[i].record);
                e = check(basic_cases[i].ip, "user@example.com", "mail.example.com");
                ck_assert_msg(result_of(e) == basic_cases[i].expected, "%s: got %s, expected %s",
                              basic_cases[i].name, spf_result_to_string(result_of(e)),
                              spf_result_to_string(basic_cases[i].expected));
        }
}
END_TEST

START_TEST(test_eval_no_record)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL, *e2 = NULL, *e3 = NULL;

        txt("example.com", "v=spf1 -all");
        txt("example.com", "v=spf1 +all");
        e = check("192.0.2.1", "user@example.com", "h.example.com");
        ck_assert_int_eq(result_of(e), SPF_RESULT_PERMERROR);       /* two records */

        e2 = check("192.0.2.1", "user@nothing.example", "h.example.com");
        ck_assert_int_eq(result_of(e2), SPF_RESULT_NONE);

        e3 = check("192.0.2.1", "user@[192.0.2.1]", "h.example.com");
        ck_assert_int_eq(result_of(e3), SPF_RESULT_NONE);           /* §4.3 */
}
END_TEST

START_TEST(test_eval_dns_term_limit)
{
        _cleanup_(spf_eval_freep) SpfEval *e10 = NULL, *e11 = NULL;
        const SpfOutcome *o;

        /* ten a: terms that exist but do not match are fine, the eleventh is not */
        for (unsigned i = 1; i <= 11; i++) {
                char name[32];

                snprintf(name, sizeof(name), "h%u.example.com", i);
                addr(name, "198.51.100.1");
        }
        txt("ten.example.com", "v=spf1 a:h1.example.com a:h2.example.com a:h3.example.com a:h4.example.com "
            "a:h5.example.com a:h6.example.com a:h7.example.com a:h8.example.com a:h9.example.com "
            "a:h10.example.com -all");
        txt("eleven.example.com", "v=spf1 a:h1.example.com a:h2.example.com a:h3.example.com a:h4.example.com "
            "a:h5.example.com a:h6.example.com a:h7.example.com a:h8.example.com a:h9.example.com "
            "include:ten.example.com -all");

        e10 = check("192.0.2.1", "a@ten.example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_result(e10, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_FAIL);
        ck_assert_uint_eq(o->dns_terms, 10);

        e11 = check("192.0.2.1", "a@eleven.example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_result(e11, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_PERMERROR);
        ck_assert_ptr_nonnull(strstr(o->problem, "DNS-querying terms"));
}
END_TEST

START_TEST(test_eval_void_limit)
{
        _cleanup_(spf_eval_freep) SpfEval *e2 = NULL, *e3 = NULL;
        const SpfOutcome *o;

        txt("two.example.com", "v=spf1 a:none1.example.com mx:none2.example.com -all");
        txt("three.example.com", "v=spf1 a:none1.example.com mx:none2.example.com exists:none3.example.com -all");

        e2 = check("192.0.2.1", "a@two.example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_result(e2, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_FAIL);
        ck_assert_uint_eq(o->void_lookups, 2);

        e3 = check("192.0.2.1", "a@three.example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_result(e3, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_PERMERROR);
        ck_assert_ptr_nonnull(strstr(o->problem, "void"));
}
END_TEST

START_TEST(test_eval_mx_limit)
{
        _cleanup_(spf_eval_freep) SpfEval *miss = NULL, *hit = NULL;

        txt("example.com", "v=spf1 mx -all");
        for (unsigned i = 0; i < 11; i++) {
                char name[32], ip[32];

                snprintf(name, sizeof(name), "mx%u.example.com", i);
                snprintf(ip, sizeof(ip), "198.51.100.%u", i + 1);
                ck_assert_int_eq(fake_zone_add_mx(&zone, "example.com", (uint16_t) i, name), 0);
                addr(name, ip);
        }
        miss = check("192.0.2.1", "a@example.com", "h.example.com");
        ck_assert_int_eq(result_of(miss), SPF_RESULT_PERMERROR);
        /* the host matched among the first ten: the limit was not reached */
        hit = check("198.51.100.3", "a@example.com", "h.example.com");
        ck_assert_int_eq(result_of(hit), SPF_RESULT_PASS);
}
END_TEST

START_TEST(test_eval_include_loop)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        const SpfOutcome *o;

        txt("loop.example.com", "v=spf1 include:loop.example.com -all");
        e = check("192.0.2.1", "a@loop.example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_result(e, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_PERMERROR);
}
END_TEST

START_TEST(test_eval_explanation)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL, *d = NULL, *bad = NULL;
        _cleanup_free_ char *rs = NULL, *ar = NULL;
        const SpfOutcome *o;

        txt("example.com", "v=spf1 ip4:192.0.2.0/24 -all exp=why.%{d}");
        txt("why.example.com", "%{c} may not send for %{d} (%{l}) at %{r}");
        e = check("198.51.100.7", "joe@example.com", "mail.example.org");
        ck_assert_int_eq(spf_eval_result(e, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_FAIL);
        ck_assert_str_eq(o->explanation, "198.51.100.7 may not send for example.com (joe) at mx.example.net");
        ck_assert_str_eq(o->mechanism, "-all");
        ck_assert_str_eq(o->domain, "example.com");

        ck_assert_int_eq(spf_eval_received_spf(e, &rs), 0);
        ck_assert_str_eq(rs, "fail (mx.example.net: domain of joe@example.com does not designate 198.51.100.7 "
                         "as permitted sender) client-ip=198.51.100.7; envelope-from=joe@example.com; "
                         "helo=mail.example.org; receiver=mx.example.net; identity=mailfrom; mechanism=-all");
        ck_assert_int_eq(spf_eval_auth_results(e, &ar), 0);
        ck_assert_str_eq(ar, "spf=fail smtp.mailfrom=joe@example.com");

        /* two TXT records at the exp= name: as if there were no exp= (§6.2) */
        txt("why2.example.com", "one");
        txt("why2.example.com", "two");
        txt("other.example.com", "v=spf1 -all exp=why2.example.com");
        d = check("198.51.100.7", "joe@other.example.com", "mail.example.org");
        ck_assert_int_eq(spf_eval_result(d, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_FAIL);
        ck_assert_ptr_nonnull(strstr(o->explanation, "rfc7208"));

        /* a broken explanation string is ignored, too */
        txt("why3.example.com", "bad %{z}");
        txt("third.example.com", "v=spf1 -all exp=why3.example.com");
        bad = check("198.51.100.7", "joe@third.example.com", "mail.example.org");
        ck_assert_int_eq(spf_eval_result(bad, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_FAIL);
        ck_assert_ptr_nonnull(strstr(o->explanation, "rfc7208"));
}
END_TEST

START_TEST(test_eval_helo_identity)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        _cleanup_free_ char *rs = NULL, *ar = NULL;
        const SpfOutcome *o;

        txt("mail.example.org", "v=spf1 ip6:2001:db8::/64 -all");
        e = check("2001:db8::25", "", "mail.example.org");
        ck_assert_int_eq(spf_eval_result(e, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_PASS);
        ck_assert_int_eq(o->identity, SPF_IDENTITY_HELO);
        ck_assert_str_eq(o->sender, "postmaster@mail.example.org");

        ck_assert_int_eq(spf_eval_auth_results(e, &ar), 0);
        ck_assert_str_eq(ar, "spf=pass smtp.helo=mail.example.org");
        ck_assert_int_eq(spf_eval_received_spf(e, &rs), 0);
        ck_assert_ptr_nonnull(strstr(rs, "identity=helo; mechanism=\"ip6:2001:db8::/64\""));
}
END_TEST

START_TEST(test_eval_p_macro)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL, *f = NULL;

        txt("example.com", "v=spf1 exists:%{p}.ok.example.com -all");
        ck_assert_int_eq(fake_zone_add_ptr(&zone, "192.0.2.10", "other.example.net"), 0);
        ck_assert_int_eq(fake_zone_add_ptr(&zone, "192.0.2.10", "host.example.com"), 0);
        addr("host.example.com", "192.0.2.10");
        addr("other.example.net", "192.0.2.10");
        addr("host.example.com.ok.example.com", "127.0.0.2");
        /* the validated name under <domain> is preferred */
        e = check("192.0.2.10", "a@example.com", "h.example.com");
        ck_assert_int_eq(result_of(e), SPF_RESULT_PASS);

        /* no validated name: "unknown" */
        f = check("192.0.2.11", "a@example.com", "h.example.com");
        ck_assert_int_eq(result_of(f), SPF_RESULT_FAIL);
}
END_TEST

START_TEST(test_eval_protocol)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        DnsAnswer a = DNS_ANSWER_NULL;
        SpfRequest req = { .family = AF_INET, .mail_from = "a@example.com", .helo = "h.example.com" };
        const SpfOutcome *o;
        SpfLookup l;

        ck_assert_int_eq(spf_eval_new(&(SpfRequest) { .family = AF_UNIX, .helo = "x" }, &e), -EINVAL);
        ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.1", &req.ip.in), 1);
        ck_assert_int_eq(spf_eval_new(&req, &e), 0);

        ck_assert_int_eq(spf_eval_step(e, &a, &l), -EINVAL);        /* nothing was asked yet */
        ck_assert_int_eq(spf_eval_result(e, &o), -EBUSY);
        ck_assert_int_eq(spf_eval_step(e, NULL, &l), SPF_STEP_LOOKUP);
        ck_assert_str_eq(l.name, "example.com");
        ck_assert_int_eq(l.type, DNS_TYPE_TXT);
        ck_assert_int_eq(spf_eval_step(e, NULL, &l), -EINVAL);      /* an answer is due */

        ck_assert_int_eq(dns_answer_add_txt(&a, "v=spf1 ip4:192.0.2.1 -all", 25, 60), 0);
        ck_assert_int_eq(spf_eval_step(e, &a, &l), SPF_STEP_DONE);
        dns_answer_done(&a);
        ck_assert_int_eq(spf_eval_result(e, &o), 0);
        ck_assert_int_eq(o->result, SPF_RESULT_PASS);
        ck_assert_str_eq(o->mechanism, "ip4:192.0.2.1");
        ck_assert_int_eq(spf_eval_step(e, NULL, &l), -ESTALE);
}
END_TEST

START_TEST(test_eval_strings)
{
        for (SpfResult r = 0; r < _SPF_RESULT_MAX; r++)
                ck_assert_int_eq(spf_result_from_string(spf_result_to_string(r)), r);
        ck_assert_int_eq(spf_result_from_string("bogus"), _SPF_RESULT_INVALID);
        ck_assert_ptr_null(spf_result_to_string(_SPF_RESULT_MAX));
}
END_TEST

START_TEST(test_eval_quoting)
{
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        _cleanup_free_ char *rs = NULL, *ar = NULL;

        txt("example.com", "v=spf1 -all");
        e = check("192.0.2.1", "we\"ird (x)@example.com", "h.example.com");
        ck_assert_int_eq(spf_eval_received_spf(e, &rs), 0);
        ck_assert_ptr_nonnull(strstr(rs, "domain of we\"ird \\(x\\)@example.com"));
        ck_assert_ptr_nonnull(strstr(rs, "envelope-from=\"we\\\"ird (x)@example.com\";"));
        ck_assert_int_eq(spf_eval_auth_results(e, &ar), 0);
        ck_assert_str_eq(ar, "spf=fail smtp.mailfrom=\"we\\\"ird (x)@example.com\"");
}
END_TEST

static Suite* spf_eval_suite(void) {
        Suite *s = suite_create("spf-eval");
        TCase *tc;

        tc = tcase_create("mechanisms");
        tcase_add_checked_fixture(tc, zone_setup, zone_teardown);
        tcase_add_test(tc, test_eval_basic);
        tcase_add_test(tc, test_eval_no_record);
        tcase_add_test(tc, test_eval_p_macro);
        tcase_add_test(tc, test_eval_helo_identity);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_checked_fixture(tc, zone_setup, zone_teardown);
        tcase_add_test(tc, test_eval_dns_term_limit);
        tcase_add_test(tc, test_eval_void_limit);
        tcase_add_test(tc, test_eval_mx_limit);
        tcase_add_test(tc, test_eval_include_loop);
        suite_add_tcase(s, tc);

        tc = tcase_create("results");
        tcase_add_checked_fixture(tc, zone_setup, zone_teardown);
        tcase_add_test(tc, test_eval_explanation);
        tcase_add_test(tc, test_eval_protocol);
        tcase_add_test(tc, test_eval_strings);
        tcase_add_test(tc, test_eval_quoting);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(spf_eval_suite);
