/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The authserv-id of Authentication-Results fields (RFC 8601 §2.2, §5): mailsec-authd
 * reads it to build its own fields, and mailsec-proxyd to remove fields that claim its
 * id, which can only come from outside. */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "macro.h"
#include "rfc5322.h"

#define AUTH_RESULTS_FIELD_NAME "Authentication-Results"
#define AUTH_RESULTS_VALUE_MAX 480U             /* one authserv-id, reason or property value:
                                                 * even fully escaped it fits a 998-char line */

/* RFC 2045 §5.1: a token is 1* of any printable US-ASCII character but the tspecials. */
static inline bool auth_results_is_token_char(char c) {
        return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* Read the authserv-id of an Authentication-Results field value (RFC 8601 §2.2): CFWS
 * with nested comments and folds, a token or quoted-string, the optional version. The id
 * is unquoted into a new string; *ret_version is 1 when absent. Returns -EBADMSG when the
 * value does not start like an A-R payload (no id, junk after it, unterminated quoted
 * string or comment, version not a number), -E2BIG for an id over
 * AUTH_RESULTS_VALUE_MAX, -ENOMEM. ret_version may be NULL. */
int auth_results_parse_authserv_id(const char *value, size_t len, char **ret_id, unsigned *ret_version);

/* authserv-id comparison: case-insensitive (domain names), RFC 8601 §5. */
bool auth_results_authserv_id_equal(const char *a, const char *b) _pure_;

/* The Authentication-Results fields of a message's header block that claim authserv_id,
 * top to bottom, as a new array of views into msg (raw_offset/raw_len delimit what to
 * cut). limits as for rfc5322_field_next() (NULL: the defaults). Fields whose id cannot
 * be read are not listed. Returns the number found (0 with
 * *ret = NULL when none), -EBADMSG when the header block does not parse, -E2BIG over the
 * RFC 5322 limits, -ENOMEM. */
int auth_results_find_ours(const char *msg, size_t len, const Rfc5322Limits *limits, const char *authserv_id,
                           Rfc5322Field **ret);
