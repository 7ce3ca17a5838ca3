/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "check-main.h"
#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "dkim-verify.h"
#include "string-util.h"

#define NOW 1700000000U

static EVP_PKEY *rsa_key, *ed_key;
static char *rsa_record, *ed_record;

static char* record_for(EVP_PKEY *k, bool ed) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        uint8_t raw[32];
        size_t rl = sizeof(raw);
        char *rec = NULL;
        int n;

        if (ed) {
                ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &rl), 1);
                ck_assert_int_eq(dkim_base64_encode(raw, rl, &b64), 0);
        } else {
                n = i2d_PUBKEY(k, &der);
                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(dkim_base64_encode(der, (size_t) n, &b64), 0);
        }
        ck_assert_int_gt(asprintf_safe(&rec, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64), 0);
        return rec;
}

static void setup(void) {
        rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        ck_assert_ptr_nonnull(rsa_key);
        ck_assert_ptr_nonnull(ed_key);
        rsa_record = record_for(rsa_key, false);
        ed_record = record_for(ed_key, true);
}

static void teardown(void) {
        EVP_PKEY_free(rsa_key);
        EVP_PKEY_free(ed_key);
        free(rsa_record);
        free(ed_record);
}

/* Fake key lookup: selector "rsa" / "ed" at example.com; "gone" does not exist, "slow"
 * fails temporarily, "revoked" has p= empty, "strict" is an Ed25519 key with t=s. */
static int get_key(const char *selector, const char *domain, char **ret, void *userdata) {
        unsigned *lookups = userdata;

        if (lookups)
                (*lookups)++;
        if (!streq(domain, "example.com") || streq(selector, "gone"))
                return -ENXIO;
        if (streq(selector, "slow"))
                return -ETIMEDOUT;
        if (streq(selector, "revoked"))
                return (*ret = strdup("v=DKIM1; p=")) ? 0 : -ENOMEM;
        if (streq(selector, "strict"))
                return asprintf_safe(ret, "%s; t=s", ed_record) < 0 ? -ENOMEM : 0;
        if (streq(selector, "rsa"))
                return (*ret = strdup(rsa_record)) ? 0 : -ENOMEM;
        if (streq(selector, "ed"))
                return (*ret = strdup(ed_record)) ? 0 : -ENOMEM;
        return -ENXIO;
}

static const char message[] =
        "Received: from a by b; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.com>\r\n"
        "To: Someone\r\n  <someone@example.net>,\r\n\tother@example.net\r\n"
        "Subject:  Gr\xc3\xbc\xc3\x9f\xc3\xa9   \r\n  folded subject\t\r\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        "Message-ID: <1@example.com>\r\n"
        "\r\n"
        "Hall\xc3\xb6 \t world  \r\n"
        "\r\n"
        "  8-bit: \xe2\x82\xac\xff\x80\r\n"
        "\r\n\r\n";

static char* sign_with(const char *msg, EVP_PKEY *k, const char *selector, DkimCanon hc, DkimCanon bc,
                       uint64_t expire_after, const char *identity) {
        DkimSigner s = DKIM_SIGNER_INIT;
        _cleanup_free_ char *fields = NULL;
        char *out = NULL;

        s.key = k;
        s.domain = "example.com";
        s.selector = selector;
        s.header_canon = hc;
        s.body_canon = bc;
        s.timestamp = NOW;
        s.expire_after = expire_after;
        s.identity = identity;
        ck_assert_int_eq(dkim_sign(msg, strlen(msg), &s, 1, &fields), 0);
        ck_assert_int_gt(asprintf_safe(&out, "%s%s", fields, msg), 0);
        return out;
}

static DkimResult verify1(const char *msg, const DkimVerifyOptions *o, const char **ret_reason) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        DkimVerifyOptions d = DKIM_VERIFY_OPTIONS_DEFAULT;
        DkimResult r;

        d.now = NOW + 60;
        ck_assert_int_eq(dkim_verify(msg, strlen(msg), o ? o : &d, get_key, NULL, &res), 0);
        ck_assert_uint_eq(res.n_results, 1);
        r = res.results[0].result;
        if (ret_reason)
                *ret_reason = res.results[0].reason;
        return r;
}

