/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ARC, the Authenticated Received Chain (RFC 8617): parsing of the three header fields of
 * an ARC set, chain validation (§5.2) and sealing (§5.1) of a message held in memory.
 * Pure code like the DKIM modules it builds on: key records come from a DkimGetKey
 * callback (dkim-verify.h), the signing time is a parameter. rsa-sha256 is the algorithm
 * of RFC 8617; ed25519-sha256 (RFC 8463) is accepted as an extension, as other
 * implementations do. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim-signature.h"
#include "dkim-verify.h"
#include "macro.h"

#define ARC_MAX_INSTANCES 50U           /* §4.2.1: i= is 1..50 */

typedef enum ArcChainStatus {
        ARC_CHAIN_NONE,
        ARC_CHAIN_PASS,
        ARC_CHAIN_FAIL,
        _ARC_CHAIN_STATUS_MAX,
        _ARC_CHAIN_STATUS_INVALID = -EINVAL,
} ArcChainStatus;

const char* arc_chain_status_to_string(ArcChainStatus s) _const_;
/* Exact, case-sensitive match of "none", "pass" or "fail" (the cv= tag values). */
ArcChainStatus arc_chain_status_from_string(const char *s, size_t len) _pure_;

/* ARC-Seal (§4.1.3): i, a, b, cv, d, s required, t optional, h= forbidden. */
typedef struct ArcSeal {
        unsigned instance;
        DkimAlgorithm algorithm;
        ArcChainStatus cv;
        uint8_t *signature;
        size_t signature_len;
        char *domain;
        char *selector;
        bool has_timestamp;
        uint64_t timestamp;
        size_t b_region_start;          /* as DkimSignature: the b= value to blank */
        size_t b_region_end;
} ArcSeal;

/* ARC-Message-Signature (§4.1.2): DKIM-Signature tags without v=, with i= the instance.
 * i, a, b, bh, d, h, s required; c defaults to simple/simple; h= must not name ARC-Seal. */
typedef struct ArcMessageSignature {
        unsigned instance;
        DkimAlgorithm algorithm;
        DkimCanon header_canon;
        DkimCanon body_canon;
        uint8_t *signature;
        size_t signature_len;
        uint8_t *body_hash;
        size_t body_hash_len;
        char *domain;
        char *selector;
        char **headers;                 /* NULL-terminated; may be empty */
        size_t n_headers;
        bool has_timestamp;
        uint64_t timestamp;
        size_t b_region_start;
        size_t b_region_end;
} ArcMessageSignature;

/* Both parsers return 0 with a new object, -EBADMSG with a static *ret_reason when the
 * field is malformed (syntax, missing or duplicate tag, bad value; tag names and the values
 * of a=, c= and cv= are case-sensitive), or -ENOMEM. */
int arc_seal_parse(const char *value, size_t len, ArcSeal **ret, const char **ret_reason);
ArcSeal* arc_seal_free(ArcSeal *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ArcSeal*, arc_seal_free);

int arc_message_signature_parse(const char *value, size_t len, ArcMessageSignature **ret,
                                const char **ret_reason);
ArcMessageSignature* arc_message_signature_free(ArcMessageSignature *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ArcMessageSignature*, arc_message_signature_free);

/* ARC-Authentication-Results (§4.1.1): "i=" instance ";" then an Authentication-Results
 * payload. Returns 0 with the instance and the offset of the payload in value, or -EBADMSG. */
int arc_authentication_results_parse(const char *value, size_t len, unsigned *ret_instance,
                                     size_t *ret_payload_offset);

typedef struct ArcVerifyResult {
        ArcChainStatus status;
        const char *reason;             /* static text; NULL on pass and none */
        unsigned n_sets;                /* the newest instance; 0 when there is no ARC set */
        unsigned failed_instance;       /* fail: the instance that failed, 0 when not one set */
        unsigned oldest_pass;           /* pass: §5.2 step 5, the lowest instance from which
                                         * every AMS still validates, 0 when all do */
} ArcVerifyResult;
#define ARC_VERIFY_RESULT_NULL { .status = ARC_CHAIN_NONE }

/* Validate the chain of msg (§5.2): structure, the newest AMS, every AS from the newest
 * down, oldest-pass. Returns 0 with the verdict in *ret (a message whose header block does
 * not parse has no chain: none), or -ENOMEM / -EIO. A failed key lookup other than
 * -ENXIO / -ENOMEM is a fail whose reason says so (the caller may retry). */
int arc_verify(const char *msg, size_t len, DkimGetKey get_key, void *userdata, ArcVerifyResult *ret);

/* Steps 1 to 3 only (sets complete, instances 1..N without gaps or duplicates, every field
 * parses, cv= of instance 1 is none and of the others pass, the newest is not fail): no
 * keys, no crypto. status pass here means "structurally sound". */
int arc_verify_structure(const char *msg, size_t len, ArcVerifyResult *ret);

/* What a receiver may act on in one ARC set once the chain validated: who sealed it and
 * what that sealer recorded (RFC 8617 §7.2). */
typedef struct ArcSetInfo {
        unsigned instance;
        char *domain;                   /* d= of the ARC-Seal, lower case */
        char *selector;                 /* s= of the ARC-Seal */
        char *aar;                      /* the ARC-Authentication-Results payload after "i=N;",
                                         * as in the message (may be folded) */
        size_t aar_len;
} ArcSetInfo;
void arc_set_infos_free(ArcSetInfo *sets, size_t n);

/* The sets of a structurally sound chain (arc_verify_structure()'s steps), oldest first:
 * (*ret)[k].instance is k + 1. Returns 0 with *ret_n 0 (and *ret NULL) when there is no
 * chain, -EBADMSG when the chain is not structurally sound, -ENOMEM. It checks no
 * signature: only after arc_verify() said pass may the sealers' statements be believed. */
int arc_sets_read(const char *msg, size_t len, ArcSetInfo **ret, size_t *ret_n);

typedef struct ArcSealer {
        EVP_PKEY *key;                  /* RSA (>= 1024 bits) or Ed25519 private key; borrowed */
        const char *domain;             /* d= of the AMS and the AS */
        const char *selector;           /* s= */
        DkimCanon header_canon;         /* c= of the AMS */
        DkimCanon body_canon;
        char * const *headers;          /* NULL-terminated names for the AMS h=, in order;
                                         * NULL: dkim_sign_default_headers */
        uint64_t timestamp;             /* t=, 0: omitted */
} ArcSealer;
#define ARC_SEALER_INIT { .header_canon = DKIM_CANON_RELAXED, .body_canon = DKIM_CANON_RELAXED }

/* Add the next ARC set to msg (§5.1). chain is the validation status of the chain as
 * received (arc_verify()'s, or what the sealer's own Authentication-Results says); ar is
 * the Authentication-Results payload to carry ("authserv-id; method=result ..."; it may be
 * folded). Returns 0 with *ret the three new fields, ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results, each ending in CRLF, to be prepended to msg; or 0 with *ret
 * NULL when nothing must be added because the newest ARC-Seal already says cv=fail
 * (§5.1 step 1). -ERANGE when the chain already holds 50 sets, -EINVAL for a bad sealer
 * or a chain status that contradicts the message (pass or none without, resp. with, ARC
 * sets), -EBADMSG when the header block does not parse, -ENOMEM or -EIO. With cv=fail the
 * new seal covers only its own set (§5.1.2). */
int arc_seal(const char *msg, size_t len, ArcChainStatus chain, const char *ar,
             const ArcSealer *s, char **ret);
