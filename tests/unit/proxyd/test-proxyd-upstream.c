/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The backend SMTP client: its pure helpers against tables and the PROXY v2 spec, then
 * whole conversations with a scripted fake server on 127.0.0.1 (a thread with blocking
 * I/O, so that the client under test is the only event-driven party). */

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "check-main.h"
#include "cleanup.h"
#include "proxyd-upstream.h"
#include "string-util.h"

/* ------------------------------------------------------------------------------------ */
/* PROXY v2 header, bytes computed by hand from the haproxy spec, section 2.2. */

#define SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A

static struct sockaddr_in sin4(const char *a, uint16_t port) {
        struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
        ck_assert_int_eq(inet_pton(AF_INET, a, &s.sin_addr), 1);
        return s;
}

static struct sockaddr_in6 sin6(const char *a, uint16_t port) {
        struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        ck_assert_int_eq(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
        return s;
}

START_TEST(test_proxy_v2_ipv4)
{
        static const uint8_t expect[] = {
                SIG,
                0x21,                   /* version 2, PROXY */
                0x11,                   /* AF_INET, STREAM */
                0x00, 0x0C,             /* 12 address bytes */
                192, 0, 2, 1,           /* source 192.0.2.1 */
                198, 51, 100, 25,       /* destination 198.51.100.25 */
                0xD4, 0x31,             /* source port 54321 */
                0x00, 0x19,             /* destination port 25 */
        };
        struct sockaddr_in s = sin4("192.0.2.1", 54321), d = sin4("198.51.100.25", 25);
        uint8_t buf[64];

        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s, (struct sockaddr*) &d, buf, sizeof(buf)),
                         (int) sizeof(expect));
        ck_assert_mem_eq(buf, expect, sizeof(expect));
        /* too small a buffer */
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s, (struct sockaddr*) &d, buf, 27), -ENOBUFS);
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s, (struct sockaddr*) &d, buf, 15), -ENOBUFS);
}
END_TEST

START_TEST(test_proxy_v2_ipv6)
{
        static const uint8_t expect[] = {
                SIG,
                0x21,
                0x21,                   /* AF_INET6, STREAM */
                0x00, 0x24,             /* 36 */
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,        /* 2001:db8::1 */
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00,     /* 2001:db8::200 */
                0x01, 0xBB,             /* 443 */
                0x02, 0x4B,             /* 587 */
        };
        static const uint8_t expect_mixed[] = {
                SIG, 0x21, 0x21, 0x00, 0x24,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7,               /* ::ffff:192.0.2.7 */
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00,
                0x00, 0x50,             /* 80 */
                0x00, 0x19,             /* 25 */
        };
        struct sockaddr_in6 s = sin6("2001:db8::1", 443), d = sin6("2001:db8::200", 587);
        struct sockaddr_in s4 = sin4("192.0.2.7", 80);
        uint8_t buf[64];

        d.sin6_scope_id = 0;
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s, (struct sockaddr*) &d, buf, sizeof(buf)),
                         (int) sizeof(expect));
        ck_assert_mem_eq(buf, expect, sizeof(expect));
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s, (struct sockaddr*) &d, buf, 51), -ENOBUFS);

        d.sin6_port = htons(25);
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &s4, (struct sockaddr*) &d, buf, sizeof(buf)),
                         (int) sizeof(expect_mixed));
        ck_assert_mem_eq(buf, expect_mixed, sizeof(expect_mixed));
}
END_TEST

START_TEST(test_proxy_v2_local)
{
        static const uint8_t expect[] = { SIG, 0x20, 0x00, 0x00, 0x00 };
        struct sockaddr_un u = { .sun_family = AF_UNIX, .sun_path = "/run/x" };
        struct sockaddr_in d = sin4("127.0.0.1", 25);
        struct sockaddr bad = { .sa_family = AF_APPLETALK };
        uint8_t buf[64];

        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &u, (struct sockaddr*) &u, buf, sizeof(buf)), 16);
        ck_assert_mem_eq(buf, expect, sizeof(expect));
        memset(buf, 0xAA, sizeof(buf));
        ck_assert_int_eq(proxy_v2_header_build((struct sockaddr*) &u, (struct sockaddr*) &d, buf, sizeof(buf)), 16);
        ck_assert_mem_eq(buf, expect, sizeof(expect));
        ck_assert_int_eq(proxy_v2_header_build(NULL, NULL, buf, sizeof(buf)), 16);
        ck_assert_mem_eq(buf, expect, sizeof(expect));
        ck_assert_int_eq(proxy_v2_header_build(&bad, (struct sockaddr*) &d, buf, sizeof(buf)), -EAFNOSUPPORT);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

START_TEST(test_xtext)
{
        static const struct {
                const char *in, *out;
        } table[] = {
                { "", "" },
                { "client.example", "client.example" },
                { "a+b", "a+2Bb" },
                { "a=b", "a+3Db" },
                { "two words", "two+20words" },
                { "[UNAVAILABLE]", "[UNAVAILABLE]" },
                { "IPV6:2001:db8::1", "IPV6:2001:db8::1" },
                { "tab\there", "tab+09here" },
                { "\x7f\x01", "+7F+01" },
                { "caf\xc3\xa9", "caf+C3+A9" },
                { "!~", "!~" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *x = NULL;

                ck_assert_int_eq(xtext_encode(table[i].in, &x), 0);
                ck_assert_msg(streq(x, table[i].out), "%zu: \"%s\" -> \"%s\", expected \"%s\"",
                              i, table[i].in, x, table[i].out);
        }
}
END_TEST

START_TEST(test_dot_stuff)
{
        static const struct {
                const char *in, *out;
        } table[] = {
                { "", "" },
                { "abc\r\n", "abc\r\n" },
                { ".\r\n", "..\r\n" },
                { ".abc\r\n", "..abc\r\n" },
                { "a.b\r\n.c\r\n", "a.b\r\n..c\r\n" },
                { "..\r\n", "...\r\n" },
                { "x\r\n.\r\n.\r\ny", "x\r\n..\r\n..\r\ny" },
                { "\r\n.", "\r\n.." },
                { "a\r.b", "a\r.b" },           /* CR alone does not start a line */
                { "a\n.b", "a\n..b" },          /* LF does (what the backend would see) */
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t l = strlen(table[i].in);
                _cleanup_free_ char *whole = malloc(2 * l + 1);
                bool bol = true;
                size_t n;

                ck_assert_ptr_nonnull(whole);
                n = smtp_dot_stuff(table[i].in, l, &bol, whole);
                ck_assert_uint_eq(n, strlen(table[i].out));
                ck_assert_msg(memcmp(whole, table[i].out, n) == 0, "case %zu", i);

                /* Split at every position: the result must not change. */
                for (size_t split = 0; split <= l; split++) {
                        _cleanup_free_ char *parts = malloc(2 * l + 1);
                        size_t m;

                        bol = true;
                        m = smtp_dot_stuff(table[i].in, split, &bol, parts);
                        m += smtp_dot_stuff(table[i].in + split, l - split, &bol, parts + m);
                        ck_assert_uint_eq(m, n);
                        ck_assert_msg(memcmp(parts, whole, n) == 0, "case %zu split %zu", i, split);
                }
        }

        /* State carried in: not at line start, a dot is just a dot. */
        bool bol = false;
        char out[8];
        ck_assert_uint_eq(smtp_dot_stuff(".x", 2, &bol, out), 2);
        ck_assert(!bol);
        ck_assert_uint_eq(smtp_dot_stuff("\n", 1, &bol, out), 1);
        ck_assert(bol);
}
END_TEST

START_TEST(test_parse_pin)
{
        static const char *bad[] = {
                "",
                "00",
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",     /* 63 */
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",   /* 65 */
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
                "0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef",
                "01:23:45:67:89:ab:cd:ef",
        };
        uint8_t pin[32], expect[32];

        for (size_t i = 0; i < 32; i++)
                expect[i] = (uint8_t) (i % 8 * 0x22 + 0x01);
        /* 01 23 45 67 89 ab cd ef, four times */
        ck_assert_int_eq(upstream_parse_pin("0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789AbCdEf",
                                            pin), 0);
        ck_assert_mem_eq(pin, expect, 32);

        memset(pin, 0x55, sizeof(pin));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(upstream_parse_pin(bad[i], pin), -EINVAL);
                ck_assert_uint_eq(pin[0], 0x55);        /* untouched on failure */
        }
        ck_assert_int_eq(upstream_parse_pin(NULL, pin), -EINVAL);
}
END_TEST

