/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "spam-bayes.h"

/* Q(x², 2v), the upper tail of the chi-square distribution, against values computed with
 * 40-digit arithmetic (the regularised upper incomplete gamma function Γ(v, x²/2) / Γ(v))
 * and the textbook 5 % critical values. */
static const struct {
        double x2;
        unsigned v;
        double q;
} chi2q_cases[] = {
        { 2, 1, 0.36787944117144232 },                  /* e^-1 */
        { 4, 2, 0.40600584970983808 },                  /* 3 e^-2 */
        { 18.307, 5, 0.05000058909139812 },             /* chi-square 10 dof, 5 % */
        { 31.41, 10, 0.050005239202315168 },            /* 20 dof */
        { 124.342, 50, 0.050000715769971768 },          /* 100 dof */
        { 0.5, 3, 0.99783850331023749 },
        { 10, 20, 0.99999965478641791 },
        { 60, 2, 2.9008631203404541e-12 },
        { 200, 150, 0.99999811578953396 },
        { 1500, 300, 1.3615260357378553e-78 },          /* e^-750 alone underflows */
        { 1600, 700, 0.00014405015382104583 },
};

START_TEST(test_chi2q_table)
{
        for (size_t i = 0; i < ELEMENTSOF(chi2q_cases); i++) {
                double q = spam_chi2q(chi2q_cases[i].x2, chi2q_cases[i].v);

                ck_assert_msg(fabs(q - chi2q_cases[i].q) <= 1e-10 * chi2q_cases[i].q,
                              "Q(%g, %u) = %.17g, expected %.17g", chi2q_cases[i].x2, 2 * chi2q_cases[i].v,
                              q, chi2q_cases[i].q);
        }
}
END_TEST

START_TEST(test_chi2q_limits)
{
        double prev = 1.0;

        ck_assert(spam_chi2q(0, 5) == 1.0);
        ck_assert(spam_chi2q(-3, 5) == 1.0);
        ck_assert(spam_chi2q(NAN, 5) == 1.0);
        ck_assert(spam_chi2q(INFINITY, 5) == 0.0);
        /* 1.8e-439: below the smallest double, never negative or NaN */
        ck_assert(spam_chi2q(3000, 150) >= 0.0 && spam_chi2q(3000, 150) < 1e-300);
        /* many strong tokens: neither 0/0 nor above 1 */
        ck_assert(spam_chi2q(5000, 3000) > 0.99 && spam_chi2q(5000, 3000) <= 1.0);
        /* decreasing in x² */
        for (double x = 1; x < 3000; x *= 1.3) {
                double q = spam_chi2q(x, 150);

                ck_assert(q <= prev);
                ck_assert(q >= 0 && q <= 1);
                prev = q;
        }
}
END_TEST

static const SpamBayesParams params = {
        .robinson_s = 1.0,
        .robinson_x = 0.5,
        .min_dev = 0.1,
        .ham_cutoff = 0.2,
        .spam_cutoff = 0.9,
        .max_tokens = 0,
};

START_TEST(test_token_prob)
{
        static const struct {
                SpamCounts c;
                SpamTotals t;
                double prior, f;
        } cases[] = {
                /* b = 0.3, g = 0.1, p = 0.75, n = 4: (0.5 + 3) / 5 */
                { { 3, 1 }, { 10, 10 }, 0.5, 0.7 },
                /* unknown token: the prior */
                { { 0, 0 }, { 10, 10 }, 0.5, 0.5 },
                { { 0, 0 }, { 10, 10 }, 0.42, 0.42 },
                /* seen only in ham: p = 0, n = 2: 0.5 / 3 */
                { { 0, 2 }, { 5, 5 }, 0.5, 0.5 / 3 },
                /* no ham learned yet: p = 1, n = 2: 2.5 / 3 */
                { { 2, 0 }, { 4, 0 }, 0.5, 2.5 / 3 },
                /* the class sizes are normalised: 1 of 1 spam vs 10 of 100 ham, p = 1/1.1 */
                { { 1, 10 }, { 1, 100 }, 0.5, (0.5 + 11 / 1.1) / 12 },
                /* a domain prior pulls a rare token towards it: p = 0, n = 2, (0.7 + 0) / 3 */
                { { 0, 2 }, { 5, 5 }, 0.7, 0.7 / 3 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                double f = spam_bayes_token_prob(&params, cases[i].c, cases[i].t, cases[i].prior);

                ck_assert_msg(fabs(f - cases[i].f) < 1e-12, "case %zu: %.15g, expected %.15g", i, f, cases[i].f);
        }
}
END_TEST

/* A fake store: token i has the global and domain counts of table[i]. */
typedef struct FakeToken {
        uint64_t hash;
        SpamCounts global, domain;
} FakeToken;

typedef struct Fake {
        const FakeToken *v;
        size_t n;
        unsigned domain_lookups;
} Fake;

static int fake_lookup(uint64_t hash, bool domain, SpamCounts *ret, void *userdata) {
        Fake *f = userdata;

        if (domain)
                f->domain_lookups++;
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].hash == hash) {
                        *ret = domain ? f->v[i].domain : f->v[i].global;
                        return 0;
                }
        *ret = (SpamCounts) {};
        return 0;
}

static int failing_lookup(uint64_t hash, bool domain, SpamCounts *ret, void *userdata) {
        return -EIO;
}

static void tokens_of(SpamTokens *t, const FakeToken *v, size_t n) {
        *t = (SpamTokens) SPAM_TOKENS_NULL;
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(spam_tokens_add(t, v[i].hash, SPAM_TOKEN_WORD, NULL, 0), 1);
}

