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

/* Space-separated list after the path (one or more SP between parameters; leading and
 * trailing SP ignored; an empty list gives n_params == 0 and params == NULL). -EBADMSG on
 * bad keyword/value syntax (including an empty value, "KEY="), -E2BIG for more than
 * SMTP_PARAMS_MAX, -ENOTUNIQ for a repeated keyword (case-insensitive), -EILSEQ for an
 * 8-bit byte in a value when !allow_utf8 or for invalid UTF-8 (RFC 6531 §3.3 esmtp-value
 * allows UTF8-non-ascii only under SMTPUTF8). *ret is written only on success. */
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

/* Length of the one UTF-8 encoded non-ASCII character at s (RFC 3629 UTF8-2/3/4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 when s does not start with
 * one (ASCII, a stray continuation byte, truncated or invalid sequence). */
size_t smtp_utf8_char_len(const char *s, size_t len) _pure_;
