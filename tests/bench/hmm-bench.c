/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* hmm-bench: accuracy and speed of mailsec-spamd's HMM de-obfuscator (spam-hmm.h).
 *
 * Lexicon: the 20,000 most frequent words of /usr/share/dict/words' intersection with the
 * training text if a word list is installed, otherwise of the training text alone (the
 * Debian copyright files and the licences in /usr/share/common-licenses other than the
 * GPL-3), with their counts as weights, plus a list of spam vocabulary.
 *
 * Clean text: /usr/share/common-licenses/GPL-3 and the README, NEWS, FAQ, *.txt and *.md
 * files under /usr/share/doc (none of them part of the training text), up to --clean-mb.
 * Every report there is a false report.
 *
 * Obfuscated text: each spam word disguised by each kind of obfuscation, with a fixed
 * random seed, in a sentence of ordinary words. A sample counts as decoded when the word
 * is reported on a span that overlaps its disguise.
 *
 *   hmm-bench [--clean-mb N] [--seed N] [--lexicon N] [--verbose]
 */

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cleanup.h"
#include "spam-hmm.h"

static double arg_clean_mb = 8.0;
static uint64_t arg_seed = 20050721;
static size_t arg_lexicon = 20000;
static bool arg_verbose = false;

static const char *const spam_words[] = {
        "viagra", "cialis", "levitra", "pharmacy", "prescription", "pills", "medication",
        "mortgage", "refinance", "loan", "credit", "casino", "poker", "lottery", "winner",
        "jackpot", "million", "dollars", "money", "cash", "free", "offer", "discount",
        "cheap", "bargain", "rolex", "replica", "watches", "luxury", "weight", "diet",
        "enlargement", "penis", "erection", "sexual", "sex", "dating", "singles", "adult",
        "naked", "girls", "hookup", "bitcoin", "crypto", "investment", "profit",
        "guaranteed", "unsecured", "debt", "insurance", "viagra", "valium", "xanax",
        "vicodin", "meds", "online", "order", "click", "unsubscribe", "urgent", "winning",
        "claim", "prize", "bonus", "deposit", "password", "account", "verify", "banking",
        "paypal", "invoice", "refund", "inheritance", "beneficiary", "transfer",
};

/* ---- a growable buffer and word counts ---- */

typedef struct Buf {
        char *data;
        size_t size, alloc;
} Buf;

static int buf_append(Buf *b, const char *p, size_t n) {
        if (b->size + n + 1 > b->alloc) {
                size_t a = (b->size + n + 1) * 2;
                char *d = realloc(b->data, a);

                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->alloc = a;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = 0;
        return 0;
}

static int buf_append_str(Buf *b, const char *s) {
        return buf_append(b, s, strlen(s));
}

typedef struct Count {
        char *word;
        uint32_t n;
} Count;

typedef struct Counts {
        Count *slots;
        size_t mask, n;
} Counts;

static uint64_t str_hash(const char *s, size_t n) {
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) s[i]) * 1099511628211ULL;
        return h ^ (h >> 29);
}

static Count* counts_get(Counts *c, const char *w, size_t n, bool add) {
        size_t i;

        if (add && (c->n + 1) * 2 > c->mask + 1) {
                size_t size = c->mask ? (c->mask + 1) * 2 : 1 << 16;
                Count *s = calloc(size, sizeof(Count));

                if (!s)
                        return NULL;
                for (size_t k = 0; c->mask && k <= c->mask; k++)
                        if (c->slots[k].word) {
                                size_t j = str_hash(c->slots[k].word, strlen(c->slots[k].word)) & (size - 1);

                                while (s[j].word)
                                        j = (j + 1) & (size - 1);
                                s[j] = c->slots[k];
                        }
                free(c->slots);
                c->slots = s;
                c->mask = size - 1;
        }
        if (!c->slots)
                return NULL;
        for (i = str_hash(w, n) & c->mask; c->slots[i].word; i = (i + 1) & c->mask)
                if (strlen(c->slots[i].word) == n && memcmp(c->slots[i].word, w, n) == 0)
                        return &c->slots[i];
        if (!add)
                return NULL;
        c->slots[i].word = strndup(w, n);
        if (!c->slots[i].word)
                return NULL;
        c->n++;
        return &c->slots[i];
}

