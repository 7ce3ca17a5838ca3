/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "proxyd-tx.h"
#include "smtp-reply.h"
#include "string-util.h"

/* ---- The end-of-data scanner, fed every split of every input ---- */

typedef struct ScanCase {
        const char *name;
        const char *input;
        size_t input_len;               /* 0: strlen(input) */
        bool bdat;
        uint64_t max_line, max_header, max_size;   /* 0: large */
        const char *content;            /* expected spooled bytes (when flags == 0) */
        size_t content_len;             /* 0: strlen(content) */
        bool end;
        size_t trailing;                /* bytes after the end left unconsumed */
        DataScanFlags flags;
} ScanCase;

#define S(x) x, sizeof(x) - 1

static const ScanCase scan_cases[] = {
        { "normal",            S("Subject: a\r\n\r\nbody\r\n.\r\n"), false, 0, 0, 0, S("Subject: a\r\n\r\nbody\r\n"), true, 0, 0 },
        { "empty",             S(".\r\n"), false, 0, 0, 0, S(""), true, 0, 0 },
        { "dot-stuffed",       S("a\r\n..b\r\n...\r\n..\r\n.\r\n"), false, 0, 0, 0, S("a\r\n.b\r\n..\r\n.\r\n"), true, 0, 0 },
        { "trailing command",  S("x\r\n.\r\nMAIL"), false, 0, 0, 0, S("x\r\n"), true, 4, 0 },
        { "not finished",      S("abc\r\n.x\r\n"), false, 0, 0, 0, S("abc\r\nx\r\n"), false, 0, 0 },
        { "bare LF",           S("a\nb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_LF },
        { "bare CR",           S("a\rb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_CR },
        { "LF.LF",             S("a\n.\nb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_LF },
        { "CRLF.LF",           S("a\r\n.\nb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_LF },
        { "LF.CRLF",           S("a\n.\r\nb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_LF },
        { "CR.CRLF",           S("a\r.\r\nb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_CR },
        { "CRLF.CR",           S("a\r\n.\rb\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_CR },
        { "CRLF.CRCRLF",       S("a\r\n.\r\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_BARE_CR },
        { "LF.LF only",        S("\n.\n"), false, 0, 0, 0, NULL, 0, false, 0, DATA_SCAN_BARE_LF },
        { "NUL",               S("a\0b\r\n.\r\n"), false, 0, 0, 0, NULL, 0, true, 0, DATA_SCAN_NUL },
        { "line at limit",     S("abcd\r\n.\r\n"), false, 4, 0, 0, S("abcd\r\n"), true, 0, 0 },
        { "line over limit",   S("abcde\r\n.\r\n"), false, 4, 0, 0, NULL, 0, true, 0, DATA_SCAN_LINE_TOO_LONG },
        { "size at limit",     S("abc\r\n.\r\n"), false, 0, 0, 5, S("abc\r\n"), true, 0, 0 },
        { "size over limit",   S("abcd\r\n.\r\n"), false, 0, 0, 5, NULL, 0, true, 0, DATA_SCAN_TOO_BIG },
        { "header at limit",   S("A: b\r\n\r\nlong body line\r\n.\r\n"), false, 0, 8, 0, S("A: b\r\n\r\nlong body line\r\n"), true, 0, 0 },
        { "header over limit", S("A: bc\r\n\r\nb\r\n.\r\n"), false, 0, 8, 0, NULL, 0, true, 0, DATA_SCAN_HEADER_TOO_BIG },
        { "bdat plain",        S("a\r\n.\r\nb\r\n"), true, 0, 0, 0, S("a\r\n.\r\nb\r\n"), false, 0, 0 },
        { "bdat bare LF",      S("a\nb\r\n"), true, 0, 0, 0, NULL, 0, false, 0, DATA_SCAN_BARE_LF },
        { "bdat NUL",          S("a\0\r\n"), true, 0, 0, 0, NULL, 0, false, 0, DATA_SCAN_NUL },
};

static void scan_run(const ScanCase *c, size_t split1, size_t split2, char *content, size_t *content_len,
                     DataScanner *s, bool *end, size_t *consumed) {
        size_t len = c->input_len, pos = 0, bounds[3] = { split1, split2, len };
        char *buf = malloc(len + 1);

        ck_assert_ptr_nonnull(buf);
        data_scanner_init(s, c->bdat, c->max_line ?: 1000, c->max_header ?: 1 << 20, c->max_size ?: 1 << 20);
        *end = false;
        *content_len = 0;

        for (size_t k = 0; k < 3 && !*end; k++) {
                size_t n = bounds[k] - pos, used, out;

                /* Feed a copy, in place, as the session does. */
                memcpy(buf, c->input + pos, n);
                used = data_scanner_feed(s, buf, n, buf, &out, end);
                ck_assert_uint_le(used, n);
                if (!*end)
                        ck_assert_uint_eq(used, n);
                memcpy(content + *content_len, buf, out);
                *content_len += out;
                pos += used;
        }
        *consumed = pos;
        free(buf);
}

START_TEST(test_scanner_table)
{
        for (size_t i = 0; i < ELEMENTSOF(scan_cases); i++) {
                const ScanCase *c = scan_cases + i;
                size_t len = c->input_len;

                for (size_t a = 0; a <= len; a++)
                        for (size_t b = a; b <= len; b++) {
                                char content[256];
                                size_t content_len, consumed;
                                DataScanner s;
                                bool end;

                                scan_run(c, a, b, content, &content_len, &s, &end, &consumed);
                                ck_assert_msg(end == c->end, "%s (split %zu/%zu): end %d", c->name, a, b, end);
                                ck_assert_msg(s.flags == c->flags, "%s (split %zu/%zu): flags %x, expected %x",
                                              c->name, a, b, (unsigned) s.flags, (unsigned) c->flags);
                                if (c->end)
                                        ck_assert_msg(consumed == len - c->trailing, "%s: consumed %zu", c->name, consumed);
                                if (c->content) {
                                        ck_assert_msg(content_len == c->content_len &&
                                                      memcmp(content, c->content, content_len) == 0,
                                                      "%s (split %zu/%zu): content \"%.*s\"", c->name, a, b,
                                                      (int) content_len, content);
                                        ck_assert_uint_eq(s.size, c->content_len);
                                }
                        }
        }
}
END_TEST

START_TEST(test_scanner_byte_by_byte)
{
        static const char in[] = "Subject: x\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n";
        DataScanner s;
        char out[64];
        size_t o = 0, i;
        bool end = false;

        data_scanner_init(&s, false, 1000, 1 << 20, 1 << 20);
        for (i = 0; i < sizeof(in) - 1 && !end; i++) {
                size_t k;
                ck_assert_uint_eq(data_scanner_feed(&s, in + i, 1, out + o, &k, &end), 1);
                o += k;
        }
        ck_assert(end);
        ck_assert_uint_eq(i, sizeof(in) - 1 - STRLEN("QUIT\r\n"));
        ck_assert_uint_eq(o, STRLEN("Subject: x\r\n\r\n.dot\r\nline\r\n"));
        ck_assert(memcmp(out, "Subject: x\r\n\r\n.dot\r\nline\r\n", o) == 0);
        ck_assert(!s.in_header);
}
END_TEST

START_TEST(test_scanner_bdat_finish)
{
        DataScanner s;
        char out[16];
        size_t o;

        data_scanner_init(&s, true, 1000, 1000, 1000);
        data_scanner_feed(&s, "a\r\nb", 4, out, &o, NULL);
        ck_assert(data_scanner_finish_bdat(&s));
        ck_assert_uint_eq(s.size, 6);
        ck_assert(!data_scanner_is_bad(&s));

        data_scanner_init(&s, true, 1000, 1000, 1000);
        data_scanner_feed(&s, "a\r\n", 3, out, &o, NULL);
        ck_assert(!data_scanner_finish_bdat(&s));
        ck_assert(!data_scanner_is_bad(&s));

        data_scanner_init(&s, true, 1000, 1000, 1000);
        data_scanner_feed(&s, "a\r", 2, out, &o, NULL);
        ck_assert(!data_scanner_finish_bdat(&s));
        ck_assert_uint_eq(s.flags, DATA_SCAN_BARE_CR);
}
END_TEST

START_TEST(test_scan_replies)
{
        ck_assert_ptr_null(data_scan_flags_to_reply(0));
        ck_assert_str_eq(data_scan_flags_to_reply(DATA_SCAN_BARE_LF | DATA_SCAN_TOO_BIG),
                         "554 5.6.0 Message refused: bare <LF> in message\r\n");
        ck_assert_str_eq(data_scan_flags_to_reply(DATA_SCAN_BARE_CR),
                         "554 5.6.0 Message refused: bare <CR> in message\r\n");
        ck_assert(startswith(data_scan_flags_to_reply(DATA_SCAN_TOO_BIG), "552 5.3.4 "));
        ck_assert(startswith(data_scan_flags_to_reply(DATA_SCAN_HEADER_TOO_BIG), "552 5.3.4 "));
        ck_assert(startswith(data_scan_flags_to_reply(DATA_SCAN_LINE_TOO_LONG), "554 5.6.0 "));
        ck_assert(startswith(data_scan_flags_to_reply(DATA_SCAN_NUL), "554 5.6.0 "));
}
END_TEST

/* ---- Received: ---- */

START_TEST(test_received)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        setenv("TZ", "UTC", 1);
        tzset();

        ck_assert_int_eq(received_field_build(&(ReceivedInfo) {
                        .helo = "client.example", .client_ip = "192.0.2.1", .hostname = "mx.example.org",
                        .protocol = "ESMTPS", .tls = "TLSv1.3 TLS_AES_256_GCM_SHA384",
                        .session_id = UINT64_C(0x0123456789abcdef), .tx_number = 2,
                        .rcpt = "bob@example.org", .when = UINT64_C(1700000000) * USEC_PER_SEC }, &a), 0);
        ck_assert_str_eq(a,
                         "Received: from client.example ([192.0.2.1])\r\n"
                         "\tby mx.example.org (mailsec) with ESMTPS id 0123456789abcdef.2\r\n"
                         "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
                         "\tfor <bob@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\r\n");

        ck_assert_int_eq(received_field_build(&(ReceivedInfo) {
                        .helo = "[192.0.2.1]", .client_ip = "2001:db8::1", .hostname = "mx",
                        .protocol = "ESMTP", .session_id = 1, .tx_number = 1,
                        .when = UINT64_C(1700000000) * USEC_PER_SEC }, &b), 0);
        ck_assert_str_eq(b,
                         "Received: from [192.0.2.1] ([2001:db8::1])\r\n"
                         "\tby mx (mailsec) with ESMTP id 0000000000000001.1; Tue, 14 Nov 2023 22:13:20 +0000\r\n");

        /* A HELO name that would break the field's comment structure. */
        ck_assert_int_eq(received_field_build(&(ReceivedInfo) {
                        .helo = "a(b)c;", .client_ip = "192.0.2.1", .hostname = "mx",
                        .protocol = "SMTP", .when = 0 }, &c), 0);
        ck_assert(startswith(c, "Received: from a?b?c? ([192.0.2.1])\r\n"));

        ck_assert_str_eq(received_protocol(true, true, false), "ESMTPS");
        ck_assert_str_eq(received_protocol(true, false, false), "ESMTP");
        ck_assert_str_eq(received_protocol(true, true, true), "UTF8SMTPS");
        ck_assert_str_eq(received_protocol(true, false, true), "UTF8SMTP");
        ck_assert_str_eq(received_protocol(false, false, false), "SMTP");
}
END_TEST

/* ---- EHLO ---- */

START_TEST(test_ehlo_merge)
{
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *t3 = NULL;
        SmtpReply r = SMTP_REPLY_NULL;
        uint64_t size;
        unsigned ext;

        ck_assert_int_eq(smtp_reply_parse("250-backend\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-DSN\r\n"
                                          "250 XCLIENT ADDR\r\n", &r), 0);
        ck_assert_int_eq(ehlo_reply_build("mx.test", &r, 50 * 1024 * 1024, true, &t1, &size, &ext), 0);
        ck_assert_str_eq(t1, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-DSN\r\n"
                             "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 STARTTLS\r\n");
        ck_assert_uint_eq(size, 1000);
        ck_assert(ext & SMTP_EXT_8BITMIME);
        ck_assert(ext & SMTP_EXT_DSN);
        ck_assert(!(ext & SMTP_EXT_SMTPUTF8));
        ck_assert(ext & SMTP_EXT_STARTTLS);
        smtp_reply_done(&r);

        /* SIZE 0 at the backend: no limit there, ours stands; SMTPUTF8 passed on. */
        ck_assert_int_eq(smtp_reply_parse("250-backend\r\n250-SIZE 0\r\n250 SMTPUTF8\r\n", &r), 0);
        ck_assert_int_eq(ehlo_reply_build("mx.test", &r, 2048, false, &t2, &size, &ext), 0);
        ck_assert_str_eq(t2, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 2048\r\n250-SMTPUTF8\r\n"
                             "250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n");
        ck_assert_uint_eq(size, 2048);
        ck_assert(ext & SMTP_EXT_SMTPUTF8);
        ck_assert(!(ext & SMTP_EXT_STARTTLS));
        smtp_reply_done(&r);

        /* A larger backend SIZE does not raise ours. */
        ck_assert_int_eq(smtp_reply_parse("250-backend\r\n250 SIZE 999999999\r\n", &r), 0);
        ck_assert_int_eq(ehlo_reply_build("mx.test", &r, 4096, false, &t3, &size, NULL), 0);
        ck_assert_uint_eq(size, 4096);
        smtp_reply_done(&r);
}
END_TEST

static Suite* proxyd_tx_suite(void) {
        Suite *s = suite_create("proxyd-tx");
        TCase *tc;

        tc = tcase_create("scanner");
        tcase_add_test(tc, test_scanner_table);
        tcase_add_test(tc, test_scanner_byte_by_byte);
        tcase_add_test(tc, test_scanner_bdat_finish);
        tcase_add_test(tc, test_scan_replies);
        suite_add_tcase(s, tc);

        tc = tcase_create("received");
        tcase_add_test(tc, test_received);
        suite_add_tcase(s, tc);

        tc = tcase_create("ehlo");
        tcase_add_test(tc, test_ehlo_merge);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(proxyd_tx_suite);
