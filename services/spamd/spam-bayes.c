/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The Bayesian stage of mailsec-spamd (see spam-bayes.h): Robinson's f(w) per token,
 * per-domain backoff to the global statistics, and Fisher's chi-square combining.
 *
 * Numerics: the combination sums logarithms, so it neither underflows nor overflows
 * however many tokens there are, and spam_chi2q() evaluates the Poisson sum
 *
 *         Q(x², 2v) = e^(−m) Σ_{i<v} m^i / i!,   m = x²/2
 *
 * directly only where that is exact (small m and v); otherwise from its largest term
 * down in log space (e^(−m) is 0 in a double beyond m ≈ 745, yet the sum can be far from
 * 0 when v is large too: a message with hundreds of strong tokens), or, when m < v and Q
 * is near 1, as 1 minus the other tail, so that Q stays monotonic to the last bit. */

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "spam-bayes.h"
#include "string-util.h"

/* The defaults, chosen by 5-fold cross-validation within group 1 of the SpamAssassin
 * public corpus only (easy-ham-1, hard-ham-1, spam-1: 2,750 ham and 500 spam; fold =
 * position in the list sorted by group and id, mod 5; train on four folds, classify the
 * fifth; group 2 is never looked at), with the tokenizer's defaults (bigrams on, no HMM),
 * by tests/bench/spam-bench --protocol cv --sweep. The grid: s in {0.45, 1, 3, 10}, x 0.5,
 * min_dev in {0.1, 0.2, 0.3, 0.4}, max_tokens in {50, 150, 400, all}. (1 − ROC AUC) over
 * the 3,250 cross-validated scores:
 *
 *   s = 0.45, min_dev 0.2, max_tokens 400     0.187 %   (2 fp, 18 fn, 89 unsure)
 *   s = 1,    min_dev 0.4, max_tokens 150     0.330 %
 *   s = 3,    min_dev 0.4, max_tokens 50      0.336 %
 *   s = 0.45, min_dev 0.3, all tokens         0.339 %
 *   s = 0.45, min_dev 0.1, max_tokens 150     0.552 %
 *
 * so the first row. Keeping every token (max_tokens 0) or only a few (50) both did worse
 * with bigrams on: the bigrams of common words are many and correlated. The cutoffs
 * 0.2 / 0.9 are SpamBayes' and were not tuned. */
const SpamBayesParams spam_bayes_params_default = {
        .robinson_s = 0.45,
        .robinson_x = 0.5,
        .min_dev = 0.2,
        .ham_cutoff = 0.2,
        .spam_cutoff = 0.9,
        .max_tokens = 400,
};

static const char* const verdict_table[_SPAM_VERDICT_MAX] = {
        [SPAM_VERDICT_HAM] = "ham",
        [SPAM_VERDICT_UNSURE] = "unsure",
        [SPAM_VERDICT_SPAM] = "spam",
};

const char* spam_verdict_to_string(SpamVerdict v) {
        if ((unsigned) v >= _SPAM_VERDICT_MAX)
                return NULL;
        return verdict_table[v];
}

SpamVerdict spam_verdict_from_string(const char *s) {
        if (!s)
                return _SPAM_VERDICT_INVALID;
        for (int i = 0; i < _SPAM_VERDICT_MAX; i++)
                if (streq(s, verdict_table[i]))
                        return (SpamVerdict) i;
        return _SPAM_VERDICT_INVALID;
}

double spam_bayes_token_prob(const SpamBayesParams *p, SpamCounts c, SpamTotals t, double prior) {
        double b, g, pw, n, s;

        assert(p);

        n = (double) c.spam + (double) c.ham;
        if (n <= 0)
                return prior;

        /* a class with no messages: its counts cannot be normalised, only the other's */
        b = t.spam > 0 ? (double) c.spam / (double) t.spam : 0.0;
        g = t.ham > 0 ? (double) c.ham / (double) t.ham : 0.0;
        if (b + g <= 0)
                return prior;
        pw = b / (b + g);

        s = p->robinson_s;
        return (s * prior + n * pw) / (s + n);
}

double spam_chi2q(double x2, unsigned v) {
        double m, lm, lmax, sum, term;

        if (v == 0)
                return 1.0;
        if (!(x2 > 0))                  /* also NaN */
                return 1.0;
        if (isinf(x2))
                return 0.0;

        m = x2 / 2.0;
        if (m < 700.0 && v < 100) {
                /* the direct series is exact enough here */
                term = exp(-m);
                sum = term;
                for (unsigned i = 1; i < v; i++) {
                        term *= m / i;
                        sum += term;
                }
                return MIN(sum, 1.0);
        }

        lm = log(m);
        if (m < (double) v) {
                /* The mode of the Poisson terms lies beyond the sum: Q is close to 1 and is
                 * best had as 1 − P, P the tail from i = v on, whose terms only fall. */
                term = exp(-m + v * lm - lgamma(v + 1.0));
                sum = term;
                for (unsigned i = v + 1; term > sum * 1e-17; i++) {
                        term *= m / i;
                        sum += term;
                }
                return CLAMP(1.0 - sum, 0.0, 1.0);
        }

        /* The largest term is the last one, i = v − 1: sum downwards from it in log space
         * (its value alone may be below the smallest double while the sum is not). */
        lmax = -m + (v - 1) * lm - lgamma((double) v);
        sum = 1.0;
        term = 1.0;
        for (unsigned i = v - 1; i > 0; i--) {
                term *= i / m;                  /* t(i−1) / t(i) */
                sum += term;
                if (term < sum * 1e-17)
                        break;
        }
        return CLAMP(exp(lmax + log(sum)), 0.0, 1.0);
}

