/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The resolve1 backend against a fake org.freedesktop.resolve1.Manager on a peer-to-peer
 * bus connection (a socketpair, both ends on one sd-event loop): the ResolveRecord call
 * it makes, and how replies and errors become answers. systemd-resolved itself is not
 * needed (nor installed where these tests run). */

#include <arpa/inet.h>
#include <check.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "check-main.h"
#include "dns-resolver.h"
#include "dns-stub.h"
#include "time-util.h"

typedef struct Fake {
        unsigned calls;
        int32_t ifindex;
        char name[256];
        uint16_t class, type;
        uint64_t flags;
        char destination[64], path[64], interface[64];
        sd_bus_message *held;           /* "slow.test": never answered */
} Fake;

static Fake fake;

/* Appends one RR in resolved's format: uncompressed owner, type, class, TTL, RDATA. */
static void append_rr(sd_bus_message *m, const char *owner, uint16_t type, const void *rdata, uint16_t rdlen) {
        uint8_t rr[512];
        size_t l = 0;

        for (const char *p = owner; *p;) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t) (dot - p) : strlen(p);

                rr[l++] = (uint8_t) n;
                memcpy(rr + l, p, n);
                l += n;
                p += n + (dot ? 1 : 0);
        }
        rr[l++] = 0;
        rr[l++] = (uint8_t) (type >> 8);
        rr[l++] = (uint8_t) type;
        rr[l++] = 0;
        rr[l++] = 1;
        memcpy(rr + l, "\0\0\1\54", 4);         /* TTL 300 */
        l += 4;
        rr[l++] = (uint8_t) (rdlen >> 8);
        rr[l++] = (uint8_t) rdlen;
        memcpy(rr + l, rdata, rdlen);
        l += rdlen;

        ck_assert_int_ge(sd_bus_message_open_container(m, 'r', "iqqay"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "iqq", 1, 1, type), 0);
        ck_assert_int_ge(sd_bus_message_append_array(m, 'y', rr, l), 0);
        ck_assert_int_ge(sd_bus_message_close_container(m), 0);
}

static int method_resolve_record(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        const char *name;
        int r;

        fake.calls++;
        ck_assert_int_ge(sd_bus_message_read(m, "isqqt", &fake.ifindex, &name, &fake.class, &fake.type,
                                             &fake.flags), 0);
        snprintf(fake.name, sizeof fake.name, "%s", name);
        snprintf(fake.destination, sizeof fake.destination, "%s", sd_bus_message_get_destination(m) ?: "");
        snprintf(fake.path, sizeof fake.path, "%s", sd_bus_message_get_path(m));
        snprintf(fake.interface, sizeof fake.interface, "%s", sd_bus_message_get_interface(m));

        if (strcmp(name, "nodata.test") == 0)
                return sd_bus_error_set(error, "org.freedesktop.resolve1.NoSuchRR", "no such RR");
        if (strcmp(name, "nx.test") == 0)
                return sd_bus_error_set(error, "org.freedesktop.resolve1.DnsError.NXDOMAIN", "nxdomain");
        if (strcmp(name, "bogus.test") == 0)
                return sd_bus_error_set(error, "org.freedesktop.resolve1.DnssecFailed", "bogus");
        if (strcmp(name, "noservers.test") == 0)
                return sd_bus_error_set(error, "org.freedesktop.resolve1.NoNameServers", "none");
        if (strcmp(name, "slow.test") == 0) {
                fake.held = sd_bus_message_ref(m);
                return 1;
        }

        ck_assert_int_ge(sd_bus_message_new_method_return(m, &reply), 0);
        ck_assert_int_ge(sd_bus_message_open_container(reply, 'a', "(iqqay)"), 0);
        if (strcmp(name, "example.test") == 0)
                append_rr(reply, "example.test", DNS_TYPE_TXT, "\5hello\6 world", 13);
        else if (strcmp(name, "plain.test") == 0)
                append_rr(reply, "plain.test", DNS_TYPE_A, "\300\0\2\11", 4);
        else if (strcmp(name, "cname.test") == 0) {
                append_rr(reply, "cname.test", DNS_TYPE_CNAME, "\1a\4test\0", 8);
                append_rr(reply, "a.test", DNS_TYPE_A, "\300\0\2\5", 4);
        } else if (strcmp(name, "alias.test") == 0)
                /* what resolved really sends for a CNAME: only the chain's end */
                append_rr(reply, "target.example.test", DNS_TYPE_A, "\300\0\2\7", 4);
        else if (strcmp(name, "elsewhere.test") == 0)
                /* records of another type only: nothing to take */
                append_rr(reply, "other.test", DNS_TYPE_TXT, "\2hi", 3);
        else if (strcmp(name, "garbage.test") == 0) {
                ck_assert_int_ge(sd_bus_message_open_container(reply, 'r', "iqqay"), 0);
                ck_assert_int_ge(sd_bus_message_append(reply, "iqq", 1, 1, DNS_TYPE_A), 0);
                ck_assert_int_ge(sd_bus_message_append_array(reply, 'y', "\7garbage", 8), 0);
                ck_assert_int_ge(sd_bus_message_close_container(reply), 0);
        }
        ck_assert_int_ge(sd_bus_message_close_container(reply), 0);
        ck_assert_int_ge(sd_bus_message_append(reply, "t",
                                               strcmp(name, "plain.test") == 0 ? UINT64_C(0) :
                                               RESOLVE1_FLAG_AUTHENTICATED | (UINT64_C(1) << 23)), 0);
        r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 1;
}

