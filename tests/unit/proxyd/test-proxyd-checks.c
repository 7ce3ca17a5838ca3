/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth-results-id.h"
#include "check-main.h"
#include "cleanup.h"
#include "memfd-util.h"
#include "proxyd-checks.h"

static const struct {
        const char *value;
        const char *id;         /* NULL: -EBADMSG */
} authserv_ids[] = {
        { " mx.receiver.test; spf=pass", "mx.receiver.test" },
        { " (comment (nested)) mx.receiver.test 1; none", "mx.receiver.test" },
        { "\r\n\tMX.Receiver.TEST;\r\n\tdkim=pass", "MX.Receiver.TEST" },
        { " \"quoted.test\"; none", "quoted.test" },
        { "mx.receiver.test", "mx.receiver.test" },
        { " ; spf=pass", NULL },
        { " (only a comment)", NULL },
        { " \"unterminated", NULL },
        { "", NULL },
};

START_TEST(test_authserv_id)
{
        /* The shared reader (services/shared/mime/auth-results-id.h) on the values the
         * proxy meets: authd's own and forged ones. */
        for (size_t i = 0; i < ELEMENTSOF(authserv_ids); i++) {
                _cleanup_free_ char *id = NULL;
                int r = auth_results_parse_authserv_id(authserv_ids[i].value, strlen(authserv_ids[i].value),
                                                       &id, NULL);

                if (!authserv_ids[i].id)
                        ck_assert_msg(r == -EBADMSG, "%s: %d", authserv_ids[i].value, r);
                else {
                        ck_assert_msg(r == 0, "%s: %d", authserv_ids[i].value, r);
                        ck_assert_str_eq(id, authserv_ids[i].id);
                }
        }
}
END_TEST

static char* read_fd(int fd, uint64_t size) {
        char *b = calloc(1, size + 1);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(pread(fd, b, size, 0), (ssize_t) size);
        return b;
}

START_TEST(test_strip)
{
        static const char msg[] =
                "Authentication-Results: mx.receiver.test; dkim=pass\r\n"
                "Received: from a by b\r\n"
                "Authentication-Results: other.test; spf=pass\r\n"
                "authentication-results: (forged)\r\n MX.RECEIVER.TEST;\r\n dmarc=pass\r\n"
                "Subject: Authentication-Results: mx.receiver.test\r\n"
                "\r\n"
                "Authentication-Results: mx.receiver.test; in the body\r\n";
        static const char want[] =
                "Received: from a by b\r\n"
                "Authentication-Results: other.test; spf=pass\r\n"
                "Subject: Authentication-Results: mx.receiver.test\r\n"
                "\r\n"
                "Authentication-Results: mx.receiver.test; in the body\r\n";
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *got = NULL;
        uint64_t size = 0;

        ck_assert_int_eq(message_strip_auth_results(msg, strlen(msg), 998, "mx.receiver.test", &fd, &size), 1);
        ck_assert_int_ge(fd, 0);
        ck_assert_uint_eq(size, strlen(want));
        ck_assert_int_eq(memfd_check_sealed(fd, UINT64_MAX, NULL), 0);
        got = read_fd(fd, size);
        ck_assert_str_eq(got, want);

        /* nothing of ours: the original is relayed */
        fd = safe_close(fd);
        ck_assert_int_eq(message_strip_auth_results(want, strlen(want), 998, "mx.receiver.test", &fd, &size), 0);
        ck_assert_int_lt(fd, 0);

        /* a header block that does not parse */
        ck_assert_int_eq(message_strip_auth_results("no colon here\r\n\r\n", 17, 998, "x", &fd, &size), -EBADMSG);
}
END_TEST

START_TEST(test_enums)
{
        ck_assert_int_eq(auth_failure_action_from_string("tempfail"), AUTH_FAILURE_TEMPFAIL);
        ck_assert_int_eq(auth_failure_action_from_string("accept"), AUTH_FAILURE_ACCEPT);
        ck_assert_int_eq(auth_failure_action_from_string("reject"), _AUTH_FAILURE_INVALID);
        ck_assert_str_eq(dmarc_quarantine_to_string(DMARC_QUARANTINE_REJECT), "reject");
        ck_assert_int_eq(dmarc_quarantine_from_string("header"), DMARC_QUARANTINE_HEADER);
        ck_assert_ptr_null(dmarc_quarantine_to_string(_DMARC_QUARANTINE_MAX));
}
END_TEST

static Suite* proxyd_checks_suite(void) {
        Suite *s = suite_create("proxyd-checks");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_authserv_id);
        tcase_add_test(tc, test_strip);
        tcase_add_test(tc, test_enums);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(proxyd_checks_suite);
