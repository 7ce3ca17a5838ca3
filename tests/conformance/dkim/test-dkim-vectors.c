/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Conformance runner for DKIM (RFC 6376, RFC 8301, RFC 8463), over three published sets
 * copied unchanged into this directory (see each PROVENANCE.md):
 *
 *   dkim-rfc8463/         the RFC 8463 Appendix A message: both signatures verify, and
 *                         signing the unsigned message with the A.1 keys reproduces both
 *                         b= values byte for byte (Ed25519 and RSASSA-PKCS1-v1_5 are
 *                         deterministic);
 *   dkim-dkimpy/          dkimpy 1.1.4's fixed signatures, its key records (good and bad)
 *                         and its keys for sign-then-verify round trips;
 *   stalwart-mail-auth/   mail-auth's DKIM set (real messages), verified at the fixed time
 *                         the set was made for.
 *
 * Usage: test-dkim-vectors DIR [rfc8463|dkimpy|stalwart]... Prints each failure and
 * "N passed, N failed" per set; exits 1 when any case failed. */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cleanup.h"
#include "dkim-canon.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "dkim-signature.h"
#include "dkim-verify.h"
#include "string-util.h"

static const char *arg_dir;
static unsigned n_passed, n_failed;

static void check(bool ok, const char *fmt, ...) _printf_(2, 3);
static void check(bool ok, const char *fmt, ...) {
        va_list ap;

        if (ok) {
                n_passed++;
                return;
        }
        n_failed++;
        fputs("FAIL: ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
}

static char* read_file(const char *rel, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *path = NULL;
        char *buf = NULL;
        size_t alloc = 0, len = 0;

        if (asprintf_safe(&path, "%s/%s", arg_dir, rel) < 0)
                abort();
        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                exit(EXIT_FAILURE);
        }
        for (;;) {
                size_t k;

                if (len + 4096 + 1 > alloc) {
                        alloc = (len + 4096 + 1) * 2;
                        buf = realloc(buf, alloc);
                        if (!buf)
                                abort();
                }
                k = fread(buf + len, 1, 4096, f);
                len += k;
                if (k == 0)
                        break;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        return buf;
}

/* Every bare LF becomes CRLF (the sets store messages with LF line ends). */
static char* crlf(const char *s, size_t len, size_t *ret_len) {
        char *out = malloc(len * 2 + 1), *o = out;

        if (!out)
                abort();
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
                        *o++ = '\r';
                *o++ = s[i];
        }
        *o = 0;
        *ret_len = (size_t) (o - out);
        return out;
}

static char* strip(char *s) {
        size_t n = strlen(s);

        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        return s;
}

/* The fake DNS: owner name -> TXT text. */
typedef struct Zone {
        char *names[32];
        char *txt[32];
        size_t n;
        unsigned lookups;
} Zone;

static void zone_add(Zone *z, const char *name, const char *txt) {
        if (z->n >= ELEMENTSOF(z->names))
                abort();
        z->names[z->n] = strdup(name);
        z->txt[z->n] = strdup(txt);
        if (!z->names[z->n] || !z->txt[z->n])
                abort();
        z->n++;
}

static void zone_done(Zone *z) {
        for (size_t i = 0; i < z->n; i++) {
                free(z->names[i]);
                free(z->txt[i]);
        }
        z->n = 0;
}

static int zone_get_key(const char *selector, const char *domain, char **ret_txt, void *userdata) {
        Zone *z = userdata;
        _cleanup_free_ char *name = NULL;

        z->lookups++;
        if (asprintf_safe(&name, "%s._domainkey.%s", selector, domain) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < z->n; i++)
                if (strcasecmp(z->names[i], name) == 0) {
                        *ret_txt = strdup(z->txt[i]);
                        return *ret_txt ? 0 : -ENOMEM;
                }
        return -ENXIO;
}