static const sd_bus_vtable fake_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ResolveRecord", "isqqt", "a(iqqay)t", method_resolve_record, 0),
        SD_BUS_VTABLE_END,
};

typedef struct Fixture {
        sd_event *event;
        sd_bus *client, *server;
        DnsResolver *resolver;
} Fixture;

static void fixture_setup(Fixture *x, DnsServerTrust trust, usec_t timeout) {
        sd_id128_t id;
        int pair[2];

        *x = (Fixture) {};
        fake = (Fake) {};
        ck_assert_int_ge(sd_event_new(&x->event), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0, pair), 0);

        ck_assert_int_ge(sd_id128_randomize(&id), 0);
        ck_assert_int_ge(sd_bus_new(&x->server), 0);
        ck_assert_int_ge(sd_bus_set_fd(x->server, pair[0], pair[0]), 0);
        ck_assert_int_ge(sd_bus_set_server(x->server, 1, id), 0);
        ck_assert_int_ge(sd_bus_add_object_vtable(x->server, NULL, RESOLVE1_PATH, RESOLVE1_MANAGER,
                                                  fake_vtable, NULL), 0);
        ck_assert_int_ge(sd_bus_attach_event(x->server, x->event, 0), 0);
        ck_assert_int_ge(sd_bus_start(x->server), 0);

        ck_assert_int_ge(sd_bus_new(&x->client), 0);
        ck_assert_int_ge(sd_bus_set_fd(x->client, pair[1], pair[1]), 0);
        ck_assert_int_ge(sd_bus_attach_event(x->client, x->event, 0), 0);
        ck_assert_int_ge(sd_bus_start(x->client), 0);

        ck_assert_int_eq(dns_resolver_new_resolve1(x->event, x->client, &(DnsResolve1Config) {
                                .trust = trust, .timeout = timeout }, &x->resolver), 0);
}

static void fixture_teardown(Fixture *x) {
        dns_resolver_free(x->resolver);
        sd_bus_message_unref(fake.held);
        fake.held = NULL;
        /* no flush: with the loop stopped, a flush could wait for a peer that never reads */
        sd_bus_close_unref(x->client);
        sd_bus_close_unref(x->server);
        sd_event_unref(x->event);
}

typedef struct Result {
        unsigned calls;
        DnsQuery *query;
        DnsAnswer answer;
} Result;

static void on_answer(DnsQuery *q, const DnsAnswer *a, void *userdata) {
        Result *res = userdata;

        res->calls++;
        res->answer = (DnsAnswer) DNS_ANSWER_NULL;
        res->answer.result = a->result;
        res->answer.dnssec = a->dnssec;
        for (size_t i = 0; i < a->n_records; i++)
                ck_assert_int_eq(dns_answer_add(&res->answer, a->records + i), 0);
        res->query = dns_query_free(q);
}

