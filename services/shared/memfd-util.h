/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Message bodies cross process boundaries only as sealed memfds. The proxy spools DATA
 * into one, seals it once the final dot has arrived, and passes the fd on; receivers
 * check the seals and the size before mapping it. */

#include <fcntl.h>
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
