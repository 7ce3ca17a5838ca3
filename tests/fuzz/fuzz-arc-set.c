/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-arc-set: bytes as a whole message through ARC structural validation (§5.2 steps 1-3:
 * collecting the sets, instance numbers, the three field parsers, cv= rules), and as a
 * single ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results value. No crypto. */

#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "fuzz.h"

#define FUZZ_ARC_SET_INPUT_MAX ((size_t) 256U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ArcSeal *seal = NULL;
        ArcMessageSignature *ams = NULL;
        ArcVerifyResult res;
        const char *reason = NULL;
        unsigned inst;
        size_t off;
        int r;

        if (size > FUZZ_ARC_SET_INPUT_MAX)
                return 0;

        r = arc_verify_structure((const char*) data, size, &res);
        if (r == 0) {
                if (res.n_sets > ARC_MAX_INSTANCES)
                        abort();
                if ((res.status == ARC_CHAIN_NONE) != (res.n_sets == 0 && !res.reason))
                        abort();
                if (res.status == ARC_CHAIN_FAIL && !res.reason)
                        abort();
        }

        r = arc_seal_parse((const char*) data, size, &seal, &reason);
        if (r == -EBADMSG && !reason)
                abort();
        if (r == 0 && (seal->instance < 1 || seal->instance > ARC_MAX_INSTANCES || !seal->domain ||
                       !seal->selector || seal->b_region_end > size || seal->b_region_start > seal->b_region_end))
                abort();
        arc_seal_free(seal);

        reason = NULL;
        r = arc_message_signature_parse((const char*) data, size, &ams, &reason);
        if (r == -EBADMSG && !reason)
                abort();
        if (r == 0 && (ams->instance < 1 || ams->instance > ARC_MAX_INSTANCES || !ams->headers ||
                       ams->body_hash_len != 32 || ams->b_region_end > size))
                abort();
        arc_message_signature_free(ams);

        if (arc_authentication_results_parse((const char*) data, size, &inst, &off) == 0 &&
            (inst < 1 || inst > ARC_MAX_INSTANCES || off > size))
                abort();
        return 0;
}
