/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DMARC evaluation (RFC 7489, with the DMARCbis tree walk and np= as an option), as pure
 * code: the caller supplies the RFC5322.From domain, the SPF and DKIM outcomes, and the
 * DNS answers the evaluator asks for. A DmarcEval is a step machine:
 *
 *         r = dmarc_eval_new(&input, &e);
 *         while ((r = dmarc_eval_next(e, &name)) > 0) {
 *                 ... look up TXT <name> (e.g. "_dmarc.example.com") into answer ...
 *                 r = dmarc_eval_feed(e, &answer);
 *         }
 *         res = dmarc_eval_result(e);
 *
 * The organizational domain (RFC 7489 §3.2) comes from the public suffix list through
 * libpsl (the newest of libpsl's built-in list and Debian's publicsuffix package). When
 * no list is available at all, the last two labels of the domain are used — a crude
 * approximation that is wrong for suffixes such as co.uk; dmarc_org_domain() then
 * returns 1 instead of 0 so callers can say so. In tree-walk mode alignment still uses
 * that organizational domain; only policy discovery walks the DNS. */

#include <stdbool.h>
#include <stddef.h>

#include "arc.h"
#include "dmarc-record.h"
#include "dns-answer.h"
#include "macro.h"

/* DMARCbis: at most this many _dmarc lookups in a tree walk. */
#define DMARC_TREE_WALK_MAX 8U

typedef enum DmarcVerdict {
        DMARC_VERDICT_NONE,             /* no policy published (or not applicable) */
        DMARC_VERDICT_PASS,
        DMARC_VERDICT_FAIL,
        DMARC_VERDICT_TEMPERROR,        /* DNS failure during discovery: try again later */
        DMARC_VERDICT_PERMERROR,        /* an invalid record or an unusable From domain */
        _DMARC_VERDICT_MAX,
        _DMARC_VERDICT_INVALID = -EINVAL,
} DmarcVerdict;
const char* dmarc_verdict_to_string(DmarcVerdict v) _const_;      /* RFC 8601 "pass", ... */

typedef enum DmarcDiscovery {
        DMARC_DISCOVERY_RFC7489,        /* _dmarc.<From domain>, then _dmarc.<org domain> */
        DMARC_DISCOVERY_TREE_WALK,      /* DMARCbis: walk up the From domain's labels */
        _DMARC_DISCOVERY_MAX,
        _DMARC_DISCOVERY_INVALID = -EINVAL,
} DmarcDiscovery;

/* Which tag of the policy record supplied the requested policy. */
typedef enum DmarcPolicySource {
        DMARC_POLICY_SOURCE_P,          /* record found at the From domain itself */
        DMARC_POLICY_SOURCE_SP,         /* found at a parent, subdomain policy (sp=, else p=) */
        DMARC_POLICY_SOURCE_NP,         /* found at a parent, From domain does not exist (np=) */
        _DMARC_POLICY_SOURCE_MAX,
        _DMARC_POLICY_SOURCE_INVALID = -EINVAL,
} DmarcPolicySource;

typedef struct DmarcDkimResult {
        const char *domain;             /* the signature's d= */
        bool pass;
} DmarcDkimResult;

typedef struct DmarcInput {
        const char *from_domain;        /* RFC5322.From domain (see dmarc_from_domain_extract()) */
        bool from_domain_nonexistent;   /* the caller found it NXDOMAIN (for np=); default: exists */
        bool spf_pass;                  /* SPF result of the MAIL FROM identity was "pass" */
        const char *spf_mail_from_domain; /* domain of MAIL FROM; NULL or "" for the null path */
        const char *spf_helo_domain;    /* HELO/EHLO domain: SPF's identity for a null path
                                         * (RFC 7208 §2.4, RFC 7489 §4.1) */
        const DmarcDkimResult *dkim;
        size_t n_dkim;
        unsigned sample;                /* 0..99, uniformly random: pct= sampling input */
        DmarcDiscovery discovery;
} DmarcInput;

typedef struct DmarcResult {
        DmarcVerdict verdict;
        char *from_domain;              /* normalized: lower case, no final dot */
        char *org_domain;
        char *policy_domain;            /* where the policy record was found, NULL if none */
        bool have_record;
        DmarcRecord record;             /* valid when have_record */
        bool spf_aligned;
        bool dkim_aligned;
        char *dkim_aligned_domain;      /* d= of the first aligned passing signature */
        char *spf_domain;               /* the SPF-authenticated domain considered (or NULL) */
        DmarcPolicy policy;             /* requested: p=/sp=/np=; _DMARC_POLICY_INVALID if none */
        DmarcPolicySource policy_source;
        bool sampled_out;               /* fail, but not selected by pct=: policy lowered */
        DmarcPolicy disposition;        /* what the domain owner asks for this message: none
                                         * unless verdict is fail; p/sp/np, lowered one step
                                         * when sampled out (RFC 7489 §6.6.4) */
        const char *reason;             /* static; why none/permerror/temperror (or NULL) */
        unsigned n_lookups;
} DmarcResult;
#define DMARC_RESULT_NULL {                             \
                .verdict = DMARC_VERDICT_NONE,          \
                .record = DMARC_RECORD_NULL,            \
                .policy = _DMARC_POLICY_INVALID,        \
                .policy_source = _DMARC_POLICY_SOURCE_INVALID, \
                .disposition = DMARC_POLICY_NONE,       \
        }