static int verify(const char *msg, size_t len, Zone *z, uint64_t now, DkimVerifyResults *ret) {
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;

        o.now = now;
        return dkim_verify(msg, len, &o, zone_get_key, z, ret);
}

static void expect_all_pass(const char *what, const char *msg, size_t len, Zone *z, uint64_t now, size_t n_expected) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        int r;

        r = verify(msg, len, z, now, &res);
        check(r >= 0, "%s: dkim_verify() returned %s", what, strerror(-r));
        if (r < 0)
                return;
        check(res.n_results == n_expected, "%s: %zu signatures found, expected %zu", what, res.n_results, n_expected);
        for (size_t i = 0; i < res.n_results; i++)
                check(res.results[i].result == DKIM_RESULT_PASS, "%s: signature %zu (d=%s s=%s): %s (%s)",
                      what, i + 1, strna(res.results[i].domain), strna(res.results[i].selector),
                      dkim_result_to_string(res.results[i].result), strna(res.results[i].reason));
}

static EVP_PKEY* load_pem_key(const char *rel) {
        _cleanup_free_ char *pem = read_file(rel, NULL);
        BIO *bio = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k;

        if (!bio)
                abort();
        k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!k) {
                fprintf(stderr, "cannot load key %s\n", rel);
                exit(EXIT_FAILURE);
        }
        return k;
}

static EVP_PKEY* load_ed25519_seed(const char *rel) {
        _cleanup_free_ char *b64 = read_file(rel, NULL);
        _cleanup_free_ uint8_t *seed = NULL;
        size_t n;
        EVP_PKEY *k;

        if (dkim_base64_decode(b64, strlen(strip(b64)), &seed, &n) < 0 || n != 32)
                abort();
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, n);
        if (!k)
                abort();
        return k;
}

/* ---- RFC 8463 ---- */

/* dns.json: {"name": {"TXT": [["s1", "s2", ...]]}, ...}. Only what this file uses: for
 * every name, the character-strings of its first record concatenated. */
static void load_dns_json(Zone *z, const char *rel) {
        _cleanup_free_ char *j = read_file(rel, NULL);
        const char *p = j;

        for (;;) {
                const char *q, *e, *end;
                _cleanup_free_ char *name = NULL;
                char txt[4096] = "";

                q = strchr(p, '"');
                if (!q)
                        break;
                e = strchr(q + 1, '"');
                if (!e)
                        abort();
                name = strndup(q + 1, (size_t) (e - q - 1));
                q = strstr(e, "\"TXT\"");
                if (!q)
                        break;
                q = strchr(q, '[') + 1;
                q = strchr(q, '[') + 1;
                end = strchr(q, ']');
                while ((q = strchr(q, '"')) && q < end) {
                        e = strchr(q + 1, '"');
                        strncat(txt, q + 1, (size_t) (e - q - 1));
                        q = e + 1;
                }
                zone_add(z, name, txt);
                p = strchr(end, '}');
                if (!p)
                        break;
                p++;
        }
}

/* The message without its DKIM-Signature fields, and those fields' raw text. */
static char* unsign(const char *msg, size_t len, size_t *ret_len, char **sigs, size_t *n_sigs) {
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n, body;
        DkimBuffer out = DKIM_BUFFER_NULL;

        if (dkim_header_fields(msg, len, &fields, &n, &body) < 0)
                abort();
        *n_sigs = 0;
        for (size_t i = 0; i < n; i++) {
                if (rfc5322_field_is(fields + i, "DKIM-Signature")) {
                        sigs[(*n_sigs)++] = strndup(msg + fields[i].raw_offset, fields[i].raw_len);
                        continue;
                }
                if (dkim_buffer_append(&out, msg + fields[i].raw_offset, fields[i].raw_len) < 0)
                        abort();
        }
        if (dkim_buffer_append(&out, "\r\n", 2) < 0 || dkim_buffer_append(&out, msg + body, len - body) < 0)
                abort();
        *ret_len = out.len;
        return out.data;
}

