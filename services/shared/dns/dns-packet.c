/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* <sys/param.h>, pulled in by <resolv.h>, has MIN()/MAX() of its own */
#undef MIN
#undef MAX

#include "cleanup.h"
#include "dns-packet.h"

#define DNS_CLASS_IN 1U
#define DNS_TYPE_OPT 41U
#define DNS_NAME_TEXT_MAX 1025U         /* NS_MAXDNAME: 255 octets, every one escaped as \DDD */

static const char* const dns_server_trust_table[_DNS_SERVER_TRUST_MAX] = {
        [DNS_SERVER_TRUST_AUTO] = "auto",
        [DNS_SERVER_UNTRUSTED] = "untrusted",
        [DNS_SERVER_TRUSTED] = "trusted",
        [DNS_SERVER_VALIDATING] = "validating",
};

const char* dns_server_trust_to_string(DnsServerTrust t) {
        return t >= 0 && t < _DNS_SERVER_TRUST_MAX ? dns_server_trust_table[t] : NULL;
}

DnsServerTrust dns_server_trust_from_string(const char *s) {
        if (!s)
                return _DNS_SERVER_TRUST_INVALID;
        for (int i = 0; i < _DNS_SERVER_TRUST_MAX; i++)
                if (strcmp(s, dns_server_trust_table[i]) == 0)
                        return (DnsServerTrust) i;
        return _DNS_SERVER_TRUST_INVALID;
}

static uint16_t get16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

int dns_packet_parse_header(const uint8_t *p, size_t n, DnsPacketHeader *ret) {
        assert(p || n == 0);
        assert(ret);

        if (n < DNS_PACKET_HEADER_SIZE)
                return -EBADMSG;

        *ret = (DnsPacketHeader) {
                .id = get16(p),
                .qr = p[2] & 0x80,
                .opcode = (p[2] >> 3) & 0x0f,
                .aa = p[2] & 0x04,
                .tc = p[2] & 0x02,
                .rd = p[2] & 0x01,
                .ra = p[3] & 0x80,
                .ad = p[3] & 0x20,
                .cd = p[3] & 0x10,
                .rcode = p[3] & 0x0f,
                .qdcount = get16(p + 4),
                .ancount = get16(p + 6),
                .nscount = get16(p + 8),
                .arcount = get16(p + 10),
        };
        return 0;
}

int dns_packet_build_query(const char *name, uint16_t type, uint16_t id, uint8_t *buf, size_t size) {
        size_t l;
        int k;

        assert(name);
        assert(buf);

        /* dn_comp() takes "" and "." as the root, which no check ever wants to ask */
        if (IN_SET(name[0], '\0', '.'))
                return -EINVAL;
        /* header + name (≤ 255) + qtype/qclass + OPT (11) */
        if (size < DNS_PACKET_HEADER_SIZE + NS_MAXCDNAME + 4 + 11)
                return -ENOBUFS;

        memset(buf, 0, DNS_PACKET_HEADER_SIZE);
        put16(buf, id);
        buf[2] = 0x01;                  /* RD */
        put16(buf + 4, 1);              /* QDCOUNT */
        put16(buf + 10, 1);             /* ARCOUNT: the OPT record */

        k = dn_comp(name, buf + DNS_PACKET_HEADER_SIZE, NS_MAXCDNAME, NULL, NULL);
        if (k < 0)
                return -EINVAL;
        l = DNS_PACKET_HEADER_SIZE + (size_t) k;
        put16(buf + l, type);
        put16(buf + l + 2, DNS_CLASS_IN);
        l += 4;

        /* OPT: root owner, type 41, class = UDP payload size, TTL = ext-rcode 0, version 0,
         * flags with DO (bit 15), no options */
        buf[l++] = 0;
        put16(buf + l, DNS_TYPE_OPT);
        put16(buf + l + 2, DNS_PACKET_EDNS_UDP_SIZE);
        buf[l + 4] = 0;
        buf[l + 5] = 0;
        put16(buf + l + 6, 0x8000);
        put16(buf + l + 8, 0);
        l += 10;

        return (int) l;
}