START_TEST(test_classify_hand_computed)
{
        /* with totals 10/10 and s = 1:
         *   1: 9 spam 0 ham -> (0.5 + 9) / 10 = 0.95
         *   2: 3 spam 1 ham -> 0.7
         *   3: 1 spam 1 ham -> 0.5 (ignored: min_dev)
         *   4: unknown     -> 0.5 (ignored) */
        static const FakeToken table[] = {
                { 1, { 9, 0 }, {} },
                { 2, { 3, 1 }, {} },
                { 3, { 1, 1 }, {} },
                { 4, {}, {} },
        };
        SpamTotals totals = { 10, 10 };
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t;
        double h, s;

        /* one token: the score is its f(w) (Q(−2 ln f, 2) = f) */
        tokens_of(&t, table + 1, 1);
        ck_assert_int_eq(spam_bayes_classify(&params, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.7) < 1e-12);
        ck_assert_uint_eq(r.n_used, 1);
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
        ck_assert_ptr_null(r.top);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        /* all four: two enter, 0.95 and 0.7 */
        tokens_of(&t, table, ELEMENTSOF(table));
        ck_assert_int_eq(spam_bayes_classify(&params, &t, totals, NULL, fake_lookup, &fake, 3, &r), 0);
        ck_assert_uint_eq(r.n_used, 2);
        h = 0.95 * 0.7 * (1 - log(0.95 * 0.7));
        s = 0.05 * 0.3 * (1 - log(0.05 * 0.3));
        ck_assert_msg(fabs(r.score - (1 + h - s) / 2) < 1e-12, "score %.15g", r.score);
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_SPAM);
        ck_assert_uint_eq(r.n_top, 2);
        ck_assert_uint_eq(r.top[0].index, 0);
        ck_assert(fabs(r.top[0].prob - 0.95) < 1e-12);
        ck_assert_uint_eq(r.top[1].index, 1);
        ck_assert_uint_eq(fake.domain_lookups, 0);
        spam_bayes_result_done(&r);
        ck_assert_ptr_null(r.top);
        spam_tokens_done(&t);

        /* nothing known: 0.5, unsure */
        tokens_of(&t, table + 3, 1);
        ck_assert_int_eq(spam_bayes_classify(&params, &t, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert(r.score == 0.5);
        ck_assert_uint_eq(r.n_used, 0);
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
        spam_bayes_result_done(&r);

        /* a failing store fails the classification */
        ck_assert_int_eq(spam_bayes_classify(&params, &t, totals, NULL, failing_lookup, NULL, 0, &r), -EIO);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_classify_two_tokens)
{
        /* f = 0.9 (9 of 10 spam vs 1 of 10 ham, s = 0: p exactly) and 0.8 */
        static const FakeToken table[] = {
                { 10, { 9, 1 }, {} },
                { 11, { 8, 2 }, {} },
        };
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t;

        p.robinson_s = 0;
        tokens_of(&t, table, ELEMENTSOF(table));
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 10, 10 }, NULL, fake_lookup, &fake, 0, &r), 0);
        /* H = Q(−2 ln 0.72, 4), S = Q(−2 ln 0.02, 4), computed by hand */
        ck_assert_msg(fabs(r.score - 0.9291412340556515) < 1e-12, "score %.16g", r.score);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_classify_max_tokens)
{
        /* 40 mildly hammy tokens (f = 0.3) and 3 very spammy ones (f = 0.99): with
         * max_tokens 3 only the spammy three count */
        FakeToken table[43];
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t;

        p.robinson_s = 0;
        for (size_t i = 0; i < 40; i++)
                table[i] = (FakeToken) { 100 + i, { 3, 7 }, {} };
        for (size_t i = 40; i < 43; i++)
                table[i] = (FakeToken) { 100 + i, { 99, 1 }, {} };
        tokens_of(&t, table, ELEMENTSOF(table));

        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 100, 100 }, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 43);
        ck_assert(r.score < 0.2);
        spam_bayes_result_done(&r);

        p.max_tokens = 3;
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 100, 100 }, NULL, fake_lookup, &fake, 10, &r), 0);
        ck_assert_uint_eq(r.n_used, 3);
        ck_assert_uint_eq(r.n_top, 3);
        for (size_t i = 0; i < 3; i++) {
                ck_assert_uint_ge(r.top[i].index, 40);
                ck_assert(fabs(r.top[i].prob - 0.99) < 1e-12);
        }
        ck_assert(r.score > 0.99);
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_SPAM);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_classify_domain_backoff)
{
        /* globally spammy (f = 0.7); the domain has seen it twice, in ham only:
         * f = (1 · 0.7 + 2 · 0) / 3 */
        static const FakeToken table[] = {
                { 20, { 3, 1 }, { 0, 2 } },
                { 21, { 3, 1 }, { 0, 0 } },
        };
        SpamTotals global = { 10, 10 }, domain = { 5, 5 }, empty = {};
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t;

        tokens_of(&t, table, 1);
        ck_assert_int_eq(spam_bayes_classify(&params, &t, global, &domain, fake_lookup, &fake, 1, &r), 0);
        ck_assert_msg(fabs(r.score - 0.7 / 3) < 1e-12, "score %.15g", r.score);
        ck_assert(fabs(r.top[0].prob - 0.7 / 3) < 1e-12);
        ck_assert_uint_eq(fake.domain_lookups, 1);
        spam_bayes_result_done(&r);

        /* a domain without messages: the global statistics alone */
        ck_assert_int_eq(spam_bayes_classify(&params, &t, global, &empty, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.7) < 1e-12);
        ck_assert_uint_eq(fake.domain_lookups, 1);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        /* a token the domain has not seen keeps its global f(w) */
        tokens_of(&t, table + 1, 1);
        ck_assert_int_eq(spam_bayes_classify(&params, &t, global, &domain, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.7) < 1e-12);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* spam_bayes_classify_counts() from counts looked up before gives what the look-up
 * callback gives, with and without a domain and tiling, in the order of the tokens. */
START_TEST(test_classify_counts)
{
        static const FakeToken table[] = {
                { 60, { 3, 1 }, { 0, 2 } },
                { 61, { 9, 0 }, { 1, 0 } },
                { 62, { 0, 7 }, { 0, 0 } },
                { 63, { 1, 1 }, { 2, 0 } },
                { 64, { 0, 0 }, { 0, 0 } },
                { 65, { 5, 1 }, { 0, 3 } },
        };
        static const uint32_t parts[6][2] = {
                { UINT32_MAX, UINT32_MAX },
                { UINT32_MAX, UINT32_MAX },
                { 0, 1 },
                { UINT32_MAX, UINT32_MAX },
                { UINT32_MAX, UINT32_MAX },
                { 3, 3 },
        };
        SpamTotals global = { 10, 10 }, domain = { 4, 6 };
        SpamCounts cg[ELEMENTSOF(table)], cd[ELEMENTSOF(table)];
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamTokens t;

        p.order_s = 0.01;
        tokens_of(&t, table, ELEMENTSOF(table));
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                cg[i] = table[i].global;
                cd[i] = table[i].domain;
        }
        for (unsigned with_domain = 0; with_domain < 2; with_domain++)
                for (unsigned tiled = 0; tiled < 2; tiled++) {
                        const SpamTotals *d = with_domain ? &domain : NULL;
                        SpamBayesResult a, b;

                        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, tiled ? parts : NULL, global, d,
                                                                   fake_lookup, &fake, 6, &a), 0);
                        ck_assert_int_eq(spam_bayes_classify_counts(&p, &t, tiled ? parts : NULL, global, d,
                                                                    cg, with_domain ? cd : NULL, 6, &b), 0);
                        ck_assert_msg(a.score == b.score, "domain %u tiled %u: %.17g against %.17g",
                                      with_domain, tiled, a.score, b.score);
                        ck_assert_uint_eq(a.n_used, b.n_used);
                        ck_assert_uint_eq(a.n_top, b.n_top);
                        for (size_t k = 0; k < a.n_top; k++) {
                                ck_assert_uint_eq(a.top[k].index, b.top[k].index);
                                ck_assert(a.top[k].prob == b.top[k].prob);
                        }
                        spam_bayes_result_done(&a);
                        spam_bayes_result_done(&b);
                }
        spam_tokens_done(&t);
}
END_TEST