/* Re-create one published signature: same tags, our body hash and our b=. */
static void resign(const char *what, const char *unsigned_msg, size_t len, const char *field, EVP_PKEY *key) {
        _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;
        _cleanup_free_ char *blank = NULL, *b64 = NULL, *expected = NULL;
        const char *colon = strchr(field, ':'), *reason = NULL;
        size_t vlen, voff;
        uint8_t bh[32];
        int r;

        voff = (size_t) (colon + 1 - field);
        vlen = strlen(field) - voff;
        while (vlen > 0 && IN_SET(field[voff + vlen - 1], '\r', '\n'))
                vlen--;
        r = dkim_signature_parse(field + voff, vlen, &sig, &reason);
        check(r >= 0, "%s: signature does not parse: %s", what, strna(reason));
        if (r < 0)
                return;

        r = dkim_sign_body_hash(unsigned_msg, len, sig->body_canon, sig->has_length ? sig->length : UINT64_MAX, bh);
        check(r >= 0 && memcmp(bh, sig->body_hash, 32) == 0, "%s: body hash differs", what);

        if (asprintf_safe(&blank, "%.*s%.*s", (int) (voff + sig->b_region_start), field,
                          (int) (vlen - sig->b_region_end), field + voff + sig->b_region_end) < 0)
                abort();
        r = dkim_sign_header(unsigned_msg, len, key, sig->algorithm, sig->header_canon,
                             sig->headers, sig->n_headers, blank, strlen(blank), &b64);
        check(r >= 0, "%s: signing failed: %s", what, strerror(-r));
        if (r < 0)
                return;
        r = dkim_base64_encode(sig->signature, sig->signature_len, &expected);
        if (r < 0)
                abort();
        check(streq(b64, expected), "%s: b= differs:\n  ours   %s\n  theirs %s", what, b64, expected);
}

static void run_rfc8463(void) {
        _cleanup_free_ char *raw = NULL, *msg = NULL, *unsigned_msg = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = NULL, *rsa = NULL;
        char *sigs[4] = {};
        size_t raw_len, len, ulen, n_sigs;
        Zone z = {};

        load_dns_json(&z, "dkim-rfc8463/dns.json");
        raw = read_file("dkim-rfc8463/signed.eml", &raw_len);
        msg = crlf(raw, raw_len, &len);

        expect_all_pass("rfc8463 verify", msg, len, &z, 1528637909, 2);

        unsigned_msg = unsign(msg, len, &ulen, sigs, &n_sigs);
        check(n_sigs == 2, "rfc8463: expected 2 signature fields, found %zu", n_sigs);
        ec = load_ed25519_seed("dkim-rfc8463/private-ec.key");
        rsa = load_pem_key("dkim-rfc8463/private-rsa.key");
        if (n_sigs == 2) {
                resign("rfc8463 sign ed25519", unsigned_msg, ulen, sigs[0], ec);
                resign("rfc8463 sign rsa", unsigned_msg, ulen, sigs[1], rsa);
        }
        for (size_t i = 0; i < n_sigs; i++)
                free(sigs[i]);
        zone_done(&z);
}

/* ---- dkimpy ---- */

/* test2.message's Gmail key; dkimpy writes it inside its test code (see PROVENANCE.md). */
#define GMAIL_20120113 \
        "k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1Kd87/UeJjenpabgbFwh+eBCsSTrqmwIYYvywlbhbqoo2DymndFkbjOVIPIldNs/m40KF+yzMn1skyoxcTUGCQs8g3FgD2Ap3ZB5DekAo5wMmk4wimDO+U8QzI3SD07y2+07wlNWwIt8svnxgdxGkVbbhzY8i+RQ9DpSVpPbF7ykQxtKXkv/ahW3KjViiAH+ghvvIhkx4xYSIc9oSwVmAl5OctMEeWUwg8Istjqz8BZeTWbf41fbNhte7Y+YqZOwq1Sd0DbvYAD9NOZK9vlfuac0598HY+vtSBczUiKERHv1yRbcaQtZFh5wtiRrN04BLUTD21MycBX5jYchHjPY/wIDAQAB"

