/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-dmarc-record: the input is a DMARC TXT record for dmarc_record_parse(); it is also
 * split at '\n' into the TXT records of one answer for dmarc_record_select(), and fed to
 * dmarc_from_domain_extract() as a From: header value. */

#include <stdlib.h>
#include <string.h>

#include "dmarc-eval.h"
#include "dmarc-record.h"
#include "dns-answer.h"
#include "fuzz.h"

#define FUZZ_DMARC_INPUT_MAX ((size_t) (DMARC_RECORD_MAX + 1024U))

static void check_record(const DmarcRecord *r) {
        if (r->p < 0 || r->p >= _DMARC_POLICY_MAX)
                abort();
        if (r->sp >= _DMARC_POLICY_MAX || r->np >= _DMARC_POLICY_MAX)
                abort();
        if (r->pct > 100 || r->n_rua > DMARC_URIS_MAX || r->n_ruf > DMARC_URIS_MAX)
                abort();
        if (r->p_from_rua && (r->p != DMARC_POLICY_NONE || r->n_rua == 0))
                abort();
        for (size_t i = 0; i < r->n_rua; i++)
                if (!r->rua[i].uri || !strchr(r->rua[i].uri, ':'))
                        abort();
        for (size_t i = 0; i < r->n_ruf; i++)
                if (!r->ruf[i].uri || !strchr(r->ruf[i].uri, ':'))
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DmarcRecord rec = DMARC_RECORD_NULL;
        DnsAnswer answer = DNS_ANSWER_NULL;
        const char *s = (const char*) data, *reason = NULL;
        char *domain = NULL;
        int r;

        if (size > FUZZ_DMARC_INPUT_MAX)
                return 0;

        r = dmarc_record_parse(s, size, &rec, &reason);
        if (r >= 0) {
                check_record(&rec);
                if (!dmarc_record_is_dmarc(s, size))
                        abort();
                dmarc_record_done(&rec);
        } else if (r != -ENOMEM && !reason)
                abort();

        for (size_t start = 0; start <= size; ) {
                const char *nl = memchr(s + start, '\n', size - start);
                size_t end = nl ? (size_t) (nl - s) : size;

                if (dns_answer_add_txt(&answer, s + start, end - start, 300) < 0)
                        break;
                start = end + 1;
        }
        r = dmarc_record_select(&answer, &rec, &reason);
        if (r > 0) {
                check_record(&rec);
                dmarc_record_done(&rec);
        }
        dns_answer_done(&answer);

        if (dmarc_from_domain_extract(s, size, &domain) >= 0) {
                if (!domain || domain[0] == '\0')
                        abort();
                free(domain);
        }
        return 0;
}
