/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-dkim-key: bytes as a DKIM key record through dkim_key_parse(), which also builds
 * the OpenSSL key from p=. */

#include <stdlib.h>

#include "dkim-key.h"
#include "fuzz.h"

#define FUZZ_DKIM_KEY_INPUT_MAX ((size_t) 16U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DkimKey *key = NULL;
        const char *reason = NULL;
        int r;

        if (size > FUZZ_DKIM_KEY_INPUT_MAX)
                return 0;

        r = dkim_key_parse((const char*) data, size, &key, &reason);
        if (r == -EBADMSG && !reason)
                abort();
        if (r == 0 && key->revoked == !!key->pkey)
                abort();
        if (r == 0 && key->type == DKIM_KEY_RSA && !key->revoked && key->bits < DKIM_KEY_RSA_MIN_BITS)
                abort();
        dkim_key_free(key);
        return 0;
}
