/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "arc.h"
#include "check-main.h"
#include "cleanup.h"
#include "dkim-canon.h"
#include "string-util.h"

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
                if (EVP_PKEY_get_raw_public_key(k, raw, &rl) != 1 || dkim_base64_encode(raw, rl, &b64) < 0)
                        abort();
        } else {
                n = i2d_PUBKEY(k, &der);
                if (n <= 0 || dkim_base64_encode(der, (size_t) n, &b64) < 0)
                        abort();
        }
        if (asprintf_safe(&rec, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64) < 0)
                abort();
        return rec;
}

static int get_key(const char *selector, const char *domain, char **ret, void *userdata) {
        if (!streq(domain, "example.org") && !streq(domain, "relay.example"))
                return -ENXIO;
        if (streq(selector, "rsa"))
                *ret = strdup(rsa_record);
        else if (streq(selector, "ed"))
                *ret = strdup(ed_record);
        else
                return -ENXIO;
        return *ret ? 0 : -ENOMEM;
}

static const char base_msg[] =
        "From: Alice <alice@example.com>\r\n"
        "To: list@example.org\r\n"
        "Subject: hello\r\n"
        "Date: Thu, 14 Jan 2015 15:00:01 -0800\r\n"
        "Message-ID: <1@example.com>\r\n"
        "\r\n"
        "Hello world.\r\n";

/* Seal msg once more and return the new message (new fields on top). */
static char* seal_once(const char *msg, bool ed, ArcChainStatus chain, const char *domain) {
        ArcSealer s = ARC_SEALER_INIT;
        _cleanup_free_ char *set = NULL;
        char *out = NULL;

        s.key = ed ? ed_key : rsa_key;
        s.selector = ed ? "ed" : "rsa";
        s.domain = domain;
        s.timestamp = 1700000000;
        ck_assert_int_eq(arc_seal(msg, strlen(msg), chain, "relay.example; spf=pass smtp.mailfrom=example.com", &s, &set), 0);
        ck_assert_ptr_nonnull(set);
        ck_assert_int_gt(asprintf_safe(&out, "%s%s", set, msg), 0);
        return out;
}