/* Tiling: a bigram and its words are one piece of evidence; the most extreme reading of it
 * enters, the others do not. */
START_TEST(test_classify_tiled)
{
        static const uint32_t parts[3][2] = {
                { UINT32_MAX, UINT32_MAX },
                { UINT32_MAX, UINT32_MAX },
                { 0, 1 },                       /* token 2 is the bigram of tokens 0 and 1 */
        };
        static const FakeToken bigram_wins[] = {
                { 30, { 90, 10 }, {} },         /* 0.9 */
                { 31, { 65, 35 }, {} },         /* 0.65 */
                { 32, { 99, 1 }, {} },          /* 0.99 */
        };
        static const FakeToken word_wins[] = {
                { 40, { 99, 1 }, {} },          /* 0.99 */
                { 41, { 80, 20 }, {} },         /* 0.8 */
                { 42, { 90, 10 }, {} },         /* 0.9: its first word is already in */
        };
        SpamTotals totals = { 100, 100 };
        SpamBayesParams p = params;
        Fake fake = { bigram_wins, ELEMENTSOF(bigram_wins), 0 };
        SpamBayesResult r;
        SpamTokens t = SPAM_TOKENS_NULL;

        p.robinson_s = 0;
        ck_assert_int_eq(spam_tokens_add(&t, 30, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 31, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 32, SPAM_TOKEN_BIGRAM, NULL, 0), 1);

        /* the bigram is the most extreme: it alone stands for both words */
        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, parts, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert_uint_eq(r.n_used, 1);
        ck_assert_uint_eq(r.top[0].index, 2);
        ck_assert_msg(fabs(r.score - 0.99) < 1e-12, "score %.15g", r.score);
        spam_bayes_result_done(&r);

        /* without parts (and with spam_bayes_classify()) all three count */
        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, NULL, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 3);
        spam_bayes_result_done(&r);
        ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 3);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        /* a word is the most extreme: the bigram containing it stays out, the other word
         * enters on its own */
        fake = (Fake) { word_wins, ELEMENTSOF(word_wins), 0 };
        ck_assert_int_eq(spam_tokens_add(&t, 40, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 41, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 42, SPAM_TOKEN_BIGRAM, NULL, 0), 1);
        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, parts, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert_uint_eq(r.n_used, 2);
        ck_assert_uint_eq(r.top[0].index, 0);
        ck_assert_uint_eq(r.top[1].index, 1);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* Tiling decides by the exact order of |f − 0.5|, also where two f agree in their upper
 * 48 bits: with a prior of 1e-12, a token seen in one spam and one seen in two differ by
 * 2.4e-13. The bigram comes first by position, the word in it is the more extreme. */
START_TEST(test_classify_tiled_close)
{
        static const uint32_t parts[3][2] = {
                { 1, 2 },                       /* token 0 is the bigram of tokens 1 and 2 */
                { UINT32_MAX, UINT32_MAX },
                { UINT32_MAX, UINT32_MAX },
        };
        static const FakeToken close[] = {
                { 50, { 1, 0 }, {} },           /* 1 − 4.8e-13 */
                { 51, { 2, 0 }, {} },           /* 1 − 2.4e-13 */
                { 52, { 9, 1 }, {} },           /* 0.9 */
        };
        SpamTotals totals = { 100, 100 };
        SpamBayesParams p = params;
        Fake fake = { close, ELEMENTSOF(close), 0 };
        SpamBayesResult r;
        SpamTokens t = SPAM_TOKENS_NULL;

        p.robinson_s = 1e-12;
        ck_assert_int_eq(spam_tokens_add(&t, 50, SPAM_TOKEN_BIGRAM, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 51, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 52, SPAM_TOKEN_WORD, NULL, 0), 1);

        /* the word seen twice enters, the bigram with it stays out, the other word enters
         * alone; in position order the bigram would have stood for both words */
        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, parts, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert_uint_eq(r.n_used, 2);
        ck_assert_uint_eq(r.top[0].index, 1);
        ck_assert_uint_eq(r.top[1].index, 2);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* The same with many such tokens in one run of equal upper bits: a short run is finished
 * by insertion, a long one (over 128 tokens) by sorting the whole keys again; tiling must
 * come out the same either way. Pair i: bigram 3i of words 3i + 1 (seen in two spam, the
 * more extreme) and 3i + 2 (0.9). */
START_TEST(test_classify_tiled_close_runs)
{
        static const size_t pairs[] = { 20, 200 };

        for (size_t k = 0; k < ELEMENTSOF(pairs); k++) {
                size_t n = 3 * pairs[k];
                FakeToken *table = calloc(n, sizeof(FakeToken));
                uint32_t (*parts)[2] = calloc(n, sizeof(*parts));
                SpamTotals totals = { 100, 100 };
                SpamBayesParams p = params;
                Fake fake = { NULL, n, 0 };
                SpamBayesResult r;
                SpamTokens t = SPAM_TOKENS_NULL;

                ck_assert_ptr_nonnull(table);
                ck_assert_ptr_nonnull(parts);
                fake.v = table;
                p.robinson_s = 1e-12;
                for (size_t i = 0; i < pairs[k]; i++) {
                        table[3 * i] = (FakeToken) { 1000 + 3 * i, { 1, 0 }, {} };
                        table[3 * i + 1] = (FakeToken) { 1001 + 3 * i, { 2, 0 }, {} };
                        table[3 * i + 2] = (FakeToken) { 1002 + 3 * i, { 9, 1 }, {} };
                        parts[3 * i][0] = (uint32_t) (3 * i + 1);
                        parts[3 * i][1] = (uint32_t) (3 * i + 2);
                        parts[3 * i + 1][0] = parts[3 * i + 1][1] = UINT32_MAX;
                        parts[3 * i + 2][0] = parts[3 * i + 2][1] = UINT32_MAX;
                        ck_assert_int_eq(spam_tokens_add(&t, table[3 * i].hash, SPAM_TOKEN_BIGRAM, NULL, 0), 1);
                        ck_assert_int_eq(spam_tokens_add(&t, table[3 * i + 1].hash, SPAM_TOKEN_WORD, NULL, 0), 1);
                        ck_assert_int_eq(spam_tokens_add(&t, table[3 * i + 2].hash, SPAM_TOKEN_WORD, NULL, 0), 1);
                }

                ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, (const uint32_t (*)[2]) parts, totals, NULL,
                                                           fake_lookup, &fake, n, &r), 0);
                ck_assert_uint_eq(r.n_used, 2 * pairs[k]);
                for (size_t i = 0; i < r.n_top; i++)
                        ck_assert_msg(r.top[i].index % 3 != 0, "%zu pairs: bigram %zu used", pairs[k],
                                      r.top[i].index);
                spam_bayes_result_done(&r);
                spam_tokens_done(&t);
                free(parts);
                free(table);
        }
}
END_TEST

