/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdlib.h>
#include <string.h>

#include "auth-results.h"
#include "check-main.h"
#include "cleanup.h"
#include "string-util.h"

/* Values of Authentication-Results fields, the text after the colon. The first group is
 * RFC 8601 Appendix B; the rest exercises CFWS, quoting and the error paths. */
static const struct {
        const char *name;
        const char *value;
        int ret;
        const char *id;
        unsigned version;
} parse_table[] = {
        { "B.2 nearly trivial", " example.org 1; none", 0, "example.org", 1 },
        { "B.3 spf", " example.com;\r\n          spf=pass smtp.mailfrom=example.net", 0, "example.com", 1 },
        { "B.4 first", " example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
          "          spf=pass smtp.mailfrom=example.net", 0, "example.com", 1 },
        { "B.4 second", " example.com; iprev=pass\r\n          policy.iprev=192.0.2.200", 0, "example.com", 1 },
        { "B.5 dkim", " example.com;\r\n          dkim=pass (good signature) header.d=example.com", 0, "example.com", 1 },
        { "B.6 router", " example.com;\r\n    dkim=pass reason=\"good signature\"\r\n"
          "      header.i=@mail-router.example.net;\r\n    dkim=fail reason=\"bad signature\"\r\n"
          "      header.i=@newyork.example.com", 0, "example.com", 1 },
        { "B.6 newyork", " example.net;\r\n    dkim=pass (good signature) header.i=@newyork.example.com",
          0, "example.net", 1 },
        { "B.7 comment-heavy", " foo.example.net (foobar) 1 (baz);\r\n"
          "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
          "      policy (A dot can go here) . (like that) expired\r\n"
          "      (this surprised me) = (as I wasn't expecting it) 1362471462", 0, "foo.example.net", 1 },

        { "no leading space", "mx.example.com;spf=pass", 0, "mx.example.com", 1 },
        { "comment before id", " (our relay) mx.example.com; none", 0, "mx.example.com", 1 },
        { "nested comment", " ((a (b) \\) c)) mx.example.com ; none", 0, "mx.example.com", 1 },
        { "folded before id", "\r\n\tmx.example.com;\r\n\tspf=none", 0, "mx.example.com", 1 },
        { "tab and comment after", "\tmx.example.com\t(x);\tnone", 0, "mx.example.com", 1 },
        { "quoted id", " \"mx example\" ; none", 0, "mx example", 1 },
        { "quoted id with escapes", " \"a\\\"b\\\\c\"; none", 0, "a\"b\\c", 1 },
        { "quoted id folded", " \"mx.\r\n example\"; none", 0, "mx. example", 1 },
        { "version 2", " mx.example.com 2; none", 0, "mx.example.com", 2 },
        { "version with comments", " mx.example.com (c) 10 (d) ; none", 0, "mx.example.com", 10 },
        { "id only", " mx.example.com", 0, "mx.example.com", 1 },
        { "id and cfws only", " mx.example.com (nothing else) ", 0, "mx.example.com", 1 },
        { "mixed case kept", " MX.Example.COM; none", 0, "MX.Example.COM", 1 },
        { "utf-8 id", " m\xc3\xbcnchen.example; none", 0, "m\xc3\xbcnchen.example", 1 },

        { "empty", "", -EBADMSG },
        { "blank", " \r\n\t ", -EBADMSG },
        { "comment only", " (just a comment)", -EBADMSG },
        { "semicolon first", " ; spf=pass", -EBADMSG },
        { "unterminated comment", " (abc mx.example.com; none", -EBADMSG },
        { "unterminated comment after id", " mx.example.com (abc; none", -EBADMSG },
        { "unterminated quote", " \"mx.example.com; none", -EBADMSG },
        { "empty quoted id", " \"\"; none", -EBADMSG },
        { "junk after id", " mx.example.com spf=pass", -EBADMSG },
        { "at sign", " user@mx.example.com; none", -EBADMSG },
        { "version junk", " mx.example.com 1x; none", -EBADMSG },
        { "version too long", " mx.example.com 12345678901; none", -EBADMSG },
        { "backslash at end of comment", " (abc\\", -EBADMSG },
        { "comment too deep", " ((((((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))))))) mx; none", -EBADMSG },
};

