/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "check-main.h"
#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-signature.h"
#include "string-util.h"

/* RFC 8463 A.2 keys. */
#define ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RSA_P "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

static const struct {
        const char *name;
        const char *in;
        const char *reason;     /* NULL: accepted */
        bool revoked, testing, strict, sha256, email;
        DkimKeyType type;
} table[] = {
        { "rsa", "v=DKIM1; k=rsa; p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },
        { "rsa default k, no v", "p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },
        { "ed25519", "v=DKIM1; k=ed25519; p=" ED_P, NULL, false, false, false, true, true, DKIM_KEY_ED25519 },
        { "spaces and split", " v = DKIM1 ;k=ed25519;  p= 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMl rwIaaPcHURo= ; ", NULL, false, false, false, true, true, DKIM_KEY_ED25519 },
        { "revoked", "v=DKIM1; p=", NULL, true, false, false, true, true, DKIM_KEY_RSA },
        { "testing", "k=ed25519; t=y; p=" ED_P, NULL, false, true, false, true, true, DKIM_KEY_ED25519 },
        { "strict and testing", "k=ed25519; t=s:y; p=" ED_P, NULL, false, true, true, true, true, DKIM_KEY_ED25519 },
        { "unknown flag", "k=ed25519; t=q; p=" ED_P, NULL, false, false, false, true, true, DKIM_KEY_ED25519 },
        { "h sha256", "h=sha1:sha256; p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },
        { "h sha1 only", "h=sha1; p=" RSA_P, NULL, false, false, false, false, true, DKIM_KEY_RSA },
        { "s star", "s=*; p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },
        { "s email", "s=email:tlsrpt; p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },
        { "s tlsrpt only", "s=tlsrpt; p=" RSA_P, NULL, false, false, false, true, false, DKIM_KEY_RSA },
        { "notes and unknown tags", "v=DKIM1; n=hello world; g=*; zz=1; p=" RSA_P, NULL, false, false, false, true, true, DKIM_KEY_RSA },

        { "empty", "", "key record has no p= tag" },
        { "no p", "v=DKIM1; k=rsa", "key record has no p= tag" },
        { "v not first", "k=rsa; v=DKIM1; p=" RSA_P, "v= is not the first tag of the key record" },
        { "v wrong", "v=DKIM2; p=" RSA_P, "unsupported key record version (v= must be DKIM1)" },
        { "v colon (dkimpy badversion)", "v=DKIM1: k=rsa; p=" RSA_P, "unsupported key record version (v= must be DKIM1)" },
        { "unknown k", "k=ed25519-sha256; p=" RSA_P, "unknown key type in k=" },
        { "duplicate p", "p=" RSA_P "; p=" RSA_P, "duplicate tag in key record" },
        { "bad base64", "p=MIGf!MA0G", "p= is not valid base64" },
        { "truncated rsa", "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY", "p= is not valid base64" },
        { "garbage der", "p=dGVzdA==", "p= is not an RSA public key" },
        { "ed25519 wrong size", "k=ed25519; p=dGVzdA==", "p= is not a 32-byte Ed25519 key" },
        { "rsa key under k=ed25519", "k=ed25519; p=" RSA_P, "p= is not a 32-byte Ed25519 key" },
        { "ed25519 key under k=rsa", "k=rsa; p=" ED_P, "p= is not an RSA public key" },
        { "syntax", "p" , "tag without '='" },
};

START_TEST(test_key_table)
{
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(dkim_key_freep) DkimKey *key = NULL;
                const char *reason = NULL;
                int r;

                r = dkim_key_parse(table[i].in, strlen(table[i].in), &key, &reason);
                if (table[i].reason) {
                        ck_assert_msg(r == -EBADMSG, "%s: accepted", table[i].name);
                        ck_assert_msg(reason && streq(reason, table[i].reason), "%s: reason \"%s\"",
                                      table[i].name, reason ? reason : "(null)");
                        continue;
                }
                ck_assert_msg(r == 0, "%s: refused: %s", table[i].name, reason ? reason : "?");
                ck_assert_msg(key->revoked == table[i].revoked, "%s: revoked", table[i].name);
                ck_assert_msg(key->testing == table[i].testing, "%s: testing", table[i].name);
                ck_assert_msg(key->strict == table[i].strict, "%s: strict", table[i].name);
                ck_assert_msg(key->sha256_allowed == table[i].sha256, "%s: sha256", table[i].name);
                ck_assert_msg(key->email_allowed == table[i].email, "%s: email", table[i].name);
                ck_assert_msg(key->type == table[i].type, "%s: type", table[i].name);
                ck_assert_msg(key->revoked == !key->pkey, "%s: pkey", table[i].name);
        }
}
END_TEST

static char* record_for(EVP_PKEY *k) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        char *rec = NULL;
        int n;

        n = i2d_PUBKEY(k, &der);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(dkim_base64_encode(der, (size_t) n, &b64), 0);
        ck_assert_int_gt(asprintf_safe(&rec, "v=DKIM1; k=rsa; p=%s", b64), 0);
        return rec;
}

START_TEST(test_key_rsa_sizes)
{
        static const struct {
                size_t bits;
                bool ok;
        } sizes[] = { { 512, false }, { 1016, false }, { 1024, true }, { 2048, true } };

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", sizes[i].bits);
                _cleanup_(dkim_key_freep) DkimKey *key = NULL;
                _cleanup_free_ char *rec = NULL;
                const char *reason = NULL;
                int r;

                ck_assert_ptr_nonnull(k);
                rec = record_for(k);
                r = dkim_key_parse(rec, strlen(rec), &key, &reason);
                if (sizes[i].ok) {
                        ck_assert_int_eq(r, 0);
                        ck_assert_uint_eq(key->bits, sizes[i].bits);
                } else {
                        ck_assert_int_eq(r, -EBADMSG);
                        ck_assert_str_eq(reason, "RSA key shorter than 1024 bits (RFC 8301)");
                }
        }
}
END_TEST

START_TEST(test_key_pkcs1)
{
        /* A bare RSAPublicKey (PKCS#1) in p= is accepted as well as SPKI. */
        static const char rec[] = "v=DKIM1; p=MIGJAoGBALVI635dLK4cJJAH3Lx6upo3X/Lm1tQz3mezcWTA3BUBnyIsdnRf57aD5BtNmhPrYYDlWlzw3UgnKisIxktkk5+iMQMlFtAS10JB8L3YadXNJY+JBcbeSi5TgJe4WFzNgW95FWDAuSTRXSWZfA/8xjflbTLDx0euFZOM7C4T0GwLAgMBAAE=";
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;

        ck_assert_int_eq(dkim_key_parse(rec, strlen(rec), &key, NULL), 0);
        ck_assert_uint_eq(key->bits, 1024);
}
END_TEST

static Suite* dkim_key_suite(void) {
        Suite *s = suite_create("dkim-key");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_key_table);
        tcase_add_test(tc, test_key_rsa_sizes);
        tcase_add_test(tc, test_key_pkcs1);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dkim_key_suite);
