/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DKIM key records (RFC 6376 §3.6.1, RFC 8301, RFC 8463): the TXT text found under
 * selector._domainkey.domain, parsed into flags and an OpenSSL EVP_PKEY. The caller does
 * the DNS query and concatenates the character-strings of the record. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "macro.h"

typedef enum DkimKeyType {
        DKIM_KEY_RSA,
        DKIM_KEY_ED25519,
        _DKIM_KEY_TYPE_MAX,
        _DKIM_KEY_TYPE_INVALID = -EINVAL,
} DkimKeyType;

#define DKIM_KEY_RSA_MIN_BITS 1024U     /* RFC 8301 §3.2 */
#define DKIM_KEY_RSA_MAX_BITS 8192U     /* bounds the verification cost */
#define DKIM_KEY_RECORD_MAX 8192U

typedef struct DkimKey {
        DkimKeyType type;
        EVP_PKEY *pkey;                 /* NULL when revoked */
        bool revoked;                   /* p= empty */
        bool testing;                   /* t=y */
        bool strict;                    /* t=s: i= domain must equal d= */
        bool sha256_allowed;            /* h= absent or lists sha256 */
        bool email_allowed;             /* s= absent or lists '*' or email */
        unsigned bits;
} DkimKey;

const char* dkim_key_type_to_string(DkimKeyType t) _const_;

/* Parse a key record. Returns 0 and a new DkimKey (possibly revoked), -EBADMSG with a
 * static *ret_reason when the record is unusable (syntax, v= not DKIM1 or not first, no
 * p=, unknown k=, p= not a key of type k=, RSA key under 1024 bits), or -ENOMEM. */
int dkim_key_parse(const char *txt, size_t len, DkimKey **ret, const char **ret_reason);

DkimKey* dkim_key_free(DkimKey *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(DkimKey*, dkim_key_free);

/* The single place where libauthd's DKIM code turns a failed OpenSSL call into an errno:
 * the error queue is logged at debug level and cleared, and r (the call site's choice,
 * normally -EBADMSG or -EIO) is returned. */
int dkim_openssl_error(int r, const char *what);

/* SHA-256 for every digest of libauthd, fetched from OpenSSL's default provider once. */
const EVP_MD* dkim_sha256(void);

/* RSASSA-PKCS1-v1_5 verification of a SHA-256 digest (RFC 6376 §3.3.1, RFC 8017 §8.2.2):
 * 1 valid, 0 invalid, negative errno when the check could not be made. Keys that
 * dkim_key_parse() keeps in its cache keep their verification context as well. */
int dkim_rsa_verify_digest(EVP_PKEY *pkey, const uint8_t digest[static 32], const uint8_t *sig, size_t sig_len);

DEFINE_TRIVIAL_CLEANUP_FUNC_FULL(EVP_PKEY*, EVP_PKEY_free, NULL);
DEFINE_TRIVIAL_CLEANUP_FUNC_FULL(EVP_MD_CTX*, EVP_MD_CTX_free, NULL);
