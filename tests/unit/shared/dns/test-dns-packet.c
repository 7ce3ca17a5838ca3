/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "check-main.h"
#include "dns-packet.h"
#include "dns-test-packet.h"

START_TEST(test_build_query)
{
        uint8_t buf[DNS_PACKET_QUERY_MAX];
        char name[1025];
        DnsPacketHeader h;
        int k;

        k = dns_packet_build_query("mail.example.org.", DNS_TYPE_TXT, 0x1234, buf, sizeof buf);
        ck_assert_int_eq(k, 12 + 18 + 4 + 11);
        ck_assert_int_eq(dns_packet_parse_header(buf, (size_t) k, &h), 0);
        ck_assert_uint_eq(h.id, 0x1234);
        ck_assert(h.rd && !h.qr && !h.tc);
        ck_assert_uint_eq(h.qdcount, 1);
        ck_assert_uint_eq(h.ancount, 0);
        ck_assert_uint_eq(h.arcount, 1);
        ck_assert_int_eq(memcmp(buf + 12, "\4mail\7example\3org\0", 18), 0);
        ck_assert_int_eq(memcmp(buf + 30, "\0\20\0\1", 4), 0);
        /* OPT: root, type 41, 4096, ext-rcode/version 0, DO, no RDATA */
        ck_assert_int_eq(memcmp(buf + 34, "\0\0\51\20\0\0\0\200\0\0\0", 11), 0);

        ck_assert_int_eq(dns_packet_query_name(buf, (size_t) k, name, sizeof name), 0);
        ck_assert_str_eq(name, "mail.example.org");
}
END_TEST

START_TEST(test_build_query_bad_names)
{
        char label64[80], long_name[300];
        uint8_t buf[DNS_PACKET_QUERY_MAX];

        memset(label64, 'a', 64);
        strcpy(label64 + 64, ".org");
        for (size_t i = 0; i < 290; i += 2)
                memcpy(long_name + i, "a.", 2);
        long_name[290] = 0;

        ck_assert_int_eq(dns_packet_build_query("", DNS_TYPE_A, 1, buf, sizeof buf), -EINVAL);
        ck_assert_int_eq(dns_packet_build_query(".", DNS_TYPE_A, 1, buf, sizeof buf), -EINVAL);
        ck_assert_int_eq(dns_packet_build_query("a..b", DNS_TYPE_A, 1, buf, sizeof buf), -EINVAL);
        ck_assert_int_eq(dns_packet_build_query(label64, DNS_TYPE_A, 1, buf, sizeof buf), -EINVAL);
        ck_assert_int_eq(dns_packet_build_query(long_name, DNS_TYPE_A, 1, buf, sizeof buf), -EINVAL);
        ck_assert_int_eq(dns_packet_build_query("ok.example", DNS_TYPE_A, 1, buf, 20), -ENOBUFS);
        label64[63] = 0;
        ck_assert_int_gt(dns_packet_build_query(label64, DNS_TYPE_A, 1, buf, sizeof buf), 0);
}
END_TEST

START_TEST(test_match_reply)
{
        uint8_t q[DNS_PACKET_QUERY_MAX];
        TestPacket p;
        int k;

        k = dns_packet_build_query("example.org", DNS_TYPE_MX, 0xbeef, q, sizeof q);
        ck_assert_int_gt(k, 0);

        tp_begin(&p, 0xbeef, 0x8180, "example.org", DNS_TYPE_MX, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), 0);
        tp_begin(&p, 0xbeef, 0x8180, "EXAMPLE.Org", DNS_TYPE_MX, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), 0);
        tp_begin(&p, 0xbeee, 0x8180, "example.org", DNS_TYPE_MX, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), -EBADMSG);
        tp_begin(&p, 0xbeef, 0x0180, "example.org", DNS_TYPE_MX, 0);     /* no QR */
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), -EBADMSG);
        tp_begin(&p, 0xbeef, 0x9180, "example.org", DNS_TYPE_MX, 0);     /* opcode 2 */
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), -EBADMSG);
        tp_begin(&p, 0xbeef, 0x8180, "example.net", DNS_TYPE_MX, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), -EBADMSG);
        tp_begin(&p, 0xbeef, 0x8180, "example.org", DNS_TYPE_A, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len, q, (size_t) k), -EBADMSG);
        tp_begin(&p, 0xbeef, 0x8180, "example.org", DNS_TYPE_MX, 0);
        ck_assert_int_eq(dns_packet_match_reply(p.data, 11, q, (size_t) k), -EBADMSG);
        ck_assert_int_eq(dns_packet_match_reply(p.data, p.len - 1, q, (size_t) k), -EBADMSG);
}
END_TEST

