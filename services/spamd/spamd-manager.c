/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "log.h"
#include "spam-digest.h"
#include "spam-tokenizer.h"
#include "spamd-manager.h"
#include "string-util.h"

int manager_new(const char *config_path, const char *state_dir, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->config_path = strdup(config_path);
        m->state_dir = strdup(state_dir);
        if (!m->config_path || !m->state_dir)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager* manager_free(Manager *m) {
        if (!m)
                return NULL;
        sd_bus_flush_close_unref(m->bus);
        sd_event_source_disable_unref(m->flush_timer);
        sd_event_unref(m->event);
        spam_hmm_free(m->hmm);
        spam_hmm_cache_free(m->hmm_cache);
        memfd_reader_done(&m->message_reader);
        spam_store_free(m->store);
        spam_config_free(m->config);
        for (size_t i = 0; i < m->n_reporters; i++)
                free(m->reporters[i].reporter);
        free(m->reporters);
        free(m->config_path);
        free(m->state_dir);
        free(m);
        return NULL;
}

int manager_load_config(Manager *m, ConfigError *error) {
        _cleanup_(spam_config_freep) SpamConfig *c = NULL;
        struct passwd *pw;
        int r;

        r = spam_config_new(&c);
        if (r < 0)
                return r;
        r = spam_config_parse_file(c, m->config_path, error);
        if (r < 0)
                return r;
        r = spam_config_verify(c, m->config_path, error);
        if (r < 0)
                return r;

        errno = 0;
        pw = getpwnam(SPAMD_PROXY_USER);
        m->have_proxy_uid = pw != NULL;
        if (pw)
                m->proxy_uid = pw->pw_uid;
        m->n_trusted_uids = 0;
        STRV_FOREACH(u, c->trusted_reporters) {
                errno = 0;
                pw = getpwnam(*u);
                if (!pw) {
                        log_warning("TrustedReporters=: user %s does not exist, ignoring.", *u);
                        continue;
                }
                if (m->n_trusted_uids < SPAMD_TRUSTED_UIDS_MAX)
                        m->trusted_uids[m->n_trusted_uids++] = pw->pw_uid;
        }

        spam_config_free(m->config);
        m->config = TAKE_PTR(c);
        return 0;
}

/* The de-obfuscator reads obfuscated text into the words the filter has learned. */
static int manager_build_hmm(Manager *m) {
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        int r;

        m->learns_since_hmm = 0;
        if (!m->config->deobfuscate) {
                m->hmm = spam_hmm_free(m->hmm);
                return 0;
        }
        r = spam_hmm_new(&h);
        if (r < 0)
                return r;
        r = spam_store_lexicon(m->store, m->config->lexicon_min_messages, spam_hmm_add_lexicon_word, h);
        if (r < 0)
                return log_warning_errno(r, "Cannot read the lexicon, de-obfuscation stays as it was: %m");
        r = spam_hmm_build(h);
        if (r < 0)
                return log_warning_errno(r, "Cannot build the de-obfuscator: %m");
        if (!m->hmm_cache) {
                /* what was read as no word in a message is not searched again in the next
                 * (the cache forgets it all with each new model) */
                r = spam_hmm_cache_new(&m->hmm_cache);
                if (r < 0)
                        log_debug_errno(r, "No memory for the de-obfuscator's cache, going without: %m");
        }
        log_debug("De-obfuscator built from %zu lexicon words.", spam_hmm_size(h));
        spam_hmm_free(m->hmm);
        m->hmm = spam_hmm_size(h) > 0 ? TAKE_PTR(h) : NULL;
        return 0;
}

/* "tokenizer-version" in the state directory names the tokenizer the statistics were
 * learned with. An empty store takes the current one; a store of another version is
 * used as it is, with a notice: its counts match fewer of today's tokens until the
 * messages are learned again. */
static void check_tokenizer_version(Manager *m) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        SpamStoreStats st = {};
        unsigned v = 0;

        if (asprintf_safe(&path, "%s/tokenizer-version", m->state_dir) < 0)
                return;
        f = fopen(path, "re");
        if (f && fscanf(f, "%u", &v) == 1 && v == SPAM_TOKENIZER_VERSION)
                return;
        if (spam_store_stats(m->store, &st) >= 0 && st.journal_records > 0) {
                if (f)
                        log_notice("The statistics in %s were learned with tokenizer version %u; this "
                                   "mailsec-spamd tokenizes as version %u, so they match fewer tokens: learn "
                                   "the messages again (mailsecctl spam learn) to bring them up to date.",
                                   m->state_dir, v, SPAM_TOKENIZER_VERSION);
                else    /* a store from before the version was recorded */
                        log_notice("The statistics in %s do not say which tokenizer learned them; if they are "
                                   "older than this mailsec-spamd, learn the messages again.", m->state_dir);
                return;
        }
        f = safe_fclose(f);
        f = fopen(path, "we");
        if (!f || fprintf(f, "%u\n", SPAM_TOKENIZER_VERSION) < 0 || fflush(f) != 0)
                log_warning_errno(-errno, "Cannot write %s, ignoring: %m", path);
}

