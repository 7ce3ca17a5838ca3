/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Replies of the next hop (RFC 5321 §4.2), fed one line at a time, multi-line aware,
 * with RFC 3463 enhanced status codes split out. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define SMTP_REPLY_LINES_MAX 64
#define SMTP_REPLY_LINE_MAX 2048

typedef struct SmtpReply {
        unsigned code;          /* 200..599 */
        char **lines;           /* text of each line after "NNN-"/"NNN " (strv), may be "" */
        size_t n_lines;
        bool complete;          /* the "NNN " line has been seen */
        bool has_enhanced;      /* first line starts with "X.Y.Z " where X matches code/100 */
        unsigned enh_class, enh_subject, enh_detail;
} SmtpReply;
#define SMTP_REPLY_NULL { .code = 0, .lines = NULL }
void smtp_reply_done(SmtpReply *r);   /* frees, resets to SMTP_REPLY_NULL */

/* line WITHOUT CRLF. Returns 1 when the reply is complete, 0 if more lines are needed.
 * -EBADMSG: not "NNN[- ]text" / "NNN", code out of 200..599 range, code differs from
 * earlier lines, NUL, CR, LF or another control character but HTAB (DEL too) in the line;
 * -E2BIG: more than SMTP_REPLY_LINES_MAX lines or a line longer than SMTP_REPLY_LINE_MAX;
 * -EALREADY: fed after completion. On error *r is left as it was. has_enhanced is set
 * from the first line only: "X.Y.Z" followed by SP or the end of the text, X one of
 * 2/4/5 and equal to the code's first digit, Y and Z 1-3 digits without leading zeros. */
int smtp_reply_feed(SmtpReply *r, const char *line, size_t len);

/* Parse a whole NUL-terminated buffer of CRLF-terminated lines holding exactly one reply
 * (tests). Returns 0, or -EBADMSG also for an unterminated line, a reply that does not
 * end, or data after its last line. *ret is written only on success. */
int smtp_reply_parse(const char *buf, SmtpReply *ret);

/* A deep copy of a reply (to keep an answer beyond its handler). */
int smtp_reply_copy(const SmtpReply *r, SmtpReply *ret);

static inline bool smtp_reply_is_positive(const SmtpReply *r) {
        return r->code >= 200 && r->code < 400;
}
static inline bool smtp_reply_is_transient(const SmtpReply *r) {
        return r->code >= 400 && r->code < 500;
}

/* EHLO reply helper: lines[1..] are keywords; returns true if keyword is advertised
 * (case-insensitive, first word), and its parameter string in *ret_param (may be NULL). */
bool smtp_reply_ehlo_has(const SmtpReply *r, const char *keyword, const char **ret_param);
