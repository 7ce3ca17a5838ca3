/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-spam-digest: any bytes as a message to spam_message_digest(). Beside not crashing,
 * the digest must not depend on the line ends: the input with a CR put before every bare
 * LF gives the same digest. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spam-digest.h"

#define FUZZ_DIGEST_INPUT_MAX ((size_t) 256U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t a[SPAM_DIGEST_SIZE], b[SPAM_DIGEST_SIZE];
        uint8_t *lf;
        size_t n = 0;

        if (size > FUZZ_DIGEST_INPUT_MAX)
                return 0;
        spam_message_digest(data, size, a);

        lf = malloc(size * 2 + 1);
        if (!lf)
                return 0;
        for (size_t i = 0; i < size; i++) {
                if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
                        lf[n++] = '\r';
                lf[n++] = data[i];
        }
        spam_message_digest(lf, n, b);
        free(lf);
        if (memcmp(a, b, sizeof(a)) != 0)
                abort();
        return 0;
}
