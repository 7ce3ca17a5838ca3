/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The SMTP client towards the next hop.
 *
 * One Upstream is one non-blocking TCP (or AF_UNIX) connection driven by sd-event. All I/O
 * happens in on_upstream_io(); after every I/O or TLS event upstream_strategy() recomputes
 * which events the fd needs (Postfix tlsp_strategy() style), and no other code touches the
 * event mask. Each wait for the backend has its own deadline on one timer source.
 *
 * SECURITY: everything the backend sends is parsed line by line with smtp_reply_feed(),
 * bounded by a fixed input buffer; a line without CRLF or a reply the parser refuses kills
 * the connection (-EBADMSG). Bytes still buffered when the backend's 220 to STARTTLS
 * arrives are refused (plaintext injection). Output is bounded as well: message content
 * is read from the memfd in chunks only when the output buffer has drained.
 *
 * Handlers may free the Upstream: the object is reference counted internally and every
 * dispatch path holds a reference and checks whether it was freed meanwhile. */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "log.h"
#include "proxyd-upstream.h"
#include "string-util.h"

#define UPSTREAM_IN_MAX (SMTP_REPLY_LINE_MAX + 2)      /* one line with CRLF */
#define UPSTREAM_CHUNK (64U * 1024U)                    /* pread() size for message content */
#define UPSTREAM_OUT_MAX (2 * UPSTREAM_CHUNK + 64 * 1024U)
#define UPSTREAM_OUT_LOW (32U * 1024U)                  /* refill content below this */
#define UPSTREAM_COMMAND_MAX 4096U                      /* longest command line we send */
#define UPSTREAM_DEFAULT_HELO "localhost.localdomain"

#define IN_SET_DATA(s) ((s) == UPSTREAM_DATA_BODY || (s) == UPSTREAM_DATA_TERM)
#define IN_SET_INET(f) ((f) == AF_INET || (f) == AF_INET6)

static void* memdup(const void *p, size_t n) {
        void *q = malloc(n);
        return q ? memcpy(q, p, n) : NULL;
}

static const uint8_t proxy_v2_signature[12] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

static const char* const backend_client_info_table[_BACKEND_CLIENT_INFO_MAX] = {
        [BACKEND_CLIENT_INFO_XCLIENT] = "xclient",
        [BACKEND_CLIENT_INFO_PROXY_V2] = "proxy-v2",
        [BACKEND_CLIENT_INFO_NONE] = "none",
};

static const char* const backend_tls_table[_BACKEND_TLS_MAX] = {
        [BACKEND_TLS_NO] = "no",
        [BACKEND_TLS_MAY] = "may",
        [BACKEND_TLS_VERIFY] = "verify",
};

const char* backend_client_info_to_string(BackendClientInfo i) {
        if (i < 0 || i >= _BACKEND_CLIENT_INFO_MAX)
                return NULL;
        return backend_client_info_table[i];
}

BackendClientInfo backend_client_info_from_string(const char *s) {
        if (!s)
                return _BACKEND_CLIENT_INFO_INVALID;
        for (int i = 0; i < _BACKEND_CLIENT_INFO_MAX; i++)
                if (streq(backend_client_info_table[i], s))
                        return i;
        return _BACKEND_CLIENT_INFO_INVALID;
}

const char* backend_tls_to_string(BackendTls t) {
        if (t < 0 || t >= _BACKEND_TLS_MAX)
                return NULL;
        return backend_tls_table[t];
}

BackendTls backend_tls_from_string(const char *s) {
        if (!s)
                return _BACKEND_TLS_INVALID;
        for (int i = 0; i < _BACKEND_TLS_MAX; i++)
                if (streq(backend_tls_table[i], s))
                        return i;
        return _BACKEND_TLS_INVALID;
}

typedef enum UpstreamState {
        UPSTREAM_CONNECTING,
        UPSTREAM_GREETING,      /* first 220 */
        UPSTREAM_EHLO,          /* our own EHLO after the greeting */
        UPSTREAM_HELO,          /* HELO after a refused EHLO */
        UPSTREAM_STARTTLS,      /* its 220 */
        UPSTREAM_HANDSHAKE,
        UPSTREAM_EHLO_TLS,      /* EHLO again inside TLS */
        UPSTREAM_IDLE,
        UPSTREAM_XCLIENT,       /* the new 220 after XCLIENT */
        UPSTREAM_HELLO,         /* EHLO/HELO of upstream_hello() */
        UPSTREAM_COMMAND,
        UPSTREAM_PIPE_FIRST,    /* the first reply of upstream_command_pipelined() */
        UPSTREAM_PIPE_SKIP,     /* the first failed: the second's reply is not wanted */
        UPSTREAM_DATA_INIT,     /* 354 */
        UPSTREAM_DATA_EARLY,    /* 354 to a DATA sent before the message was complete */
        UPSTREAM_DATA_READY,    /* the backend said 354 and waits for the message */
        UPSTREAM_DATA_BODY,     /* content being queued; no reply expected yet */
        UPSTREAM_DATA_TERM,     /* everything queued; the final reply */
        UPSTREAM_DEAD,
} UpstreamState;

struct Upstream {
        unsigned n_ref;
        bool freed;

        sd_event *event;
        const UpstreamConfig *config;
        UpstreamState state;
        int fd;
        sd_event_source *io, *timer, *defer;
        int deferred_error;

        UpstreamHandler handler;
        void *userdata;

        /* Input: at most one line plus what arrived with it. */
        char in[UPSTREAM_IN_MAX];
        size_t in_len;
        SmtpReply reply;        /* being assembled */
        SmtpReply greeting;     /* kept until the connection phase ends */
        SmtpReply ehlo;         /* capabilities (code 0: none) */
        bool have_ehlo;
        char *xclient_attrs;    /* parameter of XCLIENT in our first EHLO reply */
        bool xclient_done;      /* the backend accepted XCLIENT on this connection */

        /* Output */
        char *out;
        size_t out_start, out_end;

        /* TLS */
        SSL *ssl;
        bool handshake_wants_write, read_wants_write, write_wants_read;
        char *tls_description;

        /* Message relay */
        bool chunking;
        char *prefix;
        size_t prefix_len;
        int memfd;
        uint64_t size, offset;          /* over prefix + content */
        bool at_line_start;
        char last[2];
        char *chunk;
        bool term_timer_armed;

        /* upstream_hello() in progress */
        char *hello_name;
        bool hello_esmtp;               /* the client said EHLO */
        bool hello_verb_ehlo;           /* we said EHLO for it (HELO after a refused EHLO) */

        /* upstream_command_pipelined(): the first command failed, its reply is kept
         * until the second's has been read, and then goes to the handler */
        SmtpReply first_reply;
        bool reply_to_first;
        usec_t second_timeout;

        UpstreamClientInfo info;
        struct sockaddr_storage client, local;
};

static void upstream_strategy(Upstream *u);
static void upstream_start_handshake(Upstream *u);

static Upstream* upstream_ref(Upstream *u) {
        u->n_ref++;
        return u;
}

static void upstream_close(Upstream *u) {
        u->io = sd_event_source_disable_unref(u->io);
        u->timer = sd_event_source_disable_unref(u->timer);
        u->defer = sd_event_source_disable_unref(u->defer);
        if (u->ssl) {
                SSL_free(u->ssl);
                u->ssl = NULL;
        }
        u->fd = safe_close(u->fd);
        u->state = UPSTREAM_DEAD;
}

