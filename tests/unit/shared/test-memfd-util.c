/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check-main.h"
#include "cleanup.h"
#include "memfd-util.h"

static const char message[] = "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n";

START_TEST(test_spool_seal_map)
{
        _cleanup_close_ int fd = -1;
        const void *p = NULL;
        uint64_t size = 0;
        size_t mapped = 0;

        fd = memfd_new_spool("test-spool");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

        ck_assert_int_eq(memfd_append(fd, message, 20), 0);
        ck_assert_int_eq(memfd_append(fd, message + 20, sizeof(message) - 1 - 20), 0);
        ck_assert_int_eq(memfd_append(fd, NULL, 0), 0);

        /* Not sealed yet: receivers refuse it. */
        ck_assert_int_eq(memfd_check_sealed(fd, 1024, &size), -EPERM);
        ck_assert_int_eq(memfd_map_sealed(fd, 1024, &p, &mapped), -EPERM);

        ck_assert_int_eq(memfd_seal(fd), 0);
        ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & MEMFD_SEALS_ALL, MEMFD_SEALS_ALL);

        /* Sealed: no more writes, no growth, no second sealing. */
        ck_assert_int_eq(memfd_append(fd, "x", 1), -EPERM);
        ck_assert_int_eq(ftruncate(fd, 1), -1);
        ck_assert_int_eq(errno, EPERM);
        ck_assert_int_eq(memfd_seal(fd), -EPERM);

        ck_assert_int_eq(memfd_check_sealed(fd, sizeof(message) - 1, &size), 0);
        ck_assert_uint_eq(size, sizeof(message) - 1);
        ck_assert_int_eq(memfd_check_sealed(fd, sizeof(message) - 2, &size), -EFBIG);

        ck_assert_int_eq(memfd_map_sealed(fd, 1 << 20, &p, &mapped), 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(mapped, sizeof(message) - 1);
        ck_assert_int_eq(memcmp(p, message, mapped), 0);
        ck_assert_int_eq(munmap((void*) p, mapped), 0);

        ck_assert_int_eq(memfd_map_sealed(fd, 10, &p, &mapped), -EFBIG);
}
END_TEST

START_TEST(test_partial_seals)
{
        _cleanup_close_ int fd = -1;

        fd = memfd_new_spool(NULL);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_append(fd, "abc", 3), 0);

        /* Write-sealed but still growable is not good enough. */
        ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK), 0);
        ck_assert_int_eq(memfd_check_sealed(fd, 1024, NULL), -EPERM);
}
END_TEST

START_TEST(test_empty)
{
        _cleanup_close_ int fd = -1;
        const void *p = (const void*) 1;
        size_t mapped = 1;

        fd = memfd_new_spool("empty");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_seal(fd), 0);
        ck_assert_int_eq(memfd_map_sealed(fd, 0, &p, &mapped), 0);
        ck_assert_ptr_null(p);
        ck_assert_uint_eq(mapped, 0);
}
END_TEST

START_TEST(test_not_a_memfd)
{
        _cleanup_close_ int fd = -1;
        int pipefd[2];

        /* A regular file (even on tmpfs via O_TMPFILE it has no seals) and a pipe are refused. */
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_check_sealed(fd, 1024, NULL), -EBADF);

        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        ck_assert_int_eq(memfd_check_sealed(pipefd[0], 1024, NULL), -EBADF);
        close(pipefd[0]);
        close(pipefd[1]);

        ck_assert_int_eq(memfd_check_sealed(-1, 1024, NULL), -EBADF);
        ck_assert_int_eq(memfd_append(-1, "x", 1), -EBADF);
}
END_TEST

START_TEST(test_unsealable_memfd)
{
        _cleanup_close_ int fd = -1;

        /* Created without MFD_ALLOW_SEALING: it comes with F_SEAL_SEAL, so never acceptable. */
        fd = memfd_create("no-sealing", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_seal(fd), -EPERM);
        ck_assert_int_eq(memfd_check_sealed(fd, 1024, NULL), -EPERM);
}
END_TEST

static Suite* memfd_util_suite(void) {
        Suite *s = suite_create("memfd-util");
        TCase *tc = tcase_create("memfd");

        tcase_add_test(tc, test_spool_seal_map);
        tcase_add_test(tc, test_partial_seals);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_not_a_memfd);
        tcase_add_test(tc, test_unsealable_memfd);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(memfd_util_suite);
