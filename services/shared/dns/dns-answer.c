/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "dns-answer.h"

static const char* const dns_result_table[_DNS_RESULT_MAX] = {
        [DNS_RESULT_OK] = "ok",
        [DNS_RESULT_NXDOMAIN] = "nxdomain",
        [DNS_RESULT_TEMPFAIL] = "tempfail",
        [DNS_RESULT_PERMFAIL] = "permfail",
};

const char* dns_result_to_string(DnsResult r) {
        return r >= 0 && r < _DNS_RESULT_MAX ? dns_result_table[r] : NULL;
}

static const char* const dnssec_status_table[_DNSSEC_STATUS_MAX] = {
        [DNSSEC_SECURE] = "secure",
        [DNSSEC_INSECURE] = "insecure",
        [DNSSEC_BOGUS] = "bogus",
        [DNSSEC_INDETERMINATE] = "indeterminate",
};

const char* dnssec_status_to_string(DnssecStatus s) {
        return s >= 0 && s < _DNSSEC_STATUS_MAX ? dnssec_status_table[s] : NULL;
}

static void dns_record_done(DnsRecord *r) {
        switch (r->type) {
        case DNS_TYPE_A:
        case DNS_TYPE_AAAA:
                break;
        case DNS_TYPE_MX:
                free(r->mx.exchange);
                break;
        case DNS_TYPE_PTR:
        case DNS_TYPE_CNAME:
        case DNS_TYPE_NS:
                free(r->name);
                break;
        case DNS_TYPE_TXT:
                free(r->txt.data);
                break;
        default:
                free(r->raw.data);
        }
}

void dns_answer_done(DnsAnswer *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n_records; i++)
                dns_record_done(a->records + i);
        free(a->records);
        *a = (DnsAnswer) DNS_ANSWER_NULL;
}

static void* memdup_nul(const void *p, size_t n) {
        char *d = malloc(n + 1);

        if (!d)
                return NULL;
        if (n > 0)
                memcpy(d, p, n);
        d[n] = 0;
        return d;
}

int dns_answer_add(DnsAnswer *a, const DnsRecord *r) {
        DnsRecord c = { .type = r->type, .ttl = r->ttl };
        DnsRecord *l;

        switch (r->type) {
        case DNS_TYPE_A:
                c.a = r->a;
                break;
        case DNS_TYPE_AAAA:
                c.aaaa = r->aaaa;
                break;
        case DNS_TYPE_MX:
                c.mx.preference = r->mx.preference;
                c.mx.exchange = strdup(r->mx.exchange ?: "");
                if (!c.mx.exchange)
                        return -ENOMEM;
                break;
        case DNS_TYPE_PTR:
        case DNS_TYPE_CNAME:
        case DNS_TYPE_NS:
                c.name = strdup(r->name ?: "");
                if (!c.name)
                        return -ENOMEM;
                break;
        case DNS_TYPE_TXT:
                c.txt.data = memdup_nul(r->txt.data, r->txt.len);
                if (!c.txt.data)
                        return -ENOMEM;
                c.txt.len = r->txt.len;
                break;
        default:
                c.raw.data = memdup_nul(r->raw.data, r->raw.len);
                if (!c.raw.data)
                        return -ENOMEM;
                c.raw.len = r->raw.len;
        }

        l = reallocarray(a->records, a->n_records + 1, sizeof(DnsRecord));
        if (!l) {
                dns_record_done(&c);
                return -ENOMEM;
        }
        a->records = l;
        a->records[a->n_records++] = c;
        return 0;
}

int dns_answer_add_txt(DnsAnswer *a, const char *data, size_t len, uint32_t ttl) {
        return dns_answer_add(a, &(DnsRecord) { .type = DNS_TYPE_TXT, .ttl = ttl,
                                                .txt = { .data = (char*) data, .len = len } });
}

int dns_answer_add_a(DnsAnswer *a, const struct in_addr *in, uint32_t ttl) {
        return dns_answer_add(a, &(DnsRecord) { .type = DNS_TYPE_A, .ttl = ttl, .a = *in });
}

int dns_answer_add_aaaa(DnsAnswer *a, const struct in6_addr *in6, uint32_t ttl) {
        return dns_answer_add(a, &(DnsRecord) { .type = DNS_TYPE_AAAA, .ttl = ttl, .aaaa = *in6 });
}

int dns_answer_add_mx(DnsAnswer *a, uint16_t preference, const char *exchange, uint32_t ttl) {
        return dns_answer_add(a, &(DnsRecord) { .type = DNS_TYPE_MX, .ttl = ttl,
                                                .mx = { .preference = preference, .exchange = (char*) exchange } });
}

int dns_answer_add_name(DnsAnswer *a, uint16_t type, const char *name, uint32_t ttl) {
        return dns_answer_add(a, &(DnsRecord) { .type = type, .ttl = ttl, .name = (char*) name });
}