static Upstream* upstream_unref(Upstream *u) {
        if (!u)
                return NULL;
        assert(u->n_ref > 0);
        if (--u->n_ref > 0)
                return NULL;

        upstream_close(u);
        smtp_reply_done(&u->reply);
        smtp_reply_done(&u->greeting);
        smtp_reply_done(&u->ehlo);
        free(u->xclient_attrs);
        free(u->out);
        free(u->tls_description);
        free(u->prefix);
        free(u->chunk);
        free(u->hello_name);
        smtp_reply_done(&u->first_reply);
        sd_event_unref(u->event);
        free(u);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Upstream*, upstream_unref);

Upstream* upstream_free(Upstream *u) {
        if (!u)
                return NULL;
        assert(!u->freed);
        u->freed = true;
        u->handler = NULL;
        upstream_close(u);
        upstream_unref(u);
        return NULL;
}

static size_t upstream_out_pending(const Upstream *u) {
        return u->out_end - u->out_start;
}

static int upstream_queue(Upstream *u, const void *p, size_t n) {
        if (u->out_start > 0 && u->out_end + n > UPSTREAM_OUT_MAX) {
                memmove(u->out, u->out + u->out_start, upstream_out_pending(u));
                u->out_end -= u->out_start;
                u->out_start = 0;
        }
        if (u->out_end + n > UPSTREAM_OUT_MAX)
                return -ENOBUFS;
        memcpy(u->out + u->out_end, p, n);
        u->out_end += n;
        return 0;
}

/* One command line with CRLF; refuses CR/LF inside (no command injection). */
static int upstream_queue_command(Upstream *u, const char *line) {
        size_t n = strlen(line);

        if (n == 0 || n > UPSTREAM_COMMAND_MAX || strpbrk(line, "\r\n"))
                return -EINVAL;
        log_debug("upstream: > %s", line);
        if (upstream_out_pending(u) + n + 2 > UPSTREAM_OUT_MAX)
                return -ENOBUFS;
        (void) upstream_queue(u, line, n);
        (void) upstream_queue(u, "\r\n", 2);
        return 0;
}

static int on_upstream_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int upstream_arm_timer(Upstream *u, usec_t timeout) {
        int r;

        if (timeout == 0 || timeout == USEC_INFINITY) {
                if (u->timer)
                        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
                return 0;
        }

        usec_t deadline = now(CLOCK_MONOTONIC);
        deadline = timeout > USEC_INFINITY - deadline ? USEC_INFINITY - 1 : deadline + timeout;

        if (!u->timer)
                return sd_event_add_time(u->event, &u->timer, CLOCK_MONOTONIC, deadline, 0,
                                         on_upstream_timer, u);
        r = sd_event_source_set_time(u->timer, deadline);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
}

static void upstream_disarm_timer(Upstream *u) {
        (void) upstream_arm_timer(u, 0);
}

/* Ends the pending call. An error kills the connection first. The handler may free u;
 * callers hold a reference and check u->freed afterwards. */
/* Ends the call under way: the connection rests in state rest (normally IDLE), or is
 * closed. */
static void upstream_complete_full(Upstream *u, SmtpReply *reply, int error, bool close, UpstreamState rest) {
        UpstreamHandler h = u->handler;
        void *userdata = u->userdata;
        SmtpReply r = SMTP_REPLY_NULL;

        u->handler = NULL;
        u->userdata = NULL;
        upstream_disarm_timer(u);

        if (error < 0) {
                upstream_close(u);
                free(u->xclient_attrs);
                u->xclient_attrs = NULL;
        } else {
                /* Move the reply out, so that the handler may issue the next command. */
                r = *reply;
                *reply = (SmtpReply) SMTP_REPLY_NULL;
                if (close)
                        upstream_close(u);
                else if (u->state != UPSTREAM_DEAD)
                        u->state = rest;
        }

        if (h)
                h(u, error < 0 ? NULL : &r, error < 0 ? error : 0, userdata);
        smtp_reply_done(&r);
}

static void upstream_complete(Upstream *u, SmtpReply *reply, int error) {
        upstream_complete_full(u, reply, error, false, UPSTREAM_IDLE);
}

static void upstream_fail(Upstream *u, int error) {
        assert(error < 0);
        upstream_complete(u, NULL, error);
}

/* The backend broke the protocol: the one thing worth a warning here. */
static void upstream_protocol_error(Upstream *u, int error, const char *what) {
        log_warning("Backend broke the SMTP protocol: %s", what);
        upstream_fail(u, error);
}

static int log_openssl_error_cb(const char *str, size_t len, void *u) {
        log_debug("upstream: OpenSSL: %.*s", (int) len, str);
        return 1;
}

/* Maps an OpenSSL failure to an errno once and logs the error queue at debug level. */
static int upstream_ssl_error(Upstream *u, int ret, int err) {
        int r;

        switch (err) {
        case SSL_ERROR_ZERO_RETURN:
                r = -ECONNRESET;
                break;
        case SSL_ERROR_SYSCALL:
                r = ERR_peek_error() == 0 && ret < 0 && errno > 0 ? -errno : -ECONNRESET;
                break;
        case SSL_ERROR_SSL:
                if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                        r = -ECONNRESET;
                else
                        r = -EPROTO;
                break;
        default:
                r = -EIO;
        }

        if (u->ssl && SSL_get_verify_result(u->ssl) != X509_V_OK)
                log_debug("upstream: certificate verification: %s",
                          X509_verify_cert_error_string(SSL_get_verify_result(u->ssl)));
        ERR_print_errors_cb(log_openssl_error_cb, NULL);
        ERR_clear_error();
        return r;
}

/* Returns 1 on progress, 0 when blocked, <0 on error. */
static int upstream_write(Upstream *u) {
        bool progress = false;

        while (upstream_out_pending(u) > 0) {
                size_t n = upstream_out_pending(u);
                ssize_t k;

                if (u->ssl) {
                        ERR_clear_error();
                        int l = SSL_write(u->ssl, u->out + u->out_start, (int) MIN(n, (size_t) INT_MAX));
                        if (l <= 0) {
                                int err = SSL_get_error(u->ssl, l);
                                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                                        u->write_wants_read = err == SSL_ERROR_WANT_READ;
                                        break;
                                }
                                return upstream_ssl_error(u, l, err);
                        }
                        u->write_wants_read = false;
                        k = l;
                } else {
                        k = send(u->fd, u->out + u->out_start, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        break;
                                return -errno;
                        }
                }
                u->out_start += (size_t) k;
                progress = true;
        }

        if (upstream_out_pending(u) == 0)
                u->out_start = u->out_end = 0;
        return progress;
}

static int upstream_queue_hello(Upstream *u, const char *verb, const char *name) {
        _cleanup_free_ char *line = NULL;

        if (asprintf_safe(&line, "%s %s", verb, name) < 0)
                return -ENOMEM;
        return upstream_queue_command(u, line);
}

static const char* upstream_own_helo(Upstream *u) {
        return isempty(u->config->helo) ? UPSTREAM_DEFAULT_HELO : u->config->helo;
}

/* The connection phase of upstream_new() is done: hand the kept greeting over. */
static void upstream_connected(Upstream *u) {
        upstream_complete(u, &u->greeting, 0);
}

static int upstream_store_ehlo(Upstream *u, SmtpReply *reply) {
        smtp_reply_done(&u->ehlo);
        u->have_ehlo = false;
        if (!reply)
                return 0;

        /* Keep a copy; the reply itself goes to the handler. */
        u->ehlo.code = reply->code;
        u->ehlo.complete = reply->complete;
        u->ehlo.has_enhanced = reply->has_enhanced;
        u->ehlo.enh_class = reply->enh_class;
        u->ehlo.enh_subject = reply->enh_subject;
        u->ehlo.enh_detail = reply->enh_detail;
        for (size_t i = 0; i < reply->n_lines; i++)
                if (strv_extend(&u->ehlo.lines, reply->lines[i]) < 0) {
                        smtp_reply_done(&u->ehlo);
                        return -ENOMEM;
                }
        u->ehlo.n_lines = reply->n_lines;
        u->have_ehlo = true;
        return 0;
}

