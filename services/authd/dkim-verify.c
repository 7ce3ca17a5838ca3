/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cleanup.h"
#include "dkim-canon.h"
#include "dkim-key.h"
#include "dkim-verify.h"
#include "string-util.h"

static const char* const result_table[_DKIM_RESULT_MAX] = {
        [DKIM_RESULT_PASS] = "pass",
        [DKIM_RESULT_FAIL] = "fail",
        [DKIM_RESULT_NEUTRAL] = "neutral",
        [DKIM_RESULT_POLICY] = "policy",
        [DKIM_RESULT_TEMPERROR] = "temperror",
        [DKIM_RESULT_PERMERROR] = "permerror",
};

const char* dkim_result_to_string(DkimResult r) {
        if (r < 0 || r >= _DKIM_RESULT_MAX)
                return NULL;
        return result_table[r];
}

void dkim_verify_results_done(DkimVerifyResults *r) {
        assert(r);

        for (size_t i = 0; i < r->n_results; i++) {
                free(r->results[i].domain);
                free(r->results[i].selector);
                free(r->results[i].identity);
        }
        free(r->results);
        *r = (DkimVerifyResults) DKIM_VERIFY_RESULTS_NULL;
}

/* Check the header signature. Returns 1 when it verifies, 0 when it does not, negative
 * errno when the check could not be carried out. */
int dkim_verify_signature_data(DkimAlgorithm a, EVP_PKEY *pkey, const DkimBuffer *data,
                               const uint8_t *sig, size_t sig_len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        uint8_t digest[32];
        int k;

        if (EVP_Digest(data->data, data->len, digest, NULL, dkim_sha256(), NULL) != 1)
                return dkim_openssl_error(-EIO, "EVP_Digest(SHA-256)");
        if (a != DKIM_ALGORITHM_ED25519_SHA256)
                return dkim_rsa_verify_digest(pkey, digest, sig, sig_len);

        /* RFC 8463 §3: Ed25519 (pure) over the SHA-256 of the header data. */
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestVerifyInit(Ed25519)");
        k = EVP_DigestVerify(ctx, sig, sig_len, digest, sizeof(digest));
        if (k == 1)
                return 1;
        /* 0 is a bad signature, a negative value a malformed one: both a failed check. */
        (void) dkim_openssl_error(0, "EVP_DigestVerify");
        return 0;
}

static int body_hash(const char *body, size_t len, DkimCanon c, uint64_t limit,
                     uint8_t ret_hash[static 32], uint64_t *ret_total) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
        int r;

        r = dkim_body_hasher_new(c, limit, &h);
        if (r < 0)
                return r;
        r = dkim_body_hasher_feed(h, body, len);
        if (r < 0)
                return r;
        return dkim_body_hasher_finish(h, ret_hash, ret_total);
}

typedef struct VerifyContext {
        const char *msg;
        size_t len;
        const Rfc5322Field *fields;
        size_t n_fields;
        size_t body;
        const DkimVerifyOptions *opts;
        DkimGetKey get_key;
        void *userdata;
} VerifyContext;

/* Decide one signature. Returns 0 with res->result set, or a negative errno that aborts
 * the whole verification (only -ENOMEM and -EIO). */