int manager_open_store(Manager *m) {
        int r;

        r = spam_store_open(m->state_dir, &m->store);
        if (r < 0)
                return log_error_errno(r, "Cannot open the statistics in %s: %m", m->state_dir);
        check_tokenizer_version(m);
        (void) manager_build_hmm(m);
        return 0;
}

int manager_setup_event(Manager *m) {
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot enable the watchdog, ignoring: %m");
        return 0;
}

bool manager_check_idle(void *userdata) {
        (void) userdata;
        return true;            /* every call is answered before the loop runs again */
}

void classify_result_done(ClassifyResult *r) {
        spam_bayes_result_done(&r->bayes);
        spam_tokens_done(&r->tokens);
        spam_token_parts_done(&r->parts);
}

/* The body words of a message, for the lexicon; bounded. */
typedef struct WordSet {
        char **words;
        size_t n, alloc;
        SpamTokens seen;                /* hashes of the words kept, for de-duplication */
        const SpamTokenKey *key;
        int error;
} WordSet;

static void word_set_done(WordSet *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->words[i]);
        free(w->words);
        spam_tokens_done(&w->seen);
}

static void on_word(const char *word, size_t len, void *userdata) {
        WordSet *w = userdata;
        uint64_t h;
        char *copy;
        int r;

        if (w->error < 0 || w->n >= SPAM_STORE_WORDS_MAX || len < SPAM_HMM_WORD_MIN || len > SPAM_HMM_WORD_MAX)
                return;
        h = spam_token_hash(w->key, "lex:", word, len);
        r = spam_tokens_add(&w->seen, h, SPAM_TOKEN_WORD, NULL, 0);
        if (r <= 0) {
                if (r < 0)
                        w->error = r;
                return;
        }
        if (w->n == w->alloc) {
                size_t a = MAX(w->alloc * 2, (size_t) 64);
                char **p = realloc(w->words, a * sizeof(char*));

                if (!p) {
                        w->error = -ENOMEM;
                        return;
                }
                w->words = p;
                w->alloc = a;
        }
        copy = strndup(word, len);
        if (!copy) {
                w->error = -ENOMEM;
                return;
        }
        w->words[w->n++] = copy;
}

static void digest_to_hex(const uint8_t d[static SPAM_DIGEST_SIZE], char ret[static 65]) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < SPAM_DIGEST_SIZE; i++) {
                ret[2 * i] = hex[d[i] >> 4];
                ret[2 * i + 1] = hex[d[i] & 15];
        }
        ret[64] = 0;
}

int digest_from_hex(const char *s, uint8_t ret[static SPAM_DIGEST_SIZE]) {
        if (!s || strlen(s) != 2 * SPAM_DIGEST_SIZE)
                return -EINVAL;
        for (size_t i = 0; i < SPAM_DIGEST_SIZE; i++) {
                int v = 0;

                for (size_t k = 0; k < 2; k++) {
                        char c = s[2 * i + k];

                        v <<= 4;
                        if (c >= '0' && c <= '9')
                                v |= c - '0';
                        else if (c >= 'a' && c <= 'f')
                                v |= c - 'a' + 10;
                        else if (c >= 'A' && c <= 'F')
                                v |= c - 'A' + 10;
                        else
                                return -EINVAL;
                }
                ret[i] = (uint8_t) v;
        }
        return 0;
}

/* The tokenizer's options are those tests/bench/spam measures (the defaults of
 * spam-tokenizer.h, with shapes and field families on); parts, when given, records
 * which tokens share evidence, for the tiled combining. */