START_TEST(test_string_tables)
{
        ck_assert_str_eq(backend_client_info_to_string(BACKEND_CLIENT_INFO_XCLIENT), "xclient");
        ck_assert_str_eq(backend_client_info_to_string(BACKEND_CLIENT_INFO_PROXY_V2), "proxy-v2");
        ck_assert_str_eq(backend_client_info_to_string(BACKEND_CLIENT_INFO_NONE), "none");
        ck_assert_ptr_null(backend_client_info_to_string(_BACKEND_CLIENT_INFO_MAX));
        ck_assert_int_eq(backend_client_info_from_string("proxy-v2"), BACKEND_CLIENT_INFO_PROXY_V2);
        ck_assert_int_eq(backend_client_info_from_string("XCLIENT"), -EINVAL);
        ck_assert_int_eq(backend_client_info_from_string(NULL), -EINVAL);
        ck_assert_str_eq(backend_tls_to_string(BACKEND_TLS_MAY), "may");
        ck_assert_int_eq(backend_tls_from_string("verify"), BACKEND_TLS_VERIFY);
        ck_assert_int_eq(backend_tls_from_string("yes"), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* The fake backend. */

typedef enum StepOp {
        SEND,           /* text */
        EXPECT,         /* one line, compared without CRLF */
        EXPECT_DATA,    /* everything up to CRLF.CRLF, kept in received */
        EXPECT_BDAT,    /* "BDAT n LAST" and n bytes, kept in received */
        EXPECT_PROXY,   /* a PROXY v2 header, kept in received */
        READ_RAW,       /* n bytes, then go on */
        STARTTLS,       /* TLS handshake as the server */
        CLOSE,
        SILENCE,        /* wait for the client to go away */
} StepOp;

typedef struct Step {
        StepOp op;
        const char *text;
        size_t n;
} Step;

typedef struct FakeServer {
        int listen_fd, fd;
        uint16_t port;
        const Step *steps;
        size_t n_steps;
        SSL_CTX *ssl_ctx;
        SSL *ssl;
        pthread_t thread;
        char buf[8192];
        size_t buf_len;
        char *received;
        size_t received_len;
        char error[512];
        size_t steps_done;
} FakeServer;

static void server_error(FakeServer *s, const char *fmt, ...) _printf_(2, 3);
static void server_error(FakeServer *s, const char *fmt, ...) {
        va_list ap;

        if (s->error[0])
                return;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof(s->error), fmt, ap);
        va_end(ap);
}

static ssize_t server_recv(FakeServer *s, void *p, size_t n) {
        if (s->ssl) {
                int l = SSL_read(s->ssl, p, (int) n);
                return l > 0 ? l : 0;
        }
        return recv(s->fd, p, n, 0);
}

static int server_send(FakeServer *s, const void *p, size_t n) {
        if (s->ssl)
                return SSL_write(s->ssl, p, (int) n) == (int) n ? 0 : -EIO;
        return send(s->fd, p, n, MSG_NOSIGNAL) == (ssize_t) n ? 0 : -EIO;
}

/* Makes sure at least n bytes are buffered. */
static int server_fill(FakeServer *s, size_t n) {
        while (s->buf_len < n) {
                ssize_t k = server_recv(s, s->buf + s->buf_len, sizeof(s->buf) - s->buf_len);
                if (k <= 0)
                        return -EIO;
                s->buf_len += (size_t) k;
        }
        return 0;
}

static void server_consume(FakeServer *s, size_t n) {
        memmove(s->buf, s->buf + n, s->buf_len - n);
        s->buf_len -= n;
}

static void server_keep(FakeServer *s, const char *p, size_t n) {
        s->received = realloc(s->received, s->received_len + n + 1);
        assert(s->received);
        memcpy(s->received + s->received_len, p, n);
        s->received_len += n;
        s->received[s->received_len] = 0;
}

static int server_line(FakeServer *s, char *line, size_t size) {
        for (;;) {
                char *nl = memchr(s->buf, '\n', s->buf_len);
                if (nl) {
                        size_t l = (size_t) (nl - s->buf) + 1;
                        if (l < 2 || s->buf[l - 2] != '\r' || l - 2 >= size)
                                return -EBADMSG;
                        memcpy(line, s->buf, l - 2);
                        line[l - 2] = 0;
                        server_consume(s, l);
                        return 0;
                }
                if (server_fill(s, s->buf_len + 1) < 0)
                        return -EIO;
        }
}

static void* server_thread(void *userdata) {
        FakeServer *s = userdata;
        char line[4096];

        s->fd = accept(s->listen_fd, NULL, NULL);
        if (s->fd < 0) {
                server_error(s, "accept: %s", strerror(errno));
                return NULL;
        }
        struct timeval tv = { .tv_sec = 10 };
        (void) setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

        for (size_t i = 0; i < s->n_steps; i++) {
                const Step *st = s->steps + i;

                switch (st->op) {
                case SEND:
                        if (server_send(s, st->text, strlen(st->text)) < 0)
                                return server_error(s, "send failed before '%s'", st->text), NULL;
                        break;
                case EXPECT:
                        if (server_line(s, line, sizeof(line)) < 0)
                                return server_error(s, "no line, expected '%s'", st->text), NULL;
                        if (!streq(line, st->text)) {
                                server_error(s, "got '%.200s', expected '%.200s'", line, st->text);
                                return NULL;
                        }
                        break;
                case EXPECT_DATA:
                        for (;;) {
                                char *end = memmem(s->buf, s->buf_len, "\r\n.\r\n", 5);
                                if (s->received_len == 0 && s->buf_len >= 3 && memcmp(s->buf, ".\r\n", 3) == 0) {
                                        server_keep(s, "", 0);
                                        server_consume(s, 3);
                                        break;
                                }
                                if (end) {
                                        size_t l = (size_t) (end - s->buf) + 2;
                                        server_keep(s, s->buf, l);
                                        server_consume(s, l + 3);
                                        break;
                                }
                                /* keep the last 4 bytes: the terminator may straddle */
                                if (s->buf_len > 4) {
                                        server_keep(s, s->buf, s->buf_len - 4);
                                        server_consume(s, s->buf_len - 4);
                                }
                                if (server_fill(s, s->buf_len + 1) < 0)
                                        return server_error(s, "%s", "connection lost in DATA"), NULL;
                        }
                        break;
                case EXPECT_BDAT: {
                        unsigned long long n;
                        char last[8];

                        if (server_line(s, line, sizeof(line)) < 0 ||
                            sscanf(line, "BDAT %llu %7s", &n, last) != 2 || !streq(last, "LAST"))
                                return server_error(s, "bad BDAT line '%.200s'", line), NULL;
                        while (n > 0) {
                                if (server_fill(s, 1) < 0)
                                        return server_error(s, "%s", "connection lost in BDAT"), NULL;
                                size_t k = (size_t) MIN((unsigned long long) s->buf_len, n);
                                server_keep(s, s->buf, k);
                                server_consume(s, k);
                                n -= k;
                        }
                        break;
                }
                case EXPECT_PROXY:
                        if (server_fill(s, 16) < 0)
                                return server_error(s, "%s", "no PROXY header"), NULL;
                        size_t l = 16 + ((size_t) (uint8_t) s->buf[14] << 8 | (uint8_t) s->buf[15]);
                        if (server_fill(s, l) < 0)
                                return server_error(s, "%s", "short PROXY header"), NULL;
                        server_keep(s, s->buf, l);
                        server_consume(s, l);
                        break;
                case READ_RAW:
                        if (server_fill(s, st->n) < 0)
                                return server_error(s, "%s", "short read"), NULL;
                        server_consume(s, st->n);
                        break;
                case STARTTLS:
                        if (s->buf_len > 0)
                                return server_error(s, "%s", "pipelined data before TLS"), NULL;
                        s->ssl = SSL_new(s->ssl_ctx);
                        SSL_set_fd(s->ssl, s->fd);
                        if (SSL_accept(s->ssl) != 1) {
                                /* A refused certificate ends here: not a server error. */
                                s->steps_done = i;
                                return NULL;
                        }
                        break;
                case CLOSE:
                        if (s->ssl)
                                (void) SSL_shutdown(s->ssl);
                        s->fd = safe_close(s->fd);
                        s->steps_done = i + 1;
                        return NULL;
                case SILENCE: {
                        char c;
                        while (server_recv(s, &c, 1) > 0)
                                ;
                        break;
                }
                }
                s->steps_done = i + 1;
        }
        return NULL;
}

static void server_start(FakeServer *s, const Step *steps, size_t n_steps) {
        struct sockaddr_in a = sin4("127.0.0.1", 0);
        socklen_t l = sizeof(a);

        *s = (FakeServer) { .listen_fd = -1, .fd = -1, .steps = steps, .n_steps = n_steps, .ssl_ctx = s->ssl_ctx };
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(s->listen_fd, 0);
        ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr*) &a, sizeof(a)), 0);
        ck_assert_int_eq(listen(s->listen_fd, 4), 0);
        ck_assert_int_eq(getsockname(s->listen_fd, (struct sockaddr*) &a, &l), 0);
        s->port = ntohs(a.sin_port);
        ck_assert_int_eq(pthread_create(&s->thread, NULL, server_thread, s), 0);
}

