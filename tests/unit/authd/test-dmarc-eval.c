/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "dmarc-eval.h"
#include "dns-answer.h"
#include "string-util.h"

/* ---- organizational domain ---- */

static bool have_psl(void) {
        _cleanup_free_ char *o = NULL;

        return dmarc_org_domain("example.com", &o) == 0;
}

START_TEST(test_org_domain_table)
{
        static const struct {
                const char *in;
                int r;
                const char *out;
        } t[] = {
                { "example.com",                0, "example.com" },
                { "EXAMPLE.Com",                0, "example.com" },
                { "mail.example.com",           0, "example.com" },
                { "a.b.c.example.com",          0, "example.com" },
                { "example.com.",               0, "example.com" },
                { "mail.example.com.",          0, "example.com" },
                { "co.uk",                      0, "co.uk" },          /* a public suffix is its own */
                { "com",                        0, "com" },
                { "example.co.uk",              0, "example.co.uk" },
                { "sub.example.co.uk",          0, "example.co.uk" },
                { "a.sub.example.co.uk",        0, "example.co.uk" },
                { "www.xn--fiqs8s",             0, "www.xn--fiqs8s" }, /* IDNA A-labels */
                { "a.b.xn--fiqs8s",             0, "b.xn--fiqs8s" },
                { "xn--bcher-kva.example",      0, "xn--bcher-kva.example" },
                { "mail.xn--bcher-kva.ch",      0, "xn--bcher-kva.ch" },
                { "user.github.io",             0, "user.github.io" },  /* private section */
                { "",                           -EINVAL, NULL },
                { ".",                          -EINVAL, NULL },
                { "a..example.com",             -EINVAL, NULL },
                { ".example.com",               -EINVAL, NULL },
                { "example.com..",              -EINVAL, NULL },
                { "exa mple.com",               -EINVAL, NULL },
                { "bücher.example",             -EINVAL, NULL },        /* U-labels: caller converts */
        };

        if (!have_psl()) {
                fprintf(stderr, "no public suffix list available, skipping the PSL table\n");
                return;
        }

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                _cleanup_free_ char *o = NULL;
                int r = dmarc_org_domain(t[i].in, &o);

                ck_assert_msg(r == t[i].r, "'%s': %d, expected %d", t[i].in, r, t[i].r);
                if (r == 0)
                        ck_assert_msg(streq(o, t[i].out), "'%s': '%s', expected '%s'", t[i].in, o, t[i].out);
        }

        _cleanup_free_ char *o = NULL;
        ck_assert_int_eq(dmarc_org_domain(NULL, &o), -EINVAL);
}
END_TEST

START_TEST(test_org_domain_fallback)
{
        static const struct {
                const char *in;
                const char *out;
        } t[] = {
                { "example.com", "example.com" },
                { "Mail.Example.COM.", "example.com" },
                { "sub.example.co.uk", "co.uk" },       /* why the fallback is only a fallback */
                { "com", "com" },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                _cleanup_free_ char *o = NULL;

                ck_assert_int_eq(dmarc_org_domain_last_two_labels(t[i].in, &o), 0);
                ck_assert_str_eq(o, t[i].out);
        }
}
END_TEST

START_TEST(test_normalize)
{
        _cleanup_free_ char *a = NULL, *b = NULL;
        char *c = NULL;
        char label[80], name[300];

        ck_assert_int_eq(dmarc_domain_normalize("Foo-Bar_1.EXAMPLE.", &a), 0);
        ck_assert_str_eq(a, "foo-bar_1.example");

        memset(label, 'a', 63);
        strcpy(label + 63, ".example");
        ck_assert_int_eq(dmarc_domain_normalize(label, &b), 0);
        memset(label, 'a', 64);
        strcpy(label + 64, ".example");
        ck_assert_int_eq(dmarc_domain_normalize(label, &c), -EINVAL);

        for (size_t i = 0; i < 127; i++)
                memcpy(name + 2 * i, "a.", 2);
        memcpy(name + 252, "ab", 3);   /* 254 octets */
        ck_assert_int_eq(dmarc_domain_normalize(name, &c), -EINVAL);
        name[253] = '\0';              /* 253 octets */
        ck_assert_int_eq(dmarc_domain_normalize(name, &c), 0);
        free(c);
}
END_TEST

/* ---- alignment ---- */

