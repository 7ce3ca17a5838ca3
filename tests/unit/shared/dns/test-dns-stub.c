/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The stub resolver on sd-event against a fake DNS server that lives in the same event
 * loop on a loopback port: answers, silence, truncation, ids that do not match, SERVFAIL,
 * oversized replies, cancellation. */

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "check-main.h"
#include "cleanup.h"
#include "dns-resolver.h"
#include "time-util.h"

typedef enum FakeMode {
        FAKE_ANSWER,
        FAKE_DROP_FIRST,
        FAKE_SILENT,
        FAKE_TC,
        FAKE_WRONG_ID_FIRST,
        FAKE_SERVFAIL,
        FAKE_BIG,
} FakeMode;

typedef struct FakeServer {
        FakeMode mode;
        int udp_fd, tcp_fd, conn_fd;
        struct sockaddr_in address;
        sd_event_source *udp_source, *tcp_source, *conn_source;
        unsigned n_udp, n_tcp;
        uint8_t conn_buf[600];
        size_t conn_len;
} FakeServer;

/* A reply to query: header and question copied, then n A records 192.0.2.<last>. */
static size_t fake_reply(const uint8_t *query, size_t n, uint16_t flags, unsigned n_a, uint8_t last,
                         uint8_t *out, size_t size) {
        size_t q = 12, l;

        while (q < n && query[q] != 0)
                q += query[q] + 1U;
        q += 5;                 /* the root label, QTYPE, QCLASS */
        ck_assert_uint_le(q, n);
        memcpy(out, query, q);
        out[2] = (uint8_t) (flags >> 8);
        out[3] = (uint8_t) flags;
        out[6] = (uint8_t) (n_a >> 8);
        out[7] = (uint8_t) n_a;
        out[10] = out[11] = 0;  /* the OPT record is not echoed */
        l = q;
        for (unsigned i = 0; i < n_a; i++) {
                static const uint8_t rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2 };

                ck_assert_uint_le(l + sizeof rr + 1, size);
                memcpy(out + l, rr, sizeof rr);
                l += sizeof rr;
                out[l++] = last;
        }
        return l;
}

static int on_fake_udp(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FakeServer *f = userdata;
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        uint8_t q[600], out[8192];
        ssize_t k;
        size_t l;

        k = recvfrom(fd, q, sizeof q, 0, (struct sockaddr*) &peer, &peer_len);
        if (k < 12)
                return 0;
        f->n_udp++;

        switch (f->mode) {
        case FAKE_SILENT:
                return 0;
        case FAKE_DROP_FIRST:
                if (f->n_udp == 1)
                        return 0;
                l = fake_reply(q, (size_t) k, 0x81a0, 1, 1, out, sizeof out);
                break;
        case FAKE_TC:
                l = fake_reply(q, (size_t) k, 0x8380, 0, 0, out, sizeof out);
                break;
        case FAKE_WRONG_ID_FIRST:
                l = fake_reply(q, (size_t) k, 0x81a0, 1, 66, out, sizeof out);
                out[1] ^= 0xff;
                ck_assert_int_eq(sendto(fd, out, l, 0, (struct sockaddr*) &peer, peer_len), (ssize_t) l);
                l = fake_reply(q, (size_t) k, 0x81a0, 1, 1, out, sizeof out);
                break;
        case FAKE_SERVFAIL:
                l = fake_reply(q, (size_t) k, 0x8182, 0, 0, out, sizeof out);
                break;
        case FAKE_BIG:
                l = fake_reply(q, (size_t) k, 0x8180, 60, 1, out, sizeof out);
                break;
        default:
                l = fake_reply(q, (size_t) k, 0x81a0, 1, 1, out, sizeof out);
        }
        ck_assert_int_eq(sendto(fd, out, l, 0, (struct sockaddr*) &peer, peer_len), (ssize_t) l);
        return 0;
}

static int on_fake_conn(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FakeServer *f = userdata;
        uint8_t out[8192];
        ssize_t k;
        size_t l;

        k = recv(fd, f->conn_buf + f->conn_len, sizeof f->conn_buf - f->conn_len, 0);
        if (k <= 0) {
                f->conn_source = sd_event_source_disable_unref(f->conn_source);
                return 0;
        }
        f->conn_len += (size_t) k;
        if (f->conn_len < 2 || f->conn_len < 2U + (f->conn_buf[0] << 8 | f->conn_buf[1]))
                return 0;

        f->n_tcp++;
        l = fake_reply(f->conn_buf + 2, f->conn_len - 2, 0x81a0, 2, 99, out + 2, sizeof out - 2);
        out[0] = (uint8_t) (l >> 8);
        out[1] = (uint8_t) l;
        ck_assert_int_eq(send(fd, out, l + 2, MSG_NOSIGNAL), (ssize_t) (l + 2));
        f->conn_source = sd_event_source_disable_unref(f->conn_source);
        return 0;
}

