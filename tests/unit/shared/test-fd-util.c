/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "fd-util.h"

START_TEST(test_flags)
{
        int p[2];

        ck_assert_int_eq(pipe2(p, 0), 0);
        ck_assert_int_eq(fd_nonblock(p[0], true), 0);
        ck_assert_int_ne(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        ck_assert_int_eq(fd_nonblock(p[0], false), 0);
        ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        ck_assert_int_eq(fd_cloexec(p[1], true), 0);
        ck_assert_int_ne(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
        ck_assert_int_eq(fd_cloexec(p[1], false), 0);
        ck_assert_int_eq(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
        safe_close(p[0]);
        safe_close(p[1]);
}
END_TEST

START_TEST(test_read_full_file)
{
        char path[] = "/tmp/test-fd-util-XXXXXX";
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *big = NULL;
        char *s = NULL;
        size_t n = 0;

        fd = mkostemp(path, O_CLOEXEC);
        ck_assert_int_ge(fd, 0);

        /* Empty file: an empty, NUL-terminated string. */
        ck_assert_int_eq(read_full_file(path, 100, &s, &n), 0);
        ck_assert_str_eq(s, "");
        ck_assert_uint_eq(n, 0);
        free(s);

        big = malloc(10000);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 10000);
        ck_assert_int_eq(loop_write(fd, big, 10000), 0);

        ck_assert_int_eq(read_full_file(path, 10000, &s, &n), 0);
        ck_assert_uint_eq(n, 10000);
        ck_assert_uint_eq(strlen(s), 10000);
        free(s);

        s = NULL;
        ck_assert_int_eq(read_full_file(path, 9999, &s, &n), -EFBIG);
        ck_assert_ptr_null(s);

        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(read_full_file(path, 100, &s, NULL), -ENOENT);
        ck_assert_int_eq(read_full_file("/tmp", 100, &s, NULL), -EISDIR);
}
END_TEST

START_TEST(test_loop_pread)
{
        char path[] = "/tmp/test-fd-util-XXXXXX", buf[16];
        _cleanup_close_ int fd = -1;
        int p[2];

        fd = mkostemp(path, O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(loop_write(fd, "0123456789", 10), 0);

        /* at an offset, and the file offset left alone */
        ck_assert_int_eq(loop_pread(fd, buf, 4, 3), 0);
        ck_assert_int_eq(memcmp(buf, "3456", 4), 0);
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10);
        ck_assert_int_eq(loop_pread(fd, buf, 0, 10), 0);
        /* past the end: short, an error */
        ck_assert_int_eq(loop_pread(fd, buf, 4, 8), -EIO);

        /* an error of pread() itself: a pipe has no offsets */
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(loop_pread(p[0], buf, 1, 0), -ESPIPE);
        safe_close(p[0]);
        safe_close(p[1]);
}
END_TEST

static Suite* fd_util_suite(void) {
        Suite *s = suite_create("fd-util");
        TCase *tc = tcase_create("fd");

        tcase_add_test(tc, test_flags);
        tcase_add_test(tc, test_read_full_file);
        tcase_add_test(tc, test_loop_pread);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(fd_util_suite);
