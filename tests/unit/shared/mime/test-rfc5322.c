/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "rfc5322.h"

typedef struct HeaderCase {
        const char *name;
        const char *input;
        Rfc5322Limits limits;   /* all zero: defaults */
        int ret;                /* what the call after the last expected field returns */
        size_t n_fields;
        const char *fields[8];  /* name, raw value pairs (at most 4 fields) */
        size_t body;            /* *offset after a final 0 */
} HeaderCase;

#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X990 X100 X100 X100 X100 X100 X100 X100 X100 X100 X10 X10 X10 X10 X10 X10 X10 X10 X10

static const HeaderCase header_cases[] = {
        { "one field",               "Subject: hi\r\n\r\nbody", .n_fields = 1, .fields = { "Subject", " hi" }, .body = 15 },
        { "two fields",              "From: a@b\r\nTo: c@d\r\n\r\n", .n_fields = 2,
          .fields = { "From", " a@b", "To", " c@d" }, .body = 22 },
        { "LF line ends",            "From: a@b\nTo: c@d\n\nbody\n", .n_fields = 2,
          .fields = { "From", " a@b", "To", " c@d" }, .body = 19 },
        { "mixed line ends",         "A: 1\nB: 2\r\n\n", .n_fields = 2, .fields = { "A", " 1", "B", " 2" }, .body = 12 },
        { "folded",                  "Subject: a\r\n b\r\n\tc\r\nX: y\r\n\r\n", .n_fields = 2,
          .fields = { "Subject", " a\r\n b\r\n\tc", "X", " y" }, .body = 28 },
        { "folded LF",               "Subject: a\n b\n\n", .n_fields = 1, .fields = { "Subject", " a\n b" }, .body = 15 },
        { "WSP-only continuation",   "A: 1\r\n \r\nB: 2\r\n\r\n", .n_fields = 2,
          .fields = { "A", " 1\r\n ", "B", " 2" }, .body = 17 },
        { "no space after colon",    "A:b\r\n\r\n", .n_fields = 1, .fields = { "A", "b" }, .body = 7 },
        { "empty value",             "A:\r\n\r\n", .n_fields = 1, .fields = { "A", "" }, .body = 6 },
        { "obs WSP before colon",    "Subject : hi\r\n\r\n", .n_fields = 1, .fields = { "Subject", " hi" }, .body = 16 },
        { "obs TAB before colon",    "Subject\t\t: hi\r\n\r\n", .n_fields = 1, .fields = { "Subject", " hi" }, .body = 17 },
        { "colon in value",          "A: b:c\r\n\r\n", .n_fields = 1, .fields = { "A", " b:c" }, .body = 10 },
        { "odd printable name",      "X-!#$%&'*+-/=?^_`{|}~;<>@[]\"().,: v\r\n\r\n", .n_fields = 1,
          .fields = { "X-!#$%&'*+-/=?^_`{|}~;<>@[]\"().,", " v" }, .body = 39 },
        { "8-bit value kept",        "S: \xc3\xa4\r\n\r\n", .n_fields = 1, .fields = { "S", " \xc3\xa4" }, .body = 9 },
        { "no body",                 "A: 1\r\n", .n_fields = 1, .fields = { "A", " 1" }, .body = 6 },
        { "no line end at all",      "A: 1", .n_fields = 1, .fields = { "A", " 1" }, .body = 4 },
        { "folded at end",           "A: 1\r\n 2", .n_fields = 1, .fields = { "A", " 1\r\n 2" }, .body = 8 },
        { "empty buffer",            "", .body = 0 },
        { "only empty line",         "\r\nbody", .body = 2 },
        { "only LF",                 "\nbody", .body = 1 },
        { "body keeps folds",        "A: 1\r\n\r\n b", .n_fields = 1, .fields = { "A", " 1" }, .body = 8 },
        { "continuation first",      " A: 1\r\n\r\n", .ret = -EBADMSG },
        { "TAB continuation first",  "\tA: 1\r\n", .ret = -EBADMSG },
        { "no colon",                "Subject hi\r\n\r\n", .ret = -EBADMSG },
        { "space in name",           "Sub ject: hi\r\n\r\n", .ret = -EBADMSG },
        { "empty name",              ": hi\r\n\r\n", .ret = -EBADMSG },
        { "mbox From line",          "From a@b Mon Jan 1\r\nA: 1\r\n\r\n", .ret = -EBADMSG },
        { "control in name",         "Sub\x01ject: x\r\n\r\n", .ret = -EBADMSG },
        { "8-bit in name",           "Sub\xc3\xa4: x\r\n\r\n", .ret = -EBADMSG },
        { "DEL in name",             "A\x7f: x\r\n\r\n", .ret = -EBADMSG },
        { "bad second field",        "A: 1\r\nbad\r\n\r\n", .ret = -EBADMSG, .n_fields = 1, .fields = { "A", " 1" } },
        { "bare CR line",            "\rA: 1\r\n\r\n", .ret = -EBADMSG },
        { "line 998",                "A: " X990 "xxxxx\r\n\r\n", .n_fields = 1, .fields = { "A", " " X990 "xxxxx" },
          .body = 1002 },
        { "line 999",                "A: " X990 "xxxxxx\r\n\r\n", .ret = -E2BIG },
        { "continuation 999",        "A: 1\r\n " X990 "xxxxxxxx\r\n\r\n", .ret = -E2BIG },
        { "small max_line",          "A: 123456\r\n\r\n", .limits = { 8, 100, 10 }, .ret = -E2BIG },
        { "small max_line exact",    "A: 1234\r\n\r\n", .limits = { 7, 100, 10 }, .n_fields = 1,
          .fields = { "A", " 1234" }, .body = 11 },
        { "field limit exact",       "A: 1\r\n 2\r\n\r\n", .limits = { 100, 10, 10 }, .n_fields = 1,
          .fields = { "A", " 1\r\n 2" }, .body = 12 },
        { "field limit over",        "A: 1\r\n 23\r\n\r\n", .limits = { 100, 10, 10 }, .ret = -E2BIG },
        { "field count exact",       "A: 1\r\nB: 2\r\n\r\n", .limits = { 100, 100, 2 }, .n_fields = 2,
          .fields = { "A", " 1", "B", " 2" }, .body = 14 },
        { "field count over",        "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", .limits = { 100, 100, 2 }, .ret = -E2BIG,
          .n_fields = 2, .fields = { "A", " 1", "B", " 2" } },
};