static int on_fake_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FakeServer *f = userdata;
        int c;

        c = accept4(fd, NULL, NULL, SOCK_NONBLOCK|SOCK_CLOEXEC);
        if (c < 0)
                return 0;
        if (f->conn_fd >= 0)
                close(f->conn_fd);
        f->conn_fd = c;
        f->conn_len = 0;
        f->conn_source = sd_event_source_disable_unref(f->conn_source);
        ck_assert_int_ge(sd_event_add_io(sd_event_source_get_event(s), &f->conn_source, c, EPOLLIN,
                                         on_fake_conn, f), 0);
        return 0;
}

static void fake_start(FakeServer *f, sd_event *e, FakeMode mode) {
        unsigned tries;

        *f = (FakeServer) { .mode = mode, .conn_fd = -1 };

        /* UDP and TCP on the same port number: the kernel picks a free UDP port, which
         * another test may hold for TCP; pick again then (bounded). */
        for (tries = 0; tries < 100; tries++) {
                socklen_t l = sizeof f->address;

                f->address = (struct sockaddr_in) {
                        .sin_family = AF_INET,
                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                };
                f->udp_fd = socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
                ck_assert_int_ge(f->udp_fd, 0);
                ck_assert_int_eq(bind(f->udp_fd, (struct sockaddr*) &f->address, sizeof f->address), 0);
                ck_assert_int_eq(getsockname(f->udp_fd, (struct sockaddr*) &f->address, &l), 0);

                f->tcp_fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
                ck_assert_int_ge(f->tcp_fd, 0);
                ck_assert_int_eq(setsockopt(f->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &(int) { 1 }, sizeof(int)), 0);
                if (bind(f->tcp_fd, (struct sockaddr*) &f->address, sizeof f->address) == 0)
                        break;
                f->udp_fd = safe_close(f->udp_fd);
                f->tcp_fd = safe_close(f->tcp_fd);
        }
        ck_assert_msg(tries < 100, "no port free for both UDP and TCP");
        ck_assert_int_eq(listen(f->tcp_fd, 4), 0);

        ck_assert_int_ge(sd_event_add_io(e, &f->udp_source, f->udp_fd, EPOLLIN, on_fake_udp, f), 0);
        ck_assert_int_ge(sd_event_add_io(e, &f->tcp_source, f->tcp_fd, EPOLLIN, on_fake_accept, f), 0);
}

static void fake_stop(FakeServer *f) {
        f->udp_source = sd_event_source_disable_unref(f->udp_source);
        f->tcp_source = sd_event_source_disable_unref(f->tcp_source);
        f->conn_source = sd_event_source_disable_unref(f->conn_source);
        close(f->udp_fd);
        close(f->tcp_fd);
        if (f->conn_fd >= 0)
                close(f->conn_fd);
}

static DnsServerConfig server_of(const FakeServer *f, DnsServerTrust trust) {
        DnsServerConfig s = { .trust = trust };

        memcpy(&s.address.sockaddr, &f->address, sizeof f->address);
        s.address.size = sizeof f->address;
        return s;
}

typedef struct Result {
        unsigned calls;
        DnsQuery *query;
        DnsAnswer answer;
} Result;

static void on_answer(DnsQuery *q, const DnsAnswer *a, void *userdata) {
        Result *res = userdata;

        ck_assert_ptr_eq(q, res->query);
        res->calls++;
        res->answer = (DnsAnswer) DNS_ANSWER_NULL;
        res->answer.result = a->result;
        res->answer.dnssec = a->dnssec;
        for (size_t i = 0; i < a->n_records; i++)
                ck_assert_int_eq(dns_answer_add(&res->answer, a->records + i), 0);
        /* the waiter frees its query from the handler, as real callers do */
        res->query = dns_query_free(q);
}

/* Runs e until res has its answer or the deadline passes. */
static void run_until(sd_event *e, Result *res, usec_t max) {
        usec_t end = now(CLOCK_MONOTONIC) + max;

        while (res->calls == 0 && now(CLOCK_MONOTONIC) < end)
                ck_assert_int_ge(sd_event_run(e, 50 * USEC_PER_MSEC), 0);
}

