/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The stub resolver backend. Each try is one UDP socket, connect()ed to the server so
 * the kernel drops datagrams from anyone else and picks a random source port, with a
 * random query id; a reply must match id and question (dns_packet_match_reply()) or is
 * ignored. A truncated reply is asked again over TCP from the same server. Tries go
 * round the servers, `attempts` rounds at most, each bounded by `timeout`; a SERVFAIL or
 * REFUSED moves on to the next server while tries remain, and the last answer received
 * (or a tempfail after silence) is what the waiter gets. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "dns-packet.h"
#include "dns-stub.h"
#include "log.h"

typedef struct Stub {
        sd_event *event;
        DnsServerConfig servers[DNS_STUB_SERVERS_MAX];
        size_t n_servers;
        usec_t timeout;
        unsigned attempts;
        size_t response_max;
} Stub;

typedef struct StubQuery {
        Stub *stub;
        DnsQuery *query;
        uint8_t packet[DNS_PACKET_QUERY_MAX + 2];       /* TCP length prefix + the query */
        size_t packet_len;
        char qname[1025];
        uint16_t type;

        unsigned n_tries;
        unsigned tries;                 /* started so far */
        const DnsServerConfig *server;  /* of the current try */
        bool tcp;
        int fd;
        sd_event_source *io, *timer, *defer;

        uint8_t *buf;
        size_t buf_size, buf_len;
        size_t written;                 /* TCP: octets of the query sent */
        uint8_t tcp_length[2];          /* TCP: the reply's length prefix ... */
        size_t tcp_length_got;          /* ... and how much of it arrived */

        DnsAnswer last;                 /* what the waiter gets if no try does better */
} StubQuery;

static bool address_is_loopback(const SocketAddress *a) {
        const struct sockaddr_in *in = (const struct sockaddr_in*) &a->sockaddr;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6*) &a->sockaddr;

        if (a->sockaddr.ss_family == AF_INET)
                return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        if (a->sockaddr.ss_family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
                        (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
        return false;
}

static void stub_query_close(StubQuery *sq) {
        sq->io = sd_event_source_disable_unref(sq->io);
        sq->timer = sd_event_source_disable_unref(sq->timer);
        sq->fd = safe_close(sq->fd);
        free(sq->buf);
        sq->buf = NULL;
        sq->buf_size = sq->buf_len = sq->written = sq->tcp_length_got = 0;
}

static void stub_query_cancel(void *impl) {
        StubQuery *sq = impl;

        if (!sq)
                return;
        stub_query_close(sq);
        sq->defer = sd_event_source_disable_unref(sq->defer);
        dns_answer_done(&sq->last);
        free(sq);
}

static void stub_query_finish(StubQuery *sq) {
        DnsAnswer a = sq->last;

        /* the answer moves to the stack: cancel() (called from complete()) frees sq */
        sq->last = (DnsAnswer) DNS_ANSWER_NULL;
        dns_query_complete(sq->query, &a);
        dns_answer_done(&a);
}

static void stub_query_set_failure(StubQuery *sq, DnsResult result) {
        dns_answer_done(&sq->last);
        sq->last.result = result;
        sq->last.dnssec = DNSSEC_INDETERMINATE;
}

static void stub_query_next_try(StubQuery *sq);

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        StubQuery *sq = userdata;

        log_debug("DNS query for %s timed out (%s, try %u)", sq->qname, sq->tcp ? "TCP" : "UDP", sq->tries);
        stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
        stub_query_next_try(sq);        /* sq may be freed */
        return 0;
}

static int stub_query_arm_timer(StubQuery *sq) {
        sq->timer = sd_event_source_disable_unref(sq->timer);
        return sd_event_add_time_relative(sq->stub->event, &sq->timer, CLOCK_MONOTONIC,
                                          sq->stub->timeout, 0, on_timeout, sq);
}

