/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-main.h"
#include "cleanup.h"
#include "log.h"
#include "stderr-capture.h"
#include "string-util.h"

static void setup(void) {
        unsetenv("JOURNAL_STREAM");
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
}

START_TEST(test_format)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;

        stderr_capture_begin(&c);
        log_info("hello %s", "world");
        log_warning("number %d", 5);
        log_error("failed");
        out = stderr_capture_end(&c);

        ck_assert_str_eq(out, "<6>hello world\n<4>number 5\n<3>failed\n");
}
END_TEST

START_TEST(test_errno)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;
        int r1, r2, r3;

        errno = EAGAIN;
        stderr_capture_begin(&c);
        r1 = log_error_errno(-ENOENT, "Failed to open x: %m");
        r2 = log_warning_errno(EACCES, "positive works too: %m");
        r3 = log_debug_errno(-EIO, "filtered: %m");
        out = stderr_capture_end(&c);

        /* errno is the caller's, not the one %m was expanded from. */
        ck_assert_int_eq(errno, EAGAIN);
        ck_assert_int_eq(r1, -ENOENT);
        ck_assert_int_eq(r2, -EACCES);
        ck_assert_int_eq(r3, -EIO);
        ck_assert_str_eq(out, "<3>Failed to open x: No such file or directory\n"
                              "<4>positive works too: Permission denied\n");

        ck_assert_int_eq(log_info_errno(0, "no error"), 0);
}
END_TEST

START_TEST(test_fields)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;
        const char *fields[] = { "MAILSEC_SESSION=00000000deadbeef", "MAILSEC_VERDICT=reject", NULL };
        int r;

        stderr_capture_begin(&c);
        r = log_full_errno_fields(LOG_NOTICE, -EPERM, fields, "Rejected message: %m");
        log_full_errno_fields(LOG_NOTICE, 0, NULL, "no fields");
        out = stderr_capture_end(&c);

        ck_assert_int_eq(r, -EPERM);
        ck_assert_str_eq(out, "<5>Rejected message: Operation not permitted "
                              "MAILSEC_SESSION=00000000deadbeef MAILSEC_VERDICT=reject\n"
                              "<5>no fields\n");
}
END_TEST

START_TEST(test_levels)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;

        stderr_capture_begin(&c);
        log_debug("hidden at info");
        log_set_max_level(LOG_DEBUG);
        log_debug("shown at debug");
        log_set_max_level(LOG_ERR);
        log_warning("hidden at err");
        log_error("shown at err");
        log_set_max_level(99);          /* refused, stays at err */
        log_notice("hidden still");
        log_set_target(LOG_TARGET_NULL);
        log_error("nowhere");
        out = stderr_capture_end(&c);

        ck_assert_int_eq(log_get_max_level(), LOG_ERR);
        ck_assert_str_eq(out, "<7>shown at debug\n<3>shown at err\n");
}
END_TEST

START_TEST(test_long_message)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL, *big = NULL;

        big = malloc(10000);
        ck_assert_ptr_nonnull(big);
        memset(big, 'y', 9999);
        big[9999] = 0;

        stderr_capture_begin(&c);
        log_info("%s", big);
        out = stderr_capture_end(&c);

        /* Truncated to one bounded line, still newline-terminated. */
        ck_assert(startswith(out, "<6>yyy"));
        ck_assert(endswith(out, "y\n"));
        ck_assert_uint_lt(strlen(out), 5000);
}
END_TEST