static void dkimpy_verify(const char *file, const char *name, const char *txt_file, const char *txt, size_t n_sigs) {
        _cleanup_free_ char *raw = NULL, *msg = NULL, *rec = NULL;
        size_t raw_len, len;
        Zone z = {};

        if (txt_file) {
                rec = read_file(txt_file, NULL);
                txt = strip(rec);
        }
        zone_add(&z, name, txt);
        raw = read_file(file, &raw_len);
        msg = crlf(raw, raw_len, &len);
        expect_all_pass(file, msg, len, &z, 0, n_sigs);
        zone_done(&z);
}

static void dkimpy_corrupt_key(void) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_free_ char *raw = NULL, *msg = NULL, *rec = NULL;
        size_t raw_len, len;
        char *p;
        Zone z = {};
        int r;

        /* One character missing from the base64 of p=: never a pass (dkimpy says fail; we
         * say permerror because the key record itself is unusable). */
        rec = strip(read_file("dkim-dkimpy/test.txt", NULL));
        p = strstr(rec, "p=") + 10;
        memmove(p, p + 1, strlen(p));
        zone_add(&z, "test._domainkey.football.example.com", rec);
        raw = read_file("dkim-dkimpy/rfc6376.signed.rsa.msg", &raw_len);
        msg = crlf(raw, raw_len, &len);
        r = verify(msg, len, &z, 0, &res);
        check(r >= 0 && res.n_results == 1 && IN_SET(res.results[0].result, DKIM_RESULT_FAIL, DKIM_RESULT_PERMERROR),
              "dkimpy corrupted RSA key: expected fail or permerror");
        zone_done(&z);
}

static void dkimpy_baddomain(void) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_free_ char *raw = NULL, *msg = NULL;
        size_t raw_len, len;
        Zone z = {};
        int r;

        raw = read_file("dkim-dkimpy/test.message.baddomain", &raw_len);
        msg = crlf(raw, raw_len, &len);
        r = verify(msg, len, &z, 0, &res);
        check(r >= 0 && res.n_results == 1 && res.results[0].result == DKIM_RESULT_PERMERROR,
              "test.message.baddomain: expected permerror");
        check(z.lookups == 0, "test.message.baddomain: the bad domain was looked up");
}

static void dkimpy_key(const char *file, bool valid, bool email) {
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        _cleanup_free_ char *rec = strip(read_file(file, NULL));
        const char *reason = NULL;
        int r;

        r = dkim_key_parse(rec, strlen(rec), &key, &reason);
        if (!valid) {
                check(r == -EBADMSG, "%s: key record accepted, expected refusal", file);
                return;
        }
        check(r >= 0, "%s: key record refused: %s", file, strna(reason));
        if (r >= 0)
                check(key->email_allowed == email, "%s: email service flag %s", file, key->email_allowed ? "yes" : "no");
}

