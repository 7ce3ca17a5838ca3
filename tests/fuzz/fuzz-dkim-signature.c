/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-dkim-signature: bytes as a DKIM-Signature value through dkim_signature_parse(), and
 * as a whole message through dkim_verify() (a fixed key lookup) and relaxed/simple body
 * canonicalization, so header selection and canonicalization see hostile input too. */

#include <stdlib.h>
#include <string.h>

#include "dkim-canon.h"
#include "dkim-signature.h"
#include "dkim-verify.h"
#include "fuzz.h"

#define FUZZ_DKIM_SIGNATURE_INPUT_MAX ((size_t) 256U * 1024U)

static int get_key(const char *selector, const char *domain, char **ret, void *userdata) {
        (void) domain;
        (void) userdata;
        if (selector[0] == 'n')
                return -ENXIO;
        *ret = strdup("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        return *ret ? 0 : -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DkimSignature *sig = NULL;
        DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;
        DkimBuffer b = DKIM_BUFFER_NULL;
        const char *reason = NULL;
        int r;

        if (size > FUZZ_DKIM_SIGNATURE_INPUT_MAX)
                return 0;

        r = dkim_signature_parse((const char*) data, size, &sig, &reason);
        if (r == -EBADMSG && !reason)
                abort();
        if (r == 0 && (!sig->domain || !sig->selector || sig->n_headers == 0 ||
                       sig->b_region_end > size || sig->b_region_start > sig->b_region_end))
                abort();
        dkim_signature_free(sig);

        o.now = 1700000000;
        if (dkim_verify((const char*) data, size, &o, get_key, NULL, &res) == 0)
                for (size_t i = 0; i < res.n_results; i++)
                        if (res.results[i].result == DKIM_RESULT_PASS && res.results[i].reason)
                                abort();
        dkim_verify_results_done(&res);

        (void) dkim_canon_body(size > 0 && data[0] & 1 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                               (const char*) data, size, &b);
        dkim_buffer_done(&b);
        return 0;
}
