/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spam-bench: accuracy and speed of libspamd (tokenizer + Bayesian combining) on the
 * SpamAssassin public corpus, for tests/bench/spam.
 *
 *   spam-bench --corpus DIR --protocol a [--scores FILE] [options]
 *   spam-bench --corpus DIR --protocol b [--scores FILE] [options]
 *   spam-bench --corpus DIR --protocol cv [--folds K] [--sweep] [options]
 *   spam-bench --corpus DIR --export OUTDIR
 *   spam-bench --tokens FILE
 *
 * DIR is the corpus' data directory (tools/fetch-spam-corpus --path): one JSON file per
 * message under easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2. The raw message is
 * the "text" member, whose mbox "From " first line is dropped.
 *
 *   a    train on group 1 (easy-ham-1, hard-ham-1, spam-1), classify group 2 (easy-ham-2,
 *        spam-2), which is never learned
 *   b    all 6,046 messages in one fixed pseudo-random order (SplitMix64 from a fixed
 *        seed over the messages sorted by group and id); each is classified, then
 *        learned with its true class (TREC's immediate feedback)
 *   b1   protocol b over group 1's messages only (in b's order), for tuning; with
 *        --order-seed N, in the order of another seed (the same messages: one order
 *        decides much of the figure, as a few messages do, so several seeds say more)
 *   cv   K-fold cross-validation within group 1 only (fold = position in the sorted
 *        list mod K), for tuning; --sweep runs a grid of the Bayesian parameters over
 *        the same folds (the tokens of each message are computed once)
 *   export  writes every message (without its "From " line) to OUTDIR/GROUP/ID.eml, and
 *        the lists OUTDIR/train-a (class path), OUTDIR/test-a and OUTDIR/order-b, and
 *        group 1's cross-validation folds OUTDIR/folds-position and OUTDIR/folds-sender
 *        (fold class path, --folds K), so that another filter is run on exactly the same
 *        messages in the same order
 *
 * Counts are kept in memory (an open-addressing table of token hash -> spam/ham
 * counts); the token key is fixed, so runs repeat exactly.
 *
 * Options: --no-bigrams, --no-shapes (no c: and !: readings of body words), --decide-shapes
 * (the deciding estimate reads them too, not only the ordering one), --no-field-families
 * (each header field of the list, program and MIME families counts on its own), --markup
 * (m: tokens of HTML elements), --s X, --x X,
 * --min-dev X, --max-tokens N, --order-s X, --order-form-s X, --order-min-dev X, --order-nats X,
 * --min-messages N, --spam-min-messages N, --ham-cutoff X, --spam-cutoff X (Bayesian parameters; defaults: spam_bayes_params_default), --hmm
 * (build the HMM de-obfuscator from the learned lexicon and classify with it: after
 * training in protocol a, every --hmm-every messages in protocol b).
 *
 * Output: "key=value" words on one line per result. fp% is ham called spam over ham,
 * fn% spam called ham over spam, unsure counts are per class, auc1m% is (1 − ROC AUC)
 * in percent from the scores (ties count half), classify/s and learn/s are messages per
 * second of tokenize+classify and tokenize+count update (messages already in memory),
 * rss_kb the peak resident set, corpus_kb what the messages themselves take of it.
 * --scores writes "class score" lines for the classified messages.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "macro.h"
#include "memfd-util.h"
#include "spam-bayes.h"
#include "spam-token.h"
#include "spam-tokenizer.h"
#if HAVE_SPAM_HMM
#include "spam-hmm.h"
#endif
/* libspamd has the GDBM store when spam-store.c is there (services/spamd/meson.build
 * builds what exists); its directory is on our include path, so the same test works here.
 * Without it, --store says so. */
#if defined(__has_include)
#  if __has_include("spam-store.c")
#    define HAVE_SPAM_STORE 1
#  endif
#endif
#ifndef HAVE_SPAM_STORE
#  define HAVE_SPAM_STORE 0
#endif
#if HAVE_SPAM_STORE
#include "spam-store.h"
#endif

typedef struct Message {
        char *group;
        char *id;
        char *text;             /* without the "From " line */
        size_t len;
        bool spam;
        unsigned order;         /* position in the sorted list */
        /* cached tokens (cv) */
        uint64_t *tokens;
        uint8_t *kinds;
        uint32_t (*parts)[2];
        size_t n_tokens;
} Message;

static const char *arg_corpus = NULL;
static const char *arg_protocol = NULL;
static const char *arg_scores = NULL;
static const char *arg_export = NULL;
static const char *arg_store = NULL;
static bool arg_trained = false;
static unsigned arg_folds = 5;
static bool arg_sweep = false;
static bool arg_bigrams = true;
static bool arg_markup = false;
static bool arg_field_families = true;
static bool arg_shapes = true;
static bool arg_tiled = true;
static unsigned arg_window = 0;
static bool arg_hmm = false;
static bool arg_hmm_cache = true;
static unsigned arg_hmm_every = 500;
static unsigned arg_explain = 0;
static unsigned arg_repeat = 1;
static uint64_t arg_memory_limit = 0;  /* --memory-limit: 0, the store's default */
static double arg_obfuscate = 0.0;
static double arg_lr = 0.0;             /* learning rate of the logistic stage; 0: off */
static unsigned arg_lr_epochs = 3;
static uint64_t arg_order_seed = UINT64_C(20021001);     /* protocol b's order */
static double arg_lr_mix = -1.0;       /* < 0: the logistic score alone; else logit + mix·(2f − 1) */
static bool arg_folds_by_sender = false; /* cv: a message's fold from its From domain */
static SpamBayesParams arg_params;

/* ---- a minimal reader for the corpus' flat JSON objects --------------------------- */

static const char* json_ws(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p++;
        return p;
}

static size_t put_utf8(uint32_t c, char *o) {
        if (c < 0x80) {
                o[0] = (char) c;
                return 1;
        }
        if (c < 0x800) {
                o[0] = (char) (0xC0 | (c >> 6));
                o[1] = (char) (0x80 | (c & 0x3F));
                return 2;
        }
        if (c < 0x10000) {
                o[0] = (char) (0xE0 | (c >> 12));
                o[1] = (char) (0x80 | ((c >> 6) & 0x3F));
                o[2] = (char) (0x80 | (c & 0x3F));
                return 3;
        }
        o[0] = (char) (0xF0 | (c >> 18));
        o[1] = (char) (0x80 | ((c >> 12) & 0x3F));
        o[2] = (char) (0x80 | ((c >> 6) & 0x3F));
        o[3] = (char) (0x80 | (c & 0x3F));
        return 4;
}