START_TEST(test_round_trips)
{
        for (int alg = 0; alg < 2; alg++)
                for (DkimCanon hc = 0; hc < _DKIM_CANON_MAX; hc++)
                        for (DkimCanon bc = 0; bc < _DKIM_CANON_MAX; bc++) {
                                _cleanup_free_ char *m = sign_with(message, alg ? ed_key : rsa_key,
                                                                   alg ? "ed" : "rsa", hc, bc, 0, NULL);
                                const char *reason = NULL;

                                ck_assert_msg(verify1(m, NULL, &reason) == DKIM_RESULT_PASS,
                                              "alg %d c=%d/%d: %s", alg, hc, bc, reason);
                                /* folded at 78 columns */
                                for (const char *l = m; l < strstr(m, "Received:");) {
                                        const char *e = strstr(l, "\r\n");
                                        ck_assert_int_le(e - l, 78);
                                        l = e + 2;
                                }
                        }
}
END_TEST

START_TEST(test_two_signers)
{
        DkimSigner s[2] = { DKIM_SIGNER_INIT, DKIM_SIGNER_INIT };
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_free_ char *fields = NULL, *m = NULL;
        _cleanup_strv_free_ char **names = NULL;
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;

        s[0].key = rsa_key, s[0].domain = "example.com", s[0].selector = "rsa";
        s[1].key = ed_key, s[1].domain = "example.com", s[1].selector = "ed";
        ck_assert_int_eq(dkim_sign(message, strlen(message), s, 2, &fields), 0);
        ck_assert_int_gt(asprintf_safe(&m, "%s%s", fields, message), 0);

        ck_assert_int_eq(dkim_verify_key_names(m, strlen(m), &names), 0);
        ck_assert_uint_eq(strv_length(names), 2);
        ck_assert_str_eq(names[0], "rsa._domainkey.example.com");
        ck_assert_str_eq(names[1], "ed._domainkey.example.com");

        o.now = NOW;
        ck_assert_int_eq(dkim_verify(m, strlen(m), &o, get_key, NULL, &res), 0);
        ck_assert_uint_eq(res.n_results, 2);
        ck_assert_int_eq(res.results[0].result, DKIM_RESULT_PASS);
        ck_assert_int_eq(res.results[1].result, DKIM_RESULT_PASS);
        ck_assert_int_eq(res.results[0].algorithm, DKIM_ALGORITHM_RSA_SHA256);
        ck_assert_int_eq(res.results[1].algorithm, DKIM_ALGORITHM_ED25519_SHA256);
}
END_TEST

static char* replace(const char *s, const char *from, const char *to) {
        const char *p = strstr(s, from);
        char *out = NULL;

        ck_assert_ptr_nonnull(p);
        ck_assert_int_gt(asprintf_safe(&out, "%.*s%s%s", (int) (p - s), s, to, p + strlen(from)), 0);
        return out;
}

START_TEST(test_tampering)
{
        static const struct {
                const char *from, *to;
                DkimResult relaxed;     /* expected with relaxed/relaxed */
                const char *reason;
        } cases[] = {
                { "world", "World", DKIM_RESULT_FAIL, "body hash did not verify" },
                { "Subject:  Gr", "Subject:  Hr", DKIM_RESULT_FAIL, "signature did not verify" },
                { "Date: Tue", "Date: Wed", DKIM_RESULT_FAIL, "signature did not verify" },
                /* a second From above the signed one: over-signing makes it count */
                { "Received:", "From: evil@example.org\r\nReceived:", DKIM_RESULT_FAIL, "signature did not verify" },
                /* whitespace changes pass relaxed */
                { "Hall\xc3\xb6 \t world", "Hall\xc3\xb6 world", DKIM_RESULT_PASS, NULL },
                { "To: Someone\r\n  <", "To:   Someone <", DKIM_RESULT_PASS, NULL },
                /* unsigned header added: still passes */
                { "Received:", "X-Unsigned: 1\r\nReceived:", DKIM_RESULT_PASS, NULL },
        };

        for (int alg = 0; alg < 2; alg++) {
                _cleanup_free_ char *m = sign_with(message, alg ? ed_key : rsa_key, alg ? "ed" : "rsa",
                                                   DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 0, NULL);
                _cleanup_free_ char *ms = sign_with(message, alg ? ed_key : rsa_key, alg ? "ed" : "rsa",
                                                    DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, 0, NULL);

                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        _cleanup_free_ char *t = replace(m, cases[i].from, cases[i].to);
                        _cleanup_free_ char *ts = replace(ms, cases[i].from, cases[i].to);
                        const char *reason = NULL;

                        ck_assert_msg(verify1(t, NULL, &reason) == cases[i].relaxed, "case %zu alg %d: %s", i, alg, reason);
                        if (cases[i].reason)
                                ck_assert_str_eq(reason, cases[i].reason);
                        /* every change breaks simple, except the added unsigned header */
                        ck_assert_int_eq(verify1(ts, NULL, NULL), i == 6 ? DKIM_RESULT_PASS : DKIM_RESULT_FAIL);
                }
        }
}
END_TEST

