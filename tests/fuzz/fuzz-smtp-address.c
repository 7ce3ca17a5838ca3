/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-smtp-address: the first byte selects the SmtpPathFlags, the rest is fed to
 * smtp_path_parse(), smtp_mailbox_parse() and smtp_params_parse(), and to the typed
 * ESMTP value checkers as a NUL-terminated string. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp-address.h"
#include "smtp-params.h"

/* A path is at most 256 octets; leave room for parameters and over-long inputs. */
#define FUZZ_ADDRESS_INPUT_MAX ((size_t) 2048U)

static void check_path(const SmtpPath *p, SmtpPathFlags flags) {
        size_t n = strlen(p->mailbox);

        if (n > SMTP_PATH_MAX - 2 || p->local_len > n)
                abort();
        if (p->is_null && (n != 0 || !(flags & SMTP_PATH_ALLOW_NULL)))
                abort();
        if (p->is_postmaster && !(flags & SMTP_PATH_ALLOW_POSTMASTER))
                abort();
        if (p->utf8 && !(flags & SMTP_PATH_UTF8))
                abort();
        if (!p->is_null && !p->is_postmaster && (p->local_len == 0 || p->mailbox[p->local_len] != '@'))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SmtpPath path = SMTP_PATH_NULL;
        SmtpParams params = SMTP_PARAMS_NULL;
        SmtpPathFlags flags;
        const char *s;
        size_t len, consumed = 0;
        char *str;
        uint64_t v;

        if (size < 1 || size > FUZZ_ADDRESS_INPUT_MAX)
                return 0;

        flags = (SmtpPathFlags) (data[0] & 0x0F);
        s = (const char*) data + 1;
        len = size - 1;

        if (smtp_path_parse(s, len, flags, &path, &consumed) >= 0) {
                if (consumed < 2 || consumed > len || consumed > SMTP_PATH_MAX || s[consumed - 1] != '>')
                        abort();
                check_path(&path, flags);
                smtp_path_done(&path);
        }

        if (smtp_mailbox_parse(s, len, flags, &path) >= 0) {
                if (strlen(path.mailbox) != len || memcmp(path.mailbox, s, len) != 0)
                        abort();
                check_path(&path, flags);
                smtp_path_done(&path);
        }

        if (smtp_params_parse(s, len, flags & SMTP_PATH_UTF8, &params) >= 0) {
                if (params.n_params > SMTP_PARAMS_MAX)
                        abort();
                smtp_params_done(&params);
        }

        str = strndup(s, len);
        if (!str)
                return 0;
        (void) smtp_param_parse_size(str, &v);
        (void) smtp_body_from_string(str);
        (void) smtp_xtext_valid(str);
        (void) smtp_notify_valid(str);
        (void) smtp_ret_valid(str);
        (void) smtp_orcpt_valid(str);
        (void) smtp_utf8_char_len(s, len);
        free(str);
        return 0;
}
