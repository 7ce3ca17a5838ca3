/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "cleanup.h"
#include "memfd-util.h"
#include "proxyd-checks.h"
#include "proxyd-conf.h"
#include "proxyd-spam.h"
#include "string-util.h"

START_TEST(test_reject_score)
{
        static const struct {
                const char *s;
                int r;
                double v;
        } t[] = {
                { "no", 0, SPAM_REJECT_SCORE_NEVER },
                { "0.9", 0, 0.9 },
                { "1", 0, 1.0 },
                { "1.0", 0, 1.0 },
                { ".5", 0, 0.5 },
                { "0.001", 0, 0.001 },
                { "0", -ERANGE, 0 },
                { "0.0", -ERANGE, 0 },
                { "1.01", -ERANGE, 0 },
                { "2", -ERANGE, 0 },
                { "-0.5", -EINVAL, 0 },
                { "+0.5", -EINVAL, 0 },
                { "0.5x", -EINVAL, 0 },
                { "5e-1", -EINVAL, 0 },
                { "nan", -EINVAL, 0 },
                { "inf", -EINVAL, 0 },
                { "0x1p-1", -EINVAL, 0 },
                { "yes", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { ".", -EINVAL, 0 },
                { "0.5.5", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                double v = 42;
                int r = spam_reject_score_parse(t[i].s, &v);

                ck_assert_msg(r == t[i].r, "'%s': %d, expected %d", t[i].s, r, t[i].r);
                if (r == 0)
                        ck_assert_msg(fabs(v - t[i].v) < 1e-9, "'%s': %g", t[i].s, v);
                else
                        ck_assert_msg(v == 42, "'%s': written on failure", t[i].s);
        }

        ck_assert(!spam_score_rejects(1.0, SPAM_REJECT_SCORE_NEVER));
        ck_assert(spam_score_rejects(0.9, 0.9));
        ck_assert(spam_score_rejects(0.95, 0.9));
        ck_assert(!spam_score_rejects(0.8999, 0.9));
}
END_TEST

START_TEST(test_fields)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        ck_assert_int_eq(spam_fields_build(0.98712, SPAM_STATUS_YES, 0.9, &a), 0);
        ck_assert_str_eq(a, "X-Spam-Status: Yes, score=0.987 required=0.900\r\nX-Spam-Score: 0.987\r\n");
        ck_assert_int_eq(spam_fields_build(0.0004, SPAM_STATUS_NO, SPAM_REJECT_SCORE_NEVER, &b), 0);
        ck_assert_str_eq(b, "X-Spam-Status: No, score=0.000\r\nX-Spam-Score: 0.000\r\n");
        ck_assert_int_eq(spam_fields_build(0.5, SPAM_STATUS_UNSURE, 1.0, &c), 0);
        ck_assert_str_eq(c, "X-Spam-Status: Unsure, score=0.500 required=1.000\r\nX-Spam-Score: 0.500\r\n");

        /* Nothing out of range reaches a header. */
        ck_assert_int_eq(spam_fields_build(1.5, SPAM_STATUS_YES, 0.9, &a), -EINVAL);
        ck_assert_int_eq(spam_fields_build(NAN, SPAM_STATUS_YES, 0.9, &a), -EINVAL);
        ck_assert_int_eq(spam_fields_build(0.5, _SPAM_STATUS_INVALID, 0.9, &a), -EINVAL);

        ck_assert_int_eq(spam_status_from_verdict("spam"), SPAM_STATUS_YES);
        ck_assert_int_eq(spam_status_from_verdict("ham"), SPAM_STATUS_NO);
        ck_assert_int_eq(spam_status_from_verdict("unsure"), SPAM_STATUS_UNSURE);
        ck_assert_int_eq(spam_status_from_verdict("Spam"), _SPAM_STATUS_INVALID);
        ck_assert_int_eq(spam_status_from_verdict(""), _SPAM_STATUS_INVALID);
}
END_TEST

START_TEST(test_report_addresses)
{
        static const struct {
                const char *s;
                const char *first;      /* NULL: -EINVAL */
                size_t n;
        } t[] = {
                { "spam:spam-report@example.org ham:ham-report@example.org", "spam:spam-report@example.org", 2 },
                { "  SPAM:Spam-Report@Example.ORG\t", "spam:spam-report@example.org", 1 },
                { "ham:a.b+c@mail.example.org", "ham:a.b+c@mail.example.org", 1 },
                { "spam:x@example.org spam:y@example.org", "spam:x@example.org", 2 },
                { "junk:x@example.org", NULL, 0 },
                { "spam-report@example.org", NULL, 0 },
                { "spam:", NULL, 0 },
                { "spam:@example.org", NULL, 0 },
                { "spam:x@", NULL, 0 },
                { "spam:x@localhost", NULL, 0 },
                { "spam:x@@example.org", NULL, 0 },
                { "spam:x@exa mple.org", NULL, 0 },
                { "spam:.x@example.org", NULL, 0 },
                { "spam:x@-example.org", NULL, 0 },
                { "spam:<x@example.org>", NULL, 0 },
                { "spam:x\"y@example.org", NULL, 0 },
                { "spam:x@example.org ham:", NULL, 0 },
                { "   ", NULL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_strv_free_ char **l = NULL;
                int r = report_addresses_parse(t[i].s, &l);

                if (!t[i].first) {
                        ck_assert_msg(r == -EINVAL, "'%s': %d", t[i].s, r);
                        ck_assert_msg(!l, "'%s': list changed on failure", t[i].s);
                        continue;
                }
                ck_assert_msg(r == 0, "'%s': %d", t[i].s, r);
                ck_assert_uint_eq(strv_length(l), t[i].n);
                ck_assert_str_eq(l[0], t[i].first);
        }
}
END_TEST

START_TEST(test_report_lookup)
{
        _cleanup_strv_free_ char **l = NULL;

        ck_assert_int_eq(report_addresses_parse("spam:spam-report@example.org", &l), 0);
        /* A second setting appends. */
        ck_assert_int_eq(report_addresses_parse("ham:ham-report@example.org", &l), 0);
        ck_assert_uint_eq(strv_length(l), 2);

        ck_assert_int_eq(report_addresses_lookup(l, "spam-report@example.org"), REPORT_CLASS_SPAM);
        ck_assert_int_eq(report_addresses_lookup(l, "Spam-Report@EXAMPLE.org"), REPORT_CLASS_SPAM);
        ck_assert_int_eq(report_addresses_lookup(l, "ham-report@example.org"), REPORT_CLASS_HAM);
        ck_assert_int_eq(report_addresses_lookup(l, "spam-report@example.org.evil.test"), -ENOENT);
        ck_assert_int_eq(report_addresses_lookup(l, "x-spam-report@example.org"), -ENOENT);
        ck_assert_int_eq(report_addresses_lookup(l, "spam-report"), -ENOENT);
        ck_assert_int_eq(report_addresses_lookup(l, ""), -ENOENT);
        ck_assert_int_eq(report_addresses_lookup(NULL, "spam-report@example.org"), -ENOENT);

        ck_assert_str_eq(mailbox_domain("alice@example.test"), "example.test");
        ck_assert_str_eq(mailbox_domain("\"a@b\"@example.test"), "example.test");
        ck_assert_ptr_null(mailbox_domain(""));
        ck_assert_ptr_null(mailbox_domain("postmaster"));
        ck_assert_ptr_null(mailbox_domain("alice@"));
}
END_TEST

static char* read_fd(int fd, uint64_t size) {
        char *b = calloc(1, size + 1);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(pread(fd, b, size, 0), (ssize_t) size);
        return b;
}

START_TEST(test_strip_spam)
{
        static const char msg[] =
                "X-Spam-Status: No, score=0.000\r\n"
                "Received: from a by b\r\n"
                "x-spam-score:\r\n 0.000\r\n"
                "X-Spamfilter: kept (not X-Spam-)\r\n"
                "Subject: X-Spam-Status: in a value\r\n"
                "X-SPAM-Flag: YES\r\n"
                "\r\n"
                "X-Spam-Status: in the body\r\n";
        static const char want[] =
                "Received: from a by b\r\n"
                "X-Spamfilter: kept (not X-Spam-)\r\n"
                "Subject: X-Spam-Status: in a value\r\n"
                "\r\n"
                "X-Spam-Status: in the body\r\n";
        static const char clean[] = "Subject: hello\r\n\r\nX-Spam-Status: Yes\r\n";
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *got = NULL;
        uint64_t size = 0;
        int fd2 = 42;

        ck_assert_int_eq(message_strip_fields(msg, strlen(msg), 998, header_field_is_spam, NULL, &fd, &size), 1);
        ck_assert_int_ge(fd, 0);
        ck_assert_uint_eq(size, strlen(want));
        ck_assert_int_eq(memfd_check_sealed(fd, UINT64_MAX, NULL), 0);
        got = read_fd(fd, size);
        ck_assert_str_eq(got, want);

        ck_assert_int_eq(message_strip_fields(clean, strlen(clean), 998, header_field_is_spam, NULL, &fd2, &size), 0);
        ck_assert_int_lt(fd2, 0);
        ck_assert_uint_eq(size, strlen(clean));

        /* A header block that does not parse cannot be cleaned. */
        ck_assert_int_eq(message_strip_fields("X-Spam-Status: Yes\r\nno colon here\r\n\r\n", 37, 998,
                                              header_field_is_spam, NULL, &fd2, &size), -EBADMSG);
}
END_TEST

#define REPORTED_CUT "From: Pills <pills@spam.test>\r\nSubject: cheap pills\r\n\r\nBuy now."
#define REPORTED REPORTED_CUT "\r\n"
/* RFC 2046 §5.1.1: the line end before a delimiter belongs to the delimiter, so a part
 * written as REPORTED and a delimiter line is REPORTED_CUT. */

static const struct {
        const char *name;
        const char *mail;
        const char *want;               /* NULL: -ENOMSG */
        ReportSource source;
} reports[] = {
        { "attachment, 7bit",
          "From: alice@example.test\r\n"
          "MIME-Version: 1.0\r\n"
          "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
          "\r\n"
          "preamble\r\n"
          "--b1\r\n"
          "Content-Type: text/plain\r\n"
          "\r\n"
          "This is spam.\r\n"
          "--b1\r\n"
          "Content-Type: message/rfc822\r\n"
          "Content-Disposition: attachment\r\n"
          "\r\n"
          REPORTED
          "--b1--\r\n"
          "epilogue\r\n",
          REPORTED_CUT, REPORT_SOURCE_ATTACHMENT },
        { "attachment, base64, LF line ends, upper-case type",
          "From: alice@example.test\n"
          "Content-Type: Multipart/Mixed;\n boundary=xyz\n"
          "\n"
          "--xyz\n"
          "Content-Type: MESSAGE/RFC822; name=\"x.eml\"\n"
          "Content-Transfer-Encoding: BASE64\n"
          "\n"
          "RnJvbTogUGlsbHMgPHBpbGxzQHNwYW0udGVzdD4NClN1YmplY3Q6IGNoZWFwIHBpbGxzDQoNCkJ1\n"
          "eSBub3cuDQo=\n"
          "--xyz--\n",
          REPORTED, REPORT_SOURCE_ATTACHMENT },
        { "attachment, quoted-printable",
          "Content-Type: multipart/mixed; boundary=q\r\n"
          "\r\n"
          "--q\r\n"
          "Content-Type: message/rfc822\r\n"
          "Content-Transfer-Encoding: quoted-printable\r\n"
          "\r\n"
          "From: Pills <pills@spam.test>\r\n"
          "Subject: cheap =\r\n"
          "pills\r\n"
          "\r\n"
          "Buy now=2E\r\n"
          "--q--\r\n",
          REPORTED_CUT, REPORT_SOURCE_ATTACHMENT },
        { "nested multipart, the first message/rfc822 wins",
          "Content-Type: multipart/mixed; boundary=outer\r\n"
          "\r\n"
          "--outer\r\n"
          "Content-Type: multipart/alternative; boundary=inner\r\n"
          "\r\n"
          "--inner\r\n"
          "Content-Type: text/plain\r\n"
          "\r\n"
          "text\r\n"
          "--inner\r\n"
          "Content-Type: message/rfc822\r\n"
          "\r\n"
          REPORTED
          "--inner--\r\n"
          "--outer\r\n"
          "Content-Type: message/rfc822\r\n"
          "\r\n"
          "From: second@spam.test\r\n\r\nsecond\r\n"
          "--outer--\r\n",
          REPORTED_CUT, REPORT_SOURCE_ATTACHMENT },
        { "ARF with the message",
          "From: abuse@example.test\r\n"
          "Content-Type: multipart/report; report-type=feedback-report;\r\n"
          "\tboundary=\"arf\"\r\n"
          "\r\n"
          "--arf\r\n"
          "Content-Type: text/plain\r\n"
          "\r\n"
          "This is an abuse report.\r\n"
          "--arf\r\n"
          "Content-Type: message/feedback-report\r\n"
          "\r\n"
          "Feedback-Type: abuse\r\n"
          "User-Agent: test/1.0\r\n"
          "Version: 1\r\n"
          "--arf\r\n"
          "Content-Type: message/rfc822\r\n"
          "Content-Disposition: inline\r\n"
          "\r\n"
          REPORTED
          "--arf--\r\n",
          REPORTED_CUT, REPORT_SOURCE_ARF },
        { "ARF with the header only",
          "Content-Type: multipart/report; report-type=Feedback-Report; boundary=arf\r\n"
          "\r\n"
          "--arf\r\n"
          "\r\n"
          "report\r\n"
          "--arf\r\n"
          "Content-Type: message/feedback-report\r\n"
          "\r\n"
          "Feedback-Type: abuse\r\n"
          "--arf\r\n"
          "Content-Type: text/rfc822-headers\r\n"
          "\r\n"
          "From: Pills <pills@spam.test>\r\n"
          "Subject: cheap pills\r\n"
          "--arf--\r\n",
          "From: Pills <pills@spam.test>\r\nSubject: cheap pills", REPORT_SOURCE_ARF },
        { "delivery report, not ARF: the message/rfc822 part as an attachment",
          "Content-Type: multipart/report; report-type=delivery-status; boundary=d\r\n"
          "\r\n"
          "--d\r\n\r\nbounce\r\n"
          "--d\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n"
          "--d\r\nContent-Type: message/rfc822\r\n\r\n" REPORTED
          "--d--\r\n",
          REPORTED_CUT, REPORT_SOURCE_ATTACHMENT },
        { "text/rfc822-headers outside ARF is no message",
          "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
          "--m\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: a@b.test\r\n--m--\r\n",
          NULL, 0 },
        { "no close delimiter: the last part runs to the end",
          "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
          "--m\r\nContent-Type: message/rfc822\r\n\r\n" REPORTED,
          REPORTED, REPORT_SOURCE_ATTACHMENT },
        { "a plain message",
          "From: alice@example.test\r\nSubject: spam\r\n\r\nThe spam said: buy pills.\r\n",
          NULL, 0 },
        { "the message itself is message/rfc822",
          "Content-Type: message/rfc822\r\n\r\n" REPORTED,
          NULL, 0 },
        { "multipart without boundary",
          "Content-Type: multipart/mixed\r\n\r\n--m\r\nContent-Type: message/rfc822\r\n\r\n" REPORTED,
          NULL, 0 },
        { "delimiter with trailing junk is no delimiter",
          "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
          "--mx\r\nContent-Type: message/rfc822\r\n\r\n" REPORTED "--m--\r\n",
          NULL, 0 },
        { "the attached part is empty",
          "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
          "--m\r\nContent-Type: message/rfc822\r\n\r\n--m--\r\n",
          NULL, 0 },
        { "the attached part is no message",
          "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
          "--m\r\nContent-Type: message/rfc822\r\n\r\njust text, no header\r\n--m--\r\n",
          NULL, 0 },
        { "empty", "", NULL, 0 },
};

START_TEST(test_extract)
{
        for (size_t i = 0; i < ELEMENTSOF(reports); i++) {
                _cleanup_free_ char *data = NULL;
                size_t n = 0;
                ReportSource source = _REPORT_SOURCE_INVALID;
                int r;

                r = report_extract_message(reports[i].mail, strlen(reports[i].mail), &data, &n, &source);
                if (!reports[i].want) {
                        ck_assert_msg(r == -ENOMSG, "%s: %d", reports[i].name, r);
                        ck_assert_msg(!data, "%s: data on failure", reports[i].name);
                        continue;
                }
                ck_assert_msg(r == 0, "%s: %d", reports[i].name, r);
                ck_assert_msg(n == strlen(reports[i].want) && memcmp(data, reports[i].want, n) == 0,
                              "%s: got '%.*s'", reports[i].name, (int) n, data);
                ck_assert_msg(source == reports[i].source, "%s: source %d", reports[i].name, source);
        }
}
END_TEST

START_TEST(test_extract_depth)
{
        /* Multiparts nested deeper than REPORT_MAX_DEPTH are not descended into. */
        _cleanup_free_ char *deep = NULL, *shallow = NULL, *data = NULL;
        size_t n = 0;

        for (unsigned depth = REPORT_MAX_DEPTH - 1; depth <= REPORT_MAX_DEPTH + 1; depth += 2) {
                _cleanup_free_ char *m = strdup("Content-Type: message/rfc822\r\n\r\n" REPORTED);

                ck_assert_ptr_nonnull(m);
                for (unsigned d = depth; d > 0; d--) {
                        char *o = NULL;

                        ck_assert_int_ge(asprintf_safe(&o, "Content-Type: multipart/mixed; boundary=b%u\r\n\r\n"
                                                       "--b%u\r\n%s\r\n--b%u--\r\n", d, d, m, d), 0);
                        free(m);
                        m = o;
                }
                if (depth < REPORT_MAX_DEPTH)
                        shallow = TAKE_PTR(m);
                else
                        deep = TAKE_PTR(m);
        }
        ck_assert_int_eq(report_extract_message(shallow, strlen(shallow), &data, &n, NULL), 0);
        ck_assert_uint_eq(n, strlen(REPORTED));
        ck_assert_int_eq(report_extract_message(deep, strlen(deep), &data, &n, NULL), -ENOMSG);
}
END_TEST

START_TEST(test_config)
{
        static const char *const good =
                "[Checks]\n"
                "Authentication=yes\n"
                "Spam=yes\n"
                "SpamTimeoutSec=5s\n"
                "OnSpamFailure=accept\n"
                "SpamRejectScore=0.9\n"
                "SpamAutoLearn=no\n"
                "ReportAddresses=spam:spam-report@example.org\n"
                "ReportAddresses=ham:ham-report@example.org\n";
        static const char *const bad[] = {
                "[Checks]\nSpamRejectScore=0\n",
                "[Checks]\nSpamRejectScore=1.5\n",
                "[Checks]\nSpamRejectScore=yes\n",
                "[Checks]\nOnSpamFailure=reject\n",
                "[Checks]\nSpamTimeoutSec=0\n",
                "[Checks]\nReportAddresses=report@example.org\n",
        };
        _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL, *d = NULL, *n = NULL;
        ConfigError e = CONFIG_ERROR_NULL;

        /* Defaults. */
        ck_assert_int_eq(proxy_config_new(&d), 0);
        ck_assert(!d->spam);
        ck_assert_uint_eq(d->spam_timeout, 30 * USEC_PER_SEC);
        ck_assert_int_eq(d->on_spam_failure, SPAM_FAILURE_TEMPFAIL);
        ck_assert(d->spam_reject_score < 0);
        ck_assert(d->spam_autolearn);
        ck_assert_ptr_null(d->report_addresses);

        ck_assert_int_eq(proxy_config_new(&c), 0);
        ck_assert_int_eq(proxy_config_parse_text(c, "p.conf", good, &e), 0);
        ck_assert_int_eq(proxy_config_prepare(c, "p.conf", false, &e), 0);
        ck_assert(c->spam);
        ck_assert_uint_eq(c->spam_timeout, 5 * USEC_PER_SEC);
        ck_assert_int_eq(c->on_spam_failure, SPAM_FAILURE_ACCEPT);
        ck_assert(fabs(c->spam_reject_score - 0.9) < 1e-9);
        ck_assert(!c->spam_autolearn);
        ck_assert_uint_eq(strv_length(c->report_addresses), 2);
        ck_assert_int_eq(report_addresses_lookup(c->report_addresses, "ham-report@example.org"), REPORT_CLASS_HAM);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(proxy_config_unrefp) ProxyConfig *b = NULL;

                ck_assert_int_eq(proxy_config_new(&b), 0);
                ck_assert_msg(proxy_config_parse_text(b, "p.conf", bad[i], &e) < 0, "accepted: %s", bad[i]);
                ck_assert_ptr_nonnull(e.message);
                config_error_done(&e);
        }

        /* Reports are learned only from senders that pass DMARC: needs mailsec-authd. */
        ck_assert_int_eq(proxy_config_new(&n), 0);
        ck_assert_int_eq(proxy_config_parse_text(n, "p.conf", "[Checks]\nReportAddresses=spam:r@example.org\n", &e), 0);
        ck_assert_int_lt(proxy_config_prepare(n, "p.conf", false, &e), 0);
        ck_assert_ptr_nonnull(e.message);
        ck_assert_ptr_nonnull(strstr(e.message, "Authentication=yes"));
        config_error_done(&e);
}
END_TEST

static Suite* proxyd_spam_suite(void) {
        Suite *s = suite_create("proxyd-spam");
        TCase *tc;

        tc = tcase_create("verdict");
        tcase_add_test(tc, test_reject_score);
        tcase_add_test(tc, test_fields);
        suite_add_tcase(s, tc);

        tc = tcase_create("forged fields");
        tcase_add_test(tc, test_strip_spam);
        suite_add_tcase(s, tc);

        tc = tcase_create("report addresses");
        tcase_add_test(tc, test_report_addresses);
        tcase_add_test(tc, test_report_lookup);
        suite_add_tcase(s, tc);

        tc = tcase_create("reported message");
        tcase_add_test(tc, test_extract);
        tcase_add_test(tc, test_extract_depth);
        suite_add_tcase(s, tc);

        tc = tcase_create("configuration");
        tcase_add_test(tc, test_config);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(proxyd_spam_suite);