START_TEST(test_parse_table)
{
        for (size_t i = 0; i < ELEMENTSOF(parse_table); i++) {
                _cleanup_free_ char *id = NULL;
                unsigned version = 0;
                int r;

                r = auth_results_parse_authserv_id(parse_table[i].value, strlen(parse_table[i].value), &id, &version);
                ck_assert_msg(r == parse_table[i].ret, "%s: returned %d, expected %d",
                              parse_table[i].name, r, parse_table[i].ret);
                if (r < 0) {
                        ck_assert_msg(!id, "%s: id set on failure", parse_table[i].name);
                        continue;
                }
                ck_assert_msg(streq(id, parse_table[i].id), "%s: id \"%s\"", parse_table[i].name, id);
                ck_assert_msg(version == parse_table[i].version, "%s: version %u", parse_table[i].name, version);
        }
}
END_TEST

START_TEST(test_parse_long_id)
{
        _cleanup_free_ char *v = NULL, *id = NULL;

        v = malloc(AUTH_RESULTS_VALUE_MAX + 10);
        ck_assert_ptr_nonnull(v);
        memset(v, 'a', AUTH_RESULTS_VALUE_MAX + 1);
        ck_assert_int_eq(auth_results_parse_authserv_id(v, AUTH_RESULTS_VALUE_MAX + 1, &id, NULL), -E2BIG);
        ck_assert_ptr_null(id);
        ck_assert_int_eq(auth_results_parse_authserv_id(v, AUTH_RESULTS_VALUE_MAX, &id, NULL), 0);
        ck_assert_uint_eq(strlen(id), AUTH_RESULTS_VALUE_MAX);
}
END_TEST

/* Not NUL-terminated input: the parser must stay inside len. */
START_TEST(test_parse_length_bound)
{
        _cleanup_free_ char *id = NULL;
        const char *v = " mx.example.com; none";

        ck_assert_int_eq(auth_results_parse_authserv_id(v, 6, &id, NULL), 0);
        ck_assert_str_eq(id, "mx.ex");
        ck_assert_int_eq(auth_results_parse_authserv_id(" \"abc\"", 4, &id, NULL), -EBADMSG);
}
END_TEST

typedef enum Step {
        STEP_END,
        STEP_SPF,
        STEP_DKIM,
        STEP_DMARC,
        STEP_ARC,
        STEP_RAW,       /* a = method, b = result, c = reason */
        STEP_PROP,      /* a = ptype, b = property, c = value */
} Step;

