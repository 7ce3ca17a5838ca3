/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Trusted ARC sealers rescuing DMARC (RFC 8617 §7.2): reading ARC-Authentication-Results
 * payloads, the decision of dmarc_arc_override(), reading the sets of a real chain, and
 * the aggregate-report record of a rescued message. */

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "arc.h"
#include "auth-results.h"
#include "check-main.h"
#include "cleanup.h"
#include "dmarc-eval.h"
#include "dmarc-report.h"
#include "string-util.h"

/* Authentication-Results payloads: the resinfos found, and for the first one its method,
 * result, reason and header.from. */
static const struct {
        const char *name;
        const char *value;
        int ret;
        const char *id;
        size_t n_infos;
        const char *method, *result, *reason, *header_from;
} parse_table[] = {
        { "one dmarc", "lists.example.net; dmarc=pass header.from=example.com", 0,
          "lists.example.net", 1, "dmarc", "pass", NULL, "example.com" },
        { "several, folded, comments",
          " mx.example.net 1;\r\n\tspf=pass smtp.mailfrom=a@example.com;\r\n"
          "\tdkim=pass (good) header.d=example.com header.s=sel header.b=abcdEFGH;\r\n"
          "\tdmarc=pass (p=reject dis=none) header.from=example.com", 0, "mx.example.net", 3,
          "spf", "pass", NULL, NULL },
        { "case and reason", "X; DMARC = Fail reason=\"no aligned identifier\" HEADER.From = Example.COM", 0,
          "X", 1, "dmarc", "fail", "no aligned identifier", "Example.COM" },
        { "method version", "x.example; dmarc/1=pass header.from=example.com", 0, "x.example", 1,
          "dmarc", "pass", NULL, "example.com" },
        { "quoted id", "\"odd id\"; arc=pass smtp.remote-ip=192.0.2.1", 0, "odd id", 1,
          "arc", "pass", NULL, NULL },
        { "quoted property value", "x; dmarc=pass header.from=\"example.com\"", 0, "x", 1,
          "dmarc", "pass", NULL, "example.com" },
        { "addr-spec value", "x; spf=fail smtp.mailfrom=alice@example.com", 0, "x", 1,
          "spf", "fail", NULL, NULL },
        { "none", "x.example; none", 0, "x.example", 0, NULL, NULL, NULL, NULL },
        { "final semicolon", "x.example; dmarc=pass header.from=a.example;", 0, "x.example", 1,
          "dmarc", "pass", NULL, "a.example" },
        { "id only", "x.example", 0, "x.example", 0, NULL, NULL, NULL, NULL },

        { "empty", "", -EBADMSG },
        { "no id", "; dmarc=pass", -EBADMSG },
        { "no result", "x; dmarc header.from=a.example", -EBADMSG },
        { "empty result", "x; dmarc= header.from=a.example", -EBADMSG },
        { "property without dot", "x; dmarc=pass headerfrom=a.example", -EBADMSG },
        { "property without value", "x; dmarc=pass header.from=", -EBADMSG },
        { "unterminated comment", "x; dmarc=pass (oops header.from=a.example", -EBADMSG },
        { "unterminated quote", "x; dmarc=pass header.from=\"a.example", -EBADMSG },
        { "none and more", "x; none; dmarc=pass", -EBADMSG },
        { "two ids", "x y; dmarc=pass", -EBADMSG },
};

START_TEST(test_parse_table)
{
        for (size_t i = 0; i < ELEMENTSOF(parse_table); i++) {
                _cleanup_(auth_results_parsed_freep) AuthResultsParsed *p = NULL;
                const char *v = parse_table[i].value;
                int r;

                r = auth_results_parse(v, strlen(v), &p);
                ck_assert_msg(r == parse_table[i].ret, "%s: %d", parse_table[i].name, r);
                if (r < 0)
                        continue;
                ck_assert_str_eq(p->authserv_id, parse_table[i].id);
                ck_assert_msg(p->n_infos == parse_table[i].n_infos, "%s: %zu resinfos", parse_table[i].name,
                              p->n_infos);
                if (p->n_infos == 0)
                        continue;
                ck_assert_str_eq(p->infos[0].method, parse_table[i].method);
                ck_assert_str_eq(p->infos[0].result, parse_table[i].result);
                ck_assert_msg(streq_ptr(p->infos[0].reason, parse_table[i].reason), "%s: reason %s",
                              parse_table[i].name, strna(p->infos[0].reason));
                ck_assert_msg(streq_ptr(auth_results_info_property(&p->infos[0], "header", "from"),
                                        parse_table[i].header_from), "%s: header.from", parse_table[i].name);
        }
}
END_TEST