static uint8_t last_octet(const DnsAnswer *a, size_t i) {
        return (uint8_t) (ntohl(a->records[i].a.s_addr) & 0xff);
}

typedef struct Fixture {
        sd_event *event;
        FakeServer fake;
        DnsResolver *resolver;
        Result res;
} Fixture;

static void fixture_setup(Fixture *x, FakeMode mode, DnsServerTrust trust, usec_t timeout, unsigned attempts) {
        DnsServerConfig s;

        *x = (Fixture) {};
        ck_assert_int_ge(sd_event_new(&x->event), 0);
        fake_start(&x->fake, x->event, mode);
        s = server_of(&x->fake, trust);
        ck_assert_int_eq(dns_resolver_new_stub(x->event, &(DnsStubConfig) {
                                .servers = &s, .n_servers = 1, .timeout = timeout, .attempts = attempts,
                        }, &x->resolver), 0);
}

static void fixture_teardown(Fixture *x) {
        dns_answer_done(&x->res.answer);
        dns_query_free(x->res.query);
        dns_resolver_free(x->resolver);
        fake_stop(&x->fake);
        sd_event_unref(x->event);
}

static void query(Fixture *x, const char *name) {
        ck_assert_int_eq(dns_resolver_query(x->resolver, name, DNS_TYPE_A, on_answer, &x->res, &x->res.query), 0);
        ck_assert_uint_eq(x->res.calls, 0);     /* never from inside the call */
}

