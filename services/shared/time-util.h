/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_MINUTE ((usec_t) (60ULL * USEC_PER_SEC))
#define USEC_PER_HOUR ((usec_t) (60ULL * USEC_PER_MINUTE))

usec_t now(clockid_t clock);
/* "5min 30s", "2h", "100ms", "infinity"; a bare number means seconds. */
int parse_sec(const char *s, usec_t *ret);
/* "5min 30s" */
char* format_timespan(char *buf, size_t l, usec_t t);
#define FORMAT_TIMESPAN_MAX 64
