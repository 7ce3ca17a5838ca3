/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "authd-conf.h"
#include "check-main.h"
#include "cleanup.h"
#include "log.h"
#include "stderr-capture.h"
#include "string-util.h"

/* Every key with good and bad values. text is a whole file named "test.conf"; a bad value
 * must fail with file and line (bad_line), in parsing or, for what auth_config_prepare()
 * judges (Key= syntax, ArcKey=), in preparing. check looks at what a good value set. */
typedef void (*ConfCheck)(const AuthConfig *c);

static void check_servers(const AuthConfig *c) {
        ck_assert_int_eq(strv_length(c->servers), 2);
        ck_assert_str_eq(c->servers[0], "127.0.0.53:53");
        ck_assert_str_eq(c->servers[1], "[::1]:5353");
}
static void check_servers_reset(const AuthConfig *c) {
        ck_assert_ptr_null(c->servers);
}
static void check_timeout(const AuthConfig *c) {
        ck_assert_uint_eq(c->resolver_timeout, 1500 * USEC_PER_MSEC);
}
static void check_authserv_id(const AuthConfig *c) {
        ck_assert_str_eq(c->authserv_id, "mx.example.org");
}
static void check_partial(const AuthConfig *c) {
        ck_assert(c->dkim_allow_partial_body);
}
static void check_tree_walk(const AuthConfig *c) {
        ck_assert(c->dmarc_tree_walk);
}
static void check_sealers(const AuthConfig *c) {
        ck_assert_int_eq(strv_length(c->trusted_arc_sealers), 3);
        ck_assert_str_eq(c->trusted_arc_sealers[0], "lists.example.net");
        ck_assert_str_eq(c->trusted_arc_sealers[1], "forwarder.example");
        ck_assert_str_eq(c->trusted_arc_sealers[2], "relay.example.com");
}
static void check_sealers_reset(const AuthConfig *c) {
        ck_assert_int_eq(strv_length(c->trusted_arc_sealers), 1);
        ck_assert_str_eq(c->trusted_arc_sealers[0], "b.example");
}
static void check_sealers_default(const AuthConfig *c) {
        ck_assert_ptr_null(c->trusted_arc_sealers);
}
static void check_two_keys(const AuthConfig *c) {
        ck_assert_uint_eq(c->n_keys, 2);
        ck_assert_str_eq(c->keys[0].domain, "example.org");
        ck_assert_str_eq(c->keys[0].selector, "rsa1");
        ck_assert_int_eq(c->keys[0].type, DKIM_KEY_RSA);
        ck_assert_str_eq(c->keys[0].source, "/etc/mailsec/dkim/rsa1.pem");
        ck_assert_str_eq(c->keys[0].origin, "test.conf:2");
        ck_assert_str_eq(c->keys[1].selector, "ed1");
        ck_assert_int_eq(c->keys[1].type, DKIM_KEY_ED25519);
        ck_assert_str_eq(c->keys[1].source, "dkim_ed1.pem");
        ck_assert_str_eq(c->keys[1].origin, "test.conf:3");
}
static void check_key_replaced(const AuthConfig *c) {
        ck_assert_uint_eq(c->n_keys, 2);
        /* the replacement keeps the earlier line's place */
        ck_assert_str_eq(c->keys[0].selector, "rsa2");
        ck_assert_str_eq(c->keys[0].origin, "test.conf:4");
        ck_assert_str_eq(c->keys[1].selector, "ed1");
}
static void check_key_reset(const AuthConfig *c) {
        ck_assert_uint_eq(c->n_keys, 1);
        ck_assert_str_eq(c->keys[0].selector, "ed1");
        ck_assert_uint_eq(strv_length(c->key_lines), strv_length(c->key_origins));
}
static void check_keys_other_domain(const AuthConfig *c) {
        ck_assert_uint_eq(c->n_keys, 2);
        ck_assert_str_eq(c->keys[0].domain, "example.org");
        ck_assert_str_eq(c->keys[1].domain, "example.net");
}
static void check_arc_key(const AuthConfig *c) {
        ck_assert_str_eq(c->arc_key, "example.org:ed1");
        ck_assert_ptr_eq(auth_config_arc_key(c), &c->keys[1]);
}
static void check_arc_key_default(const AuthConfig *c) {
        ck_assert_ptr_eq(auth_config_arc_key(c), &c->keys[0]);
}
static void check_idle(const AuthConfig *c) {
        ck_assert_uint_eq(c->idle_timeout, 0);
}
static void check_check_timeout(const AuthConfig *c) {
        ck_assert_uint_eq(c->check_timeout, 2 * USEC_PER_MINUTE);
}
static void check_pending(const AuthConfig *c) {
        ck_assert_uint_eq(c->max_pending, 17);
}
static void check_size(const AuthConfig *c) {
        ck_assert_uint_eq(c->max_message_size, UINT64_C(10) * 1024 * 1024);
}
static void check_defaults(const AuthConfig *c) {
        ck_assert_ptr_null(c->servers);
        ck_assert_uint_eq(c->resolver_timeout, 0);
        ck_assert(!c->dkim_allow_partial_body);
        ck_assert(!c->dmarc_tree_walk);
        ck_assert_uint_eq(c->n_keys, 0);
        ck_assert_ptr_null(auth_config_arc_key(c));
        ck_assert_uint_eq(c->idle_timeout, AUTHD_DEFAULT_IDLE_TIMEOUT);
        ck_assert_uint_eq(c->check_timeout, AUTHD_DEFAULT_CHECK_TIMEOUT);
        ck_assert_uint_eq(c->max_pending, AUTHD_DEFAULT_MAX_PENDING);
        ck_assert_uint_eq(c->max_message_size, AUTHD_DEFAULT_MAX_MESSAGE_SIZE);
}