START_TEST(test_header_table)
{
        for (size_t i = 0; i < ELEMENTSOF(header_cases); i++) {
                const HeaderCase *c = &header_cases[i];
                const Rfc5322Limits *limits = c->limits.max_line ? &c->limits : NULL;
                size_t len = strlen(c->input), offset = 0, n = 0, k;
                Rfc5322Field f;
                int r;

                for (k = 0;; k++) {
                        size_t before = offset;

                        r = rfc5322_field_next(c->input, len, limits, &offset, &n, &f);
                        if (r <= 0) {
                                if (r < 0)
                                        ck_assert_msg(offset == before, "case '%s': offset moved on error", c->name);
                                break;
                        }
                        ck_assert_msg(k < c->n_fields, "case '%s': unexpected field %zu", c->name, k);
                        ck_assert_msg(f.name_len == strlen(c->fields[2 * k]) &&
                                      memcmp(f.name, c->fields[2 * k], f.name_len) == 0,
                                      "case '%s': name '%.*s'", c->name, (int) f.name_len, f.name);
                        ck_assert_msg(f.value_len == strlen(c->fields[2 * k + 1]) &&
                                      memcmp(f.value, c->fields[2 * k + 1], f.value_len) == 0,
                                      "case '%s': value '%.*s'", c->name, (int) f.value_len, f.value);
                        ck_assert_uint_eq(f.raw_offset, before);
                        ck_assert_uint_eq(f.raw_offset + f.raw_len, offset);
                        ck_assert_uint_eq(n, k + 1);
                }
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                ck_assert_msg(k == c->n_fields, "case '%s': %zu fields, expected %zu", c->name, k, c->n_fields);
                if (r == 0)
                        ck_assert_msg(offset == c->body, "case '%s': body at %zu, expected %zu", c->name, offset,
                                      c->body);
        }
}
END_TEST