static void server_join(FakeServer *s) {
        ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
        if (s->ssl)
                SSL_free(s->ssl);
        s->ssl = NULL;
        s->fd = safe_close(s->fd);
        s->listen_fd = safe_close(s->listen_fd);
}

/* ------------------------------------------------------------------------------------ */
/* The client side: a list of actions driven from the handler. */

typedef enum ActionOp {
        HELLO,          /* arg: helo name; esmtp */
        HELLO_SMTP,
        COMMAND,        /* arg: line */
        PIPELINED,      /* arg: "first\nsecond", upstream_command_pipelined() */
        MESSAGE,        /* the test's message */
        DATA_START,     /* upstream_data_start(); expect_error of the call itself in arg "EOPNOTSUPP" */
        EXPECT_DEAD,    /* the next call must fail with -ENOTCONN; then free */
        QUIT,           /* upstream_quit_and_free() */
        FREE,           /* upstream_free() */
} ActionOp;

typedef struct Action {
        ActionOp op;
        const char *arg;
        unsigned expect_code;   /* of the reply that ends the previous call */
        int expect_error;
        int expect_error_alt;   /* another acceptable error */
        bool expect_first;      /* that reply answers the first of two pipelined commands */
} Action;

typedef struct Client {
        sd_event *event;
        UpstreamConfig config;
        Upstream *upstream;
        const Action *actions;  /* actions[0].expect_* is for upstream_new() */
        size_t n_actions, next;
        const char *prefix;
        int memfd;
        uint64_t size;
        char error[512];
        bool done;
        char *tls;
} Client;

static void client_fail(Client *c, const char *msg) {
        if (!c->error[0])
                snprintf(c->error, sizeof(c->error), "action %zu: %s", c->next, msg);
        c->upstream = upstream_free(c->upstream);
        c->done = true;
        (void) sd_event_exit(c->event, 0);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *c = userdata;
        client_fail(c, "watchdog: the test did not finish");
        return 0;
}

static void client_init(Client *c, uint16_t port) {
        *c = (Client) { .memfd = -1 };
        ck_assert_int_eq(sd_event_new(&c->event), 0);
        ck_assert_int_eq(socket_address_parse("127.0.0.1:1", &c->config.address), 0);
        ((struct sockaddr_in*) &c->config.address.sockaddr)->sin_port = htons(port);
        c->config.client_info = BACKEND_CLIENT_INFO_NONE;
        /* "may": the client EHLOs with its own name first to learn STARTTLS, which the
         * scripted conversations below expect (test_no_own_ehlo covers BackendTLS=no). */
        c->config.tls = BACKEND_TLS_MAY;
        c->config.helo = strdup("proxy.test");
        c->config.connect_timeout = c->config.greeting_timeout = c->config.mail_timeout =
                c->config.rcpt_timeout = c->config.data_init_timeout = c->config.data_block_timeout =
                c->config.data_term_timeout = 5 * USEC_PER_SEC;
}

static void client_done(Client *c) {
        c->upstream = upstream_free(c->upstream);
        upstream_config_done(&c->config);
        c->event = sd_event_unref(c->event);
        c->memfd = safe_close(c->memfd);
        free(c->tls);
}

static void client_set_message(Client *c, const char *prefix, const char *body, size_t len) {
        c->prefix = prefix;
        c->memfd = memfd_create("msg", MFD_CLOEXEC);
        ck_assert_int_ge(c->memfd, 0);
        ck_assert_int_eq(write(c->memfd, body, len), (ssize_t) len);
        c->size = len;
}