static int upstream_fill_body(Upstream *u);

/* A complete reply arrived. */
static void upstream_dispatch(Upstream *u) {
        SmtpReply *reply = &u->reply;
        const char *param;
        int r;

        log_debug("upstream: < %u %s%s", reply->code, reply->n_lines > 0 ? reply->lines[0] : "",
                  reply->n_lines > 1 ? " ..." : "");

        switch (u->state) {

        case UPSTREAM_GREETING:
                if (reply->code != 220) {
                        /* 4xx/5xx (or 554 "no service"): that is the answer. */
                        upstream_complete(u, reply, 0);
                        return;
                }
                smtp_reply_done(&u->greeting);
                u->greeting = *reply;
                *reply = (SmtpReply) SMTP_REPLY_NULL;
                /* Our own EHLO is only needed to learn STARTTLS or XCLIENT; otherwise the
                 * client's EHLO (upstream_hello()) is the first, saving a round trip. */
                if (u->config->tls == BACKEND_TLS_NO && u->config->client_info != BACKEND_CLIENT_INFO_XCLIENT)
                        return upstream_connected(u);
                r = upstream_queue_hello(u, "EHLO", upstream_own_helo(u));
                if (r < 0)
                        return upstream_fail(u, r);
                u->state = UPSTREAM_EHLO;
                (void) upstream_arm_timer(u, u->config->greeting_timeout);
                return;

        case UPSTREAM_EHLO:
                if (reply->code / 100 == 5 && u->config->tls != BACKEND_TLS_VERIFY) {
                        /* An old server: HELO, without extensions and without TLS. */
                        smtp_reply_done(reply);
                        r = upstream_queue_hello(u, "HELO", upstream_own_helo(u));
                        if (r < 0)
                                return upstream_fail(u, r);
                        u->state = UPSTREAM_HELO;
                        (void) upstream_arm_timer(u, u->config->greeting_timeout);
                        return;
                }
                if (reply->code != 250) {
                        upstream_complete(u, reply, 0);
                        return;
                }
                if (upstream_store_ehlo(u, reply) < 0)
                        return upstream_fail(u, -ENOMEM);
                if (smtp_reply_ehlo_has(reply, "XCLIENT", &param)) {
                        free(u->xclient_attrs);
                        u->xclient_attrs = strdup(strempty(param));
                        if (!u->xclient_attrs)
                                return upstream_fail(u, -ENOMEM);
                }
                smtp_reply_done(reply);

                if (u->config->tls != BACKEND_TLS_NO) {
                        if (smtp_reply_ehlo_has(&u->ehlo, "STARTTLS", NULL) && u->config->ssl_ctx) {
                                r = upstream_queue_command(u, "STARTTLS");
                                if (r < 0)
                                        return upstream_fail(u, r);
                                u->state = UPSTREAM_STARTTLS;
                                (void) upstream_arm_timer(u, u->config->greeting_timeout);
                                return;
                        }
                        if (u->config->tls == BACKEND_TLS_VERIFY) {
                                log_debug("upstream: backend does not offer STARTTLS, but it is required.");
                                return upstream_fail(u, -EPROTONOSUPPORT);
                        }
                }
                return upstream_connected(u);

        case UPSTREAM_HELO:
                if (reply->code != 250) {
                        upstream_complete(u, reply, 0);
                        return;
                }
                smtp_reply_done(reply);
                (void) upstream_store_ehlo(u, NULL);
                return upstream_connected(u);

        case UPSTREAM_STARTTLS:
                if (reply->code != 220) {
                        if (u->config->tls == BACKEND_TLS_VERIFY) {
                                log_debug("upstream: backend refused STARTTLS, but it is required.");
                                return upstream_fail(u, -EPROTONOSUPPORT);
                        }
                        smtp_reply_done(reply);
                        return upstream_connected(u);
                }
                smtp_reply_done(reply);
                if (u->in_len > 0)
                        return upstream_protocol_error(u, -EPROTO, "data after the 220 to STARTTLS");
                return upstream_start_handshake(u);

        case UPSTREAM_EHLO_TLS:
                if (reply->code != 250) {
                        upstream_complete(u, reply, 0);
                        return;
                }
                if (upstream_store_ehlo(u, reply) < 0)
                        return upstream_fail(u, -ENOMEM);
                smtp_reply_done(reply);
                return upstream_connected(u);

        case UPSTREAM_XCLIENT:
                if (reply->code != 220) {
                        log_debug("upstream: backend refused XCLIENT: %u %s", reply->code,
                                  reply->n_lines > 0 ? reply->lines[0] : "");
                        return upstream_fail(u, -EPERM);
                }
                u->xclient_done = true;
                smtp_reply_done(reply);
                u->hello_verb_ehlo = u->hello_esmtp;
                r = upstream_queue_hello(u, u->hello_esmtp ? "EHLO" : "HELO", u->hello_name);
                if (r < 0)
                        return upstream_fail(u, r);
                u->state = UPSTREAM_HELLO;
                (void) upstream_arm_timer(u, u->config->greeting_timeout);
                return;

        case UPSTREAM_HELLO:
                if (reply->code / 100 == 5 && u->hello_verb_ehlo && !u->hello_esmtp) {
                        /* EHLO for a client that said HELO, refused: an old server; the
                         * client's own HELO then. */
                        smtp_reply_done(reply);
                        u->hello_verb_ehlo = false;
                        r = upstream_queue_hello(u, "HELO", u->hello_name);
                        if (r < 0)
                                return upstream_fail(u, r);
                        (void) upstream_arm_timer(u, u->config->greeting_timeout);
                        return;
                }
                if (reply->code == 250) {
                        if (upstream_store_ehlo(u, u->hello_verb_ehlo ? reply : NULL) < 0)
                                return upstream_fail(u, -ENOMEM);
                }
                upstream_complete(u, reply, 0);
                return;

        case UPSTREAM_COMMAND:
                upstream_complete(u, reply, 0);
                return;

        case UPSTREAM_PIPE_FIRST:
                if (smtp_reply_is_positive(reply)) {
                        /* the second command's reply is the answer */
                        smtp_reply_done(reply);
                        u->state = UPSTREAM_COMMAND;
                        (void) upstream_arm_timer(u, u->second_timeout);
                        return;
                }
                smtp_reply_done(&u->first_reply);
                u->first_reply = *reply;
                *reply = (SmtpReply) SMTP_REPLY_NULL;
                if (u->first_reply.code == 421) {
                        /* going away: the second reply may never come */
                        u->reply_to_first = true;
                        upstream_complete_full(u, &u->first_reply, 0, /* close= */ true, UPSTREAM_IDLE);
                        return;
                }
                u->state = UPSTREAM_PIPE_SKIP;
                return;

        case UPSTREAM_PIPE_SKIP:
                /* the second command's reply (typically 503, as the first failed) is read
                 * and dropped; the first's goes to the handler */
                log_debug("upstream: dropping the reply %u to the second pipelined command.", reply->code);
                smtp_reply_done(reply);
                u->reply_to_first = true;
                upstream_complete(u, &u->first_reply, 0);
                return;

        case UPSTREAM_DATA_INIT:
                if (reply->code != 354) {
                        upstream_complete(u, reply, 0);
                        return;
                }
                smtp_reply_done(reply);
                u->state = UPSTREAM_DATA_BODY;
                u->term_timer_armed = false;
                (void) upstream_arm_timer(u, u->config->data_block_timeout);
                r = upstream_fill_body(u);
                if (r < 0)
                        return upstream_fail(u, r);
                return;

        case UPSTREAM_DATA_EARLY:
                /* 354: the connection rests in DATA_READY until upstream_send_message().
                 * Anything else is the answer to the DATA. */
                upstream_complete_full(u, reply, 0, false,
                                       reply->code == 354 ? UPSTREAM_DATA_READY : UPSTREAM_IDLE);
                return;

        case UPSTREAM_DATA_BODY:
        case UPSTREAM_DATA_TERM:
                if (u->state == UPSTREAM_DATA_TERM && upstream_out_pending(u) == 0) {
                        upstream_complete(u, reply, 0);
                        return;
                }
                /* A reply before the backend got all of the message (typically 421 or
                 * 554): pass it on, but the connection cannot be used any further. */
                log_debug("upstream: reply while the message was still being sent.");
                upstream_complete_full(u, reply, 0, /* close= */ true, UPSTREAM_IDLE);
                return;

        case UPSTREAM_IDLE:
        case UPSTREAM_DATA_READY:
                /* Nobody asked. A 421 is a server going away, anything else is a
                 * protocol error; the next call learns it with -ENOTCONN. */
                if (reply->code != 421)
                        log_warning("Backend broke the SMTP protocol: unexpected reply %u.", reply->code);
                else
                        log_debug("upstream: backend closes the connection: 421");
                smtp_reply_done(reply);
                upstream_close(u);
                return;

        default:
                return upstream_protocol_error(u, -EPROTO, "reply in an unexpected state");
        }
}