static void lookup(Fixture *x, const char *name, uint16_t type, Result *res) {
        usec_t end = now(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        *res = (Result) {};
        ck_assert_int_eq(dns_resolver_query(x->resolver, name, type, on_answer, res, &res->query), 0);
        ck_assert_uint_eq(res->calls, 0);
        while (res->calls == 0 && now(CLOCK_MONOTONIC) < end)
                ck_assert_int_ge(sd_event_run(x->event, 50 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(res->calls, 1);
}

START_TEST(test_call_arguments)
{
        Fixture x;
        Result res;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        lookup(&x, "Example.Test.", DNS_TYPE_TXT, &res);
        ck_assert_uint_eq(fake.calls, 1);
        ck_assert_str_eq(fake.destination, "org.freedesktop.resolve1");
        ck_assert_str_eq(fake.path, "/org/freedesktop/resolve1");
        ck_assert_str_eq(fake.interface, "org.freedesktop.resolve1.Manager");
        ck_assert_int_eq(fake.ifindex, 0);
        ck_assert_str_eq(fake.name, "Example.Test");
        ck_assert_uint_eq(fake.class, 1);
        ck_assert_uint_eq(fake.type, DNS_TYPE_TXT);
        /* resolved refuses SD_RESOLVED_NO_SEARCH in ResolveRecord ("Invalid flags
         * parameter"), which never searches anyway */
        ck_assert_uint_eq(fake.flags, RESOLVE1_FLAG_DNS);
        dns_answer_done(&res.answer);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_authenticated_txt)
{
        Fixture x;
        Result res;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        lookup(&x, "example.test", DNS_TYPE_TXT, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_OK);
        ck_assert_int_eq(res.answer.dnssec, DNSSEC_SECURE);
        ck_assert_uint_eq(res.answer.n_records, 1);
        ck_assert_str_eq(res.answer.records[0].txt.data, "hello world");
        ck_assert_uint_eq(res.answer.records[0].ttl, 300);
        dns_answer_done(&res.answer);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_unauthenticated)
{
        Fixture x;
        Result res;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        lookup(&x, "plain.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_OK);
        ck_assert_int_eq(res.answer.dnssec, DNSSEC_INDETERMINATE);
        dns_answer_done(&res.answer);
        fixture_teardown(&x);

        fixture_setup(&x, DNS_SERVER_VALIDATING, 0);
        lookup(&x, "plain.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.dnssec, DNSSEC_INSECURE);
        ck_assert_uint_eq(res.answer.n_records, 1);
        ck_assert_str_eq(inet_ntoa(res.answer.records[0].a), "192.0.2.9");
        dns_answer_done(&res.answer);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_cname_followed)
{
        Fixture x;
        Result res;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        lookup(&x, "cname.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(res.answer.n_records, 1);
        ck_assert_str_eq(inet_ntoa(res.answer.records[0].a), "192.0.2.5");
        dns_answer_done(&res.answer);

        /* resolved's own form: the CNAME record left out, the address owned by the target */
        lookup(&x, "alias.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(res.answer.n_records, 1);
        ck_assert_str_eq(inet_ntoa(res.answer.records[0].a), "192.0.2.7");
        dns_answer_done(&res.answer);

        /* a record of another type owned by another name is no answer: NODATA */
        lookup(&x, "elsewhere.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_OK);
        ck_assert_uint_eq(res.answer.n_records, 0);
        dns_answer_done(&res.answer);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_errors)
{
        static const struct {
                const char *name;
                DnsResult result;
                DnssecStatus dnssec;
        } table[] = {
                { "nodata.test",     DNS_RESULT_OK,       DNSSEC_INDETERMINATE },
                { "nx.test",         DNS_RESULT_NXDOMAIN, DNSSEC_INDETERMINATE },
                { "bogus.test",      DNS_RESULT_TEMPFAIL, DNSSEC_BOGUS },
                { "noservers.test",  DNS_RESULT_TEMPFAIL, DNSSEC_INDETERMINATE },
                { "garbage.test",    DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
                { "a..b",            DNS_RESULT_PERMFAIL, DNSSEC_INDETERMINATE },
        };
        Fixture x;
        Result res;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                lookup(&x, table[i].name, DNS_TYPE_A, &res);
                ck_assert_msg(res.answer.result == table[i].result && res.answer.dnssec == table[i].dnssec,
                              "%s: %s/%s", table[i].name, dns_result_to_string(res.answer.result),
                              dnssec_status_to_string(res.answer.dnssec));
                ck_assert_uint_eq(res.answer.n_records, 0);
                dns_answer_done(&res.answer);
        }
        ck_assert_uint_eq(fake.calls, ELEMENTSOF(table) - 1);   /* a bad name never goes out */
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_timeout_and_cancel)
{
        Result res, cancelled = {};
        Fixture x;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 200 * USEC_PER_MSEC);
        lookup(&x, "slow.test", DNS_TYPE_A, &res);
        ck_assert_int_eq(res.answer.result, DNS_RESULT_TEMPFAIL);
        dns_answer_done(&res.answer);
        fake.held = sd_bus_message_unref(fake.held);

        ck_assert_int_eq(dns_resolver_query(x.resolver, "slow.test", DNS_TYPE_A, on_answer, &cancelled,
                                            &cancelled.query), 0);
        for (unsigned i = 0; i < 5; i++)
                ck_assert_int_ge(sd_event_run(x.event, 10 * USEC_PER_MSEC), 0);
        cancelled.query = dns_query_free(cancelled.query);
        for (unsigned i = 0; i < 30; i++)
                ck_assert_int_ge(sd_event_run(x.event, 10 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(cancelled.calls, 0);
        ck_assert_uint_eq(fake.calls, 2);
        fixture_teardown(&x);
}
END_TEST

START_TEST(test_bus_must_share_the_loop)
{
        sd_event *other = NULL;
        DnsResolver *r = NULL;
        Fixture x;

        fixture_setup(&x, DNS_SERVER_TRUST_AUTO, 0);
        ck_assert_int_ge(sd_event_new(&other), 0);
        ck_assert_int_eq(dns_resolver_new_resolve1(other, x.client, NULL, &r), -EINVAL);
        ck_assert_int_eq(dns_resolver_new_resolve1(x.event, x.client, &(DnsResolve1Config) {
                                .trust = _DNS_SERVER_TRUST_MAX }, &r), -EINVAL);
        sd_event_unref(other);
        fixture_teardown(&x);
}
END_TEST

static Suite* dns_resolve1_suite(void) {
        Suite *s = suite_create("dns-resolve1");
        TCase *tc;

        tc = tcase_create("resolve1");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_call_arguments);
        tcase_add_test(tc, test_authenticated_txt);
        tcase_add_test(tc, test_unauthenticated);
        tcase_add_test(tc, test_cname_followed);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_timeout_and_cancel);
        tcase_add_test(tc, test_bus_must_share_the_loop);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dns_resolve1_suite);
