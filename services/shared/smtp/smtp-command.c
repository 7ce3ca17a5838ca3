/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "smtp-command.h"

typedef enum ArgRule {
        ARG_NONE,       /* no argument allowed */
        ARG_OPTIONAL,
        ARG_REQUIRED,
} ArgRule;

static const struct {
        const char *name;
        ArgRule arg;
        bool utf8;      /* argument may carry 8-bit bytes, judged later by its own parser */
} verb_table[_SMTP_VERB_MAX] = {
        [SMTP_VERB_HELO]     = { "HELO",     ARG_REQUIRED, false },
        [SMTP_VERB_EHLO]     = { "EHLO",     ARG_REQUIRED, true  },
        [SMTP_VERB_MAIL]     = { "MAIL",     ARG_REQUIRED, true  },
        [SMTP_VERB_RCPT]     = { "RCPT",     ARG_REQUIRED, true  },
        [SMTP_VERB_DATA]     = { "DATA",     ARG_NONE,     false },
        [SMTP_VERB_BDAT]     = { "BDAT",     ARG_REQUIRED, false },
        [SMTP_VERB_RSET]     = { "RSET",     ARG_NONE,     false },
        [SMTP_VERB_NOOP]     = { "NOOP",     ARG_OPTIONAL, false },
        [SMTP_VERB_QUIT]     = { "QUIT",     ARG_NONE,     false },
        [SMTP_VERB_VRFY]     = { "VRFY",     ARG_REQUIRED, true  },
        [SMTP_VERB_EXPN]     = { "EXPN",     ARG_REQUIRED, false },
        [SMTP_VERB_HELP]     = { "HELP",     ARG_OPTIONAL, false },
        [SMTP_VERB_STARTTLS] = { "STARTTLS", ARG_NONE,     false },
        [SMTP_VERB_AUTH]     = { "AUTH",     ARG_REQUIRED, false },
};

const char* smtp_verb_to_string(SmtpVerb v) {
        if (v < 0 || v >= _SMTP_VERB_MAX)
                return NULL;
        return verb_table[v].name;
}

SmtpVerb smtp_verb_from_string(const char *s, size_t len) {
        if (!s)
                return _SMTP_VERB_INVALID;
        for (size_t i = 0; i < _SMTP_VERB_MAX; i++)
                if (strlen(verb_table[i].name) == len && strncasecmp(verb_table[i].name, s, len) == 0)
                        return (SmtpVerb) i;
        return _SMTP_VERB_INVALID;
}

static bool is_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int smtp_command_parse(const char *line, size_t len, SmtpCommand *ret) {
        size_t verb_len, alpha_len, arg_start;
        SmtpVerb verb;

        assert(line || len == 0);
        assert(ret);

        /* Control bytes anywhere (NUL, CR, LF, HTAB, DEL, ...) are refused first. */
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) line[i];

                if (c < 0x20 || c == 0x7f)
                        return -EBADMSG;
        }

        /* Trailing SP is tolerated (clients send "QUIT " or "MAIL FROM:<a@b> "), it is
         * never part of an argument. */
        while (len > 0 && line[len - 1] == ' ')
                len--;
        if (len == 0)
                return -EBADMSG;

        verb_len = 0;
        while (verb_len < len && line[verb_len] != ' ')
                verb_len++;
        if (verb_len == 0)
                return -EBADMSG;   /* leading SP */

        alpha_len = 0;
        while (alpha_len < verb_len && is_alpha(line[alpha_len]))
                alpha_len++;

        verb = smtp_verb_from_string(line, verb_len);
        if (verb < 0) {
                /* "MAIL:FROM" or "DATA." is a known verb without its SP, "MAILFROM:" is not. */
                if (alpha_len < verb_len && smtp_verb_from_string(line, alpha_len) >= 0)
                        return -EBADMSG;
                for (size_t i = 0; i < verb_len; i++)
                        if ((unsigned char) line[i] >= 0x80)
                                return -EBADMSG;
                return -EOPNOTSUPP;
        }

        arg_start = verb_len < len ? verb_len + 1 : len;

        if (!verb_table[verb].utf8)
                for (size_t i = arg_start; i < len; i++)
                        if ((unsigned char) line[i] >= 0x80)
                                return -EBADMSG;

        if (arg_start == len && verb_table[verb].arg == ARG_REQUIRED)
                return -EINVAL;
        if (arg_start < len && verb_table[verb].arg == ARG_NONE)
                return -EINVAL;

        *ret = (SmtpCommand) {
                .verb = verb,
                .arg = line + arg_start,
                .arg_len = len - arg_start,
        };
        return 0;
}
