/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The whole SMTP session of mailsec-proxyd, fed one byte stream as a client would send
 * it: line reading, pipelining, the command table, DATA/BDAT scanning and spooling,
 * limits and errors. The session talks to a real socketpair; the backend is a stub
 * Upstream (defined here, in place of proxyd-upstream.c) that answers every call with a
 * 250 on the next event loop iteration, so runs are deterministic. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "fuzz.h"
#include "log.h"
#include "memfd-util.h"
#include "proxyd-manager.h"
#include "proxyd-session.h"
#include "proxyd-upstream.h"
#include "smtp-reply.h"
#include "string-util.h"

/* Checks with side effects stay in builds with NDEBUG. */
#define assert_se(expr)                 \
        do {                            \
                if (!(expr))            \
                        abort();        \
        } while (false)

#define FUZZ_MAX ((size_t) 64U * 1024U)
#define LOOP_MAX 20000U

/* ---- The stub Upstream ---- */

struct Upstream {
        sd_event *event;
        sd_event_source *defer;
        UpstreamHandler handler;
        void *userdata;
        const char *reply;
        SmtpReply caps;
        bool reply_to_first;
        char *hello_name;
};

static const char EHLO_REPLY[] = "250-backend\r\n250-SIZE 3000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n"
                                 "250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n";

static int on_stub_defer(sd_event_source *s, void *userdata) {
        Upstream *u = userdata;
        SmtpReply r = SMTP_REPLY_NULL;
        UpstreamHandler h = u->handler;

        u->defer = sd_event_source_disable_unref(u->defer);
        u->handler = NULL;
        assert_se(smtp_reply_parse(u->reply, &r) >= 0);
        if (strstr(u->reply, "SIZE")) {
                smtp_reply_done(&u->caps);
                assert_se(smtp_reply_parse(u->reply, &u->caps) >= 0);
        }
        h(u, &r, 0, u->userdata);      /* may free u */
        smtp_reply_done(&r);
        return 0;
}

static int stub_call(Upstream *u, const char *reply, UpstreamHandler handler, void *userdata) {
        assert_se(!u->handler);            /* the session never has two calls pending */
        u->handler = handler;
        u->userdata = userdata;
        u->reply = reply;
        u->reply_to_first = false;
        return sd_event_add_defer(u->event, &u->defer, on_stub_defer, u);
}

int upstream_new(sd_event *e, const UpstreamConfig *c, const UpstreamClientInfo *info,
                 UpstreamHandler handler, void *userdata, Upstream **ret) {
        Upstream *u = calloc(1, sizeof(Upstream));
        int r;

        if (!u)
                return -ENOMEM;
        u->event = e;
        r = stub_call(u, "220 backend ESMTP\r\n", handler, userdata);
        if (r < 0) {
                free(u);
                return r;
        }
        *ret = u;
        return 0;
}

int upstream_hello(Upstream *u, const char *helo, bool esmtp, bool client_tls,
                   UpstreamHandler handler, void *userdata) {
        free(u->hello_name);
        u->hello_name = esmtp ? strdup(helo) : NULL;
        return stub_call(u, esmtp ? EHLO_REPLY : "250 backend\r\n", handler, userdata);
}

bool upstream_introduced_as(Upstream *u, const char *helo) {
        return u && !u->defer && u->caps.code && u->hello_name && helo && streq(u->hello_name, helo);
}

int upstream_command(Upstream *u, const char *line, usec_t timeout, UpstreamHandler handler, void *userdata) {
        /* Whatever the session relays must be one clean line. */
        assert_se(!strpbrk(line, "\r\n"));
        return stub_call(u, startswith_no_case(line, "RCPT TO:<bad") ? "550 5.1.1 No such user\r\n"
                                                                     : "250 2.0.0 Ok\r\n",
                         handler, userdata);
}

int upstream_command_pipelined(Upstream *u, const char *first, usec_t first_timeout,
                               const char *second, usec_t second_timeout,
                               UpstreamHandler handler, void *userdata) {
        int r;

        /* only a held-back MAIL goes ahead of a RCPT */
        assert_se(!strpbrk(first, "\r\n") && !strpbrk(second, "\r\n"));
        assert_se(startswith_no_case(first, "MAIL FROM:") && startswith_no_case(second, "RCPT TO:"));
        if (startswith_no_case(first, "MAIL FROM:<bad")) {
                r = stub_call(u, "553 5.7.1 Sender refused\r\n", handler, userdata);
                u->reply_to_first = true;
                return r;
        }
        return upstream_command(u, second, second_timeout, handler, userdata);
}

bool upstream_reply_to_first(Upstream *u) {
        return u && u->reply_to_first;
}

