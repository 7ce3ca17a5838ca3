/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "dns-resolver.h"
#include "dns-stub.h"

struct DnsResolver {
        sd_event *event;
        const DnsBackendVtable *vtable;
        void *backend;
        DnsQuery *queries;              /* pending ones, linked through prev/next */
        size_t n_queries;
};

struct DnsQuery {
        DnsResolver *resolver;          /* NULL once completed or the resolver is gone */
        DnsQuery *prev, *next;
        void *impl;                     /* the backend's state while pending */
        DnsQueryHandler handler;
        void *userdata;
        bool floating;                  /* nobody holds it: freed after the handler ran */
};

int dns_resolver_new_backend(sd_event *e, const DnsBackendVtable *vt, void *backend, DnsResolver **ret) {
        DnsResolver *r;

        assert(e);
        assert(vt);
        assert(ret);

        r = calloc(1, sizeof(DnsResolver));
        if (!r) {
                vt->free(backend);
                return -ENOMEM;
        }
        r->event = sd_event_ref(e);
        r->vtable = vt;
        r->backend = backend;
        *ret = r;
        return 0;
}

sd_event* dns_resolver_get_event(DnsResolver *r) {
        assert(r);
        return r->event;
}

static void query_detach(DnsQuery *q) {
        DnsResolver *r = q->resolver;
        void *impl = q->impl;

        if (!r)
                return;
        if (q->prev)
                q->prev->next = q->next;
        else
                r->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        q->prev = q->next = NULL;
        q->resolver = NULL;
        q->impl = NULL;
        r->n_queries--;
        if (impl)
                r->vtable->cancel(impl);
}

DnsResolver* dns_resolver_free(DnsResolver *r) {
        if (!r)
                return NULL;

        while (r->queries) {
                DnsQuery *q = r->queries;

                query_detach(q);
                /* nobody would ever free a floating one now */
                if (q->floating)
                        free(q);
        }
        if (r->vtable)
                r->vtable->free(r->backend);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

int dns_resolver_query(DnsResolver *r, const char *name, uint16_t type,
                       DnsQueryHandler handler, void *userdata, DnsQuery **ret_query) {
        DnsQuery *q;
        int k;

        assert(r);
        assert(name);
        assert(handler);

        if (r->n_queries >= DNS_STUB_QUERIES_MAX)
                return -EBUSY;

        q = calloc(1, sizeof(DnsQuery));
        if (!q)
                return -ENOMEM;
        *q = (DnsQuery) {
                .handler = handler,
                .userdata = userdata,
                .floating = !ret_query,
        };

        k = r->vtable->start(r->backend, q, name, type, &q->impl);
        if (k < 0) {
                free(q);
                return k;
        }

        q->resolver = r;
        q->next = r->queries;
        if (r->queries)
                r->queries->prev = q;
        r->queries = q;
        r->n_queries++;

        if (ret_query)
                *ret_query = q;
        return 0;
}

void dns_query_complete(DnsQuery *q, const DnsAnswer *answer) {
        assert(q);
        assert(answer);

        bool floating = q->floating;

        if (!q->resolver)
                return;
        query_detach(q);
        q->handler(q, answer, q->userdata);
        /* q may be freed by the handler: only a floating one is still ours */
        if (floating)
                free(q);
}

DnsQuery* dns_query_free(DnsQuery *q) {
        if (!q)
                return NULL;
        query_detach(q);
        free(q);
        return NULL;
}
