/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The tokenizer of mailsec-spamd: a whole message (RFC 5322, any line ends) through the
 * streaming MIME parser (services/shared/mime/mime.h) into a SpamTokens set:
 *
 *   header fields  words of Subject, From, To, Reply-To, Content-Type, X-Mailer, ...,
 *                  prefixed by the field name; the Received chain reduced to the hosts
 *                  and addresses that matter
 *   body           words of every text part (HTML already reduced to text), case-folded
 *                  (Unicode-aware, UTF-8), with length bounds; plus orthogonal sparse
 *                  bigrams: each word paired with each of the next 4 words, the distance
 *                  part of the token (window 5, as CRM114 and rspamd do)
 *   links          hosts of URLs in HTML links and in plain text
 *   client         the connecting address given by the caller, and its network
 *   HMM            with a de-obfuscator (spam-hmm.h), the lexicon words it reads out of
 *                  obfuscated stretches ("v1@gra" -> "viagra") as their own tokens, and
 *                  the feature "obfuscation seen" (with a count bucket)
 *   features       MIME defects, in-word HTML insertions, and other structural evidence
 *
 * on_word, when set, is called with each body word as folded (not the bigrams), for the
 * lexicon the HMM is built from. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spam-token.h"

typedef struct SpamHmm SpamHmm;

typedef struct SpamTokenizerOptions {
        const SpamTokenKey *key;
        const char *client_ip;          /* NULL: none */
        const SpamHmm *hmm;             /* NULL: no de-obfuscation */
        bool bigrams;                   /* orthogonal sparse bigrams (default on) */
        bool keep_text;                 /* SpamTokens.text[] for explanations */
        size_t max_tokens;              /* 0: SPAM_TOKENIZER_MAX_TOKENS_DEFAULT */
        void (*on_word)(const char *word, size_t len, void *userdata);
        void *userdata;
} SpamTokenizerOptions;

#define SPAM_TOKENIZER_MAX_TOKENS_DEFAULT 20000U

/* Fills *ret (SPAM_TOKENS_NULL on entry). Never fails on malformed input (a message that
 * does not parse still gives its tokens and feature tokens for what was wrong); returns
 * -ENOMEM, or 0. */
int spam_tokenize(const char *msg, size_t len, const SpamTokenizerOptions *opts, SpamTokens *ret);

/* The simple case folding the tokenizer applies to a code point (Latin, Greek, Cyrillic,
 * Armenian, fullwidth Latin; other code points are returned as they are). */
uint32_t spam_unichar_fold(uint32_t c) _const_;
