/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "proxyd-manager.h"
#include "string-util.h"
#include "time-util.h"

/* Connections taken per wake-up of a listening socket. */
#define ACCEPTS_PER_EVENT 64U

int manager_new(const char *config_path, Manager **ret) {
        Manager *m;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->config_path = strdup(config_path);
        if (!m->config_path) {
                free(m);
                return -ENOMEM;
        }
        r = sd_event_default(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager* manager_free(Manager *m) {
        if (!m)
                return NULL;

        while (m->sessions)
                session_free(m->sessions);
        manager_pool_flush(m);
        sd_event_source_disable_unref(m->pool_timer);

        for (size_t i = 0; i < m->n_listeners; i++) {
                sd_event_source_disable_unref(m->listeners[i].source);
                safe_close(m->listeners[i].fd);
                free(m->listeners[i].name);
        }
        free(m->listeners);

        sd_event_source_disable_unref(m->sigterm_source);
        sd_event_source_disable_unref(m->sigint_source);
        sd_event_source_disable_unref(m->sighup_source);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        proxy_config_unref(m->config);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, ConfigError *error) {
        ProxyConfig *c;
        int r;

        r = proxy_config_load(m->config_path, &c, error);
        if (r < 0)
                return r;
        proxy_config_unref(m->config);
        m->config = c;
        /* Connections made under the old backend settings are not handed out again. */
        manager_pool_flush(m);
        return 0;
}

/* ---- Backend connection reuse ---- */

bool proxy_config_reuses_backend(const ProxyConfig *c) {
        /* XCLIENT and PROXY v2 bind a connection to one client. */
        return c->backend_reuse && c->backend_reuse_max > 0 &&
                c->upstream.client_info == BACKEND_CLIENT_INFO_NONE;
}

static void pool_unlink(Manager *m, PooledUpstream *p) {
        if (p->prev)
                p->prev->next = p->next;
        else
                m->pool_head = p->next;
        if (p->next)
                p->next->prev = p->prev;
        else
                m->pool_tail = p->prev;
        m->n_pool--;
}

/* Closes an entry; with quit, says QUIT first (the backend logs a clean end). */
static void pool_drop(Manager *m, PooledUpstream *p, bool quit) {
        pool_unlink(m, p);
        if (quit && !upstream_is_dead(p->upstream))
                upstream_quit_and_free(p->upstream);
        else
                upstream_free(p->upstream);
        proxy_config_unref(p->config);
        free(p);
}

static int on_pool_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void pool_arm_timer(Manager *m) {
        int r;

        if (!m->pool_tail) {
                if (m->pool_timer)
                        (void) sd_event_source_set_enabled(m->pool_timer, SD_EVENT_OFF);
                return;
        }
        if (!m->pool_timer) {
                r = sd_event_add_time(m->event, &m->pool_timer, CLOCK_MONOTONIC, m->pool_tail->expires,
                                      USEC_PER_SEC / 10, on_pool_timer, m);
                if (r < 0) {
                        log_warning_errno(r, "Cannot arm the backend connection reuse timer, ignoring: %m");
                        return;
                }
                (void) sd_event_source_set_description(m->pool_timer, "backend-reuse");
                return;
        }
        (void) sd_event_source_set_time(m->pool_timer, m->pool_tail->expires);
        (void) sd_event_source_set_enabled(m->pool_timer, SD_EVENT_ONESHOT);
}

static int on_pool_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t t = now(CLOCK_MONOTONIC);

        while (m->pool_tail && (m->pool_tail->expires <= t || upstream_is_dead(m->pool_tail->upstream)))
                pool_drop(m, m->pool_tail, true);
        pool_arm_timer(m);
        return 0;
}

static PooledUpstream* pooled_new(Upstream *u, ProxyConfig *c) {
        PooledUpstream *p = calloc(1, sizeof(PooledUpstream));

        if (!p)
                return NULL;
        p->upstream = u;
        p->config = proxy_config_ref(c);
        return p;
}

void manager_pool_put(Manager *m, ProxyConfig *c, Upstream *u) {
        PooledUpstream *p;

        if (!u)
                return;
        if (c != m->config || !proxy_config_reuses_backend(c) || !upstream_is_idle(u)) {
                upstream_quit_and_free(u);
                return;
        }
        /* Full: the oldest goes. */
        while (m->n_pool >= c->backend_reuse_max && m->pool_tail)
                pool_drop(m, m->pool_tail, true);

        p = pooled_new(u, c);
        if (!p) {
                upstream_quit_and_free(u);
                return;
        }
        p->expires = now(CLOCK_MONOTONIC) + c->backend_reuse_timeout;
        p->next = m->pool_head;
        if (m->pool_head)
                m->pool_head->prev = p;
        else
                m->pool_tail = p;
        m->pool_head = p;
        m->n_pool++;
        pool_arm_timer(m);
}

Upstream* manager_pool_take(Manager *m, ProxyConfig *c) {
        usec_t t;

        if (!m->pool_head || c != m->config || !proxy_config_reuses_backend(c))
                return NULL;

        t = now(CLOCK_MONOTONIC);
        while (m->pool_head) {
                PooledUpstream *p = m->pool_head;
                Upstream *u;

                if (upstream_is_dead(p->upstream) || p->expires <= t || !upstream_is_idle(p->upstream)) {
                        pool_drop(m, p, false);
                        continue;
                }
                u = TAKE_PTR(p->upstream);
                pool_unlink(m, p);
                proxy_config_unref(p->config);
                free(p);
                pool_arm_timer(m);
                return u;
        }
        pool_arm_timer(m);
        return NULL;
}

void manager_pool_flush(Manager *m) {
        while (m->pool_head)
                pool_drop(m, m->pool_head, true);
        pool_arm_timer(m);
}

int manager_reload(Manager *m, ConfigError *error) {
        ConfigError e = CONFIG_ERROR_NULL;
        int r;

        (void) sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration...");

        r = manager_load_config(m, &e);
        if (r < 0) {
                if (e.message)
                        log_error("%s:%u: %s; keeping the running configuration.", strna(e.filename), e.line, e.message);
                else
                        log_error_errno(r, "Cannot reload configuration, keeping the running one: %m");
                if (error)
                        *error = e;
                else
                        config_error_done(&e);
        } else
                log_info("Configuration reloaded from %s.", m->config_path);

        (void) sd_notifyf(0, "READY=1\nSTATUS=Relaying to the backend, %u session(s).", m->n_sessions);
        return r;
}

static size_t client_bucket(const char *ip) {
        uint32_t h = 2166136261U;      /* FNV-1a */

        for (const char *p = ip; *p; p++)
                h = (h ^ (uint8_t) *p) * 16777619U;
        return h % MANAGER_CLIENT_BUCKETS;
}

static ClientCount** client_find(Manager *m, const char *ip) {
        ClientCount **c = &m->clients[client_bucket(ip)];

        while (*c && !streq((*c)->ip, ip))
                c = &(*c)->next;
        return c;
}

unsigned manager_count_client(Manager *m, const char *client_ip) {
        ClientCount *c = *client_find(m, client_ip);

        return c ? c->n : 0;
}

int manager_client_ref(Manager *m, const char *client_ip) {
        ClientCount **c = client_find(m, client_ip);

        if (!*c) {
                size_t l = strlen(client_ip);

                *c = malloc(sizeof(ClientCount) + l + 1);
                if (!*c)
                        return -ENOMEM;
                (*c)->next = NULL;
                (*c)->n = 0;
                memcpy((*c)->ip, client_ip, l + 1);
        }
        (*c)->n++;
        return 0;
}

void manager_client_unref(Manager *m, const char *client_ip) {
        ClientCount **c = client_find(m, client_ip), *gone;

        if (!*c)
                return;
        assert((*c)->n > 0);
        if (--(*c)->n > 0)
                return;
        gone = *c;
        *c = gone->next;
        free(gone);
}

uint64_t manager_next_session_id(Manager *m) {
        if (m->n_session_ids == 0) {
                ssize_t k = getrandom(m->session_ids, sizeof(m->session_ids), GRND_NONBLOCK);

                if (k != (ssize_t) sizeof(m->session_ids)) {
                        /* No entropy yet (early boot): ids need to be unique, not secret. */
                        uint64_t t = now(CLOCK_REALTIME) ^ ((uint64_t) getpid() << 32);

                        for (size_t i = 0; i < ELEMENTSOF(m->session_ids); i++)
                                m->session_ids[i] = t + i * 0x9E3779B97F4A7C15ULL;
                }
                m->n_session_ids = ELEMENTSOF(m->session_ids);
        }
        return m->session_ids[--m->n_session_ids];
}

static bool errno_accept_transient(int e) {
        switch (e) {
        case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
        case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
                return true;
        default:
                return false;
        }
}

static void refuse(Manager *m, int fd, const char *why) {
        char buf[256];
        int n;

        m->stats.sessions_refused++;
        n = snprintf(buf, sizeof(buf), "421 4.7.0 %s Too many connections, try again later\r\n",
                     m->config->hostname);
        if (n > 0)
                (void) send(fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
        log_notice("Refused connection: %s.", why);
        safe_close(fd);
}

static int on_listener_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Manager *m = l->manager;

        for (unsigned i = 0; i < ACCEPTS_PER_EVENT; i++) {
                struct sockaddr_storage peer;
                socklen_t peer_len = sizeof(peer);
                int cfd, r;

                cfd = accept4(fd, (struct sockaddr*) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        /* The connection went away before we took it, or we are out of
                         * descriptors for a moment: keep serving the others. */
                        if (errno_accept_transient(errno))
                                continue;
                        log_warning_errno(-errno, "accept() on %s failed, ignoring: %m", strna(l->name));
                        return 0;
                }

                if (m->n_sessions >= m->config->max_sessions) {
                        refuse(m, cfd, "MaxSessions= reached");
                        continue;
                }
                if (m->config->max_sessions_per_client > 0) {
                        char buf[64];

                        if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) {
                                const void *a = peer.ss_family == AF_INET
                                        ? (const void*) &((struct sockaddr_in*) &peer)->sin_addr
                                        : (const void*) &((struct sockaddr_in6*) &peer)->sin6_addr;

                                if (inet_ntop(peer.ss_family, a, buf, sizeof(buf)) &&
                                    manager_count_client(m, buf) >= m->config->max_sessions_per_client) {
                                        refuse(m, cfd, "MaxSessionsPerClient= reached");
                                        continue;
                                }
                        }
                }

                r = session_new(m, cfd, (struct sockaddr*) &peer, peer_len, NULL);
                if (r < 0)
                        log_error_errno(r, "Cannot create session: %m");
        }
        return 0;
}