START_TEST(test_parse_limits)
{
        _cleanup_(auth_results_parsed_freep) AuthResultsParsed *p = NULL;
        _cleanup_free_ char *many = NULL, *props = NULL, *big = NULL;
        char *s;

        /* AUTH_RESULTS_MAX_METHODS resinfos pass, one more does not */
        many = strdup("x");
        for (unsigned i = 0; i < AUTH_RESULTS_MAX_METHODS; i++) {
                ck_assert_int_gt(asprintf_safe(&s, "%s; spf=pass", many), 0);
                free(many);
                many = s;
        }
        ck_assert_int_eq(auth_results_parse(many, strlen(many), &p), 0);
        ck_assert_uint_eq(p->n_infos, AUTH_RESULTS_MAX_METHODS);
        p = auth_results_parsed_free(p);
        ck_assert_int_gt(asprintf_safe(&s, "%s; spf=pass", many), 0);
        free(many);
        many = s;
        ck_assert_int_eq(auth_results_parse(many, strlen(many), &p), -E2BIG);

        props = strdup("x; dkim=pass");
        for (unsigned i = 0; i <= AUTH_RESULTS_MAX_PROPERTIES; i++) {
                ck_assert_int_gt(asprintf_safe(&s, "%s header.d=a.example", props), 0);
                free(props);
                props = s;
        }
        ck_assert_int_eq(auth_results_parse(props, strlen(props), &p), -E2BIG);

        big = malloc(AUTH_RESULTS_VALUE_MAX + 64);
        ck_assert_ptr_nonnull(big);
        strcpy(big, "x; dmarc=pass header.from=");
        memset(big + strlen(big), 'a', AUTH_RESULTS_VALUE_MAX + 1);
        big[26 + AUTH_RESULTS_VALUE_MAX + 1] = 0;
        ck_assert_int_eq(auth_results_parse(big, strlen(big), &p), -E2BIG);
}
END_TEST

/* The decision. Sets are given oldest first; each row names the DMARC outcome, the chain
 * status, the trusted sealers and whether (and by which instance) the message is rescued. */
typedef struct SetSpec {
        const char *domain;
        const char *aar;
} SetSpec;

