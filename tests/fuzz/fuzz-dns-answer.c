/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-dns-answer: the input is a DNS reply. It goes through the checks the stub resolver
 * applies to what arrives from the network: matched against a fixed query (id 0x4d53,
 * "example.test", the type taken from the first input octet's choice of A, AAAA, MX,
 * TXT, CNAME, PTR, NS, TLSA), and parsed into a DnsAnswer whatever the match says. */

#include <stdlib.h>
#include <string.h>

#include "dns-packet.h"
#include "fuzz.h"

#define FUZZ_DNS_INPUT_MAX ((size_t) 65535U)

static const uint16_t types[] = {
        DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_MX, DNS_TYPE_TXT,
        DNS_TYPE_CNAME, DNS_TYPE_PTR, DNS_TYPE_NS, DNS_TYPE_TLSA,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t query[DNS_PACKET_QUERY_MAX];
        DnsAnswer a = DNS_ANSWER_NULL;
        uint16_t type;
        int k, r;

        if (size < 1 || size > FUZZ_DNS_INPUT_MAX)
                return 0;
        type = types[data[0] % ELEMENTSOF(types)];
        data++;
        size--;

        k = dns_packet_build_query("example.test", type, 0x4d53, query, sizeof query);
        if (k <= 0)
                abort();
        (void) dns_packet_match_reply(data, size, query, (size_t) k);

        for (int trust = DNS_SERVER_UNTRUSTED; trust <= DNS_SERVER_VALIDATING; trust += 2) {
                r = dns_packet_to_answer(data, size, "example.test", type, (DnsServerTrust) trust, &a);
                if (r == -ENOMEM)
                        return 0;
                if (r != 0 || a.result < 0 || a.result >= _DNS_RESULT_MAX ||
                    a.dnssec < 0 || a.dnssec >= _DNSSEC_STATUS_MAX)
                        abort();
                if (a.result != DNS_RESULT_OK && a.n_records > 0)
                        abort();
                for (size_t i = 0; i < a.n_records; i++) {
                        const DnsRecord *rec = a.records + i;

                        if (rec->type != type)
                                abort();
                        if (type == DNS_TYPE_TXT && strlen(rec->txt.data) > rec->txt.len)
                                abort();
                        if (IN_SET(type, DNS_TYPE_CNAME, DNS_TYPE_PTR, DNS_TYPE_NS) && !rec->name)
                                abort();
                        if (type == DNS_TYPE_MX && !rec->mx.exchange)
                                abort();
                }
                dns_answer_done(&a);
        }
        return 0;
}
