/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tokens of mailsec-spamd: 64-bit keyed hashes (SipHash-2-4 with a per-installation
 * secret, so token counts say nothing about words to someone who steals the database and
 * an outsider cannot aim a collision), and the set of distinct tokens of one message.
 *
 * A token is the hash of a prefix and a text: "w:" body word, "h:subject:" header word,
 * "u:" URL host, "ip:" client address, "f:" a feature the tokenizer synthesizes
 * (obfuscation seen, ...). Prefix and text are hashed together, with the prefix's length,
 * so "h:a" + "b" and "h:ab" + "" differ. A bigram ("b:") is the exception: its hash is
 * derived from the hashes of its two words and their distance, so that each word is
 * hashed once (spam_tokenizer_bigram_hash() in spam-tokenizer.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define SPAM_TOKEN_KEY_SIZE 16U

typedef struct SpamTokenKey {
        uint8_t bytes[SPAM_TOKEN_KEY_SIZE];
} SpamTokenKey;

typedef enum SpamTokenKind {
        SPAM_TOKEN_WORD,                /* body word (unigram) */
        SPAM_TOKEN_HEADER,              /* word of a header field, prefixed by the name */
        SPAM_TOKEN_URL,                 /* host of a link, or a word of an HTML link's path */
        SPAM_TOKEN_IP,                  /* the client's address (and its /24 or /48) */
        SPAM_TOKEN_BIGRAM,              /* orthogonal sparse bigram, window 5 */
        SPAM_TOKEN_DEOBFUSCATED,        /* a lexicon word the HMM read out of obfuscated text */
        SPAM_TOKEN_FEATURE,             /* synthetic evidence ("obfuscation seen", defects) */
        SPAM_TOKEN_MARKUP,              /* an HTML element used, or a word of an HTML comment */
        SPAM_TOKEN_SHAPE,               /* a body word as written with capitals, or followed by '!' */
        _SPAM_TOKEN_KIND_MAX,
} SpamTokenKind;

const char* spam_token_kind_to_string(SpamTokenKind k) _const_;

uint64_t spam_token_hash(const SpamTokenKey *key, const char *prefix, const void *text, size_t len);

/* The distinct tokens of one message. With keep_text, each token's printable form
 * ("w:viagra", "b:cheap 2 pills") is kept for explanations (mailsecctl spam explain,
 * top_tokens); without it text[] stays NULL. */
typedef struct SpamTokens {
        uint64_t *hashes;
        uint8_t *kinds;                 /* SpamTokenKind of each */
        char **text;                    /* NULL unless keep_text */
        size_t n, alloc;
        bool keep_text;

        /* open-addressing index of hashes[] for de-duplication */
        uint32_t *index;
        size_t index_size;
} SpamTokens;
#define SPAM_TOKENS_NULL { .hashes = NULL, .kinds = NULL, .text = NULL, .n = 0, .alloc = 0, .keep_text = false, .index = NULL, .index_size = 0 }

/* Adds a token unless it is there already. Returns 1 added, 0 present, -ENOMEM.
 * text/text_len: the printable form (only used with keep_text). */
int spam_tokens_add(SpamTokens *t, uint64_t hash, SpamTokenKind kind, const char *text, size_t text_len);
/* Makes room for n tokens at once, so that adding them does not grow the set on the way.
 * Returns 0, -ENOMEM or -E2BIG. */
int spam_tokens_reserve(SpamTokens *t, size_t n);
bool spam_tokens_contains(const SpamTokens *t, uint64_t hash);
/* The position of the token with this hash in the set, or -ENOENT. */
ssize_t spam_tokens_find(const SpamTokens *t, uint64_t hash);
void spam_tokens_done(SpamTokens *t);
