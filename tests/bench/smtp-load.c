/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smtp-load: SMTP load generator for the mailsec benchmarks.
 *
 * One thread, one epoll loop, many concurrent sessions. Each session speaks
 * EHLO, optionally STARTTLS (RFC 3207) and EHLO again, then MAIL/RCPT/DATA,
 * optionally pipelined (RFC 2920), with either one connection per message or
 * all of the session's messages on one connection (--reuse). Every message is
 * a valid RFC 5322 message with CRLF line ends and no line starting with ".".
 *
 * --idle N opens N sessions, brings each of them to the point after EHLO (after
 * STARTTLS and the second EHLO with --starttls), holds them idle for --hold
 * seconds and then ends them with QUIT; it is used to measure the memory a
 * server needs per established session.
 *
 * Everything is bounded: the number of messages, the number of connections
 * (at most one per message, since each connection is opened for a message),
 * and every wait (--timeout seconds without progress fails the session).
 *
 * Output: one summary line on stdout; the exit status is 0 only when every
 * message was accepted with 250 (or every idle session was established).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define IN_BUF_SIZE 8192U
#define MAX_REPLY_LINES 100U
#define MAX_SETUP_DEFAULT 128U     /* sessions connecting or in the handshake at once */
#define MAX_SESSIONS 100000U
#define MAX_MESSAGES 100000000U
#define MAX_BODY (64U * 1024U * 1024U)
#define MIN_SIZE(a, b) ((size_t) (a) < (size_t) (b) ? (size_t) (a) : (size_t) (b))

typedef enum SessionState {
        STATE_NEW,              /* not started yet */
        STATE_CONNECTING,
        STATE_GREETING,
        STATE_EHLO,
        STATE_STARTTLS,
        STATE_HANDSHAKE,
        STATE_EHLO_TLS,
        STATE_MAIL,
        STATE_RCPT,
        STATE_DATA,
        STATE_DOT,
        STATE_IDLE,             /* --idle: established, waiting */
        STATE_QUIT,
        STATE_DONE,             /* finished for good */
} SessionState;

typedef struct Session {
        unsigned idx;
        SessionState state;
        int fd;
        SSL *ssl;
        bool want_write;        /* TLS handshake or write wants EPOLLOUT */
        bool in_setup;          /* counted in Loader.n_setup */
        bool pipelining;        /* server offered PIPELINING in the last EHLO */
        bool starttls_offered;
        bool have_message;      /* a message is claimed by this connection */
        bool message_sent;      /* its final "." went out */
        uint64_t message_no;

        char in[IN_BUF_SIZE];
        size_t in_len;
        unsigned reply_lines;   /* lines of the reply being read */

        char *out;
        size_t out_len, out_off, out_alloc;

        uint64_t deadline_ms;   /* 0: none */
        uint32_t events;        /* registered epoll events, 0 when not registered */
} Session;

typedef struct Loader {
        struct sockaddr_storage addr;
        socklen_t addr_len;
        const char *target;
        const char *from, *to, *helo;
        const char *cafile, *tls_name;
        unsigned n_sessions;
        uint64_t n_messages;
        size_t body_size;
        bool starttls, reuse, pipeline;
        unsigned idle;          /* > 0: idle mode with this many sessions */
        unsigned hold_sec;
        unsigned timeout_sec;
        unsigned max_setup;
        bool verbose;

        SSL_CTX *ssl_ctx;
        int epoll_fd;
        Session *sessions;
        char *body;             /* shared body text, CRLF lines */

        uint64_t claimed, sent, accepted, failed;
        uint64_t connections, handshakes;
        unsigned n_setup;       /* sessions in connect/greeting/EHLO/TLS */
        unsigned n_idle, n_idle_failed, n_done;
        uint64_t t_start_ms, t_end_ms;
        char first_error[300];
        char tls_info[96];      /* protocol and cipher of the first handshake */
} Loader;

static volatile sig_atomic_t got_signal = 0;

static void on_signal(int sig) {
        got_signal = sig;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

static void session_error(Loader *l, Session *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void session_error(Loader *l, Session *s, const char *fmt, ...) {
        char buf[240];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (l->first_error[0] == '\0')
                (void) snprintf(l->first_error, sizeof(l->first_error), "session %u: %s", s->idx, buf);
        if (l->verbose)
                fprintf(stderr, "smtp-load: session %u: %s\n", s->idx, buf);
}

static int parse_target(Loader *l, const char *target) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        char host[256];
        const char *colon, *port;
        size_t n;
        int r;

        if (target[0] == '[') {
                const char *end = strchr(target, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                n = (size_t) (end - target - 1);
                if (n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, target + 1, n);
                port = end + 2;
        } else {
                colon = strrchr(target, ':');
                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - target);
                if (n == 0 || n >= sizeof(host))
                        return -EINVAL;
                memcpy(host, target, n);
                port = colon + 1;
        }
        host[n] = '\0';

        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0 || !res) {
                fprintf(stderr, "smtp-load: cannot resolve %s: %s\n", target, gai_strerror(r));
                return -EINVAL;
        }
        memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
        l->addr_len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}

