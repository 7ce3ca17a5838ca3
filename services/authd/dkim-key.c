/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-signature.h"
#include "log.h"

static const char* const key_type_table[_DKIM_KEY_TYPE_MAX] = {
        [DKIM_KEY_RSA] = "rsa",
        [DKIM_KEY_ED25519] = "ed25519",
};

const char* dkim_key_type_to_string(DkimKeyType t) {
        if (t < 0 || t >= _DKIM_KEY_TYPE_MAX)
                return NULL;
        return key_type_table[t];
}

static int log_openssl_queue(const char *str, size_t len, void *u) {
        (void) u;
        log_debug("OpenSSL: %.*s", (int) len, str);
        return 1;
}

int dkim_openssl_error(int r, const char *what) {
        log_debug("DKIM: %s failed", what);
        ERR_print_errors_cb(log_openssl_queue, NULL);
        ERR_clear_error();
        return r;
}

DkimKey* dkim_key_free(DkimKey *k) {
        if (!k)
                return NULL;
        EVP_PKEY_free(k->pkey);
        free(k);
        return NULL;
}

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Walk a colon-separated list; returns true when one element equals one of the words. */
static bool colon_list_has(const char *v, size_t len, const char *w1, const char *w2) {
        size_t i = 0;

        while (i <= len) {
                size_t start, end;

                while (i < len && is_ws(v[i]))
                        i++;
                start = i;
                while (i < len && v[i] != ':')
                        i++;
                end = i;
                while (end > start && is_ws(v[end - 1]))
                        end--;
                if ((w1 && end - start == strlen(w1) && strncasecmp(v + start, w1, end - start) == 0) ||
                    (w2 && end - start == strlen(w2) && strncasecmp(v + start, w2, end - start) == 0))
                        return true;
                i++;
        }
        return false;
}

/* OpenSSL 3 decodes a public key through its decoder framework, which costs several
 * times an RSA-2048 verification. A domain signs many messages with one key, so the last
 * few RSA keys decoded by this thread are kept, found again by their exact DER bytes. An
 * EVP_PKEY is only read once built, so the entries are shared by reference count. */
#define RSA_KEY_CACHE_SIZE 8U

typedef struct RsaKeyCacheEntry {
        uint8_t *der;
        size_t len;
        EVP_PKEY *pkey;
        EVP_PKEY_CTX *verify_ctx;       /* set up for RSASSA-PKCS1-v1_5 with SHA-256, made
                                         * at the first verification with this key */
} RsaKeyCacheEntry;

static _Thread_local RsaKeyCacheEntry rsa_key_cache[RSA_KEY_CACHE_SIZE];
static _Thread_local unsigned rsa_key_cache_next;

static EVP_PKEY* rsa_key_cache_get(const uint8_t *der, size_t len) {
        for (size_t i = 0; i < RSA_KEY_CACHE_SIZE; i++) {
                RsaKeyCacheEntry *e = rsa_key_cache + i;

                if (e->pkey && e->len == len && memcmp(e->der, der, len) == 0)
                        return EVP_PKEY_up_ref(e->pkey) == 1 ? e->pkey : NULL;
        }
        return NULL;
}

static void rsa_key_cache_put(const uint8_t *der, size_t len, EVP_PKEY *pkey) {
        RsaKeyCacheEntry *e = rsa_key_cache + rsa_key_cache_next;
        uint8_t *copy;

        copy = malloc(MAX(len, (size_t) 1));
        if (!copy)
                return;                 /* not kept: only a later decode costs more */
        memcpy(copy, der, len);
        if (EVP_PKEY_up_ref(pkey) != 1) {
                free(copy);
                return;
        }
        free(e->der);
        EVP_PKEY_free(e->pkey);
        EVP_PKEY_CTX_free(e->verify_ctx);
        *e = (RsaKeyCacheEntry) { .der = copy, .len = len, .pkey = pkey };
        rsa_key_cache_next = (rsa_key_cache_next + 1) % RSA_KEY_CACHE_SIZE;
}

