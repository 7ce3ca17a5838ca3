/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* RFC 5321 §4.1.2 Path / Mailbox, with RFC 6531 (SMTPUTF8) extensions, and the
 * MAIL FROM:/RCPT TO: argument as a whole. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"
#include "smtp-params.h"

typedef enum SmtpPathFlags {
        SMTP_PATH_ALLOW_NULL       = 1 << 0, /* "<>" (MAIL FROM) */
        SMTP_PATH_ALLOW_POSTMASTER = 1 << 1, /* "<Postmaster>" without domain (RCPT TO) */
        SMTP_PATH_UTF8             = 1 << 2, /* UTF-8 local part and U-labels (SMTPUTF8 given) */
        SMTP_PATH_LENIENT_SPACE    = 1 << 3, /* accept "FROM: <a@b>" (one space after ':') */
} SmtpPathFlags;

typedef struct SmtpPath {
        char *mailbox;          /* "local@domain" as sent, source route removed; "" for <> */
        size_t local_len;       /* bytes of the local part in mailbox (quoted form kept) */
        bool is_null;           /* <> */
        bool is_postmaster;     /* <Postmaster> */
        bool utf8;              /* contains non-ASCII */
        bool address_literal;   /* domain is [1.2.3.4] / [IPv6:...] */
} SmtpPath;
#define SMTP_PATH_NULL { .mailbox = NULL }
void smtp_path_done(SmtpPath *p);

/* Limits from RFC 5321 §4.5.3.1: local part 64 octets, domain 255, path 256. */
#define SMTP_LOCAL_PART_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256

/* Parse a Path starting at s[0] == '<'. *ret_consumed = bytes up to and including '>'
 * (what follows is left to the caller). -EBADMSG on bad syntax, -E2BIG over the length
 * limits (local part > 64, domain > 255, label > 63, whole path > 256 octets with its
 * brackets and source route, so a mailbox is at most 254), -EILSEQ for UTF-8 when
 * SMTP_PATH_UTF8 is not set or for invalid UTF-8 (overlong forms, surrogates, > U+10FFFF).
 * Address literals: [IPv4] and [IPv6:...] (RFC 5321 group counts, checked with
 * inet_pton()); General-address-literal ([tag:content]) is refused with -EBADMSG.
 * "<Postmaster>" is matched case-insensitively; "<postmaster@domain>" is an ordinary
 * mailbox (is_postmaster false). *ret is written only on success. */
int smtp_path_parse(const char *s, size_t len, SmtpPathFlags flags, SmtpPath *ret, size_t *ret_consumed);

/* Mailbox without angle brackets ("local@domain"), e.g. for conformance vectors. */
int smtp_mailbox_parse(const char *s, size_t len, SmtpPathFlags flags, SmtpPath *ret);

/* The argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path> params"). */
typedef struct SmtpEnvelopeArg {
        SmtpPath path;
        SmtpParams params;
} SmtpEnvelopeArg;
#define SMTP_ENVELOPE_ARG_NULL { .path = SMTP_PATH_NULL, .params = SMTP_PARAMS_NULL }
void smtp_envelope_arg_done(SmtpEnvelopeArg *a);

/* is_mail: "FROM:" expected (and <> allowed) vs "TO:" (and <Postmaster> allowed);
 * both case-insensitive, and the ALLOW_NULL / ALLOW_POSTMASTER bits of flags are replaced
 * by this choice. SMTP_PATH_LENIENT_SPACE allows exactly one SP after the colon. After
 * the path: the end, or one or more SP and smtp_params_parse()'s list.
 * SMTP_PATH_UTF8 in flags is decided by the caller; when the parameters contain
 * SMTPUTF8 the parser enables UTF-8 for the path itself (MAIL only; "SMTPUTF8=x" is
 * -EBADMSG). 8-bit parameter values need the same (-EILSEQ otherwise). Errors are those
 * of smtp_path_parse() and smtp_params_parse(); *ret is written only on success. */
int smtp_envelope_arg_parse(const char *arg, size_t len, bool is_mail, SmtpPathFlags flags,
                            SmtpEnvelopeArg *ret);
