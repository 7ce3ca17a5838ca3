/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "smtp-params.h"

typedef struct ParamsCase {
        const char *name;
        const char *input;
        bool allow_utf8;
        int ret;
        size_t n;
        const char *kv[6];      /* keyword, value (NULL: none) pairs, checked for the first 3 */
} ParamsCase;

#define P16 "A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1"

static const ParamsCase params_cases[] = {
        { "empty",                   "", .n = 0 },
        { "only SP",                 "   ", .n = 0 },
        { "one keyword",             "SMTPUTF8", .n = 1, .kv = { "SMTPUTF8", NULL } },
        { "one value",               "SIZE=1000", .n = 1, .kv = { "SIZE", "1000" } },
        { "two",                     "SIZE=1000 BODY=8BITMIME", .n = 2, .kv = { "SIZE", "1000", "BODY", "8BITMIME" } },
        { "leading and trailing SP", "  SIZE=1   BODY=7BIT  ", .n = 2, .kv = { "SIZE", "1", "BODY", "7BIT" } },
        { "case kept",               "size=1 Body=7bit", .n = 2, .kv = { "size", "1", "Body", "7bit" } },
        { "keyword with digit",      "X1-Y=z", .n = 1, .kv = { "X1-Y", "z" } },
        { "keyword starts digit",    "1X=z", .n = 1, .kv = { "1X", "z" } },
        { "keyword starts hyphen",   "-X=z", .ret = -EBADMSG },
        { "keyword underscore",      "X_Y=z", .ret = -EBADMSG },
        { "keyword dot",             "X.Y", .ret = -EBADMSG },
        { "empty keyword",           "=z", .ret = -EBADMSG },
        { "empty value",             "SIZE=", .ret = -EBADMSG },
        { "value with =",            "A=b=c", .ret = -EBADMSG },
        { "value all printable",     "ENVID=!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~", .n = 1,
          .kv = { "ENVID", "!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~" } },
        { "value with TAB",          "A=b\tc", .ret = -EBADMSG },
        { "value with DEL",          "A=b\x7f", .ret = -EBADMSG },
        { "value with CR",           "A=b\r", .ret = -EBADMSG },
        { "keyword then TAB",        "A\tB", .ret = -EBADMSG },
        { "duplicate",               "SIZE=1 SIZE=2", .ret = -ENOTUNIQ },
        { "duplicate any case",      "SIZE=1 size=2", .ret = -ENOTUNIQ },
        { "duplicate no value",      "SMTPUTF8 smtputf8", .ret = -ENOTUNIQ },
        { "prefix is not duplicate", "SIZE=1 SIZES=2", .n = 2, .kv = { "SIZE", "1", "SIZES", "2" } },
        { "16 params",               P16, .n = 16, .kv = { "A", "1", "B", "1", "C", "1" } },
        { "17 params",               P16 " Q=1", .ret = -E2BIG },
        { "UTF-8 value refused",     "X=\xc3\xa4", .ret = -EILSEQ },
        { "UTF-8 value",             "X=\xc3\xa4", .allow_utf8 = true, .n = 1, .kv = { "X", "\xc3\xa4" } },
        { "UTF-8 keyword",           "\xc3\xa4=1", .allow_utf8 = true, .ret = -EILSEQ },
        { "UTF-8 overlong",          "X=\xc1\x81", .allow_utf8 = true, .ret = -EILSEQ },
        { "UTF-8 surrogate",         "X=\xed\xb0\x80", .allow_utf8 = true, .ret = -EILSEQ },
        { "UTF-8 truncated",         "X=a\xe2\x82", .allow_utf8 = true, .ret = -EILSEQ },
        { "UTF-8 4 byte",            "X=\xf0\x90\x80\x80", .allow_utf8 = true, .n = 1, .kv = { "X", "\xf0\x90\x80\x80" } },
};

START_TEST(test_params_table)
{
        for (size_t i = 0; i < ELEMENTSOF(params_cases); i++) {
                const ParamsCase *c = &params_cases[i];
                SmtpParams p = SMTP_PARAMS_NULL;
                int r;

                r = smtp_params_parse(c->input, strlen(c->input), c->allow_utf8, &p);
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                if (r < 0) {
                        ck_assert_msg(!p.params && p.n_params == 0, "case '%s': output on error", c->name);
                        continue;
                }
                ck_assert_msg(p.n_params == c->n, "case '%s': %zu params, expected %zu", c->name, p.n_params, c->n);
                ck_assert(c->n > 0 || !p.params);
                for (size_t j = 0; j < MIN(c->n, (size_t) 3); j++) {
                        ck_assert_str_eq(p.params[j].keyword, c->kv[2 * j]);
                        if (c->kv[2 * j + 1])
                                ck_assert_str_eq(p.params[j].value, c->kv[2 * j + 1]);
                        else
                                ck_assert_ptr_null(p.params[j].value);
                }
                smtp_params_done(&p);
                ck_assert_ptr_null(p.params);
                ck_assert_uint_eq(p.n_params, 0);
        }
}
END_TEST