void dmarc_result_done(DmarcResult *r);

typedef struct DmarcEval DmarcEval;

/* Copies what it needs from input. -EINVAL for sample > 99 or an unknown discovery mode.
 * A From domain that is not a usable domain name does not fail here: the evaluation ends
 * at once with permerror. */
int dmarc_eval_new(const DmarcInput *input, DmarcEval **ret);
DmarcEval* dmarc_eval_free(DmarcEval *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(DmarcEval*, dmarc_eval_free);

/* Returns 1 and *ret_name (valid until the next call on e) when a TXT lookup of that name
 * is needed, 0 when the evaluation is complete. -EBUSY when a lookup is outstanding. */
int dmarc_eval_next(DmarcEval *e, const char **ret_name);
/* Feed the answer to the lookup returned by dmarc_eval_next(). -EBUSY when none was
 * requested; -ENOMEM. */
int dmarc_eval_feed(DmarcEval *e, const DnsAnswer *answer);
/* The result once dmarc_eval_next() returned 0; NULL before that. */
const DmarcResult* dmarc_eval_result(const DmarcEval *e);

/* Organizational domain of a (normalized or not) domain: lower-cased, final dot removed,
 * then the public suffix list's registrable domain; a domain that is itself a public
 * suffix is its own organizational domain. Returns 0, or 1 when the "last two labels"
 * fallback was used because no list is available; -EINVAL for an empty or malformed
 * name; -ENOMEM. */
int dmarc_org_domain(const char *domain, char **ret);
/* The fallback alone: the last two labels (the whole name when it has fewer). */
int dmarc_org_domain_last_two_labels(const char *domain, char **ret);

/* Identifier alignment (RFC 7489 §3.1): strict means equal (case-insensitive, ignoring a
 * final dot); relaxed means equal organizational domains. */
bool dmarc_domains_aligned(const char *authenticated, const char *from, DmarcAlignment mode);

/* Lower-case a domain and drop one final dot; -EINVAL for "", ".", empty labels, labels
 * over 63 or names over 253 octets, or characters outside letters, digits, '-' and '_'
 * (U-labels must be converted to A-labels by the caller). */
int dmarc_domain_normalize(const char *domain, char **ret);

/* The RFC5322.From domain from a From: header field value (unfolded or not): a single
 * mailbox in "addr-spec", "Display Name <addr-spec>" or "\"quoted\" <addr-spec>" form, with
 * comments. Returns 0 and the normalized domain, or
 *   -ENOTUNIQ  several mailboxes (RFC 7489 §6.6.1: such messages are refused here);
 *   -ENXIO     no mailbox at all (empty value, empty group);
 *   -EBADMSG   unparseable;
 *   -ENOMEM. */
int dmarc_from_domain_extract(const char *value, size_t len, char **ret);

/* The RFC 8601 method text, e.g.
 *   "dmarc=fail (p=reject dis=reject) header.from=example.com"
 *   "dmarc=pass (p=none dis=none) header.from=example.com"
 *   "dmarc=none header.from=example.com" */
int dmarc_result_to_auth_results(const DmarcResult *r, char **ret);

/* Local policy (RFC 7489 §6.7): a trusted ARC sealer rescues a DMARC failure (RFC 8617
 * §7.2). The rule, all of which must hold:
 *
 *   - DMARC failed (verdict fail) and the domain owner asks for quarantine or reject
 *     (disposition not none: there is nothing to override otherwise);
 *   - the ARC chain validated as a whole (chain is pass: every seal verified, so every
 *     ARC-Authentication-Results is what its sealer wrote);
 *   - a set sealed by a trusted domain (the ARC-Seal's d= is in trusted_sealers, exact
 *     domains compared case-insensitively) carries in its ARC-Authentication-Results a
 *     "dmarc=pass" resinfo whose header.from equals the message's RFC5322.From domain.
 *     The authserv-id of that payload does not matter: the seal's d= vouches for it.
 *
 * The newest such set wins. Returns 1 with *ret (strings borrowed from sets) when the
 * message is rescued, 0 when it is not, -ENOMEM. A trusted sealer's payload that does not
 * parse rescues nothing. */
typedef struct DmarcArcOverride {
        unsigned instance;              /* the trusted set's i= */
        const char *domain;             /* its ARC-Seal's d= */
        const char *selector;           /* its ARC-Seal's s= */
} DmarcArcOverride;

int dmarc_arc_override(const DmarcResult *r, ArcChainStatus chain, const ArcSetInfo *sets, size_t n_sets,
                       char * const *trusted_sealers, DmarcArcOverride *ret);