/* Shape readings ("c:FREE", "!:free") name their word twice in parts: the word counts once,
 * in its most extreme reading among the word itself, its shapes and its bigrams. */
START_TEST(test_classify_tiled_shapes)
{
        static const uint32_t parts[5][2] = {
                { UINT32_MAX, UINT32_MAX },     /* w:free */
                { 0, 0 },                       /* c:FREE */
                { 0, 0 },                       /* !:free */
                { UINT32_MAX, UINT32_MAX },     /* w:money */
                { 0, 3 },                       /* b:free 1 money */
        };
        static const FakeToken shape_wins[] = {
                { 50, { 70, 30 }, {} },         /* 0.7 */
                { 51, { 97, 3 }, {} },          /* 0.97 */
                { 52, { 90, 10 }, {} },         /* 0.9: its word is taken */
                { 53, { 20, 80 }, {} },         /* 0.2 */
                { 54, { 95, 5 }, {} },          /* 0.95: its first word is taken */
        };
        SpamTotals totals = { 100, 100 };
        SpamBayesParams p = params;
        Fake fake = { shape_wins, ELEMENTSOF(shape_wins), 0 };
        SpamBayesResult r;
        SpamTokens t = SPAM_TOKENS_NULL;

        p.robinson_s = 0;
        p.decide_shapes = true;                 /* the tokens used are the deciding estimate's */
        ck_assert_int_eq(spam_tokens_add(&t, 50, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 51, SPAM_TOKEN_SHAPE, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 52, SPAM_TOKEN_SHAPE, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 53, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 54, SPAM_TOKEN_BIGRAM, NULL, 0), 1);

        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, parts, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert_uint_eq(r.n_used, 2);
        ck_assert_uint_eq(r.top[0].index, 1);           /* c:FREE stands for "free" */
        ck_assert_uint_eq(r.top[1].index, 3);           /* money alone: the bigram lost its first word */
        spam_bayes_result_done(&r);

        /* untiled, all five count */
        ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 5);
        spam_bayes_result_done(&r);

        /* without decide_shapes, the deciding estimate leaves both shapes out */
        p.decide_shapes = false;
        ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 3);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* A field family (the fields a mailing-list manager adds, ...) names its first header token
 * twice in parts: the family counts once, in its most extreme token, beside the body. */
START_TEST(test_classify_tiled_family)
{
        static const uint32_t parts[5][2] = {
                { 0, 0 },                       /* hf:list-id */
                { 0, 0 },                       /* h:list-id:offers */
                { 0, 0 },                       /* hf:precedence */
                { UINT32_MAX, UINT32_MAX },     /* w:pills */
                { UINT32_MAX, UINT32_MAX },     /* h:subject:pills */
        };
        static const FakeToken list_spam[] = {
                { 60, { 10, 90 }, {} },         /* 0.1 */
                { 61, { 5, 95 }, {} },          /* 0.05: stands for the list */
                { 62, { 20, 80 }, {} },         /* 0.2 */
                { 63, { 99, 1 }, {} },          /* 0.99 */
                { 64, { 90, 10 }, {} },         /* 0.9 */
        };
        SpamTotals totals = { 100, 100 };
        SpamBayesParams p = params;
        Fake fake = { list_spam, ELEMENTSOF(list_spam), 0 };
        SpamBayesResult r;
        SpamTokens t = SPAM_TOKENS_NULL;
        double tiled;

        p.robinson_s = 0;
        ck_assert_int_eq(spam_tokens_add(&t, 60, SPAM_TOKEN_HEADER, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 61, SPAM_TOKEN_HEADER, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 62, SPAM_TOKEN_HEADER, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 63, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 64, SPAM_TOKEN_HEADER, NULL, 0), 1);

        ck_assert_int_eq(spam_bayes_classify_tiled(&p, &t, parts, totals, NULL, fake_lookup, &fake, 5, &r), 0);
        ck_assert_uint_eq(r.n_used, 3);
        ck_assert_uint_eq(r.top[0].index, 3);
        ck_assert_uint_eq(r.top[1].index, 1);
        ck_assert_uint_eq(r.top[2].index, 4);
        tiled = r.score;
        spam_bayes_result_done(&r);

        /* counted field by field, the list outweighs the body */
        ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert_uint_eq(r.n_used, 5);
        ck_assert_msg(r.score < tiled, "untiled %.15g, tiled %.15g", r.score, tiled);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* bigram_s: a stronger prior for bigram tokens only. */
START_TEST(test_classify_bigram_prior)
{
        static const FakeToken table[] = {
                { 50, { 9, 0 }, {} },
        };
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t = SPAM_TOKENS_NULL;

        ck_assert_int_eq(spam_tokens_add(&t, 50, SPAM_TOKEN_BIGRAM, NULL, 0), 1);
        /* s = 1: (0.5 + 9) / 10 */
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 10, 10 }, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.95) < 1e-12);
        spam_bayes_result_done(&r);
        /* bigram_s = 9: (4.5 + 9) / 18 */
        p.bigram_s = 9;
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 10, 10 }, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.75) < 1e-12);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        /* a word keeps robinson_s */
        ck_assert_int_eq(spam_tokens_add(&t, 50, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 10, 10 }, NULL, fake_lookup, &fake, 0, &r), 0);
        ck_assert(fabs(r.score - 0.95) < 1e-12);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);
}
END_TEST

/* ln Q agrees with Q where Q is a double, and stays finite and decreasing below. */
START_TEST(test_chi2q_ln)
{
        double prev = 0;

        for (unsigned v = 1; v < 2000; v = v * 3 / 2 + 1)
                for (double x = 0.5; x < 20000; x *= 1.7) {
                        double q = spam_chi2q(x, v), lq = spam_chi2q_ln(x, v);

                        ck_assert(isfinite(lq) && lq <= 0);
                        if (q > 1e-300)
                                ck_assert_msg(fabs(lq - log(q)) <= 1e-9 * fmax(1.0, fabs(log(q))),
                                              "ln Q(%g, %u) = %.17g, log Q = %.17g", x, 2 * v, lq, log(q));
                }
        ck_assert(spam_chi2q_ln(0, 5) == 0);
        ck_assert(spam_chi2q_ln(INFINITY, 5) == -INFINITY);
        for (double x = 1000; x < 100000; x *= 1.3) {
                double lq = spam_chi2q_ln(x, 150);

                ck_assert(lq < prev);
                prev = lq;
        }
}
END_TEST

/* Strong evidence both ways saturates both tails; such messages are still ranked (by the
 * more extreme tail), inside a band that cannot reach a cutoff. */
