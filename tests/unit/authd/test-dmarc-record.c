/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "dmarc-record.h"
#include "dns-answer.h"
#include "string-util.h"

/* A compact description of a parsed record: "p=" always, every other tag only when it
 * differs from its default; '*' after the policy marks p_from_rua; "inv=" lists the tags
 * of DmarcRecord.invalid_tags. */
static char* dump(const DmarcRecord *r) {
        static const char* const tag_names[] = {
                "p", "sp", "np", "adkim", "aspf", "pct", "rua", "ruf", "fo", "rf", "ri", "psd", "other",
        };
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        fprintf(f, "p=%s%s", dmarc_policy_to_string(r->p), r->p_from_rua ? "*" : "");
        if (r->sp >= 0)
                fprintf(f, " sp=%s", dmarc_policy_to_string(r->sp));
        if (r->np >= 0)
                fprintf(f, " np=%s", dmarc_policy_to_string(r->np));
        if (r->adkim != DMARC_ALIGNMENT_RELAXED)
                fprintf(f, " adkim=%s", dmarc_alignment_to_string(r->adkim));
        if (r->aspf != DMARC_ALIGNMENT_RELAXED)
                fprintf(f, " aspf=%s", dmarc_alignment_to_string(r->aspf));
        if (r->pct != 100)
                fprintf(f, " pct=%u", r->pct);
        for (int k = 0; k < 2; k++) {
                const DmarcUri *u = k == 0 ? r->rua : r->ruf;
                size_t n = k == 0 ? r->n_rua : r->n_ruf;

                for (size_t i = 0; i < n; i++) {
                        fprintf(f, "%s%s", i == 0 ? (k == 0 ? " rua=" : " ruf=") : ",", u[i].uri);
                        if (u[i].max_size > 0)
                                fprintf(f, "!%llu", (unsigned long long) u[i].max_size);
                }
        }
        if (r->fo != DMARC_FO_ALL_FAIL)
                fprintf(f, " fo=%s%s%s%s",
                        r->fo & DMARC_FO_ALL_FAIL ? "0" : "", r->fo & DMARC_FO_ANY_FAIL ? "1" : "",
                        r->fo & DMARC_FO_DKIM ? "d" : "", r->fo & DMARC_FO_SPF ? "s" : "");
        if (r->rf != DMARC_RF_AFRF)
                fprintf(f, " rf=%x", (unsigned) r->rf);
        if (r->ri != 86400)
                fprintf(f, " ri=%u", r->ri);
        if (r->psd != DMARC_PSD_UNSPECIFIED)
                fprintf(f, " psd=%s", r->psd == DMARC_PSD_YES ? "y" : "n");
        if (r->invalid_tags) {
                bool first = true;

                fputs(" inv=", f);
                for (size_t i = 0; i < sizeof(tag_names) / sizeof(tag_names[0]); i++)
                        if (r->invalid_tags & (1U << i)) {
                                fprintf(f, "%s%s", first ? "" : ",", tag_names[i]);
                                first = false;
                        }
        }
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

static const struct {
        const char *name;
        const char *input;
        int r;                  /* expected return */
        const char *expect;     /* dump() of the record, when r == 0 */
} cases[] = {
        { "minimal none",               "v=DMARC1; p=none", 0, "p=none" },
        { "minimal reject, no space",   "v=DMARC1;p=reject", 0, "p=reject" },
        { "trailing separator",         "v=DMARC1; p=quarantine;", 0, "p=quarantine" },
        { "spaces around '='",          "v = DMARC1 ; p = reject ", 0, "p=reject" },
        { "tabs",                       "v=DMARC1;\tp=reject\t;", 0, "p=reject" },
        { "tag names and values ci",    "V=DMARC1; P=Reject; ADKIM=S", 0, "p=reject adkim=s" },
        { "empty pieces tolerated",     "v=DMARC1;;p=reject; ;", 0, "p=reject" },
        { "version value is exact",     "v=dmarc1; p=none", -EBADMSG, NULL },
        { "version must be first",      "p=none; v=DMARC1", -EBADMSG, NULL },
        { "version DMARC10",            "v=DMARC10; p=none", -EBADMSG, NULL },
        { "version DMARC2",             "v=DMARC2; p=none", -EBADMSG, NULL },
        { "leading space before v",     " v=DMARC1; p=none", -EBADMSG, NULL },
        { "no separator after version", "v=DMARC1 p=none", -EBADMSG, NULL },
        { "empty record",               "", -EBADMSG, NULL },
        { "version only",               "v=DMARC1", -EBADMSG, NULL },
        { "SPF record",                 "v=spf1 -all", -EBADMSG, NULL },
        { "rua without p: p=none",      "v=DMARC1; rua=mailto:d@example.com", 0,
          "p=none* rua=mailto:d@example.com" },
        { "invalid p with rua",         "v=DMARC1; p=bogus; rua=mailto:d@example.com", 0,
          "p=none* rua=mailto:d@example.com inv=p" },
        { "invalid p, no rua",          "v=DMARC1; p=bogus", -EBADMSG, NULL },
        { "invalid p, invalid rua",     "v=DMARC1; p=bogus; rua=d@example.com", -EBADMSG, NULL },
        { "empty p",                    "v=DMARC1; p=", -EBADMSG, NULL },
        { "invalid sp, no rua",         "v=DMARC1; p=reject; sp=bogus", -EBADMSG, NULL },
        { "invalid sp with rua",        "v=DMARC1; p=reject; sp=bogus; rua=mailto:a@b.example", 0,
          "p=none* rua=mailto:a@b.example inv=sp" },
        { "sp and np",                  "v=DMARC1; p=reject; sp=none; np=quarantine", 0,
          "p=reject sp=none np=quarantine" },
        { "invalid np ignored",         "v=DMARC1; p=reject; np=maybe", 0, "p=reject inv=np" },
        { "strict alignment",           "v=DMARC1; p=reject; adkim=s; aspf=s", 0, "p=reject adkim=s aspf=s" },
        { "invalid adkim",              "v=DMARC1; p=reject; adkim=x; aspf=relaxed", 0,
          "p=reject inv=adkim,aspf" },
        { "pct 0",                      "v=DMARC1; p=reject; pct=0", 0, "p=reject pct=0" },
        { "pct 100",                    "v=DMARC1; p=reject; pct=100", 0, "p=reject" },
        { "pct leading zero",           "v=DMARC1; p=reject; pct=050", 0, "p=reject pct=50" },
        { "pct 101",                    "v=DMARC1; p=reject; pct=101", 0, "p=reject inv=pct" },
        { "pct negative",               "v=DMARC1; p=reject; pct=-1", 0, "p=reject inv=pct" },
        { "pct four digits",            "v=DMARC1; p=reject; pct=0100", 0, "p=reject inv=pct" },
        { "pct empty",                  "v=DMARC1; p=reject; pct=", 0, "p=reject inv=pct" },
        { "rua with sizes",             "v=DMARC1; p=none; rua=mailto:a@example.com!10m, mailto:b@example.net!5", 0,
          "p=none rua=mailto:a@example.com!10485760,mailto:b@example.net!5" },
        { "rua size units",             "v=DMARC1; p=none; rua=mailto:a@x.example!1k,mailto:b@x.example!2G,mailto:c@x.example!1t", 0,
          "p=none rua=mailto:a@x.example!1024,mailto:b@x.example!2147483648,mailto:c@x.example!1099511627776" },
        { "rua bad unit dropped",       "v=DMARC1; p=reject; rua=mailto:a@example.com!10x", 0, "p=reject inv=rua" },
        { "rua empty size dropped",     "v=DMARC1; p=reject; rua=mailto:a@example.com!", 0, "p=reject inv=rua" },
        { "rua size overflow dropped",  "v=DMARC1; p=reject; rua=mailto:a@x.example!18446744073709551615t,mailto:b@x.example", 0,
          "p=reject rua=mailto:b@x.example inv=rua" },
        { "rua no scheme dropped",      "v=DMARC1; p=reject; rua=nocolon", 0, "p=reject inv=rua" },
        { "rua empty after scheme",     "v=DMARC1; p=reject; rua=mailto:", 0, "p=reject inv=rua" },
        { "rua space inside dropped",   "v=DMARC1; p=reject; rua=mailto:a b@x.example", 0, "p=reject inv=rua" },
        { "rua percent-encoded comma",  "v=DMARC1; p=none; rua=mailto:a%2cb@x.example", 0,
          "p=none rua=mailto:a%2cb@x.example" },
        { "rua bad percent",            "v=DMARC1; p=none; rua=mailto:a%2@x.example", 0, "p=none inv=rua" },
        { "rua https",                  "v=DMARC1; p=none; rua = mailto:a@x.example , https://r.example/in?x=1", 0,
          "p=none rua=mailto:a@x.example,https://r.example/in?x=1" },
        { "ruf",                        "v=DMARC1; p=none; ruf=mailto:f@x.example!1k", 0,
          "p=none ruf=mailto:f@x.example!1024" },
        { "fo list",                    "v=DMARC1; p=none; fo=1:d:s", 0, "p=none fo=1ds" },
        { "fo invalid",                 "v=DMARC1; p=none; fo=2", 0, "p=none inv=fo" },
        { "fo empty item",              "v=DMARC1; p=none; fo=1::d", 0, "p=none inv=fo" },
        { "rf afrf with unknown",       "v=DMARC1; p=none; rf=afrf:iodef", 0, "p=none" },
        { "rf only unknown",            "v=DMARC1; p=none; rf=iodef", 0, "p=none inv=rf" },
        { "ri",                         "v=DMARC1; p=none; ri=3600", 0, "p=none ri=3600" },
        { "ri not a number",            "v=DMARC1; p=none; ri=1h", 0, "p=none inv=ri" },
        { "ri overflow",                "v=DMARC1; p=none; ri=4294967296", 0, "p=none inv=ri" },
        { "ri max",                     "v=DMARC1; p=none; ri=4294967295", 0, "p=none ri=4294967295" },
        { "psd y",                      "v=DMARC1; p=reject; psd=y", 0, "p=reject psd=y" },
        { "psd invalid",                "v=DMARC1; p=reject; psd=maybe", 0, "p=reject inv=psd" },
        { "unknown tags ignored",       "v=DMARC1; p=reject; t=y; xfoo=bar; future_tag=1", 0, "p=reject" },
        { "tag name with '-'",          "v=DMARC1; p=reject; x-foo=bar", 0, "p=reject inv=other" },
        { "piece without '='",          "v=DMARC1; p=reject; garbage", 0, "p=reject inv=other" },
        { "piece with bad name",        "v=DMARC1; p=reject; 1x=2; =3", 0, "p=reject inv=other" },
        { "duplicate p",                "v=DMARC1; p=reject; p=none", -EBADMSG, NULL },
        { "duplicate rua",              "v=DMARC1; p=none; rua=mailto:a@x.example; rua=mailto:b@x.example", -EBADMSG, NULL },
        { "duplicate v",                "v=DMARC1; p=reject; v=DMARC1", -EBADMSG, NULL },
        { "duplicate, other case",      "v=DMARC1; p=reject; P=none", -EBADMSG, NULL },
        { "line feed",                  "v=DMARC1; p=reject\n", -EBADMSG, NULL },
        { "control character",          "v=DMARC1; p=re\x01ject", -EBADMSG, NULL },
        { "full record",                "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=25; "
                                        "rua=mailto:agg@example.com; ruf=mailto:ff@example.com; fo=0:1; rf=afrf; ri=43200", 0,
          "p=quarantine sp=reject adkim=s pct=25 rua=mailto:agg@example.com ruf=mailto:ff@example.com fo=01 ri=43200" },
};

START_TEST(test_parse_table)
{
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                DmarcRecord rec = DMARC_RECORD_NULL;
                const char *reason = NULL;
                int r;

                r = dmarc_record_parse(cases[i].input, strlen(cases[i].input), &rec, &reason);
                ck_assert_msg(r == cases[i].r, "%s: '%s' returned %d, expected %d (%s)",
                              cases[i].name, cases[i].input, r, cases[i].r, strna(reason));
                if (r < 0) {
                        ck_assert_msg(reason != NULL, "%s: no reason", cases[i].name);
                        /* *ret untouched on failure */
                        ck_assert_int_eq(rec.p, _DMARC_POLICY_INVALID);
                        ck_assert_ptr_null(rec.rua);
                        continue;
                }

                _cleanup_free_ char *d = dump(&rec);
                ck_assert_msg(streq(d, cases[i].expect), "%s: got '%s', expected '%s'",
                              cases[i].name, d, cases[i].expect);
                ck_assert_int_eq(dmarc_record_is_dmarc(cases[i].input, strlen(cases[i].input)), true);
                dmarc_record_done(&rec);
        }
}
END_TEST