static int hex4(const char *p, const char *end, uint32_t *ret) {
        uint32_t v = 0;

        if (end - p < 4)
                return -EBADMSG;
        for (int i = 0; i < 4; i++) {
                char c = p[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                        v |= (uint32_t) ((c | 0x20) - 'a' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* p at the opening quote; a decoded copy in *ret (may be NULL to skip), returns the
 * position after the closing quote or NULL. */
static const char* json_string(const char *p, const char *end, char **ret, size_t *ret_len) {
        char *o = NULL;
        size_t n = 0;

        assert(*p == '"');
        p++;
        if (ret) {
                const char *q = memchr(p, '"', (size_t) (end - p));
                size_t guess = q ? (size_t) (end - p) : 0;

                o = malloc(guess + 1);
                if (!o)
                        return NULL;
        }
        while (p < end && *p != '"') {
                if (*p != '\\') {
                        if (o)
                                o[n] = *p;
                        n++;
                        p++;
                        continue;
                }
                if (++p >= end)
                        goto fail;
                switch (*p) {
                case 'n': if (o) o[n] = '\n'; n++; p++; break;
                case 't': if (o) o[n] = '\t'; n++; p++; break;
                case 'r': if (o) o[n] = '\r'; n++; p++; break;
                case 'b': if (o) o[n] = '\b'; n++; p++; break;
                case 'f': if (o) o[n] = '\f'; n++; p++; break;
                case 'u': {
                        uint32_t c, c2;

                        if (hex4(p + 1, end, &c) < 0)
                                goto fail;
                        p += 5;
                        if (c >= 0xD800 && c <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                            hex4(p + 2, end, &c2) >= 0 && c2 >= 0xDC00 && c2 <= 0xDFFF) {
                                c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
                                p += 6;
                        } else if (c >= 0xD800 && c <= 0xDFFF)
                                c = 0xFFFD;
                        if (o)
                                n += put_utf8(c, o + n);
                        else
                                n += 4;
                        break;
                }
                default:
                        if (o)
                                o[n] = *p;
                        n++;
                        p++;
                }
        }
        if (p >= end)
                goto fail;
        if (o) {
                o[n] = '\0';
                *ret = o;
                *ret_len = n;
        }
        return p + 1;

fail:
        free(o);
        return NULL;
}

static const char* json_skip(const char *p, const char *end) {
        unsigned depth = 0;

        p = json_ws(p, end);
        do {
                if (p >= end)
                        return NULL;
                if (*p == '"') {
                        p = json_string(p, end, NULL, NULL);
                        if (!p)
                                return NULL;
                        continue;
                }
                if (*p == '{' || *p == '[')
                        depth++;
                else if (*p == '}' || *p == ']') {
                        if (depth == 0)
                                return p;
                        depth--;
                } else if (depth == 0 && *p == ',')
                        return p;
                p++;
        } while (depth > 0 || (*p != ',' && *p != '}'));
        return p;
}

static int read_message(const char *path, Message *m) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *p, *end;
        struct stat st;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        if (fread(buf, 1, (size_t) st.st_size, f) != (size_t) st.st_size)
                return -EIO;
        p = buf;
        end = buf + st.st_size;

        p = json_ws(p, end);
        if (p >= end || *p != '{')
                return -EBADMSG;
        p++;
        for (;;) {
                _cleanup_free_ char *key = NULL;
                size_t kl;

                p = json_ws(p, end);
                if (p < end && *p == '}')
                        break;
                if (p >= end || *p != '"')
                        return -EBADMSG;
                p = json_string(p, end, &key, &kl);
                if (!p)
                        return -EBADMSG;
                p = json_ws(p, end);
                if (p >= end || *p != ':')
                        return -EBADMSG;
                p = json_ws(p + 1, end);
                if (p < end && *p == '"' && (strcmp(key, "text") == 0 || strcmp(key, "group") == 0 ||
                                             strcmp(key, "id") == 0)) {
                        char *v;
                        size_t vl;

                        p = json_string(p, end, &v, &vl);
                        if (!p)
                                return -EBADMSG;
                        if (strcmp(key, "text") == 0) {
                                free(m->text);
                                m->text = v;
                                m->len = vl;
                        } else if (strcmp(key, "group") == 0) {
                                free(m->group);
                                m->group = v;
                        } else {
                                free(m->id);
                                m->id = v;
                        }
                } else {
                        p = json_skip(p, end);
                        if (!p)
                                return -EBADMSG;
                }
                p = json_ws(p, end);
                if (p < end && *p == ',')
                        p++;
        }
        if (!m->text || !m->group || !m->id)
                return -EBADMSG;

        /* the mbox "From " line is not part of the message */
        if (strncmp(m->text, "From ", 5) == 0) {
                char *nl = memchr(m->text, '\n', m->len);
                size_t k = nl ? (size_t) (nl + 1 - m->text) : m->len;

                memmove(m->text, m->text + k, m->len - k + 1);
                m->len -= k;
        }
        m->spam = strncmp(m->group, "spam", 4) == 0;
        return 0;
}

static const char* const groups[] = { "easy-ham-1", "hard-ham-1", "spam-1", "easy-ham-2", "spam-2" };

static bool group_one(const Message *m) {
        return strcmp(m->group, "easy-ham-1") == 0 || strcmp(m->group, "hard-ham-1") == 0 ||
               strcmp(m->group, "spam-1") == 0;
}

static int message_cmp(const void *a, const void *b) {
        const Message *x = a, *y = b;
        int c = strcmp(x->group, y->group);

        return c != 0 ? c : strcmp(x->id, y->id);
}

static int load_corpus(const char *dir, Message **ret, size_t *ret_n, size_t *ret_bytes) {
        Message *v = NULL;
        size_t n = 0, alloc = 0, bytes = 0;

        for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
                char path[4096];
                DIR *d;
                struct dirent *de;

                snprintf(path, sizeof(path), "%s/%s", dir, groups[g]);
                d = opendir(path);
                if (!d) {
                        fprintf(stderr, "spam-bench: %s: %m\n", path);
                        return -errno;
                }
                while ((de = readdir(d))) {
                        int r;

                        if (!strstr(de->d_name, ".json"))
                                continue;
                        if (n >= alloc) {
                                alloc = alloc ? alloc * 2 : 8192;
                                v = realloc(v, alloc * sizeof(Message));
                                if (!v)
                                        return -ENOMEM;
                        }
                        v[n] = (Message) {};
                        snprintf(path, sizeof(path), "%s/%s/%s", dir, groups[g], de->d_name);
                        r = read_message(path, &v[n]);
                        if (r < 0) {
                                fprintf(stderr, "spam-bench: %s: %s\n", path, strerror(-r));
                                closedir(d);
                                return r;
                        }
                        bytes += v[n].len;
                        n++;
                }
                closedir(d);
        }
        qsort(v, n, sizeof(Message), message_cmp);
        for (size_t i = 0; i < n; i++)
                v[i].order = (unsigned) i;
        *ret = v;
        *ret_n = n;
        *ret_bytes = bytes;
        return 0;
}

/* ---- in-memory counts ----------------------------------------------------------- */

typedef struct CountEntry {
        uint64_t hash;
        SpamCounts c;
} CountEntry;

typedef struct Counts {
        CountEntry *v;
        size_t size, n;         /* size a power of two; hash 0 marks an empty slot */
        SpamTotals totals;
} Counts;

static void counts_done(Counts *c) {
        free(c->v);
        *c = (Counts) {};
}

static CountEntry* counts_find(const Counts *c, uint64_t h) {
        size_t mask, i;

        if (c->size == 0)
                return NULL;
        h = h ?: 1;
        mask = c->size - 1;
        for (i = (size_t) h & mask; c->v[i].hash != 0; i = (i + 1) & mask)
                if (c->v[i].hash == h)
                        return &c->v[i];
        return NULL;
}

static int counts_grow(Counts *c) {
        size_t size = c->size ? c->size * 2 : 1U << 16, mask = size - 1;
        CountEntry *v = calloc(size, sizeof(CountEntry));

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < c->size; i++)
                if (c->v[i].hash != 0) {
                        size_t j = (size_t) c->v[i].hash & mask;

                        while (v[j].hash != 0)
                                j = (j + 1) & mask;
                        v[j] = c->v[i];
                }
        free(c->v);
        c->v = v;
        c->size = size;
        return 0;
}

/* Starts loading the slots of a message's tokens into the cache, so that the look-ups that
 * follow do not each wait for memory in turn: the table is far larger than the caches and
 * its slots are random. */
static void counts_prefetch(const Counts *c, const uint64_t *hashes, size_t n) {
        size_t mask;

        if (c->size == 0)
                return;
        mask = c->size - 1;
        for (size_t k = 0; k < n; k++)
                __builtin_prefetch(&c->v[(size_t) (hashes[k] ?: 1) & mask]);
}

static int counts_learn(Counts *c, const uint64_t *hashes, size_t n, bool spam) {
        if ((c->n + n) * 10 <= c->size * 7)
                counts_prefetch(c, hashes, n);
        for (size_t k = 0; k < n; k++) {
                uint64_t h = hashes[k] ?: 1;
                size_t mask, i;

                if ((c->n + 1) * 10 > c->size * 7 && counts_grow(c) < 0)
                        return -ENOMEM;
                mask = c->size - 1;
                for (i = (size_t) h & mask; c->v[i].hash != 0 && c->v[i].hash != h; i = (i + 1) & mask)
                        ;
                if (c->v[i].hash == 0) {
                        c->v[i].hash = h;
                        c->n++;
                }
                if (spam)
                        c->v[i].c.spam++;
                else
                        c->v[i].c.ham++;
        }
        if (spam)
                c->totals.spam++;
        else
                c->totals.ham++;
        return 0;
}

static int counts_lookup(uint64_t hash, bool domain, SpamCounts *ret, void *userdata) {
        const Counts *c = userdata;
        const CountEntry *e;

        if (domain) {
                *ret = (SpamCounts) {};
                return 0;
        }
        e = counts_find(c, hash);
        *ret = e ? e->c : (SpamCounts) {};
        return 0;
}

/* ---- the lexicon (for the HMM) --------------------------------------------------- */

typedef struct LexEntry {
        char *word;
        uint32_t spam, ham;
} LexEntry;

typedef struct Lexicon {
        LexEntry *v;
        size_t size, n;
        bool current_spam;
        int error;
} Lexicon;

static uint64_t str_hash(const char *s, size_t n) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) s[i]) * UINT64_C(0x100000001b3);
        return h;
}

static void lexicon_add(const char *word, size_t len, void *userdata) {
        Lexicon *l = userdata;
        size_t mask, i;

        if (l->error < 0)
                return;
        if ((l->n + 1) * 2 > l->size) {
                size_t size = l->size ? l->size * 2 : 1U << 14;
                LexEntry *v = calloc(size, sizeof(LexEntry));

                if (!v) {
                        l->error = -ENOMEM;
                        return;
                }
                for (size_t k = 0; k < l->size; k++)
                        if (l->v[k].word) {
                                size_t j = (size_t) str_hash(l->v[k].word, strlen(l->v[k].word)) & (size - 1);

                                while (v[j].word)
                                        j = (j + 1) & (size - 1);
                                v[j] = l->v[k];
                        }
                free(l->v);
                l->v = v;
                l->size = size;
        }
        mask = l->size - 1;
        for (i = (size_t) str_hash(word, len) & mask; l->v[i].word; i = (i + 1) & mask)
                if (strlen(l->v[i].word) == len && memcmp(l->v[i].word, word, len) == 0)
                        break;
        if (!l->v[i].word) {
                l->v[i].word = strndup(word, len);
                if (!l->v[i].word) {
                        l->error = -ENOMEM;
                        return;
                }
                l->n++;
        }
        if (l->current_spam)
                l->v[i].spam++;
        else
                l->v[i].ham++;
}