START_TEST(test_classify_saturated)
{
        FakeToken table[800];
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesResult r;
        SpamTokens t;
        double more_spam, more_ham;

        p.robinson_s = 0;
        for (size_t i = 0; i < 400; i++)
                table[i] = (FakeToken) { 1000 + i, { 999, 1 }, {} };
        for (size_t i = 400; i < 800; i++)
                table[i] = (FakeToken) { 1000 + i, { 1, 999 }, {} };

        /* 400 spammy and 390 hammy tokens */
        tokens_of(&t, table, 790);
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 1000, 1000 }, NULL, fake_lookup, &fake, 0, &r), 0);
        more_spam = r.score;
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        /* 390 spammy and 400 hammy */
        tokens_of(&t, table + 10, 790);
        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 1000, 1000 }, NULL, fake_lookup, &fake, 0, &r), 0);
        more_ham = r.score;
        ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
        spam_bayes_result_done(&r);
        spam_tokens_done(&t);

        ck_assert_msg(more_spam > 0.5 && more_ham < 0.5, "%.17g %.17g", more_spam, more_ham);
        ck_assert(fabs(more_spam - 0.5) < 1e-9 && fabs(more_ham - 0.5) < 1e-9);
}
END_TEST

/* Among saturated messages, the tokens of how a message was made weigh more: with the
 * text's evidence balanced, three header tokens of one class place the message on that
 * class's side of the middle, while the same three as words leave it at the middle. */
START_TEST(test_classify_saturated_form)
{
        FakeToken table[812];
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        double score[3];

        p.robinson_s = 0;
        for (size_t i = 0; i < 406; i++)
                table[i] = (FakeToken) { 3000 + i, { 999, 1 }, {} };    /* spammy */
        for (size_t i = 406; i < 812; i++)
                table[i] = (FakeToken) { 3000 + i, { 1, 999 }, {} };    /* hammy */

        for (int m = 0; m < 3; m++) {
                SpamTokens t = SPAM_TOKENS_NULL;
                SpamBayesResult r;

                /* 403 tokens of each class; the first three spammy ones (m 0), hammy ones
                 * (m 1) are header tokens, or none is (m 2) */
                for (size_t i = 0; i < 403; i++) {
                        bool form = i < 3 && m < 2;

                        ck_assert_int_eq(spam_tokens_add(&t, table[i + (m == 1 ? 3 : 0)].hash,
                                                         form && m == 0 ? SPAM_TOKEN_HEADER : SPAM_TOKEN_WORD,
                                                         NULL, 0), 1);
                        ck_assert_int_eq(spam_tokens_add(&t, table[406 + i + (m == 0 ? 3 : 0)].hash,
                                                         form && m == 1 ? SPAM_TOKEN_HEADER : SPAM_TOKEN_WORD,
                                                         NULL, 0), 1);
                }
                ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 1000, 1000 }, NULL, fake_lookup, &fake,
                                                     0, &r), 0);
                ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
                ck_assert_msg(fabs(r.score - 0.5) < 1e-9, "message %d: %.17g", m, r.score);
                score[m] = r.score;
                spam_bayes_result_done(&r);
                spam_tokens_done(&t);
        }
        ck_assert_msg(score[0] > 0.5 && score[1] < 0.5, "%.17g %.17g", score[0], score[1]);
        ck_assert_msg(fabs(score[2] - 0.5) < (score[0] - 0.5) / 100 && fabs(score[2] - 0.5) < (0.5 - score[1]) / 100,
                      "%.17g between %.17g and %.17g", score[2], score[1], score[0]);
}
END_TEST

/* ln (1 − Q): agrees with 1 − Q where that is a double well above rounding, has the
 * closed forms of 2 and 4 degrees of freedom where it is far below, and only grows with
 * x². */
START_TEST(test_chi2p_ln)
{
        for (unsigned v = 1; v < 2000; v = v * 3 / 2 + 1) {
                double prev = -INFINITY;

                for (double x = 0.01; x < 20000; x *= 1.7) {
                        double q = spam_chi2q(x, v), lp = spam_chi2p_ln(x, v);

                        ck_assert_msg(isfinite(lp) && lp <= 0, "ln P(%g, %u) = %g", x, 2 * v, lp);
                        ck_assert_msg(lp >= prev, "ln P(%g, %u) = %.17g falls from %.17g", x, 2 * v, lp, prev);
                        prev = lp;
                        if (1 - q > 1e-6 && q > 1e-6)
                                ck_assert_msg(fabs(lp - log1p(-q)) <= 1e-8 * fmax(1.0, fabs(lp)),
                                              "ln P(%g, %u) = %.17g, log(1 - Q) = %.17g", x, 2 * v, lp, log1p(-q));
                }
        }
        /* 2 dof: P = 1 − e^(−m) ≈ m; 4 dof: P = 1 − e^(−m)(1 + m) ≈ m²/2 (m = x²/2) */
        ck_assert(fabs(spam_chi2p_ln(2e-30, 1) - log(1e-30)) < 1e-9);
        ck_assert(fabs(spam_chi2p_ln(2e-30, 2) - log(0.5e-60)) < 1e-9);
        /* 200 dof at x² = 1: e^(−0.5) 0.5^100 / 100!, about 1e-188, and far below a double
         * at 2000 dof */
        ck_assert(fabs(spam_chi2p_ln(1, 100) -
                       (-0.5 + 100 * log(0.5) - lgamma(101) + log1p(0.5 / 101 + 0.25 / (101 * 102)))) < 1e-6);
        ck_assert(spam_chi2p_ln(1, 1000) < -5000 && isfinite(spam_chi2p_ln(1, 1000)));
        ck_assert(spam_chi2p_ln(0, 5) == -INFINITY);
        ck_assert(spam_chi2p_ln(-1, 5) == -INFINITY);
        ck_assert(spam_chi2p_ln(3, 0) == -INFINITY);
        ck_assert(spam_chi2p_ln(INFINITY, 5) == 0);
}
END_TEST

/* Clear ham and clear spam keep their order: (1 + H − S) / 2 would be exactly 0 (or 1)
 * for all of them, tying the clearest ham with a spam that scores barely as low. */
START_TEST(test_classify_extreme)
{
        FakeToken table[400];
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        double prev = 1.0, prev_spam = 0.0;

        p.robinson_s = 0;
        for (size_t i = 0; i < 200; i++)
                table[i] = (FakeToken) { 5000 + i, { 1, 99 }, {} };
        for (size_t i = 200; i < 400; i++)
                table[i] = (FakeToken) { 5000 + i, { 99, 1 }, {} };

        for (size_t n = 20; n <= 200; n += 20) {
                SpamBayesResult r;
                SpamTokens t;
                double h = spam_chi2q(-2.0 * n * log(0.01), n), s = spam_chi2q(-2.0 * n * log(0.99), n);

                tokens_of(&t, table, n);
                ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 100, 100 }, NULL, fake_lookup, &fake,
                                                     0, &r), 0);
                ck_assert_int_eq(r.verdict, SPAM_VERDICT_HAM);
                if (n >= 60)    /* where the formula alone saturates */
                        ck_assert_msg((1.0 + h - s) / 2.0 == 0.0, "%zu tokens: %g", n, (1.0 + h - s) / 2.0);
                ck_assert_msg(r.score > 0 && r.score < prev, "%zu hammy tokens: %.17g after %.17g", n, r.score,
                              prev);
                prev = r.score;
                spam_bayes_result_done(&r);
                spam_tokens_done(&t);

                tokens_of(&t, table + 200, n);
                ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 100, 100 }, NULL, fake_lookup, &fake,
                                                     0, &r), 0);
                ck_assert_int_eq(r.verdict, SPAM_VERDICT_SPAM);
                ck_assert_msg(r.score < 1 && r.score > prev_spam, "%zu spammy tokens: %.17g after %.17g", n,
                              r.score, prev_spam);
                prev_spam = r.score;
                spam_bayes_result_done(&r);
                spam_tokens_done(&t);
        }
}
END_TEST