void spam_bayes_result_done(SpamBayesResult *r) {
        if (!r)
                return;
        free(r->top);
        r->top = NULL;
        r->n_top = 0;
}

static int score_cmp(const void *a, const void *b) {
        const SpamTokenScore *x = a, *y = b;
        double dx = fabs(x->prob - 0.5), dy = fabs(y->prob - 0.5);

        if (dx != dy)
                return dx > dy ? -1 : 1;
        /* ties by position, so the result does not depend on qsort's order */
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Partially orders v[0..n) so that v[0..k) hold the k most extreme tokens (quickselect
 * with Hoare's partition; score_cmp is a strict order, ties being broken by index). */
static void select_extreme(SpamTokenScore *v, size_t n, size_t k) {
        ptrdiff_t lo = 0, hi = (ptrdiff_t) n - 1, target = (ptrdiff_t) k - 1;

        assert(k > 0 && k <= n);

        while (lo < hi) {
                SpamTokenScore pivot = v[lo + (hi - lo) / 2], tmp;
                ptrdiff_t i = lo, j = hi;

                while (i <= j) {
                        while (score_cmp(&v[i], &pivot) < 0)
                                i++;
                        while (score_cmp(&v[j], &pivot) > 0)
                                j--;
                        if (i <= j) {
                                tmp = v[i];
                                v[i] = v[j];
                                v[j] = tmp;
                                i++;
                                j--;
                        }
                }
                /* v[lo..j] come before the pivot, v[i..hi] after, between: the pivot */
                if (target <= j)
                        hi = j;
                else if (target >= i)
                        lo = i;
                else
                        break;
        }
}

int spam_bayes_classify(const SpamBayesParams *p, const SpamTokens *tokens, SpamTotals global,
                        const SpamTotals *domain, SpamCountsLookup lookup, void *userdata,
                        size_t want_top, SpamBayesResult *ret) {
        _cleanup_free_ SpamTokenScore *v = NULL;
        bool use_domain;
        double sum_ln_f = 0, sum_ln_1f = 0, score, h, s;
        size_t n = 0, used;
        int r;

        assert(p);
        assert(tokens);
        assert(lookup);
        assert(ret);

        use_domain = domain && domain->spam + domain->ham > 0;

        if (tokens->n > 0) {
                v = malloc(tokens->n * sizeof(SpamTokenScore));
                if (!v)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < tokens->n; i++) {
                SpamCounts c = {};
                double f;

                r = lookup(tokens->hashes[i], false, &c, userdata);
                if (r < 0)
                        return r;
                f = spam_bayes_token_prob(p, c, global, p->robinson_x);

                if (use_domain) {
                        SpamCounts dc = {};

                        r = lookup(tokens->hashes[i], true, &dc, userdata);
                        if (r < 0)
                                return r;
                        f = spam_bayes_token_prob(p, dc, *domain, f);
                }

                if (fabs(f - 0.5) < p->min_dev)
                        continue;
                v[n++] = (SpamTokenScore) { .index = i, .prob = f };
        }

        used = n;
        if (p->max_tokens > 0 && used > p->max_tokens) {
                select_extreme(v, n, p->max_tokens);
                used = p->max_tokens;
        }

        for (size_t i = 0; i < used; i++) {
                /* f is in (0, 1) when s > 0; keep the logarithms finite for s = 0 too */
                double f = CLAMP(v[i].prob, 1e-9, 1.0 - 1e-9);

                sum_ln_f += log(f);
                sum_ln_1f += log1p(-f);
        }

        if (used == 0)
                score = 0.5;
        else {
                h = spam_chi2q(-2.0 * sum_ln_f, (unsigned) MIN(used, (size_t) UINT_MAX));
                s = spam_chi2q(-2.0 * sum_ln_1f, (unsigned) MIN(used, (size_t) UINT_MAX));
                score = CLAMP((1.0 + h - s) / 2.0, 0.0, 1.0);
        }

        *ret = (SpamBayesResult) {
                .score = score,
                .verdict = score >= p->spam_cutoff ? SPAM_VERDICT_SPAM :
                           score < p->ham_cutoff ? SPAM_VERDICT_HAM : SPAM_VERDICT_UNSURE,
                .n_used = used,
        };

        if (want_top > 0 && used > 0) {
                size_t k = MIN(want_top, used);

                qsort(v, used, sizeof(SpamTokenScore), score_cmp);
                ret->top = TAKE_PTR(v);
                ret->n_top = k;
        }
        return 0;
}