static void on_step(Upstream *u, const SmtpReply *reply, int error, void *userdata);

/* Runs the actions; each action's expect_* is checked against the reply that completes
 * the call before it (actions[0]: upstream_new()). */
static void client_run(Client *c, const Action *actions, size_t n, const UpstreamClientInfo *info) {
        sd_event_source *watchdog = NULL;
        int r;

        c->actions = actions;
        c->n_actions = n;
        c->next = 0;

        ck_assert_int_eq(upstream_config_prepare(&c->config), 0);
        ck_assert_int_eq(sd_event_add_time_relative(c->event, &watchdog, CLOCK_MONOTONIC, 20 * USEC_PER_SEC, 0,
                                                    on_watchdog, c), 0);
        r = upstream_new(c->event, &c->config, info, on_step, c, &c->upstream);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(sd_event_loop(c->event), 0);
        sd_event_source_unref(watchdog);
        ck_assert(c->done);
}

static void on_step(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Client *c = userdata;
        const Action *a = c->actions + c->next;
        char msg[256];

        ck_assert_ptr_eq(u, c->upstream);
        ck_assert((reply == NULL) == (error < 0));
        if (error != a->expect_error && (error == 0 || error != a->expect_error_alt)) {
                snprintf(msg, sizeof(msg), "error %i (%s), expected %i", error, strerror(-error), a->expect_error);
                return client_fail(c, msg);
        }
        if (error < 0) {
                /* Dead now: every further call fails. */
                ck_assert_int_eq(upstream_command(u, "NOOP", USEC_PER_SEC, on_step, c), -ENOTCONN);
                c->upstream = upstream_free(c->upstream);
                c->done = true;
                c->next++;
                (void) sd_event_exit(c->event, 0);
                return;
        }
        if (reply->code != a->expect_code) {
                snprintf(msg, sizeof(msg), "reply %u %s, expected %u", reply->code,
                         reply->n_lines > 0 ? reply->lines[0] : "", a->expect_code);
                return client_fail(c, msg);
        }
        if (upstream_reply_to_first(u) != a->expect_first) {
                snprintf(msg, sizeof(msg), "reply %u taken as the answer to the %s command", reply->code,
                         upstream_reply_to_first(u) ? "first" : "second (or only)");
                return client_fail(c, msg);
        }
        if (upstream_is_idle(u) && !upstream_has_capability(u, "PIPELINING", NULL))
                ck_assert_int_eq(upstream_command_pipelined(u, "NOOP", USEC_PER_SEC, "NOOP", USEC_PER_SEC, on_step, c),
                                 -EOPNOTSUPP);
        if (upstream_tls_description(u) && !c->tls)
                c->tls = strdup(upstream_tls_description(u));

        /* A second call while one is pending is refused. */
        c->next++;
        if (c->next >= c->n_actions)
                return client_fail(c, "script ended");
        a = c->actions + c->next;

        int r;
        switch (a->op) {
        case HELLO:
        case HELLO_SMTP:
                r = upstream_hello(u, a->arg, a->op == HELLO, false, on_step, c);
                break;
        case COMMAND:
                r = upstream_command(u, a->arg, 5 * USEC_PER_SEC, on_step, c);
                break;
        case PIPELINED: {
                const char *nl = strchr(a->arg, '\n');
                _cleanup_free_ char *first = strndup(a->arg, nl - a->arg);

                ck_assert(first);
                r = upstream_command_pipelined(u, first, 5 * USEC_PER_SEC, nl + 1, 5 * USEC_PER_SEC, on_step, c);
                break;
        }
        case MESSAGE:
                r = upstream_send_message(u, c->prefix, c->prefix ? strlen(c->prefix) : 0,
                                          c->memfd, c->size, on_step, c);
                break;
        case DATA_START:
                r = upstream_data_start(u, on_step, c);
                if (a->arg && streq(a->arg, "EOPNOTSUPP")) {
                        /* A CHUNKING backend: refused at once, the connection stays usable. */
                        ck_assert_int_eq(r, -EOPNOTSUPP);
                        c->next++;
                        a = c->actions + c->next;
                        ck_assert_int_eq(a->op, MESSAGE);
                        r = upstream_send_message(u, c->prefix, c->prefix ? strlen(c->prefix) : 0,
                                                  c->memfd, c->size, on_step, c);
                }
                break;
        case EXPECT_DEAD:
                ck_assert_int_eq(upstream_command(u, "NOOP", USEC_PER_SEC, on_step, c), -ENOTCONN);
                c->upstream = upstream_free(c->upstream);
                c->next++;
                c->done = true;
                (void) sd_event_exit(c->event, 0);
                return;
        case QUIT:
                c->upstream = upstream_quit_and_free(c->upstream);     /* handlers may free */
                c->next++;
                c->done = true;
                (void) sd_event_exit(c->event, 0);
                return;
        case FREE:
        default:
                c->upstream = upstream_free(c->upstream);
                c->next++;
                c->done = true;
                (void) sd_event_exit(c->event, 0);
                return;
        }
        if (r < 0) {
                snprintf(msg, sizeof(msg), "call failed: %s", strerror(-r));
                return client_fail(c, msg);
        }
        ck_assert_int_eq(upstream_command(u, "NOOP", USEC_PER_SEC, on_step, c), -EBUSY);
}

#define ASSERT_SERVER_OK(s)                                                     \
        ck_assert_msg(!(s)->error[0], "server: %s", (s)->error)
#define ASSERT_CLIENT_OK(c)                                                     \
        ck_assert_msg(!(c)->error[0], "client: %s", (c)->error)

/* A body with dots at line starts, long enough for several chunks and back-pressure. */
static char* make_body(size_t lines, size_t *ret_len, char **ret_stuffed, size_t *ret_stuffed_len) {
        size_t cap = lines * 100 + 16, len = 0, slen = 0;
        char *b = malloc(cap), *st = malloc(2 * cap);

        ck_assert(b && st);
        for (size_t i = 0; i < lines; i++) {
                int n;
                if (i % 3 == 0)
                        n = snprintf(b + len, cap - len, ".line %zu with a leading dot\r\n", i);
                else if (i % 7 == 0)
                        n = snprintf(b + len, cap - len, ".\r\n");
                else
                        n = snprintf(b + len, cap - len, "line %zu: the quick brown fox. jumps\r\n", i);
                len += (size_t) n;
        }
        for (size_t i = 0; i < len; i++) {
                if (b[i] == '.' && (i == 0 || b[i - 1] == '\n'))
                        st[slen++] = '.';
                st[slen++] = b[i];
        }
        *ret_len = len;
        *ret_stuffed = st;
        *ret_stuffed_len = slen;
        return b;
}