/* Reads the name at p + *offset into text, advancing *offset past it. */
static int read_name(const uint8_t *p, size_t n, size_t *offset, char *text, size_t size) {
        int k;

        if (*offset >= n)
                return -EBADMSG;
        k = dn_expand(p, p + n, p + *offset, text, (int) size);
        if (k <= 0)
                return -EBADMSG;
        *offset += (size_t) k;
        return 0;
}

int dns_packet_query_name(const uint8_t *query, size_t n, char *ret, size_t size) {
        size_t offset = DNS_PACKET_HEADER_SIZE;

        assert(query);
        assert(ret);

        return read_name(query, n, &offset, ret, size);
}

/* The question of p: name, type and class; *ret_end is where the answer section starts. */
static int read_question(const uint8_t *p, size_t n, char *name, size_t size,
                         uint16_t *ret_type, uint16_t *ret_class, size_t *ret_end) {
        size_t offset = DNS_PACKET_HEADER_SIZE;
        int r;

        r = read_name(p, n, &offset, name, size);
        if (r < 0)
                return r;
        if (n - offset < 4)
                return -EBADMSG;
        *ret_type = get16(p + offset);
        *ret_class = get16(p + offset + 2);
        *ret_end = offset + 4;
        return 0;
}

int dns_packet_match_reply(const uint8_t *p, size_t n, const uint8_t *query, size_t query_len) {
        char qn[DNS_NAME_TEXT_MAX], rn[DNS_NAME_TEXT_MAX];
        uint16_t qt, qc, rt, rc;
        DnsPacketHeader h, qh;
        size_t end;
        int r;

        assert(p || n == 0);
        assert(query);

        r = dns_packet_parse_header(p, n, &h);
        if (r < 0)
                return r;
        r = dns_packet_parse_header(query, query_len, &qh);
        if (r < 0)
                return r;
        if (h.id != qh.id || !h.qr || h.opcode != 0 || h.qdcount != 1)
                return -EBADMSG;

        r = read_question(query, query_len, qn, sizeof qn, &qt, &qc, &end);
        if (r < 0)
                return r;
        r = read_question(p, n, rn, sizeof rn, &rt, &rc, &end);
        if (r < 0)
                return r;
        if (rt != qt || rc != qc || strcasecmp(rn, qn) != 0)
                return -EBADMSG;
        return 0;
}

/* The DNSSEC status of an answer from the stub resolver:
 *
 *   result             AD   server trust        status
 *   ok / nxdomain      1    trusted, validating secure
 *   ok / nxdomain      0    validating          insecure
 *   ok / nxdomain      0    trusted             indeterminate (the server may not validate)
 *   ok / nxdomain      any  untrusted           indeterminate (anyone on the path can set AD)
 *   tempfail/permfail  any  any                 indeterminate
 *
 * A validating resolver reports bogus data as SERVFAIL; over the DNS protocol that is
 * indistinguishable from any other server failure (RFC 8914 extended errors would tell,
 * but are not relied upon), so the stub never says DNSSEC_BOGUS: such a lookup ends in
 * DNS_RESULT_TEMPFAIL, which every check already treats as "try again later". */
DnssecStatus dns_dnssec_status(DnsResult result, bool ad, DnsServerTrust trust) {
        if (!IN_SET(result, DNS_RESULT_OK, DNS_RESULT_NXDOMAIN))
                return DNSSEC_INDETERMINATE;
        if (!IN_SET(trust, DNS_SERVER_TRUSTED, DNS_SERVER_VALIDATING))
                return DNSSEC_INDETERMINATE;
        if (ad)
                return DNSSEC_SECURE;
        return trust == DNS_SERVER_VALIDATING ? DNSSEC_INSECURE : DNSSEC_INDETERMINATE;
}

typedef struct RawRecord {
        char owner[DNS_NAME_TEXT_MAX];
        uint16_t type;
        uint32_t ttl;
        size_t rdata;           /* offset of the RDATA in the packet */
        uint16_t rdlength;
} RawRecord;

