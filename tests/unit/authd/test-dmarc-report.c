/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* DMARC aggregate reports (services/authd/dmarc-report.c): the store round trip, damaged
 * store lines, grouping into reports, and the XML checked against the RFC 7489 Appendix C
 * schema (tests/unit/authd/data/rfc7489-feedback.xsd, path in RFC7489_XSD). */

#include <check.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-main.h"
#include "cleanup.h"
#include "dmarc-report.h"
#include "fd-util.h"
#include "string-util.h"

/* 2024-03-01 00:00:00 UTC */
#define DAY ((uint64_t) 1709251200U)

static const char *rua_a[] = { "mailto:dmarc@a.example", "mailto:agg@rep.example!10m" };
static const char *rua_b[] = { "mailto:rua@b.example" };

/* An entry pointing at static strings: never passed to dmarc_report_entry_done(). */
static DmarcReportEntry mk(uint64_t t, const char *ip, const char *policy_domain,
                           const char **rua, size_t n_rua) {
        static DmarcReportDkim dkim[] = {
                { .domain = (char*) "a.example", .selector = (char*) "s1", .result = DMARC_REPORT_DKIM_PASS },
                { .domain = (char*) "esp.example", .selector = NULL, .result = DMARC_REPORT_DKIM_FAIL },
        };
        return (DmarcReportEntry) {
                .time = t,
                .source_ip = (char*) ip,
                .header_from = (char*) policy_domain,
                .envelope_from = (char*) "bounce.esp.example",
                .envelope_to = (char*) "receiver.example",
                .spf_domain = (char*) "bounce.esp.example",
                .spf_scope = DMARC_REPORT_SPF_SCOPE_MFROM,
                .spf_result = DMARC_REPORT_SPF_PASS,
                .dkim = dkim,
                .n_dkim = 2,
                .policy_domain = (char*) policy_domain,
                .adkim = DMARC_ALIGNMENT_RELAXED,
                .aspf = DMARC_ALIGNMENT_STRICT,
                .p = DMARC_POLICY_REJECT,
                .sp = DMARC_POLICY_QUARANTINE,
                .np = _DMARC_POLICY_INVALID,
                .pct = 100,
                .fo = (char*) "0",
                .rua = (char**) rua,
                .n_rua = n_rua,
                .disposition = DMARC_POLICY_NONE,
                .dkim_aligned = true,
                .spf_aligned = false,
        };
}

