/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Bayesian stage of mailsec-spamd: Gary Robinson's per-token probability
 *
 *         f(w) = (s·x + n·p(w)) / (s + n),   p(w) = b(w) / (b(w) + g(w)),
 *         b(w) = spam(w)/spam_msgs, g(w) = ham(w)/ham_msgs, n = spam(w) + ham(w)
 *
 * and Fisher's chi-square combining of the tokens whose f(w) is at least min_dev from
 * 0.5 (as bogofilter and SpamBayes do):
 *
 *         H = C⁻¹(−2 Σ ln f(w), 2N),  S = C⁻¹(−2 Σ ln (1 − f(w)), 2N),
 *         score = (1 + H − S) / 2            (0 ham … 1 spam)
 *
 * Per-domain statistics back off to the global ones: for a domain, the prior x of a
 * token is its global f(w) instead of the constant x, so a domain with few messages is
 * judged by the global counts and its own counts take over as they grow. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spam-token.h"

typedef struct SpamCounts {
        uint32_t spam;                  /* messages of the class that had the token */
        uint32_t ham;
} SpamCounts;

typedef struct SpamTotals {
        uint64_t spam;                  /* messages learned of each class */
        uint64_t ham;
} SpamTotals;

typedef struct SpamBayesParams {
        double robinson_s;              /* strength of the prior */
        double robinson_x;              /* prior for an unknown token */
        double min_dev;                 /* tokens with |f(w) − 0.5| below are ignored */
        double ham_cutoff;              /* score below: ham */
        double spam_cutoff;             /* score at or above: spam; between: unsure */
        size_t max_tokens;              /* the most extreme tokens used; 0: all */
        double bigram_s;                /* strength of the prior for bigram tokens; 0: robinson_s */
        double esf;                     /* effective size factor in (0, 1): the N tokens count as
                                         * esf·N independent ones; 0 or 1: as N */
        double order_s;                 /* > 0: a second estimate at this strength ... */
        double order_min_dev;           /* ... and this min_dev orders the messages within the
                                         * verdict band the first one gives (see classify());
                                         * only that one reads shape tokens (SPAM_TOKEN_SHAPE) */
        double order_form_s;            /* > 0: the ordering estimate's strength for the tokens
                                         * of how the message was made (header fields, client
                                         * address, features, HTML comments); 0: order_s */
        bool decide_shapes;             /* the deciding estimate reads shape tokens too (an
                                         * experiment: off in mailsec-spamd, see
                                         * tests/bench/README.md) */
        unsigned min_messages;          /* each class needs this many learned messages before a
                                         * ham or spam verdict; until then every verdict is
                                         * unsure, the score in the unsure band, in order */
        unsigned spam_min_messages;     /* each class needs this many learned messages before a
                                         * spam verdict; until then a spam verdict is unsure,
                                         * the score at the top of the unsure band, in order */
        double order_nats_per_message;  /* > 0: the ordering estimate's log-odds are at most
                                         * this many nats per learned message (both classes
                                         * together, the global totals); 0: no bound */
} SpamBayesParams;

/* Documented defaults (mailsec-spamd.conf(5)); tuned on the SpamAssassin corpus group 1
 * only. */
extern const SpamBayesParams spam_bayes_params_default;

typedef enum SpamVerdict {
        SPAM_VERDICT_HAM,
        SPAM_VERDICT_UNSURE,
        SPAM_VERDICT_SPAM,
        _SPAM_VERDICT_MAX,
        _SPAM_VERDICT_INVALID = -22,
} SpamVerdict;

const char* spam_verdict_to_string(SpamVerdict v) _const_;
SpamVerdict spam_verdict_from_string(const char *s) _pure_;

/* f(w) of one token. prior: the x to use (robinson_x globally, the global f(w) for a
 * domain). */
double spam_bayes_token_prob(const SpamBayesParams *p, SpamCounts c, SpamTotals t, double prior);

/* Looks up a token's counts: global (domain false) or of the message's domain. Returns 0
 * with *ret (zero counts for an unknown token), or negative errno. */
typedef int (*SpamCountsLookup)(uint64_t hash, bool domain, SpamCounts *ret, void *userdata);

typedef struct SpamTokenScore {
        size_t index;                   /* into SpamTokens */
        double prob;                    /* f(w) used */
} SpamTokenScore;

typedef struct SpamBayesResult {
        double score;
        SpamVerdict verdict;
        size_t n_used;                  /* tokens that entered the combination */
        SpamTokenScore *top;            /* the n_top most extreme, sorted by |f − 0.5| */
        size_t n_top;
} SpamBayesResult;

void spam_bayes_result_done(SpamBayesResult *r);

/* global: the global totals; domain: the domain's totals, or NULL when the message has no
 * domain statistics. want_top: how many of the strongest tokens to return in top[]. */
int spam_bayes_classify(const SpamBayesParams *p, const SpamTokens *tokens, SpamTotals global,
                        const SpamTotals *domain, SpamCountsLookup lookup, void *userdata,
                        size_t want_top, SpamBayesResult *ret);

/* The same, counting each piece of evidence once: parts[i] names the two w: tokens
 * (indexes into tokens) of bigram token i, its word twice for a shape reading ("c:FREE",
 * "!:free"), its field family's first token twice for a header token of a family (the
 * fields of a mailing list, ...), UINT32_MAX twice for other tokens (SpamTokenParts of the
 * tokenizer). From the most extreme token down, a token with parts enters only when none
 * of the tokens it names has been taken yet (alone, in a shape, in another bigram, by
 * another field of the family), a word only when nothing took it: the strongest reading
 * counts, and correlated evidence is not counted twice (the "tiling" of unigrams, shapes,
 * bigrams and field families). parts NULL: spam_bayes_classify(). */
int spam_bayes_classify_tiled(const SpamBayesParams *p, const SpamTokens *tokens, const uint32_t (*parts)[2],
                              SpamTotals global, const SpamTotals *domain, SpamCountsLookup lookup,
                              void *userdata, size_t want_top, SpamBayesResult *ret);

/* spam_bayes_classify_tiled() from counts looked up before: global_counts[i] and, with
 * domain, domain_counts[i] are those of tokens->hashes[i] (spam_store_counts_many()
 * looks them up together, overlapping their memory accesses). parts may be NULL. */
int spam_bayes_classify_counts(const SpamBayesParams *p, const SpamTokens *tokens, const uint32_t (*parts)[2],
                               SpamTotals global, const SpamTotals *domain, const SpamCounts *global_counts,
                               const SpamCounts *domain_counts, size_t want_top, SpamBayesResult *ret);

/* The inverse chi-square function Q(x², 2v) for even degrees of freedom, in [0, 1]. */
double spam_chi2q(double x2, unsigned v);
/* ln Q(x², 2v), finite where Q itself is below the smallest double. */
double spam_chi2q_ln(double x2, unsigned v);
/* ln (1 − Q(x², 2v)), the lower tail, finite where it is below the smallest double. */
double spam_chi2p_ln(double x2, unsigned v);
