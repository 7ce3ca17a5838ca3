/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* How mailsec-spamd's store behaves at the size its defaults allow (AutoLearnKeep= keeps
 * 50,000 auto-learned messages), which the SpamAssassin corpus (6,046 messages) does not
 * reach: synthetic messages learned one by one through spam_store_learn(), each synced as
 * the daemon does, then a rebuild.
 *
 *   spam-store-scale DIR [MESSAGES]     (default 20000; DIR must not hold a store yet)
 *
 * A message has 300 tokens drawn from 200,000 common ones with a Zipf-like law (token k
 * with probability about 1 / (k ln 200,000)) and 100 tokens seen nowhere else, so the
 * store grows as a real one does: mostly by tokens seen once (two thirds of group 1's
 * tokens are). Every fifth message is spam. Prints the learning rate per 5,000 messages,
 * then the distinct tokens, the sizes of the journal and of tokens.gdbm as learned, and
 * the rebuild's time and the size it writes. See tests/bench/README.md. */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "spam-store.h"

#define COMMON 200000.0
#define PER_COMMON 300
#define PER_FRESH 100
#define STEP 5000

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* A token hash for a token number, as the tokenizer's keyed hashes look: uniform. */
static uint64_t token_of(uint64_t n) {
        return splitmix64(&n);
}

static int u64_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t*) a, y = *(const uint64_t*) b;

        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        uint64_t tokens[PER_COMMON + PER_FRESH], seed = UINT64_C(20021001), fresh = UINT64_C(1) << 40;
        unsigned long messages = 20000;
        _cleanup_(spam_store_freep) SpamStore *s = NULL;
        SpamStoreStats st;
        double t0, t_step;
        int r;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: spam-store-scale DIR [MESSAGES]\n");
                return 2;
        }
        if (argc == 3)
                messages = strtoul(argv[2], NULL, 10);

        r = spam_store_open(argv[1], &s);
        if (r < 0) {
                fprintf(stderr, "%s: cannot open the store: %s\n", argv[1], strerror(-r));
                return 1;
        }
        r = spam_store_stats(s, &st);
        if (r < 0 || st.journal_records > 0) {
                fprintf(stderr, "%s: not an empty store\n", argv[1]);
                return 1;
        }

        t0 = t_step = now();
        for (unsigned long m = 0; m < messages; m++) {
                SpamLearn l = {
                        .class = m % 5 == 0 ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM,
                        .source = SPAM_SOURCE_ADMIN,
                        .reporter = "uid:0",
                        .tokens = tokens,
                };
                uint64_t d = m;
                size_t n = 0, k = 0;

                for (unsigned i = 0; i < PER_COMMON; i++) {
                        double u = (double) (splitmix64(&seed) >> 11) * 0x1.0p-53;

                        tokens[n++] = token_of((uint64_t) pow(COMMON, u));
                }
                for (unsigned i = 0; i < PER_FRESH; i++)
                        tokens[n++] = token_of(fresh++);
                qsort(tokens, n, sizeof(uint64_t), u64_compare);
                for (size_t i = 0; i < n; i++)
                        if (k == 0 || tokens[i] != tokens[k - 1])
                                tokens[k++] = tokens[i];
                l.n_tokens = k;
                for (unsigned i = 0; i < SPAM_DIGEST_SIZE; i += 8) {
                        uint64_t v = splitmix64(&d);

                        memcpy(l.digest + i, &v, 8);
                }

                r = spam_store_learn(s, &l);
                if (r < 0) {
                        fprintf(stderr, "learn %lu: %s\n", m, strerror(-r));
                        return 1;
                }
                if ((m + 1) % STEP == 0) {
                        double t = now();

                        printf("learned %lu: %.0f msg/s over the last %u\n", m + 1, STEP / (t - t_step), STEP);
                        fflush(stdout);
                        t_step = t;
                }
        }
        r = spam_store_flush(s);
        if (r >= 0)
                r = spam_store_stats(s, &st);
        if (r < 0) {
                fprintf(stderr, "flush: %s\n", strerror(-r));
                return 1;
        }
        printf("messages=%lu learn_s=%.1f tokens=%llu journal_bytes=%llu db_bytes=%llu\n", messages, now() - t0,
               (unsigned long long) st.tokens, (unsigned long long) st.journal_bytes, (unsigned long long) st.db_bytes);

        t0 = now();
        r = spam_store_rebuild(s);
        if (r >= 0)
                r = spam_store_stats(s, &st);
        if (r < 0) {
                fprintf(stderr, "rebuild: %s\n", strerror(-r));
                return 1;
        }
        printf("rebuild_s=%.1f db_bytes_rebuilt=%llu\n", now() - t0, (unsigned long long) st.db_bytes);

        return 0;
}
