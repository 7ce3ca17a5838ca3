/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a DNS lookup gives the checks (SPF, DKIM, DMARC, MTA-STS, DANE): the outcome,
 * the DNSSEC status and the records in parsed form. The resolver backends
 * (systemd-resolved over the bus, the stub resolver, the fake one of the unit and
 * conformance suites) all produce this; the checks never see wire format. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

enum {
        DNS_TYPE_A = 1,
        DNS_TYPE_NS = 2,
        DNS_TYPE_CNAME = 5,
        DNS_TYPE_PTR = 12,
        DNS_TYPE_MX = 15,
        DNS_TYPE_TXT = 16,
        DNS_TYPE_AAAA = 28,
        DNS_TYPE_TLSA = 52,
};

typedef enum DnsResult {
        DNS_RESULT_OK,          /* an answer; n_records == 0 is NODATA */
        DNS_RESULT_NXDOMAIN,    /* the name does not exist */
        DNS_RESULT_TEMPFAIL,    /* SERVFAIL, timeout, network: try again later */
        DNS_RESULT_PERMFAIL,    /* REFUSED, FORMERR, a malformed answer, a bad name */
        _DNS_RESULT_MAX,
        _DNS_RESULT_INVALID = -EINVAL,
} DnsResult;
const char* dns_result_to_string(DnsResult r) _const_;     /* "ok", "nxdomain", ... */

typedef enum DnssecStatus {
        DNSSEC_SECURE,          /* validated (AD from a trusted resolver) */
        DNSSEC_INSECURE,        /* provably unsigned */
        DNSSEC_BOGUS,           /* validation failed */
        DNSSEC_INDETERMINATE,   /* not known (untrusted resolver, no validation) */
        _DNSSEC_STATUS_MAX,
        _DNSSEC_STATUS_INVALID = -EINVAL,
} DnssecStatus;
const char* dnssec_status_to_string(DnssecStatus s) _const_; /* "secure", ... */

typedef struct DnsRecord {
        uint16_t type;
        uint32_t ttl;
        union {
                struct in_addr a;               /* A */
                struct in6_addr aaaa;           /* AAAA */
                struct {                        /* MX */
                        uint16_t preference;
                        char *exchange;
                } mx;
                char *name;                     /* PTR, CNAME, NS: a domain name, no final dot */
                struct {                        /* TXT: the character-strings joined, as RFC 7208
                                                 * §3.3 and RFC 6376 §3.6.2.2 read them */
                        char *data;             /* NUL-terminated; may hold NUL bytes: see len */
                        size_t len;
                } txt;
                struct {                        /* anything else (TLSA ...): raw RDATA */
                        uint8_t *data;
                        size_t len;
                } raw;
        };
} DnsRecord;

typedef struct DnsAnswer {
        DnsResult result;
        DnssecStatus dnssec;
        DnsRecord *records;
        size_t n_records;
} DnsAnswer;
#define DNS_ANSWER_NULL { .result = DNS_RESULT_OK, .dnssec = DNSSEC_INDETERMINATE }

void dns_answer_done(DnsAnswer *a);
/* Append a copy of r (its strings/buffers are duplicated). */
int dns_answer_add(DnsAnswer *a, const DnsRecord *r);
/* Convenience for the fakes and the backends. */
int dns_answer_add_txt(DnsAnswer *a, const char *data, size_t len, uint32_t ttl);
int dns_answer_add_a(DnsAnswer *a, const struct in_addr *in, uint32_t ttl);
int dns_answer_add_aaaa(DnsAnswer *a, const struct in6_addr *in6, uint32_t ttl);
int dns_answer_add_mx(DnsAnswer *a, uint16_t preference, const char *exchange, uint32_t ttl);
int dns_answer_add_name(DnsAnswer *a, uint16_t type, const char *name, uint32_t ttl);