/* Splits u->in into CRLF lines and feeds them to the reply parser. */
static int upstream_process_input(Upstream *u) {
        size_t start = 0;
        int r;

        while (!u->freed && u->state != UPSTREAM_DEAD && u->state != UPSTREAM_HANDSHAKE) {
                char *nl = memchr(u->in + start, '\n', u->in_len - start);
                if (!nl)
                        break;

                size_t len = (size_t) (nl - (u->in + start));
                if (len == 0 || u->in[start + len - 1] != '\r') {
                        upstream_protocol_error(u, -EBADMSG, "reply line not terminated by CRLF");
                        return -EBADMSG;
                }

                r = smtp_reply_feed(&u->reply, u->in + start, len - 1);
                start += len + 1;
                if (r < 0) {
                        smtp_reply_done(&u->reply);
                        upstream_protocol_error(u, -EBADMSG, "malformed reply");
                        return -EBADMSG;
                }
                if (r > 0) {
                        /* Leave the unconsumed input in place before dispatching: the
                         * STARTTLS check looks at it. */
                        memmove(u->in, u->in + start, u->in_len - start);
                        u->in_len -= start;
                        start = 0;
                        upstream_dispatch(u);
                }
        }

        if (u->freed || u->state == UPSTREAM_DEAD)
                return -ENOTCONN;

        if (start > 0) {
                memmove(u->in, u->in + start, u->in_len - start);
                u->in_len -= start;
        }
        if (u->in_len == sizeof(u->in)) {
                upstream_protocol_error(u, -EBADMSG, "reply line too long");
                return -EBADMSG;
        }
        return 0;
}

/* Reads until the kernel (or OpenSSL) has nothing more. 0 when blocked, <0 when the
 * connection ended or was failed (the failure has been handled). */
static int upstream_read(Upstream *u) {
        int r;

        for (;;) {
                ssize_t k;

                if (u->state == UPSTREAM_HANDSHAKE || u->state == UPSTREAM_DEAD || u->freed)
                        return 0;

                size_t room = sizeof(u->in) - u->in_len;
                assert(room > 0);

                if (u->ssl) {
                        ERR_clear_error();
                        int l = SSL_read(u->ssl, u->in + u->in_len, (int) room);
                        if (l <= 0) {
                                int err = SSL_get_error(u->ssl, l);
                                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                                        u->read_wants_write = err == SSL_ERROR_WANT_WRITE;
                                        return 0;
                                }
                                r = upstream_ssl_error(u, l, err);
                                if (r == -ECONNRESET)
                                        k = 0;
                                else
                                        return r;
                        } else
                                k = l;
                        u->read_wants_write = false;
                } else {
                        k = recv(u->fd, u->in + u->in_len, room, MSG_DONTWAIT);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        return 0;
                                return -errno;
                        }
                }

                if (k == 0) {
                        if (u->state == UPSTREAM_IDLE && u->in_len == 0 && !u->handler) {
                                log_debug("upstream: backend closed the connection.");
                                upstream_close(u);
                                return -ENOTCONN;
                        }
                        log_warning("Backend broke the SMTP protocol: connection closed while a reply was expected.");
                        upstream_fail(u, -ECONNRESET);
                        return -ENOTCONN;
                }

                u->in_len += (size_t) k;
                r = upstream_process_input(u);
                if (r < 0)
                        return r;
                /* A short read emptied the socket: level-triggered epoll says when more comes. */
                if (!u->ssl && (size_t) k < room)
                        return 0;
        }
}

/* Queues the rest of the message while the output buffer has room. */
static int upstream_fill_body(Upstream *u) {
        while (u->state == UPSTREAM_DATA_BODY && upstream_out_pending(u) < UPSTREAM_OUT_LOW) {
                const char *p;
                size_t n;

                if (u->offset >= u->size) {
                        if (!u->chunking) {
                                if (u->size > 0 && memcmp(u->last, "\r\n", 2) != 0)
                                        (void) upstream_queue(u, "\r\n", 2);
                                (void) upstream_queue(u, ".\r\n", 3);
                                log_debug("upstream: > <%" PRIu64 " bytes> .", u->size);
                        } else
                                log_debug("upstream: > <%" PRIu64 " bytes>", u->size);
                        u->state = UPSTREAM_DATA_TERM;
                        break;
                }

                if (u->offset < u->prefix_len) {
                        p = u->prefix + u->offset;
                        n = MIN(u->prefix_len - (size_t) u->offset, (size_t) UPSTREAM_CHUNK);
                } else {
                        uint64_t off = u->offset - u->prefix_len;
                        ssize_t k;

                        n = (size_t) MIN(u->size - u->offset, (uint64_t) UPSTREAM_CHUNK);
                        k = pread(u->memfd, u->chunk, n, (off_t) off);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (k == 0)
                                return -EIO;    /* the memfd is shorter than announced */
                        n = (size_t) k;
                        p = u->chunk;
                }

                if (u->chunking) {
                        if (upstream_queue(u, p, n) < 0)
                                return -ENOBUFS;
                } else {
                        /* Compact first, then stuff straight into the buffer. */
                        if (u->out_start > 0) {
                                memmove(u->out, u->out + u->out_start, upstream_out_pending(u));
                                u->out_end -= u->out_start;
                                u->out_start = 0;
                        }
                        if (u->out_end + 2 * n > UPSTREAM_OUT_MAX)
                                return -ENOBUFS;
                        u->out_end += smtp_dot_stuff(p, n, &u->at_line_start, u->out + u->out_end);
                }

                if (n >= 2)
                        memcpy(u->last, p + n - 2, 2);
                else {
                        u->last[0] = u->last[1];
                        u->last[1] = p[0];
                }
                u->offset += n;
        }
        return 0;
}