static const struct {
        const char *name;
        const char *authserv_id;
        struct {
                Step step;
                const char *a, *b, *c, *d, *e;
                int ret;
        } steps[6];
        const char *expected;
} format_table[] = {
        { "none", "mx.example.com", { { STEP_END } }, " mx.example.com; none" },
        { "all four", "mx.example.com", {
                { STEP_SPF, "pass", NULL, "sender@example.net", "mail.example.net" },
                { STEP_DKIM, "pass", NULL, "example.net", "sel", "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSb" },
                { STEP_DMARC, "pass", NULL, "example.net" },
                { STEP_ARC, "none", NULL, "192.0.2.1" },
          },
          " mx.example.com;\r\n"
          "\tspf=pass smtp.mailfrom=sender@example.net smtp.helo=mail.example.net;\r\n"
          "\tdkim=pass header.d=example.net header.s=sel header.b=dzdVyOfA;\r\n"
          "\tdmarc=pass header.from=example.net;\r\n"
          "\tarc=none smtp.remote-ip=192.0.2.1" },
        { "reasons quoted", "mx.example.com", {
                { STEP_DKIM, "fail", "body hash did not verify", "example.com", "s1", "ab/cd+e=fgh" },
                { STEP_SPF, "softfail", "x", "@example.org", NULL },
          },
          " mx.example.com;\r\n"
          "\tdkim=fail reason=\"body hash did not verify\" header.d=example.com\r\n"
          "\theader.s=s1 header.b=\"ab/cd+e=\";\r\n"
          "\tspf=softfail reason=x smtp.mailfrom=@example.org" },
        { "odd local part and escapes", "mx.example.com", {
                { STEP_SPF, "fail", "say \"no\" \\ now", "\"john doe\"@example.net", NULL },
          },
          " mx.example.com;\r\n"
          "\tspf=fail reason=\"say \\\"no\\\" \\\\ now\"\r\n"
          "\tsmtp.mailfrom=\"\\\"john doe\\\"@example.net\"" },
        { "quoted authserv-id", "mail host", {
                { STEP_DMARC, "fail", NULL, "example.com" },
          },
          " \"mail host\";\r\n\tdmarc=fail header.from=example.com" },
        { "dkim without b", "mx", {
                { STEP_DKIM, "neutral", NULL, "example.com", NULL, NULL },
          },
          " mx;\r\n\tdkim=neutral header.d=example.com" },
        { "b with folding whitespace", "mx", {
                { STEP_DKIM, "pass", NULL, "example.com", "s", "dzd\r\n Vy OfAKCd" },
          },
          " mx;\r\n\tdkim=pass header.d=example.com header.s=s header.b=dzdVyOfA" },
        { "raw method and properties", "mx", {
                { STEP_RAW, "iprev", "pass", NULL },
                { STEP_PROP, "policy", "iprev", "192.0.2.200" },
                { STEP_PROP, "policy", "empty", "" },
          },
          " mx;\r\n\tiprev=pass policy.iprev=192.0.2.200" },
        { "errors leave nothing behind", "mx", {
                { STEP_RAW, "sp f", "pass", NULL, .ret = -EINVAL },
                { STEP_RAW, "spf", "pa;ss", NULL, .ret = -EINVAL },
                { STEP_PROP, "smtp", "mailfrom", "a@b", .ret = -ENOENT },
                { STEP_SPF, "pass", "line\r\nbreak", "a@b", NULL, .ret = -EINVAL },
                { STEP_DKIM, "pass", NULL, "example.com", "s", "\x01" "bc", .ret = -EINVAL },
          },
          " mx; none" },
};

static int run_step(AuthResults *ar, Step step, const char *a, const char *b, const char *c,
                    const char *d, const char *e) {
        switch (step) {
        case STEP_SPF:
                return auth_results_add_spf(ar, a, b, c, d);
        case STEP_DKIM:
                return auth_results_add_dkim(ar, a, b, c, d, e);
        case STEP_DMARC:
                return auth_results_add_dmarc(ar, a, b, c);
        case STEP_ARC:
                return auth_results_add_arc(ar, a, b, c);
        case STEP_RAW:
                return auth_results_add(ar, a, b, c);
        case STEP_PROP:
                return auth_results_add_property(ar, a, b, c);
        default:
                return 0;
        }
}

START_TEST(test_format_table)
{
        for (size_t i = 0; i < ELEMENTSOF(format_table); i++) {
                _cleanup_(auth_results_freep) AuthResults *ar = NULL;
                _cleanup_free_ char *value = NULL, *id = NULL;

                ck_assert_int_eq(auth_results_new(format_table[i].authserv_id, &ar), 0);
                for (size_t j = 0; j < ELEMENTSOF(format_table[i].steps) && format_table[i].steps[j].step != STEP_END; j++) {
                        int r = run_step(ar, format_table[i].steps[j].step, format_table[i].steps[j].a,
                                         format_table[i].steps[j].b, format_table[i].steps[j].c,
                                         format_table[i].steps[j].d, format_table[i].steps[j].e);
                        ck_assert_msg(r == format_table[i].steps[j].ret, "%s: step %zu returned %d",
                                      format_table[i].name, j, r);
                }
                ck_assert_int_eq(auth_results_format(ar, &value), 0);
                ck_assert_msg(streq(value, format_table[i].expected), "%s: got\n%s\nexpected\n%s",
                              format_table[i].name, value, format_table[i].expected);

                /* what we write, we read back */
                ck_assert_int_eq(auth_results_parse_authserv_id(value, strlen(value), &id, NULL), 0);
                ck_assert_str_eq(id, format_table[i].authserv_id);
        }
}
END_TEST

