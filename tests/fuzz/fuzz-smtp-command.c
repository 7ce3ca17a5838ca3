/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-smtp-command: one client command line (without CRLF) through smtp_command_parse(),
 * then, for MAIL and RCPT, the argument through smtp_envelope_arg_parse() with the flag
 * combinations the session uses, and every parsed ESMTP parameter through the typed
 * checker that matches its keyword. */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp-address.h"
#include "smtp-command.h"
#include "smtp-params.h"

/* A command line is at most 512 octets, extended by ESMTP parameters; a few KiB covers
 * every real line while keeping the fuzzer fast. */
#define FUZZ_COMMAND_INPUT_MAX ((size_t) 4096U)

static void check_params(const SmtpParams *params) {
        for (size_t i = 0; i < params->n_params; i++) {
                const SmtpParam *p = &params->params[i];
                uint64_t size;

                if (!p->value)
                        continue;
                if (strcasecmp(p->keyword, "SIZE") == 0)
                        (void) smtp_param_parse_size(p->value, &size);
                else if (strcasecmp(p->keyword, "BODY") == 0)
                        (void) smtp_body_from_string(p->value);
                else if (strcasecmp(p->keyword, "NOTIFY") == 0)
                        (void) smtp_notify_valid(p->value);
                else if (strcasecmp(p->keyword, "RET") == 0)
                        (void) smtp_ret_valid(p->value);
                else if (strcasecmp(p->keyword, "ENVID") == 0)
                        (void) smtp_xtext_valid(p->value);
                else if (strcasecmp(p->keyword, "ORCPT") == 0)
                        (void) smtp_orcpt_valid(p->value);
                if (smtp_params_find(params, p->keyword) != p)
                        abort();   /* keywords are unique */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const SmtpPathFlags flag_sets[] = {
                0,
                SMTP_PATH_UTF8,
                SMTP_PATH_LENIENT_SPACE,
                SMTP_PATH_UTF8 | SMTP_PATH_LENIENT_SPACE,
        };
        SmtpCommand cmd;

        if (size > FUZZ_COMMAND_INPUT_MAX)
                return 0;

        if (smtp_command_parse((const char*) data, size, &cmd) < 0)
                return 0;

        if (!smtp_verb_to_string(cmd.verb))
                abort();
        if (cmd.arg < (const char*) data || cmd.arg + cmd.arg_len > (const char*) data + size)
                abort();

        if (cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT)
                return 0;

        for (size_t i = 0; i < ELEMENTSOF(flag_sets); i++) {
                SmtpEnvelopeArg a = SMTP_ENVELOPE_ARG_NULL;

                if (smtp_envelope_arg_parse(cmd.arg, cmd.arg_len, cmd.verb == SMTP_VERB_MAIL,
                                            flag_sets[i], &a) < 0)
                        continue;
                if (!a.path.mailbox || strlen(a.path.mailbox) > SMTP_PATH_MAX - 2 ||
                    a.path.local_len > strlen(a.path.mailbox) ||
                    a.params.n_params > SMTP_PARAMS_MAX)
                        abort();
                check_params(&a.params);
                smtp_envelope_arg_done(&a);
        }
        return 0;
}