/* A complete reply has arrived (in sq->buf). Returns 1 when this try is over (the query was
 * completed or the next try started: sq may be freed), 0 when the reply was not ours and
 * the wait goes on, -EAGAIN when it was truncated (the caller asks again over TCP), or
 * -ENOMEM. */
static int stub_query_handle_reply(StubQuery *sq) {
        const uint8_t *query = sq->packet + 2;
        DnsPacketHeader h;
        int r;

        if (dns_packet_match_reply(sq->buf, sq->buf_len, query, sq->packet_len) < 0) {
                log_debug("DNS reply for %s does not match the query, ignoring", sq->qname);
                if (sq->tcp) {
                        /* a TCP stream answers only us: a mismatch is a broken server */
                        stub_query_set_failure(sq, DNS_RESULT_PERMFAIL);
                        stub_query_next_try(sq);
                        return 1;
                }
                sq->buf_len = 0;
                return 0;
        }
        r = dns_packet_parse_header(sq->buf, sq->buf_len, &h);
        assert(r >= 0);   /* matched above */

        if (h.tc && !sq->tcp)
                return -EAGAIN;         /* the caller switches to TCP */

        dns_answer_done(&sq->last);
        r = dns_packet_to_answer(sq->buf, sq->buf_len, sq->qname, sq->type, sq->server->trust, &sq->last);
        if (r < 0)
                return r;

        if (IN_SET(h.rcode, DNS_RCODE_SERVFAIL, DNS_RCODE_REFUSED) && sq->stub->n_servers > 1 &&
            sq->tries < sq->n_tries) {
                stub_query_next_try(sq);
                return 1;
        }
        stub_query_finish(sq);
        return 1;
}

static int on_tcp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StubQuery *sq = userdata;
        ssize_t k;
        int r;

        if (sq->written < sq->packet_len + 2) {
                k = send(sq->fd, sq->packet + sq->written, sq->packet_len + 2 - sq->written, MSG_NOSIGNAL);
                if (k < 0) {
                        if (IN_SET(errno, EAGAIN, EINTR))
                                return 0;
                        goto fail;
                }
                sq->written += (size_t) k;
                if (sq->written == sq->packet_len + 2) {
                        r = sd_event_source_set_io_events(sq->io, EPOLLIN);
                        if (r < 0)
                                goto fail;
                }
                return 0;
        }

        if (!sq->buf) {
                /* the two-octet length first */
                k = recv(sq->fd, sq->tcp_length + sq->tcp_length_got, 2 - sq->tcp_length_got, 0);
                if (k < 0 && IN_SET(errno, EAGAIN, EINTR))
                        return 0;
                if (k <= 0)
                        goto fail;
                sq->tcp_length_got += (size_t) k;
                if (sq->tcp_length_got < 2)
                        return 0;
                sq->buf_size = (size_t) sq->tcp_length[0] << 8 | sq->tcp_length[1];
                if (sq->buf_size < DNS_PACKET_HEADER_SIZE || sq->buf_size > sq->stub->response_max) {
                        log_debug("DNS reply for %s over TCP of %zu octets refused", sq->qname, sq->buf_size);
                        goto fail;
                }
                sq->buf = malloc(sq->buf_size);
                if (!sq->buf)
                        goto fail;
                sq->buf_len = 0;
                return 0;
        }

        k = recv(sq->fd, sq->buf + sq->buf_len, sq->buf_size - sq->buf_len, 0);
        if (k < 0 && IN_SET(errno, EAGAIN, EINTR))
                return 0;
        if (k <= 0)
                goto fail;
        sq->buf_len += (size_t) k;
        if (sq->buf_len < sq->buf_size)
                return 0;

        r = stub_query_handle_reply(sq);
        if (r < 0)
                goto fail;
        return 0;           /* sq may be freed */

fail:
        log_debug("DNS query for %s over TCP failed", sq->qname);
        stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
        stub_query_next_try(sq);
        return 0;
}

