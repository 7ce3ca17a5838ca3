/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "smtp-reply.h"

typedef struct ReplyCase {
        const char *name;
        const char *input;      /* whole reply for smtp_reply_parse() */
        int ret;
        unsigned code;
        size_t n_lines;
        const char *first, *last;       /* texts of the first and last line */
        bool enhanced;
        unsigned enh[3];
} ReplyCase;

static const ReplyCase reply_cases[] = {
        { "single line",             "250 OK\r\n", 0, 250, 1, "OK", "OK" },
        { "bare code",               "250\r\n", 0, 250, 1, "", "" },
        { "code and SP",             "354 \r\n", 0, 354, 1, "", "" },
        { "multi-line",              "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 0, 250, 3,
          "mx.example", "SIZE 1000" },
        { "multi-line bare last",    "250-a\r\n250\r\n", 0, 250, 2, "a", "" },
        { "multi-line empty texts",  "250-\r\n250 \r\n", 0, 250, 2, "", "" },
        { "enhanced",                "250 2.1.0 Sender ok\r\n", 0, 250, 1, "2.1.0 Sender ok", .enhanced = true,
          .enh = { 2, 1, 0 } },
        { "enhanced 3 digits",       "550 5.123.456 no\r\n", 0, 550, 1, .enhanced = true, .enh = { 5, 123, 456 } },
        { "enhanced only",           "451 4.3.0\r\n", 0, 451, 1, "4.3.0", .enhanced = true, .enh = { 4, 3, 0 } },
        { "enhanced multi-line",     "550-5.7.1 first\r\n550 5.7.1 second\r\n", 0, 550, 2, "5.7.1 first",
          "5.7.1 second", .enhanced = true, .enh = { 5, 7, 1 } },
        { "enhanced class mismatch", "250 5.1.0 odd\r\n", 0, 250, 1, "5.1.0 odd" },
        { "enhanced class 3",        "354 3.0.0 go\r\n", 0, 354, 1 },
        { "enhanced leading zero",   "250 2.01.0 x\r\n", 0, 250, 1 },
        { "enhanced 4 digits",       "250 2.1234.0 x\r\n", 0, 250, 1 },
        { "enhanced no detail",      "250 2.1 x\r\n", 0, 250, 1 },
        { "enhanced glued text",     "250 2.1.0x\r\n", 0, 250, 1 },
        { "enhanced on 2nd line",    "250-a\r\n250 2.0.0 b\r\n", 0, 250, 2 },
        { "TAB and 8-bit kept",      "250 a\tb \xc3\xa4\r\n", 0, 250, 1, "a\tb \xc3\xa4" },
        { "599",                     "599 x\r\n", 0, 599, 1 },
        { "200",                     "200 x\r\n", 0, 200, 1 },
        { "code 199",                "199 x\r\n", -EBADMSG },
        { "code 600",                "600 x\r\n", -EBADMSG },
        { "code 099",                "099 x\r\n", -EBADMSG },
        { "two digits",              "25 x\r\n", -EBADMSG },
        { "four digits",             "2500 x\r\n", -EBADMSG },
        { "letter in code",          "25x ok\r\n", -EBADMSG },
        { "bad separator",           "250_ok\r\n", -EBADMSG },
        { "TAB separator",           "250\tok\r\n", -EBADMSG },
        { "mismatched codes",        "250-a\r\n251 b\r\n", -EBADMSG },
        { "mismatched class",        "250-a\r\n550 b\r\n", -EBADMSG },
        { "continuation at end",     "250-a\r\n", -EBADMSG },
        { "data after last",         "250 a\r\n250 b\r\n", -EBADMSG },
        { "no CRLF",                 "250 a", -EBADMSG },
        { "bare LF",                 "250 a\n", -EBADMSG },
        { "bare CR",                 "250 a\rb\r\n", -EBADMSG },
        { "LF inside",               "250 a\nb\r\n", -EBADMSG },
        { "ESC",                     "250 a\x1b[0m\r\n", -EBADMSG },
        { "DEL",                     "250 a\x7f\r\n", -EBADMSG },
        { "empty",                   "", -EBADMSG },
        { "empty line",              "\r\n", -EBADMSG },
        { "leading SP",              " 250 a\r\n", -EBADMSG },
};

START_TEST(test_reply_table)
{
        for (size_t i = 0; i < ELEMENTSOF(reply_cases); i++) {
                const ReplyCase *c = &reply_cases[i];
                SmtpReply reply = SMTP_REPLY_NULL;
                int r;

                r = smtp_reply_parse(c->input, &reply);
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                if (r < 0) {
                        ck_assert_msg(!reply.lines && reply.code == 0, "case '%s': output on error", c->name);
                        continue;
                }
                ck_assert_msg(reply.code == c->code, "case '%s': code %u", c->name, reply.code);
                ck_assert_msg(reply.n_lines == c->n_lines, "case '%s': %zu lines", c->name, reply.n_lines);
                ck_assert(reply.complete);
                ck_assert_ptr_null(reply.lines[reply.n_lines]);
                if (c->first)
                        ck_assert_str_eq(reply.lines[0], c->first);
                if (c->last)
                        ck_assert_str_eq(reply.lines[reply.n_lines - 1], c->last);
                ck_assert_msg(reply.has_enhanced == c->enhanced, "case '%s': has_enhanced", c->name);
                if (c->enhanced) {
                        ck_assert_uint_eq(reply.enh_class, c->enh[0]);
                        ck_assert_uint_eq(reply.enh_subject, c->enh[1]);
                        ck_assert_uint_eq(reply.enh_detail, c->enh[2]);
                }
                smtp_reply_done(&reply);
                ck_assert_ptr_null(reply.lines);
                ck_assert_uint_eq(reply.n_lines, 0);
        }
}
END_TEST