static void lexicon_done(Lexicon *l) {
        for (size_t i = 0; i < l->size; i++)
                free(l->v[i].word);
        free(l->v);
        *l = (Lexicon) {};
}

#if HAVE_SPAM_HMM
/* Lexicon words seen in at least 3 learned messages, letters only, within the model's
 * length bounds. */
static int build_hmm(const Lexicon *l, SpamHmm **ret) {
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        int r;

        r = spam_hmm_new(&h);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->size; i++) {
                const LexEntry *e = &l->v[i];
                size_t n;
                bool letters = true;

                if (!e->word || e->spam + e->ham < 3)
                        continue;
                n = strlen(e->word);
                if (n < SPAM_HMM_WORD_MIN || n > SPAM_HMM_WORD_MAX)
                        continue;
                for (size_t k = 0; k < n; k++)
                        if ((uint8_t) e->word[k] < 0x80 && !(e->word[k] >= 'a' && e->word[k] <= 'z'))
                                letters = false;
                if (!letters)
                        continue;
                r = spam_hmm_add_word(h, e->word, e->spam + e->ham);
                if (r < 0 && r != -EINVAL)
                        return r;
        }
        r = spam_hmm_build(h);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}
#endif

/* ---- measuring ------------------------------------------------------------------- */

static const SpamTokenKey bench_key = { .bytes = "mailsec-spambnch" };

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

typedef struct Scored {
        double score;
        bool spam;
        SpamVerdict verdict;
        const Message *msg;             /* for --scores, when known */
} Scored;

/* --lr RATE: an experiment beside the Bayesian stage, online logistic regression over the
 * same tokens (Goodman & Yih 2006; Sculley & Wachman 2007): binary features scaled by
 * 1/sqrt(n), weights in a table of 2^LR_BITS floats indexed by the token hash. */
#define LR_BITS 22
typedef struct Lr {
        float *w;
} Lr;

static int lr_init(Lr *l) {
        l->w = calloc((size_t) 1 << LR_BITS, sizeof(float));
        return l->w ? 0 : -ENOMEM;
}

static void lr_done(Lr *l) {
        free(l->w);
        l->w = NULL;
}

static double lr_margin(const Lr *l, const uint64_t *h, size_t n) {
        double d = 0, x = n > 0 ? 1.0 / sqrt((double) n) : 0;

        for (size_t i = 0; i < n; i++)
                d += l->w[h[i] >> (64 - LR_BITS)];
        return d * x;
}

static void lr_learn(Lr *l, const uint64_t *h, size_t n, bool spam) {
        double x = n > 0 ? 1.0 / sqrt((double) n) : 0, p, g;

        p = 1.0 / (1.0 + exp(-lr_margin(l, h, n)));
        g = arg_lr * ((spam ? 1.0 : 0.0) - p) * x;
        for (size_t i = 0; i < n; i++)
                l->w[h[i] >> (64 - LR_BITS)] += (float) g;
}

/* The score reported with --lr: the logistic one alone, or mixed with the Fisher score f. */
static double lr_final(double margin, double f) {
        double z = margin;

        if (arg_lr_mix >= 0)
                z += arg_lr_mix * (2.0 * f - 1.0);
        return 1.0 / (1.0 + exp(-z));
}

static SpamVerdict verdict_of(double score) {
        return score >= arg_params.spam_cutoff ? SPAM_VERDICT_SPAM :
               score < arg_params.ham_cutoff ? SPAM_VERDICT_HAM : SPAM_VERDICT_UNSURE;
}

static uint64_t splitmix64(uint64_t *x);
static void explain_one(const SpamBayesParams *params, const Message *m, const Counts *c);
static void shuffled_indexes(size_t *o, size_t n, uint64_t *seed);

/* Learns msgs[i] for every i with use[i], arg_lr_epochs times, each pass in its own fixed
 * shuffled order. */
static void lr_train(Lr *l, Message **msgs, size_t n, const bool *use) {
        _cleanup_free_ size_t *o = malloc(n * sizeof(size_t));
        uint64_t seed = UINT64_C(1066);

        if (!o)
                abort();
        for (unsigned e = 0; e < arg_lr_epochs; e++) {
                shuffled_indexes(o, n, &seed);
                for (size_t k = 0; k < n; k++)
                        if (!use || use[o[k]])
                                lr_learn(l, msgs[o[k]]->tokens, msgs[o[k]]->n_tokens, msgs[o[k]]->spam);
        }
}

static int scored_cmp(const void *a, const void *b) {
        const Scored *x = a, *y = b;

        return x->score < y->score ? -1 : x->score > y->score;
}

/* 1 − AUC: the probability that a random spam scores below a random ham, ties half. */
static double one_minus_auc(Scored *s, size_t n) {
        double n_spam = 0, n_ham = 0, ham_above, bad = 0;
        size_t i = 0;

        for (size_t k = 0; k < n; k++) {
                if (s[k].spam)
                        n_spam++;
                else
                        n_ham++;
        }
        if (n_spam == 0 || n_ham == 0)
                return NAN;

        qsort(s, n, sizeof(Scored), scored_cmp);
        ham_above = n_ham;
        while (i < n) {
                size_t j = i;
                double hs = 0, ss = 0;

                while (j < n && s[j].score == s[i].score) {
                        if (s[j].spam)
                                ss++;
                        else
                                hs++;
                        j++;
                }
                ham_above -= hs;
                bad += ss * (ham_above + hs / 2);
                i = j;
        }
        return bad / (n_spam * n_ham);
}

typedef struct Result {
        size_t ham, spam, fp, fn, unsure_ham, unsure_spam;
        double auc1m;
} Result;

static Result evaluate(Scored *s, size_t n) {
        Result r = {};

        for (size_t i = 0; i < n; i++) {
                if (s[i].spam) {
                        r.spam++;
                        if (s[i].verdict == SPAM_VERDICT_HAM)
                                r.fn++;
                        else if (s[i].verdict == SPAM_VERDICT_UNSURE)
                                r.unsure_spam++;
                } else {
                        r.ham++;
                        if (s[i].verdict == SPAM_VERDICT_SPAM)
                                r.fp++;
                        else if (s[i].verdict == SPAM_VERDICT_UNSURE)
                                r.unsure_ham++;
                }
        }
        r.auc1m = one_minus_auc(s, n) * 100.0;
        return r;
}

static void print_result(const char *what, const Result *r) {
        printf("%s ham=%zu spam=%zu fp=%zu fn=%zu fp%%=%.3f fn%%=%.3f unsure_ham=%zu unsure_spam=%zu "
               "spam_caught%%=%.2f auc1m%%=%.4f",
               what, r->ham, r->spam, r->fp, r->fn,
               r->ham ? 100.0 * r->fp / r->ham : 0, r->spam ? 100.0 * r->fn / r->spam : 0,
               r->unsure_ham, r->unsure_spam,
               r->spam ? 100.0 * (r->spam - r->fn - r->unsure_spam) / r->spam : 0, r->auc1m);
}

static long peak_rss_kb(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return -1;
        return ru.ru_maxrss;
}

