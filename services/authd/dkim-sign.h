/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DKIM signing (RFC 6376 §5, RFC 8463) with RSA-SHA256 and Ed25519-SHA256. The result is
 * the text of one DKIM-Signature field per signer, folded at 78 columns, each ending in
 * CRLF, ready to be prepended to the message. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim-canon.h"
#include "dkim-signature.h"

typedef struct DkimSigner {
        EVP_PKEY *key;                  /* RSA (>= 1024 bits) or Ed25519 private key; borrowed */
        const char *domain;             /* d= */
        const char *selector;           /* s= */
        const char *identity;           /* i=, optional */
        DkimCanon header_canon;
        DkimCanon body_canon;
        char * const *headers;          /* NULL-terminated names to sign; NULL: the default list */
        bool no_oversign;               /* by default each name is listed once more than present */
        uint64_t timestamp;             /* t=, 0: omitted */
        uint64_t expire_after;          /* x= = t= + this, 0: omitted (needs t=) */
} DkimSigner;
#define DKIM_SIGNER_INIT { .header_canon = DKIM_CANON_RELAXED, .body_canon = DKIM_CANON_RELAXED }

/* Header names signed when DkimSigner.headers is NULL. */
extern const char* const dkim_sign_default_headers[];

/* Sign msg once per signer. Returns 0 and the concatenated fields in *ret, -EBADMSG when
 * the message has no single From field or its header block does not parse, -EINVAL for a
 * bad signer (key type or size, domain, selector), -ENOMEM or -EIO. */
int dkim_sign(const char *msg, size_t len, const DkimSigner *signers, size_t n_signers, char **ret);

/* The building blocks, for callers that need exact control of the tag text (the
 * conformance suite reproduces published signatures with them). */
/* Signs already canonicalised header data (DKIM and ARC share it); base64 of the
 * signature in *ret_b64. */
int dkim_sign_data(EVP_PKEY *key, DkimAlgorithm a, const DkimBuffer *data, char **ret_b64);

int dkim_sign_body_hash(const char *msg, size_t len, DkimCanon c, uint64_t limit, uint8_t ret[static 32]);

/* b= for sig_field (a whole DKIM-Signature field with an empty b= value) over the header
 * fields of msg named in headers[], as a new base64 string. */
int dkim_sign_header(const char *msg, size_t len, EVP_PKEY *key, DkimAlgorithm a, DkimCanon c,
                     char * const *headers, size_t n_headers,
                     const char *sig_field, size_t sig_field_len, char **ret_b64);