START_TEST(test_strings)
{
        static const struct {
                const char *s;
                int level;
        } levels[] = {
                { "emerg", LOG_EMERG }, { "alert", LOG_ALERT }, { "crit", LOG_CRIT },
                { "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING },
                { "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
                { "0", 0 }, { "7", 7 }, { "8", -EINVAL }, { "", -EINVAL }, { "verbose", -EINVAL },
                { "-1", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                ck_assert_msg(log_level_from_string(levels[i].s) == levels[i].level, "level \"%s\"", levels[i].s);
        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
        for (int l = LOG_EMERG; l <= LOG_DEBUG; l++)
                ck_assert_int_eq(log_level_from_string(log_level_to_string(l)), l);
        ck_assert_ptr_null(log_level_to_string(8));

        ck_assert_int_eq(log_target_from_string("auto"), LOG_TARGET_AUTO);
        ck_assert_int_eq(log_target_from_string("journal"), LOG_TARGET_JOURNAL);
        ck_assert_int_eq(log_target_from_string("console"), LOG_TARGET_CONSOLE);
        ck_assert_int_eq(log_target_from_string("null"), LOG_TARGET_NULL);
        ck_assert_int_eq(log_target_from_string("kmsg"), LOG_TARGET_JOURNAL);
        ck_assert_int_eq(log_target_from_string("syslog"), LOG_TARGET_JOURNAL);
        ck_assert_int_eq(log_target_from_string("file"), _LOG_TARGET_INVALID);
        for (LogTarget t = 0; t < _LOG_TARGET_MAX; t++)
                ck_assert_int_eq(log_target_from_string(log_target_to_string(t)), t);
}
END_TEST

START_TEST(test_setup_env)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;

        setenv("MAILSEC_LOG_LEVEL", "debug", 1);
        setenv("MAILSEC_LOG_TARGET", "auto", 1);
        log_setup();
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_AUTO);

        /* Garbage leaves the settings alone. */
        setenv("MAILSEC_LOG_LEVEL", "loud", 1);
        log_setup();
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);

        /* AUTO without $JOURNAL_STREAM writes to stderr. */
        stderr_capture_begin(&c);
        log_debug("auto goes to stderr");
        out = stderr_capture_end(&c);
        ck_assert_str_eq(out, "<7>auto goes to stderr\n");

        log_set_identifier("mailsec-test");
        ck_assert_str_eq(log_get_identifier(), "mailsec-test");
}
END_TEST

/* The journal path, against a stand-in for journald's socket in a private mount namespace
 * (so the host's /run is untouched). Runs in its own child, exit codes say what failed. */
static int journal_child(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *fields[] = { "MAILSEC_SESSION=00000000cafe0001", NULL };
        char buf[8192];
        ssize_t n;
        int fd;

        if (unshare(CLONE_NEWNS) < 0)
                return 77;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;
        if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return 77;
        if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
                return 20;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 21;
        strcpy(sa.sun_path, "/run/systemd/journal/socket");
        if (bind(fd, (struct sockaddr*) &sa, sizeof(sa)) < 0)
                return 22;

        /* AUTO picks the journal when $JOURNAL_STREAM is set, as under systemd. */
        setenv("JOURNAL_STREAM", "8:12345", 1);
        log_set_target(LOG_TARGET_AUTO);
        log_set_identifier("mailsec-test");
        if (log_full_errno_fields(LOG_WARNING, -ENOENT, fields, "Lost %s: %m", "it") != -ENOENT)
                return 23;

        n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (n <= 0)
                return 24;
        buf[n] = 0;

        if (!strstr(buf, "MESSAGE=Lost it: No such file or directory\n"))
                return 30;
        if (!strstr(buf, "PRIORITY=4\n"))
                return 31;
        if (!strstr(buf, "ERRNO=2\n"))
                return 32;
        if (!strstr(buf, "CODE_FILE=") || !strstr(buf, "test-log.c\n"))
                return 33;
        if (!strstr(buf, "CODE_FUNC=journal_child\n") || !strstr(buf, "CODE_LINE="))
                return 34;
        if (!strstr(buf, "SYSLOG_IDENTIFIER=mailsec-test\n"))
                return 35;
        if (!strstr(buf, "MAILSEC_SESSION=00000000cafe0001\n"))
                return 36;
        return 0;
}

START_TEST(test_journal)
{
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(journal_child());

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                fprintf(stderr, "Cannot set up a private mount namespace (not root?), skipping the journal test.\n");
                return;
        }
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_journal_fallback)
{
        StderrCapture c;
        _cleanup_free_ char *out = NULL;

        /* No journald listening (or a broken socket): the line goes to stderr, not nowhere. */
        if (access("/run/systemd/journal/socket", F_OK) >= 0) {
                fprintf(stderr, "A journal is running here, skipping the fallback test.\n");
                return;
        }
        log_set_target(LOG_TARGET_JOURNAL);
        stderr_capture_begin(&c);
        log_error("still seen");
        out = stderr_capture_end(&c);
        ck_assert_str_eq(out, "<3>still seen\n");
}
END_TEST

static Suite* log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("console");

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_errno);
        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_levels);
        tcase_add_test(tc, test_long_message);
        tcase_add_test(tc, test_strings);
        tcase_add_test(tc, test_setup_env);
        tcase_add_test(tc, test_journal);
        tcase_add_test(tc, test_journal_fallback);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(log_suite);