static void count_words(Counts *c, const char *text, size_t len) {
        for (size_t i = 0; i < len;) {
                char w[32];
                size_t n = 0;

                while (i < len && !((text[i] | 0x20) >= 'a' && (text[i] | 0x20) <= 'z'))
                        i++;
                while (i < len && (text[i] | 0x20) >= 'a' && (text[i] | 0x20) <= 'z') {
                        if (n < sizeof(w))
                                w[n] = (char) (text[i] | 0x20);
                        n++;
                        i++;
                }
                if (n >= SPAM_HMM_WORD_MIN && n <= SPAM_HMM_WORD_MAX) {
                        Count *e = counts_get(c, w, n, true);

                        if (e)
                                e->n++;
                }
        }
}

static int read_file(const char *path, Buf *b, size_t max) {
        _cleanup_fclose_ FILE *f = NULL;
        char chunk[65536];
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (b->size < max && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (buf_append(b, chunk, n) < 0)
                        return -ENOMEM;
        return 0;
}

static bool is_clean_name(const char *name) {
        return strncmp(name, "README", 6) == 0 || strncmp(name, "NEWS", 4) == 0 ||
                strncmp(name, "FAQ", 3) == 0 ||
                (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".txt") == 0) ||
                (strlen(name) > 3 && strcmp(name + strlen(name) - 3, ".md") == 0);
}

/* Walks /usr/share/doc in name order: copyright files go to training, the clean names to
 * clean. */
static void walk(const char *dir, Buf *training, Buf *clean, size_t clean_max, unsigned depth) {
        struct dirent **list = NULL;
        int n;

        if (depth > 4)
                return;
        n = scandir(dir, &list, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                const char *name = list[i]->d_name;
                char path[4096];
                struct stat st;

                if (name[0] != '.' && (size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path) &&
                    lstat(path, &st) >= 0) {
                        if (S_ISDIR(st.st_mode))
                                walk(path, training, clean, clean_max, depth + 1);
                        else if (S_ISREG(st.st_mode) && strcmp(name, "copyright") == 0)
                                (void) read_file(path, training, SIZE_MAX);
                        else if (S_ISREG(st.st_mode) && is_clean_name(name) && clean->size < clean_max)
                                (void) read_file(path, clean, clean_max);
                }
                free(list[i]);
        }
        free(list);
}

/* ---- obfuscations ---- */

typedef enum Kind {
        KIND_LEET,
        KIND_SEPARATORS,
        KIND_SPACED,
        KIND_SPLIT,
        KIND_PICTURE,
        KIND_HOMOGLYPH,
        KIND_ACCENT,
        KIND_DELETION,
        KIND_DOUBLING,
        KIND_JOINED,
        KIND_MIXED,
        _KIND_MAX,
} Kind;

static const char *const kind_names[_KIND_MAX] = {
        [KIND_LEET] = "digits/symbols (v1@gra)",
        [KIND_SEPARATORS] = "separators (V.I.A.G.R.A)",
        [KIND_SPACED] = "spaced letters (v i a g r a)",
        [KIND_SPLIT] = "split + digit (m0rt gage)",
        [KIND_PICTURE] = "pictures (\\/iagra, |\\/|)",
        [KIND_HOMOGLYPH] = "Cyrillic/Greek homoglyphs",
        [KIND_ACCENT] = "accented letters (víagra)",
        [KIND_DELETION] = "dropped letter (viagr)",
        [KIND_DOUBLING] = "doubled letter (viaggra)",
        [KIND_JOINED] = "joined + digit (buyv1agra)",
        [KIND_MIXED] = "digits + separators (v-1-a-g-r-a)",
};

static uint64_t rng_state;

