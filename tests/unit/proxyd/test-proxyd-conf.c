/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "proxyd-conf.h"
#include "string-util.h"

START_TEST(test_defaults)
{
        _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
        _cleanup_free_ char *backend = NULL;

        ck_assert_int_eq(proxy_config_new(&c), 0);
        ck_assert_int_eq(proxy_config_prepare(c, "defaults", /* load_tls= */ false, NULL), 0);
        ck_assert_ptr_nonnull(c->hostname);
        ck_assert_str_eq(c->upstream.helo, c->hostname);
        ck_assert_int_eq(socket_address_to_string(&c->upstream.address, &backend), 0);
        ck_assert_str_eq(backend, "127.0.0.1:10025");
        ck_assert_int_eq(c->upstream.client_info, BACKEND_CLIENT_INFO_XCLIENT);
        ck_assert_int_eq(c->upstream.tls, BACKEND_TLS_MAY);
        ck_assert(c->starttls);
        ck_assert_uint_eq(c->max_line_length, 1000);
        ck_assert_uint_eq(c->max_message_size, 50 * 1024 * 1024);
        ck_assert_uint_eq(c->max_recipients, 1000);
        ck_assert_uint_eq(c->max_sessions, 10000);
        ck_assert_uint_eq(c->max_sessions_per_client, 50);
        ck_assert_uint_eq(c->max_bad_commands, 10);
        ck_assert_uint_eq(c->max_header_size, 1024 * 1024);
        ck_assert_uint_eq(c->server_timeout, 5 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.connect_timeout, 30 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.greeting_timeout, 5 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.mail_timeout, 5 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.rcpt_timeout, 5 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.data_init_timeout, 2 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.data_block_timeout, 3 * USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.data_term_timeout, 10 * USEC_PER_MINUTE);
        ck_assert(!c->authentication);
        ck_assert_uint_eq(c->auth_timeout, 30 * USEC_PER_SEC);
        ck_assert_int_eq(c->on_auth_failure, AUTH_FAILURE_TEMPFAIL);
        ck_assert(c->dmarc_reject);
        ck_assert_int_eq(c->dmarc_quarantine, DMARC_QUARANTINE_HEADER);
}
END_TEST

