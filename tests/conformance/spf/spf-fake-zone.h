/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A fake DNS zone for the SPF unit and conformance suites: it answers the SpfLookups
 * of spf_eval_step() from records given in order, with the rules of the openspf suite's
 * reference runner (tests/conformance/spf/spf-openspf/PROVENANCE.md):
 *
 *  - names compare case-insensitively, empty labels and a final dot are dropped;
 *  - a name with no entries is NXDOMAIN, a name without records of the type NODATA;
 *  - a bare TIMEOUT entry (fake_zone_add_timeout(z, name, 0)) times out every query
 *    of a type that has no record before it; a typed one times out that type;
 *  - a CNAME is returned with the target's records of the queried type, one level;
 *  - with error_names set, a name containing "_dns_error." times out (the Stalwart
 *    set's convention).
 *
 * Header-only so the unit test binary (one source file) can use it too. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-answer.h"
#include "spf-eval.h"

typedef struct FakeZoneEntry {
        char *name;             /* normalised */
        uint16_t type;          /* 0: a bare TIMEOUT, or a marker that only makes the name exist */
        bool timeout;
        DnsAnswer rr;           /* the one record, when !timeout && type != 0 */
} FakeZoneEntry;

typedef struct FakeZone {
        FakeZoneEntry *entries;
        size_t n_entries;
        bool error_names;
        unsigned n_queries;     /* statistics for tests */
} FakeZone;

static inline char* fake_zone_normalize(const char *name) {
        size_t n = strlen(name), k = 0;
        char *d = malloc(n + 1);

        if (!d)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (name[i] == '.' && (k == 0 || d[k - 1] == '.'))
                        continue;
                d[k++] = (char) tolower((unsigned char) name[i]);
        }
        if (k > 0 && d[k - 1] == '.')
                k--;
        d[k] = 0;
        return d;
}

static inline void fake_zone_done(FakeZone *z) {
        for (size_t i = 0; i < z->n_entries; i++) {
                free(z->entries[i].name);
                dns_answer_done(&z->entries[i].rr);
        }
        free(z->entries);
        *z = (FakeZone) {};
}

static inline FakeZoneEntry* fake_zone_new_entry(FakeZone *z, const char *name, uint16_t type, bool timeout) {
        FakeZoneEntry *l;
        char *n;

        n = fake_zone_normalize(name);
        if (!n)
                return NULL;
        l = reallocarray(z->entries, z->n_entries + 1, sizeof(FakeZoneEntry));
        if (!l) {
                free(n);
                return NULL;
        }
        z->entries = l;
        l[z->n_entries] = (FakeZoneEntry) {
                .name = n,
                .type = type,
                .timeout = timeout,
                .rr = DNS_ANSWER_NULL,
        };
        return l + z->n_entries++;
}

/* Remove every record of this name and type (type 0: all), for zones that are
 * rewritten between checks. */
static inline void fake_zone_remove(FakeZone *z, const char *name, uint16_t type) {
        char *n = fake_zone_normalize(name);
        size_t k = 0;

        if (!n)
                return;
        for (size_t i = 0; i < z->n_entries; i++) {
                FakeZoneEntry *e = z->entries + i;

                if (strcmp(e->name, n) == 0 && (type == 0 || e->type == type)) {
                        free(e->name);
                        dns_answer_done(&e->rr);
                        continue;
                }
                z->entries[k++] = *e;
        }
        z->n_entries = k;
        free(n);
}

static inline int fake_zone_add_timeout(FakeZone *z, const char *name, uint16_t type) {
        return fake_zone_new_entry(z, name, type, true) ? 0 : -ENOMEM;
}

static inline int fake_zone_add_marker(FakeZone *z, const char *name) {
        return fake_zone_new_entry(z, name, 0, false) ? 0 : -ENOMEM;
}

static inline int fake_zone_add_txt(FakeZone *z, const char *name, const char *data, size_t len) {
        FakeZoneEntry *e = fake_zone_new_entry(z, name, DNS_TYPE_TXT, false);

        return e ? dns_answer_add_txt(&e->rr, data, len, 300) : -ENOMEM;
}

static inline int fake_zone_add_a(FakeZone *z, const char *name, const char *ip) {
        FakeZoneEntry *e;
        struct in_addr in;
        struct in6_addr in6;

        if (inet_pton(AF_INET, ip, &in) == 1) {
                e = fake_zone_new_entry(z, name, DNS_TYPE_A, false);
                return e ? dns_answer_add_a(&e->rr, &in, 300) : -ENOMEM;
        }
        if (inet_pton(AF_INET6, ip, &in6) == 1) {
                e = fake_zone_new_entry(z, name, DNS_TYPE_AAAA, false);
                return e ? dns_answer_add_aaaa(&e->rr, &in6, 300) : -ENOMEM;
        }
        return -EINVAL;
}

static inline int fake_zone_add_mx(FakeZone *z, const char *name, uint16_t pref, const char *exchange) {
        FakeZoneEntry *e = fake_zone_new_entry(z, name, DNS_TYPE_MX, false);

        return e ? dns_answer_add_mx(&e->rr, pref, exchange, 300) : -ENOMEM;
}