#define KEYS2 "[Signing]\nKey=example.org:rsa1:rsa:/etc/mailsec/dkim/rsa1.pem\nKey=example.org:ed1:ed25519:dkim_ed1.pem\n"

static const struct {
        const char *name;
        const char *text;
        bool ok;
        unsigned bad_line;              /* bad: the line the error names (0: none) */
        ConfCheck check;                /* good: what it set */
} conf_table[] = {
        { "empty file", "", true, 0, check_defaults },
        { "comments only", "# nothing\n; here\n", true, 0, check_defaults },

        /* [Resolver] */
        { "Servers= two", "[Resolver]\nServers=127.0.0.53:53 [::1]:5353\n", true, 0, check_servers },
        { "Servers= empty resets", "[Resolver]\nServers=127.0.0.1:53\nServers=\n", true, 0, check_servers_reset },
        { "Servers= host name", "[Resolver]\nServers=dns.example:53\n", false, 2, NULL },
        { "Servers= no port", "[Resolver]\n\nServers=127.0.0.1\n", false, 3, NULL },
        { "Servers= unix socket", "[Resolver]\nServers=/run/dns.sock\n", false, 2, NULL },
        { "Servers= too many", "[Resolver]\nServers=127.0.0.1:53 127.0.0.2:53 127.0.0.3:53 127.0.0.4:53 "
          "127.0.0.5:53 127.0.0.6:53 127.0.0.7:53 127.0.0.8:53 127.0.0.9:53\n", false, 2, NULL },
        { "TimeoutSec= good", "[Resolver]\nTimeoutSec=1.5s\n", true, 0, check_timeout },
        { "TimeoutSec= bad", "[Resolver]\nTimeoutSec=soon\n", false, 2, NULL },

        /* [Authentication] */
        { "AuthservId= good", "[Authentication]\nAuthservId=mx.example.org\n", true, 0, check_authserv_id },
        { "AuthservId= space", "[Authentication]\nAuthservId=mx example\n", false, 2, NULL },
        { "AuthservId= semicolon", "[Authentication]\nAuthservId=mx;example\n", false, 2, NULL },
        { "DkimAllowPartialBody= yes", "[Authentication]\nDkimAllowPartialBody=yes\n", true, 0, check_partial },
        { "DkimAllowPartialBody= bad", "[Authentication]\nDkimAllowPartialBody=perhaps\n", false, 2, NULL },
        { "DmarcTreeWalk= true", "[Authentication]\nDmarcTreeWalk=true\n", true, 0, check_tree_walk },
        { "DmarcTreeWalk= bad", "[Authentication]\nDmarcTreeWalk=2\n", false, 2, NULL },
        { "TrustedArcSealers= default", "[Authentication]\n", true, 0, check_sealers_default },
        { "TrustedArcSealers= words and lines",
          "[Authentication]\nTrustedArcSealers=Lists.Example.NET forwarder.example.\n"
          "TrustedArcSealers=relay.example.com lists.example.net\n", true, 0, check_sealers },
        { "TrustedArcSealers= empty resets",
          "[Authentication]\nTrustedArcSealers=a.example\nTrustedArcSealers=\nTrustedArcSealers=b.example\n",
          true, 0, check_sealers_reset },
        { "TrustedArcSealers= address", "[Authentication]\nTrustedArcSealers=lists.example 192.0.2.1:25\n",
          false, 2, NULL },
        { "TrustedArcSealers= IPv4 literal", "[Authentication]\nTrustedArcSealers=192.0.2.1\n", false, 2, NULL },
        { "TrustedArcSealers= empty label", "[Authentication]\nTrustedArcSealers=lists..example\n", false, 2, NULL },
        { "TrustedArcSealers= single label", "[Authentication]\nTrustedArcSealers=localhost\n", false, 2, NULL },
        { "TrustedArcSealers= leading dot", "[Authentication]\n#\nTrustedArcSealers=.example.net\n", false, 3, NULL },
        { "TrustedArcSealers= wildcard", "[Authentication]\nTrustedArcSealers=*.example.net\n", false, 2, NULL },

        /* [Signing]: syntax is judged when preparing, still with file and line */
        { "Key= two algorithms", KEYS2, true, 0, check_two_keys },
        { "Key= other domain", "[Signing]\nKey=example.org:rsa1:rsa:/k1.pem\nKey=example.net:rsa1:rsa:/k2.pem\n",
          true, 0, check_keys_other_domain },
        { "Key= same algorithm replaces", KEYS2 "Key=EXAMPLE.org:rsa2:rsa:/etc/mailsec/dkim/rsa2.pem\n",
          true, 0, check_key_replaced },
        { "Key= empty resets", KEYS2 "Key=\nKey=example.org:ed1:ed25519:/ed1.pem\n", true, 0, check_key_reset },
        { "Key= selector twice, two algorithms",
          "[Signing]\nKey=example.org:s1:rsa:/a.pem\n\nKey=example.org:s1:ed25519:/b.pem\n", false, 4, NULL },
        { "Key= replacement collides with the other algorithm",
          KEYS2 "Key=example.org:ed1:rsa:/c.pem\n", false, 4, NULL },
        { "Key= three fields", "[Signing]\nKey=example.org:rsa1:/k.pem\n", false, 2, NULL },
        { "Key= unknown algorithm", "[Signing]\nKey=example.org:s:dsa:/k.pem\n", false, 2, NULL },
        { "Key= bad domain", "[Signing]\n\n\nKey=exa mple.org:s:rsa:/k.pem\n", false, 4, NULL },
        { "Key= empty selector", "[Signing]\nKey=example.org::rsa:/k.pem\n", false, 2, NULL },
        { "Key= empty source", "[Signing]\nKey=example.org:s:rsa:\n", false, 2, NULL },
        { "Key= relative path", "[Signing]\nKey=example.org:s:rsa:dkim/k.pem\n", false, 2, NULL },
        { "Key= dot dot", "[Signing]\nKey=example.org:s:rsa:..\n", false, 2, NULL },
        { "ArcKey= names a key", KEYS2 "ArcKey=example.org:ed1\n", true, 0, check_arc_key },
        { "ArcKey= unset: the first key", KEYS2, true, 0, check_arc_key_default },
        { "ArcKey= names a missing key", KEYS2 "ArcKey=example.org:ed9\n", false, 0, NULL },
        { "ArcKey= names a replaced key",
          KEYS2 "Key=example.org:rsa2:rsa:/rsa2.pem\nArcKey=example.org:rsa1\n", false, 0, NULL },
        { "ArcKey= without keys", "[Signing]\nArcKey=example.org:ed1\n", false, 0, NULL },

        /* [Service] */
        { "IdleTimeoutSec= 0", "[Service]\nIdleTimeoutSec=0\n", true, 0, check_idle },
        { "IdleTimeoutSec= bad", "[Service]\nIdleTimeoutSec=-1\n", false, 2, NULL },
        { "CheckTimeoutSec= 2min", "[Service]\nCheckTimeoutSec=2min\n", true, 0, check_check_timeout },
        { "CheckTimeoutSec= 0", "[Service]\nCheckTimeoutSec=0\n", false, 2, NULL },
        { "CheckTimeoutSec= bad", "[Service]\nCheckTimeoutSec=x\n", false, 2, NULL },
        { "MaxPendingChecks= 17", "[Service]\nMaxPendingChecks=17\n", true, 0, check_pending },
        { "MaxPendingChecks= 0", "[Service]\nMaxPendingChecks=0\n", false, 2, NULL },
        { "MaxPendingChecks= negative", "[Service]\nMaxPendingChecks=-3\n", false, 2, NULL },
        { "MaxMessageSize= 10M", "[Service]\nMaxMessageSize=10M\n", true, 0, check_size },
        { "MaxMessageSize= bad", "[Service]\nMaxMessageSize=10Q\n", false, 2, NULL },

        /* the file itself */
        { "unknown key is a warning", "[Service]\nColour=blue\n", true, 0, check_defaults },
        { "line without = is a warning", "[Service]\nIdleTimeoutSec\n", true, 0, check_defaults },
        { "unterminated section", "[Service\nIdleTimeoutSec=1s\n", false, 1, NULL },
};