START_TEST(test_parse_reasons)
{
        DmarcRecord rec = DMARC_RECORD_NULL;
        const char *reason = NULL;

        ck_assert_int_eq(dmarc_record_parse("v=DMARC1; p=bogus", 17, &rec, &reason), -EBADMSG);
        ck_assert_str_eq(reason, "invalid p= value and no valid rua= URI");
        ck_assert_int_eq(dmarc_record_parse("v=DMARC1; sp=none", 17, &rec, &reason), -EBADMSG);
        ck_assert_str_eq(reason, "no p= tag and no valid rua= URI");
        ck_assert_int_eq(dmarc_record_parse("v=DMARC2", 8, &rec, &reason), -EBADMSG);
        ck_assert_str_eq(reason, "record does not start with v=DMARC1");
        /* NULL reason pointer is allowed */
        ck_assert_int_eq(dmarc_record_parse("x", 1, &rec, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_parse_embedded_nul)
{
        static const char s[] = "v=DMARC1; p=reject\0; p=none";
        DmarcRecord rec = DMARC_RECORD_NULL;

        ck_assert_int_eq(dmarc_record_parse(s, sizeof(s) - 1, &rec, NULL), -EBADMSG);
        /* without the tail the same bytes parse */
        ck_assert_int_eq(dmarc_record_parse(s, strlen(s), &rec, NULL), 0);
        ck_assert_int_eq(rec.p, DMARC_POLICY_REJECT);
        dmarc_record_done(&rec);
}
END_TEST

START_TEST(test_parse_not_nul_terminated)
{
        /* only len bytes are read: "v=DMARC1; p=none" out of a longer buffer */
        static const char s[] = "v=DMARC1; p=nonesuch";
        DmarcRecord rec = DMARC_RECORD_NULL;

        ck_assert_int_eq(dmarc_record_parse(s, 16, &rec, NULL), 0);
        ck_assert_int_eq(rec.p, DMARC_POLICY_NONE);
        dmarc_record_done(&rec);
}
END_TEST

START_TEST(test_parse_limits)
{
        _cleanup_free_ char *big = NULL, *many = NULL;
        DmarcRecord rec = DMARC_RECORD_NULL;
        size_t n = DMARC_RECORD_MAX + 1;
        FILE *f;
        size_t size = 0;

        big = malloc(n + 1);
        ck_assert_ptr_nonnull(big);
        memcpy(big, "v=DMARC1; p=none; x=", 20);
        memset(big + 20, 'a', n - 20);
        big[n] = '\0';
        ck_assert_int_eq(dmarc_record_parse(big, n, &rec, NULL), -E2BIG);
        ck_assert_int_eq(dmarc_record_parse(big, n - 1, &rec, NULL), 0);
        dmarc_record_done(&rec);

        /* more than DMARC_URIS_MAX report URIs: the first ones are kept */
        f = open_memstream(&many, &size);
        ck_assert_ptr_nonnull(f);
        fputs("v=DMARC1; p=none; rua=", f);
        for (unsigned i = 0; i < DMARC_URIS_MAX + 3; i++)
                fprintf(f, "%smailto:r%u@x.example", i ? "," : "", i);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(dmarc_record_parse(many, strlen(many), &rec, NULL), 0);
        ck_assert_uint_eq(rec.n_rua, DMARC_URIS_MAX);
        ck_assert_str_eq(rec.rua[0].uri, "mailto:r0@x.example");
        ck_assert_str_eq(rec.rua[DMARC_URIS_MAX - 1].uri, "mailto:r15@x.example");
        ck_assert(rec.invalid_tags & DMARC_TAG_RUA);
        dmarc_record_done(&rec);
}
END_TEST

START_TEST(test_is_dmarc)
{
        static const struct {
                const char *s;
                bool expect;
        } t[] = {
                { "v=DMARC1", true },
                { "v=DMARC1;", true },
                { "v=DMARC1 ;p=none", true },
                { "v =\tDMARC1; p=none", true },
                { "v=DMARC1x", false },
                { "v=DMARC", false },
                { "v=dmarc1", false },
                { "v=spf1 -all", false },
                { "", false },
                { "x v=DMARC1", false },
        };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                ck_assert_msg(dmarc_record_is_dmarc(t[i].s, strlen(t[i].s)) == t[i].expect, "'%s'", t[i].s);
}
END_TEST

START_TEST(test_policy_strings)
{
        ck_assert_str_eq(dmarc_policy_to_string(DMARC_POLICY_NONE), "none");
        ck_assert_str_eq(dmarc_policy_to_string(DMARC_POLICY_QUARANTINE), "quarantine");
        ck_assert_str_eq(dmarc_policy_to_string(DMARC_POLICY_REJECT), "reject");
        ck_assert_ptr_null(dmarc_policy_to_string(_DMARC_POLICY_INVALID));
        ck_assert_ptr_null(dmarc_policy_to_string(_DMARC_POLICY_MAX));
        ck_assert_int_eq(dmarc_policy_from_string("REJECT"), DMARC_POLICY_REJECT);
        ck_assert_int_eq(dmarc_policy_from_string("rejected"), _DMARC_POLICY_INVALID);
        ck_assert_int_eq(dmarc_policy_from_string(NULL), _DMARC_POLICY_INVALID);
}
END_TEST

static void add_txt(DnsAnswer *a, const char *s) {
        ck_assert_int_eq(dns_answer_add_txt(a, s, strlen(s), 300), 0);
}

START_TEST(test_select)
{
        DnsAnswer a = DNS_ANSWER_NULL;
        DmarcRecord rec = DMARC_RECORD_NULL;
        const char *reason = NULL;

        /* NODATA */
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), 0);

        /* only non-DMARC TXT records */
        add_txt(&a, "v=spf1 -all");
        add_txt(&a, "google-site-verification=abc");
        add_txt(&a, "v=DMARC10; p=reject");
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), 0);

        /* a non-TXT record holding the same text is not a candidate */
        ck_assert_int_eq(dns_answer_add_name(&a, DNS_TYPE_CNAME, "v=DMARC1; p=none", 300), 0);
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), 0);

        /* one DMARC record among others */
        add_txt(&a, "v=DMARC1; p=quarantine; pct=50");
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), 1);
        ck_assert_int_eq(rec.p, DMARC_POLICY_QUARANTINE);
        ck_assert_uint_eq(rec.pct, 50);
        dmarc_record_done(&rec);

        /* two: no DMARC at all */
        add_txt(&a, "v=DMARC1; p=reject");
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), -ENOTUNIQ);
        ck_assert_str_eq(reason, "several v=DMARC1 records");
        dns_answer_done(&a);

        /* a single but invalid one */
        add_txt(&a, "v=DMARC1; p=maybe");
        ck_assert_int_eq(dmarc_record_select(&a, &rec, &reason), -EBADMSG);
        ck_assert_str_eq(reason, "invalid p= value and no valid rua= URI");
        dns_answer_done(&a);
}
END_TEST

static Suite* dmarc_record_suite(void) {
        Suite *s = suite_create("dmarc-record");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_table);
        tcase_add_test(tc, test_parse_reasons);
        tcase_add_test(tc, test_parse_embedded_nul);
        tcase_add_test(tc, test_parse_not_nul_terminated);
        tcase_add_test(tc, test_parse_limits);
        tcase_add_test(tc, test_is_dmarc);
        tcase_add_test(tc, test_policy_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("select");
        tcase_add_test(tc, test_select);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(dmarc_record_suite);