/* The answer table: each case builds a reply to "example.org" of qtype. */
typedef struct AnswerCase {
        const char *name;
        uint16_t qtype;
        void (*build)(TestPacket *p);
        DnsResult result;
        size_t n_records;
        const char *first;      /* the first record as text (address, "10 mx", TXT) */
} AnswerCase;

static void build_a(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_A, 2);
        tp_rr(p, NULL, DNS_TYPE_A, 300, "\300\0\2\1", 4);
        tp_rr(p, "example.org", DNS_TYPE_A, 300, "\300\0\2\2", 4);
}

static void build_aaaa(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_AAAA, 1);
        tp_rr(p, NULL, DNS_TYPE_AAAA, 300, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1", 16);
}

static void build_mx(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_MX, 2);
        /* exchange "mx" + pointer to the question name */
        tp_rr(p, NULL, DNS_TYPE_MX, 300, "\0\12\2mx\300\14", 7);
        tp_rr_name(p, NULL, DNS_TYPE_MX, 20, "mx2.example.net");
}

static void build_txt_multi(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_TXT, 1);
        tp_rr(p, NULL, DNS_TYPE_TXT, 300, "\10v=spf1 a\5 -all", 15);
}

static void build_txt_empty_string(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_TXT, 1);
        tp_rr(p, NULL, DNS_TYPE_TXT, 300, "\0", 1);
}

static void build_cname_chain(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_A, 4);
        tp_rr_name(p, NULL, DNS_TYPE_CNAME, -1, "a.example.net");
        tp_rr(p, "unrelated.example", DNS_TYPE_A, 300, "\1\1\1\1", 4);
        tp_rr(p, "B.example.net", DNS_TYPE_A, 300, "\300\0\2\7", 4);
        tp_rr_name(p, "a.example.net", DNS_TYPE_CNAME, -1, "b.example.net");
}

static void build_cname_asked(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_CNAME, 1);
        tp_rr_name(p, NULL, DNS_TYPE_CNAME, -1, "a.example.net");
}

static void build_cname_loop(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_A, 2);
        tp_rr_name(p, NULL, DNS_TYPE_CNAME, -1, "a.example.net");
        tp_rr_name(p, "a.example.net", DNS_TYPE_CNAME, -1, "example.org");
}

static void build_cname_nxdomain(TestPacket *p) {
        tp_begin(p, 1, 0x8183, "example.org", DNS_TYPE_A, 1);
        tp_rr_name(p, NULL, DNS_TYPE_CNAME, -1, "gone.example.net");
}

static void build_nodata(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_TXT, 0);
}

static void build_nxdomain(TestPacket *p) {
        tp_begin(p, 1, 0x8183, "example.org", DNS_TYPE_A, 0);
}

static void build_servfail(TestPacket *p) {
        tp_begin(p, 1, 0x8182, "example.org", DNS_TYPE_A, 0);
}

static void build_refused(TestPacket *p) {
        tp_begin(p, 1, 0x8185, "example.org", DNS_TYPE_A, 0);
}

static void build_formerr(TestPacket *p) {
        tp_begin(p, 1, 0x8181, "example.org", DNS_TYPE_A, 0);
}

static void build_tlsa(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_TLSA, 1);
        tp_rr(p, NULL, DNS_TYPE_TLSA, 300, "\3\1\1\xaa\xbb", 5);
}