static void write_scores(const char *path, const Scored *s, size_t n) {
        _cleanup_fclose_ FILE *f = NULL;

        if (!path)
                return;
        f = fopen(path, "we");
        if (!f) {
                fprintf(stderr, "spam-bench: %s: %m\n", path);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (s[i].msg)
                        fprintf(f, "%s %.17g %s/%s\n", s[i].spam ? "spam" : "ham", s[i].score, s[i].msg->group,
                                s[i].msg->id);
                else
                        fprintf(f, "%s %.17g\n", s[i].spam ? "spam" : "ham", s[i].score);
}

typedef struct Bench {
        Counts counts;
        Lr lr;
        bool lr_online;         /* protocol b: a logistic step with every learn */
        Lexicon lexicon;
        SpamTokenizerOptions opts;
        SpamTokenParts parts;
#if HAVE_SPAM_HMM
        SpamHmm *hmm;
        SpamHmmCache *hmm_cache;
#endif
} Bench;

static int tokenize(Bench *b, const Message *m, SpamTokens *ret) {
        *ret = (SpamTokens) SPAM_TOKENS_NULL;
        spam_token_parts_done(&b->parts);
        b->lexicon.current_spam = m->spam;
        return spam_tokenize(m->text, m->len, &b->opts, ret);
}

static int learn(Bench *b, const Message *m) {
        SpamTokens t;
        int r;

        r = tokenize(b, m, &t);
        if (r < 0)
                return r;
        r = counts_learn(&b->counts, t.hashes, t.n, m->spam);
        if (arg_lr > 0 && b->lr.w && b->lr_online)
                lr_learn(&b->lr, t.hashes, t.n, m->spam);
        spam_tokens_done(&t);
        return r < 0 ? r : b->lexicon.error;
}

static int classify(Bench *b, const Message *m, Scored *ret) {
        SpamBayesResult res;
        SpamTokens t;
        int r;

        r = tokenize(b, m, &t);
        if (r < 0)
                return r;
        counts_prefetch(&b->counts, t.hashes, t.n);
        r = spam_bayes_classify_tiled(&arg_params, &t, b->opts.parts ? b->parts.word : NULL, b->counts.totals, NULL,
                                      counts_lookup, &b->counts, 0, &res);
        if (r >= 0 && arg_lr > 0 && b->lr.w) {
                double score = lr_final(lr_margin(&b->lr, t.hashes, t.n), res.score);

                res.score = score;
                res.verdict = verdict_of(score);
        }
        spam_tokens_done(&t);
        if (r < 0)
                return r;
        *ret = (Scored) { .score = res.score, .spam = m->spam, .verdict = res.verdict };
        spam_bayes_result_done(&res);
        return 0;
}

static void bench_init(Bench *b) {
        *b = (Bench) {
                .opts = {
                        .key = &bench_key,
                        .bigrams = arg_bigrams, .markup = arg_markup, .shapes = arg_shapes, .field_families = arg_field_families,
                        .bigram_window = arg_window,
                },
        };
        if (arg_tiled)
                b->opts.parts = &b->parts;
        if (arg_hmm) {
                b->opts.on_word = lexicon_add;
                b->opts.userdata = &b->lexicon;
        }
}

static void bench_done(Bench *b) {
        counts_done(&b->counts);
        lr_done(&b->lr);
        lexicon_done(&b->lexicon);
        spam_token_parts_done(&b->parts);
#if HAVE_SPAM_HMM
        b->hmm = spam_hmm_free(b->hmm);
        b->hmm_cache = spam_hmm_cache_free(b->hmm_cache);
#endif
}

static int bench_rebuild_hmm(Bench *b) {
#if HAVE_SPAM_HMM
        int r;

        b->hmm = spam_hmm_free(b->hmm);
        b->opts.hmm = NULL;
        r = build_hmm(&b->lexicon, &b->hmm);
        if (r < 0)
                return r;
        b->opts.hmm = b->hmm;
        if (!b->hmm_cache && arg_hmm_cache) {
                r = spam_hmm_cache_new(&b->hmm_cache);
                if (r < 0)
                        return r;
        }
        b->opts.hmm_cache = b->hmm_cache;
        return 0;
#else
        (void) b;
        return -EOPNOTSUPP;
#endif
}

/* --explain N: the strongest tokens of the first N misjudged test messages. */
static void explain(Bench *b, const Message *msgs, size_t n) {
        unsigned shown = 0;

        for (size_t i = 0; i < n && shown < arg_explain; i++) {
                SpamTokenizerOptions o = b->opts;
                SpamTokens t = SPAM_TOKENS_NULL;
                SpamBayesResult res;

                if (group_one(&msgs[i]))
                        continue;
                o.keep_text = true;
                if (spam_tokenize(msgs[i].text, msgs[i].len, &o, &t) < 0)
                        continue;
                if (spam_bayes_classify_tiled(&arg_params, &t, o.parts ? o.parts->word : NULL, b->counts.totals, NULL,
                                              counts_lookup, &b->counts, 20, &res) >= 0) {
                        if ((msgs[i].spam && res.verdict != SPAM_VERDICT_SPAM) ||
                            (!msgs[i].spam && res.verdict != SPAM_VERDICT_HAM)) {
                                shown++;
                                printf("# %s/%s score=%.4f used=%zu:", msgs[i].group, msgs[i].id, res.score, res.n_used);
                                for (size_t k = 0; k < res.n_top; k++)
                                        printf(" %s=%.3f", t.text[res.top[k].index], res.top[k].prob);
                                printf("\n");
                        }
                        spam_bayes_result_done(&res);
                }
                spam_tokens_done(&t);
        }
}

/* --obfuscate P: before protocol A classifies group 2, each body word of 4 to 12 letters
 * of its spam is disguised with probability P, the way spam hides words from token
 * filters: a letter or two replaced by a look-alike ("v1agra", "m0rtgage"), separators
 * between the letters ("v.i.a.g.r.a"), or a hyphen in the middle ("mort-gage"). Words
 * inside HTML tags, header fields and base64 bodies are left alone; ham stays as it is.
 * The same seed always gives the same disguises, so runs with and without --hmm see the
 * same text: what the de-obfuscator adds. */
static uint64_t obf_rng = 20261127;

static uint32_t obf_next(void) {
        obf_rng ^= obf_rng << 13;
        obf_rng ^= obf_rng >> 7;
        obf_rng ^= obf_rng << 17;
        return (uint32_t) (obf_rng >> 32);
}

static char look_alike(char c) {
        switch (c) {
        case 'a': return '@';
        case 'e': return '3';
        case 'i': case 'l': return '1';
        case 'o': return '0';
        case 's': return '$';
        case 't': return '7';
        default: return 0;
        }
}

static int obfuscate_message(Message *m, size_t *ret_words) {
        const char *t = m->text, *body = strstr(t, "\n\n");
        _cleanup_free_ char *out = NULL;
        size_t o = 0, n = m->len;
        bool in_tag = false;

        if (!body || strcasestr(t, "Content-Transfer-Encoding: base64"))
                return 0;
        out = malloc(n * 3 + 1);
        if (!out)
                return -ENOMEM;
        memcpy(out, t, (size_t) (body - t));
        o = (size_t) (body - t);
        for (size_t i = o; i < n;) {
                size_t j = i;

                if (t[i] == '<')
                        in_tag = true;
                else if (t[i] == '>')
                        in_tag = false;
                while (j < n && ((t[j] >= 'a' && t[j] <= 'z') || (t[j] >= 'A' && t[j] <= 'Z')))
                        j++;
                if (j == i) {
                        out[o++] = t[i++];
                        continue;
                }
                if (!in_tag && j - i >= 4 && j - i <= 12 && obf_next() % 1000 < (uint32_t) (arg_obfuscate * 1000)) {
                        unsigned kind = obf_next() % 3;
                        size_t k;

                        (*ret_words)++;
                        if (kind == 0) {                /* look-alikes */
                                bool any = false;

                                for (k = i; k < j; k++) {
                                        char l = look_alike((char) (t[k] | 0x20));

                                        if (l && (!any || obf_next() % 2 == 0)) {
                                                out[o++] = l;
                                                any = true;
                                        } else
                                                out[o++] = t[k];
                                }
                        } else if (kind == 1) {         /* separators */
                                for (k = i; k < j; k++) {
                                        out[o++] = t[k];
                                        if (k + 1 < j)
                                                out[o++] = '.';
                                }
                        } else {                        /* split in the middle */
                                for (k = i; k < j; k++) {
                                        if (k == i + (j - i) / 2)
                                                out[o++] = '-';
                                        out[o++] = t[k];
                                }
                        }
                } else {
                        memcpy(out + o, t + i, j - i);
                        o += j - i;
                }
                i = j;
        }
        out[o] = 0;
        free(m->text);
        m->text = TAKE_PTR(out);
        m->len = o;
        return 0;
}

static int protocol_a(Message *msgs, size_t n, size_t corpus_bytes) {
        _cleanup_free_ Scored *s = NULL;
        size_t n_train = 0, n_test = 0;
        double t0, t_learn, t_classify;
        Bench b;
        Result res;
        int r;

        bench_init(&b);
        s = calloc(n, sizeof(Scored));
        if (!s)
                return -ENOMEM;

        t0 = now();
        for (size_t i = 0; i < n; i++)
                if (group_one(&msgs[i])) {
                        r = learn(&b, &msgs[i]);
                        if (r < 0)
                                return r;
                        n_train++;
                }
        t_learn = now() - t0;

        if (arg_lr > 0) {
                _cleanup_free_ Message **all = calloc(n, sizeof(Message*));
                _cleanup_free_ bool *use = calloc(n, sizeof(bool));

                if (!all || !use || lr_init(&b.lr) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        all[i] = &msgs[i];
                        use[i] = group_one(&msgs[i]);
                        if (use[i]) {
                                SpamTokens t;

                                r = tokenize(&b, &msgs[i], &t);
                                if (r < 0)
                                        return r;
                                msgs[i].tokens = TAKE_PTR(t.hashes);
                                msgs[i].n_tokens = t.n;
                                spam_tokens_done(&t);
                        }
                }
                lr_train(&b.lr, all, n, use);
        }

        if (arg_hmm) {
                r = bench_rebuild_hmm(&b);
                if (r < 0) {
                        fprintf(stderr, "spam-bench: building the HMM failed: %s\n", strerror(-r));
                        return r;
                }
        }
        b.opts.on_word = NULL;

        if (arg_obfuscate > 0) {
                size_t words = 0, touched = 0;

                for (size_t i = 0; i < n; i++)
                        if (!group_one(&msgs[i]) && msgs[i].spam) {
                                size_t before = words;

                                r = obfuscate_message(&msgs[i], &words);
                                if (r < 0)
                                        return r;
                                touched += words > before;
                        }
                printf("obfuscated: %zu words in %zu spam messages of group 2 (p=%.2f)\n", words, touched,
                       arg_obfuscate);
        }

        /* --repeat N: classify group 2 N times (for profiling the classification alone);
         * the figures are the last pass's */
        t0 = now();
        for (unsigned pass = 0; pass < arg_repeat; pass++) {
                t0 = now();
                n_test = 0;
                for (size_t i = 0; i < n; i++)
                        if (!group_one(&msgs[i])) {
                                r = classify(&b, &msgs[i], &s[n_test]);
                                if (r < 0)
                                        return r;
                                s[n_test++].msg = &msgs[i];
                        }
        }
        t_classify = now() - t0;

        explain(&b, msgs, n);
        write_scores(arg_scores, s, n_test);
        res = evaluate(s, n_test);
        print_result("protocol=a", &res);
        printf(" trained=%zu classified=%zu tokens=%zu learn/s=%.1f classify/s=%.1f rss_kb=%ld corpus_kb=%zu hmm=%s\n",
               n_train, n_test, b.counts.n, n_train / t_learn, n_test / t_classify, peak_rss_kb(),
               corpus_bytes / 1024, arg_hmm ? "on" : "off");
        bench_done(&b);
        return 0;
}

#if HAVE_SPAM_STORE
/* The body words of one message, for its journal record's lexicon (what the daemon
 * learns the de-obfuscator's lexicon from). */
typedef struct WordList {
        char **v;
        size_t n, alloc;
        int error;
} WordList;

static void word_list_add(const char *word, size_t len, void *userdata) {
        WordList *w = userdata;

        if (w->error || len == 0 || len > SPAM_STORE_WORD_MAX || w->n >= SPAM_STORE_WORDS_MAX)
                return;
        if (w->n >= w->alloc) {
                size_t a = w->alloc ? 2 * w->alloc : 64;
                char **v = realloc(w->v, a * sizeof(char*));

                if (!v) {
                        w->error = -ENOMEM;
                        return;
                }
                w->v = v;
                w->alloc = a;
        }
        w->v[w->n] = strndup(word, len);
        if (!w->v[w->n]) {
                w->error = -ENOMEM;
                return;
        }
        w->n++;
}

static int str_ptr_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* sorted, each word once */
static void word_list_finish(WordList *w) {
        size_t k = 0;

        if (w->n == 0)
                return;
        qsort(w->v, w->n, sizeof(char*), str_ptr_compare);
        for (size_t i = 0; i < w->n; i++) {
                if (k > 0 && strcmp(w->v[k - 1], w->v[i]) == 0) {
                        free(w->v[i]);
                        continue;
                }
                w->v[k++] = w->v[i];
        }
        w->n = k;
}

static void word_list_clear(WordList *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        w->n = 0;
}

/* One sealed memfd per message of group 2 (-1 for group 1), by index into msgs. */
typedef struct Memfds {
        int *fd;
        size_t n;
} Memfds;

static void memfds_done(Memfds *m) {
        for (size_t i = 0; i < m->n; i++)
                safe_close(m->fd[i]);
        free(m->fd);
        *m = (Memfds) {};
}

static int message_memfds(const Message *msgs, size_t n, Memfds *ret) {
        struct rlimit rl;
        size_t need = 64;

        for (size_t i = 0; i < n; i++)
                need += !group_one(&msgs[i]);
        /* more descriptors than the usual soft limit of 1024: up to the hard one */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < need) {
                if (rl.rlim_max < need) {
                        fprintf(stderr, "spam-bench: --store needs %zu file descriptors, the hard limit is %llu\n",
                                need, (unsigned long long) rl.rlim_max);
                        return -EMFILE;
                }
                rl.rlim_cur = need;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }

        ret->fd = malloc(n * sizeof(int));
        if (!ret->fd)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int fd, r;

                ret->fd[ret->n++] = -1;
                if (group_one(&msgs[i]))
                        continue;
                fd = memfd_new_spool("spam-bench");
                if (fd < 0)
                        return fd;
                ret->fd[i] = fd;
                r = memfd_append(fd, msgs[i].text, msgs[i].len);
                if (r >= 0)
                        r = memfd_seal(fd);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --store DIR: protocol A through the daemon's GDBM store instead of the in-memory table,
 * to measure what a look-up costs there (learning syncs its journal once per message).
 * --trained: the store in DIR holds group 1 already (an earlier --store run into it), and
 * only the classification runs, so that the speed runs of tests/bench/spam take seconds. */
static int protocol_a_store(Message *msgs, size_t n) {
        _cleanup_(spam_store_freep) SpamStore *store = NULL;
#if HAVE_SPAM_HMM
        _cleanup_(spam_hmm_freep) SpamHmm *hmm = NULL;
        _cleanup_(spam_hmm_cache_freep) SpamHmmCache *hmm_cache = NULL;
#else
        void *hmm = NULL;
#endif
        WordList words = {};
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .bigrams = arg_bigrams, .markup = arg_markup, .shapes = arg_shapes, .field_families = arg_field_families, .bigram_window = arg_window };
        _cleanup_(memfds_done) Memfds memfds = {};
        _cleanup_(memfd_reader_done) MemfdReader reader = {};
        _cleanup_free_ SpamCounts *counts = NULL;
        size_t n_train = 0, n_test = 0, lookups = 0, counts_alloc = 0;
        double t0, t_learn, t_classify;
        SpamTotals totals;
        int r;

        r = spam_store_open(arg_store, &store);
        if (r < 0)
                return r;
        if (arg_memory_limit > 0)
                spam_store_set_memory_limit(store, arg_memory_limit);
        opts.key = spam_store_key(store);
        if (arg_tiled)
                opts.parts = &parts;
        if (arg_hmm) {
                opts.on_word = word_list_add;
                opts.userdata = &words;
        }

        t0 = now();
        for (size_t i = 0; i < n && !arg_trained; i++) {
                SpamTokens t = SPAM_TOKENS_NULL;
                SpamLearn l = { .source = SPAM_SOURCE_ADMIN, .reporter = "spam-bench" };

                if (!group_one(&msgs[i]))
                        continue;
                r = spam_tokenize(msgs[i].text, msgs[i].len, &opts, &t);
                if (r < 0)
                        return r;
                spam_token_parts_done(&parts);
                /* any digest unique to the message will do */
                memcpy(l.digest, &msgs[i].order, sizeof(msgs[i].order));
                l.class = msgs[i].spam ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM;
                l.tokens = t.hashes;
                l.n_tokens = t.n;
                if (words.error < 0)
                        return words.error;
                word_list_finish(&words);
                l.words = words.v;
                l.n_words = words.n;
                r = spam_store_learn(store, &l);
                spam_tokens_done(&t);
                word_list_clear(&words);
                if (r < 0)
                        return r;
                n_train++;
        }
        r = spam_store_flush(store);
        if (r < 0)
                return r;
        t_learn = now() - t0;
        free(words.v);
        opts.on_word = NULL;

        if (arg_hmm) {
#if HAVE_SPAM_HMM
                /* as mailsec-spamd builds it: the store's lexicon, words of at least
                 * LexiconMinMessages= messages (its default, 2: spamd-conf.h) */
                r = spam_hmm_new(&hmm);
                if (r >= 0)
                        r = spam_store_lexicon(store, 2, spam_hmm_add_lexicon_word, hmm);
                if (r >= 0)
                        r = spam_hmm_build(hmm);
                if (r >= 0 && arg_hmm_cache)
                        r = spam_hmm_cache_new(&hmm_cache);
                if (r < 0)
                        return r;
                opts.hmm = hmm;
                opts.hmm_cache = hmm_cache;
                fprintf(stderr, "spam-bench: de-obfuscator of %zu lexicon words\n", spam_hmm_size(hmm));
#else
                return -EOPNOTSUPP;
#endif
        }
        r = spam_store_totals(store, NULL, &totals);
        if (r < 0)
                return r;
        if (arg_trained && (totals.spam == 0 || totals.ham == 0)) {
                fprintf(stderr, "spam-bench: --trained: the store in %s has not learned both classes\n", arg_store);
                return -ENODATA;
        }
        {
                /* the first look-up loads the counts into memory (a running daemon did
                 * that at its first classification); not part of the time per message */
                SpamCounts c;

                r = spam_store_counts(store, NULL, 0, &c);
                if (r < 0)
                        return r;
        }

        /* Each message of group 2 in a sealed memfd, as mailsec-spamd receives it, and
         * read (or mapped, when large) in the timed loop as spamd-bus.c does, into a buffer
         * kept from one message to the next (bogofilter's time includes reading its files
         * too). */
        r = message_memfds(msgs, n, &memfds);
        if (r < 0)
                return r;

        /* --repeat N: classify group 2 N times (for profiling); the figures are the last
         * pass's, with the counts cache warm from the passes before */
        t_classify = 0;
        for (unsigned pass = 0; pass < arg_repeat; pass++) {
        t0 = now();
        n_test = lookups = 0;
        for (size_t i = 0; i < n; i++) {
                SpamTokens t = SPAM_TOKENS_NULL;
                SpamBayesResult res;
                MemfdView view;

                if (group_one(&msgs[i]))
                        continue;
                r = memfd_view_sealed(memfds.fd[i], SIZE_MAX, &reader, &view);
                if (r < 0)
                        return r;
                r = spam_tokenize(view.data, view.size, &opts, &t);
                memfd_view_release(&view);
                if (r < 0)
                        return r;
                /* as mailsec-spamd: the counts of all tokens looked up together */
                if (t.n > counts_alloc) {
                        free(counts);
                        counts_alloc = MAX(t.n, 2 * counts_alloc);
                        counts = malloc(counts_alloc * sizeof(SpamCounts));
                        if (!counts)
                                counts_alloc = 0;
                }
                r = counts || t.n == 0 ? spam_store_counts_many(store, NULL, t.hashes, t.n, counts) : -ENOMEM;
                if (r >= 0)
                        r = spam_bayes_classify_counts(&arg_params, &t, opts.parts ? parts.word : NULL, totals,
                                                       NULL, counts, NULL, 0, &res);
                lookups += t.n;
                spam_tokens_done(&t);
                spam_token_parts_done(&parts);
                if (r < 0)
                        return r;
                spam_bayes_result_done(&res);
                n_test++;
        }
        t_classify = now() - t0;
        }

        /* accuracy is protocol A's without --store; this mode only times the store */
        printf("protocol=a-store trained=%zu classified=%zu learn/s=%.1f classify/s=%.1f lookups=%zu "
               "us_per_lookup_and_token=%.3f rss_kb=%ld hmm=%s\n",
               n_train, n_test, n_train / t_learn, n_test / t_classify, lookups, 1e6 * t_classify / lookups,
               peak_rss_kb(), hmm ? "on" : "off");
        return 0;
}
#else
static int protocol_a_store(Message *msgs, size_t n) {
        (void) msgs;
        (void) n;
        fprintf(stderr, "spam-bench: --store: libspamd was built without spam-store.c\n");
        return -EOPNOTSUPP;
}
#endif

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* o[0..n) = 0 .. n-1 in the order of a Fisher-Yates shuffle driven by seed. */
static void shuffled_indexes(size_t *o, size_t n, uint64_t *seed) {
        for (size_t i = 0; i < n; i++)
                o[i] = i;
        for (size_t i = n; i > 1; i--) {
                size_t j = (size_t) (splitmix64(seed) % i), t = o[i - 1];

                o[i - 1] = o[j];
                o[j] = t;
        }
}

