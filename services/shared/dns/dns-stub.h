/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between DnsResolver (dns-resolver.c) and its backends. Not for the checks: they use
 * dns-resolver.h only. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "dns-resolver.h"

typedef struct DnsBackendVtable {
        /* Starts the lookup for q. Must not complete synchronously: the backend calls
         * dns_query_complete() later, from an event source of its own. */
        int (*start)(void *backend, DnsQuery *q, const char *name, uint16_t type, void **ret_impl);
        /* Releases a started lookup (sockets, event sources); called on completion too. */
        void (*cancel)(void *impl);
        void (*free)(void *backend);
} DnsBackendVtable;

/* Takes ownership of backend (freed with vt->free, also on failure). */
int dns_resolver_new_backend(sd_event *e, const DnsBackendVtable *vt, void *backend, DnsResolver **ret);
sd_event* dns_resolver_get_event(DnsResolver *r);

/* Called by a backend from its event source: releases the backend's state of q, then
 * calls the handler. q may be freed on return: touch nothing of it afterwards. */
void dns_query_complete(DnsQuery *q, const DnsAnswer *answer);

/* The resolve1 backend's two halves without a bus connection, for the unit tests. */
#define RESOLVE1_SERVICE "org.freedesktop.resolve1"
#define RESOLVE1_PATH "/org/freedesktop/resolve1"
#define RESOLVE1_MANAGER "org.freedesktop.resolve1.Manager"
#define RESOLVE1_FLAG_DNS (UINT64_C(1) << 0)            /* SD_RESOLVED_DNS: classic DNS only */
#define RESOLVE1_FLAG_NO_SEARCH (UINT64_C(1) << 8)      /* SD_RESOLVED_NO_SEARCH */
#define RESOLVE1_FLAG_AUTHENTICATED (UINT64_C(1) << 9)  /* SD_RESOLVED_AUTHENTICATED (output) */

/* Turns the records and flags of a ResolveRecord reply (a(iqqay) t) into *ret. */
int dns_resolve1_parse_reply(sd_bus_message *reply, const char *qname, uint16_t type,
                             DnsServerTrust trust, DnsAnswer *ret);
/* The answer a ResolveRecord error stands for. */
void dns_resolve1_error_to_answer(const sd_bus_error *error, DnsAnswer *ret);
