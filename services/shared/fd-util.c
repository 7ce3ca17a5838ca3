/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fd-util.h"

int fd_nonblock(int fd, bool nonblock) {
        int flags, nflags;

        assert(fd >= 0);

        flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0)
                return -errno;
        nflags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (nflags == flags)
                return 0;
        return RET_NERRNO(fcntl(fd, F_SETFL, nflags));
}

int fd_cloexec(int fd, bool cloexec) {
        int flags, nflags;

        assert(fd >= 0);

        flags = fcntl(fd, F_GETFD, 0);
        if (flags < 0)
                return -errno;
        nflags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (nflags == flags)
                return 0;
        return RET_NERRNO(fcntl(fd, F_SETFD, nflags));
}

int loop_write(int fd, const void *buf, size_t nbytes) {
        const uint8_t *p = buf;

        assert(fd >= 0);
        assert(buf || nbytes == 0);

        while (nbytes > 0) {
                ssize_t k;

                k = write(fd, p, nbytes);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                nbytes -= (size_t) k;
        }

        return 0;
}

int loop_pread(int fd, void *buf, size_t nbytes, off_t offset) {
        uint8_t *p = buf;

        assert(fd >= 0);
        assert(buf || nbytes == 0);

        while (nbytes > 0) {
                ssize_t k;

                k = pread(fd, p, nbytes, offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                offset += k;
                nbytes -= (size_t) k;
        }

        return 0;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;
        struct stat st;

        assert(path);
        assert(ret);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
                return -EBADF;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;

        for (;;) {
                ssize_t k;

                if (n + 1 >= allocated) {
                        size_t want;
                        char *t;

                        if (allocated > max + 1)
                                return -EFBIG;
                        want = allocated == 0 ? 4096 : allocated * 2;
                        if (S_ISREG(st.st_mode) && allocated == 0 && (size_t) st.st_size + 1 > want)
                                want = (size_t) st.st_size + 1;
                        want = MIN(want, max + 2);
                        if (want <= allocated)
                                return -EFBIG;
                        t = realloc(buf, want);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = want;
                }

                k = read(fd, buf + n, allocated - n - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }

        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}
