/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DKIM verification (RFC 6376 §6, RFC 8301, RFC 8463) of a message held in memory. The key
 * records come from the caller: either through a callback that returns the TXT text, or
 * in two phases (dkim_verify_key_names() to learn which names to resolve, then a callback
 * that looks them up in the caller's answers). No DNS, no clock: "now" is an option. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim-canon.h"
#include "dkim-signature.h"
#include "macro.h"

typedef enum DkimResult {
        DKIM_RESULT_PASS,
        DKIM_RESULT_FAIL,
        DKIM_RESULT_NEUTRAL,
        DKIM_RESULT_POLICY,
        DKIM_RESULT_TEMPERROR,
        DKIM_RESULT_PERMERROR,
        _DKIM_RESULT_MAX,
        _DKIM_RESULT_INVALID = -EINVAL,
} DkimResult;

const char* dkim_result_to_string(DkimResult r) _const_;

/* Returns 0 with *ret_txt (a new string: the record's character-strings concatenated),
 * -ENXIO when the name does not exist or has no TXT record (permerror "no key"), or any
 * other negative errno for a temporary failure (temperror); -ENOMEM aborts the
 * verification. When several TXT records exist the caller passes the first that parses
 * as a DKIM key, or the first. */
typedef int (*DkimGetKey)(const char *selector, const char *domain, char **ret_txt, void *userdata);

typedef struct DkimVerifyOptions {
        uint64_t now;                   /* seconds since the epoch; 0 disables t=/x= checks */
        bool refuse_future_timestamp;   /* t= later than now + clock_skew fails (RFC 6376
                                         * §3.5 allows ignoring such signatures; off by
                                         * default, as in other verifiers) */
        uint64_t clock_skew;            /* seconds of tolerance for t= in the future */
        bool allow_partial_body;        /* l= shorter than the body may still pass */
        size_t max_signatures;          /* later signatures get permerror; 0 = default */
} DkimVerifyOptions;
#define DKIM_VERIFY_MAX_SIGNATURES_DEFAULT 16U
#define DKIM_VERIFY_OPTIONS_DEFAULT { .now = 0, .refuse_future_timestamp = false, .clock_skew = 300, .allow_partial_body = false, .max_signatures = 0 }

typedef struct DkimVerifyResult {
        DkimResult result;
        const char *reason;             /* static text; NULL on pass */
        char *domain;                   /* d=, NULL when the field did not parse */
        char *selector;                 /* s= */
        char *identity;                 /* i= */
        DkimAlgorithm algorithm;
        bool testing;                   /* key record has t=y */
        unsigned key_bits;
        uint8_t b_prefix[8];            /* first bytes of b= for header.b (RFC 6008) */
        size_t b_prefix_len;
} DkimVerifyResult;

typedef struct DkimVerifyResults {
        DkimVerifyResult *results;      /* one per DKIM-Signature field, top to bottom */
        size_t n_results;
} DkimVerifyResults;
#define DKIM_VERIFY_RESULTS_NULL { .results = NULL, .n_results = 0 }

void dkim_verify_results_done(DkimVerifyResults *r);

/* Verify every DKIM-Signature field of msg. Returns 0 with one result per signature (none
 * when the message carries no signature), -EBADMSG when the header block cannot be
 * parsed, or -ENOMEM / -EIO. */
int dkim_verify(const char *msg, size_t len, const DkimVerifyOptions *opts,
                DkimGetKey get_key, void *userdata, DkimVerifyResults *ret);

/* Phase one: the key names ("selector._domainkey.domain") the valid-looking signatures
 * of msg need, without duplicates, as a NULL-terminated strv. */
int dkim_verify_key_names(const char *msg, size_t len, char ***ret);

/* Checks a signature over already canonicalised header data (DKIM and ARC share it):
 * RSA-SHA256 over the data, Ed25519 over its SHA-256 (RFC 8463 §3). 1 verifies, 0 does
 * not (also for a malformed signature), negative errno when it could not be checked. */
int dkim_verify_signature_data(DkimAlgorithm a, EVP_PKEY *pkey, const DkimBuffer *data,
                               const uint8_t *sig, size_t sig_len);