START_TEST(test_every_key)
{
        static const char text[] =
                "[Proxy]\n"
                "Hostname=mx.example.org\n"
                "Backend=[::1]:2525\n"
                "BackendClientInfo=proxy-v2\n"
                "BackendTLS=verify\n"
                "BackendCAFile=/etc/ssl/certs/ca.pem\n"
                "BackendPin=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                "BackendTLSName=mail.example.org\n"
                "BackendHelo=relay.example.org\n"
                "[TLS]\n"
                "CertificateFile=/etc/mailsec/rsa.pem\n"
                "KeyFile=rsa.key\n"
                "CertificateFile=/etc/mailsec/ecdsa.pem\n"
                "KeyFile=/etc/mailsec/ecdsa.key\n"
                "STARTTLS=no\n"
                "[Limits]\n"
                "MaxLineLength=2000\n"
                "MaxMessageSize=10M\n"
                "MaxRecipients=5\n"
                "MaxSessions=100\n"
                "MaxSessionsPerClient=3\n"
                "MaxBadCommands=4\n"
                "MaxHeaderSize=64K\n"
                "[Timeouts]\n"
                "ServerTimeoutSec=1min\n"
                "BackendConnectTimeoutSec=1s\n"
                "BackendGreetingTimeoutSec=2s\n"
                "BackendMailTimeoutSec=3s\n"
                "BackendRcptTimeoutSec=4s\n"
                "BackendDataInitTimeoutSec=5s\n"
                "BackendDataBlockTimeoutSec=6s\n"
                "BackendDataTermTimeoutSec=7s\n"
                "[Checks]\n"
                "Authentication=yes\n"
                "AuthTimeoutSec=8s\n"
                "OnAuthFailure=accept\n"
                "DmarcReject=no\n"
                "DmarcQuarantine=reject\n";
        _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
        _cleanup_free_ char *backend = NULL;
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_eq(proxy_config_new(&c), 0);
        ck_assert_int_eq(proxy_config_parse_text(c, "test.conf", text, &e), 0);
        ck_assert_int_eq(proxy_config_prepare(c, "test.conf", false, &e), 0);

        ck_assert_str_eq(c->hostname, "mx.example.org");
        ck_assert_int_eq(socket_address_to_string(&c->upstream.address, &backend), 0);
        ck_assert_str_eq(backend, "[::1]:2525");
        ck_assert_int_eq(c->upstream.client_info, BACKEND_CLIENT_INFO_PROXY_V2);
        ck_assert_int_eq(c->upstream.tls, BACKEND_TLS_VERIFY);
        ck_assert_str_eq(c->upstream.ca_file, "/etc/ssl/certs/ca.pem");
        ck_assert(c->upstream.have_pin);
        ck_assert_uint_eq(c->upstream.pin[0], 0);
        ck_assert_uint_eq(c->upstream.pin[31], 0x1f);
        ck_assert_str_eq(c->upstream.tls_name, "mail.example.org");
        ck_assert_str_eq(c->upstream.helo, "relay.example.org");
        ck_assert_uint_eq(strv_length(c->certificate_files), 2);
        ck_assert_str_eq(c->certificate_files[1], "/etc/mailsec/ecdsa.pem");
        ck_assert_str_eq(c->key_files[0], "rsa.key");
        ck_assert(!c->starttls);
        ck_assert_uint_eq(c->max_line_length, 2000);
        ck_assert_uint_eq(c->max_message_size, 10 * 1024 * 1024);
        ck_assert_uint_eq(c->max_recipients, 5);
        ck_assert_uint_eq(c->max_sessions, 100);
        ck_assert_uint_eq(c->max_sessions_per_client, 3);
        ck_assert_uint_eq(c->max_bad_commands, 4);
        ck_assert_uint_eq(c->max_header_size, 64 * 1024);
        ck_assert_uint_eq(c->server_timeout, USEC_PER_MINUTE);
        ck_assert_uint_eq(c->upstream.connect_timeout, 1 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.greeting_timeout, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.mail_timeout, 3 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.rcpt_timeout, 4 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.data_init_timeout, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.data_block_timeout, 6 * USEC_PER_SEC);
        ck_assert_uint_eq(c->upstream.data_term_timeout, 7 * USEC_PER_SEC);
        ck_assert(c->authentication);
        ck_assert_uint_eq(c->auth_timeout, 8 * USEC_PER_SEC);
        ck_assert_int_eq(c->on_auth_failure, AUTH_FAILURE_ACCEPT);
        ck_assert(!c->dmarc_reject);
        ck_assert_int_eq(c->dmarc_quarantine, DMARC_QUARANTINE_REJECT);
        config_error_done(&e);
}
END_TEST

static const struct {
        const char *text;
        unsigned line;
} bad_values[] = {
        { "[Proxy]\nHostname=bad host\n", 2 },
        { "[Proxy]\n\nBackend=mail.example.org:25\n", 3 },
        { "[Proxy]\nBackend=127.0.0.1:99999\n", 2 },
        { "[Proxy]\nBackendClientInfo=header\n", 2 },
        { "[Proxy]\nBackendTLS=maybe\n", 2 },
        { "[Proxy]\nBackendPin=abcd\n", 2 },
        { "[Proxy]\nBackendCAFile=relative.pem\n", 2 },
        { "[TLS]\nCertificateFile=cert.pem\n", 2 },
        { "[TLS]\nKeyFile=../key.pem\n", 2 },
        { "[TLS]\nSTARTTLS=perhaps\n", 2 },
        { "[Limits]\nMaxLineLength=100\n", 2 },
        { "[Limits]\nMaxLineLength=100000\n", 2 },
        { "[Limits]\nMaxMessageSize=10X\n", 2 },
        { "[Limits]\nMaxMessageSize=10\n", 2 },
        { "[Limits]\nMaxRecipients=0\n", 2 },
        { "[Limits]\nMaxSessions=-1\n", 2 },
        { "[Limits]\nMaxSessionsPerClient=0\n", 2 },
        { "[Limits]\nMaxBadCommands=many\n", 2 },
        { "[Limits]\nMaxHeaderSize=\n", 2 },
        { "# comment\n[Timeouts]\nServerTimeoutSec=0\n", 3 },
        { "[Timeouts]\nBackendConnectTimeoutSec=soon\n", 2 },
        { "[Timeouts]\nBackendDataTermTimeoutSec=-5s\n", 2 },
        { "[Checks]\nAuthentication=sometimes\n", 2 },
        { "[Checks]\nAuthTimeoutSec=0\n", 2 },
        { "[Checks]\nOnAuthFailure=reject\n", 2 },
        { "[Checks]\nDmarcReject=perhaps\n", 2 },
        { "[Checks]\nDmarcQuarantine=tempfail\n", 2 },
};

