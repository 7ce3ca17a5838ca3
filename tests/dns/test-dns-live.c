/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* test-dns-live RESOLVER AUTHORITY DKIM-TEXT: queries the DNSSEC test world of
 * tests/lib/dns-testbed.sh through dns_resolver_query(), all lookups in flight at once on
 * one sd-event loop, and checks result, DNSSEC status and content of each answer.
 * RESOLVER is the validating unbound, AUTHORITY the authoritative nsd ("IP:53"). */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "dns-resolver.h"
#include "time-util.h"

typedef struct Case {
        const char *what;
        int server;             /* index into the resolvers below */
        const char *name;
        uint16_t type;
        DnsResult result;
        DnssecStatus dnssec;
        int n_records;          /* -1: at least one */
        const char *first;      /* the first record as text, or NULL */

        DnsQuery *query;
        bool done, failed;
} Case;

enum { VIA_UNBOUND, VIA_UNBOUND_UNTRUSTED, VIA_UNBOUND_SMALL, VIA_NSD, _VIA_MAX };

static const char *arg_dkim = NULL;
static unsigned n_pending = 0;

static void record_text(const DnsRecord *r, char *buf, size_t size) {
        switch (r->type) {
        case DNS_TYPE_A:
                inet_ntop(AF_INET, &r->a, buf, (socklen_t) size);
                break;
        case DNS_TYPE_MX:
                snprintf(buf, size, "%u %s", r->mx.preference, r->mx.exchange);
                break;
        case DNS_TYPE_TXT:
                snprintf(buf, size, "%s", r->txt.data);
                break;
        default:
                snprintf(buf, size, "type %u", r->type);
        }
}

static void on_answer(DnsQuery *q, const DnsAnswer *a, void *userdata) {
        Case *c = userdata;
        char text[2048] = "";
        const char *first = c->first;

        c->query = dns_query_free(q);
        c->done = true;
        n_pending--;

        if (first && strcmp(first, "@dkim") == 0)
                first = arg_dkim;
        if (a->n_records > 0)
                record_text(a->records, text, sizeof text);

        if (a->result != c->result || a->dnssec != c->dnssec)
                c->failed = true;
        if (c->n_records >= 0 ? a->n_records != (size_t) c->n_records : a->n_records == 0)
                c->failed = true;
        if (first && strcmp(text, first) != 0)
                c->failed = true;
        for (size_t i = 0; i < a->n_records; i++)
                if (a->records[i].type != c->type)
                        c->failed = true;

        printf("%s %-44s %s/%s, %zu record(s)%s%s\n", c->failed ? "FAIL" : "ok  ", c->what,
               dns_result_to_string(a->result), dnssec_status_to_string(a->dnssec), a->n_records,
               a->n_records > 0 ? ": " : "", text);
        if (c->failed)
                printf("     expected %s/%s, %d record(s) %s\n", dns_result_to_string(c->result),
                       dnssec_status_to_string(c->dnssec), c->n_records, first ?: "");
}