/* The protocol b order: indexes into the sorted messages. */
static size_t* order_b(size_t n) {
        size_t *o = malloc(n * sizeof(size_t));
        uint64_t seed = arg_order_seed;

        if (!o)
                return NULL;
        shuffled_indexes(o, n, &seed);
        return o;
}

/* Protocol b; with only_group_one ("b1"), the same procedure over group 1's messages alone
 * (in the order b gives them), for tuning what b measures without looking at group 2. */
static int protocol_b(Message *msgs, size_t n, size_t corpus_bytes, bool only_group_one) {
        _cleanup_free_ Scored *s = NULL;
        _cleanup_free_ size_t *o = NULL;
        size_t n_scored = 0;
        unsigned explained = 0;
        double t_classify = 0, t_learn = 0, t0;
        Bench b;
        Result res;
        int r;

        bench_init(&b);
        s = calloc(n, sizeof(Scored));
        o = order_b(n);
        if (!s || !o)
                return -ENOMEM;
        if (arg_lr > 0) {
                if (lr_init(&b.lr) < 0)
                        return -ENOMEM;
                b.lr_online = true;
        }

        for (size_t k = 0; k < n; k++) {
                const Message *m = &msgs[o[k]];

                if (only_group_one && !group_one(m))
                        continue;
                if (arg_hmm && k > 0 && k % arg_hmm_every == 0) {
                        r = bench_rebuild_hmm(&b);
                        if (r < 0)
                                return r;
                }

                t0 = now();
                r = classify(&b, m, &s[n_scored]);
                if (r < 0)
                        return r;
                t_classify += now() - t0;
                s[n_scored].msg = m;
                /* --explain N: the first N messages called the other class, as they were
                 * classified, with what had been learned by then */
                if (explained < arg_explain &&
                    s[n_scored].verdict == (m->spam ? SPAM_VERDICT_HAM : SPAM_VERDICT_SPAM)) {
                        printf("# position %zu, after %" PRIu64 " spam and %" PRIu64 " ham:\n", n_scored,
                               b.counts.totals.spam, b.counts.totals.ham);
                        explain_one(&arg_params, m, &b.counts);
                        explained++;
                }
                n_scored++;

                t0 = now();
                r = learn(&b, m);
                if (r < 0)
                        return r;
                t_learn += now() - t0;
        }

        write_scores(arg_scores, s, n_scored);
        res = evaluate(s, n_scored);
        print_result(only_group_one ? "protocol=b1" : "protocol=b", &res);
        printf(" trained=%zu classified=%zu tokens=%zu learn/s=%.1f classify/s=%.1f rss_kb=%ld corpus_kb=%zu hmm=%s\n",
               n_scored, n_scored, b.counts.n, n_scored / t_learn, n_scored / t_classify, peak_rss_kb(), corpus_bytes / 1024,
               arg_hmm ? "on" : "off");
        bench_done(&b);
        return 0;
}