START_TEST(test_answer_secure_from_loopback)
{
        Fixture x;

        fixture_setup(&x, FAKE_ANSWER, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_int_eq(x.res.answer.dnssec, DNSSEC_SECURE);
        ck_assert_uint_eq(x.res.answer.n_records, 1);
        ck_assert_uint_eq(last_octet(&x.res.answer, 0), 1);
        ck_assert_uint_eq(x.fake.n_udp, 1);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_answer_untrusted)
{
        Fixture x;

        fixture_setup(&x, FAKE_ANSWER, DNS_SERVER_UNTRUSTED, 0, 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_int_eq(x.res.answer.dnssec, DNSSEC_INDETERMINATE);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_retry_after_loss)
{
        Fixture x;

        fixture_setup(&x, FAKE_DROP_FIRST, DNS_SERVER_TRUST_AUTO, 100 * USEC_PER_MSEC, 2);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(x.fake.n_udp, 2);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_timeout_bounded)
{
        usec_t start;
        Fixture x;

        fixture_setup(&x, FAKE_SILENT, DNS_SERVER_TRUST_AUTO, 100 * USEC_PER_MSEC, 3);
        start = now(CLOCK_MONOTONIC);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_TEMPFAIL);
        ck_assert_int_eq(x.res.answer.dnssec, DNSSEC_INDETERMINATE);
        ck_assert_uint_eq(x.fake.n_udp, 3);
        ck_assert_uint_ge(now(CLOCK_MONOTONIC) - start, 300 * USEC_PER_MSEC);
        ck_assert_uint_lt(now(CLOCK_MONOTONIC) - start, 2 * USEC_PER_SEC);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_truncated_then_tcp)
{
        Fixture x;

        fixture_setup(&x, FAKE_TC, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(x.res.answer.n_records, 2);
        ck_assert_uint_eq(last_octet(&x.res.answer, 0), 99);
        ck_assert_uint_eq(x.fake.n_udp, 1);
        ck_assert_uint_eq(x.fake.n_tcp, 1);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_wrong_id_ignored)
{
        Fixture x;

        fixture_setup(&x, FAKE_WRONG_ID_FIRST, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(last_octet(&x.res.answer, 0), 1);
        ck_assert_uint_eq(x.fake.n_udp, 1);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_servfail_single_server)
{
        Fixture x;

        fixture_setup(&x, FAKE_SERVFAIL, DNS_SERVER_TRUST_AUTO, 0, 3);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_TEMPFAIL);
        ck_assert_uint_eq(x.fake.n_udp, 1);     /* one server: no point asking it again */
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_servfail_next_server)
{
        DnsServerConfig s[2];
        FakeServer second;
        Fixture x;

        fixture_setup(&x, FAKE_SERVFAIL, DNS_SERVER_TRUST_AUTO, 0, 0);
        fake_start(&second, x.event, FAKE_ANSWER);
        s[0] = server_of(&x.fake, DNS_SERVER_TRUST_AUTO);
        s[1] = server_of(&second, DNS_SERVER_TRUST_AUTO);
        x.resolver = dns_resolver_free(x.resolver);
        ck_assert_int_eq(dns_resolver_new_stub(x.event, &(DnsStubConfig) { .servers = s, .n_servers = 2 },
                                               &x.resolver), 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(x.fake.n_udp, 1);
        ck_assert_uint_eq(second.n_udp, 1);
        fake_stop(&second);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_response_limit)
{
        DnsServerConfig s;
        Fixture x;

        fixture_setup(&x, FAKE_BIG, DNS_SERVER_TRUST_AUTO, 100 * USEC_PER_MSEC, 1);
        s = server_of(&x.fake, DNS_SERVER_TRUST_AUTO);
        x.resolver = dns_resolver_free(x.resolver);
        ck_assert_int_eq(dns_resolver_new_stub(x.event, &(DnsStubConfig) {
                                .servers = &s, .n_servers = 1, .attempts = 1, .response_max = 512,
                        }, &x.resolver), 0);
        query(&x, "example.test");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_TEMPFAIL);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_cancel)
{
        Fixture x;

        fixture_setup(&x, FAKE_ANSWER, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "example.test");
        /* let the query go out, then cancel before the reply is read */
        ck_assert_int_ge(sd_event_run(x.event, 0), 0);
        x.res.query = dns_query_free(x.res.query);
        for (unsigned i = 0; i < 5; i++)
                ck_assert_int_ge(sd_event_run(x.event, 20 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(x.res.calls, 0);
        ck_assert_uint_le(x.fake.n_udp, 1);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_bad_name_is_an_answer)
{
        Fixture x;

        fixture_setup(&x, FAKE_ANSWER, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "a..b");
        run_until(x.event, &x.res, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(x.res.calls, 1);
        ck_assert_int_eq(x.res.answer.result, DNS_RESULT_PERMFAIL);
        ck_assert_uint_eq(x.fake.n_udp, 0);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_resolver_freed_first)
{
        Fixture x;

        fixture_setup(&x, FAKE_SILENT, DNS_SERVER_TRUST_AUTO, 0, 0);
        query(&x, "example.test");
        ck_assert_int_ge(sd_event_run(x.event, 0), 0);
        x.resolver = dns_resolver_free(x.resolver);
        /* the query stays the waiter's, inert */
        for (unsigned i = 0; i < 3; i++)
                ck_assert_int_ge(sd_event_run(x.event, 10 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(x.res.calls, 0);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_config_checked)
{
        DnsServerConfig s = {};
        sd_event *e = NULL;
        DnsResolver *r = NULL;

        ck_assert_int_ge(sd_event_default(&e), 0);
        ck_assert_int_eq(dns_resolver_new_stub(e, &(DnsStubConfig) { .servers = &s, .n_servers = 1 }, &r), -EINVAL);
        ck_assert_int_eq(dns_resolver_new_stub(e, &(DnsStubConfig) { .servers = &s, .n_servers = 0 }, &r), -EINVAL);
        ck_assert_int_eq(socket_address_parse("127.0.0.1:53", &s.address), 0);
        ck_assert_int_eq(dns_resolver_new_stub(e, &(DnsStubConfig) {
                                .servers = &s, .n_servers = 1, .response_max = 100 }, &r), -EINVAL);
        ck_assert_int_eq(dns_resolver_new_stub(e, &(DnsStubConfig) {
                                .servers = &s, .n_servers = 1, .attempts = 100 }, &r), -EINVAL);
        ck_assert_int_eq(dns_resolver_new_stub(e, &(DnsStubConfig) { .servers = &s, .n_servers = 1 }, &r), 0);
        dns_resolver_free(r);
        sd_event_unref(e);
}
END_TEST

static Suite* dns_stub_suite(void) {
        Suite *s = suite_create("dns-stub");
        TCase *tc;

        tc = tcase_create("answers");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_answer_secure_from_loopback);
        tcase_add_test(tc, test_answer_untrusted);
        tcase_add_test(tc, test_wrong_id_ignored);
        tcase_add_test(tc, test_truncated_then_tcp);
        tcase_add_test(tc, test_response_limit);
        tcase_add_test(tc, test_bad_name_is_an_answer);
        suite_add_tcase(s, tc);

        tc = tcase_create("failures");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_retry_after_loss);
        tcase_add_test(tc, test_timeout_bounded);
        tcase_add_test(tc, test_servfail_single_server);
        tcase_add_test(tc, test_servfail_next_server);
        suite_add_tcase(s, tc);

        tc = tcase_create("lifetime");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_resolver_freed_first);
        tcase_add_test(tc, test_config_checked);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dns_stub_suite);
