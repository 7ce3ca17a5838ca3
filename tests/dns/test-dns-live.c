/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* test-dns-live RESOLVER AUTHORITY DKIM-TEXT
 * test-dns-live --resolve1 MX-IP DKIM-TEXT
 *
 * Queries the DNSSEC test world of tests/lib/dns-testbed.sh through dns_resolver_query(),
 * all lookups in flight at once on one sd-event loop, and checks result, DNSSEC status and
 * content of each answer (TXT records byte for byte).
 *
 * The first form uses the stub resolver: RESOLVER is the validating unbound, AUTHORITY the
 * authoritative nsd ("IP:53"). The second asks systemd-resolved on the system bus
 * ($DBUS_SYSTEM_BUS_ADDRESS), which must run with DNSSEC=yes, the test world's root as
 * its trust anchor and the test world's resolver as its only server; MX-IP is the
 * address the zones give mx.example.test. */

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>
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
        const char *first;      /* the first record as text ("@MX" stands for the MX address,
                                 * "@dkim" for the DKIM record), or NULL */

        DnsQuery *query;
        bool done, failed;
} Case;

enum { VIA_UNBOUND, VIA_UNBOUND_UNTRUSTED, VIA_UNBOUND_SMALL, VIA_NSD, _VIA_MAX };
enum { VIA_RESOLVED, VIA_RESOLVED_TRUSTED, _VIA_RESOLVED_MAX };

static const char *arg_dkim = NULL;
static const char *arg_mx = "127.0.63.25";
static unsigned n_pending = 0;

/* c->first with "@MX" replaced by arg_mx, "@dkim" by arg_dkim. */
static void expected_text(const char *first, char *buf, size_t size) {
        const char *at;

        if (strcmp(first, "@dkim") == 0) {
                snprintf(buf, size, "%s", arg_dkim);
                return;
        }
        at = strstr(first, "@MX");
        if (at)
                snprintf(buf, size, "%.*s%s%s", (int) (at - first), first, arg_mx, at + 3);
        else
                snprintf(buf, size, "%s", first);
}

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
        char text[2048] = "", expected[2048] = "";
        const char *first = NULL;

        c->query = dns_query_free(q);
        c->done = true;
        n_pending--;

        if (c->first) {
                expected_text(c->first, expected, sizeof expected);
                first = expected;
        }
        if (a->n_records > 0)
                record_text(a->records, text, sizeof text);

        if (a->result != c->result || a->dnssec != c->dnssec)
                c->failed = true;
        if (c->n_records >= 0 ? a->n_records != (size_t) c->n_records : a->n_records == 0)
                c->failed = true;
        if (first && strcmp(text, first) != 0)
                c->failed = true;
        /* TXT byte for byte: no octet lost or added where a NUL would hide it */
        if (first && a->n_records > 0 && a->records[0].type == DNS_TYPE_TXT &&
            (a->records[0].txt.len != strlen(first) || memcmp(a->records[0].txt.data, first, strlen(first)) != 0 ||
             a->records[0].txt.data[a->records[0].txt.len] != 0))
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

/* Starts every case on its resolver, runs the loop until all are answered (20 s at most),
 * prints and counts the failures. */
