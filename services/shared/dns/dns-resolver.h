/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Asynchronous DNS lookups on sd-event, behind one interface for every backend:
 *
 *   - the stub resolver (dns-stub.c): UDP with EDNS0 and the DO bit, TCP when the reply
 *     is truncated, to the configured servers, believing the AD bit only from the servers
 *     configured as trusted (loopback ones by default);
 *   - systemd-resolved over the bus (org.freedesktop.resolve1.Manager.ResolveRecord,
 *     dns-resolve1.c), which returns the records in wire format and whether it could
 *     authenticate them with DNSSEC.
 *
 * Usage:
 *
 *         r = dns_resolver_query(resolver, "example.org", DNS_TYPE_TXT, on_txt, tx, &tx->query);
 *
 * on_txt(query, answer, userdata) is called exactly once, from the event loop (never from
 * inside dns_resolver_query()), with an answer that is only valid during the call (copy
 * what you keep). The waiter owns the wait: freeing the DnsQuery (dns_query_free(), also
 * allowed inside the handler) cancels the lookup, and the handler is then never called.
 * Every failure of the lookup itself (timeout, network, a malformed reply, a bad name) is
 * an answer with DNS_RESULT_TEMPFAIL or DNS_RESULT_PERMFAIL, not an error return. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf-parser.h"
#include "dns-answer.h"
#include "dns-packet.h"
#include "time-util.h"

typedef struct DnsResolver DnsResolver;
typedef struct DnsQuery DnsQuery;

typedef void (*DnsQueryHandler)(DnsQuery *q, const DnsAnswer *answer, void *userdata);

#define DNS_STUB_TIMEOUT_DEFAULT (2 * USEC_PER_SEC)     /* per try */
#define DNS_STUB_ATTEMPTS_DEFAULT 2U                    /* rounds over all servers */
#define DNS_STUB_ATTEMPTS_MAX 10U
#define DNS_STUB_SERVERS_MAX 8U
#define DNS_STUB_RESPONSE_MAX_DEFAULT 65535U            /* the most a TCP reply can hold */
#define DNS_STUB_RESPONSE_MIN 512U
#define DNS_STUB_QUERIES_MAX 4096U                      /* pending queries per resolver */

typedef struct DnsServerConfig {
        SocketAddress address;          /* AF_INET or AF_INET6, with the port (53) */
        DnsServerTrust trust;           /* DNS_SERVER_TRUST_AUTO by default */
} DnsServerConfig;

typedef struct DnsStubConfig {
        const DnsServerConfig *servers;
        size_t n_servers;               /* 1 .. DNS_STUB_SERVERS_MAX */
        usec_t timeout;                 /* per try; 0 = DNS_STUB_TIMEOUT_DEFAULT */
        unsigned attempts;              /* rounds over the servers; 0 = DNS_STUB_ATTEMPTS_DEFAULT */
        size_t response_max;            /* larger replies are refused (tempfail); 0 = default */
} DnsStubConfig;

/* Takes a reference on e. -EINVAL for a configuration out of range. */
int dns_resolver_new_stub(sd_event *e, const DnsStubConfig *c, DnsResolver **ret);

typedef struct DnsResolve1Config {
        DnsServerTrust trust;           /* AUTO = TRUSTED: AUTHENTICATED means secure; set
                                         * VALIDATING where resolved runs with DNSSEC=yes */
        usec_t timeout;                 /* per lookup; 0 = DNS_RESOLVE1_TIMEOUT_DEFAULT */
} DnsResolve1Config;
#define DNS_RESOLVE1_TIMEOUT_DEFAULT (10 * USEC_PER_SEC)

/* Lookups through systemd-resolved on bus, which must be attached to e. Takes a reference
 * on both. Answers: records with SD_RESOLVED_AUTHENTICATED -> secure, without -> insecure
 * (VALIDATING) or indeterminate; the errors NoSuchRR -> NODATA, DnsError.NXDOMAIN ->
 * nxdomain, both indeterminate (an error carries no flags); DnssecFailed -> tempfail with
 * DNSSEC_BOGUS, the one backend that can tell bogus from a server failure. */
int dns_resolver_new_resolve1(sd_event *e, sd_bus *bus, const DnsResolve1Config *c, DnsResolver **ret);

/* Pending queries stay owned by their waiters; their handlers are never called. */
DnsResolver* dns_resolver_free(DnsResolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(DnsResolver*, dns_resolver_free);

/* Starts a lookup of name (class IN). ret_query receives the query the caller owns; it may
 * be NULL only for fire-and-forget lookups, whose query is freed after the handler ran.
 * Returns 0, -ENOMEM, or -EBUSY with DNS_STUB_QUERIES_MAX queries pending. */
int dns_resolver_query(DnsResolver *r, const char *name, uint16_t type,
                       DnsQueryHandler handler, void *userdata, DnsQuery **ret_query);

DnsQuery* dns_query_free(DnsQuery *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(DnsQuery*, dns_query_free);