static int verify_one(const VerifyContext *c, const Rfc5322Field *f, DkimVerifyResult *res) {
        _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        _cleanup_(dkim_buffer_done) DkimBuffer data = DKIM_BUFFER_NULL, blanked = DKIM_BUFFER_NULL;
        _cleanup_free_ char *txt = NULL;
        const char *reason = NULL;
        uint8_t bh[32];
        uint64_t total;
        size_t value_off;
        int r;

#define DECIDE(result_, reason_)                        \
        do {                                            \
                res->result = (result_);                \
                res->reason = (reason_);                \
                return 0;                               \
        } while (false)

        r = dkim_signature_parse(f->value, f->value_len, &sig, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                DECIDE(DKIM_RESULT_PERMERROR, reason);

        res->algorithm = sig->algorithm;
        res->domain = strdup(sig->domain);
        res->selector = strdup(sig->selector);
        res->identity = strdup(sig->identity);
        if (!res->domain || !res->selector || !res->identity)
                return -ENOMEM;
        res->b_prefix_len = MIN(sig->signature_len, sizeof(res->b_prefix));
        memcpy(res->b_prefix, sig->signature, res->b_prefix_len);

        if (sig->algorithm == DKIM_ALGORITHM_RSA_SHA1)
                DECIDE(DKIM_RESULT_PERMERROR, "rsa-sha1 is not accepted (RFC 8301)");

        if (c->opts->now > 0) {
                if (sig->has_expiration && sig->expiration < c->opts->now)
                        DECIDE(DKIM_RESULT_FAIL, "signature expired (x=)");
                if (c->opts->refuse_future_timestamp && sig->has_timestamp &&
                    sig->timestamp > c->opts->now + c->opts->clock_skew)
                        DECIDE(DKIM_RESULT_FAIL, "signature timestamp in the future (t=)");
        }

        r = c->get_key(sig->selector, sig->domain, &txt, c->userdata);
        if (r == -ENOMEM)
                return r;
        if (r == -ENXIO)
                DECIDE(DKIM_RESULT_PERMERROR, "no key record for this selector");
        if (r < 0)
                DECIDE(DKIM_RESULT_TEMPERROR, "key record lookup failed");

        r = dkim_key_parse(txt, strlen(txt), &key, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                DECIDE(DKIM_RESULT_PERMERROR, reason);

        res->testing = key->testing;
        res->key_bits = key->bits;

        if (key->revoked)
                DECIDE(DKIM_RESULT_PERMERROR, "key revoked (empty p=)");
        if ((key->type == DKIM_KEY_RSA) != (sig->algorithm == DKIM_ALGORITHM_RSA_SHA256))
                DECIDE(DKIM_RESULT_PERMERROR, "key type does not match a=");
        if (!key->sha256_allowed)
                DECIDE(DKIM_RESULT_PERMERROR, "key record h= does not allow sha256");
        if (!key->email_allowed)
                DECIDE(DKIM_RESULT_PERMERROR, "key record s= is not for email");
        if (key->strict && !streq(sig->identity_domain, sig->domain))
                DECIDE(DKIM_RESULT_PERMERROR, "key is strict (t=s) but i= is a subdomain of d=");

        r = body_hash(c->msg + c->body, c->len - c->body, sig->body_canon,
                      sig->has_length ? sig->length : UINT64_MAX, bh, &total);
        if (r < 0)
                return r;
        if (sig->has_length && sig->length > total)
                DECIDE(DKIM_RESULT_FAIL, "l= is longer than the body");
        if (CRYPTO_memcmp(bh, sig->body_hash, 32) != 0)
                DECIDE(DKIM_RESULT_FAIL, "body hash did not verify");

        /* The signature field with the b= value blanked (§3.7). */
        value_off = (size_t) (f->value - (c->msg + f->raw_offset));
        r = dkim_buffer_append(&blanked, c->msg + f->raw_offset, value_off + sig->b_region_start);
        if (r < 0)
                return r;
        r = dkim_buffer_append(&blanked, f->value + sig->b_region_end, f->value_len - sig->b_region_end);
        if (r < 0)
                return r;

        r = dkim_canon_signed_headers(sig->header_canon, c->msg, c->fields, c->n_fields,
                                      sig->headers, sig->n_headers, blanked.data, blanked.len, &data);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                DECIDE(DKIM_RESULT_PERMERROR, "signature field cannot be canonicalized");

        r = dkim_verify_signature_data(sig->algorithm, key->pkey, &data, sig->signature, sig->signature_len);
        if (r < 0)
                return r;
        if (r == 0)
                DECIDE(DKIM_RESULT_FAIL, "signature did not verify");

        if (sig->has_length && sig->length < total && !c->opts->allow_partial_body)
                DECIDE(DKIM_RESULT_POLICY, "l= does not cover the whole body");

        DECIDE(DKIM_RESULT_PASS, NULL);
#undef DECIDE
}

int dkim_verify(const char *msg, size_t len, const DkimVerifyOptions *opts,
                DkimGetKey get_key, void *userdata, DkimVerifyResults *ret) {
        static const DkimVerifyOptions default_opts = DKIM_VERIFY_OPTIONS_DEFAULT;
        _cleanup_(dkim_verify_results_done) DkimVerifyResults results = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n_fields = 0, body = 0, max;
        VerifyContext c;
        int r;

        assert(msg || len == 0);
        assert(get_key);
        assert(ret);

        if (!opts)
                opts = &default_opts;
        max = opts->max_signatures > 0 ? opts->max_signatures : DKIM_VERIFY_MAX_SIGNATURES_DEFAULT;

        r = dkim_header_fields(msg, len, &fields, &n_fields, &body);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;

        c = (VerifyContext) {
                .msg = msg, .len = len, .fields = fields, .n_fields = n_fields, .body = body,
                .opts = opts, .get_key = get_key, .userdata = userdata,
        };

        for (size_t i = 0; i < n_fields; i++) {
                DkimVerifyResult *res, *a;

                if (!rfc5322_field_is(fields + i, "DKIM-Signature"))
                        continue;

                a = reallocarray(results.results, results.n_results + 1, sizeof(DkimVerifyResult));
                if (!a)
                        return -ENOMEM;
                results.results = a;
                res = results.results + results.n_results++;
                *res = (DkimVerifyResult) { .algorithm = _DKIM_ALGORITHM_INVALID };

                if (results.n_results > max) {
                        res->result = DKIM_RESULT_PERMERROR;
                        res->reason = "too many signatures, not evaluated";
                        continue;
                }

                r = verify_one(&c, fields + i, res);
                if (r < 0)
                        return r;
        }

        *ret = results;
        results = (DkimVerifyResults) DKIM_VERIFY_RESULTS_NULL;
        return 0;
}

int dkim_verify_key_names(const char *msg, size_t len, char ***ret) {
        _cleanup_free_ Rfc5322Field *fields = NULL;
        _cleanup_strv_free_ char **names = NULL;
        size_t n_fields = 0, n_sigs = 0;
        int r;

        assert(msg || len == 0);
        assert(ret);

        r = dkim_header_fields(msg, len, &fields, &n_fields, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;

        for (size_t i = 0; i < n_fields; i++) {
                _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;
                _cleanup_free_ char *name = NULL;

                if (!rfc5322_field_is(fields + i, "DKIM-Signature"))
                        continue;
                if (++n_sigs > DKIM_VERIFY_MAX_SIGNATURES_DEFAULT)
                        break;
                r = dkim_signature_parse(fields[i].value, fields[i].value_len, &sig, NULL);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || sig->algorithm == DKIM_ALGORITHM_RSA_SHA1)
                        continue;       /* no lookup for a signature that is already a permerror */

                r = asprintf_safe(&name, "%s._domainkey.%s", sig->selector, sig->domain);
                if (r < 0)
                        return r;
                if (names && strv_contains(names, name))
                        continue;
                r = strv_consume(&names, TAKE_PTR(name));
                if (r < 0)
                        return r;
        }

        if (!names) {
                names = calloc(1, sizeof(char*));
                if (!names)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(names);
        return 0;
}