int main(int argc, char *argv[]) {
        Case cases[] = {
                { "example.test TXT (SPF) secure",              VIA_UNBOUND, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=spf1 ip4:127.0.63.25 -all" },
                { "DKIM key, two strings joined, secure",        VIA_UNBOUND, "sel1._domainkey.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@dkim" },
                { "DMARC record secure",                        VIA_UNBOUND, "_dmarc.example.test.", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=DMARC1; p=reject; rua=mailto:dmarc@example.test" },
                { "example.test MX secure",                     VIA_UNBOUND, "example.test", DNS_TYPE_MX,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "10 mx.example.test" },
                { "CNAME followed to A, secure",                VIA_UNBOUND, "WWW.Example.Test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "127.0.63.25" },
                { "example.test AAAA: secure NODATA",           VIA_UNBOUND, "example.test", DNS_TYPE_AAAA,
                  DNS_RESULT_OK, DNSSEC_SECURE, 0, NULL },
                { "nosuch.example.test: secure NXDOMAIN",       VIA_UNBOUND, "nosuch.example.test", DNS_TYPE_A,
                  DNS_RESULT_NXDOMAIN, DNSSEC_SECURE, 0, NULL },
                { "outside test.: secure NXDOMAIN",             VIA_UNBOUND, "www.example.com", DNS_TYPE_A,
                  DNS_RESULT_NXDOMAIN, DNSSEC_SECURE, 0, NULL },
                { "big TXT: truncated, then TCP, secure",       VIA_UNBOUND, "big.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 25, NULL },
                /* the same reply is over 4096 octets: the size limit refuses it */
                { "big TXT over the response size limit",       VIA_UNBOUND_SMALL, "big.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                { "plain.test TXT insecure",                    VIA_UNBOUND, "plain.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "v=spf1 ip4:127.0.63.25 ~all" },
                { "mx.plain.test A insecure",                   VIA_UNBOUND, "mx.plain.test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "127.0.63.25" },
                { "bogus.test: SERVFAIL, tempfail",             VIA_UNBOUND, "mx.bogus.test", DNS_TYPE_A,
                  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                { "bogus.test TXT: tempfail",                   VIA_UNBOUND, "bogus.test", DNS_TYPE_TXT,
                  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                { "AD from an untrusted server ignored",        VIA_UNBOUND_UNTRUSTED, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "v=spf1 ip4:127.0.63.25 -all" },
                { "nsd direct (no validation): indeterminate",  VIA_NSD, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "v=spf1 ip4:127.0.63.25 -all" },
                { "nsd direct MX: indeterminate",               VIA_NSD, "example.test", DNS_TYPE_MX,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "10 mx.example.test" },
        };
        DnsResolver *resolvers[_VIA_MAX] = {};
        DnsServerConfig servers[_VIA_MAX] = {};
        sd_event *e = NULL;
        unsigned failed = 0;
        usec_t end;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: %s RESOLVER-IP:PORT AUTHORITY-IP:PORT DKIM-TEXT\n", argv[0]);
                return 2;
        }
        arg_dkim = argv[3];

        if (socket_address_parse(argv[1], &servers[VIA_UNBOUND].address) < 0 ||
            socket_address_parse(argv[1], &servers[VIA_UNBOUND_UNTRUSTED].address) < 0 ||
            socket_address_parse(argv[1], &servers[VIA_UNBOUND_SMALL].address) < 0 ||
            socket_address_parse(argv[2], &servers[VIA_NSD].address) < 0) {
                fprintf(stderr, "bad address\n");
                return 2;
        }
        servers[VIA_UNBOUND].trust = DNS_SERVER_VALIDATING;
        servers[VIA_UNBOUND_UNTRUSTED].trust = DNS_SERVER_UNTRUSTED;
        servers[VIA_UNBOUND_SMALL].trust = DNS_SERVER_VALIDATING;
        servers[VIA_NSD].trust = DNS_SERVER_TRUST_AUTO;         /* loopback: trusted, not validating */

        r = sd_event_new(&e);
        if (r < 0)
                return 1;
        for (int i = 0; i < _VIA_MAX; i++) {
                r = dns_resolver_new_stub(e, &(DnsStubConfig) {
                                .servers = servers + i, .n_servers = 1,
                                .timeout = 2 * USEC_PER_SEC, .attempts = 2,
                                .response_max = i == VIA_UNBOUND_SMALL ? 4096 : 0,
                        }, resolvers + i);
                if (r < 0) {
                        fprintf(stderr, "dns_resolver_new_stub: %s\n", strerror(-r));
                        return 1;
                }
        }

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                r = dns_resolver_query(resolvers[cases[i].server], cases[i].name, cases[i].type,
                                       on_answer, cases + i, &cases[i].query);
                if (r < 0) {
                        fprintf(stderr, "dns_resolver_query: %s\n", strerror(-r));
                        return 1;
                }
                n_pending++;
        }

        end = now(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;
        while (n_pending > 0 && now(CLOCK_MONOTONIC) < end)
                if (sd_event_run(e, 100 * USEC_PER_MSEC) < 0)
                        break;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (!cases[i].done)
                        printf("FAIL %-44s no answer in 20 s\n", cases[i].what);
                if (!cases[i].done || cases[i].failed)
                        failed++;
                dns_query_free(cases[i].query);
        }
        for (int i = 0; i < _VIA_MAX; i++)
                dns_resolver_free(resolvers[i]);
        sd_event_unref(e);

        printf("%zu case(s), %u failed\n", ELEMENTSOF(cases), failed);
        return failed == 0 ? 0 : 1;
}
