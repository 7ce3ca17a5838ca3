/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SPF evaluation, check_host() of RFC 7208 §4, as a state machine that never calls a
 * resolver itself:
 *
 *         _cleanup_(spf_eval_freep) SpfEval *e = NULL;
 *         DnsAnswer answer = DNS_ANSWER_NULL;
 *         SpfLookup lookup;
 *
 *         r = spf_eval_new(&req, &e);
 *         for (const DnsAnswer *a = NULL;; a = &answer) {
 *                 r = spf_eval_step(e, a, &lookup);
 *                 if (r < 0)
 *                         return r;
 *                 if (r == SPF_STEP_DONE)
 *                         break;
 *                 dns_answer_done(&answer);
 *                 ... resolve lookup.name / lookup.type into answer ...
 *         }
 *         r = spf_eval_result(e, &result);
 *
 * The first step is given NULL, every later one the answer to the lookup the previous
 * step asked for. The caller owns the DnsAnswer; the machine copies what it keeps.
 * All of RFC 7208's processing limits are enforced here (§4.6.4): at most
 * SPF_DNS_TERMS_MAX DNS-querying terms, SPF_VOID_LOOKUPS_MAX void lookups, and
 * SPF_MX_NAMES_MAX / SPF_PTR_NAMES_MAX names per mx / ptr. */

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns-answer.h"
#include "macro.h"
#include "spf-record.h"

#define SPF_DNS_TERMS_MAX 10U
#define SPF_VOID_LOOKUPS_MAX 2U
#define SPF_MX_NAMES_MAX 10U
#define SPF_PTR_NAMES_MAX 10U
/* Lookups one evaluation may ask for in all (limits above included, plus exp= and
 * the "p" macro): a last guard against a loop through our own state. */
#define SPF_LOOKUPS_MAX 256U

typedef enum SpfResult {
        SPF_RESULT_NONE,
        SPF_RESULT_NEUTRAL,
        SPF_RESULT_PASS,
        SPF_RESULT_FAIL,
        SPF_RESULT_SOFTFAIL,
        SPF_RESULT_TEMPERROR,
        SPF_RESULT_PERMERROR,
        _SPF_RESULT_MAX,
        _SPF_RESULT_INVALID = -EINVAL,
} SpfResult;

const char* spf_result_to_string(SpfResult r) _const_;     /* "none", "neutral", "pass", ... */
SpfResult spf_result_from_string(const char *s) _pure_;

typedef enum SpfIdentity {
        SPF_IDENTITY_MAILFROM,
        SPF_IDENTITY_HELO,
        _SPF_IDENTITY_MAX,
        _SPF_IDENTITY_INVALID = -EINVAL,
} SpfIdentity;

const char* spf_identity_to_string(SpfIdentity i) _const_; /* "mailfrom", "helo" */

typedef struct SpfRequest {
        int family;                     /* AF_INET or AF_INET6 (an IPv4-mapped IPv6 address
                                         * is evaluated as IPv4, §5) */
        union {
                struct in_addr in;
                struct in6_addr in6;
        } ip;
        /* The MAIL FROM address without angle brackets ("local@domain"). NULL or "" (the
         * null reverse-path) checks the HELO identity, as §2.4 says. */
        const char *mail_from;
        const char *helo;               /* the HELO/EHLO argument */
        const char *receiver;           /* our host name, for %{r} and Received-SPF; NULL: "unknown" */
        uint64_t now;                   /* for %{t} */
        /* The explanation given with "fail" when the record has none (or exp= cannot
         * be used); NULL: a fixed text pointing at RFC 7208. */
        const char *default_explanation;
} SpfRequest;

typedef struct SpfLookup {
        const char *name;               /* owned by the SpfEval; valid until the next step */
        uint16_t type;                  /* DNS_TYPE_TXT, _A, _AAAA, _MX, _PTR */
} SpfLookup;

typedef struct SpfOutcome {
        SpfResult result;
        SpfIdentity identity;
        const char *domain;             /* the domain checked ("<domain>" of check_host()) */
        const char *sender;             /* "<sender>": local@domain, postmaster@helo ... */
        const char *mechanism;          /* the mechanism that matched as written ("-all"), or NULL:
                                         * for neutral by default, errors, none */
        const char *explanation;        /* fail only: expanded exp= text or the default */
        const char *problem;            /* permerror, temperror, none: why (for logs, comments) */
        unsigned dns_terms;             /* DNS-querying terms used */
        unsigned void_lookups;
} SpfOutcome;

enum {
        SPF_STEP_LOOKUP = 1,            /* resolve *ret_lookup, pass the answer to the next step */
        SPF_STEP_DONE = 2,              /* spf_eval_result() has the outcome */
};

typedef struct SpfEval SpfEval;

/* Copies what it needs from req. -EINVAL for an unusable request (no HELO, bad family). */
int spf_eval_new(const SpfRequest *req, SpfEval **ret);
SpfEval* spf_eval_free(SpfEval *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpfEval*, spf_eval_free);

/* Returns SPF_STEP_LOOKUP or SPF_STEP_DONE, or a negative errno (-ENOMEM; -EINVAL when
 * an answer is given or missing against the protocol above; -ESTALE after DONE). */
int spf_eval_step(SpfEval *e, const DnsAnswer *answer, SpfLookup *ret_lookup);

/* After SPF_STEP_DONE: the outcome, owned by e. -EBUSY before. */
int spf_eval_result(SpfEval *e, const SpfOutcome **ret);

/* RFC 7208 §9.1 Received-SPF field value (without "Received-SPF: "), e.g.
 * pass (mx.example.org: domain of a@example.com designates 192.0.2.1 as permitted sender)
 *  client-ip=192.0.2.1; envelope-from="a@example.com"; helo=mail.example.com;
 *  receiver=mx.example.org; identity=mailfrom; mechanism="ip4:192.0.2.0/24"
 * on one line. */
int spf_eval_received_spf(SpfEval *e, char **ret);

/* RFC 8601 method result for Authentication-Results: "spf=pass smtp.mailfrom=a@example.com"
 * or "spf=none smtp.helo=mail.example.com". */
int spf_eval_auth_results(SpfEval *e, char **ret);