static int upstream_finish_connect(Upstream *u) {
        int error = 0;
        socklen_t sl = sizeof(error);

        if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &error, &sl) < 0)
                return -errno;
        if (error != 0)
                return -error;

        log_debug("upstream: connected.");
        u->state = UPSTREAM_GREETING;
        return upstream_arm_timer(u, u->config->greeting_timeout);
}

static int upstream_check_pin(Upstream *u) {
        _cleanup_free_ unsigned char *der = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        X509 *cert;
        int len;

        cert = SSL_get1_peer_certificate(u->ssl);
        if (!cert)
                return -EPERM;
        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
        X509_free(cert);
        if (len <= 0)
                return -EPERM;
        if (EVP_Digest(der, (size_t) len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                return -EIO;
        if (CRYPTO_memcmp(md, u->config->pin, 32) != 0) {
                log_debug("upstream: backend certificate does not match BackendPin=.");
                return -EPERM;
        }
        return 0;
}

static int upstream_handshake(Upstream *u) {
        int r;

        ERR_clear_error();
        r = SSL_do_handshake(u->ssl);
        if (r <= 0) {
                int err = SSL_get_error(u->ssl, r);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                        u->handshake_wants_write = err == SSL_ERROR_WANT_WRITE;
                        return 0;
                }
                return upstream_ssl_error(u, r, err);
        }

        if (u->config->tls == BACKEND_TLS_VERIFY && u->config->have_pin) {
                r = upstream_check_pin(u);
                if (r < 0)
                        return r;
        }

        free(u->tls_description);
        u->tls_description = NULL;
        (void) asprintf_safe(&u->tls_description, "%s %s", SSL_get_version(u->ssl),
                             SSL_CIPHER_get_name(SSL_get_current_cipher(u->ssl)));
        log_debug("upstream: TLS established: %s", strna(u->tls_description));

        u->state = UPSTREAM_EHLO_TLS;
        r = upstream_queue_hello(u, "EHLO", upstream_own_helo(u));
        if (r < 0)
                return r;
        (void) upstream_arm_timer(u, u->config->greeting_timeout);
        return 1;
}

static void upstream_start_handshake(Upstream *u) {
        const UpstreamConfig *c = u->config;

        u->ssl = SSL_new(c->ssl_ctx);
        if (!u->ssl)
                return upstream_fail(u, -ENOMEM);
        if (SSL_set_fd(u->ssl, u->fd) != 1)
                return upstream_fail(u, upstream_ssl_error(u, 0, SSL_ERROR_SSL));
        SSL_set_connect_state(u->ssl);

        if (!isempty(c->tls_name) && SSL_set_tlsext_host_name(u->ssl, c->tls_name) != 1)
                return upstream_fail(u, upstream_ssl_error(u, 0, SSL_ERROR_SSL));

        if (c->tls == BACKEND_TLS_VERIFY && !c->have_pin) {
                X509_VERIFY_PARAM *param = SSL_get0_param(u->ssl);
                int ok;

                if (!isempty(c->tls_name))
                        ok = SSL_set1_host(u->ssl, c->tls_name);
                else {
                        /* No name configured: the certificate must carry the backend's IP. */
                        char ip[INET6_ADDRSTRLEN];
                        const struct sockaddr *sa = (const struct sockaddr*) &c->address.sockaddr;

                        if (sa->sa_family == AF_INET)
                                inet_ntop(AF_INET, &((const struct sockaddr_in*) sa)->sin_addr, ip, sizeof(ip));
                        else if (sa->sa_family == AF_INET6)
                                inet_ntop(AF_INET6, &((const struct sockaddr_in6*) sa)->sin6_addr, ip, sizeof(ip));
                        else {
                                log_debug("upstream: BackendTLS=verify over AF_UNIX needs BackendTLSName= or BackendPin=.");
                                return upstream_fail(u, -EINVAL);
                        }
                        ok = X509_VERIFY_PARAM_set1_ip_asc(param, ip);
                }
                if (ok != 1)
                        return upstream_fail(u, upstream_ssl_error(u, 0, SSL_ERROR_SSL));
                SSL_set_verify(u->ssl, SSL_VERIFY_PEER, NULL);
        } else
                SSL_set_verify(u->ssl, SSL_VERIFY_NONE, NULL);

        u->state = UPSTREAM_HANDSHAKE;
        u->handshake_wants_write = true;
        (void) upstream_arm_timer(u, c->greeting_timeout);
        /* The ClientHello goes out on the next writable event (see upstream_strategy()). */
}

static void upstream_strategy(Upstream *u) {
        uint32_t events;

        if (u->freed || !u->io)
                return;

        switch (u->state) {
        case UPSTREAM_DEAD:
                (void) sd_event_source_set_enabled(u->io, SD_EVENT_OFF);
                return;
        case UPSTREAM_CONNECTING:
                events = EPOLLOUT;
                break;
        case UPSTREAM_HANDSHAKE:
                events = u->handshake_wants_write ? EPOLLOUT : EPOLLIN;
                break;
        default:
                /* Always read: a backend may close or send 421 at any time. */
                events = EPOLLIN;
                if (u->ssl && u->read_wants_write)
                        events |= EPOLLOUT;
                if (upstream_out_pending(u) > 0)
                        events |= u->ssl && u->write_wants_read ? EPOLLIN : EPOLLOUT;
        }

        (void) sd_event_source_set_io_events(u->io, events);
        (void) sd_event_source_set_enabled(u->io, SD_EVENT_ON);
}

/* Writes what is queued, refilling the message body as it drains. Returns < 0 on a
 * write error, which the caller reports. */
static int upstream_send_pending(Upstream *u) {
        int r;

        if (upstream_out_pending(u) == 0)
                return 0;

        r = upstream_write(u);
        if (r <= 0)
                return r;
        if (IN_SET_DATA(u->state)) {
                /* Progress on the message: the block timeout starts again. */
                r = upstream_fill_body(u);
                if (r < 0)
                        return r;
                if (u->state == UPSTREAM_DATA_TERM && upstream_out_pending(u) == 0) {
                        if (!u->term_timer_armed) {
                                u->term_timer_armed = true;
                                (void) upstream_arm_timer(u, u->config->data_term_timeout);
                        }
                } else
                        (void) upstream_arm_timer(u, u->config->data_block_timeout);
        }
        return 0;
}

static int on_upstream_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        _cleanup_(upstream_unrefp) Upstream *u = upstream_ref(userdata);
        int r;

        if (u->state == UPSTREAM_CONNECTING) {
                r = upstream_finish_connect(u);
                if (r < 0) {
                        log_debug_errno(r, "upstream: connect failed: %m");
                        upstream_fail(u, r);
                        return 0;
                }
        }

        if (u->state == UPSTREAM_HANDSHAKE) {
                r = upstream_handshake(u);
                if (r < 0) {
                        log_debug_errno(r, "upstream: TLS handshake failed: %m");
                        upstream_fail(u, r);
                        return 0;
                }
        }

        if (u->state != UPSTREAM_HANDSHAKE && u->state != UPSTREAM_DEAD) {
                r = upstream_send_pending(u);
                if (r < 0) {
                        log_debug_errno(r, "upstream: write failed: %m");
                        upstream_fail(u, r);
                        return 0;
                }

                /* A plain socket is read only when it said so; TLS may hold decrypted
                 * bytes or need a read to finish a write. */
                if (u->ssl || (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                        r = upstream_read(u);
                        if (r < 0 && r != -ENOTCONN && !u->freed && u->state != UPSTREAM_DEAD) {
                                log_debug_errno(r, "upstream: read failed: %m");
                                upstream_fail(u, r);
                                return 0;
                        }
                }

                /* Whatever the replies led to (the next command, the message after a
                 * 354) goes out now rather than after another round of the loop. */
                if (!u->freed && u->state != UPSTREAM_HANDSHAKE && u->state != UPSTREAM_DEAD) {
                        r = upstream_send_pending(u);
                        if (r < 0) {
                                log_debug_errno(r, "upstream: write failed: %m");
                                upstream_fail(u, r);
                                return 0;
                        }
                }
        }

        if (!u->freed)
                upstream_strategy(u);
        return 0;
}

static int on_upstream_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(upstream_unrefp) Upstream *u = upstream_ref(userdata);

        log_debug("upstream: timeout.");
        if (u->handler || u->state != UPSTREAM_IDLE)
                upstream_fail(u, -ETIMEDOUT);
        return 0;
}