START_TEST(test_session_xclient)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n250 8BITMIME\r\n" },
                { EXPECT, "XCLIENT ADDR=IPV6:2001:db8::7 PORT=40000 NAME=[UNAVAILABLE] PROTO=ESMTP HELO=client+2Bx.example" },
                { SEND, "220 fake.test ESMTP again\r\n" },
                { EXPECT, "EHLO client+x.example" },
                { SEND, "250-fake.test hello client\r\n250-SIZE 100000000\r\n250 8BITMIME\r\n" },
                { EXPECT, "MAIL FROM:<a@example.test>" },
                { SEND, "250 2.1.0 Ok\r\n" },
                { EXPECT, "RCPT TO:<b@example.test>" },
                { SEND, "250 2.1.5 Ok\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n" },
                { EXPECT_DATA },
                { SEND, "250 2.0.0 Ok: queued as 4711\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "client+x.example", .expect_code = 250 },
                { COMMAND, "MAIL FROM:<a@example.test>", .expect_code = 250 },
                { COMMAND, "RCPT TO:<b@example.test>", .expect_code = 250 },
                { MESSAGE, .expect_code = 250 },
                { QUIT },
        };
        static const char prefix[] = "Received: from client by proxy.test\r\n";
        struct sockaddr_in6 client = sin6("2001:db8::7", 40000);
        UpstreamClientInfo info = { .client = (struct sockaddr*) &client, .client_len = sizeof(client) };
        _cleanup_free_ char *body = NULL, *stuffed = NULL;
        size_t len, slen;
        FakeServer s = {};
        Client c;

        body = make_body(30000, &len, &stuffed, &slen);    /* about 1 MB */
        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.client_info = BACKEND_CLIENT_INFO_XCLIENT;
        client_set_message(&c, prefix, body, len);
        client_run(&c, actions, ELEMENTSOF(actions), &info);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_uint_eq(s.steps_done, ELEMENTSOF(steps));

        ck_assert_uint_eq(s.received_len, STRLEN(prefix) + slen);
        ck_assert(memcmp(s.received, prefix, STRLEN(prefix)) == 0);
        ck_assert(memcmp(s.received + STRLEN(prefix), stuffed, slen) == 0);
        free(s.received);
        client_done(&c);
}
END_TEST

START_TEST(test_no_own_ehlo)
{
        /* BackendTLS=no without XCLIENT: nothing to learn from an EHLO of our own, so the
         * client's EHLO is the first command the backend sees. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO client.example" },
                { SEND, "250-fake.test\r\n250 SIZE 1000\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "client.example", .expect_code = 250 },
                { QUIT },
        };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.tls = BACKEND_TLS_NO;
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_pipelined)
{
        /* MAIL held back and sent with the first RCPT in one write: accepted, the RCPT's
         * reply is the answer; refused, the MAIL's reply is, and the RCPT's 503 is read
         * and dropped; the connection goes on either way. A client that said HELO is
         * introduced with EHLO, so that the backend's PIPELINING can be used. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO old.example" },
                { SEND, "250-fake.test\r\n250 PIPELINING\r\n" },
                { EXPECT, "MAIL FROM:<a@example.org>" },
                { EXPECT, "RCPT TO:<b@example.com>" },
                { SEND, "250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n" },
                { EXPECT, "RSET" },
                { SEND, "250 2.0.0 ok\r\n" },
                { EXPECT, "MAIL FROM:<bad@example.org>" },
                { EXPECT, "RCPT TO:<b@example.com>" },
                { SEND, "553 5.7.1 sender refused\r\n" },
                { SEND, "503 5.5.1 need MAIL\r\n" },
                { EXPECT, "MAIL FROM:<a@example.org>" },
                { EXPECT, "RCPT TO:<nobody@example.com>" },
                { SEND, "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n" },
                { EXPECT, "NOOP" },
                { SEND, "250 2.0.0 ok\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO_SMTP, "old.example", .expect_code = 250 },
                { PIPELINED, "MAIL FROM:<a@example.org>\nRCPT TO:<b@example.com>", .expect_code = 250 },
                { COMMAND, "RSET", .expect_code = 250 },
                { PIPELINED, "MAIL FROM:<bad@example.org>\nRCPT TO:<b@example.com>", .expect_code = 553,
                  .expect_first = true },
                { PIPELINED, "MAIL FROM:<a@example.org>\nRCPT TO:<nobody@example.com>", .expect_code = 550 },
                { COMMAND, "NOOP", .expect_code = 250 },
                { QUIT },
        };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.tls = BACKEND_TLS_NO;
        c.config.client_info = BACKEND_CLIENT_INFO_NONE;
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_pipelined_not_offered)
{
        /* Without PIPELINING nothing is sent and the connection stays usable (on_step()
         * checks that after every reply, here after the first EHLO); a 421 to the first
         * command ends the call at once, without waiting for the second. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO client.example" },
                { SEND, "250-fake.test\r\n250 SIZE 1000\r\n" },
                { EXPECT, "EHLO client.example" },
                { SEND, "250-fake.test\r\n250 PIPELINING\r\n" },
                { EXPECT, "MAIL FROM:<a@example.org>" },
                { EXPECT, "RCPT TO:<b@example.com>" },
                { SEND, "421 4.3.2 going down\r\n" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "client.example", .expect_code = 250 },
                { HELLO, "client.example", .expect_code = 250 },
                { PIPELINED, "MAIL FROM:<a@example.org>\nRCPT TO:<b@example.com>", .expect_code = 421,
                  .expect_first = true },
                { EXPECT_DEAD },
        };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.tls = BACKEND_TLS_NO;
        c.config.client_info = BACKEND_CLIENT_INFO_NONE;
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_data_ahead)
{
        /* DATA sent before the message is complete: the 354 comes back alone, and the
         * content follows without a second DATA. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
                { EXPECT, "EHLO client.example" },
                { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
                { EXPECT, "MAIL FROM:<a@example.org>" },
                { SEND, "250 ok\r\n" },
                { EXPECT, "RCPT TO:<b@example.com>" },
                { SEND, "250 ok\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n" },
                { EXPECT_DATA },
                { SEND, "250 queued\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "client.example", .expect_code = 250 },
                { COMMAND, "MAIL FROM:<a@example.org>", .expect_code = 250 },
                { COMMAND, "RCPT TO:<b@example.com>", .expect_code = 250 },
                { DATA_START, .expect_code = 354 },
                { MESSAGE, .expect_code = 250 },
                { QUIT },
        };
        static const char body[] = "Subject: x\r\n\r\n.dot\r\n";
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, NULL, body, STRLEN(body));
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_str_eq(s.received, "Subject: x\r\n\r\n..dot\r\n");
        free(s.received);
        client_done(&c);
}
END_TEST

START_TEST(test_data_ahead_refused_and_chunking)
{
        /* A refused DATA is the answer; a CHUNKING backend refuses DATA ahead at once and
         * gets BDAT at the end. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 CHUNKING\r\n" },
                { EXPECT, "EHLO client.example" },
                { SEND, "250-fake.test\r\n250 CHUNKING\r\n" },
                { EXPECT, "MAIL FROM:<a@example.org>" },
                { SEND, "250 ok\r\n" },
                { EXPECT_BDAT },
                { SEND, "250 queued\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "client.example", .expect_code = 250 },
                { COMMAND, "MAIL FROM:<a@example.org>", .expect_code = 250 },
                { DATA_START, "EOPNOTSUPP" },
                { MESSAGE, .expect_code = 250 },
                { QUIT },
        };
        static const char body[] = "Subject: x\r\n\r\n";
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, NULL, body, STRLEN(body));
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        free(s.received);
        client_done(&c);
}
END_TEST

START_TEST(test_session_no_final_crlf)
{
        /* Content without a final CRLF gets one; a non-ESMTP client is introduced with
         * EHLO, and with HELO when the backend refuses EHLO. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 SIZE 1000\r\n" },
                { EXPECT, "EHLO old.example" },
                { SEND, "502 5.5.1 EHLO not implemented\r\n" },
                { EXPECT, "HELO old.example" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n" },
                { EXPECT_DATA },
                { SEND, "250 ok\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO_SMTP, "old.example", .expect_code = 250 },
                { MESSAGE, .expect_code = 250 },
                { QUIT },
        };
        static const char body[] = "Subject: x\r\n\r\n.dot\r\nno end";
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, NULL, body, STRLEN(body));
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_str_eq(s.received, "Subject: x\r\n\r\n..dot\r\nno end\r\n");
        free(s.received);
        client_done(&c);
}
END_TEST

static void on_caps(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Client *c = userdata;
        const char *p = NULL;

        ck_assert_int_eq(error, 0);
        ck_assert_uint_eq(reply->code, 220);
        ck_assert_ptr_nonnull(upstream_capabilities(u));
        ck_assert(upstream_has_capability(u, "size", &p));
        ck_assert_str_eq(p, "1000");
        ck_assert(upstream_has_capability(u, "CHUNKING", NULL));
        ck_assert(!upstream_has_capability(u, "STARTTLS", NULL));
        ck_assert_ptr_null(upstream_tls_description(u));
        ck_assert_int_eq(upstream_command(u, "bad\r\ninjected", USEC_PER_SEC, on_caps, c), -EINVAL);
        c->done = true;
        c->upstream = upstream_quit_and_free(c->upstream);
        (void) sd_event_exit(c->event, 0);
}

START_TEST(test_capabilities)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250-SIZE 1000\r\n250 CHUNKING\r\n" },
                { EXPECT, "QUIT" },
        };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        ck_assert_int_eq(upstream_config_prepare(&c.config), 0);
        ck_assert_int_eq(upstream_new(c.event, &c.config, NULL, on_caps, &c, &c.upstream), 0);
        ck_assert_int_eq(sd_event_loop(c.event), 0);
        server_join(&s);
        ck_assert(c.done);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_session_bdat)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250-CHUNKING\r\n250 BINARYMIME\r\n" },
                { EXPECT, "EHLO c.example" },
                { SEND, "250-fake.test\r\n250-CHUNKING\r\n250 BINARYMIME\r\n" },
                { EXPECT, "MAIL FROM:<>" },
                { SEND, "250 ok\r\n" },
                { EXPECT_BDAT },
                { SEND, "250 2.0.0 ok\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "c.example", .expect_code = 250 },
                { COMMAND, "MAIL FROM:<>", .expect_code = 250 },
                { MESSAGE, .expect_code = 250 },
                { QUIT },
        };
        _cleanup_free_ char *body = NULL, *stuffed = NULL;
        size_t len, slen;
        FakeServer s = {};
        Client c;

        body = make_body(5000, &len, &stuffed, &slen);
        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, "X-Prefix: 1\r\n", body, len);
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        /* raw, no dot-stuffing */
        ck_assert_uint_eq(s.received_len, 13 + len);
        ck_assert(memcmp(s.received, "X-Prefix: 1\r\n", 13) == 0);
        ck_assert(memcmp(s.received + 13, body, len) == 0);
        free(s.received);
        client_done(&c);
}
END_TEST

