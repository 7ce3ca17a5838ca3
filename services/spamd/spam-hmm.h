/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-spamd's de-obfuscator: a hidden Markov model in the manner of Lee & Ng
 * ("Spam deobfuscation using a hidden Markov model", CEAS 2005) and of Lee, Jeong & Choi's
 * dynamically weighted HMM (IJCAI 2007). The hidden states are the letters of the words
 * of a lexicon (built from the filter's own vocabulary: the words it has learned, with
 * their weights); the emissions model look-alike substitutions ("1" for i, "@" for a,
 * "0" for o, "\/" for v, Cyrillic and Greek homoglyphs, accented letters), separators
 * inserted between letters ("V.I.A.G.R.A", "vi-agra"), letters dropped and doubled, and
 * segmentation errors (a word split by a space, "m0rt gage", or two words run together).
 * Viterbi decoding with beam pruning over a trie of the lexicon.
 *
 *         _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
 *         spam_hmm_new(&h);
 *         spam_hmm_add_word(h, "viagra", 120);  ... for every lexicon word
 *         spam_hmm_build(h);                    // read-only from here on
 *         spam_hmm_scan(h, text, len, on_word, userdata);
 *
 * A built model is only read: one model may serve any number of scans. */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct SpamHmm SpamHmm;

#define SPAM_HMM_WORD_MIN 3U            /* shorter lexicon words are not modelled */
#define SPAM_HMM_WORD_MAX 24U           /* nor longer ones */

int spam_hmm_new(SpamHmm **ret);
SpamHmm* spam_hmm_free(SpamHmm *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpamHmm*, spam_hmm_free);

/* word: lower-case UTF-8 letters; weight: how often the filter saw it (its prior).
 * Adding a word twice adds the weights. -EINVAL for a word outside the bounds, -EBUSY
 * after spam_hmm_build(). */
int spam_hmm_add_word(SpamHmm *h, const char *word, uint32_t weight);
/* A learned word as the store's lexicon gives it (spam_store_lexicon()'s callback, the
 * SpamHmm as userdata): weighted by the messages of both classes; a word outside the
 * bounds is skipped. Returns 0, or negative errno. */
int spam_hmm_add_lexicon_word(const char *word, uint32_t spam, uint32_t ham, void *hmm);
int spam_hmm_build(SpamHmm *h);
size_t spam_hmm_size(const SpamHmm *h);     /* lexicon words */

/* One word read out of an obfuscated stretch of text: the lexicon word, the stretch
 * text[start, end) it was read from, and how sure the model is (0..1, the posterior of
 * the decoded path against the best alternative). Return negative to stop the scan. */
typedef int (*SpamHmmWordCallback)(const char *word, size_t word_len, size_t start, size_t end,
                                   double confidence, void *userdata);

/* Scans UTF-8 text (any length; stretches are bounded by whitespace runs and length) and
 * reports each stretch that decodes to a lexicon word although it is not that word as
 * written. Plain words, text that decodes to nothing, and stretches below the model's
 * confidence threshold are not reported. Returns the number of words reported, or the
 * callback's negative value, or -ENOMEM (-EINVAL before spam_hmm_build()). Must be fast:
 * megabytes of text per second. */
int spam_hmm_scan(const SpamHmm *h, const char *text, size_t len, SpamHmmWordCallback cb, void *userdata);

/* What scans may keep from one message to the next, for a caller that scans many (as
 * mailsec-spamd does): the search's working memory, and the stretches that read as no
 * word, so that one met in an earlier message (a mailing list's footer, the query of a
 * link) is not searched again. What a stretch reads as depends only on its bytes and the
 * model; the cache holds at most 16,384 stretches (1.3 MB with their keys, and 0.3 MB of
 * working memory) and starts over when full, and forgets everything when it is used with
 * another model (a new build). One scan at a time may use a cache. */
typedef struct SpamHmmCache SpamHmmCache;

int spam_hmm_cache_new(SpamHmmCache **ret);
SpamHmmCache* spam_hmm_cache_free(SpamHmmCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpamHmmCache*, spam_hmm_cache_free);
size_t spam_hmm_cache_size(const SpamHmmCache *c);     /* stretches held */

/* spam_hmm_scan() with a cache (NULL: none); the same words are reported either way. */
int spam_hmm_scan_cached(const SpamHmm *h, SpamHmmCache *cache, const char *text, size_t len,
                         SpamHmmWordCallback cb, void *userdata);