static void dkimpy_roundtrip(const char *msg_file, const char *key_file, bool pem, const char *record_file,
                             DkimCanon hc, DkimCanon bc) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_free_ char *raw = NULL, *msg = NULL, *rec = NULL, *sig = NULL, *signed_msg = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        DkimSigner s = DKIM_SIGNER_INIT;
        size_t raw_len, len;
        Zone z = {};
        int r;

        key = pem ? load_pem_key(key_file) : load_ed25519_seed(key_file);
        raw = read_file(msg_file, &raw_len);
        msg = crlf(raw, raw_len, &len);
        rec = strip(read_file(record_file, NULL));
        zone_add(&z, "test._domainkey.example.com", rec);

        s.key = key;
        s.domain = "example.com";
        s.selector = "test";
        s.header_canon = hc;
        s.body_canon = bc;
        s.timestamp = 1700000000;
        s.expire_after = 86400;
        r = dkim_sign(msg, len, &s, 1, &sig);
        check(r >= 0, "round trip %s with %s: signing failed: %s", msg_file, key_file, strerror(-r));
        if (r >= 0) {
                if (asprintf_safe(&signed_msg, "%s%s", sig, msg) < 0)
                        abort();
                r = verify(signed_msg, strlen(signed_msg), &z, 1700000100, &res);
                check(r >= 0 && res.n_results == 1 && res.results[0].result == DKIM_RESULT_PASS,
                      "round trip %s with %s (%s/%s): %s (%s)", msg_file, key_file,
                      dkim_canon_to_string(hc), dkim_canon_to_string(bc),
                      r >= 0 && res.n_results > 0 ? dkim_result_to_string(res.results[0].result) : "error",
                      r >= 0 && res.n_results > 0 ? strna(res.results[0].reason) : "");
        }
        zone_done(&z);
}