static int on_upstream_defer(sd_event_source *s, void *userdata) {
        _cleanup_(upstream_unrefp) Upstream *u = upstream_ref(userdata);

        u->defer = sd_event_source_disable_unref(u->defer);
        upstream_fail(u, u->deferred_error);
        return 0;
}

static void copy_sockaddr(struct sockaddr_storage *dst, const struct sockaddr **p, socklen_t *len) {
        if (!*p || *len == 0 || *len > sizeof(*dst)) {
                *p = NULL;
                *len = 0;
                return;
        }
        memcpy(dst, *p, *len);
        *p = (const struct sockaddr*) dst;
}

int upstream_new(sd_event *e, const UpstreamConfig *c, const UpstreamClientInfo *info,
                 UpstreamHandler handler, void *userdata, Upstream **ret) {

        _cleanup_(upstream_freep) Upstream *u = NULL;
        const struct sockaddr *sa;
        int r;

        assert_return(e, -EINVAL);
        assert_return(c, -EINVAL);
        assert_return(ret, -EINVAL);
        assert_return(c->address.size > 0, -EDESTADDRREQ);
        assert_return(c->tls == BACKEND_TLS_NO || c->ssl_ctx, -EINVAL);

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->n_ref = 1;
        u->fd = -1;
        u->memfd = -1;
        u->event = sd_event_ref(e);
        u->config = c;
        u->handler = handler;
        u->userdata = userdata;
        u->state = UPSTREAM_CONNECTING;
        u->out = malloc(UPSTREAM_OUT_MAX);
        if (!u->out)
                return -ENOMEM;

        if (info) {
                u->info = *info;
                copy_sockaddr(&u->client, &u->info.client, &u->info.client_len);
                copy_sockaddr(&u->local, &u->info.local, &u->info.local_len);
        }

        if (c->client_info == BACKEND_CLIENT_INFO_PROXY_V2) {
                uint8_t hdr[16 + 36];

                r = proxy_v2_header_build(u->info.client, u->info.local, hdr, sizeof(hdr));
                if (r < 0)
                        return r;
                (void) upstream_queue(u, hdr, (size_t) r);
                log_debug("upstream: > PROXY v2 header (%i bytes)", r);
        }

        sa = (const struct sockaddr*) &c->address.sockaddr;
        u->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (u->fd < 0)
                return -errno;
        /* Commands go out one at a time and each waits for its reply: no Nagle delay. */
        if (sa->sa_family != AF_UNIX)
                (void) setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));

        r = sd_event_add_io(e, &u->io, u->fd, EPOLLOUT, on_upstream_io, u);
        if (r < 0)
                return r;
        r = upstream_arm_timer(u, c->connect_timeout);
        if (r < 0)
                return r;

        if (connect(u->fd, sa, c->address.size) < 0 && errno != EINPROGRESS) {
                /* The handler learns it like any other failure, from the event loop. */
                u->deferred_error = -errno;
                log_debug_errno(u->deferred_error, "upstream: connect failed: %m");
                r = sd_event_add_defer(e, &u->defer, on_upstream_defer, u);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(u->io, SD_EVENT_OFF);
        } else
                upstream_strategy(u);

        *ret = TAKE_PTR(u);
        return 0;
}

static int upstream_check_idle(Upstream *u) {
        assert_return(u, -EINVAL);
        if (u->state == UPSTREAM_DEAD || u->fd < 0)
                return -ENOTCONN;
        if (u->handler || u->state != UPSTREAM_IDLE)
                return -EBUSY;
        return 0;
}

bool upstream_is_idle(Upstream *u) {
        return u && upstream_check_idle(u) == 0 && upstream_out_pending(u) == 0 && u->in_len == 0 &&
                !u->defer;
}

bool upstream_is_dead(Upstream *u) {
        return !u || u->freed || u->state == UPSTREAM_DEAD || u->fd < 0;
}

static void upstream_begin(Upstream *u, UpstreamState state, usec_t timeout,
                           UpstreamHandler handler, void *userdata) {
        u->state = state;
        u->handler = handler;
        u->userdata = userdata;
        u->reply_to_first = false;
        (void) upstream_arm_timer(u, timeout);
        /* The socket is nearly always writable: send at once instead of waiting for the
         * loop to say so. A failure is left to the loop, where the socket reports it
         * again and the handler learns it from there, never from inside this call. */
        if (!IN_SET(state, UPSTREAM_CONNECTING, UPSTREAM_HANDSHAKE, UPSTREAM_DEAD) &&
            upstream_send_pending(u) < 0)
                log_debug("upstream: immediate write failed, leaving it to the event loop.");
        upstream_strategy(u);
}

/* ADDR= value: IPv4 dotted, "IPV6:..." for IPv6, IPv4-mapped IPv6 as IPv4. */
static int sockaddr_xclient_addr(const struct sockaddr *sa, char *buf, size_t size, unsigned *ret_port) {
        if (!sa)
                return -EAFNOSUPPORT;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in*) sa;
                if (!inet_ntop(AF_INET, &in->sin_addr, buf, size))
                        return -errno;
                *ret_port = ntohs(in->sin_port);
                return 0;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6*) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        if (!inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, size))
                                return -errno;
                } else {
                        if (size < 6)
                                return -ENOBUFS;
                        memcpy(buf, "IPV6:", 5);
                        if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf + 5, size - 5))
                                return -errno;
                }
                *ret_port = ntohs(in6->sin6_port);
                return 0;
        }
        return -EAFNOSUPPORT;
}

static bool xclient_offers(const char *attrs, const char *name) {
        size_t l = strlen(name);

        for (const char *p = attrs; p && *p; ) {
                p += strspn(p, " ");
                size_t n = strcspn(p, " ");
                if (n == l && strncasecmp(p, name, l) == 0)
                        return true;
                p += n;
        }
        return false;
}

static int xclient_append(char **line, const char *attrs, const char *name, const char *value) {
        _cleanup_free_ char *x = NULL;
        char *n = NULL;

        if (!xclient_offers(attrs, name))
                return 0;
        if (xtext_encode(value, &x) < 0)
                return -ENOMEM;
        if (asprintf_safe(&n, "%s %s=%s", *line, name, x) < 0)
                return -ENOMEM;
        free(*line);
        *line = n;
        return 0;
}