START_TEST(test_format_folding)
{
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        _cleanup_free_ char *value = NULL, *local = NULL, *from = NULL;
        size_t column = STRLEN(AUTH_RESULTS_FIELD_NAME ":");

        local = malloc(121);
        ck_assert_ptr_nonnull(local);
        memset(local, 'l', 120);
        local[120] = '\0';
        ck_assert_int_gt(asprintf_safe(&from, "%s@example.net", local), 0);

        ck_assert_int_eq(auth_results_new("mx.example.com", &ar), 0);
        for (unsigned i = 0; i < 10; i++)
                ck_assert_int_eq(auth_results_add_spf(ar, "pass", "a reason with several words in it",
                                                      from, "helo.example.net"), 0);
        ck_assert_int_eq(auth_results_format(ar, &value), 0);

        /* every line within the limit except one holding a single over-long element,
         * folds only as CRLF followed by a tab */
        for (const char *p = value; *p; p++) {
                if (*p == '\r') {
                        ck_assert(p[1] == '\n' && p[2] == '\t');
                        column = 0;
                        continue;
                }
                if (*p == '\n')
                        continue;
                column += *p == '\t' ? 8 : 1;
                if (column > AUTH_RESULTS_FOLD_COLUMN) {
                        const char *line = p;
                        while (line > value && line[-1] != '\t')
                                line--;
                        ck_assert_msg(startswith(line, "smtp.mailfrom=llll"), "long line at \"%.30s\"", line);
                }
        }
        ck_assert_ptr_null(strstr(value, " \r\n"));
}
END_TEST

START_TEST(test_limits)
{
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        _cleanup_free_ char *big = NULL;
        AuthResults *bad = NULL;

        ck_assert_int_eq(auth_results_new("", &bad), -EINVAL);
        ck_assert_int_eq(auth_results_new("a\nb", &bad), -EINVAL);
        ck_assert_ptr_null(bad);

        big = malloc(AUTH_RESULTS_VALUE_MAX + 2);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', AUTH_RESULTS_VALUE_MAX + 1);
        big[AUTH_RESULTS_VALUE_MAX + 1] = '\0';
        ck_assert_int_eq(auth_results_new(big, &bad), -E2BIG);

        ck_assert_int_eq(auth_results_new("mx", &ar), 0);
        for (unsigned i = 0; i < AUTH_RESULTS_MAX_METHODS; i++)
                ck_assert_int_eq(auth_results_add(ar, "x-test", "pass", NULL), 0);
        ck_assert_int_eq(auth_results_add(ar, "x-test", "pass", NULL), -E2BIG);
        for (unsigned i = 0; i < AUTH_RESULTS_MAX_PROPERTIES; i++)
                ck_assert_int_eq(auth_results_add_property(ar, "policy", "p", "v"), 0);
        ck_assert_int_eq(auth_results_add_property(ar, "policy", "p", "v"), -E2BIG);
        ck_assert_int_eq(auth_results_add_property(ar, "policy", "p", big), -E2BIG);
}
END_TEST

START_TEST(test_authserv_id_equal)
{
        ck_assert(auth_results_authserv_id_equal("mx.example.com", "MX.Example.Com"));
        ck_assert(!auth_results_authserv_id_equal("mx.example.com", "mx.example.com."));
        ck_assert(!auth_results_authserv_id_equal("mx.example.com", "x.example.com"));
        ck_assert(!auth_results_authserv_id_equal(NULL, "x"));
}
END_TEST