static int rsa_verify_ctx_new(EVP_PKEY *pkey, EVP_PKEY_CTX **ret) {
        EVP_PKEY_CTX *ctx;

        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!ctx)
                return dkim_openssl_error(-ENOMEM, "EVP_PKEY_CTX_new_from_pkey");
        if (EVP_PKEY_verify_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(ctx, dkim_sha256()) != 1) {
                EVP_PKEY_CTX_free(ctx);
                return dkim_openssl_error(-EIO, "EVP_PKEY_verify_init(RSA)");
        }
        *ret = ctx;
        return 0;
}

int dkim_rsa_verify_digest(EVP_PKEY *pkey, const uint8_t digest[static 32], const uint8_t *sig, size_t sig_len) {
        EVP_PKEY_CTX *ctx = NULL, *own = NULL;
        int k, r;

        assert(pkey);
        assert(sig || sig_len == 0);

        /* A verification context can be used again for any number of verifications with
         * the same key and parameters, which saves OpenSSL's algorithm lookups each time. */
        for (size_t i = 0; i < RSA_KEY_CACHE_SIZE; i++) {
                RsaKeyCacheEntry *e = rsa_key_cache + i;

                if (e->pkey != pkey)
                        continue;
                if (!e->verify_ctx) {
                        r = rsa_verify_ctx_new(pkey, &e->verify_ctx);
                        if (r < 0)
                                return r;
                }
                ctx = e->verify_ctx;
                break;
        }
        if (!ctx) {
                r = rsa_verify_ctx_new(pkey, &own);
                if (r < 0)
                        return r;
                ctx = own;
        }

        k = EVP_PKEY_verify(ctx, sig, sig_len, digest, 32);
        EVP_PKEY_CTX_free(own);
        if (k == 1)
                return 1;
        /* 0 is a bad signature, a negative value a malformed one: both a failed check. */
        (void) dkim_openssl_error(0, "EVP_PKEY_verify(RSA)");
        return 0;
}

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;

static void sha256_fetch(void) {
        sha256_fetched = EVP_MD_fetch(NULL, "SHA2-256", NULL);
        if (!sha256_fetched)
                ERR_clear_error();
}

const EVP_MD* dkim_sha256(void) {
        /* Fetched once: EVP_sha256() makes OpenSSL 3 look the implementation up again at
         * every EVP_DigestInit_ex(), a cost seen in every DKIM verification. */
        (void) pthread_once(&sha256_once, sha256_fetch);
        return sha256_fetched ?: EVP_sha256();
}

static int build_rsa(const uint8_t *der, size_t len, EVP_PKEY **ret, const char **ret_reason) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        const unsigned char *p = der;

        pkey = rsa_key_cache_get(der, len);
        if (pkey) {
                *ret = TAKE_PTR(pkey);
                return 0;
        }

        /* RFC 6376 §3.6.1 specifies SubjectPublicKeyInfo; a bare PKCS#1 RSAPublicKey is
         * published by enough domains (and accepted by other verifiers) that we take it
         * too. */
        pkey = d2i_PUBKEY(NULL, &p, (long) len);
        if (!pkey || p != der + len) {
                EVP_PKEY_free(TAKE_PTR(pkey));
                ERR_clear_error();
                p = der;
                pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long) len);
                if (!pkey || p != der + len) {
                        *ret_reason = "p= is not an RSA public key";
                        return dkim_openssl_error(-EBADMSG, "decoding RSA public key");
                }
        }
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
                *ret_reason = "p= is not an RSA key";
                return -EBADMSG;
        }
        rsa_key_cache_put(der, len, pkey);
        *ret = TAKE_PTR(pkey);
        return 0;
}

static int build_ed25519(const uint8_t *raw, size_t len, EVP_PKEY **ret, const char **ret_reason) {
        EVP_PKEY *pkey;

        if (len != 32) {
                *ret_reason = "p= is not a 32-byte Ed25519 key";
                return -EBADMSG;
        }
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
        if (!pkey) {
                *ret_reason = "p= is not a valid Ed25519 key";
                return dkim_openssl_error(-EBADMSG, "building Ed25519 key");
        }
        *ret = pkey;
        return 0;
}

enum {
        KEY_V = 1 << 0, KEY_H = 1 << 1, KEY_K = 1 << 2, KEY_N = 1 << 3,
        KEY_P = 1 << 4, KEY_S = 1 << 5, KEY_T = 1 << 6,
};