/* The strongest tokens of one message against the counts c (--explain with --protocol cv:
 * the misjudged messages of group 1 in cross-validation; with --protocol b or b1: the
 * messages called the other class). */
static void explain_one(const SpamBayesParams *params, const Message *m, const Counts *c) {
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions o = { .key = &bench_key, .bigrams = arg_bigrams, .markup = arg_markup, .shapes = arg_shapes, .field_families = arg_field_families, .bigram_window = arg_window,
                                   .keep_text = true, .parts = &parts };
        SpamTokens t = SPAM_TOKENS_NULL;
        SpamBayesResult res;

        if (spam_tokenize(m->text, m->len, &o, &t) < 0)
                return;
        if (spam_bayes_classify_tiled(params, &t, arg_tiled ? parts.word : NULL, c->totals, NULL, counts_lookup,
                                      (void*) c, 20, &res) >= 0) {
                printf("# %s/%s score=%.4f used=%zu:", m->group, m->id, res.score, res.n_used);
                for (size_t k = 0; k < res.n_top; k++)
                        printf(" %s=%.3f", t.text[res.top[k].index], res.top[k].prob);
                printf("\n");
                spam_bayes_result_done(&res);
        }
        spam_tokens_done(&t);
        spam_token_parts_done(&parts);
}

/* The domain of the first From: field's address, lower case ("" when there is none). */
static void from_domain(const Message *m, char *buf, size_t size) {
        const char *p = m->text, *end = m->text + m->len, *at, *e;
        size_t n = 0;

        buf[0] = 0;
        for (;;) {
                if ((size_t) (end - p) >= 5 && strncasecmp(p, "From:", 5) == 0)
                        break;
                p = memchr(p, '\n', (size_t) (end - p));
                if (!p || p + 1 >= end || p[1] == '\n' || (p[1] == '\r' && p + 2 < end && p[2] == '\n'))
                        return;         /* the end of the header */
                p++;
        }
        e = memchr(p, '\n', (size_t) (end - p));
        if (!e)
                e = end;
        at = memchr(p, '@', (size_t) (e - p));
        if (!at)
                return;
        for (at++; at < e && n + 1 < size && (isalnum((unsigned char) *at) || *at == '.' || *at == '-'); at++)
                buf[n++] = (char) tolower((unsigned char) *at);
        buf[n] = 0;
}

/* The fold of g1[i]: by position, or with --folds-by-sender by the From domain, so that
 * a sender's messages (a mailing list, a spam campaign from one domain) are never on both
 * sides of a split. */
static unsigned cv_fold(Message **g1, size_t i) {
        char d[256];

        if (!arg_folds_by_sender)
                return (unsigned) (i % arg_folds);
        from_domain(g1[i], d, sizeof(d));
        if (!d[0])
                return (unsigned) (i % arg_folds);
        return (unsigned) (str_hash(d, strlen(d)) % arg_folds);
}

/* Cross-validation within group 1; the scores of the last run are kept for --scores. */
static Scored *cv_scores = NULL;

static int cv_run(Message **g1, size_t n, const SpamBayesParams *params, Result *ret) {
        _cleanup_free_ Scored *s = NULL;
        unsigned explained = 0;
        size_t k = 0;
        int r;

        s = calloc(n, sizeof(Scored));
        if (!s)
                return -ENOMEM;

        for (unsigned fold = 0; fold < arg_folds; fold++) {
                Counts c = {};
                Lr lr = {};

                for (size_t i = 0; i < n; i++)
                        if (cv_fold(g1, i) != fold) {
                                r = counts_learn(&c, g1[i]->tokens, g1[i]->n_tokens, g1[i]->spam);
                                if (r < 0)
                                        return r;
                        }
                if (arg_lr > 0) {
                        _cleanup_free_ bool *use = calloc(n, sizeof(bool));

                        if (!use || lr_init(&lr) < 0)
                                return -ENOMEM;
                        for (size_t i = 0; i < n; i++)
                                use[i] = cv_fold(g1, i) != fold;
                        lr_train(&lr, g1, n, use);
                }
                for (size_t i = 0; i < n; i++) {
                        SpamTokens t = SPAM_TOKENS_NULL;
                        SpamBayesResult res;

                        if (cv_fold(g1, i) != fold)
                                continue;
                        t.hashes = g1[i]->tokens;
                        t.kinds = g1[i]->kinds;
                        t.n = g1[i]->n_tokens;
                        counts_prefetch(&c, t.hashes, t.n);
                        r = spam_bayes_classify_tiled(params, &t, arg_tiled ? g1[i]->parts : NULL, c.totals, NULL,
                                                      counts_lookup, &c, 0, &res);
                        if (r < 0)
                                return r;
                        s[k++] = (Scored) { .score = res.score, .spam = g1[i]->spam, .verdict = res.verdict,
                                            .msg = g1[i] };
                        if (arg_lr > 0) {
                                s[k - 1].score = lr_final(lr_margin(&lr, t.hashes, t.n), res.score);
                                s[k - 1].verdict = verdict_of(s[k - 1].score);
                        }
                        if (arg_explain > 0 && explained < arg_explain &&
                            res.verdict != (g1[i]->spam ? SPAM_VERDICT_SPAM : SPAM_VERDICT_HAM)) {
                                explain_one(params, g1[i], &c);
                                explained++;
                        }
                        spam_bayes_result_done(&res);
                }
                counts_done(&c);
                lr_done(&lr);
        }
        *ret = evaluate(s, k);
        free(cv_scores);
        cv_scores = TAKE_PTR(s);
        return 0;
}

