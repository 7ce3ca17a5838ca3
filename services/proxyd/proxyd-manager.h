/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's state: listening sockets, the current configuration, the open sessions,
 * statistics and the bus connection. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf-parser.h"
#include "proxyd-conf.h"
#include "proxyd-session.h"

typedef struct ProxyStats {
        uint64_t sessions_total;
        uint64_t sessions_refused;
        uint64_t tls_sessions;
        uint64_t messages_relayed;
        uint64_t messages_rejected;
        uint64_t messages_tempfailed;
        uint64_t recipients_relayed;
        uint64_t bytes_relayed;
        uint64_t backend_failures;
        uint64_t protocol_errors;
        uint64_t messages_rejected_as_spam;     /* SpamRejectScore= (also in messages_rejected) */
} ProxyStats;

typedef struct Listener {
        Manager *manager;
        int fd;
        char *name;                     /* FileDescriptorName=: "smtp", "submission" */
        sd_event_source *source;
} Listener;

/* How many sessions each client address has open, for MaxSessionsPerClient=: a hash
 * table, so a new connection costs the same with ten sessions open or ten thousand. */
#define MANAGER_CLIENT_BUCKETS 1024
typedef struct ClientCount ClientCount;
struct ClientCount {
        ClientCount *next;
        unsigned n;
        char ip[];
};

/* An idle backend connection kept for the next session (BackendReuse=). It keeps the
 * configuration it was made under: its Upstream points into it. */
typedef struct PooledUpstream PooledUpstream;
struct PooledUpstream {
        PooledUpstream *next, *prev;    /* head: most recently parked */
        Upstream *upstream;
        ProxyConfig *config;
        usec_t expires;                 /* CLOCK_MONOTONIC */
};

struct Manager {
        sd_event *event;
        sd_bus *bus;
        sd_event_source *sigterm_source, *sigint_source, *sighup_source;

        char *config_path;
        ProxyConfig *config;

        Listener *listeners;
        size_t n_listeners;

        Session *sessions;
        unsigned n_sessions;
        ClientCount *clients[MANAGER_CLIENT_BUCKETS];  /* sessions per client address */

        PooledUpstream *pool_head, *pool_tail;
        unsigned n_pool;
        sd_event_source *pool_timer;            /* fires when the oldest one expires */

        uint64_t session_ids[64];               /* random ids, drawn in batches */
        size_t n_session_ids;

        ProxyStats stats;
};

int manager_new(const char *config_path, Manager **ret);
Manager* manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager*, manager_free);

/* Reads the configuration file (and drop-ins); on failure *error names file and line. */
int manager_load_config(Manager *m, ConfigError *error);
/* SIGHUP / Reload(): parse into a new configuration and swap only on success. New
 * sessions get the new configuration and TLS context; open ones keep theirs. */
int manager_reload(Manager *m, ConfigError *error);

/* sd_listen_fds_with_names(): "smtp" is required, "submission" is served the same way. */
int manager_listen_fds(Manager *m);
/* Adds one listening socket (also for tests). Takes fd. */
int manager_add_listener(Manager *m, int fd, const char *name);

int manager_setup_signals(Manager *m);
/* Closes every session with 421 and leaves the event loop. */
void manager_shutdown(Manager *m, int code);

/* Sessions from the same client address right now. */
unsigned manager_count_client(Manager *m, const char *client_ip);
int manager_client_ref(Manager *m, const char *client_ip);
void manager_client_unref(Manager *m, const char *client_ip);
/* Backend connection reuse. manager_pool_put() takes u: it parks it when the
 * configuration allows reuse and u is idle and alive, and closes it otherwise.
 * manager_pool_take() returns a parked, still open connection made under config c, or
 * NULL. manager_pool_flush() closes them all (reload, shutdown). */
void manager_pool_put(Manager *m, ProxyConfig *c, Upstream *u);
Upstream* manager_pool_take(Manager *m, ProxyConfig *c);
void manager_pool_flush(Manager *m);
/* Whether a session under c may hand its backend connection on at all. */
bool proxy_config_reuses_backend(const ProxyConfig *c);

/* A random 64-bit session id; getrandom() is called once per 64 sessions. */
uint64_t manager_next_session_id(Manager *m);