static void run_dkimpy(void) {
        static const char *messages[] = {
                "dkim-dkimpy/test.message", "dkim-dkimpy/ed25519test.msg", "dkim-dkimpy/rfc6376.msg",
                "dkim-dkimpy/rfc6376.w1258.msg", "dkim-dkimpy/test_extra.message",
        };
        _cleanup_free_ char *raw = NULL, *msg = NULL, *out = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        DkimSigner s = DKIM_SIGNER_INIT;
        size_t raw_len, len;

        /* Fixed verification vectors. */
        dkimpy_verify("dkim-dkimpy/ed25519test2.msg", "sed._domainkey.test.ex", "dkim-dkimpy/eximtest.dns", NULL, 1);
        {
                Zone z = {};
                _cleanup_free_ char *rec = strip(read_file("dkim-dkimpy/test.txt", NULL));
                _cleanup_free_ char *r2 = NULL, *m2 = NULL;
                size_t l2, ml;

                zone_add(&z, "brisbane._domainkey.football.example.com",
                         "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
                zone_add(&z, "test._domainkey.football.example.com", rec);
                r2 = read_file("dkim-dkimpy/rfc6376.signed.msg", &l2);
                m2 = crlf(r2, l2, &ml);
                expect_all_pass("dkim-dkimpy/rfc6376.signed.msg", m2, ml, &z, 0, 2);
                zone_done(&z);
        }
        dkimpy_verify("dkim-dkimpy/rfc6376.signed.rsa.msg", "test._domainkey.football.example.com",
                      "dkim-dkimpy/test.txt", NULL, 1);
        dkimpy_verify("dkim-dkimpy/test2.message", "20120113._domainkey.gmail.com", NULL, GMAIL_20120113, 1);
        dkimpy_corrupt_key();
        dkimpy_baddomain();

        /* Key records. */
        dkimpy_key("dkim-dkimpy/test.txt", true, true);
        dkimpy_key("dkim-dkimpy/test2.txt", true, true);
        dkimpy_key("dkim-dkimpy/badversion.txt", false, false);
        dkimpy_key("dkim-dkimpy/badk.txt", false, false);
        dkimpy_key("dkim-dkimpy/test_bad.txt", false, false);
        dkimpy_key("dkim-dkimpy/test_tlsrpt.txt", true, false);
        dkimpy_key("dkim-dkimpy/ed25519test.dns", true, true);
        dkimpy_key("dkim-dkimpy/eximtest.dns", true, true);
        dkimpy_key("dkim-dkimpy/1024_testkey_wo_markers.pub.txt", true, true);
        dkimpy_key("dkim-dkimpy/2048_testkey_wo_markers.pub.txt", true, true);
        dkimpy_key("dkim-dkimpy/2048_testkey_PKCS8.key.pub.txt", true, true);
        /* PKCS#1 RSAPublicKey in p=: accepted, like dkimpy (see dkim-key.c). */
        dkimpy_key("dkim-dkimpy/1024_testkey_wo_markers.pub.rsa.txt", true, true);
        dkimpy_key("dkim-dkimpy/2048_testkey_wo_markers.pub.rsa.txt", true, true);

        /* Round trips with dkimpy's keys, every message, both canonicalizations. */
        for (size_t i = 0; i < ELEMENTSOF(messages); i++)
                for (DkimCanon c = 0; c < _DKIM_CANON_MAX; c++) {
                        dkimpy_roundtrip(messages[i], "dkim-dkimpy/test.private", true, "dkim-dkimpy/test.txt", c, c);
                        dkimpy_roundtrip(messages[i], "dkim-dkimpy/ed25519test.key", false, "dkim-dkimpy/ed25519test.dns", c, c);
                        dkimpy_roundtrip(messages[i], "dkim-dkimpy/2048_testkey_PKCS8.key", true,
                                         "dkim-dkimpy/2048_testkey_PKCS8.key.pub.txt", c, !c);
                        dkimpy_roundtrip(messages[i], "dkim-dkimpy/1024_testkey.key", true,
                                         "dkim-dkimpy/1024_testkey_wo_markers.pub.txt", !c, c);
                }

        /* No From: signing refuses. */
        key = load_pem_key("dkim-dkimpy/test.private");
        raw = read_file("dkim-dkimpy/test_nofrom.message", &raw_len);
        msg = crlf(raw, raw_len, &len);
        s.key = key;
        s.domain = "example.com";
        s.selector = "test";
        check(dkim_sign(msg, len, &s, 1, &out) == -EBADMSG, "test_nofrom.message: signing did not refuse");
}

/* ---- stalwart ---- */

static void run_stalwart(void) {
        static const char *files[] = { "001.txt", "002.txt", "003.txt", "004.txt", "005.txt", "006.txt" };
        static const size_t n_sigs[] = { 2, 1, 2, 1, 1, 1 };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *path = NULL, *raw = NULL, *msg = NULL;
                size_t raw_len, len, body;
                char *p, *sep;
                Zone z = {};

                if (asprintf_safe(&path, "stalwart-mail-auth/dkim/%s", files[i]) < 0)
                        abort();
                raw = read_file(path, &raw_len);
                sep = strstr(raw, "\n\n");
                if (!sep)
                        abort();
                *sep = 0;
                for (p = raw; p && *p;) {
                        char *nl = strchr(p, '\n'), *sp;

                        if (nl)
                                *nl = 0;
                        sp = strchr(p, ' ');
                        if (sp) {
                                *sp = 0;
                                zone_add(&z, p, strip(sp + 1));
                        }
                        p = nl ? nl + 1 : NULL;
                }
                body = (size_t) (sep + 2 - raw);
                msg = crlf(raw + body, raw_len - body, &len);
                expect_all_pass(path, msg, len, &z, 1667843664, n_sigs[i]);
                zone_done(&z);
        }
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *name;
                void (*run)(void);
        } sets[] = {
                { "rfc8463", run_rfc8463 },
                { "dkimpy", run_dkimpy },
                { "stalwart", run_stalwart },
        };
        unsigned total_failed = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s DIR [rfc8463|dkimpy|stalwart]...\n", argv[0]);
                return EXIT_FAILURE;
        }
        arg_dir = argv[1];

        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                bool wanted = argc == 2;

                for (int k = 2; k < argc; k++)
                        wanted = wanted || streq(argv[k], sets[i].name);
                if (!wanted)
                        continue;
                n_passed = n_failed = 0;
                sets[i].run();
                printf("%s: %u passed, %u failed\n", sets[i].name, n_passed, n_failed);
                total_failed += n_failed;
        }
        return total_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