/* With order_s, the verdict is the deciding estimate's and the score is the ordering
 * estimate's, scaled into that verdict's band. Shape tokens (a quarter of them here) enter
 * the ordering estimate only. */
START_TEST(test_classify_order_band)
{
        FakeToken table[64];
        SpamBayesParams p = params, decide = params, order = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamTotals totals = { 50, 50 };
        uint64_t x = 12345;
        unsigned seen[_SPAM_VERDICT_MAX] = {};

        p.robinson_s = decide.robinson_s = 0.3;
        p.order_s = order.robinson_s = 1e-5;
        p.order_min_dev = order.min_dev = 0.2;
        order.decide_shapes = true;             /* alone, the ordering estimate decides */
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                table[i] = (FakeToken) { 7000 + i, { (x >> 33) % 51, (x >> 45) % 51 }, {} };
        }

        for (unsigned m = 0; m < 1000; m++) {
                SpamBayesResult r, rd, ro;
                SpamTokens t = SPAM_TOKENS_NULL;
                double lo, hi;

                /* a message: a pseudo-random subset of 1 to 12 tokens */
                for (unsigned k = 0; k < 1 + m % 12; k++) {
                        size_t j;

                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        j = (x >> 40) % ELEMENTSOF(table);
                        ck_assert_int_ge(spam_tokens_add(&t, table[j].hash,
                                                         j % 4 == 0 ? SPAM_TOKEN_SHAPE : SPAM_TOKEN_WORD,
                                                         NULL, 0), 0);
                }
                ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 3, &r), 0);
                ck_assert_int_eq(spam_bayes_classify(&decide, &t, totals, NULL, fake_lookup, &fake, 3, &rd), 0);
                ck_assert_int_eq(spam_bayes_classify(&order, &t, totals, NULL, fake_lookup, &fake, 0, &ro), 0);

                ck_assert_int_eq(r.verdict, rd.verdict);
                ck_assert_uint_eq(r.n_used, rd.n_used);
                ck_assert_uint_eq(r.n_top, rd.n_top);
                for (size_t i = 0; i < r.n_top; i++)
                        ck_assert_uint_eq(r.top[i].index, rd.top[i].index);
                lo = r.verdict == SPAM_VERDICT_SPAM ? p.spam_cutoff :
                     r.verdict == SPAM_VERDICT_UNSURE ? p.ham_cutoff : 0;
                hi = r.verdict == SPAM_VERDICT_SPAM ? 1 :
                     r.verdict == SPAM_VERDICT_UNSURE ? p.spam_cutoff : p.ham_cutoff;
                ck_assert_msg(r.score >= lo && (r.score < hi || r.verdict == SPAM_VERDICT_SPAM),
                              "message %u: %.17g outside [%g, %g)", m, r.score, lo, hi);
                ck_assert_msg(fabs(r.score - (lo + (hi - lo) * ro.score)) < 1e-12,
                              "message %u: %.17g, order estimate %.17g", m, r.score, ro.score);
                seen[r.verdict]++;
                spam_bayes_result_done(&r);
                spam_bayes_result_done(&rd);
                spam_bayes_result_done(&ro);
                spam_tokens_done(&t);
        }
        /* the draw reaches every band */
        for (int v = 0; v < _SPAM_VERDICT_MAX; v++)
                ck_assert_msg(seen[v] > 10, "verdict %s seen %u times", spam_verdict_to_string(v), seen[v]);
}
END_TEST

/* order_form_s: in the ordering estimate, a token of how the message was made (header
 * field, client address, feature, HTML comment) seen once weighs more than a word of the
 * text seen once. A message of one such token of each class then leans to the form
 * token's class; with order_form_s 0 (the same prior for all) it sits in the middle. The
 * verdict is the deciding estimate's either way. */
START_TEST(test_classify_order_form)
{
        static const FakeToken table[] = {
                { 30, { 1, 0 }, {} },           /* seen in one spam */
                { 31, { 0, 1 }, {} },           /* seen in one ham */
        };
        static const struct {
                SpamTokenKind kind;
                bool form;
        } kinds[] = {
                { SPAM_TOKEN_HEADER, true },
                { SPAM_TOKEN_IP, true },
                { SPAM_TOKEN_FEATURE, true },
                { SPAM_TOKEN_MARKUP, true },
                { SPAM_TOKEN_WORD, false },
                { SPAM_TOKEN_URL, false },
                { SPAM_TOKEN_DEOBFUSCATED, false },
                { SPAM_TOKEN_SHAPE, false },
        };
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamBayesParams p = params;

        p.robinson_s = 0.3;
        p.order_s = 1e-5;
        p.order_min_dev = 0.2;
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                for (int side = 0; side < 2; side++) {
                        SpamBayesResult same, form;
                        SpamTokens t = SPAM_TOKENS_NULL;

                        double mid;

                        /* side 0: the spam token is of this kind; side 1: the ham token */
                        ck_assert_int_ge(spam_tokens_add(&t, 30, side == 0 ? kinds[k].kind : SPAM_TOKEN_WORD,
                                                         NULL, 0), 0);
                        ck_assert_int_ge(spam_tokens_add(&t, 31, side == 1 ? kinds[k].kind : SPAM_TOKEN_WORD,
                                                         NULL, 0), 0);
                        p.order_form_s = 0;
                        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 50, 50 }, NULL, fake_lookup,
                                                             &fake, 0, &same), 0);
                        p.order_form_s = 1e-9;
                        ck_assert_int_eq(spam_bayes_classify(&p, &t, (SpamTotals) { 50, 50 }, NULL, fake_lookup,
                                                             &fake, 0, &form), 0);

                        /* unsure: a token of each class (0.115 and 0.885); a shape does not
                         * decide, and the word alone, 0.115, is ham */
                        ck_assert_int_eq(same.verdict, (kinds[k].kind == SPAM_TOKEN_SHAPE && side == 0 ?
                                                        SPAM_VERDICT_HAM : SPAM_VERDICT_UNSURE));
                        ck_assert_int_eq(form.verdict, same.verdict);
                        mid = same.verdict == SPAM_VERDICT_HAM ? p.ham_cutoff / 2 :
                                                                 (p.ham_cutoff + p.spam_cutoff) / 2;
                        ck_assert_msg(fabs(same.score - mid) < 1e-12, "kind %d: %.17g", kinds[k].kind, same.score);
                        if (!kinds[k].form)
                                ck_assert_msg(form.score == same.score, "kind %d: %.17g against %.17g",
                                              kinds[k].kind, form.score, same.score);
                        else if (side == 0)
                                ck_assert_msg(form.score > mid + 1e-6, "kind %d: %.17g", kinds[k].kind, form.score);
                        else
                                ck_assert_msg(form.score < mid - 1e-6, "kind %d: %.17g", kinds[k].kind, form.score);
                        spam_bayes_result_done(&same);
                        spam_bayes_result_done(&form);
                        spam_tokens_done(&t);
                }
}
END_TEST