START_TEST(test_time)
{
        _cleanup_free_ char *m = sign_with(message, ed_key, "ed", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 3600, NULL);
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;
        const char *reason = NULL;

        ck_assert_ptr_nonnull(strstr(m, "x=1700003600"));
        o.now = NOW + 3600;
        ck_assert_int_eq(verify1(m, &o, NULL), DKIM_RESULT_PASS);
        o.now = NOW + 3601;
        ck_assert_int_eq(verify1(m, &o, &reason), DKIM_RESULT_FAIL);
        ck_assert_str_eq(reason, "signature expired (x=)");
        o.now = 0;              /* no clock: no time checks */
        ck_assert_int_eq(verify1(m, &o, NULL), DKIM_RESULT_PASS);
        o.now = NOW - 1000;
        ck_assert_int_eq(verify1(m, &o, NULL), DKIM_RESULT_PASS);
        o.refuse_future_timestamp = true;
        ck_assert_int_eq(verify1(m, &o, NULL), DKIM_RESULT_FAIL);
        o.now = NOW - 100;      /* within the skew */
        ck_assert_int_eq(verify1(m, &o, NULL), DKIM_RESULT_PASS);
}
END_TEST

/* A signature with l= made with the building blocks (the signer does not write l=). */
static char* sign_with_length(const char *msg, uint64_t l) {
        _cleanup_free_ char *bh64 = NULL, *field = NULL, *b64 = NULL;
        char *out = NULL;
        char *names[] = { (char*) "from", (char*) "subject" };
        uint8_t bh[32];

        ck_assert_int_eq(dkim_sign_body_hash(msg, strlen(msg), DKIM_CANON_RELAXED, l, bh), 0);
        ck_assert_int_eq(dkim_base64_encode(bh, 32, &bh64), 0);
        ck_assert_int_gt(asprintf_safe(&field, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
                                       " d=example.com; s=ed; l=%" PRIu64 "; h=from:subject; bh=%s; b=", l, bh64), 0);
        ck_assert_int_eq(dkim_sign_header(msg, strlen(msg), ed_key, DKIM_ALGORITHM_ED25519_SHA256,
                                          DKIM_CANON_RELAXED, names, 2, field, strlen(field), &b64), 0);
        ck_assert_int_gt(asprintf_safe(&out, "%s%s\r\n%s", field, b64, msg), 0);
        return out;
}

START_TEST(test_length)
{
        /* Canonical body of `message` (relaxed): count it. */
        _cleanup_(dkim_buffer_done) DkimBuffer body = DKIM_BUFFER_NULL;
        const char *b = strstr(message, "\r\n\r\n") + 4, *reason = NULL;
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;

        ck_assert_int_eq(dkim_canon_body(DKIM_CANON_RELAXED, b, strlen(b), &body), 0);

        {
                _cleanup_free_ char *full = sign_with_length(message, body.len);
                _cleanup_free_ char *part = sign_with_length(message, 10);
                _cleanup_free_ char *over = sign_with_length(message, body.len + 1);
                _cleanup_free_ char *appended = NULL;

                ck_assert_int_eq(verify1(full, NULL, NULL), DKIM_RESULT_PASS);
                ck_assert_int_eq(verify1(part, NULL, &reason), DKIM_RESULT_POLICY);
                ck_assert_str_eq(reason, "l= does not cover the whole body");
                o.allow_partial_body = true;
                ck_assert_int_eq(verify1(part, &o, NULL), DKIM_RESULT_PASS);
                ck_assert_int_eq(verify1(over, NULL, &reason), DKIM_RESULT_FAIL);
                ck_assert_str_eq(reason, "l= is longer than the body");

                /* content appended after a full-length l= is what l= lets through */
                ck_assert_int_gt(asprintf_safe(&appended, "%sappended text\r\n", full), 0);
                ck_assert_int_eq(verify1(appended, NULL, NULL), DKIM_RESULT_POLICY);
                ck_assert_int_eq(verify1(appended, &o, NULL), DKIM_RESULT_PASS);
        }
}
END_TEST