static const char find_msg[] =
        "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=forged@example.net\r\n"
        "authentication-results: (sneaky) MX.EXAMPLE.COM 1;\r\n"
        "\tdkim=pass header.d=example.net\r\n"
        "Authentication-Results: relay.example.org; dkim=pass header.d=example.org\r\n"
        "X-Authentication-Results: mx.example.com; none\r\n"
        "Authentication-Results: mx.example.com.evil; none\r\n"
        "Authentication-Results: \"mx.example.com\"; none\r\n"
        "Authentication-Results: (unterminated mx.example.com; none\r\n"
        "Subject: Authentication-Results: mx.example.com; none\r\n"
        "From: a@example.net\r\n"
        "\r\n"
        "Authentication-Results: mx.example.com; in the body\r\n";

START_TEST(test_find_ours)
{
        _cleanup_free_ Rfc5322Field *f = NULL;
        const char *in_body;
        int n;

        n = auth_results_find_ours(find_msg, strlen(find_msg), NULL, "mx.example.com", &f);
        ck_assert_int_eq(n, 3);
        ck_assert(startswith(find_msg + f[0].raw_offset, "Authentication-Results: mx.example.com; spf=pass"));
        ck_assert(startswith(find_msg + f[1].raw_offset, "authentication-results: (sneaky)"));
        ck_assert_uint_eq(f[1].raw_len, STRLEN("authentication-results: (sneaky) MX.EXAMPLE.COM 1;\r\n"
                                               "\tdkim=pass header.d=example.net\r\n"));
        ck_assert(startswith(find_msg + f[2].raw_offset, "Authentication-Results: \"mx.example.com\""));
        in_body = strstr(find_msg, "\r\n\r\n");
        for (int i = 0; i < n; i++)
                ck_assert(find_msg + f[i].raw_offset < in_body);
        free(f);
        f = NULL;

        n = auth_results_find_ours(find_msg, strlen(find_msg), NULL, "relay.example.org", &f);
        ck_assert_int_eq(n, 1);
        free(f);
        f = NULL;

        n = auth_results_find_ours(find_msg, strlen(find_msg), NULL, "other.example", &f);
        ck_assert_int_eq(n, 0);
        ck_assert_ptr_null(f);

        n = auth_results_find_ours("no colon here\r\n\r\n", 17, NULL, "mx", &f);
        ck_assert_int_eq(n, -EBADMSG);
        ck_assert_ptr_null(f);
}
END_TEST

/* The value we format, put in a header block, is found again by the removal helper. */
START_TEST(test_format_then_find)
{
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        _cleanup_free_ char *value = NULL, *msg = NULL;
        _cleanup_free_ Rfc5322Field *f = NULL;

        ck_assert_int_eq(auth_results_new("Mx.Example.Com", &ar), 0);
        ck_assert_int_eq(auth_results_add_dkim(ar, "pass", NULL, "example.com", "s", "abcdefghij"), 0);
        ck_assert_int_eq(auth_results_format(ar, &value), 0);
        ck_assert_int_gt(asprintf_safe(&msg, AUTH_RESULTS_FIELD_NAME ":%s\r\nFrom: a@b\r\n\r\nbody\r\n", value), 0);
        ck_assert_int_eq(auth_results_find_ours(msg, strlen(msg), NULL, "mx.example.com", &f), 1);
        ck_assert_uint_eq(f[0].raw_offset, 0);
        ck_assert_uint_eq(f[0].raw_len, STRLEN(AUTH_RESULTS_FIELD_NAME ":") + strlen(value) + 2);
}
END_TEST

static Suite* auth_results_suite(void) {
        Suite *s = suite_create("auth-results");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse_table);
        tcase_add_test(tc, test_parse_long_id);
        tcase_add_test(tc, test_parse_length_bound);
        tcase_add_test(tc, test_format_table);
        tcase_add_test(tc, test_format_folding);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_authserv_id_equal);
        tcase_add_test(tc, test_find_ours);
        tcase_add_test(tc, test_format_then_find);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(auth_results_suite);