START_TEST(test_conf_table)
{
        for (size_t i = 0; i < ELEMENTSOF(conf_table); i++) {
                _cleanup_(auth_config_freep) AuthConfig *c = NULL;
                ConfigError e = CONFIG_ERROR_NULL;
                int r;

                ck_assert_int_eq(auth_config_new(&c), 0);
                r = auth_config_parse_text(c, "test.conf", conf_table[i].text, &e);
                if (r >= 0) {
                        /* AuthservId= is filled in from the host name otherwise */
                        if (!c->authserv_id)
                                ck_assert_int_ge(free_and_strdup(&c->authserv_id, "mx.test"), 0);
                        r = auth_config_prepare(c, "test.conf", /* load_keys= */ false, &e);
                }
                if (conf_table[i].ok) {
                        ck_assert_msg(r >= 0, "%s: %s", conf_table[i].name, strna(e.message));
                        if (conf_table[i].check)
                                conf_table[i].check(c);
                } else {
                        ck_assert_msg(r < 0, "%s: accepted", conf_table[i].name);
                        ck_assert_msg(e.message, "%s: no message", conf_table[i].name);
                        ck_assert_msg(streq_ptr(e.filename, "test.conf"), "%s: file %s", conf_table[i].name,
                                      strna(e.filename));
                        ck_assert_msg(e.line == conf_table[i].bad_line, "%s: line %u, expected %u (%s)",
                                      conf_table[i].name, e.line, conf_table[i].bad_line, e.message);
                }
                config_error_done(&e);
        }
}
END_TEST

