/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "memfd-util.h"

int memfd_new_spool(const char *name) {
        int fd;

        fd = memfd_create(name ?: "mailsec-spool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        return fd;
}

int memfd_append(int fd, const void *data, size_t size) {
        if (fd < 0)
                return -EBADF;
        if (size == 0)
                return 0;
        if (!data)
                return -EINVAL;

        /* A sealed memfd refuses writes with EPERM, which is what callers see. */
        return loop_write(fd, data, size);
}

int memfd_seal(int fd) {
        if (fd < 0)
                return -EBADF;

        if (fcntl(fd, F_ADD_SEALS, MEMFD_SEALS_ALL) < 0)
                return -errno;
        return 0;
}

int memfd_check_sealed(int fd, uint64_t max_size, uint64_t *ret_size) {
        struct stat st;
        int seals;

        if (fd < 0)
                return -EBADF;

        /* F_GET_SEALS fails with EINVAL on anything that is not a memfd (or shmem file). */
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? -EBADF : -errno;
        if ((seals & MEMFD_SEALS_ALL) != MEMFD_SEALS_ALL)
                return -EPERM;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size < 0)
                return -EBADF;
        if ((uint64_t) st.st_size > max_size)
                return -EFBIG;

        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        return 0;
}

int memfd_map_sealed(int fd, uint64_t max_size, const void **ret_data, size_t *ret_size) {
        uint64_t size;
        void *p;
        int r;

        if (!ret_data || !ret_size)
                return -EINVAL;

        r = memfd_check_sealed(fd, max_size, &size);
        if (r < 0)
                return r;
        if (size > SIZE_MAX)
                return -EFBIG;

        if (size == 0) {
                *ret_data = NULL;
                *ret_size = 0;
                return 0;
        }

        /* Sealed against writes and shrinking: the mapping cannot change or SIGBUS under us. */
        p = mmap(NULL, (size_t) size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;

        *ret_data = p;
        *ret_size = (size_t) size;
        return 0;
}

void memfd_reader_done(MemfdReader *reader) {
        if (!reader)
                return;
        free(reader->buf);
        *reader = (MemfdReader) {};
}

int memfd_view_sealed(int fd, uint64_t max_size, MemfdReader *reader, MemfdView *ret) {
        uint64_t size;
        int r;

        if (!reader || !ret)
                return -EINVAL;
        *ret = (MemfdView) {};

        r = memfd_check_sealed(fd, max_size, &size);
        if (r < 0)
                return r;
        if (size > MEMFD_READ_MAX) {
                r = memfd_map_sealed(fd, max_size, &ret->data, &ret->size);
                if (r < 0) {
                        *ret = (MemfdView) {};
                        return r;
                }
                ret->mapped = true;
                return 0;
        }
        if (size == 0)
                return 0;

        if (size > reader->allocated) {
                void *p = realloc(reader->buf, (size_t) size);

                if (!p)
                        return -ENOMEM;
                reader->buf = p;
                reader->allocated = (size_t) size;
        }
        /* sealed against shrinking and writes: every byte is there and stays as it is */
        r = loop_pread(fd, reader->buf, (size_t) size, 0);
        if (r < 0)
                return r;
        *ret = (MemfdView) { .data = reader->buf, .size = (size_t) size };
        return 0;
}

void memfd_view_release(MemfdView *v) {
        if (!v)
                return;
        if (v->mapped && v->data)
                (void) munmap((void*) v->data, v->size);
        *v = (MemfdView) {};
}
