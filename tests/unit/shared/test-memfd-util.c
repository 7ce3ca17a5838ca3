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

/* A sealed memfd of size bytes, byte i being (i * 7 + seed) % 251. */
static int sealed_pattern(size_t size, unsigned seed) {
        _cleanup_free_ char *b = malloc(size + 1);
        int fd;

        ck_assert_ptr_nonnull(b);
        for (size_t i = 0; i < size; i++)
                b[i] = (char) ((i * 7 + seed) % 251);
        fd = memfd_new_spool("pattern");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_append(fd, b, size), 0);
        ck_assert_int_eq(memfd_seal(fd), 0);
        return fd;
}

static void check_pattern(const MemfdView *v, size_t size, unsigned seed) {
        const unsigned char *p = v->data;

        ck_assert_uint_eq(v->size, size);
        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < size; i++)
                if (p[i] != (i * 7 + seed) % 251)
                        ck_abort_msg("byte %zu of %zu", i, size);
}

START_TEST(test_view)
{
        _cleanup_(memfd_reader_done) MemfdReader reader = {};
        MemfdView v = {};
        int fd;

        /* small: read into the reader's buffer, which the next message reuses */
        fd = sealed_pattern(5000, 1);
        ck_assert_int_eq(memfd_view_sealed(fd, 1 << 20, &reader, &v), 0);
        ck_assert(!v.mapped);
        ck_assert_ptr_eq(v.data, reader.buf);
        check_pattern(&v, 5000, 1);
        memfd_view_release(&v);
        ck_assert_ptr_null(v.data);
        ck_assert_ptr_nonnull(reader.buf);              /* kept */
        ck_assert_int_eq(memfd_view_sealed(fd, 4999, &reader, &v), -EFBIG);
        close(fd);

        fd = sealed_pattern(300, 2);
        ck_assert_int_eq(memfd_view_sealed(fd, 1 << 20, &reader, &v), 0);
        ck_assert(!v.mapped);
        check_pattern(&v, 300, 2);
        memfd_view_release(&v);
        close(fd);

        /* the largest one read, and one byte more: mapped */
        fd = sealed_pattern(MEMFD_READ_MAX, 3);
        ck_assert_int_eq(memfd_view_sealed(fd, UINT64_MAX, &reader, &v), 0);
        ck_assert(!v.mapped);
        check_pattern(&v, MEMFD_READ_MAX, 3);
        memfd_view_release(&v);
        close(fd);

        fd = sealed_pattern(MEMFD_READ_MAX + 1, 4);
        ck_assert_int_eq(memfd_view_sealed(fd, UINT64_MAX, &reader, &v), 0);
        ck_assert(v.mapped);
        ck_assert_ptr_ne(v.data, reader.buf);
        check_pattern(&v, MEMFD_READ_MAX + 1, 4);
        memfd_view_release(&v);
        ck_assert(!v.mapped);
        close(fd);

        /* empty, and not sealed */
        fd = sealed_pattern(0, 0);
        ck_assert_int_eq(memfd_view_sealed(fd, 0, &reader, &v), 0);
        ck_assert_ptr_null(v.data);
        ck_assert_uint_eq(v.size, 0);
        close(fd);

        fd = memfd_new_spool("open");
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(memfd_append(fd, "abc", 3), 0);
        v = (MemfdView) { .data = message, .size = 7, .mapped = true };
        ck_assert_int_eq(memfd_view_sealed(fd, 1024, &reader, &v), -EPERM);
        ck_assert_ptr_null(v.data);             /* empty: releasing it unmaps nothing */
        ck_assert(!v.mapped);
        close(fd);
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
        tcase_add_test(tc, test_view);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(memfd_util_suite);