int upstream_send_message(Upstream *u, const char *prefix, size_t prefix_len, int memfd, uint64_t size,
                          UpstreamHandler handler, void *userdata) {
        uint64_t sealed_size;

        /* The session hands over only sealed, complete content. */
        assert_se(memfd_check_sealed(memfd, UINT64_MAX, &sealed_size) >= 0);
        assert_se(sealed_size == size);
        assert_se(prefix_len > 0 && prefix[prefix_len - 1] == '\n');
        return stub_call(u, "250 2.0.0 Ok: queued\r\n", handler, userdata);
}

const SmtpReply* upstream_capabilities(Upstream *u) {
        return u->caps.code ? &u->caps : NULL;
}

bool upstream_has_capability(Upstream *u, const char *keyword, const char **ret_param) {
        return u->caps.code && smtp_reply_ehlo_has(&u->caps, keyword, ret_param);
}

const char* upstream_tls_description(Upstream *u) {
        return NULL;
}

int upstream_data_start(Upstream *u, UpstreamHandler handler, void *userdata) {
        /* DATA ahead of the message: the session must not call again before the 354. */
        return stub_call(u, "354 Go ahead\r\n", handler, userdata);
}

bool upstream_data_ready(Upstream *u) {
        return u;
}

bool upstream_is_idle(Upstream *u) {
        return u && !u->defer;
}

bool upstream_is_dead(Upstream *u) {
        return !u;
}

Upstream* upstream_free(Upstream *u) {
        if (!u)
                return NULL;
        sd_event_source_disable_unref(u->defer);
        smtp_reply_done(&u->caps);
        free(u->hello_name);
        free(u);
        return NULL;
}

Upstream* upstream_quit_and_free(Upstream *u) {
        return upstream_free(u);
}

int upstream_config_prepare(UpstreamConfig *c) {
        return 0;
}

void upstream_config_done(UpstreamConfig *c) {
        free(c->ca_file);
        free(c->tls_name);
        free(c->helo);
        c->ca_file = c->tls_name = c->helo = NULL;
}

int upstream_parse_pin(const char *s, uint8_t ret[static 32]) {
        return -EINVAL;
}

const char* backend_client_info_to_string(BackendClientInfo i) {
        return NULL;
}

BackendClientInfo backend_client_info_from_string(const char *s) {
        return streq(s, "none") ? BACKEND_CLIENT_INFO_NONE : _BACKEND_CLIENT_INFO_INVALID;
}

const char* backend_tls_to_string(BackendTls t) {
        return NULL;
}

BackendTls backend_tls_from_string(const char *s) {
        return streq(s, "no") ? BACKEND_TLS_NO : _BACKEND_TLS_INVALID;
}

int proxy_v2_header_build(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *buf, size_t size) {
        return -EOPNOTSUPP;
}

int xtext_encode(const char *s, char **ret) {
        return -EOPNOTSUPP;
}

size_t smtp_dot_stuff(const char *in, size_t len, bool *at_line_start, char *out) {
        return 0;
}

/* ---- The target ---- */

static const char CONFIG[] =
        "[Proxy]\nHostname=mx.test\nBackendClientInfo=none\nBackendTLS=no\n"
        "[Limits]\nMaxLineLength=512\nMaxMessageSize=4K\nMaxRecipients=3\nMaxBadCommands=20\n"
        "MaxHeaderSize=1K\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_close_ int client = -1;
        int fds[2], r;
        size_t sent = 0;
        char buf[4096];

        if (size > FUZZ_MAX)
                return 0;

        log_set_max_level(LOG_CRIT);

        assert_se(manager_new("/dev/null", &m) >= 0);
        assert_se(proxy_config_new(&m->config) >= 0);
        assert_se(proxy_config_parse_text(m->config, "fuzz.conf", CONFIG, NULL) >= 0);
        assert_se(proxy_config_prepare(m->config, "fuzz.conf", /* load_tls= */ false, NULL) >= 0);

        assert_se(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) >= 0);
        client = fds[1];
        assert_se(session_new(m, fds[0], NULL, 0, NULL) >= 0);

        for (unsigned i = 0; i < LOOP_MAX && m->n_sessions > 0; i++) {
                if (sent < size) {
                        ssize_t k = send(client, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (k > 0)
                                sent += k;
                        if (sent == size)
                                (void) shutdown(client, SHUT_WR);
                } else if (size == 0 && i == 0)
                        (void) shutdown(client, SHUT_WR);

                /* Read the replies so the session never waits for us. */
                while (recv(client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                        ;

                r = sd_event_run(m->event, 0);
                assert_se(r >= 0);
                if (r == 0 && sent == size) {
                        /* Nothing to do and all input delivered: the session waits for a
                         * timeout only. */
                        while (recv(client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                                ;
                        if (sd_event_run(m->event, 0) == 0)
                                break;
                }
        }

        if (getenv("MAILSEC_FUZZ_DEBUG"))
                fprintf(stderr, "relayed=%" PRIu64 " rejected=%" PRIu64 " protocol-errors=%" PRIu64 " open=%u\n",
                        m->stats.messages_relayed, m->stats.messages_rejected, m->stats.protocol_errors,
                        m->n_sessions);
        return 0;
}
