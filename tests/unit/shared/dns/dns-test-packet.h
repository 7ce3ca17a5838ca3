/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Hand-made DNS messages for the unit tests: a header, the question, then records
 * appended one by one. Names are given as dotted text and written uncompressed; a
 * record owner of NULL is a compression pointer to the question name (offset 12). */

#include <stdint.h>
#include <string.h>

typedef struct TestPacket {
        uint8_t data[4096];
        size_t len;
} TestPacket;

static inline void tp_put16(TestPacket *p, uint16_t v) {
        p->data[p->len++] = (uint8_t) (v >> 8);
        p->data[p->len++] = (uint8_t) v;
}

static inline void tp_put32(TestPacket *p, uint32_t v) {
        tp_put16(p, (uint16_t) (v >> 16));
        tp_put16(p, (uint16_t) v);
}

static inline void tp_name(TestPacket *p, const char *name) {
        if (!name) {
                p->data[p->len++] = 0xc0;
                p->data[p->len++] = 12;
                return;
        }
        while (*name) {
                const char *dot = strchr(name, '.');
                size_t l = dot ? (size_t) (dot - name) : strlen(name);

                p->data[p->len++] = (uint8_t) l;
                memcpy(p->data + p->len, name, l);
                p->len += l;
                name += l;
                if (*name == '.')
                        name++;
        }
        p->data[p->len++] = 0;
}

/* flags: the third and fourth header octets, e.g. 0x8180 = QR RD RA, NOERROR */
static inline void tp_begin(TestPacket *p, uint16_t id, uint16_t flags, const char *qname, uint16_t qtype,
                            uint16_t ancount) {
        p->len = 0;
        tp_put16(p, id);
        tp_put16(p, flags);
        tp_put16(p, 1);
        tp_put16(p, ancount);
        tp_put16(p, 0);
        tp_put16(p, 0);
        tp_name(p, qname);
        tp_put16(p, qtype);
        tp_put16(p, 1);
}

static inline void tp_rr(TestPacket *p, const char *owner, uint16_t type, uint32_t ttl,
                         const void *rdata, uint16_t rdlen) {
        tp_name(p, owner);
        tp_put16(p, type);
        tp_put16(p, 1);
        tp_put32(p, ttl);
        tp_put16(p, rdlen);
        memcpy(p->data + p->len, rdata, rdlen);
        p->len += rdlen;
}

/* A record whose RDATA is a (dotted, uncompressed) name, optionally after a 16-bit prefix. */
static inline void tp_rr_name(TestPacket *p, const char *owner, uint16_t type, int prefix, const char *target) {
        TestPacket r = { .len = 0 };

        if (prefix >= 0)
                tp_put16(&r, (uint16_t) prefix);
        tp_name(&r, target);
        tp_rr(p, owner, type, 300, r.data, (uint16_t) r.len);
}