START_TEST(test_proxy_v2_session)
{
        static const Step steps[] = {
                { EXPECT_PROXY },
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "EHLO c.example" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "QUIT" },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "c.example", .expect_code = 250 },
                { QUIT },
        };
        static const uint8_t expect[] = {
                SIG, 0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 127, 0, 0, 1, 0x30, 0x39, 0x00, 0x19,
        };
        struct sockaddr_in client = sin4("192.0.2.1", 12345), local = sin4("127.0.0.1", 25);
        UpstreamClientInfo info = {
                .client = (struct sockaddr*) &client, .client_len = sizeof(client),
                .local = (struct sockaddr*) &local, .local_len = sizeof(local),
        };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.client_info = BACKEND_CLIENT_INFO_PROXY_V2;
        client_run(&c, actions, ELEMENTSOF(actions), &info);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_uint_eq(s.received_len, sizeof(expect));
        ck_assert_mem_eq(s.received, expect, sizeof(expect));
        free(s.received);
        client_done(&c);
}
END_TEST

/* One-step failure cases: the script, what upstream_new()'s handler or a later call gets. */
static void run_failure(const Step *steps, size_t n_steps, const Action *actions, size_t n_actions,
                        BackendClientInfo ci, usec_t greeting_timeout) {
        FakeServer s = {};
        Client c;

        server_start(&s, steps, n_steps);
        client_init(&c, s.port);
        c.config.client_info = ci;
        if (greeting_timeout > 0)
                c.config.greeting_timeout = greeting_timeout;
        client_set_message(&c, NULL, "a\r\nb\r\n", 6);
        client_run(&c, actions, n_actions, NULL);
        /* Whatever the server still waits for, the client has closed. */
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_uint_eq(c.next, n_actions);
        free(s.received);
        client_done(&c);
}

START_TEST(test_greeting_timeout)
{
        static const Step steps[] = { { SILENCE } };
        static const Action actions[] = { { .expect_error = -ETIMEDOUT } };
        usec_t t0 = now(CLOCK_MONOTONIC);

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE,
                    50 * USEC_PER_MSEC);
        ck_assert_uint_lt(now(CLOCK_MONOTONIC) - t0, 3 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_malformed_reply)
{
        static const Step steps[] = { { SEND, "22x not a code\r\n" }, { SILENCE } };
        static const Action actions[] = { { .expect_error = -EBADMSG } };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_bare_lf)
{
        static const Step steps[] = { { SEND, "220 fake.test\n" }, { SILENCE } };
        static const Action actions[] = { { .expect_error = -EBADMSG } };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_long_line)
{
        _cleanup_free_ char *l = malloc(5000);
        memset(l, 'x', 4997);
        memcpy(l, "220 ", 4);
        l[4997] = 0;
        Step steps[] = { { SEND, l }, { SILENCE } };
        static const Action actions[] = { { .expect_error = -EBADMSG } };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_bad_greeting)
{
        /* A 554 greeting is an answer, not an error. */
        static const Step steps[] = { { SEND, "554-no\r\n554 5.3.2 no service\r\n" }, { SILENCE } };
        static const Action actions[] = { { .expect_code = 554 }, { FREE } };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_close_mid_data)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n" },
                { READ_RAW, .n = 3 },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { MESSAGE, .expect_error = -ECONNRESET },
        };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_close_mid_data_large)
{
        /* The server goes away while much is still to be written. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n" },
                { READ_RAW, .n = 1000 },
                { CLOSE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                /* EPIPE or ECONNRESET, depending on where the write stands */
                { MESSAGE, .expect_error = -ECONNRESET, .expect_error_alt = -EPIPE },
        };
        _cleanup_free_ char *body = NULL, *stuffed = NULL;
        size_t len, slen;
        FakeServer s = {};
        Client c;

        body = make_body(100000, &len, &stuffed, &slen);
        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, NULL, body, len);
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_data_refused)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "DATA" },
                { SEND, "554 5.5.1 no valid recipients\r\n" },
                { EXPECT, "RSET" },
                { SEND, "250 ok\r\n" },
                { EXPECT, "QUIT" },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { MESSAGE, .expect_code = 554 },
                { COMMAND, "RSET", .expect_code = 250 },
                { QUIT },
        };

        run_failure(steps, ELEMENTSOF(steps), actions, ELEMENTSOF(actions), BACKEND_CLIENT_INFO_NONE, 0);
}
END_TEST