/* Files: a main file and a drop-in directory. */

typedef struct TmpDir {
        char path[PATH_MAX];
} TmpDir;

static void tmp_write(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf_safe(&p, "%s/%s", dir, name), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static void tmp_rm_rf(const char *dir) {
        _cleanup_free_ char *cmd = NULL;

        ck_assert_int_ge(asprintf_safe(&cmd, "rm -rf '%s'", dir), 0);
        ck_assert_int_eq(system(cmd), 0);
}

static void write_key(const char *dir, const char *name, int type) {
        _cleanup_free_ char *p = NULL;
        EVP_PKEY *k;
        FILE *f;

        k = type == EVP_PKEY_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        ck_assert_ptr_nonnull(k);
        ck_assert_int_ge(asprintf_safe(&p, "%s/%s", dir, name), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
        ck_assert_int_eq(fclose(f), 0);
        EVP_PKEY_free(k);
}

START_TEST(test_dropin_replaces_key)
{
        _cleanup_(auth_config_freep) AuthConfig *c = NULL;
        _cleanup_free_ char *main_conf = NULL, *d = NULL, *text = NULL, *dropin = NULL, *log = NULL;
        ConfigError e = CONFIG_ERROR_NULL;
        char dir[] = "/tmp/test-authd-conf.XXXXXX";
        StderrCapture cap;
        const AuthSigningKey *keys[4];

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf_safe(&d, "%s/authd.conf.d", dir), 0);
        ck_assert_int_eq(mkdir(d, 0755), 0);
        ck_assert_int_ge(asprintf_safe(&main_conf, "%s/authd.conf", dir), 0);

        /* rsa1.pem is never written: the drop-in replaces that key, so it is not read */
        write_key(dir, "ed1.pem", EVP_PKEY_ED25519);
        write_key(dir, "rsa2.pem", EVP_PKEY_RSA);
        ck_assert_int_ge(asprintf_safe(&text,
                                       "[Authentication]\nAuthservId=mx.test\n[Signing]\n"
                                       "Key=example.org:rsa1:rsa:%s/rsa1.pem\n"
                                       "Key=example.org:ed1:ed25519:%s/ed1.pem\n"
                                       "Key=example.net:rsa1:rsa:%s/rsa2.pem\n", dir, dir, dir), 0);
        tmp_write(dir, "authd.conf", text);
        free(text);
        ck_assert_int_ge(asprintf_safe(&text, "[Signing]\nKey=example.org:rsa2:rsa:%s/rsa2.pem\n", dir), 0);
        tmp_write(d, "50-switch.conf", text);

        ck_assert_int_eq(auth_config_new(&c), 0);
        ck_assert_int_eq(auth_config_parse_file(c, main_conf, &e), 0);

        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
        stderr_capture_begin(&cap);
        ck_assert_int_eq(auth_config_prepare(c, main_conf, /* load_keys= */ true, &e), 0);
        log = stderr_capture_end(&cap);

        ck_assert_uint_eq(c->n_keys, 3);
        ck_assert_uint_eq(auth_config_keys_for_domain(c, "Example.ORG.", keys, ELEMENTSOF(keys)), 2);
        ck_assert_str_eq(keys[0]->selector, "rsa2");
        ck_assert_int_eq(keys[0]->type, DKIM_KEY_RSA);
        ck_assert_ptr_nonnull(keys[0]->pkey);
        ck_assert_str_eq(keys[1]->selector, "ed1");
        ck_assert_ptr_nonnull(keys[1]->pkey);
        /* another domain's key of the same algorithm stays */
        ck_assert_uint_eq(auth_config_keys_for_domain(c, "example.net", keys, ELEMENTSOF(keys)), 1);
        ck_assert_str_eq(keys[0]->selector, "rsa1");

        /* the log names both lines */
        ck_assert_int_ge(asprintf_safe(&dropin, "%s/50-switch.conf:2", d), 0);
        ck_assert_msg(strstr(log, dropin), "log: %s", log);
        ck_assert_msg(strstr(log, "authd.conf:4"), "log: %s", log);
        ck_assert_msg(strstr(log, "replaces"), "log: %s", log);

        /* without the drop-in the missing rsa1.pem is an error naming the key */
        auth_config_free(TAKE_PTR(c));
        free(text);
        ck_assert_int_ge(asprintf_safe(&text, "%s/50-switch.conf", d), 0);
        ck_assert_int_eq(unlink(text), 0);
        ck_assert_int_eq(auth_config_new(&c), 0);
        ck_assert_int_eq(auth_config_parse_file(c, main_conf, &e), 0);
        ck_assert_int_lt(auth_config_prepare(c, main_conf, /* load_keys= */ true, &e), 0);
        ck_assert_ptr_nonnull(strstr(e.message, "rsa1"));

        config_error_done(&e);
        tmp_rm_rf(dir);
}
END_TEST

START_TEST(test_dropin_bad_value_names_dropin)
{
        _cleanup_(auth_config_freep) AuthConfig *c = NULL;
        _cleanup_free_ char *main_conf = NULL, *d = NULL, *expect = NULL;
        ConfigError e = CONFIG_ERROR_NULL;
        char dir[] = "/tmp/test-authd-conf.XXXXXX";

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf_safe(&d, "%s/authd.conf.d", dir), 0);
        ck_assert_int_eq(mkdir(d, 0755), 0);
        ck_assert_int_ge(asprintf_safe(&main_conf, "%s/authd.conf", dir), 0);
        tmp_write(dir, "authd.conf", "[Authentication]\nAuthservId=mx.test\n"
                  "[Signing]\nKey=example.org:s1:rsa:/k1.pem\n");
        tmp_write(d, "10-ok.conf", "[Authentication]\nTrustedArcSealers=lists.example.net\n");
        tmp_write(d, "20-bad.conf", "[Signing]\n# a comment\nKey=example.org:s1:ed25519:/k2.pem\n");

        ck_assert_int_eq(auth_config_new(&c), 0);
        ck_assert_int_eq(auth_config_parse_file(c, main_conf, &e), 0);
        ck_assert_int_eq(strv_length(c->trusted_arc_sealers), 1);
        ck_assert_int_eq(auth_config_prepare(c, main_conf, /* load_keys= */ false, &e), -EEXIST);
        ck_assert_int_ge(asprintf_safe(&expect, "%s/20-bad.conf", d), 0);
        ck_assert_str_eq(e.filename, expect);
        ck_assert_uint_eq(e.line, 3);
        ck_assert_ptr_nonnull(strstr(e.message, "authd.conf:4"));

        /* a refused value in a drop-in: its file and line */
        auth_config_free(TAKE_PTR(c));
        config_error_done(&e);
        tmp_write(d, "30-worse.conf", "[Service]\n\nMaxMessageSize=lots\n");
        ck_assert_int_eq(auth_config_new(&c), 0);
        ck_assert_int_lt(auth_config_parse_file(c, main_conf, &e), 0);
        free(expect);
        ck_assert_int_ge(asprintf_safe(&expect, "%s/30-worse.conf", d), 0);
        ck_assert_str_eq(e.filename, expect);
        ck_assert_uint_eq(e.line, 3);

        config_error_done(&e);
        tmp_rm_rf(dir);
}
END_TEST

static Suite* authd_conf_suite(void) {
        Suite *s = suite_create("authd-conf");
        TCase *tc;

        tc = tcase_create("keys");
        tcase_add_test(tc, test_conf_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("drop-ins");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_dropin_replaces_key);
        tcase_add_test(tc, test_dropin_bad_value_names_dropin);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(authd_conf_suite);