/* Decodes one record's RDATA into *rec; strings in *rec are owned by the caller. */
static int decode_rdata(const uint8_t *p, const RawRecord *raw, DnsRecord *rec) {
        const uint8_t *d = p + raw->rdata;
        size_t end = raw->rdata + raw->rdlength, offset;
        char name[DNS_NAME_TEXT_MAX];
        int r;

        *rec = (DnsRecord) { .type = raw->type, .ttl = raw->ttl };

        switch (raw->type) {
        case DNS_TYPE_A:
                if (raw->rdlength != sizeof(struct in_addr))
                        return -EBADMSG;
                memcpy(&rec->a, d, sizeof(struct in_addr));
                return 0;

        case DNS_TYPE_AAAA:
                if (raw->rdlength != sizeof(struct in6_addr))
                        return -EBADMSG;
                memcpy(&rec->aaaa, d, sizeof(struct in6_addr));
                return 0;

        case DNS_TYPE_MX:
                if (raw->rdlength < 3)
                        return -EBADMSG;
                offset = raw->rdata + 2;
                /* names inside RDATA may point anywhere in the message, but must end
                 * exactly where the RDATA ends */
                r = read_name(p, end, &offset, name, sizeof name);
                if (r < 0 || offset != end)
                        return -EBADMSG;
                rec->mx.preference = get16(d);
                rec->mx.exchange = strdup(name);
                return rec->mx.exchange ? 0 : -ENOMEM;

        case DNS_TYPE_PTR:
        case DNS_TYPE_CNAME:
        case DNS_TYPE_NS:
                offset = raw->rdata;
                r = read_name(p, end, &offset, name, sizeof name);
                if (r < 0 || offset != end)
                        return -EBADMSG;
                rec->name = strdup(name);
                return rec->name ? 0 : -ENOMEM;

        case DNS_TYPE_TXT: {
                _cleanup_free_ char *data = NULL;
                size_t len = 0;

                /* at least one character-string (RFC 1035 §3.3.14); the joined text is
                 * never longer than the RDATA */
                if (raw->rdlength == 0)
                        return -EBADMSG;
                data = malloc(raw->rdlength + 1U);
                if (!data)
                        return -ENOMEM;
                for (size_t i = 0; i < raw->rdlength;) {
                        size_t k = d[i++];

                        if (k > raw->rdlength - i)
                                return -EBADMSG;
                        memcpy(data + len, d + i, k);
                        len += k;
                        i += k;
                }
                data[len] = 0;
                rec->txt.data = TAKE_PTR(data);
                rec->txt.len = len;
                return 0;
        }

        default:
                rec->raw.data = malloc(raw->rdlength + 1U);
                if (!rec->raw.data)
                        return -ENOMEM;
                memcpy(rec->raw.data, d, raw->rdlength);
                rec->raw.data[raw->rdlength] = 0;
                rec->raw.len = raw->rdlength;
                return 0;
        }
}

static void record_release(DnsRecord *rec) {
        switch (rec->type) {
        case DNS_TYPE_A:
        case DNS_TYPE_AAAA:
                break;
        case DNS_TYPE_MX:
                free(rec->mx.exchange);
                break;
        case DNS_TYPE_PTR:
        case DNS_TYPE_CNAME:
        case DNS_TYPE_NS:
                free(rec->name);
                break;
        case DNS_TYPE_TXT:
                free(rec->txt.data);
                break;
        default:
                free(rec->raw.data);
        }
}

static void answer_fail(DnsAnswer *a, DnsResult result) {
        dns_answer_done(a);
        a->result = result;
        a->dnssec = DNSSEC_INDETERMINATE;
}