START_TEST(test_early_reply)
{
        /* The backend answers while the message is still being written: the handler gets
         * that reply, and the connection is not used again. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250 fake.test\r\n" },
                { EXPECT, "DATA" },
                { SEND, "354 go ahead\r\n421 4.4.2 fake.test shutting down\r\n" },
                { SILENCE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { MESSAGE, .expect_code = 421 },
                { EXPECT_DEAD },
        };
        _cleanup_free_ char *body = NULL, *stuffed = NULL;
        size_t len, slen;
        FakeServer s = {};
        Client c;

        body = make_body(100000, &len, &stuffed, &slen);
        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        client_set_message(&c, NULL, body, len);
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        ck_assert_uint_eq(c.next, ELEMENTSOF(actions));
        client_done(&c);
}
END_TEST

START_TEST(test_xclient_not_offered)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
                { SILENCE },
        };
        Client c;
        FakeServer s = {};

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.client_info = BACKEND_CLIENT_INFO_XCLIENT;
        static const Action actions[] = { { .expect_code = 220 }, { HELLO, "c.example" } };
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        /* upstream_hello() itself refuses, and nothing but EHLO reached the server */
        ck_assert_msg(strstr(c.error, "Protocol not supported"), "%s", c.error);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_xclient_refused)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 XCLIENT ADDR NAME\r\n" },
                { EXPECT, "XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE]" },
                { SEND, "550 5.7.0 insufficient authorization\r\n" },
                { SILENCE },
        };
        static const Action actions[] = {
                { .expect_code = 220 },
                { HELLO, "c.example", .expect_error = -EPERM },
        };
        struct sockaddr_in client = sin4("192.0.2.1", 1);
        UpstreamClientInfo info = { .client = (struct sockaddr*) &client, .client_len = sizeof(client) };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.client_info = BACKEND_CLIENT_INFO_XCLIENT;
        client_run(&c, actions, ELEMENTSOF(actions), &info);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_connect_refused)
{
        static const Action actions[] = { { .expect_error = -ECONNREFUSED } };
        struct sockaddr_in a = sin4("127.0.0.1", 0);
        socklen_t l = sizeof(a);
        int fd;
        Client c;

        /* A port that was just free: bind, learn it, close. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr*) &a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr*) &a, &l), 0);
        client_init(&c, ntohs(a.sin_port));
        close(fd);
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        ASSERT_CLIENT_OK(&c);
        client_done(&c);
}
END_TEST

START_TEST(test_connect_unix_missing)
{
        static const Action actions[] = { { .expect_error = -ENOENT } };
        Client c;

        client_init(&c, 1);
        ck_assert_int_eq(socket_address_parse("/nonexistent/mailsec-backend.sock", &c.config.address), 0);
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        ASSERT_CLIENT_OK(&c);
        client_done(&c);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* STARTTLS towards the backend, with a certificate made here. */

typedef struct TestCert {
        EVP_PKEY *key;
        X509 *cert;
        uint8_t pin[32];
        char ca_file[64];
} TestCert;

static void test_cert_make(TestCert *t, const char *name) {
        X509_NAME *n;
        X509V3_CTX v3;
        X509_EXTENSION *ext;
        char san[128];
        unsigned char *der = NULL;
        unsigned md_len;
        int len, fd;
        FILE *f;

        t->key = EVP_EC_gen("P-256");
        ck_assert_ptr_nonnull(t->key);
        t->cert = X509_new();
        X509_set_version(t->cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(t->cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(t->cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(t->cert), 3600);
        X509_set_pubkey(t->cert, t->key);
        n = X509_get_subject_name(t->cert);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char*) name, -1, -1, 0);
        X509_set_issuer_name(t->cert, n);
        X509V3_set_ctx(&v3, t->cert, t->cert, NULL, NULL, 0);
        snprintf(san, sizeof(san), "DNS:%s", name);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(t->cert, ext, -1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(t->cert, ext, -1);
        X509_EXTENSION_free(ext);
        ck_assert_int_gt(X509_sign(t->cert, t->key, EVP_sha256()), 0);

        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(t->cert), &der);
        ck_assert_int_gt(len, 0);
        ck_assert_int_eq(EVP_Digest(der, (size_t) len, t->pin, &md_len, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);

        strcpy(t->ca_file, "/tmp/test-upstream-ca-XXXXXX");
        fd = mkstemp(t->ca_file);
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
        ck_assert_int_eq(PEM_write_X509(f, t->cert), 1);
        fclose(f);
}

static void test_cert_free(TestCert *t) {
        unlink(t->ca_file);
        X509_free(t->cert);
        EVP_PKEY_free(t->key);
}

static SSL_CTX* server_ctx(TestCert *t) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(SSL_CTX_use_certificate(ctx, t->cert), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, t->key), 1);
        return ctx;
}