static int upstream_build_xclient(Upstream *u, const char *helo, bool esmtp, char **ret) {
        _cleanup_free_ char *line = strdup("XCLIENT");
        char addr[5 + INET6_ADDRSTRLEN], port[16];
        unsigned p;
        int r;

        if (!line)
                return -ENOMEM;

        if (sockaddr_xclient_addr(u->info.client, addr, sizeof(addr), &p) >= 0)
                snprintf(port, sizeof(port), "%u", p);
        else {
                strcpy(addr, "[UNAVAILABLE]");
                strcpy(port, "[UNAVAILABLE]");
        }
        /* "[UNAVAILABLE]" is xtext as it stands; the encoder leaves it alone. */
        if ((r = xclient_append(&line, u->xclient_attrs, "ADDR", addr)) < 0 ||
            (r = xclient_append(&line, u->xclient_attrs, "PORT", port)) < 0 ||
            (r = xclient_append(&line, u->xclient_attrs, "NAME", "[UNAVAILABLE]")) < 0 ||
            (r = xclient_append(&line, u->xclient_attrs, "PROTO", esmtp ? "ESMTP" : "SMTP")) < 0)
                return r;
        if (!isempty(helo) && (r = xclient_append(&line, u->xclient_attrs, "HELO", helo)) < 0)
                return r;

        if (sockaddr_xclient_addr(u->info.local, addr, sizeof(addr), &p) >= 0) {
                snprintf(port, sizeof(port), "%u", p);
                if ((r = xclient_append(&line, u->xclient_attrs, "DESTADDR", addr)) < 0 ||
                    (r = xclient_append(&line, u->xclient_attrs, "DESTPORT", port)) < 0)
                        return r;
        }

        *ret = TAKE_PTR(line);
        return 0;
}

int upstream_hello(Upstream *u, const char *helo, bool esmtp, bool client_tls,
                   UpstreamHandler handler, void *userdata) {
        int r;

        r = upstream_check_idle(u);
        if (r < 0)
                return r;

        if (isempty(helo))
                helo = upstream_own_helo(u);
        if (strpbrk(helo, " \r\n") || strlen(helo) > 255)
                return -EINVAL;
        r = free_and_strdup(&u->hello_name, helo);
        if (r < 0)
                return r;
        u->hello_esmtp = esmtp;

        log_debug("upstream: introducing the client (%s, %s)", esmtp ? "ESMTP" : "SMTP",
                  client_tls ? "TLS" : "plain");

        /* XCLIENT once per connection: after it, the backend takes us for the client, and
         * Postfix checks a second XCLIENT against the client's address (it would answer
         * 550 insufficient authorization). A later EHLO/HELO (after the client's STARTTLS,
         * or a repeated EHLO) updates the HELO name and resets the session by itself. */
        if (u->config->client_info == BACKEND_CLIENT_INFO_XCLIENT && !u->xclient_done) {
                _cleanup_free_ char *line = NULL;

                if (!u->xclient_attrs) {
                        /* Never go on as ourselves: the backend would judge the wrong client. */
                        log_debug("upstream: BackendClientInfo=xclient, but the backend does not offer XCLIENT.");
                        upstream_close(u);
                        return -EPROTONOSUPPORT;
                }
                r = upstream_build_xclient(u, helo, esmtp, &line);
                if (r < 0)
                        return r;
                r = upstream_queue_command(u, line);
                if (r < 0)
                        return r;
                upstream_begin(u, UPSTREAM_XCLIENT, u->config->greeting_timeout, handler, userdata);
                return 0;
        }

        /* EHLO even for a client that said HELO: the backend's extensions (PIPELINING,
         * CHUNKING) serve the relay, and the client is offered none of them. (With
         * XCLIENT the client's own verb goes through, above: PROTO= says which.) */
        u->hello_verb_ehlo = true;
        r = upstream_queue_hello(u, "EHLO", helo);
        if (r < 0)
                return r;
        upstream_begin(u, UPSTREAM_HELLO, u->config->greeting_timeout, handler, userdata);
        return 0;
}

bool upstream_introduced_as(Upstream *u, const char *helo) {
        /* Only without client information: XCLIENT and PROXY v2 introduce a client once
         * per connection and never hand a connection on. */
        return u && u->config->client_info == BACKEND_CLIENT_INFO_NONE &&
                upstream_is_idle(u) && u->have_ehlo && u->hello_verb_ehlo &&
                u->hello_name && helo && streq(u->hello_name, helo);
}

int upstream_command(Upstream *u, const char *line, usec_t timeout, UpstreamHandler handler, void *userdata) {
        int r;

        assert_return(line, -EINVAL);
        r = upstream_check_idle(u);
        if (r < 0)
                return r;
        r = upstream_queue_command(u, line);
        if (r < 0)
                return r;
        upstream_begin(u, UPSTREAM_COMMAND, timeout, handler, userdata);
        return 0;
}

int upstream_command_pipelined(Upstream *u, const char *first, usec_t first_timeout,
                               const char *second, usec_t second_timeout,
                               UpstreamHandler handler, void *userdata) {
        int r;

        assert_return(first && second, -EINVAL);
        r = upstream_check_idle(u);
        if (r < 0)
                return r;
        if (!upstream_has_capability(u, "PIPELINING", NULL))
                return -EOPNOTSUPP;
        r = upstream_queue_command(u, first);
        if (r < 0)
                return r;
        r = upstream_queue_command(u, second);
        if (r < 0) {
                /* nothing was sent yet: take the first back too */
                upstream_close(u);
                return r;
        }
        u->second_timeout = second_timeout;
        upstream_begin(u, UPSTREAM_PIPE_FIRST, first_timeout, handler, userdata);
        return 0;
}

bool upstream_reply_to_first(Upstream *u) {
        return u && u->reply_to_first;
}

int upstream_send_message(Upstream *u, const char *prefix, size_t prefix_len, int memfd, uint64_t size,
                          UpstreamHandler handler, void *userdata) {
        bool ready;
        int r;

        assert_return(prefix || prefix_len == 0, -EINVAL);
        assert_return(memfd >= 0 || size == 0, -EBADF);
        /* After upstream_data_start() the backend has said 354 already. */
        ready = u && u->state == UPSTREAM_DATA_READY && !u->handler && u->fd >= 0;
        if (!ready) {
                r = upstream_check_idle(u);
                if (r < 0)
                        return r;
        }
        if (size > UINT64_MAX - prefix_len)
                return -EFBIG;

        if (!u->chunk) {
                u->chunk = malloc(UPSTREAM_CHUNK);
                if (!u->chunk)
                        return -ENOMEM;
        }
        free(u->prefix);
        u->prefix = NULL;
        if (prefix_len > 0) {
                u->prefix = memdup(prefix, prefix_len);
                if (!u->prefix)
                        return -ENOMEM;
        }
        u->prefix_len = prefix_len;
        u->memfd = memfd;
        u->size = prefix_len + size;
        u->offset = 0;
        u->at_line_start = true;
        u->last[0] = u->last[1] = 0;
        u->term_timer_armed = false;
        u->chunking = !ready && upstream_has_capability(u, "CHUNKING", NULL);

        if (ready) {
                log_debug("upstream: the backend said 354 already, sending the message.");
                upstream_begin(u, UPSTREAM_DATA_BODY, u->config->data_block_timeout, handler, userdata);
                r = upstream_fill_body(u);
                if (r < 0) {
                        u->handler = NULL;
                        upstream_close(u);
                        return r;
                }
                (void) upstream_send_pending(u);
                upstream_strategy(u);
                return 0;
        }

        if (u->chunking) {
                char line[64];

                snprintf(line, sizeof(line), "BDAT %" PRIu64 " LAST", u->size);
                r = upstream_queue_command(u, line);
                if (r < 0)
                        return r;
                upstream_begin(u, UPSTREAM_DATA_BODY, u->config->data_block_timeout, handler, userdata);
                r = upstream_fill_body(u);
                if (r < 0) {
                        u->handler = NULL;
                        upstream_close(u);
                        return r;
                }
                upstream_strategy(u);
                return 0;
        }

        r = upstream_queue_command(u, "DATA");
        if (r < 0)
                return r;
        upstream_begin(u, UPSTREAM_DATA_INIT, u->config->data_init_timeout, handler, userdata);
        return 0;
}