static void print_params(const SpamBayesParams *p) {
        printf(" s=%g x=%g min_dev=%g max_tokens=%zu ham_cutoff=%g spam_cutoff=%g order_s=%g order_form_s=%g "
               "order_min_dev=%g bigrams=%s markup=%s shapes=%s field_families=%s%s\n",
               p->robinson_s, p->robinson_x, p->min_dev, p->max_tokens, p->ham_cutoff, p->spam_cutoff, p->order_s,
               p->order_form_s, p->order_min_dev, arg_bigrams ? "on" : "off", arg_markup ? "on" : "off",
               arg_shapes ? "on" : "off", arg_field_families ? "on" : "off", p->decide_shapes ? " decide_shapes=on" : "");
}

static int protocol_cv(Message *msgs, size_t n) {
        _cleanup_free_ Message **g1 = NULL;
        size_t n1 = 0;
        Bench b;
        Result res;
        int r;

        bench_init(&b);
        g1 = calloc(n, sizeof(Message*));
        if (!g1)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (group_one(&msgs[i])) {
                        SpamTokens t;

                        r = tokenize(&b, &msgs[i], &t);
                        if (r < 0)
                                return r;
                        msgs[i].tokens = TAKE_PTR(t.hashes);
                        msgs[i].kinds = TAKE_PTR(t.kinds);
                        msgs[i].parts = TAKE_PTR(b.parts.word);
                        spam_token_parts_done(&b.parts);
                        msgs[i].n_tokens = t.n;
                        spam_tokens_done(&t);
                        g1[n1++] = &msgs[i];
                }

        if (!arg_sweep) {
                r = cv_run(g1, n1, &arg_params, &res);
                if (r < 0)
                        return r;
                write_scores(arg_scores, cv_scores, n1);
                print_result("protocol=cv", &res);
                print_params(&arg_params);
                return 0;
        }

        {
                static const double ss[] = { 0.45, 1.0, 3.0, 10.0 };
                static const double xs[] = { 0.5 };
                static const double ds[] = { 0.1, 0.2, 0.3, 0.4 };
                static const size_t ms[] = { 50, 150, 400, 0 };

                for (size_t a = 0; a < ELEMENTSOF(ss); a++)
                        for (size_t x = 0; x < ELEMENTSOF(xs); x++)
                                for (size_t d = 0; d < ELEMENTSOF(ds); d++)
                                        for (size_t m = 0; m < ELEMENTSOF(ms); m++) {
                                                SpamBayesParams p = arg_params;

                                                p.robinson_s = ss[a];
                                                p.robinson_x = xs[x];
                                                p.min_dev = ds[d];
                                                p.max_tokens = ms[m];
                                                r = cv_run(g1, n1, &p, &res);
                                                if (r < 0)
                                                        return r;
                                                print_result("protocol=cv", &res);
                                                print_params(&p);
                                                fflush(stdout);
                                        }
        }
        bench_done(&b);
        return 0;
}

static unsigned cv_fold(Message **g1, size_t i);

static int export(const Message *msgs, size_t n, const char *dir) {
        _cleanup_free_ size_t *o = NULL;
        _cleanup_free_ Message **g1 = NULL;
        _cleanup_fclose_ FILE *train = NULL, *test = NULL, *ob = NULL, *fpos = NULL, *fsnd = NULL;
        bool by_sender = arg_folds_by_sender;
        size_t n1 = 0;
        char path[4096];

        (void) mkdir(dir, 0755);
        for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
                snprintf(path, sizeof(path), "%s/%s", dir, groups[g]);
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_fclose_ FILE *f = NULL;

                snprintf(path, sizeof(path), "%s/%s/%s.eml", dir, msgs[i].group, msgs[i].id);
                f = fopen(path, "we");
                if (!f || fwrite(msgs[i].text, 1, msgs[i].len, f) != msgs[i].len)
                        return -EIO;
        }

#define OPEN_LIST(f, name)                                                      \
        do {                                                                    \
                snprintf(path, sizeof(path), "%s/%s", dir, name);               \
                f = fopen(path, "we");                                          \
                if (!f)                                                         \
                        return -errno;                                          \
        } while (false)
        OPEN_LIST(train, "train-a");
        OPEN_LIST(test, "test-a");
        OPEN_LIST(ob, "order-b");
        for (size_t i = 0; i < n; i++)
                fprintf(group_one(&msgs[i]) ? train : test, "%s %s/%s/%s.eml\n", msgs[i].spam ? "spam" : "ham",
                        dir, msgs[i].group, msgs[i].id);
        o = order_b(n);
        if (!o)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                fprintf(ob, "%s %s/%s/%s.eml\n", msgs[o[k]].spam ? "spam" : "ham", dir, msgs[o[k]].group,
                        msgs[o[k]].id);

        /* the cross-validation folds of group 1, by position and by sender: "fold class path" */
        OPEN_LIST(fpos, "folds-position");
        OPEN_LIST(fsnd, "folds-sender");
        g1 = malloc(n * sizeof(Message*));
        if (!g1)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (group_one(&msgs[i]))
                        g1[n1++] = (Message*) &msgs[i];
        for (int by = 0; by <= 1; by++) {
                arg_folds_by_sender = by;
                for (size_t i = 0; i < n1; i++)
                        fprintf(by ? fsnd : fpos, "%u %s %s/%s/%s.eml\n", cv_fold(g1, i), g1[i]->spam ? "spam" : "ham",
                                dir, g1[i]->group, g1[i]->id);
        }
        arg_folds_by_sender = by_sender;
        return 0;
}

