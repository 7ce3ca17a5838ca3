/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The systemd-resolved backend: one ResolveRecord call per lookup, its slot owned by the
 * lookup (unref'ing it cancels the call). The records come back as complete RRs in wire
 * format (owner name uncompressed, type, class, TTL, RDATA); they are put behind a
 * synthetic header and question and read by the same parser as the stub's replies, so
 * TXT joining and every bound are shared.
 *
 * resolved follows CNAME and DNAME chains itself and returns only the records of the
 * chain's end (owned by the last target, not by the name asked): the parser is then
 * told to start from that owner. */

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
#include "dns-stub.h"
#include "log.h"

#define DNS_MESSAGE_MAX 65535U

typedef struct Resolve1 {
        sd_event *event;
        sd_bus *bus;
        DnsServerTrust trust;
        usec_t timeout;
} Resolve1;

typedef struct Resolve1Query {
        Resolve1 *backend;
        DnsQuery *query;
        char qname[1025];
        uint16_t type;
        sd_bus_slot *slot;
        sd_event_source *defer;         /* a bad name: answered from the loop */
} Resolve1Query;

/* a and b name the same node: ASCII case and one final dot ignored */
static bool name_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);

        if (la > 0 && a[la - 1] == '.')
                la--;
        if (lb > 0 && b[lb - 1] == '.')
                lb--;
        return la == lb && strncasecmp(a, b, la) == 0;
}

int dns_resolve1_parse_reply(sd_bus_message *reply, const char *qname, uint16_t type,
                             DnsServerTrust trust, DnsAnswer *ret) {
        _cleanup_free_ uint8_t *msg = NULL;
        uint8_t question[DNS_PACKET_QUERY_MAX];
        char owner[NS_MAXDNAME], chain_end[NS_MAXDNAME] = "";
        bool qname_owns = false;
        size_t len, n_records = 0;
        uint64_t flags;
        int k, r;

        assert(reply);
        assert(qname);
        assert(ret);

        /* the question as the stub would have sent it: header + name + type/class */
        k = dns_packet_build_query(qname, type, 0, question, sizeof question);
        if (k < 0)
                return k;

        msg = malloc(DNS_MESSAGE_MAX);
        if (!msg)
                return -ENOMEM;
        /* the question ends 11 octets (the OPT record) before the query does */
        len = (size_t) k - 11;
        memcpy(msg, question, len);

        r = sd_bus_message_enter_container(reply, 'a', "(iqqay)");
        if (r < 0)
                goto bad;
        for (;;) {
                const void *data;
                uint16_t class, rtype;
                int32_t ifindex;
                size_t size;

                r = sd_bus_message_enter_container(reply, 'r', "iqqay");
                if (r < 0)
                        goto bad;
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "iqq", &ifindex, &class, &rtype);
                if (r < 0)
                        goto bad;
                r = sd_bus_message_read_array(reply, 'y', &data, &size);
                if (r < 0)
                        goto bad;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        goto bad;
                if (size > DNS_MESSAGE_MAX - len || n_records >= UINT16_MAX)
                        goto bad;
                if (size > 0)
                        memcpy(msg + len, data, size);

                /* whose record is it? (the parser checks the framing again) */
                k = dn_expand(msg, msg + len + size, msg + len, owner, sizeof owner);
                if (k < 0 || size - (size_t) k < 10)
                        goto bad;
                if (name_equal(owner, qname))
                        qname_owns = true;
                else if (chain_end[0] == 0 && rtype == type &&
                         ((uint16_t) (msg[len + k] << 8 | msg[len + k + 1])) == type)
                        memcpy(chain_end, owner, sizeof chain_end);

                len += size;
                n_records++;
        }
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto bad;
        r = sd_bus_message_read(reply, "t", &flags);
        if (r < 0)
                goto bad;

        /* QR RD RA, NOERROR, AD when resolved authenticated the data */
        msg[2] = 0x81;
        msg[3] = (flags & RESOLVE1_FLAG_AUTHENTICATED) ? 0xa0 : 0x80;
        msg[6] = (uint8_t) (n_records >> 8);
        msg[7] = (uint8_t) n_records;
        msg[10] = msg[11] = 0;
        /* nothing owned by the name asked, but records of the type asked: the end of the
         * CNAME chain resolved followed */
        return dns_packet_to_answer(msg, len, !qname_owns && chain_end[0] ? chain_end : qname, type, trust,
                                    ret);

bad:
        log_debug("Malformed ResolveRecord reply for %s: %s", qname, strerror(r < 0 ? -r : EBADMSG));
        *ret = (DnsAnswer) DNS_ANSWER_NULL;
        ret->result = DNS_RESULT_PERMFAIL;
        return 0;
}