int manager_add_listener(Manager *m, int fd, const char *name) {
        _cleanup_close_ int fd_close = fd;
        Listener *l;
        int r;

        l = reallocarray(m->listeners, m->n_listeners + 1, sizeof(Listener));
        if (!l)
                return -ENOMEM;
        m->listeners = l;
        l = m->listeners + m->n_listeners;
        *l = (Listener) { .manager = m, .fd = -1 };

        l->name = strdup(name);
        if (!l->name)
                return -ENOMEM;

        r = fd_nonblock(fd, true);
        if (r < 0) {
                free(l->name);
                return r;
        }
        /* Accepted connections inherit TCP_NODELAY (NoDelay= in the socket unit does the
         * same): replies are small and already coalesced per pipelined group, and without
         * it the second reply of a group waits for the client's delayed ACK. */
        if (sd_is_socket(fd, AF_INET, SOCK_STREAM, 1) > 0 || sd_is_socket(fd, AF_INET6, SOCK_STREAM, 1) > 0)
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));

        r = sd_event_add_io(m->event, &l->source, fd, EPOLLIN, on_listener_io, l);
        if (r < 0) {
                free(l->name);
                return r;
        }
        (void) sd_event_source_set_description(l->source, name);
        l->fd = TAKE_FD(fd_close);
        m->n_listeners++;

        /* Listener structs moved: refresh the userdata of every source. */
        for (size_t i = 0; i < m->n_listeners; i++)
                (void) sd_event_source_set_userdata(m->listeners[i].source, m->listeners + i);
        return 0;
}