static void build_truncated_rr(TestPacket *p) {
        build_a(p);
        p->len -= 2;
}

static void build_ancount_too_big(TestPacket *p) {
        build_a(p);
        p->data[7] = 3;
}

static void build_a_bad_length(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_A, 1);
        tp_rr(p, NULL, DNS_TYPE_A, 300, "\1\2\3", 3);
}

static void build_txt_overrun(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_TXT, 1);
        tp_rr(p, NULL, DNS_TYPE_TXT, 300, "\5abc", 4);
}

static void build_mx_trailing(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_MX, 1);
        tp_rr(p, NULL, DNS_TYPE_MX, 300, "\0\12\300\14X", 5);
}

static void build_pointer_loop(TestPacket *p) {
        tp_begin(p, 1, 0x8180, "example.org", DNS_TYPE_A, 1);
        /* owner is a pointer to itself */
        p->data[p->len] = 0xc0;
        p->data[p->len + 1] = (uint8_t) p->len;
        p->len += 2;
        tp_put16(p, DNS_TYPE_A);
        tp_put16(p, 1);
        tp_put32(p, 1);
        tp_put16(p, 4);
        memcpy(p->data + p->len, "\1\2\3\4", 4);
        p->len += 4;
}

static void build_header_only(TestPacket *p) {
        build_a(p);
        p->len = 12;
}

static void build_no_question(TestPacket *p) {
        build_a(p);
        p->data[5] = 0;
}

static const AnswerCase answer_cases[] = {
        { "A, compressed owner",        DNS_TYPE_A,     build_a,                DNS_RESULT_OK,       2, "192.0.2.1" },
        { "AAAA",                       DNS_TYPE_AAAA,  build_aaaa,             DNS_RESULT_OK,       1, "2001:db8::1" },
        { "MX, compressed exchange",    DNS_TYPE_MX,    build_mx,               DNS_RESULT_OK,       2, "10 mx.example.org" },
        { "TXT, strings joined",        DNS_TYPE_TXT,   build_txt_multi,        DNS_RESULT_OK,       1, "v=spf1 a -all" },
        { "TXT, one empty string",      DNS_TYPE_TXT,   build_txt_empty_string, DNS_RESULT_OK,       1, "" },
        { "CNAME chain followed",       DNS_TYPE_A,     build_cname_chain,      DNS_RESULT_OK,       1, "192.0.2.7" },
        { "CNAME asked for",            DNS_TYPE_CNAME, build_cname_asked,      DNS_RESULT_OK,       1, "a.example.net" },
        { "CNAME loop",                 DNS_TYPE_A,     build_cname_loop,       DNS_RESULT_PERMFAIL, 0, NULL },
        { "CNAME to NXDOMAIN",          DNS_TYPE_A,     build_cname_nxdomain,   DNS_RESULT_NXDOMAIN, 0, NULL },
        { "NODATA",                     DNS_TYPE_TXT,   build_nodata,           DNS_RESULT_OK,       0, NULL },
        { "NXDOMAIN",                   DNS_TYPE_A,     build_nxdomain,         DNS_RESULT_NXDOMAIN, 0, NULL },
        { "SERVFAIL",                   DNS_TYPE_A,     build_servfail,         DNS_RESULT_TEMPFAIL, 0, NULL },
        { "REFUSED",                    DNS_TYPE_A,     build_refused,          DNS_RESULT_PERMFAIL, 0, NULL },
        { "FORMERR",                    DNS_TYPE_A,     build_formerr,          DNS_RESULT_PERMFAIL, 0, NULL },
        { "TLSA kept raw",              DNS_TYPE_TLSA,  build_tlsa,             DNS_RESULT_OK,       1, NULL },
        { "record cut short",           DNS_TYPE_A,     build_truncated_rr,     DNS_RESULT_PERMFAIL, 0, NULL },
        { "ANCOUNT beyond the packet",  DNS_TYPE_A,     build_ancount_too_big,  DNS_RESULT_PERMFAIL, 0, NULL },
        { "A of 3 octets",              DNS_TYPE_A,     build_a_bad_length,     DNS_RESULT_PERMFAIL, 0, NULL },
        { "TXT string overruns",        DNS_TYPE_TXT,   build_txt_overrun,      DNS_RESULT_PERMFAIL, 0, NULL },
        { "MX with trailing octets",    DNS_TYPE_MX,    build_mx_trailing,      DNS_RESULT_PERMFAIL, 0, NULL },
        { "compression pointer loop",   DNS_TYPE_A,     build_pointer_loop,     DNS_RESULT_PERMFAIL, 0, NULL },
        { "header only",                DNS_TYPE_A,     build_header_only,      DNS_RESULT_PERMFAIL, 0, NULL },
        { "no question",                DNS_TYPE_A,     build_no_question,      DNS_RESULT_PERMFAIL, 0, NULL },
};

