/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Message bodies cross process boundaries only as sealed memfds. The proxy spools DATA
 * into one, seals it once the final dot has arrived, and passes the fd on; receivers
 * check the seals and the size before reading or mapping it. */

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMFD_SEALS_ALL (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* MFD_CLOEXEC|MFD_ALLOW_SEALING; name shows up in /proc/PID/fd */
int memfd_new_spool(const char *name);
/* Append bytes at the current end (the fd's file offset). */
int memfd_append(int fd, const void *data, size_t size);
/* Apply all seals. Fails with -EPERM if already sealed against sealing. */
int memfd_seal(int fd);
/* 0 if fd is a memfd with all of MEMFD_SEALS_ALL and at most max_size bytes (size in
 * *ret_size); -EPERM if seals are missing, -EFBIG if too large, -EBADF if not a memfd. */
int memfd_check_sealed(int fd, uint64_t max_size, uint64_t *ret_size);
/* Check the seals, then mmap read-only. Unmap with munmap(p, size) (size 0: p is NULL). */
int memfd_map_sealed(int fd, uint64_t max_size, const void **ret_data, size_t *ret_size);

/* A sealed memfd of at most MEMFD_READ_MAX bytes is read into a buffer that the caller
 * keeps from one message to the next; a larger one is mapped. For the few kilobytes of
 * most mail, one pread() is cheaper than mmap(), the page faults of the first touch and
 * the TLB flush of munmap() (tests/bench/spam: 8 % of mailsec-spamd's time per message). */
#define MEMFD_READ_MAX (1024U * 1024U)

typedef struct MemfdReader {
        void *buf;
        size_t allocated;
} MemfdReader;

typedef struct MemfdView {
        const void *data;               /* NULL when size is 0 */
        size_t size;
        bool mapped;
} MemfdView;

void memfd_reader_done(MemfdReader *reader);
/* Check the seals, then read the memfd into reader's buffer or map it. The view is valid
 * until memfd_view_release() or the reader's next use; on failure it is empty. */
int memfd_view_sealed(int fd, uint64_t max_size, MemfdReader *reader, MemfdView *ret);
void memfd_view_release(MemfdView *v);