static int stub_query_start_tcp(StubQuery *sq) {
        int r;

        stub_query_close(sq);
        sq->tcp = true;
        sq->fd = socket(sq->server->address.sockaddr.ss_family, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0);
        if (sq->fd < 0)
                return -errno;
        if (connect(sq->fd, (const struct sockaddr*) &sq->server->address.sockaddr,
                    sq->server->address.size) < 0 && errno != EINPROGRESS)
                return -errno;
        r = sd_event_add_io(sq->stub->event, &sq->io, sq->fd, EPOLLOUT, on_tcp_io, sq);
        if (r < 0)
                return r;
        return stub_query_arm_timer(sq);
}

static int on_udp_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StubQuery *sq = userdata;
        ssize_t k;
        int r;

        k = recv(sq->fd, sq->buf, sq->buf_size, MSG_TRUNC);
        if (k < 0) {
                if (IN_SET(errno, EAGAIN, EINTR))
                        return 0;
                /* ECONNREFUSED and friends: an ICMP error from the server's address */
                log_debug("DNS query for %s over UDP failed: %s", sq->qname, strerror(errno));
                stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
                stub_query_next_try(sq);
                return 0;
        }
        if ((size_t) k > sq->buf_size) {
                log_debug("DNS reply for %s over UDP of %zi octets refused", sq->qname, k);
                stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
                stub_query_next_try(sq);
                return 0;
        }
        sq->buf_len = (size_t) k;

        r = stub_query_handle_reply(sq);
        if (r == -EAGAIN) {
                log_debug("DNS reply for %s truncated, asking over TCP", sq->qname);
                r = stub_query_start_tcp(sq);
        }
        if (r < 0) {
                stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
                stub_query_next_try(sq);
        }
        return 0;
}

static int stub_query_start_udp(StubQuery *sq) {
        int r;

        stub_query_close(sq);
        sq->tcp = false;
        sq->buf_size = MIN(sq->stub->response_max, (size_t) DNS_PACKET_EDNS_UDP_SIZE);
        sq->buf = malloc(sq->buf_size);
        if (!sq->buf)
                return -ENOMEM;
        sq->fd = socket(sq->server->address.sockaddr.ss_family, SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0);
        if (sq->fd < 0)
                return -errno;
        /* connect(): the kernel picks a random source port and drops datagrams from others */
        if (connect(sq->fd, (const struct sockaddr*) &sq->server->address.sockaddr,
                    sq->server->address.size) < 0)
                return -errno;
        if (send(sq->fd, sq->packet + 2, sq->packet_len, 0) < 0)
                return -errno;
        r = sd_event_add_io(sq->stub->event, &sq->io, sq->fd, EPOLLIN, on_udp_io, sq);
        if (r < 0)
                return r;
        return stub_query_arm_timer(sq);
}

static void stub_query_next_try(StubQuery *sq) {
        int r;

        while (sq->tries < sq->n_tries) {
                sq->server = sq->stub->servers + sq->tries % sq->stub->n_servers;
                sq->tries++;
                r = stub_query_start_udp(sq);
                if (r >= 0)
                        return;
                log_debug("DNS query for %s: try %u failed: %s", sq->qname, sq->tries, strerror(-r));
                stub_query_set_failure(sq, DNS_RESULT_TEMPFAIL);
        }
        stub_query_finish(sq);          /* sq is freed */
}

static int on_defer(sd_event_source *s, void *userdata) {
        StubQuery *sq = userdata;

        sq->defer = sd_event_source_disable_unref(sq->defer);
        if (sq->n_tries == 0)
                stub_query_finish(sq);  /* the name was refused: sq->last says so */
        else
                stub_query_next_try(sq);
        return 0;
}