int dns_packet_to_answer(const uint8_t *p, size_t n, const char *qname, uint16_t qtype,
                         DnsServerTrust trust, DnsAnswer *ret) {
        _cleanup_(dns_answer_done) DnsAnswer a = DNS_ANSWER_NULL;
        _cleanup_free_ RawRecord *rr = NULL;
        char name[DNS_NAME_TEXT_MAX], current[DNS_NAME_TEXT_MAX], qn[DNS_NAME_TEXT_MAX];
        uint16_t t, c;
        size_t offset, n_rr = 0;
        DnsPacketHeader h;
        bool found;
        int r;

        assert(p || n == 0);
        assert(qname);
        assert(ret);

        if (dns_packet_parse_header(p, n, &h) < 0 || h.qdcount != 1 ||
            read_question(p, n, qn, sizeof qn, &t, &c, &offset) < 0) {
                answer_fail(&a, DNS_RESULT_PERMFAIL);
                goto finish;
        }

        switch (h.rcode) {
        case DNS_RCODE_NOERROR:
                a.result = DNS_RESULT_OK;
                break;
        case DNS_RCODE_NXDOMAIN:
                a.result = DNS_RESULT_NXDOMAIN;
                break;
        case DNS_RCODE_SERVFAIL:
                answer_fail(&a, DNS_RESULT_TEMPFAIL);
                goto finish;
        default:
                answer_fail(&a, DNS_RESULT_PERMFAIL);
                goto finish;
        }

        /* Walk the answer section once, checking every record's framing. Each record
         * needs at least 11 octets, which bounds the array by the packet size. */
        if (h.ancount > 0) {
                if (h.ancount > (n - offset) / 11) {
                        answer_fail(&a, DNS_RESULT_PERMFAIL);
                        goto finish;
                }
                rr = calloc(h.ancount, sizeof(RawRecord));
                if (!rr)
                        return -ENOMEM;
        }
        for (; n_rr < h.ancount; n_rr++) {
                RawRecord *x = rr + n_rr;

                if (read_name(p, n, &offset, x->owner, sizeof x->owner) < 0 || n - offset < 10) {
                        answer_fail(&a, DNS_RESULT_PERMFAIL);
                        goto finish;
                }
                x->type = get16(p + offset);
                c = get16(p + offset + 2);
                x->ttl = get32(p + offset + 4);
                x->rdlength = get16(p + offset + 8);
                offset += 10;
                if (x->rdlength > n - offset) {
                        answer_fail(&a, DNS_RESULT_PERMFAIL);
                        goto finish;
                }
                x->rdata = offset;
                offset += x->rdlength;
                if (c != DNS_CLASS_IN)
                        x->type = 0;    /* not ours: never matched below */
                /* a TTL with the top bit set is read as 0 (RFC 2181 §8) */
                if (x->ttl > INT32_MAX)
                        x->ttl = 0;
        }

        /* Follow the CNAME chain from the queried name to the records of qtype. */
        strncpy(current, qname, sizeof current - 1);
        current[sizeof current - 1] = 0;
        if (strlen(current) > 0 && current[strlen(current) - 1] == '.')
                current[strlen(current) - 1] = 0;
        for (unsigned hop = 0;; hop++) {
                const RawRecord *cname = NULL;

                found = false;
                for (size_t i = 0; i < n_rr; i++) {
                        DnsRecord rec;

                        if (strcasecmp(rr[i].owner, current) != 0)
                                continue;
                        if (rr[i].type == DNS_TYPE_CNAME && qtype != DNS_TYPE_CNAME && !cname)
                                cname = rr + i;
                        if (rr[i].type != qtype || qtype == 0)
                                continue;

                        r = decode_rdata(p, rr + i, &rec);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                answer_fail(&a, DNS_RESULT_PERMFAIL);
                                goto finish;
                        }
                        r = dns_answer_add(&a, &rec);
                        record_release(&rec);      /* dns_answer_add() copied it */
                        if (r < 0)
                                return r;
                        found = true;
                }
                if (found || !cname)
                        break;
                if (hop >= DNS_PACKET_CNAME_MAX) {
                        /* a chain longer than any sane zone has: refuse, as a loop would be */
                        answer_fail(&a, DNS_RESULT_PERMFAIL);
                        goto finish;
                }
                {
                        size_t o = cname->rdata;

                        if (read_name(p, cname->rdata + cname->rdlength, &o, name, sizeof name) < 0 ||
                            o != cname->rdata + cname->rdlength) {
                                answer_fail(&a, DNS_RESULT_PERMFAIL);
                                goto finish;
                        }
                }
                memcpy(current, name, sizeof current);
        }

        /* NXDOMAIN with data for the name asked makes no sense; keep the rcode's word but
         * drop the records. */
        if (a.result == DNS_RESULT_NXDOMAIN && a.n_records > 0) {
                dns_answer_done(&a);
                a.result = DNS_RESULT_NXDOMAIN;
        }

        a.dnssec = dns_dnssec_status(a.result, h.ad, trust);

finish:
        *ret = a;
        a = (DnsAnswer) DNS_ANSWER_NULL;
        return 0;
}