START_TEST(test_bad_values)
{
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
                ConfigError e = CONFIG_ERROR_NULL;

                ck_assert_int_eq(proxy_config_new(&c), 0);
                ck_assert_msg(proxy_config_parse_text(c, "bad.conf", bad_values[i].text, &e) < 0,
                              "accepted: %s", bad_values[i].text);
                ck_assert_msg(e.line == bad_values[i].line, "%s: line %u", bad_values[i].text, e.line);
                ck_assert_str_eq(e.filename, "bad.conf");
                ck_assert_ptr_nonnull(e.message);
                config_error_done(&e);
        }
}
END_TEST

START_TEST(test_prepare_errors)
{
        static const char *const texts[] = {
                "[Proxy]\nBackendTLS=verify\n",                         /* neither CA nor pin */
                "[TLS]\nCertificateFile=/a.pem\n",                      /* no key */
                "[TLS]\nKeyFile=/a.key\n",                              /* no certificate */
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
                ConfigError e = CONFIG_ERROR_NULL;

                ck_assert_int_eq(proxy_config_new(&c), 0);
                ck_assert_int_eq(proxy_config_parse_text(c, "p.conf", texts[i], &e), 0);
                ck_assert_int_lt(proxy_config_prepare(c, "p.conf", false, &e), 0);
                ck_assert_ptr_nonnull(e.message);
                config_error_done(&e);
        }
}
END_TEST

/* The sample configuration names exactly the keys of the table, and parses. */
START_TEST(test_sample_file)
{
        _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        ConfigError e = CONFIG_ERROR_NULL;
        char line[512], section[64] = "";
        size_t n_keys = 0;

        f = fopen(PROXYD_SAMPLE_CONF, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f)) {
                char key[128];
                bool found = false;

                if (sscanf(line, "[%63[^]]]", section) == 1)
                        continue;
                if (sscanf(line, "#%127[A-Za-z0-9]=", key) != 1 || !strchr(line, '='))
                        continue;
                for (size_t i = 0; i < proxy_config_table_size; i++)
                        if (streq(proxy_config_table[i].section, section) &&
                            streq(proxy_config_table[i].lvalue, key))
                                found = true;
                ck_assert_msg(found, "[%s] %s= in the sample file is not in the table", section, key);
                n_keys++;
        }
        ck_assert_uint_eq(n_keys, proxy_config_table_size);

        ck_assert_int_eq(proxy_config_new(&c), 0);
        ck_assert_int_eq(proxy_config_parse_file(c, PROXYD_SAMPLE_CONF, &e), 0);
        config_error_done(&e);
}
END_TEST

START_TEST(test_refcount)
{
        ProxyConfig *c = NULL;

        ck_assert_int_eq(proxy_config_new(&c), 0);
        ck_assert_ptr_eq(proxy_config_ref(c), c);
        ck_assert_uint_eq(c->n_ref, 2);
        ck_assert_ptr_null(proxy_config_unref(c));
        ck_assert_uint_eq(c->n_ref, 1);
        ck_assert_ptr_null(proxy_config_unref(c));
}
END_TEST

static Suite* proxyd_conf_suite(void) {
        Suite *s = suite_create("proxyd-conf");
        TCase *tc = tcase_create("table");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_bad_values);
        tcase_add_test(tc, test_prepare_errors);
        tcase_add_test(tc, test_sample_file);
        tcase_add_test(tc, test_refcount);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(proxyd_conf_suite);