START_TEST(test_alignment_table)
{
        static const struct {
                const char *auth, *from;
                DmarcAlignment mode;
                bool expect;
        } t[] = {
                { "example.com", "example.com", DMARC_ALIGNMENT_STRICT, true },
                { "example.com", "example.com", DMARC_ALIGNMENT_RELAXED, true },
                { "EXAMPLE.COM.", "example.com", DMARC_ALIGNMENT_STRICT, true },
                { "mail.example.com", "example.com", DMARC_ALIGNMENT_RELAXED, true },
                { "mail.example.com", "example.com", DMARC_ALIGNMENT_STRICT, false },
                { "example.com", "news.example.com", DMARC_ALIGNMENT_RELAXED, true },
                { "example.com", "news.example.com", DMARC_ALIGNMENT_STRICT, false },
                { "a.example.com", "b.example.com", DMARC_ALIGNMENT_RELAXED, true },
                { "a.example.co.uk", "b.example.co.uk", DMARC_ALIGNMENT_RELAXED, true },
                { "example.co.uk", "other.co.uk", DMARC_ALIGNMENT_RELAXED, false },
                { "co.uk", "example.co.uk", DMARC_ALIGNMENT_RELAXED, false },
                { "example.net", "example.com", DMARC_ALIGNMENT_RELAXED, false },
                { "example.com.evil.example", "example.com", DMARC_ALIGNMENT_RELAXED, false },
                { "alice.github.io", "bob.github.io", DMARC_ALIGNMENT_RELAXED, false },
                { "", "example.com", DMARC_ALIGNMENT_RELAXED, false },
                { NULL, "example.com", DMARC_ALIGNMENT_RELAXED, false },
                { "[192.0.2.1]", "example.com", DMARC_ALIGNMENT_RELAXED, false },
        };

        if (!have_psl()) {
                fprintf(stderr, "no public suffix list available, skipping the alignment table\n");
                return;
        }

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                ck_assert_msg(dmarc_domains_aligned(t[i].auth, t[i].from, t[i].mode) == t[i].expect,
                              "%s vs %s (%s)", strna(t[i].auth), t[i].from,
                              dmarc_alignment_to_string(t[i].mode));
}
END_TEST

/* ---- discovery with a fake resolver ---- */

typedef struct FakeName {
        const char *name;
        DnsResult result;
        const char *txt[3];
} FakeName;

typedef struct Run {
        char *queries[16];
        size_t n_queries;
        char *auth_results;
} Run;

static void run_done(Run *run) {
        for (size_t i = 0; i < run->n_queries; i++)
                free(run->queries[i]);
        free(run->auth_results);
}

static void fake_lookup(const FakeName *zone, const char *name, DnsAnswer *ret) {
        *ret = (DnsAnswer) DNS_ANSWER_NULL;
        for (const FakeName *z = zone; z && z->name; z++) {
                if (!streq(z->name, name))
                        continue;
                ret->result = z->result;
                for (size_t i = 0; i < 3 && z->txt[i]; i++)
                        ck_assert_int_eq(dns_answer_add_txt(ret, z->txt[i], strlen(z->txt[i]), 300), 0);
                return;
        }
        ret->result = DNS_RESULT_NXDOMAIN;
}

/* Drives e to the end; returns its result (owned by e). */
static const DmarcResult* run_eval(DmarcEval *e, const FakeName *zone, Run *run) {
        const DmarcResult *res;
        const char *name;
        int r;

        while ((r = dmarc_eval_next(e, &name)) > 0) {
                DnsAnswer a;

                ck_assert_uint_lt(run->n_queries, 16);
                run->queries[run->n_queries] = strdup(name);
                ck_assert_ptr_nonnull(run->queries[run->n_queries]);
                run->n_queries++;
                fake_lookup(zone, name, &a);
                ck_assert_int_eq(dmarc_eval_feed(e, &a), 0);
                dns_answer_done(&a);
        }
        ck_assert_int_eq(r, 0);
        res = dmarc_eval_result(e);
        ck_assert_ptr_nonnull(res);
        ck_assert_uint_eq(res->n_lookups, run->n_queries);
        ck_assert_int_eq(dmarc_result_to_auth_results(res, &run->auth_results), 0);
        return res;
}