START_TEST(test_params_embedded_nul)
{
        SmtpParams p = SMTP_PARAMS_NULL;

        ck_assert_int_eq(smtp_params_parse("A=b\0c", 5, false, &p), -EBADMSG);
        ck_assert_int_eq(smtp_params_parse("A\0", 2, false, &p), -EBADMSG);
        ck_assert_ptr_null(p.params);
}
END_TEST

START_TEST(test_params_find)
{
        SmtpParams p = SMTP_PARAMS_NULL;
        const SmtpParam *f;

        ck_assert_int_eq(smtp_params_parse("SIZE=5 body=8BITMIME SMTPUTF8", 29, false, &p), 0);
        f = smtp_params_find(&p, "size");
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(f->value, "5");
        f = smtp_params_find(&p, "BODY");
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(f->keyword, "body");
        f = smtp_params_find(&p, "SmtpUtf8");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_null(f->value);
        ck_assert_ptr_null(smtp_params_find(&p, "SIZ"));
        ck_assert_ptr_null(smtp_params_find(&p, "RET"));
        smtp_params_done(&p);
        ck_assert_ptr_null(smtp_params_find(&p, "SIZE"));
}
END_TEST

typedef struct TypedCase {
        const char *name;
        enum { SIZE, BODY, XTEXT, NOTIFY, RET, ORCPT } kind;
        const char *input;
        int ret;                /* SIZE: errno; BODY: enum; others: bool */
        uint64_t size;
} TypedCase;

static const TypedCase typed_cases[] = {
        { "size zero",               SIZE, "0", 0, 0 },
        { "size",                    SIZE, "1048576", 0, 1048576 },
        { "size leading zeros",      SIZE, "007", 0, 7 },
        { "size uint64 max",         SIZE, "18446744073709551615", 0, UINT64_MAX },
        { "size uint64 max + 1",     SIZE, "18446744073709551616", -EBADMSG },
        { "size huge",               SIZE, "99999999999999999999999", -EBADMSG },
        { "size empty",              SIZE, "", -EBADMSG },
        { "size negative",           SIZE, "-1", -EBADMSG },
        { "size plus",               SIZE, "+1", -EBADMSG },
        { "size hex",                SIZE, "0x10", -EBADMSG },
        { "size trailing letter",    SIZE, "10k", -EBADMSG },
        { "size SP",                 SIZE, " 1", -EBADMSG },
        { "body 7bit",               BODY, "7BIT", SMTP_BODY_7BIT },
        { "body 8bitmime",           BODY, "8BITMIME", SMTP_BODY_8BITMIME },
        { "body lower case",         BODY, "8bitmime", SMTP_BODY_8BITMIME },
        { "body binarymime",         BODY, "BINARYMIME", SMTP_BODY_BINARYMIME },
        { "body unknown",            BODY, "8BIT", _SMTP_BODY_INVALID },
        { "body empty",              BODY, "", _SMTP_BODY_INVALID },
        { "xtext plain",             XTEXT, "abc.def@x", true },
        { "xtext hexchar",           XTEXT, "a+2Bb+3D", true },
        { "xtext lower hex",         XTEXT, "a+2b", false },
        { "xtext short hex",         XTEXT, "a+2", false },
        { "xtext plus alone",        XTEXT, "+", false },
        { "xtext equals",            XTEXT, "a=b", false },
        { "xtext space",             XTEXT, "a b", false },
        { "xtext 8-bit",             XTEXT, "\xc3\xa4", false },
        { "xtext empty",             XTEXT, "", false },
        { "notify never",            NOTIFY, "NEVER", true },
        { "notify never lower",      NOTIFY, "never", true },
        { "notify list",             NOTIFY, "SUCCESS,FAILURE,DELAY", true },
        { "notify one",              NOTIFY, "delay", true },
        { "notify never in list",    NOTIFY, "NEVER,SUCCESS", false },
        { "notify repeated",         NOTIFY, "SUCCESS,SUCCESS", false },
        { "notify empty element",    NOTIFY, "SUCCESS,", false },
        { "notify leading comma",    NOTIFY, ",DELAY", false },
        { "notify unknown",          NOTIFY, "ALWAYS", false },
        { "notify empty",            NOTIFY, "", false },
        { "ret full",                RET, "FULL", true },
        { "ret hdrs lower",          RET, "hdrs", true },
        { "ret other",               RET, "BODY", false },
        { "ret empty",               RET, "", false },
        { "orcpt",                   ORCPT, "rfc822;user@example.com", true },
        { "orcpt hexchar",           ORCPT, "rfc822;a+2Bb@example.com", true },
        { "orcpt utf-8 type",        ORCPT, "utf-8;user@example.com", true },
        { "orcpt no type",           ORCPT, ";user@example.com", false },
        { "orcpt no semicolon",      ORCPT, "user@example.com", false },
        { "orcpt empty address",     ORCPT, "rfc822;", false },
        { "orcpt bad xtext",         ORCPT, "rfc822;a=b", false },
        { "orcpt bad type",          ORCPT, "rfc 822;a", false },
};

