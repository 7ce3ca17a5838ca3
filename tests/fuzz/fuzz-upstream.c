/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-upstream: the backend SMTP client driven by whatever the backend sends. The first
 * input byte picks the configuration (bit 0: XCLIENT, bit 1: PROXY v2, bit 2: BackendTLS=may,
 * bit 3: the client says HELO); the rest is the backend's byte stream, written to an
 * abstract AF_UNIX socket the Upstream connects to. The client walks a fixed transaction
 * (hello, MAIL, RCPT, message, NOOP, QUIT; MAIL and RCPT in one pipelined call when the
 * backend offers PIPELINING, as mailsec-proxyd does) and goes on after every reply,
 * whatever its code, until the stream ends or a call fails. What the client sends is read
 * and dropped. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "fd-util.h"
#include "fuzz.h"
#include "log.h"
#include "proxyd-upstream.h"

#define FUZZ_UPSTREAM_INPUT_MAX ((size_t) 64U * 1024U)

static const char message[] = "Subject: fuzz\r\n\r\n.dot\r\nbody\r\n";

typedef struct FuzzState {
        sd_event *event;
        Upstream *upstream;
        unsigned step;
        bool esmtp;
        bool pipelined;         /* the call under way is upstream_command_pipelined() */
        int memfd;
} FuzzState;

static void fuzz_done(FuzzState *f) {
        f->upstream = upstream_quit_and_free(f->upstream);
        (void) sd_event_exit(f->event, 0);
}

static void on_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        FuzzState *f = userdata;
        int r;

        if (error < 0) {
                /* Dead: every call must say so. */
                if (upstream_command(u, "NOOP", USEC_PER_SEC, on_reply, f) != -ENOTCONN)
                        abort();
                f->upstream = upstream_free(f->upstream);
                (void) sd_event_exit(f->event, 0);
                return;
        }
        if (!reply || reply->code < 200 || reply->code > 599)
                abort();
        (void) upstream_capabilities(u);
        (void) upstream_has_capability(u, "SIZE", NULL);
        (void) upstream_tls_description(u);
        /* only the pipelined pair answers with the first command's reply */
        if (upstream_reply_to_first(u) && !f->pipelined)
                abort();
        f->pipelined = false;

        switch (f->step++) {
        case 0:
                r = upstream_hello(u, "client.example", f->esmtp, false, on_reply, f);
                break;
        case 1:
                if (upstream_has_capability(u, "PIPELINING", NULL)) {
                        r = upstream_command_pipelined(u, "MAIL FROM:<a@example.test>", USEC_PER_SEC,
                                                       "RCPT TO:<b@example.test>", USEC_PER_SEC, on_reply, f);
                        f->step++;      /* the RCPT went with it */
                        f->pipelined = r >= 0;
                        break;
                }
                r = upstream_command_pipelined(u, "MAIL FROM:<a@example.test>", USEC_PER_SEC,
                                               "RCPT TO:<b@example.test>", USEC_PER_SEC, on_reply, f);
                if (r != -EOPNOTSUPP && r != -ENOTCONN)
                        abort();        /* without PIPELINING nothing may be sent */
                r = upstream_command(u, "MAIL FROM:<a@example.test>", USEC_PER_SEC, on_reply, f);
                break;
        case 2:
                r = upstream_command(u, "RCPT TO:<b@example.test>", USEC_PER_SEC, on_reply, f);
                break;
        case 3:
                r = upstream_send_message(u, "Received: x\r\n", 13, f->memfd, STRLEN(message), on_reply, f);
                break;
        case 4:
                r = upstream_command(u, "NOOP", USEC_PER_SEC, on_reply, f);
                break;
        default:
                return fuzz_done(f);
        }
        if (r < 0)
                return fuzz_done(f);
}

static int on_server_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof(buf));

        if (k <= 0 && !(k < 0 && errno == EAGAIN))
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        /* Every wait has a 200 ms timeout: a call whose handler never ran is a bug. */
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static UpstreamConfig config;
        static int listen_fd = -1;
        _cleanup_close_ int server_fd = -1, memfd = -1;
        sd_event_source *server_source = NULL, *watchdog = NULL;
        FuzzState f = { .memfd = -1 };
        UpstreamConfig c;
        uint8_t flags;

        if (size < 1 || size > FUZZ_UPSTREAM_INPUT_MAX)
                return 0;
        flags = data[0];
        data++, size--;

        if (listen_fd < 0) {
                struct sockaddr_un *sun = (struct sockaddr_un*) &config.address.sockaddr;
                int n;

                log_set_max_level(secure_getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_CRIT);
                sun->sun_family = AF_UNIX;
                n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "mailsec-fuzz-upstream-%i",
                             (int) getpid());
                config.address.size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n);
                listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (listen_fd < 0 ||
                    bind(listen_fd, (struct sockaddr*) sun, config.address.size) < 0 ||
                    listen(listen_fd, 4) < 0)
                        abort();
                config.helo = strdup("proxy.test");
                config.tls = BACKEND_TLS_MAY;
                if (upstream_config_prepare(&config) < 0)
                        abort();
                config.connect_timeout = config.greeting_timeout = config.mail_timeout =
                        config.rcpt_timeout = config.data_init_timeout = config.data_block_timeout =
                        config.data_term_timeout = 200 * USEC_PER_MSEC;
        }

        c = config;
        c.client_info = flags & 1 ? BACKEND_CLIENT_INFO_XCLIENT :
                        flags & 2 ? BACKEND_CLIENT_INFO_PROXY_V2 : BACKEND_CLIENT_INFO_NONE;
        c.tls = flags & 4 ? BACKEND_TLS_MAY : BACKEND_TLS_NO;
        f.esmtp = !(flags & 8);

        memfd = memfd_create("fuzz-message", MFD_CLOEXEC);
        if (memfd < 0 || write(memfd, message, STRLEN(message)) != (ssize_t) STRLEN(message))
                abort();
        f.memfd = memfd;

        if (sd_event_new(&f.event) < 0)
                abort();
        if (upstream_new(f.event, &c, NULL, on_reply, &f, &f.upstream) < 0)
                abort();

        /* AF_UNIX connects at once; the backend's whole stream fits the socket buffer. */
        server_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (server_fd < 0)
                abort();
        if (size > 0 && write(server_fd, data, size) != (ssize_t) size)
                abort();
        (void) shutdown(server_fd, SHUT_WR);
        if (fd_nonblock(server_fd, true) < 0 ||
            sd_event_add_io(f.event, &server_source, server_fd, EPOLLIN, on_server_io, NULL) < 0 ||
            sd_event_add_time_relative(f.event, &watchdog, CLOCK_MONOTONIC, 5 * USEC_PER_SEC, 0,
                                       on_watchdog, &f) < 0)
                abort();

        (void) sd_event_loop(f.event);

        f.upstream = upstream_free(f.upstream);
        sd_event_source_disable_unref(server_source);
        sd_event_source_disable_unref(watchdog);
        sd_event_unref(f.event);
        return 0;
}