static uint64_t rng(void) {
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static size_t rng_below(size_t n) {
        return n ? (size_t) (rng() % n) : 0;
}

static const char* leet_of(char c) {
        static const char *const table[26] = {
                ['a' - 'a'] = "4@", ['e' - 'a'] = "3", ['i' - 'a'] = "1!|", ['o' - 'a'] = "0",
                ['s' - 'a'] = "5$", ['t' - 'a'] = "7", ['l' - 'a'] = "1|", ['g' - 'a'] = "9",
                ['b' - 'a'] = "8",
        };
        return c >= 'a' && c <= 'z' ? table[c - 'a'] : NULL;
}

static const char* glyph_of(char c) {
        switch (c) {
        case 'a': return "\u0430";
        case 'e': return "\u0435";
        case 'o': return rng_below(2) ? "\u043e" : "\u03bf";
        case 'p': return "\u0440";
        case 'c': return "\u0441";
        case 'y': return "\u0443";
        case 'x': return "\u0445";
        case 'i': return "\u0456";
        case 's': return "\u0455";
        case 'v': return "\u03bd";
        case 'k': return "\u03ba";
        case 'u': return "\u03c5";
        default: return NULL;
        }
}

static const char* accent_of(char c) {
        static const char *const a[] = { "\u00e1", "\u00e0", "\u00e4", "\u00e2" };
        static const char *const e[] = { "\u00e9", "\u00e8", "\u00eb", "\u00ea" };
        static const char *const i[] = { "\u00ed", "\u00ec", "\u00ef", "\u00ee" };
        static const char *const o[] = { "\u00f3", "\u00f2", "\u00f6", "\u00f4" };
        static const char *const u[] = { "\u00fa", "\u00f9", "\u00fc", "\u00fb" };

        switch (c) {
        case 'a': return a[rng_below(4)];
        case 'e': return e[rng_below(4)];
        case 'i': return i[rng_below(4)];
        case 'o': return o[rng_below(4)];
        case 'u': return u[rng_below(4)];
        case 'n': return "\u00f1";
        case 'c': return "\u00e7";
        default: return NULL;
        }
}

static const char* picture_of(char c) {
        switch (c) {
        case 'v': return "\\/";
        case 'm': return "|\\/|";
        case 'w': return "\\/\\/";
        case 'o': return "()";
        case 'k': return "|<";
        case 'd': return "|)";
        case 'h': return "|-|";
        default: return NULL;
        }
}

/* Replaces up to max letters (at least one) by what sub() gives; false if none can be. */
static bool substitute(const char *w, const char* (*sub)(char), size_t max, bool single_char_leet, Buf *out) {
        size_t n = strlen(w), eligible[SPAM_HMM_WORD_MAX], n_el = 0;
        bool pick[SPAM_HMM_WORD_MAX] = {};

        for (size_t i = 0; i < n; i++)
                if (sub(w[i]))
                        eligible[n_el++] = i;
        if (n_el == 0)
                return false;
        for (size_t k = 0, m = 1 + rng_below(max); k < m; k++)
                pick[eligible[rng_below(n_el)]] = true;
        for (size_t i = 0; i < n; i++) {
                if (pick[i]) {
                        const char *s = sub(w[i]);

                        if (single_char_leet) {
                                char c = s[rng_below(strlen(s))];

                                (void) buf_append(out, &c, 1);
                        } else
                                (void) buf_append_str(out, s);
                } else
                        (void) buf_append(out, &w[i], 1);
        }
        return true;
}

static bool obfuscate(Kind kind, const char *w, const char *other, Buf *out) {
        size_t n = strlen(w);
        Buf tmp = {};
        bool ok = true;

        switch (kind) {
        case KIND_LEET:
                return substitute(w, leet_of, 2, true, out);
        case KIND_SEPARATORS: {
                static const char seps[] = ".-_*";
                char sep = seps[rng_below(4)];
                bool upper = rng_below(2);

                for (size_t i = 0; i < n; i++) {
                        char c = upper ? (char) (w[i] - 32) : w[i];

                        if (i > 0)
                                (void) buf_append(out, &sep, 1);
                        (void) buf_append(out, &c, 1);
                }
                return true;
        }
        case KIND_SPACED:
                for (size_t i = 0; i < n; i++) {
                        if (i > 0)
                                (void) buf_append_str(out, rng_below(4) == 0 ? "  " : " ");
                        (void) buf_append(out, &w[i], 1);
                }
                return true;
        case KIND_SPLIT: {
                size_t at;

                if (n < 5 || !substitute(w, leet_of, 1, true, &tmp))
                        ok = false;
                else {
                        at = 2 + rng_below(n - 3);
                        /* split after the at-th letter of the disguise (1 byte per letter) */
                        (void) buf_append(out, tmp.data, at);
                        (void) buf_append_str(out, " ");
                        (void) buf_append_str(out, tmp.data + at);
                }
                free(tmp.data);
                return ok;
        }
        case KIND_PICTURE:
                return substitute(w, picture_of, 1, false, out);
        case KIND_HOMOGLYPH:
                return substitute(w, glyph_of, 3, false, out);
        case KIND_ACCENT:
                return substitute(w, accent_of, 2, false, out);
        case KIND_DELETION: {
                size_t at;

                if (n < 5)
                        return false;
                at = 1 + rng_below(n - 1);
                (void) buf_append(out, w, at);
                (void) buf_append_str(out, w + at + 1);
                return true;
        }
        case KIND_DOUBLING: {
                size_t at = rng_below(n);

                (void) buf_append(out, w, at + 1);
                (void) buf_append(out, w + at, n - at);
                return true;
        }
        case KIND_JOINED:
                (void) buf_append_str(out, other);
                return substitute(w, leet_of, 1, true, out);
        case KIND_MIXED: {
                static const char seps[] = ".-_ ";
                char sep = seps[rng_below(4)];

                if (!substitute(w, leet_of, 2, true, &tmp))
                        ok = false;
                else
                        for (size_t i = 0; i < tmp.size; i++) {
                                if (i > 0)
                                        (void) buf_append(out, &sep, 1);
                                (void) buf_append(out, &tmp.data[i], 1);
                        }
                free(tmp.data);
                return ok;
        }
        default:
                return false;
        }
}

/* ---- scanning ---- */

typedef struct Reports {
        const char *text;
        size_t n;
        const char *target;             /* when checking a sample */
        size_t lo, hi;                  /* the disguise */
        bool hit;
        size_t other;
        bool print;
} Reports;

static int on_word(const char *word, size_t word_len, size_t start, size_t end, double confidence,
                   void *userdata) {
        Reports *r = userdata;

        r->n++;
        if (r->target) {
                if (strlen(r->target) == word_len && memcmp(r->target, word, word_len) == 0 &&
                    start < r->hi && end > r->lo)
                        r->hit = true;
                else
                        r->other++;
        }
        if (r->print)
                printf("    \"%.*s\" -> %.*s (%.2f)\n", (int) (end - start), r->text + start,
                       (int) word_len, word, confidence);
        return 0;
}

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static size_t count_chars(const char *s, size_t n) {
        size_t c = 0;

        for (size_t i = 0; i < n; i++)
                c += ((uint8_t) s[i] & 0xC0) != 0x80;
        return c;
}

/* Scans text in pieces of about 64 KiB cut at line ends, as text parts of mail come. */
static int scan_pieces(const SpamHmm *h, const char *text, size_t len, Reports *r) {
        for (size_t i = 0; i < len;) {
                size_t e = i + 65536 < len ? i + 65536 : len;
                int k;

                while (e < len && text[e - 1] != '\n')
                        e++;
                r->text = text;
                k = spam_hmm_scan(h, text + i, e - i, on_word, r);
                if (k < 0)
                        return k;
                i = e;
        }
        return 0;
}

/* Scan callbacks get offsets into the piece; for printing, shift the text pointer. */
static int scan_printing(const SpamHmm *h, const char *text, size_t len, Reports *r) {
        for (size_t i = 0; i < len;) {
                size_t e = i + 65536 < len ? i + 65536 : len;
                int k;

                while (e < len && text[e - 1] != '\n')
                        e++;
                r->text = text + i;
                k = spam_hmm_scan(h, text + i, e - i, on_word, r);
                if (k < 0)
                        return k;
                i = e;
        }
        return 0;
}

static double throughput(const SpamHmm *h, const char *text, size_t len, double *ret_seconds) {
        Reports r = {};
        double t0 = now(), t;
        unsigned rounds = 0;

        do {
                if (scan_pieces(h, text, len, &r) < 0)
                        return -1;
                rounds++;
                t = now() - t0;
        } while (t < 1.0);
        *ret_seconds = t / rounds;
        return (double) len / (t / rounds);
}

static int count_cmp(const void *a, const void *b) {
        const Count *x = a, *y = b;

        if (x->n != y->n)
                return x->n < y->n ? 1 : -1;
        return strcmp(x->word ?: "", y->word ?: "");
}

static void help(void) {
        printf("hmm-bench [--clean-mb N] [--seed N] [--lexicon N] [--verbose]\n"
               "Accuracy and speed of the HMM de-obfuscator of mailsec-spamd.\n");
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "clean-mb", required_argument, NULL, 'c' },
                { "seed", required_argument, NULL, 's' },
                { "lexicon", required_argument, NULL, 'l' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:s:l:vh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_clean_mb = strtod(optarg, NULL);
                        break;
                case 's':
                        arg_seed = strtoull(optarg, NULL, 0);
                        break;
                case 'l':
                        arg_lexicon = strtoul(optarg, NULL, 0);
                        break;
                case 'v':
                        arg_verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        Buf training = {}, clean = {}, obf = {}, dict = {};
        Counts counts = {}, dict_words = {};
        Count *sorted = NULL;
        size_t n_sorted = 0, n_lex = 0, total_samples = 0, total_hits = 0, total_other = 0;
        size_t samples[_KIND_MAX] = {}, hits[_KIND_MAX] = {}, others[_KIND_MAX] = {};
        static const char *const context[] = {
                "please", "read", "the", "following", "today", "and", "reply", "for", "your", "best",
                "new", "order", "from", "our", "team", "with", "this", "week",
        };
        Reports fp = {};
        double secs, bps;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        rng_state = arg_seed ?: 1;

        /* training text and clean text */
        {
                struct dirent **list = NULL;
                int n = scandir("/usr/share/common-licenses", &list, NULL, alphasort);

                for (int i = 0; i < n; i++) {
                        char path[512];

                        snprintf(path, sizeof(path), "/usr/share/common-licenses/%s", list[i]->d_name);
                        if (strcmp(list[i]->d_name, "GPL-3") == 0)
                                (void) read_file(path, &clean, SIZE_MAX);
                        else if (list[i]->d_name[0] != '.')
                                (void) read_file(path, &training, SIZE_MAX);
                        free(list[i]);
                }
                free(list);
        }
        walk("/usr/share/doc", &training, &clean, (size_t) (arg_clean_mb * 1024 * 1024), 0);
        if (training.size == 0 || clean.size == 0) {
                fprintf(stderr, "No training or clean text under /usr/share/doc and /usr/share/common-licenses, skipping.\n");
                return 77;
        }
        count_words(&counts, training.data, training.size);

        /* a word list, when installed, says which of the counted words are words */
        if (read_file("/usr/share/dict/words", &dict, SIZE_MAX) >= 0 && dict.size > 0)
                for (char *p = dict.data, *e; p < dict.data + dict.size; p = e + 1) {
                        e = strchr(p, '\n') ?: dict.data + dict.size;
                        (void) counts_get(&dict_words, p, (size_t) (e - p), true);
                }

        sorted = calloc(counts.n + 1, sizeof(Count));
        if (!sorted)
                return EXIT_FAILURE;
        for (size_t k = 0; counts.slots && k <= counts.mask; k++)
                if (counts.slots[k].word &&
                    (dict_words.n == 0 ||
                     counts_get(&dict_words, counts.slots[k].word, strlen(counts.slots[k].word), false)))
                        sorted[n_sorted++] = counts.slots[k];
        qsort(sorted, n_sorted, sizeof(Count), count_cmp);

        r = spam_hmm_new(&h);
        if (r < 0)
                return EXIT_FAILURE;
        for (size_t k = 0; k < n_sorted && n_lex < arg_lexicon; k++)
                if (spam_hmm_add_word(h, sorted[k].word, sorted[k].n) >= 0)
                        n_lex++;
        for (size_t k = 0; k < ELEMENTSOF(spam_words); k++)
                (void) spam_hmm_add_word(h, spam_words[k], 50);
        r = spam_hmm_build(h);
        if (r < 0)
                return EXIT_FAILURE;

        printf("HMM de-obfuscator benchmark (seed %llu)\n", (unsigned long long) arg_seed);
        printf("  lexicon: %zu words (%zu most frequent of %.1f MB training text%s, plus %zu spam words)\n",
               spam_hmm_size(h), n_lex, (double) training.size / 1e6,
               dict_words.n ? " found in /usr/share/dict/words" : "", ELEMENTSOF(spam_words));
        printf("  clean text: %.2f MB (GPL-3 and documentation under /usr/share/doc)\n\n",
               (double) clean.size / 1e6);

        /* accuracy on the obfuscated set */
        for (unsigned rep = 0; rep < 4; rep++)
                for (Kind kind = 0; kind < _KIND_MAX; kind++)
                        for (size_t k = 0; k < ELEMENTSOF(spam_words); k++) {
                                const char *w = spam_words[k];
                                Buf s = {};
                                Reports rep_r = { .target = w };
                                size_t lo, hi;

                                (void) buf_append_str(&s, context[rng_below(ELEMENTSOF(context))]);
                                (void) buf_append_str(&s, " ");
                                (void) buf_append_str(&s, context[rng_below(ELEMENTSOF(context))]);
                                (void) buf_append_str(&s, " ");
                                lo = s.size;
                                if (!obfuscate(kind, w, context[rng_below(ELEMENTSOF(context))], &s)) {
                                        free(s.data);
                                        continue;
                                }
                                hi = s.size;
                                (void) buf_append_str(&s, " ");
                                (void) buf_append_str(&s, context[rng_below(ELEMENTSOF(context))]);
                                (void) buf_append_str(&s, ".\n");

                                rep_r.lo = lo;
                                rep_r.hi = hi;
                                rep_r.text = s.data;
                                if (spam_hmm_scan(h, s.data, s.size, on_word, &rep_r) < 0)
                                        return EXIT_FAILURE;
                                samples[kind]++;
                                hits[kind] += rep_r.hit;
                                others[kind] += rep_r.other;
                                if (arg_verbose && (!rep_r.hit || rep_r.other > 0)) {
                                        printf("  %s: \"%.*s\"%s\n", rep_r.hit ? "extra" : "missed",
                                               (int) (hi - lo), s.data + lo, rep_r.hit ? "" : "");
                                        if (rep_r.other > 0) {
                                                rep_r.print = true;
                                                (void) spam_hmm_scan(h, s.data, s.size, on_word, &rep_r);
                                        }
                                }
                                (void) buf_append(&obf, s.data, s.size);
                                free(s.data);
                        }

        printf("  %-36s %8s %9s %12s\n", "obfuscation", "samples", "decoded", "other words");
        for (Kind kind = 0; kind < _KIND_MAX; kind++) {
                printf("  %-36s %8zu %8.1f%% %12zu\n", kind_names[kind], samples[kind],
                       samples[kind] ? 100.0 * (double) hits[kind] / (double) samples[kind] : 0.0, others[kind]);
                total_samples += samples[kind];
                total_hits += hits[kind];
                total_other += others[kind];
        }
        printf("  %-36s %8zu %8.1f%% %12zu\n\n", "all", total_samples,
               100.0 * (double) total_hits / (double) total_samples, total_other);

        /* false reports on clean text */
        fp.print = arg_verbose;
        if (arg_verbose)
                printf("  reports on clean text:\n");
        r = scan_printing(h, clean.data, clean.size, &fp);
        if (r < 0)
                return EXIT_FAILURE;
        printf("  false reports on clean text: %zu in %.2f MB (%.2f per MB)\n\n", fp.n,
               (double) clean.size / 1e6, (double) fp.n / ((double) clean.size / 1e6));

        /* speed */
        bps = throughput(h, clean.data, clean.size, &secs);
        printf("  speed, clean text:      %8.1f MB/s %12.0f chars/s\n", bps / 1e6,
               (double) count_chars(clean.data, clean.size) / secs);
        bps = throughput(h, obf.data, obf.size, &secs);
        printf("  speed, obfuscated text: %8.1f MB/s %12.0f chars/s  (%.0f KB of samples)\n", bps / 1e6,
               (double) count_chars(obf.data, obf.size) / secs, (double) obf.size / 1e3);

        for (size_t k = 0; counts.slots && k <= counts.mask; k++)
                free(counts.slots[k].word);
        for (size_t k = 0; dict_words.slots && k <= dict_words.mask; k++)
                free(dict_words.slots[k].word);
        free(counts.slots);
        free(dict_words.slots);
        free(sorted);
        free(training.data);
        free(clean.data);
        free(obf.data);
        free(dict.data);
        return EXIT_SUCCESS;
}