static void record_text(const DnsRecord *r, char *buf, size_t size) {
        switch (r->type) {
        case DNS_TYPE_A:
                inet_ntop(AF_INET, &r->a, buf, (socklen_t) size);
                break;
        case DNS_TYPE_AAAA:
                inet_ntop(AF_INET6, &r->aaaa, buf, (socklen_t) size);
                break;
        case DNS_TYPE_MX:
                snprintf(buf, size, "%u %s", r->mx.preference, r->mx.exchange);
                break;
        case DNS_TYPE_CNAME:
                snprintf(buf, size, "%s", r->name);
                break;
        case DNS_TYPE_TXT:
                snprintf(buf, size, "%s", r->txt.data);
                break;
        default:
                buf[0] = 0;
        }
}

START_TEST(test_answer_table)
{
        const AnswerCase *c = answer_cases + _i;
        DnsAnswer a = DNS_ANSWER_NULL;
        TestPacket p;
        char text[256];

        c->build(&p);
        ck_assert_int_eq(dns_packet_to_answer(p.data, p.len, "example.org", c->qtype,
                                              DNS_SERVER_VALIDATING, &a), 0);
        ck_assert_msg(a.result == c->result, "%s: result %s, expected %s", c->name,
                      dns_result_to_string(a.result), dns_result_to_string(c->result));
        ck_assert_msg(a.n_records == c->n_records, "%s: %zu records", c->name, a.n_records);
        for (size_t i = 0; i < a.n_records; i++)
                ck_assert_uint_eq(a.records[i].type, c->qtype);
        if (c->first) {
                record_text(a.records, text, sizeof text);
                ck_assert_msg(strcmp(text, c->first) == 0, "%s: got '%s'", c->name, text);
        }
        if (c->qtype == DNS_TYPE_TLSA) {
                ck_assert_uint_eq(a.records[0].raw.len, 5);
                ck_assert_int_eq(memcmp(a.records[0].raw.data, "\3\1\1\xaa\xbb", 5), 0);
        }
        if (c->qtype == DNS_TYPE_TXT && a.n_records > 0)
                ck_assert_uint_eq(a.records[0].txt.len, strlen(c->first));
        if (c->qtype == DNS_TYPE_A && a.n_records > 0)
                ck_assert_uint_eq(a.records[0].ttl, 300);
        if (IN_SET(c->result, DNS_RESULT_TEMPFAIL, DNS_RESULT_PERMFAIL))
                ck_assert_int_eq(a.dnssec, DNSSEC_INDETERMINATE);
        dns_answer_done(&a);
}
END_TEST

