/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-authd's Manager: the event loop, the bus connection, the configuration, the
 * resolver, the pending checks and the statistics of ch.webtrend.Mailsec.Auth1.Manager. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "authd-conf.h"
#include "conf-parser.h"
#include "dns-resolver.h"
#include "macro.h"

typedef struct AuthCheck AuthCheck;

typedef struct AuthStats {
        uint64_t checks_total;
        uint64_t spf_checks;
        uint64_t dkim_verified;
        uint64_t dkim_signed;
        uint64_t dmarc_evaluated;
} AuthStats;

typedef enum AuthResolverBackend {
        AUTH_RESOLVER_STUB,
        AUTH_RESOLVER_RESOLVE1,
} AuthResolverBackend;

typedef struct Manager {
        char *config_path;
        AuthConfig *config;

        sd_event *event;
        sd_bus *bus;

        DnsResolver *resolver;
        AuthResolverBackend backend;

        /* Who may call (besides root): the uid of mailsec-proxy, when that user exists. */
        uid_t allowed_uids[1];
        size_t n_allowed_uids;

        AuthCheck *checks;              /* pending asynchronous calls */
        unsigned n_checks;

        /* DMARC aggregate-report store, opened at the first evaluation to record */
        struct DmarcStore *report_store;
        bool report_store_tried;

        AuthStats stats;
} Manager;

#define AUTHD_PROXY_USER "mailsec-proxy"
#define AUTHD_ADMIN_GROUP "mailsec"

int manager_new(const char *config_path, Manager **ret);
Manager* manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager*, manager_free);

/* Read and check the configuration (and the signing keys). */
int manager_load_config(Manager *m, ConfigError *error);

/* The event loop with SIGTERM/SIGINT exiting it. */
int manager_setup_event(Manager *m);

/* The resolver: the stub resolver for Servers=, else systemd-resolved when its name is
 * on the bus, else the stub resolver to 127.0.0.1:53. Needs the bus when not stub. */
int manager_setup_resolver(Manager *m);

/* Nothing pending: exit-on-idle may go. */
bool manager_check_idle(void *userdata);
