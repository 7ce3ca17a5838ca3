/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-spam-hmm: the HMM de-obfuscator over arbitrary bytes. A small lexicon (ordinary and
 * spam words, one with a non-ASCII letter, one with doubled letters) is built once; each
 * input is scanned whole, and every report is checked against the contract: a lexicon word,
 * a span inside the input, a confidence in (0, 1]. The first input byte, when it is '\x01',
 * makes the callback stop the scan at the first report, which must come back as the
 * scan's value. Then the input is scanned again with a cache that lives across inputs
 * (spam_hmm_scan_cached()): the same number of reports, whatever earlier inputs left in
 * it. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spam-hmm.h"

#define FUZZ_SPAM_HMM_INPUT_MAX ((size_t) 64U * 1024U)

static const char *const words[] = {
        "viagra", "cialis", "mortgage", "pharmacy", "casino", "free", "offer", "money", "cash",
        "cheap", "pills", "rolex", "sex", "the", "and", "your", "with", "this", "via", "agra",
        "mort", "gage", "winner", "dollars", "million", "coffee", "caf\u00e9", "\u043c\u0438\u0440",
};

typedef struct Check {
        size_t len;
        size_t n;
        bool stop;
} Check;

static int on_word(const char *word, size_t word_len, size_t start, size_t end, double confidence,
                   void *userdata) {
        Check *c = userdata;
        bool known = false;

        if (word_len == 0 || strlen(word) != word_len || start >= end || end > c->len ||
            !(confidence > 0.0 && confidence <= 1.0))
                abort();
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                known = known || strcmp(words[i], word) == 0;
        if (!known)
                abort();
        c->n++;
        return c->stop ? -ECANCELED : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static SpamHmm *h = NULL;
        static SpamHmmCache *cache = NULL;
        Check c = { .len = size }, cc;
        int r, rc;

        if (size > FUZZ_SPAM_HMM_INPUT_MAX)
                return 0;
        if (!h) {
                if (spam_hmm_new(&h) < 0)
                        abort();
                for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                        if (spam_hmm_add_word(h, words[i], 10 + (uint32_t) i * 7) < 0)
                                abort();
                if (spam_hmm_build(h) < 0)
                        abort();
                if (spam_hmm_cache_new(&cache) < 0)
                        abort();
        }
        c.stop = size > 0 && data[0] == 1;

        r = spam_hmm_scan(h, (const char*) data, size, on_word, &c);
        if (c.stop ? !(r == 0 || r == -ECANCELED) : r < 0)
                abort();
        if (r >= 0 && (size_t) r != c.n)
                abort();

        cc = (Check) { .len = size, .stop = c.stop };
        rc = spam_hmm_scan_cached(h, cache, (const char*) data, size, on_word, &cc);
        if (rc != r || cc.n != c.n)
                abort();
        return 0;
}