static int tokenize(Manager *m, const void *msg, size_t size, const char *client_ip, bool keep_text,
                    WordSet *words, SpamTokenParts *parts, SpamTokens *ret) {
        SpamTokenizerOptions o = {
                .key = spam_store_key(m->store),
                .client_ip = client_ip,
                .hmm = m->hmm,
                .hmm_cache = m->hmm_cache,
                .bigrams = true,
                .shapes = true,
                .field_families = true,
                .keep_text = keep_text,
                .on_word = words ? on_word : NULL,
                .userdata = words,
                .parts = parts,
        };
        int r;

        r = spam_tokenize(msg, size, &o, ret);
        if (r < 0)
                return r;
        return words ? words->error : 0;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = spam_store_flush(m->store);
        if (r < 0)
                log_warning_errno(r, "Cannot write the pending counts yet, trying again at the next learn: %m");
        return 0;
}

/* The store writes a batch of counts every SPAM_STORE_BATCH learns, inside the learn that
 * completes it; writing what is pending once learning pauses keeps those batches small
 * and off the path of a call. The journal is already on disk either way. */
static void schedule_flush(Manager *m) {
        int r;

        if (!m->event)
                return;
        if (!m->flush_timer) {
                r = sd_event_add_time_relative(m->event, &m->flush_timer, CLOCK_MONOTONIC, SPAMD_FLUSH_DELAY, 0,
                                               on_flush_timer, m);
                if (r < 0)
                        log_debug_errno(r, "Cannot arm the flush timer, counts are written in batches only: %m");
                return;
        }
        r = sd_event_source_set_time_relative(m->flush_timer, SPAMD_FLUSH_DELAY);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->flush_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Cannot re-arm the flush timer: %m");
}

static int learn_tokens(Manager *m, const uint8_t digest[static SPAM_DIGEST_SIZE], const SpamTokens *t,
                        const WordSet *w, SpamClass class, SpamSource source, const char *reporter,
                        const char *domain) {
        SpamLearn l = {
                .class = class,
                .source = source,
                .reporter = reporter,
                .domain = m->config->domain_statistics ? domain : NULL,
                .tokens = t->hashes,
                .n_tokens = MIN(t->n, (size_t) SPAM_STORE_TOKENS_MAX),
                .words = w->words,
                .n_words = w->n,
        };
        char hex[65];
        int r;

        memcpy(l.digest, digest, SPAM_DIGEST_SIZE);
        r = spam_store_learn(m->store, &l);
        if (r <= 0)
                return r;

        digest_to_hex(digest, hex);
        log_info("Learned %s as %s (%s, %s%s%s).", hex, spam_class_to_string(class), spam_source_to_string(source),
                 strna(reporter), domain ? ", domain " : "", strempty(domain));
        if (m->bus)
                (void) sd_bus_emit_signal(m->bus, SPAM_BUS_PATH, SPAM_BUS_INTERFACE, "Learned", "sss", hex,
                                          spam_class_to_string(class), spam_source_to_string(source));
        schedule_flush(m);
        if (++m->learns_since_hmm >= SPAMD_HMM_REBUILD_LEARNS)
                (void) manager_build_hmm(m);
        return 1;
}

/* How much a source of training is trusted. */
static unsigned source_weight(SpamSource s) {
        return s == SPAM_SOURCE_ADMIN ? 2 : s == SPAM_SOURCE_REPORT ? 1 : 0;
}

/* Auto-learning only from confident verdicts, and not of the class that already has
 * AutoLearnMaxRatio= times as many messages as the other (a filter fed one class only
 * drifts; the guard keeps the classes in balance). */
static bool autolearn_wanted(Manager *m, const SpamBayesResult *b, SpamClass *ret) {
        const SpamConfig *c = m->config;
        SpamTotals t = {};
        SpamClass class;
        double mine, other;

        if (!c->autolearn)
                return false;
        if (b->score < c->autolearn_ham)
                class = SPAM_CLASS_HAM;
        else if (b->score >= c->autolearn_spam)
                class = SPAM_CLASS_SPAM;
        else
                return false;
        if (spam_store_totals(m->store, NULL, &t) < 0)
                return false;
        /* a filter that has seen little of either class does not trust itself yet */
        if (t.spam < c->autolearn_min_messages || t.ham < c->autolearn_min_messages)
                return false;
        mine = (double) (class == SPAM_CLASS_SPAM ? t.spam : t.ham);
        other = (double) (class == SPAM_CLASS_SPAM ? t.ham : t.spam);
        if (mine + 1.0 > c->autolearn_max_ratio * (other + 1.0))
                return false;
        *ret = class;
        return true;
}