/* ---- output buffer ---- */

static int out_append(Session *s, const char *data, size_t n) {
        if (s->out_off > 0 && s->out_off == s->out_len)
                s->out_off = s->out_len = 0;
        if (s->out_len + n > s->out_alloc) {
                size_t a = s->out_alloc ? s->out_alloc : 4096;
                char *p;

                while (a < s->out_len + n)
                        a *= 2;
                p = realloc(s->out, a);
                if (!p)
                        return -ENOMEM;
                s->out = p;
                s->out_alloc = a;
        }
        memcpy(s->out + s->out_len, data, n);
        s->out_len += n;
        return 0;
}

static int out_printf(Session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int out_printf(Session *s, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -EOVERFLOW;
        return out_append(s, buf, (size_t) n);
}

/* ---- epoll registration ---- */

static int session_update_events(Loader *l, Session *s) {
        struct epoll_event ev = { .data.ptr = s };
        uint32_t want;

        if (s->fd < 0)
                return 0;

        want = EPOLLIN;
        if (s->state == STATE_CONNECTING || s->want_write || s->out_off < s->out_len)
                want |= EPOLLOUT;
        if (want == s->events)
                return 0;

        ev.events = want;
        if (epoll_ctl(l->epoll_fd, s->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev) < 0)
                return -errno;
        s->events = want;
        return 0;
}

static void session_set_setup(Loader *l, Session *s, bool b) {
        if (s->in_setup == b)
                return;
        s->in_setup = b;
        if (b)
                l->n_setup++;
        else
                l->n_setup--;
}

static void session_close(Loader *l, Session *s) {
        if (s->ssl) {
                /* no close_notify round trip: the SMTP QUIT already ended the session */
                SSL_free(s->ssl);
                s->ssl = NULL;
        }
        if (s->fd >= 0) {
                (void) close(s->fd);    /* also removes it from the epoll set */
                s->fd = -1;
        }
        s->events = 0;
        s->want_write = false;
        s->in_len = 0;
        s->reply_lines = 0;
        s->out_len = s->out_off = 0;
        s->pipelining = s->starttls_offered = false;
        s->deadline_ms = 0;
        session_set_setup(l, s, false);
}

static bool messages_left(Loader *l) {
        return l->idle == 0 && l->claimed < l->n_messages;
}

static void session_claim(Loader *l, Session *s) {
        s->have_message = true;
        s->message_sent = false;
        s->message_no = ++l->claimed;
}

static void session_finish_message(Loader *l, Session *s, bool ok) {
        if (!s->have_message)
                return;
        if (ok)
                l->accepted++;
        else
                l->failed++;
        s->have_message = false;
        s->message_sent = false;
}

static void session_done(Loader *l, Session *s) {
        session_close(l, s);
        s->state = STATE_DONE;
        l->n_done++;
}

static int session_start(Loader *l, Session *s);

/* The connection is gone, cleanly or not. Start a new one if this session has more to send. */
static void session_ended(Loader *l, Session *s, bool ok) {
        SessionState old = s->state;

        session_finish_message(l, s, ok);
        session_close(l, s);

        if (l->idle > 0) {
                /* only the QUIT at the end of the hold is an orderly end */
                if (old == STATE_IDLE) {
                        session_error(l, s, "established session dropped while idle");
                        l->n_idle--;
                        l->n_idle_failed++;
                } else if (old != STATE_QUIT)
                        l->n_idle_failed++;
                s->state = STATE_DONE;
                l->n_done++;
                return;
        }

        if (messages_left(l) && !got_signal) {
                s->state = STATE_NEW;   /* restarted by the main loop, within the setup cap */
                return;
        }
        s->state = STATE_DONE;
        l->n_done++;
}

static void session_fail(Loader *l, Session *s) {
        session_ended(l, s, false);
}

static int session_start(Loader *l, Session *s) {
        int fd, one = 1;

        if (l->idle == 0) {
                if (!messages_left(l)) {
                        session_done(l, s);
                        return 0;
                }
                session_claim(l, s);
        }

        fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                session_error(l, s, "socket: %s", strerror(errno));
                session_fail(l, s);
                return 0;
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s->fd = fd;
        l->connections++;
        session_set_setup(l, s, true);
        s->deadline_ms = now_ms() + (uint64_t) l->timeout_sec * 1000U;

        if (connect(fd, (struct sockaddr*) &l->addr, l->addr_len) < 0 && errno != EINPROGRESS) {
                session_error(l, s, "connect: %s", strerror(errno));
                session_fail(l, s);
                return 0;
        }
        s->state = STATE_CONNECTING;
        if (session_update_events(l, s) < 0) {
                session_error(l, s, "epoll: %s", strerror(errno));
                session_fail(l, s);
        }
        return 0;
}

/* ---- raw I/O, plain or TLS; return bytes, 0 on EOF, -EAGAIN, or another negative errno ---- */

static ssize_t session_read(Session *s, void *buf, size_t n) {
        if (s->ssl) {
                int k = SSL_read(s->ssl, buf, (int) MIN_SIZE(n, INT32_MAX));
                if (k > 0)
                        return k;
                switch (SSL_get_error(s->ssl, k)) {
                case SSL_ERROR_WANT_READ:
                        return -EAGAIN;
                case SSL_ERROR_WANT_WRITE:
                        s->want_write = true;
                        return -EAGAIN;
                case SSL_ERROR_ZERO_RETURN:
                        return 0;
                default:
                        return -EPROTO;
                }
        }
        for (;;) {
                ssize_t k = read(s->fd, buf, n);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return -errno;
        }
}

static ssize_t session_write(Session *s, const void *buf, size_t n) {
        if (s->ssl) {
                int k = SSL_write(s->ssl, buf, (int) MIN_SIZE(n, INT32_MAX));
                if (k > 0)
                        return k;
                switch (SSL_get_error(s->ssl, k)) {
                case SSL_ERROR_WANT_READ:
                        return -EAGAIN;
                case SSL_ERROR_WANT_WRITE:
                        s->want_write = true;
                        return -EAGAIN;
                default:
                        return -EPROTO;
                }
        }
        for (;;) {
                ssize_t k = send(s->fd, buf, n, MSG_NOSIGNAL);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return -errno;
        }
}

/* Push out what is buffered; -EAGAIN leaves the rest for EPOLLOUT. */
static int session_flush(Session *s) {
        if (s->out_off >= s->out_len)
                return 0;
        s->want_write = false;
        while (s->out_off < s->out_len) {
                ssize_t k = session_write(s, s->out + s->out_off, s->out_len - s->out_off);
                if (k == -EAGAIN) {
                        s->want_write = true;
                        return 0;
                }
                if (k < 0)
                        return (int) k;
                s->out_off += (size_t) k;
        }
        s->out_off = s->out_len = 0;
        return 0;
}

/* ---- the SMTP dialogue ---- */

static int send_ehlo(Loader *l, Session *s) {
        s->pipelining = s->starttls_offered = false;
        return out_printf(s, "EHLO %s\r\n", l->helo);
}

static int send_message(Loader *l, Session *s) {
        int r;

        r = out_printf(s, "MAIL FROM:<%s>\r\n", l->from);
        if (r < 0)
                return r;
        s->state = STATE_MAIL;
        if (l->pipeline && s->pipelining) {
                r = out_printf(s, "RCPT TO:<%s>\r\nDATA\r\n", l->to);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int send_content(Loader *l, Session *s) {
        char date[64];
        time_t t = time(NULL);
        struct tm tm;
        int r;

        (void) gmtime_r(&t, &tm);
        (void) strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

        r = out_printf(s,
                       "From: <%s>\r\n"
                       "To: <%s>\r\n"
                       "Subject: smtp-load message %" PRIu64 "\r\n"
                       "Date: %s\r\n"
                       "Message-ID: <%" PRIu64 ".%ld.%ld@%s>\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=us-ascii\r\n"
                       "\r\n",
                       l->from, l->to, s->message_no, date,
                       s->message_no, (long) getpid(), (long) l->t_start_ms, l->helo);
        if (r < 0)
                return r;
        r = out_append(s, l->body, l->body_size);
        if (r < 0)
                return r;
        r = out_append(s, ".\r\n", 3);
        if (r < 0)
                return r;
        s->message_sent = true;
        l->sent++;
        s->state = STATE_DOT;
        return 0;
}

static int send_quit(Session *s) {
        s->state = STATE_QUIT;
        return out_append(s, "QUIT\r\n", 6);
}

static int start_tls(Loader *l, Session *s) {
        s->ssl = SSL_new(l->ssl_ctx);
        if (!s->ssl)
                return -ENOMEM;
        if (SSL_set_fd(s->ssl, s->fd) != 1)
                return -EIO;
        if (l->tls_name) {
                (void) SSL_set_tlsext_host_name(s->ssl, l->tls_name);
                if (l->cafile && SSL_set1_host(s->ssl, l->tls_name) != 1)
                        return -EIO;
        }
        SSL_set_connect_state(s->ssl);
        s->state = STATE_HANDSHAKE;
        return 0;
}

static int do_handshake(Loader *l, Session *s) {
        int k = SSL_do_handshake(s->ssl);

        s->want_write = false;
        if (k == 1) {
                if (l->handshakes++ == 0)
                        (void) snprintf(l->tls_info, sizeof(l->tls_info), "%s/%s",
                                        SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
                s->state = STATE_EHLO_TLS;
                return send_ehlo(l, s);
        }
        switch (SSL_get_error(s->ssl, k)) {
        case SSL_ERROR_WANT_READ:
                return 0;
        case SSL_ERROR_WANT_WRITE:
                s->want_write = true;
                return 0;
        default: {
                unsigned long e = ERR_get_error();
                char buf[160];

                ERR_error_string_n(e, buf, sizeof(buf));
                session_error(l, s, "TLS handshake failed: %s (verify: %s)", buf,
                              X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
                ERR_clear_error();
                return -EPROTO;
        }
        }
}

/* The session is established (after EHLO, or after STARTTLS and EHLO). */
static int session_ready(Loader *l, Session *s) {
        session_set_setup(l, s, false);
        if (l->idle > 0) {
                s->state = STATE_IDLE;
                s->deadline_ms = 0;
                l->n_idle++;
                return 0;
        }
        return send_message(l, s);
}

static bool reply_is(const char *line, char first) {
        return line[0] == first;
}

/* One complete reply; line is its last line (NUL-terminated, no CRLF). 1: connection over. */
static int handle_reply(Loader *l, Session *s, const char *line) {
        switch (s->state) {
        case STATE_GREETING:
                if (!reply_is(line, '2'))
                        goto unexpected;
                s->state = STATE_EHLO;
                return send_ehlo(l, s);

        case STATE_EHLO:
                if (!reply_is(line, '2'))
                        goto unexpected;
                if (l->starttls) {
                        if (!s->starttls_offered) {
                                session_error(l, s, "server does not offer STARTTLS");
                                return -EPROTO;
                        }
                        s->state = STATE_STARTTLS;
                        return out_append(s, "STARTTLS\r\n", 10);
                }
                return session_ready(l, s);

        case STATE_STARTTLS:
                if (!reply_is(line, '2'))
                        goto unexpected;
                if (s->in_len > 0) {
                        /* RFC 3207 §4: nothing may follow the 220 in the clear */
                        session_error(l, s, "data after the STARTTLS reply");
                        return -EPROTO;
                }
                return start_tls(l, s);

        case STATE_EHLO_TLS:
                if (!reply_is(line, '2'))
                        goto unexpected;
                return session_ready(l, s);

        case STATE_MAIL:
                if (!reply_is(line, '2'))
                        goto unexpected;
                s->state = STATE_RCPT;
                if (l->pipeline && s->pipelining)
                        return 0;
                return out_printf(s, "RCPT TO:<%s>\r\n", l->to);

        case STATE_RCPT:
                if (!reply_is(line, '2'))
                        goto unexpected;
                s->state = STATE_DATA;
                if (l->pipeline && s->pipelining)
                        return 0;
                return out_append(s, "DATA\r\n", 6);

        case STATE_DATA:
                if (strncmp(line, "354", 3) != 0)
                        goto unexpected;
                return send_content(l, s);

        case STATE_DOT:
                if (strncmp(line, "250", 3) != 0)
                        goto unexpected;
                session_finish_message(l, s, true);
                if (l->reuse && messages_left(l)) {
                        session_claim(l, s);
                        return send_message(l, s);
                }
                return send_quit(s);

        case STATE_QUIT:
                /* 221 or not, the session is over */
                return 1;

        case STATE_IDLE:
                /* e.g. 421 timeout from the server */
                session_error(l, s, "unexpected reply while idle: %s", line);
                return -EPROTO;

        default:
                session_error(l, s, "reply in state %d: %s", (int) s->state, line);
                return -EPROTO;
        }

unexpected:
        session_error(l, s, "unexpected reply in state %d: %s", (int) s->state, line);
        return -EPROTO;
}

/* Parse complete lines out of s->in. */
static int process_input(Loader *l, Session *s) {
        for (;;) {
                char *nl = memchr(s->in, '\n', s->in_len);
                size_t n;
                bool last;
                int r;

                if (!nl) {
                        if (s->in_len >= sizeof(s->in) - 1) {
                                session_error(l, s, "reply line too long");
                                return -EPROTO;
                        }
                        return 0;
                }
                *nl = '\0';
                n = (size_t) (nl - s->in);
                if (n > 0 && s->in[n - 1] == '\r')
                        s->in[n - 1] = '\0';

                if (strlen(s->in) < 3 || s->in[0] < '2' || s->in[0] > '5') {
                        session_error(l, s, "malformed reply line: %.60s", s->in);
                        return -EPROTO;
                }
                last = s->in[3] != '-';
                if (++s->reply_lines > MAX_REPLY_LINES) {
                        session_error(l, s, "reply with too many lines");
                        return -EPROTO;
                }
                if (s->state == STATE_EHLO || s->state == STATE_EHLO_TLS) {
                        const char *kw = s->in + 4;
                        if (s->reply_lines > 1 || last) {
                                if (strncasecmp(kw, "PIPELINING", 10) == 0 && (kw[10] == '\0' || kw[10] == ' '))
                                        s->pipelining = true;
                                if (strncasecmp(kw, "STARTTLS", 8) == 0 && (kw[8] == '\0' || kw[8] == ' '))
                                        s->starttls_offered = true;
                        }
                }

                /* consume the line before acting on it, so the state handler sees what follows */
                {
                        char line[IN_BUF_SIZE];

                        memcpy(line, s->in, strlen(s->in) + 1);
                        memmove(s->in, nl + 1, s->in_len - n - 1);
                        s->in_len -= n + 1;
                        if (!last)
                                continue;
                        s->reply_lines = 0;
                        s->deadline_ms = s->state == STATE_IDLE ? 0 : now_ms() + (uint64_t) l->timeout_sec * 1000U;
                        r = handle_reply(l, s, line);
                        if (r != 0)
                                return r;
                }
                if (s->state == STATE_HANDSHAKE)
                        return 0;
        }
}

static void session_io(Loader *l, Session *s, uint32_t events) {
        int r;

        if (s->state == STATE_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof(err);

                if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (err != 0) {
                        session_error(l, s, "connect: %s", strerror(err));
                        session_fail(l, s);
                        return;
                }
                if (!(events & (EPOLLOUT | EPOLLIN | EPOLLERR | EPOLLHUP)))
                        return;
                s->state = STATE_GREETING;
        }

        if (s->state == STATE_HANDSHAKE) {
                r = do_handshake(l, s);
                if (r < 0)
                        goto fail;
                if (s->state == STATE_HANDSHAKE)
                        goto update;
                s->deadline_ms = now_ms() + (uint64_t) l->timeout_sec * 1000U;
        }

        /* read and act until the socket (and TLS buffer) is empty */
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                        ssize_t k;

                        if (s->state == STATE_HANDSHAKE || s->state == STATE_DONE || s->state == STATE_NEW)
                                break;
                        k = session_read(s, s->in + s->in_len, sizeof(s->in) - 1 - s->in_len);
                        if (k == -EAGAIN)
                                break;
                        if (k < 0) {
                                if (s->state == STATE_QUIT)
                                        goto closed;
                                session_error(l, s, "read: %s", strerror((int) -k));
                                goto fail;
                        }
                        if (k == 0) {
                                if (s->state == STATE_QUIT)
                                        goto closed;
                                session_error(l, s, "connection closed by the server in state %d", (int) s->state);
                                goto fail;
                        }
                        s->in_len += (size_t) k;
                        r = process_input(l, s);
                        if (r == 1)
                                goto closed;
                        if (r < 0)
                                goto fail;
                        if (s->state == STATE_HANDSHAKE) {
                                r = do_handshake(l, s);
                                if (r < 0)
                                        goto fail;
                        }
                }
        }

        r = session_flush(s);
        if (r < 0) {
                session_error(l, s, "write: %s", strerror(-r));
                goto fail;
        }
update:
        r = session_update_events(l, s);
        if (r < 0) {
                session_error(l, s, "epoll: %s", strerror(-r));
                goto fail;
        }
        return;

closed:
        /* the message outcome is already recorded; an unfinished one (none here) would fail */
        session_ended(l, s, false);
        return;
fail:
        session_fail(l, s);
}

static int make_body(Loader *l) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        size_t i = 0, line = 0;

        l->body = malloc(l->body_size + 1);
        if (!l->body)
                return -ENOMEM;
        /* lines of 1..76 characters plus CRLF, never a leading "."; exactly body_size bytes */
        while (i < l->body_size) {
                size_t left = l->body_size - i, n = MIN_SIZE(76, left - 2);

                if (left - 2 - n == 1 || left - 2 - n == 2)
                        n--;    /* leave at least one character plus CRLF for the last line */
                for (size_t k = 0; k < n; k++)
                        l->body[i++] = alphabet[(line + k) % (sizeof(alphabet) - 1)];
                l->body[i++] = '\r';
                l->body[i++] = '\n';
                line++;
        }
        l->body[l->body_size] = '\0';
        return 0;
}

static int setup_tls(Loader *l) {
        l->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!l->ssl_ctx)
                return -ENOMEM;
        (void) SSL_CTX_set_min_proto_version(l->ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(l->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
        /* every handshake is a full one: the worst case for the server */
        (void) SSL_CTX_set_session_cache_mode(l->ssl_ctx, SSL_SESS_CACHE_OFF);
        (void) SSL_CTX_set_options(l->ssl_ctx, SSL_OP_NO_TICKET);
        if (l->cafile) {
                if (SSL_CTX_load_verify_locations(l->ssl_ctx, l->cafile, NULL) != 1) {
                        fprintf(stderr, "smtp-load: cannot load CA file %s\n", l->cafile);
                        return -EINVAL;
                }
                SSL_CTX_set_verify(l->ssl_ctx, SSL_VERIFY_PEER, NULL);
        } else
                SSL_CTX_set_verify(l->ssl_ctx, SSL_VERIFY_NONE, NULL);
        return 0;
}

static void raise_nofile(unsigned need) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur >= need)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
}

static void check_timeouts(Loader *l, uint64_t now) {
        for (unsigned i = 0; i < l->n_sessions; i++) {
                Session *s = &l->sessions[i];

                if (s->fd >= 0 && s->deadline_ms > 0 && now >= s->deadline_ms) {
                        session_error(l, s, "timeout in state %d", (int) s->state);
                        session_fail(l, s);
                }
        }
}

static void start_pending(Loader *l) {
        for (unsigned i = 0; i < l->n_sessions && l->n_setup < l->max_setup && !got_signal; i++) {
                Session *s = &l->sessions[i];

                if (s->state == STATE_NEW)
                        (void) session_start(l, s);
        }
}

static int run(Loader *l) {
        struct epoll_event events[256];
        bool holding = false, quitting = false;
        uint64_t hold_until = 0;

        l->t_start_ms = now_ms();
        for (;;) {
                uint64_t now;
                int n;

                start_pending(l);
                if (l->n_done >= l->n_sessions)
                        break;

                if (l->idle > 0 && !holding && l->n_idle + l->n_idle_failed >= l->idle) {
                        holding = true;
                        hold_until = now_ms() + (uint64_t) l->hold_sec * 1000U;
                        printf("smtp-load: idle: %u/%u sessions established%s, holding %u s\n",
                               l->n_idle, l->idle, l->starttls ? " with TLS" : "", l->hold_sec);
                        fflush(stdout);
                }
                if (l->idle > 0 && holding && !quitting && (now_ms() >= hold_until || got_signal)) {
                        quitting = true;
                        for (unsigned i = 0; i < l->n_sessions; i++) {
                                Session *s = &l->sessions[i];

                                if (s->state != STATE_IDLE)
                                        continue;
                                if (send_quit(s) < 0 || session_flush(s) < 0 || session_update_events(l, s) < 0) {
                                        session_ended(l, s, true);
                                        continue;
                                }
                                s->deadline_ms = now_ms() + (uint64_t) l->timeout_sec * 1000U;
                        }
                        continue;
                }
                if (got_signal && l->idle == 0) {
                        /* stop: everything unfinished fails */
                        for (unsigned i = 0; i < l->n_sessions; i++)
                                if (l->sessions[i].state != STATE_DONE && l->sessions[i].state != STATE_NEW) {
                                        session_finish_message(l, &l->sessions[i], false);
                                        session_done(l, &l->sessions[i]);
                                } else if (l->sessions[i].state == STATE_NEW)
                                        session_done(l, &l->sessions[i]);
                        break;
                }

                n = epoll_wait(l->epoll_fd, events, (int) (sizeof(events) / sizeof(events[0])), 100);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        Session *s = events[i].data.ptr;

                        if (s->fd < 0)
                                continue;
                        session_io(l, s, events[i].events);
                }
                now = now_ms();
                check_timeouts(l, now);
        }
        l->t_end_ms = now_ms();
        return 0;
}

