/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-smtp-reply: the next hop's replies. The input is split at LF (a CR before it is
 * dropped, as the relay's line reader does) and fed line by line with smtp_reply_feed(),
 * starting a new reply after each complete one; then the whole input, as a string, goes
 * through smtp_reply_parse(). Complete replies are asked for a few EHLO keywords. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp-reply.h"

/* 64 lines of 2 KiB plus line ends, and a little more to hit the limits. */
#define FUZZ_REPLY_INPUT_MAX ((size_t) 160U * 1024U)

static void check_reply(const SmtpReply *r) {
        const char *param;

        if (r->code < 200 || r->code > 599 || r->n_lines == 0 || r->n_lines > SMTP_REPLY_LINES_MAX)
                abort();
        if (!r->lines || r->lines[r->n_lines])
                abort();
        if (r->has_enhanced && r->enh_class != r->code / 100)
                abort();
        if (smtp_reply_ehlo_has(r, "SIZE", &param) && param && !*param)
                abort();
        (void) smtp_reply_ehlo_has(r, "STARTTLS", NULL);
        (void) smtp_reply_is_positive(r);
        (void) smtp_reply_is_transient(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SmtpReply reply = SMTP_REPLY_NULL;
        const char *s = (const char*) data;
        size_t pos = 0;
        char *str;

        if (size > FUZZ_REPLY_INPUT_MAX)
                return 0;

        while (pos < size) {
                const char *nl = memchr(s + pos, '\n', size - pos);
                size_t end = nl ? (size_t) (nl - s) : size, len = end - pos;
                int r;

                if (len > 0 && s[end - 1] == '\r')
                        len--;
                r = smtp_reply_feed(&reply, s + pos, len);
                if (r < 0)
                        smtp_reply_done(&reply);
                else if (r > 0) {
                        check_reply(&reply);
                        if (smtp_reply_feed(&reply, "250 x", 5) != -EALREADY)
                                abort();
                        smtp_reply_done(&reply);
                }
                pos = end + 1;
        }
        smtp_reply_done(&reply);

        str = strndup(s, size);
        if (!str)
                return 0;
        if (smtp_reply_parse(str, &reply) >= 0) {
                if (!reply.complete)
                        abort();
                check_reply(&reply);
                smtp_reply_done(&reply);
        }
        free(str);
        return 0;
}