int manager_classify(Manager *m, const void *msg, size_t size, const ClassifyRequest *req, ClassifyResult *ret) {
        _cleanup_(word_set_done) WordSet words = { .key = spam_store_key(m->store) };
        _cleanup_free_ SpamCounts *counts = NULL;
        SpamTotals global = {}, domain = {};
        bool use_domain = false;
        SpamClass class;
        int r;

        *ret = (ClassifyResult) { .tokens = SPAM_TOKENS_NULL, .parts = SPAM_TOKEN_PARTS_NULL };
        r = tokenize(m, msg, MIN(size, m->config->scan_size), req->client_ip, req->top > 0,
                     req->autolearn ? &words : NULL, &ret->parts, &ret->tokens);
        if (r < 0)
                return r;
        r = spam_store_totals(m->store, NULL, &global);
        if (r < 0)
                return r;
        if (req->domain && m->config->domain_statistics) {
                r = spam_store_totals(m->store, req->domain, &domain);
                if (r < 0)
                        return r;
                use_domain = domain.spam > 0 && domain.ham > 0;
        }
        /* The counts of all tokens, looked up together (the store overlaps their memory
         * accesses): global, then the domain's. */
        if (ret->tokens.n > 0) {
                size_t n = ret->tokens.n;

                counts = reallocarray(NULL, use_domain ? 2 * n : n, sizeof(SpamCounts));
                if (!counts)
                        return -ENOMEM;
                r = spam_store_counts_many(m->store, NULL, ret->tokens.hashes, n, counts);
                if (r >= 0 && use_domain)
                        r = spam_store_counts_many(m->store, req->domain, ret->tokens.hashes, n, counts + n);
                if (r < 0)
                        return r;
        }
        /* Each body word counts once, alone, in a shape or in its strongest bigram; each
         * field family once, in its strongest token. */
        r = spam_bayes_classify_counts(&m->config->bayes, &ret->tokens, ret->parts.word, global,
                                       use_domain ? &domain : NULL, counts, use_domain ? counts + ret->tokens.n : NULL,
                                       req->top, &ret->bayes);
        if (r < 0)
                return r;
        m->stats.classified++;

        if (req->autolearn && autolearn_wanted(m, &ret->bayes, &class)) {
                uint8_t digest[SPAM_DIGEST_SIZE];
                SpamSource old_source;
                SpamClass old;

                spam_message_digest(msg, size, digest);
                /* a message a user or an administrator classified stays as they said */
                if (spam_store_learned_by(m->store, digest, &old, &old_source) >= 0 &&
                    (old == class || source_weight(old_source) > source_weight(SPAM_SOURCE_AUTOLEARN)))
                        r = 0;
                else
                        r = learn_tokens(m, digest, &ret->tokens, &words, class, SPAM_SOURCE_AUTOLEARN,
                                         "autolearn", req->domain);
                if (r < 0)
                        log_warning_errno(r, "Auto-learning failed, ignoring: %m");
                else if (r > 0) {
                        ret->learned = true;
                        m->stats.autolearned++;
                }
        }
        return 0;
}

int manager_learn(Manager *m, const void *msg, size_t size, SpamClass class, SpamSource source,
                  const char *reporter, const char *domain, char ret_digest[static 65]) {
        _cleanup_(word_set_done) WordSet words = { .key = spam_store_key(m->store) };
        _cleanup_(spam_tokens_done) SpamTokens t = SPAM_TOKENS_NULL;
        uint8_t digest[SPAM_DIGEST_SIZE];
        SpamSource old_source;
        SpamClass old;
        int r;

        spam_message_digest(msg, size, digest);
        digest_to_hex(digest, ret_digest);
        if (spam_store_learned_by(m->store, digest, &old, &old_source) >= 0) {
                /* Known with this class: nothing to tokenize. */
                if (old == class)
                        return 0;
                /* Who may move a message: an administrator's Learn stands against reports,
                 * and a user's report against auto-learning (a poisoning guard: automatic
                 * and untrusted evidence never overrides more trusted evidence). */
                if (source_weight(source) < source_weight(old_source)) {
                        log_notice("Not moving %s from %s to %s: it was learned by %s, %s may not change that.",
                                   ret_digest, spam_class_to_string(old), spam_class_to_string(class),
                                   spam_source_to_string(old_source), spam_source_to_string(source));
                        return -EPERM;
                }
        }
        r = tokenize(m, msg, MIN(size, m->config->scan_size), NULL, false, &words, NULL, &t);
        if (r < 0)
                return r;
        return learn_tokens(m, digest, &t, &words, class, source, reporter, domain);
}