START_TEST(test_key_problems)
{
        static const struct {
                const char *selector;
                DkimResult result;
                const char *reason;
        } cases[] = {
                { "gone", DKIM_RESULT_PERMERROR, "no key record for this selector" },
                { "slow", DKIM_RESULT_TEMPERROR, "key record lookup failed" },
                { "revoked", DKIM_RESULT_PERMERROR, "key revoked (empty p=)" },
                { "rsa", DKIM_RESULT_PERMERROR, "key type does not match a=" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *m = sign_with(message, ed_key, "ed", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 0, NULL);
                _cleanup_free_ char *sel = NULL, *t = NULL;
                const char *reason = NULL;

                /* relaxed header canonicalization: the s= change breaks the signature, but
                 * the key decision comes first */
                ck_assert_int_gt(asprintf_safe(&sel, "s=%s;", cases[i].selector), 0);
                t = replace(m, "s=ed;", sel);
                ck_assert_int_eq(verify1(t, NULL, &reason), cases[i].result);
                ck_assert_str_eq(reason, cases[i].reason);
        }

        {
                /* t=s key: i= must be exactly d= */
                _cleanup_free_ char *ok = sign_with(message, ed_key, "strict", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 0, "joe@example.com");
                _cleanup_free_ char *sub = sign_with(message, ed_key, "strict", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 0, "joe@mail.example.com");
                const char *reason = NULL;

                ck_assert_int_eq(verify1(ok, NULL, NULL), DKIM_RESULT_PASS);
                ck_assert_int_eq(verify1(sub, NULL, &reason), DKIM_RESULT_PERMERROR);
                ck_assert_str_eq(reason, "key is strict (t=s) but i= is a subdomain of d=");
        }
}
END_TEST

START_TEST(test_refusals)
{
        static const char sha1[] = "DKIM-Signature: v=1; a=rsa-sha1; d=example.com; s=rsa; h=from; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\nFrom: a@example.com\r\n\r\nx\r\n";
        static const char bad[] = "DKIM-Signature: v=1; a=rsa-sha256; d=legitimate.com(.attacker.com; s=rsa; h=from; bh=AAAA; b=AAAA\r\nFrom: a@example.com\r\n\r\nx\r\n";
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 512);
        _cleanup_free_ char *out = NULL;
        DkimSigner s = DKIM_SIGNER_INIT;
        const char *reason = NULL;
        unsigned lookups = 0;

        ck_assert_int_eq(verify1(sha1, NULL, &reason), DKIM_RESULT_PERMERROR);
        ck_assert_str_eq(reason, "rsa-sha1 is not accepted (RFC 8301)");

        ck_assert_int_eq(dkim_verify(bad, strlen(bad), NULL, get_key, &lookups, &res), 0);
        ck_assert_int_eq(res.results[0].result, DKIM_RESULT_PERMERROR);
        ck_assert_uint_eq(lookups, 0);

        /* the signer refuses short RSA keys, a message without From, a bad domain */
        s.key = small, s.domain = "example.com", s.selector = "x";
        ck_assert_int_eq(dkim_sign(message, strlen(message), &s, 1, &out), -EINVAL);
        s.key = ed_key;
        ck_assert_int_eq(dkim_sign("To: x\r\n\r\nbody\r\n", 15, &s, 1, &out), -EBADMSG);
        s.domain = "exa mple.com";
        ck_assert_int_eq(dkim_sign(message, strlen(message), &s, 1, &out), -EINVAL);
}
END_TEST

START_TEST(test_oversign_list)
{
        _cleanup_free_ char *m = sign_with(message, ed_key, "ed", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 0, NULL);

        char *u = m, *w = m;

        /* unfold, then: From present once is listed twice; Cc absent, once */
        for (; *u; u++)
                if (!(u[0] == '\r' && u[1] == '\n' && u[2] == ' ') && !(u[0] == '\n' && u[1] == ' ' && u > m && u[-1] == '\r') &&
                    !(u[0] == ' ' && u > m && u[-1] == '\n'))
                        *w++ = *u;
        *w = 0;
        ck_assert_ptr_nonnull(strstr(m, "h=From:From:Reply-To:Subject:Subject:Date:Date:To:To:Cc:"));
}
END_TEST

static Suite* dkim_verify_suite(void) {
        Suite *s = suite_create("dkim-verify");
        TCase *tc = tcase_create("sign and verify");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_round_trips);
        tcase_add_test(tc, test_two_signers);
        tcase_add_test(tc, test_tampering);
        tcase_add_test(tc, test_time);
        tcase_add_test(tc, test_length);
        tcase_add_test(tc, test_key_problems);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_oversign_list);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dkim_verify_suite);