START_TEST(test_dnssec_rule)
{
        static const struct {
                DnsResult result;
                bool ad;
                DnsServerTrust trust;
                DnssecStatus status;
        } table[] = {
                { DNS_RESULT_OK,       true,  DNS_SERVER_VALIDATING, DNSSEC_SECURE },
                { DNS_RESULT_OK,       true,  DNS_SERVER_TRUSTED,    DNSSEC_SECURE },
                { DNS_RESULT_OK,       true,  DNS_SERVER_UNTRUSTED,  DNSSEC_INDETERMINATE },
                { DNS_RESULT_OK,       false, DNS_SERVER_VALIDATING, DNSSEC_INSECURE },
                { DNS_RESULT_OK,       false, DNS_SERVER_TRUSTED,    DNSSEC_INDETERMINATE },
                { DNS_RESULT_OK,       false, DNS_SERVER_UNTRUSTED,  DNSSEC_INDETERMINATE },
                { DNS_RESULT_NXDOMAIN, true,  DNS_SERVER_VALIDATING, DNSSEC_SECURE },
                { DNS_RESULT_NXDOMAIN, false, DNS_SERVER_VALIDATING, DNSSEC_INSECURE },
                { DNS_RESULT_NXDOMAIN, true,  DNS_SERVER_UNTRUSTED,  DNSSEC_INDETERMINATE },
                { DNS_RESULT_TEMPFAIL, true,  DNS_SERVER_VALIDATING, DNSSEC_INDETERMINATE },
                { DNS_RESULT_TEMPFAIL, false, DNS_SERVER_VALIDATING, DNSSEC_INDETERMINATE },
                { DNS_RESULT_PERMFAIL, true,  DNS_SERVER_TRUSTED,    DNSSEC_INDETERMINATE },
                { DNS_RESULT_OK,       true,  DNS_SERVER_TRUST_AUTO, DNSSEC_INDETERMINATE },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                ck_assert_msg(dns_dnssec_status(table[i].result, table[i].ad, table[i].trust) == table[i].status,
                              "row %zu", i);
}
END_TEST

START_TEST(test_dnssec_from_packet)
{
        DnsAnswer a = DNS_ANSWER_NULL;
        TestPacket p;

        build_a(&p);
        p.data[3] |= 0x20;      /* AD */
        ck_assert_int_eq(dns_packet_to_answer(p.data, p.len, "example.org.", DNS_TYPE_A, DNS_SERVER_TRUSTED, &a), 0);
        ck_assert_int_eq(a.result, DNS_RESULT_OK);
        ck_assert_int_eq(a.dnssec, DNSSEC_SECURE);
        dns_answer_done(&a);
        ck_assert_int_eq(dns_packet_to_answer(p.data, p.len, "example.org", DNS_TYPE_A, DNS_SERVER_UNTRUSTED, &a), 0);
        ck_assert_int_eq(a.dnssec, DNSSEC_INDETERMINATE);
        dns_answer_done(&a);

        build_nxdomain(&p);
        ck_assert_int_eq(dns_packet_to_answer(p.data, p.len, "example.org", DNS_TYPE_A, DNS_SERVER_VALIDATING, &a), 0);
        ck_assert_int_eq(a.result, DNS_RESULT_NXDOMAIN);
        ck_assert_int_eq(a.dnssec, DNSSEC_INSECURE);
        dns_answer_done(&a);
}
END_TEST

START_TEST(test_server_trust_strings)
{
        for (int i = 0; i < _DNS_SERVER_TRUST_MAX; i++)
                ck_assert_int_eq(dns_server_trust_from_string(dns_server_trust_to_string(i)), i);
        ck_assert_int_eq(dns_server_trust_from_string("yes"), _DNS_SERVER_TRUST_INVALID);
        ck_assert_ptr_null(dns_server_trust_to_string(_DNS_SERVER_TRUST_MAX));
}
END_TEST

static Suite* dns_packet_suite(void) {
        Suite *s = suite_create("dns-packet");
        TCase *tc;

        tc = tcase_create("query");
        tcase_add_test(tc, test_build_query);
        tcase_add_test(tc, test_build_query_bad_names);
        tcase_add_test(tc, test_match_reply);
        suite_add_tcase(s, tc);

        tc = tcase_create("answer");
        tcase_add_loop_test(tc, test_answer_table, 0, (int) ELEMENTSOF(answer_cases));
        suite_add_tcase(s, tc);

        tc = tcase_create("dnssec");
        tcase_add_test(tc, test_dnssec_rule);
        tcase_add_test(tc, test_dnssec_from_packet);
        tcase_add_test(tc, test_server_trust_strings);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dns_packet_suite);