static char* mkdtemp_or_die(void) {
        char *d = strdup("/tmp/test-dmarc-report.XXXXXX");

        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static void rm_rf(const char *dir) {
        char *cmd = NULL;

        ck_assert_int_ge(asprintf_safe(&cmd, "rm -rf '%s'", dir), 0);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
}

START_TEST(test_day) {
        static const struct {
                const char *s;
                uint64_t t;
        } good[] = {
                { "1970-01-01", 0 },
                { "2024-03-01", DAY },
                { "2024-02-29", DAY - 86400 },
                { "2000-12-31", 978220800 },
        };
        static const char *bad[] = {
                "2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01", "1969-12-31", "2024/03/01",
                "2024-03-01x", "", "abcd-ef-gh", "2024-04-31",
        };
        char buf[11];
        uint64_t t;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ck_assert_int_eq(dmarc_report_day_parse(good[i].s, &t), 0);
                ck_assert_uint_eq(t, good[i].t);
                ck_assert_int_eq(dmarc_report_day_format(good[i].t + 86399, buf), 0);
                ck_assert_str_eq(buf, good[i].s);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(dmarc_report_day_parse(bad[i], &t) == -EINVAL, "%s accepted", bad[i]);
}
END_TEST

START_TEST(test_store_roundtrip) {
        _cleanup_free_ char *dir = mkdtemp_or_die();
        DmarcReportEntry e = mk(DAY + 10, "2001:db8::25", "a.example", rua_a, 2), *got = NULL;
        DmarcReportReason reason = {
                .type = DMARC_OVERRIDE_LOCAL_POLICY,
                .comment = (char*) "arc=pass as[2].d=list.example as[2].s=k1, 100% <ok>",
        };
        size_t n = 0;
        unsigned skipped = 99;

        e.reasons = &reason;
        e.n_reasons = 1;
        e.envelope_from = (char*) "we ird=,%.example";
        e.np = DMARC_POLICY_REJECT;

        {
                _cleanup_(dmarc_store_freep) DmarcStore *s = NULL;

                ck_assert_int_eq(dmarc_store_open(dir, &s), 0);
                ck_assert_int_eq(dmarc_report_record(s, &e), 0);
                e.time = DAY + 86400 + 5;       /* next day: another file */
                ck_assert_int_eq(dmarc_report_record(s, &e), 0);
                ck_assert_int_eq(dmarc_store_flush(s), 0);
        }

        ck_assert_int_eq(dmarc_store_read_day(dir, DAY, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(skipped, 0);
        ck_assert_uint_eq(got[0].time, DAY + 10);
        ck_assert_str_eq(got[0].source_ip, "2001:db8::25");
        ck_assert_str_eq(got[0].header_from, "a.example");
        ck_assert_str_eq(got[0].envelope_from, "we ird=,%.example");
        ck_assert_str_eq(got[0].envelope_to, "receiver.example");
        ck_assert_str_eq(got[0].spf_domain, "bounce.esp.example");
        ck_assert_int_eq(got[0].spf_scope, DMARC_REPORT_SPF_SCOPE_MFROM);
        ck_assert_int_eq(got[0].spf_result, DMARC_REPORT_SPF_PASS);
        ck_assert_uint_eq(got[0].n_dkim, 2);
        ck_assert_str_eq(got[0].dkim[0].domain, "a.example");
        ck_assert_str_eq(got[0].dkim[0].selector, "s1");
        ck_assert_int_eq(got[0].dkim[0].result, DMARC_REPORT_DKIM_PASS);
        ck_assert_ptr_null(got[0].dkim[1].selector);
        ck_assert_int_eq(got[0].dkim[1].result, DMARC_REPORT_DKIM_FAIL);
        ck_assert_str_eq(got[0].policy_domain, "a.example");
        ck_assert_int_eq(got[0].aspf, DMARC_ALIGNMENT_STRICT);
        ck_assert_int_eq(got[0].p, DMARC_POLICY_REJECT);
        ck_assert_int_eq(got[0].sp, DMARC_POLICY_QUARANTINE);
        ck_assert_int_eq(got[0].np, DMARC_POLICY_REJECT);
        ck_assert_uint_eq(got[0].pct, 100);
        ck_assert_str_eq(got[0].fo, "0");
        ck_assert_uint_eq(got[0].n_rua, 2);
        ck_assert_str_eq(got[0].rua[1], "mailto:agg@rep.example!10m");
        ck_assert_int_eq(got[0].disposition, DMARC_POLICY_NONE);
        ck_assert(got[0].dkim_aligned);
        ck_assert(!got[0].spf_aligned);
        ck_assert_uint_eq(got[0].n_reasons, 1);
        ck_assert_int_eq(got[0].reasons[0].type, DMARC_OVERRIDE_LOCAL_POLICY);
        ck_assert_str_eq(got[0].reasons[0].comment, reason.comment);
        dmarc_report_entries_free(got, n);

        ck_assert_int_eq(dmarc_store_read_day(dir, DAY + 86400, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 1);
        dmarc_report_entries_free(got, n);
        ck_assert_int_eq(dmarc_store_read_day(dir, DAY + 2 * 86400, &got, &n, &skipped), -ENOENT);

        /* invalid entries are refused, not written */
        e.source_ip = (char*) "not-an-ip";
        ck_assert_int_eq(dmarc_store_format_line(&e, &(char*){NULL}, NULL), -EINVAL);
        e.source_ip = (char*) "192.0.2.1";
        e.policy_domain = NULL;
        ck_assert_int_eq(dmarc_store_format_line(&e, &(char*){NULL}, NULL), -EINVAL);

        rm_rf(dir);
}
END_TEST

START_TEST(test_store_damaged) {
        _cleanup_free_ char *dir = mkdtemp_or_die(), *path = NULL, *data = NULL;
        DmarcReportEntry e = mk(DAY + 100, "192.0.2.1", "a.example", rua_a, 1), *got = NULL;
        size_t n = 0, size = 0;
        unsigned skipped = 0;
        struct stat st;

        ck_assert_int_ge(asprintf_safe(&path, "%s/dmarc-2024-03-01.log", dir), 0);
        {
                _cleanup_(dmarc_store_freep) DmarcStore *s = NULL;

                ck_assert_int_eq(dmarc_store_open(dir, &s), 0);
                for (int i = 0; i < 3; i++)
                        ck_assert_int_eq(dmarc_report_record(s, &e), 0);
        }
        /* a crash in the middle of the third line */
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(truncate(path, st.st_size - 20), 0);

        ck_assert_int_eq(dmarc_store_read_day(dir, DAY, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(skipped, 1);
        dmarc_report_entries_free(got, n);

        /* the next record goes on a line of its own */
        {
                _cleanup_(dmarc_store_freep) DmarcStore *s = NULL;

                ck_assert_int_eq(dmarc_store_open(dir, &s), 0);
                ck_assert_int_eq(dmarc_report_record(s, &e), 0);
        }
        ck_assert_int_eq(dmarc_store_read_day(dir, DAY, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(skipped, 1);
        dmarc_report_entries_free(got, n);

        /* a flipped byte in the first line: the CRC catches it */
        ck_assert_int_eq(read_full_file(path, 1 << 20, &data, &size), 0);
        char *p = strstr(data, "ip=192.0.2.1");
        ck_assert_ptr_nonnull(p);
        p[3] = '9';
        ck_assert_int_eq(dmarc_store_parse(data, size, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(skipped, 2);
        dmarc_report_entries_free(got, n);

        /* garbage, NULs and an empty input never fail */
        static const char junk[] = "DMARC1\n\n\0\0crc=\nDMARC1 t=1 crc=00000000\n%%%\n";
        ck_assert_int_eq(dmarc_store_parse(junk, sizeof(junk) - 1, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_uint_eq(skipped, 4);  /* the empty line is not counted */
        free(got);
        ck_assert_int_eq(dmarc_store_parse(NULL, 0, &got, &n, &skipped), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_uint_eq(skipped, 0);
        free(got);

        rm_rf(dir);
}
END_TEST

/* ---- XML helpers ---- */

static xmlDocPtr parse_valid(const char *xml, size_t len) {
        xmlSchemaParserCtxtPtr pctx;
        xmlSchemaValidCtxtPtr vctx;
        xmlSchemaPtr schema;
        xmlDocPtr doc;

        pctx = xmlSchemaNewParserCtxt(RFC7489_XSD);
        ck_assert_ptr_nonnull(pctx);
        schema = xmlSchemaParse(pctx);
        ck_assert_msg(schema, "cannot load %s", RFC7489_XSD);
        doc = xmlReadMemory(xml, (int) len, "report.xml", NULL, XML_PARSE_NONET);
        ck_assert_msg(doc, "report is not well-formed XML:\n%s", xml);
        vctx = xmlSchemaNewValidCtxt(schema);
        ck_assert_ptr_nonnull(vctx);
        ck_assert_msg(xmlSchemaValidateDoc(vctx, doc) == 0, "report does not validate:\n%s", xml);
        xmlSchemaFreeValidCtxt(vctx);
        xmlSchemaFree(schema);
        xmlSchemaFreeParserCtxt(pctx);
        return doc;
}

static char* xpath_string(xmlDocPtr doc, const char *expr) {
        xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
        xmlXPathObjectPtr o;
        char *s;

        ck_assert_ptr_nonnull(ctx);
        o = xmlXPathEvalExpression((const xmlChar*) expr, ctx);
        ck_assert_msg(o, "bad xpath %s", expr);
        xmlChar *v = xmlXPathCastToString(o);
        s = strdup((const char*) v);
        xmlFree(v);
        xmlXPathFreeObject(o);
        xmlXPathFreeContext(ctx);
        return s;
}

#define assert_xpath(doc, expr, want)                                           \
        do {                                                                    \
                char *_s_ = xpath_string(doc, expr);                            \
                ck_assert_msg(streq(_s_, want), "%s: got '%s', want '%s'",      \
                              expr, _s_, want);                                 \
                free(_s_);                                                      \
        } while (false)

static const DmarcReportMeta meta = {
        .org_name = "Mailsec Test <Org> & Co",
        .email = "dmarc-reports@receiver.example",
        .receiver = "mx.receiver.example",
};

START_TEST(test_aggregate) {
        DmarcReportReason arc_reason = {
                .type = DMARC_OVERRIDE_LOCAL_POLICY,
                .comment = (char*) "arc=pass as[2].d=list.example as[2].s=arc1",
        };
        DmarcReportEntry e[9];
        DmarcReport *reports = NULL;
        size_t n = 0;
        xmlDocPtr doc;

        /* a.example: 3 identical rows, one from another IP, one rescued by ARC */
        e[0] = mk(DAY + 1, "192.0.2.1", "a.example", rua_a, 2);
        e[1] = mk(DAY + 500, "192.0.2.1", "a.example", rua_a, 2);
        e[2] = mk(DAY + 86399, "192.0.2.1", "a.example", rua_a, 2);
        e[3] = mk(DAY + 7, "2001:db8::1", "a.example", rua_a, 2);
        e[4] = mk(DAY + 8, "198.51.100.7", "a.example", rua_a, 2);
        e[4].dkim_aligned = false;
        e[4].p = DMARC_POLICY_QUARANTINE;       /* older: policy_published comes from e[2] */
        e[4].reasons = &arc_reason;
        e[4].n_reasons = 1;
        /* b.example: one row */
        e[5] = mk(DAY + 60, "203.0.113.9", "b.example", rua_b, 1);
        e[5].disposition = DMARC_POLICY_REJECT;
        e[5].dkim_aligned = false;
        /* c.example publishes no rua=: not reported */
        e[6] = mk(DAY + 60, "203.0.113.9", "c.example", NULL, 0);
        /* other days */
        e[7] = mk(DAY - 1, "192.0.2.1", "a.example", rua_a, 2);
        e[8] = mk(DAY + 86400, "192.0.2.1", "b.example", rua_b, 1);

        ck_assert_int_eq(dmarc_report_build(e, ELEMENTSOF(e), DAY + 3600, &meta, &reports, &n), 0);
        ck_assert_uint_eq(n, 2);

        ck_assert_str_eq(reports[0].policy_domain, "a.example");
        ck_assert_str_eq(reports[0].file_name, "mx.receiver.example!a.example!1709251200!1709337599.xml.gz");
        ck_assert_uint_eq(reports[0].n_rows, 3);
        ck_assert_uint_eq(reports[0].n_messages, 5);
        ck_assert_str_eq(reports[0].rua[0], "mailto:dmarc@a.example");
        ck_assert_str_eq(reports[0].rua[1], "mailto:agg@rep.example!10m");
        ck_assert_ptr_null(reports[0].rua[2]);
        ck_assert_str_eq(reports[1].policy_domain, "b.example");
        ck_assert_str_eq(reports[1].file_name, "mx.receiver.example!b.example!1709251200!1709337599.xml.gz");
        ck_assert_uint_eq(reports[1].n_rows, 1);
        ck_assert_uint_eq(reports[1].n_messages, 1);
        ck_assert_str_ne(reports[0].report_id, reports[1].report_id);

        doc = parse_valid(reports[0].xml, reports[0].xml_len);
        assert_xpath(doc, "string(/feedback/version)", "1.0");
        assert_xpath(doc, "string(/feedback/report_metadata/org_name)", "Mailsec Test <Org> & Co");
        assert_xpath(doc, "string(/feedback/report_metadata/email)", "dmarc-reports@receiver.example");
        assert_xpath(doc, "string(/feedback/report_metadata/report_id)", reports[0].report_id);
        assert_xpath(doc, "string(/feedback/report_metadata/date_range/begin)", "1709251200");
        assert_xpath(doc, "string(/feedback/report_metadata/date_range/end)", "1709337599");
        assert_xpath(doc, "string(/feedback/policy_published/domain)", "a.example");
        assert_xpath(doc, "string(/feedback/policy_published/p)", "reject");
        assert_xpath(doc, "string(/feedback/policy_published/sp)", "quarantine");
        assert_xpath(doc, "string(/feedback/policy_published/aspf)", "s");
        assert_xpath(doc, "string(count(/feedback/record))", "3");
        assert_xpath(doc, "string(sum(/feedback/record/row/count))", "5");
        assert_xpath(doc, "string(/feedback/record[row/source_ip='192.0.2.1']/row/count)", "3");
        assert_xpath(doc, "string(/feedback/record[row/source_ip='2001:db8:0:0:0:0:0:1']/row/count)", "1");
        assert_xpath(doc, "string(/feedback/record[row/source_ip='198.51.100.7']/row/policy_evaluated/dkim)",
                     "fail");
        assert_xpath(doc, "string(/feedback/record[row/source_ip='198.51.100.7']/row/policy_evaluated/reason/type)",
                     "local_policy");
        assert_xpath(doc, "string(/feedback/record[row/source_ip='198.51.100.7']/row/policy_evaluated/reason/comment)",
                     "arc=pass as[2].d=list.example as[2].s=arc1");
        assert_xpath(doc, "string(count(/feedback/record/row/policy_evaluated/reason))", "1");
        assert_xpath(doc, "string(/feedback/record[1]/identifiers/envelope_to)", "receiver.example");
        assert_xpath(doc, "string(/feedback/record[1]/identifiers/header_from)", "a.example");
        assert_xpath(doc, "string(count(/feedback/record[1]/auth_results/dkim))", "2");
        assert_xpath(doc, "string(/feedback/record[1]/auth_results/dkim[1]/selector)", "s1");
        assert_xpath(doc, "string(count(/feedback/record[1]/auth_results/dkim[2]/selector))", "0");
        assert_xpath(doc, "string(/feedback/record[1]/auth_results/spf/scope)", "mfrom");
        xmlFreeDoc(doc);

        doc = parse_valid(reports[1].xml, reports[1].xml_len);
        assert_xpath(doc, "string(count(/feedback/record))", "1");
        assert_xpath(doc, "string(/feedback/record/row/policy_evaluated/disposition)", "reject");
        xmlFreeDoc(doc);

        /* the same input gives the same reports (stable report_id) */
        {
                DmarcReport *again = NULL;
                size_t m = 0;

                ck_assert_int_eq(dmarc_report_build(e, ELEMENTSOF(e), DAY, &meta, &again, &m), 0);
                ck_assert_uint_eq(m, 2);
                ck_assert_str_eq(again[0].report_id, reports[0].report_id);
                ck_assert_str_eq(again[0].xml, reports[0].xml);
                dmarc_reports_free(again, m);
        }
        dmarc_reports_free(reports, n);

        /* nothing to report */
        ck_assert_int_eq(dmarc_report_build(e + 6, 1, DAY, &meta, &reports, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(reports);

        /* a receiver name that cannot be part of a file name */
        DmarcReportMeta bad = meta;
        bad.receiver = "../etc";
        ck_assert_int_eq(dmarc_report_build(e, 1, DAY, &bad, &reports, &n), -EINVAL);
}
END_TEST

START_TEST(test_xml_escaping) {
        DmarcReportEntry e = mk(DAY, "192.0.2.1", "a.example", rua_a, 1);
        DmarcReportReason reason = {
                .type = DMARC_OVERRIDE_OTHER,
                .comment = (char*) "</comment><x a=\"1\">&amp;\x01\xff'",
        };
        DmarcReport *reports = NULL;
        size_t n = 0;
        xmlDocPtr doc;

        e.header_from = (char*) "<evil>&.example";
        e.reasons = &reason;
        e.n_reasons = 1;
        ck_assert_int_eq(dmarc_report_build(&e, 1, DAY, &meta, &reports, &n), 0);
        ck_assert_uint_eq(n, 1);
        doc = parse_valid(reports[0].xml, reports[0].xml_len);
        assert_xpath(doc, "string(/feedback/record/identifiers/header_from)", "<evil>&.example");
        assert_xpath(doc, "string(/feedback/record/row/policy_evaluated/reason/comment)",
                     "</comment><x a=\"1\">&amp;?" "?'");
        xmlFreeDoc(doc);
        dmarc_reports_free(reports, n);
}
END_TEST

START_TEST(test_gzip_file) {
        _cleanup_free_ char *dir = mkdtemp_or_die(), *path = NULL, *gz = NULL;
        _cleanup_free_ void *plain = NULL;
        DmarcReportEntry e = mk(DAY + 5, "192.0.2.1", "a.example", rua_a, 1);
        _cleanup_close_ int dir_fd = -1;
        DmarcReport *reports = NULL;
        size_t n = 0, gz_size = 0, plain_size = 0;
        struct stat st1, st2;

        ck_assert_int_eq(dmarc_report_build(&e, 1, DAY, &meta, &reports, &n), 0);
        ck_assert_uint_eq(n, 1);
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dir_fd, 0);

        ck_assert_int_eq(dmarc_report_write_gz(&reports[0], dir_fd), 1);
        ck_assert_int_ge(asprintf_safe(&path, "%s/%s", dir, reports[0].file_name), 0);
        ck_assert_int_eq(read_full_file(path, 1 << 20, &gz, &gz_size), 0);
        ck_assert_uint_gt(gz_size, 18);
        ck_assert_uint_eq((unsigned char) gz[0], 0x1f);         /* gzip magic */
        ck_assert_uint_eq((unsigned char) gz[1], 0x8b);
        ck_assert_int_eq(dmarc_gunzip(gz, gz_size, 1 << 20, &plain, &plain_size), 0);
        ck_assert_uint_eq(plain_size, reports[0].xml_len);
        ck_assert(memcmp(plain, reports[0].xml, plain_size) == 0);
        ck_assert_int_eq(dmarc_gunzip(gz, gz_size, 16, &(void*){NULL}, &(size_t){0}), -EFBIG);
        ck_assert_int_eq(dmarc_gunzip(reports[0].xml, reports[0].xml_len, 1 << 20,
                                      &(void*){NULL}, &(size_t){0}), -EBADMSG);

        /* idempotent: an existing report is left alone */
        ck_assert_int_eq(stat(path, &st1), 0);
        free(reports[0].xml);
        reports[0].xml = strdup("<changed/>");
        reports[0].xml_len = strlen(reports[0].xml);
        ck_assert_int_eq(dmarc_report_write_gz(&reports[0], dir_fd), 0);
        ck_assert_int_eq(stat(path, &st2), 0);
        ck_assert_int_eq(st1.st_ino, st2.st_ino);
        ck_assert_int_eq(st1.st_size, st2.st_size);
        dmarc_reports_free(reports, n);

        rm_rf(dir);
}
END_TEST

START_TEST(test_set_result) {
        DmarcUri uris[] = { { .uri = (char*) "mailto:d@x.example" } };
        DmarcResult r = DMARC_RESULT_NULL;
        DmarcReportEntry e = DMARC_REPORT_ENTRY_NULL;

        r.verdict = DMARC_VERDICT_FAIL;
        r.from_domain = (char*) "mail.x.example";
        r.policy_domain = (char*) "x.example";
        ck_assert_int_eq(dmarc_report_entry_set_result(&e, &r), -ENODATA);

        r.have_record = true;
        r.record.p = DMARC_POLICY_REJECT;
        r.record.sp = _DMARC_POLICY_INVALID;
        r.record.adkim = DMARC_ALIGNMENT_STRICT;
        r.record.pct = 50;
        r.record.fo = DMARC_FO_ANY_FAIL | DMARC_FO_DKIM;
        r.record.rua = uris;
        r.record.n_rua = 1;
        r.sampled_out = true;
        r.disposition = DMARC_POLICY_QUARANTINE;
        r.spf_aligned = true;
        ck_assert_int_eq(dmarc_report_entry_set_result(&e, &r), 0);
        ck_assert_str_eq(e.header_from, "mail.x.example");
        ck_assert_str_eq(e.policy_domain, "x.example");
        ck_assert_int_eq(e.p, DMARC_POLICY_REJECT);
        ck_assert_int_eq(e.sp, DMARC_POLICY_REJECT);    /* no sp=: p applies */
        ck_assert_int_eq(e.adkim, DMARC_ALIGNMENT_STRICT);
        ck_assert_uint_eq(e.pct, 50);
        ck_assert_str_eq(e.fo, "1:d");
        ck_assert_uint_eq(e.n_rua, 1);
        ck_assert_str_eq(e.rua[0], "mailto:d@x.example");
        ck_assert_int_eq(e.disposition, DMARC_POLICY_QUARANTINE);
        ck_assert(e.spf_aligned);
        ck_assert(!e.dkim_aligned);
        ck_assert_uint_eq(e.n_reasons, 1);
        ck_assert_int_eq(e.reasons[0].type, DMARC_OVERRIDE_SAMPLED_OUT);

        for (unsigned i = 1; i < DMARC_REPORT_REASONS_MAX; i++)
                ck_assert_int_eq(dmarc_report_entry_add_reason(&e, DMARC_OVERRIDE_OTHER, NULL), 0);
        ck_assert_int_eq(dmarc_report_entry_add_reason(&e, DMARC_OVERRIDE_OTHER, NULL), -E2BIG);
        ck_assert_int_eq(dmarc_report_entry_add_dkim(&e, "x.example", NULL, DMARC_REPORT_DKIM_PASS), 0);
        dmarc_report_entry_done(&e);
        ck_assert_ptr_null(e.policy_domain);
}
END_TEST

START_TEST(test_string_tables) {
        for (int i = 0; i < _DMARC_OVERRIDE_MAX; i++)
                ck_assert_int_eq(dmarc_override_from_string(dmarc_override_to_string(i)), i);
        for (int i = 0; i < _DMARC_REPORT_SPF_MAX; i++)
                ck_assert_int_eq(dmarc_report_spf_result_from_string(dmarc_report_spf_result_to_string(i)), i);
        for (int i = 0; i < _DMARC_REPORT_DKIM_MAX; i++)
                ck_assert_int_eq(dmarc_report_dkim_result_from_string(dmarc_report_dkim_result_to_string(i)), i);
        ck_assert_str_eq(dmarc_override_to_string(DMARC_OVERRIDE_TRUSTED_FORWARDER), "trusted_forwarder");
        ck_assert_int_eq(dmarc_override_from_string("Local_Policy"), -EINVAL);
        ck_assert_ptr_null(dmarc_override_to_string(_DMARC_OVERRIDE_MAX));
        ck_assert_int_eq(dmarc_report_spf_scope_from_string("helo"), DMARC_REPORT_SPF_SCOPE_HELO);
}
END_TEST

static Suite* dmarc_report_suite(void) {
        Suite *s = suite_create("dmarc-report");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_day);
        tcase_add_test(tc, test_store_roundtrip);
        tcase_add_test(tc, test_store_damaged);
        tcase_add_test(tc, test_aggregate);
        tcase_add_test(tc, test_xml_escaping);
        tcase_add_test(tc, test_gzip_file);
        tcase_add_test(tc, test_set_result);
        tcase_add_test(tc, test_string_tables);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dmarc_report_suite);