/* Before each class has min_messages learned messages, every verdict is unsure and the
 * score lies in the unsure band, in the order of the score it would have had. */
START_TEST(test_classify_cold_start)
{
        static const FakeToken table[] = {
                { 20, { 9, 0 }, {} },
                { 21, { 0, 9 }, {} },
        };
        SpamBayesParams p = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };
        SpamTotals cold[] = { { 2, 10 }, { 10, 2 }, { 0, 10 }, { 10, 0 } }, warm = { 3, 3 };
        double spammy = 0, hammy = 0;

        p.min_messages = 3;
        for (size_t k = 0; k < ELEMENTSOF(cold) + 1; k++)
                for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                        SpamTotals t = k < ELEMENTSOF(cold) ? cold[k] : warm;
                        SpamBayesParams q = p;
                        SpamBayesResult r, plain;
                        SpamTokens tokens;

                        q.min_messages = 0;
                        tokens_of(&tokens, table + i, 1);
                        ck_assert_int_eq(spam_bayes_classify(&p, &tokens, t, NULL, fake_lookup, &fake, 0, &r), 0);
                        ck_assert_int_eq(spam_bayes_classify(&q, &tokens, t, NULL, fake_lookup, &fake, 0, &plain),
                                         0);
                        if (k < ELEMENTSOF(cold)) {
                                ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
                                ck_assert(r.score >= p.ham_cutoff && r.score < p.spam_cutoff);
                                ck_assert_msg(fabs(r.score - (p.ham_cutoff + (p.spam_cutoff - p.ham_cutoff) *
                                                              plain.score)) < 1e-12,
                                              "cold %zu, token %zu: %.17g from %.17g", k, i, r.score, plain.score);
                        } else {
                                ck_assert_int_eq(r.verdict, plain.verdict);
                                ck_assert(r.score == plain.score);
                                ck_assert_int_eq(r.verdict, i == 0 ? SPAM_VERDICT_SPAM : SPAM_VERDICT_HAM);
                        }
                        if (k == 0)
                                *(i == 0 ? &spammy : &hammy) = r.score;
                        spam_bayes_result_done(&r);
                        spam_bayes_result_done(&plain);
                        spam_tokens_done(&tokens);
                }
        ck_assert(spammy > hammy);

        /* no unsure band at all (HamCutoff= = SpamCutoff=): the score stays at the cutoff,
         * not below it in the ham band */
        p.ham_cutoff = p.spam_cutoff = 0.5;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                SpamBayesResult r;
                SpamTokens tokens;

                tokens_of(&tokens, table + i, 1);
                ck_assert_int_eq(spam_bayes_classify(&p, &tokens, cold[0], NULL, fake_lookup, &fake, 0, &r), 0);
                ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
                ck_assert(r.score == 0.5);
                spam_bayes_result_done(&r);
                spam_tokens_done(&tokens);
        }
}
END_TEST

/* The ordering estimate's log-odds are at most order_nats_per_message per learned message
 * of both classes: while little is learned the message's place in its band is nearer
 * the middle, and further out the more is learned; the verdict and the tokens do not
 * change, and once enough is learned neither does the score. */
START_TEST(test_classify_order_nats)
{
        static const unsigned learned[] = { 9, 10, 11, 15, 30, 60, 120, 5000 };
        FakeToken table[40];
        SpamBayesParams p = params, q;
        Fake fake = { table, ELEMENTSOF(table), 0 };

        p.robinson_s = 0.3;
        p.order_s = 1e-5;
        p.order_min_dev = 0.2;
        p.order_nats_per_message = 1.0;
        q = p;
        q.order_nats_per_message = 0;

        for (int side = 0; side < 2; side++) {
                /* side 0: forty tokens each seen in nine ham and no spam; side 1: the other
                 * way round. Unbounded, the ordering estimate's log-odds are about ∓435
                 * (f = 0.5 · 1e-5 / 9 for each token, chi-square 1152 on 80 degrees of
                 * freedom): every bound up to 240 nats (120 messages of each class) binds,
                 * 10,000 does not. */
                double last = side == 0 ? 1.0 : 0.0, lo = side == 0 ? 0.0 : p.spam_cutoff,
                       hi = side == 0 ? p.ham_cutoff : 1.0;
                SpamTokens t;

                for (size_t i = 0; i < ELEMENTSOF(table); i++)
                        table[i] = (FakeToken) { 100 + i, side == 0 ? (SpamCounts) { 0, 9 } : (SpamCounts) { 9, 0 },
                                                 {} };
                tokens_of(&t, table, ELEMENTSOF(table));
                for (size_t k = 0; k < ELEMENTSOF(learned); k++) {
                        SpamTotals totals = { learned[k], learned[k] };
                        double max_ln = 2.0 * learned[k], order;
                        SpamBayesResult r, u;

                        ck_assert_int_eq(spam_bayes_classify(&p, &t, totals, NULL, fake_lookup, &fake, 0, &r), 0);
                        ck_assert_int_eq(spam_bayes_classify(&q, &t, totals, NULL, fake_lookup, &fake, 0, &u), 0);
                        ck_assert_int_eq(r.verdict, side == 0 ? SPAM_VERDICT_HAM : SPAM_VERDICT_SPAM);
                        ck_assert_int_eq(r.verdict, u.verdict);
                        ck_assert_uint_eq(r.n_used, u.n_used);
                        ck_assert(r.score >= lo && r.score <= hi);

                        /* the bound moves the score towards the band's middle, never out */
                        if (side == 0)
                                ck_assert_msg(r.score >= u.score, "%u: %.17g below %.17g", learned[k], r.score, u.score);
                        else
                                ck_assert_msg(r.score <= u.score, "%u: %.17g above %.17g", learned[k], r.score, u.score);

                        order = (r.score - lo) / (hi - lo);
                        if (side == 1)
                                order = 1.0 - order;
                        if (max_ln < 20.0)
                                /* within the scale's measured part: exactly the bound */
                                ck_assert_msg(fabs(order * (1.0 + exp(max_ln)) - 1.0) < 1e-9,
                                              "%u: order %.17g, bound %g nats", learned[k], order, max_ln);
                        if (learned[k] <= 120) {
                                ck_assert_msg(r.score != u.score, "%u: not bounded", learned[k]);
                                /* a looser bound, a score further out, in log space too */
                                ck_assert_msg(side == 0 ? r.score < last : r.score > last, "%u: %.17g after %.17g",
                                              learned[k], r.score, last);
                        } else
                                ck_assert_msg(r.score == u.score, "%u: %.17g against %.17g", learned[k], r.score,
                                              u.score);
                        last = r.score;
                        spam_bayes_result_done(&r);
                        spam_bayes_result_done(&u);
                }
                spam_tokens_done(&t);
        }
}
END_TEST

