/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Pure parsers for the server side of RFC 5321: the command line, then MAIL/RCPT
 * arguments (see smtp-address.h, smtp-params.h). No logging above debug, no allocation
 * in smtp_command_parse(): the result points into the caller's line. */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef enum SmtpVerb {
        SMTP_VERB_HELO,
        SMTP_VERB_EHLO,
        SMTP_VERB_MAIL,
        SMTP_VERB_RCPT,
        SMTP_VERB_DATA,
        SMTP_VERB_BDAT,
        SMTP_VERB_RSET,
        SMTP_VERB_NOOP,
        SMTP_VERB_QUIT,
        SMTP_VERB_VRFY,
        SMTP_VERB_EXPN,
        SMTP_VERB_HELP,
        SMTP_VERB_STARTTLS,
        SMTP_VERB_AUTH,
        _SMTP_VERB_MAX,
        _SMTP_VERB_INVALID = -EINVAL,
} SmtpVerb;

const char* smtp_verb_to_string(SmtpVerb v) _const_;   /* "MAIL" */
SmtpVerb smtp_verb_from_string(const char *s, size_t len) _pure_; /* case-insensitive */

typedef struct SmtpCommand {
        SmtpVerb verb;
        const char *arg;        /* after the verb and one SP; for MAIL/RCPT starts at "FROM:"/"TO:";
                                 * never NULL (points at the end of the line when arg_len == 0) */
        size_t arg_len;         /* 0 when there is no argument; trailing SP not included */
} SmtpCommand;

/* line: one command line WITHOUT its CRLF (the session has already checked the line
 * ending). Verbs are case-insensitive. Trailing SP is ignored ("QUIT " is QUIT without an
 * argument); the argument starts after exactly one SP and is otherwise passed on as sent.
 * 8-bit bytes are let through only in the arguments of EHLO, MAIL, RCPT and VRFY, whose
 * own parsers decide about SMTPUTF8. Errors:
 *   -EBADMSG   NUL byte, control characters (HTAB, CR, LF, DEL included), 8-bit bytes in
 *              the verb or outside an argument that may carry UTF-8, missing SP between
 *              a known verb and its argument ("MAIL:FROM"), empty line, leading SP
 *   -EOPNOTSUPP unknown verb (the caller answers 500 5.5.2)
 *   -EINVAL    argument where none is allowed (DATA x, QUIT x, RSET x, STARTTLS x) or
 *              missing where one is required (HELO, EHLO, MAIL, RCPT, BDAT, VRFY, EXPN,
 *              AUTH); NOOP and HELP take an optional argument
 * *ret is written only on success. */
int smtp_command_parse(const char *line, size_t len, SmtpCommand *ret);