int upstream_data_start(Upstream *u, UpstreamHandler handler, void *userdata) {
        int r;

        r = upstream_check_idle(u);
        if (r < 0)
                return r;
        /* BDAT carries its size, which is known only at the end. */
        if (upstream_has_capability(u, "CHUNKING", NULL))
                return -EOPNOTSUPP;
        r = upstream_queue_command(u, "DATA");
        if (r < 0)
                return r;
        upstream_begin(u, UPSTREAM_DATA_EARLY, u->config->data_init_timeout, handler, userdata);
        return 0;
}

bool upstream_data_ready(Upstream *u) {
        return u && !u->freed && u->state == UPSTREAM_DATA_READY && u->fd >= 0;
}

const SmtpReply* upstream_capabilities(Upstream *u) {
        return u && u->have_ehlo ? &u->ehlo : NULL;
}

bool upstream_has_capability(Upstream *u, const char *keyword, const char **ret_param) {
        if (!u || !u->have_ehlo)
                return false;
        return smtp_reply_ehlo_has(&u->ehlo, keyword, ret_param);
}

const char* upstream_tls_description(Upstream *u) {
        return u && u->ssl ? u->tls_description : NULL;
}

Upstream* upstream_quit_and_free(Upstream *u) {
        if (!u)
                return NULL;

        if (u->fd >= 0 && u->state == UPSTREAM_IDLE && !u->handler && upstream_out_pending(u) == 0) {
                static const char quit[] = "QUIT\r\n";

                log_debug("upstream: > QUIT");
                if (u->ssl) {
                        ERR_clear_error();
                        if (SSL_write(u->ssl, quit, STRLEN(quit)) > 0)
                                (void) SSL_shutdown(u->ssl);
                        ERR_clear_error();
                } else
                        (void) send(u->fd, quit, STRLEN(quit), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        return upstream_free(u);
}

int upstream_config_prepare(UpstreamConfig *c) {
        SSL_CTX *ctx;

        assert_return(c, -EINVAL);

        if (c->ssl_ctx) {
                SSL_CTX_free(c->ssl_ctx);
                c->ssl_ctx = NULL;
        }
        if (c->tls == BACKEND_TLS_NO)
                return 0;

        ERR_clear_error();
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                goto fail_nomem;

        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
                goto fail;
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

        if (c->tls == BACKEND_TLS_VERIFY && !c->have_pin) {
                int ok = isempty(c->ca_file) ? SSL_CTX_set_default_verify_paths(ctx)
                                             : SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL);
                if (ok != 1) {
                        SSL_CTX_free(ctx);
                        ERR_clear_error();
                        return -EINVAL;
                }
        }

        c->ssl_ctx = ctx;
        return 0;

fail:
        SSL_CTX_free(ctx);
fail_nomem:
        ERR_clear_error();
        return -ENOMEM;
}

void upstream_config_done(UpstreamConfig *c) {
        if (!c)
                return;
        if (c->ssl_ctx)
                SSL_CTX_free(c->ssl_ctx);
        c->ssl_ctx = NULL;
        free(c->ca_file);
        free(c->tls_name);
        free(c->helo);
        c->ca_file = c->tls_name = c->helo = NULL;
        explicit_bzero(c->pin, sizeof(c->pin));
        c->have_pin = false;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

int upstream_parse_pin(const char *s, uint8_t ret[static 32]) {
        uint8_t pin[32];

        if (!s || strlen(s) != 64)
                return -EINVAL;
        for (size_t i = 0; i < 32; i++) {
                int a = unhex(s[2 * i]), b = unhex(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                pin[i] = (uint8_t) (a << 4 | b);
        }
        memcpy(ret, pin, sizeof(pin));
        return 0;
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

int proxy_v2_header_build(const struct sockaddr *src, const struct sockaddr *dst,
                          uint8_t *buf, size_t size) {
        size_t n;

        assert_return(buf, -EINVAL);
        if (size < 16)
                return -ENOBUFS;

        memcpy(buf, proxy_v2_signature, sizeof(proxy_v2_signature));

        /* A client without an IP address (AF_UNIX, unknown): LOCAL, no addresses. The
         * receiver then uses the connection's own addresses. */
        if (!src || !dst || src->sa_family == AF_UNIX || dst->sa_family == AF_UNIX ||
            !IN_SET_INET(src->sa_family) || !IN_SET_INET(dst->sa_family)) {
                if (src && !IN_SET_INET(src->sa_family) && src->sa_family != AF_UNIX)
                        return -EAFNOSUPPORT;
                buf[12] = 0x20;         /* version 2, LOCAL */
                buf[13] = 0x00;         /* AF_UNSPEC */
                put16(buf + 14, 0);
                return 16;
        }

        if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in*) src, *d = (const struct sockaddr_in*) dst;

                n = 16 + 12;
                if (size < n)
                        return -ENOBUFS;
                buf[12] = 0x21;         /* version 2, PROXY */
                buf[13] = 0x11;         /* TCP over IPv4 */
                put16(buf + 14, 12);
                memcpy(buf + 16, &s->sin_addr, 4);
                memcpy(buf + 20, &d->sin_addr, 4);
                memcpy(buf + 24, &s->sin_port, 2);      /* network byte order already */
                memcpy(buf + 26, &d->sin_port, 2);
                return (int) n;
        }

        /* IPv6, or mixed families: IPv4 goes in as an IPv4-mapped IPv6 address. */
        n = 16 + 36;
        if (size < n)
                return -ENOBUFS;
        buf[12] = 0x21;
        buf[13] = 0x21;                 /* TCP over IPv6 */
        put16(buf + 14, 36);
        for (int i = 0; i < 2; i++) {
                const struct sockaddr *sa = i == 0 ? src : dst;
                uint8_t *a = buf + 16 + 16 * i, *port = buf + 48 + 2 * i;

                if (sa->sa_family == AF_INET6) {
                        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6*) sa;
                        memcpy(a, &in6->sin6_addr, 16);
                        memcpy(port, &in6->sin6_port, 2);
                } else {
                        const struct sockaddr_in *in = (const struct sockaddr_in*) sa;
                        memset(a, 0, 10);
                        a[10] = a[11] = 0xff;
                        memcpy(a + 12, &in->sin_addr, 4);
                        memcpy(port, &in->sin_port, 2);
                }
        }
        return (int) n;
}

int xtext_encode(const char *s, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        size_t l;
        char *x, *p;

        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        l = strlen(s);
        if (l > (SIZE_MAX - 1) / 3)
                return -ENOMEM;
        x = p = malloc(l * 3 + 1);
        if (!x)
                return -ENOMEM;

        for (const unsigned char *c = (const unsigned char*) s; *c; c++)
                if (*c >= '!' && *c <= '~' && *c != '+' && *c != '=')
                        *p++ = (char) *c;
                else {
                        *p++ = '+';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 15];
                }
        *p = 0;
        *ret = x;
        return 0;
}

size_t smtp_dot_stuff(const char *in, size_t len, bool *at_line_start, char *out) {
        bool bol = *at_line_start;
        size_t i = 0, o = 0;

        /* Line by line with memchr(): only a line's first byte needs a look. */
        while (i < len) {
                const char *nl;
                size_t seg;

                if (bol && in[i] == '.')
                        out[o++] = '.';
                nl = memchr(in + i, '\n', len - i);
                seg = nl ? (size_t) (nl - (in + i)) + 1 : len - i;
                memcpy(out + o, in + i, seg);
                o += seg;
                i += seg;
                bol = nl;
        }
        *at_line_start = bol;
        return o;
}
