/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "string-util.h"

#define FOLD_COLUMN 78

const char* const dkim_sign_default_headers[] = {
        "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To",
        "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
        NULL,
};

int dkim_sign_body_hash(const char *msg, size_t len, DkimCanon c, uint64_t limit, uint8_t ret[static 32]) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n_fields, body;
        int r;

        r = dkim_header_fields(msg, len, &fields, &n_fields, &body);
        if (r < 0)
                return r;
        r = dkim_body_hasher_new(c, limit, &h);
        if (r < 0)
                return r;
        r = dkim_body_hasher_feed(h, msg + body, len - body);
        if (r < 0)
                return r;
        return dkim_body_hasher_finish(h, ret, NULL);
}

int dkim_sign_data(EVP_PKEY *key, DkimAlgorithm a, const DkimBuffer *data, char **ret_b64) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t digest[32];
        size_t sig_len = 0;
        const uint8_t *in = (const uint8_t*) data->data;
        size_t in_len = data->len;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;

        if (a == DKIM_ALGORITHM_ED25519_SHA256) {
                if (EVP_Digest(data->data, data->len, digest, NULL, dkim_sha256(), NULL) != 1)
                        return dkim_openssl_error(-EIO, "EVP_Digest(SHA-256)");
                in = digest;
                in_len = sizeof(digest);
                if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1)
                        return dkim_openssl_error(-EIO, "EVP_DigestSignInit(Ed25519)");
        } else if (EVP_DigestSignInit(ctx, NULL, dkim_sha256(), NULL, key) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestSignInit(RSA)");

        if (EVP_DigestSign(ctx, NULL, &sig_len, in, in_len) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestSign");
        sig = malloc(sig_len);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(ctx, sig, &sig_len, in, in_len) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestSign");

        return dkim_base64_encode(sig, sig_len, ret_b64);
}

int dkim_sign_header(const char *msg, size_t len, EVP_PKEY *key, DkimAlgorithm a, DkimCanon c,
                     char * const *headers, size_t n_headers,
                     const char *sig_field, size_t sig_field_len, char **ret_b64) {
        _cleanup_(dkim_buffer_done) DkimBuffer data = DKIM_BUFFER_NULL;
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n_fields;
        int r;

        assert(key);
        assert(ret_b64);

        if (!IN_SET(a, DKIM_ALGORITHM_RSA_SHA256, DKIM_ALGORITHM_ED25519_SHA256))
                return -EINVAL;

        r = dkim_header_fields(msg, len, &fields, &n_fields, NULL);
        if (r < 0)
                return r;
        r = dkim_canon_signed_headers(c, msg, fields, n_fields, headers, n_headers, sig_field, sig_field_len, &data);
        if (r < 0)
                return r;
        return dkim_sign_data(key, a, &data, ret_b64);
}

/* Folding writer: tokens separated by "; ", a fold (CRLF SP) before a token that would
 * cross the column limit. */
typedef struct Folder {
        DkimBuffer *out;
        size_t column;
} Folder;

static int folder_put(Folder *f, const char *sep, const char *token) {
        size_t sl = strlen(sep), tl = strlen(token);
        int r;

        if (f->column + sl + tl > FOLD_COLUMN && f->column > 1) {
                /* trailing spaces of the separator are dropped before the fold */
                size_t keep = sl;
                while (keep > 0 && sep[keep - 1] == ' ')
                        keep--;
                r = dkim_buffer_append(f->out, sep, keep);
                if (r < 0)
                        return r;
                r = dkim_buffer_append(f->out, "\r\n ", 3);
                if (r < 0)
                        return r;
                f->column = 1;
        } else {
                r = dkim_buffer_append(f->out, sep, sl);
                if (r < 0)
                        return r;
                f->column += sl;
        }
        r = dkim_buffer_append(f->out, token, tl);
        if (r < 0)
                return r;
        f->column += tl;
        return 0;
}

static size_t count_fields(const Rfc5322Field *fields, size_t n, const char *name) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (rfc5322_field_is(fields + i, name))
                        k++;
        return k;
}

