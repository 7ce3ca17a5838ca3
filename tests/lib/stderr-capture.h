/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Capture what code under test writes to stderr (fd 2), for asserting on log lines.
 *
 *         StderrCapture c;
 *         stderr_capture_begin(&c);
 *         log_info("hello");
 *         char *out = stderr_capture_end(&c);     (malloc'ed, NUL-terminated)
 *
 * Output goes into a pipe, so keep it below the pipe buffer (64 KiB). */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct StderrCapture {
        int saved_fd;
        int pipe_fd[2];
} StderrCapture;

static inline void stderr_capture_begin(StderrCapture *c) {
        fflush(stderr);
        ck_assert_int_eq(pipe2(c->pipe_fd, O_CLOEXEC), 0);
        c->saved_fd = dup(STDERR_FILENO);
        ck_assert_int_ge(c->saved_fd, 0);
        ck_assert_int_eq(dup2(c->pipe_fd[1], STDERR_FILENO), STDERR_FILENO);
        close(c->pipe_fd[1]);
}

static inline char* stderr_capture_end(StderrCapture *c) {
        size_t n = 0, allocated = 4096;
        char *buf;

        fflush(stderr);
        /* Restoring fd 2 drops the last write end of the pipe, so read() sees EOF. */
        ck_assert_int_eq(dup2(c->saved_fd, STDERR_FILENO), STDERR_FILENO);
        close(c->saved_fd);

        buf = malloc(allocated);
        ck_assert_ptr_nonnull(buf);
        for (;;) {
                ssize_t k;

                if (n + 1 >= allocated) {
                        allocated *= 2;
                        buf = realloc(buf, allocated);
                        ck_assert_ptr_nonnull(buf);
                }
                k = read(c->pipe_fd[0], buf + n, allocated - n - 1);
                ck_assert_int_ge(k, 0);
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        close(c->pipe_fd[0]);
        buf[n] = 0;
        return buf;
}