static void round_trip(bool ed) {
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL;
        ArcVerifyResult res;

        ck_assert_int_eq(arc_verify(base_msg, strlen(base_msg), get_key, NULL, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_NONE);

        m1 = seal_once(base_msg, ed, ARC_CHAIN_NONE, "example.org");
        ck_assert_int_eq(arc_verify(m1, strlen(m1), get_key, NULL, &res), 0);
        ck_assert_msg(res.status == ARC_CHAIN_PASS, "1 hop: %s", strna(res.reason));
        ck_assert_uint_eq(res.n_sets, 1);
        ck_assert_ptr_nonnull(strstr(m1, "cv=none"));

        m2 = seal_once(m1, !ed, ARC_CHAIN_PASS, "relay.example");
        ck_assert_int_eq(arc_verify(m2, strlen(m2), get_key, NULL, &res), 0);
        ck_assert_msg(res.status == ARC_CHAIN_PASS, "2 hops: %s", strna(res.reason));
        ck_assert_uint_eq(res.n_sets, 2);
        ck_assert_uint_eq(res.oldest_pass, 0);

        m3 = seal_once(m2, ed, ARC_CHAIN_PASS, "example.org");
        ck_assert_int_eq(arc_verify(m3, strlen(m3), get_key, NULL, &res), 0);
        ck_assert_msg(res.status == ARC_CHAIN_PASS, "3 hops: %s", strna(res.reason));
        ck_assert_uint_eq(res.n_sets, 3);
}

START_TEST(test_round_trip_rsa)
{
        round_trip(false);
}
END_TEST

START_TEST(test_round_trip_ed25519)
{
        round_trip(true);
}
END_TEST

START_TEST(test_tamper)
{
        _cleanup_free_ char *m1 = NULL, *m2 = NULL;
        ArcVerifyResult res;
        char *p;

        m1 = seal_once(base_msg, false, ARC_CHAIN_NONE, "example.org");
        m2 = seal_once(m1, true, ARC_CHAIN_PASS, "relay.example");

        /* body changed after the last hop: the newest AMS fails */
        p = strstr(m2, "Hello world.");
        ck_assert_ptr_nonnull(p);
        p[0] = 'J';
        ck_assert_int_eq(arc_verify(m2, strlen(m2), get_key, NULL, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_FAIL);
        ck_assert_uint_eq(res.failed_instance, 2);
        p[0] = 'H';
        ck_assert_int_eq(arc_verify(m2, strlen(m2), get_key, NULL, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_PASS);

        /* the first hop's AAR changed: the seals fail */
        p = strstr(m2, "i=1; relay.example; spf=pass");
        ck_assert_ptr_nonnull(p);
        memcpy(strstr(p, "pass"), "fail", 4);
        ck_assert_int_eq(arc_verify(m2, strlen(m2), get_key, NULL, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_FAIL);

        /* a subject change after hop 1 but before hop 2 keeps the chain, moves oldest-pass */
        {
                _cleanup_free_ char *a = NULL, *b = NULL;
                char *s;

                a = seal_once(base_msg, false, ARC_CHAIN_NONE, "example.org");
                s = strstr(a, "Subject: hello");
                ck_assert_ptr_nonnull(s);
                s[9] = 'j';
                b = seal_once(a, false, ARC_CHAIN_PASS, "example.org");
                ck_assert_int_eq(arc_verify(b, strlen(b), get_key, NULL, &res), 0);
                ck_assert_int_eq(res.status, ARC_CHAIN_PASS);
                ck_assert_uint_eq(res.oldest_pass, 2);
        }
}
END_TEST

START_TEST(test_seal_refusals)
{
        _cleanup_free_ char *m1 = NULL, *failed = NULL, *set = NULL;
        ArcSealer s = ARC_SEALER_INIT;
        ArcVerifyResult res;

        s.key = rsa_key;
        s.selector = "rsa";
        s.domain = "example.org";

        /* pass without a chain, none with one */
        ck_assert_int_eq(arc_seal(base_msg, strlen(base_msg), ARC_CHAIN_PASS, "a.example; spf=pass", &s, &set), -EINVAL);
        m1 = seal_once(base_msg, false, ARC_CHAIN_NONE, "example.org");
        ck_assert_int_eq(arc_seal(m1, strlen(m1), ARC_CHAIN_NONE, "a.example; spf=pass", &s, &set), -EINVAL);
        /* a bare line break in the payload */
        ck_assert_int_eq(arc_seal(m1, strlen(m1), ARC_CHAIN_PASS, "a.example;\r\nspf=pass", &s, &set), -EINVAL);

        /* sealing a failed chain: cv=fail, covering only the new set, verified as fail */
        failed = seal_once(m1, false, ARC_CHAIN_FAIL, "example.org");
        ck_assert_ptr_nonnull(strstr(failed, "cv=fail"));
        ck_assert_int_eq(arc_verify(failed, strlen(failed), get_key, NULL, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_FAIL);
        /* and nothing more is added after a cv=fail seal */
        ck_assert_int_eq(arc_seal(failed, strlen(failed), ARC_CHAIN_FAIL, "a.example; spf=pass", &s, &set), 0);
        ck_assert_ptr_null(set);
}
END_TEST

#define AS(i, cv) "ARC-Seal: i=" #i "; a=rsa-sha256; b=dGVzdA==; cv=" cv "; d=example.org; s=s\r\n"
#define AMS(i) "ARC-Message-Signature: i=" #i "; a=rsa-sha256; b=dGVzdA==; " \
        "bh=KWSe46TZKCcDbH4klJPo+tjk5LWJnVRlP5pvjXFZYLQ=; d=example.org; h=from; s=s\r\n"
#define AAR(i) "ARC-Authentication-Results: i=" #i "; example.org; spf=pass\r\n"
#define SET(i, cv) AS(i, cv) AMS(i) AAR(i)
#define TAIL "From: a@example.com\r\n\r\nbody\r\n"

static const struct {
        const char *name;
        const char *msg;
        ArcChainStatus status;
} structure_cases[] = {
        { "no ARC set", TAIL, ARC_CHAIN_NONE },
        { "one set", SET(1, "none") TAIL, ARC_CHAIN_PASS },
        { "two sets", SET(2, "pass") SET(1, "none") TAIL, ARC_CHAIN_PASS },
        { "missing AS", AMS(1) AAR(1) TAIL, ARC_CHAIN_FAIL },
        { "missing AMS", AS(1, "none") AAR(1) TAIL, ARC_CHAIN_FAIL },
        { "missing AAR", AS(1, "none") AMS(1) TAIL, ARC_CHAIN_FAIL },
        { "gap", SET(3, "pass") SET(1, "none") TAIL, ARC_CHAIN_FAIL },
        { "duplicate AMS", SET(1, "none") AMS(1) TAIL, ARC_CHAIN_FAIL },
        { "duplicate AS", SET(1, "none") AS(1, "none") TAIL, ARC_CHAIN_FAIL },
        { "cv=pass at i=1", SET(1, "pass") TAIL, ARC_CHAIN_FAIL },
        { "cv=none at i=2", SET(2, "none") SET(1, "none") TAIL, ARC_CHAIN_FAIL },
        { "newest cv=fail", SET(2, "fail") SET(1, "none") TAIL, ARC_CHAIN_FAIL },
        { "instance 51", SET(51, "pass") TAIL, ARC_CHAIN_FAIL },
        { "instance 0", SET(0, "none") TAIL, ARC_CHAIN_FAIL },
        { "AS with h=", "ARC-Seal: i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s; h=from\r\n"
                        AMS(1) AAR(1) TAIL, ARC_CHAIN_FAIL },
        { "AAR without ';' after i=", "ARC-Authentication-Results: i=1 example.org; spf=pass\r\n"
                                      AS(1, "none") AMS(1) TAIL, ARC_CHAIN_FAIL },
        { "cv in upper case", SET(1, "None") TAIL, ARC_CHAIN_FAIL },
};

START_TEST(test_structure)
{
        for (size_t i = 0; i < ELEMENTSOF(structure_cases); i++) {
                ArcVerifyResult res;

                ck_assert_int_eq(arc_verify_structure(structure_cases[i].msg, strlen(structure_cases[i].msg), &res), 0);
                ck_assert_msg(res.status == structure_cases[i].status, "%s: got %s (%s)", structure_cases[i].name,
                              arc_chain_status_to_string(res.status), strna(res.reason));
        }
}
END_TEST

START_TEST(test_more_than_50)
{
        _cleanup_free_ char *msg = NULL;
        ArcVerifyResult res;
        size_t len = 0, alloc = 64 * 1024;

        /* 51 complete sets: more fields than 50 sets may hold */
        msg = malloc(alloc);
        ck_assert_ptr_nonnull(msg);
        for (unsigned i = 1; i <= 51; i++)
                len += (size_t) snprintf(msg + len, alloc - len,
                                         "ARC-Seal: i=%u; a=rsa-sha256; b=dGVzdA==; cv=%s; d=example.org; s=s\r\n"
                                         "ARC-Message-Signature: i=%u; a=rsa-sha256; b=dGVzdA==; "
                                         "bh=KWSe46TZKCcDbH4klJPo+tjk5LWJnVRlP5pvjXFZYLQ=; d=example.org; h=from; s=s\r\n"
                                         "ARC-Authentication-Results: i=%u; example.org; spf=pass\r\n",
                                         i > 50 ? 50 : i, i == 1 ? "none" : "pass", i > 50 ? 50 : i, i > 50 ? 50 : i);
        len += (size_t) snprintf(msg + len, alloc - len, TAIL);
        ck_assert_int_eq(arc_verify_structure(msg, len, &res), 0);
        ck_assert_int_eq(res.status, ARC_CHAIN_FAIL);
}
END_TEST

static const struct {
        const char *value;
        bool ok;
} seal_cases[] = {
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s; t=1", true },
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s; x=unknown;", true },
        { " i=1; a=RSA-SHA256; b=dGVzdA==; cv=none; d=example.org; s=s", false },
        { " i=1; a=rsa-sha1; b=dGVzdA==; cv=none; d=example.org; s=s", false },
        { " i=1; i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s", false },
        { " i=1; a=rsa-sha256; b=; cv=none; d=example.org; s=s", false },
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=maybe; d=example.org; s=s", false },
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s;; t=1", false },
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s; t=1 2", false },
        { " a=rsa-sha256; b=dGVzdA==; cv=none; d=example.org; s=s", false },
        { " i=1; a=rsa-sha256; b=dGVzdA==; cv=none; d=exa mple.org; s=s", false },
};

START_TEST(test_seal_parse)
{
        for (size_t i = 0; i < ELEMENTSOF(seal_cases); i++) {
                _cleanup_(arc_seal_freep) ArcSeal *s = NULL;
                const char *reason = NULL;
                int r;

                r = arc_seal_parse(seal_cases[i].value, strlen(seal_cases[i].value), &s, &reason);
                ck_assert_msg((r == 0) == seal_cases[i].ok, "'%s': %d (%s)", seal_cases[i].value, r, strna(reason));
                if (r < 0)
                        ck_assert_ptr_nonnull(reason);
        }
}
END_TEST

static Suite* arc_suite(void) {
        Suite *s = suite_create("arc");
        TCase *tc;

        rsa_key = EVP_RSA_gen(1024);
        ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!rsa_key || !ed_key)
                abort();
        rsa_record = record_for(rsa_key, false);
        ed_record = record_for(ed_key, true);

        tc = tcase_create("round trip");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_round_trip_rsa);
        tcase_add_test(tc, test_round_trip_ed25519);
        suite_add_tcase(s, tc);

        tc = tcase_create("tampering");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_tamper);
        suite_add_tcase(s, tc);

        tc = tcase_create("sealing rules");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_seal_refusals);
        suite_add_tcase(s, tc);

        tc = tcase_create("structure");
        tcase_add_test(tc, test_structure);
        tcase_add_test(tc, test_more_than_50);
        suite_add_tcase(s, tc);

        tc = tcase_create("ARC-Seal parser");
        tcase_add_test(tc, test_seal_parse);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(arc_suite);
