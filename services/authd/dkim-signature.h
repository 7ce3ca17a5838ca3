/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The DKIM-Signature header field (RFC 6376 §3.5) and the tag-list syntax it shares with
 * key records (§3.2). Pure parsing: no DNS, no crypto. A value that cannot be used is
 * refused with -EBADMSG and a static reason string suitable for a permerror comment. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum DkimAlgorithm {
        DKIM_ALGORITHM_RSA_SHA256,
        DKIM_ALGORITHM_ED25519_SHA256,
        DKIM_ALGORITHM_RSA_SHA1,        /* recognised, refused by verification (RFC 8301) */
        _DKIM_ALGORITHM_MAX,
        _DKIM_ALGORITHM_INVALID = -EINVAL,
} DkimAlgorithm;

typedef enum DkimCanon {
        DKIM_CANON_SIMPLE,
        DKIM_CANON_RELAXED,
        _DKIM_CANON_MAX,
        _DKIM_CANON_INVALID = -EINVAL,
} DkimCanon;

const char* dkim_algorithm_to_string(DkimAlgorithm a) _const_;
DkimAlgorithm dkim_algorithm_from_string(const char *s, size_t len) _pure_;
const char* dkim_canon_to_string(DkimCanon c) _const_;

/* Upper bounds on what a signature may make us allocate or hash. */
#define DKIM_SIGNATURE_MAX_HEADERS 256U         /* names in h= */
#define DKIM_SIGNATURE_VALUE_MAX (64U * 1024U)  /* a whole field value */

/* One tag of a tag-list. name and value point into the parsed text; the value has its
 * surrounding FWS removed but keeps inner FWS. region_start/region_end delimit the whole
 * text after '=' up to (not including) the ';' or the end, surrounding FWS included: this
 * is what "b= is treated as the empty string" removes (§3.5, b=). */
typedef struct DkimTag {
        const char *name;
        size_t name_len;
        const char *value;
        size_t value_len;
        size_t region_start;
        size_t region_end;
} DkimTag;

/* Iterate a tag-list: *offset starts at 0. Returns 1 with *ret filled, 0 at the end, or
 * -EBADMSG with *ret_reason set (syntax error). Whitespace (SP, HTAB, CR, LF) is accepted
 * wherever the grammar allows FWS. */
int dkim_tag_list_next(const char *s, size_t len, size_t *offset, DkimTag *ret, const char **ret_reason);

/* Decode base64 with embedded FWS (RFC 6376 §2.4, base64string). Returns -EBADMSG on a
 * character outside the alphabet, wrong padding or trailing data. *ret is NUL-terminated
 * for convenience; an empty input gives an empty buffer. */
int dkim_base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

/* Encode base64 (no line breaks) into a new string. */
int dkim_base64_encode(const uint8_t *p, size_t len, char **ret);

/* Domain syntax (letters, digits, hyphens, dots; no empty label). allow_underscore for
 * selectors, which are often written with '_' in practice. */
bool dkim_domain_is_valid(const char *s, size_t len, bool allow_underscore) _pure_;

typedef struct DkimSignature {
        DkimAlgorithm algorithm;        /* a= */
        DkimCanon header_canon;         /* c= */
        DkimCanon body_canon;
        uint8_t *signature;             /* b= decoded */
        size_t signature_len;
        uint8_t *body_hash;             /* bh= decoded */
        size_t body_hash_len;
        char *domain;                   /* d=, lowercase */
        char *selector;                 /* s=, lowercase */
        char **headers;                 /* h=, as written (compare case-insensitively) */
        size_t n_headers;
        char *identity;                 /* i=, or "@" d= when absent */
        char *identity_domain;          /* the domain part of identity, lowercase */
        bool has_length;                /* l= */
        uint64_t length;
        bool has_timestamp;             /* t= */
        uint64_t timestamp;
        bool has_expiration;            /* x= */
        uint64_t expiration;
        char *copied_headers;           /* z=, raw, not interpreted */

        /* Where the b= tag value sits in the parsed text (offsets into the value passed
         * to dkim_signature_parse()), so that a verifier can blank it out. */
        size_t b_region_start;
        size_t b_region_end;
} DkimSignature;

/* Parse the value of a DKIM-Signature field (everything after the colon, folds kept).
 * Returns 0 and a new DkimSignature, -EBADMSG with *ret_reason when the signature is
 * unusable (permerror: missing or duplicate tag, bad syntax, unsupported version or
 * algorithm, i= outside d=, x= not after t=, From not signed, ...), or -ENOMEM. */
int dkim_signature_parse(const char *value, size_t len, DkimSignature **ret, const char **ret_reason);

DkimSignature* dkim_signature_free(DkimSignature *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DkimSignature*, dkim_signature_free);