static void help(void) {
        printf("Usage: smtp-load [OPTIONS] HOST:PORT\n"
               "  -s, --sessions=N      concurrent sessions (default 10)\n"
               "  -m, --messages=N      total messages (default 100)\n"
               "  -l, --length=BYTES    body bytes per message (default 1024)\n"
               "  -f, --from=ADDR       envelope and header sender\n"
               "  -t, --to=ADDR         envelope and header recipient\n"
               "      --helo=NAME       EHLO name\n"
               "  -S, --starttls        STARTTLS (RFC 3207) before the mail transaction\n"
               "      --cafile=FILE     verify the server certificate against FILE\n"
               "      --tls-name=NAME   SNI and, with --cafile, the name to verify\n"
               "  -d, --reuse           all of a session's messages on one connection\n"
               "  -P, --pipeline        MAIL, RCPT and DATA in one write (RFC 2920) when offered\n"
               "      --idle=N          open N sessions, hold them established, then QUIT\n"
               "      --hold=SEC        how long --idle holds the sessions (default 10)\n"
               "      --timeout=SEC     fail a session after SEC without progress (default 30)\n"
               "      --max-setup=N     sessions connecting/handshaking at once (default 128)\n"
               "  -v, --verbose         print every session error\n"
               "  -h, --help\n");
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

enum {
        ARG_HELO = 0x100,
        ARG_CAFILE,
        ARG_TLS_NAME,
        ARG_IDLE,
        ARG_HOLD,
        ARG_TIMEOUT,
        ARG_MAX_SETUP,
};

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "sessions",  required_argument, NULL, 's'           },
                { "messages",  required_argument, NULL, 'm'           },
                { "length",    required_argument, NULL, 'l'           },
                { "from",      required_argument, NULL, 'f'           },
                { "to",        required_argument, NULL, 't'           },
                { "helo",      required_argument, NULL, ARG_HELO      },
                { "starttls",  no_argument,       NULL, 'S'           },
                { "cafile",    required_argument, NULL, ARG_CAFILE    },
                { "tls-name",  required_argument, NULL, ARG_TLS_NAME  },
                { "reuse",     no_argument,       NULL, 'd'           },
                { "pipeline",  no_argument,       NULL, 'P'           },
                { "idle",      required_argument, NULL, ARG_IDLE      },
                { "hold",      required_argument, NULL, ARG_HOLD      },
                { "timeout",   required_argument, NULL, ARG_TIMEOUT   },
                { "max-setup", required_argument, NULL, ARG_MAX_SETUP },
                { "verbose",   no_argument,       NULL, 'v'           },
                { "help",      no_argument,       NULL, 'h'           },
                {}
        };
        Loader l = {
                .n_sessions = 10,
                .n_messages = 100,
                .body_size = 1024,
                .from = "load@client.test",
                .to = "rcpt@example.test",
                .helo = "client.test",
                .hold_sec = 10,
                .timeout_sec = 30,
                .max_setup = MAX_SETUP_DEFAULT,
                .epoll_fd = -1,
        };
        struct sigaction sa = { .sa_handler = on_signal };
        uint64_t v;
        double secs, rate;
        int c, r;

        while ((c = getopt_long(argc, argv, "s:m:l:f:t:SdPvh", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (parse_uint(optarg, MAX_SESSIONS, &v) < 0 || v == 0)
                                goto bad_arg;
                        l.n_sessions = (unsigned) v;
                        break;
                case 'm':
                        if (parse_uint(optarg, MAX_MESSAGES, &v) < 0)
                                goto bad_arg;
                        l.n_messages = v;
                        break;
                case 'l':
                        if (parse_uint(optarg, MAX_BODY, &v) < 0 || v == 1)
                                goto bad_arg;
                        l.body_size = (size_t) v;
                        break;
                case 'f':
                        l.from = optarg;
                        break;
                case 't':
                        l.to = optarg;
                        break;
                case ARG_HELO:
                        l.helo = optarg;
                        break;
                case 'S':
                        l.starttls = true;
                        break;
                case ARG_CAFILE:
                        l.cafile = optarg;
                        break;
                case ARG_TLS_NAME:
                        l.tls_name = optarg;
                        break;
                case 'd':
                        l.reuse = true;
                        break;
                case 'P':
                        l.pipeline = true;
                        break;
                case ARG_IDLE:
                        if (parse_uint(optarg, MAX_SESSIONS, &v) < 0 || v == 0)
                                goto bad_arg;
                        l.idle = (unsigned) v;
                        break;
                case ARG_HOLD:
                        if (parse_uint(optarg, 86400, &v) < 0)
                                goto bad_arg;
                        l.hold_sec = (unsigned) v;
                        break;
                case ARG_TIMEOUT:
                        if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
                                goto bad_arg;
                        l.timeout_sec = (unsigned) v;
                        break;
                case ARG_MAX_SETUP:
                        if (parse_uint(optarg, MAX_SESSIONS, &v) < 0 || v == 0)
                                goto bad_arg;
                        l.max_setup = (unsigned) v;
                        break;
                case 'v':
                        l.verbose = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "smtp-load: expected exactly one HOST:PORT\n");
                return 2;
        }
        if (strpbrk(l.from, "<>\r\n ") || strpbrk(l.to, "<>\r\n ") || strpbrk(l.helo, "\r\n ")) {
                fprintf(stderr, "smtp-load: addresses and EHLO name must not contain <, >, blanks or line breaks\n");
                return 2;
        }
        if (l.cafile && !l.starttls) {
                fprintf(stderr, "smtp-load: --cafile needs --starttls\n");
                return 2;
        }
        l.target = argv[optind];
        if (parse_target(&l, l.target) < 0) {
                fprintf(stderr, "smtp-load: bad target %s (HOST:PORT)\n", l.target);
                return 2;
        }
        if (l.idle > 0)
                l.n_sessions = l.idle;
        else if (l.n_messages < l.n_sessions)
                l.n_sessions = l.n_messages > 0 ? (unsigned) l.n_messages : 1;
        if (l.idle == 0 && l.n_messages == 0) {
                fprintf(stderr, "smtp-load: nothing to send (-m 0)\n");
                return 2;
        }

        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        raise_nofile(l.n_sessions + 64);

        if (make_body(&l) < 0 || (l.starttls && setup_tls(&l) < 0)) {
                fprintf(stderr, "smtp-load: setup failed\n");
                return EXIT_FAILURE;
        }
        l.sessions = calloc(l.n_sessions, sizeof(Session));
        l.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (!l.sessions || l.epoll_fd < 0) {
                fprintf(stderr, "smtp-load: setup failed: %s\n", strerror(errno));
                return EXIT_FAILURE;
        }
        for (unsigned i = 0; i < l.n_sessions; i++) {
                l.sessions[i].idx = i;
                l.sessions[i].fd = -1;
                l.sessions[i].state = STATE_NEW;
        }

        r = run(&l);
        if (r < 0) {
                fprintf(stderr, "smtp-load: event loop failed: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        secs = (double) (l.t_end_ms - l.t_start_ms) / 1000.0;
        if (secs <= 0)
                secs = 0.001;

        if (l.idle > 0) {
                printf("smtp-load: idle sessions=%u established=%u failed=%u tls=%s handshakes=%" PRIu64
                       " seconds=%.2f%s%s\n",
                       l.idle, l.idle - l.n_idle_failed, l.n_idle_failed, l.starttls ? (l.tls_info[0] ? l.tls_info : "yes") : "no",
                       l.handshakes, secs,
                       l.first_error[0] ? " first-error=" : "", l.first_error);
                r = l.n_idle_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        } else {
                rate = (double) l.accepted / secs;
                printf("smtp-load: sent=%" PRIu64 " accepted=%" PRIu64 " failed=%" PRIu64
                       " seconds=%.2f rate=%.0f msg/s sessions=%u connections=%" PRIu64
                       " tls=%s handshakes=%" PRIu64 " reuse=%s pipeline=%s%s%s\n",
                       l.sent, l.accepted, l.failed, secs, rate, l.n_sessions, l.connections,
                       l.starttls ? (l.tls_info[0] ? l.tls_info : "yes") : "no", l.handshakes, l.reuse ? "yes" : "no",
                       l.pipeline ? "yes" : "no",
                       l.first_error[0] ? " first-error=" : "", l.first_error);
                r = l.failed == 0 && l.accepted == l.n_messages ? EXIT_SUCCESS : EXIT_FAILURE;
        }

        for (unsigned i = 0; i < l.n_sessions; i++) {
                session_close(&l, &l.sessions[i]);
                free(l.sessions[i].out);
        }
        free(l.sessions);
        free(l.body);
        (void) close(l.epoll_fd);
        SSL_CTX_free(l.ssl_ctx);
        return r;

bad_arg:
        fprintf(stderr, "smtp-load: bad value for -%c: %s\n", c < 0x100 ? c : '-', optarg);
        return 2;
}