START_TEST(test_typed_table)
{
        for (size_t i = 0; i < ELEMENTSOF(typed_cases); i++) {
                const TypedCase *c = &typed_cases[i];
                uint64_t size = 4242;
                int r;

                switch (c->kind) {
                case SIZE:
                        r = smtp_param_parse_size(c->input, &size);
                        if (r == 0)
                                ck_assert_msg(size == c->size, "case '%s': size", c->name);
                        else
                                ck_assert_msg(size == 4242, "case '%s': output on error", c->name);
                        break;
                case BODY:
                        r = smtp_body_from_string(c->input);
                        break;
                case XTEXT:
                        r = smtp_xtext_valid(c->input);
                        break;
                case NOTIFY:
                        r = smtp_notify_valid(c->input);
                        break;
                case RET:
                        r = smtp_ret_valid(c->input);
                        break;
                case ORCPT:
                        r = smtp_orcpt_valid(c->input);
                        break;
                default:
                        ck_abort();
                }
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
        }
        ck_assert(!smtp_xtext_valid(NULL));
        ck_assert(!smtp_notify_valid(NULL));
        ck_assert(!smtp_ret_valid(NULL));
        ck_assert(!smtp_orcpt_valid(NULL));
        ck_assert_int_eq(smtp_body_from_string(NULL), _SMTP_BODY_INVALID);
        ck_assert_int_eq(smtp_param_parse_size(NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_utf8_char_len)
{
        ck_assert_uint_eq(smtp_utf8_char_len("\xc2\x80", 2), 2);
        ck_assert_uint_eq(smtp_utf8_char_len("\xdf\xbf", 2), 2);
        ck_assert_uint_eq(smtp_utf8_char_len("\xe0\xa0\x80", 3), 3);
        ck_assert_uint_eq(smtp_utf8_char_len("\xef\xbf\xbf", 3), 3);
        ck_assert_uint_eq(smtp_utf8_char_len("\xf4\x8f\xbf\xbf", 4), 4);
        ck_assert_uint_eq(smtp_utf8_char_len("a", 1), 0);
        ck_assert_uint_eq(smtp_utf8_char_len("\xc2\x80", 1), 0);        /* truncated */
        ck_assert_uint_eq(smtp_utf8_char_len("\xc1\xbf", 2), 0);        /* overlong */
        ck_assert_uint_eq(smtp_utf8_char_len("\xe0\x9f\xbf", 3), 0);    /* overlong */
        ck_assert_uint_eq(smtp_utf8_char_len("\xf0\x8f\xbf\xbf", 4), 0); /* overlong */
        ck_assert_uint_eq(smtp_utf8_char_len("\xed\xa0\x80", 3), 0);    /* surrogate */
        ck_assert_uint_eq(smtp_utf8_char_len("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
        ck_assert_uint_eq(smtp_utf8_char_len("\xf5\x80\x80\x80", 4), 0);
        ck_assert_uint_eq(smtp_utf8_char_len("\xe2\x28\xa1", 3), 0);    /* bad continuation */
        ck_assert_uint_eq(smtp_utf8_char_len("", 0), 0);
}
END_TEST

static Suite* smtp_params_suite(void) {
        Suite *s = suite_create("smtp-params");
        TCase *tc;

        tc = tcase_create("parameter list");
        tcase_add_test(tc, test_params_table);
        tcase_add_test(tc, test_params_embedded_nul);
        tcase_add_test(tc, test_params_find);
        suite_add_tcase(s, tc);

        tc = tcase_create("typed values");
        tcase_add_test(tc, test_typed_table);
        tcase_add_test(tc, test_utf8_char_len);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(smtp_params_suite);