static inline int fake_zone_add_name(FakeZone *z, const char *name, uint16_t type, const char *target) {
        FakeZoneEntry *e = fake_zone_new_entry(z, name, type, false);

        return e ? dns_answer_add_name(&e->rr, type, target, 300) : -ENOMEM;
}

/* The PTR record of an address, under in-addr.arpa / ip6.arpa. */
static inline int fake_zone_add_ptr(FakeZone *z, const char *ip, const char *target) {
        static const char hex[] = "0123456789abcdef";
        struct in6_addr in6;
        struct in_addr in;
        char buf[80], *p = buf;

        if (inet_pton(AF_INET, ip, &in) == 1) {
                const uint8_t *b = (const uint8_t*) &in;
                snprintf(buf, sizeof(buf), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        } else if (inet_pton(AF_INET6, ip, &in6) == 1) {
                for (size_t i = 16; i > 0; i--) {
                        *p++ = hex[in6.s6_addr[i - 1] & 0xf];
                        *p++ = '.';
                        *p++ = hex[in6.s6_addr[i - 1] >> 4];
                        *p++ = '.';
                }
                strcpy(p, "ip6.arpa");
        } else
                return -EINVAL;
        return fake_zone_add_name(z, buf, DNS_TYPE_PTR, target);
}

static inline int fake_zone_lookup_one(const FakeZone *z, const char *n, uint16_t type, DnsAnswer *a,
                                       char **ret_cname) {
        bool exists = false;
        size_t found = 0;
        int r;

        for (size_t i = 0; i < z->n_entries; i++) {
                const FakeZoneEntry *e = z->entries + i;

                if (strcmp(e->name, n) != 0)
                        continue;
                exists = true;
                if (e->timeout && (e->type == 0 || e->type == type)) {
                        if (e->type == 0 && found > 0)
                                break;  /* records before the TIMEOUT are served */
                        dns_answer_done(a);
                        a->result = DNS_RESULT_TEMPFAIL;
                        return 0;
                }
                if (e->timeout || e->type == 0)
                        continue;
                if (e->type == type) {
                        r = dns_answer_add(a, e->rr.records);
                        if (r < 0)
                                return r;
                        found++;
                } else if (e->type == DNS_TYPE_CNAME && ret_cname && !*ret_cname) {
                        r = dns_answer_add(a, e->rr.records);
                        if (r < 0)
                                return r;
                        *ret_cname = fake_zone_normalize(e->rr.records[0].name);
                        if (!*ret_cname)
                                return -ENOMEM;
                }
        }
        if (!exists)
                a->result = DNS_RESULT_NXDOMAIN;
        return 0;
}

static inline int fake_zone_lookup(FakeZone *z, const char *name, uint16_t type, DnsAnswer *ret) {
        DnsAnswer a = DNS_ANSWER_NULL;
        char *n, *cname = NULL;
        int r;

        z->n_queries++;
        n = fake_zone_normalize(name);
        if (!n)
                return -ENOMEM;

        if (z->error_names && strstr(n, "_dns_error.")) {
                free(n);
                *ret = (DnsAnswer) DNS_ANSWER_NULL;
                ret->result = DNS_RESULT_TEMPFAIL;
                return 0;
        }

        r = fake_zone_lookup_one(z, n, type, &a, &cname);
        if (r >= 0 && cname && a.result == DNS_RESULT_OK) {
                DnsAnswer t = DNS_ANSWER_NULL;

                /* one level: the target's records of the type, no further CNAME */
                r = fake_zone_lookup_one(z, cname, type, &t, NULL);
                if (r >= 0 && t.result == DNS_RESULT_TEMPFAIL)
                        a.result = DNS_RESULT_TEMPFAIL;
                for (size_t i = 0; r >= 0 && t.result == DNS_RESULT_OK && i < t.n_records; i++)
                        r = dns_answer_add(&a, t.records + i);
                dns_answer_done(&t);
        }
        free(cname);
        free(n);
        if (r < 0) {
                dns_answer_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}

/* Run a whole evaluation against the zone. */
static inline int fake_zone_check(FakeZone *z, const SpfRequest *req, SpfEval **ret) {
        SpfEval *e = NULL;
        DnsAnswer answer = DNS_ANSWER_NULL;
        bool have = false;
        int r;

        r = spf_eval_new(req, &e);
        if (r < 0)
                return r;
        for (unsigned i = 0;; i++) {
                SpfLookup lookup;

                r = spf_eval_step(e, have ? &answer : NULL, &lookup);
                dns_answer_done(&answer);
                if (r < 0 || r == SPF_STEP_DONE)
                        break;
                if (i > SPF_LOOKUPS_MAX + 1) {
                        r = -ELOOP;
                        break;
                }
                r = fake_zone_lookup(z, lookup.name, lookup.type, &answer);
                if (r < 0)
                        break;
                have = true;
        }
        if (r < 0) {
                spf_eval_free(e);
                return r;
        }
        *ret = e;
        return 0;
}