int manager_listen_fds(Manager *m) {
        _cleanup_strv_free_ char **names = NULL;
        bool have_smtp = false;
        int n, r = 0;

        n = sd_listen_fds_with_names(/* unset_environment= */ true, &names);
        if (n < 0)
                return log_error_errno(n, "Cannot take sockets from the service manager: %m");

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "unknown";

                if (r < 0 || (!streq(name, "smtp") && !streq(name, "submission"))) {
                        if (r >= 0)
                                log_warning("Ignoring socket with unexpected name \"%s\".", name);
                        safe_close(fd);
                        continue;
                }
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        log_error("Socket \"%s\" is not a listening stream socket.", name);
                        safe_close(fd);
                        r = -EINVAL;
                        continue;
                }
                r = manager_add_listener(m, fd, name);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on \"%s\": %m", name);
                        continue;
                }
                if (streq(name, "smtp"))
                        have_smtp = true;
        }
        if (r < 0)
                return r;

        if (!have_smtp)
                return log_error_errno(-EBADF, "No socket named \"smtp\" was passed (FileDescriptorName=smtp); "
                                       "start mailsec-proxyd through mailsec-proxyd.socket.");
        return 0;
}

void manager_shutdown(Manager *m, int code) {
        log_info("Shutting down, closing %u session(s).", m->n_sessions);
        while (m->sessions)
                session_shutdown(m->sessions);
        (void) sd_event_exit(m->event, code);
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) sd_notify(0, "STOPPING=1\nSTATUS=Shutting down...");
        manager_shutdown(m, 0);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) manager_reload(m, NULL);
        return 0;
}

int manager_setup_signals(Manager *m) {
        sigset_t ss;
        int r;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return -errno;
        /* A client closing its connection must not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_add_signal(m->event, &m->sigterm_source, SIGTERM, on_exit_signal, m);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, &m->sigint_source, SIGINT, on_exit_signal, m);
        if (r < 0)
                return r;
        return sd_event_add_signal(m->event, &m->sighup_source, SIGHUP, on_sighup, m);
}