int manager_forget(Manager *m, const char *digest_hex, const char *reporter) {
        uint8_t digest[SPAM_DIGEST_SIZE];
        int r;

        r = digest_from_hex(digest_hex, digest);
        if (r < 0)
                return r;
        r = spam_store_forget(m->store, digest, SPAM_SOURCE_ADMIN, reporter);
        if (r > 0) {
                schedule_flush(m);
                log_info("Forgot %s (%s).", digest_hex, strna(reporter));
                if (m->bus)
                        (void) sd_bus_emit_signal(m->bus, SPAM_BUS_PATH, SPAM_BUS_INTERFACE, "Learned", "sss",
                                                  digest_hex, "", "admin");
        }
        return r;
}

int manager_compact(Manager *m, uint64_t *ret_records, uint64_t *ret_bytes) {
        const SpamConfig *c = m->config;
        SpamStoreStats st = {}, before = {};
        SpamCompactPolicy policy = {
                .autolearn_keep = c->autolearn_keep,
        };
        uint64_t kept = 0, forgotten = 0, t = (uint64_t) (now(CLOCK_REALTIME) / USEC_PER_SEC);
        int r;

        if (c->forget_after != USEC_INFINITY && t > c->forget_after / USEC_PER_SEC)
                policy.forget_before = t - c->forget_after / USEC_PER_SEC;
        (void) spam_store_stats(m->store, &before);
        r = spam_store_compact(m->store, &policy, &kept, &forgotten);
        if (r < 0)
                return r;
        if (forgotten > 0) {
                log_notice("Compaction forgot %" PRIu64 " of the learned messages (learned more than "
                           "ForgetAfterSec= ago, or auto-learned beyond the newest AutoLearnKeep=).", forgotten);
                /* the de-obfuscator's lexicon came from what was learned */
                (void) manager_build_hmm(m);
        }
        if (spam_store_stats(m->store, &st) >= 0)
                log_info("Compaction kept %" PRIu64 " learned messages: the training journal went from %" PRIu64
                         " to %" PRIu64 " bytes, the counts' database from %" PRIu64 " to %" PRIu64 " bytes.",
                         kept, before.journal_bytes, st.journal_bytes, before.db_bytes, st.db_bytes);
        if (ret_records)
                *ret_records = kept;
        if (ret_bytes)
                *ret_bytes = st.journal_bytes;
        return 0;
}

int manager_reset(Manager *m, const char *who) {
        int r;

        r = spam_store_reset(m->store);
        if (r < 0)
                return r;
        log_notice("Statistics reset by %s: nothing is learned any more.", strna(who));
        /* the de-obfuscator's lexicon came from what was learned */
        (void) manager_build_hmm(m);
        return 0;
}

int manager_rate_check(Manager *m, const char *reporter) {
        usec_t t = now(CLOCK_MONOTONIC);
        ReporterWindow *w = NULL;

        if (m->config->reports_per_hour == 0)
                return 0;
        for (size_t i = 0; i < m->n_reporters; i++)
                if (streq(m->reporters[i].reporter, reporter)) {
                        w = m->reporters + i;
                        break;
                }
        if (!w) {
                char *copy;

                /* A full table: forget windows that are over, else the oldest. */
                if (m->n_reporters >= SPAMD_REPORTERS_MAX) {
                        size_t oldest = 0;

                        for (size_t i = 1; i < m->n_reporters; i++)
                                if (m->reporters[i].window_start < m->reporters[oldest].window_start)
                                        oldest = i;
                        free(m->reporters[oldest].reporter);
                        m->reporters[oldest] = m->reporters[--m->n_reporters];
                }
                if (m->n_reporters % 64 == 0) {
                        ReporterWindow *p = realloc(m->reporters, (m->n_reporters + 64) * sizeof(ReporterWindow));

                        if (!p)
                                return -ENOMEM;
                        m->reporters = p;
                }
                copy = strdup(reporter);
                if (!copy)
                        return -ENOMEM;
                w = m->reporters + m->n_reporters++;
                *w = (ReporterWindow) { .reporter = copy, .window_start = t };
        }
        if (t - w->window_start >= USEC_PER_HOUR) {
                w->window_start = t;
                w->count = 0;
        }
        if (w->count >= m->config->reports_per_hour)
                return -EDQUOT;
        w->count++;
        return 0;
}

void manager_rate_refund(Manager *m, const char *reporter) {
        for (size_t i = 0; i < m->n_reporters; i++)
                if (streq(m->reporters[i].reporter, reporter)) {
                        if (m->reporters[i].count > 0)
                                m->reporters[i].count--;
                        return;
                }
}
