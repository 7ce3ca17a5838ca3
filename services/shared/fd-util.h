/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cleanup.h"

int fd_nonblock(int fd, bool nonblock);
int fd_cloexec(int fd, bool cloexec);
/* write all, retrying on EINTR; blocking fds only */
int loop_write(int fd, const void *buf, size_t nbytes);
/* read exactly nbytes at offset, retrying on EINTR and short reads; -EIO at end of file */
int loop_pread(int fd, void *buf, size_t nbytes, off_t offset);
/* read a whole (small) file, refusing more than max bytes; NUL-terminated */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
