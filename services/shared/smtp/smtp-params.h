/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ESMTP parameters (RFC 5321 §4.1.2 esmtp-param) and the known ones the relay checks:
 * SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT
 * (RFC 3461, relayed unchanged), AUTH (RFC 4954). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct SmtpParam {
        char *keyword;          /* as sent */
        char *value;            /* NULL when there is no "=value" */
} SmtpParam;

typedef struct SmtpParams {
        SmtpParam *params;
        size_t n_params;
} SmtpParams;
#define SMTP_PARAMS_NULL { .params = NULL, .n_params = 0 }
void smtp_params_done(SmtpParams *p);

#define SMTP_PARAMS_MAX 16

/* Space-separated list after the path. -EBADMSG on bad keyword/value syntax, -E2BIG for
 * more than SMTP_PARAMS_MAX, -ENOTUNIQ for a repeated keyword. UTF-8 in values only when
 * allow_utf8. */
int smtp_params_parse(const char *s, size_t len, bool allow_utf8, SmtpParams *ret);

/* Case-insensitive lookup; returns the param or NULL. */
const SmtpParam* smtp_params_find(const SmtpParams *p, const char *keyword);

/* Typed checks for the known parameters:
 *  SIZE=n: decimal, fits uint64 (-EBADMSG otherwise)
 *  BODY=7BIT|8BITMIME|BINARYMIME
 *  NOTIFY=NEVER | comma list of SUCCESS,FAILURE,DELAY
 *  RET=FULL|HDRS
 *  ENVID / ORCPT: xtext (RFC 3461 §4), ORCPT "addr-type;xtext" */
int smtp_param_parse_size(const char *value, uint64_t *ret);

typedef enum SmtpBody {
        SMTP_BODY_7BIT,
        SMTP_BODY_8BITMIME,
        SMTP_BODY_BINARYMIME,
        _SMTP_BODY_MAX,
        _SMTP_BODY_INVALID = -EINVAL,
} SmtpBody;
SmtpBody smtp_body_from_string(const char *s) _pure_;

bool smtp_xtext_valid(const char *s) _pure_;
bool smtp_notify_valid(const char *s) _pure_;
bool smtp_ret_valid(const char *s) _pure_;
bool smtp_orcpt_valid(const char *s) _pure_;