static unsigned run_cases(sd_event *e, DnsResolver **resolvers, Case *cases, size_t n_cases) {
        unsigned failed = 0;
        usec_t end;
        int r;

        for (size_t i = 0; i < n_cases; i++) {
                r = dns_resolver_query(resolvers[cases[i].server], cases[i].name, cases[i].type,
                                       on_answer, cases + i, &cases[i].query);
                if (r < 0) {
                        printf("FAIL %-44s dns_resolver_query: %s\n", cases[i].what, strerror(-r));
                        cases[i].done = cases[i].failed = true;
                        continue;
                }
                n_pending++;
        }

        end = now(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;
        while (n_pending > 0 && now(CLOCK_MONOTONIC) < end)
                if (sd_event_run(e, 100 * USEC_PER_MSEC) < 0)
                        break;

        for (size_t i = 0; i < n_cases; i++) {
                if (!cases[i].done)
                        printf("FAIL %-44s no answer in 20 s\n", cases[i].what);
                if (!cases[i].done || cases[i].failed)
                        failed++;
                cases[i].query = dns_query_free(cases[i].query);
        }
        return failed;
}

static void on_cancelled(DnsQuery *q, const DnsAnswer *a, void *userdata) {
        bool *called = userdata;

        *called = true;
}

static int run_stub(int argc, char *argv[]) {
        Case cases[] = {
                { "example.test TXT (SPF) secure",              VIA_UNBOUND, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=spf1 ip4:@MX -all" },
                { "DKIM key, two strings joined, secure",        VIA_UNBOUND, "sel1._domainkey.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@dkim" },
                { "DMARC record secure",                        VIA_UNBOUND, "_dmarc.example.test.", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=DMARC1; p=reject; rua=mailto:dmarc@example.test" },
                { "example.test MX secure",                     VIA_UNBOUND, "example.test", DNS_TYPE_MX,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "10 mx.example.test" },
                { "CNAME followed to A, secure",                VIA_UNBOUND, "WWW.Example.Test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@MX" },
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
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "v=spf1 ip4:@MX ~all" },
                { "mx.plain.test A insecure",                   VIA_UNBOUND, "mx.plain.test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "@MX" },
                { "bogus.test: SERVFAIL, tempfail",             VIA_UNBOUND, "mx.bogus.test", DNS_TYPE_A,
                  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                { "bogus.test TXT: tempfail",                   VIA_UNBOUND, "bogus.test", DNS_TYPE_TXT,
                  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                { "AD from an untrusted server ignored",        VIA_UNBOUND_UNTRUSTED, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "v=spf1 ip4:@MX -all" },
                { "nsd direct (no validation): indeterminate",  VIA_NSD, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "v=spf1 ip4:@MX -all" },
                { "nsd direct MX: indeterminate",               VIA_NSD, "example.test", DNS_TYPE_MX,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "10 mx.example.test" },
        };
        DnsResolver *resolvers[_VIA_MAX] = {};
        DnsServerConfig servers[_VIA_MAX] = {};
        sd_event *e = NULL;
        unsigned failed;
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

        failed = run_cases(e, resolvers, cases, ELEMENTSOF(cases));

        for (int i = 0; i < _VIA_MAX; i++)
                dns_resolver_free(resolvers[i]);
        sd_event_unref(e);

        printf("%zu case(s), %u failed\n", ELEMENTSOF(cases), failed);
        return failed == 0 ? 0 : 1;
}

static int run_resolve1(int argc, char *argv[]) {
        Case cases[] = {
                { "example.test TXT (SPF) secure",              VIA_RESOLVED, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=spf1 ip4:@MX -all" },
                { "DKIM key, two strings joined, secure",        VIA_RESOLVED, "sel1._domainkey.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@dkim" },
                { "DMARC record secure (final dot)",            VIA_RESOLVED, "_dmarc.example.test.", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=DMARC1; p=reject; rua=mailto:dmarc@example.test" },
                { "example.test MX secure",                     VIA_RESOLVED, "example.test", DNS_TYPE_MX,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "10 mx.example.test" },
                { "mx.example.test A secure",                   VIA_RESOLVED, "mx.example.test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@MX" },
                { "CNAME followed to A, secure",                VIA_RESOLVED, "WWW.Example.Test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "@MX" },
                /* errors carry no flags: resolved does not say whether the denial was signed */
                { "example.test AAAA: NODATA",                  VIA_RESOLVED, "example.test", DNS_TYPE_AAAA,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 0, NULL },
                { "nosuch.example.test: NXDOMAIN",              VIA_RESOLVED, "nosuch.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_NXDOMAIN, DNSSEC_INDETERMINATE, 0, NULL },
                { "outside test.: NXDOMAIN",                    VIA_RESOLVED, "www.example.com", DNS_TYPE_A,
                  DNS_RESULT_NXDOMAIN, DNSSEC_INDETERMINATE, 0, NULL },
                { "big TXT (25 records, over 4096 octets)",     VIA_RESOLVED, "big.example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 25, NULL },
                { "plain.test TXT insecure",                    VIA_RESOLVED, "plain.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "v=spf1 ip4:@MX ~all" },
                { "mx.plain.test A insecure",                   VIA_RESOLVED, "mx.plain.test", DNS_TYPE_A,
                  DNS_RESULT_OK, DNSSEC_INSECURE, 1, "@MX" },
                { "mx.bogus.test A: bogus",                     VIA_RESOLVED, "mx.bogus.test", DNS_TYPE_A,
                  DNS_RESULT_TEMPFAIL, DNSSEC_BOGUS, 0, NULL },
                { "bogus.test TXT: bogus",                      VIA_RESOLVED, "bogus.test", DNS_TYPE_TXT,
                  DNS_RESULT_TEMPFAIL, DNSSEC_BOGUS, 0, NULL },
                { "a bad name: permfail, nothing asked",        VIA_RESOLVED, "a..example.test", DNS_TYPE_TXT,
                  DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE, 0, NULL },
                /* trust "trusted" (the default): authenticated data only is believed */
                { "default trust: signed is secure",            VIA_RESOLVED_TRUSTED, "example.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_SECURE, 1, "v=spf1 ip4:@MX -all" },
                { "default trust: unsigned is indeterminate",   VIA_RESOLVED_TRUSTED, "plain.test", DNS_TYPE_TXT,
                  DNS_RESULT_OK, DNSSEC_INDETERMINATE, 1, "v=spf1 ip4:@MX ~all" },
        };
        DnsResolver *resolvers[_VIA_RESOLVED_MAX] = {};
        DnsQuery *cancelled = NULL;
        bool cancelled_called = false;
        sd_event *e = NULL;
        sd_bus *bus = NULL;
        unsigned failed;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: %s --resolve1 MX-IP DKIM-TEXT\n", argv[0]);
                return 2;
        }
        arg_mx = argv[2];
        arg_dkim = argv[3];

        r = sd_event_new(&e);
        if (r < 0)
                return 1;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "sd_bus_open_system: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return 1;
        for (int i = 0; i < _VIA_RESOLVED_MAX; i++) {
                r = dns_resolver_new_resolve1(e, bus, &(DnsResolve1Config) {
                                .trust = i == VIA_RESOLVED ? DNS_SERVER_VALIDATING : DNS_SERVER_TRUST_AUTO,
                                .timeout = 15 * USEC_PER_SEC,
                        }, resolvers + i);
                if (r < 0) {
                        fprintf(stderr, "dns_resolver_new_resolve1: %s\n", strerror(-r));
                        return 1;
                }
        }

        /* the waiter owns the wait: a lookup freed while resolved works on it never answers */
        r = dns_resolver_query(resolvers[VIA_RESOLVED], "mx.example.test", DNS_TYPE_MX, on_cancelled,
                               &cancelled_called, &cancelled);
        if (r < 0)
                return 1;
        cancelled = dns_query_free(cancelled);

        failed = run_cases(e, resolvers, cases, ELEMENTSOF(cases));

        /* once more, now that resolved has the answers in its cache: same results */
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                cases[i].done = cases[i].failed = false;
        printf("-- again (from resolved's cache where it keeps one)\n");
        failed += run_cases(e, resolvers, cases, ELEMENTSOF(cases));

        if (cancelled_called) {
                printf("FAIL the handler of a freed lookup was called\n");
                failed++;
        } else
                printf("ok   the handler of a freed lookup was not called\n");

        for (int i = 0; i < _VIA_RESOLVED_MAX; i++)
                dns_resolver_free(resolvers[i]);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);

        printf("%zu case(s), %u failed\n", 2 * ELEMENTSOF(cases) + 1, failed);
        return failed == 0 ? 0 : 1;
}

int main(int argc, char *argv[]) {
        if (argc > 1 && strcmp(argv[1], "--resolve1") == 0)
                return run_resolve1(argc, argv);
        return run_stub(argc, argv);
}
