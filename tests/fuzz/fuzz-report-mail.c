/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-report-mail: bytes as a report mail sent to an address of ReportAddresses=,
 * through report_extract_message() (the reader that finds the reported message in a
 * message/rfc822 attachment or an ARF feedback report), and through the X-Spam-* field
 * stripping that every relayed message goes through with Spam=yes. What is extracted must
 * begin with a header field and be no larger than its transfer decoding allows; the
 * stripped copy must be the input minus whole header fields. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "macro.h"
#include "proxyd-checks.h"
#include "proxyd-spam.h"
#include "rfc5322.h"

#define FUZZ_REPORT_MAIL_INPUT_MAX ((size_t) 256U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char*) data;
        char *msg = NULL;
        size_t n = 0;
        ReportSource source = _REPORT_SOURCE_INVALID;
        uint64_t stripped_size = 0;
        int fd = -1, r;

        if (size > FUZZ_REPORT_MAIL_INPUT_MAX)
                return 0;

        r = report_extract_message(s, size, &msg, &n, &source);
        if (r == 0) {
                size_t offset = 0;
                Rfc5322Field f;

                /* Quoted-printable turns a bare LF line end into CRLF: at most double. */
                if (!msg || n == 0 || n > 2 * size || !report_source_to_string(source))
                        abort();
                if (rfc5322_field_next(msg, n, NULL, &offset, NULL, &f) == 0)
                        abort();
                free(msg);
        } else if (msg || (r != -ENOMSG && r != -ENOMEM))
                abort();

        r = message_strip_fields(s, size, 65536, header_field_is_spam, NULL, &fd, &stripped_size);
        if (r > 0) {
                if (fd < 0 || stripped_size >= size)
                        abort();
                close(fd);
        } else if (r == 0) {
                if (fd >= 0 || stripped_size != size)
                        abort();
        } else if (fd >= 0)
                abort();
        return 0;
}
