/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>

#include "check-main.h"
#include "string-util.h"
#include "time-util.h"

static const struct {
        const char *input;
        int ret;
        usec_t expected;
} sec_cases[] = {
        { "0",              0, 0 },
        { "5",              0, 5 * USEC_PER_SEC },
        { "  5  ",          0, 5 * USEC_PER_SEC },
        { "30s",            0, 30 * USEC_PER_SEC },
        { "30 sec",         0, 30 * USEC_PER_SEC },
        { "2seconds",       0, 2 * USEC_PER_SEC },
        { "100ms",          0, 100 * USEC_PER_MSEC },
        { "7msec",          0, 7 * USEC_PER_MSEC },
        { "250us",          0, 250 },
        { "3usec",          0, 3 },
        { "2m",             0, 2 * USEC_PER_MINUTE },
        { "5min",           0, 5 * USEC_PER_MINUTE },
        { "1min 30s",       0, 90 * USEC_PER_SEC },
        { "1min30s",        0, 90 * USEC_PER_SEC },
        { "2h",             0, 2 * USEC_PER_HOUR },
        { "1hr 1m 1s 1ms",  0, USEC_PER_HOUR + USEC_PER_MINUTE + USEC_PER_SEC + USEC_PER_MSEC },
        { "1d",             0, 24 * USEC_PER_HOUR },
        { "1w",             0, 7 * 24 * USEC_PER_HOUR },
        { "1.5s",           0, 1500 * USEC_PER_MSEC },
        { "0.5",            0, 500 * USEC_PER_MSEC },
        { ".25min",         0, 15 * USEC_PER_SEC },
        { "infinity",       0, USEC_INFINITY },
        { " infinity ",     0, USEC_INFINITY },
        { "",               -EINVAL, 0 },
        { "   ",            -EINVAL, 0 },
        { "-5s",            -EINVAL, 0 },
        { "+5s",            -EINVAL, 0 },
        { "5x",             -EINVAL, 0 },
        { "s",              -EINVAL, 0 },
        { "5 3",            -EINVAL, 0 },
        { "1min 30",        -EINVAL, 0 },
        { "5secs",          -EINVAL, 0 },
        { "infinity 5s",    -EINVAL, 0 },
        { ".",              -EINVAL, 0 },
        { "99999999999999999999", -ERANGE, 0 },
        { "999999999999d",  -ERANGE, 0 },
};

START_TEST(test_parse_sec)
{
        for (size_t i = 0; i < ELEMENTSOF(sec_cases); i++) {
                usec_t u = 4711;
                int r;

                r = parse_sec(sec_cases[i].input, &u);
                ck_assert_msg(r == sec_cases[i].ret, "parse_sec(\"%s\") = %d, expected %d",
                              sec_cases[i].input, r, sec_cases[i].ret);
                if (r == 0)
                        ck_assert_msg(u == sec_cases[i].expected, "parse_sec(\"%s\") gave %llu, expected %llu",
                                      sec_cases[i].input, (unsigned long long) u,
                                      (unsigned long long) sec_cases[i].expected);
                else
                        ck_assert_msg(u == 4711, "parse_sec(\"%s\") wrote its result on failure",
                                      sec_cases[i].input);
        }

        ck_assert_int_eq(parse_sec(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_format_timespan)
{
        static const struct {
                usec_t t;
                const char *expected;
        } cases[] = {
                { 0, "0" },
                { USEC_INFINITY, "infinity" },
                { 90 * USEC_PER_SEC, "1min 30s" },
                { 5 * USEC_PER_MINUTE, "5min" },
                { 26 * USEC_PER_HOUR + 1, "1d 2h 1us" },
                { 1500 * USEC_PER_MSEC, "1s 500ms" },
        };
        char buf[FORMAT_TIMESPAN_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                usec_t back;

                ck_assert_str_eq(format_timespan(buf, sizeof(buf), cases[i].t), cases[i].expected);
                /* Whatever we print, we read back. */
                ck_assert_int_eq(parse_sec(buf, &back), 0);
                ck_assert_uint_eq(back, cases[i].t);
        }

        /* A short buffer truncates instead of overflowing. */
        char small[6];
        ck_assert_uint_lt(strlen(format_timespan(small, sizeof(small), 26 * USEC_PER_HOUR + 1)), sizeof(small));
}
END_TEST

START_TEST(test_now)
{
        usec_t a, b;

        a = now(CLOCK_MONOTONIC);
        b = now(CLOCK_MONOTONIC);
        ck_assert_uint_gt(a, 0);
        ck_assert_uint_ge(b, a);
        /* The realtime clock is well past 2020 on any machine that runs this. */
        ck_assert_uint_gt(now(CLOCK_REALTIME), 1577836800ULL * USEC_PER_SEC);
}
END_TEST

static Suite* time_util_suite(void) {
        Suite *s = suite_create("time-util");
        TCase *tc = tcase_create("time");

        tcase_add_test(tc, test_parse_sec);
        tcase_add_test(tc, test_format_timespan);
        tcase_add_test(tc, test_now);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(time_util_suite);