int dkim_key_parse(const char *txt, size_t len, DkimKey **ret, const char **ret_reason) {
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        const char *reason = NULL, *p_value = NULL;
        size_t offset = 0, p_len = 0;
        unsigned seen = 0, index = 0;
        int r;

        assert(txt || len == 0);
        assert(ret);

        if (!ret_reason)
                ret_reason = &reason;

        if (len > DKIM_KEY_RECORD_MAX) {
                *ret_reason = "key record too long";
                return -EBADMSG;
        }

        key = calloc(1, sizeof(DkimKey));
        if (!key)
                return -ENOMEM;
        key->type = DKIM_KEY_RSA;
        key->sha256_allowed = key->email_allowed = true;

        for (;; index++) {
                static const struct {
                        const char *name;
                        unsigned flag;
                } tags[] = {
                        { "v", KEY_V }, { "h", KEY_H }, { "k", KEY_K }, { "n", KEY_N },
                        { "p", KEY_P }, { "s", KEY_S }, { "t", KEY_T },
                };
                unsigned flag = 0;
                DkimTag t;

                r = dkim_tag_list_next(txt, len, &offset, &t, ret_reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                for (size_t k = 0; k < ELEMENTSOF(tags); k++)
                        if (t.name_len == 1 && t.name[0] == tags[k].name[0]) {
                                flag = tags[k].flag;
                                break;
                        }
                if (flag == 0)
                        continue;
                if (seen & flag) {
                        *ret_reason = "duplicate tag in key record";
                        return -EBADMSG;
                }
                seen |= flag;

                switch (flag) {
                case KEY_V:
                        if (index != 0) {
                                *ret_reason = "v= is not the first tag of the key record";
                                return -EBADMSG;
                        }
                        if (t.value_len != 5 || memcmp(t.value, "DKIM1", 5) != 0) {
                                *ret_reason = "unsupported key record version (v= must be DKIM1)";
                                return -EBADMSG;
                        }
                        break;
                case KEY_H:
                        key->sha256_allowed = colon_list_has(t.value, t.value_len, "sha256", NULL);
                        break;
                case KEY_K:
                        if (t.value_len == 3 && strncasecmp(t.value, "rsa", 3) == 0)
                                key->type = DKIM_KEY_RSA;
                        else if (t.value_len == 7 && strncasecmp(t.value, "ed25519", 7) == 0)
                                key->type = DKIM_KEY_ED25519;
                        else {
                                *ret_reason = "unknown key type in k=";
                                return -EBADMSG;
                        }
                        break;
                case KEY_P:
                        p_value = t.value;
                        p_len = t.value_len;
                        break;
                case KEY_S:
                        key->email_allowed = colon_list_has(t.value, t.value_len, "*", "email");
                        break;
                case KEY_T:
                        key->testing = colon_list_has(t.value, t.value_len, "y", NULL);
                        key->strict = colon_list_has(t.value, t.value_len, "s", NULL);
                        break;
                default:
                        break;          /* n= is a note for humans */
                }
        }

        if (!(seen & KEY_P)) {
                *ret_reason = "key record has no p= tag";
                return -EBADMSG;
        }

        if (p_len == 0)
                key->revoked = true;
        else {
                _cleanup_free_ uint8_t *der = NULL;
                size_t der_len;

                r = dkim_base64_decode(p_value, p_len, &der, &der_len);
                if (r == -EBADMSG) {
                        *ret_reason = "p= is not valid base64";
                        return r;
                }
                if (r < 0)
                        return r;

                if (key->type == DKIM_KEY_RSA)
                        r = build_rsa(der, der_len, &key->pkey, ret_reason);
                else
                        r = build_ed25519(der, der_len, &key->pkey, ret_reason);
                if (r < 0)
                        return r;

                key->bits = (unsigned) EVP_PKEY_get_bits(key->pkey);
                if (key->type == DKIM_KEY_RSA && key->bits < DKIM_KEY_RSA_MIN_BITS) {
                        *ret_reason = "RSA key shorter than 1024 bits (RFC 8301)";
                        return -EBADMSG;
                }
                if (key->type == DKIM_KEY_RSA && key->bits > DKIM_KEY_RSA_MAX_BITS) {
                        *ret_reason = "RSA key longer than 8192 bits";
                        return -EBADMSG;
                }
        }

        *ret = TAKE_PTR(key);
        return 0;
}