static void help(void) {
        printf("usage: spam-bench --corpus DIR (--protocol a|b|b1|cv | --export OUTDIR) [options]\n"
               "  --scores FILE  --folds K  --sweep  --no-bigrams  --no-shapes  --decide-shapes  --markup\n"
               "  --no-field-families\n"
               "  --explain N (the strongest tokens of the first N messages misjudged in a and cv, called the\n"
               "    other class in b and b1, with the counts learned by then)\n"
               "  --hmm  --hmm-every N  --no-hmm-cache (each message searched afresh, as spam_hmm_scan() does)\n"
               "  --s X  --x X  --min-dev X  --max-tokens N  --ham-cutoff X  --spam-cutoff X\n"
               "  --order-s X  --order-min-dev X (the ordering estimate; --order-s 0: none)\n"
               "  --order-form-s X (its prior for header, feature and HTML comment tokens; 0: --order-s)\n"
               "  --order-nats X (its log-odds at most X per learned message; 0: unbounded)\n"
               "  --min-messages N (of each class before a ham or spam verdict)\n"
               "  --spam-min-messages N (of each class before a spam verdict)\n"
               "  --order-seed N (protocols b and b1: the shuffle's seed, default 20021001)\n"
               "  --obfuscate P (protocol a: disguise words of group 2's spam with probability P)\n"
               "  --lr RATE [--lr-epochs N] [--lr-mix W] (logistic regression beside the Fisher score)\n"
               "  --store DIR [--trained] [--repeat N] [--memory-limit BYTES] (protocol a: the daemon's path, the GDBM\n"
               "    store in DIR; --trained: DIR holds group 1 already, classify only; --memory-limit: the memory\n"
               "    the store may hold all counts in, 1 for none: every look-up through its cache and GDBM)\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_S = 0x100, ARG_X, ARG_MIN_DEV, ARG_MAX_TOKENS, ARG_HAM_CUTOFF, ARG_SPAM_CUTOFF,
               ARG_NO_BIGRAMS, ARG_NO_SHAPES, ARG_DECIDE_SHAPES, ARG_MARKUP, ARG_NO_FIELD_FAMILIES, ARG_HMM, ARG_HMM_EVERY, ARG_SWEEP, ARG_FOLDS, ARG_EXPORT, ARG_SCORES, ARG_EXPLAIN, ARG_BIGRAM_S, ARG_TILED, ARG_WINDOW, ARG_STORE, ARG_ESF, ARG_REPEAT, ARG_MEMORY_LIMIT, ARG_OBFUSCATE, ARG_LR, ARG_LR_EPOCHS, ARG_LR_MIX, ARG_FOLDS_BY_SENDER,
               ARG_ORDER_S, ARG_ORDER_FORM_S, ARG_ORDER_MIN_DEV, ARG_MIN_MESSAGES, ARG_TRAINED, ARG_NO_HMM_CACHE, ARG_ORDER_SEED,
               ARG_ORDER_NATS, ARG_SPAM_MIN_MESSAGES };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "corpus", required_argument, NULL, 'c' },
                { "protocol", required_argument, NULL, 'p' },
                { "scores", required_argument, NULL, ARG_SCORES },
                { "export", required_argument, NULL, ARG_EXPORT },
                { "folds", required_argument, NULL, ARG_FOLDS },
                { "sweep", no_argument, NULL, ARG_SWEEP },
                { "explain", required_argument, NULL, ARG_EXPLAIN },
                { "no-bigrams", no_argument, NULL, ARG_NO_BIGRAMS },
                { "markup", no_argument, NULL, ARG_MARKUP },
                { "no-field-families", no_argument, NULL, ARG_NO_FIELD_FAMILIES },
                { "no-shapes", no_argument, NULL, ARG_NO_SHAPES },
                { "decide-shapes", no_argument, NULL, ARG_DECIDE_SHAPES },
                { "hmm", no_argument, NULL, ARG_HMM },
                { "lr", required_argument, NULL, ARG_LR },
                { "lr-epochs", required_argument, NULL, ARG_LR_EPOCHS },
                { "lr-mix", required_argument, NULL, ARG_LR_MIX },
                { "order-seed", required_argument, NULL, ARG_ORDER_SEED },
                { "folds-by-sender", no_argument, NULL, ARG_FOLDS_BY_SENDER },
                { "hmm-every", required_argument, NULL, ARG_HMM_EVERY },
                { "s", required_argument, NULL, ARG_S },
                { "x", required_argument, NULL, ARG_X },
                { "min-dev", required_argument, NULL, ARG_MIN_DEV },
                { "max-tokens", required_argument, NULL, ARG_MAX_TOKENS },
                { "ham-cutoff", required_argument, NULL, ARG_HAM_CUTOFF },
                { "spam-cutoff", required_argument, NULL, ARG_SPAM_CUTOFF },
                { "bigram-s", required_argument, NULL, ARG_BIGRAM_S },
                { "no-tiling", no_argument, NULL, ARG_TILED },
                { "bigram-window", required_argument, NULL, ARG_WINDOW },
                { "store", required_argument, NULL, ARG_STORE },
                { "trained", no_argument, NULL, ARG_TRAINED },
                { "no-hmm-cache", no_argument, NULL, ARG_NO_HMM_CACHE },
                { "esf", required_argument, NULL, ARG_ESF },
                { "order-s", required_argument, NULL, ARG_ORDER_S },
                { "order-min-dev", required_argument, NULL, ARG_ORDER_MIN_DEV },
                { "order-form-s", required_argument, NULL, ARG_ORDER_FORM_S },
                { "min-messages", required_argument, NULL, ARG_MIN_MESSAGES },
                { "spam-min-messages", required_argument, NULL, ARG_SPAM_MIN_MESSAGES },
                { "order-nats", required_argument, NULL, ARG_ORDER_NATS },
                { "repeat", required_argument, NULL, ARG_REPEAT },
                { "memory-limit", required_argument, NULL, ARG_MEMORY_LIMIT },
                { "obfuscate", required_argument, NULL, ARG_OBFUSCATE },
                {}
        };
        int c;

        arg_params = spam_bayes_params_default;
        while ((c = getopt_long(argc, argv, "hc:p:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(0);
                case 'c': arg_corpus = optarg; break;
                case 'p': arg_protocol = optarg; break;
                case ARG_SCORES: arg_scores = optarg; break;
                case ARG_EXPORT: arg_export = optarg; break;
                case ARG_FOLDS: arg_folds = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_SWEEP: arg_sweep = true; break;
                case ARG_EXPLAIN: arg_explain = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_NO_BIGRAMS: arg_bigrams = false; break;
                case ARG_MARKUP: arg_markup = true; break;
                case ARG_NO_FIELD_FAMILIES: arg_field_families = false; break;
                case ARG_NO_SHAPES: arg_shapes = false; break;
                case ARG_HMM: arg_hmm = true; break;
                case ARG_HMM_EVERY: arg_hmm_every = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_S: arg_params.robinson_s = strtod(optarg, NULL); break;
                case ARG_X: arg_params.robinson_x = strtod(optarg, NULL); break;
                case ARG_MIN_DEV: arg_params.min_dev = strtod(optarg, NULL); break;
                case ARG_MAX_TOKENS: arg_params.max_tokens = strtoul(optarg, NULL, 10); break;
                case ARG_HAM_CUTOFF: arg_params.ham_cutoff = strtod(optarg, NULL); break;
                case ARG_SPAM_CUTOFF: arg_params.spam_cutoff = strtod(optarg, NULL); break;
                case ARG_BIGRAM_S: arg_params.bigram_s = strtod(optarg, NULL); break;
                case ARG_TILED: arg_tiled = false; break;
                case ARG_WINDOW: arg_window = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_STORE: arg_store = optarg; break;
                case ARG_TRAINED: arg_trained = true; break;
                case ARG_NO_HMM_CACHE: arg_hmm_cache = false; break;
                case ARG_ESF: arg_params.esf = strtod(optarg, NULL); break;
                case ARG_DECIDE_SHAPES: arg_params.decide_shapes = true; break;
                case ARG_ORDER_S: arg_params.order_s = strtod(optarg, NULL); break;
                case ARG_ORDER_MIN_DEV: arg_params.order_min_dev = strtod(optarg, NULL); break;
                case ARG_ORDER_FORM_S: arg_params.order_form_s = strtod(optarg, NULL); break;
                case ARG_MIN_MESSAGES: arg_params.min_messages = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_SPAM_MIN_MESSAGES: arg_params.spam_min_messages = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_ORDER_NATS: arg_params.order_nats_per_message = strtod(optarg, NULL); break;
                case ARG_REPEAT: arg_repeat = MAX(1U, (unsigned) strtoul(optarg, NULL, 10)); break;
                case ARG_MEMORY_LIMIT: arg_memory_limit = strtoull(optarg, NULL, 10); break;
                case ARG_OBFUSCATE: arg_obfuscate = strtod(optarg, NULL); break;
                case ARG_LR: arg_lr = strtod(optarg, NULL); break;
                case ARG_LR_EPOCHS: arg_lr_epochs = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_LR_MIX: arg_lr_mix = strtod(optarg, NULL); break;
                case ARG_ORDER_SEED: arg_order_seed = strtoull(optarg, NULL, 10); break;
                case ARG_FOLDS_BY_SENDER: arg_folds_by_sender = true; break;
                default:
                        return -EINVAL;
                }
        if (!arg_corpus || (!arg_protocol && !arg_export) || arg_folds < 2 || arg_hmm_every == 0 ||
            (arg_trained && !arg_store)) {
                help();
                return -EINVAL;
        }
        return 0;
}

/* --tokens FILE: the tokens of one message file, for looking into a result. */
static int dump_tokens(const char *path) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        SpamTokenizerOptions opts = { .key = &bench_key, .bigrams = arg_bigrams, .markup = arg_markup, .shapes = arg_shapes, .field_families = arg_field_families, .keep_text = true };
        SpamTokens t = SPAM_TOKENS_NULL;
        size_t n = 0, a = 0, k;
        int r;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                if (n + 65536 > a) {
                        char *b = realloc(buf, a = n + 65536 * 2);

                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                k = fread(buf + n, 1, a - n, f);
                if (k == 0)
                        break;
                n += k;
        }
        r = spam_tokenize(buf, n, &opts, &t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.n; i++)
                printf("%016" PRIx64 " %s\n", t.hashes[i], t.text[i]);
        spam_tokens_done(&t);
        return 0;
}

int main(int argc, char *argv[]) {
        Message *msgs = NULL;
        size_t n = 0, bytes = 0;
        int r;

        if (argc == 3 && strcmp(argv[1], "--tokens") == 0) {
                r = dump_tokens(argv[2]);
                if (r < 0)
                        fprintf(stderr, "spam-bench: %s: %s\n", argv[2], strerror(-r));
                return r < 0 ? 1 : 0;
        }

        r = parse_argv(argc, argv);
        if (r < 0)
                return 2;

#if !HAVE_SPAM_HMM
        if (arg_hmm) {
                fprintf(stderr, "spam-bench: --hmm: libspamd was built without the HMM (spam-hmm.c)\n");
                return 77;
        }
#endif

        r = load_corpus(arg_corpus, &msgs, &n, &bytes);
        if (r < 0) {
                fprintf(stderr, "spam-bench: cannot read the corpus in %s\n", arg_corpus);
                return 77;
        }

        if (arg_export)
                r = export(msgs, n, arg_export);
        else if (strcmp(arg_protocol, "a") == 0 && arg_store)
                r = protocol_a_store(msgs, n);
        else if (strcmp(arg_protocol, "a") == 0)
                r = protocol_a(msgs, n, bytes);
        else if (strcmp(arg_protocol, "b") == 0)
                r = protocol_b(msgs, n, bytes, false);
        else if (strcmp(arg_protocol, "b1") == 0)
                r = protocol_b(msgs, n, bytes, true);
        else if (strcmp(arg_protocol, "cv") == 0)
                r = protocol_cv(msgs, n);
        else {
                help();
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "spam-bench: %s\n", strerror(-r));
                return 1;
        }

        for (size_t i = 0; i < n; i++) {
                free(msgs[i].group);
                free(msgs[i].id);
                free(msgs[i].text);
                free(msgs[i].tokens);
                free(msgs[i].kinds);
                free(msgs[i].parts);
        }
        free(msgs);
        free(cv_scores);
        return 0;
}
