/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "check-main.h"
#include "cleanup.h"
#include "conf-parser.h"
#include "string-util.h"

static const struct {
        const char *input;
        int family;             /* 0: refused */
        unsigned port;
        const char *canonical;  /* socket_address_to_string(), NULL = same as input */
} cases[] = {
        { "127.0.0.1:25",             AF_INET,  25,    NULL },
        { "192.0.2.10:10025",         AF_INET,  10025, NULL },
        { "0.0.0.0:65535",            AF_INET,  65535, NULL },
        { "[::1]:25",                 AF_INET6, 25,    NULL },
        { "[2001:db8::1]:587",        AF_INET6, 587,   NULL },
        { "[2001:DB8:0::1]:587",      AF_INET6, 587,   "[2001:db8::1]:587" },
        { "[::ffff:192.0.2.1]:25",    AF_INET6, 25,    NULL },
        { "/run/mailsec/backend.sock", AF_UNIX, 0,     NULL },
        { "",                         0, 0, NULL },
        { "127.0.0.1",                0, 0, NULL },
        { "127.0.0.1:",               0, 0, NULL },
        { "127.0.0.1:0",              0, 0, NULL },
        { "127.0.0.1:65536",          0, 0, NULL },
        { "127.0.0.1:025",            0, 0, NULL },
        { "127.0.0.1:-1",             0, 0, NULL },
        { "127.0.0.1:25x",            0, 0, NULL },
        { "127.1:25",                 0, 0, NULL },
        { "256.0.0.1:25",             0, 0, NULL },
        { ":25",                      0, 0, NULL },
        { "mx.example.org:25",        0, 0, NULL },
        { "localhost:25",             0, 0, NULL },
        { "::1:25",                   0, 0, NULL },
        { "[::1]",                    0, 0, NULL },
        { "[::1]25",                  0, 0, NULL },
        { "[::1]:0",                  0, 0, NULL },
        { "[]:25",                    0, 0, NULL },
        { "[127.0.0.1]:25",           0, 0, NULL },
        { "run/relative.sock",        0, 0, NULL },
};

START_TEST(test_parse_table)
{
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SocketAddress a;
                int r;

                r = socket_address_parse(cases[i].input, &a);
                if (cases[i].family == 0) {
                        ck_assert_msg(r == -EINVAL, "\"%s\" was accepted (%d)", cases[i].input, r);
                        continue;
                }
                ck_assert_msg(r == 0, "\"%s\" was refused (%d)", cases[i].input, r);
                ck_assert_int_eq(a.sockaddr.ss_family, cases[i].family);

                if (cases[i].family == AF_INET) {
                        ck_assert_uint_eq(a.size, sizeof(struct sockaddr_in));
                        ck_assert_uint_eq(ntohs(((struct sockaddr_in*) &a.sockaddr)->sin_port), cases[i].port);
                } else if (cases[i].family == AF_INET6) {
                        ck_assert_uint_eq(a.size, sizeof(struct sockaddr_in6));
                        ck_assert_uint_eq(ntohs(((struct sockaddr_in6*) &a.sockaddr)->sin6_port), cases[i].port);
                } else {
                        struct sockaddr_un *un = (struct sockaddr_un*) &a.sockaddr;

                        ck_assert_str_eq(un->sun_path, cases[i].input);
                        ck_assert_uint_eq(a.size, offsetof(struct sockaddr_un, sun_path) + strlen(cases[i].input) + 1);
                }

                _cleanup_free_ char *s = NULL;
                ck_assert_int_eq(socket_address_to_string(&a, &s), 0);
                ck_assert_str_eq(s, cases[i].canonical ?: cases[i].input);
        }
}
END_TEST

START_TEST(test_unix_path_too_long)
{
        char path[sizeof(((struct sockaddr_un*) NULL)->sun_path) + 1];
        SocketAddress a;

        memset(path, 'a', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = 0;
        ck_assert_int_eq(socket_address_parse(path, &a), -EINVAL);

        /* One byte shorter leaves room for the NUL: accepted. */
        path[sizeof(path) - 2] = 0;
        ck_assert_int_eq(socket_address_parse(path, &a), 0);
}
END_TEST

START_TEST(test_to_string_unknown_family)
{
        SocketAddress a = {};
        char *s = NULL;

        a.sockaddr.ss_family = AF_PACKET;
        ck_assert_int_eq(socket_address_to_string(&a, &s), -EAFNOSUPPORT);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(socket_address_parse(NULL, &a), -EINVAL);
}
END_TEST

static Suite* socket_address_suite(void) {
        Suite *s = suite_create("socket-address");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_parse_table);
        tcase_add_test(tc, test_unix_path_too_long);
        tcase_add_test(tc, test_to_string_unknown_family);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(socket_address_suite);