static int stub_query_start(void *backend, DnsQuery *q, const char *name, uint16_t type, void **ret_impl) {
        Stub *stub = backend;
        StubQuery *sq;
        uint16_t id;
        int k, r;

        sq = calloc(1, sizeof(StubQuery));
        if (!sq)
                return -ENOMEM;
        *sq = (StubQuery) {
                .stub = stub,
                .query = q,
                .type = type,
                .fd = -1,
                .last = DNS_ANSWER_NULL,
                .n_tries = stub->attempts * (unsigned) stub->n_servers,
        };
        sq->last.result = DNS_RESULT_TEMPFAIL;

        id = (uint16_t) arc4random_uniform(UINT16_MAX + 1U);
        k = dns_packet_build_query(name, type, id, sq->packet + 2, sizeof sq->packet - 2);
        if (k == -EINVAL) {
                /* a bad name is an answer, not an error of the call */
                sq->last.result = DNS_RESULT_PERMFAIL;
                sq->n_tries = 0;
        } else if (k < 0) {
                free(sq);
                return k;
        } else {
                sq->packet_len = (size_t) k;
                sq->packet[0] = (uint8_t) (k >> 8);
                sq->packet[1] = (uint8_t) k;
                r = dns_packet_query_name(sq->packet + 2, sq->packet_len, sq->qname, sizeof sq->qname);
                assert(r >= 0);
        }

        r = sd_event_add_defer(stub->event, &sq->defer, on_defer, sq);
        if (r < 0) {
                free(sq);
                return r;
        }
        *ret_impl = sq;
        return 0;
}

static void stub_free(void *backend) {
        Stub *stub = backend;

        if (!stub)
                return;
        sd_event_unref(stub->event);
        free(stub);
}

static const DnsBackendVtable stub_vtable = {
        .start = stub_query_start,
        .cancel = stub_query_cancel,
        .free = stub_free,
};

int dns_resolver_new_stub(sd_event *e, const DnsStubConfig *c, DnsResolver **ret) {
        Stub *stub;

        assert(e);
        assert(c);
        assert(ret);

        if (c->n_servers == 0 || c->n_servers > DNS_STUB_SERVERS_MAX || !c->servers)
                return -EINVAL;
        if (c->attempts > DNS_STUB_ATTEMPTS_MAX)
                return -EINVAL;
        if (c->response_max != 0 && (c->response_max < DNS_STUB_RESPONSE_MIN ||
                                     c->response_max > DNS_STUB_RESPONSE_MAX_DEFAULT))
                return -EINVAL;
        for (size_t i = 0; i < c->n_servers; i++) {
                const SocketAddress *a = &c->servers[i].address;

                if (!IN_SET(a->sockaddr.ss_family, AF_INET, AF_INET6) ||
                    a->size > sizeof(a->sockaddr) || a->size == 0)
                        return -EINVAL;
                if (c->servers[i].trust < 0 || c->servers[i].trust >= _DNS_SERVER_TRUST_MAX)
                        return -EINVAL;
        }

        stub = calloc(1, sizeof(Stub));
        if (!stub)
                return -ENOMEM;
        stub->event = sd_event_ref(e);
        stub->n_servers = c->n_servers;
        stub->timeout = c->timeout > 0 ? c->timeout : DNS_STUB_TIMEOUT_DEFAULT;
        stub->attempts = c->attempts > 0 ? c->attempts : DNS_STUB_ATTEMPTS_DEFAULT;
        stub->response_max = c->response_max > 0 ? c->response_max : DNS_STUB_RESPONSE_MAX_DEFAULT;
        for (size_t i = 0; i < c->n_servers; i++) {
                stub->servers[i] = c->servers[i];
                if (stub->servers[i].trust == DNS_SERVER_TRUST_AUTO)
                        stub->servers[i].trust = address_is_loopback(&c->servers[i].address) ?
                                DNS_SERVER_TRUSTED : DNS_SERVER_UNTRUSTED;
        }

        return dns_resolver_new_backend(e, &stub_vtable, stub, ret);
}
