/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The tokenizer of mailsec-spamd: a whole message (RFC 5322, any line ends) through the
 * streaming MIME parser (services/shared/mime/mime.h) into a SpamTokens set:
 *
 *   header fields  words of Subject, From, To, Reply-To, Content-Type, X-Mailer, ...,
 *                  prefixed by the field name; the Received chain reduced to the sending
 *                  side of each hop (hosts and addresses), without the collecting site's
 *                  own hops and recipient-side fields (Delivered-To, ...)
 *   body           words of every text part (HTML already reduced to text), case-folded
 *                  (Unicode-aware, UTF-8), with length bounds; plus bigrams: each word
 *                  paired with the next bigram_window - 1 words, the distance part of the
 *                  token (default 2: adjacent words; 5 gives the orthogonal sparse bigrams
 *                  of CRM114 and rspamd)
 *   links          hosts of URLs in HTML links and in plain text
 *   client         the connecting address given by the caller, and its network
 *   HMM            with a de-obfuscator (spam-hmm.h), the lexicon words it reads out of
 *                  obfuscated stretches ("v1@gra" -> "viagra") as their own tokens, and
 *                  the feature "obfuscation seen" (with a count bucket)
 *   shapes         with opts->shapes, a body word with capitals as written and a word
 *                  followed by '!', as other readings of the folded word
 *   features       MIME defects, in-word HTML insertions, and other structural evidence
 *
 * on_word, when set, is called with each body word as folded (not the bigrams), for the
 * lexicon the HMM is built from. parts, when set, records which tokens share evidence
 * (the words of a bigram or shape, the fields of a family), for
 * spam_bayes_classify_tiled(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spam-token.h"

typedef struct SpamHmm SpamHmm;
typedef struct SpamHmmCache SpamHmmCache;

/* Raised whenever a change makes the same message give other tokens (a new rule, another
 * hash of a bigram): counts learned by an older tokenizer then match fewer tokens, and
 * mailsec-spamd says so at start (the journal holds hashes, not words, so only learning
 * the messages again helps). */
#define SPAM_TOKENIZER_VERSION 9U

/* Which evidence a token shares with others, for combining that does not count the same
 * evidence twice (spam_bayes_classify_tiled()): word[i] holds, for token i of the set, the
 * indexes of the w: tokens of its two words when token i is a bigram, the index of its
 * w: token twice when it is a shape, the index of its field family's first token twice
 * when it is a header token of a family (opts->field_families), and SPAM_TOKEN_NO_WORD
 * twice otherwise. */
typedef struct SpamTokenParts {
        uint32_t (*word)[2];
        size_t n, alloc;
} SpamTokenParts;
#define SPAM_TOKEN_PARTS_NULL { .word = NULL, .n = 0, .alloc = 0 }
#define SPAM_TOKEN_NO_WORD UINT32_MAX

void spam_token_parts_done(SpamTokenParts *p);

typedef struct SpamTokenizerOptions {
        const SpamTokenKey *key;
        const char *client_ip;          /* NULL: none */
        const SpamHmm *hmm;             /* NULL: no de-obfuscation */
        SpamHmmCache *hmm_cache;        /* NULL: none (spam_hmm_scan_cached()) */
        bool bigrams;                   /* orthogonal sparse bigrams (default on) */
        unsigned bigram_window;         /* a word and the next N - 1; 0: the default; at most the max */
        bool keep_text;                 /* SpamTokens.text[] for explanations */
        bool shapes;                    /* c: and !: readings of body words (mailsec-spamd: on) */
        bool markup;                    /* m: tokens of the HTML elements used (an experiment:
                                         * off in mailsec-spamd, see tests/bench/README.md) */
        size_t max_tokens;              /* 0: SPAM_TOKENIZER_MAX_TOKENS_DEFAULT */
        void (*on_word)(const char *word, size_t len, void *userdata);
        void *userdata;
        SpamTokenParts *parts;          /* NULL: not recorded; else SPAM_TOKEN_PARTS_NULL on entry, filled */
        bool field_families;            /* with parts: the header fields that describe one fact
                                         * (the mailing list, the mail program, the MIME
                                         * declaration) as one piece of evidence each
                                         * (mailsec-spamd: on) */
} SpamTokenizerOptions;

#define SPAM_TOKENIZER_MAX_TOKENS_DEFAULT 20000U
#define SPAM_TOKENIZER_BIGRAM_WINDOW_DEFAULT 2U
#define SPAM_TOKENIZER_BIGRAM_WINDOW_MAX 5U

/* The families of header fields with field_families: the fields of each describe one fact,
 * which a token filter would otherwise count once per field. */
typedef enum SpamFieldFamily {
        SPAM_FIELD_FAMILY_NONE,
        SPAM_FIELD_FAMILY_LIST,         /* what a mailing-list manager adds: List-* (RFC 2369,
                                         * RFC 2919), X-BeenThere, X-Mailman-Version,
                                         * Mailing-List, X-Loop, Sender, Errors-To, Precedence */
        SPAM_FIELD_FAMILY_PROGRAM,      /* what the mail program writes: X-Mailer, User-Agent,
                                         * X-MimeOLE, X-MSMail-Priority, X-Priority,
                                         * Importance, Content-Class, Thread-Index */
        SPAM_FIELD_FAMILY_MIME,         /* the top-level MIME declaration: MIME-Version,
                                         * Content-* */
        _SPAM_FIELD_FAMILY_MAX,
} SpamFieldFamily;

/* The family of a header field by its lowercased name. */
SpamFieldFamily spam_field_family(const char *name) _pure_;

/* Fills *ret (SPAM_TOKENS_NULL on entry). Never fails on malformed input (a message that
 * does not parse still gives its tokens and feature tokens for what was wrong); returns
 * -ENOMEM, or 0. */
int spam_tokenize(const char *msg, size_t len, const SpamTokenizerOptions *opts, SpamTokens *ret);

/* The hash of the bigram token of two body words: derived from the hashes of their w:
 * tokens and the distance (1 for adjacent words), so that each word is hashed once. The
 * printable form kept with keep_text is "b:W1 D W2". */
uint64_t spam_tokenizer_bigram_hash(uint64_t first, unsigned distance, uint64_t second) _const_;

/* The simple case folding the tokenizer applies to a code point (Latin, Greek, Cyrillic,
 * Armenian, fullwidth Latin; other code points are returned as they are). */
uint32_t spam_unichar_fold(uint32_t c) _const_;
