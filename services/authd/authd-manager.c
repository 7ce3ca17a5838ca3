/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "authd-check.h"
#include "authd-manager.h"
#include "cleanup.h"
#include "log.h"
#include "string-util.h"

int manager_new(const char *config_path, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager* manager_free(Manager *m) {
        if (!m)
                return NULL;
        auth_check_free_all(m);
        dns_resolver_free(m->resolver);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        auth_config_free(m->config);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, ConfigError *error) {
        _cleanup_(auth_config_freep) AuthConfig *c = NULL;
        struct passwd *pw;
        int r;

        r = auth_config_new(&c);
        if (r < 0)
                return r;
        r = auth_config_parse_file(c, m->config_path, error);
        if (r < 0 && r != -ENOENT)
                return r;
        r = auth_config_prepare(c, m->config_path, true, error);
        if (r < 0)
                return r;
        auth_config_free(m->config);
        m->config = TAKE_PTR(c);

        /* The proxy's user, when it exists on this host (root is always allowed). */
        m->n_allowed_uids = 0;
        errno = 0;
        pw = getpwnam(AUTHD_PROXY_USER);
        if (pw)
                m->allowed_uids[m->n_allowed_uids++] = pw->pw_uid;
        else
                log_debug("User %s does not exist; only root and the group %s may call.",
                          AUTHD_PROXY_USER, AUTHD_ADMIN_GROUP);
        return 0;
}

int manager_setup_event(Manager *m) {
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot enable the watchdog, ignoring: %m");
        /* SIGTERM and SIGINT: bus_event_loop_with_idle() lets the checks in hand end. */
        return 0;
}

static bool resolved_on_bus(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0, r;

        if (!bus)
                return false;
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &e, &reply, "s", "org.freedesktop.resolve1");
        if (r < 0)
                return false;
        r = sd_bus_message_read(reply, "b", &has);
        return r >= 0 && has;
}

int manager_setup_resolver(Manager *m) {
        _cleanup_free_ DnsServerConfig *servers = NULL;
        size_t n_servers;
        int r;

        if (!m->config->servers && resolved_on_bus(m->bus)) {
                DnsResolve1Config rc = {
                        .trust = DNS_SERVER_TRUST_AUTO,
                        .timeout = m->config->resolver_timeout,
                };

                r = dns_resolver_new_resolve1(m->event, m->bus, &rc, &m->resolver);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up lookups through systemd-resolved: %m");
                m->backend = AUTH_RESOLVER_RESOLVE1;
                log_info("DNS lookups go through systemd-resolved.");
                return 0;
        }

        r = auth_config_servers(m->config, &servers, &n_servers);
        if (r < 0)
                return log_error_errno(r, "Cannot read Servers=: %m");
        DnsStubConfig sc = {
                .servers = servers,
                .n_servers = n_servers,
                .timeout = m->config->resolver_timeout,
        };
        r = dns_resolver_new_stub(m->event, &sc, &m->resolver);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the stub resolver: %m");
        m->backend = AUTH_RESOLVER_STUB;
        log_info("DNS lookups go to %s%s.", m->config->servers ? m->config->servers[0] : AUTHD_DEFAULT_SERVER,
                 n_servers > 1 ? " and others" : "");
        return 0;
}

bool manager_check_idle(void *userdata) {
        Manager *m = userdata;

        return m->n_checks == 0;
}
