/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DNS wire format for the stub resolver: building a query (RFC 1035 §4.1 with an
 * EDNS0 OPT record, RFC 6891, carrying the DO bit, RFC 3225) and turning a reply into a
 * DnsAnswer. Pure code: no sockets, no event loop, no logging above debug. Name
 * compression is undone with glibc's dn_expand()/dn_comp() (libresolv's code, in libc
 * since glibc 2.34); everything else is walked here with explicit bounds. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-answer.h"

#define DNS_PACKET_HEADER_SIZE 12U
#define DNS_PACKET_QUERY_MAX 512U               /* a name is at most 255 octets */
#define DNS_PACKET_EDNS_UDP_SIZE 4096U          /* what we advertise (RFC 6891 §6.2.5) */
#define DNS_PACKET_CNAME_MAX 8U                 /* CNAME hops followed inside one answer */

enum {
        DNS_RCODE_NOERROR = 0,
        DNS_RCODE_FORMERR = 1,
        DNS_RCODE_SERVFAIL = 2,
        DNS_RCODE_NXDOMAIN = 3,
        DNS_RCODE_NOTIMP = 4,
        DNS_RCODE_REFUSED = 5,
};

/* How far the answers of one server may be believed about DNSSEC. */
typedef enum DnsServerTrust {
        DNS_SERVER_TRUST_AUTO,          /* loopback: DNS_SERVER_TRUSTED, anything else: UNTRUSTED */
        DNS_SERVER_UNTRUSTED,           /* the AD bit is ignored: always indeterminate */
        DNS_SERVER_TRUSTED,             /* AD set: secure; AD clear: indeterminate */
        DNS_SERVER_VALIDATING,          /* trusted and known to validate: AD clear means insecure */
        _DNS_SERVER_TRUST_MAX,
        _DNS_SERVER_TRUST_INVALID = -EINVAL,
} DnsServerTrust;
const char* dns_server_trust_to_string(DnsServerTrust t) _const_;
DnsServerTrust dns_server_trust_from_string(const char *s) _pure_;

typedef struct DnsPacketHeader {
        uint16_t id;
        bool qr, aa, tc, rd, ra, ad, cd;
        uint8_t opcode;
        uint8_t rcode;
        uint16_t qdcount, ancount, nscount, arcount;
} DnsPacketHeader;

int dns_packet_parse_header(const uint8_t *p, size_t n, DnsPacketHeader *ret);

/* Builds a recursive query for name/type (class IN) with the given id and an OPT record
 * (UDP size DNS_PACKET_EDNS_UDP_SIZE, DO set). name may end in a dot; it is refused
 * (-EINVAL) when empty or not a valid domain name (a label over 63 octets, over 255 in
 * all). Returns the packet length. */
int dns_packet_build_query(const char *name, uint16_t type, uint16_t id, uint8_t *buf, size_t size);

/* The name of a query built above, in the form the reply parser compares with (no
 * final dot, dn_expand()'s escaping). */
int dns_packet_query_name(const uint8_t *query, size_t n, char *ret, size_t size);

/* 0 when p is a reply to the query: the same id, QR set, opcode QUERY, one question that
 * echoes the query's name (case-insensitively), type and class. -EBADMSG otherwise (for a
 * UDP socket such a packet is dropped and the wait goes on). */
int dns_packet_match_reply(const uint8_t *p, size_t n, const uint8_t *query, size_t query_len);

/* The DNSSEC rule of the stub resolver (documented in dns-packet.c). */
DnssecStatus dns_dnssec_status(DnsResult result, bool ad, DnsServerTrust trust) _const_;

/* Turns a reply (already matched) to a query for qname/qtype into *ret:
 *   NOERROR  -> ok, with the records of qtype at qname, CNAME chains in the answer
 *               section followed (at most DNS_PACKET_CNAME_MAX hops); none is NODATA
 *   NXDOMAIN -> nxdomain (also when reached through a CNAME)
 *   SERVFAIL -> tempfail; a validating resolver answers SERVFAIL for bogus data too, and a
 *               stub cannot tell the two apart, so DNSSEC_BOGUS never comes from here
 *   REFUSED, FORMERR, NOTIMP, others, a malformed packet -> permfail
 * TXT character-strings are joined; types other than A/AAAA/MX/PTR/CNAME/NS/TXT keep
 * their raw RDATA. trust decides ret->dnssec (dns_dnssec_status()).
 * Returns 0, or -ENOMEM; malformed input is a permfail answer, not an error. A truncated
 * (TC) reply is parsed like any other: the caller decides to retry over TCP. */
int dns_packet_to_answer(const uint8_t *p, size_t n, const char *qname, uint16_t qtype,
                         DnsServerTrust trust, DnsAnswer *ret);