START_TEST(test_header_without_counter)
{
        const char *m = "A: 1\r\nB: 2\r\n\r\n";
        size_t offset = 0;
        Rfc5322Field f;

        ck_assert_int_eq(rfc5322_field_next(m, strlen(m), NULL, &offset, NULL, &f), 1);
        ck_assert(rfc5322_field_is(&f, "a"));
        ck_assert(!rfc5322_field_is(&f, "AB"));
        ck_assert(!rfc5322_field_is(&f, ""));
        ck_assert_int_eq(rfc5322_field_next(m, strlen(m), NULL, &offset, NULL, &f), 1);
        ck_assert(rfc5322_field_is(&f, "B"));
        ck_assert_int_eq(rfc5322_field_next(m, strlen(m), NULL, &offset, NULL, &f), 0);
        ck_assert_uint_eq(offset, strlen(m));
        /* at the end it stays at the end */
        ck_assert_int_eq(rfc5322_field_next(m, strlen(m), NULL, &offset, NULL, &f), 0);
        ck_assert_uint_eq(offset, strlen(m));
}
END_TEST

START_TEST(test_header_embedded_nul)
{
        /* A NUL in a value is kept (values are views); in a name it is an error. */
        static const char m[] = "A: x\0y\r\nB\0: 1\r\n\r\n";
        size_t offset = 0, n = 0;
        Rfc5322Field f;

        ck_assert_int_eq(rfc5322_field_next(m, sizeof(m) - 1, NULL, &offset, &n, &f), 1);
        ck_assert_uint_eq(f.value_len, 4);
        ck_assert_int_eq(rfc5322_field_next(m, sizeof(m) - 1, NULL, &offset, &n, &f), -EBADMSG);
}
END_TEST

typedef struct UnfoldCase {
        const char *name;
        const char *input;
        const char *output;
} UnfoldCase;

static const UnfoldCase unfold_cases[] = {
        { "plain",                   "hello", "hello" },
        { "trim",                    " \t hello \t ", "hello" },
        { "CRLF fold",               " a\r\n b", "a b" },
        { "LF fold",                 " a\n\tb", "a\tb" },
        { "two folds",               " a\r\n b\r\n  c", "a b  c" },
        { "WSP-only line",           " a\r\n \r\n b", "a  b" },
        { "CRLF not before WSP",     "a\r\nb", "a\r\nb" },
        { "trailing fold",           " a\r\n ", "a" },
        { "empty",                   "", "" },
        { "only WSP",                " \t ", "" },
        { "8-bit",                   " \xc3\xa4 ", "\xc3\xa4" },
};

START_TEST(test_unfold_table)
{
        for (size_t i = 0; i < ELEMENTSOF(unfold_cases); i++) {
                const UnfoldCase *c = &unfold_cases[i];
                char *s = NULL;

                ck_assert_int_eq(rfc5322_unfold(c->input, strlen(c->input), &s), 0);
                ck_assert_msg(strcmp(s, c->output) == 0, "case '%s': '%s', expected '%s'", c->name, s, c->output);
                free(s);
        }
}
END_TEST

START_TEST(test_unfold_field)
{
        const char *m = "Subject: =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n\r\n";
        size_t offset = 0, n = 0;
        Rfc5322Field f;
        char *s = NULL;

        ck_assert_int_eq(rfc5322_field_next(m, strlen(m), NULL, &offset, &n, &f), 1);
        ck_assert_int_eq(rfc5322_unfold(f.value, f.value_len, &s), 0);
        ck_assert_str_eq(s, "=?utf-8?q?a?= =?utf-8?q?b?=");
        free(s);
}
END_TEST

static Suite* rfc5322_suite(void) {
        Suite *s = suite_create("rfc5322");
        TCase *tc;

        tc = tcase_create("header fields");
        tcase_add_test(tc, test_header_table);
        tcase_add_test(tc, test_header_without_counter);
        tcase_add_test(tc, test_header_embedded_nul);
        suite_add_tcase(s, tc);

        tc = tcase_create("unfolding");
        tcase_add_test(tc, test_unfold_table);
        tcase_add_test(tc, test_unfold_field);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(rfc5322_suite);