static void assert_queries(const Run *run, const char *const *expect) {
        size_t n = 0;

        while (expect[n])
                n++;
        ck_assert_msg(run->n_queries == n, "%zu queries, expected %zu", run->n_queries, n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(run->queries[i], expect[i]);
}

static const DmarcDkimResult dkim_example_pass[] = {
        { .domain = "example.com", .pass = true },
};

START_TEST(test_found_at_from_domain)
{
        static const FakeName zone[] = {
                { "_dmarc.example.com", DNS_RESULT_OK, { "v=spf1 -all", "v=DMARC1; p=reject" } },
                {}
        };
        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL, *e2 = NULL;
        _cleanup_(run_done) Run run = {}, run2 = {};
        const DmarcResult *res;
        DmarcInput in = {
                .from_domain = "Example.COM",
                .dkim = dkim_example_pass,
                .n_dkim = 1,
        };

        ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
        res = run_eval(e, zone, &run);
        assert_queries(&run, (const char *const[]) { "_dmarc.example.com", NULL });
        ck_assert_int_eq(res->verdict, DMARC_VERDICT_PASS);
        ck_assert(res->dkim_aligned);
        ck_assert(!res->spf_aligned);
        ck_assert_str_eq(res->dkim_aligned_domain, "example.com");
        ck_assert_str_eq(res->policy_domain, "example.com");
        ck_assert_str_eq(res->org_domain, "example.com");
        ck_assert_int_eq(res->policy, DMARC_POLICY_REJECT);
        ck_assert_int_eq(res->policy_source, DMARC_POLICY_SOURCE_P);
        ck_assert_int_eq(res->disposition, DMARC_POLICY_NONE);
        ck_assert_str_eq(run.auth_results, "dmarc=pass (p=reject dis=none) header.from=example.com");

        /* the same without any authentication: fail, reject */
        in.n_dkim = 0;
        in.dkim = NULL;
        ck_assert_int_eq(dmarc_eval_new(&in, &e2), 0);
        res = run_eval(e2, zone, &run2);
        ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
        ck_assert_int_eq(res->disposition, DMARC_POLICY_REJECT);
        ck_assert_str_eq(run2.auth_results, "dmarc=fail (p=reject dis=reject) header.from=example.com");
}
END_TEST

START_TEST(test_fallback_to_org_domain)
{
        static const FakeName zone[] = {
                { "_dmarc.mail.example.com", DNS_RESULT_OK, { "v=spf1 include:x -all" } },
                { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject; sp=quarantine" } },
                {}
        };
        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
        _cleanup_(run_done) Run run = {};
        const DmarcResult *res;
        DmarcInput in = { .from_domain = "mail.example.com." };

        ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
        res = run_eval(e, zone, &run);
        assert_queries(&run, (const char *const[]) { "_dmarc.mail.example.com", "_dmarc.example.com", NULL });
        ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
        ck_assert_str_eq(res->from_domain, "mail.example.com");
        ck_assert_str_eq(res->policy_domain, "example.com");
        ck_assert_int_eq(res->policy, DMARC_POLICY_QUARANTINE);
        ck_assert_int_eq(res->policy_source, DMARC_POLICY_SOURCE_SP);
        ck_assert_int_eq(res->disposition, DMARC_POLICY_QUARANTINE);
        ck_assert_str_eq(run.auth_results, "dmarc=fail (p=quarantine dis=quarantine) header.from=mail.example.com");
}
END_TEST

START_TEST(test_fallback_across_public_suffix)
{
        static const FakeName zone[] = {
                { "_dmarc.example.co.uk", DNS_RESULT_OK, { "v=DMARC1; p=none" } },
                {}
        };
        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
        _cleanup_(run_done) Run run = {};
        const DmarcResult *res;
        DmarcInput in = { .from_domain = "a.b.example.co.uk" };

        if (!have_psl())
                return;
        ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
        res = run_eval(e, zone, &run);
        /* RFC 7489 mode skips b.example.co.uk: From domain, then the org domain */
        assert_queries(&run, (const char *const[]) { "_dmarc.a.b.example.co.uk", "_dmarc.example.co.uk", NULL });
        ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
        ck_assert_int_eq(res->policy, DMARC_POLICY_NONE);
        ck_assert_int_eq(res->disposition, DMARC_POLICY_NONE);
}
END_TEST

START_TEST(test_policy_selection)
{
        static const struct {
                const char *record;
                const char *from;
                bool nonexistent;
                DmarcPolicy policy;
                DmarcPolicySource source;
        } t[] = {
                { "v=DMARC1; p=reject; sp=none; np=quarantine", "example.com", false,
                  DMARC_POLICY_REJECT, DMARC_POLICY_SOURCE_P },
                { "v=DMARC1; p=reject; sp=none; np=quarantine", "example.com", true,
                  DMARC_POLICY_REJECT, DMARC_POLICY_SOURCE_P },     /* found at the From domain */
                { "v=DMARC1; p=reject; sp=none; np=quarantine", "x.example.com", false,
                  DMARC_POLICY_NONE, DMARC_POLICY_SOURCE_SP },
                { "v=DMARC1; p=reject; sp=none; np=quarantine", "x.example.com", true,
                  DMARC_POLICY_QUARANTINE, DMARC_POLICY_SOURCE_NP },
                { "v=DMARC1; p=reject; sp=none", "x.example.com", true,
                  DMARC_POLICY_NONE, DMARC_POLICY_SOURCE_SP },      /* no np=: sp= */
                { "v=DMARC1; p=quarantine", "x.example.com", true,
                  DMARC_POLICY_QUARANTINE, DMARC_POLICY_SOURCE_SP }, /* no np=, no sp=: p= */
                { "v=DMARC1; p=none; np=reject", "x.example.com", false,
                  DMARC_POLICY_NONE, DMARC_POLICY_SOURCE_SP },
                { "v=DMARC1; p=quarantine", "x.example.com", false,
                  DMARC_POLICY_QUARANTINE, DMARC_POLICY_SOURCE_SP },
        };

        for (DmarcDiscovery mode = 0; mode < _DMARC_DISCOVERY_MAX; mode++)
                for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                        const FakeName zone[] = {
                                { "_dmarc.example.com", DNS_RESULT_OK, { t[i].record } },
                                {}
                        };
                        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                        _cleanup_(run_done) Run run = {};
                        const DmarcResult *res;
                        DmarcInput in = {
                                .from_domain = t[i].from,
                                .from_domain_nonexistent = t[i].nonexistent,
                                .discovery = mode,
                        };

                        ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                        res = run_eval(e, zone, &run);
                        ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
                        ck_assert_msg(res->policy == t[i].policy && res->policy_source == t[i].source,
                                      "case %zu mode %d: policy %d source %d", i, mode, res->policy,
                                      res->policy_source);
                        ck_assert_int_eq(res->disposition, t[i].policy);
                }
}
END_TEST

START_TEST(test_dns_failures)
{
        static const struct {
                FakeName zone[3];
                const char *from;
                DmarcVerdict verdict;
                unsigned lookups;
                const char *ar;
        } t[] = {
                { { { "_dmarc.example.com", DNS_RESULT_TEMPFAIL, {} }, {} },
                  "example.com", DMARC_VERDICT_TEMPERROR, 1, "dmarc=temperror header.from=example.com" },
                { { { "_dmarc.example.com", DNS_RESULT_TEMPFAIL, {} }, {} },
                  "a.example.com", DMARC_VERDICT_TEMPERROR, 2, "dmarc=temperror header.from=a.example.com" },
                { { { "_dmarc.a.example.com", DNS_RESULT_TEMPFAIL, {} },
                    { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject" } }, {} },
                  "a.example.com", DMARC_VERDICT_TEMPERROR, 1, "dmarc=temperror header.from=a.example.com" },
                { { { "_dmarc.example.com", DNS_RESULT_PERMFAIL, {} }, {} },
                  "example.com", DMARC_VERDICT_PERMERROR, 1, "dmarc=permerror header.from=example.com" },
                /* several records at the From domain: no DMARC, no fallback (RFC 7489) */
                { { { "_dmarc.a.example.com", DNS_RESULT_OK, { "v=DMARC1; p=none", "v=DMARC1; p=reject" } },
                    { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject" } }, {} },
                  "a.example.com", DMARC_VERDICT_NONE, 1, "dmarc=none header.from=a.example.com" },
                /* several at the org domain */
                { { { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=none", "v=DMARC1; p=reject" } }, {} },
                  "a.example.com", DMARC_VERDICT_NONE, 2, "dmarc=none header.from=a.example.com" },
                /* nothing anywhere: NXDOMAIN, then NODATA */
                { { { "_dmarc.example.com", DNS_RESULT_OK, {} }, {} },
                  "a.example.com", DMARC_VERDICT_NONE, 2, "dmarc=none header.from=a.example.com" },
                /* the From domain is the org domain: a single lookup */
                { { {} }, "example.com", DMARC_VERDICT_NONE, 1, "dmarc=none header.from=example.com" },
                /* an invalid record */
                { { { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=sometimes" } }, {} },
                  "example.com", DMARC_VERDICT_PERMERROR, 1, "dmarc=permerror header.from=example.com" },
                /* unusable From domains: no lookup at all */
                { { {} }, "exa mple.com", DMARC_VERDICT_PERMERROR, 0, "dmarc=permerror" },
                { { {} }, "localhost", DMARC_VERDICT_PERMERROR, 0, "dmarc=permerror" },
                { { {} }, "", DMARC_VERDICT_PERMERROR, 0, "dmarc=permerror" },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                const DmarcResult *res;
                DmarcInput in = { .from_domain = t[i].from };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, t[i].zone, &run);
                ck_assert_msg(res->verdict == t[i].verdict, "case %zu: verdict %s", i,
                              dmarc_verdict_to_string(res->verdict));
                ck_assert_uint_eq(res->n_lookups, t[i].lookups);
                ck_assert_str_eq(run.auth_results, t[i].ar);
                ck_assert_int_eq(res->disposition, DMARC_POLICY_NONE);
                if (res->verdict != DMARC_VERDICT_PASS)
                        ck_assert_ptr_nonnull(res->reason);
        }
}
END_TEST

START_TEST(test_tree_walk)
{
        static const FakeName zone[] = {
                { "_dmarc.b.example.com", DNS_RESULT_OK, { "v=DMARC1; p=quarantine" } },
                { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject" } },
                {}
        };
        static const FakeName zone_multi[] = {
                { "_dmarc.a.example.com", DNS_RESULT_OK, { "v=DMARC1; p=none", "v=DMARC1; p=none" } },
                { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject" } },
                {}
        };
        const DmarcResult *res;

        /* the walk finds the record of b.example.com, which RFC 7489 mode skips */
        for (DmarcDiscovery mode = 0; mode < _DMARC_DISCOVERY_MAX; mode++) {
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                DmarcInput in = { .from_domain = "a.b.example.com", .discovery = mode };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone, &run);
                if (mode == DMARC_DISCOVERY_TREE_WALK) {
                        assert_queries(&run, (const char *const[]) {
                                "_dmarc.a.b.example.com", "_dmarc.b.example.com", NULL });
                        ck_assert_str_eq(res->policy_domain, "b.example.com");
                        ck_assert_int_eq(res->policy, DMARC_POLICY_QUARANTINE);
                } else {
                        assert_queries(&run, (const char *const[]) {
                                "_dmarc.a.b.example.com", "_dmarc.example.com", NULL });
                        ck_assert_str_eq(res->policy_domain, "example.com");
                        ck_assert_int_eq(res->policy, DMARC_POLICY_REJECT);
                }
                ck_assert_int_eq(res->policy_source, DMARC_POLICY_SOURCE_SP);
        }

        /* several records at a name are discarded and the walk goes on */
        {
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                DmarcInput in = { .from_domain = "a.example.com", .discovery = DMARC_DISCOVERY_TREE_WALK };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone_multi, &run);
                assert_queries(&run, (const char *const[]) { "_dmarc.a.example.com", "_dmarc.example.com", NULL });
                ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
                ck_assert_int_eq(res->policy, DMARC_POLICY_REJECT);
        }

        /* long names: from 11 labels straight to 7, then one by one, found at 2 */
        {
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                DmarcInput in = {
                        .from_domain = "a.b.c.d.e.f.g.h.i.example.com",
                        .discovery = DMARC_DISCOVERY_TREE_WALK,
                };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone, &run);
                assert_queries(&run, (const char *const[]) {
                        "_dmarc.a.b.c.d.e.f.g.h.i.example.com",
                        "_dmarc.e.f.g.h.i.example.com",
                        "_dmarc.f.g.h.i.example.com",
                        "_dmarc.g.h.i.example.com",
                        "_dmarc.h.i.example.com",
                        "_dmarc.i.example.com",
                        "_dmarc.example.com",
                        NULL });
                ck_assert_int_eq(res->policy, DMARC_POLICY_REJECT);
        }

        /* nothing anywhere: at most DMARC_TREE_WALK_MAX lookups, down to the top level */
        {
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                DmarcInput in = {
                        .from_domain = "a.b.c.d.e.f.g.h.i.j.k.l.example.org",
                        .discovery = DMARC_DISCOVERY_TREE_WALK,
                };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, NULL, &run);
                ck_assert_uint_eq(run.n_queries, DMARC_TREE_WALK_MAX);
                ck_assert_str_eq(run.queries[DMARC_TREE_WALK_MAX - 1], "_dmarc.org");
                ck_assert_int_eq(res->verdict, DMARC_VERDICT_NONE);
        }

        /* a public suffix operator's record at the top level */
        {
                static const FakeName psd_zone[] = {
                        { "_dmarc.example", DNS_RESULT_OK, { "v=DMARC1; p=reject; psd=y; np=reject; sp=none" } },
                        {}
                };
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                DmarcInput in = {
                        .from_domain = "nosuch.example",
                        .from_domain_nonexistent = true,
                        .discovery = DMARC_DISCOVERY_TREE_WALK,
                };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, psd_zone, &run);
                assert_queries(&run, (const char *const[]) { "_dmarc.nosuch.example", "_dmarc.example", NULL });
                ck_assert_int_eq(res->policy, DMARC_POLICY_REJECT);
                ck_assert_int_eq(res->policy_source, DMARC_POLICY_SOURCE_NP);
                ck_assert_int_eq(res->record.psd, DMARC_PSD_YES);
        }
}
END_TEST

/* ---- identifiers ---- */

START_TEST(test_identifier_alignment)
{
        static const DmarcDkimResult dkim_mixed[] = {
                { .domain = "example.com", .pass = false },
                { .domain = "example.net", .pass = true },
                { .domain = "not a domain", .pass = true },
                { .domain = "sub.example.com", .pass = true },
        };
        static const DmarcDkimResult dkim_third_party[] = {
                { .domain = "example.com", .pass = false },
                { .domain = "esp.example", .pass = true },
        };
        static const struct {
                const char *record;
                bool spf_pass;
                const char *mail_from, *helo;
                const DmarcDkimResult *dkim;
                size_t n_dkim;
                bool spf_aligned, dkim_aligned;
                const char *dkim_domain;
        } t[] = {
                { "v=DMARC1; p=reject", true, "bounce.example.com", "mx.esp.example", NULL, 0, true, false, NULL },
                { "v=DMARC1; p=reject; aspf=s", true, "bounce.example.com", NULL, NULL, 0, false, false, NULL },
                { "v=DMARC1; p=reject; aspf=s", true, "Example.com", NULL, NULL, 0, true, false, NULL },
                { "v=DMARC1; p=reject", false, "example.com", NULL, NULL, 0, false, false, NULL },
                { "v=DMARC1; p=reject", true, "esp.example", "mail.example.com", NULL, 0, false, false, NULL },
                /* null reverse-path: SPF's identity is the HELO domain */
                { "v=DMARC1; p=reject", true, "", "mail.example.com", NULL, 0, true, false, NULL },
                { "v=DMARC1; p=reject", true, NULL, "mail.example.com", NULL, 0, true, false, NULL },
                { "v=DMARC1; p=reject; aspf=s", true, NULL, "mail.example.com", NULL, 0, false, false, NULL },
                { "v=DMARC1; p=reject", true, NULL, "[192.0.2.1]", NULL, 0, false, false, NULL },
                { "v=DMARC1; p=reject", false, NULL, NULL, dkim_mixed, 4, false, true, "sub.example.com" },
                { "v=DMARC1; p=reject; adkim=s", false, NULL, NULL, dkim_mixed, 4, false, false, NULL },
                { "v=DMARC1; p=reject", false, NULL, NULL, dkim_third_party, 2, false, false, NULL },
                { "v=DMARC1; p=reject", true, "example.com", NULL, dkim_example_pass, 1, true, true, "example.com" },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const FakeName zone[] = {
                        { "_dmarc.example.com", DNS_RESULT_OK, { t[i].record } },
                        {}
                };
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                const DmarcResult *res;
                DmarcInput in = {
                        .from_domain = "example.com",
                        .spf_pass = t[i].spf_pass,
                        .spf_mail_from_domain = t[i].mail_from,
                        .spf_helo_domain = t[i].helo,
                        .dkim = t[i].dkim,
                        .n_dkim = t[i].n_dkim,
                };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone, &run);
                ck_assert_msg(res->spf_aligned == t[i].spf_aligned && res->dkim_aligned == t[i].dkim_aligned,
                              "case %zu: spf %d dkim %d", i, res->spf_aligned, res->dkim_aligned);
                ck_assert_int_eq(res->verdict, t[i].spf_aligned || t[i].dkim_aligned ?
                                 DMARC_VERDICT_PASS : DMARC_VERDICT_FAIL);
                ck_assert(streq_ptr(res->dkim_aligned_domain, t[i].dkim_domain));
                ck_assert_int_eq(res->disposition, res->verdict == DMARC_VERDICT_PASS ?
                                 DMARC_POLICY_NONE : DMARC_POLICY_REJECT);
        }
}
END_TEST

START_TEST(test_pct_sampling)
{
        static const struct {
                const char *record;
                unsigned sample;
                DmarcPolicy disposition;
                bool sampled_out;
                const char *ar;
        } t[] = {
                { "v=DMARC1; p=reject; pct=30", 0, DMARC_POLICY_REJECT, false, "dmarc=fail (p=reject dis=reject) header.from=example.com" },
                { "v=DMARC1; p=reject; pct=30", 29, DMARC_POLICY_REJECT, false, NULL },
                { "v=DMARC1; p=reject; pct=30", 30, DMARC_POLICY_QUARANTINE, true, "dmarc=fail (p=reject dis=quarantine) header.from=example.com" },
                { "v=DMARC1; p=reject; pct=30", 99, DMARC_POLICY_QUARANTINE, true, NULL },
                { "v=DMARC1; p=quarantine; pct=50", 50, DMARC_POLICY_NONE, true, "dmarc=fail (p=quarantine dis=none) header.from=example.com" },
                { "v=DMARC1; p=quarantine; pct=50", 49, DMARC_POLICY_QUARANTINE, false, NULL },
                { "v=DMARC1; p=reject; pct=0", 0, DMARC_POLICY_QUARANTINE, true, NULL },
                { "v=DMARC1; p=reject", 99, DMARC_POLICY_REJECT, false, NULL },
                { "v=DMARC1; p=none; pct=10", 50, DMARC_POLICY_NONE, true, NULL },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const FakeName zone[] = {
                        { "_dmarc.example.com", DNS_RESULT_OK, { t[i].record } },
                        {}
                };
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                const DmarcResult *res;
                DmarcInput in = { .from_domain = "example.com", .sample = t[i].sample };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone, &run);
                ck_assert_int_eq(res->verdict, DMARC_VERDICT_FAIL);
                ck_assert_msg(res->disposition == t[i].disposition && res->sampled_out == t[i].sampled_out,
                              "case %zu: disposition %s sampled_out %d", i,
                              dmarc_policy_to_string(res->disposition), res->sampled_out);
                if (t[i].ar)
                        ck_assert_str_eq(run.auth_results, t[i].ar);
        }

        /* a pass is never sampled */
        {
                const FakeName zone[] = {
                        { "_dmarc.example.com", DNS_RESULT_OK, { "v=DMARC1; p=reject; pct=50" } },
                        {}
                };
                _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
                _cleanup_(run_done) Run run = {};
                const DmarcResult *res;
                DmarcInput in = { .from_domain = "example.com", .sample = 99, .dkim = dkim_example_pass, .n_dkim = 1 };

                ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
                res = run_eval(e, zone, &run);
                ck_assert_int_eq(res->verdict, DMARC_VERDICT_PASS);
                ck_assert_int_eq(res->disposition, DMARC_POLICY_NONE);
                ck_assert(!res->sampled_out);
        }
}
END_TEST

START_TEST(test_step_api)
{
        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
        DmarcEval *bad = NULL;
        DnsAnswer a = DNS_ANSWER_NULL;
        const char *name = NULL, *name2 = NULL;
        DmarcInput in = { .from_domain = "example.com" };

        in.sample = 100;
        ck_assert_int_eq(dmarc_eval_new(&in, &bad), -EINVAL);
        in.sample = 0;
        in.discovery = _DMARC_DISCOVERY_MAX;
        ck_assert_int_eq(dmarc_eval_new(&in, &bad), -EINVAL);
        in.discovery = DMARC_DISCOVERY_RFC7489;
        in.n_dkim = 1;
        ck_assert_int_eq(dmarc_eval_new(&in, &bad), -EINVAL);
        in.n_dkim = 0;
        ck_assert_ptr_null(bad);

        ck_assert_int_eq(dmarc_eval_new(&in, &e), 0);
        ck_assert_int_eq(dmarc_eval_feed(e, &a), -EBUSY);               /* nothing asked yet */
        ck_assert_int_eq(dmarc_eval_next(e, &name), 1);
        ck_assert_str_eq(name, "_dmarc.example.com");
        ck_assert_int_eq(dmarc_eval_next(e, &name2), -EBUSY);           /* answer outstanding */
        ck_assert_ptr_null(dmarc_eval_result(e));
        ck_assert_int_eq(dmarc_eval_feed(e, &a), 0);                    /* NODATA */
        ck_assert_int_eq(dmarc_eval_next(e, &name), 0);
        ck_assert_int_eq(dmarc_eval_feed(e, &a), -EBUSY);               /* done */
        ck_assert_ptr_nonnull(dmarc_eval_result(e));
        ck_assert_int_eq(dmarc_eval_result(e)->verdict, DMARC_VERDICT_NONE);
        ck_assert_ptr_null(dmarc_eval_free(NULL));
}
END_TEST

START_TEST(test_verdict_strings)
{
        ck_assert_str_eq(dmarc_verdict_to_string(DMARC_VERDICT_NONE), "none");
        ck_assert_str_eq(dmarc_verdict_to_string(DMARC_VERDICT_PASS), "pass");
        ck_assert_str_eq(dmarc_verdict_to_string(DMARC_VERDICT_FAIL), "fail");
        ck_assert_str_eq(dmarc_verdict_to_string(DMARC_VERDICT_TEMPERROR), "temperror");
        ck_assert_str_eq(dmarc_verdict_to_string(DMARC_VERDICT_PERMERROR), "permerror");
        ck_assert_ptr_null(dmarc_verdict_to_string(_DMARC_VERDICT_MAX));
}
END_TEST

/* ---- RFC5322.From ---- */

START_TEST(test_from_extract_table)
{
        static const struct {
                const char *value;
                int r;
                const char *domain;
        } t[] = {
                { "user@example.com",                           0, "example.com" },
                { " user@Example.COM ",                         0, "example.com" },
                { "User <user@example.com>",                    0, "example.com" },
                { "<user@example.com>",                         0, "example.com" },
                { "\"Doe, John\" <john@example.com>",           0, "example.com" },
                { "\"a@evil.example\" <john@example.com>",      0, "example.com" },
                { "\"evil.example>\" <john@example.com>",       0, "example.com" },
                { "John Doe <john@example.com> (work)",         0, "example.com" },
                { "(comment) john@example.com",                 0, "example.com" },
                { "john@example.com (John (the) Doe)",          0, "example.com" },
                { "john@(c)example.com",                        0, "example.com" },
                { "\"john@x\"@example.com",                     0, "example.com" },
                { "\"quoted \\\" quote\" <q@example.com>",      0, "example.com" },
                { "=?utf-8?q?J=C3=B6rg?= <j@example.de>",       0, "example.de" },
                { "Folded\r\n <a@example.com>",                 0, "example.com" },
                { "<@route.example:a@example.com>",             0, "example.com" },
                { "user@sub.EXAMPLE.co.uk",                     0, "sub.example.co.uk" },
                { "user@xn--bcher-kva.example",                 0, "xn--bcher-kva.example" },
                { "a@example.com,",                             0, "example.com" },
                { "group: a@example.com;",                      0, "example.com" },
                { "a@example.com, b@example.net",               -ENOTUNIQ, NULL },
                { "a@example.com, b@example.com",               -ENOTUNIQ, NULL },
                { "A <a@example.com>, B <b@example.org>",       -ENOTUNIQ, NULL },
                { "group: a@example.com, b@example.org;",       -ENOTUNIQ, NULL },
                { "",                                           -ENXIO, NULL },
                { "   ",                                        -ENXIO, NULL },
                { "(only a comment)",                           -ENXIO, NULL },
                { "undisclosed-recipients:;",                   -ENXIO, NULL },
                { "Name <>",                                    -EBADMSG, NULL },
                { "user",                                       -EBADMSG, NULL },
                { "user@",                                      -EBADMSG, NULL },
                { "@example.com",                               -EBADMSG, NULL },
                { "user@[192.0.2.1]",                           -EBADMSG, NULL },
                { "Name <user@example.com",                     -EBADMSG, NULL },
                { "Name <user@example.com> trailing",           -EBADMSG, NULL },
                { "Name <<user@example.com>>",                  -EBADMSG, NULL },
                { "user@exa mple.com",                          -EBADMSG, NULL },
                { "user@example.com.",                          -EBADMSG, NULL },
                { "user@-",                                     0, "-" },       /* no TLD check here */
                { "(unclosed user@example.com",                 -EBADMSG, NULL },
                { "unopened) user@example.com",                 -EBADMSG, NULL },
                { "\"unclosed <user@example.com>",              -EBADMSG, NULL },
                { "a.@example.com",                             -EBADMSG, NULL },
                { "a..b@example.com",                           -EBADMSG, NULL },
                { ".a@example.com",                             -EBADMSG, NULL },
                { "a@b@example.com",                            -EBADMSG, NULL },
                { "John Doe john@example.com",                  -EBADMSG, NULL },
                { "group: a@example.com",                       -EBADMSG, NULL },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                _cleanup_free_ char *d = NULL;
                int r = dmarc_from_domain_extract(t[i].value, strlen(t[i].value), &d);

                ck_assert_msg(r == t[i].r, "'%s': %d, expected %d", t[i].value, r, t[i].r);
                if (r == 0)
                        ck_assert_msg(streq(d, t[i].domain), "'%s': '%s'", t[i].value, d);
                else
                        ck_assert_ptr_null(d);
        }
}
END_TEST

START_TEST(test_from_extract_nul)
{
        static const char v[] = "a@example.com\0, b@example.net";
        _cleanup_free_ char *d = NULL;

        ck_assert_int_eq(dmarc_from_domain_extract(v, sizeof(v) - 1, &d), -EBADMSG);
        ck_assert_int_eq(dmarc_from_domain_extract(v, strlen(v), &d), 0);
        ck_assert_str_eq(d, "example.com");
}
END_TEST

static Suite* dmarc_eval_suite(void) {
        Suite *s = suite_create("dmarc-eval");
        TCase *tc;

        tc = tcase_create("domains");
        tcase_add_test(tc, test_org_domain_table);
        tcase_add_test(tc, test_org_domain_fallback);
        tcase_add_test(tc, test_normalize);
        tcase_add_test(tc, test_alignment_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("discovery");
        tcase_add_test(tc, test_found_at_from_domain);
        tcase_add_test(tc, test_fallback_to_org_domain);
        tcase_add_test(tc, test_fallback_across_public_suffix);
        tcase_add_test(tc, test_policy_selection);
        tcase_add_test(tc, test_dns_failures);
        tcase_add_test(tc, test_tree_walk);
        tcase_add_test(tc, test_step_api);
        suite_add_tcase(s, tc);

        tc = tcase_create("evaluation");
        tcase_add_test(tc, test_identifier_alignment);
        tcase_add_test(tc, test_pct_sampling);
        tcase_add_test(tc, test_verdict_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("from");
        tcase_add_test(tc, test_from_extract_table);
        tcase_add_test(tc, test_from_extract_nul);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(dmarc_eval_suite);