static int sign_one(const char *msg, size_t len, const Rfc5322Field *fields, size_t n_fields,
                    const DkimSigner *s, DkimBuffer *out) {
        _cleanup_(dkim_buffer_done) DkimBuffer field = DKIM_BUFFER_NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *bh64 = NULL, *b64 = NULL;
        char * const *list = s->headers ? s->headers : (char * const *) dkim_sign_default_headers;
        DkimAlgorithm a;
        uint8_t bh[32];
        Folder f = { .out = &field };
        char buf[64];
        int r;

        if (!s->key || !s->domain || !s->selector ||
            !dkim_domain_is_valid(s->domain, strlen(s->domain), false) ||
            !dkim_domain_is_valid(s->selector, strlen(s->selector), true) ||
            s->header_canon < 0 || s->header_canon >= _DKIM_CANON_MAX ||
            s->body_canon < 0 || s->body_canon >= _DKIM_CANON_MAX ||
            (s->expire_after > 0 && s->timestamp == 0))
                return -EINVAL;
        if (s->identity && (strpbrk(s->identity, "; \t\r\n") || !strchr(s->identity, '@')))
                return -EINVAL;

        switch (EVP_PKEY_get_base_id(s->key)) {
        case EVP_PKEY_RSA:
                if (EVP_PKEY_get_bits(s->key) < (int) DKIM_KEY_RSA_MIN_BITS)
                        return -EINVAL;
                a = DKIM_ALGORITHM_RSA_SHA256;
                break;
        case EVP_PKEY_ED25519:
                a = DKIM_ALGORITHM_ED25519_SHA256;
                break;
        default:
                return -EINVAL;
        }

        /* h=: each name as often as it is present, plus once more to over-sign (so that
         * nobody can add another one); names not present appear once (or not at all when
         * over-signing is off). From must be in the list. */
        for (char * const *h = list; *h; h++) {
                size_t k = count_fields(fields, n_fields, *h);

                if (strpbrk(*h, ": \t\r\n;") || isempty(*h))
                        return -EINVAL;
                if (!s->no_oversign)
                        k++;
                for (size_t i = 0; i < k; i++) {
                        r = strv_extend(&names, *h);
                        if (r < 0)
                                return r;
                }
        }
        if (!names || !strv_contains(names, "From")) {
                bool from = false;
                for (char **n = names; n && *n; n++)
                        from = from || strcasecmp(*n, "from") == 0;
                if (!from)
                        return -EINVAL;
        }

        r = dkim_sign_body_hash(msg, len, s->body_canon, UINT64_MAX, bh);
        if (r < 0)
                return r;
        r = dkim_base64_encode(bh, sizeof(bh), &bh64);
        if (r < 0)
                return r;

        r = dkim_buffer_append(&field, "DKIM-Signature:", STRLEN("DKIM-Signature:"));
        if (r < 0)
                return r;
        f.column = STRLEN("DKIM-Signature:");

#define PUT(sep, tok) do { r = folder_put(&f, (sep), (tok)); if (r < 0) return r; } while (false)
        PUT(" ", "v=1");
        (void) snprintf(buf, sizeof(buf), "a=%s", dkim_algorithm_to_string(a));
        PUT("; ", buf);
        (void) snprintf(buf, sizeof(buf), "c=%s/%s", dkim_canon_to_string(s->header_canon),
                        dkim_canon_to_string(s->body_canon));
        PUT("; ", buf);
        {
                _cleanup_free_ char *t = NULL;
                r = asprintf_safe(&t, "d=%s", s->domain);
                if (r < 0)
                        return r;
                PUT("; ", t);
        }
        if (s->identity) {
                _cleanup_free_ char *t = NULL;
                r = asprintf_safe(&t, "i=%s", s->identity);
                if (r < 0)
                        return r;
                PUT("; ", t);
        }
        {
                _cleanup_free_ char *t = NULL;
                r = asprintf_safe(&t, "s=%s", s->selector);
                if (r < 0)
                        return r;
                PUT("; ", t);
        }
        if (s->timestamp > 0) {
                (void) snprintf(buf, sizeof(buf), "t=%" PRIu64, s->timestamp);
                PUT("; ", buf);
        }
        if (s->expire_after > 0) {
                (void) snprintf(buf, sizeof(buf), "x=%" PRIu64, s->timestamp + s->expire_after);
                PUT("; ", buf);
        }
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *t = NULL;
                r = asprintf_safe(&t, "%s%s", i == 0 ? "h=" : ":", names[i]);
                if (r < 0)
                        return r;
                PUT(i == 0 ? "; " : "", t);
        }
        {
                _cleanup_free_ char *t = NULL;
                r = asprintf_safe(&t, "bh=%s", bh64);
                if (r < 0)
                        return r;
                PUT("; ", t);
        }
        PUT("; ", "b=");
#undef PUT

        r = dkim_sign_header(msg, len, s->key, a, s->header_canon, names, strv_length(names),
                             field.data, field.len, &b64);
        if (r < 0)
                return r;

        /* The b= value goes in pieces that fill each line; the verifier removes the whole
         * value, folds included, so the hashed text is what was signed above. */
        for (size_t i = 0, n = strlen(b64); i < n;) {
                size_t room = f.column < FOLD_COLUMN ? FOLD_COLUMN - f.column : 0, piece;

                if (room == 0) {
                        r = dkim_buffer_append(&field, "\r\n ", 3);
                        if (r < 0)
                                return r;
                        f.column = 1;
                        continue;
                }
                piece = MIN(room, n - i);
                r = dkim_buffer_append(&field, b64 + i, piece);
                if (r < 0)
                        return r;
                f.column += piece;
                i += piece;
        }
        r = dkim_buffer_append(&field, "\r\n", 2);
        if (r < 0)
                return r;

        return dkim_buffer_append(out, field.data, field.len);
}

int dkim_sign(const char *msg, size_t len, const DkimSigner *signers, size_t n_signers, char **ret) {
        _cleanup_(dkim_buffer_done) DkimBuffer out = DKIM_BUFFER_NULL;
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n_fields;
        int r;

        assert(msg || len == 0);
        assert(signers || n_signers == 0);
        assert(ret);

        r = dkim_header_fields(msg, len, &fields, &n_fields, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        if (count_fields(fields, n_fields, "From") != 1)
                return -EBADMSG;        /* RFC 5322 §3.6: exactly one From */

        for (size_t i = 0; i < n_signers; i++) {
                r = sign_one(msg, len, fields, n_fields, signers + i, &out);
                if (r < 0)
                        return r;
        }

        if (!out.data) {
                out.data = strdup("");
                if (!out.data)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out.data);
        return 0;
}