static const struct {
        const char *name;
        DmarcVerdict verdict;
        DmarcPolicy disposition;
        ArcChainStatus chain;
        const char *trusted[3];
        SetSpec sets[3];
        int ret;
        unsigned instance;
} decision_table[] = {
        { "trusted sealer saw dmarc=pass", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "lists.example.net; dkim=pass header.d=example.com;"
                                       " dmarc=pass header.from=example.com" } }, 1, 1 },
        { "quarantine rescued too", DMARC_VERDICT_FAIL, DMARC_POLICY_QUARANTINE, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 1, 1 },
        { "case-insensitive domains", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "Lists.Example.NET" }, { { "lists.example.net", "a; DMARC=PASS header.from=EXAMPLE.com." } }, 1, 1 },
        { "untrusted sealer", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "other.example" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "nothing trusted", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { NULL }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "subdomain of a trusted sealer", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "chain fail", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_FAIL,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "chain none", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_NONE,
          { "lists.example.net" }, { { NULL } }, 0, 0 },
        { "AAR says dmarc=fail", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=fail header.from=example.com" } }, 0, 0 },
        { "AAR without dmarc", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dkim=pass header.d=example.com; spf=pass" } }, 0, 0 },
        { "AAR dmarc=pass for another From", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.org" } }, 0, 0 },
        { "AAR dmarc=pass for a parent domain", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=com" } }, 0, 0 },
        { "AAR dmarc=pass without header.from", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass" } }, 0, 0 },
        { "AAR does not parse", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass (header.from=example.com" } }, 0, 0 },
        { "pass in a comment only", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=fail (dmarc=pass) header.from=example.com" } },
          0, 0 },
        { "DMARC pass: nothing to override", DMARC_VERDICT_PASS, DMARC_POLICY_NONE, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "p=none: nothing to override", DMARC_VERDICT_FAIL, DMARC_POLICY_NONE, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "temperror is not rescued", DMARC_VERDICT_TEMPERROR, DMARC_POLICY_NONE, ARC_CHAIN_PASS,
          { "lists.example.net" }, { { "lists.example.net", "a; dmarc=pass header.from=example.com" } }, 0, 0 },
        { "trusted older set, untrusted newer", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" },
          { { "lists.example.net", "a; dmarc=pass header.from=example.com" },
            { "relay.example", "b; dmarc=fail header.from=example.com" } }, 1, 1 },
        { "the newest trusted set wins", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net", "relay.example" },
          { { "lists.example.net", "a; dmarc=pass header.from=example.com" },
            { "other.example", "b; none" },
            { "relay.example", "c; spf=fail; dmarc=pass header.from=example.com" } }, 1, 3 },
        { "newest trusted set without pass, older one with", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT,
          ARC_CHAIN_PASS, { "lists.example.net", "relay.example" },
          { { "lists.example.net", "a; dmarc=pass header.from=example.com" },
            { "relay.example", "c; dmarc=fail header.from=example.com" } }, 1, 1 },
        { "untrusted set claims the pass", DMARC_VERDICT_FAIL, DMARC_POLICY_REJECT, ARC_CHAIN_PASS,
          { "lists.example.net" },
          { { "lists.example.net", "a; dmarc=fail header.from=example.com" },
            { "evil.example", "lists.example.net; dmarc=pass header.from=example.com" } }, 0, 0 },
};

START_TEST(test_decision_table)
{
        for (size_t i = 0; i < ELEMENTSOF(decision_table); i++) {
                DmarcResult d = DMARC_RESULT_NULL;
                ArcSetInfo sets[3] = {};
                char *trusted[4] = {};
                DmarcArcOverride o = {};
                size_t n = 0;
                int r;

                d.verdict = decision_table[i].verdict;
                d.disposition = decision_table[i].disposition;
                d.from_domain = (char*) "example.com";
                for (size_t j = 0; j < 3 && decision_table[i].trusted[j]; j++)
                        trusted[j] = (char*) decision_table[i].trusted[j];
                for (; n < 3 && decision_table[i].sets[n].domain; n++) {
                        sets[n].instance = (unsigned) n + 1;
                        sets[n].domain = (char*) decision_table[i].sets[n].domain;
                        sets[n].selector = (char*) "sel";
                        sets[n].aar = (char*) decision_table[i].sets[n].aar;
                        sets[n].aar_len = strlen(sets[n].aar);
                }

                r = dmarc_arc_override(&d, decision_table[i].chain, sets, n, trusted, &o);
                ck_assert_msg(r == decision_table[i].ret, "%s: %d", decision_table[i].name, r);
                if (r > 0) {
                        ck_assert_msg(o.instance == decision_table[i].instance, "%s: instance %u",
                                      decision_table[i].name, o.instance);
                        ck_assert_str_eq(o.domain, sets[o.instance - 1].domain);
                        ck_assert_str_eq(o.selector, "sel");
                }
        }
}
END_TEST

/* A real chain: the original message, sealed by a list, then by a relay; the sets come
 * back oldest first with the seals' d=/s= and the payloads the sealers wrote. */
static const char base_msg[] =
        "From: Alice <alice@example.com>\r\n"
        "To: list@lists.example.net\r\n"
        "Subject: hello\r\n"
        "Date: Thu, 14 Jan 2015 15:00:01 -0800\r\n"
        "Message-ID: <1@example.com>\r\n"
        "\r\n"
        "Hello world.\r\n";

static char* seal(EVP_PKEY *k, const char *msg, ArcChainStatus chain, const char *domain, const char *selector,
                  const char *ar) {
        ArcSealer s = ARC_SEALER_INIT;
        _cleanup_free_ char *set = NULL;
        char *out = NULL;

        s.key = k;
        s.domain = domain;
        s.selector = selector;
        s.timestamp = 1700000000;
        ck_assert_int_eq(arc_seal(msg, strlen(msg), chain, ar, &s, &set), 0);
        ck_assert_int_gt(asprintf_safe(&out, "%s%s", set, msg), 0);
        return out;
}

START_TEST(test_sets_read)
{
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *broken = NULL;
        ArcSetInfo *sets = NULL;
        EVP_PKEY *k;
        size_t n = 99;
        char *p;

        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        ck_assert_ptr_nonnull(k);

        ck_assert_int_eq(arc_sets_read(base_msg, strlen(base_msg), &sets, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(sets);

        m1 = seal(k, base_msg, ARC_CHAIN_NONE, "Lists.Example.NET", "arc1",
                  "lists.example.net; dmarc=pass header.from=example.com");
        m2 = seal(k, m1, ARC_CHAIN_PASS, "relay.example", "r2", "relay.example; dmarc=fail\r\n header.from=example.com");
        ck_assert_int_eq(arc_sets_read(m2, strlen(m2), &sets, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(sets[0].instance, 1);
        ck_assert_str_eq(sets[0].domain, "lists.example.net");
        ck_assert_str_eq(sets[0].selector, "arc1");
        ck_assert_ptr_nonnull(strstr(sets[0].aar, "dmarc=pass header.from=example.com"));
        ck_assert_uint_eq(strlen(sets[0].aar), sets[0].aar_len);
        ck_assert_uint_eq(sets[1].instance, 2);
        ck_assert_str_eq(sets[1].domain, "relay.example");
        ck_assert_ptr_nonnull(strstr(sets[1].aar, "dmarc=fail"));
        arc_set_infos_free(sets, n);

        /* a set without its ARC-Seal: not structurally sound */
        broken = strdup(m2);
        ck_assert_ptr_nonnull(broken);
        p = strstr(broken, "ARC-Seal:");      /* the newest set is on top */
        ck_assert_ptr_nonnull(p);
        p[0] = 'X';
        ck_assert_int_eq(arc_sets_read(broken, strlen(broken), &sets, &n), -EBADMSG);

        EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_report_entry)
{
        _cleanup_(dmarc_report_entry_done) DmarcReportEntry e = DMARC_REPORT_ENTRY_NULL;
        _cleanup_(dmarc_report_entry_done) DmarcReportEntry bad = DMARC_REPORT_ENTRY_NULL;
        _cleanup_free_ char *line = NULL, *comment = NULL;
        DmarcReportEntry *back = NULL;
        size_t len, n = 0;
        unsigned skipped = 99;

        e.time = 1700000000;
        e.source_ip = strdup("192.0.2.7");
        e.header_from = strdup("example.com");
        e.policy_domain = strdup("example.com");
        e.fo = strdup("0");
        e.p = DMARC_POLICY_REJECT;
        e.sp = DMARC_POLICY_REJECT;
        e.disposition = DMARC_POLICY_REJECT;
        ck_assert(e.source_ip && e.header_from && e.policy_domain && e.fo);

        ck_assert_int_eq(dmarc_report_entry_set_arc_override(&e, 2, "lists.example.net", "arc1"), 0);
        ck_assert_int_eq(e.disposition, DMARC_POLICY_NONE);
        ck_assert_uint_eq(e.n_reasons, 1);
        ck_assert_int_eq(e.reasons[0].type, DMARC_OVERRIDE_LOCAL_POLICY);
        ck_assert_str_eq(e.reasons[0].comment, "arc=pass as[2].d=lists.example.net as[2].s=arc1");

        /* through the store line and back */
        ck_assert_int_eq(dmarc_store_format_line(&e, &line, &len), 0);
        ck_assert_int_eq(dmarc_store_parse(line, len, &back, &n, &skipped), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(skipped, 0);
        ck_assert_int_eq(back[0].disposition, DMARC_POLICY_NONE);
        ck_assert_int_eq(back[0].p, DMARC_POLICY_REJECT);
        ck_assert_uint_eq(back[0].n_reasons, 1);
        ck_assert_int_eq(back[0].reasons[0].type, DMARC_OVERRIDE_LOCAL_POLICY);
        ck_assert_str_eq(back[0].reasons[0].comment, "arc=pass as[2].d=lists.example.net as[2].s=arc1");
        dmarc_report_entries_free(back, n);

        ck_assert_int_eq(dmarc_report_arc_override_comment(0, "a.example", "s", &comment), -EINVAL);
        ck_assert_int_eq(dmarc_report_arc_override_comment(1, NULL, "s", &comment), -EINVAL);
        ck_assert_int_eq(dmarc_report_arc_override_comment(1, "a.example", "", &comment), -EINVAL);
        bad.disposition = DMARC_POLICY_REJECT;
        ck_assert_int_eq(dmarc_report_entry_set_arc_override(&bad, 0, "a.example", "s"), -EINVAL);
        ck_assert_int_eq(bad.disposition, DMARC_POLICY_REJECT);
        ck_assert_uint_eq(bad.n_reasons, 0);
}
END_TEST

static Suite* arc_override_suite(void) {
        Suite *s = suite_create("arc-override");
        TCase *tc;

        tc = tcase_create("Authentication-Results reader");
        tcase_add_test(tc, test_parse_table);
        tcase_add_test(tc, test_parse_limits);
        suite_add_tcase(s, tc);

        tc = tcase_create("decision");
        tcase_add_test(tc, test_decision_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("ARC sets");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_sets_read);
        suite_add_tcase(s, tc);

        tc = tcase_create("report record");
        tcase_add_test(tc, test_report_entry);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(arc_override_suite);
