/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* RFC 5322 §2.2 header fields: name ":" value with folding, read from a message held in
 * memory (a mapped sealed memfd). The header block ends at the first empty line. Nothing
 * is copied; views point into the buffer. Both CRLF and LF line ends are understood (the
 * relay only ever stores CRLF, but other services read files). */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef struct Rfc5322Limits {
        size_t max_line;        /* 998 + CRLF by RFC 5322 §2.1.1 */
        size_t max_field;       /* a whole folded field, default 64 KiB */
        size_t max_fields;      /* default 1000 */
} Rfc5322Limits;
#define RFC5322_LIMITS_DEFAULT { .max_line = 998, .max_field = 65536, .max_fields = 1000 }

typedef struct Rfc5322Field {
        const char *name;       /* points into the buffer */
        size_t name_len;
        const char *value;      /* after ':' up to (not including) the final line end; folds kept */
        size_t value_len;
        size_t raw_offset;      /* offset of the field's first byte in the buffer */
        size_t raw_len;         /* through its final line end */
} Rfc5322Field;

/* Iterate: *offset starts at 0. Returns 1 with *ret filled and *offset advanced, 0 at the
 * end of the header block (*offset then points at the body, after the empty line, or at
 * len when there is no body), or:
 *   -EBADMSG  a line that is neither a field, a continuation nor the empty line
 *             (no colon, empty name, control characters in the name, continuation first)
 *   -E2BIG    a line or a field over the limits, or too many fields (n counts fields seen).
 * limits may be NULL for RFC5322_LIMITS_DEFAULT; max_line excludes the line end, max_field
 * counts raw_len. n may be NULL when the caller does not want the field count enforced.
 * On error *offset and *ret are left unchanged. */
int rfc5322_field_next(const char *buf, size_t len, const Rfc5322Limits *limits,
                       size_t *offset, size_t *n, Rfc5322Field *ret);

/* Case-insensitive name comparison helper. */
bool rfc5322_field_is(const Rfc5322Field *f, const char *name) _pure_;

/* Unfold a value (remove CRLF/LF before WSP) and trim surrounding WSP into a new string. */
int rfc5322_unfold(const char *value, size_t len, char **ret);