void dns_resolve1_error_to_answer(const sd_bus_error *error, DnsAnswer *ret) {
        static const struct {
                const char *name;
                DnsResult result;
                DnssecStatus dnssec;
        } table[] = {
                { "org.freedesktop.resolve1.NoSuchRR",                      DNS_RESULT_OK,       DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.DnsError.NXDOMAIN",             DNS_RESULT_NXDOMAIN, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.DnssecFailed",                  DNS_RESULT_TEMPFAIL, DNSSEC_BOGUS },
                { "org.freedesktop.resolve1.DnsError.SERVFAIL",             DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.DnsError.REFUSED",              DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.DnsError.FORMERR",              DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.DnsError.NOTIMP",               DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.CNameLoop",                     DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.InvalidReply",                  DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.resolve1.ResourceRecordTypeUnsupported", DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "org.freedesktop.DBus.Error.InvalidArgs",                 DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
        };

        assert(error);
        assert(ret);

        *ret = (DnsAnswer) DNS_ANSWER_NULL;
        /* anything else (NoNameServers, Timeout, NoTrustAnchor, NetworkDown, resolved not
         * running, ...) is a reason to try again later */
        ret->result = DNS_RESULT_TEMPFAIL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (sd_bus_error_has_name(error, table[i].name)) {
                        ret->result = table[i].result;
                        ret->dnssec = table[i].dnssec;
                        break;
                }
}

static void resolve1_query_cancel(void *impl) {
        Resolve1Query *rq = impl;

        if (!rq)
                return;
        rq->slot = sd_bus_slot_unref(rq->slot);
        rq->defer = sd_event_source_disable_unref(rq->defer);
        free(rq);
}

static int on_resolve_record_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Resolve1Query *rq = userdata;
        DnsAnswer a = DNS_ANSWER_NULL;
        const sd_bus_error *e;
        int r;

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("ResolveRecord for %s failed: %s", rq->qname, e->name);
                dns_resolve1_error_to_answer(e, &a);
        } else {
                r = dns_resolve1_parse_reply(reply, rq->qname, rq->type, rq->backend->trust, &a);
                if (r < 0) {
                        a = (DnsAnswer) DNS_ANSWER_NULL;
                        a.result = DNS_RESULT_TEMPFAIL;
                }
        }
        dns_query_complete(rq->query, &a);      /* rq is freed */
        dns_answer_done(&a);
        return 0;
}

static int on_bad_name(sd_event_source *s, void *userdata) {
        Resolve1Query *rq = userdata;
        DnsAnswer a = DNS_ANSWER_NULL;

        a.result = DNS_RESULT_PERMFAIL;
        dns_query_complete(rq->query, &a);      /* rq is freed */
        return 0;
}

static int resolve1_query_start(void *backend, DnsQuery *q, const char *name, uint16_t type, void **ret_impl) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint8_t packet[DNS_PACKET_QUERY_MAX];
        Resolve1 *b = backend;
        Resolve1Query *rq;
        int k, r;

        rq = calloc(1, sizeof(Resolve1Query));
        if (!rq)
                return -ENOMEM;
        *rq = (Resolve1Query) { .backend = b, .query = q, .type = type };

        /* the same name checks as the stub, so both backends refuse the same names */
        k = dns_packet_build_query(name, type, 0, packet, sizeof packet);
        if (k == -EINVAL) {
                r = sd_event_add_defer(b->event, &rq->defer, on_bad_name, rq);
                if (r < 0)
                        goto fail;
                *ret_impl = rq;
                return 0;
        }
        if (k < 0) {
                r = k;
                goto fail;
        }
        r = dns_packet_query_name(packet, (size_t) k, rq->qname, sizeof rq->qname);
        if (r < 0)
                goto fail;

        r = sd_bus_message_new_method_call(b->bus, &m, RESOLVE1_SERVICE, RESOLVE1_PATH, RESOLVE1_MANAGER,
                                           "ResolveRecord");
        if (r < 0)
                goto fail;
        /* Classic DNS only. ResolveRecord never applies search domains, and resolved refuses
         * SD_RESOLVED_NO_SEARCH there ("Invalid flags parameter"): it is not passed. */
        r = sd_bus_message_append(m, "isqqt", 0, rq->qname, (uint16_t) 1, type, RESOLVE1_FLAG_DNS);
        if (r < 0)
                goto fail;
        r = sd_bus_call_async(b->bus, &rq->slot, m, on_resolve_record_reply, rq, b->timeout);
        if (r < 0)
                goto fail;

        *ret_impl = rq;
        return 0;

fail:
        resolve1_query_cancel(rq);
        return r;
}

static void resolve1_free(void *backend) {
        Resolve1 *b = backend;

        if (!b)
                return;
        sd_bus_unref(b->bus);
        sd_event_unref(b->event);
        free(b);
}

static const DnsBackendVtable resolve1_vtable = {
        .start = resolve1_query_start,
        .cancel = resolve1_query_cancel,
        .free = resolve1_free,
};

int dns_resolver_new_resolve1(sd_event *e, sd_bus *bus, const DnsResolve1Config *c, DnsResolver **ret) {
        Resolve1 *b;

        assert(e);
        assert(bus);
        assert(ret);

        if (sd_bus_get_event(bus) != e)
                return -EINVAL;
        if (c && (c->trust < 0 || c->trust >= _DNS_SERVER_TRUST_MAX))
                return -EINVAL;

        b = calloc(1, sizeof(Resolve1));
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->bus = sd_bus_ref(bus);
        b->trust = c && c->trust != DNS_SERVER_TRUST_AUTO ? c->trust : DNS_SERVER_TRUSTED;
        b->timeout = c && c->timeout > 0 ? c->timeout : DNS_RESOLVE1_TIMEOUT_DEFAULT;

        return dns_resolver_new_backend(e, &resolve1_vtable, b, ret);
}