/* Before each class has spam_min_messages learned messages, a spam verdict is unsure
 * instead, its score in the unsure band in the order of the score it would have had; ham
 * verdicts are not held back. */
START_TEST(test_classify_spam_min_messages)
{
        static const FakeToken table[] = {
                { 20, { 9, 0 }, {} },
                { 21, { 0, 9 }, {} },
        };
        static const struct {
                SpamTotals totals;
                bool held;
        } cases[] = {
                { { 19, 50 }, true },
                { { 50, 19 }, true },
                { { 10, 10 }, true },
                { { 20, 20 }, false },
                { { 20, 500 }, false },
        };
        SpamBayesParams p = params, q = params;
        Fake fake = { table, ELEMENTSOF(table), 0 };

        p.spam_min_messages = 20;
        for (size_t k = 0; k < ELEMENTSOF(cases); k++)
                for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                        SpamBayesResult r, plain;
                        SpamTokens tokens;

                        tokens_of(&tokens, table + i, 1);
                        ck_assert_int_eq(spam_bayes_classify(&p, &tokens, cases[k].totals, NULL, fake_lookup, &fake,
                                                             0, &r), 0);
                        ck_assert_int_eq(spam_bayes_classify(&q, &tokens, cases[k].totals, NULL, fake_lookup, &fake,
                                                             0, &plain), 0);
                        ck_assert_int_eq(plain.verdict, i == 0 ? SPAM_VERDICT_SPAM : SPAM_VERDICT_HAM);
                        if (i == 0 && cases[k].held) {
                                ck_assert_int_eq(r.verdict, SPAM_VERDICT_UNSURE);
                                ck_assert_msg(fabs(r.score - (p.ham_cutoff + (p.spam_cutoff - p.ham_cutoff) *
                                                              plain.score)) < 1e-12,
                                              "case %zu: %.17g from %.17g", k, r.score, plain.score);
                                ck_assert(r.score < p.spam_cutoff);
                        } else {
                                ck_assert_int_eq(r.verdict, plain.verdict);
                                ck_assert(r.score == plain.score);
                        }
                        spam_bayes_result_done(&r);
                        spam_bayes_result_done(&plain);
                        spam_tokens_done(&tokens);
                }
}
END_TEST

START_TEST(test_verdict_strings)
{
        static const struct {
                SpamVerdict v;
                const char *s;
        } table[] = {
                { SPAM_VERDICT_HAM, "ham" },
                { SPAM_VERDICT_UNSURE, "unsure" },
                { SPAM_VERDICT_SPAM, "spam" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                ck_assert_str_eq(spam_verdict_to_string(table[i].v), table[i].s);
                ck_assert_int_eq(spam_verdict_from_string(table[i].s), table[i].v);
        }
        ck_assert_ptr_null(spam_verdict_to_string(_SPAM_VERDICT_MAX));
        ck_assert_ptr_null(spam_verdict_to_string(_SPAM_VERDICT_INVALID));
        ck_assert_int_eq(spam_verdict_from_string("Spam"), _SPAM_VERDICT_INVALID);
        ck_assert_int_eq(spam_verdict_from_string(""), _SPAM_VERDICT_INVALID);
        ck_assert_int_eq(spam_verdict_from_string(NULL), _SPAM_VERDICT_INVALID);
}
END_TEST

START_TEST(test_defaults_sane)
{
        const SpamBayesParams *p = &spam_bayes_params_default;

        ck_assert(p->robinson_s > 0);
        ck_assert(p->robinson_x > 0 && p->robinson_x < 1);
        ck_assert(p->min_dev >= 0 && p->min_dev < 0.5);
        ck_assert(p->ham_cutoff < p->spam_cutoff);
        ck_assert(p->spam_cutoff <= 1);
        ck_assert(p->order_s > 0 && p->order_s < p->robinson_s);
        ck_assert(p->order_min_dev >= 0 && p->order_min_dev < 0.5);
        ck_assert(p->order_form_s >= 0 && p->order_form_s <= p->order_s);
        ck_assert_uint_ge(p->min_messages, 1);
        ck_assert_uint_ge(p->spam_min_messages, p->min_messages);
        ck_assert(p->order_nats_per_message >= 0);
}
END_TEST

static Suite* spam_bayes_suite(void) {
        Suite *s = suite_create("spam-bayes");
        TCase *tc;

        tc = tcase_create("chi2q");
        tcase_add_test(tc, test_chi2q_table);
        tcase_add_test(tc, test_chi2q_limits);
        tcase_add_test(tc, test_chi2q_ln);
        tcase_add_test(tc, test_chi2p_ln);
        suite_add_tcase(s, tc);

        tc = tcase_create("robinson");
        tcase_add_test(tc, test_token_prob);
        tcase_add_test(tc, test_classify_hand_computed);
        tcase_add_test(tc, test_classify_two_tokens);
        tcase_add_test(tc, test_classify_max_tokens);
        tcase_add_test(tc, test_classify_domain_backoff);
        tcase_add_test(tc, test_classify_tiled);
        tcase_add_test(tc, test_classify_counts);
        tcase_add_test(tc, test_classify_tiled_close);
        tcase_add_test(tc, test_classify_tiled_close_runs);
        tcase_add_test(tc, test_classify_tiled_shapes);
        tcase_add_test(tc, test_classify_tiled_family);
        tcase_add_test(tc, test_classify_bigram_prior);
        tcase_add_test(tc, test_classify_saturated);
        tcase_add_test(tc, test_classify_saturated_form);
        tcase_add_test(tc, test_classify_extreme);
        tcase_add_test(tc, test_classify_order_band);
        tcase_add_test(tc, test_classify_order_form);
        tcase_add_test(tc, test_classify_cold_start);
        tcase_add_test(tc, test_classify_order_nats);
        tcase_add_test(tc, test_classify_spam_min_messages);
        suite_add_tcase(s, tc);

        tc = tcase_create("strings");
        tcase_add_test(tc, test_verdict_strings);
        tcase_add_test(tc, test_defaults_sane);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spam_bayes_suite);