static const Step tls_steps[] = {
        { SEND, "220 fake.test ESMTP\r\n" },
        { EXPECT, "EHLO proxy.test" },
        { SEND, "250-fake.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n" },
        { EXPECT, "STARTTLS" },
        { SEND, "220 2.0.0 ready\r\n" },
        { STARTTLS },
        { EXPECT, "EHLO proxy.test" },
        { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
        { EXPECT, "EHLO c.example" },
        { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
        { EXPECT, "DATA" },
        { SEND, "354 go ahead\r\n" },
        { EXPECT_DATA },
        { SEND, "250 ok\r\n" },
        { EXPECT, "QUIT" },
};
static const Action tls_actions[] = {
        { .expect_code = 220 },
        { HELLO, "c.example", .expect_code = 250 },
        { MESSAGE, .expect_code = 250 },
        { QUIT },
};

/* mode: 0 may, 1 verify pin, 2 verify pin (wrong), 3 verify CA + name, 4 verify CA + wrong name */
static void run_tls(int mode) {
        _cleanup_free_ char *body = NULL, *stuffed = NULL;
        size_t len, slen;
        FakeServer s = {};
        TestCert t = {};
        Client c;
        bool ok = mode == 0 || mode == 1 || mode == 3;

        test_cert_make(&t, "backend.test");
        s.ssl_ctx = server_ctx(&t);
        body = make_body(3000, &len, &stuffed, &slen);
        server_start(&s, tls_steps, ELEMENTSOF(tls_steps));
        client_init(&c, s.port);
        c.config.tls = mode == 0 ? BACKEND_TLS_MAY : BACKEND_TLS_VERIFY;
        if (mode == 1 || mode == 2) {
                memcpy(c.config.pin, t.pin, 32);
                if (mode == 2)
                        c.config.pin[5] ^= 1;
                c.config.have_pin = true;
        }
        if (mode >= 3) {
                c.config.ca_file = strdup(t.ca_file);
                c.config.tls_name = strdup(mode == 3 ? "backend.test" : "other.test");
        }
        client_set_message(&c, NULL, body, len);

        Action failing[] = { { .expect_error = -EPROTO } };
        if (mode == 2)
                failing[0].expect_error = -EPERM;
        if (ok)
                client_run(&c, tls_actions, ELEMENTSOF(tls_actions), NULL);
        else
                client_run(&c, failing, 1, NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        if (ok) {
                ASSERT_SERVER_OK(&s);
                ck_assert_ptr_nonnull(c.tls);
                ck_assert_msg(startswith(c.tls, "TLSv1.3 ") || startswith(c.tls, "TLSv1.2 "), "%s", c.tls);
                ck_assert_uint_eq(s.received_len, slen);
                ck_assert(memcmp(s.received, stuffed, slen) == 0);
        } else
                ck_assert_uint_lt(s.steps_done, 7);     /* never got an EHLO inside TLS */
        free(s.received);
        SSL_CTX_free(s.ssl_ctx);
        client_done(&c);
        test_cert_free(&t);
}

START_TEST(test_starttls_may)
{
        run_tls(0);
}
END_TEST

START_TEST(test_starttls_pin)
{
        run_tls(1);
}
END_TEST

START_TEST(test_starttls_pin_mismatch)
{
        run_tls(2);
}
END_TEST

START_TEST(test_starttls_ca)
{
        run_tls(3);
}
END_TEST

START_TEST(test_starttls_ca_wrong_name)
{
        run_tls(4);
}
END_TEST

START_TEST(test_starttls_required_not_offered)
{
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 8BITMIME\r\n" },
                { SILENCE },
        };
        static const Action actions[] = { { .expect_error = -EPROTONOSUPPORT } };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.tls = BACKEND_TLS_VERIFY;
        c.config.have_pin = true;
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_starttls_injection)
{
        /* Plaintext pipelined behind the 220 to STARTTLS must not survive into TLS. */
        static const Step steps[] = {
                { SEND, "220 fake.test ESMTP\r\n" },
                { EXPECT, "EHLO proxy.test" },
                { SEND, "250-fake.test\r\n250 STARTTLS\r\n" },
                { EXPECT, "STARTTLS" },
                { SEND, "220 ready\r\n250 injected\r\n" },
                { SILENCE },
        };
        static const Action actions[] = { { .expect_error = -EPROTO } };
        FakeServer s = {};
        Client c;

        server_start(&s, steps, ELEMENTSOF(steps));
        client_init(&c, s.port);
        c.config.tls = BACKEND_TLS_MAY;
        client_run(&c, actions, ELEMENTSOF(actions), NULL);
        server_join(&s);
        ASSERT_CLIENT_OK(&c);
        ASSERT_SERVER_OK(&s);
        client_done(&c);
}
END_TEST

START_TEST(test_config_prepare)
{
        UpstreamConfig c = { .tls = BACKEND_TLS_VERIFY, .ca_file = strdup("/nonexistent/ca.pem") };

        ck_assert_int_eq(upstream_config_prepare(&c), -EINVAL);
        ck_assert_ptr_null(c.ssl_ctx);
        c.tls = BACKEND_TLS_MAY;
        ck_assert_int_eq(upstream_config_prepare(&c), 0);
        ck_assert_ptr_nonnull(c.ssl_ctx);
        ck_assert_int_eq(SSL_CTX_get_min_proto_version(c.ssl_ctx), TLS1_2_VERSION);
        c.tls = BACKEND_TLS_NO;
        ck_assert_int_eq(upstream_config_prepare(&c), 0);
        ck_assert_ptr_null(c.ssl_ctx);
        upstream_config_done(&c);
        ck_assert_ptr_null(c.ca_file);
}
END_TEST

static Suite* upstream_suite(void) {
        Suite *s = suite_create("proxyd-upstream");
        TCase *tc;

        /* A backend that goes away must not kill the test with SIGPIPE (OpenSSL writes
         * with write(2)); mailsec-proxyd ignores SIGPIPE too. */
        signal(SIGPIPE, SIG_IGN);

        tc = tcase_create("helpers");
        tcase_add_test(tc, test_proxy_v2_ipv4);
        tcase_add_test(tc, test_proxy_v2_ipv6);
        tcase_add_test(tc, test_proxy_v2_local);
        tcase_add_test(tc, test_xtext);
        tcase_add_test(tc, test_dot_stuff);
        tcase_add_test(tc, test_parse_pin);
        tcase_add_test(tc, test_string_tables);
        tcase_add_test(tc, test_config_prepare);
        suite_add_tcase(s, tc);

        tc = tcase_create("conversation");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_session_xclient);
        tcase_add_test(tc, test_session_no_final_crlf);
        tcase_add_test(tc, test_no_own_ehlo);
        tcase_add_test(tc, test_pipelined);
        tcase_add_test(tc, test_pipelined_not_offered);
        tcase_add_test(tc, test_data_ahead);
        tcase_add_test(tc, test_data_ahead_refused_and_chunking);
        tcase_add_test(tc, test_capabilities);
        tcase_add_test(tc, test_session_bdat);
        tcase_add_test(tc, test_proxy_v2_session);
        tcase_add_test(tc, test_data_refused);
        suite_add_tcase(s, tc);

        tc = tcase_create("failures");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_greeting_timeout);
        tcase_add_test(tc, test_malformed_reply);
        tcase_add_test(tc, test_bare_lf);
        tcase_add_test(tc, test_long_line);
        tcase_add_test(tc, test_bad_greeting);
        tcase_add_test(tc, test_close_mid_data);
        tcase_add_test(tc, test_close_mid_data_large);
        tcase_add_test(tc, test_early_reply);
        tcase_add_test(tc, test_xclient_not_offered);
        tcase_add_test(tc, test_xclient_refused);
        tcase_add_test(tc, test_connect_refused);
        tcase_add_test(tc, test_connect_unix_missing);
        suite_add_tcase(s, tc);

        tc = tcase_create("starttls");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_starttls_may);
        tcase_add_test(tc, test_starttls_pin);
        tcase_add_test(tc, test_starttls_pin_mismatch);
        tcase_add_test(tc, test_starttls_ca);
        tcase_add_test(tc, test_starttls_ca_wrong_name);
        tcase_add_test(tc, test_starttls_required_not_offered);
        tcase_add_test(tc, test_starttls_injection);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(upstream_suite);