START_TEST(test_reply_feed)
{
        SmtpReply reply = SMTP_REPLY_NULL;

        ck_assert_int_eq(smtp_reply_feed(&reply, "250-a", 5), 0);
        ck_assert(!reply.complete);
        /* a bad line leaves the reply as it was */
        ck_assert_int_eq(smtp_reply_feed(&reply, "251 b", 5), -EBADMSG);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250 b\0", 6), -EBADMSG);
        ck_assert_uint_eq(reply.n_lines, 1);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250 b", 5), 1);
        ck_assert(reply.complete);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250 c", 5), -EALREADY);
        ck_assert_uint_eq(reply.n_lines, 2);
        ck_assert(smtp_reply_is_positive(&reply));
        ck_assert(!smtp_reply_is_transient(&reply));
        smtp_reply_done(&reply);
        smtp_reply_done(&reply);   /* idempotent */

        ck_assert_int_eq(smtp_reply_feed(&reply, "421 4.3.2 bye", 13), 1);
        ck_assert(smtp_reply_is_transient(&reply));
        ck_assert(!smtp_reply_is_positive(&reply));
        smtp_reply_done(&reply);
}
END_TEST

START_TEST(test_reply_limits)
{
        SmtpReply reply = SMTP_REPLY_NULL;
        char *line;

        /* lines: 64 accepted, a 65th refused */
        for (size_t i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
                ck_assert_int_eq(smtp_reply_feed(&reply, "250-x", 5), 0);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250-x", 5), 0);
        ck_assert_uint_eq(reply.n_lines, SMTP_REPLY_LINES_MAX);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250 x", 5), -E2BIG);
        smtp_reply_done(&reply);

        /* the 64th line may be the last one */
        for (size_t i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
                ck_assert_int_eq(smtp_reply_feed(&reply, "250-x", 5), 0);
        ck_assert_int_eq(smtp_reply_feed(&reply, "250 x", 5), 1);
        smtp_reply_done(&reply);

        /* line length: exactly SMTP_REPLY_LINE_MAX, and one over */
        line = malloc(SMTP_REPLY_LINE_MAX + 2);
        ck_assert_ptr_nonnull(line);
        memcpy(line, "250 ", 4);
        memset(line + 4, 'a', SMTP_REPLY_LINE_MAX - 2);
        ck_assert_int_eq(smtp_reply_feed(&reply, line, SMTP_REPLY_LINE_MAX + 1), -E2BIG);
        ck_assert_int_eq(smtp_reply_feed(&reply, line, SMTP_REPLY_LINE_MAX), 1);
        ck_assert_uint_eq(strlen(reply.lines[0]), SMTP_REPLY_LINE_MAX - 4);
        smtp_reply_done(&reply);
        free(line);
}
END_TEST

START_TEST(test_reply_ehlo)
{
        SmtpReply reply = SMTP_REPLY_NULL;
        const char *param = "unset";

        ck_assert_int_eq(smtp_reply_parse("250-mx.example says hi\r\n"
                                          "250-PIPELINING\r\n"
                                          "250-SIZE 10240000\r\n"
                                          "250-auth PLAIN  LOGIN\r\n"
                                          "250-STARTTLSX\r\n"
                                          "250 8BITMIME\r\n", &reply), 0);
        ck_assert(smtp_reply_ehlo_has(&reply, "PIPELINING", &param));
        ck_assert_ptr_null(param);
        ck_assert(smtp_reply_ehlo_has(&reply, "size", &param));
        ck_assert_str_eq(param, "10240000");
        ck_assert(smtp_reply_ehlo_has(&reply, "AUTH", &param));
        ck_assert_str_eq(param, "PLAIN  LOGIN");
        ck_assert(smtp_reply_ehlo_has(&reply, "8BITMIME", NULL));
        ck_assert(!smtp_reply_ehlo_has(&reply, "STARTTLS", NULL));   /* not a prefix match */
        ck_assert(!smtp_reply_ehlo_has(&reply, "mx.example", NULL)); /* the greeting line is skipped */
        ck_assert(!smtp_reply_ehlo_has(&reply, "SMTPUTF8", NULL));
        smtp_reply_done(&reply);
}
END_TEST

static Suite* smtp_reply_suite(void) {
        Suite *s = suite_create("smtp-reply");
        TCase *tc;

        tc = tcase_create("whole replies");
        tcase_add_test(tc, test_reply_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("line by line");
        tcase_add_test(tc, test_reply_feed);
        tcase_add_test(tc, test_reply_limits);
        suite_add_tcase(s, tc);

        tc = tcase_create("EHLO keywords");
        tcase_add_test(tc, test_reply_ehlo);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(smtp_reply_suite);
