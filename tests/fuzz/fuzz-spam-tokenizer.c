/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-spam-tokenizer: a message through spam_tokenize() (the MIME parser, HTML reduction,
 * word splitting and folding, URL hosts, bigrams, features). The first byte picks the
 * options: bigrams, keep_text, a small max_tokens, a client address taken from the input,
 * HTML element tokens, shape readings of words, the parts of bigrams and shapes, and field
 * families.
 * Checks: the call succeeds (only -ENOMEM may fail it), the set holds no duplicate, it
 * respects max_tokens, every kind is valid, and with keep_text every token's printable
 * form is a NUL-terminated string starting with its prefix. Running it twice gives the
 * same set. With parts, every token has its entry: none, two word tokens of the set (a
 * shape names its word twice), or with field families, for a header token, a header token
 * at or before it, twice. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spam-tokenizer.h"

#define FUZZ_SPAM_INPUT_MAX ((size_t) 256U * 1024U)

static const SpamTokenKey key = { .bytes = "fuzz-spam-tokens" };

static void on_word(const char *word, size_t len, void *userdata) {
        size_t *n = userdata;

        if (len == 0 || strlen(word) != len)
                abort();
        (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SpamTokens a = SPAM_TOKENS_NULL, b = SPAM_TOKENS_NULL;
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .key = &key };
        char ip[48] = {};
        size_t words = 0;
        uint8_t flags;

        if (size < 1 || size > FUZZ_SPAM_INPUT_MAX)
                return 0;
        flags = data[0];
        data++;
        size--;

        opts.bigrams = flags & 1;
        opts.markup = flags & 16;
        opts.shapes = flags & 32;
        opts.parts = (flags & 64) ? &parts : NULL;
        opts.field_families = flags & 128;
        opts.keep_text = flags & 2;
        opts.max_tokens = (flags & 4) ? 64 : 0;
        if ((flags & 8) && size > 0) {
                size_t k = data[0] % sizeof(ip);

                if (k <= size - 1) {
                        memcpy(ip, data + 1, k);
                        ip[strnlen(ip, k)] = '\0';
                        opts.client_ip = ip;
                }
        }
        opts.on_word = on_word;
        opts.userdata = &words;

        if (spam_tokenize((const char*) data, size, &opts, &a) < 0)
                abort();
        if (a.n > (opts.max_tokens ?: SPAM_TOKENIZER_MAX_TOKENS_DEFAULT))
                abort();
        if (words > a.n)
                abort();
        for (size_t i = 0; i < a.n; i++) {
                if (a.kinds[i] >= _SPAM_TOKEN_KIND_MAX)
                        abort();
                if (opts.keep_text && (!a.text[i] || !strchr(a.text[i], ':')))
                        abort();
                for (size_t j = i + 1; j < a.n && j < i + 64; j++)
                        if (a.hashes[i] == a.hashes[j])
                                abort();
                if (!spam_tokens_contains(&a, a.hashes[i]))
                        abort();
        }

        if (opts.parts) {
                if (parts.n != a.n)
                        abort();
                for (size_t i = 0; i < a.n; i++) {
                        uint32_t w0 = parts.word[i][0], w1 = parts.word[i][1];

                        if ((w0 == SPAM_TOKEN_NO_WORD) != (w1 == SPAM_TOKEN_NO_WORD))
                                abort();
                        if (w0 == SPAM_TOKEN_NO_WORD) {
                                if (a.kinds[i] == SPAM_TOKEN_BIGRAM || a.kinds[i] == SPAM_TOKEN_SHAPE)
                                        abort();
                                continue;
                        }
                        if (w0 >= a.n || w1 >= a.n)
                                abort();
                        if (a.kinds[i] == SPAM_TOKEN_HEADER) {
                                if (!opts.field_families || w0 != w1 || w0 > i || a.kinds[w0] != SPAM_TOKEN_HEADER)
                                        abort();
                                continue;
                        }
                        if (a.kinds[w0] != SPAM_TOKEN_WORD || a.kinds[w1] != SPAM_TOKEN_WORD)
                                abort();
                        if (a.kinds[i] == SPAM_TOKEN_SHAPE ? w0 != w1 : a.kinds[i] != SPAM_TOKEN_BIGRAM)
                                abort();
                }
                spam_token_parts_done(&parts);
                opts.parts = NULL;
        }

        opts.on_word = NULL;
        if (spam_tokenize((const char*) data, size, &opts, &b) < 0)
                abort();
        if (a.n != b.n || (a.n > 0 && memcmp(a.hashes, b.hashes, a.n * sizeof(uint64_t)) != 0))
                abort();

        spam_tokens_done(&a);
        spam_tokens_done(&b);
        return 0;
}
